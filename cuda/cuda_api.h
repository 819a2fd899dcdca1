// CUDA kernels layer: the plain C++ interface of everything in cuda/*.cu, callable from the binding without
// CUDA headers. When the addon is built without CUDA, csrc/kernels/cuda_absent.cc answers instead: no devices,
// with the reason, and every kernel entry throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

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
// The host replay of gemm_batched's launch (no GPU needed): the kernel's own staging, accumulation and store code for
// every block, each phase for all threads, on host arrays; the same FMA order as the device.
void gemm_batched_emulate(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                          float beta, float* C, int64_t ldc, int64_t stride_c);
// Host arrays (contiguous, lda/ldb/ldc implied by the transposes): copies A, B, C to device 0, runs gemm and
// copies C back; synchronous. For tests and CPU <-> CUDA comparisons.
void gemm_host(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               const float* B, float beta, float* C);
// Runs the kernel's __host__ __device__ tile-index helpers on the host over every block and thread of the launch
// for an M x N x K product: counts[i*N + j] = how many (thread, register slot) pairs write C[i, j]; returns how
// many shared-memory slots of a K slice (A and B tiles) are not loaded exactly once by the block's threads.
int64_t gemm_tile_coverage(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int32_t* counts);
// bfloat16 inputs, float32 accumulation on tensor cores (cuda/gemm_bf16.cu; CPU twin gemm_bf16_batched in
// csrc/kernels/gemm.cc): gemm_batched's arguments and semantics with A and B rounded to bf16. Needs sm_80+.
void gemm_bf16_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                       float beta, float* C, int64_t ldc, int64_t stride_c, void* stream);
// Host replay of gemm_bf16_batched's launch (no GPU; CUDA builds): the kernel's staging and epilogue code for every
// block and thread, the products as float32 sums of the bf16-rounded staged values in k order. Same arguments but
// the stream; host arrays.
void gemm_bf16_batched_emulate(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                               float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                               int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c);
// The bf16 kernel's tile-index helpers run on the host for an M x N product: counts[i*N + j] = writes of C[i, j];
// returns how many shared-memory slots (A, B staging; the warps' parts of the C tile) are not covered exactly
// once, or -1 for an index out of its tile. Under the tiling a one-batch product of that shape launches with
// (set_gemm_bf16_wide).
int64_t gemm_bf16_tile_coverage(bool trans_a, bool trans_b, int64_t M, int64_t N, int32_t* counts);
// The split-K cut gemm_batched (bf16 false) or gemm_bf16_batched (true) makes of a batch x M x N x K product: K in
// *splits ranges of *chunk (the last one shorter), their sums added in order; *splits = 1 (chunk 0): not cut.
void gemm_split_k_plan(int64_t batch, int64_t M, int64_t N, int64_t K, bool bf16, int64_t* splits, int64_t* chunk);
// Whether the CUDA GEMMs cut along K at all (default true; process-wide, device launches and host replays alike):
// off, every product runs uncut, as before split K (for A/B measurements). Returns the previous setting.
bool set_gemm_split_k(bool enabled);
// Which kernel runs gemm / gemm_batched's uncut products (process-wide, device launches and host replays alike):
// true (default) the 64 x 64 / 128 x 64 tiled kernels of gemm.cu, false the grouped float32 kernel (gemm_grouped.cu:
// 16-byte staging, the next slice's loads in flight). Both sum each element as one fmaf chain over k in order: the
// same bits. Returns the previous setting (for A/B measurements: on an H100 the G3 training step ran 8 % slower with
// the grouped kernel, whose 64 x 64 tiles do fewer FMAs per shared-memory read than the 128 x 64 ones).
bool set_gemm_f32_tiled(bool tiled);
// Whether the bf16 tensor-core GEMM makes its opt-in shape-based choices (process-wide, device launches and host
// replays alike; default false: opt-in until timed on a GPU): products of at least 256 tiles of 64 x 128 (8 warps of
// 32 x 32) run on those instead of 64 x 64 (the same sums on the host replay), and one-segment products of 256 tiles
// up to 4 waves of them over a K of 4096 or more are cut along K (split_k_plan's long-K rule). Returns the previous
// setting.
bool set_gemm_bf16_wide(bool wide);
// The C tile (*rows x *cols) the bf16 tensor-core GEMM runs a batch x M x N product on (set_gemm_bf16_wide).
void gemm_bf16_tile(int64_t batch, int64_t M, int64_t N, int* rows, int* cols);
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

