// LPT: Zel'dovich displacement of a plane wave, the 2LPT source and displacement of two
// perpendicular waves against hand-derived values, momenta and growth factors in EdS, adjoints
// (dot-product tests, also chained with the linear field), and bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <limits>
#include <type_traits>
#include <vector>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/ic/linear_field.hpp"
#include "diffpm/ic/white_noise.hpp"
#include "diffpm/particles/lpt.hpp"

using diffpm::FftPlan;
using diffpm::mesh::ComplexField;
using diffpm::mesh::Grid;
using diffpm::mesh::RealField;
using diffpm::particles::Lpt;
using diffpm::particles::LptFactors;

namespace {

template <class T>
using Vecs = std::vector<std::array<T, 3>>;

/// delta(x) on the mesh from a function of position, and its spectrum.
template <class T, class F>
ComplexField<T> spectrum_of(const Grid& g, const FftPlan<T>& plan, const F& f) {
  RealField<T> r(g);
  for (int i = 0; i < g.n[0]; ++i)
    for (int j = 0; j < g.n[1]; ++j)
      for (int k = 0; k < g.n[2]; ++k)
        r(i, j, k) = T(f(i * g.cell_size(0), j * g.cell_size(1), k * g.cell_size(2)));
  ComplexField<T> c(g);
  plan.forward(r, c);
  return c;
}

template <class T>
double dot(const Vecs<T>& a, const Vecs<T>& b) {
  double s = 0;
  for (std::size_t p = 0; p < a.size(); ++p)
    for (int d = 0; d < 3; ++d) s += double(a[p][d]) * b[p][d];
  return s;
}

template <class T>
Vecs<T> random_vectors(std::size_t n, std::uint64_t seed) {
  Vecs<T> v(n);
  for (std::size_t p = 0; p < n; ++p)
    for (int d = 0; d < 3; ++d) v[p][d] = T(diffpm::ic::white_noise_value(seed, 3 * p + d));
  return v;
}

/// A random Gaussian field with a red power law, so that displacements are O(1) Mpc/h.
template <class T>
ComplexField<T> random_delta(const Grid& g, const FftPlan<T>& plan, std::uint64_t seed) {
  const auto c = diffpm::ic::mode_amplitudes(g, [](double k) { return 200.0 * std::pow(k, -1.0); });
  ComplexField<T> d;
  diffpm::ic::linear_field(plan, diffpm::ic::white_noise<T>(g, seed), c, d);
  return d;
}

const double two_pi = 6.283185307179586;

}  // namespace

TEMPLATE_TEST_CASE("1LPT of a plane wave is the analytic Zel'dovich displacement", "[ic][lpt]",
                   float, double) {
  // delta = A cos(k.x) gives Psi1 = -(A/k^2) k sin(k.x) (div Psi1 = -delta). Errors are FFT
  // round-off, a few eps log2(N) of |Psi|max: ~1e-15 (double), ~1e-7 (float, measured 9e-8).
  const double tol = std::is_same<TestType, float>::value ? 1e-6 : 1e-13;
  const Grid grid({16, 12, 8}, {100.0, 80.0, 60.0});
  const std::array<int, 3> m = {2, -1, 1};
  const std::array<double, 3> k = {two_pi * m[0] / 100.0, two_pi * m[1] / 80.0,
                                   two_pi * m[2] / 60.0};
  const double k2 = k[0] * k[0] + k[1] * k[1] + k[2] * k[2], A = 0.3;
  const double psi_max = A / std::sqrt(k2);

  for (std::array<int, 3> lattice : {std::array<int, 3>{0, 0, 0}, std::array<int, 3>{8, 6, 4}}) {
    Lpt<TestType> lpt(grid, lattice);
    const auto delta = spectrum_of<TestType>(grid, lpt.plan(), [&](double x, double y, double z) {
      return A * std::cos(k[0] * x + k[1] * y + k[2] * z);
    });
    lpt.compute(delta, 1);
    const LptFactors<double> f{0.7, 0.0, 1.3, 0.0};
    Vecs<TestType> s, p, x, p2;
    lpt.displacements(f, s, p);
    lpt.particles(f, x, p2);
    REQUIRE(s.size() == lpt.num_particles());
    double err = 0, err_p = 0, err_x = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto q = lpt.lattice_position(i);
      const double phase = k[0] * q[0] + k[1] * q[1] + k[2] * q[2];
      for (int d = 0; d < 3; ++d) {
        const double psi = -A / k2 * k[d] * std::sin(phase);
        err = std::max(err, std::abs(s[i][d] - f.D1 * psi));
        err_p = std::max(err_p, std::abs(p[i][d] - f.p1 * psi));
        // positions: q + s wrapped into [0, L)
        const double L = grid.length[d];
        REQUIRE(x[i][d] >= 0);
        REQUIRE(x[i][d] < L);
        double dx = x[i][d] - (q[d] + f.D1 * psi);
        dx -= L * std::round(dx / L);
        err_x = std::max(err_x, std::abs(dx));
      }
    }
    INFO("lattice " << lattice[0]);
    CHECK(err < tol * f.D1 * psi_max);
    CHECK(err_p < tol * f.p1 * psi_max);
    // x is rounded to T at |x| up to L = 100: absolute error eps L.
    CHECK(err_x < (std::is_same<TestType, float>::value ? 2e-5 : 1e-13) * 100.0);
  }
}

