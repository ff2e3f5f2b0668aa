/// \file
/// \brief The differentiable forward model: (cosmological parameters, white noise) -> convergence
/// maps and/or the final density, and its gradient pass (docs/adjoint.md).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/autodiff/tape.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/ic/linear_field.hpp"
#include "diffpm/ic/white_noise.hpp"
#include "diffpm/lensing/lensing_efficiency.hpp"
#include "diffpm/lensing/lensing_simulation.hpp"
#include "diffpm/lensing/lightcone.hpp"
#include "diffpm/lensing/redshift_distribution.hpp"
#include "diffpm/model/adjoints.hpp"
#include "diffpm/model/stages/cosmologies.hpp"
#include "diffpm/model/stages/final_density_stage.hpp"
#include "diffpm/model/stages/integration_stage.hpp"
#include "diffpm/model/stages/lightcone_stage.hpp"
#include "diffpm/model/stages/linear_field_stage.hpp"
#include "diffpm/model/stages/lpt_stage.hpp"
#include "diffpm/nbody/reversible.hpp"
#include "diffpm/nbody/simulation.hpp"
#include "diffpm/nbody/time_steps.hpp"
#include "diffpm/particles/lpt.hpp"
#if defined(DIFFPM_WITH_DEVICE)
#include "diffpm/lensing/lightcone_device.hpp"
#include "diffpm/model/stages/integration_stage_device.hpp"
#include "diffpm/nbody/pm_force_device.hpp"
#include "diffpm/nbody/reversible_device.hpp"
#endif

namespace diffpm::model {

/// A lightcone and the source distributions whose convergence maps the model returns.
struct LensingSetup {
  lensing::LensingConfig config;
  std::vector<lensing::SourceDistribution> sources;
};

/// What the model simulates, what it returns, and how its gradient pass rebuilds the run.
struct ModelConfig {
  /// Box, lattice, force mesh, time steps, LPT order, stepper, force kernel, fixed amplitude.
  /// Its `seed` is not used: the white noise is the model's input (ForwardModel::white_noise
  /// makes the noise of a seed, the same as nbody::run_simulation's).
  nbody::SimulationConfig simulation;
  cosmology::CosmologyOptions cosmology;  ///< transfer function (and table) of P_lin
  std::optional<LensingSetup> lensing;    ///< convergence maps, one per source
  bool final_density = false;             ///< the overdensity at a_end on the force mesh
  /// The PGD small-scale correction (nbody/pgd.hpp) of what the model paints: the final
  /// density (at a_end) and every lightcone plane (at its a_i), differentiated with respect to
  /// the positions, theta and its own parameters (ModelGradient::pgd). The returned particles
  /// and snapshots stay the PM run's. On the force mesh, with the force's Laplacian and
  /// finite-difference gradient; with backend cuda, the planes' correction runs on the device
  /// (nbody/pgd_device.hpp) and the final density's on the CPU.
  std::optional<nbody::PgdParameters> pgd;
  /// Outputs that are returned but not differentiated (gradient() takes no adjoint for them):
  bool final_particles = false;  ///< ModelOutput::particles, positions and momenta at a_end
  bool linear_field = false;     ///< ModelOutput::delta_linear, delta_L(k) at a = 1
  /// ModelOutput::snapshots: the particles at these scale factors in (0, a_end], from LPT at
  /// a <= a_start (all of them with steps = 0), else from the integrator (as run_simulation's).
  std::vector<double> snapshots;
  nbody::AdjointMode adjoint = nbody::AdjointMode::reverse;
  std::size_t checkpoint_every = 8;  ///< steps per checkpoint (AdjointMode::checkpoint)
  /// The cosmology whose plane distances choose the lightcone planes' angular grids
  /// (PlaneGrid::covering(map, cell, chi_i)): a discretisation, fixed whatever the parameters
  /// of a run, so that the model is one smooth function of them in every process and finite
  /// differences across runs see what the gradient sees. Default: Planck 2018.
  cosmology::Parameters<double> plane_grid_cosmology{};

