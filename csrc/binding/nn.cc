// Binding layer, nn family: softmax / log-softmax / cross-entropy (kernels/softmax.h), layer norm and per-head
// layer norm (kernels/norm.h), embedding (kernels/embedding.h), depthwise causal conv1d (kernels/conv1d.h) and
// dropout (kernels/dropout.h). Every export checks its arguments (TypeError for a wrong kind, RangeError for a
// wrong size or value, naming the argument), checks that outputs do not overlap inputs, checks index values
// before any kernel runs, then calls the kernel synchronously (these are short calls; the op layer is sync).
#include <napi.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/conv1d_args.h"
#include "binding/dropout_args.h"
#include "binding/nn_args.h"
#include "binding/registry.h"
#include "kernels/conv1d.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/norm.h"
#include "kernels/softmax.h"

namespace xlstm {
namespace {

using namespace nnargs;  // argument parsing shared with the CUDA twins (binding/nn_args.h)

bool absent(const ArgCtx& c, size_t i) {
  return c.info.Length() <= i || c.info[i].IsNull() || c.info[i].IsUndefined();
}

// ---- softmax family --------------------------------------------------------------------------------------------

template <void (*Fn)(float*, const float*, int64_t, int64_t)>
Napi::Value RowwiseForward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  const RowwiseForwardArgs a = parse_rowwise_forward(c);
  if (a.n == 0) return info.Env().Undefined();  // e.g. 2^40 rows of 0 columns: nothing to do, do not loop over them
  run_sync(info.Env(), fn, [&] { Fn(a.y, a.x, a.rows, a.cols); });
  return info.Env().Undefined();
}

template <void (*Fn)(float*, const float*, const float*, int64_t, int64_t)>
Napi::Value RowwiseBackward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  const RowwiseBackwardArgs a = parse_rowwise_backward(c);
  if (a.n == 0) return info.Env().Undefined();  // rows of 0 columns (or 0 rows): nothing to do
  run_sync(info.Env(), fn, [&] { Fn(a.dx, a.y, a.dy, a.rows, a.cols); });
  return info.Env().Undefined();
}

Napi::Value SoftmaxForward(const Napi::CallbackInfo& info) {
  return RowwiseForward<softmax_forward>(info, "softmaxForward");
}
Napi::Value LogSoftmaxForward(const Napi::CallbackInfo& info) {
  return RowwiseForward<log_softmax_forward>(info, "logSoftmaxForward");
}
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  return RowwiseBackward<softmax_backward>(info, "softmaxBackward");
}
Napi::Value LogSoftmaxBackward(const Napi::CallbackInfo& info) {
  return RowwiseBackward<log_softmax_backward>(info, "logSoftmaxBackward");
}

// crossEntropyForward(loss, rowMax, logSum, logits, targets, n, v, ignoreIndex) -> count of non-ignored rows
Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "crossEntropyForward"};
  const CrossEntropyForwardArgs a = parse_cross_entropy_forward(c);
  int64_t count = 0;
  run_sync(info.Env(), "crossEntropyForward", [&] {
    count = a.t.i32 ? cross_entropy_forward(a.loss, a.row_max, a.log_sum, a.logits, a.t.i32, a.n, a.v, a.ignore)
                    : cross_entropy_forward(a.loss, a.row_max, a.log_sum, a.logits, a.t.i64, a.n, a.v, a.ignore);
  });
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}

// crossEntropyBackward(dlogits, logits, rowMax, logSum, targets, g, n, v, ignoreIndex)
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "crossEntropyBackward"};
  const CrossEntropyBackwardArgs a = parse_cross_entropy_backward(c);
  run_sync(info.Env(), "crossEntropyBackward", [&] {
    if (a.t.i32) cross_entropy_backward(a.dlogits, a.logits, a.row_max, a.log_sum, a.t.i32, a.g, a.n, a.v, a.ignore);
    else cross_entropy_backward(a.dlogits, a.logits, a.row_max, a.log_sum, a.t.i64, a.g, a.n, a.v, a.ignore);
  });
  return info.Env().Undefined();
}

// ---- layer norm ------------------------------------------------------------------------------------------------

// layerNormForward(y, mean, rstd, x, weight|null, bias|null, rows, groups, dim, eps, residualWeight)
Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "layerNormForward"};
  const LayerNormForwardArgs a = parse_layer_norm_forward(c);
  run_sync(info.Env(), "layerNormForward", [&] {
    layer_norm_forward(a.y, a.mean, a.rstd, a.x, a.w, a.b, a.s.rows, a.s.groups, a.s.dim, a.eps, a.residual);
  });
  return info.Env().Undefined();
}

// layerNormBackward(dx, dweight|null, dbias|null, dy, x, mean, rstd, weight|null, rows, groups, dim, residualWeight)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "layerNormBackward"};
  const LayerNormBackwardArgs a = parse_layer_norm_backward(c);
  run_sync(info.Env(), "layerNormBackward", [&] {
    layer_norm_backward(a.dx, a.dw, a.db, a.dy, a.x, a.mean, a.rstd, a.w, a.s.rows, a.s.groups, a.s.dim, a.residual);
  });
  return info.Env().Undefined();
}

// ---- embedding -------------------------------------------------------------------------------------------------

