// Run-time SIMD detection (see cpu_features.h).
#include "kernels/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace xlstm {
namespace {

SimdLevel detect() {
#if defined(XLSTM_X86) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
    return SimdLevel::AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::AVX2;
#endif
  return SimdLevel::Scalar;
}

SimdLevel from_env(SimdLevel best) {
  const char* env = std::getenv("XLSTM_SIMD");
  if (!env) return best;
  SimdLevel want = best;
  if (!std::strcmp(env, "scalar")) want = SimdLevel::Scalar;
  else if (!std::strcmp(env, "avx2")) want = SimdLevel::AVX2;
  else if (!std::strcmp(env, "avx512")) want = SimdLevel::AVX512;
  return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

std::atomic<int> g_level{-1};

}  // namespace

SimdLevel simd_level_supported() {
  static const SimdLevel best = detect();
  return best;
}

SimdLevel simd_level() {
  int v = g_level.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(from_env(simd_level_supported()));
    g_level.store(v, std::memory_order_relaxed);
  }
  return static_cast<SimdLevel>(v);
}

void set_simd_level(SimdLevel level) {
  SimdLevel best = simd_level_supported();
  if (static_cast<int>(level) > static_cast<int>(best)) level = best;
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::AVX512: return "avx512";
    case SimdLevel::AVX2: return "avx2";
    default: return "scalar";
  }
}

}  // namespace xlstm
