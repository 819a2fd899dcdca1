// Test helper: run a check at every SIMD level this CPU and build support, restoring the best level afterwards.
import { backends, setSimdLevel, SimdLevel } from "../../lib";

const best = backends().cpu.simdSupported;

/** The SIMD levels that can actually be selected here. */
export const simdLevels: SimdLevel[] = (["scalar", "avx2", "avx512"] as SimdLevel[]).filter((l) => {
  const got = setSimdLevel(l);
  setSimdLevel(best);
  return got === l;
});

export function forEachSimdLevel(fn: (level: SimdLevel) => void): void {
  try {
    for (const l of simdLevels) {
      setSimdLevel(l);
      fn(l);
    }
  } finally {
    setSimdLevel(best);
  }
}
