"""Fuzz of the metadata of network files: every key a runner reads, missing, of the wrong type, out of bounds and
lying (contradicted by the tensors, the graph or the model card), in safetensors and ONNX files.

Each crafted file is refused with one line naming the file, before any image runs: on the PyTorch path
(`load_network`, ``enhance run --weights``) and on the onnxruntime path (`onnx_from_weights`, `OnnxNetwork`),
which must refuse the same files with the same message. This module imports no torch at its top: the torch-free
path is also run in a subprocess where ``import torch`` fails.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from enhance.models.registry import model_card, shipped_path  # noqa: E402

HERE = Path(__file__).resolve()
NODES = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]

#: (case, key, value or None to remove it) for the Wiener-Enhance weights of the shipped blos 'light' model.
WIENER_CASES = [
    ("missing", "depth", None), ("type", "depth", "three"), ("bounds", "depth", "0"), ("bounds", "depth", "65"),
    ("lying", "depth", "2"),
    ("missing", "width", None), ("type", "width", "3.5"), ("bounds", "width", "100000"), ("lying", "width", "16"),
    ("missing", "taps", None), ("type", "taps", "[21]"), ("bounds", "taps", "0"), ("bounds", "taps", "64"),
    ("bounds", "taps", "20"), ("lying", "taps", "19"),
    ("missing", "noise_nodes", None), ("type", "noise_nodes", "0.25"), ("type", "noise_nodes", "not json"),
    ("type", "noise_nodes", '{"a": 1}'), ("bounds", "noise_nodes", "[1]"), ("bounds", "noise_nodes", "[-1, 1]"),
    ("bounds", "noise_nodes", "[NaN, 1]"), ("bounds", "noise_nodes", json.dumps([2.0**k for k in range(40)])),
    ("lying", "noise_nodes", json.dumps(NODES[::-1])), ("lying", "noise_nodes", "[1, 2, 3, 4, 5, 6, 7, 8]"),
    ("lying", "noise_nodes", "[1, 2, 4]"),
    ("missing", "noise_unit", None), ("type", "noise_unit", "ten"), ("bounds", "noise_unit", "0"),
    ("bounds", "noise_unit", "inf"), ("bounds", "noise_unit", "1e30"), ("bounds", "noise_unit", "-0.01"),
    ("bounds", "noise_unit", "nan"), ("lying", "noise_unit", "0.001"),
    ("missing", "kind", None), ("type", "kind", ""), ("bounds", "kind", "dopplergram"), ("lying", "kind", "intensity"),
    ("type", "architecture", "WIENER"), ("lying", "architecture", "enhance"),
]  # fmt: skip
#: The same for the paper's light network (shipped continuum 'paper-light' weights).
ENHANCE_CASES = [
    ("missing", "depth", None), ("type", "depth", "1.0"), ("bounds", "depth", "-1"), ("lying", "depth", "2"),
    ("missing", "width", None), ("type", "width", "32x"), ("bounds", "width", "513"), ("lying", "width", "64"),
    ("missing", "kind", None), ("bounds", "kind", "INTENSITY"), ("type", "architecture", "resnet"),
    ("lying", "architecture", "wiener-enhance"),
]  # fmt: skip
#: The same for ONNX files (exported with their model card): the keys the runners read, and the graph's own.
ONNX_WIENER_CASES = [
    *[case for case in WIENER_CASES if case[1] != "architecture"],
    ("missing", "margin", None), ("type", "margin", "18.0"), ("bounds", "margin", "20000"), ("bounds", "margin", "0"),
    ("lying", "margin", "60"), ("lying", "margin", "17"),
    ("missing", "symmetric", None), ("type", "symmetric", "1"), ("lying", "symmetric", "True"),
    ("missing", "format", None), ("bounds", "format", "enhance-onnx-2"), ("lying", "format", "enhance-onnx-1"),
    ("missing", "architecture", None), ("lying", "architecture", "enhance"),
    ("type", "model_card", "{not json"), ("type", "model_card", "[1, 2]"),
    ("lying", "model_card", json.dumps({"kind": "intensity", "variant": "light"})),
    ("lying", "model_card", json.dumps({"kind": "blos", "variant": "full"})),
]  # fmt: skip
ONNX_ENHANCE_CASES = [
    *[case for case in ENHANCE_CASES if case[1] not in ("architecture", "kind")],
    ("type", "kind", "I/Ic"), ("lying", "kind", "blos"),
    ("missing", "format", None), ("lying", "format", "enhance-wiener-onnx-1"),
    ("lying", "architecture", "wiener-enhance"),
]  # fmt: skip


def _ids(cases):
    return [f"{key}-{case}-{value}"[:60] for case, key, value in cases]


def altered_weights(folder, kind, model, key, value):
    """A shipped weights file with its metadata ``key`` set to ``value`` (None removes it), written with numpy."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(shipped_path(kind, model)), framework="numpy") as handle:
        meta = dict(handle.metadata())
        state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - not a dict
    if value is None:
        meta.pop(key, None)
    else:
        meta[key] = value
    path = Path(folder) / f"{model}_{key}.safetensors"
    save_file(state, str(path), metadata=meta)
    return path


