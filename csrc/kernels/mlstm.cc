// The mLSTM cell kernels (see mlstm.h): the portable instantiation of mlstm_engine.h, ISA dispatch and the sizes
// of the saved-for-backward buffers. XLSTM_SPEC §4.
#include "kernels/mlstm.h"

#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/matmul_precision.h"
#include "kernels/mlstm_engine.h"

namespace xlstm {
namespace mlstm_detail {

const Impl& impl_scalar() {
  static const Impl impl = make_impl();
  return impl;
}

namespace {
const Impl& impl_for_cpu() {
#ifdef XLSTM_X86
  return pick_simd_impl(impl_scalar, impl_avx2, impl_avx512);
#else
  return pick_simd_impl<Impl>(impl_scalar, nullptr, nullptr);
#endif
}
}  // namespace

}  // namespace mlstm_detail

namespace {
MlstmDims with_precision(const MlstmDims& d) {
  MlstmDims out = d;
  out.bf16 = medium_on_bf16_pairs();
  return out;
}
}  // namespace

int64_t mlstm_num_chunks(int64_t S, int64_t chunk) { return (S + chunk - 1) / chunk; }

int64_t mlstm_chunkwise_saved_size(const MlstmDims& d, int64_t chunk) {
  const mlstm_detail::SavedLayout lay{mlstm_num_chunks(d.S, chunk), d.DK, d.DV, d.S};
  return d.B * d.NH * lay.size();
}

int64_t mlstm_recurrent_saved_size(const MlstmDims& d) {
  return d.B * d.NH * ((d.S + kRecurrentSegment - 1) / kRecurrentSegment) * (d.DK * d.DV + d.DK + 1);
}

void mlstm_chunkwise_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                             bool parallel_init) {
  std::vector<float> scratch;
  if (!saved) {  // no backward follows: the chunk states still pass from phase A to phase B
    scratch.resize(static_cast<size_t>(mlstm_chunkwise_saved_size(d, chunk)));
    saved = scratch.data();
  }
  mlstm_detail::impl_for_cpu().chunkwise_forward(h, c_last, n_last, m_last, saved, q, k, v, i, f, c0, n0, m0,
                                                 with_precision(d), chunk, eps, parallel_init);
}

void mlstm_chunkwise_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                              float* dm0, const float* saved, const float* h, const float* dh, const float* dc_last,
                              const float* dn_last, const float* q, const float* k, const float* v, const float* i,
                              const float* f, const MlstmDims& d, int64_t chunk, float eps) {
  mlstm_detail::impl_for_cpu().chunkwise_backward(dq, dk, dv, di, df, dc0, dn0, dm0, saved, h, dh, dc_last, dn_last,
                                                  q, k, v, i, f, with_precision(d), chunk, eps);
}

void mlstm_recurrent_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, float eps) {
  mlstm_detail::impl_for_cpu().recurrent_forward(h, c_last, n_last, m_last, saved, q, k, v, i, f, c0, n0, m0, d,
                                                 eps);
}

void mlstm_recurrent_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                              float* dm0, const float* saved, const float* dh, const float* dc_last,
                              const float* dn_last, const float* q, const float* k, const float* v, const float* i,
                              const float* f, const MlstmDims& d, float eps) {
  mlstm_detail::impl_for_cpu().recurrent_backward(dq, dk, dv, di, df, dc0, dn0, dm0, saved, dh, dc_last, dn_last, q,
                                                  k, v, i, f, d, eps);
}

}  // namespace xlstm
