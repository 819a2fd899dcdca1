// CPU-only builds: the answers of cuda/cuda_api.h when the addon was compiled without a CUDA compiler.
// (With CUDA, cuda/*.cu define these and this file compiles to nothing.)
#ifndef XLSTM_WITH_CUDA
#include "cuda_api.h"
#include "host_emulation.h"

#include <atomic>
#include <cstring>

#include <stdexcept>  // gemm block

namespace xlstm {
namespace cuda {

bool compiled() { return false; }

// XLSTM_CUDA_EMULATE=1 gives one emulated device here too (cuda/host_emulation.h): device memory and copies work,
// and the device-buffer binding runs the CPU kernels.
int device_count(std::string* reason) {
  if (emu::enabled()) {
    if (reason) reason->clear();
    return 1;
  }
  if (reason) *reason = "this xlstm binary was built without CUDA (no CUDA compiler was found at build time)";
  return 0;
}

DeviceInfo device_info(int) {
  DeviceInfo d;
  if (emu::enabled()) {
    d.name = emu::device_name();
    d.major = 8;
    d.total_memory = emu::capacity();
    d.multiprocessors = 1;
  }
  return d;
}

// ---- gemm [gemm-block]: every entry throws (the binding turns it into a JS Error)
static void gemm_absent(const char* fn) {
  throw std::runtime_error(std::string(fn) + ": this xlstm binary was built without CUDA");
}
void gemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float, float*,
          int64_t, void*) {
  gemm_absent("cuda::gemm");
}
void gemm_batched(bool, bool, int64_t, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                  const float*, int64_t, int64_t, float, float*, int64_t, int64_t, void*) {
  gemm_absent("cuda::gemm_batched");
}
void gemm_batched_emulate(bool, bool, int64_t, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                          const float*, int64_t, int64_t, float, float*, int64_t, int64_t) {
  gemm_absent("cuda::gemm_batched_emulate");
}
void gemm_host(bool, bool, int64_t, int64_t, int64_t, float, const float*, const float*, float, float*) {
  gemm_absent("cuda::gemm_host");
}
int64_t gemm_tile_coverage(bool, bool, int64_t, int64_t, int64_t, int32_t*) {
  gemm_absent("cuda::gemm_tile_coverage");
  return 0;
}
void gemm_bf16_batched(bool, bool, int64_t, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                       const float*, int64_t, int64_t, float, float*, int64_t, int64_t, void*) {
  gemm_absent("cuda::gemm_bf16_batched");
}
void gemm_bf16_batched_emulate(bool, bool, int64_t, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                               const float*, int64_t, int64_t, float, float*, int64_t, int64_t) {
  gemm_absent("cuda::gemm_bf16_batched_emulate");
}
int64_t gemm_bf16_tile_coverage(bool, bool, int64_t, int64_t, int32_t*) {
  gemm_absent("cuda::gemm_bf16_tile_coverage");
  return 0;
}
void gemm_split_k_plan(int64_t, int64_t, int64_t, int64_t, bool, int64_t*, int64_t*) {
  gemm_absent("cuda::gemm_split_k_plan");
}
bool set_gemm_split_k(bool) {
  gemm_absent("cuda::set_gemm_split_k");
  return true;
}
bool set_gemm_f32_tiled(bool) {
  gemm_absent("cuda::set_gemm_f32_tiled");
  return false;
}
void gemm_bf16_tile(int64_t, int64_t, int64_t, int*, int*) { gemm_absent("cuda::gemm_bf16_tile"); }
bool set_gemm_bf16_wide(bool) {
  gemm_absent("cuda::set_gemm_bf16_wide");
  return false;
}
// ---- end gemm

}  // namespace cuda
}  // namespace xlstm
#endif

