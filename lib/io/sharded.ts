// Sharded safetensors checkpoints, as large models are published (I/O layer): several `*.safetensors` files plus an
// index JSON `{"metadata": {...}, "weight_map": {"<key>": "<shard file>", ...}}` (the Hugging Face layout,
// `model.safetensors.index.json` next to `model-00001-of-0000N.safetensors`, ...). Also reads the two other
// layouts xLSTM Large checkpoints come in: one `model.safetensors`, or `model_0.safetensors`, `model_1...` without
// an index (xlstm/xlstm_large/from_pretrained.py).
// defines: openShardedCheckpoint -> ShardedCheckpoint (lazy: shard headers are read when a key of that shard is
// first asked for, tensor bytes when the tensor is), writeShardedCheckpoint, ShardIndex.
// Shards are memory-mapped by default (lib/io/safetensors.ts, { mmap: true }): a tensor read in its stored dtype
// (bf16 weights read as bfloat16, float32 as float32) is a view of the shard's mapped pages, so loading a bf16
// model copies nothing onto the JS heap and touches only the pages used; { mmap: false } reads instead.
//
// Errors name what is wrong: a shard file listed in the index but absent (Error, with the shard's path and one of
// its keys) at open; a key absent from the checkpoint, or from the shard the index points to (RangeError); a stored
// dtype that cannot become the dtype asked for (TypeError naming the key, its shard and both dtypes).
import * as fs from "fs";
import * as path from "path";
import { CorruptFileError } from "../errors";
import { Tensor, bf16ToFloat, floatToBf16 } from "../tensor";
import { openSafetensors, SafetensorsFile, SafetensorsDType, SafetensorsMetadata, writeSafetensors } from "./safetensors";
import { writeFileAtomic } from "./atomic";

/** The index file's content. */
export interface ShardIndex {
  metadata: Record<string, unknown>;
  /** state_dict key -> shard file name (relative to the index's directory) */
  weight_map: Record<string, string>;
}

/** Float dtypes a tensor can be read as. */
export type FloatDType = "float32" | "bfloat16";

const FLOAT_STORED = new Set<SafetensorsDType>(["F32", "BF16", "F16"]);

function q(s: string): string {
  return JSON.stringify(s);
}

/**
 * A checkpoint spread over several safetensors files. Only the index (or the shards' headers when there is no
 * index) is read on open; each tensor is read from its shard when asked for, so a checkpoint larger than memory can
 * be consumed one tensor at a time (e.g. converted to bfloat16 on the way in). Close it (or `using`) to release
 * the shard file descriptors.
 */
export class ShardedCheckpoint implements Disposable {
  /** Directory holding the shards. */
  readonly dir: string;
  /** The index file, or null for a single file / model_<n> layout. */
  readonly indexFile: string | null;
  /** The index's "metadata" (for index-less layouts: the first shard's safetensors metadata). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Shard file names in order. */
  readonly shards: readonly string[];
  readonly #map: Map<string, string>;
  readonly #open = new Map<string, SafetensorsFile>();
  readonly #mmap: boolean;

  /** @internal use openShardedCheckpoint */
  constructor(dir: string, indexFile: string | null, metadata: Record<string, unknown>, map: Map<string, string>, opened: Map<string, SafetensorsFile>, mmap = true) {
    this.dir = dir;
    this.#mmap = mmap;
    this.indexFile = indexFile;
    this.metadata = metadata;
    this.#map = map;
    this.shards = [...new Set(map.values())];
    for (const [k, v] of opened) this.#open.set(k, v);
  }

