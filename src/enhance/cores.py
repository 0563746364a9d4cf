"""The CPU cores this process may use, and numpy work split over them by rows.

numpy's element-wise functions and FFTs release the GIL, so threads over row bands of one array use
every core without copying the array to other processes.
"""

import collections
import os
import platform
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["cpu_cores", "cpu_model", "map_rows", "needed_box", "needed_boxes", "tile_counter"]


def cpu_cores() -> int:
    """The cores this process may use: ``OMP_NUM_THREADS`` where it is set (Dask's nanny sets it to one per
    task), else the CPUs it may run on.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> cpu_cores() >= 1
    True
    """
    setting = os.environ.get("OMP_NUM_THREADS", "").strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, len(affinity(0)) if affinity else (os.cpu_count() or 1))


def cpu_model(cpuinfo="/proc/cpuinfo") -> tuple[str, str]:
    """The CPU's model name and its instruction-set flags.

    Parameters
    ----------
    cpuinfo : str or `~pathlib.Path`
        Linux's CPU description, whose first ``model name`` and ``flags`` lines are read (``CPU part`` and
        ``Features`` on arm64); where it is missing or names none, `platform.processor` or `platform.machine`
        names the CPU, and the flags are empty.

    Returns
    -------
    tuple of str
        ``(model, flags)``, e.g. ``('AMD EPYC', 'fpu vme ... avx2 ...')``.

    Examples
    --------
    >>> model, flags = cpu_model()
    >>> isinstance(model, str) and len(model) > 0, isinstance(flags, str)
    (True, True)
    """
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:  # not Linux, or no /proc
        lines = []

    def first(name):
        values = (line.split(":", 1)[1].strip() for line in lines if line.startswith(name) and ":" in line)
        return next(values, "")

    # x86 Linux: "model name" and "flags"; arm64 Linux: "CPU part" and "Features"
    model = first("model name") or first("CPU part") or platform.processor() or platform.machine()
    return model, first("flags") or first("Features")


