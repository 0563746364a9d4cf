"""The weighted mean of Wiener-Enhance runs (enhance.training.average) and ``enhance train`` on an average."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import enhance
from enhance.cli import main
from enhance.models.pretrained import load_network
from enhance.models.weights import read_metadata, save_weights
from enhance.training.average import AverageConfig, average_weights, load_average_config, train_average
from enhance.training.hybrid_loop import ConfigError

TINY = Path(__file__).resolve().parents[2] / "training" / "configs" / "tiny.toml"


@pytest.fixture
def random_net(random_wiener):
    """A tiny Wiener-Enhance network with exact constants and random weights, of ``seed``."""

    def make(seed, **size):
        options = {"depth": 1, "width": 4, "taps": 5, "exact_constants": True, **size}
        return random_wiener(seed, weight_std=0.2, bias_std=0.2, **options)

    return make


def test_the_average_is_the_weighted_mean_of_every_tensor_and_keeps_constants_exact(tmp_path, random_net):
    nets = [random_net(seed) for seed in (0, 1, 2)]
    files = [save_weights(net, tmp_path / f"{i}.safetensors", kind="intensity") for i, net in enumerate(nets)]
    out = average_weights(files, [1, 2, 5], tmp_path / "mean.safetensors", kind="intensity")
    found, states = load_file(out), [load_file(file) for file in files]
    assert found.keys() == states[0].keys()
    for name in found:
        expected = (states[0][name].astype(float) + 2 * states[1][name] + 5 * states[2][name]) / 8
        np.testing.assert_allclose(found[name], expected, rtol=1e-6, atol=1e-7, err_msg=name)
    members = json.loads(read_metadata(out)["members"])
    assert [member["weight"] for member in members] == [1 / 8, 2 / 8, 5 / 8]
    mean = load_network(out, kind="intensity")
    flat = enhance.enhance(np.full((30, 30), 1.1), "intensity", network=mean, noise=1e-3)
    np.testing.assert_allclose(flat, 1.1, rtol=1e-6)  # exact constants hold for any weights, so for the mean


def test_networks_of_different_architectures_are_not_averaged(tmp_path, random_net):
    a = save_weights(random_net(0), tmp_path / "a.safetensors", kind="intensity")
    for i, other in enumerate((random_net(1, width=8), random_net(1, exact_constants=False))):
        b = save_weights(other, tmp_path / f"b{i}.safetensors", kind="intensity")
        with pytest.raises(ConfigError, match="not one architecture"):
            average_weights([a, b], [1, 1], tmp_path / "mean.safetensors", kind="intensity")
    with pytest.raises(ConfigError, match="one positive finite number per file"):
        average_weights([a, a], [1, 0], tmp_path / "mean.safetensors", kind="intensity")
    assert not (tmp_path / "mean.safetensors").exists()


def _write(path, text):
    path.write_text(text)
    return path


def test_average_configurations_are_checked(tmp_path):
    head = 'family = "wiener-enhance-average"\nkind = "intensity"\nout_dir = "runs/avg"\n'
    two = '[[members]]\nconfig = "a.toml"\n[[members]]\nconfig = "sub/b.toml"\nweight = 2.5\n'
    cfg = load_average_config(_write(tmp_path / "avg.toml", head + two))
    assert cfg.members == ((str(tmp_path / "a.toml"), 1.0), (str(tmp_path / "sub" / "b.toml"), 2.5))
    cases = {
        "at least two members": head + '[[members]]\nconfig = "a.toml"\n',
        "weight must be a positive number": head + two.replace("2.5", "-1"),
        "same member configuration twice": head + two.replace("sub/b.toml", "a.toml"),
        "unknown \\['steps'\\]": head + "steps = 3\n" + two,
        "is not an average": head.replace("-average", "") + two,
        "config \\(a path\\) and weight": head + two + "[[members]]\nweight = 1\n",
        "cannot read the configuration": head + "[[members\n",
    }
    for message, text in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_average_config(_write(tmp_path / "bad.toml", text))
    with pytest.raises(ConfigError, match="weight must be a positive number"):
        AverageConfig(kind="intensity", out_dir="x", members=(("a", 1.0), ("b", True)))


def test_enhance_train_trains_each_member_and_writes_their_mean(tmp_path):
    text = TINY.read_text()
    members = []
    for seed in (1, 2):
        member = text.replace('out_dir = "runs/tiny"', f'out_dir = "{tmp_path / f"m{seed}"}"')
        members.append(_write(tmp_path / f"m{seed}.toml", member.replace("[train]", f"[train]\nseed = {seed}")))
    config = _write(tmp_path / "avg.toml", 'family = "wiener-enhance-average"\nkind = "intensity"\n'
                    f'out_dir = "{tmp_path / "avg"}"\n[[members]]\nconfig = "m1.toml"\nweight = 3\n'
                    '[[members]]\nconfig = "m2.toml"\n')  # fmt: skip
    assert main(["train", "--config", str(config), "--quiet"]) == 0
    found = load_file(tmp_path / "avg" / "final.safetensors")
    one, two = load_file(tmp_path / "m1" / "final.safetensors"), load_file(tmp_path / "m2" / "final.safetensors")
    assert not np.array_equal(one["conv_out.weight"], two["conv_out.weight"])  # two different runs
    for name in found:
        np.testing.assert_allclose(found[name], 0.75 * one[name].astype(float) + 0.25 * two[name], rtol=1e-6,
                                   atol=1e-7, err_msg=name)  # fmt: skip
    recipe = json.loads(read_metadata(tmp_path / "avg" / "final.safetensors")["recipe"])
    assert [member["weight"] for member in recipe["members"]] == [3.0, 1.0]
    # Finished members are not trained again: a second call only averages.
    before = (tmp_path / "m1" / "checkpoint.pt").stat().st_mtime_ns
    lines = []
    train_average(load_average_config(config), progress=False, log=lines.append)
    assert (tmp_path / "m1" / "checkpoint.pt").stat().st_mtime_ns == before
    assert sum(line == "resumed at step 60" for line in lines) == 2
    # Errors before any work: an unused source, a member of another kind, flags that belong to members.
    with pytest.raises(ConfigError, match="match no member"):
        train_average(load_average_config(config), sources={"muram": "x.fits"}, progress=False, log=lines.append)
    _write(tmp_path / "m2.toml", members[1].read_text().replace('kind = "intensity"', 'kind = "blos"'))
    with pytest.raises(ConfigError, match="trains a blos network"):
        train_average(load_average_config(config), progress=False, log=lines.append)
    assert main(["train", "--config", str(config), "--steps", "5", "--quiet"]) == 1


def test_infinite_weights_and_shared_folders_are_refused(tmp_path, random_net):
    a = save_weights(random_net(0), tmp_path / "a.safetensors", kind="intensity")
    with pytest.raises(ConfigError, match="positive finite number"):
        average_weights([a, a], [float("inf"), 1], tmp_path / "mean.safetensors", kind="intensity")
    with pytest.raises(ConfigError, match="weight must be a positive number"):
        AverageConfig(kind="intensity", out_dir="x", members=(("a", float("inf")), ("b", 1.0)))
    member = TINY.read_text().replace('out_dir = "runs/tiny"', f'out_dir = "{tmp_path / "same"}"')
    for name in ("m1.toml", "m2.toml"):
        _write(tmp_path / name, member)
    members = '[[members]]\nconfig = "m1.toml"\n[[members]]\nconfig = "m2.toml"\n'
    head = f'family = "wiener-enhance-average"\nkind = "intensity"\nout_dir = "{tmp_path / "avg"}"\n'
    config = _write(tmp_path / "avg.toml", head + members)
    with pytest.raises(ConfigError, match="out_dir of their own"):
        train_average(load_average_config(config), progress=False, log=lambda line: None)
    assert not (tmp_path / "same").exists()  # refused before any training
