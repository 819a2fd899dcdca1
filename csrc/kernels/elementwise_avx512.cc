// CPU kernels, AVX-512 variants of the elementwise loops (see elementwise.h); compiled with -mavx512f/bw/vl/dq
// and called only when simd_level() is AVX512. Vectorised exp, log, log1p, tanh and sigmoid below stay within
// a few float32 ulp of the exact values (checked against float64 in test/20.elementwise):
//   exp(x)  = 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, Cody-Waite reduction, Cephes expf polynomial; the scale
//             by 2^n uses vscalefps, which handles overflow to inf and subnormal results exactly.
//   log(x)  = k ln2 + log(m), m in [sqrt(1/2), sqrt(2)) from vgetexpps/vgetmantps (subnormals included); log(m)
//             by the fdlibm/FreeBSD logf kernel, s = f/(2+f), f = m - 1.
//   log1p(u) = log(1+u) - ((1+u) - 1 - u)/(1+u)  (the compensated form; exact for tiny u)
//   tanh(x) = odd Taylor polynomial to x^19 for |x| < 0.625, else sign(x) (1 - 2/(e^{2|x|} + 1))
//   sigmoid(x) = 1/(1+e^{-|x|}) or e^{-|x|}/(1+e^{-|x|}) by the sign of x
//   Phi(x)  = the normal CDF for gelu, from fitted erf / erfc kernels (see vnormal_cdf_pdf)
// The remaining ops compose these exactly like the scalar formulas of elementwise_math.h.
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off

#include "kernels/elementwise.h"

namespace xlstm {
namespace avx512 {
namespace {

using V = __m512;
// Full-mask maskz forms of the intrinsics whose plain forms start from _mm512_undefined_ps (GCC 12 warns).
constexpr __mmask16 kAll = 0xFFFF;

inline V set1(float v) { return _mm512_set1_ps(v); }
inline V vabs(V x) { return _mm512_abs_ps(x); }
inline V sign_of(V x) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))); }
inline V or_bits(V a, V b) { return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b))); }

