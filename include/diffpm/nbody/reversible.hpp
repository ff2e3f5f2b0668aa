/// \file
/// \brief A bit-exactly reversible kick-drift-kick integrator on a fixed-point particle state,
/// so that the adjoint pass can rebuild the forward trajectory by running backwards (DESIGN.md,
/// "The adjoint") instead of storing it.
///
/// Why fixed point. The leapfrog is time-reversible in exact arithmetic, but in floating point
/// x + D p - D p != x in general, so running it backwards drifts away from the forward
/// trajectory (pmwd, Li et al. 2022, arXiv:2211.09958, sec. 4: 5e-2 of the rms displacement in
/// float32). Following JANUS (Rein & Tamayo 2018, arXiv:1704.07715, sec. 2), the state is kept
/// in integers and every update adds an integer increment that depends only on the *other*
/// variable:
///   kick:   P += round(K F(X) / q_p)          (F computed from the unchanged X)
///   drift:  X += round(D q_p P / q_x)         (from the unchanged P)
/// Integer addition is exact, so subtracting the same increments, recomputed from the same
/// integers, restores the previous state bit for bit; the force only has to be a deterministic
/// function of the positions (nbody/pm_force.hpp is: race-free CIC, fixed FFT plans). How the
/// increments are rounded affects accuracy only, never reversibility.
///
/// Units. Positions are unsigned 64-bit fractions of the box, x_d = L_d X_d / 2^64 (q_x = L_d /
/// 2^64, ~5e-18 of the box), so periodic wrapping is the integers' own modular arithmetic.
/// Momenta (FastPM convention, integrator.hpp) are signed 64-bit multiples of a quantum q_p
/// chosen once per run (FixedPointState::quantum_for).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/nbody/integrator.hpp"

namespace diffpm::nbody {

/// Particle positions and momenta in fixed point (see the file comment).
struct FixedPointState {
  std::array<double, 3> box{};                  ///< L_d, Mpc/h
  double momentum_quantum = 0.0;                ///< q_p, in the units of p
  std::vector<std::array<std::uint64_t, 3>> x;  ///< x_d = L_d X_d / 2^64
  std::vector<std::array<std::int64_t, 3>> p;   ///< p_d = q_p P_d

  /// 2^-64 and 2^64 as doubles (exact).
  static constexpr double two_m64 = 5.42101086242752217e-20;
  static constexpr double two_64 = 18446744073709551616.0;

  /// A momentum quantum leaving headroom for momenta to grow 2^22-fold (4 million) above
  /// `p_max`, with 2^40 levels (12 digits) below it: momenta of a run from z ~ 10 to 0 grow by
  /// well under 10^3, and 2^-40 relative is below double-precision force errors.
  static double quantum_for(double p_max) {
    if (!(p_max > 0.0) || !std::isfinite(p_max)) {
      throw InvalidArgument("fixed-point state: largest |p| = " + format_number(p_max) +
                            " (must be finite and > 0)");
    }
    return std::ldexp(p_max, -40);
  }

  /// Rounds a floating-point state: positions wrapped into the box, momenta to the nearest
  /// multiple of `quantum` (0: quantum_for(max |p|)). Throws InvalidArgument on a box length or
  /// quantum that is not finite and > 0, non-finite values, or momenta beyond 2^62 quanta.
  template <class T>
  static FixedPointState from(const ParticleState<T>& s, std::array<double, 3> box_lengths,
                              double quantum = 0.0) {
    if (s.x.size() != s.p.size()) {
      throw InvalidArgument("fixed-point state: " + std::to_string(s.x.size()) + " positions but " +
                            std::to_string(s.p.size()) + " momenta");
    }
    double p_max = 0.0;
    for (const auto& v : s.p)
      for (int d = 0; d < 3; ++d) {
        if (!std::isfinite(double(v[d])))
          throw InvalidArgument("fixed-point state: non-finite momentum " +
                                format_number(double(v[d])));
        p_max = std::max(p_max, std::fabs(double(v[d])));
      }
    FixedPointState f;
    f.box = box_lengths;
    // 0 asks for the default; anything else is checked by validate().
    f.momentum_quantum = quantum == 0.0 ? quantum_for(p_max > 0.0 ? p_max : 1.0) : quantum;
    f.validate("fixed-point state");  // box and quantum (x and p are still empty)
    f.x.resize(s.x.size());
    f.p.resize(s.p.size());
    for (std::size_t i = 0; i < s.x.size(); ++i)
      for (int d = 0; d < 3; ++d) {
        const double xd = double(s.x[i][d]);
        if (!std::isfinite(xd))
          throw InvalidArgument("fixed-point state: non-finite position " + format_number(xd));
        double u = xd / box_lengths[d];
        u -= std::floor(u);  // [0, 1]; 1 (round-off) wraps to 0 below
        const double scaled = std::ldexp(u, 64);
        f.x[i][d] = scaled >= two_64 ? 0u : static_cast<std::uint64_t>(scaled);
        f.p[i][d] = to_quanta(double(s.p[i][d]) / f.momentum_quantum, "momentum");
      }
    return f;
  }

