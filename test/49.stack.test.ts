// Layer 4: xLSTMBlock, xLSTMBlockStack and xLSTMLMModel assembled from sLSTM blocks (fixture parity for the
// mixed stacks runs in 48.fixtures): config resolution, step mode = forward, pieces = one call, tied weights,
// reference parameter names, errors naming the config field.
import { strict as assert } from "assert";
import { Generator, nn, ops, Tensor } from "../lib";
import { worstRatio } from "./support/gradcheck";

const cfg = (over: Partial<nn.xLSTMLMModelConfig> = {}): nn.xLSTMLMModelConfig => ({
  vocab_size: 17,
  embedding_dim: 16,
  num_blocks: 2,
  mlstm_block: null,
  slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 4 }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } },
  ...over,
});

describe("49 block stack and LM model", () => {
  it("resolves the block map as the reference (slstm_at, 'all', no mLSTM block)", () => {
    assert.deepEqual(nn.resolveBlockMap({ num_blocks: 4, slstm_at: [1, 3], mlstm_block: {}, slstm_block: {} }), [0, 1, 0, 1]);
    assert.deepEqual(nn.resolveBlockMap({ num_blocks: 3, slstm_at: "all", slstm_block: {}, mlstm_block: {} }), [1, 1, 1]);
    assert.deepEqual(nn.resolveBlockMap({ num_blocks: 2, mlstm_block: null, slstm_block: {} }), [1, 1]);
    assert.throws(() => nn.resolveBlockMap({ num_blocks: 2, slstm_at: [2], mlstm_block: {}, slstm_block: {} }), /slstm_at: index 2 is out of range for num_blocks = 2/);
    assert.throws(() => new nn.xLSTMLMModel(cfg({ vocab_size: 0 })), /vocab_size must be a positive integer/);
  });

  it("uses the reference's parameter names and ties weights by sharing the tensor", () => {
    const m = new nn.xLSTMLMModel(cfg({ tie_weights: true }), { generator: new Generator(1) });
    const keys = [...m.stateDict().keys()];
    for (const k of ["token_embedding.weight", "lm_head.weight", "xlstm_block_stack.post_blocks_norm.weight", "xlstm_block_stack.blocks.1.xlstm.slstm_cell._recurrent_kernel_", "xlstm_block_stack.blocks.0.ffn.proj_up.weight", "xlstm_block_stack.blocks.0.ffn_norm.weight", "xlstm_block_stack.blocks.0.xlstm_norm.weight"])
      assert.ok(keys.includes(k), `missing ${k}`);
    assert.equal(m.stateDict().get("lm_head.weight"), m.stateDict().get("token_embedding.weight"));
    assert.equal(m.parameters().length, keys.length - 1);
    // FFN projection size: ceil(1.3 * 16 / 64) * 64 = 64
    assert.deepEqual(m.stateDict().get("xlstm_block_stack.blocks.0.ffn.proj_up.weight")!.shape, [128, 16]);
  });

  it("step mode token by token equals the full forward; forward in pieces equals one call", () => {
    const m = new nn.xLSTMLMModel(cfg(), { generator: new Generator(2) });
    const B = 2, S = 9;
    const idx = new Tensor(Int32Array.from({ length: B * S }, (_, i) => (i * 7) % 17), [B, S]);
    const full = m.forward(idx).logits;
    let st: nn.StackState | null = null;
    const steps: Tensor[] = [];
    for (let t = 0; t < S; ++t) {
      const r = m.step(ops.slice(idx, 1, t, t + 1), st);
      steps.push(r.logits);
      st = r.state;
    }
    assert.ok(worstRatio(ops.cat(steps, 1).f32(), full.f32(), 0, 1e-4).ratio <= 1, "step vs forward within 1e-4");
    const a = m.forward(ops.slice(idx, 1, 0, 4), { returnLastState: true });
    const b = m.forward(ops.slice(idx, 1, 4, S), { state: a.state });
    assert.ok(worstRatio(ops.cat([a.logits, b.logits], 1).f32(), full.f32(), 1e-5, 1e-6).ratio <= 1, "pieces vs one call");
  });

  it("trains: cross-entropy backward reaches every parameter", () => {
    const m = new nn.xLSTMLMModel(cfg({ tie_weights: true }), { generator: new Generator(3) });
    const idx = new Tensor(Int32Array.from({ length: 2 * 6 }, (_, i) => i % 17), [2, 6]);
    const { logits } = m.forward(idx);
    const loss = ops.crossEntropy(ops.slice(logits, 1, 0, 5).reshape(10, 17), ops.slice(idx, 1, 1, 6).reshape(10));
    loss.backward();
    for (const [k, p] of m.namedParameters()) assert.ok(p.grad && p.grad.f32().some((v) => v !== 0), `no gradient for ${k}`);
  });

  it("layers look weights up through a cached map: it follows loadStateDict (in place) and new registrations", () => {
    // a mixed model: the sLSTM and mLSTM layers' weight lookups both go through Module.parameterByKey
    const mixed = { mlstm_block: { mlstm: { num_heads: 2, conv1d_kernel_size: 4, qkv_proj_blocksize: 4 } }, slstm_at: [1] } as Partial<nn.xLSTMLMModelConfig>;
    const a = new nn.xLSTMLMModel(cfg(mixed), { generator: new Generator(1) });
    const b = new nn.xLSTMLMModel(cfg(mixed), { generator: new Generator(2) });
    const x = Tensor.from([1, 5, 9, 3, 7, 2], [1, 6], { dtype: "int32" });
    const before = a.forward(x).logits.toFlatArray();  // builds the layers' maps
    a.loadStateDict(b.stateDict());
    assert.deepEqual(a.forward(x).logits.toFlatArray(), b.forward(x).logits.toFlatArray(), "a stale weight after loadStateDict");
    assert.notDeepEqual(before, b.forward(x).logits.toFlatArray());
    class Probe extends nn.Module {
      constructor() {
        super();
        this.registerParameter("w", Tensor.ones([2]));
      }
      get(k: string) {
        return this.parameterByKey(k);
      }
      add(k: string, t: Tensor) {
        this.registerParameter(k, t);
      }
    }
    const m = new Probe();
    assert.equal(m.get("w"), m.stateDict().get("w"));
    assert.equal(m.get("v"), null);
    const v = Tensor.zeros([3]);
    m.add("v", v);
    assert.equal(m.get("v"), v, "a parameter registered after the first lookup is not found");
  });

  it("rejects bad token shapes with the shape in the message", () => {
    const m = new nn.xLSTMLMModel(cfg(), { generator: new Generator(4) });
    assert.throws(() => m.forward(Tensor.zeros([2, 3, 4], { dtype: "int32" })), /idx has shape \[2, 3, 4\], expected \[B, S\]/);
    assert.throws(() => m.step(Tensor.zeros([2, 2], { dtype: "int32" })), /expected \[B, 1\]/);
  });
});
