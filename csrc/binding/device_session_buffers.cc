// Binding layer: the device sessions' shared op forms (see device_session_buffers.h).
#include "device_session_buffers.h"

#include <stdexcept>

namespace xlstm {
namespace session_detail {

void unary(UnaryOp op, float* out, const float* x, int64_t n, float a, float b) { dk::unary(op, out, x, a, b, n); }

void binary_strided(BinaryOp op, float* out, const float* a, int64_t lda, const float* b, int64_t sb_row, int64_t sb_col,
                    int64_t rows, int64_t cols) {
  const int64_t shape[2] = {rows, cols}, sa[2] = {lda, 1}, sb[2] = {sb_row, sb_col};
  dk::binary(op, out, a, b, make_strided_plan(2, shape, sa, sb));
}

void linear_f32(const float* ones, float* y, int64_t ld_y, const float* x, int64_t ld_x, int64_t rows, int64_t in,
                int64_t out, const float* w, const float* b) {
  if (b) dk::gemm(false, false, 1, rows, out, 1, 1.0f, ones, 1, 0, b, out, 0, 0.0f, y, ld_y, 0);
  dk::gemm(false, true, 1, rows, out, in, 1.0f, x, ld_x, 0, w, in, 0, b ? 1.0f : 0.0f, y, ld_y, 0);
}

std::shared_ptr<void> owner_of(const DeviceOwners& owners, const void* ptr) {
  if (!ptr) return nullptr;
  const auto it = owners.find(ptr);
  if (it == owners.end()) throw std::logic_error("device session: a parameter pointer without its buffer");
  return it->second;
}

}  // namespace session_detail
}  // namespace xlstm
