"""The noise level of an HMI image, from the corners of its spectrum where the telescope passes no signal.

HMI's 14 cm aperture cuts off spatial frequencies above :math:`D/\\lambda` = 1.10 cycles per arcsec, while
its 0.504 arcsec pixels sample up to 0.99 along each axis and 1.40 along the diagonals. Every frequency
beyond 1.15 cycles per arcsec, and each of its aliases, then holds only the noise (and the faint far
wing of the PSF model), so the power there measures white noise without confusing it with granulation.

The spectrum is read on tiles of `NOISE_TILE` pixels, and the measurement is made robust to what is not
noise: single outlier pixels (hot pixels, cosmic rays) are replaced by the median of their neighbours first;
tiles that are constant in part (off-limb pixels given as 0 rather than NaN) or hold missing pixels are left
out; tiles whose level stands far above the others (a sharp edge such as the limb) are rejected; and a
spectrum that a few frequencies dominate (a periodic pattern, e.g. at the Nyquist frequency) is reported as
unreliable (`NoiseMeasurement`).
"""

import dataclasses
import functools
import math

import astropy.units as u
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..checks import check_image, check_positive
from ..constants import HMI_PIXEL_SCALE
from ..cores import map_rows

__all__ = ["NOISE_BAND_START", "NOISE_TILE", "TILE_REJECT", "WHITE_SPLIT", "NoiseMeasurement", "measure_noise",
           "estimate_noise", "noise_is_white", "replace_outliers", "GROSS_OUTLIER", "LOCAL_OUTLIER"]  # fmt: skip

#: Lowest spatial frequency of the noise band: just above HMI's diffraction cut-off, 1.10 cycles per arcsec.
NOISE_BAND_START = 1.15 / u.arcsec
#: Side of the tiles whose spectra are read (overlapping by half), pixels; an image under twice this is read whole.
NOISE_TILE = 64
#: A pixel is an outlier when it stands this many robust standard deviations from the median of its 3x3
#: neighbourhood (white noise never does: 20 sigma).
OUTLIER_SIGMAS = 20.0
#: A tile is rejected when its level is more than this times the median tile's (an edge, a bright artefact).
TILE_REJECT = 2.0
#: A tile with more than this share of exactly equal neighbouring pixels is constant in part (no noise there).
FLAT_SHARE = 0.25
#: Image values per chunk of the measurement's array operations (1 MB of float64), each thread's rows in turn;
#: a chunk's spectra (tile rows of half a tile's overlap, complex) take several times that.
CHUNK_VALUES = 2**17
#: A pixel `replace_outliers` replaces stands this many interquartile ranges of the image's values from its 3 x 3
#: median (noise alone: 13.5 standard deviations), or `LOCAL_OUTLIER` times the local residuals' scale.
GROSS_OUTLIER = 10.0
#: Or this many times the 75th percentile of the pixels' distances from the mean of their four nearest neighbours
#: (white noise: 1.29 standard deviations, so 26 of them; an image blurred by the PSF: its noise and finest
#: structure). No pixel of the real and synthetic test fields stands that far from its neighbours, down to 6.
LOCAL_OUTLIER = 20.0
#: Residuals sampled for a lower bound of their median (``_scale_bound``).
OUTLIER_SAMPLE = 4096
#: The share of the sample's median taken as that bound (checked by counting the residuals below it).
OUTLIER_BOUND = 0.8
#: Pixels beyond the bound's threshold, as a share of all, above which the threshold itself is computed first.
OUTLIER_SHARE = 0.02
#: Frequency (cycles per arcsec) that splits the band in two for the ``whiteness`` of `NoiseMeasurement`.
WHITE_SPLIT = 1.27
#: A frequency is a peak when its power (averaged over the tiles) is this many times the band's median; the
#: spectrum is dominated by a pattern when its peaks hold more than half of the band's power.
PEAK_RATIO = 30.0
#: An image whose largest magnitude is beyond 2 to the power of +-this is measured scaled by a power of two
#: (exactly): the tiles' powers, squares summed over thousands of pixels, stay far from float64's limits.
SCALE_RANGE = 64


