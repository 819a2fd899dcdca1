// Layer 3: op outputs with undefined initial contents (Tensor._uninit / uninitF32, lib/tensor.ts). The ops that
// allocate them rely on their native kernels writing every element; here each such op runs forward and backward
// twice, once over NaN-poisoned storage, and the two runs must agree bit for bit (an element a kernel skipped would
// stay NaN in the poisoned run), at shapes with broadcasting, edge sizes below and above the pooled-size cut-off,
// and K = 0 products.
import { strict as assert } from "assert";
import { Generator, ops, Tensor } from "../lib";
import { ffnBlock } from "../lib/ops/ffn-block";
import { _setPoisonUninit } from "../lib/tensor";

type Case = { name: string; run: (g: Generator) => Tensor[] };

function param(shape: number[], g: Generator): Tensor {
  const t = Tensor.randn(shape, { generator: g });
  t.requiresGrad = true;
  return t;
}

// forward output plus every input's gradient (w: fixed random weights for the loss, so gradients are not uniform)
function withGrads(out: Tensor, inputs: Tensor[], g: Generator): Tensor[] {
  const w = Tensor.randn(out.shape, { generator: g });
  ops.sum(ops.mul(out, w)).backward();
  return [out, ...inputs.map((t) => t.grad ?? Tensor.zeros([0]))];
}

