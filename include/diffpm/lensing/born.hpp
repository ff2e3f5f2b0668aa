/// \file
/// \brief The Born-approximation convergence: a weighted sum of the density planes seen at the
/// map's pixels, its lensing weights, and the adjoint.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/core/constants.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/lensing/flat_map.hpp"
#include "diffpm/lensing/shells.hpp"

namespace diffpm::lensing {

/// Throws InvalidArgument unless the value of Omega_k is 0. The Born weights below and the
/// lightcone (lightcone.hpp) are those of a flat universe, chi where a curved one has f_K(chi),
/// on a flat sky tiled by a periodic box; a curved cosmology would give maps that are silently
/// wrong. (LensingEfficiency and limber_convergence_cl handle curvature.) `who` names the
/// caller in the message.
inline void require_flat_universe(double Omega_k, const std::string& who) {
  if (Omega_k != 0.0) {
    throw InvalidArgument(who + ": Omega_k = " + format_number(Omega_k) +
                          " (the lightcone and its Born weights are those of a flat universe; "
                          "only Omega_k = 0 is supported)");
  }
}

/// The Born weights of the planes for one source distribution with lensing efficiency q:
///   c_i = 3/2 Omega_m (H0/c)^2 Delta chi_i q(chi_i) / a_i,
/// so that kappa(theta) = sum_i c_i delta_i(chi_i theta) (Bartelmann & Schneider 2001, eq. 6.16
/// in the Born approximation, flat universe; the trapezoidal rule of lensing/shells.hpp). q is
/// the dimensionless efficiency int_chi dchi_s n(chi_s) (chi_s - chi) / chi_s (lensing/
/// lensing_efficiency.hpp), called as q(chi_i). S = double or a dual number: the weights carry
/// their derivatives with respect to the cosmological parameters.
template <class S, class Q>
std::vector<S> born_weights(const S& Omega_m, const Shells<S>& shells, const Q& q) {
  const double h0_over_c = 1.0 / constants::hubble_distance;  // h/Mpc
  std::vector<S> c;
  c.reserve(shells.chi.size());
  for (std::size_t i = 0; i < shells.chi.size(); ++i) {
    c.push_back(1.5 * Omega_m * (h0_over_c * h0_over_c) * shells.width * shells.chi[i] *
                q(shells.chi[i]) / shells.a[i]);
  }
  return c;
}

namespace detail {
template <class T>
void check_same_map(const Map<T>& a, const Map<T>& b, const char* fn, const char* na,
                    const char* nb) {
  if (a.geometry != b.geometry || a.data.size() != b.data.size() ||
      a.data.size() != a.geometry.size()) {
    throw InvalidArgument(std::string(fn) + ": " + na + " (" + std::to_string(a.geometry.pixels) +
                          " pixels, " + format_number(a.geometry.fov_deg) + " deg) and " + nb +
                          " (" + std::to_string(b.geometry.pixels) + " pixels, " +
                          format_number(b.geometry.fov_deg) + " deg) differ");
  }
}
}  // namespace detail

/// kappa += c * plane_map: one plane's term of the Born sum (plane_map from interpolate_plane).
template <class T>
void born_accumulate(const Map<T>& plane_map, double c, Map<T>& kappa) {
  detail::check_same_map(plane_map, kappa, "born_accumulate", "plane map", "kappa");
  const std::ptrdiff_t n = std::ptrdiff_t(kappa.data.size());
  const T cc = static_cast<T>(c);
  DIFFPM_OMP(omp parallel for schedule(static))
  for (std::ptrdiff_t i = 0; i < n; ++i) kappa.data[i] += cc * plane_map.data[i];
}

/// The adjoint of born_accumulate: plane_map_bar += c * kappa_bar (sized, zeros, if empty) and
/// returns dL/dc = <kappa_bar, plane_map>, summed in double in pixel order.
template <class T>
double born_accumulate_adjoint(const Map<T>& plane_map, double c, const Map<T>& kappa_bar,
                               Map<T>& plane_map_bar) {
  detail::check_same_map(plane_map, kappa_bar, "born_accumulate_adjoint", "plane map", "kappa_bar");
  if (plane_map_bar.data.empty()) plane_map_bar = Map<T>(plane_map.geometry);
  detail::check_same_map(plane_map, plane_map_bar, "born_accumulate_adjoint", "plane map",
                         "plane_map_bar");
  double dc = 0.0;
  const T cc = static_cast<T>(c);
  for (std::size_t i = 0; i < kappa_bar.data.size(); ++i) {
    plane_map_bar.data[i] += cc * kappa_bar.data[i];
    dc += double(kappa_bar.data[i]) * double(plane_map.data[i]);
  }
  return dc;
}

}  // namespace diffpm::lensing
