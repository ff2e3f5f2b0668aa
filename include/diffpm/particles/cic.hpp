/// \file
/// \brief Cloud-in-cell painting and readout, their position gradients and adjoints, and the
/// CIC window in Fourier space.
///
/// Convention (FastPM, pmwd, JaxPM): mesh point (i, j, k) sits at position (i dx, j dy, k dz),
/// d_ = L_ / n_. A particle at x = (i + f) dx, 0 <= f < 1, gives weight 1 - f to point i and f to
/// point i + 1 (mod n) along each axis, the product of the three over the 8 points around it;
/// positions anywhere (negative, beyond L) are wrapped into the periodic box. Paint and readout
/// are exact transposes: both run the one weight routine of detail/cic_weights.hpp.
///
/// Derivatives with respect to positions are those of the piecewise-trilinear interpolant:
/// constant inside a cell along its axis, and at a cell boundary (f = 0) the right-sided ones,
/// of the cell [i dx, (i + 1) dx) the particle is in.
///
/// Adjoints are vector-Jacobian products that *accumulate* into their outputs (`*_bar`); an
/// empty output vector (or a mesh with no data) is first made zeros of the right size. Mesh
/// grids, vector sizes and positions are checked: bad input throws diffpm::InvalidArgument
/// naming the value, before anything is accumulated.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/core/deterministic_sum.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/fixed_point.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/grid.hpp"
#include "diffpm/mesh/view.hpp"
#include "diffpm/particles/detail/cic_fixed.hpp"
#include "diffpm/particles/detail/cic_interpolate.hpp"
#include "diffpm/particles/detail/cic_paint.hpp"
#include "diffpm/particles/detail/cic_weights.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::particles {

namespace detail {
/// Keeps a parameter out of template deduction, so paint_cic(x, mesh_float, 2.0) compiles.
template <class T>
struct Identity {
  using type = T;
};
template <class T>
using identity_t = typename Identity<T>::type;

template <class T>
void zero(mesh::RealField<T>& field) {
  zero(mesh::view(field));
}

/// A mesh adjoint that accumulates: zeros on `grid` if it holds no data, else checked.
template <class T>
void prepare_mesh_accumulator(mesh::RealField<T>& field, const mesh::Grid& grid,
                              const char* function, const char* name) {
  if (field.data.empty()) field = mesh::RealField<T>(grid);
  check_field(field, function, name, &grid);
}

/// Throws InvalidArgument naming `name` unless the three views share one set of strides (the
/// vector readout and its adjoint compute one stencil for the three meshes).
template <class A, class B>
void check_same_strides(const mesh::RealView<A>& first, const mesh::RealView<B>& v,
                        const char* function, const char* first_name, const char* name) {
  if (v.stride != first.stride) {
    throw InvalidArgument(std::string(function) + ": " + name + " has strides " +
                          std::to_string(v.stride[0]) + ", " + std::to_string(v.stride[1]) + ", " +
                          std::to_string(v.stride[2]) + ", " + first_name + " " +
                          std::to_string(first.stride[0]) + ", " + std::to_string(first.stride[1]) +
                          ", " + std::to_string(first.stride[2]) + " (they must have one layout)");
  }
}

/// Parallel finiteness check for functions that accumulate (and must not half-accumulate).
template <class T>
void check_positions(const Positions<T>& positions, const char* function) {
  const std::ptrdiff_t n = std::ptrdiff_t(positions.size());
  int bad = 0;
  DIFFPM_OMP(omp parallel for schedule(static) reduction(| : bad))
  for (std::ptrdiff_t p = 0; p < n; ++p) bad |= !finite_position(positions[p]);
  if (bad) throw_non_finite(positions, function);
}

/// The CIC readout at x: the interpolated value and, with Gradient, its position gradient (in
/// mesh units per Mpc/h). Every readout of one mesh (readout_cic, its gradient and adjoints,
/// PmForce's force) runs this one routine, so the value is the same arithmetic, bit for bit,
/// whether or not the gradient is asked for: the forward force and the reverse pass of the exact
/// integrator (nbody/reversible.hpp) rely on that. (The three-mesh readout_cic shares one
/// stencil between its components.) The weights and their derivatives are those of
/// detail/cic_weights.hpp; G (CicGeometry or StridedCicGeometry) only places the 8 points.
template <bool Gradient, class T, class G>
inline void interpolate(const T* m, const T x[3], const G& g, T& value, identity_t<T>* grad) {
  // The one per-particle routine of every backend (detail/cic_interpolate.hpp): both stencil
  // routines form w_x w_y w_z left to right (products only, nothing a compiler may contract).
  interpolate_at<Gradient>(m, x, g, value, grad);
}

/// readout_cic's loop: out[p] = readout at x[p]; returns nonzero if a position is not finite.
/// Everything it reads comes in as a parameter (a local), so the parallel loop reaches it
/// without going through a closure.
template <class T, class G>
int readout_loop(const T* m, const G g, const std::array<T, 3>* x, T* out, std::ptrdiff_t n) {
  int flagged = 0;
  DIFFPM_OMP(omp parallel for schedule(static) reduction(| : flagged))
  for (std::ptrdiff_t p = 0; p < n; ++p) {
    flagged |= !finite_position(x[p]);
    interpolate<false>(m, x[p].data(), g, out[p], nullptr);
  }
  return flagged;
}

/// Interpolated value and its position gradient at x (the core of readout_cic_gradient and of
/// both adjoints).
template <class T, class G>
void value_and_gradient(const T* m, const T x[3], const G& g, T& value, T grad[3]) {
  interpolate<true>(m, x, g, value, grad);
}

/// The weighted paint adjoint's loop: xb[p] += w[p] grad readout(x[p]), wb[p] += readout(x[p]).
/// Parameters are locals, as in readout_loop.
template <class T, class G>
void paint_adjoint_loop(const T* m, const G g, const std::array<T, 3>* x, const T* w,
                        std::array<T, 3>* xb, T* wb, std::ptrdiff_t n) {
  DIFFPM_OMP(omp parallel for schedule(static))
  for (std::ptrdiff_t p = 0; p < n; ++p) {
    T value, grad[3];
    value_and_gradient(m, x[p].data(), g, value, grad);
    for (int d = 0; d < 3; ++d) xb[p][d] += w[p] * grad[d];
    wb[p] += value;
  }
}
}  // namespace detail

