/// \file
/// \brief Non-owning views of real meshes and half spectra in someone else's memory: diffpm's
/// fields, a caller's packed array, or FFTW's padded in-place r2c buffer.
///
/// A view is a pointer, the Grid and one element stride per axis (std::ptrdiff_t, counted in
/// elements: T for a RealView, std::complex<T> for a ComplexView). Element (i, j, k) is
/// data[i stride[0] + j stride[1] + k stride[2]]. A RealView spans (n_x, n_y, n_z) cells
/// (values in whatever units the kernel takes: counts, overdensity, potential...); a
/// ComplexView spans the half spectrum (n_x, n_y, n_z/2 + 1) of FftPlan's forward transform
/// (docs/conventions.md, "Mesh layouts"). Layouts:
///   - packed (diffpm's RealField / ComplexField, a caller's plain array): row-major, z fastest,
///     strides (n_y n_z, n_z, 1) for real meshes and (n_y n_zc, n_zc, 1), n_zc = n_z/2 + 1, for
///     half spectra;
///   - FFTW's padded in-place r2c layout (padded_in_place): one buffer of n_x n_y 2 n_zc T,
///     viewed as a real mesh with rows of 2 n_zc T (the last 2 n_zc - n_z of each row are
///     padding that no real-space kernel reads or writes) and as the half spectrum with
///     rows of n_zc complex values (packed);
///   - any other positive strides whose rows do not overlap (a sub-block of a larger array, a
///     mesh with x fastest...), taken by the CIC and Fourier kernels but not by the FFT.
/// Kernels check a view (check_view): a null pointer, a stride <= 0 or strides under which two
/// elements share memory throw InvalidArgument naming the argument.
///
/// Ownership: a view owns nothing. The memory must outlive every use of the view, and a field
/// must not be reallocated (resized, moved from, assigned a new grid) while a view of it is in
/// use. T may be const (a kernel's input); a view converts to its const view, as
/// particles::Vec3View does.
#pragma once

#include <algorithm>
#include <array>
#include <complex>
#include <cstddef>
#include <string>
#include <type_traits>

#include "diffpm/core/error.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/grid.hpp"

namespace diffpm::mesh {

/// The common shape of RealView (Complex = false) and ComplexView (Complex = true). T is the
/// real type, possibly const; Element is T or std::complex<T> with the same constness.
template <class T, bool Complex>
struct MeshView {
  using value_type = std::remove_const_t<T>;
  using Element =
      std::conditional_t<Complex,
                         std::conditional_t<std::is_const_v<T>, const std::complex<value_type>,
                                            std::complex<value_type>>,
                         T>;

  Element* data = nullptr;
  Grid grid;
  std::array<std::ptrdiff_t, 3> stride{};  ///< elements from one index to the next, per axis

  MeshView() = default;
  MeshView(Element* d, const Grid& g, std::array<std::ptrdiff_t, 3> s)
      : data(d), grid(g), stride(s) {}
  /// A view converts to the read-only view of the same memory.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_const_v<U>>>
  MeshView(const MeshView<U, Complex>& v) : data(v.data), grid(v.grid), stride(v.stride) {}

