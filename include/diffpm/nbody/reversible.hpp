/// \file
/// \brief A bit-exactly reversible kick-drift-kick integrator on a fixed-point particle state,
/// so that the adjoint pass can rebuild the forward trajectory by running backwards
/// (docs/design.md, "The adjoint") instead of storing it.
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
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "diffpm/core/deterministic_sum.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/nbody/integrator.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::nbody {

namespace fixed_state {

/// 2^-64 and 2^64 as doubles (exact), and the largest magnitude, in quanta, of a value or an
/// increment: 2^62 leaves a factor 2 of headroom in the 64-bit integers (for a position
/// increment: a quarter box per drift).
constexpr double two_m64 = 5.42101086242752217e-20;
constexpr double two_64 = 18446744073709551616.0;
constexpr double max_quanta = 0x1p62;

// The per-particle arithmetic of the fixed-point state, shared by the CPU loops below and the
// device loops of nbody/reversible_device.hpp, so both backends compute the same integers.

/// The coordinate L_d X_d / 2^64 of integer position X in a box of length L_d.
DIFFPM_HOST_DEVICE inline double position(double box, std::uint64_t X) {
  return box * (double(X) * two_m64);
}

/// The increment round(v) of a kick or a drift (v: the increment in quanta), or false when
/// |v| >= 2^62 or v is NaN (the run must stop: FixedPointState::throw_overflow).
DIFFPM_HOST_DEVICE inline bool increment(double v, std::int64_t& inc) {
  if (!(std::fabs(v) < max_quanta)) return false;
  inc = std::int64_t(std::llround(v));
  return true;
}

/// The integer position 2^64 u of coordinate x in a box of length L, u = x/L wrapped into
/// [0, 1) (FixedPointState::from); a u that rounds up to 1 wraps to 0.
DIFFPM_HOST_DEVICE inline std::uint64_t integer_position(double box, double x) {
  double u = x / box;
  u -= std::floor(u);  // [0, 1]; 1 (round-off) wraps to 0 below
  const double scaled = std::ldexp(u, 64);
  return scaled >= two_64 ? 0u : static_cast<std::uint64_t>(scaled);
}

/// How bad an increment of v quanta is, for the error message: 0 when it fits, |v| beyond
/// 2^62, infinity for NaN.
DIFFPM_HOST_DEVICE inline double overflow_magnitude(double v) {
  if (std::fabs(v) < max_quanta) return 0.0;
  return v != v ? HUGE_VAL : std::fabs(v);
}

/// splitmix64's finaliser (Steele, Lea & Flood 2014).
DIFFPM_HOST_DEVICE inline std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Particle i's term of FixedPointState::digest.
DIFFPM_HOST_DEVICE inline std::uint64_t digest_term(std::uint64_t i, const std::uint64_t x[3],
                                                    const std::int64_t p[3]) {
  std::uint64_t h = i * 0xd6e8feb86659fd93ull;
  for (int d = 0; d < 3; ++d) h = (h ^ x[d]) * 0x9fb21c651e98df25ull;
  for (int d = 0; d < 3; ++d) h = (h ^ static_cast<std::uint64_t>(p[d])) * 0xc2b2ae3d27d4eb4full;
  return mix(h);
}

/// The digest from the sum of the terms (mod 2^64: order-free), the quantum and the count.
inline std::uint64_t digest_finish(std::uint64_t sum, double momentum_quantum, std::uint64_t n) {
  std::uint64_t q;
  static_assert(sizeof(q) == sizeof(momentum_quantum), "double is 64 bits");
  std::memcpy(&q, &momentum_quantum, sizeof(q));
  return mix(sum ^ mix(q ^ n));
}

}  // namespace fixed_state

/// Particle positions and momenta in fixed point (see the file comment).
struct FixedPointState {
  std::array<double, 3> box{};                  ///< L_d, Mpc/h
  double momentum_quantum = 0.0;                ///< q_p, in the units of p
  std::vector<std::array<std::uint64_t, 3>> x;  ///< x_d = L_d X_d / 2^64
  std::vector<std::array<std::int64_t, 3>> p;   ///< p_d = q_p P_d