// ---- elementwise [elementwise-block]: every entry throws (the binding turns it into a JS Error)
#ifndef XLSTM_WITH_CUDA
#include <stdexcept>
#include <string>
namespace xlstm {
namespace cuda {
static void elementwise_absent(const char* fn) {
  throw std::runtime_error(std::string(fn) + ": this xlstm binary was built without CUDA");
}
void elementwise_unary(UnaryOp, float*, const float*, float, float, int64_t, void*) {
  elementwise_absent("cuda::elementwise_unary");
}
void elementwise_unary_backward(UnaryOp, float*, const float*, const float*, const float*, float, int64_t, void*) {
  elementwise_absent("cuda::elementwise_unary_backward");
}
void elementwise_binary(BinaryOp, float*, const float*, const float*, const BroadcastPlan&, void*) {
  elementwise_absent("cuda::elementwise_binary");
}
void elementwise_binary_backward(BinaryOp, float*, float*, const float*, const float*, const float*,
                                 const BroadcastPlan&, void*) {
  elementwise_absent("cuda::elementwise_binary_backward");
}
void elementwise_unary_host(UnaryOp, float*, const float*, float, float, int64_t) {
  elementwise_absent("cuda::elementwise_unary_host");
}
void elementwise_unary_backward_host(UnaryOp, float*, const float*, const float*, const float*, float, int64_t) {
  elementwise_absent("cuda::elementwise_unary_backward_host");
}
void elementwise_binary_host(BinaryOp, float*, const float*, int64_t, const float*, int64_t, const BroadcastPlan&) {
  elementwise_absent("cuda::elementwise_binary_host");
}
void elementwise_binary_backward_host(BinaryOp, float*, float*, const float*, int64_t, const float*, int64_t,
                                      const float*, const BroadcastPlan&) {
  elementwise_absent("cuda::elementwise_binary_backward_host");
}
}  // namespace cuda
}  // namespace xlstm
#endif
// ---- end elementwise

