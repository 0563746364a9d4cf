"""ONNX graph of a `~enhance.models.hybrid.WienerEnhanceNet`, built with numpy, and its onnxruntime runner.

The graph has two inputs: ``image`` ``(n, 1, ny + 2 m, nx + 2 m)``, the normalised image already mirrored
by the network's margin ``m`` (numpy's ``'symmetric'`` padding; the ``margin`` metadata), and ``noise``
``(n,)``, the standard deviation of its noise per pixel in the same units (one image's tiles: the
first level serves the batch). Its output ``enhanced`` is ``(n, 1, 2 ny, 2 nx)``. Every convolution
is unpadded; the filter bank's weights for the noise level are computed in the graph (``Log``,
``Clip``, ``Abs``, ``Relu``) and blend the bank into one kernel per output phase (``MatMul``).
`WienerOnnxNetwork` pads, binds the noise level and averages over the 8 rotations and flips for the
'full' model, so that the pipeline runs it as it runs the PyTorch module; PyTorch is never imported.

How it runs fast on the CPU (``make bench``): the image is mirrored once, and bands or tiles are cut from
the mirrored image, so that neighbouring tiles share only the margins they need; each core runs
single-threaded onnxruntime calls on its own band, tile or pass (each keeps its activations in its own
cache); the residual crops and sums stay in onnxruntime's blocked layout
(`~enhance.runtime.ort_blocked`); and the passes read the linear stage's estimate from one filtering of the
image ('light''s one pass, and the 8 of 'full' with the 8 moved banks, `d4_bank`, instead of filtering each
moved image: a bank unchanged by the rotations and flips to float32 rounding, `d4_symmetric`, as the default
models' are, fitted on statistics over the 8 by `~enhance.training.linear_stage`, filters it once for all 8),
with the kernels for the image's noise level written into the graph as constants
(`~enhance.runtime.graph_template`); that filtering and the network's last convolution give the phases of
2 x 2 pixels at once (`paired_kernel`). A
network with exact constants runs without its response to constant images, which the runner subtracts in its
exact piecewise-linear form (`~enhance.runtime.constant_pieces`), once per pixel for 'full' (the mean over the
output phases is what its 8 passes subtract on average). The results are those of one whole-image pass, to a
few float32 steps.
"""

import collections
import concurrent.futures
import contextlib
import functools
import json
import math
import threading

import numpy as np

from .._version import __version__
from ..cores import needed_boxes, tile_counter
from ..grid import on_output_grid
from ..models.architecture import OFFSET_MIN_SIDE, OFFSET_STEP, WIENER_ENHANCE, check_weights_metadata
from ..models.runner import DIHEDRAL, dihedral_inverse, dihedral_transform, with_metadata
from .constant_pieces import ConstantResponse, flat_weights, summed_state
from .folding import check_finite_state, read_weights
from .graph_template import placeholder, with_weight
from .onnx_cache import cached_graph, open_in_kept_layout
from .onnx_checks import WIENER_FORMAT, check_probe
from .onnx_runner import OPSET, OnnxNetwork, inference_metadata, open_session

__all__ = [
    "wiener_onnx_graph",
    "WienerOnnxNetwork",
    "is_wiener_file",
    "wiener_graph_from_weights",
    "wiener_graph_from_network",
    "graph_filter_bank",
    "split_rows",
    "d4_bank",
    "d4_symmetric",
    "d4_kernel_graph",
    "paired_filtering_graph",
    "paired_kernel",
    "image_offset",
    "D4_PASSES",
    "MIN_BAND_MARGINS",
    "SYMMETRY_TOLERANCE",
]