// ---- norms, softmax / cross-entropy, embedding: twins of norm.cc, softmax.cc, embedding.cc [cuda-nn-block]
// cuda/norm.cu, cuda/softmax.cu, cuda/embedding.cu. Device entries: same names, argument order and semantics as
// the CPU kernels (norm.h, softmax.h, embedding.h) on device pointers, plus a trailing `stream` (a cudaStream_t;
// nullptr = default stream); they only enqueue. cross_entropy_forward returns nothing and writes the number of
// non-ignored rows to `count` (a device int64_t, may be null). *_host entries take host arrays: copy to the current
// device, run, copy back, synchronise. *_emulate entries run on the host, no GPU needed: they replay the launch
// (every block and thread, the device's reduction order) with the kernels' __host__ __device__ code, write the
// outputs and add 1 to writes[k] for every write of output element k (outputs concatenated in argument order,
// absent ones taking no room). Errors throw std::runtime_error naming the entry; CPU-only builds throw
// "... built without CUDA" (csrc/kernels/cuda_absent.cc).
namespace xlstm {
namespace cuda {
void layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                        int64_t rows, int64_t groups, int64_t dim, float eps, bool residual, void* stream);
void layer_norm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                         const float* rstd, const float* w, int64_t rows, int64_t groups, int64_t dim, bool residual,
                         void* stream);
void layer_norm_forward_host(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                             int64_t rows, int64_t groups, int64_t dim, float eps, bool residual);
void layer_norm_backward_host(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                              const float* rstd, const float* w, int64_t rows, int64_t groups, int64_t dim,
                              bool residual);
void layer_norm_forward_emulate(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                                int64_t rows, int64_t groups, int64_t dim, float eps, bool residual, int32_t* writes);
void layer_norm_backward_emulate(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                                 const float* rstd, const float* w, int64_t rows, int64_t groups, int64_t dim,
                                 bool residual, int32_t* writes);

void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, void* stream);
void log_softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, void* stream);
void softmax_backward(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols, void* stream);
void log_softmax_backward(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols, void* stream);
void softmax_forward_host(float* y, const float* x, int64_t rows, int64_t cols);
void log_softmax_forward_host(float* y, const float* x, int64_t rows, int64_t cols);
void softmax_backward_host(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols);
void log_softmax_backward_host(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols);
// log_softmax selects log-softmax (else softmax), forward and backward.
void softmax_emulate(bool log_softmax, float* y, const float* x, int64_t rows, int64_t cols, int32_t* writes);
void softmax_backward_emulate(bool log_softmax, float* dx, const float* y, const float* dy, int64_t rows, int64_t cols,
                              int32_t* writes);
// I = int32_t or int64_t.
template <class I>
void cross_entropy_forward(float* loss, float* row_max, float* log_sum, const float* logits, const I* targets,
                           int64_t n, int64_t v, int64_t ignore_index, int64_t* count, void* stream);
template <class I>
void cross_entropy_backward(float* dlogits, const float* logits, const float* row_max, const float* log_sum,
                            const I* targets, const float* g, int64_t n, int64_t v, int64_t ignore_index, void* stream);
template <class I>
int64_t cross_entropy_forward_host(float* loss, float* row_max, float* log_sum, const float* logits, const I* targets,
                                   int64_t n, int64_t v, int64_t ignore_index);
template <class I>
void cross_entropy_backward_host(float* dlogits, const float* logits, const float* row_max, const float* log_sum,
                                 const I* targets, const float* g, int64_t n, int64_t v, int64_t ignore_index);
template <class I>
int64_t cross_entropy_forward_emulate(float* loss, float* row_max, float* log_sum, const float* logits,
                                      const I* targets, int64_t n, int64_t v, int64_t ignore_index, int32_t* writes);
template <class I>
void cross_entropy_backward_emulate(float* dlogits, const float* logits, const float* row_max, const float* log_sum,
                                    const I* targets, const float* g, int64_t n, int64_t v, int64_t ignore_index,
                                    int32_t* writes);

// I = int32_t or int64_t. The host entries also take v (the weight's rows) to size the copies.
template <class I>
void embedding_forward(float* out, const float* weight, const I* indices, int64_t n, int64_t e, void* stream);
template <class I>
void embedding_backward(float* dweight, const float* dout, const I* indices, int64_t n, int64_t v, int64_t e,
                        void* stream);