  /// Throws InvalidArgument naming the setting for an inconsistent configuration.
  void validate() const {
    simulation.validate();
    if (lensing) {
      lensing->config.validate();
      if (lensing->sources.empty())
        throw InvalidArgument("model: lensing without source redshifts or distributions");
    }
    if (!lensing && !final_density && !final_particles && !linear_field && snapshots.empty()) {
      throw InvalidArgument(
          "model: no output (ask for lensing maps, the final density, particles, the linear "
          "field or snapshots)");
    }
    for (double a : snapshots) {
      if (!(a > 0.0 && a <= simulation.a_end)) {
        throw InvalidArgument("model: snapshot a = " + format_number(a) +
                              " is outside (0, a_end = " + format_number(simulation.a_end) + "]");
      }
    }
    if (adjoint == nbody::AdjointMode::checkpoint && checkpoint_every == 0)
      throw InvalidArgument("model: checkpoint every 0 steps (must be >= 1)");
    if (lensing && lensing->config.pgd) {
      throw InvalidArgument(
          "model: lensing config has a pgd correction; the model's is ModelConfig::pgd (it "
          "corrects the planes and the final density alike)");
    }
    if (pgd) {
      pgd->validate("model: pgd");
      if (!lensing && !final_density) {
        throw InvalidArgument(
            "model: pgd without an output it corrects (the final density or lensing maps)");
      }
    }
  }
};

/// The model's outputs: kappa[s] for source s (lensing), the final overdensity (final_density).
template <class T>
struct ModelOutput {
  std::vector<lensing::Map<T>> kappa;
  mesh::RealField<T> density;
  nbody::ParticleState<T> particles;   ///< final_particles: positions in [0, L), momenta
  mesh::ComplexField<T> delta_linear;  ///< linear_field
  std::vector<nbody::ParticleState<T>> snapshots;  ///< ModelConfig::snapshots, in that order
};

/// dL/dtheta and dL/dnoise.
template <class T>
struct ModelGradient {
  /// dL/dtheta in the order of cosmology::Parameter. With lensing, the Omega_k entry is NaN:
  /// the lightcone is flat-sky in a flat universe (chi where f_K(chi) would be), so its
  /// derivative with respect to curvature is not the model's.
  std::array<double, cosmology::n_parameters> parameters{};
  mesh::RealField<T> noise;  ///< dL/dw(x) on the lattice, w the white noise
  nbody::PgdGradient pgd;    ///< dL/d(the PGD parameters); zeros without ModelConfig::pgd