  /// The floating-point positions (in [0, L_d)) and momenta: a fixed function of the integers.
  template <class T>
  void positions(std::vector<std::array<T, 3>>& out) const {
    out.resize(x.size());
    const std::ptrdiff_t n = std::ptrdiff_t(x.size());
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d) out[i][d] = static_cast<T>(box[d] * (double(x[i][d]) * two_m64));
  }
  template <class T>
  void momenta(std::vector<std::array<T, 3>>& out) const {
    out.resize(p.size());
    for (std::size_t i = 0; i < p.size(); ++i)
      for (int d = 0; d < 3; ++d) out[i][d] = static_cast<T>(double(p[i][d]) * momentum_quantum);
  }

  /// Throws InvalidArgument unless positions and momenta match in number and the box lengths and
  /// the momentum quantum are finite and > 0 (a state made by `from` always is).
  void validate(const char* fn) const {
    if (x.size() != p.size()) {
      throw InvalidArgument(std::string(fn) + ": fixed-point state with " +
                            std::to_string(x.size()) + " positions but " +
                            std::to_string(p.size()) + " momenta");
    }
    for (int d = 0; d < 3; ++d) {
      if (!(box[d] > 0.0) || !std::isfinite(box[d])) {
        throw InvalidArgument(std::string(fn) + ": fixed-point state box length " +
                              std::to_string(d) + " = " + format_number(box[d]) +
                              " Mpc/h (must be finite and > 0)");
      }
    }
    if (!(momentum_quantum > 0.0) || !std::isfinite(momentum_quantum)) {
      throw InvalidArgument(std::string(fn) + ": fixed-point momentum quantum = " +
                            format_number(momentum_quantum) + " (must be finite and > 0)");
    }
  }

  /// Largest magnitude, in quanta, of a value or an increment: 2^62 leaves a factor 2 of
  /// headroom in the 64-bit integers (for a position increment: a quarter box per drift).
  static constexpr double max_quanta = 0x1p62;

  /// Throws InvalidArgument for a value or increment of `v` quanta beyond max_quanta.
  [[noreturn]] static void throw_overflow(const char* what, double v) {
    throw InvalidArgument(std::string("fixed-point state: ") + what + " of " + format_number(v) +
                          " quanta (beyond 2^62: a particle moved more than a quarter box in one "
                          "drift, or the momentum quantum is too small)");
  }

  /// llround(v) as int64, throwing if |v| >= max_quanta.
  static std::int64_t to_quanta(double v, const char* what) {
    if (!(std::fabs(v) < max_quanta)) throw_overflow(what, v);
    return std::llround(v);
  }
};

