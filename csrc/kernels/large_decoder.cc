// xLSTM Large inference forward on the CPU: see large_decoder.h.
#include "kernels/large_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/aligned_vector.h"
#include "kernels/bf16.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/mlstm.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

// Σ a[0 .. n) in float64 over four partial sums (independent additions, not one latency-bound chain).
double sum4(const float* a, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t d = 0;
  for (; d + 4 <= n; d += 4) {
    s0 += a[d];
    s1 += a[d + 1];
    s2 += a[d + 2];
    s3 += a[d + 3];
  }
  for (; d < n; ++d) s0 += a[d];
  return s0 + s1 + (s2 + s3);
}

// Σ (a[i] - mean)² over a[0 .. n), as sum4.
double sum_sq_dev4(const float* a, int64_t n, double mean) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t d = 0;
  for (; d + 4 <= n; d += 4) {
    const double t0 = a[d] - mean, t1 = a[d + 1] - mean, t2 = a[d + 2] - mean, t3 = a[d + 3] - mean;
    s0 += t0 * t0;
    s1 += t1 * t1;
    s2 += t2 * t2;
    s3 += t3 * t3;
  }
  for (; d < n; ++d) s0 += (a[d] - mean) * (a[d] - mean);
  return s0 + s1 + (s2 + s3);
}

// Rows that make a parallel_for task worth its hand-off for per-row work of `width` elements.
int64_t row_grain(int64_t width) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, width)); }

// y[r] = x[r] / sqrt(mean(x[r]²) + eps) · w (+ b), rows of D
void rms_norm(float* y, const float* x, const float* w, const float* b, int64_t rows, int64_t D, double eps) {
  parallel_for(rows, row_grain(D), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      const double inv = 1.0 / std::sqrt(sum_sq_dev4(xr, D, 0.0) / static_cast<double>(D) + eps);
      for (int64_t d = 0; d < D; ++d) {
        const double v = static_cast<double>(xr[d]) * inv * w[d];
        yr[d] = static_cast<float>(b ? v + b[d] : v);
      }
    }
  });
}

// y [rows, W.rows] = x [rows, W.cols] Wᵀ (+ bias); round: a bf16 W's products take bf16-rounded x (bf16_linear)
void linear(float* y, const float* x, int64_t rows, const LargeMatrix& W, const float* bias, bool round) {
  if (W.bf16) {
    bf16_linear(y, x, static_cast<const uint16_t*>(W.data), bias, rows, W.cols, W.rows, round);
    return;
  }
  gemm(false, true, rows, W.rows, W.cols, 1.0f, x, W.cols, static_cast<const float*>(W.data), W.cols, 0.0f, y, W.rows);
  if (bias)
    parallel_for(rows, row_grain(W.rows), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r)
        for (int64_t o = 0; o < W.rows; ++o) y[r * W.rows + o] += bias[o];
    });
}

float soft_cap(float x, double cap) { return cap > 0 ? static_cast<float>(cap * std::tanh(x / cap)) : x; }

void add_in_place(float* x, const float* y, int64_t n) {
  parallel_for(n, 16384, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) x[i] += y[i];
  });
}

}  // namespace

std::vector<LargeSegment> large_inference_schedule(int64_t S, int64_t chunk) {
  std::vector<LargeSegment> out;
  if (S == 1) return {{0, 1, 0}};
  int64_t pos = 0;
  for (int64_t cs = chunk; cs >= 16 && pos < S; cs /= 2) {
    const int64_t n = (S - pos) / cs;
    if (n == 0) continue;
    out.push_back({pos, pos + n * cs, cs});
    pos += n * cs;
  }
  if (pos < S) out.push_back({pos, S, 0});
  return out;
}

