/// \file
/// \brief The nonlinear matter power spectrum from halofit (Smith et al. 2003 with the revised
/// coefficients of Takahashi et al. 2012).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/detail/gauss_legendre.hpp"
#include "diffpm/cosmology/detail/math.hpp"

namespace diffpm::cosmology {

/// What halofit needs at one scale factor: the nonlinear scale, the local slope and curvature
/// of the linear spectrum there, the dark-energy terms and the fitted coefficients
/// (Takahashi et al. 2012, arXiv:1208.2701, eqs. A4-A13). Built by Halofit::at(a) once per a,
/// then used for any number of k by Halofit::power.
template <class T>
struct HalofitScale {
  T a;
  T growth2;               ///< D1(a)^2, P_lin(k, a) = P_lin(k, 0) D1(a)^2
  T ln_r_sigma;            ///< ln R_sigma, R_sigma = 1/k_sigma in Mpc/h
  T k_sigma;               ///< h/Mpc; sigma(1/k_sigma, a) = 1 (eq. A4)
  T r_sigma;               ///< R_sigma = exp(ln_r_sigma), Mpc/h
  T n_eff;                 ///< eq. A5: n_eff + 3 = -dln sigma^2 / dln R at R_sigma
  T C;                     ///< eq. A5: C = -d^2 ln sigma^2 / dln R^2 at R_sigma
  T Omega_m, Omega_de, w;  ///< at a; w = w0 + wa (1 - a)
  // Eqs. A6-A13 and Smith et al. (2003) eqs. C17-C18.
  T a_n, b_n, ln_c_n_f3, gamma_n, alpha_n, beta_n, nu_n, f1, f2;
};

/// Halofit: P_nl(k, a) from the linear spectrum of a Cosmology (Smith et al. 2003, MNRAS 341,
/// 1311, appendix C, with the coefficients refitted by Takahashi et al. 2012, ApJ 761, 152,
/// appendix, eqs. A1-A13). No massive neutrinos. The dark-energy terms of a_n and b_n use
/// Omega_de(a) and w(a) = w0 + wa (1 - a) at the same a, as CAMB's halofit_takahashi does
/// (CCL instead maps a w0wa model to a constant-w one, Casarini et al. 2016, so the two
/// differ when wa != 0; tests/reference/pyccl/README.md).
///
/// With Delta^2(k) = k^3 P(k) / (2 pi^2) (eqs. A1-A3):
///   Delta^2_NL = Delta^2_Q + Delta^2_H,  y = k / k_sigma, f(y) = y/4 + y^2/8,
///   Delta^2_Q = Delta^2_L (1 + Delta^2_L)^beta_n / (1 + alpha_n Delta^2_L) exp(-f(y)),
///   Delta^2_H = a_n y^(3 f1) / (1 + b_n y^f2 + (c_n f3 y)^(3 - gamma_n)) / (1 + nu_n / y^2)
/// (mu_n = 0 in Takahashi's fit). k_sigma solves sigma^2(1/k_sigma, a) = 1 with the Gaussian
/// filter, sigma^2(R, a) = int dln k Delta^2_L(k, a) exp(-k^2 R^2) (eq. A4).
///
/// Method. sigma^2(R, a) = D1(a)^2 I_0(ln R), and the moments
///   I_m(x) = int dln k Delta^2_L(k, 0) (kR)^(2m) exp(-k^2 R^2),  x = ln R,
/// give every derivative in closed form: dI_m/dx = 2m I_m - 2 I_{m+1}, so with r_m = I_m/I_0
/// n_eff = -3 + 2 r_1 and C = 4 r_1 - 4 r_2 + 4 r_1^2. The integrals use a fixed rule in
/// u = ln k, 8-point Gauss-Legendre on panels 0.5 wide in ln k from k = 1e-5 to 0.01 and from
/// 4 to 1e6 h/Mpc, and 0.03 h/Mpc wide in k between 0.01 and 4 h/Mpc, where Eisenstein & Hu's
/// baryon oscillations (period ~0.06 h/Mpc) are still ~1e-6 of P at k ~ 1-4 (panels 0.5 in
/// ln k there leave errors of 4e-6 in C). So P_lin is evaluated once, at construction (~1360
/// nodes), and each a costs a few sums of exponentials (~20 microseconds). Against a
/// brute-force integral the rule gives sigma^2, n_eff to 1e-9 and C to 4e-9 for z = 0..9
/// (tests/cosmology/test_halofit.cpp).
///
/// Derivatives. The root x(a) of ln I_0(x) + 2 ln D1(a) = 0 is found on values by Halley's
/// method from a table of ln I_0 and its slope (0.5 apart in x), then one Newton step is taken
/// in T: by the implicit function theorem it carries dx/dtheta exactly, and n_eff, C get their
/// total derivative from dn_eff/dx and dC/dx (the moments I_2, I_3), as
/// Background::scale_factor_at_distance does for a(chi). The step's value is ~1e-15, so
/// dn_eff/dx and dC/dx enter only through their values (their own derivatives would add
/// ~1e-15 of the total), and I_3 is summed on values.
///
/// Differences from CLASS, CCL and CAMB, on purpose:
/// - f1, f2, f3 interpolate between the open and flat forms of Smith et al. eqs. C17-C18 with
///   frac = Omega_de(a) / (1 - Omega_m(a)) at every a; those codes set f = 1 once
///   |1 - Omega_m(a)| < 0.01 (z > 5 for Omega_m = 0.3), a jump of ~1e-3 in P that would break
///   derivatives. The limit Omega_m(a) -> 1 is taken analytically.
/// - Nonlinear scales beyond k_sigma = 1e6/6 h/Mpc (a linear spectrum so small that halofit is
///   meaningless: z >= 25 for Planck 2018) throw OutOfRange instead of falling back silently.
///
/// Takahashi et al. calibrated the fit for 0 <= z <= 10 and k <= 30 h/Mpc on constant-w
/// models; elsewhere it is an extrapolation. The Cosmology is held by reference and must
/// outlive this object. Thread-safe after construction (const, no caches).
template <class T>
class Halofit {
 public:
  explicit Halofit(const Cosmology<T>& cosmo) : cosmo_(&cosmo) {
    const auto& power = cosmo.linear_power_today();
    const double two_pi2 = 2.0 * pi * pi;
    // Panel edges in ln k (see the class comment).
    std::vector<double> edges;
    auto add = [&edges](double from, double to, double width) {
      const int n = static_cast<int>(std::ceil((to - from) / width - 1e-9));
      for (int i = 0; i < n; ++i) edges.push_back(from + (to - from) * i / n);
    };
    const double k_bao0 = 0.01, k_bao1 = 4.0;
    const double u0 = std::log(k_min), u1 = std::log(k_bao0), u2 = std::log(k_bao1),
                 u3 = std::log(k_max);
    add(u0, u1, 0.5);
    const int n_bao = static_cast<int>(std::ceil((k_bao1 - k_bao0) / 0.03 - 1e-9));
    for (int i = 0; i < n_bao; ++i)
      edges.push_back(std::log(k_bao0 + (k_bao1 - k_bao0) * i / n_bao));
    add(u2, u3, 0.5);
    edges.push_back(u3);
    const detail::GaussLegendre gl(order);
    for (std::size_t p = 0; p + 1 < edges.size(); ++p) {
      const double half = 0.5 * (edges[p + 1] - edges[p]);
      for (int j = 0; j < order; ++j) {
        const double u = edges[p] + half * (1.0 + gl.nodes[j]);
        const double k = std::exp(u);
        k2_.push_back(k * k);
        const T c = (half * gl.weights[j] * k * k * k / two_pi2) * power(k);
        weight_.push_back(c);
        weight_value_.push_back(value_of(c));
        if constexpr (n_der > 0)
          for (int i = 0; i < n_der; ++i) weight_der_.push_back(c.derivatives()[i]);
      }
    }
    // ln I_0 on a grid in x = ln R, for the bracket and first guess of the root.
    x_lo_ = std::log(6.0 / k_max);
    x_hi_ = std::log(r_max);
    const int nx = static_cast<int>(std::ceil((x_hi_ - x_lo_) / 0.5));
    grid_dx_ = (x_hi_ - x_lo_) / nx;
    for (int i = 0; i <= nx; ++i) {
      double i0, i1, i2;
      moments_value(x_lo_ + i * grid_dx_, i0, i1, i2);
      grid_s_.push_back(std::log(i0));
      grid_ds_.push_back(-2.0 * i1 / i0);  // dln I_0/dx = -2 I_1/I_0
    }
  }
  /// Refused: Halofit keeps a reference to the cosmology.
  explicit Halofit(Cosmology<T>&&) = delete;

