// Layer 4: sLSTMLayer against every fixture whose config_class is sLSTMLayerConfig: forward, final state,
// gradients of x and every parameter (with the parameters loaded in the stored and in the cuda layout), and step
// mode token by token. Plus the reference initialisation and the stateDict layout it writes.
import { strict as assert } from "assert";
import { Generator, nn, ops, Tensor, kernelCudaToVanilla, biasCudaToVanilla, detectSlstmLayout } from "../lib";
import { readSafetensors } from "../lib/io/safetensors";
import { describeFixtures, fixturePath, FixtureEntry } from "./support/fixtures";
import { worstRatio } from "./support/gradcheck";

function checker(f: FixtureEntry, tensors: Map<string, Tensor>) {
  const checked: string[] = [];
  return {
    checked,
    check(name: string, actual: Float32Array | null | undefined) {
      const spec = f.tensors.find((t) => t.name === name);
      if (!spec) return;
      assert.ok(actual, `${f.name}: no value for ${name}`);
      const tol = (f.tolerance as Record<string, { rtol: number; atol: number }>)[spec.role];
      const expected = tensors.get(name)!.f32();
      const { ratio, index } = worstRatio(actual!, expected, spec.rtol ?? tol.rtol, spec.atol ?? tol.atol);
      checked.push(name);
      assert.ok(ratio <= 1, `${f.name}: ${name} worst error/tolerance ${ratio.toFixed(3)} at ${index}: got ${actual![index]}, expected ${expected[index]}`);
    },
  };
}

describeFixtures("47 sLSTMLayer fixtures", (manifest) => {
  const fx = manifest.fixtures.filter((f) => f.config_class === "sLSTMLayerConfig");
  it("the manifest has sLSTMLayer fixtures", () => assert.ok(fx.length > 0));
  for (const f of fx) {
    for (const layout of ["stored", "cuda"] as const) {
      it(`${f.name} forward, final state and gradients (${layout} layout)`, () => {
        const { tensors } = readSafetensors(fixturePath(f));
        const layer = new nn.sLSTMLayer(f.config as nn.sLSTMLayerConfig, { generator: new Generator(0) });
        const sd = new Map([...tensors].filter(([k]) => !k.includes(":")));
        if (layout === "cuda") for (const [k, v] of tensors) if (k.startsWith("aux:cuda_layout.")) sd.set(k.slice("aux:cuda_layout.".length), v);
        layer.loadStateDict(sd);
        const x = tensors.get("input:x")!.clone().requiresGrad_();
        const { y, state } = layer.forward(x, { returnLastState: true });
        const c = checker(f, tensors);
        c.check("output:y", y.f32());
        c.check("state:last.conv_state", state!.conv_state?.f32());
        c.check("state:last.slstm_state", state!.slstm_state.f32());
        y.backward(tensors.get("input:G")!);
        c.check("grad:x", x.grad!.f32());
        const NH = layer.config.num_heads, DH = layer.headDim;
        for (const [k, p] of layer.namedParameters()) {
          const stored = tensors.get(k)!;
          let g = p.grad!.f32();
          // gradients in the fixture follow its stored layout
          if (k.endsWith("_recurrent_kernel_") && detectSlstmLayout(stored.shape, NH) === "vanilla") g = kernelCudaToVanilla(g, NH, DH);
          if (k.endsWith("_bias_") && detectSlstmLayout(tensors.get(k.replace("_bias_", "_recurrent_kernel_"))!.shape, NH) === "vanilla") g = biasCudaToVanilla(g, NH, DH);
          c.check(`grad:${k}`, g);
        }
        const grads = f.tensors.filter((t) => t.role === "grad").map((t) => t.name);
        assert.deepEqual(grads.filter((n) => !c.checked.includes(n)), [], "every gradient in the fixture was checked");
      });
    }

    it(`${f.name} step mode, token by token from the empty state`, () => {
      const { tensors } = readSafetensors(fixturePath(f));
      const layer = new nn.sLSTMLayer(f.config as nn.sLSTMLayerConfig);
      layer.loadStateDict(new Map([...tensors].filter(([k]) => !k.includes(":"))));
      const x = tensors.get("input:x")!;
      const [B, S, E] = x.shape;
      let state: nn.sLSTMLayerStepState | null = null;
      const ys: Tensor[] = [];
      for (let t = 0; t < S; ++t) {
        const r: { y: Tensor; state: nn.sLSTMLayerStepState } = layer.step(ops.slice(x, 1, t, t + 1), state);
        ys.push(r.y);
        state = r.state;
      }
      const yStep = ops.cat(ys, 1);
      assert.deepEqual(yStep.shape, [B, S, E]);
      const c = checker(f, tensors);
      c.check("output:y_step", yStep.f32());
      c.check("state:step.conv_state", state!.conv_state?.f32());
      c.check("state:step.slstm_state", state!.slstm_state?.f32());
      // step mode agrees with the full forward within the forward output's tolerance
      const full = layer.forward(x).y.f32();
      const tol = (f.tolerance as Record<string, { rtol: number; atol: number }>).output;
      assert.ok(worstRatio(yStep.f32(), full, tol.rtol, tol.atol).ratio <= 1);
    });
  }
});

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
