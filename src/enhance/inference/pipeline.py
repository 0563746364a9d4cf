"""The array core of `~enhance.inference.api.enhance`: the network, the noise level, the normalisation.

`enhance_array` does the work on one image (normalisation, NaN handling, the noise level told the
network, the tiled network pass); `~enhance.inference.api.enhance` dispatches on the input type
(array, Quantity, Map, MapSequence, path, dask array) and carries the metadata along.

PyTorch is optional for inference: without it (``pip install 'solar-enhance[onnx]'``) the shipped
models and safetensors weights files run on onnxruntime, their graphs built with numpy
(`~enhance.runtime.export.shipped_onnx_network`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from .. import exceptions
from .._version import __version__
from ..checks import (
    check_choice,
    check_finite_output,
    check_image,
    check_magnitude,
    check_positive,
    check_tile,
    fill_nonfinite,
)
from ..constants import GAUSS_PER_KG, HMI_NOISE, KINDS
from ..grid import on_output_grid
from ..models.architecture import WIENER_ENHANCE
from ..models.registry import MODELS, file_sha256, registry_entry, shipped_path
from ..observation.noise import NOISE_BAND_START, measure_noise, replace_outliers
from ..observation.quiet_sun import QuietSunSurface, estimate_qs_level, qs_normalisation
from ..runtime.export import shipped_onnx_network
from ..runtime.runners import (
    as_runner,
    auto_backend,
    check_network,
    import_torch,
    make_runner,
    onnx_installed,
    runs_on_torch,
    stated_margin,
)
from .noise_map import noise_map, noise_map_cards, run_with_noise_map
from .tiling import run_tiled
from .uncertainty import calibration_label, filter_bank, off_disk, output_uncertainty, resolve_calibration

if TYPE_CHECKING:  # PyTorch is optional, and imported only where a network runs on it (see the module docstring)
    from ..models.network import EnhanceNet

__all__ = [
    "enhance_array",
    "check_values",
    "QS_LEVEL_IS_CONTINUUM",
    "RunOptions",
    "run_options",
    "estimate_qs_level",
    "resolve_network",
    "make_runner",
    "auto_backend",
    "AUTO_TILE_PIXELS",
    "AUTO_TILE",
    "network_noise",
    "network_margin",
    "noise_choice",
    "check_noise_level",
    "NoiseChoice",
    "NOISE_WARN_RATIO",
    "Assumptions",
    "sequence_noise",
    "SEQUENCE_NOISE_FRAMES",
    "assumption_cards",
    "registry_cards",
    "NOISE_CROP",
    "NOISE_MIN_SIZE",
    "NOISE_FLOOR",
]

logger = logging.getLogger(__name__)

#: Images with more pixels than this run in tiles of ``AUTO_TILE`` (512) pixels when ``tile=None``.
AUTO_TILE_PIXELS = 1024 * 1024
AUTO_TILE = 512


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How an image goes through the network: the options that `enhance`, `enhance_array`,
    `~enhance.inference.distributed.enhance_files`, `~enhance.inference.distributed.enhance_dask` and
    ``enhance run`` share (each takes ``options=`` or the same keyword arguments, `run_options`).

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
        D4; `~enhance.models.runner.dihedral_average`): the result is then equivariant under them by
        construction, at 8 times the cost. A network that averages itself (the 'full' model) is run once.
    noise : float, optional
        Standard deviation of the noise per input pixel, in the image's units (gauss for magnetograms),
        for the networks told the noise level (`~enhance.models.hybrid.WienerEnhanceNet`); None
        measures it on the image (`network_noise`).
    uncertainty : bool
        Also return the standard deviation of each output pixel's error
        (`~enhance.inference.uncertainty.output_uncertainty`): `enhance_array` then returns ``(result, sigma)``.
    noise_map : bool
        Tell the network a noise level per pixel (`~enhance.inference.noise_map`): photon noise for a
        continuum image, the centre-to-limb law for a magnetogram with a header, else a plane measured on
        tiles; ``noise`` is then the quiet-Sun (disk-centre) level. Two passes where the map varies. Off by
        default: on held-out synthetic scenes it changes the error by a few per cent at most
        (``benchmarks/noise_map.py``).
    noise_per_frame : bool
        For a sequence (a cube, a MapSequence, the files of a batch) and ``noise=None``: measure the noise on
        each frame, instead of telling every frame the median level (`sequence_noise`).
    force : bool
        Run inputs that the checks refuse (see `enhance`).

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
    noise_map: bool = False
    noise_per_frame: bool = False
    force: bool = False


def _same(a, b) -> bool:
    """Whether two option values are the same (Quantities and numbers by value, no error on mixed types)."""
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays, Quantities of other units
        return False


def run_options(options: RunOptions | None = None, **given) -> RunOptions:
    """The options of a call: ``options`` and the keyword arguments given beside it, as one `RunOptions`.

    Parameters
    ----------
    options : RunOptions, optional
        Options given as one object; None: the defaults.
    **given
        Fields of `RunOptions` given as keyword arguments (those of `enhance`, ``enhance_files``, ...).

    Returns
    -------
    RunOptions
        ``options`` with each keyword that differs from its default set.

    Raises
    ------
    TypeError
        If ``options`` is not a `RunOptions`, or a keyword and ``options`` both set a field (each away from
        its default) to different values.

    Examples
    --------
    >>> merged = run_options(RunOptions(tile=256), symmetric=True)
    >>> merged.tile, merged.symmetric
    (256, True)
    >>> run_options(RunOptions(tile=256), tile=128)
    Traceback (most recent call last):
    ...
    TypeError: tile=128 and options.tile=256 disagree: give it in one place
    """
    if options is None:
        return RunOptions(**given)
    if not isinstance(options, RunOptions):
        msg = f"options must be a RunOptions, got {type(options).__name__}"
        raise TypeError(msg)
    defaults, changes = RunOptions(), {}
    for name, value in given.items():
        default, held = getattr(defaults, name), getattr(options, name)
        if _same(value, default) or _same(value, held):
            continue
        if not _same(held, default):
            msg = f"{name}={value!r} and options.{name}={held!r} disagree: give it in one place"
            raise TypeError(msg)
        changes[name] = value
    return dataclasses.replace(options, **changes)


#: Largest square (pixels) of an image whose spectrum `network_noise` reads: the central one of a bigger image.
NOISE_CROP = 1024
#: Smallest side (pixels) of an image whose noise `network_noise` measures: smaller ones hold too few
#: frequencies beyond the cut-off, and get HMI's nominal noise.
NOISE_MIN_SIZE = 32
#: Lowest measured noise `network_noise` hands on, as a fraction of HMI's nominal noise.
NOISE_FLOOR = 0.5
#: Width (cycles per arcsec) of the band beyond the cut-off where `network_noise` measures: 1.15 to 1.27.
NOISE_INNER_WIDTH = 0.12

#: The fraction of HMI's noise (`~enhance.constants.HMI_NOISE`) that one quantisation step of a compressed
#: output (``.fz``, ``compress=True``) may be: the error is at most half a step (0.1 of the noise) and its rms
#: step/sqrt(12) (0.058 of the noise).
COMPRESS_STEP = 0.2


def quantize_step(image, kind) -> float:
    """The RICE quantisation step of a compressed output for an image of ``kind``, in its units."""
    if kind == "blos":
        return COMPRESS_STEP * HMI_NOISE["blos"]
    return COMPRESS_STEP * HMI_NOISE["intensity"] * float(estimate_qs_level(image))


@dataclasses.dataclass(frozen=True)
class NoiseChoice:
    """The noise level the network is told, and how it was obtained.

    Parameters
    ----------
    value : float
        Standard deviation of the noise per input pixel, in ``unit``.
    unit : str
        The network's units: 'I/Ic' (a fraction of the quiet-Sun level) or 'kG'; '' when not known.
    source : {'measured', 'nominal', 'given'}
        Measured on the image (`noise_choice`), HMI's nominal noise, or given by the caller.
    reason : str
        Why, in a few words: what was measured, or why the nominal noise was assumed.

    Examples
    --------
    >>> NoiseChoice(1e-3, "I/Ic", "nominal", "image smaller than 32 pixels").source
    'nominal'
    """

    value: float
    unit: str
    source: str
    reason: str = ""


#: Measured noise above this many times HMI's raises a `~enhance.exceptions.NoiseLevelWarning`.
NOISE_WARN_RATIO = 4.0


def noise_choice(normalised, *, noise=None, scale=1.0, nominal: float, finite=None, unit: str = "",
                 warn: bool = True) -> NoiseChoice:  # fmt: skip
    """The noise level handed to the network, in its units (I/Ic or kG), with how it was obtained.

    Parameters
    ----------
    normalised, noise, scale, nominal, finite
        As in `network_noise`.
    unit : str
        The network's units, recorded in the result ('I/Ic' or 'kG').
    warn : bool
        Warn (`~enhance.exceptions.NoiseLevelWarning`) when the measured noise is more than
        `NOISE_WARN_RATIO` times ``nominal``.

    Returns
    -------
    NoiseChoice
        The level, in the units of ``normalised``, its source ('measured', 'nominal' or 'given') and
        the reason.

    Examples
    --------
    >>> noise_choice(np.ones((8, 8)), nominal=1e-3, unit="I/Ic")
    NoiseChoice(value=0.001, unit='I/Ic', source='nominal', reason='image smaller than 32 pixels')
    """
    if noise is not None:
        level = float(np.median(scale.samples)) if isinstance(scale, QuietSunSurface) else float(scale)
        value = check_positive(noise, name="noise") / level
        if not value < float(np.finfo(np.float32).max):  # the network computes in float32
            msg = f"noise={noise!r} is {value:.3g} in the network's units, beyond any noise level it can be told"
            raise ValueError(msg)
        return NoiseChoice(value, unit, "given")
    data = np.asarray(normalised)
    if min(data.shape) < NOISE_MIN_SIZE:
        return _nominal(nominal, unit, f"image smaller than {NOISE_MIN_SIZE} pixels")
    top, left = max((data.shape[0] - NOISE_CROP) // 2, 0), max((data.shape[1] - NOISE_CROP) // 2, 0)
    window = (slice(top, top + NOISE_CROP), slice(left, left + NOISE_CROP))
    # The band just beyond the cut-off: interpolation, which the whiteness test cannot always see, lowers it least.
    found = measure_noise(data[window], band_stop=NOISE_BAND_START + NOISE_INNER_WIDTH / u.arcsec,
                          finite=None if finite is None else finite[window])  # fmt: skip
    if not found.tiles:
        return _nominal(nominal, unit, "missing or constant pixels in every tile measured")
    if not found.reliable:
        if warn:
            _warn_unreliable(found, nominal)
        if found.sigma > nominal:
            return NoiseChoice(found.sigma, unit, "measured", f"unreliable ({found.reason}); above HMI's, kept")
        return _nominal(nominal, unit, f"unreliable measurement: {found.reason}")
    if found.whiteness > 2.0:
        return _nominal(nominal, unit, "spectrum's corners not white (interpolated?)")
    sigma = found.sigma
    if found.outliers or found.rejected or found.missing:
        logger.info("noise measured on %d tiles (%d with missing or constant pixels and %d far above the others "
                    "left out), %d outlier pixels ignored", found.tiles, found.missing, found.rejected,
                    found.outliers)  # fmt: skip
    if sigma < NOISE_FLOOR * nominal:
        logger.info("noise measured at %.2f x HMI's, below %.2f x: %.2f x HMI's assumed; pass noise= to set "
                    "it", sigma / nominal, NOISE_FLOOR, NOISE_FLOOR)  # fmt: skip
        reason = f"{sigma / nominal:.3g} x HMI's measured, raised to the floor {NOISE_FLOOR:g} x"
        return NoiseChoice(NOISE_FLOOR * nominal, unit, "measured", reason)
    logger.info("noise measured on the image: %.3g (%.2f x HMI's)", sigma, sigma / nominal)
    choice = NoiseChoice(sigma, unit, "measured", f"{sigma / nominal:.3g} x HMI's, beyond the cut-off")
    if warn:
        check_noise_level(choice, nominal=nominal)
    return choice


def _nominal(nominal, unit, reason):
    logger.info("%s: HMI's nominal noise (%.3g) assumed; pass noise= to set it", reason, nominal)
    return NoiseChoice(nominal, unit, "nominal", reason)


def check_noise_level(choice: NoiseChoice, *, nominal: float) -> None:
    """Warn when a measured noise level is more than `NOISE_WARN_RATIO` times HMI's.

    HMI's noise at its 0.504 arcsec pixels is what the pixel scale of an HMI image implies; a level
    read far above it means data binned but labelled at HMI's scale, data from another instrument, or an
    image the network was not meant for. The packaged continuum cut-out binned 2 x 2 reads as 9.4 x; the
    magnetogram cut-out binned alike reads as 2.0 x only (the solar field, not noise, beyond the labelled
    cut-off), which this cannot tell from a noisy magnetogram.

    Parameters
    ----------
    choice : NoiseChoice
        The decision; only a 'measured' one is checked.
    nominal : float
        HMI's noise in the units of ``choice``.

    Warns
    -----
    `~enhance.exceptions.NoiseLevelWarning`
        When ``choice.value`` exceeds ``NOISE_WARN_RATIO * nominal``.

    Examples
    --------
    >>> check_noise_level(NoiseChoice(2e-3, "I/Ic", "measured"), nominal=1e-3)  # 2 x: silent
    """
    if _far_above_hmi(choice, nominal):
        msg = (f"noise measured at {choice.value / nominal:.3g} x HMI's nominal noise, more than "
               f"{NOISE_WARN_RATIO:g} x: is the image binned, or not at HMI's 0.504 arcsec per pixel? The network "
               "is told the measured level; pass noise= (--noise) to set it")  # fmt: skip
        warnings.warn(msg, exceptions.NoiseLevelWarning, stacklevel=2)


def _far_above_hmi(choice: NoiseChoice, nominal: float) -> bool:
    """Whether ``choice`` was measured at more than `NOISE_WARN_RATIO` times HMI's noise ``nominal``."""
    return choice.source == "measured" and choice.value / nominal > NOISE_WARN_RATIO


