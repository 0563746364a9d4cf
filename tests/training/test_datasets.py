import astropy.units as u
import numpy as np
import pytest

from enhance.observation.degrade import bin_area
from enhance.scenes.sources import SyntheticSource, from_array
from enhance.training.datasets import (
    NOISE,
    HDF5PairDataset,
    PairDataset,
    build_hdf5,
    cut_pair,
    degrade_frame,
    make_pair,
)

SCALE = 0.126 * u.arcsec  # coarse enough for fast tests, finer than the 0.252 arcsec target grid
FAST = {"radius": 4 * u.arcsec}  # small PSF kernels: faster, and irrelevant to what these tests check


def _smooth_scene(shape=(400, 400), seed=0, correlation_px=12.0):
    """A periodic random field smooth enough that both PSFs keep its pattern."""
    rng = np.random.default_rng(seed)
    k2 = np.fft.fftfreq(shape[0])[:, None] ** 2 + np.fft.fftfreq(shape[1])[None, :] ** 2
    field = np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * np.exp(-2 * np.pi**2 * k2 * correlation_px**2)).real
    return 1.0 + 0.05 * field / field.std()


def _correlation(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_pair_shapes_dtypes_and_reproducibility():
    scene = _smooth_scene()
    x, y = make_pair(scene, SCALE, rng=np.random.default_rng(3), patch=24, **FAST)
    x2, y2 = make_pair(scene, SCALE, rng=np.random.default_rng(3), patch=24, **FAST)
    assert x.shape == (24, 24)
    assert y.shape == (48, 48)
    assert x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_input_is_the_degraded_target_for_every_augmentation():
    observed, target = degrade_frame(_smooth_scene(), SCALE)
    for seed in range(12):  # covers the 8 rotation/flip combinations
        x, y = cut_pair(observed, target, rng=np.random.default_rng(seed), patch=30)
        # Binning the target 2x2 gives the input's grid; only the PSFs differ, so the patterns agree.
        assert _correlation(x, bin_area(y, 2)) > 0.97
        # A target augmented differently (rotated by 90 degrees) does not match.
        assert _correlation(x, bin_area(np.rot90(y), 2)) < 0.8


def test_patch_positions_map_onto_the_target_grid():
    scene = np.zeros((400, 400))
    scene[200:204, 120:124] = 100.0  # a small bright square
    observed, target = degrade_frame(scene, SCALE)
    # The square lands on input pixel (50, 30): inside the patch, away from its edges.
    x, y = cut_pair(observed, target, rng=np.random.default_rng(0), patch=20, augment=False, position=(42, 17))
    peak_x = np.unravel_index(np.argmax(x), x.shape)
    peak_y = np.unravel_index(np.argmax(y), y.shape)
    assert peak_y[0] // 2 == peak_x[0]
    assert peak_y[1] // 2 == peak_x[1]


def test_noise_is_added_to_the_input_only_at_hmi_level():
    observed, target = degrade_frame(_smooth_scene(), SCALE)
    options = {"patch": 40, "augment": False, "position": (2, 3)}
    clean_x, clean_y = cut_pair(observed, target, rng=np.random.default_rng(1), noise=0.0, **options)
    noisy_x, noisy_y = cut_pair(observed, target, rng=np.random.default_rng(1), noise=NOISE["intensity"], **options)
    np.testing.assert_array_equal(clean_y, noisy_y)
    assert np.std(noisy_x - clean_x) == pytest.approx(1e-3, rel=0.1)


def test_fields_are_in_kilogauss_with_10_gauss_noise():
    source = from_array(np.full((2, 400, 400), 1500.0), SCALE, kind="bz")
    data = PairDataset(source, n_samples=4, patch=30, seed=0, **FAST)
    x, y = data.pair(1)
    np.testing.assert_allclose(y, 1.5, rtol=1e-5)
    assert np.std(x) == pytest.approx(0.010, rel=0.2)  # 10 G = 0.01 kG
    assert abs(np.mean(x) - 1.5) < 0.005


def test_sample_i_is_a_pure_function_of_seed_and_i():
    source = SyntheticSource((300, 300), pixel_scale=SCALE, scene="plage", n_frames=3, seed=1)
    forward = PairDataset(source, n_samples=8, patch=20, seed=4, patches_per_frame=3, cache_frames=1, **FAST)
    backward = PairDataset(source, n_samples=8, patch=20, seed=4, patches_per_frame=3, cache_frames=1, **FAST)
    first = [forward.pair(i) for i in range(8)]
    last = {i: backward.pair(i) for i in reversed(range(8))}
    for i in range(8):
        np.testing.assert_array_equal(first[i][0], last[i][0])
        np.testing.assert_array_equal(first[i][1], last[i][1])
    other = PairDataset(source, n_samples=8, patch=20, seed=5, patches_per_frame=3, **FAST)
    assert not np.allclose(other.pair(0)[1], first[0][1])
    x, y = forward[0]
    assert tuple(x.shape) == (1, 20, 20)
    assert tuple(y.shape) == (1, 40, 40)


def test_several_sources_and_their_kind():
    a = from_array(_smooth_scene(seed=1), SCALE, periodic=True)
    b = from_array(_smooth_scene(seed=2), SCALE, periodic=True)
    data = PairDataset([a, b], n_samples=4, patch=20, patches_per_frame=1, **FAST)
    assert {data.frame_of(i)[0] for i in range(2)} == {0, 1}
    with pytest.raises(ValueError, match="same kind"):
        PairDataset([a, from_array(np.zeros((400, 400)), SCALE, kind="blos")], n_samples=2)


def test_build_hdf5_writes_the_dataset_atomically(tmp_path):
    pytest.importorskip("h5py")
    source = from_array(_smooth_scene(), SCALE, periodic=True)
    data = PairDataset(source, n_samples=5, patch=16, seed=2, **FAST)
    path = build_hdf5(tmp_path / "pairs.h5", data, progress=False, chunk=2)
    stored = HDF5PairDataset(path)
    assert len(stored) == 5
    assert stored.attrs["kind"] == "intensity"
    assert stored.attrs["unit"] == "I/Ic"
    assert stored.attrs["noise"] == pytest.approx(1e-3)
    for i in range(5):
        x, y = stored[i]
        np.testing.assert_array_equal(x[0].numpy(), data.pair(i)[0])
        np.testing.assert_array_equal(y[0].numpy(), data.pair(i)[1])
    with pytest.raises(FileExistsError):
        build_hdf5(path, data, progress=False)
    build_hdf5(path, data, progress=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.h5"]  # no temporary files left


def test_errors_name_the_bad_value():
    observed, target = degrade_frame(_smooth_scene(), SCALE)
    with pytest.raises(ValueError, match="does not fit"):
        cut_pair(observed, target, rng=np.random.default_rng(0), patch=500)
    with pytest.raises(ValueError, match="patch must be an integer"):
        cut_pair(observed, target, rng=np.random.default_rng(0), patch=1)
    with pytest.raises(ValueError, match="noise must be"):
        make_pair(_smooth_scene(), SCALE, rng=np.random.default_rng(0), noise=-1.0)
    with pytest.raises(IndexError, match="out of range"):
        PairDataset(from_array(_smooth_scene(), SCALE), n_samples=2).pair(2)
