// The fixed-point integrator (nbody/reversible.hpp): running it backwards restores every
// earlier state bit for bit, in float and double, and its trajectory is the floating-point
// KDK trajectory up to the rounding of the state.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/nbody/reversible.hpp"
#include "diffpm/nbody/simulation.hpp"
#include "diffpm/nbody/time_steps.hpp"

namespace nb = diffpm::nbody;
using diffpm::InvalidArgument;

namespace {

// n^3 particles at 4 Mpc/h spacing on a (2n)^3 force mesh, Planck 2018, 2LPT initial conditions
// at a_start (an LPT-only run, steps = 0, ending there).
struct Setup {
  diffpm::cosmology::Cosmology<double> cosmo{diffpm::cosmology::Parameters<double>{}};
  nb::SimulationConfig cfg;
  explicit Setup(int n = 32, double a_start = 0.1, std::uint64_t seed = 5) {
    const double L = 4.0 * n;
    cfg.box = {L, L, L};
    cfg.particles = {n, n, n};
    cfg.mesh = {2 * n, 2 * n, 2 * n};
    cfg.steps = 0;
    cfg.a_end = a_start;
    cfg.seed = seed;
  }
  template <class T>
  nb::ParticleState<T> initial() const {
    return nb::run_simulation<T>(cosmo, cfg).state;
  }
};
// The default: 32^3 particles in 128 Mpc/h from a = 0.1, nonlinear by a = 1 (sigma8 = 0.81 at
// 4 Mpc/h spacing), so shell crossing and large forces are exercised.

template <class T>
double wrapped_distance(T a, T b, double L) {
  double d = std::fmod(double(a) - double(b), L);
  if (d > 0.5 * L) d -= L;
  if (d < -0.5 * L) d += L;
  return std::fabs(d);
}

}  // namespace

TEMPLATE_TEST_CASE("the fixed-point integrator runs backwards to the same bits",
                   "[nbody][reversible]", float, double) {
  using T = TestType;
  const Setup s;
  const auto init = s.template initial<T>();
  const auto fixed0 = nb::FixedPointState::from(init, s.cfg.box);
  nb::PmForce<T> pm(diffpm::mesh::Grid(s.cfg.mesh, s.cfg.box), {}, init.x.size());
  const double Om = s.cosmo.parameters().Omega_m();
  auto force = [&](const diffpm::particles::Positions<T>& x, diffpm::particles::Positions<T>& F) {
    pm(x, Om, F);
  };
  const auto a = nb::time_steps(0.1, 1.0, 10);

  // Forward, keeping the state at every step boundary (running the first k steps is the same
  // computation as the first k steps of the whole run: the force at a_k is recomputed from the
  // same positions).
  std::vector<nb::FixedPointState> boundary(a.size());
  boundary[0] = fixed0;
  for (std::size_t k = 1; k < a.size(); ++k) {
    boundary[k] = boundary[k - 1];
    nb::integrate_fixed_point<T>(s.cosmo, {a[k - 1], a[k]}, boundary[k], force);
  }
  auto state = fixed0;
  nb::integrate_fixed_point<T>(s.cosmo, a, state, force);
  // (Compared as bools: Catch would print 32768-element vectors on failure.)
  const bool same_end = state.x == boundary.back().x && state.p == boundary.back().p;
  CHECK(same_end);
  // The particles did move: a tenth of the box on average.
  double moved = 0.0;
  for (std::size_t i = 0; i < state.x.size(); ++i)
    for (int d = 0; d < 3; ++d)
      moved += std::fabs(double(std::int64_t(state.x[i][d] - fixed0.x[i][d]))) * 0x1p-64;
  CHECK(moved / double(3 * state.x.size()) > 0.005);

  // Backward: every boundary state comes back exactly, down to the initial one.
  std::size_t seen = 0;
  bool all_equal = true;
  nb::integrate_fixed_point_backward<T>(
      s.cosmo, a, state, force, {}, [&](std::size_t k, const nb::FixedPointState& st) {
        ++seen;
        all_equal = all_equal && st.x == boundary[k].x && st.p == boundary[k].p;
      });
  CHECK(seen == a.size());
  CHECK(all_equal);
  const bool same_start = state.x == fixed0.x && state.p == fixed0.p;
  CHECK(same_start);
}

