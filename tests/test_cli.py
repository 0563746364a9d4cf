import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from conftest import SHARED_DATA, needs_shared
from enhance import __version__
from enhance.cli import main


def _fits(path, shape=(12, 10), **cards):
    header = fits.Header({"CDELT1": 0.504, "CDELT2": 0.504, "CRPIX1": 5.5, "CRPIX2": 6.5, **cards})
    fits.PrimaryHDU(np.ones(shape, dtype=np.float32), header=header).writeto(path)
    return str(path)


def test_run_writes_the_x2_image_and_refuses_to_overwrite(tmp_path, weights, capsys):
    source = _fits(tmp_path / "in.fits", BUNIT="I/Ic")
    out = tmp_path / "out.fits"
    assert main(["run", source, "-o", str(out), "--weights", weights]) == 0
    with fits.open(out) as hdul:
        assert hdul[0].data.shape == (24, 20)
        assert hdul[0].header["CDELT1"] == pytest.approx(0.252)
        assert hdul[0].header["CRPIX1"] == pytest.approx(10.5)
        assert "tiny.safetensors" in str(hdul[0].header["HISTORY"])
    assert "in.fits ->" in capsys.readouterr().out
    before = out.read_bytes()
    assert main(["run", source, "-o", str(out), "--weights", weights]) != 0
    assert "exists; use --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["run", source, "-o", str(out), "--weights", weights, "--overwrite", "--tile", "4"]) == 0


def test_run_several_inputs_into_a_directory(tmp_path, blos_weights):
    sources = [_fits(tmp_path / f"m{i}.fits", BUNIT="G") for i in range(2)]
    outdir = tmp_path / "out"
    outdir.mkdir()
    assert main(["run", *sources, "-o", str(outdir), "--weights", blos_weights]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["enhance_manifest.csv", "m0_enhanced.fits", "m1_enhanced.fits"]


def test_run_errors_are_one_line_and_non_zero(tmp_path, weights, capsys, no_shipped_models):
    out = str(tmp_path / "out.fits")
    assert main(["run", str(tmp_path / "missing.fits"), "-o", out, "-t", "intensity", "--weights", weights]) != 0
    assert "input file not found" in capsys.readouterr().err
    cube = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.zeros((3, 4, 4))).writeto(cube)
    assert main(["run", str(cube), "-o", out, "-t", "intensity", "--weights", weights]) != 0
    assert "must be 2-D" in capsys.readouterr().err
    table = tmp_path / "table.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=[1.0])])]
    ).writeto(table)
    assert main(["run", str(table), "-o", out, "-t", "intensity", "--weights", weights]) != 0
    assert "holds no image data" in capsys.readouterr().err
    unknown = _fits(tmp_path / "unknown.fits")
    assert main(["run", unknown, "-o", out, "--weights", weights]) != 0
    assert "cannot tell continuum from magnetogram" in capsys.readouterr().err
    assert main(["run", unknown, "-o", out, "-t", "intensity"]) != 0
    assert "not trained yet" in capsys.readouterr().err
    assert not Path(out).exists()
    with pytest.raises(SystemExit):
        main(["run", unknown, "-o", out, "-t", "doppler"])
    assert "invalid choice" in capsys.readouterr().err


def test_weights_of_the_wrong_kind_are_refused(tmp_path, weights, capsys):
    source = _fits(tmp_path / "m.fits", BUNIT="G")
    assert main(["run", source, "-o", str(tmp_path / "o.fits"), "--weights", weights]) != 0
    assert "holds a 'intensity' network, but kind='blos'" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_installed_script_runs(tmp_path, weights):
    script = shutil.which("enhance", path=str(Path(sys.executable).parent))
    assert script is not None, "the enhance console script is not installed"
    source = _fits(tmp_path / "in.fits", BUNIT="I/Ic")
    result = subprocess.run([script, "run", source, "-o", str(tmp_path / "o.fits"), "--weights", weights],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert fits.getdata(tmp_path / "o.fits").shape == (24, 20)


@needs_shared
def test_run_on_real_hmi_continuum(tmp_path, weights):
    out = tmp_path / "out.fits"
    assert (
        main(
            ["run", str(SHARED_DATA / "hmi_continuum_ar.fits"), "-o", str(out), "-t", "intensity", "--weights", weights]
        )
        == 0
    )
    with fits.open(out) as hdul:
        assert hdul[0].data.shape == (400, 400)
        assert hdul[0].header["CDELT1"] == pytest.approx(0.252)


def test_run_qs_level_modes(tmp_path, weights, tiny_net, capsys):
    from enhance import enhance
    from enhance.io import read_fits

    ramp = np.tile(np.linspace(0.5, 0.9, 40), (30, 1)).astype(np.float32)  # limb darkening across the field
    source = tmp_path / "limb.fits"
    fits.PrimaryHDU(ramp, header=fits.Header({"CDELT1": 0.504, "CDELT2": 0.504, "BUNIT": "I/Ic"})).writeto(source)
    outputs = {}
    for mode in ("level", "surface", "0.7"):
        out = tmp_path / f"{mode}.fits"
        assert main(["run", str(source), "-o", str(out), "--weights", weights, "--qs-level", mode]) == 0
        outputs[mode] = read_fits(out)[0]
    assert np.allclose(outputs["surface"], enhance(ramp, "intensity", network=tiny_net, qs_level="surface"), rtol=1e-5)
    assert np.allclose(outputs["0.7"], enhance(ramp, "intensity", network=tiny_net, qs_level=0.7), rtol=1e-5)
    assert not np.allclose(outputs["surface"], outputs["level"], rtol=1e-3)
    for bad in ("-1", "limb"):
        with pytest.raises(SystemExit) as err:
            main(["run", str(source), "-o", str(tmp_path / "x.fits"), "--weights", weights, "--qs-level", bad])
        assert err.value.code == 2
        assert "expected a positive number, 'level' or 'surface'" in capsys.readouterr().err
