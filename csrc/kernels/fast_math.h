// Branch-free float exp/log1p/tanh/sigmoid that compilers vectorise inside `#pragma omp simd` loops (no libm
// calls), for the pointwise parts of the fused recurrences (CPU kernels layer). Accuracy: exp and log within
// ~2 ulp (Cephes polynomials, checked against float64 in test/40.recurrent); tanh has an absolute error below
// ~1e-7 near 0. Internal linkage: compiled once per ISA with that ISA's flags.
#pragma once
#include <math.h>

#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define XLSTM_FM __host__ __device__ __forceinline__
#else
// always_inline: callers' `omp simd` loops vectorise only with the body in the loop (with many call sites GCC may
// otherwise outline these functions)
#define XLSTM_FM inline __attribute__((always_inline))
#endif

namespace xlstm {
namespace {

// min/max as selects: fminf/fmaxf have NaN rules that keep GCC from vectorising them without -ffinite-math-only.
XLSTM_FM float fm_min(float a, float b) { return b < a ? b : a; }
XLSTM_FM float fm_max(float a, float b) { return a < b ? b : a; }

XLSTM_FM float fm_bits_to_float(int32_t i) { return __builtin_bit_cast(float, i); }
XLSTM_FM int32_t fm_float_to_bits(float f) { return __builtin_bit_cast(int32_t, f); }

// e^x: range reduction x = n ln2 + r (|r| <= ln2/2, ln2 split in two for exactness), degree-6 polynomial,
// scaling by 2^n through the exponent bits. Below -87.3 the result is 0 (float underflow), above 88.7 +inf.
XLSTM_FM float fm_exp(float x) {
  // fm_max returns its first operand when the other is NaN, so a NaN x clamps to -87.3: n stays finite and the
  // float->int conversion below is defined for every input (converting NaN is undefined behaviour); the last
  // select still returns NaN for NaN.
  const float xc = fm_min(fm_max(-87.3f, x), 88.7f);
  const float n = __builtin_rintf(xc * 1.44269504088896341f);
  float r = fmaf(n, -0.693359375f, xc);
  r = fmaf(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = fmaf(p, r, 1.3981999507e-3f);
  p = fmaf(p, r, 8.3334519073e-3f);
  p = fmaf(p, r, 4.1665795894e-2f);
  p = fmaf(p, r, 1.6666665459e-1f);
  p = fmaf(p, r, 5.0000001201e-1f);
  const float y = fmaf(p * r, r, r) + 1.0f;
  // 2^n in two halves so that n = 128 (x near 88.7) does not overflow the exponent field early
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const float s = y * fm_bits_to_float((n1 + 127) << 23) * fm_bits_to_float((n2 + 127) << 23);
  return x < -87.3f ? 0.0f : (x > 88.7f ? __builtin_inff() : (x == x ? s : x));
}

// ln(u) for u > 0 normal (Cephes logf): u = 2^e m with m in [sqrt(1/2), sqrt(2)), polynomial in m - 1.
XLSTM_FM float fm_log(float u) {
  int32_t bits = fm_float_to_bits(u);
  int32_t e = ((bits >> 23) & 0xff) - 126;
  float m = fm_bits_to_float((bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float p = 7.0376836292e-2f;
  p = fmaf(p, m, -1.1514610310e-1f);
  p = fmaf(p, m, 1.1676998740e-1f);
  p = fmaf(p, m, -1.2420140846e-1f);
  p = fmaf(p, m, 1.4249322787e-1f);
  p = fmaf(p, m, -1.6668057665e-1f);
  p = fmaf(p, m, 2.0000714765e-1f);
  p = fmaf(p, m, -2.4999993993e-1f);
  p = fmaf(p, m, 3.3333331174e-1f);
  float y = p * m * z;
  const float ef = static_cast<float>(e);
  y = fmaf(ef, -2.12194440e-4f, y);
  y = fmaf(z, -0.5f, y);
  return fmaf(ef, 0.693359375f, m + y);
}

// log(1 + t) for t >= 0, accurate for tiny t: log(u) corrected by the rounding of u = 1 + t.
XLSTM_FM float fm_log1p(float t) {
  const float u = 1.0f + t;
  const float corr = (t - (u - 1.0f)) / u;
  return u == 1.0f ? t : fm_log(u) + corr;
}

XLSTM_FM float fm_sigmoid(float x) { return 1.0f / (1.0f + fm_exp(-x)); }

// logσ(x) = min(x, 0) - log1p(e^{-|x|})  (XLSTM_SPEC §1, the stable form)
XLSTM_FM float fm_logsigmoid(float x) { return fm_min(x, 0.0f) - fm_log1p(fm_exp(-fabsf(x))); }

// tanh(x) = sign(x) (1 - e) / (1 + e), e = e^{-2|x|}
XLSTM_FM float fm_tanh(float x) {
  const float e = fm_exp(-2.0f * fabsf(x));
  const float t = (1.0f - e) / (1.0f + e);
  return x < 0.0f ? -t : t;
}

}  // namespace
}  // namespace xlstm
