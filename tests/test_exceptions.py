"""The warning and error classes, and the library's typed errors and statuses: each class is the builtin (or
sunpy) class it refines, so that callers catching that class still catch this package's; each error is raised
(or recorded) where the condition arises, and the command line's exit status and message come from its type."""

import builtins
import errno
import inspect
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sunpy.util.exceptions import SunpyUserWarning

from enhance import exceptions
from enhance.cli import FAILURE, USAGE, main
from enhance.exceptions import (
    ClusterError,
    DataLeakageError,
    DiskFullError,
    EnhancedInputError,
    EnhanceError,
    EnhanceUserWarning,
    IncompatibleOptionsError,
    ModelNotTrainedError,
    NoiseLevelWarning,
    OutputExistsError,
    UnsupportedOptionError,
)

BUILTINS = {
    ModelNotTrainedError: LookupError,
    OutputExistsError: FileExistsError,
    DiskFullError: OSError,
    EnhancedInputError: ValueError,
    DataLeakageError: ValueError,
    IncompatibleOptionsError: ValueError,
    ClusterError: RuntimeError,
    UnsupportedOptionError: ValueError,
}


def test_every_error_is_an_enhance_error_and_the_builtin_it_refines():
    errors = {getattr(exceptions, name) for name in exceptions.__all__ if name.endswith("Error")}
    assert errors == {EnhanceError, *BUILTINS}
    for error, builtin in BUILTINS.items():
        assert issubclass(error, EnhanceError)
        assert issubclass(error, builtin)  # code that catches the builtin keeps working


PUBLIC = [getattr(exceptions, name) for name in exceptions.__all__]
BUILTIN_ERRORS = {c for c in vars(builtins).values() if inspect.isclass(c) and issubclass(c, BaseException)}


def test_every_public_name_is_a_warning_or_error_class():
    assert PUBLIC
    assert all(inspect.isclass(c) and issubclass(c, Exception) for c in PUBLIC)


@pytest.mark.parametrize("cls", PUBLIC, ids=[c.__name__ for c in PUBLIC])
def test_each_class_stands_for_a_specific_builtin(cls):
    """Every warning is one of sunpy's (so a filter on sunpy's warnings covers it); every error derives from a
    builtin more specific than Exception (so ``except LookupError`` and the like keep working)."""
    if issubclass(cls, Warning):
        assert issubclass(cls, EnhanceUserWarning)
        assert issubclass(cls, SunpyUserWarning)
        assert issubclass(cls, UserWarning)
    elif cls is not EnhanceError:  # the base of the package's errors, caught as itself
        specific = [b for b in cls.__mro__ if b in BUILTIN_ERRORS and b not in (Exception, BaseException, object)]
        assert specific, f"{cls.__name__} derives from no builtin error more specific than Exception"


def test_a_filter_on_sunpys_warnings_turns_ours_into_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SunpyUserWarning)
        with pytest.raises(NoiseLevelWarning, match="far from HMI's"):
            warnings.warn("noise far from HMI's", NoiseLevelWarning, stacklevel=1)