def network_noise(normalised, *, noise=None, scale=1.0, nominal: float, finite=None) -> float:
    """The noise level handed to the network, in its units (I/Ic or kG).

    Parameters
    ----------
    normalised : (ny, nx) ndarray
        The image in the network's units, finite (missing pixels filled).
    noise : float, optional
        The noise in the image's units (gauss for a magnetogram), to be divided by ``scale``; None
        measures it (`~enhance.observation.noise.measure_noise` just beyond HMI's cut-off, on at most
        the central `NOISE_CROP` pixels square, robust to outlier pixels, edges and constant regions).
    scale : float or `~enhance.observation.quiet_sun.QuietSunSurface`
        What the image was divided by (a surface counts by its median).
    nominal : float
        HMI's noise in the network's units. It is used, and logged, when the image is smaller than
        `NOISE_MIN_SIZE` pixels, when every tile of the measured square holds missing pixels (``finite``)
        or constant ones, or when the spectrum's corners are not white (an interpolated image,
        `~enhance.observation.noise.noise_is_white`). When the measurement is unreliable (a periodic
        pattern, most tiles far above the others) an `~enhance.exceptions.EnhanceUserWarning` says so and
        the larger of the two is used. A measurement is never taken below `NOISE_FLOOR` of it: a level
        told too low makes the network amplify the noise, one told too high only smooths. One more than
        `NOISE_WARN_RATIO` times it is used, with a `~enhance.exceptions.NoiseLevelWarning`.
    finite : (ny, nx) bool ndarray, optional
        Where the image held data before missing pixels were filled.

    Returns
    -------
    float
        Standard deviation of the noise per pixel of ``normalised``; `noise_choice` also says how it
        was obtained.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> round(network_noise(1 + rng.normal(0, 2e-3, (128, 128)), nominal=1e-3), 4)
    0.002
    >>> network_noise(np.ones((8, 8)), noise=3.0, scale=1000.0, nominal=1e-3)  # 3 G given, in kG
    0.003
    """
    return noise_choice(normalised, noise=noise, scale=scale, nominal=nominal, finite=finite).value


