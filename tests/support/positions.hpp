/// \file
/// \brief Test particles with structure on every scale, shared by the device tests.
#pragma once

#include <array>
#include <random>

#include "diffpm/mesh/grid.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::test {

/// Particles on a perturbed lattice plus a clump, so the force has large and small scales.
template <class T>
particles::Positions<T> clustered_positions(const mesh::Grid& g, int per_side, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  particles::Positions<T> x;
  for (int i = 0; i < per_side; ++i)
    for (int j = 0; j < per_side; ++j)
      for (int k = 0; k < per_side; ++k) {
        const int idx[3] = {i, j, k};
        std::array<T, 3> p;
        for (int d = 0; d < 3; ++d) {
          const double q = (idx[d] + 0.5) * g.length[d] / per_side;
          p[d] = T(q + 0.3 * g.cell_size(d) * normal(rng));
        }
        x.push_back(p);
      }
  for (int c = 0; c < 500; ++c) {
    std::array<T, 3> p;
    for (int d = 0; d < 3; ++d) p[d] = T(0.3 * g.length[d] + 2.0 * g.cell_size(d) * normal(rng));
    x.push_back(p);
  }
  return x;
}

}  // namespace diffpm::test
