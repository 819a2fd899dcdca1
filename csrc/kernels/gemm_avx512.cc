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

constexpr int MR = 14, NR = 32;

inline __mmask16 mask_lo(int nr) { return nr >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1); }
inline __mmask16 mask_hi(int nr) {
  return nr >= 32 ? static_cast<__mmask16>(0xFFFF) : nr > 16 ? static_cast<__mmask16>((1u << (nr - 16)) - 1) : static_cast<__mmask16>(0);
}

// Edge tile of R < MR rows. KMAJ: element (r, q) of op(A) at a[q*cs + r] (rs == 1); else at a[r*rs + q] (cs == 1).
// One L2 prefetch per step at pf + q*pfs (bytes).
template <int R, bool KMAJ>
void kernel(int nr, int64_t k, float alpha, const float* __restrict a, int64_t rs, int64_t cs,
            const float* __restrict b, int64_t bks, float beta, float* __restrict C, int64_t ldc, const char* pf,
            int64_t pfs) {
  __m512 c0[R], c1[R];
  const __mmask16 m0 = mask_lo(nr), m1 = mask_hi(nr);
#pragma GCC unroll 14
  for (int r = 0; r < R; ++r) {
    c0[r] = _mm512_setzero_ps();
    c1[r] = _mm512_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 31), _MM_HINT_T0);
  }
  for (int64_t q = 0; q < k; ++q) {
    _mm_prefetch(pf + q * pfs, _MM_HINT_T1);
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, b + q * bks);
    const __m512 b1 = _mm512_maskz_loadu_ps(m1, b + q * bks + 16);
#pragma GCC unroll 14
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(KMAJ ? a[q * cs + r] : a[r * rs + q]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.f) {
#pragma GCC unroll 14
    for (int r = 0; r < R; ++r) {
      float* cr = C + r * ldc;
      _mm512_mask_storeu_ps(cr, m0, _mm512_mul_ps(va, c0[r]));
      _mm512_mask_storeu_ps(cr + 16, m1, _mm512_mul_ps(va, c1[r]));
    }
  } else {
    // alpha * acc first, then + beta * C: the same rounding as the full-tile kernels
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
    for (int r = 0; r < R; ++r) {
      float* cr = C + r * ldc;
      _mm512_mask_storeu_ps(cr, m0, _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), _mm512_mul_ps(va, c0[r])));
      _mm512_mask_storeu_ps(cr + 16, m1,
                            _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), _mm512_mul_ps(va, c1[r])));
    }
  }
}

// ---- full 14 x 32 tiles in inline assembly ----------------------------------------------------------------------
// zmm0..27 accumulate row r in zmm(2r), zmm(2r+1); zmm28/29 hold the op(B) row; zmm30/31 the broadcast op(A)
// values. After the loop zmm28/29 hold alpha/beta for the C update. Variants: B rows full (32 columns) or masked by
// k1/k2; op(A) k-major (with an L1 prefetch 8 steps ahead when packed, and the L2 prefetch stream pf/pfs) or rows
// in place.
#define XLSTM_FMA2(t, c0, c1)                            \
  "vfmadd231ps %%zmm28, %%zmm" #t ", %%zmm" #c0 "\n\t" \
  "vfmadd231ps %%zmm29, %%zmm" #t ", %%zmm" #c1 "\n\t"
#define XLSTM_LOADB_FULL "vmovups (%[b]), %%zmm28\n\t" "vmovups 64(%[b]), %%zmm29\n\t"
#define XLSTM_LOADB_MASK "vmovups (%[b]), %%zmm28%{%%k1%}%{z%}\n\t" "vmovups 64(%[b]), %%zmm29%{%%k2%}%{z%}\n\t"
// k-major op(A): row r of the step at r*4(a)
#define XLSTM_RK(r, t, c0, c1) "vbroadcastss " #r "*4(%[a]), %%zmm" #t "\n\t" XLSTM_FMA2(t, c0, c1)
#define XLSTM_STEPK(LOADB, PFA)                                                                                    \
  PFA                                                                                                              \
  "prefetcht1 (%[pf])\n\t"                                                                                         \
  LOADB                                                                                                            \
  XLSTM_RK(0, 30, 0, 1) XLSTM_RK(1, 31, 2, 3) XLSTM_RK(2, 30, 4, 5) XLSTM_RK(3, 31, 6, 7) XLSTM_RK(4, 30, 8, 9)   \
  XLSTM_RK(5, 31, 10, 11) XLSTM_RK(6, 30, 12, 13) XLSTM_RK(7, 31, 14, 15) XLSTM_RK(8, 30, 16, 17)                 \
  XLSTM_RK(9, 31, 18, 19) XLSTM_RK(10, 30, 20, 21) XLSTM_RK(11, 31, 22, 23) XLSTM_RK(12, 30, 24, 25)              \
  XLSTM_RK(13, 31, 26, 27)                                                                                        \
  "add %[as], %[a]\n\t"                                                                                           \
  "add %[bs], %[b]\n\t"                                                                                           \
  "add %[pfs], %[pf]\n\t"
