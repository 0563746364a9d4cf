"""`enhance()`: deconvolve and super-resolve an HMI image, given as an array, a Map or a FITS path.

A private array function does the work (normalisation, NaN handling, tiled network pass); the
public `enhance` only dispatches on the input type and carries the metadata along.
"""

import dataclasses
import functools
import hashlib
import importlib.util
import weakref
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..checks import check_choice, check_image, fill_nonfinite
from ..models.network import EnhanceNet, receptive_margin
from ..models.pretrained import full, light
from ..observation.quiet_sun import QuietSunSurface, estimate_qs_level, qs_normalisation
from ..runtime.graph import PRECISIONS, InferenceNet

__all__ = [
    "enhance",
    "enhance_array",
    "RunOptions",
    "estimate_qs_level",
    "resolve_network",
    "resolve_device",
    "AUTO_TILE_PIXELS",
    "AUTO_TILE",
]

KINDS = ("intensity", "blos")
#: Inference back-ends: PyTorch, onnxruntime, or 'auto' (see `enhance`).
BACKENDS = ("auto", "torch", "onnx")
#: Images with more pixels than this run in tiles of `AUTO_TILE` when ``tile=None``.
AUTO_TILE_PIXELS = 1024 * 1024
AUTO_TILE = 512
_GAUSS_PER_KG = 1000.0


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How an image goes through the network: the options that `enhance`, `enhance_array`,
    `~enhance.inference.distributed.enhance_files` and `~enhance.inference.distributed.enhance_dask`
    share.

    Parameters
    ----------
    qs_level : float, 'level', 'surface' or None
        Quiet-Sun normalisation of continuum images, in the image's units (see `enhance`).
    device : str
        'auto' (CUDA when available), 'cpu', 'cuda', ...
    tile : int, optional
        Tile size in input pixels; None runs the whole image, or tiles of `AUTO_TILE` above
        `AUTO_TILE_PIXELS` pixels.
    backend : {'auto', 'torch', 'onnx'}
        The runtime (see `enhance`).
    precision : {'float32', 'bfloat16', 'float16'}
        Arithmetic of the convolutions (torch back-end).
    progress : bool
        Show a progress bar over tiles.

    Examples
    --------
    >>> RunOptions(tile=256).tile
    256
    """

    qs_level: object = None
    device: str = "auto"
    tile: int | None = None
    backend: str = "auto"
    precision: str = "float32"
    progress: bool = False


def resolve_device(device="auto") -> torch.device:
    """'auto' gives CUDA when available, else the CPU; anything else goes to `torch.device`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        msg = f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        raise ValueError(msg) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        msg = f"device {device!r} was asked for, but CUDA is not available here; use device='cpu' or 'auto'"
        raise ValueError(msg)
    return resolved


def resolve_network(kind: str, *, model: str = "full", network: EnhanceNet | None = None) -> EnhanceNet:
    """The network to run: ``network`` if given, else the shipped ``model`` for ``kind``.

    A shipped model is loaded once per process and the same eval-mode module is returned every time:
    copy it (`copy.deepcopy`) before changing it, or load a private one with `enhance.models.pretrained.full`.
    """
    check_choice(kind, KINDS, name="kind")
    if network is not None:
        from ..runtime.export import OnnxNetwork

        if not isinstance(network, torch.nn.Module | OnnxNetwork):
            msg = f"network must be an EnhanceNet (torch.nn.Module) or an OnnxNetwork, got {type(network).__name__}"
            raise TypeError(msg)
        return network
    check_choice(model, ("full", "light"), name="model")
    from ..models.weights import registry_entry, shipped_path

    entry = registry_entry(kind, model)  # ModelNotTrainedError for a model this version does not ship
    return _shipped_network(kind, model, str(shipped_path(kind, model)), entry["sha256"])


@functools.lru_cache(maxsize=8)
def _shipped_network(kind: str, model: str, path: str, sha256: str) -> EnhanceNet:
    """The shipped ``model`` for ``kind``, read once per process for each registered file and shared.

    Every `enhance` call with ``model=`` then reuses the runner prepared for it (the onnxruntime
    session or `InferenceNet`) instead of reading the weights and exporting the graph again. The key
    holds the file and its registered checksum, so a changed registry loads the new weights.
    """
    factory = full if model == "full" else light
    return factory(kind, weights="default").eval().requires_grad_(False)


