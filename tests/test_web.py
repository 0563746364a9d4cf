"""The browser page (``web/``, built by ``make web``) and ``enhance web``.

The page must give the numbers of ``enhance run --model light`` (its default; and of ``--model paper-light``
when that is chosen): it is driven headless in Debian's Chromium by Playwright, fed the sample cut-outs and
hand-made FITS files through its file input, and the FITS it offers for download is compared with the Python
result, pixels and header, and the noise level it told the network with Python's. The ports of the Python
steps (quiet-Sun level, nearest-finite fill, the Fourier transform, the noise level, the mirror padding, the
axes' coordinates) are checked for agreement in Node.
Each part skips, saying why, where Chromium, Playwright, Node or the built page are missing; CI
(`.ci/run`) installs them and runs ``make web`` first.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from enhance.cli import main
from enhance.exceptions import EnhanceUserWarning

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
DIST = WEB / "dist"
PACKAGE_DATA = ROOT / "src" / "enhance" / "data"
SHARED_QS = ROOT.parent / "shared" / "data" / "hmi_continuum_qs.fits"
CHROMIUM = Path(os.environ.get("ENHANCE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
NODE = shutil.which("node")
#: Largest relative difference allowed between the page and Python (the issue's 1e-4).
RTOL = 1e-4

needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
needs_dist = pytest.mark.skipif(not (DIST / "index.html").is_file(), reason="web/dist is not built (run `make web`)")


# ---------------------------------------------------------------------------------------------------
# The server


@pytest.fixture(scope="module")
def server():
    if not (DIST / "index.html").is_file():
        pytest.skip("web/dist is not built (run `make web`)")
    from enhance.web import make_server

    httpd = make_server(DIST, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@needs_dist
def test_server_sends_isolation_headers_and_types(server):
    with urllib.request.urlopen(f"{server}/") as response:
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert "Enhance in the browser" in response.read().decode()
    with urllib.request.urlopen(f"{server}/ort/ort-wasm-simd-threaded.wasm") as response:
        assert response.headers["Content-Type"] == "application/wasm"
    with urllib.request.urlopen(f"{server}/ort/ort.wasm.min.mjs") as response:
        assert response.headers["Content-Type"] == "text/javascript"
    with urllib.request.urlopen(f"{server}/models/index.json") as response:
        index = json.load(response)
    for kind in ("intensity", "blos"):
        for model in ("light", "paper-light"):
            with urllib.request.urlopen(f"{server}/models/enhance_{model}_{kind}.onnx") as response:
                assert response.status == 200
        entry = index[f"enhance_light_{kind}.onnx"]  # what the page needs of the graph, from its metadata
        assert (entry["model"], entry["kind"], entry["margin"], entry["symmetric"]) == ("light", kind, 18, False)
        assert entry["noise_unit"] == {"intensity": 1e-3, "blos": 1e-2}[kind]
        assert entry["noise_nodes"] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
        assert index[f"enhance_paper-light_{kind}.onnx"]["noise_unit"] is None


def test_make_server_refuses_an_unbuilt_page(tmp_path, capsys, caplog):
    from enhance.web import make_server

    with pytest.raises(FileNotFoundError, match="make web"):
        make_server(tmp_path, port=0)
    assert main(["web", "--root", str(tmp_path), "--port", "0"]) != 0
    assert "make web" in capsys.readouterr().err + caplog.text  # the command line's one-line error


@needs_dist
def test_make_server_checks_the_port():
    from enhance.web import make_server

    with pytest.raises(ValueError, match="port must be an integer in 0-65535, got 70000"):
        make_server(DIST, port=70000)


def test_web_module_does_not_import_torch():
    code = "import sys, enhance.web, enhance.cli; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@needs_dist
def test_enhance_web_script_prints_the_address():
    script = Path(sys.executable).with_name("enhance")
    if not script.is_file():
        pytest.skip("the enhance script is not installed next to this Python")
    with subprocess.Popen([str(script), "web", "--port", "0"], stdout=subprocess.PIPE, text=True) as process:
        try:
            line = process.stdout.readline()
            assert line.startswith("serving ")
            assert "http://127.0.0.1:" in line
            address = line.split(" at ", 1)[1].split()[0]
            with urllib.request.urlopen(address) as response:
                assert response.status == 200
                assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        finally:
            process.terminate()
            process.wait(timeout=10)


# ---------------------------------------------------------------------------------------------------
# The JavaScript modules in Node


@needs_node
def test_javascript_unit_tests():
    result = subprocess.run([NODE, "--test", "tests/"], cwd=WEB, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _node(script: str, payload):
    """Run an ES module script with ``payload`` (JSON) on stdin; return its JSON output."""
    result = subprocess.run([NODE, "--input-type=module", "-e", script], input=json.dumps(payload), capture_output=True,
                            text=True, cwd=WEB, timeout=120, check=True)  # fmt: skip
    return json.loads(result.stdout)


@needs_node
def test_nearest_finite_fill_is_scipys_including_ties():
    """The page fills NaN pixels from the very neighbour `fill_nonfinite` (scipy's feature transform) picks."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    cases = []
    for k in range(40):
        ny, nx = (int(n) for n in rng.integers(1, 30, 2))
        finite = rng.random((ny, nx)) < rng.uniform(0.05, 0.95)
        if k % 4 == 0:  # a disk and its off-limb corners: many equidistant neighbours
            yy, xx = np.indices((ny, nx))
            finite = (yy - ny / 2) ** 2 + (xx - nx / 3) ** 2 < (min(ny, nx) / 2) ** 2
        finite.flat[0] = True
        cases.append(finite)
    script = """
        import { nearestFinite } from "./src/hmi.js";
        import fs from "node:fs";
        const cases = JSON.parse(fs.readFileSync(0, "utf8"));
        const found = cases.map(({ mask, h, w }) => Array.from(nearestFinite(Uint8Array.from(mask), h, w)));
        console.log(JSON.stringify(found));
    """
    payload = [{"mask": c.astype(int).ravel().tolist(), "h": c.shape[0], "w": c.shape[1]} for c in cases]
    ties = 0
    for finite, found in zip(cases, _node(script, payload), strict=True):
        iy, ix = ndimage.distance_transform_edt(~finite, return_distances=False, return_indices=True)
        expected = (iy * finite.shape[1] + ix).ravel()
        assert np.array_equal(np.array(found), expected)
        # count pixels with several nearest neighbours: the tie-breaking is really exercised
        yy, xx = np.indices(finite.shape)
        for y, x in zip(*np.nonzero(~finite), strict=True):
            d = (yy[finite] - y) ** 2 + (xx[finite] - x) ** 2
            ties += int((d == d.min()).sum() > 1)
    assert ties > 50


@needs_node
def test_quiet_sun_level_is_pythons():
    from enhance.observation.quiet_sun import estimate_qs_level, qs_stride

    rng = np.random.default_rng(5)
    images = [fits.getdata(PACKAGE_DATA / "hmi_continuum_ar.fits").astype(np.float64)]
    if SHARED_QS.is_file():
        images.append(fits.getdata(SHARED_QS).astype(np.float64))
    images.append(1 + 0.04 * rng.standard_normal((300, 301)))  # stride 2: the subsample is ported too
    spotty = 5000 * (1 + 0.05 * rng.standard_normal((90, 120)))
    spotty[20:60, 30:80] *= 0.3
    spotty[:5] = np.nan
    images.append(spotty)
    script = """
        import { estimateQsLevel, qsStride, subsample } from "./src/hmi.js";
        import fs from "node:fs";
        const images = JSON.parse(fs.readFileSync(0, "utf8"));
        console.log(JSON.stringify(images.map(({ data, h, w }) => {
          const values = Float64Array.from(data, (v) => (v === null ? NaN : v));
          const stride = qsStride(h, w);
          return [stride, estimateQsLevel(subsample(values, h, w, stride).values)];
        })));
    """
    payload = [{"data": [None if not np.isfinite(v) else float(v) for v in im.ravel()], "h": im.shape[0],
                "w": im.shape[1]} for im in images]  # fmt: skip
    for image, (stride, level) in zip(images, _node(script, payload), strict=True):
        assert stride == qs_stride(image.shape)
        assert level == estimate_qs_level(image)  # exactly: the same medians of the same float64 values


@needs_node
def test_quiet_sun_normalisation_is_pythons_level_or_surface():
    """Flat fields get Python's level; limb-darkened ones Python's surface, sample for sample."""
    from enhance.observation.quiet_sun import QuietSunSurface, qs_normalisation

    data = fits.getdata(PACKAGE_DATA / "hmi_continuum_ar.fits").astype(np.float64)
    yy, xx = np.indices(data.shape)
    limb = data * (1 - 0.6 * xx / 200) * 30000
    limb[(yy - 260) ** 2 + (xx + 60) ** 2 > 300**2] = np.nan  # off the limb
    big = np.tile(np.linspace(0.5, 0.9, 620), (300, 1)) * (1 + 0.03 * np.sin(np.arange(620) * 1.3))  # stride 2
    spot = np.ones((120, 120)) + 0.03 * np.cos(np.arange(120))[:, None]
    spot[10:110, 10:110] = 0.3  # a spot over most of the field: not flat, but no surface spread either
    images = [data, limb, big, spot]
    script = """
        import { qsNormalisation } from "./src/hmi.js";
        import fs from "node:fs";
        const images = JSON.parse(fs.readFileSync(0, "utf8"));
        console.log(JSON.stringify(images.map(({ data, h, w }) => {
          const r = qsNormalisation(Float64Array.from(data, (v) => (v === null ? NaN : v)), h, w);
          return typeof r === "number" ? r : { samples: Array.from(r.samples), spread: r.spread, stride: r.stride };
        })));
    """
    payload = [{"data": [None if not np.isfinite(v) else float(v) for v in im.ravel()], "h": im.shape[0],
                "w": im.shape[1]} for im in images]  # fmt: skip
    kinds = []
    for image, found in zip(images, _node(script, payload), strict=True):
        with warnings.catch_warnings():  # the spot's field is warned of (little quiet Sun); the page does not warn
            warnings.simplefilter("ignore", EnhanceUserWarning)
            expected = qs_normalisation(image)
        kinds.append(type(expected).__name__)
        if isinstance(expected, QuietSunSurface):
            assert found["stride"] == expected.stride
            samples = np.array(found["samples"]).reshape(expected.samples.shape)
            np.testing.assert_allclose(samples, expected.samples, rtol=1e-12)
            assert found["spread"] == pytest.approx(expected.spread, rel=1e-12)
        else:
            assert found == expected
    assert kinds == ["float", "QuietSunSurface", "QuietSunSurface", "float"]


def _floats(image):
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(image, np.float64).ravel()]


