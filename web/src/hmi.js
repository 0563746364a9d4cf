// What `enhance run` does around the network, ported from the Python package so that the page gives
// the same numbers: the data kind (enhance.io.detect_kind / resolve_kind), the header of the x2 grid
// (enhance.io.upscale_header), the quiet-Sun normalisation (enhance.observation.quiet_sun: the level of
// estimate_qs_level, or the surface of surface_from_samples near the limb), the nearest-finite fill of NaN pixels
// (enhance.checks.fill_nonfinite: scipy's exact Euclidean feature transform), the noise level told to the
// default models (noise.js) and the normalisation around the network (enhance.inference.pipeline.enhance_array).

import { clampWarning, formatG, median as medianOf, networkNoise } from "./noise.js";

export const KINDS = ["intensity", "blos"];
const GAUSS_UNITS = ["g", "gauss", "mx/cm^2", "mx cm-2", "mx/cm2"];
const STALE_KEYS = [
  "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "DATAMIN", "DATAMAX", "DATAMEAN", "DATAMEDN",
  "DATARMS", "DATASKEW", "DATAKURT", "DATAVALS", "MISSVALS", "TOTVALS", "DATAP01", "DATAP10", "DATAP25",
  "DATAP75", "DATAP90", "DATAP95", "DATAP98", "DATAP99",
];
export const GAUSS_PER_KG = 1000.0;
/** Pixels the quiet-Sun estimate looks at, at most (enhance.observation.quiet_sun.QS_SAMPLES). */
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

const FIELD_UNITS = ["kg", "t", "mt", "kgauss", "tesla"];
const INTENSITY_UNITS = ["i/ic", "dn/s", "dn", "counts", "ct/s", "ct", "ic", "dimensionless", "erg/(cm2 s sr a)"];
/** Header keyword that marks a file written by solar-enhance (enhance.io.PROVENANCE_KEY). */
export const PROVENANCE_KEY = "ENH_VER";
const HMI_PIXEL_SCALE = 0.504;
const ANGLE_TO_ARCSEC = { arcsec: 1.0, asec: 1.0, arcmin: 60.0, deg: 3600.0, rad: 206264.80624709636, mas: 1e-3 };
const UNTRAINED = [
  [["DOPPLERGRAM", "HMI.V_"], ["cm/s", "m/s", "km/s"], "a Dopplergram"],
  [["LINEWIDTH", "HMI.LW_"], [], "a line-width map"],
  [["LINEDEPTH", "HMI.LD_"], [], "a line-depth map"],
  [["INCLINATION", "AZIMUTH", "DISAMBIG"], ["deg", "degree"], "a vector-field angle"],
];
const words = (header) => ["CONTENT", "SERIES", "DSNAME", "OBJECT", "TELESCOP"].map((k) => str(header.get(k, "") ?? ""))
  .join(" ").toUpperCase();
const bunit = (header) => str(header.get("BUNIT", "") ?? "").trim();

/** 'blos', 'intensity' or null, from CONTENT, the series name and BUNIT (enhance.io.detect_kind). */
export function detectKind(header) {
  const w = words(header);
  if (w.includes("MAGNETOGRAM") || w.includes("HMI.M_") || w.includes("HMI.B_")) return "blos";
  if (w.includes("CONTINUUM") || w.includes("HMI.IC_") || w.includes("INTENSITY")) return "intensity";
  const unit = bunit(header).toLowerCase();
  if ([...GAUSS_UNITS, ...FIELD_UNITS].includes(unit)) return "blos";
  if (INTENSITY_UNITS.includes(unit)) return "intensity";
  return null;
}