// ----------------------------------------------------------------------------------------------
// Paint
// ----------------------------------------------------------------------------------------------
//
// Every kernel takes its meshes as views (mesh/view.hpp: diffpm's fields, a caller's packed
// array, FFTW's padded in-place buffer, any non-overlapping strides); the RealField overloads
// check the field, make the views and call them (the same arithmetic, so the same bits). A paint
// into a view writes only its n_x n_y n_z cells: FFTW's padding keeps what the caller put there.

/// Deposits `weight` per particle on the CIC mesh points around it: mesh (+)= sum_p weight
/// W(x_p); with accumulate = false the mesh's old values are ignored. The sum is taken in
/// 64-bit fixed point (core/fixed_point.hpp; docs/design.md, "Deterministic scatter"): each
/// term weight W_c(x_p) is rounded to a multiple of 2^-62 n max|weight| (far below a float
/// ulp), and for double its residual again in a second 64-bit word (so that a cell is within an
/// ulp or two of the exact sum of its terms), then the integers are summed exactly, so the
/// result is the same bits for any thread count and any particle order, and on every backend
/// (detail::gather_planes). Scratch memory: one plane-sorted copy of the positions (and
/// weights), 3 (+1) T per particle, and two planes of 64-bit integers per thread (of two words
/// per cell for double). To paint a
/// density contrast, use weight = n_cells / n_particles and subtract 1. Throws
/// InvalidArgument, leaving the mesh untouched, on a non-finite position or weight or a bad
/// view.
template <class T>
void paint_cic(const Positions<T>& positions, mesh::RealView<T> mesh,
               detail::identity_t<T> weight = T(1), bool accumulate = false) {
  mesh::check_view(mesh, "paint_cic", "mesh");
  const T w = weight;
  const auto scale =
      fixed_point::scale_for(positions.size(), detail::deposit_bound(w), "paint_cic");
  const auto* x = positions.data();
  const auto buckets =
      detail::bucket_by_plane<std::array<T, 3>>(positions, detail::cic_geometry<T>(mesh.grid),
                                                "paint_cic", [x](std::size_t p) { return x[p]; });
  detail::gather_planes<1, T>(buckets, {mesh}, {scale}, accumulate,
                              [w](const std::array<T, 3>&, std::size_t, int) { return w; });
}
template <class T>
void paint_cic(const Positions<T>& positions, mesh::RealField<T>& mesh,
               detail::identity_t<T> weight = T(1), bool accumulate = false) {
  detail::check_field(mesh, "paint_cic", "mesh");
  paint_cic(positions, mesh::view(mesh), weight, accumulate);
}

