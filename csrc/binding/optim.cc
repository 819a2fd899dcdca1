// Binding layer: optimizer kernels (csrc/kernels/optim.h).
// JS: adamwStep(p, m, v, g, lr, beta1, beta2, eps, weightDecay, step) updates p, m, v in place;
//     sgdStep(p, buf, g, lr, momentum, dampening, weightDecay, nesterov, first) updates p (and buf) in place;
//     sumSquares(x) -> number; scaleInPlace(x, alpha).
#include <napi.h>

#include <cmath>
#include <string>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/optim_args.h"
#include "binding/registry.h"
#include "kernels/optim.h"

namespace xlstm {
namespace {

// Argument parsing: binding/optim_args.h (shared with the CUDA twin's entries in cuda_misc.cc).

Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "adamwStep"};
  const optim_args::AdamwCall a = optim_args::parse_adamw(c);
  run_sync(info.Env(), c.fn, [&] { adamw_step(a.p, a.m, a.v, a.g, a.n, a.lr, a.beta1, a.beta2, a.eps, a.wd, a.t); });
  return info.Env().Undefined();
}

Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "sgdStep"};
  const optim_args::SgdCall a = optim_args::parse_sgd(c);
  run_sync(info.Env(), c.fn, [&] { sgd_step(a.p, a.buf, a.g, a.n, a.lr, a.momentum, a.dampening, a.wd, a.nesterov, a.first); });
  return info.Env().Undefined();
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "sumSquares"};
  const optim_args::SumSquaresCall a = optim_args::parse_sum_squares(c);
  double s = 0.0;
  run_sync(info.Env(), c.fn, [&] { s = sum_squares(a.x, a.n); });
  return Napi::Number::New(info.Env(), s);
}

Napi::Value ScaleInPlace(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "scaleInPlace"};
  const optim_args::ScaleCall a = optim_args::parse_scale(c);
  run_sync(info.Env(), c.fn, [&] { scale_inplace(a.x, a.n, a.alpha); });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("adamwStep", Napi::Function::New(env, AdamwStep, "adamwStep"));
  exports.Set("sgdStep", Napi::Function::New(env, SgdStep, "sgdStep"));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares, "sumSquares"));
  exports.Set("scaleInPlace", Napi::Function::New(env, ScaleInPlace, "scaleInPlace"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(optim, xlstm::Init);
