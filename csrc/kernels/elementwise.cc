// CPU kernels: elementwise unary/binary ops and their backward (see elementwise.h for the contract and
// elementwise_math.h for the formulas). Scalar (portable) loops here; each parallel_for chunk goes to the
// AVX-512 loops when simd_level() allows. Work is split into pieces of kPiece elements whose boundaries do not
// depend on the thread count, so results are identical for any number of threads.
#include "kernels/elementwise.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

constexpr int64_t kPiece = 16384;       // elements per work piece for cheap ops
constexpr int64_t kPieceHeavy = 2048;   // elements per piece for ops calling exp/log/erfc/tanh

const char* const kUnaryNames[kUnaryOpCount] = {"exp",  "log",  "sigmoid", "logsigmoid", "tanh", "softplus",
                                                "relu", "gelu", "geluTanh", "silu",      "neg",  "affine"};
const char* const kBinaryNames[kBinaryOpCount] = {"add", "sub", "mul", "div"};

bool heavy(UnaryOp op) {
  return !(op == UnaryOp::Relu || op == UnaryOp::Neg || op == UnaryOp::Affine);
}

// ---- scalar loops ----------------------------------------------------------------------------------------------

void unary_scalar(UnaryOp op, float* out, const float* x, float a, float b, int64_t n) {
  ew::dispatch_unary(op, [&](auto k) {
    constexpr UnaryOp OP = decltype(k)::value;
    for (int64_t i = 0; i < n; ++i) out[i] = ew::unary_forward<OP>(x[i], a, b);
  });
}

void unary_backward_scalar(UnaryOp op, float* dx, const float* x, const float* y, const float* dy, float a,
                           int64_t n) {
  ew::dispatch_unary(op, [&](auto k) {
    constexpr UnaryOp OP = decltype(k)::value;
    const int reads = ew::unary_backward_reads(OP);
    if (reads == ew::kReadsX)
      for (int64_t i = 0; i < n; ++i) dx[i] = ew::unary_backward<OP>(x[i], 0.0f, dy[i], a);
    else if (reads == ew::kReadsY)
      for (int64_t i = 0; i < n; ++i) dx[i] = ew::unary_backward<OP>(0.0f, y[i], dy[i], a);
    else
      for (int64_t i = 0; i < n; ++i) dx[i] = ew::unary_backward<OP>(0.0f, 0.0f, dy[i], a);
  });
}

template <BinaryOp OP>
void binary_row_scalar_t(float* o, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = ew::binary_forward<OP>(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = b[0];
    for (int64_t i = 0; i < n; ++i) o[i] = ew::binary_forward<OP>(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = a[0];
    for (int64_t i = 0; i < n; ++i) o[i] = ew::binary_forward<OP>(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = ew::binary_forward<OP>(a[i * sa], b[i * sb]);
  }
}

void binary_row(BinaryOp op, float* o, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n) {
#if defined(XLSTM_X86)
  if (use_avx512()) return avx512::binary_row(op, o, a, sa, b, sb, n);
#endif
  ew::dispatch_binary(op, [&](auto k) { binary_row_scalar_t<decltype(k)::value>(o, a, sa, b, sb, n); });
}

template <BinaryOp OP>
void binary_backward_row_scalar_t(float* da, float* db, const float* a, int64_t sa, const float* b, int64_t sb,
                                  const float* dy, int64_t n) {
  float ga, gb;
  for (int64_t i = 0; i < n; ++i) {
    ew::binary_backward<OP>(a[i * sa], b[i * sb], dy[i], &ga, &gb);
    if (da) da[i] = ga;
    if (db) db[i] = gb;
  }
}

void binary_backward_row(BinaryOp op, float* da, float* db, const float* a, int64_t sa, const float* b, int64_t sb,
                         const float* dy, int64_t n) {
#if defined(XLSTM_X86)
  if (use_avx512()) return avx512::binary_backward_row(op, da, db, a, sa, b, sb, dy, n);
#endif
  ew::dispatch_binary(op,
                      [&](auto k) { binary_backward_row_scalar_t<decltype(k)::value>(da, db, a, sa, b, sb, dy, n); });
}

// Calls row(out_offset, a_offset, b_offset, len) over the whole plan, in parallel pieces: either groups of
// whole innermost rows or column chunks of one long row. Row starts come from ew::broadcast_offsets, the index map
// the CUDA kernels use per element, so the CPU tests check it too.
template <class Row>
void for_each_row(const BroadcastPlan& p, Row&& row) {
  if (p.numel == 0) return;
  if (p.ndim == 0) {
    row(0, 0, 0, 1);
    return;
  }
  const int nd = p.ndim;
  const int64_t L = p.shape[nd - 1];
  const int64_t rows = p.numel / L;
  if (L >= kPiece) {
    const int64_t chunks = (L + kPiece - 1) / kPiece;
    parallel_for(rows * chunks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t it = lo; it < hi; ++it) {
        int64_t r = it / chunks, c0 = (it % chunks) * kPiece;
        int64_t ao, bo;
        ew::broadcast_offsets(p, r * L + c0, &ao, &bo);
        row(r * L + c0, ao, bo, std::min(kPiece, L - c0));
      }
    });
    return;
  }
  const int64_t per = std::max<int64_t>(1, kPiece / L);  // rows per piece
  const int64_t pieces = (rows + per - 1) / per;
  parallel_for(pieces, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t r0 = it * per, r1 = std::min(rows, r0 + per);
      for (int64_t r = r0; r < r1; ++r) {
        int64_t ao, bo;
        ew::broadcast_offsets(p, r * L, &ao, &bo);
        row(r * L, ao, bo, L);
      }
    }
  });
}

