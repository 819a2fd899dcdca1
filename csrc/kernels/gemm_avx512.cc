// GEMM, AVX-512 variant (CPU kernels layer): packing, the 14 x 32 register-blocked micro-kernels and the
// matrix-vector kernels used by the driver in gemm.cc (see gemm.h for layouts, semantics and the panel views).
//
// Micro-kernels: a 14-row x 32-column tile of C lives in 28 zmm accumulators; each step of k loads one 32-wide row
// of op(B) (2 zmm, masked to the tile's columns, so op(B) may be read in place) and broadcasts the 14 values of
// op(A) (vbroadcastss, one register reused by 2 FMAs): 28 FMAs per 16 loads, all 32 zmm registers in use. Full
// tiles run an inline-assembly k loop (GCC spills accumulators of the intrinsics version) in two forms:
//   kernel_full_k  op(A) k-major: the 14 values of a step are contiguous, steps `cs` floats apart (packed slivers,
//                  or A^T read in place);
//   kernel_full_r  op(A) rows read in place: 14 row pointers (4 base registers + lda, 3*lda), steps 1 float apart.
// Both scale by alpha and apply beta to C straight from the accumulators (masked stores for edge columns). Edge
// rows (1..13) use an intrinsics template over the row count and the panel form.
// Blocking: KC 256 (the 32 KiB op(B) sliver stays in the 48 KiB L1 while op(A) streams from L2), MC <= 504 rows
// (a 504 x 256 op(A) block is ~0.5 MiB of the 1 MiB L2), NC 4096 (packed op(B) in L3).
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off

#include <algorithm>

#include "kernels/gemm.h"

namespace xlstm {
namespace gemm_detail {
namespace {

#define XLSTM_TILE_INSN "vfmadd231ps"
#define XLSTM_TILE_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define XLSTM_TILE_ATTR
#include "kernels/gemm_avx512_tiles.h"  // MR, NR, the tiles, macro(), pack_a and pack_b

// out[j] = sum_p x[p] Y[p*ldy + j]: streams the rows of Y in order, four at a time, through `out` (which stays in
// L1/L2); walking all rows for a narrow column block instead would touch a new page per row.
void gemv_n(int64_t n, int64_t k, const float* x, const float* Y, int64_t ldy, float* out) {
  const int64_t nv = n / 16 * 16;
  const __mmask16 mt = static_cast<__mmask16>((1u << (n - nv)) - 1);
  std::fill(out, out + n, 0.f);
  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    const __m512 x0 = _mm512_set1_ps(x[p]), x1 = _mm512_set1_ps(x[p + 1]);
    const __m512 x2 = _mm512_set1_ps(x[p + 2]), x3 = _mm512_set1_ps(x[p + 3]);
    const float* y0 = Y + p * ldy;
    const float* y1 = y0 + ldy;
    const float* y2 = y1 + ldy;
    const float* y3 = y2 + ldy;
    int64_t j = 0;
    for (; j < nv; j += 16) {
      __m512 o = _mm512_fmadd_ps(x0, _mm512_loadu_ps(y0 + j), _mm512_loadu_ps(out + j));
      const __m512 t = _mm512_fmadd_ps(x1, _mm512_loadu_ps(y1 + j), _mm512_mul_ps(x2, _mm512_loadu_ps(y2 + j)));
      o = _mm512_fmadd_ps(x3, _mm512_loadu_ps(y3 + j), o);
      _mm512_storeu_ps(out + j, _mm512_add_ps(o, t));
    }
    if (mt) {
      __m512 o = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(mt, y0 + j), _mm512_maskz_loadu_ps(mt, out + j));
      const __m512 t = _mm512_fmadd_ps(x1, _mm512_maskz_loadu_ps(mt, y1 + j),
                                       _mm512_mul_ps(x2, _mm512_maskz_loadu_ps(mt, y2 + j)));
      o = _mm512_fmadd_ps(x3, _mm512_maskz_loadu_ps(mt, y3 + j), o);
      _mm512_mask_storeu_ps(out + j, mt, _mm512_add_ps(o, t));
    }
  }
  for (; p < k; ++p) {
    const __m512 x0 = _mm512_set1_ps(x[p]);
    const float* y0 = Y + p * ldy;
    int64_t j = 0;
    for (; j < nv; j += 16)
      _mm512_storeu_ps(out + j, _mm512_fmadd_ps(x0, _mm512_loadu_ps(y0 + j), _mm512_loadu_ps(out + j)));
    if (mt)
      _mm512_mask_storeu_ps(out + j, mt,
                            _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(mt, y0 + j), _mm512_maskz_loadu_ps(mt, out + j)));
  }
}

// Horizontal sum (GCC 12's _mm512_reduce_add_ps trips -Wmaybe-uninitialized).
inline float hsum(__m512 v) {
  const __m256 s = _mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1));
  __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  t = _mm_add_ps(t, _mm_movehl_ps(t, t));
  t = _mm_add_ss(t, _mm_movehdup_ps(t));
  return _mm_cvtss_f32(t);
}

// out[j] = <x, Y[j*ldy + 0:k]>: 4 rows at a time, 2 accumulators each, masked tail in k.
void gemv_t(int64_t n, int64_t k, const float* x, const float* Y, int64_t ldy, float* out) {
  const int64_t kv = k / 16 * 16;
  const __mmask16 mt = static_cast<__mmask16>((1u << (k - kv)) - 1);
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* y0 = Y + j * ldy;
    const float* y1 = y0 + ldy;
    const float* y2 = y1 + ldy;
    const float* y3 = y2 + ldy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t p = 0;
    for (; p + 32 <= kv; p += 32) {
      const __m512 x0 = _mm512_loadu_ps(x + p), x1 = _mm512_loadu_ps(x + p + 16);
      a0 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(y0 + p), a0);
      a1 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(y1 + p), a1);
      a2 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(y2 + p), a2);
      a3 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(y3 + p), a3);
      b0 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(y0 + p + 16), b0);
      b1 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(y1 + p + 16), b1);
      b2 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(y2 + p + 16), b2);
      b3 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(y3 + p + 16), b3);
    }
    for (; p < kv; p += 16) {
      const __m512 x0 = _mm512_loadu_ps(x + p);
      a0 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(y0 + p), a0);
      a1 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(y1 + p), a1);
      a2 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(y2 + p), a2);
      a3 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(y3 + p), a3);
    }
    if (mt) {
      const __m512 x0 = _mm512_maskz_loadu_ps(mt, x + p);
      b0 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(mt, y0 + p), b0);
      b1 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(mt, y1 + p), b1);
      b2 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(mt, y2 + p), b2);
      b3 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(mt, y3 + p), b3);
    }
    out[j] = hsum(_mm512_add_ps(a0, b0));
    out[j + 1] = hsum(_mm512_add_ps(a1, b1));
    out[j + 2] = hsum(_mm512_add_ps(a2, b2));
    out[j + 3] = hsum(_mm512_add_ps(a3, b3));
  }
  for (; j < n; ++j) {
    const float* y = Y + j * ldy;
    __m512 a = _mm512_setzero_ps();
    int64_t p = 0;
    for (; p < kv; p += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(x + p), _mm512_loadu_ps(y + p), a);
    if (mt) a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, x + p), _mm512_maskz_loadu_ps(mt, y + p), a);
    out[j] = hsum(a);
  }
}

}  // namespace

const Isa& isa_avx512() {
  static const Isa isa{"avx512", MR, NR, 256, 504, 4096, true, pack_a, pack_b, macro, gemv_n, gemv_t};
  return isa;
}

}  // namespace gemm_detail
}  // namespace xlstm
