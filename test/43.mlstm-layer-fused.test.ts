// Layer 4: the fused mLSTM layer (ops.mlstmLayer, csrc/kernels/mlstm_layer.h) against the same layer composed from
// single ops (the path the fixtures check), forward and every gradient, at every SIMD level and awkward sizes;
// a directional finite-difference check of its own backward; the tape's release of its native memory; bad input.
import { strict as assert } from "assert";
import { backends, Generator, nn, ops, setSimdLevel, Tensor } from "../lib";
import { native } from "../lib/native";
import { worstRatio } from "./support/gradcheck";
import { mlstmLayer } from "../lib/ops/mlstm-layer";
import type * as ops_ from "../lib/ops/mlstm-layer";

type Shape = { B: number; S: number; E: number; NH: number; K: number; Bq: number };

function randomLayer(s: Shape, seed: number): nn.mLSTMLayer {
  const gen = new Generator(seed);
  const layer = new nn.mLSTMLayer({ embedding_dim: s.E, num_heads: s.NH, conv1d_kernel_size: s.K, qkv_proj_blocksize: s.Bq, proj_factor: 2, round_proj_up_to_multiple_of: 4 }, { generator: gen });
  // the reference init zeroes several weights (gates, outnorm): random values everywhere exercise every path
  for (const [, t] of layer.stateDict()) gen.fillNormal(t.f32(), 0, 0.3);
  return layer;
}

function runLayer(layer: nn.mLSTMLayer, x: Tensor, w: Tensor, fused: boolean) {
  layer.fused = fused;
  layer.zeroGrad();
  x.grad = null;
  const y = layer.forward(x).y;
  ops.sum(ops.mul(y, w)).backward();
  const grads = new Map<string, Float32Array>();
  for (const [k, p] of layer.namedParameters()) grads.set(k, p.grad!.f32().slice());
  return { y: y.f32().slice(), dx: x.grad!.f32().slice(), grads };
}

function assertSame(a: ReturnType<typeof runLayer>, b: ReturnType<typeof runLayer>, what: string) {
  // tolerances relative to each array's scale: both paths round differently (sums in other orders, fast exp)
  const check = (p: Float32Array, q: Float32Array, name: string) => {
    const scale = q.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
    const r = worstRatio(p, q, 1e-4, 2e-5 * scale + 1e-6);
    assert.ok(r.ratio <= 1, `${what} ${name}: ratio ${r.ratio.toFixed(2)} at ${r.index}: fused ${p[r.index]}, composed ${q[r.index]}`);
  };
  check(a.y, b.y, "y");
  check(a.dx, b.dx, "dx");
  assert.deepEqual([...a.grads.keys()].sort(), [...b.grads.keys()].sort());
  for (const [k, g] of b.grads) check(a.grads.get(k)!, g, `d${k}`);
}

