/// \file
/// \brief The device backend's launch primitives (backend/cpu/parallel.hpp gives the contract):
/// Thrust algorithms over a counting range, on the device system of this build.
///
/// f must be callable on the device: a DIFFPM_HOST_DEVICE functor or lambda (nvcc needs
/// --extended-lambda for the latter; the diffpm::device target adds it) that captures by value
/// and touches only device memory.
#pragma once

#include <thrust/count.h>
#include <thrust/execution_policy.h>

#include <cstddef>
#include <vector>
#if defined(DIFFPM_DEVICE_CUDA)
#include <thrust/system/cuda/execution_policy.h>
#endif
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/reduce.h>

#include "diffpm/backend/cpu/parallel.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/system.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/host_device.hpp"

namespace diffpm::backend {

namespace device_detail {
#if defined(DIFFPM_DEVICE_CUDA)
/// Thrust's temporary storage (the scratch of its reductions) from the device memory pool
/// (device::allocate: cudaMallocAsync), instead of a cudaMalloc and cudaFree per call.
struct PoolAllocator {
  using value_type = char;
  char* allocate(std::ptrdiff_t n) { return static_cast<char*>(device::allocate(std::size_t(n))); }
  void deallocate(char* p, std::size_t) { device::deallocate(p); }
};
inline auto policy() {
  static PoolAllocator allocator;
  return thrust::cuda::par(allocator);
}
#else
inline auto policy() { return thrust::device; }
#endif
}  // namespace device_detail

template <class F>
void for_each_index(Cuda, std::size_t n, const F& f) {
  if (n == 0) return;
  thrust::for_each_n(device_detail::policy(), thrust::counting_iterator<std::size_t>(0), n, f);
}

// The reductions. On a GPU: Thrust (CUB). In the host emulation: the Cpu backend's OpenMP
// reductions, which return the same values (a maximum, a count and an integer sum do not depend
// on the order); Thrust's OpenMP reduce binds a reference to a null pointer internally, which
// UndefinedBehaviorSanitizer rejects, and that code never runs on a GPU anyway.

template <class R, class F>
R reduce_max(Cuda, std::size_t n, R init, const F& f) {
  if (n == 0) return init;
#if defined(DIFFPM_DEVICE_CUDA)
  const auto first = thrust::make_transform_iterator(thrust::counting_iterator<std::size_t>(0), f);
  return thrust::reduce(device_detail::policy(), first, first + n, init, thrust::maximum<R>());
#else
  return reduce_max(Cpu{}, n, init, f);
#endif
}

template <class F>
std::size_t count_if(Cuda, std::size_t n, const F& f) {
  if (n == 0) return 0;
#if defined(DIFFPM_DEVICE_CUDA)
  return std::size_t(thrust::count_if(device_detail::policy(),
                                      thrust::counting_iterator<std::size_t>(0),
                                      thrust::counting_iterator<std::size_t>(n), f));
#else
  return count_if(Cpu{}, n, f);
#endif
}

/// sum_i f(i) modulo 2^64 (unsigned 64-bit integers: any order gives the same value).
template <class F>
unsigned long long sum_u64(Cuda, std::size_t n, const F& f) {
  if (n == 0) return 0ull;
#if defined(DIFFPM_DEVICE_CUDA)
  const auto first = thrust::make_transform_iterator(thrust::counting_iterator<std::size_t>(0), f);
  return thrust::reduce(device_detail::policy(), first, first + n, 0ull,
                        thrust::plus<unsigned long long>());
#else
  return sum_u64(Cpu{}, n, f);
#endif
}

/// sum_i term(i) (doubles) in the order of core/deterministic_sum.hpp: blocks of `block`
/// indices, each summed in index order from zero (one device thread per block), then the block
/// sums added in block order on the host. The same grouping as the CPU's deterministic_sum, so
/// the same bits in the host emulation; on a GPU the compiler may fuse a product in term(i)
/// with the running sum, which changes the last bits (never the run-to-run reproducibility).
template <class F>
double deterministic_sum(Cuda, std::size_t n, const F& term, std::size_t block = 4096) {
  if (n == 0) return 0.0;
  const std::size_t n_blocks = (n + block - 1) / block;
  device::Buffer<double> partial(n_blocks);
  double* out = partial.data();
  for_each_index(Cuda{}, n_blocks, [=] DIFFPM_LAMBDA(std::size_t b) {
    double s = 0.0;
    const std::size_t end = (b + 1) * block < n ? (b + 1) * block : n;
    for (std::size_t i = b * block; i < end; ++i) s += term(i);
    out[b] = s;
  });
  const std::vector<double> host = partial.to_host();
  double total = 0.0;
  for (const double s : host) total += s;
  return total;
}

}  // namespace diffpm::backend
