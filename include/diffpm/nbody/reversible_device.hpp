/// \file
/// \brief The bit-exactly reversible fixed-point integrator of nbody/reversible.hpp on the device
/// backend: the state, the kicks and drifts, the forward, backward and adjoint passes in all three
/// adjoint modes, and snapshots inside steps (the lightcone), with the particles in device memory
/// from the first step to the last.
///
/// Every integer update is the CPU's (the fixed_state:: functions of reversible.hpp), so a
/// device run from the same state with a force that gives the same bits reaches the same
/// integers, and forward then backward restores every step bit for bit on any backend: the
/// increments are recomputed from the same integers and the same deterministic force. Overflow
/// is detected before a kick or drift changes anything (one reduction), so a failed update
/// leaves the state as it was. The passes follow the CPU's step for step (the same kicks,
/// drifts, snapshots and sums in the same order), so in the host emulation they give the CPU's
/// bits, and store, reverse and checkpoint give the same gradient bit for bit on any backend:
/// they see the same states and forces.
///
/// Memory: reverse mode keeps no states (flat in the steps, what a GPU run wants); store keeps
/// one state (48 bytes per particle) per step, checkpoint one per checkpoint_every steps plus a
/// segment of as many in the reverse pass. The record's states are allocated, after a pre-flight
/// check of free device memory, before the first step, so the steps allocate nothing.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/parallel.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/nbody/reversible.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::nbody {

/// FixedPointState in device memory: 3 unsigned positions and 3 signed momenta per particle,
/// packed (particle-major, as the CPU state's arrays of triples).
struct DeviceFixedPointState {
  std::array<double, 3> box{};
  double momentum_quantum = 0.0;
  device::Buffer<std::uint64_t> x;
  device::Buffer<std::int64_t> p;
  std::size_t size = 0;

  /// A device copy of a host state (validated first).
  static DeviceFixedPointState upload(const FixedPointState& s) {
    s.validate("device fixed-point state");
    DeviceFixedPointState d;
    d.box = s.box;
    d.momentum_quantum = s.momentum_quantum;
    d.size = s.x.size();
    d.x = device::Buffer<std::uint64_t>(3 * d.size);
    d.p = device::Buffer<std::int64_t>(3 * d.size);
    if (d.size) {
      d.x.upload(s.x[0].data());
      d.p.upload(s.p[0].data());
    }
    return d;
  }
  /// FixedPointState::from on the device: positions and momenta (device views, T explicit) rounded
  /// to the same integers by the same functions (fixed_state::integer_position, increment), with
  /// the momentum quantum `quantum` or, for 0, quantum_for(max |p|) (a maximum: the same value in
  /// any order). Throws InvalidArgument, before allocating the state, for non-finite values or
  /// momenta beyond 2^62 quanta.
  template <class T>
  static DeviceFixedPointState from(particles::ConstView<T> xs, particles::ConstView<T> ps,
                                    std::array<double, 3> box_lengths, double quantum = 0.0) {
    if (xs.size != ps.size) {
      throw InvalidArgument("device fixed-point state: " + std::to_string(xs.size) +
                            " positions but " + std::to_string(ps.size) + " momenta");
    }
    const std::size_t n = xs.size;
    const std::size_t bad = backend::count_if(Cuda{}, n, [=] DIFFPM_LAMBDA(std::size_t i) {
      bool ok = true;
      for (int d = 0; d < 3; ++d)
        ok = ok && std::isfinite(double(xs(i, d))) && std::isfinite(double(ps(i, d)));
      return !ok;
    });
    if (bad) {
      throw InvalidArgument("device fixed-point state: " + std::to_string(bad) +
                            " particles with a non-finite position or momentum");
    }
    const double p_max = backend::reduce_max(Cuda{}, n, 0.0, [=] DIFFPM_LAMBDA(std::size_t i) {
      double m = 0.0;
      for (int d = 0; d < 3; ++d) {
        const double v = std::fabs(double(ps(i, d)));
        m = m < v ? v : m;
      }
      return m;
    });
    FixedPointState shape;  // box and quantum, checked as the CPU's from() checks them
    shape.box = box_lengths;
    shape.momentum_quantum =
        quantum == 0.0 ? FixedPointState::quantum_for(p_max > 0.0 ? p_max : 1.0) : quantum;
    shape.validate("fixed-point state");
    const double q = shape.momentum_quantum;
    const double worst = backend::reduce_max(Cuda{}, n, 0.0, [=] DIFFPM_LAMBDA(std::size_t i) {
      double w = 0.0;
      for (int d = 0; d < 3; ++d) {
        const double o = fixed_state::overflow_magnitude(double(ps(i, d)) / q);
        w = w < o ? o : w;
      }
      return w;
    });
    if (worst > 0.0) FixedPointState::throw_overflow("momentum", worst);
    DeviceFixedPointState s;
    s.box = box_lengths;
    s.momentum_quantum = q;
    s.size = n;
    s.x = device::Buffer<std::uint64_t>(3 * n);
    s.p = device::Buffer<std::int64_t>(3 * n);
    std::uint64_t* X = s.x.data();
    std::int64_t* P = s.p.data();
    const std::array<double, 3> L = box_lengths;
    backend::for_each_index(Cuda{}, n, [=] DIFFPM_LAMBDA(std::size_t i) {
      for (int d = 0; d < 3; ++d) {
        X[3 * i + d] = fixed_state::integer_position(L[d], double(xs(i, d)));
        std::int64_t inc = 0;
        fixed_state::increment(double(ps(i, d)) / q, inc);  // fits: checked above
        P[3 * i + d] = inc;
      }
    });
    return s;
  }