describe("43 fused mLSTM layer", () => {
  const shapes: Shape[] = [
    { B: 2, S: 37, E: 16, NH: 2, K: 4, Bq: 4 },
    { B: 1, S: 1, E: 8, NH: 1, K: 2, Bq: 2 },
    { B: 3, S: 130, E: 12, NH: 4, K: 3, Bq: 8 }, // S > 2 chunks, not a multiple of 64
    { B: 2, S: 9, E: 8, NH: 2, K: 1, Bq: 1 },
    { B: 2, S: 70, E: 32, NH: 4, K: 4, Bq: 4 }, // the workloads' NH 4, head size 16
    { B: 1, S: 20, E: 32, NH: 8, K: 2, Bq: 8 },
    { B: 2, S: 70, E: 64, NH: 8, K: 4, Bq: 4 }, // 16 gates (two groups of 8), head size 16, blocks across sequences
    { B: 3, S: 45, E: 40, NH: 2, K: 3, Bq: 4 }, // head size 40: vector tiles and a tail, runs shorter than 4 rows
  ];
  for (const s of shapes)
    it(`equals the composed layer, forward and every gradient: B ${s.B} S ${s.S} E ${s.E} NH ${s.NH} K ${s.K} Bq ${s.Bq}`, () => {
      const layer = randomLayer(s, 11);
      const gen = new Generator(12);
      const x = Tensor.randn([s.B, s.S, s.E], { generator: gen });
      x.requiresGrad = true;
      const w = Tensor.randn([s.B, s.S, s.E], { generator: gen });
      const composed = runLayer(layer, x, w, false);
      const best = backends().cpu.simdSupported;
      try {
        for (const level of ["scalar", "avx2", "avx512"] as const) {
          if (level === "avx512" && best !== "avx512") continue;
          if (level === "avx2" && best === "scalar") continue;
          setSimdLevel(level);
          assertSame(runLayer(layer, x, w, true), composed, level);
        }
      } finally {
        setSimdLevel(best);
      }
    });

  // the block form: x + layer(LayerNorm(x)) in one op against ops.layerNorm, the fused layer and ops.add
  for (const [s, residualWeight, eps] of [[shapes[0], true, 1e-5], [shapes[4], true, 1e-5], [shapes[6], false, 1e-3]] as const)
    it(`block form (pre-norm + residual) equals the composed norm, layer and add: B ${s.B} S ${s.S} E ${s.E} NH ${s.NH}, residualWeight ${residualWeight}`, () => {
      const layer = randomLayer(s, 41);
      const gen = new Generator(42);
      const x = Tensor.randn([s.B, s.S, s.E], { generator: gen });
      const lnW = ops.mul(Tensor.randn([s.E], { generator: gen }), 0.3).detach();
      const wy = Tensor.randn([s.B, s.S, s.E], { generator: gen });
      const weights = (layer as unknown as { fusedWeights(): ops_.MlstmLayerWeights }).fusedWeights();
      const params = [x, lnW, ...Object.values(weights)];
      const run = (block: boolean) => {
        for (const t of params) (t.requiresGrad = true), (t.grad = null);
        const y = block
          ? mlstmLayer(x, weights, { numHeads: s.NH, preNorm: { weight: lnW, eps, residualWeight } })
          : ops.add(x, mlstmLayer(ops.layerNorm(x, lnW, null, { eps, residualWeight }), weights, { numHeads: s.NH }));
        ops.sum(ops.mul(y, wy)).backward();
        return [y.f32().slice(), ...params.map((t) => t.grad!.f32().slice())] as Float32Array[];
      };
      const best = backends().cpu.simdSupported;
      try {
        for (const level of ["scalar", "avx2", "avx512"] as const) {
          if ((level === "avx512" && best !== "avx512") || (level === "avx2" && best === "scalar")) continue;
          setSimdLevel(level);
          const a = run(true), b = run(false);
          a.forEach((p, i) => {
            const scale = b[i].reduce((m: number, v: number) => Math.max(m, Math.abs(v)), 0) || 1;
            const r = worstRatio(p, b[i], 1e-5, 1e-6 * scale + 1e-7);
            assert.ok(r.ratio <= 1, `${level} result ${i} (0: y, 1: dx, 2: d lnW, then the layer's weights): ratio ${r.ratio.toFixed(2)} at ${r.index}: ${p[r.index]} vs ${b[i][r.index]}`);
          });
        }
      } finally {
        setSimdLevel(best);
      }
    });

  it("xLSTMBlock runs its mLSTM half as the block form, with the same output and gradients as composing it", () => {
    const block = new nn.xLSTMBlock(new nn.mLSTMLayer({ embedding_dim: 16, num_heads: 2, conv1d_kernel_size: 4, qkv_proj_blocksize: 4 }, { generator: new Generator(51) }), 16, null);
    for (const [, t] of block.stateDict()) new Generator(52).fillNormal(t.f32(), 0, 0.3);
    const x = Tensor.randn([2, 9, 16], { generator: new Generator(53) });
    const run = (fused: boolean) => {
      (block.xlstm as nn.mLSTMLayer).fused = fused;
      block.zeroGrad();
      const y = block.forward(x).y;
      ops.sum(ops.mul(y, y)).backward();
      return { y, grads: [...block.namedParameters()].map(([k, p]) => [k, p.grad!.f32().slice()] as const) };
    };
    const a = run(true), b = run(false);
    assert.equal(a.y._node?.name, "mlstmLayer");
    assert.notEqual(b.y._node?.name, "mlstmLayer");
    // the unfused path composes single ops (other summation orders): the tolerances of assertSame above
    const close = (p: Float32Array, q: Float32Array) => worstRatio(p, q, 1e-4, 2e-5 * (q.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1) + 1e-6).ratio <= 1;
    assert.ok(close(a.y.f32(), b.y.f32()));
    assert.deepEqual(a.grads.map(([k]) => k), b.grads.map(([k]) => k));
    assert.ok(a.grads.some(([k]) => k === "xlstm_norm.weight"));
    a.grads.forEach(([k, g], i) => assert.ok(close(g, b.grads[i][1]), k));
  });

  it("its gradient matches central finite differences along random directions", () => {
    const s = { B: 2, S: 11, E: 8, NH: 2, K: 3, Bq: 4 };
    const layer = randomLayer(s, 21);
    layer.fused = true;
    const gen = new Generator(22);
    const x = Tensor.randn([s.B, s.S, s.E], { generator: gen });
    x.requiresGrad = true;
    const w = Tensor.randn([s.B, s.S, s.E], { generator: gen });
    const loss = () => {
      const y = layer.forward(x).y.f32(), wf = w.f32();
      let acc = 0;
      for (let j = 0; j < y.length; ++j) acc += y[j] * wf[j];
      return acc;
    };
    const g = runLayer(layer, x, w, true);
    const targets: [string, Tensor, Float32Array][] = [["x", x, g.dx], ...[...layer.namedParameters()].map(([k, p]) => [k, p, g.grads.get(k)!] as [string, Tensor, Float32Array])];
    for (const [name, t, grad] of targets) {
      const data = t.f32();
      const dir = Tensor.randn([data.length], { generator: gen }).f32();
      const orig = data.slice();
      const h = 3e-3;
      const at = (sign: number) => {
        for (let j = 0; j < data.length; ++j) data[j] = orig[j] + sign * h * dir[j];
        return loss();
      };
      const fd = (at(1) - at(-1)) / (2 * h);
      data.set(orig);
      let an = 0;
      for (let j = 0; j < data.length; ++j) an += grad[j] * dir[j];
      assert.ok(Math.abs(fd - an) <= 1e-2 * Math.max(1, Math.abs(fd)), `${name}: directional derivative ${an} vs finite differences ${fd}`);
    }
  });

  it("is used for full sequences, and the composed path where it does not apply (state, biases)", () => {
    const s = { B: 1, S: 6, E: 8, NH: 2, K: 2, Bq: 4 };
    const layer = randomLayer(s, 31);
    const x = Tensor.randn([1, 6, 8], { generator: new Generator(32) });
    x.requiresGrad = true;
    const names = (y: Tensor) => y._node?.name;
    assert.equal(names(layer.forward(x).y), "mlstmLayer");
    assert.notEqual(names(layer.forward(x, { returnLastState: true }).y), "mlstmLayer");
    const withBias = new nn.mLSTMLayer({ embedding_dim: 8, num_heads: 2, bias: true }, { generator: new Generator(33) });
    assert.notEqual(names(withBias.forward(x).y), "mlstmLayer");
    // pieces with state still agree with the fused whole
    const whole = layer.forward(x).y.f32();
    const a = layer.forward(ops.slice(x, 1, 0, 4), { returnLastState: true });
    const b = layer.forward(ops.slice(x, 1, 4, 6), { state: a.state });
    assert.ok(worstRatio(ops.cat([a.y, b.y], 1).f32(), whole, 1e-4, 1e-5).ratio <= 1);
  });

  it("frees its native saved activations after the backward, keeps them with retainGraph", () => {
    const s = { B: 2, S: 8, E: 8, NH: 2, K: 2, Bq: 4 };
    const layer = randomLayer(s, 41);
    const x = Tensor.randn([2, 8, 8], { generator: new Generator(42) });
    x.requiresGrad = true;
    const y = layer.forward(x).y;
    const loss = ops.sum(ops.mul(y, y));
    loss.backward(undefined, { retainGraph: true });
    const first = x.grad!.f32().slice();
    x.grad = null;
    loss.backward(); // the saved activations are still there
    assert.ok(worstRatio(x.grad!.f32(), first, 1e-6, 1e-7).ratio <= 1);
    assert.throws(() => loss.backward(), /already freed/);
  });

  it("keeps RSS flat over repeated training steps (native saved activations are released)", () => {
    const s = { B: 4, S: 128, E: 64, NH: 4, K: 4, Bq: 4 };
    const layer = randomLayer(s, 51);
    const x = Tensor.randn([s.B, s.S, s.E], { generator: new Generator(52) });
    const step = () => {
      layer.zeroGrad();
      ops.mean(ops.mul(layer.forward(x).y, layer.forward(x).y)).backward();
    };
    for (let i = 0; i < 10; ++i) step();
    (global as { gc?: () => void }).gc?.();
    const before = process.memoryUsage().rss;
    // each step keeps ~2 x 11 MB of saved activations: 100 leaked steps would grow RSS by ~2 GB
    for (let i = 0; i < 100; ++i) step();
    (global as { gc?: () => void }).gc?.();
    const grow = (process.memoryUsage().rss - before) / 2 ** 20;
    assert.ok(grow < 100, `RSS grew by ${grow.toFixed(1)} MB over 100 steps`);
  });

  it("rejects bad input with errors naming the argument", () => {
    const s = { B: 1, S: 4, E: 8, NH: 2, K: 2, Bq: 4 };
    const layer = randomLayer(s, 61);
    const sd = layer.stateDict();
    const weights = {
      wUp: sd.get("proj_up.weight")!, wConv: sd.get("conv1d.conv.weight")!, bConv: sd.get("conv1d.conv.bias")!,
      wQ: sd.get("q_proj.weight")!, wK: sd.get("k_proj.weight")!, wV: sd.get("v_proj.weight")!,
      wI: sd.get("mlstm_cell.igate.weight")!, bI: sd.get("mlstm_cell.igate.bias")!, wF: sd.get("mlstm_cell.fgate.weight")!, bF: sd.get("mlstm_cell.fgate.bias")!,
      wNorm: sd.get("mlstm_cell.outnorm.weight")!, skip: sd.get("learnable_skip")!, wDown: sd.get("proj_down.weight")!,
    };
    const x = Tensor.randn([1, 4, 8]);
    assert.throws(() => ops.mlstmLayer(x, { ...weights, wK: undefined as unknown as Tensor }, { numHeads: 2 }), (e: Error) => e instanceof TypeError && /weights\.wK/.test(e.message));
    assert.throws(() => ops.mlstmLayer(x, { ...weights, skip: Tensor.zeros([3]) }, { numHeads: 2 }), (e: Error) => e instanceof RangeError && /weights\.skip/.test(e.message));
    assert.throws(() => ops.mlstmLayer(Tensor.randn([1, 4, 7]), weights, { numHeads: 2 }), (e: Error) => e instanceof RangeError && /wUp/.test(e.message));
    assert.throws(() => ops.mlstmLayer(x, weights, { numHeads: 3 }), (e: Error) => e instanceof RangeError && /numHeads/.test(e.message));
    assert.throws(() => ops.mlstmLayer(new Tensor(new Int32Array(32), [1, 4, 8]), weights, { numHeads: 2 }), (e: Error) => e instanceof TypeError && /x must be float32/.test(e.message));
    // native: a handle that is not one, a released one
    const params = Object.values(weights).map((t) => t.f32());
    const dims = [1, 4, 8, weights.wUp.shape[0] / 2, 2, 4, 2, 4, 1e-6, 1e-5];
    const y = new Float32Array(32);
    const saved = native.mlstmLayerForward(y, x.f32(), ...params, ...dims, true)!;
    const grads = params.map((p) => new Float32Array(p.length));
    assert.throws(() => native.mlstmLayerBackward(new Float32Array(32), ...grads, new Float32Array(32), x.f32(), {} as never, ...params, ...dims), (e: Error) => e instanceof TypeError && /mlstmLayerBackward: saved must be a handle/.test(e.message));
    assert.throws(() => native.mlstmLayerBackward(new Float32Array(32), ...grads, new Float32Array(32), x.f32(), saved, ...params, 1, 4, 8, dims[3], 2, 4, 2, 2, 1e-6, 1e-5), (e: Error) => e instanceof RangeError && /saved holds/.test(e.message));
    native.mlstmLayerRelease(saved);
    native.mlstmLayerRelease(saved);
    assert.throws(() => native.mlstmLayerBackward(new Float32Array(32), ...grads, new Float32Array(32), x.f32(), saved, ...params, ...dims), /released/);
    assert.throws(() => native.mlstmLayerForward(y, y, ...params, ...dims, false), (e: Error) => e instanceof RangeError && /y overlaps x/.test(e.message));
    // the block form: its options, and a backward that must match the forward's form
    assert.throws(() => ops.mlstmLayer(x, weights, { numHeads: 2, preNorm: { weight: Tensor.zeros([7]) } }), (e: Error) => e instanceof RangeError && /options\.preNorm\.weight/.test(e.message));
    assert.throws(() => ops.mlstmLayer(x, weights, { numHeads: 2, preNorm: { weight: Tensor.zeros([8]), eps: 0 } }), (e: Error) => e instanceof RangeError && /options\.preNorm\.eps/.test(e.message));
    assert.throws(() => ops.mlstmLayer(x, weights, { numHeads: 2, preNorm: 5 as never }), (e: Error) => e instanceof TypeError && /options\.preNorm must be an object/.test(e.message));
    const lnW = new Float32Array(8);
    assert.throws(() => native.mlstmLayerForward(y, x.f32(), ...params, ...dims, true, new Float32Array(7), 1e-5, true), (e: Error) => e instanceof RangeError && /lnW/.test(e.message));
    const plain = native.mlstmLayerForward(y, x.f32(), ...params, ...dims, true)!;
    const blockSaved = native.mlstmLayerForward(y, x.f32(), ...params, ...dims, true, lnW, 1e-5, true)!;
    assert.throws(() => native.mlstmLayerBackward(new Float32Array(32), ...grads, new Float32Array(32), x.f32(), plain, ...params, ...dims, lnW, null), (e: Error) => e instanceof TypeError && /lnW must be absent/.test(e.message));
    assert.throws(() => native.mlstmLayerBackward(new Float32Array(32), ...grads, new Float32Array(32), x.f32(), blockSaved, ...params, ...dims), (e: Error) => e instanceof TypeError && /lnW must be the layer norm weight/.test(e.message));
    assert.throws(() => native.mlstmLayerBackward(new Float32Array(32), ...grads, new Float32Array(32), x.f32(), blockSaved, ...params, ...dims, lnW, lnW), (e: Error) => e instanceof RangeError && /dlnW overlaps lnW/.test(e.message));
    native.mlstmLayerBackward(new Float32Array(32), ...grads, new Float32Array(32), x.f32(), blockSaved, ...params, ...dims, lnW, new Float32Array(8));
    native.mlstmLayerRelease(plain);
    native.mlstmLayerRelease(blockSaved);
  });
});
