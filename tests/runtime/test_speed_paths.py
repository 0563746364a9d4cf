"""The fast paths give the reference output: InferenceNet, reduced precision, ONNX export and onnxruntime.

Speed itself is measured by ``make bench`` (benchmarks/run.py), never asserted here.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from astropy.io import fits

from conftest import _randomise_batchnorm
from enhance import enhance
from enhance.cli import main
from enhance.models.network import EnhanceNet, fold_batchnorm
from enhance.models.weights import save_weights
from enhance.runtime.graph import InferenceNet, phase_kernels

onnxruntime = pytest.importorskip("onnxruntime")
from enhance.runtime.export import OnnxNetwork, export_onnx, load_onnx, onnx_model, onnx_network  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src" / "enhance"


def _image(shape, seed=0):
    """Granulation-like values around 1 with a dark spot, as a normalised continuum image."""
    rng = np.random.default_rng(seed)
    image = 1 + 0.04 * rng.standard_normal(shape)
    image[: shape[0] // 3, : shape[1] // 4] *= 0.3
    return image.astype(np.float32)


def _reference(net, image):
    """The paper's layer sequence in PyTorch (eval mode), on a normalised image."""
    with torch.no_grad():
        return net.eval()(torch.from_numpy(image)[None, None])[0, 0].numpy()


@pytest.fixture
def net():
    torch.manual_seed(3)
    return _randomise_batchnorm(EnhanceNet(depth=2, width=8), seed=4)


@pytest.mark.parametrize("shape", [(2, 2), (2, 7), (9, 4), (37, 53), (64, 29)])
def test_inference_net_equals_the_reference(net, shape):
    image = _image(shape)
    with torch.inference_mode():
        fast = InferenceNet(net)(torch.from_numpy(image)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(fast, _reference(net, image), rtol=0, atol=1e-5)


def test_inference_net_takes_batches_and_rejects_bad_shapes(net):
    batch = np.stack([_image((11, 13), seed=s) for s in range(3)])[:, None]
    with torch.inference_mode():
        out = InferenceNet(net)(torch.from_numpy(batch)).numpy()
    for i in range(3):
        np.testing.assert_allclose(out[i, 0], _reference(net, batch[i, 0]), atol=1e-5)
    with pytest.raises(ValueError, match=r"ny, nx >= 2, got \(1, 1, 1, 5\)"):
        InferenceNet(net)(torch.zeros(1, 1, 1, 5))
    with pytest.raises(TypeError, match="net must be an EnhanceNet, got Conv2d"):
        InferenceNet(torch.nn.Conv2d(1, 1, 3))


def test_phase_kernels_equal_upsampling_then_reflect_conv():
    # A 3x3 convolution on the nearest-neighbour x2 grid is four 2x2 convolutions on the edge-replicated grid.
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 2, 3, 3, generator=generator, dtype=torch.float64)
    x = torch.randn(1, 2, 5, 6, generator=generator, dtype=torch.float64)
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    expected = F.conv2d(F.pad(up, (1, 1, 1, 1), mode="reflect"), weight)
    phases = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), phase_kernels(weight))
    for a in (0, 1):
        for b in (0, 1):
            p = 2 * a + b
            got = phases[:, 3 * p : 3 * p + 3, a : a + 5, b : b + 6]
            torch.testing.assert_close(got, expected[:, :, a::2, b::2], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"shape \(out, in, 3, 3\), got \(3, 2, 5, 5\)"):
        phase_kernels(torch.zeros(3, 2, 5, 5))


@pytest.mark.filterwarnings("ignore:tile=\\d+ is smaller than the network's reach")  # many tiles on purpose
@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("tile", [None, 9])
@pytest.mark.parametrize("shape", [(23, 31), (40, 12)])
def test_enhance_fast_paths_equal_reference_tiled_and_whole(net, shape, tile, backend):
    image = _image(shape, seed=1)
    out = enhance(image, "intensity", network=net, qs_level=1.0, tile=tile, backend=backend)
    np.testing.assert_allclose(out, _reference(net, image), rtol=0, atol=1e-4)


