// Unit tests of the steps ported from the Python package (web/src/hmi.js): `node --test web/tests/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Header } from "../src/fits.js";
import {
  InputError, detectKind, enhanceImage, estimateQsLevel, isFlat, linearWcs, nearestFinite, padSymmetric, qsNormalisation,
  qsStride, resolveKind, upscaleHeader,
} from "../src/hmi.js";
import { axisExtent } from "../src/view.js";

function header(entries) {
  const h = new Header();
  for (const [key, value] of Object.entries(entries)) h.set(key, value, { integer: Number.isInteger(value) });
  return h;
}

test("upscaleHeader: NAXIS x2, CDELT and CD / 2, PC kept, CRPIX' = 2 CRPIX - 0.5, stale keys gone, HISTORY", () => {
  const h = header({ NAXIS: 2, NAXIS1: 200, NAXIS2: 150, CRPIX1: 100.5, CRPIX2: -3, CDELT1: 0.504, CDELT2: 0.504,
    CD1_1: 0.5, CD1_2: -0.01, PC2_1: 0.02, R_SUN: 1900.0, IMSCL_MP: 0.504, X0_MP: 2047.5, BSCALE: 0.1, BZERO: 5,
    BLANK: -32768, DATAMEAN: 1.0, CHECKSUM: "x", BUNIT: "G" });
  const out = upscaleHeader(h, 2, "model: light blos");
  assert.equal(out.get("NAXIS1"), 400);
  assert.equal(out.get("NAXIS2"), 300);
  assert.equal(out.get("CRPIX1"), 200.5);
  assert.equal(out.get("CRPIX2"), -6.5);
  assert.equal(out.get("CDELT1"), 0.252);
  assert.equal(out.get("CD1_1"), 0.25);
  assert.equal(out.get("CD1_2"), -0.005);
  assert.equal(out.get("PC2_1"), 0.02);
  assert.equal(out.get("R_SUN"), 3800);
  assert.equal(out.get("IMSCL_MP"), 0.252);
  assert.equal(out.get("X0_MP"), 4095.5);
  for (const key of ["BSCALE", "BZERO", "BLANK", "DATAMEAN", "CHECKSUM"]) assert.equal(out.has(key), false, key);
  assert.equal(out.get("BUNIT"), "G");
  assert.deepEqual(out.all("HISTORY"), ["model: light blos"]);
  assert.equal(h.get("CRPIX1"), 100.5, "the input header is not modified");
  const bare = upscaleHeader(header({ NAXIS1: 10, NAXIS2: 7 }));
  assert.equal(bare.get("CRPIX1"), 10.5); // no CRPIX: the image centre (sunpy), 5.5 -> 10.5
  assert.equal(bare.get("CRPIX2"), 7.5); // 4 -> 7.5
  assert.equal(bare.get("CDELT2"), 0.5); // no CDELT: 1
  const cdOnly = upscaleHeader(header({ NAXIS1: 10, NAXIS2: 7, CD1_1: 0.504, CD2_2: 0.504 }));
  assert.equal(cdOnly.get("CD2_2"), 0.252);
  assert.equal(cdOnly.has("CDELT1"), false, "a CD matrix alone gives the scale: no CDELT beside it");
  const marked = upscaleHeader(h, 2, null, { ENH_VER: "0.3.0", ENH_MODL: "light", ENH_KIND: "blos" });
  assert.equal(marked.get("ENH_MODL"), "light");
  assert.deepEqual(marked.all("HISTORY"), []);
});