def map_rows(function, rows: int, *, cores: int | None = None, minimum: int = 64) -> list:
    """``function(slice)`` on consecutive bands of ``rows`` rows, one band per core, in order.

    Parameters
    ----------
    function : callable
        Takes a `slice` of rows and returns its part of the result; it must only read shared arrays.
    rows : int
        Rows to cover.
    cores : int, optional
        Bands at most; None: `cpu_cores`.
    minimum : int
        Fewest rows per band (small inputs run as one band, without threads).

    Returns
    -------
    list
        The bands' results, top to bottom.

    Examples
    --------
    >>> map_rows(lambda band: (band.start, band.stop), 200, cores=2)
    [(0, 100), (100, 200)]
    >>> map_rows(lambda band: (band.start, band.stop), 100, cores=2)
    [(0, 100)]
    """
    bands = max(1, min(cores or cpu_cores(), rows // max(minimum, 1)))
    edges = np.linspace(0, rows, bands + 1).round().astype(int)
    slices = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    if bands == 1:
        return [function(slices[0])]
    with ThreadPoolExecutor(bands) as pool:
        return list(pool.map(function, slices))


def needed_box(needed, rows: tuple, cols: tuple) -> tuple | None:
    """The smallest box of the region ``rows`` x ``cols`` that holds its needed pixels, or None if it has none.

    Work cut into tiles skips what nobody needs: off-limb pixels of a full-disk image, whose output is
    NaN, need no network pass.

    Parameters
    ----------
    needed : (ny, nx) bool `~numpy.ndarray` or None
        Pixels whose result is kept; None: all of them.
    rows, cols : tuple of int
        The region, ``(start, stop)`` along each axis.

    Returns
    -------
    tuple of tuple or None
        ``((y0, y1), (x0, x1))``, within the region; None where no pixel of the region is needed.

    Examples
    --------
    >>> import numpy as np
    >>> needed = np.zeros((6, 8), bool)
    >>> needed[2:4, 5] = True
    >>> needed_box(needed, (0, 6), (4, 8)), needed_box(needed, (0, 6), (0, 4))
    (((2, 4), (5, 6)), None)
    """
    if needed is None:
        return tuple(rows), tuple(cols)
    window = needed[rows[0] : rows[1], cols[0] : cols[1]]
    along_y, along_x = np.flatnonzero(window.any(axis=1)), np.flatnonzero(window.any(axis=0))
    if along_y.size == 0:
        return None
    return ((rows[0] + int(along_y[0]), rows[0] + int(along_y[-1]) + 1),
            (cols[0] + int(along_x[0]), cols[0] + int(along_x[-1]) + 1))  # fmt: skip


def needed_boxes(needed, regions, shape: tuple, *, margin: int = 0) -> list:
    """Boxes that hold the needed pixels of each region ``((y0, y1), (x0, x1))`` of an image of ``shape``.

    Each region's `needed_box` is halved along its longer side, each half shrunk to its own needed box,
    wherever the halves with a margin of ``margin`` pixels on every side hold fewer pixels than the whole
    (recursively, the best of the whole and its halves): a tile on the limb of a full-disk image then runs
    on a few boxes that follow the limb instead of one that holds the off-limb corner.

    Parameters
    ----------
    needed : array_like of bool
        Pixels whose result is kept, of the image's shape.
    regions : iterable of tuple
        ``((y0, y1), (x0, x1))`` each.
    shape : tuple of int
        The image's shape.
    margin : int
        Pixels of context each box is run with on every side; 0: one box per region, never split. Only a
        box whose longer side is at least ``8 margin`` pixels (and 32) is halved; a half then shrinks to
        its needed pixels, however few.

    Returns
    -------
    list of list
        For each region in order, its boxes ``((y0, y1), (x0, x1))`` (disjoint, inside the region, together
        holding every needed pixel of it); an empty list where none is needed.

    Raises
    ------
    ValueError
        If ``needed`` does not have the image's shape or ``margin`` is negative.

    Examples
    --------
    >>> import numpy as np
    >>> needed = np.zeros((4, 4), bool)
    >>> needed[0, 3] = True
    >>> needed_boxes(needed, [((0, 2), (0, 2)), ((0, 2), (2, 4))], (4, 4))
    [[], [((0, 1), (3, 4))]]
    >>> corner = np.zeros((128, 128), bool)
    >>> corner[:64, :64], corner[64:, 64:] = True, True
    >>> needed_boxes(corner, [((0, 128), (0, 128))], corner.shape, margin=4)
    [[((0, 64), (0, 64)), ((64, 128), (64, 128))]]
    """
    if np.shape(needed) != tuple(shape):
        msg = f"needed must have the image's shape {tuple(shape)}, got {np.shape(needed)}"
        raise ValueError(msg)
    if isinstance(margin, bool) or not isinstance(margin, int | np.integer) or margin < 0:
        msg = f"margin must be a non-negative integer, got {margin!r}"
        raise ValueError(msg)
    needed, margin = np.asarray(needed, dtype=bool), int(margin)
    smallest = max(4 * margin, 16)

    def cheapest(box):  # (pixels run, boxes): the box itself, or the cheapest covering of its two halves
        (y0, y1), (x0, x1) = box
        own = ((y1 - y0 + 2 * margin) * (x1 - x0 + 2 * margin), [box])
        if margin == 0 or max(y1 - y0, x1 - x0) < 2 * smallest:
            return own
        if y1 - y0 >= x1 - x0:
            mid = (y0 + y1) // 2
            halves = (needed_box(needed, (y0, mid), (x0, x1)), needed_box(needed, (mid, y1), (x0, x1)))
        else:
            mid = (x0 + x1) // 2
            halves = (needed_box(needed, (y0, y1), (x0, mid)), needed_box(needed, (y0, y1), (mid, x1)))
        parts = [cheapest(half) for half in halves if half is not None]
        split = (sum(pixels for pixels, _ in parts), [b for _, boxes in parts for b in boxes])
        return split if split[0] < own[0] else own

    boxes = (needed_box(needed, rows, cols) for rows, cols in regions)
    return [[] if box is None else cheapest(box)[1] for box in boxes]


def tile_counter(owners, tiles: int, done):
    """Count tiles done as the boxes they run as finish: ``done(1)`` when a tile's last box is.

    Parameters
    ----------
    owners : sequence of int
        For each box, the index of its tile (`needed_boxes` gives the boxes of each tile).
    tiles : int
        Tiles in all; those that own no box (nothing needed) are counted at once.
    done : callable or None
        Called with a number of tiles done (a progress bar's ``update``); None counts nothing.

    Returns
    -------
    callable
        To call with a box's tile index when that box is finished.

    Examples
    --------
    >>> calls = []
    >>> finished = tile_counter([0, 0, 2], 4, calls.append)  # tile 0 runs as 2 boxes, 1 and 3 need nothing
    >>> for owner in (0, 2, 0):
    ...     finished(owner)
    >>> calls
    [2, 1, 1]
    """
    if done is None:
        return lambda owner: None
    left = collections.Counter(owners)
    if tiles > len(left):
        done(tiles - len(left))

    def finished(owner):
        left[owner] -= 1
        if not left[owner]:
            done(1)

    return finished
