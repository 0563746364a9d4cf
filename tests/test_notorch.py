"""Inference without PyTorch: ``pip install 'solar-enhance[onnx]'`` runs ``enhance run`` on onnxruntime.

``make test-notorch`` runs this file in a venv of its own, built with ``pip install '.[onnx]' pytest``
(no torch), with ``--noconftest`` (the shared fixtures need torch). The main suite runs it too, where
``enhance run`` goes through PyTorch's export: both must give the numbers below, which were measured
with the PyTorch path (the numpy-folded graph agrees with it to float32 rounding).
"""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from enhance.cli import main
from enhance.data import sample_path

LIGHT_INTENSITY = (0.9511621059137396, 1.0574473142623901, 1.0011613368988037, 1.3372738361358643)
LIGHT_BLOS = (10.571358730467596, 19.801124572753906, 205.227294921875, 1977.9434814453125)
#: ``enhance run SAMPLE --model MODEL`` on the shipped cut-outs: mean, pixels [100, 150] and [217, 33], max |value|.
EXPECTED = {
    ("intensity", "paper-light"): (0.9511866641700267, 1.0558207035064697, 1.0023969411849976, 1.3825074434280396),
    ("blos", "paper-light"): (10.127817837452167, 33.8814697265625, 171.37522888183594, 2025.114501953125),
    ("intensity", "light"): LIGHT_INTENSITY,
    ("blos", "light"): LIGHT_BLOS,
}
#: 3e-5 of the networks' units (I/Ic, or kG: 3e-2 G). The numbers were measured on one machine; another CPU's
#: float32 kernels sum each convolution's products in another order (AVX2 or AVX-512, FMA, the GEMM's
#: blocking), which moves a pixel by up to about n x 6e-8 of the signal for n products per sum (hundreds here):
#: a few 1e-5, far below what any change of model, weights or normalisation gives (1e-3 and more).
TOLERANCE = {"intensity": 3e-5, "blos": 3e-2}
HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.parametrize(("kind", "model"), sorted(EXPECTED))
def test_enhance_run_reproduces_the_torch_numbers(tmp_path, kind, model):
    out = tmp_path / f"{kind}.fits"
    assert main(["run", str(sample_path(kind)), "-o", str(out), "--model", model, "-q"]) == 0
    data = fits.getdata(out).astype(np.float64)
    assert data.shape == (400, 400)
    found = (data.mean(), data[100, 150], data[217, 33], np.abs(data).max())
    np.testing.assert_allclose(found, EXPECTED[kind, model], rtol=0, atol=TOLERANCE[kind])
    header = fits.getheader(out)
    assert header["ENH_KIND"] == kind
    assert header["CRPIX1"] == pytest.approx(200.5)


