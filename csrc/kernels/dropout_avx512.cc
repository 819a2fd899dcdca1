// The dropout kernels' AVX-512 variants (see dropout.h; compiled with -mavx512f/bw/vl/dq and called only when
// simd_level() is AVX512): Philox4x32-10 on 16 counters at once, one per 32-bit lane, the same rounds as
// philox.h's scalar function (the products' high and low words from vpmuludq on the even and the odd lanes). The four
// words of the 16 blocks are then transposed into element order (element 4j + q is word q of block j), so the keep
// decision, the scaled output and the mask bytes are whole-vector operations. Same bits as the scalar kernel; test/20
// compares both with a JavaScript Philox at every SIMD level. The backward masks 16 elements by their mask bytes.
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off

#include "kernels/dropout.h"
#include "kernels/philox.h"

namespace xlstm {
namespace dropout_detail {
namespace {

// hi:lo = a * m per 32-bit lane (m the same in every lane)
inline void mul_hi_lo(__m512i a, __m512i m, __m512i* hi, __m512i* lo) {
  const __m512i even = _mm512_mul_epu32(a, m);                      // lanes 2i: 64-bit products in 64-bit lane i
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);  // lanes 2i+1
  *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

// The words of blocks j0 .. j0+15 (counter (j mod 2^32, j div 2^32, 0, 0)), in element order: w[v] holds elements
// 4 j0 + 16 v .. 4 j0 + 16 v + 15.
inline void philox_16_blocks(__m512i w[4], int64_t j0, uint32_t key0, uint32_t key1) {
  const __m512i j_lo = _mm512_add_epi64(_mm512_set1_epi64(j0), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  const __m512i j_hi = _mm512_add_epi64(j_lo, _mm512_set1_epi64(8));
  __m512i c0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(j_lo)), _mm512_cvtepi64_epi32(j_hi), 1);
  __m512i c1 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(j_lo, 32))),
                                  _mm512_cvtepi64_epi32(_mm512_srli_epi64(j_hi, 32)), 1);
  __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(0xD2511F53u)), m1 = _mm512_set1_epi32(static_cast<int>(0xCD9E8D57u));
  uint32_t k0 = key0, k1 = key1;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
    __m512i hi0, lo0, hi1, lo1;
    mul_hi_lo(c0, m0, &hi0, &lo0);
    mul_hi_lo(c2, m1, &hi1, &lo1);
    c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
    c1 = lo1;
    c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
    c3 = lo0;
  }
  // 128-bit lane L of u[k]: the four words of block 4L + k; then w[v] = lane v of u[0], u[1], u[2], u[3]
  const __m512i t0 = _mm512_unpacklo_epi32(c0, c1), t1 = _mm512_unpackhi_epi32(c0, c1);
  const __m512i t2 = _mm512_unpacklo_epi32(c2, c3), t3 = _mm512_unpackhi_epi32(c2, c3);
  const __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
  const __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
  const __m512i ab_lo = _mm512_shuffle_i32x4(u0, u1, 0x44), cd_lo = _mm512_shuffle_i32x4(u2, u3, 0x44);
  const __m512i ab_hi = _mm512_shuffle_i32x4(u0, u1, 0xEE), cd_hi = _mm512_shuffle_i32x4(u2, u3, 0xEE);
  w[0] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0x88);
  w[1] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0xDD);
  w[2] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0x88);
  w[3] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0xDD);
}

}  // namespace

int64_t forward_blocks_avx512(float* y, uint8_t* mask, const float* x, int64_t n, int64_t lo, int64_t hi,
                              uint32_t threshold, float scale, uint32_t key0, uint32_t key1) {
  const __m512i thr = _mm512_set1_epi32(static_cast<int>(threshold));
  const __m512 sc = _mm512_set1_ps(scale);
  const __m512i one = _mm512_set1_epi32(1);
  int64_t j = lo;
  for (; j + 16 <= hi && 4 * (j + 16) <= n; j += 16) {
    __m512i w[4];
    philox_16_blocks(w, j, key0, key1);
    for (int v = 0; v < 4; ++v) {
      const int64_t i = 4 * j + 16 * v;
      const __mmask16 keep = _mm512_cmpge_epu32_mask(_mm512_srli_epi32(w[v], 8), thr);
      _mm512_storeu_ps(y + i, _mm512_maskz_mul_ps(keep, _mm512_loadu_ps(x + i), sc));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(mask + i), _mm512_cvtepi32_epi8(_mm512_maskz_mov_epi32(keep, one)));
    }
  }
  return j;
}

int64_t backward_avx512(float* dx, const float* dy, const uint8_t* mask, int64_t lo, int64_t hi, float scale) {
  const __m512 sc = _mm512_set1_ps(scale);
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    const __m128i m = _mm_loadu_si128(reinterpret_cast<const __m128i*>(mask + i));
    _mm512_storeu_ps(dx + i, _mm512_maskz_mul_ps(_mm_test_epi8_mask(m, m), _mm512_loadu_ps(dy + i), sc));
  }
  return i;
}

}  // namespace dropout_detail
}  // namespace xlstm
