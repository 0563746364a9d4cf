// FITS in and out for the Enhance page: the first 2-D image of a file, and a single-HDU writer.
//
// Reads BITPIX 8/16/32/64/-32/-64, big-endian, with BSCALE/BZERO and BLANK (BLANK pixels become NaN),
// as astropy does (`enhance.io.read_fits`). Degenerate axes (length 1) are squeezed away; anything
// that is still not 2-D, tables, compressed images and files that are not FITS raise a FitsError
// whose message says what was found and what to do.

export const BLOCK = 2880;
const CARD = 80;

/** An error whose message is meant for the user (shown in the page). */
export class FitsError extends Error {
  constructor(message) {
    super(message);
    this.name = "FitsError";
  }
}

/** Parse the value field of a card (columns 11-80): string, logical, integer, float, or null. */
export function parseValue(text) {
  const s = text.trimStart();
  if (s.startsWith("'")) {
    let out = "";
    let i = 1;
    while (i < s.length) {
      if (s[i] === "'") {
        if (s[i + 1] === "'") {
          out += "'";
          i += 2;
          continue;
        }
        break;
      }
      out += s[i];
      i += 1;
    }
    return { value: out.replace(/\s+$/, ""), rest: s.slice(i + 1), isString: true };
  }
  const slash = s.indexOf("/");
  const field = (slash >= 0 ? s.slice(0, slash) : s).trim();
  const rest = slash >= 0 ? s.slice(slash) : "";
  if (field === "T" || field === "F") return { value: field === "T", rest };
  if (field === "") return { value: null, rest };
  if (/^[+-]?\d+$/.test(field)) return { value: Number(field), rest, isInteger: true };
  const number = Number(field.replace(/[dD]/, "E"));
  if (Number.isFinite(number)) return { value: number, rest };
  return { value: field, rest };
}

/**
 * An ordered FITS header: `cards` is a list of {key, value, comment, raw, integer}; `raw` keeps the
 * original 80-character lines (with CONTINUE cards) of cards that were read and never changed.
 */
export class Header {
  constructor(cards = []) {
    this.cards = cards;
  }

  has(key) {
    return this.cards.some((c) => c.key === key);
  }

  get(key, fallback = undefined) {
    const card = this.cards.find((c) => c.key === key);
    return card === undefined || card.value === null ? fallback : card.value;
  }

  /** Set a value (a new card at the end, or the existing card in place). Pass integer: true for ints. */
  set(key, value, { integer = false, comment } = {}) {
    const card = this.cards.find((c) => c.key === key);
    if (card) {
      card.value = value;
      card.integer = integer;
      card.raw = null;
      if (comment !== undefined) card.comment = comment;
    } else {
      this.cards.push({ key, value, integer, comment: comment ?? "", raw: null });
    }
  }

  delete(key) {
    this.cards = this.cards.filter((c) => c.key !== key);
  }

  /** Values of every card with this key (HISTORY, COMMENT). */
  all(key) {
    return this.cards.filter((c) => c.key === key).map((c) => c.value);
  }

  add(key, text) {
    this.cards.push({ key, value: text, comment: "", raw: null, commentary: true });
  }

  copy() {
    return new Header(this.cards.map((c) => ({ ...c })));
  }
}

const COMMENTARY = new Set(["COMMENT", "HISTORY", ""]);

