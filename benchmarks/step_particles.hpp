// The particles the step benchmarks time their kernels on (bench_pm_step, bench_pgd).
#pragma once

#include "diffpm/nbody/simulation.hpp"

namespace bench {

/// N^3 particles with 4 Mpc/h between them (mildly nonlinear at a = 1) on a (B N)^3 force
/// mesh, after 2LPT to a = 0.5 and one warm-up step to a = 0.51, in Planck 2018.
inline diffpm::nbody::SimulationConfig step_config(int n, int B) {
  diffpm::nbody::SimulationConfig cfg;
  const double L = 4.0 * n;
  cfg.box = {L, L, L};
  cfg.particles = {n, n, n};
  cfg.mesh = {B * n, B * n, B * n};
  cfg.steps = 1;
  cfg.a_start = 0.5;
  cfg.a_end = 0.51;
  return cfg;
}

}  // namespace bench
