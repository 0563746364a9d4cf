"""The runner protocol's shared pieces: the dihedral group D4 on images and x2 outputs, and its average."""

import numpy as np
import pytest
import torch

from enhance.models.runner import DIHEDRAL, Dihedral, dihedral_average, dihedral_inverse, dihedral_transform, family_of


def _image(ny=5, nx=7, seed=0):
    return np.random.default_rng(seed).standard_normal((ny, nx)).astype(np.float32)


def _replicate(x):
    return np.kron(x, np.ones((2, 2), np.float32))


class _Shift:
    """A runner that is not equivariant: it replicates each pixel and adds a ramp along x."""

    margin, needs_noise, noise_unit, noise_nodes, symmetric, kind, family = 0, False, None, (), False, None, "test"

    def __call__(self, batch):
        out = np.kron(batch, np.ones((2, 2), np.float32))
        return out + np.arange(out.shape[-1], dtype=np.float32)

    def bind(self, noise):
        return self

    def one_pass(self):
        return self


def test_the_group_has_eight_distinct_elements_on_a_generic_image():
    image = _image()
    seen = {dihedral_transform(image, g).tobytes() + bytes(dihedral_transform(image, g).shape) for g in DIHEDRAL}
    assert len(DIHEDRAL) == 8
    assert len(seen) == 8


@pytest.mark.parametrize("element", DIHEDRAL)
def test_the_inverse_undoes_each_element_on_the_x2_grid(element):
    image = _image()
    out = _replicate(dihedral_transform(image, element))  # a x2 map that is exactly equivariant
    assert np.array_equal(dihedral_inverse(out, element), _replicate(image))


@pytest.mark.parametrize("element", DIHEDRAL)
def test_numpy_and_torch_give_the_same_transform(element):
    image = _image()
    tensor = torch.from_numpy(image)
    assert np.array_equal(dihedral_transform(tensor, element).numpy(), dihedral_transform(image, element))
    out = _replicate(image)
    assert np.array_equal(dihedral_inverse(torch.from_numpy(out), element).numpy(), dihedral_inverse(out, element))


def test_the_average_of_an_equivariant_map_is_the_map():
    image = _image()
    assert np.allclose(dihedral_average(_replicate, image), _replicate(image), atol=1e-6)


def test_the_average_of_any_map_is_equivariant():
    image = _image(6, 6)
    runner = Dihedral(_Shift())
    base = runner(image[None, None])[0, 0]
    for element in DIHEDRAL:
        moved = runner(dihedral_transform(image, element)[None, None])[0, 0]
        assert np.allclose(dihedral_inverse(moved, element), base, atol=1e-5)
    assert not np.allclose(_Shift()(image), _Shift()(image.T).T)  # one pass is not


def test_the_average_of_a_ramp_is_its_mean_over_the_group():
    # the ramp 0..2nx-1 along x, averaged over D4 of a square, is the constant (2n - 1) / 2 (each axis, both signs)
    n = 4
    averaged = Dihedral(_Shift())(np.zeros((1, 1, n, n), np.float32))[0, 0]
    assert np.allclose(averaged, (2 * n - 1) / 2, atol=1e-6)


def test_the_wrapper_keeps_the_runners_facts_and_says_it_is_symmetric():
    runner = Dihedral(_Shift())
    assert runner.symmetric
    assert runner.averaged() is runner
    assert runner.margin == 0
    assert runner.family == "test"
    assert isinstance(runner.one_pass(), _Shift)
    assert isinstance(runner.bind(1.0), Dihedral)


class _WholeImage(_Shift):
    """A one-pass runner with a whole-image route; ``own`` says whether it can average itself."""

    def __init__(self, *, own, symmetric=False):
        self.own, self.symmetric = own, symmetric

    def run_image(self, image, **options):
        return self(image[None, None])[0, 0]

    def averaged(self):
        return _WholeImage(own=True, symmetric=True) if self.own else Dihedral(self)

    def __call__(self, batch):
        return super().__call__(batch) + (1000.0 if self.symmetric else 0.0)  # marks its own average


def test_the_wrapper_never_offers_one_passs_whole_image_route():
    runner = Dihedral(_WholeImage(own=False))
    assert not hasattr(runner, "run_image")  # tiling would run one pass where the average was asked for
    image = _image(4, 4)
    assert np.allclose(runner(image[None, None])[0, 0], (2 * 4 - 1) / 2 + _replicate(image), atol=1e-5)


def test_the_wrapper_runs_a_runner_that_averages_itself_its_own_way():
    runner = Dihedral(_WholeImage(own=True))
    image = _image(4, 4)
    assert runner.run_image.__self__.symmetric  # the runner's own average's whole-image route
    assert np.allclose(runner.run_image(image), _Shift()(image[None, None])[0, 0] + 1000.0)
    assert np.allclose(runner(image[None, None]), _Shift()(image[None, None]) + 1000.0)


def test_family_of():
    assert family_of(_Shift()) == "test"
    assert family_of(object()) is None
