// Unit tests of the noise level (web/src/noise.js): `node --test web/tests/`. Their agreement with Python
// number for number is checked by tests/test_web.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { NOISE_FLOOR, clampWarning, measureNoise, median, networkNoise } from "../src/noise.js";

/** Seeded standard normal deviates (an LCG and Box-Muller). */
function normal(seed) {
  let s = seed >>> 0;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

function whiteNoise(rows, cols, sigma, seed = 1, mean = 0) {
  const next = normal(seed);
  return Float64Array.from({ length: rows * cols }, () => mean + sigma * next());
}

test("median is numpy's: the middle value, or the mean of the two middle values", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test("measureNoise reads white noise's level (its 3 % scatter), on 49 tiles of 64 overlapping by half", () => {
  const image = whiteNoise(256, 256, 2.0, 3, 5.0);
  const found = measureNoise(image, 256, 256);
  assert.ok(Math.abs(found.sigma / 2.0 - 1) < 0.05, `sigma ${found.sigma}`);
  assert.equal(found.reliable, true);
  assert.equal(found.tiles, 49);
  assert.ok(Math.abs(found.whiteness - 1) < 0.1, `whiteness ${found.whiteness}`);
  // a hot pixel is replaced by its neighbours' median and changes nothing
  const hot = Float64Array.from(image);
  hot[10 * 256 + 10] = 1e6;
  const withHot = measureNoise(hot, 256, 256);
  assert.equal(withHot.outliers, 1);
  assert.equal(withHot.sigma, found.sigma);
  // missing pixels leave their tiles out: a NaN at (100, 100) is in 4 tiles
  const holed = Float64Array.from(image);
  holed[100 * 256 + 100] = NaN;
  const withHole = measureNoise(holed, 256, 256);
  assert.equal(withHole.missing, 4);
  assert.equal(withHole.tiles, 45);
  // a checkerboard (the Nyquist frequency) far above the noise is a pattern: not reliable
  const board = Float64Array.from(image, (v, i) => v + 40 * ((Math.floor(i / 256) + (i % 256)) % 2 ? 1 : -1));
  const patterned = measureNoise(board, 256, 256);
  assert.equal(patterned.reliable, false);
  assert.match(patterned.reason, /periodic pattern/);
  assert.throws(() => measureNoise(new Float64Array(15 * 40), 15, 40), /at least 16 x 16/);
});

test("networkNoise: measured, HMI's nominal level where it cannot be, the floor, or given", () => {
  const nominal = 1e-3;
  const measured = networkNoise(whiteNoise(200, 200, 3e-3, 5, 1.0), 200, 200, { nominal });
  assert.equal(measured.how, "measured");
  assert.ok(Math.abs(measured.sigma / 3e-3 - 1) < 0.06, `sigma ${measured.sigma}`);
  const small = networkNoise(whiteNoise(20, 40, 3e-3), 20, 40, { nominal });
  assert.deepEqual([small.how, small.sigma], ["nominal", nominal]);
  const quiet = networkNoise(whiteNoise(200, 200, 1e-4, 6, 1.0), 200, 200, { nominal });
  assert.deepEqual([quiet.how, quiet.sigma], ["floor", NOISE_FLOOR * nominal]);
  const flat = networkNoise(new Float64Array(100 * 100).fill(1), 100, 100, { nominal });
  assert.deepEqual([flat.how, flat.sigma], ["nominal", nominal]); // every tile constant
  // a smoothed image (binomial [1, 2, 1] / 4 along each axis) has lost its highest frequencies: its corners
  // are not white
  const noise = whiteNoise(160, 160, 3e-3, 7, 1.0);
  const at = (y, x) => noise[Math.min(159, Math.max(0, y)) * 160 + Math.min(159, Math.max(0, x))];
  const smooth = Float64Array.from(noise, (_, i) => {
    const [y, x] = [Math.floor(i / 160), i % 160];
    let s = 0;
    for (const [dy, wy] of [[-1, 1], [0, 2], [1, 1]]) for (const [dx, wx] of [[-1, 1], [0, 2], [1, 1]]) s += wy * wx * at(y + dy, x + dx);
    return s / 16;
  });
  const interpolated = networkNoise(smooth, 160, 160, { nominal });
  assert.equal(interpolated.how, "nominal");
  assert.ok(interpolated.measurement.whiteness > 2);
  // given in the image's units: divided by the quiet-Sun level (a surface counts by its samples' median)
  assert.equal(networkNoise(new Float64Array(64), 8, 8, { nominal: 0.01, noise: 3.0, scale: 1000 }).sigma, 0.003);
  assert.equal(networkNoise(new Float64Array(64), 8, 8, { nominal, noise: 3.0, scale: { samples: [1000, 3000, 2000] } }).sigma,
    0.0015);
  assert.throws(() => networkNoise(new Float64Array(64), 8, 8, { nominal, noise: -1 }), /positive number/);
});

test("clampWarning: silent inside the filter bank's nodes, Python's warning outside", () => {
  const bank = { unit: 0.01, nodes: [0.25, 0.5, 1, 2, 4, 8, 16, 32] };
  assert.equal(clampWarning(0.0025, bank), "");
  assert.equal(clampWarning(0.32, bank), "");
  assert.match(clampWarning(0.5, bank), /noise measured on the image is 50 x HMI's, outside the 0.25-32 x .* at 32 x/);
  assert.match(clampWarning(0.001, { ...bank, given: true }), /noise given is 0.1 x HMI's, .* at 0.25 x/);
});
