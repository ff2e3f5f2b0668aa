// Cost of the PGD small-scale correction (nbody/pgd.hpp) against one PM force evaluation on the
// same mesh, forward and adjoint, measured in one run: the ratios say what the correction adds
// to a run (once at a_end, once per lightcone plane) in units of what a step costs anyway.
//
//   bench_pgd          64^3 and 128^3 particles, B = 1 and 2, float, as a markdown table
//
// Each time is the minimum of 5 repetitions on the particles of a short 2LPT + 1-step run at
// a = 0.51 (4 Mpc/h between particles). The PGD forward does what the force does (paint, one
// r2c, the kernel, one c2r, three stencils and readouts) plus a copy of the spectrum's kernel
// pass; its adjoint keeps the counts' spectrum for the parameter derivatives.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "diffpm/nbody/pgd.hpp"
#include "diffpm/nbody/simulation.hpp"
#include "step_particles.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

template <class F>
double best_of(int reps, const F& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = clock_type::now();
    f();
    best = std::min(best, std::chrono::duration<double>(clock_type::now() - t0).count());
  }
  return best;
}

void run_one(int n, int B) {
  using namespace diffpm;
  using T = float;
  const cosmology::Cosmology<double> cosmo(cosmology::Parameters<double>{});
  const nbody::SimulationConfig cfg = bench::step_config(n, B);
  auto r = nbody::run_simulation<T>(cosmo, cfg);  // 2LPT initial conditions, one warm-up step
  const mesh::Grid grid(cfg.mesh, cfg.box);
  auto plan = std::make_shared<const FftPlan<T>>(grid);
  nbody::PmForce<T> force(plan, {}, r.state.x.size());
  nbody::PgdCorrection<T> pgd(plan, {}, r.state.x.size());
  const double Om = cosmo.parameters().Omega_m();
  const nbody::PgdParameters p{0.5, 0.05, 0.5 * M_PI * n / cfg.box[0], 0.0};
  const auto& x = r.state.x;
  particles::Positions<T> F, y, bar(x.size(), {T(1e-3), T(-2e-3), T(5e-4)}), xb(x.size());
  const int reps = 5;
  const double t_force = best_of(reps, [&] { force(x, Om, F); });
  const double t_force_adj = best_of(reps, [&] {
    std::fill(xb.begin(), xb.end(), std::array<T, 3>{T(0), T(0), T(0)});
    force.adjoint(x, Om, bar, xb);
  });
  const double t_pgd = best_of(reps, [&] { pgd.apply(x, p, 1.0, y); });
  const double t_pgd_adj = best_of(reps, [&] {
    std::fill(xb.begin(), xb.end(), std::array<T, 3>{T(0), T(0), T(0)});
    pgd.apply_adjoint(x, p, 1.0, bar, xb);
  });
  std::printf("| %d^3 | %d | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f |\n", n, B, 1e3 * t_force,
              1e3 * t_pgd, t_pgd / t_force, 1e3 * t_force_adj, 1e3 * t_pgd_adj,
              t_pgd_adj / t_force_adj);
  std::fflush(stdout);
}

}  // namespace

int main() {
  std::printf(
      "| particles | B | force ms | PGD ms | PGD / force | force adjoint ms | PGD adjoint ms | "
      "PGD adjoint / force adjoint |\n|---|---|---|---|---|---|---|---|\n");
  for (int n : {64, 128})
    for (int B : {1, 2}) run_one(n, B);
  return 0;
}
