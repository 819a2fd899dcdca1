// bfloat16 weights as inference storage (lib/ops/bf16.ts; kernels csrc/kernels/bf16.h and the CUDA twin cuda/bf16.cu):
// ops.linear / ops.embedding with a bfloat16 weight, xLSTMLarge.setWeightDtype, and the CUDA kernels.
//  - CPU: forward against float64 sums over the widened weights, gradients (x, bias) against float64 finite
//    differences, embedding rows bitwise equal to the widened table's, the argument errors.
//  - The GEMV's output map (cudaBf16GemvCoverage, host code: wherever the addon is built with CUDA).
//  - "on the GPU": CUDA against CPU on awkward shapes (GEMV and GEMM paths, autocast, gradients), the embedding, and a
//    bf16 xLSTMLarge on the GPU. They run on a real GPU, under host emulation in test/24 (the kernels' host replays),
//    and skip visibly elsewhere. (The device entries' size checks: test/23 with test/support/device-entries.ts.)
import { strict as assert } from "assert";
import { backends, cuda, Generator, ops, Tensor } from "../lib";
import { native } from "../lib/native";
import { xLSTMLarge, xLSTMLargeConfig } from "../lib/nn/large";
import { bf16ToFloat, floatToBf16 } from "../lib/tensor";
import { AdamW } from "../lib/optim/adamw";
import { assertClose, gradCheck } from "./support/gradcheck";

const info = backends().cuda;
const itGpu = info.available ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: ${info.reason}]`, fn);
const itCompiled = info.compiled ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: built without CUDA]`, fn);

function randn(shape: number[], seed: number): Tensor {
  return Tensor.randn(shape, { generator: new Generator(seed) });
}
/** A bf16 weight [out, in] and its exact float32 widening. */
function bf16Weight(out: number, inF: number, seed: number): { w: Tensor; wf: Float32Array } {
  const w = randn([out, inF], seed).to("bfloat16");
  return { w, wf: w.to("float32").f32() };
}
/** float64 x Wᵀ + b, and Σ|x||w| (+|b|) per element: the scale of float32 summation error. */
function reference(x: Float32Array, wf: Float32Array, b: Float32Array | null, rows: number, inF: number, out: number, roundX = false): { y: Float64Array; scale: Float64Array } {
  const xr = roundX ? new Tensor(x.slice(), [x.length]).to("bfloat16").to("float32").f32() : x;
  const y = new Float64Array(rows * out), scale = new Float64Array(rows * out);
  for (let r = 0; r < rows; ++r)
    for (let o = 0; o < out; ++o) {
      let s = b ? b[o] : 0, a = b ? Math.abs(b[o]) : 0;
      for (let k = 0; k < inF; ++k) {
        s += xr[r * inF + k] * wf[o * inF + k];
        a += Math.abs(xr[r * inF + k] * wf[o * inF + k]);
      }
      y[r * out + o] = s;
      scale[r * out + o] = a;
    }
  return { y, scale };
}
/** |got - want| <= 2^-20 · scale (float32 sums of up to a few thousand terms, any order). */
function assertWithinSums(got: Float32Array, want: Float64Array, scale: Float64Array, what: string): void {
  for (let i = 0; i < want.length; ++i)
    assert.ok(Math.abs(got[i] - want[i]) <= 2 ** -20 * scale[i] + 1e-30, `${what}: element ${i} is ${got[i]}, expected ${want[i]} (scale ${scale[i]})`);
}

const SHAPES: [number, number, number][] = [[1, 1, 1], [1, 7, 5], [3, 64, 33], [8, 40, 9], [9, 17, 70], [33, 256, 31], [2, 1000, 3]];

