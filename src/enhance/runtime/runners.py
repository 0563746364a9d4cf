"""Every model family on every back-end as a `~enhance.models.runner.Runner`, built in one place.

`make_runner` looks a network's family (`~enhance.models.runner.family_of`) and the back-end up in `RUNNERS`
and builds its runner: PyTorch modules run through `TorchRunner` (the paper's network as its faster
`~enhance.runtime.graph.InferenceNet`, `PaperTorchRunner`; Wiener-Enhance told its noise level,
`WienerTorchRunner`), and on onnxruntime they are exported in memory (`~enhance.runtime.export.onnx_network`).
An onnxruntime runner (`~enhance.runtime.onnx_runner.OnnxNetwork`) is a runner already. This module is the only
place outside the model definitions that asks which family a network is; a new family adds its
``TorchRunner`` and its entries in `RUNNERS`. PyTorch is imported only where a PyTorch network runs.
"""

import copy
import hashlib
import importlib.util
import sys
import weakref

import numpy as np

from ..checks import check_choice
from ..models.architecture import WIENER_ENHANCE, receptive_margin
from ..models.runner import Dihedral, Runner, family_of, with_metadata
from .export import onnx_model, onnx_network

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "RUNNERS",
    "stated_margin",
    "TorchRunner",
    "PaperTorchRunner",
    "WienerTorchRunner",
    "make_runner",
    "as_runner",
    "auto_backend",
    "check_network",
    "runs_on_torch",
    "onnx_installed",
    "import_torch",
]

#: Inference back-ends: PyTorch, onnxruntime, or 'auto' (`auto_backend`).
BACKENDS = ("auto", "torch", "onnx")
#: Arithmetic of the convolutions (`~enhance.runtime.graph.PRECISIONS`, named here without PyTorch).
PRECISIONS = ("float32", "bfloat16", "float16")
#: Margin of a PyTorch module of your own that states neither ``margin`` nor ``depth``, input pixels.
DEFAULT_MARGIN = 32


