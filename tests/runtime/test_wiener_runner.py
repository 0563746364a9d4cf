"""The default models' onnxruntime runner: one mirrored image cut into bands and tiles on several cores gives
the whole-image pass bit for bit, the 8 passes of 'full' share one filtering with the moved banks, the blocked
layout reproduces the plain graph, and the cores used follow OMP_NUM_THREADS. Speed itself is measured by
``make bench`` (benchmarks/run.py), never asserted here."""

import itertools

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

pytest.importorskip("onnxruntime")
from enhance.cores import cpu_cores, needed_boxes  # noqa: E402
from enhance.inference.pipeline import RunOptions, enhance_array  # noqa: E402
from enhance.inference.tiling import run_tiled  # noqa: E402
from enhance.models.hybrid import WienerEnhanceNet, symmetrize_filters  # noqa: E402
from enhance.models.runner import Dihedral  # noqa: E402
from enhance.runtime.ort_blocked import blocked_graph  # noqa: E402
from enhance.runtime.runners import make_runner  # noqa: E402
from enhance.runtime.wiener_onnx import (  # noqa: E402
    D4_PASSES,
    FILTERINGS_KEPT,
    WienerOnnxNetwork,
    d4_bank,
    d4_symmetric,
    wiener_graph_from_network,
)

NOISE = 2e-3


@pytest.fixture(scope="module")
def graph(random_wiener):
    """A small Wiener-Enhance graph with random weights; 16 channels, so that the blocked layout applies."""
    return wiener_graph_from_network(random_wiener(0)).SerializeToString()


def _image(shape=(61, 45)):
    return (1 + 0.1 * np.random.default_rng(0).standard_normal(shape)).astype(np.float32)


def _whole_passes(runner, image):
    """The reference: each rotation or flip of the whole image mirrored by the margin, one session call each."""
    passes = D4_PASSES if runner.symmetric else D4_PASSES[:1]
    total = 0.0
    for transpose, turns in passes:
        moved = np.ascontiguousarray(np.rot90(image.T if transpose else image, turns))
        padded = np.pad(moved, runner.margin, mode="symmetric")[None, None]
        out = runner.session.run(None, {"image": padded, "noise": np.array([runner.noise], np.float32)})[0][0, 0]
        out = np.rot90(out, -turns)
        total = total + (out.T if transpose else out).astype(np.float64)
    return (total / len(passes)).astype(np.float32)


@pytest.mark.parametrize("symmetric", [False, True])
def test_bands_tiles_and_workers_give_the_whole_image_pass_bit_for_bit(graph, symmetric):
    runner = WienerOnnxNetwork(graph, threads=1, symmetric=symmetric).bind(NOISE)
    image = _image()
    expected = runner.run_image(image, tile=None, workers=1)
    for tile, workers in ((None, 2), (None, 3), (7, 2), (16, 3), (30, 1), (200, 2)):
        np.testing.assert_array_equal(runner.run_image(image, tile=tile, workers=workers), expected)
    # The passes share one filtering of the image with constant kernels (for 'full' the moved banks'), which
    # rounds differently from the graph's own linear stage on each moved image: a few float32 steps.
    reference = _whole_passes(runner, image)
    assert np.abs(expected - reference).max() <= 1e-6 * np.abs(reference).max()


def _disk(shape):
    """True inside a disk that leaves the corners out, as off-limb pixels of a full-disk image."""
    y, x = np.ogrid[: shape[0], : shape[1]]
    return np.hypot(y - (shape[0] - 1) / 2, x - (shape[1] - 1) / 2) < 0.45 * min(shape)


@pytest.mark.parametrize("symmetric", [False, True])
def test_pixels_not_needed_are_skipped_and_the_needed_ones_unchanged(graph, symmetric):
    runner = WienerOnnxNetwork(graph, threads=1, symmetric=symmetric).bind(NOISE)
    image, needed = _image((70, 64)), _disk((70, 64))
    expected = runner.run_image(image, tile=None, workers=1)
    fine = np.repeat(np.repeat(needed, 2, axis=0), 2, axis=1)
    for tile, workers in ((None, 1), (None, 2), (16, 2), (9, 1)):
        done, every = [], []
        found = runner.run_image(image, tile=tile, workers=workers, needed=needed, done=done.append)
        runner.run_image(image, tile=tile, workers=workers, done=every.append)
        np.testing.assert_array_equal(found[fine], expected[fine])
        assert np.isnan(found[~fine]).mean() > 0.3  # the corners' tiles or boxes were not run
        assert sum(done) == sum(every)  # every tile counted, skipped ones too
    with pytest.raises(ValueError, match="needed must have the image's shape"):
        runner.run_image(image, needed=needed[1:])
    nothing = runner.run_image(image, workers=2, needed=np.zeros(image.shape, bool))
    assert nothing.shape == (140, 128)
    assert np.isnan(nothing).all()


