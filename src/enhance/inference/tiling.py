"""Exact tiled inference: overlapping tiles whose margins cover the network's receptive field.

Every tile is cut from the image with ``margin`` extra input pixels on each side (fewer where the
image ends, so the network pads at the true image edge exactly as in a whole-image pass). Only the
tile's interior is kept, so the stitched result equals whole-image inference to rounding, with no
seams, while memory stays bounded by the tile size.
"""

import concurrent.futures
import inspect
import itertools

import numpy as np
from tqdm.auto import tqdm

from ..cores import needed_boxes, tile_counter
from ..models.runner import dihedral_average
from ..runtime.runners import TorchRunner, runs_on_torch

#: ``dihedral_average`` is `~enhance.models.runner.dihedral_average`, named here as before.
__all__ = ["tile_spans", "run_tiled", "dihedral_average", "MIN_BAND_MARGINS"]

#: Bands of rows for parallel workers are at least this many receptive margins tall: each band computes
#: up to two margins of rows twice, so shorter bands would spend more on the overlap than they gain.
MIN_BAND_MARGINS = 4


def tile_spans(length: int, tile: int, margin: int):
    """Split ``range(length)`` into tiles of at most ``tile`` pixels, each with its padded span.

    Parameters
    ----------
    length : int
        Pixels along the axis.
    tile : int
        Largest tile, pixels.
    margin : int
        Context on each side, pixels (`~enhance.models.network.receptive_margin`).

    Returns
    -------
    list of (start, stop, lo, hi)
        ``[start, stop)`` is the part of the image the tile is responsible for; ``[lo, hi)`` is the
        part fed to the network (``start - margin`` to ``stop + margin``, clipped to the image).

    Examples
    --------
    >>> tile_spans(10, 4, 1)
    [(0, 4, 0, 5), (4, 8, 3, 9), (8, 10, 7, 10)]
    """
    if tile < 1:
        msg = f"tile must be a positive number of pixels, got {tile}"
        raise ValueError(msg)
    spans = []
    for start in range(0, length, tile):
        stop = min(start + tile, length)
        spans.append((start, stop, max(start - margin, 0), min(stop + margin, length)))
    return spans


