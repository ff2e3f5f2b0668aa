/// \file
/// \brief A cosmology: its parameters with the tables every later stage needs, built at once.
#pragma once

#include <memory>

#include "diffpm/cosmology/background.hpp"
#include "diffpm/cosmology/growth.hpp"
#include "diffpm/cosmology/linear_power.hpp"
#include "diffpm/cosmology/model.hpp"
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
///
/// It is the Model (model.hpp) that the pipeline's stages take: each of the interface's
/// functions returns exactly what the Background, Growth or Parameters call it forwards to
/// (same bits), so a stage gives the same result whether it was handed a Cosmology or reads its
/// tables directly.
template <class T>
class Cosmology : public Model<T> {
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

  /// P_lin(k, a) = P_lin(k, z=0) D1(a)^2 in (Mpc/h)^3, k in h/Mpc (a dual k carries dP/dk).
  template <class K>
  T linear_power(const K& k, const T& a) const {
    const T d = growth_.growth_factor(a);
    return power_(k) * d * d;
  }

  // Model<T>: each forwards to the one call a stage made before the interface existed.
  T E(const T& a) const override { return background_.E(a); }
  T Omega_m() const override { return parameters().Omega_m(); }
  T Omega_k() const override { return parameters().Omega_k; }
  T growth_factor(const T& a) const override { return growth_.growth_factor(a); }
  T growth_rate(const T& a) const override { return growth_.growth_rate(a); }
  T growth_factor_2(const T& a) const override { return growth_.growth_factor_2(a); }
  T growth_rate_2(const T& a) const override { return growth_.growth_rate_2(a); }
  /// The slope of the D1 table (exact at its nodes), not growth_rate * growth_factor: the two
  /// differ in the last bits, and the step and LPT factors have always used this one.
  T growth_factor_dlna(const T& a) const override { return growth_.growth_factor_dlna(a); }
  T growth_factor_2_dlna(const T& a) const override { return growth_.growth_factor_2_dlna(a); }
  T comoving_distance(const T& a) const override { return background_.comoving_distance(a); }
  T scale_factor_at_distance(const T& chi) const override {
    return background_.scale_factor_at_distance(chi);
  }
  T linear_power(double k, const T& a) const override { return linear_power<double>(k, a); }

 private:
  Background<T> background_;
  Growth<T> growth_;
  LinearPower<T> power_;
};

}  // namespace diffpm::cosmology
