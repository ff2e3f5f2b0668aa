// Forward PM runs against analytic solutions: the Zel'dovich pancake, linear growth of a
// plane wave, large-scale growth of a random field; and reproducibility.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "diffpm/measure/power_spectrum.hpp"
#include "diffpm/nbody/simulation.hpp"

using namespace diffpm;
using particles::Positions;

namespace {

/// A plane wave along x: delta_L(q) = A cos(k q) at D1 = 1, i.e. Psi_x(q) = -(A/k) sin(k q).
/// In 1D the Zel'dovich solution x = q + D1(a) Psi(q), p = G_f(a) Psi(q) is exact until shell
/// crossing at D1 A = 1, because the planar force on a particle is set by the mass on either
/// side of it, a Lagrangian quantity: F = 3/2 Omega_m D1 Psi, as in linear theory. FastPM's
/// factors integrate that force exactly for any step count, so what is left is PM force error.
struct Pancake {
  double L = 128.0, A;
  std::array<int, 3> particles{64, 4, 4};
  std::array<int, 3> mesh;
  double k() const { return 2 * 3.14159265358979323846 / L; }
  std::array<double, 3> box() const {
    return {L, L * particles[1] / particles[0], L * particles[2] / particles[0]};
  }
  double psi(double q) const { return -(A / k()) * std::sin(k() * q); }

  nbody::ParticleState<double> state(const cosmology::Cosmology<double>& c, double a) const {
    const nbody::FastPmFactors<double> f(c);
    nbody::ParticleState<double> s;
    const auto b = box();
    for (int i = 0; i < particles[0]; ++i)
      for (int j = 0; j < particles[1]; ++j)
        for (int l = 0; l < particles[2]; ++l) {
          // Lattice half a mesh cell off the mesh points, as run_simulation places it: CIC is
          // not differentiable at a mesh point (see simulation.hpp).
          const double q = i * b[0] / particles[0];
          const double h[3] = {0.5 * b[0] / mesh[0], 0.5 * b[1] / mesh[1], 0.5 * b[2] / mesh[2]};
          s.x.push_back({q + h[0] + c.growth().growth_factor(a) * psi(q),
                         j * b[1] / particles[1] + h[1], l * b[2] / particles[2] + h[2]});
          s.p.push_back({f.G_f(a) * psi(q), 0.0, 0.0});
        }
    return s;
  }

  /// Runs from a0 to a1 with particles in precision T and returns the largest errors in x and
  /// p, relative to max |D1 Psi| and max |G_f Psi| at a1.
  template <class T>
  std::pair<double, double> run(const cosmology::Cosmology<double>& c, double a0, double a1,
                                int steps) const {
    const auto s0 = state(c, a0);
    const auto exact = state(c, a1);
    nbody::ParticleState<T> s;
    for (std::size_t i = 0; i < s0.x.size(); ++i) {
      s.x.push_back({T(s0.x[i][0]), T(s0.x[i][1]), T(s0.x[i][2])});
      s.p.push_back({T(s0.p[i][0]), T(s0.p[i][1]), T(s0.p[i][2])});
    }
    nbody::PmForce<T> force(mesh::Grid(mesh, box()), {}, s.x.size());
    const double Om = c.parameters().Omega_m();
    nbody::integrate(c, nbody::time_steps(a0, a1, steps), s,
                     [&](const Positions<T>& x, Positions<T>& F) { force(x, Om, F); });
    const nbody::FastPmFactors<double> f(c);
    const double dmax = c.growth().growth_factor(a1) * A / k(), pmax = f.G_f(a1) * A / k();
    double ex = 0, ep = 0;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      ex = std::max(ex, std::abs(s.x[i][0] - exact.x[i][0]) / dmax);
      ep = std::max(ep, std::abs(s.p[i][0] - exact.p[i][0]) / pmax);
      for (int d = 1; d < 3; ++d) ex = std::max(ex, std::abs(s.x[i][d] - exact.x[i][d]) / dmax);
    }
    return {ex, ep};
  }
};

cosmology::Cosmology<double> planck() {
  return cosmology::Cosmology<double>(cosmology::Parameters<double>{});
}

}  // namespace

