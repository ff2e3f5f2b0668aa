// HMC (inference/hmc.hpp): the leapfrog energy error shrinks as eps^2 with the exact gradient of
// an ill-conditioned Gaussian and does not with a corrupted one (so this test can fail on a
// wrong gradient), the sampler reproduces a correlated Gaussian's mean and covariance within
// Monte Carlo error, a non-finite energy is rejected, and bad input throws.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "diffpm/inference/hmc.hpp"
#include "diffpm/inference/mass.hpp"
#include "support/eigen_dense.hpp"

namespace {

namespace inf = diffpm::inference;
using Catch::Matchers::Contains;
using diffpm::InvalidArgument;

/// U(q) = (q - mu)^T P (q - mu) / 2, P = C^-1, with its exact gradient P (q - mu).
struct Gaussian {
  Eigen::VectorXd mu;
  Eigen::MatrixXd cov, precision;

  Gaussian(Eigen::VectorXd mean, Eigen::MatrixXd covariance)
      : mu(std::move(mean)), cov(std::move(covariance)), precision(cov.inverse()) {}

  std::size_t dim() const { return std::size_t(mu.size()); }

  double operator()(const std::vector<double>& q, std::vector<double>& grad) const {
    const Eigen::VectorXd d = Eigen::Map<const Eigen::VectorXd>(q.data(), mu.size()) - mu;
    const Eigen::VectorXd g = precision * d;
    grad.assign(g.data(), g.data() + g.size());
    return 0.5 * d.dot(g);
  }
};

/// Variances 1, 0.3, 0.05, 0.01 (condition number 100: the stiffest direction oscillates 10 times
/// faster than the softest under the identity mass) along a fixed rotation (the Q of a fixed
/// matrix), so no axis is an eigenvector and every gradient component couples to the others.
Gaussian ill_conditioned() {
  Eigen::MatrixXd a(4, 4);
  a << 1.0, 0.3, -0.2, 0.5, 0.1, 1.0, 0.4, -0.3, -0.6, 0.2, 1.0, 0.1, 0.2, -0.5, 0.3, 1.0;
  const Eigen::MatrixXd r = Eigen::HouseholderQR<Eigen::MatrixXd>(a).householderQ();
  const Eigen::VectorXd var = (Eigen::VectorXd(4) << 1.0, 0.3, 0.05, 0.01).finished();
  return Gaussian((Eigen::VectorXd(4) << 0.5, -1.0, 2.0, 0.0).finished(),
                  r * var.asDiagonal() * r.transpose());
}

/// |H(end) - H(start)| of a trajectory of fixed length T = 1 (1.6 periods of the stiffest mode)
/// with step eps, from a fixed start and momentum, for the potential `u`.
double energy_error(const inf::Potential& u, const Gaussian& g, double eps) {
  const inf::DiagonalMass mass(g.dim());
  std::vector<double> q0(g.dim());
  for (std::size_t i = 0; i < g.dim(); ++i) q0[i] = g.mu[Eigen::Index(i)] + 0.3 * (i % 2 ? -1 : 1);
  const inf::Point start = inf::evaluate(u, q0);
  const std::vector<double> r0 = {0.7, -0.4, 1.1, 0.2};
  const int steps = int(std::lround(1.0 / eps));
  const inf::Trajectory t = inf::trajectory(u, mass, start, r0, eps, steps);
  REQUIRE(t.steps == steps);
  return std::fabs(t.energy_error());
}

/// The check the sampler's gradient must pass: halving eps over a fixed trajectory length
/// divides the energy error by 4 (leapfrog's global error is O(eps^2) for a smooth conservative
/// force). eps = 0.01 and 0.005 against the stiffest frequency omega = 10: the next term of the
/// error is O((eps omega)^2) = 1% relative, so the ratio is 4 within a few percent (measured:
/// 4.06); [3.6, 4.4] leaves room for that and still rejects any error that does not vanish as
/// eps -> 0 (ratio near 1 or below: measured 0.08 and 0.78 for the two corruptions below).
struct ScalingCheck {
  double coarse, fine, ratio;
  bool second_order() const { return ratio > 3.6 && ratio < 4.4; }
};
ScalingCheck scaling(const inf::Potential& u, const Gaussian& g) {
  ScalingCheck c;
  c.coarse = energy_error(u, g, 0.01);
  c.fine = energy_error(u, g, 0.005);
  c.ratio = c.coarse / c.fine;
  return c;
}

/// Geyer's (1992) initial positive sequence estimate of the effective sample size of a chain.
double effective_sample_size(const std::vector<double>& x) {
  const std::size_t n = x.size();
  double mean = 0.0;
  for (double v : x) mean += v;
  mean /= double(n);
  auto autocov = [&](std::size_t lag) {
    double s = 0.0;
    for (std::size_t t = 0; t + lag < n; ++t) s += (x[t] - mean) * (x[t + lag] - mean);
    return s / double(n);
  };
  const double c0 = autocov(0);
  double sum = 0.0;
  for (std::size_t m = 0; 2 * m + 1 < n; ++m) {
    const double pair = (autocov(2 * m) + autocov(2 * m + 1)) / c0;
    if (pair <= 0.0) break;
    sum += pair;
  }
  return double(n) / (2.0 * sum - 1.0);
}

/// The mean of a series and its standard error sd / sqrt(ESS).
struct Estimate {
  double mean, error, ess;
};
Estimate estimate(const std::vector<double>& x) {
  double mean = 0.0, var = 0.0;
  for (double v : x) mean += v;
  mean /= double(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  var /= double(x.size() - 1);
  const double ess = effective_sample_size(x);
  return {mean, std::sqrt(var / ess), ess};
}

}  // namespace

TEST_CASE("leapfrog energy error shrinks as eps^2 with the exact gradient", "[inference][hmc]") {
  const Gaussian g = ill_conditioned();
  const inf::Potential u = [&g](const std::vector<double>& q, std::vector<double>& grad) {
    return g(q, grad);
  };
  const ScalingCheck c = scaling(u, g);
  INFO("dH(0.01) = " << c.coarse << ", dH(0.005) = " << c.fine << ", ratio " << c.ratio);
  // Far above round-off (1e-16 of H ~ 1): the ratio measures the integrator, not the noise.
  CHECK(c.fine > 1e-8);
  CHECK(c.second_order());
}

TEST_CASE("the eps^2 check detects a corrupted gradient", "[inference][hmc]") {
  // The point of the check above: a gradient that is not that of U (a wrong adjoint, a missing
  // term) leaves an energy error that does not vanish as eps -> 0, and the check fails.
  const Gaussian g = ill_conditioned();
  SECTION("gradient scaled by 1.01") {
    // The dynamics conserve 1.01 U + K, so H = U + K drifts by -0.01 (U(T) - U(0)) whatever eps.
    const inf::Potential u = [&g](const std::vector<double>& q, std::vector<double>& grad) {
      const double v = g(q, grad);
      for (auto& x : grad) x *= 1.01;
      return v;
    };
    const ScalingCheck c = scaling(u, g);
    INFO("dH(0.01) = " << c.coarse << ", dH(0.005) = " << c.fine << ", ratio " << c.ratio);
    CHECK_FALSE(c.second_order());
    CHECK(c.ratio < 2.0);  // the error hardly shrinks: it is the gradient's, not the step's
  }
  SECTION("one component perturbed (non-symmetric Jacobian)") {
    // d grad_1 / d q_0 changed by 2% of the largest precision: the force is no longer a
    // gradient, so no energy is conserved at all.
    const inf::Potential u = [&g](const std::vector<double>& q, std::vector<double>& grad) {
      const double v = g(q, grad);
      grad[1] += 2.0 * (q[0] - g.mu[0]);
      return v;
    };
    const ScalingCheck c = scaling(u, g);
    INFO("dH(0.01) = " << c.coarse << ", dH(0.005) = " << c.fine << ", ratio " << c.ratio);
    CHECK_FALSE(c.second_order());
    CHECK(c.ratio < 2.0);
  }
}

TEST_CASE("HMC reproduces a correlated Gaussian's mean and covariance", "[inference][hmc]") {
  // Standard deviations 1, sqrt(0.6), sqrt(0.2) with correlations 0.8 (0-1), 0.3 (0-2) and 0.5
  // (1-2): eigenvalues 0.096, 0.22, 1.49.
  const Eigen::Vector3d sd(1.0, std::sqrt(0.6), std::sqrt(0.2));
  Eigen::Matrix3d corr;
  corr << 1.0, 0.8, 0.3, 0.8, 1.0, 0.5, 0.3, 0.5, 1.0;
  const Eigen::MatrixXd cov = sd.asDiagonal() * corr * sd.asDiagonal();
  const Gaussian g((Eigen::VectorXd(3) << 1.0, -2.0, 0.5).finished(), cov);
  const inf::Potential u = [&g](const std::vector<double>& q, std::vector<double>& grad) {
    return g(q, grad);
  };
  const double lambda_min = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(cov).eigenvalues()[0];
  // eps = 0.6 sqrt(lambda_min) (stable below 2 sqrt(lambda_min), Neal 2011 sec. 4.2), 12 steps:
  // a jittered length of ~2.2, beyond the softest mode's quarter period (~1.9).
  const inf::DiagonalMass mass(3);
  inf::HmcSettings s;
  s.step_size = 0.6 * std::sqrt(lambda_min);
  s.leapfrog_steps = 12;
  s.jitter = 0.2;
  std::mt19937_64 rng(12345);
  inf::Point x = inf::evaluate(u, {3.0, 0.0, -1.0});  // off the bulk: the burn-in forgets it
  for (int it = 0; it < 200; ++it) inf::step(u, mass, x, s, rng);
  const int n = 6000;
  std::vector<std::vector<double>> chain(3, std::vector<double>(n));
  int accepted = 0;
  for (int it = 0; it < n; ++it) {
    accepted += inf::step(u, mass, x, s, rng).accepted ? 1 : 0;
    for (int i = 0; i < 3; ++i) chain[i][it] = x.q[i];
  }
  CHECK(accepted > n / 2);
  // Each estimate within 4 standard errors sd / sqrt(ESS), ESS from the chain's own
  // autocorrelation (the chain is fixed by its seed; over seeds a 4-sigma bound fails with
  // probability 6e-5 per estimate, 5e-4 for the 9 here). The ESS must also be a fair share of
  // the samples, else the chain is stuck and its error bars mean little.
  for (int i = 0; i < 3; ++i) {
    const Estimate m = estimate(chain[i]);
    INFO("mean " << i << ": " << m.mean << " +- " << m.error << " (ESS " << m.ess << "), true "
                 << g.mu[i]);
    CHECK(m.ess > 0.1 * n);
    CHECK(std::fabs(m.mean - g.mu[i]) < 4.0 * m.error);
  }
  for (int i = 0; i < 3; ++i)
    for (int j = i; j < 3; ++j) {
      // C_ij as the mean of (x_i - mu_i)(x_j - mu_j) about the true mean (an estimate whose
      // standard error the same recipe gives).
      std::vector<double> prod(n);
      for (int t = 0; t < n; ++t) prod[t] = (chain[i][t] - g.mu[i]) * (chain[j][t] - g.mu[j]);
      const Estimate c = estimate(prod);
      INFO("cov " << i << j << ": " << c.mean << " +- " << c.error << " (ESS " << c.ess
                  << "), true " << cov(i, j));
      CHECK(c.ess > 0.1 * n);
      CHECK(std::fabs(c.mean - cov(i, j)) < 4.0 * c.error);
    }
}

TEST_CASE("HMC rejects a trajectory that reaches a non-finite energy", "[inference][hmc]") {
  // A standard normal inside the box |q_i| < 1, +infinity (or NaN) outside: a flat prior's
  // support. From near the wall with a momentum towards it, the trajectory leaves the box.
  for (const double outside :
       {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    int calls = 0;
    const inf::Potential u = [&](const std::vector<double>& q, std::vector<double>& grad) {
      ++calls;
      grad.assign(q.size(), 0.0);
      double v = 0.0;
      for (std::size_t i = 0; i < q.size(); ++i) {
        if (!(std::fabs(q[i]) < 1.0)) return outside;
        v += 0.5 * q[i] * q[i];
        grad[i] = q[i];
      }
      return v;
    };
    const inf::DiagonalMass mass(2);
    const inf::Point start = inf::evaluate(u, {0.9, 0.0});
    const inf::Trajectory t = inf::trajectory(u, mass, start, {5.0, 0.0}, 0.1, 20);
    CHECK(t.steps < 20);  // stopped where U became non-finite
    CHECK(t.end_energy == std::numeric_limits<double>::infinity());
    CHECK(std::isinf(t.energy_error()));

    // The same through step(): rejected, the state untouched. Under a mass of 1e-6 the drawn
    // velocity is ~1e3 per unit time: the first step of 0.5 leaves the box whatever the draw
    // (unless both normals are below ~1e-3 in size, which this seed's are not).
    inf::Point x = start;
    inf::HmcSettings s;
    s.step_size = 0.5;
    s.leapfrog_steps = 20;
    std::mt19937_64 rng(7);
    const inf::DiagonalMass light(std::vector<double>{1e-6, 1e-6});
    calls = 0;
    const inf::StepResult res = inf::step(u, light, x, s, rng);
    CHECK_FALSE(res.accepted);
    CHECK(res.acceptance_probability == 0.0);
    CHECK(res.leapfrog_steps == calls);
    CHECK(res.leapfrog_steps < 20);
    CHECK(x.q == start.q);
    CHECK(x.grad == start.grad);
    CHECK(x.potential == start.potential);
  }
}

TEST_CASE("HMC steps are reproducible from the seed", "[inference][hmc]") {
  const Gaussian g = ill_conditioned();
  const inf::Potential u = [&g](const std::vector<double>& q, std::vector<double>& grad) {
    return g(q, grad);
  };
  const inf::DiagonalMass mass(4);
  inf::HmcSettings s;
  s.step_size = 0.05;
  s.leapfrog_steps = 10;
  s.jitter = 0.1;
  auto run = [&](std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    inf::Point x = inf::evaluate(u, {0.0, 0.0, 0.0, 0.0});
    std::vector<double> out;
    for (int it = 0; it < 20; ++it) {
      const inf::StepResult r = inf::step(u, mass, x, s, rng);
      CHECK(r.step_size >= 0.9 * s.step_size);
      CHECK(r.step_size <= 1.1 * s.step_size);
      CHECK(r.leapfrog_steps == s.leapfrog_steps);
      CHECK(r.acceptance_probability == Approx(std::min(1.0, std::exp(-r.energy_error))));
      out.insert(out.end(), x.q.begin(), x.q.end());
    }
    return out;
  };
  CHECK(run(1) == run(1));
  CHECK(run(1) != run(2));
}

TEST_CASE("HMC rejects invalid input with InvalidArgument", "[inference][hmc][errors]") {
  const inf::Potential u = [](const std::vector<double>& q, std::vector<double>& grad) {
    grad = q;
    double v = 0.0;
    for (double x : q) v += 0.5 * x * x;
    return v;
  };
  const inf::DiagonalMass mass(2);
  const inf::Point x = inf::evaluate(u, {0.1, 0.2});
  std::mt19937_64 rng(1);

  SECTION("step size and leapfrog steps") {
    for (const double eps : {0.0, -0.1, std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity()}) {
      CHECK_THROWS_AS(inf::trajectory(u, mass, x, {0.0, 0.0}, eps, 5), InvalidArgument);
      inf::HmcSettings s;
      s.step_size = eps;
      inf::Point y = x;
      CHECK_THROWS_AS(inf::step(u, mass, y, s, rng), InvalidArgument);
    }
    CHECK_THROWS_WITH(inf::trajectory(u, mass, x, {0.0, 0.0}, -0.25, 5),
                      Contains("step_size = -0.25"));
    CHECK_THROWS_WITH(inf::trajectory(u, mass, x, {0.0, 0.0}, 0.1, 0),
                      Contains("leapfrog_steps = 0"));
    inf::HmcSettings s;
    s.leapfrog_steps = -3;
    inf::Point y = x;
    CHECK_THROWS_WITH(inf::step(u, mass, y, s, rng), Contains("leapfrog_steps = -3"));
    s = inf::HmcSettings{};
    s.jitter = 1.0;
    CHECK_THROWS_WITH(inf::step(u, mass, y, s, rng), Contains("jitter = 1"));
    s.jitter = -0.1;
    CHECK_THROWS_WITH(inf::step(u, mass, y, s, rng), Contains("jitter = -0.1"));
  }
  SECTION("mismatched sizes") {
    CHECK_THROWS_WITH(inf::trajectory(u, mass, x, {0.0, 0.0, 0.0}, 0.1, 5),
                      Contains("momentum has 3 entries, expected 2"));
    const inf::DiagonalMass mass3(3);
    inf::Point y = x;
    CHECK_THROWS_WITH(inf::step(u, mass3, y, inf::HmcSettings{}, rng),
                      Contains("position q has 2 entries, expected 3"));
    const inf::Potential short_grad = [](const std::vector<double>&, std::vector<double>& grad) {
      grad.assign(1, 0.0);
      return 0.0;
    };
    CHECK_THROWS_WITH(inf::evaluate(short_grad, {0.0, 0.0}),
                      Contains("gradient at the start point has 1 entries, expected 2"));
    CHECK_THROWS_AS(inf::trajectory(short_grad, mass, x, {0.0, 0.0}, 0.1, 2), InvalidArgument);
    CHECK_THROWS_AS(inf::evaluate(u, {}), InvalidArgument);
    std::vector<double> v;
    CHECK_THROWS_AS(mass.velocity({1.0, 2.0, 3.0}, v), InvalidArgument);
  }
  SECTION("non-finite energy at the start") {
    const inf::Potential inf_u = [](const std::vector<double>& q, std::vector<double>& grad) {
      grad.assign(q.size(), 0.0);
      return std::numeric_limits<double>::infinity();
    };
    CHECK_THROWS_WITH(inf::evaluate(inf_u, {0.0, 0.0}),
                      Contains("potential at the start point = inf"));
    inf::Point y = x;
    y.potential = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH(inf::step(u, mass, y, inf::HmcSettings{}, rng), Contains("= nan"));
  }
  SECTION("diagonal mass") {
    CHECK_THROWS_AS(inf::DiagonalMass(std::vector<double>{}), InvalidArgument);
    CHECK_THROWS_WITH(inf::DiagonalMass(std::vector<double>{1.0, -2.0}), Contains("mass[1] = -2"));
    CHECK_THROWS_AS(inf::DiagonalMass(std::vector<double>{std::nan("")}), InvalidArgument);
  }
}