  double operator[](cosmology::Parameter p) const { return parameters[static_cast<int>(p)]; }
};

/// Whether ForwardModel::forward records its stages for a gradient.
enum class Recording {
  on,  ///< the stages are recorded on the tape; gradient() may follow
  off  ///< a forward run only: nothing is kept for a reverse pass, no dual cosmology is built
};

/// The forward model of docs/design.md ("Data flow") as one differentiable function:
///   (theta, w) -> delta_L = sqrt(P_lin(k; theta) N/V) r2c(w) -> LPT at a_start
///   -> fixed-point KDK to a_end (nbody/reversible.hpp), lightcone planes painted on the way
///   -> Born convergence maps; and/or the final overdensity (CIC on the force mesh), both
///   optionally after the PGD correction (ModelConfig::pgd); and, not
///   differentiated, the final particles, delta_L and snapshots (ModelConfig),
/// and its gradient: give dL/dkappa (and/or dL/ddensity), get dL/dtheta for every cosmological
/// parameter and dL/dw on the lattice.
///
///   ForwardModel<double> model(config);
///   auto noise = model.white_noise(seed);
///   const auto& out = model.forward(params, noise);       // out.kappa[s], out.density
///   ... kappa_bar[s] = dL/dkappa_s ...
///   ModelGradient<double> g = model.gradient(kappa_bar);  // g[Parameter::sigma8], g.noise
///
/// The forward pass is nbody::evolve, the code of every run (run_simulation's too). With
/// Recording::on, forward() records the stages of the run on a tape (autodiff/tape.hpp) as
/// objects (model/stages/): the lightcone's coefficients, the linear field, LPT, each lightcone
/// plane painted from LPT, the integration with its planes, the final density. Each stage owns,
/// or shares with the other stages of the run, what its vector-Jacobian product needs, and
/// nothing of the model: a model can be moved between forward() and gradient(). gradient()
/// replays the stages' vjps once (a second gradient() needs a new forward(): in reverse mode
/// the pass consumes the final state). The scalar coefficients each vjp meets (sqrt(P_lin(k)),
/// the LPT growth factors, the kick and drift factors, Omega_m, each plane's chi_i, a_i and Born
/// weight, the shells' width) are computed once more as ParameterDuals by the same templated
/// function that gave their values, and their adjoints are pulled back onto the parameters
/// (model/parameter_pullback.hpp).
///
/// The integration runs on the fixed-point state of nbody/reversible.hpp in every adjoint mode,
/// so store, reverse and checkpoint give the same forward bits and the same gradient bits, and
/// Recording::off gives the same forward bits as Recording::on.
/// The gradient is that of the unrounded map (the state's rounding, 2^-40 of the momenta and
/// 2^-64 of the box, is not differentiated; finite differences of the model agree to 1e-4 and
/// better, tests/model/test_forward_model.cpp).
///
/// With simulation.backend = cuda (a translation unit compiled with diffpm::device), the PM steps,
/// the lightcone planes they pass and the reverse pass of both run on the device backend
/// (model/stages/integration_stage_device.hpp), on one PmForce<T, Cuda> for the model's life;
/// the linear field, LPT and the final density stay on the CPU. In the host emulation the
/// outputs and the gradient are the CPU backend's bit for bit (docs/design.md, "Backends").
///
/// Discretisation that does not depend on theta, so that the map is a smooth function of it
/// and finite differences see what the gradient sees: the time steps, the number of planes, and
/// the planes' angular grids, chosen from ModelConfig::plane_grid_cosmology's plane distances
/// (PlaneGrid::covering). Planes move with theta (chi_i = (i+1) chi_max / (K+1), a_i =
/// a(chi_i)); the gradient follows them.
template <class T>
class ForwardModel {
 public:
  explicit ForwardModel(ModelConfig config) : cfg_(std::move(config)) {
    cfg_.validate();
    const auto& s = cfg_.simulation;
    ic_grid_ = mesh::Grid(s.particles, s.box);
    force_grid_ = mesh::Grid(s.mesh, s.box);
    threads_ = s.threads > 0 ? s.threads : max_threads();
    if (s.steps > 0) a_steps_ = nbody::time_steps(s.a_start, s.a_end, s.steps, s.spacing);
    // One plan per mesh for the model's lifetime: the gradient pass runs the very transforms
    // of the forward pass, whatever FFTW wisdom the host program loads or makes in between
    // (backend/cpu/fft.hpp, "Determinism").
    ic_plan_ = std::make_shared<const FftPlan<T>>(ic_grid_, threads_);
    if (s.backend == BackendKind::cuda) {
      // The PM steps and their reverse pass on the device, on one force for the model's life
      // (its FFT plan, like the CPU's, must be the same in both passes).
#if defined(DIFFPM_WITH_DEVICE)
      device::require_device("model (backend cuda)");
      device_force_ =
          std::make_shared<nbody::PmForce<T, Cuda>>(force_grid_, s.kernel, ic_grid_.size());
#else
      throw InvalidArgument(
          "model: backend cuda, but this code was compiled without the device backend "
          "(configure diffpm with -DDIFFPM_DEVICE=cuda or omp and link diffpm::device)");
#endif
    } else {
      force_plan_ = std::make_shared<const FftPlan<T>>(force_grid_, threads_);
    }
    if (cfg_.pgd) {
      // On the force's plan (CPU), else a CPU plan of the force mesh; the force's Laplacian and
      // gradient, its smoothing replaced by PGD's band filter.
      mesh::ForceKernelOptions kernel = s.kernel;
      kernel.smoothing_scale = 0.0;
      auto plan =
          force_plan_ ? force_plan_ : std::make_shared<const FftPlan<T>>(force_grid_, threads_);
      pgd_ = std::make_shared<nbody::PgdCorrection<T>>(std::move(plan), kernel, ic_grid_.size());
    }
  }
  /// Movable (the tape's stages hold what they need, not the model), not copyable (a recorded
  /// run has one gradient).
  ForwardModel(ForwardModel&&) = default;
  ForwardModel& operator=(ForwardModel&&) = default;
  ForwardModel(const ForwardModel&) = delete;
  ForwardModel& operator=(const ForwardModel&) = delete;

