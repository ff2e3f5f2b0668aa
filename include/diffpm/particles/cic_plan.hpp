/// \file
/// \brief A CIC plan for one mesh shape and one set of points, in the manner of FINUFFT's
/// makeplan / setpts / execute: the points are bucketed once, then painted with any weights as
/// often as needed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/grid.hpp"
#include "diffpm/particles/cic.hpp"
#include "diffpm/particles/detail/cic_paint.hpp"
#include "diffpm/particles/detail/cic_weights.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::particles {

/// Painting on one mesh shape from one set of points, bucketed once. set_points() copies the
/// positions, sorted stably by the x-plane of their CIC stencil (detail::bucket_by_plane), with
/// each particle's index; every paint() then streams through that copy and deposits in the
/// race-free colour phases of detail::paint_by_planes. A paint from a plan is bitwise the
/// paint_cic of the same positions and weights, for any thread count (the same order, the same
/// arithmetic). The PM force paints the same positions four times per adjoint (the density and
/// three weighted components): with a plan, they are bucketed once.
///
/// Memory: 3 T and one 32-bit index per particle (16 bytes in float, 28 in double, in two
/// arrays), plus one offset per x-plane. At most 2^32 - 1 points per plan. The positions are
/// copied, so the caller's arrays may change after set_points(); the weights of a paint are read
/// from the caller's memory through their index.
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

  /// Buckets `positions` (Mpc/h, anywhere: they are wrapped). Throws InvalidArgument naming the
  /// first particle with a non-finite coordinate, for a null component pointer, or for more
  /// than 2^32 - 1 points; the plan then holds no points.
  void set_points(Vec3View<const T> positions) {
    if (positions.size > 0) {
      for (int d = 0; d < 3; ++d) {
        if (!positions.component[d]) {
          buckets_ = {};
          throw InvalidArgument("CIC plan: a view of " + std::to_string(positions.size) +
                                " positions with a null pointer for component " +
                                std::to_string(d));
        }
      }
    }
    bucket(
        positions.size, [&](std::size_t p) { return positions[p]; },
        [&] { throw_non_finite(positions); });
  }
  /// The same for diffpm's container (read directly: no run-time stride in the sort's loops).
  void set_points(const Positions<T>& positions) {
    const std::array<T, 3>* x = positions.data();
    bucket(
        positions.size(), [x](std::size_t p) { return x[p]; },
        [&] { throw_non_finite(view(positions)); });
  }

  /// Frees the points (size() becomes 0); the mesh shape stays.
  void clear() { buckets_ = {}; }

  /// mesh (+)= sum_p weight W(x_p); with accumulate = false the mesh is zeroed first.
  void paint(mesh::RealField<T>& mesh, detail::identity_t<T> weight = T(1),
             bool accumulate = false) const {
    prepare(mesh, accumulate);
    T* m = mesh.data.data();
    // Local copies, so that the deposit loop reads no member through `this`: the compiler
    // would have to assume that the mesh's T stores alias it, and reload it every time.
    const detail::CicGeometry<T> g = g_;
    const T weight_p = weight;
    detail::paint_by_planes(buckets_, g.n[0], [m, &g, weight_p](const Point& item) {
      detail::deposit(m, item.data(), g, weight_p);
    });
  }

  /// mesh (+)= sum_p w_p W(x_p), w_p the T at byte offset p * stride from `weights` (a plain
  /// array: stride = sizeof(T); one component of a Vec3View: its component[d] and stride).
  void paint(const T* weights, std::ptrdiff_t stride, mesh::RealField<T>& mesh,
             bool accumulate = false) const {
    if (!weights && size() > 0) throw InvalidArgument("CIC plan: paint with null weights");
    prepare(mesh, accumulate);
    T* m = mesh.data.data();
    const auto* base = reinterpret_cast<const unsigned char*>(weights);
    const detail::CicGeometry<T> g = g_;  // local, as above
    const std::uint32_t* index = buckets_.index.data();
    detail::paint_by_planes(
        buckets_, g.n[0], [m, &g, base, stride, index](const Point& item, std::size_t q) {
          const T wp = *reinterpret_cast<const T*>(base + std::ptrdiff_t(index[q]) * stride);
          detail::deposit(m, item.data(), g, wp);
        });
  }
  void paint(const std::vector<T>& weights, mesh::RealField<T>& mesh,
             bool accumulate = false) const {
    detail::check_size(weights.size(), size(), "CIC plan paint", "weights");
    paint(weights.data(), std::ptrdiff_t(sizeof(T)), mesh, accumulate);
  }

 private:
  using Point = std::array<T, 3>;

  template <class Position, class OnNonFinite>
  void bucket(std::size_t n, const Position& position, const OnNonFinite& on_non_finite) {
    buckets_ = {};
    if (n > std::numeric_limits<std::uint32_t>::max()) {
      throw InvalidArgument("CIC plan: " + std::to_string(n) +
                            " points (at most 2^32 - 1 per plan)");
    }
    buckets_ = detail::bucket_by_plane<Point>(n, position, g_, on_non_finite, position, true);
  }

  void prepare(mesh::RealField<T>& mesh, bool accumulate) const {
    detail::check_field(mesh, "CIC plan paint", "mesh", &grid_);
    if (!accumulate) detail::zero(mesh);
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