/** Parse the header that starts at byte `offset`; returns {header, end} (end: first byte after it). */
export function parseHeader(bytes, offset) {
  const cards = [];
  let pos = offset;
  for (;;) {
    if (pos + CARD > bytes.length) throw new FitsError("the file ends inside a FITS header (truncated?)");
    const line = ascii(bytes, pos, CARD);
    pos += CARD;
    const key = line.slice(0, 8).trim();
    if (key === "END") break;
    if (key === "CONTINUE" && cards.length && cards[cards.length - 1].continued) {
      const last = cards[cards.length - 1];
      const { value, rest } = parseValue(line.slice(8));
      last.value = last.value.slice(0, -1) + value;
      last.continued = typeof value === "string" && value.endsWith("&");
      last.raw.push(line);
      if (rest.trim().startsWith("/")) last.comment = rest.trim().slice(1).trim();
      continue;
    }
    if (COMMENTARY.has(key) || line.slice(8, 10) !== "= ") {
      if (key === "" && line.trim() === "") continue;
      cards.push({ key, value: line.slice(8).replace(/\s+$/, ""), comment: "", raw: [line], commentary: true });
      continue;
    }
    const { value, rest, isInteger } = parseValue(line.slice(10));
    const comment = rest.trim().startsWith("/") ? rest.trim().slice(1).trim() : "";
    const continued = typeof value === "string" && value.endsWith("&");
    cards.push({ key, value, comment, integer: Boolean(isInteger), raw: [line], continued });
  }
  for (const card of cards) delete card.continued;
  return { header: new Header(cards), end: Math.ceil((pos - offset) / BLOCK) * BLOCK + offset };
}