@needs_node
def test_fourier_transform_and_mirror_padding_are_numpys():
    """The page's FFT (radix 2 and Bluestein) gives numpy.fft's numbers; its padding is numpy.pad's 'symmetric'."""
    rng = np.random.default_rng(11)
    shapes = [(64, 64), (100, 90), (37, 53), (1, 7), (128, 40), (16, 17)]
    images = [rng.standard_normal(shape) * 10.0 ** rng.uniform(-4, 4) for shape in shapes]
    vectors = [rng.standard_normal(n) + 1j * rng.standard_normal(n) for n in (2, 3, 5, 8, 12, 31, 64, 97, 250)]
    pads = [(rng.standard_normal((h, w)).astype(np.float32), m) for h, w, m in ((2, 2, 18), (5, 3, 4), (40, 33, 18))]
    script = """
        import { fft, powerSpectrum2d } from "./src/fft.js";
        import { padSymmetric } from "./src/hmi.js";
        import fs from "node:fs";
        const { images, vectors, pads } = JSON.parse(fs.readFileSync(0, "utf8"));
        console.log(JSON.stringify({
          powers: images.map(({ d, h, w }) => Array.from(powerSpectrum2d(Float64Array.from(d), h, w))),
          vectors: vectors.map(({ re, im }) => {
            const [r, i] = [Float64Array.from(re), Float64Array.from(im)];
            fft(r, i);
            return [Array.from(r), Array.from(i)];
          }),
          pads: pads.map(({ d, h, w, m }) => Array.from(padSymmetric(Float32Array.from(d), h, w, m))),
        }));
    """
    payload = {
        "images": [{"d": _floats(im), "h": im.shape[0], "w": im.shape[1]} for im in images],
        "vectors": [{"re": v.real.tolist(), "im": v.imag.tolist()} for v in vectors],
        "pads": [{"d": _floats(p), "h": p.shape[0], "w": p.shape[1], "m": m} for p, m in pads],
    }
    found = _node(script, payload)
    for image, power in zip(images, found["powers"], strict=True):
        expected = np.abs(np.fft.fft2(image)) ** 2
        assert np.max(np.abs(np.reshape(power, image.shape) - expected)) < 1e-13 * expected.max()
    for vector, (re, im) in zip(vectors, found["vectors"], strict=True):
        expected = np.fft.fft(vector)
        assert np.max(np.abs(np.array(re) + 1j * np.array(im) - expected)) < 1e-13 * np.max(np.abs(expected))
    for (image, margin), padded in zip(pads, found["pads"], strict=True):
        expected = np.pad(image, margin, mode="symmetric")
        assert np.array_equal(np.reshape(padded, expected.shape).astype(np.float32), expected)


