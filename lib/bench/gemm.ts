// The `gemm` workload: native GEMM throughput at 1024^3 and at the model's linear-layer shapes (M = B*S = 4096
// rows; K, N in 128..1024) in the three transpose patterns a linear layer uses:
//   nt  forward   y  = x W^T      (M = rows, N = out, K = in)
//   nn  backward  dx = dy W       (M = rows, N = in,  K = out)
//   tn  backward  dW = dy^T x     (M = out,  N = in,  K = rows)
// bench/gemm.ts runs the same shapes next to OpenBLAS (numpy) for the comparison.
import { native } from "../native";
import { registerWorkload, timeIt } from "./index";

export interface GemmShape {
  M: number;
  N: number;
  K: number;
  v: "nn" | "nt" | "tn";
}

/** The benchmark shapes (keep bench/gemm_openblas.py in sync). */
export function gemmShapes(): GemmShape[] {
  const out: GemmShape[] = (["nn", "nt", "tn"] as const).map((v) => ({ M: 1024, N: 1024, K: 1024, v }));
  for (const [k, n] of [[128, 512], [256, 1024], [512, 128], [1024, 256]]) {
    out.push({ M: 4096, N: n, K: k, v: "nn" });
    out.push({ M: 4096, N: n, K: k, v: "nt" });
    out.push({ M: n, N: k, K: 4096, v: "tn" });
  }
  return out;
}

export function gemmShapeName(s: GemmShape): string {
  return `gemm-${s.M}x${s.N}x${s.K}-${s.v}`;
}

/** Median/min/max GFLOP/s of one shape over `reps` runs after a warm-up. */
export async function benchGemmShape(s: GemmShape, reps: number) {
  const { M, N, K, v } = s;
  const a = new Float32Array(M * K), b = new Float32Array(K * N), c = new Float32Array(M * N);
  for (let i = 0; i < a.length; ++i) a[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  for (let i = 0; i < b.length; ++i) b[i] = ((i * 40503) % 1000) / 1000 - 0.5;
  const ta = v[0] === "t", tb = v[1] === "t";
  const t = await timeIt(() => native.gemm(ta, tb, M, N, K, 1, a, b, 0, c), reps);
  const gf = (sec: number) => Math.round(((2 * M * N * K) / sec / 1e9) * 100) / 100;
  return {
    workload: "gemm", name: gemmShapeName(s), metric: "gflops", value: gf(t.median), device: "cpu" as const,
    min: gf(t.max), max: gf(t.min), threads: native.getNumThreads(), simd: native.getSimdLevel(), impl: "xlstm", reps,
  };
}

registerWorkload({
  id: "gemm",
  description: "GEMM GFLOP/s at 1024^3 and the model's linear-layer shapes (nn, nt, tn)",
  device: "cpu",
  async *run({ reps }) {
    for (const s of gemmShapes()) yield await benchGemmShape(s, reps);
  },
});