namespace detail {

/// P += s round(K F / q_p), s = +1 forward, -1 backward. On overflow it throws, leaving the
/// state partly updated (the run cannot continue anyway).
template <class T>
void fixed_kick(FixedPointState& st, double K, const std::vector<std::array<T, 3>>& F, int sign) {
  const double c = K / st.momentum_quantum;
  const std::ptrdiff_t n = std::ptrdiff_t(st.p.size());
  double worst = 0.0;
  DIFFPM_OMP(omp parallel for schedule(static) reduction(max : worst))
  for (std::ptrdiff_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) {
      const double v = c * double(F[i][d]);
      if (!(std::fabs(v) < FixedPointState::max_quanta)) {
        worst = std::isnan(v) ? HUGE_VAL : std::max(worst, std::fabs(v));
        continue;
      }
      st.p[i][d] += sign * std::int64_t(std::llround(v));
    }
  if (worst > 0.0) FixedPointState::throw_overflow("kick increment", worst);
}

/// X += s round(D q_p P 2^64 / L): modular, so periodic. Computed from P alone.
inline void fixed_drift(FixedPointState& st, double D, int sign) {
  std::array<double, 3> c;
  for (int d = 0; d < 3; ++d) c[d] = D * st.momentum_quantum * FixedPointState::two_64 / st.box[d];
  const std::ptrdiff_t n = std::ptrdiff_t(st.x.size());
  double worst = 0.0;
  DIFFPM_OMP(omp parallel for schedule(static) reduction(max : worst))
  for (std::ptrdiff_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) {
      const double v = c[d] * double(st.p[i][d]);
      if (!(std::fabs(v) < FixedPointState::max_quanta)) {
        worst = std::isnan(v) ? HUGE_VAL : std::max(worst, std::fabs(v));
        continue;
      }
      const std::uint64_t inc = static_cast<std::uint64_t>(std::int64_t(std::llround(v)));
      st.x[i][d] = sign > 0 ? st.x[i][d] + inc : st.x[i][d] - inc;
    }
  if (worst > 0.0) FixedPointState::throw_overflow("drift increment", worst);
}

}  // namespace detail

/// Kick-drift-kick from a_steps.front() to a_steps.back() on the fixed-point state, with the
/// factors of `integrate` (FastPM or leapfrog, integrator.hpp) and one force evaluation per
/// step. `force(x, F)` gets the positions as T (FixedPointState::positions) and must be a
/// deterministic function of them. The snapshot hook sees positions drifted to each snapshot
/// (in fixed point, then converted), as in `integrate`. With `trajectory`, the run also keeps
/// what the adjoint's "store" mode needs: entry i (i < steps) is the state after the first kick
/// of step i (positions x_i, momenta at the half step), the last entry the final state.
template <class T, class Force>
void integrate_fixed_point(const cosmology::Cosmology<double>& cosmo,
                           const std::vector<double>& a_steps, FixedPointState& state,
                           Force&& force, const IntegratorOptions& options = {},
                           const SnapshotHook<T>& hook = {},
                           std::vector<FixedPointState>* trajectory = nullptr) {
  detail::check_steps(a_steps, "integrate_fixed_point");
  state.validate("integrate_fixed_point");
  std::vector<double> snaps =
      detail::checked_snapshots(a_steps, options, bool(hook), "integrate_fixed_point");
  const detail::StepFactors factors(cosmo, options.stepper);
  std::vector<std::array<T, 3>> x, F(state.x.size()), p;
  std::size_t next_snap = 0;
  auto snapshot = [&](double as, const FixedPointState& s) {
    s.positions(x);
    s.momenta(p);
    hook(as, x, p);
  };
  while (next_snap < snaps.size() && snaps[next_snap] <= a_steps.front())
    snapshot(snaps[next_snap++], state);
  state.positions(x);
  force(x, F);
  FixedPointState snap;
  if (trajectory) trajectory->clear();
  for (std::size_t i = 0; i + 1 < a_steps.size(); ++i) {
    const double a0 = a_steps[i], a1 = a_steps[i + 1], ah = std::sqrt(a0 * a1);
    detail::fixed_kick(state, factors.kick(a0, ah, a0), F, +1);
    if (trajectory) trajectory->push_back(state);
    while (next_snap < snaps.size() && snaps[next_snap] <= a1) {
      const double as = snaps[next_snap++];
      snap = state;
      detail::fixed_drift(snap, factors.drift(a0, as, ah), +1);
      snapshot(as, snap);
    }
    detail::fixed_drift(state, factors.drift(a0, a1, ah), +1);
    state.positions(x);
    force(x, F);
    detail::fixed_kick(state, factors.kick(ah, a1, a1), F, +1);
  }
  if (trajectory) trajectory->push_back(state);
}

