"""Per-pixel uncertainty of the default models: the standard deviation of each output pixel's error.

`output_uncertainty` computes, on the x2 grid and in the network's units (I/Ic, kG), features that
each measure one source of error, and combines them with calibrated weights:

``linear_noise``
    the input noise propagated exactly through the linear (Wiener) stage: the noise times the root of
    the sum of the squared taps of the blended filter of each output phase;
``noise_response``
    the network's whole response to the noise, estimated: the change of the output when a draw of the noise
    (`equivariant_noise`, which moves with the image) is added to the input, squared and averaged locally:
    for 'full', the mean of its 8 passes on the image plus `PROBE_SCALE` of the draw less the result, over
    `PROBE_SCALE` (the first-order response); for 'light', its pass on the image plus the draw less its pass
    on the image;
``model_spread``
    the model's own spread: the standard deviation over the passes on rotated and flipped copies of the
    input (the 8 that 'full' averages, on the image plus `PROBE_SCALE` of the draw; 4 for 'light', on the
    image, 1/2 of 'full''s cost);
``psf_spread``
    the spread over plausible PSFs: the output filtered by ``H_v / H - 1`` for each PSF variant ``H_v``
    of `PSF_VARIANTS` (the Wachter et al. 2012 parameters, the far wing to 16 arcsec) against the one
    the model assumes ``H``, root mean square over the variants;
``gradient``
    local image structure: the output's gradient per output pixel;
``amplitude``
    the output's magnitude, and ``floor``, one.

The uncertainty is

.. math:: \\sigma^2 = e^{\\beta_1 z + \\beta_2 z^2 + \\beta_3 d + \\beta_4 d^2 + \\beta_5 e + \\beta_6 e^2}
    \\sum_k c_k f_k^2,
    \\qquad \\ln c_k = a_k + b_k \\ln(s / s_0),

for the noise level ``s`` told the network and HMI's noise ``s_0``, where ``z`` is the log of the local
level of the output (``level``: its magnitude averaged over `LEVEL_SMOOTHING`, plus `LEVEL_FLOOR`),
which tells umbrae, penumbrae, plage and quiet Sun apart; ``d`` (``space``), for a pixel on the disk, the
share of pixels beyond the limb (`off_disk`: missing, or a continuum darker than `OFF_DISK_LEVEL`) averaged
over `SPACE_SMOOTHING` (0 beyond the limb), and ``e`` (``disk``), for a pixel beyond the limb, the share of
the disk's pixels (0 on the disk): the PSF spreads the limb's edge over the last arcseconds on either side,
where the errors are several times those of the same level elsewhere. ``a``, ``b`` and ``beta`` are fitted for each
shipped model on held-out scenes (`~enhance.analysis.uncertainty_calibration`, ``enhance
calibrate-uncertainty``) and kept in ``data/uncertainty.json`` with the sha256 of the weights they
belong to. Variances are averaged over a Gaussian of `SMOOTHING` output pixels.

The draw moves with the image, so the uncertainty keeps the models' symmetries: for 'full' a rotated or
flipped image gets the rotated or flipped uncertainty, and for the magnetogram models (odd in the field)
``-B`` gets the uncertainty of ``B``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings
from pathlib import Path

import numpy as np
import scipy  # scipy.fft and scipy.ndimage load when first used

from .. import exceptions
from ..checks import check_choice
from ..constants import TARGET_PIXEL_SCALE
from ..data import data_dir
from ..grid import on_output_grid
from ..models.runner import DIHEDRAL, dihedral_inverse, dihedral_transform
from ..observation.fourier import transfer_function
from ..observation.psf import DEFAULT_RADIUS, ENHANCE_2018, WACHTER_2012, WIDE_RADIUS, psf_kernel

__all__ = [
    "FEATURES",
    "PSF_VARIANTS",
    "SMOOTHING",
    "LEVEL_SMOOTHING",
    "LEVEL_FLOOR",
    "SPACE_SMOOTHING",
    "OFF_DISK_LEVEL",
    "OFF_DISK_AREA",
    "off_disk",
    "NOISE_SEED",
    "PROBE_SCALE",
    "equivariant_noise",
    "CALIBRATION_FILE",
    "Calibration",
    "node_weights",
    "propagated_noise",
    "filter_bank",
    "uncertainty_features",
    "load_calibration",
    "edge_share",
    "EDGE_WIDTH",
    "resolve_calibration",
    "calibration_label",
    "output_uncertainty",
]

#: Features of the uncertainty model, in the order of the calibration's coefficients.
FEATURES = ("linear_noise", "noise_response", "model_spread", "psf_spread", "gradient", "amplitude", "floor")
#: Plausible departures from the HMI PSF the models assume (`~enhance.observation.psf.ENHANCE_2018`, 4.37").
PSF_VARIANTS = {"Wachter et al. 2012": {"params": WACHTER_2012, "radius": DEFAULT_RADIUS},
                'far wing to 16"': {"params": ENHANCE_2018, "radius": WIDE_RADIUS}}  # fmt: skip
#: Standard deviation (output pixels) of the Gaussian that averages the squared features locally.
SMOOTHING = 1.5
#: Standard deviation (output pixels) of the Gaussian that averages the output's magnitude into ``level``.
LEVEL_SMOOTHING = 4.0
#: Added to ``level`` before its log, network units (I/Ic, kG).
LEVEL_FLOOR = 0.05
#: Standard deviation (output pixels, 4 arcsec) of the Gaussian that averages the pixels beyond the limb into
#: ``space``: the reach of the limb's errors.
SPACE_SMOOTHING = 16.0
#: A continuum darker than this (I/Ic) lies beyond the limb (`off_disk`), where it fills a region of at least
#: `OFF_DISK_AREA` pixels: umbrae stay above 0.2 in HMI's continuum, and a zero-filled sky below it at up to 10
#: times HMI's noise (5 standard deviations).
OFF_DISK_LEVEL = 0.05
#: Input pixels (at 0.504 arcsec, about a disk of 4 arcsec radius) a dark region must fill to count as sky: a dark or
#: zero-filled pixel, or a small patch, inside the disk is not the limb.
OFF_DISK_AREA = 200
#: Standard deviation (input pixels) of the Gaussian whose share beyond the image's border is ``edge``: a cut-out's
#: outermost pixels are enhanced without the light that the PSF brought them from beyond it.
EDGE_WIDTH = 1.0
#: Seed of the noise draw of the ``noise_response`` feature (`equivariant_noise`): the same image gets the same
#: uncertainty.
NOISE_SEED = 25_001
#: The fraction of the noise draw that 'full''s passes see (`uncertainty_features`): small enough that the passes'
#: spread on a flat region is the model's, not their different responses to the draw; large enough that the
#: response stands far above float32 rounding (1e-4 of a quiet-Sun level at HMI's noise against 6e-8).
PROBE_SCALE = 0.1
#: The calibrations of the shipped models, in the package's data folder.
CALIBRATION_FILE = "uncertainty.json"
#: Elements of D4 ``(transpose, quarter turns)`` of each number of passes: all, or the half-turns and transposes.
_PASSES = {8: DIHEDRAL, 4: tuple(element for element in DIHEDRAL if element[1] % 2 == 0)}
#: Regularisation of the PSF ratio where the assumed transfer function is small (beyond HMI's cut-off).
_OTF_FLOOR = 1e-2
#: The features whose quadratic in ``z`` (the log of ``level``), ``d``, ``e`` and ``b`` modulates the variance, in
#: the order of `Calibration.modulation`'s pairs.
_MODULATED = ("level", "space", "disk", "edge")


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Weights of the uncertainty's features: ``ln c_k = log_scale[k] + slope[k] ln(noise / noise_unit)``.

    Parameters
    ----------
    log_scale, slope : tuple of float
        One per feature of `FEATURES`.
    modulation : tuple of float
        ``(beta_1, beta_2)``, or up to ``(beta_1, ..., beta_8)``: the variance is multiplied by
        ``exp(beta_1 z + beta_2 z**2 + beta_3 d + beta_4 d**2 + beta_5 e + beta_6 e**2 + beta_7 b + beta_8 b**2)``,
        ``z`` the log of the feature ``level``, ``d``, ``e`` and ``b`` the features ``space``, ``disk`` and
        ``edge`` (0 where not given, as the missing betas).
    sha256 : str, optional
        The weights file it was fitted for.
    noise_range : tuple of float
        The noise levels it was fitted at, in units of HMI's noise: a level outside is taken as the nearest
        end (the weights are not extrapolated: a slope fitted between 0.5 and 10 times could blow up at 32).
    level_range : tuple of float
        The ``level`` values it was fitted on; likewise the nearest end outside them.
    share_range : tuple of float
        The largest ``space``, ``disk`` and ``edge`` values it was fitted on (a straight limb gives about a
        half): larger ones are taken as these (a concave corner of a missing block, a thin strip of disk); 1
        where not given.

    Examples
    --------
    >>> cal = Calibration.uncalibrated()
    >>> features = {name: np.full((2, 2), 0.0) for name in (*FEATURES, "level")}
    >>> features["linear_noise"][:] = 3.0
    >>> float(cal.sigma(features, noise_ratio=1.0)[0, 0])
    3.0
    """

    log_scale: tuple
    slope: tuple
    modulation: tuple = (0.0, 0.0)
    sha256: str | None = None
    noise_range: tuple = (0.0, np.inf)
    level_range: tuple = (0.0, np.inf)
    share_range: tuple = (1.0, 1.0)

    @classmethod
    def uncalibrated(cls) -> Calibration:
        """Noise, model spread and PSF spread added in quadrature, with weight one: no fit.

        Returns
        -------
        Calibration
            ``log_scale`` 0 for ``linear_noise``, ``model_spread`` and ``psf_spread``, minus infinity
            (weight zero) for the other features; ``slope`` 0.

        Examples
        --------
        >>> Calibration.uncalibrated().coefficients(3.0).tolist()
        [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        """
        ones = {"linear_noise", "model_spread", "psf_spread"}
        return cls(tuple(0.0 if name in ones else -np.inf for name in FEATURES), (0.0,) * len(FEATURES))

    def coefficients(self, noise_ratio: float) -> np.ndarray:
        """``c_k`` for the noise level ``noise_ratio`` times HMI's.

        Parameters
        ----------
        noise_ratio : float
            The noise level told the network, in units of HMI's noise (``s / s_0``).

        Returns
        -------
        `~numpy.ndarray`
            ``(K,)``: the weight of each feature of `FEATURES`.

        Examples
        --------
        >>> Calibration((0.0,) * 7, (1.0,) * 7).coefficients(2.0).tolist()
        [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
        >>> Calibration((0.0,) * 7, (1.0,) * 7, noise_range=(0.5, 1.5)).coefficients(2.0).tolist()[0]  # the end
        1.5
        """
        log_ratio = np.log(min(max(float(noise_ratio), self.noise_range[0]), self.noise_range[1]))
        return np.exp(np.asarray(self.log_scale) + np.asarray(self.slope) * log_ratio)

    def sigma(self, features: dict, *, noise_ratio: float) -> np.ndarray:
        """The standard deviation: the root of ``sum_k c_k f_k**2``.

        Parameters
        ----------
        features : dict of str to array_like
            Each feature of `FEATURES` (network units), and ``level``, ``space`` and ``disk`` where ``modulation``
            uses them.
        noise_ratio : float
            The noise level told the network, in units of HMI's noise.

        Returns
        -------
        `~numpy.ndarray`
            The standard deviation of each pixel's error, float64, network units.

        Examples
        --------
        >>> features = {name: np.zeros(2) for name in FEATURES}
        >>> features["linear_noise"][:], features["psf_spread"][:] = 3.0, 4.0
        >>> Calibration.uncalibrated().sigma(features, noise_ratio=1.0).tolist()
        [5.0, 5.0]
        """
        total = 0.0
        for weight, name in zip(self.coefficients(noise_ratio), FEATURES, strict=True):
            if weight > 0:
                total = total + weight * np.square(features[name], dtype=np.float64)
        beta = np.zeros(2 * len(_MODULATED))
        beta[: len(self.modulation)] = self.modulation
        for k, name in enumerate(_MODULATED):
            if name in features and beta[2 * k : 2 * k + 2].any():
                x = np.asarray(features[name], np.float64)
                if name != "level" and not x.any():  # no limb in the image: a factor of one
                    continue
                largest = self.share_range[k - 1] if k <= len(self.share_range) else 1.0
                bounds = self.level_range if name == "level" else (0.0, largest)
                x = np.clip(x, *bounds)
                x = np.log(x) if name == "level" else x
                total = total * np.exp(beta[2 * k] * x + beta[2 * k + 1] * x * x)
        return np.sqrt(total)


