// Unit tests of the Fourier transform (web/src/fft.js): `node --test web/tests/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { fft, fftfreq, powerSpectrum2d } from "../src/fft.js";

/** The transform by its definition, O(n^2). */
function directDft(re, im) {
  const n = re.length;
  const outRe = new Float64Array(n);
  const outIm = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < n; j++) {
      const a = (-2 * Math.PI * ((j * k) % n)) / n;
      outRe[k] += re[j] * Math.cos(a) - im[j] * Math.sin(a);
      outIm[k] += re[j] * Math.sin(a) + im[j] * Math.cos(a);
    }
  }
  return [outRe, outIm];
}

function random(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
}

test("fft equals the direct transform for every length 1 to 70 and some larger ones (radix 2 and Bluestein)", () => {
  const next = random(7);
  for (const n of [...Array.from({ length: 70 }, (_, i) => i + 1), 97, 128, 200, 256]) {
    const re = Float64Array.from({ length: n }, next);
    const im = Float64Array.from({ length: n }, next);
    const [wantRe, wantIm] = directDft(re, im);
    fft(re, im);
    const worst = Math.max(...wantRe.map((v, k) => Math.hypot(v - re[k], wantIm[k] - im[k])));
    assert.ok(worst < 1e-12 * n, `length ${n}: off by ${worst}`);
  }
});

test("fft gives numpy's numbers (numpy.fft.fft of [1, 2, 3, 4, 5] and of a length-8 vector)", () => {
  const re = Float64Array.from([1, 2, 3, 4, 5]);
  const im = new Float64Array(5);
  fft(re, im);
  const numpy = [[15, 0], [-2.5, 3.4409548011779334], [-2.5, 0.8122992405822659], [-2.5, -0.8122992405822659],
    [-2.5, -3.4409548011779334]];
  numpy.forEach(([r, i], k) => assert.ok(Math.abs(re[k] - r) < 1e-13 && Math.abs(im[k] - i) < 1e-13, `k = ${k}`));
  const re8 = Float64Array.from([1, -2, 0.5, 4, 0, 0, 3, 1]);
  const im8 = new Float64Array(8);
  fft(re8, im8);
  const numpy8 = [[7.5, 0], [-2.5355339059327378, 1.7928932188134525], [-2.5, 7], [4.535533905932738, -3.2071067811865475],
    [1.5, 0], [4.535533905932738, 3.2071067811865475], [-2.5, -7], [-2.5355339059327378, -1.7928932188134525]];
  numpy8.forEach(([r, i], k) => assert.ok(Math.abs(re8[k] - r) < 1e-13 && Math.abs(im8[k] - i) < 1e-13, `k = ${k}`));
});

test("powerSpectrum2d is |numpy.fft.fft2|^2; fftfreq is numpy's", () => {
  const a = Float64Array.from({ length: 12 }, (_, i) => i ** 1.5); // numpy.arange(12.).reshape(3, 4) ** 1.5
  const numpy = [32096.57972571036, 784.81328535065, 384.31936454259545, 784.81328535065, 8983.739946983025,
    48.50856355772161, 26.293116012127808, 52.19554296999529, 8983.739946983025, 52.19554296999529,
    26.293116012127808, 48.50856355772161];
  const power = powerSpectrum2d(a, 3, 4);
  numpy.forEach((v, k) => assert.ok(Math.abs(power[k] - v) < 1e-10 * v, `k = ${k}: ${power[k]} vs ${v}`));
  // Parseval: the power sums to n times the sum of squares
  let energy = 0;
  for (const v of a) energy += v * v;
  assert.ok(Math.abs(power.reduce((s, v) => s + v, 0) - 12 * energy) < 1e-9 * energy);
  assert.deepEqual(Array.from(fftfreq(7, 0.504)), [0.0, 0.2834467120181406, 0.5668934240362812, 0.8503401360544218,
    -0.8503401360544218, -0.5668934240362812, -0.2834467120181406]);
  assert.deepEqual(Array.from(fftfreq(8, 0.504)), [0.0, 0.24801587301587302, 0.49603174603174605, 0.7440476190476191,
    -0.9920634920634921, -0.7440476190476191, -0.49603174603174605, -0.24801587301587302]);
});
