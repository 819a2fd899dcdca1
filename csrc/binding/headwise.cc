// Binding layer: block-diagonal linear map (csrc/kernels/headwise.h).
// JS: headwiseLinearForward(y, x, W, bias|null, rows, NB, I, O, yOffset, ldy)
//     headwiseLinearBackward(dx|null, dW|null, dbias|null, dy, x, W, rows, NB, I, O, dyOffset, ldy, accumulateDx)
// y / dy are [rows, ldy]; this map's columns start at yOffset / dyOffset (several maps share one output).
#include <napi.h>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/registry.h"
#include "kernels/headwise.h"

namespace xlstm {
namespace {

struct Dims {
  int64_t rows, NB, I, O, xl, yl, wl;
  std::string xd, yd, wd, bd;
};

Dims read_dims(const ArgCtx& c, size_t first) {
  Dims d;
  d.rows = require_int(c, first, "rows", 0, INT32_MAX);
  d.NB = require_int(c, first + 1, "NB", 1, 1 << 20);
  d.I = require_int(c, first + 2, "I", 1, 1 << 24);
  d.O = require_int(c, first + 3, "O", 1, 1 << 24);
  d.xl = checked_product(c, "rows*NB*I", {d.rows, d.NB, d.I});
  d.yl = checked_product(c, "rows*NB*O", {d.rows, d.NB, d.O});
  d.wl = checked_product(c, "NB*O*I", {d.NB, d.O, d.I});
  d.xd = describe("rows*NB*I", {{"rows", d.rows}, {"NB", d.NB}, {"I", d.I}});
  d.yd = describe("rows*NB*O", {{"rows", d.rows}, {"NB", d.NB}, {"O", d.O}});
  d.wd = describe("NB*O*I", {{"NB", d.NB}, {"O", d.O}, {"I", d.I}});
  d.bd = describe("NB*O", {{"NB", d.NB}, {"O", d.O}});
  return d;
}

// Column window [off, off + NB*O) of a [rows, ld] matrix; returns the pointer to its first element.
float* window(const ArgCtx& c, size_t arr, size_t off_i, size_t ld_i, const char* name, const Dims& d) {
  const int64_t ld = require_int(c, ld_i, "ld", 1, INT64_C(1) << 40);
  const int64_t off = require_int(c, off_i, "offset", 0, INT64_C(1) << 40);
  if (off + d.NB * d.O > ld)
    throw_range(c, std::string(name) + " columns [" + std::to_string(off) + ", " + std::to_string(off + d.NB * d.O) +
                       ") do not fit a row of " + std::to_string(ld));
  float* p = require_f32(c, arr, name, checked_product(c, "rows*ld", {d.rows, ld}), describe("rows*ld", {{"rows", d.rows}, {"ld", ld}}));
  return p + off;
}

// Bytes spanned by a column window of `rows` rows of stride ld (its first row starts at the window's pointer):
// the region that must not overlap anything else, not just rows*NB*O elements.
size_t window_bytes(const Dims& d, int64_t ld) {
  return d.rows == 0 ? 0 : static_cast<size_t>((d.rows - 1) * ld + d.NB * d.O) * sizeof(float);
}

Napi::Value Forward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "headwiseLinearForward"};
  require_count(c, 10);
  Dims d = read_dims(c, 4);
  float* y = window(c, 0, 8, 9, "y", d);
  const int64_t ldy = require_int(c, 9, "ldy", 1);
  const float* x = require_f32(c, 1, "x", d.xl, d.xd);
  const float* W = require_f32(c, 2, "W", d.wl, d.wd);
  const float* b = optional_f32(c, 3, "bias", d.NB * d.O, d.bd);
  require_disjoint(c, {{"y", y, window_bytes(d, ldy)}},
                   {{"x", x, static_cast<size_t>(d.xl) * 4}, {"W", W, static_cast<size_t>(d.wl) * 4}, {"bias", b, static_cast<size_t>(d.NB * d.O) * 4}});
  run_sync(info.Env(), c.fn, [&] { headwise_linear_forward(y, ldy, x, W, b, d.rows, d.NB, d.I, d.O); });
  return info.Env().Undefined();
}

Napi::Value Backward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "headwiseLinearBackward"};
  require_count(c, 13);
  Dims d = read_dims(c, 6);
  const int64_t ldy = require_int(c, 11, "ldy", 1);
  const bool accumulate = require_bool(c, 12, "accumulateDx");
  float* dx = optional_f32(c, 0, "dx", d.xl, d.xd);
  float* dW = optional_f32(c, 1, "dW", d.wl, d.wd);
  float* db = optional_f32(c, 2, "dbias", d.NB * d.O, d.bd);
  const float* dy = window(c, 3, 10, 11, "dy", d);
  const float* x = require_f32(c, 4, "x", d.xl, d.xd);
  const float* W = require_f32(c, 5, "W", d.wl, d.wd);
  const auto B4 = [](int64_t n) { return static_cast<size_t>(n) * sizeof(float); };
  require_disjoint(c, {{"dx", dx, B4(d.xl)}, {"dW", dW, B4(d.wl)}, {"dbias", db, B4(d.NB * d.O)}},
                   {{"dy", dy, window_bytes(d, ldy)}, {"x", x, B4(d.xl)}, {"W", W, B4(d.wl)}});
  run_sync(info.Env(), c.fn, [&] { headwise_linear_backward(dx, accumulate, dW, db, dy, ldy, x, W, d.rows, d.NB, d.I, d.O); });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("headwiseLinearForward", Napi::Function::New(env, Forward, "headwiseLinearForward"));
  exports.Set("headwiseLinearBackward", Napi::Function::New(env, Backward, "headwiseLinearBackward"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(headwise, xlstm::Init);
