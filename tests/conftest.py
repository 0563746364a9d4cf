"""Shared fixtures: tiny networks and the location of the optional reference data."""

from pathlib import Path

import pytest
import torch

from enhance.models.hybrid import WienerEnhanceNet
from enhance.models.network import EnhanceNet
from enhance.models.weights import save_weights
from enhance.runtime.onnx_cache import CACHE_ENV

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _private_graph_cache(tmp_path_factory):
    """The shipped models' ONNX graph cache in a temporary folder for the whole run (subprocesses inherit it),
    not the user's: the tests build and tamper with cache entries."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("graph_cache")))
        yield


needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data (reference data) is not present")


def _randomise_batchnorm(net: EnhanceNet, seed: int) -> EnhanceNet:
    """Give every BatchNorm non-trivial statistics, as after training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.weight.copy_(1 + 0.2 * torch.randn(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
    return net.eval()


@pytest.fixture
def tiny_net():
    """A small initialised network with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    net = _randomise_batchnorm(EnhanceNet(depth=2, width=8), seed=1)
    with torch.no_grad():  # a positive, continuum-like output: the pipeline sets negative continuum to 0
        net.conv_out.bias.add_(1.0)
    return net


@pytest.fixture
def weights(tmp_path, tiny_net):
    """A safetensors file of `tiny_net` as an intensity network."""
    return str(save_weights(tiny_net, tmp_path / "tiny.safetensors", kind="intensity"))


@pytest.fixture
def blos_weights(tmp_path, tiny_net):
    """A safetensors file of `tiny_net` as a magnetogram network."""
    return str(save_weights(tiny_net, tmp_path / "tiny_blos.safetensors", kind="blos"))


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty package data folder: no model is shipped, and shipping does not touch the real one."""
    import enhance.models.registry

    folder = tmp_path / "package_data"
    folder.mkdir()
    monkeypatch.setattr(enhance.models.registry, "package_data_dir", lambda: folder)
    return folder


@pytest.fixture
def no_shipped_models(data_dir):
    """As if this version shipped no trained weights (the untrained-model paths)."""
    return data_dir


def _random_wiener(seed, *, weight_std=0.1, bias_std=0.1, **options):
    """A small Wiener-Enhance network with random CNN weights and random unit-sum filters (each phase keeps
    constants), in eval mode; ``options`` override depth 2, width 16, taps 7, noise unit 1e-3."""
    torch.manual_seed(seed)
    net = WienerEnhanceNet(**{"depth": 2, "width": 16, "taps": 7, "noise_unit": 1e-3, **options})
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.normal_(module.weight, std=weight_std)
                torch.nn.init.normal_(module.bias, std=bias_std)
        filters = torch.rand(net.filters.shape)
        net.filters.copy_(filters / filters.sum(dim=(2, 3), keepdim=True))
    return net.eval()


@pytest.fixture(scope="session")
def random_wiener():
    """`_random_wiener`: ``random_wiener(seed, weight_std=, bias_std=, **options)``."""
    return _random_wiener
