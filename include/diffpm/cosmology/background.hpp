/// \file
/// \brief Expansion history E(a), distances chi(a), f_K(chi), D_M, D_A, D_L and the inverse a(chi).
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "diffpm/core/constants.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/detail/curvature.hpp"
#include "diffpm/cosmology/detail/hermite.hpp"
#include "diffpm/cosmology/detail/math.hpp"
#include "diffpm/cosmology/parameters.hpp"

namespace diffpm::cosmology {

namespace detail {
/// Throws OutOfRange unless a is in [a_min, 1] (up to rounding); `what` names the caller.
inline void check_scale_factor(double a, double a_min, const char* what) {
  if (!(a >= a_min * (1.0 - 1e-12) && a <= 1.0 + 1e-12)) {
    throw OutOfRange(std::string(what) + ": scale factor a = " + format_number(a) +
                     " (z = " + format_number(1.0 / a - 1.0) +
                     ") is outside the tabulated range [" + format_number(a_min) + ", 1]");
  }
}
}  // namespace detail

/// Range and resolution of the tables in ln a that Background and Growth build.
struct TableOptions {
  /// Smallest tabulated scale factor. The growth ODE starts here, deep enough that its initial
  /// conditions (the matter + radiation growing mode) are exact to ~1e-7 (see growth.hpp).
  double a_min = 1e-6;
  /// RK4 steps per e-fold of a. 48 gives dt = 0.021 in ln a: growth and distances agree with
  /// 4x finer tables to < 1e-9 (tests/cosmology/test_convergence.cpp).
  int steps_per_efold = 48;
};

/// Background expansion of a Parameters<T> cosmology, tabulated for fast distance queries.
///
/// E(a)^2 = Omega_m a^-3 + Omega_r a^-4 + Omega_k a^-2 + Omega_de a^(-3(1+w0+wa)) e^(-3 wa (1-a))
/// (the CPL dark-energy density, Linder 2003 eq. 5). E, dlnE/dlna and Omega_m(a) are evaluated
/// exactly at any a. The comoving distance chi(a) = (c/H0) int_a^1 da' / (a'^2 E(a')) is
/// integrated once on a uniform grid in ln a with Simpson's rule on half-steps, then queried by
/// cubic Hermite interpolation using the exact slope dchi/dln a = -(c/H0) / (a E).
/// All lengths are in Mpc/h. Every query is valid for a in [a_min, 1] and throws OutOfRange
/// outside it.
template <class T>
class Background {
 public:
  explicit Background(const Parameters<T>& p, const TableOptions& options = {})
      : params_(p), a_min_(options.a_min) {
    validate(p);
    if (!(options.a_min > 0.0 && options.a_min <= 1e-2)) {
      throw InvalidArgument("table a_min = " + format_number(options.a_min) +
                            " must be in (0, 0.01]");
    }
    if (options.steps_per_efold < 4 || options.steps_per_efold > 100000) {
      throw InvalidArgument("table steps_per_efold = " + std::to_string(options.steps_per_efold) +
                            " must be in [4, 100000]");
    }
    Om_ = p.Omega_m();
    Or_ = p.Omega_r();
    Ok_ = p.Omega_k;
    Ode_ = p.Omega_de();
    de_slope_ = -3.0 * (1.0 + p.w0 + p.wa);
    de_wa_ = -3.0 * p.wa;

    const double t0 = std::log(a_min_);
    const int n = static_cast<int>(std::ceil(-t0 * options.steps_per_efold));
    grid_ = {0.0, -t0 / n, n};
    half_ = {0.0, 0.5 * grid_.dt, 2 * n};

    half_dlnE_.resize(2 * n + 1);
    half_Om_a_.resize(2 * n + 1);
    std::vector<T> inv_aE(2 * n + 1);
    for (int j = 0; j <= 2 * n; ++j) {
      const double lna = half_.at(j);
      const double a = std::exp(lna);
      // E^2 and its ln a derivative term by term, sharing the dark-energy exponential.
      const double ia = 1.0 / a, ia2 = ia * ia;
      const T matter = Om_ * (ia2 * ia), radiation = Or_ * (ia2 * ia2), curvature = Ok_ * ia2;
      const T de = de_density(a, lna);
      const T e2 = matter + radiation + curvature + de;
      if (!(value_of(e2) > 0.0)) throw_no_expansion(a, value_of(e2));
      const T inv_e2 = 1.0 / e2;
      const T de2 =
          -3.0 * matter - 4.0 * radiation - 2.0 * curvature + de * (de_slope_ - de_wa_ * a);
      half_dlnE_[j] = 0.5 * de2 * inv_e2;
      half_Om_a_[j] = matter * inv_e2;
      inv_aE[j] = ia * sqrt(inv_e2);
    }
    check_early_dark_energy();

    // eta_i = int_{t0}^{t_i} dt / (a E), Simpson on each step; chi_i = (c/H0) (eta_n - eta_i).
    std::vector<T> eta(n + 1);
    eta[0] = T(0.0);
    for (int i = 0; i < n; ++i) {
      eta[i + 1] =
          eta[i] + grid_.dt / 6.0 * (inv_aE[2 * i] + 4.0 * inv_aE[2 * i + 1] + inv_aE[2 * i + 2]);
    }
    chi_.resize(n + 1);
    chi_slope_.resize(n + 1);
    chi_value_.resize(n + 1);
    chi_slope_value_.resize(n + 1);
    for (int i = 0; i <= n; ++i) {
      chi_[i] = constants::hubble_distance * (eta[n] - eta[i]);
      chi_slope_[i] = -constants::hubble_distance * inv_aE[2 * i];
      chi_value_[i] = value_of(chi_[i]);
      chi_slope_value_[i] = value_of(chi_slope_[i]);
    }
  }

