/// \file
/// \brief The dimensionless lensing efficiency q(chi) of a source distribution, flat or curved.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "diffpm/core/constants.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/detail/gauss_legendre.hpp"
#include "diffpm/cosmology/model.hpp"
#include "diffpm/lensing/redshift_distribution.hpp"

namespace diffpm::lensing {

/// q(chi) = int_chi^inf dchi_s n(chi_s) f_K(chi_s - chi) / f_K(chi_s) (Bartelmann & Schneider
/// 2001, Phys. Rep. 340, 291, sec. 6; f_K = Model::transverse_distance, chi for
/// Omega_k = 0), without the 3/2 Omega_m (H0/c)^2 f_K(chi) / a factor of the lensing kernel. A
/// fixed source at chi_s gives q = f_K(chi_s - chi)/f_K(chi_s) (1 - chi/chi_s when flat) for
/// chi < chi_s and 0 beyond. chi in Mpc/h; q is dimensionless.
///
/// The source distribution is fixed in redshift, so the integral is done in z. The addition
/// theorem f_K(chi_s - chi) = f_K(chi_s) c_K(chi) - c_K(chi_s) f_K(chi)
/// (Model::curvature_cosine, c_K = 1 when flat) splits it into two integrals that do not
/// depend on chi,
///   q(chi) = c_K(chi) int_{z(chi)}^{z_max} dz n(z) - f_K(chi) int_{z(chi)}^{z_max} dz n(z) M(z),
///   M(z) = c_K(chi(z)) / f_K(chi(z))   (1/chi(z) when flat),
/// and its dependence on the cosmology enters through chi(z) only. Construction integrates n
/// and n M over each panel of `SourceDistribution::panel_edges()` with 8-point Gauss-Legendre
/// and sums them from the top; a query then adds the panels above z(chi), c_K N - f_K M, to the
/// same rule on the partial panel [z(chi), z_{p+1}]: 8 evaluations of chi(z) and one of z(chi),
/// 0.75 microseconds in double, so it is cheap for the Born weights and the Limber integral.
/// Flat or curved, it agrees with a 4e4-point brute-force integral of f_K(chi_s - chi)/f_K(chi_s)
/// to 1e-9 absolute (the brute force's own accuracy; tests/lensing/test_limber.cpp); chi(z)
/// itself is good to 5e-10 (docs/cosmology.md).
///
/// Derivatives (T = ParameterDual) are exact, d/dOmega_k included (also at Omega_k = 0, where
/// f_K and c_K are series in Omega_k): chi(z) carries them at every node, and the lower limit
/// z(chi) needs none because the integrand vanishes there (f_K(0) = 0), so d/dtheta of the
/// limit drops out (Leibniz rule).
///
/// Any Omega_k, as long as the farthest source lies before the antipode of a closed universe
/// (sqrt(-Omega_k) chi_max H0/c < pi, so that f_K > 0 on (0, chi_max]; InvalidArgument
/// otherwise). The Born weights and the lightcone are flat-sky in a flat universe and refuse
/// Omega_k != 0 themselves (born.hpp). The cosmology (any cosmology::Model) is held by
/// reference and must outlive this object; constructing from a temporary is refused at compile
/// time.
template <class T>
class LensingEfficiency {
 public:
  LensingEfficiency(const cosmology::Model<T>& cosmo, const SourceDistribution& n)
      : cosmo_(&cosmo), n_(n) {
    if (n_.is_delta()) {
      chi_max_ = distance_at_redshift(n_.source_redshift());
      check_antipode();
      source_fk_ = cosmo.transverse_distance(chi_max_);
      source_ck_ = cosmo.curvature_cosine(chi_max_);
      return;
    }
    const cosmology::Model<T>& bg = cosmo;
    const cosmology::detail::GaussLegendre& gl = rule();
    const auto& edges = n_.panel_edges();
    const std::size_t panels = edges.size() - 1;
    chi_max_ = distance_at_redshift(edges.back());
    check_antipode();
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
        // The first panel of a distribution reaching z = 0 would see M ~ 1/z; it is never used
        // whole (z(chi) >= 0 lies in it), so its M is left at 0 instead.
        if (a > 0.0) {
          const T chi_s = distance_at_redshift(z);
          mp += (w * bg.curvature_cosine(chi_s)) / bg.transverse_distance(chi_s);
        }
      }
      n_above_[p] = n_above_[p + 1] + np;
      m_above_[p] = m_above_[p + 1] + mp;
    }
  }
  /// Refused: the efficiency keeps a reference to the cosmology.
  LensingEfficiency(cosmology::Model<T>&&, const SourceDistribution&) = delete;

  /// q(chi) for chi >= 0 (Mpc/h); 0 at and beyond chi_max().
  T operator()(const T& chi) const {
    const double c = value_of(chi);
    if (!(c >= 0.0) || !std::isfinite(c)) {
      throw OutOfRange("lensing efficiency: chi = " + format_number(c) +
                       " Mpc/h (must be finite and >= 0)");
    }
    if (c >= value_of(chi_max_)) return T(0.0);
    const cosmology::Model<T>& bg = *cosmo_;
    const T ck = bg.curvature_cosine(chi), fk = bg.transverse_distance(chi);
    // Flat: ck = 1 and fk = chi exactly, so these are 1 - chi/chi_s and N - chi M bit for bit.
    if (n_.is_delta()) return ck - fk * source_ck_ / source_fk_;

    const auto& edges = n_.panel_edges();
    // Panel p holding z(chi): edge_chi_ increases with z.
    const auto it = std::upper_bound(edge_chi_.begin(), edge_chi_.end(), c);
    if (it == edge_chi_.begin()) return ck * n_above_[0] - fk * m_above_[0];  // below z_min
    std::size_t p = static_cast<std::size_t>(it - edge_chi_.begin()) - 1;
    p = std::min(p, edges.size() - 2);
    const double z_lo = std::max(edges[p], redshift_at_distance(c));
    const double half = 0.5 * (edges[p + 1] - z_lo);
    T partial = T(0.0);
    const cosmology::detail::GaussLegendre& gl = rule();
    for (int j = 0; j < SourceDistribution::quadrature_order; ++j) {
      const double z = z_lo + half * (1.0 + gl.nodes[j]);
      const T chi_s = distance_at_redshift(z);
      partial += (half * gl.weights[j] * n_(z)) *
                 (ck - fk * bg.curvature_cosine(chi_s) / bg.transverse_distance(chi_s));
    }
    return partial + (ck * n_above_[p + 1] - fk * m_above_[p + 1]);
  }

  /// The farthest source distance, chi(z_max) in Mpc/h (chi(z_s) for a fixed source); q = 0
  /// beyond it.
  const T& chi_max() const { return chi_max_; }
  /// The farthest source redshift (z_s for a fixed source); it does not depend on the cosmology.
  double z_max() const { return n_.z_max(); }

  const SourceDistribution& source_distribution() const { return n_; }
  const cosmology::Model<T>& cosmology() const { return *cosmo_; }

 private:
  static const cosmology::detail::GaussLegendre& rule() {
    static const cosmology::detail::GaussLegendre gl(SourceDistribution::quadrature_order);
    return gl;
  }

  T distance_at_redshift(double z) const { return cosmo_->comoving_distance(T(1.0 / (1.0 + z))); }

  double redshift_at_distance(double chi) const {
    const double a = value_of(cosmo_->scale_factor_at_distance(T(chi)));
    return 1.0 / a - 1.0;
  }

  // A closed universe's f_K vanishes at its antipode, sqrt(-Omega_k) chi H0/c = pi: sources
  // there or beyond have no finite q.
  void check_antipode() const {
    const double ok = value_of(cosmo_->Omega_k());
    const double r = value_of(chi_max_) / constants::hubble_distance;
    if (ok < 0.0 && std::sqrt(-ok) * r >= 3.14159265358979323846) {
      throw InvalidArgument("lensing efficiency: Omega_k = " + format_number(ok) +
                            " puts the sources at chi = " + format_number(value_of(chi_max_)) +
                            " Mpc/h at or beyond the antipode of the closed universe");
    }
  }

  const cosmology::Model<T>* cosmo_;
  SourceDistribution n_;
  T chi_max_;
  T source_fk_ = T(0.0), source_ck_ = T(0.0);  // fixed source: f_K(chi_s), c_K(chi_s)
  std::vector<double> n_above_;                // int_{z_p}^{z_max} n dz
  std::vector<T> m_above_;        // int_{z_p}^{z_max} n c_K/f_K dz (panel 0 of z_min = 0: 0)
  std::vector<double> edge_chi_;  // chi(z_p), values
};

}  // namespace diffpm::lensing
