"""Hostile inputs and faults: extreme values, crafted files, dying workers, interrupted and concurrent batches."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from enhance.inference.pipeline import RunOptions, enhance_array


class _Counting(torch.nn.Module):
    """A network that counts its forward passes: "refused before any work" means zero."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def _extreme_images():
    spike32 = np.ones((20, 20), np.float32)
    spike32[7, 9] = 1e38
    spike64 = np.ones((20, 20))
    spike64[3, 4] = 1e300
    tiny = np.full((20, 20), 1e-300)
    tiny[5, 5] = 1000.0
    return {"float32 1e38": spike32, "float64 1e300": spike64, "1e-300 with one 1000": tiny}


@pytest.mark.parametrize("name", list(_extreme_images()))
@pytest.mark.parametrize("kind", ["intensity", "blos"])
def test_extreme_finite_values_are_refused_before_any_work(tiny_net, name, kind):
    image = _extreme_images()[name]
    if kind == "blos" and name == "1e-300 with one 1000":
        image = image * 1e7  # 1e10 G: ten million kG
    counting = _Counting(tiny_net)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning on the way
        with pytest.raises(ValueError, match=r"times (the quiet-Sun level|1 kG).*mask such pixels as NaN") as info:
            enhance_array(image, kind=kind, network=counting, options=RunOptions(backend="torch"))
    assert counting.calls == 0
    assert "\n" not in str(info.value)


def test_the_refused_pixel_is_quoted_with_its_sign():
    from enhance.checks import check_magnitude

    image = np.ones((6, 6))
    image[2, 4] = -3e38
    with pytest.raises(ValueError, match=r"image pixel \(2, 4\) = -3e\+38 is 3e\+38 times"):
        check_magnitude(image, 1.0, unit="the quiet-Sun level")


def test_tiny_units_and_large_but_solar_values_stay_finite(tiny_net):
    tiny = np.full((20, 20), 1e-300)  # any units: only the ratio to the quiet Sun matters
    tiny[5, 5] = 3e-300
    out = enhance_array(tiny, kind="intensity", network=tiny_net)
    assert np.isfinite(out).all()
    assert 0 < np.median(out) < 1e-299
    field = np.zeros((20, 20))
    field[4, 4] = 5000.0  # 5 kG
    assert np.isfinite(enhance_array(field, kind="blos", network=tiny_net)).all()


def test_a_network_that_overflows_is_an_error_not_a_silent_nan(tiny_net):
    with torch.no_grad():
        tiny_net.conv_out.weight.mul_(1e38)
    image = np.ones((16, 16), np.float32)
    image[3, 3] = 50.0
    with pytest.raises(ValueError, match="non-finite output pixels for finite input"):
        enhance_array(image, kind="intensity", network=tiny_net, options=RunOptions(backend="torch"))


# -- the batch engine -------------------------------------------------------------------------------------


def _scene(shape, seed):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    return (1 + 0.3 * ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)).astype(np.float32)


def _fits_inputs(folder, n=3, *, kind="intensity"):
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    unit = {"intensity": "I/Ic", "blos": "G"}[kind]
    for i in range(n):
        header = fits.Header({"BUNIT": unit, "CDELT1": 0.504, "CDELT2": 0.504, "CRPIX1": 8.5, "CRPIX2": 6.5})
        data = _scene((12 + i, 16), seed=i) * (1 if kind == "intensity" else 100)
        fits.PrimaryHDU(data, header=header).writeto(folder / f"hmi.ic_45s.{i}.fits")
    return folder


