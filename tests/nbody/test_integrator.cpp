// The kick-drift-kick integrator with a force that is exactly linear in the displacement, as
// the PM force is on the linear growing mode: FastPM factors must reproduce linear growth
// exactly for any number of steps; plain leapfrog converges to it at second order.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/nbody/integrator.hpp"
#include "diffpm/nbody/kick_drift.hpp"
#include "diffpm/nbody/reversible.hpp"
#include "diffpm/nbody/time_steps.hpp"

using namespace diffpm;
using nbody::Vec3;

namespace {
/// Linear theory: F = -grad phi with lap phi = 3/2 Omega_m delta and delta = -div Psi gives
/// F = 3/2 Omega_m (x - q) for x = q + D1 Psi (a potential displacement field).
struct LinearForce {
  double Om;
  std::vector<Vec3<double>> q;
  void operator()(const std::vector<Vec3<double>>& x, std::vector<Vec3<double>>& F) const {
    for (std::size_t i = 0; i < x.size(); ++i)
      for (int d = 0; d < 3; ++d) F[i][d] = 1.5 * Om * (x[i][d] - q[i][d]);
  }
};

nbody::ParticleState<double> growing_mode(const cosmology::Cosmology<double>& c,
                                          const nbody::FastPmFactors<double>& f, double a,
                                          const std::vector<Vec3<double>>& q,
                                          const std::vector<Vec3<double>>& psi) {
  nbody::ParticleState<double> s;
  for (std::size_t i = 0; i < q.size(); ++i) {
    Vec3<double> x, p;
    for (int d = 0; d < 3; ++d) {
      x[d] = q[i][d] + c.growth().growth_factor(a) * psi[i][d];
      p[d] = f.G_f(a) * psi[i][d];  // p = a^3 E dx/da = G_f Psi
    }
    s.x.push_back(x);
    s.p.push_back(p);
  }
  return s;
}
}  // namespace

TEST_CASE("FastPM stepping is exact for linear growth with 1, 2, 5 and 20 steps",
          "[nbody][integrator]") {
  cosmology::Parameters<double> p;
  const cosmology::Cosmology<double> c(p);
  const nbody::FastPmFactors<double> f(c);
  const std::vector<Vec3<double>> q = {{0, 0, 0}, {10, 20, 30}}, psi = {{1, -2, 0.5}, {0.3, 0, -4}};
  const LinearForce force{p.Omega_m(), q};
  for (int steps : {1, 2, 5, 20}) {
    auto s = growing_mode(c, f, 0.05, q, psi);
    nbody::integrate(c, nbody::time_steps(0.05, 1.0, steps), s, force);
    for (std::size_t i = 0; i < q.size(); ++i)
      for (int d = 0; d < 3; ++d) {
        // Only round-off (the factors telescope exactly): 1e-12 relative to the displacement.
        CHECK(s.x[i][d] - q[i][d] == Approx(psi[i][d]).epsilon(1e-12).margin(1e-13));
        CHECK(s.p[i][d] == Approx(f.G_f(1.0) * psi[i][d]).epsilon(1e-12).margin(1e-13));
      }
  }
}

TEST_CASE("Plain leapfrog converges to linear growth at second order", "[nbody][integrator]") {
  cosmology::Parameters<double> p;
  const cosmology::Cosmology<double> c(p);
  const nbody::FastPmFactors<double> f(c);
  const std::vector<Vec3<double>> q = {{0, 0, 0}}, psi = {{1, 1, 1}};
  const LinearForce force{p.Omega_m(), q};
  nbody::IntegratorOptions o;
  o.stepper = nbody::Stepper::leapfrog;
  double err[2];
  for (int r = 0; r < 2; ++r) {
    auto s = growing_mode(c, f, 0.1, q, psi);
    nbody::integrate(c, nbody::time_steps(0.1, 1.0, 20 << r), s, force, o);
    err[r] = std::abs(s.x[0][0] - q[0][0] - 1.0);
  }
  // Doubling the steps divides a second-order error by ~4.
  CHECK(err[0] > 1e-6);
  CHECK(err[0] / err[1] == Approx(4.0).epsilon(0.15));
}

