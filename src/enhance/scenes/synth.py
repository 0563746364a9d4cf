"""Synthetic solar scenes: continuum images and magnetograms of the same made-up piece of the Sun.

`generate` draws a periodic scene at a chosen pixel scale (MURaM's 0.0662 arcsec by default): a
continuum image normalised to the quiet Sun (I/Ic) and the vertical field ``Bz`` in gauss, both built
from the same geometry, so kG elements sit in the intergranular lanes of the continuum image, umbrae
are dark where the field is strong, and so on. The scenes replace (or complement) the MURaM active-region
run of Cheung et al. (2010) that the original Enhance networks were trained on.

What a scene holds
------------------
- Granulation: a power (weighted Voronoi) tessellation, warped by smooth random displacements, with
  bright granule interiors, narrow dark lanes with darker cores and vertices, size-dependent brightness,
  and exploding granules (large granules with a dark centre). Its azimuthally averaged power spectrum is
  then matched, annulus by annulus, to `granulation_psd`, a fit to the MURaM quiet-Sun field: the
  phases (the structures) are kept and only the amplitude of each annulus is rescaled.
- Quiet-Sun magnetism: mixed-polarity internetwork fields of tens of gauss concentrated in the lanes, and
  kG network elements in the lanes along supergranular boundaries, seen as bright points.
- Plage: kG flux sheets filling the lanes of a patchy region of one dominant polarity, bright points
  and faculae, micropores where the flux piles up, and granulation of lower contrast.
- Pores, and sunspots with an umbra (umbral dots), a penumbra of radial filaments with bright heads and
  dark cores, and optional light bridges. The umbral field (2-3.5 kG) falls to about 1.85 kG at the
  umbra/penumbra boundary and through the penumbra, where spines (dark, strong, vertical) alternate
  with intraspines (bright, weak, reversing polarity near the outer edge).
- Opposite polarities in close contact: small bipoles, moving magnetic features around spots and
  mixed-polarity plage along the polarity inversion line of bipolar regions, the cases in which the
  HMI PSF cancels flux (Díaz Baso & Asensio Ramos 2018, Sect. 4).

Every random draw comes from one `numpy.random.Generator` built from ``seed``, so a scene is a pure
function of ``(shape, pixel_scale, kind, seed, parameters)``. All structures are periodic, so
`enhance.observation.degrade.degrade` with ``boundary="wrap"`` is exact.

References
----------
Cheung, M. C. M., Rempel, M., Title, A. M. & Schüssler, M. 2010, ApJ, 720, 233 (the MURaM run).
Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5.
Solanki, S. K. 2003, A&ARv, 11, 153 (sunspots: intensities, sizes, fields).
Borrero, J. M. & Ichimoto, K. 2011, Living Rev. Sol. Phys., 8, 4 (penumbral fine structure and fields).
Livingston, W., Harvey, J. W., Malanushenko, O. V. & Webster, L. 2006, Sol. Phys., 239, 41 (umbral fields).
Jurčák, J., Rezaei, R., González, N. B., Schlichenmaier, R. & Vomlel, J. 2018, A&A, 611, L4
(vertical field of 1.87 kG at the umbra/penumbra boundary).
Keppens, R. & Martínez Pillet, V. 1996, A&A, 316, 229 (pore and penumbral fields).
Solanki, S. K. 1993, Space Sci. Rev., 63, 1 (kG flux tubes of network and plage).
Riethmüller, T. L., et al. 2008, A&A, 492, 233 (umbral dots: sizes, brightness, weaker fields).
Scharmer, G. B., et al. 2002, Nature, 420, 151 (dark-cored penumbral filaments).
"""

import dataclasses
import numbers
from pathlib import Path

import astropy.units as u
import numpy as np
import scipy  # scipy.fft and scipy.spatial (0.2 s) load when first used

from ..checks import check_angle, check_choice, check_integer
from ..io import write_fits

__all__ = [
    "KINDS",
    "LABELS",
    "MURAM_PIXEL_SCALE",
    "SceneParameters",
    "Scene",
    "preset",
    "generate",
    "generate_scene",
    "granulation_psd",
    "write_scene",
]

#: Scene kinds that `generate` accepts.
KINDS = ("quiet_sun", "plage", "active_region", "mixed")
#: Values of ``Scene.labels``.
LABELS = {"quiet_sun": 0, "magnetic_element": 1, "pore": 2, "umbra": 3, "penumbra": 4, "light_bridge": 5}
#: Pixel scale of the MURaM simulation (48 km), the default of `generate`.
MURAM_PIXEL_SCALE = 0.0662 * u.arcsec

# Azimuthally averaged power spectral density of the quiet-Sun continuum (I/Ic squared times arcsec
# squared) against spatial frequency (1/arcsec). Above 0.1 / arcsec: a smooth fit to the MURaM quiet-Sun
# field at 0.0662 arcsec (Hann window, 1000 x 500 px, averaged in bins of 0.1 dex). Below: 6e-3 falling
# to 5e-3 at 0.03 / arcsec and flat beyond, a compromise between MURaM's few low-frequency annuli (2e-3
# to 7e-3, mean 4e-3: its 33 arcsec box holds few modes) and the level that real HMI quiet Sun implies
# once the HMI transfer function is divided out (7e-3 to 9e-3). Calibrated once with
# `enhance.analysis.calibration` over ten seeds; the numbers are constants, not data.
_PSD_FREQUENCY = np.array([0.03, 0.1, 0.3, 0.45, 0.55, 0.7, 0.87, 1.1, 1.38, 1.74, 2.18, 2.75, 3.45, 4.34, 5.46, 6.87])
_PSD_POWER = np.array(
    [
        5.0e-3,
        6.0e-3,
        7.8e-3,
        7.6e-3,
        6.8e-3,
        5.4e-3,
        3.3e-3,
        1.87e-3,
        9.5e-4,
        4.2e-4,
        1.78e-4,
        6.9e-5,
        2.5e-5,
        8.2e-6,
        2.3e-6,
        6.2e-7,
    ]
)
#: Granule spacing (arcsec) for which `_PSD_*` hold; other spacings rescale the spectrum self-similarly.
_REFERENCE_SPACING = 2.0

# Shape of a granule and of its lanes, in arcsec and I/Ic. Tuned by eye against MURaM and by the
# calibration numbers; not meant to be changed per scene (use `SceneParameters` for that).
_GRANULE = {
    "jitter": 1.0,  # displacement of granule centres from a square lattice, in lattice steps
    "weight_spread": 0.12,  # spread of the power-diagram weights, in spacing squared (size distribution)
    "warp": 0.2,  # rms displacement of the large-scale warp (arcsec) ...
    "warp_scale": 0.6,  # ... and its correlation length
    "fine_warp": 0.08,  # small-scale wiggle of the lanes
    "fine_warp_scale": 0.2,
    "peak": 1.22,  # interior intensity of a granule of 1 arcsec equivalent radius
    "peak_size_slope": 0.10,  # brighter with size, per arcsec of radius
    "peak_spread": 0.04,  # granule-to-granule scatter
    "centre_drop": 0.15,  # interiors fall towards the centre by this much
    "rim": 0.10,  # bright rim next to the lane ...
    "rim_width": 0.15,  # ... of this e-folding width
    "patch": 0.06,  # relative rms of the patchy interior texture ...
    "patch_scale": 0.25,  # ... and its correlation length
    "exploding_radius": 1.15,  # granules larger than this (equivalent radius) explode ...
    "exploding_depth": 0.15,  # ... with a dark centre this deep ...
    "exploding_size": 0.35,  # ... over this fraction of their radius
    "lane": 0.84,  # lane intensity
    "lane_spread": 0.03,
    "lane_width": 0.25,  # e-folding half-width of a lane
    "lane_width_spread": 0.3,  # relative variation of the lane width along the lanes
    "lane_sharpness": 3.0,  # exponent of the lane profile 1 - exp(-(d / w)**p)
    "vertex": 0.3,  # extra darkening where three granules meet
    "core": 0.08,  # dark lane cores ...
    "core_width": 0.07,
    "core_scale": 0.5,
    "texture": 0.04,  # fine texture inside granules ...
    "texture_scale": 0.08,
    "blur": 0.02,  # final Gaussian smoothing (arcsec)
}


