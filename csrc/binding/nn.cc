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
#include "binding/registry.h"
#include "kernels/conv1d.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/norm.h"
#include "kernels/softmax.h"

namespace xlstm {
namespace {

constexpr int64_t kMaxSize = INT64_C(1) << 45;
constexpr int64_t kMaxSafe = INT64_C(9007199254740991);  // 2^53 - 1

bool absent(const ArgCtx& c, size_t i) {
  return c.info.Length() <= i || c.info[i].IsNull() || c.info[i].IsUndefined();
}

size_t fbytes(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

// An index array: Int32Array or BigInt64Array.
struct Indices {
  const int32_t* i32 = nullptr;
  const int64_t* i64 = nullptr;
  int64_t length = 0;
  int64_t at(int64_t k) const { return i32 ? static_cast<int64_t>(i32[k]) : i64[k]; }
  const void* ptr() const { return i32 ? static_cast<const void*>(i32) : static_cast<const void*>(i64); }
  size_t bytes() const { return static_cast<size_t>(length) * (i32 ? 4 : 8); }
};

Indices require_indices(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc) {
  require_count(c, i + 1);
  Napi::Value v = c.info[i];
  Indices out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    out.i32 = require_i32(c, i, name, expected, desc);
  } else if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_bigint64_array) {
    out.i64 = require_i64(c, i, name, expected, desc);
  } else {
    throw_type(c, std::string(name) + " must be an Int32Array or BigInt64Array, got " + kind_of(v));
  }
  out.length = typed_length(c, i, name);
  return out;
}

// Every index in [0, hi), except values equal to `allowed` when has_allowed.
void check_index_values(const ArgCtx& c, const char* name, const Indices& idx, int64_t hi, const char* hi_name,
                        bool has_allowed = false, int64_t allowed = 0) {
  for (int64_t k = 0; k < idx.length; ++k) {
    const int64_t t = idx.at(k);
    if ((t < 0 || t >= hi) && !(has_allowed && t == allowed)) {
      std::ostringstream os;
      os << name << "[" << k << "] = " << t << " is out of range [0, " << hi_name << ") (" << hi_name << "=" << hi
         << ")";
      if (has_allowed) os << " and is not the ignore index " << allowed;
      throw_range(c, os.str());
    }
  }
}

uint32_t require_u32(const ArgCtx& c, size_t i, const char* name) {
  return static_cast<uint32_t>(require_int(c, i, name, 0, 0xFFFFFFFFll));
}

// ---- softmax family --------------------------------------------------------------------------------------------

template <void (*Fn)(float*, const float*, int64_t, int64_t)>
Napi::Value RowwiseForward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  require_count(c, 4);
  const int64_t rows = require_int(c, 2, "rows", 0, kMaxSize);
  const int64_t cols = require_int(c, 3, "cols", 0, kMaxSize);
  const int64_t n = checked_product(c, "rows*cols", {rows, cols});
  const std::string d = describe("rows*cols", {{"rows", rows}, {"cols", cols}});
  float* y = require_f32(c, 0, "y", n, d);
  const float* x = require_f32(c, 1, "x", n, d);
  require_disjoint(c, {{"y", y, fbytes(n)}}, {{"x", x, fbytes(n)}});
  if (n == 0) return info.Env().Undefined();  // e.g. 2^40 rows of 0 columns: nothing to do, do not loop over them
  run_sync(info.Env(), fn, [&] { Fn(y, x, rows, cols); });
  return info.Env().Undefined();
}

