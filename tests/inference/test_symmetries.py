"""The shipped default models' exact symmetries: constant images come back constant, magnetograms are odd.

On both back-ends: onnxruntime's runner and the PyTorch network (`WienerEnhanceNet.centred_linear`).
"""

import importlib.util

import numpy as np
import pytest

from enhance import enhance
from enhance.constants import HMI_NOISE

BACKENDS = ["onnx", pytest.param("torch", marks=pytest.mark.skipif(not importlib.util.find_spec("torch"),
                                                                   reason="needs PyTorch"))]  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", ["full", "light"])
def test_a_constant_continuum_comes_back_to_a_millionth_of_its_value(model, backend):
    # Float32 holds a value to 6e-8 of itself; the linear stage's filters have taps up to 11 whose products
    # with a constant would be rounded to about 1e-6 of it, unless the runner filters the image less its median.
    for value in (0.05, 0.4, 1.0, 2.0):
        for factor in (0.5, 1.0, 10.0):
            out = enhance(np.full((40, 48), value), "intensity", model=model, noise=factor * HMI_NOISE["intensity"],
                          qs_level=1.0, backend=backend)  # fmt: skip
            assert out.shape == (80, 96)
            assert np.abs(out - value).max() <= 5e-7 * value, (value, factor)  # 9e-8 (onnx), 1.5e-7 (torch)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", ["full", "light"])
def test_a_constant_magnetogram_comes_back_to_a_thousandth_of_a_gauss_and_the_model_is_odd(model, backend):
    bound = {"onnx": 2e-4, "torch": 5e-4}[backend]  # measured: 5e-5 G (onnx), 1.2e-4 G (torch)
    for value in (-1200.0, -30.0, 0.0, 30.0, 1200.0):
        for factor in (0.5, 1.0, 10.0):
            out = enhance(np.full((40, 48), value), "blos", model=model, noise=factor * HMI_NOISE["blos"],
                          backend=backend)  # fmt: skip
            assert np.abs(out - value).max() <= bound, (value, factor)
    field = np.random.default_rng(3).normal(0.0, 300.0, (40, 48))
    positive = enhance(field, "blos", model=model, noise=HMI_NOISE["blos"], backend=backend)
    negative = enhance(-field, "blos", model=model, noise=HMI_NOISE["blos"], backend=backend)
    np.testing.assert_array_equal(negative, -positive)


@pytest.mark.skipif(not importlib.util.find_spec("torch"), reason="needs PyTorch")
def test_a_nan_pixel_reaches_no_farther_through_the_pytorch_network_than_its_reach():
    # The offset of the centred linear stage is the median of the finite pixels: a NaN on its sample (every fourth
    # row and column of the mirrored image) must not make every output NaN.
    import torch

    from enhance.models.pretrained import FACTORIES

    net = FACTORIES["light"]("intensity", weights="default").eval()
    image = torch.from_numpy(np.random.default_rng(0).normal(1.0, 0.05, (1, 1, 80, 80)).astype(np.float32))
    image[0, 0, 38, 38] = float("nan")  # (56, 56) in the image mirrored by 18 pixels: on the sample
    with torch.no_grad():
        out = net(image, torch.tensor([1e-3])).numpy()[0, 0]
    reach = 2 * net.margin + 1  # input pixels a side whose output a pixel reaches
    assert np.isnan(out).sum() == (2 * reach) ** 2
