// GEMM, AVX-512 variant (CPU kernels layer): packing, the 14 x 32 register-blocked micro-kernel and the
// matrix-vector kernels used by the driver in gemm.cc (see gemm.h for layouts and semantics).
//
// Micro-kernel: a 14-row x 32-column tile of C lives in 28 zmm accumulators; each step of k loads one 32-wide row
// of the packed op(B) sliver (2 zmm) and broadcasts the 14 values of the packed op(A) sliver (vbroadcastss, one
// register reused by 2 FMAs): 28 FMAs per 16 loads, all 32 zmm registers in use. The full tile's k loop is
// inline assembly (GCC spills accumulators of the intrinsics version); edge tiles use an intrinsics template over
// the row count (1..13) and column masks.
// Blocking: KC 256 (the 32 KiB op(B) sliver stays in the 48 KiB L1 while op(A) slivers stream from L2),
// MC <= 504 rows (a 504 x 256 op(A) block is ~0.5 MiB of the 1 MiB L2), NC 4096 (packed op(B) in L3).
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm.h"

namespace xlstm {
namespace gemm_detail {
namespace {

constexpr int MR = 14, NR = 32;

template <int R>
void kernel(int nr, int64_t k, float alpha, const float* __restrict Ap, const float* __restrict Bp, float beta,
            float* __restrict C, int64_t ldc) {
  __m512 c0[R], c1[R];
#pragma GCC unroll 14
  for (int r = 0; r < R; ++r) {
    c0[r] = _mm512_setzero_ps();
    c1[r] = _mm512_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 31), _MM_HINT_T0);
  }

#define XLSTM_GEMM_STEP(off)                                        \
  {                                                                 \
    const __m512 b0 = _mm512_load_ps(Bp + (off) * NR);              \
    const __m512 b1 = _mm512_load_ps(Bp + (off) * NR + 16);         \
    _Pragma("GCC unroll 14") for (int r = 0; r < R; ++r) {          \
      const __m512 a = _mm512_set1_ps(Ap[(off) * MR + r]);          \
      c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);                        \
      c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);                        \
    }                                                               \
  }

  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(Ap + 8 * MR), _MM_HINT_T0);
    XLSTM_GEMM_STEP(0)
    XLSTM_GEMM_STEP(1)
    XLSTM_GEMM_STEP(2)
    XLSTM_GEMM_STEP(3)
    Ap += 4 * MR;
    Bp += 4 * NR;
  }
  for (; p < k; ++p) {
    XLSTM_GEMM_STEP(0)
    Ap += MR;
    Bp += NR;
  }
#undef XLSTM_GEMM_STEP

  const __mmask16 m0 = nr >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? static_cast<__mmask16>(0xFFFF)
                       : nr > 16 ? static_cast<__mmask16>((1u << (nr - 16)) - 1)
                                 : static_cast<__mmask16>(0);
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.f) {
#pragma GCC unroll 14
    for (int r = 0; r < R; ++r) {
      float* cr = C + r * ldc;
      _mm512_mask_storeu_ps(cr, m0, _mm512_mul_ps(va, c0[r]));
      _mm512_mask_storeu_ps(cr + 16, m1, _mm512_mul_ps(va, c1[r]));
    }
  } else if (beta == 1.f) {
#pragma GCC unroll 14
    for (int r = 0; r < R; ++r) {
      float* cr = C + r * ldc;
      _mm512_mask_storeu_ps(cr, m0, _mm512_fmadd_ps(va, c0[r], _mm512_maskz_loadu_ps(m0, cr)));
      _mm512_mask_storeu_ps(cr + 16, m1, _mm512_fmadd_ps(va, c1[r], _mm512_maskz_loadu_ps(m1, cr + 16)));
    }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
    for (int r = 0; r < R; ++r) {
      float* cr = C + r * ldc;
      _mm512_mask_storeu_ps(cr, m0, _mm512_fmadd_ps(va, c0[r], _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m0, cr))));
      _mm512_mask_storeu_ps(cr + 16, m1,
                            _mm512_fmadd_ps(va, c1[r], _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16))));
    }
  }
}