/** The pixel scale in arcsec (axis 1, axis 2), or null (enhance.io.pixel_scale). */
export function pixelScale(header) {
  const get = (k, d) => header.get(k, d);
  const hasCd = [1, 2].some((i) => [1, 2].some((j) => get(`CD${i}_${j}`, null) !== null));
  if (!hasCd && get("CDELT1", null) === null && get("CDELT2", null) === null) return null;
  const factors = [];
  for (const i of [1, 2]) {
    const ctype = str(get(`CTYPE${i}`, "") ?? "").toUpperCase();
    const fallback = ctype.startsWith("HPLN") || ctype.startsWith("HPLT") || ctype.startsWith("SOLAR") || !ctype ? "arcsec" : "deg";
    const unit = (str(get(`CUNIT${i}`, fallback) ?? fallback).trim() || fallback).toLowerCase();
    if (!(unit in ANGLE_TO_ARCSEC)) return null;
    factors.push(ANGLE_TO_ARCSEC[unit]);
  }
  const m = [[0, 0], [0, 0]];
  for (const i of [1, 2]) {
    for (const j of [1, 2]) {
      const value = hasCd ? Number(get(`CD${i}_${j}`, 0) || 0) : Number(get(`CDELT${i}`, 1)) * Number(get(`PC${i}_${j}`, i === j ? 1 : 0));
      m[i - 1][j - 1] = value * factors[i - 1];
    }
  }
  return [Math.hypot(m[0][0], m[1][0]), Math.hypot(m[0][1], m[1][1])];
}

/** The solar-enhance version that wrote the header (ENH_VER, or its HISTORY line), or null. */
export function writtenByEnhance(header) {
  const value = header.get(PROVENANCE_KEY, null);
  if (value !== null) return str(value);
  const found = header.all("HISTORY").join("\n").match(/solar-enhance (\S+): Enhance x2/);
  return found ? found[1] : null;
}

const PYTHON = "run it with `enhance run --force` in Python if you are sure";

/**
 * The kind to run ('intensity' or 'blos') for a requested kind ('auto' reads the header), with the checks
 * of enhance.io.resolve_kind and check_header (untrained quantities, gauss, helioprojective grid, HMI's
 * pixel scale, an input already enhanced, a magnetogram given as continuum). Returns {kind}.
 */
export function resolveKind(requested, header) {
  const unit = bunit(header);
  const w = words(header);
  for (const [keywords, units, name] of UNTRAINED) {
    if (keywords.some((k) => w.includes(k)) || units.includes(unit.toLowerCase())) {
      throw new InputError(`this file is ${name} (BUNIT '${unit}', CONTENT '${str(header.get("CONTENT", "") ?? "")}'); ` +
        "the networks were trained on continuum intensity and line-of-sight magnetograms only");
    }
  }
  const kind = requested === "auto" ? detectKind(header) : requested;
  if (kind === null) {
    throw new InputError("cannot tell continuum from magnetogram: the header has no BUNIT, CONTENT or series " +
      "name that says; choose the kind (continuum or magnetogram) in the menu");
  }
  if (!KINDS.includes(kind)) throw new InputError(`kind must be 'auto', 'intensity' or 'blos', got '${kind}'`);
  if (kind === "blos" && unit && !GAUSS_UNITS.includes(unit.toLowerCase())) {
    throw new InputError(`magnetograms must be in gauss, got BUNIT '${unit}'; convert the data to G first`);
  }
  const version = writtenByEnhance(header);
  if (version !== null) {
    throw new InputError(`this file was written by solar-enhance ${version} (${PROVENANCE_KEY} card): it is already ` +
      "enhanced, and enhancing it again would not mean anything");
  }
  const ctypes = [1, 2].map((i) => str(header.get(`CTYPE${i}`, "") ?? "").trim().toUpperCase());
  const hp = ["HPLN", "HPLT", "SOLAR-X", "SOLAR-Y", "SOLX", "SOLY"];
  if (ctypes.some((c) => c) && !ctypes.every((c) => hp.some((p) => c.startsWith(p)))) {
    const all = ctypes.join(" ");
    const what = all.includes("CEA") ? "a cylindrical equal-area (CEA) map, e.g. a SHARP or a synoptic map" :
      all.includes("CRLN") || all.includes("CRLT") ? "a Carrington (heliographic) map" :
        all.includes("HGLN") || all.includes("HGLT") ? "a Stonyhurst heliographic map" : "not a helioprojective image";
    throw new InputError(`this file is ${what} (CTYPE '${ctypes[0]}', '${ctypes[1]}'); the networks were trained on ` +
      `helioprojective HMI images (HPLN-TAN/HPLT-TAN); enhance the image before remapping it, or ${PYTHON}`);
  }
  const scale = pixelScale(header);
  if (scale !== null) {
    const worst = Math.abs(scale[0] - HMI_PIXEL_SCALE) >= Math.abs(scale[1] - HMI_PIXEL_SCALE) ? scale[0] : scale[1];
    if (Math.abs(worst - HMI_PIXEL_SCALE) > 0.05 * HMI_PIXEL_SCALE) {
      throw new InputError(`the pixel scale is ${Number(worst.toPrecision(6))} arcsec, more than 5 % from HMI's ` +
        `0.504 arcsec; the networks were trained on HMI's sampling (resample it to 0.504 arcsec/pixel first), or ${PYTHON}`);
    }
  }
  if (kind === "intensity" && detectKind(header) === "blos") {
    throw new InputError(`this file looks like a magnetogram (BUNIT '${unit}', CONTENT ` +
      `'${str(header.get("CONTENT", "") ?? "")}') but was given as continuum; choose 'magnetogram' or 'auto'`);
  }
  return { kind };
}

