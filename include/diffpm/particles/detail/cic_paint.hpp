/// \file
/// \brief Order-independent CIC painting on the CPU: particles bucketed by x-plane, each plane
/// gathered in 64-bit fixed point (core/fixed_point.hpp; two words per cell for double) by one
/// thread.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/fixed_point.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/view.hpp"
#include "diffpm/particles/detail/cic_fixed.hpp"
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

/// What a bucketed paint carries per particle: the position and K weights.
template <class T, int K>
struct WeightedPoint {
  T x[3];
  T w[K];
};

/// The position of a bucketed item (a plain position or a WeightedPoint).
template <class T>
const T* item_position(const std::array<T, 3>& item) {
  return item.data();
}
template <class T, int K>
const T* item_position(const WeightedPoint<T, K>& item) {
  return item.x;
}

/// The CIC geometry of one x-plane of a mesh on `grid`: stride_x = 0, so cic_stencil's indices
/// are the plane-local j n_z + k (the x index of corner c = 4 a + 2 b + e is lo for a = 0, hi
/// for a = 1). The weights are those of every other geometry on the grid.
template <class T>
CicGeometry<T> plane_geometry(const mesh::Grid& grid) {
  CicGeometry<T> g = cic_geometry<T>(grid);
  g.stride_x = 0;
  return g;
}

/// max_p deposit_bound(weight(p)) over n particles (an OpenMP max reduction, exact, so the same
/// for any order and thread count). Throws InvalidArgument naming `function` and the first
/// particle if a weight is not finite (checked explicitly: a NaN would slip through a max).
template <class Weight>
double max_deposit_bound(std::size_t n, const Weight& weight, const char* function,
                         const char* name = "weight") {
  const std::ptrdiff_t count = std::ptrdiff_t(n);
  double bound = 0.0;
  int bad = 0;
  DIFFPM_OMP(omp parallel for schedule(static) reduction(max : bound) reduction(| : bad))
  for (std::ptrdiff_t p = 0; p < count; ++p) {
    const auto w = weight(std::size_t(p));
    bad |= !std::isfinite(w);
    bound = std::max(bound, deposit_bound(w));
  }
  if (bad) {
    for (std::size_t p = 0; p < n; ++p) {
      if (!std::isfinite(weight(p))) {
        throw InvalidArgument(std::string(function) + ": " + name + " of particle " +
                              std::to_string(p) + " is " + format_number(double(weight(p))) +
                              " (must be finite)");
      }
    }
  }
  return bound;
}

/// Adds the fixed-point terms of the particles items[begin, end) to plane buffers of K
/// components of W = fixed_point::words<T> words per cell (word j of plane-local cell i of
/// component k at (k * plane + i) W + j: a cell's words share a cache line): with ToLo, those
/// of their a = 0 corners (c = 0..3, x index lo) to `lo_plane`; with ToHi, those of their a = 1
/// corners (c = 4..7, x index hi) to `hi_plane`. pg is a plane_geometry, so the indices are
/// plane-local.
template <bool ToLo, bool ToHi, int K, class T, class Item, class Weight>
inline void add_plane_terms(const Item* items, std::size_t begin, std::size_t end,
                            const CicGeometry<T>& pg,
                            const std::array<fixed_point::Scale, K>& scale, std::size_t plane,
                            fixed_point::Accumulator* lo_plane, fixed_point::Accumulator* hi_plane,
                            const Weight& weight) {
  constexpr int W = fixed_point::words<T>;
  const auto add = [](fixed_point::Accumulator* cell, const fixed_point::Term& t) {
    cell[0] += t.hi;
    if constexpr (W == 2) cell[1] += t.lo;
  };
  for (std::size_t q = begin; q < end; ++q) {
    std::size_t index[8];
    T w[8];
    cic_stencil(item_position(items[q]), pg, index, w);
    for (int k = 0; k < K; ++k) {
      const T wk = weight(items[q], q, k);
      const fixed_point::Scale& sc = scale[k];
      const std::size_t o = std::size_t(k) * plane;
      if constexpr (ToLo) {
        for (int c = 0; c < 4; ++c) add(lo_plane + (o + index[c]) * W, fixed_term(wk, w[c], sc));
      }
      if constexpr (ToHi) {
        for (int c = 4; c < 8; ++c) add(hi_plane + (o + index[c]) * W, fixed_term(wk, w[c], sc));
      }
    }
  }
}

