// Binding layer: argument parsing of the dropout exports, shared by the CPU binding (dropoutForward,
// dropoutBackward in csrc/binding/nn.cc) and the CUDA twin's (cudaDropoutForwardHost, cudaDropoutBackwardHost in
// csrc/binding/cuda_misc.cc), so both check their arguments identically.
#pragma once
#include <napi.h>

#include <string>

#include "binding/args.h"

namespace xlstm {
namespace dropout_args {

inline double require_probability(const ArgCtx& c, size_t i) {
  const double p = require_number(c, i, "p");
  if (!(p >= 0 && p <= 1)) throw_range(c, "p must be a probability in [0, 1], got " + std::to_string(p));
  return p;
}

inline uint32_t require_key(const ArgCtx& c, size_t i, const char* name) {
  return static_cast<uint32_t>(require_int(c, i, name, 0, 0xFFFFFFFFll));
}

// dropoutForward(y, mask, x, p, key0, key1)
struct ForwardCall {
  double p;
  uint32_t k0, k1;
  int64_t n;
  const float* x;
  float* y;
  uint8_t* mask;
};
inline ForwardCall parse_forward(const ArgCtx& c) {
  require_count(c, 6);
  ForwardCall a;
  a.p = require_probability(c, 3);
  a.k0 = require_key(c, 4, "key0");
  a.k1 = require_key(c, 5, "key1");
  a.n = typed_length(c, 2, "x");
  a.x = require_f32(c, 2, "x", -1, "");
  const std::string d = "x.length";
  a.y = require_f32(c, 0, "y", a.n, d);
  a.mask = require_u8(c, 1, "mask", a.n, d);
  require_disjoint(c, {{"y", a.y, static_cast<size_t>(a.n) * sizeof(float)}, {"mask", a.mask, static_cast<size_t>(a.n)}},
                   {{"x", a.x, static_cast<size_t>(a.n) * sizeof(float)}});
  return a;
}

// dropoutBackward(dx, dy, mask, p)
struct BackwardCall {
  double p;
  int64_t n;
  const float* dy;
  float* dx;
  const uint8_t* mask;
};
inline BackwardCall parse_backward(const ArgCtx& c) {
  require_count(c, 4);
  BackwardCall a;
  a.p = require_probability(c, 3);
  a.n = typed_length(c, 1, "dy");
  a.dy = require_f32(c, 1, "dy", -1, "");
  const std::string d = "dy.length";
  a.dx = require_f32(c, 0, "dx", a.n, d);
  a.mask = require_u8(c, 2, "mask", a.n, d);
  require_disjoint(c, {{"dx", a.dx, static_cast<size_t>(a.n) * sizeof(float)}},
                   {{"dy", a.dy, static_cast<size_t>(a.n) * sizeof(float)}, {"mask", a.mask, static_cast<size_t>(a.n)}});
  return a;
}

}  // namespace dropout_args
}  // namespace xlstm