/**
 * CRPIXi of a header, or where sunpy puts the reference pixel of a header without it: the image centre,
 * (NAXISi + 1) / 2 (0 without NAXISi either), as enhance.io.upscale_header does.
 */
export function referencePixel(header, axis) {
  if (header.has(`CRPIX${axis}`)) return Number(header.get(`CRPIX${axis}`));
  const size = header.get(`NAXIS${axis}`, null);
  return size !== null ? (Number(size) + 1.0) / 2.0 : 0.0;
}

/**
 * Header of the x2 grid (enhance.io.upscale_header): NAXISi x factor, CDELTi and CDi_j / factor (PCi_j
 * unchanged; no CDELTi added where a CD matrix alone gives the scale), CRPIXi' = factor (CRPIXi - 0.5) + 0.5, HMI's pixel-unit keys, stale data statistics
 * removed, the `provenance` cards (enhance.io.provenance_cards: ENH_VER, ENH_MODL, ENH_KIND; and those of
 * assumptionCards and registryCards), with their `comments` (enhance.io.CARD_COMMENTS), and a HISTORY card. A
 * missing CRPIXi is the image centre, (NAXISi + 1) / 2, as sunpy reads such a header.
 */
export function upscaleHeader(header, factor = 2, history = null, provenance = {}, comments = {}) {
  const out = header.copy();
  const num = (key, fallback) => {
    const v = header.get(key, fallback);
    return typeof v === "number" ? v : Number(v);
  };
  for (const axis of [1, 2]) {
    if (header.has(`NAXIS${axis}`)) out.set(`NAXIS${axis}`, Math.round(num(`NAXIS${axis}`) * factor), { integer: true });
    out.set(`CRPIX${axis}`, factor * (referencePixel(header, axis) - 0.5) + 0.5);
    const matrix = [1, 2].filter((other) => header.has(`CD${axis}_${other}`));
    for (const other of matrix) out.set(`CD${axis}_${other}`, num(`CD${axis}_${other}`) / factor);
    // a CD matrix alone gives the scale: no CDELT added beside it (sunpy would read that as the scale)
    if (header.has(`CDELT${axis}`) || !matrix.length) out.set(`CDELT${axis}`, num(`CDELT${axis}`, 1.0) / factor);
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
  for (const [name, value] of Object.entries(provenance)) out.set(name, value, { comment: comments[name] });
  if (history) out.add("HISTORY", history);
  return out;
}

/**
 * The header cards that record what an enhancement assumed (enhance.inference.pipeline.assumption_cards):
 * ENH_NOIS (the noise level told the network: a fraction of the quiet-Sun level, or gauss), ENH_NUNI ('I/Ic'
 * or 'G'), ENH_NSRC and ENH_NWHY (NoiseChoice's source and reason), where the network is told the noise; for a
 * continuum image ENH_QSTY ('level' or 'surface'), ENH_QSRC ('given' or 'estimated') and ENH_QSLV (the level in
 * the image's units; a surface's median), with ENH_QSMN and ENH_QSMX (a surface's least and greatest sample).
 *
 * @param {'intensity'|'blos'} kind
 * @param {{noise: object|null, scale: number|{samples: ArrayLike<number>}, qsGiven: boolean}} assumed noise:
 *   noise.networkNoise's answer (null for a network told none); scale: what enhanceImage divided by
 * @returns {Object<string, number|string>}
 */
export function assumptionCards(kind, { noise, scale, qsGiven }) {
  const cards = {};
  if (noise) {
    Object.assign(cards, { ENH_NOIS: kind === "blos" ? noise.sigma * GAUSS_PER_KG : noise.sigma,
      ENH_NUNI: kind === "blos" ? "G" : "I/Ic", ENH_NSRC: noise.source, ENH_NWHY: noise.reason.slice(0, 68) });
  }
  if (kind !== "intensity") return cards;
  const source = qsGiven ? "given" : "estimated";
  if (typeof scale === "number") return Object.assign(cards, { ENH_QSTY: "level", ENH_QSRC: source, ENH_QSLV: scale });
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of scale.samples) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  return Object.assign(cards, { ENH_QSTY: "surface", ENH_QSRC: source, ENH_QSLV: medianOf(scale.samples), ENH_QSMN: lo,
    ENH_QSMX: hi });
}

