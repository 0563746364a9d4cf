"""The per-pixel uncertainty: exact noise propagation, its features, and its outputs for arrays, Maps and files."""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.io import fits

from enhance.analysis.uncertainty_calibration import network_features
from enhance.cli import main
from enhance.data import sample_map, sample_path
from enhance.exceptions import EnhanceUserWarning
from enhance.inference.api import enhance
from enhance.inference.pipeline import make_runner, resolve_network
from enhance.inference.tiling import run_tiled
from enhance.inference.uncertainty import FEATURES, Calibration, filter_bank, node_weights, propagated_noise
from enhance.models.hybrid import WienerEnhanceNet, symmetrize_filters


def _linear_net(seed=0, *, symmetric_filters=False):
    """A Wiener-Enhance network whose CNN adds nothing (its last convolution is zero): a linear filter bank."""
    torch.manual_seed(seed)
    net = WienerEnhanceNet(depth=1, width=4, taps=5, noise_nodes=(1.0, 2.0, 4.0)).eval()
    with torch.no_grad():
        bank = torch.randn_like(net.filters) * 0.3
        net.filters.copy_(symmetrize_filters(bank) if symmetric_filters else bank)
    return net


def test_node_weights_match_the_network():
    net = _linear_net()
    noise = torch.tensor([5e-4, 1e-3, 1.5e-3, 3e-3, 1e-2])
    expected = net.node_weights(noise).numpy()
    got = np.stack([node_weights(float(s), net.noise_nodes, net.noise_unit) for s in noise])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_propagated_noise_is_the_std_of_a_linear_model_over_noise_draws():
    net = _linear_net()
    sigma, draws = 1.5e-3, 2000
    bank, nodes, unit = filter_bank(net)
    phases = propagated_noise(bank, node_weights(sigma, nodes, unit), sigma)
    generator = torch.Generator().manual_seed(3)
    inputs = 1 + sigma * torch.randn(draws, 1, 16, 16, generator=generator)
    with torch.no_grad():
        outputs = net(inputs, torch.full((draws,), sigma)).numpy()[:, 0]
    inner = outputs[:, 2 * net.margin : -2 * net.margin, 2 * net.margin : -2 * net.margin]  # no mirrored noise
    empirical = inner.std(axis=0)
    for a in (0, 1):
        for b in (0, 1):
            # 2000 draws: the std of one pixel is known to 1.6 %, the mean over pixels better
            assert empirical[a::2, b::2].mean() == pytest.approx(phases[a, b], rel=0.02)


def test_noise_response_of_a_linear_model_is_the_propagated_noise():
    net = _linear_net(1)
    image = 1 + 0.05 * np.random.default_rng(0).standard_normal((96, 96))
    _, features = network_features(image, network=net, noise=2e-3)
    inner = (slice(20, -20), slice(20, -20))
    ratio = features["noise_response"][inner].mean() / features["linear_noise"][inner].mean()
    assert ratio == pytest.approx(1.0, abs=0.1)  # one noise draw, averaged over 1.5 px: a few per cent


def test_an_equivariant_model_has_no_spread_and_a_constant_no_structure():
    net = _linear_net(2, symmetric_filters=True)  # the same answer for every rotation and flip
    image = np.random.default_rng(1).random((40, 40)) + 0.5
    result, features = network_features(image, network=net, noise=1e-3)
    assert features["model_spread"].max() < 1e-5 * np.abs(result).max()
    _, flat = network_features(np.full((40, 40), 0.8), network=net, noise=1e-3)
    assert flat["psf_spread"].max() < 1e-6  # the PSFs differ at no frequency but zero, where each passes 1
    assert flat["gradient"].max() < 1e-5


def test_calibration_adds_the_weighted_features_in_quadrature():
    features = {name: np.full((2, 2), float(k + 1)) for k, name in enumerate(FEATURES)}
    features["level"] = np.full((2, 2), np.e)  # z = 1
    count = len(FEATURES)
    calibration = Calibration(tuple(np.log(np.arange(1.0, count + 1))), (0.5,) + (0.0,) * (count - 1), (0.2, 0.1))
    ratio = 4.0
    weights = np.arange(1.0, count + 1)
    weights[0] *= ratio**0.5
    expected = np.sqrt(np.exp(0.3) * np.sum(weights * np.arange(1.0, count + 1) ** 2))
    np.testing.assert_allclose(calibration.sigma(features, noise_ratio=ratio), expected)