const cases: Case[] = [
  { name: "unary (exp, tanh, gelu) forward and backward, 3 and 3000 elements", run: (g) => {
    const a = param([3], g), b = param([30, 100], g);
    return withGrads(ops.add(ops.sum(ops.exp(a)), ops.gelu(ops.tanh(b))), [a, b], g);
  } },
  { name: "binary ops with broadcasting, both gradients", run: (g) => {
    const a = param([4, 1, 300], g), b = param([5, 300], g);
    const y = ops.div(ops.mul(ops.sub(a, b), ops.add(a, 2)), ops.add(ops.exp(b), 1));
    return withGrads(y, [a, b], g);
  } },
  { name: "linear with and without bias, and a K = 0 product", run: (g) => {
    const x = param([3, 70, 48], g), w = param([40, 48], g), bias = param([40], g), w2 = param([40, 48], g);
    const y = ops.add(ops.linear(x, w, bias), ops.linear(x, w2));
    const x0 = param([6, 0], g), w0 = param([1100, 0], g);
    return [...withGrads(y, [x, w, bias, w2], g), ops.linear(x0, w0)];
  } },
  { name: "matmul batched and broadcast, both gradients", run: (g) => {
    const a = param([2, 3, 40, 30], g), b = param([30, 50], g), c = param([3, 50, 20], g);
    return withGrads(ops.matmul(ops.matmul(a, b), c), [a, b, c], g);
  } },
  { name: "layer norm and multi-head layer norm, every gradient", run: (g) => {
    const x = param([7, 130], g), w = param([130], g), b = param([130], g);
    const h = param([5, 4, 64], g), hw = param([256], g);
    const y1 = ops.layerNorm(x, w, b);
    const y2 = ops.multiHeadLayerNorm(h, hw);
    return withGrads(ops.add(ops.sum(y1), ops.sum(ops.mul(y2, y2))), [x, w, b, h, hw], g);
  } },
  { name: "the fused mLSTM layer, plain and block form: output, input gradient and every weight gradient", run: (g) => {
    const B = 2, S = 70, E = 32, Di = 64, NH = 4, K = 4, Bq = 4;
    const shapes: Record<string, number[]> = {
      wUp: [2 * Di, E], wConv: [Di, 1, K], bConv: [Di], wQ: [Di / Bq, Bq, Bq], wK: [Di / Bq, Bq, Bq], wV: [Di / Bq, Bq, Bq],
      wI: [NH, 3 * Di], bI: [NH], wF: [NH, 3 * Di], bF: [NH], wNorm: [Di], skip: [Di], wDown: [E, Di],
    };
    const w = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, ops.mul(param(s, g), 0.2).detach()]));
    for (const t of Object.values(w)) t.requiresGrad = true;
    const x = param([B, S, E], g);
    const lnW = param([E], g);
    const weights = w as unknown as Parameters<typeof ops.mlstmLayer>[1];
    const y = ops.add(ops.mlstmLayer(x, weights, { numHeads: NH }), ops.mlstmLayer(x, weights, { numHeads: NH, preNorm: { weight: lnW } }));
    return withGrads(y, [x, lnW, ...Object.values(w)], g);
  } },
  { name: "sLSTM and LSTM recurrences with and without an initial state: outputs, states and every gradient", run: (g) => {
    const B = 2, S = 5, NH = 2, DH = 8, H = NH * DH;
    const x = param([B, S, 4 * H], g), R = ops.mul(param([NH, DH, 4 * DH], g), 0.3).detach(), bias = param([4 * H], g);
    R.requiresGrad = true;
    const s4 = ops.mul(param([4, B, H], g), 0.5).detach(), s2 = param([2, B, H], g);
    s4.requiresGrad = true;
    const a = ops.slstm(x, R, bias), b = ops.slstm(x, R, bias, s4), c = ops.lstm(x, R, bias, s2), d = ops.lstm(x, R, bias);
    const y = ops.add(ops.add(a.y, b.y), ops.add(c.y, d.y));
    const st = ops.add(ops.sum(ops.mul(b.state, b.state)), ops.sum(c.state));
    return [...withGrads(ops.add(y, st), [x, R, bias, s4, s2], g), a.states, b.states, c.states];
  } },
  { name: "headwise maps, one and concatenated (with biases and an input shared by two parts)", run: (g) => {
    const x = param([3, 50, 32], g), x2 = param([3, 50, 16], g);
    const w1 = param([4, 8, 8], g), w2 = param([4, 6, 8], g), w3 = param([2, 5, 8], g), b1 = param([32], g), b3 = param([10], g);
    const y = ops.headwiseLinearConcat([{ x, weight: w1, bias: b1 }, { x, weight: w2 }, { x: x2, weight: w3, bias: b3 }]);
    return withGrads(ops.add(ops.sum(y), ops.sum(ops.mul(ops.headwiseLinear(x, w1), x))), [x, x2, w1, w2, w3, b1, b3], g);
  } },
  { name: "causal conv1d with and without bias, cross-entropy with an ignored row", run: (g) => {
    const x = param([2, 30, 40], g), w = param([40, 1, 4], g), b = param([40], g), w2 = param([40, 1, 3], g);
    const y = ops.add(ops.causalConv1d(x, w, b), ops.causalConv1d(x, w2));
    const logits = param([6, 300], g);
    const ce = ops.crossEntropy(logits, Tensor.from(Int32Array.from([1, 5, -100, 7, 299, 0]), [6]), { ignoreIndex: -100 });
    return withGrads(ops.add(ops.sum(ops.mul(y, y)), ce), [x, w, b, w2, logits], g);
  } },
  { name: "embedding lookup (and its gradient)", run: (g) => {
    const w = param([50, 40], g);
    const y = ops.embedding(Tensor.from(Int32Array.from([3, 0, 49, 3, 7, 12, 3, 1]), [2, 4]), w);
    return withGrads(ops.mul(y, y), [w], g);
  } },
  { name: "the fused feed-forward block half: output and every gradient", run: (g) => {
    const x = param([3, 20, 24], g), lnW = param([24], g), wUp = param([2 * 40, 24], g), wDown = param([24, 40], g);
    const y = ffnBlock(x, { normWeight: lnW, normEps: 1e-5, residualWeight: true, wUp, wDown, act: "gelu" });
    return withGrads(y, [x, lnW, wUp, wDown], g);
  } },
  { name: "gradient accumulation (a tensor used by several ops)", run: (g) => {
    const x = param([50, 40], g);
    return withGrads(ops.add(ops.mul(x, x), ops.tanh(x)), [x], g);
  } },
];

describe("31 ops over uninitialised output storage", () => {
  let suiteSetting = false;  // test/00 poisons the whole suite; restored after each case
  beforeEach(() => {
    suiteSetting = _setPoisonUninit(false);
  });
  afterEach(() => _setPoisonUninit(suiteSetting));
  for (const c of cases)
    it(c.name, () => {
      _setPoisonUninit(false);
      const plain = c.run(new Generator(5)).map((t) => t.f32().slice());
      _setPoisonUninit(true);
      const poisoned = c.run(new Generator(5)).map((t) => t.f32().slice());
      assert.equal(poisoned.length, plain.length);
      poisoned.forEach((p, i) => {
        assert.equal(p.length, plain[i].length, `${c.name}: result ${i} length`);
        for (let j = 0; j < p.length; ++j)
          if (!Object.is(p[j], plain[i][j])) assert.fail(`${c.name}: result ${i} element ${j}: ${p[j]} over poisoned storage, ${plain[i][j]} otherwise`);
      });
    });
});
