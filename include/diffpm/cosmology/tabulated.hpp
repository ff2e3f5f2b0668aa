/// \file
/// \brief A cosmology given as a user's tables of E, D1, D2, f1, f2 and chi against a (from
/// CLASS, CAMB, a modified-gravity or N-body code), interpolated for every pipeline stage.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/core/constants.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/cosmology/background.hpp"
#include "diffpm/cosmology/detail/hermite.hpp"
#include "diffpm/cosmology/model.hpp"
#include "diffpm/cosmology/power_table.hpp"

namespace diffpm::cosmology {

/// The columns of a cosmology table, one row per scale factor (docs/conventions.md, "The
/// cosmology interface", states what each must satisfy and how it is checked).
struct CosmologyTable {
  std::vector<double> a;    ///< scale factors, strictly increasing, > 0, the last one 1
  std::vector<double> E;    ///< H(a)/H0, > 0, E(1) = 1 (to 1e-5)
  std::vector<double> D1;   ///< linear growth factor, > 0, any normalisation (divided by D1(1))
  std::vector<double> D2;   ///< second-order growth factor, < 0 (about -3/7 D1^2 early on)
  std::vector<double> f1;   ///< dln D1 / dln a
  std::vector<double> f2;   ///< dln D2 / dln a
  std::vector<double> chi;  ///< comoving radial distance, Mpc/h, decreasing, chi(1) = 0
  double Omega_m = 0.0;     ///< today's matter density (the Poisson source), > 0
  double Omega_k = 0.0;     ///< today's curvature density: f_K and c_K (model.hpp)
  /// P_lin(k) at a = 1 in (Mpc/h)^3, k in h/Mpc, taken as it is (not rescaled to a sigma8);
  /// P_lin(k, a) = P_lin(k) D1(a)^2. Null for a run that never draws a linear field from it
  /// (e.g. run_simulation from the caller's delta_L): linear_power then throws.
  std::shared_ptr<const PowerTable> power;
  std::string origin = "cosmology table";  ///< names the table in error messages
};

/// A cosmology::Model<double> from a CosmologyTable. Interpolation is cubic Hermite in t = ln a
/// (cosmology/detail/hermite.hpp; rows need not be evenly spaced), on quantities that are
/// smooth in t, and linear in t for power laws of a, each with its slope where the table gives
/// it and otherwise the 5-row Lagrange derivative of the column (4th order):
///   ln D1 with slope f1 and ln(-D2) with slope f2 (exact for D proportional to a power of a,
///     so an Einstein-de Sitter table interpolates to rounding);
///   f1 and f2 themselves with 5-row slopes (not the slopes of the ln D interpolants, which
///     are a power of h less accurate: the FastPM kick over a short step differences G_f =
///     a^2 E f1 D1 and amplifies the error of f1 a hundredfold);
///   chi with slope dchi/dln a = -(c/H0) / (a E) from the E column (as Background does);
///   ln E with 5-row slopes.
/// With exact slopes the error is at most h^4/384 max|d^4 y/dt^4| (h the widest step in ln a);
/// 5-row slopes keep it O(h^4). A w0wa table with h = 0.005 (1400 rows from a = 1e-3)
/// reproduces Cosmology<double>'s step factors to 1e-8 and LPT factors to 1.3e-9, with 300
/// rows (h = 0.023) to 6e-8 and 1e-8 (tests/cosmology/test_tabulated.cpp).
///
/// D1 is normalised explicitly: the D1 column is divided by its value at a = 1, D2 by the square
/// of it (Growth's convention), so an unnormalised table (D1 -> a early on) is fine; chi is
/// shifted by its value at a = 1, which must be 0 within 1e-6 of chi(a_min).
///
/// Checked on construction (InvalidArgument naming the table, the row and the value): equal
/// column lengths, at least 5 rows, finite values, a strictly increasing from a > 0 to a = 1
/// (within 1e-12), E > 0 and E(1) = 1 within 1e-5, D1 > 0, D2 < 0 (diffpm's sign), chi strictly
/// decreasing, Omega_m > 0, Omega_k finite; and, between each pair of rows, that the columns
/// are one history: Delta ln D1 against the trapezoid of f1, Delta ln(-D2) against that of f2,
/// Delta chi against that of -(c/H0)/(a E), each within (1e-3 + h^2) of the step (the
/// trapezoid's own error is h^3/12 of the second derivative, ~h^2/12 relative for these
/// slowly varying slopes). These catch f given against z or a instead of ln a, a D2 of the
/// other sign, chi in Mpc instead of Mpc/h or E in km/s/Mpc. Queries outside [a_min, 1] throw
/// OutOfRange naming the value and the range, as Background's do.
class TabulatedCosmology : public Model<double> {
 public:
  explicit TabulatedCosmology(const CosmologyTable& table)
      : origin_(table.origin),
        Omega_m_(table.Omega_m),
        Omega_k_(table.Omega_k),
        power_(table.power) {
    validate(table);
    const std::size_t n = table.a.size();
    t_.resize(n);
    for (std::size_t i = 0; i + 1 < n; ++i) t_[i] = std::log(table.a[i]);
    t_[n - 1] = 0.0;  // a = 1 exactly (validated to 1e-12)
    a_min_ = table.a[0];

    const double lnD1_today = std::log(table.D1[n - 1]);
    lnE_.resize(n);
    lnD1_.resize(n);
    lnD2_.resize(n);
    chi_.resize(n);
    chi_slope_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      lnE_[i] = std::log(table.E[i]);
      lnD1_[i] = std::log(table.D1[i]) - lnD1_today;
      lnD2_[i] = std::log(-table.D2[i]) - 2.0 * lnD1_today;
      chi_[i] = table.chi[i] - table.chi[n - 1];
      chi_slope_[i] = -constants::hubble_distance / (std::exp(t_[i]) * table.E[i]);
    }
    lnD1_[n - 1] = 0.0;  // D1(1) = 1 exactly
    lnE_slope_ = lagrange_slopes(t_, lnE_);
    f1_ = table.f1;
    f2_ = table.f2;
    f1_slope_ = lagrange_slopes(t_, f1_);
    f2_slope_ = lagrange_slopes(t_, f2_);
  }