def test_the_manifest_of_a_serial_batch_is_pinned(tmp_path, weights, tiny_net):
    """Today's behaviour of `enhance_files`, pinned before its code was split into helpers."""
    import csv

    from astropy.io import fits

    from enhance import enhance_files
    from enhance.inference.distributed import MANIFEST_FIELDS, MANIFEST_NAME

    folder = _fits_inputs(tmp_path / "in")
    (folder / "corrupt.fits").write_bytes(b"SIMPLE  =  this is not a FITS file")
    (folder / "notes.txt").write_text("not an input")
    out = tmp_path / "out"
    records = enhance_files(folder, out, weights=weights, as_frame=False)
    with (out / MANIFEST_NAME).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(MANIFEST_FIELDS)
    assert [{k: v for k, v in row.items() if k not in ("finished", "seconds")} for row in rows] == [
        {k: str(v) for k, v in r.items() if k not in ("finished", "seconds", "error")} for r in records
    ]  # the typed error of a record is not written
    names = [(Path(r["input"]).name, Path(r["output"]).name, r["status"], r["kind"], r["worker"]) for r in records]
    assert names == [
        ("corrupt.fits", "corrupt_enhanced.fits", "failed", "", "local"),
        *[(f"hmi.ic_45s.{i}.fits", f"hmi.ic_45s.{i}_enhanced.fits", "done", "intensity", "local") for i in range(3)],
    ]
    assert records[0]["reason"].startswith("ValueError: ")
    assert "corrupt.fits is not a readable FITS file" in records[0]["reason"]
    assert all(r["model"].startswith("tiny.safetensors sha256:") for r in records)
    for i in range(3):
        image = fits.getdata(folder / f"hmi.ic_45s.{i}.fits")
        expected = enhance_array(image, kind="intensity", network=tiny_net)
        np.testing.assert_array_equal(fits.getdata(out / f"hmi.ic_45s.{i}_enhanced.fits"), expected)
    again = enhance_files(folder, out, weights=weights, as_frame=False)
    assert [(r["status"], r["reason"]) for r in again[1:]] == [("skipped", "output exists and is complete")] * 3
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_NAME, *(f"hmi.ic_45s.{i}_enhanced.fits"
                                                                             for i in range(3))])  # fmt: skip


def _manifest_rows(out):
    import csv

    from enhance.inference.distributed import MANIFEST_NAME

    with (out / MANIFEST_NAME).open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def scheduler_without_workers():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_a_batch_on_a_cluster_without_workers_times_out_into_failed_rows(tmp_path, weights, scheduler_without_workers):
    from enhance import enhance_files

    folder = _fits_inputs(tmp_path / "in", n=2)
    out = tmp_path / "out"
    records = enhance_files(folder, out, weights=weights, client=scheduler_without_workers, no_progress_timeout=2,
                            as_frame=False)  # fmt: skip
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert all("no file finished in 2 s" in r["reason"] for r in records)
    assert [row["status"] for row in _manifest_rows(out)] == ["failed", "failed"]
    with pytest.raises(ValueError, match="no_progress_timeout must be None or a positive number"):
        enhance_files(folder, out, weights=weights, no_progress_timeout=0)


def test_cli_timeout_flag_ends_a_stalled_batch_with_exit_1(tmp_path, weights, scheduler_without_workers, capsys):
    from enhance.cli import main

    folder = _fits_inputs(tmp_path / "in", n=2)
    address = scheduler_without_workers.scheduler.address
    code = main(["run", str(folder), "-o", str(tmp_path / "out"), "--weights", weights, "--scheduler", address,
                 "--timeout", "2"])  # fmt: skip
    assert code == 1
    assert "no file finished in 2 s" in capsys.readouterr().err