inline V vexp(V x) {
  // clamp so that n stays finite: e^89 overflows and e^-104 underflows to 0 anyway. min/max return their second
  // operand when one is NaN, so NaN passes through.
  x = _mm512_maskz_max_ps(kAll, set1(-104.0f), _mm512_maskz_min_ps(kAll, set1(89.0f), x));
  V n = _mm512_maskz_roundscale_ps(kAll, _mm512_mul_ps(x, set1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  V r = _mm512_fnmadd_ps(n, set1(0.693359375f), x);  // ln2 = 0.693359375 - 2.12194440e-4 (Cephes)
  r = _mm512_fnmadd_ps(n, set1(-2.12194440e-4f), r);
  V z = _mm512_mul_ps(r, r);
  V p = set1(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, set1(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, set1(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, set1(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, set1(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, set1(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, z, r);
  p = _mm512_add_ps(p, set1(1.0f));
  return _mm512_maskz_scalef_ps(kAll, p, n);
}

inline V vlog(V x) {
  V m = _mm512_maskz_getmant_ps(kAll, x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_nan);  // [1, 2); NaN for x < 0
  V k = _mm512_maskz_getexp_ps(kAll, x);
  __mmask16 big = _mm512_cmp_ps_mask(m, set1(1.41421356237f), _CMP_GT_OQ);
  m = _mm512_mask_mul_ps(m, big, m, set1(0.5f));
  k = _mm512_mask_add_ps(k, big, k, set1(1.0f));
  V f = _mm512_sub_ps(m, set1(1.0f));  // exact (Sterbenz)
  V s = _mm512_div_ps(f, _mm512_add_ps(f, set1(2.0f)));
  V z = _mm512_mul_ps(s, s);
  V w = _mm512_mul_ps(z, z);
  V t1 = _mm512_mul_ps(w, _mm512_fmadd_ps(w, set1(0xf89e26.0p-26f), set1(0xccce13.0p-25f)));
  V t2 = _mm512_mul_ps(z, _mm512_fmadd_ps(w, set1(0x91e9ee.0p-25f), set1(0xaaaaaa.0p-24f)));
  V R = _mm512_add_ps(t2, t1);
  V hfsq = _mm512_mul_ps(_mm512_mul_ps(set1(0.5f), f), f);
  // k ln2_hi - ((hfsq - (s (hfsq + R) + k ln2_lo)) - f)
  V inner = _mm512_fmadd_ps(s, _mm512_add_ps(hfsq, R), _mm512_mul_ps(k, set1(9.0580006145e-06f)));
  V res = _mm512_fmsub_ps(k, set1(6.9313812256e-01f), _mm512_sub_ps(_mm512_sub_ps(hfsq, inner), f));
  res = _mm512_mask_mov_ps(res, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_EQ_OQ), set1(-INFINITY));
  res = _mm512_mask_mov_ps(res, _mm512_cmp_ps_mask(x, set1(INFINITY), _CMP_EQ_OQ), set1(INFINITY));
  return res;
}

inline V vlog1p(V u) {  // u >= 0 here (u = e^{-|x|})
  V w = _mm512_add_ps(set1(1.0f), u);
  V corr = _mm512_div_ps(_mm512_sub_ps(_mm512_sub_ps(w, set1(1.0f)), u), w);
  return _mm512_sub_ps(vlog(w), corr);
}

inline V vtanh(V x) {
  V ax = vabs(x);
  // small |x|: x + x^3 P(x^2), the Taylor series of tanh
  V z = _mm512_mul_ps(x, x);
  V p = set1(-443861162.0 / 1856156927625.0);
  p = _mm512_fmadd_ps(p, z, set1(6404582.0 / 10854718875.0));
  p = _mm512_fmadd_ps(p, z, set1(-929569.0 / 638512875.0));
  p = _mm512_fmadd_ps(p, z, set1(21844.0 / 6081075.0));
  p = _mm512_fmadd_ps(p, z, set1(-1382.0 / 155925.0));
  p = _mm512_fmadd_ps(p, z, set1(62.0 / 2835.0));
  p = _mm512_fmadd_ps(p, z, set1(-17.0 / 315.0));
  p = _mm512_fmadd_ps(p, z, set1(2.0 / 15.0));
  p = _mm512_fmadd_ps(p, z, set1(-1.0 / 3.0));
  V small = _mm512_fmadd_ps(_mm512_mul_ps(x, z), p, x);
  // large |x|: 1 - 2 / (e^{2|x|} + 1), sign restored
  V e = vexp(_mm512_add_ps(ax, ax));
  V large = _mm512_sub_ps(set1(1.0f), _mm512_div_ps(set1(2.0f), _mm512_add_ps(e, set1(1.0f))));
  V y = _mm512_mask_mov_ps(large, _mm512_cmp_ps_mask(ax, set1(0.625f), _CMP_LT_OQ), small);
  return or_bits(vabs(y), sign_of(x));  // tanh is odd: the sign of x (tanh(-0) = -0)
}

inline void vsigmoid_pair(V x, V* s, V* sm) {
  V e = vexp(_mm512_sub_ps(_mm512_setzero_ps(), vabs(x)));
  V r = _mm512_div_ps(set1(1.0f), _mm512_add_ps(set1(1.0f), e));
  V er = _mm512_mul_ps(e, r);
  __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  *s = _mm512_mask_mov_ps(er, pos, r);
  *sm = _mm512_mask_mov_ps(r, pos, er);
}

inline V vsigmoid(V x) {
  V e = vexp(_mm512_sub_ps(_mm512_setzero_ps(), vabs(x)));
  V r = _mm512_div_ps(set1(1.0f), _mm512_add_ps(set1(1.0f), e));
  return _mm512_mask_mov_ps(_mm512_mul_ps(e, r), _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), r);
}

// The normal CDF Phi(x) = erfc(-x/sqrt2)/2 and pdf phi(x) = e^{-x^2/2}/sqrt(2 pi), z = |x|/sqrt2 carried as
// zh + zl and z^2 as hi + lo (exact products by FMA), so the tails keep their relative accuracy:
//   erf(z) = z P(z^2) for small z (x >= 0: z < 1; x < 0: z < 0.5), P a degree-6 fit (rel. error 1.2e-9);
//   erfc(z) = t e^{-z^2} e^{R(t)}, t = 1/(1 + z/2), R a degree-9 fit on z in [0.5, 10.5] (abs. error 1.5e-9);
//   e^{-z^2} = e^{-hi} (1 - lo).  |x| is clamped at 20, where Phi is 0 or 1 in float32.
inline void vnormal_cdf_pdf(V x, V* cdf, V* pdf) {
  V ax = _mm512_maskz_min_ps(kAll, set1(20.0f), vabs(x));
  const V k_hi = set1(0.707106769084930419921875f), k_lo = set1(1.2101617e-08f);
  V zh = _mm512_mul_ps(ax, k_hi);
  V zl = _mm512_fmadd_ps(ax, k_lo, _mm512_fmsub_ps(ax, k_hi, zh));
  V hi = _mm512_mul_ps(zh, zh);
  V lo = _mm512_fmadd_ps(_mm512_add_ps(zh, zh), zl, _mm512_fmsub_ps(zh, zh, hi));
  V ez = _mm512_mul_ps(vexp(_mm512_sub_ps(_mm512_setzero_ps(), hi)), _mm512_sub_ps(set1(1.0f), lo));
  *pdf = _mm512_mul_ps(ez, set1(ew::kInvSqrt2Pi));
  // small z
  V P = set1(7.853862743713302e-05f);
  P = _mm512_fmadd_ps(P, hi, set1(-0.0008010194049956204f));
  P = _mm512_fmadd_ps(P, hi, set1(0.005188327734598014f));
  P = _mm512_fmadd_ps(P, hi, set1(-0.02685381196135994f));
  P = _mm512_fmadd_ps(P, hi, set1(0.11283585149247821f));
  P = _mm512_fmadd_ps(P, hi, set1(-0.3761262582429018f));
  P = _mm512_fmadd_ps(P, hi, set1(1.1283791657267195f));
  V half_erf = _mm512_mul_ps(set1(0.5f), _mm512_fmadd_ps(zl, P, _mm512_mul_ps(zh, P)));
  // large z
  V t = _mm512_div_ps(set1(1.0f), _mm512_fmadd_ps(set1(0.5f), zh, set1(1.0f)));
  V R = set1(0.25299481057542483f);
  R = _mm512_fmadd_ps(R, t, set1(-1.1902587902075061f));
  R = _mm512_fmadd_ps(R, t, set1(2.1932751634930012f));
  R = _mm512_fmadd_ps(R, t, set1(-1.887529522869044f));
  R = _mm512_fmadd_ps(R, t, set1(0.7693323260864091f));
  R = _mm512_fmadd_ps(R, t, set1(-0.38745257217740725f));
  R = _mm512_fmadd_ps(R, t, set1(0.14834936653235015f));
  R = _mm512_fmadd_ps(R, t, set1(0.3661685016020109f));
  R = _mm512_fmadd_ps(R, t, set1(1.0006849509662787f));
  R = _mm512_fmadd_ps(R, t, set1(-1.2655352013044179f));
  V half_erfc = _mm512_mul_ps(_mm512_mul_ps(set1(0.5f), t), _mm512_mul_ps(ez, vexp(R)));
  __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  __mmask16 small = _mm512_mask_cmp_ps_mask(pos, zh, set1(1.0f), _CMP_LT_OQ) |
                    _mm512_mask_cmp_ps_mask(static_cast<__mmask16>(~pos), zh, set1(0.5f), _CMP_LT_OQ);
  V tail = _mm512_mask_mov_ps(half_erfc, pos, _mm512_sub_ps(set1(1.0f), half_erfc));
  V body = _mm512_mask_mov_ps(_mm512_sub_ps(set1(0.5f), half_erf), pos, _mm512_add_ps(set1(0.5f), half_erf));
  *cdf = _mm512_mask_mov_ps(tail, small, body);
}

// log1p(e^{-|x|})
inline V vlog1p_exp_neg_abs(V x) { return vlog1p(vexp(_mm512_sub_ps(_mm512_setzero_ps(), vabs(x)))); }

inline V vgelu_tanh_2u(V x) {  // 2 sqrt(2/pi) (x + kappa x^3)
  V x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  V u = _mm512_mul_ps(set1(ew::kSqrt2OverPi), _mm512_fmadd_ps(set1(ew::kGeluKappa), x3, x));
  return _mm512_add_ps(u, u);
}

template <UnaryOp OP>
inline V fwd(V x, V a, V b) {
  if constexpr (OP == UnaryOp::Exp) return vexp(x);
  else if constexpr (OP == UnaryOp::Log) return vlog(x);
  else if constexpr (OP == UnaryOp::Sigmoid) return vsigmoid(x);
  else if constexpr (OP == UnaryOp::LogSigmoid)
    return _mm512_sub_ps(_mm512_maskz_min_ps(kAll, x, _mm512_setzero_ps()), vlog1p_exp_neg_abs(x));
  else if constexpr (OP == UnaryOp::Tanh) return vtanh(x);
  else if constexpr (OP == UnaryOp::Softplus) {
    V y = _mm512_add_ps(_mm512_maskz_max_ps(kAll, x, _mm512_setzero_ps()), vlog1p_exp_neg_abs(x));
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, set1(ew::kSoftplusThreshold), _CMP_GT_OQ), x);
  } else if constexpr (OP == UnaryOp::Relu)
    return _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps());
  else if constexpr (OP == UnaryOp::Gelu) {
    V cdf, pdf;
    vnormal_cdf_pdf(x, &cdf, &pdf);
    return _mm512_mul_ps(x, cdf);
  } else if constexpr (OP == UnaryOp::GeluTanh) return _mm512_mul_ps(x, vsigmoid(vgelu_tanh_2u(x)));
  else if constexpr (OP == UnaryOp::Silu) return _mm512_mul_ps(x, vsigmoid(x));
  else if constexpr (OP == UnaryOp::Neg) return _mm512_sub_ps(_mm512_setzero_ps(), x);
  else return _mm512_fmadd_ps(a, x, b);  // Affine
}

template <UnaryOp OP>
inline V bwd(V x, V y, V dy, V a) {
  if constexpr (OP == UnaryOp::Exp) return _mm512_mul_ps(dy, y);
  else if constexpr (OP == UnaryOp::Log) return _mm512_div_ps(dy, x);
  else if constexpr (OP == UnaryOp::Sigmoid) return _mm512_mul_ps(dy, _mm512_mul_ps(y, _mm512_sub_ps(set1(1.0f), y)));
  else if constexpr (OP == UnaryOp::LogSigmoid) return _mm512_mul_ps(dy, vsigmoid(_mm512_sub_ps(_mm512_setzero_ps(), x)));
  else if constexpr (OP == UnaryOp::Tanh)
    return _mm512_mul_ps(dy, _mm512_mul_ps(_mm512_sub_ps(set1(1.0f), y), _mm512_add_ps(set1(1.0f), y)));
  else if constexpr (OP == UnaryOp::Softplus)
    return _mm512_mask_mov_ps(_mm512_mul_ps(dy, vsigmoid(x)),
                              _mm512_cmp_ps_mask(x, set1(ew::kSoftplusThreshold), _CMP_GT_OQ), dy);
  else if constexpr (OP == UnaryOp::Relu)
    return _mm512_mask_mov_ps(dy, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps());
  else if constexpr (OP == UnaryOp::Gelu) {
    V cdf, pdf;
    vnormal_cdf_pdf(x, &cdf, &pdf);
    return _mm512_mul_ps(dy, _mm512_fmadd_ps(x, pdf, cdf));
  } else if constexpr (OP == UnaryOp::GeluTanh) {
    V s, sm;
    vsigmoid_pair(vgelu_tanh_2u(x), &s, &sm);
    // s + 2 x s sm sqrt(2/pi) (1 + 3 kappa x^2)
    V poly = _mm512_fmadd_ps(set1(3.0f * ew::kGeluKappa), _mm512_mul_ps(x, x), set1(1.0f));
    V t = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(set1(2.0f), x), s), sm), set1(ew::kSqrt2OverPi));
    return _mm512_mul_ps(dy, _mm512_fmadd_ps(t, poly, s));
  } else if constexpr (OP == UnaryOp::Silu) {
    V s, sm;
    vsigmoid_pair(x, &s, &sm);
    return _mm512_mul_ps(dy, _mm512_mul_ps(s, _mm512_fmadd_ps(x, sm, set1(1.0f))));
  } else if constexpr (OP == UnaryOp::Neg) return _mm512_sub_ps(_mm512_setzero_ps(), dy);
  else return _mm512_mul_ps(a, dy);  // Affine
}

