// Binding layer: argument parsing of the fused sLSTM / LSTM exports, shared by the CPU binding (slstmForward,
// slstmBackward, lstmForward, lstmBackward and their *Async variants in csrc/binding/recurrent.cc) and the CUDA
// twin's (cudaSlstmForwardHost, ... in csrc/binding/cuda_recurrent.cc), so both check their arguments identically.
// JS: slstmForward(y, states, gates, x, state0|null, R, bias, B, S, NH, DH[, rTransposed])
//     slstmBackward(dx, dR, dbias, dstate0|null, gates, states, dy, dstateFinal|null, state0|null, R,
//                   B, S, NH, DH, exactM0Grad[, rTransposed])
//     lstmForward / lstmBackward: the same without exactM0Grad.
// rTransposed (CPU exports only; default false): R and dR per head transposed, [NH, 4DH, DH] (recurrent.h).
#pragma once
#include <napi.h>

#include <string>

#include "binding/args.h"
#include "kernels/recurrent.h"

namespace xlstm {
namespace recurrent_args {

struct Sizes {
  RecurrentDims d;
  int64_t H, bsh, x_len, r_len, state_len, seq_state_len;
  std::string bs4h, bsh_desc, r_desc, s0_desc, seq_desc;
};

inline Sizes read_sizes(const ArgCtx& c, size_t first, int ns) {
  Sizes s;
  s.d.B = require_int(c, first, "B", 1, INT32_MAX);
  s.d.S = require_int(c, first + 1, "S", 1, INT32_MAX);
  s.d.NH = require_int(c, first + 2, "NH", 1, 1 << 16);
  s.d.DH = require_int(c, first + 3, "DH", 1, 1 << 16);
  s.H = checked_product(c, "H = NH*DH", {s.d.NH, s.d.DH});
  s.bsh = checked_product(c, "B*S*H", {s.d.B, s.d.S, s.H});
  s.x_len = checked_product(c, "B*S*4H", {s.d.B, s.d.S, 4, s.H});
  s.r_len = checked_product(c, "NH*DH*4DH", {s.d.NH, s.d.DH, 4, s.d.DH});
  s.state_len = checked_product(c, "NS*B*H", {ns, s.d.B, s.H});
  s.seq_state_len = checked_product(c, "NS*S*B*H", {ns, s.d.S, s.d.B, s.H});
  auto dims = [&](const char* f) {
    return describe(f, {{"B", s.d.B}, {"S", s.d.S}, {"NH", s.d.NH}, {"DH", s.d.DH}, {"NS", ns}});
  };
  s.bs4h = dims("B*S*4*NH*DH");
  s.bsh_desc = dims("B*S*NH*DH");
  s.r_desc = dims("NH*DH*4*DH");
  s.s0_desc = dims("NS*B*NH*DH");
  s.seq_desc = dims("NS*S*B*NH*DH");
  return s;
}

inline size_t fbytes(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

// The optional trailing rTransposed flag at index i; the CUDA exports (allow false) refuse it.
inline bool read_r_transposed(const ArgCtx& c, size_t i, bool allow) {
  if (c.info.Length() <= i || c.info[i].IsUndefined()) return false;
  const bool t = require_bool(c, i, "rTransposed");
  if (t && !allow) throw_type(c, "rTransposed is not supported here: pass R in the [NH, DH, 4*DH] layout");
  return t;
}

// (y, states, gates, x, state0|null, R, bias, B, S, NH, DH[, rTransposed]): 11 or 12 arguments.
struct ForwardCall {
  Sizes s;
  float *y, *states, *gates;
  const float *x, *state0, *R, *bias;
};
inline ForwardCall parse_forward(const ArgCtx& c, bool slstm, bool allow_r_transposed) {
  require_count(c, 11);
  const int ns = slstm ? 4 : 2;
  ForwardCall a;
  a.s = read_sizes(c, 7, ns);
  a.s.d.r_transposed = read_r_transposed(c, 11, allow_r_transposed);
  const Sizes& s = a.s;
  a.y = require_f32(c, 0, "y", s.bsh, s.bsh_desc);
  a.states = require_f32(c, 1, "states", s.seq_state_len, s.seq_desc);
  a.gates = require_f32(c, 2, "gates", s.x_len, s.bs4h);
  a.x = require_f32(c, 3, "x", s.x_len, s.bs4h);
  a.state0 = optional_f32(c, 4, "state0", s.state_len, s.s0_desc);
  a.R = require_f32(c, 5, "R", s.r_len, s.r_desc);
  a.bias = require_f32(c, 6, "bias", 4 * s.H, describe("4*NH*DH", {{"NH", s.d.NH}, {"DH", s.d.DH}}));
  require_disjoint(c, {{"y", a.y, fbytes(s.bsh)}, {"states", a.states, fbytes(s.seq_state_len)}, {"gates", a.gates, fbytes(s.x_len)}},
                   {{"x", a.x, fbytes(s.x_len)}, {"state0", a.state0, fbytes(s.state_len)}, {"R", a.R, fbytes(s.r_len)}, {"bias", a.bias, fbytes(4 * s.H)}});
  return a;
}

// (dx, dR, dbias, dstate0|null, gates, states, dy, dstateFinal|null, state0|null, R, B, S, NH, DH[, exactM0Grad]
// [, rTransposed]): 15 arguments for the sLSTM, 14 for the LSTM, one more with rTransposed.
struct BackwardCall {
  Sizes s;
  float *dx, *dR, *dbias, *dstate0;
  const float *gates, *states, *dy, *dfinal, *state0, *R;
  bool exact = false;
};
inline BackwardCall parse_backward(const ArgCtx& c, bool slstm, bool allow_r_transposed) {
  require_count(c, slstm ? 15 : 14);
  const int ns = slstm ? 4 : 2;
  BackwardCall a;
  a.s = read_sizes(c, 10, ns);
  a.s.d.r_transposed = read_r_transposed(c, slstm ? 15 : 14, allow_r_transposed);
  const Sizes& s = a.s;
  a.dx = require_f32(c, 0, "dx", s.x_len, s.bs4h);
  a.dR = require_f32(c, 1, "dR", s.r_len, s.r_desc);
  a.dbias = require_f32(c, 2, "dbias", 4 * s.H, describe("4*NH*DH", {{"NH", s.d.NH}, {"DH", s.d.DH}}));
  a.dstate0 = optional_f32(c, 3, "dstate0", s.state_len, s.s0_desc);
  a.gates = require_f32(c, 4, "gates", s.x_len, s.bs4h);
  a.states = require_f32(c, 5, "states", s.seq_state_len, s.seq_desc);
  a.dy = require_f32(c, 6, "dy", s.bsh, s.bsh_desc);
  a.dfinal = optional_f32(c, 7, "dstateFinal", s.state_len, s.s0_desc);
  a.state0 = optional_f32(c, 8, "state0", s.state_len, s.s0_desc);
  a.R = require_f32(c, 9, "R", s.r_len, s.r_desc);
  a.exact = slstm ? require_bool(c, 14, "exactM0Grad") : false;
  require_disjoint(c,
                   {{"dx", a.dx, fbytes(s.x_len)}, {"dR", a.dR, fbytes(s.r_len)}, {"dbias", a.dbias, fbytes(4 * s.H)}, {"dstate0", a.dstate0, fbytes(s.state_len)}},
                   {{"gates", a.gates, fbytes(s.x_len)}, {"states", a.states, fbytes(s.seq_state_len)}, {"dy", a.dy, fbytes(s.bsh)},
                    {"dstateFinal", a.dfinal, fbytes(s.state_len)}, {"state0", a.state0, fbytes(s.state_len)}, {"R", a.R, fbytes(s.r_len)}});
  return a;
}

}  // namespace recurrent_args
}  // namespace xlstm
