// Binding layer: the fused feed-forward half of an xLSTM block (csrc/kernels/ffn_block.h).
// JS: ffnBlockSavedSize(N, E, P) -> floats of `saved`
//     ffnBlockForward(y, saved | null, x, lnW, wUp, wDown, N, E, P, lnEps, lnResidual, act, alpha, beta)
//     ffnBlockBackward(dx, dlnW | null, dwUp | null, dwDown | null, dy, x, saved, lnW, wUp, wDown, N, E, P, lnEps,
//                      lnResidual, act, alpha, beta)
// x, y, dx, dy [N, E]; lnW [E]; wUp [2P, E]; wDown [E, P]; act a unary op name (unary's alpha / beta). Outputs
// overlap no input and no other output.
#include <napi.h>

#include <string>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/registry.h"
#include "kernels/elementwise.h"
#include "kernels/ffn_block.h"

namespace xlstm {
namespace {

size_t bytes(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

FfnBlockDims read_dims(const ArgCtx& c, size_t first) {
  FfnBlockDims d{};
  d.N = require_int(c, first, "N", 0, INT32_MAX);
  d.E = require_int(c, first + 1, "E", 1, 1 << 20);
  d.P = require_int(c, first + 2, "P", 1, 1 << 20);
  checked_product(c, "N*E", {d.N, d.E});
  checked_product(c, "N*3P", {d.N, d.P, 3});
  d.ln_eps = static_cast<float>(require_number(c, first + 3, "lnEps"));
  if (!(d.ln_eps > 0)) throw_range(c, "lnEps must be > 0");
  d.ln_residual = require_bool(c, first + 4, "lnResidual");
  const std::string act = require_string(c, first + 5, "act");
  if (!parse_unary_op(act, &d.act)) throw_range(c, "act must be one of " + unary_op_list() + ", got \"" + act + "\"");
  d.act_a = static_cast<float>(require_number(c, first + 6, "alpha"));
  d.act_b = static_cast<float>(require_number(c, first + 7, "beta"));
  return d;
}

Napi::Value SavedSize(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "ffnBlockSavedSize"};
  require_count(c, 3);
  FfnBlockDims d{};
  d.N = require_int(c, 0, "N", 0, INT32_MAX);
  d.E = require_int(c, 1, "E", 1, 1 << 20);
  d.P = require_int(c, 2, "P", 1, 1 << 20);
  checked_product(c, "N*E", {d.N, d.E});
  checked_product(c, "N*3P", {d.N, d.P, 3});
  return Napi::Number::New(info.Env(), static_cast<double>(ffn_block_saved_size(d)));
}

Napi::Value Forward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "ffnBlockForward"};
  require_count(c, 14);
  const FfnBlockDims d = read_dims(c, 6);
  const int64_t nx = d.N * d.E, ns = ffn_block_saved_size(d);
  float* y = require_f32(c, 0, "y", nx, "N*E");
  float* saved = optional_f32(c, 1, "saved", ns, "ffnBlockSavedSize(N, E, P)");
  const float* x = require_f32(c, 2, "x", nx, "N*E");
  const float* ln_w = require_f32(c, 3, "lnW", d.E, "E");
  const float* w_up = require_f32(c, 4, "wUp", 2 * d.P * d.E, "2P*E");
  const float* w_down = require_f32(c, 5, "wDown", d.E * d.P, "E*P");
  require_disjoint(c, {{"y", y, bytes(nx)}, {"saved", saved, bytes(ns)}},
                       {{"x", x, bytes(nx)}, {"lnW", ln_w, bytes(d.E)}, {"wUp", w_up, bytes(2 * d.P * d.E)},
                        {"wDown", w_down, bytes(d.E * d.P)}});
  run_sync(info.Env(), c.fn, [&] { ffn_block_forward(y, saved, x, ln_w, w_up, w_down, d); });
  return info.Env().Undefined();
}

Napi::Value Backward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "ffnBlockBackward"};
  require_count(c, 18);
  const FfnBlockDims d = read_dims(c, 10);
  const int64_t nx = d.N * d.E, ns = ffn_block_saved_size(d), nu = 2 * d.P * d.E, nd = d.E * d.P;
  float* dx = require_f32(c, 0, "dx", nx, "N*E");
  float* d_ln_w = optional_f32(c, 1, "dlnW", d.E, "E");
  float* d_w_up = optional_f32(c, 2, "dwUp", nu, "2P*E");
  float* d_w_down = optional_f32(c, 3, "dwDown", nd, "E*P");
  const float* dy = require_f32(c, 4, "dy", nx, "N*E");
  const float* x = require_f32(c, 5, "x", nx, "N*E");
  const float* saved = require_f32(c, 6, "saved", ns, "ffnBlockSavedSize(N, E, P)");
  const float* ln_w = require_f32(c, 7, "lnW", d.E, "E");
  const float* w_up = require_f32(c, 8, "wUp", nu, "2P*E");
  const float* w_down = require_f32(c, 9, "wDown", nd, "E*P");
  require_disjoint(c,
                       {{"dx", dx, bytes(nx)}, {"dlnW", d_ln_w, bytes(d.E)}, {"dwUp", d_w_up, bytes(nu)},
                        {"dwDown", d_w_down, bytes(nd)}},
                       {{"dy", dy, bytes(nx)}, {"x", x, bytes(nx)}, {"saved", saved, bytes(ns)},
                        {"lnW", ln_w, bytes(d.E)}, {"wUp", w_up, bytes(nu)}, {"wDown", w_down, bytes(nd)}});
  run_sync(info.Env(), c.fn,
           [&] { ffn_block_backward(dx, d_ln_w, d_w_up, d_w_down, dy, x, saved, ln_w, w_up, w_down, d); });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("ffnBlockSavedSize", Napi::Function::New(env, SavedSize, "ffnBlockSavedSize"));
  exports.Set("ffnBlockForward", Napi::Function::New(env, Forward, "ffnBlockForward"));
  exports.Set("ffnBlockBackward", Napi::Function::New(env, Backward, "ffnBlockBackward"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(ffn_block, xlstm::Init);