def test_ignoring_our_warnings_leaves_other_user_warnings_alone():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=EnhanceUserWarning)
        warnings.warn("ours", NoiseLevelWarning, stacklevel=1)
        warnings.warn("someone else's", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["someone else's"]


def test_model_not_trained_is_caught_as_a_lookup_error_and_prints_its_message_plainly():
    msg = "no trained weights for blos/full"
    with pytest.raises(LookupError) as info:
        raise ModelNotTrainedError(msg)
    assert str(info.value) == "no trained weights for blos/full"  # not KeyError's quoted repr
    assert not issubclass(ModelNotTrainedError, KeyError)


def _inputs(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    header = fits.Header({"BUNIT": "I/Ic", "CDELT1": 0.504, "CDELT2": 0.504})
    for i in range(n):
        fits.writeto(folder / f"hmi.ic_45s.{i}.fits", (1 + 0.04 * rng.standard_normal((12, 16))).astype(np.float32),
                     header)  # fmt: skip
    return folder


# -- a full disk: told by errno, whatever the message's language --


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_is_a_disk_full_error_by_errno_not_by_message(tmp_path, weights, monkeypatch, code):
    import enhance.inference.distributed as engine

    def full(path, *args, **kwargs):  # a translated strerror: the text says nothing the code may match
        raise OSError(code, "Kein Speicherplatz auf dem Gerät verfügbar", str(path))

    monkeypatch.setattr(engine, "write_fits", full)
    records = engine.enhance_files(_inputs(tmp_path / "in"), tmp_path / "out", weights=weights)
    assert [record["status"] for record in records] == [engine.Status.FAILED] * 3
    assert all(isinstance(record["error"], DiskFullError) for record in records)
    assert records[0]["error"].errno == code
    assert "Kein Speicherplatz" in str(records[0]["error"])
    # The first file found the disk full; the others were not tried (the run stops).
    assert [record["reason"].startswith("OSError: not run: no space left") for record in records] == [False, True, True]


def test_another_write_error_is_not_a_full_disk_and_the_run_goes_on(tmp_path, weights, monkeypatch):
    import enhance.inference.distributed as engine

    calls = []

    def denied(path, *args, **kwargs):
        calls.append(path)
        raise OSError(errno.EACCES, "No space left on device (a message that lies)", str(path))

    monkeypatch.setattr(engine, "write_fits", denied)
    records = engine.enhance_files(_inputs(tmp_path / "in"), tmp_path / "out", weights=weights)
    assert len(calls) == 3  # every file was tried
    assert all(type(record["error"]) is PermissionError for record in records)  # OSError(EACCES, ...) is one


def test_a_file_write_that_fills_the_disk_raises_disk_full_and_leaves_nothing(tmp_path, weights, monkeypatch, capsys):
    from enhance.io import atomic_write

    def fills(tmp):
        Path(tmp).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(DiskFullError) as caught:
        atomic_write(folder / "a.fits", fills)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(folder / "a.fits")
    assert list(folder.iterdir()) == []  # neither the file nor its temporary part
    with pytest.raises(PermissionError):  # another OSError stays what it is
        atomic_write(folder / "b.fits", lambda tmp: (_ for _ in ()).throw(PermissionError(errno.EACCES, "no")))

    def full(self, *args, **kwargs):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    source = _inputs(tmp_path / "in", n=1) / "hmi.ic_45s.0.fits"
    monkeypatch.setattr(fits.HDUList, "writeto", full)  # every FITS write of the package
    assert main(["run", str(source), "-o", str(tmp_path / "out.fits"), "--weights", weights]) == FAILURE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("enhance: error: ")
    assert os.strerror(errno.EDQUOT) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "tiny.safetensors"]


def test_the_cli_reports_a_full_disk_once_by_its_type(tmp_path, weights, monkeypatch, capsys):
    import enhance.inference.distributed as engine

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "Kein Speicherplatz auf dem Gerät verfügbar", str(path))

    monkeypatch.setattr(engine, "write_fits", full)
    out = tmp_path / "out"
    assert main(["run", str(_inputs(tmp_path / "in")), "-o", str(out), "--weights", weights]) == FAILURE
    err = capsys.readouterr().err
    assert err.count("enhance: error:") == 1
    assert f"no space left on device in {out}: 3 files not written" in err


# -- an existing output --


def test_a_complete_output_is_skipped_with_an_output_exists_error(tmp_path, weights, capsys):
    from enhance.inference.distributed import Status, enhance_files

    folder, out = _inputs(tmp_path / "in", n=2), tmp_path / "out"
    assert all(record["error"] is None for record in enhance_files(folder, out, weights=weights))
    again = enhance_files(folder, out, weights=weights)
    assert [record["status"] for record in again] == [Status.SKIPPED] * 2
    assert all(isinstance(record["error"], OutputExistsError) for record in again)
    assert main(["run", str(folder), "-o", str(out), "--weights", weights]) == 0
    assert "skipped 2 outputs that exist and are complete" in capsys.readouterr().out