// Full 14 x 32 tile: the k loop in inline assembly (GCC's register allocation of the intrinsics version spills
// accumulators). zmm0..27 accumulate row r in zmm(2r), zmm(2r+1); zmm28/29 hold the op(B) row; zmm30/31 the
// broadcast op(A) values. The tile goes to a stack buffer and the C update is done with intrinsics (masks, beta).
#define XLSTM_R(u, r, t, c0, c1)                                           \
  "vbroadcastss " #u "*56+" #r "*4(%[a]), %%zmm" #t "\n\t"                  \
  "vfmadd231ps %%zmm28, %%zmm" #t ", %%zmm" #c0 "\n\t"                      \
  "vfmadd231ps %%zmm29, %%zmm" #t ", %%zmm" #c1 "\n\t"
#define XLSTM_STEP(u)                                                      \
  "vmovaps " #u "*128(%[b]), %%zmm28\n\t"                                   \
  "vmovaps " #u "*128+64(%[b]), %%zmm29\n\t"                                \
  XLSTM_R(u, 0, 30, 0, 1) XLSTM_R(u, 1, 31, 2, 3) XLSTM_R(u, 2, 30, 4, 5) XLSTM_R(u, 3, 31, 6, 7)            \
  XLSTM_R(u, 4, 30, 8, 9) XLSTM_R(u, 5, 31, 10, 11) XLSTM_R(u, 6, 30, 12, 13) XLSTM_R(u, 7, 31, 14, 15)      \
  XLSTM_R(u, 8, 30, 16, 17) XLSTM_R(u, 9, 31, 18, 19) XLSTM_R(u, 10, 30, 20, 21)                             \
  XLSTM_R(u, 11, 31, 22, 23) XLSTM_R(u, 12, 30, 24, 25) XLSTM_R(u, 13, 31, 26, 27)
#define XLSTM_ZERO(i) "vxorps %%xmm" #i ", %%xmm" #i ", %%xmm" #i "\n\t"
#define XLSTM_SAVE(i) "vmovaps %%zmm" #i ", " #i "*64(%[t])\n\t"

