/// \file
/// \brief Painting one lightcone shell into its density plane (2D CIC across the line of sight,
/// the hat of lensing/shells.hpp along it), and the adjoint.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/lensing/plane.hpp"
#include "diffpm/lensing/replicas.hpp"
#include "diffpm/lensing/shells.hpp"
#include "diffpm/particles/detail/cic_paint.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::lensing {

/// dL/d(shell scalars) returned by paint_shell_adjoint.
struct ShellPaintGradient {
  double chi = 0.0;    ///< dL/dchi_i
  double width = 0.0;  ///< dL/dDelta
};

namespace detail {

struct ShellItem {
  PlaneStencil st;
  double w;
};

struct ReplicaView {
  int m;
  std::array<double, 3> r;
};

inline std::vector<ReplicaView> replicas_for(const Replicas& rep, double chi, double width) {
  int first, last;
  rep.replica_range(chi - width, chi + width, first, last);
  std::vector<ReplicaView> v;
  for (int m = first; m <= last; ++m) v.push_back({m, rep.shift(m)});
  return v;
}

inline void check_shell(const Replicas& rep, double chi, double width, const PlaneGrid& grid,
                        const char* fn) {
  rep.validate();
  grid.validate();
  if (!(width > 0.0) || !std::isfinite(width) || !(chi >= 0.0) || !std::isfinite(chi)) {
    throw InvalidArgument(std::string(fn) + ": shell at chi = " + format_number(chi) +
                          " Mpc/h with width " + format_number(width) +
                          " (need chi >= 0, width > 0, both finite)");
  }
  if (grid.length[0] != rep.box[1] || grid.length[1] != rep.box[2]) {
    throw InvalidArgument(std::string(fn) + ": plane of " + format_number(grid.length[0]) + " x " +
                          format_number(grid.length[1]) +
                          " Mpc/h, but the box's transverse sides are " +
                          format_number(rep.box[1]) + " x " + format_number(rep.box[2]) +
                          " (planes are periodic with the box)");
  }
}

/// Particles per (Mpc/h)^3: the given density, or N / V when it is 0.
inline double particle_density(double given, std::size_t n, const Replicas& rep, const char* fn) {
  if (given == 0.0) return double(n) / (rep.box[0] * rep.box[1] * rep.box[2]);
  if (!(given > 0.0) || !std::isfinite(given)) {
    throw InvalidArgument(std::string(fn) + ": mean particle density = " + format_number(given) +
                          " per (Mpc/h)^3 (must be finite and > 0, or 0 for N / V)");
  }
  return given;
}

/// Calls f(p, m-view, s, u, v) for every particle p and every replica of the shell, with the
/// particle's line-of-sight distance s and transverse coordinates (u, v) in that replica, in
/// fixed blocks: f(block, ...) runs in parallel over blocks, each block in particle order.
template <class T, class F>
void for_each_in_replicas(const std::vector<std::array<T, 3>>& x, const Replicas& rep,
                          const std::vector<ReplicaView>& views, int n_blocks, const F& f) {
  const std::size_t n = x.size();
  const double Lx = rep.box[0];
  DIFFPM_OMP(omp parallel for schedule(dynamic, 1))
  for (int b = 0; b < n_blocks; ++b) {
    const std::size_t begin = n * std::size_t(b) / n_blocks, end = n * std::size_t(b + 1) / n_blocks;
    for (std::size_t p = begin; p < end; ++p) {
      const double x0 = double(x[p][0]), x1 = double(x[p][1]), x2 = double(x[p][2]);
      for (const auto& view : views) {
        const double s = view.m * Lx + wrap_periodic(x0 + view.r[0] - rep.observer[0], Lx);
        f(b, p, s, x1 + view.r[1] - rep.observer[1], x2 + view.r[2] - rep.observer[2]);
      }
    }
  }
}

template <class T>
void check_finite_positions(const std::vector<std::array<T, 3>>& x, const char* fn) {
  bool bad = false;
  const std::ptrdiff_t n = std::ptrdiff_t(x.size());
  DIFFPM_OMP(omp parallel for reduction(|| : bad))
  for (std::ptrdiff_t p = 0; p < n; ++p) bad = bad || !particles::detail::finite_position(x[p]);
  if (bad) particles::detail::throw_non_finite(x, fn);
}

}  // namespace detail

