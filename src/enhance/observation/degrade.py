"""The observation model: from a high-resolution scene to an HMI-like image and the network's target.

Pure array functions. The model is the paper's equation (1), :math:`I = D[P * O] + N`: convolution
with a PSF, area-weighted resampling to a coarser grid, and additive Gaussian noise.
"""

import functools

import astropy.units as u
import numpy as np
import scipy  # scipy.fft loads when first used

from ..checks import check_choice, check_image, check_positive
from ..constants import HMI_PIXEL_SCALE
from .psf import DEFAULT_RADIUS, psf_kernel

__all__ = ["HMI_PIXEL_SCALE", "convolve", "bin_area", "degrade"]

#: Pixel scale of HMI images; the network's output grid has half of it.


def convolve(image, kernel, *, boundary="wrap"):
    """Convolve an image with a centred kernel by FFT.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, any unit; the result is in the same unit.
    kernel : (ky, kx) array_like
        The kernel (dimensionless, usually of unit sum), odd-sized and centred on its middle pixel. It may be
        larger than the image.
    boundary : {'wrap', 'reflect'}
        'wrap' treats the image as periodic (simulation boxes, generated scenes); 'reflect' mirrors it
        at its edges.

    Returns
    -------
    `~numpy.ndarray`
        The convolved image, same shape as ``image``, float64.

    Examples
    --------
    >>> import numpy as np
    >>> delta = np.zeros((5, 5)); delta[2, 2] = 1
    >>> kernel = np.arange(9.0).reshape(3, 3)
    >>> bool(np.allclose(convolve(delta, kernel)[1:4, 1:4], kernel))
    True
    """
    check_choice(boundary, ("wrap", "reflect"), name="boundary")
    image = check_image(image, allow_nonfinite=False).astype(np.float64)
    kernel = check_image(kernel, name="kernel", allow_nonfinite=False).astype(np.float64)
    if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        msg = f"kernel must have odd sizes so that it has a centre pixel, got shape {kernel.shape}"
        raise ValueError(msg)
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    if boundary == "reflect":
        py, px = min(ky, image.shape[0] - 1), min(kx, image.shape[1] - 1)
        padded = np.pad(image, ((py, py), (px, px)), mode="symmetric")
        return convolve(padded, kernel, boundary="wrap")[py : py + image.shape[0], px : px + image.shape[1]]

    ny, nx = image.shape
    # Fold the kernel onto the periodic grid: offset (dy, dx) lands on (dy mod ny, dx mod nx).
    wrapped = np.zeros((ny, nx))
    rows = np.mod(np.arange(-ky, ky + 1), ny)
    cols = np.mod(np.arange(-kx, kx + 1), nx)
    np.add.at(wrapped, (rows[:, None], cols[None, :]), kernel)
    spectrum = scipy.fft.rfft2(image) * scipy.fft.rfft2(wrapped)
    return scipy.fft.irfft2(spectrum, s=(ny, nx))


def _area_matrix(n_in, factor):
    """(n_out, n_in) matrix averaging unit input pixels into output pixels ``factor`` wide."""
    n_out = int(np.floor(n_in / factor + 1e-9))
    lo = np.arange(n_out)[:, None] * factor
    hi = lo + factor
    left = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, left + 1) - np.maximum(lo, left), 0.0, None)
    return overlap / factor


