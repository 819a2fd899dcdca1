// GEMM, AVX2 + FMA variant (CPU kernels layer): packing, the 6 x 16 register-blocked micro-kernel and the
// matrix-vector kernels used by the driver in gemm.cc (see gemm.h for layouts, semantics and the panel views).
//
// Micro-kernel: a 6-row x 16-column tile of C in 12 ymm accumulators; each step of k loads one 16-wide row of
// op(B) (2 ymm; maskload for edge columns, so op(B) may be read in place) and broadcasts 6 values of op(A) (12 FMAs,
// 15 ymm registers in use). op(A) is k-major (packed slivers or A^T in place: the 6 values of a step contiguous) or
// read in place by rows (6 row pointers); a template over the row count (1..6) and the form covers every tile.
// Blocking: KC 256 (16 KiB op(B) sliver in L1), MC <= 480 rows (~0.5 MiB op(A) block in L2), NC 4096.
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm.h"

namespace xlstm {
namespace gemm_detail {
namespace {

constexpr int MR = 6, NR = 16;

// KMAJ: element (r, q) of op(A) at a[q*cs + r] (rs == 1); else at a[r*rs + q] (cs == 1).
template <int R, bool KMAJ>
void kernel(int nr, int64_t k, float alpha, const float* __restrict a, int64_t rs, int64_t cs,
            const float* __restrict b, int64_t bks, float beta, float* __restrict C, int64_t ldc, const char* pf,
            int64_t pfs) {
  __m256 c0[R], c1[R];
  const float* ar[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    c0[r] = _mm256_setzero_ps();
    c1[r] = _mm256_setzero_ps();
    ar[r] = KMAJ ? a + r : a + r * rs;
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 15), _MM_HINT_T0);
  }
  const int64_t step = KMAJ ? cs : 1;
  const __m256i iota0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i iota1 = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
  const __m256i vn = _mm256_set1_epi32(nr);
  const __m256i m0 = _mm256_cmpgt_epi32(vn, iota0), m1 = _mm256_cmpgt_epi32(vn, iota1);

#define XLSTM_GEMM_STEP(b0, b1)                                          \
  _Pragma("GCC unroll 6") for (int r = 0; r < R; ++r) {                  \
    const __m256 av = _mm256_broadcast_ss(ar[r] + q * step);             \
    c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);                              \
    c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);                              \
  }
  if (nr == NR) {
    for (int64_t q = 0; q < k; ++q) {
      _mm_prefetch(pf + q * pfs, _MM_HINT_T1);
      const __m256 b0 = _mm256_loadu_ps(b + q * bks), b1 = _mm256_loadu_ps(b + q * bks + 8);
      XLSTM_GEMM_STEP(b0, b1)
    }
  } else {
    for (int64_t q = 0; q < k; ++q) {
      _mm_prefetch(pf + q * pfs, _MM_HINT_T1);
      const __m256 b0 = _mm256_maskload_ps(b + q * bks, m0), b1 = _mm256_maskload_ps(b + q * bks + 8, m1);
      XLSTM_GEMM_STEP(b0, b1)
    }
  }
#undef XLSTM_GEMM_STEP

  const __m256 va = _mm256_set1_ps(alpha);
  if (nr == NR) {
    if (beta == 0.f) {
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        float* cr = C + r * ldc;
        _mm256_storeu_ps(cr, _mm256_mul_ps(va, c0[r]));
        _mm256_storeu_ps(cr + 8, _mm256_mul_ps(va, c1[r]));
      }
    } else {
      const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        float* cr = C + r * ldc;
        _mm256_storeu_ps(cr, _mm256_fmadd_ps(va, c0[r], _mm256_mul_ps(vb, _mm256_loadu_ps(cr))));
        _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(va, c1[r], _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8))));
      }
    }
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
    for (int r = 0; r < R; ++r) {
      float* cr = C + r * ldc;
      __m256 x0 = _mm256_mul_ps(va, c0[r]), x1 = _mm256_mul_ps(va, c1[r]);
      if (beta != 0.f) {
        x0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr, m0), x0);
        x1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr + 8, m1), x1);
      }
      _mm256_maskstore_ps(cr, m0, x0);
      _mm256_maskstore_ps(cr + 8, m1, x1);
    }
  }
}

using KernelFn = void (*)(int, int64_t, float, const float*, int64_t, int64_t, const float*, int64_t, float, float*,
                          int64_t, const char*, int64_t);
constexpr KernelFn kKernelsK[MR + 1] = {nullptr,         kernel<1, true>, kernel<2, true>, kernel<3, true>,
                                        kernel<4, true>, kernel<5, true>, kernel<6, true>};
constexpr KernelFn kKernelsR[MR + 1] = {nullptr,          kernel<1, false>, kernel<2, false>, kernel<3, false>,
                                        kernel<4, false>, kernel<5, false>, kernel<6, false>};