@pytest.mark.parametrize("symmetric", [False, True])
def test_tiles_split_along_the_limb_give_the_same_pixels_and_count_each_tile_once(graph, symmetric):
    runner = WienerOnnxNetwork(graph, threads=1, symmetric=symmetric).bind(NOISE)
    y, x = np.ogrid[:256, :240]
    image, needed = _image((256, 240)), np.hypot(y - 290, x - 280) < 300  # the limb across a corner
    expected = runner.run_image(image, workers=1)
    fine = np.repeat(np.repeat(needed, 2, axis=0), 2, axis=1)
    for tile, workers in ((None, 1), (None, 2), (128, 2)):
        regions = [((0, 256), (0, 240))] if tile is None else [((0, 128), (0, 128))]
        assert len(needed_boxes(needed, regions, image.shape, margin=runner.margin)[0]) > 1
        done, every = [], []
        found = runner.run_image(image, tile=tile, workers=workers, needed=needed, done=done.append)
        runner.run_image(image, tile=tile, workers=workers, done=every.append)
        np.testing.assert_array_equal(found[fine], expected[fine])
        assert np.isnan(found[~fine]).mean() > 0.5  # more of the corner skipped than one box per tile leaves
        assert sum(done) == sum(every) == len(every)  # each tile once, however many boxes it ran as


@pytest.mark.parametrize("odd", [False, True])
def test_full_subtracts_the_constant_response_once_and_matches_the_network(odd, random_wiener):
    # 'full' of a network with exact constants: the passes leave the response to constants out and the runner
    # subtracts its average over the 8 passes, the mean over the phases, once per pixel.
    net = random_wiener(3, exact_constants=True, odd=odd)
    runner = WienerOnnxNetwork(wiener_graph_from_network(net).SerializeToString(), threads=1, symmetric=True)
    runner = runner.bind(NOISE)
    image = _image((48, 40))
    expected = _whole_passes(runner, image)  # each pass of the whole graph, its response to constants included
    for tile, workers in ((None, 1), (16, 2)):
        found = runner.run_image(image, tile=tile, workers=workers)
        assert np.abs(found - expected).max() <= 1e-6 * np.abs(expected).max()
        # 'light': the graph without the response, less the response per pixel and phase, is the whole graph
        one = runner.one_pass()
        found = one.run_image(image, tile=tile, workers=workers)
        assert np.abs(found - _whole_passes(one, image)).max() <= 1e-6 * np.abs(expected).max()
    assert runner.constant_response() is not None
    assert WienerOnnxNetwork(graph_of(net, exact=False), threads=1).constant_response() is None
    for value in (0.37, 1.0, 1.8):  # constants stay constant, to float32 rounding
        flat = runner.run_image(np.full((30, 34), value, np.float32))
        assert np.abs(flat - value).max() <= 1e-6 * value
        one = runner.one_pass().run_image(np.full((30, 34), value, np.float32))  # 'light': in its one pass
        assert np.abs(one - value).max() <= 1e-6 * value
    with torch.no_grad():  # and without the response the passes would not keep them
        net.exact_constants = False
        raw = net(torch.full((1, 1, 30, 34), 1.0), torch.tensor([NOISE]), symmetric=True)[0, 0].numpy()
    assert np.abs(raw - 1.0).max() > 1e-3


@pytest.mark.parametrize("odd", [False, True])
def test_light_with_exact_constants_gives_the_whole_image_bit_for_bit_in_tiles_bands_and_boxes(odd, random_wiener):
    # Its linear stage runs on the image moved to half its size, which sums by the parity of rows and columns:
    # every window starts on an even row and column of the mirrored image, whatever the tile or box.
    runner = WienerOnnxNetwork(graph_of(random_wiener(4, odd=odd), exact=True), threads=1).bind(NOISE)
    image, needed = _image((61, 45)), _disk((61, 45))
    expected = runner.run_image(image, workers=1)
    for tile, workers in ((None, 2), (7, 2), (16, 3), (37, 1), (9, 1)):
        np.testing.assert_array_equal(runner.run_image(image, tile=tile, workers=workers), expected)
    fine = np.repeat(np.repeat(needed, 2, axis=0), 2, axis=1)
    for tile in (None, 9):
        found = runner.run_image(image, tile=tile, workers=2, needed=needed)
        np.testing.assert_array_equal(found[fine], expected[fine])
    if odd:
        np.testing.assert_array_equal(runner.run_image(-image, tile=7, workers=2), -expected)