class _GraphParts:
    """The nodes and initialisers of an ONNX graph being built: `constant` adds an initialiser, `node` a node
    named after its one output; each returns the name it added."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []

    def constant(self, name, array):
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name=name))
        return name

    def node(self, op, inputs, output, **attributes):
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def _crop(parts, name, source, cut):
    """``source[:, :, cut:-cut, cut:-cut]`` as a Slice node."""
    starts = parts.constant(f"{name}_starts", np.array([cut, cut], np.int64))
    ends = parts.constant(f"{name}_ends", np.array([-cut, -cut], np.int64))
    axes = parts.constant(f"{name}_axes", np.array([2, 3], np.int64))
    return parts.node("Slice", [source, starts, ends, axes], name)


def _paired_phases(parts, name, source, weights):
    """The 4 phases of each pixel of ``source`` (``n, 4 c, 2 ceil(h / 2), 2 ceil(w / 2)``) from the convolution with
    ``weights`` (the names of `paired_kernel`'s weights and, optionally, biases) at stride 2, one pixel of end
    padding, moved back in place by ``DepthToSpace``."""
    paired = parts.node("Conv", [source, *weights], f"{name}_paired", strides=[2, 2], pads=[0, 0, 1, 1])
    return parts.node("DepthToSpace", [paired], name, blocksize=2, mode="CRD")


def _level_map(parts, level, inner):
    """The log noise level as a map of ``inner``'s shape."""
    axes = parts.constant("axes_23", np.array([2, 3], np.int64))
    return parts.node("Expand", [parts.node("Unsqueeze", [level, axes], "level_4d"),
                                 parts.node("Shape", [inner], "inner_shape")], "level_map")  # fmt: skip


def _centre(parts, inner, level_map, depth, odd):
    """The value and level maps where the CNN's output lies (``inner`` less its margin), for `_constant_response_nodes`;
    with ``odd``, those of ``x`` and ``-x`` in one batch."""
    centre = [_crop(parts, "centre", inner, 2 * depth + 2), _crop(parts, "centre_level", level_map, 2 * depth + 2)]
    if not odd:
        return centre
    negative = parts.node("Neg", [centre[0]], "centre_neg")
    return [parts.node("Concat", [centre[0], negative], "centre_both", axis=0),
            parts.node("Concat", [centre[1], centre[1]], "centre_level_both", axis=0)]  # fmt: skip


def _odd_part(parts, both, name):
    """Half the difference of the two halves of the batch ``both`` (the output for ``x`` and for ``-x``)."""
    halves = [f"{name}_pos", f"{name}_neg"]
    parts.nodes.append(parts.helper.make_node("Split", [both], halves, name=f"{name}_split", axis=0))
    difference = parts.node("Sub", halves, f"{name}_odd_twice")
    return parts.node("Mul", [difference, parts.constant("half", np.float32(0.5))], f"{name}_odd")


def _constant_response_nodes(parts, state, depth, centre):
    """The CNN's correction of a constant image of each pixel's value (its 3x3 kernels summed to 1x1, as
    `~enhance.models.hybrid.WienerEnhanceNet.constant_response`), from ``centre``: the value and level maps."""
    names = ["conv_in", *(f"blocks.{i}.{j}" for i in range(depth) for j in (0, 1)), "conv_out"]
    flat = summed_state(state, depth)
    summed = {name: flat[f"{name}.weight"].astype(np.float32) for name in names}
    summed["conv_in"] = summed["conv_in"][:, [0, 5]]  # the value and the level; a constant has no detail
    biases = {name: flat[f"{name}.bias"].astype(np.float32) for name in names}

    def conv(name, source):
        tensors = (("weight", summed), ("bias", biases))
        weights = [parts.constant(f"flat.{name}.{part}", values[name]) for part, values in tensors]
        return parts.node("Conv", [source, *weights], f"flat.{name}")

    features = parts.node("Concat", centre, "centre_features", axis=1)
    flat = parts.node("Relu", [conv("conv_in", features)], "flat.conv_in_relu")
    for i in range(depth):
        hidden = parts.node("Relu", [conv(f"blocks.{i}.0", flat)], f"flat.blocks.{i}.relu")
        flat = parts.node("Add", [conv(f"blocks.{i}.1", hidden), flat], f"flat.blocks.{i}.sum")
    return conv("conv_out", flat)


def wiener_onnx_graph(state, meta: dict, *, kind: str | None = None, metadata: dict | None = None,
                      symmetric: bool = False, estimate_input: bool = False,
                      constants_apart: bool = False, paired_output: bool = False):  # fmt: skip
    """Build the ONNX graph of a Wiener-Enhance network from its state dict, with numpy only.

    Parameters
    ----------
    state : mapping of str to `~numpy.ndarray`
        The network's state dict (``filters``, ``conv_in``, ``blocks.{i}.{0,1}``, ``conv_out``).
    meta : dict
        ``depth``, ``width``, ``taps``, ``noise_nodes`` (in units of ``noise_unit``) and ``noise_unit``,
        as ``enhance.models.architecture.wiener_architecture_of`` returns them.
    kind : {'intensity', 'blos'}, optional
        What the network enhances, recorded in the metadata.
    metadata : dict, optional
        More metadata to record.
    symmetric : bool
        Record that the model averages over the 8 rotations and flips ('full'); the runner
        (`WienerOnnxNetwork`) does that average around the graph.
    estimate_input : bool
        Read the linear stage's output as a third input, ``estimate`` ``(n, 4, ny + 2 m - taps + 1, ...)``,
        instead of computing it (what `WienerOnnxNetwork` runs: its passes share one filtering of the image,
        for 'full' with the 8 transformed banks, `d4_kernel_graph`); such a graph is for the runner only, never
        written to a file.
    constants_apart : bool
        With ``exact_constants``, leave the response to a constant image out of the graph: the runner
        subtracts it in its exact piecewise-linear form (`~enhance.runtime.constant_pieces`), for 'full' once
        per pixel instead of in each pass; a graph that computes its own linear stage then takes the offset
        its linear stage runs on (below) as a third input, ``offset`` ``(1, 1, 1, 1)`` (`image_offset`). For
        the runner only, like ``estimate_input``. Without it, a graph with ``exact_constants`` that computes
        its own linear stage (the files `~enhance.runtime.export.export_onnx` writes) computes each image's
        offset itself, the median of every fourth row and column as `image_offset` takes it, but with non-finite
        pixels counted as 0 where `image_offset` leaves them out (the offset changes only the rounding): either
        way the linear stage runs on the image less the offset and adds it back as it is (the filters sum to
        one), so that a constant image's estimate is that constant exactly.
    paired_output : bool
        Run the last convolution (the correction's 4 output phases) as one with stride 2 that gives the phases of
        2 x 2 input pixels at once (16 output channels, `paired_kernel`) moved back with ``DepthToSpace``: the
        same sums, which onnxruntime runs in half the time of 4 output channels. Not with a
        response to constant images in the graph (``exact_constants`` without ``constants_apart``). For the runner
        only.

    Returns
    -------
    `onnx.ModelProto`
        A checked model with inputs ``image`` and ``noise`` (and ``estimate`` or ``offset``, see above) and
        output ``enhanced``.

    Examples
    --------
    >>> from enhance.models.architecture import wiener_state_shapes
    >>> shapes = wiener_state_shapes(1, 4, 3, 2)
    >>> state = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}
    >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
    >>> [i.name for i in wiener_onnx_graph(state, meta).graph.input]
    ['image', 'noise']
    >>> exact = {**meta, "exact_constants": True}
    >>> [i.name for i in wiener_onnx_graph(state, exact, constants_apart=True).graph.input]
    ['image', 'noise', 'offset']
    """
    import onnx
    from onnx import TensorProto, helper

    depth, taps, nodes = int(meta["depth"]), int(meta["taps"]), [float(v) for v in meta["noise_nodes"]]
    count, unit = len(nodes), float(meta["noise_unit"])
    exact_constants, odd = bool(meta.get("exact_constants", False)), bool(meta.get("odd", False))
    if paired_output and exact_constants and not constants_apart:
        msg = "paired_output needs the response to constant images apart (constants_apart=True)"
        raise ValueError(msg)
    centred = exact_constants and not estimate_input  # the linear stage on the image less an offset
    parts = _GraphParts()
    graph_nodes, initializers, constant, node = parts.nodes, parts.initializers, parts.constant, parts.node

    def array(name):
        return np.asarray(state[name], dtype=np.float32)

    def conv(name, source, output=None):
        weights = [constant(f"{name}.{part}", array(f"{name}.{part}")) for part in ("weight", "bias")]
        return node("Conv", [source, *weights], output or name)

    crop = functools.partial(_crop, parts)
    level, hat = _hat_nodes(node, constant, nodes, unit)
    if estimate_input:
        estimate = "estimate"
    else:  # one blended kernel per output phase
        bank, shape = array("filters").reshape(count, 4 * taps * taps), [4, 1, taps, taps]
        blended = node("Reshape", [node("MatMul", [hat, constant("filters", bank)], "blended_flat"),
                                   constant("kernel_shape", np.array(shape, np.int64))], "blended")  # fmt: skip
        source, offset = "image", "offset" if constants_apart else None
        if centred:  # on the image less an offset, added back: the linear stage keeps constants
            offset = offset or _median_nodes(parts)
            source = node("Sub", ["image", offset], "image_centred")
        filtered = node("Conv", [source, blended], "estimate_filtered")
        estimate = node("Add", [filtered, offset], "estimate") if centred else filtered
    inner = crop("inner", "image", taps // 2)
    level_map = _level_map(parts, level, inner)
    detail = node("Sub", [estimate, inner], "detail")
    features = node("Concat", [inner, detail, level_map], "features", axis=1)
    if odd:  # x and -x in one batch (the linear stage is odd: -x has detail -detail)
        negative = node("Concat", [node("Neg", [inner], "inner_neg"), node("Neg", [detail], "detail_neg"), level_map],
                        "features_neg", axis=1)  # fmt: skip
        features = node("Concat", [features, negative], "features_both", axis=0)
    out = node("Relu", [conv("conv_in", features)], "conv_in_relu")
    for i in range(depth):
        hidden = node("Relu", [conv(f"blocks.{i}.0", out)], f"blocks.{i}.relu")
        out = node("Add", [conv(f"blocks.{i}.1", hidden), crop(f"blocks.{i}.skip", out, 2)], f"blocks.{i}.sum")
    if paired_output:  # `paired_kernel`: phases of 2 x 2 pixels at once, one pixel of end padding for odd sizes
        weight, bias = paired_kernel(array("conv_out.weight"), array("conv_out.bias"))
        names = [constant("conv_out.paired_weight", weight), constant("conv_out.paired_bias", bias)]
        correction = _paired_phases(parts, "conv_out", out, names)
    else:
        correction = conv("conv_out", out)
    if exact_constants and not constants_apart:  # less the response to a constant image of each pixel's value
        response = _constant_response_nodes(parts, state, depth, _centre(parts, inner, level_map, depth, odd))
        correction = node("Sub", [correction, response], "correction_exact")
    if odd:
        correction = _odd_part(parts, correction, "correction")
    estimate_inner = crop("estimate_inner", estimate, 2 * depth + 2)
    if paired_output:  # less the extra row and column of an odd size
        ends = node("Shape", [estimate_inner], "inner_size", start=2)
        starts, axes = (
            constant("phase_starts", np.zeros(2, np.int64)),
            constant("phase_axes", np.array([2, 3], np.int64)),
        )
        correction = node("Slice", [correction, starts, ends, axes], "correction_cropped")
    total = node("Add", [estimate_inner, correction], "phases_sum")
    node("DepthToSpace", [total], "enhanced", blocksize=2, mode="CRD")

    proto = helper.make_graph(
        graph_nodes, f"WienerEnhanceNet_depth{depth}_width{meta['width']}",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, "py", "px"]),
         helper.make_tensor_value_info("noise", TensorProto.FLOAT, ["n"]),
         *[helper.make_tensor_value_info("estimate", TensorProto.FLOAT, ["n", 4, "ey", "ex"])] * estimate_input,
         *[helper.make_tensor_value_info("offset", TensorProto.FLOAT, [1, 1, 1, 1])] * (centred and constants_apart)],
        [helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, ["n", 1, "ny2", "nx2"])],
        initializer=initializers,
    )  # fmt: skip
    model = helper.make_model(proto, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="solar-enhance")

    model.producer_version = __version__
    margin = taps // 2 + 2 * depth + 2
    props = {**(metadata or {}), "format": "enhance-wiener-onnx-1", "architecture": "wiener-enhance",
             "depth": depth, "width": meta["width"], "taps": taps, "noise_nodes": json.dumps(nodes),
             "noise_unit": repr(unit), "margin": margin, "kind": kind or "", "symmetric": bool(symmetric),
             "exact_constants": exact_constants, "odd": odd,
             "inputs": f"image: the normalised image mirrored by {margin} pixels on each side (numpy 'symmetric'); "
                       "noise: (n,) standard deviation of its noise per pixel, same units"}  # fmt: skip
    helper.set_model_props(model, {key: str(value) for key, value in props.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def _median_nodes(parts):
    """Each image's offset for the linear stage, ``(n, 1, 1, 1)``, computed in the graph as `image_offset` computes
    it for a finite image: the median of every fourth row and column (of all pixels below 64 a side), the mean of the
    two middle values (so that of ``-x`` is minus that of ``x``, bit for bit); non-finite pixels count as 0 (where
    `image_offset` leaves them out), so that they reach no other pixel."""
    node, constant = parts.node, parts.constant
    dims = [constant(f"median_dims_{end}", np.array([value], np.int64)) for end, value in (("start", 2), ("end", 4))]
    sizes = node("Slice", [node("Shape", ["image"], "image_shape"), *dims], "image_sizes")
    small = node("Less", [node("ReduceMin", [sizes], "image_side", keepdims=0),
                          constant("median_small", np.array(OFFSET_MIN_SIDE, np.int64))], "image_small")  # fmt: skip
    one, every = (constant(f"median_step_{n}", np.array([n], np.int64)) for n in (1, OFFSET_STEP))
    step = node("Where", [small, one, every], "median_step")
    steps = node("Concat", [step, step], "median_steps", axis=0)
    big = np.iinfo(np.int64).max
    sample = node("Slice", ["image", constant("median_starts", np.array([0, 0], np.int64)),
                            constant("median_ends", np.array([big, big], np.int64)), constant("median_axes",
                            np.array([2, 3], np.int64)), steps], "median_sample")  # fmt: skip
    finite = node("Not", [node("Or", [node("IsNaN", [sample], "median_nan"), node("IsInf", [sample], "median_inf")],
                                "median_bad")], "median_finite")  # fmt: skip
    sample = node("Where", [finite, sample, constant("median_zero", np.float32(0))], "median_sample_finite")
    flat = node("Reshape", [sample, constant("median_rows", np.array([0, -1], np.int64))], "median_flat")
    count = node("Slice", [node("Shape", [flat], "median_flat_shape"), constant("median_count_start",
                           np.array([1], np.int64)), constant("median_count_end", np.array([2], np.int64))],
                 "median_count")  # fmt: skip
    half = node("Div", [node("Add", [count, constant("median_one", np.array([1], np.int64))], "median_count_1"),
                        constant("median_two_k", np.array([2], np.int64))], "median_k")  # fmt: skip
    last, middles = node("Sub", [half, constant("median_one_last", np.array([1], np.int64))], "median_last"), []
    for largest in (1, 0):  # the k-th largest and the k-th smallest: the two middle values (one if the count is odd)
        name = f"median_top_{largest}"
        outputs = [f"{name}_values", f"{name}_indices"]
        parts.nodes.append(parts.helper.make_node("TopK", [flat, half], outputs, name=name, axis=1, largest=largest))
        middles.append(node("Gather", [outputs[0], last], f"{name}_middle", axis=1))
    mean = node("Mul", [node("Add", middles, "median_middles"), constant("median_half", np.float32(0.5))], "median")
    return node("Reshape", [mean, constant("median_shape", np.array([-1, 1, 1, 1], np.int64))], "median_offset")


def _hat_nodes(node, constant, nodes, unit):
    """The log noise level (clipped to the nodes) and the filter bank's weights for it, ``(1, K)``: hat functions
    of ``log(noise / unit)`` on the nodes, for the first noise of the batch (one image's tiles share it)."""
    names = (("zero", 0), ("one_index", 1), ("axis_0", 0))
    index = [constant(name, np.array([value], np.int64)) for name, value in names]
    first = node("Slice", ["noise", *index], "noise_first")
    level = node("Log", [node("Div", [first, constant("noise_unit", np.float32(unit))], "noise_ratio")], "level")
    logs = np.log(np.array(nodes, np.float32))
    level = node("Clip", [level, constant("log_first", logs[0]), constant("log_last", logs[-1])], "level_clipped")
    level = node("Unsqueeze", [level, constant("axis_1", np.array([1], np.int64))], "level_column")
    distance = node("Abs", [node("Sub", [level, constant("log_nodes", logs[None, :])], "level_offsets")], "distance")
    step = np.float32(np.log(nodes[1] / nodes[0]))
    steps = node("Div", [distance, constant("log_step", step)], "distance_steps")
    return level, node("Relu", [node("Sub", [constant("one", np.float32(1)), steps], "hat_raw")], "hat")


def paired_kernel(weight: np.ndarray, bias: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A convolution to the 4 output phases of each input pixel as one with stride 2 for 2 x 2 pixels at once.

    Output channel ``4 (2 a + b) + 2 s + t`` at ``(Y, X)`` is phase ``2 a + b`` at input pixel
    ``(2 Y + s, 2 X + t)``: ``weight[2 a + b]`` placed at row ``s`` and column ``t`` of a kernel one tap larger
    a side, zero elsewhere, so that ``DepthToSpace`` (block 2, ``'CRD'``) gives the 4 phases back in place. The
    sums are those of the convolution with ``weight`` (the zero taps add zeros): onnxruntime's
    kernels, which compute 8 output channels at once, run 16 of them at a quarter of the pixels in about half
    the time of 4 (`wiener_onnx_graph`'s last convolution), and a third of the time for one input channel
    (`d4_kernel_graph`'s filtering). With a padding of one pixel at the end, any size is covered: the extra
    row or column of phases is cropped.

    Parameters
    ----------
    weight : `~numpy.ndarray`
        ``(4, c, k, k)``: the convolution to the phases (0, 0), (0, 1), (1, 0), (1, 1).
    bias : `~numpy.ndarray`, optional
        ``(4,)``.

    Returns
    -------
    tuple
        The weights ``(16, c, k + 1, k + 1)`` and biases ``(16,)`` (None without ``bias``), the same dtype.

    Examples
    --------
    >>> weight = np.arange(4 * 9, dtype=np.float32).reshape(4, 1, 3, 3)
    >>> paired, bias = paired_kernel(weight, np.arange(4, dtype=np.float32))
    >>> paired.shape, bias.tolist()[:6]
    ((16, 1, 4, 4), [0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    >>> paired[4 * 1 + 3, 0].tolist()  # phase (0, 1) at the pixel one row down and one column right
    [[0.0, 0.0, 0.0, 0.0], [0.0, 9.0, 10.0, 11.0], [0.0, 12.0, 13.0, 14.0], [0.0, 15.0, 16.0, 17.0]]
    """
    if weight.ndim != 4 or weight.shape[0] != 4 or weight.shape[2] != weight.shape[3]:
        msg = f"expected a (4, c, k, k) convolution, got {weight.shape}"
        raise ValueError(msg)
    if bias is not None and bias.shape != (4,):
        msg = f"expected 4 biases, got {bias.shape}"
        raise ValueError(msg)
    size = weight.shape[2]
    paired = np.zeros((4, 2, 2, weight.shape[1], size + 1, size + 1), weight.dtype)  # phase, s, t, channel, ...
    for s, t in np.ndindex(2, 2):
        paired[:, s, t, :, s : s + size, t : t + size] = weight
    paired = paired.reshape(16, weight.shape[1], size + 1, size + 1)
    return paired, None if bias is None else np.repeat(bias, 4)


#: How each pass of `D4_PASSES` moves the linear stage's bank ``(K, 2, 2, taps, taps)`` (level, phase row, phase
#: column, kernel row, kernel column): ``(swap the axes, flip the rows, flip the columns)``. The pass's estimate,
#: turned back, is the image filtered with the moved bank (``tests/runtime/test_wiener_runner.py`` checks it).
_BANK_MOVES = {(False, 0): (False, False, False), (False, 1): (True, False, True), (False, 2): (False, True, True),
               (False, 3): (True, True, False), (True, 0): (True, False, False), (True, 1): (False, True, False),
               (True, 2): (True, True, True), (True, 3): (False, False, True)}  # fmt: skip


def d4_bank(bank: np.ndarray, transform) -> np.ndarray:
    """The linear stage's bank as pass ``transform`` (of `D4_PASSES`) sees the image: turned back, the pass's
    estimate of ``g x`` is the image ``x`` filtered with this bank.

    Parameters
    ----------
    bank : `~numpy.ndarray`
        ``(K, 2, 2, taps, taps)``: level, output phase row and column, kernel row and column.
    transform : tuple of (bool, int)
        ``(transpose, quarter turns)``.

    Returns
    -------
    `~numpy.ndarray`
        The same shape: its phases and kernels transposed and flipped.

    Examples
    --------
    >>> bank = np.arange(16.0).reshape(1, 2, 2, 2, 2)
    >>> bool((d4_bank(bank, (True, 0)) == bank.transpose(0, 2, 1, 4, 3)).all())
    True
    """
    swap, flip_rows, flip_columns = _BANK_MOVES[tuple(transform)]
    moved = bank.transpose(0, 2, 1, 4, 3) if swap else bank
    axes = (1, 3) * flip_rows + (2, 4) * flip_columns
    return np.flip(moved, axes) if axes else moved


def d4_symmetric(filters: np.ndarray) -> bool:
    """Whether every pass of `D4_PASSES` sees the same bank (`d4_bank`), to `SYMMETRY_TOLERANCE` of each kernel.

    A bank fitted on statistics accumulated over the rotations and flips (`~enhance.training.linear_stage`, the
    default models') or averaged over them (`~enhance.models.hybrid.symmetrize_filters`) is, to the rounding of
    its float32 weights: the 8 passes of 'full' then filter the image once with it. Each moved kernel must lie
    within `SYMMETRY_TOLERANCE` of the kernel's absolute sum (L1), so that filtering with the bank instead of the
    moved one changes no estimate by more than that fraction of the image's largest distance from its offset.

    Parameters
    ----------
    filters : `~numpy.ndarray`
        The bank, ``(4 K, 1, taps, taps)``.

    Returns
    -------
    bool
        True when, for every pass, level and phase, the moved kernel less the kernel sums in absolute value to at
        most `SYMMETRY_TOLERANCE` times the kernel's.

    Examples
    --------
    >>> import torch
    >>> from enhance.models.hybrid import symmetrize_filters
    >>> bank = torch.rand(8, 1, 5, 5)
    >>> d4_symmetric(bank.numpy()), d4_symmetric(symmetrize_filters(bank).numpy())
    (False, True)
    """
    taps = filters.shape[-1]
    bank = np.asarray(filters, np.float64).reshape(-1, 2, 2, taps, taps)
    allowed = SYMMETRY_TOLERANCE * np.abs(bank).sum(axis=(3, 4))
    return all(bool((np.abs(d4_bank(bank, g) - bank).sum(axis=(3, 4)) <= allowed).all()) for g in D4_PASSES)


def d4_kernel_graph(filters: np.ndarray, noise_nodes, noise_unit: float, *, passes=None):
    """An ONNX graph from a noise level to the 8 passes' blended kernels, as `wiener_onnx_graph` blends its own.

    Parameters
    ----------
    filters : `~numpy.ndarray`
        The bank, ``(4 K, 1, taps, taps)``.
    noise_nodes : sequence of float
        Its noise levels, units of ``noise_unit``.
    noise_unit : float
        HMI's noise, network units.
    passes : sequence of tuple, optional
        The ``p`` passes (of `D4_PASSES`) to blend kernels for; None: all 8.

    Returns
    -------
    `onnx.ModelProto`
        Input ``noise`` ``(1,)``, output ``kernels`` ``(4 p, 1, taps, taps)``: for each pass, the four phases'
        kernels of `d4_bank`, blended for the noise level.

    Examples
    --------
    >>> graph = d4_kernel_graph(np.zeros((8, 1, 3, 3), np.float32), [1.0, 2.0], 1e-3)
    >>> [o.name for o in graph.graph.output]
    ['kernels']
    """
    from onnx import TensorProto, helper

    count, taps = len(noise_nodes), filters.shape[-1]
    passes = D4_PASSES if passes is None else tuple(tuple(transform) for transform in passes)
    parts = _GraphParts()
    graph_nodes, initializers, constant, node = parts.nodes, parts.initializers, parts.constant, parts.node

    _, hat = _hat_nodes(node, constant, [float(v) for v in noise_nodes], float(noise_unit))
    bank = np.asarray(filters, np.float32).reshape(count, 2, 2, taps, taps)
    moved = np.concatenate([d4_bank(bank, t).reshape(count, -1) for t in passes], axis=1)
    shape = constant("kernel_shape", np.array([4 * len(passes), 1, taps, taps], np.int64))
    node("Reshape", [node("MatMul", [hat, constant("filters", moved)], "blended_flat"), shape], "kernels")
    inputs = [helper.make_tensor_value_info("noise", TensorProto.FLOAT, [1])]
    outputs = [helper.make_tensor_value_info("kernels", TensorProto.FLOAT, [4 * len(passes), 1, taps, taps])]
    graph = helper.make_graph(graph_nodes, "d4_kernels", inputs, outputs, initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="solar-enhance")


def paired_filtering_graph(phases: int, taps: int):
    """An ONNX graph that filters an image to ``phases`` output phases with kernels written in later: a template.

    The kernels are a `~enhance.runtime.graph_template.placeholder` of shape ``(4 phases, 1, taps + 1,
    taps + 1)``, `paired_kernel` of each 4 phases' kernels, that `~enhance.runtime.graph_template.with_weight`
    replaces: constant weights, which onnxruntime runs in its blocked layout (a third of the time of weights
    computed in the graph).

    Parameters
    ----------
    phases : int
        Output phases, a multiple of 4 (4 for each pass of 'full''s linear stage).
    taps : int
        Size of the kernels.

    Returns
    -------
    `onnx.ModelProto`
        Input ``image`` ``(1, 1, h, w)``, output ``phases`` ``(1, phases, h', w')``, ``h'`` and ``w'`` the even
        sizes that hold ``h - taps + 1`` and ``w - taps + 1``.

    Examples
    --------
    >>> graph = paired_filtering_graph(4, 5)
    >>> [i.name for i in graph.graph.input], [o.name for o in graph.graph.output]
    (['image'], ['phases'])
    """
    from onnx import TensorProto, helper

    parts = _GraphParts()
    kernels = parts.constant("paired_kernels", placeholder((4 * phases, 1, taps + 1, taps + 1)))
    _paired_phases(parts, "phases", "image", [kernels])
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, None, None])]
    outputs = [helper.make_tensor_value_info("phases", TensorProto.FLOAT, [1, phases, None, None])]
    graph = helper.make_graph(parts.nodes, "paired_filtering", inputs, outputs, initializer=parts.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="solar-enhance")


class WienerOnnxNetwork(OnnxNetwork):
    """A Wiener-Enhance ONNX graph (`wiener_onnx_graph`) run by onnxruntime, padded and bound to a noise level.

    Parameters
    ----------
    model : str, `~pathlib.Path` or bytes
        The ONNX file or its bytes.
    threads : int, optional
        Cores used at once (``workers``), each running single-threaded onnxruntime calls; None: every core
        (`~enhance.cores.cpu_cores`).
    symmetric : bool, optional
        Average over the 8 rotations and flips of the input (the 'full' model); None (default) follows
        the file's ``symmetric`` metadata.
    blocked : bool
        Keep the residual crops and sums in onnxruntime's blocked layout (`~enhance.runtime.ort_blocked`)
        where that reproduces the plain graph on a probe image.

    Notes
    -----
    `bind` gives the runner for one noise level. `run_image` runs it over a whole ``(ny, nx)`` image: the
    image is mirrored once by ``margin`` pixels and bands or tiles are cut from the mirrored image, so
    that every output pixel is computed from the same input values as in one whole-image pass (no
    seams, no pixels computed twice but the tiles' overlaps), on ``workers`` cores at once (the bands,
    the tiles and, for 'full', the 8 rotations and flips of each). Called on ``(n, 1, ny, nx)`` float32
    arrays it returns ``(n, 1, 2 ny, 2 nx)``, as `~enhance.models.hybrid.NoiseBound` does with PyTorch.

    Examples
    --------
    >>> from enhance.models.architecture import wiener_state_shapes
    >>> state = {name: np.zeros(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
    >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
    >>> runner = WienerOnnxNetwork(wiener_onnx_graph(state, meta).SerializeToString(), threads=1)
    >>> runner.margin, runner.bind(1e-3)(np.ones((1, 1, 5, 6), np.float32)).shape
    (5, (1, 1, 10, 12))
    """

    family = WIENER_ENHANCE
    needs_noise = True
    #: The graph cache's key of a shipped model (`~enhance.runtime.onnx_cache.graph_key`), set where it is loaded:
    #: the graphs of the runner's shared linear stage and of the network reading it are kept under it; None builds
    #: them in each process.
    cache_key = None

    def __init__(self, model, *, threads: int | None = None, symmetric: bool | None = None,
                 blocked: bool = True) -> None:  # fmt: skip
        super().__init__(model, threads=threads, blocked=blocked)
        self._setup(symmetric)

    def _setup(self, symmetric, filter_bank=None, constant_state=None):
        if self.checked["format"] != WIENER_FORMAT:
            msg = f"{self.name}: metadata format={self.checked['format']!r} is not a Wiener-Enhance graph's"
            raise ValueError(msg)
        self.margin, self.noise_unit = self.checked["margin"], self.checked["noise_unit"]  # checked: bounds, graph
        self.noise_nodes = tuple(self.checked["noise_nodes"])
        self.symmetric = self.checked["symmetric"] if symmetric is None else bool(symmetric)
        self.noise = None
        # the linear stage, for the propagated noise and the 8 passes' shared filtering ('full')
        self.filter_bank = graph_filter_bank(self.graph) if filter_bank is None else filter_bank
        # with exact constants, the part of the network that acts on constant images (`constant_response`)
        self.constant_state = None
        if self.metadata.get("exact_constants") == "True":
            depth = self.checked["depth"]
            self.constant_state = summed_state(_graph_state(self), depth) if constant_state is None else constant_state
        self._shared, self._shared_lock = {}, threading.Lock()  # the runner's other sessions, for the bound copies
        check_probe(self.bind(self.noise_unit), self.name)  # the x2 grid of a probe, before any image

    @classmethod
    def from_network(cls, network: OnnxNetwork, *, symmetric: bool | None = None, filter_bank: tuple | None = None,
                     constant_state: dict | None = None,
                     cache_key: str | None = None) -> "WienerOnnxNetwork":  # fmt: skip
        """The runner of an `~enhance.runtime.export.OnnxNetwork` holding a Wiener-Enhance graph (the session is kept).

        Parameters
        ----------
        network : `~enhance.runtime.export.OnnxNetwork`
            An open Wiener-Enhance graph.
        symmetric : bool, optional
            Average over the 8 rotations and flips; None follows the file's ``symmetric`` metadata.
        filter_bank : tuple, optional
            The graph's `graph_filter_bank`, where it is known already (a shipped model's graph cache,
            `~enhance.runtime.onnx_cache`); None reads it from the graph.
        constant_state : dict, optional
            For a network with exact constants, its `~enhance.runtime.constant_pieces.summed_state`, where it is
            known already (that cache); None reads it from the graph.
        cache_key : str, optional
            A shipped model's key in that cache (``cache_key``), under which the runner's other graphs are kept.

        Returns
        -------
        WienerOnnxNetwork
            The same session, padded and bound as this class runs it.

        Examples
        --------
        >>> from enhance.models.architecture import wiener_state_shapes
        >>> state = {name: np.zeros(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
        >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
        >>> plain = OnnxNetwork(wiener_onnx_graph(state, meta).SerializeToString())
        >>> WienerOnnxNetwork.from_network(plain, symmetric=True).symmetric
        True
        """
        runner = object.__new__(cls)
        runner.__dict__.update(network.__dict__)
        runner.cache_key = cache_key  # before the probe, which builds the runner's other graphs
        runner._setup(symmetric, filter_bank, constant_state)
        return runner

    def bind(self, noise: float) -> "WienerOnnxNetwork":
        """This runner with its noise level set (network units); the session is shared.

        Parameters
        ----------
        noise : float
            Standard deviation of the noise per input pixel.

        Returns
        -------
        WienerOnnxNetwork
            A shallow copy, callable on images alone.

        Examples
        --------
        >>> from enhance.models.architecture import wiener_state_shapes
        >>> state = {name: np.zeros(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
        >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
        >>> WienerOnnxNetwork(wiener_onnx_graph(state, meta).SerializeToString()).bind(2e-3).noise
        0.002
        """
        bound = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound.noise = float(noise)
        return bound

    def run_image(self, image: np.ndarray, *, tile: int | None = None, workers: int | None = None,
                  done=None, needed=None) -> np.ndarray:  # fmt: skip
        """The network over a whole image, mirrored once, in bands or tiles on ``workers`` cores at once.

        Parameters
        ----------
        image : (ny, nx) `~numpy.ndarray`
            The normalised image, network units.
        tile : int, optional
            Largest tile, input pixels; None: the whole image, cut into bands of rows where that keeps
            every worker busy (`split_rows`).
        workers : int, optional
            Single-threaded onnxruntime calls at once; None: ``self.workers``.
        done : callable, optional
            Called with 1 each time a tile is finished (a progress bar's ``update``).
        needed : (ny, nx) bool `~numpy.ndarray`, optional
            Input pixels whose output is kept: each tile runs on the boxes of its needed pixels
            (`~enhance.cores.needed_boxes`, split where that runs fewer pixels with the margins), a tile without
            any is skipped, and the output is NaN elsewhere.

        Returns
        -------
        `~numpy.ndarray`
            float32 ``(2 ny, 2 nx)``: the output of one whole-image pass (for 'full', the average over the
            8 rotations and flips, summed in float64), whatever ``tile``, ``workers`` and ``needed``.

        Examples
        --------
        >>> from enhance.models.architecture import wiener_state_shapes
        >>> state = {name: np.zeros(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
        >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
        >>> runner = WienerOnnxNetwork(wiener_onnx_graph(state, meta).SerializeToString()).bind(1e-3)
        >>> runner.run_image(np.ones((9, 7), np.float32), tile=4, workers=2).shape
        (18, 14)
        """
        if self.noise is None:
            msg = "a Wiener-Enhance runner needs its noise level: call bind(noise) first"
            raise ValueError(msg)
        source = np.asarray(image, dtype=np.float32)
        if source.ndim != 2:
            msg = f"image must have shape (ny, nx), got {source.shape}"
            raise ValueError(msg)
        workers = self.workers if workers is None else max(1, int(workers))
        passes = D4_PASSES if self.symmetric else D4_PASSES[:1]
        tiles = _tiles(source.shape, tile, split_rows(source.shape[0], len(passes), workers, self.margin))
        # Each tile runs as one or more regions (the boxes of its needed pixels); `done` counts tiles.
        count, owners = len(tiles), list(range(len(tiles)))
        if needed is not None:
            boxes = needed_boxes(needed, tiles, source.shape, margin=self.margin)
            tiles = [box for parts in boxes for box in parts]
            owners = [index for index, parts in enumerate(boxes) for _ in parts]
        finished = tile_counter(owners, count, done)  # the skipped tiles at once
        if not tiles:
            return np.full((2 * source.shape[0], 2 * source.shape[1]), np.nan, np.float32)
        padded = np.pad(source, self.margin, mode="symmetric")
        # A non-finite pixel is run at the offset and its reach set to NaN: a paired convolution's zero taps
        # (`paired_kernel`) would carry it one pixel further than the network does.
        offset = image_offset(padded)  # of the finite pixels; the non-finite ones are then run at its value
        bad = ~np.isfinite(padded)
        padded[bad] = offset
        out = np.empty((2 * source.shape[0], 2 * source.shape[1]), np.float32)
        if needed is not None:
            out.fill(np.nan)
        run = _Passes(self, workers, offset)

        def finish(owner, region, results):
            (y0, y1), (x0, x1) = region
            out[2 * y0 : 2 * y1, 2 * x0 : 2 * x1] = run.combine(results)
            finished(owner)

        margin = 2 * self.margin
        with _executor(workers, len(tiles) * len(passes)) as pool:
            open_tiles = collections.deque()  # tiles whose passes are in flight: memory stays bounded
            for owner, region in zip(owners, tiles, strict=True):
                (y0, y1), (x0, x1) = region
                window = padded[y0 : y1 + margin, x0 : x1 + margin]
                open_tiles.append((owner, region, run.submit(pool, window, passes)))
                while len(open_tiles) > -(-workers // len(passes)) + 1:
                    finish(*open_tiles.popleft())
            while open_tiles:
                finish(*open_tiles.popleft())
        if bad.any():
            reached = _reached(bad, 2 * self.margin + 1)
            out[on_output_grid(reached)] = np.nan
        return out

    def shared_linear(self):
        """The sessions `run_image` runs: the network reading its estimate, and its passes' linear stage at this
        noise level with its kernels' sums (built once per runner and noise level, shared by the bound copies).

        Returns
        -------
        tuple
            ``(network session, linear-stage session, sums)``: the first reads ``image``, ``noise`` and
            ``estimate``; the second maps a ``(1, 1, h, w)`` ``image`` to the passes' 4 phases
            ``(1, 4 p, h', w')``, ``h'`` and ``w'`` the even sizes that hold ``h - taps + 1`` and
            ``w - taps + 1``, filtered with `d4_bank` blended for this noise level (`d4_kernel_graph`) and
            written into `paired_filtering_graph` (`~enhance.runtime.graph_template`): for the 8 passes of
            'full' (p = 8), or once for all of them where the bank is `d4_symmetric`, or for the identity pass
            of a runner that runs once ('light'; p = 1); ``sums`` ``(4 p,)``
            float64 are its kernels' sums (the response to a constant 1). A shipped model's graphs
            (``cache_key``) are built once and kept in the graph cache (`~enhance.runtime.onnx_cache`), with
            the network's blocked layout for this CPU, so that later runs need no ``onnx`` package. The last
            ``FILTERINGS_KEPT`` noise levels' sessions are kept.

        Examples
        --------
        >>> from enhance.models.architecture import wiener_state_shapes
        >>> state = {name: np.zeros(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
        >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
        >>> runner = WienerOnnxNetwork(wiener_onnx_graph(state, meta).SerializeToString(), symmetric=True)
        >>> network, linear, sums = runner.bind(1e-3).shared_linear()
        >>> [i.name for i in network.get_inputs()], [i.name for i in linear.get_inputs()], sums.shape
        (['image', 'noise', 'estimate'], ['image'], (4,))
        """
        filters = self.filter_bank[0]
        passes = D4_PASSES if self.symmetric and not d4_symmetric(filters) else D4_PASSES[:1]
        part = f"linear-{len(passes)}"  # the copies that run once or average share one dict
        with self._shared_lock:
            if "network" not in self._shared:
                self._shared["network"] = _estimate_input_session(self)
            if part not in self._shared:
                self._shared[part] = (*_linear_sessions(self, passes), collections.OrderedDict())
            kernel_session, template, levels = self._shared[part]
            key = self._clipped_level()  # levels beyond the bank's ends blend the same kernels
            if key not in levels:
                kernels = kernel_session.run(None, {"noise": np.array([self.noise], np.float32)})[0]
                paired = np.concatenate([paired_kernel(kernels[i : i + 4])[0] for i in range(0, len(kernels), 4)])
                session = open_session(with_weight(template, paired), threads=1, blocked=False, name=self.name)[0]
                levels[key] = session, kernels.astype(np.float64).sum(axis=(1, 2, 3))
                while len(levels) > FILTERINGS_KEPT:
                    levels.popitem(last=False)
            levels.move_to_end(key)
            linear, sums = levels[key]
        return self._shared["network"], linear, sums

    @property
    def layouts(self) -> dict:
        """The layout each of the runner's graphs runs in, ``'blocked'`` or ``'plain'``: ``network`` (the file's
        graph) and those opened so far (``estimate``, the network reading its shared linear stage without the
        response to constants, opened by the probe of the constructor), a check that none fell back to the
        slower plain layout where the file's graph runs blocked.

        Examples
        --------
        >>> from enhance.models.architecture import wiener_state_shapes
        >>> state = {name: np.zeros(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
        >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
        >>> sorted(WienerOnnxNetwork(wiener_onnx_graph(state, meta).SerializeToString(), threads=1).layouts)
        ['estimate', 'network']
        """
        return {"network": self.layout, **self._shared.get("layouts", {})}

    def constant_response(self):
        """The response to constant images at the bound noise level, for a network with exact constants (the
        runner's graphs leave it out and it is subtracted per pixel, `~enhance.runtime.constant_pieces`); None
        without.

        Returns
        -------
        `~enhance.runtime.constant_pieces.ConstantResponse` or None
            Per pixel value of the input, the response of each of the four output phases; for a runner that
            averages ('full'), their mean (what the 8 passes subtract on average: they move each phase onto
            every other). Shared by the bound copies at one noise level.

        Examples
        --------
        >>> from enhance.models.architecture import wiener_state_shapes
        >>> state = {name: np.ones(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
        >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
        >>> plain = WienerOnnxNetwork(wiener_onnx_graph(state, meta).SerializeToString(), threads=1)
        >>> plain.bind(1e-3).constant_response() is None
        True
        >>> exact = WienerOnnxNetwork(wiener_onnx_graph(state, {**meta, "exact_constants": True}).SerializeToString())
        >>> exact.bind(1e-3).constant_response()(np.full((2, 3), 0.5)).shape
        (2, 3, 4)
        """
        if self.constant_state is None:
            return None
        if self.noise is None:
            msg = "a Wiener-Enhance runner needs its noise level: call bind(noise) first"
            raise ValueError(msg)
        key = (self._clipped_level(), self.symmetric)
        with self._shared_lock:
            if "flat" not in self._shared:  # the 1x1 network, once; the responses of the last few noise levels
                self._shared["flat"] = flat_weights(self.constant_state, self.checked["depth"])
                self._shared["responses"] = collections.OrderedDict()
            responses = self._shared["responses"]
            if key not in responses:
                odd = self.metadata.get("odd") == "True"
                responses[key] = ConstantResponse(self._shared["flat"], key[0], odd=odd, phase_mean=self.symmetric)
                while len(responses) > RESPONSES_KEPT:
                    responses.popitem(last=False)
            responses.move_to_end(key)
            return responses[key]

    def _clipped_level(self) -> float:
        """The log noise level, clipped to the bank's nodes, as the graph computes it (to a float32 step)."""
        logs = np.log(np.array(self.noise_nodes, np.float32))
        return float(np.clip(np.log(np.float32(self.noise) / np.float32(self.noise_unit)), logs[0], logs[-1]))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.noise is None:
            msg = "a Wiener-Enhance runner needs its noise level: call bind(noise) first"
            raise ValueError(msg)
        array = np.ascontiguousarray(batch, dtype=np.float32)
        if array.ndim != 4 or array.shape[1] != 1:
            msg = f"batch must have shape (n, 1, ny, nx), got {array.shape}"
            raise ValueError(msg)
        return np.stack([self.run_image(image) for image in array[:, 0]])[:, None]

    def averaged(self) -> "WienerOnnxNetwork":
        """This runner averaging each call over the 8 rotations and flips, whose passes share one filtering of the
        image (`run_image`); the session is shared.

        Returns
        -------
        WienerOnnxNetwork
            This runner if it averages already, else a shallow copy that does.

        Examples
        --------
        >>> from enhance.models.architecture import wiener_state_shapes
        >>> state = {name: np.zeros(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
        >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
        >>> runner = WienerOnnxNetwork(wiener_onnx_graph(state, meta).SerializeToString(), threads=1)
        >>> runner.symmetric, runner.averaged().symmetric, runner.averaged().session is runner.session
        (False, True, True)
        """
        return self._symmetric(True)

    def one_pass(self) -> "WienerOnnxNetwork":
        """This runner running once on each call; the session is shared.

        Returns
        -------
        WienerOnnxNetwork
            This runner if it runs once already, else a shallow copy that does.

        Examples
        --------
        >>> from enhance.models.architecture import wiener_state_shapes
        >>> state = {name: np.zeros(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
        >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
        >>> runner = WienerOnnxNetwork(wiener_onnx_graph(state, meta).SerializeToString(), symmetric=True)
        >>> runner.symmetric, runner.one_pass().symmetric
        (True, False)
        """
        return self._symmetric(False)

    def _symmetric(self, symmetric):
        if symmetric == self.symmetric:
            return self
        runner = object.__new__(type(self))
        runner.__dict__.update(self.__dict__)
        runner.symmetric = symmetric
        return runner

    def export(self) -> bytes:
        """The ONNX graph, its ``symmetric`` metadata saying whether this runner averages.

        Returns
        -------
        bytes
            The serialised ONNX model: the file's own where its metadata agrees, else a copy with
            ``symmetric`` set.

        Examples
        --------
        >>> import onnx
        >>> from enhance.models.architecture import wiener_state_shapes
        >>> state = {name: np.zeros(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
        >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
        >>> runner = WienerOnnxNetwork(wiener_onnx_graph(state, meta).SerializeToString(), threads=1)
        >>> graph = onnx.load_model_from_string(runner.averaged().export())
        >>> runner.export() == runner.graph, {prop.key: prop.value for prop in graph.metadata_props}["symmetric"]
        (True, 'True')
        """
        recorded = self.checked["symmetric"]
        return self.graph if recorded == self.symmetric else with_metadata(self.graph, symmetric=self.symmetric)

    def __repr__(self) -> str:
        return (f"WienerOnnxNetwork(depth={self.depth}, width={self.width}, kind={self.kind!r}, "
                f"symmetric={self.symmetric})")  # fmt: skip


#: The 8 rotations and flips of the square as ``(transpose, quarter turns)``, the identity first: pass ``g``
#: runs the network on ``rot90(x.T if transpose else x, turns)`` and turns its output back
#: (`~enhance.models.runner.DIHEDRAL`).
D4_PASSES = DIHEDRAL
#: Largest difference between a moved kernel and the kernel, as a fraction of its absolute sum, for which the
#: 8 passes of 'full' filter the image once (`d4_symmetric`): float32 rounding of a symmetric bank is about 1e-7.
SYMMETRY_TOLERANCE = 1e-6
#: Bands of rows are at least this many receptive margins tall: each band computes two margins of overlap.
MIN_BAND_MARGINS = 4
#: Responses to constant images (`WienerOnnxNetwork.constant_response`) kept per runner: the last noise levels.
RESPONSES_KEPT = 8
#: Filterings of the passes' linear stage (`WienerOnnxNetwork.shared_linear`) kept per runner: the last noise levels.
FILTERINGS_KEPT = 8


def split_rows(rows: int, passes: int, workers: int, margin: int) -> int:
    """Bands of rows to cut a whole image into, so that ``workers`` cores share ``passes`` passes of each evenly.

    Parameters
    ----------
    rows : int
        Rows of the image.
    passes : int
        Passes per band (8 for 'full', 1 for 'light').
    workers : int
        Calls at once.
    margin : int
        The network's receptive margin, pixels.

    Returns
    -------
    int
        ``workers / gcd(passes, workers)`` (the fewest bands whose passes divide evenly between the workers),
        fewer where the bands would be under `MIN_BAND_MARGINS` margins tall; at least 1.

    Examples
    --------
    >>> split_rows(400, 8, 2, 18), split_rows(400, 1, 2, 18), split_rows(400, 8, 3, 18), split_rows(100, 1, 2, 18)
    (1, 2, 3, 1)
    """
    bands = workers // math.gcd(passes, workers)
    return max(1, min(bands, rows // (MIN_BAND_MARGINS * max(margin, 1))))


def _tiles(shape, tile, bands):
    """``((y0, y1), (x0, x1))`` of each tile of the output's input grid, row by row."""
    ny, nx = shape
    tile_y, tile_x = (-(-ny // bands), nx) if tile is None else (tile, tile)
    rows = [(y, min(y + tile_y, ny)) for y in range(0, ny, tile_y)]
    return [(r, (x, min(x + tile_x, nx))) for r in rows for x in range(0, nx, tile_x)]


class _Inline:
    """`concurrent.futures.ThreadPoolExecutor`'s ``submit`` run at once, in this thread."""

    class _Done:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    def submit(self, fn, *args):
        return self._Done(fn(*args))


class _Passes:
    """A region's passes ('full': the 8 rotations and flips; 'light': the identity), sharing one filtering.

    The window, less one offset for the whole image (`image_offset`, taken by `WienerOnnxNetwork.run_image`: the
    rounding then scales with the image's contrast, not its level), is filtered once with `d4_bank` of each pass
    (or once with the bank, where it is `d4_symmetric` or the runner runs the identity pass only), in row blocks
    on the workers, with the kernels for
    the noise level written into a graph (`WienerOnnxNetwork.shared_linear`); each pass adds the offset's response
    back (the offset itself with exact constants: the filters sum to one,
    `~enhance.training.linear_stage.mmse_filters`, so that a constant image's estimate is that constant
    exactly), moves its four phases as it moves the image and runs the network on them (`wiener_onnx_graph` with
    ``estimate_input`` and ``constants_apart``). With exact constants the response to constant images, left out of
    that graph, is subtracted per pixel (for 'full' the mean over the phases, once from the passes' mean).
    """

    def __init__(self, runner, workers, offset):
        self.session, self.linear, sums = runner.shared_linear()
        self.response = runner.constant_response()  # None without exact constants; 'full': the mean over the phases
        self.noise, self.workers, self.taps = np.full(1, runner.noise, np.float32), workers, runner.checked["taps"]
        self.margin, self.offset = runner.margin, offset
        gains = np.ones_like(sums) if self.response is not None else sums  # exact constants: one (see above)
        self.constant = (self.offset * gains).astype(np.float32)[:, None, None]
        self.filterings = len(sums) // 4  # 8: one per pass; 1: the same phases for every pass

    def submit(self, pool, window, passes):
        rows = window.shape[0] - self.taps + 1
        edges = np.linspace(0, rows, min(self.workers, rows) + 1).astype(int)
        blocks = [
            pool.submit(self.filtered, window[a : b + self.taps - 1]) for a, b in zip(edges, edges[1:], strict=False)
        ]
        # the passes' response to constants, subtracted from their mean once: queued before the join, which one
        # core runs while the other would wait for it
        response = [pool.submit(self.constant_response, window)] if self.response is not None else []
        # each filtering's phases joined once (one join for every pass where the bank is `d4_symmetric`)
        indices = [D4_PASSES.index(tuple(transform)) if self.filterings > 1 else 0 for transform in passes]
        joined = {index: pool.submit(self.joined, blocks, index) for index in dict.fromkeys(indices)}
        futures = [pool.submit(self.one_pass, window, transform, joined[index])
                   for transform, index in zip(passes, indices, strict=True)]  # fmt: skip
        return futures + response

    def constant_response(self, window):
        return self.response.phase_major(window[self.margin : -self.margin, self.margin : -self.margin])

    def combine(self, results):
        """The region's output from its passes' futures: their mean, summed in float64 in a fixed order, less the
        response to constants."""
        passes = results if self.response is None else results[:-1]
        mean = passes[0].result()
        if len(passes) > 1:
            mean = mean.astype(np.float64)
            for result in passes[1:]:
                mean += result.result()
            mean /= len(passes)
        if self.response is not None:
            response = results[-1].result()  # (1, ny, nx): the mean over the phases ('full'); (4, ny, nx): each
            blocks = mean.reshape(response.shape[1], 2, response.shape[2], 2)  # each input pixel's 2x2 block
            if len(response) == 1:
                blocks -= response[0][:, None, :, None]
            else:  # phase 2 a + b is output pixel (2 y + a, 2 x + b)
                for phase, values in enumerate(response):
                    blocks[:, phase // 2, :, phase % 2] -= values
        return mean

    def filtered(self, rows):
        centred = (rows - self.offset)[None, None]
        phases = self.linear.run(None, {"image": centred})[0][0]
        return phases[:, : rows.shape[0] - self.taps + 1, : rows.shape[1] - self.taps + 1]  # less an odd size's extra

    def joined(self, blocks, index):
        """Filtering ``index``'s four phases of the window, its row blocks joined, plus the offset's response."""
        phases = np.concatenate([block.result()[4 * index : 4 * index + 4] for block in blocks], axis=1)
        phases += self.constant[4 * index : 4 * index + 4]
        return phases

    def one_pass(self, window, transform, joined):
        moved = dihedral_transform(window, transform)  # the shared phases are moved into a new array, never changed
        estimate = _moved_phases(joined.result(), transform)
        feeds = {"image": moved[None, None], "noise": self.noise, "estimate": estimate[None]}
        return dihedral_inverse(self.session.run(None, feeds)[0][0, 0], transform)


def _reached(mask: np.ndarray, size: int) -> np.ndarray:
    """Whether each ``size x size`` window of ``mask`` holds a True value (a summed-area table: one pass whatever
    ``size``); ``(ny - size + 1, nx - size + 1)``."""
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int32)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int32), axis=1, out=table[1:, 1:])
    return (table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]) > 0


def image_offset(padded: np.ndarray) -> np.float32:
    """The offset the linear stage's input is taken from: the median of the image's finite pixels (of every
    fourth row and column), 0 if none: a constant image's value exactly, and neither a far outlier nor a NaN
    pixel moves it far.

    Parameters
    ----------
    padded : `~numpy.ndarray`
        The mirrored image.

    Returns
    -------
    numpy.float32
        The offset, the image's units.

    Examples
    --------
    >>> bool(image_offset(np.full((5, 7), 0.8, np.float32)) == np.float32(0.8))
    True
    >>> float(image_offset(np.array([[1.0, np.nan], [1e9, 2.0]], np.float32)))  # the median of 1, 2 and 1e9
    2.0
    """
    step = OFFSET_STEP if min(padded.shape) >= OFFSET_MIN_SIDE else 1
    sample = padded[::step, ::step]
    finite = sample[np.isfinite(sample)]
    return np.float32(np.median(finite)) if finite.size else np.float32(0.0)


def _moved_phases(phases, transform):
    """The four phases ``(4, h, w)`` of an x2 image as the pass ``transform`` sees them: the x2 image moved."""
    if tuple(transform) == D4_PASSES[0]:  # the identity: as they are
        return phases
    _, h, w = phases.shape
    fine = phases.reshape(2, 2, h, w).transpose(2, 0, 3, 1).reshape(2 * h, 2 * w)
    fine = dihedral_transform(fine, transform)
    ny, nx = fine.shape[0] // 2, fine.shape[1] // 2
    return np.ascontiguousarray(fine.reshape(ny, 2, nx, 2).transpose(1, 3, 0, 2).reshape(4, ny, nx))


def _estimate_input_session(runner):
    """The runner's network as a graph that reads the linear stage's estimate (`wiener_onnx_graph`), kept in the
    graph cache for a shipped model (``runner.cache_key``), in the runner's layout."""

    def build():
        state = {**_graph_state(runner), "filters": runner.filter_bank[0].astype(np.float32)}
        return wiener_onnx_graph(state, _options(runner), estimate_input=True, constants_apart=True,
                                 paired_output=True)  # fmt: skip

    key = f"{runner.cache_key}-estimate" if runner.cache_key else None
    pad, taps = 2 * runner.margin, runner.checked["taps"]
    estimate = np.random.default_rng(1).uniform(0.2, 1.2, (1, 4, 38 + pad - taps, 30 + pad - taps)).astype(np.float32)
    return _runner_session(runner, "estimate", key, cached_graph(key, build), estimate=estimate)


def _runner_session(runner, role, key, graph, shape=(37, 29), **feeds):
    """One of the runner's own graphs (``role``) opened single-threaded, in the blocked layout kept for it where
    the runner's graph runs blocked (checked on a probe image of ``shape`` output pixels with HMI's noise and
    ``feeds``, which must hold the graph's other inputs); its layout recorded for `WienerOnnxNetwork.layouts`."""
    if runner.layout != "blocked":
        session, layout, _ = open_session(graph, threads=1, blocked=False, name=runner.name)
    else:
        image = np.random.default_rng(0).uniform(
            0.2, 1.2, (1, 1, shape[0] + 2 * runner.margin, shape[1] + 2 * runner.margin)
        )
        probe = {"image": image.astype(np.float32), "noise": np.array([runner.noise_unit], np.float32), **feeds}
        found = []

        def open_with(blocked):
            found.append(open_session(graph, threads=1, blocked=blocked, probe=probe, name=runner.name))
            return found[-1]

        session, layout = open_in_kept_layout(key, open_with), found[-1][1]
    runner._shared.setdefault("layouts", {})[role] = layout
    return session


def _graph_state(runner):
    """The network's weights as stored in the runner's graph, without the derived ``flat.*`` ones."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(runner.graph)
    return {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer if not t.name.startswith("flat.")}


def _options(runner):
    """The runner's checked architecture with its ``exact_constants`` and ``odd`` options."""
    return {**runner.checked, "exact_constants": runner.metadata.get("exact_constants") == "True",
            "odd": runner.metadata.get("odd") == "True"}  # fmt: skip


def _linear_sessions(runner, passes):
    """The linear stage of ``passes`` (the identity alone: one filtering with the bank): the session of
    `d4_kernel_graph` and the bytes of `paired_filtering_graph` to write its kernels into; both kept in the graph
    cache for a shipped model."""
    filters, nodes, unit = runner.filter_bank
    key = f"{runner.cache_key}-kernels-{len(passes)}" if runner.cache_key else None
    kernels = cached_graph(key, lambda: d4_kernel_graph(filters, nodes, unit, passes=passes))
    key = f"{runner.cache_key}-filtering-{len(passes)}" if runner.cache_key else None
    template = cached_graph(key, lambda: paired_filtering_graph(4 * len(passes), filters.shape[-1]))
    return open_session(kernels, threads=1, blocked=False, name=runner.name)[0], template


@contextlib.contextmanager
def _executor(workers, tasks):
    if workers == 1 or tasks == 1:
        yield _Inline()
        return
    with concurrent.futures.ThreadPoolExecutor(min(workers, tasks)) as pool:
        yield pool


def is_wiener_file(metadata: dict) -> bool:
    """Whether a weights file's metadata (or an ONNX file's) describes a Wiener-Enhance network.

    Parameters
    ----------
    metadata : dict
        The file's string metadata.

    Returns
    -------
    bool
        True for ``architecture = 'wiener-enhance'``.

    Examples
    --------
    >>> is_wiener_file({"architecture": "wiener-enhance"}), is_wiener_file({"depth": "5"})
    (True, False)
    """
    return metadata.get("architecture") == WIENER_ENHANCE


def wiener_graph_from_weights(path, *, kind: str | None = None, card: dict | None = None, symmetric: bool = False):
    """The ONNX graph of a Wiener-Enhance safetensors file, read and checked with numpy only.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The weights file.
    kind : {'intensity', 'blos'}, optional
        If given, the file's kind must be this one.
    card : dict, optional
        A model card to record.
    symmetric : bool
        Record the average over the 8 rotations and flips (the shipped 'full' model).

    Returns
    -------
    `onnx.ModelProto`
        See `wiener_onnx_graph`.

    Examples
    --------
    >>> from enhance.models.registry import shipped_path
    >>> graph = wiener_graph_from_weights(shipped_path("blos", "light"), kind="blos")
    >>> [i.name for i in graph.graph.input]
    ['image', 'noise']
    """
    state, metadata = read_weights(path)
    # The check `~enhance.models.pretrained.load_network` makes, so that both paths refuse the same files.
    meta = check_weights_metadata(path, metadata, {name: array.shape for name, array in state.items()})
    check_finite_state(path, state)
    found = metadata.get("kind")
    if kind is not None and found not in (None, kind):
        msg = f"{path} holds a {found!r} network, but kind={kind!r}"
        raise ValueError(msg)
    kind = kind or found
    return wiener_onnx_graph(state, meta, kind=kind, metadata=inference_metadata(kind, card=card), symmetric=symmetric)


def wiener_graph_from_network(network, *, kind: str | None = None, metadata: dict | None = None):
    """The ONNX graph of a PyTorch `~enhance.models.hybrid.WienerEnhanceNet` (its state dict as numpy arrays).

    Parameters
    ----------
    network : `~enhance.models.hybrid.WienerEnhanceNet`
        The network.
    kind : {'intensity', 'blos'}, optional
        What it enhances.
    metadata : dict, optional
        More metadata to record.

    Returns
    -------
    `onnx.ModelProto`
        See `wiener_onnx_graph`.

    Examples
    --------
    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> graph = wiener_graph_from_network(WienerEnhanceNet(depth=1, width=4, taps=5))
    >>> {p.key: p.value for p in graph.metadata_props}["margin"]
    '6'
    """
    state = {name: value.detach().cpu().float().numpy() for name, value in network.state_dict().items()}
    meta = {"depth": network.depth, "width": network.width, "taps": network.taps,
            "noise_nodes": list(network.noise_nodes), "noise_unit": network.noise_unit,
            "exact_constants": network.exact_constants, "odd": network.odd}  # fmt: skip
    return wiener_onnx_graph(state, meta, kind=kind, metadata=metadata, symmetric=network.symmetric)


def graph_filter_bank(model):
    """The linear stage of a Wiener-Enhance ONNX graph: its filter bank, noise nodes and noise unit.

    Parameters
    ----------
    model : str, `~pathlib.Path` or bytes
        The ONNX file or its bytes (`wiener_onnx_graph`).

    Returns
    -------
    tuple
        ``(filters, noise_nodes, noise_unit)``: float64 ``(4 K, 1, taps, taps)``, the nodes in units of
        ``noise_unit``, and HMI's noise in network units (what `~enhance.inference.uncertainty` reads).

    Examples
    --------
    >>> from enhance.models.architecture import wiener_state_shapes
    >>> state = {name: np.zeros(shape, np.float32) for name, shape in wiener_state_shapes(1, 4, 3, 2).items()}
    >>> meta = {"depth": 1, "width": 4, "taps": 3, "noise_nodes": [1.0, 2.0], "noise_unit": 1e-3}
    >>> filters, nodes, unit = graph_filter_bank(wiener_onnx_graph(state, meta).SerializeToString())
    >>> filters.shape, nodes, unit
    ((8, 1, 3, 3), (1.0, 2.0), 0.001)
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
    meta = {prop.key: prop.value for prop in proto.metadata_props}
    nodes, taps = tuple(json.loads(meta["noise_nodes"])), int(meta["taps"])
    bank = next(numpy_helper.to_array(t) for t in proto.graph.initializer if t.name == "filters")
    return bank.astype(np.float64).reshape(4 * len(nodes), 1, taps, taps), nodes, float(meta["noise_unit"])