  /// The host copy.
  FixedPointState download() const {
    FixedPointState s;
    s.box = box;
    s.momentum_quantum = momentum_quantum;
    s.x.resize(size);
    s.p.resize(size);
    if (size) {
      x.download(s.x[0].data());
      p.download(s.p[0].data());
    }
    return s;
  }
  /// A second device copy.
  DeviceFixedPointState clone() const {
    DeviceFixedPointState d = allocate_like(*this);
    d.assign(*this);
    return d;
  }
  /// A state of the same size, box and quantum, its integers not set.
  static DeviceFixedPointState allocate_like(const DeviceFixedPointState& s) {
    DeviceFixedPointState d;
    d.box = s.box;
    d.momentum_quantum = s.momentum_quantum;
    d.size = s.size;
    d.x = device::Buffer<std::uint64_t>(3 * s.size);
    d.p = device::Buffer<std::int64_t>(3 * s.size);
    return d;
  }
  /// Copies `s` into this state's memory (reallocated only if the sizes differ).
  void assign(const DeviceFixedPointState& s) {
    if (size != s.size || x.size() != 3 * s.size || p.size() != 3 * s.size) {
      *this = allocate_like(s);
    }
    box = s.box;
    momentum_quantum = s.momentum_quantum;
    device::copy(x.data(), s.x.data(), 3 * size * sizeof(std::uint64_t));
    device::copy(p.data(), s.p.data(), 3 * size * sizeof(std::int64_t));
  }
  /// Device bytes of a state of n particles: 3 + 3 64-bit integers each.
  static constexpr std::size_t bytes(std::size_t n) { return 48 * n; }

  /// The positions as T (device view of size particles), FixedPointState::positions'
  /// arithmetic.
  template <class T>
  void positions(particles::Vec3View<T> out) const {
    check_out(out.size, "positions");
    const std::uint64_t* X = x.data();
    const std::array<double, 3> L = box;
    backend::for_each_index(Cuda{}, size, [=] DIFFPM_LAMBDA(std::size_t i) {
      for (int d = 0; d < 3; ++d)
        out(i, d) = static_cast<T>(fixed_state::position(L[d], X[3 * i + d]));
    });
  }
  /// The momenta as T (device view), FixedPointState::momenta's arithmetic.
  template <class T>
  void momenta(particles::Vec3View<T> out) const {
    check_out(out.size, "momenta");
    const std::int64_t* P = p.data();
    const double q = momentum_quantum;
    backend::for_each_index(Cuda{}, size, [=] DIFFPM_LAMBDA(std::size_t i) {
      for (int d = 0; d < 3; ++d) out(i, d) = static_cast<T>(double(P[3 * i + d]) * q);
    });
  }

