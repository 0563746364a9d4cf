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
from enhance.data import sample_path


def _fits(path, shape=(12, 10), **cards):
    header = fits.Header({"CDELT1": 0.504, "CDELT2": 0.504, "CRPIX1": 5.5, "CRPIX2": 6.5, **cards})
    fits.PrimaryHDU(np.ones(shape, dtype=np.float32), header=header).writeto(path)
    return str(path)


@pytest.mark.filterwarnings("ignore:tile=\\d+ is smaller than the network's reach")  # many tiles on purpose
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


@pytest.mark.filterwarnings("always:.*times the estimated quiet-Sun level")  # one level across limb darkening
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
        warned = "or its quiet Sun varies (limb darkening" in capsys.readouterr().err
        assert warned == (mode == "level")  # one estimated level only
    assert np.allclose(outputs["surface"], enhance(ramp, "intensity", network=tiny_net, qs_level="surface"), rtol=1e-5)
    assert np.allclose(outputs["0.7"], enhance(ramp, "intensity", network=tiny_net, qs_level=0.7), rtol=1e-5)
    assert not np.allclose(outputs["surface"], outputs["level"], rtol=1e-3)
    for bad in ("-1", "limb"):
        with pytest.raises(SystemExit) as err:
            main(["run", str(source), "-o", str(tmp_path / "x.fits"), "--weights", weights, "--qs-level", bad])
        assert err.value.code == 2
        assert "expected a positive number, 'level' or 'surface'" in capsys.readouterr().err


def _granules(path, **cards):
    """A continuum-like image (positive, around 1) with an HMI header."""
    image = 1 + 0.04 * np.random.default_rng(7).standard_normal((12, 10)).astype(np.float32)
    header = fits.Header({"CDELT1": 0.504, "CDELT2": 0.504, "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", **cards})
    fits.PrimaryHDU(image, header=header).writeto(path)
    return str(path)


def test_exit_status_is_1_for_runtime_failures_and_2_for_usage_errors_in_single_and_batch_mode(
    tmp_path, weights, capsys
):
    doppler = _granules(tmp_path / "dopp.fits", BUNIT="cm/s", CONTENT="DOPPLERGRAM")
    assert main(["run", doppler, "-o", str(tmp_path / "d.fits"), "--weights", weights]) == 1
    err = capsys.readouterr().err
    assert "is a Dopplergram" in err
    assert "--force" in err
    assert err.count("\n") == 1
    assert err.startswith("enhance: error: ")
    good = _granules(tmp_path / "good.fits", BUNIT="I/Ic")
    assert main(["run", doppler, good, "-o", str(tmp_path / "outdir"), "--weights", weights]) == 1
    err = capsys.readouterr().err
    assert "is a Dopplergram" in err
    # Usage errors: arguments that do not fit together, as argparse's own.
    assert main(["run", doppler, good, "-o", str(tmp_path / "x.fits"), "--weights", weights]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["run", good, "-o", str(tmp_path / "y.fits"), "--tile", "0"])
    assert exit_info.value.code == 2
    # --force runs the Dopplergram as the kind given.
    forced = ["run", doppler, "-o", str(tmp_path / "d.fits"), "-t", "intensity", "--force", "--weights", weights]
    assert main(forced) == 0


def test_options_that_do_not_fit_a_batch_are_usage_errors_named_by_their_flags(tmp_path, weights, capsys):
    sources = [_fits(tmp_path / f"in{i}.fits", BUNIT="I/Ic") for i in range(2)]
    out = str(tmp_path / "out")
    both = ["run", *sources, "-o", out, "--weights", weights, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]
    assert main(both) == 2
    err = capsys.readouterr().err
    assert "--workers" in err
    assert "--scheduler" in err
    assert "n_workers=" not in err
    assert not Path(out).exists()  # refused before any work


