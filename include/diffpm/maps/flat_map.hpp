/// \file
/// \brief A square flat-sky map: its geometry (field of view, pixels) and its pixel values.
/// A layer of its own, depending on core/ only, so that lensing/ (which makes maps) and io/
/// (which writes them) both use it without io/ depending on lensing/.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"

namespace diffpm::maps {

/// A square patch of sky in the flat-sky approximation: `pixels` x `pixels` square pixels
/// covering a field of view `fov_deg` degrees on a side, centred on the line of sight (the
/// box's x axis, docs/conventions.md). Angles theta = (theta_x, theta_y) are measured from the
/// centre in radians; pixel (ix, iy) has its centre at theta = (angle(ix), angle(iy)) and is
/// stored at index iy * pixels + ix (x fastest, the FITS order: NAXIS1 = x).
struct MapGeometry {
  int pixels = 0;
  double fov_deg = 0.0;

  MapGeometry() = default;
  MapGeometry(int pixels_per_side, double field_of_view_deg)
      : pixels(pixels_per_side), fov_deg(field_of_view_deg) {
    validate();
  }

  /// Throws InvalidArgument naming the value unless pixels >= 2 and 0 < fov < 90 degrees (the
  /// flat-sky projection chi * theta needs |theta| well below a radian; at 90 degrees it is off
  /// by tens of percent at the corners, and users should not be allowed to ask for it).
  void validate() const {
    if (pixels < 2 || pixels > 65536) {
      throw InvalidArgument("map: pixels = " + std::to_string(pixels) + " (must be in [2, 65536])");
    }
    if (!(fov_deg > 0.0) || !(fov_deg < 90.0)) {
      throw InvalidArgument("map: field of view = " + format_number(fov_deg) +
                            " deg (must be in (0, 90))");
    }
  }

  std::size_t size() const { return std::size_t(pixels) * std::size_t(pixels); }
  double fov_rad() const { return fov_deg * (M_PI / 180.0); }
  /// Side of one pixel in radians.
  double pixel_rad() const { return fov_rad() / pixels; }
  /// Solid angle of one pixel in steradians (flat sky).
  double pixel_area_sr() const { return pixel_rad() * pixel_rad(); }
  /// Angle (radians from the centre) of the centre of pixel i along either axis.
  double angle(int i) const { return ((i + 0.5) / pixels - 0.5) * fov_rad(); }
  std::size_t index(int ix, int iy) const { return std::size_t(iy) * pixels + ix; }

  bool operator==(const MapGeometry& o) const { return pixels == o.pixels && fov_deg == o.fov_deg; }
  bool operator!=(const MapGeometry& o) const { return !(*this == o); }
};

/// Pixel values on a MapGeometry, zero-initialised.
template <class T>
struct Map {
  MapGeometry geometry;
  std::vector<T> data;

  Map() = default;
  explicit Map(const MapGeometry& g) : geometry(g), data(g.size(), T(0)) {}

  T& operator()(int ix, int iy) { return data[geometry.index(ix, iy)]; }
  const T& operator()(int ix, int iy) const { return data[geometry.index(ix, iy)]; }
};

}  // namespace diffpm::maps