@dataclasses.dataclass(frozen=True)
class NoiseMeasurement:
    """The white-noise level of an image and how far it can be believed.

    Parameters
    ----------
    sigma : float
        Standard deviation of the noise per pixel, in the image's units (NaN when no tile could be read).
    reliable : bool
        False when ``reason`` says why the level cannot be trusted.
    reason : str
        Empty, or what made the measurement unreliable (no usable tile, most tiles rejected, a pattern).
    whiteness : float
        The level read from the cut-off to `WHITE_SPLIT` over the one read beyond: about 1 for white noise,
        above it for an interpolated image (which has lost its highest frequencies).
    tiles : int
        Tiles the level was read on.
    missing : int
        Tiles left out for missing pixels, or constant in part (off-limb pixels given as a number).
    rejected : int
        Tiles left out for a level far above the others' (edges, artefacts).
    outliers : int
        Pixels replaced by the median of their neighbours before the spectrum was taken.

    Examples
    --------
    >>> found = NoiseMeasurement(2.0, tiles=9)
    >>> found.sigma, found.reliable, found.whiteness
    (2.0, True, 1.0)
    """

    sigma: float
    reliable: bool = True
    reason: str = ""
    whiteness: float = 1.0
    tiles: int = 0
    missing: int = 0
    rejected: int = 0
    outliers: int = 0


def _median9(padded, band, out):
    """The median of the 3x3 neighbourhood of each pixel of rows ``band``, from ``padded`` (the image with one
    reflected pixel on each side), written into those rows of ``out``.

    Written with numpy's minimum and maximum rather than scipy.ndimage's median filter (twice as fast on one core,
    and threads over bands use every core): each column's three values are sorted once, and the median of nine
    is the median of the largest low, the median middle and the smallest high of three sorted columns.
    """
    top, centre, bottom = (padded[band.start + k : band.stop + k] for k in range(3))
    low, high = np.minimum(top, centre), np.maximum(top, centre)
    middle, high = np.minimum(high, bottom), np.maximum(high, bottom)
    low, middle = np.minimum(low, middle), np.maximum(low, middle)
    left, mid, right = slice(0, -2), slice(1, -1), slice(2, None)

    def median3(a, b, c):
        return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))

    out[band] = median3(np.maximum(np.maximum(low[:, left], low[:, mid]), low[:, right]),
                        median3(middle[:, left], middle[:, mid], middle[:, right]),
                        np.minimum(np.minimum(high[:, left], high[:, mid]), high[:, right]))  # fmt: skip