// ---- cuda-nn-block (CPU-only answers for the cuda-nn-block of cuda_api.h)
#ifndef XLSTM_WITH_CUDA
#include <stdexcept>
#include <string>
namespace xlstm {
namespace cuda {
[[noreturn]] static void nn_absent(const char* fn) {
  throw std::runtime_error(std::string(fn) + ": this xlstm binary was built without CUDA");
}
void layer_norm_forward(float*, float*, float*, const float*, const float*, const float*, int64_t, int64_t, int64_t,
                        float, bool, void*) {
  nn_absent("cuda::layer_norm_forward");
}
void layer_norm_backward(float*, float*, float*, const float*, const float*, const float*, const float*, const float*,
                         int64_t, int64_t, int64_t, bool, void*) {
  nn_absent("cuda::layer_norm_backward");
}
void layer_norm_forward_host(float*, float*, float*, const float*, const float*, const float*, int64_t, int64_t,
                             int64_t, float, bool) {
  nn_absent("cuda::layer_norm_forward_host");
}
void layer_norm_backward_host(float*, float*, float*, const float*, const float*, const float*, const float*,
                              const float*, int64_t, int64_t, int64_t, bool) {
  nn_absent("cuda::layer_norm_backward_host");
}
void layer_norm_forward_emulate(float*, float*, float*, const float*, const float*, const float*, int64_t, int64_t,
                                int64_t, float, bool, int32_t*) {
  nn_absent("cuda::layer_norm_forward_emulate");
}
void layer_norm_backward_emulate(float*, float*, float*, const float*, const float*, const float*, const float*,
                                 const float*, int64_t, int64_t, int64_t, bool, int32_t*) {
  nn_absent("cuda::layer_norm_backward_emulate");
}
void softmax_forward(float*, const float*, int64_t, int64_t, void*) { nn_absent("cuda::softmax_forward"); }
void log_softmax_forward(float*, const float*, int64_t, int64_t, void*) { nn_absent("cuda::log_softmax_forward"); }
void softmax_backward(float*, const float*, const float*, int64_t, int64_t, void*) {
  nn_absent("cuda::softmax_backward");
}
void log_softmax_backward(float*, const float*, const float*, int64_t, int64_t, void*) {
  nn_absent("cuda::log_softmax_backward");
}
void softmax_forward_host(float*, const float*, int64_t, int64_t) { nn_absent("cuda::softmax_forward_host"); }
void log_softmax_forward_host(float*, const float*, int64_t, int64_t) { nn_absent("cuda::log_softmax_forward_host"); }
void softmax_backward_host(float*, const float*, const float*, int64_t, int64_t) {
  nn_absent("cuda::softmax_backward_host");
}
void log_softmax_backward_host(float*, const float*, const float*, int64_t, int64_t) {
  nn_absent("cuda::log_softmax_backward_host");
}
void softmax_emulate(bool, float*, const float*, int64_t, int64_t, int32_t*) { nn_absent("cuda::softmax_emulate"); }
void softmax_backward_emulate(bool, float*, const float*, const float*, int64_t, int64_t, int32_t*) {
  nn_absent("cuda::softmax_backward_emulate");
}
template <class I>
void cross_entropy_forward(float*, float*, float*, const float*, const I*, int64_t, int64_t, int64_t, int64_t*, void*) {
  nn_absent("cuda::cross_entropy_forward");
}
template <class I>
void cross_entropy_backward(float*, const float*, const float*, const float*, const I*, const float*, int64_t, int64_t,
                            int64_t, void*) {
  nn_absent("cuda::cross_entropy_backward");
}
template <class I>
int64_t cross_entropy_forward_host(float*, float*, float*, const float*, const I*, int64_t, int64_t, int64_t) {
  nn_absent("cuda::cross_entropy_forward_host");
}
template <class I>
void cross_entropy_backward_host(float*, const float*, const float*, const float*, const I*, const float*, int64_t,
                                 int64_t, int64_t) {
  nn_absent("cuda::cross_entropy_backward_host");
}
template <class I>
int64_t cross_entropy_forward_emulate(float*, float*, float*, const float*, const I*, int64_t, int64_t, int64_t,
                                      int32_t*) {
  nn_absent("cuda::cross_entropy_forward_emulate");
}
template <class I>
void cross_entropy_backward_emulate(float*, const float*, const float*, const float*, const I*, const float*, int64_t,
                                    int64_t, int64_t, int32_t*) {
  nn_absent("cuda::cross_entropy_backward_emulate");
}
template <class I>
void embedding_forward(float*, const float*, const I*, int64_t, int64_t, void*) {
  nn_absent("cuda::embedding_forward");
}
template <class I>
void embedding_backward(float*, const float*, const I*, int64_t, int64_t, int64_t, void*) {
  nn_absent("cuda::embedding_backward");
}
template <class I>
void embedding_forward_host(float*, const float*, const I*, int64_t, int64_t, int64_t) {
  nn_absent("cuda::embedding_forward_host");
}
template <class I>
void embedding_backward_host(float*, const float*, const I*, int64_t, int64_t, int64_t) {
  nn_absent("cuda::embedding_backward_host");
}
template <class I>
void embedding_forward_emulate(float*, const float*, const I*, int64_t, int64_t, int32_t*) {
  nn_absent("cuda::embedding_forward_emulate");
}
template <class I>
void embedding_backward_emulate(float*, const float*, const I*, int64_t, int64_t, int64_t, int32_t*) {
  nn_absent("cuda::embedding_backward_emulate");
}
#define XLSTM_NN_ABSENT_INSTANTIATE(I)                                                                               \
  template void cross_entropy_forward<I>(float*, float*, float*, const float*, const I*, int64_t, int64_t, int64_t,  \
                                         int64_t*, void*);                                                           \
  template void cross_entropy_backward<I>(float*, const float*, const float*, const float*, const I*, const float*,  \
                                          int64_t, int64_t, int64_t, void*);                                         \
  template int64_t cross_entropy_forward_host<I>(float*, float*, float*, const float*, const I*, int64_t, int64_t,   \
                                                 int64_t);                                                           \
  template void cross_entropy_backward_host<I>(float*, const float*, const float*, const float*, const I*,           \
                                               const float*, int64_t, int64_t, int64_t);                             \
  template int64_t cross_entropy_forward_emulate<I>(float*, float*, float*, const float*, const I*, int64_t,         \
                                                    int64_t, int64_t, int32_t*);                                     \
  template void cross_entropy_backward_emulate<I>(float*, const float*, const float*, const float*, const I*,        \
                                                  const float*, int64_t, int64_t, int64_t, int32_t*);                \
  template void embedding_forward<I>(float*, const float*, const I*, int64_t, int64_t, void*);                       \
  template void embedding_backward<I>(float*, const float*, const I*, int64_t, int64_t, int64_t, void*);             \
  template void embedding_forward_host<I>(float*, const float*, const I*, int64_t, int64_t, int64_t);                \
  template void embedding_backward_host<I>(float*, const float*, const I*, int64_t, int64_t, int64_t);               \
  template void embedding_forward_emulate<I>(float*, const float*, const I*, int64_t, int64_t, int32_t*);            \
  template void embedding_backward_emulate<I>(float*, const float*, const I*, int64_t, int64_t, int64_t, int32_t*);
XLSTM_NN_ABSENT_INSTANTIATE(int32_t)
XLSTM_NN_ABSENT_INSTANTIATE(int64_t)
#undef XLSTM_NN_ABSENT_INSTANTIATE
}  // namespace cuda
}  // namespace xlstm
#endif
// ---- end cuda-nn-block