def runs_on_torch(network) -> bool:
    """Whether ``network`` is a PyTorch module (never imports PyTorch: a module implies it is imported).

    Parameters
    ----------
    network : object
        Anything.

    Returns
    -------
    bool
        True for a `torch.nn.Module`.

    Examples
    --------
    >>> runs_on_torch(object())
    False
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(network, torch.nn.Module)


def onnx_installed() -> bool:
    """Whether the ``onnx`` extra (onnx and onnxruntime) is installed.

    Returns
    -------
    bool
        True when both packages can be imported.

    Examples
    --------
    >>> onnx_installed() in (True, False)
    True
    """
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def _ready(network) -> bool:
    """A runner already (an onnxruntime runner, a `~enhance.models.runner.Dihedral`): it runs as it is."""
    return not runs_on_torch(network) and isinstance(network, Runner)


def check_network(network):
    """``network`` if it can run: a PyTorch module or a runner (an `~enhance.runtime.onnx_runner.OnnxNetwork`).

    Parameters
    ----------
    network : object
        The network to check.

    Returns
    -------
    torch.nn.Module or `~enhance.models.runner.Runner`
        ``network`` itself.

    Raises
    ------
    TypeError
        For anything else.

    Examples
    --------
    >>> check_network(3)
    Traceback (most recent call last):
    ...
    TypeError: network must be an EnhanceNet (torch.nn.Module) or an OnnxNetwork, got int
    """
    if not (_ready(network) or runs_on_torch(network)):
        msg = f"network must be an EnhanceNet (torch.nn.Module) or an OnnxNetwork, got {type(network).__name__}"
        raise TypeError(msg)
    return network


def stated_margin(network) -> int | None:
    """The receptive margin a PyTorch module states: its ``margin``, or that of its ``depth``; None if neither.

    Parameters
    ----------
    network : `torch.nn.Module`
        This package's network or one of your own.

    Returns
    -------
    int or None
        Input pixels on each side; None where the module states neither (a `TorchRunner` then assumes
        ``DEFAULT_MARGIN``, 32 pixels).

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> stated_margin(EnhanceNet(depth=5, width=8)), stated_margin(object())
    (13, None)
    """
    depth = getattr(network, "depth", None)
    return getattr(network, "margin", None) or (receptive_margin(depth) if depth is not None else None)


class TorchRunner:
    """A PyTorch module as a `~enhance.models.runner.Runner`: float32 numpy batches in and out, without autograd.

    Parameters
    ----------
    network : torch.nn.Module
        A module mapping ``(n, 1, ny, nx)`` to ``(n, 1, 2 ny, 2 nx)``; its ``margin`` (or the receptive
        margin of its ``depth``, else 32 pixels) is the runner's.
    device : str or torch.device
        Where it runs.
    precision : {'float32', 'bfloat16', 'float16'}
        Arithmetic of its convolutions: float32, or `torch.autocast` to the reduced type.

    Examples
    --------
    >>> import torch
    >>> runner = TorchRunner(torch.nn.Upsample(scale_factor=2))
    >>> runner(np.ones((1, 1, 3, 4), np.float32)).shape, runner.margin
    ((1, 1, 6, 8), 32)
    """

    needs_noise = False
    noise_unit = None
    noise_nodes = ()
    noise = None
    symmetric = False
    kind = None
    filter_bank = None
    registry_key = None

    def __init__(self, network, *, device="cpu", precision: str = "float32") -> None:
        self.network = network
        self.device = device
        self.precision = check_choice(precision, PRECISIONS, name="precision")
        self.margin = self._margin(network)
        self._module = None

    @staticmethod
    def _margin(network) -> int:
        stated = stated_margin(network)
        return DEFAULT_MARGIN if stated is None else stated

    def prepare(self):
        """The module that runs (made on first use): here the network itself, in eval mode on the device.

        Returns
        -------
        torch.nn.Module
            The module that `forward` calls.

        Examples
        --------
        >>> import torch
        >>> net = torch.nn.Upsample(scale_factor=2).train()
        >>> TorchRunner(net).prepare() is net, net.training
        (True, False)
        """
        return self.network.eval().to(self.device)

    def forward(self, module, batch):
        """The module on a tensor batch."""
        return module(batch)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        from .graph import PRECISIONS as DTYPES

        if self._module is None:
            self._module = self.prepare()
        dtype, device = DTYPES[self.precision], torch.device(self.device)
        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                result = self.forward(self._module, tensor)
            return result.float().cpu().numpy()

    def bind(self, noise):
        """This runner: a network not told the noise level ignores it.

        Parameters
        ----------
        noise : float or None
            Standard deviation of the noise per input pixel, network units (ignored).

        Returns
        -------
        TorchRunner
            This runner.

        Examples
        --------
        >>> import torch
        >>> runner = TorchRunner(torch.nn.Upsample(scale_factor=2))
        >>> runner.bind(2e-3) is runner
        True
        """
        return self

    def averaged(self):
        """This runner averaged over the 8 rotations and flips (`~enhance.models.runner.Dihedral`).

        Returns
        -------
        `~enhance.models.runner.Dihedral`
            This runner, wrapped: each call runs it 8 times.

        Examples
        --------
        >>> import torch
        >>> averaged = TorchRunner(torch.nn.Upsample(scale_factor=2)).averaged()
        >>> image = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
        >>> averaged.symmetric, bool(np.allclose(averaged(image), image.repeat(2, axis=2).repeat(2, axis=3)))
        (True, True)
        """
        return Dihedral(self)

    def one_pass(self):
        """This runner: it runs once.

        Returns
        -------
        TorchRunner
            This runner.

        Examples
        --------
        >>> import torch
        >>> runner = TorchRunner(torch.nn.Upsample(scale_factor=2))
        >>> runner.one_pass() is runner, runner.averaged().one_pass() is runner
        (True, True)
        """
        return self

    def export(self) -> bytes:
        """The network's ONNX graph (`~enhance.runtime.export.onnx_model`).

        Returns
        -------
        bytes
            The serialised ONNX model.

        Examples
        --------
        >>> import onnx
        >>> from enhance.models.network import EnhanceNet
        >>> model = onnx.load_model_from_string(PaperTorchRunner(EnhanceNet(depth=1, width=8)).export())
        >>> [i.name for i in model.graph.input], [o.name for o in model.graph.output]
        (['image'], ['enhanced'])
        """
        return onnx_model(self.network, kind=self.kind).SerializeToString()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.network).__name__}, device={self.device!r})"


class PaperTorchRunner(TorchRunner):
    """The paper's `~enhance.models.network.EnhanceNet` on PyTorch, as its faster `~enhance.runtime.graph.InferenceNet`.

    Parameters
    ----------
    network : `~enhance.models.network.EnhanceNet`
        The network; its ``depth`` sets the margin.
    device : str or torch.device
        Where it runs.
    precision : {'float32', 'bfloat16', 'float16'}
        Arithmetic of its convolutions.

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> PaperTorchRunner(EnhanceNet(depth=2, width=8)).margin
    7
    """

    def prepare(self):
        from .graph import InferenceNet

        return InferenceNet(self.network).to(self.device)


class WienerTorchRunner(TorchRunner):
    """A `~enhance.models.hybrid.WienerEnhanceNet` on PyTorch, told its noise level by
    `~enhance.runtime.runners.WienerTorchRunner.bind`.

    ``symmetric`` follows the network's own until `~enhance.runtime.runners.WienerTorchRunner.averaged` or
    `~enhance.runtime.runners.WienerTorchRunner.one_pass` sets it; the network then
    averages over the 8 rotations and flips itself, running its linear stage once.

    Parameters
    ----------
    network : `~enhance.models.hybrid.WienerEnhanceNet`
        The network; its ``margin``, ``noise_unit`` and ``noise_nodes`` are the runner's.
    device : str or torch.device
        Where it runs.
    precision : {'float32', 'bfloat16', 'float16'}
        Arithmetic of its convolutions.

    Examples
    --------
    >>> import torch
    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> net = WienerEnhanceNet(depth=1, width=4, taps=5)
    >>> runner = WienerTorchRunner(net).bind(2e-3)
    >>> x = np.ones((1, 1, 6, 7), np.float32)
    >>> bool(np.allclose(runner(x), net(torch.from_numpy(x), torch.tensor([2e-3])).detach().numpy()))
    True
    """

    needs_noise = True

    def __init__(self, network, *, device="cpu", precision: str = "float32") -> None:
        super().__init__(network, device=device, precision=precision)
        self.noise_unit, self.noise_nodes = float(network.noise_unit), tuple(network.noise_nodes)
        self._symmetric = None

    @property
    def symmetric(self) -> bool:
        return self.network.symmetric if self._symmetric is None else self._symmetric

    @property
    def filter_bank(self) -> tuple:
        return self.network.filter_bank

    def forward(self, module, batch):
        if self.noise is None:
            msg = "a Wiener-Enhance runner needs its noise level: call bind(noise) first"
            raise ValueError(msg)
        import torch

        noise = torch.full((batch.shape[0],), self.noise, dtype=batch.dtype, device=batch.device)
        return module(batch, noise, symmetric=self.symmetric)

    def bind(self, noise: float):
        """This runner with its noise level set (network units); the network is shared.

        Parameters
        ----------
        noise : float
            Standard deviation of the noise per input pixel, network units (I/Ic, kG).

        Returns
        -------
        WienerTorchRunner
            A shallow copy, callable on images alone.

        Examples
        --------
        >>> from enhance.models.hybrid import WienerEnhanceNet
        >>> runner = WienerTorchRunner(WienerEnhanceNet(depth=1, width=4, taps=5))
        >>> bound = runner.bind(2e-3)
        >>> runner.noise, bound.noise, bound.network is runner.network
        (None, 0.002, True)
        """
        bound = copy.copy(self)
        bound.noise = float(noise)
        return bound

    def averaged(self):
        """This runner, its network averaging each call over the 8 rotations and flips.

        Returns
        -------
        WienerTorchRunner
            This runner if it averages already, else a shallow copy that does.

        Examples
        --------
        >>> from enhance.models.hybrid import WienerEnhanceNet
        >>> runner = WienerTorchRunner(WienerEnhanceNet(depth=1, width=4, taps=5))
        >>> runner.symmetric, runner.averaged().symmetric, runner.network.symmetric
        (False, True, False)
        """
        return self._with_symmetric(True)

    def one_pass(self):
        """This runner, its network running once on each call.

        Returns
        -------
        WienerTorchRunner
            This runner if it runs once already, else a shallow copy that does.

        Examples
        --------
        >>> from enhance.models.hybrid import WienerEnhanceNet
        >>> runner = WienerTorchRunner(WienerEnhanceNet(depth=1, width=4, taps=5, symmetric=True))
        >>> runner.symmetric, runner.one_pass().symmetric
        (True, False)
        """
        return self._with_symmetric(False)

    def _with_symmetric(self, symmetric):
        if symmetric == self.symmetric:
            return self
        changed = copy.copy(self)
        changed._symmetric = symmetric
        return changed

    def export(self) -> bytes:
        graph = super().export()
        return graph if self.symmetric == self.network.symmetric else with_metadata(graph, symmetric=self.symmetric)


def _on_torch(cls):
    def build(network, *, device, precision, threads):
        return cls(network, device=device, precision=precision), 1  # PyTorch threads each layer itself

    return build


def _exported(network, *, device, precision, threads):
    # One single-threaded session called on as many bands or tiles at once as PyTorch has threads: each core
    # then keeps its own band's activations in its cache, where one multi-threaded call splits every layer.
    return onnx_network(network, threads=1), threads


#: How each model family runs on each back-end: ``(family, backend) -> build(network, *, device, precision,
#: threads)`` returning ``(runner, workers)``; family None is any other PyTorch module.
RUNNERS = {
    ("paper", "torch"): _on_torch(PaperTorchRunner),
    ("paper", "onnx"): _exported,
    (WIENER_ENHANCE, "torch"): _on_torch(WienerTorchRunner),
    (WIENER_ENHANCE, "onnx"): _exported,
    (None, "torch"): _on_torch(TorchRunner),
}


def as_runner(network):
    """``network`` as a runner on its own back-end, made at once (nothing is prepared until it runs).

    For a runner's facts (``margin``, ``needs_noise``, ``noise_unit``, ``symmetric``) without choosing a back-end.

    Parameters
    ----------
    network : torch.nn.Module or `~enhance.models.runner.Runner`
        A PyTorch network (run on the CPU in float32) or a runner (returned as it is).

    Returns
    -------
    `~enhance.models.runner.Runner`
        The runner.

    Examples
    --------
    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> runner = as_runner(WienerEnhanceNet(depth=1, width=4, taps=5))
    >>> runner.margin, runner.needs_noise, runner.noise_unit
    (6, True, 0.001)
    """
    if _ready(check_network(network)):
        return network
    build = RUNNERS.get((family_of(network), "torch"), RUNNERS[None, "torch"])
    return build(network, device="cpu", precision="float32", threads=1)[0]


def import_torch():
    """PyTorch, imported on first use; None where it is not installed.

    Returns
    -------
    module or None
        The ``torch`` module.

    Examples
    --------
    >>> import_torch() is None or import_torch().__name__ == "torch"
    True
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - run by `make test-notorch`
        return None
    return torch


