"""Nothing in an ONNX file is believed: its metadata and its graph are checked before any image runs through it.

`check_onnx_model` reads the file with the ``onnx`` package (part of the ``onnx`` extra, with onnxruntime) and
checks every metadata key the runners read against its bounds (the same checks as a safetensors file's,
`~enhance.models.architecture`) and against the graph itself: the graph holds only the operators this package
writes, its inputs, its layer count and its constants (the filter bank's noise levels, the noise unit) agree with
the metadata, and the margin is the one its depth and kernel size give. `check_probe` then runs the session on a
small probe and requires the x2 grid of the input back. Numpy and onnx only: PyTorch is never imported.
"""

import json
import math

import numpy as np

from ..models.architecture import (
    MAX_DEPTH,
    MAX_TAPS,
    MAX_WIDTH,
    WIENER_ENHANCE,
    check_bounded_integer,
    check_kind,
    check_noise_nodes,
    check_noise_unit,
    wiener_margin,
)
from ..models.registry import MODELS

__all__ = ["ENHANCE_FORMAT", "WIENER_FORMAT", "check_onnx_model", "check_probe", "PROBE_SHAPE"]

#: ``format`` metadata of the graphs `~enhance.runtime.export.onnx_graph` and
#: `~enhance.runtime.wiener_onnx.wiener_onnx_graph` write.
ENHANCE_FORMAT = "enhance-onnx-1"
WIENER_FORMAT = "enhance-wiener-onnx-1"
#: The operators each kind of graph is made of: anything else (``ConstantOfShape``, ``Tile``, ``Resize``,
#: ``Loop``, ...) is not a graph of this package and could allocate without bound.
_OPERATORS = {
    ENHANCE_FORMAT: {"Pad", "Conv", "Relu", "Add", "Slice", "Concat", "DepthToSpace"},
    WIENER_FORMAT: {"Abs", "Add", "Clip", "Concat", "Conv", "DepthToSpace", "Div", "Expand", "Log", "MatMul", "Mul",
                    "Neg", "Relu", "Reshape", "Shape", "Slice", "Split", "Sub", "Unsqueeze",
                    # the offset of the linear stage (`wiener_onnx._median_nodes`): the median of a sample
                    "Gather", "IsInf", "IsNaN", "Less", "Not", "Or", "ReduceMin", "TopK", "Where"},
}  # fmt: skip
_INPUTS = {ENHANCE_FORMAT: ["image"], WIENER_FORMAT: ["image", "noise"]}
#: The metadata every file of each format holds ('kind' may be empty: a network exported without one).
_REQUIRED = {
    ENHANCE_FORMAT: ("depth", "width", "kind"),
    WIENER_FORMAT: ("architecture", "depth", "width", "taps", "noise_nodes", "noise_unit", "margin", "kind",
                    "symmetric"),
}  # fmt: skip
#: Input pixels (rows, columns) of the probe image every graph is run on before it is used.
PROBE_SHAPE = (12, 10)


def _fail(name, text):
    msg = f"{name}: {text}"
    raise ValueError(msg)


def _parse(data: bytes, name: str):
    try:
        import onnx
    except ImportError as err:
        msg = "the onnx package is needed to check an ONNX file before it runs; install it with: pip install " \
              "'solar-enhance[onnx]'"  # fmt: skip
        raise ImportError(msg) from err
    try:
        return onnx.load_model_from_string(data)
    except Exception as err:  # noqa: BLE001 - protobuf raises its own types for damaged files
        _fail(name, f"is not a readable ONNX model: {str(err).strip().splitlines()[0] if str(err).strip() else err}")


def _check_nodes(model, fmt: str, name: str, constants: dict) -> None:
    """Only this package's operators, with bounded attributes: no node may allocate more than its input's size."""
    allowed = _OPERATORS[fmt]
    made_by = {output: node.op_type for node in model.graph.node for output in node.output}
    for node in model.graph.node:
        if node.op_type not in allowed or node.domain not in ("", "ai.onnx"):
            _fail(name, f"its graph holds a {node.op_type!r} node, which no graph of solar-enhance has")
        attributes = {a.name: a for a in node.attribute}
        if node.op_type == "DepthToSpace" and attributes["blocksize"].i != 2:
            _fail(name, f"its DepthToSpace node {node.name!r} has blocksize {attributes['blocksize'].i}, not 2")
        if node.op_type == "Pad":
            pads = constants.get(node.input[1]) if len(node.input) > 1 else None
            if pads is None or pads.size != 8 or not np.isin(pads, (0, 1)).all():
                found = None if pads is None else pads.tolist()
                _fail(name, f"its Pad node {node.name!r} pads by {found}, not by 1 pixel")
        if node.op_type == "Expand" and made_by.get(node.input[1]) != "Shape":
            _fail(name, f"its Expand node {node.name!r} takes a shape that is not its image's (a Shape node's)")
        if node.op_type == "Conv" and any(a in attributes for a in ("dilations", "strides", "pads", "group")):
            _fail(name, f"its Conv node {node.name!r} has attributes no graph of solar-enhance sets")