  /// P_nl(k, a) in (Mpc/h)^3, k in h/Mpc (finite, > 0), a in [a_min, 1].
  template <class K>
  T operator()(const K& k, const T& a) const {
    return power(k, at(a));
  }

  /// Everything halofit needs at scale factor a (eqs. A4-A13). Throws OutOfRange outside the
  /// tabulated a or when k_sigma leaves [1e-3, 1e6/6] h/Mpc (R_sigma outside [6e-6, 1e3] Mpc/h).
  HalofitScale<T> at(const T& a) const {
    const auto& bg = cosmo_->background();
    bg.check_a(a, "halofit");
    const auto& p = cosmo_->parameters();
    HalofitScale<T> s;
    s.a = a;
    const T d = cosmo_->growth().growth_factor(a);
    s.growth2 = d * d;

    // Nonlinear scale (eq. A4): ln I_0(x) = -2 ln D on values, then one Newton step in T.
    const double target = -2.0 * std::log(value_of(d));
    std::vector<double> e;  // exp(-k_j^2 R^2) of the last pass of the solver, at x_last
    e.reserve(k2_.size());
    double x_last = 0.0;
    const double x = solve_scale(target, value_of(a), e, x_last);
    T m[3];
    double m3;
    moments_near(x, x_last, e, m, m3);
    const T r1 = m[1] / m[0], r2 = m[2] / m[0];
    const T dx = -(log(m[0]) + 2.0 * log(d)) / (-2.0 * r1);  // value ~0, carries dx/dtheta
    s.ln_r_sigma = x + dx;
    s.k_sigma = exp(-s.ln_r_sigma);
    s.r_sigma = exp(s.ln_r_sigma);
    // Eq. A5 with the closed-form moments; the dx terms add the derivative through the root
    // (dr1 = dr_1/dx and dr2 = dr_2/dx on values: dx itself is ~0).
    const double v1 = value_of(r1), v2 = value_of(r2), v3 = m3 / value_of(m[0]);
    const double dr1 = 2.0 * v1 - 2.0 * v2 + 2.0 * v1 * v1;
    const double dr2 = 4.0 * v2 - 2.0 * v3 + 2.0 * v1 * v2;
    s.n_eff = -3.0 + 2.0 * r1 + (2.0 * dr1) * dx;
    s.C = 4.0 * r1 - 4.0 * r2 + 4.0 * r1 * r1 + (4.0 * dr1 - 4.0 * dr2 + 8.0 * v1 * dr1) * dx;

    // Density parameters at a from the components of E^2, so that 1 - Omega_m(a) has no
    // cancellation (it is exactly Omega_de(a) in a flat universe without radiation).
    const T lna = log(a);
    const T ia = 1.0 / a;
    const T de = p.Omega_de() * exp(-3.0 * (1.0 + p.w0 + p.wa) * lna - 3.0 * p.wa * (1.0 - a));
    const T matter = p.Omega_m() * ia * ia * ia;
    const T rest = de + p.Omega_k * ia * ia + p.Omega_r() * ia * ia * ia * ia;
    const T e2 = matter + rest;
    s.Omega_m = matter / e2;
    s.Omega_de = de / e2;
    s.w = p.w0 + p.wa * (1.0 - a);

    // Takahashi et al. (2012) eqs. A6-A13.
    const T n = s.n_eff, n2 = n * n, n3 = n2 * n, n4 = n3 * n, C = s.C;
    const T de_term = s.Omega_de * (1.0 + s.w);
    s.a_n = exp(ln10 * (1.5222 + 2.8553 * n + 2.3706 * n2 + 0.9903 * n3 + 0.2250 * n4 - 0.6038 * C +
                        0.1749 * de_term));
    s.b_n = exp(ln10 * (-0.5642 + 0.5864 * n + 0.5716 * n2 - 1.5474 * C + 0.2279 * de_term));
    const T ln_c_n = ln10 * (0.3698 + 2.0404 * n + 0.8161 * n2 + 0.5869 * C);
    s.gamma_n = 0.1971 - 0.0843 * n + 0.8460 * C;
    s.alpha_n = abs(6.0835 + 1.3373 * n - 0.1959 * n2 - 5.5274 * C);
    s.beta_n = 2.0379 - 0.7354 * n + 0.3157 * n2 + 1.2490 * n3 + 0.3980 * n4 - 0.1682 * C;
    s.nu_n = exp(ln10 * (5.2105 + 3.6902 * n));

    // Smith et al. (2003) eqs. C17 (open, "a") and C18 (flat with Lambda, "b"), interpolated
    // with frac = Omega_de / (1 - Omega_m) as in the halofit code of Smith & Peacock.
    const double pa[3] = {-0.0732, -0.1423, 0.0725}, pb[3] = {-0.0307, -0.0585, 0.0743};
    T f[3];
    const T one_minus_om = rest / e2;
    if (std::abs(value_of(one_minus_om)) > 1e-9) {
      const T ln_om = log(s.Omega_m);
      const T frac = s.Omega_de / one_minus_om;
      for (int i = 0; i < 3; ++i) {
        const T fa = exp(pa[i] * ln_om), fb = exp(pb[i] * ln_om);
        f[i] = fa + frac * (fb - fa);
      }
    } else {
      // Omega_m(a) -> 1: f_a, f_b -> 1 - p eps with eps = 1 - Omega_m, so f -> 1 +
      // Omega_de (p_a - p_b) (the error of this limit is O(eps) ~ 1e-9).
      for (int i = 0; i < 3; ++i) f[i] = 1.0 + s.Omega_de * (pa[i] - pb[i]);
    }
    s.f1 = f[0];
    s.f2 = f[1];
    s.ln_c_n_f3 = ln_c_n + log(f[2]);
    return s;
  }