TEST_CASE("Snapshots see positions drifted exactly to the requested scale factors",
          "[nbody][integrator]") {
  cosmology::Parameters<double> p;
  const cosmology::Cosmology<double> c(p);
  const nbody::FastPmFactors<double> f(c);
  const std::vector<Vec3<double>> q = {{5, 5, 5}}, psi = {{2, 0, -1}};
  const LinearForce force{p.Omega_m(), q};
  nbody::IntegratorOptions o;
  o.snapshots = {0.1, 0.33, 0.5, 0.71, 1.0};
  std::vector<double> seen;
  auto s = growing_mode(c, f, 0.1, q, psi);
  nbody::integrate<double>(
      c, nbody::time_steps(0.1, 1.0, 3), s, force, o,
      [&](double a, const std::vector<Vec3<double>>& x, const std::vector<Vec3<double>>&) {
        seen.push_back(a);
        // The FastPM drift is exact on the growing mode at any a.
        CHECK(x[0][0] - q[0][0] == Approx(c.growth().growth_factor(a) * psi[0][0]).epsilon(1e-12));
      });
  CHECK(seen == o.snapshots);
}

TEST_CASE("Bad time-stepping input throws InvalidArgument naming the value",
          "[nbody][integrator][errors]") {
  CHECK_THROWS_WITH(nbody::time_steps(0.0, 1.0, 10), Catch::Contains("a_start = 0"));
  CHECK_THROWS_WITH(nbody::time_steps(0.5, 0.4, 10), Catch::Contains("a_end = 0.4"));
  CHECK_THROWS_WITH(nbody::time_steps(0.1, 1.2, 10), Catch::Contains("a_end = 1.2"));
  CHECK_THROWS_WITH(nbody::time_steps(0.1, 1.0, 0), Catch::Contains("steps = 0"));
  const cosmology::Cosmology<double> c(cosmology::Parameters<double>{});
  nbody::ParticleState<double> s;
  s.x = {{0, 0, 0}};
  auto noop = [](const std::vector<Vec3<double>>&, std::vector<Vec3<double>>&) {};
  CHECK_THROWS_WITH(nbody::integrate(c, {0.5, 0.4}, s, noop), Catch::Contains("must increase"));
  s.p = {{0, 0, 0}};
  nbody::IntegratorOptions o;
  o.snapshots = {0.05};
  CHECK_THROWS_WITH(
      nbody::integrate<double>(c, {0.1, 0.5}, s, noop, o, [](double, const auto&, const auto&) {}),
      Catch::Contains("a = 0.05"));
}

TEMPLATE_TEST_CASE("Kick and drift adjoints pass the dot-product test",
                   "[nbody][integrator][adjoint]", float, double) {
  // y' = y + c v is linear in (y, v, c) jointly only at fixed c; its Jacobian applied to a
  // tangent (dy, dv, dc) is dy + c dv + dc v, and the adjoint must satisfy
  // <J t, w> = <dy, w> + <dv, J_v^T w> + dc c_bar. Exact in double up to round-off (1e-12);
  // float sums of 3000 products of O(1) numbers carry ~1e-6 relative.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const std::size_t n = 1000;
  std::vector<Vec3<TestType>> v(n), dv(n), w(n);
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d)
      v[i][d] = TestType(u(rng)), dv[i][d] = TestType(u(rng)), w[i][d] = TestType(u(rng));
  const double c = 0.37, dc = -0.81;
  // J t for dy = 0: c dv + dc v.
  double lhs = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d)
      lhs += (c * double(dv[i][d]) + dc * double(v[i][d])) * double(w[i][d]);
  std::vector<Vec3<TestType>> v_bar;
  const double c_bar = nbody::axpy_adjoint(w, c, v, v_bar);
  double rhs = dc * c_bar;
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) rhs += double(dv[i][d]) * double(v_bar[i][d]);
  CHECK(rhs == Approx(lhs).epsilon(sizeof(TestType) == 4 ? 1e-5 : 1e-12));
  // And the forward update itself.
  auto y = w;
  nbody::axpy(y, c, v);
  CHECK(double(y[7][1]) == Approx(double(w[7][1]) + c * double(v[7][1])).epsilon(1e-6));
  CHECK_THROWS_AS(nbody::axpy(y, c, std::vector<Vec3<TestType>>(3)), InvalidArgument);
}