TEMPLATE_TEST_CASE("the fixed-point trajectory is the floating-point KDK trajectory",
                   "[nbody][reversible]", float, double) {
  using T = TestType;
  const Setup s;
  auto ref = s.template initial<T>();
  auto fixed = nb::FixedPointState::from(ref, s.cfg.box);
  nb::PmForce<T> pm(diffpm::mesh::Grid(s.cfg.mesh, s.cfg.box), {}, ref.x.size());
  const double Om = s.cosmo.parameters().Omega_m();
  auto force = [&](const diffpm::particles::Positions<T>& x, diffpm::particles::Positions<T>& F) {
    pm(x, Om, F);
  };
  const auto a = nb::time_steps(0.1, 1.0, 10);
  // With a snapshot between step boundaries (a = 0.55), seen by both.
  nb::IntegratorOptions opt;
  opt.snapshots = {0.55};
  diffpm::particles::Positions<T> snap_ref, snap_fixed;
  nb::integrate(
      s.cosmo, a, ref, force, opt,
      nb::SnapshotHook<T>([&](double, const diffpm::particles::Positions<T>& xs,
                              const diffpm::particles::Positions<T>&) { snap_ref = xs; }));
  nb::integrate_fixed_point<T>(s.cosmo, a, fixed, force, opt,
                               [&](double, const diffpm::particles::Positions<T>& xs,
                                   const diffpm::particles::Positions<T>&) { snap_fixed = xs; });
  REQUIRE(snap_ref.size() == ref.x.size());
  REQUIRE(snap_fixed.size() == ref.x.size());
  diffpm::particles::Positions<T> x, p;
  fixed.positions(x);
  fixed.momenta(p);
  double dx = 0.0, dp = 0.0, p_rms = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      dx = std::max(dx, wrapped_distance(snap_fixed[i][d], snap_ref[i][d], s.cfg.box[d]));
      dx = std::max(dx, wrapped_distance(x[i][d], ref.x[i][d], s.cfg.box[d]));
      dp = std::max(dp, std::fabs(double(p[i][d]) - double(ref.p[i][d])));
      p_rms += double(ref.p[i][d]) * ref.p[i][d];
    }
  p_rms = std::sqrt(p_rms / double(3 * x.size()));
  INFO("max |dx| = " << dx << " Mpc/h, max |dp| / p_rms = " << dp / p_rms);
  // The two differ by the rounding of the state each step (2^-40 of the initial largest
  // momentum, 2^-64 of the box) against the rounding of T arithmetic, amplified by the
  // trajectories' sensitivity over 10 steps. Measured: double 9.8e-12 Mpc/h and 9.3e-12 p_rms;
  // float 5.0e-5 Mpc/h and 3.2e-5 p_rms (float positions in a 128 Mpc/h box carry 8e-6 Mpc/h
  // each). Bounds with a margin of 10-20; a wrong factor or sign in a kick or drift would show
  // as differences of order the displacements themselves (~1 Mpc/h).
  const double tol_x = std::is_same_v<T, float> ? 1e-3 : 1e-10;
  const double tol_p = std::is_same_v<T, float> ? 1e-3 : 1e-10;
  CHECK(dx < tol_x);
  CHECK(dp / p_rms < tol_p);
}

