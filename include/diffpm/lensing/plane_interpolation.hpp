/// \file
/// \brief Sampling a density plane at the map's pixels (bilinear, periodic), and the adjoint.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/lensing/flat_map.hpp"
#include "diffpm/lensing/plane.hpp"

namespace diffpm::lensing {

namespace detail {
inline void check_chi(double chi, const char* fn) {
  if (!(chi >= 0.0) || !std::isfinite(chi)) {
    throw InvalidArgument(std::string(fn) + ": chi = " + format_number(chi) +
                          " Mpc/h (must be finite and >= 0)");
  }
}
}  // namespace detail

/// map(theta) = plane(chi theta_x, chi theta_y): the plane at comoving distance chi seen under
/// the flat-sky angles theta of the map's pixel centres (flat_map.hpp), sampled bilinearly with
/// periodic wrap (the transpose of the plane's 2D CIC, plane.hpp). Overwrites `map`, whose
/// geometry is kept. Pixels are sampled at their centres, not averaged over their area: where a
/// pixel spans more than a plane cell (chi * pixel > cell), plane structure below the pixel
/// scale aliases into the map (as in JaxPM's and FlowPM's Born maps).
template <class T>
void interpolate_plane(const Plane<T>& plane, double chi, Map<T>& map) {
  detail::check_chi(chi, "interpolate_plane");
  plane.grid.validate();
  map.geometry.validate();
  map.data.assign(map.geometry.size(), T(0));
  const int P = map.geometry.pixels;
  const int nv = plane.grid.n[1];
  const T* pl = plane.data.data();
  DIFFPM_OMP(omp parallel for schedule(static))
  for (int iy = 0; iy < P; ++iy) {
    const double v = chi * map.geometry.angle(iy);
    for (int ix = 0; ix < P; ++ix) {
      const auto st = detail::plane_stencil(plane.grid, chi * map.geometry.angle(ix), v);
      const double lo = double(pl[std::size_t(st.i0) * nv + st.j0]) * (1.0 - st.fv) +
                        double(pl[std::size_t(st.i0) * nv + st.j1]) * st.fv;
      const double hi = double(pl[std::size_t(st.i1) * nv + st.j0]) * (1.0 - st.fv) +
                        double(pl[std::size_t(st.i1) * nv + st.j1]) * st.fv;
      map.data[map.geometry.index(ix, iy)] = static_cast<T>(lo * (1.0 - st.fu) + hi * st.fu);
    }
  }
}

/// The adjoint of interpolate_plane: adds the transpose of the bilinear sampling of map_bar to
/// plane_bar (sized to the plane, zeros, if its data is empty) and returns dL/dchi =
/// sum_theta map_bar(theta) theta . grad plane(chi theta). The scatter runs serially in pixel
/// order, so the result is the same for any thread count (a map of 10^6 pixels takes a few ms).
template <class T>
double interpolate_plane_adjoint(const Plane<T>& plane, double chi, const Map<T>& map_bar,
                                 Plane<T>& plane_bar) {
  detail::check_chi(chi, "interpolate_plane_adjoint");
  plane.grid.validate();
  map_bar.geometry.validate();
  if (map_bar.data.size() != map_bar.geometry.size()) {
    throw InvalidArgument("interpolate_plane_adjoint: map_bar holds " +
                          std::to_string(map_bar.data.size()) + " pixels, expected " +
                          std::to_string(map_bar.geometry.size()));
  }
  if (plane_bar.data.empty()) plane_bar = Plane<T>(plane.grid);
  if (plane_bar.grid != plane.grid || plane_bar.data.size() != plane.grid.size()) {
    throw InvalidArgument("interpolate_plane_adjoint: plane_bar is not on the plane's grid");
  }
  const int P = map_bar.geometry.pixels;
  const int nv = plane.grid.n[1];
  const double su = plane.grid.n[0] / plane.grid.length[0];
  const double sv = plane.grid.n[1] / plane.grid.length[1];
  const T* pl = plane.data.data();
  T* pb = plane_bar.data.data();
  double d_chi = 0.0;
  for (int iy = 0; iy < P; ++iy) {
    const double ty = map_bar.geometry.angle(iy);
    for (int ix = 0; ix < P; ++ix) {
      const double tx = map_bar.geometry.angle(ix);
      const double mb = double(map_bar.data[map_bar.geometry.index(ix, iy)]);
      const auto st = detail::plane_stencil(plane.grid, chi * tx, chi * ty);
      const std::size_t c00 = std::size_t(st.i0) * nv + st.j0, c01 = std::size_t(st.i0) * nv + st.j1;
      const std::size_t c10 = std::size_t(st.i1) * nv + st.j0, c11 = std::size_t(st.i1) * nv + st.j1;
      pb[c00] += static_cast<T>(mb * (1.0 - st.fu) * (1.0 - st.fv));
      pb[c01] += static_cast<T>(mb * (1.0 - st.fu) * st.fv);
      pb[c10] += static_cast<T>(mb * st.fu * (1.0 - st.fv));
      pb[c11] += static_cast<T>(mb * st.fu * st.fv);
      const double p00 = double(pl[c00]), p01 = double(pl[c01]);
      const double p10 = double(pl[c10]), p11 = double(pl[c11]);
      const double lo = p00 * (1.0 - st.fv) + p01 * st.fv, hi = p10 * (1.0 - st.fv) + p11 * st.fv;
      const double gu = (hi - lo) * su;
      const double gv = ((p01 - p00) * (1.0 - st.fu) + (p11 - p10) * st.fu) * sv;
      d_chi += mb * (gu * tx + gv * ty);
    }
  }
  return d_chi;
}

}  // namespace diffpm::lensing
