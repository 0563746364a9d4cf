"""Power spectra of solar images, and the white noise that has an image's small-scale power.

Arrays in, numbers or arrays out. `power_spectrum` is the azimuthally averaged spectral density in physical
frequency; `white_noise_power` and `white_noise_level` relate it to white noise per pixel (the noise level
of an HMI image, the small-scale power a deconvolution adds).
"""

import astropy.units as u
import numpy as np
import scipy.fft

from ..checks import check_choice, check_image, check_positive

__all__ = ["power_spectrum", "white_noise_power", "white_noise_level"]


@u.quantity_input
def power_spectrum(image, pixel_scale: u.arcsec, *, window: str | None = "hann"):
    """Azimuthally averaged spatial power spectrum in physical frequency.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, finite, any unit (the power is in that unit squared). Its mean is removed first.
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


@u.quantity_input
def white_noise_power(sigma: float, pixel_scale: u.arcsec) -> float:
    """Level of the flat power spectrum of white noise, in the normalisation of `power_spectrum`.

    Parameters
    ----------
    sigma : float
        Standard deviation of the noise per pixel, in image units.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel.

    Returns
    -------
    float
        :math:`\\sigma^2 \\Delta x^2`, in image units squared times arcsec squared.

    Examples
    --------
    >>> import astropy.units as u
    >>> round(white_noise_power(10.0, 0.5 * u.arcsec), 6)
    25.0
    """
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        msg = f"sigma must be a finite standard deviation >= 0, got {sigma!r}"
        raise ValueError(msg)
    dx = check_positive(float(pixel_scale.to_value(u.arcsec)), name="pixel_scale")
    return sigma**2 * dx**2


@u.quantity_input
def white_noise_level(image, pixel_scale: u.arcsec, *, band=None, window: str | None = "hann") -> float:
    """Standard deviation of the white noise that has the image's power in a band of small scales.

    Parameters
    ----------
    image : (ny, nx) array_like
        The image, finite, any unit (the result is in that unit).
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel.
    band : `~astropy.units.Quantity`, optional
        ``(low, high)`` spatial frequencies (1/arcsec) to average the power over; defaults to the outer
        40 % of the grid, 0.6 to 1 times its Nyquist frequency :math:`1/(2\\Delta x)`.
    window : {'hann', None}
        As for `power_spectrum`.

    Returns
    -------
    float
        :math:`\\sigma = \\sqrt{\\langle P \\rangle_\\mathrm{band}} / \\Delta x`, in image units: the
        per-pixel standard deviation of white noise on this grid with the same power.

    Notes
    -----
    For an HMI image the outer band holds little signal (the PSF removes it), so this is an upper bound
    of the noise. For a deconvolved image it measures the small-scale power the method added: the
    paper's Fig. 9 finds that RL adds structure at a level of ~80 G where the input noise is ~10 G.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> noise = np.random.default_rng(0).normal(0.0, 5.0, (256, 256))
    >>> round(white_noise_level(noise, 0.5 * u.arcsec), 1)
    5.0
    """
    dx = check_positive(float(pixel_scale.to_value(u.arcsec)), name="pixel_scale")
    nyquist = 0.5 / dx
    if band is None:
        low, high = 0.6 * nyquist, nyquist
    else:
        if not isinstance(band, u.Quantity) or band.shape != (2,):
            msg = f"band must be a Quantity of two frequencies (1/arcsec), got {band!r}"
            raise TypeError(msg)
        low, high = (float(v) for v in band.to_value(1 / u.arcsec))
        if not 0 <= low < high:
            msg = f"band must be two increasing frequencies >= 0, got {band!r}"
            raise ValueError(msg)
    frequency, power = power_spectrum(image, pixel_scale, window=window)
    f = frequency.to_value(1 / u.arcsec)
    inside = (f >= low * (1 - 1e-9)) & (f <= high * (1 + 1e-9))
    if not inside.any():
        msg = f"band ({low:.3g}, {high:.3g}) 1/arcsec holds no frequency of an image of shape {np.shape(image)}"
        raise ValueError(msg)
    return float(np.sqrt(np.mean(power[inside])) / dx)
