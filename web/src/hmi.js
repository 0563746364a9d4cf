// What `enhance run` does around the network, ported from the Python package so that the page gives
// the same numbers: the data kind (enhance.io.detect_kind / resolve_kind), the header of the x2 grid
// (enhance.io.upscale_header), the quiet-Sun level (enhance.quiet_sun.estimate_qs_level and the quick
// flatness test of normalisation_from_samples), the nearest-finite fill of NaN pixels
// (enhance._validation.fill_nonfinite: scipy's exact Euclidean feature transform) and the
// normalisation around the network (enhance.inference._enhance_array).

import { Header } from "./fits.js";

export const KINDS = ["intensity", "blos"];
const GAUSS_UNITS = ["g", "gauss", "mx/cm^2", "mx cm-2", "mx/cm2"];
const STALE_KEYS = [
  "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "DATAMIN", "DATAMAX", "DATAMEAN", "DATAMEDN",
  "DATARMS", "DATASKEW", "DATAKURT", "DATAVALS", "MISSVALS", "TOTVALS", "DATAP01", "DATAP10", "DATAP25",
  "DATAP75", "DATAP90", "DATAP95", "DATAP98", "DATAP99",
];
export const GAUSS_PER_KG = 1000.0;
/** Pixels the quiet-Sun estimate looks at, at most (enhance.quiet_sun.QS_SAMPLES). */
export const QS_SAMPLES = 1 << 16;
const SURFACE_SCALE = 40.0;
const AUTO_SURFACE_SPREAD = 0.15;

/** A message for the user: the input cannot be enhanced as it is. */
export class InputError extends Error {
  constructor(message) {
    super(message);
    this.name = "InputError";
  }
}

function str(value) {
  if (value === undefined || value === null) return "";
  if (value === true) return "True";
  if (value === false) return "False";
  return String(value);
}

/** 'blos', 'intensity' or null, from CONTENT, the series name and BUNIT (enhance.io.detect_kind). */
export function detectKind(header) {
  const words = ["CONTENT", "SERIES", "DSNAME", "OBJECT", "TELESCOP"].map((k) => str(header.get(k, ""))).join(" ")
    .toUpperCase();
  if (words.includes("MAGNETOGRAM") || words.includes("HMI.M_") || words.includes("HMI.B_")) return "blos";
  if (words.includes("CONTINUUM") || words.includes("HMI.IC_") || words.includes("INTENSITY")) return "intensity";
  const unit = str(header.get("BUNIT", "")).trim().toLowerCase();
  if ([...GAUSS_UNITS, "kg", "t", "mt"].includes(unit)) return "blos";
  if (["i/ic", "dn/s", "dn", "counts", "ic"].includes(unit)) return "intensity";
  return null;
}

/**
 * The kind to run ('intensity' or 'blos') for a requested kind ('auto' reads the header), checked as
 * enhance.io.resolve_kind does. Returns {kind, warning}; warning is a string or null.
 */
export function resolveKind(requested, header) {
  const kind = requested === "auto" ? detectKind(header) : requested;
  if (kind === null) {
    throw new InputError("cannot tell continuum from magnetogram: the header has no BUNIT, CONTENT or series " +
      "name that says; choose the kind (continuum or magnetogram) in the menu");
  }
  if (!KINDS.includes(kind)) throw new InputError(`kind must be 'auto', 'intensity' or 'blos', got '${kind}'`);
  const unit = str(header.get("BUNIT", "")).trim();
  if (kind === "blos" && unit && !GAUSS_UNITS.includes(unit.toLowerCase())) {
    throw new InputError(`magnetograms must be in gauss, got BUNIT '${unit}'; convert the data to G first`);
  }
  let warning = null;
  const scale = header.get("CDELT1", null);
  const scaleUnit = (str(header.get("CUNIT1", "arcsec")) || "arcsec").trim().toLowerCase();
  if (typeof scale === "number" && ["arcsec", "asec"].includes(scaleUnit) && Math.abs(Math.abs(scale) - 0.504) > 0.05 * 0.504) {
    warning = `pixel scale ${Math.abs(scale)} arcsec is not HMI's 0.504 arcsec; the network was trained on ` +
      "HMI's sampling and its output will not mean much";
  }
  return { kind, warning };
}

