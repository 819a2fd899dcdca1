// Binding layer: the fused sLSTM / LSTM recurrences (csrc/kernels/recurrent.h), sync and Promise variants.
// JS: slstmForward(y, states, gates, x, state0|null, R, bias, B, S, NH, DH[, rTransposed])
//     slstmBackward(dx, dR, dbias, dstate0|null, gates, states, dy, dstateFinal|null, state0|null, R,
//                   B, S, NH, DH, exactM0Grad[, rTransposed])
//     lstmForward / lstmBackward: the same without exactM0Grad; *Async variants return Promise<void>.
// Argument parsing: binding/recurrent_args.h (shared with the CUDA twin's exports in cuda_recurrent.cc).
#include <napi.h>

#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/recurrent_args.h"
#include "binding/registry.h"
#include "kernels/recurrent.h"

namespace xlstm {
namespace {

template <bool Slstm, bool Async>
Napi::Value Forward(const Napi::CallbackInfo& info) {
  const char* fn = Slstm ? (Async ? "slstmForwardAsync" : "slstmForward") : (Async ? "lstmForwardAsync" : "lstmForward");
  ArgCtx c{info, fn};
  const recurrent_args::ForwardCall a = recurrent_args::parse_forward(c, Slstm, true);
  float *y = a.y, *states = a.states, *gates = a.gates;
  const float *x = a.x, *state0 = a.state0, *R = a.R, *bias = a.bias;
  RecurrentDims d = a.s.d;
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
  const recurrent_args::BackwardCall a = recurrent_args::parse_backward(c, Slstm, true);
  float *dx = a.dx, *dR = a.dR, *dbias = a.dbias, *dstate0 = a.dstate0;
  const float *gates = a.gates, *states = a.states, *dy = a.dy, *dfinal = a.dfinal, *state0 = a.state0, *R = a.R;
  const bool exact = a.exact;
  RecurrentDims d = a.s.d;
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
