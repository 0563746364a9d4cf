from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from enhance.scenes.sources import (
    KM_PER_ARCSEC,
    SyntheticSource,
    VariedSource,
    from_array,
    open_source,
    pixel_scale_from_header,
)
from enhance.scenes.synth import generate

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
MURAM = DATA / "muram_qs_0.0662arcsec.fits"


def _write_fits(path, data, **cards):
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    fits.PrimaryHDU(data, header=header).writeto(path)
    return path


def test_fits_frame_reads_scale_and_normalises_by_the_mean(tmp_path):
    data = np.random.default_rng(0).uniform(100, 300, (20, 30)).astype(np.float32)
    path = _write_fits(tmp_path / "frame.fits", data, CDELT1=0.0662, CDELT2=0.0662, CUNIT1="arcsec", CUNIT2="arcsec")
    source = open_source(path)
    assert len(source) == 1
    assert u.isclose(source.pixel_scale, 0.0662 * u.arcsec)
    frame = source.frame(0)
    assert frame.shape == (20, 30)
    assert frame.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(frame, data / data.astype(float).mean(), rtol=1e-6)


def test_fits_cube_gives_frames_in_order(tmp_path):
    cube = np.stack([np.full((8, 9), k + 1.0) for k in range(3)]) * np.arange(1, 10)[None, None, :]
    path = _write_fits(tmp_path / "cube.fits", cube, CDELT1=48.0, CDELT2=48.0, CUNIT1="km", CUNIT2="km")
    source = open_source(path, kind="continuum", normalise="none")
    assert len(source) == 3
    np.testing.assert_allclose(source[2], cube[2])
    assert source.pixel_scale.to_value(u.arcsec) == pytest.approx(48.0 / KM_PER_ARCSEC)
    assert source.pixel_scale.to_value(u.arcsec) == pytest.approx(0.0662, abs=2e-4)
    assert [f.mean() for f in source] == pytest.approx([5.0, 10.0, 15.0])


def test_fits_field_in_kilogauss_becomes_gauss(tmp_path):
    path = _write_fits(tmp_path / "bz.fits", np.full((6, 6), 1.5), CDELT1=0.1, CDELT2=0.1, BUNIT="kG")
    source = open_source(path, kind="bz")
    assert source.kind == "blos"
    np.testing.assert_allclose(source.frame(0), 1500.0)
    override = open_source(path, kind="blos", unit="T")
    np.testing.assert_allclose(override.frame(0), 15000.0)


def test_numpy_needs_a_pixel_scale(tmp_path):
    path = tmp_path / "cube.npy"
    np.save(path, np.ones((2, 10, 10)))
    with pytest.raises(ValueError, match="pixel_scale="):
        open_source(path)
    source = open_source(path, pixel_scale=0.05 * u.arcsec)
    assert len(source) == 2
    assert source.frame(1).shape == (10, 10)


def test_npz_with_stored_pixel_scale(tmp_path):
    path = tmp_path / "frames.npz"
    np.savez(path, bz=np.full((2, 12, 12), -800.0), pixel_scale=0.03)
    source = open_source(path, kind="blos")
    assert u.isclose(source.pixel_scale, 0.03 * u.arcsec)
    np.testing.assert_allclose(source[0], -800.0)


