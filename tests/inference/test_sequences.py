"""Sequences: a cube gives a cube, a MapSequence a MapSequence, and every frame of a sequence (files included) is
told one noise level, the median of the frames' levels, unless the noise is measured per frame."""

import astropy.units as u
import numpy as np
import pytest
import sunpy.map
from astropy.io import fits

from enhance import enhance, enhance_files
from enhance.cli import main
from enhance.data import sample_map, sample_path
from enhance.exceptions import NoiseLevelWarning
from enhance.inference.distributed import shared_noise_levels
from enhance.inference.pipeline import SEQUENCE_NOISE_FRAMES, RunOptions, enhance_array, resolve_network, sequence_noise
from enhance.io import read_fits

HMI = 1e-3  # HMI's continuum noise, I/Ic
LEVELS = (2.0, 3.0, 2.4)  # each frame's noise, in units of HMI's


@pytest.fixture(scope="module")
def light():
    return resolve_network("intensity", model="light")


def _frames(levels=LEVELS, shape=(64, 64), scale=1.0):
    rng = np.random.default_rng(7)
    return np.stack([scale * (1 + rng.normal(0, level * HMI, shape)) for level in levels])


def _own_levels(cube, light):
    """Each frame's own measured noise (I/Ic)."""
    return [enhance_array(frame, kind="intensity", network=light, return_assumptions=True)[1].noise.value
            for frame in cube]  # fmt: skip


def test_sequence_noise_is_the_median_of_the_frames_levels(light):
    cube = _frames()
    choice = sequence_noise(cube, kind="intensity", network=light)
    assert choice.value == pytest.approx(np.median(_own_levels(cube, light)), rel=1e-12)
    assert (choice.unit, choice.source, choice.reason) == ("I/Ic", "measured", "median of 3 of 3 frames, 3 measured")
    assert sequence_noise(cube, kind="intensity", network=resolve_network("intensity", model="paper-light")) is None


def test_a_long_sequence_is_measured_on_evenly_spread_frames(light):
    seen = []

    class Frames:
        def __len__(self):
            return 40

        def __getitem__(self, index):
            seen.append(index)
            if index == 13:
                msg = "unreadable"
                raise OSError(msg)
            return _frames((2.0,))[0]

    choice = sequence_noise(Frames(), kind="intensity", network=light)
    assert seen == [round(i) for i in np.linspace(0, 39, SEQUENCE_NOISE_FRAMES)]  # 0, 3, 5, 8, 10, 13, ..., 39
    assert 13 in seen  # the unreadable frame is left out
    assert choice.reason == f"median of {SEQUENCE_NOISE_FRAMES - 1} of 40 frames, {SEQUENCE_NOISE_FRAMES - 1} measured"


def test_a_cube_gives_a_cube_told_one_noise_level(light):
    cube = 5000 * _frames()
    out = enhance(cube, "intensity", model="light")
    assert out.shape == (3, 128, 128)
    shared = sequence_noise(cube, kind="intensity", network=light)
    for frame, result in zip(cube, out, strict=True):
        told = enhance_array(frame, kind="intensity", network=light, options=RunOptions(noise=shared))
        np.testing.assert_array_equal(result, told)
    # Per frame, each frame is what enhance makes of it alone; with one level the frames differ from that.
    per_frame = enhance(cube, "intensity", model="light", noise_per_frame=True)
    for frame, result in zip(cube, per_frame, strict=True):
        np.testing.assert_array_equal(result, enhance(frame, "intensity", model="light"))
    assert not np.array_equal(per_frame[0], out[0])


def test_a_quantity_or_masked_cube_keeps_its_type_and_mask():
    cube = np.random.default_rng(3).normal(0, 20, (2, 40, 40)) * u.G
    out = enhance(cube.to(u.kG), model="light")
    assert out.unit == u.kG
    assert out.shape == (2, 80, 80)
    np.testing.assert_allclose(out.to_value(u.G), enhance(cube, model="light").to_value(u.G), rtol=1e-5, atol=1e-3)
    masked = np.ma.masked_array(_frames((2.0, 2.0), (40, 40)), mask=np.zeros((2, 40, 40), bool))
    masked.mask[1, 5, 6] = True
    result = enhance(masked, "intensity", model="light")
    assert isinstance(result, np.ma.MaskedArray)  # masked in, masked out
    assert result.mask[1, 10:12, 12:14].all()
    assert not result.mask[0].any()
    assert np.count_nonzero(result.mask) == 4


def test_an_empty_or_4d_cube_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"at least one frame, got shape \(0, 8, 8\)"):
        enhance(np.ones((0, 8, 8)), "intensity", model="light")
    with pytest.raises(ValueError, match=r"or 3-D \(time, ny, nx\) for a sequence, got shape \(1, 2, 8, 8\)"):
        enhance(np.ones((1, 2, 8, 8)), "intensity", model="light")


def _map(data, **extra):
    sample = sample_map("intensity")
    meta = dict(sample.meta)
    meta.update(extra)
    return sunpy.map.Map(data.astype(np.float32), meta)