def _noise_cases():
    """Normalised images (network units) and their finite masks, for every branch of network_noise."""
    rng = np.random.default_rng(17)
    continuum = fits.getdata(PACKAGE_DATA / "hmi_continuum_ar.fits").astype(np.float64)
    continuum = continuum / continuum.mean()
    blos = fits.getdata(PACKAGE_DATA / "hmi_blos_ar.fits").astype(np.float64) / 1000.0
    noisy = continuum + rng.normal(0, 3e-3, continuum.shape)
    hot = noisy.copy()
    hot[[20, 150, 151], [30, 90, 90]] = [5.0, -3.0, 4.0]  # isolated hot pixels (and a pair)
    holed = noisy.copy()
    finite = np.ones(holed.shape, bool)
    finite[:70, :90] = False  # missing corner (filled for the network: its tiles are left out)
    off_limb = noisy.copy()
    off_limb[:, :60] = 0.0  # off-limb pixels given as 0: constant tiles
    edge = noisy.copy()
    edge[:, 130:] += rng.normal(0, 0.05, (200, 70))  # a much noisier strip: tiles rejected
    board = noisy + 0.05 * (np.indices(noisy.shape).sum(axis=0) % 2)  # a pattern at the Nyquist frequency
    quiet = 1 + rng.normal(0, 1e-4, (150, 170))  # below the floor
    loud = 1 + rng.normal(0, 5e-2, (96, 140))  # above the filter bank: clamped (a warning)
    narrow = rng.normal(0, 0.03, (40, 300))  # narrower than two tiles: read whole (Bluestein)
    big = rng.normal(0, 2e-2, (1060, 1041)).astype(np.float32)  # the central 1024 square
    cases = [
        ("continuum sample", continuum, None, 1e-3),
        ("magnetogram sample", blos, None, 1e-2),
        ("noisy", noisy, None, 1e-3),
        ("hot pixels", hot, None, 1e-3),
        ("missing corner", holed, finite, 1e-3),
        ("off-limb zeros", off_limb, None, 1e-3),
        ("noisy strip", edge, None, 1e-3),
        ("pattern", board, None, 1e-3),
        ("quiet", quiet, None, 1e-3),
        ("loud", loud, None, 1e-3),
        ("narrow", narrow, None, 1e-2),
        ("small", noisy[:31, :80], None, 1e-3),
        ("all missing", noisy, np.zeros(noisy.shape, bool), 1e-3),
        ("large", big, None, 1e-2),
    ]
    return cases


