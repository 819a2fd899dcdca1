// Layer 8 (reliability): a responsive event loop and no interference between concurrent users of the addon.
//   - While Promise-API work runs (the async kernels: sLSTM/LSTM/mLSTM forward and backward, gemmAsync; token
//     generation), perf_hooks.monitorEventLoopDelay's p99 stays under 50 ms. A sync kernel of the same size is
//     measured too, so the instrument is shown to see a blocked loop.
//   - The addon loads in two worker threads next to the main thread; the three run kernels at the same time and
//     get results identical (bit for bit) to a run alone. A worker terminated while its async kernels run, and a
//     process exiting while they run, end cleanly.
//   - Two models in one process, used interleaved (forward, backward, step-by-step generation, fused inference
//     sessions, one disposed midway), give exactly what each gives alone.
// Extending: add Promise-API training/generation/inference-session workloads to WORKLOADS.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as path from "path";
import { monitorEventLoopDelay } from "perf_hooks";
import { Worker } from "worker_threads";
import { Generator, kernels, nn, noGrad, ops, Tensor } from "../lib";
import { createInferenceSession, InferenceSession, InferenceSessionDisposedError } from "../lib/infer";
import { native } from "../lib/native";

const repoRoot = path.resolve(__dirname, "..");

/** Path of the addon this process loaded (what lib/native.ts picks), for worker threads and child processes. */
function binaryPath(): string {
  if (process.env.XLSTM_BINARY) return path.resolve(process.env.XLSTM_BINARY);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("node-gyp-build") as { path(dir: string): string }).path(repoRoot);
}

function randn(g: Generator, n: number, std = 1): Float32Array {
  return g.fillNormal(new Float32Array(n), 0, std);
}

// ---- Promise-API workloads -------------------------------------------------------------------------------------

interface Workload {
  name: string;
  /** One unit of work through the Promise API. */
  run(): Promise<unknown>;
  /** The same work done synchronously on the main thread (to show that the instrument sees blocking). */
  runSync?(): unknown;
}

function kernelWorkloads(): Workload[] {
  const g = new Generator(84);
  // sizes where one sync call would block the loop for tens of milliseconds on a 2-core machine
  const rd = { B: 4, S: 256, NH: 4, DH: 64 };
  const H = rd.NH * rd.DH;
  const x = randn(g, rd.B * rd.S * 4 * H), R = randn(g, rd.NH * rd.DH * 4 * rd.DH, 0.05), bias = randn(g, 4 * H, 0.1);
  const md = { B: 2, NH: 4, S: 512, DHQK: 64, DHV: 64 };
  const qk = md.B * md.NH * md.S * md.DHQK, gates = md.B * md.NH * md.S;
  const q = randn(g, qk), k = randn(g, qk), v = randn(g, qk), ig = randn(g, gates), fg = randn(g, gates, 2);
  const n = 640;
  const a = randn(g, n * n), b = randn(g, n * n);
  return [
    {
      name: "sLSTM forward+backward",
      run: async () => {
        const f = await kernels.slstmForwardAsync({ x, R, bias, ...rd });
        return kernels.slstmBackwardAsync({ ...f, R, dy: f.y, ...rd });
      },
      runSync: () => {
        const f = kernels.slstmForward({ x, R, bias, ...rd });
        return kernels.slstmBackward({ ...f, R, dy: f.y, ...rd });
      },
    },
    {
      name: "LSTM forward+backward",
      run: async () => {
        const f = await kernels.lstmForwardAsync({ x, R, bias, ...rd });
        return kernels.lstmBackwardAsync({ ...f, R, dy: f.y, ...rd });
      },
    },
    {
      name: "mLSTM chunkwise forward+backward",
      run: async () => {
        const f = await kernels.mlstmChunkwiseForwardAsync({ q, k, v, i: ig, f: fg, ...md, chunkSize: 64 });
        return kernels.mlstmChunkwiseBackwardAsync({ ...f, q, k, v, i: ig, f: fg, dh: f.h, ...md, chunkSize: 64 });
      },
    },
    { name: "mLSTM recurrent forward", run: () => kernels.mlstmRecurrentForwardAsync({ q, k, v, i: ig, f: fg, ...md }) },
    {
      name: "gemmAsync",
      run: async () => {
        const c = new Float32Array(n * n);
        await native.gemmAsync(false, true, n, n, n, 1, a, b, 0, c);
        return c;
      },
    },
  ];
}