inline __mmask16 tail_mask(int64_t r) { return static_cast<__mmask16>((1u << r) - 1u); }
inline V load(const float* p, int64_t r) { return r >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(tail_mask(r), p); }
inline void store(float* p, V v, int64_t r) {
  if (r >= 16) _mm512_storeu_ps(p, v);
  else _mm512_mask_storeu_ps(p, tail_mask(r), v);
}

template <BinaryOp OP>
inline V bin(V a, V b) {
  if constexpr (OP == BinaryOp::Add) return _mm512_add_ps(a, b);
  else if constexpr (OP == BinaryOp::Sub) return _mm512_sub_ps(a, b);
  else if constexpr (OP == BinaryOp::Mul) return _mm512_mul_ps(a, b);
  else return _mm512_div_ps(a, b);
}

template <BinaryOp OP>
inline void bin_bwd(V a, V b, V dy, V* da, V* db) {
  if constexpr (OP == BinaryOp::Add) {
    *da = dy;
    *db = dy;
  } else if constexpr (OP == BinaryOp::Sub) {
    *da = dy;
    *db = _mm512_sub_ps(_mm512_setzero_ps(), dy);
  } else if constexpr (OP == BinaryOp::Mul) {
    *da = _mm512_mul_ps(dy, b);
    *db = _mm512_mul_ps(dy, a);
  } else {
    *da = _mm512_div_ps(dy, b);
    *db = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_div_ps(_mm512_mul_ps(dy, _mm512_div_ps(a, b)), b));
  }
}

