import json
import math

from ..constants import HMI_NOISE_NETWORK, KINDS

"""Facts of the Enhance architecture that need no PyTorch: the receptive field of a network of a given depth.

`~enhance.models.network` builds the network itself; inference without PyTorch (onnxruntime) and the
tiling take what they need to know about it from here.
"""

__all__ = ["receptive_margin", "WIENER_ENHANCE", "wiener_state_shapes", "wiener_architecture_of", "architecture_of",
           "check_weights_metadata", "check_kind", "check_bounded_integer", "check_noise_nodes", "check_noise_unit",
           "wiener_margin", "NOISE_UNIT_RANGE", "MAX_NODES", "OFFSET_STEP", "OFFSET_MIN_SIDE"]  # fmt: skip

#: Largest architecture a weights file may declare (the paper's is depth 5, width 64): a file that claims
#: more is refused before anything is allocated.
MAX_DEPTH = 64
MAX_WIDTH = 512


def receptive_margin(depth: int) -> int:
    """Input pixels on each side that influence one output pixel of ``EnhanceNet(depth=depth)``.

    ``2 depth + 2`` 3x3 convolutions run on the input grid and one on the x2 grid (half an input
    pixel, rounded up), so a tile with this margin on every side gives exact interior outputs.

    Parameters
    ----------
    depth : int
        Residual blocks of the network.

    Returns
    -------
    int
        The margin, input pixels.

    Examples
    --------
    >>> receptive_margin(5), receptive_margin(1)
    (13, 5)
    """
    return 2 * depth + 3


def state_shapes(depth: int, width: int) -> dict:
    """``{name: shape}`` of the state dict of ``EnhanceNet(depth=depth, width=width)``, without PyTorch.

    Parameters
    ----------
    depth : int
        Residual blocks.
    width : int
        Channels per convolution.

    Returns
    -------
    dict
        Tensor name to shape, as a safetensors weights file of this network holds them.

    Examples
    --------
    >>> shapes = state_shapes(1, 8)
    >>> len(shapes), shapes["conv_in.weight"], shapes["conv_out.weight"]
    (27, (8, 1, 3, 3), (1, 8, 1, 1))
    """

    def conv(name, out, into, size=3):
        return {f"{name}.weight": (out, into, size, size), f"{name}.bias": (out,)}

    def batchnorm(name):
        return {**{f"{name}.{key}": (width,) for key in ("weight", "bias", "running_mean", "running_var")},
                f"{name}.num_batches_tracked": ()}  # fmt: skip

    shapes = conv("conv_in", width, 1)
    for block in range(depth):
        for j in (1, 2):
            shapes |= conv(f"blocks.{block}.conv{j}", width, width) | batchnorm(f"blocks.{block}.bn{j}")
    shapes |= conv("conv_skip", width, width) | batchnorm("bn_skip") | conv("conv_up", width, width)
    return shapes | conv("conv_out", 1, width, size=1)


def architecture_of(path, meta: dict, shapes: dict) -> tuple[int, int]:
    """``(depth, width)`` of a weights file's metadata, within bounds and agreeing with its tensors.

    Checked before anything is built: a file that claims a huge network, or whose tensors are not the
    ones its metadata names, is refused with a `ValueError` naming ``path``.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The weights file (for the messages).
    meta : dict
        Its metadata, with ``depth`` and ``width``.
    shapes : dict
        ``{name: shape}`` of the tensors it holds.

    Returns
    -------
    depth : int
        Residual blocks.
    width : int
        Channels per convolution.

    Examples
    --------
    >>> architecture_of("tiny.safetensors", {"depth": "1", "width": "8"}, state_shapes(1, 8))
    (1, 8)
    """
    depth, width = (check_bounded_integer(meta, key, bound, name=path) for key, bound in
                    (("depth", MAX_DEPTH), ("width", MAX_WIDTH)))  # fmt: skip
    expected = state_shapes(depth, width)
    shapes = {name: tuple(shape) for name, shape in shapes.items()}
    absent = [name for name in expected if name not in shapes]
    extra = [name for name in shapes if name not in expected]
    wrong = [name for name in expected if name in shapes and shapes[name] != expected[name]]
    if absent or extra or wrong:
        parts = [f"{len(absent)} missing (e.g. {absent[0]})" if absent else "",
                 f"{len(extra)} unexpected (e.g. {extra[0]})" if extra else "",
                 f"{len(wrong)} of another shape (e.g. {wrong[0]}: {shapes[wrong[0]]} in the file, "
                 f"{expected[wrong[0]]} for this architecture)" if wrong else ""]  # fmt: skip
        msg = (f"{path}: its tensors do not match its metadata (depth {depth}, width {width}): "
               + ", ".join(part for part in parts if part))  # fmt: skip
        raise ValueError(msg)
    return depth, width


