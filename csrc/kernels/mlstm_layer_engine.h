// The pointwise parts of the fused mLSTM layer (mlstm_layer.h), written once and compiled per ISA
// (mlstm_layer.cc scalar, mlstm_layer_avx2.cc, mlstm_layer_avx512.cc): plain loops under `#pragma omp simd` on the
// branch-free fast_math.h sigmoid (~2 ulp), which the compiler vectorises with each file's flags, and for the gate
// projections' backward GCC vector types (16 floats: one zmm, two ymm or four xmm by the file's flags).
//   SiLU(x) = x σ(x),  SiLU'(x) = σ(x) (1 + x (1 − σ(x)))
#pragma once
#include <math.h>
#include <string.h>
#include <stdint.h>

#include "kernels/fast_math.h"
#include "kernels/mlstm_layer.h"

namespace xlstm {
namespace mlstm_layer_detail {
namespace {

// The causal depthwise conv (conv1d.h's formula, weight transposed to wt [K, F]) of row r, columns [f0, f1), into cr:
//   conv[r] = bias + Σ_{j : t-(K-1)+j >= 0} wt[j] ⊙ x[r-(K-1)+j]    (t = r mod S)
// The one formula the forward and the backward (which recomputes conv instead of saving it) both evaluate, so both
// see the same bits.
constexpr int64_t kConvCols = 256;  // columns per block: cr stays in registers / L1
inline void conv_row(float* cr, const float* x, const float* wt, const float* bias, int64_t r, int64_t S, int64_t F,
                     int64_t K, int64_t f0, int64_t f1) {
  const int64_t t = r % S, j0 = K - 1 - t > 0 ? K - 1 - t : 0, n = f1 - f0;
#pragma omp simd
  for (int64_t f = 0; f < n; ++f) cr[f] = bias[f0 + f];
  for (int64_t j = j0; j < K; ++j) {
    const float* w = wt + j * F + f0;
    const float* xr = x + (r - (K - 1) + j) * F + f0;
#pragma omp simd
    for (int64_t f = 0; f < n; ++f) cr[f] += w[f] * xr[f];
  }
}

// y = SiLU(conv(x)) for rows [r0, r1)
void pw_conv_silu(float* y, const float* x, const float* wt, const float* bias, int64_t r0, int64_t r1, int64_t S,
                  int64_t F, int64_t K) {
  float cr[kConvCols];
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t f0 = 0; f0 < F; f0 += kConvCols) {
      const int64_t f1 = f0 + kConvCols < F ? f0 + kConvCols : F;
      conv_row(cr, x, wt, bias, r, S, F, K, f0, f1);
      float* yr = y + r * F + f0;
#pragma omp simd
      for (int64_t f = 0; f < f1 - f0; ++f) yr[f] = cr[f] * fm_sigmoid(cr[f]);
    }
}

// Backward of pw_conv_silu, first half, rows [r0, r1): g = dy ⊙ SiLU'(conv) in place over dy (conv recomputed from
// x), and the partial sums pw [K, F] += g[r] ⊙ x[r-(K-1)+j] (valid j), pb [F] += g[r].
void pw_silu_conv_grads(float* g, float* pw, float* pb, const float* x, const float* wt, const float* bias,
                        int64_t r0, int64_t r1, int64_t S, int64_t F, int64_t K) {
  float cr[kConvCols];
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t t = r % S, j0 = K - 1 - t > 0 ? K - 1 - t : 0;
    for (int64_t f0 = 0; f0 < F; f0 += kConvCols) {
      const int64_t f1 = f0 + kConvCols < F ? f0 + kConvCols : F, n = f1 - f0;
      conv_row(cr, x, wt, bias, r, S, F, K, f0, f1);
      float* gr = g + r * F + f0;
      float* pbr = pb + f0;
#pragma omp simd
      for (int64_t f = 0; f < n; ++f) {
        const float sg = fm_sigmoid(cr[f]);
        gr[f] *= sg * (1.0f + cr[f] * (1.0f - sg));
        pbr[f] += gr[f];
      }
      for (int64_t j = j0; j < K; ++j) {
        float* pj = pw + j * F + f0;
        const float* xr = x + (r - (K - 1) + j) * F + f0;
#pragma omp simd
        for (int64_t f = 0; f < n; ++f) pj[f] += gr[f] * xr[f];
      }
    }
  }
}

// Backward of the conv, second half, rows [r0, r1): dx[r] += Σ_{j : t+K-1-j < S} wt[j] ⊙ g[r+K-1-j]
void pw_conv_dx(float* dx, const float* g, const float* wt, int64_t r0, int64_t r1, int64_t S, int64_t F, int64_t K) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t t = r % S, j0 = t + K - S > 0 ? t + K - S : 0;
    float* dr = dx + r * F;
    for (int64_t j = j0; j < K; ++j) {
      const float* w = wt + j * F;
      const float* gr = g + (r + (K - 1) - j) * F;
#pragma omp simd
      for (int64_t f = 0; f < F; ++f) dr[f] += w[f] * gr[f];
    }
  }
}