def test_a_cluster_that_does_not_start_is_one_line(tmp_path, weights, monkeypatch, capsys):
    pytest.importorskip("distributed")
    import enhance.inference.distributed as engine
    from enhance.cli import main

    def dies(n_workers):
        msg = "Nanny failed to start."
        raise RuntimeError(msg)

    monkeypatch.setattr(engine, "local_cluster", dies)
    folder = _fits_inputs(tmp_path / "in", n=1)
    code = main(["run", str(folder), "-o", str(tmp_path / "out"), "--weights", weights, "--workers", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == ["enhance: error: the Dask LocalCluster of 2 workers did not start: Nanny failed to start."]
    assert [row["status"] for row in _manifest_rows(tmp_path / "out")] == []


def test_an_allocator_failure_in_preflight_is_one_line_naming_the_weights(tmp_path, weights, monkeypatch, capsys):
    import enhance.inference.distributed as engine
    from enhance.cli import main

    def fails(path, *, kind):
        msg = "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory\nmore"
        raise RuntimeError(msg)

    monkeypatch.setattr(engine, "_load_file", fails)
    folder = _fits_inputs(tmp_path / "in", n=2)
    code = main(["run", str(folder), "-o", str(tmp_path / "out"), "--weights", weights])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1
    assert f"weights file {Path(weights).resolve()} cannot be loaded" in err[0]
    assert "DefaultCPUAllocator" in err[0]


def test_an_interrupted_batch_writes_its_manifest(tmp_path, weights, monkeypatch):
    import enhance.inference.distributed as engine
    from enhance import enhance_files

    calls = []
    original = engine.enhance_array

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM as the CLI turns it
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "enhance_array", interrupted)
    folder = _fits_inputs(tmp_path / "in", n=4)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        enhance_files(folder, out, weights=weights, as_frame=False)
    rows = _manifest_rows(out)
    assert [(Path(r["input"]).name, r["status"]) for r in rows] == [("hmi.ic_45s.0.fits", "done"),
                                                                   ("hmi.ic_45s.1.fits", "done")]  # fmt: skip
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".part")) == []


def test_outputs_that_workers_finished_during_an_interruption_are_recorded(tmp_path, weights, monkeypatch):
    """A task whose result never reached the interrupted run (its worker wrote the output while the run was
    shutting down) is a 'done' row of the manifest, not an output on disk that no record mentions."""
    import os

    import enhance.inference.distributed as engine
    from enhance import enhance_files

    folder = _fits_inputs(tmp_path / "in", n=3)
    out = tmp_path / "out"
    # An output of an earlier run, unrecorded and older than this run: not claimed as this run's work.
    enhance_files(folder / "hmi.ic_45s.2.fits", out, weights=weights, as_frame=False)
    (out / engine.MANIFEST_NAME).unlink()
    os.utime(out / "hmi.ic_45s.2_enhanced.fits", (1e9, 1e9))

    def interrupted(task, sources, targets, finished):
        task(sources[0], targets[0])  # written by a worker; its result is lost in the interruption
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_run_serial", interrupted)
    with pytest.raises(KeyboardInterrupt):
        enhance_files(folder, out, weights=weights, as_frame=False)
    rows = _manifest_rows(out)
    assert [(Path(r["input"]).name, r["status"], r["kind"]) for r in rows] == [("hmi.ic_45s.0.fits", "done",
                                                                                "intensity")]  # fmt: skip
    assert "interrupted" in rows[0]["reason"]


