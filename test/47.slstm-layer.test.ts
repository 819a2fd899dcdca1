// Layer 4: sLSTMLayer (fixture parity, both layouts and step mode, runs in 48.fixtures): the reference
// initialisation, the stateDict layout it writes, processing in pieces, bad input.
import { strict as assert } from "assert";
import { Generator, nn, ops, Tensor } from "../lib";
import { worstRatio } from "./support/gradcheck";

describe("47 sLSTMLayer", () => {
  it("initialises as the reference: power-law forget bias, zero recurrent kernel, small-init gates, zero norm weight", () => {
    const E = 32, NH = 4, DH = 8;
    const layer = new nn.sLSTMLayer({ embedding_dim: E, num_heads: NH, _block_idx: 1, _num_blocks: 7 }, { generator: new Generator(1) });
    const sd = layer.stateDict();
    assert.deepEqual([...sd.keys()], ["conv1d.conv.weight", "conv1d.conv.bias", "fgate.weight", "igate.weight", "zgate.weight", "ogate.weight", "slstm_cell._recurrent_kernel_", "slstm_cell._bias_", "group_norm.weight"]);
    assert.deepEqual(sd.get("slstm_cell._recurrent_kernel_")!.shape, [NH, DH, 4 * DH]); // cuda layout
    assert.ok(sd.get("slstm_cell._recurrent_kernel_")!.f32().every((v) => v === 0));
    const b = sd.get("slstm_cell._bias_")!.f32();
    const r = 1 / 6;
    for (let h = 0; h < NH; ++h)
      for (let k = 0; k < DH; ++k) {
        const want = 5 - 12 * Math.pow(k / (DH - 1), 0.3 + 1.3 * r);
        assert.ok(Math.abs(b[(h * 4 + 1) * DH + k] - want) < 1e-5, `forget bias h=${h} k=${k}`);
        for (const g of [0, 2, 3]) assert.equal(b[(h * 4 + g) * DH + k], 0);
      }
    const w = sd.get("fgate.weight")!.f32();
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    assert.ok(Math.abs(std - Math.sqrt(2 / (5 * E))) < 0.02, `small_init std ${std}`);
    const cw = sd.get("conv1d.conv.weight")!.f32();
    assert.ok(cw.every((v) => Math.abs(v) <= 0.5));
    assert.ok(sd.get("group_norm.weight")!.f32().every((v) => v === 0));
  });

  it("processes a sequence in pieces with the returned state exactly as in one call", () => {
    const layer = new nn.sLSTMLayer({ embedding_dim: 16, num_heads: 2 }, { generator: new Generator(2) });
    const x = Tensor.randn([2, 10, 16], { generator: new Generator(3) });
    const whole = layer.forward(x).y.f32();
    const a = layer.forward(ops.slice(x, 1, 0, 2), { returnLastState: true });
    const b = layer.forward(ops.slice(x, 1, 2, 10), { state: a.state });
    const joined = ops.cat([a.y, b.y], 1).f32();
    assert.ok(worstRatio(joined, whole, 1e-5, 1e-6).ratio <= 1);
  });

  it("rejects bad configs and inputs with named errors", () => {
    assert.throws(() => new nn.sLSTMLayer({ embedding_dim: 10, num_heads: 4 }), /num_heads \(4\) must divide embedding_dim \(10\)/);
    const layer = new nn.sLSTMLayer({ embedding_dim: 8, num_heads: 2 });
    assert.throws(() => layer.forward(Tensor.zeros([1, 3, 6])), /x has shape \[1, 3, 6\], expected \[B, S, embedding_dim\] = \[B, S, 8\]/);
    assert.throws(() => layer.forward(Tensor.zeros([1, 3, 8]), { state: { conv_state: Tensor.zeros([1, 2, 8]), slstm_state: null } }), /conv_state has shape \[1, 2, 8\], expected \[B, K-1, E\] = \[1, 3, 8\]/);
  });
});
