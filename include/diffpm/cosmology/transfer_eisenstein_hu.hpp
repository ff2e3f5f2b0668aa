/// \file
/// \brief Eisenstein & Hu 1998 transfer functions, with and without baryon acoustic wiggles.
#pragma once

#include <cmath>

#include "diffpm/cosmology/detail/math.hpp"
#include "diffpm/cosmology/parameters.hpp"

namespace diffpm::cosmology {

namespace detail {
inline constexpr double euler_e = 2.718281828459045;

/// Spherical Bessel j0(x) = sin x / x, with its Taylor series near 0 where the ratio cancels.
template <class K>
K spherical_j0(const K& x) {
  const double xv = value_of(x);
  if (xv * xv < 1e-4) {
    const K x2 = x * x;
    return K(1.0 - x2 / 6.0 * (1.0 - x2 / 20.0));
  }
  return K(sin(x) / x);
}
}  // namespace detail

/// EH98 matter transfer function with baryon acoustic oscillations (Eisenstein & Hu 1998,
/// ApJ 496, 605, eqs. 2-24), in the conventions of Eisenstein's reference code tf_fit.c, which
/// CCL's benchmark table model1_pk_eh.txt follows: the z_eq of eq. 2 is used as "1 + z_eq"
/// (y = z_eq / (1 + z_d), R_eq = R(z_eq)) and R_d = R(1 + z_d) in eq. 5.
/// k in h/Mpc; T(k -> 0) = 1. Needs Omega_b > 0 (validated).
template <class T>
class EisensteinHu {
 public:
  explicit EisensteinHu(const Parameters<T>& p) : h_(p.h) {
    validate(p);
    if (!(value_of(p.Omega_b) > 0.0)) {
      throw InvalidArgument(
          "Eisenstein-Hu transfer with wiggles: Omega_b = " + format_number(value_of(p.Omega_b)) +
          " must be > 0 (use the no-wiggle or BBKS transfer for Omega_b = 0)");
    }
    const T omhh = p.Omega_m() * p.h * p.h;
    const T obhh = p.Omega_b * p.h * p.h;
    fb_ = p.Omega_b / p.Omega_m();
    const double theta = p.T_CMB / 2.7;
    const double theta4 = theta * theta * theta * theta;
    const T z_eq = 2.50e4 * omhh / theta4;    // eq. 2 (used as 1 + z_eq)
    k_eq_ = 0.0746 * omhh / (theta * theta);  // eq. 3, Mpc^-1
    const T b1 = 0.313 * pow(omhh, -0.419) * (1.0 + 0.607 * pow(omhh, 0.674));
    const T b2 = 0.238 * pow(omhh, 0.223);
    const T z_d = 1291.0 * pow(omhh, 0.251) / (1.0 + 0.659 * pow(omhh, 0.828)) *
                  (1.0 + b1 * exp(b2 * log(obhh)));               // eq. 4
    const T R_d = 31.5 * obhh / theta4 * (1000.0 / (1.0 + z_d));  // eq. 5
    const T R_eq = 31.5 * obhh / theta4 * (1000.0 / z_eq);
    s_ = 2.0 / (3.0 * k_eq_) * sqrt(6.0 / R_eq) *
         log((sqrt(1.0 + R_d) + sqrt(R_d + R_eq)) / (1.0 + sqrt(R_eq)));  // eq. 6, Mpc
    k_silk_ = 1.6 * pow(obhh, 0.52) * pow(omhh, 0.73) * (1.0 + pow(10.4 * omhh, -0.95));  // eq. 7
    const T a1 = pow(46.9 * omhh, 0.670) * (1.0 + pow(32.1 * omhh, -0.532));              // eq. 11
    const T a2 = pow(12.0 * omhh, 0.424) * (1.0 + pow(45.0 * omhh, -0.582));
    alpha_c_ = exp(-fb_ * log(a1) - fb_ * fb_ * fb_ * log(a2));
    const T bb1 = 0.944 / (1.0 + pow(458.0 * omhh, -0.708));  // eq. 12
    const T bb2 = pow(0.395 * omhh, -0.0266);
    beta_c_ = 1.0 / (1.0 + bb1 * (exp(bb2 * log(1.0 - fb_)) - 1.0));
    const T y = z_eq / (1.0 + z_d);
    const T sy = sqrt(1.0 + y);
    const T G = y * (-6.0 * sy + (2.0 + 3.0 * y) * log((sy + 1.0) / (sy - 1.0)));  // eq. 15
    alpha_b_ = 2.07 * k_eq_ * s_ * pow(1.0 + R_d, -0.75) * G;                      // eq. 14
    beta_b_ = 0.5 + fb_ + (3.0 - 2.0 * fb_) * sqrt(pow(17.2 * omhh, 2.0) + 1.0);   // eq. 24
    beta_node_ = 8.41 * pow(omhh, 0.435);                                          // eq. 23
  }

