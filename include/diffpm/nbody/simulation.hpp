/// \file
/// \brief A complete forward PM simulation: Gaussian initial conditions, LPT, KDK time stepping.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/model.hpp"
#include "diffpm/ic/linear_field.hpp"
#include "diffpm/ic/white_noise.hpp"
#include "diffpm/mesh/fourier_kernels.hpp"
#include "diffpm/nbody/integrator.hpp"
#include "diffpm/nbody/pm_force.hpp"
#include "diffpm/nbody/reversible.hpp"
#include "diffpm/nbody/time_steps.hpp"
#include "diffpm/particles/lpt.hpp"
#if defined(DIFFPM_WITH_DEVICE)
#include "diffpm/backend/device/fft.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/ic/linear_field_device.hpp"
#include "diffpm/nbody/pm_force_device.hpp"
#include "diffpm/nbody/reversible_device.hpp"
#include "diffpm/particles/lpt_device.hpp"
#endif

namespace diffpm::nbody {

/// Everything a forward run needs besides the cosmology.
struct SimulationConfig {
  std::array<double, 3> box{256.0, 256.0, 256.0};  ///< side lengths, Mpc/h
  std::array<int, 3> particles{64, 64, 64};        ///< particles per side (the IC lattice)
  std::array<int, 3> mesh{128, 128, 128};          ///< force-mesh cells per side
  double a_start = 0.1;
  double a_end = 1.0;
  int steps =
      10;  ///< 0: no PM steps, particles placed by LPT at every requested a (a_start unused)
  StepSpacing spacing = StepSpacing::linear;
  int lpt_order = 2;
  std::uint64_t seed = 42;
  bool fixed_amplitude = false;
  Stepper stepper = Stepper::fastpm;
  mesh::ForceKernelOptions kernel{};
  int threads = 0;  ///< FFT threads; 0 = the OpenMP thread count
  /// Where the run goes: cpu, or cuda (the device backend, backend/device/: on the GPU in a
  /// cuda build, on the host in an omp build; the translation unit must be compiled with
  /// diffpm::device). With cuda, run_simulation makes the initial conditions on the device too
  /// (white noise, linear field, LPT, the fixed-point state) and runs every PM step there; only
  /// delta_L and the final state come back. The result is bitwise the CPU's in an omp build and
  /// equal to FFT rounding on a GPU (docs/design.md, "Backends"). LPT-only runs and runs with
  /// snapshots take their LPT on the CPU and cross to the device once; snapshots after a_start
  /// reach a host hook as host copies (EvolveOptions::device_hook avoids the copies).
  BackendKind backend = BackendKind::cpu;