def test_calibration_modulates_the_variance_by_the_shares_of_sky_and_disk():
    features = {name: np.zeros(3) for name in FEATURES}
    features["linear_noise"][:] = 2.0
    features["level"] = np.ones(3)  # z = 0
    features["space"] = np.array([0.0, 0.5, 1.0])
    features["disk"] = np.array([0.25, 0.0, 0.0])
    calibration = Calibration((0.0,) * len(FEATURES), (0.0,) * len(FEATURES), (0.3, 0.2, 1.0, 0.5, -2.0, 4.0))
    d, e = features["space"], features["disk"]
    expected = 2.0 * np.exp((d + 0.5 * d * d - 2.0 * e + 4.0 * e * e) / 2)
    np.testing.assert_allclose(calibration.sigma(features, noise_ratio=1.0), expected)
    # two modulation terms (a calibration fitted without the limb): no limb terms; without the features, none either
    np.testing.assert_allclose(Calibration(calibration.log_scale, calibration.slope, (0.3, 0.2)).sigma(
        features, noise_ratio=1.0), 2.0)  # fmt: skip
    # shares beyond those of the fit are taken as the largest fitted (no runaway quadratic in a concave corner)
    bounded = Calibration(calibration.log_scale, calibration.slope, calibration.modulation, share_range=(0.5, 0.1))
    d, e = np.minimum(d, 0.5), np.minimum(e, 0.1)
    expected = 2.0 * np.exp((d + 0.5 * d * d - 2.0 * e + 4.0 * e * e) / 2)
    np.testing.assert_allclose(bounded.sigma(features, noise_ratio=1.0), expected)
    del features["space"], features["disk"]
    np.testing.assert_allclose(calibration.sigma(features, noise_ratio=1.0), 2.0)


def test_the_sky_s_share_at_a_straight_limb_is_the_gaussian_s_and_moves_with_the_image():
    from enhance.inference.uncertainty import SPACE_SMOOTHING, uncertainty_features
    from enhance.models.runner import DIHEDRAL, dihedral_transform

    net = _linear_net(symmetric_filters=True)
    runner, _ = make_runner(net, backend="torch", precision="float32", device="cpu")
    bound = runner.bind(1e-3)

    def run(array, model):
        return run_tiled(array, model, tile=None, margin=net.margin, device="cpu")

    source = np.ones((40, 160), np.float32)
    space = np.zeros(source.shape, bool)
    space[:, 80:] = True
    shares = uncertainty_features(source, run(source, bound), runner=bound, run=run, filters=filter_bank(net),
                                  space=space)  # fmt: skip
    share = shares["space"]
    row = share[0]
    # the last disk column's share is the kernel's weight beyond its centre, (1 - w_0) / 2 for the normalised
    # Gaussian of SPACE_SMOOTHING / 2 input pixels (truncated at 4 standard deviations), on both of its output columns
    offsets = np.arange(-2 * int(SPACE_SMOOTHING), 2 * int(SPACE_SMOOTHING) + 1)
    weights = np.exp(-(offsets**2) / (2 * (SPACE_SMOOTHING / 2) ** 2))
    np.testing.assert_allclose(row[158:160], (1 - 1 / weights.sum()) / 2, rtol=1e-12)
    assert np.all(row[160:] == 0.0)  # the sky's own pixels: no sky term
    assert row[0] == 0.0  # beyond the Gaussian's reach
    assert np.all(np.diff(row[:160]) >= 0)  # more sky around, nearer the limb
    assert row[159 - 2 * int(SPACE_SMOOTHING)] < 0.05  # 4 arcsec inside: a few per cent
    assert np.all(share == row)  # every row alike
    # beyond the limb, the disk's share: one less the same Gaussian's share of the sky, and 0 on the disk
    disk = shares["disk"][0]
    np.testing.assert_allclose(disk[160:162], (1 - 1 / weights.sum()) / 2, rtol=1e-12)
    assert np.all(disk[:160] == 0.0)
    assert np.all(np.diff(disk[160:]) <= 0)
    assert disk[-1] == 0.0
    none = uncertainty_features(source, run(source, bound), runner=bound, run=run, filters=filter_bank(net))
    assert np.all(none["space"] == 0.0)
    assert np.all(none["disk"] == 0.0)
    square = np.zeros((64, 64), bool)
    square[40:, 50:] = True
    for element in DIHEDRAL:  # the share of a moved sky is the moved share
        image = np.ones((64, 64), np.float32)
        moved = uncertainty_features(image, run(image, bound), runner=bound, run=run, filters=filter_bank(net),
                                     space=dihedral_transform(square, element))["space"]  # fmt: skip
        plain = uncertainty_features(image, run(image, bound), runner=bound, run=run, filters=filter_bank(net),
                                     space=square)["space"]  # fmt: skip
        np.testing.assert_allclose(moved, dihedral_transform(plain, element), atol=1e-12)


