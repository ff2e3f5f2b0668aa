// Dual averaging of the HMC step size (inference/dual_averaging.hpp): its first update against
// Hoffman & Gelman's formulas, the direction it moves, convergence to the target acceptance on a
// Gaussian, and input validation.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "diffpm/inference/dual_averaging.hpp"
#include "diffpm/inference/hmc.hpp"
#include "diffpm/inference/mass.hpp"

namespace {

namespace inf = diffpm::inference;
using Catch::Matchers::Contains;
using diffpm::InvalidArgument;

/// `warmup` adapted trajectories, then `n` at the final step size, on a 10-dimensional Gaussian
/// of standard deviations 1 down to 0.1: the mean acceptance probability over the second half of
/// the warm-up, the final step, and the mean acceptance probability at that step.
struct Adapted {
  double warmup_acceptance, step, acceptance;
};
Adapted adapt(double target, int warmup, int n, std::uint64_t seed) {
  const int dim = 10;
  std::vector<double> sd(dim);
  for (int i = 0; i < dim; ++i) sd[i] = std::pow(0.1, double(i) / (dim - 1));
  const inf::Potential u = [sd](const std::vector<double>& q, std::vector<double>& grad) {
    grad.resize(q.size());
    double v = 0.0;
    for (std::size_t i = 0; i < q.size(); ++i) {
      grad[i] = q[i] / (sd[i] * sd[i]);
      v += 0.5 * q[i] * grad[i];
    }
    return v;
  };
  const inf::DiagonalMass mass(dim);
  inf::HmcSettings s;
  s.step_size = 1.0;  // 5x the stability limit 2 sd_min = 0.2: adaptation must shrink it
  s.leapfrog_steps = 10;
  s.jitter = 0.1;
  inf::DualAveraging da(s.step_size, target);
  std::mt19937_64 rng(seed);
  inf::Point x = inf::evaluate(u, std::vector<double>(dim, 0.5));
  double warm = 0.0;
  for (int it = 0; it < warmup; ++it) {
    s.step_size = da.step_size();
    const double a = inf::step(u, mass, x, s, rng).acceptance_probability;
    da.update(a);
    if (2 * it >= warmup) warm += a;
  }
  s.step_size = da.final_step_size();
  double sum = 0.0;
  for (int it = 0; it < n; ++it) sum += inf::step(u, mass, x, s, rng).acceptance_probability;
  return {warm / (warmup - warmup / 2), s.step_size, sum / n};
}

}  // namespace

TEST_CASE("dual averaging's first update follows Hoffman & Gelman", "[inference][dual_averaging]") {
  // mu = log(10 eps_1) = 0 for eps_1 = 0.1; after alpha_1 = 1 with target 0.65:
  // H_bar_1 = (0.65 - 1) / 11, log eps_1 = -sqrt(1) / 0.05 H_bar_1 = 7 / 11, and the average
  // log eps_bar_1 = 1^-0.75 log eps_1.
  inf::DualAveraging da(0.1);
  CHECK(da.step_size() == 0.1);
  CHECK(da.final_step_size() == 1.0);
  const double eps = da.update(1.0);
  CHECK(eps == Approx(std::exp(7.0 / 11.0)).epsilon(1e-14));
  CHECK(da.step_size() == eps);
  CHECK(da.final_step_size() == Approx(eps).epsilon(1e-14));
  CHECK(da.iterations() == 1);
}

TEST_CASE("dual averaging moves the step the right way", "[inference][dual_averaging]") {
  // Accepting everything: the step grows; rejecting everything: it shrinks.
  inf::DualAveraging up(0.1, 0.7), down(0.1, 0.7);
  double eps_up = 0.0, eps_down = 0.0;
  for (int i = 0; i < 50; ++i) {
    eps_up = up.update(1.0);
    eps_down = down.update(0.0);
  }
  CHECK(eps_up > 1.0);
  CHECK(eps_down < 0.1);
  CHECK(up.final_step_size() > 1.0);
  CHECK(down.final_step_size() < 0.1);
}