template <class I>
void embedding_forward_host(float* out, const float* weight, const I* indices, int64_t n, int64_t v, int64_t e);
template <class I>
void embedding_backward_host(float* dweight, const float* dout, const I* indices, int64_t n, int64_t v, int64_t e);
template <class I>
void embedding_forward_emulate(float* out, const float* weight, const I* indices, int64_t n, int64_t e,
                               int32_t* writes);
template <class I>
void embedding_backward_emulate(float* dweight, const float* dout, const I* indices, int64_t n, int64_t v, int64_t e,
                                int32_t* writes);
}  // namespace cuda
}  // namespace xlstm
// ---- end cuda-nn-block

// ---- reductions, causal conv1d, dropout, optimizer updates, permute: twins of reduce.cc, conv1d.cc, dropout.cc,
// optim.cc, permute.cc [cuda-misc-block]
// Same semantics and argument order as the CPU kernels (reduce.h, conv1d.h, dropout.h, optim.h, permute.h) on device
// pointers with a trailing `stream` (a cudaStream_t; nullptr = default stream); the CPU functions that return a
// double (sum_all, sum_squares) take a device double* output first instead. *_host entries take host arrays (copy
// in, run on the current device, copy out, synchronise). Errors throw std::runtime_error naming the entry and
// cudaGetErrorString; CPU-only builds throw "... built without CUDA" (csrc/kernels/cuda_absent.cc). The *_coverage
// entries are host code: they run a launch's __host__ __device__ index maps over every block and thread and count
// reads/writes (tests on machines without a GPU); they return the number of inconsistencies found.
namespace xlstm {
enum class ReduceOp : int;
namespace cuda {
// reduce.cu: reduce_axes' device argmax is written only for "max" (may be null)
void reduce_axes(ReduceOp op, float* out, int64_t* argmax, const float* x, int ndim, const int64_t* shape,
                 const uint8_t* reduced, void* stream);
void reduce_axes_backward(ReduceOp op, float* dx, const float* dy, const int64_t* argmax, int ndim,
                          const int64_t* shape, const uint8_t* reduced, void* stream);
void sum_all(double* out, const float* x, int64_t n, void* stream);
void reduce_axes_host(ReduceOp op, float* out, int64_t* argmax, const float* x, int ndim, const int64_t* shape,
                      const uint8_t* reduced);
void reduce_axes_backward_host(ReduceOp op, float* dx, const float* dy, const int64_t* argmax, int ndim,
                               const int64_t* shape, const uint8_t* reduced);
double sum_all_host(const float* x, int64_t n);
// reads[i] = how often the reduction kernels read x[i] (numel(shape) entries); *mode = the launch mode (0 serial,
// 1 block per output, 2 column blocks; -1 for the fill/copy cases), *pieces = pieces per output.
int64_t reduce_coverage(int ndim, const int64_t* shape, const uint8_t* reduced, int32_t* reads, int* mode,
                        int64_t* pieces);
// reads[i] = how often the two-pass sums (sum_all, sum_squares) read x[i] (n entries).
int64_t sum_pass_coverage(int64_t n, int32_t* reads);
// Host replays (no GPU needed): the launches run on the host with the kernels' own __host__ __device__ bodies (every
// block and thread, each phase for all threads before the next, the device's combine order); they write the outputs
// and add 1 to writes[k] for every write of output element k (outputs concatenated in argument order, absent ones
// taking no room: reduce_axes_emulate's argmax only for "max").
void reduce_axes_emulate(ReduceOp op, float* out, int64_t* argmax, const float* x, int ndim, const int64_t* shape,
                         const uint8_t* reduced, int32_t* writes);
void reduce_axes_backward_emulate(ReduceOp op, float* dx, const float* dy, const int64_t* argmax, int ndim,
                                  const int64_t* shape, const uint8_t* reduced, int32_t* writes);
// conv1d.cu
void causal_conv1d_forward(float* y, const float* x, const float* weight, const float* bias, int64_t b, int64_t s,
                           int64_t f, int64_t k, void* stream);
void causal_conv1d_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                            const float* weight, int64_t b, int64_t s, int64_t f, int64_t k, void* stream);
void causal_conv1d_forward_host(float* y, const float* x, const float* weight, const float* bias, int64_t b,
                                int64_t s, int64_t f, int64_t k);
void causal_conv1d_backward_host(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                                 const float* weight, int64_t b, int64_t s, int64_t f, int64_t k);
// y_writes [b*s*f]: writes per y (and dx) element; dweight_terms [f*k], dbias_terms [f]: (row, tap) terms each
// gradient element accumulates.
int64_t causal_conv1d_coverage(int64_t b, int64_t s, int64_t f, int64_t k, int32_t* y_writes, int32_t* dweight_terms,
                               int32_t* dbias_terms);
// Host replays, as reduce_axes_emulate (writes: y; dx, dweight, dbias).
void causal_conv1d_forward_emulate(float* y, const float* x, const float* weight, const float* bias, int64_t b,
                                   int64_t s, int64_t f, int64_t k, int32_t* writes);
void causal_conv1d_backward_emulate(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                                    const float* weight, int64_t b, int64_t s, int64_t f, int64_t k, int32_t* writes);
// dropout.cu
void dropout_forward(float* y, uint8_t* mask, const float* x, int64_t n, double p, uint32_t key0, uint32_t key1,
                     void* stream);
void dropout_backward(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale, void* stream);
void dropout_forward_host(float* y, uint8_t* mask, const float* x, int64_t n, double p, uint32_t key0,
                          uint32_t key1);
void dropout_backward_host(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale);
// optim.cu
void adamw_step(float* p, float* m, float* v, const float* g, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t t, void* stream);
void sum_squares(double* out, const float* x, int64_t n, void* stream);
void scale_inplace(float* x, int64_t n, float alpha, void* stream);
void adamw_step_host(float* p, float* m, float* v, const float* g, int64_t n, double lr, double beta1, double beta2,
                     double eps, double weight_decay, int64_t t);
double sum_squares_host(const float* x, int64_t n);
void scale_inplace_host(float* x, int64_t n, float alpha);
// permute.cu
void permute_copy(void* out, const void* in, int elem_size, const int64_t* in_shape, const int64_t* perm, int ndim,
                  void* stream);
void permute_copy_host(void* out, const void* in, int elem_size, const int64_t* in_shape, const int64_t* perm,
                       int ndim);
// reads[i] = how often the kernel reads in[i] (numel entries).
int64_t permute_coverage(const int64_t* in_shape, const int64_t* perm, int ndim, int32_t* reads);
}  // namespace cuda
}  // namespace xlstm
// ---- end cuda-misc-block

