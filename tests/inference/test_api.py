"""Maps in, Maps out: the x2 grid follows sunpy's own reading of the header (`Map.resample`, `superpixel`)."""

import astropy.units as u
import numpy as np
import pytest
import sunpy.map

from enhance import enhance
from enhance.data import sample_map, sample_path
from enhance.models.network import EnhanceNet


@pytest.fixture(scope="module")
def net():
    import torch

    torch.manual_seed(3)
    return EnhanceNet(depth=1, width=4).eval()


def _header(**extra):
    header = {
        "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec",
        "CDELT1": 0.504, "CDELT2": 0.504, "CRVAL1": 310.0, "CRVAL2": -150.0,
        "DATE-OBS": "2014-10-22T12:00:00", "DSUN_OBS": 1.489e11, "HGLN_OBS": 0.0, "HGLT_OBS": 5.0,
        "RSUN_REF": 696000000.0, "TELESCOP": "SDO/HMI", "INSTRUME": "HMI_FRONT2", "WAVELNTH": 6173.0,
        "CONTENT": "MAGNETOGRAM", "BUNIT": "Mx/cm2",
    }  # fmt: skip
    header.update(extra)
    return header


GRIDS = {
    "no CRPIX": {},
    "CRPIX off centre": {"CRPIX1": 7.25, "CRPIX2": 19.5},
    "CROTA2 = 180": {"CROTA2": 180.0},
    "CROTA2 = 30, CRPIX": {"CROTA2": 30.0, "CRPIX1": 3.0, "CRPIX2": 21.0},
    "PC matrix, no CRPIX": {"PC1_1": np.cos(0.3), "PC1_2": -np.sin(0.3), "PC2_1": np.sin(0.3), "PC2_2": np.cos(0.3)},
}


@pytest.mark.parametrize("extra", GRIDS.values(), ids=GRIDS.keys())
def test_output_pixel_centres_match_resample_and_superpixel(net, extra):
    ny, nx = 22, 30
    smap = sunpy.map.Map(np.random.default_rng(0).normal(0, 300, (ny, nx)).astype(np.float32), _header(**extra))
    out = enhance(smap, network=net)
    # Map.resample to twice the pixels puts its pixel centres where the x2 grid's must be ...
    resampled = smap.resample((2 * nx, 2 * ny) * u.pix)
    yy, xx = np.mgrid[0 : 2 * ny : 3, 0 : 2 * nx : 5] * u.pix
    ours, sunpys = out.pixel_to_world(xx, yy), resampled.pixel_to_world(xx, yy)
    assert ours.separation(sunpys).to_value(u.arcsec).max() < 1e-6
    # ... and summing 2x2 output pixels gives back the input grid: output pixels (2k, 2k + 1) average to k.
    binned = out.superpixel((2, 2) * u.pix)
    yy, xx = np.mgrid[0:ny:4, 0:nx:3] * u.pix
    assert binned.pixel_to_world(xx, yy).separation(smap.pixel_to_world(xx, yy)).to_value(u.arcsec).max() < 1e-6
    # The input pixel (k + 0.5) / 2 - 0.5 holds the world coordinate of output pixel k (0.25 px from a centre).
    k = np.array([0.0, 1.0, 17.0]) * u.pix
    world = out.pixel_to_world(k, k)
    back = smap.world_to_pixel(world)
    np.testing.assert_allclose(back.x.to_value(u.pix), (k.value + 0.5) / 2 - 0.5, atol=1e-6)
    np.testing.assert_allclose(back.y.to_value(u.pix), (k.value + 0.5) / 2 - 0.5, atol=1e-6)


def test_no_crpix_is_the_image_centre_not_pixel_zero(net):
    """Without CRPIX, sunpy puts the reference pixel at the centre; CRVAL stays at the centre of the x2 grid."""
    smap = sunpy.map.Map(np.random.default_rng(1).normal(0, 300, (20, 20)).astype(np.float32), _header())
    out = enhance(smap, network=net)
    centre = out.pixel_to_world(*(((out.data.shape[1] - 1) / 2, (out.data.shape[0] - 1) / 2) * u.pix))
    assert centre.Tx.to_value(u.arcsec) == pytest.approx(310.0, abs=1e-6)
    assert centre.Ty.to_value(u.arcsec) == pytest.approx(-150.0, abs=1e-6)