/// paint_cic with a weight per particle (weights.size() == positions.size()); the fixed-point
/// scale is that of n max_p |weights[p]|.
template <class T>
void paint_cic(const Positions<T>& positions, const std::vector<T>& weights, mesh::RealView<T> mesh,
               bool accumulate = false) {
  mesh::check_view(mesh, "paint_cic", "mesh");
  detail::check_size(weights.size(), positions.size(), "paint_cic", "weights");
  const T* wp = weights.data();
  const auto scale = fixed_point::scale_for(
      weights.size(),
      detail::max_deposit_bound(
          weights.size(), [wp](std::size_t p) { return wp[p]; }, "paint_cic"),
      "paint_cic");
  using Item = detail::WeightedPoint<T, 1>;
  const auto buckets = detail::bucket_by_plane<Item>(
      positions, detail::cic_geometry<T>(mesh.grid), "paint_cic", [&](std::size_t p) {
        return Item{{positions[p][0], positions[p][1], positions[p][2]}, {weights[p]}};
      });
  detail::gather_planes<1, T>(buckets, {mesh}, {scale}, accumulate,
                              [](const Item& item, std::size_t, int) { return item.w[0]; });
}
template <class T>
void paint_cic(const Positions<T>& positions, const std::vector<T>& weights,
               mesh::RealField<T>& mesh, bool accumulate = false) {
  detail::check_field(mesh, "paint_cic", "mesh");
  paint_cic(positions, weights, mesh::view(mesh), accumulate);
}

/// Adjoint of paint_cic with one weight for all particles, mesh = sum_p weight W(x_p):
/// positions_bar[p] += weight * grad readout(mesh_bar)(x_p) and weight_bar += sum_p
/// readout(mesh_bar)(x_p). The mesh itself enters paint linearly, so with accumulate = true
/// its adjoint is mesh_bar unchanged (the caller keeps it). The sum over particles is taken
/// in double, in fixed blocks: reproducible for any thread count.
template <class T>
void paint_cic_adjoint(mesh::ConstRealView<T> mesh_bar, const Positions<T>& positions,
                       detail::identity_t<T> weight, Positions<T>& positions_bar, T& weight_bar) {
  const char* fn = "paint_cic_adjoint";
  mesh::check_view(mesh_bar, fn, "mesh_bar");
  detail::check_positions(positions, fn);
  detail::prepare_accumulator(positions_bar, positions.size(), fn, "positions_bar");
  const T* m = mesh_bar.data;
  const std::array<T, 3>* x = positions.data();
  std::array<T, 3>* xb = positions_bar.data();
  const T wt = weight;
  const double total = detail::with_geometry<T>(mesh_bar, [m, x, xb, wt,
                                                           &positions](const auto& g) {
    return deterministic_sum(std::ptrdiff_t(positions.size()), [m, x, xb, wt, g](std::ptrdiff_t p) {
      T value, grad[3];
      detail::value_and_gradient(m, x[p].data(), g, value, grad);
      for (int d = 0; d < 3; ++d) xb[p][d] += wt * grad[d];
      return double(value);
    });
  });
  weight_bar += T(total);
}
template <class T>
void paint_cic_adjoint(const mesh::RealField<T>& mesh_bar, const Positions<T>& positions,
                       detail::identity_t<T> weight, Positions<T>& positions_bar, T& weight_bar) {
  detail::check_field(mesh_bar, "paint_cic_adjoint", "mesh_bar");
  paint_cic_adjoint(mesh::view(mesh_bar), positions, weight, positions_bar, weight_bar);
}

