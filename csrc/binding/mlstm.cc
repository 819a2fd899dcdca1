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
#include "binding/mlstm_args.h"
#include "binding/registry.h"
#include "kernels/mlstm.h"

namespace xlstm {
namespace {

using mlstm_args::chunkwise_saved_len;
using mlstm_args::read_chunk;
using mlstm_args::read_sizes;
using mlstm_args::recurrent_saved_len;
using mlstm_args::Sizes;

template <bool Chunkwise, bool Async>
Napi::Value Forward(const Napi::CallbackInfo& info) {
  const char* fn = Chunkwise ? (Async ? "mlstmChunkwiseForwardAsync" : "mlstmChunkwiseForward")
                             : (Async ? "mlstmRecurrentForwardAsync" : "mlstmRecurrentForward");
  ArgCtx c{info, fn};
  const mlstm_args::ForwardCall a = mlstm_args::parse_forward<Chunkwise>(c);
  auto work = [=] {
    if (Chunkwise)
      mlstm_chunkwise_forward(a.h, a.c_last, a.n_last, a.m_last, a.saved, a.q, a.k, a.v, a.ig, a.fg, a.st.c0, a.st.n0,
                              a.st.m0, a.d, a.chunk, a.eps, a.parallel_init);
    else
      mlstm_recurrent_forward(a.h, a.c_last, a.n_last, a.m_last, a.saved, a.q, a.k, a.v, a.ig, a.fg, a.st.c0, a.st.n0,
                              a.st.m0, a.d, a.eps);
  };
  if (Async) {
    std::vector<Napi::Value> pinned;
    for (size_t i = 0; i < 13; ++i) pinned.push_back(info[i]);
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
  const mlstm_args::BackwardCall a = mlstm_args::parse_backward<Chunkwise>(c);
  auto work = [=] {
    if (Chunkwise)
      mlstm_chunkwise_backward(a.dq, a.dk, a.dv, a.di, a.df, a.dc0, a.dn0, a.dm0, a.saved, a.h, a.dh, a.dc_last,
                               a.dn_last, a.q, a.k, a.v, a.ig, a.fg, a.d, a.chunk, a.eps);
    else
      mlstm_recurrent_backward(a.dq, a.dk, a.dv, a.di, a.df, a.dc0, a.dn0, a.dm0, a.saved, a.dh, a.dc_last, a.dn_last,
                               a.q, a.k, a.v, a.ig, a.fg, a.d, a.eps);
  };
  if (Async) {
    std::vector<Napi::Value> pinned;
    for (size_t i = 0; i < a.first_size; ++i) pinned.push_back(info[i]);
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
