// The AVX-512 GEMM's 14 x 32 register tiles (see gemm_avx512.cc for the design), written once for two
// multiply-add instructions. A file includes this inside its own anonymous namespace after defining
//   XLSTM_TILE_INSN         the accumulate instruction as an assembler string: "vfmadd231ps" (float32: acc += a b)
//                           or "vdpbf16ps" (bf16 pairs: acc += a.lo b.lo + a.hi b.hi, one float32 lane per pair);
//   XLSTM_TILE_FMA(a, b, c) the same as an intrinsic expression returning the new accumulator c, for the edge tiles;
//   XLSTM_TILE_ATTR         the edge tiles' function attributes (the target extension of XLSTM_TILE_FMA, or nothing).
// With "vdpbf16ps" every "float" the tiles load is a dword holding two bf16 values of consecutive k (the low half the
// even one), so k counts pairs and the panel strides count dwords; the C update (alpha, beta, masks) is unchanged.
// The packing (plain copies: bits are moved, never converted) comes along. The header undefines the three macros at
// its end. No include guard: each including file gets its own copy of the kernels.

constexpr int MR = 14, NR = 32;

inline __mmask16 mask_lo(int nr) { return nr >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1); }
inline __mmask16 mask_hi(int nr) {
  return nr >= 32 ? static_cast<__mmask16>(0xFFFF) : nr > 16 ? static_cast<__mmask16>((1u << (nr - 16)) - 1) : static_cast<__mmask16>(0);
}

// Edge tile of R < MR rows. KMAJ: element (r, q) of op(A) at a[q*cs + r] (rs == 1); else at a[r*rs + q] (cs == 1).
// One L2 prefetch per step at pf + q*pfs (bytes).
template <int R, bool KMAJ>
XLSTM_TILE_ATTR void kernel(int nr, int64_t k, float alpha, const float* __restrict a, int64_t rs, int64_t cs,
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
      c0[r] = XLSTM_TILE_FMA(av, b0, c0[r]);
      c1[r] = XLSTM_TILE_FMA(av, b1, c1[r]);
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
  XLSTM_TILE_INSN " %%zmm28, %%zmm" #t ", %%zmm" #c0 "\n\t" \
  XLSTM_TILE_INSN " %%zmm29, %%zmm" #t ", %%zmm" #c1 "\n\t"
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

#undef XLSTM_TILE_INSN
#undef XLSTM_TILE_FMA
#undef XLSTM_TILE_ATTR
