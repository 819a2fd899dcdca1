// Binding layer, elementwise family: unary ops (activations, affine), the gated activation act(gate) ⊙ value of a
// gated feed-forward (gatedUnary, gatedUnaryBackward), binary ops with NumPy broadcasting,
// reductions, their backward passes (CPU kernels csrc/kernels/elementwise.cc, reduce.cc), and the CUDA twin's host
// entries (cuda/elementwise.cu): cudaUnary, cudaUnaryBackward, cudaBinary, cudaBinaryBackward, which run on the GPU
// when one is available and otherwise throw an Error carrying backends().cuda.reason (or, under host emulation, which
// has no CUDA kernels, saying so).
// All arrays are dense row-major Float32Arrays (argmax: BigInt64Array of flat indices into x). Outputs are
// overwritten; an output may be the very same array as an input of its size (in place), never a partial overlap.
// Everything is synchronous: these kernels are memory-bound and short.
#include <napi.h>

#include <algorithm>
#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/device_buffer.h"
#include "binding/reduce_args.h"
#include "binding/registry.h"
#include "cuda_api.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace xlstm {
namespace {

constexpr int kMaxNdim = kMaxBroadcastDims;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

UnaryOp require_unary_op(const ArgCtx& c, size_t i) {
  const std::string s = require_string(c, i, "op");
  UnaryOp op;
  if (!parse_unary_op(s, &op)) throw_range(c, "op must be one of " + unary_op_list() + ", got \"" + s + "\"");
  return op;
}

BinaryOp require_binary_op(const ArgCtx& c, size_t i) {
  const std::string s = require_string(c, i, "op");
  BinaryOp op;
  if (!parse_binary_op(s, &op)) throw_range(c, "op must be one of " + binary_op_list() + ", got \"" + s + "\"");
  return op;
}

bool absent(const ArgCtx& c, size_t i) { return i >= c.info.Length() || c.info[i].IsUndefined() || c.info[i].IsNull(); }

// An optional number argument (undefined -> fallback).
float optional_number(const ArgCtx& c, size_t i, const char* name, float fallback) {
  if (i >= c.info.Length() || c.info[i].IsUndefined()) return fallback;
  return static_cast<float>(require_number(c, i, name));
}

std::vector<int64_t> require_shape(const ArgCtx& c, size_t i, const char* name) {
  std::vector<int64_t> s = require_int_array(c, i, name, 0);
  if (static_cast<int>(s.size()) > kMaxNdim)
    throw_range(c, std::string(name) + " has " + std::to_string(s.size()) + " dimensions, at most " +
                       std::to_string(kMaxNdim) + " are supported");
  checked_product(c, name, s);
  return s;
}

// out may be exactly `in` (same start, same length): in place; any other overlap is an error.
void require_no_partial_overlap(const ArgCtx& c, const char* out_name, const float* out, int64_t out_n,
                                const char* in_name, const float* in, int64_t in_n) {
  if (!in || !out || (out == in && out_n == in_n)) return;
  require_no_overlap(c, out_name, out, out_n * sizeof(float), in_name, in, in_n * sizeof(float));
}

// ---- unary -----------------------------------------------------------------------------------------------------

struct UnaryArgs {
  UnaryOp op;
  const float* x;
  float* out;
  int64_t n;
  float a, b;
};

// (op, x, out, alpha?, beta?)
UnaryArgs parse_unary(const ArgCtx& c) {
  require_count(c, 3);
  UnaryArgs u;
  u.op = require_unary_op(c, 0);
  u.x = require_f32(c, 1, "x", -1);
  u.n = typed_length(c, 1, "x");
  u.out = require_f32(c, 2, "out", u.n, "x.length");
  u.a = optional_number(c, 3, "alpha", 1.0f);
  u.b = optional_number(c, 4, "beta", 0.0f);
  require_no_partial_overlap(c, "out", u.out, u.n, "x", u.x, u.n);
  return u;
}

struct UnaryBackwardArgs {
  UnaryOp op;
  const float *x, *y, *dy;
  float* dx;
  int64_t n;
  float a;
};

// (op, x | null, y | null, dy, dx, alpha?)
UnaryBackwardArgs parse_unary_backward(const ArgCtx& c) {
  require_count(c, 5);
  UnaryBackwardArgs u;
  u.op = require_unary_op(c, 0);
  u.dy = require_f32(c, 3, "dy", -1);
  u.n = typed_length(c, 3, "dy");
  const int reads = ew::unary_backward_reads(u.op);
  const std::string op_name = unary_op_name(u.op);
  if ((reads & ew::kReadsX) && absent(c, 1))
    throw_type(c, "x must be a Float32Array: the backward of \"" + op_name + "\" reads the forward input");
  if ((reads & ew::kReadsY) && absent(c, 2))
    throw_type(c, "y must be a Float32Array: the backward of \"" + op_name + "\" reads the forward output");
  u.x = optional_f32(c, 1, "x", u.n, "dy.length");
  u.y = optional_f32(c, 2, "y", u.n, "dy.length");
  u.dx = require_f32(c, 4, "dx", u.n, "dy.length");
  u.a = optional_number(c, 5, "alpha", 1.0f);
  require_no_partial_overlap(c, "dx", u.dx, u.n, "dy", u.dy, u.n);
  if (u.x) require_no_overlap(c, "dx", u.dx, u.n * sizeof(float), "x", u.x, u.n * sizeof(float));
  if (u.y) require_no_overlap(c, "dx", u.dx, u.n * sizeof(float), "y", u.y, u.n * sizeof(float));
  return u;
}

Napi::Value Unary(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "unary"};
  UnaryArgs u = parse_unary(c);
  run_sync(info.Env(), c.fn, [&] { elementwise_unary(u.op, u.out, u.x, u.a, u.b, u.n); });
  return info.Env().Undefined();
}

Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "unaryBackward"};
  UnaryBackwardArgs u = parse_unary_backward(c);
  run_sync(info.Env(), c.fn, [&] { elementwise_unary_backward(u.op, u.dx, u.x, u.y, u.dy, u.a, u.n); });
  return info.Env().Undefined();
}

