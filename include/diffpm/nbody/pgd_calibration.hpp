/// \file
/// \brief PGD parameters fitted against EuclidEmulator2 for the resolutions of the validation
/// suite, and the look-up of a run's calibration.
///
/// Each entry is one (mean particle spacing L/N, mesh ratio B, steps) of FastPM runs from
/// 2LPT at a_start = 0.05 with the default force kernel; its (alpha, mu, k_l, k_s) minimise the
/// squared relative deviation of the corrected P(k) from EuclidEmulator2 at z = 0, 0.5 and 1 at
/// once (alpha(a) = alpha a^mu), over the k range of the fit, in a flat LCDM cosmology inside
/// the emulator's box (validation/pgd/fit_pgd.py; docs/validation/pgd.md has the runs, the
/// residuals with and without the correction, and the commands). Outside that range (other
/// spacings, mesh ratios, step counts, start, z > 1, or a cosmology far from the fitted one)
/// the numbers are extrapolations: pass parameters of your own (PgdParameters) instead.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/nbody/pgd.hpp"
#include "diffpm/nbody/simulation.hpp"

namespace diffpm::nbody {

/// One fitted resolution.
struct PgdCalibration {
  double spacing;  ///< mean particle spacing L/N, Mpc/h
  int mesh_ratio;  ///< B = force-mesh cells / particles per side
  int steps;       ///< FastPM steps from a_start = 0.05 to a = 1 (linear in a)
  PgdParameters parameters;
  double k_max;  ///< h/Mpc: the fit used k <= k_max
};

/// The fitted table (docs/validation/pgd.md).
inline const std::vector<PgdCalibration>& pgd_calibrations() {
  static const std::vector<PgdCalibration> table = {
      // spacing, B, steps, {alpha, k_l, k_s, mu}, k_max
      {4.0, 2, 10, {0.0209725, 0.306443, 0.871573, 0.376016}, 1.0},
      {4.0, 2, 20, {0.020224, 0.374781, 0.871345, 0.673607}, 1.0},
      {2.0, 2, 10, {0.0137436, 0.858305, 1.6557, -1.25833}, 2.0},
      {2.0, 2, 20, {0.0110291, 0.664997, 1.42947, -0.78941}, 2.0},
  };
  return table;
}

/// The a_start of every calibrated run, and the tolerance within which a run's spacing must
/// match a calibrated one (relative).
constexpr double pgd_calibration_a_start = 0.05;
constexpr double pgd_calibration_spacing_tolerance = 0.01;

namespace detail {

/// Throws the InvalidArgument of find_pgd_calibration: why, and the calibrated resolutions.
[[noreturn]] inline void pgd_calibration_error(const std::string& why) {
  std::string list;
  for (const auto& c : pgd_calibrations()) {
    list += (list.empty() ? "" : "; ") + format_number(c.spacing) +
            " Mpc/h, B = " + std::to_string(c.mesh_ratio) + ", " + std::to_string(c.steps) +
            " steps";
  }
  throw InvalidArgument("PGD calibration: " + why + " (calibrated: " + list +
                        ", all from a_start = 0.05 with 2LPT, FastPM steps and the default "
                        "force kernel; give the parameters instead)");
}

}  // namespace detail

/// The calibration of a run: the entry with cfg's mesh ratio and steps whose spacing is within
/// 1% of cfg's, for a cubic box and lattice, a_start = 0.05, steps linear in a, the FastPM
/// stepper, 2LPT and the default force kernel. Throws InvalidArgument naming what does not
/// match (and listing the calibrated resolutions) otherwise.
inline const PgdCalibration& find_pgd_calibration(const SimulationConfig& cfg) {
  const bool cubic = cfg.box[0] == cfg.box[1] && cfg.box[0] == cfg.box[2] &&
                     cfg.particles[0] == cfg.particles[1] && cfg.particles[0] == cfg.particles[2] &&
                     cfg.mesh[0] == cfg.mesh[1] && cfg.mesh[0] == cfg.mesh[2];
  if (!cubic) detail::pgd_calibration_error("the box, lattice or mesh is not cubic");
  if (cfg.particles[0] <= 0 || cfg.mesh[0] % cfg.particles[0] != 0) {
    detail::pgd_calibration_error("mesh " + std::to_string(cfg.mesh[0]) +
                                  " is not a multiple of the lattice " +
                                  std::to_string(cfg.particles[0]));
  }
  const mesh::ForceKernelOptions plain{};
  if (cfg.steps == 0 || cfg.a_start != pgd_calibration_a_start ||
      cfg.spacing != StepSpacing::linear || cfg.stepper != Stepper::fastpm || cfg.lpt_order != 2 ||
      cfg.kernel.laplacian != plain.laplacian || cfg.kernel.gradient != plain.gradient ||
      cfg.kernel.smoothing_scale != 0.0) {
    detail::pgd_calibration_error("the run is not of the calibrated kind (" +
                                  std::to_string(cfg.steps) +
                                  " steps from a_start = " + format_number(cfg.a_start) + ")");
  }
  const double spacing = cfg.box[0] / cfg.particles[0];
  const int B = cfg.mesh[0] / cfg.particles[0];
  for (const auto& c : pgd_calibrations()) {
    if (c.mesh_ratio == B && c.steps == cfg.steps &&
        std::abs(spacing / c.spacing - 1.0) <= pgd_calibration_spacing_tolerance)
      return c;
  }
  detail::pgd_calibration_error("no entry for " + format_number(spacing) + " Mpc/h, B = " +
                                std::to_string(B) + ", " + std::to_string(cfg.steps) + " steps");
}

}  // namespace diffpm::nbody
