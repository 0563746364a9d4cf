"""`enhance train --config` for the default models' family (enhance.training.hybrid_loop)."""

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import enhance
from enhance.cli import main
from enhance.models.hybrid import WienerEnhanceNet
from enhance.models.pretrained import load_network
from enhance.training.hybrid_loop import ConfigError, HybridConfig, load_hybrid_config, train_hybrid

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "training" / "configs" / "tiny.toml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    assert main(["train", "--config", str(TINY), "--out-dir", str(out), "--quiet"]) == 0
    return out


def test_the_tiny_config_trains_a_network_that_beats_its_linear_stage_and_loads(tiny_run):
    history = __import__("json").loads((tiny_run / "history.json").read_text())
    gains = [dict(entry["gain_vs_linear_db"])[1.0] for entry in history]
    assert gains[-1] > 0.05  # the CNN improves on the closed-form stage it started from
    net = load_network(tiny_run / "final.safetensors", kind="intensity")
    assert isinstance(net, WienerEnhanceNet)
    assert net.exact_constants
    assert not net.odd
    image = 1 + 0.03 * np.random.default_rng(0).standard_normal((40, 40))
    out = enhance.enhance(image, "intensity", network=net, noise=1e-3)
    assert out.shape == (80, 80)
    assert np.isfinite(out).all()
    flat = enhance.enhance(np.full((40, 40), 0.9), "intensity", network=net, noise=1e-3)
    np.testing.assert_allclose(flat, 0.9, rtol=1e-6)


def test_a_stopped_run_resumes_to_the_same_weights(tmp_path, tiny_run):
    cfg = load_hybrid_config(TINY, out_dir=str(tmp_path))
    assert train_hybrid(cfg, progress=False, log=lambda m: None, until=30) is None
    assert (tmp_path / "checkpoint.pt").exists()
    assert not (tmp_path / "final.safetensors").exists()
    path = train_hybrid(cfg, progress=False, log=lambda m: None)
    resumed, straight = load_file(path), load_file(tiny_run / "final.safetensors")
    assert resumed.keys() == straight.keys()
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    cfg = load_hybrid_config(TINY, out_dir=str(tmp_path))
    train_hybrid(cfg, progress=False, log=lambda m: None, until=20)
    other = load_hybrid_config(TINY, out_dir=str(tmp_path), train={"steps": 61})
    with pytest.raises(ConfigError, match="another configuration"):
        train_hybrid(other, progress=False, log=lambda m: None)


def test_configuration_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown keys"):
        HybridConfig(kind="intensity", model={"depht": 3})
    with pytest.raises(ConfigError, match="summing to 1"):
        HybridConfig(kind="intensity", data={"psf": {"nominal": 0.5}})
    config = tmp_path / "file.toml"
    config.write_text('family = "wiener-enhance"\nkind = "intensity"\n[[data.sources]]\ntype = "file"\nname = "sim"\n')
    cfg = load_hybrid_config(config, out_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="--source sim=PATH"):
        train_hybrid(cfg, progress=False, log=lambda m: None)
    with pytest.raises(ConfigError, match="match no"):
        load_hybrid_config(config, sources={"other": "x.fits"})
    assert main(["train", "--config", str(config), "--source", "nonsense"]) == 1


def test_a_file_source_is_read_from_the_command_line(tmp_path):
    field = 1 + 0.05 * np.random.default_rng(1).standard_normal((300, 300))
    np.save(tmp_path / "field.npy", field)
    config = tmp_path / "file.toml"
    config.write_text(
        'family = "wiener-enhance"\nkind = "intensity"\n[model]\ndepth = 1\nwidth = 4\ntaps = 5\n'
        "[data]\npairs = 16\npatch = 20\n"
        '[[data.sources]]\ntype = "file"\nname = "sim"\npixel_scale_arcsec = 0.0662\nrows = "train"\n'
        "[train]\nsteps = 2\nbatch = 2\neval_every = 1\n"
    )
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--source", f"sim={tmp_path / 'field.npy'}",
                 "--out-dir", str(out), "--quiet"]) == 0  # fmt: skip
    assert (out / "final.safetensors").exists()


