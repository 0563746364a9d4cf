"""`enhance compare` and `enhance run --consistency` through main()."""

import json

import numpy as np
import pytest
from astropy.io import fits
from scipy import ndimage

from conftest import SHARED_DATA, needs_shared
from enhance.cli import main


def _fits(path, data, **cards):
    header = fits.Header({"CDELT1": 0.504, "CDELT2": 0.504, "CRPIX1": 12.5, "CRPIX2": 12.5, "CUNIT1": "arcsec",
                          "CUNIT2": "arcsec", **cards})  # fmt: skip
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=header).writeto(path)
    return str(path)


def _granulation(shape=(24, 24), seed=0):
    field = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), 1.5, mode="wrap")
    return 1.0 + 0.04 * field / field.std()


def test_compare_writes_figures_and_numbers(tmp_path, weights, capsys):
    source = _fits(tmp_path / "cont.fits", _granulation(), BUNIT="I/Ic")
    out = tmp_path / "diag"
    args = ["compare", source, "-o", str(out), "--weights", weights, "--n-iter", "4", "--region", "2:22,2:22"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "consistency Enhance" in printed
    assert "granulation contrast [2:22, 2:22]" in printed
    assert sorted(p.suffix for p in out.iterdir()) == [".json", ".png", ".png", ".png", ".png"]
    numbers = json.loads((out / "cont_compare.json").read_text())
    assert numbers["input"]["kind"] == "intensity"
    assert numbers["methods"]["richardson_lucy"]["n_iter"] == 4
    assert f"{100 * numbers['contrast']['input']:.2f} %" in printed
    # Again: refused without --overwrite, one line on stderr, files untouched.
    before = (out / "cont_compare.json").read_bytes()
    assert main(["compare", source, "-o", str(out), "--weights", weights]) != 0
    err = capsys.readouterr().err
    assert "exists; use --overwrite" in err
    assert err.count("\n") == 1
    assert (out / "cont_compare.json").read_bytes() == before


def test_compare_writes_into_stem_compare_by_default(tmp_path, weights, monkeypatch):
    source = _fits(tmp_path / "cont.fits", _granulation(), BUNIT="I/Ic")
    monkeypatch.chdir(tmp_path)
    assert main(["compare", source, "--weights", weights, "--n-iter", "2"]) == 0
    assert (tmp_path / "cont_compare" / "cont_images.png").is_file()


def test_compare_a_magnetogram_with_an_explicit_type(tmp_path, blos_weights, capsys):
    field = 300 * (_granulation(seed=1) - 1) / 0.04
    source = _fits(tmp_path / "mag.fits", field)  # no BUNIT: -t is needed
    assert main(["compare", source, "-o", str(tmp_path / "d"), "--weights", blos_weights]) != 0
    assert "pass -t" in capsys.readouterr().err
    assert main(["compare", source, "-t", "blos", "-o", str(tmp_path / "d"), "--weights", blos_weights,
                 "--n-iter", "3", "--damped"]) == 0  # fmt: skip
    assert "unsigned flux [Mx]" in capsys.readouterr().out
    assert json.loads((tmp_path / "d" / "mag_compare.json").read_text())["methods"]["richardson_lucy"]["damped"]


def test_compare_errors_are_one_line(tmp_path, weights, blos_weights, capsys, no_shipped_models):
    source = _fits(tmp_path / "cont.fits", _granulation(), BUNIT="I/Ic")
    assert main(["compare", source, "-o", str(tmp_path / "d"), "--weights", weights, "--region", "oops"]) != 0
    assert "Y0:Y1,X0:X1" in capsys.readouterr().err
    assert main(["compare", source, "-o", str(tmp_path / "d"), "--weights", blos_weights]) != 0
    assert "holds a 'blos' network" in capsys.readouterr().err
    assert main(["compare", source, "-o", str(tmp_path / "d")]) != 0  # no shipped model (fixture)
    assert "--weights" in capsys.readouterr().err
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_run_consistency_adds_the_map_as_a_second_hdu(tmp_path, weights):
    image = _granulation()
    source = _fits(tmp_path / "in.fits", image, BUNIT="I/Ic")
    out = tmp_path / "out.fits"
    assert main(["run", source, "-o", str(out), "--weights", weights, "--consistency"]) == 0
    with fits.open(out) as hdul:
        assert len(hdul) == 2
        assert hdul[0].data.shape == (48, 48)
        assert hdul[1].name == "CONSISTENCY"
        assert hdul[1].data.shape == image.shape
        assert hdul[1].header["CDELT1"] == 0.504
        assert hdul[1].header["BUNIT"] == "I/Ic"
        assert np.isfinite(hdul[1].data).all()
        assert hdul[1].header["CONSIST"] > 0
    plain = tmp_path / "plain.fits"
    assert main(["run", source, "-o", str(plain), "--weights", weights]) == 0
    with fits.open(plain) as hdul:
        assert len(hdul) == 1


@needs_shared
def test_compare_on_the_real_magnetogram(tmp_path, blos_weights, capsys):
    assert main(["compare", str(SHARED_DATA / "hmi_blos_ar.fits"), "-o", str(tmp_path), "--weights", blos_weights]) == 0
    numbers = json.loads((tmp_path / "hmi_blos_ar_compare.json").read_text())
    assert numbers["input"]["kind"] == "blos"
    assert numbers["consistency"]["richardson_lucy"] < 0.06


def test_compare_refuses_a_cea_map_and_forces_it(tmp_path, weights, capsys):
    header = {"CTYPE1": "CRLN-CEA", "CTYPE2": "CRLT-CEA", "CUNIT1": "degree", "CUNIT2": "degree", "CDELT1": 0.03,
              "CDELT2": 0.03, "BUNIT": "I/Ic"}  # fmt: skip
    source = _fits(tmp_path / "sharp.fits", _granulation(), **header)
    assert main(["compare", source, "-o", str(tmp_path / "d"), "--weights", weights, "--n-iter", "2"]) == 1
    err = capsys.readouterr().err
    assert "cylindrical equal-area" in err
    assert "--force" in err
    assert main(["compare", source, "-o", str(tmp_path / "d"), "--weights", weights, "--n-iter", "2", "--force"]) == 0


def test_compare_of_several_files_reports_their_temporal_flicker(tmp_path, weights, capsys):
    frames = [_fits(tmp_path / f"f{i}.fits", _granulation(seed=i), BUNIT="I/Ic") for i in range(3)]
    out = tmp_path / "diag"
    assert main(["compare", *frames, "-o", str(out), "--weights", weights, "--n-iter", "2"]) == 0
    printed = capsys.readouterr().out
    numbers = json.loads((out / "f0_compare.json").read_text())
    assert numbers["flicker"]["frames"] == 3
    assert f"temporal flicker over 3 frames: Enhance {numbers['flicker']['enhance']:.4g}" in printed


@pytest.mark.parametrize(("cards", "message"), [
    ({"CDELT1": 1.008, "CDELT2": 1.008, "BUNIT": "I/Ic"}, "f1.fits has a pixel scale of 1.008 arcsec"),
    ({"BUNIT": "G"}, "f1.fits is a magnetogram, but the sequence's first frame is a continuum image"),
])  # fmt: skip
def test_compare_checks_every_frame_before_any_work_and_names_it(tmp_path, weights, capsys, monkeypatch, cards,
                                                                  message):  # fmt: skip
    from enhance.analysis import diagnostics

    def no_work(*args, **kwargs):
        msg = "the first frame was diagnosed before the others were checked"
        raise AssertionError(msg)

    monkeypatch.setattr(diagnostics, "_x2_images", no_work)
    first = _fits(tmp_path / "f0.fits", _granulation(), BUNIT="I/Ic")
    other = _fits(tmp_path / "f1.fits", _granulation(seed=1), **{"CDELT1": 0.504, "CDELT2": 0.504, **cards})
    assert main(["compare", first, other, "-o", str(tmp_path / "diag"), "--weights", weights]) != 0
    assert message in capsys.readouterr().err
