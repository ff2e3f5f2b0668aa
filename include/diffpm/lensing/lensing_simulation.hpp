/// \file
/// \brief A forward run with its lightcone: initial conditions, LPT, PM steps, shells painted at
/// their scale factors, and Born convergence maps for several source distributions.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/model.hpp"
#include "diffpm/lensing/born.hpp"
#include "diffpm/lensing/lensing_efficiency.hpp"
#include "diffpm/lensing/lightcone.hpp"
#include "diffpm/lensing/lightcone_coefficients.hpp"
#include "diffpm/lensing/redshift_distribution.hpp"
#include "diffpm/nbody/pgd.hpp"
#include "diffpm/nbody/simulation.hpp"

namespace diffpm::lensing {

/// The lightcone of a run: map, shells, density planes, replicas.
struct LensingConfig {
  MapGeometry map{256, 5.0};
  int planes = 16;  ///< shells out to the farthest source (shells.hpp)
  /// Comoving resolution of the density planes, Mpc/h: plane i has angular cells of
  /// max(pixel, plane_cell / chi_i) (PlaneGrid::covering). 0 takes the force mesh's cell
  /// (L_y / n_y), so that the planes resolve what the force resolves and no more.
  double plane_cell = 0.0;
  bool random_shifts = false;        ///< shift each box replica randomly (replicas.hpp)
  bool random_orientations = false;  ///< and reorient it by a random symmetry of the box
  std::uint64_t shift_seed = 1;      ///< seed of the replica shifts and orientations
  /// The PGD correction (nbody/pgd.hpp) of the particles painted into each plane, at the
  /// plane's a_i, on the force mesh (run_lensing_simulation; model::ModelConfig::pgd in the
  /// differentiable model).
  std::optional<nbody::PgdParameters> pgd;

  void validate() const {
    map.validate();
    if (pgd) pgd->validate("lensing: pgd");
    if (planes < 1 || planes > 100000) {
      throw InvalidArgument("lensing: planes = " + std::to_string(planes) +
                            " (must be in [1, 100000])");
    }
    if (!(plane_cell >= 0.0) || !std::isfinite(plane_cell)) {
      throw InvalidArgument("lensing: plane cell = " + format_number(plane_cell) +
                            " Mpc/h (must be finite and >= 0; 0 for the force mesh's)");
    }
  }
};

/// The maps of a lensing run and what they were built from.
template <class T>
struct LensingResult {
  std::vector<Map<T>> kappa;                      ///< one per source, in the order given
  Shells<double> shells;                          ///< the planes' chi_i, a_i and Delta
  std::vector<std::vector<double>> born_weights;  ///< [source][plane], born.hpp
  nbody::SimulationResult<T> simulation;          ///< the particles at a_end
};

namespace detail {

/// The lightcone of `lens` around a run: `run(options, hook)` runs nbody::run_simulation (from
/// a seed, a white noise or a linear field) with the planes' snapshots and painting hook.
template <class T, class Run>
LensingResult<T> run_with_lightcone(const cosmology::Model<double>& cosmo,
                                    const nbody::SimulationConfig& sim, const LensingConfig& lens,
                                    const std::vector<SourceDistribution>& sources,
                                    const Run& run) {
  sim.validate();
  lens.validate();
  require_flat_universe(cosmo.Omega_k(), "lensing simulation");
  LensingResult<T> r;
  {
    auto c = lightcone_coefficients(cosmo, sources, lens.planes);
    r.shells = std::move(c.shells);
    r.born_weights = std::move(c.born_weights);
  }
  const double a_nearest = r.shells.a.front();
  if (a_nearest > sim.a_end) {
    throw InvalidArgument("lensing: the nearest plane is at a = " + format_number(a_nearest) +
                          ", after a_end = " + format_number(sim.a_end) +
                          " (the run must reach every plane: set a_end = 1)");
  }
  const double cell = lens.plane_cell > 0.0 ? lens.plane_cell : sim.box[1] / sim.mesh[1];
  std::vector<PlaneGrid> grids;
  for (double chi : r.shells.chi) grids.push_back(PlaneGrid::covering(lens.map, cell, chi));
  Lightcone<T> cone(
      r.shells,
      Replicas::centred(sim.box, lens.random_shifts, lens.shift_seed, lens.random_orientations),
      std::move(grids), lens.map, r.born_weights);
  nbody::IntegratorOptions options;
  options.snapshots = cone.scale_factors();
  std::unique_ptr<nbody::PgdCorrection<T>> pgd;
  if (lens.pgd) {
    // The force's mesh, Laplacian and gradient; PGD's band filter replaces its smoothing.
    mesh::ForceKernelOptions kernel = sim.kernel;
    kernel.smoothing_scale = 0.0;
    pgd = std::make_unique<nbody::PgdCorrection<T>>(mesh::Grid(sim.mesh, sim.box), kernel,
                                                    std::size_t(0),
                                                    sim.threads > 0 ? sim.threads : max_threads());
  }
  particles::Positions<T> corrected;
  r.simulation =
      run(options, [&](double a, const particles::Positions<T>& x, const particles::Positions<T>&) {
        if (!pgd) {
          cone.paint(a, x);
          return;
        }
        pgd->apply(x, *lens.pgd, a, corrected);
        cone.paint(a, corrected);
      });
  r.kappa = cone.convergence();
  return r;
}

}  // namespace detail

/// Runs nbody::run_simulation with the lightcone of `lens` painted on the way, then returns the
/// Born convergence of each source distribution (one map per source, docs/lensing.md).
/// Shells reach the farthest source; planes at a_i <= a_start (and all of them when
/// sim.steps == 0) are painted from LPT at a_i. The observer sits at the middle of the box's
/// x = 0 face and looks along +x (replicas.hpp). Throws InvalidArgument if the nearest plane
/// lies after a_end (the run would never reach it), for an empty source list, or for a curved
/// cosmology (require_flat_universe).
template <class T>
LensingResult<T> run_lensing_simulation(
    const cosmology::Model<double>& cosmo, const nbody::SimulationConfig& sim,
    const LensingConfig& lens, const std::vector<SourceDistribution>& sources,
    const std::function<void(const std::string&)>& progress = {}) {
  return detail::run_with_lightcone<T>(
      cosmo, sim, lens, sources, [&](const auto& options, const auto& hook) {
        return nbody::run_simulation<T>(cosmo, sim, options, hook, progress);
      });
}

/// The same from the caller's white noise on the particle lattice, or from the caller's linear
/// field delta_L(k) at a = 1 (`Initial` = mesh::RealField<T> or mesh::ComplexField<T>; the
/// overloads of nbody::run_simulation say what each means and what is checked).
template <class T, class Initial>
LensingResult<T> run_lensing_simulation(
    const cosmology::Model<double>& cosmo, const nbody::SimulationConfig& sim,
    const Initial& initial, const LensingConfig& lens,
    const std::vector<SourceDistribution>& sources,
    const std::function<void(const std::string&)>& progress = {}) {
  static_assert(
      std::is_same_v<Initial, mesh::RealField<T>> || std::is_same_v<Initial, mesh::ComplexField<T>>,
      "the initial conditions are a white noise (mesh::RealField<T>) or a linear field "
      "(mesh::ComplexField<T>)");
  return detail::run_with_lightcone<T>(
      cosmo, sim, lens, sources, [&](const auto& options, const auto& hook) {
        return nbody::run_simulation<T>(cosmo, sim, initial, options, hook, progress);
      });
}

}  // namespace diffpm::lensing