/// Adjoint of paint_cic with per-particle weights: positions_bar[p] += weights[p] * grad
/// readout(mesh_bar)(x_p) and weights_bar[p] += readout(mesh_bar)(x_p) (the weight part of the
/// adjoint of paint is readout).
template <class T>
void paint_cic_adjoint(mesh::ConstRealView<T> mesh_bar, const Positions<T>& positions,
                       const std::vector<T>& weights, Positions<T>& positions_bar,
                       std::vector<T>& weights_bar) {
  const char* fn = "paint_cic_adjoint";
  mesh::check_view(mesh_bar, fn, "mesh_bar");
  detail::check_size(weights.size(), positions.size(), fn, "weights");
  detail::check_positions(positions, fn);
  detail::prepare_accumulator(positions_bar, positions.size(), fn, "positions_bar");
  detail::prepare_accumulator(weights_bar, positions.size(), fn, "weights_bar");
  const std::ptrdiff_t n = std::ptrdiff_t(positions.size());
  detail::with_geometry<T>(mesh_bar, [&](const auto& g) {
    detail::paint_adjoint_loop(mesh_bar.data, g, positions.data(), weights.data(),
                               positions_bar.data(), weights_bar.data(), n);
  });
}
template <class T>
void paint_cic_adjoint(const mesh::RealField<T>& mesh_bar, const Positions<T>& positions,
                       const std::vector<T>& weights, Positions<T>& positions_bar,
                       std::vector<T>& weights_bar) {
  detail::check_field(mesh_bar, "paint_cic_adjoint", "mesh_bar");
  paint_cic_adjoint(mesh::view(mesh_bar), positions, weights, positions_bar, weights_bar);
}

// ----------------------------------------------------------------------------------------------
// Readout
// ----------------------------------------------------------------------------------------------

/// values[p] = sum over the 8 CIC points of W(x_p) mesh: the transpose of paint_cic. `values`
/// is resized to the particle count. Throws InvalidArgument on a non-finite position (values
/// are then unspecified).
template <class T>
void readout_cic(mesh::ConstRealView<T> mesh, const Positions<T>& positions,
                 std::vector<T>& values) {
  mesh::check_view(mesh, "readout_cic", "mesh");
  const T* m = mesh.data;
  values.resize(positions.size());
  const std::ptrdiff_t n = std::ptrdiff_t(positions.size());
  const int bad = detail::with_geometry<T>(mesh, [&](const auto& g) {
    return detail::readout_loop(m, g, positions.data(), values.data(), n);
  });
  if (bad) detail::throw_non_finite(positions, "readout_cic");
}
template <class T>
void readout_cic(const mesh::RealField<T>& mesh, const Positions<T>& positions,
                 std::vector<T>& values) {
  detail::check_field(mesh, "readout_cic", "mesh");
  readout_cic(mesh::view(mesh), positions, values);
}

