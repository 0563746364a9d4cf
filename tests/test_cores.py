"""enhance.cores: the cores a process may use, and row bands over them."""

import numpy as np
import pytest

from enhance.cores import cpu_cores, map_rows, needed_box, needed_boxes


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


def _pixels(boxes, margin):
    return sum((y1 - y0 + 2 * margin) * (x1 - x0 + 2 * margin) for (y0, y1), (x0, x1) in boxes)


@pytest.mark.parametrize("margin", [0, 3, 8])
def test_needed_boxes_cover_the_needed_pixels_once_and_run_no_more_than_one_box(margin):
    rng = np.random.default_rng(1)
    y, x = np.ogrid[:300, :280]
    for _ in range(30):  # disks (limbs), random scatter, and both
        cy, cx, radius = rng.uniform(-50, 330), rng.uniform(-50, 330), rng.uniform(20, 250)
        needed = np.hypot(y - cy, x - cx) < radius
        needed |= rng.random(needed.shape) < rng.choice([0, 1e-4, 1e-2])
        regions = [((y0, min(y0 + 128, 300)), (x0, min(x0 + 128, 280))) for y0 in (0, 128, 256) for x0 in (0, 128, 256)]
        found = needed_boxes(needed, regions, needed.shape, margin=margin)
        for (rows, cols), boxes in zip(regions, found, strict=True):
            covered = np.zeros(needed.shape, int)
            for (b0, b1), (c0, c1) in boxes:
                assert rows[0] <= b0 < b1 <= rows[1]
                assert cols[0] <= c0 < c1 <= cols[1]
                covered[b0:b1, c0:c1] += 1
            inside = np.zeros(needed.shape, bool)
            inside[rows[0] : rows[1], cols[0] : cols[1]] = needed[rows[0] : rows[1], cols[0] : cols[1]]
            assert covered.max() <= 1  # disjoint
            assert np.all(covered[inside] == 1)  # every needed pixel
            one = needed_box(needed, rows, cols)
            assert (one is None) == (boxes == [])
            if one is None:
                continue
            assert _pixels(boxes, margin) <= _pixels([one], margin)
            if margin == 0:
                assert boxes == [one]  # nothing to gain from a split without margins to pay


def test_a_limb_tile_is_split_to_follow_the_limb():
    y, x = np.ogrid[:512, :512]
    needed = np.hypot(y - 600, x - 600) < 560  # a disk's edge crossing the tile's corner
    (boxes,) = needed_boxes(needed, [((0, 512), (0, 512))], needed.shape, margin=8)
    assert len(boxes) > 4
    assert _pixels(boxes, 8) < 0.9 * _pixels([needed_box(needed, (0, 512), (0, 512))], 8)
    assert sum((y1 - y0) * (x1 - x0) for (y0, y1), (x0, x1) in boxes) < 1.15 * needed.sum()  # one box: 1.39


def test_needed_boxes_refuse_a_wrong_shape_or_margin():
    needed = np.ones((8, 8), bool)
    with pytest.raises(ValueError, match="needed must have the image's shape"):
        needed_boxes(needed, [((0, 8), (0, 8))], (8, 9))
    for margin in (-1, 1.5, True):
        with pytest.raises(ValueError, match="margin must be a non-negative integer"):
            needed_boxes(needed, [((0, 8), (0, 8))], (8, 8), margin=margin)