template <void (*Fn)(float*, const float*, const float*, int64_t, int64_t)>
Napi::Value RowwiseBackward(const Napi::CallbackInfo& info, const char* fn) {
  ArgCtx c{info, fn};
  require_count(c, 5);
  const int64_t rows = require_int(c, 3, "rows", 0, kMaxSize);
  const int64_t cols = require_int(c, 4, "cols", 0, kMaxSize);
  const int64_t n = checked_product(c, "rows*cols", {rows, cols});
  const std::string d = describe("rows*cols", {{"rows", rows}, {"cols", cols}});
  float* dx = require_f32(c, 0, "dx", n, d);
  const float* y = require_f32(c, 1, "y", n, d);
  const float* dy = require_f32(c, 2, "dy", n, d);
  require_disjoint(c, {{"dx", dx, fbytes(n)}}, {{"y", y, fbytes(n)}, {"dy", dy, fbytes(n)}});
  if (n == 0) return info.Env().Undefined();  // rows of 0 columns (or 0 rows): nothing to do
  run_sync(info.Env(), fn, [&] { Fn(dx, y, dy, rows, cols); });
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
  require_count(c, 8);
  const int64_t n = require_int(c, 5, "n", 0, kMaxSize);
  const int64_t v = require_int(c, 6, "v", 1, kMaxSize);
  const int64_t ignore = require_int(c, 7, "ignoreIndex", -kMaxSafe, kMaxSafe);
  const int64_t nv = checked_product(c, "n*v", {n, v});
  const std::string dn = describe("n", {{"n", n}});
  float* loss = require_f32(c, 0, "loss", n, dn);
  float* row_max = require_f32(c, 1, "rowMax", n, dn);
  float* log_sum = require_f32(c, 2, "logSum", n, dn);
  const float* logits = require_f32(c, 3, "logits", nv, describe("n*v", {{"n", n}, {"v", v}}));
  const Indices t = require_indices(c, 4, "targets", n, dn);
  require_disjoint(c, {{"loss", loss, fbytes(n)}, {"rowMax", row_max, fbytes(n)}, {"logSum", log_sum, fbytes(n)}},
             {{"logits", logits, fbytes(nv)}, {"targets", t.ptr(), t.bytes()}});
  check_index_values(c, "targets", t, v, "v", true, ignore);
  int64_t count = 0;
  run_sync(info.Env(), "crossEntropyForward", [&] {
    count = t.i32 ? cross_entropy_forward(loss, row_max, log_sum, logits, t.i32, n, v, ignore)
                  : cross_entropy_forward(loss, row_max, log_sum, logits, t.i64, n, v, ignore);
  });
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}

// crossEntropyBackward(dlogits, logits, rowMax, logSum, targets, g, n, v, ignoreIndex)
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "crossEntropyBackward"};
  require_count(c, 9);
  const int64_t n = require_int(c, 6, "n", 0, kMaxSize);
  const int64_t v = require_int(c, 7, "v", 1, kMaxSize);
  const int64_t ignore = require_int(c, 8, "ignoreIndex", -kMaxSafe, kMaxSafe);
  const int64_t nv = checked_product(c, "n*v", {n, v});
  const std::string dn = describe("n", {{"n", n}});
  const std::string dnv = describe("n*v", {{"n", n}, {"v", v}});
  float* dlogits = require_f32(c, 0, "dlogits", nv, dnv);
  const float* logits = require_f32(c, 1, "logits", nv, dnv);
  const float* row_max = require_f32(c, 2, "rowMax", n, dn);
  const float* log_sum = require_f32(c, 3, "logSum", n, dn);
  const Indices t = require_indices(c, 4, "targets", n, dn);
  const float* g = require_f32(c, 5, "g", n, dn);
  require_disjoint(c, {{"dlogits", dlogits, fbytes(nv)}},
             {{"logits", logits, fbytes(nv)}, {"rowMax", row_max, fbytes(n)}, {"logSum", log_sum, fbytes(n)},
              {"targets", t.ptr(), t.bytes()}, {"g", g, fbytes(n)}});
  check_index_values(c, "targets", t, v, "v", true, ignore);
  run_sync(info.Env(), "crossEntropyBackward", [&] {
    if (t.i32) cross_entropy_backward(dlogits, logits, row_max, log_sum, t.i32, g, n, v, ignore);
    else cross_entropy_backward(dlogits, logits, row_max, log_sum, t.i64, g, n, v, ignore);
  });
  return info.Env().Undefined();
}

// ---- layer norm ------------------------------------------------------------------------------------------------

struct NormSizes {
  int64_t rows, groups, dim, n, gd, rg;
  std::string dn, dgd, drg;
};

