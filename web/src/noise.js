// The noise level handed to the default models, measured as the Python package measures it: the white-noise
// level from the corners of the spectrum where HMI passes no signal (enhance.observation.noise.measure_noise),
// and the choice between that level, HMI's nominal one and the floor (enhance.inference.pipeline.network_noise).

import { fftfreq, powerSpectrum2d } from "./fft.js";

/** HMI's pixel scale, arcsec (enhance.constants.HMI_PIXEL_SCALE). */
export const HMI_PIXEL_SCALE = 0.504;
/** Lowest frequency of the noise band, cycles per arcsec (enhance.observation.noise.NOISE_BAND_START). */
export const NOISE_BAND_START = 1.15;
/** Side of the tiles whose spectra are read, pixels (enhance.observation.noise.NOISE_TILE). */
export const NOISE_TILE = 64;
const OUTLIER_SIGMAS = 20.0;
const TILE_REJECT = 2.0;
const FLAT_SHARE = 0.25;
const WHITE_SPLIT = 1.27;
const PEAK_RATIO = 30.0;
/** Largest square read by networkNoise, its smallest image side, the floor and the band's width
 * (enhance.inference.pipeline.NOISE_CROP, NOISE_MIN_SIZE, NOISE_FLOOR, NOISE_INNER_WIDTH). */
export const NOISE_CROP = 1024;
export const NOISE_MIN_SIZE = 32;
export const NOISE_FLOOR = 0.5;
/** Measured noise above this many times HMI's is warned of (enhance.inference.pipeline.NOISE_WARN_RATIO). */
export const NOISE_WARN_RATIO = 4;
const NOISE_INNER_WIDTH = 0.12;
const WHITENESS_LIMIT = 2.0;

/**
 * Python's format(x, `.${digits}g`): `digits` significant digits (ties to even, as Python rounds the exact
 * binary value), trailing zeros dropped, exponent form ('1.5e-05', '2e+03') below 1e-4 or from 10^digits.
 */
export function formatG(x, digits = 3) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  let s = x.toExponential(digits - 1); // the larger of two tied neighbours; Python takes the even one
  const exact = Math.abs(x).toExponential(Math.min(digits + 60, 100));
  const [mantissa] = exact.split("e");
  const tail = mantissa.replace(".", "").slice(digits);
  const kept = Number(mantissa.replace(".", "")[digits - 1]);
  if (/^50*$/.test(tail) && kept % 2 === 0) { // a tie rounded up to an odd digit: back to the even one
    s = (Math.sign(x) * Number(`${mantissa.slice(0, digits === 1 ? 1 : digits + 1)}e${exact.split("e")[1]}`))
      .toExponential(digits - 1);
  }
  const [m, e] = s.split("e");
  const exp = Number(e);
  if (exp < -4 || exp >= digits) {
    const expDigits = String(Math.abs(exp)).padStart(2, "0");
    return `${m.includes(".") ? m.replace(/\.?0+$/, "") : m}e${exp < 0 ? "-" : "+"}${expDigits}`;
  }
  const fixed = Number(s).toFixed(Math.max(digits - 1 - exp, 0));
  return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
}

/** numpy.median of the values (NaN for none): the middle one, or the mean of the two middle ones. */
export function median(values) {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return NaN;
  const mid = n >> 1;
  return n % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const reflect = (i, n) => (i < 0 ? -i - 1 : i >= n ? 2 * n - i - 1 : i); // scipy.ndimage mode 'reflect'

/**
 * `data` with its isolated outlier pixels replaced by the median of their 3x3 neighbourhood, and how many
 * (enhance.observation.noise._replace_outliers; scipy's median, maximum and minimum filters, mode 'reflect').
 */
function replaceOutliers(data, usable, rows, cols) {
  const n = rows * cols;
  const med = new Float64Array(n);
  const spread = new Float64Array(n);
  const window = new Float64Array(9);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      let k = 0;
      let hi = -Infinity;
      let lo = Infinity;
      for (let dy = -1; dy <= 1; dy++) {
        const row = reflect(y + dy, rows) * cols;
        for (let dx = -1; dx <= 1; dx++) {
          const v = data[row + reflect(x + dx, cols)];
          window[k++] = v;
          if (dy !== 0 || dx !== 0) (hi = Math.max(hi, v)), (lo = Math.min(lo, v));
        }
      }
      window.sort();
      med[y * cols + x] = window[4];
      spread[y * cols + x] = hi - lo;
    }
  }
  const residual = new Float64Array(n);
  const judged = [];
  for (let i = 0; i < n; i++) {
    residual[i] = Math.abs(data[i] - med[i]);
    if (usable[i]) judged.push(residual[i]);
  }
  const scale = judged.length ? 1.4826 * median(judged) : 0.0;
  if (!(scale > 0)) return { data, outliers: 0 };
  let outliers = 0;
  const out = Float64Array.from(data);
  for (let i = 0; i < n; i++) {
    if (usable[i] && residual[i] > OUTLIER_SIGMAS * scale && residual[i] > 2 * spread[i]) {
      out[i] = med[i];
      outliers++;
    }
  }
  return { data: outliers ? out : data, outliers };
}

