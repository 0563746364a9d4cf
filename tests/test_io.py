import os
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.io import fits
from astropy.wcs import WCS

from conftest import SHARED_DATA, needs_shared
from enhance.io import atomic_write, detect_kind, read_fits, upscale_header, write_fits


def _hpc_header(ny=40, nx=50):
    return fits.Header(
        {
            "NAXIS": 2, "NAXIS1": nx, "NAXIS2": ny, "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN",
            "CUNIT1": "arcsec", "CUNIT2": "arcsec", "CDELT1": 0.504, "CDELT2": 0.504,
            "CRPIX1": 20.3, "CRPIX2": 11.7, "CRVAL1": 105.0, "CRVAL2": -230.0,
            "PC1_1": 0.9998, "PC1_2": -0.02, "PC2_1": 0.02, "PC2_2": 0.9998,
            "DATE-OBS": "2011-02-15T00:00:00", "MJD-OBS": 55607.0,
            "DSUN_OBS": 1.476e11, "HGLN_OBS": 0.0, "HGLT_OBS": -6.9,
            "BUNIT": "G", "DATAMEAN": 3.0,
        }
    )  # fmt: skip


def test_output_pixel_centres_keep_world_coordinates():
    header = _hpc_header()
    new = upscale_header(header, 2)
    old_wcs, new_wcs = WCS(header), WCS(new)
    k = np.arange(0, 100, 7.0)
    ky, kx = np.meshgrid(k, k[:-3], indexing="ij")
    world = new_wcs.pixel_to_world_values(kx, ky)
    # Output pixel k (0-based) is centred on input pixel (k + 0.5) / 2 - 0.5.
    expected = old_wcs.pixel_to_world_values((kx + 0.5) / 2 - 0.5, (ky + 0.5) / 2 - 0.5)
    back = old_wcs.world_to_pixel_values(*world)
    np.testing.assert_allclose(back[0], (kx + 0.5) / 2 - 0.5, atol=1e-6)
    np.testing.assert_allclose(back[1], (ky + 0.5) / 2 - 0.5, atol=1e-6)
    np.testing.assert_allclose(world, expected, rtol=0, atol=1e-9)


def test_upscale_header_rule_and_copy():
    header = _hpc_header()
    new = upscale_header(header, 2, history="test history line")
    assert (new["NAXIS1"], new["NAXIS2"]) == (100, 80)
    assert new["CRPIX1"] == pytest.approx(2 * 20.3 - 0.5)
    assert new["CDELT1"] == pytest.approx(0.252)
    assert new["PC1_2"] == header["PC1_2"]
    assert "DATAMEAN" not in new
    assert "test history line" in str(new["HISTORY"])
    assert header["NAXIS1"] == 50
    assert "DATAMEAN" in header


def test_upscale_header_cd_matrix_and_missing_crpix():
    header = fits.Header(
        {"NAXIS": 2, "NAXIS1": 10, "NAXIS2": 10, "CD1_1": 0.5, "CD1_2": 0.01, "CD2_1": -0.01, "CD2_2": 0.5}
    )
    new = upscale_header(header, 2)
    assert new["CD1_1"] == 0.25
    assert new["CD1_2"] == 0.005
    # sunpy puts the reference pixel of a header without CRPIX at the centre, (10 + 1) / 2 = 5.5: 2 * 5.5 - 0.5
    assert new["CRPIX1"] == 10.5
    # The CD matrix alone gives the scale: a CDELT beside it would be sunpy's scale (0.5 instead of 0.25)
    assert "CDELT1" not in new
    assert "CDELT2" not in new


def test_a_cd_matrix_header_gives_a_map_of_half_the_scale_and_the_same_sky():
    header = _hpc_header()
    angle = np.deg2rad(25.0)
    for name in ("CDELT1", "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2"):
        del header[name]
    header.update({"CD1_1": 0.504 * np.cos(angle), "CD1_2": -0.504 * np.sin(angle),
                   "CD2_1": 0.504 * np.sin(angle), "CD2_2": 0.504 * np.cos(angle)})  # fmt: skip
    before = sunpy.map.Map(np.zeros((40, 50)), header)
    after = sunpy.map.Map(np.zeros((80, 100)), upscale_header(header, 2))
    assert u.allclose(after.scale.axis1, before.scale.axis1 / 2)
    assert u.allclose(after.scale.axis2, before.scale.axis2 / 2)
    np.testing.assert_allclose(after.rotation_matrix, before.rotation_matrix, atol=1e-12)
    pix = np.array([0.0, 13.0, 99.0])
    centres = (pix + 0.5) / 2 - 0.5  # output pixel k's centre on the input grid
    separation = after.pixel_to_world(pix * u.pix, pix[::-1] * u.pix / 1.25).separation(
        before.pixel_to_world(centres * u.pix, ((pix[::-1] / 1.25 + 0.5) / 2 - 0.5) * u.pix)
    )
    assert separation.arcsec.max() < 1e-6


