// Binding layer, the mLSTM cell on device buffers (the ops layer's CUDA tensors; cuda/mlstm.cu): chunkwise and
// recurrent forms, forward and backward. Same layouts, `saved` contents and state convention as the CPU exports
// mlstmChunkwiseForward / ...Backward / mlstmRecurrentForward / ...Backward (their sizes from
// mlstmChunkwiseSavedSize / mlstmRecurrentSavedSize) with device buffers in place of typed arrays, enqueued on the
// package's stream.
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "args.h"
#include "async.h"
#include "cuda_api.h"
#include "device_buffer.h"
#include "device_kernels.h"
#include "kernels/mlstm.h"
#include "registry.h"

namespace xlstm {
namespace {

constexpr int64_t kF = static_cast<int64_t>(sizeof(float));

float* fp(DeviceBuffer* b) { return b ? static_cast<float*>(b->ptr) : nullptr; }
std::string floats(int64_t n) { return std::to_string(n * kF) + " bytes (" + std::to_string(n) + " floats)"; }

MlstmDims dims_at(const ArgCtx& c, size_t first) {
  MlstmDims d;
  d.B = require_int(c, first, "B", 1, INT32_MAX);
  d.NH = require_int(c, first + 1, "NH", 1, 1 << 16);
  d.S = require_int(c, first + 2, "S", 1, INT32_MAX);
  d.DK = require_int(c, first + 3, "DHQK", 1, 1 << 16);
  d.DV = require_int(c, first + 4, "DHV", 1, 1 << 16);
  checked_product(c, "B*NH*S*max(DHQK,DHV)", {d.B, d.NH, d.S, std::max(d.DK, d.DV)});
  checked_product(c, "B*NH*DHQK*DHV", {d.B, d.NH, d.DK, d.DV});
  return d;
}

float eps_at(const ArgCtx& c, size_t i) {
  const double e = require_number(c, i, "eps");
  if (!std::isfinite(e) || e < 0) throw_range(c, "eps must be a finite number >= 0");
  return static_cast<float>(e);
}

// Buffers named in argument order with the floats each needs (0: optional and absent allowed when `optional`).
struct Need {
  const char* name;
  int64_t n;
  bool optional;
};

std::vector<DeviceBuffer*> buffers(const ArgCtx& c, std::initializer_list<Need> needs) {
  std::vector<DeviceBuffer*> out;
  size_t i = 0;
  for (const Need& w : needs) {
    out.push_back(w.optional ? optional_device_buffer(c, i, w.name, w.n * kF, floats(w.n))
                             : require_device_buffer(c, i, w.name, w.n * kF, floats(w.n)));
    ++i;
  }
  return out;
}

// The first `outputs` buffers are written: each must differ from every other buffer given.
void require_unaliased(const ArgCtx& c, const std::vector<DeviceBuffer*>& b, size_t outputs) {
  for (size_t o = 0; o < outputs; ++o)
    for (size_t j = 0; j < b.size(); ++j)
      if (j != o && b[o] && b[o] == b[j]) throw_range(c, "each output must be a buffer of its own");
}

// cudaMlstm{Chunkwise,Recurrent}ForwardDev(h, cLast, nLast, mLast, saved | null, q, k, v, i, f, c0 | null, n0 | null,
// m0 | null, B, NH, S, DHQK, DHV[, chunkSize], eps[, parallelInit[, bf16]]); bf16 (chunkwise, default false): the
// form under the bf16 autocast (products on tensor cores; cuda::mlstm_chunkwise_forward_bf16)
template <bool CHUNKWISE>
Napi::Value ForwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, CHUNKWISE ? "cudaMlstmChunkwiseForwardDev" : "cudaMlstmRecurrentForwardDev"};
  if (!CHUNKWISE || info.Length() != 22) require_count(c, CHUNKWISE ? 21 : 19);
  const MlstmDims d = dims_at(c, 13);
  const int64_t chunk = CHUNKWISE ? require_int(c, 18, "chunkSize", 1, INT32_MAX) : 0;
  const float eps = eps_at(c, CHUNKWISE ? 19 : 18);
  const bool pinit = CHUNKWISE ? require_bool(c, 20, "parallelInit") : false;
  const bool bf16 = CHUNKWISE && info.Length() == 22 ? require_bool(c, 21, "bf16") : false;
  const int64_t bh = d.B * d.NH, saved = CHUNKWISE ? mlstm_chunkwise_saved_size(d, chunk) : mlstm_recurrent_saved_size(d);
  const auto b = buffers(c, {{"h", bh * d.S * d.DV, false}, {"cLast", bh * d.DK * d.DV, false}, {"nLast", bh * d.DK, false},
                             {"mLast", bh, false}, {"saved", saved, true}, {"q", bh * d.S * d.DK, false},
                             {"k", bh * d.S * d.DK, false}, {"v", bh * d.S * d.DV, false}, {"i", bh * d.S, false},
                             {"f", bh * d.S, false}, {"c0", bh * d.DK * d.DV, true}, {"n0", bh * d.DK, true}, {"m0", bh, true}});
  require_unaliased(c, b, 5);
  if ((b[10] || b[11] || b[12]) && !(b[10] && b[11] && b[12])) throw_type(c, "c0, n0 and m0 must be given together");
  run_sync(info.Env(), c.fn, [&] {
    if (CHUNKWISE)
      dk::mlstm_chunkwise_forward(fp(b[0]), fp(b[1]), fp(b[2]), fp(b[3]), fp(b[4]), fp(b[5]), fp(b[6]), fp(b[7]),
                                  fp(b[8]), fp(b[9]), fp(b[10]), fp(b[11]), fp(b[12]), d, chunk, eps, pinit, bf16);
    else
      dk::mlstm_recurrent_forward(fp(b[0]), fp(b[1]), fp(b[2]), fp(b[3]), fp(b[4]), fp(b[5]), fp(b[6]), fp(b[7]), fp(b[8]),
                                  fp(b[9]), fp(b[10]), fp(b[11]), fp(b[12]), d, eps);
  });
  return info.Env().Undefined();
}