void macro(int64_t m, int64_t n, int64_t k, float alpha, const APanel& a, const BPanel& b, float beta, float* C,
           int64_t ldc, const Prefetch* pf, int npf) {
  const bool kmaj = a.rs == 1;
  const KernelFn* kernels = kmaj ? kKernelsK : kKernelsR;
  PrefetchJobs jobs(pf, kmaj ? npf : 0, k);  // rows-in-place tiles walk k along rows: no prefetch stream
  const char* pp;
  int64_t ps;
  for (int64_t j0 = 0; j0 < n; j0 += NR) {
    const int nr = static_cast<int>(std::min<int64_t>(NR, n - j0));
    const float* bs = b.p + (j0 / NR) * b.tile;
    const float* at = a.p;
    for (int64_t i0 = 0; i0 < m; i0 += MR, at += a.tile) {
      if (!jobs.next(&pp, &ps)) pp = reinterpret_cast<const char*>(bs), ps = 0;
      kernels[std::min<int64_t>(MR, m - i0)](nr, k, alpha, at, a.rs, a.cs, bs, b.ks, beta, C + i0 * ldc + j0, ldc, pp,
                                              ps);
    }
  }
}

void pack_a(bool trans, int64_t m, int64_t k, const float* A, int64_t lda, float* Ap) {
  pack_a_generic<MR>(trans, m, k, A, lda, Ap);
}
void pack_b(bool trans, int64_t k, int64_t n, const float* B, int64_t ldb, float* Bp) {
  pack_b_generic<NR>(trans, k, n, B, ldb, Bp);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// out[j] = sum_p x[p] Y[p*ldy + j]: streams the rows of Y in order, four at a time, through `out` (in L1/L2).
void gemv_n(int64_t n, int64_t k, const float* x, const float* Y, int64_t ldy, float* out) {
  const int64_t nv = n / 8 * 8;
  std::fill(out, out + n, 0.f);
  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    const __m256 x0 = _mm256_broadcast_ss(x + p), x1 = _mm256_broadcast_ss(x + p + 1);
    const __m256 x2 = _mm256_broadcast_ss(x + p + 2), x3 = _mm256_broadcast_ss(x + p + 3);
    const float* y0 = Y + p * ldy;
    const float* y1 = y0 + ldy;
    const float* y2 = y1 + ldy;
    const float* y3 = y2 + ldy;
    for (int64_t j = 0; j < nv; j += 8) {
      __m256 o = _mm256_fmadd_ps(x0, _mm256_loadu_ps(y0 + j), _mm256_loadu_ps(out + j));
      const __m256 t = _mm256_fmadd_ps(x1, _mm256_loadu_ps(y1 + j), _mm256_mul_ps(x2, _mm256_loadu_ps(y2 + j)));
      o = _mm256_fmadd_ps(x3, _mm256_loadu_ps(y3 + j), o);
      _mm256_storeu_ps(out + j, _mm256_add_ps(o, t));
    }
    for (int64_t j = nv; j < n; ++j) out[j] += x[p] * y0[j] + x[p + 1] * y1[j] + x[p + 2] * y2[j] + x[p + 3] * y3[j];
  }
  for (; p < k; ++p) {
    const __m256 x0 = _mm256_broadcast_ss(x + p);
    const float* y0 = Y + p * ldy;
    for (int64_t j = 0; j < nv; j += 8)
      _mm256_storeu_ps(out + j, _mm256_fmadd_ps(x0, _mm256_loadu_ps(y0 + j), _mm256_loadu_ps(out + j)));
    for (int64_t j = nv; j < n; ++j) out[j] += x[p] * y0[j];
  }
}

// out[j] = <x, Y[j*ldy + 0:k]>: 4 rows at a time, scalar tail in k.
void gemv_t(int64_t n, int64_t k, const float* x, const float* Y, int64_t ldy, float* out) {
  const int64_t kv = k / 8 * 8;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* y0 = Y + j * ldy;
    const float* y1 = y0 + ldy;
    const float* y2 = y1 + ldy;
    const float* y3 = y2 + ldy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t p = 0; p < kv; p += 8) {
      const __m256 xv = _mm256_loadu_ps(x + p);
      a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y0 + p), a0);
      a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y1 + p), a1);
      a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y2 + p), a2);
      a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y3 + p), a3);
    }
    float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (int64_t p = kv; p < k; ++p) {
      s0 += x[p] * y0[p];
      s1 += x[p] * y1[p];
      s2 += x[p] * y2[p];
      s3 += x[p] * y3[p];
    }
    out[j] = s0;
    out[j + 1] = s1;
    out[j + 2] = s2;
    out[j + 3] = s3;
  }
  for (; j < n; ++j) {
    const float* y = Y + j * ldy;
    __m256 a = _mm256_setzero_ps();
    for (int64_t p = 0; p < kv; p += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(x + p), _mm256_loadu_ps(y + p), a);
    float s = hsum(a);
    for (int64_t p = kv; p < k; ++p) s += x[p] * y[p];
    out[j] = s;
  }
}

}  // namespace

const Isa& isa_avx2() {
  static const Isa isa{"avx2", MR, NR, 256, 480, 4096, false, pack_a, pack_b, macro, gemv_n, gemv_t};
  return isa;
}

}  // namespace gemm_detail
}  // namespace xlstm