def altered_onnx(folder, kind, model, key, value):
    """The ONNX graph of a shipped model (with its model card) with its metadata ``key`` set or removed."""
    import onnx

    from enhance.runtime.export import onnx_from_weights

    symmetric = model == "full"
    graph = onnx_from_weights(shipped_path(kind, model), kind=kind, card=model_card(kind, model), symmetric=symmetric)
    props = {prop.key: prop.value for prop in graph.metadata_props}
    if value is None:
        props.pop(key, None)
    else:
        props[key] = value
    del graph.metadata_props[:]
    onnx.helper.set_model_props(graph, props)
    path = Path(folder) / f"{model}_{key}.onnx"
    path.write_bytes(graph.SerializeToString())
    return path


def numpy_path_error(path) -> str:
    """The refusal of the onnxruntime path (no PyTorch): the graph built with numpy, then opened and probed."""
    from enhance.runtime.export import OnnxNetwork, onnx_from_weights
    from enhance.runtime.wiener_onnx import WienerOnnxNetwork

    try:
        if str(path).endswith(".onnx"):
            network = OnnxNetwork(path)
            if network.metadata.get("architecture") == "wiener-enhance":
                WienerOnnxNetwork.from_network(network)
        else:
            data = onnx_from_weights(path).SerializeToString()
            OnnxNetwork(data)
    except ValueError as err:
        return str(err)
    return "accepted"


def _one_line_naming(message, path):
    assert message != "accepted", f"{path} was accepted"
    assert "\n" not in message
    assert str(path) in message


@pytest.mark.parametrize(("case", "key", "value"), WIENER_CASES, ids=_ids(WIENER_CASES))
def test_wiener_weights_are_refused_alike_on_both_paths(tmp_path, case, key, value):
    from enhance.models.pretrained import load_network

    path = altered_weights(tmp_path, "blos", "light", key, value)
    with pytest.raises(ValueError, match="metadata|tensors") as info:
        load_network(path)
    _one_line_naming(str(info.value), path)
    assert numpy_path_error(path) == str(info.value)  # one validation for both paths
    if case == "missing":
        assert f"lacks the key {key!r}" in str(info.value)
    elif case in ("type", "bounds"):
        assert f"metadata {key}=" in str(info.value)


@pytest.mark.parametrize(("case", "key", "value"), ENHANCE_CASES, ids=_ids(ENHANCE_CASES))
def test_enhance_weights_are_refused_alike_on_both_paths(tmp_path, case, key, value):
    from enhance.models.pretrained import load_network

    path = altered_weights(tmp_path, "intensity", "paper-light", key, value)
    with pytest.raises(ValueError, match="metadata|tensors") as info:
        load_network(path)
    _one_line_naming(str(info.value), path)
    assert numpy_path_error(path) == str(info.value)
    if case == "missing":
        assert f"lacks the key {key!r}" in str(info.value)


@pytest.mark.parametrize(("case", "key", "value"), ONNX_WIENER_CASES, ids=_ids(ONNX_WIENER_CASES))
def test_wiener_onnx_metadata_is_checked_against_bounds_and_graph(tmp_path, case, key, value):
    path = altered_onnx(tmp_path, "blos", "light", key, value)
    message = numpy_path_error(path)
    _one_line_naming(message, path)
    if case == "missing":
        assert f"lacks the key {key!r}" in message


@pytest.mark.parametrize(("case", "key", "value"), ONNX_ENHANCE_CASES, ids=_ids(ONNX_ENHANCE_CASES))
def test_enhance_onnx_metadata_is_checked_against_bounds_and_graph(tmp_path, case, key, value):
    path = altered_onnx(tmp_path, "intensity", "paper-light", key, value)
    _one_line_naming(numpy_path_error(path), path)


@pytest.mark.parametrize(("key", "value"), [("margin", "60"), ("noise_unit", "1e30"), ("symmetric", "True"),
                                            ("noise_nodes", json.dumps(NODES[::-1]))])  # fmt: skip