test("detectKind and resolveKind follow the Python rules", () => {
  assert.equal(detectKind(header({ CONTENT: "MAGNETOGRAM" })), "blos");
  assert.equal(detectKind(header({ TELESCOP: "SDO/HMI", SERIES: "hmi.Ic_45s" })), "intensity");
  assert.equal(detectKind(header({ BUNIT: "Mx/cm^2" })), "blos");
  assert.equal(detectKind(header({ BUNIT: "DN/s" })), "intensity");
  assert.equal(detectKind(header({ BUNIT: "erg" })), null);
  assert.throws(() => resolveKind("auto", header({})), (e) => e instanceof InputError && /cannot tell continuum/.test(e.message));
  assert.throws(() => resolveKind("blos", header({ BUNIT: "kG" })), /must be in gauss, got BUNIT 'kG'/);
  assert.deepEqual(resolveKind("intensity", header({ BUNIT: "erg" })), { kind: "intensity" });
  assert.deepEqual(resolveKind("auto", header({ BUNIT: "G", CDELT1: 0.51, CDELT2: 0.5 })), { kind: "blos" });
  assert.throws(() => resolveKind("auto", header({ BUNIT: "G", CDELT1: 0.6, CDELT2: 0.6 })), /pixel scale is 0.6 arcsec, more than 5 %/);
  assert.throws(() => resolveKind("auto", header({ BUNIT: "G", CD1_1: 0.5 / 3600, CD2_2: 0.5 / 3600, CUNIT1: "deg",
    CUNIT2: "deg", CD1_2: 0.2 / 3600 })), /pixel scale is 0.538516/); // the length of the CD matrix's column
  assert.throws(() => resolveKind("auto", header({ CONTENT: "DOPPLERGRAM", BUNIT: "cm/s" })), /a Dopplergram/);
  assert.throws(() => resolveKind("auto", header({ BUNIT: "G", CTYPE1: "CRLN-CEA", CTYPE2: "CRLT-CEA" })), /CEA/);
  assert.throws(() => resolveKind("intensity", header({ BUNIT: "Gauss" })), /looks like a magnetogram/);
  const enhanced = header({ BUNIT: "DN/s", ENH_VER: "0.3.0" });
  assert.throws(() => resolveKind("auto", enhanced), /written by solar-enhance 0.3.0 .* already enhanced/);
});

test("quiet-Sun level: the docstring example, the stride, and the flatness test", () => {
  const values = Float64Array.from([...Array(80).fill(1.0), ...Array(20).fill(0.2)]);
  assert.equal(estimateQsLevel(values), 1.0);
  // median of the finite values (1.95, of an even count), then of those within 15 %: 2
  assert.equal(estimateQsLevel(Float64Array.from([NaN, 2, 2.1, 1.9, 0.1])), 2);
  assert.equal(qsStride(256, 256), 1);
  assert.equal(qsStride(257, 256), 2);
  assert.equal(qsStride(4096, 4096), 16);
  const flat = Float64Array.from({ length: 100 * 100 }, (_, i) => 1 + 0.03 * Math.sin(i));
  assert.equal(isFlat(flat, 100, 100, 1, 1.0), true);
  const ramp = Float64Array.from({ length: 100 * 200 }, (_, i) => 0.5 + (0.4 * (i % 200)) / 200);
  assert.equal(isFlat(ramp, 100, 200, 1, estimateQsLevel(ramp)), false);
  assert.equal(qsNormalisation(flat, 100, 100), estimateQsLevel(flat));
  // fit_qs_surface's docstring example: limb darkening across a cut-out is followed to 1 %
  const limb = Float64Array.from({ length: 200 * 300 }, (_, i) => 0.6 + (0.3 * (i % 300)) / 299);
  const surface = qsNormalisation(limb, 200, 300);
  assert.equal(typeof surface, "object");
  assert.ok(surface.spread > 0.15);
  assert.ok(surface.samples.every((v, k) => Math.abs(v / limb[k] - 1) < 0.01), "the surface follows the ramp");
});

test("nearestFinite: finite pixels point at themselves, others at a nearest finite one", () => {
  const finite = Uint8Array.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // 3 x 4
  const index = nearestFinite(finite, 3, 4);
  assert.equal(index[2], 2);
  assert.equal(index[11], 11);
  assert.equal(index[0], 2);
  assert.equal(index[7], 11);
});

/** A stand-in network: nearest-neighbour x2, plus the mean of the 3x3 neighbourhood (reflected at the edges). */
async function fakeNetwork(input, h, w) {
  const out = new Float32Array(4 * h * w);
  const at = (y, x) => input[Math.abs(y >= h ? 2 * h - 2 - y : y) * w + Math.abs(x >= w ? 2 * w - 2 - x : x)];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s += at(y + dy, x + dx);
      const v = 0.5 * input[y * w + x] + s / 18;
      out[2 * y * 2 * w + 2 * x] = out[2 * y * 2 * w + 2 * x + 1] = v;
      out[(2 * y + 1) * 2 * w + 2 * x] = out[(2 * y + 1) * 2 * w + 2 * x + 1] = v;
    }
  }
  return out;
}

