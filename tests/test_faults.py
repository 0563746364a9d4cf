"""Hostile inputs and faults: extreme values, crafted files, dying workers, interrupted and concurrent batches."""

import warnings

import numpy as np
import pytest
import torch

from enhance.inference.pipeline import RunOptions, enhance_array


class _Counting(torch.nn.Module):
    """A network that counts its forward passes: "refused before any work" means zero."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def _extreme_images():
    spike32 = np.ones((20, 20), np.float32)
    spike32[7, 9] = 1e38
    spike64 = np.ones((20, 20))
    spike64[3, 4] = 1e300
    tiny = np.full((20, 20), 1e-300)
    tiny[5, 5] = 1000.0
    return {"float32 1e38": spike32, "float64 1e300": spike64, "1e-300 with one 1000": tiny}


@pytest.mark.parametrize("name", list(_extreme_images()))
@pytest.mark.parametrize("kind", ["intensity", "blos"])
def test_extreme_finite_values_are_refused_before_any_work(tiny_net, name, kind):
    image = _extreme_images()[name]
    if kind == "blos" and name == "1e-300 with one 1000":
        image = image * 1e7  # 1e10 G: ten million kG
    counting = _Counting(tiny_net)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning on the way
        with pytest.raises(ValueError, match=r"times (the quiet-Sun level|1 kG).*mask such pixels as NaN") as info:
            enhance_array(image, kind=kind, network=counting, options=RunOptions(backend="torch"))
    assert counting.calls == 0
    assert "\n" not in str(info.value)


def test_tiny_units_and_large_but_solar_values_stay_finite(tiny_net):
    tiny = np.full((20, 20), 1e-300)  # any units: only the ratio to the quiet Sun matters
    tiny[5, 5] = 3e-300
    out = enhance_array(tiny, kind="intensity", network=tiny_net)
    assert np.isfinite(out).all()
    assert 0 < np.median(out) < 1e-299
    field = np.zeros((20, 20))
    field[4, 4] = 5000.0  # 5 kG
    assert np.isfinite(enhance_array(field, kind="blos", network=tiny_net)).all()


def test_a_network_that_overflows_is_an_error_not_a_silent_nan(tiny_net):
    with torch.no_grad():
        tiny_net.conv_out.weight.mul_(1e38)
    image = np.ones((16, 16), np.float32)
    image[3, 3] = 50.0
    with pytest.raises(ValueError, match="non-finite output pixels for finite input"):
        enhance_array(image, kind="intensity", network=tiny_net, options=RunOptions(backend="torch"))