// ---- device memory: caching allocator, copies, stream (cuda/memory.cu) [memory-block]
// Device 0's memory through the caching allocator of cuda/caching_allocator.h, and the one stream every device
// kernel is enqueued on. Copies to and from the host synchronise that stream before returning; copy_on_device and
// fill_zero only enqueue. Errors (out of memory included: the message says how much was asked for, in use, reserved
// and free) throw std::runtime_error; CPU-only builds throw "... built without CUDA".
#include "caching_allocator.h"
namespace xlstm {
namespace cuda {
struct MemoryStats {
  AllocatorStats allocator;
  int64_t device_free_bytes = 0, device_total_bytes = 0;  // cudaMemGetInfo
};
// True under host emulation (XLSTM_CUDA_EMULATE=1, cuda/host_emulation.h): device memory is host memory and the
// device-buffer binding runs the CPU kernels instead of these.
bool emulated();
void* stream();  // the package's cudaStream_t (null under emulation)
void* device_malloc(size_t bytes);
void device_free(void* p);
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);
void copy_on_device(void* dst, const void* src, size_t bytes);
// `height` rows of `width` bytes, row r from src + r*src_pitch to dst + r*dst_pitch (enqueued).
void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t height);
void fill_zero(void* dst, size_t bytes);
void synchronize();
MemoryStats memory_stats();
void empty_cache();