def test_the_psf_is_a_parameter_of_the_configuration(tmp_path):
    from enhance.training.hybrid_loop import training_pairs

    def pairs(**data):
        data = {"pairs": 4, "patch": 12, "psf": {"nominal": 1.0},
                "sources": [{"type": "synthetic", "frames": 1, "shape": [200, 200]}], **data}  # fmt: skip
        cfg = HybridConfig(kind="intensity", out_dir=str(tmp_path / str(len(data))), data=data)
        return training_pairs(cfg, log=lambda m: None)

    nominal, _, _ = pairs()
    wider, target, _ = pairs(hmi_params={"w": 4.0, "W": 3.4, "epsilon": 0.1, "k": 3.0}, radius_arcsec=4.0)
    # The same scene patches (the same draws), seen through a wider PSF core: smoother, the targets unchanged.
    assert float(wider.std()) < float(nominal.std())
    assert target.shape == (4, 1, 24, 24)


def test_init_filters_keeps_the_start_networks_linear_stage(tmp_path, tiny_run):
    start = load_network(tiny_run / "final.safetensors", kind="intensity")
    model = {"depth": 1, "width": 8, "taps": 7, "init": str(tiny_run / "final.safetensors")}
    cfg = load_hybrid_config(TINY, out_dir=str(tmp_path / "kept"), model={**model, "init_filters": True},
                             train={"steps": 2, "eval_every": 1})  # fmt: skip
    kept = load_network(train_hybrid(cfg, progress=False, log=lambda m: None), kind="intensity")
    np.testing.assert_array_equal(kept.filters.numpy(), start.filters.numpy())
    assert not list(Path(cfg.out_dir).glob("linear_stage_*.npy"))  # none fitted
    cfg = load_hybrid_config(TINY, out_dir=str(tmp_path / "refit"), data={"pairs": 48, "seed": 5},
                             model=model, train={"steps": 2, "eval_every": 1})  # fmt: skip
    refit = load_network(train_hybrid(cfg, progress=False, log=lambda m: None), kind="intensity")
    assert not np.array_equal(refit.filters.numpy(), start.filters.numpy())  # fitted to other pairs


def test_init_filters_needs_an_init_network_of_the_same_taps(tmp_path, tiny_run):
    with pytest.raises(ConfigError, match="needs model.init"):
        HybridConfig(kind="intensity", model={"init_filters": True})
    model = {"depth": 1, "width": 8, "taps": 9, "init": str(tiny_run / "final.safetensors"), "init_filters": True}
    cfg = load_hybrid_config(TINY, out_dir=str(tmp_path / "b"), model=model)
    with pytest.raises(ConfigError, match="7-tap filters"):
        train_hybrid(cfg, progress=False, log=lambda m: None)


def test_half_pixel_shift_moves_a_quadratic_exactly():
    import torch

    from enhance.training.hybrid_loop import half_pixel_shift

    y, x = torch.meshgrid(torch.arange(12.0, dtype=torch.float64), torch.arange(14.0, dtype=torch.float64),
                          indexing="ij")  # fmt: skip
    image = (0.3 * x**2 - 0.2 * x * y + 0.1 * y**2 + x - 2 * y + 5)[None, None]
    moved_x = 0.3 * (x - 0.5) ** 2 - 0.2 * (x - 0.5) * y + 0.1 * y**2 + (x - 0.5) - 2 * y + 5
    moved_y = 0.3 * x**2 - 0.2 * x * (y - 0.5) + 0.1 * (y - 0.5) ** 2 + x - 2 * (y - 0.5) + 5
    inner = (slice(2, -1), slice(2, -1))  # away from the replicated edges
    np.testing.assert_allclose(half_pixel_shift(image, 3)[0, 0][inner], moved_x[inner], atol=1e-12)
    np.testing.assert_allclose(half_pixel_shift(image, 2)[0, 0][inner], moved_y[inner], atol=1e-12)
    twice = half_pixel_shift(half_pixel_shift(image, 3), 3)[0, 0]
    np.testing.assert_allclose(twice[:, 4:-2], image[0, 0][:, 3:-3], atol=1e-12)  # one whole pixel