  /// FixedPointState::digest of the same integers (a sum modulo 2^64: the same value whatever
  /// the order of the reduction).
  std::uint64_t digest() const {
    const std::uint64_t* X = x.data();
    const std::int64_t* P = p.data();
    auto term = [X, P] DIFFPM_LAMBDA(std::size_t i) -> unsigned long long {
      return fixed_state::digest_term(std::uint64_t(i), X + 3 * i, P + 3 * i);
    };
    const unsigned long long sum = backend::sum_u64(Cuda{}, size, term);
    return fixed_state::digest_finish(std::uint64_t(sum), momentum_quantum, std::uint64_t(size));
  }

  void check_out(std::size_t n, const char* what) const {
    if (n != size) {
      throw InvalidArgument("device fixed-point state: a view of " + std::to_string(n) + " " +
                            what + " for " + std::to_string(size) + " particles");
    }
  }
};

namespace device_detail {

/// P += s round(K F / q_p) on the device; nothing changes if an increment would overflow.
template <class T>
void fixed_kick(DeviceFixedPointState& st, double K, particles::ConstView<T> F, int sign) {
  const double c = K / st.momentum_quantum;
  const double worst = backend::reduce_max(Cuda{}, st.size, 0.0, [=] DIFFPM_LAMBDA(std::size_t i) {
    double w = 0.0;
    for (int d = 0; d < 3; ++d) {
      const double m = fixed_state::overflow_magnitude(c * double(F(i, d)));
      w = m > w ? m : w;
    }
    return w;
  });
  if (worst > 0.0) FixedPointState::throw_overflow("kick increment", worst);
  std::int64_t* P = st.p.data();
  backend::for_each_index(Cuda{}, st.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    for (int d = 0; d < 3; ++d) {
      std::int64_t inc = 0;
      fixed_state::increment(c * double(F(i, d)), inc);
      P[3 * i + d] += sign * inc;
    }
  });
}

/// X += s round(D q_p P 2^64 / L) on the device (modular); nothing changes on overflow.
inline void fixed_drift(DeviceFixedPointState& st, double D, int sign) {
  std::array<double, 3> c;
  for (int d = 0; d < 3; ++d) c[d] = D * st.momentum_quantum * fixed_state::two_64 / st.box[d];
  const std::int64_t* P = st.p.data();
  const double worst = backend::reduce_max(Cuda{}, st.size, 0.0, [=] DIFFPM_LAMBDA(std::size_t i) {
    double w = 0.0;
    for (int d = 0; d < 3; ++d) {
      const double m = fixed_state::overflow_magnitude(c[d] * double(P[3 * i + d]));
      w = m > w ? m : w;
    }
    return w;
  });
  if (worst > 0.0) FixedPointState::throw_overflow("drift increment", worst);
  std::uint64_t* X = st.x.data();
  backend::for_each_index(Cuda{}, st.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    for (int d = 0; d < 3; ++d) {
      std::int64_t inc_signed = 0;
      fixed_state::increment(c[d] * double(P[3 * i + d]), inc_signed);
      const std::uint64_t inc = static_cast<std::uint64_t>(inc_signed);
      X[3 * i + d] = sign > 0 ? X[3 * i + d] + inc : X[3 * i + d] - inc;
    }
  });
}

/// Packed T triples in device memory (the integrator's scratch: positions, forces, F_bar).
template <class T>
struct Triples {
  device::Buffer<T> data;
  std::size_t size = 0;
  explicit Triples(std::size_t n) : data(3 * n), size(n) {}
  particles::Vec3View<T> view() const {
    T* p = data.data();
    return {{p, p + 1, p + 2}, std::ptrdiff_t(3 * sizeof(T)), size};
  }
};

/// out = k v on the device.
template <class T>
void scaled_copy(T k, particles::Vec3View<T> v, particles::Vec3View<T> out) {
  backend::for_each_index(Cuda{}, v.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    for (int d = 0; d < 3; ++d) out(i, d) = k * v(i, d);
  });
}

