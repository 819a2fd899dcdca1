// Layer 9: native memory stays flat. Each case runs a call many times with garbage collection in between and
// checks that the resident set does not grow with the number of calls (a leak of even one buffer per call would
// add megabytes here). Needs --expose-gc (set in .mocharc.json).
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Generator, kernels, ops, Tensor } from "../lib";
import { native } from "../lib/native";
import { openSafetensors, writeSafetensors } from "../lib/io/safetensors";

const gc = (globalThis as { gc?: () => void }).gc;

async function rssGrowthMB(fn: () => unknown | Promise<unknown>, warmup: number, reps: number): Promise<number> {
  for (let i = 0; i < warmup; ++i) await fn();
  gc!();
  await new Promise((r) => setImmediate(r));
  gc!();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < reps; ++i) {
    await fn();
    if (i % 10 === 9) gc!();
  }
  gc!();
  await new Promise((r) => setImmediate(r));
  gc!();
  return (process.memoryUsage().rss - before) / 2 ** 20;
}

describe("90 leaks", function () {
  this.timeout(120000);
  before(function () {
    if (!gc) this.skip();
  });
  const g = new Generator(3);
  // ~4 MB of outputs per call: 200 leaked calls would grow RSS by ~800 MB
  const d = { B: 4, S: 128, NH: 2, DH: 64 };
  const H = d.NH * d.DH;
  const x = Tensor.randn([d.B, d.S, 4 * H], { generator: g }).f32();
  const R = Tensor.randn([d.NH, d.DH, 4 * d.DH], { generator: g, std: 0.05 }).f32();
  const bias = new Float32Array(4 * H);

  it("sLSTM / LSTM kernels, sync and async", async () => {
    const grow = await rssGrowthMB(async () => {
      const f = kernels.slstmForward({ x, R, bias, ...d });
      kernels.slstmBackward({ ...f, R, dy: f.y, ...d });
      const a = await kernels.lstmForwardAsync({ x, R, bias, ...d });
      await kernels.lstmBackwardAsync({ ...a, R, dy: a.y, ...d });
    }, 20, 200);
    assert.ok(grow < 40, `RSS grew by ${grow.toFixed(1)} MB over 200 calls`);
  });

  it("gemm sync and async", async () => {
    const n = 256;
    const a = new Float32Array(n * n).fill(0.5), b = new Float32Array(n * n).fill(0.25);
    const grow = await rssGrowthMB(async () => {
      const c = new Float32Array(n * n);
      native.gemm(false, true, n, n, n, 1, a, b, 0, c);
      await native.gemmAsync(true, false, n, n, n, 1, a, b, 0, c);
    }, 20, 300);
    assert.ok(grow < 40, `RSS grew by ${grow.toFixed(1)} MB over 300 calls`);
  });

  it("a training graph: forward, backward and freeing the tape", async () => {
    const w = Tensor.randn([64, 64], { generator: g, requiresGrad: true });
    const inp = Tensor.randn([256, 64], { generator: g });
    const grow = await rssGrowthMB(() => {
      const y = ops.tanh(ops.linear(inp, w));
      const l = ops.mean(ops.mul(y, y));
      l.backward();
      w.grad = null;
    }, 20, 300);
    assert.ok(grow < 40, `RSS grew by ${grow.toFixed(1)} MB over 300 steps`);
  });

  it("opening, reading and closing safetensors files", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "xlstm-leak-")), "t.safetensors");
    writeSafetensors(file, { a: Tensor.randn([256, 256], { generator: g }), b: Tensor.zeros([3], { dtype: "int64" }) });
    const grow = await rssGrowthMB(() => {
      const f = openSafetensors(file);
      f.get("a");
      f.get("b");
      f.close();
    }, 20, 300);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    assert.ok(grow < 40, `RSS grew by ${grow.toFixed(1)} MB over 300 opens`);
  });

  it("xLSTM Large decoder: forward, forwardAsync, failing calls and dropped decoders", async () => {
    const { xLSTMLarge, xLSTMLargeDecoder } = await import("../lib/nn/large");
    const cfg = { embedding_dim: 64, num_heads: 2, num_blocks: 2, vocab_size: 300, chunk_size: 16, mode: "inference" as const };
    const model = new xLSTMLarge(cfg, { generator: new Generator(5) });
    const sd = model.stateDict();
    const dec = xLSTMLargeDecoder.fromModel(model);
    // ~2.4 MB of scratch per call (B 4, S 100; logits alone 480 KB): a leak of it would grow RSS by ~0.5 GB
    const idx = new Tensor(Int32Array.from({ length: 400 }, (_, i) => (i * 7) % 300), [4, 100]);
    const grow = await rssGrowthMB(async () => {
      const r = dec.forward(idx);
      await dec.forwardAsync(idx, { state: r.state, logits: "last" });
      try {
        dec.forward(new Tensor(Int32Array.of(301), [1, 1]));
      } catch {
        /* expected RangeError */
      }
      xLSTMLargeDecoder.fromStateDict(cfg, sd); // a decoder (and its native handle) dropped at once
    }, 10, 200);
    assert.ok(grow < 40, `RSS grew by ${grow.toFixed(1)} MB over 200 calls`);
  });

  it("failing calls (argument errors) do not leak", async () => {
    const grow = await rssGrowthMB(() => {
      try {
        native.slstmForward(new Float32Array(3), new Float32Array(3), new Float32Array(3), x, null, R, bias, d.B, d.S, d.NH, d.DH);
      } catch {
        /* expected RangeError */
      }
      return native.slstmForwardAsync(new Float32Array(d.B * d.S * H), new Float32Array(4 * d.S * d.B * H), new Float32Array(d.B * d.S * 4 * H), x, null, R, bias, d.B, d.S, d.NH, d.DH);
    }, 10, 100);
    assert.ok(grow < 40, `RSS grew by ${grow.toFixed(1)} MB over 100 calls`);
  });
});
