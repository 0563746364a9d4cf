"""Point spread functions of the observation model: the HMI PSF and the Airy target.

Pure functions: angular distances (`~astropy.units.Quantity`) in, plain ndarrays out.

The HMI PSF is the azimuthally symmetric Gaussian + Lorentzian form of Wachter et al. (2012),
with the parameters that Díaz Baso & Asensio Ramos (2018) tuned so that a degraded simulation
has the power spectrum of real HMI quiet Sun (w = 2, W = 3.4). The target of the network is the
diffraction pattern of an ideal telescope of twice HMI's aperture (28 cm).
"""

import astropy.units as u
import numpy as np
import scipy  # scipy.integrate and scipy.special (0.2 s each) load when first used

from ..checks import check_choice, check_positive

__all__ = [
    "HMI_DIAMETER",
    "TARGET_DIAMETER",
    "HMI_WAVELENGTH",
    "ENHANCE_2018",
    "WACHTER_2012",
    "DEFAULT_RADIUS",
    "ENHANCE_2018_RADIUS",
    "WIDE_RADIUS",
    "hmi_psf",
    "airy_psf",
    "hmi_encircled_energy",
    "airy_encircled_energy",
    "psf_kernel",
]

#: Aperture of the HMI telescope.
HMI_DIAMETER = 0.14 * u.m
#: Aperture of the ideal telescope whose diffraction pattern is the network's target.
TARGET_DIAMETER = 0.28 * u.m
#: Wavelength of the HMI Fe I line.
HMI_WAVELENGTH = 6173 * u.AA
#: PSF parameters used to train Enhance (Díaz Baso & Asensio Ramos 2018): a wider core and tail.
ENHANCE_2018 = {"w": 2.0, "W": 3.4, "epsilon": 0.1, "k": 3.0}
#: The original PSF parameters of Wachter et al. (2012).
WACHTER_2012 = {"w": 1.8, "W": 3.0, "epsilon": 0.1, "k": 3.0}
#: Half-width of the kernels Enhance was trained with. Díaz Baso & Asensio Ramos (2018) sampled the PSF on
#: the grid of astropy's ``AiryDisk2DKernel(1.1 / 0.0662)``, whose default size (8 radii) is 133 x 133 MURaM
#: pixels: 66 px = 4.37 arcsec from the centre, normalised there. Their Fig. 5 calibration of ``w`` and ``W``
#: against real HMI holds for this footprint, and so do the published results on HMI data (umbrae 3-7 %
#: darker); it holds 91.9 % of the HMI PSF's energy within a circle of that radius.
ENHANCE_2018_RADIUS = 66 * 0.0662 * u.arcsec
#: A half-width that keeps nearly all of the Lorentzian tail (it falls as r**-3, so its energy converges
#: slowly): 16 arcsec holds 97.8 % of the energy of the default HMI PSF and 99.4 % of the Airy pattern.
WIDE_RADIUS = 16 * u.arcsec
#: Default half-width of sampled kernels: the footprint Enhance was trained with (`ENHANCE_2018_RADIUS`).
DEFAULT_RADIUS = ENHANCE_2018_RADIUS


def _radial_coordinate(theta_arcsec, diameter_m, wavelength_m):
    """Dimensionless r = pi D theta / lambda for theta in arcsec."""
    return np.pi * diameter_m * (np.asarray(theta_arcsec, dtype=float) * np.pi / 648000.0) / wavelength_m


def _hmi_profile(r, *, w, W, epsilon, k):
    """Gaussian + Lorentzian profile of Wachter et al. (2012) at dimensionless radius r."""
    return (1.0 - epsilon) * np.exp(-((r / w) ** 2)) + epsilon / (1.0 + (np.abs(r) / W) ** k)


def _airy_profile(x):
    """(2 J1(x) / x)**2, equal to 1 at x = 0."""
    x = np.abs(np.asarray(x, dtype=float))
    out = np.ones_like(x)
    nonzero = x > 0
    out[nonzero] = (2.0 * scipy.special.j1(x[nonzero]) / x[nonzero]) ** 2
    return out


def _check_hmi_params(w, W, epsilon, k):
    check_positive(w, name="w")
    check_positive(W, name="W")
    check_positive(k, name="k")
    if not 0.0 <= epsilon <= 1.0:
        msg = f"epsilon must lie in [0, 1], got {epsilon!r}"
        raise ValueError(msg)
    if epsilon > 0 and k <= 2.0:
        msg = f"k must be > 2 for the Lorentzian tail to hold finite energy, got {k!r}"
        raise ValueError(msg)


