// Binding layer, the sLSTM / LSTM recurrences on device buffers (the ops layer's CUDA tensors; cuda/recurrent.cu).
// Same layouts and semantics as the CPU exports slstmForward / slstmBackward / lstmForward / lstmBackward with
// device buffers (csrc/binding/device_buffer.h) in place of typed arrays, enqueued on the package's stream.
#include <napi.h>

#include <string>

#include "args.h"
#include "async.h"
#include "cuda_api.h"
#include "device_buffer.h"
#include "device_kernels.h"
#include "kernels/recurrent.h"
#include "registry.h"

namespace xlstm {
namespace {

constexpr int64_t kF = static_cast<int64_t>(sizeof(float));

float* fp(DeviceBuffer* b) { return b ? static_cast<float*>(b->ptr) : nullptr; }

RecurrentDims dims_at(const ArgCtx& c, size_t first) {
  RecurrentDims d;
  d.B = require_int(c, first, "B", 1, INT32_MAX);
  d.S = require_int(c, first + 1, "S", 1, INT32_MAX);
  d.NH = require_int(c, first + 2, "NH", 1, 1 << 16);
  d.DH = require_int(c, first + 3, "DH", 1, 1 << 16);
  checked_product(c, "B*S*4*NH*DH", {d.B, d.S, 4, d.NH, d.DH});
  return d;
}

struct Sizes {
  int64_t H, y, states, gates, x, R, bias, state;
};

Sizes sizes_of(const RecurrentDims& d, bool slstm) {
  const int64_t ns = slstm ? 4 : 2, H = d.NH * d.DH;
  return {H, d.B * d.S * H, ns * d.S * d.B * H, d.B * d.S * 4 * H, d.B * d.S * 4 * H, d.NH * d.DH * 4 * d.DH, 4 * H, ns * d.B * H};
}

std::string floats(int64_t n) { return std::to_string(n * kF) + " bytes (" + std::to_string(n) + " floats)"; }

// cuda{Slstm,Lstm}ForwardDev(y, states, gates, x, state0 | null, R, bias, B, S, NH, DH[, bf16]); bf16 (default
// false): the form under the bf16 autocast (cuda::*_forward_bf16: tensor-core recurrent products)
template <bool SLSTM>
Napi::Value ForwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, SLSTM ? "cudaSlstmForwardDev" : "cudaLstmForwardDev"};
  require_count(c, 11);
  const RecurrentDims d = dims_at(c, 7);
  const bool bf16 = info.Length() > 11 && !info[11].IsUndefined() ? require_bool(c, 11, "bf16") : false;
  const Sizes z = sizes_of(d, SLSTM);
  DeviceBuffer* y = require_device_buffer(c, 0, "y", z.y * kF, floats(z.y));
  DeviceBuffer* states = require_device_buffer(c, 1, "states", z.states * kF, floats(z.states));
  DeviceBuffer* gates = require_device_buffer(c, 2, "gates", z.gates * kF, floats(z.gates));
  DeviceBuffer* x = require_device_buffer(c, 3, "x", z.x * kF, floats(z.x));
  DeviceBuffer* s0 = optional_device_buffer(c, 4, "state0", z.state * kF, floats(z.state));
  DeviceBuffer* R = require_device_buffer(c, 5, "R", z.R * kF, floats(z.R));
  DeviceBuffer* bias = require_device_buffer(c, 6, "bias", z.bias * kF, floats(z.bias));
  for (DeviceBuffer* o : {y, states, gates})
    for (DeviceBuffer* in : {x, s0, R, bias})
      if (o == in) throw_range(c, "outputs and inputs must be different buffers");
  if (y == states || y == gates || states == gates) throw_range(c, "y, states and gates must be different buffers");
  run_sync(info.Env(), c.fn,
           [&] { dk::recurrent_forward(SLSTM, fp(y), fp(states), fp(gates), fp(x), fp(s0), fp(R), fp(bias), d, bf16); });
  return info.Env().Undefined();
}

