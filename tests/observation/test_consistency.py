"""The reconvolution test: a perfectly consistent pair gives zero, and the reconvolution is a linear,
shift-equivariant, symmetric, flux-keeping blur followed by 2x2 binning."""

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from enhance.observation.consistency import consistency, consistency_hdu, consistency_map, reconvolve


@pytest.fixture(scope="module")
def output():
    """An enhanced-looking image: 1 plus smooth and small-scale structure, on a 48 x 64 (x2) grid."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    return 1 + 0.2 * np.sin(2 * np.pi * x / 32) * np.cos(2 * np.pi * y / 24) + 0.05 * rng.normal(size=(48, 64))


@pytest.mark.parametrize("resolution", ["target", "object"])
def test_a_perfectly_consistent_pair_gives_zero(output, resolution):
    image = reconvolve(output, resolution=resolution)
    assert consistency(output, image, resolution=resolution) == 0.0
    assert np.all(consistency_map(output, image, resolution=resolution) == 0.0)


def test_consistency_of_a_scaled_input_is_the_relative_residual(output):
    """x = 1.25 R(y): |R(y) - x| / |x| = 0.25 / 1.25 exactly, whatever the image."""
    image = 1.25 * reconvolve(output)
    assert consistency(output, image) == pytest.approx(0.2, rel=1e-12)
    np.testing.assert_allclose(consistency_map(output, image), -0.2 * image, rtol=1e-12)


@pytest.mark.parametrize("resolution", ["target", "object"])
def test_the_periodic_reconvolution_keeps_the_flux_and_is_linear(output, resolution):
    other = np.random.default_rng(1).random(output.shape)
    reconvolved = reconvolve(output, resolution=resolution, boundary="wrap")
    assert reconvolved.shape == (24, 32)
    assert reconvolved.mean() == pytest.approx(output.mean(), rel=1e-12)  # transfer 1 at zero frequency
    combined = reconvolve(2 * output - 3 * other, resolution=resolution, boundary="wrap")
    expected = 2 * reconvolved - 3 * reconvolve(other, resolution=resolution, boundary="wrap")
    np.testing.assert_allclose(combined, expected, atol=1e-12)


def test_the_periodic_reconvolution_commutes_with_shifts_and_symmetries(output):
    reconvolved = reconvolve(output, boundary="wrap")
    shifted = reconvolve(np.roll(output, (4, -6), axis=(0, 1)), boundary="wrap")  # two x2 pixels: one input pixel
    np.testing.assert_allclose(shifted, np.roll(reconvolved, (2, -3), axis=(0, 1)), atol=1e-12)
    np.testing.assert_allclose(reconvolve(output[::-1], boundary="wrap"), reconvolved[::-1], atol=1e-12)
    square = output[:48, :48]
    np.testing.assert_allclose(reconvolve(square.T, boundary="wrap"), reconvolve(square, boundary="wrap").T, atol=1e-12)


def test_the_object_is_blurred_more_than_the_target():
    """'object' applies the whole HMI PSF, 'target' only what HMI loses beyond a 28 cm telescope."""
    noise = np.random.default_rng(2).normal(size=(64, 64))
    target, whole = (reconvolve(noise, resolution=r, boundary="wrap") for r in ("target", "object"))
    assert np.std(whole) < np.std(target) < np.std(noise)
    wider = reconvolve(noise, resolution="target", boundary="wrap", target_diameter=1.0 * u.m)
    assert np.std(wider) < np.std(target)  # a larger ideal telescope: more is still missing


def test_reconvolve_leaves_its_input_alone_and_marks_missing_input_pixels(output):
    holed = output.copy()
    holed[10, 21] = np.nan  # in input pixel (5, 10)
    result = reconvolve(holed)
    assert np.isnan(holed[10, 21])
    assert np.argwhere(np.isnan(result)).tolist() == [[5, 10]]


def test_consistency_hdu_holds_the_map_its_numbers_and_the_inputs_coordinates(output):
    image = 1.1 * reconvolve(output)
    header = fits.Header({"CTYPE1": "HPLN-TAN", "CRVAL1": 120.0, "CDELT1": 0.504, "BUNIT": "DN/s",
                          "DATE-OBS": "2014-01-01T00:00:00", "EXPTIME": 45.0, "OBJECT": "AR"})  # fmt: skip
    hdu = consistency_hdu(output, image, header=header)
    assert hdu.name == "CONSISTENCY"
    assert hdu.data.dtype == np.float32
    assert hdu.data.shape == image.shape
    assert hdu.header["CONSIST"] == pytest.approx(consistency(output, image), rel=1e-12)
    assert hdu.header["CONSIST"] == pytest.approx(0.1 / 1.1, rel=1e-9)
    assert hdu.header["CONSMAE"] == pytest.approx(np.mean(np.abs(consistency_map(output, image))), rel=1e-12)
    for key in ("CTYPE1", "CRVAL1", "CDELT1", "BUNIT", "DATE-OBS"):
        assert hdu.header[key] == header[key]
    assert "EXPTIME" not in hdu.header
    assert "OBJECT" not in hdu.header
    meta = {"crval1": 120.0, "bunit": "G"}  # sunpy's lower-case meta
    assert consistency_hdu(output, image, header=meta).header["CRVAL1"] == 120.0


def test_consistency_hdu_of_an_all_zero_input_says_nan_instead_of_failing():
    hdu = consistency_hdu(np.zeros((8, 8)), np.zeros((4, 4)))
    assert hdu.header["CONSIST"] == "NaN"
    assert hdu.header["CONSMAE"] == 0.0


def test_bad_pairs_are_refused_in_one_line(output):
    image = reconvolve(output)
    cases = [
        (lambda: consistency_map(output, image[:, :-1]), "twice the input's shape"),
        (lambda: reconvolve(output[:, :-1]), "even sizes"),
        (lambda: reconvolve(output, boundary="constant"), "boundary must be one of"),
        (lambda: reconvolve(output, input_scale=-0.5 * u.arcsec), "input_scale must be a positive number"),
        (lambda: consistency(np.zeros((8, 8)), np.zeros((4, 4))), "undefined"),
    ]
    for call, words in cases:
        with pytest.raises(ValueError, match=words) as info:
            call()
        assert "\n" not in str(info.value)
