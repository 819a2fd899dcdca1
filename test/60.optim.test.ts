// Layer 6: optimizers. SGD (momentum, dampening, Nesterov), AdamW (decoupled decay, bias correction, parameter
// groups) and gradient clipping against their closed forms evaluated in float64 here; the reference's LR schedule at
// its key steps; weight-decay groups by parameter name; optimizer state round trips; the native AdamW and SGD kernels
// against the TypeScript loops, at 1 and all threads and every SIMD level; gradient accumulation through the tape.
import { strict as assert } from "assert";
import { backends, Generator, nn, ops, optim, setNumThreads, setSimdLevel, Tensor } from "../lib";
import { native } from "../lib/native";
import { adamwStepJs } from "../lib/optim/adamw";
import { sgdStepJs } from "../lib/optim/sgd";
import { LSTMLanguageModel } from "../lib/train/models";
import { assertClose } from "./support/gradcheck";

/** float64 AdamW as torch.optim.AdamW documents it. */
function adamwRef(w: number[], m: number[], v: number[], g: number[], lr: number, b1: number, b2: number, eps: number, wd: number, t: number): void {
  for (let i = 0; i < w.length; ++i) {
    w[i] *= 1 - lr * wd;
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    const mHat = m[i] / (1 - b1 ** t), vHat = v[i] / (1 - b2 ** t);
    w[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
  }
}

describe("60 optim", () => {
  it("SGD with weight decay and momentum follows torch.optim.SGD's update rule", () => {
    const w0 = [0.5, -1.25, 2], g1 = [0.1, 0.2, -0.3], g2 = [-0.4, 0.05, 0.6];
    const lr = 0.1, mom = 0.9, wd = 0.01;
    const p = Tensor.from(w0, undefined, { requiresGrad: true });
    const opt = new optim.SGD([p], { lr, momentum: mom, weight_decay: wd });
    // float64 reference: buf_1 = d_1; buf_2 = mom buf_1 + d_2; w -= lr buf
    const w = [...w0];
    const buf = [0, 0, 0];
    [g1, g2].forEach((g, step) => {
      p.grad = Tensor.from(g);
      opt.step();
      for (let i = 0; i < 3; ++i) {
        const d = g[i] + wd * w[i];
        buf[i] = step === 0 ? d : mom * buf[i] + d;
        w[i] -= lr * buf[i];
      }
      assertClose(p.f32(), w, `step ${step + 1}`, 1e-6, 1e-7);
    });
    opt.zeroGrad();
    assert.equal(p.grad, null);
    assert.throws(() => new optim.SGD([p], { lr: 0 }), /lr must be positive/);
  });

  it("SGD: Nesterov and dampening per parameter group match the closed form", () => {
    const a = Tensor.from([1, -2], undefined, { requiresGrad: true }), b = Tensor.from([0.5], undefined, { requiresGrad: true });
    const opt = new optim.SGD(
      [
        { params: [a], nesterov: true, momentum: 0.8 },
        { params: [b], lr: 0.05, dampening: 0.5 },
      ],
      { lr: 0.2, momentum: 0.9, weight_decay: 0.1 },
    );
    const grads = [
      [[0.3, -0.1], [0.7]],
      [[-0.2, 0.4], [-0.1]],
      [[0.05, 0.05], [0.2]],
    ];
    const wa = [1, -2], wb = [0.5], ba = [0, 0], bb = [0];
    grads.forEach(([ga, gb], t) => {
      a.grad = Tensor.from(ga);
      b.grad = Tensor.from(gb);
      opt.step();
      for (let i = 0; i < 2; ++i) {
        const d = ga[i] + 0.1 * wa[i];
        ba[i] = t === 0 ? d : 0.8 * ba[i] + d;
        wa[i] -= 0.2 * (d + 0.8 * ba[i]);
      }
      const d = gb[0] + 0.1 * wb[0];
      bb[0] = t === 0 ? d : 0.9 * bb[0] + 0.5 * d;
      wb[0] -= 0.05 * bb[0];
      assertClose(a.f32(), wa, `nesterov group, step ${t + 1}`, 1e-6, 1e-7);
      assertClose(b.f32(), wb, `dampened group, step ${t + 1}`, 1e-6, 1e-7);
    });
    assert.throws(() => new optim.SGD([a], { lr: 1, nesterov: true }), (e: Error) => e instanceof RangeError && /nesterov needs momentum > 0/.test(e.message));
    assert.throws(() => new optim.SGD([a], { lr: 1, momentun: 0.9 } as never), (e: Error) => e instanceof RangeError && /unknown option "momentun"/.test(e.message));
    assert.throws(() => new optim.SGD([{ params: [a], lr: -1 }], { lr: 1 }), (e: Error) => e instanceof RangeError && /parameter group 0: lr must be positive/.test(e.message));
    assert.throws(() => new optim.SGD([a, a], { lr: 1 }), /appears in more than one place/);
    assert.throws(() => new optim.SGD([], { lr: 1 }), /empty parameter list/);
  });

  for (const path of ["native", "typescript"] as const)
    it(`AdamW (${path} update): bias correction, decoupled decay and per-group lr/weight_decay match the closed form`, () => {
      const gen = new Generator(7);
      const w1 = Tensor.randn([37], { generator: gen, requiresGrad: true }), w2 = Tensor.randn([5], { generator: gen, requiresGrad: true });
      const opt = new optim.AdamW([{ params: [w1] }, { params: [w2], lr: 0.02, weight_decay: 0 }], { lr: 0.01, betas: [0.8, 0.95], eps: 1e-6, weight_decay: 0.3 });
      opt.useNative = path === "native";
      const r1 = { w: Array.from(w1.f32()), m: new Array(37).fill(0), v: new Array(37).fill(0) };
      const r2 = { w: Array.from(w2.f32()), m: new Array(5).fill(0), v: new Array(5).fill(0) };
      for (let t = 1; t <= 4; ++t) {
        const g1 = Tensor.randn([37], { generator: gen, std: 0.5 }), g2 = Tensor.randn([5], { generator: gen });
        w1.grad = g1;
        w2.grad = t === 3 ? null : g2; // a parameter without a gradient is skipped (its step count too)
        opt.step();
        adamwRef(r1.w, r1.m, r1.v, Array.from(g1.f32()), 0.01, 0.8, 0.95, 1e-6, 0.3, t);
        if (t !== 3) adamwRef(r2.w, r2.m, r2.v, Array.from(g2.f32()), 0.02, 0.8, 0.95, 1e-6, 0, t < 3 ? t : t - 1);
        assertClose(w1.f32(), r1.w, `group 0 after step ${t}`, 1e-5, 1e-6);
        assertClose(w2.f32(), r2.w, `group 1 after step ${t}`, 1e-5, 1e-6);
      }
      assert.equal(opt.state.get(w2)!.step, 3);
      assert.throws(() => new optim.AdamW([w1], { betas: [0.9, 1] }), (e: Error) => e instanceof RangeError && /betas must be two numbers in \[0, 1\)/.test(e.message));
      assert.throws(() => new optim.AdamW([w1], { lr: -1 }), (e: Error) => e instanceof RangeError && /lr must be a finite number >= 0/.test(e.message));
      assert.throws(() => new optim.AdamW([{ params: [w1], momentum: 1 }]), /unknown option "momentum"/);
    });

  it("the native AdamW kernel equals the TypeScript loop at 1 and all threads, and checks its arguments", () => {
    const n = 100003; // several thread chunks and a ragged tail
    const gen = new Generator(3);
    const w = gen.fillNormal(new Float32Array(n)), g = gen.fillNormal(new Float32Array(n));
    const m = gen.fillNormal(new Float32Array(n), 0, 0.1), v = gen.fillUniform(new Float32Array(n), 0, 0.01);
    const js = { w: w.slice(), m: m.slice(), v: v.slice() };
    adamwStepJs(js.w, js.m, js.v, g, 1e-3, 0.9, 0.999, 1e-8, 0.1, 5);
    const runs = [1, 0].map((threads) => {
      setNumThreads(threads);
      const r = { w: w.slice(), m: m.slice(), v: v.slice() };
      native.adamwStep(r.w, r.m, r.v, g, 1e-3, 0.9, 0.999, 1e-8, 0.1, 5);
      return r;
    });
    setNumThreads(0);
    assert.deepEqual(runs[0].w, runs[1].w, "1 thread vs all threads: bitwise equal");
    assertClose(runs[1].w, Array.from(js.w), "native vs TypeScript p", 1e-6, 1e-7);
    assertClose(runs[1].m, Array.from(js.m), "native vs TypeScript m", 1e-6, 1e-7);
    assertClose(runs[1].v, Array.from(js.v), "native vs TypeScript v", 1e-6, 1e-9);
    assert.throws(() => native.adamwStep(w, new Float32Array(3), v, g, 1e-3, 0.9, 0.999, 1e-8, 0.1, 1), (e: Error) => e instanceof RangeError && /adamwStep: m has 3 elements/.test(e.message));
    assert.throws(() => native.adamwStep(w, m, v, new Int32Array(n) as never, 1e-3, 0.9, 0.999, 1e-8, 0.1, 1), (e: Error) => e instanceof TypeError && /\bg\b/.test(e.message));
    assert.throws(() => native.adamwStep(w, m, v, g, 1e-3, 1.5, 0.999, 1e-8, 0.1, 1), (e: Error) => e instanceof RangeError && /beta1 must be in \[0, 1\)/.test(e.message));
    assert.throws(() => native.adamwStep(w, w, v, g, 1e-3, 0.9, 0.999, 1e-8, 0.1, 1), (e: Error) => e instanceof RangeError && /overlap/.test(e.message));
    assert.throws(() => native.adamwStep(w, m, v, g, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0), (e: Error) => e instanceof RangeError && /step/.test(e.message));
  });

  it("the native SGD kernel equals the TypeScript loop bit for bit (every variant, SIMD level, thread count)", () => {
    const n = 70001; // several thread chunks and a ragged tail
    const gen = new Generator(4);
    const w = gen.fillNormal(new Float32Array(n)), g = gen.fillNormal(new Float32Array(n)), buf0 = gen.fillNormal(new Float32Array(n), 0, 0.1);
    const variants = [
      { mom: 0, damp: 0, wd: 0, nesterov: false, first: false },
      { mom: 0, damp: 0, wd: 0.01, nesterov: false, first: false },
      { mom: 0.9, damp: 0, wd: 0.01, nesterov: false, first: true },
      { mom: 0.9, damp: 0.3, wd: 0.01, nesterov: false, first: false },
      { mom: 0.8, damp: 0, wd: 0, nesterov: true, first: false },
    ];
    const best = backends().cpu.simdSupported;
    try {
      for (const v of variants) {
        const js = { w: w.slice(), b: buf0.slice() };
        sgdStepJs(js.w, v.mom ? js.b : null, g, 0.1, v.mom, v.damp, v.wd, v.nesterov, v.first);
        for (const level of ["scalar", "avx2", "avx512"] as const) {
          if (level !== "scalar" && (level === "avx512" ? best !== "avx512" : best === "scalar")) continue;
          setSimdLevel(level);
          for (const threads of [1, 0]) {
            setNumThreads(threads);
            const r = { w: w.slice(), b: buf0.slice() };
            native.sgdStep(r.w, v.mom ? r.b : null, g, 0.1, v.mom, v.damp, v.wd, v.nesterov, v.first);
            assert.deepEqual(r.w, js.w, `${JSON.stringify(v)} ${level} ${threads || "all"} threads: p`);
            if (v.mom) assert.deepEqual(r.b, js.b, `${JSON.stringify(v)} ${level}: momentum buffer`);
          }
        }
      }
    } finally {
      setSimdLevel(best);
      setNumThreads(0);
    }
    assert.throws(() => native.sgdStep(w, null, g, 0.1, 0.9, 0, 0, false, true), (e: Error) => e instanceof TypeError && /sgdStep: buf/.test(e.message));
    assert.throws(() => native.sgdStep(w, buf0, new Float32Array(3), 0.1, 0, 0, 0, false, false), (e: Error) => e instanceof RangeError && /sgdStep: g has 3 elements/.test(e.message));
    assert.throws(() => native.sgdStep(w, w, g, 0.1, 0.9, 0, 0, false, false), (e: Error) => e instanceof RangeError && /overlap/.test(e.message));
    assert.throws(() => native.sgdStep(w, null, g, -1, 0, 0, 0, false, false), (e: Error) => e instanceof RangeError && /lr must be in/.test(e.message));
  });

  it("optimizer state_dict round trip continues exactly (AdamW and SGD with momentum)", () => {
    for (const make of [(ps: Tensor[]) => new optim.AdamW(ps, { lr: 0.01 }), (ps: Tensor[]) => new optim.SGD(ps, { lr: 0.1, momentum: 0.9 })] as const) {
      const gen = new Generator(11);
      const a = [Tensor.randn([4, 3], { generator: gen, requiresGrad: true }), Tensor.randn([3], { generator: gen, requiresGrad: true })];
      const b = a.map((t) => t.clone().requiresGrad_());
      const grads = [0, 1, 2].map(() => a.map((t) => Tensor.randn(t.shape as number[], { generator: gen })));
      const optA = make(a);
      a.forEach((p, i) => (p.grad = grads[0][i]));
      optA.step();
      const saved = optA.stateDict();
      const json = JSON.parse(JSON.stringify(saved.param_groups));
      assert.deepEqual(json.map((g: { params: number[] }) => g.params), [[0, 1]]);
      b.forEach((p, i) => p.f32().set(a[i].f32()));
      const optB = make(b);
      optB.loadStateDict(saved);
      for (const k of [1, 2]) {
        a.forEach((p, i) => (p.grad = grads[k][i]));
        b.forEach((p, i) => (p.grad = grads[k][i]));
        optA.step();
        optB.step();
      }
      a.forEach((p, i) => assert.deepEqual(b[i].f32(), p.f32(), `parameter ${i} after resuming`));
      const other = make([Tensor.zeros([2], { requiresGrad: true }), Tensor.zeros([3], { requiresGrad: true })]);
      assert.throws(() => other.loadStateDict(saved), (e: Error) => e instanceof RangeError && /has 8 values, parameter 0 has 2|has 12 values, parameter 0 has 2/.test(e.message));
    }
  });

  it("warm-up + cosine schedule as the reference's LinearWarmupCosineAnnealing, at its key steps", () => {
    const lr = 1e-3, min = 1e-6;
    const s = optim.warmupCosineSchedule({ lr, warmup_steps: 100, decay_until_step: 1100, min_lr: min });
    const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-12 + 1e-9 * Math.abs(b), `${what}: ${a} vs ${b}`);
    close(s(0), 0, "step 0 (warm-up starts at 0)");
    close(s(50), lr / 2, "half-way through the warm-up");
    close(s(99), (lr * 99) / 100, "last warm-up step");
    close(s(100), lr, "end of the warm-up");
    close(s(600), (lr + min) / 2, "middle of the cosine");
    close(s(350), min + 0.5 * (1 + Math.cos(Math.PI / 4)) * (lr - min), "a quarter into the cosine");
    close(s(1100), min, "decay_until_step");
    close(s(5000), min, "after the decay");
    const c = optim.constantSchedule(0.5);
    assert.equal(c(0), 0.5);
    assert.equal(c(10 ** 6), 0.5);
    const noWarm = optim.warmupCosineSchedule({ lr: 1, warmup_steps: 0, decay_until_step: 10 });
    close(noWarm(0), 1, "no warm-up: step 0 has the peak rate");
    assert.throws(() => optim.warmupCosineSchedule({ lr: 1, warmup_steps: 10, decay_until_step: 5 }), /decay_until_step must be an integer >= warmup_steps/);
    assert.throws(() => optim.warmupCosineSchedule({ lr: 1, warmup_steps: 0, decay_until_step: 5, min_lr: 2 }), /min_lr must be in \[0, lr\]/);
    // the scheduler sets every group's rate before each update
    const p = Tensor.zeros([1], { requiresGrad: true }), q = Tensor.zeros([1], { requiresGrad: true });
    const opt = new optim.AdamW([{ params: [p] }, { params: [q], weight_decay: 0 }], { lr: 1 });
    const sch = new optim.LRScheduler(opt, s);
    sch.lastStep = 50;
    assert.equal(sch.apply(), s(50));
    assert.deepEqual(opt.paramGroups.map((g) => g.lr), [s(50), s(50)]);
    sch.step();
    assert.deepEqual(sch.stateDict(), { last_step: 51 });
  });

  it("weight-decay groups follow the reference's naming rule (spec 7.5), tied weights once", () => {
    const cfg: nn.xLSTMLMModelConfig = {
      vocab_size: 11, embedding_dim: 16, num_blocks: 2, slstm_at: [1],
      mlstm_block: { mlstm: { conv1d_kernel_size: 4, qkv_proj_blocksize: 4, num_heads: 2 } },
      slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 4 }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } },
    };
    const model = new nn.xLSTMLMModel(cfg, { generator: new Generator(1) });
    const { decay, noDecay } = optim.splitWeightDecayNames(model);
    const s = "xlstm_block_stack.blocks.1.", m = "xlstm_block_stack.blocks.0.";
    for (const k of ["lm_head.weight", `${s}xlstm.fgate.weight`, `${s}xlstm.conv1d.conv.weight`, `${s}ffn.proj_up.weight`, `${m}xlstm.proj_up.weight`, `${m}xlstm.q_proj.weight`, `${m}xlstm.mlstm_cell.igate.weight`])
      assert.ok(decay.includes(k), `${k} is decayed`);
    for (const k of ["token_embedding.weight", `${s}xlstm.slstm_cell._recurrent_kernel_`, `${s}xlstm.slstm_cell._bias_`, `${s}xlstm.group_norm.weight`, `${s}xlstm_norm.weight`, `${s}ffn_norm.weight`, `${s}xlstm.conv1d.conv.bias`, `${m}xlstm.learnable_skip`, `${m}xlstm.mlstm_cell.outnorm.weight`, `${m}xlstm.mlstm_cell.igate.bias`, "xlstm_block_stack.post_blocks_norm.weight"])
      assert.ok(noDecay.includes(k), `${k} is not decayed`);
    assert.equal(decay.length + noDecay.length, model.parameters().length, "every parameter in exactly one group");
    const onEmb = optim.splitWeightDecayNames(new nn.xLSTMLMModel({ ...cfg, weight_decay_on_embedding: true }, { generator: new Generator(1) }));
    assert.ok(onEmb.decay.includes("token_embedding.weight"));
    const tied = new nn.xLSTMLMModel({ ...cfg, tie_weights: true }, { generator: new Generator(1) });
    const t = optim.splitWeightDecayNames(tied);
    assert.ok(!t.decay.includes("lm_head.weight") && !t.noDecay.includes("lm_head.weight"), "the tied head is the embedding, listed once");
    assert.ok(t.noDecay.includes("token_embedding.weight"));
    const groups = optim.xlstmParamGroups(model, 0.1);
    assert.deepEqual(groups.map((g) => [g.params.length, g.weight_decay]), [[decay.length, 0.1], [noDecay.length, 0]]);
  });

  it("clipGradNorm scales gradients to the maximum norm and returns the norm before clipping", () => {
    const a = Tensor.zeros([2], { requiresGrad: true }), b = Tensor.zeros([1], { requiresGrad: true });
    a.grad = Tensor.from([3, 4]);
    b.grad = Tensor.from([12]);
    assert.ok(Math.abs(optim.gradNorm([a, b]) - 13) < 1e-9);
    const norm = optim.clipGradNorm([a, b], 1);
    assert.ok(Math.abs(norm - 13) < 1e-6);
    const k = 1 / (13 + 1e-6);
    assertClose([...a.grad.f32(), ...b.grad!.f32()], [3 * k, 4 * k, 12 * k], "clipped", 1e-6, 0);
    const before = Array.from(a.grad.f32());
    optim.clipGradNorm([a, b], 5); // norm 1 < 5: unchanged
    assert.deepEqual(Array.from(a.grad.f32()), before);
    assert.throws(() => optim.clipGradNorm([a], 0), /maxNorm must be positive/);
  });

  it("gradient accumulation: two half batches with the loss halved give the full batch's gradients", () => {
    const model = new LSTMLanguageModel({ vocab_size: 7, hidden_size: 8 }, { generator: new Generator(5) });
    const ids = Int32Array.from({ length: 4 * 6 }, (_, i) => (i * 5 + 3) % 7);
    const lossOf = (rows: number[]) => {
      const x = new Int32Array(rows.length * 5), y = new Int32Array(rows.length * 5);
      rows.forEach((r, b) => {
        x.set(ids.subarray(r * 6, r * 6 + 5), b * 5);
        y.set(ids.subarray(r * 6 + 1, r * 6 + 6), b * 5);
      });
      const { logits } = model.forward(new Tensor(x, [rows.length, 5]));
      return ops.crossEntropy(logits.reshape(rows.length * 5, 7), new Tensor(y, [rows.length * 5]));
    };
    lossOf([0, 1, 2, 3]).backward();
    const full = model.parameters().map((p) => Array.from(p.grad!.f32()));
    model.zeroGrad();
    ops.scale(lossOf([0, 1]), 0.5).backward();
    ops.scale(lossOf([2, 3]), 0.5).backward();
    model.parameters().forEach((p, i) => assertClose(p.grad!.f32(), full[i], `accumulated gradient ${i}`, 1e-5, 1e-6));
  });
});