function ascii(bytes, start, length) {
  let s = "";
  for (let i = start; i < start + length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** Bytes of the data unit that follows a header (without the padding to 2880). */
function dataBytes(header) {
  const naxis = header.get("NAXIS", 0);
  if (naxis === 0) return 0;
  let n = 1;
  for (let i = 1; i <= naxis; i++) n *= header.get(`NAXIS${i}`, 0);
  const gcount = header.get("GCOUNT", 1);
  const pcount = header.get("PCOUNT", 0);
  return (Math.abs(header.get("BITPIX", 8)) / 8) * gcount * (pcount + n);
}

const DECOMPRESS_HINT =
  "decompress it first, e.g. with `funpack file.fits` (cfitsio) or in Python: " +
  "`from astropy.io import fits; h = fits.open('in.fits'); fits.PrimaryHDU(h[1].data, h[1].header).writeto('out.fits')`";

/**
 * Read the first image of a FITS file.
 *
 * @param {ArrayBuffer|Uint8Array} buffer the whole file
 * @returns {{header: Header, data: Float64Array, width: number, height: number, float32: boolean, bitpix: number, hdu: number}}
 *   `data` is row-major from the first row of the file (FITS row 1 at index 0); `float32` tells whether
 *   Python would hold it as float32 (float32 files, scaled 8/16-bit integers) rather than float64.
 */
export function readFits(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    throw new FitsError("this file is gzip-compressed; decompress it first (e.g. `gunzip file.fits.gz`)");
  }
  if (bytes.length < CARD || ascii(bytes, 0, 9) !== "SIMPLE  =") {
    throw new FitsError("this is not a FITS file (it does not start with a SIMPLE card); choose an HMI .fits file");
  }
  const seen = [];
  let offset = 0;
  let index = 0;
  while (offset < bytes.length) {
    if (index > 0 && ascii(bytes, offset, 8).trim() === "") break; // trailing padding
    const { header, end } = parseHeader(bytes, offset);
    const size = dataBytes(header);
    const xtension = String(header.get("XTENSION", index === 0 ? "PRIMARY" : "")).trim().toUpperCase();
    const naxis = header.get("NAXIS", 0);
    if (header.get("ZIMAGE", false) === true) {
      const ztype = String(header.get("ZCMPTYPE", "tile-compressed")).trim();
      throw new FitsError(`this FITS image is ${ztype} compressed (HDU ${index}); the page reads uncompressed ` +
        `images only: ${DECOMPRESS_HINT}`);
    }
    if ((xtension === "PRIMARY" || xtension === "IMAGE") && naxis > 0 && size > 0) {
      if (end + size > bytes.length) {
        throw new FitsError(`the file is truncated: HDU ${index} needs ${end + size} bytes, the file has ${bytes.length}`);
      }
      return decodeImage(bytes, end, header, index);
    }
    seen.push(xtension === "PRIMARY" ? "empty primary HDU" : xtension === "" ? "unknown HDU" : `${xtension} table`);
    offset = end + Math.ceil(size / BLOCK) * BLOCK;
    index += 1;
  }
  if (seen.some((s) => s.includes("TABLE"))) {
    throw new FitsError(`this FITS file holds a table, not an image (HDUs: ${seen.join(", ")}); ` +
      "choose an HMI continuum image or magnetogram");
  }
  throw new FitsError(`this FITS file holds no image data (HDUs: ${seen.join(", ") || "none"})`);
}

function decodeImage(bytes, start, header, index) {
  const bitpix = header.get("BITPIX");
  const naxis = header.get("NAXIS");
  const dims = [];
  for (let i = 1; i <= naxis; i++) dims.push(header.get(`NAXIS${i}`));
  const numpyShape = `(${dims.slice().reverse().join(", ")})`;
  const kept = naxis > 2 ? dims.filter((n) => n !== 1) : dims; // numpy.squeeze of >2-D data, as read_fits
  if (kept.length !== 2) {
    const what = kept.length > 2 ? "a data cube" : "not an image";
    throw new FitsError(`the image must be 2-D (ny, nx), got shape ${numpyShape}: this is ${what}; ` +
      "choose a single 2-D HMI image");
  }
  const [width, height] = kept;
  const n = width * height;
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, n * (Math.abs(bitpix) / 8));
  const bscale = header.get("BSCALE", 1);
  const bzero = header.get("BZERO", 0);
  const isInt = bitpix > 0;
  const blank = isInt ? header.get("BLANK", null) : null;
  const scaled = bscale !== 1 || bzero !== 0;
  const read = {
    8: (i) => view.getUint8(i),
    16: (i) => view.getInt16(2 * i),
    32: (i) => view.getInt32(4 * i),
    64: (i) => Number(view.getBigInt64(8 * i)),
    "-32": (i) => view.getFloat32(4 * i),
    "-64": (i) => view.getFloat64(8 * i),
  }[bitpix];
  if (!read) throw new FitsError(`unsupported BITPIX ${bitpix}`);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const raw = read(i);
    data[i] = blank !== null && raw === blank ? NaN : scaled ? bzero + bscale * raw : raw;
  }
  // astropy gives float32 for float32 data and for scaled (or BLANK-holding) 8- and 16-bit integers, but
  // unsigned 16-bit (BZERO 32768) and signed 8-bit (BZERO -128) integers stay integers (float64 in Python).
  const unsigned = bscale === 1 && ((bitpix === 16 && bzero === 32768) || (bitpix === 8 && bzero === -128));
  const float32 = bitpix === -32 || (isInt && bitpix <= 16 && !unsigned && (scaled || blank !== null));
  if (float32) for (let i = 0; i < n; i++) data[i] = Math.fround(data[i]);
  return { header, data, width, height, float32, bitpix, hdu: index };
}

// ---------------------------------------------------------------------------------------------------
// Writing

function formatNumber(value, integer) {
  if (integer && Number.isInteger(value)) return String(value);
  if (!Number.isFinite(value)) throw new FitsError(`cannot write the non-finite number ${value} in a header`);
  let s = String(value).toUpperCase(); // shortest round-trip form, exponent as E
  if (s.length > 20) s = value.toExponential(13).toUpperCase();
  if (!/[.E]/.test(s)) s += ".0";
  else if (s.includes("E") && !s.split("E")[0].includes(".")) s = s.replace("E", ".0E");
  return s;
}