  const ModelConfig& config() const { return cfg_; }
  /// The lattice on which the white noise lives (one value per particle).
  const mesh::Grid& noise_grid() const { return ic_grid_; }
  /// The white noise of `seed` on the lattice (ic/white_noise.hpp; run_simulation's).
  mesh::RealField<T> white_noise(std::uint64_t seed) const {
    return ic::white_noise<T>(ic_grid_, seed);
  }
  /// The tape of the last forward() (empty after gradient()); its timings() after gradient().
  const autodiff::Tape<Adjoints<T>>& tape() const { return tape_; }
  /// Progress lines of the forward runs (LPT, each step), as run_simulation's; empty: none.
  void set_progress(std::function<void(const std::string&)> progress) {
    progress_ = std::move(progress);
  }

  /// Runs the model at the parameters `params`. Throws InvalidArgument for invalid parameters
  /// (naming them), noise on another grid or not finite, a lightcone the run cannot reach, or
  /// Omega_k != 0 with lensing (lensing::require_flat_universe).
  const ModelOutput<T>& forward(const cosmology::Parameters<double>& params,
                                const mesh::RealField<T>& noise,
                                Recording recording = Recording::on) {
    cosmology::validate(params);
    Cosmologies c;
    c.values = std::make_shared<const cosmology::Cosmology<double>>(params, cfg_.cosmology);
    if (recording == Recording::on) {
      c.duals = std::make_shared<const cosmology::Cosmology<cosmology::ParameterDual>>(
          cosmology::seed_parameters(params), cfg_.cosmology);
    }
    return run(std::move(c), noise, recording);
  }

  /// Runs the model in a cosmology the caller built: diffpm's Cosmology with options of its
  /// own, a TabulatedCosmology of the caller's tables, or the caller's own cosmology::Model
  /// (its P_lin, not ModelConfig::cosmology's, draws the linear field). Without the
  /// parameters' dual numbers, a gradient() after it gives dL/dw and NaN for every parameter.
  /// Throws as the other forward().
  const ModelOutput<T>& forward(std::shared_ptr<const cosmology::Model<double>> cosmology,
                                const mesh::RealField<T>& noise,
                                Recording recording = Recording::on) {
    if (!cosmology) throw InvalidArgument("model: null cosmology");
    Cosmologies c;
    c.values = std::move(cosmology);
    return run(std::move(c), noise, recording);
  }

  /// The gradient of a loss L whose adjoints with respect to the outputs of the last forward()
  /// are kappa_bar[s] = dL/dkappa_s (one map per source; empty for none) and density_bar =
  /// dL/ddensity (empty for none). Throws InvalidArgument if no forward() with Recording::on
  /// ran since the last gradient(), or if the adjoints do not match the outputs.
  ModelGradient<T> gradient(const std::vector<lensing::Map<T>>& kappa_bar,
                            const mesh::RealField<T>& density_bar = {}) {
    if (!ready_ || tape_.empty()) {
      throw InvalidArgument(
          "model gradient: no forward run to differentiate (each forward() with "
          "Recording::on allows one gradient())");
    }
    check_adjoints(kappa_bar, density_bar);
    Adjoints<T> adj;
    adj.kappa_bar = &kappa_bar;
    adj.density_bar = density_bar.data.empty() ? nullptr : &density_bar;
    adj.x_bar.assign(ic_grid_.size(), {T(0), T(0), T(0)});
    adj.p_bar.assign(ic_grid_.size(), {T(0), T(0), T(0)});
    ready_ = false;
    tape_.backward(adj);

    ModelGradient<T> g;
    if (parameter_gradient_)
      g.parameters = adj.parameters.gradient();
    else
      g.parameters.fill(std::numeric_limits<double>::quiet_NaN());
    if (cfg_.lensing)
      g.parameters[int(cosmology::Parameter::Omega_k)] = std::numeric_limits<double>::quiet_NaN();
    g.noise = std::move(adj.noise_bar);
    g.pgd = adj.pgd;
    return g;
  }

