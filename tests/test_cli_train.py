"""The training-side subcommands: synth, dataset build, train, validate."""

import json
from importlib.resources import files

import numpy as np
import pytest
from astropy.io import fits

from enhance.cli import main
from enhance.io import detect_kind
from enhance.models.pretrained import load_network


def test_synth_writes_a_continuum_and_a_magnetogram(tmp_path, capsys):
    cont, bz = tmp_path / "c.fits", tmp_path / "b.fits"
    assert main(["synth", str(cont), str(bz), "--shape", "96", "128", "--kind", "plage", "--seed", "3"]) == 0
    assert fits.getdata(cont).shape == (96, 128)
    assert detect_kind(fits.getheader(cont)) == "intensity"
    assert detect_kind(fits.getheader(bz)) == "blos"
    assert main(["synth", str(cont), str(bz), "--shape", "96", "128"]) != 0  # never overwrites silently
    assert "exists" in capsys.readouterr().err
    assert main(["synth", str(cont)]) != 0
    assert "two output files" in capsys.readouterr().err


def test_dataset_build_refuses_a_simulation_that_is_also_a_source(tmp_path, capsys):
    field = tmp_path / "sim.fits"
    header = fits.Header({"CDELT1": 0.0662, "CDELT2": 0.0662, "CUNIT1": "arcsec", "CUNIT2": "arcsec"})
    fits.writeto(field, np.ones((64, 64), dtype=np.float32), header)
    args = ["dataset", "build", str(tmp_path / "p.h5"), "--frames", "1", "--shape", "200", "200"]
    assert main([*args, "--simulation", str(field), "--source", str(field)]) != 0
    assert "held-out rows would be trained on" in capsys.readouterr().err
    assert not (tmp_path / "p.h5").exists()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    common = ["--frames", "1", "--shape", "400", "400", "--patches-per-frame", "8", "--noise", "0"]
    assert main(["dataset", "build", str(folder / "train.h5"), "--kind", "blos", *common]) == 0
    assert main(["dataset", "build", str(folder / "val.h5"), "--kind", "blos", "--held-out", *common]) == 0
    return folder


def test_dataset_build_writes_aligned_pairs(pairs):
    import h5py

    with h5py.File(pairs / "train.h5", "r") as f:
        assert f["inputs"].shape == (8, 50, 50)
        assert f["targets"].shape == (8, 100, 100)
        assert f.attrs["kind"] == "blos"
        assert f.attrs["noise"] == 0
        train_first = np.array(f["inputs"][0])
    with h5py.File(pairs / "val.h5", "r") as f:
        assert not np.array_equal(train_first, np.array(f["inputs"][0]))  # held-out scenes differ


def test_train_then_validate_from_the_command_line(pairs, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(pairs / "train.h5"), "--val", str(pairs / "val.h5"), "--kind", "blos",
            "--model", "paper-light", "--steps", "3", "--batch-size", "4", "--eval-interval", "3",
            "--out-dir", str(out)]  # fmt: skip
    assert main(args) == 0
    assert "done: step 3" in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())
    assert [row["step"] for row in history] == [3]
    net = load_network(out / "final.safetensors", kind="blos")
    assert (net.depth, net.width) == (1, 32)
    # Resuming a finished run does no more steps; a different model size is refused.
    assert main(args) == 0
    assert main([*args[:-2], "--out-dir", str(out), "--model", "paper"]) != 0
    assert "holds a network with" in capsys.readouterr().err
    # Wrong kind of pairs.
    assert main(["train", "--data", str(pairs / "train.h5"), "--kind", "intensity", "--steps", "1",
                 "--out-dir", str(tmp_path / "x")]) != 0  # fmt: skip
    assert "holds blos pairs" in capsys.readouterr().err

    # Averaging checkpoints (SWA): a network, never written over an existing file, missing files named.
    swa = tmp_path / "swa.safetensors"
    average = ["average", str(swa), str(out / "checkpoint.pt"), "--data", str(pairs / "train.h5"),
               "--val", str(pairs / "val.h5")]  # fmt: skip
    assert main(average) == 0
    assert "mean of the checkpoints of steps [3]" in capsys.readouterr().out
    assert load_network(swa, kind="blos").width == 32
    assert main(average) != 0
    assert "exists" in capsys.readouterr().err
    assert main(["average", str(tmp_path / "other.safetensors"), str(tmp_path / "nope.pt"), *average[3:]]) != 0
    assert "checkpoint not found" in capsys.readouterr().err

    report_dir = tmp_path / "report"
    assert main(["validate", "--kind", "blos", "--weights", f"light={out / 'final.safetensors'}",
                 "--shape", "160", "160", "-o", str(report_dir)]) == 0  # fmt: skip
    text = (report_dir / "validation_blos.md").read_text()
    assert "| light | enhance |" in text
    assert "synthetic active_region" in text
    assert "## Real HMI data" in text  # the packaged sample, by default


# The half-pixel shift of a 96-pixel crop by a cubic spline damps its spectrum's corners: the noise level is then
# HMI's nominal one, with this warning, as in `enhance validate --physics`.
@pytest.mark.filterwarnings("ignore:the noise level cannot be measured reliably")
def test_validate_compare_holds_weights_against_the_first_row_by_row(tmp_path, capsys):
    shipped = str(files("enhance.data") / "enhance_blos_wiener.safetensors")
    command = ["validate", "--compare", "--kind", "blos", "--shape", "96", "96", "-o", str(tmp_path / "none")]
    assert main([*command, "--weights", f"a={shipped}"]) != 0
    assert "needs two or more --weights" in capsys.readouterr().err
    assert main([*command, "--weights", shipped, "--weights", shipped]) != 0  # two files of the same name
    assert "two --weights have the label 'enhance_blos_wiener'" in capsys.readouterr().err
    assert main([*command, "--weights", f"a={shipped}", "--weights", f"b={shipped}"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| synthetic")]
    # 3 scenes x 4 noise levels and 3 x 2 PSF mismatches, PSNR and SSIM; the same weights are equal on every row.
    assert len(rows) == 36
    assert all(line.endswith(("| +0.00 | +0.00 |", "| +0.000 | +0.000 |")) for line in rows)
    assert sum(" half-pixel flicker along " in line for line in out.splitlines()) == 2  # the packaged sample
    assert "PSNR: b 18 of 18; b D4 18 of 18" in out
    assert "SSIM: b 18 of 18; b D4 18 of 18" in out
    assert "flicker: b 2 of 2; b D4 2 of 2" in out
    assert "b: as good or better on 38 of 38 rows" in out
    assert "b D4: as good or better on 38 of 38 rows" in out
    assert not (tmp_path / "none").exists()  # no report is written


def test_validate_without_trained_models_says_so(capsys, no_shipped_models):
    assert main(["validate", "--kind", "intensity"]) != 0
    assert "not trained yet" in capsys.readouterr().err


def test_sigterm_leaves_no_partial_dataset(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "pairs.h5"
    command = [sys.executable, "-m", "enhance.cli", "dataset", "build", str(out), "--kind", "blos", "--frames", "500",
               "--shape", "400", "400", "--patches-per-frame", "4", "--noise", "0"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".pairs.h5.*.part")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, "the build ended before it could be interrupted"
    time.sleep(0.5)  # well inside the build
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "interrupted" in err
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary file