/// Readout of a vector field given as three meshes on one grid, with one layout (the same
/// strides), e.g. the force components: values[p][d] = readout of mesh_d at x_p, sharing the
/// stencil between components.
template <class T>
void readout_cic(mesh::ConstRealView<T> mesh_x, mesh::ConstRealView<T> mesh_y,
                 mesh::ConstRealView<T> mesh_z, const Positions<T>& positions,
                 Positions<T>& values) {
  const char* fn = "readout_cic";
  mesh::check_view(mesh_x, fn, "mesh_x");
  mesh::check_view(mesh_y, fn, "mesh_y", &mesh_x.grid);
  mesh::check_view(mesh_z, fn, "mesh_z", &mesh_x.grid);
  detail::check_same_strides(mesh_x, mesh_y, fn, "mesh_x", "mesh_y");
  detail::check_same_strides(mesh_x, mesh_z, fn, "mesh_x", "mesh_z");
  const T* m[3] = {mesh_x.data, mesh_y.data, mesh_z.data};
  values.resize(positions.size());
  const std::ptrdiff_t n = std::ptrdiff_t(positions.size());
  const int bad = detail::with_geometry<T>(mesh_x, [&](const auto& geometry) {
    const auto g = geometry;
    int flagged = 0;
    DIFFPM_OMP(omp parallel for schedule(static) reduction(| : flagged))
    for (std::ptrdiff_t p = 0; p < n; ++p) {
      flagged |= !detail::finite_position(positions[p]);
      std::size_t idx[8];
      T w[8];
      detail::cic_stencil(positions[p].data(), g, idx, w);
      for (int d = 0; d < 3; ++d) {
        T v = T(0);
        for (int c = 0; c < 8; ++c) v += w[c] * m[d][idx[c]];
        values[p][d] = v;
      }
    }
    return flagged;
  });
  if (bad) detail::throw_non_finite(positions, fn);
}
template <class T>
void readout_cic(const mesh::RealField<T>& mesh_x, const mesh::RealField<T>& mesh_y,
                 const mesh::RealField<T>& mesh_z, const Positions<T>& positions,
                 Positions<T>& values) {
  const char* fn = "readout_cic";
  detail::check_field(mesh_x, fn, "mesh_x");
  detail::check_field(mesh_y, fn, "mesh_y", &mesh_x.grid);
  detail::check_field(mesh_z, fn, "mesh_z", &mesh_x.grid);
  readout_cic(mesh::view(mesh_x), mesh::view(mesh_y), mesh::view(mesh_z), positions, values);
}

/// gradient[p] = d readout(mesh)(x) / dx at x_p, in mesh units per Mpc/h: along each axis the
/// difference of the two neighbouring planes over dx, weighted over the other two axes
/// (right-sided at cell boundaries). `gradient` is resized to the particle count.
template <class T>
void readout_cic_gradient(mesh::ConstRealView<T> mesh, const Positions<T>& positions,
                          Positions<T>& gradient) {
  mesh::check_view(mesh, "readout_cic_gradient", "mesh");
  const T* m = mesh.data;
  gradient.resize(positions.size());
  const std::ptrdiff_t n = std::ptrdiff_t(positions.size());
  const int bad = detail::with_geometry<T>(mesh, [&](const auto& geometry) {
    const auto g = geometry;
    int flagged = 0;
    DIFFPM_OMP(omp parallel for schedule(static) reduction(| : flagged))
    for (std::ptrdiff_t p = 0; p < n; ++p) {
      flagged |= !detail::finite_position(positions[p]);
      T value;
      detail::value_and_gradient(m, positions[p].data(), g, value, gradient[p].data());
    }
    return flagged;
  });
  if (bad) detail::throw_non_finite(positions, "readout_cic_gradient");
}
template <class T>
void readout_cic_gradient(const mesh::RealField<T>& mesh, const Positions<T>& positions,
                          Positions<T>& gradient) {
  detail::check_field(mesh, "readout_cic_gradient", "mesh");
  readout_cic_gradient(mesh::view(mesh), positions, gradient);
}