/// Undoes integrate_fixed_point over the same a_steps, force and stepper: from the state at
/// a_steps.back() it restores the state at a_steps.front() bit for bit, with one force
/// evaluation per step (the positions at each step boundary are rebuilt on the way; a hook,
/// if given, sees them at every boundary from the last to the first, for the adjoint pass).
template <class T, class Force>
void integrate_fixed_point_backward(
    const cosmology::Cosmology<double>& cosmo, const std::vector<double>& a_steps,
    FixedPointState& state, Force&& force, const IntegratorOptions& options = {},
    const std::function<void(std::size_t step, const FixedPointState&)>& at_boundary = {}) {
  detail::check_steps(a_steps, "integrate_fixed_point_backward");
  state.validate("integrate_fixed_point_backward");
  const detail::StepFactors factors(cosmo, options.stepper);
  std::vector<std::array<T, 3>> x, F(state.x.size());
  state.positions(x);
  force(x, F);
  const std::size_t n = a_steps.size() - 1;
  if (at_boundary) at_boundary(n, state);
  for (std::size_t i = n; i-- > 0;) {
    const double a0 = a_steps[i], a1 = a_steps[i + 1], ah = std::sqrt(a0 * a1);
    detail::fixed_kick(state, factors.kick(ah, a1, a1), F, -1);
    detail::fixed_drift(state, factors.drift(a0, a1, ah), -1);
    state.positions(x);
    force(x, F);
    detail::fixed_kick(state, factors.kick(a0, ah, a0), F, -1);
    if (at_boundary) at_boundary(i, state);
  }
}

/// dL/d(coefficients) of a fixed-point run, step by step: the kick factors of the first and
/// second half kicks, the drift factors, and the sum of what the force adjoint returned (for
/// the PM force, dL/dOmega_m). The cosmology turns them into parameter derivatives (DESIGN.md,
/// "The adjoint": dL/dtheta = sum_c dL/dc dc/dtheta).
struct IntegratorGradient {
  std::vector<double> kick_first, kick_second, drift;
  double force_scalar = 0.0;
};