def test_auto_backend_choice(net):
    from enhance.inference.pipeline import auto_backend

    assert auto_backend(net, precision="float32", device="cpu") == "onnx"  # onnxruntime is installed here
    assert auto_backend(net, precision="bfloat16", device="cpu") == "torch"
    assert auto_backend(net, precision="float32", device="cuda") == "torch"
    assert auto_backend(torch.nn.Identity(), precision="float32", device="cpu") == "torch"


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_prepared_runner_follows_changed_weights(net, backend):
    # The InferenceNet / ONNX session is kept between calls, but never outlives a change of weights.
    image = _image((12, 15), seed=11)
    before = enhance(image, "intensity", network=net, qs_level=1.0, backend=backend)
    with torch.no_grad():
        net.conv_out.bias.add_(0.5)
    after = enhance(image, "intensity", network=net, qs_level=1.0, backend=backend)
    np.testing.assert_allclose(after, before + 0.5, atol=1e-5)
    np.testing.assert_allclose(after, _reference(net, image), atol=1e-4)


@pytest.mark.filterwarnings("ignore:tile=\\d+ is smaller than the network's reach")  # many tiles on purpose
def test_the_paper_model_through_enhance_equals_the_reference():
    torch.manual_seed(0)
    paper = _randomise_batchnorm(EnhanceNet(depth=5, width=64), seed=2)
    image = _image((24, 19), seed=5)
    out = enhance(image, "intensity", network=paper, qs_level=1.0, tile=11)
    reference = _reference(paper, image)
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-4 * max(1.0, np.abs(reference).max()))


@pytest.mark.parametrize(("precision", "bound"), [("bfloat16", 3e-2), ("float16", 4e-3)])
def test_reduced_precision_error_is_bounded(net, precision, bound):
    # CPU autocast emulates what CUDA runs. Stated error (docs, README, bench): ~1e-2 for bfloat16 and
    # ~1e-3 for float16, relative to the output level (1 = quiet Sun).
    image = _image((40, 33), seed=2)
    exact = enhance(image, "intensity", network=net, qs_level=1.0, backend="torch")
    reduced = enhance(image, "intensity", network=net, qs_level=1.0, precision=precision)
    error = np.abs(reduced - exact).max() / np.abs(exact).max()
    assert 0 < error < bound
    assert reduced.dtype == np.float32


def test_bad_precision_and_backend_are_named(net):
    image = _image((8, 8))
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'bfloat16', 'float16', got 'fp8'"):
        enhance(image, "intensity", network=net, precision="fp8")
    with pytest.raises(ValueError, match="backend must be one of 'auto', 'torch', 'onnx', got 'tf'"):
        enhance(image, "intensity", network=net, backend="tf")
    with pytest.raises(ValueError, match="onnx backend runs in float32; precision='bfloat16'"):
        enhance(image, "intensity", network=net, backend="onnx", precision="bfloat16")
    with pytest.raises(TypeError, match="backend='onnx' needs a network of this package or an OnnxNetwork, got Ident"):
        enhance(image, "intensity", network=torch.nn.Identity(), backend="onnx")


@pytest.mark.parametrize("shape", [(2, 2), (23, 31), (64, 29)])
def test_onnx_export_equals_pytorch(net, shape):
    image = _image(shape, seed=6)
    got = onnx_network(net)(image[None, None])[0, 0]
    np.testing.assert_allclose(got, _reference(net, image), rtol=0, atol=1e-4)