def bin_area(image, factor):
    """Resample an image onto a coarser grid by exact pixel-area averaging.

    Output pixel ``(i, j)`` is the mean of the input over the square
    ``[i f, (i+1) f) x [j f, (j+1) f)`` (in input pixels), with partly covered input pixels
    weighted by the covered area. Input pixels beyond the last whole output pixel are dropped.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, any unit; the result is in the same unit (an area average).
    factor : float
        Output pixel size in input pixels, >= 1 (need not be an integer).

    Returns
    -------
    `~numpy.ndarray`
        Array of shape ``(floor(ny / factor), floor(nx / factor))``.

    Examples
    --------
    >>> import numpy as np
    >>> bin_area(np.arange(16.0).reshape(4, 4), 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    image = check_image(image, allow_nonfinite=False).astype(np.float64)
    factor = check_positive(factor, name="factor")
    if factor < 1:
        msg = f"factor must be >= 1 (binning to a coarser grid), got {factor}"
        raise ValueError(msg)
    if min(image.shape) < factor:
        msg = f"image of shape {image.shape} is smaller than one output pixel ({factor:.3f} input pixels)"
        raise ValueError(msg)
    rows = _area_matrix(image.shape[0], factor)
    cols = _area_matrix(image.shape[1], factor)
    return rows @ image @ cols.T


@functools.lru_cache(maxsize=8)
def _cached_kernel(scale, kind, radius, options):
    """`psf_kernel` for plain-float arguments, cached: building datasets degrades many frames alike."""
    options = dict(options)
    if "diameter" in options:
        options["diameter"] = options["diameter"] * u.m
    kernel = psf_kernel(scale * u.arcsec, kind=kind, radius=radius * u.arcsec, **options)
    kernel.flags.writeable = False
    return kernel


@u.quantity_input
def degrade(
    hires,
    pixel_scale: u.arcsec,
    *,
    input_scale: u.arcsec = HMI_PIXEL_SCALE,
    radius: u.arcsec = DEFAULT_RADIUS,
    hmi_params=None,
    target_diameter: u.m = 0.28 * u.m,
    noise: float = 0.0,
    rng=None,
    boundary: str = "wrap",
):
    """Turn a high-resolution scene into an HMI-like image and the network's target.

    Parameters
    ----------
    hires : (ny, nx) array_like
        The scene (continuum in I/Ic, or Bz in gauss or kG), finite.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel of ``hires`` (0.0662 arcsec for MURaM); must be finer than the
        target grid.
    input_scale : `~astropy.units.Quantity`
        Pixel scale of the HMI-like image; defaults to 0.504 arcsec. The target has half of it.
    radius : `~astropy.units.Quantity`
        Half-width of the PSF kernels; defaults to `~enhance.observation.psf.DEFAULT_RADIUS`, 4.37 arcsec (see
        `~enhance.observation.psf.psf_kernel`).
    hmi_params : dict, optional
        ``w``, ``W``, ``epsilon``, ``k`` of the HMI PSF; defaults to `~enhance.observation.psf.ENHANCE_2018`.
    target_diameter : `~astropy.units.Quantity`
        Aperture of the ideal telescope whose Airy pattern blurs the target; defaults to 0.28 m.
    noise : float
        Standard deviation of the Gaussian noise added to the HMI-like image, in the units of ``hires``.
    rng : `numpy.random.Generator` or int, optional
        Source of the noise.
    boundary : {'wrap', 'reflect'}
        How the convolution treats the edges (see `convolve`).

    Returns
    -------
    observed : `~numpy.ndarray`
        The HMI-like image, shape ``(m, n) = floor(hires.shape * pixel_scale / input_scale)``.
    target : `~numpy.ndarray`
        The target at ``input_scale / 2``, shape ``(2m, 2n)``. Input pixel ``(i, j)`` covers exactly
        the same area of the sky as target pixels ``2i..2i+1, 2j..2j+1``.

    Notes
    -----
    .. math:: I = D_{0.504''}[P_\\mathrm{HMI} * O] + N, \\qquad T = D_{0.252''}[P_\\mathrm{Airy} * O],

    where :math:`D_s` averages over pixel areas of size :math:`s` (`bin_area`) and both grids start at
    the scene's first pixel edge.

    References
    ----------
    Díaz Baso, C. J. & Asensio Ramos, A. 2018, A&A, 614, A5, Eq. (1) and Sect. 3.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> observed, target = degrade(np.ones((200, 200)), 0.0662 * u.arcsec)
    >>> observed.shape, target.shape, bool(np.allclose(observed, 1))
    ((26, 26), (52, 52), True)
    """
    scene = check_image(hires, name="hires", allow_nonfinite=False).astype(np.float64)
    scale = check_positive(float(pixel_scale.to_value(u.arcsec)), name="pixel_scale")
    coarse = check_positive(float(input_scale.to_value(u.arcsec)), name="input_scale")
    noise = float(noise)
    if not np.isfinite(noise) or noise < 0:
        msg = f"noise must be a standard deviation >= 0, got {noise!r}"
        raise ValueError(msg)
    if scale > coarse / 2:
        msg = f"pixel_scale must be finer than the target grid ({coarse / 2} arcsec), got {scale} arcsec"
        raise ValueError(msg)
    params = dict(hmi_params) if hmi_params is not None else {}

    radius_arcsec = float(radius.to_value(u.arcsec))
    hmi_kernel = _cached_kernel(scale, "hmi", radius_arcsec, tuple(sorted(params.items())))
    airy_kernel = _cached_kernel(scale, "airy", radius_arcsec, (("diameter", float(target_diameter.to_value(u.m))),))
    observed = bin_area(convolve(scene, hmi_kernel, boundary=boundary), coarse / scale)
    target = bin_area(convolve(scene, airy_kernel, boundary=boundary), coarse / 2 / scale)
    # Integer division of the same extent can give the fine grid one extra pixel: keep whole pairs only.
    target = target[: 2 * observed.shape[0], : 2 * observed.shape[1]]
    if noise > 0:
        observed = observed + np.random.default_rng(rng).normal(0.0, noise, observed.shape)
    return observed, target