  /// The smallest tabulated scale factor; queries are valid on [a_min, 1].
  double a_min() const { return a_min_; }
  const std::string& origin() const { return origin_; }

  double E(const double& a) const override {
    return std::exp(detail::hermite(t_, lnE_, lnE_slope_, t_at(a, "E")));
  }
  double Omega_m() const override { return Omega_m_; }
  double Omega_k() const override { return Omega_k_; }
  double growth_factor(const double& a) const override {
    return std::exp(detail::hermite(t_, lnD1_, f1_, t_at(a, "growth_factor")));
  }
  double growth_rate(const double& a) const override {
    return detail::hermite(t_, f1_, f1_slope_, t_at(a, "growth_rate"));
  }
  double growth_factor_2(const double& a) const override {
    return -std::exp(detail::hermite(t_, lnD2_, f2_, t_at(a, "growth_factor_2")));
  }
  double growth_rate_2(const double& a) const override {
    return detail::hermite(t_, f2_, f2_slope_, t_at(a, "growth_rate_2"));
  }
  double comoving_distance(const double& a) const override {
    return detail::hermite(t_, chi_, chi_slope_, t_at(a, "comoving_distance"));
  }

  /// a(chi) by Newton's method on the chi interpolant (to 1e-15 in ln a), for chi in
  /// [0, chi(a_min)] Mpc/h.
  double scale_factor_at_distance(const double& chi) const override {
    double c = chi;
    if (c < 0.0 && c > -1e-9) c = 0.0;  // a distance computed at a = 1, rounded below 0
    if (!(c >= 0.0 && c <= chi_.front())) {
      throw OutOfRange(origin_ + ": scale_factor_at_distance: chi = " + format_number(chi) +
                       " Mpc/h is outside [0, " + format_number(chi_.front()) +
                       "], the distances tabulated for a in [" + format_number(a_min_) + ", 1]");
    }
    // chi decreases along the rows: find i with chi_i >= c >= chi_{i+1}.
    const auto it = std::lower_bound(chi_.begin(), chi_.end(), c, std::greater<>());
    const std::ptrdiff_t last = std::ptrdiff_t(chi_.size()) - 2;
    const std::size_t i =
        static_cast<std::size_t>(std::clamp<std::ptrdiff_t>((it - chi_.begin()) - 1, 0, last));
    double t = 0.5 * (t_[i] + t_[i + 1]);
    for (int iter = 0; iter < 50; ++iter) {
      const double f = detail::hermite(t_, chi_, chi_slope_, t) - c;
      const double df = detail::hermite_slope(t_, chi_, chi_slope_, t);
      const double step = f / df;
      t = std::clamp(t - step, t_[i], t_[i + 1]);
      if (std::abs(step) < 1e-15) break;
    }
    return std::exp(t);
  }

