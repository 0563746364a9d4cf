// Drawing: an image panel with helioprojective (or pixel) axes and a colour bar in the data's unit.

const NAN_RGB = [40, 52, 90];
const FONT = "12px system-ui, sans-serif";
const MARGIN = { left: 62, right: 86, top: 26, bottom: 44 };

/** Display range: percentiles of the finite values (continuum), or symmetric about 0 (magnetogram). */
export function displayRange(data, kind) {
  const step = Math.max(1, Math.floor(data.length / 200000));
  const values = [];
  for (let i = 0; i < data.length; i += step) if (Number.isFinite(data[i])) values.push(data[i]);
  if (!values.length) return [0, 1];
  values.sort((a, b) => a - b);
  const q = (p) => values[Math.min(values.length - 1, Math.floor(p * values.length))];
  if (kind === "blos") {
    const m = Math.max(Math.abs(q(0.005)), Math.abs(q(0.995)), 1e-9);
    return [-m, m];
  }
  const lo = q(0.002);
  const hi = q(0.998);
  return hi > lo ? [lo, hi] : [lo - 1, lo + 1];
}

/** An offscreen canvas with the image in grey, FITS row 1 at the bottom (origin lower, as sunpy draws). */
export function imageBitmap(data, width, height, range) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(width, height);
  const [lo, hi] = range;
  const k = 255 / (hi - lo);
  for (let y = 0; y < height; y++) {
    const src = y * width;
    const dst = (height - 1 - y) * width * 4;
    for (let x = 0; x < width; x++) {
      const v = data[src + x];
      const o = dst + 4 * x;
      if (Number.isFinite(v)) {
        const g = Math.max(0, Math.min(255, Math.round((v - lo) * k)));
        img.data[o] = img.data[o + 1] = img.data[o + 2] = g;
      } else {
        [img.data[o], img.data[o + 1], img.data[o + 2]] = NAN_RGB;
      }
      img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/** Round tick values covering [a, b] (either order), about `count` of them. */
export function niceTicks(a, b, count = 5) {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((s) => s * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) ticks.push(Math.abs(t) < 1e-12 * step ? 0 : t);
  return ticks;
}

function label(value) {
  const a = Math.abs(value);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return value.toExponential(1);
  return String(Number(value.toPrecision(6)));
}

/** Geometry of a panel's plot box for an image of width x height in a canvas of css size cw x ch. */
function plotBox(cw, ch, width, height) {
  const aw = cw - MARGIN.left - MARGIN.right;
  const ah = ch - MARGIN.top - MARGIN.bottom;
  const s = Math.min(aw / width, ah / height);
  const w = width * s;
  const h = height * s;
  return { x: MARGIN.left + (aw - w) / 2, y: MARGIN.top + (ah - h) / 2, w, h, s };
}

function setup(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const cw = canvas.clientWidth || 460;
  const ch = canvas.clientHeight || 440;
  canvas.width = Math.round(cw * dpr);
  canvas.height = Math.round(ch * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cw, ch);
  ctx.font = FONT;
  return { ctx, cw, ch };
}

/**
 * Draw one panel: `layers` are offscreen image canvases drawn in the plot box (the first one whole,
 * the next ones clipped to [clipFrom, 1] of the width), the axes from `wcs` (see hmi.linearWcs) or
 * pixels, and a colour bar for `range` in `unit`.
 */
export function drawPanel(canvas, { title, bitmap, width, height, wcs, range, unit, overlay = null, split = 0.5 }) {
  const { ctx, cw, ch } = setup(canvas);
  const box = plotBox(cw, ch, width, height);
  ctx.imageSmoothingEnabled = box.s < 1;
  ctx.drawImage(bitmap, box.x, box.y, box.w, box.h);
  if (overlay) {
    // slider view: `overlay` (the other image, on the same sky) to the left of the split
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.x, box.y, box.w * split, box.h);
    ctx.clip();
    ctx.drawImage(overlay, box.x, box.y, box.w, box.h);
    ctx.restore();
    ctx.strokeStyle = "#ffcc33";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(box.x + box.w * split, box.y);
    ctx.lineTo(box.x + box.w * split, box.y + box.h);
    ctx.stroke();
  }
  ctx.strokeStyle = "#555";
  ctx.lineWidth = 1;
  ctx.strokeRect(box.x + 0.5, box.y + 0.5, box.w - 1, box.h - 1);
  ctx.fillStyle = "#222";
  ctx.textAlign = "left";
  ctx.font = "bold 13px system-ui, sans-serif";
  ctx.fillText(title, box.x, box.y - 9);
  ctx.font = FONT;
  drawAxes(ctx, box, width, height, wcs);
  drawColourBar(ctx, box, range, unit);
}

/**
 * What the axes of a width x height panel span, {x: [left, right], y: [bottom, top]}: the world coordinates
 * (hmi.linearWcs) of the image's outer edges (pixel centres are 0 ... width - 1), x along the middle row and
 * y along the middle column; pixel coordinates without a WCS.
 */
export function axisExtent(wcs, width, height) {
  const xAt = (px) => (wcs ? wcs.world(px, (height - 1) / 2)[0] : px);
  const yAt = (py) => (wcs ? wcs.world((width - 1) / 2, py)[1] : py);
  return { x: [xAt(-0.5), xAt(width - 0.5)], y: [yAt(-0.5), yAt(height - 0.5)] };
}

function drawAxes(ctx, box, width, height, wcs) {
  const { x: xs, y: ys } = axisExtent(wcs, width, height);
  ctx.fillStyle = "#333";
  ctx.strokeStyle = "#333";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of niceTicks(xs[0], xs[1])) {
    const f = (t - xs[0]) / (xs[1] - xs[0]);
    if (!(f >= -1e-9 && f <= 1 + 1e-9)) continue;
    const x = box.x + f * box.w;
    ctx.beginPath();
    ctx.moveTo(x, box.y + box.h);
    ctx.lineTo(x, box.y + box.h + 5);
    ctx.stroke();
    ctx.fillText(label(t), x, box.y + box.h + 7);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of niceTicks(ys[0], ys[1])) {
    const f = (t - ys[0]) / (ys[1] - ys[0]);
    if (!(f >= -1e-9 && f <= 1 + 1e-9)) continue;
    const y = box.y + box.h - f * box.h;
    ctx.beginPath();
    ctx.moveTo(box.x, y);
    ctx.lineTo(box.x - 5, y);
    ctx.stroke();
    ctx.fillText(label(t), box.x - 7, y);
  }
  const [xl, yl] = wcs
    ? wcs.helioprojective ? ["Solar X (arcsec)", "Solar Y (arcsec)"] : ["x (arcsec)", "y (arcsec)"]
    : ["x (pixels)", "y (pixels)"];
  ctx.textAlign = "center";
  ctx.textBaseline = "alphabetic";
  ctx.fillText(xl, box.x + box.w / 2, box.y + box.h + 38);
  ctx.save();
  ctx.translate(box.x - 48, box.y + box.h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(yl, 0, 0);
  ctx.restore();
}

function drawColourBar(ctx, box, range, unit) {
  const x = box.x + box.w + 14;
  const w = 14;
  const [lo, hi] = range;
  const grad = ctx.createLinearGradient(0, box.y + box.h, 0, box.y);
  grad.addColorStop(0, "#000");
  grad.addColorStop(1, "#fff");
  ctx.fillStyle = grad;
  ctx.fillRect(x, box.y, w, box.h);
  ctx.strokeStyle = "#555";
  ctx.strokeRect(x + 0.5, box.y + 0.5, w - 1, box.h - 1);
  ctx.fillStyle = "#333";
  ctx.strokeStyle = "#333";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (const t of niceTicks(lo, hi, 6)) {
    const y = box.y + box.h - ((t - lo) / (hi - lo)) * box.h;
    ctx.beginPath();
    ctx.moveTo(x + w, y);
    ctx.lineTo(x + w + 4, y);
    ctx.stroke();
    ctx.fillText(label(t), x + w + 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "alphabetic";
  ctx.fillText(unit, x + w / 2 + 10, box.y - 9);
}