Napi::Value CudaUnary(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaUnary"};
  UnaryArgs u = parse_unary(c);
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] { cuda::elementwise_unary_host(u.op, u.out, u.x, u.a, u.b, u.n); });
  return info.Env().Undefined();
}

Napi::Value CudaUnaryBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaUnaryBackward"};
  UnaryBackwardArgs u = parse_unary_backward(c);
  require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] { cuda::elementwise_unary_backward_host(u.op, u.dx, u.x, u.y, u.dy, u.a, u.n); });
  return info.Env().Undefined();
}

// ---- gated activation ------------------------------------------------------------------------------------------

struct GatedArgs {
  UnaryOp op;
  const float *h, *dy = nullptr;
  float* out;
  int64_t rows, P;
  float a, b;
};

// gatedUnary(op, h, rows, P, y, alpha?, beta?) / gatedUnaryBackward(op, h, dy, rows, P, dh, alpha?, beta?):
// h [rows, 2P], y and dy [rows, P], dh [rows, 2P]; outputs overlap no input.
GatedArgs parse_gated(const ArgCtx& c, bool backward) {
  const size_t o = backward ? 1 : 0;  // dy shifts the later arguments by one
  require_count(c, 5 + o);
  GatedArgs g;
  g.op = require_unary_op(c, 0);
  g.rows = require_int(c, 2 + o, "rows");
  g.P = require_int(c, 3 + o, "P");
  const int64_t half = checked_product(c, "rows * P", {g.rows, g.P});
  const int64_t full = checked_product(c, "rows * 2P", {g.rows, g.P, 2});
  g.h = require_f32(c, 1, "h", full, describe("rows * 2P", {{"rows", g.rows}, {"P", g.P}}));
  if (backward) g.dy = require_f32(c, 2, "dy", half, describe("rows * P", {{"rows", g.rows}, {"P", g.P}}));
  g.out = backward ? require_f32(c, 5, "dh", full, describe("rows * 2P", {{"rows", g.rows}, {"P", g.P}}))
                   : require_f32(c, 4, "y", half, describe("rows * P", {{"rows", g.rows}, {"P", g.P}}));
  g.a = optional_number(c, 5 + o, "alpha", 1.0f);
  g.b = optional_number(c, 6 + o, "beta", 0.0f);
  const char* out_name = backward ? "dh" : "y";
  const int64_t out_n = backward ? full : half;
  require_no_overlap(c, out_name, g.out, out_n * sizeof(float), "h", g.h, full * sizeof(float));
  if (g.dy) require_no_overlap(c, out_name, g.out, out_n * sizeof(float), "dy", g.dy, half * sizeof(float));
  return g;
}

