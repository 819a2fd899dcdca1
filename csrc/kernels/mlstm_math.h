// Per-element gate and stabiliser math of the mLSTM cell (XLSTM_SPEC §1, §4.3–§4.7), shared by the CPU kernels
// (mlstm_engine.h, per ISA) and their CUDA twin (cuda/mlstm.cu): __host__ __device__ under nvcc, plain inline
// functions otherwise. Moved here verbatim from mlstm_engine.h, so the CPU results are bitwise what they were.
//   logsig_v      logσ in double, branch-free (the chunkwise gates: vectorised on the CPU)
//   logsig_d      logσ in double through libm (the recurrent step gates)
//   sigmoid_d     σ in double, stable for both signs
//   step_gates    f' = exp(logσ(f̃) + m_{t−1} − m_t), i' = exp(ĩ − m_t), m_t (the recurrent step, §4.3)
//   norm_inv      1 / (max(|den|, exp(−μ)) + ε) with the floor formed as on the CPU, and whether |den| is above it
// Internal linkage (anonymous namespace): compiled once per ISA with that ISA's flags.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/fast_math.h"

#ifdef __CUDACC__
#define XLSTM_MM __host__ __device__ __forceinline__
#define XLSTM_MM_SCALAR __host__ __device__ inline
#else
// always_inline: the chunkwise gate loop (`omp simd`) vectorises only with the bodies in the loop
#define XLSTM_MM inline __attribute__((always_inline))
#define XLSTM_MM_SCALAR inline
#endif

namespace xlstm {
namespace {
namespace mlstm_math {

// logσ(x) = min(x, 0) − log1p(e^{−|x|})  (XLSTM_SPEC §1), in double
XLSTM_MM_SCALAR double logsig_d(double x) { return (0.0 < x ? 0.0 : x) - std::log1p(std::exp(-std::fabs(x))); }
// σ(x), stable for both signs
XLSTM_MM_SCALAR double sigmoid_d(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// The same logσ for the chunkwise gates, branch-free so that `omp simd` vectorises it (2–3 ulp in double instead of
// two libm calls per step): e^z for z ≤ 0 by z = n ln2 + r (ln2 in two parts, |r| ≤ ln2/2) and the degree-13
// Taylor polynomial (truncation < 1e-17), 0 below −708 (where log1p(e^z) = e^z is far below the rounding of min(x, 0));
// log1p(y) for y in [0, 1] as log(u) + (y − (u − 1))/u with u = 1 + y and log(u) = k ln2 + 2 atanh(s),
// s = (m − 1)/(m + 1), |s| ≤ 0.1716, by its odd series to s^21.
XLSTM_MM double exp_nonpos_d(double z) {
  const double zc = z < -708.0 ? -708.0 : z;
  const double shift = 6755399441055744.0;  // 1.5 · 2^52: adding it rounds to an integer in the low mantissa bits
  const double t = zc * 1.4426950408889634 + shift;
  const double n = t - shift;
  const int64_t ni = __builtin_bit_cast(int64_t, t) - __builtin_bit_cast(int64_t, shift);
  double r = zc - n * 0.6931471803691238;  // ln2 high part (25 trailing zero bits: n·hi is exact)
  r = r - n * 1.9082149292705877e-10;
  double p = 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // unsigned: for z outside the domain (NaN, > 0) ni is garbage and a signed shift would be undefined; the result is
  // then NaN or meaningless, as the caller's inputs were
  const double scale = __builtin_bit_cast(double, static_cast<uint64_t>(ni + 1023) << 52);
  return z < -708.0 ? 0.0 : p * scale;
}
XLSTM_MM double log1p_unit_d(double y) {
  const double u = 1.0 + y;
  const double corr = (y - (u - 1.0)) / u;
  const bool up = u > 1.4142135623730951;
  const double m = up ? 0.5 * u : u;
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double p = 1.0 / 21.0;
  p = p * s2 + 1.0 / 19.0;
  p = p * s2 + 1.0 / 17.0;
  p = p * s2 + 1.0 / 15.0;
  p = p * s2 + 1.0 / 13.0;
  p = p * s2 + 1.0 / 11.0;
  p = p * s2 + 1.0 / 9.0;
  p = p * s2 + 1.0 / 7.0;
  p = p * s2 + 1.0 / 5.0;
  p = p * s2 + 1.0 / 3.0;
  p = p * s2 + 1.0;
  return (up ? 0.6931471805599453 : 0.0) + (2.0 * s * p + corr);
}
XLSTM_MM double logsig_v(double x) {
  const double ax = x < 0.0 ? -x : x;
  return (x < 0.0 ? x : 0.0) - log1p_unit_d(exp_nonpos_d(-ax));
}

struct StepGates {
  float fp, ip, m;  // f' = exp(logσ(f̃) + m_{t-1} − m_t), i' = exp(ĩ − m_t), m_t
};

XLSTM_MM_SCALAR StepGates step_gates(float fpre, float ipre, float mprev) {
  const double lf = logsig_d(fpre) + static_cast<double>(mprev);
  const double ip = static_cast<double>(ipre);
  const float m = static_cast<float>(lf < ip ? ip : lf);
  return {static_cast<float>(std::exp(lf - m)), static_cast<float>(std::exp(ip - m)), m};
}

// The normaliser of h_t = num_t / (max(|den_t|, exp(−μ_t)) + ε): exp(−μ) in float (fm_exp, as the CPU's vectorised
// exp_f) where it is a normal float, else in double. Returns 1 / (d + ε); *above = |den| > exp(−μ) (the ρ term of
// the backward is nonzero only then).
XLSTM_MM_SCALAR float norm_inv(float den, float mu, float eps, bool* above) {
  const double floor_ = (mu > -80.0f && mu < 80.0f) ? static_cast<double>(fm_exp(-mu)) : std::exp(-static_cast<double>(mu));
  const double a = std::fabs(static_cast<double>(den));
  if (above) *above = a > floor_;
  const double dd = a < floor_ ? floor_ : a;
  return static_cast<float>(1.0 / (dd + eps));
}

}  // namespace mlstm_math
}  // namespace
}  // namespace xlstm
