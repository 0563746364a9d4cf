"""A noise map: the noise level per input pixel that the network is told, where one number does not fit the image.

The noise of an HMI image is not the same everywhere:

``photon`` (continuum)
    photon noise: :math:`\\sigma(x) = \\sigma_{qs} \\sqrt{\\max(\\bar I(x) / I_{qs}, f)}`, for the quiet-Sun level
    :math:`\\sigma_{qs}` (measured, nominal or given), the image smoothed over `SMOOTHING` pixels
    :math:`\\bar I` (so that the map does not carry the image's own noise) and the floor `PHOTON_FLOOR`.
    An umbra at 0.3 of the quiet Sun has 0.55 of its noise.
``limb`` (magnetogram with a helioprojective header)
    the photon part of the centre-to-limb rise of the line-of-sight field's noise:
    :math:`\\sigma(\\mu) = \\sigma_c / \\sqrt{I(\\mu) / I(1)}` with linear limb darkening
    :math:`I(\\mu)/I(1) = 1 - u (1 - \\mu)`, ``u`` = `LIMB_DARKENING` (the law of the project's limb fields,
    `~enhance.analysis.validate`). The field is the difference of two circular polarisations of the line's
    filtergrams, each with photon noise :math:`\\propto \\sqrt{I}`, divided by a Zeeman sensitivity
    :math:`\\propto I`: 1.31 times the centre's noise at :math:`\\mu = 0.3`. HMI's measured noise rises
    towards the limb too, and also varies with the spacecraft's velocity (the JSOC noise masks,
    http://jsoc.stanford.edu/jsocwiki/MagneticNoiseMask; Yeo et al. 2014, A&A 570, A85, Fig. 3), which
    this model leaves out.
``measured`` (magnetogram without a header that places it on the disk)
    the noise measured on tiles (`~enhance.observation.noise.measure_noise`) and fitted with a plane in
    log noise, used when the plane varies by more than `MEASURED_SPAN` across the image and its slope is
    significant; otherwise ``constant``.

The map scales from the level `~enhance.inference.pipeline.noise_choice` finds: a level given
(``noise=``) is the quiet-Sun (continuum) or disk-centre (magnetogram) level; a measured one is the
median over the image, so the map is scaled to have that median.

`run_with_noise_map` tells the network the map without changing its graph (any back-end): it runs the
network at the two levels that bracket the map and blends the two outputs per output pixel, linearly in
log noise, as the linear stage blends its filter bank. A map whose range is within `SINGLE_PASS_SPAN` is
run once, at the level of the choice: the output, and the cost, are then those of one level.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy  # its submodules load when first used (scipy.ndimage: 0.15 s)

from ..constants import GAUSS_PER_KG
from ..grid import on_output_grid
from ..io import disk_radius
from ..observation.noise import NOISE_TILE, measure_noise

__all__ = [
    "SMOOTHING",
    "PHOTON_FLOOR",
    "LIMB_DARKENING",
    "MEASURED_SPAN",
    "SINGLE_PASS_SPAN",
    "NoiseMap",
    "photon_noise",
    "limb_noise",
    "heliocentric_mu",
    "tile_noise_plane",
    "noise_map",
    "bracket_levels",
    "blend_weights",
    "run_with_noise_map",
    "noise_map_cards",
]

#: Standard deviation (input pixels) of the Gaussian that smooths a continuum image before its photon noise.
SMOOTHING = 2.0
#: Lowest intensity, as a fraction of the quiet Sun, in the photon noise (dark limb, off-disk zeros).
PHOTON_FLOOR = 0.01
#: Linear limb-darkening coefficient of the continuum near 617 nm, ``I(mu)/I(1) = 1 - u (1 - mu)``.
LIMB_DARKENING = 0.6
#: A measured plane of noise is used when its largest level is more than this factor above its least.
MEASURED_SPAN = 1.2
#: A map whose largest level is within this factor of its least is run once, at the choice's level.
SINGLE_PASS_SPAN = 1.05
#: Smallest mu the limb law is evaluated at (off-disk pixels and the last pixels at the limb get its value).
_MU_FLOOR = 0.05
#: The slope of a measured plane must be this many standard errors from zero.
_SIGNIFICANCE = 3.0


@dataclasses.dataclass(frozen=True)
class NoiseMap:
    """The noise per input pixel told the network, and how it was obtained.

    Parameters
    ----------
    levels : (ny, nx) `~numpy.ndarray`
        Standard deviation of the noise per input pixel, network units (I/Ic, kG).
    model : {'photon', 'limb', 'measured', 'constant'}
        How: photon noise of the continuum, the centre-to-limb law, a plane fitted to tiles, or one level.
    reference : float
        The level chosen for the whole image (`~enhance.inference.pipeline.noise_choice`), network units: what
        one pass runs at when the map hardly varies.

    Examples
    --------
    >>> nmap = NoiseMap(np.full((2, 2), 1e-3), "constant", 1e-3)
    >>> nmap.low, nmap.high
    (0.001, 0.001)
    """

    levels: np.ndarray
    model: str
    reference: float

    @property
    def low(self) -> float:
        """The least level, network units.

        Examples
        --------
        >>> NoiseMap(np.array([[2e-3, 1e-3], [4e-3, 3e-3]]), "measured", 2e-3).low
        0.001
        """
        return float(np.min(self.levels))

    @property
    def high(self) -> float:
        """The greatest level, network units.

        Examples
        --------
        >>> NoiseMap(np.array([[2e-3, 1e-3], [4e-3, 3e-3]]), "measured", 2e-3).high
        0.004
        """
        return float(np.max(self.levels))


def photon_noise(intensity, *, sigma_qs: float, qs_level: float = 1.0, smoothing: float = SMOOTHING,
                 floor: float = PHOTON_FLOOR) -> np.ndarray:  # fmt: skip
    """Photon noise of a continuum image: :math:`\\sigma_{qs} \\sqrt{\\max(\\bar I / I_{qs}, f)}`.

    Parameters
    ----------
    intensity : (ny, nx) array_like
        The continuum image, finite, in any unit.
    sigma_qs : float
        Standard deviation of the noise per pixel where the intensity is ``qs_level``, in the image's units.
    qs_level : float
        The quiet-Sun intensity, in the image's units; defaults to 1 (an image in I/Ic).
    smoothing : float
        Standard deviation (pixels) of the Gaussian applied to the image first; defaults to `SMOOTHING` (2).
    floor : float
        Lowest intensity, as a fraction of ``qs_level``; defaults to `PHOTON_FLOOR` (0.01).

    Returns
    -------
    (ny, nx) `~numpy.ndarray`
        float64 standard deviation of the noise per pixel, in the image's units.

    Examples
    --------
    >>> photon_noise(np.full((4, 4), 0.25), sigma_qs=1e-3)[0, 0]  # a quarter of the light: half the noise
    np.float64(0.0005)
    """
    smooth = scipy.ndimage.gaussian_filter(np.asarray(intensity, np.float64), smoothing, mode="reflect")
    return float(sigma_qs) * np.sqrt(np.maximum(smooth / float(qs_level), floor))


def limb_noise(mu, *, sigma_centre: float, darkening: float = LIMB_DARKENING) -> np.ndarray:
    """Noise of a line-of-sight magnetogram at ``mu`` from photon noise under limb darkening.

    Parameters
    ----------
    mu : array_like
        Cosine of the heliocentric angle; values below 0.05 (the limb, off the disk) count as 0.05.
    sigma_centre : float
        The noise at disk centre (``mu = 1``), in any unit (the result's).
    darkening : float
        Linear limb-darkening coefficient ``u`` of ``I(mu)/I(1) = 1 - u (1 - mu)``; defaults to `LIMB_DARKENING`.

    Returns
    -------
    `~numpy.ndarray`
        :math:`\\sigma_c / \\sqrt{1 - u (1 - \\mu)}`, float64.

    Examples
    --------
    >>> limb_noise([1.0, 0.3], sigma_centre=10.0).round(2).tolist()  # gauss
    [10.0, 13.13]
    """
    mu = np.maximum(np.asarray(mu, np.float64), _MU_FLOOR)
    return float(sigma_centre) / np.sqrt(1.0 - darkening * (1.0 - np.minimum(mu, 1.0)))


def heliocentric_mu(header, shape) -> np.ndarray | None:
    """Cosine of the heliocentric angle of each pixel, from a helioprojective header.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict-like, optional
        The image's header (a Map's ``meta``): HPLN/HPLT CTYPEs, the pixel scale and RSUN_OBS (or DSUN_OBS).
    shape : tuple of int
        ``(ny, nx)`` of the image.

    Returns
    -------
    (ny, nx) `~numpy.ndarray` or None
        ``mu`` (0 off the disk), or None when the header does not place the image on the Sun.

    Examples
    --------
    >>> header = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 0.504, "CDELT2": 0.504,
    ...           "CRPIX1": 1.5, "CRPIX2": 1.5, "CRVAL1": 0.0, "CRVAL2": 0.0, "RSUN_OBS": 960.0}
    >>> round(float(heliocentric_mu(header, (2, 2))[0, 0]), 6)
    1.0
    """
    radius = None if header is None else disk_radius(header, shape)
    return None if radius is None else np.sqrt(np.clip(1.0 - radius**2, 0.0, 1.0))


def tile_noise_plane(image, *, finite=None) -> np.ndarray | None:
    """The noise measured on tiles, fitted with a plane in log noise; None when it does not vary significantly.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, any unit (the result's), missing pixels filled.
    finite : (ny, nx) bool array_like, optional
        Where the image holds data; tiles with other pixels are left out.

    Returns
    -------
    (ny, nx) `~numpy.ndarray` or None
        The fitted noise per pixel, or None when fewer than 6 tiles could be read, the plane spans less
        than `MEASURED_SPAN` over the image or its slope is within 3 standard errors of zero.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ramp = rng.normal(size=(256, 256)) * np.linspace(1.0, 3.0, 256)[None, :]
    >>> plane = tile_noise_plane(ramp)
    >>> bool(1.6 < plane[:, -1].mean() / plane[:, 0].mean() < 3.6)
    True
    >>> tile_noise_plane(rng.normal(size=(256, 256))) is None
    True
    """
    data = np.asarray(image, np.float64)
    usable = np.ones(data.shape, bool) if finite is None else np.asarray(finite, bool)
    rows, cols, logs = [], [], []
    for top in range(0, data.shape[0] - NOISE_TILE + 1, NOISE_TILE // 2):
        for left in range(0, data.shape[1] - NOISE_TILE + 1, NOISE_TILE // 2):
            window = (slice(top, top + NOISE_TILE), slice(left, left + NOISE_TILE))
            if not usable[window].all():
                continue
            found = measure_noise(data[window])
            if found.reliable and np.isfinite(found.sigma) and found.sigma > 0:
                rows.append(top + NOISE_TILE / 2)
                cols.append(left + NOISE_TILE / 2)
                logs.append(np.log(found.sigma))
    if len(logs) < 6:
        return None
    design = np.column_stack([np.ones(len(logs)), rows, cols])
    coef, *_ = np.linalg.lstsq(design, np.asarray(logs), rcond=None)
    residual = np.asarray(logs) - design @ coef
    variance = float(residual @ residual) / max(len(logs) - 3, 1)
    errors = np.sqrt(np.diag(variance * np.linalg.pinv(design.T @ design)))
    yy, xx = np.mgrid[0 : data.shape[0], 0 : data.shape[1]]
    plane = coef[0] + coef[1] * yy + coef[2] * xx
    significant = np.any(np.abs(coef[1:]) > _SIGNIFICANCE * errors[1:])
    if not significant or np.exp(plane.max() - plane.min()) < MEASURED_SPAN:
        return None
    return np.exp(plane)


def _scaled(shape_map, choice, finite):
    """``shape_map`` scaled to the choice: a given level is its reference (1), a measured one its median."""
    if choice.source == "measured":
        values = shape_map[finite] if finite is not None and finite.any() else shape_map
        return shape_map * (choice.value / float(np.median(values)))
    return shape_map * choice.value


def noise_map(normalised, choice, *, kind: str, header=None, finite=None) -> NoiseMap:
    """The noise map of an image, in the network's units, scaled from the level chosen for it.

    Parameters
    ----------
    normalised : (ny, nx) `~numpy.ndarray`
        The image in the network's units (I/Ic or kG), missing pixels filled.
    choice : `~enhance.inference.pipeline.NoiseChoice`
        The level found for the image: a given or nominal one is the quiet-Sun (disk-centre) level, a
        measured one the image's median level.
    kind : {'intensity', 'blos'}
        Continuum (photon noise) or magnetogram (the limb law with a header, else a measured plane).
    header : `~astropy.io.fits.Header` or dict-like, optional
        The image's header, for ``mu`` (`heliocentric_mu`).
    finite : (ny, nx) bool ndarray, optional
        Where the image holds data.

    Returns
    -------
    NoiseMap
        The levels per input pixel and the model.

    Examples
    --------
    >>> from enhance.inference.pipeline import NoiseChoice
    >>> nmap = noise_map(np.full((8, 8), 0.25), NoiseChoice(1e-3, "I/Ic", "given"), kind="intensity")
    >>> nmap.model, nmap.high
    ('photon', 0.0005)
    """
    if kind == "intensity":
        relative = photon_noise(normalised, sigma_qs=1.0)
        return NoiseMap(_scaled(relative, choice, finite), "photon", float(choice.value))
    mu = heliocentric_mu(header, np.shape(normalised))
    if mu is not None:
        relative = limb_noise(mu, sigma_centre=1.0)
        return NoiseMap(_scaled(relative, choice, finite), "limb", float(choice.value))
    plane = tile_noise_plane(normalised, finite=finite)
    if plane is not None:
        return NoiseMap(_scaled(plane, dataclasses.replace(choice, source="measured"), finite), "measured",
                        float(choice.value))  # fmt: skip
    return NoiseMap(np.full(np.shape(normalised), float(choice.value)), "constant", float(choice.value))


def bracket_levels(nmap: NoiseMap, *, nodes=None, unit: float = 1.0) -> tuple:
    """The levels the network runs at: one when the map's range is within `SINGLE_PASS_SPAN`, else its least and
    greatest (clamped to the filter bank's ``nodes``, beyond which the network does not change).

    Parameters
    ----------
    nmap : NoiseMap
        The map.
    nodes : sequence of float, optional
        The network's noise nodes, in units of ``unit``.
    unit : float
        HMI's noise in network units.

    Returns
    -------
    tuple of float
        ``(reference,)`` or ``(low, high)``, network units.

    Examples
    --------
    >>> bracket_levels(NoiseMap(np.array([1e-3, 1.04e-3]), "photon", 1e-3))
    (0.001,)
    >>> bracket_levels(NoiseMap(np.array([1e-4, 4e-3]), "photon", 1e-3), nodes=(0.25, 32.0), unit=1e-3)
    (0.00025, 0.004)
    """
    low, high = nmap.low, nmap.high
    if nodes is not None:
        low = float(np.clip(low, min(nodes) * unit, max(nodes) * unit))
        high = float(np.clip(high, min(nodes) * unit, max(nodes) * unit))
    if high <= SINGLE_PASS_SPAN * low:
        return (_single(nmap, low, high),)
    return (low, high)


def _single(nmap, low, high):
    """The one level of a map that hardly varies: its reference when inside the range, else the range's middle."""
    if low * (1 - 1e-9) <= nmap.reference <= high * (1 + 1e-9):
        return float(nmap.reference)
    return float(np.sqrt(low * high))


def blend_weights(levels, low: float, high: float) -> np.ndarray:
    """Weight of the ``high`` pass per pixel: linear in log noise, 0 at ``low`` and below, 1 at ``high`` and above.

    Parameters
    ----------
    levels : array_like
        The noise per pixel.
    low, high : float
        The two levels run, ``0 < low < high``.

    Returns
    -------
    `~numpy.ndarray`
        float64, in [0, 1].

    Examples
    --------
    >>> blend_weights([1.0, 2.0, 4.0, 8.0], 1.0, 4.0).tolist()
    [0.0, 0.5, 1.0, 1.0]
    """
    logs = np.log(np.clip(np.asarray(levels, np.float64), low, high))
    return np.clip((logs - np.log(low)) / (np.log(high) - np.log(low)), 0.0, 1.0)


def run_with_noise_map(run_pass, network, nmap: NoiseMap) -> np.ndarray:
    """The network told a noise map: one pass, or two blended per output pixel linearly in log noise.

    Parameters
    ----------
    run_pass : callable
        ``run_pass(bound)``: the whole (tiled) pass of ``bound``, a network bound to a noise level, giving
        the ``(2 ny, 2 nx)`` output.
    network : object
        What binds a level: ``network.bind(level)`` (a `~enhance.models.hybrid.WienerEnhanceNet` or its ONNX runner).
    nmap : NoiseMap
        The noise per input pixel.

    Returns
    -------
    (2 ny, 2 nx) `~numpy.ndarray`
        float32: :math:`(1 - t)\\, f_{lo} + t\\, f_{hi}` with ``t`` = `blend_weights` of the map (each input
        pixel's level on its 2x2 output pixels); the output of the one pass when `bracket_levels` gives one.

    Notes
    -----
    Two passes where the map varies by more than `SINGLE_PASS_SPAN`: twice the cost of one level. At a
    pixel whose level is a bracket level the result is that pass's output exactly; between them it is the
    interpolation the linear stage applies to its filter bank between two nodes.

    Examples
    --------
    >>> class Scale:
    ...     noise_nodes, noise_unit = (), None
    ...     def bind(self, level):
    ...         return level
    >>> def run_pass(level):
    ...     return np.full((4, 4), np.log2(level * 1e3), np.float32)
    >>> nmap = NoiseMap(np.array([[1e-3, 2e-3], [4e-3, 4e-3]]), "photon", 1e-3)
    >>> run_with_noise_map(run_pass, Scale(), nmap)[::2, ::2].tolist()
    [[0.0, 1.0], [2.0, 2.0]]
    """
    levels = bracket_levels(nmap, nodes=network.noise_nodes or None, unit=network.noise_unit or 1.0)
    if len(levels) == 1:
        return run_pass(network.bind(levels[0]))
    low, high = levels
    weight = blend_weights(nmap.levels, low, high)
    weight = on_output_grid(weight)
    first = run_pass(network.bind(low)).astype(np.float64)
    second = run_pass(network.bind(high)).astype(np.float64)
    return ((1.0 - weight) * first + weight * second).astype(np.float32)


def noise_map_cards(nmap: NoiseMap | None, *, unit: str) -> dict:
    """Header cards of a noise map: ``ENH_NMAP`` (its model) and ``ENH_NMIN``, ``ENH_NMAX`` (its least and greatest
    level per input pixel, in the unit of ``ENH_NOIS``: I/Ic, or gauss for a magnetogram).

    Parameters
    ----------
    nmap : NoiseMap or None
        The map; None (one level told) gives ``ENH_NMAP = 'constant'`` alone.
    unit : str
        The network's unit, 'I/Ic' or 'kG' (converted to gauss).

    Returns
    -------
    dict
        ``{'ENH_NMAP': model, 'ENH_NMIN': least, 'ENH_NMAX': greatest}`` (I/Ic, or gauss for a unit of kG).

    Examples
    --------
    >>> noise_map_cards(NoiseMap(np.array([0.01, 0.02]), "limb", 0.01), unit="kG")
    {'ENH_NMAP': 'limb', 'ENH_NMIN': 10.0, 'ENH_NMAX': 20.0}
    """
    if nmap is None:
        return {"ENH_NMAP": "constant"}
    factor = GAUSS_PER_KG if unit == "kG" else 1.0
    return {"ENH_NMAP": nmap.model, "ENH_NMIN": nmap.low * factor, "ENH_NMAX": nmap.high * factor}
