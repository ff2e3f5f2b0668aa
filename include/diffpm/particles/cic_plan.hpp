/// \file
/// \brief A CIC plan for one mesh shape and one set of points, in the manner of FINUFFT's
/// makeplan / setpts / execute: the points are bucketed once, then painted with any weights as
/// often as needed.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
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
#include "diffpm/particles/cic.hpp"
#include "diffpm/particles/detail/cic_fixed.hpp"
#include "diffpm/particles/detail/cic_paint.hpp"
#include "diffpm/particles/detail/cic_weights.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::particles {

/// Painting on one mesh shape from one set of points, bucketed once. set_points() copies the
/// positions, sorted stably by the x-plane of their CIC stencil (detail::bucket_by_plane), with
/// each particle's index; every paint() then streams through that copy and sums the integer
/// terms of the fixed-point deposit plane by plane (detail::gather_planes). A paint from a plan
/// is bitwise the paint_cic of the same positions and weights, for any thread count and any
/// particle order (the same integer terms, the same scale; integer sums do not depend on the
/// order). The PM force paints the same positions four times per adjoint (the density and
/// three weighted components): with a plan, they are bucketed once.
///
/// The same plan reads meshes out at its points and runs the adjoints (readout, its position
/// gradient, the adjoints of paint and of readout), going through the points in bucket order:
/// the mesh is read plane by plane, and each result is written to its particle's slot in the
/// caller's memory. A particle's readout is the arithmetic of readout_cic on the same position
/// (detail::interpolate), so per-particle results are bitwise readout_cic's; sums over particles
/// (the weight adjoint) are taken in double over fixed blocks of the bucket order: reproducible
/// for any thread count, though not bitwise the sum paint_cic_adjoint takes in index order.
///
/// The lattice offset. Particles of an unperturbed lattice that sit exactly on mesh points
/// are on the CIC kinks, where the readout gradient jumps (particles::kink_free_offset).
/// set_points() takes an explicit `offset` (Mpc/h) added to every position before anything
/// else: paint, readout and every adjoint of the plan then act at x + offset. The derivative
/// with respect to x is that with respect to x + offset, so the adjoints need no change.
///
/// Memory: 3 T and one 32-bit index per particle (16 bytes in float, 28 in double, in two
/// arrays), plus one offset per x-plane. At most 2^32 - 1 points per plan. The positions are
/// copied, so the caller's arrays may change after set_points(); the weights of a paint (and the
/// values of a readout adjoint) are read from the caller's memory through their index.
template <class T>
class CicPlan {
 public:
  /// Throws InvalidArgument for an invalid grid (mesh::Grid::validate).
  explicit CicPlan(const mesh::Grid& grid) : grid_(grid) {
    grid.validate();
    g_ = detail::cic_geometry<T>(grid);
  }

  const mesh::Grid& grid() const { return grid_; }
  /// The number of points of the last set_points() (0 before any).
  std::size_t size() const { return buckets_.items.size(); }

  /// Buckets `positions` (Mpc/h, anywhere: they are wrapped), translated by `offset` (Mpc/h;
  /// see the class comment). Throws InvalidArgument naming the first particle with a
  /// non-finite coordinate, for a non-finite offset, a null component pointer, or more than
  /// 2^32 - 1 points; the plan then holds no points.
  void set_points(Vec3View<const T> positions, std::array<double, 3> offset = {0.0, 0.0, 0.0}) {
    buckets_ = {};
    check_view(positions, "positions");
    const std::array<T, 3> o = checked_offset(offset);
    const bool unshifted = o == std::array<T, 3>{T(0), T(0), T(0)};
    if (const auto* x = packed(positions); unshifted && x) {
      // Packed (x, y, z) triples, as diffpm's containers: read them as arrays, with no run-time
      // stride in the sort's loops (docs/benchmarks.md).
      bucket(
          positions.size, [x](std::size_t p) { return x[p]; },
          [&] { throw_non_finite(positions); });
    } else if (unshifted) {
      bucket(
          positions.size, [&](std::size_t p) { return positions[p]; },
          [&] { throw_non_finite(positions); });
    } else {
      bucket(
          positions.size,
          [&](std::size_t p) {
            return std::array<T, 3>{positions(p, 0) + o[0], positions(p, 1) + o[1],
                                    positions(p, 2) + o[2]};
          },
          [&] { throw_non_finite(positions); });
    }
  }
  /// The same for diffpm's container.
  void set_points(const Positions<T>& positions, std::array<double, 3> offset = {0.0, 0.0, 0.0}) {
    set_points(view(positions), offset);
  }

