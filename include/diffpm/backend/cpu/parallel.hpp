/// \file
/// \brief The CPU backend's launch primitives: an OpenMP loop over an index range and three
/// order-free reductions (a maximum, a count, an integer sum).
///
/// Kernels written once for every backend call backend::for_each_index(backend, n, f),
/// backend::reduce_max(backend, n, f) and the like; this header gives the Cpu versions, and
/// backend/device/parallel.hpp the Cuda ones. f is a DIFFPM_HOST_DEVICE callable of the index.
#pragma once

#include <cstddef>

#include "diffpm/backend/tags.hpp"
#include "diffpm/core/openmp.hpp"

namespace diffpm::backend {

/// f(i) for i in [0, n), in parallel (static OpenMP schedule). The calls must be independent.
template <class F>
void for_each_index(Cpu, std::size_t n, const F& f) {
  const std::ptrdiff_t count = std::ptrdiff_t(n);
  DIFFPM_OMP(omp parallel for schedule(static))
  for (std::ptrdiff_t i = 0; i < count; ++i) f(std::size_t(i));
}

/// max(init, max_i f(i)) over i in [0, n). A maximum does not depend on the order of its terms,
/// so every backend returns the same value; f must not return NaN (callers test finiteness
/// separately: a maximum ignores or propagates NaN depending on the order).
template <class R, class F>
R reduce_max(Cpu, std::size_t n, R init, const F& f) {
  R result = init;
  const std::ptrdiff_t count = std::ptrdiff_t(n);
  DIFFPM_OMP(omp parallel for schedule(static) reduction(max : result))
  for (std::ptrdiff_t i = 0; i < count; ++i) {
    const R v = f(std::size_t(i));
    result = v > result ? v : result;
  }
  return result;
}

/// The number of i in [0, n) with f(i) true.
template <class F>
std::size_t count_if(Cpu, std::size_t n, const F& f) {
  std::size_t result = 0;
  const std::ptrdiff_t count = std::ptrdiff_t(n);
  DIFFPM_OMP(omp parallel for schedule(static) reduction(+ : result))
  for (std::ptrdiff_t i = 0; i < count; ++i) result += f(std::size_t(i)) ? 1 : 0;
  return result;
}

/// sum_i f(i) modulo 2^64 (unsigned 64-bit integers: any order gives the same value).
template <class F>
unsigned long long sum_u64(Cpu, std::size_t n, const F& f) {
  unsigned long long result = 0;
  const std::ptrdiff_t count = std::ptrdiff_t(n);
  DIFFPM_OMP(omp parallel for schedule(static) reduction(+ : result))
  for (std::ptrdiff_t i = 0; i < count; ++i) result += f(std::size_t(i));
  return result;
}

}  // namespace diffpm::backend