Napi::Value GatedUnary(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "gatedUnary"};
  const GatedArgs g = parse_gated(c, false);
  run_sync(info.Env(), c.fn, [&] { gated_unary(g.op, g.out, g.h, g.rows, g.P, g.a, g.b); });
  return info.Env().Undefined();
}

Napi::Value GatedUnaryBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "gatedUnaryBackward"};
  const GatedArgs g = parse_gated(c, true);
  run_sync(info.Env(), c.fn, [&] { gated_unary_backward(g.op, g.out, g.h, g.dy, g.rows, g.P, g.a, g.b); });
  return info.Env().Undefined();
}

// ---- binary ----------------------------------------------------------------------------------------------------

struct BinaryArgs {
  BinaryOp op;
  const float *a, *b;
  int64_t na, nb, n;  // n: elements of the broadcast output
  BroadcastPlan plan;
  std::string out_desc;
};

// (op, a, aShape, b, bShape, ...): the operands and their broadcast plan.
BinaryArgs parse_binary_inputs(const ArgCtx& c) {
  BinaryArgs r;
  r.op = require_binary_op(c, 0);
  std::vector<int64_t> as = require_shape(c, 2, "aShape");
  std::vector<int64_t> bs = require_shape(c, 4, "bShape");
  r.na = checked_product(c, "aShape", as);
  r.nb = checked_product(c, "bShape", bs);
  r.a = require_f32(c, 1, "a", r.na, "numel(aShape " + shape_str(as) + ")");
  r.b = require_f32(c, 3, "b", r.nb, "numel(bShape " + shape_str(bs) + ")");
  std::vector<int64_t> os(std::max(as.size(), bs.size()));
  try {
    r.plan = make_broadcast_plan(as.data(), static_cast<int>(as.size()), bs.data(), static_cast<int>(bs.size()),
                                 os.data());
  } catch (const std::invalid_argument& e) {
    throw_range(c, std::string("aShape and bShape: ") + e.what());
  }
  r.n = r.plan.numel;
  r.out_desc = "numel(broadcast shape " + shape_str(os) + ")";
  return r;
}

Napi::Value BinaryImpl(const Napi::CallbackInfo& info, const char* fn, bool on_cuda) {
  ArgCtx c{info, fn};
  require_count(c, 6);
  BinaryArgs r = parse_binary_inputs(c);
  float* out = require_f32(c, 5, "out", r.n, r.out_desc);
  require_no_partial_overlap(c, "out", out, r.n, "a", r.a, r.na);
  require_no_partial_overlap(c, "out", out, r.n, "b", r.b, r.nb);
  if (on_cuda) {
    require_real_cuda_device(c);
    run_sync(info.Env(), fn, [&] { cuda::elementwise_binary_host(r.op, out, r.a, r.na, r.b, r.nb, r.plan); });
  } else {
    run_sync(info.Env(), fn, [&] { elementwise_binary(r.op, out, r.a, r.b, r.plan); });
  }
  return info.Env().Undefined();
}

