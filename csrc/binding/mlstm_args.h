// Argument parsing of the mLSTM cell exports (csrc/binding/mlstm.cc) shared with their CUDA twins
// (csrc/binding/cuda_mlstm.cc): sizes, eps, chunk size, the `saved` lengths, the optional initial state, and the
// full argument lists of the forward / backward calls (checked in the order the CPU exports always checked them).
#pragma once
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "binding/args.h"
#include "kernels/mlstm.h"

namespace xlstm {
namespace mlstm_args {
namespace {

struct Buf {
  const char* name;
  const float* ptr;
  int64_t len;
};

void check_no_alias(const ArgCtx& c, const std::vector<Buf>& outs, const std::vector<Buf>& ins) {
  for (size_t a = 0; a < outs.size(); ++a) {
    if (!outs[a].ptr) continue;
    for (size_t b = a + 1; b < outs.size(); ++b)
      if (outs[b].ptr)
        require_no_overlap(c, outs[a].name, outs[a].ptr, outs[a].len * 4, outs[b].name, outs[b].ptr, outs[b].len * 4);
    for (auto& in : ins)
      if (in.ptr) require_no_overlap(c, outs[a].name, outs[a].ptr, outs[a].len * 4, in.name, in.ptr, in.len * 4);
  }
}

// Sizes and element counts of one call; `first` is the index of B.
struct Sizes {
  MlstmDims d;
  int64_t qk, vh, gate, cs, ns, ms;
  std::string qk_desc, vh_desc, gate_desc, cs_desc, ns_desc, ms_desc;
};

Sizes read_sizes(const ArgCtx& c, size_t first) {
  Sizes s;
  s.d.B = require_int(c, first, "B", 1, INT32_MAX);
  s.d.NH = require_int(c, first + 1, "NH", 1, INT32_MAX);
  s.d.S = require_int(c, first + 2, "S", 1, INT32_MAX);
  s.d.DK = require_int(c, first + 3, "DHQK", 1, 1 << 16);
  s.d.DV = require_int(c, first + 4, "DHV", 1, 1 << 16);
  const auto& d = s.d;
  s.qk = checked_product(c, "B*NH*S*DHQK", {d.B, d.NH, d.S, d.DK});
  s.vh = checked_product(c, "B*NH*S*DHV", {d.B, d.NH, d.S, d.DV});
  s.gate = checked_product(c, "B*NH*S", {d.B, d.NH, d.S});
  s.cs = checked_product(c, "B*NH*DHQK*DHV", {d.B, d.NH, d.DK, d.DV});
  s.ns = checked_product(c, "B*NH*DHQK", {d.B, d.NH, d.DK});
  s.ms = checked_product(c, "B*NH", {d.B, d.NH});
  auto dims = [&](const char* f) {
    return describe(f, {{"B", d.B}, {"NH", d.NH}, {"S", d.S}, {"DHQK", d.DK}, {"DHV", d.DV}});
  };
  s.qk_desc = dims("B*NH*S*DHQK");
  s.vh_desc = dims("B*NH*S*DHV");
  s.gate_desc = dims("B*NH*S");
  s.cs_desc = dims("B*NH*DHQK*DHV");
  s.ns_desc = dims("B*NH*DHQK");
  s.ms_desc = dims("B*NH");
  return s;
}

float read_eps(const ArgCtx& c, size_t i) {
  const double eps = require_number(c, i, "eps");
  if (!(eps >= 0.0) || !std::isfinite(eps)) throw_range(c, "eps must be a finite number >= 0, got " + std::to_string(eps));
  return static_cast<float>(eps);
}

int64_t read_chunk(const ArgCtx& c, size_t i) { return require_int(c, i, "chunkSize", 1, INT32_MAX); }

// The chunkwise `saved` length; checks that it fits in memory-sized integers.
int64_t chunkwise_saved_len(const ArgCtx& c, const MlstmDims& d, int64_t chunk) {
  const int64_t NC = mlstm_num_chunks(d.S, chunk);
  const int64_t per = checked_product(c, "saved size", {NC + 1, d.DK, d.DV + 1}) + NC + 2 + 2 * d.S;
  return checked_product(c, "saved size", {d.B, d.NH, per});
}

int64_t recurrent_saved_len(const ArgCtx& c, const MlstmDims& d) {
  const int64_t nseg = (d.S + kRecurrentSegment - 1) / kRecurrentSegment;
  const int64_t per = checked_product(c, "saved size", {d.DK, d.DV + 1}) + 1;
  return checked_product(c, "saved size", {d.B, d.NH, nseg, per});
}

// The optional initial state (c0, n0, m0) at argument indices first..first+2: all given or none.
struct State0 {
  const float *c0, *n0, *m0;
};

State0 read_state0(const ArgCtx& c, size_t first, const Sizes& s) {
  State0 st{optional_f32(c, first, "c0", s.cs, s.cs_desc), optional_f32(c, first + 1, "n0", s.ns, s.ns_desc),
            optional_f32(c, first + 2, "m0", s.ms, s.ms_desc)};
  const int given = (st.c0 != nullptr) + (st.n0 != nullptr) + (st.m0 != nullptr);
  if (given != 0 && given != 3) throw_type(c, "c0, n0 and m0 must be given together (or all null for the zero state)");
  return st;
}

// A parsed forward call: mlstm{Chunkwise,Recurrent}Forward(h, cLast, nLast, mLast, saved|null, q, k, v, i, f,
// c0|null, n0|null, m0|null, B, NH, S, DHQK, DHV, [chunkSize,] eps, [parallelInit]).
struct ForwardCall {
  MlstmDims d;
  int64_t chunk = 0;
  float eps = 0.0f;
  bool parallel_init = false;
  float *h, *c_last, *n_last, *m_last, *saved;
  const float *q, *k, *v, *ig, *fg;
  State0 st;
};

// extra_flag: one more (boolean) argument may follow, read by the caller
template <bool Chunkwise>
ForwardCall parse_forward(const ArgCtx& c, bool extra_flag = false) {
  ForwardCall a;
  const size_t nargs = Chunkwise ? 21 : 19;
  if (!extra_flag || c.info.Length() != nargs + 1) require_count(c, nargs);
  Sizes s = read_sizes(c, 13);
  a.chunk = Chunkwise ? read_chunk(c, 18) : 0;
  a.eps = read_eps(c, Chunkwise ? 19 : 18);
  a.parallel_init = Chunkwise ? require_bool(c, 20, "parallelInit") : false;
  const int64_t saved_len = Chunkwise ? chunkwise_saved_len(c, s.d, a.chunk) : recurrent_saved_len(c, s.d);
  const std::string saved_desc = Chunkwise ? "mlstmChunkwiseSavedSize(...)" : "mlstmRecurrentSavedSize(...)";
  a.h = require_f32(c, 0, "h", s.vh, s.vh_desc);
  a.c_last = require_f32(c, 1, "cLast", s.cs, s.cs_desc);
  a.n_last = require_f32(c, 2, "nLast", s.ns, s.ns_desc);
  a.m_last = require_f32(c, 3, "mLast", s.ms, s.ms_desc);
  a.saved = optional_f32(c, 4, "saved", saved_len, saved_desc);
  a.q = require_f32(c, 5, "q", s.qk, s.qk_desc);
  a.k = require_f32(c, 6, "k", s.qk, s.qk_desc);
  a.v = require_f32(c, 7, "v", s.vh, s.vh_desc);
  a.ig = require_f32(c, 8, "i", s.gate, s.gate_desc);
  a.fg = require_f32(c, 9, "f", s.gate, s.gate_desc);
  a.st = read_state0(c, 10, s);
  check_no_alias(c,
                 {{"h", a.h, s.vh}, {"cLast", a.c_last, s.cs}, {"nLast", a.n_last, s.ns}, {"mLast", a.m_last, s.ms},
                  {"saved", a.saved, saved_len}},
                 {{"q", a.q, s.qk}, {"k", a.k, s.qk}, {"v", a.v, s.vh}, {"i", a.ig, s.gate}, {"f", a.fg, s.gate},
                  {"c0", a.st.c0, s.cs}, {"n0", a.st.n0, s.ns}, {"m0", a.st.m0, s.ms}});
  a.d = s.d;
  return a;
}

// A parsed backward call: mlstm{Chunkwise,Recurrent}Backward(dq, dk, dv, di, df, dc0|null, dn0|null, dm0|null,
// saved, [h,] dh, dcLast|null, dnLast|null, q, k, v, i, f, B, NH, S, DHQK, DHV, [chunkSize,] eps).
struct BackwardCall {
  MlstmDims d;
  int64_t chunk = 0;
  float eps = 0.0f;
  size_t first_size = 0;  // index of B (the arrays come before it)
  float *dq, *dk, *dv, *di, *df, *dc0, *dn0, *dm0;
  const float *saved, *h, *dh, *dc_last, *dn_last, *q, *k, *v, *ig, *fg;
};

template <bool Chunkwise>
BackwardCall parse_backward(const ArgCtx& c, bool extra_flag = false) {
  BackwardCall a;
  // the chunkwise backward also takes h (after saved); sizes follow the 5 inputs
  const size_t off = Chunkwise ? 1 : 0;
  const size_t nargs = Chunkwise ? 25 : 23;
  if (!extra_flag || c.info.Length() != nargs + 1) require_count(c, nargs);
  const size_t first_size = 17 + off;
  a.first_size = first_size;
  Sizes s = read_sizes(c, first_size);
  a.chunk = Chunkwise ? read_chunk(c, first_size + 5) : 0;
  a.eps = read_eps(c, first_size + 5 + off);
  const int64_t saved_len = Chunkwise ? chunkwise_saved_len(c, s.d, a.chunk) : recurrent_saved_len(c, s.d);
  const std::string saved_desc = Chunkwise ? "mlstmChunkwiseSavedSize(...)" : "mlstmRecurrentSavedSize(...)";
  a.dq = require_f32(c, 0, "dq", s.qk, s.qk_desc);
  a.dk = require_f32(c, 1, "dk", s.qk, s.qk_desc);
  a.dv = require_f32(c, 2, "dv", s.vh, s.vh_desc);
  a.di = require_f32(c, 3, "di", s.gate, s.gate_desc);
  a.df = require_f32(c, 4, "df", s.gate, s.gate_desc);
  a.dc0 = optional_f32(c, 5, "dc0", s.cs, s.cs_desc);
  a.dn0 = optional_f32(c, 6, "dn0", s.ns, s.ns_desc);
  a.dm0 = optional_f32(c, 7, "dm0", s.ms, s.ms_desc);
  a.saved = require_f32(c, 8, "saved", saved_len, saved_desc);
  a.h = Chunkwise ? require_f32(c, 9, "h", s.vh, s.vh_desc) : nullptr;
  a.dh = require_f32(c, 9 + off, "dh", s.vh, s.vh_desc);
  a.dc_last = optional_f32(c, 10 + off, "dcLast", s.cs, s.cs_desc);
  a.dn_last = optional_f32(c, 11 + off, "dnLast", s.ns, s.ns_desc);
  a.q = require_f32(c, 12 + off, "q", s.qk, s.qk_desc);
  a.k = require_f32(c, 13 + off, "k", s.qk, s.qk_desc);
  a.v = require_f32(c, 14 + off, "v", s.vh, s.vh_desc);
  a.ig = require_f32(c, 15 + off, "i", s.gate, s.gate_desc);
  a.fg = require_f32(c, 16 + off, "f", s.gate, s.gate_desc);
  check_no_alias(c,
                 {{"dq", a.dq, s.qk}, {"dk", a.dk, s.qk}, {"dv", a.dv, s.vh}, {"di", a.di, s.gate},
                  {"df", a.df, s.gate}, {"dc0", a.dc0, s.cs}, {"dn0", a.dn0, s.ns}, {"dm0", a.dm0, s.ms}},
                 {{"saved", a.saved, saved_len}, {"h", a.h, s.vh}, {"dh", a.dh, s.vh}, {"dcLast", a.dc_last, s.cs},
                  {"dnLast", a.dn_last, s.ns}, {"q", a.q, s.qk}, {"k", a.k, s.qk}, {"v", a.v, s.vh},
                  {"i", a.ig, s.gate}, {"f", a.fg, s.gate}});
  a.d = s.d;
  return a;
}

}  // namespace
}  // namespace mlstm_args
}  // namespace xlstm