// The output norm and skip of one element, hs = hn + skip ⊙ x_c with hn = (h_c − mean)·rstd·(1 + w_norm) (the
// residual-weight layer norm exactly as nn_simd's norm rows compute it: ((x − mean)·rstd)·(w + 1)). The forward
// takes hn from the norm row and adds the skip; the backward evaluates hn again from h_c and the saved statistics
// and adds the skip with the same explicit operation, so both see the same bits and hs need not be saved.
inline float add_skip(float hn, float skip, float xc) {
#ifdef __FMA__
  return __builtin_fmaf(skip, xc, hn);
#else
  return hn + skip * xc;
#endif
}
inline float norm_at(float hc, float mean, float rstd, float w) { return (hc - mean) * rstd * (w + 1.0f); }

// out = hs ⊙ SiLU(z), hs = hn + skip ⊙ xc, over rows [r0, r1) of width Di (hn may be out itself)
void pw_skip_gate(float* out, const float* hn, const float* skip, const float* xc, const float* z, int64_t r0,
                  int64_t r1, int64_t Di) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * Di;
#pragma omp simd
    for (int64_t j = 0; j < Di; ++j) {
      const float h = add_skip(hn[o + j], skip[j], xc[o + j]);
      out[o + j] = h * (z[o + j] * fm_sigmoid(z[o + j]));
    }
  }
}

void pw_skip_gate_backward(float* dhs, float* dz, float* dxc, const float* dout, const float* hc, const float* mean,
                           const float* rstd, const float* w_norm, const float* skip, const float* xc, const float* z,
                           int64_t r, int64_t S, int64_t NH, int64_t DH) {
  const int64_t b = r / S, s = r % S, o = r * NH * DH;
  for (int64_t h = 0; h < NH; ++h) {
    const float* hch = hc + ((b * NH + h) * S + s) * DH;
    const float m = mean[h], rs = rstd[h];
    const int64_t c = o + h * DH, w0 = h * DH;
#pragma omp simd
    for (int64_t j = 0; j < DH; ++j) {
      const float zz = z[c + j], sg = fm_sigmoid(zz);
      const float g = dout[c + j];
      const float d = g * (zz * sg);
      const float hs = add_skip(norm_at(hch[j], m, rs, w_norm[w0 + j]), skip[w0 + j], xc[c + j]);
      dhs[w0 + j] = d;
      dz[c + j] = g * hs * (sg * (1.0f + zz * (1.0f - sg)));
      dxc[c + j] = d * skip[w0 + j];
    }
  }
}

// One gate pre-activation per (row, gate) for rows [r0, r1) (u: row r0's inputs): 8 gates at a time, each with 16 partial sums so the
// dot products over the 3Di inputs run as independent vector chains.
void pw_gates_forward(float* ig, float* fg, const float* u, const float* w_i, const float* w_f, const float* b_i,
                      const float* b_f, int64_t r0, int64_t r1, int64_t S, int64_t NH, int64_t ld) {
  constexpr int64_t kG = 8, kL = 16;
  const int64_t G = 2 * NH, body = ld / kL * kL;
  for (int64_t r = r0; r < r1; ++r) {
    const float* ur = u + (r - r0) * ld;
    const int64_t b = r / S, s = r % S;
    for (int64_t g0 = 0; g0 < G; g0 += kG) {
      const int64_t ng = G - g0 < kG ? G - g0 : kG;
      const float* w[kG];
      for (int64_t g = 0; g < kG; ++g) {
        const int64_t gg = g0 + (g < ng ? g : 0);
        w[g] = gg < NH ? w_i + gg * ld : w_f + (gg - NH) * ld;
      }
      float acc[kG][kL] = {};
      for (int64_t c = 0; c < body; c += kL)
        for (int64_t g = 0; g < kG; ++g) {
#pragma omp simd
          for (int64_t l = 0; l < kL; ++l) acc[g][l] += ur[c + l] * w[g][c + l];
        }
      for (int64_t g = 0; g < ng; ++g) {
        float t = 0;
        for (int64_t l = 0; l < kL; ++l) t += acc[g][l];
        for (int64_t c = body; c < ld; ++c) t += ur[c] * w[g][c];
        const int64_t gg = g0 + g;
        if (gg < NH) ig[(b * NH + gg) * S + s] = t + b_i[gg];
        else fg[(b * NH + gg - NH) * S + s] = t + b_f[gg - NH];
      }
    }
  }
}

