"""The first pixel fast (issue 29): ``enhance run --model light`` loads only what onnxruntime's path uses, and
the shipped models' graphs come from a cache that is verified before use and rebuilt when it cannot be trusted."""

import ast
import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from enhance.cli import build_parser
from enhance.data import sample_path
from enhance.io import limb_pixels
from enhance.runtime import onnx_checks, onnx_runner
from enhance.runtime.export import shipped_onnx_network
from enhance.runtime.onnx_cache import CACHE_ENV, cache_dir, graph_key, layout_key, read_graph, write_graph

pytest.importorskip("onnxruntime")

_RUN = (
    "import sys; from enhance.cli import main\n"
    "assert main(['run', sys.argv[1], '-o', sys.argv[2], '--model', sys.argv[3], '--device', 'cpu', '-q']) == 0\n"
    "print(sorted(m for m in ('torch', 'onnx', 'ml_dtypes', 'google.protobuf', 'dask', 'matplotlib', 'sunpy',"
    " 'enhance.demo', 'enhance.analysis', 'scipy.integrate', 'scipy.optimize', 'scipy.spatial') if m in sys.modules))\n"
)


def _graphs(folder, prefix):
    """The plain graphs (``PREFIX-KEY.onnx``) and this machine's layouts (``PREFIX-KEY-MACHINE.onnx``) in a cache."""
    names = sorted(path.name for path in folder.glob(f"{prefix}-*.onnx"))
    plain = [name for name in names if re.fullmatch(rf"{prefix}-[0-9a-f]{{32}}\.onnx", name)]
    return plain, [name for name in names if re.fullmatch(rf"{prefix}-[0-9a-f]{{32}}-[0-9a-f]{{16}}\.onnx", name)]


def _run(tmp_path, out, cache, model="light"):
    env = {**os.environ, CACHE_ENV: str(cache)}
    done = subprocess.run([sys.executable, "-c", _RUN, str(sample_path("intensity")), str(tmp_path / out), model],
                          capture_output=True, text=True, check=True, timeout=300, env=env)  # fmt: skip
    return done.stdout.strip(), fits.getdata(tmp_path / out)


def test_enhance_run_light_imports_neither_torch_nor_onnx_once_its_graph_is_cached(tmp_path):
    cache = tmp_path / "cache"
    first, cold = _run(tmp_path, "cold.fits", cache)
    assert "onnx" in ast.literal_eval(first)  # the graph was built and checked with the onnx package, then cached
    plain, layouts = _graphs(cache / "onnx", "intensity-light")
    assert len(plain) == 1
    assert layouts == [f"{layout_key(plain[0][:-5])}.onnx"]  # the layout found for this machine, kept
    # the network reading its linear stage, without its response to constant images (subtracted per pixel), the
    # linear stage's kernels and the filtering they are written into
    for part in ("estimate", "kernels-1", "filtering-1"):
        assert (cache / "onnx" / f"{plain[0][:-5]}-{part}.onnx").is_file()
    warm_modules, warm = _run(tmp_path, "warm.fits", cache)
    assert warm_modules == "[]"  # neither torch nor onnx, nor the modules of other subcommands
    assert np.array_equal(cold, warm, equal_nan=True)


def test_enhance_run_full_keeps_its_shared_linear_stage_and_then_imports_no_onnx(tmp_path):
    cache = tmp_path / "cache"
    first, cold = _run(tmp_path, "cold.fits", cache, model="full")
    assert "onnx" in ast.literal_eval(first)
    names = sorted(path.name for path in (cache / "onnx").glob("intensity-full-*.onnx"))
    assert any(name.endswith("-estimate.onnx") for name in names)  # the network reading the shared estimate
    assert any(name.endswith("-kernels-1.onnx") for name in names)  # the 8 passes' linear stage: one symmetric bank
    assert any(name.endswith("-filtering-1.onnx") for name in names)  # the template its kernels are written into
    warm_modules, warm = _run(tmp_path, "warm.fits", cache, model="full")
    assert warm_modules == "[]"
    assert np.array_equal(cold, warm, equal_nan=True)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