def test_header_matches_sunpy_resample():
    header = _hpc_header(ny=20, nx=30)
    smap = sunpy.map.Map(np.random.default_rng(0).random((20, 30)), header)
    resampled = smap.resample([60, 40] * smap.dimensions.x.unit)
    ours = sunpy.map.Map(np.zeros((40, 60)), upscale_header(smap.meta, 2))
    for key in ("crpix1", "crpix2", "cdelt1", "cdelt2", "naxis1", "naxis2"):
        assert ours.meta[key] == pytest.approx(resampled.meta[key], abs=1e-9), key
    pix = (7, 5) * u.pix
    assert ours.pixel_to_world(*pix).separation(resampled.pixel_to_world(*pix)).arcsec < 1e-6


def test_round_trip_is_lossless(tmp_path):
    data = np.random.default_rng(1).normal(size=(13, 17)).astype(np.float32)
    data[2, 3] = np.nan
    header = _hpc_header(13, 17)
    write_fits(tmp_path / "a.fits", data, header)
    back, back_header = read_fits(tmp_path / "a.fits")
    np.testing.assert_array_equal(back, data)
    assert back.dtype == np.float32
    assert back.dtype.byteorder in "=|"
    assert back_header["CRVAL1"] == header["CRVAL1"]


def test_reads_rice_compressed_integer_bscale_blank(tmp_path):
    raw = np.arange(64, dtype=np.int32).reshape(8, 8)
    raw[0, 0] = -2147483648
    hdu = fits.CompImageHDU(raw, compression_type="RICE_1")
    hdu.header["BLANK"] = -2147483648
    hdu.header["BSCALE"] = 0.5
    hdu.header["BZERO"] = 100.0
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "c.fits")
    data, _ = read_fits(tmp_path / "c.fits")
    assert np.isnan(data[0, 0])
    np.testing.assert_allclose(data.ravel()[1:], raw.ravel()[1:] * 0.5 + 100.0)


def test_reads_big_endian_integer_without_scaling(tmp_path):
    raw = np.arange(12, dtype=">i2").reshape(3, 4)
    fits.PrimaryHDU(raw).writeto(tmp_path / "i.fits")
    data, _ = read_fits(tmp_path / "i.fits")
    assert data.dtype == np.float64
    np.testing.assert_array_equal(data, raw.astype(float))


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="input file not found"):
        read_fits(tmp_path / "nope.fits")
    fits.PrimaryHDU(np.zeros((2, 3, 4))).writeto(tmp_path / "cube.fits")
    with pytest.raises(ValueError, match=r"must be 2-D \(ny, nx\), got shape \(2, 3, 4\)"):
        read_fits(tmp_path / "cube.fits")
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.zeros(3))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "table.fits")
    with pytest.raises(ValueError, match="holds no image data"):
        read_fits(tmp_path / "table.fits")
    (tmp_path / "text.fits").write_text("hello")
    with pytest.raises(ValueError, match="not a readable FITS file|holds no image data"):
        read_fits(tmp_path / "text.fits")


def test_atomic_write_leaves_nothing_on_failure_and_never_overwrites(tmp_path):
    target = tmp_path / "out.fits"

    def broken(tmp):
        with open(tmp, "w") as handle:
            handle.write("partial")
        msg = "disk full"
        raise OSError(msg)

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert list(tmp_path.iterdir()) == []
    target.write_text("keep me")
    with pytest.raises(FileExistsError, match="exists"):
        write_fits(target, np.zeros((2, 2)))
    assert target.read_text() == "keep me"


def test_atomic_write_loses_a_race_instead_of_replacing_the_winner(tmp_path):
    target = tmp_path / "out.txt"

    def slow_writer(tmp):  # another writer publishes the same path while this one writes
        target.write_text("winner")
        Path(tmp).write_text("loser")

    with pytest.raises(FileExistsError, match="exists"):
        atomic_write(target, slow_writer)
    assert target.read_text() == "winner"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary file left
    atomic_write(target, lambda tmp: Path(tmp).write_text("replaced"), overwrite=True)
    assert target.read_text() == "replaced"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual permissions, not mkstemp's 0600