// ---- cuda-misc-block (CPU-only answers for the cuda-misc-block of cuda_api.h)
#ifndef XLSTM_WITH_CUDA
#include <stdexcept>
#include <string>
namespace xlstm {
namespace cuda {
[[noreturn]] static void misc_absent(const char* fn) {
  throw std::runtime_error(std::string(fn) + ": this xlstm binary was built without CUDA");
}
void reduce_axes(ReduceOp, float*, int64_t*, const float*, int, const int64_t*, const uint8_t*, void*) {
  misc_absent("cuda::reduce_axes");
}
void reduce_axes_backward(ReduceOp, float*, const float*, const int64_t*, int, const int64_t*, const uint8_t*, void*) {
  misc_absent("cuda::reduce_axes_backward");
}
void sum_all(double*, const float*, int64_t, void*) { misc_absent("cuda::sum_all"); }
void reduce_axes_host(ReduceOp, float*, int64_t*, const float*, int, const int64_t*, const uint8_t*) {
  misc_absent("cuda::reduce_axes_host");
}
void reduce_axes_backward_host(ReduceOp, float*, const float*, const int64_t*, int, const int64_t*, const uint8_t*) {
  misc_absent("cuda::reduce_axes_backward_host");
}
double sum_all_host(const float*, int64_t) { misc_absent("cuda::sum_all_host"); }
int64_t reduce_coverage(int, const int64_t*, const uint8_t*, int32_t*, int*, int64_t*) {
  misc_absent("cuda::reduce_coverage");
}
int64_t sum_pass_coverage(int64_t, int32_t*) { misc_absent("cuda::sum_pass_coverage"); }
void reduce_axes_emulate(ReduceOp, float*, int64_t*, const float*, int, const int64_t*, const uint8_t*, int32_t*) {
  misc_absent("cuda::reduce_axes_emulate");
}
void reduce_axes_backward_emulate(ReduceOp, float*, const float*, const int64_t*, int, const int64_t*, const uint8_t*,
                                  int32_t*) {
  misc_absent("cuda::reduce_axes_backward_emulate");
}
void causal_conv1d_forward(float*, const float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t,
                           void*) {
  misc_absent("cuda::causal_conv1d_forward");
}
void causal_conv1d_backward(float*, float*, float*, const float*, const float*, const float*, int64_t, int64_t,
                            int64_t, int64_t, void*) {
  misc_absent("cuda::causal_conv1d_backward");
}
void causal_conv1d_forward_host(float*, const float*, const float*, const float*, int64_t, int64_t, int64_t,
                                int64_t) {
  misc_absent("cuda::causal_conv1d_forward_host");
}
void causal_conv1d_backward_host(float*, float*, float*, const float*, const float*, const float*, int64_t, int64_t,
                                 int64_t, int64_t) {
  misc_absent("cuda::causal_conv1d_backward_host");
}
int64_t causal_conv1d_coverage(int64_t, int64_t, int64_t, int64_t, int32_t*, int32_t*, int32_t*) {
  misc_absent("cuda::causal_conv1d_coverage");
}
void causal_conv1d_forward_emulate(float*, const float*, const float*, const float*, int64_t, int64_t, int64_t,
                                   int64_t, int32_t*) {
  misc_absent("cuda::causal_conv1d_forward_emulate");
}
void causal_conv1d_backward_emulate(float*, float*, float*, const float*, const float*, const float*, int64_t, int64_t,
                                    int64_t, int64_t, int32_t*) {
  misc_absent("cuda::causal_conv1d_backward_emulate");
}
void dropout_forward(float*, uint8_t*, const float*, int64_t, double, uint32_t, uint32_t, void*) {
  misc_absent("cuda::dropout_forward");
}
void dropout_backward(float*, const float*, const uint8_t*, int64_t, float, void*) {
  misc_absent("cuda::dropout_backward");
}
void dropout_forward_host(float*, uint8_t*, const float*, int64_t, double, uint32_t, uint32_t) {
  misc_absent("cuda::dropout_forward_host");
}
void dropout_backward_host(float*, const float*, const uint8_t*, int64_t, float) {
  misc_absent("cuda::dropout_backward_host");
}
void adamw_step(float*, float*, float*, const float*, int64_t, double, double, double, double, double, int64_t,
                void*) {
  misc_absent("cuda::adamw_step");
}
void sum_squares(double*, const float*, int64_t, void*) { misc_absent("cuda::sum_squares"); }
void scale_inplace(float*, int64_t, float, void*) { misc_absent("cuda::scale_inplace"); }
void adamw_step_host(float*, float*, float*, const float*, int64_t, double, double, double, double, double,
                     int64_t) {
  misc_absent("cuda::adamw_step_host");
}
double sum_squares_host(const float*, int64_t) { misc_absent("cuda::sum_squares_host"); }
void scale_inplace_host(float*, int64_t, float) { misc_absent("cuda::scale_inplace_host"); }
void permute_copy(void*, const void*, int, const int64_t*, const int64_t*, int, void*) {
  misc_absent("cuda::permute_copy");
}
void permute_copy_host(void*, const void*, int, const int64_t*, const int64_t*, int) {
  misc_absent("cuda::permute_copy_host");
}
int64_t permute_coverage(const int64_t*, const int64_t*, int, int32_t*) { misc_absent("cuda::permute_coverage"); }
}  // namespace cuda
}  // namespace xlstm
#endif
// ---- end cuda-misc-block