def test_hdf5_dataset_with_attributes(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "sim.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("meta/time", data=np.arange(3.0))
        node = f.create_dataset("snapshots/bz", data=np.arange(3 * 16 * 16, dtype=float).reshape(3, 16, 16))
        node.attrs["CDELT1"] = 0.0662
        node.attrs["CDELT2"] = 0.0662
        node.attrs["BUNIT"] = "G"
    source = open_source(path, kind="blos", dataset="snapshots/bz")
    assert len(source) == 3
    np.testing.assert_allclose(source.frame(1), np.arange(256, 512).reshape(16, 16))
    assert u.isclose(source.pixel_scale, 0.0662 * u.arcsec)
    with pytest.raises(ValueError, match="no dataset"):
        open_source(path, kind="blos", dataset="nope")


def test_from_array_and_errors():
    source = from_array(np.full((2, 8, 8), 5.0), 0.0662)
    assert source.frame(-1).mean() == pytest.approx(1.0)
    with pytest.raises(IndexError, match="out of range"):
        source.frame(2)
    with pytest.raises(ValueError, match="kind must be one of"):
        from_array(np.ones((8, 8)), 0.1, kind="velocity")
    with pytest.raises(ValueError, match="normalise applies to continuum"):
        from_array(np.ones((8, 8)), 0.1, kind="blos", normalise="mean")
    with pytest.raises(ValueError, match="a frame .* or a cube"):
        from_array(np.ones((2, 2, 8, 8)), 0.1)
    bad = from_array(np.array([[1.0, np.nan], [1.0, 1.0]]), 0.1, normalise="none")
    with pytest.raises(ValueError, match="NaN or infinite"):
        bad.frame(0)


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        open_source(tmp_path / "missing.fits")
    other = tmp_path / "frame.txt"
    other.write_text("1 2 3")
    with pytest.raises(ValueError, match="unsupported file type"):
        open_source(other, pixel_scale=0.1)
    path = _write_fits(tmp_path / "rect.fits", np.ones((4, 4)), CDELT1=0.1, CDELT2=0.2)
    with pytest.raises(ValueError, match="pixels must be square"):
        open_source(path)


def test_pixel_scale_from_header_units():
    assert pixel_scale_from_header({"CDELT1": 1.0 / 3600, "CUNIT1": "deg"}).to_value(u.arcsec) == pytest.approx(1.0)
    assert pixel_scale_from_header({"NAXIS": 2}) is None
    with pytest.raises(ValueError, match="angle or a length"):
        pixel_scale_from_header({"CDELT1": 1.0, "CUNIT1": "s"})


def test_synthetic_source_frames_are_pure_functions_of_seed_and_index():
    source = SyntheticSource((64, 64), kind="intensity", scene="plage", n_frames=3, seed=5)
    field = SyntheticSource((64, 64), kind="blos", scene="plage", n_frames=3, seed=5)
    assert source.periodic
    assert len(source) == 3
    continuum, bz = generate((64, 64), kind="plage", seed=[5, 2])
    np.testing.assert_array_equal(source.frame(2), continuum)
    np.testing.assert_array_equal(field.frame(2), bz)
    assert not np.allclose(source.frame(0), source.frame(1))


@pytest.mark.skipif(not MURAM.is_file(), reason="needs ../shared/data (MURaM field)")
def test_muram_field_loads_as_a_source():
    source = open_source(MURAM)
    assert u.isclose(source.pixel_scale, 0.0662 * u.arcsec)
    frame = source.frame(0)
    assert frame.shape == (1000, 500)
    assert frame.mean() == pytest.approx(1.0)


def test_varied_source_changes_contrast_by_the_power_and_keeps_a_fraction_as_is():
    rng = np.random.default_rng(0)
    frame = np.exp(0.05 * rng.standard_normal((64, 64)))
    base = from_array(frame, 0.0662, normalise="none")
    varied = VariedSource(base, power=(0.5, 2.0), copies=200, seed=3)
    for index in range(5):
        power, fwhm = varied.draw(index)
        assert 0.5 <= power <= 2.0
        assert fwhm == 0.0
        # log I ** p = p log I: the contrast of the logarithm scales by p exactly.
        np.testing.assert_allclose(np.log(varied.frame(index)), power * np.log(frame), atol=1e-12)
    half = VariedSource(base, power=(0.5, 2.0), blur=(0.05, 0.1) * u.arcsec, copies=400, seed=3, fraction=0.5)
    kept = [half.draw(i) == (1.0, 0.0) for i in range(400)]
    assert 0.4 < np.mean(kept) < 0.6
    untouched = next(i for i, same in enumerate(kept) if same)
    np.testing.assert_array_equal(half.frame(untouched), frame)
    blurred = next(i for i, same in enumerate(kept) if not same)
    assert np.std(np.log(half.frame(blurred))) < half.draw(blurred)[0] * np.std(np.log(frame))  # blurred: smoother
    with pytest.raises(ValueError, match="fraction"):
        VariedSource(base, fraction=1.5)
