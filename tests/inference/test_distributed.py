"""Scaling out: `enhance_files` (serial and on a 2-process LocalCluster), skip on re-run, `enhance_dask`."""

import csv
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from scipy import ndimage

from enhance import enhance, enhance_dask, enhance_files
from enhance.cli import main
from enhance.exceptions import ModelNotTrainedError
from enhance.inference.distributed import MANIFEST_FIELDS, MANIFEST_NAME, find_inputs, network_cache_info, output_path
from enhance.io import read_fits
from enhance.models.network import receptive_margin
from enhance.models.pretrained import load_network
from enhance.models.weights import save_weights

N_GOOD = 4


@pytest.fixture(scope="module")
def client():
    """Two worker processes, one thread each; closed (cluster included) when the module's tests end."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


@pytest.fixture
def da():
    return pytest.importorskip("dask.array")


@pytest.fixture
def weights(tmp_path, tiny_net):
    return str(save_weights(tiny_net, tmp_path / "tiny.safetensors", kind="intensity"))


def _scene(shape, seed):
    """Granulation-like noise around 1 with a dark spot: a per-chunk quiet-Sun level would differ."""
    rng = np.random.default_rng(seed)
    image = 1 + 0.3 * ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
    yy, xx = np.indices(shape)
    image[(yy - shape[0] // 4) ** 2 + (xx - shape[1] // 4) ** 2 < (min(shape) // 6) ** 2] *= 0.25
    return image.astype(np.float32)


@pytest.fixture
def inputs(tmp_path):
    """A directory of generated continuum FITS files, one corrupt file and a file that is not FITS."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(N_GOOD):
        header = fits.Header({"BUNIT": "I/Ic", "CDELT1": 0.504, "CDELT2": 0.504, "CRPIX1": 8.5, "CRPIX2": 6.5})
        fits.PrimaryHDU(_scene((12 + i, 16), seed=i), header=header).writeto(folder / f"hmi.ic_45s.{i}.fits")
    (folder / "corrupt.fits").write_bytes(b"SIMPLE  =  this is not a FITS file")
    (folder / "notes.txt").write_text("not an input")
    return folder


def _statuses(records):
    return {output_path(r["input"], "x").name: r["status"] for r in records}