test("enhanceImage: normalisation around the network, NaN at the 2x2 output pixels, exact tiling", async () => {
  const width = 37;
  const height = 23;
  const data = Float64Array.from({ length: width * height }, (_, i) => 1000 * (1 + 0.04 * Math.cos(i * 0.7)));
  data[5] = NaN;
  data[width * 10 + 20] = NaN;
  const seen = [];
  const run = async (input, h, w) => {
    seen.push(Float32Array.from(input));
    return fakeNetwork(input, h, w);
  };
  const image = { data, width, height, float32: false };
  const whole = await enhanceImage(image, { kind: "intensity", run, tile: 512 });
  assert.equal(whole.width, 74);
  assert.equal(whole.height, 46);
  assert.ok(Math.abs(whole.scale - 1000) < 50, "the quiet-Sun level of the field");
  // the network saw the image divided by the level, with NaN filled by the nearest finite neighbour
  assert.ok(Math.abs(seen[0][6] - data[6] / whole.scale) < 1e-6);
  const neighbours = [4, 6, 5 + width].map((i) => Math.fround(data[i] / whole.scale));
  assert.ok(neighbours.includes(seen[0][5]), "a NaN pixel is given a nearest finite neighbour's value");
  assert.ok(seen[0].every(Number.isFinite));
  // NaN exactly at the 2x2 output pixels of NaN input pixels
  let nans = 0;
  for (let i = 0; i < whole.data.length; i++) nans += Number.isNaN(whole.data[i]) ? 1 : 0;
  assert.equal(nans, 8);
  for (const [y, x] of [[0, 10], [0, 11], [1, 10], [1, 11], [20, 40], [21, 41]]) assert.ok(Number.isNaN(whole.data[y * 74 + x]));
  // back in the data's units: a flat region gives the data's values
  assert.ok(Math.abs(whole.data[30 * 74 + 30] / 1000 - 1) < 0.1);
  // tiles of 8 with a margin of 3 (> the stand-in's 1 px reach) give the whole-image result
  const tiled = await enhanceImage(image, { kind: "intensity", run: fakeNetwork, tile: 8, margin: 3 });
  assert.deepEqual(Array.from(tiled.data), Array.from(whole.data));
  // a margin too small would show: the tiling really is exercised
  const bad = await enhanceImage(image, { kind: "intensity", run: fakeNetwork, tile: 8, margin: 0 });
  assert.notDeepEqual(Array.from(bad.data), Array.from(whole.data));
});

test("enhanceImage: magnetograms go through the network in kG and come back in gauss", async () => {
  const data = Float64Array.from([1500, -300, 0, 2000]);
  let seen;
  const result = await enhanceImage({ data, width: 2, height: 2, float32: true }, {
    kind: "blos",
    run: async (input, h, w) => {
      seen = Float32Array.from(input);
      return fakeNetwork(input, h, w);
    },
  });
  assert.deepEqual(Array.from(seen), [1.5, -0.3, 0, 2].map(Math.fround));
  assert.ok(result.data instanceof Float32Array, "float32 input gives float32 output, as in Python");
  assert.equal(result.scale, 1000);
  const flat = await enhanceImage({ data: Float64Array.from([700, 700, 700, 700]), width: 2, height: 2, float32: false },
    { kind: "blos", run: fakeNetwork });
  assert.ok(flat.data.every((v) => Math.abs(v - 700) < 1e-4), "float32 network output times 1000 G");
});

test("enhanceImage refuses what Python refuses", async () => {
  const run = fakeNetwork;
  await assert.rejects(enhanceImage({ data: new Float64Array(3), width: 3, height: 1, float32: false }, { kind: "blos", run }),
    /at least 2 x 2/);
  await assert.rejects(enhanceImage({ data: Float64Array.from([NaN, NaN, NaN, NaN]), width: 2, height: 2, float32: false },
    { kind: "blos", run }), /no finite pixels/);
  await assert.rejects(enhanceImage({ data: new Float64Array(4), width: 2, height: 2, float32: false },
    { kind: "intensity", qsLevel: -1, run }), /positive number/);
});

