// The fused mLSTM layer, forward and backward (see mlstm_layer.h): the orchestration over the existing kernels
// (gemm, headwise, chunkwise mLSTM cell, the layer-norm rows of nn_simd.h) and the layout moves between the row
// layout [B, S, NH, DH] of the projections and the head layout [B, NH, S, DH] of the cell, each folded into a pass
// that runs anyway (q/k/v tiles, the output norm, the gate projections' backward). Pointwise parts (causal conv +
// SiLU, gates, output gate) come from mlstm_layer_engine.h for the CPU's SIMD level. Every row sum (weight / bias
// gradients) uses a fixed row partition summed in order, so results do not depend on the thread count. The conv's
// pre-activation is not saved: the backward recomputes it from x_m (4 multiply-adds per element, the same bits) in
// the pass that reads x_m anyway, which saves writing and reading N·Di floats (W2: ~2-3 % of the training step);
// likewise hs = norm(h_c) + skip ⊙ x_c, evaluated again from h_c and the norm's statistics where the backward needs it.
#include "kernels/mlstm_layer.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "kernels/cpu_features.h"
#include "kernels/gemm.h"
#include "kernels/headwise.h"
#include "kernels/mlstm.h"
#include "kernels/mlstm_layer_engine.h"
#include "kernels/nn_simd.h"
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
  float *xm, *z, *xc, *qh, *kh, *vh, *ig, *fg, *hc, *mean, *rstd, *out, *cell;
  float *xn = nullptr, *ln_mean = nullptr, *ln_rstd = nullptr;  // block form: LN(x) [N, E] and its statistics [N]
  Saved(float* base, const MlstmLayerDims& d) {
    const int64_t N = d.B * d.S, Di = d.Di, G = d.B * d.NH * d.S;
    float* p = base;
    auto take = [&p](int64_t n) { float* r = p; p += n; return r; };
    xm = take(N * Di), z = take(N * Di), xc = take(N * Di);  // the conv's pre-activation is recomputed, not saved
    qh = take(N * Di), kh = take(N * Di), vh = take(N * Di);
    ig = take(G), fg = take(G), hc = take(N * Di), mean = take(N * d.NH), rstd = take(N * d.NH);
    out = take(N * Di);  // hs = norm(h_c) + skip ⊙ x_c is evaluated again in backward, not saved
    if (d.block) xn = take(N * d.E), ln_mean = take(N), ln_rstd = take(N);
    cell = p;
  }
  static int64_t fixed_size(const MlstmLayerDims& d) {
    const int64_t N = d.B * d.S;
    return N * d.Di * 8 + 2 * d.B * d.NH * d.S + 2 * N * d.NH + (d.block ? N * d.E + 2 * N : 0);
  }
};

// dst = src (n floats) with non-temporal stores where dst is 16-byte aligned: the head-layout q/k/v are read back
// from memory by the cell much later, so filling cache lines by a read-for-ownership first only doubles the traffic.
// Callers fence (stream_fence) before other threads read dst.
inline void stream_copy(float* dst, const float* src, int64_t n) {
#if defined(__SSE__)
  if ((reinterpret_cast<uintptr_t>(dst) & 15) == 0) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
    for (; i < n; ++i) dst[i] = src[i];
    return;
  }
#endif
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

inline void stream_fence() {
#if defined(__SSE__)
  _mm_sfence();
#endif
}

MlstmDims cell_dims(const MlstmLayerDims& d) { return MlstmDims{d.B, d.NH, d.S, d.Di / d.NH, d.Di / d.NH}; }

