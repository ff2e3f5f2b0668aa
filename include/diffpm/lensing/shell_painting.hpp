/// \file
/// \brief Painting one lightcone shell into its density plane: each particle (and each of its
/// periodic images in the lightcone) at its own flat-sky angle, 2D CIC across the line of
/// sight and the hat of shells.hpp along it; and the adjoint. The per-particle arithmetic is
/// detail/shell_images.hpp's, which the device kernels (shell_painting_device.hpp) share.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/core/deterministic_sum.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/fixed_point.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/lensing/detail/shell_images.hpp"
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

inline InvalidArgument non_finite_weight(const char* fn, double chi, double width) {
  return InvalidArgument(std::string(fn) + ": an image weight K Lambda(s) / s^2 is not finite " +
                         "(shell at chi = " + format_number(chi) + " Mpc/h, width " +
                         format_number(width) + ")");
}

/// Runs body(b, p) for every particle p, in parallel over n_blocks fixed particle blocks, each
/// in particle order (dynamic scheduling: the number of images differs between particles).
template <class Body>
void for_each_particle_block(std::size_t n, int n_blocks, const Body& body) {
  DIFFPM_OMP(omp parallel for schedule(dynamic, 1))
  for (int b = 0; b < n_blocks; ++b) {
    const std::size_t begin = n * std::size_t(b) / n_blocks,
                      end = n * std::size_t(b + 1) / n_blocks;
    for (std::size_t p = begin; p < end; ++p) body(b, p);
  }
}

/// A particle's position in double, as the image arithmetic takes it.
template <class T>
void position_in_double(const std::array<T, 3>& x, double xp[3]) {
  for (int d = 0; d < 3; ++d) xp[d] = double(x[d]);
}

/// The CPU's deposit into a particle group's own plane (word j of point c at c W + j).
template <int W>
struct GroupPlaneAdd {
  fixed_point::Accumulator* plane;
  DIFFPM_HOST_DEVICE void operator()(std::size_t point, const fixed_point::Term& t) const {
    plane[point * W] += t.hi;
    if constexpr (W == 2) plane[point * W + 1] += t.lo;
  }
};

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
  const detail::ImageWeight weight{detail::shell_norm(nbar, width, g.cell), chi, width};
  const auto views = detail::replicas_for(rep, chi, width);
  const detail::ReplicaView* rv = views.data();
  const int n_views = int(views.size());
  const detail::ImageGeometry geo = detail::image_geometry(rep, g, chi, width);
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
  detail::for_each_particle_block(x.size(), groups, [&](int b, std::size_t p) {
    double xp[3];
    detail::position_in_double(x[p], xp);
    const detail::ImageBound ib = detail::particle_bound(xp, rv, n_views, geo, weight);
    GroupBound& gb = bounds[b];
    gb.images += std::size_t(ib.images);
    gb.finite = gb.finite && ib.finite;
    gb.max_weight = std::max(gb.max_weight, ib.max_weight);
  });
  std::size_t images = 0;
  double max_weight = 0.0;
  for (const auto& gb : bounds) {
    if (!gb.finite) throw detail::non_finite_weight(fn, chi, width);
    images += gb.images;
    max_weight = std::max(max_weight, gb.max_weight);
  }
  const auto scale = fixed_point::scale_for(images, max_weight, fn);

  // Pass 2: each group sums its images' integer terms (detail::deposit_particle), word by word,
  // in its own plane (word j of point c at c W + j); the planes are added.
  std::vector<fixed_point::Accumulator> partial(std::size_t(groups) * g.size() * W, 0);
  detail::for_each_particle_block(x.size(), groups, [&](int b, std::size_t p) {
    double xp[3];
    detail::position_in_double(x[p], xp);
    const detail::GroupPlaneAdd<W> add{partial.data() + std::size_t(b) * g.size() * W};
    detail::deposit_particle<W>(xp, rv, n_views, geo, weight, scale, add);
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
    out[c] = detail::plane_value<T, W>(sum[0], sum[1], scale);
  }
}

/// The adjoint of paint_shell: given plane_bar = dL/ddelta, adds dL/dx to x_bar (sized to the
/// particles, zeros, if empty) and returns dL/dchi and dL/dDelta (through the hat and through
/// the normalisation 1 / Delta). The "- 1" is a constant and has no adjoint; the plane's grid is a
/// fixed discretisation (chosen once per lightcone), not a function of chi. Each particle's
/// gradient is accumulated in T image by image, and its terms of dL/dchi and dL/dDelta are summed
/// over its images; the particles' terms are then added in the fixed blocks of
/// core/deterministic_sum.hpp. So the result does not depend on the thread count, and the device
/// backend (shell_painting_device.hpp) reproduces the same grouping.
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
  const detail::AdjointFactors factors{detail::shell_norm(nbar, width, g.cell), chi, width, g.cell};
  const auto views = detail::replicas_for(rep, chi, width);
  const detail::ReplicaView* rv = views.data();
  const int n_views = int(views.size());
  const detail::ImageGeometry geo = detail::image_geometry(rep, g, chi, width);
  const T* pb = plane_bar.data.data();
  // Each particle's terms are summed over its images (detail::adjoint_particle), and the
  // particles' terms in the fixed blocks of core/deterministic_sum.hpp: the grouping the device
  // backend reproduces (backend::deterministic_sum), for any thread count.
  const auto sums = deterministic_sums<2>(std::ptrdiff_t(x.size()), [&](std::ptrdiff_t p) {
    double xp[3];
    detail::position_in_double(x[std::size_t(p)], xp);
    const auto a =
        detail::adjoint_particle(xp, rv, n_views, geo, factors, pb, x_bar[std::size_t(p)].data());
    return std::array<double, 2>{a.chi, a.width};
  });
  ShellPaintGradient r;
  r.chi = sums[0];
  r.width = sums[1];
  return r;
}

}  // namespace diffpm::lensing
