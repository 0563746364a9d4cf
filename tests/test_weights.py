import pytest
import torch

from enhance.exceptions import ModelNotTrainedError
from enhance.network import EnhanceNet
from enhance.weights import load_network, load_weights, save_weights


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


def test_unknown_model_names():
    with pytest.raises(ValueError, match="kind must be one of"):
        load_weights("doppler", "full")
    with pytest.raises(ValueError, match="model must be one of"):
        load_weights("intensity", "huge")
    with pytest.raises(ModelNotTrainedError):
        load_weights("intensity", "light")
