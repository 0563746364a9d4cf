"""The Wiener-Enhance ONNX graph, built with numpy, and its runner: a tiny random network gives PyTorch's output to
1e-5, bind() fixes the noise level (a copy sharing the session), and the 'full' model's average over the 8 rotations
and flips is done around the graph."""

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from enhance.models.hybrid import WienerEnhanceNet, symmetrize_filters  # noqa: E402
from enhance.models.weights import save_weights  # noqa: E402
from enhance.runtime.export import onnx_model  # noqa: E402
from enhance.runtime.onnx_runner import OnnxNetwork  # noqa: E402
from enhance.runtime.wiener_onnx import (  # noqa: E402
    WienerOnnxNetwork,
    graph_filter_bank,
    is_wiener_file,
    wiener_graph_from_network,
    wiener_graph_from_weights,
)

UNIT = 1e-3  # the intensity network's noise unit: HMI's noise in I/Ic


def _random_net(*, symmetric=False, seed=0):
    """A tiny Wiener-Enhance network with every weight random (conv_out starts at zero otherwise)."""
    net = WienerEnhanceNet(depth=1, width=6, taps=5, symmetric=symmetric)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.is_floating_point() and (name.endswith("weight") or name == "filters"):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
        if symmetric:  # the shipped filters are symmetric: then one linear pass equals the 8 averaged
            net.filters.copy_(symmetrize_filters(net.filters))
    return net.eval()


def _runner(net, **kwargs):
    return WienerOnnxNetwork(wiener_graph_from_network(net, kind="intensity").SerializeToString(), threads=1, **kwargs)


