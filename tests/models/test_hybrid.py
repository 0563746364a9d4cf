"""Wiener-Enhance: the padding, the noise-interpolated linear stage, the closed-form filters, the noise
measurement, the weights file and the ONNX graph without PyTorch, each against an analytic case."""

import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from enhance.inference.api import enhance
from enhance.inference.pipeline import network_noise
from enhance.inference.tiling import run_tiled
from enhance.models.hybrid import NOISE_NODES, WienerEnhanceNet, symmetric_pad, symmetrize_filters
from enhance.models.pretrained import load_network
from enhance.models.weights import read_metadata, save_weights
from enhance.observation.noise import estimate_noise, noise_is_white
from enhance.training.linear_stage import mmse_filters, patch_statistics


def _replicating(net):
    """Filters that copy each input pixel onto its 2x2 block at every noise level (a delta per phase)."""
    filters = torch.zeros_like(net.filters)
    filters[:, 0, net.taps // 2, net.taps // 2] = 1.0
    net.filters.copy_(filters)
    return net


def _random(net, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point() and tensor.ndim > 1:
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
    return net


@pytest.mark.parametrize(("shape", "margin"), [((5, 7), 3), ((2, 3), 7), ((4, 4), 0), ((1, 9), 4)])
def test_symmetric_pad_is_numpys_half_sample_mirror(shape, margin):
    data = np.random.default_rng(0).random(shape)
    assert np.array_equal(symmetric_pad(torch.from_numpy(data), margin).numpy(), np.pad(data, margin, mode="symmetric"))


def test_untrained_network_is_its_linear_stage():
    """conv_out starts at zero: with replicating filters the output is each pixel on its 2x2 block (to rounding)."""
    net = _replicating(WienerEnhanceNet(depth=2, width=8, taps=5)).eval()
    x = torch.rand(1, 1, 9, 11)
    out = net(x, torch.tensor([3e-3]))[0, 0].detach().numpy()
    assert np.abs(out - np.kron(x[0, 0].numpy(), np.ones((2, 2)))).max() < 1e-6


def test_filter_bank_weights_interpolate_in_log_noise_and_clamp():
    net = WienerEnhanceNet(depth=1, width=4, taps=3, noise_unit=1e-3)
    nodes = torch.tensor(NOISE_NODES) * 1e-3
    at_nodes = net.node_weights(nodes)
    assert torch.allclose(at_nodes, torch.eye(len(NOISE_NODES)), atol=1e-6)
    between = net.node_weights(torch.sqrt(nodes[2:3] * nodes[3:4]))  # geometric mean of two nodes
    assert torch.allclose(between[0, 2:4], torch.tensor([0.5, 0.5]), atol=1e-5)
    assert torch.allclose(between.sum(), torch.tensor(1.0))
    outside = net.node_weights(torch.tensor([1e-9, 10.0]))
    assert outside[0, 0] == 1
    assert outside[1, -1] == 1


def test_tiles_with_the_margin_give_the_whole_image():
    net = _random(WienerEnhanceNet(depth=1, width=8, taps=7)).eval().requires_grad_(False)
    image = np.random.default_rng(1).random((50, 41), dtype=np.float32)
    bound = net.bind(2e-3)
    whole = run_tiled(image, bound, tile=None, margin=net.margin, device=torch.device("cpu"))
    tiled = run_tiled(image, bound, tile=13, margin=net.margin, device=torch.device("cpu"))
    assert np.abs(tiled - whole).max() < 1e-5


def test_symmetric_network_is_equivariant_under_rotations_and_flips():
    net = _random(WienerEnhanceNet(depth=1, width=8, taps=5, symmetric=True)).eval().requires_grad_(False)
    x = torch.rand(1, 1, 12, 15)
    noise = torch.tensor([1e-3])
    out = net(x, noise)
    for turns in range(4):
        for transpose in (False, True):
            moved = x.rot90(turns, (2, 3))
            expected = out.rot90(turns, (2, 3))
            if transpose:
                moved, expected = moved.transpose(2, 3), expected.transpose(2, 3)
            assert (net(moved, noise) - expected).abs().max() <= 1e-5 * out.abs().max()


def test_closed_form_filters_recover_a_noise_free_replication_and_keep_constants():
    """Targets that replicate the inputs: at zero noise the least-squares filter is the delta; each sums to 1."""
    rng = np.random.default_rng(2)
    inputs = ndimage.gaussian_filter(rng.normal(size=(4, 24, 24)), (0, 1.5, 1.5))
    targets = np.kron(inputs, np.ones((1, 2, 2)))
    stats = patch_statistics(inputs, targets, taps=5)
    filters = mmse_filters(stats, [1e-8, 0.3])
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    assert np.allclose(filters[:4, 0], delta, atol=1e-4)
    assert np.allclose(filters.sum(axis=(1, 2, 3)), 1.0, atol=1e-6)
    assert filters[4:, 0, 2, 2].max() < 0.9  # with noise the filter averages neighbours


def test_closed_form_filters_are_the_least_squares_solution():
    """The filter solves the normal equations, up to the Lagrange term of its sum."""
    rng = np.random.default_rng(3)
    inputs = rng.normal(size=(3, 16, 16))
    targets = np.kron(ndimage.uniform_filter(inputs, (1, 3, 3)), np.ones((1, 2, 2)))
    stats = patch_statistics(inputs, targets, taps=3)
    w = mmse_filters(stats, [0.5])[:, 0].reshape(4, 9).T.astype(np.float64)
    gradient = (stats.covariance + 0.25 * np.eye(9)) @ w - stats.cross  # zero up to the Lagrange term along 1
    residual = gradient - np.ones((9, 1)) * gradient.mean(axis=0, keepdims=True)
    assert np.abs(residual).max() < 1e-6


def test_noise_is_measured_beyond_the_cutoff_and_ignores_the_scene():
    rng = np.random.default_rng(4)
    scene = ndimage.gaussian_filter(rng.normal(size=(200, 200)), 3) * 50  # power only far inside the cut-off
    for sigma in (0.5, 2.0):
        measured = estimate_noise(scene + rng.normal(0, sigma, scene.shape))
        assert abs(measured / sigma - 1) < 0.06
    assert noise_is_white(scene + rng.normal(0, 1.0, scene.shape))
    assert not noise_is_white(ndimage.zoom(ndimage.zoom(rng.normal(size=(128, 128)), 0.7), 1 / 0.7))
    with pytest.raises(ValueError, match="at least 16 x 16"):
        estimate_noise(np.ones((8, 40)))


def test_network_noise_given_measured_or_nominal():
    rng = np.random.default_rng(5)
    image = 1 + rng.normal(0, 3e-3, (128, 128))
    assert abs(network_noise(image, nominal=1e-3) / 3e-3 - 1) < 0.06
    assert network_noise(image, noise=6.0, scale=2000.0, nominal=1e-3) == pytest.approx(3e-3)
    assert network_noise(image[:31, :40], nominal=1e-3) == 1e-3  # too small to measure
    smooth = ndimage.zoom(ndimage.zoom(image, 0.6), 1 / 0.6)
    assert network_noise(smooth, nominal=1e-3) == 1e-3
    with pytest.raises(ValueError, match="noise"):
        network_noise(image, noise=-1.0, nominal=1e-3)
    # A measurement far below HMI's noise is not believed (a level told too low amplifies the noise).
    quiet = 1 + rng.normal(0, 1e-4, (128, 128))
    assert network_noise(quiet, nominal=1e-3) == pytest.approx(0.5e-3)
    # Missing pixels: filled pixels hold no noise, so only the tiles without them are measured; with none left,
    # the nominal level is used.
    finite = np.ones(image.shape, bool)
    finite[:40] = False
    assert abs(network_noise(image, nominal=1e-3, finite=finite) / 3e-3 - 1) < 0.1
    finite[:, :70] = False
    assert network_noise(image, nominal=1e-3, finite=finite) == 1e-3


def test_enhance_uses_the_given_noise_in_the_images_units():
    """An image in DN with its noise given in DN runs as the same image in I/Ic with the noise in I/Ic."""
    net = _random(WienerEnhanceNet(depth=1, width=8, taps=5)).eval().requires_grad_(False)
    image = (1 + np.random.default_rng(6).normal(0, 0.02, (40, 40))).astype(np.float32)
    a = enhance(image, "intensity", network=net, qs_level=1.0, noise=0.004)
    b = enhance(image * 5000, "intensity", network=net, qs_level=5000.0, noise=20.0) / 5000
    c = enhance(image, "intensity", network=net, qs_level=1.0, noise=0.0005)
    assert np.abs(a - b).max() < 1e-5
    assert np.abs(a - c).max() > 1e-4  # the noise level changes the result


def test_weights_file_round_trip_and_bad_metadata(tmp_path):
    net = _random(WienerEnhanceNet(depth=1, width=8, taps=5, noise_unit=0.01)).eval()
    path = save_weights(net, tmp_path / "w.safetensors", kind="blos")
    meta = read_metadata(path)
    assert meta["architecture"] == "wiener-enhance"
    assert json.loads(meta["noise_nodes"]) == list(NOISE_NODES)
    loaded = load_network(path, kind="blos")
    x, noise = torch.rand(1, 1, 10, 10), torch.tensor([0.02])
    assert torch.equal(loaded(x, noise), net(x, noise))
    from safetensors.torch import load_file, save_file

    bad = {**meta, "noise_nodes": "[1, 2, 4]"}  # valid levels, but 3 where the file holds 8
    save_file(load_file(str(path)), str(tmp_path / "bad.safetensors"), metadata=bad)
    with pytest.raises(ValueError, match="do not match its metadata") as info:
        load_network(tmp_path / "bad.safetensors")
    assert "\n" not in str(info.value)


def test_onnx_graph_without_torch_matches_the_module(tmp_path):
    pytest.importorskip("onnxruntime")
    from enhance.runtime.export import load_weights_file, onnx_from_weights
    from enhance.runtime.wiener_onnx import WienerOnnxNetwork

    net = _random(WienerEnhanceNet(depth=2, width=8, taps=7), seed=7).eval().requires_grad_(False)
    path = save_weights(net, tmp_path / "w.safetensors", kind="intensity")
    runner = WienerOnnxNetwork(onnx_from_weights(path).SerializeToString(), threads=1)
    x = np.random.default_rng(8).random((1, 1, 23, 19), dtype=np.float32)
    for noise in (1e-5, 1e-3, 7e-3, 1.0):  # below, on, between and above the nodes
        expected = net(torch.from_numpy(x), torch.tensor([noise])).numpy()
        assert np.abs(runner.bind(noise)(x) - expected).max() < 1e-5
    net.filters.copy_(symmetrize_filters(net.filters))  # the runner averages 8 whole passes: the same when symmetric
    runner = WienerOnnxNetwork(onnx_from_weights(save_weights(net, tmp_path / "s.safetensors", kind="intensity"))
                               .SerializeToString(), threads=1, symmetric=True)  # fmt: skip
    net.symmetric = True
    expected = net(torch.from_numpy(x), torch.tensor([2e-3])).numpy()
    assert np.abs(runner.bind(2e-3)(x) - expected).max() < 1e-5
    assert load_weights_file(path, kind="intensity").taps == 7
    with pytest.raises(ValueError, match="bind"):
        runner(x)


def test_symmetrized_filters_make_the_linear_stage_equivariant():
    net = _random(WienerEnhanceNet(depth=1, width=4, taps=5), seed=9)
    net.filters.copy_(symmetrize_filters(net.filters))
    x = torch.rand(1, 1, 16, 16)
    noise = torch.tensor([1e-3])

    def linear(image):
        return torch.nn.functional.pixel_shuffle(net.linear(symmetric_pad(image, 2), noise), 2)

    out = linear(x)
    assert (linear(x.rot90(1, (2, 3))) - out.rot90(1, (2, 3))).abs().max() < 1e-6
    assert (linear(x.transpose(2, 3)) - out.transpose(2, 3)).abs().max() < 1e-6
    assert (linear(x.flip(3)) - out.flip(3)).abs().max() < 1e-6


def test_exported_full_model_file_runs_symmetric(tmp_path):
    """A file exported from the 'full' model averages over rotations and flips when loaded, as 'full' does."""
    pytest.importorskip("onnxruntime")
    from enhance.models.pretrained import full, light
    from enhance.runtime.export import export_onnx, load_onnx

    image = np.random.default_rng(10).normal(1.0, 0.02, (40, 36)).astype(np.float32)
    for factory, symmetric in ((full, True), (light, False)):
        net = factory("intensity", weights="default")
        runner = load_onnx(export_onnx(net, tmp_path / f"{factory.__name__}.onnx", kind="intensity"))
        assert runner.symmetric is symmetric
        expected = enhance(image, "intensity", network=net, qs_level=1.0, noise=1e-3, backend="torch")
        found = enhance(image, "intensity", network=runner, qs_level=1.0, noise=1e-3)
        assert np.abs(found - expected).max() < 1e-5


@pytest.fixture
def random_hybrid(random_wiener):
    """A small Wiener-Enhance network with random CNN weights and unit-sum random filters."""
    return lambda **options: random_wiener(3, weight_std=0.2, width=8, taps=5, **options)


@pytest.mark.parametrize("symmetric", [False, True])
def test_exact_constants_keep_a_constant_image_constant(symmetric, random_hybrid):
    for exact in (False, True):
        net = random_hybrid(exact_constants=exact, symmetric=symmetric)
        with torch.no_grad():
            out = net(torch.full((1, 1, 17, 19), 0.83), torch.tensor([2e-3]))
        error = float((out - 0.83).abs().max())
        # Without the option a random CNN moves a constant by its bias response; with it, float32 rounding is left.
        assert (error < 2e-6) if exact else (error > 1e-3)


@pytest.mark.parametrize("symmetric", [False, True])
def test_odd_networks_are_odd_to_the_bit(symmetric, random_hybrid):
    x = 0.5 * torch.randn(2, 1, 16, 15, generator=torch.Generator().manual_seed(1))
    for odd in (False, True):
        net = random_hybrid(odd=odd, exact_constants=True, symmetric=symmetric)
        with torch.no_grad():
            total = net(x, torch.tensor([1e-3, 1e-3])) + net(-x, torch.tensor([1e-3, 1e-3]))
        assert (float(total.abs().max()) == 0.0) if odd else (float(total.abs().max()) > 1e-2)


@pytest.mark.parametrize(("exact", "odd"), [(True, False), (False, True), (True, True)])
def test_the_onnx_graph_runs_the_symmetry_options_as_pytorch_does(exact, odd, random_hybrid):
    from enhance.runtime.wiener_onnx import WienerOnnxNetwork, wiener_graph_from_network

    net = random_hybrid(exact_constants=exact, odd=odd)
    x = 1 + 0.1 * torch.randn(1, 1, 20, 23, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = net(x, torch.tensor([2e-3])).numpy()
    runner = WienerOnnxNetwork(wiener_graph_from_network(net).SerializeToString(), threads=1).bind(2e-3)
    assert runner.metadata["exact_constants"] == str(exact)
    assert runner.metadata["odd"] == str(odd)
    np.testing.assert_allclose(runner(x.numpy()), expected, atol=1e-5)
    if odd:
        np.testing.assert_array_equal(runner(-x.numpy()), -runner(x.numpy()))
    if exact:  # this random CNN corrects a constant 0.83 by 1.08 before the subtraction: float32 steps of that
        # sum differ between CPUs (2.4e-6 on AVX2); without the subtraction the error would be 1.08
        np.testing.assert_allclose(runner(np.full((1, 1, 14, 14), 0.83, np.float32)), 0.83, rtol=0, atol=5e-6)


def test_symmetry_options_survive_a_weights_file(tmp_path, random_hybrid):
    from enhance.models.pretrained import load_network
    from enhance.models.weights import save_weights

    net = random_hybrid(exact_constants=True, odd=True)
    loaded = load_network(save_weights(net, tmp_path / "w.safetensors", kind="intensity"), kind="intensity")
    assert loaded.exact_constants
    assert loaded.odd
