// The Gauss-Newton block mass (inference/gauss_newton_mass.hpp) against a dense matrix built by
// brute force (a naive DFT for the Fourier-diagonal block, Eigen for the coupling's scaling):
// M^-1 M = 1, K = r^T M^-1 r / 2, momenta r ~ N(0, M); its estimate from a linear model; and
// input validation.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "diffpm/inference/gauss_newton_mass.hpp"
#include "support/eigen_dense.hpp"

namespace {

namespace inf = diffpm::inference;
using Catch::Matchers::Contains;
using diffpm::InvalidArgument;
using diffpm::mesh::Grid;

constexpr double pi = 3.14159265358979323846;

// A small non-cubic mesh with an odd side (no Nyquist plane along y): 72 cells, 74 coordinates.
Grid test_grid() { return Grid({4, 3, 6}, {1.0, 1.0, 1.0}); }

std::vector<double> normals(std::mt19937_64& rng, std::size_t n, double scale) {
  std::normal_distribution<double> normal;
  std::vector<double> v(n);
  for (auto& x : v) x = scale * normal(rng);
  return v;
}

/// The field block A = 1 + F by brute force: F(k) = mean_p |DFT(g_p)(k)|^2 / N with a naive DFT
/// over the full spectrum, and A_xy = (1/N) sum_k A(k) e^{2 pi i k.(x - y)/n} (real: A(k) = A(-k)).
Eigen::MatrixXd dense_field_block(const Grid& grid,
                                  const std::vector<std::vector<double>>& probes) {
  const int n0 = grid.n[0], n1 = grid.n[1], n2 = grid.n[2];
  const int n = int(grid.size());
  auto phase = [&](int x, int k) {
    const int i = x / (n1 * n2), j = (x / n2) % n1, l = x % n2;
    const int ki = k / (n1 * n2), kj = (k / n2) % n1, kl = k % n2;
    return 2.0 * pi * (double(ki * i) / n0 + double(kj * j) / n1 + double(kl * l) / n2);
  };
  std::vector<double> a(n, 0.0);
  for (int k = 0; k < n; ++k) {
    for (const auto& g : probes) {
      std::complex<double> s = 0.0;
      for (int x = 0; x < n; ++x) s += g[x] * std::polar(1.0, -phase(x, k));
      a[k] += std::norm(s);
    }
    a[k] = 1.0 + a[k] / (double(n) * double(probes.size()));
  }
  Eigen::MatrixXd m(n, n);
  for (int x = 0; x < n; ++x)
    for (int y = 0; y < n; ++y) {
      double s = 0.0;
      for (int k = 0; k < n; ++k) s += a[k] * std::cos(phase(x, k) - phase(y, k));
      m(x, y) = s / n;
    }
  return m;
}

/// The dense mass [[C_sym, beta B^T], [beta B, A]] with beta from the generalised eigenproblem
/// D v = lambda (C_sym - 1) v, D = B^T A^-1 B (beta = 1 / sqrt(lambda_max) when that exceeds 1).
struct Dense {
  Eigen::MatrixXd m;
  double beta, lambda_max;
};
Dense dense_mass(const Eigen::MatrixXd& a, const std::array<std::vector<double>, 2>& b,
                 const std::array<std::array<double, 2>, 2>& c) {
  const Eigen::Index n = a.rows();
  Eigen::MatrixXd bm(n, 2);
  for (int k = 0; k < 2; ++k)
    for (Eigen::Index i = 0; i < n; ++i) bm(i, k) = b[k][std::size_t(i)];
  Eigen::Matrix2d cs;
  cs << c[0][0], 0.5 * (c[0][1] + c[1][0]), 0.5 * (c[0][1] + c[1][0]), c[1][1];
  const Eigen::MatrixXd d = bm.transpose() * a.ldlt().solve(bm);
  const Eigen::MatrixXd g = cs - Eigen::Matrix2d::Identity();
  const double lmax =
      Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd>(d, g).eigenvalues().maxCoeff();
  const double beta = lmax > 1.0 ? 1.0 / std::sqrt(lmax) : 1.0;
  Eigen::MatrixXd m(n + 2, n + 2);
  m.topLeftCorner(2, 2) = cs;
  m.bottomLeftCorner(n, 2) = beta * bm;
  m.topRightCorner(2, n) = beta * bm.transpose();
  m.bottomRightCorner(n, n) = a;
  return {m, beta, lmax};
}

std::vector<double> column(const Eigen::MatrixXd& m, Eigen::Index j) {
  return std::vector<double>(m.col(j).data(), m.col(j).data() + m.rows());
}

/// A mass with random probes and coupling of the given strength, and its dense counterpart.
struct Case {
  inf::GaussNewtonMass mass;
  Dense dense;
};
Case make_case(double coupling, std::uint64_t seed) {
  const Grid grid = test_grid();
  std::mt19937_64 rng(seed);
  std::vector<std::vector<double>> probes;
  for (int p = 0; p < 3; ++p) probes.push_back(normals(rng, grid.size(), 3.0));
  const std::array<std::vector<double>, 2> b = {normals(rng, grid.size(), coupling),
                                                normals(rng, grid.size(), coupling)};
  // C = 1 + G, G positive definite; slightly asymmetric, as a finite-difference C can be.
  const std::array<std::array<double, 2>, 2> c = {{{5.0, 1.501}, {1.499, 3.0}}};
  Case k{inf::GaussNewtonMass(grid, 1), dense_mass(dense_field_block(grid, probes), b, c)};
  k.mass.set_field_fisher(probes);
  k.mass.set_coupling(b, c);
  return k;
}

}  // namespace