  /// Frees the points (size() becomes 0); the mesh shape stays.
  void clear() { buckets_ = {}; }

  /// mesh (+)= sum_p weight W(x_p) in fixed point, as paint_cic; with accumulate = false the
  /// mesh's old values are ignored. The mesh may be any view on the plan's grid
  /// (mesh/view.hpp); only its n_x n_y n_z cells are written. Throws InvalidArgument, leaving the
  /// mesh untouched, if the weight is not finite.
  void paint(mesh::RealView<T> mesh, detail::identity_t<T> weight = T(1),
             bool accumulate = false) const {
    check_mesh(mesh, "CIC plan paint", "mesh");
    const T weight_p = weight;
    const auto scale =
        fixed_point::scale_for(size(), detail::deposit_bound(weight_p), "CIC plan paint");
    detail::gather_planes<1, T>(buckets_, {mesh}, {scale}, accumulate,
                                [weight_p](const Point&, std::size_t, int) { return weight_p; });
  }
  void paint(mesh::RealField<T>& mesh, detail::identity_t<T> weight = T(1),
             bool accumulate = false) const {
    check_field(mesh, "CIC plan paint", "mesh");
    paint(mesh::view(mesh), weight, accumulate);
  }

  /// mesh (+)= sum_p w_p W(x_p), w_p the T at byte offset p * stride from `weights` (a plain
  /// array: stride = sizeof(T); one component of a Vec3View: its component[d] and stride), in
  /// fixed point with the scale of n max_p |w_p| (as paint_cic). Throws InvalidArgument, leaving
  /// the mesh untouched, if a weight is not finite.
  void paint(const T* weights, std::ptrdiff_t stride, mesh::RealView<T> mesh,
             bool accumulate = false) const {
    if (!weights && size() > 0) throw InvalidArgument("CIC plan: paint with null weights");
    check_mesh(mesh, "CIC plan paint", "mesh");
    const auto* base = reinterpret_cast<const unsigned char*>(weights);
    const auto weight_of = [base, stride](std::size_t p) {
      return *reinterpret_cast<const T*>(base + std::ptrdiff_t(p) * stride);
    };
    const auto scale = fixed_point::scale_for(
        size(), detail::max_deposit_bound(size(), weight_of, "CIC plan paint"), "CIC plan paint");
    const std::uint32_t* index = buckets_.index.data();
    detail::gather_planes<1, T>(
        buckets_, {mesh}, {scale}, accumulate,
        [weight_of, index](const Point&, std::size_t q, int) { return weight_of(index[q]); });
  }
  void paint(const T* weights, std::ptrdiff_t stride, mesh::RealField<T>& mesh,
             bool accumulate = false) const {
    check_field(mesh, "CIC plan paint", "mesh");
    paint(weights, stride, mesh::view(mesh), accumulate);
  }
  void paint(const std::vector<T>& weights, mesh::RealView<T> mesh, bool accumulate = false) const {
    detail::check_size(weights.size(), size(), "CIC plan paint", "weights");
    paint(weights.data(), std::ptrdiff_t(sizeof(T)), mesh, accumulate);
  }
  void paint(const std::vector<T>& weights, mesh::RealField<T>& mesh,
             bool accumulate = false) const {
    detail::check_size(weights.size(), size(), "CIC plan paint", "weights");
    paint(weights.data(), std::ptrdiff_t(sizeof(T)), mesh, accumulate);
  }