@dataclasses.dataclass(frozen=True)
class SceneParameters:
    """What a scene contains. `preset` gives the values of each kind; override fields by keyword.

    Lengths are in arcsec, fields in gauss, intensities in units of the quiet Sun. Ranges
    ``(low, high)`` are drawn uniformly per feature.

    Parameters
    ----------
    granule_spacing : float
        Mean distance between granule centres, arcsec (MURaM: about 2).
    match_spectrum : bool
        Rescale the granulation's power spectrum to `granulation_psd`.
    internetwork_field : float
        RMS of the mixed-polarity internetwork Bz in the lanes, G.
    network_density : float
        kG network elements per arcsec**2 (along supergranule boundaries).
    supergranule_spacing : float
        Spacing of the supergranular network, arcsec.
    element_field : float
        Field strength at which kG elements saturate, G (Solanki 1993: 1-2 kG).
    plage_filling : float
        Fraction of the area covered by plage, 0-1.
    plage_density : float
        kG elements per arcsec**2 inside plage.
    plage_scale : float
        Correlation length of the plage patches, arcsec.
    dominant_fraction : float
        Fraction of plage/network elements with the dominant polarity, 0-1.
    n_bipoles : int
        Number of small bipoles of opposite polarities in close contact.
    bipole_separation : tuple of float
        Separation of a bipole's polarities, arcsec.
    bipole_field : tuple of float
        Peak Bz of a bipole's polarities, G.
    n_pores : int
        Number of pores.
    pore_radius : tuple of float
        Radius of a pore, arcsec.
    pore_intensity : tuple of float
        Core intensity of a pore, I/Ic (darker for larger pores).
    pore_field : tuple of float
        Central Bz of a pore, G (Keppens & Martínez Pillet 1996).
    n_spots : int
        Number of sunspots (the first is the leading spot; a second one has opposite polarity).
    spot_radius : tuple of float
        Outer (penumbral) radius, arcsec (the HMI sample's spots: about 12).
    umbra_ratio : tuple of float
        Umbral / penumbral radius (Solanki 2003: about 0.42).
    umbra_field : tuple of float
        Bz at the umbral centre, G (Livingston et al. 2006: 2-3.5 kG).
    umbra_intensity : tuple of float
        Core intensity of the umbra, I/Ic (Solanki 2003: 0.05-0.3).
    light_bridge_probability : float
        Chance that a sunspot has a light bridge, 0-1.
    bipolar : bool
        Active-region layout: leading and following polarities, a polarity inversion line between.
    moat_features : int
        Number of moving magnetic features (mostly bipolar) around each spot.

    Examples
    --------
    >>> SceneParameters(n_spots=1).spot_radius
    (5.0, 14.0)
    """

    granule_spacing: float = 2.0  # mean distance between granule centres (MURaM: about 2 arcsec)
    match_spectrum: bool = True  # rescale the granulation's power spectrum to `granulation_psd`
    internetwork_field: float = 40.0  # rms of the mixed-polarity internetwork Bz (G), in the lanes
    network_density: float = 0.03  # kG network elements per arcsec**2 (along supergranule boundaries)
    supergranule_spacing: float = 25.0  # spacing of the supergranular network
    element_field: float = 1700.0  # field strength at which kG elements saturate (Solanki 1993: 1-2 kG)
    plage_filling: float = 0.0  # fraction of the area covered by plage
    plage_density: float = 1.0  # kG elements per arcsec**2 inside plage
    plage_scale: float = 6.0  # correlation length of the plage patches
    dominant_fraction: float = 0.85  # fraction of plage/network elements with the dominant polarity
    n_bipoles: int = 4  # small bipoles of opposite polarities in close contact
    bipole_separation: tuple = (0.25, 1.2)
    bipole_field: tuple = (300.0, 1200.0)
    n_pores: int = 0
    pore_radius: tuple = (0.6, 2.0)
    pore_intensity: tuple = (0.3, 0.6)  # core intensity of a pore (darker for larger pores)
    pore_field: tuple = (1500.0, 2200.0)  # central Bz of a pore (Keppens & Martínez Pillet 1996)
    n_spots: int = 0  # sunspots (the first is the leading spot; a second one has opposite polarity)
    spot_radius: tuple = (5.0, 14.0)  # outer (penumbral) radius (the HMI sample's spots: about 12 arcsec)
    umbra_ratio: tuple = (0.38, 0.46)  # umbral / penumbral radius (Solanki 2003: about 0.42)
    umbra_field: tuple = (2300.0, 3300.0)  # Bz at the umbral centre (Livingston et al. 2006: 2-3.5 kG)
    umbra_intensity: tuple = (0.08, 0.22)  # core intensity of the umbra (Solanki 2003: 0.05-0.3)
    light_bridge_probability: float = 0.5
    bipolar: bool = False  # active-region layout: leading and following polarities, a PIL between
    moat_features: int = 10  # moving magnetic features (mostly bipolar) around each spot

    def __post_init__(self):
        for name in ("granule_spacing", "supergranule_spacing", "element_field", "plage_scale"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and np.isfinite(value) and value > 0):
                msg = f"{name} must be a positive number, got {value!r}"
                raise ValueError(msg)
        for name in ("plage_filling", "dominant_fraction", "light_bridge_probability"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and 0 <= value <= 1):
                msg = f"{name} must lie in [0, 1], got {value!r}"
                raise ValueError(msg)
        for name in ("internetwork_field", "network_density", "plage_density"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and np.isfinite(value) and value >= 0):
                msg = f"{name} must be a number >= 0, got {value!r}"
                raise ValueError(msg)
        for name in ("n_bipoles", "n_pores", "n_spots", "moat_features"):
            value = getattr(self, name)
            check_integer(value, name=name, minimum=0)
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                if len(value) != 2 or not all(isinstance(v, numbers.Real) for v in value) or value[0] > value[1]:
                    msg = f"{field.name} must be a range (low, high) with low <= high, got {value!r}"
                    raise ValueError(msg)


_PRESETS = {
    "quiet_sun": {},
    "plage": {
        "plage_filling": 0.5,
        "network_density": 0.05,
        "n_bipoles": 6,
        "n_pores": 2,
        "pore_radius": (0.5, 1.3),
    },
    "active_region": {
        "plage_filling": 0.3,
        "n_bipoles": 8,
        "n_pores": 3,
        "n_spots": 2,
        "bipolar": True,
    },
}


def preset(kind, *, rng=None):
    """The `SceneParameters` of a scene kind.

    Parameters
    ----------
    kind : {'quiet_sun', 'plage', 'active_region', 'mixed'}
        'mixed' draws a random blend of the other kinds (plage filling, numbers of pores and spots,
        bipolar layout) from ``rng``.
    rng : `numpy.random.Generator`, optional
        Needed for 'mixed' only.

    Returns
    -------
    SceneParameters
        The parameters of ``kind``.

    Examples
    --------
    >>> preset("active_region").n_spots
    2
    """
    check_choice(kind, KINDS, name="kind")
    if kind != "mixed":
        return SceneParameters(**_PRESETS[kind])
    if rng is None:
        msg = "kind 'mixed' draws its parameters at random: pass rng (a numpy.random.Generator)"
        raise TypeError(msg)
    n_spots = int(rng.choice([0, 0, 1, 1, 2]))
    return SceneParameters(
        plage_filling=float(rng.uniform(0.0, 0.6)),
        network_density=float(rng.uniform(0.02, 0.06)),
        n_bipoles=int(rng.integers(2, 10)),
        n_pores=int(rng.integers(0, 5)),
        n_spots=n_spots,
        bipolar=bool(n_spots > 0 and rng.uniform() < 0.7),
        dominant_fraction=float(rng.uniform(0.6, 0.95)),
    )