#define XLSTM_PFA "prefetcht0 (%[a],%[as],8)\n\t"
// row-major op(A): row 4g+j of step u at u*4(a_g + j*lda); a0, a4, a8, a12 are the group bases, l1 = lda, l3 = 3 lda
#define XLSTM_RR(u, base, idx, t, c0, c1) "vbroadcastss " #u "*4(%[" #base "]" idx "), %%zmm" #t "\n\t" XLSTM_FMA2(t, c0, c1)
#define XLSTM_STEPR(LOADB, u)                                                                                    \
  LOADB                                                                                                          \
  XLSTM_RR(u, a0, "", 30, 0, 1) XLSTM_RR(u, a0, ",%[l1],1", 31, 2, 3) XLSTM_RR(u, a0, ",%[l1],2", 30, 4, 5)      \
  XLSTM_RR(u, a0, ",%[l3],1", 31, 6, 7) XLSTM_RR(u, a4, "", 30, 8, 9) XLSTM_RR(u, a4, ",%[l1],1", 31, 10, 11)    \
  XLSTM_RR(u, a4, ",%[l1],2", 30, 12, 13) XLSTM_RR(u, a4, ",%[l3],1", 31, 14, 15) XLSTM_RR(u, a8, "", 30, 16, 17) \
  XLSTM_RR(u, a8, ",%[l1],1", 31, 18, 19) XLSTM_RR(u, a8, ",%[l1],2", 30, 20, 21)                                \
  XLSTM_RR(u, a8, ",%[l3],1", 31, 22, 23) XLSTM_RR(u, a12, "", 30, 24, 25)                                       \
  XLSTM_RR(u, a12, ",%[l1],1", 31, 26, 27)                                                                       \
  "add %[bs], %[b]\n\t"
#define XLSTM_ZERO(i) "vxorps %%xmm" #i ", %%xmm" #i ", %%xmm" #i "\n\t"
#define XLSTM_ZERO_ALL                                                                                            \
  XLSTM_ZERO(0) XLSTM_ZERO(1) XLSTM_ZERO(2) XLSTM_ZERO(3) XLSTM_ZERO(4) XLSTM_ZERO(5) XLSTM_ZERO(6) XLSTM_ZERO(7) \
  XLSTM_ZERO(8) XLSTM_ZERO(9) XLSTM_ZERO(10) XLSTM_ZERO(11) XLSTM_ZERO(12) XLSTM_ZERO(13) XLSTM_ZERO(14)          \
  XLSTM_ZERO(15) XLSTM_ZERO(16) XLSTM_ZERO(17) XLSTM_ZERO(18) XLSTM_ZERO(19) XLSTM_ZERO(20) XLSTM_ZERO(21)        \
  XLSTM_ZERO(22) XLSTM_ZERO(23) XLSTM_ZERO(24) XLSTM_ZERO(25) XLSTM_ZERO(26) XLSTM_ZERO(27)
// C update of one row from accumulators c0, c1 at address disp(addr): beta == 0 (Z) or general beta (B)
#define XLSTM_CZ(addr, c0, c1)                                        \
  "vmulps %%zmm28, %%zmm" #c0 ", %%zmm" #c0 "\n\t"                    \
  "vmulps %%zmm28, %%zmm" #c1 ", %%zmm" #c1 "\n\t"                    \
  "vmovups %%zmm" #c0 ", " addr "%{%%k1%}\n\t"                       \
  "vmovups %%zmm" #c1 ", 64" addr "%{%%k2%}\n\t"
