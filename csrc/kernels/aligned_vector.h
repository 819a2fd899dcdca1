// std::vector with 64-byte aligned storage (CPU kernels layer), for scratch that vector loops read a row at a time.
// Why: glibc serves large allocations from mmap at page + 16 bytes, so a plain std::vector<float>'s rows of 16 floats
// each straddle two cache lines and every 64-byte load is split in two. On a Sapphire Rapids core the sLSTM/LSTM step
// product ran ~10 % slower from such a buffer (147-153 vs 165-168 GFLOP/s, the same loop, 16 x 256 x 1024).
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace xlstm {

template <class T>
struct CacheAlignedAllocator {
  using value_type = T;
  static constexpr size_t kAlign = 64;
  CacheAlignedAllocator() = default;
  template <class U>
  CacheAlignedAllocator(const CacheAlignedAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T) - kAlign) throw std::bad_alloc();
    const size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;  // aligned_alloc wants a multiple
    void* p = std::aligned_alloc(kAlign, bytes == 0 ? kAlign : bytes);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { std::free(p); }
  template <class U>
  bool operator==(const CacheAlignedAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CacheAlignedAllocator<U>&) const noexcept { return false; }
};

using AlignedFloats = std::vector<float, CacheAlignedAllocator<float>>;

}  // namespace xlstm
