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

}  // namespace detail

/// Evolves `state` from a_steps.front() to a_steps.back() with kick-drift-kick:
///   p += K(a_i, a_h; force at a_i) F(x_i);  x += D(a_i, a_{i+1}; momentum at a_h) p;
///   F = F(x_{i+1});  p += K(a_h, a_{i+1}; force at a_{i+1}) F,
/// with a_h = sqrt(a_i a_{i+1}) (FastPM, FlowPM) and one force evaluation per step (the force
/// at a_{i+1} is reused by the next step's first kick). `force(x, F)` must fill F with
/// -grad phi, lap phi = 3/2 Omega_m delta, at positions x (nbody/pm_force.hpp).
/// Factors: FastPmFactors (exact linear growth for any step count) or plain leapfrog.
template <class T, class Force>
void integrate(const cosmology::Model<double>& cosmo, const std::vector<double>& a_steps,
               ParticleState<T>& state, Force&& force, const IntegratorOptions& options = {},
               const SnapshotHook<T>& hook = {}) {
  detail::check_steps(a_steps, "integrate");
  if (state.x.size() != state.p.size()) {
    throw InvalidArgument("integrate: " + std::to_string(state.x.size()) + " positions but " +
                          std::to_string(state.p.size()) + " momenta");
  }
  const std::vector<double> snaps =
      detail::checked_snapshots(a_steps, options, bool(hook), "integrate");
  const StepFactors<double> factors(cosmo, options.stepper);

  std::size_t next_snap = 0;
  std::vector<Vec3<T>> F(state.x.size()), x_snap;
  while (next_snap < snaps.size() && snaps[next_snap] <= a_steps.front()) {
    hook(snaps[next_snap++], state.x, state.p);
  }
  force(state.x, F);
  for (std::size_t i = 0; i + 1 < a_steps.size(); ++i) {
    const double a0 = a_steps[i], a1 = a_steps[i + 1];
    const KdkCoefficients<double> c = factors.step(a0, a1);
    axpy(state.p, c.kick_first, F);
    while (next_snap < snaps.size() && snaps[next_snap] <= a1) {
      const double as = snaps[next_snap++];
      x_snap = state.x;
      axpy(x_snap, factors.drift_within(a0, a1, as), state.p);
      hook(as, x_snap, state.p);
    }
    axpy(state.x, c.drift, state.p);
    force(state.x, F);
    axpy(state.p, c.kick_second, F);
  }
}

}  // namespace diffpm::nbody
