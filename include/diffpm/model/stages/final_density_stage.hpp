/// \file
/// \brief The final-density stage: the CIC overdensity of the final particles on the force mesh.
#pragma once

#include <memory>
#include <utility>

#include "diffpm/autodiff/tape.hpp"
#include "diffpm/model/adjoints.hpp"
#include "diffpm/nbody/reversible.hpp"
#include "diffpm/particles/cic.hpp"

namespace diffpm::model {

/// delta(x) = CIC paint of the particles with weight N_cells / N_p, minus 1, and its vjp:
/// dL/dx += the paint adjoint of dL/ddelta. Holds the final state it was painted from, shared
/// with the integration stage: this vjp runs first, before the integration's reverse pass
/// rewinds the state.
template <class T>
class FinalDensityStage final : public autodiff::Operation<Adjoints<T>> {
 public:
  /// The forward pass: `density` = the overdensity of `x` on `grid`, painted with `weight`.
  static void forward(const particles::Positions<T>& x, const mesh::Grid& grid, double weight,
                      mesh::RealField<T>& density) {
    density = mesh::RealField<T>(grid);
    particles::paint_cic(x, density, static_cast<T>(weight));
    for (auto& v : density.data) v -= T(1);
  }

  FinalDensityStage(std::shared_ptr<const nbody::FixedPointState> state, double weight)
      : state_(std::move(state)), weight_(weight) {}

  const char* name() const override { return "final density"; }

  void vjp(Adjoints<T>& adjoints) override {
    if (!adjoints.density_bar) return;  // a loss on the maps only
    particles::Positions<T> x;
    state_->positions(x);
    T weight_bar = 0;
    particles::paint_cic_adjoint(*adjoints.density_bar, x, static_cast<T>(weight_), adjoints.x_bar,
                                 weight_bar);
  }

 private:
  std::shared_ptr<const nbody::FixedPointState> state_;
  double weight_;
};

}  // namespace diffpm::model