/**
 * ENH_REG (the registry name, 'intensity/light') and ENH_SHA (the sha256 of the weights) of a shipped model
 * (enhance.inference.pipeline.registry_cards), from its models/index.json entry, which `make web` fills from
 * the package's registry (enhance/data/models.json).
 */
export function registryCards({ registry, sha256 }) {
  if (!registry || !sha256) throw new InputError("models/index.json names no registry entry; rebuild with make web");
  return { ENH_REG: registry.slice(0, 68), ENH_SHA: sha256 };
}

/** Stride along each axis that leaves at most QS_SAMPLES pixels (enhance.observation.quiet_sun.qs_stride). */
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
 * Robust quiet-Sun level of a continuum image (enhance.observation.quiet_sun.estimate_qs_level): the median of the
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
 * Whether the field is plainly flat around `level` (enhance.observation.quiet_sun._is_flat): at least half of the
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

// The quiet-Sun surface (enhance.observation.quiet_sun.surface_from_samples), for fields where the quiet Sun varies:
// a Gaussian-weighted local linear fit to the quiet samples, refined until the quiet samples stay the same.

/** scipy.ndimage.gaussian_filter(x, sigma, mode="constant", cval=0) of a rows x cols float64 array. */
export function gaussianFilter(x, rows, cols, sigma) {
  const radius = Math.trunc(4.0 * sigma + 0.5);
  const kernel = new Float64Array(2 * radius + 1);
  let total = 0;
  for (let k = -radius; k <= radius; k++) total += (kernel[k + radius] = Math.exp((-0.5 / (sigma * sigma)) * k * k));
  for (let k = 0; k < kernel.length; k++) kernel[k] /= total;
  const pass = (src, n, m, get, set) => {
    // correlate each of m lines of length n (symmetric kernel, zeros outside)
    const line = new Float64Array(n + 2 * radius);
    for (let j = 0; j < m; j++) {
      for (let i = 0; i < n; i++) line[i + radius] = get(src, i, j);
      for (let i = 0; i < n; i++) {
        const c = i + radius;
        let acc = line[c] * kernel[radius];
        for (let k = 1; k <= radius; k++) acc += (line[c + k] + line[c - k]) * kernel[radius + k];
        set(i, j, acc);
      }
    }
  };
  const tmp = new Float64Array(rows * cols);
  pass(x, rows, cols, (a, i, j) => a[i * cols + j], (i, j, v) => (tmp[i * cols + j] = v)); // along axis 0
  const out = new Float64Array(rows * cols);
  pass(tmp, cols, rows, (a, i, j) => a[j * cols + i], (i, j, v) => (out[j * cols + i] = v)); // along axis 1
  return out;
}