def _constants(model, name) -> dict:
    from onnx import numpy_helper

    arrays = {}
    for init in model.graph.initializer:
        try:
            arrays[init.name] = numpy_helper.to_array(init)
        except Exception:  # noqa: BLE001 - external data: not a file of this package
            _fail(name, f"its tensor {init.name!r} is stored outside the file")
    return arrays


def _check_finite(constants: dict, name: str) -> None:
    for key, array in constants.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            _fail(name, f"tensor {key} holds {bad} NaN or infinite values; the network would give NaN")


def _shape(constants, key, name):
    if key not in constants:
        _fail(name, f"its graph lacks the tensor {key!r} of a network of solar-enhance")
    return tuple(constants[key].shape)


def _check_enhance(meta, constants, name) -> dict:
    depth = check_bounded_integer(meta, "depth", MAX_DEPTH, name=name)
    width = check_bounded_integer(meta, "width", MAX_WIDTH, name=name)
    if _shape(constants, "conv_in.weight", name) != (width, 1, 3, 3):
        _fail(name, f"metadata width={meta['width']!r} does not match the graph's conv_in "
                    f"{_shape(constants, 'conv_in.weight', name)}")  # fmt: skip
    blocks = sum(key.endswith(".conv1.weight") and key.startswith("blocks.") for key in constants)
    if blocks != depth:
        _fail(name, f"metadata depth={meta['depth']!r} does not match the graph's {blocks} residual blocks")
    return {"depth": depth, "width": width}


def _check_wiener(meta, constants, name) -> dict:
    values = {key: check_bounded_integer(meta, key, bound, name=name) for key, bound in
              (("depth", MAX_DEPTH), ("width", MAX_WIDTH), ("taps", MAX_TAPS), ("margin", 1000))}  # fmt: skip
    nodes, unit = check_noise_nodes(meta, name=name), check_noise_unit(meta, name=name)
    depth, width, taps = values["depth"], values["width"], values["taps"]
    if values["margin"] != wiener_margin(depth, taps):
        _fail(name, f"metadata margin={meta['margin']!r} is not the margin of depth {depth} and taps {taps} "
                    f"({wiener_margin(depth, taps)})")  # fmt: skip
    if meta.get("symmetric") not in ("True", "False"):
        _fail(name, f"metadata symmetric={meta.get('symmetric')!r} is not 'True' or 'False'")
    checks = {"filters": (len(nodes), 4 * taps * taps), "conv_in.weight": (width, 6, 3, 3),
              "log_nodes": (1, len(nodes))}  # fmt: skip
    for key, shape in checks.items():
        if _shape(constants, key, name) != shape:
            _fail(name, f"its metadata (depth, width, taps, noise_nodes) does not match its tensor {key} "
                        f"{_shape(constants, key, name)}")  # fmt: skip
    blocks = sum(key.startswith("blocks.") and key.endswith(".0.weight") for key in constants)
    if blocks != depth:
        _fail(name, f"metadata depth={meta['depth']!r} does not match the graph's {blocks} residual blocks")
    if not np.allclose(constants["log_nodes"].ravel(), np.log(nodes), rtol=0, atol=1e-5):
        _fail(name, f"metadata noise_nodes={meta['noise_nodes']!r} are not the graph's filter-bank levels")
    if not math.isclose(float(_scalar(constants, "noise_unit", name)), unit, rel_tol=1e-5):
        _fail(name, f"metadata noise_unit={meta['noise_unit']!r} is not the graph's noise unit")
    flags = {}
    for key, tensor, shape in (("exact_constants", "flat.conv_in.weight", (width, 2, 1, 1)),
                               ("odd", "half", (1,))):  # fmt: skip
        text = meta.get(key, "False")  # absent in files written before the option existed
        if text not in ("True", "False"):
            _fail(name, f"metadata {key}={text!r} is not 'True' or 'False'")
        flags[key] = text == "True"
        if flags[key] != (tensor in constants) or (flags[key] and _shape(constants, tensor, name) != shape):
            _fail(name, f"metadata {key}={text!r} does not match the graph")
    return {**values, "noise_nodes": nodes, "noise_unit": unit, "symmetric": meta["symmetric"] == "True", **flags}


def _scalar(constants, key, name):
    if key not in constants or constants[key].size != 1:
        _fail(name, f"its graph lacks the scalar {key!r} of a Wiener-Enhance network")
    return constants[key].ravel()[0]