/** Tile origins along one axis: size NOISE_TILE overlapping by half, or the whole axis under twice that. */
function tileAxis(n) {
  const size = n < 2 * NOISE_TILE ? n : NOISE_TILE;
  const step = Math.max(Math.floor(size / 2), 1);
  const starts = [];
  for (let s = 0; s + size <= n; s += step) starts.push(s);
  return { size, starts };
}

/** numpy.hanning(m + 2)[1:-1]: the Hann window that is zero only outside the tile. */
function hann(m) {
  const M = m + 2;
  return Float64Array.from({ length: m }, (_, i) => 0.5 + 0.5 * Math.cos((Math.PI * (2 * (i + 1) + 1 - M)) / (M - 1)));
}

/** The tiles (enhance.observation.noise._tiles) and their power spectra per unit of noise variance (_tile_powers). */
function tilePowers(data, usable, rows, cols) {
  const ty = tileAxis(rows);
  const tx = tileAxis(cols);
  const [ny, nx] = [ty.size, tx.size];
  const wy = hann(ny);
  const wx = hann(nx);
  let norm = 0;
  for (let i = 0; i < ny; i++) for (let j = 0; j < nx; j++) norm += (wy[i] * wx[j]) ** 2;
  const powers = [];
  const keep = [];
  const block = new Float64Array(ny * nx);
  for (const y0 of ty.starts) {
    for (const x0 of tx.starts) {
      let all = true;
      let equal = 0;
      let sum = 0;
      for (let i = 0; i < ny; i++) {
        for (let j = 0; j < nx; j++) {
          const p = (y0 + i) * cols + x0 + j;
          const v = data[p];
          block[i * nx + j] = v;
          sum += v;
          if (!usable[p]) all = false;
          if (j > 0 && v === data[p - 1]) equal++;
        }
      }
      const flat = equal / (ny * (nx - 1)) > FLAT_SHARE; // off-limb constants, dead columns (NaN for nx = 1: not flat)
      keep.push(all && !flat);
      const mean = sum / (ny * nx);
      for (let i = 0; i < ny; i++) for (let j = 0; j < nx; j++) block[i * nx + j] = (block[i * nx + j] - mean) * wy[i] * wx[j];
      const power = powerSpectrum2d(block, ny, nx);
      for (let k = 0; k < power.length; k++) power[k] /= norm;
      powers.push(power);
    }
  }
  return { powers, keep, ny, nx };
}

/** |frequency| (cycles per unit of dx) of each element of an ny x nx numpy.fft.fft2 spectrum. */
function frequencies(ny, nx, dx) {
  const fy = fftfreq(ny, dx);
  const fx = fftfreq(nx, dx);
  return Float64Array.from({ length: ny * nx }, (_, k) => Math.hypot(fy[Math.floor(k / nx)], fx[k % nx]));
}

/** Flat indices of the frequencies for which `test(frequency)` holds. */
function where(frequency, test) {
  const out = [];
  for (let k = 0; k < frequency.length; k++) if (test(frequency[k])) out.push(k);
  return out;
}

/** sqrt(median of the powers over `band`, pooled over the tiles / ln 2) (enhance.observation.noise._level). */
function pooledLevel(powers, band) {
  const values = new Float64Array(powers.length * band.length);
  let i = 0;
  for (const power of powers) for (const k of band) values[i++] = power[k];
  return Math.sqrt(median(values) / Math.LN2);
}

/** Whether a few frequencies hold most of the power beyond the cut-off, in most tiles (_pattern). */
function pattern(powers, beyond) {
  const mean = Float64Array.from(beyond, (k) => median(powers.map((power) => power[k])));
  let total = 0;
  for (const v of mean) total += v;
  if (!(total > 0)) return false;
  const threshold = PEAK_RATIO * median(mean);
  let peaks = 0;
  for (const v of mean) if (v > threshold) peaks += v;
  return peaks > 0.5 * total;
}

