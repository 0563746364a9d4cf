"""Nothing in an ONNX file is believed: a graph with an operator this package never writes, or metadata the graph
contradicts, is refused with one line naming the file, before onnxruntime ever opens it."""

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

from enhance.models.architecture import wiener_margin  # noqa: E402
from enhance.models.hybrid import NOISE_NODES, WienerEnhanceNet  # noqa: E402
from enhance.models.network import EnhanceNet  # noqa: E402
from enhance.runtime.export import onnx_model  # noqa: E402
from enhance.runtime.onnx_checks import (  # noqa: E402
    ENHANCE_FORMAT,
    PROBE_SHAPE,
    WIENER_FORMAT,
    check_onnx_model,
    check_probe,
)
from enhance.runtime.wiener_onnx import wiener_graph_from_network  # noqa: E402

NAME = "crafted.onnx"


def _enhance():
    torch.manual_seed(0)
    return onnx_model(EnhanceNet(depth=1, width=8), kind="blos")


def _wiener():
    torch.manual_seed(0)
    return wiener_graph_from_network(WienerEnhanceNet(depth=1, width=4, taps=5), kind="intensity")


def _set_meta(model, **changes):
    props = {p.key: p.value for p in model.metadata_props}
    props.update(changes)
    del model.metadata_props[:]
    helper.set_model_props(model, {k: v for k, v in props.items() if v is not None})


def _initializer(model, name, array):
    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.asarray(array), name))
            return
    raise KeyError(name)


def _node(model, op):
    return next(n for n in model.graph.node if n.op_type == op)


def test_a_graph_of_this_package_passes_with_its_checked_values():
    assert check_onnx_model(_enhance().SerializeToString(), NAME) == {
        "format": ENHANCE_FORMAT, "kind": "blos", "depth": 1, "width": 8}  # fmt: skip
    checked = check_onnx_model(_wiener().SerializeToString(), NAME)
    assert checked["format"] == WIENER_FORMAT
    assert checked["margin"] == wiener_margin(1, 5) == 5 // 2 + 2 * 1 + 2
    assert (checked["depth"], checked["width"], checked["taps"]) == (1, 4, 5)
    assert tuple(checked["noise_nodes"]) == tuple(NOISE_NODES)
    assert checked["symmetric"] is False


def _foreign_operator(model):
    model.graph.node.append(helper.make_node("Tile", ["enhanced", "reps"], ["tiled"]))


def _foreign_domain(model):
    _node(model, "Relu").domain = "com.microsoft"


def _depth_to_space_by_4(model):
    node = _node(model, "DepthToSpace")
    del node.attribute[:]
    node.attribute.append(helper.make_attribute("blocksize", 4))


def _strided_conv(model):
    _node(model, "Conv").attribute.append(helper.make_attribute("strides", [2, 2]))


def _pad_by_two(model):
    _initializer(model, "pads_1", np.array([0, 0, 2, 2, 0, 0, 2, 2], np.int64))


def _nan_weight(model):
    weight = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "conv_in.weight")).copy()
    weight[0, 0, 1, 1] = np.nan
    _initializer(model, "conv_in.weight", weight)


def _renamed_input(model):
    model.graph.input[0].name = "x"


def _renamed_output(model):
    model.graph.output[0].name = "y"


ENHANCE_CASES = {
    "foreign operator": (_foreign_operator, "its graph holds a 'Tile' node, which no graph of solar-enhance has"),
    "foreign domain": (_foreign_domain, "its graph holds a 'Relu' node"),
    "DepthToSpace by 4": (_depth_to_space_by_4, "has blocksize 4, not 2"),
    "strided Conv": (_strided_conv, "has attributes no graph of solar-enhance sets"),
    "Pad by 2": (_pad_by_two, "pads by [0, 0, 2, 2, 0, 0, 2, 2], not by 1 pixel"),
    "NaN weight": (_nan_weight, "tensor conv_in.weight holds 1 NaN or infinite values"),
    "renamed input": (_renamed_input, "its graph takes ['x'] and gives ['enhanced'], not ['image'] and ['enhanced']"),
    "renamed output": (_renamed_output, "gives ['y']"),
    "lying width": (lambda m: _set_meta(m, width="16"), "metadata width='16' does not match the graph's conv_in"),
    "lying depth": (lambda m: _set_meta(m, depth="2"), "metadata depth='2' does not match the graph's 1 residual"),
    "no format": (lambda m: _set_meta(m, format=None), "lacks the key 'format': not an ONNX file written by"),
    "other format": (lambda m: _set_meta(m, format="enhance-onnx-9"), "metadata format='enhance-onnx-9' is not one"),
    "no width": (lambda m: _set_meta(m, width=None), "lacks the key 'width'"),
    "card of another kind": (lambda m: _set_meta(m, model_card=json.dumps({"kind": "intensity"})),
                             "metadata kind='blos' disagrees with its model card's kind 'intensity'"),
    "card not JSON": (lambda m: _set_meta(m, model_card="{kind"), "metadata model_card is not JSON"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ENHANCE_CASES))
