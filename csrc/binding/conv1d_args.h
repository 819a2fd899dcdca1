// Binding layer: argument parsing of the causal conv1d exports, shared by the CPU binding (causalConv1dForward,
// causalConv1dBackward in csrc/binding/nn.cc) and the CUDA twin's (cudaCausalConv1dForwardHost,
// cudaCausalConv1dBackwardHost in csrc/binding/cuda_misc.cc), so both check their arguments identically.
#pragma once
#include <napi.h>

#include <string>

#include "binding/args.h"

namespace xlstm {
namespace conv1d_args {

constexpr int64_t kMaxSize = INT64_C(1) << 45;

inline size_t fbytes(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

struct ConvSizes {
  int64_t b, s, f, k, n, fk;
  std::string dn, dfk, df;
};

inline ConvSizes conv_sizes(const ArgCtx& c, size_t i) {
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
struct ForwardCall {
  ConvSizes z;
  float* y;
  const float *x, *w, *b;
};
inline ForwardCall parse_forward(const ArgCtx& c) {
  require_count(c, 8);
  ForwardCall a;
  a.z = conv_sizes(c, 4);
  const ConvSizes& z = a.z;
  a.y = require_f32(c, 0, "y", z.n, z.dn);
  a.x = require_f32(c, 1, "x", z.n, z.dn);
  a.w = require_f32(c, 2, "weight", z.fk, z.dfk);
  a.b = optional_f32(c, 3, "bias", z.f, z.df);
  require_disjoint(c, {{"y", a.y, fbytes(z.n)}}, {{"x", a.x, fbytes(z.n)}, {"weight", a.w, fbytes(z.fk)}, {"bias", a.b, fbytes(z.f)}});
  return a;
}

// causalConv1dBackward(dx|null, dweight|null, dbias|null, dy, x, weight, b, s, f, k)
struct BackwardCall {
  ConvSizes z;
  float *dx, *dw, *db;
  const float *dy, *x, *w;
};
inline BackwardCall parse_backward(const ArgCtx& c) {
  require_count(c, 10);
  BackwardCall a;
  a.z = conv_sizes(c, 6);
  const ConvSizes& z = a.z;
  a.dx = optional_f32(c, 0, "dx", z.n, z.dn);
  a.dw = optional_f32(c, 1, "dweight", z.fk, z.dfk);
  a.db = optional_f32(c, 2, "dbias", z.f, z.df);
  a.dy = require_f32(c, 3, "dy", z.n, z.dn);
  a.x = require_f32(c, 4, "x", z.n, z.dn);
  a.w = require_f32(c, 5, "weight", z.fk, z.dfk);
  require_disjoint(c, {{"dx", a.dx, fbytes(z.n)}, {"dweight", a.dw, fbytes(z.fk)}, {"dbias", a.db, fbytes(z.f)}},
                   {{"dy", a.dy, fbytes(z.n)}, {"x", a.x, fbytes(z.n)}, {"weight", a.w, fbytes(z.fk)}});
  return a;
}

}  // namespace conv1d_args
}  // namespace xlstm
