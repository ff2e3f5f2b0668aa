/// \file
/// \brief The line-of-sight quadrature of the Limber integrals: its options, its nodes in
/// redshift, and the per-node quantities shared by limber.hpp and limber_tomography.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/core/constants.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/detail/gauss_legendre.hpp"
#include "diffpm/cosmology/halofit.hpp"

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
/// chi(z) is concave) resolve them wherever they sit. The panels lie on one grid that does not
/// depend on z_max, edges z_fine exp(p / panels_per_efold) (z_fine = 1e-3), the last one cut at
/// z_max: integrals to different z_max share all their panels but the last (which is what lets
/// limber_tomography.hpp share the power spectrum between pairs of bins). The defaults (6
/// panels per e-fold of z from z = 1e-3 to the farthest source, 6 halvings below: 8 (ceil(6
/// ln(1000 z_max)) + 6) nodes, 304 for z_max = 0.2, 424 for 2.35) agree with a brute-force
/// integral to 2.0e-7 for ell = 2..10^4 with Eisenstein & Hu's wiggles (low and high, narrow
/// and wide sources, flat and curved) and to 2e-9 without (tests/lensing/test_limber.cpp;
/// docs/cosmology.md).
struct LimberOptions {
  /// Panels of width 1/panels_per_efold in ln z, from z = 1e-3 (chi ~ 3 Mpc/h, below which
  /// k >= 0.8 h/Mpc for ell >= 2: the wiggles are < 3e-5 of P there) to the farthest source
  /// (the last panel cut there, so no wider). The error is that of the wiggles the rule no
  /// longer resolves, whose amplitude falls as a power of k (1.7e-5 of P at k = 1, 1.5e-6 at
  /// 2.3 h/Mpc): measured 8.0e-7 with 4, 2.8e-7 with 5, 2.0e-7 with 6, 7.6e-8 with 8.
  int panels_per_efold = 6;
  /// Panels below z = 1e-3, halving towards z = 0: [z/2, z], ..., [0, z / 2^refinement]
  /// (z = 1e-3). The integrand falls as ~chi^4 there; 6 levels and 10 agree to 2e-14.
  int refinement = 6;
};

