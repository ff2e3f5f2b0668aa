/// \file
/// \brief A lightcone density plane: a square grid in angle on the sky, centred on the line of
/// sight, slightly larger than the map.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/lensing/flat_map.hpp"

namespace diffpm::lensing {

/// n x n points in flat-sky angle, spacing `cell` radians, centred on the line of sight: point
/// (i, j) sits at theta = ((i - (n-1)/2) cell, (j - (n-1)/2) cell) and is stored at j n + i
/// (theta_x fastest, like the maps of flat_map.hpp). Painting (2D CIC) and sampling (bilinear)
/// use the same points, so they are exact transposes.
///
/// Planes are grids in angle, not in comoving length, because each particle is placed at its
/// own angle theta = x_perp / s (s its distance along the line of sight), not at x_perp / chi_i:
/// a particle weighted into two neighbouring shells (shells.hpp) then lands at the same angle
/// in both, and the shells' cross-correlation, a third of the projected power with hat weights,
/// survives. (Comoving planes sampled at chi_i theta, as in JaxPM, misplace it by
/// x_perp (s - chi_i)/chi_i; measured here, that lost 30-50% of the Limber power at
/// ell = 300-600 for 16 planes to z = 1.)
struct PlaneGrid {
  int n = 0;
  double cell = 0.0;  ///< radians

  PlaneGrid() = default;
  PlaneGrid(int points, double cell_rad) : n(points), cell(cell_rad) { validate(); }

  /// The grid for a map and a comoving resolution at distance chi: cells of
  /// max(map pixel, comoving_cell / chi) (no finer than the pixels, which would only alias,
  /// and no finer than what the simulation resolves at chi), covering the map's field plus a
  /// margin of two cells on each side, so that the points bilinear sampling reads never receive
  /// a deposit clipped at the plane's edge (the map stays continuous as particles enter).
  static PlaneGrid covering(const MapGeometry& map, double comoving_cell, double chi) {
    map.validate();
    if (!(comoving_cell >= 0.0) || !std::isfinite(comoving_cell) || !(chi > 0.0) ||
        !std::isfinite(chi)) {
      throw InvalidArgument("lightcone plane: comoving cell " + format_number(comoving_cell) +
                            " Mpc/h at chi = " + format_number(chi) +
                            " Mpc/h (need cell >= 0, chi > 0, both finite)");
    }
    const double cell = std::max(map.pixel_rad(), comoving_cell / chi);
    const int half = static_cast<int>(std::ceil(0.5 * map.fov_rad() / cell - 1e-9)) + 2;
    return PlaneGrid(2 * half + 1, cell);
  }

  void validate() const {
    if (n < 2 || n > 1 << 16) {
      throw InvalidArgument("lightcone plane: points per side = " + std::to_string(n) +
                            " (must be in [2, 65536])");
    }
    if (!(cell > 0.0) || !(cell * n < 3.0)) {
      throw InvalidArgument("lightcone plane: cell = " + format_number(cell) + " rad for " +
                            std::to_string(n) + " points (the plane must span less than 3 rad)");
    }
  }

  std::size_t size() const { return std::size_t(n) * std::size_t(n); }
  /// Angle of point i from the centre, radians.
  double angle(int i) const { return (i - 0.5 * (n - 1)) * cell; }
  /// Continuous point coordinate of angle theta: angle(t) = theta.
  double coordinate(double theta) const { return theta / cell + 0.5 * (n - 1); }
  std::size_t index(int i, int j) const { return std::size_t(j) * n + i; }
  bool operator==(const PlaneGrid& o) const { return n == o.n && cell == o.cell; }
  bool operator!=(const PlaneGrid& o) const { return !(*this == o); }
};

/// Values on a PlaneGrid (the overdensity of one shell, or its adjoint), zero-initialised.
template <class T>
struct Plane {
  PlaneGrid grid;
  std::vector<T> data;

  Plane() = default;
  explicit Plane(const PlaneGrid& g) : grid(g), data(g.size(), T(0)) {}
};

/// A non-owning view of a plane's values in someone else's memory (device memory, for the
/// device kernels of shell_painting_device.hpp): the grid's points, laid out as in Plane (point
/// (i, j) at data[j n + i]). T may be const (an input); a view converts to its read-only view.
template <class T>
struct PlaneView {
  PlaneGrid grid;
  T* data = nullptr;

  template <class U = T, class = std::enable_if_t<!std::is_const_v<U>>>
  operator PlaneView<const U>() const {
    return {grid, data};
  }
};

namespace detail {
template <class T>
struct ConstPlaneViewOf {
  using type = PlaneView<const T>;
};
}  // namespace detail
/// PlaneView<const T> as a parameter that takes no part in template argument deduction, so that
/// a caller's PlaneView<T> converts to it (as particles::ConstView does for positions).
template <class T>
using ConstPlaneView = typename detail::ConstPlaneViewOf<T>::type;

namespace detail {

/// Linear weights of a continuous point coordinate t along one axis: points lo and lo + 1 with
/// weights 1 - f and f. Points outside [0, n) are reported as -1 (the deposit is dropped).
struct AxisStencil {
  int lo = -1, hi = -1;
  double f = 0.0;
};

DIFFPM_HOST_DEVICE inline AxisStencil axis_stencil(double t, int n) {
  AxisStencil a;
  const double fl = std::floor(t);
  a.f = t - fl;
  if (!(fl >= -1.0 && fl < n)) return {-1, -1, 0.0};
  const int i = static_cast<int>(fl);
  a.lo = i >= 0 ? i : -1;
  a.hi = i + 1 < n ? i + 1 : -1;
  return a;
}

}  // namespace detail
}  // namespace diffpm::lensing
