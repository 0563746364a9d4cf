"""Image metrics: spectra, contrast, PSNR/SSIM, flux, density scatter and the consistency test."""

import astropy.units as u
import numpy as np
import pytest
import scipy.fft

from enhance.analysis.baselines import bicubic_x2, rl_super_resolve
from enhance.analysis.metrics import (
    consistency,
    consistency_map,
    contrast,
    density_scatter,
    power_spectrum,
    psnr,
    quiet_region,
    reconvolve,
    scale_region,
    ssim,
    temporal_flicker,
    total_flux,
    unsigned_flux,
    white_noise_level,
    white_noise_power,
)
from enhance.observation.degrade import degrade


def _scene(n=256, *, seed=0, slope=3.0):
    """A periodic random scene with a power-law spectrum, ~15 % RMS about 1 (granulation-like)."""
    rng = np.random.default_rng(seed)
    k = np.hypot(scipy.fft.fftfreq(n)[:, None], scipy.fft.fftfreq(n)[None, :])
    k[0, 0] = 1.0
    amplitude = k ** (-slope / 2)
    amplitude[0, 0] = 0.0
    field = scipy.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.uniform(size=(n, n)))).real
    return 1.0 + 0.15 * field / field.std()


@pytest.fixture(scope="module")
def degraded():
    # 0.126 arcsec = 0.504 / 4: the HMI-like image is 64x64, the target 128x128, both from the same scene.
    return degrade(_scene(), 0.126 * u.arcsec)


def test_sinusoid_spectrum_peaks_at_its_frequency_and_contrast_is_a_over_root2():
    x = np.arange(128)
    wave = 1.0 + 0.1 * np.sin(2 * np.pi * x / 8)[None, :] * np.ones((128, 1))
    frequency, power = power_spectrum(wave, 0.252 * u.arcsec, window=None)
    assert frequency[np.argmax(power)].to_value(1 / u.arcsec) == pytest.approx(1 / (8 * 0.252))
    assert contrast(wave) == pytest.approx(0.1 / np.sqrt(2), rel=1e-6)


def test_psnr_is_infinite_for_identical_images_and_follows_its_formula():
    reference = np.linspace(0.0, 2.0, 400).reshape(20, 20)
    assert psnr(reference, reference) == np.inf
    assert psnr(reference + 0.02, reference) == pytest.approx(20 * np.log10(2.0 / 0.02))
    noise = np.random.default_rng(1).normal(0, 0.05, reference.shape)
    mse = np.mean(noise**2)
    assert psnr(reference + noise, reference) == pytest.approx(10 * np.log10(4.0 / mse))
    assert psnr(reference + noise, reference, data_range=1.0) == pytest.approx(10 * np.log10(1.0 / mse))
    with_nan = reference + noise
    with_nan[0, 0] = np.nan  # ignored
    assert np.isfinite(psnr(with_nan, reference))


def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    reference = _scene(64, seed=2)
    assert ssim(reference, reference) == pytest.approx(1.0)
    noisy = reference + np.random.default_rng(3).normal(0, 0.1, reference.shape)
    assert ssim(noisy, reference) < 0.9
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(np.ones((5, 5)), np.arange(25.0).reshape(5, 5))
    with pytest.raises(ValueError, match="same shape"):
        ssim(np.ones((8, 8)), np.ones((9, 9)))


def test_flux_of_a_known_magnetogram():
    field = np.full((10, 20), 100.0)  # gauss
    field[:, :5] = -300.0  # 50 px at -300 G, 150 px at +100 G: net 0
    pixel_area = ((1 * u.AU) * (0.5 * u.arcsec).to_value(u.rad)).to(u.cm) ** 2
    unsigned = unsigned_flux(field, 0.5 * u.arcsec)
    assert unsigned.unit == u.Mx
    assert unsigned.to_value(u.Mx) == pytest.approx((150 * 100 + 50 * 300) * pixel_area.value, rel=1e-12)
    assert total_flux(field, 0.5 * u.arcsec).to_value(u.Mx) == pytest.approx(0.0, abs=1e-3 * unsigned.value)
    near = unsigned_flux(field, 0.5 * u.arcsec, distance=0.5 * u.AU)
    assert near.to_value(u.Mx) == pytest.approx(unsigned.to_value(u.Mx) / 4)
    field[0, 0] = np.nan  # off-limb pixels are ignored
    assert np.isfinite(unsigned_flux(field).value)


def test_white_noise_level_recovers_the_noise_and_its_power():
    sigma = 12.0
    noise = np.random.default_rng(4).normal(0, sigma, (256, 256))
    assert white_noise_level(noise, 0.252 * u.arcsec) == pytest.approx(sigma, rel=0.05)
    band = [0.5, 1.0] / u.arcsec
    assert white_noise_level(noise, 0.252 * u.arcsec, band=band, window=None) == pytest.approx(sigma, rel=0.05)
    _, power = power_spectrum(noise, 0.252 * u.arcsec, window=None)
    assert np.median(power) == pytest.approx(white_noise_power(sigma, 0.252 * u.arcsec), rel=0.05)
    with pytest.raises(ValueError, match="holds no frequency"):
        white_noise_level(noise, 0.252 * u.arcsec, band=[5, 6] / u.arcsec)


def test_quiet_region_avoids_a_spot_and_scales_to_the_x2_grid():
    granulation = 1.0 + 0.04 * np.random.default_rng(5).normal(size=(80, 80))
    granulation[10:50, 5:45] = 0.3  # umbra
    region = quiet_region(granulation, size=24)
    rows, cols = region
    assert rows.stop - rows.start == 24
    assert cols.stop - cols.start == 24
    assert granulation[region].min() > 0.8  # clear of the spot
    assert contrast(granulation, region=region) < 0.05
    assert scale_region(region, 2) == (slice(2 * rows.start, 2 * rows.stop), slice(2 * cols.start, 2 * cols.stop))