TEST_CASE("Gauss-Newton mass: M^-1 M = 1 against a brute-force dense M",
          "[inference][gauss_newton_mass]") {
  // Weak coupling (beta = 1: the estimates are consistent) and strong coupling (the field's
  // modes claim more information about u than C holds, so B is scaled down).
  for (const double coupling : {0.05, 3.0}) {
    const Case k = make_case(coupling, 5);
    const Eigen::MatrixXd& m = k.dense.m;
    INFO("coupling " << coupling << ": lambda_max " << k.dense.lambda_max << ", beta "
                     << k.dense.beta);
    if (coupling < 1.0) {
      REQUIRE(k.dense.lambda_max < 1.0);
      CHECK(k.mass.coupling_scale() == 1.0);
    } else {
      REQUIRE(k.dense.lambda_max > 1.0);
      CHECK(k.mass.coupling_scale() == Approx(k.dense.beta).epsilon(1e-12));
    }
    REQUIRE(k.mass.dimension() == std::size_t(m.rows()));
    // Each column of M through the mass's M^-1 gives the unit vector. Tolerance: M's condition
    // number (~1e2 here) times the FFTs' round-off (~1e-15): 1e-11 leaves a decade.
    double worst = 0.0;
    std::vector<double> v;
    for (Eigen::Index j = 0; j < m.cols(); ++j) {
      k.mass.velocity(column(m, j), v);
      for (Eigen::Index i = 0; i < m.rows(); ++i)
        worst = std::max(worst, std::fabs(v[std::size_t(i)] - (i == j ? 1.0 : 0.0)));
    }
    INFO("max |M^-1 M - 1| = " << worst);
    CHECK(worst < 1e-11);
    // K = r^T M^-1 r / 2 against the dense solve.
    std::mt19937_64 rng(9);
    const Eigen::LDLT<Eigen::MatrixXd> ldlt(m);
    for (int t = 0; t < 5; ++t) {
      const std::vector<double> r = normals(rng, std::size_t(m.rows()), 2.0);
      const Eigen::Map<const Eigen::VectorXd> rv(r.data(), m.rows());
      CHECK(k.mass.kinetic(r) == Approx(0.5 * rv.dot(ldlt.solve(rv))).epsilon(1e-12));
    }
    // The marginal scale of u_k is sqrt((M^-1)_kk).
    const Eigen::MatrixXd minv = ldlt.solve(Eigen::MatrixXd::Identity(m.rows(), m.cols()));
    CHECK(k.mass.parameter_scale(0) == Approx(std::sqrt(minv(0, 0))).epsilon(1e-12));
    CHECK(k.mass.parameter_scale(1) == Approx(std::sqrt(minv(1, 1))).epsilon(1e-12));
  }
}

