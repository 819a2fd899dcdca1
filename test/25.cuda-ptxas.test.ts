// Layer 2: CUDA kernels compile for every target architecture, without warnings, within their resource budgets. There
// is no GPU on the CI machines, so ptxas's own report is the test: no register spills, at most 128 registers per thread
// (two 256-thread blocks per SM; 255 for the split-head recurrences, one block per SM by design), static shared
// memory within the 48 KiB every launch can get, and no stack frame (local memory: a by-value parameter or a local
// array indexed at run time lands there, as a struct of pointers did in the bf16 GEMV) but where listed below.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const root = path.resolve(__dirname, "..");
const nvcc = [process.env.CUDACXX, "/usr/local/cuda/bin/nvcc"].find((p) => p && fs.existsSync(p)) ?? (spawnSync("nvcc", ["--version"]).status === 0 ? "nvcc" : null);
const sources = fs.readdirSync(path.join(root, "cuda")).filter((f) => f.endsWith(".cu"));
// kernels allowed a stack frame, and why
const STACK_ALLOWED: Record<string, string> = {
  rec_rows_kernel: "the mLSTM recurrent backward's per-thread n values of a segment (nseg[kRecurrentSegment + 1]), indexed by the step",
};

describe("25 CUDA kernels under ptxas", function () {
  this.timeout(300000);
  for (const arch of ["sm_80", "sm_90"]) {
    for (const src of sources) {
      (nvcc ? it : it.skip)(`${src} for ${arch}: no warnings, no spills, <= 128 registers (split recurrences 255), <= 48 KiB static shared memory, no stack frame${nvcc ? "" : " [skipped: nvcc not found]"}`, () => {
        // -Werror all-warnings: any warning of nvcc's front end or ptxas fails the test (the package's own build keeps
        // warnings as warnings, so a newer nvcc's new ones do not break users' installs)
        const r = spawnSync(nvcc!, ["-std=c++17", "-O3", `-arch=${arch}`, "-Icsrc", "-Icuda", "-Werror", "all-warnings", "-Xptxas", "-v", "-c", path.join("cuda", src), "-o", "/dev/null"], { cwd: root, encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        const report = r.stderr;
        const spills = [...report.matchAll(/(\d+) bytes spill stores, (\d+) bytes spill loads/g)].filter((m) => m[1] !== "0" || m[2] !== "0");
        assert.deepEqual(spills.map((m) => m[0]), [], "register spills");
        // registers per entry: the split-head recurrences (cuda/recurrent_split.cuh) run one 256-thread block per SM
        // by design (a cooperative grid, __launch_bounds__(256, 1)), so they may use all 255; every other kernel 128
        const entries = [...report.matchAll(/Compiling entry function '([^']+)'[^\n]*\n(?:[^\n]*\n)*?[^\n]*Used (\d+) registers/g)];
        const over = entries.filter((m) => Number(m[2]) > (/rec_split_/.test(m[1]) ? 255 : 128)).map((m) => `${m[1]}: ${m[2]}`);
        assert.deepEqual(over, [], "kernels over their register budget");
        const regs = [...report.matchAll(/Used (\d+) registers/g)].map((m) => Number(m[1]));
        assert.equal(entries.length, regs.length, "every register count belongs to an entry");
        const smem = [...report.matchAll(/(\d+) bytes smem/g)].map((m) => Number(m[1]));
        if (/__global__/.test(fs.readFileSync(path.join(root, "cuda", src), "utf8"))) assert.ok(regs.length > 0, "ptxas reported the kernels");
        assert.ok(smem.every((n) => n <= 48 * 1024), `static shared memory: ${smem.join(", ")}`);
        const stacks = [...report.matchAll(/Compiling entry function '([^']+)'[^\n]*\n(?:[^\n]*\n)*?[^\n]*?(\d+) bytes stack frame/g)];
        assert.equal(stacks.length, entries.length, "every kernel's stack frame is reported");
        // (a mangled name holds the identifier as <length><name>, its parameters after an "E")
        const onStack = stacks.filter((m) => m[2] !== "0" && !Object.keys(STACK_ALLOWED).some((k) => m[1].includes(`${k.length}${k}E`))).map((m) => `${m[1]}: ${m[2]} bytes`);
        assert.deepEqual(onStack, [], "kernels with a stack frame (local memory)");
      });
    }
  }
});
