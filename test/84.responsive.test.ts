// Layer 8 (reliability): a responsive event loop and no interference between concurrent users of the addon.
//   - While Promise-API work runs (the async kernels: sLSTM/LSTM/mLSTM forward and backward, gemmAsync; token
//     generation), perf_hooks.monitorEventLoopDelay's p99 stays under 50 ms. A sync kernel of the same size is
//     measured too, so the instrument is shown to see a blocked loop.
//   - The addon loads in two worker threads next to the main thread; the three run kernels at the same time and
//     get results identical (bit for bit) to a run alone. A worker terminated while its async kernels run, and a
//     process exiting while they run, end cleanly.
//   - Two models in one process, used interleaved (forward, backward, step-by-step generation, fused inference
//     sessions, one disposed midway), give exactly what each gives alone.
//   - A sync kernel called on the main thread while Promise calls keep the thread pool busy runs at once (on the main
//     thread alone) instead of queueing behind their jobs.
// Extending: add Promise-API training/generation/inference-session workloads to WORKLOADS (test/84.event-loop-probe.ts).
import { strict as assert } from "assert";
import { spawn, spawnSync } from "child_process";
import * as path from "path";
import { Worker } from "worker_threads";
import { Generator, kernels, nn, noGrad, ops, Tensor } from "../lib";
import { createInferenceSession, InferenceSession, InferenceSessionDisposedError } from "../lib/infer";
import { native } from "../lib/native";
import { kernelWorkloads, ProbeResult, randn, tinyModel } from "./84.event-loop-probe";

const repoRoot = path.resolve(__dirname, "..");

/** Path of the addon this process loaded (what lib/native.ts picks), for worker threads and child processes. */
function binaryPath(): string {
  if (process.env.XLSTM_BINARY) return path.resolve(process.env.XLSTM_BINARY);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("node-gyp-build") as { path(dir: string): string }).path(repoRoot);
}

// ---- models ------------------------------------------------------------------------------------------------------

/** forward + backward of a model on fixed tokens: the loss and every gradient, copied. */
function lossAndGrads(m: nn.xLSTMLMModel, idx: Tensor, targets: Tensor): { loss: number; grads: Float32Array[] } {
  m.zeroGrad();
  const { logits } = m.forward(idx);
  const loss = ops.crossEntropy(logits, targets);
  loss.backward();
  return { loss: loss.item(), grads: m.parameters().map((p) => p.grad!.f32().slice()) };
}

/** Greedy step-by-step decoding of n tokens. */
function decode(m: nn.xLSTMLMModel, n: number): number[] {
  return noGrad(() => {
    const out: number[] = [];
    let { logits, state } = m.forward(Tensor.from(Int32Array.of(1, 2, 3), [1, 3]), { returnLastState: true });
    let last = logits.f32().slice(-17);
    for (let i = 0; i < n; ++i) {
      const id = last.indexOf(Math.max(...last));
      out.push(id);
      const s = m.step(Tensor.from(Int32Array.of(id), [1, 1]), state ?? null);
      state = s.state;
      last = s.logits.f32().slice();
    }
    return out;
  });
}

// ---- worker threads ----------------------------------------------------------------------------------------------

