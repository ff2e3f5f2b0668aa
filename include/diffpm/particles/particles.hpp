/// \file
/// \brief Particle containers shared by paint, readout, LPT and the integrator, and non-owning
/// views of particle data in the caller's memory.
#pragma once

#include <array>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "diffpm/core/host_device.hpp"

namespace diffpm::particles {

/// Particle positions (or displacements, velocities, their adjoints): one (x, y, z) per
/// particle, in Mpc/h for positions. Positions may lie anywhere; every mesh operation wraps
/// them into the periodic box.
template <class T>
using Positions = std::vector<std::array<T, 3>>;

/// A non-owning view of `size` three-vectors in someone else's memory: component d of vector i
/// is the T at byte offset i * stride from component[d]. Array-of-structs data (the three
/// coordinates inside a user's particle struct, stride = sizeof(struct)) and struct-of-arrays
/// data (three arrays, stride = sizeof(T)) both work without copies. T may be const (an input).
/// The memory must outlive every use of the view.
template <class T>
struct Vec3View {
  using Byte = std::conditional_t<std::is_const_v<T>, const unsigned char, unsigned char>;
  std::array<T*, 3> component{};
  std::ptrdiff_t stride = sizeof(T);  ///< bytes from one vector to the next
  std::size_t size = 0;

  DIFFPM_HOST_DEVICE T& operator()(std::size_t i, int d) const {
    return *reinterpret_cast<T*>(reinterpret_cast<Byte*>(component[d]) +
                                 std::ptrdiff_t(i) * stride);
  }
  std::array<std::remove_const_t<T>, 3> operator[](std::size_t i) const {
    return {(*this)(i, 0), (*this)(i, 1), (*this)(i, 2)};
  }
  /// The read-only view of the same memory (for a mutable view only: a conversion of a
  /// read-only view to its own type would never be called).
  template <class U = T, class = std::enable_if_t<!std::is_const_v<U>>>
  operator Vec3View<const U>() const {
    return {{component[0], component[1], component[2]}, stride, size};
  }
};

namespace detail {
template <class T>
struct ConstViewOf {
  using type = Vec3View<const T>;
};
}  // namespace detail
/// Vec3View<const T> as a function parameter that takes no part in template argument
/// deduction, so that a caller's Vec3View<T> converts to it: f(Vec3View<T> y, ConstView<T> v).
template <class T>
using ConstView = typename detail::ConstViewOf<T>::type;

/// The vectors of v as an array of packed (x, y, z) triples, if that is how they lie in memory
/// (diffpm's containers, a user's array of 3-arrays); else null. Kernels use it to take a
/// loop with no run-time stride (vectorisable, fewer address computations), with the same
/// arithmetic and therefore the same bits as through the view.
template <class T>
auto packed(const Vec3View<T>& v) {
  using Triple = std::conditional_t<std::is_const_v<T>, const std::array<std::remove_const_t<T>, 3>,
                                    std::array<T, 3>>;
  static_assert(sizeof(Triple) == 3 * sizeof(T), "std::array<T, 3> is packed");
  const bool is_packed = v.size > 0 && v.stride == std::ptrdiff_t(3 * sizeof(T)) &&
                         v.component[1] == v.component[0] + 1 &&
                         v.component[2] == v.component[0] + 2;
  return is_packed ? reinterpret_cast<Triple*>(v.component[0]) : static_cast<Triple*>(nullptr);
}

/// Views of diffpm's own containers.
template <class T>
Vec3View<T> view(std::vector<std::array<T, 3>>& v) {
  T* first = v.empty() ? nullptr : v[0].data();
  return {{first, first ? first + 1 : nullptr, first ? first + 2 : nullptr},
          std::ptrdiff_t(sizeof(std::array<T, 3>)),
          v.size()};
}
template <class T>
Vec3View<const T> view(const std::vector<std::array<T, 3>>& v) {
  const T* first = v.empty() ? nullptr : v[0].data();
  return {{first, first ? first + 1 : nullptr, first ? first + 2 : nullptr},
          std::ptrdiff_t(sizeof(std::array<T, 3>)),
          v.size()};
}

/// Struct-of-arrays data: three arrays of n values.
template <class T>
Vec3View<T> soa_view(T* x, T* y, T* z, std::size_t n) {
  return {{x, y, z}, std::ptrdiff_t(sizeof(T)), n};
}

/// Array-of-structs data: the x coordinate of element 0 at `x0`, y and z right after it, and
/// `stride_bytes` from one element to the next (sizeof the user's struct).
template <class T>
Vec3View<T> aos_view(T* x0, std::ptrdiff_t stride_bytes, std::size_t n) {
  return {{x0, x0 + 1, x0 + 2}, stride_bytes, n};
}

}  // namespace diffpm::particles