NormSizes norm_sizes(const ArgCtx& c, size_t i) {
  NormSizes s;
  s.rows = require_int(c, i, "rows", 0, kMaxSize);
  s.groups = require_int(c, i + 1, "groups", 1, kMaxSize);
  s.dim = require_int(c, i + 2, "dim", 1, kMaxSize);
  s.n = checked_product(c, "rows*groups*dim", {s.rows, s.groups, s.dim});
  s.gd = checked_product(c, "groups*dim", {s.groups, s.dim});
  s.rg = checked_product(c, "rows*groups", {s.rows, s.groups});
  s.dn = describe("rows*groups*dim", {{"rows", s.rows}, {"groups", s.groups}, {"dim", s.dim}});
  s.dgd = describe("groups*dim", {{"groups", s.groups}, {"dim", s.dim}});
  s.drg = describe("rows*groups", {{"rows", s.rows}, {"groups", s.groups}});
  return s;
}

// layerNormForward(y, mean, rstd, x, weight|null, bias|null, rows, groups, dim, eps, residualWeight)
Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "layerNormForward"};
  require_count(c, 11);
  const NormSizes s = norm_sizes(c, 6);
  const double eps = require_number(c, 9, "eps");
  if (!(eps >= 0) || !std::isfinite(eps)) throw_range(c, "eps must be a finite number >= 0, got " + std::to_string(eps));
  const bool residual = require_bool(c, 10, "residualWeight");
  float* y = require_f32(c, 0, "y", s.n, s.dn);
  float* mean = require_f32(c, 1, "mean", s.rg, s.drg);
  float* rstd = require_f32(c, 2, "rstd", s.rg, s.drg);
  const float* x = require_f32(c, 3, "x", s.n, s.dn);
  const float* w = optional_f32(c, 4, "weight", s.gd, s.dgd);
  const float* b = optional_f32(c, 5, "bias", s.gd, s.dgd);
  require_disjoint(c, {{"y", y, fbytes(s.n)}, {"mean", mean, fbytes(s.rg)}, {"rstd", rstd, fbytes(s.rg)}},
             {{"x", x, fbytes(s.n)}, {"weight", w, fbytes(s.gd)}, {"bias", b, fbytes(s.gd)}});
  run_sync(info.Env(), "layerNormForward", [&] {
    layer_norm_forward(y, mean, rstd, x, w, b, s.rows, s.groups, s.dim, static_cast<float>(eps), residual);
  });
  return info.Env().Undefined();
}

// layerNormBackward(dx, dweight|null, dbias|null, dy, x, mean, rstd, weight|null, rows, groups, dim, residualWeight)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "layerNormBackward"};
  require_count(c, 12);
  const NormSizes s = norm_sizes(c, 8);
  const bool residual = require_bool(c, 11, "residualWeight");
  float* dx = require_f32(c, 0, "dx", s.n, s.dn);
  float* dw = optional_f32(c, 1, "dweight", s.gd, s.dgd);
  float* db = optional_f32(c, 2, "dbias", s.gd, s.dgd);
  const float* dy = require_f32(c, 3, "dy", s.n, s.dn);
  const float* x = require_f32(c, 4, "x", s.n, s.dn);
  const float* mean = require_f32(c, 5, "mean", s.rg, s.drg);
  const float* rstd = require_f32(c, 6, "rstd", s.rg, s.drg);
  const float* w = optional_f32(c, 7, "weight", s.gd, s.dgd);
  require_disjoint(c, {{"dx", dx, fbytes(s.n)}, {"dweight", dw, fbytes(s.gd)}, {"dbias", db, fbytes(s.gd)}},
             {{"dy", dy, fbytes(s.n)}, {"x", x, fbytes(s.n)}, {"mean", mean, fbytes(s.rg)},
              {"rstd", rstd, fbytes(s.rg)}, {"weight", w, fbytes(s.gd)}});
  run_sync(info.Env(), "layerNormBackward", [&] {
    layer_norm_backward(dx, dw, db, dy, x, mean, rstd, w, s.rows, s.groups, s.dim, residual);
  });
  return info.Env().Undefined();
}

