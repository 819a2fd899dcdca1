// Binding layer: host entries of the CUDA twins of the reduction, causal conv1d, dropout, optimizer and permute
// kernels (cuda/reduce.cu, conv1d.cu, dropout.cu, optim.cu, permute.cu). Each cuda<CpuExport>Host takes exactly the
// arguments of its CPU export (parsed by the same functions: binding/reduce_args.h, conv1d_args.h, dropout_args.h,
// optim_args.h, permute_args.h), then runs on the GPU (copy in, kernel, copy out, synchronise) when one is
// available, and otherwise throws an Error "<export>: CUDA is not available: <backends().cuda.reason>" (also under
// host emulation, which has no CUDA kernels: binding/device_buffer.h require_real_cuda_device).
// cudaSumAllHost(x) is the twin of the CPU kernel sum_all (the float64 sum behind reductions).
// The *Emulate exports (same arguments as the CPU export plus a trailing Int32Array `writes`) replay the CUDA launch
// on the host with the kernels' own code (no GPU needed, a build with CUDA): the CPU export's outputs, and writes[k]
// = how often output element k was written (outputs concatenated in argument order, absent ones taking no room).
// The *Coverage exports run the kernels' __host__ __device__ index maps over every block and thread of a launch on
// the host (no GPU needed, but a build with CUDA) and return the number of inconsistencies plus per-element counts,
// for tests on machines without a GPU.
#include <napi.h>

#include <algorithm>
#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/device_buffer.h"
#include "binding/conv1d_args.h"
#include "binding/dropout_args.h"
#include "binding/optim_args.h"
#include "binding/permute_args.h"
#include "binding/reduce_args.h"
#include "binding/registry.h"
#include "cuda_api.h"
#include "kernels/dropout.h"
#include "kernels/reduce.h"

namespace xlstm {
namespace {

// ---- reductions ------------------------------------------------------------------------------------------------

// The trailing `writes` argument of an *Emulate entry (at index i, `total` counters), zeroed.
int32_t* require_writes(const ArgCtx& c, size_t i, int64_t total, const std::string& desc) {
  require_count(c, i + 1);
  int32_t* w = require_i32(c, i, "writes", total, desc);
  std::fill(w, w + total, 0);
  return w;
}

// reduceBackward's arguments, and for "max" each argmax[o] must lie in output o's reduction set (as reduce writes
// it): the CUDA kernel gathers (dx[i] = dy[o] where argmax[o] == i) instead of scattering.
reduce_args::ReduceBackwardCall parse_gather_backward(const ArgCtx& c) {
  const reduce_args::ReduceBackwardCall a = reduce_args::parse_reduce_backward(c);
  const reduce_args::ReduceArgs& r = a.r;
  if (a.argmax) {
    const int nd = static_cast<int>(r.shape.size());
    for (int64_t o = 0; o < r.out_n; ++o) {
      int64_t i = a.argmax[o], kept = 0, mul = 1;
      for (int d = nd - 1; d >= 0; --d) {
        const int64_t coord = i % r.shape[d];
        i /= r.shape[d];
        if (!r.reduced[d]) {
          kept += coord * mul;
          mul *= r.shape[d];
        }
      }
      if (kept != o)
        throw_range(c, "argmax[" + std::to_string(o) + "] = " + std::to_string(a.argmax[o]) +
                           " is not in the reduction set of output " + std::to_string(o) + " (it belongs to output " +
                           std::to_string(kept) + ")");
    }
  }
  return a;
}

// cudaReduceHost(op, x, shape, axes, out, argmax?)
Napi::Value CudaReduceHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaReduceHost"};
  const reduce_args::ReduceCall a = reduce_args::parse_reduce(c);
  const reduce_args::ReduceArgs& r = a.r;
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] {
    cuda::reduce_axes_host(r.op, a.out, a.argmax, a.x, static_cast<int>(r.shape.size()), r.shape.data(),
                           r.reduced.data());
  });
  return info.Env().Undefined();
}

// cudaReduceBackwardHost(op, dy, shape, axes, dx, argmax?): as reduceBackward, and for "max" each argmax[o] must
// lie in output o's reduction set (as reduce writes it): the GPU gathers instead of scattering.
Napi::Value CudaReduceBackwardHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaReduceBackwardHost"};
  const reduce_args::ReduceBackwardCall a = parse_gather_backward(c);
  const reduce_args::ReduceArgs& r = a.r;
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] {
    cuda::reduce_axes_backward_host(r.op, a.dx, a.dy, a.argmax, static_cast<int>(r.shape.size()), r.shape.data(),
                                    r.reduced.data());
  });
  return info.Env().Undefined();
}