def node_weights(noise: float, nodes, unit: float) -> np.ndarray:
    """Weights of a Wiener-Enhance filter bank's levels for one noise level: hats in log noise.

    The numpy twin of `~enhance.models.hybrid.WienerEnhanceNet.node_weights`.

    Parameters
    ----------
    noise : float
        Standard deviation of the noise per input pixel, network units.
    nodes : sequence of float
        The bank's levels in units of ``unit``, a constant ratio apart.
    unit : float
        HMI's noise in network units.

    Returns
    -------
    `~numpy.ndarray`
        ``(K,)``, summing to one.

    Examples
    --------
    >>> node_weights(2e-3, [1.0, 2.0, 4.0], 1e-3).tolist()
    [0.0, 1.0, 0.0]
    """
    logs = np.log(np.asarray(nodes, np.float64))
    level = np.clip(np.log(float(noise) / float(unit)), logs[0], logs[-1])
    return np.maximum(1 - np.abs(level - logs) / (logs[1] - logs[0]), 0.0)


def propagated_noise(filters, weights, noise: float) -> np.ndarray:
    """Standard deviation of white input noise after the linear stage, per output phase (exact).

    Parameters
    ----------
    filters : array_like
        ``(4 K, 1, taps, taps)``: the filter bank (``filters`` of `~enhance.models.hybrid.WienerEnhanceNet`).
    weights : array_like
        ``(K,)`` weights of its levels (`node_weights`).
    noise : float
        Standard deviation of the input noise per pixel.

    Returns
    -------
    `~numpy.ndarray`
        ``(2, 2)``: phase ``(a, b)`` is output pixel ``(2 y + a, 2 x + b)``.

    Notes
    -----
    Each output pixel of phase ``p`` is :math:`\\sum_t h_{p,t}\\, x_t`, so independent noise of
    standard deviation :math:`s` on the inputs gives it :math:`s \\sqrt{\\sum_t h_{p,t}^2}`.

    Examples
    --------
    >>> bank = np.zeros((4, 1, 3, 3)); bank[:, 0, 1, 1] = 1.0; bank[:, 0, 0, 1] = 1.0
    >>> propagated_noise(bank, [1.0], 0.5).round(4).tolist()
    [[0.7071, 0.7071], [0.7071, 0.7071]]
    """
    weights = np.asarray(weights, np.float64)
    bank = np.asarray(filters, np.float64).reshape(len(weights), 4, -1)
    blended = np.tensordot(weights, bank, axes=1)
    return float(noise) * np.sqrt(np.square(blended).sum(axis=1)).reshape(2, 2)


