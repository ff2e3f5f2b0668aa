/// \file
/// \brief Hamiltonian Monte Carlo (Neal 2011, "MCMC using Hamiltonian dynamics", in the Handbook
/// of Markov Chain Monte Carlo): the leapfrog trajectory and one Metropolis-corrected step, for
/// any potential U(q) = -log p(q) + const with its gradient and any mass (inference/mass.hpp).
/// Section numbers are those of the preprint, arXiv:1206.1901.
///
///   inference::Point x = inference::evaluate(potential, q0);   // U and grad U at q0
///   inference::DiagonalMass mass(q0.size());
///   inference::HmcSettings s{0.1, 20};                          // step size, leapfrog steps
///   std::mt19937_64 rng(seed);
///   for (...) {
///     const auto res = inference::step(potential, mass, x, s, rng);  // x moves if accepted
///   }
///
/// Units and signs: the potential is the negative log density (lower is more probable) in the
/// units of q; the gradient is dU/dq (the force is -dU/dq); the step size is in the units of the
/// time of H(q, r) = U(q) + r^T M^-1 r / 2, in which q moves by M^-1 r per unit time.
///
/// Invalid input (a non-positive or non-finite step size, no leapfrog steps, vectors whose sizes
/// do not match the mass, a start point whose potential is not finite) throws InvalidArgument
/// naming the parameter and its value. A trajectory that reaches a point where U is not finite
/// (outside a prior's support, or a model that refuses the point) stops there and is rejected:
/// that is the Metropolis rule for a proposal of zero density, not an error.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/inference/mass.hpp"

namespace diffpm::inference {

/// U(q) = -log p(q) + const; writes dU/dq into `grad` (resized to q.size()) when the value is
/// finite. A non-finite value (+infinity outside the support) marks a point of zero density; the
/// gradient is then not read.
using Potential = std::function<double(const std::vector<double>& q, std::vector<double>& grad)>;

/// A position with its potential and gradient (the state of a chain: a leapfrog step needs the
/// gradient at its start, so a chain keeps it rather than evaluate U twice per trajectory).
struct Point {
  std::vector<double> q;
  std::vector<double> grad;  ///< dU/dq at q
  double potential = 0.0;    ///< U(q)
};

/// The point q with U(q) and its gradient. Throws InvalidArgument if q is empty, if U(q) is not
/// finite (a chain cannot start at zero density) or if the gradient has the wrong size.
inline Point evaluate(const Potential& potential, std::vector<double> q) {
  if (q.empty()) throw InvalidArgument("HMC: the position q is empty");
  Point x;
  x.q = std::move(q);
  x.potential = potential(x.q, x.grad);
  if (!std::isfinite(x.potential)) {
    throw InvalidArgument("HMC: potential at the start point = " + format_number(x.potential) +
                          " (must be finite)");
  }
  detail::check_size("HMC: gradient at the start point", x.grad.size(), x.q.size());
  return x;
}

/// What one HMC step does.
struct HmcSettings {
  /// The leapfrog step size eps (> 0). The energy error of a trajectory grows as eps^2 (Neal
  /// 2011, sec. 2.3), so eps sets the acceptance rate; inference/dual_averaging.hpp tunes it.
  double step_size = 0.1;
  /// Leapfrog steps L per trajectory (>= 1); the trajectory's length is L eps.
  int leapfrog_steps = 10;
  /// Each trajectory's step is eps (1 - j + 2 j u), u ~ U(0, 1): a random length keeps
  /// trajectories from resonating with a periodic orbit of the dynamics, where a fixed length
  /// can bring every trajectory back near its start and the chain is no longer ergodic (Neal
  /// 2011, sec. 4.2). 0 <= j < 1; 0 (the default) draws nothing.
  double jitter = 0.0;
};

namespace detail {
inline void check_step_size(double eps) {
  if (!(eps > 0.0) || !std::isfinite(eps)) {
    throw InvalidArgument("HMC: step_size = " + format_number(eps) + " (must be finite and > 0)");
  }
}
inline void check_leapfrog_steps(int steps) {
  if (steps < 1) {
    throw InvalidArgument("HMC: leapfrog_steps = " + std::to_string(steps) + " (must be >= 1)");
  }
}
inline void check_settings(const HmcSettings& s) {
  check_step_size(s.step_size);
  check_leapfrog_steps(s.leapfrog_steps);
  if (!(s.jitter >= 0.0 && s.jitter < 1.0)) {
    throw InvalidArgument("HMC: jitter = " + format_number(s.jitter) + " (must be in [0, 1))");
  }
}
template <class Mass>
void check_point(const Point& x, const Mass& mass) {
  check_size("HMC: position q", x.q.size(), mass.dimension());
  check_size("HMC: gradient", x.grad.size(), mass.dimension());
  if (!std::isfinite(x.potential)) {
    throw InvalidArgument("HMC: potential at the current point = " + format_number(x.potential) +
                          " (must be finite)");
  }
}
}  // namespace detail

/// Where a trajectory ended and its energies, H = U(q) + K(r).
struct Trajectory {
  Point end;                     ///< the last point reached (U non-finite if it stopped early)
  std::vector<double> momentum;  ///< r at the end
  double start_energy = 0.0;     ///< H at the start
  /// H at the end; +infinity when the trajectory stopped at a non-finite U.
  double end_energy = 0.0;
  int steps = 0;  ///< leapfrog steps taken (fewer than asked when it stopped early)

