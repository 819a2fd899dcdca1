// Rounding float32 (or bf16) operands into dwords that each hold two bf16 of consecutive k, the even one in the low
// half (vdpbf16ps's input format), with AVX-512 BF16 instructions (round to nearest even; NaN stays NaN). Shared by
// the GEMM over pairs (gemm_bf16pairs_avx512.cc), the recurrences' bf16 step products (recurrent_engine.h) and the
// mLSTM cell's tile products (mlstm_tile_pairs.h). Only for files compiled with AVX-512 flags; the functions carry
// the avx512bf16 target themselves and run only where bf16_dot_available().
#pragma once
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off

#include <algorithm>
#include <cstdint>

#if defined(__GNUC__) || defined(__clang__)
#define XLSTM_PAIRS_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#else
#define XLSTM_PAIRS_TARGET
#endif

namespace xlstm {
namespace bf16_pairs {

// lanes [0, n) of 16 (none for n <= 0)
inline __mmask16 dword_mask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << n) - 1);
}

// dst[r * ldd + q] = pair(src[r][2q], src[r][2q + 1]) for rows [r0, r1), q < ⌈K/2⌉ (a zero past K)
XLSTM_PAIRS_TARGET inline void round_pairs_along(uint32_t* dst, int64_t ldd, const float* src, int64_t lds, int64_t K,
                                          int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* s = src + r * lds;
    uint32_t* d = dst + r * ldd;
    for (int64_t k = 0; k < K; k += 32) {
      const __m512 lo = _mm512_maskz_loadu_ps(dword_mask(K - k), s + k);
      const __m512 hi = _mm512_maskz_loadu_ps(dword_mask(K - k - 16), s + k + 16);
      // cvtne2ps(hi, lo): lo's 16 bf16 in the low 256 bits, then hi's: s[k], s[k+1], ... in order, two per dword
      const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
      _mm512_mask_storeu_epi32(d + k / 2, dword_mask((K - k + 1) / 2), v);
    }
  }
}

// dst[q * ldd + c] = pair(src[2q][c], src[2q + 1][c]) for q in [q0, q1), c < cols (row 2q + 1 = K is a zero row)
XLSTM_PAIRS_TARGET inline void round_pairs_across(uint32_t* dst, int64_t ldd, const float* src, int64_t lds, int64_t K,
                                           int64_t cols, int64_t q0, int64_t q1) {
  for (int64_t q = q0; q < q1; ++q) {
    const float* s0 = src + 2 * q * lds;
    const float* s1 = 2 * q + 1 < K ? s0 + lds : nullptr;
    uint32_t* d = dst + q * ldd;
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 m = dword_mask(cols - c);
      const __m256i e = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s0 + c));
      __m512i v = _mm512_cvtepu16_epi32(e);
      if (s1) {
        const __m256i o = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s1 + c));
        v = _mm512_or_si512(v, _mm512_slli_epi32(_mm512_cvtepu16_epi32(o), 16));
      }
      _mm512_mask_storeu_epi32(d + c, m, v);
    }
  }
}

// In place: r[c] = column c of the 16 x 16 dword block whose row i is r[i].
XLSTM_PAIRS_TARGET inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {  // t[2i] lane L: r2i[4L], r2i+1[4L], r2i[4L+1], r2i+1[4L+1]; t[2i+1]: columns 4L+2, 4L+3
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // r[4i + j] lane L: rows 4i..4i+3 of column 4L + j
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int j = 0; j < 4; ++j) {  // column 4L + j = lane L of r[j], r[4 + j], r[8 + j], r[12 + j]: a 4 x 4 lane transpose
    const __m512i ab_lo = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44), cd_lo = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44);
    const __m512i ab_hi = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xEE), cd_hi = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xEE);
    t[j] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0x88);
    t[4 + j] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0xDD);
    t[8 + j] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0x88);
    t[12 + j] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0xDD);
  }
  for (int c = 0; c < 16; ++c) r[c] = t[c];
}

// dst[q * ldd + n] = pair(X[n][2q], X[n][2q + 1]) (a zero past K) for n in 16-row blocks [b0, b1), n < rows: X's
// rows transposed into the k-major layout the tiles read op(B) in, 16 x 16 dwords at a time. X is float32 (rounded
// here) or, when Xb is given, already bf16 (Xb; X unused).
XLSTM_PAIRS_TARGET inline void round_pairs_transposed(uint32_t* dst, int64_t ldd, const float* X, const uint16_t* Xb,
                                               int64_t ldx, int64_t rows, int64_t K, int64_t b0, int64_t b1) {
  const int64_t K2 = (K + 1) / 2;
  __m512i r[16];
  for (int64_t nb = b0; nb < b1; ++nb) {
    const int64_t n0 = nb * 16, nr = std::min<int64_t>(16, rows - n0);
    for (int64_t q0 = 0; q0 < K2; q0 += 16) {
      const int64_t k = 2 * q0;
      for (int i = 0; i < 16; ++i) {
        if (i >= nr) {
          r[i] = _mm512_setzero_si512();
        } else if (Xb) {
          const int64_t left = K - k;
          const __mmask32 m = left >= 32 ? ~0u : static_cast<__mmask32>((1u << left) - 1);
          r[i] = _mm512_maskz_loadu_epi16(m, Xb + (n0 + i) * ldx + k);
        } else {
          const float* s = X + (n0 + i) * ldx + k;
          r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(dword_mask(K - k - 16), s + 16),
                                              _mm512_maskz_loadu_ps(dword_mask(K - k), s));
        }
      }
      transpose16(r);
      const __mmask16 m = dword_mask(nr);
      const int64_t nq = std::min<int64_t>(16, K2 - q0);
      for (int c = 0; c < nq; ++c) _mm512_mask_storeu_epi32(dst + (q0 + c) * ldd + n0, m, r[c]);
    }
  }
}

}  // namespace bf16_pairs
}  // namespace xlstm
