"""The quiet-Sun continuum level that continuum images are normalised by before the network.

Enhance was trained on images whose quiet Sun is 1. Near disk centre one number does (`estimate_qs_level`).
Towards the limb, limb darkening lowers the quiet Sun across a cut-out (at 6173 Angstrom to about half
the disk-centre value near mu = 0.2), and a full-disk image spans all of it; one number then leaves much
of the field far from 1, where the network was never trained (scaling a quiet-Sun input by 0.8 changes
the full model's output beyond the scaling by a quarter of its RMS contrast). `QuietSunSurface` follows the
quiet Sun instead: a smooth surface fitted to the granulation, divided out before the network and
multiplied back after it, on the input's or the output's grid.

Both estimates look at the same regular subsample of at most 65,536 pixels, so they cost the same for
any image size and the Dask path (`~enhance.inference.distributed.enhance_dask`) gets exactly the same numbers.
"""

import dataclasses
import warnings

import numpy as np
import scipy  # its submodules load when first used (scipy.ndimage: 0.15 s)

from .. import exceptions
from ..checks import check_positive

__all__ = ["QS_SAMPLES", "SURFACE_SCALE", "AUTO_SURFACE_SPREAD", "qs_stride", "estimate_qs_level",
           "QS_MODES", "QuietSunSurface", "fit_qs_surface", "surface_from_samples", "check_qs_level",
           "normalisation_from_samples", "qs_normalisation", "QS_LEVEL_RANGE", "check_level_fits",
           "warn_little_quiet_sun", "BRIGHT_SHARE", "BRIGHT_FACTOR"]  # fmt: skip

#: Pixels that the quiet-Sun estimates look at, at most (a regular subsample of the image).
QS_SAMPLES = 1 << 16
#: Gaussian smoothing scale of `fit_qs_surface`, in input pixels (40 px = 20 arcsec at HMI's 0.504"):
#: wide enough to bridge a sunspot's penumbra, narrow enough to follow limb darkening.
SURFACE_SCALE = 40.0
#: `warn_little_quiet_sun` warns when more than this share of the pixels is brighter than `BRIGHT_FACTOR` times
#: the estimated level (quiet Sun at HMI's resolution: none; the packaged active-region cut-out: none).
BRIGHT_SHARE = 0.03
#: Brightness, relative to the quiet-Sun level, that the quiet Sun's granules and disk-centre faculae stay under
#: at HMI's resolution (their 99th percentile: 1.09 on the packaged cut-outs).
BRIGHT_FACTOR = 1.15
#: With ``qs_level=None``, `qs_normalisation` uses the surface once it spans more than this fraction
#: (max / min - 1), a single level otherwise. Disk-centre active regions stay below it (the packaged
#: cut-out: 4 %); limb darkening across a 100" cut-out at mu = 0.3-0.5 spans about 35 %.
AUTO_SURFACE_SPREAD = 0.15


def qs_stride(shape, samples: int = QS_SAMPLES) -> int:
    """Stride along every axis that leaves at most ``samples`` pixels for the quiet-Sun estimates.

    Parameters
    ----------
    shape : tuple of int
        The image's shape, pixels.
    samples : int
        Pixels to leave at most; `QS_SAMPLES` by default.

    Returns
    -------
    int
        The stride, pixels (1 for images of at most ``samples`` pixels).

    Examples
    --------
    >>> qs_stride((200, 200)), qs_stride((4096, 4096)), qs_stride((400, 400), samples=10_000)
    (1, 16, 4)
    """
    size = int(np.prod(shape))
    return max(1, int(np.ceil((size / samples) ** (1 / len(shape)))))


