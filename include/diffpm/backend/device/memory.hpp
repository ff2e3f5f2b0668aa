/// \file
/// \brief Device memory: pooled allocation, an owning buffer, host <-> device copies, and the
/// pre-flight check that a run fits before anything is allocated.
///
/// CUDA: allocations are stream-ordered (cudaMallocAsync on the default stream) from the
/// device's default memory pool, whose release threshold is raised to "never" on first use, so
/// freed blocks stay in the pool and a step that frees and reallocates its scratch meshes asks
/// the driver for nothing. OMP emulation: 64-byte aligned host memory (FFTW's SIMD alignment,
/// so FFTW can stand in for cuFFT on device buffers).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "diffpm/backend/device/system.hpp"
#include "diffpm/core/error.hpp"

#if defined(DIFFPM_DEVICE_CUDA)
#include <cuda_runtime.h>
#endif

namespace diffpm::device {

#if defined(DIFFPM_DEVICE_CUDA)
/// Throws DeviceError naming `what` if a CUDA runtime call failed.
inline void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw DeviceError(std::string(what) + " failed: " + cudaGetErrorName(e) + " (" +
                      cudaGetErrorString(e) + ")");
  }
}
#endif

/// Whether a device can run the device code path: a CUDA build needs at least one GPU; the OMP
/// emulation always can.
inline bool available() {
#if defined(DIFFPM_DEVICE_CUDA)
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
#else
  return true;
#endif
}

/// Throws DeviceError with a clear message if available() is false (`who`: the caller, e.g.
/// "diffpm-sim --backend cuda").
inline void require_device(const char* who) {
#if defined(DIFFPM_DEVICE_CUDA)
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    throw DeviceError(std::string(who) + ": no CUDA device is available (" +
                      (e != cudaSuccess ? std::string(cudaGetErrorString(e))
                                        : std::string("the driver reports 0 devices")) +
                      "); run with the CPU backend instead");
  }
#else
  (void)who;
#endif
}

/// Bytes free and in total on the device (CUDA: cudaMemGetInfo; OMP emulation: the host's
/// MemAvailable and MemTotal from /proc/meminfo, or 0 where that file does not exist).
struct MemoryInfo {
  std::size_t free = 0;
  std::size_t total = 0;
};

inline MemoryInfo memory_info() {
  MemoryInfo m;
#if defined(DIFFPM_DEVICE_CUDA)
  check_cuda(cudaMemGetInfo(&m.free, &m.total), "cudaMemGetInfo");
#else
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::size_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") m.free = kib * 1024;
    if (key == "MemTotal:") m.total = kib * 1024;
  }
#endif
  return m;
}

inline std::string format_bytes(std::size_t bytes) {
  std::ostringstream s;
  s.precision(3);
  s << double(bytes) / (1024.0 * 1024.0 * 1024.0) << " GiB";
  return s.str();
}

/// Throws OutOfMemory, before anything is allocated, if `bytes` exceed what the device has
/// free. `what` names the run and `hint` the settings that would shrink it.
inline void require_memory(std::size_t bytes, const std::string& what, const std::string& hint) {
  const MemoryInfo m = memory_info();
  if (m.total == 0) return;  // nothing known: let the allocation decide
  if (bytes > m.free) {
    throw OutOfMemory(what + " needs " + format_bytes(bytes) + " of device memory (" +
                      system_name() + "), but " + format_bytes(m.free) + " of " +
                      format_bytes(m.total) + " are free; " + hint);
  }
}

namespace detail {
#if defined(DIFFPM_DEVICE_CUDA)
/// Raise the default pool's release threshold once, so freed memory stays with the process.
inline void keep_pool_memory() {
  static const bool done = [] {
    int device = 0;
    check_cuda(cudaGetDevice(&device), "cudaGetDevice");
    cudaMemPool_t pool;
    check_cuda(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
    std::uint64_t threshold = UINT64_MAX;
    check_cuda(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold),
               "cudaMemPoolSetAttribute(release threshold)");
    return true;
  }();
  (void)done;
}
#endif
}  // namespace detail

namespace detail {
inline void* allocate_uncounted_impl(std::size_t bytes) {
#if defined(DIFFPM_DEVICE_CUDA)
  detail::keep_pool_memory();
  void* p = nullptr;
  const cudaError_t e = cudaMallocAsync(&p, bytes, 0);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    throw OutOfMemory("device allocation of " + format_bytes(bytes) +
                      " failed (free: " + format_bytes(memory_info().free) + ")");
  }
  check_cuda(e, "cudaMallocAsync");
  return p;
#else
  const std::size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw OutOfMemory("allocation of " + format_bytes(bytes) + " failed");
  return p;
#endif
}

