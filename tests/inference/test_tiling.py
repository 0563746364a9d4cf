import numpy as np
import pytest

from enhance import enhance
from enhance.inference.tiling import tile_spans


@pytest.mark.filterwarnings("ignore:tile=\\d+ is smaller than the network's reach")  # many tiles on purpose
@pytest.mark.parametrize("shape", [(37, 53), (64, 29)])
@pytest.mark.parametrize("tile", [5, 16, 23, 100])
def test_tiled_equals_whole_image(tiny_net, shape, tile):
    image = 1 + 0.1 * np.random.default_rng(0).standard_normal(shape)
    whole = enhance(image, "intensity", network=tiny_net, qs_level=1.0)
    tiled = enhance(image, "intensity", network=tiny_net, qs_level=1.0, tile=tile)
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-5 * np.abs(whole).max())


@pytest.mark.filterwarnings("ignore:tile=\\d+ is smaller than the network's reach")  # many tiles on purpose
def test_tiling_with_nan_regions(tiny_net):
    image = 1 + 0.1 * np.random.default_rng(1).standard_normal((40, 40))
    image[:, :7] = np.nan
    whole = enhance(image, "intensity", network=tiny_net, qs_level=1.0)
    tiled = enhance(image, "intensity", network=tiny_net, qs_level=1.0, tile=9)
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.isnan(tiled), np.isnan(whole))


@pytest.mark.filterwarnings("ignore:tile=\\d+ is smaller than the network's reach")
@pytest.mark.parametrize("tile", [None, 11])
def test_tiles_are_cut_to_the_needed_pixels(tiny_net, tile):
    import torch

    from enhance.inference.tiling import run_tiled
    from enhance.models.network import fold_batchnorm, receptive_margin

    net, margin = fold_batchnorm(tiny_net), receptive_margin(tiny_net.depth)
    image = (1 + 0.1 * np.random.default_rng(5).standard_normal((50, 44))).astype(np.float32)
    needed = np.zeros(image.shape, bool)
    needed[20:31, 3:9] = True  # one small patch: everything else is skipped
    counting = _CountingNetwork(net)
    whole = run_tiled(image, net, tile=tile, margin=margin, device=torch.device("cpu"))
    found = run_tiled(image, counting, tile=tile, margin=margin, device=torch.device("cpu"), needed=needed)
    fine = np.repeat(np.repeat(needed, 2, axis=0), 2, axis=1)
    np.testing.assert_allclose(found[fine], whole[fine], rtol=0, atol=1e-5)
    assert np.isnan(found).mean() > 0.9
    pixels = sum(h * w for h, w in counting.shapes)
    assert pixels <= (11 + 2 * margin) * (6 + 2 * margin) + 2 * margin * (11 + 6 + 4 * margin)  # the box and margins
    with pytest.raises(ValueError, match="needed must have the image's shape"):
        run_tiled(image, net, tile=tile, margin=margin, device=torch.device("cpu"), needed=needed.T)


def test_off_limb_pixels_are_not_run_and_the_disk_is_unchanged():
    # A full-disk-like image: the output on the disk is the same whether the corners are run or not (the
    # uncertainty needs the whole x2 grid, so with it every pixel is run).
    y, x = np.ogrid[:160, :160]
    image = 1 + 0.1 * np.random.default_rng(6).standard_normal((160, 160))
    image[np.hypot(y - 79.5, x - 79.5) > 70] = np.nan
    skipped = enhance(image, "intensity", model="light", qs_level=1.0, tile=60, noise=1e-3)
    every, _ = enhance(image, "intensity", model="light", qs_level=1.0, tile=60, noise=1e-3, uncertainty=True)
    np.testing.assert_array_equal(np.isnan(skipped), np.isnan(every))
    np.testing.assert_allclose(skipped, every, rtol=0, atol=1e-6)


def test_a_network_of_unknown_reach_runs_every_pixel():
    import torch

    class Global(torch.nn.Module):  # reads the whole image: no margin would do, and it states none
        def forward(self, x):
            up = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            return up + 0.1 * x.mean(dim=(2, 3), keepdim=True)

    image = 1 + 0.1 * np.random.default_rng(7).standard_normal((120, 120))
    image[:, 50] = 5.0  # what the missing columns are filled with (their nearest finite neighbour)
    filled = image.copy()
    filled[:, :50] = 5.0
    image[:, :50] = np.nan
    out = enhance(image, "intensity", network=Global(), backend="torch", qs_level=1.0)
    whole = enhance(filled, "intensity", network=Global(), backend="torch", qs_level=1.0)
    # Run on the whole filled image, as before: the global mean is that of the whole field, not of a box around
    # the finite pixels (which would move every output by about 0.04).
    np.testing.assert_allclose(out[:, 100:], whole[:, 100:], rtol=0, atol=1e-6)
    assert np.isnan(out[:, :100]).all()