TEMPLATE_TEST_CASE(
    "Zel'dovich pancake: PM follows the analytic solution until just before shell crossing",
    "[nbody][simulation]", float, double) {
  const auto c = planck();
  Pancake pk;
  pk.A = 0.8 / c.growth().growth_factor(1.0);  // D1 A = 0.8 at a = 1: density contrast 4 at q = 0
  // Two mesh cells per particle (B = 2, 1 Mpc/h cells): at a density contrast of 4 the peak is
  // ~2.5 cells wide, and the PM force there (CIC + 4-point gradient) is smoothed over ~2 cells:
  // measured 0.22% of the displacement amplitude in x and 0.33% in p; tolerances 0.5%, 0.7%.
  // With B = 4 the mesh resolves single particles of the sheet (4 cells apart across it), whose
  // granularity then perturbs the planar force: 0.47% and 1.0% measured, 1% and 2% allowed.
  const double tol_x[] = {0.005, 0.01}, tol_p[] = {0.007, 0.02};
  for (int refine : {1, 2}) {
    pk.mesh = {128 * refine, 8 * refine, 8 * refine};
    // Float rounding of positions (~1e-5 Mpc/h at x = 128) is far below these errors.
    const auto [ex, ep] = pk.template run<TestType>(c, 0.05, 1.0, 20);
    INFO("mesh cells per particle: " << 2 * refine << ", max error x " << ex << ", p " << ep);
    CHECK(ex < tol_x[refine - 1]);
    CHECK(ep < tol_p[refine - 1]);
  }
}

TEMPLATE_TEST_CASE("A small plane wave grows as D1 for 1, 2, 5 and 20 FastPM steps",
                   "[nbody][simulation]", float, double) {
  const auto c = planck();
  Pancake pk;
  pk.A = 1e-3;
  pk.mesh = {128, 8, 8};
  // The FastPM factors make the integration exact for any step count; the PM force of a
  // plane wave with k dx = 0.05 (B = 2, 4-point gradient) is 2.7e-4 off the continuum
  // 3/2 Omega_m D1 Psi. Measured in double: 2e-5 to 7e-5 in x, 1.5e-4 in p; tolerance 5e-4.
  // In float a position near x = 128 Mpc/h is rounded to ~8e-6 Mpc/h, 4e-4 of the 0.02 Mpc/h
  // displacement amplitude, accumulated over the steps: measured 1.2e-3 to 1.6e-3; float gets
  // 3e-3 (rounding differs between optimisation levels).
  const double tol = sizeof(TestType) == 4 ? 3e-3 : 5e-4;
  for (int steps : {1, 2, 5, 20}) {
    const auto [ex, ep] = pk.template run<TestType>(c, 0.1, 1.0, steps);
    INFO(steps << " steps: max error x " << ex << ", p " << ep);
    CHECK(ex < tol);
    CHECK(ep < tol);
  }
}

namespace {
/// delta = counts N_cells / N_p - 1 on a mesh, in Fourier space.
template <class T>
mesh::ComplexField<T> density_spectrum(const Positions<T>& x, const mesh::Grid& grid,
                                       const FftPlan<T>& plan) {
  mesh::RealField<T> rho(grid);
  particles::paint_cic(x, rho);
  const T norm = T(double(grid.size()) / double(x.size()));
  for (auto& v : rho.data) v = v * norm - T(1);
  mesh::ComplexField<T> k(grid);
  plan.forward(rho, k);
  return k;
}
}  // namespace

