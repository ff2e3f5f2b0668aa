/// \file
/// \brief Step-size adaptation for HMC by dual averaging (Hoffman & Gelman 2014, "The No-U-Turn
/// Sampler", JMLR 15, 1593, sec. 3.2 and algorithm 5).
///
///   inference::DualAveraging da(0.1, 0.7);   // first step size, target acceptance
///   for (int it = 0; it < warmup; ++it) {
///     settings.step_size = da.step_size();
///     const auto res = inference::step(potential, mass, x, settings, rng);
///     da.update(res.acceptance_probability);
///   }
///   settings.step_size = da.final_step_size();   // fixed from here on: sampling proper
///
/// Why dual averaging: a Robbins-Monro iteration on log eps drives the mean acceptance
/// probability to the target, but its iterates keep the noise of the last few acceptances; the
/// weighted average of the iterates (log eps_bar) converges, so sampling after the warm-up uses a
/// fixed step, and the chain after the warm-up is a proper (non-adaptive) Markov chain.
#pragma once

#include <cmath>
#include <string>

#include "diffpm/core/error.hpp"

namespace diffpm::inference {

/// Hoffman & Gelman's dual averaging of log eps (their sec. 3.2, as in algorithm 5):
///   H_bar_m   = (1 - 1/(m + t0)) H_bar_{m-1} + (target - alpha_m) / (m + t0)
///   log eps_m = mu - sqrt(m) / gamma H_bar_m,             mu = log(10 eps_1)
///   log eps_bar_m = m^-kappa log eps_m + (1 - m^-kappa) log eps_bar_{m-1}
/// alpha_m the m-th trajectory's acceptance probability (inference::StepResult). mu biases the
/// iterates towards steps larger than the first (large steps are cheap to reject, small ones
/// waste gradients); gamma sets how fast they move, t0 damps the first iterations, kappa in
/// (0.5, 1] lets the average forget early iterates. Defaults: the paper's gamma = 0.05, t0 = 10,
/// kappa = 0.75, and a target acceptance of 0.65 (Beskos et al. 2013, Bernoulli 19, 1501, find
/// 0.651 optimal for HMC as the dimension grows; the paper recommends delta = 0.65 for HMC).
class DualAveraging {
 public:
  /// Throws InvalidArgument naming the parameter unless initial_step is finite and > 0, target
  /// in (0, 1), gamma > 0, t0 >= 0 and kappa in (0.5, 1] (all finite).
  explicit DualAveraging(double initial_step, double target = 0.65, double gamma = 0.05,
                         double t0 = 10.0, double kappa = 0.75)
      : target_(target), gamma_(gamma), t0_(t0), kappa_(kappa), step_(initial_step) {
    if (!(initial_step > 0.0) || !std::isfinite(initial_step)) {
      throw InvalidArgument("DualAveraging: initial_step = " + format_number(initial_step) +
                            " (must be finite and > 0)");
    }
    if (!(target > 0.0 && target < 1.0)) {
      throw InvalidArgument("DualAveraging: target = " + format_number(target) +
                            " (an acceptance probability in (0, 1))");
    }
    if (!(gamma > 0.0) || !std::isfinite(gamma)) {
      throw InvalidArgument("DualAveraging: gamma = " + format_number(gamma) +
                            " (must be finite and > 0)");
    }
    if (!(t0 >= 0.0) || !std::isfinite(t0)) {
      throw InvalidArgument("DualAveraging: t0 = " + format_number(t0) +
                            " (must be finite and >= 0)");
    }
    if (!(kappa > 0.5 && kappa <= 1.0)) {
      throw InvalidArgument("DualAveraging: kappa = " + format_number(kappa) +
                            " (must be in (0.5, 1])");
    }
    mu_ = std::log(10.0 * initial_step);
  }

  /// Feeds the acceptance probability of the trajectory just run with step_size() and returns
  /// the next step size eps_m. Throws InvalidArgument unless 0 <= accept <= 1 (a NaN from a
  /// broken energy would otherwise poison every later step size).
  double update(double accept) {
    if (!(accept >= 0.0 && accept <= 1.0)) {
      throw InvalidArgument("DualAveraging: acceptance probability = " + format_number(accept) +
                            " (must be in [0, 1])");
    }
    ++m_;
    const double eta = 1.0 / (m_ + t0_);
    h_bar_ = (1.0 - eta) * h_bar_ + eta * (target_ - accept);
    const double log_eps = mu_ - std::sqrt(double(m_)) / gamma_ * h_bar_;
    const double w = std::pow(double(m_), -kappa_);
    log_eps_bar_ = w * log_eps + (1.0 - w) * log_eps_bar_;
    step_ = std::exp(log_eps);
    return step_;
  }

  /// The step size to use next (the initial one before any update).
  double step_size() const { return step_; }
  /// exp(log eps_bar): the step for sampling after the warm-up (1 before any update, as in the
  /// paper's initialisation log eps_bar_0 = 0).
  double final_step_size() const { return std::exp(log_eps_bar_); }
  /// Updates so far.
  int iterations() const { return m_; }
  double target() const { return target_; }

 private:
  double target_, gamma_, t0_, kappa_;
  double mu_ = 0.0, h_bar_ = 0.0, log_eps_bar_ = 0.0, step_;
  int m_ = 0;
};

}  // namespace diffpm::inference
