// Layer 4: nn.LSTM, the torch.nn.LSTM drop-in (fixture parity runs in 48.fixtures): an independent float64
// evaluation, PyTorch's parameter names and init, sequence-first layout, dropout, and bad input.
import { strict as assert } from "assert";
import { Generator, nn, ops, Tensor } from "../lib";
import { worstRatio } from "./support/gradcheck";

// Independent float64 evaluation of torch.nn.LSTM's equations (one layer, batch_first).
function lstm64(x: Float64Array, wih: Float64Array, whh: Float64Array, bih: Float64Array, bhh: Float64Array, B: number, S: number, F: number, H: number) {
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const y = new Float64Array(B * S * H);
  for (let b = 0; b < B; ++b) {
    let h = new Float64Array(H), c = new Float64Array(H);
    for (let t = 0; t < S; ++t) {
      const g = new Float64Array(4 * H);
      for (let r = 0; r < 4 * H; ++r) {
        let s = bih[r] + bhh[r];
        for (let i = 0; i < F; ++i) s += wih[r * F + i] * x[(b * S + t) * F + i];
        for (let j = 0; j < H; ++j) s += whh[r * H + j] * h[j];
        g[r] = s;
      }
      const hn = new Float64Array(H), cn = new Float64Array(H);
      for (let k = 0; k < H; ++k) {
        cn[k] = sig(g[H + k]) * c[k] + sig(g[k]) * Math.tanh(g[2 * H + k]);
        hn[k] = sig(g[3 * H + k]) * Math.tanh(cn[k]);
        y[(b * S + t) * H + k] = hn[k];
      }
      h = hn;
      c = cn;
    }
  }
  return y;
}

describe("45 nn.LSTM", () => {
  it("matches a float64 evaluation of the LSTM equations and uses PyTorch's parameter names", () => {
    const B = 2, S = 6, F = 5, H = 7;
    const m = new nn.LSTM({ input_size: F, hidden_size: H, batch_first: true, generator: new Generator(3) });
    assert.deepEqual([...m.stateDict().keys()], ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]);
    const k = 1 / Math.sqrt(H);
    for (const p of m.parameters()) assert.ok(p.f32().every((v) => v >= -k && v < k));
    const x = Tensor.randn([B, S, F], { generator: new Generator(4) });
    const [y] = m.forward(x);
    const sd = m.stateDict();
    const f64 = (n: string) => Float64Array.from(sd.get(n)!.f32());
    const ref = lstm64(Float64Array.from(x.f32()), f64("weight_ih_l0"), f64("weight_hh_l0"), f64("bias_ih_l0"), f64("bias_hh_l0"), B, S, F, H);
    const r = worstRatio(y.f32(), ref, 1e-5, 1e-6);
    assert.ok(r.ratio <= 1, `ratio ${r.ratio}`);
    // both biases' gradients are the summed gate gradients (torch: b_ih and b_hh enter the gates the same way)
    ops.sum(y).backward();
    const params = new Map(m.namedParameters());
    const gi = params.get("bias_ih_l0")!.grad!.f32(), gh = params.get("bias_hh_l0")!.grad!.f32();
    assert.ok(gi.some((v) => v !== 0));
    assert.deepEqual(Array.from(gi), Array.from(gh));
  });

  it("bias=false matches the float64 evaluation with zero biases", () => {
    const B = 3, S = 4, F = 2, H = 5;
    const m = new nn.LSTM({ input_size: F, hidden_size: H, batch_first: true, bias: false, generator: new Generator(6) });
    const x = Tensor.randn([B, S, F], { generator: new Generator(8) });
    const [y] = m.forward(x);
    const sd = m.stateDict();
    const zero = new Float64Array(4 * H);
    const ref = lstm64(Float64Array.from(x.f32()), Float64Array.from(sd.get("weight_ih_l0")!.f32()), Float64Array.from(sd.get("weight_hh_l0")!.f32()), zero, zero, B, S, F, H);
    const r = worstRatio(y.f32(), ref, 1e-5, 1e-6);
    assert.ok(r.ratio <= 1, `ratio ${r.ratio}`);
  });

  it("sequence-first input gives the transposed batch-first result; bias=false has no bias keys", () => {
    const g = new Generator(9);
    const a = new nn.LSTM({ input_size: 3, hidden_size: 4, num_layers: 2, batch_first: true, generator: g });
    const b = new nn.LSTM({ input_size: 3, hidden_size: 4, num_layers: 2, generator: g });
    b.loadStateDict(a.stateDict());
    const x = Tensor.randn([2, 5, 3], { generator: g });
    const [ya, [ha]] = a.forward(x);
    const [yb, [hb]] = b.forward(ops.transpose(x, 0, 1));
    assert.deepEqual(Array.from(ops.transpose(yb, 0, 1).f32()), Array.from(ya.f32()));
    assert.deepEqual(Array.from(hb.f32()), Array.from(ha.f32()));
    const nb = new nn.LSTM({ input_size: 3, hidden_size: 4, bias: false });
    assert.deepEqual([...nb.stateDict().keys()], ["weight_ih_l0", "weight_hh_l0"]);
  });

  it("applies dropout between layers only in training mode", () => {
    const m = new nn.LSTM({ input_size: 3, hidden_size: 8, num_layers: 2, dropout: 0.5, batch_first: true, generator: new Generator(1) });
    const x = Tensor.randn([2, 4, 3], { generator: new Generator(2) });
    const e1 = m.eval().forward(x)[0].f32(), e2 = m.forward(x)[0].f32();
    assert.deepEqual(Array.from(e1), Array.from(e2));
    const t1 = m.train().forward(x)[0].f32();
    assert.notDeepEqual(Array.from(t1), Array.from(e1));
  });

  it("rejects bad shapes and options with named errors", () => {
    assert.throws(() => new nn.LSTM({ input_size: 0, hidden_size: 4 }), /input_size must be a positive integer/);
    assert.throws(() => new nn.LSTM({ input_size: 2, hidden_size: 4, dropout: 1 }), /dropout must be in \[0, 1\)/);
    const m = new nn.LSTM({ input_size: 3, hidden_size: 4, num_layers: 2, batch_first: true });
    assert.throws(() => m.forward(Tensor.zeros([2, 5, 4])), /x has shape \[2, 5, 4\], expected \[B, S, input_size\] with input_size = 3/);
    assert.throws(() => m.forward(Tensor.zeros([2, 5, 3]), [Tensor.zeros([1, 2, 4]), Tensor.zeros([2, 2, 4])]), /h0 has shape \[1, 2, 4\], expected \[num_layers, B, hidden_size\] = \[2, 2, 4\]/);
    const sd = m.stateDict();
    sd.delete("bias_hh_l1");
    assert.throws(() => m.loadStateDict(sd), /missing keys bias_hh_l1/);
    assert.throws(() => m.loadStateDict(new Map([...m.stateDict()].map(([k, v]) => [k, k === "weight_ih_l0" ? Tensor.zeros([16, 2]) : v]))), /weight_ih_l0 has shape \[16, 2\], expected \[16, 3\]/);
  });
});
