"""The onnxruntime runner: the output of a tiny random network equals PyTorch's, from bytes or a file; bad batches
and crafted files are refused in one line; every exported file carries the rules that reproduce ``enhance run``."""

import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from enhance.runtime.export import onnx_model  # noqa: E402
from enhance.runtime.onnx_runner import OPSET, OnnxNetwork, inference_metadata  # noqa: E402


def _batch(shape, seed=0):
    return (1 + 0.2 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _torch(net, batch):
    with torch.no_grad():
        return net.eval()(torch.from_numpy(batch)).numpy()


@pytest.mark.parametrize("blocked", [False, True])
def test_the_runner_equals_the_torch_network(tiny_net, blocked):
    runner = OnnxNetwork(onnx_model(tiny_net, kind="intensity").SerializeToString(), threads=1, blocked=blocked)
    batch = _batch((3, 1, 15, 22))
    out = runner(batch)
    assert out.shape == (3, 1, 30, 44)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _torch(tiny_net, batch), rtol=0, atol=1e-5)
    assert runner.layout in (("plain", "blocked") if blocked else ("plain",))


def test_the_runner_reads_a_file_and_reports_what_it_holds(tmp_path, tiny_net):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(onnx_model(tiny_net, kind="blos", metadata=inference_metadata("blos")).SerializeToString())
    runner = OnnxNetwork(path, threads=1)
    assert (runner.depth, runner.width, runner.kind) == (2, 8, "blos")
    assert runner.name == str(path)
    assert runner.metadata["normalisation"] == inference_metadata("blos")["normalisation"]
    assert repr(runner) == "OnnxNetwork(depth=2, width=8, kind='blos')"
    batch = _batch((1, 1, 9, 7), seed=1).astype(np.float64)  # converted to float32
    np.testing.assert_allclose(runner(batch), _torch(tiny_net, batch.astype(np.float32)), rtol=0, atol=1e-5)


def test_the_graph_is_written_at_the_documented_opset(tiny_net):
    opsets = {o.domain: o.version for o in onnx_model(tiny_net).opset_import}
    assert opsets[""] == OPSET == 17


def test_batches_of_the_wrong_shape_are_refused_in_one_line(tiny_net):
    runner = OnnxNetwork(onnx_model(tiny_net).SerializeToString(), threads=1, blocked=False)
    for shape in ((8, 8), (1, 2, 8, 8), (1, 8, 8)):
        with pytest.raises(ValueError, match=r"batch must have shape \(n, 1, ny, nx\), got") as info:
            runner(np.zeros(shape, np.float32))
        assert "\n" not in str(info.value)


def test_a_crafted_file_is_refused_naming_it_before_a_session_opens(tmp_path, tiny_net):
    from onnx import helper

    model = onnx_model(tiny_net)
    props = {p.key: p.value for p in model.metadata_props}
    del model.metadata_props[:]
    helper.set_model_props(model, {**props, "depth": "3"})
    path = tmp_path / "lying.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ValueError, match=r"lying.onnx: metadata depth='3' does not match the graph's 2 residual"):
        OnnxNetwork(path)


def test_without_onnxruntime_the_error_says_how_to_install_it(monkeypatch, tiny_net):
    data = onnx_model(tiny_net).SerializeToString()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(ImportError, match=r"onnxruntime is needed.*pip install 'solar-enhance\[onnx\]'"):
        OnnxNetwork(data)


def test_inference_metadata_holds_the_rules_of_each_kind_and_the_card():
    common = {"missing_pixels", "pixel_scale", "reference"}
    assert set(inference_metadata(None)) == common
    for kind, unit in (("intensity", "I/Ic"), ("blos", "kG")):
        rules = inference_metadata(kind)
        assert set(rules) == common | {"units", "normalisation"}
        assert unit in rules["units"]
    assert "0.504 arcsec" in rules["pixel_scale"]
    assert "0.252 arcsec" in rules["pixel_scale"]
    card = {"variant": "light", "kind": "blos", "metrics": {"psnr": 40.0}}
    stored = inference_metadata("blos", card=card)["model_card"]
    assert json.loads(stored) == card
    assert stored == json.dumps(card, sort_keys=True)
    assert all(isinstance(value, str) for value in inference_metadata("blos", card=card).values())