@pytest.mark.skipif(HAS_TORCH, reason="PyTorch is installed here; make test-notorch runs this without it")
def test_torch_is_never_imported():
    code = (
        "import sys, tempfile; from enhance.cli import main; from enhance.data import sample_path\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    assert main(['run', str(sample_path('blos')), '-o', d + '/o.fits', '--model', 'light', '-q']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_enhance_run_on_onnxruntime_imports_no_framework(tmp_path, device):
    """The first pixel fast: with PyTorch installed or not, ``enhance run --model light`` on onnxruntime (the
    CPU's default back-end) builds the model with numpy and imports neither PyTorch, Dask nor matplotlib."""
    pytest.importorskip("onnxruntime")
    from enhance.inference import pipeline

    if device == "auto" and pipeline._gpu_possible():  # noqa: SLF001 - 'auto' would pick the GPU, with PyTorch
        pytest.skip("a GPU driver is loaded here: device 'auto' runs PyTorch on the GPU")
    code = (
        "import sys; from enhance.cli import main; from enhance.data import sample_path\n"
        f"assert main(['run', str(sample_path('intensity')), '-o', {str(tmp_path / 'o.fits')!r}, '--model', 'light',"
        f" '--device', {device!r}, '-q']) == 0\n"
        "print(sorted(m for m in ('torch', 'dask', 'distributed', 'matplotlib', 'pandas', 'sunpy.map')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout
    data = fits.getdata(tmp_path / "o.fits").astype(np.float64)
    found = (data.mean(), data[100, 150], data[217, 33], np.abs(data).max())
    np.testing.assert_allclose(found, EXPECTED["intensity", "light"], rtol=0, atol=TOLERANCE["intensity"])


@pytest.mark.skipif(not HAS_TORCH, reason="compares with PyTorch's export")
@pytest.mark.parametrize("model", ["light", "full"])
def test_default_models_built_without_torch_equal_the_export_of_pytorch(model):
    """The graph numpy builds from a default model's weights runs bit for bit as PyTorch's export of it."""
    pytest.importorskip("onnxruntime")
    from enhance.inference.pipeline import RunOptions, enhance_array, resolve_network
    from enhance.io import read_fits
    from enhance.runtime.export import OnnxNetwork

    image = read_fits(sample_path("blos"))[0]
    built = resolve_network("blos", model=model, options=RunOptions(device="cpu"))
    exported = resolve_network("blos", model=model)  # the PyTorch module, exported in memory by backend='onnx'
    assert isinstance(built, OnnxNetwork)
    assert not isinstance(exported, OnnxNetwork)
    a = enhance_array(image, kind="blos", network=built, options=RunOptions(noise=10.0))
    b = enhance_array(image, kind="blos", network=exported, options=RunOptions(backend="onnx", noise=10.0))
    assert np.array_equal(a, b)


@pytest.mark.skipif(HAS_TORCH, reason="PyTorch is installed here; make test-notorch runs this without it")
def test_training_says_it_needs_torch(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "pairs.h5")]) == 1
    assert "pip install 'solar-enhance[torch]'" in capsys.readouterr().err


def test_onnx_metadata_and_the_documented_snippet_reproduce_enhance_run(tmp_path):
    """The onnxruntime snippet of `enhance.runtime.export` (module docstring), run on an exported file."""
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from enhance.observation.quiet_sun import estimate_qs_level

    assert main(["export", "--model", "paper-light", "-t", "intensity", "-o", str(tmp_path), "-q"]) == 0
    assert main(["run", str(sample_path("intensity")), "-o", str(tmp_path / "run.fits"), "--model", "paper-light"]) == 0
    # -- the snippet --
    session = ort.InferenceSession(str(tmp_path / "enhance_paper-light_intensity.onnx"))
    meta = session.get_modelmeta().custom_metadata_map  # kind, units, normalisation rule, model card
    image = fits.getdata(sample_path("intensity")).astype(np.float32)
    level = estimate_qs_level(image)  # meta["normalisation"]: divide by the quiet-Sun level, multiply back
    out = session.run(None, {"image": (image / level).astype(np.float32)[None, None]})[0][0, 0] * np.float32(level)
    out[(out < 0) & (np.repeat(np.repeat(image, 2, 0), 2, 1) >= 0)] = 0  # continuum is never negative
    # -- end --
    assert meta["kind"] == "intensity"
    assert "quiet-Sun" in meta["normalisation"]
    assert "I/Ic" in meta["units"]
    card = json.loads(meta["model_card"])
    assert (card["kind"], card["variant"]) == ("intensity", "paper-light")
    np.testing.assert_allclose(out, fits.getdata(tmp_path / "run.fits"), rtol=0, atol=1e-5)


def test_the_documented_wiener_snippet_reproduces_enhance_run(tmp_path):
    """The snippet for the default models' ONNX files (`enhance.runtime.export`): mirror, tell the noise, run."""
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from enhance.observation.quiet_sun import estimate_qs_level

    assert main(["export", "--model", "light", "-t", "intensity", "-o", str(tmp_path), "-q"]) == 0
    assert (
        main(
            [
                "run",
                str(sample_path("intensity")),
                "-o",
                str(tmp_path / "run.fits"),
                "--model",
                "light",
                "--noise",
                "1e-3",
            ]
        )
        == 0
    )  # fmt: skip  (the sample's level is 1.0: 1e-3 of it)
    # -- the snippet --
    session = ort.InferenceSession(str(tmp_path / "enhance_light_intensity.onnx"))
    meta = session.get_modelmeta().custom_metadata_map
    image = fits.getdata(sample_path("intensity")).astype(np.float32)
    level = estimate_qs_level(image)
    x = np.pad(image / level, int(meta["margin"]), mode="symmetric")[None, None].astype(np.float32)
    noise = np.array([1e-3 / level], np.float32)  # the noise per pixel in I/Ic
    out = session.run(None, {"image": x, "noise": noise})[0][0, 0] * np.float32(level)
    out[(out < 0) & (np.repeat(np.repeat(image, 2, 0), 2, 1) >= 0)] = 0
    # -- end --
    assert json.loads(meta["model_card"])["variant"] == "light"
    np.testing.assert_allclose(out, fits.getdata(tmp_path / "run.fits"), rtol=0, atol=1e-5)


