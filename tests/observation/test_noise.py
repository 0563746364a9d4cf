"""The noise level is not fooled by one pixel: outliers, sharp edges (off-limb pixels given as 0), periodic
patterns beyond the cut-off. Property-based (hypothesis): white noise of a known level under a smooth scene, with
any of these added, reads as that level, or the measurement says it cannot be believed."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from enhance.exceptions import EnhanceUserWarning
from enhance.inference.pipeline import network_noise
from enhance.observation import noise
from enhance.observation.noise import measure_noise

SIZE = 192
#: Scatter of the measurement on white noise of this size is about 2 %: 12 % is six of it.
TOLERANCE = 0.12
# Derandomized: the same 40 examples on every run, so that CI is repeatable.
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _noisy_scene(seed, sigma, *, level=100.0):
    """A smooth scene (power only far inside the cut-off) of mean ``level`` plus white noise of ``sigma``."""
    rng = np.random.default_rng(seed)
    scene = level + 20 * sigma * ndimage.gaussian_filter(rng.normal(size=(SIZE, SIZE)), 4) * 4
    return scene + rng.normal(0, sigma, scene.shape), rng


@PROPERTY
@given(seed=st.integers(0, 2**16), sigma=st.floats(0.5, 4.0), count=st.integers(1, 6),
       strength=st.floats(1e2, 1e6), negative=st.booleans())  # fmt: skip
def test_isolated_outlier_pixels_do_not_move_the_level(seed, sigma, count, strength, negative):
    image, rng = _noisy_scene(seed, sigma)
    rows, cols = rng.integers(0, SIZE, count), rng.integers(0, SIZE, count)
    image[rows, cols] += (-1 if negative else 1) * strength * sigma
    found = measure_noise(image)
    assert found.reliable
    assert abs(found.sigma / sigma - 1) < TOLERANCE


@PROPERTY
@given(seed=st.integers(0, 2**16), sigma=st.floats(0.5, 4.0), angle=st.floats(0, 2 * np.pi),
       share=st.floats(0.05, 0.45), fill=st.sampled_from([0.0, -32768.0, 1e4]))  # fmt: skip
@example(seed=0, sigma=2.0, angle=4.9609375, share=0.125, fill=1e4)  # an edge's streak in one tile read as a pattern
def test_a_sharp_edge_to_a_constant_region_does_not_move_the_level(seed, sigma, angle, share, fill):
    """Off-limb pixels given as a number (0, a FITS BLANK) beyond a straight limb covering ``share`` of the image."""
    image, _ = _noisy_scene(seed, sigma)
    yy, xx = np.indices(image.shape) - (SIZE - 1) / 2
    distance = yy * np.sin(angle) + xx * np.cos(angle)
    image[distance > np.quantile(distance, 1 - share)] = fill
    found = measure_noise(image)
    assert found.reliable
    assert abs(found.sigma / sigma - 1) < TOLERANCE


@PROPERTY
@given(seed=st.integers(0, 2**16), sigma=st.floats(0.5, 4.0), amplitude=st.floats(0.0, 100.0),
       period=st.sampled_from([(2, 2), (2, 3), (3, 2), (2, 4)]))  # fmt: skip
def test_a_periodic_pattern_beyond_the_cutoff_is_ignored_or_reported(seed, sigma, amplitude, period):
    """A pattern at the Nyquist frequency (period 2 pixels) or near it: the level is the noise's, or unreliable."""
    image, _ = _noisy_scene(seed, sigma)
    yy, xx = np.indices(image.shape)
    image += amplitude * sigma * np.cos(2 * np.pi * yy / period[0]) * np.cos(2 * np.pi * xx / period[1])
    found = measure_noise(image)
    assert not found.reliable or abs(found.sigma / sigma - 1) < TOLERANCE
    if found.reliable:
        return
    assert "periodic pattern" in found.reason


def test_a_pattern_without_noise_is_not_read_as_zero_noise():
    """A checkerboard at the Nyquist frequency on a noiseless image: its median power is 0, so the estimate alone
    would tell the network there is no noise; it is reported, and HMI's nominal level is used."""
    yy, xx = np.indices((128, 128))
    image = 1 + 0.01 * (-1.0) ** (yy + xx)
    assert not measure_noise(image).reliable
    with pytest.warns(EnhanceUserWarning, match="periodic pattern.*pass noise= to set it"):
        assert network_noise(image, nominal=1e-3) == 1e-3


