// Binding layer, nn kernels on device buffers (the ops layer's CUDA tensors): softmax / log-softmax, fused
// cross-entropy, layer norm and embedding (cuda/softmax.cu, cuda/norm.cu, cuda/embedding.cu). Same semantics as the
// CPU exports of csrc/binding/nn.cc with device buffers (csrc/binding/device_buffer.h) in place of typed arrays,
// enqueued on the package's stream. Integer inputs (targets, indices) must already be checked against their range by
// the caller (lib/ops validates them on the host before uploading): the kernels index with them.
#include <napi.h>

#include <cmath>
#include <string>

#include "args.h"
#include "async.h"
#include "cuda_api.h"
#include "device_buffer.h"
#include "device_kernels.h"
#include "kernels/embedding.h"
#include "kernels/norm.h"
#include "kernels/softmax.h"
#include "registry.h"

namespace xlstm {
namespace {

constexpr int64_t kF = static_cast<int64_t>(sizeof(float));
constexpr int64_t kLim = INT64_C(1) << 40;

float* fp(DeviceBuffer* b) { return b ? static_cast<float*>(b->ptr) : nullptr; }

std::string floats(const char* what, int64_t n) { return std::string("4*") + what + " (" + std::to_string(n) + " floats)"; }

// cudaSoftmaxDev(log, x, y, rows, cols): y = (log_)softmax(x) over rows of cols
Napi::Value SoftmaxDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSoftmaxDev"};
  require_count(c, 5);
  const bool log = require_bool(c, 0, "log");
  const int64_t rows = require_int(c, 3, "rows", 0, kLim), cols = require_int(c, 4, "cols", 0, kLim);
  const int64_t n = checked_product(c, "rows*cols", {rows, cols});
  DeviceBuffer* x = require_device_buffer(c, 1, "x", n * kF, floats("rows*cols", n));
  DeviceBuffer* y = require_device_buffer(c, 2, "y", n * kF, floats("rows*cols", n));
  if (x == y) throw_range(c, "y and x must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    if (replay_kernels()) replay_with_writes("softmax", n, [&](int32_t* w) { cuda::softmax_emulate(log, fp(y), fp(x), rows, cols, w); });
    else if (log) XLSTM_DEVICE_CALL(log_softmax_forward, fp(y), fp(x), rows, cols);
    else XLSTM_DEVICE_CALL(softmax_forward, fp(y), fp(x), rows, cols);
  });
  return info.Env().Undefined();
}

// cudaSoftmaxBackwardDev(log, y, dy, dx, rows, cols)
Napi::Value SoftmaxBackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSoftmaxBackwardDev"};
  require_count(c, 6);
  const bool log = require_bool(c, 0, "log");
  const int64_t rows = require_int(c, 4, "rows", 0, kLim), cols = require_int(c, 5, "cols", 0, kLim);
  const int64_t n = checked_product(c, "rows*cols", {rows, cols});
  DeviceBuffer* y = require_device_buffer(c, 1, "y", n * kF, floats("rows*cols", n));
  DeviceBuffer* dy = require_device_buffer(c, 2, "dy", n * kF, floats("rows*cols", n));
  DeviceBuffer* dx = require_device_buffer(c, 3, "dx", n * kF, floats("rows*cols", n));
  if (dx == y || dx == dy) throw_range(c, "dx must be a buffer of its own");
  run_sync(info.Env(), c.fn, [&] {
    if (replay_kernels()) replay_with_writes("softmax_backward", n, [&](int32_t* w) { cuda::softmax_backward_emulate(log, fp(dx), fp(y), fp(dy), rows, cols, w); });
    else if (log) XLSTM_DEVICE_CALL(log_softmax_backward, fp(dx), fp(y), fp(dy), rows, cols);
    else XLSTM_DEVICE_CALL(softmax_backward, fp(dx), fp(y), fp(dy), rows, cols);
  });
  return info.Env().Undefined();
}

