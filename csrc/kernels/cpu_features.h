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

}  // namespace xlstm
