"""Numbers that describe solar images: contrast, power spectra, and comparisons with a reference.

Arrays in, numbers or arrays out.
"""

import astropy.units as u
import numpy as np
import scipy.fft

from ._validation import check_choice, check_image, check_positive

__all__ = ["contrast", "power_spectrum"]


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


@u.quantity_input
def power_spectrum(image, pixel_scale: u.arcsec, *, window: str | None = "hann"):
    """Azimuthally averaged spatial power spectrum in physical frequency.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, finite. Its mean is removed first.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel.
    window : {'hann', None}
        'hann' apodises the image with a 2-D Hann window (rescaled to keep the variance), so that
        non-periodic cut-outs do not leak edge power into high frequencies; None uses the image as is
        (right for periodic simulation boxes).

    Returns
    -------
    frequency : `~astropy.units.Quantity`
        Centres of the frequency annuli, in 1/arcsec, from the first non-zero frequency to Nyquist.
    power : `~numpy.ndarray`
        Mean power in each annulus, normalised as a power spectral density (image units squared times
        arcsec squared), so images of different pixel scales compare directly and the integral over the
        frequency plane is the variance.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> x = np.arange(128)
    >>> image = np.sin(2 * np.pi * x / 16)[None, :] * np.ones((128, 1))
    >>> freq, power = power_spectrum(image, 0.5 * u.arcsec, window=None)
    >>> float(freq[np.argmax(power)].to_value(1 / u.arcsec))  # 1 / (16 px * 0.5 arcsec)
    0.125
    """
    check_choice(window, ("hann", None), name="window")
    data = check_image(image, allow_nonfinite=False).astype(np.float64)
    dx = check_positive(float(pixel_scale.to_value(u.arcsec)), name="pixel_scale")
    ny, nx = data.shape
    data = data - data.mean()
    if window == "hann":
        taper = np.outer(np.hanning(ny), np.hanning(nx))
        data = data * taper / np.sqrt(np.mean(taper**2))
    psd = np.abs(scipy.fft.fft2(data)) ** 2 * dx**2 / (ny * nx)
    ky = scipy.fft.fftfreq(ny, d=dx)
    kx = scipy.fft.fftfreq(nx, d=dx)
    k = np.hypot(ky[:, None], kx[None, :])
    step = 1.0 / (min(ny, nx) * dx)  # annulus width: the coarser of the two frequency steps
    n_bins = min(ny, nx) // 2
    index = np.rint(k / step).astype(int)
    inside = (index >= 1) & (index <= n_bins)
    sums = np.bincount(index[inside], weights=psd[inside], minlength=n_bins + 1)
    counts = np.bincount(index[inside], minlength=n_bins + 1)
    valid = counts[1:] > 0
    frequency = np.arange(1, n_bins + 1)[valid] * step
    return frequency / u.arcsec, sums[1:][valid] / counts[1:][valid]