/**
 * Header of the x2 grid (enhance.io.upscale_header): NAXISi x factor, CDELTi and CDi_j / factor (PCi_j
 * unchanged), CRPIXi' = factor (CRPIXi - 0.5) + 0.5, HMI's pixel-unit keys, stale data statistics
 * removed, and a HISTORY card.
 */
export function upscaleHeader(header, factor = 2, history = null) {
  const out = header.copy();
  const num = (key, fallback) => {
    const v = header.get(key, fallback);
    return typeof v === "number" ? v : Number(v);
  };
  for (const axis of [1, 2]) {
    if (header.has(`NAXIS${axis}`)) out.set(`NAXIS${axis}`, Math.round(num(`NAXIS${axis}`) * factor), { integer: true });
    out.set(`CRPIX${axis}`, factor * (num(`CRPIX${axis}`, 0.0) - 0.5) + 0.5);
    out.set(`CDELT${axis}`, num(`CDELT${axis}`, 1.0) / factor);
    for (const other of [1, 2]) {
      if (header.has(`CD${axis}_${other}`)) out.set(`CD${axis}_${other}`, num(`CD${axis}_${other}`) / factor);
    }
  }
  if (header.has("R_SUN")) out.set("R_SUN", num("R_SUN") * factor);
  if (header.has("IMSCL_MP")) out.set("IMSCL_MP", num("IMSCL_MP") / factor);
  for (const name of ["X0_MP", "Y0_MP"]) {
    if (header.has(name)) out.set(name, factor * (num(name) + 0.5) - 0.5);
  }
  const naxis = Number(header.get("NAXIS", 2) || 2);
  if (header.has("NAXIS") && naxis > 2) {
    out.set("NAXIS", 2, { integer: true });
    for (let axis = 3; axis <= naxis; axis++) {
      for (const name of ["NAXIS", "CRPIX", "CDELT", "CRVAL", "CTYPE", "CUNIT"]) out.delete(`${name}${axis}`);
    }
  }
  for (const name of STALE_KEYS) out.delete(name);
  if (history) out.add("HISTORY", history);
  return out;
}

/** Stride along each axis that leaves at most QS_SAMPLES pixels (enhance.quiet_sun.qs_stride). */
export function qsStride(height, width) {
  return Math.max(1, Math.ceil(Math.sqrt((width * height) / QS_SAMPLES)));
}

/** The regular subsample data[::stride, ::stride] as {values: Float64Array, rows, cols}. */
export function subsample(data, height, width, stride) {
  const rows = Math.ceil(height / stride);
  const cols = Math.ceil(width / stride);
  const values = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) values[i * cols + j] = data[i * stride * width + j * stride];
  return { values, rows, cols };
}

