// Binding layer: the fused inference session of an xLSTMLMModel whose parameters live on the GPU (the device twin of
// csrc/kernels/xlstm_infer.h). One native call runs a chunk of tokens (one token = a generation step) through every
// block as a fixed sequence of device kernels on preallocated buffers: the same kernels, in the same forms, as the
// ops layer's CUDA tensors take for model.step (device_kernels.h), but with no tensor objects, no allocation, no
// copies for slices and concatenations (strided operands instead) and no JavaScript between kernels. A W2-sized
// model's step was 166 calls from JavaScript on the Tensor path; here it is one call that enqueues the kernels and
// waits once, for the logits.
//
// Per chunk of T tokens per batch row (rows r = b T + t), as xlstm_infer.h with these device forms:
//   mLSTM  up = xn W_upᵀ (+ b); the conv branch's window [B, K-1+T, Di] = (the step window's last K-1 rows, xm);
//          conv + SiLU over it; q, k (from xc), v (from xm) by strided batched GEMMs into one [rows, 3Di] buffer; the
//          gates from it; [B, T, 3, NH, DH] permuted to [3, B, NH, T, DH] for the mLSTM cell: the recurrent
//          kernel, or from 64 positions per call the chunkwise one (state ping-ponged between two buffers: the
//          kernels' outputs may not alias their inputs); per-head norm; (hn + skip
//          ⊙ xc) ⊙ SiLU(z) with z read in place through a strided broadcast plan; x += h W_downᵀ (+ b)
//   sLSTM  conv + SiLU as above (when K > 0); the four head-wise projections into [rows, 4E]; the recurrence's
//          forward kernel from the state; its last step's state copied back; group norm; x += y
//   FFN    x += act(a) ⊙ u W_downᵀ with [a | u] = LN(x) W_upᵀ (act over the whole up-projection, then the product
//          reading both halves in place)
//   logits = LN_post(x at each row's last position) lm_headᵀ, copied to the host
// The state keeps the layouts of xlstm_infer.h (StackState's), on the device.
#pragma once
#include <cstdint>
#include <memory>

#include "device_session.h"
#include "kernels/xlstm_infer.h"

namespace xlstm {

// Borrows the parameters (InferModelSpec with DEVICE pointers, each with its owner in `owners`: the session shares
// the model's buffers, no copy; only the sLSTM biases are permuted into its own) and allocates the state (zero) and
// scratch for chunks of up to max(1, 256 / B) tokens. Throws std::runtime_error (device memory).
std::shared_ptr<DeviceSession> device_infer_create(const InferModelSpec& spec, int64_t B, const DeviceOwners& owners);

}  // namespace xlstm
