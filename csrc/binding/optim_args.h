// Binding layer: argument parsing of the optimizer exports, shared by the CPU binding (adamwStep, sumSquares,
// scaleInPlace in csrc/binding/optim.cc) and the CUDA twin's (cudaAdamwStepHost, cudaSumSquaresHost,
// cudaScaleInPlaceHost in csrc/binding/cuda_misc.cc), so both check their arguments identically.
#pragma once
#include <napi.h>

#include <cmath>
#include <string>

#include "binding/args.h"

namespace xlstm {
namespace optim_args {

inline double require_finite(const ArgCtx& c, size_t i, const char* name, double lo, double hi, const char* range) {
  const double v = require_number(c, i, name);
  if (!(std::isfinite(v) && v >= lo && v <= hi)) throw_range(c, std::string(name) + " must be in " + range + ", got " + std::to_string(v));
  return v;
}

// adamwStep(p, m, v, g, lr, beta1, beta2, eps, weightDecay, step)
struct AdamwCall {
  int64_t n;
  float *p, *m, *v;
  const float* g;
  double lr, beta1, beta2, eps, wd;
  int64_t t;
};
inline AdamwCall parse_adamw(const ArgCtx& c) {
  require_count(c, 10);
  AdamwCall a;
  a.n = typed_length(c, 0, "p");
  const std::string desc = describe("n", {{"n", a.n}});
  a.p = require_f32(c, 0, "p", a.n);
  a.m = require_f32(c, 1, "m", a.n, desc);
  a.v = require_f32(c, 2, "v", a.n, desc);
  a.g = require_f32(c, 3, "g", a.n, desc);
  a.lr = require_finite(c, 4, "lr", 0.0, INFINITY, "[0, inf)");
  a.beta1 = require_finite(c, 5, "beta1", 0.0, 0.9999999999, "[0, 1)");
  a.beta2 = require_finite(c, 6, "beta2", 0.0, 0.9999999999, "[0, 1)");
  a.eps = require_finite(c, 7, "eps", 0.0, INFINITY, "[0, inf)");
  a.wd = require_finite(c, 8, "weightDecay", 0.0, INFINITY, "[0, inf)");
  a.t = require_int(c, 9, "step", 1, INT64_C(1) << 52);
  const size_t bytes = static_cast<size_t>(a.n) * sizeof(float);
  require_disjoint(c, {{"p", a.p, bytes}, {"m", a.m, bytes}, {"v", a.v, bytes}}, {{"g", a.g, bytes}});
  return a;
}

// sgdStep(p, buf, g, lr, momentum, dampening, weightDecay, nesterov, first); buf may be null when momentum is 0
struct SgdCall {
  int64_t n;
  float *p, *buf;
  const float* g;
  double lr, momentum, dampening, wd;
  bool nesterov, first;
};
inline SgdCall parse_sgd(const ArgCtx& c) {
  require_count(c, 9);
  SgdCall a;
  a.n = typed_length(c, 0, "p");
  const std::string desc = describe("n", {{"n", a.n}});
  a.p = require_f32(c, 0, "p", a.n);
  a.g = require_f32(c, 2, "g", a.n, desc);
  a.lr = require_finite(c, 3, "lr", 0.0, INFINITY, "[0, inf)");
  a.momentum = require_finite(c, 4, "momentum", 0.0, INFINITY, "[0, inf)");
  a.dampening = require_finite(c, 5, "dampening", 0.0, INFINITY, "[0, inf)");
  a.wd = require_finite(c, 6, "weightDecay", 0.0, INFINITY, "[0, inf)");
  a.nesterov = require_bool(c, 7, "nesterov");
  a.first = require_bool(c, 8, "first");
  a.buf = nullptr;
  if (a.momentum != 0.0) a.buf = require_f32(c, 1, "buf", a.n, desc);
  else if (!c.info[1].IsNull() && !c.info[1].IsUndefined()) a.buf = require_f32(c, 1, "buf", a.n, desc);
  const size_t bytes = static_cast<size_t>(a.n) * sizeof(float);
  if (a.buf) require_disjoint(c, {{"p", a.p, bytes}, {"buf", a.buf, bytes}}, {{"g", a.g, bytes}});
  else require_disjoint(c, {{"p", a.p, bytes}}, {{"g", a.g, bytes}});
  return a;
}

// sumSquares(x)
struct SumSquaresCall {
  int64_t n;
  const float* x;
};
inline SumSquaresCall parse_sum_squares(const ArgCtx& c) {
  require_count(c, 1);
  SumSquaresCall a;
  a.n = typed_length(c, 0, "x");
  a.x = require_f32(c, 0, "x", a.n);
  return a;
}

// scaleInPlace(x, alpha)
struct ScaleCall {
  int64_t n;
  float* x;
  float alpha;
};
inline ScaleCall parse_scale(const ArgCtx& c) {
  require_count(c, 2);
  ScaleCall a;
  a.n = typed_length(c, 0, "x");
  a.x = require_f32(c, 0, "x", a.n);
  const double alpha = require_number(c, 1, "alpha");
  if (!std::isfinite(alpha)) throw_range(c, "alpha must be finite, got " + std::to_string(alpha));
  a.alpha = static_cast<float>(alpha);
  return a;
}

}  // namespace optim_args
}  // namespace xlstm
