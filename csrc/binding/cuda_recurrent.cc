// Binding layer: host entries of the CUDA twin of the fused sLSTM / LSTM recurrences (cuda/recurrent.cu).
// cudaSlstmForwardHost, cudaSlstmBackwardHost, cudaLstmForwardHost, cudaLstmBackwardHost take exactly the arguments
// of the CPU exports slstmForward, slstmBackward, lstmForward, lstmBackward (parsed by the same functions:
// binding/recurrent_args.h), then run on the GPU (copy in, kernels, copy out, synchronise) when one is available,
// and otherwise throw an Error "<export>: CUDA is not available: <backends().cuda.reason>" (also under host
// emulation, which has no CUDA kernels).
// cuda{Slstm,Lstm}{Forward,Backward}Emulate take the same arguments and run the kernels' own __host__ __device__
// bodies on the host, launch by launch (no GPU needed, but a build with CUDA). The *Bf16Host / *Bf16Emulate exports
// (same arguments) run the form under the bf16 autocast (tensor-core products with bf16 operands, cuda/recurrent_tc.cuh)
// on the GPU / replayed on the host.
// cudaSetRecurrentLaunch(mode) picks the launch ("auto", "rows", "split": cuda/recurrent_split.cuh) of both;
// cudaSetRecurrentSplitBlocks(perHead) caps the split launch's blocks per head; cudaSetRecurrentExchange(exchange)
// picks the bf16 backward's exchange (partial sums or the gather of dp); cudaRecurrentPlan says which split plan the
// replays follow; cudaSetRecurrentAutotune turns on the timing of candidate plans per shape (cudaRecurrentTuneCandidates:
// which, on the emulated device; cudaRecurrentTuned: the choice made on the GPU).
// cudaRecurrentCoverage(slstm, B, S, NH, DH, writes) runs the kernels' __host__ __device__ launch maps on the host
// (no GPU needed, but a build with CUDA): writes = global writes per output element (y, states, gates, dx, dR,
// dbias, dstate0 concatenated); returns the number of other inconsistencies found.
#include <napi.h>

#include <string>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/device_buffer.h"
#include "binding/recurrent_args.h"
#include "binding/registry.h"
#include "cuda_api.h"
#include "kernels/recurrent.h"

namespace xlstm {
namespace {

// Emulate: the *Emulate exports (host replay, no GPU needed), else the *Host ones (GPU). Bf16: the *Bf16* exports
// (the form under the bf16 autocast: cuda::*_bf16, recurrent_tc.cuh).
template <bool Slstm, bool Emulate, bool Bf16>
Napi::Value CudaForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, Slstm ? (Emulate ? (Bf16 ? "cudaSlstmForwardBf16Emulate" : "cudaSlstmForwardEmulate") : (Bf16 ? "cudaSlstmForwardBf16Host" : "cudaSlstmForwardHost"))
                       : (Emulate ? (Bf16 ? "cudaLstmForwardBf16Emulate" : "cudaLstmForwardEmulate") : (Bf16 ? "cudaLstmForwardBf16Host" : "cudaLstmForwardHost"))};
  const recurrent_args::ForwardCall a = recurrent_args::parse_forward(c, Slstm, false);
  if (!Emulate) require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] {
    auto fn = Slstm ? (Emulate ? cuda::slstm_forward_emulate : cuda::slstm_forward_host)
                    : (Emulate ? cuda::lstm_forward_emulate : cuda::lstm_forward_host);
    fn(a.y, a.states, a.gates, a.x, a.state0, a.R, a.bias, a.s.d, Bf16);
  });
  return info.Env().Undefined();
}

template <bool Slstm, bool Emulate, bool Bf16>
Napi::Value CudaBackward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, Slstm ? (Emulate ? (Bf16 ? "cudaSlstmBackwardBf16Emulate" : "cudaSlstmBackwardEmulate") : (Bf16 ? "cudaSlstmBackwardBf16Host" : "cudaSlstmBackwardHost"))
                       : (Emulate ? (Bf16 ? "cudaLstmBackwardBf16Emulate" : "cudaLstmBackwardEmulate") : (Bf16 ? "cudaLstmBackwardBf16Host" : "cudaLstmBackwardHost"))};
  const recurrent_args::BackwardCall a = recurrent_args::parse_backward(c, Slstm, false);
  if (!Emulate) require_real_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] {
    if (Slstm)
      (Emulate ? cuda::slstm_backward_emulate : cuda::slstm_backward_host)(
          a.dx, a.dR, a.dbias, a.dstate0, a.gates, a.states, a.dy, a.dfinal, a.state0, a.R, a.s.d, a.exact, Bf16);
    else
      (Emulate ? cuda::lstm_backward_emulate : cuda::lstm_backward_host)(
          a.dx, a.dR, a.dbias, a.dstate0, a.gates, a.states, a.dy, a.dfinal, a.state0, a.R, a.s.d, Bf16);
  });
  return info.Env().Undefined();
}