std::string shape_str(const int64_t* s, int n) {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < n; ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

}  // namespace

// ---- names -----------------------------------------------------------------------------------------------------

const char* unary_op_name(UnaryOp op) { return kUnaryNames[static_cast<int>(op)]; }
const char* binary_op_name(BinaryOp op) { return kBinaryNames[static_cast<int>(op)]; }

bool parse_unary_op(const std::string& name, UnaryOp* op) {
  for (int i = 0; i < kUnaryOpCount; ++i)
    if (name == kUnaryNames[i]) {
      *op = static_cast<UnaryOp>(i);
      return true;
    }
  return false;
}

bool parse_binary_op(const std::string& name, BinaryOp* op) {
  for (int i = 0; i < kBinaryOpCount; ++i)
    if (name == kBinaryNames[i]) {
      *op = static_cast<BinaryOp>(i);
      return true;
    }
  return false;
}

std::string unary_op_list() {
  std::string s;
  for (int i = 0; i < kUnaryOpCount; ++i) s += std::string(i ? ", " : "") + "\"" + kUnaryNames[i] + "\"";
  return s;
}

std::string binary_op_list() {
  std::string s;
  for (int i = 0; i < kBinaryOpCount; ++i) s += std::string(i ? ", " : "") + "\"" + kBinaryNames[i] + "\"";
  return s;
}

// ---- unary -----------------------------------------------------------------------------------------------------

void elementwise_unary(UnaryOp op, float* out, const float* x, float a, float b, int64_t n) {
  const bool vec = use_avx512();
  parallel_for(n, heavy(op) ? kPieceHeavy : kPiece, [&](int64_t lo, int64_t hi) {
#if defined(XLSTM_X86)
    if (vec) return avx512::unary(op, out + lo, x + lo, a, b, hi - lo);
#endif
    (void)vec;
    unary_scalar(op, out + lo, x + lo, a, b, hi - lo);
  });
}

void elementwise_unary_backward(UnaryOp op, float* dx, const float* x, const float* y, const float* dy, float a,
                                int64_t n) {
  const bool vec = use_avx512();
  parallel_for(n, heavy(op) ? kPieceHeavy : kPiece, [&](int64_t lo, int64_t hi) {
    const float* xs = x ? x + lo : nullptr;
    const float* ys = y ? y + lo : nullptr;
#if defined(XLSTM_X86)
    if (vec) return avx512::unary_backward(op, dx + lo, xs, ys, dy + lo, a, hi - lo);
#endif
    (void)vec;
    unary_backward_scalar(op, dx + lo, xs, ys, dy + lo, a, hi - lo);
  });
}

// ---- broadcasting ----------------------------------------------------------------------------------------------

BroadcastPlan make_strided_plan(int ndim, const int64_t* shape, const int64_t* a_stride, const int64_t* b_stride) {
  BroadcastPlan p;
  p.numel = 1;
  for (int d = 0; d < ndim; ++d) p.numel *= shape[d];
  // Innermost first: drop size-1 dimensions, merge a dimension into the one inside it when both inputs step
  // through them as one (stride_outer == stride_inner * size_inner, which also holds for two zero strides).
  int64_t sh[kMaxBroadcastDims], as[kMaxBroadcastDims], bs[kMaxBroadcastDims];
  int m = 0;
  if (p.numel != 0) {
    for (int d = ndim - 1; d >= 0; --d) {
      if (shape[d] == 1) continue;
      if (m > 0 && a_stride[d] == as[m - 1] * sh[m - 1] && b_stride[d] == bs[m - 1] * sh[m - 1]) {
        sh[m - 1] *= shape[d];
        continue;
      }
      if (m == kMaxBroadcastDims)
        throw std::invalid_argument("the broadcast needs more than " + std::to_string(kMaxBroadcastDims) +
                                    " dimensions after merging");
      sh[m] = shape[d];
      as[m] = a_stride[d];
      bs[m] = b_stride[d];
      ++m;
    }
  }
  p.ndim = m;
  for (int i = 0; i < m; ++i) {  // back to outermost-first
    p.shape[i] = sh[m - 1 - i];
    p.a_stride[i] = as[m - 1 - i];
    p.b_stride[i] = bs[m - 1 - i];
  }
  return p;
}

