// Binding layer, the remaining kernels on device buffers (the ops layer's and optimizers' CUDA tensors):
// reductions, causal conv1d, dropout (the CPU's Philox mask), AdamW / sum of squares / scaling, and permute
// (cuda/reduce.cu, conv1d.cu, dropout.cu, optim.cu, permute.cu). Same semantics as the CPU exports with device
// buffers (csrc/binding/device_buffer.h) in place of typed arrays, enqueued on the package's stream.
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "args.h"
#include "async.h"
#include "cuda_api.h"
#include "device_buffer.h"
#include "device_kernels.h"
#include "kernels/conv1d.h"
#include "kernels/dropout.h"
#include "kernels/optim.h"
#include "kernels/permute.h"
#include "kernels/reduce.h"
#include "reduce_args.h"
#include "registry.h"

namespace xlstm {
namespace {

constexpr int64_t kF = static_cast<int64_t>(sizeof(float));
constexpr int64_t kLim = INT64_C(1) << 40;

float* fp(DeviceBuffer* b) { return b ? static_cast<float*>(b->ptr) : nullptr; }
std::string floats(const char* what, int64_t n) { return std::string("4*") + what + " (" + std::to_string(n) + " floats)"; }

// cudaReduceDev(op, x, shape, axes, out, argmax | null): out (and, for max, argmax as int64) over the kept axes
Napi::Value ReduceDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaReduceDev"};
  require_count(c, 5);
  const reduce_args::ReduceArgs r = reduce_args::parse_reduce_common(c);
  DeviceBuffer* x = require_device_buffer(c, 1, "x", r.n * kF, floats("numel(shape)", r.n));
  DeviceBuffer* out = require_device_buffer(c, 4, "out", r.out_n * kF, r.out_desc);
  DeviceBuffer* argmax = optional_device_buffer(c, 5, "argmax", r.out_n * 8, "8*" + r.out_desc);
  if (r.op == ReduceOp::Max && !argmax) throw_type(c, "argmax must be a device buffer for max");
  if (out == x || (argmax && (argmax == x || argmax == out))) throw_range(c, "out and argmax must be buffers of their own");
  run_sync(info.Env(), c.fn, [&] {
    int64_t* am = argmax ? static_cast<int64_t*>(argmax->ptr) : nullptr;
    const int nd = static_cast<int>(r.shape.size());
    dk::reduce_axes(r.op, fp(out), am, fp(x), nd, r.shape.data(), r.reduced.data());
  });
  return info.Env().Undefined();
}

// cudaReduceBackwardDev(op, dy, shape, axes, dx, argmax | null)
Napi::Value ReduceBackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaReduceBackwardDev"};
  require_count(c, 5);
  const reduce_args::ReduceArgs r = reduce_args::parse_reduce_common(c);
  DeviceBuffer* dy = require_device_buffer(c, 1, "dy", r.out_n * kF, r.out_desc);
  DeviceBuffer* dx = require_device_buffer(c, 4, "dx", r.n * kF, floats("numel(shape)", r.n));
  DeviceBuffer* argmax = optional_device_buffer(c, 5, "argmax", r.out_n * 8, "8*" + r.out_desc);
  if (r.op == ReduceOp::Max && !argmax) throw_type(c, "argmax must be a device buffer for max");
  if (dx == dy || (argmax && argmax == dx)) throw_range(c, "dx must be a buffer of its own");
  run_sync(info.Env(), c.fn, [&] {
    const int64_t* am = argmax ? static_cast<const int64_t*>(argmax->ptr) : nullptr;
    const int nd = static_cast<int>(r.shape.size());
    if (replay_kernels())
      replay_with_writes("reduce_axes_backward", r.n, [&](int32_t* w) {
        cuda::reduce_axes_backward_emulate(r.op, fp(dx), fp(dy), am, nd, r.shape.data(), r.reduced.data(), w);
      });
    else
      XLSTM_DEVICE_CALL(reduce_axes_backward, r.op, fp(dx), fp(dy), am, nd, r.shape.data(), r.reduced.data());
  });
  return info.Env().Undefined();
}

