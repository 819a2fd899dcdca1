// Block-diagonal linear map with 4x4 blocks (the mLSTM's q/k/v projections at qkv_proj_blocksize 4), AVX-512
// (see headwise.h). One zmm holds 16 features = 4 blocks of 4, and each 128-bit lane is one block, so the
// in-lane shuffle _mm512_permute_ps broadcasts element d of every block at once: a 4x4 block matvec for 4 blocks
// is 4 shuffles and 4 FMAs. Weights are rearranged once per call so that each FMA reads them contiguously.
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off

#include <cstdint>
#include <vector>

#include "kernels/threadpool.h"

namespace xlstm {
namespace headwise_detail {

namespace {

template <int D>
inline __m512 bcast_in_block(__m512 v) {
  return _mm512_permute_ps(v, D * 0x55);  // element D of each 128-bit lane into all four of its slots
}

}  // namespace

// y[r, j] (+bias) for j = hb*4 + o: Wt[d][j] = W[hb, o, d]
void hw4_forward_avx512(float* y, int64_t ldy, const float* x, const float* W, const float* bias, int64_t rows,
                        int64_t NB) {
  const int64_t F = NB * 4;
  std::vector<float> Wt(4 * F);
  for (int64_t j = 0; j < F; ++j)
    for (int d = 0; d < 4; ++d) Wt[d * F + j] = W[j * 4 + d];
  parallel_for(rows, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* xr = x + r * F;
      float* yr = y + r * ldy;
      for (int64_t c = 0; c < F; c += 16) {
        const __m512 xv = _mm512_loadu_ps(xr + c);
        __m512 acc = bias ? _mm512_loadu_ps(bias + c) : _mm512_setzero_ps();
        acc = _mm512_fmadd_ps(bcast_in_block<0>(xv), _mm512_loadu_ps(&Wt[0 * F + c]), acc);
        acc = _mm512_fmadd_ps(bcast_in_block<1>(xv), _mm512_loadu_ps(&Wt[1 * F + c]), acc);
        acc = _mm512_fmadd_ps(bcast_in_block<2>(xv), _mm512_loadu_ps(&Wt[2 * F + c]), acc);
        acc = _mm512_fmadd_ps(bcast_in_block<3>(xv), _mm512_loadu_ps(&Wt[3 * F + c]), acc);
        _mm512_storeu_ps(yr + c, acc);
      }
    }
  });
}

// dx[r, hb*4 + d] (=, or += with accumulate) = Σ_o dy[r, hb*4 + o] W[hb, o, d]:  Wo[o][hb*4 + d] = W[hb, o, d]
void hw4_backward_dx_avx512(float* dx, bool accumulate, const float* dy, int64_t ldy, const float* W, int64_t rows,
                            int64_t NB) {
  const int64_t F = NB * 4;
  std::vector<float> Wo(4 * F);
  for (int64_t hb = 0; hb < NB; ++hb)
    for (int o = 0; o < 4; ++o)
      for (int d = 0; d < 4; ++d) Wo[o * F + hb * 4 + d] = W[(hb * 4 + o) * 4 + d];
  parallel_for(rows, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* g = dy + r * ldy;
      float* dxr = dx + r * F;
      for (int64_t c = 0; c < F; c += 16) {
        const __m512 gv = _mm512_loadu_ps(g + c);
        __m512 acc = accumulate ? _mm512_loadu_ps(dxr + c) : _mm512_setzero_ps();
        acc = _mm512_fmadd_ps(bcast_in_block<0>(gv), _mm512_loadu_ps(&Wo[0 * F + c]), acc);
        acc = _mm512_fmadd_ps(bcast_in_block<1>(gv), _mm512_loadu_ps(&Wo[1 * F + c]), acc);
        acc = _mm512_fmadd_ps(bcast_in_block<2>(gv), _mm512_loadu_ps(&Wo[2 * F + c]), acc);
        acc = _mm512_fmadd_ps(bcast_in_block<3>(gv), _mm512_loadu_ps(&Wo[3 * F + c]), acc);
        _mm512_storeu_ps(dxr + c, acc);
      }
    }
  });
}

// dW[hb, o, d] = Σ_r dy[r, hb*4 + o] x[r, hb*4 + d]; dbias[j] = Σ_r dy[r, j]. One task per 16 features (4 blocks)
// over all rows; float accumulation in 4 interleaved partial sums per lane to keep long row sums accurate.
void hw4_backward_dw_avx512(float* dW, float* dbias, const float* dy, int64_t ldy, const float* x, int64_t rows,
                            int64_t NB) {
  const int64_t F = NB * 4;
  parallel_for(F / 16, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c16 = lo; c16 < hi; ++c16) {
      const int64_t c = c16 * 16;
      __m512d accd[4][2], accb[2];  // double accumulation: rows can be in the hundreds of thousands
      for (int d = 0; d < 4; ++d) accd[d][0] = accd[d][1] = _mm512_setzero_pd();
      accb[0] = accb[1] = _mm512_setzero_pd();
      constexpr int64_t kBlock = 64;  // rows summed in float before widening
      for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
        const int64_t r1 = r0 + kBlock < rows ? r0 + kBlock : rows;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, ab = a0;
        for (int64_t r = r0; r < r1; ++r) {
          const __m512 gv = _mm512_loadu_ps(dy + r * ldy + c);
          const __m512 xv = _mm512_loadu_ps(x + r * F + c);
          a0 = _mm512_fmadd_ps(gv, bcast_in_block<0>(xv), a0);
          a1 = _mm512_fmadd_ps(gv, bcast_in_block<1>(xv), a1);
          a2 = _mm512_fmadd_ps(gv, bcast_in_block<2>(xv), a2);
          a3 = _mm512_fmadd_ps(gv, bcast_in_block<3>(xv), a3);
          ab = _mm512_add_ps(ab, gv);
        }
        const __m512 a[4] = {a0, a1, a2, a3};
        for (int d = 0; d < 4; ++d) {
          accd[d][0] = _mm512_add_pd(accd[d][0], _mm512_cvtps_pd(_mm512_castps512_ps256(a[d])));
          accd[d][1] = _mm512_add_pd(accd[d][1], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[d]), 1))));
        }
        accb[0] = _mm512_add_pd(accb[0], _mm512_cvtps_pd(_mm512_castps512_ps256(ab)));
        accb[1] = _mm512_add_pd(accb[1], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(ab), 1))));
      }
      double out[4][16], outb[16];
      for (int d = 0; d < 4; ++d) {
        _mm512_storeu_pd(out[d], accd[d][0]);
        _mm512_storeu_pd(out[d] + 8, accd[d][1]);
      }
      _mm512_storeu_pd(outb, accb[0]);
      _mm512_storeu_pd(outb + 8, accb[1]);
      for (int l = 0; l < 16; ++l) {  // lane l is feature j = c + l = hb*4 + o
        if (dW)
          for (int d = 0; d < 4; ++d) dW[(c + l) * 4 + d] = static_cast<float>(out[d][l]);
        if (dbias) dbias[c + l] = static_cast<float>(outb[l]);
      }
    }
  });
}

}  // namespace headwise_detail
}  // namespace xlstm