def test_sigma_grows_near_a_missing_sky_and_stays_the_same_far_from_it():
    # HMI writes the sky beyond the limb as NaN: the disk's last arcseconds have larger errors (the PSF spreads
    # the limb), which the calibration's sky term gives them; far from the sky, sigma is what it was.
    image = sample_map("intensity").data[:60, :120].astype(np.float64)
    qs = float(np.median(image))
    _, plain = enhance(image, "intensity", model="light", uncertainty=True, qs_level=qs, noise=1e-3 * qs)
    cut = image.copy()
    cut[:, 100:] = np.nan
    _, edged = enhance(cut, "intensity", model="light", uncertainty=True, qs_level=qs, noise=1e-3 * qs)
    assert np.isnan(edged[:, 200:]).all()
    near = np.median(edged[:, 190:200] / plain[:, 190:200])  # within 1.25 arcsec of the sky
    assert near > 1.2
    np.testing.assert_allclose(edged[:, :80], plain[:, :80], rtol=1e-3)  # 30 arcsec and more away


def test_dark_pixels_on_the_disk_are_not_the_sky_and_a_dark_region_as_large_as_the_limb_s_reach_is():
    from enhance.inference.uncertainty import OFF_DISK_AREA, off_disk

    image = np.ones((60, 80))
    image[10, 10] = 0.0  # a zero-filled bad pixel
    image[20:25, 30:35] = 0.04  # a dark patch, 25 pixels
    assert OFF_DISK_AREA == 200
    image[50:, 61:] = 0.0  # 10 x 19 = 190 dark pixels in a corner
    assert not off_disk(image, kind="intensity").any()
    image[50:, 60] = 0.0  # 10 x 20 = 200: a sky
    sky = off_disk(image, kind="intensity")
    assert sky.sum() == 200
    assert sky[-1, -1]
    assert not sky[10, 10]
    # a dark pixel next to a missing sky (240 pixels) joins it; the missing pixels count however few
    finite = np.ones(image.shape, bool)
    finite[:, :4] = False
    image[30, 4] = 0.0
    assert off_disk(image, finite, kind="intensity")[30, 4]
    finite[:] = True
    finite[0, 40] = False
    assert np.array_equal(off_disk(image, finite, kind="intensity"), sky | ~finite)


def test_sigma_of_a_dark_pixel_and_patch_on_the_disk_is_that_of_a_dark_pixel_not_a_sky_s_edge():
    # A zero-filled bad pixel and a small patch darker than OFF_DISK_LEVEL get the sigma of the same pixels a
    # little above it (never the sky): the limb's terms, a factor of thousands at a sky's edge, stay off. (Both
    # single pixels are gross outliers, replaced by their neighbours' median before the enhancement.)
    image = sample_map("intensity").data[:60, :120].astype(np.float64)
    qs = float(np.median(image))
    sigmas = []
    for pixel, patch in ((0.0, 0.04), (0.06, 0.06)):
        dark = image.copy()
        dark[20, 30] = pixel * qs
        dark[40:45, 80:85] = patch * qs
        with pytest.warns(EnhanceUserWarning, match="1 isolated pixel"):
            _, sigma = enhance(dark, "intensity", model="light", uncertainty=True, qs_level=qs, noise=1e-3 * qs)
        sigmas.append(sigma)
    for region in ((slice(36, 46), slice(56, 66)), (slice(76, 94), slice(156, 174))):
        ratio = sigmas[0][region].max() / sigmas[1][region].max()
        assert 0.5 < ratio < 1.5


