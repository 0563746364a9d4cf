"""The input grid and the x2 output grid: which output pixels each input pixel covers.

The networks give each input pixel a 2 x 2 block of output pixels (`~enhance.constants.TARGET_PIXEL_SCALE`,
half of HMI's pixel): a mask or a per-pixel value of the input (missing pixels, a noise map, a share of the
sky) carries over to the output grid by copying each pixel onto its block.
"""

import numpy as np

__all__ = ["on_output_grid"]


def on_output_grid(array):
    """Each pixel of ``array`` copied onto its 2 x 2 block of the x2 grid, along the last two axes.

    Parameters
    ----------
    array : (..., ny, nx) array_like
        Values or a mask on the input grid.

    Returns
    -------
    (..., 2 ny, 2 nx) `~numpy.ndarray`
        A new array of the same type: ``out[..., 2 i + a, 2 j + b] = array[..., i, j]`` for ``a, b`` in 0, 1.

    Examples
    --------
    >>> on_output_grid(np.array([[1, 2], [3, 4]]))
    array([[1, 1, 2, 2],
           [1, 1, 2, 2],
           [3, 3, 4, 4],
           [3, 3, 4, 4]])
    """
    array = np.asarray(array)
    if array.ndim < 2:
        msg = f"array must have at least two dimensions (rows, columns), got shape {array.shape}"
        raise ValueError(msg)
    *lead, ny, nx = array.shape
    blocks = np.broadcast_to(array[..., :, None, :, None], (*lead, ny, 2, nx, 2))
    return blocks.reshape(*lead, 2 * ny, 2 * nx)