@needs_node
def test_noise_level_is_pythons():
    """The page measures the noise level as measure_noise does and picks it as network_noise does: measured,
    HMI's nominal level (small image, no usable tile, corners not white), the floor, the larger of the two when
    the measurement cannot be believed (with Python's warning), and the clamp warning."""
    import warnings

    import astropy.units as u

    from enhance.exceptions import EnhanceUserWarning
    from enhance.inference.pipeline import NOISE_INNER_WIDTH, noise_choice
    from enhance.observation.noise import NOISE_BAND_START, measure_noise

    cases = _noise_cases()
    script = """
        import { clampWarning, networkNoise } from "./src/noise.js";
        import fs from "node:fs";
        const cases = JSON.parse(fs.readFileSync(0, "utf8"));
        console.log(JSON.stringify(cases.map(({ d, h, w, finite, nominal }) => {
          const image = Float64Array.from(d, (v) => (v === null ? NaN : v));
          const mask = finite && Uint8Array.from(finite);
          const chosen = networkNoise(image, h, w, { nominal, finite: mask });
          const bank = { unit: nominal, nodes: [0.25, 0.5, 1, 2, 4, 8, 16, 32] };
          const clamp = clampWarning(chosen.sigma, bank);
          return { sigma: chosen.sigma, how: chosen.how, source: chosen.source, reason: chosen.reason,
                   warning: chosen.warning, clamp, found: chosen.measurement };
        })));
    """
    payload = [{"d": _floats(image), "h": image.shape[0], "w": image.shape[1], "nominal": nominal,
                "finite": None if finite is None else finite.astype(int).ravel().tolist()}
               for _, image, finite, nominal in cases]  # fmt: skip
    hows, reasons, counts = set(), set(), []
    for (name, image, finite, nominal), found in zip(cases, _node(script, payload), strict=True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            choice = noise_choice(image, nominal=nominal, finite=finite)
        sigma = choice.value
        warned = [str(w.message) for w in caught if issubclass(w.category, EnhanceUserWarning)]
        assert found["sigma"] == pytest.approx(sigma, rel=1e-12, abs=0), name
        assert (found["source"], found["reason"]) == (choice.source, choice.reason), name  # ENH_NSRC, ENH_NWHY
        assert bool(found["warning"]) == bool(warned), (name, warned)
        if warned:  # the same text but for how the level is set in the page
            assert found["warning"].split("; ")[0] == warned[0].split("; ")[0], name
        clamped = not 0.25 <= sigma / nominal <= 32
        assert bool(found["clamp"]) == clamped, name
        hows.add(found["how"])
        assert (found["found"] is None) == (min(image.shape) < 32), name  # measured on the central square
        if found["found"] is not None:
            top, left = max((image.shape[0] - 1024) // 2, 0), max((image.shape[1] - 1024) // 2, 0)
            window = (slice(top, top + 1024), slice(left, left + 1024))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # the median of no tile ('all missing')
                expected = measure_noise(image[window], band_stop=NOISE_BAND_START + NOISE_INNER_WIDTH / u.arcsec,
                                         finite=None if finite is None else finite[window])  # fmt: skip
            js = found["found"]
            for key in ("reliable", "reason", "tiles", "missing", "rejected", "outliers"):
                assert js[key] == getattr(expected, key), (name, key)
            for key in ("sigma", "whiteness"):
                if np.isfinite(getattr(expected, key)):
                    assert js[key] == pytest.approx(getattr(expected, key), rel=1e-12), (name, key)
            reasons.add(expected.reason.split(" ")[1] if expected.reason else "")
            counts.append([expected.missing, expected.rejected, expected.outliers])
    assert hows == {"measured", "nominal", "floor"}  # every branch was exercised
    assert reasons == {"", "periodic", "tile"}, reasons  # reliable, a pattern, no usable tile
    assert np.all(np.max(counts, axis=0) > 0)  # tiles left out for missing or constant pixels, rejected; outliers


WCS_KEYS = ("NAXIS", "NAXIS1", "NAXIS2", "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRPIX1", "CRPIX2", "CRVAL1",
            "CRVAL2", "CDELT1", "CDELT2", "CD1_1", "CD1_2", "CD2_1", "CD2_2", "PC1_1", "PC1_2", "PC2_1", "PC2_2",
            "CROTA2")  # fmt: skip


@needs_node
def test_input_and_enhanced_axes_are_the_headers_helioprojective_coordinates(tmp_path):
    """The input panel's axes and the enhanced panel's, from the input header and from Python's x2 header
    (upscale_header), span the same field, and are astropy's coordinates of those headers' pixel centres (the
    page's linear map is the TAN projection to 0.01 arcsec over the 1200 pixels of the PC file's offset)."""
    import astropy.units as u
    from astropy.wcs import WCS

    from enhance.io import upscale_header

    headers = {
        "continuum sample": fits.getheader(PACKAGE_DATA / "hmi_continuum_ar.fits"),
        "no CRPIX": fits.getheader(_limb_darkened_file(tmp_path / "limb.fits")),
        "rotated CD": fits.getheader(_wcs_file(tmp_path / "cd.fits")),
        "PC": fits.getheader(_limb_file(tmp_path / "pc.fits")),
    }
    pairs = {name: (header, upscale_header(header)) for name, header in headers.items()}
    points = [(0.0, 0.0), (37.0, 150.0), (199.0, 199.0), (-0.5, 120.25)]
    script = """
        import { Header } from "./src/fits.js";
        import { linearWcs } from "./src/hmi.js";
        import { axisExtent } from "./src/view.js";
        import fs from "node:fs";
        const { pairs, points } = JSON.parse(fs.readFileSync(0, "utf8"));
        const header = (cards) => new Header(cards.map(([key, value]) => ({ key, value, raw: null })));
        console.log(JSON.stringify(pairs.map(([input, output]) => {
          const [a, b] = [linearWcs(header(input)), linearWcs(header(output))];
          const naxis = (cards) => [1, 2].map((i) => cards.find(([k]) => k === `NAXIS${i}`)[1]);
          const extent = (wcs, cards) => axisExtent(wcs, ...naxis(cards));
          const extents = [extent(a, input), extent(b, output)];
          return { extents, input: points.map(([x, y]) => a.world(x, y)),
            output: points.map(([x, y]) => b.world(2 * x + 0.5, 2 * y + 0.5)) };
        })));
    """
    cards = [[[[key, h[key]] for key in WCS_KEYS if key in h] for h in pair] for pair in pairs.values()]
    found = _node(script, {"pairs": cards, "points": points})

    def arcsec(header, x, y):
        header = header.copy()
        for axis in (1, 2):  # a helioprojective axis without CUNIT is in arcsec (sunpy, the page)
            header.setdefault(f"CUNIT{axis}", "arcsec")
        wcs = WCS(header, naxis=2)
        world = wcs.wcs_pix2world([[x, y]], 0)[0] * [u.Unit(unit).to(u.arcsec) for unit in wcs.wcs.cunit]
        return (world + 648000.0) % 1296000.0 - 648000.0  # longitudes about 0

    for (name, (header, x2)), result in zip(pairs.items(), found, strict=True):
        inner, outer = result["extents"]
        np.testing.assert_allclose(inner["x"], outer["x"], atol=1e-9, err_msg=name)
        np.testing.assert_allclose(inner["y"], outer["y"], atol=1e-9, err_msg=name)
        np.testing.assert_allclose(result["input"], result["output"], atol=1e-9, err_msg=name)
        for (x, y), world in zip(points, result["output"], strict=True):
            np.testing.assert_allclose(world, arcsec(x2, 2 * x + 0.5, 2 * y + 0.5), atol=1e-2, err_msg=name)
        if "CRPIX1" in header:  # astropy reads a missing CRPIX as 0, sunpy (and the page) as the centre
            for (x, y), world in zip(points, result["input"], strict=True):
                np.testing.assert_allclose(world, arcsec(header, x, y), atol=1e-2, err_msg=name)
    sample = found[0]["extents"][0]
    np.testing.assert_allclose([sample["x"], sample["y"]], [[-50.4, 50.4], [-50.4, 50.4]], atol=1e-9)


# ---------------------------------------------------------------------------------------------------
# The page in Chromium


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the tests extra)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    outside = []
    errors = []
    page.on("request", lambda request: None if request.url.startswith((server, "blob:", "data:")) else outside.append(
        request.url))  # fmt: skip
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(f"{server}/")
    page.wait_for_selector("body[data-state=idle]", state="attached", timeout=30_000)
    yield page
    context.close()
    assert outside == [], f"the page requested other origins: {outside}"
    assert errors == [], f"uncaught errors in the page: {errors}"


def _submit(page, path, *, kind="auto", model="light", noise="", timeout=120_000):
    """Give the page a file; return 'done' or 'error' once it has finished."""
    page.select_option("#kind", kind)
    page.select_option("#model", model)
    if model == "light":
        page.fill("#noise", noise)
    page.evaluate("document.body.dataset.state = 'submitted'")
    page.set_input_files("#file", str(path))
    page.wait_for_selector("body[data-state=done], body[data-state=error]", state="attached", timeout=timeout)
    return page.get_attribute("body", "data-state")


def _download(page, target):
    with page.expect_download() as info:
        page.click("#download")
    info.value.save_as(target)
    return target


def _version():
    from importlib.metadata import version

    return version("solar-enhance")


def _python_run(path, out, *, model="light", noise=None):
    """``enhance run --model MODEL`` on onnxruntime: (output, header, the noise level told the network or None)."""
    from enhance.inference import pipeline

    told = []
    decide = pipeline.noise_choice

    def recording(*args, **kwargs):
        choice = decide(*args, **kwargs)
        told.append(choice.value)
        return choice

    extra = [] if noise is None else ["--noise", str(noise)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "noise_choice", recording)
        assert main(["run", str(path), "-o", str(out), "--model", model, "--backend", "onnx", *extra]) == 0
    with fits.open(out) as hdul:
        return hdul[0].data.astype(np.float64), hdul[0].header.copy(), (told[0] if told else None)


def _relative_difference(web, expected):
    """Largest difference over the finite pixels, as a fraction of the data range of Python's output."""
    finite = np.isfinite(expected)
    return np.max(np.abs(web[finite] - expected[finite])) / np.ptp(expected[finite])


def _wcs_file(path):
    """An integer magnetogram with BSCALE/BZERO/BLANK, blank pixels and a rotated CD-matrix WCS."""
    data = fits.getdata(PACKAGE_DATA / "hmi_blos_ar.fits").astype(np.float64)
    raw = np.round((data - 10.0) / 0.25).astype(np.int32)
    blank = -(2**31)
    raw[:12, :40] = blank  # an off-limb corner
    raw[100:104, 90:93] = blank  # a hole inside the field
    hdu = fits.PrimaryHDU(raw)
    angle = np.deg2rad(3.0)
    header = hdu.header
    header.update(BSCALE=0.25, BZERO=10.0, BLANK=blank, BUNIT="Gauss", CONTENT="MAGNETOGRAM", CTYPE1="HPLN-TAN",
                  CTYPE2="HPLT-TAN", CUNIT1="arcsec", CUNIT2="arcsec", CRPIX1=100.5, CRPIX2=-20.25, CRVAL1=-310.0,
                  CRVAL2=215.5, CD1_1=0.504 * np.cos(angle), CD1_2=-0.504 * np.sin(angle),
                  CD2_1=0.504 * np.sin(angle), CD2_2=0.504 * np.cos(angle), R_SUN=1890.5, X0_MP=2047.5,
                  Y0_MP=2040.25, DATAMEAN=3.0, TELESCOP="SDO/HMI")  # fmt: skip
    header["HISTORY"] = "a cut-out of the packaged sample, as scaled 32-bit integers"
    hdu.writeto(path)
    return path


def _limb_file(path):
    """A float32 continuum image with NaN off-limb pixels, PC matrix and CDELT, and a long string card."""
    data = fits.getdata(PACKAGE_DATA / "hmi_continuum_ar.fits").astype(np.float32) * np.float32(52000.0)
    yy, xx = np.indices(data.shape)
    data[(yy + 150) ** 2 + (xx + 40) ** 2 > 330**2] = np.nan
    hdu = fits.PrimaryHDU(data)
    hdu.header.update(BUNIT="DN/s", CDELT1=0.5035, CDELT2=0.5035, CRPIX1=-1200.0, CRPIX2=55.0, CRVAL1=0.0,
                      CRVAL2=0.0, PC1_1=0.99999, PC1_2=-0.0044, PC2_1=0.0044, PC2_2=0.99999, CTYPE1="HPLN-TAN",
                      CTYPE2="HPLT-TAN", COMMENT="continuum with an off-limb corner",
                      OBJECT="a continuum cut-out whose description is longer than one FITS card can hold, "
                      "so that it is written with CONTINUE cards")  # fmt: skip
    hdu.writeto(path)
    return path


def _limb_darkened_file(path):
    """Scaled 16-bit integers (float32 in Python) whose quiet Sun falls by half across the field: the
    quiet-Sun surface, with a NaN off-limb corner and no CRPIX (the reference pixel is the centre)."""
    data = fits.getdata(PACKAGE_DATA / "hmi_continuum_ar.fits").astype(np.float64)
    yy, xx = np.indices(data.shape)
    counts = data * (1 - 0.5 * xx / data.shape[1]) * 40000.0
    raw = np.round((counts - 30000.0) / 2.0).astype(np.int16)
    raw[(yy - 250) ** 2 + (xx + 40) ** 2 > 300**2] = -32768
    hdu = fits.PrimaryHDU(raw)
    hdu.header.update(BSCALE=2.0, BZERO=30000.0, BLANK=-32768, BUNIT="DN/s", CDELT1=0.504, CDELT2=0.504,
                      CUNIT1="arcsec", CUNIT2="arcsec", CONTENT="CONTINUUM INTENSITY")  # fmt: skip
    hdu.writeto(path)
    return path


def _noisy_file(path):
    """The continuum sample with white noise 3 times HMI's added, in float64: the page measures the level."""
    data = fits.getdata(PACKAGE_DATA / "hmi_continuum_ar.fits").astype(np.float64)
    noisy = data + np.random.default_rng(2).normal(0.0, 3e-3 * np.median(data), data.shape)
    fits.PrimaryHDU(noisy, fits.getheader(PACKAGE_DATA / "hmi_continuum_ar.fits")).writeto(path)
    return path


def _uint16_file(path):
    """Unsigned 16-bit counts (BZERO 32768, which astropy reads as uint16 and Python enhances in float64)."""
    data = fits.getdata(PACKAGE_DATA / "hmi_continuum_ar.fits").astype(np.float64)
    hdu = fits.PrimaryHDU(np.round(data * 50000.0).astype(np.uint16))
    hdu.header.update(BUNIT="DN", CDELT1=0.504, CDELT2=0.504, CRPIX1=80.0, CRPIX2=120.0, TELESCOP="SDO/HMI")
    hdu.writeto(path)
    return path


SAMPLES = {
    "continuum_ar": lambda tmp: PACKAGE_DATA / "hmi_continuum_ar.fits",
    "blos_ar": lambda tmp: PACKAGE_DATA / "hmi_blos_ar.fits",
    "continuum_qs": lambda tmp: SHARED_QS,
    "blos_int_blank_cd": lambda tmp: _wcs_file(tmp / "blos_int.fits"),
    "continuum_limb_nan": lambda tmp: _limb_file(tmp / "continuum_nan.fits"),
    "continuum_surface_int16": lambda tmp: _limb_darkened_file(tmp / "continuum_limb.fits"),
    "continuum_uint16": lambda tmp: _uint16_file(tmp / "continuum_uint16.fits"),
    "continuum_noisy_float64": lambda tmp: _noisy_file(tmp / "continuum_noisy.fits"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SAMPLES))
def test_page_gives_pythons_numbers_and_header(page, tmp_path, name):
    """The default light model: output, header and noise level of ``enhance run --model light``."""
    source = SAMPLES[name](tmp_path)
    if not Path(source).is_file():
        pytest.skip(f"{source} is not present")
    assert _submit(page, source) == "done", page.text_content("#message")
    web_path = _download(page, tmp_path / "web.fits")
    expected, python_header, noise = _python_run(source, tmp_path / "python.fits")
    # the noise level told the network (measured in the page as network_noise measures it)
    assert float(page.get_attribute("#status", "data-noise")) == pytest.approx(noise, rel=1e-6)
    if name == "continuum_noisy_float64":
        assert noise == pytest.approx(3e-3, rel=0.1)  # measured, not HMI's nominal 1e-3
    with fits.open(web_path) as hdul:
        assert len(hdul) == 1
        web = hdul[0].data
        header = hdul[0].header
    original = fits.getheader(source)
    assert web.shape == expected.shape == (2 * original["NAXIS2"], 2 * original["NAXIS1"])
    assert web.dtype == np.dtype(">f4" if python_header["BITPIX"] == -32 else ">f8")  # float32 stays float32

    # Pixels: NaN at the same (2x2) places, and the same values within 1e-4 of the data range.
    web = web.astype(np.float64)
    assert np.array_equal(np.isnan(web), np.isnan(expected))
    assert _relative_difference(web, expected) < RTOL

    # Header: every key of Python's x2 header, with its value.
    assert header["NAXIS1"] == 2 * original["NAXIS1"]
    assert header["NAXIS2"] == 2 * original["NAXIS2"]
    for axis in (1, 2):
        crpix = original.get(f"CRPIX{axis}", (original[f"NAXIS{axis}"] + 1) / 2)  # none: the centre, as sunpy
        assert header[f"CRPIX{axis}"] == 2 * crpix - 0.5
        if f"CDELT{axis}" in original:
            assert header[f"CDELT{axis}"] == original[f"CDELT{axis}"] / 2
        for other in (1, 2):
            if f"CD{axis}_{other}" in original:
                assert header[f"CD{axis}_{other}"] == pytest.approx(original[f"CD{axis}_{other}"] / 2, rel=1e-15)
            if f"PC{axis}_{other}" in original:
                assert header[f"PC{axis}_{other}"] == original[f"PC{axis}_{other}"]
    kind = "blos" if "blos" in name else "intensity"
    assert header["ENH_MODL"] == "light"  # enhance.io.provenance_cards: marks the file as enhanced
    assert header["ENH_KIND"] == kind
    assert header["ENH_VER"] == _version()
    provenance = {"ENH_VER", "ENH_MODL", "ENH_KIND"} - set(python_header)  # where `enhance run` does not add them
    skip = {"HISTORY", "COMMENT", "", "CHECKSUM", "DATASUM", *provenance}
    assert {k for k in python_header if k not in skip} == {k for k in header if k not in skip}
    # a quiet-Sun surface is fitted by the page's own smoothing, and divides the image in float32 (as in Python):
    # its level and extremes (ENH_QSLV, ENH_QSMN, ENH_QSMX) agree to float32 rounding, every other float to 1e-15
    surface = {"ENH_QSLV", "ENH_QSMN", "ENH_QSMX"} if python_header.get("ENH_QSTY") == "surface" else set()
    for key in python_header:
        if key not in skip:
            value = python_header[key]
            rel = 2.0**-24 if key in surface else 1e-15
            assert header[key] == (pytest.approx(value, rel=rel) if isinstance(value, float) else value), key
    assert header["ENH_REG"] == f"{kind}/light"  # the registry's name and sha256 of the weights that ran
    assert len(header["ENH_SHA"]) == 64
    kept = [str(line) for line in original.get("HISTORY", [])]
    history = [str(line) for line in header["HISTORY"]]
    assert history[: len(kept)] == kept  # the input's HISTORY, then the new line (72 characters a card)
    added = "".join(history[len(kept) :])
    assert added.startswith("solar-enhance "), added
    assert f"model: light {kind}" in added, added


@pytest.mark.slow
@pytest.mark.parametrize("name", ["continuum_ar", "blos_ar"])
def test_page_runs_the_papers_light_network_when_chosen(page, tmp_path, name):
    source = SAMPLES[name](tmp_path)
    page.select_option("#model", "paper-light")
    assert page.is_disabled("#noise")  # the paper's network is told no noise level
    assert _submit(page, source, model="paper-light") == "done", page.text_content("#message")
    web_path = _download(page, tmp_path / "web.fits")
    assert web_path.exists()
    expected, python_header, noise = _python_run(source, tmp_path / "python.fits", model="paper-light")
    assert noise is None
    assert page.get_attribute("#status", "data-noise") is None
    with fits.open(web_path) as hdul:
        assert hdul[0].header["ENH_MODL"] == "paper-light"
        # the cards of what was assumed and of the weights: no noise level (the paper's network is told none)
        web_cards, cards = ({key: value for key, value in h.items() if key.startswith("ENH_") and key != "ENH_VER"}
                            for h in (hdul[0].header, python_header))  # fmt: skip
        assert "ENH_NOIS" not in cards
        assert cards["ENH_REG"] == f"{'blos' if 'blos' in name else 'intensity'}/paper-light"
        assert web_cards.keys() == cards.keys()
        for key, value in cards.items():
            assert web_cards[key] == (pytest.approx(value, rel=1e-15) if isinstance(value, float) else value), key
        assert "model: paper-light" in "".join(str(line) for line in hdul[0].header["HISTORY"])
        assert _relative_difference(hdul[0].data.astype(np.float64), expected) < RTOL
    light, _, _ = _python_run(source, tmp_path / "light.fits")
    assert _relative_difference(light, expected) > 100 * RTOL  # two different networks: the choice is real


@pytest.mark.slow
def test_page_takes_a_noise_level_by_hand(page, tmp_path):
    """A noise level typed in (gauss for a magnetogram) is what ``enhance run --noise`` takes."""
    source = PACKAGE_DATA / "hmi_blos_ar.fits"
    assert _submit(page, source, noise="25") == "done", page.text_content("#message")
    assert float(page.get_attribute("#status", "data-noise")) == 0.025
    web = fits.getdata(_download(page, tmp_path / "web.fits")).astype(np.float64)
    expected, _, noise = _python_run(source, tmp_path / "python.fits", noise=25.0)
    assert noise == 0.025
    assert _relative_difference(web, expected) < RTOL
    nominal, _, _ = _python_run(source, tmp_path / "nominal.fits")
    assert _relative_difference(nominal, expected) > 100 * RTOL  # the level changes the result


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "value", "noise", "bound"), [("intensity", 0.93, "", 1e-7 * 0.93),
                                                                ("blos", -3000.0, "20", 1e-4)])  # fmt: skip