function pad(s, n) {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

/** The 80-character lines of one card. */
export function formatCard(card) {
  if (card.raw) return card.raw;
  const key = card.key;
  if (card.commentary) {
    const text = String(card.value ?? "");
    const lines = [];
    for (let i = 0; i === 0 || i < text.length; i += 72) lines.push(pad(`${pad(key, 8)}${text.slice(i, i + 72)}`, CARD));
    return lines;
  }
  const comment = card.comment ? ` / ${card.comment}` : "";
  const value = card.value;
  if (typeof value === "string") {
    const escaped = value.replace(/'/g, "''");
    if (escaped.length <= 68) {
      const field = `'${pad(escaped, 8)}'`;
      return [pad(`${pad(key, 8)}= ${pad(field, 20)}${comment}`, CARD).slice(0, CARD)];
    }
    // Long strings: the CONTINUE convention, 67 characters and '&' per card (no quote split across cards).
    const chunks = [];
    let rest = escaped;
    while (rest.length > 68) {
      let cut = 67;
      if (rest[cut - 1] === "'" && rest[cut - 2] !== "'") cut -= 1;
      chunks.push(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
    chunks.push(rest);
    return chunks.map((chunk, i) => {
      const amp = i < chunks.length - 1 ? "&" : "";
      const head = i === 0 ? `${pad(key, 8)}= ` : "CONTINUE  ";
      return pad(`${head}'${chunk}${amp}'`, CARD).slice(0, CARD);
    });
  }
  let field;
  if (typeof value === "boolean") field = value ? "T" : "F";
  else if (typeof value === "number") field = formatNumber(value, card.integer);
  else field = "";
  return [pad(`${pad(key, 8)}= ${field.padStart(20)}${comment}`, CARD).slice(0, CARD)];
}

const STRUCTURAL = new Set(["SIMPLE", "BITPIX", "NAXIS", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT", "EXTNAME", "END"]);

/**
 * A single-HDU FITS file holding a 2-D image, as `enhance.io.write_fits` writes it: structural cards
 * first, the other cards of `header` in their order, then its HISTORY and COMMENT cards.
 *
 * @param {Header} header
 * @param {Float32Array|Float64Array|ArrayLike<number>} data row-major, `height` rows of `width`
 * @param {{width: number, height: number, bitpix?: -32|-64}} shape
 * @returns {Uint8Array}
 */
export function writeFits(header, data, { width, height, bitpix = -32 }) {
  if (data.length !== width * height) {
    throw new FitsError(`data has ${data.length} values, expected ${width} x ${height} = ${width * height}`);
  }
  const cards = [
    { key: "SIMPLE", value: true, comment: "conforms to FITS standard" },
    { key: "BITPIX", value: bitpix, integer: true, comment: "array data type" },
    { key: "NAXIS", value: 2, integer: true, comment: "number of array dimensions" },
    { key: "NAXIS1", value: width, integer: true },
    { key: "NAXIS2", value: height, integer: true },
  ];
  const rest = header.cards.filter((c) => !STRUCTURAL.has(c.key) && !/^NAXIS\d+$/.test(c.key));
  cards.push(...rest.filter((c) => !COMMENTARY.has(c.key)));
  cards.push(...rest.filter((c) => c.key === "HISTORY"));
  cards.push(...rest.filter((c) => c.key === "COMMENT"));
  const lines = cards.flatMap((c) => formatCard(c));
  lines.push(pad("END", CARD));
  const headerBytes = Math.ceil((lines.length * CARD) / BLOCK) * BLOCK;
  const itemsize = Math.abs(bitpix) / 8;
  const dataSize = Math.ceil((data.length * itemsize) / BLOCK) * BLOCK;
  const out = new Uint8Array(headerBytes + dataSize);
  out.fill(0x20, 0, headerBytes);
  const text = lines.join("");
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    out[i] = code >= 0x20 && code <= 0x7e ? code : 0x3f; // FITS headers are printable ASCII
  }
  const view = new DataView(out.buffer, headerBytes, data.length * itemsize);
  if (bitpix === -32) for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i]);
  else if (bitpix === -64) for (let i = 0; i < data.length; i++) view.setFloat64(8 * i, data[i]);
  else throw new FitsError(`writeFits writes BITPIX -32 or -64, got ${bitpix}`);
  return out;
}
