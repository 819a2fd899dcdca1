// Binding layer: the mLSTM cell kernels (csrc/kernels/mlstm.h), sync and Promise variants. Layouts, the state
// convention and what `saved` holds are documented in mlstm.h. Outputs are written (=) into the first arrays.
// JS:
//   mlstmChunkwiseForward(h, cLast, nLast, mLast, saved|null, q, k, v, i, f, c0|null, n0|null, m0|null,
//                         B, NH, S, DHQK, DHV, chunkSize, eps, parallelInit)
//   mlstmChunkwiseBackward(dq, dk, dv, di, df, dc0|null, dn0|null, dm0|null, saved, h, dh, dcLast|null, dnLast|null,
//                          q, k, v, i, f, B, NH, S, DHQK, DHV, chunkSize, eps)
//   mlstmRecurrentForward(h, cLast, nLast, mLast, saved|null, q, k, v, i, f, c0|null, n0|null, m0|null,
//                         B, NH, S, DHQK, DHV, eps)
//   mlstmRecurrentBackward(dq, dk, dv, di, df, dc0|null, dn0|null, dm0|null, saved, dh, dcLast|null, dnLast|null,
//                          q, k, v, i, f, B, NH, S, DHQK, DHV, eps)
//   mlstmChunkwiseSavedSize(B, NH, S, DHQK, DHV, chunkSize), mlstmRecurrentSavedSize(B, NH, S, DHQK, DHV): lengths of
//   `saved`. The forward/backward calls have *Async variants returning Promise<void>.
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/registry.h"
#include "kernels/mlstm.h"

