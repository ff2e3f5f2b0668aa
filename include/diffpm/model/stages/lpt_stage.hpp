/// \file
/// \brief The LPT stage: delta_L -> the particles at the start of the integration (x, p at a
/// scale factor), and the displacement fields the reverse pass rebuilds for it and for the
/// lightcone planes painted from LPT.
#pragma once

#include <memory>
#include <utility>

#include "diffpm/autodiff/tape.hpp"
#include "diffpm/model/adjoints.hpp"
#include "diffpm/model/stages/cosmologies.hpp"
#include "diffpm/particles/lpt.hpp"

namespace diffpm::model {

/// The LPT displacement fields of one delta_L, rebuilt on first use in the reverse pass (the
/// forward pass frees them before the integration allocates its meshes) and accumulating the
/// adjoints of every evaluation (particles::Lpt::adjoint_begin). Shared by the LPT stage and the
/// stages of lightcone planes painted from LPT.
template <class T>
class LptFields {
 public:
  LptFields(std::shared_ptr<const FftPlan<T>> plan, mesh::ComplexField<T> delta, int order)
      : plan_(std::move(plan)), delta_(std::move(delta)), order_(order) {}

  const mesh::ComplexField<T>& delta() const { return delta_; }
  int order() const { return order_; }

  /// The displacement fields of delta(), accumulating adjoints.
  particles::Lpt<T>& adjoint() {
    if (!lpt_) {
      lpt_ = std::make_unique<particles::Lpt<T>>(plan_);
      lpt_->compute(delta_, order_);
      lpt_->adjoint_begin();
    }
    return *lpt_;
  }
  /// Frees the fields (the LPT stage's vjp, once every evaluation is accumulated).
  void release() { lpt_.reset(); }

 private:
  std::shared_ptr<const FftPlan<T>> plan_;
  mesh::ComplexField<T> delta_;
  int order_;
  std::unique_ptr<particles::Lpt<T>> lpt_;
};

/// The particles at scale factor a from the LPT fields: x = q + offset + D1 Psi1 + D2 Psi2,
/// p = p1 Psi1 + p2 Psi2 (particles/lpt.hpp), and their vector-Jacobian product: dL/ddelta_L
/// from dL/dx, dL/dp, and the factors' adjoints pulled back through factors().
template <class T>
class LptStage final : public autodiff::Operation<Adjoints<T>> {
 public:
  /// D1, D2, p1, p2 at a as S: the one function the run and the gradient take them from.
  template <class S>
  static particles::LptFactors<S> factors(const cosmology::Model<S>& cosmology, const S& a,
                                          int order) {
    return particles::lpt_factors(cosmology, a, order);
  }

  /// Records the evaluation at `a` whose particles the integration starts from (their adjoints
  /// are Adjoints::x_bar and p_bar when this stage's vjp runs).
  LptStage(std::shared_ptr<LptFields<T>> fields, double a, Cosmologies cosmologies)
      : fields_(std::move(fields)), a_(a), cosmo_(std::move(cosmologies)) {}

  const char* name() const override { return "LPT"; }

  /// Reads x_bar and p_bar, sets delta_bar; frees the LPT fields.
  void vjp(Adjoints<T>& adjoints) override {
    particles::Lpt<T>& lpt = fields_->adjoint();
    // The state at a: LPT, shifted, wrapped and rounded to fixed point; the shift is a constant
    // and the wrap and rounding are not differentiated (identity adjoints).
    const auto f = factors(*cosmo_.values, a_, fields_->order());
    const auto bar = lpt.adjoint_accumulate(adjoints.x_bar, adjoints.p_bar, f);
    if (cosmo_.duals)
      pull_back(*cosmo_.duals, cosmology::ParameterDual(a_), bar, fields_->order(),
                adjoints.parameters);
    lpt.adjoint_end(fields_->delta(), adjoints.delta_bar);
    fields_->release();
  }

  /// dL/dtheta += the factors' adjoints times their derivatives at the dual a.
  static void pull_back(const cosmology::Model<cosmology::ParameterDual>& duals,
                        const cosmology::ParameterDual& a, const particles::LptFactors<double>& bar,
                        int order, ParameterPullback& pullback) {
    const auto f = factors(duals, a, order);
    pullback.add(f.D1, bar.D1, "D1");
    pullback.add(f.p1, bar.p1, "LPT momentum factor p1");
    if (order == 2) {
      pullback.add(f.D2, bar.D2, "D2");
      pullback.add(f.p2, bar.p2, "LPT momentum factor p2");
    }
  }

 private:
  std::shared_ptr<LptFields<T>> fields_;
  double a_;
  Cosmologies cosmo_;
};

}  // namespace diffpm::model