// CUDA graphs of a fixed sequence of device work (the device inference sessions' decode steps, cuda::set_session_graphs).
// graph_capture_launch runs `enqueue` on this thread with the package stream replaced by a private stream under
// capture (relaxed mode: work other threads put on the package stream meanwhile is not captured), instantiates the
// graph and launches it once on the package stream. Scratch that the work allocates and frees inside the capture
// stays allocated until graph_free (the graph keeps using those addresses). Returns nullptr, with the reason in
// *why, when the work cannot be captured; the work has then not run, and nothing is left allocated or captured.
// Under host emulation a "graph" is `enqueue` itself: run now and at each launch (so the sessions' bookkeeping of
// graphs runs in CI; the capture itself needs a GPU). The caller keeps whatever `enqueue` refers to alive until
// graph_free.
void* graph_capture_launch(std::function<void()> enqueue, std::string* why);
void graph_launch(void* graph);  // on the package stream
void graph_free(void* graph);    // nullptr: nothing
// Test hook of the emulated device: its next n captures fail (as a real capture can, e.g. when another thread
// synchronises the device meanwhile), before the work runs, or with after_run once it has run (as a capture whose
// memory is refused at its end: the emulated capture runs the work). Throws unless XLSTM_CUDA_EMULATE is on.
void emulate_refuse_captures(int n, bool after_run = false);
// Whether the device sessions replay their decode steps from graphs (default off until timed on a GPU);
// process-wide; returns the previous setting.
bool set_session_graphs(bool on);
bool session_graphs();
// A count of the changes to the process-wide kernel settings (every set_* of the kernel choices: GEMM forms and split
// K, mLSTM forms, recurrence launches): a graph bakes in the kernels its capture chose, so the sessions drop their
// graphs when it moves.
uint64_t kernel_settings_generation();
void kernel_settings_changed();
}  // namespace cuda
}  // namespace xlstm
// ---- end memory-block

