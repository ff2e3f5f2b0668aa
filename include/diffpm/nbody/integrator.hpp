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

namespace detail {

/// `v` in the kind of array `like` is: itself next to a std::vector, its view next to a view
/// (so that axpy takes both arguments of one kind).
template <class T>
std::vector<Vec3<T>>& same_kind(std::vector<Vec3<T>>& v, const std::vector<Vec3<T>>&) {
  return v;
}
template <class T>
particles::Vec3View<T> same_kind(std::vector<Vec3<T>>& v, const particles::Vec3View<T>&) {
  return particles::view(v);
}
template <class T>
std::size_t count(const std::vector<Vec3<T>>& v) {
  return v.size();
}
template <class T>
std::size_t count(const particles::Vec3View<T>& v) {
  return v.size;
}
template <class T>
void copy_to(std::vector<Vec3<T>>& dst, const std::vector<Vec3<T>>& src) {
  dst = src;
}
template <class T>
void copy_to(std::vector<Vec3<T>>& dst, const particles::Vec3View<T>& src) {
  dst.resize(src.size);
  for (std::size_t i = 0; i < src.size; ++i) dst[i] = src[i];
}

/// The kick-drift-kick loop of integrate(), on diffpm's containers (X = std::vector) or on
/// the caller's memory (X = particles::Vec3View): the same operations in the same order, so
/// the same bits. `snapshot(a_s, x_s, p)` gets the positions drifted to a_s.
template <class T, class X, class Force, class Snapshot>
void kick_drift_kick(const cosmology::Model<double>& cosmo, const std::vector<double>& a_steps,
                     X& x, X& p, const IntegratorOptions& options, bool have_hook, Force&& force,
                     Snapshot&& snapshot, const char* fn) {
  check_steps(a_steps, fn);
  const std::vector<double> snaps = checked_snapshots(a_steps, options, have_hook, fn);
  const StepFactors<double> factors(cosmo, options.stepper);

  std::size_t next_snap = 0;
  std::vector<Vec3<T>> F_store(count(x)), x_snap;
  decltype(auto) F = same_kind(F_store, x);
  while (next_snap < snaps.size() && snaps[next_snap] <= a_steps.front()) {
    snapshot(snaps[next_snap++], x, p);
  }
  force(x, F);
  for (std::size_t i = 0; i + 1 < a_steps.size(); ++i) {
    const double a0 = a_steps[i], a1 = a_steps[i + 1];
    const KdkCoefficients<double> c = factors.step(a0, a1);
    axpy(p, c.kick_first, F);
    while (next_snap < snaps.size() && snaps[next_snap] <= a1) {
      const double as = snaps[next_snap++];
      copy_to(x_snap, x);
      decltype(auto) xs = same_kind(x_snap, x);
      axpy(xs, factors.drift_within(a0, a1, as), p);
      snapshot(as, xs, p);
    }
    axpy(x, c.drift, p);
    force(x, F);
    axpy(p, c.kick_second, F);
  }
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
  if (state.x.size() != state.p.size()) {
    detail::check_steps(a_steps, "integrate");
    throw InvalidArgument("integrate: " + std::to_string(state.x.size()) + " positions but " +
                          std::to_string(state.p.size()) + " momenta");
  }
  detail::kick_drift_kick<T>(
      cosmo, a_steps, state.x, state.p, options, bool(hook), force,
      [&](double a, const std::vector<Vec3<T>>& x, const std::vector<Vec3<T>>& p) {
        hook(a, x, p);
      },
      "integrate");
}

/// Called by the view form of integrate() at each snapshot with views of the positions drifted
/// to a_s (a copy the integrator owns) and of the caller's momenta.
template <class T>
using SnapshotViewHook =
    std::function<void(double a_s, particles::Vec3View<const T> x, particles::Vec3View<const T> p)>;

/// The same steps on positions and momenta in the caller's memory (particles::Vec3View: any
/// array-of-structs or struct-of-arrays layout), evolved in place with the bits of the
/// container form. `force(x, F)` takes views: (particles::Vec3View<T> x, particles::Vec3View<T>
/// F), F an array the integrator owns (PmForce takes views: wrap it in a lambda with Omega_m).
/// Throws InvalidArgument if x and p differ in size, and as the container form.
template <class T, class Force>
void integrate(const cosmology::Model<double>& cosmo, const std::vector<double>& a_steps,
               particles::Vec3View<T> x, particles::Vec3View<T> p, Force&& force,
               const IntegratorOptions& options = {}, const SnapshotViewHook<T>& hook = {}) {
  if (x.size != p.size) {
    throw InvalidArgument("integrate: " + std::to_string(x.size) + " positions but " +
                          std::to_string(p.size) + " momenta");
  }
  detail::kick_drift_kick<T>(
      cosmo, a_steps, x, p, options, bool(hook), force,
      [&](double a, const particles::Vec3View<T>& xs, const particles::Vec3View<T>& ps) {
        hook(a, xs, ps);
      },
      "integrate");
}

}  // namespace diffpm::nbody