TEST_CASE("Gauss-Newton mass: momenta are drawn from N(0, M)", "[inference][gauss_newton_mass]") {
  const Case k = make_case(3.0, 5);  // the scaled coupling: every block of M is non-trivial
  const Eigen::MatrixXd& m = k.dense.m;
  const Eigen::Index dim = m.rows();
  const int n = 20000;
  std::mt19937_64 rng(2024);
  Eigen::MatrixXd s = Eigen::MatrixXd::Zero(dim, dim);
  std::vector<double> r;
  double two_k = 0.0;
  for (int t = 0; t < n; ++t) {
    k.mass.draw(rng, r);
    REQUIRE(r.size() == std::size_t(dim));
    const Eigen::Map<const Eigen::VectorXd> rv(r.data(), dim);
    s.selfadjointView<Eigen::Lower>().rankUpdate(rv);
    two_k += 2.0 * k.mass.kinetic(r);
  }
  s = s.selfadjointView<Eigen::Lower>();
  s /= double(n);
  // Each entry of the sample covariance (about the known mean 0) has variance
  // (M_ii M_jj + M_ij^2) / n for Gaussian r. All 2775 entries within 5 standard deviations: a
  // false alarm anywhere has probability ~2e-3 over seeds (this seed is fixed); a wrong block
  // (a missing coupling, A^1/2 for A) is off by far more.
  double worst = 0.0;
  for (Eigen::Index i = 0; i < dim; ++i)
    for (Eigen::Index j = 0; j <= i; ++j) {
      const double sd = std::sqrt((m(i, i) * m(j, j) + m(i, j) * m(i, j)) / n);
      worst = std::max(worst, std::fabs(s(i, j) - m(i, j)) / sd);
    }
  INFO("largest deviation of the sample covariance: " << worst << " standard deviations");
  CHECK(worst < 5.0);
  // r^T M^-1 r ~ chi^2 with dim degrees of freedom: mean dim, standard error sqrt(2 dim / n)
  // (0.086 here); within 5 of them.
  const double mean_2k = two_k / n;
  INFO("mean r^T M^-1 r = " << mean_2k << ", dimension " << dim);
  CHECK(std::fabs(mean_2k - double(dim)) < 5.0 * std::sqrt(2.0 * double(dim) / n));
}

TEST_CASE("Gauss-Newton mass is the identity until it is set", "[inference][gauss_newton_mass]") {
  const inf::GaussNewtonMass mass(test_grid(), 1);
  CHECK(mass.dimension() == 74);
  CHECK(mass.field_size() == 72);
  std::mt19937_64 rng(3);
  const std::vector<double> r = normals(rng, 74, 1.0);
  std::vector<double> v;
  mass.velocity(r, v);
  for (std::size_t i = 0; i < r.size(); ++i) CHECK(v[i] == Approx(r[i]).margin(1e-14));
  CHECK(mass.parameter_scale(0) == 1.0);
  CHECK(mass.coupling_scale() == 1.0);
  CHECK(mass.largest_field_mass() == 1.0);
}

TEST_CASE("estimate_gauss_newton_mass builds the mass of a linear model",
          "[inference][gauss_newton_mass]") {
  // m(u, w) = m0 + J_u u + J_w w: central differences are exact (to round-off), so the estimate
  // must equal the mass set by hand from J_u, J_w and the same probe draws.
  const Grid grid = test_grid();
  const std::size_t nf = grid.size(), nd = 10;
  const double sigma = 0.5;
  const int probes = 4;
  std::mt19937_64 setup(11);
  const Eigen::MatrixXd ju = Eigen::MatrixXd::NullaryExpr(
      Eigen::Index(nd), 2, [&] { return std::normal_distribution<double>(0.0, 2.0)(setup); });
  const Eigen::MatrixXd jw = Eigen::MatrixXd::NullaryExpr(Eigen::Index(nd), Eigen::Index(nf), [&] {
    return std::normal_distribution<double>()(setup);
  });
  const Eigen::VectorXd m0 = Eigen::VectorXd::Constant(Eigen::Index(nd), 0.3);
  int predictions = 0, pullbacks = 0;
  inf::GaussNewtonModel model;
  model.predict = [&](const std::array<double, 2>& u, const std::vector<double>& w) {
    ++predictions;
    const Eigen::VectorXd out = m0 + ju * Eigen::Vector2d(u[0], u[1]) +
                                jw * Eigen::Map<const Eigen::VectorXd>(w.data(), Eigen::Index(nf));
    return std::vector<double>(out.data(), out.data() + out.size());
  };
  model.pullback = [&](const std::array<double, 2>&, const std::vector<double>&,
                       const std::vector<double>& y) {
    ++pullbacks;
    const Eigen::VectorXd g =
        jw.transpose() * Eigen::Map<const Eigen::VectorXd>(y.data(), Eigen::Index(nd));
    return std::vector<double>(g.data(), g.data() + g.size());
  };
  const std::vector<double> q = normals(setup, nf + 2, 1.0);

  inf::GaussNewtonMass estimated(grid, 1), by_hand(grid, 1);
  std::mt19937_64 rng(77), rng_hand(77);
  inf::estimate_gauss_newton_mass(estimated, model, q, sigma, probes, 0.01, rng);
  CHECK(predictions == 4);
  CHECK(pullbacks == probes + 2);

  std::normal_distribution<double> normal;
  std::vector<std::vector<double>> g;
  for (int p = 0; p < probes; ++p) {
    Eigen::VectorXd z(nd);
    for (auto& x : z) x = normal(rng_hand) / sigma;
    const Eigen::VectorXd gp = jw.transpose() * z;
    g.emplace_back(gp.data(), gp.data() + gp.size());
  }
  by_hand.set_field_fisher(g);
  const Eigen::Matrix2d c = Eigen::Matrix2d::Identity() + ju.transpose() * ju / (sigma * sigma);
  const Eigen::MatrixXd b = jw.transpose() * ju / (sigma * sigma);
  by_hand.set_coupling({column(b, 0), column(b, 1)}, {{{c(0, 0), c(0, 1)}, {c(1, 0), c(1, 1)}}});
  CHECK(rng() == rng_hand());  // the same number of draws

  CHECK(estimated.coupling_scale() == Approx(by_hand.coupling_scale()).epsilon(1e-9));
  std::vector<double> ve, vh;
  for (int t = 0; t < 3; ++t) {
    const std::vector<double> r = normals(setup, nf + 2, 1.0);
    estimated.velocity(r, ve);
    by_hand.velocity(r, vh);
    double scale = 0.0, diff = 0.0;
    for (std::size_t i = 0; i < r.size(); ++i) {
      scale = std::max(scale, std::fabs(vh[i]));
      diff = std::max(diff, std::fabs(ve[i] - vh[i]));
    }
    // Central differences of a linear model: round-off / du ~ 1e-14 relative.
    CHECK(diff < 1e-9 * scale);
  }
}

