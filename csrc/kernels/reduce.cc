// CPU kernels: sum / mean / max over any set of axes, and their backward (see reduce.h for the contract).
//
// Plan: drop size-1 axes and merge neighbouring axes that are both kept or both reduced, leaving alternating
// runs. Then one of three loops:
//   all reduced             pieces of kPiece elements, partial results combined in piece order;
//   innermost axis reduced  per output, contiguous runs of the innermost reduced axis (SIMD float64 sum); long
//                           reductions are cut into pieces of kPiece elements combined in order;
//   innermost axis kept     per output row chunk of up to kCols columns, rows of x added column-wise into a
//                           float64 buffer (SIMD); small outputs with many rows also split the rows into at most
//                           kMaxRowPieces pieces combined in order.
// Piece boundaries depend only on the shape, so every thread count gives the same bits.
#include "kernels/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/elementwise.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

constexpr int64_t kPiece = 16384;
constexpr int64_t kCols = 512;
constexpr int64_t kMaxRowPieces = 32;
constexpr int64_t kSplitRowsBelow = 8192;  // outputs at most this many: split long row loops

const char* const kReduceNames[kReduceOpCount] = {"sum", "mean", "max"};

double sum_run(const float* x, int64_t n, bool vec) {
#if defined(XLSTM_X86)
  if (vec) return avx512::sum_f64(x, n);
#endif
  (void)vec;
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i];
    s1 += x[i + 1];
    s2 += x[i + 2];
    s3 += x[i + 3];
  }
  for (; i < n; ++i) s0 += x[i];
  return (s0 + s1) + (s2 + s3);
}

void acc_run(double* acc, const float* x, int64_t n, bool vec) {
#if defined(XLSTM_X86)
  if (vec) return avx512::accumulate_f64(acc, x, n);
#endif
  (void)vec;
  for (int64_t i = 0; i < n; ++i) acc[i] += static_cast<double>(x[i]);
}

// True when v replaces the current best (first maximum wins; NaN beats numbers; an empty slot takes anything).
inline bool max_better(float v, float best, int64_t best_i) {
  return best_i < 0 || v > best || (v != v && best == best);
}

struct SumPolicy {
  using Acc = double;
  static Acc init() { return 0.0; }
  static void run(Acc& a, const float* x, int64_t n, int64_t, bool vec) { a += sum_run(x, n, vec); }
  static void cols(Acc* a, const float* x, int64_t n, int64_t, bool vec) { acc_run(a, x, n, vec); }
  static void combine(Acc& a, const Acc& b) { a += b; }
};

struct MaxPolicy {
  struct Acc {
    float v;
    int64_t i;
  };
  static Acc init() { return {std::numeric_limits<float>::quiet_NaN(), -1}; }
  static void run(Acc& a, const float* x, int64_t n, int64_t base, bool) {
    for (int64_t j = 0; j < n; ++j)
      if (max_better(x[j], a.v, a.i)) a = {x[j], base + j};
  }
  static void cols(Acc* a, const float* x, int64_t n, int64_t base, bool) {
    for (int64_t j = 0; j < n; ++j)
      if (max_better(x[j], a[j].v, a[j].i)) a[j] = {x[j], base + j};
  }
  static void combine(Acc& a, const Acc& b) {
    if (b.i >= 0 && max_better(b.v, a.v, a.i)) a = b;
  }
};

struct Axes {
  std::vector<int64_t> size, stride;
  int64_t count() const {
    int64_t p = 1;
    for (int64_t s : size) p *= s;
    return p;
  }
  // x offset of the idx-th combination (row-major over these axes)
  int64_t offset(int64_t idx) const {
    int64_t off = 0;
    for (size_t d = size.size(); d-- > 0;) {
      off += (idx % size[d]) * stride[d];
      idx /= size[d];
    }
    return off;
  }
};

template <class P>
struct Writer {
  ReduceOp op;
  float* out;
  int64_t* argmax;
  int64_t count;
  void put(int64_t o, const typename P::Acc& a) const {
    if constexpr (std::is_same<P, SumPolicy>::value) {
      out[o] = static_cast<float>(op == ReduceOp::Mean ? a / static_cast<double>(count) : a);
    } else {
      out[o] = a.v;
      if (argmax) argmax[o] = a.i;
    }
  }
};