TEST_CASE("the fixed-point state rejects bad input", "[nbody][reversible][errors]") {
  nb::ParticleState<double> s;
  s.x = {{1.0, 2.0, 3.0}};
  s.p = {{0.1, 0.2, 0.3}};
  CHECK_THROWS_AS(nb::FixedPointState::from(s, {100.0, 0.0, 100.0}), InvalidArgument);
  auto bad = s;
  bad.x[0][1] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(nb::FixedPointState::from(bad, {100.0, 100.0, 100.0}), InvalidArgument);
  bad = s;
  bad.p[0][2] = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(nb::FixedPointState::from(bad, {100.0, 100.0, 100.0}), InvalidArgument);
  bad = s;
  bad.p.clear();
  CHECK_THROWS_AS(nb::FixedPointState::from(bad, {100.0, 100.0, 100.0}), InvalidArgument);
  // A quantum that is not finite and > 0 (0 asks for the default).
  CHECK_THROWS_WITH(nb::FixedPointState::from(s, {100.0, 100.0, 100.0}, -1.0),
                    Catch::Contains("quantum = -1"));
  // A hand-made state whose positions and momenta disagree in number.
  {
    auto broken = nb::FixedPointState::from(s, {100.0, 100.0, 100.0});
    broken.p.clear();
    const diffpm::cosmology::Cosmology<double> cosmo{diffpm::cosmology::Parameters<double>{}};
    auto no_force = [](const std::vector<std::array<double, 3>>&,
                       std::vector<std::array<double, 3>>&) {};
    CHECK_THROWS_AS(nb::integrate_fixed_point<double>(cosmo, {0.5, 1.0}, broken, no_force),
                    InvalidArgument);
  }
  // A momentum quantum so small that the momenta do not fit in 62 bits.
  CHECK_THROWS_WITH(nb::FixedPointState::from(s, {100.0, 100.0, 100.0}, 1e-30),
                    Catch::Contains("momentum"));
  // Positions wrap into the box; momenta round to the quantum.
  s.x[0] = {-1.0, 250.0, 50.0};
  const auto f = nb::FixedPointState::from(s, {100.0, 100.0, 100.0}, 1e-3);
  std::vector<std::array<double, 3>> x, p;
  f.positions(x);
  f.momenta(p);
  CHECK(x[0][0] == Approx(99.0).epsilon(1e-15));
  CHECK(x[0][1] == Approx(50.0).epsilon(1e-15));
  CHECK(x[0][2] == Approx(50.0).epsilon(1e-15));
  CHECK(p[0][0] == Approx(0.1).epsilon(1e-12));
  CHECK(f.p[0][1] == 200);
}

namespace {

// A small run for gradient checks: 16^3 particles in 64 Mpc/h, 32^3 mesh, 3 steps from a = 0.3
// (already nonlinear on the mesh scale by a = 1).
struct GradientSetup : Setup {
  std::vector<double> a = nb::time_steps(0.3, 1.0, 3);
  GradientSetup() : Setup(16, 0.3, 9) {}
};

template <class T>
std::vector<std::array<T, 3>> random_vectors(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g;
  std::vector<std::array<T, 3>> v(n);
  for (auto& e : v)
    for (auto& c : e) c = T(g(rng));
  return v;
}

}  // namespace