#define XLSTM_CB(addr, c0, c1)                                        \
  "vmulps %%zmm28, %%zmm" #c0 ", %%zmm" #c0 "\n\t"                    \
  "vmulps %%zmm28, %%zmm" #c1 ", %%zmm" #c1 "\n\t"                    \
  "vfmadd231ps " addr ", %%zmm29, %%zmm" #c0 "%{%%k1%}\n\t"          \
  "vfmadd231ps 64" addr ", %%zmm29, %%zmm" #c1 "%{%%k2%}\n\t"        \
  "vmovups %%zmm" #c0 ", " addr "%{%%k1%}\n\t"                       \
  "vmovups %%zmm" #c1 ", 64" addr "%{%%k2%}\n\t"
// the 14 rows at (c), (c,ldc), (c,2ldc), (c,3ldc) with 3ldc in register t3, c += 4 ldc after every 4 rows
#define XLSTM_CALL(M)                                                                                  \
  M("(%[c])", 0, 1) M("(%[c],%[ldc],1)", 2, 3) M("(%[c],%[ldc],2)", 4, 5) M("(%[c],%[t3],1)", 6, 7)   \
  "lea (%[c],%[ldc],4), %[c]\n\t"                                                                      \
  M("(%[c])", 8, 9) M("(%[c],%[ldc],1)", 10, 11) M("(%[c],%[ldc],2)", 12, 13) M("(%[c],%[t3],1)", 14, 15) \
  "lea (%[c],%[ldc],4), %[c]\n\t"                                                                      \
  M("(%[c])", 16, 17) M("(%[c],%[ldc],1)", 18, 19) M("(%[c],%[ldc],2)", 20, 21) M("(%[c],%[t3],1)", 22, 23) \
  "lea (%[c],%[ldc],4), %[c]\n\t"                                                                      \
  M("(%[c])", 24, 25) M("(%[c],%[ldc],1)", 26, 27)
// Epilogue: alpha/beta into zmm28/29, t3 = 3 ldc, then one of the two C updates (k1/k2 mask the columns).
#define XLSTM_EPILOGUE                          \
  "vbroadcastss %[alpha], %%zmm28\n\t"          \
  "vbroadcastss %[beta], %%zmm29\n\t"           \
  "lea (%[ldc],%[ldc],2), %[t3]\n\t"            \
  "cmpl $0, %[bz]\n\t"                          \
  "jne 6f\n\t"                                  \
  XLSTM_CALL(XLSTM_CB)                          \
  "jmp 7f\n\t"                                  \
  "6:\n\t"                                      \
  XLSTM_CALL(XLSTM_CZ)                          \
  "7:\n\t"
#define XLSTM_CLOBBERS                                                                                            \
  "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
      "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",   \
      "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k1", "k2"
// k loop unrolled by 4, then the remainder, then the C update
#define XLSTM_LOOP(STEP)        \
  XLSTM_ZERO_ALL                \
  "kmovw %[m0], %%k1\n\t"       \
  "kmovw %[m1], %%k2\n\t"       \
  "test %[k4], %[k4]\n\t"       \
  "jz 2f\n\t"                   \
  ".p2align 5\n\t"              \
  "1:\n\t"                      \
  STEP STEP STEP STEP           \
  "dec %[k4]\n\t"               \
  "jnz 1b\n\t"                  \
  "2:\n\t"                      \
  "test %[kr], %[kr]\n\t"       \
  "jz 4f\n\t"                   \
  "3:\n\t"                      \
  STEP                          \
  "dec %[kr]\n\t"               \
  "jnz 3b\n\t"                  \
  "4:\n\t"                      \
  XLSTM_EPILOGUE

inline void prefetch_c(const float* C, int64_t ldc) {
  for (int r = 0; r < MR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 31), _MM_HINT_T0);
  }
}