  /// 2^-64 and 2^64 as doubles (exact).
  static constexpr double two_m64 = fixed_state::two_m64;
  static constexpr double two_64 = fixed_state::two_64;

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
    return from(particles::view(s.x), particles::view(s.p), box_lengths, quantum);
  }
  /// The same from positions and momenta in the caller's memory (particles::Vec3View: any
  /// array-of-structs or struct-of-arrays layout; T may be const), to the same integers.
  template <class T>
  static FixedPointState from(particles::Vec3View<T> xs, particles::Vec3View<T> ps,
                              std::array<double, 3> box_lengths, double quantum = 0.0) {
    if (xs.size != ps.size) {
      throw InvalidArgument("fixed-point state: " + std::to_string(xs.size) + " positions but " +
                            std::to_string(ps.size) + " momenta");
    }
    double p_max = 0.0;
    for (std::size_t i = 0; i < ps.size; ++i)
      for (int d = 0; d < 3; ++d) {
        const double v = double(ps(i, d));
        if (!std::isfinite(v))
          throw InvalidArgument("fixed-point state: non-finite momentum " + format_number(v));
        p_max = std::max(p_max, std::fabs(v));
      }
    FixedPointState f;
    f.box = box_lengths;
    // 0 asks for the default; anything else is checked by validate().
    f.momentum_quantum = quantum == 0.0 ? quantum_for(p_max > 0.0 ? p_max : 1.0) : quantum;
    f.validate("fixed-point state");  // box and quantum (x and p are still empty)
    f.x.resize(xs.size);
    f.p.resize(ps.size);
    for (std::size_t i = 0; i < xs.size; ++i)
      for (int d = 0; d < 3; ++d) {
        const double xd = double(xs(i, d));
        if (!std::isfinite(xd))
          throw InvalidArgument("fixed-point state: non-finite position " + format_number(xd));
        f.x[i][d] = fixed_state::integer_position(box_lengths[d], xd);
        f.p[i][d] = to_quanta(double(ps(i, d)) / f.momentum_quantum, "momentum");
      }
    return f;
  }

  /// The floating-point positions (in [0, L_d)) and momenta: a fixed function of the integers.
  template <class T>
  void positions(std::vector<std::array<T, 3>>& out) const {
    out.resize(x.size());
    positions(particles::view(out));
  }
  template <class T>
  void momenta(std::vector<std::array<T, 3>>& out) const {
    out.resize(p.size());
    momenta(particles::view(out));
  }
  /// The same into the caller's memory (sized to the state: InvalidArgument otherwise).
  template <class T>
  void positions(particles::Vec3View<T> out) const {
    check_out(out.size, "positions");
    const std::ptrdiff_t n = std::ptrdiff_t(x.size());
    if (auto* packed = particles::packed(out)) {  // no run-time stride; the same arithmetic
      DIFFPM_OMP(omp parallel for schedule(static))
      for (std::ptrdiff_t i = 0; i < n; ++i)
        for (int d = 0; d < 3; ++d)
          packed[i][d] = static_cast<T>(fixed_state::position(box[d], x[i][d]));
      return;
    }
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d)
        out(std::size_t(i), d) = static_cast<T>(fixed_state::position(box[d], x[i][d]));
  }
  template <class T>
  void momenta(particles::Vec3View<T> out) const {
    check_out(out.size, "momenta");
    for (std::size_t i = 0; i < p.size(); ++i)
      for (int d = 0; d < 3; ++d) out(i, d) = static_cast<T>(double(p[i][d]) * momentum_quantum);
  }

  /// Throws InvalidArgument unless an output view holds one vector per particle.
  void check_out(std::size_t n, const char* what) const {
    if (n != x.size()) {
      throw InvalidArgument("fixed-point state: a view of " + std::to_string(n) + " " + what +
                            " for " + std::to_string(x.size()) + " particles");
    }
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

  /// A 64-bit fingerprint of the integers (positions, momenta, and which particle holds them)
  /// and the momentum quantum: equal states give equal digests; a state that differs in any bit
  /// gives another digest except with probability ~2^-64. A sum over particles of per-particle
  /// hashes (each word folded in by xor and an odd multiplication, which are bijections, then
  /// splitmix64's finaliser: Steele, Lea & Flood 2014), so its value does not depend on the
  /// thread count. Costs one pass over the state.
  std::uint64_t digest() const {
    const std::ptrdiff_t n = std::ptrdiff_t(x.size());
    unsigned long long sum = 0;
    DIFFPM_OMP(omp parallel for schedule(static) reduction(+ : sum))
    for (std::ptrdiff_t i = 0; i < n; ++i)
      sum += fixed_state::digest_term(std::uint64_t(i), x[i].data(), p[i].data());
    return fixed_state::digest_finish(std::uint64_t(sum), momentum_quantum, std::uint64_t(n));
  }

  /// Largest magnitude, in quanta, of a value or an increment: 2^62 leaves a factor 2 of
  /// headroom in the 64-bit integers (for a position increment: a quarter box per drift).
  static constexpr double max_quanta = fixed_state::max_quanta;

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
      std::int64_t inc;
      if (!fixed_state::increment(v, inc)) {
        worst = std::max(worst, fixed_state::overflow_magnitude(v));
        continue;
      }
      st.p[i][d] += sign * inc;
    }
  if (worst > 0.0) FixedPointState::throw_overflow("kick increment", worst);
}