  const Parameters<T>& parameters() const { return params_; }
  double a_min() const { return a_min_; }

  /// E(a) = H(a)/H0.
  T E(const T& a) const {
    check_a(a, "E");
    const T lna = log(a);
    return sqrt(E2(a, lna));
  }

  /// dln E / dln a.
  T dlnE_dlna(const T& a) const {
    check_a(a, "dlnE_dlna");
    const T lna = log(a);
    return dE2_dlna(a, lna) / (2.0 * E2(a, lna));
  }

  /// Matter density parameter at a, Omega_m a^-3 / E(a)^2.
  T Omega_m_of_a(const T& a) const {
    check_a(a, "Omega_m_of_a");
    const T lna = log(a);
    return Om_ / (a * a * a * E2(a, lna));
  }

  /// Comoving radial distance chi(a) in Mpc/h.
  T comoving_distance(const T& a) const {
    check_a(a, "comoving_distance");
    const T lna = log(a);
    return detail::hermite(grid_, chi_, chi_slope_, lna);
  }

  /// dchi/dln a of comoving_distance's interpolant in Mpc/h (negative): -(c/H0) / (a E(a)) at
  /// the table's nodes and to 2e-7 between them, and exactly the slope of the chi(a)
  /// comoving_distance returns, so an integral over chi rewritten as one over ln a (or z) with
  /// it is the same integral over the interpolated chi.
  T comoving_distance_slope(const T& a) const {
    check_a(a, "comoving_distance_slope");
    const T lna = log(a);
    return detail::hermite_slope(grid_, chi_, chi_slope_, lna);
  }

  /// Transverse comoving distance D_M(a) = f_K(chi(a)) in Mpc/h (transverse_distance).
  T transverse_comoving_distance(const T& a) const {
    return transverse_distance(comoving_distance(a));
  }

  /// f_K(chi) in Mpc/h, the transverse comoving distance at comoving radial distance chi (Mpc/h):
  /// with x = Omega_k (chi H0/c)^2, (c/H0)/sqrt(Omega_k) sinh(sqrt(x)) for Omega_k > 0 (open,
  /// curvature K = -Omega_k (H0/c)^2 < 0), the sine with |Omega_k| for Omega_k < 0 (closed), and
  /// chi for Omega_k = 0 (Hogg 1999, eq. 16; Bartelmann & Schneider 2001's f_K). Near x = 0 a
  /// series keeps the derivative with respect to Omega_k exact at Omega_k = 0, where a branch
  /// on the sign would drop it. chi may carry derivatives too.
  T transverse_distance(const T& chi) const { return detail::transverse_distance(Ok_, chi); }

  /// c_K(chi) = df_K/dchi, dimensionless: cosh(sqrt(x)) for Omega_k > 0, cos(sqrt(-x)) for
  /// Omega_k < 0, 1 for Omega_k = 0 (x as in transverse_distance). With f_K it gives the
  /// addition theorem f_K(chi1 - chi2) = f_K(chi1) c_K(chi2) - c_K(chi1) f_K(chi2), which keeps
  /// the curved lensing efficiency a sum of separable terms (lensing/lensing_efficiency.hpp).
  /// The same series near x = 0 keeps d/dOmega_k exact at Omega_k = 0.
  T curvature_cosine(const T& chi) const { return detail::curvature_cosine(Ok_, chi); }

  /// Angular diameter distance D_A = a D_M, Mpc/h.
  T angular_diameter_distance(const T& a) const { return a * transverse_comoving_distance(a); }

  /// Luminosity distance D_L = D_M / a, Mpc/h.
  T luminosity_distance(const T& a) const { return transverse_comoving_distance(a) / a; }

