/// \file
/// \brief A user's tabulated linear P(k) (e.g. from CLASS or CAMB), interpolated in log-log.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/detail/math.hpp"

namespace diffpm::cosmology {

/// P(k) at z = 0 given as a table of k (h/Mpc, strictly increasing, > 0) and P ((Mpc/h)^3, > 0).
/// Interpolated by a natural cubic spline in (ln k, ln P), which follows BAO wiggles sampled at
/// ~10 points per period to ~1e-4. Outside the table, ln P continues as a straight line with the
/// spline's end slope (a power law), as CCL does; a table from CLASS or CAMB that spans
/// 1e-4 to 10 h/Mpc or more keeps that extrapolation out of sigma8 at the 1e-6 level.
/// io::read_power_table (io/power_table_file.hpp) reads one from a text file.
class PowerTable {
 public:
  PowerTable(std::vector<double> k, std::vector<double> P, std::string origin = "P(k) table")
      : origin_(std::move(origin)) {
    const std::size_t n = k.size();
    if (n != P.size()) {
      throw InvalidArgument(origin_ + ": " + std::to_string(k.size()) + " k values but " +
                            std::to_string(P.size()) + " P values");
    }
    if (n < 4) throw InvalidArgument(origin_ + ": " + std::to_string(n) + " rows, need >= 4");
    for (std::size_t i = 0; i < n; ++i) {
      if (!(k[i] > 0.0) || !std::isfinite(k[i]) || !(P[i] > 0.0) || !std::isfinite(P[i])) {
        throw InvalidArgument(origin_ + ": row " + std::to_string(i + 1) +
                              " has k = " + format_number(k[i]) + ", P = " + format_number(P[i]) +
                              " (both must be finite and > 0)");
      }
      if (i > 0 && !(k[i] > k[i - 1])) {
        throw InvalidArgument(origin_ + ": k must increase strictly, but row " +
                              std::to_string(i + 1) + " has k = " + format_number(k[i]) +
                              " after " + format_number(k[i - 1]));
      }
    }
    x_.resize(n);
    y_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      x_[i] = std::log(k[i]);
      y_[i] = std::log(P[i]);
    }
    // Natural spline second derivatives (tridiagonal system, Thomas algorithm).
    y2_.assign(n, 0.0);
    std::vector<double> c(n, 0.0), d(n, 0.0);
    for (std::size_t i = 1; i + 1 < n; ++i) {
      const double h0 = x_[i] - x_[i - 1], h1 = x_[i + 1] - x_[i];
      const double rhs = 6.0 * ((y_[i + 1] - y_[i]) / h1 - (y_[i] - y_[i - 1]) / h0);
      const double diag = 2.0 * (h0 + h1) - h0 * c[i - 1];
      c[i] = h1 / diag;
      d[i] = (rhs - h0 * d[i - 1]) / diag;
    }
    for (std::size_t i = n - 2; i >= 1; --i) {
      y2_[i] = d[i] - c[i] * y2_[i + 1];
    }
    slope_lo_ = slope(0, x_[0]);
    slope_hi_ = slope(n - 2, x_[n - 1]);
  }

  /// P(k) in (Mpc/h)^3 for k in h/Mpc; a dual k carries dP/dk.
  template <class K>
  K operator()(const K& k) const {
    const double kv = value_of(k);
    if (!(kv > 0.0) || !std::isfinite(kv)) {
      throw InvalidArgument(origin_ + ": k = " + format_number(kv) + " must be finite and > 0");
    }
    const K x = log(k);
    const std::size_t n = x_.size();
    const double xv = std::log(kv);
    if (xv <= x_[0]) return K(exp(y_[0] + slope_lo_ * (x - x_[0])));
    if (xv >= x_[n - 1]) return K(exp(y_[n - 1] + slope_hi_ * (x - x_[n - 1])));
    const std::size_t i =
        std::min<std::size_t>(std::upper_bound(x_.begin(), x_.end(), xv) - x_.begin() - 1, n - 2);
    const double h = x_[i + 1] - x_[i];
    const K A = (x_[i + 1] - x) / h;
    const K B = 1.0 - A;
    const K y = A * y_[i] + B * y_[i + 1] +
                ((A * A * A - A) * y2_[i] + (B * B * B - B) * y2_[i + 1]) * (h * h / 6.0);
    return K(exp(y));
  }

  double k_min() const { return std::exp(x_.front()); }
  double k_max() const { return std::exp(x_.back()); }
  const std::string& origin() const { return origin_; }

 private:
  /// d ln P / d ln k of the spline on interval i at x.
  double slope(std::size_t i, double x) const {
    const double h = x_[i + 1] - x_[i];
    const double A = (x_[i + 1] - x) / h, B = 1.0 - A;
    return (y_[i + 1] - y_[i]) / h - (3.0 * A * A - 1.0) / 6.0 * h * y2_[i] +
           (3.0 * B * B - 1.0) / 6.0 * h * y2_[i + 1];
  }

  std::string origin_;
  std::vector<double> x_, y_, y2_;
  double slope_lo_ = 0.0, slope_hi_ = 0.0;
};

}  // namespace diffpm::cosmology