// cuda{Slstm,Lstm}BackwardDev(dx, dR, dbias, dstate0 | null, gates, states, dy, dstateFinal | null, state0 | null, R,
// B, S, NH, DH[, exactM0Grad][, bf16]) (exactM0Grad: the sLSTM's; bf16 as ForwardDev's)
template <bool SLSTM>
Napi::Value BackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, SLSTM ? "cudaSlstmBackwardDev" : "cudaLstmBackwardDev"};
  const size_t nargs = SLSTM ? 15 : 14;
  require_count(c, nargs);
  const RecurrentDims d = dims_at(c, 10);
  const bool exact = SLSTM ? require_bool(c, 14, "exactM0Grad") : false;
  const bool bf16 = info.Length() > nargs && !info[nargs].IsUndefined() ? require_bool(c, nargs, "bf16") : false;
  const Sizes z = sizes_of(d, SLSTM);
  DeviceBuffer* dx = require_device_buffer(c, 0, "dx", z.x * kF, floats(z.x));
  DeviceBuffer* dR = require_device_buffer(c, 1, "dR", z.R * kF, floats(z.R));
  DeviceBuffer* db = require_device_buffer(c, 2, "dbias", z.bias * kF, floats(z.bias));
  DeviceBuffer* ds0 = optional_device_buffer(c, 3, "dstate0", z.state * kF, floats(z.state));
  DeviceBuffer* gates = require_device_buffer(c, 4, "gates", z.gates * kF, floats(z.gates));
  DeviceBuffer* states = require_device_buffer(c, 5, "states", z.states * kF, floats(z.states));
  DeviceBuffer* dy = require_device_buffer(c, 6, "dy", z.y * kF, floats(z.y));
  DeviceBuffer* dfin = optional_device_buffer(c, 7, "dstateFinal", z.state * kF, floats(z.state));
  DeviceBuffer* s0 = optional_device_buffer(c, 8, "state0", z.state * kF, floats(z.state));
  DeviceBuffer* R = require_device_buffer(c, 9, "R", z.R * kF, floats(z.R));
  for (DeviceBuffer* o : {dx, dR, db, ds0}) {
    if (!o) continue;
    for (DeviceBuffer* in : {gates, states, dy, dfin, s0, R})
      if (o == in) throw_range(c, "gradient outputs and inputs must be different buffers");
  }
  if (dx == dR || dx == db || dR == db || (ds0 && (ds0 == dx || ds0 == dR || ds0 == db)))
    throw_range(c, "gradient outputs must be different buffers");
  run_sync(info.Env(), c.fn, [&] {
    if (replay_kernels() && SLSTM)
      cuda::slstm_backward_emulate(fp(dx), fp(dR), fp(db), fp(ds0), fp(gates), fp(states), fp(dy), fp(dfin), fp(s0), fp(R), d, exact, bf16);
    else if (replay_kernels())
      cuda::lstm_backward_emulate(fp(dx), fp(dR), fp(db), fp(ds0), fp(gates), fp(states), fp(dy), fp(dfin), fp(s0), fp(R), d, bf16);
    else if (bf16 && !cuda::emulated() && SLSTM)
      cuda::slstm_backward_bf16(fp(dx), fp(dR), fp(db), fp(ds0), fp(gates), fp(states), fp(dy), fp(dfin), fp(s0), fp(R), d, exact,
                                cuda::stream());
    else if (bf16 && !cuda::emulated())
      cuda::lstm_backward_bf16(fp(dx), fp(dR), fp(db), fp(ds0), fp(gates), fp(states), fp(dy), fp(dfin), fp(s0), fp(R), d, cuda::stream());
    else if (SLSTM)
      XLSTM_DEVICE_CALL(slstm_backward, fp(dx), fp(dR), fp(db), fp(ds0), fp(gates), fp(states), fp(dy), fp(dfin), fp(s0), fp(R), d,
                           exact);
    else
      XLSTM_DEVICE_CALL(lstm_backward, fp(dx), fp(dR), fp(db), fp(ds0), fp(gates), fp(states), fp(dy), fp(dfin), fp(s0), fp(R), d);
  });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaSlstmForwardDev", Napi::Function::New(env, ForwardDev<true>, "cudaSlstmForwardDev"));
  exports.Set("cudaSlstmBackwardDev", Napi::Function::New(env, BackwardDev<true>, "cudaSlstmBackwardDev"));
  exports.Set("cudaLstmForwardDev", Napi::Function::New(env, ForwardDev<false>, "cudaLstmForwardDev"));
  exports.Set("cudaLstmBackwardDev", Napi::Function::New(env, BackwardDev<false>, "cudaLstmBackwardDev"));
}

}  // namespace

XLSTM_REGISTER(cuda_ops_rnn, Init);

}  // namespace xlstm