@dataclasses.dataclass(frozen=True)
class Scene:
    """A generated scene: continuum (I/Ic), Bz (G), a label map and how it was made.

    Parameters
    ----------
    continuum : numpy.ndarray
        Continuum intensity, I/Ic.
    bz : numpy.ndarray
        Vertical field, gauss.
    labels : numpy.ndarray
        Feature label of each pixel (`LABELS`).
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel.
    kind : str
        The scene kind (`KINDS`).
    parameters : SceneParameters
        What the scene was drawn with.

    Examples
    --------
    >>> scene = generate_scene((64, 64), kind="quiet_sun")
    >>> scene.kind, scene.bz.shape
    ('quiet_sun', (64, 64))
    """

    continuum: np.ndarray  #: (ny, nx) continuum intensity, quiet Sun = 1
    bz: np.ndarray  #: (ny, nx) vertical field in gauss, positive towards the observer
    labels: np.ndarray  #: (ny, nx) int8, values of `LABELS`
    pixel_scale: u.Quantity  #: angular size of one pixel
    kind: str
    parameters: SceneParameters


# --------------------------------------------------------------------------------------------------
# Small periodic helpers (pixels inside, arcsec only where named so).


def _smoothstep(x, lo, hi):
    """0 below ``lo``, 1 above ``hi``, cubic in between."""
    t = np.clip((np.asarray(x, dtype=float) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _frequencies(shape):
    """Squared spatial frequency (cycles per pixel) on the rfft2 grid."""
    ky = scipy.fft.fftfreq(shape[0])[:, None]
    kx = scipy.fft.rfftfreq(shape[1])[None, :]
    return ky**2 + kx**2


def _random_field(shape, scale_px, rng):
    """Periodic Gaussian random field with unit variance and a Gaussian correlation of ``scale_px``."""
    noise = rng.standard_normal(shape)
    spectrum = scipy.fft.rfft2(noise) * np.exp(-2.0 * np.pi**2 * _frequencies(shape) * scale_px**2)
    field = scipy.fft.irfft2(spectrum, s=shape)
    field -= field.mean()
    std = field.std()
    # A correlation length much larger than the field leaves (numerically) nothing but the mean.
    return field / std if std > 1e-9 else np.zeros(shape)


def _gaussian_blur(image, sigma_px):
    """Periodic Gaussian smoothing by FFT."""
    if sigma_px <= 0:
        return image
    spectrum = scipy.fft.rfft2(image) * np.exp(-2.0 * np.pi**2 * _frequencies(image.shape) * sigma_px**2)
    return scipy.fft.irfft2(spectrum, s=image.shape)


def _render_blobs(shape, rows, cols, amplitudes, sigma_px):
    """Sum of Gaussians of peak ``amplitudes`` and width ``sigma_px`` (one value per blob), periodic.

    Blobs are grouped into a few widths; each group is one FFT convolution of a spike image.
    """
    out = np.zeros(shape)
    if len(amplitudes) == 0:
        return out
    sigma_px = np.broadcast_to(np.asarray(sigma_px, dtype=float), np.shape(amplitudes))
    edges = np.geomspace(max(sigma_px.min(), 0.3), max(sigma_px.max(), 0.3) * 1.0001, 5)
    group = np.clip(np.searchsorted(edges, sigma_px) - 1, 0, len(edges) - 2)
    k2 = _frequencies(shape)
    for g in np.unique(group):
        sel = group == g
        sigma = float(np.sqrt(edges[g] * edges[g + 1]))
        spikes = np.zeros(shape)
        np.add.at(spikes, (rows[sel] % shape[0], cols[sel] % shape[1]), amplitudes[sel])
        # FFT of a peak-1 Gaussian of width sigma: 2 pi sigma^2 exp(-2 pi^2 sigma^2 k^2).
        kernel = 2.0 * np.pi * sigma**2 * np.exp(-2.0 * np.pi**2 * sigma**2 * k2)
        out += scipy.fft.irfft2(scipy.fft.rfft2(spikes) * kernel, s=shape)
    return out


def _offsets(shape, centre):
    """Periodic (minimum-image) offsets in pixels of every pixel from ``centre`` (row, col)."""
    ny, nx = shape
    dy = (np.arange(ny) - centre[0] + ny / 2) % ny - ny / 2
    dx = (np.arange(nx) - centre[1] + nx / 2) % nx - nx / 2
    return dy[:, None], dx[None, :]


def _fourier_wiggle(phi, rng, *, amplitude, orders):
    """A random smooth periodic function of the angle ``phi``: sum of cosines of the given orders."""
    table = np.linspace(-np.pi, np.pi, 2049)
    values = np.zeros_like(table)
    for m in orders:
        values += rng.normal(0.0, amplitude / np.sqrt(m)) * np.cos(m * table + rng.uniform(0, 2 * np.pi))
    # Tabulated once, interpolated everywhere: the orders are low, 2048 samples per turn are plenty.
    return np.interp(phi, table, values, period=2 * np.pi)


def _voronoi(shape, seeds, weights, query_rows, query_cols, *, k):
    """Nearest seed and distances (pixels) to the two nearest power-diagram borders, periodic.

    Returns ``label``, ``border`` (distance to the nearest border), ``border2`` (to the next one) and
    ``centre`` (distance to the own seed), flat arrays over the query points.
    """
    ny, nx = shape
    tree = scipy.spatial.cKDTree(seeds, boxsize=[ny, nx])
    query = np.column_stack([np.mod(query_rows, ny), np.mod(query_cols, nx)])
    # Queries on the box's upper edge (after mod, rounding) must stay inside [0, box).
    query = np.minimum(query, np.nextafter(np.array([ny, nx], dtype=float), 0))
    k = min(k, len(seeds))
    _, index = tree.query(query, k=k)
    if k == 1:
        index = index[:, None]
    dy = query[:, None, 0] - seeds[index, 0]
    dy -= ny * np.round(dy / ny)
    dx = query[:, None, 1] - seeds[index, 1]
    dx -= nx * np.round(dx / nx)
    power = dy**2 + dx**2 - weights[index]
    order = np.argsort(power, axis=1)
    rows = np.arange(len(query))[:, None]
    index, power = index[rows, order], power[rows, order]
    centre = np.hypot(dy[rows, order][:, 0], dx[rows, order][:, 0])
    label = index[:, 0]

    def border(j):
        if j >= k:
            return np.full(len(query), np.inf)
        sy = seeds[index[:, j], 0] - seeds[label, 0]
        sy -= ny * np.round(sy / ny)
        sx = seeds[index[:, j], 1] - seeds[label, 1]
        sx -= nx * np.round(sx / nx)
        return (power[:, j] - power[:, 0]) / (2.0 * np.maximum(np.hypot(sy, sx), 1e-9))

    return label, border(1), border(2), centre


def _lattice_seeds(shape, spacing_px, rng, *, jitter):
    """Granule centres: a square lattice of about ``spacing_px`` with uniform jitter (periodic)."""
    ny, nx = shape
    gy, gx = max(1, round(ny / spacing_px)), max(1, round(nx / spacing_px))
    cy, cx = np.meshgrid((np.arange(gy) + 0.5) * ny / gy, (np.arange(gx) + 0.5) * nx / gx, indexing="ij")
    seeds = np.column_stack([cy.ravel(), cx.ravel()])
    seeds += rng.uniform(-0.5, 0.5, seeds.shape) * np.array([ny / gy, nx / gx]) * jitter
    return np.mod(seeds, [ny, nx])


def granulation_psd(frequency, *, spacing=_REFERENCE_SPACING):
    """Target power spectrum of the quiet-Sun continuum that `generate` imposes on its granulation.

    Parameters
    ----------
    frequency : `~astropy.units.Quantity` or array_like
        Spatial frequency (1/arcsec when a plain number).
    spacing : float
        Granule spacing in arcsec; the spectrum of the 2 arcsec reference is rescaled self-similarly,
        :math:`P_s(f) = (s/2)^2 P_2(f s/2)`.

    Returns
    -------
    `~numpy.ndarray`
        Power spectral density in (I/Ic)**2 arcsec**2, the normalisation of
        `enhance.analysis.metrics.power_spectrum`.

    Notes
    -----
    A piecewise power law through a fit to the MURaM quiet-Sun field (0.0662 arcsec, Hann window) above
    0.1/arcsec, easing to 5e-3 at 0.03/arcsec and flat below. Beyond 6.9/arcsec the last slope is
    extrapolated.

    Examples
    --------
    >>> import astropy.units as u
    >>> round(float(granulation_psd(0.02 / u.arcsec)), 6)
    0.005
    """
    if isinstance(frequency, u.Quantity):
        frequency = frequency.to_value(1 / u.arcsec)
    ratio = float(spacing) / _REFERENCE_SPACING
    f = np.abs(np.asarray(frequency, dtype=float)) * ratio
    log_f, log_p = np.log(_PSD_FREQUENCY), np.log(_PSD_POWER)
    slope = (log_p[-1] - log_p[-2]) / (log_f[-1] - log_f[-2])
    x = np.log(np.maximum(f, _PSD_FREQUENCY[0]))
    y = np.where(x > log_f[-1], log_p[-1] + slope * (x - log_f[-1]), np.interp(x, log_f, log_p))
    return np.exp(y) * ratio**2


def _match_spectrum(image, scale, spacing, *, gain_range=(0.2, 3.0)):
    """Rescale each frequency annulus of ``image`` so that its mean power is `granulation_psd`.

    Returns ``1 + zero-mean field``. The gains are clipped to ``gain_range`` so that missing structure
    is never invented from numerical noise.
    """
    ny, nx = image.shape
    spectrum = scipy.fft.rfft2(image - image.mean())
    k = np.hypot(scipy.fft.fftfreq(ny, d=scale)[:, None], scipy.fft.rfftfreq(nx, d=scale)[None, :])
    # Half-plane weights: columns other than 0 and Nyquist stand for two modes each.
    weight = np.full(k.shape, 2.0)
    weight[:, 0] = 1.0
    if nx % 2 == 0:
        weight[:, -1] = 1.0
    psd = np.abs(spectrum) ** 2 * scale**2 / (ny * nx)
    step = 1.0 / (min(ny, nx) * scale)
    annulus = np.rint(k / step).astype(int)
    n = int(annulus.max()) + 1
    sums = np.bincount(annulus.ravel(), weights=(psd * weight).ravel(), minlength=n)
    counts = np.bincount(annulus.ravel(), weights=weight.ravel(), minlength=n)
    measured = sums / np.maximum(counts, 1e-300)
    target = granulation_psd(np.arange(n) * step, spacing=spacing)
    gain = np.sqrt(target / np.maximum(measured, 1e-300))
    gain = np.clip(gain, *gain_range)
    gain[0] = 0.0
    return 1.0 + scipy.fft.irfft2(spectrum * gain[annulus], s=(ny, nx))


def _granulation(shape, scale, spacing, rng, *, match_spectrum):
    """Quiet-Sun granulation (mean 1) and its geometry.

    Returns the intensity, the distance (arcsec) of every pixel to the nearest lane centre, and a
    lane weight in [0, 1] (1 in the lanes, 0 inside granules).
    """
    p = _GRANULE
    ny, nx = shape
    spacing_px = spacing / scale
    seeds = _lattice_seeds(shape, spacing_px, rng, jitter=p["jitter"])
    n = len(seeds)
    weights = rng.normal(0.0, p["weight_spread"], n) * spacing_px**2
    warp_y = _random_field(shape, p["warp_scale"] / scale, rng) * p["warp"] / scale
    warp_x = _random_field(shape, p["warp_scale"] / scale, rng) * p["warp"] / scale
    warp_y += _random_field(shape, p["fine_warp_scale"] / scale, rng) * p["fine_warp"] / scale
    warp_x += _random_field(shape, p["fine_warp_scale"] / scale, rng) * p["fine_warp"] / scale
    rows, cols = np.meshgrid(np.arange(ny, dtype=float), np.arange(nx, dtype=float), indexing="ij")
    label, border, border2, centre = _voronoi(
        shape, seeds, weights, (rows + warp_y).ravel(), (cols + warp_x).ravel(), k=4
    )
    # Equivalent radius of each granule from its area, in pixels and arcsec.
    radius_px = np.sqrt(np.maximum(np.bincount(label, minlength=n), 1) / np.pi)
    radius = radius_px * scale
    own_radius = radius_px[label]
    depth = np.clip(border / own_radius, 0.0, 1.0)  # 0 at the border, about 1 at the centre

    peak = (
        p["peak"] + p["peak_size_slope"] * (np.clip(radius, 0.3, 1.6) - 1.0) + p["peak_spread"] * rng.standard_normal(n)
    )
    interior = peak[label] - p["centre_drop"] * depth**2 + p["rim"] * np.exp(-border * scale / p["rim_width"])
    exploding = np.where(radius > p["exploding_radius"], p["exploding_depth"], 0.0)
    interior -= exploding[label] * np.exp(-((centre / (p["exploding_size"] * own_radius)) ** 2))
    lane_width = p["lane_width"] / scale
    lane_width = lane_width * np.clip(
        1 + p["lane_width_spread"] * _random_field(shape, 1.0 / scale, rng).ravel(), 0.4, 2
    )
    interior *= 1 + p["patch"] * _random_field(shape, p["patch_scale"] / scale, rng).ravel()
    step1 = 1.0 - np.exp(-((border / lane_width) ** p["lane_sharpness"]))
    step2 = 1.0 - np.exp(-((border2 / lane_width) ** p["lane_sharpness"]))
    lane = p["lane"] + p["lane_spread"] * _random_field(shape, 1.0 / scale, rng).ravel()
    intensity = lane + (interior - lane) * step1 * (1.0 - p["vertex"] + p["vertex"] * step2)
    core = np.clip(_random_field(shape, p["core_scale"] / scale, rng).ravel(), 0.0, None)
    intensity -= p["core"] * core * np.exp(-((border * scale / p["core_width"]) ** 2))
    intensity = intensity.reshape(shape)
    intensity += p["texture"] * _random_field(shape, p["texture_scale"] / scale, rng) * step1.reshape(shape)
    intensity = _gaussian_blur(intensity, p["blur"] / scale)
    if match_spectrum:
        intensity = _match_spectrum(intensity, scale, spacing)
    else:
        intensity = intensity / intensity.mean()
    lane_distance = (border * scale).reshape(shape)
    lane_weight = (1.0 - step1).reshape(shape)
    return intensity, lane_distance, lane_weight


# --------------------------------------------------------------------------------------------------
# Magnetic elements in the lanes.


def _sample_lane_pixels(lane_distance, activity, count, rng, *, max_distance):
    """Draw ``count`` pixel positions in the lanes with probability proportional to ``activity``."""
    weight = np.where(lane_distance < max_distance, activity, 0.0).ravel()
    total = weight.sum()
    if count == 0 or total <= 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    flat = rng.choice(weight.size, size=count, p=weight / total)
    return np.unravel_index(flat, lane_distance.shape)


def _elements(lane_distance, lane_weight, activity, polarity, count, rng, scale, params):
    """kG flux concentrations in the lanes: saturated sums of Gaussians, shaped by the lane mask."""
    shape = lane_distance.shape
    rows, cols = _sample_lane_pixels(lane_distance, activity, count, rng, max_distance=0.12)
    if len(rows) == 0:
        return np.zeros(shape)
    sign = np.sign(polarity[rows, cols])
    sign[sign == 0] = 1.0
    minority = rng.uniform(size=len(rows)) > params.dominant_fraction
    sign = np.where(minority, -sign, sign)
    amplitude = sign * rng.uniform(1.0, 2.0, len(rows)) * params.element_field
    sigma = rng.uniform(0.08, 0.25, len(rows)) / scale
    raw = _render_blobs(shape, rows, cols, amplitude, sigma)
    # Confinement to the lanes turns round blobs into flux sheets that follow the lanes.
    return params.element_field * np.tanh(raw * lane_weight / params.element_field)


def _bipoles(shape, centres, rng, scale, *, count, separation, field, sigma=(0.07, 0.15)):
    """``count`` pairs of opposite-polarity blobs ``separation`` arcsec apart around ``centres``."""
    if count == 0:
        return np.zeros(shape)
    rows, cols = centres
    half = rng.uniform(*separation, count) / 2 / scale
    angle = rng.uniform(0, 2 * np.pi, count)
    strength = rng.uniform(*field, count)
    sign = rng.choice([-1.0, 1.0], count)
    dy, dx = half * np.sin(angle), half * np.cos(angle)
    all_rows = np.rint(np.concatenate([rows + dy, rows - dy])).astype(int)
    all_cols = np.rint(np.concatenate([cols + dx, cols - dx])).astype(int)
    amplitude = np.concatenate([sign * strength, -sign * strength]) * 1.4
    width = np.tile(rng.uniform(*sigma, count), 2) / scale
    raw = _render_blobs(shape, all_rows, all_cols, amplitude, width)
    return field[1] * np.tanh(raw / field[1])


# --------------------------------------------------------------------------------------------------
# Pores and sunspots.


def _pore(shape, centre, scale, rng, *, radius, core_intensity, core_field):
    """Mask, intensity, Bz (unsigned) and the inside of one pore (periodic)."""
    dy, dx = _offsets(shape, centre)
    r = np.hypot(dy, dx) * scale
    phi = np.arctan2(dy, dx)
    edge = radius * (1 + _fourier_wiggle(phi, rng, amplitude=0.08, orders=range(2, 7)))
    x = r / edge
    mask = 1.0 - _smoothstep(r - edge, -0.15, 0.15)
    intensity = core_intensity + (0.75 - core_intensity) * np.clip(x, 0, 1) ** 2
    field = core_field * (1.0 - 0.35 * np.clip(x, 0, 1) ** 2)
    field = np.where(x <= 1, field, 0.65 * core_field * np.exp(-(((r - edge) / 0.4) ** 2)))
    return mask, intensity, field, x < 1


def _spot(shape, centre, scale, rng, granulation, *, r_penumbra, ratio, b_umbra, i_core, light_bridge):
    """One sunspot: mask, intensity, Bz (unsigned) and its label regions (periodic)."""
    dy, dx = _offsets(shape, centre)
    dy, dx = np.broadcast_arrays(dy * scale, dx * scale)
    r = np.hypot(dy, dx)
    phi = np.arctan2(dy, dx)
    r_umbra_0 = ratio * r_penumbra
    r_umbra = r_umbra_0 * (1 + _fourier_wiggle(phi, rng, amplitude=0.04, orders=range(2, 9)))
    r_outer = r_penumbra * (1 + _fourier_wiggle(phi, rng, amplitude=0.04, orders=range(2, 9)))
    p_raw = (r - r_umbra) / (r_outer - r_umbra)
    p = np.clip(p_raw, 0.0, 1.0)

    filaments, envelope_sum = _penumbral_filaments(r, phi, p, p_raw, rng, r_umbra_0=r_umbra_0, r_penumbra=r_penumbra)
    penumbra_intensity = 0.6 + 0.5 * filaments
    x = np.clip(r / r_umbra, 0.0, 1.0)
    umbra_intensity, dots = _umbra(shape, centre, scale, rng, x, r_umbra_0=r_umbra_0, i_core=i_core)

    # Field: B0 in the centre, 1.85 kG at the umbral boundary (Jurčák et al. 2018), falling through the
    # penumbra to about 0.15 B_boundary; spines stronger, intraspines weaker and reversed near the edge.
    b_boundary = min(1800.0 * rng.uniform(0.95, 1.05), 0.95 * b_umbra)
    umbra_field = b_umbra - (b_umbra - b_boundary) * x**2 - 1200.0 * dots
    mean_penumbra = b_boundary * (0.15 + 0.85 * (1.0 - p) ** 1.5)
    weight = np.clip(envelope_sum, 0.0, 1.0)
    penumbra_field = mean_penumbra * (1.0 + 0.25 * (1.0 - weight) - (0.3 + 1.1 * p**2) * weight)
    outside = np.clip(r - r_outer, 0.0, None)
    penumbra_field = np.where(p_raw <= 1.0, penumbra_field, 0.15 * b_boundary * np.exp(-((outside / 1.0) ** 2)))

    inner = _smoothstep(p_raw, -0.04, 0.04)  # umbra -> penumbra
    intensity = umbra_intensity * (1 - inner) + penumbra_intensity * inner
    field = umbra_field * (1 - inner) + penumbra_field * inner
    ragged = 1.0 + 0.08 * (filaments - 0.5)
    mask = 1.0 - _smoothstep(p_raw - ragged, -0.03, 0.04)

    bridge = np.zeros_like(r)
    if light_bridge:
        bridge, texture = _light_bridge(dy, dx, r, p_raw, rng, granulation, r_umbra_0=r_umbra_0)
        intensity = intensity * (1 - bridge) + texture * bridge
        field = field * (1 - 0.55 * bridge)

    regions = {
        "umbra": (p_raw < 0) & (bridge < 0.5),
        "penumbra": (p_raw >= 0) & (mask > 0.5) & (bridge < 0.5),
        "light_bridge": (bridge >= 0.5) & (mask > 0.5),
    }
    return mask, intensity, field, regions


def _penumbral_filaments(r, phi, p, p_raw, rng, *, r_umbra_0, r_penumbra):
    """Penumbral filaments: two families (inner and outer) whose angular spacing keeps their width
    near 0.45 arcsec; each filament has its own brightness, start (bright head) and end radius.
    Returns their brightness pattern and the summed envelope (where filaments, i.e. spines, lie)."""
    twist = _fourier_wiggle(phi, rng, amplitude=0.05, orders=range(1, 5)) + _fourier_wiggle(
        phi, rng, amplitude=0.02, orders=range(8, 20)
    )
    filaments = np.zeros_like(r)
    envelope_sum = np.zeros_like(r)
    for mid, start, end, blend in (
        (0.3, (-0.1, 0.2), (0.6, 1.1), 1.0 - _smoothstep(p, 0.45, 0.7)),
        (0.75, (0.25, 0.5), (0.95, 1.2), _smoothstep(p, 0.45, 0.7)),
    ):
        count = max(8, int(round(2 * np.pi * (r_umbra_0 + mid * (r_penumbra - r_umbra_0)) / 0.45)))
        brightness = rng.uniform(0.45, 1.0, count)
        head = rng.uniform(*start, count)
        tail = np.maximum(head + 0.4, rng.uniform(*end, count))
        dark_core = rng.uniform(0.2, 0.55, count)
        position = ((phi + twist * p) / (2 * np.pi) % 1.0) * count
        index = np.minimum(position.astype(int), count - 1)
        across = position - index - 0.5
        phase = rng.uniform(0, 2 * np.pi, count)
        profile = np.exp(-((across / 0.28) ** 2))
        envelope = _smoothstep(p_raw - head[index], 0.0, 0.08) * (1.0 - _smoothstep(p_raw - tail[index], -0.1, 0.05))
        heads = np.exp(-(((p_raw - head[index] - 0.06) / 0.06) ** 2))
        cores = 1.0 - dark_core[index] * np.exp(-((across / 0.09) ** 2)) * _smoothstep(p_raw - head[index], 0.08, 0.16)
        along = 1.0 + 0.15 * np.sin(r / 0.3 + phase[index])  # brightness varies along a filament
        filaments += blend * profile * (brightness[index] * envelope * cores * along + 0.3 * heads)
        envelope_sum += blend * profile * envelope
    return np.clip(filaments, 0.0, 1.3), envelope_sum


def _umbra(shape, centre, scale, rng, x, *, r_umbra_0, i_core):
    """Umbra: dark core brightening outwards (``x`` is r / r_umbra), umbral dots (Riethmüller et al.
    2008: about 0.25 arcsec, brighter and with weaker fields at the umbral periphery). Returns the
    intensity and the dots."""
    umbra_intensity = (i_core + (0.38 - i_core) * x**2) * (1.0 + 0.08 * _random_field(shape, 0.4 / scale, rng))
    area = np.pi * r_umbra_0**2
    n_dots = rng.poisson(0.3 * area)
    dot_r = r_umbra_0 * np.sqrt(rng.uniform(0, 0.95, n_dots))
    dot_phi = rng.uniform(0, 2 * np.pi, n_dots)
    dot_amp = rng.uniform(0.5, 1.0, n_dots) * (0.1 + 0.25 * dot_r / r_umbra_0)
    dots = _render_blobs(
        shape,
        np.rint(centre[0] + dot_r * np.sin(dot_phi) / scale).astype(int),
        np.rint(centre[1] + dot_r * np.cos(dot_phi) / scale).astype(int),
        dot_amp,
        rng.uniform(0.08, 0.12, n_dots) / scale,
    )
    return umbra_intensity + dots, dots


def _light_bridge(dy, dx, r, p_raw, rng, granulation, *, r_umbra_0):
    """A light bridge across the umbra: its weight and its granular intensity."""
    angle = rng.uniform(0, np.pi)
    offset = rng.uniform(-0.4, 0.4) * r_umbra_0
    width = rng.uniform(0.35, 0.8)
    distance = np.abs(dy * np.cos(angle) - dx * np.sin(angle) - offset)
    wiggle = 1 + 0.3 * np.cos(r * 2.5 + rng.uniform(0, 2 * np.pi))
    bridge = np.exp(-((distance / (width * wiggle)) ** 4)) * (1.0 - _smoothstep(p_raw, 0.0, 0.35))
    level = rng.uniform(0.6, 0.85)
    texture = level * (1.0 - 0.3 * np.exp(-((distance / (0.3 * width)) ** 2))) * (0.85 + 0.15 * granulation)
    return bridge, texture


# --------------------------------------------------------------------------------------------------


def _pixel_scale_arcsec(pixel_scale):
    return check_angle(pixel_scale, name="pixel_scale")


def _check_shape(shape):
    if (
        not isinstance(shape, tuple | list)
        or len(shape) != 2
        or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in shape)
    ):
        msg = f"shape must be a pair of integers (ny, nx), got {shape!r}"
        raise TypeError(msg)
    if min(shape) < 16:
        msg = f"shape must be at least 16 x 16 pixels, got {tuple(shape)}"
        raise ValueError(msg)
    return int(shape[0]), int(shape[1])


def _place(fov, rng, *, margin=0.0):
    """A random centre (row, col) in pixels of a periodic field of ``fov`` pixels."""
    return (rng.uniform(margin, fov[0] - margin), rng.uniform(margin, fov[1] - margin))


def generate_scene(
    shape,
    pixel_scale=MURAM_PIXEL_SCALE,
    *,
    kind: str = "quiet_sun",
    seed=0,
    **parameters,
) -> Scene:
    """Generate a synthetic scene: continuum, Bz and a label map of the same piece of Sun.

    The result also holds the labels (`LABELS`) and the `SceneParameters` used, which the calibration
    uses to measure umbrae and penumbrae.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` in pixels, at least 16 x 16.
    pixel_scale : `~astropy.units.Quantity` or float
        Angular size of one pixel; a plain number is taken as arcsec. Defaults to 0.0662 arcsec.
    kind : {'quiet_sun', 'plage', 'active_region', 'mixed'}
        What the scene holds (see `preset`).
    seed : int, sequence of int or `numpy.random.Generator`
        Source of every random draw; the same seed gives the same scene.
    **parameters
        Fields of `SceneParameters` that override the preset.

    Returns
    -------
    Scene
        Continuum (I/Ic), Bz (G), labels and the parameters used.

    Examples
    --------
    >>> scene = generate_scene((128, 128), kind="plage", seed=3)
    >>> scene.continuum.shape, scene.labels.dtype.name
    ((128, 128), 'int8')
    """
    shape = _check_shape(shape)
    scale = _pixel_scale_arcsec(pixel_scale)
    check_choice(kind, KINDS, name="kind")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    params = preset(kind, rng=rng)
    known = {field.name for field in dataclasses.fields(SceneParameters)}
    unknown = sorted(set(parameters) - known)
    if unknown:
        msg = f"unknown scene parameter(s) {unknown}; valid ones are {sorted(known)}"
        raise TypeError(msg)
    params = dataclasses.replace(params, **parameters)

    ny, nx = shape
    fov = (ny * scale, nx * scale)  # arcsec
    continuum, lane_distance, lane_weight = _granulation(
        shape, scale, params.granule_spacing, rng, match_spectrum=params.match_spectrum
    )
    labels = np.zeros(shape, dtype=np.int8)
    network, polarity, plage, dominant = _layout(shape, scale, params, rng)
    region = _active_region(shape, scale, fov, params, rng, polarity=polarity, plage=plage, dominant=dominant)
    bz = _small_scale_field(shape, scale, params, rng, lane_distance, lane_weight, network, region)
    continuum = _continuum_response(shape, scale, rng, continuum, bz, lane_weight, region.plage)
    features = _Features(shape)
    _add_spots(features, labels, bz, shape, scale, params, rng, region.spots, continuum)
    _add_pores(features, labels, shape, scale, fov, params, rng, region)
    continuum, bz = _merge_features(continuum, bz, features, labels, region.plage, params)
    return Scene(
        continuum=continuum,
        bz=bz,
        labels=labels,
        pixel_scale=scale * u.arcsec,
        kind=kind,
        parameters=params,
    )


def _layout(shape, scale, params, rng):
    """Large-scale layout: the supergranular network, plage patches and their polarity."""
    ny, nx = shape
    sg_seeds = _lattice_seeds(shape, params.supergranule_spacing / scale, rng, jitter=1.0)
    coarse = max(1, int(round(0.25 / scale)))
    rows = np.arange(0, ny, coarse, dtype=float)
    cols = np.arange(0, nx, coarse, dtype=float)
    grid_r, grid_c = np.meshgrid(rows, cols, indexing="ij")
    _, sg_border, _, _ = _voronoi(shape, sg_seeds, np.zeros(len(sg_seeds)), grid_r.ravel(), grid_c.ravel(), k=3)
    sg_border = np.repeat(np.repeat(sg_border.reshape(grid_r.shape), coarse, 0), coarse, 1)[:ny, :nx]
    network = np.exp(-((sg_border * scale / 2.0) ** 2))

    polarity = _random_field(shape, 8.0 / scale, rng)
    if params.plage_filling > 0:
        patches = _random_field(shape, params.plage_scale / scale, rng)
        threshold = np.quantile(patches, 1.0 - params.plage_filling)
        plage = _smoothstep(patches, threshold - 0.15, threshold + 0.15)
    else:
        plage = np.zeros(shape)
    dominant = rng.choice([-1.0, 1.0])
    polarity = np.where(plage > 0, dominant, polarity)
    return network, polarity, plage, dominant


@dataclasses.dataclass
class _Region:
    """Where the sunspots sit, and the plage and polarity they organise."""

    spots: list
    plage: np.ndarray
    polarity: np.ndarray
    dominant: float
    follower: tuple | None = None  # centre of the following polarity of a bipolar region


def _active_region(shape, scale, fov, params, rng, *, polarity, plage, dominant):
    """Place the sunspots; a bipolar region also orders the plage's polarity and brightens plage near spots."""
    ny, nx = shape
    spots = []
    region = _Region(spots=spots, plage=plage, polarity=polarity, dominant=dominant)
    r_max = 0.22 * min(fov)
    if not (params.n_spots and r_max >= 1.5):  # smaller fields cannot hold a sunspot
        return region
    axis = rng.uniform(0, 2 * np.pi)
    middle = (rng.uniform(0.3, 0.7) * ny, rng.uniform(0.3, 0.7) * nx)
    separation = 0.0
    for i in range(params.n_spots):
        r_penumbra = min(rng.uniform(*params.spot_radius), r_max) * (1.0 if i == 0 else rng.uniform(0.5, 0.85))
        if i == 0:
            centre = middle
        elif params.bipolar and i == 1:
            separation = spots[0]["r_penumbra"] + r_penumbra + rng.uniform(3.0, 10.0)
            separation = min(separation, 0.5 * min(fov))
            centre = (
                middle[0] + separation / scale * np.sin(axis),
                middle[1] + separation / scale * np.cos(axis),
            )
        else:
            centre = _place(shape, rng)
        sign = dominant if (i == 0 or not params.bipolar or i > 1) else -dominant
        spots.append({"centre": centre, "r_penumbra": r_penumbra, "sign": sign})
    if not params.bipolar:
        return region
    # Polarity of the plage follows the two spots, with a wiggly inversion line between them.
    dy0, dx0 = _offsets(shape, spots[0]["centre"])
    along = (dy0 * np.sin(axis) + dx0 * np.cos(axis)) * scale
    # The inversion line runs midway to the following spot, or two radii beyond a lone spot.
    distance = 0.5 * separation if separation > 0 else 2.0 * spots[0]["r_penumbra"]
    wobble = 0.5 * distance * _random_field(shape, 4.0 / scale, rng)
    region.polarity = dominant * np.tanh((distance - along + wobble) / 2.0)
    if len(spots) > 1:
        region.follower = spots[1]["centre"]
    else:
        region.follower = (
            middle[0] + 2 * distance / scale * np.sin(axis),
            middle[1] + 2 * distance / scale * np.cos(axis),
        )
    activity_near = np.zeros(shape)
    for spot in spots:
        dy, dx = _offsets(shape, spot["centre"])
        dist = np.hypot(dy, dx) * scale
        activity_near = np.maximum(activity_near, np.exp(-((dist / (2.5 * spot["r_penumbra"])) ** 2)))
    region.plage = np.clip(plage + 0.6 * activity_near * (plage > 0.02), 0, 1)
    return region


def _small_scale_field(shape, scale, params, rng, lane_distance, lane_weight, network, region):
    """Bz of the kG elements (network and plage), the internetwork and the small bipoles, in G."""
    ny, nx = shape
    plage, polarity = region.plage, region.polarity
    # kG elements: network (quiet Sun) and plage.
    area = ny * nx * scale**2
    activity = params.network_density * network + params.plage_density * plage
    count = rng.poisson(activity.mean() * area)
    bz = _elements(lane_distance, lane_weight, activity, polarity, count, rng, scale, params)
    # Mixed-polarity internetwork: intermittent (cubed Gaussian) and concentrated in the lanes.
    internetwork = _random_field(shape, 0.12 / scale, rng) ** 3 / np.sqrt(15.0)
    bz += params.internetwork_field * internetwork * (0.3 + 1.4 * lane_weight) * (1.0 - 0.5 * plage)

    # Opposite polarities in close contact: small bipoles anywhere, more along a polarity inversion line.
    n_bipoles = params.n_bipoles
    centres = _sample_lane_pixels(lane_distance, np.ones(shape), n_bipoles, rng, max_distance=0.3)
    bz += _bipoles(
        shape,
        centres,
        rng,
        scale,
        count=len(centres[0]),
        separation=params.bipole_separation,
        field=params.bipole_field,
    )
    if params.bipolar and params.plage_filling > 0:
        pil = np.exp(-((polarity / 0.3) ** 2)) * (plage > 0.1)
        n_pil = rng.poisson(0.004 * area * max(float(pil.mean()), 0.0) / 0.05 + 2)
        centres = _sample_lane_pixels(lane_distance, pil + 1e-12, n_pil, rng, max_distance=0.3)
        bz += _bipoles(shape, centres, rng, scale, count=len(centres[0]), separation=(0.2, 0.8), field=(600.0, 1500.0))
    return bz


def _continuum_response(shape, scale, rng, continuum, bz, lane_weight, plage):
    """Continuum response of the small-scale field: bright points and faculae in the lanes, dimmer
    (abnormal) granulation in plage, and micropores where the flux piles up."""
    strength = np.abs(bz)
    crowding = _gaussian_blur(strength, 0.5 / scale)
    continuum = 1.0 + (continuum - 1.0) * (1.0 - 0.3 * plage)
    bright = _smoothstep(strength, 400.0, 1200.0) * (1.0 - _smoothstep(crowding, 600.0, 1100.0))
    level = 1.12 + 0.08 * _random_field(shape, 1.0 / scale, rng)
    continuum = continuum + (level - continuum) * bright * np.clip(lane_weight * 1.5, 0, 1)
    return continuum * (1.0 - 0.4 * _smoothstep(crowding, 800.0, 1400.0))


class _Features:
    """Pores and spots, which replace the granulation and the small-scale field under them."""

    def __init__(self, shape):
        self.mask = np.zeros(shape)
        self.continuum = np.zeros(shape)
        self.bz = np.zeros(shape)
        self.tails = np.zeros(shape)

    def add(self, mask, intensity, field, sign):
        # Later features cover earlier ones; the field outside each feature's mask (its decaying
        # tail) adds up.
        new = np.maximum(self.mask, mask)
        share = np.where(new > 0, (new - self.mask) / np.maximum(new, 1e-12), 0.0)
        self.continuum = self.continuum * (1 - share) + intensity * share
        self.bz = self.bz * (1 - share) + sign * field * share
        self.tails = self.tails + sign * field * (1 - mask)
        self.mask = new


def _add_spots(features, labels, bz, shape, scale, params, rng, spots, continuum):
    """Add each sunspot to ``features`` and ``labels``, and the moving magnetic features in its moat
    to ``bz`` (G, in place)."""
    for spot in spots:
        radius = spot["r_penumbra"]
        ratio = rng.uniform(*params.umbra_ratio)
        b_umbra = rng.uniform(*params.umbra_field)
        # Larger, stronger spots have darker umbrae (e.g. Mathew et al. 2007, A&A, 465, 291).
        darkness = (b_umbra - params.umbra_field[0]) / max(params.umbra_field[1] - params.umbra_field[0], 1e-9)
        lo, hi = params.umbra_intensity
        i_core = hi - (hi - lo) * np.clip(0.5 * darkness + 0.5 * rng.uniform(), 0, 1)
        mask, intensity, field, regions = _spot(
            shape,
            spot["centre"],
            scale,
            rng,
            continuum,
            r_penumbra=radius,
            ratio=ratio,
            b_umbra=b_umbra,
            i_core=i_core,
            light_bridge=rng.uniform() < params.light_bridge_probability,
        )
        features.add(mask, intensity, field, spot["sign"])
        for name, region in regions.items():
            labels[region] = LABELS[name]
        # Moving magnetic features: mostly bipolar pairs in the moat around the spot.
        n_mmf = params.moat_features
        moat_r = radius * (1.0 + rng.uniform(0.05, 0.8, n_mmf))
        moat_phi = rng.uniform(0, 2 * np.pi, n_mmf)
        centres = (
            spot["centre"][0] + moat_r * np.sin(moat_phi) / scale,
            spot["centre"][1] + moat_r * np.cos(moat_phi) / scale,
        )
        bz += _bipoles(shape, centres, rng, scale, count=n_mmf, separation=(0.4, 1.2), field=(400.0, 1200.0))


def _add_pores(features, labels, shape, scale, fov, params, rng, region):
    """Add the pores to ``features`` and ``labels``, kept off the spots."""
    ny, nx = shape
    spots = region.spots
    for _ in range(params.n_pores):
        radius = min(rng.uniform(*params.pore_radius), 0.2 * min(fov))
        for _attempt in range(20):  # keep pores off the spots
            if spots and params.bipolar and rng.uniform() < 0.7:
                # Pores of the following polarity cluster around the following part of the region.
                spread = 6.0 / scale
                centre = (region.follower[0] + rng.normal(0, spread), region.follower[1] + rng.normal(0, spread))
                sign = -region.dominant
            else:
                weight = region.plage + 0.05
                flat = rng.choice(weight.size, p=(weight / weight.sum()).ravel())
                centre = np.unravel_index(flat, shape)
                sign = np.sign(region.polarity[centre]) or 1.0
            clear = True
            for spot in spots:
                dy, dx = _offsets(shape, spot["centre"])
                gap = np.hypot(dy[int(centre[0]) % ny, 0], dx[0, int(centre[1]) % nx]) * scale
                clear = clear and gap > 1.15 * spot["r_penumbra"] + radius
            if clear:
                break
        size = (radius - params.pore_radius[0]) / max(params.pore_radius[1] - params.pore_radius[0], 1e-9)
        lo, hi = params.pore_intensity
        core = hi - (hi - lo) * np.clip(size + rng.normal(0, 0.15), 0, 1)
        mask, intensity, field, inside = _pore(
            shape, centre, scale, rng, radius=radius, core_intensity=core, core_field=rng.uniform(*params.pore_field)
        )
        features.add(mask, intensity, field, sign)
        labels[inside & (labels < LABELS["pore"])] = LABELS["pore"]


def _merge_features(continuum, bz, features, labels, plage, params):
    """Put the pores and spots into the scene, bound the small-scale field and normalise to I/Ic."""
    # Outside pores and spots, overlapping concentrations and the features' tails stay below about
    # 2 kG (weak fields are unchanged).
    saturation = 1.15 * params.element_field
    element = (np.abs(bz) > 500.0) & (features.mask < 0.1) & (labels == LABELS["quiet_sun"])
    labels[element] = LABELS["magnetic_element"]
    continuum = continuum * (1 - features.mask) + features.continuum * features.mask
    bz = saturation * np.tanh((bz + features.tails) / saturation) * (1 - features.mask) + features.bz * features.mask

    # Normalise to the quiet Sun (label 0 and outside plage), as I/Ic is defined.
    quiet = (labels == LABELS["quiet_sun"]) & (plage < 0.05)
    if np.count_nonzero(quiet) > 0.01 * quiet.size:
        continuum = continuum / continuum[quiet].mean()
    return continuum, bz


def generate(shape, pixel_scale=MURAM_PIXEL_SCALE, *, kind: str = "quiet_sun", seed=0, **parameters):
    """Generate a synthetic continuum image and magnetogram of the same piece of Sun.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` in pixels, at least 16 x 16.
    pixel_scale : `~astropy.units.Quantity` or float
        Angular size of one pixel; a plain number is taken as arcsec. Defaults to 0.0662 arcsec
        (MURaM's 48 km). The granulation is drawn at this scale, so it should stay below about
        0.15 arcsec for lanes to be resolved.
    kind : {'quiet_sun', 'plage', 'active_region', 'mixed'}
        What the scene holds (see `preset`); 'mixed' draws a random blend from ``seed``.
    seed : int, sequence of int or `numpy.random.Generator`
        Source of every random draw; the same seed gives the same scene.
    **parameters
        Fields of `SceneParameters` that override the preset, e.g. ``n_spots=1, plage_filling=0.2``.

    Returns
    -------
    continuum : `~numpy.ndarray`
        (ny, nx) float64 continuum intensity normalised so that the quiet Sun is 1 (I/Ic).
    bz : `~numpy.ndarray`
        (ny, nx) float64 vertical magnetic field in gauss, positive towards the observer.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, ``shape`` too small or a parameter out of range.
    TypeError
        If a keyword is not a field of `SceneParameters`.

    Notes
    -----
    The scene is periodic in both directions; degrade it with ``boundary="wrap"``. The quiet-Sun
    granulation's azimuthally averaged power spectrum equals `granulation_psd` in every frequency
    annulus of the grid (see the module docstring), which fixes its RMS contrast near MURaM's 16 %.

    Examples
    --------
    >>> continuum, bz = generate((128, 128), kind="quiet_sun", seed=1)
    >>> continuum.shape, bz.shape
    ((128, 128), (128, 128))
    """
    scene = generate_scene(shape, pixel_scale, kind=kind, seed=seed, **parameters)
    return scene.continuum, scene.bz


def write_scene(scene, continuum_path, bz_path, *, overwrite=False):
    """Write a scene's continuum and Bz to two FITS files, each atomically.

    The headers carry the pixel scale (CDELT1/2 and CUNIT1/2 in arcsec, which
    `enhance.scenes.sources.open_source` reads back), BUNIT ('I/Ic', 'G'), CONTENT (so that
    `enhance.io.detect_kind` recognises them) and the scene kind and parameters as HISTORY.

    Parameters
    ----------
    scene : Scene
        From `generate_scene`.
    continuum_path, bz_path : str or `~pathlib.Path`
        Destinations.
    overwrite : bool
        Replace existing files; otherwise an existing file raises `FileExistsError` before anything
        is written.

    Returns
    -------
    tuple of `~pathlib.Path`
        The two written files.

    Examples
    --------
    >>> import tempfile
    >>> scene = generate_scene((64, 64), kind="plage")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     paths = write_scene(scene, f"{folder}/ic.fits", f"{folder}/bz.fits")
    ...     print([p.name for p in paths])
    ['ic.fits', 'bz.fits']
    """
    paths = (Path(continuum_path), Path(bz_path))
    if paths[0].resolve() == paths[1].resolve():
        msg = f"continuum_path and bz_path must differ, got {paths[0]} twice"
        raise ValueError(msg)
    for path in paths:
        if path.exists() and not overwrite:
            msg = f"{path} exists; use --overwrite (overwrite=True) to replace it"
            raise FileExistsError(msg)
    scale = float(scene.pixel_scale.to_value(u.arcsec))
    common = {
        "CDELT1": scale,
        "CDELT2": scale,
        "CUNIT1": "arcsec",
        "CUNIT2": "arcsec",
        "ORIGIN": "enhance.scenes.synth",
    }
    history = [f"synthetic {scene.kind} scene", repr(scene.parameters)]
    written = []
    for path, data, unit, content in (
        (paths[0], scene.continuum, "I/Ic", "CONTINUUM INTENSITY"),
        (paths[1], scene.bz, "G", "MAGNETOGRAM"),
    ):
        header = {**common, "BUNIT": unit, "CONTENT": content, "history": "\n".join(history)}
        written.append(write_fits(path, data.astype(np.float32), header, overwrite=overwrite))
    return tuple(written)