namespace xlstm {
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

template <bool Chunkwise, bool Async>
Napi::Value Forward(const Napi::CallbackInfo& info) {
  const char* fn = Chunkwise ? (Async ? "mlstmChunkwiseForwardAsync" : "mlstmChunkwiseForward")
                             : (Async ? "mlstmRecurrentForwardAsync" : "mlstmRecurrentForward");
  ArgCtx c{info, fn};
  const size_t nargs = Chunkwise ? 21 : 19;
  require_count(c, nargs);
  Sizes s = read_sizes(c, 13);
  const int64_t chunk = Chunkwise ? read_chunk(c, 18) : 0;
  const float eps = read_eps(c, Chunkwise ? 19 : 18);
  const bool parallel_init = Chunkwise ? require_bool(c, 20, "parallelInit") : false;
  const int64_t saved_len = Chunkwise ? chunkwise_saved_len(c, s.d, chunk) : recurrent_saved_len(c, s.d);
  const std::string saved_desc = Chunkwise ? "mlstmChunkwiseSavedSize(...)" : "mlstmRecurrentSavedSize(...)";
  float* h = require_f32(c, 0, "h", s.vh, s.vh_desc);
  float* c_last = require_f32(c, 1, "cLast", s.cs, s.cs_desc);
  float* n_last = require_f32(c, 2, "nLast", s.ns, s.ns_desc);
  float* m_last = require_f32(c, 3, "mLast", s.ms, s.ms_desc);
  float* saved = optional_f32(c, 4, "saved", saved_len, saved_desc);
  const float* q = require_f32(c, 5, "q", s.qk, s.qk_desc);
  const float* k = require_f32(c, 6, "k", s.qk, s.qk_desc);
  const float* v = require_f32(c, 7, "v", s.vh, s.vh_desc);
  const float* ig = require_f32(c, 8, "i", s.gate, s.gate_desc);
  const float* fg = require_f32(c, 9, "f", s.gate, s.gate_desc);
  const State0 st = read_state0(c, 10, s);
  check_no_alias(c,
                 {{"h", h, s.vh}, {"cLast", c_last, s.cs}, {"nLast", n_last, s.ns}, {"mLast", m_last, s.ms},
                  {"saved", saved, saved_len}},
                 {{"q", q, s.qk}, {"k", k, s.qk}, {"v", v, s.vh}, {"i", ig, s.gate}, {"f", fg, s.gate},
                  {"c0", st.c0, s.cs}, {"n0", st.n0, s.ns}, {"m0", st.m0, s.ms}});
  const MlstmDims d = s.d;
  auto work = [=] {
    if (Chunkwise)
      mlstm_chunkwise_forward(h, c_last, n_last, m_last, saved, q, k, v, ig, fg, st.c0, st.n0, st.m0, d, chunk, eps,
                              parallel_init);
    else
      mlstm_recurrent_forward(h, c_last, n_last, m_last, saved, q, k, v, ig, fg, st.c0, st.n0, st.m0, d, eps);
  };
  if (Async) {
    std::vector<Napi::Value> pinned;
    for (size_t a = 0; a < 13; ++a) pinned.push_back(info[a]);
    return run_async(info.Env(), fn, work, pinned);
  }
  run_sync(info.Env(), fn, work);
  return info.Env().Undefined();
}

template <bool Chunkwise, bool Async>
Napi::Value Backward(const Napi::CallbackInfo& info) {
  const char* fn = Chunkwise ? (Async ? "mlstmChunkwiseBackwardAsync" : "mlstmChunkwiseBackward")
                             : (Async ? "mlstmRecurrentBackwardAsync" : "mlstmRecurrentBackward");
  ArgCtx c{info, fn};
  // the chunkwise backward also takes h (after saved); sizes follow the 5 inputs
  const size_t off = Chunkwise ? 1 : 0;
  const size_t nargs = Chunkwise ? 25 : 23;
  require_count(c, nargs);
  const size_t first_size = 17 + off;
  Sizes s = read_sizes(c, first_size);
  const int64_t chunk = Chunkwise ? read_chunk(c, first_size + 5) : 0;
  const float eps = read_eps(c, first_size + 5 + off);
  const int64_t saved_len = Chunkwise ? chunkwise_saved_len(c, s.d, chunk) : recurrent_saved_len(c, s.d);
  const std::string saved_desc = Chunkwise ? "mlstmChunkwiseSavedSize(...)" : "mlstmRecurrentSavedSize(...)";
  float* dq = require_f32(c, 0, "dq", s.qk, s.qk_desc);
  float* dk = require_f32(c, 1, "dk", s.qk, s.qk_desc);
  float* dv = require_f32(c, 2, "dv", s.vh, s.vh_desc);
  float* di = require_f32(c, 3, "di", s.gate, s.gate_desc);
  float* df = require_f32(c, 4, "df", s.gate, s.gate_desc);
  float* dc0 = optional_f32(c, 5, "dc0", s.cs, s.cs_desc);
  float* dn0 = optional_f32(c, 6, "dn0", s.ns, s.ns_desc);
  float* dm0 = optional_f32(c, 7, "dm0", s.ms, s.ms_desc);
  const float* saved = require_f32(c, 8, "saved", saved_len, saved_desc);
  const float* h = Chunkwise ? require_f32(c, 9, "h", s.vh, s.vh_desc) : nullptr;
  const float* dh = require_f32(c, 9 + off, "dh", s.vh, s.vh_desc);
  const float* dc_last = optional_f32(c, 10 + off, "dcLast", s.cs, s.cs_desc);
  const float* dn_last = optional_f32(c, 11 + off, "dnLast", s.ns, s.ns_desc);
  const float* q = require_f32(c, 12 + off, "q", s.qk, s.qk_desc);
  const float* k = require_f32(c, 13 + off, "k", s.qk, s.qk_desc);
  const float* v = require_f32(c, 14 + off, "v", s.vh, s.vh_desc);
  const float* ig = require_f32(c, 15 + off, "i", s.gate, s.gate_desc);
  const float* fg = require_f32(c, 16 + off, "f", s.gate, s.gate_desc);
  check_no_alias(c,
                 {{"dq", dq, s.qk}, {"dk", dk, s.qk}, {"dv", dv, s.vh}, {"di", di, s.gate}, {"df", df, s.gate},
                  {"dc0", dc0, s.cs}, {"dn0", dn0, s.ns}, {"dm0", dm0, s.ms}},
                 {{"saved", saved, saved_len}, {"h", h, s.vh}, {"dh", dh, s.vh}, {"dcLast", dc_last, s.cs},
                  {"dnLast", dn_last, s.ns}, {"q", q, s.qk}, {"k", k, s.qk}, {"v", v, s.vh}, {"i", ig, s.gate},
                  {"f", fg, s.gate}});
  const MlstmDims d = s.d;
  auto work = [=] {
    if (Chunkwise)
      mlstm_chunkwise_backward(dq, dk, dv, di, df, dc0, dn0, dm0, saved, h, dh, dc_last, dn_last, q, k, v, ig, fg, d,
                               chunk, eps);
    else
      mlstm_recurrent_backward(dq, dk, dv, di, df, dc0, dn0, dm0, saved, dh, dc_last, dn_last, q, k, v, ig, fg, d,
                               eps);
  };
  if (Async) {
    std::vector<Napi::Value> pinned;
    for (size_t a = 0; a < first_size; ++a) pinned.push_back(info[a]);
    return run_async(info.Env(), fn, work, pinned);
  }
  run_sync(info.Env(), fn, work);
  return info.Env().Undefined();
}

template <bool Chunkwise>
Napi::Value SavedSize(const Napi::CallbackInfo& info) {
  const char* fn = Chunkwise ? "mlstmChunkwiseSavedSize" : "mlstmRecurrentSavedSize";
  ArgCtx c{info, fn};
  require_count(c, Chunkwise ? 6 : 5);
  Sizes s = read_sizes(c, 0);
  const int64_t n = Chunkwise ? chunkwise_saved_len(c, s.d, read_chunk(c, 5)) : recurrent_saved_len(c, s.d);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mlstmChunkwiseForward", Napi::Function::New(env, Forward<true, false>, "mlstmChunkwiseForward"));
  exports.Set("mlstmChunkwiseForwardAsync",
              Napi::Function::New(env, Forward<true, true>, "mlstmChunkwiseForwardAsync"));
  exports.Set("mlstmChunkwiseBackward", Napi::Function::New(env, Backward<true, false>, "mlstmChunkwiseBackward"));
  exports.Set("mlstmChunkwiseBackwardAsync",
              Napi::Function::New(env, Backward<true, true>, "mlstmChunkwiseBackwardAsync"));
  exports.Set("mlstmRecurrentForward", Napi::Function::New(env, Forward<false, false>, "mlstmRecurrentForward"));
  exports.Set("mlstmRecurrentForwardAsync",
              Napi::Function::New(env, Forward<false, true>, "mlstmRecurrentForwardAsync"));
  exports.Set("mlstmRecurrentBackward", Napi::Function::New(env, Backward<false, false>, "mlstmRecurrentBackward"));
  exports.Set("mlstmRecurrentBackwardAsync",
              Napi::Function::New(env, Backward<false, true>, "mlstmRecurrentBackwardAsync"));
  exports.Set("mlstmChunkwiseSavedSize", Napi::Function::New(env, SavedSize<true>, "mlstmChunkwiseSavedSize"));
  exports.Set("mlstmRecurrentSavedSize", Napi::Function::New(env, SavedSize<false>, "mlstmRecurrentSavedSize"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(mlstm, xlstm::Init);
