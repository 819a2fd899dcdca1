// Binding layer: block-diagonal linear map (csrc/kernels/headwise.h).
// JS: headwiseLinearForward(y, x, W, bias|null, rows, NB, I, O)
//     headwiseLinearBackward(dx|null, dW|null, dbias|null, dy, x, W, rows, NB, I, O)
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

float* opt_f32(const ArgCtx& c, size_t i, const char* name, int64_t n, const std::string& desc) {
  require_count(c, i + 1);
  if (c.info[i].IsNull() || c.info[i].IsUndefined()) return nullptr;
  return require_f32(c, i, name, n, desc);
}

Napi::Value Forward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "headwiseLinearForward"};
  require_count(c, 8);
  Dims d = read_dims(c, 4);
  float* y = require_f32(c, 0, "y", d.yl, d.yd);
  const float* x = require_f32(c, 1, "x", d.xl, d.xd);
  const float* W = require_f32(c, 2, "W", d.wl, d.wd);
  const float* b = opt_f32(c, 3, "bias", d.NB * d.O, d.bd);
  require_no_overlap(c, "y", y, d.yl * 4, "x", x, d.xl * 4);
  require_no_overlap(c, "y", y, d.yl * 4, "W", W, d.wl * 4);
  if (b) require_no_overlap(c, "y", y, d.yl * 4, "bias", b, d.NB * d.O * 4);
  run_sync(info.Env(), c.fn, [&] { headwise_linear_forward(y, x, W, b, d.rows, d.NB, d.I, d.O); });
  return info.Env().Undefined();
}

Napi::Value Backward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "headwiseLinearBackward"};
  require_count(c, 10);
  Dims d = read_dims(c, 6);
  float* dx = opt_f32(c, 0, "dx", d.xl, d.xd);
  float* dW = opt_f32(c, 1, "dW", d.wl, d.wd);
  float* db = opt_f32(c, 2, "dbias", d.NB * d.O, d.bd);
  const float* dy = require_f32(c, 3, "dy", d.yl, d.yd);
  const float* x = require_f32(c, 4, "x", d.xl, d.xd);
  const float* W = require_f32(c, 5, "W", d.wl, d.wd);
  struct B { const char* n; const void* p; int64_t len; };
  const B outs[] = {{"dx", dx, d.xl}, {"dW", dW, d.wl}, {"dbias", db, d.NB * d.O}};
  const B ins[] = {{"dy", dy, d.yl}, {"x", x, d.xl}, {"W", W, d.wl}};
  for (auto& o : outs) {
    if (!o.p) continue;
    for (auto& i : ins) require_no_overlap(c, o.n, o.p, o.len * 4, i.n, i.p, i.len * 4);
    for (auto& o2 : outs)
      if (o2.p && &o2 != &o) require_no_overlap(c, o.n, o.p, o.len * 4, o2.n, o2.p, o2.len * 4);
  }
  run_sync(info.Env(), c.fn, [&] { headwise_linear_backward(dx, dW, db, dy, x, W, d.rows, d.NB, d.I, d.O); });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("headwiseLinearForward", Napi::Function::New(env, Forward, "headwiseLinearForward"));
  exports.Set("headwiseLinearBackward", Napi::Function::New(env, Backward, "headwiseLinearBackward"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(headwise, xlstm::Init);