  /** Every key, in the index's order. */
  keys(): string[] {
    return [...this.#map.keys()];
  }

  has(key: string): boolean {
    return this.#map.has(key);
  }

  /** Number of tensors. */
  get size(): number {
    return this.#map.size;
  }

  /** The shard file (name relative to `dir`) that holds `key`. @throws RangeError when the key is absent */
  shardOf(key: string): string {
    const shard = this.#map.get(key);
    if (shard === undefined) {
      const where = this.indexFile ?? this.dir;
      const some = this.keys().slice(0, 3).map(q).join(", ");
      throw new RangeError(`sharded checkpoint ${where}: no tensor ${q(key)} (${this.size} keys${some ? `, e.g. ${some}` : ""})`);
    }
    return shard;
  }

  #file(shard: string): SafetensorsFile {
    let f = this.#open.get(shard);
    if (!f) {
      f = openSafetensors(path.join(this.dir, shard), { mmap: this.#mmap });
      this.#open.set(shard, f);
    }
    return f;
  }

  #infoOf(key: string): { file: SafetensorsFile; shard: string; dtype: SafetensorsDType; shape: readonly number[] } {
    const shard = this.shardOf(key);
    const file = this.#file(shard);
    if (!file.has(key)) throw new RangeError(`sharded checkpoint: the index maps ${q(key)} to ${shard}, but ${path.join(this.dir, shard)} has no such tensor`);
    const info = file.info(key);
    return { file, shard, dtype: info.dtype, shape: info.shape };
  }

  /** dtype (safetensors name), shape and shard of a tensor; opens its shard's header if needed. */
  info(key: string): { dtype: SafetensorsDType; shape: readonly number[]; shard: string } {
    const { shard, dtype, shape } = this.#infoOf(key);
    return { dtype, shape, shard };
  }

  /**
   * A tensor, read from its shard. Without `dtype`, as stored (F32 -> float32, BF16 -> bfloat16, ...; see
   * SafetensorsFile.get). With `dtype`, a floating-point tensor is converted to it (F32/BF16/F16 -> float32 exactly,
   * -> bfloat16 rounding to nearest even). Mapped shards: a tensor in its stored dtype views the mapping (aligned
   * F32/BF16); converted ones are fresh arrays.
   * @throws RangeError for a missing key; TypeError when the stored dtype is not floating point but `dtype` asks for
   *   one (the message names the key, its shard, the stored and the wanted dtype)
   */
  get(key: string, dtype?: FloatDType): Tensor {
    const { file, shard, dtype: stored } = this.#infoOf(key);
    if (dtype === undefined) return file.get(key);
    if (dtype !== "float32" && dtype !== "bfloat16") throw new TypeError(`sharded checkpoint: dtype must be "float32" or "bfloat16", got ${String(dtype)}`);
    if (!FLOAT_STORED.has(stored))
      throw new TypeError(`sharded checkpoint: tensor ${q(key)} in ${shard} has dtype ${stored}, expected a floating-point tensor (F32, BF16 or F16) to read as ${dtype}`);
    const t = file.get(key);
    if (t.dtype === dtype) return t;
    if (dtype === "float32") return new Tensor(bf16ToFloat(new Float32Array(t.numel), t.data as Uint16Array), t.shape);
    return new Tensor(floatToBf16(new Uint16Array(t.numel), t.data as Float32Array), t.shape);
  }

  /** Release every open shard. Idempotent. */
  close(): void {
    for (const f of this.#open.values()) f.close();
    this.#open.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return `ShardedCheckpoint(${this.indexFile ?? this.dir}, ${this.size} tensors in ${this.shards.length} shard${this.shards.length === 1 ? "" : "s"})`;
  }
}

function readIndex(file: string): ShardIndex {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new CorruptFileError(file, `not a valid index JSON: ${(e as Error).message}`);
  }
  const obj = parsed as { metadata?: unknown; weight_map?: unknown };
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new CorruptFileError(file, "the index must be a JSON object");
  const wm = obj.weight_map;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) throw new CorruptFileError(file, `"weight_map" must be an object mapping keys to shard files`);
  for (const [k, v] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof v !== "string" || v.length === 0) throw new CorruptFileError(file, `weight_map[${q(k)}] must be a shard file name, got ${JSON.stringify(v)}`);
    const norm = path.normalize(v);
    if (path.isAbsolute(v) || norm.startsWith("..")) throw new CorruptFileError(file, `weight_map[${q(k)}] = ${q(v)} points outside the checkpoint directory`);
  }
  const md = obj.metadata;
  if (md !== undefined && md !== null && (typeof md !== "object" || Array.isArray(md))) throw new CorruptFileError(file, `"metadata" must be an object`);
  return { metadata: (md as Record<string, unknown>) ?? {}, weight_map: wm as Record<string, string> };
}

/** How a sharded checkpoint is read. */
export interface OpenShardedOptions {
  /** Memory-map the shards (see the file header). Default true; falls back to reads where mapping is unavailable. */
  mmap?: boolean;
}

function fromIndex(indexFile: string, mmap: boolean): ShardedCheckpoint {
  const index = readIndex(indexFile);
  const dir = path.dirname(indexFile);
  const map = new Map(Object.entries(index.weight_map));
  const byShard = new Map<string, string>();
  for (const [k, s] of map) if (!byShard.has(s)) byShard.set(s, k);
  for (const [shard, key] of byShard) {
    const p = path.join(dir, shard);
    if (!fs.existsSync(p)) throw new Error(`sharded checkpoint ${indexFile}: shard ${shard} is missing (${p} does not exist; it holds ${q(key)} among others)`);
  }
  return new ShardedCheckpoint(dir, indexFile, index.metadata, map, new Map(), mmap);
}

function fromFiles(dir: string, files: string[], mmap: boolean): ShardedCheckpoint {
  const map = new Map<string, string>();
  const opened = new Map<string, SafetensorsFile>();
  let metadata: Record<string, unknown> = {};
  try {
    for (const name of files) {
      const f = openSafetensors(path.join(dir, name), { mmap });
      opened.set(name, f);
      if (opened.size === 1) metadata = { ...f.metadata };
      for (const k of f.keys()) {
        const prev = map.get(k);
        if (prev !== undefined) throw new CorruptFileError(path.join(dir, name), `tensor ${q(k)} is also in ${prev}`);
        map.set(k, name);
      }
    }
  } catch (e) {
    for (const f of opened.values()) f.close();
    throw e;
  }
  return new ShardedCheckpoint(dir, null, metadata, map, opened, mmap);
}

