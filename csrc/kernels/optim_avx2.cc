// AVX2 instantiation of the optimizer element loops (optim_impl.h); compiled with -mavx2* and only called
// when simd_level() says the CPU has it. FMA contraction is off in this file so that the results equal the
// baseline build's bit for bit (the loops' float operations are rounded one by one there).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
#include "kernels/optim_impl.h"

namespace xlstm {
namespace optim_detail {

void adamw_range_avx2(float* p, float* m, float* v, const float* g, int64_t lo, int64_t hi, const AdamwScalars& s) {
  adamw_range_impl(p, m, v, g, lo, hi, s);
}

double sum_squares_range_avx2(const float* x, int64_t a, int64_t b) { return sum_squares_range_impl(x, a, b); }

void sgd_range_avx2(float* p, float* buf, const float* g, int64_t lo, int64_t hi, const SgdScalars& s) {
  sgd_range_impl(p, buf, g, lo, hi, s);
}

}  // namespace optim_detail
}  // namespace xlstm
