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
  nb::DeviceFixedPointRecord record;
  nb::integrate_fixed_point<T>(Cuda{}, s.cosmo, a, state, force, {}, {}, &record);
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
  nb::DeviceFixedPointRecord record;
  nb::integrate_fixed_point<T>(Cuda{}, s.cosmo, a, state, force, {}, {}, &record);
  test::DevicePositions<T> xb(xb0), pb(pb0);
  const auto g = nb::integrate_fixed_point_adjoint<T>(Cuda{}, s.cosmo, a, state, force, fa,
                                                      xb.view(), pb.view(), {}, &record);
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
  nb::DeviceFixedPointRecord record;
  nb::integrate_fixed_point<T>(Cuda{}, s.cosmo, a, state, force, {}, {}, &record);
  test::DevicePositions<T> xb(c), pb(e);
  nb::integrate_fixed_point_adjoint<T>(Cuda{}, s.cosmo, a, state, force, fa, xb.view(), pb.view(),
                                       {}, &record);
  const auto pb0 = pb.to_host();
  double analytic = 0.0;
  for (std::size_t i = 0; i < np; ++i)
    for (int d = 0; d < 3; ++d) analytic += pb0[i][d] * v[i][d];

  const double h = 1e-4 * p_rms;
  const double numeric = (loss(h) - loss(-h)) / (2.0 * h);
  CHECK(std::fabs(numeric - analytic) <= 1e-4 * std::fabs(analytic));
}

namespace {

// What one adjoint pass gives: the gradients at the start and the coefficient derivatives.
template <class T>
struct Pass {
  particles::Positions<T> x_bar, p_bar;
  nb::IntegratorGradient g;
  std::vector<particles::Positions<T>> seen;  // positions the forward hook saw, in order
};

template <class T>
bool same_pass(const Pass<T>& a, const Pass<T>& b) {
  auto same = [](const auto& u, const auto& v) {
    return u.size() == v.size() && std::memcmp(u.data(), v.data(), u.size() * sizeof(u[0])) == 0;
  };
  bool snaps = a.g.snapshots.size() == b.g.snapshots.size();
  for (std::size_t i = 0; snaps && i < a.g.snapshots.size(); ++i)
    snaps = a.g.snapshots[i].a == b.g.snapshots[i].a &&
            a.g.snapshots[i].step == b.g.snapshots[i].step &&
            a.g.snapshots[i].drift == b.g.snapshots[i].drift;
  bool seen = a.seen.size() == b.seen.size();
  for (std::size_t i = 0; seen && i < a.seen.size(); ++i) seen = same(a.seen[i], b.seen[i]);
  return same(a.x_bar, b.x_bar) && same(a.p_bar, b.p_bar) && a.g.kick_first == b.g.kick_first &&
         a.g.kick_second == b.g.kick_second && a.g.drift == b.g.drift &&
         a.g.force_scalar == b.g.force_scalar && snaps && seen;
}

// A run with lightcone-like snapshots (one at the first step's start, two inside steps, one at
// the end) and its gradient of L = <c, x_end> + <e, p_end> + sum_s <c_s, x_s>.
struct SnapshotRun {
  Setup s{8};
  nb::FixedPointState fixed0 = s.initial<double>();
  std::vector<double> a = nb::time_steps(0.1, 0.7, 7);
  nb::IntegratorOptions opt;
  std::size_t np = fixed0.x.size();
  SnapshotRun() { opt.snapshots = {0.1, 0.25, 0.4, 0.7}; }

  template <class T>
  particles::Positions<T> weights(unsigned seed) const {
    particles::Positions<T> w(np);
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (auto& v : w)
      for (int d = 0; d < 3; ++d) v[d] = T(normal(rng));
    return w;
  }
  static unsigned seed_of(double as) { return 100u + unsigned(std::lround(as * 1000.0)); }
  // dL_s/dx_s for L_s = sum_i c_s,i . sin(2 pi x_s,i / L): depends on the positions, so a pass
  // that hands the snapshot adjoint other positions than the forward hook saw gets caught.
  template <class T>
  particles::Positions<T> snapshot_bar(double as, const particles::Positions<T>& xs) const {
    auto c = weights<T>(seed_of(as));
    for (std::size_t i = 0; i < np; ++i)
      for (int d = 0; d < 3; ++d) {
        const double k = 2.0 * M_PI / s.cfg.box[d];
        c[i][d] = T(double(c[i][d]) * k * std::cos(k * double(xs[i][d])));
      }
    return c;
  }
  template <class T>
  static particles::Positions<T> to_host(particles::Vec3View<const T> x) {
    particles::Positions<T> h(x.size);
    for (int d = 0; d < 3; ++d)
      for (std::size_t i = 0; i < x.size; ++i) device::copy(&h[i][d], &x(i, d), sizeof(T));
    return h;
  }