class _OwnRunImage:
    """A runner of another package: the documented run_image without ``needed``."""

    margin, calls = 2, []

    def run_image(self, image, *, tile, workers, done):
        self.calls.append(image.shape)
        return np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)


def test_a_run_image_without_needed_runs_every_pixel():
    from enhance.inference.tiling import run_tiled

    image = np.ones((10, 12), np.float32)
    needed = np.zeros(image.shape, bool)
    needed[3:5, 3:5] = True
    out = run_tiled(image, _OwnRunImage(), tile=None, margin=2, device="cpu", needed=needed)
    assert out.shape == (20, 24)
    assert np.isfinite(out).all()


def test_too_small_margin_would_break_equality(tiny_net):
    # The margin matters: tiles without it differ from the whole-image pass.
    import torch

    from enhance.inference.tiling import run_tiled
    from enhance.models.network import fold_batchnorm

    image = (1 + 0.1 * np.random.default_rng(2).standard_normal((30, 30))).astype(np.float32)
    net = fold_batchnorm(tiny_net)
    whole = run_tiled(image, net, tile=None, margin=0, device=torch.device("cpu"))
    seamy = run_tiled(image, net, tile=10, margin=2, device=torch.device("cpu"))
    assert np.abs(seamy - whole).max() > 1e-3


def test_tile_spans_cover_everything_once():
    spans = tile_spans(50, 16, 4)
    assert [(a, b) for a, b, _, _ in spans] == [(0, 16), (16, 32), (32, 48), (48, 50)]
    assert spans[1][2:] == (12, 36)
    assert spans[0][2] == 0
    assert spans[-1][3] == 50
    with pytest.raises(ValueError, match="tile must be a positive number"):
        tile_spans(10, 0, 1)


class _CountingNetwork:
    """A numpy callable around a torch network that records its calls and how many ran at once."""

    def __init__(self, net):
        import threading

        import torch

        self.net, self.torch = net, torch
        self.shapes, self.running, self.most = [], 0, 0
        self.lock = threading.Lock()

    def __call__(self, batch):
        import time

        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.shapes.append(batch.shape[2:])
        time.sleep(0.05)  # long enough for the other worker to start its call
        with self.torch.inference_mode():
            out = self.net(self.torch.from_numpy(batch)).numpy()
        with self.lock:
            self.running -= 1
        return out


