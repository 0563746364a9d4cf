import json
import math

"""Facts of the Enhance architecture that need no PyTorch: the receptive field of a network of a given depth.

`~enhance.models.network` builds the network itself; inference without PyTorch (onnxruntime) and the
tiling take what they need to know about it from here.
"""

__all__ = ["receptive_margin", "WIENER_ENHANCE", "wiener_state_shapes", "wiener_architecture_of"]

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
    values = {}
    for name, bound in (("depth", MAX_DEPTH), ("width", MAX_WIDTH)):
        text = str(meta[name]).strip()
        if not text.isdigit() or not 1 <= int(text) <= bound:
            msg = f"{path}: metadata {name}={meta[name]!r} is not an integer from 1 to {bound}"
            raise ValueError(msg)
        values[name] = int(text)
    depth, width = values["depth"], values["width"]
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
#: Largest linear-stage kernel and filter bank a weights file may declare.
MAX_TAPS = 63
MAX_NODES = 32


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
    values = {}
    for name, bound in (("depth", MAX_DEPTH), ("width", MAX_WIDTH), ("taps", MAX_TAPS)):
        text = str(meta.get(name, "")).strip()
        if not text.isdigit() or not 1 <= int(text) <= bound:
            msg = f"{path}: metadata {name}={meta.get(name)!r} is not an integer from 1 to {bound}"
            raise ValueError(msg)
        values[name] = int(text)
    try:
        nodes = [float(v) for v in json.loads(meta.get("noise_nodes", ""))]
        unit = float(meta.get("noise_unit", ""))
    except (ValueError, TypeError) as err:
        msg = f"{path}: metadata noise_nodes/noise_unit are not numbers: {err}"
        raise ValueError(msg) from None
    if not 2 <= len(nodes) <= MAX_NODES or not all(math.isfinite(v) and v > 0 for v in [*nodes, unit]):
        msg = f"{path}: metadata noise_nodes must be 2 to {MAX_NODES} positive levels and noise_unit positive"
        raise ValueError(msg)
    expected = wiener_state_shapes(values["depth"], values["width"], values["taps"], len(nodes))
    found = {name: tuple(shape) for name, shape in shapes.items()}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or [k for k in expected if found[k] != expected[k]]
        msg = f"{path}: its tensors do not match its metadata ({values}, {len(nodes)} noise levels): e.g. {wrong[0]}"
        raise ValueError(msg)
    return {**values, "noise_nodes": nodes, "noise_unit": unit}
