// The fixed-point integrator on the device code path (nbody/reversible_device.hpp): forward
// then backward restores the first state bit for bit on every backend; in the host emulation
// the device run, its reversal and its gradient are the CPU's, bit for bit; on a GPU they agree
// with the CPU to the FFT tolerance; the device gradient matches central finite differences.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/nbody/pm_force.hpp"
#include "diffpm/nbody/pm_force_device.hpp"
#include "diffpm/nbody/reversible.hpp"
#include "diffpm/nbody/reversible_device.hpp"
#include "diffpm/nbody/simulation.hpp"
#include "diffpm/nbody/time_steps.hpp"
#include "support/device.hpp"

using namespace diffpm;
namespace nb = diffpm::nbody;

namespace {

// n^3 particles at 4 Mpc/h spacing on a (2n)^3 mesh, Planck 2018, 2LPT at a = 0.1 (the CPU
// test's set-up, smaller): nonlinear by a = 1.
struct Setup {
  cosmology::Cosmology<double> cosmo{cosmology::Parameters<double>{}};
  nb::SimulationConfig cfg;
  explicit Setup(int n = 16) {
    const double L = 4.0 * n;
    cfg.box = {L, L, L};
    cfg.particles = {n, n, n};
    cfg.mesh = {2 * n, 2 * n, 2 * n};
    cfg.steps = 0;
    cfg.a_end = 0.1;
    cfg.seed = 9;
  }
  mesh::Grid grid() const { return mesh::Grid(cfg.mesh, cfg.box); }
  template <class T>
  nb::FixedPointState initial() const {
    return nb::FixedPointState::from(nb::run_simulation<T>(cosmo, cfg).state, cfg.box);
  }
};

bool same_state(const nb::FixedPointState& a, const nb::FixedPointState& b) {
  return a.x == b.x && a.p == b.p && a.momentum_quantum == b.momentum_quantum;
}

}  // namespace

TEMPLATE_TEST_CASE("the device fixed-point run reverses bit for bit and is the CPU run",
                   "[device][reversible]", float, double) {
  using T = TestType;
  const Setup s;
  const auto fixed0 = s.template initial<T>();
  const std::size_t np = fixed0.x.size();
  const double Om = s.cosmo.parameters().Omega_m();
  const auto a = nb::time_steps(0.1, 1.0, 8);

  nb::PmForce<T, Cuda> pm(s.grid(), {}, np);
  auto force = [&](particles::Vec3View<const T> x, particles::Vec3View<T> F) { pm(x, Om, F); };
  auto state = nb::DeviceFixedPointState::upload(fixed0);
  CHECK(state.digest() == fixed0.digest());
  nb::FixedPointRecord record;
  nb::integrate_fixed_point<T>(Cuda{}, s.cosmo, a, state, force, {}, &record);
  const auto end = state.download();
  CHECK(state.digest() == end.digest());
  CHECK(!same_state(end, fixed0));

  // The CPU run from the same state.
  nb::PmForce<T> cpu_pm(s.grid(), {}, np);
  auto cpu_force = [&](const particles::Positions<T>& x, particles::Positions<T>& F) {
    cpu_pm(x, Om, F);
  };
  auto cpu_state = fixed0;
  nb::integrate_fixed_point<T>(s.cosmo, a, cpu_state, cpu_force);
  if (test::emulated_device) {
    CHECK(same_state(end, cpu_state));
  } else {
    // cuFFT's rounding moves the forces by O(eps) and the trajectories apart: positions within
    // a thousandth of the 4 Mpc/h spacing after 8 steps (float: a hundredth).
    double worst = 0.0;
    for (std::size_t i = 0; i < np; ++i)
      for (int d = 0; d < 3; ++d)
        worst = std::max(worst, std::fabs(double(std::int64_t(end.x[i][d] - cpu_state.x[i][d]))) *
                                    0x1p-64 * s.cfg.box[d]);
    CHECK(worst < (std::is_same_v<T, float> ? 4e-2 : 4e-3));
  }

  // Backward on the device: the first state, every bit.
  nb::integrate_fixed_point_backward<T>(Cuda{}, s.cosmo, a, state, force);
  CHECK(same_state(state.download(), fixed0));
  CHECK(state.digest() == record.start_digest);
}

