// GEMM benchmark (experiments layer): native gemm throughput on 1024^3 and the model's linear-layer shapes
// (M = B*S = 4096 rows; K, N in 128..1024), in the three transpose patterns a linear layer uses:
//   nt  forward   y  = x W^T      (M = rows, N = out, K = in)
//   nn  backward  dx = dy W       (M = rows, N = in,  K = out)
//   tn  backward  dW = dy^T x     (M = out,  N = in,  K = rows)
// One JSON line per shape: {"workload":"gemm","name":"gemm-MxNxK-xx","metric":"gflops","value":median,...,
// "min":..., "max":...}; median of --reps (default 7) timed runs after 1 warm-up, all threads of the pool.
// bench/gemm_openblas.py times the same shapes with numpy/OpenBLAS; `--with-openblas` runs it for each shape right
// after ours and prints its line and a "ratio_vs_openblas" line (both sides back to back, same machine load).
// Usage: npx tsx bench/gemm.ts [--reps N] [--threads T] [--only SUBSTRING] [--with-openblas]
import { spawnSync } from "child_process";
import * as path from "path";
import { native } from "../lib/native";

interface Shape {
  M: number;
  N: number;
  K: number;
  v: "nn" | "nt" | "tn";
}

/** Keep in sync with bench/gemm_openblas.py. */
function shapes(): Shape[] {
  const out: Shape[] = (["nn", "nt", "tn"] as const).map((v) => ({ M: 1024, N: 1024, K: 1024, v }));
  for (const [k, n] of [[128, 512], [256, 1024], [512, 128], [1024, 256]]) {
    out.push({ M: 4096, N: n, K: k, v: "nn" });
    out.push({ M: 4096, N: n, K: k, v: "nt" });
    out.push({ M: n, N: k, K: 4096, v: "tn" });
  }
  return out;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function main(): void {
  const reps = Math.max(1, Number(arg("--reps") ?? 7));
  const only = arg("--only") ?? "";
  if (arg("--threads")) native.setNumThreads(Number(arg("--threads")));
  const threads = native.getNumThreads();
  const withOpenblas = process.argv.includes("--with-openblas");
  for (const { M, N, K, v } of shapes()) {
    const name = `gemm-${M}x${N}x${K}-${v}`;
    if (only && !name.includes(only)) continue;
    const a = new Float32Array(M * K), b = new Float32Array(K * N), c = new Float32Array(M * N);
    for (let i = 0; i < a.length; ++i) a[i] = Math.random() - 0.5;
    for (let i = 0; i < b.length; ++i) b[i] = Math.random() - 0.5;
    const ta = v[0] === "t", tb = v[1] === "t";
    native.gemm(ta, tb, M, N, K, 1, a, b, 0, c); // warm-up (also grows the packing buffers)
    const times: number[] = [];
    for (let r = 0; r < reps; ++r) {
      const t0 = process.hrtime.bigint();
      native.gemm(ta, tb, M, N, K, 1, a, b, 0, c);
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    times.sort((x, y) => x - y);
    const flops = 2 * M * N * K;
    const gf = (t: number) => Math.round((flops / t / 1e9) * 100) / 100;
    const value = gf(times[Math.floor(times.length / 2)]);
    console.log(JSON.stringify({
      workload: "gemm", name, metric: "gflops", value, device: "cpu", threads, impl: "xlstm",
      simd: native.getSimdLevel(), min: gf(times[times.length - 1]), max: gf(times[0]),
    }));
    if (withOpenblas) {
      // right after ours, so both sides see the same machine load
      const py = spawnSync("python3", [path.join(__dirname, "gemm_openblas.py"), "--reps", String(reps), "--threads", String(threads), "--only", name], {
        encoding: "utf8",
      });
      if (py.status !== 0) throw new Error(`bench/gemm_openblas.py failed: ${py.stderr}`);
      const line = py.stdout.trim();
      console.log(line);
      const ref = JSON.parse(line) as { value: number };
      console.log(JSON.stringify({ workload: "gemm", name, metric: "ratio_vs_openblas", value: Math.round((value / ref.value) * 1000) / 1000, device: "cpu", threads }));
    }
  }
}

main();