template <class P>
void reduce_impl(const Writer<P>& w, const float* x, const Axes& K, const Axes& R, bool inner_reduced) {
  using Acc = typename P::Acc;
  const bool vec = use_avx512();
  const int64_t count = R.count();

  if (inner_reduced) {
    // Outputs g over K; per output, the reduced index q = r * Lr + k (k along the innermost reduced axis).
    const int64_t Lr = R.size.back();
    Axes Rout{std::vector<int64_t>(R.size.begin(), R.size.end() - 1),
              std::vector<int64_t>(R.stride.begin(), R.stride.end() - 1)};
    const int64_t G = K.count();
    const int64_t np = (count + kPiece - 1) / kPiece;
    std::vector<Acc> partial(np > 1 ? G * np : 0, P::init());
    parallel_for(G * np, std::max<int64_t>(1, kPiece / std::min(count, kPiece)), [&](int64_t lo, int64_t hi) {
      for (int64_t it = lo; it < hi; ++it) {
        const int64_t g = it / np, pc = it % np;
        const int64_t goff = K.offset(g);
        const int64_t q1 = std::min(count, (pc + 1) * kPiece);
        Acc acc = P::init();
        for (int64_t q = pc * kPiece; q < q1;) {
          const int64_t r = q / Lr, k = q % Lr, len = std::min(Lr - k, q1 - q);
          const int64_t off = goff + Rout.offset(r) + k;
          P::run(acc, x + off, len, off, vec);
          q += len;
        }
        if (np == 1) w.put(g, acc);
        else partial[it] = acc;
      }
    });
    if (np > 1)
      parallel_for(G, 64, [&](int64_t lo, int64_t hi) {
        for (int64_t g = lo; g < hi; ++g) {
          Acc acc = partial[g * np];
          for (int64_t pc = 1; pc < np; ++pc) P::combine(acc, partial[g * np + pc]);
          w.put(g, acc);
        }
      });
    return;
  }

  // Innermost axis kept (length L, contiguous in x and out): outputs come in rows g over Kout.
  const int64_t L = K.size.back();
  Axes Kout{std::vector<int64_t>(K.size.begin(), K.size.end() - 1),
            std::vector<int64_t>(K.stride.begin(), K.stride.end() - 1)};
  const int64_t G = Kout.count();
  const int64_t C = std::min(L, kCols);
  const int64_t nc = (L + C - 1) / C;
  const int64_t rows_per_piece_natural = std::max<int64_t>(1, kPiece / C);
  int64_t nr = 1;
  if (G * L <= kSplitRowsBelow && count > rows_per_piece_natural)
    nr = std::min(kMaxRowPieces, (count + rows_per_piece_natural - 1) / rows_per_piece_natural);
  const int64_t rows_per_piece = (count + nr - 1) / nr;
  const int64_t items = G * nc * nr;
  std::vector<Acc> partial(nr > 1 ? items * C : 0, P::init());
  const int64_t work_per_item = std::max<int64_t>(1, std::min(count, rows_per_piece) * C);
  parallel_for(items, std::max<int64_t>(1, kPiece / work_per_item), [&](int64_t lo, int64_t hi) {
    std::vector<Acc> acc(C);
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t g = it / (nc * nr), c = (it / nr) % nc, rp = it % nr;
      const int64_t c0 = c * C, clen = std::min(C, L - c0);
      const int64_t base = Kout.offset(g) + c0;
      std::fill(acc.begin(), acc.begin() + clen, P::init());
      const int64_t r1 = std::min(count, (rp + 1) * rows_per_piece);
      for (int64_t r = rp * rows_per_piece; r < r1; ++r) {
        const int64_t off = base + R.offset(r);
        P::cols(acc.data(), x + off, clen, off, vec);
      }
      if (nr == 1)
        for (int64_t j = 0; j < clen; ++j) w.put(g * L + c0 + j, acc[j]);
      else
        std::copy(acc.begin(), acc.begin() + clen, partial.begin() + it * C);
    }
  });
  if (nr > 1)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t c = 0; c < nc; ++c) {
        const int64_t c0 = c * C, clen = std::min(C, L - c0);
        for (int64_t j = 0; j < clen; ++j) {
          Acc acc = partial[((g * nc + c) * nr) * C + j];
          for (int64_t rp = 1; rp < nr; ++rp) P::combine(acc, partial[((g * nc + c) * nr + rp) * C + j]);
          w.put(g * L + c0 + j, acc);
        }
      }
}

// Merged axes: size-1 axes dropped, neighbours of the same kind merged; strides row-major in x.
void merge_axes(int ndim, const int64_t* shape, const uint8_t* reduced, std::vector<int64_t>* size,
                std::vector<bool>* red) {
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    const bool r = reduced[d] != 0;
    if (!size->empty() && red->back() == r) size->back() *= shape[d];
    else {
      size->push_back(shape[d]);
      red->push_back(r);
    }
  }
}

}  // namespace