def test_enhance_run_refuses_a_lying_onnx_file_before_any_work(tmp_path, capsys, key, value):
    """The torch install's command line (``--weights FILE.onnx``): exit 1, one line naming the file, no output."""
    from enhance.cli import main
    from enhance.data import sample_path

    path = altered_onnx(tmp_path, "blos", "light", key, value)
    out = tmp_path / "out.fits"
    assert main(["run", str(sample_path("blos")), "-o", str(out), "--weights", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(path) in err[0]
    assert not out.exists()


def _foreign(tmp_path, nodes, *, fmt="enhance-onnx-1", output_shape=None):
    """A small ONNX graph image -> enhanced made of ``nodes`` and labelled as this package's."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes[0], "foreign", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                              ["n", 1, "ny", "nx"])], [helper.make_tensor_value_info("enhanced", TensorProto.FLOAT,
                              output_shape)], initializer=nodes[1])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {"format": fmt, "depth": "1", "width": "8", "kind": "blos"})
    path = tmp_path / "foreign.onnx"
    onnx.save(model, str(path))
    return path


def test_foreign_graphs_are_refused_before_they_allocate(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from enhance.runtime.export import load_onnx

    identity = ([helper.make_node("Identity", ["image"], ["enhanced"])], [])
    with pytest.raises(ValueError, match="'Identity' node, which no graph of solar-enhance has"):
        load_onnx(_foreign(tmp_path, identity))
    huge = numpy_helper.from_array(np.array([1, 1, 200000, 200000], np.int64), "shape")
    allocating = ([helper.make_node("ConstantOfShape", ["shape"], ["enhanced"],
                                    value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]))], [huge])  # fmt: skip
    with pytest.raises(ValueError, match="'ConstantOfShape' node"):
        load_onnx(_foreign(tmp_path, allocating))
    pads = numpy_helper.from_array(np.array([0, 0, 3000, 3000, 0, 0, 3000, 3000], np.int64), "pads")
    padding = ([helper.make_node("Pad", ["image", "pads"], ["enhanced"], mode="reflect")], [pads])
    with pytest.raises(ValueError, match="pads by .*not by 1 pixel"):
        load_onnx(_foreign(tmp_path, padding))
    unlabelled = tmp_path / "unlabelled.onnx"
    unlabelled.write_bytes(_foreign(tmp_path, identity).read_bytes())
    import onnx

    model = onnx.load(str(unlabelled))
    del model.metadata_props[:]
    onnx.save(model, str(unlabelled))
    with pytest.raises(ValueError, match="lacks the key 'format': not an ONNX file written by solar-enhance"):
        load_onnx(unlabelled)


def test_a_graph_that_is_not_x2_is_refused_by_the_probe(tmp_path):
    """A graph of this package's operators that keeps the input's size: the probe's shape gives it away."""
    from onnx import helper, numpy_helper

    from enhance.runtime.export import load_onnx

    weight = numpy_helper.from_array(np.ones((8, 1, 3, 3), np.float32), "conv_in.weight")
    block = numpy_helper.from_array(np.ones((8, 8, 3, 3), np.float32), "blocks.0.conv1.weight")
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads_1")
    nodes = [helper.make_node("Pad", ["image", "pads_1"], ["padded"], mode="reflect"),
             helper.make_node("Conv", ["padded", "conv_in.weight"], ["features"]),
             helper.make_node("Slice", ["features", "zero", "one", "axis1"], ["enhanced"])]  # fmt: skip
    consts = [numpy_helper.from_array(np.array([v], np.int64), n) for n, v in (("zero", 0), ("one", 1), ("axis1", 1))]
    path = _foreign(tmp_path, (nodes, [weight, block, pads, *consts]))
    with pytest.raises(ValueError, match=r"turns a 12 x 10 probe into \(12, 10\), not the x2 grid \(24, 20\)"):
        load_onnx(path)


def test_the_torch_free_path_refuses_the_same_files_without_importing_torch(tmp_path):
    """Run the numpy/onnxruntime path in a process where ``import torch`` fails: the crafted safetensors files are
    refused there with the messages the PyTorch path gives."""
    from enhance.models.pretrained import load_network

    cases = [("blos", "light", key, value) for _, key, value in WIENER_CASES[::3]]
    cases += [("intensity", "paper-light", key, value) for _, key, value in ENHANCE_CASES[::2]]
    expected = []
    for i, (kind, model, key, value) in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        path = altered_weights(folder, kind, model, key, value)
        with pytest.raises(ValueError, match="metadata|tensors") as info:
            load_network(path)
        expected.append((str(path), str(info.value)))
    code = (
        "import json, sys\n"
        "sys.modules['torch'] = None  # import torch now fails\n"
        f"sys.path.insert(0, {str(HERE.parent)!r})\n"
        f"import {HERE.stem} as fuzz\n"
        f"paths = json.loads({json.dumps(json.dumps([p for p, _ in expected]))})\n"
        "print(json.dumps([fuzz.numpy_path_error(p) for p in paths]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == [message for _, message in expected]