def test_density_scatter_pairs_output_pixels_with_the_input_at_their_centres():
    image = np.random.default_rng(6).normal(size=(16, 16))
    counts, edges = density_scatter(image, image, bins=12)
    assert counts.shape == (12, 12)
    assert edges.size == 13
    assert np.trace(counts) == counts.sum()
    up = bicubic_x2(image)
    counts, _ = density_scatter(image, up, bins=12, limits=(-5, 5))
    assert counts.sum() == up.size
    assert np.trace(counts) == up.size
    counts, _ = density_scatter(image, 2 * up, bins=10, limits=(-5, 5))
    assert np.trace(counts) < up.size
    with pytest.raises(ValueError, match="twice it"):
        density_scatter(image, np.ones((20, 20)))


def test_reconvolve_keeps_a_constant_and_lands_on_the_input_grid():
    assert np.allclose(reconvolve(np.full((40, 60), 2.5)), 2.5)
    assert np.allclose(reconvolve(np.full((40, 60), 2.5), resolution="object"), 2.5)
    with pytest.raises(ValueError, match=r"even sizes.*\(41, 60\)"):
        reconvolve(np.ones((41, 60)))
    with pytest.raises(ValueError, match="resolution must be one of"):
        reconvolve(np.ones((40, 60)), resolution="hinode")


def test_the_target_of_a_scene_is_consistent_with_its_hmi_image(degraded):
    observed, target = degraded
    exact = consistency(target, observed, boundary="wrap")
    assert exact < 3e-4  # only the aliasing of the samplings
    assert consistency(target, observed) < 2e-3  # mirrored edges of a periodic scene
    wrong = {
        "interpolated": bicubic_x2(observed),  # HMI's blur, twice
        "shifted": np.roll(target, 1, axis=1),  # one output pixel off
        "brighter": 1.01 * target,
    }
    for name, output in wrong.items():
        assert consistency(output, observed, boundary="wrap") > 10 * exact, name


def test_richardson_lucy_is_consistent_under_the_full_hmi_psf(degraded):
    observed, _ = degraded
    rl = rl_super_resolve(observed, n_iter=20, boundary="wrap")
    assert consistency(rl, observed, resolution="object", boundary="wrap") < 3e-3
    assert consistency(bicubic_x2(observed), observed, resolution="object", boundary="wrap") > 2e-3


def test_consistency_map_is_signed_on_the_input_grid_and_skips_nan(degraded):
    observed, target = degraded
    residual = consistency_map(1.02 * target, observed, boundary="wrap")
    assert residual.shape == observed.shape
    assert np.allclose(residual, 0.02 * observed, atol=2e-3)
    holed = observed.copy()
    holed[5, 7] = np.nan
    output = target.copy()
    output[30:32, 40:42] = np.nan  # one whole input pixel missing in the output
    residual = consistency_map(output, holed, boundary="wrap")
    assert np.isnan(residual[5, 7])
    assert np.isnan(residual[15, 20])
    assert np.count_nonzero(np.isnan(residual)) == 2
    assert consistency(output, holed, boundary="wrap") < 3e-4
    with pytest.raises(ValueError, match="twice the input's shape"):
        consistency_map(target, observed[:-1])
    with pytest.raises(ValueError, match="zero"):
        consistency(np.zeros((8, 8)), np.zeros((4, 4)))


def test_temporal_flicker_of_a_static_scene_is_zero_and_of_added_noise_its_predicted_value():
    rng = np.random.default_rng(4)
    upsampled = 1 + 0.05 * rng.normal(size=(10, 128, 128))  # the interpolated frames of an evolving scene
    added = 0.02 * rng.normal(size=(128, 128))  # what the method adds, the same in every frame
    static = np.broadcast_to(upsampled[0], upsampled.shape)  # a static scene: every frame the same
    assert temporal_flicker(static + added, static) == 0.0
    assert temporal_flicker(upsampled + added, upsampled) == pytest.approx(0.0, abs=1e-12)  # the same enhancement
    # Added per-frame white noise of s: F = sqrt(2) s / sqrt(<D^2> + s^2).
    s = 0.01
    noisy = upsampled + added + s * rng.normal(size=upsampled.shape)
    predicted = np.sqrt(2) * s / np.sqrt(np.mean(added**2) + s**2)
    assert temporal_flicker(noisy, upsampled) == pytest.approx(predicted, rel=0.01)
    # Frames enhanced independently of each other: sqrt(2).
    independent = upsampled + 0.02 * rng.normal(size=upsampled.shape)
    assert temporal_flicker(independent, upsampled) == pytest.approx(np.sqrt(2), rel=0.01)


def test_temporal_flicker_leaves_out_missing_pixels_and_refuses_bad_stacks():
    upsampled = np.zeros((3, 8, 8))
    enhanced = upsampled + np.arange(64.0).reshape(8, 8)
    enhanced[1, 2, 3] = np.nan  # missing in one frame: left out of every frame
    jumped = enhanced.copy()
    jumped[2, 2, 3] = 1e6  # a jump where a frame is missing does not count
    assert temporal_flicker(jumped, upsampled) == 0.0
    assert np.isnan(temporal_flicker(upsampled, upsampled))  # nothing added: undefined
    with pytest.raises(ValueError, match="at least two frames, got 1"):
        temporal_flicker(enhanced[:1], upsampled[:1])
    with pytest.raises(ValueError, match=r"stacks of one shape, got \(3, 8, 8\) and \(3, 8, 7\)"):
        temporal_flicker(enhanced, upsampled[:, :, :7])