 private:
  double a_lpt() const {
    return cfg_.simulation.steps == 0 ? cfg_.simulation.a_end : cfg_.simulation.a_start;
  }
  ic::LinearFieldOptions linear_options() const {
    ic::LinearFieldOptions o;
    o.fixed_amplitude = cfg_.simulation.fixed_amplitude;
    return o;
  }
  /// N_cells / N_p: the CIC weight that paints 1 + delta.
  double density_weight() const { return double(force_grid_.size()) / double(ic_grid_.size()); }

  /// The stages of a run (docs/design.md, "Data flow"), each recorded after its forward pass
  /// with Recording::on.
  const ModelOutput<T>& run(Cosmologies c, const mesh::RealField<T>& noise, Recording recording) {
    if (cfg_.lensing) {
      lensing::require_flat_universe(c.values->Omega_k(), "model");
      lensing::require_flat_universe(cfg_.plane_grid_cosmology.Omega_k,
                                     "model: plane_grid_cosmology");
    }
    check_noise(noise);
    tape_.clear();
    ready_ = false;
    out_ = ModelOutput<T>{};
    parameter_gradient_ = bool(c.duals);
    const bool record = recording == Recording::on;
    const auto& s = cfg_.simulation;

    // The lightcone first: its coefficients' pullback runs after every plane's adjoint.
    std::shared_ptr<LightconeRecord<T>> cone;
    if (cfg_.lensing) {
      cone = make_lightcone(c);
      if (pgd_) {
        cone->pgd = pgd_;
        cone->pgd_parameters = *cfg_.pgd;
      }
#if defined(DIFFPM_WITH_DEVICE)
      if (cfg_.pgd && device_force_) {
        mesh::ForceKernelOptions kernel = s.kernel;
        kernel.smoothing_scale = 0.0;
        if (!device_pgd_) {
          device_pgd_ =
              std::make_shared<nbody::PgdCorrection<T, Cuda>>(force_grid_, kernel, ic_grid_.size());
        }
        cone->device_pgd = device_pgd_;
        cone->pgd_parameters = *cfg_.pgd;
      }
#endif
      if (record) tape_.record(std::make_unique<LightconeStage<T>>(cone));
    }

    // Linear field and LPT.
    std::vector<double> amplitude;
    mesh::ComplexField<T> delta;
    LinearFieldStage<T>::forward(*ic_plan_, noise, *c.values, linear_options(), amplitude, delta);
    if (record) {
      tape_.record(std::make_unique<LinearFieldStage<T>>(ic_plan_, noise, std::move(amplitude),
                                                         linear_options(), c));
    }
    auto lpt = std::make_unique<particles::Lpt<T>>(ic_plan_);
    lpt->compute(delta, s.lpt_order);
    std::shared_ptr<LptFields<T>> fields;
    if (record) {
      if (cfg_.linear_field) out_.delta_linear = delta;
      fields = std::make_shared<LptFields<T>>(ic_plan_, std::move(delta), s.lpt_order);
      tape_.record(std::make_unique<LptStage<T>>(fields, a_lpt(), c));
    } else if (cfg_.linear_field) {
      out_.delta_linear = std::move(delta);
    }
    delta = {};

    // LPT, the planes and snapshots it gives, and the integration with the others: the stages
    // every run shares (nbody::evolve). Snapshots are the lightcone planes and the requested
    // ones, each scale factor once.
    nbody::EvolveOptions<T> eo;
    if (cone) eo.snapshots = cone->plane_a;
    for (double a : cfg_.snapshots)
      if (!cone || !cone->is_plane(a)) eo.snapshots.push_back(a);
    out_.snapshots.resize(cfg_.snapshots.size());
    const auto offset = particles::kink_free_offset(force_grid_);
    if (!eo.snapshots.empty()) {
      eo.hook = [&](double a, const particles::Positions<T>& x, const particles::Positions<T>& p) {
        if (cone && cone->is_plane(a)) {
          cone->paint(a, x);
          if (record && (s.steps == 0 || a <= s.a_start)) {  // from LPT (nbody::evolve's rule)
            tape_.record(std::make_unique<LptPlaneStage<T>>(fields, cone, a, offset, c));
          }
        }
        for (std::size_t i = 0; i < cfg_.snapshots.size(); ++i)
          if (cfg_.snapshots[i] == a) out_.snapshots[i] = nbody::ParticleState<T>{x, p};
      };
    }
    nbody::FixedPointRecord fp_record;
    fp_record.mode = cfg_.adjoint;
    fp_record.checkpoint_every = cfg_.checkpoint_every;
    nbody::IntegratorOptions options;
    eo.force_plan = force_plan_;
    eo.record = record && !device_force_ ? &fp_record : nullptr;
    std::shared_ptr<nbody::DeviceFixedPointRecord> device_record;
#if defined(DIFFPM_WITH_DEVICE)
    if (device_force_) {
      // The integrator's snapshots as device views: the planes are painted on the device, the
      // requested snapshots copied out.
      eo.device_force = device_force_;
      if (record) {
        device_record = std::make_shared<nbody::DeviceFixedPointRecord>();
        device_record->mode = cfg_.adjoint;
        device_record->checkpoint_every = cfg_.checkpoint_every;
        eo.device_record = device_record.get();
      }
      if (!eo.snapshots.empty()) {
        eo.device_hook = [&](double a, particles::Vec3View<const T> x,
                             particles::Vec3View<const T> p) {
          if (cone && cone->is_plane(a)) paint_planes(Cuda{}, *cone, a, x);
          for (std::size_t i = 0; i < cfg_.snapshots.size(); ++i) {
            if (cfg_.snapshots[i] != a) continue;
            nbody::detail::download(x, out_.snapshots[i].x);
            nbody::detail::download(p, out_.snapshots[i].p);
          }
        };
      }
    }
#endif
    eo.integrator_options = &options;
    eo.progress = progress_;
    if (s.steps == 0 && cfg_.final_particles) eo.lpt_final = &out_.particles;
    auto state = std::make_shared<nbody::FixedPointState>(
        nbody::evolve<T>(*c.values, s, lpt, eo));  // frees lpt (the vjp rebuilds it)
    if (s.steps > 0 && cfg_.final_particles) {
      state->positions(out_.particles.x);
      state->momenta(out_.particles.p);
    }
    if (record && s.steps > 0 && !device_force_) {
      tape_.record(std::make_unique<IntegrationStage<T>>(state, std::move(fp_record),
                                                         std::move(options), a_steps_, force_plan_,
                                                         s.kernel, c, cone));
    }
#if defined(DIFFPM_WITH_DEVICE)
    if (record && s.steps > 0 && device_force_) {
      tape_.record(std::make_unique<DeviceIntegrationStage<T>>(
          state, std::move(device_record), std::move(options), a_steps_, device_force_, c, cone));
    }
#endif

    if (cone) out_.kappa = cone->cone->convergence();
    if (cfg_.final_density) {
      particles::Positions<T> x;
      state->positions(x);
      PgdStep<T> pgd;
      if (pgd_) pgd = PgdStep<T>{pgd_, *cfg_.pgd, s.a_end};
      FinalDensityStage<T>::forward(x, force_grid_, density_weight(), pgd, out_.density);
      if (record) {
        tape_.record(std::make_unique<FinalDensityStage<T>>(state, density_weight(), pgd));
      }
    }
    ready_ = record;
    return out_;
  }

