/// \file
/// \brief The linear-field stage: white noise -> delta_L(k) = c(k) r2c(w), c = sqrt(P_lin N/V).
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "diffpm/autodiff/tape.hpp"
#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/ic/linear_field.hpp"
#include "diffpm/model/adjoints.hpp"
#include "diffpm/model/stages/cosmologies.hpp"

namespace diffpm::model {

/// delta_L(k) = c(k) W(k), W = r2c(w), c(k) = sqrt(P_lin(k, a = 1) N / V) (ic/linear_field.hpp),
/// and its vector-Jacobian product: dL/dw = c2r(c dL/ddelta_L) and dL/dc(k) = Re(conj(dL/ddelta_L)
/// W), pulled back onto the parameters through coefficient().
template <class T>
class LinearFieldStage final : public autodiff::Operation<Adjoints<T>> {
 public:
  /// The coefficient c(k) as S (double for the run, a dual for the gradient): the one function
  /// both take it from.
  template <class S>
  static S coefficient(const cosmology::Model<S>& cosmology, double k, double n_over_v) {
    return ic::mode_amplitude(cosmology, k, n_over_v);
  }

  /// The forward pass: `delta` = delta_L of `noise`; `amplitude` = c on the half spectrum.
  static void forward(const FftPlan<T>& plan, const mesh::RealField<T>& noise,
                      const cosmology::Model<double>& cosmology, const ic::LinearFieldOptions& o,
                      std::vector<double>& amplitude, mesh::ComplexField<T>& delta) {
    amplitude = ic::mode_amplitudes(plan.grid(), cosmology, 1.0);
    ic::linear_field(plan, noise, amplitude, delta, o);
  }

  /// Records a forward pass: keeps the noise, the amplitudes and the plan that made them.
  LinearFieldStage(std::shared_ptr<const FftPlan<T>> plan, mesh::RealField<T> noise,
                   std::vector<double> amplitude, const ic::LinearFieldOptions& options,
                   Cosmologies cosmologies)
      : plan_(std::move(plan)),
        noise_(std::move(noise)),
        amplitude_(std::move(amplitude)),
        options_(options),
        cosmo_(std::move(cosmologies)) {}

  const char* name() const override { return "linear field"; }

  /// Reads adjoints.delta_bar, sets adjoints.noise_bar.
  void vjp(Adjoints<T>& adjoints) override {
    std::vector<double> amplitude_bar;
    ic::linear_field_adjoint(*plan_, noise_, amplitude_, adjoints.delta_bar, adjoints.noise_bar,
                             cosmo_.duals ? &amplitude_bar : nullptr, options_);
    if (!cosmo_.duals) return;
    const mesh::Grid& g = plan_->grid();
    const double n_over_v = double(g.size()) / g.volume();
    for (const auto& [k, bar] : ic::amplitude_adjoint_by_wavenumber(g, amplitude_bar)) {
      adjoints.parameters.add(coefficient(*cosmo_.duals, k, n_over_v), bar,
                              "sqrt(P_lin) mode amplitude");
    }
  }

 private:
  std::shared_ptr<const FftPlan<T>> plan_;
  mesh::RealField<T> noise_;
  std::vector<double> amplitude_;
  ic::LinearFieldOptions options_;
  Cosmologies cosmo_;
};

}  // namespace diffpm::model