def _check_card(meta, kind, checked, name) -> None:
    """The model card (when recorded) must tell the same kind, and for 'full' and 'light' the same symmetry."""
    if "model_card" not in meta:
        return
    try:
        card = json.loads(meta["model_card"])
    except ValueError:
        _fail(name, "metadata model_card is not JSON")
    if not isinstance(card, dict):
        _fail(name, "metadata model_card is not a JSON object")
    if card.get("kind") is not None and card.get("kind") != kind:
        _fail(name, f"metadata kind={kind!r} disagrees with its model card's kind {card.get('kind')!r}")
    model = card.get("variant")  # the card's key for the model's name
    if "symmetric" in checked and model in MODELS and MODELS[model].symmetric != checked["symmetric"]:
        _fail(name, f"metadata symmetric={meta['symmetric']!r} disagrees with its model card's {model!r} model")


def check_onnx_model(data: bytes, name: str) -> dict:
    """Every metadata key of an ONNX network that the runners read, checked against its bounds and its graph.

    Parameters
    ----------
    data : bytes
        The serialised model.
    name : str
        The file (for the messages).

    Returns
    -------
    dict
        The checked values: ``format``, ``kind`` (None when not recorded), ``depth``, ``width``; for a
        Wiener-Enhance graph also ``taps``, ``margin``, ``noise_nodes``, ``noise_unit``, ``symmetric``.

    Raises
    ------
    ValueError
        One line naming the file and the key: a key missing, of the wrong type or out of bounds, or a value the
        graph contradicts; an operator no graph of this package holds; NaN or infinite weights.

    Examples
    --------
    >>> from enhance.models.registry import shipped_path
    >>> from enhance.runtime.export import onnx_from_weights
    >>> graph = onnx_from_weights(shipped_path("blos", "light"), kind="blos").SerializeToString()
    >>> checked = check_onnx_model(graph, "light.onnx")
    >>> checked["margin"], checked["symmetric"], checked["kind"]
    (18, False, 'blos')
    """
    model = _parse(data, name)
    meta = {prop.key: prop.value for prop in model.metadata_props}
    if "format" not in meta:
        _fail(name, "its metadata lacks the key 'format': not an ONNX file written by solar-enhance")
    fmt = meta["format"]
    if fmt not in _OPERATORS:
        _fail(name, f"metadata format={fmt!r} is not one of solar-enhance's ({ENHANCE_FORMAT}, {WIENER_FORMAT})")
    for key in _REQUIRED[fmt]:
        if key not in meta:
            _fail(name, f"its metadata lacks the key {key!r} (a damaged file, or not one of solar-enhance)")
    if (meta.get("architecture") == WIENER_ENHANCE) != (fmt == WIENER_FORMAT):
        _fail(name, f"metadata architecture={meta.get('architecture')!r} disagrees with format={fmt!r}")
    inputs = [i.name for i in model.graph.input if i.name not in {init.name for init in model.graph.initializer}]
    outputs = [o.name for o in model.graph.output]
    if inputs != _INPUTS[fmt] or outputs != ["enhanced"]:
        _fail(name, f"its graph takes {inputs} and gives {outputs}, not {_INPUTS[fmt]} and ['enhanced']")
    constants = _constants(model, name)
    _check_nodes(model, fmt, name, constants)
    _check_finite(constants, name)
    kind = check_kind(meta, name=name, required=False)
    checked = (_check_wiener if fmt == WIENER_FORMAT else _check_enhance)(meta, constants, name)
    _check_card(meta, kind, checked, name)
    return {"format": fmt, "kind": kind, **checked}


def check_probe(network, name: str) -> None:
    """Run ``network`` (an `~enhance.runtime.export.OnnxNetwork`, bound to a noise level if it needs one) on a
    probe of `PROBE_SHAPE` pixels: its output must be the x2 grid of the input, and finite.

    Parameters
    ----------
    network : callable
        Takes a ``(1, 1, ny, nx)`` float32 array and returns the ``(1, 1, 2 ny, 2 nx)`` output.
    name : str
        The file, for the messages.

    Raises
    ------
    ValueError
        Naming the file and the shapes, when the graph gives anything else.

    Examples
    --------
    >>> check_probe(lambda x: x.repeat(2, axis=2).repeat(2, axis=3), "x2.onnx")
    >>> check_probe(lambda x: x, "same.onnx")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: same.onnx: its graph turns a 12 x 10 probe into (12, 10), not the x2 grid (24, 20): ...
    """
    ny, nx = PROBE_SHAPE
    probe = (1 + 0.01 * np.add.outer(np.arange(ny), np.arange(nx))).astype(np.float32)[None, None]
    try:
        out = network(probe)
    except Exception as err:  # noqa: BLE001 - onnxruntime's own errors: the graph does not run
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        _fail(name, f"its graph does not run on a {ny} x {nx} probe: {text}")
    shape = tuple(np.shape(out))
    if shape != (1, 1, 2 * ny, 2 * nx):
        _fail(name, f"its graph turns a {ny} x {nx} probe into {shape[2:] if len(shape) == 4 else shape}, not the "
                    f"x2 grid {(2 * ny, 2 * nx)}: its metadata (margin) or graph is not solar-enhance's")  # fmt: skip
    if not np.isfinite(out).all():
        _fail(name, f"its graph gives non-finite values on a {ny} x {nx} probe")