/**
 * Open a checkpoint: a directory (with `*.safetensors.index.json`, else `model.safetensors`, else `model_0.safetensors`,
 * `model_1.safetensors`, ...), an index JSON file, or one `.safetensors` file.
 * @throws Error naming a shard file the index lists but that does not exist; CorruptFileError for an invalid index
 * @example
 *   using ckpt = openShardedCheckpoint("xlstm-7b");
 *   const w = ckpt.get("lm_head.weight", "bfloat16");
 */
export function openShardedCheckpoint(p: string, options: OpenShardedOptions = {}): ShardedCheckpoint {
  if (typeof p !== "string" || p.length === 0) throw new TypeError(`openShardedCheckpoint: path must be a non-empty string, got ${typeof p === "string" ? "an empty string" : typeof p}`);
  const mmap = options.mmap ?? true;
  if (typeof mmap !== "boolean") throw new TypeError(`openShardedCheckpoint: options.mmap must be a boolean, got ${typeof mmap}`);
  const st = fs.statSync(p);
  if (st.isFile()) {
    if (p.endsWith(".json")) return fromIndex(p, mmap);
    return fromFiles(path.dirname(p), [path.basename(p)], mmap);
  }
  const names = fs.readdirSync(p);
  const indexes = names.filter((n) => n.endsWith(".safetensors.index.json"));
  if (indexes.length > 1) throw new Error(`openShardedCheckpoint: ${p} holds several index files (${indexes.join(", ")}); pass the one to use`);
  if (indexes.length === 1) return fromIndex(path.join(p, indexes[0]), mmap);
  if (names.includes("model.safetensors")) return fromFiles(p, ["model.safetensors"], mmap);
  const numbered: string[] = [];
  for (let n = 0; names.includes(`model_${n}.safetensors`); ++n) numbered.push(`model_${n}.safetensors`);
  if (numbered.length) return fromFiles(p, numbered, mmap);
  throw new Error(`openShardedCheckpoint: ${p} has no *.safetensors.index.json, model.safetensors or model_0.safetensors`);
}

export interface WriteShardedOptions {
  /** Largest shard in bytes of tensor data (a tensor larger than this gets a shard of its own). Default 2 GiB. */
  maxShardBytes?: number;
  /** File name stem: `<base>-00001-of-00003.safetensors`, `<base>.safetensors.index.json`. Default "model". */
  baseName?: string;
  /** Extra entries for the index's "metadata" (total_size is always written). */
  metadata?: Record<string, unknown>;
  /** String metadata stored in every shard's safetensors header. */
  shardMetadata?: SafetensorsMetadata;
}

/**
 * Write `tensors` as a sharded checkpoint in `dir` (created if needed): shards of at most `maxShardBytes` filled in
 * the given key order, then the index JSON (every file written atomically, the index last).
 * @returns the shard file names and the index file's path
 */
export function writeShardedCheckpoint(dir: string, tensors: Map<string, Tensor> | Record<string, Tensor>, options: WriteShardedOptions = {}): { shards: string[]; indexFile: string } {
  const maxBytes = options.maxShardBytes ?? 2 * 1024 ** 3;
  if (!(Number.isFinite(maxBytes) && maxBytes > 0)) throw new RangeError(`writeShardedCheckpoint: maxShardBytes must be a positive number, got ${maxBytes}`);
  const base = options.baseName ?? "model";
  if (!/^[\w.-]+$/.test(base)) throw new RangeError(`writeShardedCheckpoint: baseName must be a plain file name stem, got ${q(base)}`);
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  if (entries.length === 0) throw new RangeError("writeShardedCheckpoint: no tensors to write");
  const groups: [string, Tensor][][] = [[]];
  let bytes = 0, total = 0;
  for (const [k, t] of entries) {
    if (!(t instanceof Tensor)) throw new TypeError(`writeShardedCheckpoint: ${q(k)} is not a Tensor`);
    const b = t.data.byteLength;
    if (bytes > 0 && bytes + b > maxBytes) {
      groups.push([]);
      bytes = 0;
    }
    groups[groups.length - 1].push([k, t]);
    bytes += b;
    total += b;
  }
  fs.mkdirSync(dir, { recursive: true });
  const n = groups.length;
  const pad = (i: number) => String(i).padStart(5, "0");
  const shards = groups.map((_, i) => `${base}-${pad(i + 1)}-of-${pad(n)}.safetensors`);
  const weightMap: Record<string, string> = {};
  groups.forEach((g, i) => {
    writeSafetensors(path.join(dir, shards[i]), new Map(g), options.shardMetadata);
    for (const [k] of g) weightMap[k] = shards[i];
  });
  const index: ShardIndex = { metadata: { ...(options.metadata ?? {}), total_size: total }, weight_map: weightMap };
  const indexFile = path.join(dir, `${base}.safetensors.index.json`);
  writeFileAtomic(indexFile, new TextEncoder().encode(JSON.stringify(index, null, 2) + "\n"));
  return { shards, indexFile };
}
