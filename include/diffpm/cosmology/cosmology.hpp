/// \file
/// \brief A cosmology: its parameters with the tables every later stage needs, built at once.
#pragma once

#include <memory>

#include "diffpm/cosmology/background.hpp"
#include "diffpm/cosmology/growth.hpp"
#include "diffpm/cosmology/linear_power.hpp"
#include "diffpm/cosmology/parameters.hpp"

namespace diffpm::cosmology {

/// How to build a Cosmology: the linear spectrum and the resolution of the ln a tables.
struct CosmologyOptions {
  Transfer transfer = Transfer::eisenstein_hu;
  std::shared_ptr<const PowerTable> power_table;  ///< required for Transfer::tabulated
  TableOptions table;
};

/// Background, growth and sigma8-normalised linear power of one set of parameters. Building
/// one (tables included) takes tens of microseconds in double and a few hundred with all eight
/// derivatives (benchmarks/bench_cosmology.cpp), so inference can rebuild it at every step.
///
/// T = double gives values; T = ParameterDual (from seed_parameters) gives every quantity with
/// its exact derivatives with respect to (Omega_c, Omega_b, h, n_s, sigma8, Omega_k, w0, wa).
template <class T>
class Cosmology {
 public:
  explicit Cosmology(const Parameters<T>& p, const CosmologyOptions& options = {})
      : background_(p, options.table),
        growth_(background_),
        power_(options.transfer == Transfer::tabulated ? LinearPower<T>(p, options.power_table)
                                                       : LinearPower<T>(p, options.transfer)) {}

  const Parameters<T>& parameters() const { return background_.parameters(); }
  const Background<T>& background() const { return background_; }
  const Growth<T>& growth() const { return growth_; }
  /// The linear spectrum today (z = 0).
  const LinearPower<T>& linear_power_today() const { return power_; }

  /// P_lin(k, a) = P_lin(k, z=0) D1(a)^2 in (Mpc/h)^3, k in h/Mpc.
  template <class K>
  T linear_power(const K& k, const T& a) const {
    const T d = growth_.growth_factor(a);
    return power_(k) * d * d;
  }

 private:
  Background<T> background_;
  Growth<T> growth_;
  LinearPower<T> power_;
};

}  // namespace diffpm::cosmology
