"""The quiet-Sun normalisation of continuum images: one level, or a surface that follows limb darkening."""

import numpy as np
import pytest

from enhance import enhance
from enhance.exceptions import EnhanceUserWarning
from enhance.observation.quiet_sun import (
    AUTO_SURFACE_SPREAD,
    QuietSunSurface,
    estimate_qs_level,
    fit_qs_surface,
    qs_normalisation,
    qs_stride,
)


def _granulation(shape, seed=0, contrast=0.04):
    return 1 + contrast * np.random.default_rng(seed).standard_normal(shape)


def _limb_darkening(mu):
    """A quadratic limb-darkening law, I(mu) / I(1)."""
    return 1 - 0.6 * (1 - mu) - 0.2 * (1 - mu) ** 2


def test_the_estimates_sample_the_whole_field_on_a_grid():
    assert qs_stride((100, 100)) == 1
    assert qs_stride((4096, 4096)) == 16  # 256 x 256 samples spread over every part of the disk
    # A quiet Sun brighter only in the last columns moves the level: those columns are sampled.
    image = np.ones((4096, 4096))
    image[:, 2048:] = 1.02
    assert 1.0 < estimate_qs_level(image) <= 1.02


def test_the_surface_follows_limb_darkening_across_a_cut_out_and_ignores_a_spot():
    # mu from 0.3 to 0.6 across 300 HMI pixels (150"), granulation on top, a sunspot and faculae.
    mu = np.tile(np.linspace(0.3, 0.6, 300), (200, 1))
    truth = _limb_darkening(mu)
    image = truth * _granulation(mu.shape)
    rows, cols = np.indices(mu.shape)
    spot = np.hypot(rows - 100, cols - 150) < 30
    image[spot] *= 0.3
    image[(np.abs(rows - 40) < 5) & (cols > 200)] *= 1.25  # a facular band
    surface = fit_qs_surface(image)
    error = surface() / truth - 1
    assert np.abs(error).max() < 0.01  # under the spot too: bridged from around it
    assert surface.spread == pytest.approx(truth.max() / truth.min() - 1, abs=0.02)
    # One level would leave the darker side 30 % below the network's training range.
    assert truth.max() / truth.min() - 1 > 0.3


def test_the_surface_follows_a_limb_cut_out_to_near_the_limb():
    # 400 x 400 HMI pixels (200") across the limb of a disk of 1900 px radius (960"), NaN off the limb.
    rows, cols = np.indices((400, 400))
    r = np.hypot(rows - 200, cols + 1900 - 300) / 1900  # the limb crosses the field 300 px from its left
    truth = np.where(r < 1, _limb_darkening(np.sqrt(np.clip(1 - r**2, 0, None))), np.nan)
    image = truth * _granulation(truth.shape, contrast=0.02)
    surface = fit_qs_surface(image)
    error = np.abs(surface() / truth - 1)
    assert np.nanmax(error[r < 0.9]) < 0.01
    assert np.nanmax(error[r < 0.98]) < 0.025
    assert np.isfinite(surface()).all()  # off the limb too
    assert surface().min() > 0


def test_windows_and_the_output_grid():
    ramp = np.tile(np.linspace(0.6, 0.9, 120), (80, 1))
    surface = QuietSunSurface(samples=ramp, stride=1, shape=ramp.shape)
    assert np.allclose(surface(), ramp)
    piece = surface.window(10, 30, (20, 40))
    assert np.allclose(piece(), ramp[10:30, 30:70])
    assert np.allclose(piece(slice(5, 8)), ramp[15:18, 30:70])
    fine = surface(factor=2)
    assert fine.shape == (160, 240)
    # On a linear ramp, each input pixel's 2x2 output pixels average to its value (away from the edges).
    blocks = fine.reshape(80, 2, 120, 2).mean(axis=(1, 3))
    assert np.allclose(blocks[:, 1:-1], ramp[:, 1:-1], rtol=1e-6)


def test_the_default_keeps_one_level_unless_the_quiet_sun_varies():
    flat = _granulation((150, 150)) * 2.5
    flat[60:90, 60:90] = 0.5  # an umbra: no reason for a surface
    assert qs_normalisation(flat) == estimate_qs_level(flat)
    ramp = np.tile(np.linspace(0.5, 0.8, 200), (100, 1)) * _granulation((100, 200))
    assert fit_qs_surface(ramp).spread > AUTO_SURFACE_SPREAD
    assert isinstance(qs_normalisation(ramp), QuietSunSurface)
    with pytest.warns(EnhanceUserWarning, match="or its quiet Sun varies"):  # one level across limb darkening
        assert qs_normalisation(ramp, "level") == estimate_qs_level(ramp)
    assert isinstance(qs_normalisation(flat, "surface"), QuietSunSurface)
    assert qs_normalisation(ramp, 0.7) == 0.7


