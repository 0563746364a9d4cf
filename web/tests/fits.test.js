// Unit tests of the page's FITS reader and writer: `node --test web/tests/` (make web-test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { FitsError, Header, formatCard, parseHeader, readFits, writeFits } from "../src/fits.js";

const card = (text) => text.padEnd(80, " ");

/** A FITS file from header lines and a function that writes the data (big-endian) into a DataView. */
function fitsBytes(lines, dataBytes = 0, fill = () => {}) {
  const all = [...lines.map(card), card("END")];
  const headerSize = Math.ceil((all.length * 80) / 2880) * 2880;
  const out = new Uint8Array(headerSize + Math.ceil(dataBytes / 2880) * 2880);
  out.fill(32, 0, headerSize);
  const text = all.join("");
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  fill(new DataView(out.buffer, headerSize, dataBytes));
  return out;
}

const image = (bitpix, nx, ny, extra = []) => [
  "SIMPLE  =                    T",
  `BITPIX  = ${String(bitpix).padStart(20)}`,
  "NAXIS   =                    2",
  `NAXIS1  = ${String(nx).padStart(20)}`,
  `NAXIS2  = ${String(ny).padStart(20)}`,
  ...extra,
];

test("float32 image: values, shape, row order and header values", () => {
  const values = [1.5, -2.25, 3, NaN, 5, 6];
  const bytes = fitsBytes(image(-32, 3, 2, ["BUNIT   = 'I/Ic    '           / unit", "CDELT1  =                0.504",
    "FLAG    =                    F", "NOTE    = 'it''s quoted'"]), 24, (v) => values.forEach((x, i) => v.setFloat32(4 * i, x)));
  const fits = readFits(bytes.buffer);
  assert.equal(fits.width, 3);
  assert.equal(fits.height, 2);
  assert.equal(fits.float32, true);
  assert.deepEqual(Array.from(fits.data), values);
  assert.equal(fits.header.get("BUNIT"), "I/Ic");
  assert.equal(fits.header.get("CDELT1"), 0.504);
  assert.equal(fits.header.get("FLAG"), false);
  assert.equal(fits.header.get("NOTE"), "it's quoted");
  assert.equal(fits.header.cards.find((c) => c.key === "BUNIT").comment, "unit");
});

test("scaled integers: BSCALE, BZERO and BLANK (BLANK becomes NaN) for 16 and 32 bits", () => {
  const raw = [0, 7, -32768, 100];
  const bytes16 = fitsBytes(image(16, 2, 2, ["BSCALE  =                  0.5", "BZERO   =                 10.0",
    "BLANK   =               -32768"]), 8, (v) => raw.forEach((x, i) => v.setInt16(2 * i, x)));
  const f16 = readFits(bytes16);
  assert.deepEqual(Array.from(f16.data), [10, 13.5, NaN, 60]);
  assert.equal(f16.float32, true); // astropy: scaled 16-bit integers are float32
  const raw32 = [2147483647, -5, -2147483648, 12];
  const bytes32 = fitsBytes(image(32, 4, 1, ["BSCALE  =                 0.25", "BZERO   =                   -1",
    "BLANK   =          -2147483648"]), 16, (v) => raw32.forEach((x, i) => v.setInt32(4 * i, x)));
  const f32 = readFits(bytes32);
  assert.deepEqual(Array.from(f32.data), [2147483647 * 0.25 - 1, -2.25, NaN, 2]);
  assert.equal(f32.float32, false);
  const u16 = fitsBytes(image(16, 2, 1, ["BZERO   =                32768", "BSCALE  =                    1"]), 4,
    (v) => [-32768, 32767].forEach((x, i) => v.setInt16(2 * i, x)));
  const unsigned = readFits(u16);
  assert.deepEqual(Array.from(unsigned.data), [0, 65535]);
  assert.equal(unsigned.float32, false); // astropy reads uint16, which Python enhances in float64
  const bytes8 = fitsBytes(image(8, 2, 1), 2, (v) => [200, 3].forEach((x, i) => v.setUint8(i, x)));
  assert.deepEqual(Array.from(readFits(bytes8).data), [200, 3]); // unsigned bytes
});

test("float64 data and a degenerate third axis are read; the image is squeezed to 2-D", () => {
  const lines = ["SIMPLE  =                    T", "BITPIX  =                  -64", "NAXIS   =                    3",
    "NAXIS1  =                    2", "NAXIS2  =                    2", "NAXIS3  =                    1"];
  const bytes = fitsBytes(lines, 32, (v) => [1, 2, 3, 4.125].forEach((x, i) => v.setFloat64(8 * i, x)));
  const fits = readFits(bytes);
  assert.equal(fits.width, 2);
  assert.equal(fits.height, 2);
  assert.deepEqual(Array.from(fits.data), [1, 2, 3, 4.125]);
});

test("the image of the first IMAGE extension after an empty primary HDU", () => {
  const primary = fitsBytes(["SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    0",
    "EXTEND  =                    T"]);
  const ext = fitsBytes(["XTENSION= 'IMAGE   '", "BITPIX  =                  -32", "NAXIS   =                    2",
    "NAXIS1  =                    2", "NAXIS2  =                    1", "PCOUNT  =                    0",
    "GCOUNT  =                    1", "BUNIT   = 'G       '"], 8, (v) => [-100, 250].forEach((x, i) => v.setFloat32(4 * i, x)));
  const both = new Uint8Array(primary.length + ext.length);
  both.set(primary);
  both.set(ext, primary.length);
  const fits = readFits(both);
  assert.equal(fits.hdu, 1);
  assert.deepEqual(Array.from(fits.data), [-100, 250]);
  assert.equal(fits.header.get("BUNIT"), "G");
});