/// The factor of a drift by D along axis d: X += round(c_d P), c_d = D q_p 2^64 / L_d.
inline std::array<double, 3> drift_factors(const FixedPointState& st, double D) {
  std::array<double, 3> c;
  for (int d = 0; d < 3; ++d) c[d] = D * st.momentum_quantum * FixedPointState::two_64 / st.box[d];
  return c;
}

/// X += s round(D q_p P 2^64 / L): modular, so periodic. Computed from P alone.
inline void fixed_drift(FixedPointState& st, double D, int sign) {
  const std::array<double, 3> c = drift_factors(st, D);
  const std::ptrdiff_t n = std::ptrdiff_t(st.x.size());
  double worst = 0.0;
  DIFFPM_OMP(omp parallel for schedule(static) reduction(max : worst))
  for (std::ptrdiff_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) {
      const double v = c[d] * double(st.p[i][d]);
      std::int64_t inc_signed;
      if (!fixed_state::increment(v, inc_signed)) {
        worst = std::max(worst, fixed_state::overflow_magnitude(v));
        continue;
      }
      const std::uint64_t inc = static_cast<std::uint64_t>(inc_signed);
      st.x[i][d] = sign > 0 ? st.x[i][d] + inc : st.x[i][d] - inc;
    }
  if (worst > 0.0) FixedPointState::throw_overflow("drift increment", worst);
}

}  // namespace detail

/// How the reverse pass of a fixed-point run gets the forward trajectory back (all
/// three see the same integer states, hence give the same gradient bits):
///  - store: the forward run keeps the state of every step (memory grows with the steps);
///  - reverse: the reverse pass runs the integrator backwards from the final state, bit for bit
///    (memory flat in the steps, no extra force evaluations: the force adjoint returns the force
///    that undoes each kick);
///  - checkpoint: the forward run keeps every k-th step's state; the reverse pass replays each
///    segment of k steps forward from its checkpoint (memory ~ steps / k + k states, one extra
///    force per step). For integrators that cannot run backwards exactly; here it is the check
///    that the other two agree with a third route.
enum class AdjointMode { store, reverse, checkpoint };

/// What integrate_fixed_point keeps for the reverse pass. half_steps[j] is the state after the
/// first kick of step i = j (store) or i = j k (checkpoint, k = checkpoint_every): positions at
/// a_i, momenta at the half step. No state is kept in reverse mode: the final state is the
/// run's own.
///
/// Every mode also keeps the digests (FixedPointState::digest) of the run's first and last
/// states: the reverse pass checks that it starts from the run's final state, and in reverse
/// mode that it rebuilt the first state bit for bit, throwing ReversibilityError otherwise
/// (docs/adjoint.md, "What exact reversal rests on").
///
/// State is the state type of the backend: FixedPointState on the CPU (FixedPointRecord),
/// DeviceFixedPointState in device memory (nbody/reversible_device.hpp).
template <class State>
struct BasicFixedPointRecord {
  AdjointMode mode = AdjointMode::reverse;
  std::size_t checkpoint_every = 8;
  std::vector<State> half_steps;
  bool has_digests = false;        ///< set by integrate_fixed_point
  std::uint64_t start_digest = 0;  ///< of the state at a_steps.front()
  std::uint64_t end_digest = 0;    ///< of the state at a_steps.back()

