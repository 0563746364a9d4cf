// Unit tests of the header cards that record what the page assumed and which weights ran (web/src/hmi.js:
// assumptionCards, registryCards; web/src/noise.js: NoiseChoice's source and reason, Python's '.3g'):
// `node --test web/tests/`. tests/test_web.py checks them against `enhance run`'s header.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Header } from "../src/fits.js";
import { InputError, assumptionCards, registryCards, upscaleHeader } from "../src/hmi.js";
import { formatG, networkNoise } from "../src/noise.js";

test("formatG is Python's format(x, '.3g'): ties to even, exponent form below 1e-4 and from 1e3", () => {
  // expected strings are Python's: [format(x, ".3g") for x in xs]
  const cases = [[1.125, "1.12"], [1.135, "1.14"], [0.125, "0.125"], [2.5, "2.5"], [1234.5, "1.23e+03"],
    [0.00012345, "0.000123"], [1e-5, "1e-05"], [2.999, "3"], [9.9951, "10"], [999.5, "1e+03"], [100, "100"],
    [-1.125, "-1.12"], [0.00009995, "0.0001"], [12345678, "1.23e+07"], [0, "0"]];
  for (const [x, expected] of cases) assert.equal(formatG(x), expected, String(x));
  assert.equal(formatG(0.5, 6), "0.5"); // Python's '{:g}'
});

test("assumptionCards of a magnetogram: the noise in gauss, its source and reason; no quiet-Sun card", () => {
  const noise = { sigma: 0.012, source: "measured", reason: "1.2 x HMI's, beyond the cut-off" };
  const cards = assumptionCards("blos", { noise, scale: 1000, qsGiven: false });
  assert.deepEqual(cards, { ENH_NOIS: 12, ENH_NUNI: "G", ENH_NSRC: "measured",
    ENH_NWHY: "1.2 x HMI's, beyond the cut-off" });
});

test("assumptionCards of a continuum image: a level given or estimated, a surface by its median and extremes", () => {
  const noise = { sigma: 2e-3, source: "given", reason: "" };
  assert.deepEqual(assumptionCards("intensity", { noise, scale: 52000, qsGiven: true }), { ENH_NOIS: 2e-3,
    ENH_NUNI: "I/Ic", ENH_NSRC: "given", ENH_NWHY: "", ENH_QSTY: "level", ENH_QSRC: "given", ENH_QSLV: 52000 });
  const surface = { samples: Float64Array.of(4, 1, 3, 2), rows: 2, cols: 2, stride: 8 };
  assert.deepEqual(assumptionCards("intensity", { noise: null, scale: surface, qsGiven: false }),
    { ENH_QSTY: "surface", ENH_QSRC: "estimated", ENH_QSLV: 2.5, ENH_QSMN: 1, ENH_QSMX: 4 });
  const long = { sigma: 1e-3, source: "nominal", reason: "x".repeat(80) };
  assert.equal(assumptionCards("intensity", { noise: long, scale: 1, qsGiven: false }).ENH_NWHY, "x".repeat(68));
});

test("registryCards name the registry entry and its sha256; an index.json without them is refused", () => {
  const sha = "5d5325920b174181f35a7fb35e9dd19c5c9b7757cbe824fdafbe1ac1638d4546";
  assert.deepEqual(registryCards({ model: "light", kind: "intensity", registry: "intensity/light", sha256: sha }),
    { ENH_REG: "intensity/light", ENH_SHA: sha });
  assert.throws(() => registryCards({ model: "light", kind: "intensity" }), InputError);
});

test("networkNoise gives noise_choice's source and reason: given, nominal for a small image, floor, measured", () => {
  const given = networkNoise(new Float64Array(64), 8, 8, { nominal: 1e-3, noise: 3, scale: 1000 });
  assert.deepEqual([given.sigma, given.source, given.reason], [3e-3, "given", ""]);
  const small = networkNoise(new Float64Array(64), 8, 8, { nominal: 1e-3 });
  assert.deepEqual([small.sigma, small.source, small.reason], [1e-3, "nominal", "image smaller than 32 pixels"]);
  let s = 7;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32 - 0.5; // uniform, var 1/12
  const white = (sigma) => Float64Array.from({ length: 128 * 128 }, () => 1 + sigma * Math.sqrt(12) * next());
  const floor = networkNoise(white(1e-4), 128, 128, { nominal: 1e-3 });
  assert.equal(floor.source, "measured");
  assert.equal(floor.sigma, 5e-4);
  assert.match(floor.reason, /^0\.\d+ x HMI's measured, raised to the floor 0\.5 x$/);
  const measured = networkNoise(white(3e-3), 128, 128, { nominal: 1e-3 });
  assert.equal(measured.source, "measured");
  assert.equal(measured.reason, `${formatG(measured.sigma / 1e-3)} x HMI's, beyond the cut-off`);
  assert.ok(Math.abs(measured.sigma / 3e-3 - 1) < 0.1, String(measured.sigma));
});

test("upscaleHeader writes the cards with their comments", () => {
  const h = new Header();
  h.set("BUNIT", "DN/s");
  const out = upscaleHeader(h, 2, null, { ENH_REG: "intensity/light", ENH_QSLV: 1.5 },
    { ENH_REG: "model's registry name (or weights file)" });
  const card = out.cards.find((c) => c.key === "ENH_REG");
  assert.deepEqual([card.value, card.comment], ["intensity/light", "model's registry name (or weights file)"]);
  assert.equal(out.get("ENH_QSLV"), 1.5);
});
