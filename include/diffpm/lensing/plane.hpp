/// \file
/// \brief A lightcone density plane: a periodic 2D mesh across the line of sight.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"

namespace diffpm::lensing {

/// Geometry of a density plane: n[0] x n[1] cells over the box's transverse side lengths
/// (length[0], length[1]) = (L_y, L_z) in Mpc/h, periodic with those periods, because the box is
/// replicated across the line of sight (lensing/replicas.hpp). Coordinates (u, v) are measured
/// from the observer's line of sight; mesh point (i, j) sits at (i, j) * cell size, stored at
/// i * n[1] + j. The same point convention as the 3D CIC mesh (docs/conventions.md), so that
/// painting and bilinear sampling are exact transposes.
struct PlaneGrid {
  std::array<int, 2> n{};
  std::array<double, 2> length{};

  PlaneGrid() = default;
  PlaneGrid(std::array<int, 2> cells, std::array<double, 2> lengths) : n(cells), length(lengths) {
    validate();
  }

  void validate() const {
    const char* axis[2] = {"u", "v"};
    for (int d = 0; d < 2; ++d) {
      if (n[d] < 2 || n[d] > 1 << 20) {
        throw InvalidArgument(std::string("lightcone plane: cells along ") + axis[d] + " = " +
                              std::to_string(n[d]) + " (must be in [2, 2^20])");
      }
      if (!(length[d] > 0.0) || !std::isfinite(length[d])) {
        throw InvalidArgument(std::string("lightcone plane: length along ") + axis[d] + " = " +
                              format_number(length[d]) + " Mpc/h (must be finite and > 0)");
      }
    }
  }

  std::size_t size() const { return std::size_t(n[0]) * std::size_t(n[1]); }
  double cell_area() const { return length[0] / n[0] * (length[1] / n[1]); }
  std::size_t index(int i, int j) const { return std::size_t(i) * n[1] + j; }
  bool operator==(const PlaneGrid& o) const { return n == o.n && length == o.length; }
  bool operator!=(const PlaneGrid& o) const { return !(*this == o); }
};

/// Values on a PlaneGrid (the overdensity delta of one shell, or its adjoint), zero-initialised.
template <class T>
struct Plane {
  PlaneGrid grid;
  std::vector<T> data;

  Plane() = default;
  explicit Plane(const PlaneGrid& g) : grid(g), data(g.size(), T(0)) {}
};

namespace detail {

/// Bilinear (2D CIC) stencil of a point at (u, v) Mpc/h on a periodic plane: the lower mesh
/// point (i0, j0), the upper one wrapped, and the fractions (fu, fv) in [0, 1). Weights are
/// (1 - fu, fu) x (1 - fv, fv); their derivatives are (-1, 1) x cells per length.
struct PlaneStencil {
  int i0, i1, j0, j1;
  double fu, fv;
};

inline void plane_axis(double u, double cells_per_length, int n, int& lo, int& hi, double& f) {
  const double t = u * cells_per_length;
  const double fl = std::floor(t);
  f = t - fl;
  if (f >= 1.0) f = 0.0;  // t a hair below an integer rounding up (possible for tiny t < 0)
  long long i = static_cast<long long>(fl) % n;
  if (i < 0) i += n;
  lo = static_cast<int>(i);
  hi = lo + 1 == n ? 0 : lo + 1;
}

inline PlaneStencil plane_stencil(const PlaneGrid& g, double u, double v) {
  PlaneStencil s;
  plane_axis(u, g.n[0] / g.length[0], g.n[0], s.i0, s.i1, s.fu);
  plane_axis(v, g.n[1] / g.length[1], g.n[1], s.j0, s.j1, s.fv);
  return s;
}

/// Fixed particle blocks for deterministic reductions: the same split, hence the same
/// floating-point sums, for any thread count.
inline int reduction_blocks(std::size_t n) {
  return static_cast<int>(std::min<std::size_t>(256, n / 1024 + 1));
}

}  // namespace detail
}  // namespace diffpm::lensing