#: Prepared runners of EnhanceNets, per network: ``{(backend, device, threads): (weights digest, runner)}``.
_RUNNERS = weakref.WeakKeyDictionary()


def _digest(network: torch.nn.Module) -> bytes:
    """A digest of every weight and statistic of ``network``: any change to them changes it."""
    digest = hashlib.blake2b(digest_size=16)
    for name, value in network.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().reshape(-1).cpu().view(torch.uint8).numpy().tobytes())
    return digest.digest()


def auto_backend(network, *, precision, device) -> str:
    """onnxruntime for an OnnxNetwork, and for an EnhanceNet in float32 on the CPU when it is installed."""
    from ..runtime.export import OnnxNetwork

    if isinstance(network, OnnxNetwork):
        return "onnx"
    if isinstance(network, EnhanceNet) and precision == "float32" and torch.device(device).type == "cpu":
        if all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime")):
            return "onnx"  # MLAS runs it 1.5x (full) to 2x (light) faster than PyTorch's oneDNN (make bench)
    return "torch"


def make_runner(network, *, backend, precision, device):
    """What `~enhance.inference.tiling.run_tiled` calls, and how many calls it may run at once: ``(runner, workers)``.

    The runner is an `InferenceNet`, the module itself, or onnxruntime. An
    `~enhance.models.network.EnhanceNet` on onnxruntime runs as one single-threaded session called on as many
    bands or tiles at once as PyTorch has threads: each core then keeps its own band's activations in
    its cache, where one multi-threaded call splits every layer between the cores (``make bench``).
    The `InferenceNet` or ONNX session prepared from an EnhanceNet is kept for the next call with the
    same network, as long as its weights are unchanged (their digest is checked).
    """
    check_choice(backend, BACKENDS, name="backend")
    check_choice(precision, tuple(PRECISIONS), name="precision")
    from ..runtime.export import OnnxNetwork

    if backend == "auto":
        backend = auto_backend(network, precision=precision, device=device)
    if backend == "onnx" and precision != "float32":
        msg = f"the onnx backend runs in float32; precision={precision!r} needs backend='torch'"
        raise ValueError(msg)
    if isinstance(network, OnnxNetwork):
        if backend == "torch":
            msg = "backend='torch' needs a torch network, got an OnnxNetwork; use backend='onnx' or 'auto'"
            raise TypeError(msg)
        return network, 1
    if not isinstance(network, EnhanceNet):
        if backend == "onnx":
            msg = f"backend='onnx' needs an EnhanceNet or an OnnxNetwork, got {type(network).__name__}"
            raise TypeError(msg)
        return network.eval().to(device), 1

    threads = torch.get_num_threads()  # onnxruntime follows PyTorch's setting (e.g. one per Dask task)
    key, digest = (backend, str(device), threads), _digest(network)
    cached = _RUNNERS.setdefault(network, {}).get(key)
    if cached is not None and cached[0] == digest:
        return cached[1]
    if backend == "onnx":
        from ..runtime.export import onnx_network

        prepared = onnx_network(network, threads=1), threads  # exported in memory
    else:
        prepared = InferenceNet(network).to(device), 1
    _RUNNERS[network][key] = (digest, prepared)
    return prepared


