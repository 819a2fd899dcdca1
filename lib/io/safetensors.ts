// safetensors reader and writer, pure TypeScript (format: ../shared/fixtures/README.md, "safetensors format").
// defines: openSafetensors / openSafetensorsAsync -> SafetensorsFile (header parsed and validated up front, tensor
// bytes read on demand), readSafetensors / readSafetensorsAsync (everything at once), writeSafetensors /
// writeSafetensorsAsync (atomic, byte-identical to the reference library's output), serializeSafetensors (the
// chunks), halfToFloat, SAFETENSORS_DTYPES.
//
// File layout: [u64 LE N][N bytes UTF-8 JSON header, space padded][data section]. The header maps each tensor name
// to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data section) plus an optional
// "__metadata__" string->string map. The tensors must tile the data section exactly: no gap, no overlap, nothing
// after the last one. Every violation raises CorruptFileError naming the file, the tensor and the problem, with the
// absolute byte offset where there is one; header lengths above 100 MB are refused (as the reference does), so a
// hostile file cannot make us allocate or parse without bound.
//
// Tensor bytes land in a fresh ArrayBuffer, so typed-array views are aligned whatever the file's header padding.
// Opened with { mmap: true } (sharded / large checkpoints do so), get() instead maps the whole file once (native
// mmapFile: read-only file, private copy-on-write pages, unmapped when the last view is garbage-collected) and an
// F32/BF16/I32/I64 tensor whose offset is aligned to its element size is a view of the mapped pages: nothing is
// copied onto the JS heap and pages are read from disk when first touched. Misaligned tensors and converted dtypes
// are copied. The mapping is checked to be the very file that was opened and validated (same device, inode and
// size), else reads are used. Truncating a file in place while it is mapped makes touching its lost pages raise
// SIGBUS (as for any mmap user); files written by this package are replaced atomically (rename), which is safe.
// Data is little-endian; big-endian hosts are refused (out of scope: they would need byte swapping).
//
// Writing follows the reference (huggingface/safetensors `prepare`): tensors sorted by descending dtype (the order
// of SAFETENSORS_DTYPES, which keeps every tensor aligned to its element size) then by name (UTF-8 bytes);
// "__metadata__" first (keys sorted here, for determinism); compact JSON padded with spaces to a multiple of 8.
import * as fs from "fs";
import * as os from "os";
import { CorruptFileError } from "../errors";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";
import type { DType } from "../tensor";
import { writeFileAtomic, writeFileAtomicAsync, withCallerStack } from "./atomic";
import type { AtomicWriteOptions } from "./atomic";
import type { Binding } from "../../binding";

/** The native mmapFile, loaded on first use (this reader works without the addon when nothing is mapped). */
let mmapFile: Binding["mmapFile"] | null | undefined;
function nativeMmap(): Binding["mmapFile"] | null {
  if (mmapFile === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const n = (require("../native") as typeof import("../native")).native;
      mmapFile = typeof n.mmapFile === "function" ? n.mmapFile.bind(n) : null;
    } catch {
      mmapFile = null;
    }
  }
  return mmapFile;
}

/** Whether memory-mapped reading ({ mmap: true }) is available here (the native addon has mmapFile). */
export function mmapAvailable(): boolean {
  return nativeMmap() !== null && process.platform !== "win32";
}

/** Every dtype of the format, in the reference's enum order (increasing alignment). */
export const SAFETENSORS_DTYPES = [
  "BOOL",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "I16",
  "U16",
  "F16",
  "BF16",
  "I32",
  "U32",
  "F32",
  "F64",
  "I64",
  "U64",
] as const;
export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

const ELEMENT_SIZE: Record<SafetensorsDType, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

const DTYPE_RANK = new Map<string, number>(SAFETENSORS_DTYPES.map((d, i) => [d, i]));

/** Bytes of one element of a safetensors dtype. */
export function safetensorsElementSize(dtype: SafetensorsDType): number {
  const size = ELEMENT_SIZE[dtype];
  if (size === undefined) throw new RangeError(`safetensorsElementSize: unknown dtype ${JSON.stringify(dtype)}`);
  return size;
}

/** Largest header accepted (the reference library's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Tensor dtype -> safetensors dtype written for it. */
const DTYPE_TO_ST: Record<DType, SafetensorsDType> = { float32: "F32", bfloat16: "BF16", int32: "I32", int64: "I64" };