def test_detect_kind():
    assert detect_kind(fits.Header({"BUNIT": "G"})) == "blos"
    assert detect_kind(fits.Header({"BUNIT": "DN/s"})) == "intensity"
    assert detect_kind(fits.Header({"CONTENT": "MAGNETOGRAM"})) == "blos"
    assert detect_kind(fits.Header({"TELESCOP": "SDO/HMI", "CONTENT": "CONTINUUM INTENSITY"})) == "intensity"
    assert detect_kind(fits.Header({"DSNAME": "hmi.M_45s"})) == "blos"
    assert detect_kind(fits.Header({"DSNAME": "hmi.Ic_45s"})) == "intensity"
    assert detect_kind(fits.Header({"TELESCOP": "SDO/HMI"})) is None


@needs_shared
def test_reads_the_real_hmi_cutouts():
    data, header = read_fits(SHARED_DATA / "hmi_blos_ar.fits")
    assert data.shape == (200, 200)
    assert data.dtype == np.float32
    assert detect_kind(header) == "blos"
    assert detect_kind(read_fits(SHARED_DATA / "hmi_continuum_ar.fits")[1]) == "intensity"


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    path = write_fits(tmp_path / "p.fits", np.zeros((2, 2)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_upscale_header_of_a_lower_case_dict_and_hmi_pixel_keys():
    meta = {"naxis": 2, "naxis1": 200, "naxis2": 100, "crpix1": 100.5, "crpix2": 50.5, "cdelt1": 0.504,
            "cdelt2": 0.504, "datamin": 1.0, "r_sun": 1900.0, "imscl_mp": 0.504, "x0_mp": 99.5,
            "y0_mp": 49.5}  # fmt: skip
    new = upscale_header(meta, 2)
    assert new["naxis1"] == 400
    assert new["crpix1"] == 200.5
    assert "CRPIX1" not in new
    assert "datamin" not in new
    assert new["r_sun"] == 3800.0
    assert new["imscl_mp"] == 0.252
    # The 0-based disk centre keeps its place: pixel 99.5 of the input is pixel 199.5 of the output.
    assert new["x0_mp"] == 199.5


def test_upscale_header_drops_a_degenerate_third_axis():
    header = fits.Header({"NAXIS": 3, "NAXIS1": 10, "NAXIS2": 8, "NAXIS3": 1, "CDELT3": 1.0, "CRPIX3": 1.0})
    new = upscale_header(header, 2)
    assert new["NAXIS"] == 2
    assert "NAXIS3" not in new
    assert "CDELT3" not in new
    assert new["NAXIS1"] == 20


def test_resolve_kind_refuses_kilogauss_and_pixel_scales_off_hmi():
    from enhance.io import resolve_kind

    with pytest.raises(ValueError, match="magnetograms must be in gauss, got BUNIT 'kG'.*--force"):
        resolve_kind("auto", fits.Header({"BUNIT": "kG"}), path="m.fits")
    assert resolve_kind("blos", fits.Header({"BUNIT": "Mx/cm^2", "CDELT1": 0.504297})) == "blos"
    with pytest.raises(ValueError, match="pixel scale of 0.252 arcsec, more than 5 % from HMI's.*force=True"):
        resolve_kind("intensity", fits.Header({"CDELT1": 0.252, "CUNIT1": "arcsec"}))
    assert resolve_kind("intensity", fits.Header({"CDELT1": 0.252, "CUNIT1": "arcsec"}), force=True) == "intensity"


def test_truncated_fits_is_named_as_such(tmp_path):
    path = tmp_path / "t.fits"
    fits.PrimaryHDU(np.zeros((64, 64), dtype=np.float32)).writeto(path)
    path.write_bytes(path.read_bytes()[:6000])
    with pytest.raises(ValueError, match="truncated or corrupt|not a readable FITS file"):
        read_fits(path)


def test_a_file_that_is_not_fits_gets_no_hint_to_an_option_the_command_line_cannot_pass(tmp_path, capsys):
    """astropy suggests ignore_missing_simple=True, which neither read_fits nor `enhance run` takes."""
    from enhance.cli import main

    text = tmp_path / "notes.fits"
    text.write_text("these are notes, not an image\n" * 100)
    with pytest.raises(ValueError, match="notes.fits is not a readable FITS file: No SIMPLE card found") as info:
        read_fits(text)
    assert "ignore_missing_simple" not in str(info.value)
    assert main(["run", str(text), "-o", str(tmp_path / "out.fits"), "--model", "light"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "not a readable FITS file" in line
    assert "=True" not in line


def _limb_header(crval1, **extra):
    header = fits.Header({"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec",
                          "CDELT1": 0.504, "CDELT2": 0.504, "CRPIX1": 32.5, "CRPIX2": 32.5, "CRVAL1": crval1,
                          "CRVAL2": 100.0, "BUNIT": "", "CONTENT": "CONTINUUM INTENSITY"})  # fmt: skip
    header.update(extra)
    return header


@pytest.mark.parametrize(
    "radius",
    [{"RSUN_OBS": 960.0}, {"DSUN_OBS": 149597870700.0 * 1.0004}, {}, {"RSUN_OBS": 1e6}, {"DSUN_OBS": -1.0}],
    ids=["RSUN_OBS", "DSUN_OBS", "neither", "RSUN_OBS beyond belief", "DSUN_OBS negative"],
)
def test_pixels_within_two_percent_of_the_limb_are_counted(radius):
    """Against the angular distance from disk centre of each pixel centre (a TAN projection, computed directly);
    without a radius to believe, the Sun's smallest from SDO (943.2"), so that no pixel near the limb is missed."""
    from enhance.io import RSUN_SMALLEST, limb_pixels

    header = _limb_header(930.0, **radius)
    finite = np.ones((64, 64), bool)
    finite[:, :5] = False  # missing pixels are not counted
    if radius.get("RSUN_OBS", 0) == 960.0:
        rsun = 960.0
    elif radius.get("DSUN_OBS", 0) > 0:
        rsun = np.degrees(np.arcsin(695700e3 / radius["DSUN_OBS"])) * 3600
    else:
        rsun = RSUN_SMALLEST
    x = (np.arange(64) + 1 - 32.5) * 0.504  # intermediate coordinates, arcsec, of a gnomonic projection
    xi, eta = (np.radians(grid / 3600.0) for grid in np.meshgrid(x, x))
    lon0, lat0 = np.radians(930.0 / 3600), np.radians(100.0 / 3600)
    rho = np.hypot(xi, eta)
    c = np.arctan(rho)
    lat = np.arcsin(np.cos(c) * np.sin(lat0) + eta * np.sin(c) * np.cos(lat0) / rho)
    lon = lon0 + np.arctan2(xi * np.sin(c), rho * np.cos(lat0) * np.cos(c) - eta * np.sin(lat0) * np.sin(c))
    distance = np.degrees(np.arccos(np.cos(lat) * np.cos(lon))) * 3600 / rsun
    expected = int(np.count_nonzero((distance > 0.98) & finite))
    assert 0 < expected < finite.sum()  # the band crosses the cut-out
    assert limb_pixels(header, finite) == expected
    assert limb_pixels(_limb_header(0.0, **radius), finite) == 0  # disk centre
    no_unit = _limb_header(930.0, **radius)
    del no_unit["CUNIT1"], no_unit["CUNIT2"]
    assert limb_pixels(no_unit, finite) == expected  # arcsec, as sunpy reads a helioprojective header
    del no_unit["CDELT1"], no_unit["CDELT2"]
    assert limb_pixels(no_unit, finite) == 0  # no pixel scale: where the pixels lie is not known


def test_enhancing_pixels_near_the_limb_warns(tmp_path, tiny_net, capsys):
    from enhance import enhance
    from enhance.exceptions import EnhanceUserWarning

    header = _limb_header(930.0, RSUN_OBS=960.0)
    image = 1 + 0.05 * np.random.default_rng(5).standard_normal((64, 64))
    path = tmp_path / "limb.fits"
    fits.PrimaryHDU(image, header=header).writeto(path)
    with pytest.warns(EnhanceUserWarning, match=r"limb.fits: \d+ pixels with data .* beyond 0.98 solar radii"):
        enhance(path, network=tiny_net)
    with pytest.warns(EnhanceUserWarning, match=r"the GenericMap: \d+ pixels .* where the networks were not trained"):
        enhance(sunpy.map.Map(image, header), network=tiny_net)
    centre = _limb_header(0.0, RSUN_OBS=960.0)
    enhance(sunpy.map.Map(image, centre), network=tiny_net)  # no warning at disk centre (warnings are errors)


@pytest.mark.filterwarnings("always:.*solar radii")  # shown, as outside pytest
def test_enhance_run_warns_about_pixels_near_the_limb(tmp_path, weights, capsys):
    from enhance.cli import main

    path = tmp_path / "limb.fits"
    fits.PrimaryHDU(1 + 0.05 * np.random.default_rng(6).standard_normal((64, 64)),
                    header=_limb_header(930.0, RSUN_OBS=960.0)).writeto(path)  # fmt: skip
    assert main(["run", str(path), "-o", str(tmp_path / "out.fits"), "--weights", weights]) == 0
    err = capsys.readouterr().err
    assert "enhance: warning: EnhanceUserWarning: " in err
    assert "beyond 0.98 solar radii, within 2 % of the radius from the limb or off the disk" in err


@pytest.mark.parametrize("bunit", ["G", "Gauss", "Mx/cm2", "Mx cm^-2", "Mx / cm2", "Mx cm-2"])
def test_every_spelling_of_gauss_is_a_magnetogram_in_gauss(bunit):
    from enhance.io import resolve_kind

    header = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 0.504, "CDELT2": 0.504, "BUNIT": bunit}
    assert resolve_kind("blos", header, path="in.fits", flag=True) == "blos"
    with pytest.raises(ValueError, match="magnetograms must be in gauss, got BUNIT 'kG'; convert the data to G first"):
        resolve_kind("blos", {**header, "BUNIT": "kG"}, path="in.fits", flag=True)


def _with_card(path, keyword, text):
    """``path`` with the card ``keyword`` rewritten as ``text`` (a value astropy writes no other way)."""
    raw = bytearray(path.read_bytes())
    start = raw.find(keyword.ljust(8).encode() + b"=")
    raw[start : start + 80] = text.encode().ljust(80)
    path.write_bytes(bytes(raw))


def test_a_header_card_fits_cannot_parse_is_named_or_left_out_when_the_file_is_read(tmp_path):
    from enhance.exceptions import EnhanceUserWarning

    path = tmp_path / "nan.fits"
    header = fits.Header({"CROTA2": 0.0, "CDELT1": 0.504, "CRDER1": 0.0, "CRDER2": 0.0})
    fits.PrimaryHDU(np.ones((4, 4), np.float32), header).writeto(path)
    # JSOC writes NaN coordinate errors this way: cards the enhancement does not read are left out
    _with_card(path, "CRDER1", "CRDER1  =                  nan / [arcsec] random error in coordinate 1")
    with pytest.warns(EnhanceUserWarning, match=r"header card\(s\) CRDER1 hold values the FITS standard"):
        _, read = read_fits(path)
    assert "CRDER1" not in read
    assert read["CRDER2"] == 0.0
    _with_card(path, "CROTA2", "CROTA2  =                  NAN / [deg] solar north up")  # one it reads: refused
    with pytest.raises(ValueError, match=r"nan.fits: header card CROTA2 holds a value the FITS standard does not"):
        read_fits(path)


@pytest.mark.parametrize(("unit", "cdelt"), [("arcseconds", 0.504), ("arcsecs", 0.504), ("radians", 2.4434e-6),
                                             ("arcmin", 0.0084)])  # fmt: skip
def test_any_spelling_of_an_angle_astropy_reads_is_a_cunit(unit, cdelt):
    from enhance.io import check_header, pixel_scale

    header = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": cdelt, "CDELT2": cdelt, "CUNIT1": unit,
              "CUNIT2": unit}  # fmt: skip
    assert pixel_scale(header) == pytest.approx((0.504, 0.504), rel=1e-4)
    check_header(header, kind="intensity")  # within 5 % of HMI's scale: no error
    with pytest.raises(ValueError, match="has CUNIT1 = 'Mm', not an angle"):
        check_header({**header, "CUNIT1": "Mm"}, kind="intensity")


@pytest.mark.parametrize("requested", ["auto", "intensity"])
def test_a_continuum_header_in_gauss_is_refused_as_the_reverse_is(requested):
    from enhance.io import resolve_kind

    header = {"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CDELT1": 0.504, "CDELT2": 0.504,
              "CONTENT": "CONTINUUM INTENSITY", "BUNIT": "Gauss"}  # fmt: skip
    with pytest.raises(ValueError, match=r"in\.fits is in 'Gauss', a magnetic field, but is taken for a continuum"):
        resolve_kind(requested, header, path="in.fits", flag=True)
    assert resolve_kind(requested, header, path="in.fits", flag=True, force=True) == "intensity"
    with pytest.raises(ValueError, match="magnetograms must be in gauss, got BUNIT 'DN/s'"):  # the reverse
        resolve_kind("auto", {**header, "CONTENT": "MAGNETOGRAM", "BUNIT": "DN/s"}, path="in.fits", flag=True)