namespace {

// One piece of the prompt through the whole model (large_decoder_forward's body): whether the blocks' and the head's
// products round their activations (the caller resolved Auto for the whole call); logits null: no head (a piece
// before the last of a last_only call).
void forward_piece(const LargeDecoderModel& m, const int32_t* tokens, int64_t B, int64_t S, const LargeStateIO* io,
                   float* logits, bool last_only, bool rounding, bool head_rounding) {
  const int64_t E = m.E, NH = m.NH, DK = m.DK, DV = m.DV, qk = NH * DK, vd = NH * DV, up = m.up, R = B * S;
  const int64_t width = 2 * qk + 2 * vd + 2 * NH;
  const double sq = std::sqrt(static_cast<double>(DK));
  const std::vector<LargeSegment> segments = large_inference_schedule(S, m.chunk);

  // the embedding rows
  ScratchFloats x(R * E);
  parallel_for(R, row_grain(E), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t id = tokens[r];
      if (m.embedding.bf16) bf16_to_f32(x.data() + r * E, static_cast<const uint16_t*>(m.embedding.data) + id * E, E);
      else std::memcpy(x.data() + r * E, static_cast<const float*>(m.embedding.data) + id * E, sizeof(float) * E);
    }
  });

  // scratch shared by the blocks (same sizes in every block; none zeroed: each array is written before it is read)
  ScratchFloats a(R * E), P(R * width), H(B * NH * S * DV), hout(R * vd), og(R * vd), y(R * E), Z(R * 2 * up),
      u(R * up);
  int64_t Lmax = 0;
  for (const LargeSegment& sg : segments) Lmax = std::max(Lmax, sg.end - sg.start);
  ScratchFloats q(B * NH * Lmax * DK), k(q.size()), v(B * NH * Lmax * DV), ig(B * NH * Lmax), fg(ig.size()),
      hseg(segments.size() > 1 ? B * NH * Lmax * DV : 0);
  const int64_t nc = B * NH * DK * DV, nn = B * NH * DK, nm = B * NH;
  ScratchFloats st[2] = {ScratchFloats(nc + nn + nm), ScratchFloats(nc + nn + nm)};  // ping-pong segment states

  for (size_t bi = 0; bi < m.blocks.size(); ++bi) {
    const LargeDecoderBlock& blk = m.blocks[bi];
    rms_norm(a.data(), x.data(), blk.norm_m, blk.norm_m_b, R, E, m.norm_eps);
    linear(P.data(), a.data(), R, blk.w_in, blk.b_in, rounding);
    const float *c0 = io[bi].c0, *n0 = io[bi].n0, *m0 = io[bi].m0;
    for (size_t si = 0; si < segments.size(); ++si) {
      const LargeSegment& sg = segments[si];
      const int64_t L = sg.end - sg.start;
      // heads out of P's rows: q / sqrt(DK), k * sqrt(DK), v, soft-capped gates, each [B, NH, L, ·]
      parallel_for(B * L, row_grain(width), [&](int64_t lo, int64_t hi) {
        for (int64_t bt = lo; bt < hi; ++bt) {
          const int64_t b = bt / L, t = bt % L;
          const float* row = P.data() + (b * S + sg.start + t) * width;
          for (int64_t h = 0; h < NH; ++h) {
            const int64_t bh = (b * NH + h) * L + t;
            const float* src = row + h * DK;
            float *qd = q.data() + bh * DK, *kd = k.data() + bh * DK;
            for (int64_t d = 0; d < DK; ++d) {
              qd[d] = static_cast<float>(src[d] / sq);
              kd[d] = static_cast<float>(src[qk + d] * sq);
            }
            std::memcpy(v.data() + bh * DV, row + 2 * qk + h * DV, sizeof(float) * DV);
            ig[bh] = soft_cap(row[2 * qk + 2 * vd + h], m.gate_cap);
            fg[bh] = soft_cap(row[2 * qk + 2 * vd + NH + h], m.gate_cap);
          }
        }
      });
      float* out = st[si & 1].data();
      float* hs = segments.size() == 1 ? H.data() : hseg.data();
      const MlstmDims d{B, NH, L, DK, DV};
      if (sg.chunk > 0)
        mlstm_chunkwise_forward(hs, out, out + nc, out + nc + nn, nullptr, q.data(), k.data(), v.data(), ig.data(),
                                fg.data(), c0, n0, m0, d, sg.chunk, static_cast<float>(m.eps), false);
      else
        mlstm_recurrent_forward(hs, out, out + nc, out + nc + nn, nullptr, q.data(), k.data(), v.data(), ig.data(),
                                fg.data(), c0, n0, m0, d, static_cast<float>(m.eps));
      if (segments.size() > 1)
        for (int64_t bh = 0; bh < B * NH; ++bh)
          std::memcpy(H.data() + (bh * S + sg.start) * DV, hs + bh * L * DV, sizeof(float) * L * DV);
      c0 = out, n0 = out + nc, m0 = out + nc + nn;
    }
    // the inputs are read: the new state may overwrite them
    std::memmove(io[bi].c, c0, sizeof(float) * nc);
    std::memmove(io[bi].n, n0, sizeof(float) * nn);
    std::memmove(io[bi].m, m0, sizeof(float) * nm);

    // per-head layer norm, weight (+ bias), times sigmoid(o)
    for (int64_t r = 0; r < R; ++r) std::memcpy(og.data() + r * vd, P.data() + r * width + 2 * qk + vd, sizeof(float) * vd);
    elementwise_unary(UnaryOp::Sigmoid, og.data(), og.data(), 1.0f, 0.0f, R * vd);
    parallel_for(R, row_grain(vd), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t b = r / S, t = r % S;
        for (int64_t h = 0; h < NH; ++h) {
          const float* src = H.data() + ((b * NH + h) * S + t) * DV;
          const int64_t dst = r * vd + h * DV;
          const double mean = sum4(src, DV) / static_cast<double>(DV);
          const double inv = 1.0 / std::sqrt(sum_sq_dev4(src, DV, mean) / static_cast<double>(DV) + m.norm_eps);
          const float* w = blk.mh_w + h * DV;
          const float* bb = blk.mh_b ? blk.mh_b + h * DV : nullptr;
          for (int64_t e = 0; e < DV; ++e) {
            const double hn = (src[e] - mean) * inv * w[e] + (bb ? bb[e] : 0.0);
            hout[dst + e] = static_cast<float>(hn * og[dst + e]);
          }
        }
      }
    });
    linear(y.data(), hout.data(), R, blk.w_out, blk.b_out, rounding);
    add_in_place(x.data(), y.data(), R * E);
    rms_norm(a.data(), x.data(), blk.norm_f, blk.norm_f_b, R, E, m.norm_eps);
    linear(Z.data(), a.data(), R, blk.w_up, blk.b_up, rounding);
    gated_unary(UnaryOp::Silu, u.data(), Z.data(), R, up, 1.0f, 0.0f);  // silu(gate) ⊙ up per row
    linear(y.data(), u.data(), R, blk.w_down, blk.b_down, rounding);
    add_in_place(x.data(), y.data(), R * E);
  }

  if (!logits) return;
  int64_t rows = R;
  const float* xs = x.data();
  ScratchFloats last;
  if (last_only) {
    last.resize(B * E);
    for (int64_t b = 0; b < B; ++b) std::memcpy(last.data() + b * E, x.data() + (b * S + S - 1) * E, sizeof(float) * E);
    xs = last.data();
    rows = B;
  }
  if (m.out_norm) {
    rms_norm(a.data(), xs, m.out_norm, m.out_norm_b, rows, E, m.norm_eps);
    xs = a.data();
  }
  linear(logits, xs, rows, m.head, nullptr, head_rounding);
  if (m.out_cap > 0)
    parallel_for(rows * m.V, 16384, [&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) logits[j] = soft_cap(logits[j], m.out_cap);
    });
}

}  // namespace

