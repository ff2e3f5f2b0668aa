/// \file
/// \brief The final-density stage: the CIC overdensity of the final particles on the force mesh,
/// optionally after the PGD correction.
#pragma once

#include <memory>
#include <utility>

#include "diffpm/autodiff/tape.hpp"
#include "diffpm/model/adjoints.hpp"
#include "diffpm/nbody/pgd.hpp"
#include "diffpm/nbody/reversible.hpp"
#include "diffpm/particles/cic.hpp"

namespace diffpm::model {

/// The PGD correction a stage applies: the object (its mesh and FFT plan), its parameters and
/// the scale factor of the particles it corrects. An empty `correction` applies none.
template <class T>
struct PgdStep {
  std::shared_ptr<nbody::PgdCorrection<T>> correction;
  nbody::PgdParameters parameters;
  double a = 1.0;
};

/// delta(x) = CIC paint of the particles (x + S(x) with PGD) with weight N_cells / N_p, minus
/// 1, and its vjp: dL/dx += the paint adjoint of dL/ddelta, through the PGD adjoint when
/// there is one (which also adds dL/d(its parameters) to Adjoints::pgd). Holds the final state
/// it was painted from, shared with the integration stage: this vjp runs first, before the
/// integration's reverse pass rewinds the state.
template <class T>
class FinalDensityStage final : public autodiff::Operation<Adjoints<T>> {
 public:
  /// The forward pass: `density` = the overdensity of `x` (PGD-corrected by `pgd`, if any) on
  /// `grid`, painted with `weight`.
  static void forward(const particles::Positions<T>& x, const mesh::Grid& grid, double weight,
                      const PgdStep<T>& pgd, mesh::RealField<T>& density) {
    density = mesh::RealField<T>(grid);
    if (pgd.correction) {
      particles::Positions<T> y;
      pgd.correction->apply(x, pgd.parameters, pgd.a, y);
      particles::paint_cic(y, density, static_cast<T>(weight));
    } else {
      particles::paint_cic(x, density, static_cast<T>(weight));
    }
    for (auto& v : density.data) v -= T(1);
  }

  FinalDensityStage(std::shared_ptr<const nbody::FixedPointState> state, double weight,
                    PgdStep<T> pgd = {})
      : state_(std::move(state)), weight_(weight), pgd_(std::move(pgd)) {}

  const char* name() const override { return "final density"; }

  void vjp(Adjoints<T>& adjoints) override {
    if (!adjoints.density_bar) return;  // a loss on the maps only
    particles::Positions<T> x;
    state_->positions(x);
    T weight_bar = 0;
    if (!pgd_.correction) {
      particles::paint_cic_adjoint(*adjoints.density_bar, x, static_cast<T>(weight_),
                                   adjoints.x_bar, weight_bar);
      return;
    }
    particles::Positions<T> y, y_bar(x.size(), {T(0), T(0), T(0)});
    pgd_.correction->apply(x, pgd_.parameters, pgd_.a, y);
    particles::paint_cic_adjoint(*adjoints.density_bar, y, static_cast<T>(weight_), y_bar,
                                 weight_bar);
    adjoints.pgd +=
        pgd_.correction->apply_adjoint(x, pgd_.parameters, pgd_.a, y_bar, adjoints.x_bar);
  }

 private:
  std::shared_ptr<const nbody::FixedPointState> state_;
  double weight_;
  PgdStep<T> pgd_;
};

}  // namespace diffpm::model