@u.quantity_input
def hmi_psf(
    theta: u.arcsec,
    *,
    diameter: u.m = HMI_DIAMETER,
    wavelength: u.AA = HMI_WAVELENGTH,
    w: float = 2.0,
    W: float = 3.4,  # noqa: N803 (the paper's symbol)
    epsilon: float = 0.1,
    k: float = 3.0,
) -> np.ndarray:
    """Radial profile of the HMI point spread function (Wachter et al. 2012).

    Parameters
    ----------
    theta : `~astropy.units.Quantity`
        Angular distance from the PSF centre (any angle unit).
    diameter : `~astropy.units.Quantity`
        Telescope aperture; defaults to 0.14 m (HMI).
    wavelength : `~astropy.units.Quantity`
        Observing wavelength; defaults to 6173 Angstrom.
    w, W, epsilon, k : float
        Gaussian width, Lorentzian width, Lorentzian weight and Lorentzian exponent, in units of
        the dimensionless radius r. Defaults are the values Enhance was trained with
        (`ENHANCE_2018`); pass ``**WACHTER_2012`` for the original ones.

    Returns
    -------
    `~numpy.ndarray`
        The profile, equal to 1 at ``theta = 0`` (not normalised to unit area).

    Notes
    -----
    .. math:: \\mathrm{PSF}(r) = (1-\\epsilon)\\, e^{-(r/w)^2} + \\epsilon\\, [1 + (r/W)^k]^{-1},
              \\qquad r = \\pi D \\theta / \\lambda.

    References
    ----------
    Wachter, R., et al. 2012, Sol. Phys., 275, 261.
    Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5.

    Examples
    --------
    >>> import astropy.units as u
    >>> float(hmi_psf(0 * u.arcsec))
    1.0
    """
    _check_hmi_params(w, W, epsilon, k)
    r = _radial_coordinate(theta.to_value(u.arcsec), diameter.to_value(u.m), wavelength.to_value(u.m))
    return _hmi_profile(r, w=w, W=W, epsilon=epsilon, k=k)


@u.quantity_input
def airy_psf(theta: u.arcsec, *, diameter: u.m = TARGET_DIAMETER, wavelength: u.AA = HMI_WAVELENGTH) -> np.ndarray:
    """Radial profile of the Airy diffraction pattern of a circular aperture.

    Parameters
    ----------
    theta : `~astropy.units.Quantity`
        Angular distance from the centre.
    diameter : `~astropy.units.Quantity`
        Telescope aperture; defaults to 0.28 m, the target of Enhance (twice HMI's).
    wavelength : `~astropy.units.Quantity`
        Wavelength; defaults to 6173 Angstrom.

    Returns
    -------
    `~numpy.ndarray`
        The profile, equal to 1 at ``theta = 0``.

    Notes
    -----
    .. math:: I(\\theta) = \\left[\\frac{2 J_1(x)}{x}\\right]^2, \\qquad x = \\pi D \\theta / \\lambda.

    The first dark ring lies at :math:`\\theta = 1.2197\\,\\lambda/D` and the full width at half
    maximum is :math:`1.029\\,\\lambda/D`.

    Examples
    --------
    >>> import astropy.units as u
    >>> float(airy_psf(0 * u.arcsec))
    1.0
    """
    x = _radial_coordinate(theta.to_value(u.arcsec), diameter.to_value(u.m), wavelength.to_value(u.m))
    return _airy_profile(x)


def _encircled_energy(profile, r_max):
    """Fraction of the 2-D integral of a radial ``profile`` that lies within ``r_max``."""

    def ring(r):
        return 2.0 * np.pi * r * profile(r)

    inner = scipy.integrate.quad(ring, 0.0, r_max, limit=2000)[0]
    outer = scipy.integrate.quad(ring, r_max, np.inf, limit=2000)[0]
    return inner / (inner + outer)


@u.quantity_input
def hmi_encircled_energy(
    radius: u.arcsec,
    *,
    diameter: u.m = HMI_DIAMETER,
    wavelength: u.AA = HMI_WAVELENGTH,
    w: float = 2.0,
    W: float = 3.4,  # noqa: N803
    epsilon: float = 0.1,
    k: float = 3.0,
) -> float:
    """Fraction of the HMI PSF's energy within ``radius`` of its centre.

    Tells how much of the slowly decaying Lorentzian tail a kernel of that half-width captures.

    Parameters
    ----------
    radius : `~astropy.units.Quantity`
        Angular radius from the PSF centre (any angle unit).
    diameter : `~astropy.units.Quantity`
        Telescope aperture; defaults to 0.14 m (HMI).
    wavelength : `~astropy.units.Quantity`
        Observing wavelength; defaults to 6173 Angstrom.
    w, W, epsilon, k : float
        Gaussian width, Lorentzian width, Lorentzian weight and Lorentzian exponent (dimensionless, as in
        `hmi_psf`); defaults are `ENHANCE_2018`.

    Returns
    -------
    float
        The fraction, between 0 and 1.

    Examples
    --------
    >>> import astropy.units as u
    >>> round(hmi_encircled_energy(16 * u.arcsec), 3)
    0.978
    """
    _check_hmi_params(w, W, epsilon, k)
    r_max = float(_radial_coordinate(radius.to_value(u.arcsec), diameter.to_value(u.m), wavelength.to_value(u.m)))
    return _encircled_energy(lambda r: _hmi_profile(r, w=w, W=W, epsilon=epsilon, k=k), r_max)


