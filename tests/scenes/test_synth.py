import astropy.units as u
import numpy as np
import pytest
from scipy import ndimage

from enhance.analysis.metrics import contrast, power_spectrum
from enhance.scenes.synth import (
    KINDS,
    LABELS,
    SceneParameters,
    generate,
    generate_scene,
    granulation_psd,
    preset,
)

SCALE = 0.0662 * u.arcsec
# A scene with nothing but granulation: no network, no bipoles, no internetwork field.
BARE = {"network_density": 0.0, "n_bipoles": 0, "internetwork_field": 0.0}


def test_same_seed_same_scene_other_seed_other_scene():
    first = generate((96, 80), kind="mixed", seed=7)
    second = generate((96, 80), kind="mixed", seed=7)
    other = generate((96, 80), kind="mixed", seed=8)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.allclose(first[0], other[0])


def test_seed_may_be_a_generator_or_a_sequence():
    from_int = generate((64, 64), seed=[3, 4])
    from_rng = generate((64, 64), seed=np.random.default_rng([3, 4]))
    np.testing.assert_array_equal(from_int[0], from_rng[0])


def test_shapes_types_and_finite_values():
    continuum, bz = generate((64, 80), SCALE, kind="active_region", seed=1)
    assert continuum.shape == bz.shape == (64, 80)
    assert continuum.dtype == bz.dtype == np.float64
    assert np.all(np.isfinite(continuum))
    assert np.all(np.isfinite(bz))
    assert continuum.min() > 0


def test_pixel_scale_as_number_means_arcsec():
    as_number = generate((64, 64), 0.0662, seed=2)
    as_quantity = generate((64, 64), 66.2 * u.milliarcsecond, seed=2)
    np.testing.assert_allclose(as_number[0], as_quantity[0])


@pytest.mark.parametrize("kind", ["quiet_sun", "plage"])
def test_quiet_sun_is_unity(kind):
    scene = generate_scene((200, 200), kind=kind, seed=5)
    quiet = scene.labels == LABELS["quiet_sun"]
    assert abs(scene.continuum[quiet].mean() - 1) < 0.01
    if kind == "quiet_sun":
        assert abs(scene.continuum.mean() - 1) < 0.005


def test_quiet_sun_contrast_and_intensity_distribution():
    continuum, _ = generate((256, 256), kind="quiet_sun", seed=11)
    assert 0.13 < contrast(continuum) < 0.19  # MURaM: 16.4 %
    low, high = np.percentile(continuum, [1, 99])
    assert 0.55 < low < 0.8
    assert 1.2 < high < 1.5


def test_granulation_spectrum_follows_the_target_in_every_annulus():
    continuum, _ = generate((256, 256), seed=4, **BARE)
    frequency, power = power_spectrum(continuum, SCALE, window=None)
    f = frequency.to_value(1 / u.arcsec)
    ratio = power / granulation_psd(f)
    keep = (f > 0.1) & (f < 5)
    np.testing.assert_allclose(ratio[keep], 1.0, rtol=0.05)


def test_granulation_psd_rescales_with_spacing():
    f = np.array([0.2, 0.7, 2.0])
    np.testing.assert_allclose(granulation_psd(f, spacing=4.0), 4 * granulation_psd(2 * f))
    assert granulation_psd(0.02 / u.arcsec) == pytest.approx(5.0e-3)


def test_scene_is_periodic():
    continuum, bz = generate((192, 192), kind="plage", seed=3)
    for image in (continuum, bz):
        inside = np.abs(np.diff(image, axis=0)).mean()
        across = np.abs(image[0] - image[-1]).mean()
        assert across < 1.5 * inside  # a cut-out would jump (MURaM's edges: 4x its interior steps)