def enhance_array(image, *, kind: str, network, options: RunOptions = RunOptions()):
    """The array core of `enhance`: normalise, fill NaN, run ``network`` (tiled), scale back.

    Parameters
    ----------
    image : (ny, nx) array_like
        Continuum image (any units) or magnetogram in gauss, at HMI's 0.504 arcsec per pixel.
    kind : {'intensity', 'blos'}
        What ``image`` is.
    network : `~enhance.models.network.EnhanceNet` or `~enhance.runtime.export.OnnxNetwork`
        The network to run (`resolve_network`).
    options : `RunOptions`
        Normalisation, device, tiling, back-end, precision, progress.

    Returns
    -------
    (2 ny, 2 nx) `~numpy.ndarray`
        The enhanced image in the units of ``image``, NaN where the input was not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from enhance.models.network import EnhanceNet
    >>> enhance_array(np.ones((6, 8)), kind="blos", network=EnhanceNet(depth=1, width=8)).shape
    (12, 16)
    """
    qs_level, device, tile, backend, precision = (
        options.qs_level, options.device, options.tile, options.backend, options.precision,
    )  # fmt: skip
    data = check_image(image)
    if min(data.shape) < 2:
        msg = f"image must be at least 2 x 2 pixels (reflection padding), got shape {data.shape}"
        raise ValueError(msg)
    out_dtype = data.dtype
    finite = np.isfinite(data)
    if not finite.any():
        msg = "image has no finite pixels"
        raise ValueError(msg)
    scale = qs_normalisation(data, qs_level) if kind == "intensity" else _GAUSS_PER_KG
    normalised = fill_nonfinite(data, finite)
    if isinstance(scale, QuietSunSurface):
        normalised = np.array(normalised, dtype=np.float32)  # a copy: the caller's image stays as it is
        _scale_rows(normalised, scale, divide=True)
    else:
        normalised = normalised / scale

    if tile is None and data.size > AUTO_TILE_PIXELS:
        tile = AUTO_TILE
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int | np.integer) or tile < 1):
        msg = f"tile must be None or a positive number of input pixels, got {tile!r}"
        raise ValueError(msg)
    device = resolve_device(device)
    depth = getattr(network, "depth", None)
    margin = receptive_margin(depth) if depth is not None else 32
    runner, workers = make_runner(network, backend=backend, precision=precision, device=device)
    from .tiling import run_tiled

    result = run_tiled(
        normalised.astype(np.float32, copy=False), runner, tile=tile, margin=margin, device=device,
        progress=options.progress, precision=precision, workers=workers,
    )  # fmt: skip
    result = result.astype(out_dtype, copy=False)  # float32 already for float32 input: no copy
    if isinstance(scale, QuietSunSurface):
        _scale_rows(result, scale, factor=2)
    else:
        result *= out_dtype.type(scale)  # in place: result is ours
    if not finite.all():
        result[np.repeat(np.repeat(~finite, 2, axis=0), 2, axis=1)] = np.nan
    return result


def _scale_rows(array, surface, *, factor=1, divide=False, band=256):
    """Multiply (or divide) ``array`` in place by a quiet-Sun surface on its grid, a band of rows at a
    time, so that the surface never exists at full size."""
    for start in range(0, surface.shape[0], band):
        rows = slice(start, min(start + band, surface.shape[0]))
        values = surface(rows, factor=factor)
        target = array[factor * rows.start : factor * rows.stop]
        if divide:
            target /= values
        else:
            target *= values


def history_cards(kind, model, network):
    name = f"custom {type(network).__name__}" if network is not None else f"{model} {kind}"
    return f"solar-enhance {__version__}: Enhance x2 deconvolution + super-resolution, model: {name}"


