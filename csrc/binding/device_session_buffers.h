// Binding layer: what the device inference sessions (cuda_infer_session.cc, cuda_large_session.cc) share: device
// memory a session owns, 2-D copies counted in floats, and the ops' device forms they both enqueue.
#pragma once
#include <cstdint>
#include <memory>

#include "cuda_api.h"
#include "device_kernels.h"
#include "device_session.h"

namespace xlstm {
namespace session_detail {

constexpr int64_t kF = static_cast<int64_t>(sizeof(float));

struct DeviceFree {
  void operator()(void* p) const { cuda::device_free(p); }
};

// Device memory of a session (4-byte elements at p): its own, n elements, freed with the session; or borrowed (n 0:
// not the session's bytes), a model's buffer kept alive by sharing its owner until the session goes.
struct DevBuf {
  std::shared_ptr<void> owner;
  float* p = nullptr;
  int64_t n = 0;
  void release() {
    owner.reset();
    p = nullptr, n = 0;
  }
  // `count` elements, zero-filled
  void alloc(int64_t count) {
    release();
    if (count <= 0) return;
    void* q = cuda::device_malloc(static_cast<size_t>(count * kF));
    owner = std::shared_ptr<void>(q, DeviceFree{});
    p = static_cast<float*>(q);
    n = count;
    cuda::fill_zero(p, static_cast<size_t>(count * kF));
  }
  // the memory `mem` owns (nothing when null: an absent optional parameter)
  void borrow(std::shared_ptr<void> mem) {
    release();
    owner = std::move(mem);
    p = static_cast<float*>(owner.get());
  }
  const uint16_t* bf16() const { return reinterpret_cast<const uint16_t*>(p); }
};

// The owner of the model's buffer at device pointer `ptr` (nullptr for null: an absent optional parameter); a
// pointer without one is a std::logic_error.
std::shared_ptr<void> owner_of(const DeviceOwners& owners, const void* ptr);

// dst [height rows of width floats, row pitch dst_pitch] = src (row pitch src_pitch), enqueued
inline void copy2d(float* dst, int64_t dst_pitch, const float* src, int64_t src_pitch, int64_t width, int64_t height) {
  cuda::copy_2d(dst, static_cast<size_t>(dst_pitch * kF), src, static_cast<size_t>(src_pitch * kF),
                static_cast<size_t>(width * kF), static_cast<size_t>(height));
}

void unary(UnaryOp op, float* out, const float* x, int64_t n, float a = 1.0f, float b = 0.0f);

// out [rows, cols] (dense) = a op b with a's rows lda apart and b read at r·sb_row + c·sb_col (0: broadcast), so column
// ranges of wider rows are read in place
void binary_strided(BinaryOp op, float* out, const float* a, int64_t lda, const float* b, int64_t sb_row, int64_t sb_col,
                    int64_t rows, int64_t cols);

// y [rows, out] (leading dimension ld_y) = x [rows, in] (ld_x) Wᵀ (+ b), W float32 [out, in]: ops.linear's device
// form (the bias broadcast into y by a product with `ones`, a column of at least `rows` ones, then the product added)
void linear_f32(const float* ones, float* y, int64_t ld_y, const float* x, int64_t ld_x, int64_t rows, int64_t in,
                int64_t out, const float* w, const float* b);

}  // namespace session_detail
}  // namespace xlstm
