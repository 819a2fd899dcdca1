// Fuzz driver for the native binding in test/82.fuzz-api (run in a child process by test/support/fuzz.ts, so a
// native crash or hang fails the test with the case that caused it; the public ops have their own driver,
// test/82.fuzz-ops-driver.ts):
//   fuzzNative: every export of the native binding (discovered at run time, so new exports are covered at once).
//     Exports with a template below get structured mutations of a valid call; all get garbage calls.
// Oracle: a call either returns (for "variant" cases, with the same results as the plain call) or throws an Error;
// native errors must start with "<export>: " (the binding's convention, so the message names the function).
// Files: the only export that takes a path is mmapFile, which opens read-only (O_RDONLY, no O_CREAT) and maps
// privately (copy-on-write), so no hostile call can create, truncate or write a file anywhere; its valid calls map
// small files in a temporary directory made for this process (removed at exit).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { native } from "../../lib/native";
import { ABSURD_NUMBERS, describeArg, detached, Progress, Rand, resizableF32, sharedF32, wrongKinds } from "./fuzz";

type Dims = Record<string, number>;

/** Longest typed array a template allocates; larger requests get a 1-element array (a size mismatch). */
const CAP = 1 << 16;

function A(r: Rand, n: number): Float32Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > CAP) return new Float32Array(1);
  return r.f32(n, 0.5);
}
function Z(n: number): Float32Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > CAP) return new Float32Array(1);
  return new Float32Array(n);
}
function I32(n: number, fill: (i: number) => number): Int32Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > CAP) return new Int32Array(1);
  return Int32Array.from({ length: n }, (_, i) => fill(i));
}

function U8(n: number, fill: (i: number) => number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > CAP) return new Uint8Array(1);
  return Uint8Array.from({ length: n }, (_, i) => fill(i));
}
function U16(r: Rand, n: number): Uint16Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > CAP) return new Uint16Array(1);
  return Uint16Array.from({ length: n }, () => (r.int(2) ? 0x3f80 : 0xbf00) + r.int(128));
}

/** File sizes of mmapFile's valid calls. */
const MMAP_SIZES = [0, 1, 7, 4096] as const;
let mmapDir: string | null = null;
/** A file of n bytes (one of MMAP_SIZES) in a temporary directory of this process; other n: a path that is no file. */
function mmapPath(n: number): string {
  if (!mmapDir) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-fuzz-mmap-"));
    mmapDir = dir;
    process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    for (const size of MMAP_SIZES) fs.writeFileSync(path.join(dir, `f${size}`), Uint8Array.from({ length: size }, (_, i) => i & 0xff));
  }
  if ((MMAP_SIZES as readonly number[]).includes(n)) return path.join(mmapDir, `f${n}`);
  return n % 2 ? path.join(mmapDir, "missing") : mmapDir;
}

interface Spec {
  name: string;
  /** candidate values of each size in valid calls */
  dims: Record<string, readonly number[]>;
  /** a valid call's arguments for sizes d */
  build(d: Dims, r: Rand): unknown[];
  /** indices of output arrays (written by the call) */
  outs: number[];
  /** indices of size / number arguments */
  nums: number[];
  /** returns a Promise */
  async?: boolean;
  /** needs a CUDA device: valid calls may throw "CUDA is not available" */
  cuda?: boolean;
  /** skip the "extreme sizes" mutation (e.g. setNumThreads would really create the threads) */
  noExtreme?: boolean;
  /** extra hostile values for the "kind" mutation (e.g. a disposed session handle) */
  hostile?: () => unknown[];
  /** the call changes hidden state (a session): no second call to compare results with */
  stateful?: boolean;
}

const UNARY = ["exp", "log", "sigmoid", "logsigmoid", "tanh", "softplus", "relu", "gelu", "geluTanh", "silu", "neg", "affine"];
const BINARY = ["add", "sub", "mul", "div"];
const REDUCE = ["sum", "mean", "max"];
const small = [1, 2, 3] as const;
const small0 = [0, 1, 2, 3] as const;

