/// \file
/// \brief Convergence angular power spectra C_ell in the Limber approximation, with the linear or
/// the halofit matter power.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "diffpm/core/constants.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/detail/gauss_legendre.hpp"
#include "diffpm/cosmology/halofit.hpp"
#include "diffpm/lensing/lensing_efficiency.hpp"

namespace diffpm::lensing {

/// Which matter power spectrum the Limber integral uses.
enum class NonlinearModel {
  linear,   ///< P_lin(k, a) = P_lin(k, 0) D1(a)^2
  halofit,  ///< cosmology::Halofit (Takahashi et al. 2012)
};

/// Resolution of the line-of-sight integral, a Gauss-Legendre rule in redshift (8 nodes per
/// panel). The baryon oscillations of P(k) (period 2 pi / r_s ~ 0.063 h/Mpc in k) become
/// oscillations along the line of sight at k = (ell + 1/2)/f_K(chi) with period ~0.063/k in
/// ln chi, for every ell, at every chi; panels of fixed width in ln z (never wider in ln chi:
/// chi(z) is concave) resolve them wherever they sit. The defaults (6 panels per e-fold of z
/// from z = 1e-3 to the farthest source, 6 halvings below: 8 (ceil(6 ln(1000 z_max)) + 6)
/// nodes, 304 for z_max = 0.2, 424 for 2.35) agree with a brute-force integral to 2.0e-7 for
/// ell = 2..10^4 with Eisenstein & Hu's wiggles (low and high, narrow and wide sources, flat
/// and curved) and to 2e-9 without (tests/lensing/test_limber.cpp; docs/cosmology.md).
struct LimberOptions {
  /// Panels of equal width in ln z per unit of ln z, from z = 1e-3 (chi ~ 3 Mpc/h, below which
  /// k >= 0.8 h/Mpc for ell >= 2: the wiggles are < 3e-5 of P there) to the farthest source.
  /// The error is that of the wiggles the rule no longer resolves, whose amplitude falls as a
  /// power of k (1.7e-5 of P at k = 1, 1.5e-6 at 2.3 h/Mpc): measured 8.0e-7 with 4,
  /// 2.8e-7 with 5, 2.0e-7 with 6, 7.6e-8 with 8.
  int panels_per_efold = 6;
  /// Panels below z = 1e-3, halving towards z = 0: [z/2, z], ..., [0, z / 2^refinement]
  /// (z = 1e-3). The integrand falls as ~chi^4 there; 6 levels and 10 agree to 2e-14.
  int refinement = 6;
};

/// Convergence power spectra C_ij(ell) in the Limber approximation, in the convention of CCL's
/// benchmarks (no spin-2 prefactor; tests/reference/ccl/README.md), any curvature (Kaiser
/// 1992, ApJ 388, 272; Bartelmann & Schneider 2001, Phys. Rep. 340, 291, sec. 6; ell + 1/2 as
/// in LoVerde & Afshordi 2008, PRD 78, 123506):
///   C_ij(ell) = int_0^chi_max dchi W_i W_j / f_K(chi)^2 P((ell + 1/2) / f_K(chi), a(chi)),
///   W(chi) = 3/2 Omega_m (H0/c)^2 f_K(chi) q(chi) / a(chi),   H0/c = 1/2997.92458 h/Mpc,
/// f_K = Background::transverse_distance (chi when flat), q the LensingEfficiency, chi_max the
/// nearer of the two efficiencies' chi_max. The f_K^2 cancels, leaving
///   C = (3/2 Omega_m (H0/c)^2)^2 int dz dchi/dz (1 + z)^2 q_i q_j P,  dchi/dz = (c/H0) / E(z).
/// (CCL instead evaluates P at (ell + 1/2)/chi and divides by chi^2 in a curved universe;
/// tests/reference/pyccl/README.md.)
///
/// Quadrature: Gauss-Legendre in z (LimberOptions) on [0, z_max], z_max the nearer farthest
/// source. The nodes are fixed redshifts and z_max does not depend on the cosmology either, so
/// with T = ParameterDual the derivatives come through chi(z), dchi/dz, f_K and q alone and
/// the discretised C_ell is a smooth function of the parameters, its derivatives exact.
/// Halofit's nonlinear scale is solved once per node, then shared by all ells; ells run in
/// parallel (OpenMP), each summed in a fixed order, so results do not depend on the threads.
/// Cost for 1000 ells, one core, EH spectrum, a source distribution to z = 2.35 (424 nodes):
/// twice that of the 208-node rule in chi this replaced, which could not resolve the wiggles;
/// measured on a shared machine 100 ms with halofit, 54 ms linear in double and 0.56 s with
/// halofit carrying all 8 derivatives, where that rule took 49 ms, 26 ms and 0.25 s
/// (docs/cosmology.md).
///
/// `qi` and `qj` must have been built on `cosmo` (checked); ells must be finite and >= 0.
template <class T>
std::vector<T> limber_convergence_cl(const cosmology::Cosmology<T>& cosmo,
                                     const LensingEfficiency<T>& qi, const LensingEfficiency<T>& qj,
                                     const std::vector<double>& ells,
                                     NonlinearModel model = NonlinearModel::halofit,
                                     const LimberOptions& options = {}) {
  if (&qi.cosmology() != &cosmo || &qj.cosmology() != &cosmo) {
    throw InvalidArgument(
        "limber_convergence_cl: the lensing efficiencies were built on another Cosmology object");
  }
  if (options.panels_per_efold < 1 || options.panels_per_efold > 10000) {
    throw InvalidArgument("limber_convergence_cl: panels_per_efold = " +
                          std::to_string(options.panels_per_efold) + " (must be in [1, 10000])");
  }
  if (options.refinement < 0 || options.refinement > 60) {
    throw InvalidArgument("limber_convergence_cl: refinement = " +
                          std::to_string(options.refinement) + " (must be in [0, 60])");
  }
  if (model != NonlinearModel::linear && model != NonlinearModel::halofit) {
    throw InvalidArgument("limber_convergence_cl: unknown nonlinear model " +
                          std::to_string(static_cast<int>(model)));
  }
  for (double ell : ells) {
    if (!(ell >= 0.0) || !std::isfinite(ell)) {
      throw InvalidArgument("limber_convergence_cl: ell = " + format_number(ell) +
                            " (must be finite and >= 0)");
    }
  }
  const double z_max = std::min(qi.z_max(), qj.z_max());

  // Panel edges in z, none of which depends on the cosmology: equal in ln z on [z_fine, z_max],
  // halving below z_fine (see LimberOptions).
  constexpr int order = 8;
  constexpr double z_fine = 1e-3;
  const cosmology::detail::GaussLegendre gl(order);
  const double z_lo = std::min(z_fine, z_max);
  std::vector<double> edges = {0.0};
  for (int r = options.refinement; r >= 1; --r) edges.push_back(std::ldexp(z_lo, -r));
  const double span = std::log(z_max / z_lo);
  const int fine = static_cast<int>(std::ceil(span * options.panels_per_efold - 1e-9));
  edges.push_back(z_lo);
  for (int p = 1; p <= fine; ++p)
    edges.push_back(p == fine ? z_max : z_lo * std::exp(span * p / fine));
  const int nodes = static_cast<int>(edges.size() - 1) * order;
  std::vector<double> z(nodes), w(nodes);
  for (std::size_t p = 0; p + 1 < edges.size(); ++p) {
    const double half = 0.5 * (edges[p + 1] - edges[p]);
    for (int j = 0; j < order; ++j) {
      z[p * order + j] = edges[p] + half * (1.0 + gl.nodes[j]);
      w[p * order + j] = half * gl.weights[j];
    }
  }

  // Everything that does not depend on ell, node by node.
  const double h0_over_c = 1.0 / constants::hubble_distance;
  const T prefactor = 1.5 * cosmo.parameters().Omega_m() * (h0_over_c * h0_over_c);
  const T prefactor2 = prefactor * prefactor;
  const auto& bg = cosmo.background();
  std::vector<T> inv_fk(nodes), weight(nodes);
  std::vector<cosmology::HalofitScale<T>> scale;
  const bool nonlinear = model == NonlinearModel::halofit;
  std::vector<T> growth2(nodes);
  if (nonlinear) scale.resize(nodes);
  const cosmology::Halofit<T>* halofit = nullptr;
  std::unique_ptr<cosmology::Halofit<T>> halofit_owner;
  if (nonlinear) {
    halofit_owner = std::make_unique<cosmology::Halofit<T>>(cosmo);
    halofit = halofit_owner.get();
  }
  for (int n = 0; n < nodes; ++n) {
    const double one_plus_z = 1.0 + z[n];
    const T a = T(1.0 / one_plus_z);
    const T chi = bg.comoving_distance(a);
    inv_fk[n] = 1.0 / bg.transverse_distance(chi);
    // dz dchi/dz q_i q_j / a^2, times the prefactor squared. dchi/dz = -(dchi/dln a) / (1 + z)
    // from the slope of the interpolated chi(a), so that this is the same integral as one over
    // chi; (c/H0)/E, which differs from that slope by up to 2e-7 between the table's nodes,
    // would move C_ell by ~1e-9.
    weight[n] =
        (w[n] * one_plus_z) * prefactor2 * qi(chi) * qj(chi) * (-bg.comoving_distance_slope(a));
    if (nonlinear) {
      scale[n] = halofit->at(a);
    } else {
      const T d = cosmo.growth().growth_factor(a);
      growth2[n] = d * d;
    }
  }

  std::vector<T> cl(ells.size());
  const auto& linear = cosmo.linear_power_today();
  const std::ptrdiff_t count = static_cast<std::ptrdiff_t>(ells.size());
  // Each ell's sum runs over the nodes in a fixed order: results do not depend on threads.
  DIFFPM_OMP(omp parallel for schedule(dynamic, 8))
  for (std::ptrdiff_t l = 0; l < count; ++l) {
    const double ell = ells[static_cast<std::size_t>(l)] + 0.5;
    T sum = T(0.0);
    for (int n = 0; n < nodes; ++n) {
      const T k = ell * inv_fk[n];
      const T p = nonlinear ? halofit->power(k, scale[n]) : T(linear(k) * growth2[n]);
      sum += weight[n] * p;
    }
    cl[static_cast<std::size_t>(l)] = sum;
  }
  return cl;
}

}  // namespace diffpm::lensing