def auto_backend(network, *, precision, device) -> str:
    """onnxruntime for a runner, and for a network of this package in float32 on the CPU when installed.

    Parameters
    ----------
    network : torch.nn.Module or `~enhance.models.runner.Runner`
        The network.
    precision : {'float32', 'bfloat16', 'float16'}
        Arithmetic of the convolutions.
    device : str or torch.device
        Where it would run.

    Returns
    -------
    {'torch', 'onnx'}
        The back-end: MLAS runs the package's networks 1.5x ('full') to 2x ('light') faster than PyTorch's
        oneDNN on a CPU (``make bench``).

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> net = EnhanceNet(depth=1, width=8)
    >>> auto_backend(net, precision="float32", device="cpu") == ("onnx" if onnx_installed() else "torch")
    True
    >>> auto_backend(net, precision="bfloat16", device="cpu")
    'torch'
    """
    torch = None if _ready(network) else import_torch()
    if torch is None:
        return "onnx"
    exported = (family_of(network), "onnx") in RUNNERS
    if exported and precision == "float32" and torch.device(device).type == "cpu" and onnx_installed():
        return "onnx"
    return "torch"


#: Prepared runners, per network: ``{(backend, device, threads, precision, symmetric): (weights digest, built)}``.
_BUILT = weakref.WeakKeyDictionary()