struct ConvDims {
  int64_t b, s, f, k, n;
};

ConvDims conv_dims(const ArgCtx& c, size_t first) {
  ConvDims d;
  d.b = require_int(c, first, "b", 0, kLim);
  d.s = require_int(c, first + 1, "s", 0, kLim);
  d.f = require_int(c, first + 2, "f", 1, kLim);
  d.k = require_int(c, first + 3, "k", 1, 1 << 16);
  d.n = checked_product(c, "b*s*f", {d.b, d.s, d.f});
  checked_product(c, "f*k", {d.f, d.k});
  return d;
}

// cudaCausalConv1dDev(y, x, weight, bias | null, b, s, f, k)
Napi::Value Conv1dDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCausalConv1dDev"};
  require_count(c, 8);
  const ConvDims d = conv_dims(c, 4);
  DeviceBuffer* y = require_device_buffer(c, 0, "y", d.n * kF, floats("b*s*f", d.n));
  DeviceBuffer* x = require_device_buffer(c, 1, "x", d.n * kF, floats("b*s*f", d.n));
  DeviceBuffer* w = require_device_buffer(c, 2, "weight", d.f * d.k * kF, floats("f*k", d.f * d.k));
  DeviceBuffer* bias = optional_device_buffer(c, 3, "bias", d.f * kF, floats("f", d.f));
  if (y == x || y == w || y == bias) throw_range(c, "y must be a buffer of its own");
  run_sync(info.Env(), c.fn, [&] { dk::causal_conv1d(fp(y), fp(x), fp(w), fp(bias), d.b, d.s, d.f, d.k); });
  return info.Env().Undefined();
}

// cudaCausalConv1dBackwardDev(dx | null, dweight | null, dbias | null, dy, x, weight, b, s, f, k)
Napi::Value Conv1dBackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCausalConv1dBackwardDev"};
  require_count(c, 10);
  const ConvDims d = conv_dims(c, 6);
  DeviceBuffer* dx = optional_device_buffer(c, 0, "dx", d.n * kF, floats("b*s*f", d.n));
  DeviceBuffer* dw = optional_device_buffer(c, 1, "dweight", d.f * d.k * kF, floats("f*k", d.f * d.k));
  DeviceBuffer* db = optional_device_buffer(c, 2, "dbias", d.f * kF, floats("f", d.f));
  DeviceBuffer* dy = require_device_buffer(c, 3, "dy", d.n * kF, floats("b*s*f", d.n));
  DeviceBuffer* x = require_device_buffer(c, 4, "x", d.n * kF, floats("b*s*f", d.n));
  DeviceBuffer* w = require_device_buffer(c, 5, "weight", d.f * d.k * kF, floats("f*k", d.f * d.k));
  for (DeviceBuffer* o : {dx, dw, db})
    if (o && (o == dy || o == x || o == w)) throw_range(c, "gradient outputs must be buffers of their own");
  if ((dx && (dx == dw || dx == db)) || (dw && dw == db)) throw_range(c, "gradient outputs must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    if (replay_kernels())  // dx, dweight, dbias (given ones)
      replay_with_writes("causal_conv1d_backward", (dx ? d.n : 0) + (dw ? d.f * d.k : 0) + (db ? d.f : 0), [&](int32_t* wr) {
        cuda::causal_conv1d_backward_emulate(fp(dx), fp(dw), fp(db), fp(dy), fp(x), fp(w), d.b, d.s, d.f, d.k, wr);
      });
    else
      XLSTM_DEVICE_CALL(causal_conv1d_backward, fp(dx), fp(dw), fp(db), fp(dy), fp(x), fp(w), d.b, d.s, d.f, d.k);
  });
  return info.Env().Undefined();
}

uint32_t key_arg(const ArgCtx& c, size_t i, const char* name) {
  return static_cast<uint32_t>(require_int(c, i, name, 0, UINT32_MAX));
}

double probability_arg(const ArgCtx& c, size_t i) {
  const double p = require_number(c, i, "p");
  if (!(p >= 0 && p <= 1)) throw_range(c, "p must be a probability in [0, 1], got " + std::to_string(p));
  return p;
}