TEST_CASE("Large scales of a 1 Gpc/h box grow as D1 to 1%", "[nbody][simulation]") {
  // 64^3 particles, 128^3 mesh, 10 FastPM steps from a = 0.1 with 2LPT initial conditions.
  // delta_k of the final and initial particles on the same modes: the cross spectrum over the
  // initial auto spectrum is the growth of each bin with cosmic variance cancelled. It is the
  // linear growth times the propagator, whose one-loop low-k limit is
  // 1 + P13/(2 P) = 1 - (61/210) k^2 sigma_v^2 (Bernardeau et al. 2002, sec. 4; sigma_v^2 =
  // (1/3) int d^3q/(2pi)^3 P(q)/q^2, summed here over the modes of this box): 0.1% at
  // k = 0.008, 0.7% at k = 0.026 h/Mpc. After that correction the growth must match
  // D1(1)/D1(a_start) to 1% in every bin below k = 0.03 h/Mpc (measured: <= 0.46%).
  const auto c = planck();
  nbody::SimulationConfig cfg;
  cfg.box = {1000.0, 1000.0, 1000.0};
  cfg.particles = {64, 64, 64};
  cfg.mesh = {128, 128, 128};
  cfg.steps = 10;
  cfg.a_start = 0.1;
  cfg.seed = 2026;
  Positions<double> x0;
  nbody::IntegratorOptions o;
  o.snapshots = {cfg.a_start};
  const auto r = nbody::run_simulation<double>(
      c, cfg, o, [&](double, const Positions<double>& x, const Positions<double>&) { x0 = x; });
  const mesh::Grid grid(cfg.mesh, cfg.box);
  FftPlan<double> plan(grid);
  const auto di = density_spectrum(x0, grid, plan), df = density_spectrum(r.state.x, grid, plan);
  measure::PowerSpectrumOptions po;
  po.k_max = 0.03;
  const auto cross = measure::measure_cross_power(df, di, po);

  // sigma_v^2 at a = 1 from the linear modes of the particle lattice (64^3 in the box).
  const mesh::Grid lattice(cfg.particles, cfg.box);
  double sigma_v2 = 0.0;
  for (int i = 0; i < lattice.n[0]; ++i)
    for (int j = 0; j < lattice.n[1]; ++j)
      for (int l = 0; l < lattice.n[2]; ++l) {
        const double kx = lattice.wavenumber(0, i), ky = lattice.wavenumber(1, j),
                     kz = lattice.wavenumber(2, l);
        const double k2 = kx * kx + ky * ky + kz * kz;
        if (k2 > 0) sigma_v2 += c.linear_power(std::sqrt(k2), 1.0) / k2;
      }
  sigma_v2 /= 3.0 * lattice.volume();

  const double growth = c.growth().growth_factor(1.0) / c.growth().growth_factor(cfg.a_start);
  int bins = 0;
  for (std::size_t b = 0; b < cross.size(); ++b) {
    if (cross.n_modes[b] == 0) continue;
    const double k = cross.k_mean[b];
    const double propagator = 1.0 - 61.0 / 210.0 * k * k * sigma_v2;
    const double g = cross.cross[b] / cross.auto_b[b];
    INFO("k = " << k << ": growth " << g << ", D1 ratio x propagator " << growth * propagator
                << " (" << cross.n_modes[b] << " modes; sigma_v = " << std::sqrt(sigma_v2)
                << " Mpc/h)");
    CHECK(g == Approx(growth * propagator).epsilon(0.01));
    ++bins;
  }
  CHECK(bins >= 4);
}

TEMPLATE_TEST_CASE("The same seed gives the same run; 1 and 2 threads agree", "[nbody][simulation]",
                   float, double) {
  const auto c = planck();
  nbody::SimulationConfig cfg;
  cfg.box = {200.0, 200.0, 200.0};
  cfg.particles = {16, 16, 16};
  cfg.mesh = {32, 32, 32};
  cfg.steps = 5;
  cfg.seed = 7;
  cfg.threads = 1;
  const auto a = nbody::run_simulation<TestType>(c, cfg).state;
  const auto b = nbody::run_simulation<TestType>(c, cfg).state;
  CHECK(a.x == b.x);  // bitwise: every operation is deterministic for a given thread count
  CHECK(a.p == b.p);
  cfg.seed = 8;
  CHECK(nbody::run_simulation<TestType>(c, cfg).state.x != a.x);
#if defined(_OPENMP)
  cfg.seed = 7;
  cfg.threads = 2;
  const int before = max_threads();
  set_threads(2);
  const auto t2 = nbody::run_simulation<TestType>(c, cfg).state;
  set_threads(before);
  // CIC painting is bitwise independent of the thread count; FFTW's threaded transforms may
  // split sums differently, so the runs agree to rounding: 1e-6 of the 200 Mpc/h box in float
  // (about 13 float ulps of a position near L), 1e-12 of it in double.
  double worst = 0;
  for (std::size_t i = 0; i < a.x.size(); ++i)
    for (int d = 0; d < 3; ++d) worst = std::max(worst, double(std::abs(t2.x[i][d] - a.x[i][d])));
  INFO("largest position difference " << worst << " Mpc/h");
  CHECK(worst < (sizeof(TestType) == 4 ? 1e-6 : 1e-12) * 200.0);
#else
  WARN("SKIPPED: built without OpenMP, so thread-count independence is not tested");
#endif
}

