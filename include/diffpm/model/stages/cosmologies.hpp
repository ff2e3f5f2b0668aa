/// \file
/// \brief The cosmology a recorded run used: its values, and its dual numbers for the parameter
/// gradient.
#pragma once

#include <memory>

#include "diffpm/cosmology/model.hpp"
#include "diffpm/cosmology/parameters.hpp"

namespace diffpm::model {

/// Shared by the stages of one run (each keeps it alive until its vjp has run).
struct Cosmologies {
  /// The cosmology the forward pass ran with (diffpm's Cosmology, a TabulatedCosmology, a
  /// user's own): the reverse pass recomputes its double coefficients from it.
  std::shared_ptr<const cosmology::Model<double>> values;
  /// The same cosmology with every quantity carrying d/dtheta (a Cosmology<ParameterDual> of
  /// cosmology::seed_parameters):
  /// each stage computes its coefficients once more from it and pulls their adjoints back
  /// onto the parameters. Null: no parameter gradient (the stages skip their pullbacks).
  std::shared_ptr<const cosmology::Model<cosmology::ParameterDual>> duals;
};

}  // namespace diffpm::model
