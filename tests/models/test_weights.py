import pytest
import torch

from enhance.exceptions import ModelNotTrainedError
from enhance.models.network import EnhanceNet
from enhance.models.pretrained import load_network, load_weights
from enhance.models.weights import save_weights


def test_save_and_load_round_trip(tmp_path, tiny_net):
    path = save_weights(tiny_net, tmp_path / "w.safetensors", kind="blos", metadata={"steps": 3})
    loaded = load_network(path, kind="blos")
    assert (loaded.depth, loaded.width) == (tiny_net.depth, tiny_net.width)
    for (name, a), (_, b) in zip(tiny_net.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_save_refuses_to_overwrite(tmp_path):
    net = EnhanceNet(depth=1, width=4)
    save_weights(net, tmp_path / "w.safetensors", kind="intensity")
    with pytest.raises(FileExistsError, match="exists"):
        save_weights(net, tmp_path / "w.safetensors", kind="intensity")
    save_weights(net, tmp_path / "w.safetensors", kind="intensity", overwrite=True)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        load_network(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="is not a safetensors weights file"):
        load_network(bad)
    path = save_weights(EnhanceNet(depth=1, width=4), tmp_path / "w.safetensors", kind="intensity")
    with pytest.raises(ValueError, match="holds a 'intensity' network, but kind='blos'"):
        load_network(path, kind="blos")


def test_unknown_model_names(no_shipped_models):
    with pytest.raises(ValueError, match="kind must be one of"):
        load_weights("doppler", "full")
    with pytest.raises(ValueError, match="model must be one of"):
        load_weights("intensity", "huge")
    with pytest.raises(ModelNotTrainedError):
        load_weights("intensity", "light")


def test_ship_registers_and_load_checks_everything(tmp_path, data_dir):
    from enhance.models.pretrained import paper_light, ship
    from enhance.models.registry import model_card, shipped

    torch.manual_seed(0)
    trained = EnhanceNet(depth=1, width=32)
    source = save_weights(trained, tmp_path / "best.safetensors", kind="blos")
    entry = ship(source, "blos", "paper-light", card={"steps": 123, "validation": {"psnr": 30.0}})
    assert entry.num_params == 37_537
    assert shipped() == {("blos", "paper-light"): entry}
    assert model_card("blos", "paper-light")["steps"] == 123
    net = paper_light("blos", weights="default")
    for key, value in trained.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key
    with pytest.raises(ModelNotTrainedError, match="use model='paper-light'"):  # names the model that is shipped
        load_weights("blos", "full")
    # A corrupted file is refused.
    path = data_dir / entry.file
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ValueError, match="are corrupt: sha256"):
        load_weights("blos", "paper-light")


def test_full_and_light_share_one_wiener_file_and_differ_by_the_symmetry(tmp_path, data_dir):
    from enhance.models.hybrid import WienerEnhanceNet
    from enhance.models.pretrained import full, light, ship

    source = save_weights(
        WienerEnhanceNet(depth=3, width=32, taps=21, noise_unit=0.01), tmp_path / "w.safetensors", kind="blos"
    )
    entries = {variant: ship(source, "blos", variant, card={"variant": variant}) for variant in ("full", "light")}
    assert entries["full"].file == entries["light"].file == "enhance_blos_wiener.safetensors"
    assert (entries["full"].symmetric, entries["light"].symmetric) == (True, False)
    assert full("blos", weights="default").symmetric
    assert not light("blos", weights="default").symmetric
    assert len(list(data_dir.glob("*.safetensors"))) == 1


def test_ship_refuses_the_wrong_architecture(tmp_path, data_dir):
    from enhance.models.pretrained import ship

    source = save_weights(EnhanceNet(depth=2, width=8), tmp_path / "w.safetensors", kind="intensity")
    with pytest.raises(ValueError, match=r"holds EnhanceNet \{'depth': 2, 'width': 8\}, but the 'full' model is"):
        ship(source, "intensity", "full", card={})
    assert list(data_dir.iterdir()) == []


def _crafted(path, net, **meta):
    """A safetensors file of ``net``'s tensors with the metadata ``meta`` (as a hostile file would claim)."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().contiguous() for name, t in net.state_dict().items()}
    save_file(tensors, str(path), metadata={"kind": "intensity", "depth": str(net.depth), "width": str(net.width),
                                            **{k: str(v) for k, v in meta.items()}})  # fmt: skip
    return path


@pytest.mark.parametrize("depth", ["100000000", "-1", "5.0", "abc", "0"])
def test_metadata_beyond_bounds_is_refused_before_anything_is_built(tmp_path, tiny_net, monkeypatch, depth):
    import enhance.models.pretrained as pretrained

    built = []
    monkeypatch.setattr(pretrained, "EnhanceNet", lambda **kw: built.append(kw) or EnhanceNet(**kw))
    path = _crafted(tmp_path / "huge.safetensors", tiny_net, depth=depth)
    with pytest.raises(ValueError, match=r"huge.safetensors: metadata depth=.* is not an integer from 1 to 64"):
        load_network(path)
    assert built == []


def test_architecture_mismatch_is_one_line_naming_the_file(tmp_path, tiny_net):
    path = _crafted(tmp_path / "liar.safetensors", tiny_net, depth=3)  # tiny_net has depth 2
    with pytest.raises(ValueError, match="liar.safetensors: its tensors do not match its metadata") as info:
        load_network(path)
    assert "\n" not in str(info.value)
    assert "missing (e.g. blocks.2." in str(info.value)
    path = _crafted(tmp_path / "wide.safetensors", tiny_net, width=16)
    with pytest.raises(ValueError, match=r"of another shape \(e.g. conv_in.weight") as info:
        load_network(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_an_error(tmp_path, tiny_net, value):
    with torch.no_grad():
        tiny_net.blocks[0].conv1.weight[0, 0, 0, 0] = value
    path = save_weights(tiny_net, tmp_path / "nan.safetensors", kind="intensity")
    with pytest.raises(ValueError, match=r"nan.safetensors: tensor blocks.0.conv1.weight holds 1 NaN or infinite"):
        load_network(path)


@pytest.mark.parametrize(("depth", "width"), [(1, 8), (1, 32), (5, 64), (3, 5)])
def test_state_shapes_without_torch_are_the_networks(depth, width):
    """The torch-free list of tensors that weights files are checked against is EnhanceNet's state dict."""
    from enhance.models.architecture import state_shapes

    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in EnhanceNet(depth=depth, width=width).state_dict().items()}
    assert state_shapes(depth, width) == expected