// ---- sLSTM / LSTM recurrences: twin of recurrent.cc [cuda-recurrent-block]
// cuda/recurrent.cu. Same names, argument order, layouts and semantics as csrc/kernels/recurrent.h (RecurrentDims
// declared opaquely here), on device pointers with a trailing `stream` (a cudaStream_t; nullptr = default stream);
// they only enqueue (backward's scratch is stream-ordered). B, S, NH, DH must be >= 1; a DH whose per-block state
// does not fit in shared memory throws std::invalid_argument. *_host entries take host arrays: copy in, run on the
// current device, copy out, synchronise. Errors throw std::runtime_error naming the entry and cudaGetErrorString;
// CPU-only builds throw "... built without CUDA" (csrc/kernels/cuda_absent.cc).
namespace xlstm {
struct RecurrentDims;
namespace cuda {
void slstm_forward(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                   const float* bias, const RecurrentDims& d, void* stream);
void slstm_backward(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                    const float* dy, const float* dstate_final, const float* state0, const float* R,
                    const RecurrentDims& d, bool exact_m0_grad, void* stream);
void lstm_forward(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                  const float* bias, const RecurrentDims& d, void* stream);
void lstm_backward(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                   const float* dy, const float* dstate_final, const float* state0, const float* R,
                   const RecurrentDims& d, void* stream);
// Under the bf16 autocast: the same arguments and results, the recurrent matrix products on tensor cores with bf16
// operands (R and h_{t-1} forward, R and the pre-activation gradients backward) and float32 sums, where the split-head
// launch applies and the tensor-core form fits (cuda/recurrent_tc.cuh: B <= 64, <= 32 units per block, shared memory);
// elsewhere the float32 kernels run (sm_80+).
void slstm_forward_bf16(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                        const float* bias, const RecurrentDims& d, void* stream);
void slstm_backward_bf16(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                         const float* dy, const float* dstate_final, const float* state0, const float* R,
                         const RecurrentDims& d, bool exact_m0_grad, void* stream);
void lstm_forward_bf16(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                       const float* bias, const RecurrentDims& d, void* stream);
void lstm_backward_bf16(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                        const float* dy, const float* dstate_final, const float* state0, const float* R,
                        const RecurrentDims& d, void* stream);
// host arrays; bf16: the *_bf16 entries' form
void slstm_forward_host(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                        const float* bias, const RecurrentDims& d, bool bf16 = false);
void slstm_backward_host(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                         const float* dy, const float* dstate_final, const float* state0, const float* R,
                         const RecurrentDims& d, bool exact_m0_grad, bool bf16 = false);
void lstm_forward_host(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                       const float* bias, const RecurrentDims& d, bool bf16 = false);
void lstm_backward_host(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                        const float* dy, const float* dstate_final, const float* state0, const float* R,
                        const RecurrentDims& d, bool bf16 = false);
// Host code, no GPU needed: the launches replayed on the host with the kernels' own __host__ __device__ bodies
// (every block, each phase for every thread before the next; shared memory planned as on an H100), host arrays;
// bf16: the tensor-core form's replay where the device would run it (its 16 x 16 x 16 products as k-order fma chains).
void slstm_forward_emulate(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                           const float* bias, const RecurrentDims& d, bool bf16 = false);
void slstm_backward_emulate(float* dx, float* dR, float* dbias, float* dstate0, const float* gates,
                            const float* states, const float* dy, const float* dstate_final, const float* state0,
                            const float* R, const RecurrentDims& d, bool exact_m0_grad, bool bf16 = false);
void lstm_forward_emulate(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                          const float* bias, const RecurrentDims& d, bool bf16 = false);
void lstm_backward_emulate(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                           const float* dy, const float* dstate_final, const float* state0, const float* R,
                           const RecurrentDims& d, bool bf16 = false);
// Host code, no GPU needed: runs the kernels' __host__ __device__ maps over every block, thread and step of the
// forward and backward launches (NS = 4 when slstm, else 2) and counts the global writes per output element into
// `writes`, the outputs concatenated: y [B*S*H], states [NS*S*B*H], gates [B*S*4H], dx [B*S*4H], dR [NH*DH*4DH],
// dbias [4H], dstate0 [NS*B*H] (dR / dbias: the final pass's writes). Returns the number of inconsistencies
// found in the rest: out-of-range writes, (head, row) pairs not owned by exactly one block, shared-memory slots
// not written exactly once per phase, parameter-gradient partials not written and read exactly once, row chunks
// that do not partition the B*S rows.
int64_t recurrent_coverage(bool slstm, const RecurrentDims& d, int32_t* writes);
// Which launch the recurrences (device entries and *_emulate replays) take: 0 auto (the split-head launch of
// cuda/recurrent_split.cuh when the rows launch fills less than half the device's SMs and the split fits), 1 always the
// rows launch, 2 split wherever it fits. Process-wide; returns the previous mode (tests and benchmarks).
int set_recurrent_launch(int mode);
// The split launch's blocks per head at most: 0 (the default) as many as the device holds (one per SM), else that cap
// (>= 2: more units per block). Process-wide; returns the previous cap (benchmarks time the trade; tests).
int64_t set_recurrent_split_blocks(int64_t per_head);
// The plan the *_emulate replays follow (an H100's 132 SMs, one block each, 227 KiB of shared memory per block) for
// the forward (fwd) or backward, float32 or bf16: false for the rows launch, else blocks per head, units per block
// and the tensor-core form's column tiles (0: not that form), and whether its backward gathers dp.
bool recurrent_emulated_plan(const RecurrentDims& d, bool fwd, bool bf16, int64_t* blocks_per_head, int64_t* units, int64_t* tc_tiles,
                             bool* gather);
// The bf16 tensor-core backward's exchange between a head's blocks: 0 (the default) partial ∂h sums, 1 the gather of
// dp (cuda/recurrent_gather.cuh; where its shared memory fits). Process-wide; returns the previous one.
int set_recurrent_exchange(int exchange);
// The autotune of the split plan (off by default): on, the first call of a shape (T >= 64) on the device times the
// candidate plans (the settings' own, caps on the blocks per head down to a quarter, the bf16 backward's other
// exchange) and every call of the shape takes the fastest. Turning it on or off forgets the choices made. Returns the
// previous setting.
bool set_recurrent_autotune(bool on);
// The candidates the autotune would time for a shape on the emulated device (cap, exchange), the settings' own first.
std::vector<std::pair<int64_t, int>> recurrent_tune_candidates_emulated(const RecurrentDims& d, bool fwd, bool bf16);
// Host check of the bf16 tensor-core kernels' wmma tiles for a shape's emulated plans under the current cap (the
// forward; the backward with either exchange): violations of wmma's alignment and leading-dimension rules, and tiles
// outside their arrays (recurrent_tc.cuh's tc_wmma_errors).
int64_t recurrent_wmma_errors(const RecurrentDims& d);
// The autotune's choice for a shape on the current device (false: none made).
bool recurrent_tuned(const RecurrentDims& d, bool slstm, bool fwd, bool bf16, int64_t* cap, int* exchange);
}  // namespace cuda
}  // namespace xlstm
// ---- end cuda-recurrent-block

