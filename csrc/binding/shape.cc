// Binding layer: dimension permutation (csrc/kernels/permute.h).
// JS: permute(out, x, shape, perm) — out and x typed arrays of the same kind; out gets x permuted.
#include <napi.h>

#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/registry.h"
#include "kernels/permute.h"

namespace xlstm {
namespace {

Napi::Value Permute(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "permute"};
  require_count(c, 4);
  std::vector<int64_t> shape = require_int_array(c, 2, "shape", 0, INT64_C(1) << 45);
  std::vector<int64_t> perm = require_int_array(c, 3, "perm", 0, 15);
  if (shape.size() > 16) throw_range(c, "shape has more than 16 dimensions");
  if (perm.size() != shape.size())
    throw_range(c, "perm has " + std::to_string(perm.size()) + " entries, shape has " + std::to_string(shape.size()));
  std::vector<bool> seen(shape.size(), false);
  for (int64_t p : perm) {
    if (p >= static_cast<int64_t>(shape.size()) || seen[p]) throw_range(c, "perm is not a permutation of the dimensions");
    seen[p] = true;
  }
  const int64_t n = checked_product(c, "shape", shape);
  Napi::Value ov = info[0], xv = info[1];
  if (!ov.IsTypedArray() || !xv.IsTypedArray()) throw_type(c, "out and x must be typed arrays");
  Napi::TypedArray o = ov.As<Napi::TypedArray>(), x = xv.As<Napi::TypedArray>();
  if (o.TypedArrayType() != x.TypedArrayType()) throw_type(c, "out and x must be typed arrays of the same kind");
  const int64_t esize = static_cast<int64_t>(x.ElementSize());
  if (static_cast<int64_t>(x.ElementLength()) != n) throw_range(c, "x has " + std::to_string(x.ElementLength()) + " elements, shape has " + std::to_string(n));
  if (static_cast<int64_t>(o.ElementLength()) != n) throw_range(c, "out has " + std::to_string(o.ElementLength()) + " elements, expected " + std::to_string(n));
  int64_t on = 0, xn = 0;
  void* op = typed_data(c, 0, "out", &on);
  const void* xp = typed_data(c, 1, "x", &xn);
  require_no_overlap(c, "out", op, n * esize, "x", xp, n * esize);
  run_sync(info.Env(), c.fn, [&] { permute_copy(op, xp, static_cast<int>(esize), shape.data(), perm.data(), static_cast<int>(shape.size())); });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("permute", Napi::Function::New(env, Permute, "permute"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(shape, xlstm::Init);
