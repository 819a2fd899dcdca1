// Test helper: checks an op's float32 forward and backward against a float64 reference evaluation.
// The forward must match `ref64` elementwise; the gradient of loss = sum(out * G) (random G) w.r.t. every input
// that requires grad must match central finite differences of `ref64` in float64. Failures name the op, the
// tensor and the worst element.
import { strict as assert } from "assert";
import { Generator, Tensor } from "../../lib";
import { Ratio, worstRatio as libWorstRatio } from "../../lib/fixtures/compare";

export interface GradCheckCase {
  name: string;
  /** The op under test, on float32 tensors. */
  op: (inputs: Tensor[]) => Tensor;
  /** The same function in float64, on flat arrays with the inputs' shapes. */
  ref64: (inputs: Float64Array[], shapes: number[][]) => Float64Array;
  inputs: Tensor[];
  rtol?: number;
  atol?: number;
  /** Step of the central differences (float64). */
  eps?: number;
}

/** Worst |a - e| / (atol + rtol |e|) over all elements; <= 1 passes (the library's comparison). */
export function worstRatio(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number): Ratio {
  assert.equal(actual.length, expected.length, `length ${actual.length} vs expected ${expected.length}`);
  return libWorstRatio(actual, expected, rtol, atol);
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-5, atol = 1e-6): void {
  const { ratio, index } = worstRatio(actual, expected, rtol, atol);
  assert.ok(ratio <= 1, `${what}: worst error/tolerance ratio ${ratio.toFixed(3)} at index ${index}: got ${actual[index]}, expected ${expected[index]}`);
}

export function gradCheck(c: GradCheckCase): void {
  const rtol = c.rtol ?? 1e-4;
  const atol = c.atol ?? 1e-5;
  const eps = c.eps ?? 1e-6;
  const shapes = c.inputs.map((t) => [...t.shape]);
  const x64 = c.inputs.map((t) => Float64Array.from(t.f32()));

  for (const t of c.inputs) t.grad = null;
  const out = c.op(c.inputs);
  const ref = c.ref64(x64, shapes);
  assert.equal(out.numel, ref.length, `${c.name}: forward has ${out.numel} elements, reference ${ref.length}`);
  assertClose(out.f32(), ref, `${c.name} forward`, rtol, atol);

  const gen = new Generator(1234);
  const G = Tensor.randn(out.shape, { generator: gen });
  const g64 = Float64Array.from(G.f32());
  const loss64 = (xs: Float64Array[]) => {
    const y = c.ref64(xs, shapes);
    let s = 0;
    for (let i = 0; i < y.length; ++i) s += y[i] * g64[i];
    return s;
  };
  out.backward(G);

  c.inputs.forEach((t, k) => {
    if (!t.requiresGrad) return;
    assert.ok(t.grad, `${c.name}: input ${k} got no gradient`);
    const numeric = new Float64Array(t.numel);
    for (let i = 0; i < t.numel; ++i) {
      const orig = x64[k][i];
      x64[k][i] = orig + eps;
      const lp = loss64(x64);
      x64[k][i] = orig - eps;
      const lm = loss64(x64);
      x64[k][i] = orig;
      numeric[i] = (lp - lm) / (2 * eps);
    }
    assertClose(t.grad!.f32(), numeric, `${c.name} gradient of input ${k}`, rtol, atol);
  });
}

/** A float32 tensor that requires grad, drawn from a fixed seed. */
export function randnGrad(shape: number[], seed: number, scale = 1): Tensor {
  const t = Tensor.randn(shape, { generator: new Generator(seed), std: scale });
  t.requiresGrad = true;
  return t;
}
