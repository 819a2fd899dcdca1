// CUDA twin of csrc/kernels/permute.cc: strided copy that permutes dimensions, out[i_0..i_{n-1}] = in[...] with out
// dim d being in dim perm[d]; row-major, elements of 1, 2, 4 or 8 bytes, up to 16 dimensions (permute.h).
// One thread per output element (grid-stride; consecutive threads write consecutive outputs), its input offset
// from the __host__ __device__ map below, which permute_coverage() runs on the host to check that every input
// element is read exactly once and lands at the right place. Size-1 dimensions are dropped first (they do not
// move data), which keeps the per-element index loop short.
// Device entries enqueue on `stream` (null = default); *_host entries copy in, run, copy out, synchronise.
// Errors: std::invalid_argument for a bad element size or rank (as the CPU), std::runtime_error("<entry>: ...")
// for CUDA errors.
#include <cuda_runtime.h>

#include <stdexcept>

#include "cuda_api.h"
#include "cuda_host_util.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;

constexpr int kThreads = 256;

// Output shape and, per output dimension, the input stride (size-1 dimensions dropped).
struct PermutePlan {
  int nd = 0;
  int64_t total = 1;
  int64_t out_shape[16] = {};
  int64_t in_stride[16] = {};
};

PermutePlan make_plan(const int64_t* in_shape, const int64_t* perm, int ndim) {
  int64_t stride[16];
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    stride[d] = s;
    s *= in_shape[d];
  }
  PermutePlan p;
  p.total = s;
  for (int d = 0; d < ndim; ++d) {
    const int64_t size = in_shape[perm[d]];
    if (size == 1) continue;
    p.out_shape[p.nd] = size;
    p.in_stride[p.nd] = stride[perm[d]];
    ++p.nd;
  }
  return p;
}

// Input offset of output element i.
__host__ __device__ inline int64_t input_offset(const PermutePlan& p, int64_t i) {
  int64_t off = 0;
  for (int d = p.nd - 1; d >= 0; --d) {
    const int64_t c = i % p.out_shape[d];
    i /= p.out_shape[d];
    off += c * p.in_stride[d];
  }
  return off;
}

template <class T>
__global__ void permute_kernel(T* __restrict__ out, const T* __restrict__ in, PermutePlan p) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    out[i] = in[input_offset(p, i)];
}

void check_args(int elem_size, int ndim) {
  if (ndim < 0 || ndim > 16) throw std::invalid_argument("permute: at most 16 dimensions");
  if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8)
    throw std::invalid_argument("permute: element size must be 1, 2, 4 or 8 bytes");
}

}  // namespace

void permute_copy(void* out, const void* in, int elem_size, const int64_t* in_shape, const int64_t* perm, int ndim,
                  void* stream) {
  check_args(elem_size, ndim);
  const PermutePlan p = make_plan(in_shape, perm, ndim);
  if (p.total == 0) return;
  const cudaStream_t s = as_stream(stream);
  const unsigned g = grid_for(p.total, kThreads);
  switch (elem_size) {
    case 1: permute_kernel<<<g, kThreads, 0, s>>>(static_cast<uint8_t*>(out), static_cast<const uint8_t*>(in), p); break;
    case 2: permute_kernel<<<g, kThreads, 0, s>>>(static_cast<uint16_t*>(out), static_cast<const uint16_t*>(in), p); break;
    case 4: permute_kernel<<<g, kThreads, 0, s>>>(static_cast<uint32_t*>(out), static_cast<const uint32_t*>(in), p); break;
    default: permute_kernel<<<g, kThreads, 0, s>>>(static_cast<uint64_t*>(out), static_cast<const uint64_t*>(in), p); break;
  }
  launched("permute_copy");
}

void permute_copy_host(void* out, const void* in, int elem_size, const int64_t* in_shape, const int64_t* perm,
                       int ndim) {
  const char* entry = "permute_copy";
  check_args(elem_size, ndim);
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= in_shape[d];
  if (n == 0) return;
  const int64_t bytes = n * elem_size;
  DeviceBuffer<uint8_t> d_in(static_cast<const uint8_t*>(in), bytes, entry), d_out(bytes, entry);
  permute_copy(d_out.p, d_in.p, elem_size, in_shape, perm, ndim, nullptr);
  device_sync(entry);
  d_out.download(static_cast<uint8_t*>(out), entry);
}

int64_t permute_coverage(const int64_t* in_shape, const int64_t* perm, int ndim, int32_t* reads) {
  check_args(1, ndim);
  const PermutePlan p = make_plan(in_shape, perm, ndim);
  for (int64_t i = 0; i < p.total; ++i) reads[i] = 0;
  if (p.total == 0) return 0;
  // Independent reference: input offset of output element i from the full (unreduced) output index.
  auto reference = [&](int64_t i) {
    int64_t stride[16], s = 1, off = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      stride[d] = s;
      s *= in_shape[d];
    }
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t size = in_shape[perm[d]];
      off += (i % size) * stride[perm[d]];
      i /= size;
    }
    return off;
  };
  int64_t bad = 0;
  const int64_t threads = static_cast<int64_t>(grid_for(p.total, kThreads)) * kThreads;
  for (int64_t tid = 0; tid < threads; ++tid)
    for (int64_t i = tid; i < p.total; i += threads) {
      const int64_t off = input_offset(p, i);
      if (off < 0 || off >= p.total || off != reference(i)) ++bad;
      else ++reads[off];
    }
  return bad;
}

}  // namespace cuda
}  // namespace xlstm
