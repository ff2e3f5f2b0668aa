/// \file
/// \brief Forward-mode dual numbers for the few cosmological parameters.
///
/// The cosmology code is templated on its scalar type. With `T = double` it gives values; with
/// `T = Dual<N>` the same code carries N exact partial derivatives alongside each value. Fields
/// are never duals: they get hand-written reverse-mode adjoints, and the two meet in the scalar
/// coefficients (docs/design.md).
///
/// Dual<N> is Eigen's AutoDiffScalar with a fixed-size derivative vector. A hand-written dual
/// type (value plus std::array, no expression templates) was measured 1.6x slower on the
/// cosmology build (docs/benchmarks.md): Eigen's expression templates fuse a sum of products
/// into one vectorised pass over the derivatives instead of one temporary per operation.
/// Pitfalls of expression templates, for whoever extends the cosmology code: declare
/// intermediates as `T`, never `auto`; write pow(x, y) with a dual exponent as exp(y * log(x));
/// a default-constructed Dual has uninitialised derivatives, so start sums from `T(0.0)`.
#pragma once

#include <Eigen/Core>
#include <type_traits>
#include <unsupported/Eigen/AutoDiff>

namespace diffpm {

/// A number with N forward-mode derivative components.
template <int N>
using Dual = Eigen::AutoDiffScalar<Eigen::Matrix<double, N, 1>>;

/// A dual number with value `value` and unit derivative along `direction` (0 <= direction < N).
template <int N>
Dual<N> seed_dual(double value, int direction) {
  return Dual<N>(value, N, direction);
}

/// Derivative component i of a dual number; zero for plain numbers, so that code printing
/// derivatives is written once for both.
template <class T>
double derivative(const T& x, int i) {
  if constexpr (std::is_arithmetic_v<T>) {
    (void)x;
    (void)i;
    return 0.0;
  } else {
    return x.derivatives()[i];
  }
}

}  // namespace diffpm