/// The reverse pass of integrate_fixed_point over the same steps, force and stepper. On entry
/// x_bar, p_bar hold dL/dx, dL/dp at a_steps.back(); on return dL/dx, dL/dp at
/// a_steps.front(). `force_and_adjoint(x, F_bar, F, x_bar)` must set F to the force at x (bit
/// for bit the forward run's), accumulate x_bar += (dF/dx)^T F_bar and return dL/d(its scalar),
/// as PmForce::value_and_adjoint does: every force the reverse pass needs comes with an
/// adjoint at the same positions.
///
/// The trajectory is the fixed-point one, rebuilt backwards from `state` (which enters as the
/// final state and leaves as the initial one: memory flat in the number of steps, one
/// force-and-adjoint per step), or read from `trajectory` when integrate_fixed_point recorded
/// it (memory growing with the steps; `state` is then not used). The two see the same states
/// bit for bit, hence give the same gradients bit for bit. The derivatives are those of the
/// unrounded kick-drift-kick map (the rounding of the state, 2^-40 of the momenta, is not
/// differentiated). Snapshot hooks are not part of this pass.
///
/// Per step, forward p' = p + K1 F(x); x' = x + D p'; p'' = p' + K2 F(x'); in reverse the
/// momentum adjoint passes through both kicks unchanged, so the two kicks that meet at a step
/// boundary x_b share one force adjoint: x_bar += (dF/dx(x_b))^T (K2_{b-1} + K1_b) p_bar, with
/// dL/dK2_{b-1} = dL/dK1_b = <p_bar, F(x_b)>; the drift gives p_bar += D x_bar and
/// dL/dD = <x_bar, p'> (kick_drift.hpp).
template <class T, class ForceAndAdjoint>
IntegratorGradient integrate_fixed_point_adjoint(
    const cosmology::Cosmology<double>& cosmo, const std::vector<double>& a_steps,
    FixedPointState& state, ForceAndAdjoint&& force_and_adjoint,
    std::vector<std::array<T, 3>>& x_bar, std::vector<std::array<T, 3>>& p_bar,
    const IntegratorOptions& options = {},
    const std::vector<FixedPointState>* trajectory = nullptr) {
  detail::check_steps(a_steps, "integrate_fixed_point_adjoint");
  const std::size_t n = a_steps.size() - 1;
  if (trajectory && trajectory->size() != n + 1) {
    throw InvalidArgument("integrate_fixed_point_adjoint: a trajectory of " +
                          std::to_string(trajectory->size()) + " states for " + std::to_string(n) +
                          " steps (needs steps + 1)");
  }
  (trajectory ? trajectory->back() : state).validate("integrate_fixed_point_adjoint");
  const std::size_t np = trajectory ? trajectory->back().x.size() : state.x.size();
  if (x_bar.size() != np || p_bar.size() != np) {
    throw InvalidArgument("integrate_fixed_point_adjoint: x_bar and p_bar hold " +
                          std::to_string(x_bar.size()) + " and " + std::to_string(p_bar.size()) +
                          " entries for " + std::to_string(np) + " particles");
  }
  const detail::StepFactors factors(cosmo, options.stepper);
  IntegratorGradient g;
  g.kick_first.assign(n, 0.0);
  g.kick_second.assign(n, 0.0);
  g.drift.assign(n, 0.0);
  std::vector<std::array<T, 3>> x, F(np), F_bar(np);
  const FixedPointState* cur = trajectory ? &trajectory->back() : &state;
  const std::ptrdiff_t m = std::ptrdiff_t(np);

  // At a boundary with positions *cur and total kick factor k: F and the force adjoint with
  // F_bar = k p_bar in one call; returns <p_bar, F> = dL/dK of both kicks there.
  auto boundary = [&](double k) {
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t i = 0; i < m; ++i)
      for (int d = 0; d < 3; ++d) F_bar[i][d] = static_cast<T>(k) * p_bar[i][d];
    cur->positions(x);
    g.force_scalar += force_and_adjoint(x, F_bar, F, x_bar);
    double dot = 0.0;
    DIFFPM_OMP(omp parallel for schedule(static) reduction(+ : dot))
    for (std::ptrdiff_t i = 0; i < m; ++i)
      for (int d = 0; d < 3; ++d) dot += double(p_bar[i][d]) * double(F[i][d]);
    return dot;
  };

  {
    const double a0 = a_steps[n - 1], a1 = a_steps[n], ah = std::sqrt(a0 * a1);
    g.kick_second[n - 1] = boundary(factors.kick(ah, a1, a1));
  }
  for (std::size_t i = n; i-- > 0;) {
    const double a0 = a_steps[i], a1 = a_steps[i + 1], ah = std::sqrt(a0 * a1);
    if (trajectory) {
      cur = &(*trajectory)[i];  // x_i and the half-step momenta
    } else {
      detail::fixed_kick(state, factors.kick(ah, a1, a1), F, -1);
    }
    // Drift adjoint with the half-step momenta, read from the integers as momenta() does.
    const double D = factors.drift(a0, a1, ah), q = cur->momentum_quantum;
    const T Dt = static_cast<T>(D);
    double d_bar = 0.0;
    DIFFPM_OMP(omp parallel for schedule(static) reduction(+ : d_bar))
    for (std::ptrdiff_t j = 0; j < m; ++j)
      for (int d = 0; d < 3; ++d) {
        const T p_mid = static_cast<T>(double(cur->p[j][d]) * q);
        p_bar[j][d] += Dt * x_bar[j][d];
        d_bar += double(x_bar[j][d]) * double(p_mid);
      }
    g.drift[i] = d_bar;
    if (!trajectory) detail::fixed_drift(state, D, -1);
    const double k1 = factors.kick(a0, ah, a0);
    double k_total = k1;
    if (i > 0) {
      const double b0 = a_steps[i - 1], bh = std::sqrt(b0 * a0);
      k_total += factors.kick(bh, a0, a0);
    }
    const double c = boundary(k_total);
    if (!trajectory) detail::fixed_kick(state, k1, F, -1);
    g.kick_first[i] = c;
    if (i > 0) g.kick_second[i - 1] = c;
  }
  return g;
}

}  // namespace diffpm::nbody