/// Paints the shell centred at comoving distance chi (half-width Delta = width) into `plane`
/// as an overdensity:
///   delta(u, v) = sum_p sum_m Lambda(s_pm) W(u_pm, v_pm) / (nbar Delta A_cell) - 1,
/// over particles p and box replicas m (lensing/replicas.hpp), Lambda the line-of-sight hat
/// (lensing/shells.hpp), W the 2D CIC weights on the periodic plane and A_cell its cell area.
/// nbar Delta is the mean surface density of the shell (the hat integrates to Delta), so a
/// uniform distribution gives delta = 0. nbar = `particle_density` (per (Mpc/h)^3), or
/// N / V_box when 0. The sum is bitwise the same for any thread count (particles are bucketed by
/// plane row and painted in colour phases, as the 3D paint: particles/detail/cic_paint.hpp).
/// Throws InvalidArgument on a non-finite position, a bad shell or a plane that does not
/// match the box's transverse sides.
template <class T>
void paint_shell(const particles::Positions<T>& x, const Replicas& rep, double chi, double width,
                 Plane<T>& plane, double particle_density = 0.0) {
  const char* fn = "paint_shell";
  detail::check_shell(rep, chi, width, plane.grid, fn);
  detail::check_finite_positions(x, fn);
  const double nbar = detail::particle_density(particle_density, x.size(), rep, fn);
  const double w = 1.0 / (nbar * width * plane.grid.cell_area());
  const auto views = detail::replicas_for(rep, chi, width);
  const int n_blocks = detail::reduction_blocks(x.size());
  std::vector<std::vector<detail::ShellItem>> items(n_blocks);
  const PlaneGrid& g = plane.grid;
  detail::for_each_in_replicas(x, rep, views, n_blocks,
                               [&](int b, std::size_t, double s, double u, double v) {
                                 const Hat h = line_of_sight_hat(s, chi, width);
                                 if (h.value > 0.0) {
                                   items[b].push_back({detail::plane_stencil(g, u, v), w * h.value});
                                 }
                               });
  // Stable counting sort by plane row, in block order: an order fixed by the positions alone.
  particles::detail::PlaneBuckets<detail::ShellItem> buckets;
  buckets.start.assign(std::size_t(g.n[0]) + 1, 0);
  std::size_t total = 0;
  for (const auto& blk : items) {
    total += blk.size();
    for (const auto& it : blk) ++buckets.start[std::size_t(it.st.i0) + 1];
  }
  for (int i = 0; i < g.n[0]; ++i) buckets.start[i + 1] += buckets.start[i];
  buckets.items.resize(total);
  {
    std::vector<std::size_t> next(buckets.start.begin(), buckets.start.end() - 1);
    for (const auto& blk : items)
      for (const auto& it : blk) buckets.items[next[it.st.i0]++] = it;
  }
  items.clear();
  std::vector<double> acc(g.size(), 0.0);  // double accumulation: float planes of ~1e6
                                           // particles would otherwise lose digits
  double* m = acc.data();
  const int nv = g.n[1];
  particles::detail::paint_by_planes(buckets, g.n[0], [&](const detail::ShellItem& it) {
    const auto& st = it.st;
    const double a0 = it.w * (1.0 - st.fu), a1 = it.w * st.fu;
    m[std::size_t(st.i0) * nv + st.j0] += a0 * (1.0 - st.fv);
    m[std::size_t(st.i0) * nv + st.j1] += a0 * st.fv;
    m[std::size_t(st.i1) * nv + st.j0] += a1 * (1.0 - st.fv);
    m[std::size_t(st.i1) * nv + st.j1] += a1 * st.fv;
  });
  for (std::size_t c = 0; c < g.size(); ++c) plane.data[c] = static_cast<T>(acc[c] - 1.0);
}

/// The adjoint of paint_shell: given plane_bar = dL/ddelta, adds dL/dx to x_bar (sized to the
/// particles, zeros, if empty) and returns dL/dchi and dL/dDelta (through the hat and through
/// the normalisation 1/Delta). The "- 1" is a constant and has no adjoint. Reductions run over
/// fixed particle blocks, so the result does not depend on the thread count.
template <class T>
ShellPaintGradient paint_shell_adjoint(const particles::Positions<T>& x, const Replicas& rep,
                                       double chi, double width, const Plane<T>& plane_bar,
                                       particles::Positions<T>& x_bar,
                                       double particle_density = 0.0) {
  const char* fn = "paint_shell_adjoint";
  detail::check_shell(rep, chi, width, plane_bar.grid, fn);
  detail::check_finite_positions(x, fn);
  particles::detail::prepare_accumulator(x_bar, x.size(), fn, "x_bar");
  const double nbar = detail::particle_density(particle_density, x.size(), rep, fn);
  const double w = 1.0 / (nbar * width * plane_bar.grid.cell_area());
  const auto views = detail::replicas_for(rep, chi, width);
  const int n_blocks = detail::reduction_blocks(x.size());
  std::vector<double> d_chi(n_blocks, 0.0), d_width(n_blocks, 0.0);
  const PlaneGrid& g = plane_bar.grid;
  const T* pb = plane_bar.data.data();
  const double su = g.n[0] / g.length[0], sv = g.n[1] / g.length[1];
  const int nv = g.n[1];
  detail::for_each_in_replicas(
      x, rep, views, n_blocks, [&](int b, std::size_t p, double s, double u, double v) {
        const Hat h = line_of_sight_hat(s, chi, width);
        if (!(h.value > 0.0) && h.d_s == 0.0) return;
        const auto st = detail::plane_stencil(g, u, v);
        const double b00 = double(pb[std::size_t(st.i0) * nv + st.j0]);
        const double b01 = double(pb[std::size_t(st.i0) * nv + st.j1]);
        const double b10 = double(pb[std::size_t(st.i1) * nv + st.j0]);
        const double b11 = double(pb[std::size_t(st.i1) * nv + st.j1]);
        const double lo_u = b00 * (1.0 - st.fv) + b01 * st.fv;
        const double hi_u = b10 * (1.0 - st.fv) + b11 * st.fv;
        const double val = lo_u * (1.0 - st.fu) + hi_u * st.fu;  // bilinear readout of plane_bar
        const double gu = (hi_u - lo_u) * su;
        const double gv = ((b01 - b00) * (1.0 - st.fu) + (b11 - b10) * st.fu) * sv;
        x_bar[p][0] += static_cast<T>(w * val * h.d_s);
        x_bar[p][1] += static_cast<T>(w * h.value * gu);
        x_bar[p][2] += static_cast<T>(w * h.value * gv);
        d_chi[b] += w * val * h.d_chi;
        // d(w h)/dDelta with w = 1 / (nbar Delta A): w (dh/dDelta - h / Delta).
        d_width[b] += w * val * (h.d_width - h.value / width);
      });
  ShellPaintGradient r;
  for (int b = 0; b < n_blocks; ++b) {
    r.chi += d_chi[b];
    r.width += d_width[b];
  }
  return r;
}

}  // namespace diffpm::lensing