def test_array_input_gives_result_and_sigma_and_the_result_is_unchanged():
    image = sample_map("intensity").data[:48, :64].astype(np.float32)
    image[5, 7] = np.nan
    plain = enhance(image, "intensity", model="light")
    result, sigma = enhance(image, "intensity", model="light", uncertainty=True)
    np.testing.assert_array_equal(result, plain)
    assert sigma.shape == result.shape
    assert sigma.dtype == result.dtype
    assert np.isnan(sigma[10:12, 14:16]).all()
    finite = np.isfinite(sigma)
    assert finite.sum() == sigma.size - 4
    assert (sigma[finite] > 0).all()


def test_quantities_keep_their_unit_and_scale_with_it():
    field = sample_map("blos").data[:40, :40].astype(np.float64)
    result_g, sigma_g = enhance(field * u.G, model="light", uncertainty=True)
    result_kg, sigma_kg = enhance(field / 1000 * u.kG, model="light", uncertainty=True)
    assert sigma_g.unit == u.G
    assert sigma_kg.unit == u.kG
    np.testing.assert_allclose(sigma_kg.to_value(u.G), sigma_g.value, rtol=1e-4)
    assert result_g.unit == u.G


def test_map_input_gives_a_second_map_on_the_same_grid():
    smap = sample_map("intensity").submap([0, 0] * u.pix, top_right=[47, 39] * u.pix)
    result, sigma = enhance(smap, model="light", uncertainty=True)
    assert type(sigma) is type(result) is type(smap)
    assert sigma.unit == result.unit == smap.unit
    assert sigma.data.shape == result.data.shape == (80, 96)
    for a, b in ((sigma.wcs.wcs.crpix, result.wcs.wcs.crpix), (sigma.wcs.wcs.cdelt, result.wcs.wcs.cdelt)):
        np.testing.assert_array_equal(a, b)
    assert np.all(sigma.data > 0)


def test_file_input_writes_the_uncertainty_extension(tmp_path):
    out = enhance(sample_path("blos"), model="light", uncertainty=True, output=tmp_path / "out.fits")
    with fits.open(out) as hdul:
        primary, extension = hdul[0], hdul["UNCERT"]
        assert extension.data.shape == primary.data.shape
        assert extension.header["BUNIT"] == primary.header["BUNIT"]
        assert extension.header["CDELT1"] == primary.header["CDELT1"]
        assert np.nanmin(extension.data) > 0
        # what it is and which calibration it used, for the file alone to say
        assert extension.header["UTYPE"] == "StdDevUncertainty"
        assert primary.header["ENH_UCAL"] == extension.header["ENH_UCAL"] == "blos/light"
        sigma = extension.data
    # astropy's CCDData reads the file as the image and its one-sigma uncertainty, in the image's unit
    from astropy.nddata import CCDData, StdDevUncertainty

    image = CCDData.read(out)
    assert isinstance(image.uncertainty, StdDevUncertainty)
    assert image.unit == u.G
    np.testing.assert_array_equal(image.uncertainty.array, sigma)


def test_cli_run_uncertainty(tmp_path):
    target = tmp_path / "out.fits"
    assert main(["run", str(sample_path("intensity")), "-o", str(target), "--model", "light", "--uncertainty"]) == 0
    with fits.open(target) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "UNCERT"]
        assert hdul["UNCERT"].data.shape == hdul[0].data.shape