def test_kg_elements_sit_in_the_intergranular_lanes():
    bare, _ = generate((256, 256), seed=9, **BARE)  # the granulation the plage scene is built on
    scene = generate_scene((256, 256), kind="plage", seed=9, n_pores=0)
    strong = (np.abs(scene.bz) > 1000) & (scene.labels == LABELS["magnetic_element"])
    assert strong.sum() > 200
    assert bare[strong].mean() < 0.92  # lanes are dark; the field-free average is 1
    assert np.percentile(bare[strong], 90) < 1.0


def test_sunspot_intensities_and_fields_in_published_ranges():
    scene = generate_scene((400, 400), kind="active_region", seed=0)
    c, b, labels = scene.continuum, np.abs(scene.bz), scene.labels
    umbra, penumbra = labels == LABELS["umbra"], labels == LABELS["penumbra"]
    assert umbra.sum() > 100
    assert penumbra.sum() > 500
    assert 0.05 < np.percentile(c[umbra], 1) < 0.35  # Solanki (2003)
    assert 0.70 < c[penumbra].mean() < 0.85  # Solanki (2003)
    assert 2000 < b[umbra].max() < 3500  # Livingston et al. (2006)
    assert b[umbra].mean() > b[penumbra].mean() > 300  # field falls through the penumbra
    assert np.corrcoef(c[umbra | penumbra], b[umbra | penumbra])[0, 1] < -0.5  # dark where strong


def test_penumbra_is_filamentary_in_intensity_and_field():
    scene = generate_scene((400, 400), kind="active_region", seed=0, light_bridge_probability=0.0)
    penumbra = scene.labels == LABELS["penumbra"]
    c = scene.continuum
    assert c[penumbra].std() > 0.1  # bright filaments and dark spines
    # Intraspines reverse their polarity near the outer edge: both signs inside the penumbra.
    spot_sign = np.sign(np.median(scene.bz[scene.labels == LABELS["umbra"]]))
    assert np.any(scene.bz[penumbra] * spot_sign < 0)


def test_light_bridge_is_brighter_and_weaker_than_the_umbra():
    scene = generate_scene((400, 400), kind="active_region", seed=0, light_bridge_probability=1.0, n_spots=1)
    bridge, umbra = scene.labels == LABELS["light_bridge"], scene.labels == LABELS["umbra"]
    assert bridge.sum() > 20
    assert scene.continuum[bridge].mean() > scene.continuum[umbra].mean() + 0.2
    assert np.abs(scene.bz[bridge]).mean() < np.abs(scene.bz[umbra]).mean()


def test_bipolar_region_has_both_polarities_in_close_contact():
    _, bz = generate((300, 300), kind="active_region", seed=2)
    positive, negative = bz > 300, bz < -300
    assert positive.sum() > 100
    assert negative.sum() > 100
    near_positive = ndimage.binary_dilation(positive, iterations=int(1.0 / 0.0662))  # within 1 arcsec
    assert np.count_nonzero(near_positive & negative) > 20


def test_quiet_sun_field_is_weak_and_mixed():
    _, bz = generate((256, 256), kind="quiet_sun", seed=6, network_density=0.0, n_bipoles=0)
    assert 10 < np.std(bz) < 100
    assert abs(np.mean(bz)) < 5
    assert (bz > 20).mean() > 0.01
    assert (bz < -20).mean() > 0.01


def test_mixed_scenes_draw_different_contents():
    params = {generate_scene((64, 64), kind="mixed", seed=s).parameters for s in range(6)}
    assert len(params) == 6
    assert preset("quiet_sun") == SceneParameters()