  /// P_nl(k) in (Mpc/h)^3 at the scale factor of `s` (eqs. A1-A3), k in h/Mpc.
  template <class K>
  T power(const K& k, const HalofitScale<T>& s) const {
    const double kv = value_of(k);
    if (!(kv > 0.0) || !std::isfinite(kv)) {
      throw InvalidArgument("halofit: k = " + format_number(kv) +
                            " h/Mpc (must be finite and > 0)");
    }
    const double two_pi2 = 2.0 * pi * pi;
    const K k3 = k * k * k;
    const T delta_l = cosmo_->linear_power_today()(k) * s.growth2 * k3 / two_pi2;
    const T ln_y = log(k) + s.ln_r_sigma;  // y = k / k_sigma
    const T y = k * s.r_sigma;
    const T y2 = y * y;
    const T fy = 0.25 * y + 0.125 * y2;
    const T delta_q =
        delta_l * exp(s.beta_n * log(1.0 + delta_l) - fy) / (1.0 + s.alpha_n * delta_l);
    const T delta_h =
        s.a_n * exp(3.0 * s.f1 * ln_y) /
        (1.0 + s.b_n * exp(s.f2 * ln_y) + exp((3.0 - s.gamma_n) * (s.ln_c_n_f3 + ln_y))) /
        (1.0 + s.nu_n / y2);
    return (delta_q + delta_h) * two_pi2 / k3;
  }

