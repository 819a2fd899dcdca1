// Datasets and batch sampling (data layer). A dataset is a token-id array; batches are (x, y) windows of it with y
// shifted by one, drawn as in "Dive into Deep Learning" §9.3:
//   sequential (seq_data_iter_sequential): a random offset in [0, seqLen], the rest reshaped to batchSize rows,
//     consecutive windows of each row in consecutive batches (so a model may carry its state across batches);
//   random (seq_data_iter_random): a random offset in [0, seqLen), non-overlapping windows in shuffled order.
// Every epoch's randomness comes from its own generator seeded by (seed, epoch), so a position (epoch, index)
// fully determines the next batch: resuming needs no RNG state, and the same seed gives the same batches.
import * as fs from "fs";
import { Generator } from "../rng";

/** Where a sampler is: the epoch and the index of the next batch in it. */
export interface DataPosition {
  epoch: number;
  index: number;
}

export interface Batch {
  /** Inputs [batchSize, seqLen], row-major. */
  x: Int32Array;
  /** Targets [batchSize, seqLen]: the token after each input. */
  y: Int32Array;
  batchSize: number;
  seqLen: number;
  /** The position of this batch. */
  epoch: number;
  index: number;
}

export type SamplingMode = "sequential" | "random";

export interface BatchSamplerOptions {
  batchSize: number;
  seqLen: number;
  /** Default "random". */
  mode?: SamplingMode;
  /** Seed of the per-epoch offsets and shuffles. Default 0. */
  seed?: number;
}

/**
 * Read a UTF-8 text file.
 * @throws Error with a one-line message naming the file when it cannot be read or is empty
 */