// The gate projections' backward for the rows [r0, r1) of one row block, in the head layout, items (part, h) with
// part 0..2 selecting q, k, v (X[part], dX[part] [B, NH, S, DH]); dG = (di, df) [B, NH, S]; du [r1 - r0, 3Di] the
// block's rows in the row layout (row r0 first):
//   dw_i[g, part*Di + h*DH + j] = Σ_{r in block} di[b, g, s] X[part][b, h, s, j]     (r = b*S + s; dw_f from df
//                                                                                     likewise; the block's partial
//                                                                                     sums, written =)
//   du[r - r0, part*Di + h*DH + j] = dX[part][b, h, s, j] + Σ_g di[b, g, s] W_i[g, ...] + df[b, g, s] W_f[g, ...]
// (the cell's d q/k/v moved to the row layout with the gates' share added on the way).
// Row r's position in the head layout and in the gate arrays.
struct RowAt {
  int64_t x;  // offset of (b, h, s, 0) in X / dX, less h*S*DH
  int64_t g;  // offset of (b, 0, s) in di / df
};
inline RowAt row_at(int64_t r, int64_t S, int64_t NH, int64_t DH) {
  const int64_t b = r / S, s = r % S;
  return RowAt{(b * NH * S + s) * DH, b * NH * S + s};
}

// Columns [jb, jb + n) with n < kVL (the tail of DH; below), plain loops.
inline void gates_backward_tail(float* du, const float* dX, const float* X, float* dw_i, float* dw_f, const float* di,
                                const float* df, const float* w_i, const float* w_f, int64_t col, int64_t h, int64_t r0,
                                int64_t r1, int64_t S, int64_t NH, int64_t DH, int64_t jb, int64_t n) {
  constexpr int64_t kG = 8, kL = 16;
  const int64_t G = 2 * NH, ld = 3 * NH * DH, hx = h * S * DH + jb;
  for (int64_t g0 = 0; g0 < G; g0 += kG) {
    const int64_t ng = G - g0 < kG ? G - g0 : kG;
    float w[kG][kL] = {}, acc[kG][kL] = {};
    const float* src[kG];
    for (int64_t g = 0; g < kG; ++g) {
      const int64_t gg = g0 + (g < ng ? g : 0);
      src[g] = gg < NH ? di + gg * S : df + (gg - NH) * S;
      if (g >= ng) continue;  // w stays 0: no share of dX
      const float* wr = (gg < NH ? w_i + gg * ld : w_f + (gg - NH) * ld) + col + jb;
      for (int64_t l = 0; l < n; ++l) w[g][l] = wr[l];
    }
    for (int64_t r = r0; r < r1; ++r) {
      const RowAt at = row_at(r, S, NH, DH);
      // the first gate group reads the cell's share (head layout), later ones what the earlier wrote (row layout)
      float* ur = du + (r - r0) * ld + col + jb;
      const float* sr = g0 == 0 ? dX + at.x + hx : ur;
      const float* xr = X + at.x + hx;
      float x[kL] = {}, dx[kL] = {};
#pragma omp simd
      for (int64_t l = 0; l < n; ++l) x[l] = xr[l], dx[l] = sr[l];
      for (int64_t g = 0; g < kG; ++g) {
        const float c = src[g][at.g];
#pragma omp simd
        for (int64_t l = 0; l < n; ++l) {
          acc[g][l] += c * x[l];
          dx[l] += c * w[g][l];
        }
      }
#pragma omp simd
      for (int64_t l = 0; l < n; ++l) ur[l] = dx[l];
    }
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t gg = g0 + g;
      float* out = (gg < NH ? dw_i + gg * ld : dw_f + (gg - NH) * ld) + col + jb;
      for (int64_t l = 0; l < n; ++l) out[l] = acc[g][l];
    }
  }
}

// A full tile of kVL columns with GCC vector types (16 floats = one zmm under AVX-512; 8 floats otherwise: one ymm
// under AVX2, two xmm in the scalar build), 8 gates at a time: the weights and the dW partial sums stay in
// registers over the block's rows.
#ifdef __AVX512F__
constexpr int64_t kVL = 16;
#else
constexpr int64_t kVL = 8;
#endif
typedef float v16f __attribute__((vector_size(kVL * sizeof(float))));
#define XLSTM_V16_LOAD(v, p) memcpy(&(v), (p), sizeof(v16f))
#define XLSTM_V16_STORE(p, v) memcpy((p), &(v), sizeof(v16f))