def test_one_hot_pixel_leaves_the_network_noise_unchanged():
    """The audit's case: one pixel of 5e4 G on a magnetogram moved the level handed to the network."""
    rng = np.random.default_rng(7)
    field = 0.3 * ndimage.gaussian_filter(rng.normal(size=(200, 200)), 3) + rng.normal(0, 0.012, (200, 200))  # kG
    clean = network_noise(field, nominal=0.01)
    field[10, 10] = 50.0  # 5e4 G
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert network_noise(field, nominal=0.01) == pytest.approx(clean, rel=0.02)
    assert clean == pytest.approx(0.012, rel=TOLERANCE)


def test_off_limb_zeros_read_as_off_limb_nan():
    """A continuum cut-out at the limb, its off-limb pixels 0 instead of NaN: the same level, not 12 x HMI's."""
    rng = np.random.default_rng(8)
    image = 1 + 0.03 * ndimage.gaussian_filter(rng.normal(size=(256, 256)), 2) + rng.normal(0, 2e-3, (256, 256))
    yy, xx = np.indices(image.shape)
    off = np.hypot(yy - 128, xx + 60) > 250  # 35 % of the field beyond the limb
    zeros = np.where(off, 0.0, image)
    with_nan = network_noise(np.where(off, 1.0, image), nominal=1e-3, finite=~off)
    assert network_noise(zeros, nominal=1e-3) == pytest.approx(with_nan, rel=0.05)
    assert with_nan == pytest.approx(2e-3, rel=TOLERANCE)


@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 40), st.booleans())
@settings(max_examples=40, deadline=None)
def test_the_median_and_neighbour_range_equal_scipy_rank_filters(seed, ny, nx, ties):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(ny, nx)).astype(np.float32).astype(np.float64)  # float32 holds it exactly
    if ties:  # few distinct values: equal neighbours everywhere
        data = np.round(data)
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    expected = ndimage.maximum_filter(data, footprint=ring, mode="reflect") - ndimage.minimum_filter(
        data, footprint=ring, mode="reflect")  # fmt: skip
    ys, xs = np.indices((ny, nx)).reshape(2, -1)
    for dtype in (np.float64, np.float32):  # picked in float32, the values are the same
        padded, median = np.pad(data.astype(dtype), 1, mode="symmetric"), np.empty((ny, nx), dtype)
        noise._median9(padded, slice(0, ny), median)
        assert np.array_equal(median, ndimage.median_filter(data, size=3, mode="reflect"))
        assert np.array_equal(noise._neighbour_range(padded, ys, xs).reshape(ny, nx), expected)


@given(st.integers(0, 2**32 - 1), st.integers(0, 3), st.integers(0, 3), st.floats(2.0, 60.0), st.booleans(),
       st.booleans())  # fmt: skip