def filter_bank(network):
    """The linear stage of a Wiener-Enhance network: ``(filters, noise_nodes, noise_unit)`` as numpy.

    Parameters
    ----------
    network : `~enhance.models.hybrid.WienerEnhanceNet` or `~enhance.models.runner.Runner`
        The network or its runner: its ``filter_bank`` (None for a runner without a linear stage).

    Returns
    -------
    tuple
        ``(4 K, 1, taps, taps)`` filters, the nodes and HMI's noise in network units.

    Raises
    ------
    ValueError
        For a network without a linear stage (the paper's networks).

    Examples
    --------
    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> filters, nodes, unit = filter_bank(WienerEnhanceNet(depth=1, width=4, taps=5))
    >>> filters.shape == (4 * len(nodes), 1, 5, 5), unit
    (True, 0.001)
    """
    bank = network.filter_bank
    if bank is None:
        msg = (f"uncertainty=True (--uncertainty) is for the models told the noise level ('full', 'light', a "
               "WienerEnhanceNet); "
               f"got {network!r}")  # fmt: skip
        raise ValueError(msg)
    return bank


def _smooth(variance):
    return scipy.ndimage.gaussian_filter(variance, SMOOTHING, mode="reflect")


@functools.lru_cache(maxsize=4)
def _psf_ratios(shape):
    """``H_v / H - 1`` (regularised) for each PSF variant, on the x2 grid's rfft2 of ``shape``."""
    scale = TARGET_PIXEL_SCALE

    def otf(params, radius):
        kernel = psf_kernel(scale, radius=radius, **params)
        return transfer_function(kernel, shape, np.float64)

    assumed = otf(ENHANCE_2018, DEFAULT_RADIUS)
    gain = np.conj(assumed) / (np.abs(assumed) ** 2 + _OTF_FLOOR**2)
    return tuple((otf(v["params"], v["radius"]) - assumed) * gain for v in PSF_VARIANTS.values())


