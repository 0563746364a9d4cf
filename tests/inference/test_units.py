"""Units at the boundary: Quantities in and out, fields in kG/T/mT, qs_level as a Quantity, masks, kind='auto'."""

import astropy.units as u
import numpy as np
import pytest
import sunpy.map

from enhance import enhance
from enhance.exceptions import EnhanceUserWarning
from enhance.models.network import EnhanceNet


@pytest.fixture(scope="module")
def net():
    import torch

    torch.manual_seed(5)
    return EnhanceNet(depth=1, width=4).eval()


@pytest.fixture(scope="module")
def field():
    return np.random.default_rng(0).normal(0, 400, (18, 20)).astype(np.float64)  # gauss


def test_gauss_quantity_gives_the_array_result_in_gauss(net, field):
    plain = enhance(field, "blos", network=net)
    out = enhance(field * u.G, network=net)  # kind 'auto': a magnetic field is a magnetogram
    assert isinstance(out, u.Quantity)
    assert out.unit == u.G
    np.testing.assert_array_equal(out.value, plain)  # bit-identical: no conversion for gauss


@pytest.mark.parametrize(("unit", "per_gauss"), [(u.kG, 1e-3), (u.T, 1e-4), (u.mT, 0.1)])
def test_field_units_are_converted_to_gauss_and_back(net, field, unit, per_gauss):
    plain = enhance(field, "blos", network=net)
    out = enhance(field * per_gauss * unit, "blos", network=net)
    assert out.unit == unit  # the caller's unit
    np.testing.assert_allclose(out.to_value(u.G), plain, rtol=1e-6, atol=1e-6)


def test_map_in_tesla_comes_back_in_tesla(net, field):
    header = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 0.504, "CDELT2": 0.504, "CUNIT1": "arcsec",
              "CUNIT2": "arcsec", "BUNIT": "T"}  # fmt: skip
    out = enhance(sunpy.map.Map(field * 1e-4, header), network=net)
    assert out.unit == u.T
    np.testing.assert_allclose(out.data * 1e4, enhance(field, "blos", network=net), rtol=1e-6, atol=1e-6)


def test_qs_level_quantity_in_the_images_unit(net):
    image = 48000 * (1 + 0.03 * np.random.default_rng(1).standard_normal((16, 16)))
    reference = enhance(image, "intensity", network=net, qs_level=48000.0)
    per_hour = enhance(image * u.Unit("DN/s"), network=net, qs_level=48000 * 3600 * u.Unit("DN/h"))
    np.testing.assert_allclose(per_hour.value, reference, rtol=1e-12)  # converted, not stripped
    out = enhance(image * u.Unit("DN/s"), network=net, qs_level=48000 * u.Unit("DN/s"))
    assert out.unit == u.Unit("DN/s")
    np.testing.assert_allclose(out.value, reference, rtol=1e-12)
    with pytest.raises(ValueError, match="qs_level must be in the image's unit, got 48000.0 G"):
        enhance(image * u.Unit("DN/s"), network=net, qs_level=48000 * u.G)


def test_masked_array_in_masked_array_out_masked_where_masked_or_nan(net):
    image = 1 + 0.03 * np.random.default_rng(2).standard_normal((12, 14))
    image[4, 6] = 50.0  # a bad pixel, masked: it must not act as data
    image[1, 2] = np.nan  # a missing pixel, not masked
    masked = np.ma.masked_array(image, mask=np.zeros(image.shape, dtype=bool))
    masked[4, 6] = np.ma.masked
    out = enhance(masked, "intensity", network=net, qs_level=1.0)
    assert isinstance(out, np.ma.MaskedArray)
    as_nan = image.copy()
    as_nan[4, 6] = np.nan
    expected = enhance(as_nan, "intensity", network=net, qs_level=1.0)
    np.testing.assert_array_equal(out.data, expected)
    bad = np.zeros(image.shape, bool)
    bad[4, 6] = bad[1, 2] = True
    np.testing.assert_array_equal(out.mask, np.repeat(np.repeat(bad, 2, axis=0), 2, axis=1))
    assert np.isnan(out.data[out.mask]).all()
    assert np.isfinite(out.data[~out.mask]).all()


def test_dask_array_in_lazy_dask_array_out(net):
    da = pytest.importorskip("dask.array")
    image = 1 + 0.03 * np.random.default_rng(3).standard_normal((30, 26))
    lazy = enhance(da.from_array(image, chunks=15), "continuum", network=net, qs_level=1.0)
    assert isinstance(lazy, da.Array)  # nothing computed yet
    assert lazy.shape == (60, 52)
    expected = enhance(image, "intensity", network=net, qs_level=1.0)
    np.testing.assert_allclose(lazy.compute(scheduler="sync"), expected, rtol=1e-5, atol=1e-6)
    symmetric = enhance(da.from_array(image, chunks=15), network=net, qs_level=1.0, symmetric=True)
    expected = enhance(image, network=net, qs_level=1.0, symmetric=True)
    np.testing.assert_allclose(symmetric.compute(scheduler="sync"), expected, rtol=1e-5, atol=1e-6)


def test_kind_auto_reads_the_map_and_the_unit(net, field):
    header = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 0.504, "CDELT2": 0.504, "CUNIT1": "arcsec",
              "CUNIT2": "arcsec"}  # fmt: skip
    magnetogram = sunpy.map.Map(field, dict(header, CONTENT="MAGNETOGRAM", BUNIT="G"))
    np.testing.assert_array_equal(enhance(magnetogram, network=net).data, enhance(field, "blos", network=net))
    continuum = sunpy.map.Map(1 + 0 * field, dict(header, BUNIT="DN/s"))
    assert enhance(continuum, network=net).unit == u.Unit("DN/s")