/**
 * The white-noise level of an image from its power beyond HMI's cut-off, robust to outliers and edges
 * (enhance.observation.noise.measure_noise).
 *
 * @param {ArrayLike<number>} image rows x cols, row-major, any unit (the level is in that unit)
 * @param {number} rows
 * @param {number} cols
 * @param {{pixelScale?: number, bandStart?: number, bandStop?: number, finite?: ArrayLike<number>|null}} [options]
 *   pixel scale in arcsec; the band in cycles per arcsec; where the image holds data (1) before missing
 *   pixels were filled
 * @returns {{sigma: number, reliable: boolean, reason: string, whiteness: number, tiles: number,
 *   missing: number, rejected: number, outliers: number}} as NoiseMeasurement
 */
export function measureNoise(image, rows, cols, { pixelScale = HMI_PIXEL_SCALE, bandStart = NOISE_BAND_START,
  bandStop = Infinity, finite = null } = {}) {
  if (Math.min(rows, cols) < 16) {
    throw new RangeError(`the noise level needs an image of at least 16 x 16 pixels, got shape (${rows}, ${cols})`);
  }
  const n = rows * cols;
  const usable = new Uint8Array(n);
  const zeroed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    usable[i] = Number.isFinite(image[i]) && (finite === null || finite[i]) ? 1 : 0;
    zeroed[i] = usable[i] ? image[i] : 0.0;
  }
  const { data, outliers } = replaceOutliers(zeroed, usable, rows, cols);
  const { powers, keep, ny, nx } = tilePowers(data, usable, rows, cols);
  const frequency = frequencies(ny, nx, pixelScale);
  const band = where(frequency, (f) => f >= bandStart && f < bandStop);
  if (band.length * powers.length < 16) {
    throw new RangeError(`pixels of ${pixelScale} arcsec sample no frequency above ${bandStart} cycles per arcsec: ` +
      "the noise level cannot be measured on this grid");
  }
  const missing = keep.filter((k) => !k).length;
  if (!(missing < keep.length)) {
    return { sigma: NaN, reliable: false, reason: "no tile without missing or constant pixels", whiteness: 1.0,
      tiles: 0, missing, rejected: 0, outliers };
  }
  const levels = powers.map((power) => Math.sqrt(median(band.map((k) => power[k])) / Math.LN2));
  const typical = median(levels.filter((_, t) => keep[t]));
  const high = levels.map((level, t) => keep[t] && level > TILE_REJECT * typical);
  const used = powers.filter((_, t) => keep[t] && !high[t]);
  const rejected = high.filter(Boolean).length;
  const beyond = where(frequency, (f) => f >= bandStart);
  const inner = where(frequency, (f) => f >= bandStart && f < WHITE_SPLIT);
  const outer = where(frequency, (f) => f >= Math.max(WHITE_SPLIT, bandStart));
  const whiteness = inner.length && outer.length ? pooledLevel(used, inner) / pooledLevel(used, outer) : 1.0;
  let reason = "";
  if (pattern(used, beyond)) reason = "a periodic pattern holds most of the power beyond the cut-off";
  else if (used.length < rejected) {
    reason = `${rejected} of ${used.length + rejected} tiles stand far above the others (edges, artefacts)`;
  }
  const sigma = median(levels.filter((_, t) => keep[t] && !high[t]));
  return { sigma, reliable: !reason, reason, whiteness, tiles: used.length, missing, rejected, outliers };
}

/**
 * The noise level handed to a network told the noise (enhance.inference.pipeline.network_noise), in its units.
 *
 * @param {ArrayLike<number>} normalised rows x cols, the image in the network's units, missing pixels filled
 * @param {number} rows
 * @param {number} cols
 * @param {object} options
 * @param {number} options.nominal HMI's noise in the network's units (the model's noise unit)
 * @param {number|null} [options.noise] the noise given in the image's units; null measures it
 * @param {number|{samples: ArrayLike<number>}} [options.scale] what the image was divided by (a quiet-Sun
 *   surface counts by the median of its samples)
 * @param {ArrayLike<number>|null} [options.finite] where the image held data (1) before the fill
 * @returns {{sigma: number, how: string, note: string, source: string, reason: string, warning: string,
 *   measurement: object|null}} how: 'given', 'measured', 'floor' or 'nominal'; note says why, for the page;
 *   source and reason are Python's (enhance.inference.pipeline.noise_choice: NoiseChoice.source, .reason);
 *   warning is what Python warns
 */
