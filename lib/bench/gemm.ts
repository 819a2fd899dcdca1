// The `gemm` workload: native GEMM throughput at 1024^3, at the model's linear-layer shapes (M = B*S = 4096 rows;
// K, N in 128..1024) in the three transpose patterns a linear layer uses:
//   nt  forward   y  = x W^T      (M = rows, N = out, K = in)
//   nn  backward  dx = dy W       (M = rows, N = in,  K = out)
//   tn  backward  dW = dy^T x     (M = out,  N = in,  K = rows)
// and at the skinny shapes the models spend their GEMM time on:
//   hw  block-diagonal projections (headwise linear, 4 blocks of 64): 64-wide column blocks of 256-wide rows
//       (lda/ldb/ldc 256, output rows up to 1024 wide): forward nt, dx nn, dW tn over K = 4096 rows;
//   dR  the sLSTM recurrent-weight gradient: tn, M = N = 64, K = B*S = 4096..65536 (lda 256, ldb 1024, beta 0);
//   small-model linear layers (E 128 at 1024 rows, E 256 at 4096 rows);
//   gemv generation steps (M = 1 or N = 1).
// Strided shapes run through gemmStrided and carry their leading dimensions in the name (e.g. "-lda256-ldc1024").
// bench/gemm.ts runs the same shapes next to OpenBLAS (numpy) for the comparison.
import { native } from "../native";
import { registerWorkload, timeIt } from "./index";

export interface GemmShape {
  M: number;
  N: number;
  K: number;
  v: "nn" | "nt" | "tn";
  /** Row strides of a, b, c (default: dense). */
  lda?: number;
  ldb?: number;
  ldc?: number;
}

/** The benchmark shapes (keep bench/gemm_openblas.py in sync). */
export function gemmShapes(): GemmShape[] {
  const out: GemmShape[] = (["nn", "nt", "tn"] as const).map((v) => ({ M: 1024, N: 1024, K: 1024, v }));
  for (const [k, n] of [[128, 512], [256, 1024], [512, 128], [1024, 256]]) {
    out.push({ M: 4096, N: n, K: k, v: "nn" });
    out.push({ M: 4096, N: n, K: k, v: "nt" });
    out.push({ M: n, N: k, K: 4096, v: "tn" });
  }
  // block-diagonal projections: forward (output rows 256 or 1024 wide), dx, dW
  out.push({ M: 4096, N: 64, K: 64, v: "nt", lda: 256, ldc: 256 });
  out.push({ M: 4096, N: 64, K: 64, v: "nt", lda: 256, ldc: 1024 });
  out.push({ M: 4096, N: 64, K: 64, v: "nn", lda: 256, ldc: 256 });
  out.push({ M: 64, N: 64, K: 4096, v: "tn", lda: 256, ldb: 256 });
  out.push({ M: 64, N: 64, K: 4096, v: "tn", lda: 1024, ldb: 256 });
  // sLSTM recurrent-weight gradient
  for (const K of [4096, 16384, 65536]) out.push({ M: 64, N: 64, K, v: "tn", lda: 256, ldb: 1024, ldc: 256 });
  // small-model linear layers: E 128 (mLSTM up/down projections, sLSTM FFN) at 1024 rows, E 256 FFN at 4096 rows
  for (const [k, n] of [[128, 512], [256, 128], [128, 384], [192, 128]]) {
    out.push({ M: 1024, N: n, K: k, v: "nt" });
    out.push({ M: 1024, N: k, K: n, v: "nn" });
    out.push({ M: n, N: k, K: 1024, v: "tn" });
  }
  for (const [k, n] of [[256, 768], [384, 256]]) {
    out.push({ M: 4096, N: n, K: k, v: "nt" });
    out.push({ M: 4096, N: k, K: n, v: "nn" });
    out.push({ M: n, N: k, K: 4096, v: "tn" });
  }
  // generation: one token through a linear layer (M = 1), and a matrix-vector product with the vector on the right
  out.push({ M: 1, N: 1024, K: 256, v: "nt" });
  out.push({ M: 1, N: 256, K: 1024, v: "nt" });
  out.push({ M: 1, N: 1024, K: 256, v: "nn" });
  out.push({ M: 1024, N: 1, K: 256, v: "nn" });
  return out;
}

/** Row strides actually used (the dense ones when not given). */
function strides(s: GemmShape): { lda: number; ldb: number; ldc: number } {
  const ta = s.v[0] === "t", tb = s.v[1] === "t";
  return { lda: s.lda ?? (ta ? s.M : s.K), ldb: s.ldb ?? (tb ? s.K : s.N), ldc: s.ldc ?? s.N };
}

export function gemmShapeName(s: GemmShape): string {
  const ld = (["lda", "ldb", "ldc"] as const).map((k) => (s[k] !== undefined ? `-${k}${s[k]}` : "")).join("");
  return `gemm-${s.M}x${s.N}x${s.K}-${s.v}${ld}`;
}

/** Median/min/max GFLOP/s of one shape over `reps` runs after a warm-up (short products repeated per run). */
export async function benchGemmShape(s: GemmShape, reps: number) {
  const { M, N, K, v } = s;
  const ta = v[0] === "t", tb = v[1] === "t";
  const { lda, ldb, ldc } = strides(s);
  const a = new Float32Array((ta ? K : M) * lda), b = new Float32Array((tb ? N : K) * ldb), c = new Float32Array(M * ldc);
  for (let i = 0; i < a.length; ++i) a[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  for (let i = 0; i < b.length; ++i) b[i] = ((i * 40503) % 1000) / 1000 - 0.5;
  const strided = s.lda !== undefined || s.ldb !== undefined || s.ldc !== undefined;
  const flops = 2 * M * N * K;
  const inner = Math.max(1, Math.floor(2e7 / flops));  // about 20 MFLOP per timed run
  const once = strided
    ? () => native.gemmStrided(ta, tb, M, N, K, 1, a, lda, b, ldb, 0, c, ldc)
    : () => native.gemm(ta, tb, M, N, K, 1, a, b, 0, c);
  const t = await timeIt(() => {
    for (let i = 0; i < inner; ++i) once();
  }, reps);
  const gf = (sec: number) => Math.round((flops * inner / sec / 1e9) * 100) / 100;
  return {
    workload: "gemm", name: gemmShapeName(s), metric: "gflops", value: gf(t.median), device: "cpu" as const,
    min: gf(t.max), max: gf(t.min), threads: native.getNumThreads(), simd: native.getSimdLevel(), impl: "xlstm", reps,
  };
}

registerWorkload({
  id: "gemm",
  description: "GEMM GFLOP/s at 1024^3, the model's linear-layer shapes (nn, nt, tn), block-diagonal projections, " +
    "the sLSTM recurrent-weight gradient, small-model linear layers and matrix-vector products",
  device: "cpu",
  async *run({ reps }) {
    for (const s of gemmShapes()) yield await benchGemmShape(s, reps);
  },
});