TEMPLATE_TEST_CASE("2LPT: no source for one plane wave, analytic Psi2 for two perpendicular waves",
                   "[ic][lpt]", float, double) {
  // Same FFT round-off argument as for 1LPT, relative to the largest value of each field
  // (products of two transformed fields, then two more FFTs: measured 1.5e-7 in float).
  const double tol = std::is_same<TestType, float>::value ? 1e-6 : 1e-13;
  const Grid grid({16, 12, 8}, {100.0, 80.0, 60.0});
  Lpt<TestType> lpt(grid);
  const double A = 0.4, B = -0.25;
  const double k1 = two_pi * 3 / 100.0, k2 = two_pi * 2 / 80.0;

  SECTION("one plane wave: S = 0, Psi2 = 0 (Zel'dovich is exact in 1D)") {
    const double kx = two_pi * 2 / 100.0, ky = two_pi * 1 / 80.0, kz = two_pi * 1 / 60.0;
    lpt.compute(spectrum_of<TestType>(grid, lpt.plan(),
                                      [&](double x, double y, double z) {
                                        return A * std::cos(kx * x + ky * y + kz * z);
                                      }),
                2);
    // The source is a difference of products of O(A) second derivatives that cancel exactly.
    double s_max = 0, psi_max = 0;
    for (TestType v : lpt.source().data) s_max = std::max(s_max, std::abs(double(v)));
    for (int d = 0; d < 3; ++d)
      for (TestType v : lpt.psi2(d).data) psi_max = std::max(psi_max, std::abs(double(v)));
    CHECK(s_max < tol * A * A);
    CHECK(psi_max < tol * A * A / (kx * kx));
  }

  SECTION("delta = A cos(k1 x) + B cos(k2 y)") {
    // Hand derivation: lap phi1 = delta gives phi1 = -A cos(k1 x)/k1^2 - B cos(k2 y)/k2^2,
    // H = Psi1_{i,j} = -phi1_{,ij}: H_xx = -A cos(k1 x), H_yy = -B cos(k2 y), the rest 0, so
    // S = H_xx H_yy = A B cos(k1 x) cos(k2 y). lap phi2 = S gives
    // phi2 = -A B cos(k1 x) cos(k2 y) / (k1^2 + k2^2) and Psi2 = grad phi2 =
    // A B / (k1^2 + k2^2) (k1 sin(k1 x) cos(k2 y), k2 cos(k1 x) sin(k2 y), 0).
    lpt.compute(spectrum_of<TestType>(grid, lpt.plan(),
                                      [&](double x, double y, double) {
                                        return A * std::cos(k1 * x) + B * std::cos(k2 * y);
                                      }),
                2);
    const double ksum = k1 * k1 + k2 * k2;
    double err_s = 0, err_psi = 0;
    for (int i = 0; i < grid.n[0]; ++i)
      for (int j = 0; j < grid.n[1]; ++j)
        for (int k = 0; k < grid.n[2]; ++k) {
          const double x = i * grid.cell_size(0), y = j * grid.cell_size(1);
          const double s = A * B * std::cos(k1 * x) * std::cos(k2 * y);
          const double psi[3] = {A * B / ksum * k1 * std::sin(k1 * x) * std::cos(k2 * y),
                                 A * B / ksum * k2 * std::cos(k1 * x) * std::sin(k2 * y), 0.0};
          err_s = std::max(err_s, std::abs(lpt.source()(i, j, k) - s));
          for (int d = 0; d < 3; ++d)
            err_psi = std::max(err_psi, std::abs(lpt.psi2(d)(i, j, k) - psi[d]));
        }
    CHECK(err_s < tol * std::abs(A * B));
    CHECK(err_psi < tol * std::abs(A * B) * std::max(k1, k2) / ksum);

    // Particles: x - q = D1 Psi1 + D2 Psi2, p = p1 Psi1 + p2 Psi2 at each lattice point.
    const LptFactors<double> f{0.5, -0.1, 0.8, -0.3};
    Vecs<TestType> s, p;
    lpt.displacements(f, s, p);
    double err = 0;
    for (std::size_t n = 0; n < s.size(); ++n) {
      const auto q = lpt.lattice_position(n);
      const double psi1[3] = {-A / k1 * std::sin(k1 * q[0]), -B / k2 * std::sin(k2 * q[1]), 0.0};
      const double psi2[3] = {A * B / ksum * k1 * std::sin(k1 * q[0]) * std::cos(k2 * q[1]),
                              A * B / ksum * k2 * std::cos(k1 * q[0]) * std::sin(k2 * q[1]), 0.0};
      for (int d = 0; d < 3; ++d) {
        err = std::max(err, std::abs(s[n][d] - (f.D1 * psi1[d] + f.D2 * psi2[d])));
        err = std::max(err, std::abs(p[n][d] - (f.p1 * psi1[d] + f.p2 * psi2[d])));
      }
    }
    CHECK(err < tol * (A / k1));
  }
}

