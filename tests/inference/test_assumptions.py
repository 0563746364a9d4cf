"""What an enhancement assumed is recorded: the noise level and its source, the quiet-Sun normalisation, the
model's registry name and weights checksum, in the output header and the Map's meta; far-off noise warns."""

import warnings

import numpy as np
import pytest
from astropy.io import fits

from enhance import enhance
from enhance.data import sample_map, sample_path
from enhance.exceptions import NoiseLevelWarning
from enhance.inference.pipeline import (
    NOISE_FLOOR,
    NOISE_WARN_RATIO,
    Assumptions,
    NoiseChoice,
    RunOptions,
    assumption_cards,
    enhance_array,
    network_noise,
    noise_choice,
    resolve_network,
)
from enhance.io import CARD_COMMENTS, read_fits, write_fits
from enhance.models.registry import file_sha256, registry_entry, shipped_path

HMI = 1e-3  # HMI's continuum noise, I/Ic


def _white(sigma, shape=(128, 128), seed=0):
    return 1 + np.random.default_rng(seed).normal(0, sigma, shape)


def test_noise_choice_says_where_the_level_came_from():
    measured = noise_choice(_white(2 * HMI), nominal=HMI, unit="I/Ic")
    assert measured.source == "measured"
    assert measured.value == pytest.approx(2 * HMI, rel=0.1)
    assert measured.unit == "I/Ic"
    assert measured.reason == f"{measured.value / HMI:.3g} x HMI's, beyond the cut-off"
    given = noise_choice(_white(2 * HMI), noise=30.0, scale=1e4, nominal=HMI)  # 30 counts of a 1e4 quiet Sun
    assert (given.value, given.source) == (pytest.approx(3e-3), "given")
    small = noise_choice(_white(2 * HMI, (16, 16)), nominal=HMI)
    assert (small.value, small.source) == (HMI, "nominal")
    assert "smaller than 32" in small.reason
    finite = np.ones((128, 128), bool)
    finite[60, 60] = False
    missing = noise_choice(_white(2 * HMI), nominal=HMI, finite=finite)  # measured on the tiles without it
    assert missing.source == "measured"
    assert missing.value == pytest.approx(2 * HMI, rel=0.1)
    finite[::20, ::20] = False  # a missing pixel in every tile
    nowhere = noise_choice(_white(2 * HMI), nominal=HMI, finite=finite)
    assert (nowhere.value, nowhere.source) == (HMI, "nominal")
    assert "missing or constant pixels in every tile" in nowhere.reason
    quiet = noise_choice(_white(0.1 * HMI), nominal=HMI)  # below the floor: raised to it, and said so
    assert (quiet.value, quiet.source) == (NOISE_FLOOR * HMI, "measured")
    assert "floor" in quiet.reason
    # network_noise is the value of the same decision.
    assert network_noise(_white(2 * HMI), nominal=HMI) == measured.value


def test_an_interpolated_image_gets_the_nominal_noise_with_the_reason():
    from scipy import ndimage

    smooth = ndimage.zoom(ndimage.zoom(_white(5 * HMI), 0.7), 1 / 0.7)
    choice = noise_choice(smooth, nominal=HMI)
    assert (choice.value, choice.source) == (HMI, "nominal")
    assert "not white" in choice.reason


def test_noise_far_above_hmis_warns_and_is_still_used():
    with pytest.warns(NoiseLevelWarning, match=r"noise measured at .* x HMI's nominal noise, .* binned"):
        loud = noise_choice(_white(6 * HMI), nominal=HMI)
    assert loud.value == pytest.approx(6 * HMI, rel=0.1)
    assert loud.value / HMI > NOISE_WARN_RATIO
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        noise_choice(_white(3 * HMI), nominal=HMI)  # 3 x: silent
        noise_choice(_white(6 * HMI), noise=6e-3, nominal=HMI)  # given: the caller decided
        noise_choice(_white(6 * HMI), nominal=HMI, warn=False)


