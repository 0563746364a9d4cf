"""Numbers that describe solar images: contrast, power spectra, and comparisons with a reference.

Arrays in, numbers or arrays out. Besides the image statistics (contrast, power spectra, magnetic flux)
this module holds the comparisons of an enhanced image with its input (density scatter, the
reconvolution or *consistency* test of Díaz Baso & Asensio Ramos 2018) and with a reference image
(PSNR and SSIM).
"""

import astropy.units as u
import numpy as np
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ..checks import check_image, check_integer, check_positive, fill_nonfinite
from ..constants import HMI_PIXEL_SCALE
from ..grid import on_output_grid
from ..observation.consistency import consistency, consistency_map, reconvolve  # noqa: F401 - also here
from ..observation.quiet_sun import estimate_qs_level
from .baselines import bicubic_x2
from .spectra import power_spectrum, white_noise_level, white_noise_power  # noqa: F401 - also here

__all__ = [
    "contrast",
    "field_amplification",
    "power_spectrum",
    "quiet_region",
    "scale_region",
    "white_noise_power",
    "white_noise_level",
    "psnr",
    "ssim",
    "total_flux",
    "unsigned_flux",
    "density_scatter",
    "temporal_flicker",
]


def contrast(image, *, region=None):
    """RMS contrast :math:`\\sigma_I / \\langle I \\rangle` of an image or a region of it.

    Parameters
    ----------
    image : (ny, nx) array_like
        Continuum intensity (any units). NaN pixels are ignored.
    region : tuple of slices, optional
        The part of the image to use, e.g. ``np.s_[10:60, 20:80]`` (a quiet-Sun area).

    Returns
    -------
    float
        The contrast as a fraction (0.037 for 3.7 %).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(256)
    >>> image = 1 + 0.1 * np.sin(2 * np.pi * x / 32)[None, :] * np.ones((8, 1))
    >>> round(contrast(image), 4)  # A / (sqrt(2) mean)
    0.0707
    """
    data = check_image(image)
    if region is not None:
        data = data[region]
    values = data[np.isfinite(data)]
    if values.size < 2:
        msg = f"contrast needs at least two finite pixels, got {values.size}"
        raise ValueError(msg)
    mean = float(values.mean())
    if mean == 0:
        msg = "contrast is undefined for an image of zero mean"
        raise ValueError(msg)
    return float(values.std() / mean)


def quiet_region(image, *, size: int = 40, qs_level: float | None = None, tolerance: float = 0.1):
    """Find a square of granulation (no pores, penumbra or faculae) in a continuum image.

    Parameters
    ----------
    image : (ny, nx) array_like
        Continuum intensity (any units). NaN pixels count as not quiet.
    size : int
        Side of the square in pixels; defaults to 40 (20 arcsec at HMI's scale). Limited to the image.
    qs_level : float, optional
        Quiet-Sun level in the units of ``image``; None estimates it
        (`~enhance.inference.pipeline.estimate_qs_level`).
    tolerance : float
        Pixels outside ``qs_level * (1 +- tolerance)``, and those within 3 pixels of them, are not quiet;
        defaults to 0.1 (granulation has an RMS contrast of 4-7 %).

    Returns
    -------
    tuple of slice
        ``np.s_[y0:y0+size, x0:x0+size]``: of the squares with the fewest non-quiet pixels, the one whose
        centre lies farthest from them.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.ones((60, 60)); image[:, :20] = 0.3  # an umbra on the left third
    >>> quiet_region(image, size=20)[1].start >= 20
    True
    """
    data = check_image(image)
    check_integer(size, name="size", minimum=2, unit=" pixels")
    tolerance = check_positive(tolerance, name="tolerance")
    size = int(min(size, *data.shape))
    if qs_level is None:
        qs_level = estimate_qs_level(data)
    qs_level = check_positive(qs_level, name="qs_level")
    with np.errstate(invalid="ignore"):
        active = ~(np.abs(data / qs_level - 1.0) <= tolerance)  # NaN counts as active
    active = ndimage.binary_dilation(active, iterations=3)
    counts = ndimage.uniform_filter(active.astype(np.float64), size=size, mode="constant") * size * size
    half = size // 2
    # uniform_filter centres its window on each pixel: keep the centres whose window lies inside the image.
    valid = counts[half : data.shape[0] - (size - 1 - half), half : data.shape[1] - (size - 1 - half)]
    distance = ndimage.distance_transform_edt(~active) if active.any() else np.ones(data.shape)
    distance = distance[half : data.shape[0] - (size - 1 - half), half : data.shape[1] - (size - 1 - half)]
    best = np.rint(valid) == np.rint(valid.min())
    y0, x0 = np.unravel_index(np.argmax(np.where(best, distance, -1.0)), valid.shape)
    return np.s_[int(y0) : int(y0) + size, int(x0) : int(x0) + size]


