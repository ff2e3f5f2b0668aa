/// \file
/// \brief Where the field adjoints meet the cosmological parameters: dL/dtheta = sum over the
/// scalar coefficients c of dL/dc dc/dtheta (docs/design.md, "The adjoint"). In model/, above
/// both autodiff/ (the tape, the dual numbers) and cosmology/ (the parameters it sums over).
#pragma once

#include <array>
#include <cmath>
#include <string>

#include "diffpm/core/error.hpp"
#include "diffpm/cosmology/parameters.hpp"

namespace diffpm::model {

/// Sums dL/dc * dc/dtheta over the coefficients a gradient pass meets. Each coefficient c (a
/// kick factor, Omega_m, a lensing weight, sqrt(P_lin(k))) is computed once more as a
/// ParameterDual by the same templated cosmology code that gave its value; the reverse pass
/// hands over its adjoint c_bar = dL/dc, a plain number, and add() accumulates c_bar times the
/// dual's derivative vector. Forward mode over ~8 parameters, reverse mode over the fields.
class ParameterPullback {
 public:
  /// dL/dtheta += c_bar dc/dtheta. Throws InvalidArgument if c_bar or a derivative is not
  /// finite (a NaN would otherwise silently poison every parameter's gradient).
  void add(const cosmology::ParameterDual& c, double c_bar, const char* what) {
    if (c_bar == 0.0) return;
    if (!std::isfinite(c_bar)) {
      throw InvalidArgument(std::string("gradient: dL/d(") + what + ") = " + format_number(c_bar) +
                            " (not finite)");
    }
    for (int i = 0; i < cosmology::n_parameters; ++i) {
      const double d = c.derivatives().size() ? c.derivatives()[i] : 0.0;
      if (!std::isfinite(d)) {
        throw InvalidArgument(std::string("gradient: d(") + what + ")/d" +
                              cosmology::parameter_names[i] + " = " + format_number(d) +
                              " (not finite)");
      }
      gradient_[i] += c_bar * d;
    }
  }

  /// dL/dtheta in the order of cosmology::Parameter.
  const std::array<double, cosmology::n_parameters>& gradient() const { return gradient_; }

 private:
  std::array<double, cosmology::n_parameters> gradient_{};
};

}  // namespace diffpm::model
