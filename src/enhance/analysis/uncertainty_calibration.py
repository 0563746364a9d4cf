"""Fit and check the calibration of the per-pixel uncertainty (``enhance calibrate-uncertainty``).

The uncertainty of `~enhance.inference.uncertainty` is :math:`\\sigma^2 = \\sum_k c_k f_k^2` with
:math:`\\ln c_k = a_k + b_k \\ln(s / s_0)`. `calibrate_uncertainty` fits ``a`` and ``b`` by maximum
likelihood (Gaussian errors, each region and noise level weighted alike) on held-out fields, and
reports the coverage (the fraction of pixels with ``|error| < sigma`` and ``< 2 sigma``) on other
held-out fields, by region and noise level:

- synthetic scenes (`~enhance.scenes.synth.generate_scene`, whose labels give umbra and penumbra; plage
  and quiet Sun come from the field's strength) of seeds that are neither the training seeds nor the
  validation's `~enhance.training.datasets.HELD_OUT_SEED`: `FIT_SEEDS` for the fit, `REPORT_SEEDS` for
  the report;
- a limb of each of the first two seeds: granulation (continuum) or a plage field seen at ``mu`` (magnetogram,
  ``B mu``) under limb darkening, the sky beyond as zeros (as `~enhance.analysis.validate` builds its limb
  field), and once more with the sky missing (NaN, as HMI writes it; filled as `~enhance.enhance` fills it,
  and its output left out); "limb" and "limb, NaN sky" are the output pixels on the disk within `LIMB_WIDTH`
  of the limb, "off limb" those beyond it (zeros);
- for continuum, a simulation field's rows (`~enhance.training.datasets.split_rows`): the first 75 % for
  the fit, the held-out last 25 % for the report.

Every field is degraded by `~enhance.training.datasets.degrade_frame` and gets Gaussian noise at 0.5,
1, 3 and 10 times HMI's (`NOISE_FACTORS`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import astropy.units as u
import numpy as np
from scipy import ndimage, optimize

from .._version import __version__
from ..checks import check_choice, fill_nonfinite
from ..constants import HMI_NOISE, KINDS, TARGET_PIXEL_SCALE
from ..data import data_dir
from ..grid import on_output_grid
from ..inference.pipeline import make_runner, resolve_network
from ..inference.tiling import run_tiled
from ..inference.uncertainty import (
    CALIBRATION_FILE,
    FEATURES,
    Calibration,
    filter_bank,
    load_calibration,
    off_disk,
    uncertainty_features,
)
from ..io import atomic_write
from ..models.registry import registry_entry
from ..observation.degrade import bin_area
from ..scenes.sources import open_source
from ..scenes.synth import LABELS, MURAM_PIXEL_SCALE, generate_scene
from ..training.datasets import HELD_OUT_SEED, SCALE, degrade_frame, split_rows

__all__ = [
    "network_features",
    "NOISE_FACTORS",
    "REGIONS",
    "COLUMNS",
    "FIT_SEEDS",
    "REPORT_SEEDS",
    "LIMB_WIDTH",
    "GAUSSIAN_COVERAGE",
    "LARGEST_SIGMA",
    "IMAGE_EDGE",
    "CalibrationConfig",
    "Field",
    "held_out_fields",
    "collect",
    "fit_calibration",
    "coverage",
    "calibrate_uncertainty",
    "write_calibration",
    "coverage_markdown",
]

#: Noise levels, in units of HMI's noise.
NOISE_FACTORS = (0.5, 1.0, 3.0, 10.0)
#: Regions whose coverage is reported (each pixel in at most one; pores, light bridges and pixels
#: between quiet Sun and plage count only in "all"): near the limb, the disk's pixels with the sky as zeros
#: ("limb") or missing ("limb, NaN sky"), and the sky's ("off limb").
REGIONS = ("quiet Sun", "plage", "penumbra", "umbra", "limb", "limb, NaN sky", "off limb")
#: The row of `coverage` that holds each noise level's pixels of largest sigma (the top 1 %, whatever their
#: region): where sigma is largest (sunspots' edges, strong flux) a fit can be several times off while every
#: region's coverage, of which those pixels are a small share, looks right.
LARGEST_SIGMA = "largest 1 % of sigma"
_LARGEST_SHARE = 0.01
#: The row of `coverage` that holds the output pixels of each field's outermost input pixels (``edge`` of at least
#: 0.2, whatever their region): a cut-out's border, enhanced without the light the PSF brought from beyond.
IMAGE_EDGE = "image border"
_EDGE_ROW = 0.2
#: What `collect` keeps of each pixel, in the order of its ``features`` columns.
COLUMNS = (*FEATURES, "level", "space", "disk", "edge")
#: Seeds of the synthetic scenes the calibration is fitted on (not training's 11, not
#: `~enhance.training.datasets.HELD_OUT_SEED`).
FIT_SEEDS = (4101, 4102, 4103, 4104, 4105, 4106, 4107, 4108)
#: Seeds of the synthetic scenes the coverage is reported on.
REPORT_SEEDS = (5101, 5102, 5103, 5104, 5105, 5106, 5107, 5108)
#: Scene kinds, taken in turn for the seeds.
SCENE_KINDS = ("active_region", "plage", "quiet_sun", "active_region")
#: Output pixels within this distance of the limb form the "limb" regions (the disk's) and "off limb" (the sky's).
LIMB_WIDTH = 4.0 * u.arcsec
#: |B| (gauss) of the target, averaged over 1 arcsec, above which a pixel outside spots and pores is
#: plage, and below `QUIET_FIELD` quiet Sun.
PLAGE_FIELD = 150.0
QUIET_FIELD = 50.0
_TARGET_SCALE = float(TARGET_PIXEL_SCALE.to_value(u.arcsec))  # arcsec, the x2 grid


@dataclasses.dataclass(frozen=True)
class CalibrationConfig:
    """What `calibrate_uncertainty` fits on and reports on; the defaults run in minutes on a CPU.

    Parameters
    ----------
    shape : tuple of int
        Synthetic scenes, pixels at 0.0662 arcsec (800: 105 HMI pixels).
    fit_seeds, report_seeds : tuple of int
        Seeds of the scenes of the fit and of the report.
    scenes : tuple of str
        Scene kinds, in turn.
    noise_factors : tuple of float
        Noise levels, units of HMI's noise.
    simulation : str, optional
        A continuum simulation field (e.g. the MURaM quiet Sun at 0.0662 arcsec); its first 75 % of
        rows join the fit, its last 25 % the report.
    limb_shape : tuple of int
        The limb fields, pixels at 0.0662 arcsec.
    samples : int
        Quiet-Sun and unlabelled pixels drawn from each field and noise level for the fit (all pixels of
        the other regions are kept).

    Examples
    --------
    >>> config = CalibrationConfig(shape=(160, 160), fit_seeds=(7,), report_seeds=(8,))
    >>> config.noise_factors, config.samples
    ((0.5, 1.0, 3.0, 10.0), 20000)
    """

    shape: tuple = (800, 800)
    fit_seeds: tuple = FIT_SEEDS
    report_seeds: tuple = REPORT_SEEDS
    scenes: tuple = SCENE_KINDS
    noise_factors: tuple = NOISE_FACTORS
    simulation: str | None = None
    limb_shape: tuple = (600, 1000)
    samples: int = 20_000


@dataclasses.dataclass
class Field:
    """A held-out field: noise-free HMI-like image and target (I/Ic or gauss), and its regions on the x2 grid.

    Parameters
    ----------
    name : str
        What the field is, for the logs (e.g. ``'plage 4102'``).
    observed : (ny, nx) `~numpy.ndarray`
        The noise-free image at HMI's 0.504 arcsec, in the network's units (I/Ic, kG).
    target : (2 ny, 2 nx) `~numpy.ndarray`
        What the network should give, on the x2 grid (0.252 arcsec), same units.
    regions : dict of str to `~numpy.ndarray`
        ``(2 ny, 2 nx)`` bool masks by name of `REGIONS`; a pixel in none counts only in "all".
    missing : (ny, nx) bool `~numpy.ndarray`, optional
        Observed pixels that are missing (NaN: the sky, as HMI writes it): filled as `~enhance.enhance` fills
        them, and their output pixels left out.

    Examples
    --------
    >>> field = Field("flat", np.ones((12, 12)), np.ones((24, 24)), {"quiet Sun": np.ones((24, 24), bool)})
    >>> field.name, field.target.shape
    ('flat', (24, 24))
    """

    name: str
    observed: np.ndarray
    target: np.ndarray
    regions: dict
    missing: np.ndarray | None = None


def _on_target(mask, shape):
    """Area fraction of ``mask`` (at 0.0662 arcsec) in each target pixel."""
    factor = _TARGET_SCALE / float(MURAM_PIXEL_SCALE.to_value(u.arcsec))
    return bin_area(mask.astype(np.float64), factor)[: shape[0], : shape[1]]


def _scene_field(kind, seed, scene_kind, shape) -> Field:
    scene = generate_scene(shape, kind=scene_kind, seed=seed)
    frame = scene.continuum if kind == "intensity" else scene.bz
    observed, target = degrade_frame(frame, MURAM_PIXEL_SCALE, kind=kind)
    _, field = degrade_frame(scene.bz, MURAM_PIXEL_SCALE, kind="blos")
    strength = ndimage.gaussian_filter(np.abs(field.astype(np.float64)) / SCALE["blos"], 1 / _TARGET_SCALE)
    fractions = {name: _on_target(scene.labels == value, target.shape) for name, value in LABELS.items()}
    calm = fractions["quiet_sun"] + fractions["magnetic_element"] > 0.5
    regions = {"umbra": fractions["umbra"] > 0.5, "penumbra": fractions["penumbra"] > 0.5,
               "plage": calm & (strength > PLAGE_FIELD), "quiet Sun": calm & (strength < QUIET_FIELD)}  # fmt: skip
    return Field(f"{scene_kind} {seed}", observed / SCALE[kind], target / SCALE[kind], regions)


def _limb_field(kind, seed, shape, *, sky="zero") -> Field:
    """Granulation (continuum) or a plage field times ``mu`` (magnetogram) under limb darkening, the sky beyond
    as zeros (``sky='zero'``) or missing (``'nan'``: every observed pixel whose centre lies beyond the limb)."""
    scene = generate_scene(shape, kind="quiet_sun" if kind == "intensity" else "plage", seed=seed)
    scale = float(MURAM_PIXEL_SCALE.to_value(u.arcsec))
    limb = int(0.6 * shape[1])
    inside = (limb - np.arange(shape[1])) * scale  # arcsec inside the limb
    radius = 960.0
    mu = np.sqrt(np.clip(1 - ((radius - inside) / radius) ** 2, 0, 1))
    if kind == "intensity":
        frame = scene.continuum / scene.continuum.mean() * np.where(inside > 0, 1 - 0.6 * (1 - mu), 0.0)[None, :]
    else:
        frame = scene.bz * np.where(inside > 0, mu, 0.0)[None, :]
    observed, target = degrade_frame(frame, MURAM_PIXEL_SCALE, kind=kind, boundary="reflect")
    distance = (np.arange(target.shape[1]) + 0.5) * _TARGET_SCALE - limb * scale  # arcsec beyond the limb
    near = np.abs(distance) < LIMB_WIDTH.to_value(u.arcsec)
    sides = (near & (distance < 0), near & (distance >= 0))
    disk, beyond = (np.broadcast_to(side[None, :], target.shape) for side in sides)
    if sky == "zero":
        return Field(f"limb {seed}", observed / SCALE[kind], target / SCALE[kind], {"limb": disk, "off limb": beyond})
    centres = (np.arange(observed.shape[1]) + 0.5) * 2 * _TARGET_SCALE
    missing = np.broadcast_to((centres > limb * scale)[None, :], observed.shape)
    return Field(f"limb {seed}, NaN sky", observed / SCALE[kind], target / SCALE[kind], {"limb, NaN sky": disk},
                 missing)  # fmt: skip


def _simulation_field(path, *, report) -> Field:
    field = open_source(path, kind="intensity", normalise="mean")
    rows = split_rows(field.frame(0))[1 if report else 0]
    observed, target = degrade_frame(rows, field.pixel_scale, kind="intensity")
    quiet = np.ones(target.shape, bool)
    return Field(f"{Path(path).name} ({'held-out' if report else 'first'} rows)", observed, target,
                 {"quiet Sun": quiet})  # fmt: skip


def held_out_fields(kind: str, config: CalibrationConfig, *, report: bool) -> list:
    """The fields of the fit (``report=False``) or of the report.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        Continuum or magnetogram.
    config : CalibrationConfig
        Sizes, seeds, the simulation file.
    report : bool
        The report's seeds and the simulation's held-out rows, or the fit's.

    Returns
    -------
    list of Field
        Scenes, four limb fields (two with a single seed: the sky as zeros, and missing), and the simulation's
        rows when given (continuum only).

    Examples
    --------
    >>> config = CalibrationConfig(shape=(160, 160), fit_seeds=(7,), limb_shape=(160, 200))
    >>> [f.name for f in held_out_fields("blos", config, report=False)]
    ['active_region 7', 'limb 7', 'limb 7, NaN sky']
    """
    check_choice(kind, KINDS, name="kind")
    seeds = config.report_seeds if report else config.fit_seeds
    if HELD_OUT_SEED in seeds or 11 in seeds:
        msg = f"seeds must differ from training's 11 and validation's {HELD_OUT_SEED}, got {seeds}"
        raise ValueError(msg)
    scenes = [config.scenes[i % len(config.scenes)] for i in range(len(seeds))]
    fields = [_scene_field(kind, seed, scene, config.shape) for seed, scene in zip(seeds, scenes, strict=True)]
    fields += [_limb_field(kind, seed, config.limb_shape, sky=sky) for seed in seeds[:2] for sky in ("zero", "nan")]
    if config.simulation is not None and kind == "intensity":
        fields.append(_simulation_field(config.simulation, report=report))
    return fields


#: The region code of output pixels left out (those of missing input pixels).
_LEFT_OUT = -2


def collect(network, fields, *, kind: str, noise_factors=NOISE_FACTORS, samples: int | None = None, seed: int = 0):
    """Features, errors, regions and noise levels of the network's output on ``fields``.

    Parameters
    ----------
    network : `~enhance.models.hybrid.WienerEnhanceNet` or its ONNX runner
        The model.
    fields : list of Field
        `held_out_fields`.
    kind : {'intensity', 'blos'}
        What the fields hold.
    noise_factors : tuple of float
        Noise levels, units of HMI's noise.
    samples : int, optional
        Quiet-Sun and unlabelled pixels drawn at random from each field and level (all of the other
        regions are kept); None keeps all.
    seed : int
        Seed of the noise and of the draw.

    Returns
    -------
    dict of `~numpy.ndarray`
        ``features`` (n, K + 4: `COLUMNS`, `~enhance.inference.uncertainty.FEATURES`, ``level``, ``space``,
        ``disk`` and ``edge``) and ``error`` (n) in network units (I/Ic, kG), ``region`` (n) (an index of
        `REGIONS`, -1 for none) and ``factor`` (n); the output pixels of a field's missing pixels are left out.

    Examples
    --------
    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> net = WienerEnhanceNet(depth=1, width=4, taps=5).eval()
    >>> field = Field("flat", np.ones((12, 12)), np.ones((24, 24)), {"quiet Sun": np.ones((24, 24), bool)})
    >>> data = collect(net, [field], kind="intensity", noise_factors=(1.0,))
    >>> data["features"].shape, data["error"].shape, set(data["region"].tolist())
    ((576, 11), (576,), {0})
    """
    rng = np.random.default_rng(seed)
    parts = {"features": [], "error": [], "region": [], "factor": []}
    for field in fields:
        codes = np.full(field.target.shape, -1, np.int8)
        for name, mask in field.regions.items():
            codes[mask] = REGIONS.index(name)
        finite = np.ones(field.observed.shape, bool) if field.missing is None else ~field.missing
        codes[~on_output_grid(finite)] = _LEFT_OUT  # NaN in the pipeline's output
        for factor in noise_factors:
            sigma = factor * HMI_NOISE[kind] * SCALE[kind]
            noisy = field.observed * SCALE[kind] + rng.normal(0.0, sigma, field.observed.shape)
            noisy = fill_nonfinite(np.where(finite, noisy, np.nan), finite)  # as the pipeline fills them
            space = off_disk(noisy, finite, kind=kind)
            result, features = network_features(noisy, network=network, noise=sigma, space=space)
            if kind == "intensity":  # the pipeline's clip: no negative continuum where the input is not
                allowed = on_output_grid(noisy >= 0)
                result = np.where((result < 0) & allowed, 0.0, result)
            error = result - field.target * SCALE[kind]
            take = np.flatnonzero(codes.ravel() != _LEFT_OUT) if samples is None else _draw(codes.ravel(), samples, rng)
            parts["features"].append(np.stack([features[name].ravel()[take] for name in COLUMNS], axis=1))
            parts["error"].append(error.ravel()[take])
            parts["region"].append(codes.ravel()[take])
            parts["factor"].append(np.full(parts["error"][-1].shape, factor))
    return {key: np.concatenate(value) for key, value in parts.items()}


def _draw(codes, samples, rng):
    """Every pixel of the small regions (plage, penumbra, umbra, the limb's), and ``samples`` of the others (none
    left out)."""
    rare = np.flatnonzero(codes > REGIONS.index("quiet Sun"))
    common = np.flatnonzero((codes == REGIONS.index("quiet Sun")) | (codes == -1))
    return np.concatenate([rare, rng.choice(common, min(samples, common.size), replace=False)])


def _cells(data):
    """The (region, noise level) cell of each pixel, as an index, and the number of cells."""
    keys = (data["region"].astype(np.int64) + 1) * 1000 + np.searchsorted(np.unique(data["factor"]), data["factor"])
    _, inverse = np.unique(keys, return_inverse=True)
    return inverse, int(inverse.max()) + 1


def _cell_weights(data):
    """Weights giving each (region, noise level) cell the same total weight."""
    inverse, count = _cells(data)
    weights = 1.0 / np.bincount(inverse, minlength=count)[inverse]
    return weights / weights.sum()


#: Coverage of a Gaussian within 1 and 2 standard deviations, what the fit aims at in every cell.
GAUSSIAN_COVERAGE = (0.6827, 0.9545)
#: Width of the smooth step that counts a pixel as covered, in units of sigma.
_STEP = 0.05


def _variance(theta, squares, level, shape):
    count = squares.shape[1]
    terms = np.exp(theta[:count] + theta[count : 2 * count] * level + (shape @ theta[2 * count :])[:, None]) * squares
    return terms, terms.sum(axis=1) + 1e-300


def _refine_coverage(theta, squares, level, shape, error2, data):
    """Adjust the likelihood fit so that every cell's coverage at 1 and 2 sigma is as near a Gaussian's as
    it can be: the errors' tails differ between regions, and the likelihood alone matches their variance.

    The image border's betas (the last two) keep their likelihood values: free, they lifted the regions' coverage
    through the few border pixels of each, as far as those pixels' sigma could grow (to 95-98 % within 1 sigma
    on the border of the magnetogram fit)."""
    inverse, count = _cells(data)
    sizes = np.bincount(inverse, minlength=count)

    def loss(params):
        terms, variance = _variance(params, squares, level, shape)
        ratio = np.sqrt(error2 / variance)
        total, d_log_variance = 0.0, np.zeros(len(ratio))
        for t, goal in zip((1.0, 2.0), GAUSSIAN_COVERAGE, strict=True):
            step = np.tanh((t - ratio) / (2 * _STEP))
            miss = np.bincount(inverse, weights=0.5 * (1 + step), minlength=count) / sizes - goal
            total += np.sum(miss**2)
            # d(covered)/d(ln variance) = 0.25 (1 - step**2) / STEP * ratio / 2
            d_log_variance += 2 * miss[inverse] / sizes[inverse] * 0.25 * (1 - step**2) / _STEP * ratio / 2
        share = terms / variance[:, None]
        gradient = [d_log_variance @ share, d_log_variance @ (share * level), d_log_variance @ shape]
        return total, np.concatenate(gradient)

    bounds = [(None, None)] * (len(theta) - 2) + [(float(value), float(value)) for value in theta[-2:]]
    return optimize.minimize(loss, theta, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000}).x


def fit_calibration(data) -> Calibration:
    """Maximum-likelihood ``a`` and ``b`` for Gaussian errors of standard deviation ``sigma``.

    Parameters
    ----------
    data : dict
        `collect`'s output.

    Returns
    -------
    Calibration
        The fitted coefficients.

    Notes
    -----
    ``sigma`` as `~enhance.inference.uncertainty.Calibration.sigma` computes it, its modulation by the output's
    level and by the shares of the sky and of the disk near the limb (``beta_1`` to ``beta_6``) included. Minimises
    :math:`\\sum_i w_i (\\ln\\sigma_i^2 + e_i^2 / \\sigma_i^2) / 2` with L-BFGS, the weights
    ``w`` equal for every region and noise level (`REGIONS`, and the unlabelled pixels); then moves the
    result (L-BFGS again), all but the image border's betas, to bring each region's and level's coverage
    within 1 and 2 sigma nearest to a Gaussian's (`GAUSSIAN_COVERAGE`), counted with a smooth step.

    Examples
    --------
    Errors whose standard deviation is the first feature (``linear_noise``):

    >>> rng = np.random.default_rng(0)
    >>> features = rng.uniform(0.5, 1.5, (2000, len(COLUMNS)))
    >>> features[:, COLUMNS.index("space") :] = 0.0  # no limb, no image border
    >>> data = {"features": features, "error": rng.normal(0.0, 1.0, 2000) * features[:, 0],
    ...         "region": np.zeros(2000, np.int8), "factor": np.ones(2000)}
    >>> calibration = fit_calibration(data)
    >>> abs(coverage(calibration, data)["all"]["1"]["within_1"] - 0.683) < 0.02  # 2000 pixels: 1 % spread
    True
    """
    count = len(FEATURES)
    squares = np.square(data["features"][:, :count].astype(np.float64))
    z = np.log(data["features"][:, count].astype(np.float64))
    # the shares of the sky, of the disk and beyond the image's border (`COLUMNS`)
    d, e, b = data["features"][:, count + 1 :].astype(np.float64).T
    shape = np.stack([z, z * z, d, d * d, e, e * e, b, b * b], axis=1)
    error2 = np.square(data["error"].astype(np.float64))
    level = np.log(data["factor"])[:, None]
    weights = _cell_weights(data)
    mean_error = float(np.sum(weights * error2))
    start = np.log(mean_error / count / np.maximum(np.sum(weights[:, None] * squares, axis=0), 1e-300))

    def loss(theta):
        terms, variance = _variance(theta, squares, level, shape)
        value = 0.5 * np.sum(weights * (np.log(variance) + error2 / variance))
        d_variance = 0.5 * weights * (1 / variance - error2 / variance**2)
        gradient = [d_variance @ terms, d_variance @ (terms * level), (d_variance * variance) @ shape]
        return value, np.concatenate(gradient)

    theta = np.concatenate([start, np.zeros(count + shape.shape[1])])
    fitted = optimize.minimize(loss, theta, jac=True, method="L-BFGS-B", options={"maxiter": 3000}).x
    fitted = _refine_coverage(fitted, squares, level, shape, error2, data)
    levels = data["features"][:, count].astype(np.float64)
    return Calibration(tuple(fitted[:count].tolist()), tuple(fitted[count : 2 * count].tolist()),
                       tuple(fitted[2 * count :].tolist()),
                       noise_range=(float(np.min(data["factor"])), float(np.max(data["factor"]))),
                       level_range=(float(levels.min()), float(levels.max())),
                       share_range=(float(d.max()), float(e.max()), float(b.max())))  # fmt: skip


def coverage(calibration: Calibration, data) -> dict:
    """Fractions of pixels with ``|error| < sigma`` and ``< 2 sigma``, by region and noise level.

    Parameters
    ----------
    calibration : Calibration
        The coefficients.
    data : dict
        `collect`'s output.

    Returns
    -------
    dict
        ``{region, 'all', LARGEST_SIGMA or IMAGE_EDGE: {factor (a string, '1' for 1 x HMI): {"within_1",
        "within_2", "pixels"}}}``; `LARGEST_SIGMA` holds the 1 % of each level's pixels with the largest sigma,
        `IMAGE_EDGE` the output pixels of the fields' outermost input pixels.

    Examples
    --------
    With `~enhance.inference.uncertainty.Calibration.uncalibrated`, ``sigma`` is ``linear_noise`` here (one):

    >>> features = np.zeros((4, len(COLUMNS)))
    >>> features[:, 0] = features[:, COLUMNS.index("level")] = 1.0
    >>> data = {"features": features, "error": np.array([0.5, -1.5, 2.5, 0.1]),
    ...         "region": np.zeros(4, np.int8), "factor": np.ones(4)}
    >>> coverage(Calibration.uncalibrated(), data)["quiet Sun"]
    {'1': {'within_1': 0.5, 'within_2': 0.75, 'pixels': 4}}
    """
    sigma = np.zeros(len(data["error"]))
    for factor in np.unique(data["factor"]):
        rows = data["factor"] == factor
        features = {name: data["features"][rows, k] for k, name in enumerate(COLUMNS)}
        sigma[rows] = calibration.sigma(features, noise_ratio=float(factor))
    ratio = np.abs(data["error"]) / np.maximum(sigma, 1e-300)
    largest = np.zeros(len(ratio), bool)
    for factor in np.unique(data["factor"]):
        rows = data["factor"] == factor
        largest |= rows & (sigma >= np.quantile(sigma[rows], 1 - _LARGEST_SHARE))
    table = {}
    across = {
        "all": np.ones(len(ratio), bool),
        LARGEST_SIGMA: largest,
        IMAGE_EDGE: data["features"][:, COLUMNS.index("edge")] >= _EDGE_ROW,
    }  # rows whatever the region
    for index, region in enumerate((*REGIONS, *across)):
        inside = across[region] if region in across else data["region"] == index
        rows = {}
        for factor in np.unique(data["factor"]):
            cell = ratio[inside & (data["factor"] == factor)]
            if cell.size:
                rows[f"{factor:g}"] = {"within_1": float(np.mean(cell < 1)), "within_2": float(np.mean(cell < 2)),
                                       "pixels": int(cell.size)}  # fmt: skip
        if rows:
            table[region] = rows
    return table


def calibrate_uncertainty(kind: str, model: str, config: CalibrationConfig | None = None, *, network=None,
                          log=None, keep_fit: bool = False, path=None) -> dict:  # fmt: skip
    """Fit the uncertainty's calibration of a model and report its coverage on other held-out fields.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        What the model enhances.
    model : {'full', 'light'}
        The shipped model (its weights' sha256 is recorded).
    config : CalibrationConfig, optional
        Fields and sizes.
    network : optional
        The network to calibrate instead of the shipped one (weights about to be shipped).
    log : callable, optional
        Called with a line of progress.
    keep_fit : bool
        Keep the fit of the shipped weights stored in ``path`` and measure its coverage again on the fields of
        ``config`` (after the fields or regions changed), refitting nothing; the entry says ``kept_fit``.
    path : str or `~pathlib.Path`, optional
        The calibration file of ``keep_fit``; defaults to the package's ``data/uncertainty.json``.

    Returns
    -------
    dict
        The calibration file's entry: ``sha256``, ``coefficients`` ({feature: {log_scale, slope}}),
        ``modulation``, ``noise_range``, ``level_range`` and ``share_range`` (what it was fitted on,
        `~enhance.inference.uncertainty.Calibration`), ``coverage``
        ({"fit": table, "report": table}, see `coverage`), ``config`` and ``version``.

    Examples
    --------
    A tiny untrained network on tiny fields (the real fit takes minutes):

    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> config = CalibrationConfig(shape=(120, 120), fit_seeds=(7,), report_seeds=(8,), noise_factors=(1.0,),
    ...                            limb_shape=(120, 160), samples=200)
    >>> net = WienerEnhanceNet(depth=1, width=4, taps=5).eval()
    >>> entry = calibrate_uncertainty("blos", "light", config, network=net)
    >>> sorted(entry)  # doctest: +NORMALIZE_WHITESPACE
    ['coefficients', 'config', 'coverage', 'level_range', 'modulation', 'noise_range', 'sha256', 'share_range',
     'version']
    >>> sorted(entry["coverage"]["report"])  # doctest: +NORMALIZE_WHITESPACE
    ['all', 'image border', 'largest 1 % of sigma', 'limb', 'limb, NaN sky', 'off limb', 'penumbra', 'plage',
     'umbra']
    """

    check_choice(model, ("full", "light"), name="model")
    config = CalibrationConfig() if config is None else config
    log = log or (lambda line: None)
    if keep_fit and network is not None:
        msg = "keep_fit measures the stored fit of the shipped weights: give no network"
        raise ValueError(msg)
    net = resolve_network(kind, model=model) if network is None else network
    tables, calibration = {}, None
    if keep_fit:
        calibration = load_calibration(kind, model, sha256=registry_entry(kind, model).sha256, path=path,
                                       missing="raise")  # fmt: skip
    for part in ("fit", "report"):
        fields = held_out_fields(kind, config, report=part == "report")
        log(f"{kind} {model}: {len(fields)} {part} fields")
        data = collect(net, fields, kind=kind, noise_factors=config.noise_factors,
                       samples=config.samples if part == "fit" else None, seed=1 if part == "fit" else 2)  # fmt: skip
        if calibration is None:
            calibration = fit_calibration(data)
        tables[part] = coverage(calibration, data)
        log(f"{kind} {model}: {part} coverage (all, 1x HMI) {tables[part]['all'].get('1')}")
    coefficients = {name: {"log_scale": a, "slope": b}
                    for name, a, b in zip(FEATURES, calibration.log_scale, calibration.slope, strict=True)}  # fmt: skip
    settings = {key: (list(value) if isinstance(value, tuple) else value)
                for key, value in dataclasses.asdict(config).items()}  # fmt: skip
    return {"sha256": registry_entry(kind, model).sha256, "coefficients": coefficients,
            "modulation": list(calibration.modulation), "noise_range": list(calibration.noise_range),
            "level_range": list(calibration.level_range), "share_range": list(calibration.share_range),
            "coverage": tables, **({"kept_fit": True} if keep_fit else {}),
            "config": settings, "version": __version__}  # fmt: skip


def write_calibration(entries: dict, path=None) -> Path:
    """Merge ``{"kind/model": entry}`` into the calibration file (atomically) and return its path.

    Parameters
    ----------
    entries : dict
        `calibrate_uncertainty`'s entries by ``kind/model``.
    path : str or `~pathlib.Path`, optional
        The file; defaults to the package's ``data/uncertainty.json``.

    Returns
    -------
    `~pathlib.Path`
        The file written.

    Examples
    --------
    >>> import json, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = write_calibration({"blos/light": {"sha256": "0" * 64}}, f"{folder}/uncertainty.json")
    >>> list(json.loads(path.read_text()))
    ['blos/light']
    """

    path = Path(path) if path is not None else data_dir() / CALIBRATION_FILE
    stored = json.loads(path.read_text()) if path.is_file() else {}
    stored.update(entries)
    text = json.dumps(stored, indent=1, sort_keys=True) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text), overwrite=True)


def coverage_markdown(entries: dict, *, part: str = "report") -> str:
    """A Markdown table of coverage by region and noise level, one row per model and region.

    Parameters
    ----------
    entries : dict
        ``{"kind/model": entry}`` (`calibrate_uncertainty`).
    part : {'report', 'fit'}
        Which fields.

    Returns
    -------
    str
        The table: ``within 1 sigma / within 2 sigma`` in per cent at each noise level, and the pixels.

    Examples
    --------
    >>> cell = {"within_1": 0.683, "within_2": 0.951, "pixels": 400}
    >>> print(coverage_markdown({"blos/light": {"coverage": {"report": {"all": {"1": cell}}}}}))
    | model | region | 1 x HMI | pixels per level |
    | --- | --- | --- | --- |
    | blos/light | all | 68 / 95 | 400 |
    """
    factors = sorted({f for entry in entries.values() for rows in entry["coverage"][part].values() for f in rows},
                     key=float)  # fmt: skip
    head = "| model | region | " + " | ".join(f"{f} x HMI" for f in factors) + " | pixels per level |"
    lines = [head, "|" + " --- |" * (len(factors) + 3)]
    for key, entry in entries.items():
        for region, rows in entry["coverage"][part].items():
            cells = [f"{100 * rows[f]['within_1']:.0f} / {100 * rows[f]['within_2']:.0f}" if f in rows else "-"
                     for f in factors]  # fmt: skip
            pixels = max(row["pixels"] for row in rows.values())
            lines.append(f"| {key} | {region} | " + " | ".join(cells) + f" | {pixels} |")
    return "\n".join(lines)


def network_features(normalised, *, network, noise: float, device: str = "cpu", space=None):
    """The network's output and its uncertainty features for a normalised image (what calibration fits).

    Parameters
    ----------
    normalised : (ny, nx) array_like
        Finite image in the network's units (I/Ic, kG).
    network : `~enhance.models.hybrid.WienerEnhanceNet` or its ONNX runner
        The network ('full' runs its 8 passes, 'light' one; the features take 8 or 4).
    noise : float
        Standard deviation of the input noise, network units.
    device : str
        Where PyTorch runs.
    space : (ny, nx) bool array_like, optional
        The input pixels beyond the limb (`~enhance.inference.uncertainty.off_disk`).

    Returns
    -------
    result : (2 ny, 2 nx) `~numpy.ndarray`
        The network's output (before the pipeline's clip of negative continuum).
    features : dict of str to `~numpy.ndarray`
        See `~enhance.inference.uncertainty.uncertainty_features`.

    Examples
    --------
    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> net = WienerEnhanceNet(depth=1, width=4, taps=5).eval()
    >>> result, features = network_features(np.ones((12, 12)), network=net, noise=1e-3)
    >>> result.shape, sorted(features) == sorted(COLUMNS)
    ((24, 24), True)
    """
    runner, workers = make_runner(network, backend="auto", precision="float32", device=device)
    bank = filter_bank(runner)
    bound = runner.bind(float(noise))

    def run(array, net=bound):
        return run_tiled(array, net, tile=None, margin=runner.margin, device=device, workers=workers)

    source = np.asarray(normalised, np.float32)
    result = run(source)
    passes = 8 if runner.symmetric else 4
    return result, uncertainty_features(source, result, runner=bound, run=run, filters=bank, passes=passes,
                                        space=space)  # fmt: skip