def test_onnx_runner_gives_the_same_uncertainty():
    image = sample_map("intensity").data[:40, :40].astype(np.float32)
    _, on_torch = enhance(image, "intensity", model="light", backend="torch", uncertainty=True)
    _, on_onnx = enhance(image, "intensity", model="light", backend="onnx", uncertainty=True)
    np.testing.assert_allclose(on_onnx, on_torch, rtol=2e-3)


def test_onnx_graph_holds_the_linear_stage():
    from enhance.runtime.export import onnx_network

    net = resolve_network("blos", model="light")
    runner = onnx_network(net, threads=1)
    np.testing.assert_allclose(runner.filter_bank[0], filter_bank(net)[0], rtol=1e-6, atol=1e-9)


def test_uncertainty_refuses_networks_without_a_linear_stage_before_any_pass(monkeypatch):
    from enhance.inference import pipeline

    def no_pass(*args, **kwargs):
        msg = "the network ran before the refusal"
        raise AssertionError(msg)

    monkeypatch.setattr(pipeline, "run_tiled", no_pass)
    with pytest.raises(ValueError, match=r"uncertainty=True \(--uncertainty\) is for the models told the noise"):
        enhance(np.ones((20, 20)), "intensity", model="paper-light", uncertainty=True)


@pytest.mark.parametrize("model", ["full", "light"])
def test_the_uncertainty_of_a_magnetogram_is_even_in_the_field(model):
    # The models are odd, f(-B) = -f(B): each term of sigma is then even, the noise draw included (it moves with
    # the field, `equivariant_noise`); a draw on the pixel grid gave sigma(-B) up to 74 % away from sigma(B).
    field = sample_map("blos").data[:56, :64].astype(np.float32)
    result, sigma = enhance(field, "blos", model=model, uncertainty=True)
    flipped, same = enhance(-field, "blos", model=model, uncertainty=True)
    np.testing.assert_array_equal(flipped, -result)
    np.testing.assert_array_equal(same, sigma)


@pytest.mark.parametrize("kind", ["intensity", "blos"])
def test_the_uncertainty_of_full_moves_with_the_image(kind):
    # 'full' is equivariant under rotations and flips, and so is its uncertainty: its passes run on the image plus
    # a draw that moves with it, and the PSF term pads the image alike on both sides (measured: 5e-7 of the largest
    # sigma; 0.4 with a draw on the pixel grid, 1e-3 with the padding on one side).
    image = sample_map(kind).data[:60, :52].astype(np.float32)
    options = {"qs_level": float(np.median(image))} if kind == "intensity" else {}
    _, sigma = enhance(image, kind, model="full", uncertainty=True, **options)
    for move in (np.rot90, np.transpose, np.flipud):
        _, moved = enhance(move(image), kind, model="full", uncertainty=True, **options)
        assert np.abs(moved - move(sigma)).max() <= 1e-5 * sigma.max(), move.__name__


def test_the_noise_draw_moves_with_the_image_and_is_standard_normal():
    from scipy import stats

    from enhance.inference.uncertainty import equivariant_noise

    image = np.random.default_rng(4).normal(1.0, 0.1, (300, 280)).astype(np.float32)
    draw = equivariant_noise(image)
    for move in (np.rot90, np.transpose, np.fliplr, lambda a: np.rot90(a, 2)):
        np.testing.assert_array_equal(equivariant_noise(move(image)), move(draw))
    np.testing.assert_array_equal(equivariant_noise(-image), -draw)
    assert stats.kstest(draw.ravel(), "norm").pvalue > 1e-3  # 84 000 numbers
    neighbours = np.corrcoef(draw[:, 1:].ravel(), draw[:, :-1].ravel())[0, 1]
    assert abs(neighbours) < 0.02  # white: no correlation between neighbours
    assert not np.array_equal(equivariant_noise(image, seed=1), draw)


def test_load_calibration_warns_or_raises_where_none_is_stored(tmp_path):
    from enhance.inference.uncertainty import load_calibration

    empty = tmp_path / "uncertainty.json"
    empty.write_text("{}")
    with pytest.warns(EnhanceUserWarning, match="not calibrated"):
        assert load_calibration("blos", "full", path=empty) == Calibration.uncalibrated()
    with pytest.raises(ValueError, match="holds no calibration of the shipped blos/full weights"):
        load_calibration("blos", "full", path=str(empty), missing="raise")
    with pytest.raises(ValueError, match="missing must be one of"):
        load_calibration("blos", "full", missing="ignore")


