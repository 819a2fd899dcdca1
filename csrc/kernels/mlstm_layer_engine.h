// The pointwise parts of the fused mLSTM layer (mlstm_layer.h), written once and compiled per ISA
// (mlstm_layer.cc scalar, mlstm_layer_avx2.cc, mlstm_layer_avx512.cc): plain loops under `#pragma omp simd` on the
// branch-free fast_math.h sigmoid (~2 ulp), which the compiler vectorises with each file's flags.
//   SiLU(x) = x σ(x),  SiLU'(x) = σ(x) (1 + x (1 − σ(x)))
#pragma once
#include <math.h>
#include <stdint.h>

#include "kernels/fast_math.h"
#include "kernels/mlstm_layer.h"

namespace xlstm {
namespace mlstm_layer_detail {
namespace {

void pw_silu(float* y, const float* x, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t j = begin; j < end; ++j) y[j] = x[j] * fm_sigmoid(x[j]);
}

void pw_skip_gate(float* hs, float* out, const float* hn, const float* skip, const float* xc, const float* z,
                  int64_t r0, int64_t r1, int64_t Di) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * Di;
#pragma omp simd
    for (int64_t j = 0; j < Di; ++j) {
      const float h = hn[o + j] + skip[j] * xc[o + j];
      hs[o + j] = h;
      out[o + j] = h * (z[o + j] * fm_sigmoid(z[o + j]));
    }
  }
}

void pw_gate(float* out, const float* hs, const float* z, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t j = begin; j < end; ++j) out[j] = hs[j] * (z[j] * fm_sigmoid(z[j]));
}

void pw_skip_gate_backward(float* dhs, float* dz, float* dxc, const float* dout, const float* hs, const float* z,
                           const float* skip, int64_t r0, int64_t r1, int64_t Di) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * Di;
#pragma omp simd
    for (int64_t j = 0; j < Di; ++j) {
      const float zz = z[o + j], s = fm_sigmoid(zz);
      const float g = dout[o + j];
      const float d = g * (zz * s);
      dhs[o + j] = d;
      dz[o + j] = g * hs[o + j] * (s * (1.0f + zz * (1.0f - s)));
      dxc[o + j] = d * skip[j];
    }
  }
}

void pw_silu_backward_inplace(float* g, const float* x, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t j = begin; j < end; ++j) {
    const float s = fm_sigmoid(x[j]);
    g[j] *= s * (1.0f + x[j] * (1.0f - s));
  }
}

inline Pointwise make_pointwise() {
  return Pointwise{pw_silu, pw_skip_gate, pw_gate, pw_skip_gate_backward, pw_silu_backward_inplace};
}

}  // namespace
}  // namespace mlstm_layer_detail
}  // namespace xlstm