test("linearWcs: the reference pixel has the reference value; CD, PC and CROTA2; none without a WCS", () => {
  const cd = linearWcs(header({ CRPIX1: 10.5, CRPIX2: 20, CRVAL1: -300, CRVAL2: 200, CD1_1: 0.5, CD2_2: 0.5,
    CTYPE1: "HPLN-TAN", CTYPE2: "HPLT-TAN" }));
  assert.deepEqual(cd.world(9.5, 19), [-300, 200]);
  assert.deepEqual(cd.world(11.5, 19), [-299, 200]);
  assert.equal(cd.helioprojective, true);
  const deg = linearWcs(header({ CDELT1: 0.504 / 3600, CDELT2: 0.504 / 3600, CUNIT1: "deg", CUNIT2: "deg" }));
  assert.ok(Math.abs(deg.world(0, 0)[0] - 0.504) < 1e-12);
  const rotated = linearWcs(header({ CDELT1: 0.5, CDELT2: 0.5, CROTA2: 180, CRPIX1: 1, CRPIX2: 1 }));
  const [x, y] = rotated.world(1, 0); // one pixel along +x is -0.5 arcsec when the image is upside down
  assert.ok(Math.abs(x + 0.5) < 1e-12 && Math.abs(y) < 1e-12);
  assert.equal(linearWcs(header({ BUNIT: "G" })), null);
});

test("enhanceImage: absurd pixels are refused, negative continuum output is clipped where the input is not", async () => {
  const data = Float64Array.from({ length: 16 }, () => 1000);
  data[5] = 2e9;
  await assert.rejects(enhanceImage({ data, width: 4, height: 4, float32: false }, { kind: "blos", run: fakeNetwork }),
    /image pixel \(1, 1\) = 2e\+09 is 2e\+06 times 1 kG \(1e\+03\)/);
  const negative = async (input, h, w) => Float32Array.from({ length: 4 * h * w }, (_, i) => (i % 3 ? 1 : -0.5));
  const image = { data: Float64Array.from([1, 1, -1, 1]), width: 2, height: 2, float32: false };
  const out = await enhanceImage(image, { kind: "intensity", qsLevel: 1, run: negative });
  for (let i = 0; i < 16; i++) {
    const inputPixel = Math.floor(Math.floor(i / 4) / 2) * 2 + Math.floor((i % 4) / 2);
    assert.equal(out.data[i], i % 3 ? 1 : inputPixel === 2 ? -0.5 : 0, `pixel ${i}`);
  }
  const blos = await enhanceImage({ ...image, data: Float64Array.from([1000, 1000, 1000, 1000]) }, { kind: "blos", run: negative });
  assert.equal(blos.data[0], -500, "magnetograms keep their sign");
  const broken = async (input, h, w) => new Float32Array(4 * h * w).fill(NaN);
  await assert.rejects(enhanceImage(image, { kind: "intensity", qsLevel: 1, run: broken }), /16 non-finite output pixels/);
});

test("the input and the enhanced panel span the same helioprojective coordinates (Python's x2 header numbers)", () => {
  // the packaged continuum sample's WCS, and enhance.io.upscale_header's x2 header of it:
  // NAXIS 400 x 400, CRPIX 200.5, CDELT 0.252, CRVAL 0
  const sample = header({ NAXIS: 2, NAXIS1: 200, NAXIS2: 200, CTYPE1: "HPLN-TAN", CTYPE2: "HPLT-TAN", CUNIT1: "arcsec",
    CUNIT2: "arcsec", CRPIX1: 100.5, CRPIX2: 100.5, CRVAL1: 0.0, CRVAL2: 0.0, CDELT1: 0.504, CDELT2: 0.504, CROTA2: 0.0 });
  const x2 = upscaleHeader(sample);
  assert.deepEqual([1, 2].map((i) => [x2.get(`NAXIS${i}`), x2.get(`CRPIX${i}`), x2.get(`CDELT${i}`)]),
    [[400, 200.5, 0.252], [400, 200.5, 0.252]]);
  const input = axisExtent(linearWcs(sample), 200, 200);
  const output = axisExtent(linearWcs(x2), 400, 400);
  for (const extent of [input, output]) {
    for (const axis of ["x", "y"]) extent[axis].forEach((v, i) => assert.ok(Math.abs(v - [-50.4, 50.4][i]) < 1e-9, `${v}`));
  }
  // pixel centres: input pixel (x, y) is centred between output pixels 2x and 2x + 1
  const [inWcs, outWcs] = [linearWcs(sample), linearWcs(x2)];
  for (const [x, y] of [[0, 0], [99.5, 99.5], [199, 37]]) {
    const a = inWcs.world(x, y);
    const b = outWcs.world(2 * x + 0.5, 2 * y + 0.5);
    assert.ok(Math.abs(a[0] - b[0]) < 1e-9 && Math.abs(a[1] - b[1]) < 1e-9, `${a} vs ${b}`);
  }
  assert.deepEqual(inWcs.world(0, 0), [-50.148, -50.148]); // CRVAL + CDELT (1 - CRPIX), FITS pixel 1
  // A header without CRPIX: Python's x2 header puts the reference pixel at the centre (CRPIX 200.5, 150.5 for a
  // 200 x 150 image with CRVAL -120, 310), and so must the input panel (not at FITS pixel 0: 0 to 100 arcsec)
  const bare = header({ NAXIS: 2, NAXIS1: 200, NAXIS2: 150, CDELT1: 0.504, CDELT2: 0.504, CTYPE1: "HPLN-TAN",
    CTYPE2: "HPLT-TAN", CRVAL1: -120.0, CRVAL2: 310.0 });
  const bareX2 = upscaleHeader(bare);
  assert.deepEqual([bareX2.get("CRPIX1"), bareX2.get("CRPIX2"), bareX2.get("CDELT1")], [200.5, 150.5, 0.252]);
  const bareIn = axisExtent(linearWcs(bare), 200, 150);
  const bareOut = axisExtent(linearWcs(bareX2), 400, 300);
  const want = { x: [-120 - 50.4, -120 + 50.4], y: [310 - 37.8, 310 + 37.8] };
  for (const extent of [bareIn, bareOut]) {
    for (const axis of ["x", "y"]) extent[axis].forEach((v, i) => assert.ok(Math.abs(v - want[axis][i]) < 1e-9, `${axis} ${v}`));
  }
});

