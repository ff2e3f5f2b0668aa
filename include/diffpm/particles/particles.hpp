/// \file
/// \brief Particle containers shared by paint, readout, LPT and the integrator.
#pragma once

#include <array>
#include <vector>

namespace diffpm::particles {

/// Particle positions (or displacements, velocities, their adjoints): one (x, y, z) per
/// particle, in Mpc/h for positions. Positions may lie anywhere; every mesh operation wraps
/// them into the periodic box.
template <class T>
using Positions = std::vector<std::array<T, 3>>;

}  // namespace diffpm::particles