function median(sorted, lo, hi) {
  // median of sorted[lo:hi], as numpy: the mean of the two middle values for an even count
  const n = hi - lo;
  const mid = lo + (n >> 1);
  return n % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Robust quiet-Sun level of a continuum image (enhance.quiet_sun.estimate_qs_level): the median of the
 * finite pixels, then repeatedly the median of those within +-window of the current level.
 * `values` must already be the regular subsample (at most QS_SAMPLES values).
 */
export function estimateQsLevel(values, { window = 0.15, nIter = 10 } = {}) {
  const finite = Float64Array.from(Array.prototype.filter.call(values, Number.isFinite)).sort();
  if (finite.length === 0) throw new InputError("cannot estimate the quiet-Sun level: the image has no finite pixels");
  let level = median(finite, 0, finite.length);
  for (let it = 0; it < nIter; it++) {
    const half = window * Math.abs(level);
    let lo = 0;
    while (lo < finite.length && !(Math.abs(finite[lo] - level) <= half)) lo++;
    let hi = lo;
    while (hi < finite.length && Math.abs(finite[hi] - level) <= half) hi++;
    if (hi === lo) break;
    const next = median(finite, lo, hi);
    const converged = Math.abs(next - level) <= 1e-6 * Math.abs(level);
    level = next;
    if (converged) break;
  }
  if (!(level > 0)) throw new InputError(`the estimated quiet-Sun level is ${level}; give the level by hand`);
  return level;
}

function blockSum(x, rows, cols, block) {
  const by = Math.ceil(rows / block);
  const bx = Math.ceil(cols / block);
  const out = new Float64Array(by * bx);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[Math.floor(i / block) * bx + Math.floor(j / block)] += x[i * cols + j];
  return out;
}

/**
 * Whether the field is plainly flat around `level` (enhance.quiet_sun._is_flat): at least half of the
 * finite samples within 10 % of the level, and the mean of those in each square of 40 pixels varying
 * by less than 7.5 %.
 */
export function isFlat(values, rows, cols, stride, level) {
  const quiet = new Float64Array(values.length);
  const quietValues = new Float64Array(values.length);
  let nFinite = 0;
  let nQuiet = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    nFinite++;
    if (Math.abs(v - level) <= 0.1 * level) {
      quiet[i] = 1;
      quietValues[i] = v;
      nQuiet++;
    }
  }
  if (nQuiet < 0.5 * nFinite) return false;
  const block = Math.max(1, Math.floor(SURFACE_SCALE / stride));
  const weights = blockSum(quiet, rows, cols, block);
  const sums = blockSum(quietValues, rows, cols, block);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] >= 0.25 * block * block) {
      const mean = sums[i] / weights[i];
      lo = Math.min(lo, mean);
      hi = Math.max(hi, mean);
    }
  }
  if (lo === Infinity) return false;
  return hi / lo - 1 < AUTO_SURFACE_SPREAD / 2;
}

/**
 * The quiet-Sun level `enhance run` divides a continuum image by (qs_level=None). Where Python would
 * consider a quiet-Sun surface (the field is not plainly flat: limb darkening, a large spot), the page
 * does not guess: it raises an InputError unless a level is given by hand.
 */
export function quietSunLevel(data, height, width) {
  const stride = qsStride(height, width);
  const { values, rows, cols } = subsample(data, height, width, stride);
  const level = estimateQsLevel(values);
  if (!isFlat(values, rows, cols, stride, level)) {
    throw new InputError("the quiet Sun is not flat across this continuum image (limb darkening, or a spot " +
      "covering much of the field): `enhance run` would fit a quiet-Sun surface here, which the page does " +
      `not do. Enter a quiet-Sun level by hand (the single-level estimate is ${level.toPrecision(6)}), or run ` +
      "`enhance run --model light` in Python");
  }
  return level;
}

// scipy.ndimage's exact Euclidean feature transform (Maurer, Qi & Raghavan 2003), as in its
// ni_morphology.c: a Voronoi pass along each column, then along each row, with the same tie-breaking.
function voronoiLine(fy, fx, positions, len, d, coor, gy, gx, g) {
  // fy, fx: feature coordinates of the whole image; positions(ii): flat index of the ii-th pixel of the line
  for (let ii = 0; ii < len; ii++) {
    const p = positions(ii);
    gy[ii] = fy[p];
    gx[ii] = fx[p];
  }
  const fd = d === 0 ? gy : gx; // coordinate along the line
  const fo = d === 0 ? gx : gy; // the other coordinate
  let l = -1;
  for (let ii = 0; ii < len; ii++) {
    if (gy[ii] < 0) continue;
    const tw = fo[ii] - coor;
    const wR = tw * tw;
    while (l >= 1) {
      const idx1 = g[l];
      const idx2 = g[l - 1];
      const f1 = fd[idx1];
      const a = f1 - fd[idx2];
      const b = fd[ii] - f1;
      const c = a + b;
      const tu = fo[idx2] - coor;
      const tv = fo[idx1] - coor;
      const uR = tu * tu;
      const vR = tv * tv;
      if (c * vR - b * uR - a * wR - a * b * c <= 0.0) break;
      --l;
    }
    ++l;
    g[l] = ii;
  }
  const maxl = l;
  if (maxl < 0) return;
  l = 0;
  for (let ii = 0; ii < len; ii++) {
    let t = fd[g[l]] - ii;
    let s = fo[g[l]] - coor;
    let delta1 = t * t + s * s;
    while (l < maxl) {
      t = fd[g[l + 1]] - ii;
      s = fo[g[l + 1]] - coor;
      const delta2 = t * t + s * s;
      if (delta1 <= delta2) break;
      delta1 = delta2;
      ++l;
    }
    const p = positions(ii);
    fy[p] = gy[g[l]];
    fx[p] = gx[g[l]];
  }
}