/// out += v on the device.
template <class T>
void add_to(particles::Vec3View<const T> v, particles::Vec3View<T> out) {
  backend::for_each_index(Cuda{}, v.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    for (int d = 0; d < 3; ++d) out(i, d) += v(i, d);
  });
}

/// sum_i sum_d a_id b_id in double, grouped as the CPU's deterministic_sum.
template <class T>
double dot(particles::ConstView<T> a, particles::ConstView<T> b) {
  return backend::deterministic_sum(Cuda{}, a.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    double s = 0.0;
    for (int d = 0; d < 3; ++d) s += double(a(i, d)) * double(b(i, d));
    return s;
  });
}

/// The drift's adjoint, as the CPU's: p_bar += D v and returns <v, p'> with p' the momenta of
/// the state (read from the integers as momenta() does).
template <class T>
double drift_adjoint(const DeviceFixedPointState& state, T Dt, particles::ConstView<T> v,
                     particles::Vec3View<T> p_bar) {
  const std::int64_t* P = state.p.data();
  const double q = state.momentum_quantum;
  return backend::deterministic_sum(Cuda{}, state.size, [=] DIFFPM_LAMBDA(std::size_t j) {
    double s = 0.0;
    for (int d = 0; d < 3; ++d) {
      const T p_mid = static_cast<T>(double(P[3 * j + d]) * q);
      p_bar(j, d) += Dt * v(j, d);
      s += double(v(j, d)) * double(p_mid);
    }
    return s;
  });
}

/// Pre-flight check of what a pass allocates besides the force: `triples` scratch arrays of 3
/// T per particle and `states` fixed-point states.
template <class T>
void require_pass_memory(std::size_t np, std::size_t triples, std::size_t states, const char* fn) {
  const std::size_t bytes =
      triples * 3 * sizeof(T) * np + states * DeviceFixedPointState::bytes(np);
  device::require_memory(bytes,
                         std::string(fn) + " with " + std::to_string(np) + " particles and " +
                             std::to_string(states) + " stored states",
                         "use AdjointMode::reverse (no stored states), a larger checkpoint "
                         "interval, or fewer particles");
}

}  // namespace device_detail

/// integrate_fixed_point (reversible.hpp) on the device: `force(x, F)` takes device views
/// (particles::Vec3View<const T> positions, particles::Vec3View<T> forces), for instance a
/// PmForce<T, Cuda> wrapped in a lambda with Omega_m. The snapshots of `options` go to `hook`
/// with device views. With `record`, the run keeps what the reverse pass of the record's mode
/// needs (cleared first; its states allocated before the first step) and the digests of its
/// first and last states. Throws OutOfMemory before allocating if the record's states, the
/// scratch and the snapshot state do not fit in free device memory.
template <class T, class Force>
void integrate_fixed_point(Cuda, const cosmology::Model<double>& cosmo,
                           const std::vector<double>& a_steps, DeviceFixedPointState& state,
                           Force&& force, const IntegratorOptions& options = {},
                           const DeviceSnapshotHook<T>& hook = {},
                           DeviceFixedPointRecord* record = nullptr) {
  const char* fn = "integrate_fixed_point (device)";
  detail::check_steps(a_steps, fn);
  if (record) record->validate(fn);
  const std::vector<double> snaps = detail::checked_snapshots(a_steps, options, bool(hook), fn);
  const std::size_t np = state.size, n = a_steps.size() - 1;
  const std::size_t kept = record ? record->expected_size(n) : 0;
  device_detail::require_pass_memory<T>(np, snaps.empty() ? 2 : 3, kept + (snaps.empty() ? 0 : 1),
                                        fn);
  const StepFactors<double> factors(cosmo, options.stepper);
  device_detail::Triples<T> x(np), F(np), p(snaps.empty() ? 0 : np);
  DeviceFixedPointState snap;
  if (!snaps.empty()) snap = DeviceFixedPointState::allocate_like(state);
  if (record) {
    record->half_steps.clear();
    for (std::size_t j = 0; j < kept; ++j)
      record->half_steps.push_back(DeviceFixedPointState::allocate_like(state));
    record->has_digests = true;
    record->start_digest = state.digest();
  }
  std::size_t next_snap = 0, next_kept = 0;
  auto snapshot = [&](double as, const DeviceFixedPointState& s) {
    s.positions<T>(x.view());
    s.momenta<T>(p.view());
    hook(as, particles::Vec3View<const T>(x.view()), particles::Vec3View<const T>(p.view()));
  };
  while (next_snap < snaps.size() && snaps[next_snap] <= a_steps.front())
    snapshot(snaps[next_snap++], state);
  state.positions(x.view());
  force(particles::Vec3View<const T>(x.view()), F.view());
  for (std::size_t i = 0; i < n; ++i) {
    const double a0 = a_steps[i], a1 = a_steps[i + 1];
    const KdkCoefficients<double> c = factors.step(a0, a1);
    device_detail::fixed_kick<T>(state, c.kick_first, F.view(), +1);
    if (record && record->keeps(i)) record->half_steps[next_kept++].assign(state);
    while (next_snap < snaps.size() && snaps[next_snap] <= a1) {
      const double as = snaps[next_snap++];
      snap.assign(state);
      device_detail::fixed_drift(snap, factors.drift_within(a0, a1, as), +1);
      snapshot(as, snap);
    }
    device_detail::fixed_drift(state, c.drift, +1);
    state.positions(x.view());
    force(particles::Vec3View<const T>(x.view()), F.view());
    device_detail::fixed_kick<T>(state, c.kick_second, F.view(), +1);
  }
  if (record) record->end_digest = state.digest();
}