def test_result_keeps_class_mask_plot_settings_observer_and_unit(net):
    data = np.random.default_rng(2).normal(0, 300, (16, 18)).astype(np.float32)
    mask = np.zeros(data.shape, dtype=bool)
    mask[3, 5] = mask[10, 0] = True
    smap = sunpy.map.Map(data, _header(CRPIX1=9.0, CRPIX2=8.0), mask=mask)
    smap.plot_settings["cmap"] = "viridis"
    smap.plot_settings["title"] = "my magnetogram"
    out = enhance(smap, network=net)
    assert type(out) is type(smap)
    assert type(out).__name__ == "HMIMap"
    expected_mask = np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(out.mask, expected_mask)
    np.testing.assert_array_equal(np.isnan(out.data), expected_mask)  # masked input pixels are missing data
    assert out.plot_settings["title"] == "my magnetogram"
    assert out.plot_settings["cmap"] == "viridis"
    assert out.observer_coordinate.separation_3d(smap.observer_coordinate).to_value(u.m) < 1e-3
    assert out.date == smap.date
    assert out.unit == smap.unit
    assert out.meta["enh_ver"]
    assert smap.meta.get("enh_ver") is None
    assert smap.data.shape == (16, 18)


@pytest.mark.parametrize("mask", [np.ma.nomask, False])
def test_a_scalar_false_mask_comes_back_as_a_full_mask_of_false(net, mask):
    data = np.random.default_rng(3).normal(0, 300, (16, 18)).astype(np.float32)
    smap = sunpy.map.Map(data, _header(), mask=mask)
    assert np.ndim(smap.mask) == 0
    out = enhance(smap, network=net)
    assert out.mask.shape == (32, 36)
    assert not out.mask.any()
    np.testing.assert_array_equal(out.data, enhance(sunpy.map.Map(data, _header()), network=net).data)


def test_shipped_samples_load_as_hmi_maps_without_warnings():
    for kind, measurement in (("intensity", "continuum"), ("blos", "magnetogram")):
        smap = sample_map(kind)
        assert type(smap).__name__ == "HMIMap"
        assert smap.measurement == measurement
        assert smap.observer_coordinate is not None
        assert smap.scale.axis1.to_value(u.arcsec / u.pix) == pytest.approx(0.504)
        assert smap.reference_pixel.x.to_value(u.pix) == pytest.approx(99.5)  # CRPIX 100.5: the centre
    assert sample_map("blos").unit.is_equivalent(u.G)
    assert sample_map("intensity").unit == u.dimensionless_unscaled


def test_shipped_sample_data_are_the_original_cut_outs():
    """Only the headers changed: the pixels equal the reference copy bit for bit (when it is present)."""
    from conftest import SHARED_DATA
    from enhance.io import read_fits

    for kind, name in (("intensity", "hmi_continuum_ar.fits"), ("blos", "hmi_blos_ar.fits")):
        data, header = read_fits(sample_path(kind))
        assert data.shape == (200, 200)
        assert header["CDELT1"] == 0.504
        if (SHARED_DATA / name).is_file():
            np.testing.assert_array_equal(data, read_fits(SHARED_DATA / name)[0])


def _hmi(**extra):
    return _header(CRPIX1=10.5, CRPIX2=8.5, **extra)


REFUSED = {
    "SHARP CEA": ({"CTYPE1": "CRLN-CEA", "CTYPE2": "CRLT-CEA", "CUNIT1": "deg", "CUNIT2": "deg", "CDELT1": 0.03,
                   "CDELT2": 0.03, "CRVAL1": 120.0, "CRVAL2": 10.0}, "cylindrical equal-area"),
    "Carrington synoptic": ({"CTYPE1": "CRLN-CAR", "CTYPE2": "CRLT-CAR", "CUNIT1": "deg", "CUNIT2": "deg",
                             "CDELT1": 1.0, "CDELT2": 1.0, "CRVAL1": 180.0, "CRVAL2": 0.0}, "Carrington"),
    "Stonyhurst": ({"CTYPE1": "HGLN-CAR", "CTYPE2": "HGLT-CAR", "CUNIT1": "deg", "CUNIT2": "deg", "CDELT1": 0.5,
                    "CDELT2": 0.5, "CRVAL1": 0.0, "CRVAL2": 0.0}, "Stonyhurst heliographic"),
    "resampled to 20 arcsec": ({"CDELT1": 20.0, "CDELT2": 20.0}, "pixel scale of 20 arcsec"),
    "scale in degrees": ({"CUNIT1": "deg", "CUNIT2": "deg", "CDELT1": 0.252 / 3600, "CDELT2": 0.252 / 3600,
                          "CRVAL1": 0.1, "CRVAL2": -0.05}, "pixel scale of 0.252 arcsec"),
    "CD matrix": ({"CD1_1": 0.0, "CD1_2": -1.0, "CD2_1": 1.0, "CD2_2": 0.0}, "pixel scale of 1 arcsec"),
    "PC matrix scaled": ({"PC1_1": 0.0, "PC1_2": -2.0, "PC2_1": 2.0, "PC2_2": 0.0}, "pixel scale of 1.008 arcsec"),
    "Dopplergram": ({"CONTENT": "DOPPLERGRAM", "BUNIT": "cm/s"}, "is a Dopplergram"),
}  # fmt: skip


