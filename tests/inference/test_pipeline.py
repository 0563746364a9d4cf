import numpy as np
import pytest
import sunpy.map
import torch
from astropy.io import fits

from enhance import enhance
from enhance.exceptions import ModelNotTrainedError
from enhance.inference import pipeline
from enhance.inference.pipeline import estimate_qs_level
from enhance.models.network import fold_batchnorm


def _reference(net, normalised):
    with torch.no_grad():
        return net.eval()(torch.from_numpy(normalised.astype(np.float32))[None, None])[0, 0].numpy()


def test_array_in_array_out_equals_the_network_on_normalised_data(tiny_net):
    rng = np.random.default_rng(0)
    image = 5000 * (1 + 0.04 * rng.standard_normal((23, 31)))  # raw counts
    out = enhance(image, "intensity", network=tiny_net, qs_level=5000.0)
    assert out.shape == (46, 62)
    assert out.dtype == np.float64
    # Continuum output is clipped at 0 where the input is not negative (the random network's output is).
    expected = np.maximum(5000 * _reference(tiny_net, image / 5000), 0)
    np.testing.assert_allclose(out, expected, rtol=2e-5, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_negative_continuum_output_is_zeroed_only_where_its_input_pixel_is_not_negative(dtype):
    rng = np.random.default_rng(3)
    data = rng.normal(1.0, 1.0, (37, 29))
    data[rng.random(data.shape) < 0.05] = np.nan
    result = rng.normal(0.5, 1.0, (74, 58)).astype(dtype)
    result[5, 7] = np.nan
    expected = result.copy()
    for y, x in zip(*np.nonzero(result < 0), strict=True):  # the definition, pixel by pixel
        if data[y // 2, x // 2] >= 0:
            expected[y, x] = 0
    pipeline._clip_negative(result, data)
    np.testing.assert_array_equal(result, expected)
    untouched = rng.normal(2.0, 0.1, (74, 58)).astype(dtype)  # nothing negative: unchanged
    copy = untouched.copy()
    pipeline._clip_negative(untouched, data)
    np.testing.assert_array_equal(untouched, copy)


def test_magnetograms_run_in_kilogauss(tiny_net):
    field = np.random.default_rng(1).normal(0, 300, (16, 16)).astype(np.float32)
    out = enhance(field, "blos", network=tiny_net)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 1000 * _reference(tiny_net, field / 1000), rtol=1e-4, atol=1e-2)


def test_input_is_not_modified(tiny_net):
    image = np.ones((10, 10))
    image[3, 3] = np.nan
    copy = image.copy()
    enhance(image, "intensity", network=tiny_net)
    np.testing.assert_array_equal(image, copy)


def test_nan_pixels_stay_nan_and_only_they(tiny_net):
    image = 1 + 0.03 * np.random.default_rng(2).standard_normal((40, 40))
    yy, xx = np.mgrid[:40, :40]
    offlimb = np.hypot(yy - 20, xx - 20) > 18
    image[offlimb] = np.nan
    image[5, 30] = np.inf
    out = enhance(image, "intensity", network=tiny_net)
    bad = ~np.isfinite(image)
    expected = np.repeat(np.repeat(bad, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(np.isnan(out), expected)
    assert np.isfinite(out[~expected]).all()


def test_estimate_qs_level_ignores_spots_and_nan():
    rng = np.random.default_rng(3)
    image = 1.0 + 0.04 * rng.standard_normal((100, 100))
    image[30:50, 30:50] = 0.15  # umbra
    image[25:55, 25:30] = 0.8  # penumbra
    image[:, :10] = np.nan
    assert estimate_qs_level(image * 6e4) == pytest.approx(6e4, rel=0.01)
    with pytest.raises(ValueError, match="no finite pixels"):
        estimate_qs_level(np.full((3, 3), np.nan))


def test_map_in_map_out_with_upscaled_header(tiny_net):
    header = {"cdelt1": 0.504, "cdelt2": 0.504, "crpix1": 10.5, "crpix2": 8.5, "cunit1": "arcsec", "cunit2": "arcsec",
              "ctype1": "HPLN-TAN", "ctype2": "HPLT-TAN", "crval1": 0.0, "crval2": 0.0, "bunit": "G"}  # fmt: skip
    smap = sunpy.map.Map(np.zeros((16, 20)), header)
    out = enhance(smap, "blos", network=tiny_net)
    assert isinstance(out, sunpy.map.GenericMap)
    assert out.data.shape == (32, 40)
    assert out.meta["cdelt1"] == pytest.approx(0.252)
    assert out.meta["crpix1"] == pytest.approx(20.5)
    assert "solar-enhance" in out.meta["history"]
    assert smap.meta["crpix1"] == 10.5


def test_path_in_writes_output_and_refuses_to_overwrite(tmp_path, tiny_net):
    header = {"CDELT1": 0.504, "CDELT2": 0.504, "CUNIT1": "arcsec", "CUNIT2": "arcsec", "CTYPE1": "HPLN-TAN",
              "CTYPE2": "HPLT-TAN"}  # fmt: skip
    fits.PrimaryHDU(np.ones((12, 12), dtype=">f4"), header=fits.Header(header)).writeto(tmp_path / "in.fits")
    out = enhance(tmp_path / "in.fits", "intensity", network=tiny_net, output=tmp_path / "out.fits")
    assert fits.getdata(out).shape == (24, 24)
    assert fits.getheader(out)["CDELT1"] == pytest.approx(0.252)
    with pytest.raises(FileExistsError):
        enhance(tmp_path / "in.fits", "intensity", network=tiny_net, output=tmp_path / "out.fits")
    smap = enhance(tmp_path / "in.fits", "intensity", network=tiny_net)
    assert isinstance(smap, sunpy.map.GenericMap)


def test_errors_are_clear(tiny_net, no_shipped_models):
    with pytest.raises(ValueError, match="kind must be one of 'auto', 'intensity' .*, got 'doppler'"):
        enhance(np.ones((8, 8)), "doppler", network=tiny_net)
    with pytest.raises(ValueError, match=r"image must be 2-D \(ny, nx\), or 3-D \(time, ny, nx\) for a sequence, "
                       r"got shape \(2, 3, 8, 8\)"):  # fmt: skip
        enhance(np.ones((2, 3, 8, 8)), "intensity", network=tiny_net)
    with pytest.raises(ValueError, match="image has no finite pixels"):
        enhance(np.full((8, 8), np.nan), "blos", network=tiny_net)
    with pytest.raises(ValueError, match="tile must be None or a positive"):
        enhance(np.ones((8, 8)), "blos", network=tiny_net, tile=0)
    with pytest.raises(TypeError, match="network must be an EnhanceNet"):
        enhance(np.ones((8, 8)), "blos", network="full")
    with pytest.raises(ModelNotTrainedError, match="not trained yet"):
        enhance(np.ones((8, 8)), "blos", model="full")
    with pytest.raises(ValueError, match="model must be one of"):
        enhance(np.ones((8, 8)), "blos", model="huge")
    with pytest.raises(TypeError, match="image must be a 2-D array"):
        enhance("not-an-array-nor-existing" and 42, "blos", network=tiny_net)


def test_folded_and_unfolded_networks_agree_through_enhance(tiny_net):
    image = np.random.default_rng(4).random((19, 21)) + 0.5
    a = enhance(image, "intensity", network=tiny_net, qs_level=1.0)
    b = enhance(image, "intensity", network=fold_batchnorm(tiny_net), qs_level=1.0)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_real_hmi_cutout_through_an_initialised_network(tiny_net):
    from enhance.data import sample_path

    out = enhance(str(sample_path("intensity")), network=tiny_net)  # kind 'auto': CONTENT says continuum
    assert out.data.shape == (400, 400)
    assert out.meta["cdelt1"] == pytest.approx(0.252)
    assert np.isfinite(out.data).all()


def test_device_and_size_errors_name_the_problem(tiny_net):
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            enhance(np.ones((8, 8)), "blos", network=tiny_net, device="cuda")
    with pytest.raises(ValueError, match=r"at least 2 x 2 pixels.*\(1, 30\)"):
        enhance(np.ones((1, 30)), "blos", network=tiny_net)


def test_a_shipped_model_is_loaded_once_and_follows_the_registry(data_dir):
    from enhance.inference.pipeline import resolve_network
    from enhance.models.pretrained import light, ship
    from enhance.models.weights import save_weights

    with pytest.raises(ModelNotTrainedError):
        resolve_network("intensity", model="light")
    torch.manual_seed(0)
    ship(save_weights(light(), data_dir / "a.safetensors", kind="intensity"), "intensity", "light", card={})
    net = resolve_network("intensity", model="light")
    assert resolve_network("intensity", model="light") is net  # the same module: its runner is reused
    other = light()
    with torch.no_grad():
        other.conv_out.bias.add_(1.0)
    ship(save_weights(other, data_dir / "b.safetensors", kind="intensity"), "intensity", "light", card={})
    changed = resolve_network("intensity", model="light")  # a new registry entry: the new weights
    assert changed is not net
    assert torch.equal(changed.conv_out.bias, net.conv_out.bias + 1.0)