TEMPLATE_TEST_CASE("the device gradient of a fixed-point run is the CPU's", "[device][reversible]",
                   float, double) {
  using T = TestType;
  const Setup s(12);
  const auto fixed0 = s.template initial<T>();
  const std::size_t np = fixed0.x.size();
  const double Om = s.cosmo.parameters().Omega_m();
  const auto a = nb::time_steps(0.1, 0.6, 5);

  // dL/dx, dL/dp at the end: fixed random vectors.
  particles::Positions<T> xb0(np), pb0(np);
  std::mt19937_64 rng(4);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (std::size_t i = 0; i < np; ++i)
    for (int d = 0; d < 3; ++d) {
      xb0[i][d] = T(normal(rng));
      pb0[i][d] = T(normal(rng));
    }

  // CPU, reverse mode.
  nb::PmForce<T> cpu_pm(s.grid(), {}, np);
  auto cpu_force = [&](const particles::Positions<T>& x, particles::Positions<T>& F) {
    cpu_pm(x, Om, F);
  };
  auto cpu_fa = [&](const particles::Positions<T>& x, const particles::Positions<T>& F_bar,
                    particles::Positions<T>& F, particles::Positions<T>& x_bar) {
    return cpu_pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
  };
  auto cpu_state = fixed0;
  nb::FixedPointRecord cpu_record;
  nb::integrate_fixed_point<T>(s.cosmo, a, cpu_state, cpu_force, {}, {}, &cpu_record);
  auto xb_cpu = xb0, pb_cpu = pb0;
  const auto g_cpu = nb::integrate_fixed_point_adjoint<T>(s.cosmo, a, cpu_state, cpu_force, cpu_fa,
                                                          xb_cpu, pb_cpu, {}, &cpu_record);

  // Device, reverse mode.
  nb::PmForce<T, Cuda> pm(s.grid(), {}, np);
  auto force = [&](particles::Vec3View<const T> x, particles::Vec3View<T> F) { pm(x, Om, F); };
  auto fa = [&](particles::Vec3View<const T> x, particles::Vec3View<const T> F_bar,
                particles::Vec3View<T> F, particles::Vec3View<T> x_bar) {
    return pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
  };
  auto state = nb::DeviceFixedPointState::upload(fixed0);
  nb::FixedPointRecord record;
  nb::integrate_fixed_point<T>(Cuda{}, s.cosmo, a, state, force, {}, &record);
  test::DevicePositions<T> xb(xb0), pb(pb0);
  const auto g = nb::integrate_fixed_point_adjoint<T>(Cuda{}, s.cosmo, a, state, fa, xb.view(),
                                                      pb.view(), {}, &record);
  CHECK(same_state(state.download(), fixed0));  // rebuilt on the way
  const auto xb_dev = xb.to_host(), pb_dev = pb.to_host();

  if (test::emulated_device) {
    CHECK(std::memcmp(xb_dev.data(), xb_cpu.data(), np * sizeof(xb0[0])) == 0);
    CHECK(std::memcmp(pb_dev.data(), pb_cpu.data(), np * sizeof(pb0[0])) == 0);
    CHECK(g.kick_first == g_cpu.kick_first);
    CHECK(g.kick_second == g_cpu.kick_second);
    CHECK(g.drift == g_cpu.drift);
    CHECK(g.force_scalar == g_cpu.force_scalar);
  } else {
    // The trajectories differ by FFT rounding (see above); the gradients by as much, relative
    // to their size.
    const double tol = std::is_same_v<T, float> ? 1e-3 : 1e-8;
    double worst = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < np; ++i)
      for (int d = 0; d < 3; ++d) {
        worst = std::max(worst, std::fabs(double(xb_dev[i][d]) - double(xb_cpu[i][d])));
        scale = std::max(scale, std::fabs(double(xb_cpu[i][d])));
      }
    CHECK(worst <= tol * scale);
    CHECK(std::fabs(g.force_scalar - g_cpu.force_scalar) <= tol * std::fabs(g_cpu.force_scalar));
  }
}

