"""Richardson-Lucy and x2 interpolation: analytic facts and agreement with scikit-image."""

import astropy.units as u
import numpy as np
import pytest
from scipy import ndimage
from skimage.restoration import richardson_lucy as skimage_richardson_lucy

from enhance.analysis.baselines import bicubic_x2, richardson_lucy, rl_super_resolve, upsample_x2
from enhance.observation.degrade import bin_area, convolve
from enhance.observation.psf import psf_kernel


def _gaussian(sigma=1.5, half=4):
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    kernel = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _granules(shape=(48, 48), seed=0):
    rng = np.random.default_rng(seed)
    return 1.0 + 0.1 * ndimage.gaussian_filter(rng.normal(size=shape), 2.0, mode="wrap")


@pytest.mark.parametrize("boundary", ["wrap", "reflect"])
def test_delta_psf_returns_the_input(boundary):
    image = _granules()
    assert np.allclose(richardson_lucy(image, np.ones((1, 1)), n_iter=7, boundary=boundary), image, rtol=1e-12)
    signed = image - 1.0  # zero-mean, both signs: the offset must not change the answer
    assert np.allclose(richardson_lucy(signed, np.ones((1, 1)), n_iter=7, boundary=boundary), signed, atol=1e-12)
    assert np.allclose(richardson_lucy(signed, np.ones((1, 1)), n_iter=7, offset=0.0), signed, atol=1e-12)


def test_zero_iterations_return_the_input():
    image = _granules()
    assert np.array_equal(richardson_lucy(image, _gaussian(), n_iter=0), image)


def test_keeps_total_flux_and_stays_non_negative():
    image = _granules()
    image[10:20, 5:30] = 0.0  # dark, exactly zero: a multiplicative update must not go below it
    blurred = convolve(image, _gaussian())
    result = richardson_lucy(blurred, _gaussian(), n_iter=30, boundary="wrap")
    assert result.sum() == pytest.approx(blurred.sum(), rel=1e-12)
    assert result.min() >= 0.0


def test_matches_scikit_image_on_a_compact_source():
    # A source far from the edges: zero padding (scikit-image) and our periodic grid then agree, and any
    # constant start gives the same first iterate.
    rng = np.random.default_rng(3)
    scene = np.zeros((64, 64))
    scene[24:40, 22:42] = rng.uniform(0.5, 2.0, (16, 20))
    psf = _gaussian(1.5)
    blurred = ndimage.convolve(scene, psf, mode="constant")
    expected = skimage_richardson_lucy(blurred, psf, num_iter=15, clip=False)
    for boundary in ("wrap", "reflect"):
        ours = richardson_lucy(blurred, psf, n_iter=15, boundary=boundary)
        assert np.allclose(ours, expected, rtol=1e-8, atol=1e-10)


def test_asymmetric_psf_uses_its_mirror_in_the_back_projection():
    rng = np.random.default_rng(4)
    scene = np.zeros((48, 48))
    scene[18:30, 16:32] = rng.uniform(0.5, 2.0, (12, 16))
    psf = np.zeros((5, 5))
    psf[2, 2], psf[2, 3], psf[1, 2] = 0.6, 0.3, 0.1
    blurred = ndimage.convolve(scene, psf, mode="constant")
    expected = skimage_richardson_lucy(blurred, psf, num_iter=8, clip=False)
    assert np.allclose(richardson_lucy(blurred, psf, n_iter=8), expected, rtol=1e-8, atol=1e-10)


def test_first_iterate_is_the_back_projected_data_for_any_offset():
    signed = _granules(seed=2) - 1.0
    psf = _gaussian()
    back = convolve(signed, psf, boundary="wrap")
    for offset in (None, 0.0, 5.0):
        once = richardson_lucy(signed, psf, n_iter=1, boundary="wrap", offset=offset)
        assert np.allclose(once, back, atol=1e-12)


def test_signed_data_keep_net_flux_and_stay_bounded():
    rng = np.random.default_rng(5)
    field = 800 * ndimage.gaussian_filter(rng.normal(size=(48, 48)), 1.5, mode="wrap")  # gauss, both polarities
    field /= np.abs(field).max() / 1500
    blurred = convolve(field, _gaussian(2.0))
    result, info = richardson_lucy(blurred, _gaussian(2.0), n_iter=20, boundary="wrap", return_info=True)
    assert info["offset"] == pytest.approx(2 * np.abs(blurred).max())
    assert result.sum() == pytest.approx(blurred.sum(), abs=1e-6 * np.abs(blurred).sum())
    assert np.abs(result).max() < 2 * np.abs(field).max()


def test_deconvolution_recovers_sharper_structure():
    scene = _granules((64, 64), seed=6)
    kernel = psf_kernel(0.252 * u.arcsec, radius=4 * u.arcsec)
    blurred = convolve(scene, kernel)
    result = richardson_lucy(blurred, kernel, n_iter=20, boundary="wrap")
    assert np.std(result - scene) < 0.6 * np.std(blurred - scene)


def test_default_psf_is_hmi_at_the_image_scale():
    image = _granules((40, 40))
    explicit = richardson_lucy(image, psf_kernel(0.3 * u.arcsec), n_iter=3, pixel_scale=0.3 * u.arcsec)
    assert np.allclose(richardson_lucy(image, n_iter=3, pixel_scale=0.3 * u.arcsec), explicit)
    assert np.allclose(richardson_lucy(image, n_iter=3), richardson_lucy(image, psf_kernel(0.252 * u.arcsec), n_iter=3))