  /// values_p = readout of `mesh` at x_p (the transpose of paint), written to the T at byte
  /// offset p * stride from `values`.
  void readout(mesh::RealView<const T> mesh, T* values, std::ptrdiff_t stride) const {
    check_mesh(mesh, "CIC plan readout", "mesh");
    check_out(values, "values");
    auto* base = reinterpret_cast<unsigned char*>(values);
    for_each_readout<false>(mesh, [base, stride](std::uint32_t p, T value, const T*) {
      *reinterpret_cast<T*>(base + std::ptrdiff_t(p) * stride) = value;
    });
  }
  void readout(const mesh::RealField<T>& mesh, T* values, std::ptrdiff_t stride) const {
    check_field(mesh, "CIC plan readout", "mesh");
    readout(mesh::view(mesh), values, stride);
  }
  /// readout into a vector, resized to size().
  void readout(mesh::RealView<const T> mesh, std::vector<T>& values) const {
    values.resize(size());
    readout(mesh, values.data(), std::ptrdiff_t(sizeof(T)));
  }
  void readout(const mesh::RealField<T>& mesh, std::vector<T>& values) const {
    check_field(mesh, "CIC plan readout", "mesh");
    readout(mesh::view(mesh), values);
  }

  /// gradient_p = d readout(mesh)(x) / dx at x_p, in mesh units per Mpc/h (readout_cic_gradient).
  void readout_gradient(mesh::RealView<const T> mesh, Vec3View<T> gradient) const {
    check_mesh(mesh, "CIC plan readout gradient", "mesh");
    check_output_view(gradient, "gradient");
    for_each_readout<true>(mesh, [&gradient](std::uint32_t p, T, const T* grad) {
      for (int d = 0; d < 3; ++d) gradient(p, d) = grad[d];
    });
  }
  void readout_gradient(const mesh::RealField<T>& mesh, Vec3View<T> gradient) const {
    check_field(mesh, "CIC plan readout gradient", "mesh");
    readout_gradient(mesh::view(mesh), gradient);
  }

  /// Adjoint of paint(mesh, weight), mesh = sum_p weight W(x_p): accumulates
  /// x_bar_p += weight grad readout(mesh_bar)(x_p) and returns dL/dweight = sum_p
  /// readout(mesh_bar)(x_p), summed in double (see the class comment for its order).
  double paint_adjoint(mesh::RealView<const T> mesh_bar, detail::identity_t<T> weight,
                       Vec3View<T> x_bar) const {
    check_mesh(mesh_bar, "CIC plan paint adjoint", "mesh_bar");
    check_output_view(x_bar, "x_bar");
    return for_each_readout<true>(mesh_bar,
                                  [&x_bar, weight](std::uint32_t p, T value, const T* grad) {
                                    for (int d = 0; d < 3; ++d) x_bar(p, d) += weight * grad[d];
                                    return double(value);
                                  });
  }
  double paint_adjoint(const mesh::RealField<T>& mesh_bar, detail::identity_t<T> weight,
                       Vec3View<T> x_bar) const {
    check_field(mesh_bar, "CIC plan paint adjoint", "mesh_bar");
    return paint_adjoint(mesh::view(mesh_bar), weight, x_bar);
  }

