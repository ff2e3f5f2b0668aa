/// \file
/// \brief The transverse comoving distance f_K(chi) and its derivative c_K(chi) at a given
/// Omega_k, shared by Background and the Model interface so that both give the same bits.
#pragma once

#include <cmath>

#include "diffpm/core/constants.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/detail/math.hpp"

namespace diffpm::cosmology::detail {

/// f_K(chi) in Mpc/h for the comoving radial distance chi (Mpc/h): with
/// x = Omega_k (chi H0/c)^2, (c/H0)/sqrt(Omega_k) sinh(sqrt(x)) for Omega_k > 0 (open), the sine
/// with |Omega_k| for Omega_k < 0 (closed), chi for Omega_k = 0 (Hogg 1999, eq. 16). Near x = 0
/// a series keeps the derivative with respect to Omega_k exact at Omega_k = 0, where a branch
/// on the sign would drop it.
template <class T>
T transverse_distance(const T& Omega_k, const T& chi) {
  const T r = chi / constants::hubble_distance;
  const T x = Omega_k * r * r;
  const double xv = value_of(x);
  if (std::abs(xv) < 1e-2) {
    // sinh(sqrt x)/sqrt x = sum x^k / (2k+1)!, truncated where x^6/13! < 1e-22.
    const T series =
        1.0 + x / 6.0 * (1.0 + x / 20.0 * (1.0 + x / 42.0 * (1.0 + x / 72.0 * (1.0 + x / 110.0))));
    return chi * series;
  }
  const T sq = sqrt(abs(Omega_k));
  if (xv > 0) return constants::hubble_distance / sq * sinh(sq * r);
  return constants::hubble_distance / sq * sin(sq * r);
}

/// c_K(chi) = df_K/dchi, dimensionless: cosh(sqrt(x)) for Omega_k > 0, cos(sqrt(-x)) for
/// Omega_k < 0, 1 for Omega_k = 0 (x as in transverse_distance), with the same series near
/// x = 0.
template <class T>
T curvature_cosine(const T& Omega_k, const T& chi) {
  const T r = chi / constants::hubble_distance;
  const T x = Omega_k * r * r;
  const double xv = value_of(x);
  if (std::abs(xv) < 1e-2) {
    // cosh(sqrt x) = sum x^k / (2k)!, truncated where x^6/12! < 1e-21.
    return 1.0 +
           x / 2.0 * (1.0 + x / 12.0 * (1.0 + x / 30.0 * (1.0 + x / 56.0 * (1.0 + x / 90.0))));
  }
  const T sq = sqrt(abs(Omega_k));
  if (xv > 0) return cosh(sq * r);
  return cos(sq * r);
}

}  // namespace diffpm::cosmology::detail