export function readTextFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${file}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : (e as Error).message}`);
  }
  if (text.length === 0) throw new Error(`${file} is empty`);
  return text;
}

/**
 * Split ids into a training part and a validation part (the last `valFraction` of the tokens, contiguous, so no
 * window crosses the boundary).
 * @throws RangeError for a fraction outside [0, 1)
 */
export function trainValSplit(ids: Int32Array, valFraction: number): { train: Int32Array; val: Int32Array } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError(`trainValSplit: valFraction must be in [0, 1), got ${valFraction}`);
  const nVal = Math.floor(ids.length * valFraction);
  return { train: ids.subarray(0, ids.length - nVal), val: ids.subarray(ids.length - nVal) };
}

function epochSeed(seed: number, epoch: number): number {
  // mix (seed, epoch) into 32 bits (murmur3-style finaliser); the seed's high bits are folded in
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul((Math.floor(seed / 2 ** 32) >>> 0) + 0x632be5ab, 0x27d4eb2d) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

interface EpochPlan {
  epoch: number;
  /** sequential: start of row b's stream; random: start of each window, in batch order */
  starts: Int32Array;
  numBatches: number;
}

export class BatchSampler {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly mode: SamplingMode;
  readonly seed: number;
  private plan: EpochPlan | null = null;
  /** The next batch's position. */
  position: DataPosition = { epoch: 0, index: 0 };

  /**
   * @param ids the token stream (not copied)
   * @throws RangeError for non-positive sizes, an unknown mode, or a stream too short for one batch
   * @example const s = new BatchSampler(ids, { batchSize: 32, seqLen: 35, mode: "sequential", seed: 0 });
   *          const { x, y } = s.next();
   */
  constructor(
    readonly ids: Int32Array,
    options: BatchSamplerOptions,
  ) {
    const { batchSize, seqLen } = options;
    if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new RangeError(`BatchSampler: batchSize must be a positive integer, got ${batchSize}`);
    if (!(Number.isInteger(seqLen) && seqLen > 0)) throw new RangeError(`BatchSampler: seqLen must be a positive integer, got ${seqLen}`);
    const mode = options.mode ?? "random";
    if (mode !== "sequential" && mode !== "random") throw new RangeError(`BatchSampler: mode must be "sequential" or "random", got ${String(mode)}`);
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed)) throw new RangeError(`BatchSampler: seed must be an integer, got ${seed}`);
    // The worst case is the largest offset: sequential seqLen, random seqLen - 1.
    const need = batchSize * seqLen + (mode === "sequential" ? seqLen : seqLen - 1) + 1;
    if (ids.length < need)
      throw new RangeError(`BatchSampler: ${ids.length} tokens are too few for one batch of ${batchSize} x ${seqLen} (need ${need}); use a smaller batch size or sequence length, or more text`);
    this.batchSize = batchSize;
    this.seqLen = seqLen;
    this.mode = mode;
    this.seed = seed;
  }

  private planFor(epoch: number): EpochPlan {
    if (this.plan && this.plan.epoch === epoch) return this.plan;
    const gen = new Generator(epochSeed(this.seed, epoch));
    const B = this.batchSize, S = this.seqLen, n = this.ids.length;
    let plan: EpochPlan;
    if (this.mode === "sequential") {
      const offset = gen.int(S + 1);
      const perRow = Math.floor((n - offset - 1) / B);
      const starts = Int32Array.from({ length: B }, (_, b) => offset + b * perRow);
      plan = { epoch, starts, numBatches: Math.floor(perRow / S) };
    } else {
      const offset = gen.int(S);
      const numSub = Math.floor((n - offset - 1) / S);
      const starts = Int32Array.from({ length: numSub }, (_, i) => offset + i * S);
      for (let i = numSub - 1; i > 0; --i) {
        const j = gen.int(i + 1);
        const t = starts[i];
        starts[i] = starts[j];
        starts[j] = t;
      }
      plan = { epoch, starts, numBatches: Math.floor(numSub / B) };
    }
    this.plan = plan;
    return plan;
  }

  /** Number of batches in `epoch` (it can differ by one between epochs: the offset is random). */
  numBatches(epoch: number): number {
    return this.planFor(epoch).numBatches;
  }

  /**
   * The batch at (epoch, index), without moving the sampler.
   * @throws RangeError for an index outside the epoch
   */
  batch(epoch: number, index: number): Batch {
    const plan = this.planFor(epoch);
    if (!(Number.isInteger(index) && index >= 0 && index < plan.numBatches))
      throw new RangeError(`BatchSampler.batch: index ${index} is outside epoch ${epoch}'s ${plan.numBatches} batches`);
    const B = this.batchSize, S = this.seqLen, ids = this.ids;
    const x = new Int32Array(B * S), y = new Int32Array(B * S);
    for (let b = 0; b < B; ++b) {
      const start = this.mode === "sequential" ? plan.starts[b] + index * S : plan.starts[index * B + b];
      x.set(ids.subarray(start, start + S), b * S);
      y.set(ids.subarray(start + 1, start + 1 + S), b * S);
    }
    return { x, y, batchSize: B, seqLen: S, epoch, index };
  }

  /** The batch at the current position; moves to the next one (the next epoch after the last batch). */
  next(): Batch {
    const { epoch, index } = this.position;
    const b = this.batch(epoch, index);
    this.position = index + 1 < this.numBatches(epoch) ? { epoch, index: index + 1 } : { epoch: epoch + 1, index: 0 };
    return b;
  }

  /** Every batch of one epoch, in order. */
  *epoch(epoch: number): IterableIterator<Batch> {
    const n = this.numBatches(epoch);
    for (let i = 0; i < n; ++i) yield this.batch(epoch, i);
  }

  /** Move to a saved position. @throws RangeError for a position outside its epoch */
  seek(position: DataPosition): void {
    const { epoch, index } = position ?? ({} as DataPosition);
    if (!(Number.isInteger(epoch) && epoch >= 0)) throw new RangeError(`BatchSampler.seek: epoch must be an integer >= 0, got ${epoch}`);
    if (!(Number.isInteger(index) && index >= 0 && index < this.numBatches(epoch)))
      throw new RangeError(`BatchSampler.seek: index ${index} is outside epoch ${epoch}'s ${this.numBatches(epoch)} batches`);
    this.position = { epoch, index };
  }
}

/**
 * Fixed evaluation batches: consecutive non-overlapping windows from the start of `ids`, batchSize rows each, at
 * most `maxBatches` batches (all that fit when omitted). Rows of the last batch that do not fit are dropped.
 */
export function evaluationBatches(ids: Int32Array, batchSize: number, seqLen: number, maxBatches = Infinity): Batch[] {
  const windows = Math.floor((ids.length - 1) / seqLen);
  const n = Math.min(Math.floor(windows / batchSize), maxBatches);
  const out: Batch[] = [];
  for (let i = 0; i < n; ++i) {
    const x = new Int32Array(batchSize * seqLen), y = new Int32Array(batchSize * seqLen);
    for (let b = 0; b < batchSize; ++b) {
      const start = (i * batchSize + b) * seqLen;
      x.set(ids.subarray(start, start + seqLen), b * seqLen);
      y.set(ids.subarray(start + 1, start + 1 + seqLen), b * seqLen);
    }
    out.push({ x, y, batchSize, seqLen, epoch: 0, index: i });
  }
  return out;
}