const char* reduce_op_name(ReduceOp op) { return kReduceNames[static_cast<int>(op)]; }

bool parse_reduce_op(const std::string& name, ReduceOp* op) {
  for (int i = 0; i < kReduceOpCount; ++i)
    if (name == kReduceNames[i]) {
      *op = static_cast<ReduceOp>(i);
      return true;
    }
  return false;
}

std::string reduce_op_list() {
  std::string s;
  for (int i = 0; i < kReduceOpCount; ++i) s += std::string(i ? ", " : "") + "\"" + kReduceNames[i] + "\"";
  return s;
}

double sum_all(const float* x, int64_t n) {
  if (n <= 0) return 0.0;
  const bool vec = use_avx512();
  const int64_t np = (n + kPiece - 1) / kPiece;
  std::vector<double> partial(np, 0.0);
  parallel_for(np, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) partial[p] = sum_run(x + p * kPiece, std::min(kPiece, n - p * kPiece), vec);
  });
  double s = 0;
  for (double v : partial) s += v;
  return s;
}

void reduce_axes(ReduceOp op, float* out, int64_t* argmax, const float* x, int ndim, const int64_t* shape,
                 const uint8_t* reduced) {
  int64_t out_n = 1, count = 1;
  for (int d = 0; d < ndim; ++d) (reduced[d] ? count : out_n) *= shape[d];
  if (out_n == 0) return;
  if (count == 0) {
    const float fill = op == ReduceOp::Sum ? 0.0f : std::numeric_limits<float>::quiet_NaN();
    std::fill(out, out + out_n, fill);
    if (argmax && op == ReduceOp::Max) std::fill(argmax, argmax + out_n, int64_t(-1));
    return;
  }
  std::vector<int64_t> size;
  std::vector<bool> red;
  merge_axes(ndim, shape, reduced, &size, &red);
  Axes K, R;
  int64_t stride = 1;
  for (size_t d = size.size(); d-- > 0;) {
    Axes& A = red[d] ? R : K;
    A.size.insert(A.size.begin(), size[d]);
    A.stride.insert(A.stride.begin(), stride);
    stride *= size[d];
  }
  const bool inner_reduced = !red.empty() && red.back();
  if (R.size.empty()) {  // nothing (or only size-1 axes) reduced: a copy
    for (int64_t i = 0; i < out_n; ++i) out[i] = x[i];
    if (argmax && op == ReduceOp::Max)
      for (int64_t i = 0; i < out_n; ++i) argmax[i] = i;
    return;
  }
  if (op == ReduceOp::Max) {
    reduce_impl<MaxPolicy>(Writer<MaxPolicy>{op, out, argmax, count}, x, K, R, inner_reduced);
  } else {
    reduce_impl<SumPolicy>(Writer<SumPolicy>{op, out, argmax, count}, x, K, R, inner_reduced);
  }
}

void reduce_axes_backward(ReduceOp op, float* dx, const float* dy, const int64_t* argmax, int ndim,
                          const int64_t* shape, const uint8_t* reduced) {
  int64_t n = 1, out_n = 1, count = 1;
  for (int d = 0; d < ndim; ++d) {
    n *= shape[d];
    (reduced[d] ? count : out_n) *= shape[d];
  }
  if (n == 0) return;
  if (op == ReduceOp::Max) {
    std::fill(dx, dx + n, 0.0f);
    for (int64_t o = 0; o < out_n; ++o)
      if (argmax[o] >= 0 && argmax[o] < n) dx[argmax[o]] += dy[o];
    return;
  }
  // dx = dy[kept coordinates] (sum) or dy[kept coordinates] / count (mean, rounded like torch's division): a
  // broadcast binary op with dy strided over the kept axes only and a scalar second operand.
  std::vector<int64_t> a_stride(ndim), b_stride(ndim, 0);
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    a_stride[d] = reduced[d] ? 0 : s;
    if (!reduced[d]) s *= shape[d];
  }
  const float divisor = op == ReduceOp::Mean ? static_cast<float>(count) : 1.0f;
  BroadcastPlan plan = make_strided_plan(ndim, shape, a_stride.data(), b_stride.data());
  elementwise_binary(op == ReduceOp::Mean ? BinaryOp::Div : BinaryOp::Mul, dx, dy, &divisor, plan);
}

}  // namespace xlstm