@pytest.fixture
def checks(monkeypatch):
    """Counts the calls of check_onnx_model (the onnx package's check of a graph before it runs)."""
    calls = []

    def counted(data, name):
        calls.append(name)
        return onnx_checks.check_onnx_model(data, name)

    monkeypatch.setattr(onnx_runner, "check_onnx_model", counted)
    return calls


def _outputs(network):
    image = np.random.default_rng(1).normal(0, 0.3, (1, 1, 40, 36)).astype(np.float32)
    return network.bind(3e-3)(image) if hasattr(network, "bind") else network(image)


def _entry(cache, model="light", *, layout=False):
    (graph,) = _graphs(cache, f"blos-{model}")[layout]
    return cache / graph, (cache / graph).with_suffix(".json")


@pytest.mark.parametrize("model", ["light", "paper-light"])
def test_a_cached_graph_runs_as_the_built_one_without_being_checked_again(cache, checks, model):
    built = shipped_onnx_network("blos", model, threads=1)
    assert len(checks) == 1
    cached = shipped_onnx_network("blos", model, threads=1)
    assert len(checks) == 1  # read back: its checks were made when it was written
    assert cached.checked == built.checked
    assert np.array_equal(_outputs(cached), _outputs(built))
    if model == "light":
        for a, b in zip(cached.filter_bank, built.filter_bank, strict=True):
            assert np.array_equal(a, b)
        assert (cached.margin, cached.noise_unit, cached.symmetric) == (built.margin, built.noise_unit, False)


def _flip_a_weight(path):
    data = bytearray(path.read_bytes())
    data[-1000] ^= 0x40
    path.write_bytes(bytes(data))


def _edit_record(path):
    record = json.loads(path.read_text())
    record["checked"]["noise_unit"] *= 2  # would scale the noise level the graph is bound to
    path.write_text(json.dumps(record))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-10])


@pytest.mark.parametrize(("which", "tamper"), [(0, _flip_a_weight), (0, _truncate), (0, lambda p: p.unlink()),
                                               (1, _edit_record), (1, lambda p: p.write_text("{")),
                                               (1, lambda p: p.unlink())])  # fmt: skip
def test_a_tampered_cache_entry_is_rebuilt_and_checked_never_trusted(cache, checks, which, tamper):
    built = shipped_onnx_network("blos", "light", threads=1)
    files = _entry(cache)
    original = [path.read_bytes() for path in files]
    tamper(files[which])
    again = shipped_onnx_network("blos", "light", threads=1)
    assert len(checks) == 2  # built and checked again
    assert [path.read_bytes() for path in files] == original  # and the entry written afresh
    assert np.array_equal(_outputs(again), _outputs(built))


@pytest.mark.parametrize("tamper", [_flip_a_weight, _truncate, lambda p: p.unlink(), lambda p: p.write_bytes(b"")])
def test_a_tampered_layout_is_found_again_and_gives_the_same_bits(cache, tamper):
    built = shipped_onnx_network("blos", "light", threads=1)
    graph, record = _entry(cache, layout=True)
    original = graph.read_bytes()
    assert (len(original) > 0) == (built.layout == "blocked")  # empty: the plain graph runs on this machine
    tamper(graph)
    again = shipped_onnx_network("blos", "light", threads=1)
    assert again.layout == built.layout
    assert np.array_equal(_outputs(again), _outputs(built))
    # kept afresh (onnxruntime names the nodes of its rewritten graph anew: bytes may differ, values do not)
    assert read_graph(graph.name[: -len(".onnx")]) is not None
    assert (graph.stat().st_size > 0) == (len(original) > 0)
    assert json.loads(record.read_text())["checked"] == {"layout": built.layout}