TEST_CASE("LPT-only runs and snapshots before a_start come from LPT at the snapshot's a",
          "[nbody][simulation]") {
  const auto c = planck();
  nbody::SimulationConfig cfg;
  cfg.box = {200.0, 200.0, 200.0};
  cfg.particles = {8, 8, 8};
  cfg.mesh = {16, 16, 16};
  cfg.a_start = 0.2;
  cfg.a_end = 0.8;
  cfg.seed = 3;
  cfg.threads = 1;
  // Reference: the final state of an LPT-only run ending at a is LPT at a.
  auto lpt_at = [&](double a) {
    auto o = cfg;
    o.steps = 0;
    o.a_end = a;
    return nbody::run_simulation<double>(c, o).state;
  };
  const auto at_01 = lpt_at(0.1), at_05 = lpt_at(0.5);
  // Displacements scale as D1 (1LPT) plus D2 (2LPT): the states at 0.1 and 0.5 differ.
  CHECK(at_01.x != at_05.x);

  std::vector<double> seen;
  nbody::ParticleState<double> snap_01, snap_05;
  nbody::IntegratorOptions opt;
  opt.snapshots = {0.5, 0.1};  // any order
  auto hook = [&](double a, const Positions<double>& x, const Positions<double>& p) {
    seen.push_back(a);
    auto& s = a == 0.1 ? snap_01 : snap_05;
    s.x = x;
    s.p = p;
  };
  cfg.steps = 0;
  nbody::run_simulation<double>(c, cfg, opt, hook);
  REQUIRE(seen == std::vector<double>{0.1, 0.5});
  CHECK(snap_01.x == at_01.x);  // bitwise: the same LPT evaluation
  CHECK(snap_05.x == at_05.x);
  CHECK(snap_05.p == at_05.p);

  // With PM steps, the snapshot before a_start still comes from LPT; the one after from the
  // integrator.
  seen.clear();
  cfg.steps = 3;
  nbody::run_simulation<double>(c, cfg, opt, hook);
  REQUIRE(seen == std::vector<double>{0.1, 0.5});
  CHECK(snap_01.x == at_01.x);
  CHECK(snap_05.x != at_05.x);
  double worst = 0;
  for (std::size_t i = 0; i < at_05.x.size(); ++i)
    for (int d = 0; d < 3; ++d) worst = std::max(worst, std::abs(snap_05.x[i][d] - at_05.x[i][d]));
  // 8^3 particles in 200 Mpc/h are nearly linear at a = 0.5: PM and 2LPT agree to a fraction of
  // the 25 Mpc/h spacing.
  CHECK(worst < 2.5);

  opt.snapshots = {0.9};  // after a_end
  CHECK_THROWS_AS(nbody::run_simulation<double>(c, cfg, opt, hook), InvalidArgument);
  opt.snapshots = {0.5};
  CHECK_THROWS_AS(nbody::run_simulation<double>(c, cfg, opt), InvalidArgument);  // no hook
  cfg.steps = -1;
  CHECK_THROWS_AS(cfg.validate(), InvalidArgument);
}

TEMPLATE_TEST_CASE("A run from the caller's white noise or linear field is the seeded run",
                   "[nbody][simulation]", float, double) {
  // The seed only makes the white noise; the noise only makes delta_L: handing either in must
  // give the same bits as the seeded run, LPT-only snapshots included. A lensing run takes the
  // same inputs.
  using T = TestType;
  const auto c = planck();
  nbody::SimulationConfig cfg;
  cfg.box = {100.0, 100.0, 100.0};
  cfg.particles = {8, 8, 8};
  cfg.mesh = {16, 16, 16};
  cfg.steps = 3;
  cfg.seed = 5;
  const mesh::Grid lattice(cfg.particles, cfg.box);
  nbody::IntegratorOptions snaps;
  snaps.snapshots = {0.05, 0.5};
  std::vector<Positions<T>> seen_seed, seen_noise;
  auto hook = [](std::vector<Positions<T>>& seen) {
    return [&seen](double, const Positions<T>& x, const Positions<T>&) { seen.push_back(x); };
  };
  const auto seeded = nbody::run_simulation<T>(c, cfg, snaps, hook(seen_seed));
  auto noise = ic::white_noise<T>(lattice, cfg.seed);
  const auto from_noise = nbody::run_simulation<T>(c, cfg, noise, snaps, hook(seen_noise));
  CHECK(from_noise.state.x == seeded.state.x);
  CHECK(from_noise.state.p == seeded.state.p);
  CHECK(from_noise.delta_linear.data == seeded.delta_linear.data);
  CHECK(seen_noise == seen_seed);
  const auto from_delta = nbody::run_simulation<T>(c, cfg, seeded.delta_linear);
  CHECK(from_delta.state.x == seeded.state.x);
  CHECK(from_delta.state.p == seeded.state.p);

  // Bad input names what is wrong.
  CHECK_THROWS_WITH(
      nbody::run_simulation<T>(c, cfg, ic::white_noise<T>(mesh::Grid::cube(4, 100.0), 1)),
      Catch::Contains("white noise is on a 4x4x4"));
  noise.data[17] = std::numeric_limits<T>::quiet_NaN();
  CHECK_THROWS_WITH(nbody::run_simulation<T>(c, cfg, noise),
                    Catch::Contains("non-finite value at entry 17"));
  mesh::ComplexField<T> wrong(mesh::Grid::cube(8, 90.0));
  CHECK_THROWS_WITH(nbody::run_simulation<T>(c, cfg, wrong), Catch::Contains("linear field"));
}
