"""`enhance()`: deconvolve and super-resolve an HMI image, given as an array, a Map or a FITS path.

A private array function does the work (normalisation, NaN handling, tiled network pass); the
public `enhance` only dispatches on the input type and carries the metadata along.

PyTorch is optional for inference: without it (``pip install 'solar-enhance[onnx]'``) the shipped
models and safetensors weights files run on onnxruntime, their graphs built with numpy
(`~enhance.runtime.export.shipped_onnx_network`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import importlib.util
import logging
import weakref
from pathlib import Path

import numpy as np

from .._version import __version__
from ..checks import check_choice, check_finite_output, check_image, check_magnitude, check_positive, fill_nonfinite
from ..constants import GAUSS_PER_KG, KINDS, VARIANTS
from ..models.architecture import receptive_margin
from ..observation.quiet_sun import QuietSunSurface, estimate_qs_level, qs_normalisation

try:  # PyTorch is optional for inference (see the module docstring)
    import torch

    from ..models.hybrid import WienerEnhanceNet
    from ..models.network import EnhanceNet
    from ..models.pretrained import FACTORIES
    from ..runtime.graph import InferenceNet, resolve_device
except ImportError:  # pragma: no cover - run by `make test-notorch`
    torch = EnhanceNet = WienerEnhanceNet = InferenceNet = FACTORIES = resolve_device = None

__all__ = [
    "enhance",
    "enhance_array",
    "RunOptions",
    "estimate_qs_level",
    "resolve_network",
    "AUTO_TILE_PIXELS",
    "AUTO_TILE",
    "network_noise",
    "NOISE_CROP",
    "NOISE_MIN_SIZE",
    "NOISE_FLOOR",
]

logger = logging.getLogger(__name__)

#: Arithmetic of the convolutions (`~enhance.runtime.graph.PRECISIONS`, named here without PyTorch).
_PRECISIONS = ("float32", "bfloat16", "float16")
#: Inference back-ends: PyTorch, onnxruntime, or 'auto' (see `enhance`).
BACKENDS = ("auto", "torch", "onnx")
#: Images with more pixels than this run in tiles of ``AUTO_TILE`` (512) pixels when ``tile=None``.
AUTO_TILE_PIXELS = 1024 * 1024
AUTO_TILE = 512


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
        Tile size in input pixels; None runs the whole image, or tiles of ``AUTO_TILE`` (512) above
        `AUTO_TILE_PIXELS` pixels.
    backend : {'auto', 'torch', 'onnx'}
        The runtime (see `enhance`).
    precision : {'float32', 'bfloat16', 'float16'}
        Arithmetic of the convolutions (torch back-end).
    progress : bool
        Show a progress bar over tiles.
    symmetric : bool
        Average the network's output over the 8 rotations and flips of the input (the dihedral group
        D4; `~enhance.inference.tiling.dihedral_average`): the result is then equivariant under them by
        construction, at 8 times the cost. A network that averages itself (the 'full' model) is run once.
    noise : float, optional
        Standard deviation of the noise per input pixel, in the image's units (gauss for magnetograms),
        for the networks told the noise level (`~enhance.models.hybrid.WienerEnhanceNet`); None
        measures it on the image (`network_noise`).
    uncertainty : bool
        Also return the standard deviation of each output pixel's error
        (`~enhance.inference.uncertainty.output_uncertainty`): `enhance_array` then returns ``(result, sigma)``.

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
    symmetric: bool = False
    noise: float | None = None
    uncertainty: bool = False


#: Largest square (pixels) of an image whose spectrum `network_noise` reads: the central one of a bigger image.
NOISE_CROP = 1024
#: Smallest side (pixels) of an image whose noise `network_noise` measures: smaller ones hold too few
#: frequencies beyond the cut-off, and get HMI's nominal noise.
NOISE_MIN_SIZE = 32
#: Lowest measured noise `network_noise` hands on, as a fraction of HMI's nominal noise.
NOISE_FLOOR = 0.5
#: Width (cycles per arcsec) of the band beyond the cut-off where `network_noise` measures: 1.15 to 1.27.
NOISE_INNER_WIDTH = 0.12


def network_noise(normalised, *, noise=None, scale=1.0, nominal: float, finite=None) -> float:
    """The noise level handed to the network, in its units (I/Ic or kG).

    Parameters
    ----------
    normalised : (ny, nx) ndarray
        The image in the network's units, finite (missing pixels filled).
    noise : float, optional
        The noise in the image's units (gauss for a magnetogram), to be divided by ``scale``; None
        measures it (`~enhance.observation.noise.estimate_noise` just beyond HMI's cut-off, on at most
        the central `NOISE_CROP` pixels square).
    scale : float or `~enhance.observation.quiet_sun.QuietSunSurface`
        What the image was divided by (a surface counts by its median).
    nominal : float
        HMI's noise in the network's units. It is used, and logged, when the image is smaller than
        `NOISE_MIN_SIZE` pixels, when the measured square holds missing pixels (``finite``), or when
        the spectrum's corners are not white (an interpolated image,
        `~enhance.observation.noise.noise_is_white`). A measurement is never taken below
        `NOISE_FLOOR` of it: a level told too low makes the network amplify the noise, one told too
        high only smooths.
    finite : (ny, nx) bool ndarray, optional
        Where the image held data before missing pixels were filled.

    Returns
    -------
    float
        Standard deviation of the noise per pixel of ``normalised``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> round(network_noise(1 + rng.normal(0, 2e-3, (128, 128)), nominal=1e-3), 4)
    0.002
    >>> network_noise(np.ones((8, 8)), noise=3.0, scale=1000.0, nominal=1e-3)  # 3 G given, in kG
    0.003
    """
    import astropy.units as u

    from ..observation.noise import NOISE_BAND_START, estimate_noise, noise_is_white

    if noise is not None:
        level = float(np.median(scale.samples)) if isinstance(scale, QuietSunSurface) else float(scale)
        return check_positive(noise, name="noise") / level
    data = np.asarray(normalised)
    if min(data.shape) < NOISE_MIN_SIZE:
        logger.info("image smaller than %d pixels: HMI's nominal noise (%.3g) assumed", NOISE_MIN_SIZE, nominal)
        return nominal
    top, left = max((data.shape[0] - NOISE_CROP) // 2, 0), max((data.shape[1] - NOISE_CROP) // 2, 0)
    window = (slice(top, top + NOISE_CROP), slice(left, left + NOISE_CROP))
    crop = data[window]
    if finite is not None and not np.all(finite[window]):
        logger.info("missing pixels in the measured square: HMI's nominal noise (%.3g) assumed; pass noise= "
                    "to set it", nominal)  # fmt: skip
        return nominal
    if not noise_is_white(crop):
        logger.info("the spectrum's corners are not white (an interpolated image?): HMI's nominal noise "
                    "(%.3g) assumed; pass noise= to set it", nominal)  # fmt: skip
        return nominal
    # The band just beyond the cut-off: interpolation, which the whiteness test cannot always see,
    # lowers it least.
    sigma = estimate_noise(crop, band_stop=NOISE_BAND_START + NOISE_INNER_WIDTH / u.arcsec)
    if sigma < NOISE_FLOOR * nominal:
        logger.info("noise measured at %.2f x HMI's, below %.2f x: %.2f x HMI's assumed; pass noise= to set "
                    "it", sigma / nominal, NOISE_FLOOR, NOISE_FLOOR)  # fmt: skip
        return NOISE_FLOOR * nominal
    logger.info("noise measured on the image: %.3g (%.2f x HMI's)", sigma, sigma / nominal)
    return sigma


def resolve_network(kind: str, *, model: str = "full", network: EnhanceNet | None = None) -> EnhanceNet:
    """The network to run: ``network`` if given, else the shipped ``model`` for ``kind``.

    A shipped model is loaded once per process and the same eval-mode module is returned every time:
    copy it (`copy.deepcopy`) before changing it, or load a private one with
    `enhance.models.pretrained.full`.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or line-of-sight magnetogram.
    model : {'full', 'light', 'paper', 'paper-light'}
        The shipped model used when ``network`` is None.
    network : torch.nn.Module or `~enhance.runtime.export.OnnxNetwork`, optional
        A network of your own (an `~enhance.models.network.EnhanceNet`, a
        `~enhance.models.hybrid.WienerEnhanceNet` or an ONNX runner); returned as it is.

    Returns
    -------
    torch.nn.Module or `~enhance.runtime.export.OnnxNetwork`
        The network: for a shipped model a `~enhance.models.hybrid.WienerEnhanceNet` ('full', 'light')
        or `~enhance.models.network.EnhanceNet` ('paper', 'paper-light'), or their ONNX runners without
        PyTorch.

    Raises
    ------
    `~enhance.exceptions.ModelNotTrainedError`
        If ``network`` is None and the package ships no such model.

    Examples
    --------
    >>> net = resolve_network("blos", model="light")
    >>> net is resolve_network("blos", model="light"), net.width
    (True, 32)
    """
    check_choice(kind, KINDS, name="kind")
    if network is not None:
        from ..runtime.export import OnnxNetwork

        if not isinstance(network, (torch.nn.Module, OnnxNetwork) if torch is not None else OnnxNetwork):
            msg = f"network must be an EnhanceNet (torch.nn.Module) or an OnnxNetwork, got {type(network).__name__}"
            raise TypeError(msg)
        return network
    check_choice(model, VARIANTS, name="model")
    from ..models.weights import registry_entry, shipped_path

    entry = registry_entry(kind, model)  # ModelNotTrainedError for a model this version does not ship
    network = _shipped_network(kind, model, str(shipped_path(kind, model)), entry["sha256"])
    network.registry_key = (kind, model, entry["sha256"])  # which uncertainty calibration is its own
    return network


@functools.lru_cache(maxsize=8)
def _shipped_network(kind: str, model: str, path: str, sha256: str) -> EnhanceNet:
    """The shipped ``model`` for ``kind``, read once per process for each registered file and shared.

    Every `enhance` call with ``model=`` then reuses the runner prepared for it (the onnxruntime
    session or `InferenceNet`) instead of reading the weights and exporting the graph again. The key
    holds the file and its registered checksum, so a changed registry loads the new weights.
    """
    if torch is None:
        from ..runtime.export import shipped_onnx_network

        return shipped_onnx_network(kind, model)
    return FACTORIES[model](kind, weights="default").eval().requires_grad_(False)


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
    """onnxruntime for an OnnxNetwork, and for a network of this package in float32 on the CPU when installed."""
    from ..runtime.export import OnnxNetwork

    if isinstance(network, OnnxNetwork) or torch is None:
        return "onnx"
    if (
        isinstance(network, EnhanceNet | WienerEnhanceNet)
        and precision == "float32"
        and torch.device(device).type == "cpu"
    ):
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
    check_choice(precision, _PRECISIONS, name="precision")
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
    if torch is None:
        msg = f"network must be an OnnxNetwork without PyTorch, got {type(network).__name__}"
        raise TypeError(msg)
    if not isinstance(network, EnhanceNet | WienerEnhanceNet):
        if backend == "onnx":
            msg = f"backend='onnx' needs a network of this package or an OnnxNetwork, got {type(network).__name__}"
            raise TypeError(msg)
        return network.eval().to(device), 1

    threads = torch.get_num_threads()  # onnxruntime follows PyTorch's setting (e.g. one per Dask task)
    key = (backend, str(device), threads, getattr(network, "symmetric", False))
    digest = _digest(network)
    cached = _RUNNERS.setdefault(network, {}).get(key)
    if cached is not None and cached[0] == digest:
        return cached[1]
    if backend == "onnx":
        from ..runtime.export import onnx_network

        prepared = onnx_network(network, threads=1), threads  # exported in memory
    elif isinstance(network, WienerEnhanceNet):
        prepared = network.eval().to(device), 1
    else:
        prepared = InferenceNet(network).to(device), 1
    _RUNNERS[network][key] = (digest, prepared)
    return prepared


def _resolve_device(device):
    """`~enhance.runtime.graph.resolve_device` with PyTorch; without it the CPU, where onnxruntime runs."""
    if torch is not None:
        return resolve_device(device)
    if device not in ("auto", "cpu"):
        msg = f"device={device!r} needs PyTorch (pip install 'solar-enhance[torch]'); without it, enhance uses the CPU"
        raise ValueError(msg)
    return "cpu"


def enhance_array(image, *, kind: str, network, options: RunOptions = RunOptions()):
    """The array core of `enhance`: normalise, fill NaN, run ``network`` (tiled), scale back.

    Parameters
    ----------
    image : (ny, nx) array_like
        Continuum image (any units) or magnetogram in gauss, at HMI's 0.504 arcsec per pixel.
    kind : {'intensity', 'blos'}
        What ``image`` is.
    network : torch.nn.Module or `~enhance.runtime.export.OnnxNetwork`
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
    try:
        scale = qs_normalisation(data, qs_level) if kind == "intensity" else GAUSS_PER_KG
    except ValueError:
        _check_values(data, kind, force=False, forceable=False)  # a magnetogram given as intensity: say so
        raise
    if kind == "intensity":
        level = None if isinstance(scale, QuietSunSurface) else float(scale)
        what = "a quiet-Sun surface" if level is None else f"the quiet-Sun level {level:.6g}"
        logger.info("continuum %s x %s: normalised by %s (the image's units)", *data.shape, what)
    if not finite.all():
        logger.info("%d non-finite pixels filled for the network, NaN again in the output", int((~finite).sum()))
    normalised = fill_nonfinite(data, finite)
    check_magnitude(normalised, scale, unit="the quiet-Sun level" if kind == "intensity" else "1 kG")
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
    device = _resolve_device(device)
    symmetric = options.symmetric and not getattr(network, "symmetric", False)  # a 'full' model averages itself
    depth = getattr(network, "depth", None)
    margin = getattr(network, "margin", None) or (receptive_margin(depth) if depth is not None else 32)
    runner, workers = make_runner(network, backend=backend, precision=precision, device=device)
    if options.noise is not None and not hasattr(network, "noise_unit"):
        msg = (f"noise= is for the networks told the noise level ('full', 'light'); {type(network).__name__} was "
               "trained at HMI's noise only")  # fmt: skip
        raise ValueError(msg)
    if hasattr(network, "noise_unit"):  # told the noise level: measured once for the whole image, or given
        sigma = network_noise(normalised, noise=options.noise, scale=scale, nominal=network.noise_unit,
                              finite=finite)  # fmt: skip
        runner = runner.bind(sigma)
    logger.debug("runner %s on %s, %d worker(s), tile %s", type(runner).__name__, device, workers, tile)
    from .tiling import dihedral_average, run_tiled

    def run(array, net=runner):
        return run_tiled(array, net, tile=tile, margin=margin, device=device, progress=options.progress,
                         precision=precision, workers=workers)  # fmt: skip

    source = normalised.astype(np.float32, copy=False)
    result = dihedral_average(run, source) if symmetric else run(source)
    outputs = [result.astype(out_dtype, copy=False)]  # float32 already for float32 input: no copy
    if options.uncertainty:
        from .uncertainty import output_uncertainty

        passes = 8 if symmetric or getattr(network, "symmetric", False) else 4
        sigma = output_uncertainty(source, result, network=network, runner=runner, run=run, passes=passes)
        outputs.append(sigma.astype(out_dtype))
    for array in outputs:
        if isinstance(scale, QuietSunSurface):
            _scale_rows(array, scale, factor=2)
        else:
            array *= out_dtype.type(scale)  # in place: result is ours
    result = outputs[0]
    if kind == "intensity":
        _clip_negative(result, data)
    check_finite_output(result, finite)
    if not finite.all():
        for array in outputs:
            array[np.repeat(np.repeat(~finite, 2, axis=0), 2, axis=1)] = np.nan
    return result if len(outputs) == 1 else tuple(outputs)


