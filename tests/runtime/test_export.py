"""ONNX export: export -> load gives the network's output back, nothing is overwritten without overwrite=True,
the numpy-built graph of a weights file equals PyTorch's export, and damaged or mismatched files are refused."""

import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from enhance.data import data_dir as real_data_dir  # noqa: E402
from enhance.exceptions import ModelNotTrainedError  # noqa: E402
from enhance.models.hybrid import WienerEnhanceNet  # noqa: E402
from enhance.models.network import EnhanceNet  # noqa: E402
from enhance.models.registry import shipped_path  # noqa: E402
from enhance.runtime.export import (  # noqa: E402
    OnnxNetwork,
    export_onnx,
    export_shipped,
    export_weights,
    load_onnx,
    load_weights_file,
    onnx_from_weights,
    onnx_graph,
    onnx_model,
    shipped_onnx_network,
    torch_available,
)
from enhance.runtime.folding import fold_state  # noqa: E402
from enhance.runtime.wiener_onnx import WienerOnnxNetwork  # noqa: E402


def _batch(shape=(1, 1, 14, 11), seed=0):
    return (1 + 0.2 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _torch(net, batch):
    with torch.no_grad():
        return net.eval()(torch.from_numpy(batch)).numpy()


def test_export_then_load_gives_the_networks_output(tmp_path, tiny_net):
    path = export_onnx(tiny_net, tmp_path / "tiny.onnx", kind="intensity")
    runner = load_onnx(path)
    assert isinstance(runner, OnnxNetwork)
    assert (runner.kind, runner.depth, runner.width) == ("intensity", 2, 8)
    assert "quiet-Sun" in runner.metadata["normalisation"]  # the rules travel with the file
    batch = _batch((2, 1, 14, 11))
    np.testing.assert_allclose(runner(batch), _torch(tiny_net, batch), rtol=0, atol=1e-5)


def test_export_refuses_to_overwrite_without_overwrite(tmp_path, tiny_net):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(b"an older file")
    with pytest.raises(FileExistsError, match="tiny.onnx"):
        export_onnx(tiny_net, path)
    assert path.read_bytes() == b"an older file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]  # no temporary file left behind
    export_onnx(tiny_net, path, kind="blos", overwrite=True)
    assert load_onnx(path).kind == "blos"


def test_a_wiener_network_exports_to_a_runner_bound_to_its_noise(tmp_path):
    torch.manual_seed(0)
    net = WienerEnhanceNet(depth=1, width=4, taps=5).eval()
    with torch.no_grad():
        net.conv_out.weight.normal_(0, 0.1)  # not the untrained zero: the CNN contributes
    runner = load_onnx(export_onnx(net, tmp_path / "wiener.onnx", kind="intensity"))
    assert isinstance(runner, WienerOnnxNetwork)
    batch = _batch(seed=1)
    with torch.no_grad():
        expected = net.bind(2e-3)(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(runner.bind(2e-3)(batch), expected, rtol=0, atol=1e-5)


def test_the_numpy_graph_of_folded_arrays_equals_pytorchs_export(tiny_net):
    state = {name: value.numpy() for name, value in tiny_net.state_dict().items()}
    from_numpy = OnnxNetwork(onnx_graph(fold_state(state, depth=2), depth=2, width=8).SerializeToString(), threads=1)
    from_torch = OnnxNetwork(onnx_model(tiny_net).SerializeToString(), threads=1)
    batch = _batch(seed=2)
    np.testing.assert_allclose(from_numpy(batch), from_torch(batch), rtol=0, atol=1e-5)


def test_onnx_model_refuses_what_it_cannot_export():
    with pytest.raises(TypeError, match="network must be an EnhanceNet or a WienerEnhanceNet, got Conv2d"):
        onnx_model(torch.nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match="kind must be one of"):
        onnx_model(EnhanceNet(depth=1, width=2), kind="dopplergram")


def test_weights_files_become_the_same_graph_and_their_kind_is_checked(tmp_path, tiny_net, blos_weights):
    graph = onnx_from_weights(blos_weights)
    assert {p.key: p.value for p in graph.metadata_props}["kind"] == "blos"
    batch = _batch(seed=3)
    np.testing.assert_allclose(OnnxNetwork(graph.SerializeToString())(batch), _torch(tiny_net, batch), atol=1e-5)
    with pytest.raises(ValueError, match="tiny_blos.safetensors holds a 'blos' network, but kind='intensity'"):
        onnx_from_weights(blos_weights, kind="intensity")


def test_load_weights_file_checks_the_kind_of_an_onnx_file(tmp_path, tiny_net, weights):
    onnx_path = export_onnx(tiny_net, tmp_path / "blos.onnx", kind="blos")
    assert isinstance(load_weights_file(onnx_path, kind="blos"), OnnxNetwork)
    with pytest.raises(ValueError, match="blos.onnx holds a blos network, but the data are intensity"):
        load_weights_file(onnx_path, kind="intensity")
    assert isinstance(load_weights_file(weights, kind="intensity"), EnhanceNet if torch_available() else OnnxNetwork)
    with pytest.raises(FileNotFoundError, match="ONNX file not found"):
        load_onnx(tmp_path / "missing.onnx")


def test_export_weights_into_a_folder_keeps_the_files_record(tmp_path, weights, tiny_net):
    import json

    out = tmp_path / "out"
    out.mkdir()
    path = export_weights(weights, out)
    assert path == out / "tiny.onnx"
    runner = load_onnx(path)
    assert json.loads(runner.metadata["model_card"])["kind"] == "intensity"
    batch = _batch(seed=4)
    np.testing.assert_allclose(runner(batch), _torch(tiny_net, batch), rtol=0, atol=1e-5)
    with pytest.raises(FileExistsError):
        export_weights(weights, out)


def test_export_shipped_reports_each_model_it_could_not_write(tmp_path, no_shipped_models):
    written = export_shipped(tmp_path, kinds=("blos",), models=("full", "light"))
    assert [(model, kind) for model, kind, _ in written] == [("full", "blos"), ("light", "blos")]
    assert all(isinstance(result, ModelNotTrainedError) for _, _, result in written)
    assert list(tmp_path.iterdir()) == [no_shipped_models]  # nothing written beside the fixture's folder
    with pytest.raises(FileNotFoundError, match="out_dir must be an existing directory"):
        export_shipped(tmp_path / "nowhere")


def test_a_damaged_shipped_weights_file_is_refused_by_its_sha256(data_dir):
    for item in real_data_dir().iterdir():
        if item.is_file():
            shutil.copy(item, data_dir / item.name)
    path = shipped_path("blos", "light")
    assert path.parent == data_dir
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one bit pattern of the last tensor changed
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="has sha256 .* but the registry lists .*: the file is damaged") as info:
        shipped_onnx_network("blos", "light")
    assert "\n" not in str(info.value)


def test_torch_available_says_whether_torch_imports():
    assert torch_available() is True  # this file imports torch