@pytest.mark.parametrize(("extra", "words"), REFUSED.values(), ids=REFUSED.keys())
def test_inputs_the_networks_do_not_know_are_refused_and_can_be_forced(net, extra, words):
    smap = sunpy.map.Map(np.random.default_rng(4).normal(0, 300, (16, 20)).astype(np.float32), _hmi(**extra))
    with pytest.raises(ValueError, match=words) as info:
        enhance(smap, "blos", network=net)
    assert "force=True" in str(info.value)
    assert enhance(smap, "blos", network=net, force=True).data.shape == (32, 40)


def test_hmi_scales_within_5_percent_pass():
    from enhance.io import check_header, pixel_scale

    header = _hmi(CDELT1=0.504297, CDELT2=0.504297, CROTA2=180.0)
    check_header(header, kind="blos")
    assert pixel_scale({"CD1_1": -0.504, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": -0.504}) == (0.504, 0.504)
    rotated = {"CDELT1": 0.5, "CDELT2": 0.5, "PC1_1": 0.6, "PC1_2": -0.8, "PC2_1": 0.8, "PC2_2": 0.6}
    assert pixel_scale(rotated) == pytest.approx((0.5, 0.5))
    assert pixel_scale({"CDELT1": 1.4e-4, "CUNIT1": "deg", "CDELT2": 1.4e-4, "CUNIT2": "deg"}) == pytest.approx(
        (0.504, 0.504)
    )
    sharp = {"CTYPE1": "CRLN-CEA", "CTYPE2": "CRLT-CEA", "CDELT1": 0.03, "CDELT2": 0.03, "CUNIT1": "degree",
             "CUNIT2": "degree"}  # fmt: skip
    assert pixel_scale(sharp) == pytest.approx((108.0, 108.0))  # JSOC spells the unit out


def test_enhanced_output_is_not_enhanced_again(net, tmp_path):
    smap = sunpy.map.Map(np.random.default_rng(5).normal(0, 300, (16, 20)).astype(np.float32), _hmi())
    once = enhance(smap, network=net)
    with pytest.raises(ValueError, match=r"written by solar-enhance .* already enhanced.*force=True"):
        enhance(once, network=net)
    path = tmp_path / "once.fits"
    once.save(path)
    with pytest.raises(ValueError, match="written by solar-enhance"):
        enhance(path, network=net)


def test_history_names_the_kind_found_by_auto():
    from enhance.models.registry import shipped

    if ("blos", "light") not in shipped():
        pytest.skip("the light magnetogram model is not shipped")
    smap = sunpy.map.Map(np.random.default_rng(6).normal(0, 300, (16, 20)).astype(np.float32), _hmi())
    out = enhance(smap, model="light")  # kind 'auto': CONTENT says magnetogram
    assert out.meta["enh_kind"] == "blos"
    assert "model: light blos" in out.meta["history"]


@pytest.mark.parametrize("kind", ["intensity", "blos"])
def test_sunpys_measurement_names_are_kinds_and_the_maps_measurement_is_the_default(kind):
    """``enhance(m, m.measurement)``: HMIMap.measurement is 'continuum' or 'magnetogram'."""
    smap = sample_map(kind)
    assert smap.measurement == {"intensity": "continuum", "blos": "magnetogram"}[kind]
    by_name = enhance(smap, smap.measurement, model="light")
    assert by_name.meta["enh_kind"] == kind
    np.testing.assert_array_equal(by_name.data, enhance(smap, kind, model="light").data)
    np.testing.assert_array_equal(enhance(smap, model="light").data, by_name.data)  # the default reads it
    with pytest.raises(ValueError, match="kind must be one of .*'blos' \\(or 'magnetogram'\\), got 'dopplergram'"):
        enhance(smap, "dopplergram", model="light")