Napi::Value BinaryBackwardImpl(const Napi::CallbackInfo& info, const char* fn, bool on_cuda) {
  ArgCtx c{info, fn};
  require_count(c, 8);
  BinaryArgs r = parse_binary_inputs(c);
  const float* dy = require_f32(c, 5, "dy", r.n, r.out_desc);
  float* da = absent(c, 6) ? nullptr : require_f32(c, 6, "da", r.n, r.out_desc);
  float* db = absent(c, 7) ? nullptr : require_f32(c, 7, "db", r.n, r.out_desc);
  const size_t bytes = r.n * sizeof(float);
  for (auto [name, g] : {std::pair<const char*, float*>{"da", da}, {"db", db}}) {
    if (!g) continue;
    require_no_overlap(c, name, g, bytes, "a", r.a, r.na * sizeof(float));
    require_no_overlap(c, name, g, bytes, "b", r.b, r.nb * sizeof(float));
    require_no_partial_overlap(c, name, g, r.n, "dy", dy, r.n);
  }
  if (da && db) require_no_overlap(c, "da", da, bytes, "db", db, bytes);
  if (on_cuda) {
    require_real_cuda_device(c);
    run_sync(info.Env(), fn,
             [&] { cuda::elementwise_binary_backward_host(r.op, da, db, r.a, r.na, r.b, r.nb, dy, r.plan); });
  } else {
    run_sync(info.Env(), fn, [&] { elementwise_binary_backward(r.op, da, db, r.a, r.b, dy, r.plan); });
  }
  return info.Env().Undefined();
}

Napi::Value Binary(const Napi::CallbackInfo& info) { return BinaryImpl(info, "binary", false); }
Napi::Value CudaBinary(const Napi::CallbackInfo& info) { return BinaryImpl(info, "cudaBinary", true); }
Napi::Value BinaryBackward(const Napi::CallbackInfo& info) { return BinaryBackwardImpl(info, "binaryBackward", false); }
Napi::Value CudaBinaryBackward(const Napi::CallbackInfo& info) {
  return BinaryBackwardImpl(info, "cudaBinaryBackward", true);
}

// ---- reductions ------------------------------------------------------------------------------------------------

// Argument parsing: binding/reduce_args.h (shared with the CUDA twin's entries in cuda_misc.cc).

// reduce(op, x, shape, axes, out, argmax?)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "reduce"};
  const reduce_args::ReduceCall a = reduce_args::parse_reduce(c);
  const reduce_args::ReduceArgs& r = a.r;
  run_sync(info.Env(), c.fn, [&] {
    reduce_axes(r.op, a.out, a.argmax, a.x, static_cast<int>(r.shape.size()), r.shape.data(), r.reduced.data());
  });
  return info.Env().Undefined();
}

// reduceBackward(op, dy, shape, axes, dx, argmax?)  (argmax required for max)
Napi::Value ReduceBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "reduceBackward"};
  const reduce_args::ReduceBackwardCall a = reduce_args::parse_reduce_backward(c);
  const reduce_args::ReduceArgs& r = a.r;
  run_sync(info.Env(), c.fn, [&] {
    reduce_axes_backward(r.op, a.dx, a.dy, a.argmax, static_cast<int>(r.shape.size()), r.shape.data(), r.reduced.data());
  });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("unary", Napi::Function::New(env, Unary, "unary"));
  exports.Set("gatedUnary", Napi::Function::New(env, GatedUnary, "gatedUnary"));
  exports.Set("gatedUnaryBackward", Napi::Function::New(env, GatedUnaryBackward, "gatedUnaryBackward"));
  exports.Set("unaryBackward", Napi::Function::New(env, UnaryBackward, "unaryBackward"));
  exports.Set("binary", Napi::Function::New(env, Binary, "binary"));
  exports.Set("binaryBackward", Napi::Function::New(env, BinaryBackward, "binaryBackward"));
  exports.Set("reduce", Napi::Function::New(env, Reduce, "reduce"));
  exports.Set("reduceBackward", Napi::Function::New(env, ReduceBackward, "reduceBackward"));
  exports.Set("cudaUnary", Napi::Function::New(env, CudaUnary, "cudaUnary"));
  exports.Set("cudaUnaryBackward", Napi::Function::New(env, CudaUnaryBackward, "cudaUnaryBackward"));
  exports.Set("cudaBinary", Napi::Function::New(env, CudaBinary, "cudaBinary"));
  exports.Set("cudaBinaryBackward", Napi::Function::New(env, CudaBinaryBackward, "cudaBinaryBackward"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(elementwise, xlstm::Init);