def test_a_crafted_enhance_graph_is_refused_in_one_line_naming_the_file(case):
    change, words = ENHANCE_CASES[case]
    model = _enhance()
    change(model)
    with pytest.raises(ValueError, match="^crafted.onnx: ") as info:
        check_onnx_model(model.SerializeToString(), NAME)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def _fixed_expand(model):
    _node(model, "Expand").input[1] = "kernel_shape"  # an initializer: a shape fixed in the file


def _made_expand(model):
    """A fixed shape passed through an allowed node (Where, Add) so that a node produces it: 1e6 x 1e6 pixels."""
    graph = model.graph
    graph.initializer.extend([numpy_helper.from_array(np.array([1, 1, 10**6, 10**6], np.int64), "huge"),
                              numpy_helper.from_array(np.zeros(4, np.int64), "zeros")])  # fmt: skip
    graph.node.append(helper.make_node("Add", ["huge", "zeros"], ["huge_made"], name="huge_made"))
    _node(model, "Expand").input[1] = "huge_made"


WIENER_CASES = {
    "fixed Expand": (_fixed_expand, "takes a shape that is not its image's (a Shape node's)"),
    "made Expand": (_made_expand, "takes a shape that is not its image's (a Shape node's)"),
    "lying odd": (lambda m: _set_meta(m, odd="True"), "metadata odd='True' does not match the graph"),
    "lying exact_constants": (lambda m: _set_meta(m, exact_constants="yes"), "exact_constants='yes' is not 'True'"),
    "lying noise unit": (lambda m: _initializer(m, "noise_unit", np.array([2e-3], np.float32)),
                         "metadata noise_unit='0.001' is not the graph's noise unit"),
    "lying nodes": (lambda m: _initializer(m, "log_nodes", np.log(2 * np.array([NOISE_NODES], np.float32))),
                    "are not the graph's filter-bank levels"),
    "card of the symmetric model": (lambda m: _set_meta(m, model_card=json.dumps({"variant": "full"})),
                                    "metadata symmetric='False' disagrees with its model card's 'full' model"),
    "architecture of the paper": (lambda m: _set_meta(m, architecture="enhance"),
                                  "metadata architecture='enhance' disagrees with format='enhance-wiener-onnx-1'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(WIENER_CASES))
def test_a_crafted_wiener_graph_is_refused_in_one_line_naming_the_file(case):
    change, words = WIENER_CASES[case]
    model = _wiener()
    change(model)
    with pytest.raises(ValueError, match="^crafted.onnx: ") as info:
        check_onnx_model(model.SerializeToString(), NAME)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_bytes_that_are_no_onnx_model_are_refused_in_one_line():
    with pytest.raises(ValueError, match="^notes.onnx: is not a readable ONNX model") as info:
        check_onnx_model(b"this is not protobuf \xff\xfe" * 10, "notes.onnx")
    assert "\n" not in str(info.value)


def test_a_tensor_stored_outside_the_file_is_refused():
    model = _enhance()
    init = next(i for i in model.graph.initializer if i.name == "conv_in.weight")
    init.ClearField("raw_data")
    init.data_location = onnx.TensorProto.EXTERNAL
    init.external_data.add(key="location", value="/etc/elsewhere.bin")
    with pytest.raises(ValueError, match="crafted.onnx: its tensor 'conv_in.weight' is stored outside the file"):
        check_onnx_model(model.SerializeToString(), NAME)


def _x2(batch):
    return batch.repeat(2, axis=2).repeat(2, axis=3)


def test_the_probe_wants_the_x2_grid_finite_from_a_graph_that_runs():
    seen = []
    check_probe(lambda batch: seen.append(batch.shape) or _x2(batch), "ok.onnx")
    assert seen == [(1, 1, *PROBE_SHAPE)]

    def broken(batch):
        msg = "Non-zero status code returned while running Conv node\nsecond line"
        raise RuntimeError(msg)

    cases = [
        (broken, "b.onnx: its graph does not run on a 12 x 10 probe: Non-zero status code returned while running"),
        (lambda batch: _x2(batch)[:, :, :-1], "b.onnx: its graph turns a 12 x 10 probe into (23, 20), not the x2"),
        (lambda batch: _x2(batch)[0], "b.onnx: its graph turns a 12 x 10 probe into (1, 24, 20)"),
        (lambda batch: _x2(batch) * np.inf, "b.onnx: its graph gives non-finite values on a 12 x 10 probe"),
    ]
    for network, words in cases:
        with pytest.raises(ValueError, match="^b.onnx: ") as info:
            check_probe(network, "b.onnx")
        assert str(info.value).startswith(words)
        assert "\n" not in str(info.value)
