// Binding layer: argument parsing of the permute export, shared by the CPU binding (permute in
// csrc/binding/shape.cc) and the CUDA twin's (cudaPermuteHost in csrc/binding/cuda_misc.cc).
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "binding/args.h"

namespace xlstm {
namespace permute_args {

// permute(out, x, shape, perm): out and x typed arrays of the same kind and numel(shape) elements.
struct PermuteCall {
  std::vector<int64_t> shape, perm;
  int64_t n, esize;
  void* out;
  const void* x;
};
inline PermuteCall parse_permute(const ArgCtx& c) {
  require_count(c, 4);
  PermuteCall a;
  a.shape = require_int_array(c, 2, "shape", 0, INT64_C(1) << 45);
  a.perm = require_int_array(c, 3, "perm", 0, 15);
  const std::vector<int64_t>& shape = a.shape;
  if (shape.size() > 16) throw_range(c, "shape has more than 16 dimensions");
  if (a.perm.size() != shape.size())
    throw_range(c, "perm has " + std::to_string(a.perm.size()) + " entries, shape has " + std::to_string(shape.size()));
  std::vector<bool> seen(shape.size(), false);
  for (int64_t p : a.perm) {
    if (p >= static_cast<int64_t>(shape.size()) || seen[p]) throw_range(c, "perm is not a permutation of the dimensions");
    seen[p] = true;
  }
  const int64_t n = checked_product(c, "shape", shape);
  a.n = n;
  Napi::Value ov = c.info[0], xv = c.info[1];
  if (!ov.IsTypedArray() || !xv.IsTypedArray()) throw_type(c, "out and x must be typed arrays");
  Napi::TypedArray o = ov.As<Napi::TypedArray>(), x = xv.As<Napi::TypedArray>();
  if (o.TypedArrayType() != x.TypedArrayType()) throw_type(c, "out and x must be typed arrays of the same kind");
  a.esize = static_cast<int64_t>(x.ElementSize());
  if (static_cast<int64_t>(x.ElementLength()) != n) throw_range(c, "x has " + std::to_string(x.ElementLength()) + " elements, shape has " + std::to_string(n));
  if (static_cast<int64_t>(o.ElementLength()) != n) throw_range(c, "out has " + std::to_string(o.ElementLength()) + " elements, expected " + std::to_string(n));
  int64_t on = 0, xn = 0;
  a.out = typed_data(c, 0, "out", &on);
  a.x = typed_data(c, 1, "x", &xn);
  require_no_overlap(c, "out", a.out, n * a.esize, "x", a.x, n * a.esize);
  return a;
}

}  // namespace permute_args
}  // namespace xlstm
