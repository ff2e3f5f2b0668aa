/// \file
/// \brief The integration stage: the fixed-point kick-drift-kick steps from the LPT state to
/// a_end, with the lightcone planes drifted to on the way, and its reverse-time vjp.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "diffpm/autodiff/tape.hpp"
#include "diffpm/model/adjoints.hpp"
#include "diffpm/model/stages/cosmologies.hpp"
#include "diffpm/model/stages/lightcone_stage.hpp"
#include "diffpm/nbody/fastpm_factors.hpp"
#include "diffpm/nbody/pm_force.hpp"
#include "diffpm/nbody/reversible.hpp"

namespace diffpm::model {

/// What the integration's reverse pass needs, recorded by the forward run (nbody::evolve): the
/// final fixed-point state (shared with the final-density stage, whose vjp reads it first), the
/// record of the adjoint mode (stored or checkpointed states), the snapshots the integrator saw,
/// and the force's plan and kernel. Its vjp runs the trajectory backwards
/// (nbody::integrate_fixed_point_adjoint), leaves the LPT state in `state` (checked against the
/// run's: ReversibilityError otherwise) and x_bar, p_bar at a_start, paints the adjoints of the
/// lightcone planes it drifts to, and pulls the kick and drift factors and Omega_m back onto the
/// parameters through coefficients().
template <class T>
class IntegrationStage final : public autodiff::Operation<Adjoints<T>> {
 public:
  /// The kick and drift factors of the step [a0, a1] as S: the one function the run and the
  /// gradient take them from.
  template <class S>
  static nbody::KdkCoefficients<S> coefficients(const cosmology::Model<S>& cosmology,
                                                nbody::Stepper stepper, double a0, double a1) {
    return nbody::StepFactors<S>(cosmology, stepper).step(a0, a1);
  }

  IntegrationStage(std::shared_ptr<nbody::FixedPointState> state, nbody::FixedPointRecord record,
                   nbody::IntegratorOptions options, std::vector<double> a_steps,
                   std::shared_ptr<const FftPlan<T>> force_plan, mesh::ForceKernelOptions kernel,
                   Cosmologies cosmologies, std::shared_ptr<const LightconeRecord<T>> lightcone)
      : state_(std::move(state)),
        record_(std::move(record)),
        options_(std::move(options)),
        a_steps_(std::move(a_steps)),
        plan_(std::move(force_plan)),
        kernel_(kernel),
        cosmo_(std::move(cosmologies)),
        cone_(std::move(lightcone)) {}

  const char* name() const override { return "PM integration and lightcone"; }

  void vjp(Adjoints<T>& adjoints) override {
    const double Om = cosmo_.values->Omega_m();
    nbody::PmForce<T> pm(plan_, kernel_, state_->x.size());
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
        if (adjoints.maps() && cone_ && cone_->is_plane(a))
          cone_->paint_adjoint(a, x, x_bar, adjoints);
      };
    }
    const nbody::IntegratorGradient g = nbody::integrate_fixed_point_adjoint<T>(
        *cosmo_.values, a_steps_, *state_, force, force_and_adjoint, adjoints.x_bar, adjoints.p_bar,
        options_, &record_, planes);
    record_.half_steps = {};
    pull_back(g, cosmo_, options_.stepper, a_steps_, cone_.get(), adjoints.parameters);
  }

  /// Pulls the integrator's coefficient derivatives `g` back onto the parameters (every
  /// backend's integration stage): the kick and drift factors per step, Omega_m, and the drift
  /// factors to the lightcone planes, as duals of `cosmo`'s parameters (nothing without them).
  static void pull_back(const nbody::IntegratorGradient& g, const Cosmologies& cosmo,
                        nbody::Stepper stepper, const std::vector<double>& a_steps,
                        const LightconeRecord<T>* cone, ParameterPullback& pullback) {
    if (!cosmo.duals) return;
    const auto& duals = *cosmo.duals;
    const nbody::StepFactors<cosmology::ParameterDual> f(duals, stepper);
    for (std::size_t i = 0; i + 1 < a_steps.size(); ++i) {
      const auto c = coefficients(duals, stepper, a_steps[i], a_steps[i + 1]);
      pullback.add(c.kick_first, g.kick_first[i], "kick factor");
      pullback.add(c.kick_second, g.kick_second[i], "kick factor");
      pullback.add(c.drift, g.drift[i], "drift factor");
    }
    pullback.add(duals.Omega_m(), g.force_scalar, "Omega_m (force)");
    for (const auto& snap : g.snapshots) {
      if (snap.step + 1 >= a_steps.size()) continue;   // at a_start: not drifted
      if (!cone || !cone->is_plane(snap.a)) continue;  // a requested snapshot: no adjoint
      const std::size_t i = snap.step;
      pullback.add(f.drift_within(a_steps[i], a_steps[i + 1], cone->plane_scale_factor(snap.a)),
                   snap.drift, "drift factor to a plane");
    }
  }

 private:
  std::shared_ptr<nbody::FixedPointState> state_;
  nbody::FixedPointRecord record_;
  nbody::IntegratorOptions options_;
  std::vector<double> a_steps_;
  std::shared_ptr<const FftPlan<T>> plan_;
  mesh::ForceKernelOptions kernel_;
  Cosmologies cosmo_;
  std::shared_ptr<const LightconeRecord<T>> cone_;
};

}  // namespace diffpm::model