@pytest.mark.parametrize("symmetric", [False, True])
def test_the_runners_own_graphs_run_in_the_layout_of_the_files_graph(symmetric, random_wiener):
    # 'light''s graph without the response and 'full''s network reading its estimate are probed with all their
    # inputs: a probe that lacked one would fall back to the slower plain layout without a word.
    runner = WienerOnnxNetwork(graph_of(random_wiener(4), exact=True), threads=1, symmetric=symmetric).bind(NOISE)
    runner.run_image(_image((30, 34)), workers=1)
    assert len(runner.layouts) == 2
    assert set(runner.layouts.values()) == {runner.layout}


@pytest.mark.parametrize("symmetric", [False, True])
def test_one_far_outlier_or_nan_pixel_changes_only_the_outputs_it_reaches(symmetric, random_wiener):
    # The offset the linear stage's input is taken from is the image's median: a pixel far off moves no other. A
    # non-finite pixel makes exactly the outputs within the margin NaN, at either parity of row and column (the
    # paired convolutions' zero taps would carry it one pixel further on one side).
    runner = WienerOnnxNetwork(graph_of(random_wiener(4), exact=True), threads=1, symmetric=symmetric).bind(NOISE)
    image = _image((64, 64))
    expected = runner.run_image(image, workers=2)
    margin = runner.margin
    for (y, x), bad in itertools.product(((30, 32), (31, 33), (2, 61)), (5e8, np.nan, -np.inf)):
        spoiled = image.copy()
        spoiled[y, x] = bad
        found = runner.run_image(spoiled, workers=2)
        near = np.zeros(image.shape, bool)
        near[max(y - margin, 0) : y + margin + 1, max(x - margin, 0) : x + margin + 1] = True
        near = np.repeat(np.repeat(near, 2, axis=0), 2, axis=1)
        np.testing.assert_array_equal(found[~near], expected[~near])
        assert np.isfinite(found).all() if np.isfinite(bad) else np.isnan(found[near]).all()


def graph_of(net, *, exact):
    copy = WienerEnhanceNet(net.depth, net.width, net.taps, noise_unit=net.noise_unit, exact_constants=exact,
                            odd=net.odd)  # fmt: skip
    copy.load_state_dict(net.state_dict())
    return wiener_graph_from_network(copy).SerializeToString()


def test_run_tiled_hands_the_whole_image_to_the_runner(graph):
    runner = WienerOnnxNetwork(graph, threads=2, symmetric=True).bind(NOISE)
    image = _image((40, 52))
    expected = runner.run_image(image, workers=1)
    found = run_tiled(image, runner, tile=11, margin=runner.margin, device="cpu", workers=2)
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_array_equal(runner(image[None, None])[0, 0], expected)  # a batch of one, as before


def _counting(monkeypatch):
    """Count the calls of `WienerOnnxNetwork.run_image` and the passes each ran."""
    calls, run_image = [], WienerOnnxNetwork.run_image

    def counted(self, image, **options):
        calls.append(8 if self.symmetric else 1)
        return run_image(self, image, **options)

    monkeypatch.setattr(WienerOnnxNetwork, "run_image", counted)
    return calls


def test_a_one_pass_runner_averaged_runs_the_shared_8_passes_once(graph, monkeypatch):
    light = WienerOnnxNetwork(graph, threads=2, symmetric=False)
    expected = WienerOnnxNetwork(graph, threads=2, symmetric=True).bind(NOISE).run_image(_image((40, 52)))
    calls = _counting(monkeypatch)
    for averaged in (light.averaged().bind(NOISE), Dihedral(light).bind(NOISE), Dihedral(light.bind(NOISE))):
        calls.clear()
        found = run_tiled(_image((40, 52)), averaged, tile=None, margin=light.margin, device="cpu", workers=2)
        assert calls == [8]  # one whole-image run of the 8 passes, not 8 one-pass runs
        np.testing.assert_array_equal(found, expected)
        np.testing.assert_array_equal(averaged(_image((40, 52))[None, None])[0, 0], expected)