def _clip_negative(result, data):
    """Continuum output set to 0 where it is negative and its input pixel is not (in place).

    A continuum intensity cannot be negative; the network's ringing can make it so next to sharp dark
    edges (the limb, umbrae). Only those pixels change."""
    negative = result < 0
    if negative.any():
        with np.errstate(invalid="ignore"):
            allowed = np.repeat(np.repeat(np.asarray(data) >= 0, 2, axis=0), 2, axis=1)
        result[negative & allowed] = 0


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


#: Share of a continuum image's finite pixels that may be negative before it is taken for a magnetogram.
_NEGATIVE_SHARE = 0.01
#: A magnetogram in gauss reaches beyond this many gauss somewhere (HMI's noise alone is about 10 G).
_MIN_GAUSS_PEAK = 5.0


def _check_values(data, kind, *, force, name="image", forceable=True):
    """Refuse values that do not fit ``kind``: a magnetogram given as intensity, a field not in gauss."""
    if force:
        return
    values = np.asarray(data)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return
    if kind == "intensity" and np.count_nonzero(finite < 0) > _NEGATIVE_SHARE * finite.size:
        share = 100 * np.count_nonzero(finite < 0) / finite.size
        msg = (f"{name} looks like a magnetogram, not a continuum image: {share:.0f} % of its pixels are negative "
               f"(from {finite.min():.4g} to {finite.max():.4g}); pass kind='blos' (on the command line: -t blos)"
               + (", or force=True to run it as intensity" if forceable else ""))  # fmt: skip
        raise ValueError(msg)
    if kind == "blos" and 0 < np.abs(finite).max() < _MIN_GAUSS_PEAK and finite.std() > 0:
        msg = (f"{name} is given as a magnetogram in gauss, but its largest |value| is {np.abs(finite).max():.3g}: "
               "it looks like tesla or kilogauss; pass a Quantity (e.g. data * u.T) or a Map with its BUNIT, "
               "or force=True if the values really are in gauss")  # fmt: skip
        raise ValueError(msg)


