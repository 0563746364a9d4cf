"""The noise level of an HMI image, from the corners of its spectrum where the telescope passes no signal.

HMI's 14 cm aperture cuts off spatial frequencies above :math:`D/\\lambda` = 1.10 cycles per arcsec, while
its 0.504 arcsec pixels sample up to 0.99 along each axis and 1.40 along the diagonals. Every frequency
beyond 1.15 cycles per arcsec, and each of its aliases, then holds only the noise (and the faint far
wing of the PSF model), so the power there measures white noise without confusing it with granulation.
"""

import astropy.units as u
import numpy as np

from ..checks import check_image, check_positive
from ..constants import HMI_PIXEL_SCALE

__all__ = ["NOISE_BAND_START", "estimate_noise", "noise_is_white"]

#: Lowest spatial frequency of the noise band: just above HMI's diffraction cut-off, 1.10 cycles per arcsec.
NOISE_BAND_START = 1.15 / u.arcsec


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
        :math:`\\sigma`, in the image's units.

    Notes
    -----
    The image, less its mean, is Hann-windowed; the power of white noise of variance :math:`\\sigma^2`
    is then :math:`\\sigma^2 \\sum w^2` at every frequency, exponentially distributed, so the median
    power over the band divided by :math:`\\ln 2 \\sum w^2` estimates :math:`\\sigma^2`. The median keeps
    a few bright frequencies (a periodic artefact, a sharp edge) from raising the estimate.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> bool(abs(estimate_noise(rng.normal(5.0, 2.0, (256, 256))) - 2.0) < 0.1)  # within its 3 % scatter
    True
    """
    data = check_image(image, allow_nonfinite=False).astype(np.float64)
    if min(data.shape) < 16:
        msg = f"the noise level needs an image of at least 16 x 16 pixels, got shape {data.shape}"
        raise ValueError(msg)
    dx = check_positive(float(pixel_scale.to_value(u.arcsec)), name="pixel_scale")
    start = float(band_start.to_value(1 / u.arcsec))
    # A window that is zero only outside the image: every pixel counts.
    window = np.outer(np.hanning(data.shape[0] + 2)[1:-1], np.hanning(data.shape[1] + 2)[1:-1])
    power = np.abs(np.fft.fft2((data - data.mean()) * window)) ** 2 / np.sum(window**2)
    frequency = np.hypot(np.fft.fftfreq(data.shape[0], dx)[:, None], np.fft.fftfreq(data.shape[1], dx)[None, :])
    band = frequency >= start
    if band_stop is not None:
        band &= frequency < float(band_stop.to_value(1 / u.arcsec))
    if band.sum() < 16:
        msg = (f"pixels of {dx:g} arcsec sample no frequency above {start:g} cycles per arcsec: "
               "the noise level cannot be measured on this grid")  # fmt: skip
        raise ValueError(msg)
    return float(np.sqrt(np.median(power[band]) / np.log(2)))


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
    split = 1.27 / u.arcsec
    inner = estimate_noise(image, pixel_scale, band_stop=split)
    outer = estimate_noise(image, pixel_scale, band_start=split)
    return bool(inner <= ratio * outer)