  template <class T>
  Pass<T> cpu() const {
    const auto fixed = s.initial<T>();
    const double Om = s.cosmo.parameters().Omega_m();
    nb::PmForce<T> pm(s.grid(), {}, np);
    auto force = [&](const particles::Positions<T>& x, particles::Positions<T>& F) {
      pm(x, Om, F);
    };
    auto fa = [&](const particles::Positions<T>& x, const particles::Positions<T>& F_bar,
                  particles::Positions<T>& F, particles::Positions<T>& x_bar) {
      return pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
    };
    Pass<T> out;
    auto state = fixed;
    nb::FixedPointRecord record;
    nb::integrate_fixed_point<T>(
        s.cosmo, a, state, force, opt,
        [&](double, const particles::Positions<T>& x, const particles::Positions<T>&) {
          out.seen.push_back(x);
        },
        &record);
    out.x_bar = weights<T>(1);
    out.p_bar = weights<T>(2);
    out.g = nb::integrate_fixed_point_adjoint<T>(
        s.cosmo, a, state, force, fa, out.x_bar, out.p_bar, opt, &record,
        [&](double as, const particles::Positions<T>& xs, particles::Positions<T>& xs_bar) {
          xs_bar = snapshot_bar<T>(as, xs);
        });
    return out;
  }

  template <class T>
  Pass<T> device(nb::AdjointMode mode, std::size_t every = 3) const {
    const auto fixed = s.initial<T>();
    const double Om = s.cosmo.parameters().Omega_m();
    nb::PmForce<T, Cuda> pm(s.grid(), {}, np);
    auto force = [&](particles::Vec3View<const T> x, particles::Vec3View<T> F) { pm(x, Om, F); };
    auto fa = [&](particles::Vec3View<const T> x, particles::Vec3View<const T> F_bar,
                  particles::Vec3View<T> F, particles::Vec3View<T> x_bar) {
      return pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
    };
    Pass<T> out;
    auto state = nb::DeviceFixedPointState::upload(fixed);
    nb::DeviceFixedPointRecord record;
    record.mode = mode;
    record.checkpoint_every = every;
    nb::integrate_fixed_point<T>(
        Cuda{}, s.cosmo, a, state, force, opt,
        [&](double, particles::Vec3View<const T> x, particles::Vec3View<const T>) {
          out.seen.push_back(to_host<T>(x));
        },
        &record);
    const auto end = state.download();
    test::DevicePositions<T> xb(weights<T>(1)), pb(weights<T>(2));
    out.g = nb::integrate_fixed_point_adjoint<T>(
        Cuda{}, s.cosmo, a, state, force, fa, xb.view(), pb.view(), opt, &record,
        [&](double as, particles::Vec3View<const T> xs, particles::Vec3View<T> xs_bar) {
          const auto w = snapshot_bar<T>(as, to_host<T>(xs));
          for (int d = 0; d < 3; ++d)
            for (std::size_t i = 0; i < np; ++i) device::copy(&xs_bar(i, d), &w[i][d], sizeof(T));
        });
    // Reverse mode rebuilds the first state; store and checkpoint leave the final one.
    const auto after = state.download();
    CHECK(same_state(after, mode == nb::AdjointMode::reverse ? fixed : end));
    out.x_bar = xb.to_host();
    out.p_bar = pb.to_host();
    return out;
  }
};

}  // namespace

