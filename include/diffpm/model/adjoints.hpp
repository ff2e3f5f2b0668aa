/// \file
/// \brief The state of the forward model's reverse pass: the adjoints the caller gives and the
/// adjoint variables the stages pass on to each other.
#pragma once

#include <vector>

#include "diffpm/lensing/lightcone.hpp"
#include "diffpm/maps/flat_map.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/model/parameter_pullback.hpp"
#include "diffpm/nbody/pgd.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::model {

/// What a reverse pass carries from stage to stage (autodiff::Tape<Adjoints<T>>). Each stage's
/// vjp reads the adjoints of its outputs here and adds those of its inputs.
template <class T>
struct Adjoints {
  /// Given by the caller: dL/dkappa_s, one map per source (null or empty: no loss on the maps,
  /// and the lightcone's reverse is skipped), and dL/d(final overdensity) (null: none).
  const std::vector<lensing::Map<T>>* kappa_bar = nullptr;
  const mesh::RealField<T>* density_bar = nullptr;

  /// dL/dx and dL/dp of the particle state at the point the reverse pass has reached (the final
  /// state first, the LPT state when the integration's vjp is done), Mpc/h units of x and p.
  particles::Positions<T> x_bar, p_bar;
  /// dL/d(delta_L(k)) on the lattice's half spectrum, filled by the LPT stage.
  mesh::ComplexField<T> delta_bar;
  /// dL/dw on the lattice, filled by the linear-field stage.
  mesh::RealField<T> noise_bar;
  /// dL/d(the lightcone's scalars: plane distances, shell width, Born weights).
  lensing::LightconeGradient lightcone;
  /// dL/dtheta, summed over every stage's scalar coefficients.
  ParameterPullback parameters;
  /// dL/d(the PGD correction's parameters), summed over the final density and the planes.
  nbody::PgdGradient pgd;

  bool maps() const { return kappa_bar && !kappa_bar->empty(); }
};

}  // namespace diffpm::model
