// The fused mLSTM layer, forward and backward (see mlstm_layer.h): the orchestration over the existing kernels
// (gemm, headwise, causal conv, chunkwise mLSTM cell, layer norm) and the layout moves between the row layout
// [B, S, NH, DH] of the projections and the head layout [B, NH, S, DH] of the cell. Pointwise parts come from
// mlstm_layer_engine.h for the CPU's SIMD level.
#include "kernels/mlstm_layer.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/conv1d.h"
#include "kernels/cpu_features.h"
#include "kernels/gemm.h"
#include "kernels/headwise.h"
#include "kernels/mlstm.h"
#include "kernels/mlstm_layer_engine.h"
#include "kernels/norm.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace mlstm_layer_detail {

const Pointwise& pointwise_scalar() {
  static const Pointwise impl = make_pointwise();
  return impl;
}

}  // namespace mlstm_layer_detail

namespace {

const mlstm_layer_detail::Pointwise& pointwise() {
#ifdef XLSTM_X86
  return pick_simd_impl(mlstm_layer_detail::pointwise_scalar, mlstm_layer_detail::pointwise_avx2,
                        mlstm_layer_detail::pointwise_avx512);
#else
  return pick_simd_impl<mlstm_layer_detail::Pointwise>(mlstm_layer_detail::pointwise_scalar, nullptr, nullptr);
#endif
}

// Uninitialised float buffers, freed together (each its own allocation, so glibc reuses them call after call).
class Scratch {
 public:
  float* take(int64_t n) {
    bufs_.emplace_back(new float[static_cast<size_t>(n > 0 ? n : 1)]);
    return bufs_.back().get();
  }

 private:
  std::vector<std::unique_ptr<float[]>> bufs_;
};

// The intermediates the backward reads, carved from `saved` in this order (mlstm_layer_saved_size).
struct Saved {
  float *xm, *z, *conv, *xc, *u, *ig, *fg, *hc, *ht, *mean, *rstd, *hs, *cell;
  Saved(float* base, const MlstmLayerDims& d) {
    const int64_t N = d.B * d.S, Di = d.Di, G = d.B * d.NH * d.S;
    float* p = base;
    auto take = [&p](int64_t n) { float* r = p; p += n; return r; };
    xm = take(N * Di), z = take(N * Di), conv = take(N * Di), xc = take(N * Di), u = take(N * 3 * Di);
    ig = take(G), fg = take(G), hc = take(N * Di), ht = take(N * Di), mean = take(N * d.NH), rstd = take(N * d.NH);
    hs = take(N * Di), cell = p;
  }
  static int64_t fixed_size(const MlstmLayerDims& d) {
    const int64_t N = d.B * d.S;
    return N * d.Di * 10 + 2 * d.B * d.NH * d.S + 2 * N * d.NH;
  }
};

MlstmDims cell_dims(const MlstmLayerDims& d) { return MlstmDims{d.B, d.NH, d.S, d.Di / d.NH, d.Di / d.NH}; }

// dst [B, NH, S, DH] <- columns [off, off + NH*DH) of the row-layout src [B*S, ld]
void rows_to_heads(float* dst, const float* src, int64_t ld, int64_t off, const MlstmLayerDims& d) {
  const int64_t DH = d.Di / d.NH;
  parallel_for(d.B * d.NH, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t bh = b0; bh < b1; ++bh) {
      const int64_t b = bh / d.NH, h = bh % d.NH;
      for (int64_t s = 0; s < d.S; ++s)
        std::memcpy(dst + (bh * d.S + s) * DH, src + (b * d.S + s) * ld + off + h * DH, DH * sizeof(float));
    }
  });
}

// columns [off, off + NH*DH) of the row-layout dst [B*S, ld] <- src [B, NH, S, DH]
void heads_to_rows(float* dst, int64_t ld, int64_t off, const float* src, const MlstmLayerDims& d) {
  const int64_t DH = d.Di / d.NH;
  parallel_for(d.B * d.S, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / d.S, s = r % d.S;
      for (int64_t h = 0; h < d.NH; ++h)
        std::memcpy(dst + r * ld + off + h * DH, src + ((b * d.NH + h) * d.S + s) * DH, DH * sizeof(float));
    }
  });
}

