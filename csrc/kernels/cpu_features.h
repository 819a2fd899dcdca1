// Which SIMD level the CPU kernels dispatch to, detected once at run time (CPU kernels layer).
#pragma once

namespace xlstm {

enum class SimdLevel { Scalar = 0, AVX2 = 1, AVX512 = 2 };

// The best level this CPU supports, capped by XLSTM_SIMD=scalar|avx2|avx512 (for testing every path).
SimdLevel simd_level();
// Override at run time (tests use it to check each variant against the scalar path).
void set_simd_level(SimdLevel level);
// The best level the hardware and this build support, ignoring overrides.
SimdLevel simd_level_supported();
const char* simd_level_name(SimdLevel level);

// Whether the kernels with a hand-written AVX-512 path take it now: simd_level() is AVX512 on an x86 build.
inline bool use_avx512() {
#if defined(XLSTM_X86)
  return simd_level() == SimdLevel::AVX512;
#else
  return false;
#endif
}

// The table of a kernel family for the current simd_level(): each family compiles one table per ISA (a scalar
// one always; AVX2 / AVX-512 ones on x86, null elsewhere) and picks at call time, so setSimdLevel() takes effect
// immediately. A missing level falls back to the next lower one.
template <class Impl>
inline const Impl& pick_simd_impl(const Impl& (*scalar)(), const Impl& (*avx2)(), const Impl& (*avx512)()) {
  switch (simd_level()) {
    case SimdLevel::AVX512:
      if (avx512) return avx512();
      [[fallthrough]];
    case SimdLevel::AVX2:
      if (avx2) return avx2();
      [[fallthrough]];
    default:
      return scalar();
  }
}

}  // namespace xlstm