// cudaCrossEntropyDev(loss, rowMax, logSum, count, logits, targets, int64Targets, n, v, ignoreIndex): per-row
// losses, the softmax statistics the backward reads, and count (one int64) = rows whose target is not ignoreIndex
Napi::Value CrossEntropyDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCrossEntropyDev"};
  require_count(c, 10);
  const bool i64 = require_bool(c, 6, "int64Targets");
  const int64_t n = require_int(c, 7, "n", 0, kLim), v = require_int(c, 8, "v", 1, kLim);
  const double ign = require_number(c, 9, "ignoreIndex");
  if (!std::isfinite(ign) || std::trunc(ign) != ign) throw_range(c, "ignoreIndex must be an integer");
  const int64_t nv = checked_product(c, "n*v", {n, v});
  DeviceBuffer* loss = require_device_buffer(c, 0, "loss", n * kF, floats("n", n));
  DeviceBuffer* row_max = require_device_buffer(c, 1, "rowMax", n * kF, floats("n", n));
  DeviceBuffer* log_sum = require_device_buffer(c, 2, "logSum", n * kF, floats("n", n));
  DeviceBuffer* count = require_device_buffer(c, 3, "count", 8, "8 (one int64)");
  DeviceBuffer* logits = require_device_buffer(c, 4, "logits", nv * kF, floats("n*v", nv));
  DeviceBuffer* targets = require_device_buffer(c, 5, "targets", n * (i64 ? 8 : 4), i64 ? "8*n" : "4*n");
  run_sync(info.Env(), c.fn, [&] {
    int64_t* cnt = static_cast<int64_t*>(count->ptr);
    const int64_t ig = static_cast<int64_t>(ign);
    const void* t = targets->ptr;
    if (replay_kernels()) {
      replay_with_writes("cross_entropy_forward", 3 * n, [&](int32_t* w) {
        *cnt = i64 ? cuda::cross_entropy_forward_emulate<int64_t>(fp(loss), fp(row_max), fp(log_sum), fp(logits), static_cast<const int64_t*>(t), n, v, ig, w)
                   : cuda::cross_entropy_forward_emulate<int32_t>(fp(loss), fp(row_max), fp(log_sum), fp(logits), static_cast<const int32_t*>(t), n, v, ig, w);
      });
    } else if (cuda::emulated()) {
      *cnt = i64 ? cross_entropy_forward<int64_t>(fp(loss), fp(row_max), fp(log_sum), fp(logits), static_cast<const int64_t*>(t), n, v, ig)
                 : cross_entropy_forward<int32_t>(fp(loss), fp(row_max), fp(log_sum), fp(logits), static_cast<const int32_t*>(t), n, v, ig);
    } else if (i64) {
      cuda::cross_entropy_forward<int64_t>(fp(loss), fp(row_max), fp(log_sum), fp(logits), static_cast<const int64_t*>(t), n, v, ig, cnt, cuda::stream());
    } else {
      cuda::cross_entropy_forward<int32_t>(fp(loss), fp(row_max), fp(log_sum), fp(logits), static_cast<const int32_t*>(t), n, v, ig, cnt, cuda::stream());
    }
  });
  return info.Env().Undefined();
}

// cudaCrossEntropyBackwardDev(dlogits, logits, rowMax, logSum, targets, int64Targets, g, n, v, ignoreIndex):
// dlogits = (softmax(logits) - onehot(target)) * g per row (g: one value per row)
Napi::Value CrossEntropyBackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCrossEntropyBackwardDev"};
  require_count(c, 10);
  const bool i64 = require_bool(c, 5, "int64Targets");
  const int64_t n = require_int(c, 7, "n", 0, kLim), v = require_int(c, 8, "v", 1, kLim);
  const double ign = require_number(c, 9, "ignoreIndex");
  if (!std::isfinite(ign) || std::trunc(ign) != ign) throw_range(c, "ignoreIndex must be an integer");
  const int64_t nv = checked_product(c, "n*v", {n, v});
  DeviceBuffer* dlogits = require_device_buffer(c, 0, "dlogits", nv * kF, floats("n*v", nv));
  DeviceBuffer* logits = require_device_buffer(c, 1, "logits", nv * kF, floats("n*v", nv));
  DeviceBuffer* row_max = require_device_buffer(c, 2, "rowMax", n * kF, floats("n", n));
  DeviceBuffer* log_sum = require_device_buffer(c, 3, "logSum", n * kF, floats("n", n));
  DeviceBuffer* targets = require_device_buffer(c, 4, "targets", n * (i64 ? 8 : 4), i64 ? "8*n" : "4*n");
  DeviceBuffer* g = require_device_buffer(c, 6, "g", n * kF, floats("n", n));
  if (dlogits == logits) throw_range(c, "dlogits and logits must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    const int64_t ig = static_cast<int64_t>(ign);
    if (replay_kernels())
      replay_with_writes("cross_entropy_backward", nv, [&](int32_t* w) {
        if (i64) cuda::cross_entropy_backward_emulate<int64_t>(fp(dlogits), fp(logits), fp(row_max), fp(log_sum), static_cast<const int64_t*>(targets->ptr), fp(g), n, v, ig, w);
        else cuda::cross_entropy_backward_emulate<int32_t>(fp(dlogits), fp(logits), fp(row_max), fp(log_sum), static_cast<const int32_t*>(targets->ptr), fp(g), n, v, ig, w);
      });
    else if (i64)
      XLSTM_DEVICE_CALL(cross_entropy_backward<int64_t>, fp(dlogits), fp(logits), fp(row_max), fp(log_sum), static_cast<const int64_t*>(targets->ptr), fp(g), n, v, ig);
    else
      XLSTM_DEVICE_CALL(cross_entropy_backward<int32_t>, fp(dlogits), fp(logits), fp(row_max), fp(log_sum), static_cast<const int32_t*>(targets->ptr), fp(g), n, v, ig);
  });
  return info.Env().Undefined();
}