#: The ``architecture`` metadata of a `~enhance.models.hybrid.WienerEnhanceNet` weights file (an
#: `~enhance.models.network.EnhanceNet` file has none, or ``"enhance"``).
WIENER_ENHANCE = "wiener-enhance"
#: The model family of the paper's `~enhance.models.network.EnhanceNet`.
PAPER = "paper"
#: The model family of each ``architecture`` a weights file may declare.
FAMILY_OF_ARCHITECTURE = {"enhance": PAPER, WIENER_ENHANCE: WIENER_ENHANCE}
#: Largest linear-stage kernel and filter bank a weights file may declare.
MAX_TAPS = 63
#: Most noise levels a weights file's filter bank may declare (``noise_nodes``).
MAX_NODES = 32
#: A Wiener-Enhance network with exact constants runs its linear stage on the image less the median of every
#: ``OFFSET_STEP``-th row and column of the mirrored image (of all its pixels when a side is under
#: ``OFFSET_MIN_SIDE``): the PyTorch network, the onnxruntime runner and the exported graph take this one sample.
OFFSET_STEP = 4
OFFSET_MIN_SIDE = 64


def wiener_state_shapes(depth: int, width: int, taps: int, nodes: int) -> dict:
    """``{name: shape}`` of the state dict of a `~enhance.models.hybrid.WienerEnhanceNet`, without PyTorch.

    Parameters
    ----------
    depth : int
        Residual blocks of the CNN.
    width : int
        Channels of the CNN.
    taps : int
        Size of the linear stage's kernels.
    nodes : int
        Noise levels of the filter bank.

    Returns
    -------
    dict
        Tensor name to shape.

    Examples
    --------
    >>> shapes = wiener_state_shapes(1, 8, 5, 8)
    >>> shapes["filters"], shapes["conv_in.weight"], shapes["conv_out.weight"]
    ((32, 1, 5, 5), (8, 6, 3, 3), (4, 8, 3, 3))
    """

    def conv(name, out, into):
        return {f"{name}.weight": (out, into, 3, 3), f"{name}.bias": (out,)}

    shapes = {"log_nodes": (nodes,), "filters": (4 * nodes, 1, taps, taps)} | conv("conv_in", width, 6)
    for block in range(depth):
        shapes |= conv(f"blocks.{block}.0", width, width) | conv(f"blocks.{block}.1", width, width)
    return shapes | conv("conv_out", 4, width)


def wiener_architecture_of(path, meta: dict, shapes: dict) -> dict:
    """The constructor arguments of a `~enhance.models.hybrid.WienerEnhanceNet` weights file, checked.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The weights file (for the messages).
    meta : dict
        Its metadata: ``depth``, ``width``, ``taps``, ``noise_nodes`` (JSON list), ``noise_unit``.
    shapes : dict
        ``{name: shape}`` of the tensors it holds.

    Returns
    -------
    dict
        ``depth``, ``width``, ``taps``, ``noise_nodes``, ``noise_unit``.

    Examples
    --------
    >>> meta = {"depth": "1", "width": "8", "taps": "5", "noise_nodes": "[1, 2]", "noise_unit": "0.001"}
    >>> wiener_architecture_of("tiny.safetensors", meta, wiener_state_shapes(1, 8, 5, 2))["noise_nodes"]
    [1.0, 2.0]
    """
    values = {key: check_bounded_integer(meta, key, bound, name=path) for key, bound in
              (("depth", MAX_DEPTH), ("width", MAX_WIDTH), ("taps", MAX_TAPS))}  # fmt: skip
    if values["taps"] % 2 == 0:
        msg = f"{path}: metadata taps={meta['taps']!r} is not odd (the linear stage's kernels are centred)"
        raise ValueError(msg)
    nodes = check_noise_nodes(meta, name=path)
    unit = check_noise_unit(meta, name=path)
    expected = wiener_state_shapes(values["depth"], values["width"], values["taps"], len(nodes))
    found = {name: tuple(shape) for name, shape in shapes.items()}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or [k for k in expected if found[k] != expected[k]]
        msg = f"{path}: its tensors do not match its metadata ({values}, {len(nodes)} noise levels): e.g. {wrong[0]}"
        raise ValueError(msg)
    flags = {}
    for name in ("exact_constants", "odd"):  # absent in files written before these options existed
        text = str(meta.get(name, "False"))
        if text not in ("True", "False"):
            msg = f"{path}: metadata {name}={meta.get(name)!r} is neither 'True' nor 'False'"
            raise ValueError(msg)
        flags[name] = text == "True"
    return {**values, "noise_nodes": nodes, "noise_unit": unit, **flags}