def test_1000_by_1000_active_region_is_finite_and_has_its_spots():
    # How long it takes is measured by `make bench` (benchmarks/run.py), not here.
    continuum, bz = generate((1000, 1000), kind="active_region", seed=0)
    assert continuum.shape == bz.shape == (1000, 1000)
    assert np.isfinite(continuum).all()
    assert np.isfinite(bz).all()
    assert continuum.min() < 0.3  # umbrae: dark, with kG fields
    assert np.abs(bz).max() > 2000


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kind": "sunspot"}, ValueError, "kind must be one of"),
        ({"bogus": 1}, TypeError, "unknown scene parameter"),
        ({"plage_filling": 1.5}, ValueError, "plage_filling must lie in"),
        ({"n_spots": -1}, ValueError, "n_spots must be an integer"),
        ({"spot_radius": (5.0, 2.0)}, ValueError, "low <= high"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, error, match):
    with pytest.raises(error, match=match):
        generate((64, 64), **kwargs)


def test_bad_shape_and_scale():
    with pytest.raises(TypeError, match="shape must be a pair"):
        generate(64)
    with pytest.raises(ValueError, match="at least 16"):
        generate((8, 64))
    with pytest.raises(ValueError, match="pixel_scale must be positive"):
        generate((64, 64), -0.1)
    with pytest.raises(TypeError, match="mixed"):
        preset("mixed")


def test_all_kinds_generate():
    for kind in KINDS:
        continuum, bz = generate((48, 48), kind=kind, seed=0)
        assert np.all(np.isfinite(continuum))
        assert np.all(np.isfinite(bz))


def test_write_scene_round_trips_through_sources(tmp_path):
    from enhance.io import detect_kind, read_fits
    from enhance.scenes.sources import open_source
    from enhance.scenes.synth import write_scene

    scene = generate_scene((64, 48), 0.05, kind="plage", seed=1)
    paths = write_scene(scene, tmp_path / "c.fits", tmp_path / "b.fits")
    continuum = open_source(paths[0], normalise="none")
    bz = open_source(paths[1], kind="blos")
    assert u.isclose(continuum.pixel_scale, 0.05 * u.arcsec)
    np.testing.assert_allclose(continuum.frame(0), scene.continuum, rtol=1e-6)
    np.testing.assert_allclose(bz.frame(0), scene.bz, rtol=1e-6, atol=1e-3)
    assert detect_kind(read_fits(paths[1])[1]) == "blos"
    with pytest.raises(FileExistsError):
        write_scene(scene, tmp_path / "new.fits", paths[1])
    assert not (tmp_path / "new.fits").exists()


# Sums, sums of squares and label counts of four scenes, recorded before generate_scene was split into
# helpers: any change in the draws or their order changes them (the generator is seeded).
PINNED_SCENES = {
    "quiet_sun": [
        65533.191600736536,
        67249.32425559197,
        25281.979717521564,
        959945.9628117015,
        [65427, 109, 0, 0, 0, 0, 0, 0],
    ],
    "plage": [
        65579.20427051769,
        67092.57724744297,
        7612054.954720023,
        9428810.439673467,
        [59458, 4596, 1482, 0, 0, 0, 0, 0],
    ],
    "active_region": [
        59521.20346570242,
        57098.49823474845,
        2487471.011012938,
        28200282.655797727,
        [42419, 3108, 3495, 1592, 13746, 1176, 0, 0],
    ],
    "mixed": [
        59799.36817774168,
        57780.59487456074,
        -234036.81899454538,
        24840826.163277905,
        [47278, 2362, 6106, 1323, 7736, 731, 0, 0],
    ],
}


@pytest.mark.parametrize(("kind", "seed"), [("quiet_sun", 1), ("plage", 2), ("active_region", 3), ("mixed", 4)])
def test_scenes_of_fixed_seeds_are_pinned(kind, seed):
    scene = generate_scene((256, 256), kind=kind, seed=seed)
    *sums, counts = PINNED_SCENES[kind]
    got = [scene.continuum.sum(), (scene.continuum**2).sum(), scene.bz.sum(), np.abs(scene.bz).sum()]
    assert got == pytest.approx(sums, rel=1e-9)  # transcendental functions may differ in the last bits
    assert np.bincount(scene.labels.ravel().astype(int), minlength=8).tolist() == counts