def test_damped_variant_resets_runaway_pixels_to_the_data():
    image = np.ones((40, 40))
    image[20, 20] = 30.0  # a one-pixel spike no blurred image can hold: its residual stays huge
    psf = _gaussian(2.0)
    plain = richardson_lucy(image, psf, n_iter=5)
    damped, info = richardson_lucy(image, psf, n_iter=5, damped=True, return_info=True)
    assert damped[20, 20] == pytest.approx(30.0)
    assert abs(plain[20, 20] - 30.0) > 1.0  # plain RL is still far from the spike
    assert all(n >= 1 for n in info["damped_pixels"])


def test_early_stopping_rules():
    scene = _granules((48, 48), seed=7)
    psf = _gaussian(2.0)
    noise = 0.003
    noisy = convolve(scene, psf) + np.random.default_rng(8).normal(0, noise, scene.shape)
    _, info = richardson_lucy(noisy, psf, n_iter=200, noise=noise, boundary="wrap", return_info=True)
    assert info["stopped"] == "noise"
    assert info["n_iter"] < 200
    assert info["residual_rms"][-1] <= noise < info["residual_rms"][-2]
    _, info = richardson_lucy(noisy, psf, n_iter=500, tol=1e-3, return_info=True)
    assert info["stopped"] == "tol"
    assert info["n_iter"] < 500


@pytest.mark.parametrize("signed", [False, True])
def test_callback_sees_every_iterate_and_can_stop(signed):
    scene = _granules((32, 32), seed=3) - (1.0 if signed else 0.0)  # signed: the offset path
    blurred = convolve(scene, _gaussian(1.5))
    seen = {}

    def record(k, estimate):
        seen[k] = estimate
        return k == 7

    final, info = richardson_lucy(blurred, _gaussian(1.5), n_iter=20, callback=record, return_info=True)
    assert sorted(seen) == list(range(1, 8))
    assert info["stopped"] == "callback"
    assert info["n_iter"] == 7
    np.testing.assert_array_equal(final, seen[7])
    np.testing.assert_allclose(seen[4], richardson_lucy(blurred, _gaussian(1.5), n_iter=4), rtol=0, atol=1e-12)


def test_preserves_float32():
    image = _granules((32, 32)).astype(np.float32)
    assert richardson_lucy(image, _gaussian(), n_iter=2).dtype == np.float32
    assert upsample_x2(image).dtype == np.float32


@pytest.mark.parametrize("method", ["bicubic", "bilinear"])
def test_upsampling_puts_output_centres_at_half_input_pixels(method):
    # A linear ramp is reproduced exactly (away from the mirrored edges) at input coordinate (k + 0.5)/2 - 0.5.
    ny, nx = 40, 48
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    ramp = 0.3 * xx - 0.7 * yy + 2.0
    out = upsample_x2(ramp, method=method)
    centres_y = (np.arange(2 * ny) + 0.5) / 2 - 0.5
    centres_x = (np.arange(2 * nx) + 0.5) / 2 - 0.5
    expected = 0.3 * centres_x[None, :] - 0.7 * centres_y[:, None] + 2.0
    inner = np.s_[24:-24, 24:-24]
    assert out.shape == (2 * ny, 2 * nx)
    assert np.allclose(out[inner], expected[inner], atol=1e-6)


def test_nearest_upsampling_repeats_pixels_and_bicubic_keeps_a_constant():
    image = _granules((10, 12))
    assert np.array_equal(upsample_x2(image, method="nearest"), np.repeat(np.repeat(image, 2, 0), 2, 1))
    assert np.array_equal(bin_area(upsample_x2(image, method="nearest"), 2), image)
    assert np.allclose(bicubic_x2(np.full((9, 7), 3.0)), 3.0)


def test_rl_super_resolve_deconvolves_on_the_x2_grid():
    image = _granules((24, 24))
    expected = richardson_lucy(bicubic_x2(image), psf_kernel(0.252 * u.arcsec), n_iter=4)
    result = rl_super_resolve(image, n_iter=4)
    assert result.shape == (48, 48)
    assert np.allclose(result, expected)
    coarse = rl_super_resolve(image, n_iter=2, input_scale=1.0 * u.arcsec, method="bilinear")
    expected = richardson_lucy(upsample_x2(image, method="bilinear"), psf_kernel(0.5 * u.arcsec), n_iter=2)
    assert np.allclose(coarse, expected)


def test_errors_name_the_bad_value():
    image = _granules((16, 16))
    with pytest.raises(ValueError, match="n_iter must be an integer >= 0, got -1"):
        richardson_lucy(image, _gaussian(), n_iter=-1)
    with pytest.raises(ValueError, match=r"psf must have odd sizes.*\(4, 4\)"):
        richardson_lucy(image, np.ones((4, 4)))
    with pytest.raises(ValueError, match="boundary must be one of"):
        richardson_lucy(image, _gaussian(), boundary="zero")
    with pytest.raises(ValueError, match="method must be one of.*'lanczos'"):
        upsample_x2(image, method="lanczos")
    bad = image.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="image must be finite, got 1 NaN"):
        rl_super_resolve(bad)
    with pytest.raises(ValueError, match="psf must have a positive sum"):
        richardson_lucy(image, np.zeros((3, 3)))
