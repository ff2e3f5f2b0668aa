/// \file
/// \brief The integration stage on the device backend: the reverse pass of the fixed-point
/// kick-drift-kick steps run by nbody::evolve with backend cuda, with the lightcone planes'
/// adjoints painted on the device.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "diffpm/autodiff/tape.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/lensing/lightcone_device.hpp"
#include "diffpm/model/adjoints.hpp"
#include "diffpm/model/stages/cosmologies.hpp"
#include "diffpm/model/stages/integration_stage.hpp"
#include "diffpm/model/stages/lightcone_stage.hpp"
#include "diffpm/nbody/pgd_device.hpp"
#include "diffpm/nbody/pm_force_device.hpp"
#include "diffpm/nbody/reversible_device.hpp"

namespace diffpm::model {

/// Paints the planes at a from device positions x, corrected by the record's device PGD if it
/// has one (LightconeRecord::paint on the device).
template <class T>
void paint_planes(Cuda, const LightconeRecord<T>& r, double a, particles::ConstView<T> x) {
  if (!r.device_pgd) {
    lensing::paint(Cuda{}, *r.cone, a, x);
    return;
  }
  nbody::device_detail::Triples<T> y(x.size);
  r.device_pgd->displacement(x, r.pgd_parameters, a, y.view());
  nbody::device_detail::add_to(x, y.view());
  lensing::paint(Cuda{}, *r.cone, a, particles::ConstView<T>(y.view()));
}

/// The adjoint of paint_planes (LightconeRecord::paint_adjoint on the device): x_bar += dL/dx,
/// the lightcone's scalars and the PGD gradient into `adjoints`.
template <class T>
void paint_planes_adjoint(Cuda, const LightconeRecord<T>& r, double a, particles::ConstView<T> x,
                          particles::Vec3View<T> x_bar, Adjoints<T>& adjoints) {
  if (!r.device_pgd) {
    lensing::paint_adjoint(Cuda{}, *r.cone, a, x, *adjoints.kappa_bar, x_bar, adjoints.lightcone);
    return;
  }
  nbody::device_detail::Triples<T> y(x.size), y_bar(x.size);
  y_bar.data.zero();
  r.device_pgd->displacement(x, r.pgd_parameters, a, y.view());
  nbody::device_detail::add_to(x, y.view());
  lensing::paint_adjoint(Cuda{}, *r.cone, a, particles::ConstView<T>(y.view()), *adjoints.kappa_bar,
                         y_bar.view(), adjoints.lightcone);
  const nbody::PgdGradient g =
      r.device_pgd->displacement_adjoint(x, r.pgd_parameters, a, y_bar.view(), x_bar);
  nbody::device_detail::add_to(particles::ConstView<T>(y_bar.view()), x_bar);
  r.add_pgd_gradient(a, g, adjoints);
}

/// IntegrationStage's contract on the device: the final fixed-point state (host copy, shared
/// with the final-density stage), the device record of the adjoint mode, the snapshots the
/// integrator saw, and the device force the forward run used (shared, so the reverse pass runs
/// the very transforms of the forward pass: exact reversal needs the same force bits). Its vjp
/// moves the state and dL/dx, dL/dp to the device once, runs the trajectory backwards there
/// (nbody::integrate_fixed_point_adjoint(Cuda, ...)), paints the lightcone planes' adjoints on
/// the device (lensing/lightcone_device.hpp), and brings dL/dx, dL/dp at a_start back for the
/// LPT stage; the coefficients are pulled back as on the CPU (IntegrationStage::pull_back).
template <class T>
class DeviceIntegrationStage final : public autodiff::Operation<Adjoints<T>> {
 public:
  DeviceIntegrationStage(std::shared_ptr<nbody::FixedPointState> state,
                         std::shared_ptr<nbody::DeviceFixedPointRecord> record,
                         nbody::IntegratorOptions options, std::vector<double> a_steps,
                         std::shared_ptr<nbody::PmForce<T, Cuda>> force, Cosmologies cosmologies,
                         std::shared_ptr<const LightconeRecord<T>> lightcone)
      : state_(std::move(state)),
        record_(std::move(record)),
        options_(std::move(options)),
        a_steps_(std::move(a_steps)),
        force_(std::move(force)),
        cosmo_(std::move(cosmologies)),
        cone_(std::move(lightcone)) {}

  const char* name() const override { return "PM integration and lightcone (device)"; }

  void vjp(Adjoints<T>& adjoints) override {
    const double Om = cosmo_.values->Omega_m();
    nbody::PmForce<T, Cuda>& pm = *force_;
    auto force = [&](particles::Vec3View<const T> x, particles::Vec3View<T> F) { pm(x, Om, F); };
    auto force_and_adjoint = [&](particles::Vec3View<const T> x, particles::Vec3View<const T> F_bar,
                                 particles::Vec3View<T> F, particles::Vec3View<T> xb) {
      return pm.value_and_adjoint(x, Om, F_bar, F, xb);
    };
    const std::size_t np = state_->x.size();
    auto state = nbody::DeviceFixedPointState::upload(*state_);
    nbody::device_detail::Triples<T> x_bar(np), p_bar(np);
    upload(adjoints.x_bar, x_bar);
    upload(adjoints.p_bar, p_bar);
    nbody::DeviceSnapshotAdjoint<T> planes;
    if (!options_.snapshots.empty()) {
      planes = [&](double a, particles::Vec3View<const T> x, particles::Vec3View<T> xb) {
        // Requested snapshots are outputs without an adjoint: x_bar stays zero for them.
        if (adjoints.maps() && cone_ && cone_->is_plane(a))
          paint_planes_adjoint(Cuda{}, *cone_, a, x, xb, adjoints);
      };
    }
    const nbody::IntegratorGradient g = nbody::integrate_fixed_point_adjoint<T>(
        Cuda{}, *cosmo_.values, a_steps_, state, force, force_and_adjoint, x_bar.view(),
        p_bar.view(), options_, record_.get(), planes);
    record_->half_steps = std::vector<nbody::DeviceFixedPointState>();  // frees device memory
    // As on the CPU, reverse mode leaves the rebuilt LPT state (store and checkpoint the final).
    if (record_->mode == nbody::AdjointMode::reverse) *state_ = state.download();
    download(x_bar, adjoints.x_bar);
    download(p_bar, adjoints.p_bar);
    IntegrationStage<T>::pull_back(g, cosmo_, options_.stepper, a_steps_, cone_.get(),
                                   adjoints.parameters);
  }

 private:
  static void upload(const particles::Positions<T>& host, nbody::device_detail::Triples<T>& dev) {
    if (host.size() != dev.size) {
      throw InvalidArgument("device integration stage: " + std::to_string(host.size()) +
                            " particle adjoints for " + std::to_string(dev.size) + " particles");
    }
    if (!host.empty()) dev.data.upload(host[0].data());
  }
  static void download(const nbody::device_detail::Triples<T>& dev, particles::Positions<T>& host) {
    host.resize(dev.size);
    if (!host.empty()) dev.data.download(host[0].data());
  }

  std::shared_ptr<nbody::FixedPointState> state_;
  std::shared_ptr<nbody::DeviceFixedPointRecord> record_;
  nbody::IntegratorOptions options_;
  std::vector<double> a_steps_;
  std::shared_ptr<nbody::PmForce<T, Cuda>> force_;
  Cosmologies cosmo_;
  std::shared_ptr<const LightconeRecord<T>> cone_;
};

}  // namespace diffpm::model