def run_tiled(
    image: np.ndarray, net, *, tile: int | None, margin: int, device, progress=False, precision: str = "float32",
    workers: int = 1, needed=None,
):  # fmt: skip
    """Run a x2 network over ``image`` tile by tile and stitch the interiors.

    Parameters
    ----------
    image : (ny, nx) `~numpy.ndarray`
        Finite float32 input, already normalised.
    net : `~enhance.models.runner.Runner`, callable or `torch.nn.Module`
        A runner, or any callable mapping a float32 ``(1, 1, h, w)`` `~numpy.ndarray` to ``(1, 1, 2h, 2w)``; a
        PyTorch module runs as a `~enhance.runtime.runners.TorchRunner` on ``device``.
        One with a ``run_image(image, *, tile, workers, done[, needed])`` method (the default models on onnxruntime,
        `~enhance.runtime.wiener_onnx.WienerOnnxNetwork`) runs the whole image itself: it mirrors the image
        once and cuts its tiles from the mirrored image, so tiles overlap by two margins and no more.
    tile : int or None
        Tile size in input pixels; None runs the whole image at once.
    margin : int
        Input pixels of context on each side (`~enhance.models.network.receptive_margin`).
    device : `torch.device`
        Where a PyTorch module runs.
    progress : bool
        Show a progress bar over tiles.
    precision : {'float32', 'bfloat16', 'float16'}
        Precision of a `torch.nn.Module`'s arithmetic: float32, or `torch.autocast` to the reduced type.
    workers : int
        Tiles run at once, each on a thread of its own; for a callable that releases the GIL and uses
        one core per call (a single-threaded `~enhance.runtime.export.OnnxNetwork`). With ``tile=None`` the
        image is then cut into ``workers`` bands of rows, when they are tall enough
        (`MIN_BAND_MARGINS` margins) for their overlap to cost less than the cores gain. A
        `torch.nn.Module` always runs one tile at a time (PyTorch threads each layer itself).
    needed : (ny, nx) bool `~numpy.ndarray`, optional
        Input pixels whose output is kept (e.g. the finite pixels of a full-disk image): each tile runs on
        the boxes that hold its needed pixels (`~enhance.cores.needed_boxes`: its smallest box, split where
        the parts with their margins are fewer pixels), a tile without any is skipped, and the output is
        NaN outside those boxes. The needed pixels' output is the same as without, to
        rounding (as between tiles; bit for bit on onnxruntime). A ``run_image`` method that takes no
        ``needed`` runs every pixel.

    Returns
    -------
    `~numpy.ndarray`
        float32 array of shape ``(2 ny, 2 nx)``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from enhance.models.network import EnhanceNet, fold_batchnorm, receptive_margin
    >>> net = fold_batchnorm(EnhanceNet(depth=1, width=8))
    >>> image = np.random.default_rng(0).random((40, 40), dtype=np.float32)
    >>> whole = run_tiled(image, net, tile=None, margin=5, device=torch.device("cpu"))
    >>> tiled = run_tiled(image, net, tile=16, margin=receptive_margin(1), device=torch.device("cpu"))
    >>> tiled.shape, bool(np.allclose(tiled, whole, atol=1e-5))
    ((80, 80), True)
    """
    ny, nx = image.shape
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        msg = f"workers must be a positive integer, got {workers!r}"
        raise ValueError(msg)
    if callable(getattr(net, "run_image", None)):  # it mirrors the whole image once and cuts its own tiles
        return _run_image(image, net, tile=tile, progress=progress, workers=workers, needed=needed)
    forward = net
    if runs_on_torch(net):  # PyTorch threads each layer itself: one tile at a time
        forward, workers = TorchRunner(net, device=device, precision=precision), 1
    tile_y = ny if tile is None else tile
    tile_x = nx if tile is None else tile
    if tile is None and workers > 1 and ny >= workers * MIN_BAND_MARGINS * max(margin, 1):
        tile_y = -(-ny // workers)  # one band of rows per worker
    spans = list(itertools.product(tile_spans(ny, tile_y, margin), tile_spans(nx, tile_x, margin)))
    tiles, owners = len(spans), list(range(len(spans)))  # the bar counts tiles, however many boxes each runs as
    if needed is not None:
        spans, owners = _needed_spans(spans, needed, (ny, nx), margin)
    source = np.ascontiguousarray(image, dtype=np.float32)
    if needed is None and len(spans) == 1:  # one tile: the whole image, no stitching
        return np.ascontiguousarray(forward(source[None, None])[0, 0], dtype=np.float32)
    out = np.empty((2 * ny, 2 * nx), dtype=np.float32)
    if needed is not None:
        out.fill(np.nan)

    def run_one(span):
        (y0, y1, ylo, yhi), (x0, x1, xlo, xhi) = span
        result = forward(source[None, None, ylo:yhi, xlo:xhi])[0, 0]
        out[2 * y0 : 2 * y1, 2 * x0 : 2 * x1] = result[2 * (y0 - ylo) : 2 * (y1 - ylo), 2 * (x0 - xlo) : 2 * (x1 - xlo)]

    bar = tqdm(total=tiles, desc="tiles", unit="tile", disable=not progress, leave=False)
    done = tile_counter(owners, tiles, bar.update)
    if workers == 1:
        for span, owner in zip(spans, owners, strict=True):
            run_one(span)
            done(owner)
    else:  # at most `workers` tiles in flight: memory stays bounded by the tile size
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for _, owner in zip(pool.map(run_one, spans), owners, strict=True):
                done(owner)
    bar.close()
    return out


def _needed_spans(spans, needed, shape, margin):
    """The tiles cut to the boxes of their needed pixels (`~enhance.cores.needed_boxes`), with their margins, and
    the index of the tile each box belongs to."""
    regions = (((y0, y1), (x0, x1)) for (y0, y1, _, _), (x0, x1, _, _) in spans)
    boxes = needed_boxes(needed, regions, shape, margin=margin)
    owners = [index for index, parts in enumerate(boxes) for _ in parts]
    return [((y0, y1, max(y0 - margin, 0), min(y1 + margin, shape[0])),
             (x0, x1, max(x0 - margin, 0), min(x1 + margin, shape[1])))
            for (y0, y1), (x0, x1) in (box for parts in boxes for box in parts)], owners  # fmt: skip


def _run_image(image, net, *, tile, progress, workers, needed):
    """``net.run_image`` over ``image``, with a progress bar over its tiles."""
    ny, nx = image.shape
    tiles = None if tile is None else -(-ny // tile) * -(-nx // tile)
    takes = "needed" in inspect.signature(net.run_image).parameters  # a runner of another package may not
    options = {"needed": needed} if needed is not None and takes else {}
    with tqdm(total=tiles, desc="tiles", unit="tile", disable=not progress, leave=False) as bar:
        out = net.run_image(np.ascontiguousarray(image, dtype=np.float32), tile=tile, workers=workers, done=bar.update,
                            **options)  # fmt: skip
    return np.ascontiguousarray(out, dtype=np.float32)
