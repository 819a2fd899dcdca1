// The fused feed-forward half of an xLSTM block (see ffn_block.h): the kernels the composed ops run, in their order.
#include "kernels/ffn_block.h"

#include <cstring>
#include <memory>

#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

struct Saved {
  float *xn, *mean, *rstd, *h, *a;
  Saved(float* p, const FfnBlockDims& d)
      : xn(p), mean(xn + d.N * d.E), rstd(mean + d.N), h(rstd + d.N), a(h + d.N * 2 * d.P) {}
};

// dst = src over N rows of E, in parallel (the residual's copy into the down product's C)
void copy_rows(float* dst, const float* src, int64_t N, int64_t E) {
  parallel_for(N, 64, [&](int64_t r0, int64_t r1) { std::memcpy(dst + r0 * E, src + r0 * E, (r1 - r0) * E * sizeof(float)); });
}

}  // namespace

int64_t ffn_block_saved_size(const FfnBlockDims& d) { return d.N * d.E + 2 * d.N + d.N * 3 * d.P; }

void ffn_block_forward(float* y, float* saved, const float* x, const float* ln_w, const float* w_up,
                       const float* w_down, const FfnBlockDims& d) {
  const int64_t N = d.N, E = d.E, P = d.P;
  std::unique_ptr<float[]> scratch;  // inference: the intermediates in a temporary buffer
  if (!saved) {
    scratch.reset(new float[static_cast<size_t>(ffn_block_saved_size(d))]);
    saved = scratch.get();
  }
  const Saved s(saved, d);
  layer_norm_forward(s.xn, s.mean, s.rstd, x, ln_w, nullptr, N, 1, E, d.ln_eps, d.ln_residual);
  gemm(false, true, N, 2 * P, E, 1.0f, s.xn, E, w_up, E, 0.0f, s.h, 2 * P);
  gated_unary(d.act, s.a, s.h, N, P, d.act_a, d.act_b);
  copy_rows(y, x, N, E);
  gemm(false, true, N, E, P, 1.0f, s.a, P, w_down, P, 1.0f, y, E);
}

void ffn_block_backward(float* dx, float* d_ln_w, float* d_w_up, float* d_w_down, const float* dy, const float* x,
                        const float* saved, const float* ln_w, const float* w_up, const float* w_down,
                        const FfnBlockDims& d) {
  const int64_t N = d.N, E = d.E, P = d.P;
  const Saved s(const_cast<float*>(saved), d);
  std::unique_ptr<float[]> da(new float[static_cast<size_t>(N * P)]);
  std::unique_ptr<float[]> dh(new float[static_cast<size_t>(N * 2 * P)]);
  std::unique_ptr<float[]> dxn(new float[static_cast<size_t>(N * E)]);
  // proj_down (the linear's backward: d input, then d weight)
  gemm(false, false, N, P, E, 1.0f, dy, E, w_down, P, 0.0f, da.get(), P);
  if (d_w_down) gemm(true, false, E, P, N, 1.0f, dy, E, s.a, P, 0.0f, d_w_down, P);
  gated_unary_backward(d.act, dh.get(), s.h, da.get(), N, P, d.act_a, d.act_b);
  // proj_up
  gemm(false, false, N, E, 2 * P, 1.0f, dh.get(), 2 * P, w_up, E, 0.0f, dxn.get(), E);
  if (d_w_up) gemm(true, false, 2 * P, E, N, 1.0f, dh.get(), 2 * P, s.xn, E, 0.0f, d_w_up, E);
  // the norm, then the residual's share
  layer_norm_backward(dx, d_ln_w, nullptr, dxn.get(), x, s.mean, s.rstd, ln_w, N, 1, E, d.ln_residual);
  parallel_for(N * E, 1 << 14, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dx[i] += dy[i];
  });
}

}  // namespace xlstm