def test_page_keeps_a_constant_image_constant(page, tmp_path, kind, value, noise, bound):
    """The exported 'light' graph centres its linear stage on the image's median: a constant continuum image
    or magnetogram comes back to float32 rounding."""
    path = tmp_path / f"constant_{kind}.fits"
    hdu = fits.PrimaryHDU(np.full((64, 72), value, np.float32))
    hdu.header.update(BUNIT="Gauss" if kind == "blos" else "", CDELT1=0.504, CDELT2=0.504, CUNIT1="arcsec",
                      CUNIT2="arcsec")  # fmt: skip
    hdu.writeto(path)
    assert _submit(page, path, kind=kind, noise=noise) == "done", page.text_content("#message")
    web = fits.getdata(_download(page, tmp_path / "web.fits")).astype(np.float64)
    assert web.shape == (128, 144)
    assert np.abs(web - value).max() <= bound  # 0 measured; 4.8e-7 of the value and 1.2e-3 G without the centring


@pytest.mark.slow
def test_input_and_enhanced_panels_have_the_same_axes(page, tmp_path):
    """The tick labels of the input panel are those of the enhanced panel: -50 to 50 arcsec for the continuum
    sample, also for a header without CRPIX (whose reference pixel is the centre, as for the x2 header)."""
    page.evaluate("""() => {
        window.labels = {};
        const fillText = CanvasRenderingContext2D.prototype.fillText;
        CanvasRenderingContext2D.prototype.fillText = function (text, x, y) {
          (window.labels[this.canvas.id] ??= []).push(String(text));
          return fillText.call(this, text, x, y);
        };
    }""")  # fmt: skip
    for source in (PACKAGE_DATA / "hmi_continuum_ar.fits", _limb_darkened_file(tmp_path / "limb.fits")):
        page.evaluate("window.labels = {}")
        assert _submit(page, source) == "done", page.text_content("#message")
        labels = page.evaluate("window.labels")
        title_in, *ticks_in = labels["input-view"]
        title_out, *ticks_out = labels["output-view"]
        assert title_in.startswith("HMI input")
        assert title_out.startswith("Enhanced x2")
        assert ticks_in == ticks_out
        assert ticks_in[:3] == ["-50", "0", "50"]  # x: 200 pixels of 0.504 arcsec about 0


