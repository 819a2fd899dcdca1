// CUDA kernels layer: the plain C++ interface of everything in cuda/*.cu, callable from the binding without
// CUDA headers. When the addon is built without CUDA, csrc/kernels/cuda_absent.cc answers instead: no devices,
// with the reason, and every kernel entry throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace xlstm {
namespace cuda {

struct DeviceInfo {
  std::string name;
  int major = 0, minor = 0;
  size_t total_memory = 0;
  int multiprocessors = 0;
};

// True when this binary contains CUDA kernels.
bool compiled();
// Number of usable devices; 0 with `reason` filled in (no driver, no device, built without CUDA, ...).
int device_count(std::string* reason);
DeviceInfo device_info(int index);

// ---- gemm (cuda/gemm.cu; CPU twin csrc/kernels/gemm.cc) [gemm-block] ------------------------------------------
// Same semantics and argument order as xlstm::gemm / xlstm::gemm_batched (row-major, C = alpha op(A) op(B) + beta C,
// beta == 0 ignores C), on device pointers, enqueued on `stream` (a cudaStream_t; nullptr = default stream).
// Errors throw std::runtime_error naming the kernel and cudaGetErrorString.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, void* stream);
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                  float beta, float* C, int64_t ldc, int64_t stride_c, void* stream);
// Host arrays (contiguous, lda/ldb/ldc implied by the transposes): copies A, B, C to device 0, runs gemm and
// copies C back; synchronous. For tests and CPU <-> CUDA comparisons.
void gemm_host(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               const float* B, float beta, float* C);
// Runs the kernel's __host__ __device__ tile-index helpers on the host over every block and thread of the launch
// for an M x N x K product: counts[i*N + j] = how many (thread, register slot) pairs write C[i, j]; returns how
// many shared-memory slots of a K slice (A and B tiles) are not loaded exactly once by the block's threads.
int64_t gemm_tile_coverage(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int32_t* counts);
// ---- end gemm ---------------------------------------------------------------------------------------------------

}  // namespace cuda
}  // namespace xlstm

// ---- elementwise (cuda/elementwise.cu; CPU twin csrc/kernels/elementwise.cc) [elementwise-block] --------------
// The ops, BroadcastPlan and per-element math are in csrc/kernels/elementwise_math.h (declared opaquely here so
// this header stays free of kernel headers). Same semantics and argument order as the CPU kernels of
// csrc/kernels/elementwise.h, on device pointers, enqueued on `stream` (a cudaStream_t; nullptr = default stream).
// The *_host entries take host arrays: copy them to the current device, run, copy the result back, synchronise.
// Errors throw std::runtime_error naming the entry and cudaGetErrorString; CPU-only builds throw
// "... built without CUDA" (csrc/kernels/cuda_absent.cc).
namespace xlstm {
enum class UnaryOp : int;
enum class BinaryOp : int;
struct BroadcastPlan;
namespace cuda {
void elementwise_unary(UnaryOp op, float* out, const float* x, float a, float b, int64_t n, void* stream);
void elementwise_unary_backward(UnaryOp op, float* dx, const float* x, const float* y, const float* dy, float a,
                                int64_t n, void* stream);
void elementwise_binary(BinaryOp op, float* out, const float* a, const float* b, const BroadcastPlan& plan,
                        void* stream);
void elementwise_binary_backward(BinaryOp op, float* da, float* db, const float* a, const float* b, const float* dy,
                                 const BroadcastPlan& plan, void* stream);
void elementwise_unary_host(UnaryOp op, float* out, const float* x, float a, float b, int64_t n);
void elementwise_unary_backward_host(UnaryOp op, float* dx, const float* x, const float* y, const float* dy, float a,
                                     int64_t n);
void elementwise_binary_host(BinaryOp op, float* out, const float* a, int64_t a_len, const float* b, int64_t b_len,
                             const BroadcastPlan& plan);
void elementwise_binary_backward_host(BinaryOp op, float* da, float* db, const float* a, int64_t a_len,
                                      const float* b, int64_t b_len, const float* dy, const BroadcastPlan& plan);
}  // namespace cuda
}  // namespace xlstm
// ---- end elementwise -------------------------------------------------------------------------------------------