namespace detail {

/// Gauss-Legendre nodes per panel of the Limber rule.
inline constexpr int limber_order = 8;

/// Checks the model, the options and the ells of a Limber call; `who` names the function in
/// the messages (InvalidArgument).
inline void check_limber_input(const char* who, NonlinearModel model, const LimberOptions& options,
                               const std::vector<double>& ells) {
  const std::string w = who;
  if (options.panels_per_efold < 1 || options.panels_per_efold > 10000) {
    throw InvalidArgument(w + ": panels_per_efold = " + std::to_string(options.panels_per_efold) +
                          " (must be in [1, 10000])");
  }
  if (options.refinement < 0 || options.refinement > 60) {
    throw InvalidArgument(w + ": refinement = " + std::to_string(options.refinement) +
                          " (must be in [0, 60])");
  }
  if (model != NonlinearModel::linear && model != NonlinearModel::halofit) {
    throw InvalidArgument(w + ": unknown nonlinear model " +
                          std::to_string(static_cast<int>(model)));
  }
  for (double ell : ells) {
    if (!(ell >= 0.0) || !std::isfinite(ell)) {
      throw InvalidArgument(w + ": ell = " + format_number(ell) + " (must be finite and >= 0)");
    }
  }
}

/// Panel edges in z of the rule on [0, z_max] (z_max > 0), none of which depends on the
/// cosmology: `refinement` halvings below z_lo = min(1e-3, z_max), then the grid
/// z_lo exp(p / panels_per_efold), p = 1, 2, ..., whose last panel is cut at z_max (see
/// LimberOptions). For z_max >= 1e-3 every edge but the last is independent of z_max: two
/// calls share all the panels below the smaller z_max's last one, bit for bit.
inline std::vector<double> limber_panel_edges(double z_max, const LimberOptions& options) {
  constexpr double z_fine = 1e-3;
  const double z_lo = std::min(z_fine, z_max);
  std::vector<double> edges = {0.0};
  for (int r = options.refinement; r >= 1; --r) edges.push_back(std::ldexp(z_lo, -r));
  const double span = std::log(z_max / z_lo);
  const int fine = static_cast<int>(std::ceil(span * options.panels_per_efold - 1e-9));
  edges.push_back(z_lo);
  for (int p = 1; p <= fine; ++p) {
    edges.push_back(p == fine ? z_max
                              : z_lo * std::exp(static_cast<double>(p) / options.panels_per_efold));
  }
  return edges;
}

/// The 8 Gauss-Legendre nodes and weights of the panel [lo, hi], appended to z and w.
inline void append_limber_panel(double lo, double hi, std::vector<double>& z,
                                std::vector<double>& w) {
  static const cosmology::detail::GaussLegendre gl(limber_order);
  const double half = 0.5 * (hi - lo);
  for (int j = 0; j < limber_order; ++j) {
    z.push_back(lo + half * (1.0 + gl.nodes[j]));
    w.push_back(half * gl.weights[j]);
  }
}

/// What the Limber integrand needs at each node that depends neither on ell nor on the bins:
/// chi(z_n), 1/f_K(chi_n), the weight w_n (1 + z_n) (3/2 Omega_m (H0/c)^2)^2, dchi/dz, and
/// halofit's nonlinear scale (halofit) or D1^2 (linear).
template <class T>
struct LimberNodeBackground {
  std::vector<T> chi, inv_fk, base, dchi_dz;
  std::vector<cosmology::HalofitScale<T>> scale;  // halofit
  std::vector<T> growth2;                         // linear
};

/// Fills a LimberNodeBackground at the nodes z (weights w); `halofit` is null for the linear
/// model.
template <class T>
LimberNodeBackground<T> limber_node_background(const cosmology::Cosmology<T>& cosmo,
                                               const std::vector<double>& z,
                                               const std::vector<double>& w,
                                               const cosmology::Halofit<T>* halofit) {
  const std::size_t nodes = z.size();
  const double h0_over_c = 1.0 / constants::hubble_distance;
  const T prefactor = 1.5 * cosmo.parameters().Omega_m() * (h0_over_c * h0_over_c);
  const T prefactor2 = prefactor * prefactor;
  const auto& bg = cosmo.background();
  LimberNodeBackground<T> out;
  out.chi.resize(nodes);
  out.inv_fk.resize(nodes);
  out.base.resize(nodes);
  out.dchi_dz.resize(nodes);
  if (halofit) {
    out.scale.resize(nodes);
  } else {
    out.growth2.resize(nodes);
  }
  for (std::size_t n = 0; n < nodes; ++n) {
    const double one_plus_z = 1.0 + z[n];
    const T a = T(1.0 / one_plus_z);
    out.chi[n] = bg.comoving_distance(a);
    out.inv_fk[n] = 1.0 / bg.transverse_distance(out.chi[n]);
    out.base[n] = (w[n] * one_plus_z) * prefactor2;
    // dchi/dz = -(dchi/dln a) / (1 + z) from the slope of the interpolated chi(a), so that the
    // rule is the same integral as one over chi; (c/H0)/E, which differs from that slope by up
    // to 2e-7 between the table's nodes, would move C_ell by ~1e-9. (The 1/(1 + z) cancels
    // against the (1 + z)^2 = 1/a^2 of the kernels, leaving the (1 + z) in `base`.)
    out.dchi_dz[n] = -bg.comoving_distance_slope(a);
    if (halofit) {
      out.scale[n] = halofit->at(a);
    } else {
      const T d = cosmo.growth().growth_factor(a);
      out.growth2[n] = d * d;
    }
  }
  return out;
}

/// The weight of node n in C_ij: base_n q_i(chi_n) q_j(chi_n) dchi/dz_n, in this order (both
/// Limber functions multiply the same way, so that they agree bit for bit).
template <class T>
T limber_pair_weight(const T& base, const T& qi, const T& qj, const T& dchi_dz) {
  const T w = base * qi * qj * dchi_dz;
  return w;
}

/// sum_m weight[m] power[index[m]] (index null: power[m]), m = 0..count-1 in this order, the
/// C_ell of one pair at one ell. For a dual number the derivative components are summed as
/// plain doubles with T's own arithmetic (sum' += w' p + p' w), so to the same bits as
/// `sum += weight[m] * p`, in a loop the compiler vectorises and keeps in registers. Both
/// Limber functions sum through here, which keeps them equal bit for bit.
template <class T>
T limber_weighted_sum(const T* weight, const T* power, const std::size_t* index,
                      std::size_t count) {
  if constexpr (std::is_arithmetic_v<T>) {
    T sum = 0.0;
    for (std::size_t m = 0; m < count; ++m) sum += weight[m] * power[index ? index[m] : m];
    return sum;
  } else {
    constexpr int n = static_cast<int>(T::DerType::RowsAtCompileTime);
    static_assert(n > 0, "limber_weighted_sum needs a fixed number of derivative components");
    double value = 0.0;
    double d[n] = {};
    for (std::size_t m = 0; m < count; ++m) {
      const T& w = weight[m];
      const T& p = power[index ? index[m] : m];
      const double wv = w.value(), pv = p.value();
      value += wv * pv;
      const double* wd = w.derivatives().data();
      const double* pd = p.derivatives().data();
      for (int i = 0; i < n; ++i) d[i] += wd[i] * pv + pd[i] * wv;
    }
    T sum(value);
    for (int i = 0; i < n; ++i) sum.derivatives()[i] = d[i];
    return sum;
  }
}

/// P(k = ell_half / f_K, z_n) at node n of `bg` (ell_half = ell + 1/2).
template <class T>
T limber_node_power(const cosmology::Cosmology<T>& cosmo, const cosmology::Halofit<T>* halofit,
                    const LimberNodeBackground<T>& bg, std::size_t n, double ell_half) {
  const T k = ell_half * bg.inv_fk[n];
  if (halofit) return halofit->power(k, bg.scale[n]);
  return T(cosmo.linear_power_today()(k) * bg.growth2[n]);
}

}  // namespace detail
}  // namespace diffpm::lensing