// embeddingForward(out, weight, indices, v, e); out has indices.length * e elements
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "embeddingForward"};
  const EmbeddingForwardArgs a = parse_embedding_forward(c);
  run_sync(info.Env(), "embeddingForward", [&] {
    if (a.s.idx.i32) embedding_forward(a.out, a.w, a.s.idx.i32, a.s.n, a.s.e);
    else embedding_forward(a.out, a.w, a.s.idx.i64, a.s.n, a.s.e);
  });
  return info.Env().Undefined();
}

// embeddingBackward(dweight, dout, indices, v, e)
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "embeddingBackward"};
  const EmbeddingBackwardArgs a = parse_embedding_backward(c);
  run_sync(info.Env(), "embeddingBackward", [&] {
    if (a.s.idx.i32) embedding_backward(a.dw, a.dout, a.s.idx.i32, a.s.n, a.s.v, a.s.e);
    else embedding_backward(a.dw, a.dout, a.s.idx.i64, a.s.n, a.s.v, a.s.e);
  });
  return info.Env().Undefined();
}

// ---- causal conv1d ---------------------------------------------------------------------------------------------
// Argument parsing: binding/conv1d_args.h (shared with the CUDA twin's entries in cuda_misc.cc).

// causalConv1dForward(y, x, weight, bias|null, b, s, f, k)
Napi::Value CausalConv1dForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "causalConv1dForward"};
  const conv1d_args::ForwardCall a = conv1d_args::parse_forward(c);
  const conv1d_args::ConvSizes& z = a.z;
  run_sync(info.Env(), "causalConv1dForward", [&] { causal_conv1d_forward(a.y, a.x, a.w, a.b, z.b, z.s, z.f, z.k); });
  return info.Env().Undefined();
}

// causalConv1dBackward(dx|null, dweight|null, dbias|null, dy, x, weight, b, s, f, k)
Napi::Value CausalConv1dBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "causalConv1dBackward"};
  const conv1d_args::BackwardCall a = conv1d_args::parse_backward(c);
  const conv1d_args::ConvSizes& z = a.z;
  run_sync(info.Env(), "causalConv1dBackward",
           [&] { causal_conv1d_backward(a.dx, a.dw, a.db, a.dy, a.x, a.w, z.b, z.s, z.f, z.k); });
  return info.Env().Undefined();
}

// ---- dropout ---------------------------------------------------------------------------------------------------
// Argument parsing: binding/dropout_args.h (shared with the CUDA twin's entries in cuda_misc.cc).

// dropoutForward(y, mask, x, p, key0, key1)
Napi::Value DropoutForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "dropoutForward"};
  const dropout_args::ForwardCall a = dropout_args::parse_forward(c);
  run_sync(info.Env(), "dropoutForward", [&] { dropout_forward(a.y, a.mask, a.x, a.n, a.p, a.k0, a.k1); });
  return info.Env().Undefined();
}

// dropoutBackward(dx, dy, mask, p)
Napi::Value DropoutBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "dropoutBackward"};
  const dropout_args::BackwardCall a = dropout_args::parse_backward(c);
  run_sync(info.Env(), "dropoutBackward", [&] { dropout_backward(a.dx, a.dy, a.mask, a.n, dropout_scale(a.p)); });
  return info.Env().Undefined();
}

// philox4x32(counter: 4 uint32, key: 2 uint32) -> 4 uint32: the generator behind dropoutForward's masks.
Napi::Value Philox4x32(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "philox4x32"};
  require_count(c, 2);
  std::vector<int64_t> ctr = require_int_array(c, 0, "counter", 0, 0xFFFFFFFFll);
  std::vector<int64_t> key = require_int_array(c, 1, "key", 0, 0xFFFFFFFFll);
  if (ctr.size() != 4) throw_range(c, "counter has " + std::to_string(ctr.size()) + " elements, expected 4");
  if (key.size() != 2) throw_range(c, "key has " + std::to_string(key.size()) + " elements, expected 2");
  uint32_t cc[4], kk[2], out[4];
  for (int i = 0; i < 4; ++i) cc[i] = static_cast<uint32_t>(ctr[i]);
  for (int i = 0; i < 2; ++i) kk[i] = static_cast<uint32_t>(key[i]);
  philox4x32_10(out, cc, kk);
  Napi::Array a = Napi::Array::New(info.Env(), 4);
  for (uint32_t i = 0; i < 4; ++i) a.Set(i, Napi::Number::New(info.Env(), static_cast<double>(out[i])));
  return a;
}

void Init(Napi::Env env, Napi::Object exports) {
  auto def = [&](const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  def("softmaxForward", SoftmaxForward);
  def("logSoftmaxForward", LogSoftmaxForward);
  def("softmaxBackward", SoftmaxBackward);
  def("logSoftmaxBackward", LogSoftmaxBackward);
  def("crossEntropyForward", CrossEntropyForward);
  def("crossEntropyBackward", CrossEntropyBackward);
  def("layerNormForward", LayerNormForward);
  def("layerNormBackward", LayerNormBackward);
  def("embeddingForward", EmbeddingForward);
  def("embeddingBackward", EmbeddingBackward);
  def("causalConv1dForward", CausalConv1dForward);
  def("causalConv1dBackward", CausalConv1dBackward);
  def("dropoutForward", DropoutForward);
  def("dropoutBackward", DropoutBackward);
  def("philox4x32", Philox4x32);
}

}  // namespace

XLSTM_REGISTER(nn, Init);

}  // namespace xlstm