// cudaDropoutDev(y, mask, x, n, p, key0, key1): mask is n bytes (1 = kept)
Napi::Value DropoutDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaDropoutDev"};
  require_count(c, 7);
  const int64_t n = require_int(c, 3, "n", 0, kLim);
  const double p = probability_arg(c, 4);
  const uint32_t k0 = key_arg(c, 5, "key0"), k1 = key_arg(c, 6, "key1");
  DeviceBuffer* y = require_device_buffer(c, 0, "y", n * kF, floats("n", n));
  DeviceBuffer* mask = require_device_buffer(c, 1, "mask", n, "n");
  DeviceBuffer* x = require_device_buffer(c, 2, "x", n * kF, floats("n", n));
  if (y == x || mask == x || mask == y) throw_range(c, "y, mask and x must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    XLSTM_DEVICE_CALL(dropout_forward, fp(y), static_cast<uint8_t*>(mask->ptr), fp(x), n, p, k0, k1);
  });
  return info.Env().Undefined();
}

// cudaDropoutBackwardDev(dx, dy, mask, n, p)
Napi::Value DropoutBackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaDropoutBackwardDev"};
  require_count(c, 5);
  const int64_t n = require_int(c, 3, "n", 0, kLim);
  const double p = probability_arg(c, 4);
  DeviceBuffer* dx = require_device_buffer(c, 0, "dx", n * kF, floats("n", n));
  DeviceBuffer* dy = require_device_buffer(c, 1, "dy", n * kF, floats("n", n));
  DeviceBuffer* mask = require_device_buffer(c, 2, "mask", n, "n");
  if (dx == dy || dx == mask) throw_range(c, "dx must be a buffer of its own");
  run_sync(info.Env(), c.fn, [&] {
    XLSTM_DEVICE_CALL(dropout_backward, fp(dx), fp(dy), static_cast<const uint8_t*>(mask->ptr), n, dropout_scale(p));
  });
  return info.Env().Undefined();
}

// cudaAdamwStepDev(p, m, v, g, n, lr, beta1, beta2, eps, weightDecay, step): the CPU's AdamW update in place
Napi::Value AdamwStepDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaAdamwStepDev"};
  require_count(c, 11);
  const int64_t n = require_int(c, 4, "n", 0, kLim);
  const double lr = require_number(c, 5, "lr"), b1 = require_number(c, 6, "beta1"), b2 = require_number(c, 7, "beta2");
  const double eps = require_number(c, 8, "eps"), wd = require_number(c, 9, "weightDecay");
  const int64_t t = require_int(c, 10, "step", 1, INT64_C(1) << 53);
  if (!(lr >= 0 && std::isfinite(lr)) || !(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) || !(eps >= 0) || !(wd >= 0))
    throw_range(c, "lr, eps, weightDecay must be >= 0 (lr finite) and beta1, beta2 in [0, 1)");
  DeviceBuffer* p = require_device_buffer(c, 0, "p", n * kF, floats("n", n));
  DeviceBuffer* m = require_device_buffer(c, 1, "m", n * kF, floats("n", n));
  DeviceBuffer* v = require_device_buffer(c, 2, "v", n * kF, floats("n", n));
  DeviceBuffer* g = require_device_buffer(c, 3, "g", n * kF, floats("n", n));
  if (p == m || p == v || p == g || m == v || m == g || v == g) throw_range(c, "p, m, v and g must be four different buffers");
  run_sync(info.Env(), c.fn, [&] { XLSTM_DEVICE_CALL(adamw_step, fp(p), fp(m), fp(v), fp(g), n, lr, b1, b2, eps, wd, t); });
  return info.Env().Undefined();
}