TEST_CASE("LPT factors: momenta p = a^2 E f D and D2 = -3/7 D1^2 in Einstein-de Sitter",
          "[ic][lpt]") {
  diffpm::cosmology::Parameters<double> eds;
  eds.Omega_c = 0.95;
  eds.Omega_b = 0.05;
  eds.radiation = false;
  const diffpm::cosmology::Cosmology<double> cosmo(eds);
  for (double a : {0.01, 0.02, 0.1, 0.5}) {
    // EdS: D1 = a, E = a^-3/2, f1 = 1, D2 = -3/7 a^2, f2 = 2: p1 = a^{3/2},
    // p2 = -6/7 a^{5/2}. The growth ODE's RK4 truncation is ~2e-8 here (test_growth.cpp
    // holds 5e-8), and the products add at most a few of those.
    const auto f = diffpm::particles::lpt_factors(cosmo, a, 2);
    CHECK(f.D1 == Approx(a).epsilon(1e-7));
    CHECK(f.D2 == Approx(-3.0 / 7.0 * a * a).epsilon(1e-7));
    CHECK(f.p1 == Approx(std::pow(a, 1.5)).epsilon(1e-7));
    CHECK(f.p2 == Approx(-6.0 / 7.0 * std::pow(a, 2.5)).epsilon(1e-7));
    const auto f1 = diffpm::particles::lpt_factors(cosmo, a, 1);
    CHECK(f1.D2 == 0.0);
    CHECK(f1.p2 == 0.0);
  }
  // Planck-like: p1 = a^2 E f1 D1 from the separate growth-rate and E(a) functions.
  const diffpm::cosmology::Cosmology<double> planck{diffpm::cosmology::Parameters<double>{}};
  const double a = 0.02;
  const auto f = diffpm::particles::lpt_factors(planck, a, 2);
  const auto& g = planck.growth();
  const double a2E = a * a * planck.background().E(a);
  CHECK(f.p1 == Approx(a2E * g.growth_rate(a) * g.growth_factor(a)).epsilon(1e-12));
  CHECK(f.p2 == Approx(a2E * g.growth_rate_2(a) * g.growth_factor_2(a)).epsilon(1e-12));
  CHECK_THROWS_AS(diffpm::particles::lpt_factors(planck, a, 3), diffpm::InvalidArgument);
}