inline void deallocate_uncounted_impl(void* p) noexcept {
#if defined(DIFFPM_DEVICE_CUDA)
  (void)cudaFreeAsync(p, 0);
#else
  std::free(p);
#endif
}
}  // namespace detail

namespace detail {
/// Bytes that allocate() has handed out and not yet taken back, and their high-water mark
/// (what diffpm itself holds; FFT libraries' work areas come on top). One counter per process.
struct Usage {
  std::atomic<std::size_t> current{0};
  std::atomic<std::size_t> peak{0};
  std::mutex sizes_mutex;
  std::unordered_map<const void*, std::size_t> sizes;
};
inline Usage& usage() {
  static Usage u;
  return u;
}
inline void count_allocation(const void* p, std::size_t bytes) {
  Usage& u = usage();
  {
    std::lock_guard<std::mutex> lock(u.sizes_mutex);
    u.sizes[p] = bytes;
  }
  const std::size_t now = u.current.fetch_add(bytes) + bytes;
  std::size_t peak = u.peak.load();
  while (now > peak && !u.peak.compare_exchange_weak(peak, now)) {
  }
}
inline void count_deallocation(const void* p) {
  Usage& u = usage();
  std::size_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(u.sizes_mutex);
    const auto it = u.sizes.find(p);
    if (it == u.sizes.end()) return;
    bytes = it->second;
    u.sizes.erase(it);
  }
  u.current.fetch_sub(bytes);
}
}  // namespace detail

/// Device memory diffpm holds now, and the most it has held since the last reset_peak_bytes()
/// (allocations through allocate() only: cuFFT's work areas come on top).
inline std::size_t allocated_bytes() { return detail::usage().current.load(); }
inline std::size_t peak_allocated_bytes() { return detail::usage().peak.load(); }
inline void reset_peak_bytes() { detail::usage().peak.store(detail::usage().current.load()); }

/// `bytes` of device memory (64-byte aligned or better); throws OutOfMemory if there are not.
inline void* allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = detail::allocate_uncounted_impl(bytes);
  detail::count_allocation(p, bytes);
  return p;
}

inline void deallocate(void* p) noexcept {
  if (!p) return;
  detail::count_deallocation(p);
  detail::deallocate_uncounted_impl(p);
}

/// Copies between host and device memory (either direction; device to device too). Returns
/// when the copy is complete.
inline void copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
#if defined(DIFFPM_DEVICE_CUDA)
  check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), "cudaMemcpy");
#else
  std::memcpy(dst, src, bytes);
#endif
}

/// Sets `bytes` bytes of device memory to zero.
inline void zero_bytes(void* dst, std::size_t bytes) {
  if (bytes == 0) return;
#if defined(DIFFPM_DEVICE_CUDA)
  check_cuda(cudaMemsetAsync(dst, 0, bytes, 0), "cudaMemsetAsync");
#else
  std::memset(dst, 0, bytes);
#endif
}

/// Waits for the device's queued work (a no-op in the emulation, where every call is blocking).
inline void synchronize() {
#if defined(DIFFPM_DEVICE_CUDA)
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
#endif
}

/// An owning array of `size` T in device memory (uninitialised). Move-only.
template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t size)
      : data_(static_cast<T*>(allocate(size * sizeof(T)))), size_(size) {}
  /// A device copy of host values (a std::vector, mesh::AlignedVector, ...: data() and size()).
  template <class Container, class = decltype(std::declval<const Container&>().data())>
  explicit Buffer(const Container& host) : Buffer(host.size()) {
    upload(host.data());
  }
  Buffer(Buffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(o.size_) {
    o.size_ = 0;
  }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      deallocate(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { deallocate(data_); }

  T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void upload(const T* host) { device::copy(data_, host, size_ * sizeof(T)); }
  void download(T* host) const { device::copy(host, data_, size_ * sizeof(T)); }
  std::vector<T> to_host() const {
    std::vector<T> v(size_);
    download(v.data());
    return v;
  }
  void zero() { device::zero_bytes(data_, size_ * sizeof(T)); }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace diffpm::device
