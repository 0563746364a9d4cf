"""enhance.cores: the cores a process may use, and row bands over them."""

import numpy as np
import pytest

from enhance.cores import cpu_cores, map_rows


@pytest.mark.parametrize("rows", [1, 63, 64, 128, 129, 1000, 1023])
@pytest.mark.parametrize("cores", [1, 2, 3, 8])
def test_bands_cover_every_row_once_in_order(rows, cores):
    bands = map_rows(lambda band: band, rows, cores=cores)
    covered = np.concatenate([np.arange(band.start, band.stop) for band in bands])
    assert np.array_equal(covered, np.arange(rows))
    assert len(bands) == max(1, min(cores, rows // 64))
    assert all(band.stop - band.start >= min(64, rows) for band in bands)


def test_bands_run_on_threads_and_give_the_serial_result():
    data = np.random.default_rng(0).normal(size=(500, 300))
    parts = map_rows(lambda band: np.cumsum(data[band], axis=1), len(data), cores=4)
    assert len(parts) == 4
    assert np.array_equal(np.concatenate(parts), np.cumsum(data, axis=1))


def test_cores_follow_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert cpu_cores() == 5
    assert len(map_rows(lambda band: band, 10_000)) == 5
    for unset in ("", "0", "two"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert cpu_cores() >= 1