// ---- mLSTM cell (chunkwise, recurrent): twin of mlstm.cc [cuda-mlstm-block]
// cuda/mlstm.cu. Same names, argument order, layouts and semantics (state convention, stabilisers, ε, the contents
// and sizes of `saved`: mlstm_chunkwise_saved_size / mlstm_recurrent_saved_size) as csrc/kernels/mlstm.h, on device
// pointers plus a trailing `stream` (a cudaStream_t; nullptr = default stream); they only enqueue (scratch is
// stream-ordered). *_host entries take host arrays: copy in, run on the current device, copy out, synchronise.
// mlstm_coverage is host code (no GPU needed): it replays every launch's write maps for the dims and chunk and
// stores in bad[e] how many elements of output e are not written exactly once (e: chunkwise forward h, cLast,
// nLast, mLast, saved; chunkwise backward dq, dk, dv, di, df, dc0, dn0, dm0; recurrent forward (5), recurrent
// backward (8); then the tile kernel's shared-memory slots; then the fused bf16 kernels' h (with den and their slots),
// dq, dk, dv), returning the sum. Errors throw std::runtime_error
// naming the entry; CPU-only builds throw "... built without CUDA".
namespace xlstm {
struct MlstmDims;
namespace cuda {
constexpr int kMlstmCoverageOutputs = 31;
void mlstm_chunkwise_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                             bool parallel_init, void* stream);
void mlstm_chunkwise_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                              float* dm0, const float* saved, const float* h, const float* dh, const float* dc_last,
                              const float* dn_last, const float* q, const float* k, const float* v, const float* i,
                              const float* f, const MlstmDims& d, int64_t chunk, float eps, void* stream);
// The chunkwise form under the bf16 autocast: the same arguments, results and `saved` layout, the products on
// tensor cores with bfloat16 operands and float32 sums (cuda/mlstm_bf16.cuh; sm_80+).
void mlstm_chunkwise_forward_bf16(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                                  const float* k, const float* v, const float* i, const float* f, const float* c0,
                                  const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                                  bool parallel_init, void* stream);
void mlstm_chunkwise_backward_bf16(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                                   float* dm0, const float* saved, const float* h, const float* dh,
                                   const float* dc_last, const float* dn_last, const float* q, const float* k,
                                   const float* v, const float* i, const float* f, const MlstmDims& d, int64_t chunk,
                                   float eps, void* stream);
void mlstm_recurrent_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, float eps, void* stream);
void mlstm_recurrent_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                              float* dm0, const float* saved, const float* dh, const float* dc_last,
                              const float* dn_last, const float* q, const float* k, const float* v, const float* i,
                              const float* f, const MlstmDims& d, float eps, void* stream);
void mlstm_chunkwise_forward_host(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                                  const float* k, const float* v, const float* i, const float* f, const float* c0,
                                  const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                                  bool parallel_init, bool bf16 = false);
void mlstm_chunkwise_backward_host(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                                   float* dm0, const float* saved, const float* h, const float* dh,
                                   const float* dc_last, const float* dn_last, const float* q, const float* k,
                                   const float* v, const float* i, const float* f, const MlstmDims& d, int64_t chunk,
                                   float eps, bool bf16 = false);
void mlstm_recurrent_forward_host(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                                  const float* k, const float* v, const float* i, const float* f, const float* c0,
                                  const float* n0, const float* m0, const MlstmDims& d, float eps);
void mlstm_recurrent_backward_host(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                                   float* dm0, const float* saved, const float* dh, const float* dc_last,
                                   const float* dn_last, const float* q, const float* k, const float* v,
                                   const float* i, const float* f, const MlstmDims& d, float eps);
int64_t mlstm_coverage(const MlstmDims& d, int64_t chunk, int64_t* bad);
// Which float32 chunkwise form the device entries and *_emulate replays run: 0 the tiled kernels, 1 the composed form
// (the bf16 form's structure with float32 grouped GEMMs on the SIMT cores), 2 (default) the composed form from
// DK·DV >= 2^16 and the tiled one below (measured on an H100). Process-wide; returns the previous form (tests and
// benchmarks).
int set_mlstm_form(int form);
// How the composed forms (bf16; float32 composed) compute the inter-chunk states: 0 (default) the state kernels' walk
// over the chunks, 1 every chunk's product as one grouped GEMM and an elementwise scan over the chunks. Process-wide;
// returns the previous setting (tests and benchmarks).
int set_mlstm_states(int form);
// How the bf16 form computes the chunkwise intra-chunk parts (forward: S, weights, normaliser, h; backward: dq, dk,
// dv): 0 (default) as grouped products, 1 fused, a kernel per output with a block per (chunk, 64-row tile) (chunks up
// to 256; cuda/mlstm_fused.cuh). Process-wide; returns the previous setting (tests and benchmarks).
int set_mlstm_intra(int form);
// Host replays (no GPU needed; CUDA builds): the device entries' launches run on the host with the kernels' own
// __host__ __device__ code (every block, each phase by all of its threads before the next, warp and block sums in
// the device's order; shared memory and the device scratch host arrays filled with NaN), on host arrays: the same
// arguments as the device entries without the stream, the same results bit for bit up to the host's libm exp (bf16:
// the *_bf16 entries' launches, their products by the grouped GEMM's host reference, so not bit for bit; bf16 = 2:
// the same with the products unrounded, which the float32 kernels' results must then match to float32 rounding).
void mlstm_chunkwise_forward_emulate(float* h, float* c_last, float* n_last, float* m_last, float* saved,
                                     const float* q, const float* k, const float* v, const float* i, const float* f,
                                     const float* c0, const float* n0, const float* m0, const MlstmDims& d,
                                     int64_t chunk, float eps, bool parallel_init, int bf16 = 0);