def _neighbour_range(padded, rows, columns):
    """The range (largest less smallest, float64) of the eight neighbours of pixels ``(rows, columns)``, from
    ``padded`` (the image with one reflected pixel on each side)."""
    ring = ((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
    largest = padded[rows, columns]  # a copy: the neighbour (-1, -1), as the first of the ring
    smallest = largest.copy()
    for dy, dx in ring:
        np.maximum(largest, padded[rows + 1 + dy, columns + 1 + dx], out=largest)
        np.minimum(smallest, padded[rows + 1 + dy, columns + 1 + dx], out=smallest)
    return np.subtract(largest, smallest, dtype=np.float64)


def _chunks(band, size):
    """``band`` (a slice) cut into slices of at most ``size`` (at least 1) rows: the temporary arrays of each stay
    small enough to be reused from the heap and the cache, instead of fresh pages for every operation."""
    size = max(1, size)
    return [slice(start, min(start + size, band.stop)) for start in range(band.start, band.stop, size)]


def _where(beyond, usable):
    """The rows and columns where ``beyond & usable`` (from flat indices: numpy's 2-D nonzero takes 15 times as
    long on an image with few such pixels)."""
    beyond &= usable
    return np.divmod(np.flatnonzero(beyond), beyond.shape[1])


def _outlier_scale(values):
    """1.4826 times the median of ``values`` (the usable pixels' residuals), 0 if there are none: the robust
    standard deviation outliers are judged by."""
    return 1.4826 * float(np.median(values)) if values.size else 0.0


def _scale_bound(values):
    """A lower bound of `_outlier_scale` (``values`` left as they are), or None where none shows at once.

    The median of every pixel is the measurement's slowest step on one core, and rarely needed: most of a
    sample's median is a lower bound of the median wherever fewer than half of the values lie below it (counted).
    """
    if values.size < 4 * OUTLIER_SAMPLE:
        return None
    bound = OUTLIER_BOUND * float(np.median(values[:: values.size // OUTLIER_SAMPLE]))
    return 1.4826 * bound if bound > 0 and 2 * np.count_nonzero(values < bound) < values.size else None


def _replace_outliers(data, usable):
    """``data`` with its isolated outlier pixels replaced (in place) by the median of their 3x3 neighbourhood, and
    how many.

    An outlier stands more than `OUTLIER_SIGMAS` robust standard deviations (judged on the ``usable`` pixels)
    from that median, and more than twice the range of its eight neighbours from it: a hot pixel, not a steep
    solar gradient (whose neighbours span it), whose replacement would itself add a spike to the spectrum.
    Edges are reflected (``d c b a | a b c d``). The medians are picked in ``data``'s type (float32 three times
    as fast), the residuals taken in float64. The pixels beyond a lower bound of the threshold (`_scale_bound`)
    are judged by their neighbours' range first; the threshold itself is computed only where one of them
    stands out of that range, or too many stand beyond the bound.
    """
    padded = np.pad(data, 1, mode="symmetric")
    median, residual = np.empty_like(data), np.empty(data.shape)

    def rows(band):  # the median and the residual of each pixel of ``band``
        for part in _chunks(band, CHUNK_VALUES // data.shape[1]):
            _median9(padded, part, median)
            np.abs(np.subtract(data[part], median[part], out=residual[part], dtype=np.float64), out=residual[part])

    map_rows(rows, data.shape[0])
    values = residual.ravel() if usable.all() else residual[usable]
    bound = _scale_bound(values)
    scale = _outlier_scale(values) if bound is None else None
    if scale is not None and not scale > 0:  # more than half of the pixels equal their neighbourhood
        return data, 0
    ys, xs = _where(residual > OUTLIER_SIGMAS * (scale or bound), usable)
    if scale is None and len(ys) > values.size * OUTLIER_SHARE:  # the bound shows little: the threshold first
        scale = _outlier_scale(values)
        ys, xs = _where(residual > OUTLIER_SIGMAS * scale, usable)
    isolated = residual[ys, xs] > 2 * _neighbour_range(padded, ys, xs)
    ys, xs = ys[isolated], xs[isolated]
    if scale is None and len(ys):
        beyond = residual[ys, xs] > OUTLIER_SIGMAS * _outlier_scale(values)
        ys, xs = ys[beyond], xs[beyond]
    data[ys, xs] = median[ys, xs]
    return data, len(ys)


def _local_scale(padded, usable):
    """The 75th percentile of the usable pixels' distances from the mean of their four nearest neighbours, on
    a regular sample of rows of at most about `OUTLIER_SAMPLE` times 16 pixels (``padded``: the image reflected
    by one pixel); 0 where too few pixels are usable."""
    ny, nx = padded.shape[0] - 2, padded.shape[1] - 2
    rows = np.arange(0, ny, max(1, ny * nx // (16 * OUTLIER_SAMPLE)))
    centre = padded[rows + 1, 1:-1]
    mean4 = padded[rows, 1:-1] + padded[rows + 2, 1:-1] + padded[rows + 1, :-2] + padded[rows + 1, 2:]
    distance = np.abs(0.25 * mean4 - centre)[usable[rows]]
    return float(np.percentile(distance, 75)) if distance.size >= 9 else 0.0


def replace_outliers(image, finite=None):
    """The image with its gross isolated outliers (hot or dead pixels, cosmic rays) replaced by their 3 x 3 median.

    Such a pixel stands more than twice the range of its eight neighbours from the median of its 3 x 3
    neighbourhood, and farther from it than `GROSS_OUTLIER` interquartile ranges of the image's values or
    `LOCAL_OUTLIER` times the 75th percentile of the pixels' distances from the mean of their four nearest
    neighbours (whichever is smaller). An image blurred by a telescope's PSF has none: a real feature, however
    small, raises its neighbours too, and noise never stands that far (13.5 or 26 standard deviations). A dead
    pixel of 0 among quiet Sun at 1 is found beside a sunspot, which widens the interquartile range, as an 800 G
    spike among weak fields is. Left in, each rings over tens of pixels of a deconvolved image (the dead pixel,
    through 'light': to 3.2 I/Ic). (`measure_noise` leaves out weaker outliers too, for its level only.)

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, any unit.
    finite : (ny, nx) bool array_like, optional
        Where the image holds data: only those pixels are judged and replaced, and the interquartile range is
        theirs; the others count as the median of the image in their neighbours' medians. None: where it is
        finite.

    Returns
    -------
    cleaned : `~numpy.ndarray`
        A copy, float32 or float64 as `~enhance.checks.check_image` makes it.
    count : int
        The pixels replaced.

    Examples
    --------
    >>> image = np.random.default_rng(0).normal(1.0, 0.01, (64, 64))
    >>> image[20, 30] = -1e5  # a dead pixel
    >>> cleaned, count = replace_outliers(image)
    >>> count, bool(abs(cleaned[20, 30] - 1.0) < 0.05), bool(np.array_equal(np.delete(cleaned, 20 * 64 + 30),
    ...                                                                       np.delete(image, 20 * 64 + 30)))
    (1, True, True)
    """
    data = check_image(image)
    usable = np.isfinite(data) if finite is None else np.asarray(finite, bool) & np.isfinite(data)
    everywhere = bool(usable.all())
    values = data.ravel() if everywhere else data[usable]
    if values.size < 9:
        return data, 0
    low, middle, high = np.percentile(values[:: max(1, values.size // OUTLIER_SAMPLE)], [25, 50, 75])
    ny, nx = data.shape
    padded = np.empty((ny + 2, nx + 2), data.dtype)  # reflected by one pixel (d c b a | a b c d), by hand: 10x np.pad
    padded[1:-1, 1:-1] = data if everywhere else np.where(usable, data, middle)
    padded[0, 1:-1], padded[-1, 1:-1] = padded[1, 1:-1], padded[-2, 1:-1]
    padded[:, 0], padded[:, -1] = padded[:, 1], padded[:, -2]
    spread = GROSS_OUTLIER * (high - low)
    local = LOCAL_OUTLIER * _local_scale(padded, usable)
    if local > 0:  # else most pixels equal their neighbours' mean (a plane, a constant sky): the spread alone
        spread = min(spread, local)
    if not spread > 0:  # more than half of the values equal: no spread to judge by
        return data, 0
    # A necessary condition, cheap on every pixel: such a pixel stands more than half as far from the mean of its
    # four nearest neighbours (which lies within its eight neighbours' range, as its median does). Rows in chunks
    # whose temporaries stay in the cache.
    found = []
    for part in _chunks(slice(0, ny), max(1, 2**14 // nx)):
        top, stop = part.start, part.stop
        centre = padded[top + 1 : stop + 1, 1:-1]
        mean4 = padded[top:stop, 1:-1] + padded[top + 2 : stop + 2, 1:-1]
        mean4 += padded[top + 1 : stop + 1, :-2]
        mean4 += padded[top + 1 : stop + 1, 2:]
        mean4 *= 0.25
        mean4 -= centre
        hits = np.abs(mean4, out=mean4) > spread / 2
        if not everywhere:
            hits &= usable[part]
        found.append(np.flatnonzero(hits) + top * nx)
    ys, xs = np.divmod(np.concatenate(found), nx)
    if not len(ys):
        return data, 0
    median = np.median(np.stack([padded[ys + dy, xs + dx] for dy in range(3) for dx in range(3)], axis=1), axis=1)
    residual = np.abs(data[ys, xs].astype(np.float64) - median)
    gross = (residual > spread) & (residual > 2 * _neighbour_range(padded, ys, xs))
    data[ys[gross], xs[gross]] = median[gross]
    return data, int(np.count_nonzero(gross))


def _window_sums(values, size, step, count):
    """Sums of ``values`` over ``count`` windows of ``size`` along its last axis, ``step`` apart, windows that
    overlap by half (``size = 2 step``, or ``count`` 1) taken as sums of ``step``-wide blocks."""
    if count == 1:
        return values[..., :size].sum(axis=-1, keepdims=True)
    blocks = values[..., : (count + 1) * step].reshape(*values.shape[:-1], count + 1, step).sum(axis=-1)
    return blocks[..., :-1] + blocks[..., 1:]


def _tile_powers(data, usable, dx, start, stop=np.inf):
    """Power spectra of Hann-windowed, mean-subtracted tiles, per unit of noise variance, at the frequencies at or
    above ``start`` (in the order of the full spectrum, row by row), those frequencies, which tiles to read, and
    each tile's noise level read below ``stop`` (the median power there, as `_level`).

    The tiles have `NOISE_TILE` pixels and overlap by half (the whole image along an axis shorter than twice
    that); those to read hold no missing pixel and are not constant in part. The window is separable, so each
    row of a column of tiles, less its mean, is transformed along x once for the two tiles that overlap there;
    each tile then adds its rows' means less its own mean times the window's spectrum, and is transformed along
    y, at the frequencies beyond the cut-off only (those of ``rfft2``'s half plane: the power at ``-k`` is the
    power at ``k`` for a real tile). The counts of missing and equal pixels are taken on the image's blocks of
    half a tile. The values are those of the mean-subtracted tiles' FFT to float64 rounding.
    """
    size = tuple(n if n < 2 * NOISE_TILE else NOISE_TILE for n in data.shape)
    step = tuple(max(s // 2, 1) for s in size)
    count = tuple((n - s) // t + 1 for n, s, t in zip(data.shape, size, step, strict=True))
    ny, nx = size
    frequency = np.hypot(np.fft.fftfreq(ny, dx)[:, None], np.fft.fftfreq(nx, dx)[None, :])
    beyond = frequency >= start
    rows, columns = np.nonzero(beyond)
    mirrored = columns > nx // 2  # not in rfft2's half plane: read at -k
    rows, columns = np.where(mirrored, -rows % ny, rows), np.where(mirrored, nx - columns, columns)
    kx, column_at = np.unique(columns, return_inverse=True)
    across_y, across_x = np.hanning(ny + 2)[1:-1], np.hanning(nx + 2)[1:-1]  # the window, zero only outside
    norm = np.sum(across_y**2) * np.sum(across_x**2)
    own_x = np.fft.rfft(across_x)[kx][:, None]  # the window's spectrum along x, per unit of a row's mean
    below = frequency[beyond] < stop  # the frequencies each tile's level is read on

    def tile_sums(values, tiles, *, pairs=False):  # (tiles, across): each tile's sum of ``values`` (of nx - 1 pairs)
        sums = _window_sums(values, nx, step[1], count[1])
        if pairs:  # less the pair of the tile's last column with the pixel beyond it
            sums -= values[:, nx - 1 :: step[1]][:, : count[1]]
        return _window_sums(sums.T, ny, step[0], tiles).T

    across = count[1]
    power, keep = np.empty((count[0] * across, len(rows))), np.empty(count[0] * across, bool)
    levels = np.full(len(keep), np.nan)

    def powers(band):  # numpy's FFT releases the GIL: threads over rows of tiles use every core
        parts = _chunks(band, CHUNK_VALUES // (step[0] * data.shape[1]))
        most = max(part.stop - part.start for part in parts)
        lines = (most - 1) * step[0] + ny  # arrays for every chunk of the band, used in turn
        windowed, halves = np.empty((lines, across, nx)), np.empty((lines, across, nx // 2 + 1), complex)
        picked, by_tile = np.empty((lines, across, len(kx)), complex), np.empty((most, across, len(kx), ny), complex)
        for part in parts:
            top, tiles = part.start * step[0], part.stop - part.start
            lines = (tiles - 1) * step[0] + ny
            values = np.asarray(data[top : top + lines], np.float64)
            segments = sliding_window_view(values, nx, axis=1)[:, :: step[1]]  # each row of each column of tiles
            means = segments.mean(axis=2)
            np.subtract(segments, means[..., None], out=windowed[:lines])
            windowed[:lines] *= across_x
            np.fft.rfft(windowed[:lines], axis=2, out=halves[:lines])
            np.take(halves[:lines], kx, axis=2, out=picked[:lines])  # (lines, across, kx)
            means = sliding_window_view(means, ny, axis=0)[:: step[0]]  # (tiles, across, ny): each tile's rows
            transformed = by_tile[:tiles]  # (tiles, across, kx, ny)
            np.multiply((means - means.mean(axis=2, keepdims=True))[:, :, None, :], own_x, out=transformed)
            transformed += sliding_window_view(picked[:lines], ny, axis=0)[:: step[0]]
            transformed *= across_y
            spectrum = np.fft.fft(transformed, axis=3, out=transformed)[:, :, column_at, rows]
            out = slice(part.start * across, part.stop * across)
            np.divide(spectrum.real**2 + spectrum.imag**2, norm, out=power[out].reshape(tiles, across, -1))
            if below.any():
                levels[out] = np.median(power[out] if below.all() else power[out][:, below], axis=1)
            equal = np.zeros(values.shape)
            np.equal(values[:, 1:], values[:, :-1], out=equal[:, :-1], casting="unsafe")
            flat = tile_sums(equal, tiles, pairs=True) / (ny * (nx - 1)) > FLAT_SHARE  # off-limb, dead columns
            lost = ~usable[top : top + lines]
            lost = tile_sums(lost.astype(np.float64), tiles) > 0 if lost.any() else np.zeros(flat.shape, bool)
            keep[out] = (~flat & ~lost).ravel()

    map_rows(powers, count[0], minimum=max(1, 16 // across))
    return power, frequency[beyond], keep, np.sqrt(levels / np.log(2))


def _pattern(power):
    """Whether a few frequencies (a periodic pattern) hold most of the power beyond the cut-off, in most tiles.

    The median over the tiles: an edge's streak in one tile is not a pattern of the image."""
    mean = np.median(np.ascontiguousarray(power.T), axis=1)  # each frequency's powers in a row: faster
    total = float(mean.sum())
    if not total > 0:
        return False
    peaks = mean > PEAK_RATIO * float(np.median(mean))
    return bool(mean[peaks].sum() > 0.5 * total)


def _scale_exponent(data) -> int:
    """0 where the largest magnitude of ``data`` (finite, missing pixels 0) lies within `SCALE_RANGE` powers of two
    of 1, else its binary exponent (`measure_noise` then measures the image scaled by that power of two)."""
    largest = max(float(data.max()), -float(data.min()))
    exponent = math.frexp(largest)[1] if largest > 0 else 0
    return exponent if abs(exponent) > SCALE_RANGE else 0


def _level(power, band):
    """Noise standard deviation from the median power over ``band`` (white noise: exponential powers)."""
    return float(np.sqrt(np.median(power[:, band]) / np.log(2)))


@u.quantity_input
def measure_noise(image, pixel_scale: u.arcsec = HMI_PIXEL_SCALE, *, band_start: 1 / u.arcsec = NOISE_BAND_START,
                  band_stop=None, finite=None) -> NoiseMeasurement:  # fmt: skip
    """The white-noise level of an image from its power beyond the cut-off, robust to outliers and edges.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, any unit (the result is in that unit); at least 16 x 16 pixels. Non-finite pixels are
        missing (their tiles are left out).
    pixel_scale : `~astropy.units.Quantity`
        Its pixel scale; defaults to HMI's 0.504 arcsec.
    band_start : `~astropy.units.Quantity`
        Frequencies at or above this count as noise; defaults to `NOISE_BAND_START`.
    band_stop : `~astropy.units.Quantity`, optional
        Frequencies at or above this are left out; None keeps all up to the grid's corners.
    finite : (ny, nx) bool array_like, optional
        Where the image holds data (e.g. before missing pixels were filled); tiles with other pixels are left out.

    Returns
    -------
    NoiseMeasurement
        The level and whether it can be believed.

    Notes
    -----
    Outlier pixels are replaced by their 3x3 median. Each tile, less its mean, is Hann-windowed; the power of
    white noise of variance :math:`\\sigma^2` is then :math:`\\sigma^2 \\sum w^2` at every frequency,
    exponentially distributed, so the median power over the band (pooled over the tiles kept) divided by
    :math:`\\ln 2 \\sum w^2` estimates :math:`\\sigma^2`. Tiles above `TILE_REJECT` times the median tile's
    level are rejected first.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(5.0, 2.0, (256, 256))
    >>> image[10, 10] = 1e6  # a hot pixel
    >>> found = measure_noise(image)
    >>> bool(abs(found.sigma - 2.0) < 0.1), found.reliable, found.outliers
    (True, True, 1)
    """
    data = check_image(image)  # a copy, float32 or float64: the medians are picked in its type
    if min(data.shape) < 16:
        msg = f"the noise level needs an image of at least 16 x 16 pixels, got shape {data.shape}"
        raise ValueError(msg)
    dx = check_positive(float(pixel_scale.to_value(u.arcsec)), name="pixel_scale")
    start = float(band_start.to_value(1 / u.arcsec))
    stop = np.inf if band_stop is None else float(band_stop.to_value(1 / u.arcsec))
    usable = np.isfinite(data) if finite is None else np.asarray(finite, bool) & np.isfinite(data)
    if not usable.all():
        data[~usable] = 0
    exponent = _scale_exponent(data)
    if exponent:  # measured on the image times a power of two (exact), so that no power underflows or overflows
        data = np.ldexp(data.astype(np.float64), -exponent)
    data, outliers = _replace_outliers(data, usable)
    power, frequency, keep, levels = _tile_powers(data, usable, dx, start, stop)  # at or above ``start`` only
    band = frequency < stop
    if band.sum() * len(keep) < 16:
        msg = (f"pixels of {dx:g} arcsec sample no frequency above {start:g} cycles per arcsec: "
               "the noise level cannot be measured on this grid")  # fmt: skip
        raise ValueError(msg)
    missing = int((~keep).sum())
    if not missing < len(keep):
        return NoiseMeasurement(np.nan, reliable=False, reason="no tile without missing or constant pixels",
                                missing=missing, outliers=outliers)  # fmt: skip
    high = keep & (levels > TILE_REJECT * float(np.median(levels[keep])))
    power = power if (keep & ~high).all() else power[keep & ~high]
    count, rejected = len(power), int(high.sum())
    inner, outer = frequency < WHITE_SPLIT, frequency >= max(WHITE_SPLIT, start)
    tasks = [functools.partial(_pattern, power)]  # medians over most of the powers, on the cores at once
    if inner.any() and outer.any():
        tasks += [functools.partial(_level, power, inner), functools.partial(_level, power, outer)]
    with np.errstate(divide="ignore", invalid="ignore"):
        runs = map_rows(lambda part: [task() for task in tasks[part]], len(tasks), minimum=1)
        pattern, *levels_read = (found for run in runs for found in run)
        whiteness = levels_read[0] / levels_read[1] if levels_read else 1.0
    reason = ""
    if pattern:
        reason = "a periodic pattern holds most of the power beyond the cut-off"
    elif count < rejected:
        reason = f"{rejected} of {count + rejected} tiles stand far above the others (edges, artefacts)"
    # The median of the tiles' levels: a tile that an edge crosses in a corner (not rejected) cannot move it.
    level = math.ldexp(float(np.median(levels[keep & ~high])), exponent)
    return NoiseMeasurement(level, reliable=not reason, reason=reason, whiteness=float(whiteness),
                            tiles=count, missing=missing, rejected=rejected, outliers=outliers)  # fmt: skip


@u.quantity_input
def estimate_noise(image, pixel_scale: u.arcsec = HMI_PIXEL_SCALE, *, band_start: 1 / u.arcsec = NOISE_BAND_START,
                   band_stop=None):  # fmt: skip
    """Standard deviation of the white noise per pixel of an image, from its power beyond the cut-off.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, finite, any unit (the result is in that unit); at least 16 x 16 pixels.
    pixel_scale : `~astropy.units.Quantity`
        Its pixel scale; defaults to HMI's 0.504 arcsec.
    band_start : `~astropy.units.Quantity`
        Frequencies at or above this count as noise; defaults to `NOISE_BAND_START`.
    band_stop : `~astropy.units.Quantity`, optional
        Frequencies at or above this are left out; None keeps all up to the grid's corners.

    Returns
    -------
    float
        :math:`\\sigma`, in the image's units: `measure_noise`'s level (robust to outlier pixels, edges and
        constant regions; see there whether it can be believed).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> bool(abs(estimate_noise(rng.normal(5.0, 2.0, (256, 256))) - 2.0) < 0.1)  # within its 3 % scatter
    True
    """
    check_image(image, allow_nonfinite=False)
    return measure_noise(image, pixel_scale, band_start=band_start, band_stop=band_stop).sigma


def noise_is_white(image, pixel_scale: u.arcsec = HMI_PIXEL_SCALE, *, ratio: float = 2.0) -> bool:
    """Whether the spectrum's corners are flat, as white noise makes them.

    An image that was interpolated (remapped, derotated, resampled) has lost most of its power at the
    highest frequencies, so `estimate_noise` then reads a level well below the noise left at lower ones.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, finite, at least 16 x 16 pixels.
    pixel_scale : `~astropy.units.Quantity`
        Its pixel scale; defaults to HMI's 0.504 arcsec.
    ratio : float
        Largest ratio of the noise level read from 1.15-1.27 cycles per arcsec to the one read beyond.

    Returns
    -------
    bool
        True when the two levels agree within ``ratio``.

    Examples
    --------
    >>> from scipy import ndimage
    >>> noise = np.random.default_rng(0).normal(size=(128, 128))
    >>> noise_is_white(noise), noise_is_white(ndimage.zoom(ndimage.zoom(noise, 0.7), 1 / 0.7))
    (True, False)
    """
    return bool(measure_noise(image, pixel_scale).whiteness <= ratio)