#: The units of the network's input, per kind: the quiet-Sun level, or kG.
_NETWORK_UNITS = {"intensity": "I/Ic", "blos": "kG"}


@dataclasses.dataclass(frozen=True)
class Assumptions:
    """What an enhancement assumed about its input (`enhance_array` with ``return_assumptions=True``).

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        What was enhanced.
    noise : NoiseChoice or None
        The noise level told the network; None for a network not told it (the paper's).
    quiet_sun : float, `~enhance.observation.quiet_sun.QuietSunSurface` or None
        What a continuum image was divided by, in its units; None for a magnetogram.
    quiet_sun_source : {'given', 'estimated'}
        Whether the caller gave ``quiet_sun`` or it was estimated on the image.
    noise_map : `~enhance.inference.noise_map.NoiseMap` or None
        The noise level told the network per input pixel (``noise_map`` of `RunOptions`); None when one level
        was told for the whole image.
    outliers : int
        Isolated outlier pixels replaced by their neighbours' median before the enhancement
        (`~enhance.observation.noise.replace_outliers`).
    uncertainty : str or None
        The calibration of the uncertainty (`~enhance.inference.uncertainty.calibration_label`): a stored
        entry's ``kind/model``, 'uncalibrated' or 'given'; None where no uncertainty was computed.

    Examples
    --------
    >>> Assumptions("blos", NoiseChoice(0.01, "kG", "nominal", "image smaller than 32 pixels"), None).noise.value
    0.01
    """

    kind: str
    noise: NoiseChoice | None
    quiet_sun: object
    quiet_sun_source: str = "estimated"
    noise_map: object = None
    uncertainty: str | None = None
    outliers: int = 0


