"""The runner protocol: what every model offers on every back-end, and the average over rotations and flips.

A *runner* is a network ready to run on numpy arrays: the paper's `~enhance.models.network.EnhanceNet` and
the default models' `~enhance.models.hybrid.WienerEnhanceNet` on PyTorch
(`~enhance.runtime.runners.TorchRunner`) or onnxruntime (`~enhance.runtime.onnx_runner.OnnxNetwork`,
`~enhance.runtime.wiener_onnx.WienerOnnxNetwork`), and the browser's page, which runs the graph `Runner.export`
gives. The pipeline asks a runner only what `Runner` declares; which family it holds is asked only where
runners are built (`~enhance.runtime.runners.make_runner`, a table keyed by family and back-end).

The average over the 8 rotations and flips of the input (the dihedral group D4) is written once,
`dihedral_average`, for numpy arrays and PyTorch tensors alike; `Dihedral` is the runner that applies it.
This module imports neither PyTorch nor onnxruntime.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Runner",
    "family_of",
    "DIHEDRAL",
    "dihedral_transform",
    "dihedral_inverse",
    "dihedral_average",
    "Dihedral",
    "with_metadata",
]

#: The 8 elements of D4 acting on the last two axes of an array: ``(transpose, quarter turns)``, the
#: transpose applied first. The first is the identity.
DIHEDRAL = tuple((transpose, turns) for transpose in (False, True) for turns in range(4))


# numpydoc reads a Protocol's signature as ``(*args, **kwargs)``: a runner is never built from this class.
@runtime_checkable
class Runner(Protocol):  # numpydoc ignore=PR01
    """What every model implements on every back-end.

    Attributes
    ----------
    margin : int
        Input pixels on each side that an output pixel depends on (the overlap of exact tiles).
    needs_noise : bool
        Whether the network is told the noise level (`bind` sets it); False for the paper's networks.
    noise_unit : float or None
        HMI's noise in the network's units (1e-3 I/Ic, 0.01 kG), for a network told the noise level.
    noise_nodes : tuple of float
        The noise levels it was trained at, in units of ``noise_unit`` (empty when not told the noise).
    symmetric : bool
        Whether each call averages over the 8 rotations and flips of its input (`dihedral_average`).
    kind : str or None
        'intensity' or 'blos' where the runner records what it was trained on.

    Notes
    -----
    ``runner(batch)`` maps a float32 ``(n, 1, ny, nx)`` array to its float32 ``(n, 1, 2 ny, 2 nx)``
    enhancement, in the network's units (I/Ic or kG).

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.runtime.runners import as_runner
    >>> runner = as_runner(EnhanceNet(depth=1, width=8))
    >>> isinstance(runner, Runner), runner.margin, runner(np.zeros((1, 1, 4, 5), np.float32)).shape
    (True, 5, (1, 1, 8, 10))
    """

    margin: int
    needs_noise: bool
    noise_unit: float | None
    noise_nodes: tuple
    symmetric: bool
    kind: str | None

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    def bind(self, noise: float | None) -> Runner:
        """This runner with the noise level set (network units); itself for a network not told the noise.

        Parameters
        ----------
        noise : float or None
            Standard deviation of the noise per input pixel, network units (I/Ic, kG).

        Returns
        -------
        Runner
            The runner to call on images at that noise level.

        Examples
        --------
        >>> from enhance.models.hybrid import WienerEnhanceNet
        >>> from enhance.runtime.runners import as_runner
        >>> runner = as_runner(WienerEnhanceNet(depth=1, width=4, taps=5))
        >>> runner.needs_noise, runner.bind(2e-3)(np.zeros((1, 1, 6, 7), np.float32)).shape
        (True, (1, 1, 12, 14))
        """
        ...

    def averaged(self) -> Runner:
        """The same weights, each call averaged over the 8 rotations and flips (itself if it averages).

        Returns
        -------
        Runner
            A runner whose ``symmetric`` is True.

        Examples
        --------
        >>> from enhance.models.network import EnhanceNet
        >>> from enhance.runtime.runners import as_runner
        >>> runner = as_runner(EnhanceNet(depth=1, width=8))
        >>> runner.symmetric, runner.averaged().symmetric
        (False, True)
        """
        ...

    def one_pass(self) -> Runner:
        """The same weights, run once on each call (itself if it does).

        Returns
        -------
        Runner
            A runner whose ``symmetric`` is False.

        Examples
        --------
        >>> from enhance.models.network import EnhanceNet
        >>> from enhance.runtime.runners import as_runner
        >>> as_runner(EnhanceNet(depth=1, width=8)).averaged().one_pass().symmetric
        False
        """
        ...

    def export(self) -> bytes:
        """The network's ONNX graph (one pass; its ``symmetric`` metadata says whether to average).

        Returns
        -------
        bytes
            The serialised ONNX model, as the browser's page and `~enhance.runtime.onnx_runner.OnnxNetwork`
            run it.

        Examples
        --------
        >>> import onnx
        >>> from enhance.models.hybrid import WienerEnhanceNet
        >>> from enhance.runtime.runners import as_runner
        >>> graph = as_runner(WienerEnhanceNet(depth=1, width=4, taps=5)).averaged().export()
        >>> {prop.key: prop.value for prop in onnx.load_model_from_string(graph).metadata_props}["symmetric"]
        'True'
        """
        ...


def family_of(network) -> str | None:
    """The family a network declares ('paper', 'wiener-enhance'), or None for any other module.

    Parameters
    ----------
    network : object
        A network or a runner.

    Returns
    -------
    str or None
        Its ``family`` (a class attribute of the networks and runners of this package).

    Examples
    --------
    >>> family_of(object()) is None
    True
    """
    return getattr(network, "family", None)


def _is_numpy(array) -> bool:
    return isinstance(array, np.ndarray)


def dihedral_transform(array, element):
    """Apply one element of D4 to the last two axes of a numpy array or a PyTorch tensor.

    Parameters
    ----------
    array : `~numpy.ndarray` or `torch.Tensor`
        ``(..., ny, nx)``.
    element : (bool, int)
        ``(transpose, quarter turns)``, one of `DIHEDRAL`.

    Returns
    -------
    `~numpy.ndarray` or `torch.Tensor`
        The transformed array (a contiguous numpy copy).

    Examples
    --------
    >>> dihedral_transform(np.arange(6).reshape(2, 3), (True, 1)).tolist()
    [[3, 4, 5], [0, 1, 2]]
    """
    transpose, turns = element
    if _is_numpy(array):
        base = np.swapaxes(array, -1, -2) if transpose else array
        return np.ascontiguousarray(np.rot90(base, turns, axes=(-2, -1)))
    base = array.transpose(-2, -1) if transpose else array
    return base.rot90(turns, (-2, -1))


def dihedral_inverse(array, element):
    """Undo `dihedral_transform` of ``element`` on a x2 output: each 2x2 block moves with its input pixel.

    Parameters
    ----------
    array : `~numpy.ndarray` or `torch.Tensor`
        ``(..., 2 ny, 2 nx)``, the output for the transformed input.
    element : (bool, int)
        The element the input was transformed by.

    Returns
    -------
    `~numpy.ndarray` or `torch.Tensor`
        The output in the orientation of the original input.

    Examples
    --------
    >>> image = np.arange(6.0).reshape(2, 3)
    >>> bool((dihedral_inverse(dihedral_transform(image, (True, 3)), (True, 3)) == image).all())
    True
    """
    transpose, turns = element
    if _is_numpy(array):
        back = np.rot90(array, -turns, axes=(-2, -1))
        return np.swapaxes(back, -1, -2) if transpose else back
    back = array.rot90(-turns, (-2, -1))
    return back.transpose(-2, -1) if transpose else back


def dihedral_average(run, *arrays):
    """Average a x2 map over the 8 rotations and flips of its inputs: :math:`\\frac18 \\sum_g g^{-1} run(g x)`.

    Parameters
    ----------
    run : callable
        Maps the transformed ``arrays`` (all transformed alike) to their x2 result.
    *arrays : `~numpy.ndarray` or `torch.Tensor`
        The inputs, ``(..., ny, nx)`` each (one image, or an image and its x2 linear estimate).

    Returns
    -------
    `~numpy.ndarray` or `torch.Tensor`
        The average: float32 for numpy (summed in float64), the tensors' dtype for PyTorch.

    Notes
    -----
    Each 2x2 block of output pixels covers one input pixel, so rotating or flipping the input moves the
    blocks with it and :math:`g^{-1}` undoes it exactly on the output. The average is equivariant by
    construction: for any rotation or flip :math:`T`, the 8 inputs :math:`g\\,T x` are the 8 inputs
    :math:`h\\,x` in another order (the same arrays, bit for bit), so the result for :math:`T x` is
    :math:`T` of the result for :math:`x` up to the rounding of the sum. It costs 8 runs.

    Examples
    --------
    >>> image = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    >>> averaged = dihedral_average(lambda x: np.kron(x, np.ones((2, 2), np.float32)), image)
    >>> bool(np.allclose(averaged, np.kron(image, np.ones((2, 2)))))
    True
    """
    total = 0
    for element in DIHEDRAL:
        out = dihedral_inverse(run(*(dihedral_transform(array, element) for array in arrays)), element)
        total = total + (out.astype(np.float64) if _is_numpy(out) else out)
    mean = total / len(DIHEDRAL)
    return mean.astype(np.float32) if _is_numpy(mean) else mean


def with_metadata(model: bytes, **props) -> bytes:
    """An ONNX graph's bytes with metadata keys set (the ``onnx`` package, imported here).

    Parameters
    ----------
    model : bytes
        A serialised ONNX model.
    **props
        Keys and values to set (written as strings).

    Returns
    -------
    bytes
        The model with the keys set and its other metadata kept.

    Examples
    --------
    >>> import onnx
    >>> from enhance.models.network import EnhanceNet
    >>> from enhance.runtime.export import onnx_model
    >>> graph = with_metadata(onnx_model(EnhanceNet(depth=1, width=8)).SerializeToString(), symmetric=True)
    >>> props = {prop.key: prop.value for prop in onnx.load_model_from_string(graph).metadata_props}
    >>> props["symmetric"], props["depth"]
    ('True', '1')
    """
    import onnx

    proto = onnx.load_model_from_string(model)
    current = {prop.key: prop.value for prop in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**current, **{key: str(value) for key, value in props.items()}})
    return proto.SerializeToString()


class Dihedral:
    """A runner averaged over the 8 rotations and flips of its input (`dihedral_average` of each call).

    Parameters
    ----------
    runner : Runner
        The runner of one pass.

    Notes
    -----
    Everything else (``margin``, ``needs_noise``, ``filter_bank``, ...) is the wrapped runner's: the average
    reads no pixel further than one pass does, because every rotation and flip of a square keeps its size.
    A runner that averages itself (its ``averaged()`` is not a `Dihedral`: the default models, whose 8 passes
    share one linear stage) runs the average its own way, on batches and through its ``run_image``; any other
    is run 8 times.

    Examples
    --------
    >>> class Replicate:
    ...     margin, needs_noise, noise_unit, noise_nodes, symmetric, kind = 0, False, None, (), False, None
    ...     def __call__(self, batch):
    ...         return np.kron(batch, np.ones((2, 2), np.float32))
    >>> averaged = Dihedral(Replicate())
    >>> averaged.symmetric, averaged(np.ones((1, 1, 2, 3), np.float32)).shape
    (True, (1, 1, 4, 6))
    """

    symmetric = True

    def __init__(self, runner) -> None:
        self.runner = runner

    def __getattr__(self, name):
        if name == "runner":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        if name == "run_image":  # one pass's whole-image run is not the average: only a runner's own average's
            return getattr(self._own_average(), name)
        return getattr(self.runner, name)

    def _own_average(self):
        """The wrapped runner's own average (None where it has none but this wrapper)."""
        averaged = getattr(self.runner, "averaged", None)
        own = averaged() if callable(averaged) else None
        return None if isinstance(own, Dihedral) or not getattr(own, "symmetric", False) else own

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        own = self._own_average()
        if own is not None:
            return own(batch)
        return dihedral_average(self.runner, np.asarray(batch, dtype=np.float32))

    def bind(self, noise):
        return Dihedral(self.runner.bind(noise))

    def averaged(self):
        return self

    def one_pass(self):
        return self.runner.one_pass()

    def export(self) -> bytes:
        return with_metadata(self.runner.export(), symmetric=True)

    def __repr__(self) -> str:
        return f"Dihedral({self.runner!r})"
