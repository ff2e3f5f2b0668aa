// The benchmarks' cosmological parameters: Planck 2018 as plain doubles, or seeded as dual
// numbers carrying the derivatives with respect to every parameter.
#pragma once

#include "diffpm/cosmology/cosmology.hpp"

namespace bench {

template <class T>
diffpm::cosmology::Parameters<T> parameters();
template <>
inline diffpm::cosmology::Parameters<double> parameters<double>() {
  return diffpm::cosmology::Parameters<double>{};
}
template <>
inline diffpm::cosmology::Parameters<diffpm::cosmology::ParameterDual>
parameters<diffpm::cosmology::ParameterDual>() {
  return diffpm::cosmology::seed_parameters(diffpm::cosmology::Parameters<double>{});
}

}  // namespace bench