// ---- memory-block (CPU-only answers for the memory-block of cuda_api.h)
#ifndef XLSTM_WITH_CUDA
namespace xlstm {
namespace cuda {
static void memory_absent(const char* fn) {
  throw std::runtime_error(std::string(fn) + ": this xlstm binary was built without CUDA");
}
// Each works under host emulation and throws otherwise.
bool emulated() { return emu::enabled(); }
void* stream() { return nullptr; }
void* device_malloc(size_t bytes) {
  if (!emu::enabled()) memory_absent("cuda::device_malloc");
  return emu::device_malloc(bytes);
}
void device_free(void* p) {
  if (!emu::enabled()) memory_absent("cuda::device_free");
  emu::device_free(p);
}
void copy_to_device(void* dst, const void* src, size_t bytes) {
  if (!emu::enabled()) memory_absent("cuda::copy_to_device");
  if (bytes) std::memcpy(dst, src, bytes);
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  if (!emu::enabled()) memory_absent("cuda::copy_to_host");
  if (bytes) std::memcpy(dst, src, bytes);
}
void copy_on_device(void* dst, const void* src, size_t bytes) {
  if (!emu::enabled()) memory_absent("cuda::copy_on_device");
  if (bytes) std::memmove(dst, src, bytes);
}
void copy_2d(void* dst, size_t dp, const void* src, size_t sp, size_t w, size_t h) {
  if (!emu::enabled()) memory_absent("cuda::copy_2d");
  emu::copy_2d(dst, dp, src, sp, w, h);
}
void fill_zero(void* dst, size_t bytes) {
  if (!emu::enabled()) memory_absent("cuda::fill_zero");
  if (bytes) std::memset(dst, 0, bytes);
}
void synchronize() {
  if (!emu::enabled()) memory_absent("cuda::synchronize");
}
MemoryStats memory_stats() {
  if (!emu::enabled()) memory_absent("cuda::memory_stats");
  MemoryStats m;
  m.allocator = emu::allocator().stats();
  m.device_free_bytes = static_cast<int64_t>(emu::free_bytes());
  m.device_total_bytes = static_cast<int64_t>(emu::capacity());
  return m;
}
void empty_cache() {
  if (!emu::enabled()) memory_absent("cuda::empty_cache");
  emu::allocator().empty_cache();
}
void* graph_capture_launch(std::function<void()> enqueue, std::string* why) {
  if (!emu::enabled()) memory_absent("cuda::graph_capture_launch");
  return emu::graph_capture_launch(std::move(enqueue), why);
}
void emulate_refuse_captures(int n, bool after_run) {
  if (!emu::enabled()) memory_absent("cuda::emulate_refuse_captures");
  emu::refuse_after_run() = after_run;
  emu::refused_captures() = n;
}
void graph_launch(void* g) {
  if (!emu::enabled()) memory_absent("cuda::graph_launch");
  emu::graph_launch(g);
}
void graph_free(void* g) {
  if (g) emu::graph_free(g);
}
static std::atomic<bool> g_session_graphs{false};
bool set_session_graphs(bool on) { return g_session_graphs.exchange(on); }
bool session_graphs() { return g_session_graphs.load(); }
uint64_t kernel_settings_generation() { return 0; }  // (the kernel settings' setters throw here)
void kernel_settings_changed() {}
}  // namespace cuda
}  // namespace xlstm
#endif
// ---- end memory-block