  /// Adjoint of the weighted paint, mesh = sum_p w_p W(x_p), with w_p at byte offset p * stride
  /// from `weights`: accumulates x_bar_p += w_p grad readout(mesh_bar)(x_p) and w_bar_p +=
  /// readout(mesh_bar)(x_p) (w_bar at byte offset p * bar_stride from `weights_bar`).
  void paint_adjoint(mesh::RealView<const T> mesh_bar, const T* weights, std::ptrdiff_t stride,
                     Vec3View<T> x_bar, T* weights_bar, std::ptrdiff_t bar_stride) const {
    check_mesh(mesh_bar, "CIC plan paint adjoint", "mesh_bar");
    check_output_view(x_bar, "x_bar");
    check_out(weights, "weights");
    check_out(weights_bar, "weights_bar");
    const auto* w = reinterpret_cast<const unsigned char*>(weights);
    auto* wb = reinterpret_cast<unsigned char*>(weights_bar);
    for_each_readout<true>(mesh_bar, [&](std::uint32_t p, T value, const T* grad) {
      const T wp = *reinterpret_cast<const T*>(w + std::ptrdiff_t(p) * stride);
      for (int d = 0; d < 3; ++d) x_bar(p, d) += wp * grad[d];
      *reinterpret_cast<T*>(wb + std::ptrdiff_t(p) * bar_stride) += value;
    });
  }
  void paint_adjoint(const mesh::RealField<T>& mesh_bar, const T* weights, std::ptrdiff_t stride,
                     Vec3View<T> x_bar, T* weights_bar, std::ptrdiff_t bar_stride) const {
    check_field(mesh_bar, "CIC plan paint adjoint", "mesh_bar");
    paint_adjoint(mesh::view(mesh_bar), weights, stride, x_bar, weights_bar, bar_stride);
  }

  /// Adjoint of readout(mesh) with values_bar_p at byte offset p * stride from `values_bar`:
  /// mesh_bar += paint of values_bar (in fixed point, as paint) and x_bar_p += values_bar_p grad
  /// readout(mesh)(x_p). mesh_bar must be on the plan's grid (the RealField overload also takes
  /// one that holds no data: then zeros); the two meshes may have different layouts.
  void readout_adjoint(mesh::RealView<const T> mesh, const T* values_bar, std::ptrdiff_t stride,
                       mesh::RealView<T> mesh_bar, Vec3View<T> x_bar) const {
    check_mesh(mesh, "CIC plan readout adjoint", "mesh");
    check_mesh(mesh_bar, "CIC plan readout adjoint", "mesh_bar");
    check_output_view(x_bar, "x_bar");
    check_out(values_bar, "values_bar");
    paint(values_bar, stride, mesh_bar, true);
    const auto* vb = reinterpret_cast<const unsigned char*>(values_bar);
    for_each_readout<true>(mesh, [&](std::uint32_t p, T, const T* grad) {
      const T v = *reinterpret_cast<const T*>(vb + std::ptrdiff_t(p) * stride);
      for (int d = 0; d < 3; ++d) x_bar(p, d) += v * grad[d];
    });
  }
  void readout_adjoint(const mesh::RealField<T>& mesh, const T* values_bar, std::ptrdiff_t stride,
                       mesh::RealField<T>& mesh_bar, Vec3View<T> x_bar) const {
    check_field(mesh, "CIC plan readout adjoint", "mesh");
    check_output_view(x_bar, "x_bar");
    check_out(values_bar, "values_bar");
    if (mesh_bar.data.empty()) mesh_bar = mesh::RealField<T>(grid_);
    check_field(mesh_bar, "CIC plan readout adjoint", "mesh_bar");
    readout_adjoint(mesh::view(mesh), values_bar, stride, mesh::view(mesh_bar), x_bar);
  }