// cudaSetRecurrentLaunch(mode: "auto" | "rows" | "split" | "split-lane") -> the previous mode: which launch the
// device entries and the *Emulate replays take (cuda::set_recurrent_launch; process-wide, for tests and benchmarks;
// "split-lane": the split launch with the forward's gate products in the lane form, R in registers)
Napi::Value CudaSetRecurrentLaunch(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSetRecurrentLaunch"};
  static const char* const kModes[] = {"auto", "rows", "split", "split-lane"};
  const int mode = require_choice(c, 0, "mode", {kModes[0], kModes[1], kModes[2], kModes[3]});
  int prev = 0;
  run_sync(info.Env(), c.fn, [&] { prev = cuda::set_recurrent_launch(mode); });
  return Napi::String::New(info.Env(), kModes[prev]);
}

// cudaSetRecurrentSplitBlocks(perHead: 0 | >= 2) -> the previous cap: the split launch's blocks per head at most (0:
// as many as the device holds, one per SM; cuda::set_recurrent_split_blocks; process-wide, for benchmarks and tests)
Napi::Value CudaSetRecurrentSplitBlocks(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSetRecurrentSplitBlocks"};
  require_count(c, 1);
  const int64_t n = require_int(c, 0, "perHead", 0, 1 << 16);
  if (n == 1) throw_range(c, "perHead must be 0 (as many blocks as the device holds) or >= 2, got 1");
  int64_t prev = 0;
  run_sync(info.Env(), c.fn, [&] { prev = cuda::set_recurrent_split_blocks(n); });
  return Napi::Number::New(info.Env(), static_cast<double>(prev));
}

// the exchange's name in the exports (cuda::set_recurrent_exchange's 0 / 1)
const char* exchange_name(int e) { return e == 1 ? "gather" : "partials"; }

// the arguments (B, S, NH, DH, forward, bf16) of the plan queries
struct PlanArgs {
  recurrent_args::Sizes s;
  bool fwd, bf16;
};
PlanArgs read_plan_args(const ArgCtx& c) {
  require_count(c, 6);
  PlanArgs a{recurrent_args::read_sizes(c, 0, 2), false, false};
  a.fwd = require_bool(c, 4, "forward");
  a.bf16 = require_bool(c, 5, "bf16");
  return a;
}

// cudaRecurrentPlan(B, S, NH, DH, forward, bf16) -> null (the rows launch) | {blocksPerHead, unitsPerBlock,
// tensorCoreTiles}: the split plan the *Emulate replays follow (an H100's 132 SMs and 227 KiB per block) under the
// current launch mode and blocks-per-head cap
Napi::Value CudaRecurrentPlan(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaRecurrentPlan"};
  const PlanArgs a = read_plan_args(c);
  int64_t P = 0, nu = 0, tc = 0;
  bool split = false, gather = false;
  run_sync(info.Env(), c.fn, [&] { split = cuda::recurrent_emulated_plan(a.s.d, a.fwd, a.bf16, &P, &nu, &tc, &gather); });
  if (!split) return info.Env().Null();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("blocksPerHead", static_cast<double>(P));
  o.Set("unitsPerBlock", static_cast<double>(nu));
  o.Set("tensorCoreTiles", static_cast<double>(tc));
  o.Set("exchange", exchange_name(gather ? 1 : 0));
  return o;
}

// cudaSetRecurrentExchange(exchange: "partials" | "gather") -> the previous one: how the bf16 tensor-core backward's
// blocks of a head exchange the recurrent gradient (cuda::set_recurrent_exchange; process-wide, benchmarks and tests)
Napi::Value CudaSetRecurrentExchange(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSetRecurrentExchange"};
  static const char* const kModes[] = {"partials", "gather"};
  const int mode = require_choice(c, 0, "exchange", {kModes[0], kModes[1]});
  int prev = 0;
  run_sync(info.Env(), c.fn, [&] { prev = cuda::set_recurrent_exchange(mode); });
  return Napi::String::New(info.Env(), exchange_name(prev));
}

// cudaSetRecurrentAutotune(on) -> the previous setting: the split plan's autotune (cuda::set_recurrent_autotune;
// process-wide; turning it on or off forgets the choices made)
Napi::Value CudaSetRecurrentAutotune(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSetRecurrentAutotune"};
  require_count(c, 1);
  const bool on = require_bool(c, 0, "on");
  bool prev = false;
  run_sync(info.Env(), c.fn, [&] { prev = cuda::set_recurrent_autotune(on); });
  return Napi::Boolean::New(info.Env(), prev);
}