def test_a_mapsequence_gives_a_mapsequence_with_one_noise_level():
    maps = [_map(frame) for frame in 50000 * _frames()]
    sequence = sunpy.map.Map(maps, sequence=True)  # raised "ufunc 'isfinite' not supported" before
    out = enhance(sequence, model="light")
    assert isinstance(out, sunpy.map.MapSequence)
    assert len(out.maps) == 3
    levels = {m.meta["enh_nois"] for m in out.maps}
    assert len(levels) == 1
    assert {m.meta["enh_nsrc"] for m in out.maps} == {"measured"}
    assert out.maps[0].meta["enh_nwhy"] == "median of 3 of 3 frames, 3 measured"
    own = enhance(sequence, model="light", noise_per_frame=True)
    own_levels = [m.meta["enh_nois"] for m in own.maps]
    assert levels.pop() == pytest.approx(np.median(own_levels), rel=1e-6)
    for single, smap in zip(own.maps, maps, strict=True):
        np.testing.assert_array_equal(single.data, enhance(smap, model="light").data)
    assert out.maps[1].data.shape == (128, 128)


def test_a_mapsequence_of_both_kinds_is_refused_unless_per_frame():
    continuum = _map(50000 * _frames((2.0,))[0])
    field = sunpy.map.Map(np.random.default_rng(0).normal(0, 20, (64, 64)).astype(np.float32), sample_map("blos").meta)
    both = sunpy.map.Map([continuum, field], sequence=True)
    with pytest.raises(ValueError, match="both continuum images and magnetograms"):
        enhance(both, model="light")
    out = enhance(both, model="light", noise_per_frame=True)
    assert [m.meta["enh_kind"] for m in out.maps] == ["intensity", "blos"]


def _write_files(folder, levels=LEVELS):
    header = read_fits(sample_path("intensity"))[1]
    paths = []
    for index, frame in enumerate(50000 * _frames(levels)):
        path = folder / f"frame_{index}.fits"
        fits.writeto(path, frame.astype(np.float32), header)
        paths.append(path)
    return paths


def test_enhance_files_tells_every_file_the_sequences_noise_level(tmp_path):
    paths = _write_files(tmp_path)
    levels = shared_noise_levels(paths, model="light")
    assert set(levels) == {"intensity"}
    assert levels["intensity"].reason == "median of 3 of 3 frames, 3 measured"
    records = enhance_files(paths, tmp_path / "shared", model="light", as_frame=False)
    assert [r["status"] for r in records] == ["done"] * 3
    headers = [fits.getheader(r["output"]) for r in records]
    assert [h["ENH_NOIS"] for h in headers] == [pytest.approx(levels["intensity"].value, rel=1e-12)] * 3
    assert {h["ENH_NWHY"] for h in headers} == {"median of 3 of 3 frames, 3 measured"}
    # `enhance run` with several files: the same; --noise-per-frame measures each file.
    assert main(["run", *map(str, paths), "-o", str(tmp_path / "own"), "--model", "light", "--noise-per-frame",
                 "--quiet"]) == 0  # fmt: skip
    own = [fits.getheader(tmp_path / "own" / f"frame_{index}_enhanced.fits") for index in range(3)]
    assert len({h["ENH_NOIS"] for h in own}) == 3
    assert {h["ENH_NSRC"] for h in own} == {"measured"}
    assert np.median([h["ENH_NOIS"] for h in own]) == pytest.approx(levels["intensity"].value, rel=1e-6)
    single = enhance(paths[1], model="light")
    np.testing.assert_array_equal(fits.getdata(tmp_path / "own" / "frame_1_enhanced.fits"), single.data)


def test_a_frame_far_above_hmis_noise_is_named_even_when_the_median_is_not(light):
    # One frame binned 2 x 2 but labelled at HMI's scale reads as 9 x HMI's noise: the median of the sequence hides
    # it, so the frame is named in a warning (each frame alone warns too).
    cube = _frames((2.0, 2.0, 2.0, 2.0))
    cube[2] = 1 + np.random.default_rng(3).normal(0, 9 * HMI, cube[2].shape)
    with pytest.warns(NoiseLevelWarning, match=r"frame\(s\) 2 \(9\.\d+ x\) of the 4: binned"):
        choice = sequence_noise(cube, kind="intensity", network=light)
    assert choice.value == pytest.approx(2 * HMI, rel=0.1)  # every frame is still told the median


def test_a_list_of_maps_gives_a_list_told_one_noise_level():
    smap = sample_map("blos")
    cut = sunpy.map.Map(smap.data[:48, :48], smap.meta)
    noisy = sunpy.map.Map(cut.data + np.random.default_rng(0).normal(0, 30.0, cut.data.shape), cut.meta)
    out = enhance([cut, noisy, cut], model="light")
    assert isinstance(out, list)
    assert [type(m) for m in out] == [type(cut)] * 3
    sequence = enhance(sunpy.map.MapSequence([cut, noisy, cut]), model="light")
    for got, expected in zip(out, sequence.maps, strict=True):
        np.testing.assert_array_equal(got.data, expected.data)
        assert got.meta["enh_nois"] == sequence.maps[0].meta["enh_nois"]
    results, sigmas = enhance((cut, cut), model="light", uncertainty=True)
    assert len(results) == len(sigmas) == 2
    with pytest.raises(TypeError, match=r"a list of 2 files or Maps: pass a list of Maps only, or sunpy.map.Map"):
        enhance([str(sample_path("blos")), str(sample_path("blos"))], model="light")