  /// T(k), k in h/Mpc (a dual k carries d/dk as well).
  template <class K>
  T operator()(const K& k_hmpc) const {
    const T k = k_hmpc * h_;          // Mpc^-1
    const T q = k / (13.41 * k_eq_);  // eq. 10
    const T q2 = q * q;
    const T ks = k * s_;
    // Eqs. 19-20, T0~(k, alpha, beta) = L / (L + C q^2) with L = ln(e + 1.8 beta q) and
    // C = 14.2/alpha + 386/(1 + 69.9 q^1.08): the three T0~ below share q^1.08 and two logs.
    const T c386 = 386.0 / (1.0 + 69.9 * pow(q, 1.08));
    const T L_beta = log(detail::euler_e + 1.8 * beta_c_ * q);
    const T L_1 = log(detail::euler_e + 1.8 * q);
    const T T0_1_beta = L_beta / (L_beta + (14.2 + c386) * q2);                 // T0~(k, 1, beta_c)
    const T T0_alpha_beta = L_beta / (L_beta + (14.2 / alpha_c_ + c386) * q2);  // (alpha_c, beta_c)
    const T T0_1_1 = L_1 / (L_1 + (14.2 + c386) * q2);                          // T0~(k, 1, 1)
    const T ks4 = (ks / 5.4) * (ks / 5.4) * (ks / 5.4) * (ks / 5.4);
    const T f = 1.0 / (1.0 + ks4);                           // eq. 18
    const T Tc = f * T0_1_beta + (1.0 - f) * T0_alpha_beta;  // eq. 17
    const T node = beta_node_ / ks;
    const T s_tilde = s_ * exp(-log(1.0 + node * node * node) / 3.0);  // eq. 22
    const T bb = beta_b_ / ks;
    const T silk = exp(-exp(1.4 * log(k / k_silk_)));
    const T Tb =
        detail::spherical_j0(T(k * s_tilde)) * (T0_1_1 / (1.0 + (ks / 5.2) * (ks / 5.2)) +
                                                alpha_b_ / (1.0 + bb * bb * bb) * silk);  // eq. 21
    return fb_ * Tb + (1.0 - fb_) * Tc;                                                   // eq. 16
  }

 private:
  T h_, fb_, k_eq_, s_, k_silk_, alpha_c_, beta_c_, alpha_b_, beta_b_, beta_node_;
};

/// EH98 "no-wiggle" transfer function: the shape suppression by baryons without the acoustic
/// oscillations (Eisenstein & Hu 1998, eqs. 26, 28-31). Valid for Omega_b >= 0.
/// k in h/Mpc; T(k -> 0) = 1.
template <class T>
class EisensteinHuNoWiggle {
 public:
  explicit EisensteinHuNoWiggle(const Parameters<T>& p) : h_(p.h), Om_h_(p.Omega_m() * p.h) {
    validate(p);
    const T omhh = p.Omega_m() * p.h * p.h;
    const T obhh = p.Omega_b * p.h * p.h;
    const T fb = p.Omega_b / p.Omega_m();
    theta2_ = (p.T_CMB / 2.7) * (p.T_CMB / 2.7);
    // eq. 26, the fitted sound horizon in Mpc; (obhh)^0.75 written as exp/log only when > 0.
    const T ob34 = value_of(obhh) > 0.0 ? T(exp(0.75 * log(obhh))) : T(0.0);
    s_ = 44.5 * log(9.83 / omhh) / sqrt(1.0 + 10.0 * ob34);
    alpha_gamma_ = 1.0 - 0.328 * log(431.0 * omhh) * fb + 0.38 * log(22.3 * omhh) * fb * fb;  // 31
  }

  template <class K>
  T operator()(const K& k_hmpc) const {
    const T ks = k_hmpc * h_ * s_;  // k in Mpc^-1 times s in Mpc
    const T gamma_eff = Om_h_ * (alpha_gamma_ + (1.0 - alpha_gamma_) / (1.0 + pow(0.43 * ks, 4.0)));
    const T q = k_hmpc * theta2_ / gamma_eff;           // eq. 28, k in h/Mpc
    const T L0 = log(2.0 * detail::euler_e + 1.8 * q);  // eq. 29
    const T C0 = 14.2 + 731.0 / (1.0 + 62.5 * q);
    return L0 / (L0 + C0 * q * q);
  }

 private:
  T h_, Om_h_, s_, alpha_gamma_;
  double theta2_;
};

}  // namespace diffpm::cosmology