TEST_CASE("the fixed-point adjoint matches central differences of the KDK map",
          "[nbody][reversible][adjoint]") {
  using T = double;
  const GradientSetup s;
  const auto init = s.template initial<T>();
  nb::PmForce<T> pm(diffpm::mesh::Grid(s.cfg.mesh, s.cfg.box), {}, init.x.size());
  const double Om = s.cosmo.parameters().Omega_m();
  const std::size_t n = init.x.size();
  // L = <w, x_end> + <u, p_end>; directions v_x, v_p for the initial state.
  const auto w = random_vectors<T>(n, 1), u = random_vectors<T>(n, 2);
  const auto vx = random_vectors<T>(n, 3), vp = random_vectors<T>(n, 4);
  double p_rms = 0.0;
  for (const auto& e : init.p)
    for (double c : e) p_rms += c * c;
  p_rms = std::sqrt(p_rms / double(3 * n));

  // Central differences of the floating-point integrator (the fixed-point one agrees with it to
  // 1e-11 Mpc/h, above): positions moved by eps * v_x Mpc/h, momenta by eps * p_rms * v_p.
  auto loss = [&](double ex, double ep, double omega) {
    auto st = init;
    for (std::size_t i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d) {
        st.x[i][d] += ex * vx[i][d];
        st.p[i][d] += ep * p_rms * vp[i][d];
      }
    nb::integrate(s.cosmo, s.a, st, [&](const auto& x, auto& F) { pm(x, omega, F); });
    long double L = 0.0L;
    for (std::size_t i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d)
        L += (long double)w[i][d] * st.x[i][d] + (long double)u[i][d] * st.p[i][d];
    return L;
  };
  const double e = 1e-6;
  const double fd_x = double((loss(e, 0, Om) - loss(-e, 0, Om)) / (2 * e));
  const double fd_p = double((loss(0, e, Om) - loss(0, -e, Om)) / (2 * e));
  const double e_om = 1e-7;
  const double fd_om = double((loss(0, 0, Om + e_om) - loss(0, 0, Om - e_om)) / (2 * e_om));

  auto fixed = nb::FixedPointState::from(init, s.cfg.box);
  auto force = [&](const auto& x, auto& F) { pm(x, Om, F); };
  auto force_and_adjoint = [&](const auto& x, const auto& F_bar, auto& F, auto& x_bar) {
    return pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
  };
  nb::integrate_fixed_point<T>(s.cosmo, s.a, fixed, force);
  auto x_bar = w, p_bar = u;
  const auto g = nb::integrate_fixed_point_adjoint<T>(s.cosmo, s.a, fixed, force, force_and_adjoint,
                                                      x_bar, p_bar);
  // The reverse pass left the rebuilt initial state behind.
  const auto fixed0 = nb::FixedPointState::from(init, s.cfg.box);
  const bool restored = fixed.x == fixed0.x && fixed.p == fixed0.p;
  CHECK(restored);
  double ad_x = 0.0, ad_p = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) {
      ad_x += x_bar[i][d] * vx[i][d];
      ad_p += p_bar[i][d] * p_rms * vp[i][d];
    }
  INFO("x: " << ad_x << " vs " << fd_x << "; p: " << ad_p << " vs " << fd_p
             << "; Omega_m: " << g.force_scalar << " vs " << fd_om);
  // The map is smooth between CIC kinks; with 4096 particles moved by 1e-6 Mpc/h, a kink
  // crossing is unlikely, and the central difference is then exact to O(eps^2 L''') ~ 1e-10
  // relative, plus the 1e-11 Mpc/h by which the fixed-point trajectory (where the adjoint is
  // evaluated) differs from the floating-point one. 1e-6 relative leaves room for both.
  CHECK(ad_x == Approx(fd_x).epsilon(1e-6));
  CHECK(ad_p == Approx(fd_p).epsilon(1e-6));
  CHECK(g.force_scalar == Approx(fd_om).epsilon(1e-6));
  CHECK(g.kick_first.size() == 3);
  CHECK(g.drift.size() == 3);
}