def assumption_cards(assumptions: Assumptions) -> dict:
    """Header cards that record what an enhancement assumed (`Assumptions`), for the FITS header and the Map's meta.

    Parameters
    ----------
    assumptions : Assumptions
        What `enhance_array` returned with ``return_assumptions=True``.

    Returns
    -------
    dict
        ``ENH_NOIS`` (the noise level told the network per input pixel: a fraction of the quiet-Sun level
        for a continuum image, gauss for a magnetogram), ``ENH_NUNI`` (its unit, 'I/Ic' or 'G'),
        ``ENH_NSRC`` ('measured', 'nominal' or 'given') and ``ENH_NWHY`` (why), where the network is told
        the noise; for a continuum image ``ENH_QSTY`` ('level' or 'surface'), ``ENH_QSRC`` ('given' or
        'estimated') and ``ENH_QSLV`` (the level, in the image's units; a surface's median), with
        ``ENH_QSMN`` and ``ENH_QSMX`` (a surface's least and greatest value); with an uncertainty, ``ENH_UCAL``
        (its calibration: the stored entry's ``kind/model``, 'uncalibrated' or 'given'); ``ENH_NOUT``, the isolated
        outlier pixels replaced before the enhancement, where there were any.

    Examples
    --------
    >>> cards = assumption_cards(Assumptions("blos", NoiseChoice(0.012, "kG", "measured"), None))
    >>> cards["ENH_NOIS"], cards["ENH_NUNI"], cards["ENH_NSRC"]
    (12.0, 'G', 'measured')
    """
    cards = {}
    noise = assumptions.noise
    if noise is not None:
        in_gauss = noise.unit == "kG"
        cards.update(ENH_NOIS=float(noise.value * GAUSS_PER_KG if in_gauss else noise.value),
                     ENH_NUNI="G" if in_gauss else noise.unit, ENH_NSRC=noise.source,
                     ENH_NWHY=noise.reason[:68])  # fmt: skip
        if assumptions.noise_map is not None:  # `~enhance.inference.noise_map.NoiseMap`: the level per pixel
            cards.update(noise_map_cards(assumptions.noise_map, unit=noise.unit))
    level = assumptions.quiet_sun
    if isinstance(level, QuietSunSurface):
        samples = np.asarray(level.samples, dtype=np.float64)
        cards.update(ENH_QSTY="surface", ENH_QSRC=assumptions.quiet_sun_source, ENH_QSLV=float(np.median(samples)),
                     ENH_QSMN=float(samples.min()), ENH_QSMX=float(samples.max()))  # fmt: skip
    elif level is not None:
        cards.update(ENH_QSTY="level", ENH_QSRC=assumptions.quiet_sun_source, ENH_QSLV=float(level))
    if assumptions.uncertainty is not None:
        cards["ENH_UCAL"] = assumptions.uncertainty
    if assumptions.outliers:
        cards["ENH_NOUT"] = int(assumptions.outliers)
    return cards


def registry_cards(kind: str, model: str, *, network=None, weights=None) -> dict:
    """Header cards naming the weights that ran: ``ENH_REG`` (the registry name, e.g. 'intensity/full') and
    ``ENH_SHA`` (the sha256 of the weights file), for a shipped model or a weights file; none for a network
    object of the caller's.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        What the model enhances.
    model : str
        The shipped model ('full', 'light', ...), named when neither ``network`` nor ``weights`` is given.
    network : torch.nn.Module or `~enhance.runtime.export.OnnxNetwork`, optional
        A network of the caller's: no cards.
    weights : str or `~pathlib.Path`, optional
        A weights file: its name (at most 68 characters) and its sha256.

    Returns
    -------
    dict of str to str
        ``{"ENH_REG": ..., "ENH_SHA": ...}``, or empty for a network of the caller's.

    Examples
    --------
    >>> registry_cards("blos", "light")["ENH_REG"]
    'blos/light'
    """
    if weights is not None:
        return {"ENH_REG": Path(weights).name[:68], "ENH_SHA": file_sha256(Path(weights))}
    if network is not None:
        return {}
    return {"ENH_REG": f"{kind}/{model}", "ENH_SHA": registry_entry(kind, model).sha256}


