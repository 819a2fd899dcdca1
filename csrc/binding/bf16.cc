// Binding layer: bfloat16 conversions and the bf16-weight linear map (csrc/kernels/bf16.h). bfloat16 data travels
// as Uint16Arrays of raw bits (the Tensor "bfloat16" storage). Outputs are written (=); no output may overlap an
// input. Everything is synchronous (memory-bound, short calls on the inference path).
// JS:
//   bf16Linear(y, x, w, bias|null, rows, inFeatures, outFeatures, roundX)   y [rows*out] = x [rows*in] · wᵀ (+ bias)
//   bf16FromF32(out: Uint16Array, x: Float32Array)    round to nearest even (same length)
//   bf16ToF32(out: Float32Array, x: Uint16Array)      exact widening (same length)
//   bf16Sum(x: Uint16Array) -> number                 Σ x (float64 result)
//   bf16DotAvailable() -> boolean                     whether AVX512_BF16 vdpbf16ps is usable now (roundX without AMX)
//   bf16SetDotEnabled(enabled: boolean) -> boolean    allow/forbid vdpbf16ps (tests); returns bf16DotAvailable()
//   bf16AmxAvailable() -> boolean                     whether roundX runs on AMX tiles now (preferred over vdpbf16ps)
//   bf16SetAmxEnabled(enabled: boolean) -> boolean    allow/forbid AMX (tests); returns bf16AmxAvailable()
//   bf16LinearPath(rows: number, roundX: boolean) -> string   the kernel bf16Linear takes now (kernels/bf16.h)
#include <napi.h>

#include <string>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/bf16_args.h"
#include "binding/registry.h"
#include "kernels/bf16.h"

namespace xlstm {
namespace {

Napi::Value Bf16Linear(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "bf16Linear"};
  const bf16_args::LinearSizes z = bf16_args::parse_linear_sizes(c);
  const int64_t rows = z.rows, in = z.in, out = z.out, ny = z.ny, nx = z.nx, nw = z.nw;
  const bool round_x = z.round_x;
  float* y = require_f32(c, 0, "y", ny, describe("rows*outFeatures", {{"rows", rows}, {"outFeatures", out}}));
  const float* x = require_f32(c, 1, "x", nx, describe("rows*inFeatures", {{"rows", rows}, {"inFeatures", in}}));
  const uint16_t* w = require_u16(c, 2, "w", nw, describe("outFeatures*inFeatures", {{"outFeatures", out}, {"inFeatures", in}}));
  const float* bias = optional_f32(c, 3, "bias", out, "outFeatures");
  require_disjoint(c, {{"y", y, static_cast<size_t>(ny) * 4}},
                   {{"x", x, static_cast<size_t>(nx) * 4}, {"w", w, static_cast<size_t>(nw) * 2}, {"bias", bias, bias ? static_cast<size_t>(out) * 4 : 0}});
  run_sync(info.Env(), c.fn, [&] { bf16_linear(y, x, w, bias, rows, in, out, round_x); });
  return info.Env().Undefined();
}

Napi::Value Bf16FromF32(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "bf16FromF32"};
  require_count(c, 2);
  const int64_t n = typed_length(c, 1, "x");
  uint16_t* out = require_u16(c, 0, "out", n, "x.length");
  const float* x = require_f32(c, 1, "x", n);
  require_disjoint(c, {{"out", out, static_cast<size_t>(n) * 2}}, {{"x", x, static_cast<size_t>(n) * 4}});
  run_sync(info.Env(), c.fn, [&] { bf16_from_f32(out, x, n); });
  return info.Env().Undefined();
}

Napi::Value Bf16ToF32(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "bf16ToF32"};
  require_count(c, 2);
  const int64_t n = typed_length(c, 1, "x");
  float* out = require_f32(c, 0, "out", n, "x.length");
  const uint16_t* x = require_u16(c, 1, "x", n);
  require_disjoint(c, {{"out", out, static_cast<size_t>(n) * 4}}, {{"x", x, static_cast<size_t>(n) * 2}});
  run_sync(info.Env(), c.fn, [&] { bf16_to_f32(out, x, n); });
  return info.Env().Undefined();
}

Napi::Value Bf16Sum(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "bf16Sum"};
  require_count(c, 1);
  const int64_t n = typed_length(c, 0, "x");
  const uint16_t* x = require_u16(c, 0, "x", n);
  double s = 0;
  run_sync(info.Env(), c.fn, [&] { s = bf16_sum(x, n); });
  return Napi::Number::New(info.Env(), s);
}

Napi::Value Bf16DotAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), bf16_dot_available());
}

Napi::Value Bf16SetDotEnabled(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "bf16SetDotEnabled"};
  require_count(c, 1);
  return Napi::Boolean::New(info.Env(), bf16_set_dot_enabled(require_bool(c, 0, "enabled")));
}

Napi::Value Bf16LinearPath(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "bf16LinearPath"};
  require_count(c, 2);
  return Napi::String::New(info.Env(), bf16_linear_path(require_int(c, 0, "rows", 1), require_bool(c, 1, "roundX")));
}

Napi::Value Bf16AmxAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), bf16_amx_available());
}

Napi::Value Bf16SetAmxEnabled(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "bf16SetAmxEnabled"};
  require_count(c, 1);
  return Napi::Boolean::New(info.Env(), bf16_set_amx_enabled(require_bool(c, 0, "enabled")));
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("bf16Linear", Napi::Function::New(env, Bf16Linear, "bf16Linear"));
  exports.Set("bf16FromF32", Napi::Function::New(env, Bf16FromF32, "bf16FromF32"));
  exports.Set("bf16ToF32", Napi::Function::New(env, Bf16ToF32, "bf16ToF32"));
  exports.Set("bf16Sum", Napi::Function::New(env, Bf16Sum, "bf16Sum"));
  exports.Set("bf16DotAvailable", Napi::Function::New(env, Bf16DotAvailable, "bf16DotAvailable"));
  exports.Set("bf16SetDotEnabled", Napi::Function::New(env, Bf16SetDotEnabled, "bf16SetDotEnabled"));
  exports.Set("bf16LinearPath", Napi::Function::New(env, Bf16LinearPath, "bf16LinearPath"));
  exports.Set("bf16AmxAvailable", Napi::Function::New(env, Bf16AmxAvailable, "bf16AmxAvailable"));
  exports.Set("bf16SetAmxEnabled", Napi::Function::New(env, Bf16SetAmxEnabled, "bf16SetAmxEnabled"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(bf16, xlstm::Init);