// cudaSumAllHost(x) -> the float64 sum of x
Napi::Value CudaSumAllHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSumAllHost"};
  require_count(c, 1);
  const int64_t n = typed_length(c, 0, "x");
  const float* x = require_f32(c, 0, "x", n);
  require_real_cuda_device(c);
  double s = 0.0;
  run_sync(info.Env(), c.fn, [&] { s = cuda::sum_all_host(x, n); });
  return Napi::Number::New(info.Env(), s);
}

// cudaReduceCoverage(shape, axes, reads) -> { errors, mode, pieces }
Napi::Value CudaReduceCoverage(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaReduceCoverage"};
  require_count(c, 3);
  const std::vector<int64_t> shape = reduce_args::require_shape(c, 0, "shape");
  const int64_t nd = static_cast<int64_t>(shape.size());
  const int64_t span = nd > 0 ? nd : 1;
  const std::vector<int64_t> axes = require_int_array(c, 1, "axes", -span, span - 1);
  std::vector<uint8_t> reduced(shape.size(), 0);
  for (int64_t ax : axes) {
    if (nd == 0) continue;
    const int64_t d = ax < 0 ? ax + nd : ax;
    if (reduced[d]) throw_range(c, "axes repeats axis " + std::to_string(d) + " (got " + std::to_string(ax) + ")");
    reduced[d] = 1;
  }
  const int64_t n = checked_product(c, "shape", shape);
  int32_t* reads = require_i32(c, 2, "reads", n, "numel(shape " + reduce_args::shape_str(shape) + ")");
  int64_t bad = 0, pieces = 0;
  int mode = -1;
  run_sync(info.Env(), c.fn, [&] {
    bad = cuda::reduce_coverage(static_cast<int>(nd), shape.data(), reduced.data(), reads, &mode, &pieces);
  });
  static const char* const kModes[] = {"serial", "block", "columns"};
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("errors", Napi::Number::New(info.Env(), static_cast<double>(bad)));
  r.Set("mode", mode >= 0 && mode <= 2 ? Napi::Value(Napi::String::New(info.Env(), kModes[mode])) : info.Env().Null());
  r.Set("pieces", Napi::Number::New(info.Env(), static_cast<double>(pieces)));
  return r;
}

// cudaSumCoverage(reads) -> errors: reads[i] = how often the two-pass sums (sum_all, sum_squares) read x[i]
Napi::Value CudaSumCoverage(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSumCoverage"};
  require_count(c, 1);
  const int64_t n = typed_length(c, 0, "reads");
  int32_t* reads = require_i32(c, 0, "reads", n);
  int64_t bad = 0;
  run_sync(info.Env(), c.fn, [&] { bad = cuda::sum_pass_coverage(n, reads); });
  return Napi::Number::New(info.Env(), static_cast<double>(bad));
}

// cudaReduceEmulate(op, x, shape, axes, out, argmax | null, writes): host replay of the reduction launches;
// writes [out_n (+ out_n for argmax when given, "max")] counts the writes of out, then argmax
Napi::Value CudaReduceEmulate(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaReduceEmulate"};
  const reduce_args::ReduceCall a = reduce_args::parse_reduce(c);
  const reduce_args::ReduceArgs& r = a.r;
  int32_t* w = require_writes(c, 6, r.out_n * (a.argmax ? 2 : 1), a.argmax ? "2*out.length (out, argmax)" : "out.length");
  run_sync(info.Env(), c.fn, [&] {
    cuda::reduce_axes_emulate(r.op, a.out, a.argmax, a.x, static_cast<int>(r.shape.size()), r.shape.data(),
                              r.reduced.data(), w);
  });
  return info.Env().Undefined();
}

// cudaReduceBackwardEmulate(op, dy, shape, axes, dx, argmax | null, writes): writes [numel(shape)] counts dx's writes
Napi::Value CudaReduceBackwardEmulate(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaReduceBackwardEmulate"};
  const reduce_args::ReduceBackwardCall a = parse_gather_backward(c);
  const reduce_args::ReduceArgs& r = a.r;
  int32_t* w = require_writes(c, 6, r.n, "dx.length");
  run_sync(info.Env(), c.fn, [&] {
    cuda::reduce_axes_backward_emulate(r.op, a.dx, a.dy, a.argmax, static_cast<int>(r.shape.size()), r.shape.data(),
                                       r.reduced.data(), w);
  });
  return info.Env().Undefined();
}

