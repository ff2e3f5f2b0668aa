/// \file
/// \brief Sums over particles or cells whose bits do not depend on the thread count.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "diffpm/core/openmp.hpp"

namespace diffpm {

/// K sums over i in [0, n) of term(i) (a std::array<double, K>), with the same bits for any
/// thread count: [0, n) is cut into fixed blocks of `block` indices, each block summed in index
/// order, then the block sums added in block order. An OpenMP reduction(+) instead combines
/// the threads' partial sums in the order the threads finish, which changes from run to run
/// once three or more threads take part (observed: the PM force's dL/dOmega_m, a sum of terms of
/// both signs, changed between runs at 3 threads). term(i) is called once per i, in parallel across
/// blocks, and may write to what belongs to index i.
template <int K, class Term>
std::array<double, K> deterministic_sums(std::ptrdiff_t n, const Term& term,
                                         std::ptrdiff_t block = 4096) {
  const std::ptrdiff_t n_blocks = n > 0 ? (n + block - 1) / block : 0;
  std::vector<std::array<double, K>> partial(std::size_t(n_blocks), std::array<double, K>{});
  DIFFPM_OMP(omp parallel for schedule(static))
  for (std::ptrdiff_t b = 0; b < n_blocks; ++b) {
    std::array<double, K> s{};
    const std::ptrdiff_t end = std::min(n, (b + 1) * block);
    for (std::ptrdiff_t i = b * block; i < end; ++i) {
      const std::array<double, K> t = term(i);
      for (int k = 0; k < K; ++k) s[k] += t[k];
    }
    partial[std::size_t(b)] = s;
  }
  std::array<double, K> total{};
  for (const auto& s : partial)
    for (int k = 0; k < K; ++k) total[k] += s[k];
  return total;
}

/// One such sum: term(i) returns a double.
template <class Term>
double deterministic_sum(std::ptrdiff_t n, const Term& term, std::ptrdiff_t block = 4096) {
  return deterministic_sums<1>(
      n, [&](std::ptrdiff_t i) { return std::array<double, 1>{term(i)}; }, block)[0];
}

}  // namespace diffpm
