/// \file
/// \brief Sampling a density plane at the map's pixel centres (bilinear), and the adjoint.
#pragma once

#include <cstddef>
#include <string>

#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/lensing/flat_map.hpp"
#include "diffpm/lensing/plane.hpp"

namespace diffpm::lensing {

namespace detail {
/// The plane must reach one cell beyond the map's outermost pixel centres, so that sampling
/// never reads an edge point (PlaneGrid::covering gives two cells).
inline void check_plane_covers(const PlaneGrid& g, const MapGeometry& map, const char* fn) {
  g.validate();
  map.validate();
  const double need = -map.angle(0) + g.cell;
  if (g.angle(g.n - 1) < need * (1.0 - 1e-12)) {
    throw InvalidArgument(std::string(fn) + ": the plane spans +-" +
                          format_number(g.angle(g.n - 1)) + " rad, less than the map's +-" +
                          format_number(-map.angle(0)) +
                          " rad plus one cell (use PlaneGrid::covering)");
  }
}
}  // namespace detail

/// map(theta) = plane(theta) at the map's pixel centres (flat_map.hpp), bilinear in the plane's
/// points (the transpose of its 2D CIC, plane.hpp). Overwrites `map`, whose geometry is kept.
/// Pixels are sampled at their centres, not averaged over their area; planes are no finer
/// than the pixels (PlaneGrid::covering), so this only smooths.
template <class T>
void interpolate_plane(const Plane<T>& plane, Map<T>& map) {
  detail::check_plane_covers(plane.grid, map.geometry, "interpolate_plane");
  map.data.assign(map.geometry.size(), T(0));
  const int P = map.geometry.pixels, n = plane.grid.n;
  const T* pl = plane.data.data();
  DIFFPM_OMP(omp parallel for schedule(static))
  for (int iy = 0; iy < P; ++iy) {
    const auto ay = detail::axis_stencil(plane.grid.coordinate(map.geometry.angle(iy)), n);
    for (int ix = 0; ix < P; ++ix) {
      const auto ax = detail::axis_stencil(plane.grid.coordinate(map.geometry.angle(ix)), n);
      const double lo = double(pl[std::size_t(ay.lo) * n + ax.lo]) * (1.0 - ax.f) +
                        double(pl[std::size_t(ay.lo) * n + ax.hi]) * ax.f;
      const double hi = double(pl[std::size_t(ay.hi) * n + ax.lo]) * (1.0 - ax.f) +
                        double(pl[std::size_t(ay.hi) * n + ax.hi]) * ax.f;
      map.data[map.geometry.index(ix, iy)] = static_cast<T>(lo * (1.0 - ay.f) + hi * ay.f);
    }
  }
}

/// The adjoint of interpolate_plane: adds the transpose of the bilinear sampling of map_bar to
/// plane_bar (sized to the plane's grid, zeros, if its data is empty). The scatter runs in
/// pixel order on one thread, so the result is the same for any thread count (10^6 pixels
/// take a few ms).
template <class T>
void interpolate_plane_adjoint(const Map<T>& map_bar, Plane<T>& plane_bar) {
  detail::check_plane_covers(plane_bar.grid, map_bar.geometry, "interpolate_plane_adjoint");
  if (map_bar.data.size() != map_bar.geometry.size()) {
    throw InvalidArgument("interpolate_plane_adjoint: map_bar holds " +
                          std::to_string(map_bar.data.size()) + " pixels, expected " +
                          std::to_string(map_bar.geometry.size()));
  }
  if (plane_bar.data.empty()) plane_bar.data.assign(plane_bar.grid.size(), T(0));
  if (plane_bar.data.size() != plane_bar.grid.size()) {
    throw InvalidArgument("interpolate_plane_adjoint: plane_bar holds " +
                          std::to_string(plane_bar.data.size()) + " values for " +
                          std::to_string(plane_bar.grid.size()) + " points");
  }
  const int P = map_bar.geometry.pixels, n = plane_bar.grid.n;
  T* pb = plane_bar.data.data();
  for (int iy = 0; iy < P; ++iy) {
    const auto ay = detail::axis_stencil(plane_bar.grid.coordinate(map_bar.geometry.angle(iy)), n);
    for (int ix = 0; ix < P; ++ix) {
      const auto ax =
          detail::axis_stencil(plane_bar.grid.coordinate(map_bar.geometry.angle(ix)), n);
      const double mb = double(map_bar.data[map_bar.geometry.index(ix, iy)]);
      pb[std::size_t(ay.lo) * n + ax.lo] += static_cast<T>(mb * (1.0 - ax.f) * (1.0 - ay.f));
      pb[std::size_t(ay.lo) * n + ax.hi] += static_cast<T>(mb * ax.f * (1.0 - ay.f));
      pb[std::size_t(ay.hi) * n + ax.lo] += static_cast<T>(mb * (1.0 - ax.f) * ay.f);
      pb[std::size_t(ay.hi) * n + ax.hi] += static_cast<T>(mb * ax.f * ay.f);
    }
  }
}

}  // namespace diffpm::lensing