/// Adjoint of readout_cic(mesh, positions, values): mesh_bar += paint of values_bar at the
/// positions (in fixed point, as paint_cic, with the scale of n max_p |values_bar[p]|: the
/// same bits for any order and thread count) and positions_bar[p] += values_bar[p] * grad
/// readout(mesh)(x_p). The view mesh_bar must be on mesh's grid (any layout); the RealField
/// overload also takes one that holds no data (made zeros).
template <class T>
void readout_cic_adjoint(mesh::ConstRealView<T> mesh, const Positions<T>& positions,
                         const std::vector<T>& values_bar, mesh::RealView<T> mesh_bar,
                         Positions<T>& positions_bar) {
  const char* fn = "readout_cic_adjoint";
  mesh::check_view(mesh, fn, "mesh");
  mesh::check_view(mesh_bar, fn, "mesh_bar", &mesh.grid);
  detail::check_size(values_bar.size(), positions.size(), fn, "values_bar");
  detail::prepare_accumulator(positions_bar, positions.size(), fn, "positions_bar");
  const T* vb = values_bar.data();
  const auto scale = fixed_point::scale_for(  // throws on NaN, before anything is accumulated
      values_bar.size(),
      detail::max_deposit_bound(
          values_bar.size(), [vb](std::size_t p) { return vb[p]; }, fn, "values_bar"),
      fn);
  using Item = detail::WeightedPoint<T, 1>;
  const auto buckets =  // throws on NaN, before anything is accumulated
      detail::bucket_by_plane<Item>(
          positions, detail::cic_geometry<T>(mesh.grid), fn, [&](std::size_t p) {
            return Item{{positions[p][0], positions[p][1], positions[p][2]}, {values_bar[p]}};
          });
  const T* m = mesh.data;
  const std::ptrdiff_t n = std::ptrdiff_t(positions.size());
  detail::with_geometry<T>(mesh, [&](const auto& geometry) {
    const auto g = geometry;
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t p = 0; p < n; ++p) {
      T value, grad[3];
      detail::value_and_gradient(m, positions[p].data(), g, value, grad);
      for (int d = 0; d < 3; ++d) positions_bar[p][d] += values_bar[p] * grad[d];
    }
  });
  detail::gather_planes<1, T>(buckets, {mesh_bar}, {scale}, true,
                              [](const Item& item, std::size_t, int) { return item.w[0]; });
}
template <class T>
void readout_cic_adjoint(const mesh::RealField<T>& mesh, const Positions<T>& positions,
                         const std::vector<T>& values_bar, mesh::RealField<T>& mesh_bar,
                         Positions<T>& positions_bar) {
  const char* fn = "readout_cic_adjoint";
  detail::check_field(mesh, fn, "mesh");
  detail::check_size(values_bar.size(), positions.size(), fn, "values_bar");
  detail::prepare_mesh_accumulator(mesh_bar, mesh.grid, fn, "mesh_bar");
  readout_cic_adjoint(mesh::view(mesh), positions, values_bar, mesh::view(mesh_bar), positions_bar);
}