TEST_CASE("the fixed-point adjoint carries snapshot gradients", "[nbody][reversible][adjoint]") {
  using T = double;
  const GradientSetup s;  // steps at a = 0.3, 0.53, 0.74, 1.0 (linear spacing)
  const auto init = s.template initial<T>();
  nb::PmForce<T> pm(diffpm::mesh::Grid(s.cfg.mesh, s.cfg.box), {}, init.x.size());
  const double Om = s.cosmo.parameters().Omega_m();
  const std::size_t n = init.x.size();
  // Snapshots: at the start (not drifted), inside the first and last steps, and at the end.
  const std::vector<double> snaps = {0.3, 0.45, 0.9, 1.0};
  std::vector<std::vector<std::array<T, 3>>> v;
  for (std::size_t k = 0; k < snaps.size(); ++k) v.push_back(random_vectors<T>(n, 20 + k));
  const auto w = random_vectors<T>(n, 1), vx = random_vectors<T>(n, 3);

  // L = <w, x_end> + sum_s <v_s, x(a_s)>, by the floating-point integrator; the snapshot at
  // index `moved` is taken at a_s + da instead.
  auto loss = [&](double ex, std::size_t moved, double da) {
    auto st = init;
    for (std::size_t i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d) st.x[i][d] += ex * vx[i][d];
    nb::IntegratorOptions opt;
    opt.snapshots = snaps;
    if (moved < snaps.size()) opt.snapshots[moved] += da;
    long double L = 0.0L;
    std::size_t k = 0;
    nb::integrate(
        s.cosmo, s.a, st, [&](const auto& x, auto& F) { pm(x, Om, F); }, opt,
        nb::SnapshotHook<T>([&](double, const auto& xs, const auto&) {
          for (std::size_t i = 0; i < n; ++i)
            for (int d = 0; d < 3; ++d) L += (long double)v[k][i][d] * xs[i][d];
          ++k;
        }));
    for (std::size_t i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d) L += (long double)w[i][d] * st.x[i][d];
    return L;
  };
  const double e = 1e-6;
  const double fd_x = double((loss(e, 9, 0) - loss(-e, 9, 0)) / (2 * e));
  const double e_a = 1e-6;  // moves the snapshot inside its step
  const double fd_a1 = double((loss(0, 1, e_a) - loss(0, 1, -e_a)) / (2 * e_a));
  const double fd_a2 = double((loss(0, 2, e_a) - loss(0, 2, -e_a)) / (2 * e_a));

  auto fixed = nb::FixedPointState::from(init, s.cfg.box);
  auto force = [&](const auto& x, auto& F) { pm(x, Om, F); };
  auto force_and_adjoint = [&](const auto& x, const auto& F_bar, auto& F, auto& x_bar) {
    return pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
  };
  nb::IntegratorOptions opt;
  opt.snapshots = snaps;
  nb::integrate_fixed_point<T>(s.cosmo, s.a, fixed, force, opt,
                               [](double, const auto&, const auto&) {});
  auto x_bar = w;
  std::vector<std::array<T, 3>> p_bar(n, {0.0, 0.0, 0.0});
  std::vector<double> seen;
  const auto g = nb::integrate_fixed_point_adjoint<T>(
      s.cosmo, s.a, fixed, force, force_and_adjoint, x_bar, p_bar, opt, nullptr,
      [&](double a_s, const auto&, auto& xs_bar) {
        const std::size_t k =
            std::size_t(std::find(snaps.begin(), snaps.end(), a_s) - snaps.begin());
        REQUIRE(k < snaps.size());
        seen.push_back(a_s);
        xs_bar = v[k];
      });
  CHECK(seen == std::vector<double>{1.0, 0.9, 0.45, 0.3});  // last first
  REQUIRE(g.snapshots.size() == 4);
  CHECK(g.snapshots[0].step == 3);  // before the first step: not drifted
  CHECK(g.snapshots[1].step == 0);
  CHECK(g.snapshots[2].step == 2);
  CHECK(g.snapshots[3].step == 2);
  double ad_x = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) ad_x += x_bar[i][d] * vx[i][d];
  // dL/da_s = dL/dD_s dD_s/da_s, D_s = D(a_i, a_s, a_h) (FastPM drift, linear in D1(a_s)).
  const nb::FastPmFactors<double> f(s.cosmo);
  auto dD_da = [&](std::size_t k) {
    const std::size_t i = g.snapshots[k].step;
    const double a0 = s.a[i], ah = std::sqrt(a0 * s.a[i + 1]), as = snaps[k];
    return (f.drift(a0, as + e_a, ah) - f.drift(a0, as - e_a, ah)) / (2 * e_a);
  };
  const double ad_a1 = g.snapshots[1].drift * dD_da(1), ad_a2 = g.snapshots[2].drift * dD_da(2);
  INFO("x: " << ad_x << " vs " << fd_x << "; a_s: " << ad_a1 << " vs " << fd_a1 << ", " << ad_a2
             << " vs " << fd_a2);
  // As in the test above (smooth between CIC kinks; central differences exact to ~1e-10).
  CHECK(ad_x == Approx(fd_x).epsilon(1e-6));
  CHECK(ad_a1 == Approx(fd_a1).epsilon(1e-6));
  CHECK(ad_a2 == Approx(fd_a2).epsilon(1e-6));
}

