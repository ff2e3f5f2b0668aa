/// \file
/// \brief The per-particle terms of a fixed-point CIC deposit (core/fixed_point.hpp), shared by
/// the CPU paint and the device paint so that both sum the same integers.
#pragma once

#include <cmath>
#include <cstddef>

#include "diffpm/core/fixed_point.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/particles/detail/cic_weights.hpp"

namespace diffpm::particles::detail {

/// The fixed-point term of a deposit of `weight` with CIC weight w at one mesh point:
/// fixed_point::term<Words>(weight * w, scale), the product formed in T (weight first, as the
/// floating-point deposit did) and then widened to double; Words = fixed_point::words<T> (two
/// for double, one for float). Every fixed-point CIC scatter forms its terms here.
template <class T>
DIFFPM_HOST_DEVICE inline fixed_point::Term fixed_term(T weight, T w, const fixed_point::Scale& s) {
  return fixed_point::term<fixed_point::words<T>>(double(T(weight * w)), s);
}

/// The bound on sum_c |term value_c| of a deposit of `weight` (the 8 CIC weights are in [0, 1]
/// and sum to 1): |weight|, in double. The scale of a scatter of n weights is
/// fixed_point::scale_for(n, max_p deposit_bound(weight_p), ...).
template <class T>
DIFFPM_HOST_DEVICE inline double deposit_bound(T weight) {
  return std::fabs(double(weight));
}

/// The 8 mesh points of a particle at x and the fixed-point terms of its deposit of `weight`:
/// term[c] = fixed_term(weight, W_c(x), scale). A mesh point's value is
/// fixed_point::value<words<T>> of the sums of its terms' words, whatever the order in which
/// they are added. G is CicGeometry<T> or StridedCicGeometry<T>.
template <class T, class G>
DIFFPM_HOST_DEVICE inline void deposit_terms(const T x[3], const G& g, T weight,
                                             const fixed_point::Scale& scale, std::size_t index[8],
                                             fixed_point::Term term[8]) {
  T w[8];
  cic_stencil(x, g, index, w);
  for (int c = 0; c < 8; ++c) term[c] = fixed_term(weight, w[c], scale);
}

}  // namespace diffpm::particles::detail