  /// Whether step i's half-step state is kept.
  bool keeps(std::size_t i) const {
    return mode == AdjointMode::store ||
           (mode == AdjointMode::checkpoint && i % checkpoint_every == 0);
  }
  /// Entries a run of `steps` steps leaves.
  std::size_t expected_size(std::size_t steps) const {
    if (mode == AdjointMode::store) return steps;
    if (mode == AdjointMode::checkpoint) return (steps + checkpoint_every - 1) / checkpoint_every;
    return 0;
  }
  void validate(const char* fn) const {
    if (mode == AdjointMode::checkpoint && checkpoint_every == 0) {
      throw InvalidArgument(std::string(fn) + ": checkpoint every 0 steps (must be >= 1)");
    }
  }
  /// validate(), and that the record holds what a run of `steps` steps leaves (the reverse
  /// pass's check that it was made by a run over the same steps and mode).
  void validate_for(std::size_t steps, const char* fn) const {
    validate(fn);
    if (half_steps.size() != expected_size(steps)) {
      throw InvalidArgument(std::string(fn) + ": a record of " + std::to_string(half_steps.size()) +
                            " states for " + std::to_string(steps) + " steps (expected " +
                            std::to_string(expected_size(steps)) +
                            "; was it made by a run over the same steps and mode?)");
    }
  }
};

using FixedPointRecord = BasicFixedPointRecord<FixedPointState>;

/// The fixed-point state in device memory, and its record (nbody/reversible_device.hpp, which
/// needs the device backend; declared here so that options can name them in any build).
struct DeviceFixedPointState;
using DeviceFixedPointRecord = BasicFixedPointRecord<DeviceFixedPointState>;

/// SnapshotHook (integrator.hpp) of the device integrator: positions drifted exactly to a_s and
/// the half step's momenta, as views of device memory valid during the call.
template <class T>
using DeviceSnapshotHook =
    std::function<void(double a_s, particles::Vec3View<const T> x, particles::Vec3View<const T> p)>;

namespace detail {
/// The step i with a_i < a_s <= a_{i+1} in which integrate's hook sees snapshot a_s, or
/// steps (= a_steps.size() - 1) for a_s <= a_steps.front() (seen before the first step).
inline std::size_t snapshot_step(const std::vector<double>& a_steps, double a_s) {
  if (a_s <= a_steps.front()) return a_steps.size() - 1;
  std::size_t i = 0;
  while (i + 2 < a_steps.size() && a_s > a_steps[i + 1]) ++i;
  return i;
}
}  // namespace detail

/// Kick-drift-kick from a_steps.front() to a_steps.back() on the fixed-point state, with the
/// factors of `integrate` (FastPM or leapfrog, integrator.hpp) and one force evaluation per
/// step. `force(x, F)` gets the positions as T (FixedPointState::positions) and must be a
/// deterministic function of them. The snapshot hook sees positions drifted to each snapshot
/// (in fixed point, then converted), as in `integrate`. With `record`, the run also keeps what
/// the reverse pass of its mode needs (FixedPointRecord; cleared first).
template <class T, class Force>
void integrate_fixed_point(const cosmology::Model<double>& cosmo,
                           const std::vector<double>& a_steps, FixedPointState& state,
                           Force&& force, const IntegratorOptions& options = {},
                           const SnapshotHook<T>& hook = {}, FixedPointRecord* record = nullptr) {
  detail::check_steps(a_steps, "integrate_fixed_point");
  state.validate("integrate_fixed_point");
  if (record) record->validate("integrate_fixed_point");
  std::vector<double> snaps =
      detail::checked_snapshots(a_steps, options, bool(hook), "integrate_fixed_point");
  const StepFactors<double> factors(cosmo, options.stepper);
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
  if (record) {
    record->half_steps.clear();
    record->has_digests = true;
    record->start_digest = state.digest();
  }
  for (std::size_t i = 0; i + 1 < a_steps.size(); ++i) {
    const double a0 = a_steps[i], a1 = a_steps[i + 1];
    const KdkCoefficients<double> c = factors.step(a0, a1);
    detail::fixed_kick(state, c.kick_first, F, +1);
    if (record && record->keeps(i)) record->half_steps.push_back(state);
    while (next_snap < snaps.size() && snaps[next_snap] <= a1) {
      const double as = snaps[next_snap++];
      snap = state;
      detail::fixed_drift(snap, factors.drift_within(a0, a1, as), +1);
      snapshot(as, snap);
    }
    detail::fixed_drift(state, c.drift, +1);
    state.positions(x);
    force(x, F);
    detail::fixed_kick(state, c.kick_second, F, +1);
  }
  if (record) record->end_digest = state.digest();
}

