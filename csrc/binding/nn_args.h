// Binding layer: argument parsing of the nn exports that have a CUDA twin (softmax family, cross-entropy, layer
// norm, embedding), shared by the CPU exports (csrc/binding/nn.cc) and the CUDA host entries
// (csrc/binding/cuda_nn.cc), so both check exactly the same things in the same order: kinds (TypeError), sizes
// and values (RangeError, naming the argument), overlaps of outputs with inputs, and index values.
#pragma once
#include <napi.h>

#include <cmath>
#include <sstream>
#include <string>

#include "binding/args.h"

namespace xlstm {
namespace nnargs {

constexpr int64_t kMaxSize = INT64_C(1) << 45;
constexpr int64_t kMaxSafe = INT64_C(9007199254740991);  // 2^53 - 1

inline size_t fbytes(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

// An index array: Int32Array or BigInt64Array.
struct Indices {
  const int32_t* i32 = nullptr;
  const int64_t* i64 = nullptr;
  int64_t length = 0;
  int64_t at(int64_t k) const { return i32 ? static_cast<int64_t>(i32[k]) : i64[k]; }
  const void* ptr() const { return i32 ? static_cast<const void*>(i32) : static_cast<const void*>(i64); }
  size_t bytes() const { return static_cast<size_t>(length) * (i32 ? 4 : 8); }
};

inline Indices require_indices(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc) {
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
inline void check_index_values(const ArgCtx& c, const char* name, const Indices& idx, int64_t hi, const char* hi_name,
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

// ---- softmax family --------------------------------------------------------------------------------------------

// (y, x, rows, cols)
struct RowwiseForwardArgs {
  float* y;
  const float* x;
  int64_t rows, cols, n;
};
inline RowwiseForwardArgs parse_rowwise_forward(const ArgCtx& c) {
  require_count(c, 4);
  RowwiseForwardArgs a;
  a.rows = require_int(c, 2, "rows", 0, kMaxSize);
  a.cols = require_int(c, 3, "cols", 0, kMaxSize);
  a.n = checked_product(c, "rows*cols", {a.rows, a.cols});
  const std::string d = describe("rows*cols", {{"rows", a.rows}, {"cols", a.cols}});
  a.y = require_f32(c, 0, "y", a.n, d);
  a.x = require_f32(c, 1, "x", a.n, d);
  require_disjoint(c, {{"y", a.y, fbytes(a.n)}}, {{"x", a.x, fbytes(a.n)}});
  return a;
}

// (dx, y, dy, rows, cols)
struct RowwiseBackwardArgs {
  float* dx;
  const float *y, *dy;
  int64_t rows, cols, n;
};
inline RowwiseBackwardArgs parse_rowwise_backward(const ArgCtx& c) {
  require_count(c, 5);
  RowwiseBackwardArgs a;
  a.rows = require_int(c, 3, "rows", 0, kMaxSize);
  a.cols = require_int(c, 4, "cols", 0, kMaxSize);
  a.n = checked_product(c, "rows*cols", {a.rows, a.cols});
  const std::string d = describe("rows*cols", {{"rows", a.rows}, {"cols", a.cols}});
  a.dx = require_f32(c, 0, "dx", a.n, d);
  a.y = require_f32(c, 1, "y", a.n, d);
  a.dy = require_f32(c, 2, "dy", a.n, d);
  require_disjoint(c, {{"dx", a.dx, fbytes(a.n)}}, {{"y", a.y, fbytes(a.n)}, {"dy", a.dy, fbytes(a.n)}});
  return a;
}

// (loss, rowMax, logSum, logits, targets, n, v, ignoreIndex); targets checked.
struct CrossEntropyForwardArgs {
  float *loss, *row_max, *log_sum;
  const float* logits;
  Indices t;
  int64_t n, v, ignore;
};
inline CrossEntropyForwardArgs parse_cross_entropy_forward(const ArgCtx& c) {
  require_count(c, 8);
  CrossEntropyForwardArgs a;
  a.n = require_int(c, 5, "n", 0, kMaxSize);
  a.v = require_int(c, 6, "v", 1, kMaxSize);
  a.ignore = require_int(c, 7, "ignoreIndex", -kMaxSafe, kMaxSafe);
  const int64_t nv = checked_product(c, "n*v", {a.n, a.v});
  const std::string dn = describe("n", {{"n", a.n}});
  a.loss = require_f32(c, 0, "loss", a.n, dn);
  a.row_max = require_f32(c, 1, "rowMax", a.n, dn);
  a.log_sum = require_f32(c, 2, "logSum", a.n, dn);
  a.logits = require_f32(c, 3, "logits", nv, describe("n*v", {{"n", a.n}, {"v", a.v}}));
  a.t = require_indices(c, 4, "targets", a.n, dn);
  require_disjoint(c,
                   {{"loss", a.loss, fbytes(a.n)}, {"rowMax", a.row_max, fbytes(a.n)}, {"logSum", a.log_sum, fbytes(a.n)}},
                   {{"logits", a.logits, fbytes(nv)}, {"targets", a.t.ptr(), a.t.bytes()}});
  check_index_values(c, "targets", a.t, a.v, "v", true, a.ignore);
  return a;
}

// (dlogits, logits, rowMax, logSum, targets, g, n, v, ignoreIndex); targets checked.
struct CrossEntropyBackwardArgs {
  float* dlogits;
  const float *logits, *row_max, *log_sum, *g;
  Indices t;
  int64_t n, v, ignore;
};
inline CrossEntropyBackwardArgs parse_cross_entropy_backward(const ArgCtx& c) {
  require_count(c, 9);
  CrossEntropyBackwardArgs a;
  a.n = require_int(c, 6, "n", 0, kMaxSize);
  a.v = require_int(c, 7, "v", 1, kMaxSize);
  a.ignore = require_int(c, 8, "ignoreIndex", -kMaxSafe, kMaxSafe);
  const int64_t nv = checked_product(c, "n*v", {a.n, a.v});
  const std::string dn = describe("n", {{"n", a.n}});
  const std::string dnv = describe("n*v", {{"n", a.n}, {"v", a.v}});
  a.dlogits = require_f32(c, 0, "dlogits", nv, dnv);
  a.logits = require_f32(c, 1, "logits", nv, dnv);
  a.row_max = require_f32(c, 2, "rowMax", a.n, dn);
  a.log_sum = require_f32(c, 3, "logSum", a.n, dn);
  a.t = require_indices(c, 4, "targets", a.n, dn);
  a.g = require_f32(c, 5, "g", a.n, dn);
  require_disjoint(c, {{"dlogits", a.dlogits, fbytes(nv)}},
                   {{"logits", a.logits, fbytes(nv)}, {"rowMax", a.row_max, fbytes(a.n)}, {"logSum", a.log_sum, fbytes(a.n)},
                    {"targets", a.t.ptr(), a.t.bytes()}, {"g", a.g, fbytes(a.n)}});
  check_index_values(c, "targets", a.t, a.v, "v", true, a.ignore);
  return a;
}

// ---- layer norm ------------------------------------------------------------------------------------------------

struct NormSizes {
  int64_t rows, groups, dim, n, gd, rg;
  std::string dn, dgd, drg;
};

inline NormSizes norm_sizes(const ArgCtx& c, size_t i) {
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

// (y, mean, rstd, x, weight|null, bias|null, rows, groups, dim, eps, residualWeight)
struct LayerNormForwardArgs {
  NormSizes s;
  float eps;
  bool residual;
  float *y, *mean, *rstd;
  const float *x, *w, *b;
};
inline LayerNormForwardArgs parse_layer_norm_forward(const ArgCtx& c) {
  require_count(c, 11);
  LayerNormForwardArgs a;
  a.s = norm_sizes(c, 6);
  const NormSizes& s = a.s;
  const double eps = require_number(c, 9, "eps");
  if (!(eps >= 0) || !std::isfinite(eps)) throw_range(c, "eps must be a finite number >= 0, got " + std::to_string(eps));
  a.eps = static_cast<float>(eps);
  a.residual = require_bool(c, 10, "residualWeight");
  a.y = require_f32(c, 0, "y", s.n, s.dn);
  a.mean = require_f32(c, 1, "mean", s.rg, s.drg);
  a.rstd = require_f32(c, 2, "rstd", s.rg, s.drg);
  a.x = require_f32(c, 3, "x", s.n, s.dn);
  a.w = optional_f32(c, 4, "weight", s.gd, s.dgd);
  a.b = optional_f32(c, 5, "bias", s.gd, s.dgd);
  require_disjoint(c, {{"y", a.y, fbytes(s.n)}, {"mean", a.mean, fbytes(s.rg)}, {"rstd", a.rstd, fbytes(s.rg)}},
                   {{"x", a.x, fbytes(s.n)}, {"weight", a.w, fbytes(s.gd)}, {"bias", a.b, fbytes(s.gd)}});
  return a;
}

// (dx, dweight|null, dbias|null, dy, x, mean, rstd, weight|null, rows, groups, dim, residualWeight)
struct LayerNormBackwardArgs {
  NormSizes s;
  bool residual;
  float *dx, *dw, *db;
  const float *dy, *x, *mean, *rstd, *w;
};
inline LayerNormBackwardArgs parse_layer_norm_backward(const ArgCtx& c) {
  require_count(c, 12);
  LayerNormBackwardArgs a;
  a.s = norm_sizes(c, 8);
  const NormSizes& s = a.s;
  a.residual = require_bool(c, 11, "residualWeight");
  a.dx = require_f32(c, 0, "dx", s.n, s.dn);
  a.dw = optional_f32(c, 1, "dweight", s.gd, s.dgd);
  a.db = optional_f32(c, 2, "dbias", s.gd, s.dgd);
  a.dy = require_f32(c, 3, "dy", s.n, s.dn);
  a.x = require_f32(c, 4, "x", s.n, s.dn);
  a.mean = require_f32(c, 5, "mean", s.rg, s.drg);
  a.rstd = require_f32(c, 6, "rstd", s.rg, s.drg);
  a.w = optional_f32(c, 7, "weight", s.gd, s.dgd);
  require_disjoint(c, {{"dx", a.dx, fbytes(s.n)}, {"dweight", a.dw, fbytes(s.gd)}, {"dbias", a.db, fbytes(s.gd)}},
                   {{"dy", a.dy, fbytes(s.n)}, {"x", a.x, fbytes(s.n)}, {"mean", a.mean, fbytes(s.rg)},
                    {"rstd", a.rstd, fbytes(s.rg)}, {"weight", a.w, fbytes(s.gd)}});
  return a;
}

// ---- embedding -------------------------------------------------------------------------------------------------

// The sizes shared by both embedding exports: indices at argument 2, v and e at 3 and 4.
struct EmbeddingSizes {
  int64_t v, e, ve, n, ne;
  Indices idx;
  std::string ve_desc, ne_desc;
};

inline EmbeddingSizes read_embedding_sizes(const ArgCtx& c) {
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

// (out, weight, indices, v, e); indices checked.
struct EmbeddingForwardArgs {
  EmbeddingSizes s;
  float* out;
  const float* w;
};
inline EmbeddingForwardArgs parse_embedding_forward(const ArgCtx& c) {
  EmbeddingForwardArgs a;
  a.s = read_embedding_sizes(c);
  const EmbeddingSizes& s = a.s;
  a.out = require_f32(c, 0, "out", s.ne, s.ne_desc);
  a.w = require_f32(c, 1, "weight", s.ve, s.ve_desc);
  require_disjoint(c, {{"out", a.out, fbytes(s.ne)}}, {{"weight", a.w, fbytes(s.ve)}, {"indices", s.idx.ptr(), s.idx.bytes()}});
  check_index_values(c, "indices", s.idx, s.v, "v");
  return a;
}

// (dweight, dout, indices, v, e); indices checked.
struct EmbeddingBackwardArgs {
  EmbeddingSizes s;
  float* dw;
  const float* dout;
};
inline EmbeddingBackwardArgs parse_embedding_backward(const ArgCtx& c) {
  EmbeddingBackwardArgs a;
  a.s = read_embedding_sizes(c);
  const EmbeddingSizes& s = a.s;
  a.dw = require_f32(c, 0, "dweight", s.ve, s.ve_desc);
  a.dout = require_f32(c, 1, "dout", s.ne, s.ne_desc);
  require_disjoint(c, {{"dweight", a.dw, fbytes(s.ve)}}, {{"dout", a.dout, fbytes(s.ne)}, {"indices", s.idx.ptr(), s.idx.bytes()}});
  check_index_values(c, "indices", s.idx, s.v, "v");
  return a;
}

}  // namespace nnargs
}  // namespace xlstm
