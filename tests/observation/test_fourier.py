"""The FFT helpers: padded grids of fast lengths, and the transfer function of a kernel on a periodic grid."""

import numpy as np
import pytest
import scipy.fft

from enhance.observation.fourier import padded_shape, transfer_function


@pytest.mark.parametrize(("shape", "half"), [((100, 100), (6, 6)), ((37, 250), (10, 0)), ((1, 1), (0, 0))])
def test_padded_shape_is_the_smallest_fast_length_holding_the_padding(shape, half):
    padded = padded_shape(shape, half)
    for n, h, m in zip(shape, half, padded, strict=True):
        assert m >= n + 2 * h
        assert scipy.fft.next_fast_len(m, real=True) == m
        assert all(scipy.fft.next_fast_len(k, real=True) != k for k in range(n + 2 * h, m))  # none smaller


def test_a_delta_kernel_has_a_flat_unit_transfer_function():
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    otf = transfer_function(delta, (16, 12), np.float64)
    assert otf.shape == (16, 7)
    np.testing.assert_allclose(otf, 1.0, atol=1e-15)


def test_an_off_centre_delta_is_a_phase_ramp():
    """A delta at (dy, dx) from the centre is a shift: its transform is exp(-2 pi i (ky dy / Ny + kx dx / Nx))."""
    kernel = np.zeros((7, 7))
    kernel[3 + 2, 3 - 1] = 1.0  # dy = 2, dx = -1
    shape = (10, 8)
    ky = np.arange(shape[0])[:, None]
    kx = np.arange(shape[1] // 2 + 1)[None, :]
    expected = np.exp(-2j * np.pi * (ky * 2 / shape[0] + kx * -1 / shape[1]))
    np.testing.assert_allclose(transfer_function(kernel, shape, np.float64), expected, atol=1e-12)


def test_multiplying_by_it_is_periodic_convolution():
    rng = np.random.default_rng(0)
    image = rng.random((12, 9))
    kernel = rng.random((5, 3))
    got = scipy.fft.irfft2(scipy.fft.rfft2(image) * transfer_function(kernel, image.shape, np.float64), s=image.shape)
    expected = np.zeros_like(image)
    for dy in range(-2, 3):
        for dx in range(-1, 2):
            expected += kernel[dy + 2, dx + 1] * np.roll(image, (dy, dx), axis=(0, 1))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_parseval_and_the_dc_term():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(9, 9))
    shape = (20, 20)
    otf = transfer_function(kernel, shape, np.float64)
    assert otf[0, 0].real == pytest.approx(kernel.sum())
    full = scipy.fft.fft2(scipy.fft.irfft2(otf, s=shape))  # the whole plane, not only the half rfft keeps
    assert np.sum(np.abs(full) ** 2) / (shape[0] * shape[1]) == pytest.approx(np.sum(kernel**2))


def test_a_symmetric_kernel_has_a_real_transfer_function_in_the_dtype_asked():
    kernel = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16
    otf = transfer_function(kernel, (8, 8), np.float32)
    assert otf.dtype == np.complex64
    assert np.abs(otf.imag).max() < 1e-7
    # The 1-2-1 binomial kernel: H = cos^2(pi k / N) on each axis.
    k = np.arange(8)
    expected = np.outer(np.cos(np.pi * k / 8) ** 2, np.cos(np.pi * k[:5] / 8) ** 2)
    np.testing.assert_allclose(otf.real, expected, atol=1e-6)


def test_a_kernel_wider_than_the_grid_wraps_around():
    kernel = np.ones((7, 7)) / 49
    otf = transfer_function(kernel, (4, 4), np.float64)  # 7 taps on a 4-pixel circle: folded
    assert otf[0, 0].real == pytest.approx(1.0)
    folded = np.zeros((4, 4))
    for i in range(-3, 4):
        for j in range(-3, 4):
            folded[i % 4, j % 4] += 1 / 49
    np.testing.assert_allclose(otf, scipy.fft.rfft2(folded), atol=1e-15)
