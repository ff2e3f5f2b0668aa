/// \file
/// \brief Geometry of a periodic 3D mesh: cells per axis, side lengths, indexing, wavenumbers.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <string>

#include "diffpm/core/error.hpp"

namespace diffpm::mesh {

/// A periodic box of side lengths L = (L_x, L_y, L_z) in Mpc/h cut into n = (n_x, n_y, n_z)
/// cells; sides may differ in cells and in length. Real fields are stored row-major with z
/// fastest, index (i, j, k) -> (i n_y + j) n_z + k; their r2c transforms keep the half-space
/// 0 <= k_z <= n_z/2, shape (n_x, n_y, n_z/2 + 1) (FFTW's layout). Wavevectors follow
/// docs/conventions.md: k = 2 pi m / L with m in [-n/2, n/2).
struct Grid {
  std::array<int, 3> n{};
  std::array<double, 3> length{};

  Grid() = default;
  Grid(std::array<int, 3> cells, std::array<double, 3> lengths) : n(cells), length(lengths) {
    validate();
  }
  /// A cubic mesh: n^3 cells in a box of side L.
  static Grid cube(int cells, double side) {
    return Grid({cells, cells, cells}, {side, side, side});
  }

  /// Throws InvalidArgument naming the axis and value unless every axis has >= 2 cells (CIC
  /// needs two) and a finite positive length, and the mesh fits in memory indices.
  void validate() const {
    const char* axis[3] = {"x", "y", "z"};
    double total = 1.0;
    for (int d = 0; d < 3; ++d) {
      if (n[d] < 2) {
        throw InvalidArgument(std::string("mesh: cells along ") + axis[d] + " = " +
                              std::to_string(n[d]) + " (must be >= 2)");
      }
      if (!(length[d] > 0.0) || !std::isfinite(length[d])) {
        throw InvalidArgument(std::string("mesh: box length along ") + axis[d] + " = " +
                              format_number(length[d]) + " Mpc/h (must be finite and > 0)");
      }
      total *= n[d];
    }
    if (total > 4.0e12) {
      throw InvalidArgument("mesh: " + format_number(total) + " cells is more than diffpm indexes");
    }
  }

  std::size_t size() const { return std::size_t(n[0]) * n[1] * n[2]; }
  int complex_nz() const { return n[2] / 2 + 1; }
  std::size_t complex_size() const { return std::size_t(n[0]) * n[1] * complex_nz(); }
  double volume() const { return length[0] * length[1] * length[2]; }
  double cell_size(int d) const { return length[d] / n[d]; }
  double cell_volume() const { return volume() / double(size()); }

  std::size_t index(int i, int j, int k) const { return (std::size_t(i) * n[1] + j) * n[2] + k; }
  std::size_t complex_index(int i, int j, int kz) const {
    return (std::size_t(i) * n[1] + j) * complex_nz() + kz;
  }

  /// Signed mode number m in [-n/2, n/2) of FFT index idx along axis d.
  int mode(int d, int idx) const { return idx < (n[d] + 1) / 2 ? idx : idx - n[d]; }
  /// Wavenumber 2 pi m / L (h/Mpc) of FFT index idx along axis d.
  double wavenumber(int d, int idx) const {
    return 2.0 * 3.14159265358979323846 * mode(d, idx) / length[d];
  }
  /// Fundamental mode 2 pi / L_d and Nyquist wavenumber pi n_d / L_d.
  double fundamental(int d) const { return 2.0 * 3.14159265358979323846 / length[d]; }
  double nyquist(int d) const { return 3.14159265358979323846 * n[d] / length[d]; }
  /// True for the Nyquist plane of an even axis (index n/2), whose mode is its own conjugate.
  bool is_nyquist(int d, int idx) const { return n[d] % 2 == 0 && idx == n[d] / 2; }

  /// "n_xxn_yxn_z cells, L_xxL_yxL_z Mpc/h" (e.g. "8x6x10 cells, 100x80x50 Mpc/h"), for messages.
  std::string to_string() const {
    return std::to_string(n[0]) + "x" + std::to_string(n[1]) + "x" + std::to_string(n[2]) +
           " cells, " + format_number(length[0]) + "x" + format_number(length[1]) + "x" +
           format_number(length[2]) + " Mpc/h";
  }

  bool operator==(const Grid& o) const { return n == o.n && length == o.length; }
  bool operator!=(const Grid& o) const { return !(*this == o); }
};

}  // namespace diffpm::mesh
