// Layer 4: the fused feed-forward half of an xLSTM block (lib/ops/ffn-block.ts, csrc/kernels/ffn_block.h) against
// the same computation composed from single ops (layer norm, two linears, the gated activation, the residual add):
// output and every gradient equal (up to the sign of a zero) at every SIMD level; xLSTMBlock takes the fused path;
// bad native arguments.
import { strict as assert } from "assert";
import { Generator, nn, ops, Tensor } from "../lib";
import { native } from "../lib/native";
import { UnaryOp, gatedActivation } from "../lib/ops/elementwise";
import { ffnBlock } from "../lib/ops/ffn-block";
import { forEachSimdLevel } from "./support/simd";

function sameValues(p: Float32Array, q: Float32Array, what: string): void {
  assert.equal(p.length, q.length, what);
  for (let i = 0; i < q.length; ++i)
    if (!(p[i] === q[i] || (Number.isNaN(p[i]) && Number.isNaN(q[i])))) assert.fail(`${what}[${i}]: fused ${p[i]}, composed ${q[i]}`);
}

describe("46 fused feed-forward block half", () => {
  const cases: [number[], number, UnaryOp, boolean][] = [
    [[2, 9, 16], 24, "gelu", true],
    [[1, 1, 8], 3, "silu", true],
    [[3, 70, 40], 56, "relu", false],
    [[200, 24], 8, "sigmoid", true],
  ];
  for (const [shape, P, act, residualWeight] of cases)
    it(`x ${JSON.stringify(shape)}, P ${P}, ${act}, residualWeight ${residualWeight}: the composed values, every SIMD level`, () => {
      const E = shape[shape.length - 1];
      const gen = new Generator(P);
      const x = Tensor.randn(shape, { generator: gen });
      const lnW = ops.mul(Tensor.randn([E], { generator: gen }), 0.3).detach();
      const wUp = ops.mul(Tensor.randn([2 * P, E], { generator: gen }), 0.2).detach();
      const wDown = ops.mul(Tensor.randn([E, P], { generator: gen }), 0.2).detach();
      const wy = Tensor.randn(shape, { generator: gen });
      const params = [x, lnW, wUp, wDown];
      const run = (fused: boolean) => {
        for (const t of params) (t.requiresGrad = true), (t.grad = null);
        const y = fused
          ? ffnBlock(x, { normWeight: lnW, normEps: 1e-5, residualWeight, wUp, wDown, act })
          : ops.add(x, ops.linear(gatedActivation(ops.linear(ops.layerNorm(x, lnW, null, { residualWeight }), wUp), act), wDown));
        ops.sum(ops.mul(y, wy)).backward();
        return [y.f32().slice(), ...params.map((t) => t.grad!.f32().slice())];
      };
      forEachSimdLevel((level) => {
        const a = run(true), b = run(false);
        a.forEach((p, i) => sameValues(p, b[i], `${level} ${["y", "dx", "d lnW", "d wUp", "d wDown"][i]}`));
      });
    });

  it("xLSTMBlock runs its feed-forward half fused, with the values of composing it", () => {
    const layer = new nn.sLSTMLayer({ embedding_dim: 16, num_heads: 2, conv1d_kernel_size: 4 }, { generator: new Generator(61) });
    const block = new nn.xLSTMBlock(layer as never, 16, { proj_factor: 1.3, act_fn: "gelu" }, { generator: new Generator(62) });
    for (const [, t] of block.stateDict()) new Generator(63).fillNormal(t.f32(), 0, 0.3);
    const x = Tensor.randn([2, 7, 16], { generator: new Generator(64) });
    x.requiresGrad = true;
    const y = block.forward(x).y;
    assert.equal(y._node?.name, "ffnBlock");
    ops.sum(ops.mul(y, y)).backward();
    const fused = [...block.namedParameters()].map(([k, p]) => [k, p.grad!.f32().slice()] as const);
    const dx = x.grad!.f32().slice();
    // the same block composed by hand: the sLSTM half as the block runs it, then norm, feed-forward and add
    block.zeroGrad();
    x.grad = null;
    const h = ops.add(x, block.xlstm.forward(block.xlstm_norm.forward(x)).y);
    const ref = ops.add(h, block.ffn!.forward(block.ffn_norm!.forward(h)));
    sameValues(y.f32(), ref.f32(), "y");
    ops.sum(ops.mul(ref, ref)).backward();
    sameValues(dx, x.grad!.f32(), "dx");
    const now = new Map(block.namedParameters());
    for (const [k, g] of fused) sameValues(g, now.get(k)!.grad!.f32(), k);
  });

  it("native entries reject bad input with errors naming the argument", () => {
    const N = 4, E = 8, P = 3, ns = native.ffnBlockSavedSize(N, E, P);
    const x = new Float32Array(N * E), ln = new Float32Array(E), up = new Float32Array(2 * P * E), down = new Float32Array(E * P);
    const y = new Float32Array(N * E), saved = new Float32Array(ns);
    native.ffnBlockForward(y, saved, x, ln, up, down, N, E, P, 1e-5, true, "gelu", 1, 0);
    assert.throws(() => native.ffnBlockForward(y, saved, x, ln, up.subarray(1), down, N, E, P, 1e-5, true, "gelu", 1, 0), (e: Error) => e instanceof RangeError && /ffnBlockForward: wUp/.test(e.message));
    assert.throws(() => native.ffnBlockForward(y, saved, x, ln, up, down, N, E, P, 0, true, "gelu", 1, 0), (e: Error) => e instanceof RangeError && /lnEps/.test(e.message));
    assert.throws(() => native.ffnBlockForward(y, saved, x, ln, up, down, N, E, P, 1e-5, true, "erf" as never, 1, 0), (e: Error) => e instanceof RangeError && /act must be one of/.test(e.message));
    assert.throws(() => native.ffnBlockForward(x, saved, x, ln, up, down, N, E, P, 1e-5, true, "gelu", 1, 0), (e: Error) => e instanceof RangeError && /y overlaps x/.test(e.message));
    assert.throws(() => native.ffnBlockBackward(new Float32Array(N * E), null, null, null, y, x, saved.subarray(1), ln, up, down, N, E, P, 1e-5, true, "gelu", 1, 0), (e: Error) => e instanceof RangeError && /ffnBlockBackward: saved/.test(e.message));
    assert.throws(() => native.ffnBlockBackward(new Float32Array(N * E), ln, null, null, y, x, saved, ln, up, down, N, E, P, 1e-5, true, "gelu", 1, 0), (e: Error) => e instanceof RangeError && /dlnW overlaps lnW/.test(e.message));
  });
});
