"""The x2 output grid: each input pixel onto its 2 x 2 block."""

import numpy as np
import pytest

from enhance.grid import on_output_grid


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4), (1, 2, 1, 1)])
def test_each_pixel_fills_its_block(shape):
    array = np.random.default_rng(0).normal(size=shape)
    out = on_output_grid(array)
    assert out.shape == (*shape[:-2], 2 * shape[-2], 2 * shape[-1])
    np.testing.assert_array_equal(out, np.kron(array, np.ones((2, 2))))
    for a in (0, 1):
        for b in (0, 1):  # every phase of the output grid is the input itself
            np.testing.assert_array_equal(out[..., a::2, b::2], array)


def test_keeps_the_type_and_owns_its_memory():
    mask = np.zeros((2, 2), bool)
    mask[1, 0] = True
    out = on_output_grid(mask)
    assert out.dtype == bool
    assert out.sum() == 4
    assert out[2:, :2].all()
    out[0, 0] = True  # a new array, writable, not a view of the input
    assert not mask[0, 0]


def test_block_mean_inverts_it():
    array = np.arange(12.0).reshape(3, 4)
    out = on_output_grid(array)
    np.testing.assert_array_equal(out.reshape(3, 2, 4, 2).mean(axis=(1, 3)), array)


def test_refuses_fewer_than_two_dimensions():
    with pytest.raises(ValueError, match="at least two dimensions"):
        on_output_grid(np.ones(4))
