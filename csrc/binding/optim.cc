// Binding layer: optimizer kernels (csrc/kernels/optim.h).
// JS: adamwStep(p, m, v, g, lr, beta1, beta2, eps, weightDecay, step) updates p, m, v in place;
//     sumSquares(x) -> number; scaleInPlace(x, alpha).
#include <napi.h>

#include <cmath>
#include <string>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/registry.h"
#include "kernels/optim.h"

namespace xlstm {
namespace {

double require_finite(const ArgCtx& c, size_t i, const char* name, double lo, double hi, const char* range) {
  const double v = require_number(c, i, name);
  if (!(std::isfinite(v) && v >= lo && v <= hi)) throw_range(c, std::string(name) + " must be in " + range + ", got " + std::to_string(v));
  return v;
}

Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "adamwStep"};
  require_count(c, 10);
  const int64_t n = typed_length(c, 0, "p");
  const std::string desc = describe("n", {{"n", n}});
  float* p = require_f32(c, 0, "p", n);
  float* m = require_f32(c, 1, "m", n, desc);
  float* v = require_f32(c, 2, "v", n, desc);
  const float* g = require_f32(c, 3, "g", n, desc);
  const double lr = require_finite(c, 4, "lr", 0.0, INFINITY, "[0, inf)");
  const double beta1 = require_finite(c, 5, "beta1", 0.0, 0.9999999999, "[0, 1)");
  const double beta2 = require_finite(c, 6, "beta2", 0.0, 0.9999999999, "[0, 1)");
  const double eps = require_finite(c, 7, "eps", 0.0, INFINITY, "[0, inf)");
  const double wd = require_finite(c, 8, "weightDecay", 0.0, INFINITY, "[0, inf)");
  const int64_t t = require_int(c, 9, "step", 1, INT64_C(1) << 52);
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  require_disjoint(c, {{"p", p, bytes}, {"m", m, bytes}, {"v", v, bytes}}, {{"g", g, bytes}});
  run_sync(info.Env(), c.fn, [&] { adamw_step(p, m, v, g, n, lr, beta1, beta2, eps, wd, t); });
  return info.Env().Undefined();
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "sumSquares"};
  require_count(c, 1);
  const int64_t n = typed_length(c, 0, "x");
  const float* x = require_f32(c, 0, "x", n);
  double s = 0.0;
  run_sync(info.Env(), c.fn, [&] { s = sum_squares(x, n); });
  return Napi::Number::New(info.Env(), s);
}

Napi::Value ScaleInPlace(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "scaleInPlace"};
  require_count(c, 2);
  const int64_t n = typed_length(c, 0, "x");
  float* x = require_f32(c, 0, "x", n);
  const double alpha = require_number(c, 1, "alpha");
  if (!std::isfinite(alpha)) throw_range(c, "alpha must be finite, got " + std::to_string(alpha));
  run_sync(info.Env(), c.fn, [&] { scale_inplace(x, n, static_cast<float>(alpha)); });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("adamwStep", Napi::Function::New(env, AdamwStep, "adamwStep"));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares, "sumSquares"));
  exports.Set("scaleInPlace", Napi::Function::New(env, ScaleInPlace, "scaleInPlace"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(optim, xlstm::Init);