// cudaMlstmChunkwiseBackwardDev(dq, dk, dv, di, df, dc0 | null, dn0 | null, dm0 | null, saved, h, dh, dcLast | null,
//   dnLast | null, q, k, v, i, f, B, NH, S, DHQK, DHV, chunkSize, eps[, bf16])
// cudaMlstmRecurrentBackwardDev(dq, dk, dv, di, df, dc0 | null, dn0 | null, dm0 | null, saved, dh, dcLast | null,
//   dnLast | null, q, k, v, i, f, B, NH, S, DHQK, DHV, eps)
template <bool CHUNKWISE>
Napi::Value BackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, CHUNKWISE ? "cudaMlstmChunkwiseBackwardDev" : "cudaMlstmRecurrentBackwardDev"};
  const size_t dpos = CHUNKWISE ? 18 : 17;
  if (!CHUNKWISE || info.Length() != dpos + 8) require_count(c, dpos + (CHUNKWISE ? 7 : 6));
  const bool bf16 = CHUNKWISE && info.Length() == dpos + 8 ? require_bool(c, dpos + 7, "bf16") : false;
  const MlstmDims d = dims_at(c, dpos);
  const int64_t chunk = CHUNKWISE ? require_int(c, dpos + 5, "chunkSize", 1, INT32_MAX) : 0;
  const float eps = eps_at(c, dpos + (CHUNKWISE ? 6 : 5));
  const int64_t bh = d.B * d.NH, saved = CHUNKWISE ? mlstm_chunkwise_saved_size(d, chunk) : mlstm_recurrent_saved_size(d);
  std::vector<Need> needs = {{"dq", bh * d.S * d.DK, false}, {"dk", bh * d.S * d.DK, false}, {"dv", bh * d.S * d.DV, false},
                             {"di", bh * d.S, false}, {"df", bh * d.S, false}, {"dc0", bh * d.DK * d.DV, true},
                             {"dn0", bh * d.DK, true}, {"dm0", bh, true}, {"saved", saved, false}};
  if (CHUNKWISE) needs.push_back({"h", bh * d.S * d.DV, false});
  for (const Need& w : std::vector<Need>{{"dh", bh * d.S * d.DV, false}, {"dcLast", bh * d.DK * d.DV, true}, {"dnLast", bh * d.DK, true},
                                          {"q", bh * d.S * d.DK, false}, {"k", bh * d.S * d.DK, false}, {"v", bh * d.S * d.DV, false},
                                          {"i", bh * d.S, false}, {"f", bh * d.S, false}})
    needs.push_back(w);
  std::vector<DeviceBuffer*> b;
  for (size_t j = 0; j < needs.size(); ++j)
    b.push_back(needs[j].optional ? optional_device_buffer(c, j, needs[j].name, needs[j].n * kF, floats(needs[j].n))
                                  : require_device_buffer(c, j, needs[j].name, needs[j].n * kF, floats(needs[j].n)));
  require_unaliased(c, b, 8);
  if ((b[5] || b[6] || b[7]) && !(b[5] && b[6] && b[7])) throw_type(c, "dc0, dn0 and dm0 must be given together");
  const size_t o = CHUNKWISE ? 1 : 0;  // chunkwise has h before dh
  run_sync(info.Env(), c.fn, [&] {
    if (CHUNKWISE && replay_kernels())
      cuda::mlstm_chunkwise_backward_emulate(fp(b[0]), fp(b[1]), fp(b[2]), fp(b[3]), fp(b[4]), fp(b[5]), fp(b[6]), fp(b[7]),
                                             fp(b[8]), fp(b[9]), fp(b[9 + o]), fp(b[10 + o]), fp(b[11 + o]), fp(b[12 + o]),
                                             fp(b[13 + o]), fp(b[14 + o]), fp(b[15 + o]), fp(b[16 + o]), d, chunk, eps, bf16);
    else if (CHUNKWISE && bf16 && !cuda::emulated())
      cuda::mlstm_chunkwise_backward_bf16(fp(b[0]), fp(b[1]), fp(b[2]), fp(b[3]), fp(b[4]), fp(b[5]), fp(b[6]), fp(b[7]),
                                          fp(b[8]), fp(b[9]), fp(b[9 + o]), fp(b[10 + o]), fp(b[11 + o]), fp(b[12 + o]),
                                          fp(b[13 + o]), fp(b[14 + o]), fp(b[15 + o]), fp(b[16 + o]), d, chunk, eps,
                                          cuda::stream());
    else if (replay_kernels())
      cuda::mlstm_recurrent_backward_emulate(fp(b[0]), fp(b[1]), fp(b[2]), fp(b[3]), fp(b[4]), fp(b[5]), fp(b[6]), fp(b[7]),
                                             fp(b[8]), fp(b[9]), fp(b[10]), fp(b[11]), fp(b[12]), fp(b[13]), fp(b[14]),
                                             fp(b[15]), fp(b[16]), d, eps);
    else if (CHUNKWISE)
      XLSTM_DEVICE_CALL(mlstm_chunkwise_backward, fp(b[0]), fp(b[1]), fp(b[2]), fp(b[3]), fp(b[4]), fp(b[5]), fp(b[6]), fp(b[7]), fp(b[8]),
                                     fp(b[9]), fp(b[9 + o]), fp(b[10 + o]), fp(b[11 + o]), fp(b[12 + o]), fp(b[13 + o]),
                                     fp(b[14 + o]), fp(b[15 + o]), fp(b[16 + o]), d, chunk, eps);
    else
      XLSTM_DEVICE_CALL(mlstm_recurrent_backward, fp(b[0]), fp(b[1]), fp(b[2]), fp(b[3]), fp(b[4]), fp(b[5]), fp(b[6]), fp(b[7]), fp(b[8]),
                                     fp(b[9]), fp(b[10]), fp(b[11]), fp(b[12]), fp(b[13]), fp(b[14]), fp(b[15]), fp(b[16]), d,
                                     eps);
  });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaMlstmChunkwiseForwardDev", Napi::Function::New(env, ForwardDev<true>, "cudaMlstmChunkwiseForwardDev"));
  exports.Set("cudaMlstmRecurrentForwardDev", Napi::Function::New(env, ForwardDev<false>, "cudaMlstmRecurrentForwardDev"));
  exports.Set("cudaMlstmChunkwiseBackwardDev", Napi::Function::New(env, BackwardDev<true>, "cudaMlstmChunkwiseBackwardDev"));
  exports.Set("cudaMlstmRecurrentBackwardDev", Napi::Function::New(env, BackwardDev<false>, "cudaMlstmRecurrentBackwardDev"));
}

}  // namespace

XLSTM_REGISTER(cuda_ops_mlstm, Init);

}  // namespace xlstm