int64_t large_piece_tokens(int64_t B, int64_t chunk, int64_t max_rows) {
  const int64_t per_row = std::max<int64_t>(1, max_rows / B);
  return std::max<int64_t>(chunk, per_row / chunk * chunk);
}

void large_decoder_forward(const LargeDecoderModel& m, const int32_t* tokens, int64_t B, int64_t S,
                           const LargeStateIO* io, float* logits, bool last_only, LargeRounding rounding,
                           int64_t max_rows) {
  // Auto decided once for the whole call (by its row counts), so that pieces round exactly where one call would
  const bool hw = bf16_amx_available() || bf16_dot_available();
  auto resolve = [&](int64_t rows) {
    return rounding == LargeRounding::On || (rounding == LargeRounding::Auto && rows >= 16 && hw);
  };
  const bool body = resolve(B * S), head = resolve(last_only ? B : B * S);
  const int64_t L = large_piece_tokens(B, m.chunk, max_rows > 0 ? max_rows : kLargePieceRows);
  if (S <= L) return forward_piece(m, tokens, B, S, io, logits, last_only, body, head);

  // Pieces of L tokens (a multiple of the chunk size, so that every piece but the last runs whole chunks and the last
  // the schedule the whole prompt's tail would have), each starting from the state the one before left in the outputs
  const size_t nb = m.blocks.size();
  std::vector<LargeStateIO> carried(nb);
  for (size_t bi = 0; bi < nb; ++bi)
    carried[bi] = LargeStateIO{io[bi].c, io[bi].n, io[bi].m, io[bi].c, io[bi].n, io[bi].m};
  std::vector<int32_t> piece_tokens(static_cast<size_t>(B * L));
  ScratchFloats piece_logits(last_only ? 0 : static_cast<size_t>(B * L * m.V));
  for (int64_t p0 = 0; p0 < S; p0 += L) {
    const int64_t n = std::min(L, S - p0);
    const bool final_piece = p0 + n == S;
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(piece_tokens.data() + b * n, tokens + b * S + p0, sizeof(int32_t) * n);
    float* out = last_only ? (final_piece ? logits : nullptr) : piece_logits.data();
    forward_piece(m, piece_tokens.data(), B, n, p0 == 0 ? io : carried.data(), out, last_only, body, head);
    if (!last_only)
      for (int64_t b = 0; b < B; ++b)
        std::memcpy(logits + (b * S + p0) * m.V, piece_logits.data() + b * n * m.V, sizeof(float) * n * m.V);
  }
}

}  // namespace xlstm