struct NormDims {
  int64_t rows, groups, dim, n, gd;
};

NormDims norm_dims(const ArgCtx& c, size_t first) {
  NormDims d;
  d.rows = require_int(c, first, "rows", 0, kLim);
  d.groups = require_int(c, first + 1, "groups", 1, kLim);
  d.dim = require_int(c, first + 2, "dim", 1, kLim);
  d.n = checked_product(c, "rows*groups*dim", {d.rows, d.groups, d.dim});
  d.gd = checked_product(c, "groups*dim", {d.groups, d.dim});
  return d;
}

// cudaLayerNormDev(y, mean, rstd, x, w | null, b | null, rows, groups, dim, eps, residual)
Napi::Value LayerNormDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaLayerNormDev"};
  require_count(c, 11);
  const NormDims d = norm_dims(c, 6);
  const double eps = require_number(c, 9, "eps");
  if (!std::isfinite(eps) || eps < 0) throw_range(c, "eps must be a finite number >= 0");
  const bool residual = require_bool(c, 10, "residual");
  const int64_t rg = d.rows * d.groups;
  DeviceBuffer* y = require_device_buffer(c, 0, "y", d.n * kF, floats("rows*groups*dim", d.n));
  DeviceBuffer* mean = require_device_buffer(c, 1, "mean", rg * kF, floats("rows*groups", rg));
  DeviceBuffer* rstd = require_device_buffer(c, 2, "rstd", rg * kF, floats("rows*groups", rg));
  DeviceBuffer* x = require_device_buffer(c, 3, "x", d.n * kF, floats("rows*groups*dim", d.n));
  DeviceBuffer* w = optional_device_buffer(c, 4, "w", d.gd * kF, floats("groups*dim", d.gd));
  DeviceBuffer* b = optional_device_buffer(c, 5, "b", d.gd * kF, floats("groups*dim", d.gd));
  if (y == x) throw_range(c, "y and x must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    dk::layer_norm(fp(y), fp(mean), fp(rstd), fp(x), fp(w), fp(b), d.rows, d.groups, d.dim, static_cast<float>(eps), residual);
  });
  return info.Env().Undefined();
}

// cudaLayerNormBackwardDev(dx, dw | null, db | null, dy, x, mean, rstd, w | null, rows, groups, dim, residual)
Napi::Value LayerNormBackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaLayerNormBackwardDev"};
  require_count(c, 12);
  const NormDims d = norm_dims(c, 8);
  const bool residual = require_bool(c, 11, "residual");
  const int64_t rg = d.rows * d.groups;
  DeviceBuffer* dx = require_device_buffer(c, 0, "dx", d.n * kF, floats("rows*groups*dim", d.n));
  DeviceBuffer* dw = optional_device_buffer(c, 1, "dw", d.gd * kF, floats("groups*dim", d.gd));
  DeviceBuffer* db = optional_device_buffer(c, 2, "db", d.gd * kF, floats("groups*dim", d.gd));
  DeviceBuffer* dy = require_device_buffer(c, 3, "dy", d.n * kF, floats("rows*groups*dim", d.n));
  DeviceBuffer* x = require_device_buffer(c, 4, "x", d.n * kF, floats("rows*groups*dim", d.n));
  DeviceBuffer* mean = require_device_buffer(c, 5, "mean", rg * kF, floats("rows*groups", rg));
  DeviceBuffer* rstd = require_device_buffer(c, 6, "rstd", rg * kF, floats("rows*groups", rg));
  DeviceBuffer* w = optional_device_buffer(c, 7, "w", d.gd * kF, floats("groups*dim", d.gd));
  if (dx == dy || dx == x) throw_range(c, "dx must be a buffer of its own");
  if (dw && dw == db) throw_range(c, "dw and db must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    if (replay_kernels())
      replay_with_writes("layer_norm_backward", d.n + (dw ? d.gd : 0) + (db ? d.gd : 0), [&](int32_t* wr) {
        cuda::layer_norm_backward_emulate(fp(dx), fp(dw), fp(db), fp(dy), fp(x), fp(mean), fp(rstd), fp(w), d.rows, d.groups, d.dim, residual, wr);
      });
    else
    XLSTM_DEVICE_CALL(layer_norm_backward, fp(dx), fp(dw), fp(db), fp(dy), fp(x), fp(mean), fp(rstd), fp(w), d.rows, d.groups,
                              d.dim, residual);
  });
  return info.Env().Undefined();
}

