// Binding layer, CUDA twins of the nn kernels (cuda/norm.cu, cuda/softmax.cu, cuda/embedding.cu): for every CPU
// export X of csrc/binding/nn.cc in softmax / cross-entropy / layer norm / embedding,
//   cudaXHost(...same arguments as X...)    runs the CUDA kernel on the current device (copies in, runs, copies
//                                           back, synchronises); an Error "cudaXHost: CUDA is not available: <reason>"
//                                           when no GPU is usable (host emulation included: it has no CUDA kernels);
//   cudaXEmulate(...same arguments..., writes)  replays the CUDA launch on the host (no GPU needed): every block
//                                           and thread, the kernels' own __host__ __device__ code and reduction
//                                           order; writes (Int32Array) receives how many times each output element
//                                           was written, outputs concatenated in argument order (absent optional
//                                           outputs take no room). Throws "... built without CUDA" in CPU-only builds.
// Arguments are parsed and checked by the CPU exports' own parsers (binding/nn_args.h): same errors, same order.
#include <napi.h>

#include <algorithm>
#include <string>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/device_buffer.h"
#include "binding/nn_args.h"
#include "binding/registry.h"
#include "cuda_api.h"

namespace xlstm {
namespace {

using namespace nnargs;

enum class Mode { Host, Emulate };

// The trailing `writes` argument of an emulate entry (at index i, `total` counters), zeroed.
int32_t* require_writes(const ArgCtx& c, size_t i, int64_t total, const std::string& desc) {
  require_count(c, i + 1);
  int32_t* w = require_i32(c, i, "writes", total, desc);
  std::fill(w, w + total, 0);
  return w;
}

// ---- softmax family --------------------------------------------------------------------------------------------

template <bool LOG, Mode M>
Napi::Value RowwiseForward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  const RowwiseForwardArgs a = parse_rowwise_forward(c);
  if (M == Mode::Host) {
    require_real_cuda_device(c);
    if (a.n == 0) return info.Env().Undefined();
    run_sync(info.Env(), fn, [&] {
      if (LOG) cuda::log_softmax_forward_host(a.y, a.x, a.rows, a.cols);
      else cuda::softmax_forward_host(a.y, a.x, a.rows, a.cols);
    });
  } else {
    int32_t* w = require_writes(c, 4, a.n, "y.length");
    if (a.n == 0) return info.Env().Undefined();
    run_sync(info.Env(), fn, [&] { cuda::softmax_emulate(LOG, a.y, a.x, a.rows, a.cols, w); });
  }
  return info.Env().Undefined();
}

template <bool LOG, Mode M>
Napi::Value RowwiseBackward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  const RowwiseBackwardArgs a = parse_rowwise_backward(c);
  if (M == Mode::Host) {
    require_real_cuda_device(c);
    if (a.n == 0) return info.Env().Undefined();
    run_sync(info.Env(), fn, [&] {
      if (LOG) cuda::log_softmax_backward_host(a.dx, a.y, a.dy, a.rows, a.cols);
      else cuda::softmax_backward_host(a.dx, a.y, a.dy, a.rows, a.cols);
    });
  } else {
    int32_t* w = require_writes(c, 5, a.n, "dx.length");
    if (a.n == 0) return info.Env().Undefined();
    run_sync(info.Env(), fn, [&] { cuda::softmax_backward_emulate(LOG, a.dx, a.y, a.dy, a.rows, a.cols, w); });
  }
  return info.Env().Undefined();
}

template <Mode M>
Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  const CrossEntropyForwardArgs a = parse_cross_entropy_forward(c);
  int32_t* w = nullptr;
  if (M == Mode::Host) require_real_cuda_device(c);
  else w = require_writes(c, 8, 3 * a.n, "3*n (loss, rowMax, logSum)");
  int64_t count = 0;
  run_sync(info.Env(), fn, [&] {
    if (M == Mode::Host)
      count = a.t.i32 ? cuda::cross_entropy_forward_host(a.loss, a.row_max, a.log_sum, a.logits, a.t.i32, a.n, a.v, a.ignore)
                      : cuda::cross_entropy_forward_host(a.loss, a.row_max, a.log_sum, a.logits, a.t.i64, a.n, a.v, a.ignore);
    else
      count = a.t.i32
                  ? cuda::cross_entropy_forward_emulate(a.loss, a.row_max, a.log_sum, a.logits, a.t.i32, a.n, a.v, a.ignore, w)
                  : cuda::cross_entropy_forward_emulate(a.loss, a.row_max, a.log_sum, a.logits, a.t.i64, a.n, a.v, a.ignore, w);
  });
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}