def _missing(meta: dict, key: str, name) -> None:
    if key not in meta:
        msg = f"{name}: its metadata lacks the key {key!r} (not a network file of solar-enhance, or a damaged one)"
        raise ValueError(msg)


def check_bounded_integer(meta: dict, key: str, bound: int, *, name) -> int:
    """``meta[key]`` as an integer from 1 to ``bound``, or a `ValueError` naming the file and the key.

    Parameters
    ----------
    meta : dict
        A file's metadata (strings, or numbers).
    key : str
        The key.
    bound : int
        The largest value accepted.
    name : str or `~pathlib.Path`
        The file, for the message.

    Returns
    -------
    int
        The value.

    Examples
    --------
    >>> check_bounded_integer({"depth": "3"}, "depth", MAX_DEPTH, name="w.onnx")
    3
    """
    _missing(meta, key, name)
    value = meta[key]
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text.isdigit() or not 1 <= int(text) <= bound:
        msg = f"{name}: metadata {key}={value!r} is not an integer from 1 to {bound}"
        raise ValueError(msg)
    return int(text)


def check_kind(meta: dict, *, name, required: bool = True) -> str | None:
    """The data kind of a file's metadata ('intensity' or 'blos'); None where it is absent or empty and not required.

    Parameters
    ----------
    meta : dict
        The file's metadata; ``kind`` is read.
    name : str
        The file, for the messages.
    required : bool
        Refuse metadata without ``kind``.

    Returns
    -------
    str or None
        'intensity' or 'blos'; None when absent or empty and not required.

    Raises
    ------
    ValueError
        When ``kind`` is missing (and required) or not one of the kinds.

    Examples
    --------
    >>> check_kind({"kind": "blos"}, name="w.onnx"), check_kind({"kind": ""}, name="w.onnx", required=False)
    ('blos', None)
    """

    if required:
        _missing(meta, "kind", name)
    value = meta.get("kind")
    if not required and value in (None, ""):
        return None
    if value not in KINDS:
        msg = f"{name}: metadata kind={value!r} is not one of {', '.join(KINDS)}"
        raise ValueError(msg)
    return value


def check_noise_nodes(meta: dict, *, name) -> list[float]:
    """The filter bank's noise levels (``noise_nodes``, a JSON list): 2 to `MAX_NODES` finite positive levels,
    increasing, a constant ratio apart, as `~enhance.models.hybrid.WienerEnhanceNet` requires.

    Parameters
    ----------
    meta : dict
        The file's metadata; ``noise_nodes`` is read (a JSON list, or a list).
    name : str
        The file, for the messages.

    Returns
    -------
    list of float
        The levels, in units of HMI's noise.

    Raises
    ------
    ValueError
        When ``noise_nodes`` is missing or not such a list.

    Examples
    --------
    >>> check_noise_nodes({"noise_nodes": "[0.5, 1, 2]"}, name="w.safetensors")
    [0.5, 1.0, 2.0]
    """
    _missing(meta, "noise_nodes", name)
    text = meta["noise_nodes"]
    try:
        nodes = [float(v) for v in (json.loads(text) if isinstance(text, str) else text)]
    except (ValueError, TypeError):
        nodes = []
    ratios = [b / a for a, b in zip(nodes, nodes[1:], strict=False)] if all(v > 0 for v in nodes) else []
    even = bool(ratios) and all(abs(r - ratios[0]) <= 1e-6 * ratios[0] for r in ratios) and ratios[0] > 1
    if not (2 <= len(nodes) <= MAX_NODES and all(math.isfinite(v) and v > 0 for v in nodes) and even):
        msg = (f"{name}: metadata noise_nodes={text!r} is not a list of 2 to {MAX_NODES} increasing positive "
               "levels a constant ratio apart")  # fmt: skip
        raise ValueError(msg)
    return nodes