test("clear errors: not FITS, gzip, a cube, a table, a compressed image, truncated data", () => {
  const expectError = (bytes, pattern) => assert.throws(() => readFits(bytes), (err) => err instanceof FitsError &&
    pattern.test(err.message));
  expectError(new TextEncoder().encode("hello, this is text ".repeat(10)), /not a FITS file/);
  expectError(new Uint8Array([0x1f, 0x8b, 8, 0]), /gzip/);
  const cube = ["SIMPLE  =                    T", "BITPIX  =                  -32", "NAXIS   =                    3",
    "NAXIS1  =                    4", "NAXIS2  =                    3", "NAXIS3  =                    2"];
  expectError(fitsBytes(cube, 96), /must be 2-D \(ny, nx\), got shape \(2, 3, 4\): this is a data cube/);
  const primary = fitsBytes(["SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    0"]);
  const table = fitsBytes(["XTENSION= 'BINTABLE'", "BITPIX  =                    8", "NAXIS   =                    2",
    "NAXIS1  =                    4", "NAXIS2  =                    3", "PCOUNT  =                    0",
    "GCOUNT  =                    1", "TFIELDS =                    1", "TFORM1  = 'E       '"], 12);
  const withTable = new Uint8Array(primary.length + table.length);
  withTable.set(primary);
  withTable.set(table, primary.length);
  expectError(withTable, /holds a table, not an image/);
  const rice = fitsBytes(["XTENSION= 'BINTABLE'", "BITPIX  =                    8", "NAXIS   =                    2",
    "NAXIS1  =                    8", "NAXIS2  =                    1", "PCOUNT  =                    0",
    "GCOUNT  =                    1", "ZIMAGE  =                    T", "ZCMPTYPE= 'RICE_1  '"], 8);
  const withRice = new Uint8Array(primary.length + rice.length);
  withRice.set(primary);
  withRice.set(rice, primary.length);
  expectError(withRice, /RICE_1 compressed .*funpack/);
  expectError(fitsBytes(image(-32, 100, 100)).slice(0, 2880 + 100), /truncated/);
});

test("write then read gives back the data and the header (float32 and float64)", () => {
  const header = new Header();
  header.set("BUNIT", "DN/s");
  header.set("CRPIX1", 200.5);
  header.set("CDELT1", 0.252);
  header.set("CRVAL1", -1.5e-7);
  header.set("NPIX", 12, { integer: true });
  header.set("OK", true);
  header.set("OBJECT", "a description longer than one FITS card can hold, so that it needs CONTINUE cards: 'quoted'".repeat(2));
  header.add("HISTORY", "solar-enhance 0.3.0: Enhance x2 deconvolution + super-resolution, model: light intensity (in the browser)");
  header.add("COMMENT", "a comment");
  for (const bitpix of [-32, -64]) {
    const data = Float64Array.from([0.1, -2, NaN, 1e30, 5, 6]);
    const bytes = writeFits(header, data, { width: 3, height: 2, bitpix });
    assert.equal(bytes.length % 2880, 0);
    const back = readFits(bytes);
    assert.equal(back.width, 3);
    assert.equal(back.height, 2);
    assert.equal(back.header.get("BITPIX"), bitpix);
    const expected = bitpix === -32 ? Array.from(data, Math.fround) : Array.from(data);
    assert.deepEqual(Array.from(back.data), expected);
    for (const key of ["BUNIT", "CRPIX1", "CDELT1", "CRVAL1", "NPIX", "OK", "OBJECT"]) {
      assert.deepEqual(back.header.get(key), header.get(key), key);
    }
    const squash = (s) => s.replace(/\s+/g, "");
    assert.equal(squash(back.header.all("HISTORY").join("")), squash(header.all("HISTORY")[0])); // split over cards
    assert.equal(back.header.all("COMMENT")[0].trim(), "a comment");
    // SIMPLE, BITPIX, NAXIS, NAXIS1, NAXIS2 first; HISTORY before COMMENT at the end
    const keys = back.header.cards.map((c) => c.key);
    assert.deepEqual(keys.slice(0, 5), ["SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2"]);
    assert.ok(keys.lastIndexOf("HISTORY") < keys.indexOf("COMMENT"));
  }
});

test("cards are 80 characters; numbers keep their type; unchanged cards are written as read", () => {
  for (const c of [{ key: "A", value: 1, integer: true }, { key: "B", value: 1 }, { key: "C", value: 1e-300 },
    { key: "D", value: -123456789.123456789 }, { key: "E", value: "x" }, { key: "F", value: false }]) {
    const [line] = formatCard(c);
    assert.equal(line.length, 80);
    const { header } = parseHeader(new TextEncoder().encode(line + card("END").padEnd(2800, " ")), 0);
    assert.deepEqual(header.get(c.key), c.value);
  }
  assert.equal(formatCard({ key: "B", value: 2 })[0].slice(10, 30).trim(), "2.0"); // a float stays a float
  const original = card("ODD     =   1.50000D+02 / Fortran exponent, kept as written");
  const { header } = parseHeader(new TextEncoder().encode(original + card("END").padEnd(2800, " ")), 0);
  assert.equal(header.get("ODD"), 150);
  assert.deepEqual(formatCard(header.cards[0]), [original]);
});