  /// Calls visit(p, value, grad) for every point, in bucket order, in parallel (each particle
  /// once, so writes to its own slot do not race): value = readout of `mesh` at x_p and, with
  /// Gradient, grad its position gradient (else null), both from detail::interpolate, the
  /// routine of every CIC readout. If visit returns a double, returns the sum of those over the
  /// points, taken over fixed blocks of the bucket order (the same bits for any thread count);
  /// else 0. The building block of the operations above and of the PM force's readout
  /// (nbody/pm_force.hpp), which fuses its own work into `visit`.
  template <bool Gradient, class Visit>
  double for_each_readout(mesh::RealView<const T> mesh, const Visit& visit) const {
    check_mesh(mesh, "CIC plan readout", "mesh");
    const T* m = mesh.data;
    const Point* items = buckets_.items.data();
    const std::uint32_t* index = buckets_.index.data();
    return detail::with_geometry<T>(mesh, [&](const auto& geometry) {
      const auto g = geometry;
      return deterministic_sum(std::ptrdiff_t(size()), [&](std::ptrdiff_t q) {
        T value, grad[3];
        detail::interpolate<Gradient>(m, items[q].data(), g, value, Gradient ? grad : nullptr);
        const T* gp = Gradient ? grad : nullptr;
        if constexpr (std::is_same_v<decltype(visit(index[q], value, gp)), double>) {
          return visit(index[q], value, gp);
        } else {
          visit(index[q], value, gp);
          return 0.0;
        }
      });
    });
  }
  template <bool Gradient, class Visit>
  double for_each_readout(const mesh::RealField<T>& mesh, const Visit& visit) const {
    check_field(mesh, "CIC plan readout", "mesh");
    return for_each_readout<Gradient>(mesh::view(mesh), visit);
  }

 private:
  using Point = std::array<T, 3>;

  static std::array<T, 3> checked_offset(const std::array<double, 3>& offset) {
    for (int d = 0; d < 3; ++d) {
      if (!std::isfinite(offset[d])) {
        throw InvalidArgument("CIC plan: lattice offset " + std::to_string(d) + " = " +
                              format_number(offset[d]) + " Mpc/h (must be finite)");
      }
    }
    return {T(offset[0]), T(offset[1]), T(offset[2])};
  }

  template <class V>
  void check_view(const Vec3View<V>& v, const char* name) const {
    if (v.size == 0) return;
    for (int d = 0; d < 3; ++d) {
      if (!v.component[d]) {
        throw InvalidArgument("CIC plan: a view of " + std::to_string(v.size) + " " + name +
                              " with a null pointer for component " + std::to_string(d));
      }
    }
  }
  void check_output_view(const Vec3View<T>& v, const char* name) const {
    if (v.size != size()) {
      throw InvalidArgument("CIC plan: " + std::string(name) + " has " + std::to_string(v.size) +
                            " entries for " + std::to_string(size()) + " points");
    }
    check_view(v, name);
  }
  template <class P>
  void check_out(P* p, const char* name) const {
    if (!p && size() > 0) throw InvalidArgument(std::string("CIC plan: null ") + name);
  }
  template <class V>
  void check_mesh(const mesh::RealView<V>& mesh, const char* fn, const char* name) const {
    mesh::check_view(mesh, fn, name, &grid_);
  }
  void check_field(const mesh::RealField<T>& mesh, const char* fn, const char* name) const {
    detail::check_field(mesh, fn, name, &grid_);
  }

  template <class Position, class OnNonFinite>
  void bucket(std::size_t n, const Position& position, const OnNonFinite& on_non_finite) {
    buckets_ = {};
    if (n > std::numeric_limits<std::uint32_t>::max()) {
      throw InvalidArgument("CIC plan: " + std::to_string(n) +
                            " points (at most 2^32 - 1 per plan)");
    }
    buckets_ = detail::bucket_by_plane<Point>(n, position, g_, on_non_finite, position, true);
  }

  [[noreturn]] static void throw_non_finite(const Vec3View<const T>& x) {
    for (std::size_t p = 0; p < x.size; ++p) {
      const auto v = x[p];
      if (!detail::finite_position(v)) {
        throw InvalidArgument("CIC plan: position of particle " + std::to_string(p) + " is (" +
                              format_number(double(v[0])) + ", " + format_number(double(v[1])) +
                              ", " + format_number(double(v[2])) + ") Mpc/h (must be finite)");
      }
    }
    throw InvalidArgument("CIC plan: non-finite position");  // not reached
  }

  mesh::Grid grid_;
  detail::CicGeometry<T> g_;
  detail::PlaneBuckets<Point> buckets_;
};

}  // namespace diffpm::particles