#: Largest factor between a file's ``noise_unit`` and HMI's noise in the network's units for its kind
#: (1e-3 I/Ic, 0.01 kG); a file of unknown kind must lie within it of one of the two.
NOISE_UNIT_RANGE = 4.0


def check_noise_unit(meta: dict, *, name) -> float:
    """``noise_unit``: HMI's noise in the network's units, within `NOISE_UNIT_RANGE` of its kind's (1e-3 I/Ic,
    0.01 kG).

    Parameters
    ----------
    meta : dict
        The file's metadata; ``noise_unit`` and, where present, ``kind`` are read.
    name : str
        The file, for the messages.

    Returns
    -------
    float
        HMI's noise in the network's units (I/Ic for continuum, kG for magnetograms).

    Raises
    ------
    ValueError
        When ``noise_unit`` is missing, not a number, or not within `NOISE_UNIT_RANGE` of its kind's (of
        either kind's when ``kind`` is absent).

    Examples
    --------
    >>> check_noise_unit({"noise_unit": "0.001", "kind": "intensity"}, name="w.onnx")
    0.001
    """

    _missing(meta, "noise_unit", name)
    kind = check_kind(meta, name=name, required=False)
    nominal = HMI_NOISE_NETWORK
    try:
        unit = float(meta["noise_unit"])
    except (ValueError, TypeError):
        unit = float("nan")
    allowed = [nominal[kind]] if kind else list(nominal.values())
    if not any(level / NOISE_UNIT_RANGE <= unit <= level * NOISE_UNIT_RANGE for level in allowed):
        what = f"{kind} network's" if kind else "network's"
        msg = (f"{name}: metadata noise_unit={meta['noise_unit']!r} is not HMI's noise in the {what} units (within "
               f"{NOISE_UNIT_RANGE:g} x of {' or '.join(f'{v:g}' for v in allowed)})")  # fmt: skip
        raise ValueError(msg)
    return unit


def wiener_margin(depth: int, taps: int) -> int:
    """Input pixels on each side that an output pixel of a Wiener-Enhance network reads (its tiling margin).

    Parameters
    ----------
    depth : int
        Residual blocks of the CNN.
    taps : int
        Size of the linear stage's kernels (odd).

    Returns
    -------
    int
        The margin, input pixels: ``taps // 2 + 2 depth + 2``.

    Examples
    --------
    >>> wiener_margin(3, 21)
    18
    """
    return taps // 2 + 2 * depth + 2


def check_weights_metadata(path, meta: dict, shapes: dict) -> dict:
    """Every metadata key of a safetensors weights file that the networks read, checked before anything is built.

    The one check for both paths: PyTorch (`~enhance.models.pretrained.load_network`) and numpy/onnxruntime
    (`~enhance.runtime.folding`, `~enhance.runtime.wiener_onnx`), so that both refuse the same files.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The file, for the messages.
    meta : dict
        Its metadata: ``kind``, ``depth``, ``width``, ``architecture`` (absent for the paper's networks) and,
        for Wiener-Enhance, ``taps``, ``noise_nodes``, ``noise_unit``.
    shapes : dict
        ``{name: shape}`` of its tensors.

    Returns
    -------
    dict
        ``architecture``, ``kind``, and the constructor arguments (`architecture_of`, `wiener_architecture_of`).

    Examples
    --------
    >>> check_weights_metadata("w.safetensors", {"kind": "blos", "depth": "1", "width": "8"}, state_shapes(1, 8))
    {'architecture': 'enhance', 'kind': 'blos', 'depth': 1, 'width': 8}
    """
    kind = check_kind(meta, name=path)
    architecture = meta.get("architecture", "enhance")
    if architecture not in ("enhance", WIENER_ENHANCE):
        msg = (f"{path}: metadata architecture={architecture!r} is not one this version builds "
               f"(enhance, {WIENER_ENHANCE})")  # fmt: skip
        raise ValueError(msg)
    if architecture == WIENER_ENHANCE:
        return {"architecture": architecture, "kind": kind, **wiener_architecture_of(path, meta, shapes)}
    depth, width = architecture_of(path, meta, shapes)
    return {"architecture": architecture, "kind": kind, "depth": depth, "width": width}