def test_a_network_of_your_own_gets_a_warning_not_a_calibration():
    with pytest.warns(EnhanceUserWarning, match="no uncertainty calibration"):
        result, sigma = enhance(np.ones((24, 24)), "intensity", network=_linear_net(), uncertainty=True)
    assert np.all(np.isfinite(sigma))
    assert sigma.shape == result.shape


def test_outputs_record_which_calibration_the_uncertainty_used():
    from enhance.inference.pipeline import RunOptions, enhance_array

    image = sample_map("intensity").data[:40, :40].astype(np.float32)
    shipped = resolve_network("intensity", model="light")
    _, assumed = enhance_array(image, kind="intensity", network=shipped, options=RunOptions(uncertainty=True),
                               return_assumptions=True)  # fmt: skip
    assert assumed.uncertainty == "intensity/light"
    with pytest.warns(EnhanceUserWarning, match="no uncertainty calibration"):
        _, assumed = enhance_array(image, kind="intensity", network=_linear_net(), options=RunOptions(uncertainty=True),
                                   return_assumptions=True)  # fmt: skip
    assert assumed.uncertainty == "uncalibrated"
    _, assumed = enhance_array(image, kind="intensity", network=shipped, options=RunOptions(), return_assumptions=True)
    assert assumed.uncertainty is None
    corner = sample_map("intensity").submap([0, 0] * u.pix, top_right=[31, 31] * u.pix)  # a pore: level given
    result, sigma = enhance(corner, model="light", uncertainty=True, qs_level=1.02)
    assert result.meta["enh_ucal"] == sigma.meta["enh_ucal"] == "intensity/light"


@pytest.mark.slow
def test_coverage_on_a_small_held_out_case():
    from enhance.analysis.uncertainty_calibration import CalibrationConfig, collect, coverage, held_out_fields
    from enhance.inference.uncertainty import load_calibration

    config = CalibrationConfig(shape=(500, 500), report_seeds=(5201,), scenes=("active_region",), limb_shape=(300, 500))
    fields = held_out_fields("intensity", config, report=True)[:1]
    data = collect(resolve_network("intensity", model="light"), fields, kind="intensity", noise_factors=(1.0,))
    table = coverage(load_calibration("intensity", "light"), data)["all"]["1"]
    # 66 x 66 HMI pixels of one scene, errors correlated over a few pixels: a few per cent of sampling spread
    assert 0.60 < table["within_1"] < 0.76
    assert 0.90 < table["within_2"] < 0.985


def test_with_a_noise_map_full_s_noise_response_is_the_response_to_the_draw_alone(monkeypatch):
    # A noise map blends two levels into the result; the passes run at one: the response must be taken against
    # those passes, not the blend, or it holds a fixed bias (6e-3 I/Ic in an umbra) and no noise.
    from enhance.inference import uncertainty
    from enhance.inference.pipeline import make_runner
    from enhance.inference.tiling import run_tiled

    runner, workers = make_runner(resolve_network("intensity", model="full"), backend="auto", precision="float32",
                                  device="cpu")  # fmt: skip
    bound = runner.bind(1e-3)

    def run(array, net=bound):
        return run_tiled(array, net, tile=None, margin=runner.margin, device="cpu", workers=workers)

    cut = sample_map("intensity").data[40:88, 100:148]
    source = (cut / np.median(cut)).astype(np.float32)  # I/Ic
    blended = run(source) * np.float32(1.01)  # any result other than the passes' mean
    monkeypatch.setattr(uncertainty, "equivariant_noise", lambda image: np.zeros(np.shape(image)))
    features = uncertainty.uncertainty_features(source, blended, runner=bound, run=run, filters=filter_bank(bound),
                                                noise_map=np.full(source.shape, 1e-3))  # fmt: skip
    # No draw, no response: what is left is the two paths' float32 rounding (1e-7) over the probe's scale (0.1),
    # against 4e-3 I/Ic of response at HMI's noise; 6e-3 with the blended result as the reference.
    assert features["noise_response"].max() <= 2e-5