// Full tile, k-major op(A): step q's 14 values at a + q*cs, op(B) row q at b + q*bks (nr columns; MASK when
// nr < 32); PACKED: op(A) is a packed sliver (prefetched 8 steps ahead into L1). One L2 prefetch per step at
// pf + q*pfs (bytes).
template <bool MASK, bool PACKED>
void kernel_full_k(int nr, int64_t k, float alpha, const float* a, int64_t cs, const float* b, int64_t bks,
                   float beta, float* C, int64_t ldc, const char* pf, int64_t pfs) {
  prefetch_c(C, ldc);
  const __mmask16 m0 = mask_lo(nr), m1 = mask_hi(nr);
  const int bz = beta == 0.f;
  const int64_t as = cs * 4, bs = bks * 4, ldcb = ldc * 4;
  int64_t k4 = k / 4, kr = k % 4, t3;
#define XLSTM_ASM(LOADB, PFA)                                                                                     \
  asm volatile(XLSTM_LOOP(XLSTM_STEPK(LOADB, PFA))                                                                \
               : [a] "+r"(a), [b] "+r"(b), [k4] "+r"(k4), [kr] "+r"(kr), [c] "+r"(C), [t3] "=&r"(t3), [pf] "+r"(pf) \
               : [as] "r"(as), [bs] "r"(bs), [pfs] "r"(pfs), [ldc] "r"(ldcb), [m0] "m"(m0), [m1] "m"(m1),          \
                 [alpha] "m"(alpha), [beta] "m"(beta), [bz] "m"(bz)                                               \
               : XLSTM_CLOBBERS)
  if (MASK) {
    if (PACKED) XLSTM_ASM(XLSTM_LOADB_MASK, XLSTM_PFA);
    else XLSTM_ASM(XLSTM_LOADB_MASK, "");
  } else {
    if (PACKED) XLSTM_ASM(XLSTM_LOADB_FULL, XLSTM_PFA);
    else XLSTM_ASM(XLSTM_LOADB_FULL, "");
  }
#undef XLSTM_ASM
}

// Full tile, op(A) rows in place: row r at a + r*lda (steps contiguous), op(B) row q at b + q*bks (nr columns;
// MASK when nr < 32).
template <bool MASK>
void kernel_full_r(int nr, int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t bks,
                   float beta, float* C, int64_t ldc) {
  prefetch_c(C, ldc);
  const __mmask16 m0 = mask_lo(nr), m1 = mask_hi(nr);
  const int bz = beta == 0.f;
  const int64_t l1 = lda * 4, l3 = 3 * l1, bs = bks * 4, ldcb = ldc * 4;
  const float* a0 = a;
  const float* a4 = a + 4 * lda;
  const float* a8 = a + 8 * lda;
  const float* a12 = a + 12 * lda;
  int64_t k4 = k / 4, kr = k % 4, t3;
#define XLSTM_STEPR4(LOADB)                                                                    \
  XLSTM_STEPR(LOADB, 0) XLSTM_STEPR(LOADB, 1) XLSTM_STEPR(LOADB, 2) XLSTM_STEPR(LOADB, 3)     \
  "add $16, %[a0]\n\t" "add $16, %[a4]\n\t" "add $16, %[a8]\n\t" "add $16, %[a12]\n\t"
#define XLSTM_STEPR1(LOADB) \
  XLSTM_STEPR(LOADB, 0) "add $4, %[a0]\n\t" "add $4, %[a4]\n\t" "add $4, %[a8]\n\t" "add $4, %[a12]\n\t"
#define XLSTM_ASM(LOADB)                                                                                           \
  asm volatile(XLSTM_ZERO_ALL                                                                                      \
               "kmovw %[m0], %%k1\n\t"                                                                             \
               "kmovw %[m1], %%k2\n\t"                                                                             \
               "test %[k4], %[k4]\n\t"                                                                             \
               "jz 2f\n\t"                                                                                         \
               ".p2align 5\n\t"                                                                                    \
               "1:\n\t"                                                                                            \
               XLSTM_STEPR4(LOADB)                                                                                 \
               "dec %[k4]\n\t"                                                                                     \
               "jnz 1b\n\t"                                                                                        \
               "2:\n\t"                                                                                            \
               "test %[kr], %[kr]\n\t"                                                                             \
               "jz 4f\n\t"                                                                                         \
               "3:\n\t"                                                                                            \
               XLSTM_STEPR1(LOADB)                                                                                 \
               "dec %[kr]\n\t"                                                                                     \
               "jnz 3b\n\t"                                                                                        \
               "4:\n\t"                                                                                            \
               XLSTM_EPILOGUE                                                                                      \
               : [a0] "+r"(a0), [a4] "+r"(a4), [a8] "+r"(a8), [a12] "+r"(a12), [b] "+r"(b), [k4] "+r"(k4),         \
                 [kr] "+r"(kr), [c] "+r"(C), [t3] "=&r"(t3)                                                        \
               : [l1] "r"(l1), [l3] "r"(l3), [bs] "r"(bs), [ldc] "r"(ldcb), [m0] "m"(m0), [m1] "m"(m1),            \
                 [alpha] "m"(alpha), [beta] "m"(beta), [bz] "m"(bz)                                                \
               : XLSTM_CLOBBERS)
  if (MASK) XLSTM_ASM(XLSTM_LOADB_MASK);
  else XLSTM_ASM(XLSTM_LOADB_FULL);
#undef XLSTM_ASM
#undef XLSTM_STEPR4
#undef XLSTM_STEPR1
}
#undef XLSTM_FMA2
#undef XLSTM_LOADB_FULL
#undef XLSTM_LOADB_MASK
#undef XLSTM_RK
#undef XLSTM_STEPK
#undef XLSTM_PFA
#undef XLSTM_RR
#undef XLSTM_STEPR
#undef XLSTM_ZERO
#undef XLSTM_ZERO_ALL
#undef XLSTM_CZ
#undef XLSTM_CB
#undef XLSTM_CALL
#undef XLSTM_EPILOGUE
#undef XLSTM_CLOBBERS
#undef XLSTM_LOOP