// a contiguous (s == 1) or broadcast (s == 0) operand
inline V operand(const float* p, int64_t s, int64_t i, int64_t r) {
  return s == 0 ? _mm512_set1_ps(p[0]) : load(p + i, r);
}

}  // namespace

void unary(UnaryOp op, float* out, const float* x, float a, float b, int64_t n) {
  const V va = set1(a), vb = set1(b);
  ew::dispatch_unary(op, [&](auto k) {
    constexpr UnaryOp OP = decltype(k)::value;
    for (int64_t i = 0; i < n; i += 16) store(out + i, fwd<OP>(load(x + i, n - i), va, vb), n - i);
  });
}

void unary_backward(UnaryOp op, float* dx, const float* x, const float* y, const float* dy, float a, int64_t n) {
  const V va = set1(a), zero = _mm512_setzero_ps();
  ew::dispatch_unary(op, [&](auto k) {
    constexpr UnaryOp OP = decltype(k)::value;
    const int reads = ew::unary_backward_reads(OP);
    for (int64_t i = 0; i < n; i += 16) {
      const int64_t r = n - i;
      V vx = (reads & ew::kReadsX) ? load(x + i, r) : zero;
      V vy = (reads & ew::kReadsY) ? load(y + i, r) : zero;
      store(dx + i, bwd<OP>(vx, vy, load(dy + i, r), va), r);
    }
  });
}

