/// \file
/// \brief The cosmology a recorded run used: its values, and its dual numbers for the parameter
/// gradient.
#pragma once

#include <memory>

#include "diffpm/cosmology/cosmology.hpp"

namespace diffpm::model {

/// Shared by the stages of one run (each keeps it alive until its vjp has run).
struct Cosmologies {
  /// The cosmology the forward pass ran with; the reverse pass recomputes its double
  /// coefficients from it.
  std::shared_ptr<const cosmology::Cosmology<double>> values;
  /// The same cosmology with every quantity carrying d/dtheta (cosmology::seed_parameters):
  /// each stage computes its coefficients once more from it and pulls their adjoints back
  /// onto the parameters. Null: no parameter gradient (the stages skip their pullbacks).
  std::shared_ptr<const cosmology::Cosmology<cosmology::ParameterDual>> duals;
};

}  // namespace diffpm::model
