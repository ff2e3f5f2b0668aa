/// \file
/// \brief Race-free, thread-count-independent CIC painting on the CPU: particles bucketed by
/// x-plane, planes painted in colour phases.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/view.hpp"
#include "diffpm/particles/detail/cic_weights.hpp"

namespace diffpm::particles::detail {

template <class T>
CicGeometry<T> cic_geometry(const mesh::Grid& grid) {
  CicGeometry<T> g;
  for (int d = 0; d < 3; ++d) {
    g.n[d] = grid.n[d];
    g.cells_per_length[d] = static_cast<T>(grid.n[d] / grid.length[d]);
  }
  g.stride_x = std::size_t(grid.n[1]) * grid.n[2];
  g.stride_y = std::size_t(grid.n[2]);
  return g;
}

/// Calls f(g) with the CIC geometry of a mesh view: a CicGeometry (z contiguous: diffpm's
/// fields, FFTW's padded layout, a caller's packed array) with the view's x and y strides, or a
/// StridedCicGeometry. Both give the same weights; a packed view gives cic_geometry(grid), so
/// a field and its view are painted and read with the same arithmetic, bit for bit.
template <class T, class V, class F>
decltype(auto) with_geometry(const mesh::RealView<V>& v, const F& f) {
  CicGeometry<T> g = cic_geometry<T>(v.grid);
  g.stride_x = std::size_t(v.stride[0]);
  g.stride_y = std::size_t(v.stride[1]);
  if (v.stride[2] == 1) return f(g);
  StridedCicGeometry<T> s;
  static_cast<CicGeometry<T>&>(s) = g;
  s.stride_z = std::size_t(v.stride[2]);
  return f(s);
}

/// Sets the n_x n_y n_z cells of a mesh view to 0 (a packed view in one flat pass; otherwise
/// row by row, leaving whatever lies between the rows, such as FFTW's padding, untouched).
template <class T>
void zero(const mesh::RealView<T>& v) {
  T* d = v.data;
  if (v.is_packed()) {
    const std::ptrdiff_t n = std::ptrdiff_t(v.grid.size());
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t c = 0; c < n; ++c) d[c] = T(0);
    return;
  }
  const int nx = v.grid.n[0], ny = v.grid.n[1], nz = v.grid.n[2];
  const std::ptrdiff_t sz = v.stride[2];
  DIFFPM_OMP(omp parallel for collapse(2) schedule(static))
  for (int i = 0; i < nx; ++i) {
    for (int j = 0; j < ny; ++j) {
      T* row = d + v.offset(i, j, 0);
      for (int k = 0; k < nz; ++k) row[std::ptrdiff_t(k) * sz] = T(0);
    }
  }
}

/// Throws InvalidArgument unless `field` is a valid mesh (on `expected`, when given).
template <class T>
void check_field(const mesh::RealField<T>& field, const char* function, const char* name,
                 const mesh::Grid* expected = nullptr) {
  field.grid.validate();
  if (field.data.size() != field.grid.size()) {
    throw InvalidArgument(std::string(function) + ": " + name + " holds " +
                          std::to_string(field.data.size()) + " values for a mesh of " +
                          field.grid.to_string());
  }
  if (expected && field.grid != *expected) {
    throw InvalidArgument(std::string(function) + ": " + name + " is on a mesh of " +
                          field.grid.to_string() + ", expected " + expected->to_string());
  }
}

inline void check_size(std::size_t size, std::size_t expected, const char* function,
                       const char* name) {
  if (size != expected) {
    throw InvalidArgument(std::string(function) + ": " + name + " has " + std::to_string(size) +
                          " entries for " + std::to_string(expected) + " particles");
  }
}

/// An accumulated output: sized to n_particles (zeros) if empty, else it must already be.
template <class V>
void prepare_accumulator(V& v, std::size_t n_particles, const char* function, const char* name) {
  if (v.empty()) {
    v.resize(n_particles);
    std::fill(v.begin(), v.end(), typename V::value_type{});
  }
  check_size(v.size(), n_particles, function, name);
}

template <class T>
bool finite_position(const std::array<T, 3>& x) {
  return std::isfinite(x[0]) && std::isfinite(x[1]) && std::isfinite(x[2]);
}

/// Throws InvalidArgument naming the first particle with a non-finite coordinate. Called only
/// after a parallel pass has flagged one, so the common path pays nothing for it.
template <class T>
[[noreturn]] void throw_non_finite(const std::vector<std::array<T, 3>>& positions,
                                   const char* function) {
  for (std::size_t p = 0; p < positions.size(); ++p) {
    const auto& x = positions[p];
    if (!finite_position(x)) {
      throw InvalidArgument(std::string(function) + ": position of particle " + std::to_string(p) +
                            " is (" + format_number(double(x[0])) + ", " +
                            format_number(double(x[1])) + ", " + format_number(double(x[2])) +
                            ") Mpc/h (must be finite)");
    }
  }
  throw InvalidArgument(std::string(function) + ": non-finite position");  // not reached
}

/// Particles stably sorted by the x-plane lo of their stencil (a counting sort), carrying what
/// the deposit needs (position and weights, `Item`) so that painting streams through memory
/// instead of gathering positions at random: items[start[i] .. start[i + 1]) are the particles
/// with lo = i, in increasing index order. A stable sort has a single result, so the order does
/// not depend on the thread count. Writing the items is cheap too: the scatter goes to n_x
/// sequential streams.
template <class Item>
struct PlaneBuckets {
  std::vector<Item> items;
  std::vector<std::size_t> start;
  /// index[q]: the particle whose item is items[q] (filled only when asked for).
  std::vector<std::uint32_t> index;
};