/** Worker body (plain JS): loads the addon, runs the job `reps` times, checks each run equals the first. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("worker_threads");
const n = require(workerData.binary);
const { x, R, bias, B, S, NH, DH, a, b, N, q, k, v, ig, fg, md, reps } = workerData;
async function once() {
  const H = NH * DH;
  const y = new Float32Array(B * S * H), st = new Float32Array(4 * S * B * H), gt = new Float32Array(B * S * 4 * H);
  n.slstmForward(y, st, gt, x, null, R, bias, B, S, NH, DH);
  const y2 = new Float32Array(B * S * H), st2 = new Float32Array(2 * S * B * H), gt2 = new Float32Array(B * S * 4 * H);
  await n.lstmForwardAsync(y2, st2, gt2, x, null, R, bias, B, S, NH, DH);
  const c = new Float32Array(N * N);
  await n.gemmAsync(false, true, N, N, N, 1, a, b, 0, c);
  const c2 = new Float32Array(N * N);
  n.gemm(true, false, N, N, N, 1, a, b, 0, c2);
  const bh = md.B * md.NH;
  const h = new Float32Array(bh * md.S * md.DHV), cl = new Float32Array(bh * md.DHQK * md.DHV), nl = new Float32Array(bh * md.DHQK), ml = new Float32Array(bh);
  await n.mlstmChunkwiseForwardAsync(h, cl, nl, ml, null, q, k, v, ig, fg, null, null, null, md.B, md.NH, md.S, md.DHQK, md.DHV, 64, 1e-6, false);
  return { slstm: y, lstm: y2, gemmAsync: c, gemm: c2, mlstm: h };
}
function same(p, q) {
  for (const key of Object.keys(p)) {
    const u = new Uint32Array(p[key].buffer), w = new Uint32Array(q[key].buffer);
    for (let i = 0; i < u.length; ++i) if (u[i] !== w[i]) return key + "[" + i + "]";
  }
  return null;
}
(async () => {
  if (workerData.mode === "inflight") {
    // start async kernels and tell the parent, which terminates this worker while they run
    const H = NH * DH;
    for (let i = 0; i < 4; ++i) n.slstmForwardAsync(new Float32Array(B * S * H), new Float32Array(4 * S * B * H), new Float32Array(B * S * 4 * H), x, null, R, bias, B, S, NH, DH);
    const c = new Float32Array(N * N);
    n.gemmAsync(false, true, N, N, N, 1, a, b, 0, c);
    parentPort.postMessage({ started: true });
    return;
  }
  const first = await once();
  for (let r = 1; r < reps; ++r) {
    const again = await once();
    const diff = same(first, again);
    if (diff) throw new Error("run " + r + " differs from run 0 at " + diff);
  }
  parentPort.postMessage(first);
})().catch((e) => { throw e; });
`;

function startWorker(data: Record<string, unknown>): { worker: Worker; result: Promise<Record<string, Float32Array>> } {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { binary: binaryPath(), ...data } });
  const result = new Promise<Record<string, Float32Array>>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`worker exited with code ${code} before answering`)));
  });
  return { worker, result };
}

function firstDifference(a: Record<string, Float32Array>, b: Record<string, Float32Array>): string | null {
  for (const key of Object.keys(a)) {
    const u = new Uint32Array(a[key].buffer, a[key].byteOffset, a[key].length), w = new Uint32Array(b[key].buffer, b[key].byteOffset, b[key].length);
    if (u.length !== w.length) return `${key}: length ${u.length} vs ${w.length}`;
    for (let i = 0; i < u.length; ++i) if (u[i] !== w[i]) return `${key}[${i}]: ${a[key][i]} vs ${b[key][i]}`;
  }
  return null;
}

// ---- the tests ---------------------------------------------------------------------------------------------------

describe("84 responsive event loop, worker threads, independent models", function () {
  this.timeout(120_000);

  it("event-loop p99 stays under 50 ms while Promise-API work runs (and a sync kernel shows up as a block)", async () => {
    // measured in a process of its own (test/84.event-loop-probe.ts says why)
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "84.event-loop-probe.ts")], {
        cwd: repoRoot,
        env: { ...process.env, XLSTM_BINARY: binaryPath() },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "", stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (code, signal) => (code === 0 ? resolve(stdout) : reject(new Error(`event-loop probe exited with ${code ?? signal}: ${stderr}`))));
    });
    const { rows, all, allRow, per, blocked, syncMs } = JSON.parse(out.trim().split("\n").pop()!) as ProbeResult;
    console.log(rows.map((r) => `      ${r}`).join("\n"));
    if (process.env.XLSTM_UNDER_SANITIZER) return; // scripts/sanitize.sh: instrumented code and allocator, no timing bounds
    assert.ok(blocked.max >= 100, `the monitor did not see a ${syncMs.toFixed(0)} ms synchronous block (max ${blocked.max} ms)`);
    assert.ok(all.p99 < 50, allRow);
    for (const { d, row } of per) assert.ok(d.p99 < 50, row);
  });

  it("a sync kernel on the main thread runs at once while Promise calls keep the thread pool busy (it does not queue behind their jobs)", async () => {
    const g = new Generator(842);
    const rd = { B: 4, S: 256, NH: 4, DH: 64 }, H = rd.NH * rd.DH;
    const x = randn(g, rd.B * rd.S * 4 * H), R = randn(g, rd.NH * rd.DH * 4 * rd.DH, 0.05), bias = randn(g, 4 * H, 0.1);
    const md = { B: 2, NH: 4, S: 512, DHQK: 64, DHV: 64 };
    const qk = md.B * md.NH * md.S * md.DHQK, ng = md.B * md.NH * md.S;
    const q = randn(g, qk), k = randn(g, qk), v = randn(g, qk), ig = randn(g, ng), fg = randn(g, ng, 2);
    const N = 640, A = randn(g, N * N), Bm = randn(g, N * N);
    // the sync call: a GEMM big enough to use the pool when it is free (a fraction of a millisecond)
    const n = 320, a = randn(g, n * n), b = randn(g, n * n), c = new Float32Array(n * n), want = new Float32Array(n * n);
    native.gemm(false, true, n, n, n, 1, a, b, 0, want);
    const timed = () => {
      const t = performance.now();
      native.gemm(false, true, n, n, n, 1, a, b, 0, c);
      return performance.now() - t;
    };
    const median = (v: number[]) => [...v].sort((p, r) => p - r)[v.length >> 1];
    const alone = median(Array.from({ length: 60 }, timed));
    let stop = false;
    const loop = async (f: () => Promise<unknown>) => {
      while (!stop) await f();
    };
    // four Promise calls always pending: one holds the pool, the others wait for it (jobs of several ms each)
    const loops = [
      loop(() => kernels.slstmForwardAsync({ x, R, bias, ...rd })),
      loop(() => kernels.mlstmRecurrentForwardAsync({ q, k, v, i: ig, f: fg, ...md })),
      loop(() => kernels.mlstmChunkwiseForwardAsync({ q, k, v, i: ig, f: fg, ...md, chunkSize: 64 })),
      loop(() => native.gemmAsync(false, true, N, N, N, 1, A, Bm, 0, new Float32Array(N * N))),
    ];
    const busy: number[] = [];
    try {
      await new Promise((r) => setTimeout(r, 20));
      for (let i = 0; i < 80; ++i) {
        await new Promise((r) => setTimeout(r, 3));
        busy.push(timed());
        assert.deepEqual(c, want, "the sync GEMM's result changed while the pool was busy");
      }
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    const row = `sync ${n}x${n}x${n} GEMM: median ${alone.toFixed(2)} ms alone, ${median(busy).toFixed(2)} ms while 4 Promise calls keep the pool busy`;
    console.log(`      ${row}`);
    if (process.env.XLSTM_UNDER_SANITIZER) return;
    // waiting for the queued jobs costs ~10 ms and more per call; running alongside them on 2 cores, about twice alone
    assert.ok(median(busy) < 4 * alone + 1, row);
  });

  describe("worker threads", () => {
    const g = new Generator(841);
    const rd = { B: 2, S: 48, NH: 2, DH: 16 };
    const H = rd.NH * rd.DH;
    const N = 160;
    const md = { B: 1, NH: 2, S: 96, DHQK: 16, DHV: 16 };
    const qk = md.B * md.NH * md.S * md.DHQK, ng = md.B * md.NH * md.S;
    const data = {
      ...rd,
      x: randn(g, rd.B * rd.S * 4 * H),
      R: randn(g, rd.NH * rd.DH * 4 * rd.DH, 0.1),
      bias: randn(g, 4 * H, 0.1),
      N,
      a: randn(g, N * N),
      b: randn(g, N * N),
      md,
      q: randn(g, qk),
      k: randn(g, qk),
      v: randn(g, qk),
      ig: randn(g, ng),
      fg: randn(g, ng, 2),
    };

    it("the addon in two workers and the main thread at once: results identical to a run alone", async () => {
      // reference: the main thread alone (the workers' code, run here)
      const ref = await new Promise<Record<string, Float32Array>>((resolve, reject) => {
        const w = startWorker({ ...data, reps: 1 });
        w.result.then(resolve, reject);
      });
      const mainOnce = () => {
        const c = new Float32Array(N * N);
        native.gemm(true, false, N, N, N, 1, data.a, data.b, 0, c);
        const f = kernels.slstmForward({ x: data.x, R: data.R, bias: data.bias, ...rd });
        return { gemm: c, slstm: f.y };
      };
      const mainRef = mainOnce();
      assert.equal(firstDifference(mainRef, { gemm: ref.gemm, slstm: ref.slstm }), null, "a worker computes differently from the main thread");
      // now concurrently: two workers (each repeating the job 6 times) and the main thread (sync + async kernels)
      const w1 = startWorker({ ...data, reps: 6 }), w2 = startWorker({ ...data, reps: 6 });
      let mainRuns = 0;
      let settled = false;
      const both = Promise.all([w1.result, w2.result]).finally(() => (settled = true));
      while (!settled || mainRuns < 3) {
        const got = mainOnce();
        const d = firstDifference(mainRef, got);
        assert.equal(d, null, `main thread result changed while workers ran: ${d}`);
        const c = new Float32Array(N * N);
        await native.gemmAsync(false, true, N, N, N, 1, data.a, data.b, 0, c);
        assert.equal(firstDifference({ gemmAsync: ref.gemmAsync }, { gemmAsync: c }), null);
        mainRuns++;
      }
      const [r1, r2] = await both;
      await Promise.all([w1.worker.terminate(), w2.worker.terminate()]);
      assert.equal(firstDifference(ref, r1), null, "worker 1 differs from the run alone");
      assert.equal(firstDifference(ref, r2), null, "worker 2 differs from the run alone");
    });

    it("terminating a worker while its async kernels run leaves the process and the addon working", async () => {
      for (let i = 0; i < 3; ++i) {
        const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { binary: binaryPath(), ...data, mode: "inflight" } });
        await new Promise((resolve, reject) => {
          w.once("message", resolve);
          w.once("error", reject);
        });
        await w.terminate();
      }
      // still fine here
      const c = new Float32Array(N * N);
      await native.gemmAsync(false, true, N, N, N, 1, data.a, data.b, 0, c);
      const ref = new Float32Array(N * N);
      native.gemm(false, true, N, N, N, 1, data.a, data.b, 0, ref);
      assert.deepEqual(c, ref);
    });

    it("a process exiting while async kernels run exits cleanly (no crash in static destructors)", () => {
      const script = `
        const n = require(${JSON.stringify(binaryPath())});
        const N = 600, a = new Float32Array(N * N).fill(1), b = new Float32Array(N * N).fill(1);
        for (let i = 0; i < 4; ++i) n.gemmAsync(false, false, N, N, N, 1, a, b, 0, new Float32Array(N * N));
        setTimeout(() => process.exit(0), 5);`;
      for (let i = 0; i < 3; ++i) {
        const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 60_000 });
        assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
        assert.equal(r.status, 0, r.stderr);
      }
    });
  });

  describe("two models in one process", () => {
    it("interleaved forward/backward of two models gives exactly what each gives alone", () => {
      const idx = Tensor.from(Int32Array.from({ length: 2 * 6 }, (_, i) => (i * 7) % 17), [2, 6]);
      const tgt = Tensor.from(Int32Array.from({ length: 2 * 6 }, (_, i) => (i * 5 + 3) % 17), [2, 6]);
      const aloneA = lossAndGrads(tinyModel(1), idx, tgt);
      const aloneB = lossAndGrads(tinyModel(2), idx, tgt);
      const A = tinyModel(1), B = tinyModel(2);
      // interleave: A forward, B forward, B backward, A backward (one global tape)
      A.zeroGrad();
      B.zeroGrad();
      const la = ops.crossEntropy(A.forward(idx).logits, tgt);
      const lb = ops.crossEntropy(B.forward(idx).logits, tgt);
      lb.backward();
      la.backward();
      assert.equal(la.item(), aloneA.loss);
      assert.equal(lb.item(), aloneB.loss);
      A.parameters().forEach((p, i) => assert.deepEqual(p.grad!.f32(), aloneA.grads[i]));
      B.parameters().forEach((p, i) => assert.deepEqual(p.grad!.f32(), aloneB.grads[i]));
    });

    it("interleaved step-by-step decoding of two models, and async kernels in between, match decoding alone", async () => {
      const A = tinyModel(1), B = tinyModel(2);
      A.eval();
      B.eval();
      const aloneA = decode(A, 12), aloneB = decode(B, 12);
      // now token by token, alternating, with async kernel work in flight on the pool
      const w = kernelWorkloads()[4];
      const pending = [w.run(), w.run()];
      const got = await (async () => {
        const run = (m: nn.xLSTMLMModel) => {
          let { logits, state } = noGrad(() => m.forward(Tensor.from(Int32Array.of(1, 2, 3), [1, 3]), { returnLastState: true }));
          let last = logits.f32().slice(-17);
          const out: number[] = [];
          return {
            out,
            next: () =>
              noGrad(() => {
                const id = last.indexOf(Math.max(...last));
                out.push(id);
                const s = m.step(Tensor.from(Int32Array.of(id), [1, 1]), state ?? null);
                state = s.state;
                last = s.logits.f32().slice();
              }),
          };
        };
        const ra = run(A), rb = run(B);
        for (let i = 0; i < 12; ++i) {
          ra.next();
          await new Promise((r) => setImmediate(r));
          rb.next();
        }
        return [ra.out, rb.out];
      })();
      await Promise.all(pending);
      assert.deepEqual(got[0], aloneA);
      assert.deepEqual(got[1], aloneB);
      assert.notDeepEqual(aloneA, aloneB, "the two models should differ (different seeds)");
    });

    it("two fused inference sessions used interleaved, one disposed midway, match each session alone", () => {
      const argmax = (l: Float32Array) => l.indexOf(Math.max(...l));
      const greedy = (s: InferenceSession, n: number, onStep?: (i: number) => void) => {
        const out: number[] = [];
        let logits = s.prefill(Int32Array.of(1, 2, 3), 3);
        for (let i = 0; i < n; ++i) {
          out.push(argmax(logits));
          onStep?.(i);
          logits = s.step(Int32Array.of(out[i]));
        }
        return out;
      };
      const A = tinyModel(1), B = tinyModel(2);
      const aloneA = greedy(createInferenceSession(A), 12), aloneB = greedy(createInferenceSession(B), 12);
      const sa = createInferenceSession(A), sb = createInferenceSession(B);
      const outA: number[] = [];
      let la = sa.prefill(Int32Array.of(1, 2, 3), 3);
      const gotB = greedy(sb, 12, (i) => {
        if (i < 6) {
          outA.push(argmax(la));
          la = sa.step(Int32Array.of(outA[i]));
        } else if (i === 6) sa.dispose();
      });
      assert.deepEqual(outA, aloneA.slice(0, 6));
      assert.deepEqual(gotB, aloneB);
      assert.throws(() => sa.step(Int32Array.of(0)), InferenceSessionDisposedError);
      sb.dispose();
    });
  });
});