def test_a_complete_file_of_another_program_fails_with_an_output_exists_error(tmp_path, weights):
    from enhance.inference.distributed import Status, enhance_files, output_path

    folder, out = _inputs(tmp_path / "in", n=1), tmp_path / "out"
    out.mkdir()
    foreign = output_path(folder / "hmi.ic_45s.0.fits", out)
    fits.writeto(foreign, np.zeros((24, 32), np.float32))
    (record,) = enhance_files(folder, out, weights=weights)
    assert record["status"] is Status.FAILED
    assert isinstance(record["error"], OutputExistsError)
    assert "was not written by solar-enhance" in str(record["error"])
    assert np.all(fits.getdata(foreign) == 0)  # left alone


def test_a_single_output_that_exists_is_refused_before_any_work(tmp_path, weights, capsys):
    from enhance.inference.distributed import prepare_output
    from enhance.io import check_new_file

    source = _inputs(tmp_path / "in", n=1) / "hmi.ic_45s.0.fits"
    target = tmp_path / "out.fits"
    target.write_bytes(b"an earlier result")
    for refuse in (lambda: prepare_output(source, target), lambda: check_new_file(target)):
        with pytest.raises(OutputExistsError, match="out.fits exists; use --overwrite"):
            refuse()
    assert prepare_output(source, target, overwrite=True) == target
    assert main(["run", str(source), "-o", str(target), "--weights", weights]) == FAILURE
    assert f"enhance: error: {target} exists; use --overwrite to replace it\n" in capsys.readouterr().err
    assert target.read_bytes() == b"an earlier result"


def test_an_output_of_solar_enhance_as_input_is_skipped_with_its_own_error(tmp_path, weights, capsys):
    from enhance.inference.distributed import Status, enhance_files

    out = tmp_path / "out"
    enhance_files(_inputs(tmp_path / "in", n=1), out, weights=weights)
    enhanced = out / "hmi.ic_45s.0_enhanced.fits"
    (record,) = enhance_files([enhanced], tmp_path / "again", weights=weights)
    assert record["status"] is Status.SKIPPED
    assert isinstance(record["error"], EnhancedInputError)
    assert main(["run", str(enhanced), "-o", str(tmp_path / "twice.fits"), "--weights", weights]) == FAILURE
    assert f"enhance: error: {enhanced}: written by solar-enhance" in capsys.readouterr().err


def test_a_failed_record_keeps_the_error_type_and_the_reason_its_name(tmp_path, weights):
    from enhance.inference.distributed import enhance_files

    folder = _inputs(tmp_path / "in", n=1)
    (folder / "corrupt.fits").write_bytes(b"SIMPLE  =  this is not a FITS file")
    record = enhance_files(folder, tmp_path / "out", weights=weights)[0]
    assert type(record["error"]) is ValueError
    assert record["reason"] == f"ValueError: {record['error']}"
    assert record["error"].__traceback__ is None  # a record holds no frames (nor the images in them)


# -- options that do not fit together, a batch told from a single file --


def test_a_batch_into_a_fits_name_is_a_usage_error(tmp_path, weights, capsys):
    from enhance.inference.distributed import check_batch_output

    for name in ("out.fits", "out.fits.gz", "OUT.FTS"):
        with pytest.raises(IncompatibleOptionsError, match="must be a directory"):
            check_batch_output(tmp_path / name)
    (tmp_path / "file").write_text("")
    with pytest.raises(IncompatibleOptionsError):
        check_batch_output(tmp_path / "file")
    assert check_batch_output(tmp_path / "new") == tmp_path / "new"
    folder = _inputs(tmp_path / "in", n=1)
    assert main(["run", str(folder), "-o", str(tmp_path / "out.fits"), "--weights", weights]) == USAGE
    assert not (tmp_path / "out.fits").exists()