using EdgeFn = void (*)(int, int64_t, float, const float*, int64_t, int64_t, const float*, int64_t, float, float*,
                        int64_t, const char*, int64_t);
constexpr EdgeFn kEdgeK[MR] = {nullptr,           kernel<1, true>,  kernel<2, true>,  kernel<3, true>,
                               kernel<4, true>,   kernel<5, true>,  kernel<6, true>,  kernel<7, true>,
                               kernel<8, true>,   kernel<9, true>,  kernel<10, true>, kernel<11, true>,
                               kernel<12, true>,  kernel<13, true>};
constexpr EdgeFn kEdgeR[MR] = {nullptr,           kernel<1, false>,  kernel<2, false>,  kernel<3, false>,
                               kernel<4, false>,  kernel<5, false>,  kernel<6, false>,  kernel<7, false>,
                               kernel<8, false>,  kernel<9, false>,  kernel<10, false>, kernel<11, false>,
                               kernel<12, false>, kernel<13, false>};

void macro(int64_t m, int64_t n, int64_t k, float alpha, const APanel& a, const BPanel& b, float beta, float* C,
           int64_t ldc, const Prefetch* pf, int npf) {
  const bool kmaj = a.rs == 1, packed = kmaj && a.cs == MR && a.tile == MR * k;
  const int64_t full = m / MR * MR;
  PrefetchJobs jobs(pf, npf, k);
  const char* pp;
  int64_t ps;
  for (int64_t j0 = 0; j0 < n; j0 += NR) {
    const int nr = static_cast<int>(std::min<int64_t>(NR, n - j0));
    const float* bs = b.p + (j0 / NR) * b.tile;
    const float* at = a.p;
    for (int64_t i0 = 0; i0 < full; i0 += MR, at += a.tile) {
      float* ct = C + i0 * ldc + j0;
      if (kmaj) {
        if (!jobs.next(&pp, &ps)) pp = reinterpret_cast<const char*>(bs), ps = 0;
        if (nr == NR) {
          if (packed) kernel_full_k<false, true>(nr, k, alpha, at, a.cs, bs, b.ks, beta, ct, ldc, pp, ps);
          else kernel_full_k<false, false>(nr, k, alpha, at, a.cs, bs, b.ks, beta, ct, ldc, pp, ps);
        } else {
          if (packed) kernel_full_k<true, true>(nr, k, alpha, at, a.cs, bs, b.ks, beta, ct, ldc, pp, ps);
          else kernel_full_k<true, false>(nr, k, alpha, at, a.cs, bs, b.ks, beta, ct, ldc, pp, ps);
        }
      } else {
        if (nr == NR) kernel_full_r<false>(nr, k, alpha, at, a.rs, bs, b.ks, beta, ct, ldc);
        else kernel_full_r<true>(nr, k, alpha, at, a.rs, bs, b.ks, beta, ct, ldc);
      }
    }
    if (full < m) {
      if (!jobs.next(&pp, &ps)) pp = reinterpret_cast<const char*>(bs), ps = 0;
      (kmaj ? kEdgeK : kEdgeR)[m - full](nr, k, alpha, at, a.rs, a.cs, bs, b.ks, beta, C + full * ldc + j0, ldc, pp,
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