  void check_noise(const mesh::RealField<T>& noise) const {
    if (noise.grid != ic_grid_ || noise.data.size() != ic_grid_.size()) {
      throw InvalidArgument("model: the noise is on a " + noise.grid.to_string() +
                            " grid, the model's lattice is " + ic_grid_.to_string());
    }
    for (std::size_t c = 0; c < noise.data.size(); ++c) {
      if (!std::isfinite(double(noise.data[c]))) {
        throw InvalidArgument("model: white noise value " + format_number(double(noise.data[c])) +
                              " in cell " + std::to_string(c) + " (must be finite)");
      }
    }
  }

  void check_adjoints(const std::vector<lensing::Map<T>>& kappa_bar,
                      const mesh::RealField<T>& density_bar) const {
    if (!kappa_bar.empty()) {
      if (!cfg_.lensing)
        throw InvalidArgument("model gradient: map adjoints given, but the model has no lensing");
      if (kappa_bar.size() != cfg_.lensing->sources.size()) {
        throw InvalidArgument("model gradient: " + std::to_string(kappa_bar.size()) +
                              " map adjoints for " + std::to_string(cfg_.lensing->sources.size()) +
                              " sources");
      }
      for (const auto& m : kappa_bar) {
        if (m.geometry != cfg_.lensing->config.map || m.data.size() != m.geometry.size()) {
          throw InvalidArgument("model gradient: a map adjoint of " +
                                std::to_string(m.geometry.pixels) + " pixels, " +
                                format_number(m.geometry.fov_deg) + " deg; the maps have " +
                                std::to_string(cfg_.lensing->config.map.pixels) + " pixels, " +
                                format_number(cfg_.lensing->config.map.fov_deg) + " deg");
        }
      }
    }
    if (!density_bar.data.empty()) {
      if (!cfg_.final_density)
        throw InvalidArgument("model gradient: a density adjoint given, but final_density is off");
      if (density_bar.grid != force_grid_ || density_bar.data.size() != force_grid_.size())
        throw InvalidArgument("model gradient: the density adjoint is not on the force mesh");
    }
  }