  /// The scale factor at comoving distance chi (Mpc/h), the inverse of comoving_distance.
  /// Solved on the value by Newton's method on the Hermite interpolant, then one Newton step in
  /// the scalar type T: by the implicit function theorem that step carries the exact
  /// derivatives da/dtheta = -(dchi/dtheta at fixed a - dchi_in/dtheta) / (dchi/da).
  T scale_factor_at_distance(const T& chi) const {
    // Round-off may put a distance computed at a = 1 a hair below 0: accept it as a = 1.
    double c = value_of(chi);
    if (c < 0.0 && c > -1e-9) c = 0.0;
    if (!(c >= 0.0 && c <= chi_value_.front())) {
      throw OutOfRange("scale_factor_at_distance: chi = " + format_number(c) +
                       " Mpc/h is outside [0, " + format_number(chi_value_.front()) +
                       "], the distances tabulated for a in [" + format_number(a_min_) + ", 1]");
    }
    // chi decreases along the grid: find i with chi_i >= c >= chi_{i+1}.
    const auto it = std::lower_bound(chi_value_.begin(), chi_value_.end(), c, std::greater<>());
    int i = static_cast<int>(it - chi_value_.begin()) - 1;
    i = std::clamp(i, 0, grid_.n - 1);
    double t = grid_.at(i) + 0.5 * grid_.dt;
    for (int iter = 0; iter < 50; ++iter) {
      const double f = detail::hermite(grid_, chi_value_, chi_slope_value_, t) - c;
      const double df = detail::hermite_slope(grid_, chi_value_, chi_slope_value_, t);
      const double step = f / df;
      t = std::clamp(t - step, grid_.at(i), grid_.at(i + 1));
      if (std::abs(step) < 1e-15) break;
    }
    const T f = detail::hermite(grid_, chi_, chi_slope_, t) - chi;
    const T df = detail::hermite_slope(grid_, chi_, chi_slope_, t);
    const T lna = t - f / df;
    return exp(lna);
  }

  // Tables on the half-step grid (spacing dt/2 in ln a), which the growth ODE reads.
  const detail::UniformGrid& grid() const { return grid_; }
  const detail::UniformGrid& half_grid() const { return half_; }
  const std::vector<T>& half_dlnE_dlna() const { return half_dlnE_; }
  const std::vector<T>& half_Omega_m_of_a() const { return half_Om_a_; }
  /// Omega_r / Omega_m, the scale factor of matter-radiation equality (0 without radiation).
  T a_equality() const { return Or_ / Om_; }

  /// Throws OutOfRange unless a is finite and in [a_min, 1]; `what` names the caller.
  template <class A>
  void check_a(const A& a, const char* what) const {
    detail::check_scale_factor(value_of(a), a_min_, what);
  }

 private:
  template <class A>
  T de_density(const A& a, const A& lna) const {
    return Ode_ * exp(de_slope_ * lna + de_wa_ * (1.0 - a));
  }
  template <class A>
  T E2(const A& a, const A& lna) const {
    const A ia = 1.0 / a;
    const A ia2 = ia * ia;
    return Om_ * ia2 * ia + Or_ * ia2 * ia2 + Ok_ * ia2 + de_density(a, lna);
  }
  template <class A>
  T dE2_dlna(const A& a, const A& lna) const {
    const A ia = 1.0 / a;
    const A ia2 = ia * ia;
    return -3.0 * Om_ * ia2 * ia - 4.0 * Or_ * ia2 * ia2 - 2.0 * Ok_ * ia2 +
           de_density(a, lna) * (de_slope_ - de_wa_ * a);
  }

  [[noreturn]] void throw_no_expansion(double a, double e2) const {
    throw InvalidArgument("invalid cosmology: E(a)^2 = " + format_number(e2) + " <= 0 at a = " +
                          format_number(a) + " (Omega_m = " + format_number(value_of(Om_)) +
                          ", Omega_k = " + format_number(value_of(Ok_)) +
                          ", Omega_de = " + format_number(value_of(Ode_)) +
                          ", w0 = " + format_number(value_of(params_.w0)) +
                          ", wa = " + format_number(value_of(params_.wa)) +
                          "): the universe does not expand monotonically");
  }

  // The growth ODE starts from the matter + radiation growing mode at a_min, which assumes that
  // dark energy is negligible there. CPL dark energy scales as a^(-3(1+w0+wa)) at early times, so
  // w0 + wa close to 0 or above makes it comparable to matter.
  void check_early_dark_energy() const {
    const double lna = std::log(a_min_);
    const double ratio =
        std::abs(value_of(de_density(a_min_, lna))) / (value_of(Om_) / (a_min_ * a_min_ * a_min_));
    if (ratio > 1e-4) {
      throw InvalidArgument("invalid cosmology: w0 = " + format_number(value_of(params_.w0)) +
                            ", wa = " + format_number(value_of(params_.wa)) + " make dark energy " +
                            format_number(ratio) +
                            " of the matter density at a = " + format_number(a_min_) +
                            " (must be < 1e-4: w(a -> 0) = w0 + wa must be well below 0)");
    }
  }

  Parameters<T> params_;
  double a_min_;
  T Om_, Or_, Ok_, Ode_, de_slope_, de_wa_;
  detail::UniformGrid grid_, half_;
  std::vector<T> half_dlnE_, half_Om_a_;
  std::vector<T> chi_, chi_slope_;
  std::vector<double> chi_value_, chi_slope_value_;
};

}  // namespace diffpm::cosmology