def scale_region(region, factor: int = 2):
    """The same patch of sky on a grid ``factor`` times finer: ``np.s_[a:b]`` becomes ``np.s_[f a:f b]``.

    Parameters
    ----------
    region : tuple of slice
        Rows and columns on the coarse grid, pixels.
    factor : int
        How many times finer the new grid is.

    Returns
    -------
    tuple of slice
        The same region on the finer grid.

    Examples
    --------
    >>> import numpy as np
    >>> scale_region(np.s_[10:50, 0:40])
    (slice(20, 100, None), slice(0, 80, None))
    """
    check_integer(factor, name="factor")
    scaled = []
    for item in region:
        if not isinstance(item, slice) or item.step not in (None, 1):
            msg = f"region must be a tuple of slices without step, got {region!r}"
            raise ValueError(msg)
        start = None if item.start is None else factor * item.start
        stop = None if item.stop is None else factor * item.stop
        scaled.append(slice(start, stop))
    return tuple(scaled)


def _finite_pair(image, reference):
    test = check_image(image)
    true = check_image(reference, name="reference")
    if test.shape != true.shape:
        msg = f"image and reference must have the same shape, got {test.shape} and {true.shape}"
        raise ValueError(msg)
    return test, true


def _data_range(true, data_range):
    if data_range is None:
        values = true[np.isfinite(true)]
        data_range = float(values.max() - values.min()) if values.size else 0.0
        if data_range == 0:
            msg = "reference is constant (or has no finite pixel); pass data_range explicitly"
            raise ValueError(msg)
        return data_range
    return check_positive(data_range, name="data_range")