// ---- cuda-recurrent-block (CPU-only answers for the cuda-recurrent-block of cuda_api.h)
#ifndef XLSTM_WITH_CUDA
namespace xlstm {
namespace cuda {
[[noreturn]] static void recurrent_absent(const char* fn) {
  throw std::runtime_error(std::string(fn) + ": this xlstm binary was built without CUDA");
}
void slstm_forward(float*, float*, float*, const float*, const float*, const float*, const float*,
                   const RecurrentDims&, void*) {
  recurrent_absent("cuda::slstm_forward");
}
void slstm_backward(float*, float*, float*, float*, const float*, const float*, const float*, const float*,
                    const float*, const float*, const RecurrentDims&, bool, void*) {
  recurrent_absent("cuda::slstm_backward");
}
void lstm_forward(float*, float*, float*, const float*, const float*, const float*, const float*,
                  const RecurrentDims&, void*) {
  recurrent_absent("cuda::lstm_forward");
}
void lstm_backward(float*, float*, float*, float*, const float*, const float*, const float*, const float*,
                   const float*, const float*, const RecurrentDims&, void*) {
  recurrent_absent("cuda::lstm_backward");
}
void slstm_forward_bf16(float*, float*, float*, const float*, const float*, const float*, const float*,
                        const RecurrentDims&, void*) {
  recurrent_absent("cuda::slstm_forward_bf16");
}
void slstm_backward_bf16(float*, float*, float*, float*, const float*, const float*, const float*, const float*,
                         const float*, const float*, const RecurrentDims&, bool, void*) {
  recurrent_absent("cuda::slstm_backward_bf16");
}
void lstm_forward_bf16(float*, float*, float*, const float*, const float*, const float*, const float*,
                       const RecurrentDims&, void*) {
  recurrent_absent("cuda::lstm_forward_bf16");
}
void lstm_backward_bf16(float*, float*, float*, float*, const float*, const float*, const float*, const float*,
                        const float*, const float*, const RecurrentDims&, void*) {
  recurrent_absent("cuda::lstm_backward_bf16");
}
void slstm_forward_host(float*, float*, float*, const float*, const float*, const float*, const float*,
                        const RecurrentDims&, bool) {
  recurrent_absent("cuda::slstm_forward_host");
}
void slstm_backward_host(float*, float*, float*, float*, const float*, const float*, const float*, const float*,
                         const float*, const float*, const RecurrentDims&, bool, bool) {
  recurrent_absent("cuda::slstm_backward_host");
}
void lstm_forward_host(float*, float*, float*, const float*, const float*, const float*, const float*,
                       const RecurrentDims&, bool) {
  recurrent_absent("cuda::lstm_forward_host");
}
void lstm_backward_host(float*, float*, float*, float*, const float*, const float*, const float*, const float*,
                        const float*, const float*, const RecurrentDims&, bool) {
  recurrent_absent("cuda::lstm_backward_host");
}
void slstm_forward_emulate(float*, float*, float*, const float*, const float*, const float*, const float*,
                           const RecurrentDims&, bool) {
  recurrent_absent("cuda::slstm_forward_emulate");
}
void slstm_backward_emulate(float*, float*, float*, float*, const float*, const float*, const float*, const float*,
                            const float*, const float*, const RecurrentDims&, bool, bool) {
  recurrent_absent("cuda::slstm_backward_emulate");
}
void lstm_forward_emulate(float*, float*, float*, const float*, const float*, const float*, const float*,
                          const RecurrentDims&, bool) {
  recurrent_absent("cuda::lstm_forward_emulate");
}
void lstm_backward_emulate(float*, float*, float*, float*, const float*, const float*, const float*, const float*,
                           const float*, const float*, const RecurrentDims&, bool) {
  recurrent_absent("cuda::lstm_backward_emulate");
}
int64_t recurrent_coverage(bool, const RecurrentDims&, int32_t*) { recurrent_absent("cuda::recurrent_coverage"); }
int set_recurrent_launch(int) {
  throw std::runtime_error("cuda::set_recurrent_launch: this xlstm binary was built without CUDA");
}
int64_t set_recurrent_split_blocks(int64_t) { recurrent_absent("cuda::set_recurrent_split_blocks"); }
bool recurrent_emulated_plan(const RecurrentDims&, bool, bool, int64_t*, int64_t*, int64_t*, bool*) {
  recurrent_absent("cuda::recurrent_emulated_plan");
}
int set_recurrent_exchange(int) { recurrent_absent("cuda::set_recurrent_exchange"); }
bool set_recurrent_autotune(bool) { recurrent_absent("cuda::set_recurrent_autotune"); }
std::vector<std::pair<int64_t, int>> recurrent_tune_candidates_emulated(const RecurrentDims&, bool, bool) {
  recurrent_absent("cuda::recurrent_tune_candidates_emulated");
}
bool recurrent_tuned(const RecurrentDims&, bool, bool, bool, int64_t*, int*) { return false; }
int64_t recurrent_wmma_errors(const RecurrentDims&) { recurrent_absent("cuda::recurrent_wmma_errors"); }
}  // namespace cuda
}  // namespace xlstm
#endif
// ---- end cuda-recurrent-block

