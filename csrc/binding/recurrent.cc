// Binding layer: the fused sLSTM / LSTM recurrences (csrc/kernels/recurrent.h), sync and Promise variants.
// JS: slstmForward(y, states, gates, x, state0|null, R, bias, B, S, NH, DH)
//     slstmBackward(dx, dR, dbias, dstate0|null, gates, states, dy, dstateFinal|null, state0|null, R,
//                   B, S, NH, DH, exactM0Grad)
//     lstmForward / lstmBackward: the same without exactM0Grad; *Async variants return Promise<void>.
#include <napi.h>

#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/registry.h"
#include "kernels/recurrent.h"

namespace xlstm {
namespace {

struct Sizes {
  RecurrentDims d;
  int64_t H, bsh, x_len, r_len, state_len, seq_state_len;
  std::string bs4h, bsh_desc, r_desc, s0_desc, seq_desc;
};

Sizes read_sizes(const ArgCtx& c, size_t first, int ns) {
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

template <bool Slstm, bool Async>
Napi::Value Forward(const Napi::CallbackInfo& info) {
  const char* fn = Slstm ? (Async ? "slstmForwardAsync" : "slstmForward") : (Async ? "lstmForwardAsync" : "lstmForward");
  ArgCtx c{info, fn};
  require_count(c, 11);
  const int ns = Slstm ? 4 : 2;
  Sizes s = read_sizes(c, 7, ns);
  float* y = require_f32(c, 0, "y", s.bsh, s.bsh_desc);
  float* states = require_f32(c, 1, "states", s.seq_state_len, s.seq_desc);
  float* gates = require_f32(c, 2, "gates", s.x_len, s.bs4h);
  const float* x = require_f32(c, 3, "x", s.x_len, s.bs4h);
  const float* state0 = optional_f32(c, 4, "state0", s.state_len, s.s0_desc);
  const float* R = require_f32(c, 5, "R", s.r_len, s.r_desc);
  const float* bias = require_f32(c, 6, "bias", 4 * s.H, describe("4*NH*DH", {{"NH", s.d.NH}, {"DH", s.d.DH}}));
  const auto B4 = [](int64_t n) { return static_cast<size_t>(n) * sizeof(float); };
  require_disjoint(c, {{"y", y, B4(s.bsh)}, {"states", states, B4(s.seq_state_len)}, {"gates", gates, B4(s.x_len)}},
                   {{"x", x, B4(s.x_len)}, {"state0", state0, B4(s.state_len)}, {"R", R, B4(s.r_len)}, {"bias", bias, B4(4 * s.H)}});
  RecurrentDims d = s.d;
  auto work = [=] {
    if (Slstm) slstm_forward(y, states, gates, x, state0, R, bias, d);
    else lstm_forward(y, states, gates, x, state0, R, bias, d);
  };
  if (Async) {
    std::vector<Napi::Value> pinned;
    for (size_t i = 0; i < 7; ++i) pinned.push_back(info[i]);
    return run_async(info.Env(), fn, work, pinned);
  }
  run_sync(info.Env(), fn, work);
  return info.Env().Undefined();
}

template <bool Slstm, bool Async>
Napi::Value Backward(const Napi::CallbackInfo& info) {
  const char* fn =
      Slstm ? (Async ? "slstmBackwardAsync" : "slstmBackward") : (Async ? "lstmBackwardAsync" : "lstmBackward");
  ArgCtx c{info, fn};
  const size_t nargs = Slstm ? 15 : 14;
  require_count(c, nargs);
  const int ns = Slstm ? 4 : 2;
  Sizes s = read_sizes(c, 10, ns);
  float* dx = require_f32(c, 0, "dx", s.x_len, s.bs4h);
  float* dR = require_f32(c, 1, "dR", s.r_len, s.r_desc);
  float* dbias = require_f32(c, 2, "dbias", 4 * s.H, describe("4*NH*DH", {{"NH", s.d.NH}, {"DH", s.d.DH}}));
  float* dstate0 = optional_f32(c, 3, "dstate0", s.state_len, s.s0_desc);
  const float* gates = require_f32(c, 4, "gates", s.x_len, s.bs4h);
  const float* states = require_f32(c, 5, "states", s.seq_state_len, s.seq_desc);
  const float* dy = require_f32(c, 6, "dy", s.bsh, s.bsh_desc);
  const float* dfinal = optional_f32(c, 7, "dstateFinal", s.state_len, s.s0_desc);
  const float* state0 = optional_f32(c, 8, "state0", s.state_len, s.s0_desc);
  const float* R = require_f32(c, 9, "R", s.r_len, s.r_desc);
  const bool exact = Slstm ? require_bool(c, 14, "exactM0Grad") : false;
  const auto B4 = [](int64_t n) { return static_cast<size_t>(n) * sizeof(float); };
  require_disjoint(c,
                   {{"dx", dx, B4(s.x_len)}, {"dR", dR, B4(s.r_len)}, {"dbias", dbias, B4(4 * s.H)}, {"dstate0", dstate0, B4(s.state_len)}},
                   {{"gates", gates, B4(s.x_len)}, {"states", states, B4(s.seq_state_len)}, {"dy", dy, B4(s.bsh)},
                    {"dstateFinal", dfinal, B4(s.state_len)}, {"state0", state0, B4(s.state_len)}, {"R", R, B4(s.r_len)}});
  RecurrentDims d = s.d;
  auto work = [=] {
    if (Slstm) slstm_backward(dx, dR, dbias, dstate0, gates, states, dy, dfinal, state0, R, d, exact);
    else lstm_backward(dx, dR, dbias, dstate0, gates, states, dy, dfinal, state0, R, d);
  };
  if (Async) {
    std::vector<Napi::Value> pinned;
    for (size_t i = 0; i < 10; ++i) pinned.push_back(info[i]);
    return run_async(info.Env(), fn, work, pinned);
  }
  run_sync(info.Env(), fn, work);
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("slstmForward", Napi::Function::New(env, Forward<true, false>, "slstmForward"));
  exports.Set("slstmForwardAsync", Napi::Function::New(env, Forward<true, true>, "slstmForwardAsync"));
  exports.Set("slstmBackward", Napi::Function::New(env, Backward<true, false>, "slstmBackward"));
  exports.Set("slstmBackwardAsync", Napi::Function::New(env, Backward<true, true>, "slstmBackwardAsync"));
  exports.Set("lstmForward", Napi::Function::New(env, Forward<false, false>, "lstmForward"));
  exports.Set("lstmForwardAsync", Napi::Function::New(env, Forward<false, true>, "lstmForwardAsync"));
  exports.Set("lstmBackward", Napi::Function::New(env, Backward<false, false>, "lstmBackward"));
  exports.Set("lstmBackwardAsync", Napi::Function::New(env, Backward<false, true>, "lstmBackwardAsync"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(recurrent, xlstm::Init);
