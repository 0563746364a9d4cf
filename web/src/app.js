// The Enhance page: read a FITS file, run the paper's light network with onnxruntime-web (WebAssembly), show
// input and output, and offer the enhanced FITS for download. Everything is loaded from this origin.

import * as ort from "./ort/ort.wasm.min.mjs";
import { FitsError, readFits, writeFits } from "./fits.js";
import { InputError, PROVENANCE_KEY, enhanceImage, linearWcs, resolveKind, upscaleHeader } from "./hmi.js";
import { displayRange, drawPanel, imageBitmap } from "./view.js";

const $ = (id) => document.getElementById(id);
const MAX_PIXELS = 4096 * 4096;
const sessions = new Map();
let build = { version: "unknown", onnxruntime_web: "unknown" };
let current = null; // {name, image, header, kind, result, outHeader, seconds}
let blinkTimer = null;
let busy = false;

const threads = self.crossOriginIsolated ? Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8)) : 1;
ort.env.wasm.numThreads = threads;
ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;

function setState(state) {
  document.body.dataset.state = state;
}

function showMessage(text, level = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = text ? level : "";
  box.hidden = !text;
}

function status(text) {
  $("status").textContent = text;
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

async function session(kind) {
  if (!sessions.has(kind)) {
    const url = new URL(`./models/enhance_paper-light_${kind}.onnx`, import.meta.url).href;
    sessions.set(kind, ort.InferenceSession.create(url, { executionProviders: ["wasm"], graphOptimizationLevel: "all" }));
  }
  try {
    return await sessions.get(kind);
  } catch (err) {
    sessions.delete(kind);
    throw new Error(`could not load the ${kind} model: ${err.message ?? err}`);
  }
}

async function gunzip(bytes) {
  if (typeof DecompressionStream === "undefined") {
    throw new FitsError("this file is gzip-compressed and this browser cannot decompress it; run `gunzip` on it first");
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function readFile(name, buffer) {
  let bytes = new Uint8Array(buffer);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await gunzip(bytes);
  const image = readFits(bytes);
  if (image.width * image.height > MAX_PIXELS) {
    throw new InputError(`the image is ${image.width} x ${image.height} pixels; the page takes up to 4096 x 4096`);
  }
  return image;
}

function unitOf(header, kind) {
  const bunit = String(header.get("BUNIT", "") ?? "").trim();
  if (bunit) return bunit;
  return kind === "blos" ? "G" : "data units";
}

/** Enhance the file and show it; every failure ends as a message in the page. */
async function process(name, buffer) {
  if (busy) return; // one image at a time: the inputs are disabled meanwhile
  busy = true;
  for (const input of document.querySelectorAll("#file, #kind, #qs-level, button[data-sample]")) input.disabled = true;
  let state = "error";
  try {
    state = await enhanceFile(name, buffer);
  } finally {
    busy = false;
    for (const input of document.querySelectorAll("#file, #kind, #qs-level, button[data-sample]")) input.disabled = false;
    setState(state); // after the inputs are enabled again: the page is ready for the next file
  }
}

async function enhanceFile(name, buffer) {
  setState("running");
  showMessage("");
  $("download").disabled = true;
  $("results").hidden = true;
  current = null;
  status(`reading ${name} ...`);
  try {
    const image = await readFile(name, buffer);
    const { header } = image;
    const requested = $("kind").value;
    const { kind } = resolveKind(requested, header);
    const qsText = $("qs-level").value.trim();
    const qsLevel = kind === "intensity" && qsText !== "" ? Number(qsText) : null;
    status(`${name}: ${image.width} x ${image.height} ${kind === "blos" ? "magnetogram" : "continuum"}; ` +
      "loading the paper's light model ...");
    await nextFrame();
    const model = await session(kind);
    status(`${name}: running the paper's light ${kind} model on ${threads} thread${threads > 1 ? "s" : ""} ...`);
    await nextFrame();
    const start = performance.now();
    let network = 0;
    const run = async (input, h, w) => {
      const t0 = performance.now();
      const feeds = { [model.inputNames[0]]: new ort.Tensor("float32", input, [1, 1, h, w]) };
      const outputs = await model.run(feeds);
      network += performance.now() - t0;
      return outputs[model.outputNames[0]].data;
    };
    const result = await enhanceImage(image, {
      kind, qsLevel, run,
      onProgress: (done, total) => total > 1 && status(`${name}: tile ${done} of ${total} ...`),
    });
    const seconds = (performance.now() - start) / 1000;
    const history = `solar-enhance ${build.version}: Enhance x2 deconvolution + super-resolution, model: paper-light ` +
      `${kind} (in the browser, onnxruntime-web ${build.onnxruntime_web})`;
    const provenance = { [PROVENANCE_KEY]: build.version, ENH_MODL: "paper-light", ENH_KIND: kind };
    const outHeader = upscaleHeader(header, 2, history, provenance);
    current = { name, image, header, kind, result, outHeader, seconds };
    $("timing").textContent = `${seconds.toFixed(2)} s per image (network ${(network / 1000).toFixed(2)} s), ` +
      `${image.width} x ${image.height} -> ${result.width} x ${result.height} px, WebAssembly, ${threads} ` +
      `thread${threads > 1 ? "s" : ""}${self.crossOriginIsolated ? "" : " (page not cross-origin isolated)"}`;
    $("timing").dataset.seconds = String(seconds);
    const scaleNote = kind === "blos" ? "gauss to kG for the network and back" : typeof result.scale === "number" ?
      `quiet-Sun level ${result.scale.toPrecision(6)} ${unitOf(header, kind)}` :
      `quiet-Sun surface (varies by ${(100 * result.scale.spread).toFixed(0)} % across the field)`;
    status(`${name}: ${kind === "blos" ? "magnetogram" : "continuum"} (${requested === "auto" ? "kind from the header" :
      "kind chosen by hand"}), ${scaleNote}.`);
    show();
    $("download").disabled = false;
    return "done";
  } catch (err) {
    const known = err instanceof FitsError || err instanceof InputError;
    showMessage(`${name}: ${known ? "" : "unexpected error: "}${err.message ?? err}`);
    status("");
    if (!known) console.error(err);
    return "error";
  }
}

function show() {
  const { image, header, kind, result, outHeader } = current;
  $("results").hidden = false;
  const range = displayRange(image.data, kind);
  const unit = unitOf(header, kind);
  const inBitmap = imageBitmap(image.data, image.width, image.height, range);
  const outBitmap = imageBitmap(result.data, result.width, result.height, range);
  const inWcs = linearWcs(header);
  const outWcs = linearWcs(outHeader);
  drawPanel($("input-view"), { title: `HMI input (${image.width} x ${image.height})`, bitmap: inBitmap,
    width: image.width, height: image.height, wcs: inWcs, range, unit });
  drawPanel($("output-view"), { title: `Enhanced x2 (${result.width} x ${result.height})`, bitmap: outBitmap,
    width: result.width, height: result.height, wcs: outWcs, range, unit });
  current.views = { inBitmap, outBitmap, range, unit, outWcs };
  drawCompare();
  $("wcs-note").textContent = inWcs ? "" : "The header has no WCS: axes in pixels.";
}

function drawCompare() {
  if (!current?.views) return;
  const { inBitmap, outBitmap, range, unit, outWcs } = current.views;
  const { result } = current;
  const mode = document.querySelector("input[name=mode]:checked").value;
  clearInterval(blinkTimer);
  blinkTimer = null;
  const canvas = $("compare-view");
  if (mode === "slider") {
    const split = Number($("split").value) / 100;
    drawPanel(canvas, { title: "Slider: input (left) | enhanced (right)", bitmap: outBitmap, overlay: inBitmap, split,
      width: result.width, height: result.height, wcs: outWcs, range, unit });
  } else {
    let showInput = false;
    const frame = () => {
      drawPanel(canvas, { title: showInput ? "Blink: HMI input" : "Blink: enhanced x2",
        bitmap: showInput ? inBitmap : outBitmap, width: result.width, height: result.height, wcs: outWcs, range, unit });
      showInput = !showInput;
    };
    frame();
    blinkTimer = setInterval(frame, 700);
  }
  $("split").disabled = mode !== "slider";
}

function download() {
  if (!current) return;
  const { name, result, outHeader, image } = current;
  const bytes = writeFits(outHeader, result.data, { width: result.width, height: result.height,
    bitpix: image.float32 ? -32 : -64 });
  const stem = name.replace(/\.(fits\.gz|fits\.fz|fits|fit|fts)$/i, "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: "application/fits" }));
  link.download = `${stem}_enhanced_paper-light.fits`;
  document.body.append(link);
  link.click();
  setTimeout(() => {
    URL.revokeObjectURL(link.href);
    link.remove();
  }, 1000);
}

async function openFile(file) {
  if (file) await process(file.name, await file.arrayBuffer());
}

async function init() {
  try {
    const response = await fetch("build.json");
    if (response.ok) build = await response.json();
  } catch {
    // the page still works; the HISTORY card then says "unknown" for the versions
  }
  $("threads").textContent = `${threads} WebAssembly thread${threads > 1 ? "s" : ""}` +
    (self.crossOriginIsolated ? "" : " (serve with COOP/COEP headers, e.g. `enhance web`, for more)");
  $("file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = ""; // the same file can be chosen again
    await openFile(file);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    openFile(e.dataTransfer.files[0]);
  });
  for (const button of document.querySelectorAll("button[data-sample]")) {
    button.addEventListener("click", async () => {
      const response = await fetch(`samples/${button.dataset.sample}`);
      if (!response.ok) {
        showMessage(`sample ${button.dataset.sample} not found (HTTP ${response.status})`);
        return;
      }
      await process(button.dataset.sample, await response.arrayBuffer());
    });
  }
  $("download").addEventListener("click", download);
  for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", drawCompare);
  $("split").addEventListener("input", drawCompare);
  window.addEventListener("resize", () => current && show());
  setState("idle");
}

init();
