"""One options object: `RunOptions` or the same keyword arguments, and every option alike in single-file, batch,
sequence and Dask runs."""

import numpy as np
import pytest
from astropy.io import fits

from enhance import enhance, enhance_dask, enhance_files
from enhance.cli import main
from enhance.data import sample_path
from enhance.exceptions import UnsupportedOptionError
from enhance.inference.pipeline import RunOptions, run_options
from enhance.io import read_fits

#: The default model's one pass, averaged over the 8 rotations and flips, with its uncertainty: the options the CLI
#: refused in batch mode before.
#: The cut-outs' quiet-Sun level is given: the second holds the umbra and penumbra, whose level is not the quiet Sun's.
OPTIONS = RunOptions(symmetric=True, uncertainty=True, noise_per_frame=True, qs_level=1.02)


def _cutouts(folder, count=2, size=40):
    """Windows of the packaged continuum sample as FITS files of their own (the header's WCS moved with them)."""
    folder.mkdir(exist_ok=True)
    image, header = read_fits(sample_path("intensity"))
    paths = []
    for i in range(count):
        top = 60 + 25 * i
        window = header.copy()
        window["CRPIX1"], window["CRPIX2"] = header["CRPIX1"] - top, header["CRPIX2"] - top
        path = folder / f"cut{i}.fits"
        fits.PrimaryHDU(image[top : top + size, top : top + size], header=window).writeto(path)
        paths.append(path)
    return paths


def _hdus(path):
    with fits.open(path) as hdul:
        return {hdu.name: np.array(hdu.data) for hdu in hdul}


def test_keywords_fill_in_what_the_options_leave_at_their_default():
    merged = run_options(RunOptions(tile=64, symmetric=True), noise=3.0, tile=None, symmetric=False)
    assert (merged.tile, merged.symmetric, merged.noise) == (64, True, 3.0)  # a keyword at its default changes nothing
    assert run_options(None, device="cpu") == RunOptions(device="cpu")
    assert run_options(RunOptions(tile=64), tile=64) == RunOptions(tile=64)  # the same value twice is no conflict


def test_a_keyword_that_contradicts_the_options_is_refused():
    with pytest.raises(TypeError, match=r"tile=128 and options.tile=64 disagree"):
        run_options(RunOptions(tile=64), tile=128)
    with pytest.raises(TypeError, match="options must be a RunOptions, got dict"):
        run_options({"tile": 64})
    with pytest.raises(TypeError, match=r"backend='torch' and options.backend='onnx' disagree"):
        enhance(np.ones((8, 8)), "intensity", model="light", backend="torch", options=RunOptions(backend="onnx"))


def test_enhance_takes_the_options_as_one_object():
    image = read_fits(sample_path("blos"))[0][80:120, 80:120]
    given = enhance(image, "blos", model="light", noise=12.0, symmetric=True)
    packed = enhance(image, "blos", model="light", options=RunOptions(noise=12.0, symmetric=True))
    np.testing.assert_array_equal(packed, given)
    assert not np.array_equal(given, enhance(image, "blos", model="light", noise=12.0))


def test_batch_with_symmetric_and_uncertainty_equals_single_files(tmp_path):
    sources = _cutouts(tmp_path / "in")
    records = enhance_files(sources, tmp_path / "out", model="light", options=OPTIONS)
    assert [record["status"] for record in records] == ["done", "done"]
    for source, record in zip(sources, records, strict=True):
        single = enhance(source, model="light", output=tmp_path / "single.fits", overwrite=True, options=OPTIONS)
        batch, alone = _hdus(record["output"]), _hdus(single)
        assert sorted(batch) == sorted(alone) == ["PRIMARY", "UNCERT"]
        for name in batch:
            np.testing.assert_array_equal(batch[name], alone[name])
    # The keywords give the same batch as the options object.
    again = enhance_files(sources, tmp_path / "again", model="light", symmetric=True, uncertainty=True,
                          noise_per_frame=True, qs_level=1.02)  # fmt: skip
    for first, second in zip(records, again, strict=True):
        np.testing.assert_array_equal(_hdus(first["output"])["UNCERT"], _hdus(second["output"])["UNCERT"])


def test_batch_refuses_uncertainty_for_a_network_without_a_linear_stage_before_any_work(tmp_path):
    sources = _cutouts(tmp_path / "in", count=1)
    with pytest.raises(ValueError, match=r"uncertainty=True \(--uncertainty\) is for the models told the noise level"):
        enhance_files(sources, tmp_path / "out", model="paper-light", uncertainty=True)
    assert not (tmp_path / "out").exists()


def test_cli_batch_with_symmetric_and_uncertainty_equals_single_file_runs(tmp_path):
    sources = [str(path) for path in _cutouts(tmp_path / "in")]
    flags = ["--model", "light", "--symmetric", "--uncertainty", "--qs-level", "1.02"]
    assert main(["run", *sources, "-o", str(tmp_path / "out"), *flags, "--noise-per-frame"]) == 0
    for i, source in enumerate(sources):
        single = tmp_path / f"single{i}.fits"
        assert main(["run", source, "-o", str(single), *flags]) == 0
        batch = _hdus(tmp_path / "out" / f"cut{i}_enhanced.fits")
        assert sorted(batch) == ["PRIMARY", "UNCERT"]
        for name, data in _hdus(single).items():
            np.testing.assert_array_equal(batch[name], data)


def test_a_cube_gets_the_uncertainty_of_each_frame():
    image = read_fits(sample_path("intensity"))[0][60:100, 60:100].astype(np.float32)
    cube = np.stack([image, image[::-1]])
    # the crop holds a penumbra, whose level is not the quiet Sun's: the level is given
    result, sigma = enhance(cube, "intensity", model="light", noise=1e-3, uncertainty=True, qs_level=1.02)
    assert result.shape == sigma.shape == (2, 80, 80)
    for frame, out, err in zip(cube, result, sigma, strict=True):
        alone, alone_sigma = enhance(frame, "intensity", model="light", noise=1e-3, uncertainty=True, qs_level=1.02)
        np.testing.assert_array_equal(out, alone)
        np.testing.assert_array_equal(err, alone_sigma)


def test_dask_symmetric_equals_whole_image_and_its_uncertainty_is_refused():
    da = pytest.importorskip("dask.array")
    image = read_fits(sample_path("blos"))[0][50:150, 50:150].astype(np.float32)
    expected = enhance(image, "blos", model="light", noise=10.0, symmetric=True)
    lazy = da.from_array(image, chunks=50)
    for result in (enhance_dask(lazy, "blos", model="light", noise=10.0, symmetric=True),
                   enhance_dask(lazy, "blos", model="light", options=RunOptions(noise=10.0, symmetric=True)),
                   enhance(lazy, "blos", model="light", noise=10.0, symmetric=True)):  # fmt: skip
        np.testing.assert_allclose(result.compute(), expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    with pytest.raises(UnsupportedOptionError, match="uncertainty=True needs the whole image"):
        enhance_dask(lazy, "blos", model="light", uncertainty=True)
    with pytest.raises(UnsupportedOptionError, match="compute"):
        enhance(lazy, "blos", model="light", options=RunOptions(uncertainty=True))