@pytest.mark.parametrize(("kind", "model"), [("intensity", "full"), ("intensity", "light"), ("blos", "full"),
                                             ("blos", "light")])  # fmt: skip
def test_sigma_stays_sensible_over_every_noise_level_the_network_takes(kind, model):
    # The weights were fitted at 0.5-10 x HMI's noise and are not extrapolated beyond: a slope fitted there once
    # made the magnetogram 'light' sigma 2e6 G at 16 x and 8e13 G at 32 x.
    image = sample_map(kind).data[:48, :48].astype(np.float64)
    options = {"qs_level": float(np.median(image))} if kind == "intensity" else {}
    unit = {"intensity": 1e-3 * np.median(image), "blos": 10.0}[kind]
    medians = {}
    for factor in (0.25, 0.5, 10.0, 16.0, 32.0):
        _, sigma = enhance(image, kind, model=model, uncertainty=True, noise=factor * unit, **options)
        medians[factor] = float(np.median(sigma))
    assert all(np.isfinite(v) and v > 0 for v in medians.values()), medians
    assert medians[32.0] <= 4 * medians[10.0], medians  # 3.2 x the noise: at most about that much more error
    assert medians[16.0] <= 2.5 * medians[10.0], medians
    assert medians[0.25] <= 2 * medians[0.5], medians


def test_full_s_sigma_on_a_flat_noisy_region_is_near_its_error():
    # On a flat region the passes' spread must be the model's, not their different responses to the noise draw:
    # with the whole draw (not a tenth of it) sigma was 4.4 times the RMS error there, 1.8 times now.
    image = sample_map("intensity").data.astype(np.float64)
    image = image / np.median(image)
    image[:, :100] = 0.01  # I/Ic: a flat dark region
    noisy = image + np.random.default_rng(5).normal(0.0, 1e-3, image.shape)
    result, sigma = enhance(noisy, "intensity", model="full", uncertainty=True, qs_level=1.0, noise=1e-3)
    region = (slice(None), slice(20, 180))  # output pixels at least 10 input pixels from the region's edge
    error = np.sqrt(np.mean((result[region] - 0.01) ** 2))
    assert error < np.median(sigma[region]) < 2.5 * error


def test_the_border_term_multiplies_the_variance_by_its_share_beyond_the_border():
    # sigma^2 = f^2 exp(beta_7 b + beta_8 b^2) for the share b of a Gaussian of one input pixel beyond the image's
    # border (the normal distribution's tail at each pixel's distance); a calibration of six betas has no such term.
    from scipy import stats

    from enhance.inference.uncertainty import EDGE_WIDTH, edge_share

    shape = (40, 60)
    share = edge_share(shape)
    distance = (np.arange(shape[1]) + 0.5) / 2  # input pixels from the left border
    along = stats.norm.sf(distance / EDGE_WIDTH) + stats.norm.sf((shape[1] / 2 - distance) / EDGE_WIDTH)
    np.testing.assert_allclose(share[shape[0] // 2], along, rtol=1e-6, atol=1e-12)  # the middle row: x alone
    features = {name: np.zeros(shape) for name in FEATURES}
    features.update(linear_noise=np.full(shape, 2.0), level=np.ones(shape), edge=share)
    ones = tuple(0.0 if name == "linear_noise" else -np.inf for name in FEATURES)
    six = Calibration(ones, (0.0,) * len(FEATURES), (0.0,) * 6)
    eight = Calibration(ones, (0.0,) * len(FEATURES), (0.0,) * 6 + (1.2, -0.5), share_range=(1.0, 1.0, 0.5))
    np.testing.assert_array_equal(six.sigma(features, noise_ratio=1.0), 2.0)
    clipped = np.minimum(share, 0.5)  # shares beyond those fitted are taken as the largest fitted
    expected = 2.0 * np.exp((1.2 * clipped - 0.5 * clipped**2) / 2)
    np.testing.assert_allclose(eight.sigma(features, noise_ratio=1.0), expected, rtol=1e-12)