def enhance(
    data,
    kind: str = "intensity",
    *,
    model: str = "full",
    network: EnhanceNet | None = None,
    qs_level: float | None = None,
    device: str = "auto",
    tile: int | None = None,
    output=None,
    overwrite: bool = False,
    progress: bool = False,
    backend: str = "auto",
    precision: str = "float32",
):
    """Deconvolve an HMI image from its PSF and super-resolve it by two.

    Parameters
    ----------
    data : `~numpy.ndarray`, `sunpy.map.GenericMap`, str or `~pathlib.Path`
        A 2-D continuum image or line-of-sight magnetogram at HMI's 0.504 arcsec per pixel, as an
        array, a Map, or the path of a FITS file.
    kind : {'intensity', 'blos'}
        'intensity' for continuum images (any units), 'blos' for magnetograms in gauss.
    model : {'full', 'light'}
        Shipped model: the paper's (depth 5, width 64) or the light one (depth 1, width 32).
    network : `~enhance.models.network.EnhanceNet` or `~enhance.runtime.export.OnnxNetwork`, optional
        Use this network instead of a shipped model.
    qs_level : float, 'level', 'surface' or None
        Quiet-Sun continuum level (intensity only), in the units of ``data``; 'level' estimates one
        number (`estimate_qs_level`), 'surface' a smooth surface that follows limb darkening
        (`~enhance.observation.quiet_sun.fit_qs_surface`). None (default) uses the surface where the quiet Sun varies
        by more than 15 % across the field (near the limb, full disks), else the single level.
    device : str
        'auto' (CUDA when available), 'cpu', 'cuda', ...
    tile : int, optional
        Run in overlapping tiles of this many input pixels (exact: the result equals a whole-image
        pass to rounding). None runs the whole image, or tiles of 512 above 1024x1024 pixels.
    output : str or `~pathlib.Path`, optional
        For a path input only: write the result there and return the output path.
    overwrite : bool
        With ``output``: replace an existing file.
    progress : bool
        Show a progress bar over tiles.
    backend : {'auto', 'torch', 'onnx'}
        'torch' runs PyTorch (an `~enhance.models.network.EnhanceNet` runs as its faster, equivalent
        `~enhance.runtime.graph.InferenceNet`); 'onnx' runs onnxruntime on the CPU (the optional ``onnx``
        extra), exporting the network in memory once (`~enhance.runtime.export.onnx_network`); the results
        agree within 1e-4. 'auto' (default) picks 'onnx' for an `~enhance.runtime.export.OnnxNetwork`, and for
        a float32 run on the CPU when onnxruntime is installed (the faster CPU runtime for this
        network), else 'torch'.
    precision : {'float32', 'bfloat16', 'float16'}
        Arithmetic of the convolutions (``backend='torch'``): float32, or `torch.autocast` to a reduced
        type, faster where the hardware supports it (CUDA; recent CPUs for bfloat16). Reduced precision
        departs from float32 by about 1e-2 (bfloat16) or 1e-3 (float16) of the image's quiet-Sun level
        or kG (measured by ``make bench`` and bounded in the tests).

    Returns
    -------
    Same type as ``data``
        An array of shape ``(2 ny, 2 nx)``; a new Map with the header of the x2 grid
        (`~enhance.io.upscale_header`); for a path, the output path (with ``output``) or a Map.

    Notes
    -----
    Continuum images are divided by the quiet-Sun level (or surface) before the network and
    multiplied back after it, on the output's grid; magnetograms go through the network in kG and
    come back in gauss. Non-finite pixels
    (off-limb) are filled with their nearest finite neighbour for the network and are NaN again in the
    output, at the 2x2 output pixels of each; finite input never gives non-finite output.

    References
    ----------
    Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5.

    Examples
    --------
    >>> import numpy as np
    >>> from enhance.models.network import EnhanceNet
    >>> out = enhance(np.ones((20, 30)), "intensity", network=EnhanceNet(depth=1, width=8))
    >>> out.shape
    (40, 60)
    """
    check_choice(kind, KINDS, name="kind")
    net = resolve_network(kind, model=model, network=network)
    options = {
        "kind": kind,
        "network": net,
        "options": RunOptions(qs_level=qs_level, device=device, tile=tile, backend=backend, precision=precision,
                              progress=progress),
    }  # fmt: skip
    history = history_cards(kind, model, network)

    if isinstance(data, str | Path):
        from ..io import read_fits, resolve_kind, upscale_header, write_fits

        image, header = read_fits(data)
        resolve_kind(kind, header, path=data)  # a magnetogram in gauss; warns off HMI's pixel scale
        result = enhance_array(image, **options)
        new_header = upscale_header(header, 2, history=history)
        if output is not None:
            return write_fits(output, result, new_header, overwrite=overwrite)
        import sunpy.map

        return sunpy.map.Map(result, new_header)
    if output is not None:
        msg = f"output= is only for a path input, got data of type {type(data).__name__}"
        raise TypeError(msg)

    try:
        from sunpy.map import GenericMap
    except ImportError:  # pragma: no cover - sunpy is a dependency
        GenericMap = ()  # noqa: N806
    if isinstance(data, GenericMap):
        import sunpy.map

        from ..io import resolve_kind, upscale_header

        resolve_kind(kind, data.meta, path="map")
        result = enhance_array(data.data, **options)
        return sunpy.map.Map(result, upscale_header(data.meta, 2, history=history))
    return enhance_array(data, **options)
