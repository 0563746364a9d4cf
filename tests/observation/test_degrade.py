import astropy.units as u
import numpy as np
import pytest

from enhance.observation.degrade import bin_area, convolve, degrade
from enhance.observation.psf import psf_kernel


def test_delta_convolved_with_kernel_gives_kernel():
    kernel = psf_kernel(0.504 * u.arcsec, radius=4 * u.arcsec)
    delta = np.zeros((41, 41))
    delta[20, 20] = 1
    out = convolve(delta, kernel)
    np.testing.assert_allclose(out[12:29, 12:29], kernel, atol=1e-15)
    assert out.sum() == pytest.approx(1.0)


def test_convolve_kernel_larger_than_image_wraps_periodically():
    rng = np.random.default_rng(0)
    image = rng.random((7, 9))
    kernel = rng.random((21, 21))
    out = convolve(image, kernel, boundary="wrap")
    # Direct periodic sum.
    expected = np.zeros_like(image)
    for dy in range(-10, 11):
        for dx in range(-10, 11):
            expected += kernel[dy + 10, dx + 10] * np.roll(image, (dy, dx), axis=(0, 1))
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_convolve_reflect_keeps_constant():
    kernel = psf_kernel(0.252 * u.arcsec, radius=3 * u.arcsec)
    out = convolve(np.full((10, 13), 4.2), kernel, boundary="reflect")
    np.testing.assert_allclose(out, 4.2, rtol=1e-12)


def test_bin_area_integer_and_fractional_factors_keep_the_mean():
    rng = np.random.default_rng(1)
    image = rng.random((90, 60))
    np.testing.assert_allclose(bin_area(image, 3), image.reshape(30, 3, 20, 3).mean(axis=(1, 3)))
    fractional = bin_area(image, 7.5)  # 12 x 8 output pixels cover the whole image exactly
    assert fractional.shape == (12, 8)
    assert fractional.mean() == pytest.approx(image.mean(), rel=1e-12)


def test_bin_area_fractional_weights_by_overlap():
    image = np.arange(5.0)[None, :] * np.ones((5, 1))
    out = bin_area(image, 2.5)  # first pixel: columns 0, 1 and half of 2
    assert out[0, 0] == pytest.approx((0 + 1 + 0.5 * 2) / 2.5)
    assert out[0, 1] == pytest.approx((0.5 * 2 + 3 + 4) / 2.5)


def test_degrade_constant_scene_stays_constant():
    observed, target = degrade(np.full((300, 230), 0.83), 0.0662 * u.arcsec, radius=4 * u.arcsec)
    assert observed.shape == (39, 30)
    assert target.shape == (78, 60)
    np.testing.assert_allclose(observed, 0.83, rtol=1e-12)
    np.testing.assert_allclose(target, 0.83, rtol=1e-12)


def test_degrade_conserves_the_mean_of_a_periodic_scene():
    rng = np.random.default_rng(2)
    # 0.504 / 0.063 = 8 hires pixels per HMI pixel: the grids cover the scene exactly.
    scene = rng.random((160, 240))
    observed, target = degrade(scene, 0.063 * u.arcsec, radius=3 * u.arcsec)
    assert observed.mean() == pytest.approx(scene.mean(), rel=1e-12)
    assert target.mean() == pytest.approx(scene.mean(), rel=1e-12)


def test_degrade_pixel_area_alignment():
    # A bright square that fills exactly HMI pixel (3, 5): with the PSFs switched to a delta
    # (tiny telescope-independent kernels), target pixels 6..7 x 10..11 hold it and nothing else.
    scene = np.zeros((96, 96))
    scene[24:32, 40:48] = 1.0  # 8 hires pixels per HMI pixel at 0.063"/px
    observed, target = degrade(
        scene, 0.063 * u.arcsec, radius=0.0001 * u.arcsec, hmi_params={"epsilon": 0.0}, target_diameter=1000 * u.m
    )
    assert np.unravel_index(np.argmax(observed), observed.shape) == (3, 5)
    assert observed[3, 5] == pytest.approx(1.0)
    np.testing.assert_allclose(target[6:8, 10:12], 1.0)
    assert target.sum() == pytest.approx(4.0)


def test_degrade_noise_is_reproducible_and_has_the_requested_sigma():
    scene = np.ones((800, 800))
    a, _ = degrade(scene, 0.0662 * u.arcsec, noise=1e-3, rng=np.random.default_rng(5), radius=2 * u.arcsec)
    b, _ = degrade(scene, 0.0662 * u.arcsec, noise=1e-3, rng=np.random.default_rng(5), radius=2 * u.arcsec)
    np.testing.assert_array_equal(a, b)
    assert np.std(a) == pytest.approx(1e-3, rel=0.05)


def test_degrade_blurs_more_for_hmi_than_for_the_target():
    scene = np.zeros((304, 304))
    scene[::16, :] = 1.0  # thin lines every 1 arcsec
    observed, target = degrade(scene, 0.0625 * u.arcsec, input_scale=0.5 * u.arcsec, radius=4 * u.arcsec)
    assert observed.std() / observed.mean() < target.std() / target.mean()


def test_degrade_errors_name_the_problem():
    with pytest.raises(ValueError, match="hires must be 2-D"):
        degrade(np.ones((2, 30, 30)), 0.0662 * u.arcsec)
    with pytest.raises(ValueError, match="hires must be finite"):
        degrade(np.full((30, 30), np.nan), 0.0662 * u.arcsec)
    with pytest.raises(ValueError, match="pixel_scale must be finer"):
        degrade(np.ones((30, 30)), 0.3 * u.arcsec)
    with pytest.raises(ValueError, match="noise must be"):
        degrade(np.ones((300, 300)), 0.0662 * u.arcsec, noise=-1)
