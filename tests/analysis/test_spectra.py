"""Power spectra against analytic cases: white noise is flat at sigma^2 dx^2, a sine peaks at its frequency, and
the normalisation follows the pixel scale."""

import astropy.units as u
import numpy as np
import pytest

from enhance.analysis.spectra import power_spectrum, white_noise_level, white_noise_power

DX = 0.5 * u.arcsec


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(0).normal(0.0, 3.0, (256, 256))


@pytest.mark.parametrize("window", [None, "hann"])
def test_the_spectrum_of_white_noise_is_flat_at_sigma_squared_dx_squared(noise, window):
    frequency, power = power_spectrum(noise, DX, window=window)
    level = white_noise_power(3.0, DX)
    assert level == pytest.approx(9.0 * 0.25)
    outer = frequency.to_value(1 / u.arcsec) > 0.25  # annuli of many pixels: a small sampling error
    assert np.mean(power[outer]) == pytest.approx(level, rel=0.03)
    for band in np.array_split(power[outer], 4):  # flat: the same level in each quarter of the frequencies
        assert np.mean(band) == pytest.approx(level, rel=0.08)


def test_a_sine_peaks_at_its_frequency_whatever_the_window():
    y, x = np.mgrid[0:96, 0:128]
    wave = 2.0 + np.sin(2 * np.pi * (x / 16 + y / 12))  # |k| = hypot(1/16, 1/12) per pixel = 1/9.6
    for window in (None, "hann"):
        frequency, power = power_spectrum(wave, DX, window=window)
        expected = np.hypot(1 / 16, 1 / 12) / DX.to_value(u.arcsec)
        step = 1 / (96 * DX.to_value(u.arcsec))  # the annulus width
        assert abs(frequency[np.argmax(power)].to_value(1 / u.arcsec) - expected) <= step / 2


def test_frequencies_run_from_the_first_annulus_to_nyquist():
    frequency, power = power_spectrum(np.random.default_rng(1).random((64, 80)), DX)
    f = frequency.to_value(1 / u.arcsec)
    assert frequency.unit == 1 / u.arcsec
    assert f[0] == pytest.approx(1 / (64 * 0.5))
    assert f[-1] == pytest.approx(1 / (2 * 0.5))  # Nyquist of the shorter axis
    assert len(f) == len(power) == 32
    assert np.all(np.diff(f) > 0)


def test_the_mean_is_removed_and_the_power_scales_with_the_pixel_area(noise):
    _, power = power_spectrum(noise, DX, window=None)
    _, shifted = power_spectrum(noise + 1000.0, DX, window=None)
    np.testing.assert_allclose(shifted, power, rtol=1e-9)
    frequency2, power2 = power_spectrum(noise, 2 * DX, window=None)
    np.testing.assert_allclose(power2, 4 * power, rtol=1e-12)  # arcsec^2 per frequency cell
    np.testing.assert_allclose(
        frequency2.to_value(1 / u.arcsec), power_spectrum(noise, DX)[0].to_value(1 / u.arcsec) / 2
    )
    _, in_arcmin = power_spectrum(noise, DX.to(u.arcmin), window=None)
    np.testing.assert_allclose(in_arcmin, power, rtol=1e-12)


def test_white_noise_level_gives_back_sigma_in_any_band(noise):
    assert white_noise_level(noise, DX) == pytest.approx(3.0, rel=0.02)
    assert white_noise_level(noise, DX, band=[0.2, 0.5] / u.arcsec) == pytest.approx(3.0, rel=0.02)
    assert white_noise_level(noise * 10, DX, window=None) == pytest.approx(30.0, rel=0.02)


def test_white_noise_level_of_a_smooth_scene_plus_noise_is_the_noise():
    y, x = np.mgrid[0:256, 0:256]
    scene = 100 * np.sin(2 * np.pi * x / 64) * np.cos(2 * np.pi * y / 128)  # power only at low frequencies
    rng = np.random.default_rng(2)
    assert white_noise_level(scene + rng.normal(0, 1.5, scene.shape), DX) == pytest.approx(1.5, rel=0.05)


def test_bad_arguments_are_refused_in_one_line(noise):
    cases = [
        (lambda: power_spectrum(noise, DX, window="hamming"), ValueError, "window must be one of"),
        (lambda: power_spectrum(np.full((8, 8), np.nan), DX), ValueError, "must be finite"),
        (lambda: power_spectrum(noise, 0 * u.arcsec), ValueError, "pixel_scale must be a positive number"),
        (lambda: white_noise_power(-1.0, DX), ValueError, "sigma must be a finite standard deviation"),
        (lambda: white_noise_level(noise, DX, band=(0.1, 0.3)), TypeError, "band must be a Quantity"),
        (lambda: white_noise_level(noise, DX, band=[0.3, 0.1] / u.arcsec), ValueError, "increasing"),
        (lambda: white_noise_level(noise, DX, band=[5, 6] / u.arcsec), ValueError, "holds no frequency"),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=words) as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(u.UnitsError):
        power_spectrum(noise, 0.5 * u.m)