def _unit_kind(unit, kind, *, force, name):
    """The kind implied by a data unit, checked against ``kind``; and the factor to gauss for a magnetogram."""
    import astropy.units as u

    if unit is None:
        return ("intensity" if kind == "auto" else kind), 1.0
    unit = u.Unit(unit)
    if unit.is_equivalent(u.G):
        if kind == "intensity" and not force:
            msg = (f"{name} is in {unit} (a magnetic field) but was given as intensity; pass kind='blos' "
                   "(on the command line: -t blos), or force=True to run it as intensity")  # fmt: skip
            raise ValueError(msg)
        if kind in ("auto", "blos"):
            from ..io import gauss_factor

            return "blos", gauss_factor(unit)
        return kind, 1.0
    if unit.physical_type == "speed" and not force:
        msg = (f"{name} is in {unit}, a velocity (a Dopplergram?); the networks were trained on continuum "
               "intensity and line-of-sight magnetograms only; pass kind= and force=True to run it anyway")  # fmt: skip
        raise ValueError(msg)
    if kind == "blos" and not force:
        msg = (f"{name} is in {unit}, not a magnetic field, but was given as kind='blos'; pass a magnetogram in "
               "G, kG, T or mT, or force=True to run it as one in gauss")  # fmt: skip
        raise ValueError(msg)
    return ("intensity" if kind == "auto" else kind), 1.0