/// Adjoint of the vector readout: mesh_bar_d += paint of values_bar[:, d] (one bucketing for
/// the three; each component in fixed point with its own scale, that of n max_p
/// |values_bar[p][d]|) and positions_bar[p] += sum_d values_bar[p][d] grad readout(mesh_d)(x_p).
/// The three meshes share one layout, and so do the three mesh_bar views (not necessarily the
/// meshes' one).
template <class T>
void readout_cic_adjoint(mesh::ConstRealView<T> mesh_x, mesh::ConstRealView<T> mesh_y,
                         mesh::ConstRealView<T> mesh_z, const Positions<T>& positions,
                         const Positions<T>& values_bar, mesh::RealView<T> mesh_x_bar,
                         mesh::RealView<T> mesh_y_bar, mesh::RealView<T> mesh_z_bar,
                         Positions<T>& positions_bar) {
  const char* fn = "readout_cic_adjoint";
  const mesh::Grid& grid = mesh_x.grid;
  mesh::check_view(mesh_x, fn, "mesh_x");
  mesh::check_view(mesh_y, fn, "mesh_y", &grid);
  mesh::check_view(mesh_z, fn, "mesh_z", &grid);
  detail::check_same_strides(mesh_x, mesh_y, fn, "mesh_x", "mesh_y");
  detail::check_same_strides(mesh_x, mesh_z, fn, "mesh_x", "mesh_z");
  mesh::check_view(mesh_x_bar, fn, "mesh_x_bar", &grid);
  mesh::check_view(mesh_y_bar, fn, "mesh_y_bar", &grid);
  mesh::check_view(mesh_z_bar, fn, "mesh_z_bar", &grid);
  detail::check_same_strides(mesh_x_bar, mesh_y_bar, fn, "mesh_x_bar", "mesh_y_bar");
  detail::check_same_strides(mesh_x_bar, mesh_z_bar, fn, "mesh_x_bar", "mesh_z_bar");
  detail::check_size(values_bar.size(), positions.size(), fn, "values_bar");
  detail::prepare_accumulator(positions_bar, positions.size(), fn, "positions_bar");
  const std::array<T, 3>* vb = values_bar.data();
  const char* component_name[3] = {"values_bar (x)", "values_bar (y)", "values_bar (z)"};
  std::array<fixed_point::Scale, 3> scale;
  for (int d = 0; d < 3; ++d) {  // throws on NaN, before anything is accumulated
    scale[d] = fixed_point::scale_for(
        values_bar.size(),
        detail::max_deposit_bound(
            values_bar.size(), [vb, d](std::size_t p) { return vb[p][d]; }, fn, component_name[d]),
        fn);
  }
  using Item = detail::WeightedPoint<T, 3>;
  const auto buckets =  // throws on NaN, before anything is accumulated
      detail::bucket_by_plane<Item>(positions, detail::cic_geometry<T>(grid), fn,
                                    [&](std::size_t p) {
                                      const auto& x = positions[p];
                                      const auto& v = values_bar[p];
                                      return Item{{x[0], x[1], x[2]}, {v[0], v[1], v[2]}};
                                    });
  const T* m[3] = {mesh_x.data, mesh_y.data, mesh_z.data};
  const std::ptrdiff_t n = std::ptrdiff_t(positions.size());
  detail::with_geometry<T>(mesh_x, [&](const auto& geometry) {
    const auto g = geometry;
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t p = 0; p < n; ++p) {
      std::size_t idx[8];
      T w[8], dw[3][8];
      detail::cic_stencil_gradient(positions[p].data(), g, idx, w, dw);
      for (int c = 0; c < 8; ++c) {
        // sum_d values_bar_d * mesh_d at this corner, then times the weight derivatives
        const T s = values_bar[p][0] * m[0][idx[c]] + values_bar[p][1] * m[1][idx[c]] +
                    values_bar[p][2] * m[2][idx[c]];
        for (int d = 0; d < 3; ++d) positions_bar[p][d] += dw[d][c] * s;
      }
    }
  });
  detail::gather_planes<3, T>(buckets, {mesh_x_bar, mesh_y_bar, mesh_z_bar}, scale, true,
                              [](const Item& item, std::size_t, int d) { return item.w[d]; });
}
template <class T>
void readout_cic_adjoint(const mesh::RealField<T>& mesh_x, const mesh::RealField<T>& mesh_y,
                         const mesh::RealField<T>& mesh_z, const Positions<T>& positions,
                         const Positions<T>& values_bar, mesh::RealField<T>& mesh_x_bar,
                         mesh::RealField<T>& mesh_y_bar, mesh::RealField<T>& mesh_z_bar,
                         Positions<T>& positions_bar) {
  const char* fn = "readout_cic_adjoint";
  const mesh::Grid& grid = mesh_x.grid;
  detail::check_field(mesh_x, fn, "mesh_x");
  detail::check_field(mesh_y, fn, "mesh_y", &grid);
  detail::check_field(mesh_z, fn, "mesh_z", &grid);
  detail::check_size(values_bar.size(), positions.size(), fn, "values_bar");
  detail::prepare_mesh_accumulator(mesh_x_bar, grid, fn, "mesh_x_bar");
  detail::prepare_mesh_accumulator(mesh_y_bar, grid, fn, "mesh_y_bar");
  detail::prepare_mesh_accumulator(mesh_z_bar, grid, fn, "mesh_z_bar");
  readout_cic_adjoint(mesh::view(mesh_x), mesh::view(mesh_y), mesh::view(mesh_z), positions,
                      values_bar, mesh::view(mesh_x_bar), mesh::view(mesh_y_bar),
                      mesh::view(mesh_z_bar), positions_bar);
}

// ----------------------------------------------------------------------------------------------
// CIC window in Fourier space
// ----------------------------------------------------------------------------------------------