@pytest.mark.parametrize("batch", [False, True])
def test_a_fifo_or_a_directory_given_as_weights_is_named_not_read(tmp_path, batch):
    """Reading a FIFO would wait for a writer forever: the weights file is checked before it is opened."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "w.safetensors"
    os.mkfifo(fifo)
    source = _fits_inputs(tmp_path / "in", n=1) / "hmi.ic_45s.0.fits"
    out = f"{tmp_path / 'out'}/" if batch else str(tmp_path / "out.fits")
    code = "import sys; from enhance.cli import main; sys.exit(main(sys.argv[1:]))"
    for weights in (fifo, tmp_path / "in"):
        run = subprocess.run([sys.executable, "-c", code, "run", str(source), "-o", out, "--weights", str(weights)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert run.returncode == 1, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1
        assert f"weights file {weights}" in lines[0]
        assert "not found" not in lines[0]


def test_stale_part_files_of_our_naming_are_removed(tmp_path, weights):
    import os

    from enhance import enhance_files
    from enhance.io import _lock

    folder = _fits_inputs(tmp_path / "in", n=1)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".hmi.ic_45s.0_enhanced.fits.k3j_x9a2.part"
    stale.write_bytes(b"\0" * 4096)  # left by a SIGKILLed writer
    stale_manifest = out / ".enhance_manifest.csv.abcdefgh.part"
    stale_manifest.write_text("input,output\n")
    other = out / ".notes.txt.abcdefgh.part"  # not ours
    other.write_text("keep")
    live = out / ".hmi.ic_45s.7_enhanced.fits.q1w2e3r4.part"  # a concurrent run is writing it
    live.write_bytes(b"\0" * 10)
    young = out / ".hmi.ic_45s.8_enhanced.fits.z9y8x7w6.part"  # just created: its writer may lock it next
    young.write_bytes(b"\0" * 10)
    for path in (stale, stale_manifest, other, live):
        os.utime(path, (1e9, 1e9))  # long ago
    fd = os.open(live, os.O_RDWR)
    try:
        assert _lock(fd)
        records = enhance_files(folder, out, weights=weights, as_frame=False)
        assert [r["status"] for r in records] == ["done"]
        assert not stale.exists()
        assert not stale_manifest.exists()
        assert other.exists()
        assert live.exists()
        assert young.exists()
    finally:
        os.close(fd)


def test_a_race_lost_to_a_concurrent_run_is_skipped_and_the_manifest_merges(tmp_path, weights, monkeypatch):
    import shutil

    import enhance.inference.distributed as engine
    from enhance import enhance_files

    folder = _fits_inputs(tmp_path / "in", n=3)
    winner = tmp_path / "winner"
    first = enhance_files(folder, winner, weights=weights, as_frame=False)  # the other run's outputs
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(winner / "enhance_manifest.csv", out / "enhance_manifest.csv")
    text = (out / "enhance_manifest.csv").read_text().replace(str(winner), str(out))
    (out / "enhance_manifest.csv").write_text(text)
    original = engine.enhance_array

    def slow(*args, **kwargs):  # the other run publishes this output while we compute it
        result = original(*args, **kwargs)
        name = f"hmi.ic_45s.{len(list(out.glob('*_enhanced.fits')))}_enhanced.fits"
        shutil.copy(winner / name, out / name)
        return result

    monkeypatch.setattr(engine, "enhance_array", slow)
    records = enhance_files(folder, out, weights=weights, as_frame=False)
    assert [(r["status"], r["reason"]) for r in records] == [("skipped", "another run wrote this output meanwhile")] * 3
    rows = _manifest_rows(out)
    assert [row["status"] for row in rows] == ["done"] * 3 + ["skipped"] * 3  # the winner's rows are kept
    assert [row["worker"] for row in rows[:3]] == [r["worker"] for r in first]
    assert [row["reason"] for row in rows[3:]] == ["another run wrote this output meanwhile"] * 3


def test_output_directory_and_header_are_checked_before_the_network_runs(tmp_path, weights, monkeypatch):

    import enhance.inference.distributed as engine
    from enhance.inference.distributed import enhance_file, model_label

    ran = []
    monkeypatch.setattr(engine, "enhance_array", lambda *a, **k: ran.append(1))
    folder = _fits_inputs(tmp_path / "in", n=1)
    source = folder / "hmi.ic_45s.0.fits"
    task = {"kind": "auto", "weights": weights, "model": "full", "label": model_label(weights, "full"),
            "options": RunOptions(), "overwrite": False, "consistency": False}  # fmt: skip
    record = enhance_file(source, tmp_path / "missing" / "out.fits", **task)
    assert record["status"] == "failed"
    assert record["reason"] == f"FileNotFoundError: output directory not found: {tmp_path / 'missing'}"
    for key, value in (("CRPIX1", "'abc'"), ("CDELT1", "'abc'"), ("CRPIX2", "NAN")):
        bad = tmp_path / f"bad_{key}.fits"
        raw = bytearray(source.read_bytes())  # edited as bytes: astropy writes no NaN into a header
        at = raw.index(key.ljust(8).encode())
        raw[at : at + 80] = f"{key:<8}= {value:>20}".ljust(80).encode()
        bad.write_bytes(bytes(raw))
        record = enhance_file(bad, tmp_path / f"out_{key}.fits", **task)
        assert record["status"] == "failed"
        assert key in record["reason"]  # "header key CDELT1 = 'abc' is not a finite number"; astropy's for NAN
        assert value != "'abc'" or f"header key {key} = 'abc' is not a finite number" in record["reason"]
    assert ran == []


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into read-only directories")  # fmt: skip
def test_an_unwritable_output_directory_is_refused_before_any_work(tmp_path, weights):
    from enhance import enhance_files

    folder = _fits_inputs(tmp_path / "in", n=1)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="is not writable"):
            enhance_files(folder, out, weights=weights)
    finally:
        out.chmod(0o755)


def test_existing_outputs_are_replaced_only_if_incomplete_or_ours(tmp_path, weights):
    from astropy.io import fits

    from enhance import enhance_files

    folder = _fits_inputs(tmp_path / "in", n=3)
    out = tmp_path / "out"
    out.mkdir()
    foreign = out / "hmi.ic_45s.0_enhanced.fits"  # a valid file someone else wrote, of another shape
    fits.PrimaryHDU(np.ones((5, 5), np.float32)).writeto(foreign)
    before = foreign.read_bytes()
    records = enhance_files(folder, out, weights=weights, as_frame=False)
    assert records[0]["status"] == "failed"
    assert "was not written by solar-enhance; use --overwrite" in records[0]["reason"]
    assert foreign.read_bytes() == before
    # One of ours for another input shape is replaced; one truncated only in its padding too.
    ours = out / "hmi.ic_45s.1_enhanced.fits"
    padded = out / "hmi.ic_45s.2_enhanced.fits"
    size = padded.stat().st_size
    padded.write_bytes(padded.read_bytes()[: size - 100])  # the cut lies in the zero padding
    with fits.open(ours) as hdul:
        header = hdul[0].header
        fits.PrimaryHDU(np.ones((8, 8), np.float32), header=header).writeto(ours, overwrite=True)
    records = enhance_files(folder, out, weights=weights, as_frame=False)
    assert records[1]["status"] == "done"
    assert "replaced an output of solar-enhance of shape (8, 8)" in records[1]["reason"]
    assert (records[2]["status"], records[2]["reason"]) == ("done", "replaced an incomplete output")
    assert fits.getdata(padded).shape == (2 * 14, 32)


def test_enhance_writes_an_fz_output_as_enhance_run_does(tmp_path, tiny_net):
    """``enhance(path, output='x.fits.fz')`` tile-compresses like ``enhance run -o x.fits.fz``, in the file's
    unit (a magnetogram in kG is quantised in steps of 2 G), instead of failing after the work."""
    from astropy.io import fits

    from enhance import enhance

    folder = _fits_inputs(tmp_path / "in", n=1, kind="blos")
    source = folder / "hmi.ic_45s.0.fits"
    with fits.open(source) as hdul:
        hdul[0].data = hdul[0].data / 1000.0
        hdul[0].header["BUNIT"] = "kG"
        hdul.writeto(tmp_path / "kg.fits")
    out = enhance(tmp_path / "kg.fits", "blos", network=tiny_net, output=tmp_path / "o.fits.fz")
    plain = enhance(tmp_path / "kg.fits", "blos", network=tiny_net, output=tmp_path / "o.fits")
    with fits.open(out) as hdul:
        assert isinstance(hdul[1], fits.CompImageHDU)
        assert hdul[1].header["BUNIT"] == "kG"
        error = np.abs(hdul[1].data - fits.getdata(plain)).max()
    assert 0 < error <= 1e-3 + 1e-6  # half a step of 2 G, in kG


def test_gzip_and_fz_output_names(tmp_path, weights):
    import gzip

    from astropy.io import fits

    from enhance.cli import main
    from enhance.io import write_fits

    folder = _fits_inputs(tmp_path / "in", n=1)
    source = folder / "hmi.ic_45s.0.fits"
    assert main(["run", str(source), "-o", str(tmp_path / "o.fits.gz"), "--weights", weights]) == 0
    with gzip.open(tmp_path / "o.fits.gz") as handle:
        assert handle.read(6) == b"SIMPLE"
    plain = tmp_path / "o.fits"
    assert main(["run", str(source), "-o", str(plain), "--weights", weights]) == 0
    np.testing.assert_array_equal(fits.getdata(tmp_path / "o.fits.gz"), fits.getdata(plain))
    assert main(["run", str(source), "-o", str(tmp_path / "o.fits.fz"), "--weights", weights]) == 0
    with fits.open(tmp_path / "o.fits.fz") as hdul:
        assert isinstance(hdul[1], fits.CompImageHDU)
    with pytest.raises(ValueError, match=r"only .fits, .fits.gz \(gzip\) and .fits.fz"):
        write_fits(tmp_path / "o.fits.bz2", np.ones((4, 4)))


def test_a_degenerate_first_axis_gives_a_header_with_the_right_axes(tmp_path):
    from astropy.io import fits

    from enhance.io import read_fits, upscale_header

    header = fits.Header()
    for axis, (ctype, crpix, cdelt) in enumerate([("WAVE", 1.0, 0.01), ("HPLN-TAN", 10.5, 0.504),
                                                  ("HPLT-TAN", 15.5, 0.504)], start=1):  # fmt: skip
        header[f"CTYPE{axis}"], header[f"CRPIX{axis}"], header[f"CDELT{axis}"] = ctype, crpix, cdelt
    header["PC2_3"] = 0.0
    fits.writeto(tmp_path / "cube.fits", np.zeros((30, 20, 1), np.float32), header)
    data, read = read_fits(tmp_path / "cube.fits")
    assert data.shape == (30, 20)
    new = upscale_header(read, 2)
    assert (new["NAXIS"], new["NAXIS1"], new["NAXIS2"]) == (2, 40, 60)
    assert (new["CTYPE1"], new["CTYPE2"]) == ("HPLN-TAN", "HPLT-TAN")
    assert (new["CRPIX1"], new["CRPIX2"], new["CDELT1"]) == (20.5, 30.5, 0.252)
    assert "PC1_2" in new
    assert "CTYPE3" not in new
    assert "WAVE" not in repr(new)


def test_messages_name_the_culprit(tmp_path, weights, blos_weights):
    import os

    from astropy.io import fits

    from enhance import enhance_files
    from enhance.inference.distributed import MANIFEST_NAME, enhance_file, model_label
    from enhance.io import read_fits

    folder = _fits_inputs(tmp_path / "in", n=1)
    source = folder / "hmi.ic_45s.0.fits"
    # A weights problem names the weights file, not the input.
    record = enhance_file(source, tmp_path / "o.fits", kind="auto", weights=blos_weights, model="full",
                          label="x", options=RunOptions(), overwrite=False, consistency=False)  # fmt: skip
    assert record["status"] == "failed"
    assert record["reason"].startswith(f"ValueError: {blos_weights} holds a 'blos' network")
    assert str(source) not in record["reason"]
    # A header that claims 100000 x 100000 pixels in a 3 KB file is truncated.
    huge = tmp_path / "huge.fits"
    header = fits.Header({"SIMPLE": True, "BITPIX": -32, "NAXIS": 2, "NAXIS1": 100000, "NAXIS2": 100000})
    huge.write_bytes(header.tostring().encode() + b"\0" * 2880)
    with pytest.raises(ValueError, match=r"huge.fits is truncated or corrupt: its headers claim 40000003200 bytes"):
        read_fits(huge)
    # A directory or a FIFO given as an input.
    (tmp_path / "dir.fits").mkdir()
    with pytest.raises(ValueError, match="dir.fits is a directory, not a FITS file"):
        read_fits(tmp_path / "dir.fits")
    fifo = tmp_path / "pipe.fits"
    os.mkfifo(fifo)
    records = enhance_files([fifo, source], tmp_path / "out", weights=weights, as_frame=False)
    assert "pipe.fits is a FIFO (named pipe), not a FITS file" in records[0]["reason"]
    assert records[1]["status"] == "done"
    # A garbage manifest is named before any work.
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / MANIFEST_NAME).write_bytes(b"\xff\xfe\x00garbage\x00" * 50)
    with pytest.raises(ValueError, match=f"manifest {tmp_path / 'out2' / MANIFEST_NAME} "):
        enhance_files(source, tmp_path / "out2", weights=weights)
    assert not (tmp_path / "out2" / "hmi.ic_45s.0_enhanced.fits").exists()
    del model_label


def test_disk_full_is_reported_once(tmp_path, weights, monkeypatch, capsys):
    import errno

    import enhance.inference.distributed
    from enhance.cli import main

    def full(path, *args, **kwargs):  # the images fill the disk; the small manifest still fits
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(enhance.inference.distributed, "write_fits", full)
    folder = _fits_inputs(tmp_path / "in", n=3)
    out = tmp_path / "out"
    out.mkdir()
    code = main(["run", str(folder), "-o", str(out), "--weights", weights])
    err = capsys.readouterr().err
    assert code == 1
    assert err.lower().count("no space left on device") == 1
    assert "3 files not written" in err


def test_compressed_outputs_keep_the_error_below_a_tenth_of_the_noise(tmp_path, weights, blos_weights):
    from astropy.io import fits

    from enhance import enhance_files
    from enhance.constants import HMI_NOISE
    from enhance.inference.pipeline import COMPRESS_STEP, quantize_step

    for kind, w in (("intensity", weights), ("blos", blos_weights)):
        folder = _fits_inputs(tmp_path / kind / "in", n=2, kind=kind)
        plain = enhance_files(folder, tmp_path / kind / "plain", weights=w, as_frame=False)
        packed = enhance_files(folder, tmp_path / kind / "packed", weights=w, compress=True, as_frame=False)
        assert [r["status"] for r in packed] == ["done", "done"]
        for a, b, source in zip(plain, packed, sorted(folder.iterdir()), strict=True):
            with fits.open(b["output"]) as hdul:
                assert isinstance(hdul[1], fits.CompImageHDU)
                assert hdul[1].header["ENH_VER"]
                packed_data = hdul[1].data
            step = quantize_step(fits.getdata(source), kind)
            noise = HMI_NOISE[kind] * (1.0 if kind == "blos" else step / (COMPRESS_STEP * HMI_NOISE[kind]))
            error = np.abs(packed_data - fits.getdata(a["output"]))
            assert error.max() <= 0.5 * step * 1.001
            assert error.max() <= 0.1 * noise * 1.001
        again = enhance_files(folder, tmp_path / kind / "packed", weights=w, compress=True, as_frame=False)
        assert [r["status"] for r in again] == ["skipped", "skipped"]


def test_a_single_file_run_removes_the_stale_part_of_its_output(tmp_path, weights):
    import os

    from enhance.cli import main

    folder = _fits_inputs(tmp_path / "in", n=1)
    stale = tmp_path / ".o.fits.abcd1234.part"
    stale.write_bytes(b"\0" * 100)
    os.utime(stale, (1e9, 1e9))
    assert main(["run", str(folder / "hmi.ic_45s.0.fits"), "-o", str(tmp_path / "o.fits"), "--weights", weights]) == 0
    assert not stale.exists()


def test_workers_that_keep_dying_end_in_failed_rows_not_a_hang(tmp_path, weights):
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    from enhance import enhance_files

    class KillOnTask(distributed.diagnostics.plugin.WorkerPlugin):
        """Every worker dies as soon as it starts a task; the nanny starts another, which dies too."""

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing":
                import os

                os._exit(1)

    folder = _fits_inputs(tmp_path / "in", n=2)
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1000}),
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.register_plugin(KillOnTask())
        records = enhance_files(folder, tmp_path / "out", weights=weights, client=client, no_progress_timeout=4,
                                as_frame=False)  # fmt: skip
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert all("no file finished in 4 s" in r["reason"] for r in records)
    assert [row["status"] for row in _manifest_rows(tmp_path / "out")] == ["failed", "failed"]


# -- the manifest: never a FIFO, written as each file finishes, a log of every run -------------------------


@pytest.mark.parametrize("nature", ["fifo", "directory"])
def test_a_manifest_path_that_is_not_a_regular_file_is_refused_before_any_work(tmp_path, weights, nature):
    """Opening a FIFO named enhance_manifest.csv would wait for a writer forever: the run is refused at once."""
    import os
    import subprocess
    import sys

    from enhance.inference.distributed import MANIFEST_NAME

    folder = _fits_inputs(tmp_path / "in", n=1)
    out = tmp_path / "out"
    out.mkdir()
    manifest = out / MANIFEST_NAME
    os.mkfifo(manifest) if nature == "fifo" else manifest.mkdir()
    code = "import sys; from enhance.cli import main; sys.exit(main(sys.argv[1:]))"
    run = subprocess.run([sys.executable, "-c", code, "run", str(folder), "-o", str(out), "--weights", weights],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 1, run.stderr
    (line,) = run.stderr.strip().splitlines()
    expected = "a FIFO (named pipe)" if nature == "fifo" else "a directory"
    assert f"manifest {manifest} is {expected}, not a CSV file" in line
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME]  # no output written


def test_a_killed_batch_leaves_the_rows_of_every_file_it_finished(tmp_path, weights):
    """SIGKILL (no clean-up runs) after two of four files: their rows are on disk, whole, and nothing else."""
    import csv
    import subprocess
    import sys

    from enhance.inference.distributed import MANIFEST_FIELDS, MANIFEST_NAME

    folder = _fits_inputs(tmp_path / "in", n=4)
    out = tmp_path / "out"
    script = """