TEMPLATE_TEST_CASE(
    "stored, reconstructed and checkpointed trajectories give the same gradient bits",
    "[nbody][reversible][adjoint]", float, double) {
  using T = TestType;
  const Setup s(16, 0.3, 9);
  const auto init = s.template initial<T>();
  const auto a = nb::time_steps(0.3, 1.0, 7);
  nb::PmForce<T> pm(diffpm::mesh::Grid(s.cfg.mesh, s.cfg.box), {}, init.x.size());
  const double Om = s.cosmo.parameters().Omega_m();
  auto force = [&](const auto& x, auto& F) { pm(x, Om, F); };
  auto force_and_adjoint = [&](const auto& x, const auto& F_bar, auto& F, auto& x_bar) {
    return pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
  };
  nb::IntegratorOptions opt;
  opt.snapshots = {0.3, 0.5, 0.77, 0.95};
  const auto w = random_vectors<T>(init.x.size(), 5), u = random_vectors<T>(init.x.size(), 6);
  const auto v = random_vectors<T>(init.x.size(), 7);
  auto snapshot_adjoint = [&](double a_s, const auto& xs, auto& xs_bar) {
    // A nonlinear function of the snapshot positions: L_s = a_s sum v . sin(x).
    for (std::size_t i = 0; i < xs.size(); ++i)
      for (int d = 0; d < 3; ++d) xs_bar[i][d] = T(a_s) * v[i][d] * std::cos(xs[i][d]);
  };
  struct Out {
    std::vector<std::array<T, 3>> x_bar, p_bar;
    nb::IntegratorGradient g;
    nb::FixedPointState after;
  };
  auto run = [&](nb::AdjointMode mode, std::size_t every) {
    auto fixed = nb::FixedPointState::from(init, s.cfg.box);
    nb::FixedPointRecord record;
    record.mode = mode;
    record.checkpoint_every = every;
    nb::integrate_fixed_point<T>(
        s.cosmo, a, fixed, force, opt, [](double, const auto&, const auto&) {}, &record);
    CHECK(record.half_steps.size() == record.expected_size(a.size() - 1));
    Out o{w, u, {}, {}};
    o.g = nb::integrate_fixed_point_adjoint<T>(s.cosmo, a, fixed, force, force_and_adjoint, o.x_bar,
                                               o.p_bar, opt, &record, snapshot_adjoint);
    o.after = fixed;
    return o;
  };
  const Out st = run(nb::AdjointMode::store, 0);
  const Out rv = run(nb::AdjointMode::reverse, 0);
  const Out c3 = run(nb::AdjointMode::checkpoint, 3);  // segments of 3, 3 and 1 steps
  const Out c1 = run(nb::AdjointMode::checkpoint, 1);
  for (const Out* o : {&rv, &c3, &c1}) {
    const bool same_bars = o->x_bar == st.x_bar && o->p_bar == st.p_bar;
    CHECK(same_bars);
    CHECK(o->g.kick_first == st.g.kick_first);
    CHECK(o->g.kick_second == st.g.kick_second);
    CHECK(o->g.drift == st.g.drift);
    CHECK(o->g.force_scalar == st.g.force_scalar);
    REQUIRE(o->g.snapshots.size() == st.g.snapshots.size());
    for (std::size_t k = 0; k < st.g.snapshots.size(); ++k)
      CHECK(o->g.snapshots[k].drift == st.g.snapshots[k].drift);
  }
  // Reverse mode leaves the rebuilt initial state; the others leave the final one.
  const auto fixed0 = nb::FixedPointState::from(init, s.cfg.box);
  const bool restored = rv.after.x == fixed0.x && rv.after.p == fixed0.p;
  CHECK(restored);
  const bool kept = st.after.x == c3.after.x && !(st.after.x == fixed0.x);
  CHECK(kept);
  // And not trivially: the gradient differs from its seed.
  CHECK_FALSE(st.x_bar == w);
  CHECK(st.g.snapshots[2].drift != 0.0);
}