/// Undoes integrate_fixed_point over the same a_steps, force and stepper: from the state at
/// a_steps.back() it restores the state at a_steps.front() bit for bit, with one force
/// evaluation per step (the positions at each step boundary are rebuilt on the way; a hook,
/// if given, sees them at every boundary from the last to the first, for the adjoint pass).
template <class T, class Force>
void integrate_fixed_point_backward(
    const cosmology::Model<double>& cosmo, const std::vector<double>& a_steps,
    FixedPointState& state, Force&& force, const IntegratorOptions& options = {},
    const std::function<void(std::size_t step, const FixedPointState&)>& at_boundary = {}) {
  detail::check_steps(a_steps, "integrate_fixed_point_backward");
  state.validate("integrate_fixed_point_backward");
  const StepFactors<double> factors(cosmo, options.stepper);
  std::vector<std::array<T, 3>> x, F(state.x.size());
  state.positions(x);
  force(x, F);
  const std::size_t n = a_steps.size() - 1;
  if (at_boundary) at_boundary(n, state);
  for (std::size_t i = n; i-- > 0;) {
    const KdkCoefficients<double> c = factors.step(a_steps[i], a_steps[i + 1]);
    detail::fixed_kick(state, c.kick_second, F, -1);
    detail::fixed_drift(state, c.drift, -1);
    state.positions(x);
    force(x, F);
    detail::fixed_kick(state, c.kick_first, F, -1);
    if (at_boundary) at_boundary(i, state);
  }
}

/// The adjoint of a snapshot hook that reads positions only (the lightcone): given the
/// positions x_s at snapshot a_s, set x_s_bar = dL/dx_s (it arrives sized and zeroed).
template <class T>
using SnapshotAdjoint =
    std::function<void(double a_s, const std::vector<Vec3<T>>& x_s, std::vector<Vec3<T>>& x_s_bar)>;

/// SnapshotAdjoint of the device integrator: the same contract on views of device memory.
template <class T>
using DeviceSnapshotAdjoint = std::function<void(double a_s, particles::Vec3View<const T> x_s,
                                                 particles::Vec3View<T> x_s_bar)>;

/// dL/d(coefficients) of a fixed-point run, step by step: the kick factors of the first and
/// second half kicks, the drift factors, and the sum of what the force adjoint returned (for
/// the PM force, dL/dOmega_m); for each snapshot (sorted by a), the step whose half-step state
/// it was drifted from (steps for one at a_steps.front(), not drifted) and dL/d(its drift
/// factor D(a_i, a_s, a_h)). The cosmology turns them into parameter derivatives (docs/design.md,
/// "The adjoint": dL/dtheta = sum_c dL/dc dc/dtheta); the drift factor of a snapshot also
/// carries the dependence on a_s.
struct IntegratorGradient {
  std::vector<double> kick_first, kick_second, drift;
  double force_scalar = 0.0;
  struct Snapshot {
    double a = 0.0;
    std::size_t step = 0;
    double drift = 0.0;
  };
  std::vector<Snapshot> snapshots;
};