/**
 * For each pixel, the flat index of its nearest finite pixel (itself where finite), as
 * scipy.ndimage.distance_transform_edt(~finite, return_indices=True) finds it, ties included.
 */
export function nearestFinite(finite, height, width) {
  const n = height * width;
  const fy = new Int32Array(n);
  const fx = new Int32Array(n);
  const size = Math.max(height, width);
  const gy = new Float64Array(size);
  const gx = new Float64Array(size);
  const g = new Int32Array(size);
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const p = y * width + x;
      fy[p] = finite[p] ? y : -1;
      fx[p] = finite[p] ? x : 0;
    }
    voronoiLine(fy, fx, (ii) => ii * width + x, height, 0, x, gy, gx, g);
  }
  for (let y = 0; y < height; y++) voronoiLine(fy, fx, (ii) => y * width + ii, width, 1, y, gy, gx, g);
  const index = new Int32Array(n);
  for (let p = 0; p < n; p++) index[p] = fy[p] * width + fx[p];
  return index;
}

/**
 * Enhance one image as `enhance run` does (enhance.inference._enhance_array), around `run`, the network.
 *
 * @param {{data: Float64Array, width: number, height: number, float32: boolean}} image
 * @param {object} options
 * @param {'intensity'|'blos'} options.kind
 * @param {number|null} [options.qsLevel] quiet-Sun level by hand (continuum); null: estimated
 * @param {(input: Float32Array, height: number, width: number) => Promise<Float32Array>} options.run
 *   the network: (height x width) float32 in, (2 height x 2 width) out
 * @param {number} [options.tile] tile size in input pixels; [options.margin] pixels of context around each
 * @returns {Promise<{data: Float32Array|Float64Array, width: number, height: number, scale: number}>}
 */
export async function enhanceImage(image, { kind, qsLevel = null, run, tile = 512, margin = 16, onProgress } = {}) {
  const { data, width, height, float32 } = image;
  if (Math.min(width, height) < 2) {
    throw new InputError(`the image must be at least 2 x 2 pixels, got ${height} x ${width}`);
  }
  const n = width * height;
  const finite = new Uint8Array(n);
  let nFinite = 0;
  for (let i = 0; i < n; i++) if (Number.isFinite(data[i])) (finite[i] = 1), nFinite++;
  if (nFinite === 0) throw new InputError("the image has no finite pixels");
  let scale;
  if (kind === "intensity") {
    if (qsLevel !== null && !(qsLevel > 0 && Number.isFinite(qsLevel))) {
      throw new InputError(`the quiet-Sun level must be a positive number, got ${qsLevel}`);
    }
    scale = qsLevel ?? quietSunLevel(data, height, width);
  } else if (kind === "blos") {
    scale = GAUSS_PER_KG;
  } else {
    throw new InputError(`kind must be 'intensity' or 'blos', got '${kind}'`);
  }
  const source = nFinite === n ? null : nearestFinite(finite, height, width);
  const input = new Float32Array(n);
  if (float32) {
    const s32 = Math.fround(scale); // numpy: float32 array / Python float is a float32 division
    for (let i = 0; i < n; i++) input[i] = data[source ? source[i] : i] / s32;
  } else {
    for (let i = 0; i < n; i++) input[i] = data[source ? source[i] : i] / scale;
  }

  const W = 2 * width;
  const out = float32 ? new Float32Array(4 * n) : new Float64Array(4 * n);
  const tiles = [];
  for (let y0 = 0; y0 < height; y0 += tile) for (let x0 = 0; x0 < width; x0 += tile) tiles.push([y0, x0]);
  let done = 0;
  for (const [y0, x0] of tiles) {
    const y1 = Math.min(y0 + tile, height);
    const x1 = Math.min(x0 + tile, width);
    const wy0 = Math.max(0, y0 - margin);
    const wx0 = Math.max(0, x0 - margin);
    const wy1 = Math.min(height, y1 + margin);
    const wx1 = Math.min(width, x1 + margin);
    const th = wy1 - wy0;
    const tw = wx1 - wx0;
    let window = input;
    if (th !== height || tw !== width) {
      window = new Float32Array(th * tw);
      for (let y = 0; y < th; y++) window.set(input.subarray((wy0 + y) * width + wx0, (wy0 + y) * width + wx1), y * tw);
    }
    const result = await run(window, th, tw);
    for (let y = 2 * (y0 - wy0); y < 2 * (y1 - wy0); y++) {
      const row = result.subarray(y * 2 * tw, (y + 1) * 2 * tw);
      const target = (2 * wy0 + y) * W;
      for (let x = 2 * (x0 - wx0); x < 2 * (x1 - wx0); x++) out[target + 2 * wx0 + x] = row[x];
    }
    done++;
    if (onProgress) onProgress(done, tiles.length);
  }
  if (float32) {
    const s32 = Math.fround(scale);
    for (let i = 0; i < out.length; i++) out[i] *= s32; // Float32Array stores the float32-rounded product
  } else {
    for (let i = 0; i < out.length; i++) out[i] *= scale;
  }
  if (nFinite !== n) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (finite[y * width + x]) continue;
        const p = 2 * y * W + 2 * x;
        out[p] = out[p + 1] = out[p + W] = out[p + W + 1] = NaN;
      }
    }
  }
  return { data: out, width: W, height: 2 * height, scale };
}