/** scipy.ndimage.map_coordinates(grid, [ys x xs], order=1, mode="nearest"): linear, edges held. */
export function interpolateLinear(grid, rows, cols, ys, xs, out = new Float64Array(ys.length * xs.length)) {
  const at = (i, j) => grid[Math.min(rows - 1, Math.max(0, i)) * cols + Math.min(cols - 1, Math.max(0, j))];
  for (let a = 0; a < ys.length; a++) {
    const y = Math.min(rows - 1, Math.max(0, ys[a]));
    const i = Math.floor(y);
    const ty = y - i;
    for (let b = 0; b < xs.length; b++) {
      const x = Math.min(cols - 1, Math.max(0, xs[b]));
      const j = Math.floor(x);
      const tx = x - j;
      out[a * xs.length + b] = (1 - ty) * ((1 - tx) * at(i, j) + tx * at(i, j + 1)) +
        ty * ((1 - tx) * at(i + 1, j) + tx * at(i + 1, j + 1));
    }
  }
  return out;
}

function solve3(m, r) {
  // first unknown of m u = r (Gaussian elimination with partial pivoting); m row-major 3x3
  const a = [[m[0], m[1], m[2], r[0]], [m[3], m[4], m[5], r[1]], [m[6], m[7], m[8], r[2]]];
  for (let c = 0; c < 3; c++) {
    let p = c;
    for (let q = c + 1; q < 3; q++) if (Math.abs(a[q][c]) > Math.abs(a[p][c])) p = q;
    [a[c], a[p]] = [a[p], a[c]];
    for (let q = c + 1; q < 3; q++) {
      const f = a[q][c] / a[c][c];
      for (let k = c; k < 4; k++) a[q][k] -= f * a[c][k];
    }
  }
  const u2 = a[2][3] / a[2][2];
  const u1 = (a[1][3] - a[1][2] * u2) / a[1][1];
  return (a[0][3] - a[0][1] * u1 - a[0][2] * u2) / a[0][0];
}

/** enhance.observation.quiet_sun._local_linear_fit: the Gaussian-weighted local plane (or mean) at every cell. */
export function localLinearFit(sums, weights, rows, cols, sigma) {
  const n = rows * cols;
  const r = new Float64Array(n);
  const c = new Float64Array(n);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) (r[i * cols + j] = i / sigma), (c[i * cols + j] = j / sigma);
  const smooth = (f) => gaussianFilter(Float64Array.from({ length: n }, (_, k) => f(k)), rows, cols, sigma);
  const w = weights;
  const m0 = smooth((k) => w[k]);
  let m0max = -Infinity;
  for (let k = 0; k < n; k++) m0max = Math.max(m0max, m0[k]);
  const swr = smooth((k) => w[k] * r[k]);
  const swc = smooth((k) => w[k] * c[k]);
  const swrr = smooth((k) => w[k] * r[k] ** 2);
  const swcc = smooth((k) => w[k] * c[k] ** 2);
  const swrc = smooth((k) => w[k] * r[k] * c[k]);
  const v0 = smooth((k) => sums[k]);
  const svr = smooth((k) => sums[k] * r[k]);
  const svc = smooth((k) => sums[k] * c[k]);
  const fit = new Float64Array(n);
  const reached = new Uint8Array(n);
  let all = true;
  for (let k = 0; k < n; k++) {
    reached[k] = m0[k] > 1e-3 * m0max ? 1 : 0;
    if (!reached[k]) {
      all = false;
      continue;
    }
    const my = swr[k] - r[k] * m0[k];
    const mx = swc[k] - c[k] * m0[k];
    const myy = swrr[k] - 2 * r[k] * swr[k] + r[k] ** 2 * m0[k];
    const mxx = swcc[k] - 2 * c[k] * swc[k] + c[k] ** 2 * m0[k];
    const mxy = swrc[k] - r[k] * swc[k] - c[k] * swr[k] + r[k] * c[k] * m0[k];
    const vy = svr[k] - r[k] * v0[k];
    const vx = svc[k] - c[k] * v0[k];
    const mean = v0[k] / m0[k];
    const m = [m0[k], my, mx, my, myy, mxy, mx, mxy, mxx];
    const det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
    let value = mean;
    if (det > 1e-6 * m0[k] ** 3) {
      const plane = solve3(m, [v0[k], vy, vx]);
      if (Math.abs(plane - mean) <= 0.15 * Math.abs(mean)) value = plane;
    }
    fit[k] = value;
  }
  if (!all) {
    const nearest = nearestFinite(reached, rows, cols); // off the limb: the nearest fitted value
    const copy = Float64Array.from(fit);
    for (let k = 0; k < n; k++) fit[k] = copy[nearest[k]];
  }
  return fit;
}