def _qs_value(qs_level, unit, name="qs_level"):
    """``qs_level`` in the image's ``unit`` as a float: a Quantity is converted, anything else is kept."""
    import astropy.units as u

    if not isinstance(qs_level, u.Quantity):
        return qs_level
    target = u.dimensionless_unscaled if unit is None else u.Unit(unit)
    try:
        return float(qs_level.to_value(target))
    except u.UnitConversionError:
        where = "has no unit" if unit is None else f"is in {target}"
        msg = f"{name} must be in the image's unit, got {qs_level}, but the image {where}"
        raise ValueError(msg) from None


def _masked_to_nan(data, mask):
    """A float copy of ``data`` with NaN where ``mask`` is True (the caller's array is not changed)."""
    array = np.array(data, dtype=np.result_type(np.asarray(data).dtype, np.float32), copy=True)
    if np.any(mask):
        array[np.broadcast_to(mask, array.shape)] = np.nan
    return array


def _noise_value(noise, unit, factor, kind):
    """``noise`` in the image's units (gauss for a magnetogram): a Quantity is converted, a number times ``factor``."""
    import astropy.units as u

    if noise is None:
        return None
    if isinstance(noise, u.Quantity):
        if noise.unit.is_equivalent(u.G) != (kind == "blos"):
            msg = f"noise={noise} does not fit a {'magnetogram' if kind == 'blos' else 'continuum image'}"
            raise ValueError(msg)
        if noise.unit.is_equivalent(u.G):
            return float(noise.to_value(u.G))
        return _qs_value(noise, unit, name="noise")
    try:
        return float(noise) * factor
    except (TypeError, ValueError):
        msg = f"noise must be a positive number in the image's units or a Quantity, got {noise!r}"
        raise ValueError(msg) from None


