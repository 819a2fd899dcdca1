// bf16-weight linear map and sum, AVX-512 (see bf16.h). Register tile: 4 outputs x up to 4 rows of x, 16 lanes
// along `in`; a bf16 weight vector is widened with vpmovzxwd + a 16-bit shift (exact), then one FMA per (output,
// row). The tail of `in` uses masked loads (zeros contribute nothing). The AVX512_BF16 variant takes x already
// rounded to bf16 and does 32 products per vdpbf16ps; it is compiled for that extension only (target attribute)
// and called only when CPUID reports it.
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off

#include <cstdint>

#include "kernels/bf16.h"

namespace xlstm {
namespace bf16_detail {
namespace {

inline __m512 widen16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

template <int NO, int NR>
void tile(float* y, const float* x, const uint16_t* w, const float* bias, int64_t in, int64_t out, int64_t o,
          int64_t r) {
  __m512 acc[NO][NR];
  for (int a = 0; a < NO; ++a)
    for (int b = 0; b < NR; ++b) acc[a][b] = _mm512_setzero_ps();
  int64_t i = 0;
  // the next tile's weight rows follow these in memory: prefetch them one tile ahead (short rows, e.g. in = 768,
  // are too short for the hardware prefetcher to ramp up on four interleaved streams)
  const uint16_t* ahead = w + (o + NO) * in;
  for (; i + 16 <= in; i += 16) {
    if (NR == 1 && (i & 31) == 0)
      for (int a = 0; a < NO; ++a) _mm_prefetch(reinterpret_cast<const char*>(ahead + a * in + i), _MM_HINT_T0);
    __m512 wv[NO];
    for (int a = 0; a < NO; ++a) wv[a] = widen16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + (o + a) * in + i)));
    for (int b = 0; b < NR; ++b) {
      const __m512 xv = _mm512_loadu_ps(x + (r + b) * in + i);
      for (int a = 0; a < NO; ++a) acc[a][b] = _mm512_fmadd_ps(wv[a], xv, acc[a][b]);
    }
  }
  if (i < in) {
    const __mmask16 m = static_cast<__mmask16>((1u << (in - i)) - 1);
    __m512 wv[NO];
    for (int a = 0; a < NO; ++a) wv[a] = widen16(_mm256_maskz_loadu_epi16(m, w + (o + a) * in + i));
    for (int b = 0; b < NR; ++b) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + (r + b) * in + i);
      for (int a = 0; a < NO; ++a) acc[a][b] = _mm512_fmadd_ps(wv[a], xv, acc[a][b]);
    }
  }
  for (int a = 0; a < NO; ++a) {
    const float bb = bias ? bias[o + a] : 0.f;
    for (int b = 0; b < NR; ++b) y[(r + b) * out + o + a] = _mm512_reduce_add_ps(acc[a][b]) + bb;
  }
}

template <int NR>
void outputs(float* y, const float* x, const uint16_t* w, const float* bias, int64_t in, int64_t out, int64_t o0,
             int64_t o1, int64_t r) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) tile<4, NR>(y, x, w, bias, in, out, o, r);
  for (; o < o1; ++o) tile<1, NR>(y, x, w, bias, in, out, o, r);
}

// ---- AVX512_BF16: x and w both bf16, 32 products per instruction
#if defined(__GNUC__) || defined(__clang__)
#define XLSTM_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#else
#define XLSTM_BF16_TARGET
#endif

template <int NO, int NR>
XLSTM_BF16_TARGET void tile_dot(float* y, const uint16_t* xb, const uint16_t* w, const float* bias, int64_t in,
                                int64_t out, int64_t o, int64_t r) {
  __m512 acc[NO][NR];
  for (int a = 0; a < NO; ++a)
    for (int b = 0; b < NR; ++b) acc[a][b] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= in; i += 32) {
    __m512i wv[NO];
    for (int a = 0; a < NO; ++a) wv[a] = _mm512_loadu_si512(w + (o + a) * in + i);
    for (int b = 0; b < NR; ++b) {
      const __m512i xv = _mm512_loadu_si512(xb + (r + b) * in + i);
      for (int a = 0; a < NO; ++a) acc[a][b] = _mm512_dpbf16_ps(acc[a][b], (__m512bh)xv, (__m512bh)wv[a]);
    }
  }
  if (i < in) {
    const __mmask32 m = static_cast<__mmask32>((in - i) >= 32 ? ~0u : ((1u << (in - i)) - 1));
    __m512i wv[NO];
    for (int a = 0; a < NO; ++a) wv[a] = _mm512_maskz_loadu_epi16(m, w + (o + a) * in + i);
    for (int b = 0; b < NR; ++b) {
      const __m512i xv = _mm512_maskz_loadu_epi16(m, xb + (r + b) * in + i);
      for (int a = 0; a < NO; ++a) acc[a][b] = _mm512_dpbf16_ps(acc[a][b], (__m512bh)xv, (__m512bh)wv[a]);
    }
  }
  for (int a = 0; a < NO; ++a) {
    const float bb = bias ? bias[o + a] : 0.f;
    for (int b = 0; b < NR; ++b) y[(r + b) * out + o + a] = _mm512_reduce_add_ps(acc[a][b]) + bb;
  }
}

template <int NR>
XLSTM_BF16_TARGET void outputs_dot(float* y, const uint16_t* xb, const uint16_t* w, const float* bias, int64_t in,
                                   int64_t out, int64_t o0, int64_t o1, int64_t r) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) tile_dot<4, NR>(y, xb, w, bias, in, out, o, r);
  for (; o < o1; ++o) tile_dot<1, NR>(y, xb, w, bias, in, out, o, r);
}

}  // namespace

void linear_avx512(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                   int64_t out, int64_t o0, int64_t o1) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) outputs<4>(y, x, w, bias, in, out, o0, o1, r);
  for (; r < rows; ++r) outputs<1>(y, x, w, bias, in, out, o0, o1, r);
}

XLSTM_BF16_TARGET void linear_avx512bf16(float* y, const uint16_t* xb, const uint16_t* w, const float* bias,
                                         int64_t rows, int64_t in, int64_t out, int64_t o0, int64_t o1) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) outputs_dot<4>(y, xb, w, bias, in, out, o0, o1, r);
  for (; r < rows; ++r) outputs_dot<1>(y, xb, w, bias, in, out, o0, o1, r);
}

double sum_avx512(const uint16_t* x, int64_t n) {
  double total = 0;
  for (int64_t i0 = 0; i0 < n; i0 += 4096) {
    const int64_t i1 = i0 + 4096 < n ? i0 + 4096 : n;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = i0;
    for (; i + 32 <= i1; i += 32) {
      s0 = _mm512_add_ps(s0, widen16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
      s1 = _mm512_add_ps(s1, widen16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 16))));
    }
    for (; i < i1; i += 16) {
      const int64_t left = i1 - i;
      const __mmask16 m = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
      s0 = _mm512_add_ps(s0, widen16(_mm256_maskz_loadu_epi16(m, x + i)));
    }
    total += _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  }
  return total;
}

}  // namespace bf16_detail
}  // namespace xlstm