inline void gates_backward_tile(float* du, const float* dX, const float* X, float* dw_i, float* dw_f, const float* di,
                                const float* df, const float* w_i, const float* w_f, int64_t col, int64_t h, int64_t r0,
                                int64_t r1, int64_t S, int64_t NH, int64_t DH, int64_t jb) {
  constexpr int64_t kG = 8;
  const int64_t G = 2 * NH, ld = 3 * NH * DH, hx = h * S * DH + jb;
  for (int64_t g0 = 0; g0 < G; g0 += kG) {
    const int64_t ng = G - g0 < kG ? G - g0 : kG;
    v16f w[kG], acc[kG];
    const float* src[kG];
    for (int64_t g = 0; g < kG; ++g) {
      const int64_t gg = g0 + (g < ng ? g : 0);
      src[g] = gg < NH ? di + gg * S : df + (gg - NH) * S;
      w[g] = v16f{};  // beyond ng: no share of dX
      if (g < ng) XLSTM_V16_LOAD(w[g], (gg < NH ? w_i + gg * ld : w_f + (gg - NH) * ld) + col + jb);
      acc[g] = v16f{};
    }
    int64_t r = r0;
    // two rows of one sequence at a time (adjacent in the head layout), each row's dX share in two partial sums:
    // short dependency chains
    while (r < r1) {
      const RowAt at = row_at(r, S, NH, DH);
      const float* xr = X + at.x + hx;
      float* ur = du + (r - r0) * ld + col + jb;
      const float* sr = g0 == 0 ? dX + at.x + hx : ur;
      const int64_t ss = g0 == 0 ? DH : ld;
      if (r + 1 < r1 && (r + 1) % S != 0) {
        v16f x0, x1, d0, d1, e0 = v16f{}, e1 = v16f{};
        XLSTM_V16_LOAD(x0, xr);
        XLSTM_V16_LOAD(x1, xr + DH);
        XLSTM_V16_LOAD(d0, sr);
        XLSTM_V16_LOAD(d1, sr + ss);
        for (int64_t g = 0; g < kG; g += 2) {
          const float c0 = src[g][at.g], c1 = src[g][at.g + 1];
          const float k0 = src[g + 1][at.g], k1 = src[g + 1][at.g + 1];
          acc[g] += c0 * x0 + c1 * x1;
          acc[g + 1] += k0 * x0 + k1 * x1;
          d0 += c0 * w[g];
          d1 += c1 * w[g];
          e0 += k0 * w[g + 1];
          e1 += k1 * w[g + 1];
        }
        d0 += e0;
        d1 += e1;
        XLSTM_V16_STORE(ur, d0);
        XLSTM_V16_STORE(ur + ld, d1);
        r += 2;
      } else {
        v16f x, dx;
        XLSTM_V16_LOAD(x, xr);
        XLSTM_V16_LOAD(dx, sr);
        for (int64_t g = 0; g < kG; ++g) {
          const float c = src[g][at.g];
          acc[g] += c * x;
          dx += c * w[g];
        }
        XLSTM_V16_STORE(ur, dx);
        r += 1;
      }
    }
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t gg = g0 + g;
      XLSTM_V16_STORE((gg < NH ? dw_i + gg * ld : dw_f + (gg - NH) * ld) + col + jb, acc[g]);
    }
  }
}
#undef XLSTM_V16_LOAD
#undef XLSTM_V16_STORE

void pw_gates_backward(float* du, const float* const dX[3], float* dw_i, float* dw_f, const float* const X[3],
                       const float* di, const float* df, const float* w_i, const float* w_f, int64_t r0, int64_t r1,
                       int64_t S, int64_t NH, int64_t DH) {
  constexpr int64_t kL = kVL;
  for (int64_t it = 0; it < 3 * NH; ++it) {
    const int64_t part = it / NH, h = it % NH, col = part * NH * DH + h * DH;
    for (int64_t jb = 0; jb < DH; jb += kL) {
      if (DH - jb >= kL)
        gates_backward_tile(du, dX[part], X[part], dw_i, dw_f, di, df, w_i, w_f, col, h, r0, r1, S, NH, DH, jb);
      else
        gates_backward_tail(du, dX[part], X[part], dw_i, dw_f, di, df, w_i, w_f, col, h, r0, r1, S, NH, DH, jb, DH - jb);
    }
  }
}

inline Pointwise make_pointwise() {
  return Pointwise{pw_conv_silu, pw_silu_conv_grads, pw_conv_dx, pw_skip_gate, pw_skip_gate_backward,
                   pw_gates_forward, pw_gates_backward};
}

}  // namespace
}  // namespace mlstm_layer_detail
}  // namespace xlstm
