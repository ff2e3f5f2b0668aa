/// \file
/// \brief Limber convergence C_ell of every pair of N tomographic bins in one call, sharing the
/// matter power between the pairs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/lensing/lensing_efficiency.hpp"
#include "diffpm/lensing/limber_quadrature.hpp"

namespace diffpm::lensing {

/// The N(N+1)/2 spectra C_ij(ell), i <= j, of N tomographic bins, as limber_tomography_cl
/// returns them. Order of spectra(): row by row of the upper triangle, (0,0), (0,1), ...,
/// (0,N-1), (1,1), (1,2), ..., (N-1,N-1); pair_index(i, j) gives the position.
template <class T>
class TomographicSpectra {
 public:
  TomographicSpectra(std::size_t bins, std::vector<double> ells,
                     std::vector<std::vector<T>> spectra)
      : bins_(bins), ells_(std::move(ells)), spectra_(std::move(spectra)) {}

  /// Number of bins N.
  std::size_t bins() const { return bins_; }
  /// Number of spectra, N(N+1)/2.
  std::size_t pairs() const { return spectra_.size(); }
  /// The ells, as given.
  const std::vector<double>& ells() const { return ells_; }

  /// Position of C_ij in spectra() for a bins-bin set: i N - i(i-1)/2 + (j - i) with i <= j
  /// (the two indices may come in either order: C_ij = C_ji). InvalidArgument if i or j >= bins.
  static std::size_t pair_index(std::size_t i, std::size_t j, std::size_t bins) {
    if (i >= bins || j >= bins) {
      throw InvalidArgument("tomographic spectra: pair (" + std::to_string(i) + ", " +
                            std::to_string(j) + ") with " + std::to_string(bins) +
                            " bins (indices must be < bins)");
    }
    if (i > j) std::swap(i, j);
    return i * bins - i * (i - 1) / 2 + (j - i);
  }
  std::size_t pair_index(std::size_t i, std::size_t j) const { return pair_index(i, j, bins_); }

  /// C_ij(ell) at every ell, either order of i and j.
  const std::vector<T>& operator()(std::size_t i, std::size_t j) const {
    return spectra_[pair_index(i, j)];
  }
  /// All spectra in the order of pair_index.
  const std::vector<std::vector<T>>& spectra() const { return spectra_; }

