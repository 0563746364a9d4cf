import astropy.units as u
import numpy as np
import pytest
from scipy import special

from enhance.observation.psf import (
    DEFAULT_RADIUS,
    ENHANCE_2018,
    WACHTER_2012,
    WIDE_RADIUS,
    airy_encircled_energy,
    airy_psf,
    hmi_encircled_energy,
    hmi_psf,
    psf_kernel,
)

LAMBDA_OVER_D_ARCSEC = (6173e-10 / 0.28) * u.rad.to(u.arcsec)


def test_airy_first_dark_ring_at_1_22_lambda_over_d():
    theta = np.linspace(0.8, 1.5, 70001) * LAMBDA_OVER_D_ARCSEC
    profile = airy_psf(theta * u.arcsec)
    first_zero = theta[np.argmin(profile)] / LAMBDA_OVER_D_ARCSEC
    assert first_zero == pytest.approx(1.2197, abs=1e-4)
    assert profile.min() < 1e-9


def test_airy_fwhm_is_1_03_lambda_over_d():
    theta = np.linspace(0, 1, 100001) * LAMBDA_OVER_D_ARCSEC
    profile = airy_psf(theta * u.arcsec)
    half = theta[np.argmin(np.abs(profile - 0.5))]
    assert 2 * half / LAMBDA_OVER_D_ARCSEC == pytest.approx(1.029, abs=2e-3)


def test_airy_encircled_energy_matches_numerical_integral():
    radius = 1.5 * u.arcsec
    theta = np.linspace(0, radius.value, 200001)
    ring = 2 * np.pi * theta * airy_psf(theta * u.arcsec)
    x_per_arcsec = np.pi / LAMBDA_OVER_D_ARCSEC
    total = 4 / x_per_arcsec**2 * np.pi  # integral of (2 J1(x)/x)^2 over the plane, in arcsec^2
    assert np.trapezoid(ring, theta) / total == pytest.approx(airy_encircled_energy(radius), rel=1e-4)


def test_hmi_profile_formula_and_parameter_sets():
    r = 3.0  # dimensionless radius
    theta = r / (np.pi * 0.14 / 6173e-10) * u.rad
    expected = 0.9 * np.exp(-((r / 2.0) ** 2)) + 0.1 / (1 + (r / 3.4) ** 3)
    assert hmi_psf(theta) == pytest.approx(expected, rel=1e-12)
    expected_wachter = 0.9 * np.exp(-((r / 1.8) ** 2)) + 0.1 / (1 + (r / 3.0) ** 3)
    assert hmi_psf(theta, **WACHTER_2012) == pytest.approx(expected_wachter, rel=1e-12)
    # The paper's set is the default, and the profile is normalised to 1 at its centre for both sets.
    radii = np.linspace(0, 8, 9) / (np.pi * 0.14 / 6173e-10) * u.rad
    assert np.array_equal(hmi_psf(radii), hmi_psf(radii, **ENHANCE_2018))
    assert hmi_psf(0 * u.rad) == pytest.approx(1.0) == hmi_psf(0 * u.rad, **WACHTER_2012)


def test_hmi_encircled_energy_grows_to_one_and_tail_is_slow():
    radii = [2, 4, 16, 64] * u.arcsec
    fractions = [hmi_encircled_energy(r) for r in radii]
    assert np.all(np.diff(fractions) > 0)
    assert fractions[-1] < 1
    # The r**-3 Lorentzian tail leaves ~ 2 pi eps W^3 / r_max of the energy outside r_max.
    assert 1 - fractions[-1] == pytest.approx(2 * np.pi * 0.1 * 3.4**3 / (64 * 3.4543) / 20.0926, rel=0.05)


@pytest.mark.parametrize("kind", ["hmi", "airy"])
@pytest.mark.parametrize("scale", [0.0662, 0.252, 0.504])
def test_kernel_sums_to_one_and_is_symmetric(kind, scale):
    kernel = psf_kernel(scale * u.arcsec, kind=kind, radius=5 * u.arcsec)
    n = int(round(5 / scale))
    assert kernel.shape == (2 * n + 1, 2 * n + 1)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(kernel, kernel[::-1, :], atol=1e-15)
    np.testing.assert_allclose(kernel, kernel[:, ::-1], atol=1e-15)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)
    assert np.unravel_index(np.argmax(kernel), kernel.shape) == (n, n)


def test_kernel_is_pixel_integrated():
    # Each kernel pixel holds the PSF averaged over the pixel's area, not the value at its centre.
    scale = 0.504
    kernel = psf_kernel(scale * u.arcsec, kind="airy", radius=2 * u.arcsec, oversample=21)
    sub = (np.arange(201) - 100) / 201 * scale  # fine samples within one pixel

    def pixel_mean(iy, ix):
        theta = np.hypot(iy * scale + sub[:, None], ix * scale + sub[None, :])
        return airy_psf(theta * u.arcsec).mean()

    expected = pixel_mean(0, 1) / pixel_mean(0, 0)
    centre = kernel.shape[0] // 2
    assert kernel[centre, centre + 1] / kernel[centre, centre] == pytest.approx(expected, rel=5e-3)
    point_ratio = airy_psf(scale * u.arcsec) / airy_psf(0 * u.arcsec)
    assert abs(expected - point_ratio) > 0.01  # point sampling would be measurably wrong here


def test_kernel_validation_messages():
    with pytest.raises(ValueError, match="kind must be one of"):
        psf_kernel(0.5 * u.arcsec, kind="gauss")
    with pytest.raises(ValueError, match="oversample must be an odd integer"):
        psf_kernel(0.5 * u.arcsec, oversample=4)
    with pytest.raises(u.UnitsError):
        psf_kernel(0.5 * u.m)
    with pytest.raises(ValueError, match="epsilon must lie in"):
        hmi_psf(1 * u.arcsec, epsilon=1.5)
    with pytest.raises(TypeError, match="no HMI parameters"):
        psf_kernel(0.5 * u.arcsec, kind="airy", w=3.0)


def test_airy_profile_is_bessel_formula():
    theta = np.array([0.1, 0.3, 0.7]) * u.arcsec
    x = np.pi * 0.28 * theta.to_value(u.rad) / 6173e-10
    np.testing.assert_allclose(airy_psf(theta), (2 * special.j1(x) / x) ** 2, rtol=1e-12)


def test_default_kernel_has_the_footprint_enhance_was_trained_with():
    # Díaz Baso & Asensio Ramos sampled the PSF on astropy's AiryDisk2DKernel(1.1 / 0.0662) grid: 133 x 133 px.
    astropy_convolution = pytest.importorskip("astropy.convolution")
    paper_grid = astropy_convolution.AiryDisk2DKernel(1.1 / 0.0662).shape
    assert psf_kernel(0.0662 * u.arcsec).shape == paper_grid == (133, 133)
    # The same angular footprint on the HMI grid; the wide radius keeps most of the Lorentzian tail.
    assert psf_kernel(0.504 * u.arcsec).shape == (19, 19)
    assert hmi_encircled_energy(DEFAULT_RADIUS) == pytest.approx(0.919, abs=1e-3)
    assert hmi_encircled_energy(WIDE_RADIUS) == pytest.approx(0.978, abs=1e-3)