// the conv weight [Di, K] transposed to [K, Di] (rows of taps, vectorised over channels)
std::vector<float> conv_taps(const float* w_conv, int64_t Di, int64_t K) {
  std::vector<float> wt(static_cast<size_t>(K * Di));
  for (int64_t f = 0; f < Di; ++f)
    for (int64_t j = 0; j < K; ++j) wt[j * Di + f] = w_conv[f * K + j];
  return wt;
}

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
  // block form: the layer reads LN(x)
  if (d.block) layer_norm_forward(sv.xn, sv.ln_mean, sv.ln_rstd, x, p.ln_w, nullptr, N, 1, E, d.ln_eps, d.ln_residual);
  const float* xin = d.block ? sv.xn : x;

  // proj_up, split into the mLSTM branch and the output gate
  gemm(false, true, N, Di, E, 1.0f, xin, E, p.w_up, E, 0.0f, sv.xm, Di);
  gemm(false, true, N, Di, E, 1.0f, xin, E, p.w_up + Di * E, E, 0.0f, sv.z, Di);
  {
    const std::vector<float> wt = conv_taps(p.w_conv, Di, d.K);
    parallel_for(N, 16, [&](int64_t r0, int64_t r1) {
      pw.conv_silu(sv.xc, sv.xm, wt.data(), p.b_conv, r0, r1, d.S, Di, d.K);
    });
  }
  // q, k, v and the gate pre-activations, a block of rows at a time: the block-diagonal maps into a row-layout
  // tile u = concat(q, k, v) [rows, 3Di] (the gates' input, cache-resident), the gates u W_iᵀ + b_i, u W_fᵀ + b_f
  // written in the head layout [B, NH, S], then q, k, v moved to the head layout [B, NH, S, DH] the cell reads
  {
    constexpr int64_t kTile = 64;
    parallel_for((N + kTile - 1) / kTile, 1, [&](int64_t t0, int64_t t1) {
      std::vector<float> tile(static_cast<size_t>(kTile * 3 * Di));
      float* u = tile.data();
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t r0 = t * kTile, r1 = std::min(N, r0 + kTile), n = r1 - r0;
        headwise_linear_forward(u, 3 * Di, sv.xc + r0 * Di, p.w_q, nullptr, n, NP, d.Bq, d.Bq);
        headwise_linear_forward(u + Di, 3 * Di, sv.xc + r0 * Di, p.w_k, nullptr, n, NP, d.Bq, d.Bq);
        headwise_linear_forward(u + 2 * Di, 3 * Di, sv.xm + r0 * Di, p.w_v, nullptr, n, NP, d.Bq, d.Bq);
        pw.gates_forward(sv.ig, sv.fg, u, p.w_i, p.w_f, p.b_i, p.b_f, r0, r1, d.S, NH, 3 * Di);
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t b = r / d.S, s = r % d.S;
          const float* ur = u + (r - r0) * 3 * Di;
          for (int64_t h = 0; h < NH; ++h) {
            const int64_t o = ((b * NH + h) * d.S + s) * DH;
            stream_copy(sv.qh + o, ur + h * DH, DH);
            stream_copy(sv.kh + o, ur + Di + h * DH, DH);
            stream_copy(sv.vh + o, ur + 2 * Di + h * DH, DH);
          }
        }
      }
      stream_fence();  // the non-temporal stores above are visible before the cell reads them
    });
  }
  const float *qh = sv.qh, *kh = sv.kh, *vh = sv.vh;
  // the layer returns no state: the cell skips the final state (and its last chunk's update)
  mlstm_chunkwise_forward(sv.hc, nullptr, nullptr, nullptr, cell_saved, qh, kh, vh, sv.ig, sv.fg, nullptr, nullptr,
                          nullptr, cell_dims(d), d.chunk, d.cell_eps, true);
  // per-head output norm, learnable skip, SiLU(z) gate, proj_down. Row by row: the norm reads h straight from the
  // head layout (mean, rstd [N, NH]), then out = hs ⊙ SiLU(z), hs = hn + skip ⊙ x_c, in place over hn
  const NnKernels& kn = nn_kernels();
  float* out = sv.out;
  parallel_for(N, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / d.S, s = r % d.S;
      for (int64_t h = 0; h < NH; ++h)
        kn.norm_fwd_row(out + r * Di + h * DH, sv.mean + r * NH + h, sv.rstd + r * NH + h,
                        sv.hc + ((b * NH + h) * d.S + s) * DH, p.w_norm + h * DH, nullptr, DH, d.norm_eps, true);
      pw.skip_gate(out, out, p.skip, sv.xc, sv.z, r, r + 1, Di);
    }
  });
  // block form: the residual x enters as the product's C (y = out W_downᵀ + x, one rounding as in a separate add)
  if (d.block) parallel_for(N, 64, [&](int64_t r0, int64_t r1) { std::memcpy(y + r0 * E, x + r0 * E, (r1 - r0) * E * sizeof(float)); });
  gemm(false, true, N, E, Di, 1.0f, out, Di, p.w_down, Di, d.block ? 1.0f : 0.0f, y, E);
}

