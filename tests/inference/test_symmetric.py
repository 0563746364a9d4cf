"""Inference averaged over the 8 rotations and flips (D4), and the non-negative continuum."""

import numpy as np
import pytest
import torch

from enhance import enhance
from enhance.inference.pipeline import RunOptions, enhance_array
from enhance.inference.tiling import dihedral_average

# The 8 elements of D4 on a (ny, nx) array and on its (2 ny, 2 nx) enhancement: k quarter turns, maybe transposed.
GROUP = [(k, t) for t in (False, True) for k in range(4)]


def _apply(array, turns, transpose):
    return np.rot90(array.T if transpose else array, turns)


class _Residual(torch.nn.Module):
    """A continuum-like network: the input replicated x2 plus a small random network's output (positive)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest") + 0.1 * self.net(x)


def _enhancement_scale(out, image):
    """RMS of the enhancement: what the network adds to a plain 2x2 replication of the input."""
    return float(np.sqrt(np.mean((out - np.kron(image, np.ones((2, 2)))) ** 2)))


@pytest.mark.parametrize("kind", ["intensity", "blos"])
def test_symmetric_inference_is_equivariant_under_d4(tiny_net, kind):
    rng = np.random.default_rng(21)
    shape = (19, 26)  # not square: rotations by 90 degrees change the shape
    image = 1 + 0.05 * rng.standard_normal(shape) if kind == "intensity" else 400 * rng.standard_normal(shape)
    run = {"network": _Residual(tiny_net), "symmetric": True, "backend": "torch"}
    if kind == "intensity":
        run["qs_level"] = 1.0
    out = enhance(image, kind, **run)
    plain = enhance(image, kind, **{**run, "symmetric": False})
    scale = _enhancement_scale(plain, image)
    worst = 0.0
    for turns, transpose in GROUP[1:]:
        moved = enhance(np.ascontiguousarray(_apply(image, turns, transpose)), kind, **run)
        worst = max(worst, float(np.abs(moved - _apply(out, turns, transpose)).max()) / scale)
        # The random network alone is not equivariant: without averaging the same check fails clearly.
        plain_moved = enhance(
            np.ascontiguousarray(_apply(image, turns, transpose)), kind, **{**run, "symmetric": False}
        )
        assert np.abs(plain_moved - _apply(plain, turns, transpose)).max() > 1e-3 * scale
    assert worst < 1e-5


def test_dihedral_average_is_the_mean_of_the_eight_back_transformed_runs(tiny_net):
    image = np.random.default_rng(22).normal(1, 0.05, (12, 15)).astype(np.float32)

    def run(x):
        with torch.no_grad():
            return tiny_net(torch.from_numpy(np.ascontiguousarray(x))[None, None])[0, 0].numpy()

    back = [np.rot90(run(np.ascontiguousarray(_apply(image, k, t))), -k) for k, t in GROUP]
    expected = np.mean([b.T if t else b for b, (_, t) in zip(back, GROUP, strict=True)], axis=0)
    np.testing.assert_allclose(dihedral_average(run, image), expected, rtol=1e-6, atol=1e-6)
    # A run that is already equivariant (2x2 replication) comes back unchanged.
    replicate = dihedral_average(lambda x: np.kron(x, np.ones((2, 2), np.float32)), image)
    np.testing.assert_allclose(replicate, np.kron(image, np.ones((2, 2))), rtol=1e-6)


@pytest.mark.filterwarnings("ignore:tile=\\d+ is smaller than the network's reach")  # many tiles on purpose
def test_symmetric_option_travels_in_run_options_and_default_is_unchanged(tiny_net):
    tiny_net = _Residual(tiny_net)
    image = np.random.default_rng(23).normal(1, 0.05, (16, 16))
    default = enhance(image, "intensity", network=tiny_net, qs_level=1.0)
    explicit = enhance_array(image, kind="intensity", network=tiny_net, options=RunOptions(qs_level=1.0))
    np.testing.assert_array_equal(default, explicit)
    symmetric = enhance_array(image, kind="intensity", network=tiny_net,
                              options=RunOptions(qs_level=1.0, symmetric=True))  # fmt: skip
    assert not np.array_equal(symmetric, default)
    tiled = enhance_array(image, kind="intensity", network=tiny_net,
                          options=RunOptions(qs_level=1.0, symmetric=True, tile=7))  # fmt: skip
    np.testing.assert_allclose(tiled, symmetric, rtol=0, atol=1e-5)


class _Negative(torch.nn.Module):
    """x2 replication minus a constant: negative output wherever the input is below it."""

    def forward(self, x):
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest") - 0.3


def test_continuum_output_is_never_negative_where_the_input_is_not():
    image = np.array([[1.0, 0.1, -0.5], [0.2, 1.0, np.nan]])
    out = enhance(image, "intensity", network=_Negative(), qs_level=1.0, force=True, backend="torch")
    replicated = np.kron(image, np.ones((2, 2))) - 0.3
    nonnegative_input = np.kron(np.nan_to_num(image, nan=-1) >= 0, np.ones((2, 2), bool))
    expected = np.where(nonnegative_input & (replicated < 0), 0.0, replicated)
    expected[np.kron(np.isnan(image), np.ones((2, 2), bool))] = np.nan
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    assert out[0, 4] == pytest.approx(-0.8)  # under a negative input pixel it may stay negative
    # Magnetograms keep their sign.
    field = np.array([[100.0, -200.0], [300.0, 0.0]])
    signed = enhance(field, "blos", network=_Negative(), backend="torch")
    np.testing.assert_allclose(signed, np.kron(field, np.ones((2, 2))) - 300.0, rtol=1e-6)


def test_cli_run_symmetric_matches_the_library(weights, tmp_path):
    from astropy.io import fits

    from enhance.cli import main
    from enhance.data import sample_path
    from enhance.models.pretrained import load_network

    out = tmp_path / "out.fits"
    assert main(["run", str(sample_path("intensity")), "-o", str(out), "--weights", weights, "--symmetric"]) == 0
    expected = enhance(str(sample_path("intensity")), "intensity", network=load_network(weights), symmetric=True)
    plain = enhance(str(sample_path("intensity")), "intensity", network=load_network(weights))
    np.testing.assert_allclose(fits.getdata(out), expected.data, rtol=1e-5, atol=1e-5)
    assert not np.allclose(fits.getdata(out), plain.data, rtol=1e-5, atol=1e-5)