template <Mode M>
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  const CrossEntropyBackwardArgs a = parse_cross_entropy_backward(c);
  int32_t* w = nullptr;
  if (M == Mode::Host) require_real_cuda_device(c);
  else w = require_writes(c, 9, a.n * a.v, "dlogits.length");
  run_sync(info.Env(), fn, [&] {
    if (M == Mode::Host) {
      if (a.t.i32) cuda::cross_entropy_backward_host(a.dlogits, a.logits, a.row_max, a.log_sum, a.t.i32, a.g, a.n, a.v, a.ignore);
      else cuda::cross_entropy_backward_host(a.dlogits, a.logits, a.row_max, a.log_sum, a.t.i64, a.g, a.n, a.v, a.ignore);
    } else {
      if (a.t.i32)
        cuda::cross_entropy_backward_emulate(a.dlogits, a.logits, a.row_max, a.log_sum, a.t.i32, a.g, a.n, a.v, a.ignore, w);
      else
        cuda::cross_entropy_backward_emulate(a.dlogits, a.logits, a.row_max, a.log_sum, a.t.i64, a.g, a.n, a.v, a.ignore, w);
    }
  });
  return info.Env().Undefined();
}

// ---- layer norm ------------------------------------------------------------------------------------------------

template <Mode M>
Napi::Value LayerNormForward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  const LayerNormForwardArgs a = parse_layer_norm_forward(c);
  const NormSizes& s = a.s;
  if (M == Mode::Host) {
    require_real_cuda_device(c);
    run_sync(info.Env(), fn, [&] {
      cuda::layer_norm_forward_host(a.y, a.mean, a.rstd, a.x, a.w, a.b, s.rows, s.groups, s.dim, a.eps, a.residual);
    });
  } else {
    int32_t* w = require_writes(c, 11, s.n + 2 * s.rg, "y.length + mean.length + rstd.length");
    run_sync(info.Env(), fn, [&] {
      cuda::layer_norm_forward_emulate(a.y, a.mean, a.rstd, a.x, a.w, a.b, s.rows, s.groups, s.dim, a.eps, a.residual, w);
    });
  }
  return info.Env().Undefined();
}

template <Mode M>
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  const LayerNormBackwardArgs a = parse_layer_norm_backward(c);
  const NormSizes& s = a.s;
  if (M == Mode::Host) {
    require_real_cuda_device(c);
    run_sync(info.Env(), fn, [&] {
      cuda::layer_norm_backward_host(a.dx, a.dw, a.db, a.dy, a.x, a.mean, a.rstd, a.w, s.rows, s.groups, s.dim, a.residual);
    });
  } else {
    const int64_t total = s.n + (a.dw ? s.gd : 0) + (a.db ? s.gd : 0);
    int32_t* w = require_writes(c, 12, total, "dx.length + dweight.length + dbias.length (given ones)");
    run_sync(info.Env(), fn, [&] {
      cuda::layer_norm_backward_emulate(a.dx, a.dw, a.db, a.dy, a.x, a.mean, a.rstd, a.w, s.rows, s.groups, s.dim,
                                        a.residual, w);
    });
  }
  return info.Env().Undefined();
}

// ---- embedding -------------------------------------------------------------------------------------------------

template <Mode M>
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  const EmbeddingForwardArgs a = parse_embedding_forward(c);
  const EmbeddingSizes& s = a.s;
  if (M == Mode::Host) {
    require_real_cuda_device(c);
    run_sync(info.Env(), fn, [&] {
      if (s.idx.i32) cuda::embedding_forward_host(a.out, a.w, s.idx.i32, s.n, s.v, s.e);
      else cuda::embedding_forward_host(a.out, a.w, s.idx.i64, s.n, s.v, s.e);
    });
  } else {
    int32_t* w = require_writes(c, 5, s.ne, "out.length");
    run_sync(info.Env(), fn, [&] {
      if (s.idx.i32) cuda::embedding_forward_emulate(a.out, a.w, s.idx.i32, s.n, s.e, w);
      else cuda::embedding_forward_emulate(a.out, a.w, s.idx.i64, s.n, s.e, w);
    });
  }
  return info.Env().Undefined();
}

template <Mode M>
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  const EmbeddingBackwardArgs a = parse_embedding_backward(c);
  const EmbeddingSizes& s = a.s;
  if (M == Mode::Host) {
    require_real_cuda_device(c);
    run_sync(info.Env(), fn, [&] {
      if (s.idx.i32) cuda::embedding_backward_host(a.dw, a.dout, s.idx.i32, s.n, s.v, s.e);
      else cuda::embedding_backward_host(a.dw, a.dout, s.idx.i64, s.n, s.v, s.e);
    });
  } else {
    int32_t* w = require_writes(c, 5, s.ve, "dweight.length");
    run_sync(info.Env(), fn, [&] {
      if (s.idx.i32) cuda::embedding_backward_emulate(a.dw, a.dout, s.idx.i32, s.n, s.v, s.e, w);
      else cuda::embedding_backward_emulate(a.dw, a.dout, s.idx.i64, s.n, s.v, s.e, w);
    });
  }
  return info.Env().Undefined();
}

// A handler bound to its export name (the name its messages start with).
template <Napi::Value (*F)(const Napi::CallbackInfo&, const char*), const char* Name>
Napi::Value Bound(const Napi::CallbackInfo& info) {
  return F(info, Name);
}