TEST_CASE("the device gradient matches central finite differences", "[device][reversible]") {
  // L = <c, x_end> + <e, p_end> as a function of the initial momenta along a direction v:
  // dL/deps = <p_bar_0, v>. Double precision; the state's rounding (2^-40 of the momenta) and
  // the CIC force's kinks at cell faces bound the finite-difference accuracy, so the step is
  // a fraction of the momenta and the tolerance 1e-4 relative.
  using T = double;
  const Setup s(8);
  const auto fixed0 = s.template initial<T>();
  const std::size_t np = fixed0.x.size();
  const double Om = s.cosmo.parameters().Omega_m();
  const auto a = nb::time_steps(0.1, 0.3, 3);
  nb::PmForce<T, Cuda> pm(s.grid(), {}, np);
  auto force = [&](particles::Vec3View<const T> x, particles::Vec3View<T> F) { pm(x, Om, F); };
  auto fa = [&](particles::Vec3View<const T> x, particles::Vec3View<const T> F_bar,
                particles::Vec3View<T> F, particles::Vec3View<T> x_bar) {
    return pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
  };

  particles::Positions<T> x0(np), p0(np), c(np), e(np), v(np);
  fixed0.positions(x0);
  fixed0.momenta(p0);
  std::mt19937_64 rng(8);
  std::normal_distribution<double> normal(0.0, 1.0);
  double p_rms = 0.0;
  for (std::size_t i = 0; i < np; ++i)
    for (int d = 0; d < 3; ++d) {
      c[i][d] = normal(rng);
      e[i][d] = normal(rng);
      v[i][d] = normal(rng);
      p_rms += p0[i][d] * p0[i][d];
    }
  p_rms = std::sqrt(p_rms / double(3 * np));

  // The loss of a run from momenta p0 + eps v (positions unwrapped around x0, so that the
  // periodic wrap does not jump).
  auto loss = [&](double eps) {
    particles::Positions<T> p = p0;
    for (std::size_t i = 0; i < np; ++i)
      for (int d = 0; d < 3; ++d) p[i][d] += eps * v[i][d];
    auto st = nb::DeviceFixedPointState::upload(nb::FixedPointState::from(
        particles::view(x0), particles::view(p), s.cfg.box, fixed0.momentum_quantum));
    nb::integrate_fixed_point<T>(Cuda{}, s.cosmo, a, st, force);
    const auto end = st.download();
    particles::Positions<T> x, pe;
    end.positions(x);
    end.momenta(pe);
    double L = 0.0;
    for (std::size_t i = 0; i < np; ++i)
      for (int d = 0; d < 3; ++d) {
        double dx = x[i][d] - x0[i][d];
        dx -= s.cfg.box[d] * std::round(dx / s.cfg.box[d]);
        L += c[i][d] * dx + e[i][d] * pe[i][d];
      }
    return L;
  };

  auto state = nb::DeviceFixedPointState::upload(fixed0);
  nb::FixedPointRecord record;
  nb::integrate_fixed_point<T>(Cuda{}, s.cosmo, a, state, force, {}, &record);
  test::DevicePositions<T> xb(c), pb(e);
  nb::integrate_fixed_point_adjoint<T>(Cuda{}, s.cosmo, a, state, fa, xb.view(), pb.view(), {},
                                       &record);
  const auto pb0 = pb.to_host();
  double analytic = 0.0;
  for (std::size_t i = 0; i < np; ++i)
    for (int d = 0; d < 3; ++d) analytic += pb0[i][d] * v[i][d];

  const double h = 1e-4 * p_rms;
  const double numeric = (loss(h) - loss(-h)) / (2.0 * h);
  CHECK(std::fabs(numeric - analytic) <= 1e-4 * std::fabs(analytic));
}

TEST_CASE("the device integrator refuses what it does not do yet", "[device][reversible]") {
  const Setup s(4);
  const auto fixed0 = s.initial<double>();
  nb::PmForce<double, Cuda> pm(s.grid());
  auto force = [&](particles::Vec3View<const double> x, particles::Vec3View<double> F) {
    pm(x, 0.3, F);
  };
  auto state = nb::DeviceFixedPointState::upload(fixed0);
  nb::IntegratorOptions opt;
  opt.snapshots = {0.5};
  CHECK_THROWS_WITH(
      nb::integrate_fixed_point<double>(Cuda{}, s.cosmo, {0.1, 1.0}, state, force, opt),
      Catch::Contains("snapshots"));
  nb::FixedPointRecord store;
  store.mode = nb::AdjointMode::store;
  CHECK_THROWS_WITH(
      nb::integrate_fixed_point<double>(Cuda{}, s.cosmo, {0.1, 1.0}, state, force, {}, &store),
      Catch::Contains("reverse"));
}

TEMPLATE_TEST_CASE("run_simulation with backend cuda is the CPU run", "[device][simulation]", float,
                   double) {
  using T = TestType;
  const cosmology::Cosmology<double> cosmo{cosmology::Parameters<double>{}};
  nb::SimulationConfig cfg;
  cfg.box = {96.0, 96.0, 96.0};
  cfg.particles = {16, 16, 16};
  cfg.mesh = {32, 32, 32};
  cfg.steps = 6;
  cfg.seed = 3;
  const auto cpu = nb::run_simulation<T>(cosmo, cfg);
  cfg.backend = BackendKind::cuda;
  const auto dev = nb::run_simulation<T>(cosmo, cfg);
  REQUIRE(dev.state.x.size() == cpu.state.x.size());
  if (test::emulated_device) {
    CHECK(std::memcmp(dev.state.x.data(), cpu.state.x.data(),
                      cpu.state.x.size() * sizeof(cpu.state.x[0])) == 0);
    CHECK(std::memcmp(dev.state.p.data(), cpu.state.p.data(),
                      cpu.state.p.size() * sizeof(cpu.state.p[0])) == 0);
  } else {
    // FFT rounding moves the trajectories apart (see above): within a hundredth of the 6 Mpc/h
    // spacing after 6 steps.
    double worst = 0.0;
    for (std::size_t i = 0; i < cpu.state.x.size(); ++i)
      for (int d = 0; d < 3; ++d) {
        double dx = double(dev.state.x[i][d]) - double(cpu.state.x[i][d]);
        dx -= cfg.box[d] * std::round(dx / cfg.box[d]);
        worst = std::max(worst, std::fabs(dx));
      }
    CHECK(worst < 0.06);
  }

  // What the device path does not do yet is refused, not silently done on the CPU.
  nb::IntegratorOptions opt;
  opt.snapshots = {0.5};
  CHECK_THROWS_WITH(nb::run_simulation<T>(cosmo, cfg, opt, [](double, const auto&, const auto&) {}),
                    Catch::Contains("lightcone snapshots") && Catch::Contains("CPU backend"));
}