def estimate_qs_level(image, *, window=0.15, n_iter=10):
    """Estimate the quiet-Sun continuum level of an image robustly.

    Starts from the median of the finite pixels (a regular subsample of at most 65,536 of them) and
    repeatedly takes the median of the pixels within ``+-window`` (relative) of the current estimate.
    Dark umbrae and penumbrae, bright faculae and NaN (off-limb) pixels fall outside the window, so the
    estimate settles on the granulation.

    Parameters
    ----------
    image : array_like
        Continuum image in any units.
    window : float
        Half-width of the accepted range, relative to the level; defaults to 0.15.
    n_iter : int
        Maximum number of refinements.

    Returns
    -------
    float
        The quiet-Sun level, in the units of ``image``.

    Notes
    -----
    Assumes that the quiet Sun covers a good part of the field and that limb darkening within the
    field is small (cut-outs, or disk-centre regions); `~enhance.observation.quiet_sun.fit_qs_surface`
    follows it where it is not.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.r_[np.full(80, 1.0), np.full(20, 0.2)]  # 20 % umbra
    >>> estimate_qs_level(image)
    1.0
    """
    values = np.asarray(image)
    stride = qs_stride(values.shape)  # a regular grid of samples over the whole field: the level to ~1e-4
    values = values[(slice(None, None, stride),) * values.ndim].astype(np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        msg = "cannot estimate the quiet-Sun level: the image has no finite pixels"
        raise ValueError(msg)
    values = np.sort(values)  # once: the pixels near each level are then a run of it, whose median is read there
    level = float(np.median(values))
    for _ in range(n_iter):
        near = np.abs(values - level) <= window * abs(level)  # True on one run: the distance falls, then rises
        if not near.any():
            break
        new = float(np.median(values[int(np.argmax(near)) : near.size - int(np.argmax(near[::-1]))]))
        converged = abs(new - level) <= 1e-6 * abs(level)
        level = new
        if converged:
            break
    if not level > 0:
        msg = f"the estimated quiet-Sun level is {level}; pass qs_level= explicitly"
        raise ValueError(msg)
    return level


@dataclasses.dataclass(frozen=True)
class QuietSunSurface:
    """A smooth quiet-Sun level over an image, sampled every ``stride`` pixels from pixel (0, 0).

    Call it to get the surface at the centres of the image's pixels (``factor=1``) or of their 2x2
    output pixels (``factor=2``), optionally for a band of ``rows`` only; values are interpolated
    linearly between samples and held constant beyond the outer ones. `window` gives the surface of a
    piece of the image (a tile, a Dask chunk).

    Parameters
    ----------
    samples : numpy.ndarray
        ``(my, mx)`` quiet-Sun level (the image's unit) at image pixels ``(i * stride, j * stride)``.
    stride : int
        Spacing of the samples, image pixels.
    shape : tuple of int
        ``(ny, nx)`` of the image, or of the window, the surface applies to.
    offset : tuple of int
        Position of the window's first pixel in the fitted image.

    Examples
    --------
    >>> import numpy as np
    >>> surface = QuietSunSurface(np.array([[1.0, 2.0]]), stride=2, shape=(1, 3))
    >>> surface()
    array([[1. , 1.5, 2. ]], dtype=float32)
    >>> surface(factor=2).shape
    (2, 6)
    """

    samples: np.ndarray  #: (my, mx) the level at image pixels (i * stride, j * stride)
    stride: int
    shape: tuple  #: (ny, nx) of the image, or of the window, it applies to
    offset: tuple = (0, 0)  #: position of the window's first pixel in the fitted image

    def __call__(self, rows=slice(None), *, factor: int = 1) -> np.ndarray:
        coords = []
        for window, n, start0 in zip((rows, slice(None)), self.shape, self.offset, strict=True):
            start, stop, _ = window.indices(n)
            centres = (np.arange(factor * start, factor * stop) + 0.5) / factor - 0.5 + start0  # image pixels
            coords.append(centres / self.stride)
        grid = np.meshgrid(*coords, indexing="ij")
        return scipy.ndimage.map_coordinates(self.samples, grid, order=1, mode="nearest", output=np.float32)

    def window(self, row: int, col: int, shape) -> "QuietSunSurface":
        """The surface of the piece of the image that starts at pixel (row, col) and has ``shape``.

        Parameters
        ----------
        row : int
            First row of the piece, image pixels.
        col : int
            First column of the piece, image pixels.
        shape : tuple of int
            ``(ny, nx)`` of the piece, pixels.

        Returns
        -------
        QuietSunSurface
            The same samples, evaluated on the piece.

        Examples
        --------
        >>> import numpy as np
        >>> surface = QuietSunSurface(np.array([[1.0, 2.0]]), stride=2, shape=(1, 3))
        >>> surface.window(0, 1, (1, 2))()
        array([[1.5, 2. ]], dtype=float32)
        """
        offset = (self.offset[0] + int(row), self.offset[1] + int(col))
        return dataclasses.replace(self, shape=tuple(int(n) for n in shape), offset=offset)

    @property
    def spread(self) -> float:
        """max / min - 1 of the surface: how much the quiet Sun varies across the field.

        Examples
        --------
        >>> import numpy as np
        >>> QuietSunSurface(np.array([[0.8, 1.0]]), stride=2, shape=(1, 3)).spread
        0.25
        """
        return float(self.samples.max() / self.samples.min() - 1)


def fit_qs_surface(image, *, scale: float = SURFACE_SCALE, window: float = 0.10, n_iter: int = 10):
    """Fit a smooth surface to the quiet Sun of a continuum image (limb darkening, large-scale trends).

    On the regular subsample of `estimate_qs_level`, the surface starts flat at that level; each
    refinement keeps the finite pixels within ``+-window`` of it (granulation: umbrae, penumbrae,
    faculae and off-limb NaN fall out) and replaces it by a Gaussian-weighted local linear fit to
    them (so linear trends are followed exactly, up to the edges of the field, and the holes left by
    spots are bridged from their surroundings). Where no quiet pixel lies within reach of the
    Gaussian (off the limb), the nearest fitted value is used.

    Parameters
    ----------
    image : (ny, nx) array_like
        Continuum image in any units.
    scale : float
        Standard deviation of the Gaussian, in input pixels; defaults to `SURFACE_SCALE` (20 arcsec on
        HMI).
    window : float
        Half-width of the accepted range, relative to the surface; defaults to 0.10 (2.7 times the
        granulation's RMS contrast on HMI), so that penumbrae and faculae stay out.
    n_iter : int
        Maximum number of refinements (they stop once the quiet pixels stay the same).

    Returns
    -------
    QuietSunSurface
        The surface, in the image's unit; call it for its values on the input or the x2 grid.

    Notes
    -----
    The surface follows limb darkening to 0.5 % inside 0.9 of the solar radius and to 2 % out to 0.98
    (on HMI's 0.504" pixels); over the last 2 % (mu below 0.2, where the intensity falls steeply and
    Enhance is unreliable anyway) it stays above the quiet Sun. It only sets the level the network
    sees: the output is multiplied by the same surface.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.tile(np.linspace(0.6, 0.9, 300), (200, 1))  # limb darkening across a cut-out
    >>> surface = fit_qs_surface(ramp)
    >>> bool(np.allclose(surface(), ramp, rtol=0.01))
    True
    """
    data = np.asarray(image)
    if data.ndim != 2:
        msg = f"image must be 2-D, got shape {data.shape}"
        raise ValueError(msg)
    stride = qs_stride(data.shape)
    return surface_from_samples(data[::stride, ::stride], stride, data.shape, scale=scale, window=window,
                                n_iter=n_iter)  # fmt: skip


def surface_from_samples(values, stride, shape, *, scale=SURFACE_SCALE, window=0.10, n_iter=10):
    """`fit_qs_surface` from the regular subsample ``image[::stride, ::stride]`` of an image of ``shape``.

    This is what `~enhance.inference.distributed.enhance_dask` computes before any chunk runs.

    Parameters
    ----------
    values : numpy.ndarray
        ``image[::stride, ::stride]``, in the image's unit.
    stride : int
        The subsampling step, pixels (`qs_stride`).
    shape : tuple of int
        Shape of the full image, pixels.
    scale : float
        Standard deviation of the fit's Gaussian, input pixels (see `fit_qs_surface`).
    window : float
        Half-width of the accepted range, relative to the surface.
    n_iter : int
        Maximum number of refinements.

    Returns
    -------
    QuietSunSurface
        The surface over the full image.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.tile(np.linspace(0.6, 0.9, 300), (200, 1))
    >>> surface = surface_from_samples(ramp[::2, ::2], 2, ramp.shape)
    >>> surface().shape
    (200, 300)
    """
    check_positive(scale, name="scale")
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    level = estimate_qs_level(values, window=window)
    surface = np.full(values.shape, level)
    sigma = scale / stride
    block = max(1, int(sigma // 4))  # the fit runs on blocks of samples, a quarter of the Gaussian wide
    previous = None
    for _ in range(n_iter):
        quiet = finite & (np.abs(values - surface) <= window * surface)
        if not quiet.any() or (previous is not None and np.array_equal(quiet, previous)):
            break  # converged: the same quiet pixels give the same surface
        previous = quiet
        weights, sums = (_block_sum(x, block) for x in (quiet.astype(np.float64), np.where(quiet, values, 0.0)))
        fit = _local_linear_fit(sums, weights, sigma / block)
        centres = [(np.arange(n) + 0.5) / block - 0.5 for n in values.shape]  # samples in block units
        surface = scipy.ndimage.map_coordinates(fit, np.meshgrid(*centres, indexing="ij"), order=1, mode="nearest")
    if not np.all(surface > 0):
        msg = "the fitted quiet-Sun surface is not positive everywhere; pass qs_level= explicitly"
        raise ValueError(msg)
    return QuietSunSurface(samples=surface, stride=int(stride), shape=tuple(int(n) for n in shape))


def _block_sum(x, block):
    """Sums over ``block`` x ``block`` squares (the last ones partial)."""
    if block == 1:
        return x
    ny, nx = (-(-n // block) * block for n in x.shape)
    padded = np.zeros((ny, nx))
    padded[: x.shape[0], : x.shape[1]] = x
    return padded.reshape(ny // block, block, nx // block, block).sum(axis=(1, 3))


def _local_linear_fit(sums, weights, sigma):
    """Gaussian-weighted local linear regression of the data whose weighted sums in each cell are
    ``sums`` and whose weights are ``weights``, at every cell.

    A plane fitted about each sample reproduces linear trends exactly, also near the edges of the field
    and across holes (spots, the limb), where a weighted mean would be pulled towards the inside. Where
    the plane is ill-determined (quiet pixels on one line, or none nearby) or departs from the weighted
    mean by more than 15 %, the weighted mean is used; where no quiet pixel is within reach, the nearest
    fitted value.
    """
    w = weights.astype(np.float64)
    rows, cols = np.indices(sums.shape, dtype=np.float64) / sigma  # coordinates in units of sigma

    def smooth(x):
        return scipy.ndimage.gaussian_filter(x, sigma, mode="constant", cval=0.0)

    m0 = smooth(w)
    reached = m0 > 1e-3 * m0.max()
    # Moments about each sample: sums of w dy^a dx^b with d = (pixel - sample) / sigma.
    my, mx = smooth(w * rows) - rows * m0, smooth(w * cols) - cols * m0
    myy = smooth(w * rows**2) - 2 * rows * smooth(w * rows) + rows**2 * m0
    mxx = smooth(w * cols**2) - 2 * cols * smooth(w * cols) + cols**2 * m0
    mxy = smooth(w * rows * cols) - rows * smooth(w * cols) - cols * smooth(w * rows) + rows * cols * m0
    v0 = smooth(sums)
    vy, vx = smooth(sums * rows) - rows * v0, smooth(sums * cols) - cols * v0
    mean = np.where(reached, v0 / np.where(reached, m0, 1.0), np.nan)

    matrix = np.stack([np.stack([m0, my, mx], -1), np.stack([my, myy, mxy], -1), np.stack([mx, mxy, mxx], -1)], -2)
    rhs = np.stack([v0, vy, vx], -1)
    det = np.linalg.det(matrix)
    good = reached & (det > 1e-6 * m0**3)
    plane = np.full(sums.shape, np.nan)
    plane[good] = np.linalg.solve(matrix[good], rhs[good][..., None])[..., 0, 0]
    fit = np.where(good & (np.abs(plane - mean) <= 0.15 * np.abs(mean)), plane, mean)
    if not reached.all():  # off the limb: the nearest fitted value
        nearest = scipy.ndimage.distance_transform_edt(~reached, return_distances=False, return_indices=True)
        fit = fit[tuple(nearest)]
    return fit


QS_MODES = ("level", "surface")


def check_qs_level(qs_level):
    """Return ``qs_level`` if it is None, 'level', 'surface', a `QuietSunSurface` or a positive number.

    Parameters
    ----------
    qs_level : None, str, float or QuietSunSurface
        The quiet-Sun option of `~enhance.inference.api.enhance`; a number is in the image's unit.

    Returns
    -------
    None, str, float or QuietSunSurface
        ``qs_level``, a number as a float.

    Raises
    ------
    ValueError
        For anything else.

    Examples
    --------
    >>> check_qs_level("surface"), check_qs_level(48000)
    ('surface', 48000.0)
    """
    if qs_level is None or isinstance(qs_level, QuietSunSurface):
        return qs_level
    if isinstance(qs_level, str):
        if qs_level not in QS_MODES:
            msg = f"qs_level must be a positive number, 'level', 'surface' or None, got {qs_level!r}"
            raise ValueError(msg)
        return qs_level
    return check_positive(qs_level, name="qs_level")


#: Largest factor between a quiet-Sun level given as a number and the image's own (`estimate_qs_level`).
QS_LEVEL_RANGE = 100.0


def check_level_fits(qs_level: float, image) -> float:
    """Refuse a quiet-Sun level more than `QS_LEVEL_RANGE` times above or below the image's own level.

    A level far above the image's scales it to nearly zero (the output is then all zeros), one far below it
    to values no network has seen: both are wrong units, not solar data.

    Parameters
    ----------
    qs_level : float
        The level given, in the image's units.
    image : array_like
        The continuum image.

    Returns
    -------
    float
        ``qs_level``.

    Raises
    ------
    ValueError
        If ``qs_level`` and `estimate_qs_level` of the image differ by more than `QS_LEVEL_RANGE` times.

    Examples
    --------
    >>> import numpy as np
    >>> check_level_fits(0.9, np.ones((8, 8)))
    0.9
    >>> check_level_fits(1e6, np.ones((8, 8)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: qs_level=1e+06 is 1e+06 times the image's own quiet-Sun level (1); give the level in the image's ...
    """
    # A check within a factor of 100: about 10 000 samples tell the level (0.4 ms, not 1.5 ms on 400 x 400).
    stride = qs_stride(np.shape(image), samples=10_000) if np.ndim(image) == 2 else 1
    try:
        own = estimate_qs_level(np.asarray(image)[::stride, ::stride] if stride > 1 else image)
    except ValueError:  # no level to compare with (no finite or positive pixels): other checks say so
        return qs_level
    ratio = qs_level / own
    if not 1 / QS_LEVEL_RANGE <= ratio <= QS_LEVEL_RANGE:
        msg = (f"qs_level={qs_level:.6g} is {ratio:.3g} times the image's own quiet-Sun level ({own:.6g}); give the "
               f"level in the image's units (within a factor {QS_LEVEL_RANGE:.0f} of it) or 'level'")  # fmt: skip
        raise ValueError(msg)
    return qs_level


def _is_flat(samples, stride, level):
    """Whether the field is plainly flat around ``level`` (a quick look before a fit).

    Flat: at least half of the finite pixels lie within 10 % of the level, and the mean of those in
    each square of `SURFACE_SCALE` pixels varies by less than half of `AUTO_SURFACE_SPREAD`.
    """
    values = np.asarray(samples, dtype=np.float64)
    finite = np.isfinite(values)
    quiet = finite & (np.abs(values - level) <= 0.10 * level)
    if quiet.sum() < 0.5 * finite.sum():
        return False
    block = max(1, int(SURFACE_SCALE // stride))
    weights, sums = _block_sum(quiet.astype(np.float64), block), _block_sum(np.where(quiet, values, 0.0), block)
    filled = weights >= 0.25 * block * block
    if not filled.any():
        return False
    means = sums[filled] / weights[filled]
    return bool(means.max() / means.min() - 1 < AUTO_SURFACE_SPREAD / 2)


def normalisation_from_samples(samples, stride, shape, qs_level=None):
    """`qs_normalisation` from the regular subsample ``image[::stride, ::stride]`` of an image of ``shape``.

    Parameters
    ----------
    samples : numpy.ndarray
        ``image[::stride, ::stride]``, in the image's unit.
    stride : int
        The subsampling step, pixels (`qs_stride`).
    shape : tuple of int
        Shape of the full image, pixels.
    qs_level : None, {'level', 'surface'} or float
        As for `qs_normalisation`.

    Returns
    -------
    float or QuietSunSurface
        One quiet-Sun level (the image's unit) or a surface.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(1.0, 0.03, (100, 100))
    >>> round(normalisation_from_samples(image, 1, image.shape), 2)
    1.0
    """
    if qs_level == "surface":
        return surface_from_samples(samples, stride, shape)
    level = estimate_qs_level(samples)
    if qs_level != "level" and not _is_flat(samples, stride, level):
        surface = surface_from_samples(samples, stride, shape)
        if surface.spread > AUTO_SURFACE_SPREAD:
            warn_little_quiet_sun(samples, surface.samples)  # a penumbra's spread can pick a surface too
            return surface
    warn_little_quiet_sun(samples, level)
    return level


def warn_little_quiet_sun(image, level) -> float:
    """Warn (`~enhance.exceptions.EnhanceUserWarning`) when an estimated quiet-Sun level is likely too low.

    At HMI's resolution the quiet Sun's brightest granules stand about 10 % above its level, and faculae
    near disk centre less; so when more than `BRIGHT_SHARE` of the finite pixels are brighter than
    `BRIGHT_FACTOR` times ``level``, the level came from something darker than the quiet Sun: a crop of
    an umbra and penumbra (the packaged cut-out's 32 x 32 pixels around its darkest: 0.74 against 1.02, with
    3.6 % of them above 1.15 times that), or the darker side of a field across which limb darkening
    lowers the quiet Sun (``qs_level='level'`` there). The network then sees the image too bright.

    Parameters
    ----------
    image : array_like
        The continuum image (or its regular subsample) the level was estimated on.
    level : float or array_like
        The estimated quiet-Sun level, in the image's unit, or a surface of the image's shape (the samples of a
        `QuietSunSurface` for the samples of the image it was fitted on).

    Returns
    -------
    float
        The share of finite pixels brighter than ``BRIGHT_FACTOR * level`` (warned of above `BRIGHT_SHARE`).

    Examples
    --------
    >>> import numpy as np
    >>> granulation = np.random.default_rng(0).normal(1.0, 0.04, (64, 64))
    >>> float(warn_little_quiet_sun(granulation, 1.0))
    0.0
    """
    values = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(values)
    bright = finite & (values > BRIGHT_FACTOR * np.asarray(level, dtype=np.float64))
    share = float(np.count_nonzero(bright) / np.count_nonzero(finite)) if finite.any() else 0.0
    if share > BRIGHT_SHARE:
        surface = np.ndim(level) > 0
        what = f"surface (from {np.min(level):.4g} to {np.max(level):.4g})" if surface else f"level {float(level):.4g}"
        varies = ("the quiet Sun varies faster than the surface follows (the last arcseconds before the limb)"
                  if surface else "its quiet Sun varies (limb darkening: qs_level='surface')")  # fmt: skip
        warnings.warn(f"{100 * share:.0f} % of the image is brighter than {BRIGHT_FACTOR} times the estimated "
                      f"quiet-Sun {what}, which the quiet Sun never is at HMI's resolution: the level is likely too "
                      "low for much of the field, which then looks too bright to the network. The field may hold "
                      "little quiet Sun (an umbra or penumbra crop: pass qs_level=, --qs-level, with the quiet Sun "
                      f"of a larger field), or {varies}", exceptions.EnhanceUserWarning, stacklevel=2)  # fmt: skip
    return share


def qs_normalisation(image, qs_level=None):
    """The quiet-Sun normalisation of a continuum image: a positive float or a `QuietSunSurface`.

    Parameters
    ----------
    image : (ny, nx) array_like
        Continuum image in any units.
    qs_level : float, 'level', 'surface', QuietSunSurface or None
        A number (or a surface of the image's shape) is used as it is; 'level' estimates one number
        (`estimate_qs_level`); 'surface' fits `fit_qs_surface`; None (default) fits the surface and
        keeps it when the quiet Sun varies by more than `AUTO_SURFACE_SPREAD` across the field (near
        the limb, full disks), else uses the single level.

    Returns
    -------
    float or QuietSunSurface
        One quiet-Sun level, or a surface, in the image's unit.

    Examples
    --------
    >>> import numpy as np
    >>> qs_normalisation(np.full((64, 64), 2.0))
    2.0
    >>> ramp = np.tile(np.linspace(0.5, 0.8, 200), (100, 1))  # limb darkening across the field
    >>> type(qs_normalisation(ramp)).__name__
    'QuietSunSurface'
    """
    qs_level = check_qs_level(qs_level)
    shape = np.shape(image)
    if isinstance(qs_level, QuietSunSurface):
        if qs_level.shape != tuple(shape):
            msg = f"the quiet-Sun surface is for shape {qs_level.shape}, but the image has shape {shape}"
            raise ValueError(msg)
        return qs_level
    if qs_level is not None and not isinstance(qs_level, str):
        return check_level_fits(qs_level, image)
    if len(shape) != 2:
        msg = f"image must be 2-D, got shape {shape}"
        raise ValueError(msg)
    stride = qs_stride(shape)
    return normalisation_from_samples(np.asarray(image)[::stride, ::stride], stride, shape, qs_level)