  /// The lightcone of a run, on the planes' fixed angular grids.
  std::shared_ptr<LightconeRecord<T>> make_lightcone(const Cosmologies& c) {
    const auto& L = *cfg_.lensing;
    if (plane_grids_.empty()) plane_grids_ = reference_plane_grids();
    auto cone = std::make_shared<LightconeRecord<T>>(
        c, L.sources, L.config.planes,
        lensing::Replicas::centred(cfg_.simulation.box, L.config.random_shifts, L.config.shift_seed,
                                   L.config.random_orientations),
        plane_grids_, L.config.map);
    const double a_nearest = cone->shells.a.front();
    if (a_nearest > cfg_.simulation.a_end) {
      throw InvalidArgument(
          "model: the nearest lightcone plane is at a = " + format_number(a_nearest) +
          ", after a_end = " + format_number(cfg_.simulation.a_end) + " (set a_end = 1)");
    }
    return cone;
  }

  /// The planes' angular grids, from plane_grid_cosmology's shells (see ModelConfig).
  std::vector<lensing::PlaneGrid> reference_plane_grids() const {
    const auto& L = *cfg_.lensing;
    const cosmology::Cosmology<double> ref(cfg_.plane_grid_cosmology, cfg_.cosmology);
    double chi_max = 0.0;
    for (const auto& src : L.sources)
      chi_max = std::max(chi_max, lensing::LensingEfficiency<double>(ref, src).chi_max());
    const auto shells = lensing::Shells<double>::make(ref.background(), chi_max, L.config.planes);
    const auto& sim = cfg_.simulation;
    const double cell = L.config.plane_cell > 0.0 ? L.config.plane_cell : sim.box[1] / sim.mesh[1];
    std::vector<lensing::PlaneGrid> grids;
    for (double chi : shells.chi)
      grids.push_back(lensing::PlaneGrid::covering(L.config.map, cell, chi));
    return grids;
  }

  ModelConfig cfg_;
  mesh::Grid ic_grid_, force_grid_;
  int threads_ = 1;
  std::shared_ptr<const FftPlan<T>> ic_plan_, force_plan_;     ///< force_plan_: backend cpu
  std::shared_ptr<nbody::PmForce<T, Cuda>> device_force_;      ///< backend cuda
  std::shared_ptr<nbody::PgdCorrection<T>> pgd_;               ///< ModelConfig::pgd
  std::shared_ptr<nbody::PgdCorrection<T, Cuda>> device_pgd_;  ///< its planes on the device
  std::vector<double> a_steps_;
  std::vector<lensing::PlaneGrid> plane_grids_;
  std::function<void(const std::string&)> progress_;
  autodiff::Tape<Adjoints<T>> tape_;
  bool ready_ = false;               ///< a recorded run awaits its gradient
  bool parameter_gradient_ = false;  ///< the recorded run has duals
  ModelOutput<T> out_;
};

}  // namespace diffpm::model