/**
 * enhance.observation.quiet_sun.surface_from_samples: the quiet-Sun surface from the subsample `values` (rows x cols,
 * every `stride` pixels). Returns {samples, rows, cols, stride, spread}.
 */
export function surfaceFromSamples(values, rows, cols, stride, { scale = SURFACE_SCALE, window = 0.1, nIter = 10 } = {}) {
  const n = rows * cols;
  const finite = Uint8Array.from(values, (v) => (Number.isFinite(v) ? 1 : 0));
  const level = estimateQsLevel(values, { window });
  let surface = new Float64Array(n).fill(level);
  const sigma = scale / stride;
  const block = Math.max(1, Math.trunc(Math.floor(sigma / 4)));
  const by = Math.ceil(rows / block);
  const bx = Math.ceil(cols / block);
  let previous = null;
  for (let it = 0; it < nIter; it++) {
    const quiet = new Float64Array(n);
    const quietValues = new Float64Array(n);
    let any = false;
    for (let k = 0; k < n; k++) {
      if (finite[k] && Math.abs(values[k] - surface[k]) <= window * surface[k]) {
        quiet[k] = 1;
        quietValues[k] = values[k];
        any = true;
      }
    }
    if (!any || (previous && quiet.every((q, k) => q === previous[k]))) break;
    previous = quiet;
    const weights = block === 1 ? quiet : blockSum(quiet, rows, cols, block);
    const sums = block === 1 ? quietValues : blockSum(quietValues, rows, cols, block);
    const fit = localLinearFit(sums, weights, by, bx, sigma / block);
    const ys = Float64Array.from({ length: rows }, (_, i) => (i + 0.5) / block - 0.5);
    const xs = Float64Array.from({ length: cols }, (_, j) => (j + 0.5) / block - 0.5);
    surface = interpolateLinear(fit, by, bx, ys, xs);
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < n; k++) {
    if (!(surface[k] > 0)) {
      throw new InputError("the fitted quiet-Sun surface is not positive everywhere; enter a quiet-Sun level by hand");
    }
    lo = Math.min(lo, surface[k]);
    hi = Math.max(hi, surface[k]);
  }
  return { samples: surface, rows, cols, stride, spread: hi / lo - 1 };
}

/**
 * The surface at the centres of the image's pixels (factor 1) or of their 2x2 output pixels (factor 2),
 * float32 as enhance.observation.quiet_sun.QuietSunSurface gives it.
 */
export function surfaceOnGrid(surface, height, width, factor) {
  const ys = Float64Array.from({ length: factor * height }, (_, i) => ((i + 0.5) / factor - 0.5) / surface.stride);
  const xs = Float64Array.from({ length: factor * width }, (_, j) => ((j + 0.5) / factor - 0.5) / surface.stride);
  const out = new Float32Array(ys.length * xs.length); // rounded to float32 as each value is stored
  return interpolateLinear(surface.samples, surface.rows, surface.cols, ys, xs, out);
}

/**
 * The quiet-Sun normalisation `enhance run` uses for a continuum image (qs_level=None): one level where
 * the field is flat, else the fitted surface where it spans more than 15 %. Returns a number or a
 * surface (see surfaceFromSamples).
 */
