/// \file
/// \brief Helpers that let one templated code path run on plain floats and on dual numbers.
#pragma once

#include <cmath>
#include <type_traits>

namespace diffpm {

/// The plain value of a scalar: the number itself for float/double, the value part of a dual
/// number (anything with a `.value()` member, e.g. Eigen::AutoDiffScalar). Used wherever a
/// decision must not depend on derivatives: table look-ups, branch choices, error checks.
template <class T>
constexpr double value_of(const T& x) {
  if constexpr (std::is_arithmetic_v<T>) {
    return static_cast<double>(x);
  } else {
    return value_of(x.value());
  }
}

/// True when the value part is finite (derivative parts are not inspected).
template <class T>
bool is_finite_value(const T& x) {
  return std::isfinite(value_of(x));
}

}  // namespace diffpm