// ---- cuda-mlstm-block (CPU-only answers for the cuda-mlstm-block of cuda_api.h)
#ifndef XLSTM_WITH_CUDA
namespace xlstm {
namespace cuda {
static void mlstm_absent(const char* fn) {
  throw std::runtime_error(std::string(fn) + ": this xlstm binary was built without CUDA");
}
void mlstm_chunkwise_forward(float*, float*, float*, float*, float*, const float*, const float*, const float*,
                             const float*, const float*, const float*, const float*, const float*, const MlstmDims&,
                             int64_t, float, bool, void*) {
  mlstm_absent("cuda::mlstm_chunkwise_forward");
}
void mlstm_chunkwise_backward(float*, float*, float*, float*, float*, float*, float*, float*, const float*,
                              const float*, const float*, const float*, const float*, const float*, const float*,
                              const float*, const float*, const float*, const MlstmDims&, int64_t, float, void*) {
  mlstm_absent("cuda::mlstm_chunkwise_backward");
}
void mlstm_chunkwise_forward_bf16(float*, float*, float*, float*, float*, const float*, const float*, const float*,
                                  const float*, const float*, const float*, const float*, const float*,
                                  const MlstmDims&, int64_t, float, bool, void*) {
  mlstm_absent("cuda::mlstm_chunkwise_forward_bf16");
}
void mlstm_chunkwise_backward_bf16(float*, float*, float*, float*, float*, float*, float*, float*, const float*,
                                   const float*, const float*, const float*, const float*, const float*,
                                   const float*, const float*, const float*, const float*, const MlstmDims&, int64_t,
                                   float, void*) {
  mlstm_absent("cuda::mlstm_chunkwise_backward_bf16");
}
void mlstm_recurrent_forward(float*, float*, float*, float*, float*, const float*, const float*, const float*,
                             const float*, const float*, const float*, const float*, const float*, const MlstmDims&,
                             float, void*) {
  mlstm_absent("cuda::mlstm_recurrent_forward");
}
void mlstm_recurrent_backward(float*, float*, float*, float*, float*, float*, float*, float*, const float*,
                              const float*, const float*, const float*, const float*, const float*, const float*,
                              const float*, const float*, const MlstmDims&, float, void*) {
  mlstm_absent("cuda::mlstm_recurrent_backward");
}
void mlstm_chunkwise_forward_host(float*, float*, float*, float*, float*, const float*, const float*, const float*,
                                  const float*, const float*, const float*, const float*, const float*,
                                  const MlstmDims&, int64_t, float, bool, bool) {
  mlstm_absent("cuda::mlstm_chunkwise_forward_host");
}
void mlstm_chunkwise_backward_host(float*, float*, float*, float*, float*, float*, float*, float*, const float*,
                                   const float*, const float*, const float*, const float*, const float*,
                                   const float*, const float*, const float*, const float*, const MlstmDims&, int64_t,
                                   float, bool) {
  mlstm_absent("cuda::mlstm_chunkwise_backward_host");
}
void mlstm_recurrent_forward_host(float*, float*, float*, float*, float*, const float*, const float*, const float*,
                                  const float*, const float*, const float*, const float*, const float*,
                                  const MlstmDims&, float) {
  mlstm_absent("cuda::mlstm_recurrent_forward_host");
}
void mlstm_recurrent_backward_host(float*, float*, float*, float*, float*, float*, float*, float*, const float*,
                                   const float*, const float*, const float*, const float*, const float*,
                                   const float*, const float*, const MlstmDims&, float) {
  mlstm_absent("cuda::mlstm_recurrent_backward_host");
}
int64_t mlstm_coverage(const MlstmDims&, int64_t, int64_t*) {
  mlstm_absent("cuda::mlstm_coverage");
  return 0;
}
int set_mlstm_form(int) {
  mlstm_absent("cuda::set_mlstm_form");
  return 0;
}
int set_mlstm_intra(int) {
  mlstm_absent("cuda::set_mlstm_intra");
  return 0;
}
int set_mlstm_states(int) {
  mlstm_absent("cuda::set_mlstm_states");
  return 0;
}
void mlstm_chunkwise_forward_emulate(float*, float*, float*, float*, float*, const float*, const float*, const float*,
                                     const float*, const float*, const float*, const float*, const float*,
                                     const MlstmDims&, int64_t, float, bool, int) {
  mlstm_absent("cuda::mlstm_chunkwise_forward_emulate");
}
void mlstm_chunkwise_backward_emulate(float*, float*, float*, float*, float*, float*, float*, float*, const float*,
                                      const float*, const float*, const float*, const float*, const float*,
                                      const float*, const float*, const float*, const float*, const MlstmDims&,
                                      int64_t, float, int) {
  mlstm_absent("cuda::mlstm_chunkwise_backward_emulate");
}
void mlstm_recurrent_forward_emulate(float*, float*, float*, float*, float*, const float*, const float*, const float*,
                                     const float*, const float*, const float*, const float*, const float*,
                                     const MlstmDims&, float) {
  mlstm_absent("cuda::mlstm_recurrent_forward_emulate");
}
void mlstm_recurrent_backward_emulate(float*, float*, float*, float*, float*, float*, float*, float*, const float*,
                                      const float*, const float*, const float*, const float*, const float*,
                                      const float*, const float*, const float*, const MlstmDims&, float) {
  mlstm_absent("cuda::mlstm_recurrent_backward_emulate");
}
}  // namespace cuda
}  // namespace xlstm
#endif
// ---- end cuda-mlstm-block