def _read_manifest(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_two_worker_processes_equal_the_single_process_result(inputs, weights, client, tmp_path):
    out = tmp_path / "out"
    records = enhance_files(inputs, out, weights=weights, client=client, as_frame=False)
    assert [r["status"] for r in records].count("done") == N_GOOD
    (bad,) = [r for r in records if r["status"] == "failed"]
    assert bad["input"].endswith("corrupt.fits")
    assert "not a readable FITS file" in bad["reason"]
    workers = set(client.scheduler_info()["workers"])
    network = load_network(weights)
    for record in records:
        if record["status"] != "done":
            continue
        assert record["worker"] in workers
        assert record["kind"] == "intensity"
        expected = enhance(read_fits(record["input"])[0], "intensity", network=network)
        np.testing.assert_allclose(fits.getdata(record["output"]), expected, rtol=1e-6, atol=1e-6)
    # Each worker process loaded the network at most once and reused it for its other files.
    key = f"{Path(weights).resolve()}::intensity"
    info = client.run(network_cache_info)
    loads = [worker["loads"].get(key, 0) for worker in info.values()]
    hits = [worker["hits"].get(key, 0) for worker in info.values()]
    assert all(n <= 1 for n in loads)
    assert sum(loads) + sum(hits) == N_GOOD
    assert sum(hits) >= N_GOOD - 2
    assert {worker["torch_threads"] for worker in info.values()} == {1}  # no oversubscription
    rows = _read_manifest(out / MANIFEST_NAME)
    assert sorted(row["input"] for row in rows) == sorted(r["input"] for r in records)  # in the order they finished
    assert set(rows[0]) == set(MANIFEST_FIELDS)
    assert all(row["version"] and row["model"].startswith("tiny.safetensors sha256:") for row in rows)


def test_rerun_skips_complete_outputs_and_replaces_incomplete_ones(inputs, weights, tmp_path):
    out = tmp_path / "out"
    first = enhance_files(inputs, out, weights=weights, as_frame=False)  # serial, in this process
    assert sorted(r["status"] for r in first) == ["done"] * N_GOOD + ["failed"]
    stamps = {r["output"]: (out / r["output"]).stat().st_mtime_ns for r in first if r["status"] == "done"}

    second = enhance_files(inputs, out, weights=weights, as_frame=False)
    assert sorted(r["status"] for r in second) == ["failed"] + ["skipped"] * N_GOOD
    assert {r["output"]: (out / r["output"]).stat().st_mtime_ns for r in second if r["status"] == "skipped"} == stamps
    assert [row["status"] for row in _read_manifest(out / MANIFEST_NAME)].count("skipped") == N_GOOD

    truncated = Path(first[1]["output"])  # a stale partial file (not one of ours: ours are written atomically)
    truncated.write_bytes(truncated.read_bytes()[:4000])
    third = enhance_files(inputs, out, weights=weights, as_frame=False)
    assert first[0]["input"].endswith("corrupt.fits")
    assert (third[1]["status"], third[1]["reason"]) == ("done", "replaced an incomplete output")
    assert sorted(r["status"] for i, r in enumerate(third) if i != 1) == ["failed"] + ["skipped"] * (N_GOOD - 1)
    assert fits.getdata(truncated).shape == (24, 32)

    again = enhance_files(inputs, out, weights=weights, overwrite=True, as_frame=False)
    assert sorted(r["status"] for r in again) == ["done"] * N_GOOD + ["failed"]
    # Every run appends its rows: the manifest keeps the first run's rows and timings, and a run over part
    # of the inputs keeps the other files' rows.
    enhance_files(inputs / "hmi.ic_45s.0.fits", out, weights=weights, as_frame=False)
    rows = _read_manifest(out / MANIFEST_NAME)
    runs = [first, second, third, again]
    assert len(rows) == sum(len(run) for run in runs) + 1
    assert [(row["status"], row["seconds"], row["finished"]) for row in rows[: len(first)]] == [
        (r["status"], str(r["seconds"]), r["finished"]) for r in first
    ]


def test_on_dask_each_row_is_on_disk_as_soon_as_its_file_finishes(inputs, weights, client, tmp_path, monkeypatch):
    """A killed client (SIGKILL of ``enhance run --workers``) loses no finished file's row: none waits for the end."""
    import enhance.inference.distributed as engine

    out = tmp_path / "out"
    on_disk = []
    original = engine._append_manifest

    def append(path, records):
        original(path, records)
        on_disk.append(len(_read_manifest(path)))

    monkeypatch.setattr(engine, "_append_manifest", append)
    records = enhance_files(inputs, out, weights=weights, client=client)
    assert on_disk == list(range(1, len(records) + 1))


def test_cli_workers_then_scheduler_rerun(inputs, weights, client, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(inputs), "-o", str(out), "--weights", weights, "--workers", "2"]) == 1
    captured = capsys.readouterr()
    assert f"done {N_GOOD}, skipped 0, failed 1 of {N_GOOD + 1} files" in captured.out
    assert "s per image on a worker" in captured.out
    assert "corrupt.fits is not a readable FITS file" in captured.err
    pattern = str(inputs / "hmi.*.fits")
    assert main(["run", pattern, "-o", str(out), "--weights", weights, "--scheduler", client.scheduler.address]) == 0
    captured = capsys.readouterr()
    assert f"done 0, skipped {N_GOOD}, failed 0 of {N_GOOD} files" in captured.out
    assert f"skipped {N_GOOD} outputs that exist and are complete" in captured.out


def test_cli_refuses_a_file_as_the_output_of_a_batch(inputs, weights, capsys):
    assert main(["run", str(inputs), "-o", str(inputs / "x.fits"), "--weights", weights]) == 2
    assert "-o must be a directory" in capsys.readouterr().err


def test_find_inputs_and_output_names(inputs, tmp_path):
    found = find_inputs([inputs, inputs / "hmi.ic_45s.1.fits", str(inputs / "hmi.*.fits")])
    assert [p.name for p in found] == ["corrupt.fits"] + [f"hmi.ic_45s.{i}.fits" for i in range(N_GOOD)]
    assert find_inputs(str(tmp_path / "missing.fits")) == [tmp_path / "missing.fits"]  # reported as a failure later
    with pytest.raises(ValueError, match="no FITS files found"):
        find_inputs(str(tmp_path / "none_*.fits"))
    jsoc = "hmi.M_45s.20240101_000000_TAI.2.magnetogram.fits"
    assert output_path(jsoc, "o").name == "hmi.M_45s.20240101_000000_TAI.2.magnetogram_enhanced.fits"