// q, k, v [B, NH, S, DH] each from u = concat(q, k, v) [B*S, 3Di]
void split_heads(float* qh, float* kh, float* vh, const float* u, const MlstmLayerDims& d) {
  rows_to_heads(qh, u, 3 * d.Di, 0, d);
  rows_to_heads(kh, u, 3 * d.Di, d.Di, d);
  rows_to_heads(vh, u, 3 * d.Di, 2 * d.Di, d);
}

// [W_i; W_f] [2NH, 3Di]: both gate projections as one matrix
float* stack_gate_weights(Scratch& scratch, const MlstmLayerParams& p, const MlstmLayerDims& d) {
  const int64_t n = d.NH * 3 * d.Di;
  float* wg = scratch.take(2 * n);
  std::memcpy(wg, p.w_i, n * sizeof(float));
  std::memcpy(wg + n, p.w_f, n * sizeof(float));
  return wg;
}

void for_elements(int64_t n, const std::function<void(int64_t, int64_t)>& fn) { parallel_for(n, 16384, fn); }

}  // namespace

void mlstm_layer_param_sizes(const MlstmLayerDims& d, int64_t out[13]) {
  const int64_t Di = d.Di, NP = d.Di / d.Bq, W = NP * d.Bq * d.Bq;
  const int64_t sizes[13] = {2 * Di * d.E, Di * d.K, Di, W, W, W, d.NH * 3 * Di, d.NH, d.NH * 3 * Di, d.NH, Di, Di, d.E * Di};
  for (int j = 0; j < 13; ++j) out[j] = sizes[j];
}

int64_t mlstm_layer_saved_size(const MlstmLayerDims& d) {
  return Saved::fixed_size(d) + mlstm_chunkwise_saved_size(cell_dims(d), d.chunk);
}

void mlstm_layer_forward(float* y, float* saved, const float* x, const MlstmLayerParams& p, const MlstmLayerDims& d) {
  const auto& pw = pointwise();
  const int64_t N = d.B * d.S, E = d.E, Di = d.Di, NH = d.NH, DH = Di / NH, NP = Di / d.Bq;
  Scratch scratch;
  Saved sv(saved ? saved : scratch.take(mlstm_layer_saved_size(d)), d);
  float* cell_saved = saved ? sv.cell : nullptr;

  // proj_up, split into the mLSTM branch and the output gate
  gemm(false, true, N, Di, E, 1.0f, x, E, p.w_up, E, 0.0f, sv.xm, Di);
  gemm(false, true, N, Di, E, 1.0f, x, E, p.w_up + Di * E, E, 0.0f, sv.z, Di);
  causal_conv1d_forward(sv.conv, sv.xm, p.w_conv, p.b_conv, d.B, d.S, Di, d.K);
  for_elements(N * Di, [&](int64_t a, int64_t b) { pw.silu(sv.xc, sv.conv, a, b); });
  // q, k, v side by side in u = concat(q, k, v) [N, 3Di], the gates' input
  headwise_linear_forward(sv.u, 3 * Di, sv.xc, p.w_q, nullptr, N, NP, d.Bq, d.Bq);
  headwise_linear_forward(sv.u + Di, 3 * Di, sv.xc, p.w_k, nullptr, N, NP, d.Bq, d.Bq);
  headwise_linear_forward(sv.u + 2 * Di, 3 * Di, sv.xm, p.w_v, nullptr, N, NP, d.Bq, d.Bq);
  // gate pre-activations [N, 2NH] = u [W_i; W_f]ᵀ + [b_i; b_f], then to the head layout [B, NH, S]
  float* wg = stack_gate_weights(scratch, p, d);
  float* gates = scratch.take(N * 2 * NH);
  gemm(false, true, N, 2 * NH, 3 * Di, 1.0f, sv.u, 3 * Di, wg, 3 * Di, 0.0f, gates, 2 * NH);
  for (int64_t r = 0; r < N; ++r) {
    const int64_t b = r / d.S, s = r % d.S;
    for (int64_t h = 0; h < NH; ++h) {
      sv.ig[(b * NH + h) * d.S + s] = gates[r * 2 * NH + h] + p.b_i[h];
      sv.fg[(b * NH + h) * d.S + s] = gates[r * 2 * NH + NH + h] + p.b_f[h];
    }
  }
  // the cell, in the head layout
  float* qh = scratch.take(N * Di);
  float* kh = scratch.take(N * Di);
  float* vh = scratch.take(N * Di);
  split_heads(qh, kh, vh, sv.u, d);
  float* c_last = scratch.take(d.B * NH * DH * DH);
  float* n_last = scratch.take(d.B * NH * DH);
  float* m_last = scratch.take(d.B * NH);
  mlstm_chunkwise_forward(sv.hc, c_last, n_last, m_last, cell_saved, qh, kh, vh, sv.ig, sv.fg, nullptr, nullptr,
                          nullptr, cell_dims(d), d.chunk, d.cell_eps, true);
  // per-head output norm in the row layout, learnable skip, SiLU(z) gate, proj_down
  heads_to_rows(sv.ht, Di, 0, sv.hc, d);
  float* hn = scratch.take(N * Di);
  layer_norm_forward(hn, sv.mean, sv.rstd, sv.ht, p.w_norm, nullptr, N, NH, DH, d.norm_eps, true);
  float* out = scratch.take(N * Di);
  parallel_for(N, 16, [&](int64_t r0, int64_t r1) { pw.skip_gate(sv.hs, out, hn, p.skip, sv.xc, sv.z, r0, r1, Di); });
  gemm(false, true, N, E, Di, 1.0f, out, Di, p.w_down, Di, 0.0f, y, E);
}