// ---- embedding -------------------------------------------------------------------------------------------------

// The sizes shared by both embedding exports: indices at argument 2, v and e at 3 and 4.
struct EmbeddingSizes {
  int64_t v, e, ve, n, ne;
  Indices idx;
  std::string ve_desc, ne_desc;
};

EmbeddingSizes read_embedding_sizes(const ArgCtx& c) {
  require_count(c, 5);
  EmbeddingSizes s;
  s.v = require_int(c, 3, "v", 1, kMaxSize);
  s.e = require_int(c, 4, "e", 1, kMaxSize);
  s.ve = checked_product(c, "v*e", {s.v, s.e});
  s.idx = require_indices(c, 2, "indices", -1, "");
  s.n = s.idx.length;
  s.ne = checked_product(c, "n*e", {s.n, s.e});
  s.ve_desc = describe("v*e", {{"v", s.v}, {"e", s.e}});
  s.ne_desc = describe("n*e", {{"n", s.n}, {"e", s.e}});
  return s;
}

// embeddingForward(out, weight, indices, v, e); out has indices.length * e elements
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "embeddingForward"};
  const EmbeddingSizes s = read_embedding_sizes(c);
  float* out = require_f32(c, 0, "out", s.ne, s.ne_desc);
  const float* w = require_f32(c, 1, "weight", s.ve, s.ve_desc);
  require_disjoint(c, {{"out", out, fbytes(s.ne)}}, {{"weight", w, fbytes(s.ve)}, {"indices", s.idx.ptr(), s.idx.bytes()}});
  check_index_values(c, "indices", s.idx, s.v, "v");
  run_sync(info.Env(), "embeddingForward", [&] {
    if (s.idx.i32) embedding_forward(out, w, s.idx.i32, s.n, s.e);
    else embedding_forward(out, w, s.idx.i64, s.n, s.e);
  });
  return info.Env().Undefined();
}

// embeddingBackward(dweight, dout, indices, v, e)
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "embeddingBackward"};
  const EmbeddingSizes s = read_embedding_sizes(c);
  float* dw = require_f32(c, 0, "dweight", s.ve, s.ve_desc);
  const float* dout = require_f32(c, 1, "dout", s.ne, s.ne_desc);
  require_disjoint(c, {{"dweight", dw, fbytes(s.ve)}}, {{"dout", dout, fbytes(s.ne)}, {"indices", s.idx.ptr(), s.idx.bytes()}});
  check_index_values(c, "indices", s.idx, s.v, "v");
  run_sync(info.Env(), "embeddingBackward", [&] {
    if (s.idx.i32) embedding_backward(dw, dout, s.idx.i32, s.n, s.v, s.e);
    else embedding_backward(dw, dout, s.idx.i64, s.n, s.v, s.e);
  });
  return info.Env().Undefined();
}

// ---- causal conv1d ---------------------------------------------------------------------------------------------

struct ConvSizes {
  int64_t b, s, f, k, n, fk;
  std::string dn, dfk, df;
};

ConvSizes conv_sizes(const ArgCtx& c, size_t i) {
  ConvSizes z;
  z.b = require_int(c, i, "b", 0, kMaxSize);
  z.s = require_int(c, i + 1, "s", 0, kMaxSize);
  z.f = require_int(c, i + 2, "f", 1, kMaxSize);
  z.k = require_int(c, i + 3, "k", 1, 1 << 16);
  z.n = checked_product(c, "b*s*f", {z.b, z.s, z.f});
  z.fk = checked_product(c, "f*k", {z.f, z.k});
  z.dn = describe("b*s*f", {{"b", z.b}, {"s", z.s}, {"f", z.f}});
  z.dfk = describe("f*k", {{"f", z.f}, {"k", z.k}});
  z.df = describe("f", {{"f", z.f}});
  return z;
}