  /// P_lin(k) D1(a)^2 from the table's P_lin(k) (PowerTable's interpolation and power-law
  /// extrapolation in k).
  double linear_power(double k, const double& a) const override {
    if (!power_) {
      throw InvalidArgument(origin_ + ": linear_power(k = " + format_number(k) +
                            "): the table has no linear power spectrum (CosmologyTable::power)");
    }
    const double d = growth_factor(a);
    return (*power_)(k)*d * d;
  }

 private:
  // ln a, after the range check of Background (a in [a_min, 1] up to 1e-12, OutOfRange).
  double t_at(double a, const char* what) const {
    if (!(a >= a_min_ * (1.0 - 1e-12) && a <= 1.0 + 1e-12)) {
      detail::check_scale_factor(a, a_min_, (origin_ + ": " + what).c_str());
    }
    return std::log(a);
  }

  // d y / d t at each node from the Lagrange polynomial through the 5 nearest rows (shifted
  // inward at the ends): L_j'(t_i) = prod_{m != i,j} (t_i - t_m) / prod_{m != j} (t_j - t_m)
  // for j != i, and sum_{m != i} 1 / (t_i - t_m) for j = i.
  static std::vector<double> lagrange_slopes(const std::vector<double>& t,
                                             const std::vector<double>& y) {
    const std::size_t n = t.size();
    std::vector<double> slope(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t lo = std::min(i >= 2 ? i - 2 : 0, n - 5);
      double d = 0.0;
      for (std::size_t j = lo; j < lo + 5; ++j) {
        double w = 0.0;
        if (j == i) {
          for (std::size_t m = lo; m < lo + 5; ++m)
            if (m != i) w += 1.0 / (t[i] - t[m]);
        } else {
          double num = 1.0, den = 1.0;
          for (std::size_t m = lo; m < lo + 5; ++m) {
            if (m != j) den *= t[j] - t[m];
            if (m != j && m != i) num *= t[i] - t[m];
          }
          w = num / den;
        }
        d += w * y[j];
      }
      slope[i] = d;
    }
    return slope;
  }

