// Layer 4: the fused mLSTM layer (ops.mlstmLayer, csrc/kernels/mlstm_layer.h) against the same layer composed from
// single ops (the path the fixtures check), forward and every gradient, at every SIMD level and awkward sizes;
// a directional finite-difference check of its own backward; the tape's release of its native memory; bad input.
import { strict as assert } from "assert";
import { backends, Generator, nn, ops, setSimdLevel, Tensor } from "../lib";
import { native } from "../lib/native";
import { worstRatio } from "./support/gradcheck";

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
  });
});
