"""Trained weights to an inference graph with numpy only: BatchNorm folding and the x2 phase kernels.

With these, a safetensors weights file (the shipped models or one from ``enhance train``) becomes an
ONNX graph (`~enhance.runtime.export.onnx_graph`) run by onnxruntime, and ``enhance run`` works with
``pip install 'solar-enhance[onnx]'`` alone, without PyTorch. The torch path
(`~enhance.models.network.fold_batchnorm`, `~enhance.runtime.graph.phase_kernels`) computes the same
arrays; the two agree to float32 rounding.
"""

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

from ..io import check_regular_file
from ..models.architecture import check_weights_metadata

__all__ = ["BN_EPS", "phase_kernels_numpy", "fold_state", "read_weights", "check_finite_state", "folded_arrays"]

#: BatchNorm epsilon of `~enhance.models.network.EnhanceNet` (Keras' default, as in the paper).
BN_EPS = 1e-3

# Rows of the 3x3 kernel that fall onto low-resolution rows (y - 1, y) for an even output row and (y, y + 1)
# for an odd one, after nearest-neighbour x2 up-sampling (see `~enhance.runtime.graph.phase_kernels`).
_TAPS = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], dtype=np.float64)


def phase_kernels_numpy(weight: np.ndarray) -> np.ndarray:
    """The four 2x2 kernels of a 3x3 convolution after nearest-neighbour x2 up-sampling, with numpy.

    Parameters
    ----------
    weight : (out, in, 3, 3) `~numpy.ndarray`
        The kernel of the convolution on the x2 grid.

    Returns
    -------
    (4 out, in, 2, 2) `~numpy.ndarray`
        float32; channel ``p * out + o`` holds kernel ``o`` of phase ``p = 2 a + b``, the output pixels
        ``(2 y + a, 2 x + b)``, as `~enhance.runtime.graph.phase_kernels` computes it with torch.

    Examples
    --------
    >>> phase_kernels_numpy(np.ones((8, 4, 3, 3))).shape
    (32, 4, 2, 2)
    """
    weight = np.asarray(weight)
    if weight.ndim != 4 or weight.shape[2:] != (3, 3):
        msg = f"weight must have shape (out, in, 3, 3), got {weight.shape}"
        raise ValueError(msg)
    kernels = np.einsum("ark,oikl,bcl->aboirc", _TAPS, weight.astype(np.float64), _TAPS)
    return kernels.reshape(4 * weight.shape[0], weight.shape[1], 2, 2).astype(np.float32)


def fold_state(state, *, depth: int) -> dict:
    """BatchNorm-folded float32 arrays of an `~enhance.models.network.EnhanceNet` state dict of numpy arrays.

    Parameters
    ----------
    state : mapping of str to `~numpy.ndarray`
        The network's ``state_dict`` (as a safetensors file holds it).
    depth : int
        Number of residual blocks.

    Returns
    -------
    dict
        The arrays `~enhance.runtime.export.onnx_graph` takes: every convolution's ``weight`` and
        ``bias`` with its BatchNorm folded in (``w * g / sqrt(v + eps)``, ``(b - m) g / sqrt(v + eps) + beta``)
        and ``"conv_up.phases"``.

    Examples
    --------
    >>> from enhance.models.registry import shipped_path
    >>> state, metadata = read_weights(shipped_path("blos", "paper-light"))
    >>> "conv_up.phases" in fold_state(state, depth=1)
    True
    """
    arrays = {}
    pairs = {f"blocks.{i}.conv{j}": f"blocks.{i}.bn{j}" for i in range(depth) for j in (1, 2)}
    pairs["conv_skip"] = "bn_skip"
    for conv in ("conv_in", *pairs, "conv_up", "conv_out"):
        weight = np.asarray(state[f"{conv}.weight"], dtype=np.float32)
        bias = np.asarray(state[f"{conv}.bias"], dtype=np.float32)
        bn = pairs.get(conv)
        if bn is not None:
            scale = state[f"{bn}.weight"] / np.sqrt(state[f"{bn}.running_var"].astype(np.float32) + np.float32(BN_EPS))
            scale = scale.astype(np.float32)
            weight = weight * scale[:, None, None, None]
            bias = (bias - state[f"{bn}.running_mean"]) * scale + state[f"{bn}.bias"]
        arrays[f"{conv}.weight"] = np.ascontiguousarray(weight, dtype=np.float32)
        arrays[f"{conv}.bias"] = np.ascontiguousarray(bias, dtype=np.float32)
    arrays["conv_up.phases"] = phase_kernels_numpy(arrays["conv_up.weight"])
    return arrays