def test_binned_data_labelled_at_hmis_scale_warns():
    """The packaged continuum cut-out binned 2x2 but kept at 0.504 arcsec per pixel reads about 9 x HMI's noise."""
    image, header = read_fits(sample_path("intensity"))
    binned = image.reshape(100, 2, 100, 2).mean(axis=(1, 3))
    with pytest.warns(NoiseLevelWarning, match="binned"):
        enhance(binned, "intensity", model="light")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enhance(image, "intensity", model="light")  # as packaged: interpolated, nominal noise, no warning


def test_enhance_array_returns_what_it_assumed_without_changing_the_result():
    net = resolve_network("intensity", model="light")
    image = 5000 * _white(2 * HMI, (96, 96))
    plain = enhance_array(image, kind="intensity", network=net)
    result, assumed = enhance_array(image, kind="intensity", network=net, return_assumptions=True)
    np.testing.assert_array_equal(result, plain)
    assert assumed.kind == "intensity"
    assert assumed.quiet_sun_source == "estimated"
    assert assumed.quiet_sun == pytest.approx(5000, rel=1e-2)
    assert assumed.noise.source == "measured"
    assert assumed.noise.value == pytest.approx(2e-3, rel=0.15)
    # A NoiseChoice in the options is used as it is: the result of telling the network that level.
    told = NoiseChoice(assumed.noise.value, "I/Ic", "given")
    again = enhance_array(image, kind="intensity", network=net, options=RunOptions(noise=told))
    np.testing.assert_array_equal(again, plain)
    _, given = enhance_array(image, kind="intensity", network=net, options=RunOptions(qs_level=4000.0),
                             return_assumptions=True)  # fmt: skip
    assert (given.quiet_sun, given.quiet_sun_source) == (4000.0, "given")


def test_assumption_cards_of_a_level_and_of_a_surface():
    net = resolve_network("intensity", model="light")
    ramp = np.tile(np.linspace(0.5, 0.9, 128), (64, 1)) * _white(HMI, (64, 128))  # limb darkening: a surface
    _, assumed = enhance_array(ramp, kind="intensity", network=net, return_assumptions=True)
    cards = assumption_cards(assumed)
    assert cards["ENH_QSTY"] == "surface"
    assert cards["ENH_QSRC"] == "estimated"
    assert 0.5 < cards["ENH_QSMN"] < cards["ENH_QSLV"] < cards["ENH_QSMX"] < 0.92
    assert cards["ENH_NUNI"] == "I/Ic"
    assert cards["ENH_NSRC"] in ("measured", "nominal")
    blos = assumption_cards(Assumptions("blos", NoiseChoice(0.015, "kG", "given"), None))
    assert blos == {"ENH_NOIS": 15.0, "ENH_NUNI": "G", "ENH_NSRC": "given", "ENH_NWHY": ""}
    assert assumption_cards(Assumptions("blos", None, None)) == {}  # the paper's networks are told no noise
    assert assumption_cards(Assumptions("blos", None, None, outliers=3)) == {"ENH_NOUT": 3}


def test_a_map_records_its_assumptions_in_its_meta():
    smap = sample_map("blos")
    out = enhance(smap, model="light")
    meta = out.meta
    assert (meta["enh_nois"], meta["enh_nuni"], meta["enh_nsrc"]) == (10.0, "G", "nominal")  # an interpolated cut-out
    assert "not white" in meta["enh_nwhy"]
    assert meta["enh_reg"] == "blos/light"
    assert meta["enh_sha"] == registry_entry("blos", "light").sha256 == file_sha256(shipped_path("blos", "light"))
    assert "enh_qsty" not in meta  # a magnetogram is not normalised by the quiet Sun
    assert "enh_nois" not in smap.meta  # the input's meta is untouched


def test_an_output_file_records_its_assumptions_with_comments(tmp_path):
    path = enhance(sample_path("intensity"), model="light", output=tmp_path / "out.fits", noise=0.002)  # I/Ic
    header = fits.getheader(path)
    assert header["ENH_NSRC"] == "given"
    assert header["ENH_NUNI"] == "I/Ic"
    assert header["ENH_NOIS"] == pytest.approx(0.002 / header["ENH_QSLV"])
    assert header["ENH_QSTY"] in ("level", "surface")
    assert header["ENH_QSRC"] == "estimated"
    assert header["ENH_REG"] == "intensity/light"
    assert header["ENH_SHA"] == registry_entry("intensity", "light").sha256
    assert "ENH_NOUT" not in header  # no isolated outlier pixel in the packaged cut-out
    for key in ("ENH_NOIS", "ENH_NSRC", "ENH_QSLV", "ENH_REG"):
        assert header.comments[key] == CARD_COMMENTS[key]
    assert "model: light intensity" in "".join(header["HISTORY"])