@pytest.mark.slow
def test_page_falls_back_to_one_thread_without_isolation_headers(browser, tmp_path):
    """Any static server will do: without COOP/COEP the page runs on one thread, with the same result."""
    import http.server

    if not (DIST / "index.html").is_file():
        pytest.skip("web/dist is not built (run `make web`)")

    class Plain(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                          ".wasm": "application/wasm"}  # fmt: skip

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(DIST), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
        page.wait_for_selector("body[data-state=idle]", state="attached", timeout=30_000)
        assert page.evaluate("crossOriginIsolated") is False
        assert _submit(page, PACKAGE_DATA / "hmi_blos_ar.fits") == "done", page.text_content("#message")
        assert "1 thread (page not cross-origin isolated)" in page.text_content("#timing")
        web = fits.getdata(_download(page, tmp_path / "web.fits")).astype(np.float64)
    finally:
        context.close()
        httpd.shutdown()
        httpd.server_close()
    expected, _, _ = _python_run(PACKAGE_DATA / "hmi_blos_ar.fits", tmp_path / "python.fits")
    assert _relative_difference(web, expected) < RTOL


@pytest.mark.slow
def test_page_takes_dropped_files_and_its_sample_buttons(page):
    page.evaluate("document.body.dataset.state = 'submitted'")
    page.click("button[data-sample='hmi_blos_ar.fits']")
    page.wait_for_selector("body[data-state=done], body[data-state=error]", state="attached", timeout=120_000)
    assert "hmi_blos_ar.fits: magnetogram" in page.text_content("#status")
    data = list((PACKAGE_DATA / "hmi_continuum_ar.fits").read_bytes())
    transfer = page.evaluate_handle("""(bytes) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], "dropped.fits"));
        return transfer;
    }""", data)  # fmt: skip
    page.evaluate("document.body.dataset.state = 'submitted'")
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("body[data-state=done], body[data-state=error]", state="attached", timeout=120_000)
    assert "dropped.fits: continuum" in page.text_content("#status")