export function networkNoise(normalised, rows, cols, { nominal, noise = null, scale = 1.0, finite = null }) {
  const times = (v) => `${(v / nominal).toFixed(2)} x HMI's`;
  if (noise !== null) {
    if (!(noise > 0 && Number.isFinite(noise))) throw new RangeError(`noise must be a positive number, got ${noise}`);
    const level = typeof scale === "number" ? scale : median(scale.samples);
    const sigma = noise / level;
    return { sigma, how: "given", note: `given (${times(sigma)})`, source: "given", reason: "", warning: "",
      measurement: null };
  }
  if (Math.min(rows, cols) < NOISE_MIN_SIZE) {
    return { sigma: nominal, how: "nominal", note: `image smaller than ${NOISE_MIN_SIZE} pixels: HMI's nominal noise`,
      source: "nominal", reason: `image smaller than ${NOISE_MIN_SIZE} pixels`, warning: "", measurement: null };
  }
  const top = Math.max(Math.floor((rows - NOISE_CROP) / 2), 0);
  const left = Math.max(Math.floor((cols - NOISE_CROP) / 2), 0);
  const h = Math.min(NOISE_CROP, rows);
  const w = Math.min(NOISE_CROP, cols);
  const crop = new Float64Array(h * w);
  const mask = finite === null ? null : new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      crop[y * w + x] = normalised[(top + y) * cols + left + x];
      if (mask) mask[y * w + x] = finite[(top + y) * cols + left + x];
    }
  }
  const found = measureNoise(crop, h, w, { bandStop: NOISE_BAND_START + NOISE_INNER_WIDTH, finite: mask });
  if (!found.tiles) {
    return { sigma: nominal, how: "nominal", note: "missing or constant pixels in every tile of the measured square: " +
      "HMI's nominal noise", source: "nominal", reason: "missing or constant pixels in every tile measured",
      warning: "", measurement: found };
  }
  if (!found.reliable) {
    const level = Number.isFinite(found.sigma) ? Math.max(found.sigma, nominal) : nominal;
    const warning = `the noise level cannot be measured reliably on this image (${found.reason}): ` +
      `${(level / nominal).toFixed(2)} x HMI's nominal noise assumed; enter a noise level to set it`;
    const kept = found.sigma > nominal;
    return { sigma: kept ? found.sigma : nominal, how: kept ? "measured" : "nominal", note: "not measured reliably",
      source: kept ? "measured" : "nominal",
      reason: kept ? `unreliable (${found.reason}); above HMI's, kept` : `unreliable measurement: ${found.reason}`,
      warning, measurement: found };
  }
  if (found.whiteness > WHITENESS_LIMIT) {
    return { sigma: nominal, how: "nominal", note: "the spectrum's corners are not white (an interpolated image?): " +
      "HMI's nominal noise", source: "nominal", reason: "spectrum's corners not white (interpolated?)", warning: "",
      measurement: found };
  }
  if (found.sigma < NOISE_FLOOR * nominal) {
    return { sigma: NOISE_FLOOR * nominal, how: "floor", note: `measured at ${times(found.sigma)}, below the floor: ` +
      `${NOISE_FLOOR.toFixed(2)} x HMI's`, source: "measured",
      reason: `${formatG(found.sigma / nominal)} x HMI's measured, raised to the floor ${formatG(NOISE_FLOOR, 6)} x`,
      warning: "", measurement: found };
  }
  // enhance.inference.pipeline.check_noise_level: a level far above HMI's (binned data labelled at HMI's scale?)
  const ratio = found.sigma / nominal;
  const warning = ratio > NOISE_WARN_RATIO
    ? `noise measured at ${Number(ratio.toPrecision(3))} x HMI's nominal noise, more than ${NOISE_WARN_RATIO} x: ` +
      "is the image binned, or not at HMI's 0.504 arcsec per pixel? The network is told the measured level; " +
      "enter a noise level to set it"
    : "";
  return { sigma: found.sigma, how: "measured", note: `measured on the image (${times(found.sigma)})`,
    source: "measured", reason: `${formatG(ratio)} x HMI's, beyond the cut-off`, warning, measurement: found };
}

/**
 * The warning Python gives (enhance.inference.pipeline._warn_clamped) when the level lies outside the filter
 * bank's nodes (in units of `unit`): the network then runs at the nearest node. Empty when inside.
 */
export function clampWarning(sigma, { unit, nodes, given = false }) {
  const ratio = sigma / unit;
  const low = Math.min(...nodes);
  const high = Math.max(...nodes);
  if (low * (1 - 1e-6) <= ratio && ratio <= high * (1 + 1e-6)) return "";
  const what = given ? "noise given" : "noise measured on the image";
  return `${what} is ${Number(ratio.toPrecision(3))} x HMI's, outside the ${low}-${high} x the network was trained ` +
    `for: it runs at ${ratio < low ? low : high} x HMI's noise (enter a noise level in the image's units, gauss for ` +
    "a magnetogram)";
}
