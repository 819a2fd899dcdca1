// Layer 8 (reliability): hostile files and configs. Seeded fuzzing of every loader with mutated and hand-crafted
// safetensors files, and of the model constructors and loadStateDict with broken configs and state dicts.
// Guarantees checked, case by case:
//   - a broken file ends in CorruptFileError naming the file (and the problem), never a crash, hang or other error;
//   - reading allocates no more than about the file's size (the raw bytes; up to 4x where U8/I8/BOOL/I16/U16
//     widen to int32), measured as ArrayBuffer memory around every read and RSS over the loop; nothing is written;
//   - a broken config ends in TypeError/RangeError naming the field; one that is accepted builds a model that runs;
//   - a rejected state dict names the key and leaves the model's parameters untouched.
// Cases: a few thousand by default; XLSTM_FUZZ_LONG=1 runs many more (XLSTM_FUZZ_SEED changes the seed).
//
// Checkpoints (lib/checkpoint loadModel) get the same file mutations plus hostile config metadata.
// Extending: add a loader to LOADERS and a constructor to CONSTRUCTORS; every case then runs against it too.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadModel, MODEL_FILE, writeModelFile } from "../lib/checkpoint";
import { CorruptFileError } from "../lib/errors";
import { MAX_HEADER_BYTES, openSafetensors, openSafetensorsAsync, readSafetensors, readSafetensorsAsync, SAFETENSORS_DTYPES, writeSafetensors } from "../lib/io/safetensors";
import type { RawTensor, SafetensorsDType } from "../lib/io/safetensors";
import * as nn from "../lib/nn";
import { Generator } from "../lib/rng";
import { Tensor } from "../lib/tensor";
import { FUZZ_LONG, FUZZ_SEED, fuzzCases, Rand } from "./support/fuzz";
import { fixturesDir } from "./support/fixtures";

const gc = (globalThis as { gc?: () => void }).gc;

// ---- loaders ---------------------------------------------------------------------------------------------------

interface Loader {
  name: string;
  /** Most bytes returned per byte of file: 1 for raw bytes; 4 where U8/I8/BOOL/I16/U16 widen to int32 (F16 to F32: 2). */
  expansion: number;
  /** Reads everything the loader offers; resolves to the tensors' total byte count. */
  load(file: string): Promise<number>;
}

function sumBytes(m: Map<string, Tensor>): number {
  let n = 0;
  for (const t of m.values()) n += t.data.byteLength;
  return n;
}

/** Every way to read a safetensors file. Checkpoint loaders (lib/checkpoint) belong here once they exist. */
const LOADERS: Loader[] = [
  { name: "readSafetensors", expansion: 4, load: async (f) => sumBytes(readSafetensors(f).tensors) },
  { name: "readSafetensorsAsync", expansion: 4, load: async (f) => sumBytes((await readSafetensorsAsync(f)).tensors) },
  {
    name: "openSafetensors + getRaw",
    expansion: 1,
    load: async (f) => {
      const file = openSafetensors(f);
      try {
        let n = 0;
        for (const k of file.keys()) n += file.getRaw(k).bytes.byteLength;
        return n;
      } finally {
        file.close();
      }
    },
  },
  {
    name: "openSafetensorsAsync + getRawAsync",
    expansion: 1,
    load: async (f) => {
      const file = await openSafetensorsAsync(f);
      try {
        let n = 0;
        for (const k of file.keys()) n += (await file.getRawAsync(k)).bytes.byteLength;
        return n;
      } finally {
        file.close();
      }
    },
  },
];

/** The outcome a loader must produce: loaded (valid file) or a CorruptFileError naming the file; null when fine. */
function badOutcome(file: string, e: unknown): string | null {
  if (e instanceof CorruptFileError) {
    if (e.file !== file || !e.message.includes(file)) return `CorruptFileError does not name the file: ${e.message}`;
    if (e.message.length < file.length + 12) return `CorruptFileError without a problem: ${e.message}`;
    return null;
  }
  // a valid file whose tensors have no exact Tensor dtype: a TypeError naming the file, the tensor and getRaw
  if (e instanceof TypeError && e.message.includes(file) && /no xlstm Tensor dtype holds exactly/.test(e.message)) return null;
  return `${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`;
}

// ---- valid files and their mutations -----------------------------------------------------------------------------

const DTYPES = SAFETENSORS_DTYPES as readonly SafetensorsDType[];
const SIZE: Record<string, number> = { BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8 };
const NAMES = ["w", "proj_up.weight", "a/b", "../../etc/passwd", "/abs", "C:\\x", "..", ".", "\u0000", "名前", "__proto__", "constructor", "x".repeat(300), " ", "a\nb"];

/** A valid safetensors file's bytes: random tensors (any dtype, 0-d, empty) and metadata. */
function validFile(r: Rand, dir: string): Buffer {
  const tensors = new Map<string, RawTensor>();
  const n = r.int(5);
  for (let i = 0; i < n; ++i) {
    const dtype = r.pick(DTYPES);
    const shape = Array.from({ length: r.int(4) }, () => r.pick([0, 1, 2, 3, 5]));
    const numel = shape.reduce((a, b) => a * b, 1);
    const bytes = r.bytes(numel * SIZE[dtype]);
    if (dtype === "F32" && r.bool(0.3)) new Float32Array(bytes.buffer).forEach((_, k, a) => (a[k] = r.pick([NaN, Infinity, -Infinity, -0, 1e-45, 3e38])));
    if (dtype === "BOOL") bytes.forEach((b, k) => (bytes[k] = b & 1));
    tensors.set(r.bool(0.3) ? r.pick(NAMES) : `t${i}.${r.int(100)}`, { dtype, shape, bytes });
  }
  const meta = r.bool(0.3) ? { format: "pt", note: r.pick(NAMES) } : undefined;
  const f = path.join(dir, "valid.safetensors");
  writeSafetensors(f, tensors, meta, { fsync: false });
  return fs.readFileSync(f);
}

