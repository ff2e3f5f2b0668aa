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
#include "diffpm/lensing/born.hpp"
#include "diffpm/lensing/lensing_efficiency.hpp"
#include "diffpm/lensing/lensing_simulation.hpp"
#include "diffpm/lensing/lightcone.hpp"
#include "diffpm/lensing/lightcone_coefficients.hpp"
#include "diffpm/lensing/redshift_distribution.hpp"
#include "diffpm/model/parameter_pullback.hpp"
#include "diffpm/nbody/pm_force.hpp"
#include "diffpm/nbody/reversible.hpp"
#include "diffpm/nbody/simulation.hpp"
#include "diffpm/nbody/time_steps.hpp"
#include "diffpm/particles/cic.hpp"
#include "diffpm/particles/lpt.hpp"

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

  double operator[](cosmology::Parameter p) const { return parameters[static_cast<int>(p)]; }
};

/// The forward model of docs/design.md ("Data flow") as one differentiable function:
///   (theta, w) -> delta_L = sqrt(P_lin(k; theta) N/V) r2c(w) -> LPT at a_start
///   -> fixed-point KDK to a_end (nbody/reversible.hpp), lightcone planes painted on the way
///   -> Born convergence maps; and/or the final overdensity (CIC on the force mesh); and, not
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
/// forward() records the operations on a tape (autodiff/tape.hpp): linear field, LPT, each
/// lightcone plane painted from LPT, the integration with its planes, the final density.
/// gradient() replays their reverse functions once (a second gradient() needs a new forward():
/// in reverse mode the pass consumes the final state). The scalar coefficients each reverse
/// function meets (sqrt(P_lin(k)), the LPT growth factors, the kick and drift factors, Omega_m,
/// each plane's chi_i, a_i and Born weight, the shells' width) are computed once more as
/// ParameterDuals by the same cosmology code, and their adjoints are pulled back onto the
/// parameters (model/parameter_pullback.hpp).
///
/// The integration runs on the fixed-point state of nbody/reversible.hpp in every adjoint mode,
/// so store, reverse and checkpoint give the same forward bits and the same gradient bits.
/// The gradient is that of the unrounded map (the state's rounding, 2^-40 of the momenta and
/// 2^-64 of the box, is not differentiated; finite differences of the model agree to 1e-4 and
/// better, tests/model/test_forward_model.cpp).
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
    force_plan_ = std::make_shared<const FftPlan<T>>(force_grid_, threads_);
  }
  /// Not copyable or movable: the tape of a forward run refers to this object, so a copy or a
  /// move between forward() and gradient() would replay it on the wrong one. Hold models by
  /// std::unique_ptr to store or pass them around.
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
  const autodiff::Tape& tape() const { return tape_; }
  /// Progress lines of the forward runs (LPT, each step), as run_simulation's; empty: none.
  void set_progress(std::function<void(const std::string&)> progress) {
    progress_ = std::move(progress);
  }

  /// Runs the model. Throws InvalidArgument for invalid parameters (naming them), noise on
  /// another grid or not finite, a lightcone the run cannot reach, or Omega_k != 0 with lensing
  /// (lensing::require_flat_universe).
  const ModelOutput<T>& forward(const cosmology::Parameters<double>& params,
                                const mesh::RealField<T>& noise) {
    cosmology::validate(params);
    if (cfg_.lensing) {
      lensing::require_flat_universe(params.Omega_k, "model");
      lensing::require_flat_universe(cfg_.plane_grid_cosmology.Omega_k,
                                     "model: plane_grid_cosmology");
    }
    check_noise(noise);
    tape_.clear();
    ready_ = false;
    const auto& s = cfg_.simulation;
    cosmo_ = std::make_unique<cosmology::Cosmology<double>>(params, cfg_.cosmology);
    dual_ = std::make_unique<cosmology::Cosmology<cosmology::ParameterDual>>(
        cosmology::seed_parameters(params), cfg_.cosmology);
    noise_ = noise;
    out_ = ModelOutput<T>{};

    // Linear field and LPT.
    amplitude_ = ic::mode_amplitudes(ic_grid_, *cosmo_, 1.0);
    lpt_ = std::make_unique<particles::Lpt<T>>(ic_plan_);
    ic::linear_field(lpt_->plan(), noise_, amplitude_, delta_, linear_options());
    tape_.record("linear field", [this] { reverse_linear_field(); });
    lpt_->compute(delta_, s.lpt_order);
    tape_.record("LPT", [this] { reverse_lpt(); });

    // LPT, the planes and snapshots it gives, and the integration with the others: the stages
    // every run shares (nbody::evolve), recorded here. Snapshots are the lightcone planes and
    // the requested ones, each scale factor once.
    nbody::EvolveOptions<T> eo;
    plane_a_.clear();
    if (cfg_.lensing) {
      build_lightcone();
      plane_a_ = cone_->scale_factors();
      std::sort(plane_a_.begin(), plane_a_.end());
    }
    eo.snapshots = plane_a_;
    for (double a : cfg_.snapshots)
      if (!is_plane(a)) eo.snapshots.push_back(a);
    out_.snapshots.resize(cfg_.snapshots.size());
    if (!eo.snapshots.empty()) {
      eo.hook = [this, &s](double a, const particles::Positions<T>& x,
                           const particles::Positions<T>& p) {
        if (is_plane(a)) {
          cone_->paint(a, x);
          if (s.steps == 0 || a <= s.a_start)  // painted from LPT (nbody::evolve's rule)
            tape_.record("lightcone plane from LPT", [this, a] { reverse_lpt_plane(a); });
        }
        for (std::size_t i = 0; i < cfg_.snapshots.size(); ++i)
          if (cfg_.snapshots[i] == a) out_.snapshots[i] = nbody::ParticleState<T>{x, p};
      };
    }
    record_ = nbody::FixedPointRecord{};
    record_.mode = cfg_.adjoint;
    record_.checkpoint_every = cfg_.checkpoint_every;
    eo.force_plan = force_plan_;
    eo.record = &record_;
    eo.integrator_options = &options_;
    eo.progress = progress_;
    if (s.steps == 0 && cfg_.final_particles) eo.lpt_final = &out_.particles;
    state_ = nbody::evolve<T>(*cosmo_, s, lpt_, eo);  // frees lpt_ (rebuilt by the reverse pass)
    if (s.steps > 0 && cfg_.final_particles) {
      state_.positions(out_.particles.x);
      state_.momenta(out_.particles.p);
    }
    if (cfg_.linear_field) out_.delta_linear = delta_;
    if (s.steps > 0)
      tape_.record("PM integration and lightcone", [this] { reverse_integration(); });

    if (cfg_.lensing) out_.kappa = cone_->convergence();
    if (cfg_.final_density) {
      particles::Positions<T> x;
      state_.positions(x);
      out_.density = mesh::RealField<T>(force_grid_);
      particles::paint_cic(x, out_.density, static_cast<T>(density_weight()));
      for (auto& v : out_.density.data) v -= T(1);
      tape_.record("final density", [this] { reverse_final_density(); });
    }
    ready_ = true;
    return out_;
  }

  /// The gradient of a loss L whose adjoints with respect to the outputs of the last forward()
  /// are kappa_bar[s] = dL/dkappa_s (one map per source; empty for none) and density_bar =
  /// dL/ddensity (empty for none). Throws InvalidArgument if forward() was not run since the
  /// last gradient(), or if the adjoints do not match the outputs.
  ModelGradient<T> gradient(const std::vector<lensing::Map<T>>& kappa_bar,
                            const mesh::RealField<T>& density_bar = {}) {
    if (!ready_) {
      throw InvalidArgument(
          "model gradient: no forward run to differentiate (each forward() allows one gradient())");
    }
    check_adjoints(kappa_bar, density_bar);
    kappa_bar_ = &kappa_bar;
    maps_active_ = !kappa_bar.empty();  // no map adjoints: the lightcone's reverse is skipped
    density_bar_ = density_bar.data.empty() ? nullptr : &density_bar;
    const std::size_t n = state_.x.size();
    x_bar_.assign(n, {T(0), T(0), T(0)});
    p_bar_.assign(n, {T(0), T(0), T(0)});
    cone_grad_ = lensing::LightconeGradient{};
    pullback_ = ParameterPullback{};
    ready_ = false;
    tape_.backward();
    if (cfg_.lensing) pull_back_lightcone();
    kappa_bar_ = nullptr;
    density_bar_ = nullptr;
    x_bar_ = {};
    p_bar_ = {};

    ModelGradient<T> g;
    g.parameters = pullback_.gradient();
    if (cfg_.lensing)
      g.parameters[int(cosmology::Parameter::Omega_k)] = std::numeric_limits<double>::quiet_NaN();
    g.noise = std::move(noise_bar_);
    noise_bar_ = {};
    return g;
  }

 private:
  using Dual = cosmology::ParameterDual;

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

  void check_noise(const mesh::RealField<T>& noise) const {
    if (noise.grid != ic_grid_ || noise.data.size() != ic_grid_.size()) {
      throw InvalidArgument("model: the noise is on a " + std::to_string(noise.grid.n[0]) + "x" +
                            std::to_string(noise.grid.n[1]) + "x" +
                            std::to_string(noise.grid.n[2]) + " grid, the model's lattice is " +
                            std::to_string(ic_grid_.n[0]) + "x" + std::to_string(ic_grid_.n[1]) +
                            "x" + std::to_string(ic_grid_.n[2]) + " (or other box lengths)");
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

  /// The lightcone of a run: its coefficients (shells, Born weights) in double for the run and
  /// as duals for the pullback, from the one templated lensing::lightcone_coefficients.
  void build_lightcone() {
    const auto& L = *cfg_.lensing;
    auto c = lensing::lightcone_coefficients(*cosmo_, L.sources, L.config.planes);
    auto c_dual = lensing::lightcone_coefficients(*dual_, L.sources, L.config.planes);
    shells_ = std::move(c.shells);
    shells_dual_ = std::move(c_dual.shells);
    weights_dual_ = std::move(c_dual.born_weights);
    const double a_nearest = shells_.a.front();
    if (a_nearest > cfg_.simulation.a_end) {
      throw InvalidArgument(
          "model: the nearest lightcone plane is at a = " + format_number(a_nearest) +
          ", after a_end = " + format_number(cfg_.simulation.a_end) + " (set a_end = 1)");
    }
    if (plane_grids_.empty()) plane_grids_ = reference_plane_grids();
    cone_ = std::make_unique<lensing::Lightcone<T>>(
        shells_,
        lensing::Replicas::centred(cfg_.simulation.box, L.config.random_shifts, L.config.shift_seed,
                                   L.config.random_orientations),
        plane_grids_, L.config.map, std::move(c.born_weights));
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

  /// Whether a is a lightcone plane's scale factor (plane_a_ is sorted).
  bool is_plane(double a) const { return std::binary_search(plane_a_.begin(), plane_a_.end(), a); }

  /// The dual a_i of the plane painted at a (a is one of shells_.a, exactly).
  const Dual& plane_scale_factor(double a) const {
    for (std::size_t i = 0; i < shells_.a.size(); ++i)
      if (shells_.a[i] == a) return shells_dual_.a[i];
    throw InvalidArgument("model: a = " + format_number(a) + " is not a plane's scale factor");
  }

  /// The LPT object of the reverse pass: rebuilt from delta_L on first use, accumulating.
  particles::Lpt<T>& lpt_adjoint() {
    if (!lpt_) {
      lpt_ = std::make_unique<particles::Lpt<T>>(ic_plan_);
      lpt_->compute(delta_, cfg_.simulation.lpt_order);
      lpt_->adjoint_begin();
    }
    return *lpt_;
  }

  void pull_back_lpt_factors(const Dual& a, const particles::LptFactors<double>& bar) {
    const auto f = particles::lpt_factors(*dual_, a, cfg_.simulation.lpt_order);
    pullback_.add(f.D1, bar.D1, "D1");
    pullback_.add(f.p1, bar.p1, "LPT momentum factor p1");
    if (cfg_.simulation.lpt_order == 2) {
      pullback_.add(f.D2, bar.D2, "D2");
      pullback_.add(f.p2, bar.p2, "LPT momentum factor p2");
    }
  }

  // ---- reverse functions, in the reverse of the order they were recorded ----

  void reverse_final_density() {
    if (!density_bar_) return;  // a loss on the maps only
    particles::Positions<T> x;
    state_.positions(x);  // the final state: this runs first
    T weight_bar = 0;
    particles::paint_cic_adjoint(*density_bar_, x, static_cast<T>(density_weight()), x_bar_,
                                 weight_bar);
  }

  void reverse_integration() {
    const auto& s = cfg_.simulation;
    const double Om = cosmo_->parameters().Omega_m();
    nbody::PmForce<T> pm(force_plan_, s.kernel, state_.x.size());
    auto force = [&](const particles::Positions<T>& x, particles::Positions<T>& F) {
      pm(x, Om, F);
    };
    auto force_and_adjoint = [&](const particles::Positions<T>& x,
                                 const particles::Positions<T>& F_bar, particles::Positions<T>& F,
                                 particles::Positions<T>& xb) {
      return pm.value_and_adjoint(x, Om, F_bar, F, xb);
    };
    nbody::SnapshotAdjoint<T> planes;
    if (!options_.snapshots.empty()) {
      planes = [&](double a, const particles::Positions<T>& x, particles::Positions<T>& x_bar) {
        // Requested snapshots are outputs without an adjoint: x_bar stays zero for them.
        if (maps_active_ && is_plane(a)) cone_->paint_adjoint(a, x, *kappa_bar_, x_bar, cone_grad_);
      };
    }
    const nbody::IntegratorGradient g =
        nbody::integrate_fixed_point_adjoint<T>(*cosmo_, a_steps_, state_, force, force_and_adjoint,
                                                x_bar_, p_bar_, options_, &record_, planes);
    record_.half_steps = {};

    // The coefficients, as duals: kick and drift factors per step, Omega_m, snapshot drifts.
    // (nbody::StepFactors: the function the integrator took its double coefficients from.)
    const nbody::StepFactors<Dual> f(*dual_, s.stepper);
    for (std::size_t i = 0; i + 1 < a_steps_.size(); ++i) {
      const nbody::KdkCoefficients<Dual> c = f.step(a_steps_[i], a_steps_[i + 1]);
      pullback_.add(c.kick_first, g.kick_first[i], "kick factor");
      pullback_.add(c.kick_second, g.kick_second[i], "kick factor");
      pullback_.add(c.drift, g.drift[i], "drift factor");
    }
    pullback_.add(dual_->parameters().Omega_m(), g.force_scalar, "Omega_m (force)");
    for (const auto& snap : g.snapshots) {
      if (snap.step + 1 >= a_steps_.size()) continue;  // at a_start: not drifted
      if (!is_plane(snap.a)) continue;                 // a requested snapshot: no adjoint
      const std::size_t i = snap.step;
      pullback_.add(f.drift_within(a_steps_[i], a_steps_[i + 1], plane_scale_factor(snap.a)),
                    snap.drift, "drift factor to a plane");
    }
  }

  void reverse_lpt_plane(double a) {
    if (!maps_active_) return;
    particles::Lpt<T>& lpt = lpt_adjoint();
    const auto f = particles::lpt_factors(*cosmo_, a, cfg_.simulation.lpt_order);
    particles::Positions<T> x, p;
    lpt.particles(f, x, p, particles::kink_free_offset(force_grid_));
    particles::Positions<T> x_bar(x.size(), {T(0), T(0), T(0)}), zero(x.size(), {T(0), T(0), T(0)});
    cone_->paint_adjoint(a, x, *kappa_bar_, x_bar, cone_grad_);
    pull_back_lpt_factors(plane_scale_factor(a), lpt.adjoint_accumulate(x_bar, zero, f));
  }

  void reverse_lpt() {
    particles::Lpt<T>& lpt = lpt_adjoint();
    // The state at a_lpt: LPT, shifted, wrapped and rounded to fixed point; the shift is a
    // constant and the wrap and rounding are not differentiated (identity adjoints).
    const auto f = particles::lpt_factors(*cosmo_, a_lpt(), cfg_.simulation.lpt_order);
    pull_back_lpt_factors(Dual(a_lpt()), lpt.adjoint_accumulate(x_bar_, p_bar_, f));
    lpt.adjoint_end(delta_, delta_bar_);
  }

  void reverse_linear_field() {
    std::vector<double> amplitude_bar;
    ic::linear_field_adjoint(lpt_->plan(), noise_, amplitude_, delta_bar_, noise_bar_,
                             &amplitude_bar, linear_options());
    lpt_.reset();
    // c(k) = sqrt(P_lin(k, a = 1) N / V), once per distinct k.
    const double n_over_v = double(ic_grid_.size()) / ic_grid_.volume();
    for (const auto& [k, bar] : ic::amplitude_adjoint_by_wavenumber(ic_grid_, amplitude_bar))
      pullback_.add(ic::mode_amplitude(*dual_, k, n_over_v), bar, "sqrt(P_lin) mode amplitude");
  }

  /// The lightcone's scalars: each plane's chi_i (its a_i went with the snapshot drifts and LPT
  /// factors), the shells' width, the Born weights.
  void pull_back_lightcone() {
    const std::size_t planes = shells_dual_.chi.size();
    if (cone_grad_.chi.size() != planes) return;  // no plane saw an adjoint
    for (std::size_t i = 0; i < planes; ++i) {
      pullback_.add(shells_dual_.chi[i], cone_grad_.chi[i], "plane distance chi_i");
      for (std::size_t s = 0; s < weights_dual_.size(); ++s)
        pullback_.add(weights_dual_[s][i], cone_grad_.weights[s][i], "Born weight");
    }
    pullback_.add(shells_dual_.width, cone_grad_.width, "shell width");
  }

  ModelConfig cfg_;
  mesh::Grid ic_grid_, force_grid_;
  int threads_ = 1;
  std::shared_ptr<const FftPlan<T>> ic_plan_, force_plan_;
  std::vector<double> a_steps_;
  std::function<void(const std::string&)> progress_;
  autodiff::Tape tape_;
  bool ready_ = false;

  // Forward run.
  std::unique_ptr<cosmology::Cosmology<double>> cosmo_;
  std::unique_ptr<cosmology::Cosmology<Dual>> dual_;
  mesh::RealField<T> noise_;
  std::vector<double> amplitude_;
  mesh::ComplexField<T> delta_;
  std::unique_ptr<particles::Lpt<T>> lpt_;
  nbody::FixedPointState state_;
  nbody::FixedPointRecord record_;
  nbody::IntegratorOptions options_;
  lensing::Shells<double> shells_;
  lensing::Shells<Dual> shells_dual_;
  std::vector<std::vector<Dual>> weights_dual_;
  std::vector<lensing::PlaneGrid> plane_grids_;
  std::unique_ptr<lensing::Lightcone<T>> cone_;
  std::vector<double> plane_a_;  ///< the planes' scale factors, sorted
  ModelOutput<T> out_;

  // Gradient pass.
  const std::vector<lensing::Map<T>>* kappa_bar_ = nullptr;
  const mesh::RealField<T>* density_bar_ = nullptr;
  bool maps_active_ = false;  ///< map adjoints given (else the lightcone's reverse is skipped)
  particles::Positions<T> x_bar_, p_bar_;
  lensing::LightconeGradient cone_grad_;
  ParameterPullback pullback_;
  mesh::ComplexField<T> delta_bar_;
  mesh::RealField<T> noise_bar_;
};

}  // namespace diffpm::model