def _enhance_map(smap, *, kind, options, model, network, force, noise=None):
    """A new Map of the input's class on the x2 grid: data in the Map's unit, mask 2x2-upsampled, same plot settings."""
    import astropy.units as u

    from ..io import provenance_cards, resolve_kind, upscale_header

    measurement = getattr(smap, "measurement", None)
    measurement = measurement if isinstance(measurement, str) else None
    kind = resolve_kind(kind, smap.meta, path=f"the {type(smap).__name__}", force=force, flag=False,
                        measurement=measurement)  # fmt: skip
    history = history_cards(kind, model, network)  # the kind found, when it was 'auto'
    factor = 1.0
    if kind == "blos" and smap.unit is not None and u.Unit(smap.unit).is_equivalent(u.G):
        _, factor = _unit_kind(smap.unit, "blos", force=force, name="the Map")
    data = smap.data if smap.mask is None else _masked_to_nan(smap.data, smap.mask)
    data = data * factor if factor != 1.0 else data
    _check_values(data, kind, force=force, name=f"the {type(smap).__name__}")
    run = dataclasses.replace(options, qs_level=_qs_value(options.qs_level, smap.unit),
                              noise=_noise_value(noise, smap.unit, factor, kind))  # fmt: skip
    result = enhance_array(data, kind=kind, network=resolve_network(kind, model=model, network=network), options=run)
    result, sigma = _unpack(result, factor)
    # sunpy's own reading of the header: the reference pixel (the image centre where CRPIX is absent) and scale.
    meta = smap.meta.copy()
    meta["crpix1"], meta["crpix2"] = (float(p.to_value(u.pix)) + 1.0 for p in smap.reference_pixel)
    meta["cdelt1"], meta["cdelt2"] = (float(s.to_value(u.Unit(c) / u.pix)) for s, c in zip(
        smap.scale, smap.spatial_units, strict=True))  # fmt: skip
    new_meta = upscale_header(meta, 2, history=history, shape=smap.data.shape,
                              provenance=provenance_cards(model=_model_name(model, network), kind=kind))  # fmt: skip
    mask = None if smap.mask is None else np.repeat(np.repeat(np.asarray(smap.mask), 2, axis=0), 2, axis=1)
    if mask is not None and mask.shape != result.shape:  # a scalar mask (numpy's nomask)
        mask = np.broadcast_to(np.asarray(smap.mask, dtype=bool), result.shape).copy()
    enhanced = smap._new_instance(result, new_meta, plot_settings=copy.deepcopy(smap.plot_settings), mask=mask)
    if sigma is None:
        return enhanced
    return enhanced, smap._new_instance(sigma, copy.deepcopy(new_meta), plot_settings=copy.deepcopy(smap.plot_settings),
                                        mask=copy.copy(mask))  # fmt: skip


