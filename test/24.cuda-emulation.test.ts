// Layer 3: the CUDA path above the kernels, run on every machine. A child mocha runs the device-memory, CUDA-tensor,
// fixture-on-cuda and GPU-training tests with XLSTM_CUDA_EMULATE=1 (cuda/host_emulation.h: one emulated device
// whose memory is host memory from the same caching allocator and whose kernels are the CPU twins), so device
// buffers, CUDA tensors, scopes and dispose, every op's CUDA path, autograd, optimizers, checkpoints and the
// training loop are exercised without a GPU. On a machine with a real GPU those suites run for real instead.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as path from "path";
import { backends } from "../lib";

const root = path.resolve(__dirname, "..");
const realGpu = backends().cuda.available && !backends().cuda.emulated;

describe("24 CUDA path under host emulation", function () {
  this.timeout(600000);
  (realGpu ? it.skip : it)(`CUDA tensors, ops, autograd, optimizers, fixtures and training on the emulated device${realGpu ? " [skipped: a real GPU runs these suites]" : ""}`, () => {
    const mocha = path.join(root, "node_modules", "mocha", "bin", "mocha.js");
    const files = ["test/22.cuda-memory.test.ts", "test/23.cuda-tensors.test.ts", "test/48.fixtures.test.ts", "test/36.bf16-weights.test.ts", "test/59.large-generate.test.ts", "test/57.infer-cuda.test.ts", "test/64.train.test.ts"];
    const r = spawnSync(process.execPath, [mocha, ...files, "--grep", "CUDA device memory|CUDA tensors on the GPU|on cuda|on the GPU|device \"cuda\""], {
      cwd: root,
      env: { ...process.env, XLSTM_CUDA_EMULATE: "1" },
      encoding: "utf8",
      maxBuffer: 64 << 20,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    const summary = /^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/m.exec(out.trim().split("\n").pop() ?? "");
    assert.ok(summary, `no summary line from the child run (status ${r.status}):\n${out.slice(-4000)}`);
    const [passed, failed] = [Number(summary![1]), Number(summary![2])];
    console.log(`      emulated device: ${passed} passed, ${failed} failed${summary![3] ? `, ${summary![3]} skipped` : ""}`);
    assert.equal(failed, 0, out.slice(-8000));
    assert.equal(r.status, 0, out.slice(-4000));
    // the suites really ran on the device (not skipped for want of one)
    assert.ok(passed >= 30, `only ${passed} tests ran under emulation:\n${out.slice(-4000)}`);
  });
});