/** Token generation through lib/generate's async iterator (it yields to the event loop between tokens). */
function generationWorkload(): Workload | null {
  let generate: typeof import("../lib/generate").generate;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    generate = (require("../lib/generate") as typeof import("../lib/generate")).generate;
  } catch {
    return null; // lib/generate not available in this build
  }
  const model = tinyModel(3);
  return {
    name: "generate() 24 tokens",
    run: async () => {
      let n = 0;
      for await (const _t of generate(model as never, [1, 2, 3], { maxTokens: 24, temperature: 1, seed: 1 })) n++;
      return n;
    },
  };
}

const WORKLOADS = (): Workload[] => {
  const w = kernelWorkloads();
  const gen = generationWorkload();
  if (gen) w.push(gen);
  return w;
};

interface Delay {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

async function measure(ms: number, body: (until: number) => Promise<void>): Promise<Delay> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  await body(Date.now() + ms);
  h.disable();
  return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, samples: h.count };
}

// ---- models ------------------------------------------------------------------------------------------------------

function tinyModel(seed: number): nn.xLSTMLMModel {
  return new nn.xLSTMLMModel(
    {
      vocab_size: 17,
      embedding_dim: 16,
      num_blocks: 2,
      slstm_at: [1],
      context_length: 16,
      mlstm_block: { mlstm: { num_heads: 2, conv1d_kernel_size: 2, qkv_proj_blocksize: 4, proj_factor: 2, round_proj_up_to_multiple_of: 8 } },
      slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 2 }, feedforward: { proj_factor: 1.5, act_fn: "gelu", round_proj_up_to_multiple_of: 8 } },
    },
    { generator: new Generator(seed) },
  );
}

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
    const work = WORKLOADS();
    for (const w of work) await w.run(); // warm-up (page faults, pool start)
    const rows: string[] = [];
    // up to 5 attempts: on a shared 2-core machine another process can preempt the main thread for a while (and the
    // six workloads' outputs make V8 collect for external memory pressure a few hundred times a run, up to ~10 ms
    // each); a regression (work done on the main thread) fails every attempt
    let all: Delay = { p50: Infinity, p99: Infinity, max: Infinity, samples: 0 };
    for (let attempt = 1; attempt <= 5 && !(all.p99 < 50); ++attempt) {
      let total = 0;
      all = await measure(3000, async (until) => {
        while (Date.now() < until) {
          await Promise.all(work.map((w) => w.run()));
          total++;
        }
      });
      rows.push(`all ${work.length} workloads together x${total} (attempt ${attempt}): p50 ${all.p50.toFixed(1)} ms, p99 ${all.p99.toFixed(1)} ms, max ${all.max.toFixed(1)} ms`);
    }
    const allRow = rows[rows.length - 1];
    const per: [Delay, string][] = [];
    for (const w of work) {
      let d: Delay = { p50: Infinity, p99: Infinity, max: Infinity, samples: 0 };
      let row = "";
      for (let attempt = 1; attempt <= 3 && !(d.p99 < 50); ++attempt) {
        let calls = 0;
        d = await measure(600, async (until) => {
          while (Date.now() < until) {
            await w.run();
            calls++;
          }
        });
        row = `${w.name} x${calls}${attempt > 1 ? ` (attempt ${attempt})` : ""}: p99 ${d.p99.toFixed(1)} ms, max ${d.max.toFixed(1)} ms`;
      }
      per.push([d, row]);
      rows.push(row);
    }
    // the instrument: the same sLSTM work done synchronously, several times back to back, blocks the loop
    const sync = work.find((w) => w.runSync)!;
    let syncCalls = 0, syncMs = 0;
    const blocked = await measure(200, async () => {
      await new Promise((r) => setTimeout(r, 20));
      const t0 = performance.now();
      while (performance.now() - t0 < 150) {
        sync.runSync!();
        syncCalls++;
      }
      syncMs = performance.now() - t0;
      await new Promise((r) => setTimeout(r, 20));
    });
    rows.push(`sync ${sync.name} x${syncCalls} back to back (${(syncMs / syncCalls).toFixed(1)} ms per call), for contrast: max ${blocked.max.toFixed(1)} ms`);
    console.log(rows.map((r) => `      ${r}`).join("\n"));
    if (process.env.XLSTM_UNDER_SANITIZER) return; // scripts/sanitize.sh: instrumented code and allocator, no timing bounds
    assert.ok(blocked.max >= 100, `the monitor did not see a ${syncMs.toFixed(0)} ms synchronous block (max ${blocked.max} ms)`);
    assert.ok(all.p99 < 50, allRow);
    for (const [d, row] of per) assert.ok(d.p99 < 50, row);
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