  /// Cells along axis d: n_d, or n_z/2 + 1 along z for a half spectrum.
  int extent(int d) const { return Complex && d == 2 ? grid.complex_nz() : grid.n[d]; }
  /// The strides of diffpm's fields (row-major, z fastest) on this grid.
  std::array<std::ptrdiff_t, 3> packed_strides() const {
    const std::ptrdiff_t nz = extent(2);
    return {std::ptrdiff_t(grid.n[1]) * nz, nz, 1};
  }
  /// Whether the elements are contiguous and row-major, as in RealField / ComplexField:
  /// element (i, j, k) is data[flat index of Grid::index / Grid::complex_index]. Kernels take
  /// a loop with no run-time stride then (the same arithmetic, so the same bits).
  bool is_packed() const { return stride == packed_strides(); }
  /// The number of elements the view spans, 1 + sum_d (extent_d - 1) stride_d (strides > 0).
  std::size_t span() const {
    std::size_t s = 1;
    for (int d = 0; d < 3; ++d) s += std::size_t(extent(d) - 1) * std::size_t(stride[d]);
    return s;
  }
  std::ptrdiff_t offset(int i, int j, int k) const {
    return std::ptrdiff_t(i) * stride[0] + std::ptrdiff_t(j) * stride[1] +
           std::ptrdiff_t(k) * stride[2];
  }
  Element& operator()(int i, int j, int k) const { return data[offset(i, j, k)]; }
};

/// A real mesh (n_x, n_y, n_z) in someone else's memory.
template <class T>
using RealView = MeshView<T, false>;
/// A half spectrum (n_x, n_y, n_z/2 + 1) in someone else's memory (std::complex<T> elements).
template <class T>
using ComplexView = MeshView<T, true>;

namespace detail {
template <class T>
struct ConstRealViewOf {
  using type = RealView<const T>;
};
template <class T>
struct ConstComplexViewOf {
  using type = ComplexView<const T>;
};
}  // namespace detail
/// RealView<const T> / ComplexView<const T> as parameters that take no part in template argument
/// deduction, so that a caller's RealView<T> converts to them (f(ConstRealView<T> in,
/// RealView<T> out)), as particles::ConstView.
template <class T>
using ConstRealView = typename detail::ConstRealViewOf<T>::type;
template <class T>
using ConstComplexView = typename detail::ConstComplexViewOf<T>::type;

// ---------------------------------------------------------------------------------------------
// Factories
// ---------------------------------------------------------------------------------------------

/// Packed views of diffpm's fields (null data if the field holds none: kernels then throw).
template <class T>
RealView<T> view(RealField<T>& f) {
  return {f.data.empty() ? nullptr : f.data.data(),
          f.grid,
          {std::ptrdiff_t(f.grid.n[1]) * f.grid.n[2], f.grid.n[2], 1}};
}
template <class T>
RealView<const T> view(const RealField<T>& f) {
  return {f.data.empty() ? nullptr : f.data.data(),
          f.grid,
          {std::ptrdiff_t(f.grid.n[1]) * f.grid.n[2], f.grid.n[2], 1}};
}
template <class T>
ComplexView<T> view(ComplexField<T>& f) {
  const std::ptrdiff_t nzc = f.grid.n[2] / 2 + 1;
  return {f.data.empty() ? nullptr : f.data.data(), f.grid, {f.grid.n[1] * nzc, nzc, 1}};
}
template <class T>
ComplexView<const T> view(const ComplexField<T>& f) {
  const std::ptrdiff_t nzc = f.grid.n[2] / 2 + 1;
  return {f.data.empty() ? nullptr : f.data.data(), f.grid, {f.grid.n[1] * nzc, nzc, 1}};
}

/// A packed real mesh at `data` (n_x n_y n_z values, row-major, z fastest), e.g. a caller's
/// plain array. T may be const.
template <class T>
RealView<T> packed(T* data, const Grid& grid) {
  return {data, grid, {std::ptrdiff_t(grid.n[1]) * grid.n[2], grid.n[2], 1}};
}
/// A packed half spectrum at `data` (n_x n_y (n_z/2 + 1) values, FFTW's r2c output layout).
template <class T>
ComplexView<T> packed(std::complex<T>* data, const Grid& grid) {
  const std::ptrdiff_t nzc = grid.n[2] / 2 + 1;
  return {data, grid, {grid.n[1] * nzc, nzc, 1}};
}
template <class T>
ComplexView<const T> packed(const std::complex<T>* data, const Grid& grid) {
  const std::ptrdiff_t nzc = grid.n[2] / 2 + 1;
  return {data, grid, {grid.n[1] * nzc, nzc, 1}};
}

/// The number of T in FFTW's padded in-place r2c buffer for `grid`: n_x n_y 2 (n_z/2 + 1).
inline std::size_t padded_in_place_size(const Grid& grid) {
  return std::size_t(grid.n[0]) * grid.n[1] * 2 * std::size_t(grid.complex_nz());
}

/// The two views of FFTW's padded in-place r2c buffer (FFTW manual, "Multi-Dimensional DFTs of
/// Real Data"): `real` has rows of 2 (n_z/2 + 1) T of which the first n_z are the mesh, and
/// `complex` is the half spectrum in the same memory, packed.
template <class T>
struct PaddedViews {
  RealView<T> real;
  ComplexView<T> complex;
};

/// The padded in-place views of `data`, which must hold padded_in_place_size(grid) T (for the
/// FFT, allocated by fftw_malloc or as aligned as FftPlan requires). T may be const.
template <class T>
PaddedViews<T> padded_in_place(T* data, const Grid& grid) {
  using C = typename ComplexView<T>::Element;
  const std::ptrdiff_t nzc = grid.n[2] / 2 + 1;
  return {RealView<T>(data, grid, {grid.n[1] * 2 * nzc, 2 * nzc, 1}),
          ComplexView<T>(reinterpret_cast<C*>(data), grid, {grid.n[1] * nzc, nzc, 1})};
}

/// Whether a real view has FFTW's padded in-place layout (rows of 2 (n_z/2 + 1) T).
template <class T>
bool is_padded_in_place(const RealView<T>& v) {
  const std::ptrdiff_t nzc = v.grid.n[2] / 2 + 1;
  return v.stride == std::array<std::ptrdiff_t, 3>{v.grid.n[1] * 2 * nzc, 2 * nzc, 1};
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// Throws InvalidArgument naming `function` and `name` unless v is a usable view: a valid grid
/// (on `expected`, when given), a non-null pointer, strides > 0, and no two elements at the same
/// address (taking the axes from the smallest stride to the largest, each stride is at least
/// the span of the axes below it: rows may have gaps, like FFTW's padding, but never overlap).
template <class T, bool Complex>
void check_view(const MeshView<T, Complex>& v, const char* function, const char* name,
                const Grid* expected = nullptr) {
  // The message prefix is built only on failure: kernels check their views on every call.
  const auto where = [&] { return std::string(function) + ": " + name; };
  try {
    v.grid.validate();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(where() + " has an invalid grid (" + e.what() + ")");
  }
  if (expected && v.grid != *expected) {
    throw InvalidArgument(where() + " is on a mesh of " + v.grid.to_string() + ", expected " +
                          expected->to_string());
  }
  if (!v.data) {
    throw InvalidArgument(where() + " is a view of a mesh of " + v.grid.to_string() +
                          " with a null pointer");
  }
  const char* axis[3] = {"x", "y", "z"};
  for (int d = 0; d < 3; ++d) {
    if (v.stride[d] <= 0) {
      throw InvalidArgument(where() + " has stride " + std::to_string(v.stride[d]) + " along " +
                            axis[d] + " (must be > 0)");
    }
  }
  int order[3] = {0, 1, 2};
  std::sort(order, order + 3, [&](int a, int b) {
    return v.stride[a] < v.stride[b] || (v.stride[a] == v.stride[b] && a > b);
  });
  std::ptrdiff_t below = 1;  // the span of the axes with smaller strides
  for (int r = 0; r < 3; ++r) {
    const int d = order[r];
    if (v.stride[d] < below) {
      throw InvalidArgument(
          where() + " has overlapping elements: stride " + std::to_string(v.stride[d]) + " along " +
          axis[d] + " is less than the " + std::to_string(below) +
          " elements spanned by the axes with smaller strides (" + std::to_string(v.extent(0)) +
          "x" + std::to_string(v.extent(1)) + "x" + std::to_string(v.extent(2)) +
          " elements, strides " + std::to_string(v.stride[0]) + ", " + std::to_string(v.stride[1]) +
          ", " + std::to_string(v.stride[2]) + ")");
    }
    below = v.stride[d] * v.extent(d);
  }
}

}  // namespace diffpm::mesh