@pytest.mark.filterwarnings("ignore:tile=\\d+ is smaller than the network's reach")  # many tiles on purpose
def test_onnx_file_round_trip_and_enhance_backends_agree(tmp_path, net):
    path = export_onnx(net, tmp_path / "net.onnx", kind="blos")
    with pytest.raises(FileExistsError, match="exists"):
        export_onnx(net, path, kind="blos")
    loaded = load_onnx(path)
    assert (loaded.depth, loaded.width, loaded.kind) == (2, 8, "blos")
    image = 300 * _image((37, 26), seed=7)  # gauss
    image[3:6, 4:9] = np.nan
    expected = enhance(image, "blos", network=net, tile=9)
    for result in (
        enhance(image, "blos", network=loaded),
        enhance(image, "blos", network=loaded, tile=9),
        enhance(image, "blos", network=net, backend="onnx", tile=20),
    ):
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-4 * np.nanmax(np.abs(expected)))
        np.testing.assert_array_equal(np.isnan(result), np.isnan(expected))
    with pytest.raises(TypeError, match="backend='torch' needs a torch network, got an OnnxNetwork"):
        enhance(image, "blos", network=loaded, backend="torch")
    with pytest.raises(FileNotFoundError, match="ONNX file not found"):
        load_onnx(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="is not a readable ONNX model"):
        OnnxNetwork((tmp_path / "bad.onnx").write_bytes(b"not onnx") and tmp_path / "bad.onnx")