TEST_CASE("the fixed-point adjoint rejects a record that does not fit the run",
          "[nbody][reversible][errors]") {
  const Setup s(8, 0.3, 9);
  const auto init = s.template initial<double>();
  nb::PmForce<double> pm(diffpm::mesh::Grid(s.cfg.mesh, s.cfg.box), {}, init.x.size());
  auto force = [&](const auto& x, auto& F) { pm(x, 0.3, F); };
  auto force_and_adjoint = [&](const auto& x, const auto& F_bar, auto& F, auto& x_bar) {
    return pm.value_and_adjoint(x, 0.3, F_bar, F, x_bar);
  };
  auto fixed = nb::FixedPointState::from(init, s.cfg.box);
  nb::FixedPointRecord record;
  record.mode = nb::AdjointMode::store;
  nb::integrate_fixed_point<double>(s.cosmo, {0.3, 0.5, 1.0}, fixed, force, {}, {}, &record);
  std::vector<std::array<double, 3>> xb(init.x.size()), pb(init.x.size());
  CHECK_THROWS_WITH(
      nb::integrate_fixed_point_adjoint<double>(s.cosmo, {0.3, 0.4, 0.5, 1.0}, fixed, force,
                                                force_and_adjoint, xb, pb, {}, &record),
      Catch::Contains("2 states for 3 steps"));
  record.mode = nb::AdjointMode::checkpoint;
  record.checkpoint_every = 0;
  CHECK_THROWS_WITH(
      nb::integrate_fixed_point_adjoint<double>(s.cosmo, {0.3, 0.5, 1.0}, fixed, force,
                                                force_and_adjoint, xb, pb, {}, &record),
      Catch::Contains("checkpoint every 0"));
  // Snapshots need their adjoint.
  nb::IntegratorOptions opt;
  opt.snapshots = {0.4};
  CHECK_THROWS_AS(nb::integrate_fixed_point_adjoint<double>(s.cosmo, {0.3, 0.5, 1.0}, fixed, force,
                                                            force_and_adjoint, xb, pb, opt),
                  InvalidArgument);
}

