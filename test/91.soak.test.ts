// Layer 9: soak. Training steps (a small mLSTM + sLSTM language model, forward / cross-entropy / backward / clip /
// AdamW / zero-grad, dropout on) and generated tokens (the fused native session and the Tensor path) run for a
// long time while the resident set (RSS) and V8's ArrayBuffer bytes are sampled after garbage collection. After a
// warm-up (allocator arenas, JIT, thread pool), both must stay flat: the largest sample after warm-up may exceed
// the warm-up sample by at most a stated bound, and the least-squares slope must stay small.
// `npm test` runs a short version (hundreds of steps) whose bounds would catch a leak of one gradient buffer per
// step (the 64 KiB embedding gradient: +32 MB over the measured steps); a control run with exactly that leak
// injected must exceed the ArrayBuffer bound, so the measurement can fail (RSS alone may not show it: see the control).
// XLSTM_TEST_SLOW=1 runs thousands of steps and tokens.
// Needs --expose-gc (set in .mocharc.json).
import { strict as assert } from "assert";
import { generate, nn, ops, optim, Tensor } from "../lib";
import { Generator } from "../lib/rng";

const gc = (globalThis as { gc?: () => void }).gc;
const SLOW = !!process.env.XLSTM_TEST_SLOW;
const MB = 2 ** 20;

const V = 256, B = 2, S = 16;
const CONFIG = {
  vocab_size: V, embedding_dim: 64, num_blocks: 2, slstm_at: [1], dropout: 0.1, context_length: S,
  mlstm_block: { mlstm: { conv1d_kernel_size: 4, qkv_proj_blocksize: 4, num_heads: 2 } },
  slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 4 }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } },
} as nn.xLSTMLMModelConfig;

interface Sample {
  at: number;
  rss: number;
  /** RSS outside V8's JS heap (native allocations, ArrayBuffer memory, code): where a native leak shows */
  native: number;
  /** live JS objects after collection: where a leak of retained tensors / tape nodes shows */
  heapUsed: number;
  arrayBuffers: number;
  /** native memory reported to V8 (ArrayBuffers and native handles such as the fused layers' saved activations) */
  external: number;
}

/** Memory after a full collection (twice: finalizers of the first may free more). */
function sample(at: number): Sample {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return { at, rss: m.rss / MB, native: (m.rss - m.heapTotal) / MB, heapUsed: m.heapUsed / MB, arrayBuffers: m.arrayBuffers / MB, external: m.external / MB };
}

interface Soak {
  warm: Sample;
  last: Sample;
  /** largest sample after warm-up minus the warm-up sample, MB */
  rssGrowth: number;
  nativeGrowth: number;
  heapGrowth: number;
  abGrowth: number;
  extGrowth: number;
  /** least-squares slope of the native part over the samples after warm-up, MB per 1000 units (steps / tokens) */
  nativeSlope: number;
  ms: number;
}

/** Run `unit(i)` for i < total, sampling every `every` units; the sample at `warmup` is the reference. */
async function soak(total: number, warmup: number, every: number, unit: (i: number) => unknown): Promise<Soak> {
  const t0 = Date.now();
  const samples: Sample[] = [];
  for (let i = 0; i < total; ++i) {
    await unit(i);
    if (i + 1 >= warmup && (i + 1 - warmup) % every === 0) samples.push(sample(i + 1));
  }
  if (process.env.XLSTM_SOAK_VERBOSE) console.log(samples.map((x) => `${x.at}:${x.rss.toFixed(1)}/${x.native.toFixed(1)}/${x.heapUsed.toFixed(1)}/${x.arrayBuffers.toFixed(1)}`).join(" "));
  const [warm] = samples;
  const after = samples.slice(1);
  const mx = (k: "rss" | "native" | "heapUsed" | "arrayBuffers" | "external") => Math.max(...after.map((s) => s[k])) - warm[k];
  const n = samples.length, mean = (f: (s: Sample) => number) => samples.reduce((a, s) => a + f(s), 0) / n;
  const ma = mean((s) => s.at), mr = mean((s) => s.native);
  const slope = samples.reduce((a, s) => a + (s.at - ma) * (s.native - mr), 0) / samples.reduce((a, s) => a + (s.at - ma) ** 2, 0);
  return { warm, last: samples[n - 1], rssGrowth: mx("rss"), nativeGrowth: mx("native"), heapGrowth: mx("heapUsed"), abGrowth: mx("arrayBuffers"), extGrowth: mx("external"), nativeSlope: slope * 1000, ms: Date.now() - t0 };
}

function describeSoak(what: string, units: number, s: Soak, unit: string, per = 1): string {
  const f = (x: number) => x.toFixed(1);
  const d = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;
  return `${what}: ${units} ${unit}, RSS ${f(s.warm.rss)} MB after warm-up (${s.warm.at * per}) -> ${f(s.last.rss)} MB at the end (max ${d(s.rssGrowth)}); outside the JS heap max ${d(s.nativeGrowth)} MB, slope ${(s.nativeSlope / per).toFixed(2)} MB/1000; JS heap max ${d(s.heapGrowth)} MB; ArrayBuffers max ${d(s.abGrowth)} MB; ${(s.ms / 1000).toFixed(1)} s`;
}