  /// H(end) - H(start): O(eps^2) over a fixed length L eps with the exact gradient (leapfrog is
  /// a symmetric second-order integrator, Neal 2011, sec. 2.3), which is what makes large
  /// moves acceptable; not finite when the trajectory stopped at a non-finite U.
  double energy_error() const { return end_energy - start_energy; }
};

/// `steps` leapfrog steps of size eps from (start, momentum) (Neal 2011, sec. 2.3, eqs. 2.28-2.30):
/// each step r -= eps/2 grad U(q); q += eps M^-1 r; r -= eps/2 grad U(q). The potential is
/// evaluated once per step (the gradient at the start comes with `start`). The integrator is volume
/// preserving and reversible, so the Metropolis test on exp(-(H(end) - H(start))) leaves the
/// target invariant (Neal 2011, sec. 3.2). If U becomes non-finite the trajectory stops at that
/// point, end_energy = +infinity.
///
/// Throws InvalidArgument on eps <= 0 or not finite, steps < 1, start or momentum not of the
/// mass's dimension, or a non-finite U at the start.
template <class Mass>
Trajectory trajectory(const Potential& potential, const Mass& mass, const Point& start,
                      std::vector<double> momentum, double step_size, int steps) {
  detail::check_step_size(step_size);
  detail::check_leapfrog_steps(steps);
  detail::check_point(start, mass);
  detail::check_size("HMC: momentum", momentum.size(), mass.dimension());
  const std::size_t dim = start.q.size();
  Trajectory t;
  t.start_energy = start.potential + mass.kinetic(momentum);
  t.end = start;
  std::vector<double>& q = t.end.q;
  std::vector<double>& g = t.end.grad;
  std::vector<double>& r = momentum;
  std::vector<double> velocity(dim);
  double u = start.potential;
  for (int l = 0; l < steps && std::isfinite(u); ++l) {
    for (std::size_t i = 0; i < dim; ++i) r[i] -= 0.5 * step_size * g[i];
    mass.velocity(r, velocity);
    for (std::size_t i = 0; i < dim; ++i) q[i] += step_size * velocity[i];
    u = potential(q, g);
    ++t.steps;
    if (std::isfinite(u)) {
      detail::check_size("HMC: gradient returned by the potential", g.size(), dim);
      for (std::size_t i = 0; i < dim; ++i) r[i] -= 0.5 * step_size * g[i];
    }
  }
  t.end.potential = u;
  t.end_energy = std::isfinite(u) ? u + mass.kinetic(r) : std::numeric_limits<double>::infinity();
  t.momentum = std::move(momentum);
  return t;
}

/// What one HMC step did.
struct StepResult {
  bool accepted = false;
  /// min(1, exp(-energy_error)), the Metropolis acceptance probability (Neal 2011, sec. 3.2); 0
  /// when the energy error is not finite. Its average is what dual averaging steers.
  double acceptance_probability = 0.0;
  double energy_error = 0.0;  ///< H(end) - H(start) of the proposal (+infinity: stopped early)
  double step_size = 0.0;     ///< the step used (after the jitter)
  int leapfrog_steps = 0;     ///< leapfrog steps taken
};

/// One HMC transition (Neal 2011, sec. 3.2): draw r ~ N(0, M), run the leapfrog trajectory,
/// accept its end with probability min(1, exp(H(start) - H(end))). `current` is replaced by the
/// end point when accepted and left as it was otherwise.
///
/// Random numbers are taken from `rng` in this order: the momentum (mass.draw), the jitter's
/// uniform when settings.jitter > 0, the acceptance uniform; so a chain is reproducible from its
/// seed.
///
/// Throws InvalidArgument on invalid settings (see HmcSettings), a current point not of the
/// mass's dimension, or with a non-finite potential.
template <class Mass, class Rng>
StepResult step(const Potential& potential, const Mass& mass, Point& current,
                const HmcSettings& settings, Rng& rng) {
  detail::check_settings(settings);
  detail::check_point(current, mass);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<double> r;
  mass.draw(rng, r);
  double eps = settings.step_size;
  if (settings.jitter > 0.0) {
    eps = settings.step_size * ((1.0 - settings.jitter) + 2.0 * settings.jitter * uniform(rng));
  }
  Trajectory t = trajectory(potential, mass, current, std::move(r), eps, settings.leapfrog_steps);
  // dH = H(start) - H(end): -infinity when the trajectory stopped at zero density, NaN when the
  // energies are not finite numbers; both are rejected.
  const double dh = t.start_energy - t.end_energy;
  StepResult res;
  res.energy_error = -dh;
  res.acceptance_probability = std::isfinite(dh) ? std::min(1.0, std::exp(dh)) : 0.0;
  res.step_size = eps;
  res.leapfrog_steps = t.steps;
  res.accepted = uniform(rng) < res.acceptance_probability;
  if (res.accepted) current = std::move(t.end);
  return res;
}

}  // namespace diffpm::inference
