/// \file
/// \brief The lightcone's shells: K planes equally spaced in comoving distance, and the line-of-
/// sight weight that assigns each particle to its two nearest planes.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/background.hpp"
#include "diffpm/cosmology/model.hpp"

namespace diffpm::lensing {

/// K planes at comoving distances chi_i = (i + 1) Delta, i = 0 .. K-1, Delta = chi_max / (K + 1),
/// painted when the simulation reaches a_i = a(chi_i).
///
/// Why these nodes: the Born integral int_0^chi_max dchi g(chi) delta(chi) has a weight
/// g = chi q(chi) / a that vanishes at chi = 0 and at chi_max (no lensing by matter at the
/// observer or beyond the farthest source). Each particle is weighted into its two nearest
/// planes with the hat Lambda_i(s) = max(0, 1 - |s - chi_i| / Delta) (CIC along the line of
/// sight, docs/physics.md): the hats of nodes 0, chi_1 .. chi_K, chi_max sum to one on [0,
/// chi_max], and the two end nodes carry zero weight, so K planes give the trapezoidal rule on K +
/// 1 intervals with no plane wasted. The rule is exact when g is linear between nodes; its error is
/// O(Delta^2 g''), and the hats keep the map continuous in the particle positions and in the
/// cosmology (which moves chi_i), where hard shell edges would make it jump.
///
/// S is the scalar type: double for values, a dual number for derivatives of chi_i, a_i and
/// Delta with respect to the cosmological parameters.
template <class S>
struct Shells {
  S width;             ///< Delta, Mpc/h
  std::vector<S> chi;  ///< chi_i, Mpc/h, increasing
  std::vector<S> a;    ///< a(chi_i), decreasing

  int count() const { return static_cast<int>(chi.size()); }

  /// Shells out to chi_max (Mpc/h, the distance of the farthest source), a_i from the
  /// cosmology's scale_factor_at_distance.
  static Shells make(const cosmology::Model<S>& cosmology, const S& chi_max, int planes) {
    return make_with(cosmology, chi_max, planes);
  }
  /// The same from a Background's a(chi) (the same bits as from its Cosmology).
  static Shells make(const cosmology::Background<S>& background, const S& chi_max, int planes) {
    return make_with(background, chi_max, planes);
  }

 private:
  template <class Distances>
  static Shells make_with(const Distances& distances, const S& chi_max, int planes) {
    if (planes < 1 || planes > 100000) {
      throw InvalidArgument("lightcone: planes = " + std::to_string(planes) +
                            " (must be in [1, 100000])");
    }
    if (!(value_of(chi_max) > 0.0) || !std::isfinite(value_of(chi_max))) {
      throw InvalidArgument("lightcone: farthest source distance = " +
                            format_number(value_of(chi_max)) + " Mpc/h (must be finite and > 0)");
    }
    Shells s;
    s.width = chi_max / double(planes + 1);
    for (int i = 0; i < planes; ++i) {
      s.chi.push_back(s.width * double(i + 1));
      s.a.push_back(distances.scale_factor_at_distance(s.chi.back()));
    }
    return s;
  }
};

/// The line-of-sight hat of a plane at chi with half-width Delta, at distance s:
/// value max(0, 1 - |s - chi| / Delta) and its derivatives with respect to s, chi and Delta
/// (zero outside the support; at the kinks, the one-sided derivative of the side |d| > 0).
struct Hat {
  double value = 0.0, d_s = 0.0, d_chi = 0.0, d_width = 0.0;
};

DIFFPM_HOST_DEVICE inline Hat line_of_sight_hat(double s, double chi, double width) {
  Hat h;
  const double d = s - chi;
  const double ad = std::fabs(d);
  if (!(ad < width)) return h;
  h.value = 1.0 - ad / width;
  const double sign = d >= 0.0 ? 1.0 : -1.0;
  h.d_s = -sign / width;
  h.d_chi = sign / width;
  h.d_width = ad / (width * width);
  return h;
}

}  // namespace diffpm::lensing