/// Buckets n particles by x-plane, item p = make(p), with position(p) the particle's
/// coordinates as a std::array<T, 3>; calls on_non_finite() (which must throw) before anything
/// is written if a coordinate is not finite.
template <class Item, class T, class Position, class OnNonFinite, class Make>
PlaneBuckets<Item> bucket_by_plane(std::size_t n_particles, const Position& position,
                                   const CicGeometry<T>& g, const OnNonFinite& on_non_finite,
                                   const Make& make, bool with_index = false) {
  const int nx = g.n[0];
  const T sx = g.cells_per_length[0];
  // Fixed particle blocks, one per thread; any split gives the same stable order.
  const int n_blocks =
      std::max(1, int(std::min<std::size_t>(std::size_t(max_threads()), n_particles / 4096 + 1)));
  std::vector<std::size_t> counts(std::size_t(n_blocks) * nx, 0);
  const auto block_begin = [&](int b) { return n_particles * std::size_t(b) / n_blocks; };

  int bad = 0;
  DIFFPM_OMP(omp parallel for schedule(static, 1) reduction(| : bad))
  for (int b = 0; b < n_blocks; ++b) {
    std::size_t* count = counts.data() + std::size_t(b) * nx;
    for (std::size_t p = block_begin(b); p < block_begin(b + 1); ++p) {
      const std::array<T, 3> x = position(p);
      bad |= !finite_position(x);
      ++count[cic_axis(x[0], sx, nx).lo];
    }
  }
  if (bad) on_non_finite();

  PlaneBuckets<Item> buckets;
  buckets.start.assign(std::size_t(nx) + 1, 0);
  std::size_t running = 0;
  for (int i = 0; i < nx; ++i) {
    buckets.start[i] = running;
    for (int b = 0; b < n_blocks; ++b) {
      std::size_t& c = counts[std::size_t(b) * nx + i];
      const std::size_t n = c;
      c = running;  // becomes block b's first slot in plane i
      running += n;
    }
  }
  buckets.start[nx] = running;

  buckets.items.resize(n_particles);
  Item* items = buckets.items.data();
  if (with_index) buckets.index.resize(n_particles);
  std::uint32_t* index = with_index ? buckets.index.data() : nullptr;
  DIFFPM_OMP(omp parallel for schedule(static, 1))
  for (int b = 0; b < n_blocks; ++b) {
    std::size_t* next = counts.data() + std::size_t(b) * nx;
    for (std::size_t p = block_begin(b); p < block_begin(b + 1); ++p) {
      const std::size_t slot = next[cic_axis(position(p)[0], sx, nx).lo]++;
      items[slot] = make(p);
      // A separate array: a 16-byte item carrying the index made this pass 2-3x slower.
      if (index) index[slot] = std::uint32_t(p);
    }
  }
  return buckets;
}

/// bucket_by_plane for diffpm's own position container; throws InvalidArgument naming
/// `function` and the first particle with a non-finite coordinate.
template <class Item, class T, class Make>
PlaneBuckets<Item> bucket_by_plane(const std::vector<std::array<T, 3>>& positions,
                                   const CicGeometry<T>& g, const char* function,
                                   const Make& make) {
  const auto* x = positions.data();
  return bucket_by_plane<Item>(
      positions.size(), [x](std::size_t p) { return x[p]; }, g,
      [&] { throw_non_finite(positions, function); }, make);
}

/// Calls deposit(item) once for every particle, so that no two concurrent calls write the same
/// mesh point and every mesh point receives its contributions in an order fixed by the
/// positions alone.
///
/// Chunk i is x-plane i; its particles write planes i and i + 1 (mod n_x), so only neighbouring
/// chunks conflict. Chunks run in colour phases separated by barriers: even chunks, then odd
/// chunks; with n_x odd the last chunk (even, but touching plane 0 through the wrap) runs alone
/// in a third phase. Inside a chunk, particles go in index order. A mesh point in plane i thus
/// sums the particles of chunk i - 1 and chunk i in the phase order, each in index order:
/// bitwise the same result for any thread count, with or without OpenMP, and no per-thread
/// mesh copies.
template <class Item, class Deposit>
void paint_by_planes(const PlaneBuckets<Item>& buckets, int nx, const Deposit& deposit) {
  const int n_colours = nx % 2 == 0 ? 2 : 3;
  DIFFPM_OMP(omp parallel) {
    for (int colour = 0; colour < n_colours; ++colour) {
      const int first = colour == 2 ? nx - 1 : colour;
      const int end = colour == 2 ? nx : (nx % 2 == 0 ? nx : nx - 1);
      const int n_chunks = end > first ? (end - first + 1) / 2 : 0;
      // The implicit barrier at the end of the loop separates the phases.
      DIFFPM_OMP(omp for schedule(dynamic, 1))
      for (int t = 0; t < n_chunks; ++t) {
        const int chunk = first + 2 * t;
        for (std::size_t q = buckets.start[chunk]; q < buckets.start[chunk + 1]; ++q) {
          if constexpr (std::is_invocable_v<const Deposit&, const Item&, std::size_t>) {
            deposit(buckets.items[q], q);  // the slot, for buckets.index
          } else {
            deposit(buckets.items[q]);
          }
        }
      }
    }
  }
}

}  // namespace diffpm::particles::detail