TEMPLATE_TEST_CASE("LPT adjoint: dot-product tests for delta_L and the four factors",
                   "[ic][lpt][adjoint]", float, double) {
  // Double: round-off of sums over ~1e4 terms after a few FFTs, ~1e-14; 1e-10 as asked.
  // Float: each field carries ~1e-7 relative FFT round-off, and the 2LPT directional
  // derivative is a difference of O(1) fields (f(d+v) - f(d-v))/2 (measured <= 1.2e-7): 1e-5.
  const double tol = std::is_same<TestType, float>::value ? 1e-5 : 1e-10;
  const Grid grid({12, 10, 8}, {60.0, 50.0, 40.0});
  const LptFactors<double> f{0.8, -0.25, 1.1, -0.6};
  for (int order : {1, 2})
    for (std::array<int, 3> lattice : {std::array<int, 3>{0, 0, 0}, std::array<int, 3>{6, 5, 4}}) {
      INFO("order " << order << " lattice " << lattice[0]);
      Lpt<TestType> lpt(grid, lattice);
      const auto delta = random_delta<TestType>(grid, lpt.plan(), 11u);
      const auto v = random_delta<TestType>(grid, lpt.plan(), 12u);
      const std::size_t np = lpt.num_particles();
      const auto xbar = random_vectors<TestType>(np, 13u);
      const auto pbar = random_vectors<TestType>(np, 14u);

      // JVP: the map is a polynomial of degree <= 2 in delta, so the central difference with
      // h = 1 is exact: J v = (F(delta + v) - F(delta - v)) / 2.
      ComplexField<TestType> dp = delta, dm = delta;
      for (std::size_t n = 0; n < dp.size(); ++n) {
        dp.data[n] += v.data[n];
        dm.data[n] -= v.data[n];
      }
      Vecs<TestType> sp, pp, sm, pm;
      lpt.compute(dp, order);
      lpt.displacements(f, sp, pp);
      lpt.compute(dm, order);
      lpt.displacements(f, sm, pm);
      double lhs = 0;
      for (std::size_t p = 0; p < np; ++p)
        for (int d = 0; d < 3; ++d)
          lhs += double(xbar[p][d]) * 0.5 * (double(sp[p][d]) - sm[p][d]) +
                 double(pbar[p][d]) * 0.5 * (double(pp[p][d]) - pm[p][d]);

      lpt.compute(delta, order);
      ComplexField<TestType> delta_bar;
      LptFactors<double> fbar;
      lpt.adjoint(delta, xbar, pbar, delta_bar, fbar, f);
      CHECK(lhs == Approx(diffpm::ic::spectrum_dot(delta_bar, v)).epsilon(tol));

      // Factors: (x, p) are linear in (D1, D2, p1, p2).
      const LptFactors<double> df{0.3, -0.7, 0.5, 0.9};
      Vecs<TestType> s, p;
      lpt.displacements(df, s, p);
      const double rhs = fbar.D1 * df.D1 + fbar.D2 * df.D2 + fbar.p1 * df.p1 + fbar.p2 * df.p2;
      CHECK(dot(xbar, s) + dot(pbar, p) == Approx(rhs).epsilon(tol));
      if (order == 1) {
        CHECK(fbar.D2 == 0.0);
        CHECK(fbar.p2 == 0.0);
      }
    }
}

TEMPLATE_TEST_CASE("LPT adjoint: several evaluations summed in one pass", "[ic][lpt][adjoint]",
                   float, double) {
  // L = <xbar1, x(f1)> + <xbar2, x(f2)> + <pbar1, p(f1)>: accumulating both evaluations gives
  // the sum of two separate adjoints (same arithmetic up to the order of the sums: float 1e-5
  // and double 1e-12, as in the dot-product test above) and each evaluation's factors_bar.
  const double tol = std::is_same<TestType, float>::value ? 1e-5 : 1e-12;
  const Grid grid({12, 10, 8}, {60.0, 50.0, 40.0});
  const LptFactors<double> f1{0.8, -0.25, 1.1, -0.6}, f2{0.3, -0.04, 0.2, -0.03};
  Lpt<TestType> lpt(grid);
  const auto delta = random_delta<TestType>(grid, lpt.plan(), 21u);
  const auto v = random_delta<TestType>(grid, lpt.plan(), 22u);
  const std::size_t np = lpt.num_particles();
  const auto x1 = random_vectors<TestType>(np, 23u), x2 = random_vectors<TestType>(np, 24u);
  const auto p1 = random_vectors<TestType>(np, 25u);
  const Vecs<TestType> zero(np, {TestType(0), TestType(0), TestType(0)});
  lpt.compute(delta, 2);
  ComplexField<TestType> bar1, bar2, both;
  LptFactors<double> g1, g2;
  lpt.adjoint(delta, x1, p1, bar1, g1, f1);
  lpt.adjoint(delta, x2, zero, bar2, g2, f2);
  lpt.adjoint_begin();
  const LptFactors<double> h1 = lpt.adjoint_accumulate(x1, p1, f1);
  const LptFactors<double> h2 = lpt.adjoint_accumulate(x2, zero, f2);
  lpt.adjoint_end(delta, both);
  CHECK(h1.D1 == g1.D1);
  CHECK(h1.p2 == g1.p2);
  CHECK(h2.D2 == g2.D2);
  const double separate = diffpm::ic::spectrum_dot(bar1, v) + diffpm::ic::spectrum_dot(bar2, v);
  CHECK(diffpm::ic::spectrum_dot(both, v) == Approx(separate).epsilon(tol));
  // Out of order: accumulate or end without begin.
  CHECK_THROWS_AS(lpt.adjoint_accumulate(x1, p1, f1), diffpm::InvalidArgument);
  CHECK_THROWS_AS(lpt.adjoint_end(delta, both), diffpm::InvalidArgument);
}