TEMPLATE_TEST_CASE("kick, drift and their adjoint on views are bitwise the container versions",
                   "[nbody][integrator][adjoint]", float, double) {
  // Struct-of-arrays views take the strided loops, containers the packed ones: the same
  // arithmetic in the same order, so the same bits.
  using T = TestType;
  namespace dp = diffpm::particles;
  const std::size_t n = 1001;
  std::vector<Vec3<T>> y(n), v(n), yb(n);
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) {
      y[i][d] = T(std::sin(0.3 * double(3 * i + d)));
      v[i][d] = T(std::cos(0.7 * double(3 * i + d)));
      yb[i][d] = T(std::sin(1.1 * double(3 * i + d) + 0.5));
    }
  std::vector<T> soa[3][3];  // [array][component]: y, v, v_bar
  for (int d = 0; d < 3; ++d)
    for (std::size_t i = 0; i < n; ++i) {
      soa[0][d].push_back(y[i][d]);
      soa[1][d].push_back(v[i][d]);
      soa[2][d].push_back(T(0));
    }
  auto view = [&](int a) {
    return dp::soa_view(soa[a][0].data(), soa[a][1].data(), soa[a][2].data(), n);
  };
  nbody::axpy(y, 0.37, v);
  nbody::axpy(view(0), 0.37, view(1));
  bool same = true;
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) same = same && soa[0][d][i] == y[i][d];
  CHECK(same);
  std::vector<Vec3<T>> v_bar;
  const double cb = nbody::axpy_adjoint(yb, 0.37, v, v_bar);
  const double cb_view = nbody::axpy_adjoint(dp::view(yb), 0.37, view(1), view(2));
  CHECK(cb == cb_view);  // a deterministic sum (core/deterministic_sum.hpp): any thread count
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) same = same && soa[2][d][i] == v_bar[i][d];
  CHECK(same);
}

