"""The noise map: photon noise, the centre-to-limb law, the blend of two passes, header cards, the uncertainty."""

import numpy as np
import pytest
import torch
from astropy.io import fits

from enhance.cli import main
from enhance.data import sample_path
from enhance.inference.noise_map import (
    SINGLE_PASS_SPAN,
    NoiseMap,
    bracket_levels,
    heliocentric_mu,
    limb_noise,
    noise_map,
    photon_noise,
    run_with_noise_map,
    tile_noise_plane,
)
from enhance.inference.pipeline import NoiseChoice, RunOptions, assumption_cards, enhance_array, make_runner
from enhance.inference.tiling import run_tiled
from enhance.inference.uncertainty import filter_bank, uncertainty_features
from enhance.models.hybrid import WienerEnhanceNet


def _net(seed=0):
    """A small Wiener-Enhance network whose CNN does something (its last convolution is not zero)."""
    torch.manual_seed(seed)
    net = WienerEnhanceNet(depth=1, width=4, taps=5, noise_nodes=(0.25, 1.0, 4.0, 16.0)).eval()
    with torch.no_grad():
        net.filters.normal_(0.0, 0.2)
        net.conv_out.weight.normal_(0.0, 0.1)
    return net


def _header(crval1=0.0, rsun=960.0):
    return {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec", "CDELT1": 0.504,
            "CDELT2": 0.504, "CRPIX1": 32.5, "CRPIX2": 32.5, "CRVAL1": crval1, "CRVAL2": 0.0,
            "RSUN_OBS": rsun}  # fmt: skip


@pytest.mark.parametrize("level", [0.3, 1.0, 2.5])
def test_photon_map_of_a_constant_image_is_constant_and_its_level_at_the_quiet_sun(level):
    image = np.full((20, 30), level)
    found = photon_noise(image, sigma_qs=2e-3, qs_level=level)
    # to float64 rounding: the Gaussian smoothing sums its weights in an order that depends on the CPU
    np.testing.assert_allclose(found, 2e-3, rtol=1e-14)
    assert np.ptp(found) <= 1e-15 * 2e-3


def test_photon_noise_grows_as_the_root_of_the_intensity():
    dark, bright = (photon_noise(np.full((8, 8), i), sigma_qs=1e-3) for i in (0.16, 0.64))
    np.testing.assert_allclose(bright / dark, 2.0, rtol=1e-12)
    np.testing.assert_allclose(dark, 0.4e-3, rtol=1e-12)


def test_limb_law_is_the_centre_level_at_centre_and_photon_noise_under_limb_darkening():
    assert limb_noise(1.0, sigma_centre=7.0) == 7.0
    np.testing.assert_allclose(limb_noise(0.5, sigma_centre=1.0, darkening=0.6), 1 / np.sqrt(0.7), rtol=1e-12)
    assert limb_noise(0.0, sigma_centre=1.0) == limb_noise(0.05, sigma_centre=1.0)  # off the disk: the floor


def test_mu_from_a_header_one_at_centre_falling_towards_the_limb():
    centre = heliocentric_mu(_header(), (64, 64))
    assert centre.max() == pytest.approx(1.0, abs=1e-6)
    limb = heliocentric_mu(_header(crval1=900.0), (64, 64))
    expected = np.sqrt(1 - (900.0 / 960.0) ** 2)
    assert limb[31:33, 31:33].mean() == pytest.approx(expected, rel=1e-3)
    assert limb[32, 0] > limb[32, -1]  # x grows towards the west limb
    assert heliocentric_mu(None, (4, 4)) is None
    assert heliocentric_mu({"CTYPE1": "CRLN-CEA", "CTYPE2": "CRLT-CEA"}, (4, 4)) is None


def test_the_map_scales_from_the_choice():
    image = np.ones((64, 64))
    image[20:40, 20:40] = 0.25
    given = noise_map(image, NoiseChoice(2e-3, "I/Ic", "given"), kind="intensity")
    assert given.model == "photon"
    assert given.levels[0, 0] == pytest.approx(2e-3, rel=1e-6)  # a given level is the quiet Sun's
    assert given.levels[30, 30] == pytest.approx(1e-3, rel=1e-3)
    measured = noise_map(image, NoiseChoice(2e-3, "I/Ic", "measured"), kind="intensity")
    assert np.median(measured.levels) == pytest.approx(2e-3, rel=1e-12)  # a measured level is the image's median
    limb = noise_map(np.zeros((64, 64)), NoiseChoice(0.01, "kG", "given"), kind="blos", header=_header(crval1=900.0))
    assert limb.model == "limb"
    np.testing.assert_allclose(limb.levels, limb_noise(heliocentric_mu(_header(crval1=900.0), (64, 64)),
                                                       sigma_centre=0.01))  # fmt: skip


def test_a_measured_plane_only_where_the_noise_varies():
    rng = np.random.default_rng(3)
    assert tile_noise_plane(rng.normal(size=(192, 192))) is None
    ramp = rng.normal(size=(192, 192)) * np.exp(np.linspace(0.0, np.log(3.0), 192))[None, :]
    plane = tile_noise_plane(ramp)
    assert plane[:, -1].mean() / plane[:, 0].mean() == pytest.approx(3.0, rel=0.25)
    flat = noise_map(rng.normal(size=(192, 192)) * 0.01, NoiseChoice(0.01, "kG", "measured"), kind="blos")
    assert flat.model == "constant"
    assert np.all(flat.levels == 0.01)