// ---- cuda-bf16-block (CPU-only answers for the cuda-bf16-block of cuda_api.h)
#ifndef XLSTM_WITH_CUDA
namespace xlstm {
namespace cuda {
static void bf16_absent(const char* fn) {
  throw std::runtime_error(std::string(fn) + ": this xlstm binary was built without CUDA");
}
void bf16_to_f32(float*, const uint16_t*, int64_t, void*) { bf16_absent("cuda::bf16_to_f32"); }
void bf16_linear(float*, const float*, const uint16_t*, const float*, int64_t, int64_t, int64_t, bool, void*) {
  bf16_absent("cuda::bf16_linear");
}
void bf16_linear_emulate(float*, const float*, const uint16_t*, const float*, int64_t, int64_t, int64_t, bool, int32_t*) {
  bf16_absent("cuda::bf16_linear_emulate");
}
void bf16_linear_parts(float*, const float*, const bf16_math::GemvParts&, int64_t, int64_t, bool, void*) {
  bf16_absent("cuda::bf16_linear_parts");
}
void bf16_linear_parts_emulate(float*, const float*, const bf16_math::GemvParts&, int64_t, int64_t, bool, int32_t*) {
  bf16_absent("cuda::bf16_linear_parts_emulate");
}
int64_t bf16_gemv_coverage(int64_t, int64_t, int64_t, int32_t*) {
  bf16_absent("cuda::bf16_gemv_coverage");
  return 0;
}
template <class I>
void bf16_embedding(float*, const uint16_t*, const I*, int64_t, int64_t, void*) {
  bf16_absent("cuda::bf16_embedding");
}
template <class I>
void bf16_embedding_emulate(float*, const uint16_t*, const I*, int64_t, int64_t, int32_t*) {
  bf16_absent("cuda::bf16_embedding_emulate");
}
template void bf16_embedding<int32_t>(float*, const uint16_t*, const int32_t*, int64_t, int64_t, void*);
template void bf16_embedding<int64_t>(float*, const uint16_t*, const int64_t*, int64_t, int64_t, void*);
template void bf16_embedding_emulate<int32_t>(float*, const uint16_t*, const int32_t*, int64_t, int64_t, int32_t*);
template void bf16_embedding_emulate<int64_t>(float*, const uint16_t*, const int64_t*, int64_t, int64_t, int32_t*);
}  // namespace cuda
}  // namespace xlstm
#endif
// ---- end cuda-bf16-block
