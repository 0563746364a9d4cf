// The discrete Fourier transform the noise measurement needs (numpy.fft.fft2 of real tiles), with no
// dependency: an iterative radix-2 transform for powers of two and Bluestein's chirp-z transform, built on
// it, for any other length (an image narrower than two noise tiles is read whole, at any size).

const plans = new Map();

function radix2Plan(n) {
  const bits = Math.round(Math.log2(n));
  const reverse = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0, v = i; b < bits; b++, v >>= 1) r = (r << 1) | (v & 1);
    reverse[i] = r;
  }
  // exp(-2 pi i k / n) for k < n / 2, each from its own cos and sin (no accumulated rounding)
  const cos = Float64Array.from({ length: n >> 1 }, (_, k) => Math.cos((2 * Math.PI * k) / n));
  const sin = Float64Array.from({ length: n >> 1 }, (_, k) => -Math.sin((2 * Math.PI * k) / n));
  return { n, reverse, cos, sin };
}

/** The forward transform of (re, im) in place, for a length that is a power of two. */
function radix2(plan, re, im) {
  const { n, reverse, cos, sin } = plan;
  for (let i = 0; i < n; i++) {
    const j = reverse[i];
    if (j > i) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >> 1;
    const stride = n / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < half; k++) {
        const a = start + k;
        const b = a + half;
        const wr = cos[k * stride];
        const wi = sin[k * stride];
        const tr = re[b] * wr - im[b] * wi;
        const ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
      }
    }
  }
}

function bluesteinPlan(n) {
  let m = 1;
  while (m < 2 * n - 1) m <<= 1;
  // the chirp exp(-i pi k^2 / n), its angle reduced exactly (k^2 mod 2n) before the cosine
  const chirpRe = new Float64Array(n);
  const chirpIm = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const angle = (Math.PI * ((k * k) % (2 * n))) / n;
    chirpRe[k] = Math.cos(angle);
    chirpIm[k] = -Math.sin(angle);
  }
  // the transform of the conjugate chirp, wrapped around the length-m circle
  const inner = radix2Plan(m);
  const kernelRe = new Float64Array(m);
  const kernelIm = new Float64Array(m);
  for (let k = 0; k < n; k++) {
    kernelRe[k] = chirpRe[k];
    kernelIm[k] = -chirpIm[k];
    if (k > 0) {
      kernelRe[m - k] = chirpRe[k];
      kernelIm[m - k] = -chirpIm[k];
    }
  }
  radix2(inner, kernelRe, kernelIm);
  return { n, m, inner, chirpRe, chirpIm, kernelRe, kernelIm };
}

/** The forward transform of (re, im) in place, for any length, by Bluestein's convolution. */
function bluestein(plan, re, im) {
  const { n, m, inner, chirpRe, chirpIm, kernelRe, kernelIm } = plan;
  const ar = new Float64Array(m);
  const ai = new Float64Array(m);
  for (let k = 0; k < n; k++) {
    ar[k] = re[k] * chirpRe[k] - im[k] * chirpIm[k];
    ai[k] = re[k] * chirpIm[k] + im[k] * chirpRe[k];
  }
  radix2(inner, ar, ai);
  for (let k = 0; k < m; k++) {
    const r = ar[k] * kernelRe[k] - ai[k] * kernelIm[k];
    ai[k] = ar[k] * kernelIm[k] + ai[k] * kernelRe[k];
    ar[k] = r;
  }
  // inverse transform as the forward one of the conjugate
  for (let k = 0; k < m; k++) ai[k] = -ai[k];
  radix2(inner, ar, ai);
  for (let k = 0; k < n; k++) {
    const r = ar[k] / m;
    const i = -ai[k] / m;
    re[k] = r * chirpRe[k] - i * chirpIm[k];
    im[k] = r * chirpIm[k] + i * chirpRe[k];
  }
}

function plan(n) {
  if (!plans.has(n)) plans.set(n, (n & (n - 1)) === 0 ? { radix2: radix2Plan(n) } : { bluestein: bluesteinPlan(n) });
  return plans.get(n);
}

/**
 * The discrete Fourier transform X_k = sum_j x_j exp(-2 pi i j k / n) of (re, im), in place, as numpy.fft.fft.
 *
 * @param {Float64Array} re real parts (length n >= 1)
 * @param {Float64Array} im imaginary parts (length n)
 */
export function fft(re, im) {
  const n = re.length;
  if (im.length !== n) throw new RangeError(`fft: ${n} real parts but ${im.length} imaginary parts`);
  if (n <= 1) return;
  const p = plan(n);
  if (p.radix2) radix2(p.radix2, re, im);
  else bluestein(p.bluestein, re, im);
}

/**
 * |numpy.fft.fft2(x)|^2 of a real rows x cols array (row-major), as a Float64Array of the same layout.
 */
export function powerSpectrum2d(x, rows, cols) {
  const re = Float64Array.from(x);
  const im = new Float64Array(rows * cols);
  const lineRe = new Float64Array(Math.max(rows, cols));
  const lineIm = new Float64Array(Math.max(rows, cols));
  const rowRe = lineRe.subarray(0, cols);
  const rowIm = lineIm.subarray(0, cols);
  for (let i = 0; i < rows; i++) {
    rowRe.set(re.subarray(i * cols, (i + 1) * cols));
    rowIm.fill(0);
    fft(rowRe, rowIm);
    re.set(rowRe, i * cols);
    im.set(rowIm, i * cols);
  }
  const colRe = lineRe.subarray(0, rows);
  const colIm = lineIm.subarray(0, rows);
  const power = new Float64Array(rows * cols);
  for (let j = 0; j < cols; j++) {
    for (let i = 0; i < rows; i++) {
      colRe[i] = re[i * cols + j];
      colIm[i] = im[i * cols + j];
    }
    fft(colRe, colIm);
    for (let i = 0; i < rows; i++) power[i * cols + j] = colRe[i] * colRe[i] + colIm[i] * colIm[i];
  }
  return power;
}

/** numpy.fft.fftfreq(n, d): [0, 1, ..., ceil(n/2) - 1, -floor(n/2), ..., -1] / (n d), as numpy computes it. */
export function fftfreq(n, d) {
  const val = 1.0 / (n * d);
  const half = Math.floor((n - 1) / 2) + 1;
  return Float64Array.from({ length: n }, (_, k) => (k < half ? k : k - n) * val);
}
