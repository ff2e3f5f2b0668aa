/// \file
/// \brief Makes unqualified math calls work for double (std::) and dual numbers (found by ADL).
#pragma once

#include <cmath>

namespace diffpm::cosmology {
using std::abs;
using std::cos;
using std::cosh;
using std::exp;
using std::log;
using std::pow;
using std::sin;
using std::sinh;
using std::sqrt;
}  // namespace diffpm::cosmology
