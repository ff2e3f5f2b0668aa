/// \file
/// \brief BBKS transfer function with Sugiyama's baryon correction to the shape parameter.
#pragma once

#include "diffpm/cosmology/detail/math.hpp"
#include "diffpm/cosmology/parameters.hpp"

namespace diffpm::cosmology {

/// Bardeen, Bond, Kaiser & Szalay 1986 (ApJ 304, 15, appendix G) with the shape parameter of
/// Sugiyama 1995 (ApJS 100, 281), Gamma = Omega_m h exp(-Omega_b (1 + sqrt(2h)/Omega_m)):
///   q = k Theta_2.7^2 / Gamma (k in h/Mpc), Theta_2.7 = T_CMB / 2.7 K,
///   T(q) = ln(1 + 2.34 q)/(2.34 q) [1 + 3.89 q + (16.1 q)^2 + (5.46 q)^3 + (6.71 q)^4]^(-1/4).
/// CCL's BBKS benchmarks use T_CMB = 2.7 K, where the Theta factor is 1.
template <class T>
class Bbks {
 public:
  explicit Bbks(const Parameters<T>& p) {
    validate(p);
    const T gamma = p.Omega_m() * p.h * exp(-p.Omega_b * (1.0 + sqrt(2.0 * p.h) / p.Omega_m()));
    const double theta = p.T_CMB / 2.7;
    inv_gamma_ = theta * theta / gamma;
  }

  template <class K>
  T operator()(const K& k_hmpc) const {
    const T q = k_hmpc * inv_gamma_;
    const double qv = value_of(q);
    // ln(1+x)/x -> 1 - x/2 + x^2/3 as x -> 0, where the ratio would cancel.
    const T x = 2.34 * q;
    const T lead = (qv < 1e-6) ? T(1.0 - x / 2.0 + x * x / 3.0) : T(log(1.0 + x) / x);
    const T poly = 1.0 + 3.89 * q + pow(16.1 * q, 2.0) + pow(5.46 * q, 3.0) + pow(6.71 * q, 4.0);
    return lead * pow(poly, -0.25);
  }

 private:
  T inv_gamma_;
};

}  // namespace diffpm::cosmology