void binary_row(BinaryOp op, float* out, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n) {
  ew::dispatch_binary(op, [&](auto k) {
    constexpr BinaryOp OP = decltype(k)::value;
    if ((sa == 0 || sa == 1) && (sb == 0 || sb == 1)) {
      for (int64_t i = 0; i < n; i += 16) {
        const int64_t r = n - i;
        store(out + i, bin<OP>(operand(a, sa, i, r), operand(b, sb, i, r)), r);
      }
    } else {
      for (int64_t i = 0; i < n; ++i) out[i] = ew::binary_forward<OP>(a[i * sa], b[i * sb]);
    }
  });
}

void binary_backward_row(BinaryOp op, float* da, float* db, const float* a, int64_t sa, const float* b, int64_t sb,
                         const float* dy, int64_t n) {
  ew::dispatch_binary(op, [&](auto k) {
    constexpr BinaryOp OP = decltype(k)::value;
    if ((sa == 0 || sa == 1) && (sb == 0 || sb == 1)) {
      for (int64_t i = 0; i < n; i += 16) {
        const int64_t r = n - i;
        V ga, gb;
        bin_bwd<OP>(operand(a, sa, i, r), operand(b, sb, i, r), load(dy + i, r), &ga, &gb);
        if (da) store(da + i, ga, r);
        if (db) store(db + i, gb, r);
      }
    } else {
      float ga, gb;
      for (int64_t i = 0; i < n; ++i) {
        ew::binary_backward<OP>(a[i * sa], b[i * sb], dy[i], &ga, &gb);
        if (da) da[i] = ga;
        if (db) db[i] = gb;
      }
    }
  });
}

double sum_f64(const float* x, int64_t n) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd(), s2 = _mm512_setzero_pd(), s3 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_add_pd(s0, _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + i)));
    s1 = _mm512_add_pd(s1, _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + i + 8)));
    s2 = _mm512_add_pd(s2, _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + i + 16)));
    s3 = _mm512_add_pd(s3, _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + i + 24)));
  }
  for (; i < n; i += 8) {
    const int64_t r = n - i;
    __m256 v = r >= 8 ? _mm256_loadu_ps(x + i) : _mm256_maskz_loadu_ps(static_cast<__mmask8>((1u << r) - 1u), x + i);
    s0 = _mm512_add_pd(s0, _mm512_maskz_cvtps_pd(0xFF, v));
  }
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, _mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

void accumulate_f64(double* acc, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm512_storeu_pd(acc + i, _mm512_add_pd(_mm512_loadu_pd(acc + i), _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + i))));
  for (; i < n; ++i) acc[i] += static_cast<double>(x[i]);
}

}  // namespace avx512
}  // namespace xlstm