test("padSymmetric mirrors as numpy.pad(mode='symmetric'), also by more than the image's size", () => {
  const input = Float32Array.from([1, 2, 3, 4, 5, 6]); // 2 x 3
  const out = padSymmetric(input, 2, 3, 2);
  // numpy.pad([[1, 2, 3], [4, 5, 6]], 2, mode="symmetric")
  assert.deepEqual(Array.from(out), [
    5, 4, 4, 5, 6, 6, 5, 2, 1, 1, 2, 3, 3, 2, 2, 1, 1, 2, 3, 3, 2, 5, 4, 4, 5, 6, 6, 5, 5, 4, 4, 5, 6, 6, 5,
    2, 1, 1, 2, 3, 3, 2,
  ]);
  // numpy.pad(numpy.arange(2), 5, mode="symmetric") = [0 0 1 1 0 0 1 1 0 0 1 1]
  assert.deepEqual(Array.from(padSymmetric(Float32Array.from([0, 1]), 1, 2, 5)).slice(5 * 12, 6 * 12),
    [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1]);
});

test("enhanceImage tells a network told the noise level the level measured on the normalised image", async () => {
  const width = 120;
  const height = 100;
  let s = 9;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const gauss = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const data = Float64Array.from({ length: width * height }, () => 20 * gauss()); // a magnetogram: 20 G of noise
  const told = [];
  const run = async (input, h, w, noise) => {
    told.push(noise);
    return fakeNetwork(input, h, w);
  };
  const noiseModel = { unit: 0.01, nodes: [0.25, 0.5, 1, 2, 4, 8, 16, 32] };
  const result = await enhanceImage({ data, width, height, float32: false }, { kind: "blos", run, noiseModel, tile: 64,
    margin: 4 });
  assert.equal(told.length, 4, "one level for every tile");
  assert.ok(told.every((v) => v === result.noise.sigma));
  assert.equal(result.noise.how, "measured");
  assert.ok(Math.abs(result.noise.sigma / 0.02 - 1) < 0.06, `20 G = 0.02 kG, got ${result.noise.sigma}`);
  assert.deepEqual(result.warnings, []);
  const given = await enhanceImage({ data, width, height, float32: false }, { kind: "blos", run, noiseModel, noise: 500 });
  assert.equal(given.noise.sigma, 0.5);
  assert.match(given.warnings[0], /noise given is 50 x HMI's/);
  const plain = await enhanceImage({ data, width, height, float32: false }, { kind: "blos", run });
  assert.equal(plain.noise, null);
  assert.equal(told.at(-1), null, "the paper's network is told no level");
  await assert.rejects(enhanceImage({ data, width, height, float32: false }, { kind: "blos", run, noise: 5 }),
    /for the models told the noise level/);
});