def test_exported_weights_file_carries_its_own_record(tmp_path):
    pytest.importorskip("onnxruntime")
    from enhance.models.registry import shipped_path
    from enhance.runtime.export import export_weights, load_onnx

    path = export_weights(shipped_path("blos", "light"), tmp_path)
    network = load_onnx(path)
    assert network.kind == "blos"
    assert json.loads(network.metadata["model_card"])["kind"] == "blos"
    assert "kG" in network.metadata["units"]


def _altered_weights(path, *, drop=None, add=None, nan=None, **metadata):
    """The shipped paper-light continuum weights, written to ``path`` with numpy, altered as asked."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    from enhance.models.registry import shipped_path

    with safe_open(str(shipped_path("intensity", "paper-light")), framework="numpy") as handle:
        meta = dict(handle.metadata())
        state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    meta.update(metadata)
    if drop:
        del state[drop]
    if add:
        state[add] = np.zeros(3, np.float32)
    if nan:
        state[nan] = state[nan].copy()
        state[nan].flat[0] = np.nan
    save_file(state, str(path), metadata=meta)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"depth": "100000000"}, "metadata depth='100000000' is not an integer from 1 to 64"),
        ({"depth": "-1"}, "metadata depth='-1' is not an integer from 1 to 64"),
        ({"width": "1e9"}, "metadata width='1e9' is not an integer from 1 to 512"),
        ({"depth": "2"}, r"do not match its metadata \(depth 2, width 32\): 14 missing"),
        ({"width": "16"}, "do not match its metadata .* of another shape"),
        ({"drop": "blocks.0.bn1.bias"}, "1 missing .*blocks.0.bn1.bias"),
        ({"add": "extra.weight"}, "1 unexpected .*extra.weight"),
        ({"nan": "conv_up.weight"}, "tensor conv_up.weight holds 1 NaN or infinite values"),
    ],
)
def test_weights_are_checked_without_torch_before_any_graph_is_built(tmp_path, change, message):
    """The numpy path (no PyTorch) checks a weights file as `load_network` does: bounded, matching metadata."""
    from enhance.runtime.folding import folded_arrays

    path = _altered_weights(tmp_path / "bad.safetensors", **change)
    with pytest.raises(ValueError, match=message) as info:
        folded_arrays(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"depth": "-5"}, "metadata depth='-5' is not an integer from 1 to 64"),
        ({"depth": "abc"}, "metadata depth='abc' is not an integer from 1 to 64"),
        ({"width": "100000000"}, "metadata width='100000000' is not an integer from 1 to 512"),
        ({"nan": True}, "holds 1 NaN or infinite values"),
    ],
)
def test_onnx_files_are_checked_before_they_run(tmp_path, change, message):
    """An ONNX weights file is refused, naming it, for a bad architecture or non-finite weights, as safetensors are."""
    import onnx
    from onnx import numpy_helper

    from enhance.models.registry import shipped_path
    from enhance.runtime.export import load_onnx, onnx_from_weights

    model = onnx_from_weights(shipped_path("intensity", "light"), kind="intensity")
    for prop in model.metadata_props:
        prop.value = change.get(prop.key, prop.value)
    if change.get("nan"):
        init = next(i for i in model.graph.initializer if numpy_helper.to_array(i).dtype == np.float32)
        array = numpy_helper.to_array(init).copy()
        array.flat[0] = np.nan
        init.CopyFrom(numpy_helper.from_array(array, init.name))
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match=message) as info:
        load_onnx(path)
    assert str(path) in str(info.value)
