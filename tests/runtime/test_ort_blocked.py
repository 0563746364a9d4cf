"""onnxruntime's blocked layout kept through padding and residual sums: the rewritten session gives the plain
session's output to 1e-5, or is not used at all."""

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from enhance.models.network import EnhanceNet  # noqa: E402
from enhance.runtime.export import onnx_model  # noqa: E402
from enhance.runtime.ort_blocked import blocked_graph, blocked_session  # noqa: E402

NCHWC = "com.microsoft.nchwc"


def _trained_looking(net, seed):
    """``net`` in eval mode with every BatchNorm given non-trivial statistics and affine terms, as after training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                module.weight.normal_(1.0, 0.2, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
    return net.eval()


def _model(width, seed=0):
    torch.manual_seed(seed)
    return onnx_model(_trained_looking(EnhanceNet(depth=2, width=width), seed=seed + 1)).SerializeToString()


def _plain(model):
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("width", [8, 16])
def test_the_blocked_session_equals_the_plain_one(width):
    model = _model(width)
    plain = _plain(model)
    found = blocked_session(model, ort.SessionOptions(), reference=plain)
    if found is None:
        pytest.skip("onnxruntime chose no blocked layout on this CPU: the plain session is kept")
    session, rewritten = found
    batch = (1 + 0.3 * np.random.default_rng(2).standard_normal((2, 1, 23, 31))).astype(np.float32)
    expected = plain.run(None, {"image": batch})[0]
    got = session.run(None, {session.get_inputs()[0].name: batch})[0]
    assert got.shape == (2, 1, 46, 62)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * max(1.0, float(np.abs(expected).max())))
    # the rewritten bytes kept (a cache) open to the same session, bit for bit, without rewriting again
    again, kept = blocked_session(model, ort.SessionOptions(), reference=plain, rewritten=rewritten)
    assert kept is rewritten
    np.testing.assert_array_equal(again.run(None, {again.get_inputs()[0].name: batch})[0], got)


def test_kept_rewritten_bytes_of_another_network_are_not_used():
    model, other = _model(16), _model(16, seed=5)
    found = blocked_session(other, ort.SessionOptions(), reference=_plain(other))
    if found is None:
        pytest.skip("onnxruntime chose no blocked layout on this CPU")
    assert blocked_session(model, ort.SessionOptions(), reference=_plain(model), rewritten=found[1]) is None
    assert blocked_session(model, ort.SessionOptions(), reference=_plain(model), rewritten=b"damaged") is None


def test_the_rewritten_graph_keeps_padding_in_the_blocked_layout():
    graph = blocked_graph(_model(16))
    if graph is None:
        pytest.skip("onnxruntime chose no blocked layout on this CPU")
    producer = {name: node for node in graph.graph.node for name in node.output}
    for node in graph.graph.node:
        if node.domain == NCHWC and node.op_type == "ReorderInput":
            source = producer.get(node.input[0])
            assert source is None or source.op_type != "Pad", "a Pad still leaves the blocked layout"
    fused = [n for n in graph.graph.node if n.domain == NCHWC and n.op_type == "Conv" and len(n.input) > 3]
    assert len(fused) >= 2  # the residual sums of both blocks ride on their convolutions
    assert ("", "Add") not in {(n.domain, n.op_type) for n in graph.graph.node}


def test_a_session_that_disagrees_with_its_reference_is_not_used():
    other = _plain(_model(16, seed=5))  # another network's plain session: the probe cannot agree
    assert blocked_session(_model(16), ort.SessionOptions(), reference=other) is None


def test_a_graph_that_cannot_be_rewritten_keeps_the_plain_session():
    assert blocked_session(b"not an onnx model", ort.SessionOptions(), reference=None) is None
    shape = ["n", 1, "ny", "nx"]
    relu = helper.make_graph([helper.make_node("Relu", ["image"], ["enhanced"])], "relu",
                             [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
                             [helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, shape)])  # fmt: skip
    model = helper.make_model(relu, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert blocked_graph(model) is None  # no convolution: nothing in a blocked layout
    assert blocked_session(model, ort.SessionOptions(), reference=_plain(model)) is None