TEMPLATE_TEST_CASE("a reverse pass whose force differs from the forward pass's is caught",
                   "[nbody][reversible][errors]", float, double) {
  // The run-time check of exact reversal: a force adjoint that returns the force one ulp off for
  // a single particle component (what another FFT plan or another compilation of the readout
  // could do) must make the reverse pass throw ReversibilityError, not return a wrong gradient.
  using T = TestType;
  const Setup s(8, 0.3, 9);
  const auto init = s.template initial<T>();
  const auto a = nb::time_steps(0.3, 1.0, 6);
  nb::PmForce<T> pm(diffpm::mesh::Grid(s.cfg.mesh, s.cfg.box), {}, init.x.size());
  const double Om = s.cosmo.parameters().Omega_m();
  auto force = [&](const auto& x, auto& F) { pm(x, Om, F); };
  int calls = 0;
  auto perturbed = [&](const auto& x, const auto& F_bar, auto& F, auto& x_bar) {
    const double r = pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
    // At the third boundary from the end, change one component by one part in 10^6: the kick
    // increment K F / q_p is ~1e10 quanta (q_p is 2^-40 of the largest |p|), so it rounds to
    // another integer in float and double alike.
    if (++calls == 3) F[7][1] *= T(1.000001);
    return r;
  };
  auto exact = [&](const auto& x, const auto& F_bar, auto& F, auto& x_bar) {
    return pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
  };
  auto run = [&](auto&& force_and_adjoint) {
    auto fixed = nb::FixedPointState::from(init, s.cfg.box);
    nb::FixedPointRecord record;  // reverse mode: only the first and last digests
    nb::integrate_fixed_point<T>(s.cosmo, a, fixed, force, {}, {}, &record);
    CHECK(record.has_digests);
    std::vector<std::array<T, 3>> xb(init.x.size(), {T(1), T(0), T(0)}), pb(init.x.size());
    nb::integrate_fixed_point_adjoint<T>(s.cosmo, a, fixed, force, force_and_adjoint, xb, pb, {},
                                         &record);
    return fixed;
  };
  const auto restored = run(exact);
  CHECK(restored.digest() == nb::FixedPointState::from(init, s.cfg.box).digest());
  CHECK_THROWS_AS(run(perturbed), diffpm::ReversibilityError);
  calls = 0;
  CHECK_THROWS_WITH(run(perturbed), Catch::Contains("did not rebuild the run's first state"));
}

TEST_CASE("the fixed-point adjoint refuses a state that is not the run's final state",
          "[nbody][reversible][errors]") {
  const Setup s(8, 0.3, 9);
  const auto init = s.template initial<double>();
  nb::PmForce<double> pm(diffpm::mesh::Grid(s.cfg.mesh, s.cfg.box), {}, init.x.size());
  auto force = [&](const auto& x, auto& F) { pm(x, 0.3, F); };
  auto force_and_adjoint = [&](const auto& x, const auto& F_bar, auto& F, auto& x_bar) {
    return pm.value_and_adjoint(x, 0.3, F_bar, F, x_bar);
  };
  for (auto mode : {nb::AdjointMode::reverse, nb::AdjointMode::store}) {
    auto fixed = nb::FixedPointState::from(init, s.cfg.box);
    nb::FixedPointRecord record;
    record.mode = mode;
    nb::integrate_fixed_point<double>(s.cosmo, {0.3, 0.5, 1.0}, fixed, force, {}, {}, &record);
    fixed.p[3][2] += 1;  // one quantum: another state
    std::vector<std::array<double, 3>> xb(init.x.size()), pb(init.x.size());
    CHECK_THROWS_WITH(
        nb::integrate_fixed_point_adjoint<double>(s.cosmo, {0.3, 0.5, 1.0}, fixed, force,
                                                  force_and_adjoint, xb, pb, {}, &record),
        Catch::Contains("not the final state of the recorded run"));
  }
}

TEST_CASE("the fixed-point state's digest sees every bit and ignores the thread count",
          "[nbody][reversible]") {
  const Setup s(8, 0.3, 9);
  const auto fixed = nb::FixedPointState::from(s.template initial<double>(), s.cfg.box);
  const std::uint64_t d0 = fixed.digest();
  auto other = fixed;
  other.x[100][0] ^= 1u;  // the lowest bit of one coordinate
  CHECK(other.digest() != d0);
  other = fixed;
  std::swap(other.p[1], other.p[2]);  // the same values held by other particles
  CHECK(other.digest() != d0);
  other = fixed;
  other.momentum_quantum = std::nextafter(other.momentum_quantum, 1.0);
  CHECK(other.digest() != d0);
#if defined(_OPENMP)
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::uint64_t d1 = fixed.digest();
  omp_set_num_threads(threads);
  CHECK(d1 == d0);
#else
  WARN("OpenMP is off: the digest's thread-count independence is not tested");
#endif
}
