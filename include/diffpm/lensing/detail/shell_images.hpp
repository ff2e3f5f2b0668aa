/// \file
/// \brief The per-particle arithmetic of shell painting (lensing/shell_painting.hpp), written
/// once for both backends: the enumeration of a particle's images on a shell's plane, each
/// image's fixed-point deposit, and each image's contribution to the adjoint.
///
/// Everything here is DIFFPM_HOST_DEVICE and works on plain values and raw pointers, so that the
/// CPU kernels (lensing/shell_painting.hpp) and the device kernels
/// (lensing/shell_painting_device.hpp) run the same operations in the same order: the painted
/// planes are the same integers on both, and in the host emulation of the device backend the
/// adjoint is the same bits.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "diffpm/core/fixed_point.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/portable_math.hpp"
#include "diffpm/lensing/plane.hpp"
#include "diffpm/lensing/replicas.hpp"
#include "diffpm/lensing/shells.hpp"

namespace diffpm::lensing::detail {

/// Replica m of the box as a kernel needs it (Replicas::shift and Replicas::orientation, computed
/// once on the host): image coordinate d of a point x is sign[d] x[axis[d]] + r[d]. Plain arrays,
/// so that a list of them can be copied to device memory as it is.
struct ReplicaView {
  int m = 0;
  double r[3] = {0.0, 0.0, 0.0};
  int axis[3] = {0, 1, 2};
  double sign[3] = {1.0, 1.0, 1.0};
};

/// The replicas whose line-of-sight range meets the shell's support [chi - width, chi + width].
inline std::vector<ReplicaView> replicas_for(const Replicas& rep, double chi, double width) {
  int first, last;
  rep.replica_range(chi - width, chi + width, first, last);
  std::vector<ReplicaView> v;
  for (int m = first; m <= last; ++m) {
    ReplicaView view;
    view.m = m;
    const auto r = rep.shift(m);
    const Orientation o = rep.orientation(m);
    for (int d = 0; d < 3; ++d) {
      view.r[d] = r[d];
      view.axis[d] = o.axis[d];
      view.sign[d] = o.sign[d];
    }
    v.push_back(view);
  }
  return v;
}

/// What the enumeration of images needs about the box, the observer, the shell and its plane.
struct ImageGeometry {
  double box[3] = {0.0, 0.0, 0.0};
  double observer[3] = {0.0, 0.0, 0.0};
  double chi = 0.0, width = 0.0;
  double cell = 0.0;      ///< the plane's angular cell, radians
  double centre = 0.0;    ///< (n - 1) / 2: PlaneGrid::coordinate(theta) = theta / cell + centre
  double theta_lo = 0.0;  ///< angles beyond which an image's 2D CIC stencil misses the plane
  double theta_hi = 0.0;
  int n = 0;  ///< points per side of the plane
};

inline ImageGeometry image_geometry(const Replicas& rep, const PlaneGrid& g, double chi,
                                    double width) {
  ImageGeometry ig;
  for (int d = 0; d < 3; ++d) {
    ig.box[d] = rep.box[d];
    ig.observer[d] = rep.observer[d];
  }
  ig.chi = chi;
  ig.width = width;
  ig.cell = g.cell;
  ig.centre = 0.5 * (g.n - 1);
  ig.theta_lo = g.angle(0) - g.cell;
  ig.theta_hi = g.angle(g.n - 1) + g.cell;
  ig.n = g.n;
  return ig;
}

/// Image coordinate d of the particle at xp in a replica, relative to the observer and before
/// wrapping: sign[d] x[axis[d]] + r[d] - o[d] (each operation rounded on its own: see below).
DIFFPM_HOST_DEVICE inline double image_coordinate(const ReplicaView& view, const double xp[3],
                                                  const ImageGeometry& g, int d) {
  using portable::detail::add;
  return portable::detail::sub(
      add(portable::detail::mul(view.sign[d], xp[view.axis[d]]), view.r[d]), g.observer[d]);
}

/// Calls f(s, tx, ty, view, r) for every replica of views[0, n_views) and every periodic image of
/// the particle at xp across the line of sight whose angle falls on the plane (continuous point
/// coordinates tx, ty in (-1, n)), with s > 0 the image's distance along the line of sight and
/// hat(s) > 0, and r = per_replica(s): what depends on s alone is computed once for the tens of
/// images a particle has across a cone wider than the box, not once per image. Images come in a
/// fixed order (replica, then iy, then iz), which the adjoint's sums in T rely on for their bits.
/// The image at s stands for the volume s^2 ds dOmega; see paint_shell for the weight.
///
/// s, the image range and (tx, ty) are formed with core/portable_math.hpp's operations, each
/// rounded on its own: nvcc fuses a multiply and an add into one FMA by default, which would move
/// an image's point coordinates by an ulp on the GPU, and with them its fixed-point terms; so the
/// device paints the CPU's plane bit for bit. (On the host these are the plain operators.)
template <class PerReplica, class F>
DIFFPM_HOST_DEVICE inline void for_each_image_of(const double xp[3], const ReplicaView* views,
                                                 int n_views, const ImageGeometry& g,
                                                 const PerReplica& per_replica, F& f) {
  using portable::detail::add;
  using portable::detail::div;
  using portable::detail::mul;
  using portable::detail::sub;
  const double Lx = g.box[0], Ly = g.box[1], Lz = g.box[2];
  for (int v = 0; v < n_views; ++v) {
    const ReplicaView& view = views[v];
    // replicas.hpp: s = m L_x + wrap(c_0 - o_0, L_x), (X, Y) = (c_1 - o_1, c_2 - o_2) + (j L_y,
    // k L_z) with c = O_m(x) + r_m.
    const double s =
        add(mul(double(view.m), Lx), wrap_periodic(image_coordinate(view, xp, g, 0), Lx));
    if (!(s > 0.0) || !(std::fabs(s - g.chi) < g.width)) continue;
    const double X = image_coordinate(view, xp, g, 1), Y = image_coordinate(view, xp, g, 2);
    // The images j, k whose angle (X + j L_y) / s, (Y + k L_z) / s lies in [theta_lo, theta_hi].
    const long long ny0 = static_cast<long long>(std::ceil(div(sub(mul(g.theta_lo, s), X), Ly)));
    const long long ny1 = static_cast<long long>(std::floor(div(sub(mul(g.theta_hi, s), X), Ly)));
    const long long nz0 = static_cast<long long>(std::ceil(div(sub(mul(g.theta_lo, s), Y), Lz)));
    const long long nz1 = static_cast<long long>(std::floor(div(sub(mul(g.theta_hi, s), Y), Lz)));
    if (ny0 > ny1 || nz0 > nz1) continue;
    const auto r = per_replica(s);
    const double to_t = 1.0 / (s * g.cell);  // dt / d(transverse position)
    for (long long iy = ny0; iy <= ny1; ++iy) {
      const double tx = add(mul(add(X, mul(double(iy), Ly)), to_t), g.centre);
      if (!(tx > -1.0 && tx < g.n)) continue;
      for (long long iz = nz0; iz <= nz1; ++iz) {
        const double ty = add(mul(add(Y, mul(double(iz), Lz)), to_t), g.centre);
        if (!(ty > -1.0 && ty < g.n)) continue;
        f(s, tx, ty, view, r);
      }
    }
  }
}

/// An image's weight K Lambda(s) / s^2 (paint_shell), K = 1 / (nbar Delta cell^2).
struct ImageWeight {
  double K = 0.0, chi = 0.0, width = 0.0;
  DIFFPM_HOST_DEVICE double operator()(double s) const {
    return K * line_of_sight_hat(s, chi, width).value / (s * s);
  }
};

/// The number of a particle's images and the largest |weight| among them, for the fixed-point
/// scale (a count and a maximum: the same for any grouping of the particles).
struct ImageBound {
  unsigned long long images = 0;
  double max_weight = 0.0;
  bool finite = true;
  DIFFPM_HOST_DEVICE void operator()(double, double, double, const ReplicaView&, double w) {
    ++images;
    finite = finite && std::isfinite(w);
    const double a = std::fabs(w);
    max_weight = a > max_weight ? a : max_weight;
  }
};

template <class PerReplica>
DIFFPM_HOST_DEVICE inline ImageBound particle_bound(const double xp[3], const ReplicaView* views,
                                                    int n_views, const ImageGeometry& g,
                                                    const PerReplica& weight) {
  ImageBound b;
  for_each_image_of(xp, views, n_views, g, weight, b);
  return b;
}

/// The fixed-point terms of one image's deposit of weight w at plane point (tx, ty): term[2 c
/// + e] for row c (ay.lo, ay.hi) and column e (ax.lo, ax.hi), fixed_point::term<Words>(w (1 -
/// f_y or f_y) (1 - f_x or f_x), scale), the products formed left to right in double as the
/// floating-point deposit did (whatever the plane's type; Words = fixed_point::words of it).
/// Their values sum to at most |w| (up to rounding): the bound of paint_shell's scale.
template <int Words>
DIFFPM_HOST_DEVICE inline void shell_terms(const AxisStencil& ax, const AxisStencil& ay, double w,
                                           const fixed_point::Scale& scale,
                                           fixed_point::Term term[4]) {
  const double wy[2] = {w * (1.0 - ay.f), w * ay.f};
  for (int c = 0; c < 2; ++c) {
    term[2 * c] = fixed_point::term<Words>(wy[c] * (1.0 - ax.f), scale);
    term[2 * c + 1] = fixed_point::term<Words>(wy[c] * ax.f, scale);
  }
}

/// Deposits each image's terms through add(point, term), point = j n + i: a plain add into a
/// thread's own plane on the CPU, an integer atomic on the device. Integer sums do not depend on
/// the order of the adds, so both give the same plane.
template <int Words, class Add>
struct ImageDeposit {
  int n = 0;
  fixed_point::Scale scale;
  Add add;
  DIFFPM_HOST_DEVICE void operator()(double, double tx, double ty, const ReplicaView&,
                                     double w) const {
    const AxisStencil ax = axis_stencil(tx, n), ay = axis_stencil(ty, n);
    fixed_point::Term term[4];
    shell_terms<Words>(ax, ay, w, scale, term);
    const int jy[2] = {ay.lo, ay.hi};
    for (int c = 0; c < 2; ++c) {
      if (jy[c] < 0) continue;
      const std::size_t row = std::size_t(jy[c]) * std::size_t(n);
      if (ax.lo >= 0) add(row + std::size_t(ax.lo), term[2 * c]);
      if (ax.hi >= 0) add(row + std::size_t(ax.hi), term[2 * c + 1]);
    }
  }
};

template <int Words, class PerReplica, class Add>
DIFFPM_HOST_DEVICE inline void deposit_particle(const double xp[3], const ReplicaView* views,
                                                int n_views, const ImageGeometry& g,
                                                const PerReplica& weight,
                                                const fixed_point::Scale& scale, const Add& add) {
  const ImageDeposit<Words, Add> deposit{g.n, scale, add};
  for_each_image_of(xp, views, n_views, g, weight, deposit);
}

/// A plane point's overdensity from its word sums: value<Words>(sums) - 1 (the 1 + delta of the
/// deposit minus the mean), rounded once to T.
template <class T, int Words>
DIFFPM_HOST_DEVICE inline T plane_value(fixed_point::Accumulator hi, fixed_point::Accumulator lo,
                                        const fixed_point::Scale& scale) {
  return static_cast<T>(fixed_point::value<Words>(hi, lo, scale) - 1.0);
}

/// An image's factors that depend on s only, for the adjoint. The image's value is
/// K Lambda(s) W(t) / s^2 with t = theta / cell + centre, theta = X / s: dt/dX = 1 / (s cell),
/// dt/ds = -theta / (s cell) = -(t - centre) / s; K = 1 / (nbar Delta cell^2) gives
/// dK/dDelta = -K / Delta.
struct ImageFactors {
  double d_s = 0.0;      ///< d(value)/ds at fixed t, per unit W
  double wh_s = 0.0;     ///< times dW/dt (t - centre): the t(s) term
  double wh_t = 0.0;     ///< times dW/dt: d/dX, d/dY
  double d_chi = 0.0;    ///< d(value)/dchi per unit W
  double d_width = 0.0;  ///< d(value)/dDelta per unit W
};

struct AdjointFactors {
  double K = 0.0, chi = 0.0, width = 0.0, cell = 0.0;
  DIFFPM_HOST_DEVICE ImageFactors operator()(double s) const {
    const Hat h = line_of_sight_hat(s, chi, width);
    const double k_s2 = K / (s * s), wh = k_s2 * h.value;
    ImageFactors r;
    r.d_s = k_s2 * (h.d_s - 2.0 * h.value / s);
    r.wh_s = wh / s;
    r.wh_t = wh / (s * cell);
    r.d_chi = k_s2 * h.d_chi;
    r.d_width = k_s2 * (h.d_width - h.value / width);
    return r;
  }
};

/// One particle's adjoint: x_bar (its gradient, accumulated in T image by image in the order of
/// for_each_image_of, as it is stored) and its contributions to dL/dchi and dL/dDelta (summed in
/// double over its images, from zero). plane_bar is the packed plane of dL/ddelta.
template <class T>
struct ImageAdjoint {
  const T* plane_bar = nullptr;
  int n = 0;
  double centre = 0.0;
  T x_bar[3] = {T(0), T(0), T(0)};
  double chi = 0.0, width = 0.0;