  /// The linear power at the scale factor of `s`, P_lin(k, 0) D1(a)^2, (Mpc/h)^3.
  template <class K>
  T linear_power(const K& k, const HalofitScale<T>& s) const {
    return cosmo_->linear_power_today()(k) * s.growth2;
  }

  /// sigma^2(R, a) with the Gaussian filter exp(-k^2 R^2) (eq. A4), R in Mpc/h, by the same
  /// quadrature the nonlinear scale is solved with.
  T gaussian_variance(double R, const T& a) const {
    if (!(R >= std::exp(x_lo_) && R <= r_max)) {
      throw OutOfRange("halofit: R = " + format_number(R) + " Mpc/h is outside [" +
                       format_number(std::exp(x_lo_)) + ", " + format_number(r_max) + "]");
    }
    cosmo_->background().check_a(a, "halofit gaussian_variance");
    T m[3];
    double m3;
    moments(std::log(R), m, m3);
    const T d = cosmo_->growth().growth_factor(a);
    return d * d * m[0];
  }

  const Cosmology<T>& cosmology() const { return *cosmo_; }

 private:
  static constexpr double pi = 3.14159265358979323846;
  static constexpr double ln10 = 2.30258509299404568402;
  static constexpr double k_min = 1e-5, k_max = 1e6;  // h/Mpc, range of the sigma^2 integrals
  static constexpr double r_max = 1e3;                // Mpc/h, largest R_sigma accepted
  static constexpr int order = 8;
  // Derivative components of T: 0 for double, N for a Dual<N>.
  static constexpr int n_der = [] {
    if constexpr (std::is_arithmetic_v<T>) {
      return 0;
    } else {
      return static_cast<int>(T::DerType::RowsAtCompileTime);
    }
  }();
  static_assert(n_der >= 0, "Halofit needs a fixed number of derivative components");
  // exp(-k^2 R^2) below exp(-46) ~ 1e-20 is dropped: far below rounding of sums of order 1.
  static constexpr double cutoff = 46.0;