import os, signal, sys
import enhance.inference.distributed as engine
calls, original = [], engine.enhance_array
def killed(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
engine.enhance_array = killed
engine.enhance_files(sys.argv[1], sys.argv[2], weights=sys.argv[3])
"""
    run = subprocess.run([sys.executable, "-c", script, str(folder), str(out), weights], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == -9, run.stderr
    with (out / MANIFEST_NAME).open(newline="") as handle:
        table = csv.DictReader(handle)
        rows = list(table)
    assert tuple(table.fieldnames) == MANIFEST_FIELDS
    assert [(Path(r["input"]).name, r["status"]) for r in rows] == [("hmi.ic_45s.0.fits", "done"),
                                                                   ("hmi.ic_45s.1.fits", "done")]  # fmt: skip
    assert all(r["reason"] == "" and float(r["seconds"]) > 0 for r in rows)


def test_a_failed_append_leaves_no_half_row(tmp_path, monkeypatch):
    import errno
    import os

    import enhance.inference.distributed as engine

    path = tmp_path / engine.MANIFEST_NAME
    engine._start_manifest(path)
    row = dict.fromkeys(engine.MANIFEST_FIELDS, "x")
    engine._append_manifest(path, [row])
    before = path.read_bytes()
    real_write = os.write

    def half(fd, data):  # the disk fills in the middle of the row
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half)
    with pytest.raises(OSError, match="No space left"):
        engine._append_manifest(path, [row])
    monkeypatch.undo()
    assert path.read_bytes() == before
    engine._append_manifest(path, [row])
    assert path.read_bytes().count(b"\n") == 3


def test_a_manifest_of_other_columns_is_rewritten_once_with_its_rows(tmp_path, weights):
    import csv

    from enhance import enhance_files
    from enhance.inference.distributed import MANIFEST_FIELDS, MANIFEST_NAME

    folder = _fits_inputs(tmp_path / "in", n=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST_NAME).write_text("input,output,status\r\nold.fits,old_enhanced.fits,done\r\n")
    enhance_files(folder, out, weights=weights)
    with (out / MANIFEST_NAME).open(newline="") as handle:
        table = csv.DictReader(handle)
        rows = list(table)
    assert tuple(table.fieldnames) == MANIFEST_FIELDS
    assert [(r["input"], r["status"], r["kind"]) for r in rows] == [("old.fits", "done", ""),
                                                                  (str(folder / "hmi.ic_45s.0.fits"), "done",
                                                                   "intensity")]  # fmt: skip


def test_enhance_files_returns_a_list_of_dicts_with_or_without_pandas(tmp_path, weights, monkeypatch):
    import sys

    from enhance import enhance_files
    from enhance.inference.distributed import MANIFEST_FIELDS

    folder = _fits_inputs(tmp_path / "in", n=1)
    records = enhance_files(folder, tmp_path / "out", weights=weights)
    assert type(records) is list
    assert [list(r) for r in records] == [[*MANIFEST_FIELDS, "error"]]
    monkeypatch.setitem(sys.modules, "pandas", None)  # pandas not installed: the opt-in says what it needs
    with pytest.raises(ImportError, match="as_frame=True needs pandas"):
        enhance_files(folder, tmp_path / "out2", weights=weights, as_frame=True)
    assert not (tmp_path / "out2").exists()  # refused before any work
