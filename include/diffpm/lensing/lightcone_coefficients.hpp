/// \file
/// \brief The scalar coefficients of a lightcone: the shells out to the farthest source and each
/// source's Born weights, from one function templated on the cosmology's scalar.
#pragma once

#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/model.hpp"
#include "diffpm/lensing/born.hpp"
#include "diffpm/lensing/lensing_efficiency.hpp"
#include "diffpm/lensing/redshift_distribution.hpp"
#include "diffpm/lensing/shells.hpp"

namespace diffpm::lensing {

/// What a lightcone's painting and Born sum take from the cosmology: the planes' chi_i, a_i and
/// width (shells.hpp) and the Born weights c_si of each source s (born.hpp).
template <class S>
struct LightconeCoefficients {
  Shells<S> shells;
  std::vector<std::vector<S>> born_weights;  ///< [source][plane]
};

/// The coefficients for `planes` shells out to the farthest of `sources`. S = double for a run;
/// S = a dual number (cosmology::ParameterDual) for their derivatives in the gradient pass
/// (model/forward_model.hpp). One function serves both, so the values a run used and those the
/// gradient differentiates cannot disagree. The farthest source is chosen by value. Throws
/// InvalidArgument for an empty source list (and what Shells::make and LensingEfficiency throw).
template <class S>
LightconeCoefficients<S> lightcone_coefficients(const cosmology::Model<S>& cosmo,
                                                const std::vector<SourceDistribution>& sources,
                                                int planes) {
  if (sources.empty()) throw InvalidArgument("lensing: no source redshifts or distributions");
  std::vector<LensingEfficiency<S>> q;
  S chi_max(0.0);
  for (const auto& src : sources) {
    q.emplace_back(cosmo, src);
    if (value_of(q.back().chi_max()) > value_of(chi_max)) chi_max = q.back().chi_max();
  }
  LightconeCoefficients<S> c;
  c.shells = Shells<S>::make(cosmo, chi_max, planes);
  const S Om = cosmo.Omega_m();
  for (const auto& qs : q)
    c.born_weights.push_back(born_weights(Om, c.shells, [&](const S& chi) { return qs(chi); }));
  return c;
}

}  // namespace diffpm::lensing