def test_the_pipeline_runs_the_full_graph_through_run_image(graph, monkeypatch):
    calls = _counting(monkeypatch)
    full, light = (WienerOnnxNetwork(graph, threads=2, symmetric=symmetric) for symmetric in (True, False))
    options = RunOptions(noise=NOISE, qs_level=1.0)
    image = _image((40, 52))
    calls.clear()  # each runner's probe ran once
    out = enhance_array(image, kind="intensity", network=full, options=options)
    assert calls == [8]
    np.testing.assert_allclose(out, full.bind(NOISE).run_image(image), rtol=0, atol=1e-6)
    calls.clear()
    enhance_array(image, kind="intensity", network=light, options=options)
    assert calls == [1]


@pytest.mark.parametrize("exact", [False, True])
def test_a_symmetric_bank_filters_once_for_the_8_passes(exact, random_wiener):
    # A bank averaged over the rotations and flips (as the default models are trained) is every pass's bank: the
    # image is filtered once, with 4 phases instead of 32, and 'full' is still the mean of the 8 whole passes.
    net = random_wiener(5, exact_constants=exact)
    with torch.no_grad():
        net.filters.copy_(symmetrize_filters(net.filters))
    runner = WienerOnnxNetwork(wiener_graph_from_network(net).SerializeToString(), threads=1, symmetric=True)
    runner = runner.bind(NOISE)
    assert d4_symmetric(runner.filter_bank[0])
    assert runner.shared_linear()[2].shape == (4,)
    image = _image((48, 40))
    expected = _whole_passes(runner, image)
    for tile, workers in ((None, 1), (16, 2)):
        found = runner.run_image(image, tile=tile, workers=workers)
        assert np.abs(found - expected).max() <= 1e-6 * np.abs(expected).max()
    asymmetric = WienerOnnxNetwork(graph_of(random_wiener(5, exact_constants=exact), exact=exact), symmetric=True)
    assert asymmetric.bind(NOISE).shared_linear()[2].shape == (32,)  # random filters: one filtering per pass


