// GEMM next to OpenBLAS (experiments layer): runs each shape of the `gemm` workload (lib/bench/gemm.ts), then the
// same shape with numpy/OpenBLAS (bench/gemm_openblas.py) right after it, so both see the same machine load, and
// prints both lines plus a "ratio_vs_openblas" line.
// Usage: npx tsx bench/gemm.ts [--reps N] [--threads T] [--only SUBSTRING] [--with-openblas]
import { spawnSync } from "child_process";
import * as path from "path";
import { benchGemmShape, gemmShapeName, gemmShapes } from "../lib/bench/gemm";
import { native } from "../lib/native";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const reps = Math.max(1, Number(arg("--reps") ?? 7));
  const only = arg("--only") ?? "";
  if (arg("--threads")) native.setNumThreads(Number(arg("--threads")));
  const threads = native.getNumThreads();
  const withOpenblas = process.argv.includes("--with-openblas");
  for (const s of gemmShapes()) {
    const name = gemmShapeName(s);
    if (only && !name.includes(only)) continue;
    const row = await benchGemmShape(s, reps);
    console.log(JSON.stringify(row));
    if (!withOpenblas) continue;
    const py = spawnSync("python3", [path.join(__dirname, "gemm_openblas.py"), "--reps", String(reps), "--threads", String(threads), "--only", name], { encoding: "utf8" });
    if (py.status !== 0) throw new Error(`bench/gemm_openblas.py failed: ${py.stderr}`);
    const line = py.stdout.trim();
    console.log(line);
    const ref = JSON.parse(line) as { value: number };
    console.log(JSON.stringify({ workload: "gemm", name, metric: "ratio_vs_openblas", value: Math.round((row.value / ref.value) * 1000) / 1000, device: "cpu", threads }));
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