@settings(max_examples=80, deadline=None)
def test_outliers_are_those_of_the_definition_with_scipy_rank_filters(seed, tail, scene, spike, float32, holes):
    # Beyond 20 robust sigmas of the 3x3 median (1.4826 x the median residual of the usable pixels) and beyond
    # twice the range of the eight neighbours: the same pixels, replaced by the same medians, whichever path
    # (a lower bound of the threshold, or the threshold itself) the measurement took.
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(40, 260)), int(rng.integers(40, 260)))
    data = np.abs(rng.standard_t(df=[100, 3, 1.5, 1][tail], size=shape))
    yy, xx = np.indices(shape)
    if scene == 1:  # a dark spot with a sharp edge
        data = np.where(np.hypot(yy - shape[0] / 2, xx - shape[1] / 2) < shape[0] / 4, 0.3 * data, data + 30)
    elif scene == 2:  # steps everywhere: many pixels beyond any bound
        data += 25 * ((yy // 3 + xx // 5) % 2)
    elif scene == 3:  # more than half of the pixels equal their neighbourhood
        data[: shape[0] * 2 // 3] = 1.0
    hot = rng.integers(0, data.size, int(rng.integers(0, 20)))
    data.ravel()[hot] += spike * rng.choice([-1, 1], hot.size) * np.median(data)
    data = data.astype(np.float32).astype(np.float64) if float32 else data
    usable = rng.random(shape) > 0.05 if holes else np.ones(shape, bool)
    median = ndimage.median_filter(data, size=3, mode="reflect")
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    spread = ndimage.maximum_filter(data, footprint=ring, mode="reflect") - ndimage.minimum_filter(
        data, footprint=ring, mode="reflect")  # fmt: skip
    residual = np.abs(data - median)
    scale = 1.4826 * np.median(residual[usable])
    bad = (residual > noise.OUTLIER_SIGMAS * scale) & (residual > 2 * spread) & usable if scale > 0 else False
    found, count = noise._replace_outliers(data.astype(np.float32) if float32 else data.copy(), usable)
    assert count == int(np.sum(bad))
    np.testing.assert_array_equal(found, np.where(bad, median, data))


def test_the_scale_bound_is_below_the_scale_and_shows_itself_on_noise():
    rng = np.random.default_rng(0)
    for values in (np.abs(rng.normal(size=50_000)), np.abs(rng.standard_cauchy(50_000)), rng.random(90_000) ** 4):
        bound = noise._scale_bound(values)
        assert bound is not None
        assert bound <= noise._outlier_scale(values)
    assert noise._scale_bound(np.zeros(50_000)) is None  # more than half equal their neighbourhood
    assert noise._scale_bound(np.r_[np.zeros(25_001), np.ones(24_999)]) is None  # the sample says 0
    assert noise._scale_bound(np.ones(100)) is None  # too few to sample


@pytest.mark.parametrize("shape", [(37, 45), (64, 64), (130, 97), (200, 261)])
def test_the_half_plane_spectra_hold_the_whole_planes_power_in_its_order(shape):
    # Tiles of 64 overlapping by half, or the whole axis under 128 (odd sizes too): each tile's power at every
    # frequency beyond the cut-off, read from rfft2's half plane, is the full FFT's, in the full plane's order.
    data = np.random.default_rng(1).normal(size=shape)
    usable = np.ones(shape, bool)
    usable[5, 7] = False  # the tiles holding it are not read
    power, frequency, keep, _ = noise._tile_powers(data, usable, 0.504, 1.15)
    size = tuple(n if n < 128 else 64 for n in shape)
    window = np.outer(np.hanning(size[0] + 2)[1:-1], np.hanning(size[1] + 2)[1:-1])
    full = np.hypot(np.fft.fftfreq(size[0], 0.504)[:, None], np.fft.fftfreq(size[1], 0.504)[None, :])
    tiles = [(y, x) for y in range(0, shape[0] - size[0] + 1, size[0] // 2)
             for x in range(0, shape[1] - size[1] + 1, size[1] // 2)]  # fmt: skip
    assert len(power) == len(keep) == len(tiles)
    np.testing.assert_array_equal(frequency, full[full >= 1.15])
    for index, (y, x) in enumerate(tiles):
        tile = data[y : y + size[0], x : x + size[1]]
        spectrum = np.fft.fft2((tile - tile.mean()) * window)
        expected = (np.abs(spectrum) ** 2 / np.sum(window**2))[full >= 1.15]
        np.testing.assert_allclose(power[index], expected, rtol=1e-10, atol=1e-12 * expected.max())
        assert keep[index] == (not (y <= 5 < y + size[0] and x <= 7 < x + size[1]))


@given(st.integers(0, 2**32 - 1), st.sampled_from([(37, 45), (64, 130), (130, 97), (160, 200)]))
@settings(max_examples=30, deadline=None)
def test_tiles_are_read_unless_constant_in_part_or_missing_as_counted_pixel_by_pixel(seed, shape):
    # Each tile's equal neighbours along its rows (nx - 1 pairs a row) and missing pixels, counted directly.
    rng = np.random.default_rng(seed)
    data = rng.normal(size=shape)
    for _ in range(3):  # constant patches (off-limb zeros, dead columns) of random sizes, near the threshold
        y, x, h, w = rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.integers(1, 60), rng.integers(1, 60)
        data[y : y + h, x : x + w] = 0.0
    usable = rng.random(shape) > 0.0005
    _, _, keep, _ = noise._tile_powers(np.where(usable, data, 0.0), usable, 0.504, 1.15)
    size = tuple(n if n < 128 else 64 for n in shape)
    expected = []
    for y in range(0, shape[0] - size[0] + 1, size[0] // 2):
        for x in range(0, shape[1] - size[1] + 1, size[1] // 2):
            lost = ~usable[y : y + size[0], x : x + size[1]]
            equal = np.count_nonzero(
                np.where(usable, data, 0.0)[y : y + size[0], x : x + size[1]][:, 1:]
                == np.where(usable, data, 0.0)[y : y + size[0], x : x + size[1]][:, :-1]
            )
            expected.append(not lost.any() and not equal / (size[0] * (size[1] - 1)) > noise.FLAT_SHARE)
    assert keep.tolist() == expected


def test_a_tile_counts_only_its_own_pairs_of_equal_neighbours():
    # The first tile (columns 0-63) holds exactly FLAT_SHARE of equal pairs (16 constant rows of 63 pairs), and
    # its last column equals the next one in every row: pairs that cross its edge, which must not tip it over.
    data = np.random.default_rng(2).normal(size=(64, 128))
    data[:16, :65] = 7.0
    data[16:, 64] = data[16:, 63]
    assert 16 * 63 == noise.FLAT_SHARE * 64 * 63
    _, _, keep, _ = noise._tile_powers(data, np.ones(data.shape, bool), 0.504, 1.15)
    assert keep.tolist() == [True, True, True]
    data[16, :64] = 7.0  # one more row of equal pairs inside it: left out
    assert noise._tile_powers(data, np.ones(data.shape, bool), 0.504, 1.15)[2].tolist() == [False, True, True]


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e6, 1e9])
def test_the_spectra_of_an_image_far_from_zero_are_those_of_its_mean_subtracted_tiles(offset):
    # Each tile's mean is taken out before its transforms (its rows' means first): far from zero, the powers
    # keep their precision relative to the noise, as with each tile less its mean transformed directly.
    data = np.random.default_rng(7).normal(size=(200, 261)) + offset
    power, _, _, _ = noise._tile_powers(data, np.ones(data.shape, bool), 0.504, 1.15)
    window = np.outer(np.hanning(66)[1:-1], np.hanning(66)[1:-1])
    full = np.hypot(np.fft.fftfreq(64, 0.504)[:, None], np.fft.fftfreq(64, 0.504)[None, :])
    for index, (y, x) in enumerate([(y, x) for y in range(0, 137, 32) for x in range(0, 198, 32)]):
        tile = data[y : y + 64, x : x + 64]
        expected = (np.abs(np.fft.fft2((tile - tile.mean()) * window)) ** 2 / np.sum(window**2))[full >= 1.15]
        np.testing.assert_allclose(power[index], expected, rtol=1e-9 if offset < 1e9 else 1e-6)


def test_a_float32_image_reads_as_its_float64_copy():
    image = np.random.default_rng(4).normal(100.0, 2.0, (300, 260)).astype(np.float32)
    image[50, 60], image[200:230, 10:40] = 1e4, 0.0  # a hot pixel, an off-limb corner
    assert measure_noise(image) == measure_noise(image.astype(np.float64))
    assert measure_noise(image).outliers == 1


@pytest.mark.parametrize("shape", [(300, 260), (400, 400), (517, 389)])
def test_the_level_does_not_depend_on_the_cores_or_the_chunks(shape, monkeypatch):
    # Bands of rows per core and chunks within them: every tile's spectrum sums in the same order, bit for bit.
    image = np.random.default_rng(3).normal(0.0, 2.0, shape)
    image[50, 60] = 1e3
    found = []
    for cores, chunk in (("1", noise.CHUNK_VALUES), ("2", noise.CHUNK_VALUES), ("3", 2**12), ("4", 2**15)):
        monkeypatch.setenv("OMP_NUM_THREADS", cores)
        monkeypatch.setattr(noise, "CHUNK_VALUES", chunk)
        found.append(measure_noise(image))
    assert all(result == found[0] for result in found)
    assert found[0].outliers == 1


@pytest.mark.parametrize("exponent", [-1000, -200, -65, 65, 200, 900])
def test_the_level_scales_with_the_image_to_the_limits_of_float64(exponent):
    # Measured on the image scaled by a power of two where its values lie far from 1: the level of x 2^k is the
    # level of x times 2^k exactly, and neither underflow (powers of 1e-300 values) nor overflow reaches it.
    image = 5.0 + np.random.default_rng(4).normal(0.0, 2.0, (200, 200))
    image[7, 9] = 1e3  # a hot pixel, replaced alike at any scale
    plain, scaled = measure_noise(image), measure_noise(np.ldexp(image, exponent))
    assert scaled.sigma == np.ldexp(plain.sigma, exponent)
    assert (scaled.whiteness, scaled.outliers, scaled.tiles) == (plain.whiteness, plain.outliers, plain.tiles)


def test_replace_outliers_cleans_a_copy_and_keeps_missing_pixels():
    # A dead and a hot pixel are replaced by their 3 x 3 median, nothing else moves, missing pixels stay missing,
    # and the caller's image is untouched.
    rng = np.random.default_rng(11)
    image = rng.normal(1.0, 1e-3, (96, 80))
    image[40:44, 10:14] = np.nan
    image[20, 30], image[70, 5] = -1e5, 50.0
    before = image.copy()
    cleaned, count = noise.replace_outliers(image)
    assert count == 2
    np.testing.assert_array_equal(image, before)
    assert np.isnan(cleaned[40:44, 10:14]).all()
    for y, x in ((20, 30), (70, 5)):
        neighbours = np.delete(before[y - 1 : y + 2, x - 1 : x + 2].ravel(), 4)
        assert neighbours.min() <= cleaned[y, x] <= neighbours.max()
    moved = ~np.isclose(cleaned, before, rtol=0, atol=0, equal_nan=True)
    assert sorted(zip(*np.nonzero(moved), strict=True)) == [(20, 30), (70, 5)]


def test_noise_and_constant_regions_hold_no_gross_outlier():
    # Gaussian noise alone (1e6 pixels: nothing beyond 10 interquartile ranges, 13.5 sigma, the smaller threshold
    # here), and noise beside a constant block of 42 % of the image (zeros for the sky, which make the 3 x 3
    # residuals' median tiny): none.
    rng = np.random.default_rng(5)
    assert noise.replace_outliers(rng.normal(1.0, 0.1, (1000, 1000)))[1] == 0
    image = rng.normal(1.0, 0.1, (120, 120))
    image[:, :51] = 5.0
    assert noise.replace_outliers(image)[1] == 0


def test_a_point_source_seen_through_the_observation_model_is_not_an_outlier():
    # Unresolved points (one 0.0662 arcsec pixel each, at several sub-pixel positions) through HMI's PSF and
    # pixels, up to 13 000 times the noise: their neighbours rise with them, so nothing is replaced.
    from enhance.scenes.synth import MURAM_PIXEL_SCALE
    from enhance.training.datasets import degrade_frame

    frame = np.zeros((480, 480))
    for y, x in ((100, 100), (103, 300), (301, 107), (300, 305), (205, 203)):
        frame[y, x] = 1e5 * 58
    observed, _ = degrade_frame(frame, MURAM_PIXEL_SCALE, kind="blos")
    image = observed * 1000 + np.random.default_rng(2).normal(0.0, 1.0, observed.shape)
    assert image.max() > 1e4
    assert noise.replace_outliers(image)[1] == 0


def test_fields_through_the_observation_model_hold_no_gross_outlier():
    # Synthetic quiet Sun and active region through HMI's PSF and pixels with HMI's noise, and the packaged
    # cut-outs: no pixel replaced. (On 800 x 800 scenes, the first pixels replaced came at 3 times the local scale,
    # in noise-dominated quiet-Sun magnetograms; LOCAL_OUTLIER is 20.)
    from enhance.data import sample_path
    from enhance.io import read_fits
    from enhance.scenes.synth import MURAM_PIXEL_SCALE, generate
    from enhance.training.datasets import degrade_frame

    for kind, seed in (("quiet_sun", 1), ("active_region", 2)):
        continuum, bz = generate((800, 800), kind=kind, seed=seed)  # 105 HMI pixels
        rng = np.random.default_rng(seed)
        for frame, what, scale, sigma in ((continuum, "intensity", 1.0, 1e-3), (bz / 1000, "blos", 1000.0, 10.0)):
            observed, _ = degrade_frame(frame, MURAM_PIXEL_SCALE, kind=what)
            assert noise.replace_outliers(observed * scale + rng.normal(0.0, sigma, observed.shape))[1] == 0
    for what in ("intensity", "blos"):
        assert noise.replace_outliers(read_fits(sample_path(what))[0])[1] == 0


def test_a_spike_on_a_noise_free_plane_or_step_is_replaced():
    # Most pixels equal their four neighbours' mean on a plane (no local scale to judge by): the interquartile
    # range alone judges them then, and the spikes are still found.
    rows, cols = np.mgrid[:200, :200].astype(float)
    plane = 1 + 1e-3 * cols + 5e-4 * rows
    plane[100, 100] = -1e5
    assert noise.replace_outliers(plane)[1] == 1
    step = np.where(cols < 120, 0.0, 1.0)
    step[50, 50], step[60, 150] = 1e4, -1e4
    assert noise.replace_outliers(step)[1] == 2