export function qsNormalisation(data, height, width) {
  const stride = qsStride(height, width);
  const { values, rows, cols } = subsample(data, height, width, stride);
  const level = estimateQsLevel(values);
  if (isFlat(values, rows, cols, stride, level)) return level;
  const surface = surfaceFromSamples(values, rows, cols, stride);
  return surface.spread > AUTO_SURFACE_SPREAD ? surface : level;
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

/** The network carries pixels up to this many times its unit (enhance.checks.MAX_NORMALISED). */
export const MAX_NORMALISED = 1e6;

function checkMagnitude(data, source, width, level, unit) {
  // enhance.checks.check_magnitude, on the filled image: refuse a pixel beyond 1e6 times the network's unit
  let peak = 0;
  let at = 0;
  for (let i = 0; i < data.length; i++) {
    const v = Math.abs(data[source ? source[i] : i]);
    if (v > peak) (peak = v), (at = i);
  }
  let lowest = level;
  if (typeof level !== "number") {
    lowest = Infinity;
    for (const v of level) lowest = Math.min(lowest, v);
  }
  const ratio = lowest > 0 ? peak / lowest : Infinity;
  if (!(ratio <= MAX_NORMALISED)) {
    const g = (x) => formatG(x, 3);
    throw new InputError(`image pixel (${Math.floor(at / width)}, ${at % width}) = ${g(peak)} is ${g(ratio)} times ` +
      `${unit} (${g(lowest)}); the network carries at most 1e+06 times it (solar pixels stay within a few): mask ` +
      "such pixels as NaN or fix the units");
  }
}

/**
 * Enhance one image as `enhance run` does (enhance.inference.pipeline.enhance_array), around `run`, the network.
 *
 * @param {{data: Float64Array, width: number, height: number, float32: boolean}} image
 * @param {object} options
 * @param {'intensity'|'blos'} options.kind
 * @param {number|null} [options.qsLevel] quiet-Sun level by hand (continuum); null: estimated
 * @param {(input: Float32Array, height: number, width: number, noise: number|null) => Promise<Float32Array>} options.run
 *   the network: (height x width) float32 in, (2 height x 2 width) out; `noise` is the level it is told
 *   (network units), null for a network that is told none
 * @param {{unit: number, nodes: number[]}|null} [options.noiseModel] a network told the noise level: its noise
 *   unit (HMI's nominal noise, network units) and its filter bank's nodes (in that unit); null: the paper's
 * @param {number|null} [options.noise] the noise level by hand, image units (gauss for a magnetogram); null: measured
 * @param {number} [options.tile] tile size in input pixels; [options.margin] pixels of context around each
 * @returns {Promise<{data: Float32Array|Float64Array, width: number, height: number, scale: number|object,
 *   noise: object|null, warnings: string[]}>} scale: the quiet-Sun level, 1000 (gauss per kG), or the
 *   quiet-Sun surface; noise: noise.networkNoise's answer; warnings: what Python would warn
 */
export async function enhanceImage(image, { kind, qsLevel = null, run, noiseModel = null, noise: given = null,
  tile = 512, margin = 16, onProgress } = {}) {
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
    scale = qsLevel ?? qsNormalisation(data, height, width);
  } else if (kind === "blos") {
    scale = GAUSS_PER_KG;
  } else {
    throw new InputError(`kind must be 'intensity' or 'blos', got '${kind}'`);
  }
  const surface = typeof scale === "number" ? null : scale;
  const source = nFinite === n ? null : nearestFinite(finite, height, width);
  const surfaceIn = surface ? surfaceOnGrid(surface, height, width, 1) : null;
  checkMagnitude(data, source, width, surfaceIn ?? scale, kind === "intensity" ? "the quiet-Sun level" : "1 kG");
  const input = new Float32Array(n);
  if (surface) {
    // float32 image divided by the float32 surface (enhance.inference.pipeline._scale_rows)
    for (let i = 0; i < n; i++) input[i] = Math.fround(data[source ? source[i] : i]) / surfaceIn[i];
  } else if (float32) {
    const s32 = Math.fround(scale); // numpy: float32 array / Python float is a float32 division
    for (let i = 0; i < n; i++) input[i] = data[source ? source[i] : i] / s32;
  } else {
    for (let i = 0; i < n; i++) input[i] = data[source ? source[i] : i] / scale;
  }
  const { noise, warnings } = noiseLevel(image, input, { source, scale, finite, noiseModel, given });

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
    const result = await run(window, th, tw, noise ? noise.sigma : null);
    for (let y = 2 * (y0 - wy0); y < 2 * (y1 - wy0); y++) {
      const row = result.subarray(y * 2 * tw, (y + 1) * 2 * tw);
      const target = (2 * wy0 + y) * W;
      for (let x = 2 * (x0 - wx0); x < 2 * (x1 - wx0); x++) out[target + 2 * wx0 + x] = row[x];
    }
    done++;
    if (onProgress) onProgress(done, tiles.length);
  }
  if (surface) {
    const s = surfaceOnGrid(surface, height, width, 2);
    for (let i = 0; i < out.length; i++) out[i] *= s[i];
  } else if (float32) {
    const s32 = Math.fround(scale);
    for (let i = 0; i < out.length; i++) out[i] *= s32; // Float32Array stores the float32-rounded product
  } else {
    for (let i = 0; i < out.length; i++) out[i] *= scale;
  }
  if (kind === "intensity") {
    // enhance.inference.pipeline._clip_negative: a continuum intensity is not negative where its input is not
    for (let i = 0; i < out.length; i++) {
      if (out[i] < 0 && data[Math.floor(Math.floor(i / W) / 2) * width + Math.floor((i % W) / 2)] >= 0) out[i] = 0;
    }
  }
  let bad = 0; // enhance.checks.check_finite_output: finite input never gives a silent non-finite output
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]) && finite[Math.floor(Math.floor(i / W) / 2) * width + Math.floor((i % W) / 2)]) bad++;
  }
  if (bad) {
    throw new InputError(`the network gave ${bad} non-finite output pixels for finite input (an overflow of its ` +
      "arithmetic); no output was written");
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
  return { data: out, width: W, height: 2 * height, scale, noise, warnings };
}

