// The Enhance page: read a FITS file, run the default light model (Wiener-Enhance, told the noise level measured
// here as Python measures it) or the paper's light network with onnxruntime-web (WebAssembly), show input and
// output, and offer the enhanced FITS for download. Everything is loaded from this origin.

import * as ort from "./ort/ort.wasm.min.mjs";
import { FitsError, readFits, writeFits } from "./fits.js";
import {
  InputError, PROVENANCE_KEY, assumptionCards, enhanceImage, linearWcs, padSymmetric, registryCards, resolveKind,
  upscaleHeader,
} from "./hmi.js";
import { displayRange, drawPanel, imageBitmap } from "./view.js";

const $ = (id) => document.getElementById(id);
const MAX_PIXELS = 4096 * 4096;
const sessions = new Map();
const MODEL_NAMES = { light: "the light model (Wiener-Enhance)", "paper-light": "the paper's light network" };
const INPUTS = "#file, #kind, #model, #qs-level, #noise, button[data-sample]";
let build = { version: "unknown", onnxruntime_web: "unknown", card_comments: {} };
let models = null; // models/index.json: {file: {model, kind, margin, noise_unit, noise_nodes, symmetric}}
let current = null; // {name, image, header, kind, model, result, outHeader, seconds}
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

/** The model's entry of models/index.json (what `make web` read from the ONNX file's metadata). */
async function modelEntry(model, kind) {
  if (models === null) {
    const response = await fetch("models/index.json");
    if (!response.ok) throw new Error(`models/index.json not found (HTTP ${response.status}); rebuild with make web`);
    models = await response.json();
  }
  const found = Object.entries(models).find(([, entry]) => entry.model === model && entry.kind === kind);
  if (!found) throw new Error(`the page was built without the ${model} ${kind} model`);
  return { file: found[0], ...found[1] };
}

async function session(file) {
  if (!sessions.has(file)) {
    const url = new URL(`./models/${file}`, import.meta.url).href;
    sessions.set(file, ort.InferenceSession.create(url, { executionProviders: ["wasm"], graphOptimizationLevel: "all" }));
  }
  try {
    return await sessions.get(file);
  } catch (err) {
    sessions.delete(file);
    throw new Error(`could not load ${file}: ${err.message ?? err}`);
  }
}

/**
 * The network call for enhanceImage: the paper's graphs take the tile; a Wiener-Enhance graph takes it
 * mirrored by its margin (`image`) and the noise level (`noise`), as enhance.runtime.wiener_onnx runs it.
 */
function networkCall(model, entry, timer) {
  return async (input, h, w, noise) => {
    const t0 = performance.now();
    let feeds;
    if (entry.noise_unit) {
      const m = entry.margin;
      feeds = { image: new ort.Tensor("float32", padSymmetric(input, h, w, m), [1, 1, h + 2 * m, w + 2 * m]),
        noise: new ort.Tensor("float32", Float32Array.of(noise), [1]) };
    } else {
      feeds = { [model.inputNames[0]]: new ort.Tensor("float32", input, [1, 1, h, w]) };
    }
    const outputs = await model.run(feeds);
    timer.network += performance.now() - t0;
    return outputs[model.outputNames[0]].data;
  };
}