TEMPLATE_TEST_CASE(
    "device store, reverse and checkpoint gradients with snapshots agree bit for bit",
    "[device][reversible][snapshots]", float, double) {
  using T = TestType;
  const SnapshotRun run;
  const auto reverse = run.device<T>(nb::AdjointMode::reverse);
  REQUIRE(reverse.seen.size() == 4);
  REQUIRE(reverse.g.snapshots.size() == 4);
  // The three modes see the same states and forces, so the same bits on any backend; 7 steps
  // with checkpoints every 3 leave a short last segment, every 1 keeps every state.
  CHECK(same_pass(run.device<T>(nb::AdjointMode::store), reverse));
  CHECK(same_pass(run.device<T>(nb::AdjointMode::checkpoint, 3), reverse));
  CHECK(same_pass(run.device<T>(nb::AdjointMode::checkpoint, 1), reverse));
  CHECK(same_pass(run.device<T>(nb::AdjointMode::checkpoint, 8), reverse));

  const auto cpu = run.cpu<T>();
  if (test::emulated_device) {
    CHECK(same_pass(reverse, cpu));
  } else {
    // FFT rounding (see the first test): the snapshot positions within a hundredth of the
    // 4 Mpc/h spacing, the gradients within the relative tolerance of the gradient test.
    const double tol = std::is_same_v<T, float> ? 1e-3 : 1e-8;
    double worst = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < run.np; ++i)
      for (int d = 0; d < 3; ++d) {
        worst = std::max(worst, std::fabs(double(reverse.x_bar[i][d]) - double(cpu.x_bar[i][d])));
        scale = std::max(scale, std::fabs(double(cpu.x_bar[i][d])));
      }
    CHECK(worst <= tol * scale);
    for (std::size_t k = 0; k < 4; ++k)
      CHECK(std::fabs(reverse.g.snapshots[k].drift - cpu.g.snapshots[k].drift) <=
            tol * std::fabs(cpu.g.snapshots[k].drift));
  }
}

TEST_CASE("device memory of a reverse-mode gradient is flat in the number of steps",
          "[device][reversible][memory]") {
  // Peak device bytes of the forward run and its gradient, counted by the device allocator
  // (backend/device/memory.hpp): reverse mode allocates the same whatever the steps; store mode
  // adds one 48-byte state per particle and step.
  using T = float;
  const Setup s(8);
  const auto fixed0 = s.initial<T>();
  const double Om = s.cosmo.parameters().Omega_m();
  nb::PmForce<T, Cuda> pm(s.grid(), {}, fixed0.x.size());
  auto force = [&](particles::Vec3View<const T> x, particles::Vec3View<T> F) { pm(x, Om, F); };
  auto fa = [&](particles::Vec3View<const T> x, particles::Vec3View<const T> F_bar,
                particles::Vec3View<T> F, particles::Vec3View<T> x_bar) {
    return pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
  };
  auto peak = [&](int steps, nb::AdjointMode mode) {
    auto state = nb::DeviceFixedPointState::upload(fixed0);
    test::DevicePositions<T> xb(fixed0.x.size()), pb(fixed0.x.size());
    xb.data.zero();
    pb.data.zero();
    const std::size_t base = device::allocated_bytes();
    device::reset_peak_bytes();
    nb::DeviceFixedPointRecord record;
    record.mode = mode;
    const auto a = nb::time_steps(0.1, 0.5, steps);
    nb::integrate_fixed_point<T>(Cuda{}, s.cosmo, a, state, force, {}, {}, &record);
    nb::integrate_fixed_point_adjoint<T>(Cuda{}, s.cosmo, a, state, force, fa, xb.view(), pb.view(),
                                         {}, &record);
    return device::peak_allocated_bytes() - base;
  };
  const std::size_t r4 = peak(4, nb::AdjointMode::reverse);
  CHECK(r4 > 0);
  CHECK(peak(12, nb::AdjointMode::reverse) == r4);
  CHECK(peak(12, nb::AdjointMode::store) - peak(4, nb::AdjointMode::store) ==
        8 * nb::DeviceFixedPointState::bytes(fixed0.x.size()));
}

