/// \file
/// \brief Cubic Hermite interpolation on a uniform grid, with values and exact derivatives.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "diffpm/core/scalar.hpp"

namespace diffpm::cosmology::detail {

/// Uniform grid t_i = t_end - (n - i) dt, i = 0..n. The cosmology tables use t = ln a with
/// t_end = 0: counting nodes back from the end makes t_n = 0 and t_{n-1} = -dt exact, so a = 1
/// lands exactly on the last node and chi(a = 1) = 0, D1(a = 1) = 1 hold to the last bit.
struct UniformGrid {
  double t_end = 0.0;
  double dt = 1.0;
  int n = 0;  ///< number of intervals

  double at(int i) const { return t_end - (n - i) * dt; }
  double start() const { return at(0); }
  /// Index of the interval holding t (clamped to [0, n-1]).
  int interval(double t) const {
    const int i = n - 1 - static_cast<int>(std::floor((t_end - t) / dt));
    return std::clamp(i, 0, n - 1);
  }
};

/// Cubic Hermite interpolant through (t_i, y_i) with slopes m_i = dy/dt at the nodes.
/// With exact slopes its error is at most dt^4 / 384 max|y''''| (e.g. Burden & Faires,
/// "Numerical Analysis", Hermite interpolation error term), so tables of values and their
/// ODE-given derivatives interpolate to ~1e-10 at the spacings used here.
/// Evaluates in the scalar type of t, so a dual-number t gives the derivative with respect to t
/// too, while the interval is chosen on the value alone.
template <class T, class Tt>
T hermite(const UniformGrid& g, const std::vector<T>& y, const std::vector<T>& m, const Tt& t) {
  const int i = g.interval(value_of(t));
  const Tt s = (t - g.at(i)) / g.dt;
  const Tt s2 = s * s;
  const Tt s3 = s2 * s;
  const Tt h00 = 2.0 * s3 - 3.0 * s2 + 1.0;
  const Tt h10 = s3 - 2.0 * s2 + s;
  const Tt h01 = 3.0 * s2 - 2.0 * s3;
  const Tt h11 = s3 - s2;
  return T(h00 * y[i] + h01 * y[i + 1] + g.dt * (h10 * m[i] + h11 * m[i + 1]));
}

/// d/dt of the Hermite interpolant above.
template <class T, class Tt>
T hermite_slope(const UniformGrid& g, const std::vector<T>& y, const std::vector<T>& m,
                const Tt& t) {
  const int i = g.interval(value_of(t));
  const Tt s = (t - g.at(i)) / g.dt;
  const Tt s2 = s * s;
  const Tt d00 = 6.0 * s2 - 6.0 * s;
  const Tt d10 = 3.0 * s2 - 4.0 * s + 1.0;
  const Tt d11 = 3.0 * s2 - 2.0 * s;
  return T(d00 * (y[i] - y[i + 1]) / g.dt + d10 * m[i] + d11 * m[i + 1]);
}

/// Index i of the interval [t_i, t_{i+1}] of strictly increasing nodes t that holds x (clamped
/// to [0, n - 2], n = t.size() >= 2).
inline std::size_t interval(const std::vector<double>& t, double x) {
  const auto it = std::upper_bound(t.begin(), t.end(), x);
  const std::ptrdiff_t i = (it - t.begin()) - 1;
  return static_cast<std::size_t>(std::clamp<std::ptrdiff_t>(i, 0, std::ptrdiff_t(t.size()) - 2));
}

/// The cubic Hermite interpolant above on nodes t that need not be uniform (a user's table):
/// on [t_i, t_{i+1}] with h = t_{i+1} - t_i, the same basis in s = (x - t_i) / h; the error
/// bound is the same with dt the widest interval.
inline double hermite(const std::vector<double>& t, const std::vector<double>& y,
                      const std::vector<double>& m, double x) {
  const std::size_t i = interval(t, x);
  const double h = t[i + 1] - t[i];
  const double s = (x - t[i]) / h;
  const double s2 = s * s;
  const double s3 = s2 * s;
  const double h00 = 2.0 * s3 - 3.0 * s2 + 1.0;
  const double h10 = s3 - 2.0 * s2 + s;
  const double h01 = 3.0 * s2 - 2.0 * s3;
  const double h11 = s3 - s2;
  return h00 * y[i] + h01 * y[i + 1] + h * (h10 * m[i] + h11 * m[i + 1]);
}

/// d/dx of the non-uniform Hermite interpolant above.
inline double hermite_slope(const std::vector<double>& t, const std::vector<double>& y,
                            const std::vector<double>& m, double x) {
  const std::size_t i = interval(t, x);
  const double h = t[i + 1] - t[i];
  const double s = (x - t[i]) / h;
  const double s2 = s * s;
  const double d00 = 6.0 * s2 - 6.0 * s;
  const double d10 = 3.0 * s2 - 4.0 * s + 1.0;
  const double d11 = 3.0 * s2 - 2.0 * s;
  return d00 * (y[i] - y[i + 1]) / h + d10 * m[i] + d11 * m[i + 1];
}

}  // namespace diffpm::cosmology::detail
