/// \file
/// \brief Painting one lightcone shell into its density plane: each particle (and each of its
/// periodic images in the lightcone) at its own flat-sky angle, 2D CIC across the line of
/// sight and the hat of shells.hpp along it; and the adjoint.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/fixed_point.hpp"
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

struct ReplicaView {
  int m;
  std::array<double, 3> r;
  Orientation o;
};

inline std::vector<ReplicaView> replicas_for(const Replicas& rep, double chi, double width) {
  int first, last;
  rep.replica_range(chi - width, chi + width, first, last);
  std::vector<ReplicaView> v;
  for (int m = first; m <= last; ++m) v.push_back({m, rep.shift(m), rep.orientation(m)});
  return v;
}

inline void check_shell(const Replicas& rep, double chi, double width, const PlaneGrid& grid,
                        const char* fn) {
  rep.validate();
  grid.validate();
  if (!(width > 0.0) || !std::isfinite(width) || !(chi > 0.0) || !std::isfinite(chi)) {
    throw InvalidArgument(std::string(fn) + ": shell at chi = " + format_number(chi) +
                          " Mpc/h with width " + format_number(width) +
                          " (need chi > 0, width > 0, both finite)");
  }
}

/// Particle groups of paint_shell, each with its own plane of `words` 64-bit integers per point
/// (fixed_point::words of the plane's type): 16 (enough parallelism for a workstation), fewer
/// when 16 planes would take more than 256 MB. (The painted plane does not depend on the groups:
/// integer sums do not depend on their order.)
inline int paint_groups(std::size_t plane_size, int words = 1) {
  const std::size_t budget =
      (std::size_t(256) << 20) / (sizeof(fixed_point::Accumulator) * std::size_t(words));
  return static_cast<int>(
      std::clamp<std::size_t>(budget / std::max<std::size_t>(plane_size, 1), 1, 16));
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

/// 1 / (nbar Delta cell^2): with the factor 1 / s^2 of each image, the weight that turns
/// counts into 1 + delta (see paint_shell).
inline double shell_norm(double nbar, double width, double cell) {
  return 1.0 / (nbar * width * cell * cell);
}

/// Calls f(block, p, s, tx, ty, view, r) for every particle p, every box replica of the shell
/// along the line of sight and every periodic image across it whose angle falls on the plane
/// (continuous point coordinates tx, ty in (-1, n)), with s > 0 its distance along the line of
/// sight and hat(s) > 0, and r = per_replica(s): what depends on s alone is computed once for
/// the tens of images a particle has across a cone wider than the box, not once per image. Runs in
/// parallel over fixed particle blocks, each in particle order.
template <class T, class PerReplica, class F>
void for_each_image(const std::vector<std::array<T, 3>>& x, const Replicas& rep, const PlaneGrid& g,
                    double chi, double width, int n_blocks, const PerReplica& per_replica,
                    const F& f) {
  const auto views = replicas_for(rep, chi, width);
  const std::size_t n = x.size();
  const double Lx = rep.box[0], Ly = rep.box[1], Lz = rep.box[2];
  const double theta_lo = g.angle(0) - g.cell, theta_hi = g.angle(g.n - 1) + g.cell;
  const double centre = 0.5 * (g.n - 1);  // PlaneGrid::coordinate(theta) = theta / cell + centre
  DIFFPM_OMP(omp parallel for schedule(dynamic, 1))
  for (int b = 0; b < n_blocks; ++b) {
    const std::size_t begin = n * std::size_t(b) / n_blocks,
                      end = n * std::size_t(b + 1) / n_blocks;
    for (std::size_t p = begin; p < end; ++p) {
      const double xp[3] = {double(x[p][0]), double(x[p][1]), double(x[p][2])};
      for (const auto& view : views) {
        const auto& o = view.o;
        const double s = view.m * Lx +
                         wrap_periodic(o.sign[0] * xp[o.axis[0]] + view.r[0] - rep.observer[0], Lx);
        if (!(s > 0.0) || !(std::fabs(s - chi) < width)) continue;
        const double X = o.sign[1] * xp[o.axis[1]] + view.r[1] - rep.observer[1];
        const double Y = o.sign[2] * xp[o.axis[2]] + view.r[2] - rep.observer[2];
        const long long ny0 = static_cast<long long>(std::ceil((theta_lo * s - X) / Ly));
        const long long ny1 = static_cast<long long>(std::floor((theta_hi * s - X) / Ly));
        const long long nz0 = static_cast<long long>(std::ceil((theta_lo * s - Y) / Lz));
        const long long nz1 = static_cast<long long>(std::floor((theta_hi * s - Y) / Lz));
        if (ny0 > ny1 || nz0 > nz1) continue;
        const auto r = per_replica(s);
        const double to_t = 1.0 / (s * g.cell);  // dt / d(transverse position)
        for (long long iy = ny0; iy <= ny1; ++iy) {
          const double tx = (X + double(iy) * Ly) * to_t + centre;
          if (!(tx > -1.0 && tx < g.n)) continue;
          for (long long iz = nz0; iz <= nz1; ++iz) {
            const double ty = (Y + double(iz) * Lz) * to_t + centre;
            if (!(ty > -1.0 && ty < g.n)) continue;
            f(b, p, s, tx, ty, view, r);
          }
        }
      }
    }
  }
}

/// The fixed-point terms of one image's deposit of weight w at plane point (tx, ty): term[2 c
/// + e] for row c (ay.lo, ay.hi) and column e (ax.lo, ax.hi), fixed_point::term<Words>(w (1 -
/// f_y or f_y) (1 - f_x or f_x), scale), the products formed left to right in double as the
/// floating-point deposit did (whatever the plane's type; Words = fixed_point::words of it).
/// Their values sum to at most |w| (up to rounding): the bound of paint_shell's scale.
template <int Words>
inline void shell_terms(const AxisStencil& ax, const AxisStencil& ay, double w,
                        const fixed_point::Scale& scale, fixed_point::Term term[4]) {
  const double wy[2] = {w * (1.0 - ay.f), w * ay.f};
  for (int c = 0; c < 2; ++c) {
    term[2 * c] = fixed_point::term<Words>(wy[c] * (1.0 - ax.f), scale);
    term[2 * c + 1] = fixed_point::term<Words>(wy[c] * ax.f, scale);
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

/// Paints the shell centred at comoving distance chi (hat half-width Delta = width) into
/// `plane` as an overdensity:
///   delta(point) = sum over particles, replicas and images of
///                  Lambda(s) W(theta) / (nbar Delta cell^2 s^2) - 1,
/// where s is the image's distance along the line of sight, theta = x_perp / s its flat-sky
/// angle, Lambda the hat of shells.hpp, W the 2D CIC weight of the plane point and cell the
/// plane's angular cell. An image at s stands for the volume s^2 ds dOmega, hence the 1 / s^2:
/// uniform matter (nbar s^2 per unit s and steradian) then gives int Lambda ds / Delta - 1 = 0,
/// and the plane is the hat-weighted line-of-sight average of delta, (1/Delta) int Lambda delta
/// ds, whatever the shell's thickness (a shell-averaged s^2 would bias a thin sheet by
/// Delta^2 / (6 chi^2)). nbar = `particle_density` per (Mpc/h)^3, or N / V_box when 0. Periodic
/// images across the line of sight are enumerated explicitly (replicas.hpp), so a wide lightcone
/// sees each structure where it really is, not folded back into one box width.
///
/// The deposit is summed in 64-bit fixed point (core/fixed_point.hpp; docs/design.md,
/// "Deterministic scatter"), so the plane is the same bits for any thread count and any particle
/// order. A first pass over the images counts them (n) and takes the largest image weight w_max
/// = max K Lambda(s) / s^2; the scale is fixed_point::scale_for(n, w_max), each term
/// (detail::shell_terms) is rounded to a multiple of 2^-62 n w_max, and for a double plane its
/// residual again in a second word (W = fixed_point::words<T> words per term and point), and a
/// point's value is T(value<W>(sums) - 1). Throws InvalidArgument on a non-finite position,
/// image weight or a bad shell.
template <class T>
void paint_shell(const particles::Positions<T>& x, const Replicas& rep, double chi, double width,
                 Plane<T>& plane, double particle_density = 0.0) {
  const char* fn = "paint_shell";
  detail::check_shell(rep, chi, width, plane.grid, fn);
  detail::check_finite_positions(x, fn);
  const PlaneGrid& g = plane.grid;
  const double nbar = detail::particle_density(particle_density, x.size(), rep, fn);
  const double K = detail::shell_norm(nbar, width, g.cell);
  const auto image_weight = [&](double s) {
    return K * line_of_sight_hat(s, chi, width).value / (s * s);
  };
  // Each of a fixed number of particle groups works on its own plane (at most `groups` threads
  // work: detail::paint_groups).
  constexpr int W = fixed_point::words<T>;
  const int groups = detail::paint_groups(g.size(), W);

  // Pass 1: the number of images and the largest image weight (a count and a max: the same for
  // any order), for the fixed-point scale.
  struct alignas(64) GroupBound {
    std::size_t images = 0;
    double max_weight = 0.0;
    bool finite = true;
  };
  std::vector<GroupBound> bounds(groups);
  detail::for_each_image(
      x, rep, g, chi, width, groups, image_weight,
      [&](int b, std::size_t, double, double, double, const detail::ReplicaView&, double w) {
        GroupBound& gb = bounds[b];
        ++gb.images;
        gb.finite = gb.finite && std::isfinite(w);
        gb.max_weight = std::max(gb.max_weight, std::fabs(w));
      });
  std::size_t images = 0;
  double max_weight = 0.0;
  for (const auto& gb : bounds) {
    if (!gb.finite) {
      throw InvalidArgument(std::string(fn) + ": an image weight K Lambda(s) / s^2 is not finite " +
                            "(shell at chi = " + format_number(chi) + " Mpc/h, width " +
                            format_number(width) + ")");
    }
    images += gb.images;
    max_weight = std::max(max_weight, gb.max_weight);
  }
  const auto scale = fixed_point::scale_for(images, max_weight, fn);

  // Pass 2: each group sums its images' integer terms, word by word, in its own plane (word j
  // of point c at c W + j); the planes are added.
  std::vector<fixed_point::Accumulator> partial(std::size_t(groups) * g.size() * W, 0);
  const int n = g.n;
  const auto add = [](fixed_point::Accumulator* point, const fixed_point::Term& t) {
    point[0] += t.hi;
    if constexpr (W == 2) point[1] += t.lo;
  };
  detail::for_each_image(
      x, rep, g, chi, width, groups, image_weight,
      [&](int b, std::size_t, double, double tx, double ty, const detail::ReplicaView&, double w) {
        fixed_point::Accumulator* m = partial.data() + std::size_t(b) * g.size() * W;
        const auto ax = detail::axis_stencil(tx, n), ay = detail::axis_stencil(ty, n);
        fixed_point::Term term[4];
        detail::shell_terms<W>(ax, ay, w, scale, term);
        const int jy[2] = {ay.lo, ay.hi};
        for (int c = 0; c < 2; ++c) {
          if (jy[c] < 0) continue;
          fixed_point::Accumulator* row = m + std::size_t(jy[c]) * n * W;
          if (ax.lo >= 0) add(row + std::size_t(ax.lo) * W, term[2 * c]);
          if (ax.hi >= 0) add(row + std::size_t(ax.hi) * W, term[2 * c + 1]);
        }
      });
  const std::ptrdiff_t size = std::ptrdiff_t(g.size());
  const fixed_point::Accumulator* part = partial.data();
  T* out = plane.data.data();
  DIFFPM_OMP(omp parallel for schedule(static))
  for (std::ptrdiff_t c = 0; c < size; ++c) {
    fixed_point::Accumulator sum[2] = {0, 0};
    for (int b = 0; b < groups; ++b) {
      const fixed_point::Accumulator* point = part + (std::ptrdiff_t(b) * size + c) * W;
      for (int j = 0; j < W; ++j) sum[j] += point[j];
    }
    out[c] = static_cast<T>(fixed_point::value<W>(sum[0], sum[1], scale) - 1.0);
  }
}

/// The adjoint of paint_shell: given plane_bar = dL/ddelta, adds dL/dx to x_bar (sized to the
/// particles, zeros, if empty) and returns dL/dchi and dL/dDelta (through the hat and through
/// the normalisation 1 / Delta). The "- 1" is a constant and has no adjoint; the plane's grid is a
/// fixed discretisation (chosen once per lightcone), not a function of chi. Reductions run over
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
  const PlaneGrid& g = plane_bar.grid;
  if (plane_bar.data.size() != g.size()) {
    throw InvalidArgument(std::string(fn) + ": plane_bar holds " +
                          std::to_string(plane_bar.data.size()) + " values for " +
                          std::to_string(g.size()) + " points");
  }
  const double nbar = detail::particle_density(particle_density, x.size(), rep, fn);
  const double K = detail::shell_norm(nbar, width, g.cell);
  const int n_blocks = detail::reduction_blocks(x.size());
  // One cache line per block: blocks on different threads would otherwise share lines and
  // every image's update would bounce them between cores (2.3x slower on 2 threads than 1).
  struct alignas(64) BlockSums {
    double chi = 0.0, width = 0.0;
  };
  std::vector<BlockSums> sums(n_blocks);
  const T* pb = plane_bar.data.data();
  const int n = g.n;
  const double centre = 0.5 * (n - 1);
  auto at = [&](int i, int j) { return i < 0 || j < 0 ? 0.0 : double(pb[std::size_t(j) * n + i]); };
  struct PerReplica {
    double d_s, wh_s, wh_t, d_chi, d_width;  // the image's factors that depend on s only
  };
  detail::for_each_image(
      x, rep, g, chi, width, n_blocks,
      [&](double s) {
        // value = K Lambda(s) W(t) / s^2 with t = theta / cell + centre, theta = X / s:
        // dt/dX = 1 / (s cell), dt/ds = -theta / (s cell) = -(t - centre) / s; K = 1 / (nbar
        // Delta cell^2) gives dK/dDelta = -K / Delta.
        const Hat h = line_of_sight_hat(s, chi, width);
        const double k_s2 = K / (s * s), wh = k_s2 * h.value;
        PerReplica r;
        r.d_s = k_s2 * (h.d_s - 2.0 * h.value / s);  // d(value)/ds at fixed t, per unit W
        r.wh_s = wh / s;                             // times dW/dt (t - centre): the t(s) term
        r.wh_t = wh / (s * g.cell);                  // times dW/dt: d/dX, d/dY
        r.d_chi = k_s2 * h.d_chi;
        r.d_width = k_s2 * (h.d_width - h.value / width);
        return r;
      },
      [&](int b, std::size_t p, double, double tx, double ty, const detail::ReplicaView& view,
          const PerReplica& r) {
        const auto ax = detail::axis_stencil(tx, n), ay = detail::axis_stencil(ty, n);
        const double b00 = at(ax.lo, ay.lo), b10 = at(ax.hi, ay.lo);
        const double b01 = at(ax.lo, ay.hi), b11 = at(ax.hi, ay.hi);
        const double lo_y = b00 * (1.0 - ax.f) + b10 * ax.f;   // row ay.lo
        const double hi_y = b01 * (1.0 - ax.f) + b11 * ax.f;   // row ay.hi
        const double val = lo_y * (1.0 - ay.f) + hi_y * ay.f;  // bilinear readout of plane_bar
        const double gx = (b10 - b00) * (1.0 - ay.f) + (b11 - b01) * ay.f;  // d/dtx
        const double gy = hi_y - lo_y;                                      // d/dty
        // Derivatives with respect to the image coordinates (s, X, Y), then back through the
        // replica's orientation: image coordinate d is sign[d] * x[axis[d]].
        const double g_img[3] = {val * r.d_s - r.wh_s * (gx * (tx - centre) + gy * (ty - centre)),
                                 r.wh_t * gx, r.wh_t * gy};
        for (int d = 0; d < 3; ++d)
          x_bar[p][view.o.axis[d]] += static_cast<T>(view.o.sign[d] * g_img[d]);
        sums[b].chi += val * r.d_chi;
        sums[b].width += val * r.d_width;
      });
  ShellPaintGradient r;
  for (int b = 0; b < n_blocks; ++b) {
    r.chi += sums[b].chi;
    r.width += sums[b].width;
  }
  return r;
}

}  // namespace diffpm::lensing
