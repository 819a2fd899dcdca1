// Layer 3: the differentiable nn ops (lib/ops/softmax.ts, norm.ts, embedding.ts, conv1d.ts, dropout.ts): forward
// against float64 references and backward against float64 finite differences (gradCheck) for every input
// including norm and conv weights/biases, cross-entropy reductions / ignoreIndex / huge logits, dropout
// reproducibility and statistics, and the TypeError / RangeError of each op.
import { strict as assert } from "assert";
import { Generator, manualSeed, ops, Tensor } from "../lib";
import { assertClose, gradCheck, randnGrad } from "./support/gradcheck";
import { forEachSimdLevel } from "./support/simd";


const int32 = (values: number[], shape?: number[]) => Tensor.from(Int32Array.from(values), shape ?? [values.length]);
const int64 = (values: number[], shape?: number[]) => Tensor.from(BigInt64Array.from(values.map(BigInt)), shape ?? [values.length]);

// ---- float64 forward references (gradCheck differentiates them numerically) --------------------------------------

function logSoftmaxRows(x: Float64Array, cols: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r * cols < x.length; ++r) {
    let m = -Infinity;
    for (let j = 0; j < cols; ++j) m = Math.max(m, x[r * cols + j]);
    let s = 0;
    for (let j = 0; j < cols; ++j) s += Math.exp(x[r * cols + j] - m);
    for (let j = 0; j < cols; ++j) y[r * cols + j] = x[r * cols + j] - m - Math.log(s);
  }
  return y;
}

function crossEntropy64(x: Float64Array, v: number, targets: number[], reduction: "mean" | "sum" | "none", ignore = -100): Float64Array {
  const lsm = logSoftmaxRows(x, v);
  const per = targets.map((t, i) => (t === ignore ? 0 : -lsm[i * v + t]));
  if (reduction === "none") return Float64Array.from(per);
  const s = per.reduce((a, b) => a + b, 0);
  const count = targets.filter((t) => t !== ignore).length;
  return Float64Array.of(reduction === "mean" ? s / count : s);
}

function norm64(x: Float64Array, w: Float64Array | null, b: Float64Array | null, groups: number, dim: number, eps: number, residual: boolean): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i * dim < x.length; ++i) {
    const g = i % groups;
    let m = 0;
    for (let k = 0; k < dim; ++k) m += x[i * dim + k];
    m /= dim;
    let v = 0;
    for (let k = 0; k < dim; ++k) v += (x[i * dim + k] - m) ** 2;
    const rs = 1 / Math.sqrt(v / dim + eps);
    for (let k = 0; k < dim; ++k) {
      const gamma = w ? (residual ? 1 + w[g * dim + k] : w[g * dim + k]) : 1;
      y[i * dim + k] = (x[i * dim + k] - m) * rs * gamma + (b ? b[g * dim + k] : 0);
    }
  }
  return y;
}

function conv64(x: Float64Array, w: Float64Array, bias: Float64Array | null, B: number, S: number, F: number, K: number): Float64Array {
  const y = new Float64Array(B * S * F);
  for (let b = 0; b < B; ++b)
    for (let t = 0; t < S; ++t)
      for (let f = 0; f < F; ++f) {
        let acc = bias ? bias[f] : 0;
        for (let j = 0; j < K; ++j) if (t - K + 1 + j >= 0) acc += w[f * K + j] * x[(b * S + t - K + 1 + j) * F + f];
        y[(b * S + t) * F + f] = acc;
      }
  return y;
}