constexpr char kSoftmaxForwardHost[] = "cudaSoftmaxForwardHost";
constexpr char kSoftmaxForwardEmulate[] = "cudaSoftmaxForwardEmulate";
constexpr char kLogSoftmaxForwardHost[] = "cudaLogSoftmaxForwardHost";
constexpr char kLogSoftmaxForwardEmulate[] = "cudaLogSoftmaxForwardEmulate";
constexpr char kSoftmaxBackwardHost[] = "cudaSoftmaxBackwardHost";
constexpr char kSoftmaxBackwardEmulate[] = "cudaSoftmaxBackwardEmulate";
constexpr char kLogSoftmaxBackwardHost[] = "cudaLogSoftmaxBackwardHost";
constexpr char kLogSoftmaxBackwardEmulate[] = "cudaLogSoftmaxBackwardEmulate";
constexpr char kCrossEntropyForwardHost[] = "cudaCrossEntropyForwardHost";
constexpr char kCrossEntropyForwardEmulate[] = "cudaCrossEntropyForwardEmulate";
constexpr char kCrossEntropyBackwardHost[] = "cudaCrossEntropyBackwardHost";
constexpr char kCrossEntropyBackwardEmulate[] = "cudaCrossEntropyBackwardEmulate";
constexpr char kLayerNormForwardHost[] = "cudaLayerNormForwardHost";
constexpr char kLayerNormForwardEmulate[] = "cudaLayerNormForwardEmulate";
constexpr char kLayerNormBackwardHost[] = "cudaLayerNormBackwardHost";
constexpr char kLayerNormBackwardEmulate[] = "cudaLayerNormBackwardEmulate";
constexpr char kEmbeddingForwardHost[] = "cudaEmbeddingForwardHost";
constexpr char kEmbeddingForwardEmulate[] = "cudaEmbeddingForwardEmulate";
constexpr char kEmbeddingBackwardHost[] = "cudaEmbeddingBackwardHost";
constexpr char kEmbeddingBackwardEmulate[] = "cudaEmbeddingBackwardEmulate";

void Init(Napi::Env env, Napi::Object exports) {
  auto def = [&](const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  def(kSoftmaxForwardHost, Bound<RowwiseForward<false, Mode::Host>, kSoftmaxForwardHost>);
  def(kSoftmaxForwardEmulate, Bound<RowwiseForward<false, Mode::Emulate>, kSoftmaxForwardEmulate>);
  def(kLogSoftmaxForwardHost, Bound<RowwiseForward<true, Mode::Host>, kLogSoftmaxForwardHost>);
  def(kLogSoftmaxForwardEmulate, Bound<RowwiseForward<true, Mode::Emulate>, kLogSoftmaxForwardEmulate>);
  def(kSoftmaxBackwardHost, Bound<RowwiseBackward<false, Mode::Host>, kSoftmaxBackwardHost>);
  def(kSoftmaxBackwardEmulate, Bound<RowwiseBackward<false, Mode::Emulate>, kSoftmaxBackwardEmulate>);
  def(kLogSoftmaxBackwardHost, Bound<RowwiseBackward<true, Mode::Host>, kLogSoftmaxBackwardHost>);
  def(kLogSoftmaxBackwardEmulate, Bound<RowwiseBackward<true, Mode::Emulate>, kLogSoftmaxBackwardEmulate>);
  def(kCrossEntropyForwardHost, Bound<CrossEntropyForward<Mode::Host>, kCrossEntropyForwardHost>);
  def(kCrossEntropyForwardEmulate, Bound<CrossEntropyForward<Mode::Emulate>, kCrossEntropyForwardEmulate>);
  def(kCrossEntropyBackwardHost, Bound<CrossEntropyBackward<Mode::Host>, kCrossEntropyBackwardHost>);
  def(kCrossEntropyBackwardEmulate, Bound<CrossEntropyBackward<Mode::Emulate>, kCrossEntropyBackwardEmulate>);
  def(kLayerNormForwardHost, Bound<LayerNormForward<Mode::Host>, kLayerNormForwardHost>);
  def(kLayerNormForwardEmulate, Bound<LayerNormForward<Mode::Emulate>, kLayerNormForwardEmulate>);
  def(kLayerNormBackwardHost, Bound<LayerNormBackward<Mode::Host>, kLayerNormBackwardHost>);
  def(kLayerNormBackwardEmulate, Bound<LayerNormBackward<Mode::Emulate>, kLayerNormBackwardEmulate>);
  def(kEmbeddingForwardHost, Bound<EmbeddingForward<Mode::Host>, kEmbeddingForwardHost>);
  def(kEmbeddingForwardEmulate, Bound<EmbeddingForward<Mode::Emulate>, kEmbeddingForwardEmulate>);
  def(kEmbeddingBackwardHost, Bound<EmbeddingBackward<Mode::Host>, kEmbeddingBackwardHost>);
  def(kEmbeddingBackwardEmulate, Bound<EmbeddingBackward<Mode::Emulate>, kEmbeddingBackwardEmulate>);
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(cuda_nn, xlstm::Init);