void mlstm_chunkwise_backward_emulate(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                                      float* dm0, const float* saved, const float* h, const float* dh,
                                      const float* dc_last, const float* dn_last, const float* q, const float* k,
                                      const float* v, const float* i, const float* f, const MlstmDims& d,
                                      int64_t chunk, float eps, int bf16 = 0);
void mlstm_recurrent_forward_emulate(float* h, float* c_last, float* n_last, float* m_last, float* saved,
                                     const float* q, const float* k, const float* v, const float* i, const float* f,
                                     const float* c0, const float* n0, const float* m0, const MlstmDims& d,
                                     float eps);
void mlstm_recurrent_backward_emulate(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                                      float* dm0, const float* saved, const float* dh, const float* dc_last,
                                      const float* dn_last, const float* q, const float* k, const float* v,
                                      const float* i, const float* f, const MlstmDims& d, float eps);
}  // namespace cuda
}  // namespace xlstm
// ---- end cuda-mlstm-block

// ---- bfloat16 weights: twin of bf16.cc [cuda-bf16-block]
// cuda/bf16.cu. Same names, argument order and semantics as csrc/kernels/bf16.h (W [out, in] and tables [V, e] as
// bfloat16 bits, float32 activations and accumulation) on device pointers plus a trailing `stream`; they only enqueue.
// *_emulate: host replays of the launches (bf16_linear's GEMV when rows <= 8, else its widen + GEMM path through the
// GEMMs' replay / CPU twin), counting writes per output element where `writes` is not null.
// bf16_gemv_coverage (host code): counts[r*out + o] = how many (block, warp, pass) write y[r, o] for the GEMV's launch
// (rows <= 8); returns the grid size.
#include <cstdint>
namespace xlstm {
namespace cuda {
void bf16_to_f32(float* out, const uint16_t* x, int64_t n, void* stream);
void bf16_linear(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in, int64_t out,
                 bool round_x, void* stream);
void bf16_linear_emulate(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                         int64_t out, bool round_x, int32_t* writes);
int64_t bf16_gemv_coverage(int64_t rows, int64_t in, int64_t out, int32_t* counts);
}  // namespace cuda
namespace bf16_math {
struct GemvParts;  // kernels/bf16_math.h
}
namespace cuda {
// The GEMV (rows <= 8) over a projection kept as separate weight buffers: y [rows, Σ out_i] with part i's outputs in
// columns start[i] .. start[i+1) (bf16_math::GemvParts), one launch; the same per-output arithmetic as bf16_linear's.
// No CPU twin (the CPU sessions pack their weights): the host replay and, in a CPU-only build, the CPU bf16_linear per
// part stand in under emulation.
void bf16_linear_parts(float* y, const float* x, const bf16_math::GemvParts& parts, int64_t rows, int64_t in,
                       bool round_x, void* stream);
void bf16_linear_parts_emulate(float* y, const float* x, const bf16_math::GemvParts& parts, int64_t rows, int64_t in,
                               bool round_x, int32_t* writes);
template <class I>
void bf16_embedding(float* out, const uint16_t* weight, const I* indices, int64_t n, int64_t e, void* stream);
template <class I>
void bf16_embedding_emulate(float* out, const uint16_t* weight, const I* indices, int64_t n, int64_t e, int32_t* writes);
}  // namespace cuda
}  // namespace xlstm
// ---- end cuda-bf16-block