TEST_CASE("Noise -> delta_L -> 2LPT particles: chained adjoints (double)", "[ic][lpt][adjoint]") {
  // The spectrum-gradient convention lets lpt.adjoint feed linear_field_adjoint directly.
  const Grid grid({10, 12, 8}, {50.0, 60.0, 40.0});
  const auto c =
      diffpm::ic::mode_amplitudes(grid, [](double k) { return 300.0 * std::pow(k, -1.2); });
  Lpt<double> lpt(grid);
  const auto w = diffpm::ic::white_noise<double>(grid, 5u);
  const auto v = diffpm::ic::white_noise<double>(grid, 6u);
  const LptFactors<double> f{0.9, -0.3, 1.0, -0.5};
  auto run = [&](const RealField<double>& noise, Vecs<double>& s, Vecs<double>& p) {
    ComplexField<double> d;
    diffpm::ic::linear_field(lpt.plan(), noise, c, d);
    lpt.compute(d, 2);
    lpt.displacements(f, s, p);
    return d;
  };
  RealField<double> wp = w, wm = w;
  for (std::size_t n = 0; n < w.size(); ++n) {
    wp.data[n] += v.data[n];
    wm.data[n] -= v.data[n];
  }
  Vecs<double> sp, pp, sm, pm, s, p;
  run(wp, sp, pp);
  run(wm, sm, pm);
  const auto xbar = random_vectors<double>(lpt.num_particles(), 7u);
  const auto pbar = random_vectors<double>(lpt.num_particles(), 8u);
  double lhs = 0;
  for (std::size_t n = 0; n < sp.size(); ++n)
    for (int d = 0; d < 3; ++d)
      lhs += xbar[n][d] * 0.5 * (sp[n][d] - sm[n][d]) + pbar[n][d] * 0.5 * (pp[n][d] - pm[n][d]);
  const auto delta = run(w, s, p);
  ComplexField<double> delta_bar;
  LptFactors<double> fbar;
  lpt.adjoint(delta, xbar, pbar, delta_bar, fbar, f);
  RealField<double> w_bar;
  diffpm::ic::linear_field_adjoint(lpt.plan(), w, c, delta_bar, w_bar);
  double rhs = 0;
  for (std::size_t n = 0; n < w.size(); ++n) rhs += w_bar.data[n] * v.data[n];
  CHECK(lhs == Approx(rhs).epsilon(1e-10));
}

TEST_CASE("LPT rejects bad input", "[ic][lpt]") {
  using Catch::Contains;
  const Grid grid = Grid::cube(8, 40.0);
  CHECK_THROWS_WITH(Lpt<double>(grid, {3, 8, 8}), Contains("3 particles along x"));
  CHECK_THROWS_WITH(Lpt<double>(grid, {8, 8, -2}), Contains("-2 particles along z"));
  Lpt<double> lpt(grid);
  Vecs<double> s, p;
  CHECK_THROWS_AS(lpt.displacements(LptFactors<double>{}, s, p), diffpm::InvalidArgument);
  const ComplexField<double> other(Grid::cube(8, 50.0));
  CHECK_THROWS_WITH(lpt.compute(other, 1), Contains("delta_L is on a 8x8x8 mesh"));
  const ComplexField<double> delta(grid);
  CHECK_THROWS_WITH(lpt.compute(delta, 3), Contains("order = 3"));
  lpt.compute(delta, 1);
  ComplexField<double> bar;
  LptFactors<double> fbar;
  CHECK_THROWS_WITH(lpt.adjoint(delta, Vecs<double>(3), Vecs<double>(3), bar, fbar, {}),
                    Contains("for 512 particles"));
}

