// Layer 6: optimizers. SGD and gradient clipping against their closed forms, evaluated in float64 here.
import { strict as assert } from "assert";
import { optim, Tensor } from "../lib";
import { assertClose } from "./support/gradcheck";

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

  it("clipGradNorm scales gradients to the maximum norm and returns the norm before clipping", () => {
    const a = Tensor.zeros([2], { requiresGrad: true }), b = Tensor.zeros([1], { requiresGrad: true });
    a.grad = Tensor.from([3, 4]);
    b.grad = Tensor.from([12]);
    const norm = optim.clipGradNorm([a, b], 1);
    assert.ok(Math.abs(norm - 13) < 1e-6);
    const k = 1 / (13 + 1e-6);
    assertClose([...a.grad.f32(), ...b.grad!.f32()], [3 * k, 4 * k, 12 * k], "clipped", 1e-6, 0);
    const before = Array.from(a.grad.f32());
    optim.clipGradNorm([a, b], 5); // norm 1 < 5: unchanged
    assert.deepEqual(Array.from(a.grad.f32()), before);
  });
});
