"""A serialised ONNX graph whose one weight is set after it was built: its placeholder's bytes replaced.

onnxruntime moves a convolution's weights into its fast blocked layout only where they are constant
initialisers of the graph (weights computed in the graph, or given by ``SessionOptions.add_initializer``
with the full optimisation, run on its slower generic path). A weight that changes with each call, such as
the default models' linear stage blended for an image's noise level, is therefore written into the graph: a template
holds a placeholder (`placeholder`, raw float32 bytes stored once, ``numpy_helper.from_array``'s layout) and
`with_weight` replaces those bytes with the weight's, which leaves the protobuf valid (same length), without
the ``onnx`` package (0.6 s to import). The template itself comes from the graph cache
(`~enhance.runtime.onnx_cache`).
"""

import hashlib

import numpy as np

__all__ = ["placeholder", "with_weight"]


def placeholder(shape) -> np.ndarray:
    """The placeholder weight of a template, ``shape`` float32 values that `with_weight` looks for.

    The values come from a SHAKE-256 digest of the shape (not numpy's random streams, which may change between
    versions while a cached template stays): every bit pattern is a float32 between 1 and 2, and placeholders of
    other shapes share no prefix.

    Parameters
    ----------
    shape : tuple of int
        The weight's shape.

    Returns
    -------
    `~numpy.ndarray`
        float32 values in [1, 2), the same for the same shape.

    Examples
    --------
    >>> bool((placeholder((2, 3)) == placeholder((2, 3))).all()), placeholder((2, 3)).dtype
    (True, dtype('float32'))
    >>> bool(placeholder((6,))[0] == placeholder((3, 2))[0, 0])  # another shape, other values
    False
    """
    shape = tuple(int(n) for n in shape)
    count = int(np.prod(shape, dtype=np.int64))
    digest = hashlib.shake_256(f"solar-enhance placeholder {shape}".encode()).digest(4 * count)
    mantissas = np.frombuffer(digest, "<u4") >> np.uint32(9)
    return (mantissas | np.uint32(0x3F800000)).view("<f4").astype(np.float32).reshape(shape)


def with_weight(template: bytes, weight: np.ndarray) -> bytes:
    """The serialised graph ``template`` with its `placeholder` of ``weight``'s shape replaced by ``weight``.

    Parameters
    ----------
    template : bytes
        A serialised ONNX graph that holds the placeholder as a raw-data initialiser, once.
    weight : `~numpy.ndarray`
        The values, float32 (converted to little-endian float32 bytes).

    Returns
    -------
    bytes
        The same graph with the new values.

    Raises
    ------
    ValueError
        Where the placeholder does not occur exactly once.

    Examples
    --------
    >>> template = b"head" + placeholder((2,)).tobytes() + b"tail"
    >>> with_weight(template, np.array([1.0, 2.0])) == b"head" + np.array([1, 2], "<f4").tobytes() + b"tail"
    True
    """
    marker = placeholder(weight.shape).astype("<f4").tobytes()
    found = template.count(marker)
    if found != 1:
        msg = f"the graph holds the {weight.shape} placeholder {found} times, not once"
        raise ValueError(msg)
    return template.replace(marker, np.ascontiguousarray(weight, dtype="<f4").tobytes())