  /// Throws InvalidArgument naming the value for inconsistent settings.
  void validate() const {
    mesh::Grid(particles, box).validate();
    mesh::Grid(mesh, box).validate();
    if (lpt_order != 1 && lpt_order != 2) {
      throw InvalidArgument("lpt_order = " + std::to_string(lpt_order) + " (must be 1 or 2)");
    }
    if (steps == 0) {  // LPT only: a_start plays no part
      if (!(a_end > 0.0) || !(a_end <= 1.0)) {
        throw InvalidArgument("a_end = " + format_number(a_end) + " (must be in (0, 1])");
      }
    } else {
      time_steps(a_start, a_end, steps, spacing);  // validates a_start, a_end, steps
    }
  }
};

/// The initial conditions on the particle lattice and the state they evolve into.
template <class T>
struct SimulationResult {
  /// At a_end: positions in [0, L) (Mpc/h) and momenta (integrator.hpp's convention), read
  /// from the fixed-point state the steps ran on (nbody/reversible.hpp); an LPT-only run gives
  /// the LPT particles unrounded.
  ParticleState<T> state;
  /// delta_L(k) at a = 1 on the IC grid (the untranslated lattice: the particles carry
  /// particles::kink_free_offset of the force mesh, a phase e^{-i k . offset} away).
  mesh::ComplexField<T> delta_linear;
};

/// What evolve() takes besides the cosmology, the configuration and the LPT stage.
template <class T>
struct EvolveOptions {
  /// Scale factors in (0, a_end] at which `hook` sees the particles: from LPT at a <= a_start
  /// (all of them in an LPT-only run), else from the integrator (drifted to a).
  std::vector<double> snapshots;
  SnapshotHook<T> hook;
  /// The force mesh's FFT plan; null: evolve makes one. A run whose gradient will be taken
  /// passes the plan its reverse pass will use (backend/cpu/fft.hpp, "Determinism").
  std::shared_ptr<const FftPlan<T>> force_plan;
  /// If not null, what the integrator keeps for the reverse pass (mode and checkpoint interval
  /// set by the caller), and the integrator's options (stepper, and the snapshots it saw).
  FixedPointRecord* record = nullptr;
  IntegratorOptions* integrator_options = nullptr;
  /// With cfg.backend == cuda: the record in device memory (`record` must then be null), a hook
  /// that sees the integrator's snapshots as device views (without it, `hook` gets host copies:
  /// one download of the particles per snapshot), and the device force, shared with a later
  /// reverse pass (null: evolve makes one). The snapshots from LPT always go to `hook`.
  DeviceFixedPointRecord* device_record = nullptr;
  DeviceSnapshotHook<T> device_hook;
  std::shared_ptr<PmForce<T, Cuda>> device_force;
  /// If not null, an LPT-only run (steps == 0) also writes the LPT particles at a_end here,
  /// unrounded (the returned fixed-point state is them rounded).
  ParticleState<T>* lpt_final = nullptr;
  std::function<void(const std::string&)> progress;
};

namespace detail {

#if defined(DIFFPM_WITH_DEVICE)
/// Host copies of device views (one copy when packed, as the integrator's scratch is).
template <class T>
void download(particles::Vec3View<const T> v, std::vector<Vec3<T>>& out) {
  out.resize(v.size);
  if (v.size == 0) return;
  const bool packed = v.stride == std::ptrdiff_t(3 * sizeof(T)) &&
                      v.component[1] == v.component[0] + 1 && v.component[2] == v.component[0] + 2;
  if (packed) {
    device::copy(out[0].data(), v.component[0], 3 * v.size * sizeof(T));
    return;
  }
  for (std::size_t i = 0; i < v.size; ++i)
    for (int d = 0; d < 3; ++d) device::copy(&out[i][d], &v(i, d), sizeof(T));
}

/// The PM steps at the scale factors `a` from a device state, on the device
/// (nbody/reversible_device.hpp, PmForce<T, Cuda>), with eo's device record, snapshot hook (or
/// host copies for eo.hook) and force; returns the final state, downloaded. Throws OutOfMemory,
/// before allocating, unless the positions and forces, the snapshot state, the record's states
/// and the force's meshes fit beside the state.
template <class T>
FixedPointState steps_on_device(const cosmology::Model<double>& cosmo, const SimulationConfig& cfg,
                                const std::vector<double>& a, DeviceFixedPointState& dstate,
                                const IntegratorOptions& opt, const EvolveOptions<T>& eo) {
  const mesh::Grid force_grid(cfg.mesh, cfg.box);
  const std::size_t np = dstate.size;
  if (eo.device_force && (eo.device_force->grid() != force_grid)) {
    throw InvalidArgument("run_simulation: the device force is on a " +
                          eo.device_force->grid().to_string() + " mesh, the run's force mesh is " +
                          force_grid.to_string());
  }
  const std::size_t state_bytes = DeviceFixedPointState::bytes(np);
  std::size_t bytes = np * 6 * sizeof(T);
  if (!opt.snapshots.empty()) bytes += state_bytes + np * 3 * sizeof(T);
  if (eo.device_record) bytes += eo.device_record->expected_size(a.size() - 1) * state_bytes;
  if (!eo.device_force) bytes += PmForce<T, Cuda>::device_bytes(force_grid, cfg.kernel);
  device::require_memory(bytes,
                         "the PM steps of run_simulation with " + std::to_string(np) +
                             " particles on a " + force_grid.to_string() + " force mesh",
                         "use fewer particles or a smaller mesh" +
                             std::string(eo.device_record ? ", or AdjointMode::reverse" : ""));
  if (eo.progress)
    eo.progress(std::string("PM steps on the device (") + device::system_name() + ")");
  const auto force = eo.device_force
                         ? eo.device_force
                         : std::make_shared<PmForce<T, Cuda>>(force_grid, cfg.kernel, np);
  const double Om = cosmo.Omega_m();
  std::size_t calls = 0;
  DeviceSnapshotHook<T> hook = eo.device_hook;
  ParticleState<T> snap;
  if (!hook && eo.hook) {
    hook = [&](double as, particles::Vec3View<const T> x, particles::Vec3View<const T> p) {
      download(x, snap.x);
      download(p, snap.p);
      eo.hook(as, snap.x, snap.p);
    };
  }
  integrate_fixed_point<T>(
      Cuda{}, cosmo, a, dstate,
      [&](particles::Vec3View<const T> x, particles::Vec3View<T> F) {
        if (calls > 0 && eo.progress) {
          char msg[96];
          std::snprintf(msg, sizeof msg, "step %zu/%d to a = %.4g", calls, cfg.steps, a[calls]);
          eo.progress(msg);
        }
        ++calls;
        (*force)(x, Om, F);
      },
      opt, hook, eo.device_record);
  return dstate.download();
}
#endif

/// The PM steps of evolve() on the device backend: the state crosses to the device once, the
/// steps run there (steps_on_device), the final state comes back.
template <class T>
FixedPointState evolve_on_device(const cosmology::Model<double>& cosmo, const SimulationConfig& cfg,
                                 const std::vector<double>& a, const FixedPointState& state,
                                 const IntegratorOptions& opt, const EvolveOptions<T>& eo) {
  if (eo.record) {
    throw InvalidArgument(
        "run_simulation: backend cuda keeps the record of a gradient run in device memory: pass "
        "EvolveOptions::device_record, not record");
  }
#if defined(DIFFPM_WITH_DEVICE)
  device::require_device("run_simulation (backend cuda)");
  device::require_memory(
      DeviceFixedPointState::bytes(state.x.size()),
      "the fixed-point state of " + std::to_string(state.x.size()) + " particles",
      "use fewer particles");
  auto dstate = DeviceFixedPointState::upload(state);
  return steps_on_device<T>(cosmo, cfg, a, dstate, opt, eo);
#else
  (void)cosmo, (void)cfg, (void)a, (void)state, (void)opt;
  throw InvalidArgument(
      "run_simulation: backend cuda, but this code was compiled without the device backend "
      "(configure diffpm with -DDIFFPM_DEVICE=cuda or omp and link diffpm::device)");
#endif
}

/// run_simulation on the device from the start, when the configuration asks for the device
/// backend and the run has PM steps and no snapshots (the other runs take evolve(), whose
/// LPT stage is the CPU's): the white noise of cfg.seed made on the device, or the caller's
/// noise or delta_L uploaded once; the linear field, LPT at a_start (Lpt<T, Cuda>), the
/// fixed-point state and the PM steps, all on the device. delta_L and the final state come
/// back, nothing else crosses. The same functions as the CPU path at every stage, so in an omp
/// build the result is the CPU run's bit for bit. Empty when the run does not qualify.
template <class T>
std::optional<SimulationResult<T>> run_on_device(
    const cosmology::Model<double>& cosmo, const SimulationConfig& cfg,
    const IntegratorOptions& options, const mesh::RealField<T>* noise,
    const mesh::ComplexField<T>* delta_linear,
    const std::function<void(const std::string&)>& progress) {
  if (cfg.backend != BackendKind::cuda || cfg.steps == 0 || !options.snapshots.empty()) {
    return std::nullopt;
  }
#if defined(DIFFPM_WITH_DEVICE)
  device::require_device("run_simulation (backend cuda)");
  const mesh::Grid ic_grid(cfg.particles, cfg.box), force_grid(cfg.mesh, cfg.box);
  const std::size_t np = ic_grid.size();
  // The peak of the initial conditions: the LPT stage's eight real meshes and two half
  // spectra, delta_L and the particles' positions and momenta, about 20 T per lattice point.
  device::require_memory(
      20 * sizeof(T) * np,
      "the initial conditions of run_simulation on a " + ic_grid.to_string() + " lattice",
      "use fewer particles");
  auto say = [&](const std::string& m) {
    if (progress) progress(m);
  };
  auto plan = std::make_shared<const FftPlan<T, Cuda>>(ic_grid);
  device::Buffer<std::complex<T>> delta(ic_grid.complex_size());
  const mesh::ComplexView<T> delta_view = mesh::packed(delta.data(), ic_grid);
  SimulationResult<T> r;
  if (delta_linear) {
    delta.upload(delta_linear->data.data());
    r.delta_linear = *delta_linear;
  } else {
    device::Buffer<T> w(ic_grid.size());
    if (noise) {
      w.upload(noise->data.data());
    } else {
      say("initial conditions on the device: white noise of seed " + std::to_string(cfg.seed) +
          " on the " + ic_grid.to_string() + " lattice");
      ic::white_noise(Cuda{}, cfg.seed, mesh::packed(w.data(), ic_grid));
    }
    const device::Buffer<double> amplitude(ic::mode_amplitudes(ic_grid, cosmo, 1.0));
    ic::LinearFieldOptions lo;
    lo.fixed_amplitude = cfg.fixed_amplitude;
    ic::linear_field(Cuda{}, *plan, mesh::packed(static_cast<const T*>(w.data()), ic_grid),
                     amplitude, delta_view, lo);
    r.delta_linear = mesh::ComplexField<T>(ic_grid);
    delta.download(r.delta_linear.data.data());
  }
  say(std::to_string(cfg.lpt_order) + "LPT at a = " + format_number(cfg.a_start) +
      " on the device");
  device::Buffer<T> x(3 * np), p(3 * np);
  const particles::Vec3View<T> xv{
      {x.data(), x.data() + 1, x.data() + 2}, std::ptrdiff_t(3 * sizeof(T)), np};
  const particles::Vec3View<T> pv{
      {p.data(), p.data() + 1, p.data() + 2}, std::ptrdiff_t(3 * sizeof(T)), np};
  {
    // Particles off the force mesh's CIC kinks, as evolve() places them; the displacement
    // fields are freed before the fixed-point state and the force mesh are allocated.
    particles::Lpt<T, Cuda> lpt(plan);
    lpt.compute(delta_view, cfg.lpt_order);
    lpt.particles(particles::lpt_factors(cosmo, cfg.a_start, cfg.lpt_order), xv, pv,
                  particles::kink_free_offset(force_grid));
  }
  delta = device::Buffer<std::complex<T>>();
  plan.reset();  // and the FFT library's work area with it
  auto state = DeviceFixedPointState::from<T>(xv, pv, cfg.box);
  x = device::Buffer<T>();
  p = device::Buffer<T>();
  IntegratorOptions opt;
  opt.stepper = cfg.stepper;
  EvolveOptions<T> eo;
  eo.progress = progress;
  const FixedPointState final_state = steps_on_device<T>(
      cosmo, cfg, time_steps(cfg.a_start, cfg.a_end, cfg.steps, cfg.spacing), state, opt, eo);
  final_state.positions(r.state.x);
  final_state.momenta(r.state.p);
  return r;
#else
  (void)cosmo, (void)noise, (void)delta_linear, (void)progress;
  throw InvalidArgument(
      "run_simulation: backend cuda, but this code was compiled without the device backend "
      "(configure diffpm with -DDIFFPM_DEVICE=cuda or omp and link diffpm::device)");
#endif
}

}  // namespace detail

/// The stages of every forward run after the linear field (docs/design.md, "Data flow"), shared
/// by run_simulation, run_lensing_simulation and model::ForwardModel: the snapshots at
/// a <= a_start from LPT, then LPT at a_start (a_end in an LPT-only run) rounded to the
/// fixed-point state, and `steps` kick-drift-kick steps to a_end on it (nbody/reversible.hpp:
/// the exactly reversible integrator, so that a run and the forward pass of a gradient are one
/// code path), the other snapshots drifted from it. `lpt` holds compute()'s displacement
/// fields; it is freed before the force mesh is allocated. Returns the final state. Throws
/// InvalidArgument for a snapshot outside (0, a_end] or snapshots without a hook.
template <class T>
FixedPointState evolve(const cosmology::Model<double>& cosmo, const SimulationConfig& cfg,
                       std::unique_ptr<particles::Lpt<T>>& lpt, const EvolveOptions<T>& eo) {
  const int threads = cfg.threads > 0 ? cfg.threads : max_threads();
  const mesh::Grid force_grid(cfg.mesh, cfg.box);
  auto say = [&](const std::string& s) {
    if (eo.progress) eo.progress(s);
  };
  std::vector<double> snaps = eo.snapshots;
  std::sort(snaps.begin(), snaps.end());
  for (double s : snaps) {
    if (!(s > 0.0 && s <= cfg.a_end)) {
      throw InvalidArgument("run_simulation: snapshot a = " + format_number(s) +
                            " is outside (0, a_end = " + format_number(cfg.a_end) + "]");
    }
  }
  if (!snaps.empty() && !eo.hook)
    throw InvalidArgument("run_simulation: snapshots requested but no hook given");

  // LPT particles at a, off the force mesh's CIC kinks (particles::kink_free_offset).
  const auto offset = particles::kink_free_offset(force_grid);
  auto lpt_state = [&](double a, ParticleState<T>& state) {
    const auto factors = particles::lpt_factors(cosmo, a, cfg.lpt_order);
    lpt->particles(factors, state.x, state.p, offset);
  };
  // Snapshots from LPT: before a_start, or every one in an LPT-only run.
  std::size_t n_lpt_snaps = 0;
  {
    ParticleState<T> snap;
    while (n_lpt_snaps < snaps.size() && (cfg.steps == 0 || snaps[n_lpt_snaps] <= cfg.a_start)) {
      const double as = snaps[n_lpt_snaps++];
      say(std::to_string(cfg.lpt_order) + "LPT at a = " + format_number(as) + " (snapshot)");
      lpt_state(as, snap);
      eo.hook(as, snap.x, snap.p);
    }
  }
  const double a_lpt = cfg.steps == 0 ? cfg.a_end : cfg.a_start;
  say(std::to_string(cfg.lpt_order) + "LPT at a = " + format_number(a_lpt));
  FixedPointState state;
  {
    ParticleState<T> init;
    lpt_state(a_lpt, init);
    // The displacement fields go before the fixed-point state and the force mesh are allocated:
    // the peak of a run is then the larger of (LPT fields + init) and the integration's.
    lpt.reset();
    state = FixedPointState::from(init, cfg.box);
    if (cfg.steps == 0 && eo.lpt_final) *eo.lpt_final = std::move(init);
  }
  IntegratorOptions opt;
  opt.stepper = cfg.stepper;
  opt.snapshots.assign(snaps.begin() + std::ptrdiff_t(n_lpt_snaps), snaps.end());
  if (eo.integrator_options) *eo.integrator_options = opt;
  if (cfg.steps == 0) return state;
  const auto a = time_steps(cfg.a_start, cfg.a_end, cfg.steps, cfg.spacing);
  if (cfg.backend == BackendKind::cuda)
    return detail::evolve_on_device<T>(cosmo, cfg, a, state, opt, eo);

  PmForce<T> force(
      eo.force_plan ? eo.force_plan : std::make_shared<const FftPlan<T>>(force_grid, threads),
      cfg.kernel, state.x.size());
  const double Om = cosmo.Omega_m();
  std::size_t calls = 0;
  integrate_fixed_point<T>(
      cosmo, a, state,
      [&](const particles::Positions<T>& x, particles::Positions<T>& F) {
        if (calls > 0) {
          char msg[96];
          std::snprintf(msg, sizeof msg, "step %zu/%d to a = %.4g", calls, cfg.steps, a[calls]);
          say(msg);
        }
        ++calls;
        force(x, Om, F);
      },
      opt, eo.hook, eo.record);
  return state;
}

namespace detail {

/// Throws InvalidArgument unless `field` lies on `grid` with every value finite.
template <class Field>
void check_initial_field(const Field& field, const mesh::Grid& grid, std::size_t size,
                         const char* what) {
  if (field.grid != grid || field.data.size() != size) {
    throw InvalidArgument(std::string("run_simulation: the ") + what + " is on a " +
                          field.grid.to_string() + " mesh, the particle lattice is " +
                          grid.to_string());
  }
  for (std::size_t c = 0; c < field.data.size(); ++c) {
    using std::isfinite;
    using V = typename decltype(field.data)::value_type;
    bool ok;
    if constexpr (std::is_floating_point_v<V>) {
      ok = isfinite(field.data[c]);
    } else {
      ok = isfinite(field.data[c].real()) && isfinite(field.data[c].imag());
    }
    if (!ok) {
      throw InvalidArgument(std::string("run_simulation: the ") + what +
                            " has a non-finite value at " + "entry " + std::to_string(c));
    }
  }
}

/// The LPT stage of a run (its FFT plan also makes the linear field).
template <class T>
std::unique_ptr<particles::Lpt<T>> make_lpt(const SimulationConfig& cfg) {
  return std::make_unique<particles::Lpt<T>>(mesh::Grid(cfg.particles, cfg.box),
                                             std::array<int, 3>{0, 0, 0},
                                             cfg.threads > 0 ? cfg.threads : max_threads());
}

template <class T>
SimulationResult<T> run_from_linear_field(const cosmology::Model<double>& cosmo,
                                          const SimulationConfig& cfg,
                                          std::unique_ptr<particles::Lpt<T>> lpt,
                                          mesh::ComplexField<T> delta_linear,
                                          const IntegratorOptions& options,
                                          const SnapshotHook<T>& hook,
                                          const std::function<void(const std::string&)>& progress);

}  // namespace detail

/// Runs the standard forward model (docs/design.md, "Data flow"):
///   white noise (Philox, seed) on the lattice grid -> delta_L(k) = w sqrt(P_lin(k, a=1) N/V)
///   -> LPT displacements and momenta at a_start -> `steps` KDK steps to a_end on the force mesh,
/// through evolve(): the stages and the exactly reversible fixed-point integrator that the
/// differentiable model (model/forward_model.hpp) records, so a run with and a run without a
/// gradient are one code path. `hook` (optional) sees positions at the `snapshots` scale
/// factors (integrator.hpp; from the integrator, wrapped into [0, L)).
/// Snapshots at a <= a_start, and all of them when cfg.steps == 0 (an LPT-only run, whose
/// final state is LPT at a_end), get the LPT particles at that a: LPT is the model's
/// trajectory before a_start. Snapshots must lie in (0, a_end].
template <class T>
SimulationResult<T> run_simulation(const cosmology::Model<double>& cosmo,
                                   const SimulationConfig& cfg,
                                   const IntegratorOptions& options = {},
                                   const SnapshotHook<T>& hook = {},
                                   const std::function<void(const std::string&)>& progress = {}) {
  cfg.validate();
  if (auto r = detail::run_on_device<T>(cosmo, cfg, options, nullptr, nullptr, progress)) {
    return std::move(*r);
  }
  if (progress) {
    progress("initial conditions: white noise of seed " + std::to_string(cfg.seed) + " on the " +
             mesh::Grid(cfg.particles, cfg.box).to_string() + " lattice");
  }
  return run_simulation<T>(cosmo, cfg,
                           ic::white_noise<T>(mesh::Grid(cfg.particles, cfg.box), cfg.seed),
                           options, hook, progress);
}

/// The same run from the caller's white noise (one value per particle, on the lattice grid
/// Grid(cfg.particles, cfg.box), unit variance; cfg.seed is not used): a sampler's or another
/// code's noise field, or the same noise at another resolution's lattice. Throws
/// InvalidArgument if the noise is on another grid or not finite.
template <class T>
SimulationResult<T> run_simulation(const cosmology::Model<double>& cosmo,
                                   const SimulationConfig& cfg,
                                   const mesh::RealField<T>& white_noise,
                                   const IntegratorOptions& options = {},
                                   const SnapshotHook<T>& hook = {},
                                   const std::function<void(const std::string&)>& progress = {}) {
  cfg.validate();
  const mesh::Grid ic_grid(cfg.particles, cfg.box);
  detail::check_initial_field(white_noise, ic_grid, ic_grid.size(), "white noise");
  if (auto r = detail::run_on_device<T>(cosmo, cfg, options, &white_noise, nullptr, progress)) {
    return std::move(*r);
  }
  if (progress) progress("initial conditions: linear field from the white noise");
  auto lpt = detail::make_lpt<T>(cfg);
  mesh::ComplexField<T> delta(ic_grid);
  ic::LinearFieldOptions lo;
  lo.fixed_amplitude = cfg.fixed_amplitude;
  ic::linear_field(lpt->plan(), white_noise, ic::mode_amplitudes(ic_grid, cosmo, 1.0), delta, lo);
  return detail::run_from_linear_field<T>(cosmo, cfg, std::move(lpt), std::move(delta), options,
                                          hook, progress);
}

/// The same run from the caller's linear density delta_L(k) at a = 1 (the half spectrum on the
/// lattice grid, in the normalisation of ic/linear_field.hpp: (V/N^2)<|delta_k|^2> = P_lin(k)),
/// e.g. constrained initial conditions; cfg.seed and cfg.fixed_amplitude are not used, nor is
/// the cosmology's P_lin. Throws InvalidArgument if the field is on another grid or not finite.
template <class T>
SimulationResult<T> run_simulation(const cosmology::Model<double>& cosmo,
                                   const SimulationConfig& cfg,
                                   const mesh::ComplexField<T>& delta_linear,
                                   const IntegratorOptions& options = {},
                                   const SnapshotHook<T>& hook = {},
                                   const std::function<void(const std::string&)>& progress = {}) {
  cfg.validate();
  const mesh::Grid ic_grid(cfg.particles, cfg.box);
  detail::check_initial_field(delta_linear, ic_grid, ic_grid.complex_size(), "linear field");
  if (auto r = detail::run_on_device<T>(cosmo, cfg, options, nullptr, &delta_linear, progress)) {
    return std::move(*r);
  }
  return detail::run_from_linear_field<T>(cosmo, cfg, detail::make_lpt<T>(cfg), delta_linear,
                                          options, hook, progress);
}

namespace detail {

template <class T>
SimulationResult<T> run_from_linear_field(const cosmology::Model<double>& cosmo,
                                          const SimulationConfig& cfg,
                                          std::unique_ptr<particles::Lpt<T>> lpt,
                                          mesh::ComplexField<T> delta_linear,
                                          const IntegratorOptions& options,
                                          const SnapshotHook<T>& hook,
                                          const std::function<void(const std::string&)>& progress) {
  SimulationResult<T> r;
  r.delta_linear = std::move(delta_linear);
  lpt->compute(r.delta_linear, cfg.lpt_order);
  EvolveOptions<T> eo;
  eo.snapshots = options.snapshots;
  eo.hook = hook;
  eo.progress = progress;
  eo.lpt_final = &r.state;
  FixedPointState final_state = evolve<T>(cosmo, cfg, lpt, eo);
  if (cfg.steps > 0) {
    final_state.positions(r.state.x);
    final_state.momenta(r.state.p);
  }
  return r;
}

}  // namespace detail

}  // namespace diffpm::nbody