function numelOf(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

function randShape(r: Rand, maxNd: number, sizes: readonly number[]): number[] {
  return Array.from({ length: r.int(maxNd + 1) }, () => r.pick(sizes));
}

/** aShape, bShape broadcast-compatible (b possibly shorter, with 1s), and the output shape. */
function broadcastPair(r: Rand): [number[], number[], number[]] {
  const out = randShape(r, 4, [0, 1, 2, 3]);
  const a = out.map((s) => (r.bool(0.25) ? 1 : s));
  const drop = r.int(out.length + 1);
  const b = out.slice(drop).map((s) => (r.bool(0.25) ? 1 : s));
  const o = a.map((s, i) => {
    const j = i - drop;
    const t = j >= 0 ? b[j] : 1;
    return s === 1 ? t : s;
  });
  return r.bool() ? [a, b, o] : [b, a, o.length === a.length ? o : o];
}

function gemmArgs(d: Dims, r: Rand, ta: boolean, tb: boolean): unknown[] {
  return [ta, tb, d.M, d.N, d.K, 1.5, A(r, d.M * d.K), A(r, d.K * d.N), r.pick([0, 1, 0.5]), A(r, d.M * d.N)];
}

const recurrentDims = { B: small, S: [1, 2, 5], NH: [1, 2], DH: [1, 2, 4] };
function recFwd(d: Dims, r: Rand, ns: number): unknown[] {
  const H = d.NH * d.DH;
  return [Z(d.B * d.S * H), Z(ns * d.S * d.B * H), Z(d.B * d.S * 4 * H), A(r, d.B * d.S * 4 * H), r.bool() ? A(r, ns * d.B * H) : null, A(r, d.NH * d.DH * 4 * d.DH), A(r, 4 * H), d.B, d.S, d.NH, d.DH];
}
function recBwd(d: Dims, r: Rand, ns: number, slstm: boolean): unknown[] {
  const H = d.NH * d.DH;
  const args: unknown[] = [Z(d.B * d.S * 4 * H), Z(d.NH * d.DH * 4 * d.DH), Z(4 * H), r.bool() ? Z(ns * d.B * H) : null, A(r, d.B * d.S * 4 * H), A(r, ns * d.S * d.B * H), A(r, d.B * d.S * H), r.bool() ? A(r, ns * d.B * H) : null, r.bool() ? A(r, ns * d.B * H) : null, A(r, d.NH * d.DH * 4 * d.DH), d.B, d.S, d.NH, d.DH];
  if (slstm) args.push(r.bool());
  return args;
}

const mlstmDims = { B: [1, 2], NH: [1, 2], S: [1, 2, 3, 7], DHQK: [1, 2, 4], DHV: [1, 3, 4], L: [1, 2, 4, 64] };
function savedLen(chunk: boolean, d: Dims): number {
  try {
    return chunk ? native.mlstmChunkwiseSavedSize(d.B, d.NH, d.S, d.DHQK, d.DHV, d.L) : native.mlstmRecurrentSavedSize(d.B, d.NH, d.S, d.DHQK, d.DHV);
  } catch {
    return 1;
  }
}
function mlstmFwd(d: Dims, r: Rand, chunk: boolean): unknown[] {
  const bh = d.B * d.NH;
  const st = r.bool();
  const args: unknown[] = [Z(bh * d.S * d.DHV), Z(bh * d.DHQK * d.DHV), Z(bh * d.DHQK), Z(bh), r.bool(0.8) ? Z(savedLen(chunk, d)) : null, A(r, bh * d.S * d.DHQK), A(r, bh * d.S * d.DHQK), A(r, bh * d.S * d.DHV), A(r, bh * d.S), A(r, bh * d.S), st ? A(r, bh * d.DHQK * d.DHV) : null, st ? A(r, bh * d.DHQK) : null, st ? A(r, bh) : null, d.B, d.NH, d.S, d.DHQK, d.DHV];
  if (chunk) args.push(d.L);
  args.push(1e-6);
  if (chunk) args.push(r.bool());
  return args;
}
function mlstmBwd(d: Dims, r: Rand, chunk: boolean): unknown[] {
  const bh = d.B * d.NH;
  // a real forward first, so `saved` holds what the backward expects
  const fw = mlstmFwd(d, r, chunk);
  fw[4] = Z(savedLen(chunk, d));
  try {
    ((chunk ? native.mlstmChunkwiseForward : native.mlstmRecurrentForward) as (...a: unknown[]) => void)(...fw);
  } catch {
    /* sizes out of range: the backward will throw too */
  }
  const args: unknown[] = [Z(bh * d.S * d.DHQK), Z(bh * d.S * d.DHQK), Z(bh * d.S * d.DHV), Z(bh * d.S), Z(bh * d.S), r.bool() ? Z(bh * d.DHQK * d.DHV) : null, r.bool() ? Z(bh * d.DHQK) : null, r.bool() ? Z(bh) : null, fw[4]];
  if (chunk) args.push(fw[0]);
  args.push(A(r, bh * d.S * d.DHV), r.bool() ? A(r, bh * d.DHQK * d.DHV) : null, r.bool() ? A(r, bh * d.DHQK) : null, fw[5], fw[6], fw[7], fw[8], fw[9], d.B, d.NH, d.S, d.DHQK, d.DHV);
  if (chunk) args.push(d.L);
  args.push(1e-6);
  return args;
}

/** CPU nn exports that have CUDA twins (csrc/binding/cuda_nn.cc): their templates serve the twins too. */
const NN_TWIN_SPECS: Spec[] = [
  ...(["softmaxForward", "logSoftmaxForward"] as const).map(
    (name): Spec => ({ name, dims: { rows: small0, cols: [1, 2, 7, 33] }, build: (d, r) => [Z(d.rows * d.cols), A(r, d.rows * d.cols), d.rows, d.cols], outs: [0], nums: [2, 3] }),
  ),
  ...(["softmaxBackward", "logSoftmaxBackward"] as const).map(
    (name): Spec => ({ name, dims: { rows: small0, cols: [1, 2, 7, 33] }, build: (d, r) => [Z(d.rows * d.cols), A(r, d.rows * d.cols), A(r, d.rows * d.cols), d.rows, d.cols], outs: [0], nums: [3, 4] }),
  ),
  {
    name: "crossEntropyForward",
    dims: { n: small0, v: [1, 2, 5] },
    build: (d, r) => {
      const t = I32(d.n, () => (r.bool(0.2) ? -100 : r.int(d.v)));
      return [Z(d.n), Z(d.n), Z(d.n), A(r, d.n * d.v), r.bool() ? BigInt64Array.from(t, (x) => BigInt(x)) : t, d.n, d.v, -100];
    },
    outs: [0, 1, 2],
    nums: [5, 6, 7],
  },
  {
    name: "crossEntropyBackward",
    dims: { n: small0, v: [1, 2, 5] },
    build: (d, r) => {
      const t = I32(d.n, () => (r.bool(0.2) ? -100 : r.int(d.v)));
      return [Z(d.n * d.v), A(r, d.n * d.v), A(r, d.n), A(r, d.n), t, A(r, d.n), d.n, d.v, -100];
    },
    outs: [0],
    nums: [6, 7, 8],
  },
  {
    name: "layerNormForward",
    dims: { rows: small0, groups: [1, 2], dim: [1, 3, 8] },
    build: (d, r) => [Z(d.rows * d.groups * d.dim), Z(d.rows * d.groups), Z(d.rows * d.groups), A(r, d.rows * d.groups * d.dim), r.bool() ? A(r, d.groups * d.dim) : null, r.bool() ? A(r, d.groups * d.dim) : null, d.rows, d.groups, d.dim, 1e-5, r.bool()],
    outs: [0, 1, 2],
    nums: [6, 7, 8, 9],
  },
  {
    name: "layerNormBackward",
    dims: { rows: small0, groups: [1, 2], dim: [1, 3, 8] },
    build: (d, r) => {
      const n = d.rows * d.groups * d.dim, rg = d.rows * d.groups, gd = d.groups * d.dim;
      return [Z(n), r.bool() ? Z(gd) : null, r.bool() ? Z(gd) : null, A(r, n), A(r, n), A(r, rg), A(r, rg), r.bool() ? A(r, gd) : null, d.rows, d.groups, d.dim, r.bool()];
    },
    outs: [0, 1, 2],
    nums: [8, 9, 10],
  },
  ...(["embeddingForward", "embeddingBackward"] as const).map(
    (name): Spec => ({
      name,
      dims: { n: small0, v: [1, 3, 9], e: [1, 4] },
      build: (d, r) => {
        const idx = I32(d.n, () => r.int(d.v));
        const ix = r.bool() ? BigInt64Array.from(idx, (x) => BigInt(x)) : idx;
        return name === "embeddingForward" ? [Z(d.n * d.e), A(r, d.v * d.e), ix, d.v, d.e] : [Z(d.v * d.e), A(r, d.n * d.e), ix, d.v, d.e];
      },
      outs: [0],
      nums: [3, 4],
    }),
  ),
];
/** Argument count of each NN_TWIN_SPECS export (the twins' Emulate entries take `writes` after them). */
const NN_TWIN_ARGC: Record<string, number> = {
  softmaxForward: 4,
  logSoftmaxForward: 4,
  softmaxBackward: 5,
  logSoftmaxBackward: 5,
  crossEntropyForward: 8,
  crossEntropyBackward: 9,
  layerNormForward: 11,
  layerNormBackward: 12,
  embeddingForward: 5,
  embeddingBackward: 5,
};
const cudaTwinName = (name: string, suffix: string) => `cuda${name[0].toUpperCase()}${name.slice(1)}${suffix}`;

// Templates shared by CPU exports and their CUDA twins (cuda<Export>Host, csrc/binding/cuda_misc.cc) [cuda-misc-fuzz-templates]
const FUZZ_REDUCE: Spec = {
  name: "reduce",
  dims: {},
  build: (_d, r) => {
    const shape = randShape(r, 4, [1, 2, 3]);
    const axes = r.shuffle(shape.map((_, i) => i)).slice(0, r.int(shape.length + 1)).map((a) => (r.bool() ? a - shape.length : a));
    const kept = shape.filter((_, i) => !axes.some((a) => (a < 0 ? a + shape.length : a) === i));
    const op = r.pick(REDUCE);
    return [op, A(r, numelOf(shape)), shape, axes, Z(numelOf(kept)), op === "max" && r.bool() ? new BigInt64Array(numelOf(kept)) : null];
  },
  outs: [4, 5],
  nums: [],
};
const FUZZ_REDUCE_BACKWARD: Spec = {
  name: "reduceBackward",
  dims: {},
  build: (_d, r) => {
    const shape = randShape(r, 4, [1, 2, 3]);
    const axes = r.shuffle(shape.map((_, i) => i)).slice(0, r.int(shape.length + 1));
    const kept = shape.filter((_, i) => !axes.includes(i));
    const op = r.pick(REDUCE);
    const x = A(r, numelOf(shape));
    const argmax = new BigInt64Array(numelOf(kept));
    if (op === "max") native.reduce("max", x, shape, axes, Z(numelOf(kept)), argmax);
    return [op, A(r, numelOf(kept)), shape, axes, Z(numelOf(shape)), op === "max" ? argmax : null];
  },
  outs: [4],
  nums: [],
};
const FUZZ_CONV1D_FORWARD: Spec = {
  name: "causalConv1dForward",
  dims: { b: small0, s: small0, f: [1, 2, 5], k: [1, 2, 4] },
  build: (d, r) => [Z(d.b * d.s * d.f), A(r, d.b * d.s * d.f), A(r, d.f * d.k), r.bool() ? A(r, d.f) : null, d.b, d.s, d.f, d.k],
  outs: [0],
  nums: [4, 5, 6, 7],
};
const FUZZ_CONV1D_BACKWARD: Spec = {
  name: "causalConv1dBackward",
  dims: { b: small0, s: small0, f: [1, 2, 5], k: [1, 2, 4] },
  build: (d, r) => [r.bool(0.8) ? Z(d.b * d.s * d.f) : null, r.bool(0.8) ? Z(d.f * d.k) : null, r.bool(0.8) ? Z(d.f) : null, A(r, d.b * d.s * d.f), A(r, d.b * d.s * d.f), A(r, d.f * d.k), d.b, d.s, d.f, d.k],
  outs: [0, 1, 2],
  nums: [6, 7, 8, 9],
};
const FUZZ_DROPOUT_FORWARD: Spec = {
  name: "dropoutForward",
  dims: { n: [0, 1, 5, 33] },
  build: (d, r) => [Z(d.n), U8(d.n, () => 0), A(r, d.n), r.pick([0, 0.1, 0.5, 1]), r.int(2 ** 32), r.int(2 ** 32)],
  outs: [0, 1],
  nums: [3, 4, 5],
};
const FUZZ_DROPOUT_BACKWARD: Spec = {
  name: "dropoutBackward",
  dims: { n: [0, 1, 5, 33] },
  build: (d, r) => [Z(d.n), A(r, d.n), U8(d.n, () => r.int(2)), r.pick([0, 0.1, 0.5, 1])],
  outs: [0],
  nums: [3],
};
const FUZZ_PERMUTE: Spec = {
  name: "permute",
  dims: {},
  build: (_d, r) => {
    const shape = randShape(r, 5, [0, 1, 2, 3]);
    const perm = r.shuffle(shape.map((_, i) => i));
    const n = numelOf(shape);
    const kind = r.int(5);
    const mk = (): Float32Array | Int32Array | BigInt64Array | Uint16Array | Uint8Array =>
      kind === 0 ? A(r, n) : kind === 1 ? new Int32Array(n).fill(7) : kind === 2 ? new BigInt64Array(n).fill(-3n) : kind === 3 ? new Uint16Array(n).fill(9) : new Uint8Array(n).fill(5);
    return [mk(), mk(), shape, perm];
  },
  outs: [0],
  nums: [],
};
const FUZZ_ADAMW_STEP: Spec = {
  name: "adamwStep",
  dims: { n: [0, 1, 5, 33] },
  build: (d, r) => [A(r, d.n), A(r, d.n), Z(d.n), A(r, d.n), 1e-3, 0.9, 0.999, 1e-8, 0.01, r.range(1, 5)],
  outs: [0, 1, 2],
  nums: [4, 5, 6, 7, 8, 9],
};
const FUZZ_SGD_STEP: Spec = {
  name: "sgdStep",
  dims: { n: [0, 1, 5, 33] },
  build: (d, r) => [A(r, d.n), A(r, d.n), A(r, d.n), 0.1, 0.9, 0, 0.01, true, r.range(0, 2) === 0],
  outs: [0, 1],
  nums: [3, 4, 5, 6],
};
const FUZZ_SUM_SQUARES: Spec = { name: "sumSquares", dims: { n: [0, 1, 5, 33] }, build: (d, r) => [A(r, d.n)], outs: [], nums: [] };
const FUZZ_SCALE_IN_PLACE: Spec = { name: "scaleInPlace", dims: { n: [0, 1, 5, 33] }, build: (d, r) => [A(r, d.n), 0.5], outs: [0], nums: [1] };

const SPECS: Spec[] = [
  { name: "getNumThreads", dims: {}, build: () => [], outs: [], nums: [] },
  { name: "setNumThreads", dims: {}, build: () => [native.getNumThreads()], outs: [], nums: [0], noExtreme: true },
  { name: "getSimdLevel", dims: {}, build: () => [], outs: [], nums: [] },
  { name: "setSimdLevel", dims: {}, build: () => [native.getSimdLevel()], outs: [], nums: [] },
  { name: "backends", dims: {}, build: () => [], outs: [], nums: [] },
  // detaches what it is given: every valid call gets fresh buffers, and a second call cannot repeat the first
  // (the counts they give V8 back are the buffers' own sizes, which a scope took off when it allocated them)
  {
    name: "releaseHostBuffers", dims: { n: [0, 1, 3], bytes: [0, 8, 4096] }, stateful: true, noExtreme: true, outs: [], nums: [],
    build: (d) => { native.reportHostMemory(-d.n * d.bytes); return [Array.from({ length: d.n }, () => new ArrayBuffer(d.bytes)), Array.from({ length: d.n }, () => d.bytes)]; },
  },
  // a balanced pair of calls (a build takes off what its call adds back): the fuzz must not leave V8's count skewed
  { name: "reportHostMemory", dims: { n: [0, 4096] }, build: (d) => { native.reportHostMemory(-d.n); return [d.n]; }, outs: [], nums: [0], stateful: true, noExtreme: true },
  // gemm
  ...(["gemm", "gemmAsync", "cudaGemmHost"] as const).map(
    (name): Spec => ({ name, dims: { M: small0, N: small0, K: small0 }, build: (d, r) => gemmArgs(d, r, r.bool(), r.bool()), outs: [9], nums: [2, 3, 4, 5, 8], async: name === "gemmAsync", cuda: name === "cudaGemmHost" }),
  ),
  {
    name: "gemmStrided",
    dims: { M: small0, N: small0, K: small0, pa: [0, 1, 3], pb: [0, 2], pc: [0, 1] },
    build: (d, r) => {
      const ta = r.bool(), tb = r.bool();
      const [ar, ac] = ta ? [d.K, d.M] : [d.M, d.K];
      const [br, bc] = tb ? [d.N, d.K] : [d.K, d.N];
      const lda = Math.max(1, ac) + d.pa, ldb = Math.max(1, bc) + d.pb, ldc = Math.max(1, d.N) + d.pc;
      const span = (rows: number, cols: number, ld: number) => (rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols) + r.int(2);
      return [ta, tb, d.M, d.N, d.K, 1.25, A(r, span(ar, ac, lda)), lda, A(r, span(br, bc, ldb)), ldb, r.pick([0, 0.5]), A(r, span(d.M, d.N, ldc)), ldc];
    },
    outs: [11],
    nums: [2, 3, 4, 5, 7, 9, 10, 12],
  },
  {
    name: "gemmPlan",
    dims: { M: [0, 1, 7, 64, 300], N: [0, 1, 7, 64, 300], K: [0, 1, 7, 64, 3000] },
    build: (d, r) => [r.bool(), r.bool(), d.M, d.N, d.K, Math.max(1, d.K) + r.int(3), Math.max(1, d.N) + r.int(3)],
    outs: [],
    nums: [2, 3, 4, 5, 6],
  },
  {
    name: "gemmBatched",
    dims: { batch: small0, M: small0, N: small0, K: small0 },
    build: (d, r) => {
      const sa = r.bool(0.3) ? 0 : d.M * d.K, sb = r.bool(0.3) ? 0 : d.K * d.N, sc = d.M * d.N + r.int(2);
      const len = (s: number, per: number) => (d.batch === 0 ? 0 : (d.batch - 1) * s + per);
      return [r.bool(), r.bool(), d.batch, d.M, d.N, d.K, 1, A(r, len(sa, d.M * d.K)), sa, A(r, len(sb, d.K * d.N)), sb, 0.5, A(r, len(sc, d.M * d.N)), sc];
    },
    outs: [12],
    nums: [2, 3, 4, 5, 6, 8, 10, 11, 13],
  },
  {
    name: "cudaGemmTileCoverage",
    dims: { M: small0, N: small0, K: small0 },
    build: (d, r) => [r.bool(), r.bool(), d.M, d.N, d.K, I32(d.M * d.N, () => 0)],
    outs: [5],
    nums: [2, 3, 4],
    cuda: true,
  },
  {
    name: "cudaGemmBf16TileCoverage",
    dims: { M: small0, N: small0 },
    build: (d, r) => [r.bool(), r.bool(), d.M, d.N, I32(d.M * d.N, () => 0)],
    outs: [4],
    nums: [2, 3],
    cuda: !native.backends().cuda.compiled,
  },
  {
    name: "cudaGemmBf16Tile",
    dims: { batch: [1, 3], M: small0, N: small0 },
    build: (d) => [d.batch, d.M, d.N],
    outs: [],
    nums: [0, 1, 2],
    cuda: !native.backends().cuda.compiled,
  },
  // elementwise
  ...(["unary", "cudaUnary"] as const).map(
    (name): Spec => ({ name, dims: { n: [0, 1, 5, 17, 64] }, build: (d, r) => [r.pick(UNARY), A(r, d.n), Z(d.n), 2, 0.5], outs: [2], nums: [3, 4], cuda: name === "cudaUnary" }),
  ),
  ...(["unaryBackward", "cudaUnaryBackward"] as const).map(
    (name): Spec => ({ name, dims: { n: [0, 1, 5, 17, 64] }, build: (d, r) => [r.pick(UNARY), A(r, d.n), A(r, d.n), A(r, d.n), Z(d.n), 1.5], outs: [4], nums: [5], cuda: name === "cudaUnaryBackward" }),
  ),
  {
    name: "gatedUnary",
    dims: { rows: [0, 1, 3], P: [1, 5, 17] },
    build: (d, r) => [r.pick(UNARY), A(r, d.rows * 2 * d.P), d.rows, d.P, Z(d.rows * d.P), 2, 0.5],
    outs: [4],
    nums: [2, 3, 5, 6],
  },
  {
    name: "gatedUnaryBackward",
    dims: { rows: [0, 1, 3], P: [1, 5, 17] },
    build: (d, r) => [r.pick(UNARY), A(r, d.rows * 2 * d.P), A(r, d.rows * d.P), d.rows, d.P, Z(d.rows * 2 * d.P), 2, 0.5],
    outs: [5],
    nums: [3, 4, 6, 7],
  },
  { name: "ffnBlockSavedSize", dims: { N: [0, 1, 3], E: [1, 4], P: [1, 3] }, build: (d) => [d.N, d.E, d.P], outs: [], nums: [0, 1, 2] },
  {
    name: "ffnBlockForward",
    dims: { N: [0, 1, 3], E: [1, 4], P: [1, 3] },
    build: (d, r) => [Z(d.N * d.E), Z(d.N * d.E + 2 * d.N + 3 * d.N * d.P), A(r, d.N * d.E), A(r, d.E), A(r, 2 * d.P * d.E), A(r, d.E * d.P), d.N, d.E, d.P, 1e-5, true, r.pick(UNARY), 1, 0],
    outs: [0, 1],
    nums: [6, 7, 8, 9, 12, 13],
  },
  {
    name: "ffnBlockBackward",
    dims: { N: [0, 1, 3], E: [1, 4], P: [1, 3] },
    build: (d, r) => [Z(d.N * d.E), Z(d.E), Z(2 * d.P * d.E), Z(d.E * d.P), A(r, d.N * d.E), A(r, d.N * d.E), A(r, d.N * d.E + 2 * d.N + 3 * d.N * d.P), A(r, d.E), A(r, 2 * d.P * d.E), A(r, d.E * d.P), d.N, d.E, d.P, 1e-5, true, r.pick(UNARY), 1, 0],
    outs: [0, 1, 2, 3],
    nums: [10, 11, 12, 13, 16, 17],
  },
  ...(["binary", "cudaBinary"] as const).map(
    (name): Spec => ({
      name,
      dims: {},
      build: (_d, r) => {
        const [as, bs, os] = broadcastPair(r);
        return [r.pick(BINARY), A(r, numelOf(as)), as, A(r, numelOf(bs)), bs, Z(numelOf(os))];
      },
      outs: [5],
      nums: [],
      cuda: name === "cudaBinary",
    }),
  ),
  ...(["binaryBackward", "cudaBinaryBackward"] as const).map(
    (name): Spec => ({
      name,
      dims: {},
      build: (_d, r) => {
        const [as, bs, os] = broadcastPair(r);
        const n = numelOf(os);
        return [r.pick(BINARY), A(r, numelOf(as)), as, A(r, numelOf(bs)), bs, A(r, n), r.bool(0.8) ? Z(n) : null, r.bool(0.8) ? Z(n) : null];
      },
      outs: [6, 7],
      nums: [],
      cuda: name === "cudaBinaryBackward",
    }),
  ),
  FUZZ_REDUCE,
  FUZZ_REDUCE_BACKWARD,
  // nn
  ...NN_TWIN_SPECS,
  FUZZ_CONV1D_FORWARD,
  FUZZ_CONV1D_BACKWARD,
  FUZZ_DROPOUT_FORWARD,
  FUZZ_DROPOUT_BACKWARD,
  { name: "philox4x32", dims: {}, build: (_d, r) => [[r.int(2 ** 32), r.int(2 ** 32), 0, 1], [r.int(2 ** 32), 7]], outs: [], nums: [] },
  // fused recurrences
  ...(["slstmForward", "slstmForwardAsync", "lstmForward", "lstmForwardAsync"] as const).map(
    (name): Spec => ({ name, dims: recurrentDims, build: (d, r) => recFwd(d, r, name.startsWith("slstm") ? 4 : 2), outs: [0, 1, 2], nums: [7, 8, 9, 10], async: name.endsWith("Async") }),
  ),
  ...(["slstmBackward", "slstmBackwardAsync", "lstmBackward", "lstmBackwardAsync"] as const).map(
    (name): Spec => ({ name, dims: recurrentDims, build: (d, r) => recBwd(d, r, name.startsWith("slstm") ? 4 : 2, name.startsWith("slstm")), outs: [0, 1, 2, 3], nums: [10, 11, 12, 13], async: name.endsWith("Async") }),
  ),
  // headwise
  {
    name: "headwiseLinearForward",
    dims: { rows: small0, NB: [1, 2, 3], I: [1, 4], O: [1, 2, 4], pad: [0, 0, 1, 3] },
    build: (d, r) => {
      const ld = d.NB * d.O + d.pad, off = r.int(d.pad + 1);
      return [Z(d.rows * ld), A(r, d.rows * d.NB * d.I), A(r, d.NB * d.O * d.I), r.bool() ? A(r, d.NB * d.O) : null, d.rows, d.NB, d.I, d.O, off, ld];
    },
    outs: [0],
    nums: [4, 5, 6, 7, 8, 9],
  },
  {
    name: "headwiseLinearBackward",
    dims: { rows: small0, NB: [1, 2, 3], I: [1, 4], O: [1, 2, 4], pad: [0, 0, 1, 3] },
    build: (d, r) => {
      const ld = d.NB * d.O + d.pad, off = r.int(d.pad + 1);
      return [r.bool(0.8) ? Z(d.rows * d.NB * d.I) : null, r.bool(0.8) ? Z(d.NB * d.O * d.I) : null, r.bool() ? Z(d.NB * d.O) : null, A(r, d.rows * ld), A(r, d.rows * d.NB * d.I), A(r, d.NB * d.O * d.I), d.rows, d.NB, d.I, d.O, off, ld, r.bool()];
    },
    outs: [0, 1, 2],
    nums: [6, 7, 8, 9, 10, 11],
  },
  FUZZ_PERMUTE,
  // mLSTM
  { name: "mlstmChunkwiseSavedSize", dims: mlstmDims, build: (d) => [d.B, d.NH, d.S, d.DHQK, d.DHV, d.L], outs: [], nums: [0, 1, 2, 3, 4, 5] },
  { name: "mlstmRecurrentSavedSize", dims: mlstmDims, build: (d) => [d.B, d.NH, d.S, d.DHQK, d.DHV], outs: [], nums: [0, 1, 2, 3, 4] },
  ...(["mlstmChunkwiseForward", "mlstmChunkwiseForwardAsync", "mlstmRecurrentForward", "mlstmRecurrentForwardAsync"] as const).map((name): Spec => {
    const chunk = name.startsWith("mlstmChunkwise");
    return { name, dims: mlstmDims, build: (d, r) => mlstmFwd(d, r, chunk), outs: [0, 1, 2, 3, 4], nums: chunk ? [13, 14, 15, 16, 17, 18, 19] : [13, 14, 15, 16, 17, 18], async: name.endsWith("Async") };
  }),
  ...(["mlstmChunkwiseBackward", "mlstmChunkwiseBackwardAsync", "mlstmRecurrentBackward", "mlstmRecurrentBackwardAsync"] as const).map((name): Spec => {
    const chunk = name.startsWith("mlstmChunkwise");
    const first = chunk ? 18 : 17;
    return { name, dims: mlstmDims, build: (d, r) => mlstmBwd(d, r, chunk), outs: [0, 1, 2, 3, 4, 5, 6, 7], nums: Array.from({ length: chunk ? 7 : 6 }, (_, i) => first + i), async: name.endsWith("Async") };
  }),
  // optimizer steps (csrc/binding/optim.cc)
  FUZZ_ADAMW_STEP,
  FUZZ_SGD_STEP,
  FUZZ_SUM_SQUARES,
  FUZZ_SCALE_IN_PLACE,
  // bfloat16 (csrc/binding/bf16.cc)
  {
    name: "bf16Linear",
    dims: { rows: small0, inF: [0, 1, 5, 17], outF: [0, 1, 3] },
    build: (d, r) => [Z(d.rows * d.outF), A(r, d.rows * d.inF), U16(r, d.outF * d.inF), r.bool() ? A(r, d.outF) : null, d.rows, d.inF, d.outF, r.bool()],
    outs: [0],
    nums: [4, 5, 6],
  },
  { name: "bf16FromF32", dims: { n: [0, 1, 5, 33] }, build: (d, r) => [new Uint16Array(d.n > CAP ? 1 : d.n), A(r, d.n)], outs: [0], nums: [] },
  { name: "bf16ToF32", dims: { n: [0, 1, 5, 33] }, build: (d, r) => [Z(d.n), U16(r, d.n)], outs: [0], nums: [] },
  { name: "bf16Sum", dims: { n: [0, 1, 5, 33] }, build: (d, r) => [U16(r, d.n)], outs: [], nums: [] },
  { name: "setFloat32MatmulPrecision", dims: {}, build: () => ["highest"], outs: [], nums: [] },
  { name: "getFloat32MatmulPrecision", dims: {}, build: () => [], outs: [], nums: [] },
  { name: "bf16DotAvailable", dims: {}, build: () => [], outs: [], nums: [] },
  { name: "bf16SetDotEnabled", dims: {}, build: () => [true], outs: [], nums: [] },
  { name: "bf16AmxAvailable", dims: {}, build: () => [], outs: [], nums: [] },
  { name: "bf16LinearPath", dims: { rows: [1, 4096] }, build: (d) => [d.rows, true], outs: [], nums: [0] },
  { name: "bf16SetAmxEnabled", dims: {}, build: () => [true], outs: [], nums: [] },
  // memory-mapped files (csrc/binding/mmap.cc): files of n bytes in this process's temporary directory; the
  // "extreme" sizes give the directory itself or a missing file in it (both refused with an Error naming mmapFile)
  { name: "mmapFile", dims: { n: MMAP_SIZES }, build: (d) => [mmapPath(d.n)], outs: [], nums: [] },
  // the fused mLSTM layer (csrc/binding/mlstm_layer.cc): tiny layers; the backward and release get a fresh handle
  ...(["mlstmLayerForward", "mlstmLayerBackward", "mlstmLayerRelease"] as const).map(
    (name): Spec => ({
      name,
      dims: { B: [1, 2], S: [1, 3], E: [1, 3], NH: [1, 2], Bq: [1, 2], m: [1, 2], K: [1, 2] },
      build: (d, r) => mlstmLayerArgs(name, d, r),
      outs: name === "mlstmLayerForward" ? [0] : name === "mlstmLayerBackward" ? [...Array(14).keys()] : [],
      nums: name === "mlstmLayerForward" ? [15, 16, 17, 18, 19, 20, 21, 22] : name === "mlstmLayerBackward" ? [30, 31, 32, 33, 34, 35, 36, 37] : [],
      hostile: () => [releasedMlstmLayerHandle(), {}, Object.create(null)],
      stateful: name === "mlstmLayerRelease",
    }),
  ),
  // CUDA twins of the nn kernels (csrc/binding/cuda_nn.cc) [cuda-nn-fuzz]
  ...NN_TWIN_SPECS.map((s): Spec => ({ ...s, name: cudaTwinName(s.name, "Host"), cuda: true })),
  ...NN_TWIN_SPECS.map(
    (s): Spec => ({
      ...s,
      name: cudaTwinName(s.name, "Emulate"),
      // writes: one counter per element of every output given (outputs concatenated in argument order)
      build: (d, r) => {
        const a = s.build(d, r);
        const len = s.outs.reduce((t, i) => t + (ArrayBuffer.isView(a[i]) ? (a[i] as Float32Array).length : 0), 0);
        return [...a, new Int32Array(len)];
      },
      outs: [...s.outs, NN_TWIN_ARGC[s.name]],
      // host replays: they run wherever CUDA was compiled in, GPU or not
      cuda: !native.backends().cuda.compiled,
    }),
  ),
  // CUDA twins of reduce/conv1d/dropout/optim/permute (csrc/binding/cuda_misc.cc) [cuda-misc-fuzz]
  { ...FUZZ_REDUCE, name: "cudaReduceHost", cuda: true },
  { ...FUZZ_REDUCE_BACKWARD, name: "cudaReduceBackwardHost", cuda: true },
  { ...FUZZ_CONV1D_FORWARD, name: "cudaCausalConv1dForwardHost", cuda: true },
  { ...FUZZ_CONV1D_BACKWARD, name: "cudaCausalConv1dBackwardHost", cuda: true },
  { ...FUZZ_DROPOUT_FORWARD, name: "cudaDropoutForwardHost", cuda: true },
  { ...FUZZ_DROPOUT_BACKWARD, name: "cudaDropoutBackwardHost", cuda: true },
  { ...FUZZ_PERMUTE, name: "cudaPermuteHost", cuda: true },
  { ...FUZZ_ADAMW_STEP, name: "cudaAdamwStepHost", cuda: true },
  { ...FUZZ_SUM_SQUARES, name: "cudaSumSquaresHost", cuda: true },
  { ...FUZZ_SCALE_IN_PLACE, name: "cudaScaleInPlaceHost", cuda: true },
  { name: "cudaSumAllHost", dims: { n: [0, 1, 5, 33] }, build: (d, r) => [A(r, d.n)], outs: [], nums: [], cuda: true },
  // host replays of the reduce / conv1d launches: the CPU export's arguments plus writes (one counter per element of
  // every output given); they run wherever CUDA was compiled in, GPU or not
  ...([[FUZZ_REDUCE, 6], [FUZZ_REDUCE_BACKWARD, 6], [FUZZ_CONV1D_FORWARD, 8], [FUZZ_CONV1D_BACKWARD, 10]] as const).map(
    ([s, argc]): Spec => ({
      ...s,
      name: cudaTwinName(s.name, "Emulate"),
      build: (d, r) => {
        const a = s.build(d, r);
        const len = s.outs.reduce((t, i) => t + (ArrayBuffer.isView(a[i]) ? (a[i] as Float32Array).length : 0), 0);
        return [...a, new Int32Array(len)];
      },
      outs: [...s.outs, argc],
      cuda: !native.backends().cuda.compiled,
    }),
  ),
  {
    name: "cudaReduceCoverage",
    dims: {},
    build: (_d, r) => {
      const shape = randShape(r, 4, [0, 1, 2, 3]);
      const axes = r.shuffle(shape.map((_, i) => i)).slice(0, r.int(shape.length + 1));
      return [shape, axes, I32(numelOf(shape), () => 0)];
    },
    outs: [2],
    nums: [],
    cuda: true,
  },
  { name: "cudaSumCoverage", dims: { n: [0, 1, 5, 33] }, build: (d) => [I32(d.n, () => 0)], outs: [0], nums: [], cuda: true },
  {
    name: "cudaCausalConv1dCoverage",
    dims: { b: small0, s: small0, f: [1, 2, 5], k: [1, 2, 4] },
    build: (d) => [d.b, d.s, d.f, d.k, I32(d.b * d.s * d.f, () => 0), I32(d.f * d.k, () => 0), I32(d.f, () => 0)],
    outs: [4, 5, 6],
    nums: [0, 1, 2, 3],
    cuda: true,
  },
  {
    name: "cudaPermuteCoverage",
    dims: {},
    build: (_d, r) => {
      const shape = randShape(r, 5, [0, 1, 2, 3]);
      return [shape, r.shuffle(shape.map((_, i) => i)), I32(numelOf(shape), () => 0)];
    },
    outs: [2],
    nums: [],
    cuda: true,
  },
  // CUDA twins of the sLSTM/LSTM recurrences (csrc/binding/cuda_recurrent.cc) [cuda-recurrent-fuzz]
  // (the float32 and the bf16 autocast forms, cuda/recurrent_tc.cuh, take the same arguments)
  ...(["cudaSlstmForwardHost", "cudaLstmForwardHost", "cudaSlstmForwardBf16Host", "cudaLstmForwardBf16Host"] as const).map(
    (name): Spec => ({ name, dims: recurrentDims, build: (d, r) => recFwd(d, r, name.startsWith("cudaSlstm") ? 4 : 2), outs: [0, 1, 2], nums: [7, 8, 9, 10], cuda: true }),
  ),
  ...(["cudaSlstmBackwardHost", "cudaLstmBackwardHost", "cudaSlstmBackwardBf16Host", "cudaLstmBackwardBf16Host"] as const).map(
    (name): Spec => ({ name, dims: recurrentDims, build: (d, r) => recBwd(d, r, name.startsWith("cudaSlstm") ? 4 : 2, name.startsWith("cudaSlstm")), outs: [0, 1, 2, 3], nums: [10, 11, 12, 13], cuda: true }),
  ),
  ...(["cudaSlstmForwardEmulate", "cudaLstmForwardEmulate", "cudaSlstmForwardBf16Emulate", "cudaLstmForwardBf16Emulate"] as const).map(
    (name): Spec => ({ name, dims: recurrentDims, build: (d, r) => recFwd(d, r, name.startsWith("cudaSlstm") ? 4 : 2), outs: [0, 1, 2], nums: [7, 8, 9, 10], cuda: !native.backends().cuda.compiled }),
  ),
  ...(["cudaSlstmBackwardEmulate", "cudaLstmBackwardEmulate", "cudaSlstmBackwardBf16Emulate", "cudaLstmBackwardBf16Emulate"] as const).map(
    (name): Spec => ({ name, dims: recurrentDims, build: (d, r) => recBwd(d, r, name.startsWith("cudaSlstm") ? 4 : 2, name.startsWith("cudaSlstm")), outs: [0, 1, 2, 3], nums: [10, 11, 12, 13], cuda: !native.backends().cuda.compiled }),
  ),
  {
    name: "cudaRecurrentCoverage",
    dims: { ...recurrentDims, slstm: [0, 1] },
    build: (d) => {
      const H = d.NH * d.DH, ns = d.slstm ? 4 : 2;
      const len = d.B * d.S * H + ns * d.S * d.B * H + 2 * d.B * d.S * 4 * H + d.NH * d.DH * 4 * d.DH + 4 * H + ns * d.B * H;
      return [d.slstm === 1, d.B, d.S, d.NH, d.DH, I32(len, () => 0)];
    },
    outs: [5],
    nums: [1, 2, 3, 4],
    // a host replay: it runs wherever CUDA was compiled in, GPU or not
    cuda: !native.backends().cuda.compiled,
  },
  // CUDA twins of the mLSTM cell (csrc/binding/cuda_mlstm.cc) [cuda-mlstm-fuzz]
  ...(["mlstmChunkwiseForward", "mlstmRecurrentForward"] as const).map((cpu): Spec => {
    const chunk = cpu === "mlstmChunkwiseForward";
    return { name: `cuda${cpu[0].toUpperCase()}${cpu.slice(1)}Host`, dims: mlstmDims, build: (d, r) => mlstmFwd(d, r, chunk), outs: [0, 1, 2, 3, 4], nums: chunk ? [13, 14, 15, 16, 17, 18, 19] : [13, 14, 15, 16, 17, 18], cuda: true };
  }),
  ...(["mlstmChunkwiseBackward", "mlstmRecurrentBackward"] as const).map((cpu): Spec => {
    const chunk = cpu === "mlstmChunkwiseBackward";
    const first = chunk ? 18 : 17;
    return { name: `cuda${cpu[0].toUpperCase()}${cpu.slice(1)}Host`, dims: mlstmDims, build: (d, r) => mlstmBwd(d, r, chunk), outs: [0, 1, 2, 3, 4, 5, 6, 7], nums: Array.from({ length: chunk ? 7 : 6 }, (_, i) => first + i), cuda: true };
  }),
  // host replays of the launches (csrc/binding/cuda_mlstm.cc): run wherever CUDA was compiled in, GPU or not
  ...(["mlstmChunkwiseForward", "mlstmRecurrentForward"] as const).map((cpu): Spec => {
    const chunk = cpu === "mlstmChunkwiseForward";
    return { name: `cuda${cpu[0].toUpperCase()}${cpu.slice(1)}Emulate`, dims: mlstmDims, build: (d, r) => mlstmFwd(d, r, chunk), outs: [0, 1, 2, 3, 4], nums: chunk ? [13, 14, 15, 16, 17, 18, 19] : [13, 14, 15, 16, 17, 18], cuda: !native.backends().cuda.compiled };
  }),
  ...(["mlstmChunkwiseBackward", "mlstmRecurrentBackward"] as const).map((cpu): Spec => {
    const chunk = cpu === "mlstmChunkwiseBackward";
    const first = chunk ? 18 : 17;
    return { name: `cuda${cpu[0].toUpperCase()}${cpu.slice(1)}Emulate`, dims: mlstmDims, build: (d, r) => mlstmBwd(d, r, chunk), outs: [0, 1, 2, 3, 4, 5, 6, 7], nums: Array.from({ length: chunk ? 7 : 6 }, (_, i) => first + i), cuda: !native.backends().cuda.compiled };
  }),
  // the chunkwise form under the bf16 autocast: the same arguments (the Emulate replays run wherever CUDA was
  // compiled in; their optional exactProducts flag is left to the garbage mutations)
  ...(["Host", "Emulate"] as const).flatMap((kind): Spec[] => [
    { name: `cudaMlstmChunkwiseForwardBf16${kind}`, dims: mlstmDims, build: (d, r) => mlstmFwd(d, r, true), outs: [0, 1, 2, 3, 4], nums: [13, 14, 15, 16, 17, 18, 19], cuda: kind === "Host" ? true : !native.backends().cuda.compiled },
    { name: `cudaMlstmChunkwiseBackwardBf16${kind}`, dims: mlstmDims, build: (d, r) => mlstmBwd(d, r, true), outs: [0, 1, 2, 3, 4, 5, 6, 7], nums: [18, 19, 20, 21, 22, 23, 24], cuda: kind === "Host" ? true : !native.backends().cuda.compiled },
  ]),
  // host replay of the launches: runs wherever CUDA was compiled in, GPU or not
  { name: "cudaMlstmCoverage", dims: mlstmDims, build: (d) => [d.B, d.NH, d.S, d.DHQK, d.DHV, d.L], outs: [], nums: [0, 1, 2, 3, 4, 5], cuda: !native.backends().cuda.compiled },
  // CUDA device memory (csrc/binding/cuda_memory.cc) [cuda-memory-fuzz]
  // (the caching allocator over a simulated device needs no GPU; the device-buffer kernels need buffers from a GPU,
  // so without one they get garbage only)
  { name: "allocatorSimCreate", dims: { n: [0, 512, 1 << 20] }, build: (d) => [d.n], outs: [], nums: [0] },
  { name: "allocatorSimAlloc", dims: { n: [0, 1, 700, 1 << 21] }, build: (d) => [native.allocatorSimCreate(1 << 26), d.n], outs: [], nums: [1], stateful: true },
  {
    name: "allocatorSimFree",
    dims: { n: [0, 1, 700, 1 << 21] },
    build: (d) => {
      const sim = native.allocatorSimCreate(1 << 26);
      return [sim, native.allocatorSimAlloc(sim, d.n)];
    },
    outs: [],
    nums: [1],
    stateful: true,
  },
  ...(["allocatorSimEmptyCache", "allocatorSimStats", "allocatorSimCheck"] as const).map(
    (name): Spec => ({ name, dims: {}, build: () => [native.allocatorSimCreate(1 << 22)], outs: [], nums: [] }),
  ),
  { name: "cudaMalloc", dims: { n: [0, 4, 4096] }, build: (d) => [d.n], outs: [], nums: [0], cuda: true, stateful: true },
  ...(["cudaSynchronize", "cudaMemoryStats", "cudaEmptyCache"] as const).map((name): Spec => ({ name, dims: {}, build: () => [], outs: [], nums: [], cuda: true })),
  // xLSTMLargeDecoder's native forward (csrc/binding/large_decoder.cc): a tiny model of one block
  ...(["largeDecoderCreate", "largeDecoderForward", "largeDecoderForwardAsync"] as const).map(
    (name): Spec => ({
      name,
      dims: { V: [2, 5], B: [1, 2], S: [1, 2, 17] },
      build: (d, r) => largeDecoderArgs(name, d, r),
      outs: name === "largeDecoderCreate" ? [] : [1],
      nums: name === "largeDecoderCreate" ? [] : [3, 4, 6, 9],
      async: name === "largeDecoderForwardAsync",
    }),
  ),
  // fused inference sessions (csrc/binding/infer.cc): a tiny model of one sLSTM and one mLSTM block
  ...(["inferCreate", "inferRun", "inferRunAsync", "inferReset", "inferGetState", "inferSetState", "inferBytes", "inferDispose"] as const).map(
    (name): Spec => ({
      name,
      dims: { V: [1, 3], B: [1, 2], S: [1, 2, 3] },
      build: (d, r) => inferArgs(name, d, r),
      outs: name === "inferRun" || name === "inferRunAsync" ? [1] : name === "inferGetState" ? [3] : [],
      nums: name === "inferCreate" ? [2] : name === "inferRun" || name === "inferRunAsync" ? [3] : name === "inferGetState" || name === "inferSetState" ? [1] : [],
      async: name === "inferRunAsync",
      hostile: () => [disposedSession(), {}, Object.create(null)],
      stateful: true,
    }),
  ),
];

const INFER_E = 4;
export function inferConfig(V: number) {
  return {
    vocabSize: V,
    embeddingDim: INFER_E,
    postNorm: true,
    blocks: [
      { kind: "slstm", numHeads: 2, convKernel: 2, function: "slstm", ffn: { projUpDim: 8, act: "gelu" } },
      { kind: "mlstm", numHeads: 2, innerDim: 8, qkvBlocksize: 4, convKernel: 2, ffn: null },
    ],
  };
}
export function inferParams(r: Rand, V: number): Record<string, Float32Array> {
  const E = INFER_E, DH = E / 2, Di = 8, P = 8;
  const b0 = "xlstm_block_stack.blocks.0.", b1 = "xlstm_block_stack.blocks.1.";
  const p: Record<string, number> = {
    "token_embedding.weight": V * E,
    "lm_head.weight": V * E,
    "xlstm_block_stack.post_blocks_norm.weight": E,
    [`${b0}xlstm_norm.weight`]: E,
    [`${b0}xlstm.conv1d.conv.weight`]: E * 2,
    [`${b0}xlstm.conv1d.conv.bias`]: E,
    [`${b0}xlstm.fgate.weight`]: 2 * DH * DH,
    [`${b0}xlstm.igate.weight`]: 2 * DH * DH,
    [`${b0}xlstm.zgate.weight`]: 2 * DH * DH,
    [`${b0}xlstm.ogate.weight`]: 2 * DH * DH,
    [`${b0}xlstm.slstm_cell._recurrent_kernel_`]: 2 * DH * 4 * DH,
    [`${b0}xlstm.slstm_cell._bias_`]: 4 * E,
    [`${b0}xlstm.group_norm.weight`]: E,
    [`${b0}ffn_norm.weight`]: E,
    [`${b0}ffn.proj_up.weight`]: 2 * P * E,
    [`${b0}ffn.proj_down.weight`]: E * P,
    [`${b1}xlstm_norm.weight`]: E,
    [`${b1}xlstm.proj_up.weight`]: 2 * Di * E,
    [`${b1}xlstm.q_proj.weight`]: Di * 4,
    [`${b1}xlstm.k_proj.weight`]: Di * 4,
    [`${b1}xlstm.v_proj.weight`]: Di * 4,
    [`${b1}xlstm.conv1d.conv.weight`]: Di * 2,
    [`${b1}xlstm.conv1d.conv.bias`]: Di,
    [`${b1}xlstm.mlstm_cell.igate.weight`]: 2 * 3 * Di,
    [`${b1}xlstm.mlstm_cell.igate.bias`]: 2,
    [`${b1}xlstm.mlstm_cell.fgate.weight`]: 2 * 3 * Di,
    [`${b1}xlstm.mlstm_cell.fgate.bias`]: 2,
    [`${b1}xlstm.mlstm_cell.outnorm.weight`]: Di,
    [`${b1}xlstm.learnable_skip`]: Di,
    [`${b1}xlstm.proj_down.weight`]: E * Di,
  };
  return Object.fromEntries(Object.entries(p).map(([k, n]) => [k, A(r, n)]));
}
type Session = object;
function newSession(r: Rand, V: number, B: number): Session | null {
  const create = (native as unknown as { inferCreate?: (c: unknown, p: unknown, b: number) => Session }).inferCreate;
  try {
    return create ? create(inferConfig(V), inferParams(r, V), B) : null;
  } catch {
    return null;
  }
}
function disposedSession(): unknown {
  const s = newSession(new Rand(1), 2, 1);
  if (s) (native as unknown as { inferDispose(s: Session): void }).inferDispose(s);
  return s;
}
/** Sizes and arrays of a valid fused mLSTM layer call (Di = NH * Bq * m, so both divide it). */
function mlstmLayerParts(d: Dims, r: Rand) {
  const Di = d.NH * d.Bq * d.m, NP = Di / d.Bq;
  const sizes = [2 * Di * d.E, Di * d.K, Di, NP * d.Bq * d.Bq, NP * d.Bq * d.Bq, NP * d.Bq * d.Bq, d.NH * 3 * Di, d.NH, d.NH * 3 * Di, d.NH, Di, Di, d.E * Di];
  const params = sizes.map((n) => A(r, n));
  const dims = [d.B, d.S, d.E, Di, d.NH, d.Bq, d.K, r.pick([1, 2, 64]), 1e-6, 1e-5];
  return { nx: d.B * d.S * d.E, sizes, params, dims };
}

function mlstmLayerArgs(name: string, d: Dims, r: Rand): unknown[] {
  const { nx, sizes, params, dims } = mlstmLayerParts(d, r);
  const x = A(r, nx);
  if (name === "mlstmLayerForward") return [Z(nx), x, ...params, ...dims, r.bool()];
  let saved: unknown;
  try {
    saved = native.mlstmLayerForward(Z(nx), x, ...params, ...dims, true);
  } catch {
    saved = releasedMlstmLayerHandle(); // sizes the forward refuses (the "extreme" mutation): a released handle
  }
  if (name === "mlstmLayerRelease") return [saved];
  return [Z(nx), ...sizes.map((n) => Z(n)), A(r, nx), x, saved, ...params, ...dims];
}

function releasedMlstmLayerHandle(): unknown {
  const d = { B: 1, S: 1, E: 1, NH: 1, Bq: 1, m: 1, K: 1 } as unknown as Dims;
  const h = mlstmLayerArgs("mlstmLayerRelease", d, new Rand(1))[0];
  native.mlstmLayerRelease(h as never);
  return h;
}

/** A valid largeDecoderCreate (config, weights) of one block (bf16 or float32 matrices), or a forward call over it. */
function largeDecoderArgs(name: string, d: Dims, r: Rand): unknown[] {
  const E = 8, NH = 2, DK = 2, DV = 4, up = 8, width = 2 * NH * DK + 2 * NH * DV + 2 * NH, V = d.V;
  const bf16 = r.bool();
  const M = (n: number) => (bf16 ? U16(r, n) : A(r, n));
  const config = { vocabSize: V, embeddingDim: E, numHeads: NH, qkHeadDim: DK, vHeadDim: DV, ffnUpDim: up, chunkSize: 16, normEps: 1e-6, eps: 1e-6, gateSoftCap: r.bool() ? 15 : null, outputSoftCap: null };
  const block = { normM: A(r, E), normMBias: A(r, E), wIn: M(width * E), bIn: A(r, width), mhW: A(r, NH * DV), mhB: null, wOut: M(E * NH * DV), bOut: null, normF: A(r, E), normFBias: null, wUp: M(2 * up * E), bUp: A(r, 2 * up), wDown: M(E * up), bDown: null };
  const weights = { embedding: M(V * E), head: M(V * E), outNorm: A(r, E), outNormBias: null, blocks: [block] };
  if (name === "largeDecoderCreate") return [config, weights];
  let h: object;
  try {
    h = native.largeDecoderCreate(config, weights);
  } catch {
    h = largeDecoderArgs("largeDecoderForward", { V: 2, B: 1, S: 1 } as unknown as Dims, r)[0] as object; // sizes create refuses (the "extreme" mutation): a valid decoder
  }
  const lastOnly = r.bool();
  const sizes = [d.B * NH * DK * DV, d.B * NH * DK, d.B * NH];
  const stateIn = r.bool() ? sizes.map((n) => A(r, n)) : [null, null, null];
  // maxPieceRows: the default, or small enough that S = 17 (chunk 16) runs in pieces
  return [h, Z(d.B * (lastOnly ? 1 : d.S) * V), I32(d.B * d.S, () => r.int(V)), d.B, d.S, lastOnly, r.int(3), stateIn, sizes.map((n) => Z(n)), r.bool() ? 0 : 16];
}

function inferArgs(name: string, d: Dims, r: Rand): unknown[] {
  if (name === "inferCreate") return [inferConfig(d.V), inferParams(r, d.V), d.B];
  const s = newSession(r, d.V, d.B);
  switch (name) {
    case "inferRun":
    case "inferRunAsync":
      return [s, Z(d.B * d.V), I32(d.B * d.S, () => r.int(d.V)), d.S];
    case "inferGetState":
    case "inferSetState": {
      const [block, part] = r.pick([[0, "conv"], [0, "slstm"], [1, "conv"], [1, "c"], [1, "n"], [1, "m"]] as const);
      const len = { conv: d.B * 2 * (block ? 8 : INFER_E), slstm: 4 * d.B * INFER_E, c: d.B * 2 * 4 * 4, n: d.B * 2 * 4, m: d.B * 2 }[part];
      return [s, block, part, name === "inferGetState" ? Z(len) : r.bool(0.8) ? A(r, len) : null];
    }
    default:
      return [s];
  }
}

/** Sizes drawn for the "extreme" mutation: zero next to huge is where loops run away or workspaces explode. */
const EXTREME = [0, 0, 1, 2, 3, 2 ** 16 + 1, 2 ** 20, 2 ** 31 - 1, 2 ** 40];

/** Thrown by the getters of the "sparse" mutation: seeing it again is the right outcome. */
const GETTER_ERROR = new Error("fuzz: the array getter threw");

const ARRAY_KINDS = (v: unknown): v is Float32Array => v instanceof Float32Array;

function copyArgs(args: unknown[]): unknown[] {
  return args.map((a) => (ArrayBuffer.isView(a) && !(a instanceof DataView) ? (a as Float32Array).slice() : Array.isArray(a) ? [...a] : a));
}

function bitsEqualish(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; ++i) {
    const x = a[i], y = b[i];
    if (typeof x === "bigint" || typeof y === "bigint") {
      if (x !== y) return false;
      continue;
    }
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= 1e-4 * (1 + Math.abs(y)))) return false;
  }
  return true;
}