  // I_0, I_1 and I_2 at x = ln R, on values; exp(-k_j^2 R^2) into `e` if not null (as many
  // as are above the cutoff).
  void moments_value(double x, double& i0, double& i1, double& i2,
                     std::vector<double>* e = nullptr) const {
    const double r2 = std::exp(2.0 * x);
    i0 = 0.0;
    i1 = 0.0;
    i2 = 0.0;
    if (e) e->clear();
    for (std::size_t j = 0; j < k2_.size(); ++j) {
      const double s = k2_[j] * r2;
      if (s > cutoff) break;  // nodes ascend in k
      const double x_j = std::exp(-s);
      if (e) e->push_back(x_j);
      const double w = weight_value_[j] * x_j;
      const double sw = s * w;
      i0 += w;
      i1 += sw;
      i2 += s * sw;
    }
  }

  // moments(x) from the exponentials `e` of a pass at x_last (|x - x_last| < 1e-5 after the
  // solver): exp(-k^2 R^2) = e_j exp(-delta_j), delta_j = k_j^2 R_last^2 (exp(2 (x - x_last)) -
  // 1), |delta_j| <= 46 * 2.1e-5 < 1e-3, where a Taylor polynomial of degree 5 is exact to
  // 1e-21: one pass of exponentials fewer per scale factor, with the same rounding as exp.
  void moments_near(double x, double x_last, const std::vector<double>& e, T (&m)[3],
                    double& m3) const {
    const double rho1 = std::expm1(2.0 * (x - x_last));
    if (!(cutoff * std::abs(rho1) <= 1e-3)) {
      moments(x, m, m3);
      return;
    }
    const double r2_last = std::exp(2.0 * x_last);
    moment_sums(x, m, m3, [&](std::size_t j, double s) {
      if (j >= e.size()) return std::exp(-s);
      const double d = k2_[j] * r2_last * rho1;
      const double d2 = d * d;  // Estrin's scheme: a shorter chain of dependent operations
      return e[j] * ((1.0 - d) + d2 * ((0.5 - d * (1.0 / 6)) + d2 * (1.0 / 24 - d * (1.0 / 120))));
    });
  }

  // I_0 .. I_2 at x = ln R in T (derivatives at fixed x), I_3 on values.
  void moments(double x, T (&m)[3], double& m3) const {
    moment_sums(x, m, m3, [](std::size_t, double s) { return std::exp(-s); });
  }

  // sum_j s^p exp(-s) w_j, s = k_j^2 R^2, p = 0..2 in T and p = 3 on values, with exp(-s) from
  // exp_j(j, s). The derivative components are summed as plain doubles, in the order (and so
  // to the bits) of T's own arithmetic, m += (s^p e) w_j, but in loops over the components
  // that the compiler keeps in registers and vectorises.
  template <class Exp>
  void moment_sums(double x, T (&m)[3], double& m3, Exp exp_j) const {
    const double r2 = std::exp(2.0 * x);
    double v[3] = {0.0, 0.0, 0.0};
    double d[3][n_der > 0 ? n_der : 1] = {};
    m3 = 0.0;
    for (std::size_t j = 0; j < k2_.size(); ++j) {
      const double s = k2_[j] * r2;
      if (s > cutoff) break;  // nodes ascend in k
      const double e = exp_j(j, s);
      const double c[3] = {e, s * e, s * s * e};
      const double w = weight_value_[j];
      for (int p = 0; p < 3; ++p) v[p] += c[p] * w;
      m3 += (s * s * s * e) * w;
      if constexpr (n_der > 0) {
        const double* wd = &weight_der_[j * n_der];
        for (int p = 0; p < 3; ++p)
          for (int i = 0; i < n_der; ++i) d[p][i] += c[p] * wd[i];
      }
    }
    for (int p = 0; p < 3; ++p) {
      m[p] = T(v[p]);
      if constexpr (n_der > 0)
        for (int i = 0; i < n_der; ++i) m[p].derivatives()[i] = d[p][i];
    }
  }

