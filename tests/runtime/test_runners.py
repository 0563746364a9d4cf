"""The runner protocol: every family on every back-end has a margin that is its true reach, binds its noise level,
averages over the 8 rotations and flips through one wrapper, and exports a graph that runs the same."""

import numpy as np
import pytest
import torch

from enhance.models.hybrid import WienerEnhanceNet, symmetrize_filters
from enhance.models.network import EnhanceNet
from enhance.models.runner import DIHEDRAL, Dihedral, Runner, dihedral_inverse, dihedral_transform, family_of
from enhance.runtime.export import load_onnx
from enhance.runtime.runners import RUNNERS, as_runner, make_runner

BACKENDS = ("torch", "onnx")
NOISE = 2e-3


def _randomised(net, seed):
    """Every weight drawn at random (a trained network's last layers are not zero, as a new Wiener-Enhance's are);
    a Wiener-Enhance filter bank equivariant under the 8 rotations and flips, as trained ones are to rounding (the
    network's own average runs its linear stage once)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in net.parameters():
            value.copy_(0.3 * torch.randn(value.shape, generator=generator))
        if isinstance(net, WienerEnhanceNet):
            net.filters.copy_(symmetrize_filters(0.1 * torch.randn(net.filters.shape, generator=generator)))
    return net.eval()


def _networks():
    return {
        "paper": _randomised(EnhanceNet(depth=2, width=6), seed=1),
        "wiener-enhance": _randomised(WienerEnhanceNet(depth=1, width=6, taps=5), seed=2),
    }


@pytest.fixture(scope="module")
def networks():
    return _networks()


def _runner(networks, family, backend):
    runner, _ = make_runner(networks[family], backend=backend, precision="float32", device="cpu")
    return runner.bind(NOISE)


def _cases():
    return [(family, backend) for family in ("paper", "wiener-enhance") for backend in BACKENDS]


def _image(shape, seed=0):
    return (1 + 0.2 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def test_every_family_and_back_end_has_a_runner_in_the_table(networks):
    for family, network in networks.items():
        assert family_of(network) == family
        for backend in BACKENDS:
            assert (family, backend) in RUNNERS


@pytest.mark.parametrize(("family", "backend"), _cases())
def test_every_runner_satisfies_the_protocol(networks, family, backend):
    runner = _runner(networks, family, backend)
    assert isinstance(runner, Runner)
    assert isinstance(runner.averaged(), Runner)
    assert runner.needs_noise == (family == "wiener-enhance")
    assert runner.margin == networks[family].margin
    out = runner(_image((2, 1, 9, 11)))
    assert out.shape == (2, 1, 18, 22)
    assert out.dtype == np.float32


@pytest.mark.parametrize(("family", "backend"), _cases())
def test_the_margin_is_the_measured_reach(networks, family, backend):
    """A change of one input pixel changes the output exactly as far as ``margin`` input pixels away, no further."""
    runner = _runner(networks, family, backend)
    size = 2 * runner.margin + 9
    image = _image((size, size), seed=3)
    centre = size // 2
    changed = image.copy()
    changed[centre, centre] += 0.5
    before, after = (runner(array[None, None])[0, 0] for array in (image, changed))
    rows, cols = np.nonzero(np.abs(after - before) > 1e-6)
    reach = max(np.abs(rows // 2 - centre).max(), np.abs(cols // 2 - centre).max())
    assert reach == runner.margin


@pytest.mark.parametrize("backend", BACKENDS)
def test_bind_then_call_equals_the_direct_call(networks, backend):
    net = networks["wiener-enhance"]
    image = _image((1, 1, 10, 12), seed=4)
    runner, _ = make_runner(net, backend=backend, precision="float32", device="cpu")
    with torch.no_grad():
        for noise in (5e-4, NOISE, 2e-2):
            direct = net(torch.from_numpy(image), torch.full((1,), noise)).numpy()
            np.testing.assert_allclose(runner.bind(noise)(image), direct, rtol=0, atol=1e-6 * np.abs(direct).max())
    with pytest.raises(ValueError, match="call bind"):
        runner(image)
    paper = networks["paper"]
    runner, _ = make_runner(paper, backend=backend, precision="float32", device="cpu")
    assert runner.bind(NOISE) is runner  # not told the noise level: nothing to bind
    with torch.no_grad():
        direct = paper(torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(runner(image), direct, rtol=0, atol=1e-6 * np.abs(direct).max())


@pytest.mark.parametrize(("family", "backend"), _cases())
def test_the_d4_average_is_equivariant_for_every_family(networks, family, backend):
    runner = _runner(networks, family, backend)
    averaged = runner.averaged()
    assert averaged.symmetric
    assert not averaged.one_pass().symmetric
    image = _image((1, 1, 9, 13), seed=5)  # not square: quarter turns change the shape
    out, single = averaged(image), runner(image)
    scale = float(np.abs(out).max())
    for element in DIHEDRAL[1:]:
        moved = averaged(dihedral_transform(image, element))
        np.testing.assert_allclose(moved, dihedral_transform(out, element), rtol=0, atol=1e-5 * scale)
        # One pass of the random network is not equivariant: the check above would fail without the average.
        assert np.abs(runner(dihedral_transform(image, element)) - dihedral_transform(single, element)).max() > 1e-3


def test_the_d4_average_is_the_mean_of_the_back_transformed_passes(networks):
    runner = _runner(networks, "paper", "torch")
    image = _image((1, 1, 8, 10), seed=6)
    passes = [dihedral_inverse(runner(dihedral_transform(image, g)), g) for g in DIHEDRAL]
    np.testing.assert_allclose(Dihedral(runner)(image), np.mean(passes, axis=0), rtol=0, atol=1e-6)


def test_a_light_network_averaged_is_its_full_model(networks):
    """On each back-end, one pass of Wiener-Enhance averaged by the runner is the network that averages itself."""
    light = networks["wiener-enhance"]
    full = _randomised(WienerEnhanceNet(depth=1, width=6, taps=5, symmetric=True), seed=2)
    image = _image((1, 1, 11, 9), seed=7)
    for backend in BACKENDS:
        averaged = make_runner(light, backend=backend, precision="float32", device="cpu")[0].averaged().bind(NOISE)
        itself = make_runner(full, backend=backend, precision="float32", device="cpu")[0].bind(NOISE)
        assert itself.symmetric
        np.testing.assert_allclose(averaged(image), itself(image), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("family", "backend"), _cases())
@pytest.mark.parametrize("averaged", [False, True])
def test_export_gives_a_graph_that_runs_the_same(tmp_path, networks, family, backend, averaged):
    runner = _runner(networks, family, backend)
    runner = runner.averaged() if averaged else runner
    path = tmp_path / "runner.onnx"
    path.write_bytes(runner.export())
    loaded = load_onnx(path).bind(NOISE)
    assert family_of(loaded) == family
    assert loaded.symmetric == averaged
    image = _image((1, 1, 10, 7), seed=8)
    np.testing.assert_allclose(loaded(image), runner(image), rtol=0, atol=1e-5)


def test_as_runner_gives_the_facts_without_preparing_anything(networks):
    runner = as_runner(networks["paper"])
    assert (runner.margin, runner.needs_noise, runner.symmetric) == (networks["paper"].margin, False, False)
    assert runner._module is None  # nothing built until it runs
    module = torch.nn.Upsample(scale_factor=2)
    assert as_runner(module).margin == 32  # a module of your own without a margin or a depth
    loaded = make_runner(networks["paper"], backend="onnx", precision="float32", device="cpu")[0]
    assert as_runner(loaded) is loaded  # a runner already
    with pytest.raises(TypeError, match="network must be an EnhanceNet"):
        as_runner("paper")
