// Pointwise math of the sLSTM and classic LSTM cells (CPU kernels layer; XLSTM_SPEC §2.3, §2.4, §3).
// One time step for one unit: forward from the gate pre-activations p = (ĩ, f̃, z̃, õ) and the previous state,
// backward from the carried cotangents. Written as XLSTM_HD functions so a CUDA twin can share them; everything
// here has internal linkage because it is compiled once per ISA (see recurrent_engine.h).
#pragma once
#include <cmath>

#include "kernels/fast_math.h"

#ifdef __CUDACC__
#define XLSTM_HD __host__ __device__ __forceinline__
#else
#define XLSTM_HD inline
#endif

namespace xlstm {
namespace {

// The transcendental functions come from fast_math.h (vectorisable, no libm calls).
XLSTM_HD float cell_sigmoid(float x) { return fm_sigmoid(x); }
XLSTM_HD float cell_logsigmoid(float x) { return fm_logsigmoid(x); }

// sLSTM: 4 states (h, c, n, m).
struct SlstmCell {
  static constexpr int kStates = 4;

  // XLSTM_SPEC §2.3, per element. `first` is the zero-state rule: n_{t-1} == 0 (per element, CUDA semantics).
  XLSTM_HD static void forward(float pi, float pf, float pz, float po, float c0, float n0, float m0, float* h,
                               float* c, float* n, float* m) {
    const float logf_plus_m = cell_logsigmoid(pf) + m0;
    const float m_new = (n0 == 0.0f) ? pi : fm_max(pi, logf_plus_m);
    const float ig = fm_min(1.0f, fm_exp(pi - m_new));
    const float fg = fm_min(1.0f, fm_exp(logf_plus_m - m_new));
    const float z = fm_tanh(pz);
    const float o = cell_sigmoid(po);
    const float c_new = fg * c0 + ig * z;
    const float n_new = fg * n0 + ig;
    *c = c_new;
    *n = n_new;
    *m = m_new;
    *h = o * c_new / n_new;
  }

  // XLSTM_SPEC §2.4 (reference CUDA convention: m treated as a constant). In: gh = ∂L/∂h_t (incl. the carried
  // recurrent part), *dc / *dn = carried ∂L/∂c_t, ∂L/∂n_t. Out: the four pre-activation gradients, and *dc / *dn
  // replaced by ∂L/∂c_{t-1}, ∂L/∂n_{t-1}.
  XLSTM_HD static void backward(float pi, float pf, float pz, float po, float c0, float n0, float m0, float c1,
                                float n1, float m1, float h1, float gh, float* dc, float* dn, float* dpi, float* dpf,
                                float* dpz, float* dpo) {
    const float logf_plus_m = cell_logsigmoid(pf) + m0;
    const float ig = fm_min(1.0f, fm_exp(pi - m1));
    const float fg = fm_min(1.0f, fm_exp(logf_plus_m - m1));
    const float z = fm_tanh(pz);
    const float o = cell_sigmoid(po);
    const float gc = *dc + gh * o / n1;
    const float gn = *dn - gh * h1 / n1;
    *dpi = ig * (z * gc + gn);
    *dpf = fg * (c0 * gc + n0 * gn) * cell_sigmoid(-pf);
    *dpz = ig * (1.0f - z * z) * gc;
    *dpo = (1.0f - o) * h1 * gh;
    *dc = fg * gc;
    *dn = fg * gn;
  }
};

// Classic LSTM: 2 states (h, c). XLSTM_SPEC §3.
// The sequence kernels save the gate activations (i, f, z, o) = (σ(ĩ), σ(f̃), tanh(z̃), σ(õ)) for backward, in place of
// the pre-activations the sLSTM saves: backward then evaluates one transcendental per unit, tanh(c_t), instead of
// five (bitwise the same gradients: the activations are the values it would recompute).
struct LstmCell {
  static constexpr int kStates = 2;

  XLSTM_HD static void forward_act(float pi, float pf, float pz, float po, float c0, float* h, float* c, float* ai,
                                   float* af, float* az, float* ao) {
    const float i = cell_sigmoid(pi), f = cell_sigmoid(pf), z = fm_tanh(pz), o = cell_sigmoid(po);
    const float c_new = f * c0 + i * z;
    *c = c_new;
    *h = o * fm_tanh(c_new);
    *ai = i;
    *af = f;
    *az = z;
    *ao = o;
  }

  XLSTM_HD static void forward(float pi, float pf, float pz, float po, float c0, float* h, float* c) {
    float i, f, z, o;
    forward_act(pi, pf, pz, po, c0, h, c, &i, &f, &z, &o);
  }

  // From the saved activations i, f, z, o (above) and c_{t-1}, c_t.
  XLSTM_HD static void backward(float i, float f, float z, float o, float c0, float c1, float gh, float* dc,
                                float* dpi, float* dpf, float* dpz, float* dpo) {
    const float tau = fm_tanh(c1);
    const float gc = *dc + gh * o * (1.0f - tau * tau);
    *dpi = gc * z * i * (1.0f - i);
    *dpf = gc * c0 * f * (1.0f - f);
    *dpz = gc * i * (1.0f - z * z);
    *dpo = gh * tau * o * (1.0f - o);
    *dc = f * gc;
  }
};

}  // namespace
}  // namespace xlstm