TEST_CASE("Gauss-Newton mass rejects invalid input with InvalidArgument",
          "[inference][gauss_newton_mass][errors]") {
  const Grid grid = test_grid();
  inf::GaussNewtonMass mass(grid, 1);
  std::mt19937_64 rng(1);
  CHECK_THROWS_WITH(mass.set_field_fisher({}), Contains("probes = 0"));
  CHECK_THROWS_WITH(mass.set_field_fisher({std::vector<double>(5)}),
                    Contains("probe gradient has 5 entries, expected 72"));
  const std::array<std::array<double, 2>, 2> c = {{{2.0, 0.0}, {0.0, 2.0}}};
  CHECK_THROWS_WITH(mass.set_coupling({std::vector<double>(72), std::vector<double>(3)}, c),
                    Contains("b[1] has 3 entries, expected 72"));
  CHECK_THROWS_WITH(mass.set_coupling({std::vector<double>(72), std::vector<double>(72)},
                                      {{{2.0, std::nan("")}, {0.0, 2.0}}}),
                    Contains("C[0][1] = nan"));
  // C not positive definite: S = C.
  CHECK_THROWS_WITH(mass.set_coupling({std::vector<double>(72), std::vector<double>(72)},
                                      {{{1.0, 3.0}, {3.0, 1.0}}}),
                    Contains("not positive definite"));
  CHECK(mass.coupling_scale() == 1.0);  // a throw leaves the mass as it was (the identity)
  CHECK(mass.parameter_scale(1) == 1.0);
  std::vector<double> v;
  CHECK_THROWS_WITH(mass.velocity(std::vector<double>(72), v),
                    Contains("momentum has 72 entries, expected 74"));
  CHECK_THROWS_AS(mass.parameter_scale(2), InvalidArgument);

  inf::GaussNewtonModel model;
  model.predict = [](const std::array<double, 2>&, const std::vector<double>&) {
    return std::vector<double>(4, 0.0);
  };
  model.pullback = [](const std::array<double, 2>&, const std::vector<double>&,
                      const std::vector<double>&) { return std::vector<double>(72, 0.0); };
  const std::vector<double> q(74, 0.0);
  CHECK_THROWS_WITH(inf::estimate_gauss_newton_mass(mass, model, q, 0.0, 2, 0.01, rng),
                    Contains("sigma = 0"));
  CHECK_THROWS_WITH(inf::estimate_gauss_newton_mass(mass, model, q, 1.0, 0, 0.01, rng),
                    Contains("probes = 0"));
  CHECK_THROWS_WITH(inf::estimate_gauss_newton_mass(mass, model, q, 1.0, 2, -1.0, rng),
                    Contains("du = -1"));
  CHECK_THROWS_WITH(
      inf::estimate_gauss_newton_mass(mass, model, std::vector<double>(5), 1.0, 2, 0.01, rng),
      Contains("q has 5 entries, expected 74"));
  model.pullback = [](const std::array<double, 2>&, const std::vector<double>&,
                      const std::vector<double>&) { return std::vector<double>(7, 0.0); };
  CHECK_THROWS_WITH(inf::estimate_gauss_newton_mass(mass, model, q, 1.0, 2, 0.01, rng),
                    Contains("pullback has 7 entries, expected 72"));
}