interface Finding {
  case: number;
  name: string;
  mutation: string;
  problem: string;
}

export interface NativeFuzzResult {
  cases: number;
  byExport: Record<string, { cases: number; ok: number; threw: number; validOk: number; validCalls: number }>;
  exportsWithoutTemplate: string[];
  findings: Finding[];
  errorKinds: Record<string, number>;
}

function checkError(name: string, e: unknown): string | null {
  if (!(e instanceof Error)) return `threw a non-Error: ${describeArg(e)}`;
  if (!(e instanceof TypeError || e instanceof RangeError || e.constructor === Error)) return `threw ${e.constructor.name}: ${e.message}`;
  if (!e.message.startsWith(`${name}: `)) return `error does not name the export: ${e.constructor.name}: ${e.message}`;
  return null;
}

async function invoke(fn: (...a: unknown[]) => unknown, args: unknown[], isAsync: boolean): Promise<{ ok: boolean; error?: unknown; value?: unknown }> {
  try {
    const v = fn(...args);
    if (isAsync || v instanceof Promise) {
      if (!(v instanceof Promise)) return { ok: true, value: v };
      return { ok: true, value: await v };
    }
    return { ok: true, value: v };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Fuzz every native export: options.cases calls in total, spread over the exports; options.seed.
 * Returns per-export counts and every finding (an oracle violation); a crash or hang is seen by the parent.
 */
export async function fuzzNative(options: { seed: number; cases: number }, progress: Progress): Promise<NativeFuzzResult> {
  const r = new Rand(options.seed);
  const binding = native as unknown as Record<string, unknown>;
  const names = Object.keys(binding).filter((k) => typeof binding[k] === "function").sort();
  const specs = new Map(SPECS.filter((s) => names.includes(s.name)).map((s) => [s.name, s]));
  const threads = native.getNumThreads();
  const simd = native.getSimdLevel();
  const cudaOk = native.backends().cuda.available;
  const result: NativeFuzzResult = { cases: 0, byExport: {}, exportsWithoutTemplate: names.filter((n) => !specs.has(n)), findings: [], errorKinds: {} };
  for (const n of names) result.byExport[n] = { cases: 0, ok: 0, threw: 0, validOk: 0, validCalls: 0 };
  const finding = (c: number, name: string, mutation: string, problem: string) => {
    if (result.findings.length < 200) result.findings.push({ case: c, name, mutation, problem });
  };
  const mutations = ["valid", "valid", "kind", "number", "extreme", "alias", "arity", "detached", "shared", "offset", "nonfinite", "garbage", "sparse"] as const;

  const levels = (["scalar", "avx2", "avx512"] as const).filter((l) => native.setSimdLevel(l) === l);
  native.setSimdLevel(simd);
  for (let c = 0; c < options.cases; ++c) {
    // every 64 cases: another SIMD level and thread count, so each kernel variant sees the hostile calls
    if (c % 64 === 63) {
      native.setSimdLevel(r.pick(levels));
      native.setNumThreads(r.bool() ? 1 : threads);
    }
    // the first round calls every export once with a valid call (so each template is seen to work whatever the
    // seed); after that every export gets its share, the order shuffled by the seed
    const firstRound = c < names.length;
    const name = firstRound ? names[c] : names[(c + r.int(names.length)) % names.length];
    const fn = binding[name] as (...a: unknown[]) => unknown;
    const spec = specs.get(name);
    const stats = result.byExport[name];
    stats.cases++;
    let mutation: (typeof mutations)[number] = spec ? (firstRound ? "valid" : r.pick(mutations)) : "garbage";
    if (mutation === "extreme" && spec?.noExtreme) mutation = "valid";
    let args: unknown[];
    let d: Dims = {};
    const drawDims = (pool?: readonly number[]) => {
      d = {};
      for (const [k, vals] of Object.entries(spec!.dims)) d[k] = pool ? r.pick(pool) : r.pick(vals);
    };
    if (spec) {
      drawDims();
      args = spec.build(d, r);
    } else {
      args = Array.from({ length: r.int(8) }, () => r.pick(wrongKinds(r, r.int(9))));
    }
    let desc = "";
    let compare: number[] = []; // output indices to compare with the plain call when the variant succeeds
    switch (mutation) {
      case "valid":
        break;
      case "kind": {
        const i = r.int(Math.max(args.length, 1));
        const arr = args[i];
        const n = ArrayBuffer.isView(arr) ? (arr as Float32Array).length : 4;
        args[i] = r.pick([...wrongKinds(r, n), ...(spec!.hostile?.() ?? [])]);
        desc = `arg ${i} = ${describeArg(args[i])}`;
        break;
      }
      case "number": {
        const idx = spec!.nums.length ? r.pick(spec!.nums) : r.int(Math.max(args.length, 1));
        args[idx] = r.pick(ABSURD_NUMBERS);
        desc = `arg ${idx} = ${args[idx]}`;
        break;
      }
      case "extreme": {
        if (Object.keys(spec!.dims).length === 0) break;
        drawDims(EXTREME);
        try {
          args = spec!.build(d, r);
        } catch (e) {
          finding(c, name, "extreme", `template failed: ${(e as Error).message}`);
          continue;
        }
        desc = JSON.stringify(d);
        break;
      }
      case "alias": {
        const outs = spec!.outs.filter((i) => ARRAY_KINDS(args[i]));
        const others = args.map((_, i) => i).filter((i) => ARRAY_KINDS(args[i]));
        if (!outs.length || others.length < 2) break;
        const o = r.pick(outs);
        const j = r.pick(others.filter((i) => i !== o));
        const ao = args[o] as Float32Array, aj = args[j] as Float32Array;
        if (r.bool(0.3)) {
          args[o] = aj; // the very same array
          desc = `arg ${o} = arg ${j}`;
        } else {
          const shift = r.int(aj.length + 1);
          const base = new Float32Array(Math.max(aj.length, shift + ao.length) + 4);
          base.set(aj, 0);
          args[j] = base.subarray(0, aj.length);
          args[o] = base.subarray(shift, shift + ao.length);
          desc = `arg ${o} overlaps arg ${j} at +${shift}`;
        }
        compare = [o];
        break;
      }
      case "arity": {
        const k = r.int(3);
        if (k === 0) args = args.slice(0, r.int(args.length + 1));
        else if (k === 1) args = [...args, ...wrongKinds(r, 3).slice(0, r.int(4))];
        else args = [];
        desc = `${args.length} args`;
        break;
      }
      case "detached": {
        const arrays = args.map((_, i) => i).filter((i) => ArrayBuffer.isView(args[i]));
        if (!arrays.length) break;
        const i = r.pick(arrays);
        const a = args[i] as Float32Array;
        if (a.length === 0) break;
        args[i] = detached(a.slice());
        desc = `arg ${i} detached`;
        break;
      }
      case "shared":
      case "offset": {
        const arrays = args.map((_, i) => i).filter((i) => ARRAY_KINDS(args[i]));
        if (!arrays.length) break;
        const i = r.pick(arrays);
        const a = args[i] as Float32Array;
        let v: Float32Array;
        if (mutation === "shared") {
          v = r.bool() ? sharedF32(a.length) : resizableF32(a.length) ?? new Float32Array(a.length);
        } else {
          const off = 1 + r.int(15);
          v = new Float32Array(new ArrayBuffer(4 * (a.length + off + r.int(4))), 4 * off, a.length);
        }
        v.set(a);
        args[i] = v;
        desc = `arg ${i} ${mutation === "shared" ? describeArg(v.buffer) : "at an unaligned offset"}`;
        compare = spec!.outs.filter((k) => ArrayBuffer.isView(args[k]));
        break;
      }
      case "nonfinite": {
        for (const a of args) if (a instanceof Float32Array && !spec!.outs.includes(args.indexOf(a))) for (let k = 0; k < a.length; ++k) if (r.bool(0.3)) a[k] = r.pick([NaN, Infinity, -Infinity, 3e38, -3e38, 1e-45]);
        desc = "NaN/Inf/huge inputs";
        break;
      }
      case "garbage":
        args = Array.from({ length: r.int(Math.max(args.length + 2, 8)) }, () => r.pick(wrongKinds(r, r.int(9))));
        desc = args.map(describeArg).join(", ");
        break;
      case "sparse": {
        // a holey / getter-bearing array where a plain array is expected, or an array-like object
        const ai = args.map((_, i) => i).filter((i) => Array.isArray(args[i]));
        if (!ai.length) break;
        const i = r.pick(ai);
        const src = args[i] as number[];
        const k = r.int(3);
        if (k === 0) {
          const h: number[] = new Array(src.length + 1);
          args[i] = h;
          desc = `arg ${i} holey array`;
        } else if (k === 1) {
          const g = [...src];
          Object.defineProperty(g, 0, { get: () => { throw GETTER_ERROR; } });
          args[i] = g;
          desc = `arg ${i} array with a throwing getter`;
        } else {
          args[i] = { length: src.length, 0: 1 };
          desc = `arg ${i} array-like`;
        }
        break;
      }
    }
    const before = compare.length ? copyArgs(args) : [];
    const label = `#${c} ${name} ${mutation}${desc ? ` (${desc})` : ""}${Object.keys(d).length ? ` ${JSON.stringify(d)}` : ""}`;
    progress(label);
    if (process.env.XLSTM_FUZZ_VERBOSE) progress(`   args: ${args.map(describeArg).join(", ")}`);
    const isAsync = !!spec?.async;
    const out = await invoke(fn, args, isAsync);
    result.cases++;
    if (mutation === "valid") stats.validCalls++;
    if (out.ok) {
      stats.ok++;
      if (mutation === "valid") stats.validOk++;
      if (compare.length && spec && !spec.stateful) {
        // the same call on independent copies of the arguments as they were before it (what in-place means)
        const ref = before;
        const refOut = await invoke(fn, ref, isAsync);
        if (refOut.ok) {
          for (const k of compare) {
            const got = args[k] as Float32Array, want = ref[k] as Float32Array;
            if (ArrayBuffer.isView(got) && ArrayBuffer.isView(want) && !bitsEqualish(got, want))
              finding(c, name, mutation, `${label}: succeeded but output arg ${k} differs from the plain call`);
          }
        } else {
          finding(c, name, mutation, `${label}: succeeded, but the same call on unaliased copies threw ${(refOut.error as Error)?.message}`);
        }
      }
    } else {
      stats.threw++;
      const e = out.error as Error;
      const kind = e instanceof Error ? e.constructor.name : typeof e;
      result.errorKinds[kind] = (result.errorKinds[kind] ?? 0) + 1;
      const bad = e === GETTER_ERROR ? null : checkError(name, e);
      // a valid call may be refused only for CUDA (no device) or sizes outside the export's documented range
      if (bad) finding(c, name, mutation, `${label}: ${bad}`);
      else if (mutation === "valid" && !(spec?.cuda && !cudaOk) && !/must be an integer in \[1,/.test(e.message))
        finding(c, name, mutation, `${label}: a valid call threw ${e.message}`);
    }
  }
  native.setNumThreads(threads);
  native.setSimdLevel(simd);
  return result;
}

// ---- harness self-tests: the parent must see a crash and a hang for what they are --------------------------------

/** Announces a case, then dies of SIGSEGV (as a native crash would). */
export function selfTestCrash(_o: unknown, progress: Progress): void {
  progress("self-test: about to crash");
  process.kill(process.pid, "SIGSEGV");
}

/** Announces a case, then never returns. */
export function selfTestHang(_o: unknown, progress: Progress): void {
  progress("self-test: about to hang");
  for (;;);
}

// ---- argument getters that run JavaScript while the binding reads its arguments (time of check / time of use) ----

/**
 * inferCreate reads config fields and params through property gets, which run getters and proxies. Each case
 * makes one of them detach, or shrink, an array the binding already validated. Returns each case's outcome.
 */
export function inferCreateToctou(_o: unknown, progress: Progress): { case: string; outcome: string }[] {
  const create = (native as unknown as { inferCreate?: (c: unknown, p: unknown, b: number) => object }).inferCreate;
  if (!create) return [];
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  const V = 1 << 12; // a 64 KiB embedding: freeing it returns memory that a stale pointer would then read
  const out: { case: string; outcome: string }[] = [];
  const victimKey = "token_embedding.weight";
  const cases: [string, (params: Record<string, unknown>, config: Record<string, unknown>, victim: Float32Array) => void][] = [
    [
      "a params getter detaches an array read before it",
      (params, _config, victim) => {
        const k = "xlstm_block_stack.blocks.0.xlstm_norm.weight";
        const v = params[k];
        Object.defineProperty(params, k, { enumerable: true, get: () => (detached(victim), gc(), gc(), v) });
      },
    ],
    [
      "a config getter (blocks) detaches a params array read before it",
      (_params, config, victim) => {
        const blocks = config.blocks;
        Object.defineProperty(config, "blocks", { enumerable: true, get: () => (detached(victim), gc(), gc(), blocks) });
      },
    ],
    [
      "a params getter shrinks a resizable buffer read before it",
      (params, _config, victim) => {
        const k = "lm_head.weight";
        const v = params[k];
        Object.defineProperty(params, k, { enumerable: true, get: () => ((victim.buffer as ArrayBuffer & { resize?(n: number): void }).resize?.(0), v) });
      },
    ],
  ];
  for (const [what, arm] of cases) {
    progress(`inferCreate: ${what}`);
    const params = inferParams(new Rand(7), V) as Record<string, unknown>;
    const config = inferConfig(V) as unknown as Record<string, unknown>;
    let victim = params[victimKey] as Float32Array;
    if (what.includes("resizable")) {
      victim = resizableF32(victim.length) ?? victim;
      params[victimKey] = victim;
    }
    arm(params, config, victim);
    try {
      create(config, params, 1);
      out.push({ case: what, outcome: "created" });
    } catch (e) {
      out.push({ case: what, outcome: `${(e as Error).constructor.name}: ${(e as Error).message}` });
    }
  }
  return out;
}