TEST_CASE("the device integrator refuses inconsistent input", "[device][reversible]") {
  const Setup s(4);
  const auto fixed0 = s.initial<double>();
  nb::PmForce<double, Cuda> pm(s.grid());
  auto force = [&](particles::Vec3View<const double> x, particles::Vec3View<double> F) {
    pm(x, 0.3, F);
  };
  auto fa = [&](particles::Vec3View<const double> x, particles::Vec3View<const double> F_bar,
                particles::Vec3View<double> F, particles::Vec3View<double> x_bar) {
    return pm.value_and_adjoint(x, 0.3, F_bar, F, x_bar);
  };
  auto state = nb::DeviceFixedPointState::upload(fixed0);
  const std::vector<double> a = {0.1, 0.2, 0.3};
  nb::IntegratorOptions opt;
  opt.snapshots = {0.5};
  CHECK_THROWS_WITH(nb::integrate_fixed_point<double>(Cuda{}, s.cosmo, a, state, force, opt,
                                                      [](double, particles::Vec3View<const double>,
                                                         particles::Vec3View<const double>) {}),
                    Catch::Contains("snapshot a = 0.5") && Catch::Contains("outside"));
  opt.snapshots = {0.15};
  CHECK_THROWS_WITH(nb::integrate_fixed_point<double>(Cuda{}, s.cosmo, a, state, force, opt),
                    Catch::Contains("no hook"));
  nb::DeviceFixedPointRecord bad;
  bad.mode = nb::AdjointMode::checkpoint;
  bad.checkpoint_every = 0;
  CHECK_THROWS_WITH(
      nb::integrate_fixed_point<double>(Cuda{}, s.cosmo, a, state, force, {}, {}, &bad),
      Catch::Contains("checkpoint every 0"));
  CHECK(same_state(state.download(), fixed0));  // nothing ran

  // A store record of 2 steps for a reverse pass over 3; a state that is not the run's end.
  nb::DeviceFixedPointRecord store;
  store.mode = nb::AdjointMode::store;
  nb::integrate_fixed_point<double>(Cuda{}, s.cosmo, a, state, force, {}, {}, &store);
  test::DevicePositions<double> xb(fixed0.x.size()), pb(fixed0.x.size());
  xb.data.zero();
  pb.data.zero();
  CHECK_THROWS_WITH(
      nb::integrate_fixed_point_adjoint<double>(Cuda{}, s.cosmo, {0.1, 0.2, 0.3, 0.4}, state, force,
                                                fa, xb.view(), pb.view(), {}, &store),
      Catch::Contains("a record of 2 states for 3 steps"));
  auto other = nb::DeviceFixedPointState::upload(fixed0);
  CHECK_THROWS_WITH(nb::integrate_fixed_point_adjoint<double>(Cuda{}, s.cosmo, a, other, force, fa,
                                                              xb.view(), pb.view(), {}, &store),
                    Catch::Contains("not the final state"));
  test::DevicePositions<double> short_bar(3);
  CHECK_THROWS_WITH(
      nb::integrate_fixed_point_adjoint<double>(Cuda{}, s.cosmo, a, state, force, fa,
                                                short_bar.view(), pb.view(), {}, &store),
      Catch::Contains("entries for"));
  opt.snapshots = {0.15};
  CHECK_THROWS_WITH(nb::integrate_fixed_point_adjoint<double>(Cuda{}, s.cosmo, a, state, force, fa,
                                                              xb.view(), pb.view(), opt, &store),
                    Catch::Contains("no hook"));
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

  // Snapshots inside the steps and from LPT reach a host hook on both backends: the same
  // positions (bitwise in the emulation), at the same scale factors, in the same order.
  nb::IntegratorOptions opt;
  opt.snapshots = {0.05, 0.1, 0.37, 1.0};
  std::vector<std::pair<double, particles::Positions<T>>> seen_cpu, seen_dev;
  cfg.backend = BackendKind::cpu;
  nb::run_simulation<T>(cosmo, cfg, opt,
                        [&](double a, const particles::Positions<T>& x, const auto&) {
                          seen_cpu.emplace_back(a, x);
                        });
  cfg.backend = BackendKind::cuda;
  nb::run_simulation<T>(cosmo, cfg, opt,
                        [&](double a, const particles::Positions<T>& x, const auto&) {
                          seen_dev.emplace_back(a, x);
                        });
  REQUIRE(seen_dev.size() == 4);
  REQUIRE(seen_cpu.size() == 4);
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(seen_dev[k].first == seen_cpu[k].first);
    if (test::emulated_device || k < 2) {  // LPT snapshots are made on the host
      CHECK(std::memcmp(seen_dev[k].second.data(), seen_cpu[k].second.data(),
                        cpu.state.x.size() * sizeof(cpu.state.x[0])) == 0);
    }
  }

  // A gradient run's record belongs in device memory on this backend.
  nb::FixedPointRecord host_record;
  nb::EvolveOptions<T> eo;
  eo.record = &host_record;
  auto lpt = nb::detail::make_lpt<T>(cfg);
  mesh::ComplexField<T> delta(mesh::Grid(cfg.particles, cfg.box));
  ic::linear_field(lpt->plan(), ic::white_noise<T>(delta.grid, cfg.seed),
                   ic::mode_amplitudes(delta.grid, cosmo, 1.0), delta, {});
  lpt->compute(delta, cfg.lpt_order);
  CHECK_THROWS_WITH(nb::evolve<T>(cosmo, cfg, lpt, eo), Catch::Contains("device_record"));
}
