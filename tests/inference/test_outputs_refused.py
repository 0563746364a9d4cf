"""Outputs that must never be written: special files (devices, FIFOs, directories, links to them), the input
itself under another name or a hard link, and compressed formats that cannot be written; each refused before the
network runs, with one line."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from enhance.cli import main
from enhance.io import atomic_write, check_output, write_fits


@pytest.fixture
def source(tmp_path):
    """A small continuum FITS input of 24 x 24 pixels."""
    rng = np.random.default_rng(0)
    cards = {"BUNIT": "DN/s", "CONTENT": "CONTINUUM INTENSITY", "CDELT1": 0.504, "CDELT2": 0.504, "CUNIT1": "arcsec",
             "CUNIT2": "arcsec", "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN"}  # fmt: skip
    header = fits.Header(cards)
    path = tmp_path / "in.fits"
    fits.PrimaryHDU((5e4 * (1 + 0.05 * rng.standard_normal((24, 24)))).astype(np.float32), header).writeto(path)
    return path


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if any network runs: "refused before any work" means it never does."""
    import enhance.inference.api
    import enhance.inference.distributed
    import enhance.inference.pipeline

    def refuse(*args, **kwargs):
        msg = "the network ran"
        raise AssertionError(msg)

    monkeypatch.setattr(enhance.inference.distributed, "enhance_array", refuse)
    monkeypatch.setattr(enhance.inference.pipeline, "enhance_array", refuse)
    monkeypatch.setattr(enhance.inference.api, "enhance_array", refuse)


def _special_outputs(folder: Path):
    """Outputs that are not regular files: a FIFO, a link to /dev/null, a directory given by a link, and (as root)
    a character device."""
    fifo = folder / "fifo.fits"
    os.mkfifo(fifo)
    null_link = folder / "null.fits"
    null_link.symlink_to("/dev/null")
    (folder / "sub").mkdir()
    made = {"fifo": fifo, "link to /dev/null": null_link}
    try:
        os.mknod(folder / "device.fits", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        made["device"] = folder / "device.fits"
    except PermissionError:  # not root: the link to /dev/null stands for it
        pass
    return made


def _kind_of(path: Path) -> tuple[bool, int]:
    return path.is_symlink(), os.lstat(path).st_mode


@pytest.mark.parametrize("overwrite", [False, True])
def test_enhance_run_never_replaces_a_special_file(tmp_path, source, weights, no_network, capsys, overwrite):
    for name, target in _special_outputs(tmp_path).items():
        before = _kind_of(target)
        argv = ["run", str(source), "-o", str(target), "--weights", weights] + ["--overwrite"] * overwrite
        assert main(argv) == 1, name
        err = capsys.readouterr().err.strip()
        assert "not a regular file" in err, name
        assert len(err.splitlines()) == 1
        assert _kind_of(target) == before, name  # still the FIFO, the link, the device
    assert os.stat("/dev/null").st_rdev == os.makedev(1, 3)


def test_atomic_write_replaces_only_regular_files(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "to_folder").symlink_to(tmp_path / "folder")
    targets = {**_special_outputs(tmp_path), "directory": tmp_path / "folder", "link": tmp_path / "to_folder"}
    for name, target in targets.items():
        before = _kind_of(target)
        with pytest.raises(ValueError, match="not a regular file: an output replaces only a regular file"):
            atomic_write(target, lambda tmp: Path(tmp).write_text("x"), overwrite=True)
        assert _kind_of(target) == before, name
    assert not list(tmp_path.glob(".*.part"))  # nothing left behind
    regular = tmp_path / "plain.txt"
    regular.write_text("old")
    atomic_write(regular, lambda tmp: Path(tmp).write_text("new"), overwrite=True)
    assert regular.read_text() == "new"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "nowhere")
    atomic_write(dangling, lambda tmp: Path(tmp).write_text("new"), overwrite=True)  # the link is replaced
    assert not dangling.is_symlink()
    assert not (tmp_path / "nowhere").exists()


def test_the_input_is_never_its_own_output(tmp_path, source, weights, no_network, capsys):
    os.link(source, tmp_path / "hard.fits")
    (tmp_path / "soft.fits").symlink_to(source)
    data = source.read_bytes()
    for target in (source, tmp_path / "." / "in.fits", tmp_path / "hard.fits", tmp_path / "soft.fits"):
        assert main(["run", str(source), "-o", str(target), "--weights", weights, "--overwrite"]) == 1
        err = capsys.readouterr().err
        assert "is the input" in err
        assert "the same file" in err
    assert source.read_bytes() == data
    from enhance import enhance

    with pytest.raises(ValueError, match="is the input"):
        enhance(source, output=tmp_path / "hard.fits", overwrite=True)


def test_the_batch_engine_refuses_the_input_as_output(tmp_path, source, weights, no_network):
    from enhance.inference.distributed import enhance_file
    from enhance.inference.pipeline import RunOptions

    record = enhance_file(source, source, kind="auto", weights=weights, model="full", label="x",
                          options=RunOptions(), overwrite=True, consistency=False)  # fmt: skip
    assert record["status"] == "failed"
    assert "is the input" in record["reason"]


def test_an_unsupported_compressed_output_is_refused_before_the_network(tmp_path, source, weights, no_network, capsys):
    for name in ("o.fits.bz2", "o.fits.xz", "o.FITS.ZIP"):
        assert main(["run", str(source), "-o", str(tmp_path / name), "--weights", weights]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert "only .fits, .fits.gz (gzip) and .fits.fz" in err[0]
    from enhance import enhance

    with pytest.raises(ValueError, match=r"only .fits, .fits.gz"):
        enhance(source, output=tmp_path / "o.fits.bz2")
    assert not list(tmp_path.glob("o.*"))


def test_check_output_accepts_what_can_be_written(tmp_path, source):
    for name in ("a.fits", "a.fits.gz", "a.fits.fz", "a.fts"):
        check_output(tmp_path / name, source=source)
    write_fits(tmp_path / "a.fits", np.ones((4, 4), np.float32))
    check_output(tmp_path / "a.fits", source=source)  # an existing regular file: replaceable with overwrite


def test_enhance_refuses_an_existing_output_before_the_network(tmp_path, source, no_network):
    from enhance import enhance
    from enhance.exceptions import OutputExistsError

    existing = tmp_path / "out.fits"
    existing.write_bytes(b"kept")
    with pytest.raises(OutputExistsError, match="out.fits exists; use --overwrite"):
        enhance(source, model="light", output=existing, uncertainty=True)
    assert existing.read_bytes() == b"kept"


def test_an_output_named_for_another_format_is_refused_before_the_network(tmp_path, source, weights, no_network,
                                                                           capsys):  # fmt: skip
    for name in ("out.txt", "out.PNG", "out.h5", "out.fits.json"):
        assert main(["run", str(source), "-o", str(tmp_path / name), "--weights", weights]) == 1
        assert "only .fits, .fits.gz (gzip) and .fits.fz" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.fits", "tiny.safetensors"]
    check_output(tmp_path / "hmi.Ic_45s.20240101_000000_TAI.2.continuum")  # no suffix of another format


def test_a_header_sunpy_makes_no_map_of_is_refused_before_the_network_when_a_map_is_returned(tmp_path, no_network):
    from enhance import enhance

    bare = tmp_path / "bare.fits"
    fits.PrimaryHDU(np.ones((24, 24), np.float32)).writeto(bare)  # no WCS at all
    with pytest.raises(ValueError, match=r"bare.fits: sunpy makes no Map of its header \(.*\); pass output="):
        enhance(bare, "intensity", model="light")