  DIFFPM_HOST_DEVICE double at(int i, int j) const {
    return i < 0 || j < 0 ? 0.0 : double(plane_bar[std::size_t(j) * std::size_t(n) + i]);
  }
  DIFFPM_HOST_DEVICE void operator()(double, double tx, double ty, const ReplicaView& view,
                                     const ImageFactors& r) {
    const AxisStencil ax = axis_stencil(tx, n), ay = axis_stencil(ty, n);
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
    for (int d = 0; d < 3; ++d) x_bar[view.axis[d]] += static_cast<T>(view.sign[d] * g_img[d]);
    chi += val * r.d_chi;
    width += val * r.d_width;
  }
};

/// Runs one particle's adjoint: x_bar[0..2] += its position gradient; returns the functor, whose
/// chi and width are the particle's terms of dL/dchi and dL/dDelta.
template <class T>
DIFFPM_HOST_DEVICE inline ImageAdjoint<T> adjoint_particle(const double xp[3],
                                                           const ReplicaView* views, int n_views,
                                                           const ImageGeometry& g,
                                                           const AdjointFactors& factors,
                                                           const T* plane_bar, T x_bar[3]) {
  ImageAdjoint<T> a;
  a.plane_bar = plane_bar;
  a.n = g.n;
  a.centre = g.centre;
  for (int d = 0; d < 3; ++d) a.x_bar[d] = x_bar[d];
  for_each_image_of(xp, views, n_views, g, factors, a);
  for (int d = 0; d < 3; ++d) x_bar[d] = a.x_bar[d];
  return a;
}

}  // namespace diffpm::lensing::detail
