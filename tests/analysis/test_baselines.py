"""Richardson-Lucy and x2 interpolation: analytic facts and agreement with scikit-image."""

import astropy.units as u
import numpy as np
import pytest
from scipy import ndimage
from skimage.restoration import richardson_lucy as skimage_richardson_lucy

from enhance.analysis.baselines import (
    ForwardModel,
    bicubic_x2,
    richardson_lucy,
    rl_super_resolve,
    rl_target,
    rl_target_best,
    upsample_x2,
    wiener_target,
)
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


# --- RL+target and Wiener with the exact forward model (HMI PSF on the x2 grid, 2x2 binning, Airy target) ----


def _observe(scene, model):
    """The forward model written out independently: PSF on the x2 grid, then 2x2 area means."""
    return bin_area(convolve(scene, model.hmi_kernel(), boundary="wrap"), 2)


def _band_limited(shape=(96, 96), seed=11, cutoff=0.35):
    """A positive scene on the x2 grid with no power above ``cutoff`` cycles/pixel (< 0.25: no aliasing)."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.normal(size=shape))
    fy, fx = np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1])
    spectrum[np.hypot(fy[:, None], fx[None, :]) > cutoff / 2] = 0
    field = np.fft.ifft2(spectrum).real
    return 1.0 + 0.15 * field / field.std()


@pytest.mark.parametrize("boundary", ["wrap", "reflect"])
def test_rl_target_and_wiener_keep_a_constant_exactly(boundary):
    model = ForwardModel(boundary=boundary)
    image = np.full((20, 26), 1.7)
    assert rl_target(image, model, n_iter=25, stop="n_iter").shape == (40, 52)
    np.testing.assert_allclose(rl_target(image, model, n_iter=25, stop="n_iter"), 1.7, rtol=0, atol=1e-12)
    np.testing.assert_allclose(wiener_target(image, model, noise=1e-3), 1.7, rtol=0, atol=1e-12)
    np.testing.assert_allclose(wiener_target(image - 1.7, model, noise=1e-3), 0.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["rl", "wiener"])
def test_point_source_keeps_its_flux_and_the_symmetry_of_its_pixel(method):
    model = ForwardModel(boundary="wrap")
    n, c = 24, 9
    image = np.full((n, n), 0.01)
    image[c, c] += 1.0
    if method == "rl":
        out = rl_target(image, model, n_iter=40, stop="n_iter")
    else:
        out = wiener_target(image, model, noise=1e-4)
    # Periodic grid, unit-sum kernels: 4 x2 pixels per input pixel hold its flux.
    assert out.sum() == pytest.approx(4 * image.sum(), rel=1e-10)
    # Input pixel c covers x2 pixels 2c and 2c + 1: the estimate is mirror-symmetric about 2c + 1/2 ...
    mirror = np.mod(4 * c + 1 - np.arange(2 * n), 2 * n)
    np.testing.assert_allclose(out, out[mirror], rtol=0, atol=1e-10)
    np.testing.assert_allclose(out, out[:, mirror], rtol=0, atol=1e-10)
    np.testing.assert_allclose(out, out.T, rtol=0, atol=1e-10)  # ... and under the diagonal flip
    assert np.unravel_index(np.argmax(out), out.shape) in {(2 * c + a, 2 * c + b) for a in (0, 1) for b in (0, 1)}


def test_rl_target_converges_to_the_target_on_a_band_limited_scene():
    model = ForwardModel(boundary="wrap")
    scene = _band_limited()
    image = _observe(scene, model)
    target = convolve(scene, model.target_kernel(), boundary="wrap")

    def error(estimate):
        return float(np.sqrt(np.mean((estimate - target) ** 2)))

    errors = [error(rl_target(image, model, n_iter=k, stop="n_iter")) for k in (3, 30, 300)]
    start = error(bicubic_x2(image))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05 * start
    _, info = rl_target(image, model, n_iter=300, stop="n_iter", return_info=True)
    assert info["residual_rms"][-1] < 1e-2 * info["residual_rms"][1]


def test_rl_target_stops_where_the_residual_crosses_the_noise():
    model = ForwardModel(boundary="wrap")
    scene = _band_limited(seed=12)
    sigma = 2e-3
    image = _observe(scene, model) + np.random.default_rng(13).normal(0, sigma, (48, 48))
    out, info = rl_target(image, model, noise=sigma, n_iter=2000, return_info=True)
    assert info["stopped"] == "discrepancy"
    assert 1 < info["n_iter"] < 2000
    assert info["residual_rms"][-1] <= sigma < info["residual_rms"][-2]
    assert len(info["residual_rms"]) == info["n_iter"] + 1
    np.testing.assert_allclose(out, rl_target(image, model, n_iter=info["n_iter"], stop="n_iter"), atol=1e-12)
    # Without a noise level it is estimated from the image (an upper bound): it stops no later.
    _, estimated = rl_target(image, model, n_iter=2000, return_info=True)
    assert estimated["noise"] >= 0.9 * sigma
    assert estimated["n_iter"] <= info["n_iter"] + 1


def test_wiener_without_noise_inverts_the_forward_model():
    # A target telescope so large that its Airy pattern is a delta on the x2 grid: the output is the estimate.
    model = ForwardModel(boundary="wrap", target_diameter=1e4)
    assert model.target_kernel().max() == pytest.approx(1.0, abs=1e-9)
    scene = _band_limited(seed=14)
    image = _observe(scene, model)
    estimate, info = wiener_target(image, model, noise=0, return_info=True)
    assert info["noise"] == 0
    np.testing.assert_allclose(_observe(estimate, model), image, rtol=0, atol=1e-9)
    # In the band the data sample without aliasing, the estimate is the scene wherever the prior
    # leaves the aliases little weight: most of the error of bicubic interpolation is gone.
    assert np.std(estimate - scene) < 0.25 * np.std(bicubic_x2(image) - scene)
    # Noise far above the signal leaves only the mean (Tikhonov shrinkage of every other frequency).
    flat = wiener_target(image, model, noise=1e6, slope=2.0)
    np.testing.assert_allclose(flat, image.mean(), rtol=0, atol=1e-6)


def test_rl_target_best_picks_the_iteration_closest_to_the_truth():
    model = ForwardModel(boundary="wrap")
    scene = _band_limited(seed=15)
    image = _observe(scene, model) + np.random.default_rng(16).normal(0, 0.02, (48, 48))
    truth = convolve(scene, model.target_kernel(), boundary="wrap")
    counts = (1, 3, 10, 30, 100, 300, 1000)
    best, k = rl_target_best(image, truth, model, iterations=counts)
    errors = {n: np.sqrt(np.mean((rl_target(image, model, n_iter=n, stop="n_iter") - truth) ** 2)) for n in counts}
    assert k == min(errors, key=errors.get)
    assert 1 < k < 1000  # noisy data: it stops before fitting the noise
    np.testing.assert_allclose(best, rl_target(image, model, n_iter=k, stop="n_iter"), atol=1e-12)


def test_signed_magnetogram_through_rl_target_keeps_polarity_and_net_flux():
    model = ForwardModel(boundary="wrap")
    field = 800.0 * (_band_limited(seed=17) - 1.0) / 0.15
    image = _observe(field, model)
    out, info = rl_target(image, model, n_iter=50, stop="n_iter", return_info=True)
    assert info["offset"] == pytest.approx(2 * np.abs(image).max())
    assert out.sum() == pytest.approx(4 * image.sum(), abs=1e-8 * np.abs(image).sum())
    target = convolve(field, model.target_kernel(), boundary="wrap")
    assert np.std(out - target) < 0.5 * np.std(bicubic_x2(image) - target)


def test_forward_model_takes_quantities_and_names_bad_values():
    model = ForwardModel(input_scale=0.504 * u.arcsec, radius=4 * u.arcsec, target_diameter=28 * u.cm)
    assert model == ForwardModel(radius=4.0)
    assert model.output_scale == pytest.approx(0.252)
    assert model.hmi_kernel().shape == (2 * round(4 / 0.252) + 1,) * 2
    np.testing.assert_allclose(model.hmi_kernel(), psf_kernel(0.252 * u.arcsec, radius=4 * u.arcsec, oversample=1))
    wachter = ForwardModel(hmi_params={"w": 1.8, "W": 3.0, "epsilon": 0.1, "k": 3.0})
    assert not np.allclose(wachter.hmi_kernel(), ForwardModel().hmi_kernel())
    with pytest.raises(ValueError, match="boundary must be one of"):
        ForwardModel(boundary="zero")
    with pytest.raises(ValueError, match="stop must be one of"):
        rl_target(np.ones((8, 8)), stop="tol")
    with pytest.raises(ValueError, match="truth must have twice the shape"):
        rl_target_best(np.ones((8, 8)), np.ones((8, 8)))