interface Parsed {
  header: Record<string, unknown>;
  data: Buffer;
}

function parse(file: Buffer): Parsed {
  const n = Number(file.readBigUInt64LE(0));
  return { header: JSON.parse(file.subarray(8, 8 + n).toString("utf8")) as Record<string, unknown>, data: file.subarray(8 + n) };
}

function assemble(headerJson: string | Buffer, data: Buffer, pad = true): Buffer {
  let h = Buffer.isBuffer(headerJson) ? headerJson : Buffer.from(headerJson, "utf8");
  if (pad && h.length % 8) h = Buffer.concat([h, Buffer.alloc(8 - (h.length % 8), 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

const HOSTILE_JSON: readonly unknown[] = [null, true, 0, -1, 0.5, 2 ** 53, 2 ** 64, 1e308, -1e308, "F32", "", [], [1], [0, 0, 0], {}, { a: 1 }, [-1, 2], [2, 1], [0, 2 ** 60], [[1]], ["0", "4"]];

/** Tensor entries of a parsed header (not __metadata__). */
function entries(h: Record<string, unknown>): [string, Record<string, unknown>][] {
  return Object.entries(h).filter(([k, v]) => k !== "__metadata__" && v !== null && typeof v === "object" && !Array.isArray(v)) as [string, Record<string, unknown>][];
}

/** One structural (header JSON) or byte-level mutation of a valid file; returns the new bytes and a description. */
function mutate(r: Rand, file: Buffer): { bytes: Buffer; what: string } {
  const p = parse(file);
  const ents = entries(p.header);
  const e = ents.length ? r.pick(ents) : null;
  switch (r.int(18)) {
    case 0: {
      // header length field
      const n = Number(file.readBigUInt64LE(0));
      const v = r.pick([0n, 1n, 7n, BigInt(n - 1), BigInt(n + 1), BigInt(file.length), BigInt(file.length - 7), BigInt(MAX_HEADER_BYTES), BigInt(MAX_HEADER_BYTES + 1), 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]);
      const b = Buffer.from(file);
      b.writeBigUInt64LE(v);
      return { bytes: b, what: `header length ${v}` };
    }
    case 1: {
      const at = r.int(file.length + 1);
      return { bytes: file.subarray(0, at), what: `truncated at ${at}` };
    }
    case 2: {
      const b = Buffer.from(file);
      for (let k = r.range(1, 4); k > 0; --k) if (b.length) b[r.int(b.length)] ^= 1 << r.int(8);
      return { bytes: b, what: "bit flips" };
    }
    case 3: {
      const b = Buffer.from(file);
      const n = Number(file.readBigUInt64LE(0));
      if (n > 0) b[8 + r.int(n)] = r.pick([0x00, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0xff, 0xc0, 0xed, 0x80]);
      return { bytes: b, what: "header byte" };
    }
    case 4:
      return { bytes: Buffer.concat([file, r.bytes(r.range(1, 9))]), what: "trailing bytes" };
    case 5: {
      if (!e) return { bytes: assemble("", p.data), what: "empty header" };
      e[1].dtype = r.pick([...HOSTILE_JSON, "F31", "f32", "BOOL", "F64", "I64", "U8"]);
      return { bytes: assemble(JSON.stringify(p.header), p.data), what: `dtype ${JSON.stringify(e[1].dtype)}` };
    }
    case 6: {
      if (!e) break;
      e[1].shape = r.pick([...HOSTILE_JSON, [2 ** 27, 2 ** 27, 16], [2 ** 53], [-0], [1.5], [2 ** 31, 2 ** 31], Array(100).fill(2), Array(1000).fill(1)]);
      return { bytes: assemble(JSON.stringify(p.header), p.data), what: `shape ${JSON.stringify(e[1].shape)}` };
    }
    case 7: {
      if (!e) break;
      const [b0, b1] = e[1].data_offsets as number[];
      e[1].data_offsets = r.pick([...HOSTILE_JSON, [b1, b0], [b0, b1 + 1], [b0 + 1, b1 + 1], [b0 - 1, b1 - 1], [0, b1 - b0], [b0, p.data.length + r.int(10)], [b0, 2 ** 53], [b0 + 0.5, b1], [b0, b1, 0]]);
      return { bytes: assemble(JSON.stringify(p.header), p.data), what: `data_offsets ${JSON.stringify(e[1].data_offsets)}` };
    }
    case 8: {
      if (!e) break;
      const k = r.pick(["dtype", "shape", "data_offsets"]);
      delete e[1][k];
      if (r.bool()) e[1].extra = r.pick(HOSTILE_JSON);
      return { bytes: assemble(JSON.stringify(p.header), p.data), what: `without ${k}` };
    }
    case 9: {
      if (!e) break;
      p.header[e[0]] = r.pick(HOSTILE_JSON);
      return { bytes: assemble(JSON.stringify(p.header), p.data), what: `entry ${JSON.stringify(p.header[e[0]])}` };
    }
    case 10: {
      // a duplicated tensor (overlap) or a second name for the same range; JSON keys may repeat too
      if (!e) break;
      const dup = JSON.stringify(e[1]);
      const json = JSON.stringify(p.header);
      const text = r.bool() ? `${json.slice(0, -1)},"dup":${dup}}` : `${json.slice(0, -1)},${JSON.stringify(e[0])}:${dup}}`;
      return { bytes: assemble(text, p.data), what: "overlapping / repeated tensor" };
    }
    case 11:
      p.header.__metadata__ = r.pick([...HOSTILE_JSON, { a: 1 }, { a: null }, { a: { b: "c" } }, { a: ["x"] }]);
      return { bytes: assemble(JSON.stringify(p.header), p.data), what: `__metadata__ ${JSON.stringify(p.header.__metadata__)}` };
    case 12: {
      const depth = r.pick([100, 10000, 200000]);
      const text = r.bool() ? `{"a":${"[".repeat(depth)}${"]".repeat(depth)}}` : `{"a":${'{"b":'.repeat(depth)}1${"}".repeat(depth)}}`;
      return { bytes: assemble(text, p.data), what: `nesting depth ${depth}` };
    }
    case 13: {
      const text = r.pick(["", "null", "[]", "1", '"str"', "{", "}", "{}}", "{\"a\":}", "\ufeff{}", "{}\u0000", "NaN", "{'a':1}", "{\"a\":1,}", "[" + "1,".repeat(1000) + "1]"]);
      return { bytes: assemble(text, p.data, r.bool()), what: `header ${JSON.stringify(text.slice(0, 20))}` };
    }
    case 14: {
      const n = Number(file.readBigUInt64LE(0));
      const h = Buffer.from(file.subarray(8, 8 + n));
      const pad = r.pick([0x00, 0x09, 0x0a, 0xff]);
      for (let k = h.length - 1; k >= 0 && h[k] === 0x20; --k) h[k] = pad;
      return { bytes: assemble(Buffer.concat([h, Buffer.from([pad])]), p.data), what: `padding 0x${pad.toString(16)}` };
    }
    case 15: {
      // invalid UTF-8 inside a key
      const json = Buffer.from(JSON.stringify(p.header), "utf8");
      const at = json.indexOf(0x22);
      const bad = Buffer.from(r.pick([[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xff]]));
      const b = at >= 0 ? Buffer.concat([json.subarray(0, at + 1), bad, json.subarray(at + 1)]) : json;
      return { bytes: assemble(b, p.data), what: "invalid UTF-8" };
    }
    case 16: {
      // a gap: shift every later tensor by some bytes and insert them into the data
      if (!e) break;
      const [b0] = e[1].data_offsets as number[];
      const k = r.range(1, 9);
      for (const [, v] of ents) {
        const o = v.data_offsets as number[];
        if (o[0] >= b0) v.data_offsets = [o[0] + k, o[1] + k];
      }
      return { bytes: assemble(JSON.stringify(p.header), Buffer.concat([p.data.subarray(0, b0), Buffer.alloc(k), p.data.subarray(b0)])), what: `gap of ${k} bytes` };
    }
    default:
      break;
  }
  // huge claimed sizes consistent with each other, but not with the file
  const big = 2 ** r.range(31, 52);
  return { bytes: assemble(JSON.stringify({ huge: { dtype: "F32", shape: [big / 4], data_offsets: [0, big] } }), p.data), what: `claims ${big} bytes` };
}

// ---- configs ---------------------------------------------------------------------------------------------------

type Config = Record<string, unknown>;

interface Ctor {
  name: string;
  base(): Config;
  build(c: unknown): nn.Module;
  /** A forward pass of the built module (tiny input). */
  run(m: nn.Module, c: Config): void;
}

const mlstmBlock = () => ({ mlstm: { num_heads: 2, conv1d_kernel_size: 2, qkv_proj_blocksize: 4, proj_factor: 2, round_proj_up_to_multiple_of: 8, round_proj_up_dim_up: true } });
const slstmBlock = () => ({ slstm: { num_heads: 2, conv1d_kernel_size: 2, bias_init: "powerlaw_blockdependent", recurrent_weight_init: "zeros", function: "slstm" }, feedforward: { proj_factor: 1.5, act_fn: "gelu", round_proj_up_to_multiple_of: 8, dropout: 0 } });
const stackBase = () => ({ embedding_dim: 8, num_blocks: 2, slstm_at: [1], context_length: 8, add_post_blocks_norm: true, bias: false, dropout: 0, mlstm_block: mlstmBlock(), slstm_block: slstmBlock() });
const gen = new Generator(5);
const x3 = (E: number) => Tensor.randn([1, 3, E], { generator: gen });

const CONSTRUCTORS: Ctor[] = [
  {
    name: "LSTM",
    base: () => ({ input_size: 3, hidden_size: 4, num_layers: 2, bias: true, batch_first: true, dropout: 0.1 }),
    build: (c) => new nn.LSTM(c as nn.LSTMOptions),
    run: (m) => void (m as nn.LSTM).forward(Tensor.randn([2, 3, (m as nn.LSTM).input_size], { generator: gen })),
  },
  {
    name: "sLSTMLayer",
    base: () => ({ embedding_dim: 8, num_heads: 2, conv1d_kernel_size: 2, dropout: 0, function: "slstm", bias_init: "powerlaw_blockdependent", recurrent_weight_init: "zeros", group_norm_weight: true, _block_idx: 0, _num_blocks: 2 }),
    build: (c) => new nn.sLSTMLayer(c as nn.sLSTMLayerConfig, { generator: gen }),
    run: (m) => void (m as nn.sLSTMLayer).forward(x3((m as nn.sLSTMLayer).config.embedding_dim)),
  },
  {
    name: "mLSTMLayer",
    base: () => ({ embedding_dim: 8, num_heads: 2, conv1d_kernel_size: 2, qkv_proj_blocksize: 4, proj_factor: 2, round_proj_up_to_multiple_of: 8, round_proj_up_dim_up: true, bias: false, dropout: 0, context_length: 8, _num_blocks: 1 }),
    build: (c) => new nn.mLSTMLayer(c as nn.mLSTMLayerConfig, { generator: gen }),
    run: (m) => void (m as nn.mLSTMLayer).forward(x3((m as nn.mLSTMLayer).config.embedding_dim)),
  },
  {
    name: "xLSTMBlockStack",
    base: stackBase,
    build: (c) => new nn.xLSTMBlockStack(c as nn.xLSTMBlockStackConfig, { generator: gen }),
    run: (m) => void (m as nn.xLSTMBlockStack).forward(x3((m as nn.xLSTMBlockStack).config.embedding_dim)),
  },
  {
    name: "xLSTMLarge",
    base: () => ({ embedding_dim: 16, num_heads: 2, num_blocks: 2, vocab_size: 11, chunk_size: 4, ffn_round_up_to_multiple_of: 8, qk_dim_factor: 0.5, v_dim_factor: 1, ffn_proj_factor: 1.5, gate_soft_cap: 15, output_logit_soft_cap: 30, use_bias: false, mode: "train", weight_mode: "single", eps: 1e-6, norm_eps: 1e-6 }),
    build: (c) => new nn.xLSTMLarge(c as nn.xLSTMLargeConfig, { generator: gen }),
    run: (m) => {
      const c = (m as nn.xLSTMLarge).config;
      // "train" mode needs S to be a multiple of chunk_size (a documented forward-time RangeError)
      const S = c.mode === "train" ? c.chunk_size : 3;
      if (S > 64) return;
      (m as nn.xLSTMLarge).forward(Tensor.from(Int32Array.from({ length: S }, (_, i) => i % c.vocab_size), [1, S]));
    },
  },
  {
    name: "xLSTMLMModel",
    base: () => ({ ...stackBase(), vocab_size: 11, tie_weights: false, add_embedding_dropout: false }),
    build: (c) => new nn.xLSTMLMModel(c as nn.xLSTMLMModelConfig, { generator: gen }),
    run: (m) => {
      const V = (m as nn.xLSTMLMModel).config.vocab_size;
      (m as nn.xLSTMLMModel).forward(Tensor.from(Int32Array.from({ length: 3 }, (_, i) => i % V), [1, 3]));
    },
  },
];

const HOSTILE_VALUES: readonly unknown[] = [NaN, Infinity, -Infinity, -1, 0, -0, 0.5, 1.5, 2 ** 31, 2 ** 40, 2 ** 53 + 2, 1e300, "4", "", "all", "bogus", null, undefined, true, false, {}, [], [1, 2], [-1], [99], [0.5], [0, 0], () => 1, 4n];

/** Every [path, parent, key] of a config (nested objects and arrays included). */
function configPaths(c: Config): [string, Record<string, unknown>, string][] {
  const out: [string, Record<string, unknown>, string][] = [];
  const walk = (o: Record<string, unknown>, prefix: string, depth: number) => {
    for (const k of Object.keys(o)) {
      out.push([`${prefix}${k}`, o, k]);
      const v = o[k];
      if (depth < 4 && v !== null && typeof v === "object") walk(v as Record<string, unknown>, `${prefix}${k}.`, depth + 1);
    }
  };
  walk(c, "", 0);
  return out;
}

/** Errors raised by the JS engine or the allocator instead of a check: a config field went unvalidated. */
const ENGINE_ERROR = /Cannot read properties|Cannot convert|is not a function|is not iterable|Invalid typed array length|Invalid array length|Array buffer allocation failed|Maximum call stack|Cannot destructure|undefined is not|null is not/;

function finiteParams(m: nn.Module): string | null {
  for (const [k, t] of m.namedParameters()) {
    const d = t.f32();
    for (let i = 0; i < d.length; ++i) if (!Number.isFinite(d[i])) return k;
  }
  return null;
}

// ---- the tests -------------------------------------------------------------------------------------------------

describe("80 fuzz: hostile files and configs", function () {
  this.timeout(FUZZ_LONG ? 3_600_000 : 120_000);
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-fuzz-files-"));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Runs every loader on `bytes`; returns problems (empty when each loader loaded it or refused it properly). */
  async function checkLoaders(bytes: Buffer, what: string, stats: { loaded: number; refused: number; maxMs: number; maxAbOver: number }): Promise<string[]> {
    const file = path.join(dir, "case.safetensors");
    fs.writeFileSync(file, bytes);
    const problems: string[] = [];
    for (const L of LOADERS) {
      const ab0 = process.memoryUsage().arrayBuffers;
      const t0 = performance.now();
      let loaded = -1;
      try {
        loaded = await L.load(file);
        stats.loaded++;
      } catch (e) {
        stats.refused++;
        const bad = badOutcome(file, e);
        if (bad) problems.push(`${L.name} on ${what}: ${bad}`);
      }
      const ms = performance.now() - t0;
      stats.maxMs = Math.max(stats.maxMs, ms);
      // ArrayBuffer memory allocated by the read (what is still held, plus garbage not yet collected)
      const grew = process.memoryUsage().arrayBuffers - ab0;
      stats.maxAbOver = Math.max(stats.maxAbOver, grew - bytes.length);
      if (grew > (L.expansion + 1) * bytes.length + (1 << 20)) problems.push(`${L.name} on ${what}: ArrayBuffer memory grew by ${grew} bytes for a ${bytes.length}-byte file`);
      if (ms > 3000) problems.push(`${L.name} on ${what}: took ${ms.toFixed(0)} ms`);
      if (loaded > L.expansion * bytes.length) problems.push(`${L.name} on ${what}: returned ${loaded} tensor bytes from a ${bytes.length}-byte file`);
    }
    return problems;
  }

  it(`mutated safetensors files (${fuzzCases(1500, 40000)} seeded cases x ${LOADERS.length} loaders): CorruptFileError naming the file, bounded memory and time, nothing written`, async () => {
    const r = new Rand(FUZZ_SEED + 80);
    const cases = fuzzCases(1500, 40000);
    const stats = { loaded: 0, refused: 0, maxMs: 0, maxAbOver: 0 };
    const problems: string[] = [];
    // RSS is compared between the end of a warm-up quarter and the end (allocator caches and the heap settle first)
    let rss0 = 0;
    let base = validFile(r, dir);
    for (let c = 0; c < cases; ++c) {
      if (c === cases >> 2) {
        gc?.();
        rss0 = process.memoryUsage().rss;
      }
      if (c % 20 === 0) base = validFile(r, dir);
      const m = mutate(r, base);
      problems.push(...(await checkLoaders(m.bytes, `case #${c} (${m.what})`, stats)));
      if (problems.length > 20) break;
    }
    gc?.();
    const rssGrowMB = (process.memoryUsage().rss - rss0) / 2 ** 20;
    const listing = fs.readdirSync(dir).sort();
    assert.deepEqual(problems, [], problems.slice(0, 20).join("\n"));
    assert.deepEqual(listing, ["case.safetensors", "valid.safetensors"], `files appeared next to the inputs: ${listing.join(", ")}`);
    assert.ok(stats.refused > cases, `only ${stats.refused} refusals: the mutations do not reach the checks`);
    // (not under scripts/sanitize.sh: ASan's quarantine keeps freed memory resident on purpose)
    if (!process.env.XLSTM_UNDER_SANITIZER) assert.ok(rssGrowMB < 48, `RSS grew by ${rssGrowMB.toFixed(1)} MB over the last ${cases - (cases >> 2)} of ${cases} hostile files`);
    console.log(`      ${cases} files: ${stats.loaded} loads, ${stats.refused} refusals; slowest ${stats.maxMs.toFixed(1)} ms; ArrayBuffer growth at most ${stats.maxAbOver} bytes above the file size; RSS ${rssGrowMB >= 0 ? "+" : ""}${rssGrowMB.toFixed(1)} MB over the last ${cases - (cases >> 2)}`);
  });

  it("the golden fixtures, mutated in their headers and data", async function () {
    const fdir = fixturesDir();
    const files = fs.existsSync(fdir) ? fs.readdirSync(fdir).filter((f) => f.endsWith(".safetensors") && fs.statSync(path.join(fdir, f)).size < 400_000) : [];
    if (!files.length) this.skip();
    const r = new Rand(FUZZ_SEED + 81);
    const stats = { loaded: 0, refused: 0, maxMs: 0, maxAbOver: 0 };
    const problems: string[] = [];
    const cases = fuzzCases(120, 3000);
    for (let c = 0; c < cases && problems.length < 20; ++c) {
      const name = files[c % files.length];
      const m = mutate(r, fs.readFileSync(path.join(fdir, name)));
      problems.push(...(await checkLoaders(m.bytes, `${name} #${c} (${m.what})`, stats)));
    }
    assert.deepEqual(problems, [], problems.slice(0, 20).join("\n"));
    assert.ok(stats.refused > 0);
  });

  it("truncation at every byte of a small file, and at the boundaries of a fixture", async () => {
    const r = new Rand(FUZZ_SEED + 82);
    const f = path.join(dir, "t.safetensors");
    writeSafetensors(f, { a: Tensor.randn([3, 2], { generator: gen }), b: { dtype: "I64", shape: [2], bytes: r.bytes(16) }, c: { dtype: "F16", shape: [0], bytes: new Uint8Array(0) } }, { k: "v" }, { fsync: false });
    const whole = fs.readFileSync(f);
    const stats = { loaded: 0, refused: 0, maxMs: 0, maxAbOver: 0 };
    const problems: string[] = [];
    for (let at = 0; at < whole.length; ++at) {
      const p = await checkLoaders(whole.subarray(0, at), `truncated at ${at}/${whole.length}`, stats);
      problems.push(...p);
    }
    assert.deepEqual(problems, [], problems.slice(0, 20).join("\n"));
    assert.equal(stats.loaded, 0, "a truncated file loaded");
    fs.rmSync(f);
  });

  it("hand-crafted files: each refused with its specific problem", async () => {
    const data = Buffer.alloc(16);
    const cases: [string, Buffer, RegExp][] = [
      ["empty file", Buffer.alloc(0), /shorter than the 8-byte header length/],
      ["5 bytes", Buffer.alloc(5), /shorter than the 8-byte/],
      ["header length 2^64-1", Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7b, 0x7d]), /exceeds the 100000000-byte limit/],
      ["header length 'negative' (2^63)", Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x80]), Buffer.from("{}")]), /exceeds the/],
      ["header length just under the limit, tiny file", Buffer.concat([(() => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(MAX_HEADER_BYTES)); return b; })(), Buffer.from("{}")]), /runs past the end of the file/],
      ["not JSON", assemble("hello", data), /not valid JSON/],
      ["JSON array", assemble("[]", data), /expected a JSON object/],
      ["nested 100000 deep", assemble(`{"a":${"[".repeat(100000)}${"]".repeat(100000)}}`, Buffer.alloc(0)), /not valid JSON|expected \{dtype/],
      ["offsets past the end", assemble(JSON.stringify({ t: { dtype: "F32", shape: [8], data_offsets: [0, 32] } }), data), /run past the end of the data section/],
      ["negative offset", assemble(JSON.stringify({ t: { dtype: "F32", shape: [1], data_offsets: [-4, 0] } }), data), /data_offsets\[0\] is number -4/],
      ["overlap", assemble(JSON.stringify({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] }, b: { dtype: "F32", shape: [2], data_offsets: [8, 16] } }), data), /overlap/],
      ["gap", assemble(JSON.stringify({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [12, 16] } }), data), /gap of 4 bytes/],
      ["shape/size mismatch", assemble(JSON.stringify({ a: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }), data), /needs 12/],
      ["dtype/size mismatch", assemble(JSON.stringify({ a: { dtype: "F64", shape: [4], data_offsets: [0, 16] } }), data), /needs 32/],
      ["unknown dtype", assemble(JSON.stringify({ a: { dtype: "F128", shape: [1], data_offsets: [0, 16] } }), data), /unknown dtype "F128"/],
      ["shape product beyond 2^53", assemble(JSON.stringify({ a: { dtype: "F32", shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 16] } }), data), /more than 2\^53|needs/],
      ["fractional shape", assemble(JSON.stringify({ a: { dtype: "U8", shape: [15.5], data_offsets: [0, 16] } }), data), /shape\[0\] is number 15.5/],
      ["trailing bytes", assemble(JSON.stringify({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }), data), /8 trailing bytes/],
      ["lone surrogate escape in a key is valid JSON: loads", assemble(JSON.stringify({ "\ud800": { dtype: "U8", shape: [16], data_offsets: [0, 16] } }), data), /^$/],
    ];
    const problems: string[] = [];
    for (const [what, bytes, re] of cases) {
      const file = path.join(dir, "case.safetensors");
      fs.writeFileSync(file, bytes);
      for (const L of LOADERS) {
        try {
          await L.load(file);
          if (re.source !== "^$") problems.push(`${what}: ${L.name} loaded it`);
        } catch (e) {
          const bad = badOutcome(file, e);
          if (bad) problems.push(`${what}: ${L.name}: ${bad}`);
          else if (!re.test((e as Error).message)) problems.push(`${what}: ${L.name}: message does not say ${re}: ${(e as Error).message}`);
        }
      }
    }
    assert.deepEqual(problems, [], problems.join("\n"));
  });

  it("NaN/Inf data and keys with path characters are read back verbatim; writing creates only the target file", async () => {
    const sub = fs.mkdtempSync(path.join(dir, "keys-"));
    const vals = new Float32Array([NaN, -NaN, Infinity, -Infinity, -0, 3.4028235e38, 1e-45, 0]);
    new Uint32Array(vals.buffer)[1] = 0x7fc00123; // a NaN payload
    const tensors = new Map<string, Tensor>(); // a Map: "__proto__" is one of the names
    for (const k of NAMES) tensors.set(k, new Tensor(vals.slice(), [8]));
    const target = path.join(sub, "m.safetensors");
    writeSafetensors(target, tensors, { "../../x": "/etc/passwd" }, { fsync: false });
    assert.deepEqual(fs.readdirSync(sub), ["m.safetensors"]);
    for (const L of [readSafetensors, async (f: string) => readSafetensorsAsync(f)]) {
      const got = await L(target);
      assert.deepEqual([...got.tensors.keys()].sort(), [...NAMES].sort());
      for (const t of got.tensors.values()) assert.deepEqual(new Uint32Array(t.f32().buffer, t.f32().byteOffset, 8), new Uint32Array(vals.buffer));
      assert.equal(got.metadata["../../x"], "/etc/passwd");
    }
    assert.deepEqual(fs.readdirSync(sub), ["m.safetensors"]);
    assert.ok(!fs.existsSync(path.join(dir, "..", "x")));
  });

  it(`checkpoints (lib/checkpoint loadModel): ${fuzzCases(150, 4000)} mutated model files and hostile config metadata`, () => {
    const r = new Rand(FUZZ_SEED + 85);
    const sub = fs.mkdtempSync(path.join(dir, "ckpt-"));
    const file = path.join(sub, MODEL_FILE);
    const model = new nn.xLSTMLMModel({ ...stackBase(), vocab_size: 11 } as nn.xLSTMLMModelConfig, { generator: gen });
    writeModelFile(file, model as never, "xlstm", null);
    const good = fs.readFileSync(file);
    const tensors = readSafetensors(file).tensors;
    const problems: string[] = [];
    let loaded = 0, refused = 0;
    for (let c = 0; c < fuzzCases(150, 4000) && problems.length < 20; ++c) {
      let what: string;
      if (r.bool()) {
        const m = mutate(r, good);
        fs.writeFileSync(file, m.bytes);
        what = m.what;
      } else {
        const cfg = JSON.parse(JSON.stringify(model.config)) as Config;
        const [p, parent, key] = r.pick(configPaths(cfg));
        const v = r.pick(HOSTILE_VALUES.filter((x) => typeof x !== "function" && typeof x !== "bigint"));
        parent[key] = v;
        const meta: Record<string, string> = { format: "pt", config: r.bool(0.9) ? JSON.stringify(cfg) : "{not json", "xlstm.model_type": r.pick(["xlstm", "xlstm", "lstm", "gru"]) };
        writeSafetensors(file, tensors, meta, { fsync: false });
        what = `config ${p} = ${JSON.stringify(v)}, model_type ${meta["xlstm.model_type"]}`;
      }
      const ab0 = process.memoryUsage().arrayBuffers;
      try {
        loadModel(file);
        loaded++;
      } catch (e) {
        refused++;
        const msg = e instanceof Error ? e.message : String(e);
        if (!(e instanceof Error)) problems.push(`${what}: threw a non-Error`);
        else if (ENGINE_ERROR.test(msg)) problems.push(`${what}: unchecked: ${msg}`);
        else if (!msg.includes(file)) problems.push(`${what}: message does not name the file: ${e.constructor.name}: ${msg}`);
      }
      const grew = process.memoryUsage().arrayBuffers - ab0;
      if (grew > 8 * good.length + (4 << 20)) problems.push(`${what}: ArrayBuffer memory grew by ${grew} bytes for a ${good.length}-byte checkpoint`);
    }
    fs.rmSync(sub, { recursive: true, force: true });
    assert.deepEqual(problems, [], problems.join("\n"));
    assert.ok(loaded > 0 && refused > 0, `loaded ${loaded}, refused ${refused}`);
  });

  it("a checkpoint whose config asks for a far bigger model than its tensors is refused before allocating it", () => {
    const sub = fs.mkdtempSync(path.join(dir, "big-"));
    const file = path.join(sub, MODEL_FILE);
    const model = new nn.xLSTMLMModel({ ...stackBase(), vocab_size: 11 } as nn.xLSTMLMModelConfig, { generator: gen });
    writeModelFile(file, model as never, "xlstm", null);
    const tensors = readSafetensors(file).tensors;
    // ~16 G elements of embedding alone (64 GB) if it were built
    const cfg = { ...(JSON.parse(JSON.stringify(model.config)) as Config), vocab_size: 2 ** 24, embedding_dim: 1024 };
    writeSafetensors(file, tensors, { format: "pt", config: JSON.stringify(cfg), "xlstm.model_type": "xlstm" }, { fsync: false });
    const ab0 = process.memoryUsage().arrayBuffers;
    assert.throws(() => loadModel(file), (e: Error) => e.message.startsWith(`${file}: its config: needs more than`) && !e.message.includes("\n"));
    assert.ok(process.memoryUsage().arrayBuffers - ab0 < 64 << 20, "nothing big was allocated");
    fs.rmSync(sub, { recursive: true, force: true });
  });

  describe("model configs", () => {
    for (const C of CONSTRUCTORS) {
      it(`${C.name}: ${fuzzCases(160, 4000)} mutated configs end in TypeError/RangeError naming the field, or build a model that runs`, () => {
        const r = new Rand(FUZZ_SEED + 83 + C.name.length);
        const problems: string[] = [];
        let built = 0, refused = 0;
        // the base config itself must build and run
        const ok = C.build(C.base());
        C.run(ok, C.base());
        for (let c = 0; c < fuzzCases(160, 4000) && problems.length < 20; ++c) {
          const cfg = C.base();
          let field: string;
          let what: string;
          let arg: unknown = cfg;
          if (r.bool(0.05)) {
            arg = r.pick([null, undefined, 42, "config", [], () => 1, new Proxy({}, { get: () => { throw new Error("trap"); } })]);
            field = "";
            what = `config = ${typeof arg}`;
          } else {
            const paths = configPaths(cfg);
            const [p, parent, key] = r.pick(paths);
            const v = r.pick(HOSTILE_VALUES);
            if (v === undefined && r.bool()) delete parent[key];
            else parent[key] = v;
            field = key;
            what = `${p} = ${typeof v === "function" ? "function" : typeof v === "bigint" ? `${v}n` : JSON.stringify(v) ?? "undefined"}`;
          }
          let m: nn.Module | null = null;
          try {
            m = C.build(arg);
          } catch (e) {
            refused++;
            const msg = e instanceof Error ? e.message : String(e);
            if (msg === "trap") continue; // the config's own proxy threw: the caller's error surfaces unchanged
            if (!(e instanceof TypeError || e instanceof RangeError)) problems.push(`${C.name} ${what}: ${e instanceof Error ? e.constructor.name : typeof e}: ${msg}`);
            else if (ENGINE_ERROR.test(msg)) problems.push(`${C.name} ${what}: unchecked: ${msg}`);
            else if (field && !/^\d+$/.test(field) && !msg.includes(field)) problems.push(`${C.name} ${what}: message does not name ${field}: ${msg}`);
            continue;
          }
          built++;
          try {
            C.run(m, cfg);
          } catch (e) {
            problems.push(`${C.name} ${what}: accepted, but forward threw ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
            continue;
          }
          const bad = finiteParams(m);
          if (bad) problems.push(`${C.name} ${what}: accepted, but initialised ${bad} with non-finite values`);
        }
        assert.deepEqual(problems, [], problems.join("\n"));
        assert.ok(refused > 0 && built > 0, `built ${built}, refused ${refused}`);
      });
    }
  });

  describe("loadStateDict", () => {
    it(`${fuzzCases(300, 6000)} hostile state dicts: errors name the key; a refused load changes no parameter`, () => {
      const r = new Rand(FUZZ_SEED + 84);
      const problems: string[] = [];
      const models = [
        () => new nn.LSTM({ input_size: 3, hidden_size: 4, num_layers: 2 }),
        () => new nn.sLSTMLayer({ embedding_dim: 8, num_heads: 2, conv1d_kernel_size: 2 }, { generator: gen }),
        () => new nn.xLSTMLMModel({ ...stackBase(), vocab_size: 11 } as nn.xLSTMLMModelConfig, { generator: gen }),
      ];
      let loaded = 0, refused = 0;
      for (let c = 0; c < fuzzCases(300, 6000) && problems.length < 20; ++c) {
        const m = r.pick(models)();
        const before = new Map([...m.namedParameters()].map(([k, t]) => [k, t.f32().slice()]));
        const sd: Map<string, unknown> = new Map([...m.stateDict()].map(([k, t]) => [k, new Tensor(t.f32().map(() => r.uniform()), [...t.shape])]));
        const keys = [...sd.keys()];
        const key = r.pick(keys);
        let what: string;
        switch (r.int(9)) {
          case 0:
            sd.delete(key);
            what = `without ${key}`;
            break;
          case 1:
            sd.set(r.pick(["extra", "../../x", "__proto__", `${key}.x`, ""]), Tensor.zeros([1]));
            what = "an unexpected key";
            break;
          case 2: {
            const t = sd.get(key) as Tensor;
            sd.set(key, Tensor.zeros(r.pick([[...t.shape, 1], t.shape.slice(1), [t.numel + 1], [0], []])));
            what = `${key} with a wrong shape`;
            break;
          }
          case 3: {
            const t = sd.get(key) as Tensor;
            sd.set(key, Tensor.zeros([...t.shape], { dtype: r.pick(["int32", "int64"] as const) }));
            what = `${key} as an integer tensor`;
            break;
          }
          case 4:
            sd.set(key, r.pick([null, undefined, 3, "w", {}, [1, 2], new Float32Array(4), { shape: [1], dtype: "float32" }]));
            what = `${key} not a Tensor`;
            break;
          case 5: {
            const t = sd.get(key) as Tensor;
            const d = new Float32Array(t.numel);
            const dt = new Tensor(d, [...t.shape]);
            structuredClone(d.buffer, { transfer: [d.buffer] });
            sd.set(key, dt);
            what = `${key} with detached storage`;
            if (t.numel === 0) continue;
            break;
          }
          case 6: {
            const t = sd.get(key) as Tensor;
            sd.set(key, t.to("bfloat16"));
            what = `${key} as bfloat16 (accepted)`;
            break;
          }
          case 7: {
            const t = sd.get(key) as Tensor;
            t.f32().fill(r.pick([NaN, Infinity]));
            what = `${key} non-finite (accepted, copied verbatim)`;
            break;
          }
          default:
            what = "valid";
        }
        const arg = r.bool(0.3) ? Object.fromEntries(sd) : sd;
        try {
          m.loadStateDict(arg as Map<string, Tensor>);
          loaded++;
          for (const [k, t] of m.namedParameters()) {
            const src = (sd.get(k) as Tensor).to("float32").f32();
            if (!t.f32().every((v, i) => Object.is(v, src[i]) || (Number.isNaN(v) && Number.isNaN(src[i]))))
              if (!(m instanceof nn.sLSTMLayer)) problems.push(`${what}: ${k} was not copied verbatim`);
          }
        } catch (e) {
          refused++;
          const msg = e instanceof Error ? e.message : String(e);
          if (!(e instanceof TypeError || e instanceof RangeError)) problems.push(`${what}: ${e instanceof Error ? e.constructor.name : typeof e}: ${msg}`);
          else if (ENGINE_ERROR.test(msg)) problems.push(`${what}: unchecked: ${msg}`);
          else if (!msg.includes("loadStateDict") && !msg.includes(key.split(".").pop()!)) problems.push(`${what}: message names neither loadStateDict nor the key: ${msg}`);
          for (const [k, t] of m.namedParameters())
            if (!t.f32().every((v, i) => Object.is(v, before.get(k)![i]))) {
              problems.push(`${what}: refused (${msg}) but ${k} changed`);
              break;
            }
        }
      }
      assert.deepEqual(problems, [], problems.join("\n"));
      assert.ok(loaded > 0 && refused > 0, `loaded ${loaded}, refused ${refused}`);
    });
  });
});