@pytest.mark.parametrize("bad", [-1.0, 0.0, np.nan, "limb"])
def test_bad_qs_levels_are_refused(bad):
    with pytest.raises(ValueError, match="qs_level"):
        qs_normalisation(np.ones((20, 20)), bad)


def test_a_surface_for_another_shape_is_refused():
    surface = QuietSunSurface(samples=np.ones((4, 4)), stride=1, shape=(4, 4))
    with pytest.raises(ValueError, match=r"shape \(4, 4\).*\(5, 5\)"):
        qs_normalisation(np.ones((5, 5)), surface)


def test_enhance_divides_the_surface_out_and_multiplies_it_back(tiny_net):
    qs = _granulation((48, 64)).astype(np.float32)
    darkening = np.tile(np.linspace(0.5, 0.9, 64), (48, 1))
    surface = QuietSunSurface(samples=darkening, stride=1, shape=darkening.shape)
    image = (qs * darkening).astype(np.float32)
    kept = image.copy()
    out = enhance(image, "intensity", network=tiny_net, qs_level=surface)
    reference = enhance(qs, "intensity", network=tiny_net, qs_level=1.0) * surface(factor=2)
    assert np.allclose(out, reference, rtol=1e-5, atol=1e-6)
    assert np.array_equal(image, kept)  # the caller's image is not touched
    # One level instead: the network sees the darker side far from 1 and its output is not the same.
    with pytest.warns(EnhanceUserWarning, match="or its quiet Sun varies"):
        single = enhance(image, "intensity", network=tiny_net, qs_level="level")
    assert not np.allclose(single, reference, rtol=1e-3)


# A ramp from 0.5 to 0.9 across 90 pixels: twice as steep as limb darkening at 0.99 solar radii, so the surface
# (20 arcsec wide) lags it and 6 % of the pixels stand 15 % above it, which is warned of.
@pytest.mark.filterwarnings("ignore:.*estimated quiet-Sun surface.*faster than the surface follows")
def test_enhance_dask_uses_the_same_surface(tiny_net):
    da = pytest.importorskip("dask.array")
    image = (np.tile(np.linspace(0.5, 0.9, 90), (70, 1)) * _granulation((70, 90))).astype(np.float32)
    whole = enhance(image, "intensity", network=tiny_net)  # the default picks the surface here
    assert isinstance(qs_normalisation(image), QuietSunSurface)
    lazy = enhance_dask_of(da.from_array(image, chunks=(25, 40)), tiny_net)
    assert np.allclose(lazy, whole, rtol=1e-4, atol=1e-5)


def enhance_dask_of(array, net):
    from enhance import enhance_dask

    return enhance_dask(array, "intensity", network=net).compute(scheduler="synchronous")


def test_a_level_estimated_on_a_crop_with_little_quiet_sun_is_warned_of():
    import warnings

    from enhance.data import sample_path
    from enhance.io import read_fits
    from enhance.observation.quiet_sun import BRIGHT_FACTOR, BRIGHT_SHARE, warn_little_quiet_sun

    image = read_fits(sample_path("intensity"))[0]
    # granulation: 1.15 is 3.75 standard deviations above the level (share 9e-5), far under the threshold
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for field in (image, _granulation((256, 256)), _granulation((64, 64), seed=3) * 5e4):
            assert warn_little_quiet_sun(field, estimate_qs_level(field)) < BRIGHT_SHARE
            qs_normalisation(field, "level")
    rows, cols = np.unravel_index(np.argmin(image), image.shape)  # the umbra's darkest pixel, with its penumbra
    crop = image[max(rows - 16, 0) : rows + 16, max(cols - 16, 0) : cols + 16]
    level = estimate_qs_level(crop)
    assert level < 0.8 * estimate_qs_level(image)  # the penumbra taken for the quiet Sun
    with pytest.warns(EnhanceUserWarning, match=rf"brighter than {BRIGHT_FACTOR} times the estimated quiet-Sun"):
        qs_normalisation(crop)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qs_normalisation(crop, float(estimate_qs_level(image)))  # a level given: nothing to warn of
    # the analytic case: half the pixels 20 % above the level; 2 % of them are not warned of
    with pytest.warns(EnhanceUserWarning, match="50 % of the image is brighter"):
        assert warn_little_quiet_sun(np.r_[np.full(100, 1.0), np.full(100, 1.2)], 1.0) == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_little_quiet_sun(np.r_[np.full(98, 1.0), np.full(2, 1.2)], 1.0) == 0.02