/** A number typed in a field, or null when it is empty. */
function numberField(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
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
  for (const input of document.querySelectorAll(INPUTS)) input.disabled = true;
  let state = "error";
  try {
    state = await enhanceFile(name, buffer);
  } finally {
    busy = false;
    for (const input of document.querySelectorAll(INPUTS)) input.disabled = false;
    syncNoiseField();
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
    const qsLevel = kind === "intensity" ? numberField("qs-level") : null;
    const modelName = $("model").value;
    status(`${name}: ${image.width} x ${image.height} ${kind === "blos" ? "magnetogram" : "continuum"}; ` +
      `loading ${MODEL_NAMES[modelName]} ...`);
    await nextFrame();
    const entry = await modelEntry(modelName, kind);
    const model = await session(entry.file);
    const noiseModel = entry.noise_unit ? { unit: entry.noise_unit, nodes: entry.noise_nodes } : null;
    status(`${name}: running ${MODEL_NAMES[modelName]} (${kind}) on ${threads} thread${threads > 1 ? "s" : ""} ...`);
    await nextFrame();
    const start = performance.now();
    const timer = { network: 0 };
    const result = await enhanceImage(image, {
      kind, qsLevel, run: networkCall(model, entry, timer), noiseModel, noise: noiseModel ? numberField("noise") : null,
      margin: entry.margin, onProgress: (done, total) => total > 1 && status(`${name}: tile ${done} of ${total} ...`),
    });
    const seconds = (performance.now() - start) / 1000;
    const history = `solar-enhance ${build.version}: Enhance x2 deconvolution + super-resolution, model: ${modelName} ` +
      `${kind} (in the browser, onnxruntime-web ${build.onnxruntime_web})`;
    // the cards of `enhance run`: provenance, what was assumed (noise level, quiet-Sun level), the weights
    const provenance = { [PROVENANCE_KEY]: build.version, ENH_MODL: modelName, ENH_KIND: kind,
      ...assumptionCards(kind, { noise: result.noise, scale: result.scale, qsGiven: qsLevel !== null }),
      ...registryCards(entry) };
    const outHeader = upscaleHeader(header, 2, history, provenance, build.card_comments ?? {});
    current = { name, image, header, kind, model: modelName, result, outHeader, seconds };
    $("timing").textContent = `${seconds.toFixed(2)} s per image (network ${(timer.network / 1000).toFixed(2)} s), ` +
      `${image.width} x ${image.height} -> ${result.width} x ${result.height} px, WebAssembly, ${threads} ` +
      `thread${threads > 1 ? "s" : ""}${self.crossOriginIsolated ? "" : " (page not cross-origin isolated)"}`;
    $("timing").dataset.seconds = String(seconds);
    const scaleNote = kind === "blos" ? "gauss to kG for the network and back" : typeof result.scale === "number" ?
      `quiet-Sun level ${result.scale.toPrecision(6)} ${unitOf(header, kind)}` :
      `quiet-Sun surface (varies by ${(100 * result.scale.spread).toFixed(0)} % across the field)`;
    const noiseNote = result.noise ? `; noise ${result.noise.sigma.toPrecision(4)} ${kind === "blos" ? "kG" :
      "of the quiet-Sun level"} (${result.noise.note})` : "";
    status(`${name}: ${kind === "blos" ? "magnetogram" : "continuum"} (${requested === "auto" ? "kind from the header" :
      "kind chosen by hand"}), ${scaleNote}${noiseNote}; model ${modelName}.`);
    if (result.noise) $("status").dataset.noise = String(result.noise.sigma);
    else delete $("status").dataset.noise;
    if (result.warnings.length) showMessage(`${name}: ${result.warnings.join("; ")}`, "warning");
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
  const { name, result, outHeader, image, model } = current;
  const bytes = writeFits(outHeader, result.data, { width: result.width, height: result.height,
    bitpix: image.float32 ? -32 : -64 });
  const stem = name.replace(/\.(fits\.gz|fits\.fz|fits|fit|fts)$/i, "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: "application/fits" }));
  link.download = `${stem}_enhanced_${model}.fits`;
  document.body.append(link);
  link.click();
  setTimeout(() => {
    URL.revokeObjectURL(link.href);
    link.remove();
  }, 1000);
}

/** The noise level is for the models told the noise level: the field is off for the paper's network. */
function syncNoiseField() {
  $("noise").disabled = busy || $("model").value !== "light";
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
  $("model").addEventListener("change", syncNoiseField);
  syncNoiseField();
  for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", drawCompare);
  $("split").addEventListener("input", drawCompare);
  window.addEventListener("resize", () => current && show());
  setState("idle");
}

init();
