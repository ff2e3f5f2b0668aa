/// \file
/// \brief The dimensionless lensing efficiency q(chi) of a source distribution in a flat universe.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/detail/gauss_legendre.hpp"
#include "diffpm/lensing/redshift_distribution.hpp"

namespace diffpm::lensing {

/// q(chi) = int_chi^inf dchi_s n(chi_s) (chi_s - chi) / chi_s for a flat universe (PHYSICS.md,
/// "Lightcone planes"; Bartelmann & Schneider 2001, Phys. Rep. 340, 291, sec. 6, with
/// f_K(chi) = chi), without the 3/2 Omega_m (H0/c)^2 chi / a factor of the lensing kernel. A
/// fixed source at chi_s gives q = 1 - chi/chi_s for chi < chi_s and 0 beyond. chi in Mpc/h;
/// q is dimensionless.
///
/// The source distribution is fixed in redshift, so the integral is done in z,
///   q(chi) = int_{z(chi)}^{z_max} dz n(z) (1 - chi / chi(z)),
/// and its dependence on the cosmology enters through chi(z) only. Construction integrates
/// n(z) and n(z)/chi(z) over each panel of `SourceDistribution::panel_edges()` with 8-point
/// Gauss-Legendre and sums them from the top; a query then adds the panels above z(chi),
/// N - chi M, to the same rule on the partial panel [z(chi), z_{p+1}]: 8 evaluations of chi(z)
/// and one of z(chi), 0.6 microseconds in double, so it is cheap for the Born weights and the
/// Limber integral. It agrees with a 4e4-point brute-force integral to 1e-9 absolute (the
/// brute force's own accuracy; tests/lensing/test_limber.cpp); chi(z) itself is good to 5e-10
/// (cosmology.md).
///
/// Derivatives (T = ParameterDual) are exact: chi(z) carries them at every node, and the lower
/// limit z(chi) needs none because the integrand vanishes there (chi(z(chi)) = chi), so
/// d/dtheta of the limit drops out (Leibniz rule).
///
/// Only flat universes (value of Omega_k exactly 0; its derivative component is kept, and in a
/// curved universe chi would become f_K(chi)). The Cosmology is held by reference and must
/// outlive this object; constructing from a temporary is refused at compile time.
template <class T>
class LensingEfficiency {
 public:
  LensingEfficiency(const cosmology::Cosmology<T>& cosmo, const SourceDistribution& n)
      : cosmo_(&cosmo), n_(n) {
    const double ok = value_of(cosmo.parameters().Omega_k);
    if (ok != 0.0) {
      throw InvalidArgument("lensing efficiency: Omega_k = " + format_number(ok) +
                            " (only flat universes, Omega_k = 0, are supported)");
    }
    if (n_.is_delta()) {
      chi_max_ = distance_at_redshift(n_.source_redshift());
      return;
    }
    const cosmology::detail::GaussLegendre& gl = rule();
    const auto& edges = n_.panel_edges();
    const std::size_t panels = edges.size() - 1;
    n_above_.assign(panels + 1, 0.0);
    m_above_.assign(panels + 1, T(0.0));
    edge_chi_.resize(edges.size());
    for (std::size_t i = 0; i < edges.size(); ++i)
      edge_chi_[i] = value_of(distance_at_redshift(edges[i]));
    for (std::size_t p = panels; p-- > 0;) {
      const double a = edges[p], b = edges[p + 1], half = 0.5 * (b - a);
      double np = 0.0;
      T mp = T(0.0);
      for (int j = 0; j < SourceDistribution::quadrature_order; ++j) {
        const double z = a + half * (1.0 + gl.nodes[j]);
        const double w = half * gl.weights[j] * n_(z);
        np += w;
        // The first panel of a distribution reaching z = 0 would see 1/chi ~ 1/z; it is never
        // used whole (z(chi) >= 0 lies in it), so its M is left at 0 instead.
        if (a > 0.0) mp += w / distance_at_redshift(z);
      }
      n_above_[p] = n_above_[p + 1] + np;
      m_above_[p] = m_above_[p + 1] + mp;
    }
    chi_max_ = distance_at_redshift(edges.back());
  }
  /// Refused: the efficiency keeps a reference to the cosmology.
  LensingEfficiency(cosmology::Cosmology<T>&&, const SourceDistribution&) = delete;

  /// q(chi) for chi >= 0 (Mpc/h); 0 at and beyond chi_max().
  T operator()(const T& chi) const {
    const double c = value_of(chi);
    if (!(c >= 0.0) || !std::isfinite(c)) {
      throw OutOfRange("lensing efficiency: chi = " + format_number(c) +
                       " Mpc/h (must be finite and >= 0)");
    }
    if (c >= value_of(chi_max_)) return T(0.0);
    if (n_.is_delta()) return 1.0 - chi / chi_max_;

    const auto& edges = n_.panel_edges();
    // Panel p holding z(chi): edge_chi_ increases with z.
    const auto it = std::upper_bound(edge_chi_.begin(), edge_chi_.end(), c);
    if (it == edge_chi_.begin()) return T(n_above_[0]) - chi * m_above_[0];  // below z_min
    std::size_t p = static_cast<std::size_t>(it - edge_chi_.begin()) - 1;
    p = std::min(p, edges.size() - 2);
    const double z_lo = std::max(edges[p], redshift_at_distance(c));
    const double half = 0.5 * (edges[p + 1] - z_lo);
    T partial = T(0.0);
    const cosmology::detail::GaussLegendre& gl = rule();
    for (int j = 0; j < SourceDistribution::quadrature_order; ++j) {
      const double z = z_lo + half * (1.0 + gl.nodes[j]);
      partial += (half * gl.weights[j] * n_(z)) * (1.0 - chi / distance_at_redshift(z));
    }
    return partial + (n_above_[p + 1] - chi * m_above_[p + 1]);
  }

  /// The farthest source distance, chi(z_max) in Mpc/h (chi(z_s) for a fixed source); q = 0
  /// beyond it.
  const T& chi_max() const { return chi_max_; }

  const SourceDistribution& source_distribution() const { return n_; }
  const cosmology::Cosmology<T>& cosmology() const { return *cosmo_; }

 private:
  static const cosmology::detail::GaussLegendre& rule() {
    static const cosmology::detail::GaussLegendre gl(SourceDistribution::quadrature_order);
    return gl;
  }

  T distance_at_redshift(double z) const {
    return cosmo_->background().comoving_distance(T(1.0 / (1.0 + z)));
  }

  double redshift_at_distance(double chi) const {
    const double a = value_of(cosmo_->background().scale_factor_at_distance(T(chi)));
    return 1.0 / a - 1.0;
  }

  const cosmology::Cosmology<T>* cosmo_;
  SourceDistribution n_;
  T chi_max_;
  std::vector<double> n_above_;   // int_{z_p}^{z_max} n dz
  std::vector<T> m_above_;        // int_{z_p}^{z_max} n / chi(z) dz (panel 0 of z_min = 0: 0)
  std::vector<double> edge_chi_;  // chi(z_p), values
};

}  // namespace diffpm::lensing