def test_a_blocked_graph_kept_for_another_network_is_not_run_but_rewritten(cache):
    built = shipped_onnx_network("blos", "light", threads=1)
    if built.layout != "blocked":
        pytest.skip("onnxruntime chose no blocked layout on this CPU")
    shipped_onnx_network("intensity", "light", threads=1)
    (theirs,) = _graphs(cache, "intensity-light")[1]
    mine, _ = _entry(cache, layout=True)
    key = mine.name[: -len(".onnx")]
    write_graph(key, (cache / theirs).read_bytes(), {"checked": {"layout": "blocked"}})  # whole, but another graph
    again = shipped_onnx_network("blos", "light", threads=1)
    assert again.layout == "blocked"  # the probe refused the kept graph: rewritten for this network, and kept
    assert np.array_equal(_outputs(again), _outputs(built))
    assert read_graph(key)[0] != (cache / theirs).read_bytes()


def test_without_the_onnx_package_no_plain_layout_is_kept(cache, monkeypatch):
    from enhance.runtime import onnx_cache

    real = onnx_cache.importlib.util.find_spec
    monkeypatch.setattr(onnx_cache.importlib.util, "find_spec", lambda name: None if name == "onnx" else real(name))
    onnx_cache.keep_layout("k", "plain", None)  # the rewrite could not have run: nothing learnt of this machine
    assert onnx_cache.kept_layout("k") is True
    onnx_cache.keep_layout("k", "blocked", b"graph")
    assert onnx_cache.kept_layout("k") == b"graph"
    monkeypatch.setattr(onnx_cache.importlib.util, "find_spec", real)
    onnx_cache.keep_layout("other", "plain", None)
    assert onnx_cache.kept_layout("other") is False


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_the_cache_is_not_read(cache, checks):
    shipped_onnx_network("blos", "light", threads=1)
    graph, _ = _entry(cache)
    graph.unlink()
    os.mkfifo(graph)  # reading it would wait for a writer forever
    shipped_onnx_network("blos", "light", threads=1)
    assert len(checks) == 2
    assert graph.is_fifo()  # atomic_write never replaces a FIFO: the graph is built each time, still correct


def test_each_model_weights_and_version_has_its_own_entry(cache, tmp_path):
    shipped_onnx_network("blos", "light", threads=1)
    shipped_onnx_network("blos", "full", threads=1)  # the same weights file, another graph (symmetric)
    assert [[len(found) for found in _graphs(cache, f"blos-{model}")] for model in ("light", "full")] == [[1, 1]] * 2
    parts = {"weights_sha256": "0" * 64, "symmetric": False, "card": {"kind": "blos"}}
    key = graph_key("blos", "light", **parts)
    others = [graph_key("blos", "light", **{**parts, "weights_sha256": "1" * 64}),
              graph_key("blos", "full", **parts), graph_key("intensity", "light", **parts),
              graph_key("blos", "light", **{**parts, "symmetric": True}),
              graph_key("blos", "light", **{**parts, "card": {"kind": "blos", "recipe": 2}})]  # fmt: skip
    assert len({key, *others}) == 6
    assert write_graph(key, b"graph", {"checked": {"depth": 1}})
    assert read_graph(key)[0] == b"graph"
    for other in others:  # an entry copied under another key's name is not that key's
        (cache / f"{other}.onnx").write_bytes((cache / f"{key}.onnx").read_bytes())
        (cache / f"{other}.json").write_bytes((cache / f"{key}.json").read_bytes())
        assert read_graph(other) is None


def test_an_unwritable_cache_folder_leaves_the_cache_out(tmp_path, monkeypatch, checks):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))  # cannot be created, even by root
    first = shipped_onnx_network("blos", "light", threads=1)
    second = shipped_onnx_network("blos", "light", threads=1)
    assert len(checks) == 2  # built and checked each time
    assert np.array_equal(_outputs(first), _outputs(second))
    assert write_graph("k", b"graph", {"checked": {}}) is False


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(CACHE_ENV)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert cache_dir() == tmp_path / "xdg" / "solar-enhance"


def test_the_record_digest_covers_the_graph_and_the_checked_values(cache):
    assert write_graph("k", b"graph", {"checked": {"depth": 1}})
    record = json.loads((cache / "k.json").read_text())
    body = json.dumps({key: value for key, value in record.items() if key != "sha256"}, sort_keys=True)
    assert record["sha256"] == hashlib.sha256(b"graph" + body.encode()).hexdigest()


