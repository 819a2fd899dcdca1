// Binding layer: the device inference session of an xLSTM Large model (lib/nn/large.ts's xLSTMLarge) on the GPU: one
// native call runs a decode step (one token per batch row) through every block as a fixed sequence of device kernels
// on preallocated buffers: the kernels, in the same forms, that xLSTMLarge.step takes on CUDA tensors
// (device_kernels.h), with no tensor objects, allocations or JavaScript between them. Per block (XLSTM_SPEC §10):
//   a = RMSNorm(x) as rmsNorm composes it (x², the row mean, +eps, log, ·(-1/2), exp, x·inv, ·w, +b)
//   P = a W_qkvoᵀ (+ b) [rows, 2qk + 2vd]; G = softcap(a W_ifᵀ + b) [rows, 2NH]
//   q = P_q / √DK, k = P_k · √DK, v = P_v; the recurrent mLSTM step from the block's state (c, n, m ping-ponged)
//   x += (σ(P_o) ⊙ MultiHeadLayerNorm(h)) W_outᵀ (+ b)
//   x += (SiLU(Z_gate) ⊙ Z_up) W_downᵀ (+ b), Z = RMSNorm(x) W_upᵀ (+ b) [rows, 2up]
// logits = softcap(RMSNorm_out(x) lm_headᵀ). "single" weight-mode projections keep their parts' buffers: in bfloat16
// one GEMV over all of them (bf16_linear_parts, up to 8 rows), otherwise part by part; their outputs side by side as
// the "fused" layout's (the same products per output). Matrix weights are float32 (the GEMM) or bfloat16
// (the bf16 linear and embedding kernels), as the model holds them. The session borrows the model's parameter buffers
// instead of copying them (a 7B model's weights are 14 GB in bfloat16): it shares their ownership (DeviceBuffer::mem),
// so a parameter freed or moved meanwhile stays allocated, unchanged, until the session goes, and updates made in
// place (an optimizer step) are seen by the next step. State per block: c [B, NH, DK, DV], n [B, NH, DK], m [B, NH, 1]
// (LargeState's layout).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "device_session.h"
#include "kernels/xlstm_infer.h"

namespace xlstm {

// A projection's parts (one for the fused layout, several for "single": concatenated in order), device pointers.
struct LargeProjSpec {
  struct Part {
    const void* w = nullptr;     // [out, in], float32 or bfloat16
    const float* b = nullptr;    // [out] or null
    int64_t out = 0;
  };
  std::vector<Part> parts;
  int64_t in = 0;
};

struct LargeBlockSpec {
  const float *norm_m_w = nullptr, *norm_m_b = nullptr, *mh_w = nullptr, *mh_b = nullptr, *norm_f_w = nullptr,
              *norm_f_b = nullptr;
  LargeProjSpec qkvo, ifgate, out_proj, up, down;
};

struct LargeModelSpec {
  int64_t V = 0, E = 0, NH = 0, qk = 0, vd = 0, up = 0;
  bool bf16 = false;  // matrix weights (embedding, projections, lm_head) are bfloat16
  float norm_eps = 1e-6f, eps = 1e-6f;
  double gate_cap = 0, out_cap = 0;  // soft caps; 0 = none
  const void *embedding = nullptr, *lm_head = nullptr;
  const float *out_norm_w = nullptr, *out_norm_b = nullptr;  // null: no out norm
  std::vector<LargeBlockSpec> blocks;
};

// Borrows the parameters (device pointers, each with its owner in `owners`), allocates the state (zero) and the
// scratch. The session's run takes S steps (prefill long prompts with model.forward and set the state instead).
// Throws std::runtime_error.
std::shared_ptr<DeviceSession> large_device_create(const LargeModelSpec& spec, int64_t B, const DeviceOwners& owners);

}  // namespace xlstm