TEST_CASE("dual averaging converges to the target acceptance", "[inference][dual_averaging]") {
  // 2000 adapted trajectories from a step 5x the stability limit, then 2000 at the final step.
  //
  // What dual averaging guarantees (Hoffman & Gelman 2014, sec. 3.2): H_bar_m -> 0, i.e. the
  // running mean of the acceptance probabilities of its own iterates tends to the target. Over
  // the second half of the warm-up it is within 0.02 (measured: 0.002 to 0.008 below, for these
  // three targets, four seeds and warm-ups of 500 to 2000); a sign error or a wrong weight in the
  // update drives it elsewhere (to 0 or 1).
  //
  // The acceptance at the final, averaged step is not the same number: the iterates scatter in
  // log eps, the acceptance is a concave function of log eps above 1/2, so by Jensen's
  // inequality the acceptance at their mean is higher than their mean acceptance (measured 0.70
  // to 0.74 for the target 0.65, 0.81 to 0.84 for 0.8, 0.90 for 0.9). Checked: at or above the
  // target (0.03 below for Monte Carlo error: ~0.01 over 2000 trajectories) and at most 0.15
  // above.
  double previous_step = 1.0;
  for (const double target : {0.65, 0.8, 0.9}) {
    const Adapted a = adapt(target, 2000, 2000, 42);
    INFO("target " << target << ": warm-up acceptance " << a.warmup_acceptance << ", step "
                   << a.step << ", acceptance " << a.acceptance);
    CHECK(a.warmup_acceptance == Approx(target).margin(0.02));
    CHECK(a.acceptance > target - 0.03);
    CHECK(a.acceptance < target + 0.15);
    CHECK(a.step < 0.2);            // within the stability limit 2 sd_min
    CHECK(a.step < previous_step);  // a higher target needs a smaller step
    previous_step = a.step;
  }
}

TEST_CASE("dual averaging rejects invalid input with InvalidArgument",
          "[inference][dual_averaging][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf_v = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(inf::DualAveraging(0.0), Contains("initial_step = 0"));
  CHECK_THROWS_WITH(inf::DualAveraging(-0.5), Contains("initial_step = -0.5"));
  CHECK_THROWS_AS(inf::DualAveraging(nan), InvalidArgument);
  CHECK_THROWS_AS(inf::DualAveraging(inf_v), InvalidArgument);
  CHECK_THROWS_WITH(inf::DualAveraging(0.1, 1.0), Contains("target = 1"));
  CHECK_THROWS_WITH(inf::DualAveraging(0.1, 0.0), Contains("target = 0"));
  CHECK_THROWS_AS(inf::DualAveraging(0.1, nan), InvalidArgument);
  CHECK_THROWS_WITH(inf::DualAveraging(0.1, 0.65, -1.0), Contains("gamma = -1"));
  CHECK_THROWS_WITH(inf::DualAveraging(0.1, 0.65, 0.05, -2.0), Contains("t0 = -2"));
  CHECK_THROWS_WITH(inf::DualAveraging(0.1, 0.65, 0.05, 10.0, 0.5), Contains("kappa = 0.5"));
  CHECK_THROWS_WITH(inf::DualAveraging(0.1, 0.65, 0.05, 10.0, 1.5), Contains("kappa = 1.5"));
  inf::DualAveraging da(0.1);
  CHECK_THROWS_WITH(da.update(nan), Contains("acceptance probability = nan"));
  CHECK_THROWS_WITH(da.update(1.5), Contains("acceptance probability = 1.5"));
  CHECK_THROWS_AS(da.update(-0.1), InvalidArgument);
  CHECK(da.iterations() == 0);  // a rejected update changes nothing
  CHECK(da.step_size() == 0.1);
}
