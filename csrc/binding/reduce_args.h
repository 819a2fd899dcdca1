// Binding layer: argument parsing of the reduction exports, shared by the CPU binding (reduce, reduceBackward in
// csrc/binding/elementwise.cc) and the CUDA twin's (cudaReduceHost, cudaReduceBackwardHost in
// csrc/binding/cuda_misc.cc), so both check their arguments identically. Each parse_* checks every argument
// (TypeError / RangeError naming it) and the aliasing rules, and returns what the kernel call needs.
#pragma once
#include <napi.h>

#include <algorithm>
#include <string>
#include <vector>

#include "binding/args.h"
#include "kernels/elementwise_math.h"
#include "kernels/reduce.h"

namespace xlstm {
namespace reduce_args {

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

inline bool absent(const ArgCtx& c, size_t i) {
  return i >= c.info.Length() || c.info[i].IsUndefined() || c.info[i].IsNull();
}

inline ReduceOp require_reduce_op(const ArgCtx& c, size_t i) {
  const std::string s = require_string(c, i, "op");
  ReduceOp op;
  if (!parse_reduce_op(s, &op)) throw_range(c, "op must be one of " + reduce_op_list() + ", got \"" + s + "\"");
  return op;
}

inline std::vector<int64_t> require_shape(const ArgCtx& c, size_t i, const char* name) {
  std::vector<int64_t> s = require_int_array(c, i, name, 0);
  if (static_cast<int>(s.size()) > kMaxBroadcastDims)
    throw_range(c, std::string(name) + " has " + std::to_string(s.size()) + " dimensions, at most " +
                       std::to_string(kMaxBroadcastDims) + " are supported");
  checked_product(c, name, s);
  return s;
}

// out may be exactly `in` (same start, same length): in place; any other overlap is an error.
inline void require_no_partial_overlap(const ArgCtx& c, const char* out_name, const float* out, int64_t out_n,
                                       const char* in_name, const float* in, int64_t in_n) {
  if (!in || !out || (out == in && out_n == in_n)) return;
  require_no_overlap(c, out_name, out, out_n * sizeof(float), in_name, in, in_n * sizeof(float));
}

struct ReduceArgs {
  ReduceOp op;
  std::vector<int64_t> shape;
  std::vector<uint8_t> reduced;
  int64_t n, out_n, count;
  std::string out_desc;
};

// (op, <array>, shape, axes, ...): shape at 2, axes at 3; the array at 1 has numel(shape) or numel(kept) elements.
inline ReduceArgs parse_reduce_common(const ArgCtx& c) {
  ReduceArgs r;
  r.op = require_reduce_op(c, 0);
  r.shape = require_shape(c, 2, "shape");
  const int64_t nd = static_cast<int64_t>(r.shape.size());
  // A 0-d tensor accepts axis 0 / -1 as a no-op (as torch does).
  const int64_t span = std::max<int64_t>(nd, 1);
  std::vector<int64_t> axes = require_int_array(c, 3, "axes", -span, span - 1);
  r.reduced.assign(r.shape.size(), 0);
  for (int64_t a : axes) {
    if (nd == 0) continue;
    const int64_t d = a < 0 ? a + nd : a;
    if (r.reduced[d]) throw_range(c, "axes repeats axis " + std::to_string(d) + " (got " + std::to_string(a) + ")");
    r.reduced[d] = 1;
  }
  r.n = checked_product(c, "shape", r.shape);
  r.out_n = 1;
  r.count = 1;
  std::vector<int64_t> kept;
  for (size_t d = 0; d < r.shape.size(); ++d) {
    (r.reduced[d] ? r.count : r.out_n) *= r.shape[d];
    if (!r.reduced[d]) kept.push_back(r.shape[d]);
  }
  r.out_desc = "numel(kept axes " + shape_str(kept) + ")";
  if (r.op == ReduceOp::Max && r.count == 0 && r.out_n > 0)
    throw_range(c, "max of zero elements: the reduced axes of shape " + shape_str(r.shape) + " are empty");
  return r;
}

// reduce(op, x, shape, axes, out, argmax?)
struct ReduceCall {
  ReduceArgs r;
  const float* x;
  float* out;
  int64_t* argmax;
};
inline ReduceCall parse_reduce(const ArgCtx& c) {
  require_count(c, 5);
  ReduceCall a;
  a.r = parse_reduce_common(c);
  const ReduceArgs& r = a.r;
  a.x = require_f32(c, 1, "x", r.n, "numel(shape " + shape_str(r.shape) + ")");
  a.out = require_f32(c, 4, "out", r.out_n, r.out_desc);
  a.argmax = nullptr;
  if (!absent(c, 5)) {
    if (r.op != ReduceOp::Max) throw_range(c, "argmax is only written by \"max\", got op \"" + std::string(reduce_op_name(r.op)) + "\"");
    a.argmax = require_i64(c, 5, "argmax", r.out_n, r.out_desc);
  }
  require_no_partial_overlap(c, "out", a.out, r.out_n, "x", a.x, r.n);
  if (a.argmax) require_no_overlap(c, "argmax", a.argmax, r.out_n * 8, "x", a.x, r.n * sizeof(float));
  if (a.argmax) require_no_overlap(c, "argmax", a.argmax, r.out_n * 8, "out", a.out, r.out_n * sizeof(float));
  return a;
}

// reduceBackward(op, dy, shape, axes, dx, argmax?)  (argmax required for max)
struct ReduceBackwardCall {
  ReduceArgs r;
  const float* dy;
  float* dx;
  const int64_t* argmax;
};
inline ReduceBackwardCall parse_reduce_backward(const ArgCtx& c) {
  require_count(c, 5);
  ReduceBackwardCall a;
  a.r = parse_reduce_common(c);
  const ReduceArgs& r = a.r;
  a.dy = require_f32(c, 1, "dy", r.out_n, r.out_desc);
  a.dx = require_f32(c, 4, "dx", r.n, "numel(shape " + shape_str(r.shape) + ")");
  a.argmax = nullptr;
  if (r.op == ReduceOp::Max) {
    if (absent(c, 5)) throw_type(c, "argmax must be a BigInt64Array: the backward of \"max\" needs the argmax of the forward");
    a.argmax = require_i64(c, 5, "argmax", r.out_n, r.out_desc);
    for (int64_t o = 0; o < r.out_n; ++o)
      if (a.argmax[o] < 0 || a.argmax[o] >= r.n)
        throw_range(c, "argmax[" + std::to_string(o) + "] = " + std::to_string(a.argmax[o]) + " is not an index into x (numel " +
                           std::to_string(r.n) + ")");
  }
  require_no_overlap(c, "dx", a.dx, r.n * sizeof(float), "dy", a.dy, r.out_n * sizeof(float));
  if (a.argmax) require_no_overlap(c, "dx", a.dx, r.n * sizeof(float), "argmax", a.argmax, r.out_n * 8);
  return a;
}

}  // namespace reduce_args
}  // namespace xlstm