/** A tensor as stored: dtype, shape and its little-endian row-major bytes. */
export interface RawTensor {
  dtype: SafetensorsDType;
  shape: readonly number[];
  bytes: Uint8Array;
}

/** Where and what a tensor is in a file. */
export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** [begin, end) relative to the data section, as in the header. */
  readonly dataOffsets: readonly [number, number];
  /** Absolute file offset of the first byte. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** Tensors to write: a Map or a plain object of name -> Tensor (float32, bfloat16, int32, int64) or RawTensor. */
export type SafetensorsInput = Map<string, Tensor | RawTensor> | Record<string, Tensor | RawTensor>;
/** String -> string metadata stored under "__metadata__". */
export type SafetensorsMetadata = Map<string, string> | Record<string, string>;

function assertLittleEndianHost(what: string): void {
  if (os.endianness() !== "LE") throw new Error(`${what}: safetensors data is little-endian; big-endian hosts are not supported`);
}

function q(name: string): string {
  return JSON.stringify(name);
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return `an object`;
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v)}`;
  return `${typeof v} ${String(v)}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Index of the first byte that does not start or continue a valid UTF-8 sequence, or -1. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    let need: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) (need = 1), (min = 0x80);
    else if (c >= 0xe0 && c <= 0xef) (need = 2), (min = 0x800);
    else if (c >= 0xf0 && c <= 0xf4) (need = 3), (min = 0x10000);
    else return i;
    if (i + need >= n) return i; // truncated sequence
    let cp = c & (0x3f >> need);
    for (let k = 1; k <= need; ++k) {
      const cc = b[i + k];
      if ((cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

/** True when a JS string has no lone surrogate (so it survives UTF-8 encoding unchanged). */
function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; ++i) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      ++i;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8");

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

// ---- header parsing -------------------------------------------------------------------------------------------

interface ParsedHeader {
  headerLength: number;
  dataStart: number;
  fileSize: number;
  metadata: Readonly<Record<string, string>>;
  /** In data order. */
  tensors: Map<string, SafetensorsTensorInfo>;
}

/** Validate the 8-byte prefix; returns the header length N. */
function checkPrefix(file: string, prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8)
    throw new CorruptFileError(file, `file has ${fileSize} bytes, shorter than the 8-byte header length of a safetensors file`);
  const n64 = Buffer.from(prefix.buffer, prefix.byteOffset, 8).readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER_BYTES))
    throw new CorruptFileError(file, `header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit (file has ${fileSize} bytes)`, 0);
  const n = Number(n64);
  if (8 + n > fileSize)
    throw new CorruptFileError(file, `header length ${n} runs past the end of the file (${fileSize} bytes; truncated?)`, 0);
  return n;
}