// causalConv1dForward(y, x, weight, bias|null, b, s, f, k)
Napi::Value CausalConv1dForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "causalConv1dForward"};
  require_count(c, 8);
  const ConvSizes z = conv_sizes(c, 4);
  float* y = require_f32(c, 0, "y", z.n, z.dn);
  const float* x = require_f32(c, 1, "x", z.n, z.dn);
  const float* w = require_f32(c, 2, "weight", z.fk, z.dfk);
  const float* b = optional_f32(c, 3, "bias", z.f, z.df);
  require_disjoint(c, {{"y", y, fbytes(z.n)}}, {{"x", x, fbytes(z.n)}, {"weight", w, fbytes(z.fk)}, {"bias", b, fbytes(z.f)}});
  run_sync(info.Env(), "causalConv1dForward", [&] { causal_conv1d_forward(y, x, w, b, z.b, z.s, z.f, z.k); });
  return info.Env().Undefined();
}

// causalConv1dBackward(dx|null, dweight|null, dbias|null, dy, x, weight, b, s, f, k)
Napi::Value CausalConv1dBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "causalConv1dBackward"};
  require_count(c, 10);
  const ConvSizes z = conv_sizes(c, 6);
  float* dx = optional_f32(c, 0, "dx", z.n, z.dn);
  float* dw = optional_f32(c, 1, "dweight", z.fk, z.dfk);
  float* db = optional_f32(c, 2, "dbias", z.f, z.df);
  const float* dy = require_f32(c, 3, "dy", z.n, z.dn);
  const float* x = require_f32(c, 4, "x", z.n, z.dn);
  const float* w = require_f32(c, 5, "weight", z.fk, z.dfk);
  require_disjoint(c, {{"dx", dx, fbytes(z.n)}, {"dweight", dw, fbytes(z.fk)}, {"dbias", db, fbytes(z.f)}},
             {{"dy", dy, fbytes(z.n)}, {"x", x, fbytes(z.n)}, {"weight", w, fbytes(z.fk)}});
  run_sync(info.Env(), "causalConv1dBackward",
           [&] { causal_conv1d_backward(dx, dw, db, dy, x, w, z.b, z.s, z.f, z.k); });
  return info.Env().Undefined();
}

// ---- dropout ---------------------------------------------------------------------------------------------------

double require_probability(const ArgCtx& c, size_t i) {
  const double p = require_number(c, i, "p");
  if (!(p >= 0 && p <= 1)) throw_range(c, "p must be a probability in [0, 1], got " + std::to_string(p));
  return p;
}

// dropoutForward(y, mask, x, p, key0, key1)
Napi::Value DropoutForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "dropoutForward"};
  require_count(c, 6);
  const double p = require_probability(c, 3);
  const uint32_t k0 = require_u32(c, 4, "key0");
  const uint32_t k1 = require_u32(c, 5, "key1");
  const int64_t n = typed_length(c, 2, "x");
  const float* x = require_f32(c, 2, "x", -1, "");
  const std::string d = "x.length";
  float* y = require_f32(c, 0, "y", n, d);
  uint8_t* mask = require_u8(c, 1, "mask", n, d);
  require_disjoint(c, {{"y", y, fbytes(n)}, {"mask", mask, static_cast<size_t>(n)}}, {{"x", x, fbytes(n)}});
  run_sync(info.Env(), "dropoutForward", [&] { dropout_forward(y, mask, x, n, p, k0, k1); });
  return info.Env().Undefined();
}

// dropoutBackward(dx, dy, mask, p)
Napi::Value DropoutBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "dropoutBackward"};
  require_count(c, 4);
  const double p = require_probability(c, 3);
  const int64_t n = typed_length(c, 1, "dy");
  const float* dy = require_f32(c, 1, "dy", -1, "");
  const std::string d = "dy.length";
  float* dx = require_f32(c, 0, "dx", n, d);
  const uint8_t* mask = require_u8(c, 2, "mask", n, d);
  require_disjoint(c, {{"dx", dx, fbytes(n)}}, {{"dy", dy, fbytes(n)}, {"mask", mask, static_cast<size_t>(n)}});
  run_sync(info.Env(), "dropoutBackward", [&] { dropout_backward(dx, dy, mask, n, dropout_scale(p)); });
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