void mlstm_layer_backward(float* dx, const MlstmLayerGrads& g, const float* dy, const float* x, const float* saved,
                          const MlstmLayerParams& p, const MlstmLayerDims& d) {
  const auto& pw = pointwise();
  const int64_t N = d.B * d.S, E = d.E, Di = d.Di, NH = d.NH, DH = Di / NH, NP = Di / d.Bq;
  Scratch scratch;
  const Saved sv(const_cast<float*>(saved), d);

  // proj_down and the output gate
  float* out = scratch.take(N * Di);
  for_elements(N * Di, [&](int64_t a, int64_t b) { pw.gate(out, sv.hs, sv.z, a, b); });
  gemm(true, false, E, Di, N, 1.0f, dy, E, out, Di, 0.0f, g.w_down, Di);
  float* dout = out;  // out is not read again
  gemm(false, false, N, Di, E, 1.0f, dy, E, p.w_down, Di, 0.0f, dout, Di);
  float* dhs = scratch.take(N * Di);
  float* dz = scratch.take(N * Di);
  float* dxc = scratch.take(N * Di);
  parallel_for(N, 16, [&](int64_t r0, int64_t r1) { pw.skip_gate_backward(dhs, dz, dxc, dout, sv.hs, sv.z, p.skip, r0, r1, Di); });
  // d skip = Σ_rows dhs ⊙ xc: fixed row blocks (bitwise independent of the thread count), summed in order in double
  {
    constexpr int64_t kRows = 64;
    const int64_t nb = (N + kRows - 1) / kRows;
    float* part = scratch.take(nb * Di);
    parallel_for(nb, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; ++blk) {
        float* acc = part + blk * Di;
        std::memset(acc, 0, Di * sizeof(float));
        for (int64_t r = blk * kRows; r < std::min(N, (blk + 1) * kRows); ++r)
          for (int64_t j = 0; j < Di; ++j) acc[j] += dhs[r * Di + j] * sv.xc[r * Di + j];
      }
    });
    for (int64_t j = 0; j < Di; ++j) {
      double s = 0;
      for (int64_t blk = 0; blk < nb; ++blk) s += part[blk * Di + j];
      g.skip[j] = static_cast<float>(s);
    }
  }
  // output norm, then the cell in the head layout
  float* dht = dout;  // dout is not read again
  layer_norm_backward(dht, g.w_norm, nullptr, dhs, sv.ht, sv.mean, sv.rstd, p.w_norm, N, NH, DH, true);
  float* dhc = dhs;  // dhs is not read again
  rows_to_heads(dhc, dht, Di, 0, d);
  float* qh = scratch.take(N * Di);
  float* kh = scratch.take(N * Di);
  float* vh = scratch.take(N * Di);
  split_heads(qh, kh, vh, sv.u, d);
  float* dqh = scratch.take(N * Di);
  float* dkh = scratch.take(N * Di);
  float* dvh = scratch.take(N * Di);
  float* di = scratch.take(d.B * NH * d.S);
  float* df = scratch.take(d.B * NH * d.S);
  mlstm_chunkwise_backward(dqh, dkh, dvh, di, df, nullptr, nullptr, nullptr, sv.cell, sv.hc, dhc, nullptr, nullptr, qh,
                           kh, vh, sv.ig, sv.fg, cell_dims(d), d.chunk, d.cell_eps);
  // back to the row layout: du = d concat(q, k, v) [N, 3Di], dG = d gates [N, 2NH]
  float* du = scratch.take(N * 3 * Di);
  heads_to_rows(du, 3 * Di, 0, dqh, d);
  heads_to_rows(du, 3 * Di, Di, dkh, d);
  heads_to_rows(du, 3 * Di, 2 * Di, dvh, d);
  float* dG = scratch.take(N * 2 * NH);
  for (int64_t r = 0; r < N; ++r) {
    const int64_t b = r / d.S, s = r % d.S;
    for (int64_t h = 0; h < NH; ++h) {
      dG[r * 2 * NH + h] = di[(b * NH + h) * d.S + s];
      dG[r * 2 * NH + NH + h] = df[(b * NH + h) * d.S + s];
    }
  }
  for (int64_t h = 0; h < NH; ++h) {
    double si = 0, sf = 0;
    for (int64_t r = 0; r < N; ++r) si += dG[r * 2 * NH + h], sf += dG[r * 2 * NH + NH + h];
    g.b_i[h] = static_cast<float>(si);
    g.b_f[h] = static_cast<float>(sf);
  }
  // gate projections, both gates in one product each way: d[W_i; W_f] = dGᵀ u, du += dG [W_i; W_f]
  float* wg = stack_gate_weights(scratch, p, d);
  float* dwg = scratch.take(2 * NH * 3 * Di);
  gemm(true, false, 2 * NH, 3 * Di, N, 1.0f, dG, 2 * NH, sv.u, 3 * Di, 0.0f, dwg, 3 * Di);
  std::memcpy(g.w_i, dwg, NH * 3 * Di * sizeof(float));
  std::memcpy(g.w_f, dwg + NH * 3 * Di, NH * 3 * Di * sizeof(float));
  gemm(false, false, N, 3 * Di, 2 * NH, 1.0f, dG, 2 * NH, wg, 3 * Di, 1.0f, du, 3 * Di);
  // block-diagonal q, k (from x_c) and v (from x_m)
  headwise_linear_backward(dxc, true, g.w_q, nullptr, du, 3 * Di, sv.xc, p.w_q, N, NP, d.Bq, d.Bq);
  headwise_linear_backward(dxc, true, g.w_k, nullptr, du + Di, 3 * Di, sv.xc, p.w_k, N, NP, d.Bq, d.Bq);
  float* dxm = qh;  // qh is not read again
  headwise_linear_backward(dxm, false, g.w_v, nullptr, du + 2 * Di, 3 * Di, sv.xm, p.w_v, N, NP, d.Bq, d.Bq);
  // SiLU and the causal conv back to x_m
  for_elements(N * Di, [&](int64_t a, int64_t b) { pw.silu_backward_inplace(dxc, sv.conv, a, b); });
  float* dxm_conv = kh;  // kh is not read again
  causal_conv1d_backward(dxm_conv, g.w_conv, g.b_conv, dxc, sv.xm, p.w_conv, d.B, d.S, Di, d.K);
  for_elements(N * Di, [&](int64_t a, int64_t b) {
#pragma omp simd
    for (int64_t j = a; j < b; ++j) dxm[j] += dxm_conv[j];
  });
  // proj_up
  gemm(true, false, Di, E, N, 1.0f, dxm, Di, x, E, 0.0f, g.w_up, E);
  gemm(true, false, Di, E, N, 1.0f, dz, Di, x, E, 0.0f, g.w_up + Di * E, E);
  gemm(false, false, N, E, Di, 1.0f, dxm, Di, p.w_up, E, 0.0f, dx, E);
  gemm(false, false, N, E, Di, 1.0f, dz, Di, p.w_up + Di * E, E, 1.0f, dx, E);
}

}  // namespace xlstm