def _image(shape=(2, 1, 13, 17), seed=1):
    return (1 + 0.1 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _torch(net, batch, noise):
    with torch.no_grad():
        return net.bind(noise)(torch.from_numpy(batch)).numpy()


@pytest.mark.parametrize("noise", [0.3 * UNIT, 1.0 * UNIT, 5.5 * UNIT, 100 * UNIT])
def test_the_runner_equals_the_torch_network_at_any_noise_level(noise):
    net = _random_net()
    batch = _image()
    out = _runner(net).bind(noise)(batch)
    assert out.shape == (2, 1, 26, 34)
    np.testing.assert_allclose(out, _torch(net, batch, noise), rtol=0, atol=1e-5)


def test_bind_fixes_the_noise_in_a_copy_that_shares_the_session():
    net = _random_net(seed=2)
    runner = _runner(net)
    low, high = runner.bind(UNIT), runner.bind(8 * UNIT)
    assert (runner.noise, low.noise, high.noise) == (None, UNIT, 8 * UNIT)
    assert low.session is runner.session
    batch = _image(seed=3)
    assert np.abs(low(batch) - high(batch)).max() > 1e-4  # the noise level changes the filters
    np.testing.assert_allclose(low(batch), _torch(net, batch, UNIT), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(runner.bind(UNIT)(batch), low(batch))
    with pytest.raises(ValueError, match=r"needs its noise level: call bind\(noise\) first"):
        runner(batch)
    with pytest.raises(ValueError, match=r"batch must have shape \(n, 1, ny, nx\)"):
        low(batch[0])


def test_the_symmetric_runner_averages_the_eight_transforms_as_pytorch_does():
    net = _random_net(symmetric=True, seed=4)
    runner = _runner(net).bind(2 * UNIT)
    assert runner.symmetric
    batch = _image((1, 1, 12, 12), seed=5)
    out = runner(batch)
    np.testing.assert_allclose(out, _torch(net, batch, 2 * UNIT), rtol=0, atol=1e-5)
    turned = runner(np.ascontiguousarray(np.rot90(batch, 1, (2, 3))))
    np.testing.assert_allclose(turned, np.rot90(out, 1, (2, 3)), rtol=0, atol=1e-5)  # equivariant
    flipped = runner(np.ascontiguousarray(batch.transpose(0, 1, 3, 2)))
    np.testing.assert_allclose(flipped, out.transpose(0, 1, 3, 2), rtol=0, atol=1e-5)


def test_symmetric_follows_the_file_unless_told():
    net = _random_net(symmetric=True, seed=6)
    data = wiener_graph_from_network(net).SerializeToString()
    assert WienerOnnxNetwork(data).symmetric is True
    assert WienerOnnxNetwork(data, symmetric=False).symmetric is False
    one_pass = WienerOnnxNetwork(data, symmetric=False).bind(UNIT)
    batch = _image((1, 1, 10, 11), seed=7)
    single = WienerEnhanceNet(depth=1, width=6, taps=5, symmetric=False)
    single.load_state_dict(net.state_dict())  # the same weights, one pass
    np.testing.assert_allclose(one_pass(batch), _torch(single.eval(), batch, UNIT), rtol=0, atol=1e-5)


def test_from_network_keeps_the_session_and_refuses_an_enhance_graph(tiny_net):
    plain = OnnxNetwork(wiener_graph_from_network(_random_net()).SerializeToString(), threads=1)
    runner = WienerOnnxNetwork.from_network(plain, symmetric=True)
    assert runner.session is plain.session
    assert (runner.margin, runner.symmetric) == (5 // 2 + 2 * 1 + 2, True)
    enhance = OnnxNetwork(onnx_model(tiny_net).SerializeToString(), threads=1, blocked=False)
    with pytest.raises(ValueError, match="the ONNX bytes: metadata format='enhance-onnx-1' is not a Wiener-Enhance"):
        WienerOnnxNetwork.from_network(enhance)


def test_the_graph_holds_the_networks_filter_bank():
    net = _random_net(seed=8)
    filters, nodes, unit = graph_filter_bank(wiener_graph_from_network(net).SerializeToString())
    assert filters.dtype == np.float64
    np.testing.assert_array_equal(filters, net.filters.numpy().astype(np.float64))
    assert nodes == tuple(net.noise_nodes)
    assert unit == net.noise_unit


def test_a_weights_file_becomes_the_same_graph_without_torch(tmp_path):
    net = _random_net(seed=9)
    path = save_weights(net, tmp_path / "wiener.safetensors", kind="intensity")
    graph = wiener_graph_from_weights(path, symmetric=True)
    meta = {p.key: p.value for p in graph.metadata_props}
    assert (meta["kind"], meta["symmetric"], meta["architecture"]) == ("intensity", "True", "wiener-enhance")
    assert "normalisation" in meta  # the rules of `inference_metadata`
    runner = WienerOnnxNetwork(graph.SerializeToString(), symmetric=False).bind(3 * UNIT)
    batch = _image((1, 1, 9, 14), seed=10)
    np.testing.assert_allclose(runner(batch), _torch(net, batch, 3 * UNIT), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="wiener.safetensors holds a 'intensity' network, but kind='blos'"):
        wiener_graph_from_weights(path, kind="blos")


def test_is_wiener_file_reads_the_architecture(tmp_path, weights):
    from enhance.runtime.folding import read_weights

    wiener = save_weights(_random_net(), tmp_path / "w.safetensors", kind="intensity")
    assert is_wiener_file(read_weights(wiener, tensors=False)[1])
    assert not is_wiener_file(read_weights(weights, tensors=False)[1])


@pytest.mark.parametrize("kind", ["intensity", "blos"])
def test_the_exported_graph_of_a_model_exact_on_constants_keeps_them_to_float_rounding(kind):
    # The file graph (what `enhance export` writes and the browser runs) centres its linear stage on each image's
    # median, computed in the graph: a constant comes back to 1.5e-7 of itself (1.5e-6 without: taps up to 11
    # round a constant's products to about 1e-6 of it), a magnetogram's to 6e-6 G (6e-4 G without).
    import onnxruntime as ort

    from enhance.runtime.export import shipped_onnx_network

    graph = shipped_onnx_network(kind, "light").graph
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "noise"]  # the files' interface is unchanged
    margin, unit = 18, {"intensity": 1e-3, "blos": 1e-2}[kind]
    values = (0.05, 0.4, 1.0, 2.0) if kind == "intensity" else (-1.2, -0.03, 0.0, 0.03, 1.2)  # I/Ic or kG
    for value in values:
        for factor in (0.5, 1.0, 10.0):
            image = np.full((1, 1, 40 + 2 * margin, 48 + 2 * margin), value, np.float32)
            out = session.run(None, {"image": image, "noise": np.full(1, factor * unit, np.float32)})[0]
            assert out.shape == (1, 1, 80, 96)
            bound = 5e-7 * abs(value) if kind == "intensity" else 1e-7  # kG: 1e-4 G
            assert np.abs(out - value).max() <= bound, (value, factor)
    # Each image of a batch gets its own offset; a NaN pixel reaches only the outputs it reaches without the
    # offset (the median counts it as 0), and the magnetogram graph stays odd bit for bit.
    batch = np.random.default_rng(0).normal(1.0 if kind == "intensity" else 0.0, 0.3, (2, 1, 100, 100))
    batch = batch.astype(np.float32)
    noise = np.full(2, unit, np.float32)
    spoilt = batch.copy()
    spoilt[0, 0, 48, 48] = np.nan  # on the offset's sample (every fourth row and column); reaches 2 margin + 1
    out, hit = (session.run(None, {"image": b, "noise": noise})[0] for b in (batch, spoilt))
    assert np.isnan(hit[0]).sum() == (2 * (2 * margin + 1)) ** 2
    assert not np.isnan(hit[1]).any()
    np.testing.assert_array_equal(hit[1], out[1])
    if kind == "blos":
        np.testing.assert_array_equal(session.run(None, {"image": -batch, "noise": noise})[0], -out)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_the_paired_kernel_gives_the_convolutions_phases_of_2x2_pixels_at_once(size):
    # Analytic: channel 4 (2 a + b) + 2 s + t of the stride-2 convolution at (Y, X) is phase 2 a + b of the
    # convolution at (2 Y + s, 2 X + t), so DepthToSpace(2) of the first holds the second's phases in place.
    from scipy.signal import correlate

    from enhance.runtime.wiener_onnx import paired_kernel

    rng = np.random.default_rng(5)
    weight, bias = rng.normal(size=(4, 3, size, size)), rng.normal(size=4)
    image = rng.normal(size=(3, 12, 10))
    plain = np.stack([correlate(image, weight[p], mode="valid")[0] + bias[p] for p in range(4)])
    paired, paired_bias = paired_kernel(weight, bias)
    assert paired.shape == (16, 3, size + 1, size + 1)
    wide = np.stack([correlate(image, paired[c], mode="valid")[0] + paired_bias[c] for c in range(16)])
    strided = wide[:, ::2, ::2].reshape(4, 2, 2, *wide[:, ::2, ::2].shape[1:])  # phase, s, t, Y, X
    for p, s, t in np.ndindex(4, 2, 2):
        expected = plain[p, s::2, t::2]
        np.testing.assert_allclose(strided[p, s, t, : expected.shape[0], : expected.shape[1]], expected, rtol=1e-12)
    assert paired_kernel(weight)[1] is None
    for wrong in (weight[:2], np.zeros((4, 3, 2, 3))):
        with pytest.raises(ValueError, match="4, c, k, k"):
            paired_kernel(wrong)
    with pytest.raises(ValueError, match="4 biases"):
        paired_kernel(weight, bias[:3])


@pytest.mark.parametrize(("odd", "shape"), [(False, (1, 1, 23, 26)), (True, (2, 1, 24, 19))])
def test_the_graph_with_the_paired_output_gives_the_same_output_at_any_size(odd, shape, random_wiener):
    # The runner's graph runs the last convolution paired; odd output sizes use its one pixel of end padding and
    # are cropped back.
    import onnxruntime as ort

    from enhance.runtime.wiener_onnx import image_offset, wiener_onnx_graph

    net = random_wiener(3, odd=odd)
    state = {name: tensor.numpy() for name, tensor in net.state_dict().items()}
    meta = {"depth": net.depth, "width": net.width, "taps": net.taps, "noise_nodes": net.noise_nodes,
            "noise_unit": net.noise_unit, "exact_constants": True, "odd": odd}  # fmt: skip
    image = _image((shape[0], 1, shape[2] + 2 * net.margin, shape[3] + 2 * net.margin), seed=2)
    feeds = {"image": image, "noise": np.full(shape[0], 2e-3, np.float32)}
    offset = np.full((1, 1, 1, 1), image_offset(image[0, 0]), np.float32)
    outputs = []
    for paired in (False, True):
        graph = wiener_onnx_graph(state, meta, constants_apart=True, paired_output=paired).SerializeToString()
        session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {**feeds, "offset": offset})[0])
    assert outputs[1].shape == (shape[0], 1, 2 * shape[2], 2 * shape[3])
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=0, atol=1e-6 * np.abs(outputs[0]).max())
    with pytest.raises(ValueError, match="constants_apart"):
        wiener_onnx_graph(state, meta, paired_output=True)
