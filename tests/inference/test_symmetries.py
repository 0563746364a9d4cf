"""The shipped default models' exact symmetries: constant images come back constant, magnetograms are odd."""

import numpy as np
import pytest

from enhance import enhance
from enhance.constants import HMI_NOISE


@pytest.mark.parametrize("model", ["full", "light"])
def test_a_constant_continuum_comes_back_to_a_millionth_of_its_value(model):
    # Float32 holds a value to 6e-8 of itself; the linear stage's filters have taps up to 11 whose products
    # with a constant would be rounded to about 1e-6 of it, unless the runner filters the image less its median.
    for value in (0.05, 0.4, 1.0, 2.0):
        for factor in (0.5, 1.0, 10.0):
            out = enhance(np.full((40, 48), value), "intensity", model=model, noise=factor * HMI_NOISE["intensity"],
                          qs_level=1.0)  # fmt: skip
            assert out.shape == (80, 96)
            assert np.abs(out - value).max() <= 5e-7 * value, (value, factor)  # 9e-8 measured


@pytest.mark.parametrize("model", ["full", "light"])
def test_a_constant_magnetogram_comes_back_to_a_thousandth_of_a_gauss_and_the_model_is_odd(model):
    for value in (-1200.0, -30.0, 0.0, 30.0, 1200.0):
        for factor in (0.5, 1.0, 10.0):
            out = enhance(np.full((40, 48), value), "blos", model=model, noise=factor * HMI_NOISE["blos"])
            assert np.abs(out - value).max() <= 2e-4, (value, factor)  # 5e-5 G measured
    field = np.random.default_rng(3).normal(0.0, 300.0, (40, 48))
    positive = enhance(field, "blos", model=model, noise=HMI_NOISE["blos"])
    negative = enhance(-field, "blos", model=model, noise=HMI_NOISE["blos"])
    np.testing.assert_array_equal(negative, -positive)
