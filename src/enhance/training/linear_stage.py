"""The linear stage of `~enhance.models.hybrid.WienerEnhanceNet`, in closed form from training pairs.

For white noise of standard deviation :math:`\\sigma` added to the input, the linear estimator of the
four x2 pixels of an input pixel from the ``taps x taps`` input pixels around it that has the least
mean square error on the training pairs is

.. math:: w(\\sigma) = (C + \\sigma^2 I)^{-1} c,

with :math:`C` the covariance of the noise-free input patches and :math:`c` their covariance with the
target pixels: the Wiener filter with the training scenes' own statistics and the exact sampling, not a
parametric prior. Each filter is constrained to sum to one, so a constant image comes back unchanged.
The statistics are accumulated over the 8 rotations and flips of every pair, so the filters are
symmetric under them.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..checks import check_integer

__all__ = ["PatchStatistics", "patch_statistics", "mmse_filters"]


class PatchStatistics:
    """Mean, covariance and cross-covariance of input patches and target pixels (see `patch_statistics`).

    Parameters
    ----------
    taps : int
        Patch size, input pixels.
    mean : (taps**2,) array
        Mean input patch.
    covariance : (taps**2, taps**2) array
        Covariance of the input patches.
    cross : (taps**2, 4) array
        Covariance of the input patches with the four target pixels of their centre.
    count : int
        Patches accumulated.

    Examples
    --------
    >>> stats = PatchStatistics(1, np.zeros(1), np.ones((1, 1)), np.ones((1, 4)), 10)
    >>> stats.covariance.shape, stats.count
    ((1, 1), 10)
    """

    def __init__(self, taps, mean, covariance, cross, count):
        self.taps, self.mean, self.covariance, self.cross, self.count = taps, mean, covariance, cross, count


def _dihedral(x, y):
    """The 8 rotations and flips of an input and its target, applied alike."""
    for turns in range(4):
        for flip in (False, True):
            a, b = np.rot90(x, turns), np.rot90(y, turns)
            yield (a.T, b.T) if flip else (a, b)


def patch_statistics(inputs, targets, *, taps: int = 21) -> PatchStatistics:
    """Accumulate the statistics of every ``taps x taps`` input patch and the 2x2 target pixels of its centre.

    Parameters
    ----------
    inputs : (n, ny, nx) array_like
        Noise-free degraded inputs (I/Ic or kG).
    targets : (n, 2 ny, 2 nx) array_like
        Their targets, same units.
    taps : int
        Odd patch size, at most ``min(ny, nx)``.

    Returns
    -------
    PatchStatistics
        Over all patches of all pairs and their 8 rotations and flips.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2, 8, 8)); y = np.repeat(np.repeat(x, 2, 1), 2, 2)
    >>> stats = patch_statistics(x, y, taps=3)
    >>> stats.covariance.shape, stats.cross.shape, stats.count
    ((9, 9), (9, 4), 576)
    """
    check_integer(taps, name="taps")
    inputs, targets = np.asarray(inputs, np.float64), np.asarray(targets, np.float64)
    if taps % 2 == 0 or taps > min(inputs.shape[1:]):
        msg = f"taps must be odd and at most the patch size {inputs.shape[1:]}, got {taps}"
        raise ValueError(msg)
    if targets.shape != (inputs.shape[0], 2 * inputs.shape[1], 2 * inputs.shape[2]):
        msg = f"targets must have shape (n, 2 ny, 2 nx) for inputs {inputs.shape}, got {targets.shape}"
        raise ValueError(msg)
    half, dims = taps // 2, taps * taps
    total, total_y = np.zeros(dims), np.zeros(4)
    product, cross, count = np.zeros((dims, dims)), np.zeros((dims, 4)), 0
    for x0, y0 in zip(inputs, targets, strict=True):
        for x, y in _dihedral(x0, y0):
            patches = sliding_window_view(x, (taps, taps)).reshape(-1, dims)
            ny, nx = x.shape[0] - 2 * half, x.shape[1] - 2 * half
            blocks = y.reshape(x.shape[0], 2, x.shape[1], 2).transpose(0, 2, 1, 3)
            blocks = blocks[half : half + ny, half : half + nx].reshape(-1, 4)
            product += patches.T @ patches
            cross += patches.T @ blocks
            total += patches.sum(axis=0)
            total_y += blocks.sum(axis=0)
            count += len(patches)
    mean, mean_y = total / count, total_y / count
    covariance = product / count - np.outer(mean, mean)
    return PatchStatistics(taps, mean, covariance, cross / count - np.outer(mean, mean_y), count)


def mmse_filters(stats: PatchStatistics, noise_levels) -> np.ndarray:
    """The least-squares linear filters at each noise level, each summing to one.

    Parameters
    ----------
    stats : PatchStatistics
        From `patch_statistics`.
    noise_levels : sequence of float
        Standard deviations of the input noise, in the units of the pairs.

    Returns
    -------
    (4 K, 1, taps, taps) ndarray
        float32 kernels, four per noise level (output phases ``(0, 0), (0, 1), (1, 0), (1, 1)``), in the
        layout of `~enhance.models.hybrid.WienerEnhanceNet`'s ``filters`` buffer.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2, 8, 8)); y = np.repeat(np.repeat(x, 2, 1), 2, 2)
    >>> w = mmse_filters(patch_statistics(x, y, taps=3), [1e-6, 10.0])
    >>> w.shape, np.round(w.sum(axis=(1, 2, 3)), 6).tolist(), round(float(w[0, 0, 1, 1]), 3)
    ((8, 1, 3, 3), [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 1.0)
    """
    dims, taps = stats.covariance.shape[0], stats.taps
    ones = np.ones((dims, 1))
    out = []
    for sigma in noise_levels:
        system = stats.covariance + float(sigma) ** 2 * np.eye(dims)
        solved = np.linalg.solve(system, np.concatenate([stats.cross, ones], axis=1))
        free, direction = solved[:, :4], solved[:, 4]
        # Lagrange multiplier of the constraint sum(w) = 1 (a constant image is kept).
        weights = free + direction[:, None] * ((1 - free.sum(axis=0)) / direction.sum())[None, :]
        out.append(weights.T.reshape(4, 1, taps, taps))
    return np.concatenate(out).astype(np.float32)