def test_dask_options_without_dask_say_what_to_install_before_any_work(tmp_path, weights, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec

    def no_distributed(name, *args, **kwargs):
        return None if name == "distributed" or name.startswith("distributed.") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", no_distributed)
    sources = [_fits(tmp_path / f"in{i}.fits", BUNIT="I/Ic") for i in range(2)]
    out = tmp_path / "out"
    assert main(["run", *sources, "-o", str(out), "--weights", weights, "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'solar-enhance[dask]'" in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_magnetogram_given_as_intensity_names_the_flag(tmp_path, weights, capsys):
    source = _granules(tmp_path / "m.fits", BUNIT="Mx/cm2", CONTENT="MAGNETOGRAM")
    assert main(["run", source, "-o", str(tmp_path / "o.fits"), "-t", "intensity", "--weights", weights]) == 1
    assert "looks like a magnetogram" in (err := capsys.readouterr().err)
    assert "-t blos" in err


def test_an_output_is_not_enhanced_again_whatever_its_name(tmp_path, weights, capsys):
    source = _granules(tmp_path / "in.fits", BUNIT="I/Ic")
    first = tmp_path / "enhanced.fits"
    assert main(["run", source, "-o", str(first), "--weights", weights]) == 0
    assert fits.getheader(first)["ENH_VER"] == __version__
    capsys.readouterr()
    again = tmp_path / "twice.fits"
    assert main(["run", str(first), "-o", str(again), "--weights", weights]) == 1
    assert "written by solar-enhance" in capsys.readouterr().err
    assert not again.exists()
    # In a batch over the folder it is skipped with the reason, and the real input is enhanced.
    assert main(["run", str(tmp_path), "-o", str(tmp_path / "out"), "--weights", weights]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err
    assert "written by solar-enhance" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.fits")) == ["in_enhanced.fits"]


def test_quiet_and_verbose(tmp_path, weights, capsys):
    source = _granules(tmp_path / "in.fits", BUNIT="I/Ic")
    assert main(["run", source, "-o", str(tmp_path / "a.fits"), "--weights", weights, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""
    assert main(["-q", "run", source, "-o", str(tmp_path / "a.fits"), "--weights", weights]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "exists" in captured.err  # errors still show


def test_no_progress_bars_when_stderr_is_not_a_terminal(tmp_path, weights):
    """The installed script, with stderr to a pipe: no tqdm bar in it, one error line and exit 1."""
    script = shutil.which("enhance", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the enhance script is not installed in this environment")
    sources = [_granules(tmp_path / f"g{i}.fits", BUNIT="I/Ic") for i in range(2)]
    result = subprocess.run([script, "run", *sources, "-o", str(tmp_path / "out"), "--weights", weights],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    assert "files:" not in result.stderr
    assert "it/s" not in result.stderr


def test_warnings_are_sunpy_user_warnings():
    from sunpy.util.exceptions import SunpyUserWarning

    from enhance.exceptions import EnhanceUserWarning

    assert issubclass(EnhanceUserWarning, SunpyUserWarning)


def test_demo_subcommand_writes_helioprojective_figures(tmp_path, capsys):
    from enhance.models.registry import shipped

    if ("intensity", "light") not in shipped() or ("blos", "light") not in shipped():
        pytest.skip("no shipped light models")
    assert main(["demo", "-o", str(tmp_path), "--model", "light"]) == 0
    assert "wrote" in capsys.readouterr().out
    for stem in ("hmi_continuum_ar_enhanced", "hmi_blos_ar_enhanced"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
        header = fits.getheader(tmp_path / f"{stem}.fits")
        assert header["CTYPE1"] == "HPLN-TAN"
        assert header["CDELT1"] == pytest.approx(0.252)
        assert header["CRPIX1"] == pytest.approx(200.5)  # 2 * 100.5 - 0.5: the same centre


def test_verbose_logs_the_normalisation_on_stderr(tmp_path, weights, capsys):
    source = _granules(tmp_path / "in.fits", BUNIT="I/Ic")
    assert main(["run", source, "-o", str(tmp_path / "a.fits"), "--weights", weights, "-v"]) == 0
    err = capsys.readouterr().err
    assert "enhance: info: continuum 12 x 10: normalised by the quiet-Sun level" in err
    assert main(["run", source, "-o", str(tmp_path / "b.fits"), "--weights", weights]) == 0
    assert "info" not in capsys.readouterr().err  # warnings and errors only by default


def test_headerless_magnetogram_given_as_intensity_is_named(tmp_path, weights, capsys):
    """No BUNIT or CONTENT: the values tell (half the pixels negative), and the message names -t blos."""
    field = np.random.default_rng(9).normal(0, 300, (12, 10)).astype(np.float32)
    path = tmp_path / "bare.fits"
    fits.PrimaryHDU(field, header=fits.Header({"CDELT1": 0.504, "CDELT2": 0.504})).writeto(path)
    assert main(["run", str(path), "-o", str(tmp_path / "o.fits"), "-t", "intensity", "--weights", weights]) == 1
    err = capsys.readouterr().err
    assert "looks like a magnetogram" in err
    assert "-t blos" in err
    assert "qs_level=" not in err


@pytest.mark.filterwarnings("always:.*is a magnetogram. it runs without the quiet-Sun level")
def test_qs_level_applies_to_the_continuum_files_of_a_batch_and_is_refused_with_t_blos(tmp_path, capsys):
    from enhance.data import sample_path
    from enhance.io import read_fits

    inputs = [str(sample_path("intensity")), str(sample_path("blos"))]
    runs = {}
    for name, extra in (("plain", []), ("level", ["--qs-level", "0.8"])):
        assert main(["run", *inputs, "-o", str(tmp_path / name), "--model", "light", *extra]) == 0
        runs[name] = {path.name: read_fits(path)[0] for path in (tmp_path / name).glob("*.fits")}
        assert ("hmi_blos_ar.fits is a magnetogram: it runs without the quiet-Sun level given"
                in capsys.readouterr().err) == (name == "level")  # said, not silent  # fmt: skip
    magnetogram, continuum = "hmi_blos_ar_enhanced.fits", "hmi_continuum_ar_enhanced.fits"
    np.testing.assert_array_equal(runs["level"][magnetogram], runs["plain"][magnetogram])  # no level for a field
    assert not np.allclose(runs["level"][continuum], runs["plain"][continuum], rtol=1e-3)  # the level was used
    assert main(["run", inputs[1], "-o", str(tmp_path / "b.fits"), "-t", "blos", "--qs-level", "1"]) == 1
    assert "--qs-level) is for continuum images" in capsys.readouterr().err
    assert not (tmp_path / "b.fits").exists()


def test_an_interrupt_while_the_command_line_loads_ends_with_one_line(monkeypatch, capsys):
    import enhance.cli
    from enhance.__main__ import main as script

    def interrupted(argv=None):  # Ctrl-C before enhance.cli.main's own handler is in place
        raise KeyboardInterrupt

    monkeypatch.setattr(enhance.cli, "main", interrupted)
    assert script(["--version"]) == 1
    assert capsys.readouterr().err == "enhance: error: interrupted\n"


def test_a_helioprojective_axis_whose_unit_is_not_an_angle_is_refused(tmp_path, weights, capsys):
    source = _fits(tmp_path / "in.fits", BUNIT="I/Ic", CTYPE1="HPLN-TAN", CTYPE2="HPLT-TAN", CUNIT1="furlong",
                   CUNIT2="furlong")  # fmt: skip
    assert main(["run", source, "-o", str(tmp_path / "o.fits"), "--weights", weights]) == 1
    assert "has CUNIT1 = 'furlong', not an angle" in capsys.readouterr().err
    assert not (tmp_path / "o.fits").exists()
    assert main(["run", source, "-o", str(tmp_path / "o.fits"), "--weights", weights, "--force"]) == 0


@pytest.mark.parametrize("cards", [{"CDELT1": 0.0}, {"PC1_1": 1.0, "PC1_2": 1.0, "PC2_1": 1.0, "PC2_2": 1.0}],
                         ids=["CDELT1 zero", "PC of equal rows"])  # fmt: skip
def test_a_singular_wcs_is_refused_even_with_force(tmp_path, weights, capsys, cards):
    source = _fits(tmp_path / "in.fits", BUNIT="I/Ic", CTYPE1="HPLN-TAN", CTYPE2="HPLT-TAN", **cards)
    for extra in ([], ["--force"]):
        assert main(["run", source, "-o", str(tmp_path / "o.fits"), "--weights", weights, *extra]) == 1
        assert "is singular, which puts every pixel on one line of the sky" in capsys.readouterr().err
    assert not (tmp_path / "o.fits").exists()


@pytest.mark.parametrize("output", ["", "  ", "-"])
def test_an_output_that_names_no_file_is_a_usage_error(tmp_path, weights, capsys, output, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty name would be the current directory
    source = _fits(tmp_path / "in.fits", BUNIT="I/Ic")
    with pytest.raises(SystemExit) as info:
        main(["run", source, "-o", output, "--weights", weights])
    assert info.value.code == 2
    assert "argument -o/--output: expected a file or directory name" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.fits", "tiny.safetensors"]


def test_warnings_print_as_one_line_of_the_command_line_in_a_fresh_process(tmp_path):
    # sunpy, first imported by the warning class, installs its logger's showwarning: the command line's stays.
    source = tmp_path / "in.fits"
    image, header = fits.getdata(sample_path("blos"), header=True)
    fits.writeto(source, image, header)
    command = [sys.executable, "-m", "enhance", "run", str(source), "-o", str(tmp_path / "o.fits"), "--model", "light",
               "--qs-level", "1"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("enhance: warning: EnhanceUserWarning: "), result.stderr