def read_weights(path, *, tensors: bool = True):
    """``(state, metadata)`` of a safetensors weights file, as numpy arrays (no PyTorch needed).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The weights file.
    tensors : bool
        Read the tensors; False reads only the header's metadata (``state`` is then empty).

    Returns
    -------
    state : dict of str to numpy.ndarray
        The network's state dict.
    metadata : dict of str to str
        The file's metadata (kind, depth, width, training notes).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not a readable safetensors file.

    Examples
    --------
    >>> from enhance.models.registry import shipped_path
    >>> state, metadata = read_weights(shipped_path("blos", "paper-light"))
    >>> metadata["kind"], metadata["depth"], metadata["width"]
    ('blos', '1', '32')
    """
    path = Path(path)
    check_regular_file(path, what="weights file", expected="a weights file")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
            state = {key: handle.get_tensor(key) for key in handle.keys()} if tensors else {}  # noqa: SIM118
    except (SafetensorError, OSError) as err:
        msg = f"{path} is not a readable safetensors weights file: {err}"
        raise ValueError(msg) from err
    return state, metadata  # its keys are checked by `~enhance.models.architecture.check_weights_metadata`


def check_finite_state(path, state) -> None:
    """Refuse, naming the tensor, a weights file that holds NaN or infinite values.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The weights file (for the message).
    state : mapping of str to `~numpy.ndarray`
        Its tensors.

    Raises
    ------
    ValueError
        At the first tensor with a non-finite value.

    Examples
    --------
    >>> check_finite_state("w.safetensors", {"a": np.ones(2)})
    >>> check_finite_state("w.safetensors", {"a": np.array([1.0, np.nan])})
    Traceback (most recent call last):
    ...
    ValueError: weights file w.safetensors: tensor a holds 1 NaN or infinite values; the network would give NaN
    """
    for name, array in state.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            msg = f"weights file {path}: tensor {name} holds {bad} NaN or infinite values; the network would give NaN"
            raise ValueError(msg)


def folded_arrays(path):
    """The folded arrays of `fold_state` for a weights file, read with numpy.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The weights file.

    Returns
    -------
    arrays : dict of str to numpy.ndarray
        As `fold_state` returns them.
    depth : int
        Residual blocks.
    width : int
        Channels per convolution.
    metadata : dict of str to str
        The file's metadata.

    Examples
    --------
    >>> from enhance.models.registry import shipped_path
    >>> arrays, depth, width, metadata = folded_arrays(shipped_path("blos", "paper-light"))
    >>> depth, width
    (1, 32)
    """
    state, metadata = read_weights(path)
    # The check `~enhance.models.pretrained.load_network` makes: every key bounded, the tensors the metadata names.
    found = check_weights_metadata(path, metadata, {name: array.shape for name, array in state.items()})
    if found["architecture"] != "enhance":
        msg = f"{path} holds a {found['architecture']!r} network, not the paper's Enhance"
        raise ValueError(msg)
    depth, width = found["depth"], found["width"]
    check_finite_state(path, state)
    config = metadata.get("config")
    if config:
        try:
            metadata["config"] = json.loads(config)
        except ValueError:  # a training note only: the torch path does not read it either
            pass
    return fold_state(state, depth=depth), depth, width, metadata
