// Shared parts of the fused recurrences (see recurrent.h): the portable instantiation of recurrent_engine.h,
// ISA dispatch, and the parameter-gradient reduction that follows the sequential backward.
#include "kernels/recurrent.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/gemm.h"
#include "kernels/matmul_precision.h"
#include "kernels/recurrent_engine.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace recurrent_detail {

const Impl& impl_scalar() {
  static const Impl impl = make_impl();
  return impl;
}

const Impl& impl_for_cpu() {
#ifdef XLSTM_X86
  return pick_simd_impl(impl_scalar, impl_avx2, impl_avx512);
#else
  return pick_simd_impl<Impl>(impl_scalar, nullptr, nullptr);
#endif
}

// dR[h][j][g*DH + k] = Σ_{b,t} h_{t-1}[b, h*DH + j] · dx[b, t, g*H + h*DH + k]   (XLSTM_SPEC §2.4)
// (in the transposed layout dR[h][g*DH + k][j], the same sums)
// dbias[g*H + h*DH + k] = Σ_{b,t} dx[b, t, g*H + h*DH + k]
// One GEMM per head and gate over all B*S rows (one in all for a single head): this is where backward spends its
// FLOPs, so it runs on the blocked GEMM instead of per step. (The transposed layout's GEMM has the 4·DH gate rows
// as its M, the GEMM's better shape: hidden 256 ran at ~415 instead of ~310 GFLOP/s here.)
void reduce_param_grads(float* dR, float* dbias, const float* dx, const float* states, const float* state0,
                        const RecurrentDims& d) {
  const int64_t B = d.B, S = d.S, NH = d.NH, DH = d.DH, H = NH * DH, G = 4 * DH, rows = B * S;
  // hprev[(b*S + t), :] = h_{t-1}[b, :]; states component 0 is [S, B, H]
  std::vector<float> hprev(static_cast<size_t>(rows * H));
  parallel_for(rows, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t b = row / S, t = row % S;
      const float* src = t == 0 ? (state0 ? state0 + b * H : nullptr) : states + ((t - 1) * B + b) * H;
      float* dst = hprev.data() + row * H;
      for (int64_t i = 0; i < H; ++i) dst[i] = src ? src[i] : 0.0f;
    }
  });
  if (d.r_transposed) {
    if (NH == 1)  // dR[0] = dxᵀ hprev
      gemm(true, false, G, DH, rows, 1.0f, dx, G, hprev.data(), H, 0.0f, dR, DH);
    else
      for (int64_t hd = 0; hd < NH; ++hd)
        for (int64_t g = 0; g < 4; ++g)
          gemm(true, false, DH, DH, rows, 1.0f, dx + g * H + hd * DH, 4 * H, hprev.data() + hd * DH, H, 0.0f,
               dR + (hd * G + g * DH) * DH, DH);
  } else if (NH == 1) {  // dR[0] = hprevᵀ dx: the gates' columns g*H + k are already dR's g*DH + k
    gemm(true, false, DH, G, rows, 1.0f, hprev.data(), H, dx, G, 0.0f, dR, G);
  } else {
    for (int64_t hd = 0; hd < NH; ++hd)
      for (int64_t g = 0; g < 4; ++g)
        gemm(true, false, DH, DH, rows, 1.0f, hprev.data() + hd * DH, H, dx + g * H + hd * DH, 4 * H, 0.0f,
             dR + hd * DH * G + g * DH, G);
  }
  // dbias: dx's column sums in double. Rows in fixed blocks of kBiasRows, each block's sums over whole rows (dx read
  // once, row by row: a column split would read each row in pieces 4H floats apart, which the prefetcher does not
  // follow), then the blocks' sums added in block order: the same sums for any number of threads.
  constexpr int64_t kBiasRows = 32;
  const int64_t W = 4 * H, blocks = (rows + kBiasRows - 1) / kBiasRows;
  std::vector<double> part(static_cast<size_t>(blocks * W));
  parallel_for(blocks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      double* p = part.data() + k * W;
      std::fill(p, p + W, 0.0);
      for (int64_t row = k * kBiasRows, end = std::min(rows, row + kBiasRows); row < end; ++row) {
        const float* r = dx + row * W;
        for (int64_t c = 0; c < W; ++c) p[c] += r[c];
      }
    }
  });
  parallel_for(W, 256, [&](int64_t lo, int64_t hi) {
    std::vector<double> acc(static_cast<size_t>(hi - lo), 0.0);
    for (int64_t k = 0; k < blocks; ++k) {
      const double* p = part.data() + k * W;
      for (int64_t c = lo; c < hi; ++c) acc[c - lo] += p[c];
    }
    for (int64_t c = lo; c < hi; ++c) dbias[c] = static_cast<float>(acc[c - lo]);
  });
}

}  // namespace recurrent_detail

bool recurrent_bf16_products(const RecurrentDims& d) {
  return medium_on_bf16_pairs() && d.DH % 32 == 0;
}

namespace {
RecurrentDims with_precision(const RecurrentDims& d) {
  RecurrentDims out = d;
  out.bf16 = recurrent_bf16_products(d);
  return out;
}
}  // namespace

void slstm_forward(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                   const float* bias, const RecurrentDims& d) {
  recurrent_detail::impl_for_cpu().slstm_forward(y, states, gates, x, state0, R, bias, with_precision(d));
}

void slstm_backward(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                    const float* dy, const float* dstate_final, const float* state0, const float* R,
                    const RecurrentDims& d, bool exact_m0_grad) {
  recurrent_detail::impl_for_cpu().slstm_backward_seq(dx, dstate0, gates, states, dy, dstate_final, state0, R,
                                                      with_precision(d), exact_m0_grad);
  recurrent_detail::reduce_param_grads(dR, dbias, dx, states, state0, d);
}

void lstm_forward(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                  const float* bias, const RecurrentDims& d) {
  recurrent_detail::impl_for_cpu().lstm_forward(y, states, gates, x, state0, R, bias, with_precision(d));
}

void lstm_backward(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                   const float* dy, const float* dstate_final, const float* state0, const float* R,
                   const RecurrentDims& d) {
  recurrent_detail::impl_for_cpu().lstm_backward_seq(dx, dstate0, gates, states, dy, dstate_final, state0, R,
                                                     with_precision(d), false);
  recurrent_detail::reduce_param_grads(dR, dbias, dx, states, state0, d);
}

}  // namespace xlstm
