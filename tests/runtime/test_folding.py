"""Weights to inference arrays with numpy: phase kernels reproduce a transposed convolution exactly, BatchNorm
folding is the eval-mode BatchNorm, and damaged weights files are refused naming the file."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

from enhance.models.hybrid import WienerEnhanceNet
from enhance.models.network import fold_batchnorm
from enhance.models.weights import save_weights
from enhance.runtime.folding import (
    BN_EPS,
    check_finite_state,
    fold_state,
    folded_arrays,
    phase_kernels_numpy,
    read_weights,
)
from enhance.runtime.graph import phase_kernels


def _transposed_kernel(phases, out_channels):
    """The (in, out, 4, 4) stride-2 transposed-convolution kernel made of the four 2x2 phase kernels.

    Output pixel 2y + a reads input rows y + a + r - 1 (r = 0, 1) through phase row r, which is kernel row
    3 - a - 2 r of a stride-2 transposed convolution with padding 1 (o = 2 i - 1 + k)."""
    p = phases.reshape(2, 2, out_channels, -1, 2, 2)  # (a, b, out, in, r, c)
    kernel = np.zeros((p.shape[3], out_channels, 4, 4))
    for a in (0, 1):
        for b in (0, 1):
            for r in (0, 1):
                for c in (0, 1):
                    kernel[:, :, 3 - a - 2 * r, 3 - b - 2 * c] = p[a, b, :, :, r, c].T
    return kernel


def test_phase_kernels_reproduce_a_transposed_convolution_exactly():
    """Nearest-neighbour x2 then a reflect-padded 3x3 convolution is one stride-2 transposed convolution of the
    edge-replicated input with a 4x4 kernel assembled from the phase kernels (on the whole image, edges included)."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(3, 2, 3, 3))
    x = torch.from_numpy(rng.normal(size=(1, 2, 7, 6)))
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    expected = F.conv2d(F.pad(up, (1, 1, 1, 1), mode="reflect"), torch.from_numpy(weight))
    kernel = torch.from_numpy(_transposed_kernel(phase_kernels_numpy(weight).astype(np.float64), 3))
    # Padding the input by one replicated pixel shifts the transposed convolution's output by 2: padding 1 + 2.
    got = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, stride=2, padding=3)
    assert got.shape == expected.shape == (1, 3, 14, 12)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)  # float32 phase kernels of float64 weights


def test_numpy_and_torch_phase_kernels_agree():
    weight = np.random.default_rng(1).normal(size=(8, 4, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(phase_kernels_numpy(weight), phase_kernels(torch.from_numpy(weight)).numpy(), atol=1e-6)


def test_a_centred_delta_becomes_nearest_neighbour_up_sampling():
    """Every phase of a centred delta reads its own low-resolution pixel, and each phase keeps the kernel's sum."""
    weight = np.zeros((1, 1, 3, 3))
    weight[0, 0, 1, 1] = 1.0
    phases = phase_kernels_numpy(weight)
    for a in (0, 1):
        for b in (0, 1):
            expected = np.zeros((2, 2))
            expected[1 - a, 1 - b] = 1.0  # read at (y + a, x + b) of the padded grid: pixel (y, x) itself
            np.testing.assert_array_equal(phases[2 * a + b, 0], expected)
    random = np.random.default_rng(2).normal(size=(2, 3, 3, 3))
    sums = phase_kernels_numpy(random).reshape(4, 2, 3, 4).sum(axis=-1)
    np.testing.assert_allclose(sums, np.broadcast_to(random.sum(axis=(2, 3)), (4, 2, 3)), atol=1e-5)
    with pytest.raises(ValueError, match=r"shape \(out, in, 3, 3\), got \(2, 3, 5\)"):
        phase_kernels_numpy(np.zeros((2, 3, 5)))


def _numpy_state(net):
    return {name: value.detach().numpy() for name, value in net.state_dict().items()}


def test_folded_convolution_is_the_convolution_then_eval_batchnorm(tiny_net):
    assert tiny_net.blocks[0].bn1.eps == BN_EPS
    arrays = fold_state(_numpy_state(tiny_net), depth=2)
    x = torch.rand(1, 8, 9, 9, generator=torch.Generator().manual_seed(0))
    block = tiny_net.blocks[1]
    weight, bias = (torch.from_numpy(arrays[f"blocks.1.conv2.{part}"]) for part in ("weight", "bias"))
    with torch.no_grad():
        expected = block.bn2(block.conv2(x))  # the convolution pads by reflection
        got = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weight, bias)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_fold_state_equals_pytorchs_fold_batchnorm(tiny_net):
    arrays = fold_state(_numpy_state(tiny_net), depth=2)
    reference = _numpy_state(fold_batchnorm(tiny_net))
    for name, value in arrays.items():
        if name != "conv_up.phases":
            assert value.dtype == np.float32
            np.testing.assert_allclose(value, reference[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(arrays["conv_up.phases"], phase_kernels_numpy(arrays["conv_up.weight"]))


def test_read_weights_gives_the_state_and_metadata_or_only_the_metadata(weights, tiny_net):
    state, metadata = read_weights(weights)
    assert metadata["kind"] == "intensity"
    assert set(state) == set(tiny_net.state_dict())
    np.testing.assert_array_equal(state["conv_in.weight"], tiny_net.conv_in.weight.detach().numpy())
    empty, same = read_weights(weights, tensors=False)
    assert empty == {}
    assert same == metadata


def test_unreadable_and_missing_weights_files_are_refused_naming_them(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="garbage.safetensors is not a readable safetensors weights file") as info:
        read_weights(garbage)
    assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        read_weights(tmp_path / "missing.safetensors")


def test_check_finite_state_names_the_first_bad_tensor_and_ignores_integers():
    check_finite_state("w.safetensors", {"steps": np.array([2**62], np.int64), "a": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="w.safetensors: tensor b holds 2 NaN or infinite values"):
        check_finite_state("w.safetensors", {"a": np.ones(2), "b": np.array([np.inf, -np.inf, 0.0])})


def test_folded_arrays_of_a_weights_file(tmp_path, tiny_net):
    path = save_weights(tiny_net, tmp_path / "net.safetensors", kind="blos", metadata={"config": json.dumps({"lr": 1})})
    arrays, depth, width, metadata = folded_arrays(path)
    assert (depth, width, metadata["kind"]) == (2, 8, "blos")
    assert metadata["config"] == {"lr": 1}  # the training record, parsed
    np.testing.assert_allclose(arrays["conv_out.bias"], _numpy_state(fold_batchnorm(tiny_net))["conv_out.bias"])


def test_folded_arrays_refuses_nan_weights_and_other_architectures(tmp_path, weights):
    state, metadata = read_weights(weights)
    state["blocks.0.conv1.weight"][0, 0, 0, 0] = np.nan
    damaged = tmp_path / "nan.safetensors"
    save_file(state, str(damaged), metadata=metadata)
    with pytest.raises(ValueError, match=r"nan.safetensors: tensor blocks.0.conv1.weight holds 1 NaN"):
        folded_arrays(damaged)
    wiener = save_weights(WienerEnhanceNet(depth=1, width=4, taps=5), tmp_path / "wiener.safetensors", kind="intensity")
    with pytest.raises(ValueError, match="holds a 'wiener-enhance' network, not the paper's Enhance"):
        folded_arrays(wiener)