def _digest(network) -> bytes:
    """A digest of every weight and statistic of ``network``: any change to them changes it."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    for name, value in network.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().reshape(-1).cpu().view(torch.uint8).numpy().tobytes())
    return digest.digest()


def make_runner(network, *, backend, precision, device):
    """The runner of ``network`` on ``backend``, and how many calls `~enhance.inference.tiling.run_tiled` may run at
    once: ``(runner, workers)``.

    Parameters
    ----------
    network : torch.nn.Module or `~enhance.models.runner.Runner`
        The network.
    backend : {'auto', 'torch', 'onnx'}
        The back-end ('auto': `auto_backend`).
    precision : {'float32', 'bfloat16', 'float16'}
        Arithmetic of the convolutions (PyTorch only).
    device : str or torch.device
        Where a PyTorch network runs.

    Returns
    -------
    tuple
        ``(runner, workers)``. A PyTorch network's runner is built by its family's entry in
        `~enhance.runtime.runners.RUNNERS` and kept for the next call with the same network, as long as its
        weights are unchanged (their digest is checked); a runner (an `~enhance.runtime.onnx_runner.OnnxNetwork`)
        is returned as it is, with its ``workers`` (a default model's on onnxruntime: single-threaded calls on
        every core, `~enhance.cores.cpu_cores`), else 1.

    Raises
    ------
    TypeError
        For a runner on backend='torch', or a network that the back-end cannot run.
    ValueError
        For backend='onnx' with a reduced precision.

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> net = EnhanceNet(depth=1, width=8)
    >>> runner, workers = make_runner(net, backend="torch", precision="float32", device="cpu")
    >>> runner, workers
    (PaperTorchRunner(EnhanceNet, device='cpu'), 1)
    >>> make_runner(net, backend="torch", precision="float32", device="cpu")[0] is runner
    True
    """
    check_choice(backend, BACKENDS, name="backend")
    check_choice(precision, PRECISIONS, name="precision")
    if backend == "auto":
        backend = auto_backend(network, precision=precision, device=device)
    if backend == "onnx" and precision != "float32":
        msg = f"the onnx backend runs in float32; precision={precision!r} needs backend='torch'"
        raise ValueError(msg)
    if _ready(check_network(network)):
        if backend == "torch":
            name = type(network).__name__
            msg = f"backend='torch' needs a torch network, got an {name}; use backend='onnx' or 'auto'"
            raise TypeError(msg)
        return network, getattr(network, "workers", 1)  # a default model's: single-threaded calls on every core
    torch = import_torch()
    build = RUNNERS.get((family_of(network), backend))
    if build is None:
        msg = f"backend={backend!r} needs a network of this package or an OnnxNetwork, got {type(network).__name__}"
        raise TypeError(msg)
    threads = torch.get_num_threads()  # onnxruntime follows PyTorch's setting (e.g. one per Dask task)
    key = (backend, str(device), threads, precision, bool(getattr(network, "symmetric", False)))
    digest = _digest(network)
    cached = _BUILT.setdefault(network, {}).get(key)
    if cached is not None and cached[0] == digest:
        return cached[1]
    runner, workers = build(network, device=device, precision=precision, threads=threads)
    runner.registry_key = getattr(network, "registry_key", None)  # which uncertainty calibration is its own
    _BUILT[network][key] = (digest, (runner, workers))
    return runner, workers