def _model_name(model, network):
    return f"custom {type(network).__name__}" if network is not None else model


def enhance(
    data,
    kind: str = "auto",
    *,
    model: str = "full",
    network: EnhanceNet | None = None,
    qs_level=None,
    device: str = "auto",
    tile: int | None = None,
    output=None,
    overwrite: bool = False,
    progress: bool = False,
    backend: str = "auto",
    precision: str = "float32",
    force: bool = False,
    symmetric: bool = False,
    noise=None,
    uncertainty: bool = False,
):
    """Deconvolve an HMI image from its PSF and super-resolve it by two.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `sunpy.map.GenericMap`, str or `~pathlib.Path`
        A 2-D continuum image or line-of-sight magnetogram at HMI's 0.504 arcsec per pixel, as an
        array (the masked pixels of a `numpy.ma.MaskedArray` are missing data), a Quantity, a Map, or
        the path of a FITS file.
    kind : {'auto', 'intensity', 'blos'}
        'intensity' for continuum images (any units), 'blos' for magnetograms. 'auto' (default) reads a
        Map's ``measurement``, the header's CONTENT, series name or BUNIT, or a Quantity's unit (a
        magnetic field is a magnetogram); a plain array without a unit is taken as a continuum image.
    model : {'full', 'light', 'paper', 'paper-light'}
        Shipped model. 'full' (default): Wiener-Enhance, a linear Wiener stage and a residual CNN told
        the noise level (`~enhance.models.hybrid.WienerEnhanceNet`), averaged over the 8 rotations and
        flips of the input; 'light': one pass of it, 8 times faster. 'paper' and 'paper-light': the
        networks of Díaz Baso & Asensio Ramos (2018) (depth 5, width 64; depth 1, width 32).
    network : torch.nn.Module or `~enhance.runtime.export.OnnxNetwork`, optional
        Use this network instead of a shipped model: an `~enhance.models.network.EnhanceNet`, a
        `~enhance.models.hybrid.WienerEnhanceNet` or an ONNX runner.
    qs_level : float, `~astropy.units.Quantity`, 'level', 'surface' or None
        Quiet-Sun continuum level (intensity only), in the units of ``data`` (a Quantity is converted
        to them); 'level' estimates one number (`estimate_qs_level`), 'surface' a smooth surface that
        follows limb darkening (`~enhance.observation.quiet_sun.fit_qs_surface`). None (default) uses the
        surface where the quiet Sun varies by more than 15 % across the field (near the limb, full
        disks), else the single level.
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
        network), else 'torch'. Without PyTorch the shipped models run on onnxruntime.
    precision : {'float32', 'bfloat16', 'float16'}
        Arithmetic of the convolutions (``backend='torch'``): float32, or `torch.autocast` to a reduced
        type, faster where the hardware supports it (CUDA; recent CPUs for bfloat16). Reduced precision
        departs from float32 by about 1e-2 (bfloat16) or 1e-3 (float16) of the image's quiet-Sun level
        or kG (measured by ``make bench`` and bounded in the tests).
    symmetric : bool
        Average over the 8 rotations and flips of the input (`RunOptions`): the result does not depend on
        whether the image was rotated or flipped first (equivariant to float rounding), at 8 times the cost.
        The 'full' model always does.
    noise : float or `~astropy.units.Quantity`, optional
        Standard deviation of the noise per input pixel, in the units of ``data`` (a Quantity is
        converted), for the 'full' and 'light' models. None (default) measures it on the image from the
        corners of its spectrum, beyond HMI's diffraction cut-off (`network_noise`); an image whose
        corners are not white (interpolated: remapped, derotated) gets HMI's nominal noise, 1e-3 of the
        quiet Sun or 10 G.
    force : bool
        Run inputs that the checks refuse: grids that are not helioprojective (CEA, Carrington,
        heliographic), pixel scales more than 5 % from HMI's 0.504 arcsec, quantities the networks
        were not trained on (Dopplergrams), files solar-enhance wrote, and values that do not fit
        ``kind`` (a magnetogram given as intensity).
    uncertainty : bool
        Also return the standard deviation of each output pixel's error, in the output's unit, for the
        'full' and 'light' models (`~enhance.inference.uncertainty`): the propagated input noise, the
        model's spread over rotations and flips and the spread over plausible PSFs, calibrated on
        held-out scenes (68 % of errors within it, 95 % within twice it; see the validation pages). It
        costs about 2.2 times the 'full' model's time.

    Returns
    -------
    Same type as ``data``
        An array of shape ``(2 ny, 2 nx)`` (a Quantity in the input's unit for a Quantity, NaN where a
        masked array was masked); for a Map, a new Map of the same class on the x2 grid
        (`~enhance.io.upscale_header` of the Map's own reference pixel and scale), in the Map's unit,
        with its mask (each masked pixel masks its 2x2 output pixels), plot settings and observer; for a
        path, the output path (with ``output``) or a Map.
        With ``uncertainty=True``: a tuple ``(result, sigma)`` of two of them (arrays, Quantities or Maps:
        the uncertainty Map has the result's WCS, unit and mask), or, with ``output``, the path of a file
        that holds the uncertainty in an image extension named 'UNCERT' (`~enhance.io.uncertainty_hdu`).

    Raises
    ------
    ValueError
        If the input is refused (see ``force``), ``kind`` is 'auto' and nothing tells it, or an option
        is invalid.

    Notes
    -----
    Continuum images are divided by the quiet-Sun level (or surface) before the network and
    multiplied back after it, on the output's grid; magnetograms are converted to gauss (from kG, T
    or mT), go through the network in kG and come back in the caller's unit. Non-finite pixels
    (off-limb) and masked pixels are filled with their nearest finite neighbour for the network and
    are NaN in the output, at the 2x2 output pixels of each; finite input never gives non-finite
    output. Continuum output is never negative where its input pixel is not: such pixels (the network's
    ringing next to the limb or an umbra) are set to 0.

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
    import astropy.units as u

    check_choice(kind, (*KINDS, "auto"), name="kind")
    options = RunOptions(qs_level=qs_level, device=device, tile=tile, backend=backend, precision=precision,
                         progress=progress, symmetric=symmetric, uncertainty=bool(uncertainty))  # fmt: skip

    def with_noise(run, unit, factor, kind):
        return dataclasses.replace(run, noise=_noise_value(noise, unit, factor, kind))

    if isinstance(data, str | Path):
        from ..io import (
            gauss_factor,
            provenance_cards,
            read_fits,
            resolve_kind,
            uncertainty_hdu,
            upscale_header,
            write_fits,
        )

        image, header = read_fits(data)
        kind = resolve_kind(kind, header, path=data, force=force, flag=False)
        history = history_cards(kind, model, network)
        unit = str(header.get("BUNIT", "") or "").strip()
        factor = gauss_factor(unit) if kind == "blos" and unit and not force else 1.0
        image = image * factor if factor != 1.0 else image
        _check_values(image, kind, force=force, name=str(data))
        net = resolve_network(kind, model=model, network=network)
        result = enhance_array(image, kind=kind, network=net, options=with_noise(options, unit or None, factor, kind))
        result, sigma = _unpack(result, factor)
        cards = provenance_cards(model=_model_name(model, network), kind=kind)
        new_header = upscale_header(header, 2, history=history, provenance=cards)
        if output is not None:
            step = None
            if str(output).lower().endswith(".fz"):  # tile-compressed, as `enhance run -o NAME.fz` writes it
                from .distributed import quantize_step

                step = quantize_step(image, kind) / factor  # in the file's unit (image: in gauss for blos)
            extra = [] if sigma is None else [uncertainty_hdu(sigma, new_header)]
            return write_fits(output, result, new_header, overwrite=overwrite, quantize_step=step, extra_hdus=extra)
        import sunpy.map

        return sunpy.map.Map(result, new_header) if sigma is None else tuple(sunpy.map.Map(a, new_header)
                                                                              for a in (result, sigma))  # fmt: skip
    if output is not None:
        msg = f"output= is only for a path input, got data of type {type(data).__name__}"
        raise TypeError(msg)

    try:
        from sunpy.map import GenericMap
    except ImportError:  # pragma: no cover - sunpy is a dependency
        GenericMap = ()  # noqa: N806
    if isinstance(data, GenericMap):
        return _enhance_map(data, kind=kind, options=options, model=model, network=network, force=force, noise=noise)

    unit = data.unit if isinstance(data, u.Quantity) else None
    kind, factor = _unit_kind(unit, kind, force=force, name="image")
    values = data.value if isinstance(data, u.Quantity) else data
    if isinstance(values, np.ma.MaskedArray):
        values = _masked_to_nan(values.data, np.ma.getmaskarray(values))
    values = values * factor if factor != 1.0 else values
    _check_values(values, kind, force=force)
    net = resolve_network(kind, model=model, network=network)
    run = with_noise(dataclasses.replace(options, qs_level=_qs_value(qs_level, unit)), unit, factor, kind)
    result = enhance_array(values, kind=kind, network=net, options=run)
    result, sigma = _unpack(result, factor)
    if sigma is not None:
        return (result * unit, sigma * unit) if unit is not None else (result, sigma)
    return result * unit if unit is not None else result


def _unpack(result, factor):
    """``(result, sigma)`` of `enhance_array` (sigma None without uncertainty), divided by ``factor``."""
    result, sigma = result if isinstance(result, tuple) else (result, None)
    for array in (result,) if sigma is None else (result, sigma):
        if factor != 1.0:
            array /= array.dtype.type(factor)
    return result, sigma