def test_is_batch(tmp_path):
    from enhance.inference.distributed import is_batch

    folder = _inputs(tmp_path / "in", n=2)
    one = folder / "hmi.ic_45s.0.fits"
    assert not is_batch([one], tmp_path / "a.fits")
    assert is_batch([one], tmp_path / "a.fits", n_workers=2)
    assert is_batch([one], tmp_path / "a.fits", client="tcp://127.0.0.1:8786")
    assert is_batch([one, folder / "hmi.ic_45s.1.fits"], tmp_path / "a.fits")
    assert is_batch([folder], tmp_path / "a.fits")
    assert is_batch([str(folder / "*.fits")], tmp_path / "a.fits")
    assert is_batch([one], folder)  # into an existing directory
    assert is_batch([one], f"{tmp_path / 'new'}{os.sep}")
    odd = tmp_path / "odd[1].fits"  # a file whose name holds glob characters is a file
    odd.write_bytes(one.read_bytes())
    assert not is_batch([odd], tmp_path / "a.fits")


def test_a_cluster_that_does_not_start_is_a_cluster_error_in_one_line(tmp_path, weights, monkeypatch, capsys):
    pytest.importorskip("distributed")
    import enhance.inference.distributed as engine

    def dies(n_workers):
        msg = "Nanny failed to start.\nTraceback (most recent call last):\n  ..."
        raise RuntimeError(msg)

    monkeypatch.setattr(engine, "local_cluster", dies)
    folder = _inputs(tmp_path / "in", n=1)
    with pytest.raises(ClusterError, match="LocalCluster of 2 workers did not start: Nanny failed to start.$"):
        engine.enhance_files(folder, tmp_path / "out", weights=weights, n_workers=2)
    assert main(["run", str(folder), "-o", str(tmp_path / "out2"), "--weights", weights, "--workers", "2"]) == FAILURE
    err = capsys.readouterr().err
    assert err == "enhance: error: the Dask LocalCluster of 2 workers did not start: Nanny failed to start.\n"


# -- training data that would leak into validation --


def test_a_simulation_also_given_as_a_training_file_is_a_leak(tmp_path, monkeypatch):
    from enhance.training.datasets import recipe_sources

    field = tmp_path / "sim.fits"
    fits.writeto(field, np.ones((64, 64), np.float32), fits.Header({"CDELT1": 0.0662, "CUNIT1": "arcsec"}))
    monkeypatch.chdir(tmp_path)
    for spelling in (field, "sim.fits", f"./sub/../{field.name}"):  # the same file by other paths
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(DataLeakageError, match="held-out rows would be trained on"):
            recipe_sources("intensity", simulation=field, files=[spelling], n_frames=1, shape=(100, 100))
    other = tmp_path / "other.fits"
    fits.writeto(other, np.ones((64, 64), np.float32), fits.Header({"CDELT1": 0.0662, "CUNIT1": "arcsec"}))
    sources = recipe_sources("intensity", simulation=field, files=[other], n_frames=1, shape=(100, 100))
    assert len(sources) == 1 + 16 + 1  # the synthetic scenes, 16 times the training rows, the file
    assert sources[-1].name == other.name


# -- what the CLI no longer asks the machine itself --


def test_the_machine_description_reads_the_cpu_model(tmp_path):
    from enhance.analysis.validate import machine_description

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000 @ 3.00GHz\nflags\t\t: fpu\n")
    text = machine_description(seconds=94.6, cpuinfo=cpuinfo)
    assert text == f"Test CPU 9000 @ 3.00GHz, {os.cpu_count()} CPUs shared with other jobs; run took 95 s"
    assert machine_description(cpuinfo=tmp_path / "missing").endswith(f", {os.cpu_count()} CPUs shared with other jobs")


def test_the_warning_classes_load_sunpy_only_when_first_used_and_stay_one_class():
    code = (
        "import sys, threading\n"
        "import enhance.exceptions as e\n"
        "before = 'sunpy' in sys.modules\n"
        "found = []\n"
        "threads = [threading.Thread(target=lambda: found.append(e.NoiseLevelWarning)) for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "from sunpy.util.exceptions import SunpyUserWarning\n"
        "print(before, len(set(found)), issubclass(found[0], SunpyUserWarning), found[0] is e.NoiseLevelWarning)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["False", "1", "True", "True"]


def test_a_missing_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchWarning"):
        _ = exceptions.NoSuchWarning
    assert {"EnhanceUserWarning", "NoiseLevelWarning"} <= set(dir(exceptions))
