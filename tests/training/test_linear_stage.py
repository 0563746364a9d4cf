"""The closed-form linear stage: the Wiener formula for a white signal, exact recovery of a linear up-sampling
without noise, phases in the network's order, and statistics symmetric under the 8 rotations and flips."""

import numpy as np
import pytest

from enhance.training.linear_stage import PatchStatistics, mmse_filters, patch_statistics


def _white_statistics(taps, signal):
    """Exact statistics of white input patches of variance ``signal`` whose four targets are the centre pixel."""
    dims = taps * taps
    centre = np.zeros((dims, 1))
    centre[dims // 2] = signal
    return PatchStatistics(taps, np.zeros(dims), signal * np.eye(dims), np.repeat(centre, 4, axis=1), 1000)


@pytest.mark.parametrize("sigma", [0.0, 0.5, 1.0, 3.0])
def test_a_white_signal_gives_the_wiener_gain_plus_the_constraints_mean(sigma):
    """C = s^2 I, c = s^2 e: w = s^2 / (s^2 + sigma^2) e, and the sum-to-one constraint spreads the missing gain
    sigma^2 / (s^2 + sigma^2) evenly over the taps."""
    taps, signal = 3, 2.0
    filters = mmse_filters(_white_statistics(taps, signal), [sigma])
    gain = signal / (signal + sigma**2)
    expected = np.full((taps, taps), (1 - gain) / taps**2)
    expected[1, 1] += gain
    assert filters.shape == (4, 1, taps, taps)
    assert filters.dtype == np.float32
    for phase in range(4):
        np.testing.assert_allclose(filters[phase, 0], expected, atol=1e-7)


def test_at_very_high_noise_the_filter_is_the_mean_of_the_patch():
    filters = mmse_filters(_white_statistics(5, 1.0), [1e4])
    np.testing.assert_allclose(filters, 1 / 25, atol=1e-6)


def _up_rows(x):
    """Linear x2 along axis 1: output row 2i (at input row i - 1/4) and 2i + 1 (at i + 1/4), edges replicated."""
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0)), mode="edge")
    even = 0.75 * x + 0.25 * padded[:, :-2]
    odd = 0.75 * x + 0.25 * padded[:, 2:]
    return np.stack([even, odd], axis=2).reshape(x.shape[0], 2 * x.shape[1], x.shape[2])


def _bilinear_x2(x):
    """Targets of a linear x2 up-sampling, separable in rows and columns."""
    return _up_rows(_up_rows(x).transpose(0, 2, 1)).transpose(0, 2, 1)


def test_without_noise_a_linear_up_sampling_is_recovered_exactly_in_the_networks_phase_order():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(3, 20, 20))
    stats = patch_statistics(inputs, _bilinear_x2(inputs), taps=3)
    filters = mmse_filters(stats, [1e-6])
    before, after = np.array([0.25, 0.75, 0.0]), np.array([0.0, 0.75, 0.25])
    expected = [np.outer(before, before), np.outer(before, after), np.outer(after, before), np.outer(after, after)]
    for phase, kernel in enumerate(expected):  # (0, 0), (0, 1), (1, 0), (1, 1)
        np.testing.assert_allclose(filters[phase, 0], kernel, atol=1e-5)


def test_noise_shrinks_the_centre_tap_monotonically_and_every_filter_sums_to_one():
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(2, 16, 16))
    levels = [0.01, 0.1, 1.0, 10.0]
    filters = mmse_filters(patch_statistics(inputs, _bilinear_x2(inputs), taps=5), levels)
    assert filters.shape == (4 * len(levels), 1, 5, 5)
    np.testing.assert_allclose(filters.sum(axis=(1, 2, 3)), 1.0, atol=1e-5)
    centre = filters[::4, 0, 2, 2]  # phase (0, 0) at each level
    assert np.all(np.diff(centre) < 0)


def test_statistics_of_white_noise_are_diagonal_and_count_every_patch_of_every_symmetry():
    rng = np.random.default_rng(2)
    inputs = rng.normal(0.0, 2.0, size=(4, 40, 40))
    stats = patch_statistics(inputs, np.kron(inputs, np.ones((1, 2, 2))), taps=3)
    assert stats.count == 4 * 8 * 38 * 38
    np.testing.assert_allclose(stats.mean, 0.0, atol=0.05)
    np.testing.assert_allclose(stats.covariance, 4.0 * np.eye(9), atol=0.15)
    centre = np.zeros((9, 4))
    centre[4] = 4.0  # a replicating target: covariance with the centre pixel only
    np.testing.assert_allclose(stats.cross, centre, atol=0.15)


def test_statistics_are_exactly_symmetric_under_rotations_and_flips():
    rng = np.random.default_rng(3)
    inputs = rng.random((2, 11, 13))
    stats = patch_statistics(inputs, rng.random((2, 22, 26)), taps=5)
    index = np.arange(25).reshape(5, 5)
    for moved in (np.rot90(index), index.T, index[::-1]):
        order = moved.ravel()
        np.testing.assert_allclose(stats.covariance[np.ix_(order, order)], stats.covariance, atol=1e-12)
        np.testing.assert_allclose(stats.mean[order], stats.mean, atol=1e-12)
    np.testing.assert_allclose(stats.covariance, stats.covariance.T, atol=1e-12)


@pytest.mark.parametrize(
    ("taps", "targets_shape", "words"),
    [(4, (1, 16, 16), "taps must be odd"), (9, (1, 16, 16), "taps must be odd and at most"),
     (3, (1, 16, 15), "targets must have shape"), (0, (1, 16, 16), "taps must be a positive integer")],
)  # fmt: skip
def test_bad_sizes_are_refused(taps, targets_shape, words):
    with pytest.raises(ValueError, match=words):
        patch_statistics(np.zeros((1, 8, 8)), np.zeros(targets_shape), taps=taps)
