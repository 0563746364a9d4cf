"""InferenceNet gives EnhanceNet's output for any architecture without touching the network; devices are resolved
or refused in one line."""

import copy

import pytest
import torch

from enhance.models.network import EnhanceNet
from enhance.runtime.graph import PRECISIONS, InferenceNet, phase_kernels, resolve_device


def _trained_looking(net, seed):
    """``net`` in eval mode with every BatchNorm given non-trivial statistics and affine terms, as after training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                module.weight.normal_(1.0, 0.2, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
    return net.eval()


@pytest.mark.parametrize(("depth", "width", "shape"), [(1, 1, (3, 5)), (1, 4, (2, 2)), (3, 16, (17, 12))])
def test_inference_net_equals_enhance_net_for_any_architecture(depth, width, shape):
    torch.manual_seed(depth + width)
    net = _trained_looking(EnhanceNet(depth=depth, width=width), seed=width)
    x = 1 + 0.2 * torch.randn(2, 1, *shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = net(x)
        got = InferenceNet(net)(x)
    assert got.shape == (2, 1, 2 * shape[0], 2 * shape[1])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5 * max(1.0, float(expected.abs().max())))


def test_inference_net_leaves_the_network_as_it_was(tiny_net):
    tiny_net.train()
    before = copy.deepcopy(tiny_net.state_dict())
    fast = InferenceNet(tiny_net)
    assert tiny_net.training
    for name, value in tiny_net.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert not fast.training
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())  # folded into the convolutions
    assert fast.extra_repr() == "depth=2, width=8"


def test_inference_net_follows_the_weights_it_was_built_from(tiny_net):
    """Built from the weights of the moment: a later change of the network does not reach it."""
    x = torch.rand(1, 1, 6, 7, generator=torch.Generator().manual_seed(2))
    fast = InferenceNet(tiny_net)
    with torch.inference_mode():
        first = fast(x).clone()
    with torch.no_grad():
        tiny_net.conv_out.bias.add_(1.0)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), first, rtol=0, atol=0)
        torch.testing.assert_close(InferenceNet(tiny_net)(x), first + 1.0, rtol=0, atol=1e-5)


def test_phase_kernels_keep_dtype_and_are_linear():
    generator = torch.Generator().manual_seed(3)
    a, b = (torch.randn(2, 3, 3, 3, generator=generator, dtype=torch.float64) for _ in range(2))
    combined = phase_kernels(2 * a - b)
    assert combined.dtype == torch.float64
    torch.testing.assert_close(combined, 2 * phase_kernels(a) - phase_kernels(b), rtol=0, atol=1e-12)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu0'") as info:
        resolve_device("gpu0")
    assert "\n" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_asking_for_cuda_without_it_is_refused_in_one_line():
    with pytest.raises(ValueError, match="CUDA is not available here; use device='cpu' or 'auto'"):
        resolve_device("cuda:0")


def test_precisions_name_their_dtypes():
    assert PRECISIONS == {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