def test_one_pass_where_the_map_hardly_varies():
    nmap = NoiseMap(np.array([1.0, 1.03]) * 1e-3, "photon", 1.01e-3)
    assert bracket_levels(nmap) == (1.01e-3,)
    wide = NoiseMap(np.array([1.0, SINGLE_PASS_SPAN * 1.01]) * 1e-3, "photon", 1e-3)
    assert len(bracket_levels(wide)) == 2


def _run_pass(net, image):
    runner, _ = make_runner(net, backend="torch", precision="float32", device="cpu")

    def run_pass(bound):
        return run_tiled(image, bound, tile=None, margin=net.margin, device="cpu")

    return runner, run_pass


def test_the_blend_at_a_bracket_level_is_that_pass_exactly():
    net = _net()
    image = np.random.default_rng(0).normal(1.0, 0.05, (24, 24)).astype(np.float32)
    runner, run_pass = _run_pass(net, image)
    levels = np.full(image.shape, 2e-3)
    levels[:, :12] = 0.5e-3
    levels[:4, :4] = 1e-3  # between the two
    out = run_with_noise_map(run_pass, runner, NoiseMap(levels, "photon", 2e-3))
    low, high = run_pass(runner.bind(0.5e-3)), run_pass(runner.bind(2e-3))
    assert not np.array_equal(low, high)
    assert np.array_equal(out[8:, :24], low[8:, :24])
    assert np.array_equal(out[:, 24:], high[:, 24:])
    np.testing.assert_allclose(out[:8, :8], 0.5 * (low[:8, :8].astype(np.float64) + high[:8, :8]), rtol=1e-6)


def test_the_blend_of_a_constant_map_is_the_single_level_output_bit_for_bit():
    net = _net(1)
    image = np.full((30, 26), 0.8)
    options = RunOptions(device="cpu", backend="torch", qs_level=0.8, noise=1.6e-3)
    plain = enhance_array(image, kind="intensity", network=net, options=options)
    mapped, assumed = enhance_array(image, kind="intensity", network=net, return_assumptions=True,
                                    options=RunOptions(**{**options.__dict__, "noise_map": True}))  # fmt: skip
    assert np.array_equal(plain, mapped)
    assert assumed.noise_map.model == "photon"
    assert assumed.noise_map.low == assumed.noise_map.high == 2e-3


def test_cards_record_the_map():
    image = np.ones((48, 48))
    image[16:32, 16:32] = 0.3
    net = _net(2)
    options = RunOptions(device="cpu", backend="torch", qs_level=1.0, noise=1e-3, noise_map=True)
    _, assumed = enhance_array(image, kind="intensity", network=net, options=options, return_assumptions=True)
    cards = assumption_cards(assumed)
    assert cards["ENH_NMAP"] == "photon"
    assert cards["ENH_NMAX"] == pytest.approx(1e-3, rel=1e-3)
    assert cards["ENH_NMIN"] == pytest.approx(np.sqrt(0.3) * 1e-3, rel=0.02)
    _, plain = enhance_array(image, kind="intensity", network=net, return_assumptions=True,
                             options=RunOptions(device="cpu", backend="torch", qs_level=1.0, noise=1e-3))  # fmt: skip
    assert "ENH_NMAP" not in assumption_cards(plain)


def test_enhance_run_noise_map_writes_the_cards(tmp_path):
    out = tmp_path / "b.fits"
    assert main(["run", str(sample_path("blos")), "-o", str(out), "--model", "light", "--noise-map", "-q"]) == 0
    header = fits.getheader(out)
    assert header["ENH_NMAP"] == "limb"  # the sample's header places it at disk centre
    assert header["ENH_NMIN"] == pytest.approx(header["ENH_NOIS"], rel=0.01)  # mu > 0.997: hardly any rise
    assert header["ENH_NMIN"] <= header["ENH_NMAX"] <= 1.01 * header["ENH_NMIN"]


def test_the_propagated_noise_follows_the_map():
    net = _net(3)
    image = np.random.default_rng(1).normal(1.0, 0.05, (20, 20)).astype(np.float32)
    runner, run_pass = _run_pass(net, image)
    bound = runner.bind(1e-3)

    def run(array, model):
        return run_tiled(array, model, tile=None, margin=net.margin, device="cpu")

    levels = np.full(image.shape, 1e-3)
    levels[:, 10:] = 3e-3
    kwargs = {"runner": bound, "run": run, "filters": filter_bank(net), "passes": 4}
    plain = uncertainty_features(image, run_pass(bound), **kwargs)
    mapped = uncertainty_features(image, run_pass(bound), noise_map=levels, **kwargs)
    np.testing.assert_allclose(mapped["linear_noise"][:, :20], plain["linear_noise"][:, :20], rtol=1e-12)
    np.testing.assert_allclose(mapped["linear_noise"][:, 20:], 3 * plain["linear_noise"][:, 20:], rtol=1e-12)
    same = uncertainty_features(image, run_pass(bound), noise_map=np.full(image.shape, 1e-3), **kwargs)
    for name in plain:
        assert np.array_equal(same[name], plain[name]), name


def test_a_noise_map_for_a_network_told_no_noise_is_refused():
    # the paper's networks take no noise level: a map of it would be silently ignored
    from enhance import enhance

    with pytest.raises(ValueError, match=r"noise_map=True \(--noise-map\) is for the networks told the noise level"):
        enhance(np.ones((40, 40)), "intensity", model="paper-light", noise_map=True)