  // Solves ln I_0(x) = target for x = ln R_sigma on values: the cubic Hermite interpolant of
  // the table (ln I_0 and its slope -2 I_1/I_0 at its nodes) inverted as the first guess
  // (measured within 8e-6 of the root for Planck 2018, z = 0..3), then Halley's method (cubic
  // convergence, from I_0, I_1, I_2 of one pass) kept inside a bracket (ln I_0 decreases in x).
  // It stops once its step is below 1e-5: the error left, ~step^3 times a coefficient of order
  // one, < 1e-14, is removed by the Newton step in T that at() takes anyway; so one pass over
  // the moments (~1000 exponentials) usually suffices, none is spent only to confirm
  // convergence.
  // The exponentials of the last pass are left in `e`, its x in `x_last` (for moments_near).
  double solve_scale(double target, double a, std::vector<double>& e, double& x_last) const {
    const int n = static_cast<int>(grid_s_.size()) - 1;
    if (!(target < grid_s_[0] && target > grid_s_[n])) {
      const bool too_linear = !(target < grid_s_[0]);
      throw OutOfRange("halofit: at a = " + format_number(a) + " (z = " +
                       format_number(1.0 / a - 1.0) + ") the nonlinear scale k_sigma is " +
                       (too_linear ? "above " + format_number(1.0 / std::exp(x_lo_))
                                   : "below " + format_number(1.0 / r_max)) +
                       " h/Mpc, outside the range halofit is evaluated on");
    }
    // Table interval with s_i >= target > s_{i+1}.
    int i = 0;
    while (i < n - 1 && grid_s_[i + 1] >= target) ++i;
    double lo = x_lo_ + i * grid_dx_, hi = lo + grid_dx_;
    const double s0 = grid_s_[i], s1 = grid_s_[i + 1];
    const double d0 = grid_ds_[i] * grid_dx_, d1 = grid_ds_[i + 1] * grid_dx_;
    double t = (s0 - target) / (s0 - s1);
    for (int iter = 0; iter < 20; ++iter) {
      // Hermite basis on t in [0, 1] and its derivative.
      const double t2 = t * t, t3 = t2 * t;
      const double h = (2 * t3 - 3 * t2 + 1) * s0 + (t3 - 2 * t2 + t) * d0 +
                       (-2 * t3 + 3 * t2) * s1 + (t3 - t2) * d1;
      const double dh = (6 * t2 - 6 * t) * s0 + (3 * t2 - 4 * t + 1) * d0 + (6 * t - 6 * t2) * s1 +
                        (3 * t2 - 2 * t) * d1;
      if (!(dh < 0.0)) break;
      const double step = (h - target) / dh;
      t = std::min(1.0, std::max(0.0, t - step));
      if (std::abs(step) < 1e-12) break;
    }
    double x = lo + grid_dx_ * t;
    for (int iter = 0; iter < 100; ++iter) {
      double i0, i1, i2;
      moments_value(x, i0, i1, i2, &e);
      x_last = x;
      // Halley's method on g = ln I_0 - target: g' = -2 r_1, g'' = -2 dr_1/dx with
      // dr_1/dx = 2 r_1 - 2 r_2 + 2 r_1^2 (the closed-form moments of the class comment).
      const double r1 = i1 / i0, r2 = i2 / i0;
      const double g = std::log(i0) - target;
      const double g1 = -2.0 * r1, g2 = -4.0 * (r1 - r2 + r1 * r1);
      const double newton = g / g1;
      const double halley = 1.0 - 0.5 * newton * g2 / g1;
      const double step = halley > 0.5 ? newton / halley : newton;
      if (std::abs(step) < 1e-5) {
        x -= step;
        break;
      }
      if (g > 0)
        lo = x;
      else
        hi = x;
      x -= step;
      if (!(x > lo && x < hi)) x = 0.5 * (lo + hi);  // keep Newton inside the bracket
    }
    return x;
  }

  const Cosmology<T>* cosmo_;
  std::vector<double> k2_;            // k_j^2 at the nodes, ascending
  std::vector<T> weight_;             // w_j Delta^2_L(k_j, 0)
  std::vector<double> weight_value_;  // its values
  std::vector<double> weight_der_;    // its derivative components, n_der per node
  double x_lo_ = 0.0, x_hi_ = 0.0, grid_dx_ = 0.0;
  std::vector<double> grid_s_;   // ln I_0 on the table
  std::vector<double> grid_ds_;  // its slope in x, -2 I_1/I_0
};

}  // namespace diffpm::cosmology