/// integrate_fixed_point_backward (reversible.hpp) on the device: from the state at
/// a_steps.back() it restores the state at a_steps.front() bit for bit (snapshots play no part).
template <class T, class Force>
void integrate_fixed_point_backward(Cuda, const cosmology::Model<double>& cosmo,
                                    const std::vector<double>& a_steps,
                                    DeviceFixedPointState& state, Force&& force,
                                    const IntegratorOptions& options = {}) {
  const char* fn = "integrate_fixed_point_backward (device)";
  detail::check_steps(a_steps, fn);
  device_detail::require_pass_memory<T>(state.size, 2, 0, fn);
  const StepFactors<double> factors(cosmo, options.stepper);
  device_detail::Triples<T> x(state.size), F(state.size);
  state.positions(x.view());
  force(particles::Vec3View<const T>(x.view()), F.view());
  for (std::size_t i = a_steps.size() - 1; i-- > 0;) {
    const KdkCoefficients<double> c = factors.step(a_steps[i], a_steps[i + 1]);
    device_detail::fixed_kick<T>(state, c.kick_second, F.view(), -1);
    device_detail::fixed_drift(state, c.drift, -1);
    state.positions(x.view());
    force(particles::Vec3View<const T>(x.view()), F.view());
    device_detail::fixed_kick<T>(state, c.kick_first, F.view(), -1);
  }
}

