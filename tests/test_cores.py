"""enhance.cores: the cores a process may use, and row bands over them."""

import numpy as np
import pytest

from enhance.cores import cpu_cores, map_rows, needed_box


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


def test_needed_box_is_the_bounding_box_of_the_needed_pixels_in_a_region():
    rng = np.random.default_rng(0)
    for _ in range(200):
        needed = rng.random((int(rng.integers(1, 12)), int(rng.integers(1, 12)))) < rng.random() * 0.3
        y0, x0 = int(rng.integers(0, needed.shape[0])), int(rng.integers(0, needed.shape[1]))
        y1, x1 = int(rng.integers(y0 + 1, needed.shape[0] + 1)), int(rng.integers(x0 + 1, needed.shape[1] + 1))
        box = needed_box(needed, (y0, y1), (x0, x1))
        inside = np.zeros_like(needed)
        inside[y0:y1, x0:x1] = needed[y0:y1, x0:x1]
        if not inside.any():
            assert box is None
            continue
        (b0, b1), (c0, c1) = box
        assert y0 <= b0 < b1 <= y1
        assert x0 <= c0 < c1 <= x1
        assert inside[b0:b1, c0:c1].sum() == inside.sum()  # holds them all
        assert inside[b0].any()
        assert inside[b1 - 1].any()
        assert inside[:, c0].any()
        assert inside[:, c1 - 1].any()
    assert needed_box(None, (2, 5), (0, 3)) == ((2, 5), (0, 3))