def test_only_the_chosen_subcommand_is_built():
    assert set(build_parser("run")._subparsers._group_actions[0].choices) == {"run"}  # noqa: SLF001 - argparse's
    everything = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    assert {"run", "demo", "train", "export"} <= everything
    assert set(build_parser("no-such-command")._subparsers._group_actions[0].choices) == everything  # noqa: SLF001


def _wcs_count(header, finite, within=0.02):
    """limb_pixels' count with astropy.wcs on every pixel (the reference)."""
    from astropy.wcs import WCS

    rows, cols = np.mgrid[0 : finite.shape[0], 0 : finite.shape[1]]
    lon, lat = WCS(header).celestial.pixel_to_world_values(cols, rows)
    radius = np.degrees(np.arccos(np.cos(np.radians(lon)) * np.cos(np.radians(lat)))) * 3600 / header["RSUN_OBS"]
    return int(np.count_nonzero((radius > 1 - within) & finite))


def _random_header(rng, shape):
    header = fits.Header({"CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec",
                          "CRPIX1": rng.uniform(-50, 150), "CRPIX2": rng.uniform(-50, 150),
                          "CDELT1": rng.uniform(0.3, 2.0) * rng.choice([-1, 1]), "CDELT2": rng.uniform(0.3, 2.0),
                          "CRVAL1": rng.uniform(-900, 900), "CRVAL2": rng.uniform(-900, 900)})  # fmt: skip
    form = rng.integers(4)
    if form == 1:
        header["CROTA2"] = rng.uniform(-180, 180)
    elif form == 2:
        a = rng.uniform(-np.pi, np.pi)
        header.update({"PC1_1": np.cos(a), "PC1_2": -np.sin(a), "PC2_1": np.sin(a), "PC2_2": np.cos(a)})
    elif form == 3:
        header.update({f"CD{i}_{j}": rng.uniform(-1, 1) for i in (1, 2) for j in (1, 2)})
    if rng.integers(3) == 0:  # in degrees
        header.update({"CUNIT1": "deg", "CUNIT2": "deg", "CRVAL1": header["CRVAL1"] / 3600,
                       "CRVAL2": header["CRVAL2"] / 3600})  # fmt: skip
        for key in ("CDELT1", "CDELT2", "CD1_1", "CD1_2", "CD2_1", "CD2_2"):
            if key in header:
                header[key] /= 3600
    distance = _wcs_max_distance(header, shape)
    header["RSUN_OBS"] = distance / 0.98 * rng.uniform(0.97, 1.1)  # the band near the farthest pixel
    return header


def _wcs_max_distance(header, shape):
    from astropy.wcs import WCS

    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    lon, lat = WCS(header).celestial.pixel_to_world_values(cols, rows)
    return float(np.degrees(np.arccos(np.cos(np.radians(lon)) * np.cos(np.radians(lat)))).max() * 3600)


def test_the_limb_check_gives_the_wcs_answer_with_or_without_a_wcs():
    rng = np.random.default_rng(29)
    counted = 0
    for _ in range(200):
        shape = tuple(rng.integers(8, 120, size=2))
        header = _random_header(rng, shape)
        finite = np.ones(shape, bool)
        expected = _wcs_count(header, finite)
        assert limb_pixels(header, finite) == expected, header.tostring(sep="\n")
        counted += expected > 0
    assert 10 < counted < 190  # both answers were asked for


def test_the_packaged_sample_is_checked_without_a_wcs(monkeypatch):
    import astropy.wcs

    built = []

    def fake(*args):
        built.append(args)
        msg = "a WCS was built"
        raise RuntimeError(msg)

    monkeypatch.setattr(astropy.wcs, "WCS", fake)
    header = fits.getheader(sample_path("intensity"))
    assert limb_pixels(header, np.ones((200, 200), bool)) == 0
    assert built == []  # at disk centre, 70 arcsec across: far inside the band, no WCS needed
    header["CRVAL1"] = 900.0
    assert limb_pixels(header, np.ones((200, 200), bool)) == 0  # near the limb: a WCS (the fake raised: no advice)
    assert len(built) == 1