def test_d4_symmetric_bounds_each_moved_kernel_by_a_millionth_of_its_absolute_sum():
    # averaged in float64: its moved banks agree to float64 rounding; in float32 to about 1e-7 of each kernel
    bank = symmetrize_filters(torch.rand(8, 1, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    bank = bank.numpy()
    assert d4_symmetric(bank)
    assert d4_symmetric(bank.astype(np.float32))
    total = np.abs(bank[5, 0]).sum()
    nudged = bank.copy()
    nudged[5, 0, 1, 2] += 0.5e-6 * total  # within a millionth of the kernel's absolute sum: still one bank
    assert d4_symmetric(nudged)
    nudged[5, 0, 1, 2] += 1e-6 * total  # further: each pass needs its own
    assert not d4_symmetric(nudged)
    # A level of weights a hundred times smaller, each tilted by under one float32 step of the bank's largest
    # weight: the steps add up over the taps, so the level's moved kernels differ too much to share a filtering.
    small = bank.copy()
    small[4:] *= 0.01
    assert d4_symmetric(small)
    step = float(np.spacing(np.float32(np.abs(small).max())))
    small[4:, 0] += 0.85 * step * np.sign(np.arange(7) - 3)
    assert not d4_symmetric(small)
    assert not d4_symmetric(np.random.default_rng(0).random((8, 1, 7, 7)))


@pytest.mark.parametrize("transform", D4_PASSES)
def test_each_pass_estimate_is_the_image_filtered_with_the_moved_bank(transform):
    rng = np.random.default_rng(3)
    bank, image = rng.standard_normal((1, 2, 2, 5, 5)), rng.standard_normal((13, 11))

    def linear(x, bank):  # the polyphase linear stage on an image padded by taps // 2, as an x2 image
        phases = [[correlate2d(x, bank[0, a, b], mode="valid") for b in (0, 1)] for a in (0, 1)]
        fine = np.empty((2 * phases[0][0].shape[0], 2 * phases[0][0].shape[1]))
        for a, b in np.ndindex(2, 2):
            fine[a::2, b::2] = phases[a][b]
        return fine

    transpose, turns = transform
    turned = np.rot90(linear(np.rot90(image.T if transpose else image, turns), bank), -turns)
    np.testing.assert_allclose(turned.T if transpose else turned, linear(image, d4_bank(bank, transform)), atol=1e-12)


@pytest.mark.parametrize("symmetric", [False, True])
def test_images_smaller_than_the_margin_are_mirrored_as_a_whole(graph, symmetric):
    runner = WienerOnnxNetwork(graph, threads=2, symmetric=symmetric).bind(NOISE)
    image = _image((3, 5))  # the margin (13) is larger than the image: mirrored again and again
    expected = _whole_passes(runner, image)
    assert np.abs(runner.run_image(image, workers=2) - expected).max() <= 1e-6 * np.abs(expected).max()


def test_the_blocked_layout_reproduces_the_plain_graph(graph):
    blocked = WienerOnnxNetwork(graph, threads=1).bind(NOISE)
    plain = WienerOnnxNetwork(graph, threads=1, blocked=False).bind(NOISE)
    assert plain.layout == "plain"
    rewritten = blocked_graph(graph)
    if rewritten is None:
        pytest.skip("onnxruntime lays out no blocked convolutions on this CPU")
    assert blocked.layout == "blocked"
    # The residual crops and sums run inside the blocked convolutions: no layout conversion back into them.
    assert not [node for node in rewritten.graph.node if node.op_type == "ReorderInput"]
    image = _image()
    expected = plain.run_image(image)
    assert np.abs(blocked.run_image(image) - expected).max() <= 1e-6 * np.ptp(expected)


def test_cores_follow_omp_num_threads(graph, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_cores() == 3
    runner = WienerOnnxNetwork(graph)
    assert runner.workers == 3
    assert make_runner(runner, backend="auto", precision="float32", device="cpu") == (runner, 3)
    assert WienerOnnxNetwork(graph, threads=2).workers == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    assert cpu_cores() >= 1


def test_an_unbound_runner_and_a_wrong_shape_are_refused(graph):
    runner = WienerOnnxNetwork(graph, threads=1)
    with pytest.raises(ValueError, match="bind"):
        runner.run_image(_image())
    with pytest.raises(ValueError, match=r"shape \(ny, nx\)"):
        runner.bind(NOISE).run_image(_image()[None])


def test_full_filters_each_noise_level_with_its_own_kernels_and_keeps_the_last_ones(random_wiener):
    # The kernels are written into a graph per noise level (graph_template): a level seen before, one since
    # dropped from the kept ones, and a new one each give what a fresh runner at that level gives.
    net = random_wiener(6)
    with torch.no_grad():
        net.filters.copy_(symmetrize_filters(net.filters))
    graph = wiener_graph_from_network(net).SerializeToString()
    runner = WienerOnnxNetwork(graph, threads=1, symmetric=True)
    image = _image((30, 26))
    levels = [NOISE * 1.3**k for k in range(FILTERINGS_KEPT + 2)]
    first = {noise: runner.bind(noise).run_image(image, workers=1) for noise in levels}
    assert not np.array_equal(first[levels[0]], first[levels[-1]])
    for noise in (levels[0], levels[-1]):
        fresh = WienerOnnxNetwork(graph, threads=1, symmetric=True).bind(noise).run_image(image, workers=1)
        np.testing.assert_array_equal(runner.bind(noise).run_image(image, workers=1), fresh)
        np.testing.assert_array_equal(first[noise], fresh)


@pytest.mark.parametrize("symmetric", [False, True])
def test_a_constant_image_with_a_nan_region_stays_constant_away_from_it(symmetric, random_wiener):
    # The offset is taken from the finite pixels before the non-finite ones are run at its value: a large NaN
    # region does not move it, and a constant stays constant beyond the region's reach (its estimate is the offset
    # plus the filtering of zeros: the rest is the network's rounding of its response to constants).
    net = random_wiener(7, taps=15)  # wide kernels: a linear stage on the uncentred image would round visibly
    runner = WienerOnnxNetwork(graph_of(net, exact=True), threads=1, symmetric=symmetric).bind(NOISE)
    image = np.full((80, 80), 0.8, np.float32)
    image[:, :50] = np.nan
    found = runner.run_image(image, workers=2)
    reach = 2 * (50 + runner.margin)
    assert np.isnan(found[:, :reach]).all()
    assert np.abs(found[:, reach:] - np.float32(0.8)).max() <= 1.2e-7  # two float32 steps