  static void validate(const CosmologyTable& tb) {
    const std::string& o = tb.origin;
    const std::size_t n = tb.a.size();
    const std::pair<const char*, const std::vector<double>*> columns[] = {
        {"E", &tb.E},   {"D1", &tb.D1}, {"D2", &tb.D2},
        {"f1", &tb.f1}, {"f2", &tb.f2}, {"chi", &tb.chi}};
    for (const auto& [name, column] : columns) {
      if (column->size() != n) {
        throw InvalidArgument(o + ": " + std::to_string(n) + " scale factors but " +
                              std::to_string(column->size()) + " " + name + " values");
      }
    }
    if (n < 5) {
      throw InvalidArgument(o + ": " + std::to_string(n) + " rows (need >= 5)");
    }
    auto row = [&](std::size_t i, const char* name, double v, const char* requirement) {
      throw InvalidArgument(o + ": row " + std::to_string(i + 1) +
                            " (a = " + format_number(tb.a[i]) + ") has " + name + " = " +
                            format_number(v) + " (" + requirement + ")");
    };
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(tb.a[i]) || !(tb.a[i] > 0.0)) {
        throw InvalidArgument(o + ": row " + std::to_string(i + 1) +
                              " has a = " + format_number(tb.a[i]) + " (must be finite and > 0)");
      }
      for (const auto& [name, column] : columns)
        if (!std::isfinite((*column)[i])) row(i, name, (*column)[i], "must be finite");
      if (i > 0 && !(tb.a[i] > tb.a[i - 1])) {
        throw InvalidArgument(o + ": a must increase strictly, but row " + std::to_string(i + 1) +
                              " has a = " + format_number(tb.a[i]) + " after " +
                              format_number(tb.a[i - 1]));
      }
      if (!(tb.E[i] > 0.0)) row(i, "E", tb.E[i], "must be > 0");
      if (!(tb.D1[i] > 0.0)) row(i, "D1", tb.D1[i], "must be > 0");
      if (!(tb.D2[i] < 0.0)) {
        row(i, "D2", tb.D2[i],
            "must be < 0: diffpm's D2 is -3/7 D1^2 in matter domination, x = q + D1 Psi1 + D2 "
            "Psi2; a table with the opposite sign convention must be negated");
      }
      if (i > 0 && !(tb.chi[i] < tb.chi[i - 1])) {
        row(i, "chi", tb.chi[i], "must decrease strictly with a");
      }
    }
    if (!(std::abs(tb.a[n - 1] - 1.0) <= 1e-12)) {
      throw InvalidArgument(o + ": the last row has a = " + format_number(tb.a[n - 1]) +
                            " (the table must end at a = 1, where D1 is normalised and chi = 0)");
    }
    if (!(tb.a[n - 2] < 1.0)) {
      throw InvalidArgument(o + ": row " + std::to_string(n - 1) + " has a = " +
                            format_number(tb.a[n - 2]) + " (only the last row may be at a = 1)");
    }
    if (!(std::abs(tb.E[n - 1] - 1.0) <= 1e-5)) {
      row(n - 1, "E", tb.E[n - 1], "must be 1 within 1e-5 at a = 1: E is H(a)/H0");
    }
    if (!(std::abs(tb.chi[n - 1]) <= 1e-6 * std::abs(tb.chi[0]))) {
      row(n - 1, "chi", tb.chi[n - 1], "must be 0 within 1e-6 of chi(a_min) at a = 1");
    }
    if (!(tb.Omega_m > 0.0) || !std::isfinite(tb.Omega_m)) {
      throw InvalidArgument(o + ": Omega_m = " + format_number(tb.Omega_m) +
                            " (must be finite and > 0)");
    }
    if (!std::isfinite(tb.Omega_k)) {
      throw InvalidArgument(o + ": Omega_k = " + format_number(tb.Omega_k) + " (must be finite)");
    }
    // The columns as one history: each step's change against the trapezoid of its slope.
    auto consistent = [&](std::size_t i, const char* what, double change, double slope0,
                          double slope1, double h, double scale) {
      const double trapezoid = 0.5 * h * (slope0 + slope1);
      if (!(std::abs(change - trapezoid) <= (1e-3 + h * h) * scale)) {
        throw InvalidArgument(o + ": rows " + std::to_string(i + 1) + "-" + std::to_string(i + 2) +
                              " (a = " + format_number(tb.a[i]) + " to " +
                              format_number(tb.a[i + 1]) + "): " + what + " changes by " +
                              format_number(change) + " but its slope integrates to " +
                              format_number(trapezoid) + " (check units: a, ln a, Mpc/h, H/H0)");
      }
    };
    const double c = constants::hubble_distance;
    for (std::size_t i = 0; i + 1 < n; ++i) {
      const double h = std::log(tb.a[i + 1]) - std::log(tb.a[i]);
      const double f1s = h * std::max({1.0, std::abs(tb.f1[i]), std::abs(tb.f1[i + 1])});
      const double f2s = h * std::max({1.0, std::abs(tb.f2[i]), std::abs(tb.f2[i + 1])});
      consistent(i, "ln D1 (with slope f1)", std::log(tb.D1[i + 1] / tb.D1[i]), tb.f1[i],
                 tb.f1[i + 1], h, f1s);
      consistent(i, "ln(-D2) (with slope f2)", std::log(tb.D2[i + 1] / tb.D2[i]), tb.f2[i],
                 tb.f2[i + 1], h, f2s);
      const double s0 = -c / (tb.a[i] * tb.E[i]), s1 = -c / (tb.a[i + 1] * tb.E[i + 1]);
      consistent(i, "chi (with slope -(c/H0)/(a E))", tb.chi[i + 1] - tb.chi[i], s0, s1, h,
                 0.5 * h * (std::abs(s0) + std::abs(s1)));
    }
  }

  std::string origin_;
  double Omega_m_, Omega_k_;
  std::shared_ptr<const PowerTable> power_;
  double a_min_ = 0.0;
  std::vector<double> t_, lnE_, lnE_slope_, lnD1_, f1_, f1_slope_, lnD2_, f2_, f2_slope_;
  std::vector<double> chi_, chi_slope_;
};

}  // namespace diffpm::cosmology