// ---- causal conv1d ---------------------------------------------------------------------------------------------

Napi::Value CudaCausalConv1dForwardHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCausalConv1dForwardHost"};
  const conv1d_args::ForwardCall a = conv1d_args::parse_forward(c);
  const conv1d_args::ConvSizes& z = a.z;
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] { cuda::causal_conv1d_forward_host(a.y, a.x, a.w, a.b, z.b, z.s, z.f, z.k); });
  return info.Env().Undefined();
}

Napi::Value CudaCausalConv1dBackwardHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCausalConv1dBackwardHost"};
  const conv1d_args::BackwardCall a = conv1d_args::parse_backward(c);
  const conv1d_args::ConvSizes& z = a.z;
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn,
           [&] { cuda::causal_conv1d_backward_host(a.dx, a.dw, a.db, a.dy, a.x, a.w, z.b, z.s, z.f, z.k); });
  return info.Env().Undefined();
}

// cudaCausalConv1dForwardEmulate(y, x, weight, bias | null, b, s, f, k, writes): writes [b*s*f] counts y's writes
Napi::Value CudaCausalConv1dForwardEmulate(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCausalConv1dForwardEmulate"};
  const conv1d_args::ForwardCall a = conv1d_args::parse_forward(c);
  const conv1d_args::ConvSizes& z = a.z;
  int32_t* w = require_writes(c, 8, z.n, "y.length");
  run_sync(info.Env(), c.fn, [&] { cuda::causal_conv1d_forward_emulate(a.y, a.x, a.w, a.b, z.b, z.s, z.f, z.k, w); });
  return info.Env().Undefined();
}

// cudaCausalConv1dBackwardEmulate(dx | null, dweight | null, dbias | null, dy, x, weight, b, s, f, k, writes):
// writes counts the writes of dx, dweight, dbias (the given ones, concatenated)
Napi::Value CudaCausalConv1dBackwardEmulate(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCausalConv1dBackwardEmulate"};
  const conv1d_args::BackwardCall a = conv1d_args::parse_backward(c);
  const conv1d_args::ConvSizes& z = a.z;
  const int64_t total = (a.dx ? z.n : 0) + (a.dw ? z.fk : 0) + (a.db ? z.f : 0);
  int32_t* w = require_writes(c, 10, total, "dx.length + dweight.length + dbias.length (given ones)");
  run_sync(info.Env(), c.fn, [&] {
    cuda::causal_conv1d_backward_emulate(a.dx, a.dw, a.db, a.dy, a.x, a.w, z.b, z.s, z.f, z.k, w);
  });
  return info.Env().Undefined();
}

// cudaCausalConv1dCoverage(b, s, f, k, yWrites, dweightTerms, dbiasTerms) -> errors
Napi::Value CudaCausalConv1dCoverage(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCausalConv1dCoverage"};
  require_count(c, 7);
  const conv1d_args::ConvSizes z = conv1d_args::conv_sizes(c, 0);
  int32_t* yw = require_i32(c, 4, "yWrites", z.n, z.dn);
  int32_t* dwt = require_i32(c, 5, "dweightTerms", z.fk, z.dfk);
  int32_t* dbt = require_i32(c, 6, "dbiasTerms", z.f, z.df);
  require_disjoint(c, {{"yWrites", yw, static_cast<size_t>(z.n) * 4}, {"dweightTerms", dwt, static_cast<size_t>(z.fk) * 4},
                       {"dbiasTerms", dbt, static_cast<size_t>(z.f) * 4}},
                   {});
  int64_t bad = 0;
  run_sync(info.Env(), c.fn, [&] { bad = cuda::causal_conv1d_coverage(z.b, z.s, z.f, z.k, yw, dwt, dbt); });
  return Napi::Number::New(info.Env(), static_cast<double>(bad));
}

// ---- dropout ---------------------------------------------------------------------------------------------------

Napi::Value CudaDropoutForwardHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaDropoutForwardHost"};
  const dropout_args::ForwardCall a = dropout_args::parse_forward(c);
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] { cuda::dropout_forward_host(a.y, a.mask, a.x, a.n, a.p, a.k0, a.k1); });
  return info.Env().Undefined();
}

Napi::Value CudaDropoutBackwardHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaDropoutBackwardHost"};
  const dropout_args::BackwardCall a = dropout_args::parse_backward(c);
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] { cuda::dropout_backward_host(a.dx, a.dy, a.mask, a.n, dropout_scale(a.p)); });
  return info.Env().Undefined();
}