def test_magnetogram_given_as_intensity_is_named(net, field):
    with pytest.raises(ValueError, match=r"looks like a magnetogram.*kind='blos' \(on the command line: -t blos\)"):
        enhance(field, "intensity", network=net)
    with pytest.raises(ValueError, match="is in G .*given as intensity; pass kind='blos'"):
        enhance(field * u.G, "intensity", network=net)
    assert enhance(field, "intensity", network=net, force=True, qs_level=1.0).shape == (36, 40)


def test_tesla_values_given_as_gauss_are_refused(net, field):
    with pytest.raises(ValueError, match="looks like tesla or kilogauss"):
        enhance(field * 1e-4, "blos", network=net)


def test_values_beyond_any_solar_field_given_as_gauss_are_refused(net, field):
    # 1 % of the pixels beyond 10 000 G: milligauss, or a continuum in counts given as a magnetogram; a few hot
    # pixels alone (under 1 %) are not refused, and force=True runs it all
    with pytest.raises(ValueError, match=r"1 % of its pixels lie beyond 1\.\d+e\+06 G, where no solar field does"):
        enhance(field * 1e3, "blos", network=net)
    with pytest.raises(ValueError, match="or a continuum image"):
        enhance(np.full((18, 20), 5e4) + field, "blos", network=net)
    hot = field.copy()
    hot[3, 4] = 1e6
    with pytest.warns(EnhanceUserWarning, match="1 isolated pixel"):  # replaced by its neighbours' median
        assert enhance(hot, "blos", network=net).shape == (36, 40)
    assert enhance(field * 1e3, "blos", network=net, force=True).shape == (36, 40)


def test_each_frame_of_a_sequence_must_fit_the_kind(net, field):
    frames = np.stack([field, np.abs(field) / 1000 + 0.9])  # a continuum frame among magnetograms
    with pytest.raises(ValueError, match="frame 1 of image is given as a magnetogram in gauss"):
        enhance(frames, "blos", network=net)


def test_the_command_line_checks_the_values_as_the_api_does(tmp_path, capsys):
    from enhance.cli import main
    from enhance.data import sample_path

    target = tmp_path / "out.fits"
    assert main(["run", str(sample_path("intensity")), "-t", "blos", "-o", str(target), "--model", "light"]) != 0
    assert "looks like tesla or kilogauss" in capsys.readouterr().err
    assert not target.exists()


def test_velocity_is_refused(net, field):
    with pytest.raises(ValueError, match="a velocity"):
        enhance(field * u.cm / u.s, network=net)


def test_fits_file_in_kilogauss_comes_back_in_kilogauss(net, field, tmp_path):
    from astropy.io import fits

    header = fits.Header({"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 0.504, "CDELT2": 0.504,
                          "CUNIT1": "arcsec", "CUNIT2": "arcsec", "BUNIT": "kG"})  # fmt: skip
    fits.PrimaryHDU(field / 1000, header=header).writeto(tmp_path / "kg.fits")
    out = enhance(tmp_path / "kg.fits", network=net, output=tmp_path / "out.fits")
    assert fits.getheader(out)["BUNIT"] == "kG"
    np.testing.assert_allclose(fits.getdata(out) * 1000, enhance(field, "blos", network=net), rtol=1e-5, atol=1e-3)


def test_a_boolean_image_is_refused_as_a_mask_whatever_force(net):
    mask = np.random.default_rng(1).random((18, 20)) > 0.5
    for kind, force in (("intensity", False), ("blos", True)):
        with pytest.raises(TypeError, match=r"is boolean \(a mask\?\), not an image: pass image.astype\(float\)"):
            enhance(mask, kind, network=net, force=force)
    assert enhance(mask.astype(float) + 1, "intensity", network=net, qs_level=1.0).shape == (36, 40)


def test_a_quiet_sun_level_for_a_magnetogram_is_refused_not_ignored(net, field):
    from enhance.exceptions import IncompatibleOptionsError

    for level in (1.0, "level", "surface"):
        with pytest.raises(IncompatibleOptionsError, match=r"qs_level \(--qs-level\) is for continuum images"):
            enhance(field, "blos", network=net, qs_level=level)
    with pytest.raises(IncompatibleOptionsError, match="is for continuum images"):
        enhance(np.stack([field, field]), "blos", network=net, qs_level=1.0)  # a sequence: one noise level


def test_the_dask_path_checks_the_values_as_the_api_does(net, field):
    da = pytest.importorskip("dask.array")
    from enhance.exceptions import IncompatibleOptionsError

    with pytest.raises(ValueError, match="regular sample of it.* 1 % of its pixels lie beyond"):
        enhance(da.from_array(field * 1e3, chunks=10), "blos", network=net).compute()
    with pytest.raises(ValueError, match="looks like a magnetogram, not a continuum image"):
        enhance(da.from_array(field, chunks=10), "intensity", network=net).compute()
    with pytest.raises(TypeError, match="is boolean"):  # before any graph is built
        enhance(da.from_array(field > 0, chunks=10), "intensity", network=net)
    with pytest.raises(IncompatibleOptionsError, match="is for continuum images"):
        enhance(da.from_array(field, chunks=10), "blos", network=net, qs_level=1.0)
    lazy = enhance(da.from_array(field * 1e3, chunks=10), "blos", network=net, force=True)
    np.testing.assert_allclose(lazy.compute(), enhance(field * 1e3, "blos", network=net, force=True), rtol=1e-4,
                               atol=1e-3)  # fmt: skip


def test_a_dimensionless_quantity_given_as_a_magnetogram_is_named_so(net, field):
    with pytest.raises(ValueError, match="image is in a dimensionless unit, not a magnetic field"):
        enhance(field * u.dimensionless_unscaled, "blos", network=net)
