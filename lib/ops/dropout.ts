// Dropout (ops layer; kernels in csrc/kernels/dropout.cc). The mask comes from a counter-based generator
// (Philox4x32-10) keyed by two 32-bit words drawn from the seeded Generator (lib/rng.ts), so the same seed gives the
// same mask on every platform and thread count. One tape entry; the backward reuses the saved mask.
import { dropoutCuda } from "./cuda-misc";
import { record1 } from "../autograd";
import { native } from "../native";
import { defaultGenerator, Generator } from "../rng";
import { Tensor, tracked } from "../tensor";
import { optionalGenerator, requireNumber, requireOptions, requireTensor } from "./args";

export interface DropoutOptions {
  /** Apply dropout (true, default) or return x unchanged (evaluation). */
  training?: boolean;
  /** Source of the mask's key; default: the global generator seeded by manualSeed(). Each call draws 2 words. */
  generator?: Generator;
}

/**
 * Zero each element with probability `p` and scale the kept ones by `1 / (1 - p)` (inverted dropout), so the
 * expected value is unchanged. Identity (x itself, nothing drawn) when `p` is 0 or not training.
 * Element i is kept iff `(philox4x32_10(i) >>> 8) >= ceil(p * 2^24)` (see csrc/kernels/dropout.h).
 * @param x float32 tensor of any shape
 * @param p drop probability in [0, 1]; default 0.5; p = 1 drops everything (output and gradient 0)
 * @throws TypeError for a non-float32 x; RangeError for p outside [0, 1]
 * @example manualSeed(0); const y = ops.dropout(x, 0.1);  // reproducible
 */
export function dropout(x: Tensor, p = 0.5, options: DropoutOptions = {}): Tensor {
  const op = "ops.dropout";
  requireTensor(op, "x", x, { cuda: true });
  requireNumber(op, "p", p);
  optionalGenerator(op, "generator", requireOptions(op, "options", options).generator);
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: x must be a Tensor, got ${typeof x}`);
  if (x.dtype !== "float32") throw new TypeError(`${op}: x must be a float32 tensor, got ${x.dtype}`);
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) throw new RangeError(`${op}: p must be a probability in [0, 1], got ${p}`);
  const training = options.training ?? true;
  if (!training || p === 0) return x;
  const gen = options.generator ?? defaultGenerator;
  const key0 = gen.nextUint32(), key1 = gen.nextUint32();
  if (x.device === "cuda") return dropoutCuda(x, p, key0, key1);
  const out = Tensor.zeros(x.shape);
  const mask = tracked(new Uint8Array(x.numel));
  native.dropoutForward(out.data as Float32Array, mask, x.data as Float32Array, p, key0, key1);
  return record1("dropout", [x], out, (g) => {
    const gx = Tensor.zeros(x.shape);
    native.dropoutBackward(gx.data as Float32Array, g.f32("dropout backward"), mask, p);
    return [gx];
  });
}
