"""The response to constant images in its piecewise-linear form: the same function as the 1x1 network it comes from
(float64, and PyTorch's `constant_response`), exact on its pieces, odd where the network is, safe across threads."""

import concurrent.futures

import numpy as np
import pytest
import torch

from enhance.runtime.constant_pieces import ConstantResponse, flat_weights, response_pieces, summed_state


def _direct(weights, values, level):
    """The 1x1 network evaluated on each value, float64: ``(n, phases)``."""
    w_value, w_level, bias = weights["conv_in"].T
    hidden = np.maximum(np.outer(values, w_value) + w_level * level + bias, 0.0)
    for w0, b0, w1, b1 in weights["blocks"]:
        hidden = hidden + np.maximum(hidden @ w0.T + b0, 0.0) @ w1.T + b1
    w_out, b_out = weights["conv_out"]
    return hidden @ w_out.T + b_out


@pytest.fixture(scope="module")
def net(random_wiener):
    return random_wiener(5, depth=2, width=16, weight_std=0.3, bias_std=0.3, exact_constants=True)


@pytest.fixture(scope="module")
def weights(net):
    return flat_weights({k: v.numpy() for k, v in net.state_dict().items()}, net.depth)


@pytest.mark.parametrize("level", [-1.0, 0.0, 2.5])
def test_the_pieces_are_the_network_to_float64_rounding_and_continuous(weights, level):
    edges, slopes, intercepts = response_pieces(weights, level, -3.0, 4.0)
    assert edges[0] == -3.0
    assert edges[-1] == 4.0
    assert np.all(np.diff(edges) > 0)
    assert len(slopes) > 5  # a ReLU network of one variable with kinks in the range
    values = np.random.default_rng(0).uniform(-3.0, 4.0, 5000)
    piece = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(slopes) - 1)
    found = slopes[piece] * values[:, None] + intercepts[piece]
    expected = _direct(weights, values, level)
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    left = slopes[:-1] * edges[1:-1, None] + intercepts[:-1]  # both neighbours agree at every edge
    right = slopes[1:] * edges[1:-1, None] + intercepts[1:]
    np.testing.assert_allclose(left, right, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_the_response_equals_pytorchs_and_the_summed_state_gives_the_same_pieces(net, weights):
    values = torch.linspace(-2.0, 3.0, 1001, dtype=torch.float32).reshape(1, 1, 7, 143)
    level = 0.7
    with torch.no_grad():
        expected = net.constant_response(values, torch.full_like(values, level))[0].numpy()  # (4, 7, 143)
    found = ConstantResponse(weights, level)(values[0, 0].numpy())  # (7, 143, 4)
    np.testing.assert_allclose(found, expected.transpose(1, 2, 0), rtol=0, atol=2e-6 * np.abs(expected).max())
    summed = flat_weights(summed_state({k: v.numpy() for k, v in net.state_dict().items()}, net.depth), net.depth)
    for a, b in zip(response_pieces(summed, level, -2, 3), response_pieces(weights, level, -2, 3), strict=True):
        np.testing.assert_array_equal(a, b)


def test_odd_and_phase_mean_and_a_wider_range_later(weights):
    values = np.random.default_rng(1).uniform(-1.0, 1.0, (30, 40)).astype(np.float32)
    odd = ConstantResponse(weights, 0.0, odd=True)
    np.testing.assert_array_equal(odd(-values), -odd(values))
    expected = _direct(weights, values.ravel().astype(np.float64), 0.0)
    expected = 0.5 * (expected - _direct(weights, -values.ravel().astype(np.float64), 0.0))
    np.testing.assert_allclose(odd(values).reshape(-1, 4), expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    plain = ConstantResponse(weights, 0.0)
    mean = ConstantResponse(weights, 0.0, phase_mean=True)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(mean(values)[..., 0], plain(values).mean(axis=-1), rtol=0, atol=1e-6 * scale)
    wide = np.array([-8.0, 9.5], np.float32)  # beyond the range traced first: traced again, wider
    far = _direct(weights, wide.astype(np.float64), 0.0)
    np.testing.assert_allclose(plain(wide), far, rtol=0, atol=1e-6 * np.abs(far).max())
    assert plain.table.lower <= -8.0
    assert plain.table.upper >= 9.5


def test_threads_that_widen_the_table_at_once_each_get_exact_values(weights):
    response = ConstantResponse(weights, 0.3)
    batches = [np.random.default_rng(seed).uniform(-s, s, (64, 64)).astype(np.float32) for seed, s in
               enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 16.0] * 4)]  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(response, batches))
    for values, found in zip(batches, results, strict=True):
        expected = _direct(weights, values.ravel().astype(np.float64), 0.3)
        np.testing.assert_allclose(found.reshape(-1, 4), expected, rtol=0, atol=1e-6 * np.abs(expected).max())


def test_non_finite_values_give_nan_and_leave_the_others_exact(weights):
    response = ConstantResponse(weights, 0.0)
    values = np.array([[0.5, np.nan], [np.inf, -1.0]], np.float32)
    found = response(values)
    assert np.isnan(found[0, 1]).all()
    assert not np.isfinite(found[1, 0]).all()
    expected = _direct(weights, np.array([0.5, -1.0]), 0.0)
    np.testing.assert_allclose(found[[0, 1], [0, 1]], expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    assert np.isnan(response(np.full((2, 3), np.nan, np.float32))).all()


def test_an_odd_response_first_seen_on_zeros_stays_odd_and_exact_on_later_values(weights):
    # A first image of zeros gives a one-point range; an odd response must still hold -values later.
    response = ConstantResponse(weights, 0.0, odd=True)
    response(np.zeros((4, 4), np.float32))
    values = np.linspace(0.0, 1.0, 101, dtype=np.float32)  # within the first range, but not their negatives
    found = response(values)
    expected = _direct(weights, values.astype(np.float64), 0.0) - _direct(weights, -values.astype(np.float64), 0.0)
    np.testing.assert_allclose(found, expected / 2, rtol=0, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_array_equal(response(-values), -found)


@pytest.mark.parametrize("far", [1e3, 1e6, 1e8])
def test_one_far_value_widens_the_table_without_spoiling_ordinary_values(weights, far):
    response = ConstantResponse(weights, 0.4)
    response(np.array([-far, far], np.float32))
    values = np.random.default_rng(2).uniform(-1.0, 2.0, 4000).astype(np.float32)
    expected = _direct(weights, values.astype(np.float64), 0.4)
    np.testing.assert_allclose(response(values), expected, rtol=0, atol=1e-6 * np.abs(expected).max())