def test_the_flicker_weight_trains_a_network_that_flickers_less(tmp_path):
    import torch

    from enhance.training.hybrid_loop import flicker_loss, training_pairs

    runs = {}
    for weight in (0.0, 100.0):
        tiny = load_hybrid_config(TINY)
        cfg = HybridConfig(kind=tiny.kind, out_dir=str(tmp_path / str(weight)), model=tiny.model, data=tiny.data,
                           train={**tiny.train, "flicker_weight": weight})  # fmt: skip
        runs[weight] = load_network(train_hybrid(cfg, progress=False, log=lambda m: None), kind="intensity")
    x_all, _, _ = training_pairs(cfg, log=lambda m: None)
    x = x_all[-16:] + 1e-3 * torch.from_numpy(np.random.default_rng(1).standard_normal(x_all[-16:].shape)).float()
    sigma = torch.full((16,), 1e-3)
    with torch.no_grad():
        found = {w: float(sum(flicker_loss(n, x, sigma, n.core(x, sigma), axis=a) for a in (2, 3)))
                 for w, n in runs.items()}  # fmt: skip
    assert found[100.0] < 0.7 * found[0.0]
    with pytest.raises(ConfigError, match="unknown keys"):
        HybridConfig(kind="intensity", train={"flicker": 1.0})


def test_a_teacher_keeps_the_training_near_its_output(tmp_path, tiny_run):
    import torch

    from enhance.training.hybrid_loop import training_pairs

    teacher_path = tiny_run / "final.safetensors"
    teacher = load_network(teacher_path, kind="intensity")
    tiny = load_hybrid_config(TINY)
    nets = {}
    for weight in (0.0, 1000.0):  # from another seed, with and without the teacher
        cfg = HybridConfig(
            kind=tiny.kind,
            out_dir=str(tmp_path / str(weight)),
            model=tiny.model,
            data=tiny.data,
            train={**tiny.train, "seed": 5, "teacher": str(teacher_path), "teacher_weight": weight},
        )
        nets[weight] = load_network(train_hybrid(cfg, progress=False, log=lambda m: None), kind="intensity")
    x_all, _, _ = training_pairs(tiny, log=lambda m: None)
    x, sigma = x_all[-16:], torch.full((16,), 2e-3)
    with torch.no_grad():
        taught = teacher.core(x, sigma)
        apart = {w: float(((n.core(x, sigma) - taught) ** 2).mean()) for w, n in nets.items()}
    assert apart[1000.0] < 0.5 * apart[0.0]
    with pytest.raises(ConfigError, match="needs train.teacher"):
        HybridConfig(kind="intensity", train={"teacher_weight": 1.0})
    with pytest.raises(ConfigError, match="must be 0 or more"):
        HybridConfig(kind="intensity", train={"flicker_weight": -1.0})
    with pytest.raises(ConfigError, match="must be 0 or more"):
        HybridConfig(kind="intensity", train={"teacher_weight": "8", "teacher": "full"})
    wrong = HybridConfig(
        kind="intensity",
        out_dir=str(tmp_path / "wrong"),
        model={**tiny.model, "depth": 2},
        data=tiny.data,
        train={**tiny.train, "teacher": str(teacher_path), "teacher_weight": 1.0},
    )
    with pytest.raises(ConfigError, match="not a Wiener-Enhance network with the margin"):
        train_hybrid(wrong, progress=False, log=lambda m: None)
    assert not list((tmp_path / "wrong").glob("pairs_*"))  # refused before any pair is made


@pytest.mark.parametrize("path", sorted((ROOT / "training" / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_configuration_reads(path):
    from enhance.training.hybrid_loop import config_family

    family = config_family(path)
    if family == "wiener-enhance-average":
        from enhance.training.average import load_average_config

        members = load_average_config(path).members
        assert all(load_hybrid_config(member).train["steps"] > 0 for member, _ in members)
        return
    if family != "wiener-enhance":
        pytest.skip("the paper's network's configuration")
    cfg = load_hybrid_config(path)
    assert cfg.train["steps"] > 0
    assert cfg.data["sources"]
    for name in (cfg.model["init"], cfg.train["teacher"]):  # a shipped model's name or a file of the repository
        assert name in (None, "full", "light") or (ROOT / name).is_file(), name