// cudaRecurrentTuneCandidates(B, S, NH, DH, forward, bf16) -> [{cap, exchange}]: the plans the autotune would time
// on the emulated device (an H100), the current settings' first
Napi::Value CudaRecurrentTuneCandidates(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaRecurrentTuneCandidates"};
  const PlanArgs a = read_plan_args(c);
  std::vector<std::pair<int64_t, int>> cands;
  run_sync(info.Env(), c.fn, [&] { cands = cuda::recurrent_tune_candidates_emulated(a.s.d, a.fwd, a.bf16); });
  Napi::Array out = Napi::Array::New(info.Env(), cands.size());
  for (size_t i = 0; i < cands.size(); ++i) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("cap", static_cast<double>(cands[i].first));
    o.Set("exchange", exchange_name(cands[i].second));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// cudaRecurrentTuned(slstm, B, S, NH, DH, forward, bf16) -> {cap, exchange} | null: the autotune's choice for the
// shape on the current device (S does not enter it)
Napi::Value CudaRecurrentTuned(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaRecurrentTuned"};
  require_count(c, 7);
  const bool slstm = require_bool(c, 0, "slstm");
  const recurrent_args::Sizes s = recurrent_args::read_sizes(c, 1, slstm ? 4 : 2);
  const bool fwd = require_bool(c, 5, "forward"), bf16 = require_bool(c, 6, "bf16");
  int64_t cap = 0;
  int exchange = 0;
  bool found = false;
  run_sync(info.Env(), c.fn, [&] { found = cuda::recurrent_tuned(s.d, slstm, fwd, bf16, &cap, &exchange); });
  if (!found) return info.Env().Null();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("cap", static_cast<double>(cap));
  o.Set("exchange", exchange_name(exchange));
  return o;
}

// cudaRecurrentWmmaErrors(B, S, NH, DH) -> violations of wmma's rules by the bf16 tensor-core kernels' tiles at the
// shape's emulated plans (cuda::recurrent_wmma_errors)
Napi::Value CudaRecurrentWmmaErrors(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaRecurrentWmmaErrors"};
  require_count(c, 4);
  const recurrent_args::Sizes s = recurrent_args::read_sizes(c, 0, 2);
  int64_t bad = 0;
  run_sync(info.Env(), c.fn, [&] { bad = cuda::recurrent_wmma_errors(s.d); });
  return Napi::Number::New(info.Env(), static_cast<double>(bad));
}

// cudaRecurrentCoverage(slstm, B, S, NH, DH, writes) -> errors
Napi::Value CudaRecurrentCoverage(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaRecurrentCoverage"};
  require_count(c, 6);
  const bool slstm = require_bool(c, 0, "slstm");
  const int ns = slstm ? 4 : 2;
  const recurrent_args::Sizes s = recurrent_args::read_sizes(c, 1, ns);
  int64_t total = 0;
  for (int64_t part : {s.bsh, s.seq_state_len, s.x_len, s.x_len, s.r_len, 4 * s.H, s.state_len})
    if (__builtin_add_overflow(total, part, &total)) throw_range(c, "the writes length overflows int64");
  const std::string desc =
      describe("B*S*H + NS*S*B*H + 2*B*S*4H + NH*DH*4DH + 4H + NS*B*H",
               {{"B", s.d.B}, {"S", s.d.S}, {"NH", s.d.NH}, {"DH", s.d.DH}, {"NS", ns}});
  int32_t* writes = require_i32(c, 5, "writes", total, desc);
  int64_t bad = 0;
  run_sync(info.Env(), c.fn, [&] { bad = cuda::recurrent_coverage(slstm, s.d, writes); });
  return Napi::Number::New(info.Env(), static_cast<double>(bad));
}

void Init(Napi::Env env, Napi::Object exports) {
  auto def = [&](const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  def("cudaSlstmForwardHost", CudaForward<true, false, false>);
  def("cudaSlstmBackwardHost", CudaBackward<true, false, false>);
  def("cudaLstmForwardHost", CudaForward<false, false, false>);
  def("cudaLstmBackwardHost", CudaBackward<false, false, false>);
  def("cudaSlstmForwardEmulate", CudaForward<true, true, false>);
  def("cudaSlstmBackwardEmulate", CudaBackward<true, true, false>);
  def("cudaLstmForwardEmulate", CudaForward<false, true, false>);
  def("cudaLstmBackwardEmulate", CudaBackward<false, true, false>);
  def("cudaSlstmForwardBf16Host", CudaForward<true, false, true>);
  def("cudaSlstmBackwardBf16Host", CudaBackward<true, false, true>);
  def("cudaLstmForwardBf16Host", CudaForward<false, false, true>);
  def("cudaLstmBackwardBf16Host", CudaBackward<false, false, true>);
  def("cudaSlstmForwardBf16Emulate", CudaForward<true, true, true>);
  def("cudaSlstmBackwardBf16Emulate", CudaBackward<true, true, true>);
  def("cudaLstmForwardBf16Emulate", CudaForward<false, true, true>);
  def("cudaLstmBackwardBf16Emulate", CudaBackward<false, true, true>);
  def("cudaRecurrentCoverage", CudaRecurrentCoverage);
  def("cudaSetRecurrentLaunch", CudaSetRecurrentLaunch);
  def("cudaSetRecurrentSplitBlocks", CudaSetRecurrentSplitBlocks);
  def("cudaRecurrentPlan", CudaRecurrentPlan);
  def("cudaSetRecurrentExchange", CudaSetRecurrentExchange);
  def("cudaSetRecurrentAutotune", CudaSetRecurrentAutotune);
  def("cudaRecurrentTuneCandidates", CudaRecurrentTuneCandidates);
  def("cudaRecurrentTuned", CudaRecurrentTuned);
  def("cudaRecurrentWmmaErrors", CudaRecurrentWmmaErrors);
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(cuda_recurrent, xlstm::Init);
