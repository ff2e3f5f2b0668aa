/// \file
/// \brief Real and complex (half-spectrum) fields on a Grid, in SIMD-aligned host memory.
#pragma once

#include <fftw3.h>

#include <complex>
#include <cstddef>
#include <new>
#include <vector>

#include "diffpm/mesh/grid.hpp"

namespace diffpm::mesh {

namespace detail {
/// std::allocator replacement on fftw_malloc: FFTW's SIMD code paths need its alignment, and
/// plans made on one aligned buffer are valid on any other (the new-array execute interface).
template <class T>
struct FftwAllocator {
  using value_type = T;
  FftwAllocator() = default;
  template <class U>
  FftwAllocator(const FftwAllocator<U>&) {}
  T* allocate(std::size_t n) {
    if (n == 0) return nullptr;
    void* p = fftw_malloc(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) { fftw_free(p); }
  template <class U>
  bool operator==(const FftwAllocator<U>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const FftwAllocator<U>&) const {
    return false;
  }
};
}  // namespace detail

template <class T>
using AlignedVector = std::vector<T, detail::FftwAllocator<T>>;

/// A real scalar field on the n_x n_y n_z cells of a Grid (row-major, z fastest): the owner
/// behind a packed mesh::RealView (mesh::view(field), mesh/view.hpp), which the kernels take.
template <class T>
struct RealField {
  Grid grid;
  AlignedVector<T> data;

  RealField() = default;
  explicit RealField(const Grid& g) : grid(g), data(g.size(), T(0)) {}
  /// Whether the field is on g with its data allocated (a moved-from field keeps its grid but
  /// not its data: output arguments are resized unless this holds).
  bool allocated_on(const Grid& g) const { return grid == g && data.size() == g.size(); }
  T& operator()(int i, int j, int k) { return data[grid.index(i, j, k)]; }
  const T& operator()(int i, int j, int k) const { return data[grid.index(i, j, k)]; }
  std::size_t size() const { return data.size(); }
};

/// The r2c transform of a RealField: modes (i, j, 0 <= k_z <= n_z/2), FFTW's layout; the owner
/// behind a packed mesh::ComplexView (mesh::view(field)).
template <class T>
struct ComplexField {
  Grid grid;
  AlignedVector<std::complex<T>> data;

  ComplexField() = default;
  explicit ComplexField(const Grid& g) : grid(g), data(g.complex_size(), std::complex<T>(0)) {}
  /// As RealField::allocated_on, for the half spectrum.
  bool allocated_on(const Grid& g) const { return grid == g && data.size() == g.complex_size(); }
  std::complex<T>& operator()(int i, int j, int kz) { return data[grid.complex_index(i, j, kz)]; }
  const std::complex<T>& operator()(int i, int j, int kz) const {
    return data[grid.complex_index(i, j, kz)];
  }
  std::size_t size() const { return data.size(); }
};

}  // namespace diffpm::mesh