// cudaSumSquaresDev(x, n, out, index): out (float64 values) [index] = sum of x[i]^2, accumulated in float64
Napi::Value SumSquaresDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSumSquaresDev"};
  require_count(c, 4);
  const int64_t n = require_int(c, 1, "n", 0, kLim);
  const int64_t index = require_int(c, 3, "index", 0, kLim);
  DeviceBuffer* x = require_device_buffer(c, 0, "x", n * kF, floats("n", n));
  DeviceBuffer* out = require_device_buffer(c, 2, "out", (index + 1) * 8, "8*(index+1)");
  if (out == x) throw_range(c, "out and x must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    double* o = static_cast<double*>(out->ptr) + index;
    if (cuda::emulated()) *o = sum_squares(fp(x), n);
    else cuda::sum_squares(o, fp(x), n, cuda::stream());
  });
  return info.Env().Undefined();
}

// cudaScaleInPlaceDev(x, n, alpha)
Napi::Value ScaleInPlaceDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaScaleInPlaceDev"};
  require_count(c, 3);
  const int64_t n = require_int(c, 1, "n", 0, kLim);
  const double a = require_number(c, 2, "alpha");
  if (!std::isfinite(a)) throw_range(c, "alpha must be finite");
  DeviceBuffer* x = require_device_buffer(c, 0, "x", n * kF, floats("n", n));
  run_sync(info.Env(), c.fn, [&] { XLSTM_DEVICE_CALL(scale_inplace, fp(x), n, static_cast<float>(a)); });
  return info.Env().Undefined();
}

// cudaPermuteDev(out, in, elemSize, inShape, perm): out = in with its axes reordered (dense, any element size)
Napi::Value PermuteDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaPermuteDev"};
  require_count(c, 5);
  const int64_t es = require_int(c, 2, "elemSize", 1, 16);
  if (es != 1 && es != 2 && es != 4 && es != 8) throw_range(c, "elemSize must be 1, 2, 4 or 8");
  std::vector<int64_t> shape = require_int_array(c, 3, "inShape", 0, kLim);
  std::vector<int64_t> perm = require_int_array(c, 4, "perm", 0, 15);
  if (shape.size() > 16 || perm.size() != shape.size()) throw_range(c, "perm must have one entry per dimension of inShape (at most 16)");
  std::vector<uint8_t> seen(shape.size(), 0);
  for (int64_t p : perm) {
    if (p >= static_cast<int64_t>(shape.size()) || seen[p]) throw_range(c, "perm must be a permutation of the axes");
    seen[p] = 1;
  }
  const int64_t n = checked_product(c, "inShape", shape);
  DeviceBuffer* out = require_device_buffer(c, 0, "out", n * es, "elemSize*numel(inShape)");
  DeviceBuffer* in = require_device_buffer(c, 1, "in", n * es, "elemSize*numel(inShape)");
  if (out == in) throw_range(c, "out and in must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    dk::permute(out->ptr, in->ptr, static_cast<int>(es), shape.data(), perm.data(), static_cast<int>(shape.size()));
  });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaReduceDev", Napi::Function::New(env, ReduceDev, "cudaReduceDev"));
  exports.Set("cudaReduceBackwardDev", Napi::Function::New(env, ReduceBackwardDev, "cudaReduceBackwardDev"));
  exports.Set("cudaCausalConv1dDev", Napi::Function::New(env, Conv1dDev, "cudaCausalConv1dDev"));
  exports.Set("cudaCausalConv1dBackwardDev", Napi::Function::New(env, Conv1dBackwardDev, "cudaCausalConv1dBackwardDev"));
  exports.Set("cudaDropoutDev", Napi::Function::New(env, DropoutDev, "cudaDropoutDev"));
  exports.Set("cudaDropoutBackwardDev", Napi::Function::New(env, DropoutBackwardDev, "cudaDropoutBackwardDev"));
  exports.Set("cudaAdamwStepDev", Napi::Function::New(env, AdamwStepDev, "cudaAdamwStepDev"));
  exports.Set("cudaSumSquaresDev", Napi::Function::New(env, SumSquaresDev, "cudaSumSquaresDev"));
  exports.Set("cudaScaleInPlaceDev", Napi::Function::New(env, ScaleInPlaceDev, "cudaScaleInPlaceDev"));
  exports.Set("cudaPermuteDev", Napi::Function::New(env, PermuteDev, "cudaPermuteDev"));
}

}  // namespace

XLSTM_REGISTER(cuda_ops_misc, Init);

}  // namespace xlstm