@pytest.mark.slow
def test_page_reads_gzip_and_1024_images_in_tiles(page, tmp_path):
    """A gzipped 1024x1024 continuum (two 512-pixel tiles each way in the page, one pass in Python)."""
    import gzip

    data = fits.getdata(PACKAGE_DATA / "hmi_continuum_ar.fits")
    row = np.concatenate([data, data[:, ::-1]] * 3, axis=1)[:, :1024]
    big = np.concatenate([row, row[::-1]] * 3, axis=0)[:1024]
    path = tmp_path / "continuum_1024.fits"
    fits.PrimaryHDU(big, fits.getheader(PACKAGE_DATA / "hmi_continuum_ar.fits")).writeto(path)
    packed = tmp_path / "continuum_1024.fits.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert _submit(page, packed, timeout=300_000) == "done", page.text_content("#message")
    assert "1024 x 1024 -> 2048 x 2048" in page.text_content("#timing")
    web = fits.getdata(_download(page, tmp_path / "web.fits")).astype(np.float64)
    expected, _, _ = _python_run(path, tmp_path / "python.fits")
    assert _relative_difference(web, expected) < RTOL


def _invalid_files(tmp):
    text = tmp / "notes.fits"
    text.write_text("this is a text file, not FITS\n" * 40)
    cube = tmp / "cube.fits"
    fits.PrimaryHDU(np.zeros((3, 40, 50), dtype=np.float32)).writeto(cube)
    table = tmp / "table.fits"
    columns = fits.BinTableHDU.from_columns([fits.Column("flux", "E", array=np.ones(5))])
    fits.HDUList([fits.PrimaryHDU(), columns]).writeto(table)
    rice = tmp / "rice.fits"
    data = fits.getdata(PACKAGE_DATA / "hmi_continuum_ar.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, compression_type="RICE_1")]).writeto(rice)
    unknown = tmp / "unknown.fits"
    fits.PrimaryHDU(data).writeto(unknown)  # no BUNIT, CONTENT or series name
    tesla = tmp / "tesla.fits"
    hdu = fits.PrimaryHDU(data)
    hdu.header["BUNIT"] = "T"
    hdu.writeto(tesla)
    doppler = tmp / "doppler.fits"
    hdu = fits.PrimaryHDU(data)
    hdu.header.update(BUNIT="cm/s", CONTENT="DOPPLERGRAM")
    hdu.writeto(doppler)
    sharp = tmp / "sharp.fits"
    hdu = fits.PrimaryHDU(data)
    hdu.header.update(BUNIT="G", CTYPE1="CRLN-CEA", CTYPE2="CRLT-CEA", CDELT1=0.03, CDELT2=0.03, CUNIT1="deg",
                      CUNIT2="deg")  # fmt: skip
    hdu.writeto(sharp)
    coarse = tmp / "aia_scale.fits"
    hdu = fits.PrimaryHDU(data)
    hdu.header.update(BUNIT="DN/s", CDELT1=0.6, CDELT2=0.6)
    hdu.writeto(coarse)
    enhanced = tmp / "enhanced.fits"
    hdu = fits.PrimaryHDU(data)
    hdu.header.update(BUNIT="I/Ic", ENH_VER="0.3.0")
    hdu.writeto(enhanced)
    return {
        text: "not a FITS file",
        cube: "must be 2-D (ny, nx), got shape (3, 40, 50): this is a data cube",
        table: "holds a table, not an image",
        rice: "funpack",
        unknown: "cannot tell continuum from magnetogram",
        tesla: "magnetograms must be in gauss, got BUNIT 'T'",
        doppler: "is a Dopplergram",
        sharp: "cylindrical equal-area (CEA) map",
        coarse: "pixel scale is 0.6 arcsec, more than 5 % from HMI's 0.504 arcsec",
        enhanced: "already enhanced",
    }


@pytest.mark.slow
def test_page_explains_invalid_files_and_takes_a_kind_by_hand(page, tmp_path):
    for path, message in _invalid_files(tmp_path).items():
        assert _submit(page, path) == "error", path.name
        assert page.is_visible("#message")
        text = page.text_content("#message")
        assert message in text, (path.name, text)
        assert path.name in text
        assert page.is_hidden("#results")
    # the unknown kind goes through once the kind is chosen by hand
    assert _submit(page, tmp_path / "unknown.fits", kind="intensity") == "done"
    assert "kind chosen by hand" in page.text_content("#status")


@pytest.mark.slow
def test_page_shows_views_and_times_a_400_cutout(page, tmp_path):
    """A 400x400 cut-out (the sample mirrored 2x2): panels drawn, time reported, screenshot saved."""
    data = fits.getdata(PACKAGE_DATA / "hmi_continuum_ar.fits")
    big = np.block([[data, data[:, ::-1]], [data[::-1], data[::-1, ::-1]]])
    path = tmp_path / "continuum_400.fits"
    header = fits.getheader(PACKAGE_DATA / "hmi_continuum_ar.fits")
    header.update(CRPIX1=200.5, CRPIX2=200.5, CRVAL1=-120.0, CRVAL2=310.0, CTYPE1="HPLN-TAN", CTYPE2="HPLT-TAN")
    fits.PrimaryHDU(big, header).writeto(path)
    times = []
    for _ in range(2):  # the first run also compiles the model
        assert _submit(page, path) == "done"
        times.append(float(page.get_attribute("#timing", "data-seconds")))
    assert "400 x 400 -> 800 x 800" in page.text_content("#timing")
    assert times[-1] < 60
    # the panels were drawn: the output canvas is not blank
    filled = page.evaluate("""() => {
        const c = document.getElementById('output-view');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] < 250 ? 1 : 0; return n / (d.length / 4);
    }""")
    assert filled > 0.2
    page.check("#mode-blink")
    page.check("#mode-slider")
    page.fill("#split", "30")
    folder = Path(os.environ.get("ENHANCE_WEB_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "enhance_web.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
