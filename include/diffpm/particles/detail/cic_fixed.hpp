/// \file
/// \brief The per-particle terms of a fixed-point CIC deposit (core/fixed_point.hpp), shared by
/// the CPU paint and the device paint so that both sum the same integers.
#pragma once

#include <cstddef>

#include "diffpm/core/fixed_point.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/particles/detail/cic_weights.hpp"

namespace diffpm::particles::detail {

/// The 8 mesh points of a particle at x and the fixed-point terms of its deposit of `weight`:
/// term[c] = to_fixed(weight * W_c(x), scale), the product formed in T (weight first, as the
/// floating-point deposit did). A mesh point's value is from_fixed of the sum of its terms,
/// whatever the order in which they are added. G is CicGeometry<T> or StridedCicGeometry<T>.
template <class T, class G>
DIFFPM_HOST_DEVICE inline void deposit_terms(const T x[3], const G& g, T weight, double scale,
                                             std::size_t index[8],
                                             fixed_point::Accumulator term[8]) {
  T w[8];
  cic_stencil(x, g, index, w);
  for (int c = 0; c < 8; ++c) term[c] = fixed_point::to_fixed(double(T(weight * w[c])), scale);
}

}  // namespace diffpm::particles::detail