/// The reverse pass of integrate_fixed_point over the same steps, force, stepper and snapshots.
/// On entry `state` is the final state and x_bar, p_bar hold dL/dx, dL/dp there; on return
/// x_bar, p_bar hold dL/dx, dL/dp at a_steps.front() and, in reverse mode (record null or of
/// mode reverse), `state` is the initial state, rebuilt (store and checkpoint leave it as it
/// was). `force(x, F)` is the forward force (checkpoint mode replays with it);
/// `force_and_adjoint(x, F_bar, F, x_bar)` must set F to the force at x (bit for bit force's),
/// accumulate x_bar += (dF/dx)^T F_bar and return dL/d(its scalar), as
/// PmForce::value_and_adjoint does. The snapshots of `options` get `snapshot_adjoint`
/// (required if there are any) with the positions the forward hook saw, bit for bit.
///
/// The derivatives are those of the unrounded kick-drift-kick map (the rounding of the state,
/// 2^-40 of the momenta, is not differentiated).
///
/// Checks, with a record made by integrate_fixed_point: `state` must be the run's final state
/// (InvalidArgument otherwise), and in reverse mode the rebuilt first state must be the run's,
/// bit for bit (ReversibilityError otherwise: the gradient would be wrong). Reverse mode without
/// a record checks nothing; pass one (mode reverse keeps no states, only the two digests).
///
/// Per step, forward p' = p + K1 F(x); x_s = x + D_s p' (snapshots); x' = x + D p';
/// p'' = p' + K2 F(x'). In reverse the momentum adjoint passes through both kicks unchanged, so
/// the two kicks that meet at a step boundary x_b share one force adjoint:
/// x_bar += (dF/dx(x_b))^T (K2_{b-1} + K1_b) p_bar, with dL/dK2_{b-1} = dL/dK1_b = <p_bar, F(x_b)>;
/// the drift gives p_bar += D x_bar and dL/dD = <x_bar, p'> (kick_drift.hpp), each snapshot
/// x_bar += x_s_bar, p_bar += D_s x_s_bar and dL/dD_s = <x_s_bar, p'>.
template <class T, class Force, class ForceAndAdjoint>
IntegratorGradient integrate_fixed_point_adjoint(
    const cosmology::Model<double>& cosmo, const std::vector<double>& a_steps,
    FixedPointState& state, Force&& force, ForceAndAdjoint&& force_and_adjoint,
    std::vector<std::array<T, 3>>& x_bar, std::vector<std::array<T, 3>>& p_bar,
    const IntegratorOptions& options = {}, const FixedPointRecord* record = nullptr,
    const SnapshotAdjoint<T>& snapshot_adjoint = {}) {
  const char* fn = "integrate_fixed_point_adjoint";
  detail::check_steps(a_steps, fn);
  const std::size_t n = a_steps.size() - 1;
  const AdjointMode mode = record ? record->mode : AdjointMode::reverse;
  if (record) record->validate_for(n, fn);
  state.validate(fn);
  if (record && record->has_digests && state.digest() != record->end_digest) {
    throw InvalidArgument(std::string(fn) +
                          ": the state is not the final state of the recorded run (its digest "
                          "differs); pass the state integrate_fixed_point returned, unchanged");
  }
  const std::size_t np = state.x.size();
  if (x_bar.size() != np || p_bar.size() != np) {
    throw InvalidArgument(std::string(fn) + ": x_bar and p_bar hold " +
                          std::to_string(x_bar.size()) + " and " + std::to_string(p_bar.size()) +
                          " entries for " + std::to_string(np) + " particles");
  }
  const std::vector<double> snaps =
      detail::checked_snapshots(a_steps, options, bool(snapshot_adjoint), fn);
  const StepFactors<double> factors(cosmo, options.stepper);
  IntegratorGradient g;
  g.kick_first.assign(n, 0.0);
  g.kick_second.assign(n, 0.0);
  g.drift.assign(n, 0.0);
  for (double as : snaps) g.snapshots.push_back({as, detail::snapshot_step(a_steps, as), 0.0});
  std::vector<std::array<T, 3>> x, F(np), F_bar(np), xs_bar;
  const std::ptrdiff_t m = std::ptrdiff_t(np);
  std::vector<KdkCoefficients<double>> coef;
  for (std::size_t i = 0; i < n; ++i) coef.push_back(factors.step(a_steps[i], a_steps[i + 1]));
  auto K1 = [&](std::size_t i) { return coef[i].kick_first; };
  auto K2 = [&](std::size_t i) { return coef[i].kick_second; };
  // The drift from a_i to a1 (the step's end, or a snapshot inside it).
  auto Dstep = [&](std::size_t i, double a1) {
    return factors.drift_within(a_steps[i], a_steps[i + 1], a1);
  };

  // At a boundary with positions of `at` and total kick factor k: F and the force adjoint with
  // F_bar = k p_bar in one call; returns <p_bar, F> = dL/dK of both kicks there.
  auto boundary = [&](const FixedPointState& at, double k) {
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t i = 0; i < m; ++i)
      for (int d = 0; d < 3; ++d) F_bar[i][d] = static_cast<T>(k) * p_bar[i][d];
    at.positions(x);
    g.force_scalar += force_and_adjoint(x, F_bar, F, x_bar);
    return deterministic_sum(m, [&](std::ptrdiff_t i) {
      double s = 0.0;
      for (int d = 0; d < 3; ++d) s += double(p_bar[i][d]) * double(F[i][d]);
      return s;
    });
  };
  // x_bar += D p_bar-style update: p_bar += D v, returns <v, p'> with p' the half-step momenta
  // of `h` (read from the integers as momenta() does).
  auto drift_adjoint = [&](const FixedPointState& h, double D,
                           const std::vector<std::array<T, 3>>& v) {
    const double q = h.momentum_quantum;
    const T Dt = static_cast<T>(D);
    return deterministic_sum(m, [&](std::ptrdiff_t j) {
      double s = 0.0;
      for (int d = 0; d < 3; ++d) {
        const T p_mid = static_cast<T>(double(h.p[j][d]) * q);
        p_bar[j][d] += Dt * v[j][d];
        s += double(v[j][d]) * double(p_mid);
      }
      return s;
    });
  };
  // Snapshot s at positions xs: x_bar += x_s_bar (and returns x_s_bar for the drift part).
  auto snapshot_bar = [&](double as, const FixedPointState& at) {
    at.positions(x);
    xs_bar.assign(np, {T(0), T(0), T(0)});
    snapshot_adjoint(as, x, xs_bar);
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t j = 0; j < m; ++j)
      for (int d = 0; d < 3; ++d) x_bar[j][d] += xs_bar[j][d];
  };

  // Checkpoint mode: the half-step states of the current segment, replayed from its checkpoint.
  std::vector<FixedPointState> segment;
  std::size_t segment_begin = n;
  auto half_step = [&](std::size_t i) -> const FixedPointState& {
    if (mode == AdjointMode::store) return record->half_steps[i];
    if (i < segment_begin || i >= segment_begin + segment.size()) {
      const std::size_t k = record->checkpoint_every, c = i / k * k;
      segment.assign(1, record->half_steps[i / k]);
      for (std::size_t j = c; j < i; ++j) {
        FixedPointState s = segment.back();
        detail::fixed_drift(s, Dstep(j, a_steps[j + 1]), +1);
        s.positions(x);
        force(x, F);
        detail::fixed_kick(s, K2(j), F, +1);
        detail::fixed_kick(s, K1(j + 1), F, +1);
        segment.push_back(std::move(s));
      }
      segment_begin = c;
    }
    return segment[i - segment_begin];
  };

  g.kick_second[n - 1] = boundary(state, K2(n - 1));
  std::size_t next_snap = snaps.size();  // snapshots are visited from the last
  FixedPointState snap;
  for (std::size_t i = n; i-- > 0;) {
    const double a1 = a_steps[i + 1];
    const FixedPointState* h = &state;
    if (mode == AdjointMode::reverse) {
      detail::fixed_kick(state, K2(i), F, -1);
      detail::fixed_drift(state, Dstep(i, a1), -1);
    } else {
      h = &half_step(i);
    }
    g.drift[i] = drift_adjoint(*h, Dstep(i, a1), x_bar);
    while (next_snap > 0 && g.snapshots[next_snap - 1].step == i) {
      auto& s = g.snapshots[--next_snap];
      const double Ds = Dstep(i, s.a);
      snap = *h;
      detail::fixed_drift(snap, Ds, +1);
      snapshot_bar(s.a, snap);
      s.drift = drift_adjoint(*h, Ds, xs_bar);
    }
    const double k1 = K1(i);
    const double c = boundary(*h, i > 0 ? k1 + K2(i - 1) : k1);
    if (mode == AdjointMode::reverse) detail::fixed_kick(state, k1, F, -1);
    g.kick_first[i] = c;
    if (i > 0) g.kick_second[i - 1] = c;
  }
  // Snapshots before the first step saw the initial positions (those of half_steps[0] too).
  while (next_snap > 0) {
    auto& s = g.snapshots[--next_snap];
    snapshot_bar(s.a, mode == AdjointMode::reverse ? state : half_step(0));
  }
  if (mode == AdjointMode::reverse && record && record->has_digests &&
      state.digest() != record->start_digest) {
    throw ReversibilityError(
        std::string(fn) +
        ": the reverse pass did not rebuild the run's first state bit for bit, so the gradient "
        "it computed is wrong. The force of the reverse pass (force_and_adjoint) differed from "
        "the forward pass's at some step: it must be the same deterministic function of the "
        "positions, bit for bit. Usual causes: a new FFT plan for the reverse pass made after "
        "the process loaded FFTW wisdom (share one plan: PmForce's shared_plan), a thread count "
        "that changed between the passes for a force that depends on it, or a force callable "
        "with state of its own. AdjointMode::store or checkpoint do not need exact reversal.");
  }
  return g;
}

}  // namespace diffpm::nbody
