// Index maps of the CUDA twin of embedding.cc (cuda/embedding.cu) as __host__ __device__ code, so the host
// replay entries (cuda::embedding_*_emulate) run the very same mapping over every block and thread of a launch.
//   forward: one thread per output element in a grid-stride loop: out[i, c] = weight[indices[i], c].
//   backward (deterministic, no atomics): dweight is cut into units of (32-column slice, vocabulary range); one
//   warp owns a unit: each lane zeroes its column of the unit's rows, then walks ALL indices in order and adds
//   dout[i, c] when indices[i] falls in its range. Every dweight element is owned by one thread and summed in
//   index order, exactly as the CPU kernel does (embedding.h), so results are bitwise equal to the CPU's.
#pragma once
#include "kernels/row_launch.h"

namespace xlstm {
namespace emb {

constexpr int64_t kUnitTarget = 4096;  // aim for about this many warps in the backward
constexpr int64_t kMaxGrid = 65535;

XLSTM_ROW_FN int64_t fwd_grid(int64_t ne) {
  const int64_t g = (ne + rows::kThreads - 1) / rows::kThreads;
  return g < 1 ? 1 : (g > kMaxGrid * 16 ? kMaxGrid * 16 : g);
}

struct BwdPlan {
  int64_t slices, parts, per, units, grid, passes;
};
XLSTM_ROW_FN BwdPlan bwd_plan(int64_t v, int64_t e) {
  BwdPlan p;
  p.slices = (e + rows::kWarp - 1) / rows::kWarp;
  int64_t parts = (kUnitTarget + p.slices - 1) / p.slices;
  if (parts > v) parts = v;
  if (parts < 1) parts = 1;
  p.per = (v + parts - 1) / parts;
  p.parts = (v + p.per - 1) / p.per;  // no empty ranges
  p.units = p.slices * p.parts;
  const int64_t g = (p.units + rows::kWarps - 1) / rows::kWarps;
  p.grid = g < 1 ? 1 : (g > kMaxGrid ? kMaxGrid : g);
  p.passes = (p.units + p.grid * rows::kWarps - 1) / (p.grid * rows::kWarps);
  return p;
}
// The unit of thread t of block b on pass k (>= units: idle).
XLSTM_ROW_FN int64_t unit_of(const BwdPlan& p, int64_t b, int t, int64_t pass) {
  return (pass * p.grid + b) * rows::kWarps + t / rows::kWarp;
}

// One lane's share of unit u (S: rows::PlainStore on the device, rows::CountingStore in the replay).
template <class S, class I>
XLSTM_ROW_FN void bwd_unit(S dw, const float* dout, const I* indices, int64_t n, int64_t v, int64_t e,
                           const BwdPlan& p, int64_t u, int lane) {
  const int64_t c = (u % p.slices) * rows::kWarp + lane;
  if (c >= e) return;
  const int64_t v0 = (u / p.slices) * p.per;
  const int64_t v1 = v0 + p.per < v ? v0 + p.per : v;
  for (int64_t r = v0; r < v1; ++r) dw.put(r * e + c, 0.f);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = static_cast<int64_t>(indices[i]);
    if (r >= v0 && r < v1) dw.add(r * e + c, dout[i * e + c]);
  }
}

}  // namespace emb
}  // namespace xlstm