#: `sequence_noise` measures at most this many frames, spread evenly over the sequence.
SEQUENCE_NOISE_FRAMES = 16


def sequence_noise(frames, *, kind: str, network, qs_level=None) -> NoiseChoice | None:
    """One noise level for a whole sequence: the median of the levels `noise_choice` finds on its frames.

    Parameters
    ----------
    frames : sequence of (ny, nx) array_like
        The frames (continuum in any units, magnetograms in gauss), indexable and with a length; a
        frame that cannot be read (an exception on indexing) or normalised is left out.
    kind : {'intensity', 'blos'}
        What the frames are.
    network : torch.nn.Module or `~enhance.runtime.export.OnnxNetwork`
        The network that will run; None is returned for one not told the noise level.
    qs_level : float, 'level', 'surface' or None
        Quiet-Sun normalisation of each continuum frame (see `enhance`).

    Returns
    -------
    NoiseChoice or None
        The median of the per-frame levels (each relative to its own frame's quiet-Sun level for a
        continuum), 'measured' when at least one frame was measured, else 'nominal'; its reason says over
        how many frames. None if the network is not told the noise or no frame could be read.

    Notes
    -----
    At most `SEQUENCE_NOISE_FRAMES` frames, evenly spaced from the first to the last, are measured. One
    level for every frame keeps the network's smoothing the same from frame to frame: levels measured
    frame by frame scatter by a few per cent and would make a movie flicker. The median ignores a few
    odd frames (a cosmic-ray hit, a frame with missing pixels that falls back to the nominal noise). A
    measured median more than `NOISE_WARN_RATIO` times HMI's noise warns once
    (`~enhance.exceptions.NoiseLevelWarning`); otherwise one warning names the measured frames above it.

    Examples
    --------
    >>> from enhance.inference.pipeline import resolve_network
    >>> rng = np.random.default_rng(0)
    >>> cube = 1 + rng.normal(0, 2e-3, (3, 64, 64))
    >>> choice = sequence_noise(cube, kind="intensity", network=resolve_network("intensity", model="light"))
    >>> round(choice.value, 4), choice.source
    (0.002, 'measured')
    """
    check_choice(kind, KINDS, name="kind")
    runner = as_runner(network)
    if not runner.needs_noise:
        return None
    count = len(frames)
    picks = sorted({int(round(i)) for i in np.linspace(0, count - 1, min(count, SEQUENCE_NOISE_FRAMES))})
    choices, indices = [], []
    for index in picks:
        try:
            normalised, scale, finite = _normalise(check_image(frames[index]), kind, qs_level)
        except (OSError, ValueError, TypeError):
            continue  # the frame fails on its own when it is enhanced, with its reason
        choices.append(noise_choice(normalised, scale=scale, nominal=runner.noise_unit, finite=finite,
                                    unit=_NETWORK_UNITS[kind], warn=False))  # fmt: skip
        indices.append(index)
    if not choices:
        return None
    measured = sum(choice.source == "measured" for choice in choices)
    reason = f"median of {len(choices)} of {count} frames, {measured} measured"
    if not measured:  # why none was: the commonest reason
        reasons = [c.reason for c in choices]
        reason = f"{max(set(reasons), key=reasons.count)} ({len(choices)} of {count} frames)"
    choice = NoiseChoice(float(np.median([c.value for c in choices])), _NETWORK_UNITS[kind],
                         "measured" if measured else "nominal", reason)  # fmt: skip
    if _far_above_hmi(choice, runner.noise_unit):
        check_noise_level(choice, nominal=runner.noise_unit)
    else:  # a median within bounds can hide a frame that is not (binned, or from another instrument)
        loud = [(index, c.value / runner.noise_unit) for index, c in zip(indices, choices, strict=True)
                if _far_above_hmi(c, runner.noise_unit)]  # fmt: skip
        if loud:
            named = ", ".join(f"{index} ({ratio:.3g} x)" for index, ratio in loud)
            msg = (f"noise measured at more than {NOISE_WARN_RATIO:g} x HMI's nominal noise on frame(s) {named} of "
                   f"the {count}: binned, or not at HMI's 0.504 arcsec per pixel? Every frame is told the "
                   f"sequence's level, {choice.value / runner.noise_unit:.3g} x HMI's; pass noise= (--noise) to set "
                   "it")  # fmt: skip
            warnings.warn(msg, exceptions.NoiseLevelWarning, stacklevel=2)
    return choice


def _warn_unreliable(found, nominal) -> None:
    """An `~enhance.exceptions.EnhanceUserWarning` that the measured noise level cannot be believed, and why."""
    level = max(found.sigma, nominal) if np.isfinite(found.sigma) else nominal
    msg = (f"the noise level cannot be measured reliably on this image ({found.reason}): {level / nominal:.2f} x "
           "HMI's nominal noise assumed; pass noise= to set it")  # fmt: skip
    warnings.warn(msg, exceptions.EnhanceUserWarning, stacklevel=4)