namespace detail {
/// sinc^2(k_d dx_d / 2) for every FFT index along axis d (length `count`).
inline std::vector<double> cic_window_axis(const mesh::Grid& grid, int d, int count) {
  std::vector<double> w(std::size_t(count), 1.0);
  for (int i = 0; i < count; ++i) {
    const double h = 0.5 * grid.wavenumber(d, i) * grid.cell_size(d);
    if (h != 0.0) {
      const double s = std::sin(h) / h;
      w[i] = s * s;
    }
  }
  return w;
}
}  // namespace detail

/// Fourier transform of the CIC assignment function at mode (i, j, kz) of the half spectrum:
/// W(k) = prod_d sinc^2(k_d dx_d / 2), sinc x = sin x / x, k_d = 2 pi m_d / L_d with m_d in
/// [-n_d/2, n_d/2): the assignment function of order p = 2 (Hockney & Eastwood 1988; Jing 2005,
/// ApJ 620, 559). Between 1 at k = 0 and
/// (2/pi)^6 ~ 0.066 at the Nyquist corner.
inline double cic_window(const mesh::Grid& grid, int i, int j, int kz) {
  double w = 1.0;
  const int idx[3] = {i, j, kz};
  for (int d = 0; d < 3; ++d) {
    const double h = 0.5 * grid.wavenumber(d, idx[d]) * grid.cell_size(d);
    if (h != 0.0) {
      const double s = std::sin(h) / h;
      w *= s * s;
    }
  }
  return w;
}

/// field(k) /= W(k) on every mode of the half spectrum: undoes the smoothing of CIC painting
/// in a measurement (power spectrum), amplifying noise near Nyquist. The factors are computed
/// in double and rounded once to T. `field` may be any half-spectrum view (mesh/view.hpp), e.g.
/// the complex view of FFTW's padded in-place buffer.
template <class T>
void deconvolve_cic(mesh::ComplexView<T> field) {
  static_assert(!std::is_const_v<T>, "deconvolve_cic writes its field");
  mesh::check_view(field, "deconvolve_cic", "field");
  const mesh::Grid& grid = field.grid;
  const int nx = grid.n[0], ny = grid.n[1], nzc = grid.complex_nz();
  const auto wx = detail::cic_window_axis(grid, 0, nx);
  const auto wy = detail::cic_window_axis(grid, 1, ny);
  const auto wz = detail::cic_window_axis(grid, 2, nzc);
  const std::ptrdiff_t sz = field.stride[2];
  DIFFPM_OMP(omp parallel for schedule(static))
  for (int i = 0; i < nx; ++i) {
    for (int j = 0; j < ny; ++j) {
      const double wxy = wx[i] * wy[j];
      std::complex<T>* row = field.data + field.offset(i, j, 0);
      if (sz == 1) {
        for (int k = 0; k < nzc; ++k) row[k] *= static_cast<T>(1.0 / (wxy * wz[k]));
      } else {
        for (int k = 0; k < nzc; ++k) row[k * sz] *= static_cast<T>(1.0 / (wxy * wz[k]));
      }
    }
  }
}
template <class T>
void deconvolve_cic(mesh::ComplexField<T>& field) {
  const mesh::Grid& grid = field.grid;
  grid.validate();
  if (field.data.size() != grid.complex_size()) {
    throw InvalidArgument("deconvolve_cic: field holds " + std::to_string(field.data.size()) +
                          " modes for a half spectrum of " + std::to_string(grid.complex_size()) +
                          " on a mesh of " + grid.to_string());
  }
  deconvolve_cic(mesh::view(field));
}

/// Adjoint of deconvolve_cic: division by the real, positive W(k) is a real diagonal operator,
/// hence self-adjoint for the real inner product Re sum conj(a) b over the modes (with any
/// per-mode weights, such as the factor 2 of the modes the half spectrum stores once), so the
/// adjoint is deconvolve_cic itself, applied to field_bar in place.
template <class T>
void deconvolve_cic_adjoint(mesh::ComplexView<T> field_bar) {
  deconvolve_cic(field_bar);
}
template <class T>
void deconvolve_cic_adjoint(mesh::ComplexField<T>& field_bar) {
  deconvolve_cic(field_bar);
}

}  // namespace diffpm::particles