def psnr(image, reference, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio of an image against a reference, in decibels.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image to judge, in the unit of ``reference``.
    reference : (ny, nx) array_like
        The truth (e.g. the degraded target of a simulation), same shape. Pixels that are NaN in either
        image are ignored.
    data_range : float, optional
        Peak-to-peak range of the data; None takes ``max - min`` of the reference (scikit-image would
        assume [-1, 1] for floats, wrong for I/Ic and gauss).

    Returns
    -------
    float
        :math:`10 \\log_{10}(R^2 / \\mathrm{MSE})`; ``inf`` for identical images.

    Examples
    --------
    >>> import numpy as np
    >>> reference = np.linspace(0, 1, 100).reshape(10, 10)
    >>> psnr(reference, reference)
    inf
    >>> round(psnr(reference + 0.1, reference), 6)  # MSE = 0.01, R = 1
    20.0
    """
    test, true = _finite_pair(image, reference)
    data_range = _data_range(true, data_range)
    both = np.isfinite(test) & np.isfinite(true)
    if not both.any():
        msg = "image and reference share no finite pixel"
        raise ValueError(msg)
    test, true = test[both].astype(np.float64), true[both].astype(np.float64)
    if np.array_equal(test, true):
        return float("inf")
    return float(peak_signal_noise_ratio(true, test, data_range=data_range))


def ssim(image, reference, *, data_range: float | None = None) -> float:
    """Mean structural similarity (SSIM) of an image and a reference (scikit-image, 7x7 windows).

    Parameters
    ----------
    image, reference : (ny, nx) array_like
        Finite images of the same shape, at least 7x7 pixels.
    data_range : float, optional
        Peak-to-peak range of the data, in their unit; None takes ``max - min`` of the reference.

    Returns
    -------
    float
        In [-1, 1]; 1 for identical images.

    References
    ----------
    Wang, Z., Bovik, A. C., Sheikh, H. R. & Simoncelli, E. P. 2004, IEEE Trans. Image Process., 13, 600.

    Examples
    --------
    >>> import numpy as np
    >>> reference = np.random.default_rng(0).uniform(size=(32, 32))
    >>> ssim(reference, reference)
    1.0
    """
    test, true = _finite_pair(image, reference)
    for name, array in (("image", test), ("reference", true)):
        if not np.all(np.isfinite(array)):
            msg = f"{name} must be finite for SSIM, got {int(np.count_nonzero(~np.isfinite(array)))} NaN pixels"
            raise ValueError(msg)
    if min(test.shape) < 7:
        msg = f"SSIM needs images of at least 7x7 pixels, got shape {test.shape}"
        raise ValueError(msg)
    data_range = _data_range(true, data_range)
    return float(structural_similarity(true.astype(np.float64), test.astype(np.float64), data_range=data_range))


def _pixel_area_cm2(pixel_scale, distance):
    side = check_positive(float(pixel_scale.to_value(u.rad)), name="pixel_scale") * distance.to_value(u.cm)
    return side**2


@u.quantity_input
def total_flux(image, pixel_scale: u.arcsec = HMI_PIXEL_SCALE, *, distance: u.m = 1 * u.AU) -> u.Quantity:
    """Net (signed) magnetic flux of a line-of-sight magnetogram, :math:`\\sum_i B_i\\, A`.

    Parameters
    ----------
    image : (ny, nx) array_like
        Line-of-sight field in gauss. NaN pixels are ignored.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel; defaults to 0.504 arcsec.
    distance : `~astropy.units.Quantity`
        Observer-Sun distance; defaults to 1 AU (``DSUN_OBS`` of an HMI header is more exact).

    Returns
    -------
    `~astropy.units.Quantity`
        Flux in maxwell.

    Notes
    -----
    The pixel area is :math:`A = (d\\,\\Delta\\theta)^2` in the plane of the sky, with no correction
    for foreshortening: this is the line-of-sight flux through the image plane.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> flux = total_flux(np.full((10, 10), 100.0), 1 * u.arcsec)  # 100 G over 100 arcsec^2
    >>> round(float(flux.to_value(u.Mx)) / 1e19, 3)
    5.26
    """
    data = check_image(image).astype(np.float64)
    area = _pixel_area_cm2(pixel_scale, distance)
    return float(np.nansum(data)) * area * u.Mx


@u.quantity_input
def unsigned_flux(image, pixel_scale: u.arcsec = HMI_PIXEL_SCALE, *, distance: u.m = 1 * u.AU) -> u.Quantity:
    r"""Unsigned magnetic flux of a line-of-sight magnetogram, :math:`\sum_i |B_i|\, A`.

    Parameters
    ----------
    image : (ny, nx) array_like
        Line-of-sight field in gauss. NaN pixels are ignored.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel; defaults to 0.504 arcsec.
    distance : `~astropy.units.Quantity`
        Observer-Sun distance; defaults to 1 AU (``DSUN_OBS`` of an HMI header is more exact).

    Returns
    -------
    `~astropy.units.Quantity`
        Flux in maxwell.

    Notes
    -----
    As for `total_flux`: the pixel area is :math:`A = (d\,\Delta\theta)^2` in the plane of the sky,
    with no correction for foreshortening.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> image = np.full((10, 10), 100.0); image[:5] = -100.0  # balanced: net flux 0
    >>> round(float(unsigned_flux(image, 1 * u.arcsec).to_value(u.Mx)) / 1e19, 3)
    5.26
    """
    data = check_image(image).astype(np.float64)
    area = _pixel_area_cm2(pixel_scale, distance)
    return float(np.nansum(np.abs(data))) * area * u.Mx


def density_scatter(image, output, *, bins: int = 200, limits=None):
    """Joint histogram of input and output pixel values (the paper's Fig. 9, left).

    Parameters
    ----------
    image : (ny, nx) array_like
        The input (HMI) image, any unit.
    output : (2 ny, 2 nx) or (ny, nx) array_like
        The enhanced image. On the x2 grid the input is first interpolated onto it (`bicubic_x2
        <enhance.analysis.baselines.bicubic_x2>`), so every output pixel is paired with the input at its centre.
    bins : int
        Number of bins per axis; defaults to 200.
    limits : (float, float), optional
        Range of both axes, in data units; defaults to the 0.1-99.9 percentile range of both images
        together.

    Returns
    -------
    counts : (bins, bins) `~numpy.ndarray`
        Pixel counts; ``counts[i, j]`` has input in bin ``i`` and output in bin ``j``.
    edges : `~numpy.ndarray`
        The ``bins + 1`` bin edges, shared by both axes.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(size=(20, 20))
    >>> counts, edges = density_scatter(image, image, bins=10)
    >>> int(np.trace(counts)) == int(counts.sum())  # identical images lie on the diagonal
    True
    """
    x = check_image(image).astype(np.float64)
    y = check_image(output, name="output").astype(np.float64)
    if y.shape == (2 * x.shape[0], 2 * x.shape[1]):
        finite = np.isfinite(x)
        x = bicubic_x2(fill_nonfinite(x, finite))
        x[on_output_grid(~finite)] = np.nan
    elif y.shape != x.shape:
        msg = f"output must have the input's shape {x.shape} or twice it, got {y.shape}"
        raise ValueError(msg)
    check_integer(bins, name="bins")
    both = np.isfinite(x) & np.isfinite(y)
    x, y = x[both], y[both]
    if limits is None:
        lo, hi = np.percentile(np.concatenate([x, y]), [0.1, 99.9])
    else:
        lo, hi = (float(v) for v in limits)
    if not hi > lo:
        msg = f"limits must be increasing, got ({lo}, {hi})"
        raise ValueError(msg)
    edges = np.linspace(lo, hi, int(bins) + 1)
    counts, _, _ = np.histogram2d(x, y, bins=(edges, edges))
    return counts, edges


def field_amplification(image, output, *, level: float = 1000.0, width: float = 100.0):
    """How much a x2 output strengthens fields of a given strength.

    The median of output / input over the pixels whose (bicubic-upsampled) input lies within
    ``level +- width`` in absolute value.

    Parameters
    ----------
    image : numpy.ndarray
        The input magnetogram, gauss, at the input scale.
    output : numpy.ndarray
        The x2 output, gauss, twice the shape of ``image``.
    level : float
        Field strength selected, gauss.
    width : float
        Half-width of the selected range of ``|B|``, gauss.

    Returns
    -------
    float or None
        The median ratio (dimensionless); None when fewer than 10 pixels qualify.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((8, 8), 1000.0)
    >>> round(field_amplification(image, np.full((16, 16), 1100.0)), 3)
    1.1
    """
    upsampled = bicubic_x2(image)
    sel = np.isfinite(upsampled) & np.isfinite(output) & (np.abs(np.abs(upsampled) - level) <= width)
    if np.count_nonzero(sel) < 10:
        return None
    return float(np.median(output[sel] / upsampled[sel]))


def temporal_flicker(enhanced, upsampled) -> float:
    """How much what a method adds to interpolation changes from frame to frame, relative to what it adds.

    Parameters
    ----------
    enhanced : (nt, ny, nx) array_like
        The method's output for each frame of a sequence (e.g. Enhance on the x2 grid), any unit.
    upsampled : (nt, ny, nx) array_like
        The same frames interpolated onto that grid (e.g. `~enhance.analysis.baselines.bicubic_x2`), in
        the same unit. Nothing is registered: the frames are compared pixel by pixel.

    Returns
    -------
    float
        The flicker :math:`F` (dimensionless, >= 0): 0 when every frame gets the same enhancement; NaN
        when the method adds nothing anywhere.

    Raises
    ------
    ValueError
        If the stacks differ in shape, are not 3-D, or hold fewer than two frames.

    Notes
    -----
    With the enhancement :math:`D_t = E_t - B_t` (output minus interpolated input) of frame :math:`t`,

    .. math:: F = \\sqrt{\\frac{\\langle (D_{t+1} - D_t)^2 \\rangle}{\\langle D_t^2 \\rangle}},

    the numerator averaged over the :math:`n_t - 1` pairs of consecutive frames and the pixels, the
    denominator over the :math:`n_t` frames and the pixels; a pixel that is not finite in any frame is
    left out. A static scene, enhanced alike in every frame, gives 0. An enhancement :math:`D + n_t` whose
    part :math:`n_t` is white noise of standard deviation :math:`s`, independent from frame to frame,
    gives :math:`F = \\sqrt{2} s / \\sqrt{\\langle D^2 \\rangle + s^2}`: :math:`\\sqrt 2` for frames
    enhanced independently of each other. The Sun's own evolution between frames changes :math:`D` too, so
    compare methods on the same sequence rather than read :math:`F` alone.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> interpolated = np.zeros((3, 8, 8))
    >>> temporal_flicker(interpolated + rng.normal(size=(8, 8)), interpolated)  # the same enhancement
    0.0
    """
    out = np.asarray(enhanced, dtype=np.float64)
    base = np.asarray(upsampled, dtype=np.float64)
    if out.shape != base.shape or out.ndim != 3:
        msg = f"enhanced and upsampled must be (nt, ny, nx) stacks of one shape, got {out.shape} and {base.shape}"
        raise ValueError(msg)
    if out.shape[0] < 2:
        msg = f"temporal flicker needs at least two frames, got {out.shape[0]}"
        raise ValueError(msg)
    added = out - base
    finite = np.all(np.isfinite(added), axis=0)
    added = added[:, finite]
    power = float(np.mean(added**2)) if added.size else 0.0
    if power == 0:
        return float("nan")
    return float(np.sqrt(np.mean(np.diff(added, axis=0) ** 2) / power))