BroadcastPlan make_broadcast_plan(const int64_t* a_shape, int a_ndim, const int64_t* b_shape, int b_ndim,
                                  int64_t* out_shape) {
  const int n = std::max(a_ndim, b_ndim);
  std::vector<int64_t> os(n), as(n), bs(n);
  int64_t sa = 1, sb = 1;  // row-major strides of a and b, built innermost first
  for (int i = n - 1; i >= 0; --i) {
    const int ia = i - (n - a_ndim), ib = i - (n - b_ndim);
    const int64_t da = ia >= 0 ? a_shape[ia] : 1, db = ib >= 0 ? b_shape[ib] : 1;
    if (da != db && da != 1 && db != 1)
      throw std::invalid_argument("shapes " + shape_str(a_shape, a_ndim) + " and " + shape_str(b_shape, b_ndim) +
                                  " cannot be broadcast together");
    os[i] = da == 1 ? db : da;
    as[i] = da == 1 ? 0 : sa;
    bs[i] = db == 1 ? 0 : sb;
    sa *= da;
    sb *= db;
  }
  if (out_shape) std::copy(os.begin(), os.end(), out_shape);
  return make_strided_plan(n, os.data(), as.data(), bs.data());
}

// ---- binary ----------------------------------------------------------------------------------------------------

void elementwise_binary(BinaryOp op, float* out, const float* a, const float* b, const BroadcastPlan& plan) {
  const int64_t sa = plan.ndim ? plan.a_stride[plan.ndim - 1] : 0;
  const int64_t sb = plan.ndim ? plan.b_stride[plan.ndim - 1] : 0;
  for_each_row(plan, [&](int64_t o, int64_t ao, int64_t bo, int64_t len) {
    binary_row(op, out + o, a + ao, sa, b + bo, sb, len);
  });
}

void elementwise_binary_backward(BinaryOp op, float* da, float* db, const float* a, const float* b,
                                 const float* dy, const BroadcastPlan& plan) {
  if (!da && !db) return;
  const int64_t sa = plan.ndim ? plan.a_stride[plan.ndim - 1] : 0;
  const int64_t sb = plan.ndim ? plan.b_stride[plan.ndim - 1] : 0;
  for_each_row(plan, [&](int64_t o, int64_t ao, int64_t bo, int64_t len) {
    binary_backward_row(op, da ? da + o : nullptr, db ? db + o : nullptr, a + ao, sa, b + bo, sb, dy + o, len);
  });
}

// ---- gated activation ------------------------------------------------------------------------------------------

namespace {

// one row's act(gate) into out (n elements), the loops elementwise_unary runs on its pieces
void unary_range(UnaryOp op, float* out, const float* x, float a, float b, int64_t n) {
#if defined(XLSTM_X86)
  if (use_avx512()) return avx512::unary(op, out, x, a, b, n);
#endif
  unary_scalar(op, out, x, a, b, n);
}

void unary_backward_range(UnaryOp op, float* dx, const float* x, const float* y, const float* dy, float a,
                          int64_t n) {
#if defined(XLSTM_X86)
  if (use_avx512()) return avx512::unary_backward(op, dx, x, y, dy, a, n);
#endif
  unary_backward_scalar(op, dx, x, y, dy, a, n);
}

int64_t gated_rows_per_piece(UnaryOp op, int64_t P) {
  return std::max<int64_t>(1, (heavy(op) ? kPieceHeavy : kPiece) / std::max<int64_t>(1, P));
}

}  // namespace

void gated_unary(UnaryOp op, float* y, const float* h, int64_t rows, int64_t P, float a, float b) {
  if (rows <= 0 || P <= 0) return;  // nothing to write (and no loop over 2^40 empty rows)
  parallel_for(rows, gated_rows_per_piece(op, P), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* gate = h + r * 2 * P;
      float* yr = y + r * P;
      unary_range(op, yr, gate, a, b, P);
      binary_row(BinaryOp::Mul, yr, yr, 1, gate + P, 1, P);
    }
  });
}

void gated_unary_backward(UnaryOp op, float* dh, const float* h, const float* dy, int64_t rows, int64_t P, float a,
                          float b) {
  if (rows <= 0 || P <= 0) return;
  parallel_for(rows, gated_rows_per_piece(op, P), [&](int64_t r0, int64_t r1) {
    std::vector<float> act(static_cast<size_t>(P));
    for (int64_t r = r0; r < r1; ++r) {
      const float* gate = h + r * 2 * P;
      float* dgate = dh + r * 2 * P;
      unary_range(op, act.data(), gate, a, b, P);
      // the product's backward: d act = dy ⊙ value (into dgate), d value = dy ⊙ act; then act' over d act in place
      binary_backward_row(BinaryOp::Mul, dgate, dgate + P, act.data(), 1, gate + P, 1, dy + r * P, P);
      unary_backward_range(op, dgate, gate, act.data(), dgate, a, P);
    }
  });
}

}  // namespace xlstm