/** A training setup: model, optimizer and a step function over a fixed token stream. */
function trainer(seed: number) {
  const g = new Generator(seed);
  const model = new nn.xLSTMLMModel(CONFIG, { generator: g });
  const opt = new optim.AdamW(optim.xlstmParamGroups(model, 0.1), { lr: 1e-3 });
  const data = Int32Array.from({ length: 8192 }, (_, i) => (i * 7 + (i >> 3)) % V);
  const embedding = model.parameters().find((p) => p.shape.length === 2 && p.shape[0] === V)!;
  const leaked: Float32Array[] = [];
  const step = (i: number, leak = false) => {
    const off = (i * B * S) % (data.length - B * S - 1);
    const x = new Tensor(data.slice(off, off + B * S), [B, S]);
    const y = new Tensor(data.slice(off + 1, off + 1 + B * S), [B * S]);
    const loss = ops.crossEntropy(model.forward(x).logits.reshape(B * S, V), y);
    loss.backward();
    optim.clipGradNorm(model.parameters(), 1);
    if (leak) leaked.push(embedding.grad!.f32()); // the injected leak of the control run
    opt.step();
    model.zeroGrad();
    return loss.item();
  };
  return { model, step, leaked, gradBytes: embedding.numel * 4 };
}

describe("91 soak: memory stays flat over many training steps and generated tokens", function () {
  this.timeout(SLOW ? 1_800_000 : 60_000);
  before(function () {
    if (!gc) this.skip();
  });

  // Bounds after warm-up, MB. Without a leak the native part (RSS minus V8's heap) moves by up to ~10 MB in one-off
  // steps (allocator arenas, code space); a leak grows without end: one 64 KiB gradient per step is +32 MB over 500
  // steps. JS-heap and ArrayBuffer bytes are steady to within ~0.5 MB.
  const NATIVE_BOUND = 16, HEAP_BOUND = 4, AB_BOUND = 2, SLOPE_BOUND = 3;
  const steps = SLOW ? { total: 6000, warmup: 500, every: 250 } : { total: 900, warmup: 400, every: 50 };

  const check = (s: Soak, what: string, per = 1) => {
    assert.ok(s.nativeGrowth < NATIVE_BOUND, `${what}: memory outside the JS heap grew by ${s.nativeGrowth.toFixed(1)} MB after warm-up`);
    assert.ok(s.heapGrowth < HEAP_BOUND, `${what}: the JS heap grew by ${s.heapGrowth.toFixed(1)} MB after warm-up`);
    assert.ok(s.abGrowth < AB_BOUND, `${what}: ArrayBuffers grew by ${s.abGrowth.toFixed(1)} MB after warm-up`);
    assert.ok(s.extGrowth < AB_BOUND, `${what}: native memory reported to V8 grew by ${s.extGrowth.toFixed(1)} MB after warm-up`);
    if (SLOW) assert.ok(s.nativeSlope / per < SLOPE_BOUND, `${what}: native memory slope ${(s.nativeSlope / per).toFixed(2)} MB per 1000`);
  };

  it(`training: ${steps.total} steps (${steps.warmup} warm-up): native +${NATIVE_BOUND} MB, JS heap +${HEAP_BOUND} MB, ArrayBuffers +${AB_BOUND} MB at most${SLOW ? `, native slope under ${SLOPE_BOUND} MB/1000 steps` : ""}`, async () => {
    const t = trainer(91);
    let first = NaN, last = NaN;
    const s = await soak(steps.total, steps.warmup, steps.every, (i) => {
      last = t.step(i);
      if (i === 0) first = last;
    });
    console.log(`      ${describeSoak("training", steps.total, s, "steps")}; loss ${first.toFixed(2)} -> ${last.toFixed(2)}`);
    assert.ok(last < first, "the model trains");
    check(s, "training");
  });

  it("control: the same measurement catches one leaked gradient buffer per step", async function () {
    if (SLOW) this.skip(); // shown by the fast run; the slow one measures
    const t = trainer(92);
    const measured = steps.total - steps.warmup;
    const s = await soak(steps.total, steps.warmup, steps.every, (i) => t.step(i, i >= steps.warmup));
    const leakedMB = (measured * t.gradBytes) / MB;
    console.log(`      control, ${(t.gradBytes / 1024).toFixed(0)} KiB leaked per step (${leakedMB.toFixed(1)} MB over ${measured} steps): outside the JS heap +${s.nativeGrowth.toFixed(1)} MB, ArrayBuffers +${s.abGrowth.toFixed(1)} MB`);
    // RSS cannot always show it: memory the allocator keeps after earlier tests (addon.cc's malloc tuning keeps up
    // to 256 MB) is resident already, and a leak may fill it first. V8's ArrayBuffer accounting always does.
    assert.ok(s.abGrowth > AB_BOUND, `the leak raised ArrayBuffers by only ${s.abGrowth.toFixed(1)} MB`);
    t.leaked.length = 0;
  });

  for (const fused of [true, false]) {
    const tok = SLOW ? { total: fused ? 40000 : 8000, warmup: 1000 } : { total: fused ? 6000 : 1200, warmup: fused ? 1000 : 400 };
    const per = 200; // tokens per generate() call: each call is a new prompt, state and (fused) session
    it(`generation (${fused ? "fused native session" : "Tensor path"}): ${tok.total} tokens (${tok.warmup} warm-up), same bounds`, async () => {
      const { model } = trainer(93);
      model.eval();
      let n = 0;
      const s = await soak(tok.total / per, tok.warmup / per, SLOW ? 10 : 1, async (r) => {
        for await (const _ of generate(model, [1 + (r % 50), 2, 3, 4], { maxTokens: per, seed: r, fused, temperature: 0.8 })) n++;
      });
      assert.equal(n, tok.total);
      console.log(`      ${describeSoak(`generation (${fused ? "fused" : "Tensor path"})`, tok.total, s, "tokens", per)}`);
      check(s, "generation", per);
    });
  }
});