 private:
  std::size_t bins_;
  std::vector<double> ells_;
  std::vector<std::vector<T>> spectra_;
};

/// Convergence C_ij(ell) of every pair i <= j of the N efficiencies `q`, each pair exactly the
/// integral limber_convergence_cl(cosmo, q[i], q[j], ells, model, options) computes (same
/// nodes, same products, same order of summation: equal to it bit for bit on the same
/// compiler and flags; tests/lensing/test_limber_tomography.cpp), for the cost of about one
/// such call plus one multiply-add per pair, node and ell.
///
/// What is shared. The rule of a pair is that of limber_convergence_cl on [0, z_ij], z_ij =
/// min(z_max,i, z_max,j): panels of a grid that does not depend on z_max, the last cut at z_ij
/// (LimberOptions). The union of the panels of the distinct z_max of the bins is built once:
/// the common grid up to the largest z_max plus one cut panel (8 nodes) per distinct z_max.
/// At each node of the union, once: chi, dchi/dz, 1/f_K, the prefactor, halofit's nonlinear
/// scale (or D1^2); once per bin and node (below the bin's z_max): q_i(chi_n); once per ell and
/// node: P((ell + 1/2)/f_K(chi_n), z_n), then used by every pair whose rule holds the node. A
/// pair then sums weight_ij,n P_n over its own panels in ascending z, as the single-pair
/// function does. (Integrating every pair to the largest z_max instead, with q = 0 beyond a
/// bin's z_max, would change the rule of the nearer pairs, whose q has a kink at z_max, and so
/// their results by the rule's error, 1e-9 to 1e-7, not by rounding.)
///
/// Ells run in parallel (OpenMP), each summed in a fixed order, so results do not depend on
/// the threads. Every q[i] must have been built on `cosmo` (checked), q must not be empty, ells
/// finite and >= 0 (InvalidArgument naming the parameter and its value).
/// T is double or cosmology::ParameterDual, as for limber_convergence_cl. Cost:
/// docs/benchmarks.md ("Tomographic Limber C_ell").
template <class T>
TomographicSpectra<T> limber_tomography_cl(const cosmology::Cosmology<T>& cosmo,
                                           const std::vector<LensingEfficiency<T>>& q,
                                           const std::vector<double>& ells,
                                           NonlinearModel model = NonlinearModel::halofit,
                                           const LimberOptions& options = {}) {
  constexpr const char* who = "limber_tomography_cl";
  if (q.empty()) {
    throw InvalidArgument(std::string(who) +
                          ": efficiencies: an empty list (need at least one bin)");
  }
  for (std::size_t i = 0; i < q.size(); ++i) {
    if (&q[i].cosmology() != &cosmo) {
      throw InvalidArgument(std::string(who) + ": efficiencies[" + std::to_string(i) +
                            "] was built on another Cosmology object");
    }
  }
  detail::check_limber_input(who, model, options, ells);
  const std::size_t bins = q.size();
  constexpr int order = detail::limber_order;

  // The union of the panels of every distinct z_max, keyed by their edges (the shared panels
  // come out of limber_panel_edges with the same bits), in ascending z; then each bin's list.
  std::vector<double> zmax(bins);
  for (std::size_t i = 0; i < bins; ++i) zmax[i] = q[i].z_max();
  std::vector<double> distinct = zmax;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::map<std::pair<double, double>, std::size_t> panel_of;
  std::vector<std::vector<std::pair<double, double>>> panels_of_zmax(distinct.size());
  for (std::size_t d = 0; d < distinct.size(); ++d) {
    const auto edges = detail::limber_panel_edges(distinct[d], options);
    for (std::size_t p = 0; p + 1 < edges.size(); ++p) {
      panels_of_zmax[d].emplace_back(edges[p], edges[p + 1]);
      panel_of.emplace(std::make_pair(edges[p], edges[p + 1]), 0);
    }
  }
  std::vector<double> z, w;
  {
    std::size_t index = 0;
    for (auto& [panel, at] : panel_of) {  // ordered by (lo, hi)
      at = index++;
      detail::append_limber_panel(panel.first, panel.second, z, w);
    }
  }
  const std::size_t nodes = z.size();
  // Node lists of each distinct z_max, in the single-pair function's order (ascending panels).
  std::vector<std::vector<std::size_t>> nodes_of_zmax(distinct.size());
  for (std::size_t d = 0; d < distinct.size(); ++d) {
    for (const auto& panel : panels_of_zmax[d]) {
      const std::size_t first = panel_of.at(panel) * order;
      for (int j = 0; j < order; ++j) nodes_of_zmax[d].push_back(first + j);
    }
  }

  std::unique_ptr<cosmology::Halofit<T>> halofit;
  if (model == NonlinearModel::halofit) halofit = std::make_unique<cosmology::Halofit<T>>(cosmo);
  const auto bg = detail::limber_node_background(cosmo, z, w, halofit.get());

  // q_i at the nodes below z_max,i (the only ones a pair with bin i uses).
  std::vector<std::vector<T>> qn(bins, std::vector<T>(nodes, T(0.0)));
  for (std::size_t i = 0; i < bins; ++i)
    for (std::size_t n = 0; n < nodes; ++n)
      if (z[n] < zmax[i]) qn[i][n] = q[i](bg.chi[n]);

  // Per pair: its node list (that of min(z_max,i, z_max,j)) and weights.
  const std::size_t pairs = bins * (bins + 1) / 2;
  std::vector<const std::vector<std::size_t>*> pair_nodes(pairs);
  std::vector<std::vector<T>> pair_weight(pairs);
  for (std::size_t i = 0; i < bins; ++i) {
    for (std::size_t j = i; j < bins; ++j) {
      const std::size_t p = TomographicSpectra<T>::pair_index(i, j, bins);
      const double zm = std::min(zmax[i], zmax[j]);
      const auto d = static_cast<std::size_t>(
          std::lower_bound(distinct.begin(), distinct.end(), zm) - distinct.begin());
      pair_nodes[p] = &nodes_of_zmax[d];
      pair_weight[p].reserve(nodes_of_zmax[d].size());
      for (std::size_t n : nodes_of_zmax[d])
        pair_weight[p].push_back(
            detail::limber_pair_weight(bg.base[n], qn[i][n], qn[j][n], bg.dchi_dz[n]));
    }
  }

  std::vector<std::vector<T>> cl(pairs, std::vector<T>(ells.size()));
  const std::ptrdiff_t count = static_cast<std::ptrdiff_t>(ells.size());
  // One ell per iteration: P at every node once, then every pair's sum in a fixed order, so
  // results do not depend on the threads.
  DIFFPM_OMP(omp parallel) {
    std::vector<T> power(nodes);
    DIFFPM_OMP(omp for schedule(dynamic, 4))
    for (std::ptrdiff_t l = 0; l < count; ++l) {
      const double ell_half = ells[static_cast<std::size_t>(l)] + 0.5;
      for (std::size_t n = 0; n < nodes; ++n)
        power[n] = detail::limber_node_power(cosmo, halofit.get(), bg, n, ell_half);
      for (std::size_t p = 0; p < pairs; ++p) {
        const auto& list = *pair_nodes[p];
        cl[p][static_cast<std::size_t>(l)] = detail::limber_weighted_sum(
            pair_weight[p].data(), power.data(), list.data(), list.size());
      }
    }
  }
  return TomographicSpectra<T>(bins, ells, std::move(cl));
}

}  // namespace diffpm::lensing