void mlstm_layer_backward(float* dx, const MlstmLayerGrads& g, const float* dy, const float* x, const float* saved,
                          const MlstmLayerParams& p, const MlstmLayerDims& d) {
  const auto& pw = pointwise();
  const int64_t N = d.B * d.S, E = d.E, Di = d.Di, NH = d.NH, DH = Di / NH, NP = Di / d.Bq;
  Scratch scratch;
  const Saved sv(const_cast<float*>(saved), d);
  // block form: the layer's input is LN(x) (saved); its gradient goes to a scratch buffer, then through LN's backward
  const float* xin = d.block ? sv.xn : x;
  float* dxin = d.block ? scratch.take(N * E) : dx;

  // proj_down and the output gate
  gemm(true, false, E, Di, N, 1.0f, dy, E, sv.out, Di, 0.0f, g.w_down, Di);
  float* dout = scratch.take(N * Di);
  gemm(false, false, N, Di, E, 1.0f, dy, E, p.w_down, Di, 0.0f, dout, Di);
  float* dz = scratch.take(N * Di);
  float* dxc = scratch.take(N * Di);
  float* dhc = scratch.take(N * Di);
  // row by row: the output gate and skip (dhs, dz, dx_c), then the per-head norm's backward written straight into
  // the head layout; d skip = Σ dhs ⊙ x_c and d w_norm = Σ dhs ⊙ x̂ over fixed row blocks (bitwise independent of
  // the thread count), the blocks summed in order in double
  {
    const NnKernels& kn = nn_kernels();
    constexpr int64_t kRows = 64;
    const int64_t nb = (N + kRows - 1) / kRows;
    float* part = scratch.take(nb * 2 * Di);  // per block: [d skip | d w_norm]
    parallel_for(nb, 1, [&](int64_t b0, int64_t b1) {
      std::vector<float> row(static_cast<size_t>(Di));  // one row of dhs
      float* dhs = row.data();
      for (int64_t blk = b0; blk < b1; ++blk) {
        float* ps = part + blk * 2 * Di;
        float* pn = ps + Di;
        std::memset(ps, 0, 2 * Di * sizeof(float));
        for (int64_t r = blk * kRows; r < std::min(N, (blk + 1) * kRows); ++r) {
          const int64_t b = r / d.S, s = r % d.S;
          pw.skip_gate_backward(dhs, dz, dxc, dout, sv.hc, sv.mean + r * NH, sv.rstd + r * NH, p.w_norm, p.skip, sv.xc,
                                sv.z, r, d.S, NH, DH);
          kn.fma_row(ps, dhs, sv.xc + r * Di, Di);
          for (int64_t h = 0; h < NH; ++h) {
            const int64_t hi = ((b * NH + h) * d.S + s) * DH;
            kn.norm_bwd_row(dhc + hi, pn + h * DH, nullptr, dhs + h * DH, sv.hc + hi, sv.mean[r * NH + h],
                            sv.rstd[r * NH + h], p.w_norm + h * DH, DH, true);
          }
        }
      }
    });
    for (int64_t j = 0; j < Di; ++j) {
      double a = 0, c = 0;
      for (int64_t blk = 0; blk < nb; ++blk) a += part[blk * 2 * Di + j], c += part[blk * 2 * Di + Di + j];
      g.skip[j] = static_cast<float>(a);
      g.w_norm[j] = static_cast<float>(c);
    }
  }
  const float *qh = sv.qh, *kh = sv.kh, *vh = sv.vh;
  float* dqh = scratch.take(N * Di);
  float* dkh = scratch.take(N * Di);
  float* dvh = scratch.take(N * Di);
  float* di = scratch.take(d.B * NH * d.S);
  float* df = scratch.take(d.B * NH * d.S);
  mlstm_chunkwise_backward(dqh, dkh, dvh, di, df, nullptr, nullptr, nullptr, sv.cell, sv.hc, dhc, nullptr, nullptr, qh,
                           kh, vh, sv.ig, sv.fg, cell_dims(d), d.chunk, d.cell_eps);
  // From d q/k/v (head layout) back to d x_c and d x_m, one block of kRows rows at a time, each block's rows staying
  // in cache: du = d concat(q, k, v) [rows, 3Di] (the cell's share moved to the row layout plus the gate
  // projections'), the block-diagonal q, k backward into d x_c (which already holds the skip's share), SiLU' and the
  // conv's weight / bias sums, and the block-diagonal v backward into d x_m. Every weight gradient is a partial sum
  // per block, the blocks summed in order in double: bitwise independent of the thread count. The conv's transpose
  // needs the next K-1 rows' SiLU'-scaled gradients, so it runs after all blocks.
  float* dxm = dout;  // dout is not read again
  {
    const int64_t K = d.K, Wqkv = NP * d.Bq * d.Bq, Wg = NH * 3 * Di;
    constexpr int64_t kRows = 64;
    const int64_t nb = (N + kRows - 1) / kRows;
    // per block: [dW_i | dW_f | dW_q | dW_k | dW_v | conv weight [K, Di] | conv bias [Di]]
    const int64_t o_f = Wg, o_q = 2 * Wg, o_k = o_q + Wqkv, o_v = o_k + Wqkv, o_cw = o_v + Wqkv, o_cb = o_cw + K * Di;
    const int64_t per = o_cb + Di;
    float* part = scratch.take(nb * per);
    const float* const dX[3] = {dqh, dkh, dvh};
    const float* const X[3] = {qh, kh, vh};
    const std::vector<float> wt = conv_taps(p.w_conv, Di, K);
    parallel_for(nb, 1, [&](int64_t b0, int64_t b1) {
      std::vector<float> slab(static_cast<size_t>(kRows * 3 * Di));
      float* du = slab.data();
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int64_t r0 = blk * kRows, r1 = std::min(N, r0 + kRows), n = r1 - r0;
        float* pb = part + blk * per;
        pw.gates_backward(du, dX, pb, pb + o_f, X, di, df, p.w_i, p.w_f, r0, r1, d.S, NH, DH);
        headwise_linear_backward(dxc + r0 * Di, true, pb + o_q, nullptr, du, 3 * Di, sv.xc + r0 * Di, p.w_q, n, NP,
                                 d.Bq, d.Bq);
        headwise_linear_backward(dxc + r0 * Di, true, pb + o_k, nullptr, du + Di, 3 * Di, sv.xc + r0 * Di, p.w_k, n,
                                 NP, d.Bq, d.Bq);
        std::memset(pb + o_cw, 0, (K + 1) * Di * sizeof(float));
        pw.silu_conv_grads(dxc, pb + o_cw, pb + o_cb, sv.xm, wt.data(), p.b_conv, r0, r1, d.S, Di, K);
        headwise_linear_backward(dxm + r0 * Di, false, pb + o_v, nullptr, du + 2 * Di, 3 * Di, sv.xm + r0 * Di, p.w_v,
                                 n, NP, d.Bq, d.Bq);
      }
    });
    parallel_for(N, 16, [&](int64_t r0, int64_t r1) { pw.conv_dx(dxm, dxc, wt.data(), r0, r1, d.S, Di, K); });
    // the blocks' partial sums, each column in block order (a slice of columns per task, summed block row by block
    // row in double: contiguous reads)
    float* const dst[7] = {g.w_i, g.w_f, g.w_q, g.w_k, g.w_v, nullptr, g.b_conv};
    const int64_t off[8] = {0, o_f, o_q, o_k, o_v, o_cw, o_cb, per};
    parallel_for(per, 1024, [&](int64_t c0, int64_t c1) {
      std::vector<double> acc(static_cast<size_t>(c1 - c0), 0.0);
      for (int64_t blk = 0; blk < nb; ++blk) {
        const float* row = part + blk * per + c0;
        for (int64_t c = 0; c < c1 - c0; ++c) acc[c] += row[c];
      }
      int seg = 0;
      for (int64_t c = c0; c < c1; ++c) {
        while (c >= off[seg + 1]) ++seg;
        const int64_t e = c - off[seg];
        const float a = static_cast<float>(acc[c - c0]);
        if (seg == 5) g.w_conv[(e % Di) * K + e / Di] = a;  // [K, Di] sums -> [Di, K] weight
        else dst[seg][e] = a;
      }
    });
    for (int64_t h = 0; h < NH; ++h) {
      double si = 0, sf = 0;
      for (int64_t b = 0; b < d.B; ++b)
        for (int64_t s = 0; s < d.S; ++s) si += di[(b * NH + h) * d.S + s], sf += df[(b * NH + h) * d.S + s];
      g.b_i[h] = static_cast<float>(si);
      g.b_f[h] = static_cast<float>(sf);
    }
  }
  // proj_up
  gemm(true, false, Di, E, N, 1.0f, dxm, Di, xin, E, 0.0f, g.w_up, E);
  gemm(true, false, Di, E, N, 1.0f, dz, Di, xin, E, 0.0f, g.w_up + Di * E, E);
  gemm(false, false, N, E, Di, 1.0f, dxm, Di, p.w_up, E, 0.0f, dxin, E);
  gemm(false, false, N, E, Di, 1.0f, dz, Di, p.w_up + Di * E, E, 1.0f, dxin, E);
  if (!d.block) return;
  // block form: dx = LN'ᵀ dxin + dy (the residual), as the composed norm backward and gradient sum
  layer_norm_backward(dx, g.ln_w, nullptr, dxin, x, sv.ln_mean, sv.ln_rstd, p.ln_w, N, 1, E, d.ln_residual);
  parallel_for(N * E, 1 << 14, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dx[i] += dy[i];
  });
}

}  // namespace xlstm