/**
 * The linear pixel-to-world map of a header's celestial axes, in arcsec, or null without a WCS
 * (no CDELTi, CDi_j or CTYPEi). world = CRVAL + M (p - CRPIX), p the 1-based FITS pixel.
 */
export function linearWcs(header) {
  const has = (k) => header.has(k);
  if (!["CDELT1", "CDELT2", "CD1_1", "CD2_2", "CTYPE1", "CTYPE2"].some(has)) return null;
  const n = (k, d) => {
    const v = header.get(k, d);
    return typeof v === "number" ? v : d;
  };
  const toArcsec = (axis) => {
    const unit = str(header.get(`CUNIT${axis}`, "arcsec")).trim().toLowerCase();
    return unit === "deg" ? 3600 : unit === "arcmin" ? 60 : unit === "rad" ? 206264.80624709636 : 1;
  };
  let m;
  if (has("CD1_1") || has("CD1_2") || has("CD2_1") || has("CD2_2")) {
    m = [[n("CD1_1", 0), n("CD1_2", 0)], [n("CD2_1", 0), n("CD2_2", 0)]];
  } else {
    const c1 = n("CDELT1", 1);
    const c2 = n("CDELT2", 1);
    let pc = [[n("PC1_1", 1), n("PC1_2", 0)], [n("PC2_1", 0), n("PC2_2", 1)]];
    if (!has("PC1_1") && !has("PC1_2") && !has("PC2_1") && !has("PC2_2") && has("CROTA2")) {
      const rho = (n("CROTA2", 0) * Math.PI) / 180;
      pc = [[Math.cos(rho), (-Math.sin(rho) * c2) / c1], [(Math.sin(rho) * c1) / c2, Math.cos(rho)]];
    }
    m = [[c1 * pc[0][0], c1 * pc[0][1]], [c2 * pc[1][0], c2 * pc[1][1]]];
  }
  const k1 = toArcsec(1);
  const k2 = toArcsec(2);
  const crpix = [n("CRPIX1", 0), n("CRPIX2", 0)];
  const crval = [n("CRVAL1", 0) * k1, n("CRVAL2", 0) * k2];
  const ctype = [str(header.get("CTYPE1", "")).trim().toUpperCase(), str(header.get("CTYPE2", "")).trim().toUpperCase()];
  const helioprojective = ctype[0].startsWith("HPLN") && ctype[1].startsWith("HPLT");
  return {
    helioprojective,
    /** world (arcsec) of 0-based pixel (x, y) */
    world(x, y) {
      const dx = x + 1 - crpix[0];
      const dy = y + 1 - crpix[1];
      return [crval[0] + k1 * (m[0][0] * dx + m[0][1] * dy), crval[1] + k2 * (m[1][0] * dx + m[1][1] * dy)];
    },
  };
}