/// The fixed-point CIC scatter of K weight deposits per particle onto K meshes on one grid
/// (core/fixed_point.hpp, docs/design.md "Deterministic scatter"): out[k] (+)= sum_p
/// weight(item_p, q_p, k) W(x_p), where scale[k] is the scale of component k's scatter and
/// every term is fixed_term (the integers of detail/cic_fixed.hpp's deposit_terms), with W =
/// fixed_point::words<T> 64-bit words per term and per cell (one for float, two for double).
///
/// A plane gather: x-plane i receives the a = 0 corners (c = 0..3) of the particles of bucket i
/// and the a = 1 corners (c = 4..7) of those of bucket i - 1 (mod n_x). The planes are cut into
/// runs of consecutive planes, one run at a time per thread. A thread sums each word of a
/// plane's integer terms in its own buffer of W n_y n_z 64-bit integers (per component) and then
/// writes the plane: out = T(value<W>(sums)), or out + T(value<W>(sums)) with accumulate (added
/// in T). Within a run, bucket i's a = 1 corners go to a second buffer, the next plane's, so
/// that each particle's stencil is computed once (twice for the particles of the bucket before
/// a run). Integer addition is associative, so the result is the same bits for any thread count,
/// any cut into runs and any particle order. Every one of the n_x n_y n_z cells of each view is
/// written, and nothing else (FFTW's padding stays). weight(item, q, k) is given the bucket slot
/// q (for buckets.index).
template <int K, class T, class Item, class Weight>
void gather_planes(const PlaneBuckets<Item>& buckets, const std::array<mesh::RealView<T>, K>& out,
                   const std::array<fixed_point::Scale, K>& scale, bool accumulate,
                   const Weight& weight) {
  constexpr int W = fixed_point::words<T>;
  const mesh::Grid& grid = out[0].grid;
  const int nx = grid.n[0], ny = grid.n[1], nz = grid.n[2];
  const std::size_t plane = std::size_t(ny) * std::size_t(nz);
  const std::size_t size = static_cast<std::size_t>(K) * plane * W;
  const CicGeometry<T> pg = plane_geometry<T>(grid);
  const Item* items = buckets.items.data();
  const std::size_t* start = buckets.start.data();
  // About 4 runs per thread, for balance; a longer run spends less on its first bucket.
  const int run = std::max(1, nx / (4 * max_threads()));
  const int n_runs = (nx + run - 1) / run;
  DIFFPM_OMP(omp parallel) {
    std::vector<fixed_point::Accumulator> buffer(2 * size);
    fixed_point::Accumulator* cur = buffer.data();
    fixed_point::Accumulator* next = cur + size;
    DIFFPM_OMP(omp for schedule(dynamic, 1))
    for (int r = 0; r < n_runs; ++r) {
      const int first = r * run, end = std::min(nx, first + run);
      // Plane `first` takes the a = 1 corners of the bucket before it (with n_x = 1, bucket 0).
      const int before = first == 0 ? nx - 1 : first - 1;
      std::fill(cur, cur + size, fixed_point::Accumulator(0));
      add_plane_terms<false, true, K>(items, start[before], start[before + 1], pg, scale, plane,
                                      nullptr, cur, weight);
      for (int i = first; i < end; ++i) {
        if (i + 1 < end) {
          std::fill(next, next + size, fixed_point::Accumulator(0));
          add_plane_terms<true, true, K>(items, start[i], start[i + 1], pg, scale, plane, cur, next,
                                         weight);
        } else {  // the next plane starts another run, which adds these corners itself
          add_plane_terms<true, false, K>(items, start[i], start[i + 1], pg, scale, plane, cur,
                                          nullptr, weight);
        }
        for (int k = 0; k < K; ++k) {
          const mesh::RealView<T>& v = out[k];
          const fixed_point::Scale& sc = scale[k];
          const std::ptrdiff_t sz = v.stride[2];
          for (int j = 0; j < ny; ++j) {
            const fixed_point::Accumulator* s =
                cur + (std::size_t(k) * plane + std::size_t(j) * std::size_t(nz)) * W;
            T* row = v.data + v.offset(i, j, 0);
            for (int kz = 0; kz < nz; ++kz) {
              // a cell's words: hi at [0], lo at [W - 1] (ignored, and the same word, for W = 1)
              const fixed_point::Accumulator* a = s + std::size_t(kz) * W;
              const T value = T(fixed_point::value<W>(a[0], a[W - 1], sc));
              T& cell = row[std::ptrdiff_t(kz) * sz];
              cell = accumulate ? T(cell + value) : value;
            }
          }
        }
        std::swap(cur, next);
      }
    }
  }
}

}  // namespace diffpm::particles::detail