def test_onnx_runner_needs_no_torch(tmp_path, net):
    # Import the runner through the package, with torch made unimportable, and run the exported file.
    path = export_onnx(net, tmp_path / "net.onnx")
    image = _image((15, 12), seed=8)
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "expected.npy", _reference(net, image))
    script = f"""
import sys
import numpy as np
sys.modules["torch"] = None  # any 'import torch' now fails
import enhance.runtime.export as export
image = np.load({str(tmp_path / "image.npy")!r})
out = export.load_onnx({str(path)!r})(image[None, None])[0, 0]
assert np.abs(out - np.load({str(tmp_path / "expected.npy")!r})).max() < 1e-4
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def _fits(path, image):
    header = fits.Header({"CDELT1": 0.504, "CDELT2": 0.504, "CRPIX1": 5.5, "CRPIX2": 6.5, "BUNIT": "I/Ic"})
    fits.PrimaryHDU(image, header=header).writeto(path)
    return str(path)


def test_cli_export_then_run_with_the_onnx_file(tmp_path, net, capsys):
    weights = str(save_weights(net, tmp_path / "tiny.safetensors", kind="intensity"))
    onnx_path = tmp_path / "tiny.onnx"
    assert main(["export", "--onnx", "--weights", weights, "-o", str(onnx_path)]) == 0
    assert f"wrote {onnx_path}" in capsys.readouterr().out
    assert load_onnx(onnx_path).kind == "intensity"
    assert main(["export", "--onnx", "--weights", weights, "-o", str(onnx_path)]) != 0
    assert "exists" in capsys.readouterr().err

    source = _fits(tmp_path / "in.fits", _image((16, 14), seed=9))
    outputs = {}
    for name, extra in {"torch": ["--weights", weights], "onnx": ["--weights", str(onnx_path)],
                        "bf16": ["--weights", weights, "--precision", "bfloat16"]}.items():  # fmt: skip
        target = tmp_path / f"{name}.fits"
        assert main(["run", source, "-o", str(target), *extra]) == 0, capsys.readouterr().err
        outputs[name] = fits.getdata(target)
    np.testing.assert_allclose(outputs["onnx"], outputs["torch"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(outputs["bf16"], outputs["torch"], rtol=0, atol=3e-2)
    magnetogram = tmp_path / "m.fits"
    field = (_image((16, 14), seed=9) - 1) * 500  # gauss, both signs: a magnetogram's values
    fits.PrimaryHDU(field, header=fits.Header({"CDELT1": 0.504, "BUNIT": "G"})).writeto(magnetogram)
    assert main(["run", str(magnetogram), "-o", str(tmp_path / "x.fits"), "--weights", str(onnx_path)]) != 0
    assert "holds a intensity network, but the data are blos" in capsys.readouterr().err


def test_cli_export_of_shipped_models(tmp_path, capsys, data_dir):
    from enhance.models.pretrained import ship
    from enhance.models.weights import save_weights

    torch.manual_seed(0)
    trained = save_weights(EnhanceNet(depth=1, width=32), tmp_path / "light.safetensors", kind="blos")
    ship(trained, "blos", "paper-light", card={})  # into the temporary package data folder
    out = tmp_path / "onnx"
    out.mkdir()
    assert main(["export", "--onnx", "-o", str(out)]) == 0  # all: the shipped ones, the others skipped
    assert sorted(p.name for p in out.iterdir()) == ["enhance_paper-light_blos.onnx"]
    assert load_onnx(out / "enhance_paper-light_blos.onnx").depth == 1
    assert "skipped full intensity: not shipped" in capsys.readouterr().out
    # Asking for one unshipped model is an error, in one line.
    assert main(["export", "--onnx", "-o", str(out), "--model", "full", "-t", "blos"]) != 0
    err = capsys.readouterr().err
    assert err.count("enhance: error:") == 1
    assert "not trained yet" in err
    assert main(["export", "--onnx", "-o", str(tmp_path / "none"), "--model", "full"]) != 0
    assert "-o must be an existing directory" in capsys.readouterr().err


def test_fold_batchnorm_is_still_the_reference(net):
    # InferenceNet starts from fold_batchnorm; both must agree with the unfolded eval-mode network.
    image = _image((13, 17), seed=10)
    with torch.no_grad():
        folded = fold_batchnorm(net)(torch.from_numpy(image)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(folded, _reference(net, image), atol=1e-5)


def _graph_ops(model):
    return [(node.domain, node.op_type) for node in model.graph.node]


@pytest.mark.parametrize("width", [8, 32])
def test_blocked_layout_session_equals_the_plain_graph(width):
    from enhance.runtime.ort_blocked import blocked_graph

    torch.manual_seed(5)
    net = _randomise_batchnorm(EnhanceNet(depth=2, width=width), seed=6)
    plain, blocked = onnx_network(net, blocked=False), onnx_network(net)
    assert plain.layout == "plain"
    batch = np.stack([_image((41, 35), seed=s) for s in range(2)])[:, None]  # odd sizes, a batch of two
    np.testing.assert_allclose(blocked(batch), plain(batch), rtol=0, atol=1e-5)
    np.testing.assert_allclose(blocked(batch)[0, 0], _reference(net, batch[0, 0]), rtol=0, atol=1e-4)
    graph = blocked_graph(onnx_model(net).SerializeToString())
    if graph is None:
        assert blocked.layout == "plain"
        pytest.skip("onnxruntime chose no blocked layout on this CPU: the plain graph runs")
    assert blocked.layout == "blocked"
    ops = _graph_ops(graph)
    assert ("", "Add") not in ops  # every residual sum is the Sum input of its blocked convolution
    if width == 32:  # a multiple of the block size (8 or 16): every 3x3 convolution is padded in place
        assert ("com.microsoft.nchwc", "ReorderInput") not in ops
        assert ops.count(("", "Pad")) == 2 * 2 + 3  # the input's and the trunk's too, as written


def test_a_blocked_graph_that_disagrees_is_not_used(monkeypatch):
    from onnx import numpy_helper

    import enhance.runtime.ort_blocked as ort_blocked

    torch.manual_seed(7)
    net = EnhanceNet(depth=1, width=16)
    original = ort_blocked.blocked_graph

    def corrupted(model, **kwargs):
        graph = original(model, **kwargs)
        if graph is None:  # nothing to corrupt on this CPU: hand back a wrong plain graph instead
            graph = onnx_model(net)
        for i, initializer in enumerate(graph.graph.initializer):
            values = numpy_helper.to_array(initializer)
            if values.dtype == np.float32 and values.size > 100:
                graph.graph.initializer[i].CopyFrom(numpy_helper.from_array(values * 1.01, initializer.name))
                break
        return graph

    monkeypatch.setattr(ort_blocked, "blocked_graph", corrupted)
    runner = onnx_network(net)
    assert runner.layout == "plain"
    image = _image((20, 24), seed=9)
    np.testing.assert_allclose(runner(image[None, None])[0, 0], _reference(net, image), rtol=0, atol=1e-4)