@pytest.mark.parametrize("tile", [None, 12])
def test_parallel_workers_equal_one_worker(tiny_net, tile):
    import torch

    from enhance.inference.tiling import MIN_BAND_MARGINS, run_tiled
    from enhance.models.network import fold_batchnorm, receptive_margin

    net = fold_batchnorm(tiny_net)
    margin = receptive_margin(tiny_net.depth)
    ny = 2 * MIN_BAND_MARGINS * margin + 3  # just tall enough for two bands
    image = (1 + 0.1 * np.random.default_rng(3).standard_normal((ny, 31))).astype(np.float32)
    serial = run_tiled(image, net, tile=tile, margin=margin, device=torch.device("cpu"))
    counting = _CountingNetwork(net)
    parallel = run_tiled(image, counting, tile=tile, margin=margin, device=torch.device("cpu"), workers=2)
    np.testing.assert_allclose(parallel, serial, rtol=0, atol=1e-5)
    assert counting.most == 2  # two calls really ran at once
    if tile is None:  # two bands of rows, each with its margin of context on the inner side
        assert counting.shapes == [((ny + 1) // 2 + margin, 31), (ny // 2 + margin, 31)]


def test_short_images_stay_whole_and_torch_modules_run_serially(tiny_net):
    import torch

    from enhance.inference.tiling import run_tiled
    from enhance.models.network import fold_batchnorm, receptive_margin

    net = fold_batchnorm(tiny_net)
    margin = receptive_margin(tiny_net.depth)
    image = np.ones((margin * 3, 20), dtype=np.float32)  # too short for bands of 4 margins
    counting = _CountingNetwork(net)
    run_tiled(image, counting, tile=None, margin=margin, device=torch.device("cpu"), workers=2)
    assert counting.shapes == [image.shape]
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        run_tiled(image, counting, tile=None, margin=margin, device=torch.device("cpu"), workers=0)


def test_onnx_backend_runs_bands_on_every_thread(tiny_net):
    pytest.importorskip("onnxruntime")
    import torch

    from enhance.inference.pipeline import make_runner

    runner, workers = make_runner(tiny_net, backend="onnx", precision="float32", device=torch.device("cpu"))
    assert workers == torch.get_num_threads()
    assert runner.session.get_session_options().intra_op_num_threads == 1
    image = 1 + 0.1 * np.random.default_rng(4).standard_normal((90, 40))
    onnx = enhance(image, "intensity", network=tiny_net, qs_level=1.0, backend="onnx")
    torch_out = enhance(image, "intensity", network=tiny_net, qs_level=1.0, backend="torch")
    np.testing.assert_allclose(onnx, torch_out, rtol=0, atol=1e-4)


def test_a_tile_below_the_networks_reach_warns_with_the_smallest_useful_tile(tiny_net):
    from enhance.checks import check_tile
    from enhance.exceptions import EnhanceUserWarning
    from enhance.inference.pipeline import network_margin

    # The shipped models reach 18 pixels each way: a 3-pixel tile computes (3 + 36)^2 pixels for 9.
    with pytest.warns(EnhanceUserWarning, match=r"tile=3 .* \(37 input pixels across\).* 169 times .* tile >= 37"):
        assert check_tile(3, margin=18) == 3
    assert check_tile(37, margin=18) == 37  # no warning (warnings are errors here)
    with pytest.raises(ValueError, match="tile must be None or a positive number of input pixels, got 0"):
        check_tile(0, margin=18)
    image = 1 + 0.04 * np.random.default_rng(3).standard_normal((30, 30))
    smallest = 2 * network_margin(tiny_net) + 1
    with pytest.warns(EnhanceUserWarning, match=f"use tile >= {smallest} "):
        enhance(image, "intensity", network=tiny_net, tile=smallest - 1)
    enhance(image, "intensity", network=tiny_net, tile=smallest)


@pytest.mark.filterwarnings("always:tile=\\d+ is smaller than the network's reach")  # shown, as outside pytest
def test_the_command_line_says_when_a_tile_is_below_the_networks_reach(tmp_path, weights, capsys, monkeypatch):
    from astropy.io import fits

    import enhance.inference.distributed as engine
    from enhance.cli import main

    source = tmp_path / "in.fits"
    header = fits.Header({"BUNIT": "I/Ic", "CDELT1": 0.504, "CDELT2": 0.504})
    fits.PrimaryHDU(1 + 0.04 * np.random.default_rng(4).standard_normal((20, 20)), header=header).writeto(source)
    assert main(["run", str(source), "-o", str(tmp_path / "out.fits"), "--weights", weights, "--tile", "3"]) == 0
    err = capsys.readouterr().err
    assert "enhance: warning: EnhanceUserWarning: tile=3 is smaller than the network's reach" in err
    assert "use tile >= 15 " in err  # the tiny network reaches 7 pixels each way

    # A batch (on Dask the workers' warnings do not come back) says it before any file runs.
    def not_run(task, sources, targets, finished):
        for index, (source, target) in enumerate(zip(sources, targets, strict=True)):
            finished(index, engine._unrun(source, target, "not run", "tiny"))

    monkeypatch.setattr(engine, "_run_serial", not_run)
    assert main(["run", str(source), "-o", f"{tmp_path / 'batch'}/", "--weights", weights, "--tile", "3"]) == 1
    assert "tile=3 is smaller than the network's reach" in capsys.readouterr().err


def test_the_progress_bar_counts_tiles_when_their_boxes_are_split(tiny_net, monkeypatch):
    import torch

    import enhance.inference.tiling as tiling
    from enhance.cores import needed_boxes
    from enhance.models.network import fold_batchnorm, receptive_margin

    updates = []

    class Bar:
        def __init__(self, total, **options):
            updates.append(("total", total))

        def update(self, n=1):
            updates.append(("update", n))

        def close(self):
            pass

    monkeypatch.setattr(tiling, "tqdm", Bar)
    net, margin = fold_batchnorm(tiny_net), receptive_margin(tiny_net.depth)
    y, x = np.ogrid[:192, :192]
    needed = np.hypot(y - 230, x - 230) < 250  # the limb across the first tile's corner
    image = (1 + 0.1 * np.random.default_rng(7).standard_normal(needed.shape)).astype(np.float32)
    tiles = [((y0, y0 + 96), (x0, x0 + 96)) for y0 in (0, 96) for x0 in (0, 96)]
    assert len(needed_boxes(needed, tiles, needed.shape, margin=margin)[0]) > 1  # the first tile is split
    whole = tiling.run_tiled(image, net, tile=None, margin=margin, device=torch.device("cpu"))
    for workers in (1, 2):
        updates.clear()
        found = tiling.run_tiled(image, net, tile=96, margin=margin, device=torch.device("cpu"), needed=needed,
                                 workers=workers)  # fmt: skip
        assert updates[0] == ("total", 4)
        assert sum(n for what, n in updates[1:] if what == "update") == 4
        fine = np.repeat(np.repeat(needed, 2, axis=0), 2, axis=1)
        np.testing.assert_allclose(found[fine], whole[fine], rtol=0, atol=1e-5)