TEMPLATE_TEST_CASE("integrate and the fixed-point state on the caller's memory: the container bits",
                   "[nbody][integrator][views]", float, double) {
  // A user's code keeps its particles in its own layout: struct-of-arrays here, with the
  // momenta in an array-of-structs record. integrate() on views of them must evolve them in
  // place to the bits of integrate() on diffpm's containers (the same operations in the same
  // order), and show its snapshots the same positions; FixedPointState::from views and its
  // positions()/momenta() into views must give the container versions' integers and values.
  using T = TestType;
  cosmology::Parameters<double> par;
  const cosmology::Cosmology<double> c(par);
  const std::size_t n = 257;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0.0, 100.0), v(-5.0, 5.0);
  nbody::ParticleState<T> s;
  for (std::size_t i = 0; i < n; ++i) {
    s.x.push_back({T(u(rng)), T(u(rng)), T(u(rng))});
    s.p.push_back({T(v(rng)), T(v(rng)), T(v(rng))});
  }
  std::vector<T> x0(n), x1(n), x2(n);
  struct Record {
    int id;
    T mass;
    T p[3];
  };
  std::vector<Record> rec(n);
  for (std::size_t i = 0; i < n; ++i) {
    x0[i] = s.x[i][0];
    x1[i] = s.x[i][1];
    x2[i] = s.x[i][2];
    rec[i] = {int(i), T(1), {s.p[i][0], s.p[i][1], s.p[i][2]}};
  }
  // A nonlinear force, so that every bit of x matters: F = -sin(x / 7).
  auto force_of = [](std::size_t i, const auto& x, int d) { return T(-std::sin(x(i, d) / T(7))); };
  auto force_vec = [&](const std::vector<Vec3<T>>& x, std::vector<Vec3<T>>& F) {
    const auto xv = particles::view(x);
    for (std::size_t i = 0; i < x.size(); ++i)
      for (int d = 0; d < 3; ++d) F[i][d] = force_of(i, xv, d);
  };
  auto force_view = [&](particles::Vec3View<T> x, particles::Vec3View<T> F) {
    for (std::size_t i = 0; i < x.size; ++i)
      for (int d = 0; d < 3; ++d) F(i, d) = force_of(i, x, d);
  };
  nbody::IntegratorOptions o;
  o.snapshots = {0.3, 0.75};
  const auto a = nbody::time_steps(0.1, 1.0, 6);
  std::vector<std::vector<Vec3<T>>> seen_vec, seen_view;
  nbody::integrate<T>(c, a, s, force_vec, o,
                      [&](double, const std::vector<Vec3<T>>& x, const std::vector<Vec3<T>>&) {
                        seen_vec.push_back(x);
                      });
  const auto xs = particles::soa_view(x0.data(), x1.data(), x2.data(), n);
  const auto ps = particles::aos_view(&rec[0].p[0], sizeof(Record), n);
  nbody::integrate<T>(c, a, xs, ps, force_view, o,
                      [&](double, particles::Vec3View<const T> x, particles::Vec3View<const T>) {
                        std::vector<Vec3<T>> copy(x.size);
                        for (std::size_t i = 0; i < x.size; ++i) copy[i] = x[i];
                        seen_view.push_back(copy);
                      });
  bool same = true;
  for (std::size_t i = 0; i < n; ++i) {
    same = same && x0[i] == s.x[i][0] && x1[i] == s.x[i][1] && x2[i] == s.x[i][2];
    for (int d = 0; d < 3; ++d) same = same && rec[i].p[d] == s.p[i][d];
    same = same && rec[i].id == int(i) && rec[i].mass == T(1);  // the rest of the record untouched
  }
  CHECK(same);
  CHECK(seen_view == seen_vec);
  CHECK(seen_vec.size() == 2);

  const auto f_vec = nbody::FixedPointState::from(s, {100.0, 100.0, 100.0});
  const auto f_view = nbody::FixedPointState::from(xs, ps, {100.0, 100.0, 100.0});
  CHECK(f_view.x == f_vec.x);
  CHECK(f_view.p == f_vec.p);
  CHECK(f_view.momentum_quantum == f_vec.momentum_quantum);
  std::vector<Vec3<T>> x_vec, p_vec;
  f_vec.positions(x_vec);
  f_vec.momenta(p_vec);
  f_view.positions(xs);
  f_view.momenta(ps);
  bool same_out = true;
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d)
      same_out = same_out && xs(i, d) == x_vec[i][d] && ps(i, d) == p_vec[i][d];
  CHECK(same_out);

  // Mismatched sizes name what they count.
  const auto short_view = particles::soa_view(x0.data(), x1.data(), x2.data(), n - 1);
  CHECK_THROWS_WITH(nbody::integrate<T>(c, a, short_view, ps, force_view),
                    Catch::Contains("256 positions but 257 momenta"));
  CHECK_THROWS_WITH(nbody::FixedPointState::from(short_view, ps, {100.0, 100.0, 100.0}),
                    Catch::Contains("256 positions but 257 momenta"));
  CHECK_THROWS_WITH(f_view.positions(short_view), Catch::Contains("256 positions for 257"));
}