function parseHeader(file: string, headerBytes: Uint8Array, fileSize: number): ParsedHeader {
  const headerLength = headerBytes.length;
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  const bad = firstInvalidUtf8(headerBytes);
  if (bad >= 0) throw new CorruptFileError(file, `header is not valid UTF-8 (byte 0x${headerBytes[bad].toString(16).padStart(2, "0")})`, 8 + bad);
  let root: unknown;
  try {
    root = JSON.parse(utf8Decoder.decode(headerBytes));
  } catch (e) {
    throw new CorruptFileError(file, `header is not valid JSON: ${(e as Error).message}`, 8);
  }
  if (!isPlainObject(root)) throw new CorruptFileError(file, `header is ${describeValue(root)}, expected a JSON object`, 8);

  let metadata: Record<string, string> = {};
  const infos: SafetensorsTensorInfo[] = [];
  for (const [name, entry] of Object.entries(root)) {
    if (name === "__metadata__") {
      if (entry === null) continue;
      if (!isPlainObject(entry)) throw new CorruptFileError(file, `__metadata__ is ${describeValue(entry)}, expected an object of strings`, 8);
      const pairs: [string, string][] = [];
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== "string") throw new CorruptFileError(file, `__metadata__[${q(k)}] is ${describeValue(v)}, expected a string`, 8);
        pairs.push([k, v]);
      }
      metadata = Object.fromEntries(pairs);
      continue;
    }
    const where = `tensor ${q(name)}`;
    if (!isPlainObject(entry)) throw new CorruptFileError(file, `${where}: entry is ${describeValue(entry)}, expected {dtype, shape, data_offsets}`, 8);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (dtype === undefined) throw new CorruptFileError(file, `${where}: missing "dtype"`, 8);
    if (typeof dtype !== "string") throw new CorruptFileError(file, `${where}: dtype is ${describeValue(dtype)}, expected a string`, 8);
    if (!DTYPE_RANK.has(dtype))
      throw new CorruptFileError(file, `${where}: unknown dtype ${q(dtype)} (known: ${SAFETENSORS_DTYPES.join(", ")})`, 8);
    if (shape === undefined) throw new CorruptFileError(file, `${where}: missing "shape"`, 8);
    if (!Array.isArray(shape)) throw new CorruptFileError(file, `${where}: shape is ${describeValue(shape)}, expected an array of sizes`, 8);
    let numel = 1;
    for (let i = 0; i < shape.length; ++i) {
      const s = shape[i];
      if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 0)
        throw new CorruptFileError(file, `${where}: shape[${i}] is ${describeValue(s)}, expected a non-negative integer`, 8);
      numel *= s;
    }
    if (offsets === undefined) throw new CorruptFileError(file, `${where}: missing "data_offsets"`, 8);
    if (!Array.isArray(offsets) || offsets.length !== 2)
      throw new CorruptFileError(file, `${where}: data_offsets is ${describeValue(offsets)}${Array.isArray(offsets) ? ` of length ${offsets.length}` : ""}, expected [begin, end]`, 8);
    for (let i = 0; i < 2; ++i) {
      const o = offsets[i];
      if (typeof o !== "number" || !Number.isSafeInteger(o) || o < 0)
        throw new CorruptFileError(file, `${where}: data_offsets[${i}] is ${describeValue(o)}, expected a non-negative integer`, 8);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw new CorruptFileError(file, `${where}: data_offsets [${begin}, ${end}] has begin > end`, dataStart + begin);
    if (end > dataLength)
      throw new CorruptFileError(
        file,
        `${where}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataLength} bytes; file truncated?)`,
        dataStart + Math.min(begin, dataLength),
      );
    const size = ELEMENT_SIZE[dtype as SafetensorsDType];
    const need = numel * size;
    if (!Number.isSafeInteger(need) || need !== end - begin)
      throw new CorruptFileError(
        file,
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but dtype ${dtype} x shape ${formatShape(shape)} needs ${Number.isSafeInteger(need) ? need : "more than 2^53"}`,
        dataStart + begin,
      );
    infos.push(
      Object.freeze({
        name,
        dtype: dtype as SafetensorsDType,
        shape: Object.freeze([...(shape as number[])]),
        dataOffsets: Object.freeze([begin, end] as [number, number]),
        byteOffset: dataStart + begin,
        byteLength: end - begin,
      }),
    );
  }

  // The tensors must tile [0, dataLength) exactly.
  infos.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let pos = 0;
  let prev: SafetensorsTensorInfo | undefined;
  for (const t of infos) {
    const [begin, end] = t.dataOffsets;
    if (begin < pos)
      throw new CorruptFileError(
        file,
        `tensor ${q(t.name)}: data_offsets [${begin}, ${end}] overlap tensor ${q(prev!.name)} [${prev!.dataOffsets[0]}, ${prev!.dataOffsets[1]}]`,
        dataStart + begin,
      );
    if (begin > pos)
      throw new CorruptFileError(
        file,
        `tensor ${q(t.name)}: data_offsets [${begin}, ${end}] leave a gap of ${begin - pos} bytes after ${prev ? `tensor ${q(prev.name)}` : "the start of the data section"} (tensors must fill the data section exactly)`,
        dataStart + pos,
      );
    pos = end;
    prev = t;
  }
  if (pos !== dataLength)
    throw new CorruptFileError(
      file,
      `${dataLength - pos} trailing bytes after the last tensor${prev ? ` ${q(prev.name)}` : ""} (the data section has ${dataLength} bytes; tensors must fill it exactly)`,
      dataStart + pos,
    );
  return {
    headerLength,
    dataStart,
    fileSize,
    metadata: Object.freeze(metadata),
    tensors: new Map(infos.map((t) => [t.name, t])),
  };
}

// ---- conversion -----------------------------------------------------------------------------------------------

/**
 * IEEE half-precision bits -> float32, exactly (subnormals, ±0, ±Inf; NaN keeps its sign and payload).
 * @returns out
 */
export function halfToFloat(out: Float32Array, src: Uint16Array): Float32Array {
  if (out.length < src.length) throw new RangeError(`halfToFloat: out has ${out.length} elements, src has ${src.length}`);
  const bits = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; ++i) {
    const h = src[i];
    const sign = (h & 0x8000) << 16;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0x1f) bits[i] = (sign | 0x7f800000 | (m << 13)) >>> 0;
    else if (e !== 0) bits[i] = (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
    else out[i] = (sign ? -m : m) * 2 ** -24; // zero or subnormal: m * 2^-24 is exact in float32
  }
  return out;
}

/** A Tensor from a tensor's bytes, aligned to its element size (offset 0 of their own ArrayBuffer, or an aligned offset in a mapping). */
function rawToTensor(file: string, raw: RawTensor, name: string): Tensor {
  const { dtype, shape, bytes } = raw;
  const buf = bytes.buffer;
  const n = bytes.byteLength / ELEMENT_SIZE[dtype];
  const off = bytes.byteOffset;
  switch (dtype) {
    case "F32":
      return new Tensor(new Float32Array(buf, off, n), shape);
    case "BF16":
      return new Tensor(new Uint16Array(buf, off, n), shape);
    case "I64":
      return new Tensor(new BigInt64Array(buf, off, n), shape);
    case "I32":
      return new Tensor(new Int32Array(buf, off, n), shape);
    case "F16":
      return new Tensor(halfToFloat(new Float32Array(n), new Uint16Array(buf, off, n)), shape);
    case "U8":
      return new Tensor(Int32Array.from(bytes), shape);
    case "BOOL":
      return new Tensor(Int32Array.from(bytes, (b) => (b !== 0 ? 1 : 0)), shape);
    case "I8":
      return new Tensor(Int32Array.from(new Int8Array(buf, off, n)), shape);
    case "I16":
      return new Tensor(Int32Array.from(new Int16Array(buf, off, n)), shape);
    case "U16":
      return new Tensor(Int32Array.from(new Uint16Array(buf, off, n)), shape);
    case "U32": {
      // Zero-extend into int64: low word = value, high word = 0 (little-endian).
      const out = new BigInt64Array(n);
      const words = new Uint32Array(out.buffer);
      const src = new Uint32Array(buf, off, n);
      for (let i = 0; i < n; ++i) words[2 * i] = src[i];
      return new Tensor(out, shape);
    }
    default:
      throw new TypeError(
        `safetensors: ${file}: tensor ${q(name)} has dtype ${dtype}, which no xlstm Tensor dtype holds exactly; read its bytes with getRaw()`,
      );
  }
}

// ---- reading --------------------------------------------------------------------------------------------------

const MAX_IO = 1 << 30;

function readFullySync(fd: number, file: string, what: string, out: Uint8Array, position: number): void {
  for (let done = 0; done < out.length; ) {
    const n = fs.readSync(fd, out, done, Math.min(out.length - done, MAX_IO), position + done);
    if (n === 0) throw new CorruptFileError(file, `${what}: file ends at byte ${position + done}, before the ${out.length} bytes expected (changed after opening?)`, position + done);
    done += n;
  }
}

function fsRead(fd: number, out: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, out, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

async function readFullyAsync(fd: number, file: string, what: string, out: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < out.length; ) {
    const n = await fsRead(fd, out, done, Math.min(out.length - done, MAX_IO), position + done);
    if (n === 0) throw new CorruptFileError(file, `${what}: file ends at byte ${position + done}, before the ${out.length} bytes expected (changed after opening?)`, position + done);
    done += n;
  }
}

/** Open read-only without blocking on FIFOs (so a hostile path cannot hang us); regular files only. */
const OPEN_FLAGS = fs.constants.O_RDONLY | (process.platform === "win32" ? 0 : fs.constants.O_NONBLOCK ?? 0);

function notRegular(what: string, file: string): Error {
  return new Error(`${what}: ${file} is not a regular file`);
}

/** How a file is read. */
export interface OpenSafetensorsOptions {
  /**
   * Map the file and return tensors that view its pages (see the file header); falls back to reads where mapping is
   * unavailable or fails. Default false.
   */
  mmap?: boolean;
}

/** Closes the descriptor of a SafetensorsFile that was garbage-collected without close(). */
const leakedFds = new FinalizationRegistry<number>((fd) => fs.close(fd, () => undefined));

/**
 * An open safetensors file: the header is parsed and validated on open; tensor bytes are read only when asked for,
 * so a large file never sits in memory at once. Close it with close() (or `using`); tensors already read stay valid.
 *
 * Keys are listed in data order. Tensors returned own their storage (a fresh, aligned buffer per call).
 */
export class SafetensorsFile implements Disposable {
  /** The path as given to open. */
  readonly path: string;
  /** The "__metadata__" map ({} when the file has none). */
  readonly metadata: Readonly<Record<string, string>>;
  /** N, the header's length in bytes (padding included). */
  readonly headerLength: number;
  /** Absolute offset of the data section (8 + N). */
  readonly dataOffset: number;
  /** File size in bytes when opened. */
  readonly fileSize: number;
  #fd: number;
  #tensors: Map<string, SafetensorsTensorInfo>;
  #closed = false;
  #pending = 0;
  /** { mmap: true } asked for, and not yet found impossible */
  #mmap: boolean;
  #mapped: ArrayBuffer | null = null;

  /** @internal use openSafetensors / openSafetensorsAsync */
  constructor(path: string, fd: number, header: ParsedHeader, options: OpenSafetensorsOptions = {}) {
    this.path = path;
    this.#fd = fd;
    this.#mmap = options.mmap === true;
    this.metadata = header.metadata;
    this.headerLength = header.headerLength;
    this.dataOffset = header.dataStart;
    this.fileSize = header.fileSize;
    this.#tensors = header.tensors;
    leakedFds.register(this, fd, this);
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether get() serves tensors from a memory mapping (true after the first get() of a mapped file). */
  get mapped(): boolean {
    return this.#mapped !== null;
  }

  /** The file's bytes mapped (mapping it on first use), or null when not asked for or not possible. */
  #mapping(): ArrayBuffer | null {
    if (this.#mapped || !this.#mmap) return this.#mapped;
    this.#mmap = false; // one attempt
    const map = process.platform === "win32" ? null : nativeMmap();
    if (!map) return null;
    let buf: ArrayBuffer;
    try {
      buf = map(this.path);
    } catch {
      return null; // e.g. no address space or a runtime without external buffers: read instead
    }
    // the mapped file must be the one opened and validated: same identity and size (a file replaced in between
    // by an atomic rename, or grown or shrunk, is read through the descriptor instead)
    try {
      const a = fs.fstatSync(this.#fd), b = fs.statSync(this.path);
      if (a.dev !== b.dev || a.ino !== b.ino || buf.byteLength !== this.fileSize || a.size !== this.fileSize) return null;
    } catch {
      return null;
    }
    this.#mapped = buf;
    return buf;
  }

  /** Number of tensors. */
  get size(): number {
    return this.#tensors.size;
  }

  /** Tensor names, in data order. */
  keys(): string[] {
    return [...this.#tensors.keys()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** dtype, shape and byte range of a tensor (no I/O; works after close too). */
  info(name: string): SafetensorsTensorInfo {
    const t = this.#tensors.get(name);
    if (t === undefined) {
      if (typeof name !== "string") throw new TypeError(`safetensors: tensor name must be a string, got ${typeof name}`);
      const some = this.keys().slice(0, 5).map(q).join(", ");
      throw new RangeError(`safetensors: ${this.path} has no tensor ${q(name)} (${this.size} tensors${some ? `, e.g. ${some}` : ""})`);
    }
    return t;
  }

  #ensureOpen(what: string): void {
    if (this.#closed) throw new Error(`safetensors: ${what}() on ${this.path}, which is closed; open it again with openSafetensors()`);
  }

  /** The stored bytes of a tensor (fresh buffer), with its safetensors dtype and shape. Any dtype. */
  getRaw(name: string): RawTensor {
    this.#ensureOpen("getRaw");
    const t = this.info(name);
    const map = this.#mapping();
    if (map) return { dtype: t.dtype, shape: t.shape, bytes: new Uint8Array(map, t.byteOffset, t.byteLength).slice() };
    const bytes = new Uint8Array(t.byteLength);
    readFullySync(this.#fd, this.path, `tensor ${q(name)}`, bytes, t.byteOffset);
    return { dtype: t.dtype, shape: t.shape, bytes };
  }

  /**
   * A tensor as a Tensor: F32 -> float32, BF16 -> bfloat16 (raw bits), I64 -> int64, I32 -> int32, F16 -> float32
   * (exact widening), U8/I8/I16/U16 -> int32, BOOL -> int32 0/1, U32 -> int64. In a mapped file (mmap option), an
   * aligned F32/BF16/I32/I64 tensor views the mapping (writes to it stay private to this process).
   * @throws TypeError for F64, U64 and F8 (no exact Tensor dtype: use getRaw).
   */
  get(name: string): Tensor {
    this.#ensureOpen("get");
    this.#checkConvertible(name);
    const map = this.#mapping();
    if (map) {
      const t = this.info(name);
      // aligned: rawToTensor views it (or converts into a fresh array); misaligned: copy first
      const view = new Uint8Array(map, t.byteOffset, t.byteLength);
      const bytes = t.byteOffset % ELEMENT_SIZE[t.dtype] === 0 ? view : view.slice();
      return rawToTensor(this.path, { dtype: t.dtype, shape: t.shape, bytes }, name);
    }
    return rawToTensor(this.path, this.getRaw(name), name);
  }

  /** getRaw, reading on the libuv thread pool (the event loop stays free). */
  async getRawAsync(name: string): Promise<RawTensor> {
    this.#ensureOpen("getRawAsync");
    const t = this.info(name);
    const bytes = new Uint8Array(t.byteLength);
    const caller = new Error();
    this.#pending++;
    try {
      await readFullyAsync(this.#fd, this.path, `tensor ${q(name)}`, bytes, t.byteOffset);
    } catch (e) {
      throw withCallerStack(e, caller);
    } finally {
      if (--this.#pending === 0 && this.#closed) this.#release();
    }
    return { dtype: t.dtype, shape: t.shape, bytes };
  }

  /** get, reading on the libuv thread pool. */
  async getAsync(name: string): Promise<Tensor> {
    this.#ensureOpen("getAsync");
    this.#checkConvertible(name);
    return rawToTensor(this.path, await this.getRawAsync(name), name);
  }

  #checkConvertible(name: string): void {
    const { dtype } = this.info(name);
    if (dtype === "F64" || dtype === "U64" || dtype === "F8_E4M3" || dtype === "F8_E5M2")
      throw new TypeError(
        `safetensors: ${this.path}: tensor ${q(name)} has dtype ${dtype}, which no xlstm Tensor dtype holds exactly; read its bytes with getRaw()`,
      );
  }

  /** Release the file descriptor. Idempotent; pending async reads finish first. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#mapped = null; // views handed out keep the mapping alive; it is unmapped when they are collected
    leakedFds.unregister(this);
    if (this.#pending === 0) this.#release();
  }

  #release(): void {
    const fd = this.#fd;
    this.#fd = -1;
    if (fd >= 0) fs.closeSync(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return `SafetensorsFile(${this.path}, ${this.size} tensors${this.#closed ? ", closed" : ""})`;
  }
}

function checkPathArg(what: string, file: unknown): asserts file is string {
  if (typeof file !== "string") throw new TypeError(`${what}: path must be a string, got ${describeValue(file)}`);
  if (file.length === 0) throw new RangeError(`${what}: path is empty`);
}

/**
 * Open a safetensors file: reads and validates the header only; tensors are read on demand.
 * @param options.mmap map the file and return tensors viewing its pages (see the file header); default false
 * @throws CorruptFileError when the file is not a valid safetensors file (names the file, tensor and problem).
 * @example
 * const f = openSafetensors("model.safetensors");
 * try { const w = f.get("proj_up.weight"); } finally { f.close(); }
 */
export function openSafetensors(file: string, options: OpenSafetensorsOptions = {}): SafetensorsFile {
  const what = "openSafetensors";
  checkPathArg(what, file);
  assertLittleEndianHost(what);
  const fd = fs.openSync(file, OPEN_FLAGS);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw notRegular(what, file);
    const prefix = new Uint8Array(8);
    if (st.size >= 8) readFullySync(fd, file, "header length", prefix, 0);
    const n = checkPrefix(file, prefix, st.size);
    const headerBytes = new Uint8Array(n);
    readFullySync(fd, file, "header", headerBytes, 8);
    return new SafetensorsFile(file, fd, parseHeader(file, headerBytes, st.size), options);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** openSafetensors with fs I/O on the libuv thread pool (the event loop stays free). */
export async function openSafetensorsAsync(file: string): Promise<SafetensorsFile> {
  const what = "openSafetensorsAsync";
  checkPathArg(what, file);
  assertLittleEndianHost(what);
  const caller = new Error();
  let fd: number;
  try {
    fd = await new Promise<number>((resolve, reject) => fs.open(file, OPEN_FLAGS, (err, f) => (err ? reject(err) : resolve(f))));
  } catch (e) {
    throw withCallerStack(e, caller);
  }
  try {
    const st = await new Promise<fs.Stats>((resolve, reject) => fs.fstat(fd, (err, s) => (err ? reject(err) : resolve(s))));
    if (!st.isFile()) throw notRegular(what, file);
    const prefix = new Uint8Array(8);
    if (st.size >= 8) await readFullyAsync(fd, file, "header length", prefix, 0);
    const n = checkPrefix(file, prefix, st.size);
    const headerBytes = new Uint8Array(n);
    await readFullyAsync(fd, file, "header", headerBytes, 8);
    return new SafetensorsFile(file, fd, parseHeader(file, headerBytes, st.size));
  } catch (e) {
    await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
    throw withCallerStack(e, caller);
  }
}

/** Everything in a file. */
export interface SafetensorsContents {
  /** In data order. */
  tensors: Map<string, Tensor>;
  metadata: Readonly<Record<string, string>>;
}

/**
 * Read every tensor of a file (see SafetensorsFile.get for the dtype mapping).
 * @throws CorruptFileError for invalid files; TypeError for F64/U64/F8 tensors (use openSafetensors().getRaw).
 */
export function readSafetensors(file: string): SafetensorsContents {
  const f = openSafetensors(file);
  try {
    const tensors = new Map<string, Tensor>();
    for (const name of f.keys()) tensors.set(name, f.get(name));
    return { tensors, metadata: f.metadata };
  } finally {
    f.close();
  }
}

/** readSafetensors with reads on the libuv thread pool, one tensor at a time (the event loop stays free). */
export async function readSafetensorsAsync(file: string): Promise<SafetensorsContents> {
  const f = await openSafetensorsAsync(file);
  try {
    const tensors = new Map<string, Tensor>();
    for (const name of f.keys()) tensors.set(name, await f.getAsync(name));
    return { tensors, metadata: f.metadata };
  } finally {
    f.close();
  }
}

// ---- writing --------------------------------------------------------------------------------------------------

interface Prepared {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  bytes: Uint8Array;
}

function prepareTensor(what: string, name: string, value: unknown): Prepared {
  const where = `${what}: tensor ${q(name)}`;
  if (value instanceof Tensor) {
    if (value.device !== "cpu") throw new TypeError(`${where} is on ${value.device}; move it to the CPU first`);
    const d = value.data;
    return { name, dtype: DTYPE_TO_ST[value.dtype], shape: value.shape, bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
  }
  if (!isPlainObject(value)) throw new TypeError(`${where} is ${describeValue(value)}, expected a Tensor or {dtype, shape, bytes}`);
  const { dtype, shape, bytes } = value as Partial<RawTensor>;
  if (typeof dtype !== "string") throw new TypeError(`${where}: dtype is ${describeValue(dtype)}, expected one of ${SAFETENSORS_DTYPES.join(", ")}`);
  if (!DTYPE_RANK.has(dtype)) throw new RangeError(`${where}: unknown dtype ${q(dtype)} (known: ${SAFETENSORS_DTYPES.join(", ")})`);
  if (!Array.isArray(shape)) throw new TypeError(`${where}: shape is ${describeValue(shape)}, expected an array of sizes`);
  let numel = 1;
  for (let i = 0; i < shape.length; ++i) {
    if (typeof shape[i] !== "number") throw new TypeError(`${where}: shape[${i}] is ${describeValue(shape[i])}, expected a number`);
    if (!Number.isSafeInteger(shape[i]) || shape[i] < 0) throw new RangeError(`${where}: shape[${i}] is ${shape[i]}, expected a non-negative integer`);
    numel *= shape[i];
  }
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${where}: bytes is ${describeValue(bytes)}, expected a Uint8Array`);
  const need = numel * ELEMENT_SIZE[dtype as SafetensorsDType];
  if (bytes.byteLength !== need)
    throw new RangeError(`${where}: bytes has ${bytes.byteLength} bytes, expected ${dtype} x shape ${formatShape(shape)} = ${need}`);
  return { name, dtype: dtype as SafetensorsDType, shape: [...shape], bytes };
}

function checkName(what: string, name: unknown, kind: string): asserts name is string {
  if (typeof name !== "string") throw new TypeError(`${what}: ${kind} name must be a string, got ${describeValue(name)}`);
  if (name.length === 0) throw new RangeError(`${what}: ${kind} name is empty`);
  if (!isWellFormed(name)) throw new RangeError(`${what}: ${kind} name ${q(name)} has a lone UTF-16 surrogate (not encodable as UTF-8)`);
}

/**
 * The bytes of a safetensors file as chunks: [u64 length + header, then each non-empty tensor's bytes]. Tensor
 * chunks are views of the tensors' own storage (no copy): do not modify them until the chunks are written.
 * The layout matches the reference library byte for byte (see the file header).
 * @throws TypeError/RangeError naming the tensor or metadata key that is invalid.
 */
export function serializeSafetensors(tensors: SafetensorsInput, metadata?: SafetensorsMetadata, what = "serializeSafetensors"): Uint8Array[] {
  assertLittleEndianHost(what);
  // Validate arguments
  let entries: [unknown, unknown][];
  if (tensors instanceof Map) entries = [...tensors.entries()];
  else if (isPlainObject(tensors) && !(tensors instanceof Tensor)) entries = Object.entries(tensors);
  else throw new TypeError(`${what}: tensors must be a Map or an object of name -> Tensor, got ${describeValue(tensors)}`);
  const prepared: Prepared[] = [];
  for (const [name, value] of entries) {
    checkName(what, name, "tensor");
    if (name === "__metadata__") throw new RangeError(`${what}: "__metadata__" is reserved and cannot name a tensor`);
    prepared.push(prepareTensor(what, name, value));
  }
  let meta: [string, string][] | undefined;
  if (metadata !== undefined) {
    let pairs: [unknown, unknown][];
    if (metadata instanceof Map) pairs = [...metadata.entries()];
    else if (isPlainObject(metadata)) pairs = Object.entries(metadata);
    else throw new TypeError(`${what}: metadata must be a Map or an object of strings, got ${describeValue(metadata)}`);
    meta = [];
    for (const [k, v] of pairs) {
      checkName(what, k, "metadata");
      if (typeof v !== "string") throw new TypeError(`${what}: metadata[${q(k)}] is ${describeValue(v)}, expected a string`);
      if (!isWellFormed(v)) throw new RangeError(`${what}: metadata[${q(k)}] has a lone UTF-16 surrogate (not encodable as UTF-8)`);
      meta.push([k, v]);
    }
    meta.sort((a, b) => compareUtf8(a[0], b[0]));
  }

  // Order: descending dtype rank, then name (UTF-8 bytes), as the reference does.
  prepared.sort((a, b) => DTYPE_RANK.get(b.dtype)! - DTYPE_RANK.get(a.dtype)! || compareUtf8(a.name, b.name));

  // Header
  const parts: string[] = [];
  if (meta) parts.push(`"__metadata__":{${meta.map(([k, v]) => `${q(k)}:${q(v)}`).join(",")}}`);
  let offset = 0;
  for (const t of prepared) {
    const end = offset + t.bytes.byteLength;
    parts.push(`${q(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = utf8.encode(`{${parts.join(",")}}`);
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_BYTES) throw new RangeError(`${what}: the header would have ${n} bytes, above the ${MAX_HEADER_BYTES}-byte limit readers accept`);
  const head = new Uint8Array(8 + n);
  new DataView(head.buffer).setBigUint64(0, BigInt(n), true);
  head.set(json, 8);
  head.fill(0x20, 8 + json.length);
  const chunks: Uint8Array[] = [head];
  for (const t of prepared) if (t.bytes.byteLength > 0) chunks.push(t.bytes);
  return chunks;
}

/**
 * Write tensors to a safetensors file, atomically (temp file in the same directory, fsync, rename): on any error the
 * old file is left as it was. Tensors: float32 -> F32, bfloat16 -> BF16, int32 -> I32, int64 -> I64; a RawTensor
 * is written with its own dtype. Output is byte-identical to the reference library's `save_file`.
 * @param metadata optional string -> string map stored as "__metadata__".
 * @throws TypeError/RangeError naming a bad tensor, name or metadata entry (nothing is written then).
 * @example writeSafetensors("ckpt.safetensors", { "proj_up.weight": w }, { step: "100" });
 */
export function writeSafetensors(file: string, tensors: SafetensorsInput, metadata?: SafetensorsMetadata, options?: AtomicWriteOptions): void {
  const what = "writeSafetensors";
  checkPathArg(what, file);
  writeFileAtomic(file, serializeSafetensors(tensors, metadata, what), options);
}

/** writeSafetensors with fs.promises (the event loop stays free). Do not modify the tensors until it settles. */
export async function writeSafetensorsAsync(
  file: string,
  tensors: SafetensorsInput,
  metadata?: SafetensorsMetadata,
  options?: AtomicWriteOptions,
): Promise<void> {
  const what = "writeSafetensorsAsync";
  checkPathArg(what, file);
  await writeFileAtomicAsync(file, serializeSafetensors(tensors, metadata, what), options);
}