def _psf_spread(result):
    """Root mean square over `PSF_VARIANTS` of the output filtered by ``H_v / H - 1``."""
    largest = max(int(round(float((WIDE_RADIUS / TARGET_PIXEL_SCALE).decompose()))), 1)

    def fast(n):  # a fast FFT length with as much padding on each side: a flipped image gets the flipped result
        size = scipy.fft.next_fast_len(n + 2 * largest, real=True)
        while (size - n) % 2:
            size = scipy.fft.next_fast_len(size + 1, real=True)
        return size

    shape = tuple(fast(n) for n in result.shape)
    pad = [((s - n) // 2, (s - n) // 2) for n, s in zip(result.shape, shape, strict=True)]
    spectrum = scipy.fft.rfft2(np.pad(result.astype(np.float64), pad, mode="symmetric"))
    total = np.zeros(result.shape)
    window = tuple(slice(before, before + n) for (before, _), n in zip(pad, result.shape, strict=True))
    for ratio in _psf_ratios(shape):
        total += np.square(scipy.fft.irfft2(spectrum * ratio, s=shape)[window])
    return total / len(PSF_VARIANTS)


def _mix(values):
    """The splitmix64 finaliser of uint64 ``values`` (a hash whose every output bit depends on every input bit)."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def equivariant_noise(image, *, seed: int = NOISE_SEED) -> np.ndarray:
    """A standard normal draw per pixel that moves with the image: rotating or flipping the image rotates or
    flips the draw, and negating it negates the draw.

    numpy's generators draw on the pixel grid, so the uncertainty of a rotated image would come from another
    draw; here each pixel's number is a hash (splitmix64) of its absolute value's float32 bits and of its
    position's orbit under the 8 rotations and flips about the image's centre (the two distances from the
    centre lines, smaller first), turned into a normal number (Box-Muller), times the value's sign.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, any unit.
    seed : int
        Selects the draw.

    Returns
    -------
    (ny, nx) `~numpy.ndarray`
        float64, mean 0 and standard deviation 1 over many pixels; white where the image's values differ from
        pixel to pixel (a region of one value that the image's centre lines cross gets a draw that is
        symmetric about them, as it must).

    Examples
    --------
    >>> image = np.random.default_rng(0).normal(size=(64, 48)).astype(np.float32)
    >>> draw = equivariant_noise(image)
    >>> bool(np.array_equal(equivariant_noise(np.rot90(image)), np.rot90(draw)))
    True
    >>> bool(np.array_equal(equivariant_noise(-image), -draw)), round(float(draw.std()), 1)
    (True, 1.0)
    """
    values = np.asarray(image, dtype=np.float32)
    ny, nx = values.shape
    rows = np.abs(2 * np.arange(ny, dtype=np.int64) - (ny - 1))[:, None]  # twice the distance from the centre
    cols = np.abs(2 * np.arange(nx, dtype=np.int64) - (nx - 1))[None, :]
    near, far = np.minimum(rows, cols).astype(np.uint64), np.maximum(rows, cols).astype(np.uint64)
    bits = np.abs(values).view(np.uint32).astype(np.uint64)
    key = _mix(bits ^ (near << np.uint64(32)) ^ np.uint64(seed))
    key = _mix(key ^ far ^ np.uint64(0x9E3779B97F4A7C15))
    other = _mix(key ^ np.uint64(0xD1B54A32D192ED03))
    scale = 2.0**-53
    first = ((key >> np.uint64(11)).astype(np.float64) + 0.5) * scale  # in (0, 1)
    second = (other >> np.uint64(11)).astype(np.float64) * scale
    return np.sqrt(-2.0 * np.log(first)) * np.cos(2.0 * np.pi * second) * np.copysign(1.0, values)


def off_disk(source, finite=None, *, kind: str) -> np.ndarray:
    """The input pixels beyond the limb: missing (NaN, as HMI writes them), or for a continuum image darker
    than `OFF_DISK_LEVEL` in a region of at least `OFF_DISK_AREA` pixels (a sky filled with zeros).

    Parameters
    ----------
    source : (ny, nx) array_like
        The normalised input (I/Ic, kG), missing pixels filled.
    finite : (ny, nx) bool array_like, optional
        Where the input held data; None: everywhere.
    kind : {'intensity', 'blos'}
        What the image is; a magnetogram's sky is told only by missing pixels (zero field is no sign of it).

    Returns
    -------
    (ny, nx) bool `~numpy.ndarray`
        True beyond the limb.

    Examples
    --------
    >>> image = np.ones((20, 30))
    >>> image[:, 20:] = 0.0  # 200 dark pixels: a sky filled with zeros
    >>> image[5, 5] = 0.0  # one dark pixel on the disk
    >>> sky = off_disk(image, kind="intensity")
    >>> int(sky.sum()), bool(sky[5, 5]), int(off_disk(image, kind="blos").sum())
    (200, False, 0)
    >>> off_disk(np.ones((1, 3)), np.array([[False, True, True]]), kind="blos").tolist()
    [[True, False, False]]
    """
    source = np.asarray(source)
    space = np.zeros(source.shape, bool) if finite is None else ~np.asarray(finite, bool)
    if kind == "intensity":
        dark = (source < OFF_DISK_LEVEL) & ~space
        labels, _ = scipy.ndimage.label(dark | space)  # a dark rim next to a missing sky joins it
        large = np.bincount(labels.ravel()) >= OFF_DISK_AREA
        large[0] = False
        space |= dark & large[labels]
    return space


def uncertainty_features(source, result, *, runner, run, filters, passes: int = 8, noise_map=None,
                         space=None) -> dict:  # fmt: skip
    """The features of `FEATURES` for one image, network units, on the x2 grid.

    Parameters
    ----------
    source : (ny, nx) `~numpy.ndarray`
        The normalised, filled input (float32).
    result : (2 ny, 2 nx) `~numpy.ndarray`
        The network's output for it, normalised.
    runner : `~enhance.models.runner.Runner`
        The network bound to its noise level (``runner.noise``, network units); its passes run once
        (``runner.one_pass()``).
    run : callable
        ``run(array, net)``: ``net`` over a ``(h, w)`` float32 array, tiled, to ``(2 h, 2 w)``.
    filters : tuple
        `filter_bank` of the network.
    passes : {8, 4}
        Rotations and flips whose spread is the model's spread.
    noise_map : (ny, nx) array_like, optional
        The noise per input pixel (network units, `~enhance.inference.noise_map`): the propagated noise
        (``linear_noise``, and the draw of ``noise_response``) then follows it; None: ``runner.noise`` everywhere.
    space : (ny, nx) bool array_like, optional
        The input pixels beyond the limb (`off_disk`); None: none.

    Returns
    -------
    dict of str to `~numpy.ndarray`
        Each feature of `FEATURES`, ``level``, ``space`` (on the disk, the share of pixels beyond the limb
        averaged over `SPACE_SMOOTHING`, 0 to 1; 0 beyond it) and ``disk`` (beyond the limb, the share of the
        disk's; 0 on it) and ``edge`` (the share of a Gaussian of `EDGE_WIDTH` input pixels beyond the image's
        border), float64 ``(2 ny, 2 nx)``, in the output's units.

    Examples
    --------
    >>> from enhance.inference.pipeline import make_runner
    >>> from enhance.inference.tiling import run_tiled
    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> net = WienerEnhanceNet(depth=1, width=4, taps=5).eval()
    >>> runner, _ = make_runner(net, backend="torch", precision="float32", device="cpu")
    >>> bound = runner.bind(1e-3)
    >>> def run(array, model):
    ...     return run_tiled(array, model, tile=None, margin=net.margin, device="cpu")
    >>> source = np.ones((12, 12), np.float32)
    >>> features = uncertainty_features(source, run(source, bound), runner=bound, run=run, filters=filter_bank(net))
    >>> sorted(features) == sorted((*FEATURES, "level", "space", "disk", "edge")), features["floor"].shape
    (True, (24, 24))
    """
    noise = float(runner.noise)
    single = runner.one_pass()
    draw = noise * equivariant_noise(source)
    if noise_map is not None:  # the same draw, each pixel's at its own level
        draw = draw * (np.asarray(noise_map, np.float64) / noise)
    # 'full' (the average of the 8 passes): its passes run on the image plus a `PROBE_SCALE` of the draw, so that
    # their mean less the result, divided by it, is the response of the average itself (to first order), their
    # spread the model's own (the draw's share of it falls as its square), and every feature moves with the image.
    # 'light': its passes run on the image, and one more on the image plus the whole draw.
    averaged = passes == len(DIHEDRAL) and bool(runner.symmetric)
    scale = PROBE_SCALE if averaged else 1.0
    perturbed = source + (scale * draw).astype(np.float32)
    mean = np.zeros(result.shape)
    square = np.zeros(result.shape)
    first = None
    for element in _PASSES[passes]:
        moved = dihedral_transform(perturbed if averaged else source, element)
        out = dihedral_inverse(run(moved, single), element).astype(np.float64)
        first = out if first is None else first
        mean += out
        square += out * out
    mean /= passes
    spread = np.maximum(square / passes - mean * mean, 0.0)
    if averaged:  # less the mean of the same passes on the image: the result, unless a noise map blended it
        response = (mean - (result if noise_map is None else run(source, runner))) / scale
    else:
        response = run(perturbed, single).astype(np.float64) - first
    bank, nodes, unit = filters
    phases = propagated_noise(bank, node_weights(noise, nodes, unit), noise)
    linear = np.tile(phases, (result.shape[0] // 2, result.shape[1] // 2))
    if noise_map is not None:  # white noise of a slowly varying level: the filter's gain times the local level
        linear = linear * on_output_grid(np.asarray(noise_map, np.float64) / noise)
    gy, gx = np.gradient(result.astype(np.float64))
    return {
        "linear_noise": linear,
        "noise_response": np.sqrt(_smooth(response * response)),
        "model_spread": np.sqrt(_smooth(spread)),
        "psf_spread": np.sqrt(_smooth(_psf_spread(result))),
        "gradient": np.sqrt(_smooth(gy * gy + gx * gx)),
        "amplitude": np.abs(result.astype(np.float64)),
        "floor": np.ones(result.shape),
        "level": scipy.ndimage.gaussian_filter(np.abs(result.astype(np.float64)), LEVEL_SMOOTHING) + LEVEL_FLOOR,
        **_limb_shares(space, result.shape),
        "edge": edge_share(result.shape),
    }


def edge_share(shape) -> np.ndarray:
    """The share of a Gaussian of `EDGE_WIDTH` input pixels around each pixel of the x2 grid that lies beyond
    the image's border: about 0.4 on the outermost output pixels, 0.23 next to them, under 0.02 four in.

    Parameters
    ----------
    shape : (2 ny, 2 nx)
        The x2 grid.

    Returns
    -------
    `~numpy.ndarray`
        float64 ``(2 ny, 2 nx)``, 0 to 1: ``1 - (1 - o_y) (1 - o_x)``, ``o`` each axis's share beyond either end.

    Examples
    --------
    >>> share = edge_share((40, 40))
    >>> [round(float(v), 3) for v in share[20, :4]], float(share[20, 20]) < 1e-9  # 0.25, 0.75, ... input pixels in
    ([0.401, 0.227, 0.106, 0.04], True)
    """

    def beyond(n):  # each output pixel's distance from the two ends, in input pixels, as a Gaussian's tails
        inside = (np.arange(n) + 0.5) / 2
        return scipy.special.ndtr(-inside / EDGE_WIDTH) + scipy.special.ndtr(-(n / 2 - inside) / EDGE_WIDTH)

    return 1.0 - np.multiply.outer(1.0 - beyond(shape[0]), 1.0 - beyond(shape[1]))


def _limb_shares(space, shape):
    """``space``, the share of pixels beyond the limb around each pixel on the disk, and ``disk``, the share of the
    disk's around each pixel beyond it, averaged over `SPACE_SMOOTHING` (on the input grid, a quarter of the work,
    then repeated onto the x2 grid)."""
    if space is None or not np.any(space):
        zero = np.broadcast_to(np.float64(0.0), shape)  # no memory: a full disk's x2 grid is 0.5 GB a feature
        return {"space": zero, "disk": zero}
    space = np.asarray(space, bool)
    share = scipy.ndimage.gaussian_filter(space.astype(np.float64), SPACE_SMOOTHING / 2, mode="nearest")
    share = np.clip(on_output_grid(share), 0.0, 1.0)
    beyond = on_output_grid(space)
    return {"space": np.where(beyond, 0.0, share), "disk": np.where(beyond, 1.0 - share, 0.0)}


def _read_calibrations(path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as err:
        msg = f"{path} is not a calibration file (not JSON: {err})"
        raise ValueError(msg) from None


def load_calibration(kind: str, model: str, *, sha256: str | None = None, path=None,
                     missing: str = "warn") -> Calibration:  # fmt: skip
    """The calibration of a shipped model, or `Calibration.uncalibrated` with a warning.

    Parameters
    ----------
    kind : {'intensity', 'blos'}
        What the model enhances.
    model : str
        'full' or 'light' (the calibration file's key is ``kind/model``).
    sha256 : str, optional
        The weights in use; a calibration fitted for other weights is not used.
    path : str or `~pathlib.Path`, optional
        The calibration file; defaults to the package's `CALIBRATION_FILE`.
    missing : {'warn', 'raise'}
        Where none is stored for these weights: `Calibration.uncalibrated` with an
        `~enhance.exceptions.EnhanceUserWarning`, or a `ValueError`.

    Returns
    -------
    Calibration
        Its coefficients.

    Examples
    --------
    >>> load_calibration("intensity", "full").log_scale == Calibration.uncalibrated().log_scale
    False
    """
    check_choice(missing, ("warn", "raise"), name="missing")
    path = data_dir() / CALIBRATION_FILE if path is None else Path(path)
    entry = _read_calibrations(path).get(f"{kind}/{model}")
    if entry is None or (sha256 is not None and entry.get("sha256") != sha256):
        why = "none is stored" if entry is None else "it was fitted for other weights"
        if missing == "raise":
            msg = f"{path} holds no calibration of the shipped {kind}/{model} weights ({why})"
            raise ValueError(msg)
        warnings.warn(f"the uncertainty of the {model} {kind} model is not calibrated ({why}): noise, model spread "
                      "and PSF spread are added with weight one; fit it with `enhance calibrate-uncertainty`",
                      exceptions.EnhanceUserWarning, stacklevel=3)  # fmt: skip
        return Calibration.uncalibrated()
    weights = entry["coefficients"]
    factors = entry.get("config", {}).get("noise_factors") or (0.0, np.inf)
    return Calibration(tuple(float(weights[name]["log_scale"]) for name in FEATURES),
                       tuple(float(weights[name]["slope"]) for name in FEATURES),
                       tuple(float(b) for b in entry["modulation"]), entry.get("sha256"),
                       tuple(float(v) for v in entry.get("noise_range", (min(factors), max(factors)))),
                       tuple(float(v) for v in entry.get("level_range", (0.0, np.inf))),
                       tuple(float(v) for v in entry.get("share_range", (1.0, 1.0))))  # fmt: skip


def resolve_calibration(runner, calibration=None) -> Calibration:
    """The calibration of the uncertainty of ``runner``'s output: ``calibration`` where given, else the stored one
    of the shipped model it runs, else `Calibration.uncalibrated` with an `~enhance.exceptions.EnhanceUserWarning`.

    Parameters
    ----------
    runner : `~enhance.models.runner.Runner`
        A shipped model's carries ``registry_key = (kind, model, sha256)``.
    calibration : Calibration, optional
        Coefficients to use instead of the stored ones.

    Returns
    -------
    Calibration
        The coefficients `output_uncertainty` uses.

    Examples
    --------
    >>> from enhance.inference.pipeline import make_runner, resolve_network
    >>> runner, _ = make_runner(resolve_network("blos", model="light"), backend="auto", precision="float32",
    ...                         device="cpu")
    >>> resolve_calibration(runner) == load_calibration("blos", "light")
    True
    """
    if calibration is not None:
        return calibration
    shipped = runner.registry_key
    if shipped is None:
        warnings.warn(f"no uncertainty calibration for a network of your own ({runner!r}): noise, "
                      "model spread and PSF spread are added with weight one; fit one with "
                      "enhance.analysis.uncertainty_calibration",
                      exceptions.EnhanceUserWarning, stacklevel=3)  # fmt: skip
        return Calibration.uncalibrated()
    kind, model, sha256 = shipped
    return load_calibration(kind, model, sha256=sha256)


def calibration_label(runner, calibration: Calibration) -> str:
    """What an output records (``ENH_UCAL``) of the calibration its uncertainty used (`resolve_calibration`).

    Parameters
    ----------
    runner : `~enhance.models.runner.Runner`
        The runner whose output it is.
    calibration : Calibration
        The coefficients used.

    Returns
    -------
    str
        'uncalibrated' for `Calibration.uncalibrated`, the stored entry's ``kind/model`` for a shipped model's
        calibration, and 'given' for coefficients of the caller's own.

    Examples
    --------
    >>> calibration_label(None, Calibration.uncalibrated())
    'uncalibrated'
    """
    if calibration == Calibration.uncalibrated():
        return "uncalibrated"
    shipped = getattr(runner, "registry_key", None)  # a stored calibration carries the sha256 of its weights
    if shipped is not None and calibration.sha256 is not None and calibration.sha256 == shipped[2]:
        return f"{shipped[0]}/{shipped[1]}"
    return "given"


def output_uncertainty(source, result, *, runner, run, passes: int | None = None, calibration=None,
                       noise_map=None, space=None) -> np.ndarray:  # fmt: skip
    """The standard deviation of each output pixel's error, network units (what `enhance` scales back).

    Parameters
    ----------
    source, result, run
        See `uncertainty_features`.
    runner : `~enhance.models.runner.Runner`
        The runner that gave ``result``, bound to its noise level; a shipped model's carries
        ``registry_key = (kind, model, sha256)`` and gets its calibration.
    passes : {8, 4}, optional
        Rotations and flips whose spread is the model's spread; None: 8 for a runner that averages over
        them, 4 for one that runs once.
    calibration : Calibration, optional
        Coefficients to use instead of the stored ones.
    noise_map : (ny, nx) array_like, optional
        The noise per input pixel, network units: the propagated noise follows it (`uncertainty_features`);
        the calibration's weights are those of ``runner.noise``.
    space : (ny, nx) bool array_like, optional
        The input pixels beyond the limb (`off_disk`), whose neighbours' errors are larger; None: none.

    Returns
    -------
    (2 ny, 2 nx) `~numpy.ndarray`
        float64, network units.

    Examples
    --------
    >>> from enhance.inference.pipeline import make_runner
    >>> from enhance.inference.tiling import run_tiled
    >>> from enhance.models.hybrid import WienerEnhanceNet
    >>> net = WienerEnhanceNet(depth=1, width=4, taps=5).eval()
    >>> runner, _ = make_runner(net, backend="torch", precision="float32", device="cpu")
    >>> bound = runner.bind(1e-3)
    >>> def run(array, model):
    ...     return run_tiled(array, model, tile=None, margin=net.margin, device="cpu")
    >>> source = np.ones((12, 12), np.float32)
    >>> sigma = output_uncertainty(source, run(source, bound), runner=bound, run=run,
    ...                            calibration=Calibration.uncalibrated())
    >>> sigma.shape, bool(np.isfinite(sigma).all())
    ((24, 24), True)
    """
    bank = filter_bank(runner)
    passes = (8 if runner.symmetric else 4) if passes is None else passes
    features = uncertainty_features(source, result, runner=runner, run=run, filters=bank, passes=passes,
                                    noise_map=noise_map, space=space)  # fmt: skip
    unit = bank[2]
    return resolve_calibration(runner, calibration).sigma(features, noise_ratio=float(runner.noise) / unit)