// cudaEmbeddingDev(out, weight, indices, int64Indices, n, v, e): out[i] = weight[indices[i]]
Napi::Value EmbeddingDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaEmbeddingDev"};
  require_count(c, 7);
  const bool i64 = require_bool(c, 3, "int64Indices");
  const int64_t n = require_int(c, 4, "n", 0, kLim), v = require_int(c, 5, "v", 1, kLim), e = require_int(c, 6, "e", 1, kLim);
  const int64_t ne = checked_product(c, "n*e", {n, e}), ve = checked_product(c, "v*e", {v, e});
  DeviceBuffer* out = require_device_buffer(c, 0, "out", ne * kF, floats("n*e", ne));
  DeviceBuffer* w = require_device_buffer(c, 1, "weight", ve * kF, floats("v*e", ve));
  DeviceBuffer* idx = require_device_buffer(c, 2, "indices", n * (i64 ? 8 : 4), i64 ? "8*n" : "4*n");
  if (out == w) throw_range(c, "out and weight must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    if (i64) dk::embedding(fp(out), fp(w), static_cast<const int64_t*>(idx->ptr), n, e);
    else dk::embedding(fp(out), fp(w), static_cast<const int32_t*>(idx->ptr), n, e);
  });
  return info.Env().Undefined();
}

// cudaEmbeddingBackwardDev(dweight, dout, indices, int64Indices, n, v, e): dweight = scatter-add of dout rows
Napi::Value EmbeddingBackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaEmbeddingBackwardDev"};
  require_count(c, 7);
  const bool i64 = require_bool(c, 3, "int64Indices");
  const int64_t n = require_int(c, 4, "n", 0, kLim), v = require_int(c, 5, "v", 1, kLim), e = require_int(c, 6, "e", 1, kLim);
  const int64_t ne = checked_product(c, "n*e", {n, e}), ve = checked_product(c, "v*e", {v, e});
  DeviceBuffer* dw = require_device_buffer(c, 0, "dweight", ve * kF, floats("v*e", ve));
  DeviceBuffer* dout = require_device_buffer(c, 1, "dout", ne * kF, floats("n*e", ne));
  DeviceBuffer* idx = require_device_buffer(c, 2, "indices", n * (i64 ? 8 : 4), i64 ? "8*n" : "4*n");
  if (dw == dout) throw_range(c, "dweight and dout must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    if (replay_kernels())
      replay_with_writes("embedding_backward", ve, [&](int32_t* wr) {
        if (i64) cuda::embedding_backward_emulate<int64_t>(fp(dw), fp(dout), static_cast<const int64_t*>(idx->ptr), n, v, e, wr);
        else cuda::embedding_backward_emulate<int32_t>(fp(dw), fp(dout), static_cast<const int32_t*>(idx->ptr), n, v, e, wr);
      });
    else if (i64) XLSTM_DEVICE_CALL(embedding_backward<int64_t>, fp(dw), fp(dout), static_cast<const int64_t*>(idx->ptr), n, v, e);
    else XLSTM_DEVICE_CALL(embedding_backward<int32_t>, fp(dw), fp(dout), static_cast<const int32_t*>(idx->ptr), n, v, e);
  });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaSoftmaxDev", Napi::Function::New(env, SoftmaxDev, "cudaSoftmaxDev"));
  exports.Set("cudaSoftmaxBackwardDev", Napi::Function::New(env, SoftmaxBackwardDev, "cudaSoftmaxBackwardDev"));
  exports.Set("cudaCrossEntropyDev", Napi::Function::New(env, CrossEntropyDev, "cudaCrossEntropyDev"));
  exports.Set("cudaCrossEntropyBackwardDev", Napi::Function::New(env, CrossEntropyBackwardDev, "cudaCrossEntropyBackwardDev"));
  exports.Set("cudaLayerNormDev", Napi::Function::New(env, LayerNormDev, "cudaLayerNormDev"));
  exports.Set("cudaLayerNormBackwardDev", Napi::Function::New(env, LayerNormBackwardDev, "cudaLayerNormBackwardDev"));
  exports.Set("cudaEmbeddingDev", Napi::Function::New(env, EmbeddingDev, "cudaEmbeddingDev"));
  exports.Set("cudaEmbeddingBackwardDev", Napi::Function::New(env, EmbeddingBackwardDev, "cudaEmbeddingBackwardDev"));
}

}  // namespace

XLSTM_REGISTER(cuda_ops_nn, Init);

}  // namespace xlstm