def resolve_network(
    kind: str, *, model: str = "full", network: EnhanceNet | None = None, options: RunOptions | None = None
) -> EnhanceNet:
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
    options : `RunOptions`, optional
        How the network will run. Where they run a shipped 'full' or 'light' model on onnxruntime
        (``backend='onnx'``, or 'auto' in float32 on a machine without a GPU), its runner is built from the
        weights with numpy (the graph PyTorch's export gives, bit for bit) and PyTorch is not imported.

    Returns
    -------
    torch.nn.Module or `~enhance.runtime.export.OnnxNetwork`
        The network: for a shipped model a `~enhance.models.hybrid.WienerEnhanceNet` ('full', 'light')
        or `~enhance.models.network.EnhanceNet` ('paper', 'paper-light'), or their ONNX runners without
        PyTorch (or with ``options`` that run them there).

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
        return check_network(network)
    check_choice(model, tuple(MODELS), name="model")
    entry = registry_entry(kind, model)  # ModelNotTrainedError for a model this version does not ship
    onnx = (options is not None and _runs_on_onnx(model, options)) or import_torch() is None
    network = _shipped_network(kind, model, str(shipped_path(kind, model)), entry.sha256, onnx=onnx)
    network.registry_key = (kind, model, entry.sha256)  # which uncertainty calibration is its own
    return network


#: The shipped models whose onnxruntime graph numpy builds bit for bit as PyTorch's export does (they have
#: no BatchNorm to fold): run on onnxruntime, they are built from their weights without PyTorch.
_BUILT_WITHOUT_TORCH = frozenset(name for name, spec in MODELS.items() if spec.family == WIENER_ENHANCE)
#: Files that exist on Linux where a GPU driver that PyTorch can use is loaded (NVIDIA, WSL, AMD's ROCm).
_GPU_DRIVER_FILES = ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/dxg", "/dev/kfd")


def _gpu_possible() -> bool:
    """Whether PyTorch may find a GPU for ``device='auto'``, answered without importing it: not where it is
    not installed, nor on Linux without a GPU driver, nor on macOS; elsewhere PyTorch has to be asked."""
    if importlib.util.find_spec("torch") is None:
        return False
    if sys.platform.startswith("linux"):
        return any(Path(name).exists() for name in _GPU_DRIVER_FILES)
    return sys.platform != "darwin"


def _runs_on_onnx(model: str, options: RunOptions) -> bool:
    """Whether ``options`` run the shipped ``model`` on onnxruntime (the choice of `auto_backend`), for the
    models that are then built without PyTorch."""
    if model not in _BUILT_WITHOUT_TORCH or options.precision != "float32":
        return False
    if options.backend == "onnx":
        return True
    return options.backend == "auto" and onnx_installed() and (
        options.device == "cpu" or (options.device == "auto" and not _gpu_possible()))  # fmt: skip


@functools.lru_cache(maxsize=16)
def _shipped_network(kind: str, model: str, path: str, sha256: str, *, onnx: bool = False) -> EnhanceNet:
    """The shipped ``model`` for ``kind``, read once per process for each registered file and shared.

    Every `enhance` call with ``model=`` then reuses the runner prepared for it (the onnxruntime
    session or `InferenceNet`) instead of reading the weights and exporting the graph again. The key
    holds the file and its registered checksum, so a changed registry loads the new weights. With ``onnx``
    (or without PyTorch) the model is an onnxruntime runner built from the weights with numpy.
    """
    if onnx:
        return shipped_onnx_network(kind, model)
    from ..models.pretrained import FACTORIES

    return FACTORIES[model](kind, weights="default").eval().requires_grad_(False)


def _resolve_device(device, network):
    """`~enhance.runtime.graph.resolve_device` with PyTorch; without it the CPU, where onnxruntime runs.

    A network that is not a PyTorch module runs on the CPU: 'auto' and 'cpu' then need no PyTorch."""
    if device in ("auto", "cpu") and not runs_on_torch(network):
        return "cpu"
    if import_torch() is not None:
        from ..runtime.graph import resolve_device

        return resolve_device(device)
    if device not in ("auto", "cpu"):
        msg = f"device={device!r} needs PyTorch (pip install 'solar-enhance[torch]'); without it, enhance uses the CPU"
        raise ValueError(msg)
    return "cpu"


def enhance_array(image, *, kind: str, network, options: RunOptions = RunOptions(), return_assumptions: bool = False,
                  header=None):  # fmt: skip
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
        Normalisation, device, tiling, back-end, precision, progress, noise level (a `NoiseChoice` is
        used as it is: the level decided for a whole sequence by `sequence_noise`).
    return_assumptions : bool
        Also return what the enhancement assumed (`Assumptions`).
    header : `~astropy.io.fits.Header` or dict-like, optional
        The image's header: with ``options.noise_map``, places a magnetogram on the disk for its noise.

    Returns
    -------
    (2 ny, 2 nx) `~numpy.ndarray`
        The enhanced image in the units of ``image``, NaN where the input was not finite.
    `Assumptions`
        With ``return_assumptions``: the noise level told the network and the quiet-Sun normalisation.

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
    made_for = as_runner(network).kind  # an ONNX network records the kind it was trained on
    if made_for is not None and made_for != kind:
        msg = f"the network was made for {made_for} data, but the image is {kind}"
        raise ValueError(msg)
    if min(data.shape) < 2:
        msg = f"image must be at least 2 x 2 pixels (reflection padding), got shape {data.shape}"
        raise ValueError(msg)
    out_dtype = data.dtype
    normalised, scale, finite = _normalise(data, kind, qs_level)
    normalised, outliers = replace_outliers(normalised, finite)  # a PSF-blurred image has none; each would ring
    if outliers:
        warnings.warn(f"{outliers} isolated pixel(s) stood far from all their neighbours (hot pixels, cosmic rays: "
                      "an image blurred by the PSF has none) and were replaced by the median of their 3 x 3 "
                      "neighbourhood, around which the enhancement would ring", exceptions.EnhanceUserWarning,
                      stacklevel=3)  # fmt: skip

    if tile is None and data.size > AUTO_TILE_PIXELS:
        tile = AUTO_TILE
    tile = check_tile(tile, margin=network_margin(network))  # warns below the network's reach
    device = _resolve_device(device, network)
    runner, workers = make_runner(network, backend=backend, precision=precision, device=device)
    runner = runner.averaged() if options.symmetric else runner  # a 'full' model averages itself already
    if options.uncertainty:  # refused before any pass for a network that has none
        filter_bank(runner)
    choice = _noise_for(runner, normalised, scale, finite, kind=kind, noise=options.noise, noise_map=options.noise_map)
    if choice is not None:
        clamped = _warn_clamped(choice.value, runner, given=choice.source == "given")
        if clamped:  # the header says at what level the network ran, as well as what it was told
            choice = dataclasses.replace(choice, reason="; ".join(part for part in (clamped, choice.reason) if part))
        unbound, runner = runner, runner.bind(choice.value)
    logger.debug("runner %r on %s, %d worker(s), tile %s", runner, device, workers, tile)

    # Off-limb pixels (NaN in, NaN out) need no network pass, except where the uncertainty filters the whole x2 grid
    # or the network's reach is a guess (a module of your own that states neither margin nor depth).
    needed = None if finite.all() or options.uncertainty or not _reach_known(network) else finite

    def run(array, net=runner, needed=None):
        return run_tiled(array, net, tile=tile, margin=runner.margin, device=device, progress=options.progress,
                         precision=precision, workers=workers, needed=needed)  # fmt: skip

    source = normalised.astype(np.float32, copy=False)
    nmap = None
    if options.noise_map and choice is not None:  # a level per pixel: one or two passes, blended
        nmap = noise_map(normalised, choice, kind=kind, header=header, finite=finite)
    result = (run(source, needed=needed) if nmap is None
              else run_with_noise_map(lambda net: run(source, net, needed), unbound, nmap))  # fmt: skip
    outputs = [result.astype(out_dtype, copy=False)]  # float32 already for float32 input: no copy
    calibrated = None
    if options.uncertainty:
        calibration = resolve_calibration(runner)
        calibrated = calibration_label(runner, calibration)
        sigma = output_uncertainty(source, result, runner=runner, run=run, calibration=calibration,
                                   noise_map=None if nmap is None else nmap.levels,
                                   space=off_disk(source, finite, kind=kind))  # fmt: skip
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
            array[on_output_grid(~finite)] = np.nan
    out = result if len(outputs) == 1 else tuple(outputs)
    if return_assumptions:
        given = "given" if qs_level is not None and not isinstance(qs_level, str) else "estimated"
        return out, Assumptions(kind, choice, scale if kind == "intensity" else None, given, nmap, calibrated, outliers)
    return out


def _noise_for(runner, normalised, scale, finite, *, kind, noise, noise_map=False) -> NoiseChoice | None:
    """The noise level a runner told the noise level gets (`noise_choice`; a `NoiseChoice` is used as it is: the
    level of a whole sequence); None for the others, which refuse a given ``noise`` and a ``noise_map``."""
    for asked, what in ((noise is not None, "noise="), (noise_map, "noise_map=True (--noise-map)")):
        if asked and not runner.needs_noise:
            msg = (f"{what} is for the networks told the noise level ('full', 'light'); {runner!r} was trained at "
                   "HMI's noise only")  # fmt: skip
            raise ValueError(msg)
    if isinstance(noise, NoiseChoice):  # decided for a whole sequence (`sequence_noise`)
        return noise
    if not runner.needs_noise:
        return None
    return noise_choice(normalised, noise=noise, scale=scale, nominal=runner.noise_unit, finite=finite,
                        unit=_NETWORK_UNITS[kind])  # fmt: skip


def _normalise(data, kind, qs_level):
    """``(normalised, scale, finite)``: the image in the network's units (missing pixels filled), what it
    was divided by (a quiet-Sun level or surface, or 1000 G) and where it held data."""
    finite = np.isfinite(data)
    if not finite.any():
        msg = "image has no finite pixels"
        raise ValueError(msg)
    if kind == "blos" and qs_level is not None:
        raise exceptions.IncompatibleOptionsError(QS_LEVEL_IS_CONTINUUM)
    try:
        scale = qs_normalisation(data, qs_level) if kind == "intensity" else GAUSS_PER_KG
    except ValueError:
        check_values(data, kind, force=False, forceable=False)  # a magnetogram given as intensity: say so
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
    return normalised, scale, finite


#: The refusal of a quiet-Sun level for a magnetogram, which is scaled by 1 kG and has no quiet-Sun level.
QS_LEVEL_IS_CONTINUUM = ("qs_level (--qs-level) is for continuum images; a magnetogram is scaled by 1 kG, not by a "
                         "quiet-Sun level: leave it out")  # fmt: skip


def _warn_clamped(sigma, runner, *, given):
    """Warn (`~enhance.exceptions.EnhanceUserWarning`) when the noise level lies outside the filter bank's nodes:
    the network then runs at the nearest node, not at ``sigma``; what the header's reason says of it, or ''."""
    nodes = runner.noise_nodes
    if not nodes:
        return ""
    ratio = sigma / runner.noise_unit
    low, high = min(nodes), max(nodes)
    if low * (1 - 1e-6) <= ratio <= high * (1 + 1e-6):
        return ""

    what = "noise given" if given else "noise measured on the image"
    bound = low if ratio < low else high
    msg = (f"{what} is {ratio:.3g} x HMI's, outside the {low:g}-{high:g} x the network was trained for: it runs at "
           f"{bound:g} x HMI's noise (pass noise= in the image's units, gauss for a magnetogram)")  # fmt: skip
    warnings.warn(msg, exceptions.EnhanceUserWarning, stacklevel=4)
    return f"run at {bound:g} x HMI's, the network's limit"


def network_margin(network) -> int:
    """The receptive margin of ``network``, input pixels on each side: its ``margin``, or that of its ``depth``.

    Parameters
    ----------
    network : torch.nn.Module or `~enhance.models.runner.Runner`
        The network; a module of your own that states neither ``margin`` nor ``depth`` is given 32 pixels.

    Returns
    -------
    int
        How many input pixels on each side of a pixel its output depends on (its runner's ``margin``).

    Examples
    --------
    >>> from enhance.models.network import EnhanceNet
    >>> network_margin(EnhanceNet(depth=5, width=8))
    13
    """
    return as_runner(network).margin


def _reach_known(network) -> bool:
    """Whether the margin of ``network`` is its own (this package's networks and runners, or a module that states its
    ``margin`` or ``depth``) rather than `~enhance.runtime.runners.DEFAULT_MARGIN`'s guess."""
    return not runs_on_torch(network) or stated_margin(network) is not None


def _clip_negative(result, data):
    """Continuum output set to 0 where it is negative and its input pixel is not (in place).

    A continuum intensity cannot be negative; the network's ringing can make it so next to sharp dark
    edges (the limb, umbrae). Only those pixels change."""
    found = np.flatnonzero(result < 0)  # flat indices: numpy's 2-D nonzero takes 15 times as long
    if found.size:  # judged at those pixels only: each output pixel's input pixel is (row // 2, col // 2)
        rows, cols = np.divmod(found, result.shape[1])
        with np.errstate(invalid="ignore"):
            allowed = np.asarray(data)[rows // 2, cols // 2] >= 0
        result[rows[allowed], cols[allowed]] = 0


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
#: No solar magnetogram in gauss has 1 % of its pixels beyond this (umbrae reach about 4000 G; a few hot pixels may).
_MAX_GAUSS_TYPICAL = 1e4
#: Pixels of the sample whose 99th percentile of |value| is compared with `_MAX_GAUSS_TYPICAL`.
_GAUSS_SAMPLE = 2**16


def check_values(data, kind, *, force, name="image", forceable=True):
    """Refuse values that do not fit ``kind``: a magnetogram given as intensity, a field not in gauss.

    Parameters
    ----------
    data : array_like
        The image's values (non-finite pixels are ignored); a sequence ``(time, ny, nx)`` is checked frame by frame.
    kind : {'intensity', 'blos'}
        What they are given as: continuum (any units, not negative) or magnetogram (gauss).
    force : bool
        Check nothing.
    name : str
        What the image is, for the message.
    forceable : bool
        Whether the message may suggest ``force=True``.

    Raises
    ------
    TypeError
        When the values are not real numbers (booleans, strings, objects, complex), whatever ``force``.
    ValueError
        When more than 1 % of a continuum image's finite pixels are negative, or a magnetogram's largest
        ``|value|`` is under 5 G (tesla or kilogauss, not gauss) or 1 % of its pixels lie beyond 10 000 G (no
        solar field does: another unit, or a continuum image).

    Examples
    --------
    >>> check_values([[0.9, 1.1], [1.0, 1.05]], "intensity", force=False)
    >>> check_values([[-0.2, 0.1], [0.3, -0.05]], "blos", force=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: image is given as a magnetogram in gauss, but its largest |value| is 0.3: it looks like tesla ...
    """
    values = np.asarray(data)
    if values.dtype.kind == "b":  # True/False: a mask, not an image of the Sun
        msg = f"{name} is boolean (a mask?), not an image: pass image.astype(float) to enhance it as numbers"
        raise TypeError(msg)
    if values.dtype.kind not in "iuf":  # strings, objects, complex: no value to check, and none to enhance
        msg = f"{name} must hold real numbers (integer or floating point), got dtype {values.dtype}"
        raise TypeError(msg)
    if force:
        return
    if values.ndim == 3 and len(values) > 1:  # a sequence: a continuum frame among magnetograms is still refused
        for index, frame in enumerate(values):
            check_values(frame, kind, force=force, name=f"frame {index} of {name}", forceable=forceable)
        return
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
               "or force=True (--force) if the values really are in gauss")  # fmt: skip
        raise ValueError(msg)
    if kind == "blos":
        sample = np.abs(finite[:: max(1, finite.size // _GAUSS_SAMPLE)])
        typical = float(np.partition(sample, int(0.99 * (sample.size - 1)))[int(0.99 * (sample.size - 1))])
        if typical > _MAX_GAUSS_TYPICAL:
            msg = (f"{name} is given as a magnetogram in gauss, but 1 % of its pixels lie beyond {typical:.3g} G, "
                   f"where no solar field does (umbrae reach about 4000 G): is it in another unit, or a continuum "
                   "image (kind='intensity', -t intensity)? "
                   + ("Pass force=True (--force) if the values really are in gauss" if forceable else ""))  # fmt: skip
            raise ValueError(msg.strip())