@u.quantity_input
def airy_encircled_energy(
    radius: u.arcsec, *, diameter: u.m = TARGET_DIAMETER, wavelength: u.AA = HMI_WAVELENGTH
) -> float:
    """Fraction of the Airy pattern's energy within ``radius``: :math:`1 - J_0(x)^2 - J_1(x)^2`.

    Parameters
    ----------
    radius : `~astropy.units.Quantity`
        Angular radius from the centre (any angle unit).
    diameter : `~astropy.units.Quantity`
        Telescope aperture; defaults to 0.28 m (the network's target).
    wavelength : `~astropy.units.Quantity`
        Observing wavelength; defaults to 6173 Angstrom.

    Returns
    -------
    float
        The fraction, between 0 and 1.

    Examples
    --------
    >>> import astropy.units as u
    >>> round(airy_encircled_energy(16 * u.arcsec), 3)
    0.994
    """
    x = float(_radial_coordinate(radius.to_value(u.arcsec), diameter.to_value(u.m), wavelength.to_value(u.m)))
    return float(1.0 - scipy.special.j0(x) ** 2 - scipy.special.j1(x) ** 2)


@u.quantity_input
def psf_kernel(
    pixel_scale: u.arcsec,
    *,
    kind: str = "hmi",
    radius: u.arcsec = DEFAULT_RADIUS,
    oversample: int = 5,
    diameter: u.Quantity[u.m] | None = None,
    wavelength: u.AA = HMI_WAVELENGTH,
    **hmi_params,
) -> np.ndarray:
    """Sample a PSF on a pixel grid, integrated over each pixel's area.

    Parameters
    ----------
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel of the grid (e.g. 0.0662 arcsec for MURaM, 0.252 arcsec for the
        super-resolved grid).
    kind : {'hmi', 'airy'}
        'hmi' for the HMI PSF (`hmi_psf`), 'airy' for the diffraction pattern (`airy_psf`).
    radius : `~astropy.units.Quantity`
        Half-width of the (square) kernel; defaults to `DEFAULT_RADIUS`, the 4.37 arcsec footprint
        Enhance was trained with (`WIDE_RADIUS`, 16 arcsec, keeps nearly all of the HMI tail).
        `hmi_encircled_energy` tells the fraction of energy inside.
    oversample : int
        Each pixel value is the mean of ``oversample**2`` samples spread over the pixel (odd, >= 1).
    diameter : `~astropy.units.Quantity`, optional
        Telescope aperture; defaults to 0.14 m for 'hmi' and 0.28 m for 'airy'.
    wavelength : `~astropy.units.Quantity`
        Wavelength; defaults to 6173 Angstrom.
    **hmi_params
        ``w``, ``W``, ``epsilon``, ``k`` for the HMI PSF (see `hmi_psf`).

    Returns
    -------
    `~numpy.ndarray`
        A (2n+1, 2n+1) float64 kernel centred on its middle pixel, symmetric, summing to 1,
        with ``n = round(radius / pixel_scale)``.

    Examples
    --------
    >>> import astropy.units as u
    >>> kernel = psf_kernel(0.504 * u.arcsec, radius=4 * u.arcsec)
    >>> kernel.shape, round(float(kernel.sum()), 12)
    ((17, 17), 1.0)
    """
    check_choice(kind, ("hmi", "airy"), name="kind")
    scale = check_positive(float(pixel_scale.to_value(u.arcsec)), name="pixel_scale")
    half = int(round(check_positive(float(radius.to_value(u.arcsec)), name="radius") / scale))
    if isinstance(oversample, bool) or not isinstance(oversample, int) or oversample < 1 or oversample % 2 == 0:
        msg = f"oversample must be an odd integer >= 1, got {oversample!r}"
        raise ValueError(msg)
    if kind == "airy" and hmi_params:
        msg = f"the Airy pattern takes no HMI parameters, got {sorted(hmi_params)}"
        raise TypeError(msg)
    if diameter is None:
        diameter = HMI_DIAMETER if kind == "hmi" else TARGET_DIAMETER

    # Sub-pixel sample positions, in pixels, symmetric about each pixel centre.
    sub = (np.arange(oversample) - (oversample - 1) / 2) / oversample
    axis = (np.arange(-half, half + 1)[:, None] + sub[None, :]).ravel()
    theta = np.hypot(axis[:, None], axis[None, :]) * scale * u.arcsec
    if kind == "hmi":
        samples = hmi_psf(theta, diameter=diameter, wavelength=wavelength, **hmi_params)
    else:
        samples = airy_psf(theta, diameter=diameter, wavelength=wavelength)
    n = 2 * half + 1
    kernel = samples.reshape(n, oversample, n, oversample).mean(axis=(1, 3))
    kernel = 0.5 * (kernel + kernel.T)  # exact symmetry despite rounding
    return kernel / kernel.sum()