def test_enhance_files_errors(inputs, weights, tmp_path, no_shipped_models):
    with pytest.raises(ValueError, match="client= or n_workers=, not both"):
        enhance_files(inputs, tmp_path / "o", weights=weights, client="tcp://x:1", n_workers=2)
    with pytest.raises(TypeError, match="client must be a distributed.Client or a scheduler address, got int"):
        enhance_files(inputs, tmp_path / "o", weights=weights, client=8786)
    with pytest.raises(ValueError, match="n_workers must be a positive integer, got 0"):
        enhance_files(inputs, tmp_path / "o", weights=weights, n_workers=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        enhance_files(inputs, tmp_path / "o", kind="doppler", weights=weights)
    other = tmp_path / "other"
    other.mkdir()
    (other / "hmi.ic_45s.0.fits").write_bytes((inputs / "hmi.ic_45s.0.fits").read_bytes())
    with pytest.raises(ValueError, match="would write the same output"):
        enhance_files([inputs, other], tmp_path / "o", weights=weights)
    with pytest.raises(ModelNotTrainedError, match="not trained yet"):
        enhance_files(inputs, tmp_path / "o", kind="intensity")
    with pytest.raises(ValueError, match="holds a 'intensity' network, but kind='blos'"):
        enhance_files(inputs, tmp_path / "o", kind="blos", weights=weights)
    assert not (tmp_path / "o").exists()  # nothing was started


@pytest.mark.parametrize("kind", ["intensity", "blos"])
def test_enhance_dask_equals_whole_image_inference(da, tiny_net, kind):
    image = _scene((61, 47), seed=3) * (1.0 if kind == "intensity" else 800.0)
    expected = enhance(image, kind, network=tiny_net)
    lazy = enhance_dask(da.from_array(image, chunks=(15, 20)), kind, network=tiny_net)  # 61 = 4 x 15 + 1
    assert isinstance(lazy, da.Array)
    assert lazy.shape == (122, 94)
    assert lazy.chunks == ((30, 30, 30, 32), (40, 40, 14))  # the 1-pixel chunk is merged into its neighbour
    result = lazy.compute(scheduler="threads")
    assert result.dtype == np.float32
    assert np.max(np.abs(result - expected)) <= 1e-4 * np.max(np.abs(expected))


def test_enhance_dask_nan_handling(da, tiny_net):
    image = _scene((64, 64), seed=4).astype(np.float64)
    yy, xx = np.indices(image.shape)
    image[np.hypot(yy - 70, xx - 70) > 60] = np.nan  # off-limb, fills the whole (16, 16) chunk at (0, 0)
    image[40, 20] = np.nan  # a bad pixel next to a chunk border
    expected = enhance(image, "intensity", network=tiny_net)
    result = enhance_dask(da.from_array(image, chunks=16), "intensity", network=tiny_net).compute(scheduler="threads")
    assert result.dtype == np.float64
    bad = np.repeat(np.repeat(np.isnan(image), 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(np.isnan(result), bad)  # NaN at the 2x2 pixels of NaN input, finite elsewhere
    # Away from NaN (farther than the receptive margin) the result is the whole-image one.
    far = ndimage.distance_transform_cdt(~np.isnan(image), metric="chessboard") > receptive_margin(tiny_net.depth)
    far = np.repeat(np.repeat(far, 2, axis=0), 2, axis=1)
    np.testing.assert_allclose(result[far], expected[far], rtol=1e-4, atol=1e-6)


def test_enhance_dask_on_the_cluster_with_a_weights_file(da, client, weights):
    image = _scene((40, 36), seed=5)
    expected = enhance(image, "intensity", network=load_network(weights))
    lazy = enhance_dask(da.from_array(image, chunks=(20, 18)), "intensity", weights=weights, qs_level=1.0)
    result = client.compute(lazy).result()
    np.testing.assert_allclose(result, enhance(image, "intensity", network=load_network(weights), qs_level=1.0),
                               rtol=1e-4, atol=1e-6)  # fmt: skip
    assert not np.allclose(result, expected)  # qs_level=1 is not the estimated level: the option is used


def test_enhance_dask_errors(da, tiny_net, weights, no_shipped_models):
    with pytest.raises(TypeError, match="must be a dask.array.Array .* got ndarray"):
        enhance_dask(np.ones((8, 8)), network=tiny_net)
    with pytest.raises(ValueError, match=r"must be 2-D \(ny, nx\), got shape \(2, 8, 8\)"):
        enhance_dask(da.ones((2, 8, 8)), network=tiny_net)
    with pytest.raises(ValueError, match="network= or weights=, not both"):
        enhance_dask(da.ones((8, 8)), network=tiny_net, weights=weights)
    with pytest.raises(ValueError, match="kind must be one of"):
        enhance_dask(da.ones((8, 8)), "doppler", network=tiny_net)
    with pytest.raises(ModelNotTrainedError):
        enhance_dask(da.ones((8, 8)), "blos")


def test_outputs_are_recognised_by_their_header_not_their_name(tmp_path, weights):
    """An earlier output beside its input is skipped by its ENH_VER card; a foreign *_enhanced.fits is an input."""
    header = fits.Header({"BUNIT": "I/Ic", "CDELT1": 0.504, "CDELT2": 0.504})
    source = tmp_path / "hmi.ic_45s.2024.continuum.fits"
    fits.PrimaryHDU(_scene((12, 16), seed=1), header=header).writeto(source)
    named = tmp_path / "someone_enhanced.fits"  # only its name looks like an output
    fits.PrimaryHDU(_scene((12, 16), seed=2), header=header).writeto(named)
    first = enhance_files(source, tmp_path, weights=weights, as_frame=False)
    assert [r["status"] for r in first] == ["done"]
    earlier = output_path(source, tmp_path)
    assert fits.getheader(earlier)["ENH_VER"]
    assert set(find_inputs(tmp_path)) == {source, named, earlier}
    records = {Path(r["input"]).name: r for r in enhance_files(tmp_path, tmp_path / "out", weights=weights,
                                                              as_frame=False)}  # fmt: skip
    assert records[named.name]["status"] == "done"
    assert records[earlier.name]["status"] == "skipped"
    assert "written by solar-enhance" in records[earlier.name]["reason"]
    assert not (tmp_path / "out" / output_path(earlier, ".").name).exists()


def test_enhance_files_and_enhance_dask_take_sunpys_names_of_the_kinds(da, tiny_net, weights, inputs, tmp_path):
    (record,) = enhance_files(inputs / "hmi.ic_45s.0.fits", tmp_path / "o", kind="continuum", weights=weights)
    assert (record["status"], record["kind"]) == ("done", "intensity")
    image = _scene((24, 20), seed=6)
    lazy = enhance_dask(da.from_array(image, chunks=12), "continuum", network=tiny_net)
    np.testing.assert_allclose(lazy.compute(scheduler="sync"), enhance(image, "intensity", network=tiny_net),
                               rtol=1e-4, atol=1e-6)  # fmt: skip


def test_symmetric_and_uncertainty_on_dask_equal_the_serial_batch(client, tmp_path):
    from enhance.data import sample_path
    from enhance.inference.pipeline import RunOptions

    image, header = read_fits(sample_path("blos"))
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        fits.PrimaryHDU(image[40 * i : 40 * i + 40, 60:100], header=header).writeto(folder / f"hmi.m_45s.{i}.fits")
    options = RunOptions(symmetric=True, uncertainty=True)
    serial = enhance_files(folder, tmp_path / "serial", model="light", options=options)
    on_dask = enhance_files(folder, tmp_path / "dask", model="light", options=options, client=client)
    assert [r["status"] for r in on_dask] == [r["status"] for r in serial] == ["done", "done"]
    for one, other in zip(serial, on_dask, strict=True):
        with fits.open(one["output"]) as first, fits.open(other["output"]) as second:
            assert [hdu.name for hdu in first] == [hdu.name for hdu in second] == ["PRIMARY", "UNCERT"]
            for a, b in zip(first, second, strict=True):
                np.testing.assert_allclose(b.data, a.data, rtol=0, atol=1e-6 * np.nanmax(np.abs(a.data)))