void kernel_full(int nr, int64_t k, float alpha, const float* Ap, const float* Bp, float beta, float* C,
                 int64_t ldc) {
  alignas(64) float tile[MR * NR];
  for (int r = 0; r < MR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 31), _MM_HINT_T0);
  }
  int64_t k4 = k / 4, kr = k % 4;
  float* t = tile;
  asm volatile(
      XLSTM_ZERO(0) XLSTM_ZERO(1) XLSTM_ZERO(2) XLSTM_ZERO(3) XLSTM_ZERO(4) XLSTM_ZERO(5) XLSTM_ZERO(6)
      XLSTM_ZERO(7) XLSTM_ZERO(8) XLSTM_ZERO(9) XLSTM_ZERO(10) XLSTM_ZERO(11) XLSTM_ZERO(12) XLSTM_ZERO(13)
      XLSTM_ZERO(14) XLSTM_ZERO(15) XLSTM_ZERO(16) XLSTM_ZERO(17) XLSTM_ZERO(18) XLSTM_ZERO(19) XLSTM_ZERO(20)
      XLSTM_ZERO(21) XLSTM_ZERO(22) XLSTM_ZERO(23) XLSTM_ZERO(24) XLSTM_ZERO(25) XLSTM_ZERO(26) XLSTM_ZERO(27)
      "test %[k4], %[k4]\n\t"
      "jz 2f\n\t"
      ".p2align 5\n\t"
      "1:\n\t"
      XLSTM_STEP(0) XLSTM_STEP(1)
      "prefetcht0 512(%[a])\n\t"
      XLSTM_STEP(2) XLSTM_STEP(3)
      "prefetcht0 576(%[a])\n\t"
      "add $224, %[a]\n\t"
      "add $512, %[b]\n\t"
      "dec %[k4]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "test %[kr], %[kr]\n\t"
      "jz 4f\n\t"
      "3:\n\t"
      XLSTM_STEP(0)
      "add $56, %[a]\n\t"
      "add $128, %[b]\n\t"
      "dec %[kr]\n\t"
      "jnz 3b\n\t"
      "4:\n\t"
      XLSTM_SAVE(0) XLSTM_SAVE(1) XLSTM_SAVE(2) XLSTM_SAVE(3) XLSTM_SAVE(4) XLSTM_SAVE(5) XLSTM_SAVE(6)
      XLSTM_SAVE(7) XLSTM_SAVE(8) XLSTM_SAVE(9) XLSTM_SAVE(10) XLSTM_SAVE(11) XLSTM_SAVE(12) XLSTM_SAVE(13)
      XLSTM_SAVE(14) XLSTM_SAVE(15) XLSTM_SAVE(16) XLSTM_SAVE(17) XLSTM_SAVE(18) XLSTM_SAVE(19) XLSTM_SAVE(20)
      XLSTM_SAVE(21) XLSTM_SAVE(22) XLSTM_SAVE(23) XLSTM_SAVE(24) XLSTM_SAVE(25) XLSTM_SAVE(26) XLSTM_SAVE(27)
      : [a] "+r"(Ap), [b] "+r"(Bp), [k4] "+r"(k4), [kr] "+r"(kr)
      : [t] "r"(t)
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
        "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");

  const __mmask16 m0 = nr >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? static_cast<__mmask16>(0xFFFF)
                       : nr > 16 ? static_cast<__mmask16>((1u << (nr - 16)) - 1)
                                 : static_cast<__mmask16>(0);
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  for (int r = 0; r < MR; ++r) {
    float* cr = C + r * ldc;
    __m512 x0 = _mm512_mul_ps(va, _mm512_load_ps(tile + r * NR));
    __m512 x1 = _mm512_mul_ps(va, _mm512_load_ps(tile + r * NR + 16));
    if (beta == 1.f) {
      x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(m0, cr));
      x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, cr + 16));
    } else if (beta != 0.f) {
      x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), x0);
      x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), x1);
    }
    _mm512_mask_storeu_ps(cr, m0, x0);
    _mm512_mask_storeu_ps(cr + 16, m1, x1);
  }
}
#undef XLSTM_R
#undef XLSTM_STEP
#undef XLSTM_ZERO
#undef XLSTM_SAVE

using KernelFn = void (*)(int, int64_t, float, const float*, const float*, float, float*, int64_t);
constexpr KernelFn kKernels[MR + 1] = {nullptr,    kernel<1>,  kernel<2>,  kernel<3>,  kernel<4>,
                                       kernel<5>,  kernel<6>,  kernel<7>,  kernel<8>,  kernel<9>,
                                       kernel<10>, kernel<11>, kernel<12>, kernel<13>, kernel_full};

void macro(int64_t m, int64_t n, int64_t k, float alpha, const float* Ap, const float* Bp, float beta, float* C,
           int64_t ldc) {
  for (int64_t j0 = 0; j0 < n; j0 += NR) {
    const int nr = static_cast<int>(std::min<int64_t>(NR, n - j0));
    const float* bs = Bp + j0 * k;
    int64_t i0 = 0;
    for (; i0 + MR <= m; i0 += MR) kernel_full(nr, k, alpha, Ap + i0 * k, bs, beta, C + i0 * ldc + j0, ldc);
    if (i0 < m) kKernels[m - i0](nr, k, alpha, Ap + i0 * k, bs, beta, C + i0 * ldc + j0, ldc);
  }
}

void pack_a(bool trans, int64_t m, int64_t k, const float* A, int64_t lda, float* Ap) {
  pack_a_generic<MR>(trans, m, k, A, lda, Ap);
}
void pack_b(bool trans, int64_t k, int64_t n, const float* B, int64_t ldb, float* Bp) {
  pack_b_generic<NR>(trans, k, n, B, ldb, Bp);
}

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
  static const Isa isa{"avx512", MR, NR, 256, 504, 4096, pack_a, pack_b, macro, gemv_n, gemv_t};
  return isa;
}

}  // namespace gemm_detail
}  // namespace xlstm