/**
 * The noise level a network told the noise gets (enhance_array: network_noise, then _warn_clamped), measured on
 * the normalised image as Python holds it: float64 for float64 data divided by one level, else the float32 input.
 */
function noiseLevel({ data, width, height, float32 }, input, { source, scale, finite, noiseModel, given }) {
  if (!noiseModel) {
    if (given !== null) throw new InputError("a noise level is for the models told the noise level (light)");
    return { noise: null, warnings: [] };
  }
  if (given !== null && !(given > 0 && Number.isFinite(given))) {
    throw new InputError(`the noise level must be a positive number, got ${given}`);
  }
  let normalised = input;
  if (typeof scale === "number" && !float32) {
    normalised = new Float64Array(width * height);
    for (let i = 0; i < normalised.length; i++) normalised[i] = data[source ? source[i] : i] / scale;
  }
  const noise = networkNoise(normalised, height, width, { nominal: noiseModel.unit, noise: given, scale, finite });
  const clamped = clampWarning(noise.sigma, { unit: noiseModel.unit, nodes: noiseModel.nodes, given: given !== null });
  return { noise, warnings: [noise.warning, clamped].filter(Boolean) };
}

/**
 * The (height + 2 margin) x (width + 2 margin) image mirrored by `margin` pixels on each side, edge pixels
 * repeated (numpy.pad mode 'symmetric'; a margin beyond the image reflects again), as
 * enhance.runtime.wiener_onnx.WienerOnnxNetwork feeds its graph.
 */
export function padSymmetric(input, height, width, margin) {
  const mirror = (i, n) => {
    const j = ((i % (2 * n)) + 2 * n) % (2 * n);
    return j < n ? j : 2 * n - 1 - j;
  };
  const h = height + 2 * margin;
  const w = width + 2 * margin;
  const columns = Int32Array.from({ length: w }, (_, x) => mirror(x - margin, width));
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const row = mirror(y - margin, height) * width;
    for (let x = 0; x < w; x++) out[y * w + x] = input[row + columns[x]];
  }
  return out;
}

/**
 * The linear pixel-to-world map of a header's celestial axes, in arcsec, or null without a WCS
 * (no CDELTi, CDi_j or CTYPEi). world = CRVAL + M (p - CRPIX), p the 1-based FITS pixel; a header without
 * CRPIXi has its reference pixel at the image centre (referencePixel), as for the x2 header that
 * upscaleHeader writes, so that the input and the enhanced image of one field get the same coordinates.
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
  const crpix = [referencePixel(header, 1), referencePixel(header, 2)]; // no CRPIX: the centre, as upscaleHeader
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