TEMPLATE_TEST_CASE("the LPT lattice offset translates every particle, wrapped", "[ic][lpt]", float,
                   double) {
  using T = TestType;
  const Grid grid({8, 6, 10}, {80.0, 60.0, 50.0});
  Lpt<T> lpt(grid, {4, 3, 5});
  RealField<T> noise(grid);
  for (std::size_t c = 0; c < noise.data.size(); ++c) noise.data[c] = T(std::sin(0.7 * double(c)));
  ComplexField<T> delta(grid);
  lpt.plan().forward(noise, delta);
  lpt.compute(delta, 2);
  const LptFactors<double> f{0.9, -0.2, 1.1, -0.3};
  // Half a cell of a force mesh twice as fine as the lattice's 20 x 20 x 10 Mpc/h spacing.
  const Grid force({8, 6, 10}, {80.0, 60.0, 50.0});
  const auto offset = diffpm::particles::kink_free_offset(force);
  CHECK(offset == std::array<double, 3>{5.0, 5.0, 2.5});
  Vecs<T> x0, p0, x1, p1;
  lpt.particles(f, x0, p0);
  lpt.particles(f, x1, p1, offset);
  CHECK(p0 == p1);  // momenta do not move
  double worst = 0.0;
  for (std::size_t i = 0; i < x0.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      const double L = grid.length[d];
      REQUIRE(x1[i][d] >= T(0));
      REQUIRE(x1[i][d] < T(L));
      double dx = double(x1[i][d]) - double(x0[i][d]) - offset[d];
      dx -= L * std::round(dx / L);
      worst = std::max(worst, std::abs(dx));
    }
  // Both are rounded to T once from the same double sum: a few ulps of L (80 Mpc/h).
  CHECK(worst < (sizeof(T) == 4 ? 2e-5 : 1e-13) * 80.0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(lpt.particles(f, x1, p1, {0.0, nan, 0.0}),
                    Catch::Contains("lattice offset 1 = nan"));
}

TEST_CASE("LPT writes particles into the caller's arrays, and checks them", "[ic][lpt]") {
  // The view overload writes the container overload's values, bit for bit, into struct-of-
  // arrays memory; a view of the wrong size or with a null component is refused.
  const Grid grid = Grid::cube(6, 30.0);
  Lpt<float> lpt(grid);
  RealField<float> noise(grid);
  for (std::size_t c = 0; c < noise.data.size(); ++c) noise.data[c] = float(std::cos(1.3 * c));
  ComplexField<float> delta(grid);
  lpt.plan().forward(noise, delta);
  lpt.compute(delta, 2);
  const LptFactors<double> f{0.5, -0.1, 0.7, -0.2};
  const std::array<double, 3> offset{1.25, 1.25, 1.25};
  Vecs<float> x, p;
  lpt.particles(f, x, p, offset);
  const std::size_t n = x.size();
  std::vector<float> xs[3], ps[3];
  for (int d = 0; d < 3; ++d) xs[d].assign(n, -1.0f), ps[d].assign(n, -1.0f);
  namespace dp = diffpm::particles;
  lpt.particles(f, dp::soa_view(xs[0].data(), xs[1].data(), xs[2].data(), n),
                dp::soa_view(ps[0].data(), ps[1].data(), ps[2].data(), n), offset);
  bool same = true;
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) same = same && xs[d][i] == x[i][d] && ps[d][i] == p[i][d];
  CHECK(same);
  CHECK_THROWS_WITH(lpt.particles(f, dp::soa_view(xs[0].data(), xs[1].data(), xs[2].data(), n - 1),
                                  dp::soa_view(ps[0].data(), ps[1].data(), ps[2].data(), n)),
                    Catch::Contains("215 positions for 216 particles"));
  CHECK_THROWS_WITH(lpt.particles(f, dp::soa_view(xs[0].data(), xs[1].data(), xs[2].data(), n),
                                  dp::soa_view(ps[0].data(), (float*)nullptr, ps[2].data(), n)),
                    Catch::Contains("null pointer for component 1"));
}