def test_write_fits_keeps_comments_that_fit_and_drops_those_that_do_not(tmp_path):
    header = fits.Header()
    header["BUNIT"] = ("G", "the unit")
    header["ENH_MODL"] = "x" * 60  # a long value: no room for the comment
    header["ENH_NSRC"] = "measured"
    data, written = read_fits(write_fits(tmp_path / "c.fits", np.zeros((4, 4), np.float32), header))
    assert written.comments["BUNIT"] == "the unit"
    assert written.comments["ENH_NSRC"] == CARD_COMMENTS["ENH_NSRC"]
    assert written["ENH_MODL"] == "x" * 60
    assert written.comments["ENH_MODL"] == ""


def test_an_isolated_outlier_pixel_is_replaced_before_the_enhancement_and_recorded(tmp_path):
    # A dead pixel (-1e5 I/Ic) rang over a 74 x 74 block of the output (5364 pixels off by more than 1 %): replaced
    # by its 3 x 3 median first, with a warning, only its own neighbourhood moves, and the header counts it.
    from enhance.exceptions import EnhanceUserWarning

    image = sample_map("intensity").data.astype(np.float64)
    clean = enhance(image, "intensity", model="light")
    dead = image.copy()
    dead[100, 100] = -1e5
    with pytest.warns(EnhanceUserWarning, match=r"1 isolated pixel\(s\) stood far from all their neighbours"):
        result = enhance(dead, "intensity", model="light")
    off = np.abs(result / clean - 1) > 0.01
    assert np.count_nonzero(off) < 20
    assert np.all(np.abs(np.argwhere(off) - [200.5, 200.5]) < 12)  # near the pixel's 2 x 2 block on the x2 grid
    header = fits.Header({"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 0.504, "CDELT2": 0.504,
                          "CUNIT1": "arcsec", "CUNIT2": "arcsec", "BUNIT": "DN/s"})  # fmt: skip
    fits.PrimaryHDU(dead, header=header).writeto(tmp_path / "dead.fits")
    with pytest.warns(EnhanceUserWarning, match="isolated pixel"):
        path = enhance(tmp_path / "dead.fits", "intensity", model="light", output=tmp_path / "out.fits")
    header = fits.getheader(path)
    assert header["ENH_NOUT"] == 1
    assert header.comments["ENH_NOUT"] == CARD_COMMENTS["ENH_NOUT"]


@pytest.mark.parametrize(("kind", "value", "moved"), [("intensity", 0.0, 0.15), ("blos", 800.0, 40.0)])
def test_a_dead_pixel_beside_a_sunspot_and_a_spike_among_weak_fields_are_replaced(kind, value, moved):
    # A pixel of 0 in the quiet Sun of the packaged cut-out stands 7.7 interquartile ranges from its neighbours
    # (the sunspot widens the range) and rang to 3.2 I/Ic; an 800 G spike among fields of -30 to 70 G came out
    # at 1890 G with rings to -670 G ('light'). Both are found by their distance from their neighbours' mean,
    # as no PSF-blurred pixel stands.
    from enhance.exceptions import EnhanceUserWarning

    image = sample_map(kind).data.astype(np.float64)
    clean = enhance(image, kind, model="light")
    broken = image.copy()
    broken[30, 30] = value
    with pytest.warns(EnhanceUserWarning, match=r"1 isolated pixel\(s\) stood far"):
        result = enhance(broken, kind, model="light")
    # What moves is the deconvolution of the median's difference from the pixel's true value (0.017 I/Ic, 10 G):
    # at most 0.10 I/Ic and 22 G, against 2.1 I/Ic and 1870 G when the pixel was left in.
    assert np.abs(result - clean).max() < moved