function throwsNamed(fn: () => unknown, cls: typeof TypeError | typeof RangeError, ...words: string[]): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e?.constructor?.name}: ${e?.message}`);
    for (const w of words) assert.ok(e.message.includes(w), `message "${e.message}" should mention "${w}"`);
    return true;
  });
}

describe("35 nn ops", () => {
  it("softmax and logSoftmax: forward and gradients (gradCheck) at every SIMD level", () => {
    forEachSimdLevel((level) => {
      gradCheck({
        name: `${level} softmax`,
        op: ([x]) => ops.softmax(x),
        ref64: ([x], [s]) => logSoftmaxRows(x, s[s.length - 1]).map(Math.exp),
        inputs: [randnGrad([2, 3, 19], 1, 2)],
      });
      gradCheck({
        name: `${level} logSoftmax`,
        op: ([x]) => ops.logSoftmax(x),
        ref64: ([x], [s]) => logSoftmaxRows(x, s[s.length - 1]),
        inputs: [randnGrad([4, 17], 2, 2)],
      });
    });
  });

  it("crossEntropy: every reduction, int32 and int64 targets, ignoreIndex, gradients", () => {
    const targets = [3, 0, 6, 2, 6];
    forEachSimdLevel((level) => {
      for (const reduction of ["mean", "sum", "none"] as const)
        for (const make of [int32, int64]) {
          gradCheck({
            name: `${level} crossEntropy ${reduction} ${make === int32 ? "int32" : "int64"}`,
            op: ([x]) => ops.crossEntropy(x, make(targets), { reduction }),
            ref64: ([x]) => crossEntropy64(x, 7, targets, reduction),
            inputs: [randnGrad([5, 7], 3, 2)],
          });
        }
      // ignoreIndex: ignored rows add no loss and no gradient; "mean" divides by the rows that count.
      const withIgnored = [3, -1, 6, -1, 0];
      gradCheck({
        name: `${level} crossEntropy ignoreIndex`,
        op: ([x]) => ops.crossEntropy(x, int32(withIgnored), { ignoreIndex: -1 }),
        ref64: ([x]) => crossEntropy64(x, 7, withIgnored, "mean", -1),
        inputs: [randnGrad([5, 7], 4, 2)],
      });
    });
    const x = randnGrad([5, 7], 4, 2);
    ops.crossEntropy(x, int32([3, 1, 6, 1, 0]), { ignoreIndex: 1 }).backward();
    for (const r of [1, 3]) assert.ok(x.grad!.toFlatArray().slice(r * 7, r * 7 + 7).every((g) => g === 0), `ignored row ${r} has zero gradient`);
    const none = ops.crossEntropy(x.detach(), int32([3, 1, 6, 1, 0]), { reduction: "none", ignoreIndex: 1 });
    assert.deepEqual(none.shape, [5]);
    assert.equal(none.toFlatArray()[1], 0);
    // every row ignored: mean is NaN (PyTorch's behaviour), sum is 0
    assert.ok(Number.isNaN(ops.crossEntropy(x.detach(), int32([1, 1, 1, 1, 1]), { ignoreIndex: 1 }).item()));
    assert.equal(ops.crossEntropy(x.detach(), int32([1, 1, 1, 1, 1]), { ignoreIndex: 1, reduction: "sum" }).item(), 0);
  });

  it("crossEntropy stays finite for logits of 1e4 and matches float64, with leading dims [B, S, V]", () => {
    const gen = new Generator(11);
    const B = 2, S = 3, V = 50;
    const raw = Tensor.randn([B, S, V], { generator: gen, std: 1e4 });
    const targets = [0, 49, 17, 3, 3, 25];
    forEachSimdLevel((level) => {
      const x = raw.clone().requiresGrad_();
      const loss = ops.crossEntropy(x, int64(targets, [B, S]));
      const want = crossEntropy64(Float64Array.from(raw.f32()), V, targets, "mean")[0];
      assert.ok(Number.isFinite(loss.item()), `${level}: loss ${loss.item()}`);
      assert.ok(Math.abs(loss.item() - want) <= 1e-6 * Math.abs(want) + 1e-3, `${level}: loss ${loss.item()} vs ${want}`);
      loss.backward();
      const g = x.grad!.f32();
      assert.ok(g.every(Number.isFinite), `${level}: gradient finite`);
      // float64 gradient: (softmax - onehot) / N
      const lsm = logSoftmaxRows(Float64Array.from(raw.f32()), V);
      const wantG = Float64Array.from(lsm, (l, i) => (Math.exp(l) - (targets[Math.floor(i / V)] === i % V ? 1 : 0)) / targets.length);
      assertClose(g, wantG, `${level} crossEntropy gradient at 1e4`, 1e-4, 1e-6);
    });
  });

  it("layerNorm: forward and gradients for x, weight and bias (plain and residual weight, no weight)", () => {
    forEachSimdLevel((level) => {
      for (const residual of [false, true]) {
        gradCheck({
          name: `${level} layerNorm w+b residual=${residual}`,
          op: ([x, w, b]) => ops.layerNorm(x, w, b, { residualWeight: residual }),
          ref64: ([x, w, b], s) => norm64(x, w, b, 1, s[0][s[0].length - 1], 1e-5, residual),
          inputs: [randnGrad([2, 3, 11], 5, 1.5), randnGrad([11], 6, 0.5), randnGrad([11], 7, 0.5)],
        });
      }
      gradCheck({
        name: `${level} layerNorm no weight, eps 1e-2`,
        op: ([x]) => ops.layerNorm(x, null, null, { eps: 1e-2 }),
        ref64: ([x]) => norm64(x, null, null, 1, 9, 1e-2, false),
        inputs: [randnGrad([4, 9], 8, 0.3)],
      });
    });
    // the reference's LayerNorm: weight 0 with residualWeight is the plain normalisation
    const x = Tensor.randn([3, 6], { generator: new Generator(3) });
    assertClose(ops.layerNorm(x, Tensor.zeros([6]), null, { residualWeight: true }).f32(), ops.layerNorm(x).f32(), "residual zero weight");
  });

  it("multiHeadLayerNorm: per-head normalisation with a head-major weight and bias, gradients", () => {
    forEachSimdLevel((level) => {
      gradCheck({
        name: `${level} multiHeadLayerNorm [B, S, NH, DH] residual`,
        op: ([x, w]) => ops.multiHeadLayerNorm(x, w, null, { residualWeight: true }),
        ref64: ([x, w]) => norm64(x, w, null, 3, 5, 1e-5, true),
        inputs: [randnGrad([2, 2, 3, 5], 9), randnGrad([15], 10, 0.5)],
      });
      gradCheck({
        name: `${level} multiHeadLayerNorm [B*S, NH, DH] weight+bias, eps 1e-6`,
        op: ([x, w, b]) => ops.multiHeadLayerNorm(x, w, b, { eps: 1e-6 }),
        ref64: ([x, w, b]) => norm64(x, w, b, 2, 4, 1e-6, false),
        inputs: [randnGrad([3, 2, 4], 11), randnGrad([8], 12, 0.5), randnGrad([8], 13)],
      });
    });
    // each head is independent: it equals layerNorm over DH with that head's slice of the weight
    const x = Tensor.randn([4, 3, 8], { generator: new Generator(4) });
    const w = Tensor.randn([24], { generator: new Generator(5) });
    const y = ops.multiHeadLayerNorm(x, w).f32();
    for (let h = 0; h < 3; ++h) {
      const xs = x.slice(1, h, h + 1).reshape(4, 8);
      const wh = w.slice(0, h * 8, h * 8 + 8);
      const yh = ops.layerNorm(xs, wh).f32();
      const got = Float32Array.from({ length: 32 }, (_, i) => y[(Math.floor(i / 8) * 3 + h) * 8 + (i % 8)]);
      assert.deepEqual(got, yh, `head ${h}`);
    }
  });

  it("embedding: lookup of any index shape, gradient is a scatter-add (repeated indices)", () => {
    const weight = randnGrad([6, 4], 14);
    const idx = int64([5, 0, 2, 2, 5, 5], [2, 3]);
    const out = ops.embedding(idx, weight);
    assert.deepEqual(out.shape, [2, 3, 4]);
    gradCheck({
      name: "embedding",
      op: ([w]) => ops.embedding(idx, w),
      ref64: ([w]) => Float64Array.from({ length: 24 }, (_, i) => w[Number(idx.data[Math.floor(i / 4)]) * 4 + (i % 4)]),
      inputs: [weight],
    });
    const w32 = randnGrad([3, 2], 15);
    ops.embedding(int32([1, 1, 1]), w32).backward(Tensor.ones([3, 2]));
    assert.deepEqual(w32.grad!.toFlatArray(), [0, 0, 3, 3, 0, 0]);
  });

  it("causalConv1d: forward and gradients for x, weight [F, 1, K] and bias", () => {
    forEachSimdLevel((level) => {
      for (const [B, S, F, K] of [[2, 5, 3, 4], [1, 3, 18, 2]]) {
        gradCheck({
          name: `${level} causalConv1d [${B}, ${S}, ${F}] K=${K}`,
          op: ([x, w, b]) => ops.causalConv1d(x, w, b),
          ref64: ([x, w, b]) => conv64(x, w, b, B, S, F, K),
          inputs: [randnGrad([B, S, F], 16), randnGrad([F, 1, K], 17, 0.5), randnGrad([F], 18)],
        });
      }
      gradCheck({
        name: `${level} causalConv1d without bias, weight [F, K]`,
        op: ([x, w]) => ops.causalConv1d(x, w),
        ref64: ([x, w]) => conv64(x, w, null, 2, 4, 5, 3),
        inputs: [randnGrad([2, 4, 5], 19), randnGrad([5, 3], 20)],
      });
    });
    // causality: changing x at time t leaves outputs before t unchanged
    const x = Tensor.randn([1, 6, 2], { generator: new Generator(6) });
    const w = Tensor.randn([2, 1, 4], { generator: new Generator(7) });
    const y1 = ops.causalConv1d(x, w).f32();
    const x2 = x.clone();
    (x2.data as Float32Array)[3 * 2] += 1;
    const y2 = ops.causalConv1d(x2, w).f32();
    assert.deepEqual(y2.subarray(0, 6), y1.subarray(0, 6));
    assert.notEqual(y2[6], y1[6]);
  });

  it("dropout: reproducible per seed, keep rate within bounds, gradient is mask * scale, identity when off", () => {
    const n = 200000, p = 0.3;
    const x = Tensor.ones([n]);
    manualSeed(123);
    const a = ops.dropout(x, p).f32();
    manualSeed(123);
    const b = ops.dropout(x, p).f32();
    assert.deepEqual(a, b, "same seed, same mask");
    const c = ops.dropout(x, p).f32();
    assert.notDeepEqual(a, c, "the next call draws a new mask");
    const d = ops.dropout(x, p, { generator: new Generator(124) }).f32();
    assert.notDeepEqual(a, d, "another seed, another mask");
    const kept = a.reduce((s, v) => s + (v !== 0 ? 1 : 0), 0);
    const sd = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(kept - n * (1 - p)) < 5 * sd, `kept ${kept} of ${n}, expected ${n * (1 - p)} ± ${5 * sd}`);
    const scale = Math.fround(1 / (1 - p));
    assert.ok(a.every((v) => v === 0 || v === scale), "kept values are scaled by 1 / (1 - p)");
    // gradient: mask * scale, where the mask is read off a forward of ones with the same generator state
    const gen = () => new Generator(77);
    const xg = randnGrad([3, 50], 21);
    const y = ops.dropout(xg, 0.4, { generator: gen() });
    const G = Tensor.randn([3, 50], { generator: new Generator(22) });
    y.backward(G);
    const mask = ops.dropout(Tensor.ones([3, 50]), 0.4, { generator: gen() }).f32();
    const s4 = Math.fround(1 / 0.6);
    const gx = xg.grad!.f32(), gs = G.f32(), xs = xg.f32(), ys = y.f32();
    for (let i = 0; i < 150; ++i) {
      assert.equal(gx[i], mask[i] ? Math.fround(gs[i] * s4) : 0, `gradient ${i}`);
      assert.equal(ys[i], mask[i] ? Math.fround(xs[i] * s4) : 0, `output ${i}`);
    }
    // identity when p = 0 or not training
    assert.equal(ops.dropout(xg, 0), xg);
    assert.equal(ops.dropout(xg, 0.5, { training: false }), xg);
    assert.ok(ops.dropout(xg, 1).f32().every((v) => v === 0));
  });

  it("rejects wrong dtypes (TypeError) and shapes (RangeError) naming the argument", () => {
    const f = Tensor.randn([2, 3]);
    const i32 = int32([0, 1]);
    throwsNamed(() => ops.softmax(i32), TypeError, "ops.softmax", "x", "int32");
    throwsNamed(() => ops.logSoftmax(Tensor.scalar(1)), RangeError, "ops.logSoftmax", "x");
    throwsNamed(() => ops.crossEntropy(f, Tensor.from([0, 1])), TypeError, "ops.crossEntropy", "targets", "float32");
    throwsNamed(() => ops.crossEntropy(i32, i32), TypeError, "logits");
    throwsNamed(() => ops.crossEntropy(f, int32([0, 1, 2])), RangeError, "targets", "[3]", "[2]");
    throwsNamed(() => ops.crossEntropy(f, int32([0, 3])), RangeError, "targets[1] = 3", "out of range");
    throwsNamed(() => ops.crossEntropy(f, int32([0, 1]), { reduction: "avg" as never }), RangeError, "reduction");
    throwsNamed(() => ops.layerNorm(f, Tensor.ones([2])), RangeError, "ops.layerNorm", "weight", "[2]", "[3]");
    throwsNamed(() => ops.layerNorm(f, null, Tensor.ones([3], { dtype: "int32" })), TypeError, "bias", "int32");
    throwsNamed(() => ops.layerNorm(f, null, null, { eps: -1 }), RangeError, "eps");
    throwsNamed(() => ops.multiHeadLayerNorm(Tensor.randn([6]), null), RangeError, "ops.multiHeadLayerNorm", "x");
    throwsNamed(() => ops.multiHeadLayerNorm(Tensor.randn([2, 2, 3]), Tensor.ones([3])), RangeError, "weight", "[NH * DH] = [6]");
    throwsNamed(() => ops.embedding(Tensor.from([0, 1]), f), TypeError, "ops.embedding", "indices", "float32");
    throwsNamed(() => ops.embedding(i32, Tensor.randn([2, 3, 1])), RangeError, "weight", "[V, E]");
    throwsNamed(() => ops.embedding(int64([1, 2, 0], [3]), f), RangeError, "indices[1] = 2", "out of range");
    throwsNamed(() => ops.causalConv1d(Tensor.randn([2, 3]), Tensor.randn([3, 1, 2])), RangeError, "ops.causalConv1d", "x", "[B, S, F]");
    throwsNamed(() => ops.causalConv1d(Tensor.randn([1, 2, 3]), Tensor.randn([4, 1, 2])), RangeError, "weight", "[F, 1, K]");
    throwsNamed(() => ops.causalConv1d(Tensor.randn([1, 2, 3]), Tensor.randn([3, 1, 2]), Tensor.randn([2])), RangeError, "bias", "[3]");
    throwsNamed(() => ops.causalConv1d(Tensor.randn([1, 2, 3]), Tensor.randn([3, 1, 2]).to("bfloat16")), TypeError, "weight", "bfloat16");
    throwsNamed(() => ops.dropout(f, 1.5), RangeError, "ops.dropout", "p");
    throwsNamed(() => ops.dropout(i32, 0.5), TypeError, "x", "int32");
  });
});
