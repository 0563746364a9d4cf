"""Convolution on padded periodic grids: the FFT helpers the observation model and its inverses share."""

import numpy as np
import scipy  # scipy.fft loads when first used

__all__ = ["padded_shape", "transfer_function"]


def padded_shape(shape, half):
    """Grid holding the image plus at least ``half`` pixels of padding per side, with a fast FFT length.

    Parameters
    ----------
    shape : tuple of int
        The image's shape, pixels.
    half : tuple of int
        Padding wanted on each side of each axis, pixels (a kernel's half-width).

    Returns
    -------
    tuple of int
        The padded shape, each axis a length that `scipy.fft` transforms fast.

    Examples
    --------
    >>> padded_shape((100, 100), (6, 6))
    (120, 120)
    """
    return tuple(scipy.fft.next_fast_len(n + 2 * h, real=True) for n, h in zip(shape, half, strict=True))


def transfer_function(kernel, shape, dtype):
    """rfft2 of a centred odd-sized kernel folded onto a periodic grid of ``shape``.

    Parameters
    ----------
    kernel : numpy.ndarray
        Odd-sized kernel, centred, e.g. a PSF of unit sum.
    shape : tuple of int
        The periodic grid, pixels; at least as large as the kernel.
    dtype : numpy.dtype
        Float type of the computation.

    Returns
    -------
    numpy.ndarray
        Complex array of shape ``(shape[0], shape[1] // 2 + 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> otf = transfer_function(np.full((3, 3), 1 / 9), (8, 8), np.float64)
    >>> otf.shape, round(float(otf[0, 0].real), 6)
    ((8, 5), 1.0)
    """
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    folded = np.zeros(shape, dtype=dtype)
    rows = np.mod(np.arange(-ky, ky + 1), shape[0])
    cols = np.mod(np.arange(-kx, kx + 1), shape[1])
    np.add.at(folded, (rows[:, None], cols[None, :]), kernel.astype(dtype))
    return scipy.fft.rfft2(folded)