// ---- optimizer -------------------------------------------------------------------------------------------------

Napi::Value CudaAdamwStepHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaAdamwStepHost"};
  const optim_args::AdamwCall a = optim_args::parse_adamw(c);
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn,
           [&] { cuda::adamw_step_host(a.p, a.m, a.v, a.g, a.n, a.lr, a.beta1, a.beta2, a.eps, a.wd, a.t); });
  return info.Env().Undefined();
}

Napi::Value CudaSumSquaresHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSumSquaresHost"};
  const optim_args::SumSquaresCall a = optim_args::parse_sum_squares(c);
  require_real_cuda_device(c);
  double s = 0.0;
  run_sync(info.Env(), c.fn, [&] { s = cuda::sum_squares_host(a.x, a.n); });
  return Napi::Number::New(info.Env(), s);
}

Napi::Value CudaScaleInPlaceHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaScaleInPlaceHost"};
  const optim_args::ScaleCall a = optim_args::parse_scale(c);
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] { cuda::scale_inplace_host(a.x, a.n, a.alpha); });
  return info.Env().Undefined();
}

// ---- permute ---------------------------------------------------------------------------------------------------

Napi::Value CudaPermuteHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaPermuteHost"};
  const permute_args::PermuteCall a = permute_args::parse_permute(c);
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] {
    cuda::permute_copy_host(a.out, a.x, static_cast<int>(a.esize), a.shape.data(), a.perm.data(),
                            static_cast<int>(a.shape.size()));
  });
  return info.Env().Undefined();
}

// cudaPermuteCoverage(shape, perm, reads) -> errors: reads[i] = how often the kernel reads input element i
Napi::Value CudaPermuteCoverage(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaPermuteCoverage"};
  require_count(c, 3);
  const std::vector<int64_t> shape = require_int_array(c, 0, "shape", 0, INT64_C(1) << 45);
  const std::vector<int64_t> perm = require_int_array(c, 1, "perm", 0, 15);
  if (shape.size() > 16) throw_range(c, "shape has more than 16 dimensions");
  if (perm.size() != shape.size())
    throw_range(c, "perm has " + std::to_string(perm.size()) + " entries, shape has " + std::to_string(shape.size()));
  std::vector<bool> seen(shape.size(), false);
  for (int64_t p : perm) {
    if (p >= static_cast<int64_t>(shape.size()) || seen[p]) throw_range(c, "perm is not a permutation of the dimensions");
    seen[p] = true;
  }
  const int64_t n = checked_product(c, "shape", shape);
  int32_t* reads = require_i32(c, 2, "reads", n, "numel(shape)");
  int64_t bad = 0;
  run_sync(info.Env(), c.fn, [&] {
    bad = cuda::permute_coverage(shape.data(), perm.data(), static_cast<int>(shape.size()), reads);
  });
  return Napi::Number::New(info.Env(), static_cast<double>(bad));
}

void Init(Napi::Env env, Napi::Object exports) {
  auto def = [&](const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  def("cudaReduceHost", CudaReduceHost);
  def("cudaReduceBackwardHost", CudaReduceBackwardHost);
  def("cudaSumAllHost", CudaSumAllHost);
  def("cudaReduceCoverage", CudaReduceCoverage);
  def("cudaSumCoverage", CudaSumCoverage);
  def("cudaCausalConv1dForwardHost", CudaCausalConv1dForwardHost);
  def("cudaCausalConv1dBackwardHost", CudaCausalConv1dBackwardHost);
  def("cudaCausalConv1dCoverage", CudaCausalConv1dCoverage);
  def("cudaDropoutForwardHost", CudaDropoutForwardHost);
  def("cudaDropoutBackwardHost", CudaDropoutBackwardHost);
  def("cudaAdamwStepHost", CudaAdamwStepHost);
  def("cudaSumSquaresHost", CudaSumSquaresHost);
  def("cudaScaleInPlaceHost", CudaScaleInPlaceHost);
  def("cudaPermuteHost", CudaPermuteHost);
  def("cudaPermuteCoverage", CudaPermuteCoverage);
  def("cudaReduceEmulate", CudaReduceEmulate);
  def("cudaReduceBackwardEmulate", CudaReduceBackwardEmulate);
  def("cudaCausalConv1dForwardEmulate", CudaCausalConv1dForwardEmulate);
  def("cudaCausalConv1dBackwardEmulate", CudaCausalConv1dBackwardEmulate);
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(cuda_misc, xlstm::Init);