/// integrate_fixed_point_adjoint (reversible.hpp) on the device, in the mode of `record`
/// (reverse without one), with its contract: on entry `state` is the final state and x_bar,
/// p_bar (device views) hold dL/dx, dL/dp there; on return they hold dL/dx, dL/dp at
/// a_steps.front() and, in reverse mode, `state` is the initial state, rebuilt bit for bit
/// (checked against the record's digests when given: InvalidArgument if `state` is not the run's
/// final state, ReversibilityError if the rebuilt first state differs). `force(x, F)` is the
/// forward force (checkpoint mode replays with it); `force_and_adjoint(x, F_bar, F, x_bar)`
/// takes device views and must set F to the force at x (bit for bit the forward force),
/// accumulate x_bar += (dF/dx)^T F_bar and return dL/d(its scalar), as
/// PmForce<T, Cuda>::value_and_adjoint does. The snapshots of `options` get `snapshot_adjoint`
/// (required if there are any) with the positions the forward hook saw, bit for bit. The sums
/// over particles are grouped as on the CPU (backend::deterministic_sum), and every step is the
/// CPU adjoint's, in the same order.
template <class T, class Force, class ForceAndAdjoint>
IntegratorGradient integrate_fixed_point_adjoint(
    Cuda, const cosmology::Model<double>& cosmo, const std::vector<double>& a_steps,
    DeviceFixedPointState& state, Force&& force, ForceAndAdjoint&& force_and_adjoint,
    particles::Vec3View<T> x_bar, particles::Vec3View<T> p_bar,
    const IntegratorOptions& options = {}, const DeviceFixedPointRecord* record = nullptr,
    const DeviceSnapshotAdjoint<T>& snapshot_adjoint = {}) {
  const char* fn = "integrate_fixed_point_adjoint (device)";
  detail::check_steps(a_steps, fn);
  const std::size_t n = a_steps.size() - 1;
  const AdjointMode mode = record ? record->mode : AdjointMode::reverse;
  if (record) record->validate_for(n, fn);
  if (record && record->has_digests && state.digest() != record->end_digest) {
    throw InvalidArgument(std::string(fn) +
                          ": the state is not the final state of the recorded run (its digest "
                          "differs); pass the state integrate_fixed_point returned, unchanged");
  }
  const std::size_t np = state.size;
  if (x_bar.size != np || p_bar.size != np) {
    throw InvalidArgument(std::string(fn) + ": x_bar and p_bar hold " + std::to_string(x_bar.size) +
                          " and " + std::to_string(p_bar.size) + " entries for " +
                          std::to_string(np) + " particles");
  }
  const std::vector<double> snaps =
      detail::checked_snapshots(a_steps, options, bool(snapshot_adjoint), fn);
  const std::size_t segment_states =
      mode == AdjointMode::checkpoint ? std::min(record->checkpoint_every, n) : 0;
  device_detail::require_pass_memory<T>(np, snaps.empty() ? 3 : 4,
                                        segment_states + (snaps.empty() ? 0 : 1), fn);
  const StepFactors<double> factors(cosmo, options.stepper);
  IntegratorGradient g;
  g.kick_first.assign(n, 0.0);
  g.kick_second.assign(n, 0.0);
  g.drift.assign(n, 0.0);
  for (double as : snaps) g.snapshots.push_back({as, detail::snapshot_step(a_steps, as), 0.0});
  std::vector<KdkCoefficients<double>> coef;
  for (std::size_t i = 0; i < n; ++i) coef.push_back(factors.step(a_steps[i], a_steps[i + 1]));
  auto K1 = [&](std::size_t i) { return coef[i].kick_first; };
  auto K2 = [&](std::size_t i) { return coef[i].kick_second; };
  // The drift from a_i to a1 (the step's end, or a snapshot inside it).
  auto Dstep = [&](std::size_t i, double a1) {
    return factors.drift_within(a_steps[i], a_steps[i + 1], a1);
  };
  device_detail::Triples<T> x(np), F(np), F_bar(np), xs_bar(snaps.empty() ? 0 : np);
  const particles::Vec3View<T> Fv = F.view(), Fbv = F_bar.view();
  const particles::Vec3View<const T> Fc(Fv);

  // At a boundary with the positions of `at` and total kick factor k: F and the force adjoint
  // with F_bar = k p_bar in one call; returns <p_bar, F> = dL/dK of both kicks there.
  auto boundary = [&](const DeviceFixedPointState& at, double k) {
    device_detail::scaled_copy(static_cast<T>(k), p_bar, Fbv);
    at.positions(x.view());
    g.force_scalar += force_and_adjoint(particles::Vec3View<const T>(x.view()),
                                        particles::Vec3View<const T>(Fbv), Fv, x_bar);
    return device_detail::dot<T>(particles::Vec3View<const T>(p_bar), Fc);
  };
  // p_bar += D v; returns <v, p'> with p' the half-step momenta of `h`.
  auto drift_adjoint = [&](const DeviceFixedPointState& h, double D,
                           particles::Vec3View<const T> v) {
    return device_detail::drift_adjoint<T>(h, static_cast<T>(D), v, p_bar);
  };
  // Snapshot at a_s with the positions of `at`: x_bar += x_s_bar (kept in xs_bar for the drift).
  auto snapshot_bar = [&](double as, const DeviceFixedPointState& at) {
    at.positions(x.view());
    xs_bar.data.zero();
    snapshot_adjoint(as, particles::Vec3View<const T>(x.view()), xs_bar.view());
    device_detail::add_to<T>(particles::Vec3View<const T>(xs_bar.view()), x_bar);
  };

  // Checkpoint mode: the half-step states of the current segment, replayed from its checkpoint
  // into states allocated once.
  std::vector<DeviceFixedPointState> segment;
  std::size_t segment_begin = n, segment_size = 0;
  auto half_step = [&](std::size_t i) -> const DeviceFixedPointState& {
    if (mode == AdjointMode::store) return record->half_steps[i];
    if (i < segment_begin || i >= segment_begin + segment_size) {
      const std::size_t k = record->checkpoint_every, c = i / k * k;
      while (segment.size() < i - c + 1)
        segment.push_back(DeviceFixedPointState::allocate_like(state));
      segment[0].assign(record->half_steps[i / k]);
      for (std::size_t j = c; j < i; ++j) {
        DeviceFixedPointState& s = segment[j - c + 1];
        s.assign(segment[j - c]);
        device_detail::fixed_drift(s, Dstep(j, a_steps[j + 1]), +1);
        s.positions(x.view());
        force(particles::Vec3View<const T>(x.view()), Fv);
        device_detail::fixed_kick<T>(s, K2(j), Fc, +1);
        device_detail::fixed_kick<T>(s, K1(j + 1), Fc, +1);
      }
      segment_begin = c;
      segment_size = i - c + 1;
    }
    return segment[i - segment_begin];
  };

  g.kick_second[n - 1] = boundary(state, K2(n - 1));
  std::size_t next_snap = snaps.size();  // snapshots are visited from the last
  DeviceFixedPointState snap;
  if (!snaps.empty()) snap = DeviceFixedPointState::allocate_like(state);
  for (std::size_t i = n; i-- > 0;) {
    const double a1 = a_steps[i + 1];
    const DeviceFixedPointState* h = &state;
    if (mode == AdjointMode::reverse) {
      device_detail::fixed_kick<T>(state, K2(i), Fc, -1);
      device_detail::fixed_drift(state, Dstep(i, a1), -1);
    } else {
      h = &half_step(i);
    }
    g.drift[i] = drift_adjoint(*h, Dstep(i, a1), particles::Vec3View<const T>(x_bar));
    while (next_snap > 0 && g.snapshots[next_snap - 1].step == i) {
      auto& sn = g.snapshots[--next_snap];
      const double Ds = Dstep(i, sn.a);
      snap.assign(*h);
      device_detail::fixed_drift(snap, Ds, +1);
      snapshot_bar(sn.a, snap);
      sn.drift = drift_adjoint(*h, Ds, particles::Vec3View<const T>(xs_bar.view()));
    }
    const double k1 = K1(i);
    const double c = boundary(*h, i > 0 ? k1 + K2(i - 1) : k1);
    if (mode == AdjointMode::reverse) device_detail::fixed_kick<T>(state, k1, Fc, -1);
    g.kick_first[i] = c;
    if (i > 0) g.kick_second[i - 1] = c;
  }
  // Snapshots before the first step saw the initial positions (those of half_steps[0] too).
  while (next_snap > 0) {
    auto& sn = g.snapshots[--next_snap];
    snapshot_bar(sn.a, mode == AdjointMode::reverse ? state : half_step(0));
  }
  if (mode == AdjointMode::reverse && record && record->has_digests &&
      state.digest() != record->start_digest) {
    throw ReversibilityError(
        std::string(fn) +
        ": the reverse pass did not rebuild the run's first state bit for bit, so the gradient "
        "it computed is wrong. The force of the reverse pass (force_and_adjoint) differed from "
        "the forward pass's at some step: it must be the same deterministic function of the "
        "positions, bit for bit. AdjointMode::store or checkpoint do not need exact reversal.");
  }
  return g;
}

}  // namespace diffpm::nbody
