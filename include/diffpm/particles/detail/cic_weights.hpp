/// \file
/// \brief The per-particle CIC arithmetic (mesh points, weights, weight gradients) shared by
/// paint, readout and their adjoints on every backend.
#pragma once

#include <cmath>
#include <cstddef>

#include "diffpm/core/host_device.hpp"
#include "diffpm/core/portable_math.hpp"

namespace diffpm::particles::detail {

/// What the per-particle routines need to know about a mesh, as plain data that can be copied
/// to a device: cells per axis, cells per Mpc/h (n_d / L_d), and the flat-index strides of the
/// row-major (z fastest) layout of mesh::Grid.
template <class T>
struct CicGeometry {
  int n[3];
  T cells_per_length[3];
  std::size_t stride_x;  // n_y n_z for diffpm's fields (elements between x-planes)
  std::size_t stride_y;  // n_z for diffpm's fields (elements between rows)
};

/// A mesh whose z stride is not 1 (a mesh::RealView with x fastest, a sub-sampled array...).
/// CicGeometry keeps z contiguous, as in diffpm's fields and FFTW's padded layout, so that the
/// common case pays no multiplication for it; the weights are the same either way.
template <class T>
struct StridedCicGeometry : CicGeometry<T> {
  std::size_t stride_z;
};

/// The flat offset of z index k.
template <class T>
DIFFPM_HOST_DEVICE inline std::size_t z_offset(const CicGeometry<T>&, int k) {
  return std::size_t(k);
}
template <class T>
DIFFPM_HOST_DEVICE inline std::size_t z_offset(const StridedCicGeometry<T>& g, int k) {
  return std::size_t(k) * g.stride_z;
}

/// One axis of a CIC stencil: the particle lies in [lo, lo + 1) dx and gives weight 1 - frac
/// to mesh point lo and frac to point hi = lo + 1 (mod n).
template <class T>
struct CicAxis {
  int lo;
  int hi;
  T frac;
};

/// The mesh points and weights of a particle at coordinate x (Mpc/h) along an axis with n
/// points, wrapped periodically. lo comes from floor(x n / L) alone (one multiplication, one
/// truncation, no sum a compiler could fuse), so every caller, inlined anywhere, sees the same lo
/// for the same x; the plane buckets of the CPU paint rely on that.
///
/// u = x n / L is a product that no compiler may fuse with the subtraction u - floor(u) (nvcc
/// contracts across statements by default, which would change frac's last bit on a GPU and, with
/// it, the integer terms of the fixed-point paint): core/portable_math.hpp's mul.
///
/// frac lies in [0, 1]: it is exact for x >= 0, and for x < 0 the subtraction u - floor(u) may
/// round, up to 1 for a tiny negative x (then all the weight goes to point 0, as it should).
/// A NaN or an |x| beyond 2^62 cells (where no digit of the fraction is left) yields lo = 0,
/// frac = 0, so no input ever indexes outside the mesh; the host entry points reject
/// non-finite positions before they get here.
template <class T>
DIFFPM_HOST_DEVICE inline CicAxis<T> cic_axis(T x, T cells_per_length, int n) {
  const T u = portable::detail::mul(x, cells_per_length);
  CicAxis<T> a;
  if (std::fabs(u) < T(4.6e18)) {  // false for NaN and infinities
    // floor(u) without branches (random positions made a branchy floor mispredict): truncate,
    // then step down where truncation rounded a negative value up. T(i) is exact: it equals
    // floor(u), an integer-valued T.
    long long i = static_cast<long long>(u);
    i -= static_cast<long long>(T(i) > u);
    a.frac = u - T(i);
    if (i >= 0 && i < n) {  // the common case: inside the box
      a.lo = static_cast<int>(i);
    } else {  // outside the box: wrap the integer part exactly
      i %= n;
      a.lo = static_cast<int>(i < 0 ? i + n : i);
    }
  } else {  // NaN, infinite or too far to carry a fraction
    a.lo = 0;
    a.frac = T(0);
  }
  a.hi = a.lo + 1 == n ? 0 : a.lo + 1;
  return a;
}

/// The 8 mesh points (flat indices) of a particle at x (Mpc/h) and their CIC weights. G is
/// CicGeometry<T> or StridedCicGeometry<T>.
/// Corner c = 4 a + 2 b + e takes point hi along x if a = 1 (else lo), along y if b = 1, along
/// z if e = 1; its weight is w_x(a) w_y(b) w_z(e) with w(0) = 1 - frac, w(1) = frac.
template <class T, class G>
DIFFPM_HOST_DEVICE inline void cic_stencil(const T x[3], const G& g, std::size_t index[8],
                                           T weight[8]) {
  const CicAxis<T> ax = cic_axis(x[0], g.cells_per_length[0], g.n[0]);
  const CicAxis<T> ay = cic_axis(x[1], g.cells_per_length[1], g.n[1]);
  const CicAxis<T> az = cic_axis(x[2], g.cells_per_length[2], g.n[2]);
  const std::size_t px[2] = {ax.lo * g.stride_x, ax.hi * g.stride_x};
  const std::size_t py[2] = {ay.lo * g.stride_y, ay.hi * g.stride_y};
  const std::size_t pz[2] = {z_offset(g, az.lo), z_offset(g, az.hi)};
  const T wx[2] = {T(1) - ax.frac, ax.frac};
  const T wy[2] = {T(1) - ay.frac, ay.frac};
  const T wz[2] = {T(1) - az.frac, az.frac};
  for (int a = 0; a < 2; ++a) {
    for (int b = 0; b < 2; ++b) {
      const T wxy = wx[a] * wy[b];
      for (int e = 0; e < 2; ++e) {
        index[4 * a + 2 * b + e] = px[a] + py[b] + pz[e];
        weight[4 * a + 2 * b + e] = wxy * wz[e];
      }
    }
  }
}

/// cic_stencil plus the derivatives of the 8 weights with respect to the particle position,
/// dweight[d][c] = d weight[c] / d x_d in 1/(Mpc/h). The interpolant is linear along each axis
/// inside a cell, so these are constant in the cell; at a cell boundary (frac = 0) they are the
/// right-sided derivatives, those of the cell [lo, lo + 1) dx that floor() puts the particle in.
template <class T, class G>
DIFFPM_HOST_DEVICE inline void cic_stencil_gradient(const T x[3], const G& g, std::size_t index[8],
                                                    T weight[8], T dweight[3][8]) {
  const CicAxis<T> ax = cic_axis(x[0], g.cells_per_length[0], g.n[0]);
  const CicAxis<T> ay = cic_axis(x[1], g.cells_per_length[1], g.n[1]);
  const CicAxis<T> az = cic_axis(x[2], g.cells_per_length[2], g.n[2]);
  const std::size_t px[2] = {ax.lo * g.stride_x, ax.hi * g.stride_x};
  const std::size_t py[2] = {ay.lo * g.stride_y, ay.hi * g.stride_y};
  const std::size_t pz[2] = {z_offset(g, az.lo), z_offset(g, az.hi)};
  const T wx[2] = {T(1) - ax.frac, ax.frac};
  const T wy[2] = {T(1) - ay.frac, ay.frac};
  const T wz[2] = {T(1) - az.frac, az.frac};
  const T dx[2] = {-g.cells_per_length[0], g.cells_per_length[0]};
  const T dy[2] = {-g.cells_per_length[1], g.cells_per_length[1]};
  const T dz[2] = {-g.cells_per_length[2], g.cells_per_length[2]};
  for (int a = 0; a < 2; ++a) {
    for (int b = 0; b < 2; ++b) {
      for (int e = 0; e < 2; ++e) {
        const int c = 4 * a + 2 * b + e;
        index[c] = px[a] + py[b] + pz[e];
        weight[c] = wx[a] * wy[b] * wz[e];
        dweight[0][c] = dx[a] * wy[b] * wz[e];
        dweight[1][c] = wx[a] * dy[b] * wz[e];
        dweight[2][c] = wx[a] * wy[b] * dz[e];
      }
    }
  }
}

}  // namespace diffpm::particles::detail