describe("36 bfloat16 weights (inference storage)", function () {
  this.timeout(60000);

  it("Tensor.to between float32 and bfloat16 rounds as floatToBf16 (NaN, ±0, subnormals, ties, overflow) and widens exactly", () => {
    const vals = Float32Array.from([NaN, -0, 0, 1e-40, -1e-40, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, -Infinity, 65504.5, ...randn([37], 3).f32()]);
    const b = new Tensor(vals, [vals.length]).to("bfloat16");
    assert.deepEqual(Array.from(b.data as Uint16Array), Array.from(floatToBf16(new Uint16Array(vals.length), vals)));
    assert.deepEqual(Array.from(b.to("float32").f32()), Array.from(bf16ToFloat(new Float32Array(vals.length), b.data as Uint16Array)));
  });

  it("ops.linear with a bf16 weight: float32 sums over the widened weight, with and without bias, any leading dims", () => {
    for (const [rows, inF, out] of SHAPES) {
      const x = randn([rows, inF], rows + inF), { w, wf } = bf16Weight(out, inF, out), b = randn([out], 7);
      for (const bias of [null, b]) {
        const { y, scale } = reference(x.f32(), wf, bias?.f32() ?? null, rows, inF, out);
        const got = ops.linear(x, w, bias);
        assert.deepEqual(got.shape, [rows, out]);
        assertWithinSums(got.f32(), y, scale, `linear ${rows}x${inF}->${out} bias ${!!bias}`);
      }
    }
    const x3 = randn([2, 3, 5], 1), { w } = bf16Weight(4, 5, 2);
    assert.deepEqual(ops.linear(x3, w).shape, [2, 3, 4]);
    assert.deepEqual(ops.linear(x3, w).f32(), ops.linear(x3.reshape(6, 5), w).f32());
  });

  it("gradients reach x and the bias (float64 finite differences); the bf16 weight gets none", () => {
    const { w, wf } = bf16Weight(6, 5, 3);
    gradCheck({
      name: "linear bf16 weight",
      op: ([x, b]) => ops.linear(x, w, b),
      ref64: ([x, b], [xs]) => {
        const rows = xs[0], out = new Float64Array(rows * 6);
        for (let r = 0; r < rows; ++r) for (let o = 0; o < 6; ++o) {
          let s = b[o];
          for (let k = 0; k < 5; ++k) s += x[r * 5 + k] * wf[o * 5 + k];
          out[r * 6 + o] = s;
        }
        return out;
      },
      inputs: [randn([4, 5], 4).requiresGrad_(), randn([6], 5).requiresGrad_()],
    });
    assert.equal(w.requiresGrad, false);
    assert.equal(w.grad, null);
  });

  it("ops.embedding with a bf16 table: the widened rows exactly; int32 and int64 ids; out-of-range ids named", () => {
    const tab = randn([50, 6], 9).to("bfloat16"), f = tab.to("float32");
    for (const dtype of ["int32", "int64"] as const) {
      const ids = Tensor.from([[3, 49], [0, 3]], undefined, { dtype });
      const got = ops.embedding(ids, tab);
      assert.deepEqual(got.shape, [2, 2, 6]);
      assert.deepEqual(got.f32(), ops.embedding(ids, f).f32());
    }
    assert.throws(() => ops.embedding(Tensor.from([1, 50], undefined, { dtype: "int32" }), tab), (e: Error) => e instanceof RangeError && /ops\.embedding: indices holds 50 at flat position 1, outside \[0, 50\)/.test(e.message));
  });

  it("argument errors: a bf16 bias, a wrong shape, a non-float weight", () => {
    const x = randn([2, 4], 1), { w } = bf16Weight(3, 4, 2);
    assert.throws(() => ops.linear(x, w, randn([3], 3).to("bfloat16")), (e: Error) => e instanceof TypeError && /ops\.linear: bias must be a float32 tensor, got bfloat16/.test(e.message));
    assert.throws(() => ops.linear(randn([2, 5], 1), w), (e: Error) => e instanceof RangeError && /ops\.linear: weight has shape \[3, 4\], expected \[out, in\] = \[3, 5\]/.test(e.message));
    assert.throws(() => ops.linear(x, Tensor.zeros([3, 4], { dtype: "int32" })), (e: Error) => e instanceof TypeError && /ops\.linear: weight must be a float32 tensor, got int32/.test(e.message));
    assert.throws(() => ops.embedding(Tensor.from([0], undefined, { dtype: "int32" }), Tensor.zeros([3, 4], { dtype: "int32" })), /ops\.embedding: weight must be a float32 \(or bfloat16\) tensor, got int32/);
  });

  describe("xLSTMLarge.setWeightDtype", () => {
    const CFG: xLSTMLargeConfig = { embedding_dim: 32, num_heads: 2, num_blocks: 2, vocab_size: 40, chunk_size: 8, mode: "inference" };
    it("stores the matrix weights as bf16 in place (norms and biases float32) and computes what the float32 model with those values does", () => {
      const a = new xLSTMLarge(CFG, { generator: new Generator(3) });
      const b = new xLSTMLarge(CFG, { skipInit: true });
      const refs = a.parameters();
      assert.equal(a.setWeightDtype("bfloat16"), a);
      assert.equal(a.weightDtype, "bfloat16");
      assert.ok(a.parameters().every((p, i) => p === refs[i]), "the same Tensor objects");
      for (const [k, p] of a.namedParameters()) {
        assert.equal(p.dtype, p.ndim === 2 ? "bfloat16" : "float32", k);
        assert.equal(p.requiresGrad, p.ndim !== 2, k);
      }
      b.loadStateDict(a.stateDict());  // float32 copies of the bf16 values
      assert.ok(b.parameters().every((p) => p.dtype === "float32"));
      const idx = Tensor.from([[1, 5, 9, 2, 39, 0, 7, 7, 3, 11]], undefined, { dtype: "int32" });
      const ya = a.forward(idx).logits.f32(), yb = b.forward(idx).logits.f32();
      let scale = 0;
      for (const v of yb) scale = Math.max(scale, Math.abs(v));
      assertClose(ya, yb, "bf16-stored vs float32 model over the same values", 0, 1e-5 * scale);
      assert.throws(() => new AdamW(a.parameters()), /expected float32/);
      a.setWeightDtype("float32");
      assert.ok(a.parameters().every((p) => p.dtype === "float32" && p.requiresGrad));
      assert.deepEqual(a.forward(idx).logits.f32(), yb, "back to float32: the same values");
      assert.throws(() => a.setWeightDtype("float16" as never), /xLSTMLarge\.setWeightDtype: dtype must be "float32" or "bfloat16"/);
    });

    it("_allocateWeightsAs (loadModel onto the GPU): the same parameters as bf16 zeros, values dropped, then filled by a state dict", () => {
      const a = new xLSTMLarge(CFG, { generator: new Generator(4) });
      const refs = a.parameters();
      a._allocateWeightsAs("bfloat16");
      assert.ok(a.parameters().every((p, i) => p === refs[i]), "the same Tensor objects");
      for (const [k, p] of a.namedParameters()) {
        assert.equal(p.dtype, p.ndim === 2 ? "bfloat16" : "float32", k);
        if (p.ndim === 2) assert.ok((p.data as Uint16Array).every((v) => v === 0), `${k}: zeros`);
      }
      const src = new xLSTMLarge(CFG, { generator: new Generator(5) }).setWeightDtype("bfloat16");
      a.loadStateDict(src.stateDict());
      const idx = Tensor.from([[1, 5, 9, 2]], undefined, { dtype: "int32" });
      assert.deepEqual(a.forward(idx).logits.f32(), src.forward(idx).logits.f32());
    });
  });

  itCompiled("the bf16 GEMV writes every output once per row (cudaBf16GemvCoverage), grid-stride passes included", () => {
    for (const rows of [1, 2, 5, 8])
      for (const out of [1, 7, 8, 9, 63, 65, 1000]) {
        const counts = new Int32Array(rows * out);
        const grid = native.cudaBf16GemvCoverage(rows, 16, out, counts);
        assert.equal(grid, Math.min(65535, Math.ceil(out / 8)));
        assert.ok(counts.every((c) => c === 1), `rows ${rows} out ${out}`);
      }
    const out = 65535 * 8 + 13, counts = new Int32Array(out);  // more outputs than one pass of the largest grid
    assert.equal(native.cudaBf16GemvCoverage(1, 8, out, counts), 65535);
    assert.ok(counts.every((c) => c === 1));
    assert.throws(() => native.cudaBf16GemvCoverage(9, 8, 4, new Int32Array(36)), RangeError);
  });

  describe("on the GPU", () => {
    itGpu("ops.linear with a bf16 weight on cuda: the CPU's sums on every shape (GEMV up to 8 rows, widen + GEMM above), with autocast, gradients", () => {
      for (const [rows, inF, out] of SHAPES) {
        const x = randn([rows, inF], rows + inF), { w, wf } = bf16Weight(out, inF, out), b = randn([out], 7);
        for (const bias of [null, b]) {
          const { y, scale } = reference(x.f32(), wf, bias?.f32() ?? null, rows, inF, out);
          const got = ops.linear(x.cuda(), w.cuda(), bias?.cuda() ?? null);
          assert.equal(got.device, "cuda");
          assertWithinSums(got.cpu().f32(), y, scale, `cuda linear ${rows}x${inF}->${out} bias ${!!bias}`);
        }
        // autocast: x rounded to bf16 (the CPU kernel's roundX), products exact, float32 sums
        const { y, scale } = reference(x.f32(), wf, b.f32(), rows, inF, out, true);
        const got = cuda.autocast(() => ops.linear(x.cuda(), w.cuda(), b.cuda()).cpu());
        assertWithinSums(got.f32(), y, scale, `autocast linear ${rows}x${inF}->${out}`);
      }
      // gradients equal the CPU's (float32 GEMMs over the widened weight)
      const { w } = bf16Weight(6, 37, 3);
      const g = randn([9, 6], 8);
      const run = (dev: "cpu" | "cuda") => {
        const x = randn([9, 37], 4).to(dev).requiresGrad_(), b = randn([6], 5).to(dev).requiresGrad_();
        ops.linear(x, w.to(dev), b).backward(g.to(dev));
        return [x.grad!.cpu().f32(), b.grad!.cpu().f32()];
      };
      const [gx, gb] = run("cuda"), [cx, cb] = run("cpu");
      assertClose(gx, cx, "dx", 1e-5, 1e-6);
      assertClose(gb, cb, "dbias", 1e-5, 1e-6);
    });

    itGpu("ops.embedding with a bf16 table on cuda: the widened rows exactly", () => {
      const tab = randn([300, 37], 9).to("bfloat16");
      const ids = Tensor.from(Array.from({ length: 77 }, (_, i) => (i * 53) % 300), [7, 11], { dtype: "int32" });
      const got = ops.embedding(ids.cuda(), tab.cuda());
      assert.equal(got.device, "cuda");
      assert.deepEqual(got.cpu().f32(), ops.embedding(ids, tab).f32());
      assert.throws(() => ops.embedding(Tensor.from([300], undefined, { dtype: "int32" }), tab.cuda()), /outside \[0, 300\)/);
    });
  });
});
