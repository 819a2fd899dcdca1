// Binding layer, bfloat16 weights on device buffers (cuda/bf16.cu; CPU twin csrc/kernels/bf16.h, exported as
// bf16Linear / bf16ToF32): the ops layer's bf16-weight linear map and embedding for CUDA tensors. bfloat16 buffers
// hold raw bits (2 bytes per element). Kernels are enqueued on the package's stream; under host emulation the
// linear map and the embedding run the host replays of their CUDA kernels (every output written exactly once),
// the conversion its CPU twin.
// JS:
//   cudaBf16LinearDev(y, x, w, bias|null, rows, inFeatures, outFeatures, roundX)   y = x · wᵀ (+ bias)
//   cudaBf16EmbeddingDev(out, weight, indices, int64Indices, n, v, e)              out[i] = widen(weight[indices[i]])
//   cudaBf16ToF32Dev(out, x, n)                                                    out = widen(x), n elements
//   cudaBf16GemvCoverage(rows, inFeatures, outFeatures, counts: Int32Array)        the GEMV's output map (host code)
#include <napi.h>

#include <string>

#include "args.h"
#include "async.h"
#include "bf16_args.h"
#include "cuda_api.h"
#include "device_buffer.h"
#include "device_kernels.h"
#include "kernels/bf16.h"
#include "registry.h"

namespace xlstm {
namespace {

constexpr int64_t kLim = INT64_C(1) << 40;

std::string bytes_of(const char* what, int64_t n, int64_t el) {
  return std::to_string(el) + "*" + what + " (" + std::to_string(n) + " elements)";
}
float* fp(DeviceBuffer* b) { return b ? static_cast<float*>(b->ptr) : nullptr; }
uint16_t* hp(DeviceBuffer* b) { return static_cast<uint16_t*>(b->ptr); }

Napi::Value Bf16LinearDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaBf16LinearDev"};
  const bf16_args::LinearSizes z = bf16_args::parse_linear_sizes(c);
  const int64_t rows = z.rows, in = z.in, out = z.out, ny = z.ny, nx = z.nx, nw = z.nw;
  const bool round_x = z.round_x;
  DeviceBuffer* y = require_device_buffer(c, 0, "y", ny * 4, bytes_of("rows*outFeatures", ny, 4));
  DeviceBuffer* x = require_device_buffer(c, 1, "x", nx * 4, bytes_of("rows*inFeatures", nx, 4));
  DeviceBuffer* w = require_device_buffer(c, 2, "w", nw * 2, bytes_of("outFeatures*inFeatures", nw, 2));
  DeviceBuffer* bias = optional_device_buffer(c, 3, "bias", out * 4, bytes_of("outFeatures", out, 4));
  if (y == x || y == w || (bias && y == bias)) throw_range(c, "y must be a different buffer from x, w and bias");
  run_sync(info.Env(), c.fn, [&] { dk::bf16_linear(fp(y), fp(x), hp(w), fp(bias), rows, in, out, round_x); });
  return info.Env().Undefined();
}

Napi::Value Bf16EmbeddingDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaBf16EmbeddingDev"};
  require_count(c, 7);
  const bool i64 = require_bool(c, 3, "int64Indices");
  const int64_t n = require_int(c, 4, "n", 0, kLim), v = require_int(c, 5, "v", 1, kLim), e = require_int(c, 6, "e", 1, kLim);
  const int64_t ne = checked_product(c, "n*e", {n, e}), ve = checked_product(c, "v*e", {v, e});
  DeviceBuffer* out = require_device_buffer(c, 0, "out", ne * 4, bytes_of("n*e", ne, 4));
  DeviceBuffer* w = require_device_buffer(c, 1, "weight", ve * 2, bytes_of("v*e", ve, 2));
  DeviceBuffer* idx = require_device_buffer(c, 2, "indices", n * (i64 ? 8 : 4), i64 ? "8*n" : "4*n");
  if (out == w || out == idx) throw_range(c, "out must be a different buffer from weight and indices");
  run_sync(info.Env(), c.fn, [&] {
    if (i64) dk::bf16_embedding(fp(out), hp(w), static_cast<const int64_t*>(idx->ptr), n, e);
    else dk::bf16_embedding(fp(out), hp(w), static_cast<const int32_t*>(idx->ptr), n, e);
  });
  return info.Env().Undefined();
}

Napi::Value Bf16ToF32Dev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaBf16ToF32Dev"};
  require_count(c, 3);
  const int64_t n = require_int(c, 2, "n", 0, kLim);
  DeviceBuffer* out = require_device_buffer(c, 0, "out", n * 4, bytes_of("n", n, 4));
  DeviceBuffer* x = require_device_buffer(c, 1, "x", n * 2, bytes_of("n", n, 2));
  if (out == x) throw_range(c, "out and x must be different buffers");
  run_sync(info.Env(), c.fn, [&] { XLSTM_DEVICE_CALL(bf16_to_f32, fp(out), hp(x), n); });
  return info.Env().Undefined();
}

Napi::Value Bf16GemvCoverage(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaBf16GemvCoverage"};
  require_count(c, 4);
  const int64_t rows = require_int(c, 0, "rows", 1, 8);
  const int64_t in = require_int(c, 1, "inFeatures", 0, INT32_MAX);
  const int64_t out = require_int(c, 2, "outFeatures", 1, INT32_MAX);
  const int64_t n = checked_product(c, "rows*outFeatures", {rows, out});
  int32_t* counts = require_i32(c, 3, "counts", n, "rows*outFeatures");
  int64_t grid = 0;
  run_sync(info.Env(), c.fn, [&] { grid = cuda::bf16_gemv_coverage(rows, in, out, counts); });
  return Napi::Number::New(info.Env(), static_cast<double>(grid));
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaBf16LinearDev", Napi::Function::New(env, Bf16LinearDev, "cudaBf16LinearDev"));
  exports.Set("cudaBf16EmbeddingDev", Napi::Function::New(env, Bf16EmbeddingDev, "cudaBf16EmbeddingDev"));
  exports.Set("cudaBf16ToF32Dev", Napi::Function::New(env, Bf16ToF32Dev, "cudaBf16ToF32Dev"));
  exports.Set("cudaBf16GemvCoverage", Napi::Function::New(env, Bf16GemvCoverage, "cudaBf16GemvCoverage"));
}

}  // namespace

XLSTM_REGISTER(cuda_ops_bf16, Init);

}  // namespace xlstm
