// Test helpers for the bf16 products of setFloat32MatmulPrecision("medium") (test/40, test/42).
import { setFloat32MatmulPrecision } from "../../lib";

/** v rounded to the nearest bfloat16 (ties to even), as a float32 value: the rounding the kernels apply. */
export function roundToBf16(v: number): number {
  const f = new Float32Array([v]), u = new Uint32Array(f.buffer);
  u[0] = ((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) << 16;
  return f[0];
}

/** fn() under setFloat32MatmulPrecision("medium"), then the precision before. */
export function withMediumPrecision<T>(fn: () => T): T {
  const before = setFloat32MatmulPrecision("medium");
  try {
    return fn();
  } finally {
    setFloat32MatmulPrecision(before);
  }
}
