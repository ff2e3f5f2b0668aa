/// \file
/// \brief Kick-drift-kick time stepping (FastPM factors or plain leapfrog) with snapshot hooks.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/nbody/fastpm_factors.hpp"
#include "diffpm/nbody/kick_drift.hpp"

namespace diffpm::nbody {

template <class T>
using Vec3 = std::array<T, 3>;

/// Positions x (Mpc/h, not wrapped: the mesh code wraps them) and momenta p in the FastPM
/// convention p = a^3 E dx/da (docs/physics.md), one entry per particle.
template <class T>
struct ParticleState {
  std::vector<Vec3<T>> x;
  std::vector<Vec3<T>> p;
};

enum class Stepper { fastpm, leapfrog };

/// Called at each requested snapshot scale factor a_s with the positions drifted exactly to
/// a_s and the momenta of the current half step (defined at the step's midpoint), so that
/// painting at a_s (lightcone planes) needs no extra step boundary.
template <class T>
using SnapshotHook =
    std::function<void(double a_s, const std::vector<Vec3<T>>& x, const std::vector<Vec3<T>>& p)>;

struct IntegratorOptions {
  Stepper stepper = Stepper::fastpm;
  /// Scale factors at which to call the hook, within [a_steps.front(), a_steps.back()].
  std::vector<double> snapshots;
};

namespace detail {

/// Throws unless a_steps holds at least two strictly increasing scale factors.
inline void check_steps(const std::vector<double>& a_steps, const char* fn) {
  if (a_steps.size() < 2)
    throw InvalidArgument(std::string(fn) + ": need at least two scale factors");
  for (std::size_t i = 0; i + 1 < a_steps.size(); ++i) {
    if (!(a_steps[i + 1] > a_steps[i])) {
      throw InvalidArgument(std::string(fn) + ": scale factors must increase, but a = " +
                            format_number(a_steps[i + 1]) + " follows " +
                            format_number(a_steps[i]));
    }
  }
}

/// The snapshots of `options`, sorted; throws if one lies outside the steps' range or if there
/// are snapshots but no hook.
inline std::vector<double> checked_snapshots(const std::vector<double>& a_steps,
                                             const IntegratorOptions& options, bool have_hook,
                                             const char* fn) {
  std::vector<double> snaps = options.snapshots;
  std::sort(snaps.begin(), snaps.end());
  for (double s : snaps) {
    if (!(s >= a_steps.front() && s <= a_steps.back())) {
      throw InvalidArgument(std::string(fn) + ": snapshot a = " + format_number(s) +
                            " is outside [" + format_number(a_steps.front()) + ", " +
                            format_number(a_steps.back()) + "]");
    }
  }
  if (!snaps.empty() && !have_hook)
    throw InvalidArgument(std::string(fn) + ": snapshots requested but no hook given");
  return snaps;
}

/// Kick and drift factors of a stepper: FastPM's (exact linear growth) or plain leapfrog's.
/// S = double for the run; S = a dual number gives the factors' derivatives with respect to
/// the cosmological parameters, for the adjoint (model/forward_model.hpp).
template <class S = double>
struct StepFactors {
  FastPmFactors<S> factors;
  bool fastpm;
  StepFactors(const cosmology::Cosmology<S>& cosmo, Stepper stepper)
      : factors(cosmo), fastpm(stepper == Stepper::fastpm) {}
  S kick(const S& a0, const S& a1, const S& a_force) const {
    return fastpm ? factors.kick(a0, a1, a_force) : factors.kick_leapfrog(a0, a1);
  }
  S drift(const S& a0, const S& a1, const S& a_momentum) const {
    return fastpm ? factors.drift(a0, a1, a_momentum) : factors.drift_leapfrog(a0, a1);
  }
};

}  // namespace detail

/// Evolves `state` from a_steps.front() to a_steps.back() with kick-drift-kick:
///   p += K(a_i, a_h; force at a_i) F(x_i);  x += D(a_i, a_{i+1}; momentum at a_h) p;
///   F = F(x_{i+1});  p += K(a_h, a_{i+1}; force at a_{i+1}) F,
/// with a_h = sqrt(a_i a_{i+1}) (FastPM, FlowPM) and one force evaluation per step (the force
/// at a_{i+1} is reused by the next step's first kick). `force(x, F)` must fill F with
/// -grad phi, lap phi = 3/2 Omega_m delta, at positions x (nbody/pm_force.hpp).
/// Factors: FastPmFactors (exact linear growth for any step count) or plain leapfrog.
template <class T, class Force>
void integrate(const cosmology::Cosmology<double>& cosmo, const std::vector<double>& a_steps,
               ParticleState<T>& state, Force&& force, const IntegratorOptions& options = {},
               const SnapshotHook<T>& hook = {}) {
  detail::check_steps(a_steps, "integrate");
  if (state.x.size() != state.p.size()) {
    throw InvalidArgument("integrate: " + std::to_string(state.x.size()) + " positions but " +
                          std::to_string(state.p.size()) + " momenta");
  }
  const std::vector<double> snaps =
      detail::checked_snapshots(a_steps, options, bool(hook), "integrate");
  const detail::StepFactors step(cosmo, options.stepper);

  std::size_t next_snap = 0;
  std::vector<Vec3<T>> F(state.x.size()), x_snap;
  while (next_snap < snaps.size() && snaps[next_snap] <= a_steps.front()) {
    hook(snaps[next_snap++], state.x, state.p);
  }
  force(state.x, F);
  for (std::size_t i = 0; i + 1 < a_steps.size(); ++i) {
    const double a0 = a_steps[i], a1 = a_steps[i + 1], ah = std::sqrt(a0 * a1);
    axpy(state.p, step.kick(a0, ah, a0), F);
    while (next_snap < snaps.size() && snaps[next_snap] <= a1) {
      const double as = snaps[next_snap++];
      x_snap = state.x;
      axpy(x_snap, step.drift(a0, as, ah), state.p);
      hook(as, x_snap, state.p);
    }
    axpy(state.x, step.drift(a0, a1, ah), state.p);
    force(state.x, F);
    axpy(state.p, step.kick(ah, a1, a1), F);
  }
}

}  // namespace diffpm::nbody
