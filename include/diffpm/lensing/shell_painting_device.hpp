/// \file
/// \brief Lightcone shell painting and its adjoint on the device backend (backend/device/): the
/// per-particle arithmetic of the CPU kernels (lensing/detail/shell_images.hpp), one device
/// thread per particle, positions and planes in device memory.
///
/// The paint adds the CPU's 64-bit fixed-point terms with integer atomics and converts once, so
/// a plane is the same bits as the CPU's paint_shell of the same positions, on a GPU too and for
/// any particle order. The adjoint runs each particle's images in the CPU's order and adds the
/// particles' terms of dL/dchi and dL/dDelta with backend::deterministic_sum, grouped as the CPU
/// groups them (core/deterministic_sum.hpp): the same bits in the host emulation; on a GPU, nvcc
/// may contract a multiply and an add into one fused operation, which moves the last bits.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/backend/device/atomic.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/parallel.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/fixed_point.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/lensing/detail/shell_images.hpp"
#include "diffpm/lensing/plane.hpp"
#include "diffpm/lensing/replicas.hpp"
#include "diffpm/lensing/shell_painting.hpp"
#include "diffpm/particles/cic_device.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::lensing {

namespace device_detail {

/// The device's deposit: integer atomics into the packed word sums (word 0 of point c at
/// sums[c], word 1, for a double plane, at sums[size + c]), zero terms skipped.
template <int W>
struct AtomicPlaneAdd {
  fixed_point::Accumulator* sums;
  std::size_t size;
  DIFFPM_HOST_DEVICE void operator()(std::size_t point, const fixed_point::Term& t) const {
    if (t.hi != 0) device::atomic_add(sums + point, t.hi);
    if (W == 2 && t.lo != 0) device::atomic_add(sums + size + point, t.lo);
  }
};

/// The checks both device kernels share, in the CPU's order, and the particle density.
template <class T>
double check_shell_input(particles::Vec3View<const T> x, const Replicas& rep, double chi,
                         double width, const PlaneGrid& grid, const void* plane, const char* fn,
                         const char* plane_name, double particle_density) {
  detail::check_shell(rep, chi, width, grid, fn);
  if (!plane) throw InvalidArgument(std::string(fn) + ": " + plane_name + " has no data");
  particles::device_detail::check_positions(x, fn);
  return detail::particle_density(particle_density, x.size, rep, fn);
}

/// The shell's replicas (a handful, computed on the host) in device memory.
inline device::Buffer<detail::ReplicaView> upload_replicas(const Replicas& rep, double chi,
                                                           double width) {
  const std::vector<detail::ReplicaView> views = detail::replicas_for(rep, chi, width);
  return device::Buffer<detail::ReplicaView>(views);
}

template <class T>
void paint(particles::Vec3View<const T> x, const detail::ReplicaView* views, int n_views,
           const detail::ImageGeometry& geo, const detail::ImageWeight& weight, PlaneView<T> plane,
           device::Buffer<fixed_point::Accumulator>& sums_buffer, const char* fn) {
  constexpr int W = fixed_point::words<T>;
  const std::size_t n = x.size;
  // Pass 1: the number of images and the largest image weight, as two reductions over the
  // particles (a count and a maximum: the CPU's values, whatever the grouping). A non-finite
  // weight is reported as +infinity, so the maximum shows it.
  const unsigned long long images =
      backend::sum_u64(Cuda{}, n, [=] DIFFPM_LAMBDA(std::size_t i) -> unsigned long long {
        const double xp[3] = {double(x(i, 0)), double(x(i, 1)), double(x(i, 2))};
        return detail::particle_bound(xp, views, n_views, geo, weight).images;
      });
  const double max_weight =
      backend::reduce_max(Cuda{}, n, 0.0, [=] DIFFPM_LAMBDA(std::size_t i) -> double {
        const double xp[3] = {double(x(i, 0)), double(x(i, 1)), double(x(i, 2))};
        const detail::ImageBound b = detail::particle_bound(xp, views, n_views, geo, weight);
        return b.finite ? b.max_weight : HUGE_VAL;
      });
  if (!std::isfinite(max_weight)) throw detail::non_finite_weight(fn, geo.chi, geo.width);
  const fixed_point::Scale scale = fixed_point::scale_for(std::size_t(images), max_weight, fn);

  // Pass 2: every image's integer terms, added atomically; then each point converted once.
  const std::size_t size = plane.grid.size();
  fixed_point::Accumulator* sums = particles::device_detail::prepare_sums(sums_buffer, size, W);
  const AtomicPlaneAdd<W> add{sums, size};
  backend::for_each_index(Cuda{}, n, [=] DIFFPM_LAMBDA(std::size_t i) {
    const double xp[3] = {double(x(i, 0)), double(x(i, 1)), double(x(i, 2))};
    detail::deposit_particle<W>(xp, views, n_views, geo, weight, scale, add);
  });
  T* out = plane.data;
  backend::for_each_index(Cuda{}, size, [=] DIFFPM_LAMBDA(std::size_t c) {
    out[c] = detail::plane_value<T, W>(sums[c], W == 2 ? sums[size + c] : 0, scale);
  });
}

template <class T>
ShellPaintGradient adjoint(particles::Vec3View<const T> x, const detail::ReplicaView* views,
                           int n_views, const detail::ImageGeometry& geo,
                           const detail::AdjointFactors& factors, const T* plane_bar,
                           particles::Vec3View<T> x_bar) {
  const std::size_t n = x.size;
  // Each particle's terms of dL/dchi (terms[i]) and dL/dDelta (terms[n + i]), then the two sums
  // in the CPU's blocks.
  device::Buffer<double> terms(2 * n);
  double* t = terms.data();
  backend::for_each_index(Cuda{}, n, [=] DIFFPM_LAMBDA(std::size_t i) {
    const double xp[3] = {double(x(i, 0)), double(x(i, 1)), double(x(i, 2))};
    T xb[3] = {x_bar(i, 0), x_bar(i, 1), x_bar(i, 2)};
    const detail::ImageAdjoint<T> a =
        detail::adjoint_particle(xp, views, n_views, geo, factors, plane_bar, xb);
    for (int d = 0; d < 3; ++d) x_bar(i, d) = xb[d];
    t[i] = a.chi;
    t[n + i] = a.width;
  });
  ShellPaintGradient r;
  r.chi = backend::deterministic_sum(Cuda{}, n, [t] DIFFPM_LAMBDA(std::size_t i) { return t[i]; });
  r.width = backend::deterministic_sum(Cuda{}, n,
                                       [t, n] DIFFPM_LAMBDA(std::size_t i) { return t[n + i]; });
  return r;
}

}  // namespace device_detail

/// Device paint_shell: the shell centred at chi (hat half-width `width`) painted into `plane`
/// as an overdensity, positions and plane in device memory; the definition, the fixed-point
/// scale and every term are paint_shell's (shell_painting.hpp), so the plane is the CPU's, bit
/// for bit, on every backend. `scratch` holds the plane's fixed-point word sums (a point's words
/// times 8 bytes per point), kept between calls when the caller passes one (else allocated for
/// this call). Throws InvalidArgument for a non-finite position (naming the particle) or image
/// weight, a bad shell or plane, and OutOfMemory, before allocating, when the word sums do not
/// fit on the device.
template <class T>
void paint_shell(Cuda, particles::ConstView<T> x, const Replicas& rep, double chi, double width,
                 PlaneView<T> plane, double particle_density = 0.0,
                 device::Buffer<fixed_point::Accumulator>* scratch = nullptr) {
  const char* fn = "paint_shell (device)";
  const PlaneGrid& g = plane.grid;
  const double nbar = device_detail::check_shell_input<T>(x, rep, chi, width, g, plane.data, fn,
                                                          "plane", particle_density);
  const std::size_t words = g.size() * std::size_t(fixed_point::words<T>);
  device::Buffer<fixed_point::Accumulator> own;
  device::Buffer<fixed_point::Accumulator>& sums = scratch ? *scratch : own;
  if (sums.size() < words) {
    device::require_memory(words * sizeof(fixed_point::Accumulator),
                           std::string(fn) + " (a " + std::to_string(g.n) + "^2 plane)",
                           "use a coarser plane (fewer points per side)");
  }
  const auto views = device_detail::upload_replicas(rep, chi, width);
  const detail::ImageWeight weight{detail::shell_norm(nbar, width, g.cell), chi, width};
  device_detail::paint<T>(x, views.data(), int(views.size()),
                          detail::image_geometry(rep, g, chi, width), weight, plane, sums, fn);
}

/// Device paint_shell_adjoint: given plane_bar = dL/ddelta (device memory), adds dL/dx to x_bar
/// (device memory, x.size vectors) and returns dL/dchi and dL/dDelta, with the CPU's arithmetic
/// (shell_painting.hpp) per particle and its grouping of the sums: in the host emulation the same
/// bits as the CPU; on a GPU, within the rounding of fused multiply-adds. Needs 16 bytes of
/// device memory per particle for the particles' terms of the two sums (checked before
/// allocating). Throws InvalidArgument as paint_shell does, and for an x_bar of another size.
template <class T>
ShellPaintGradient paint_shell_adjoint(Cuda, particles::ConstView<T> x, const Replicas& rep,
                                       double chi, double width, ConstPlaneView<T> plane_bar,
                                       particles::Vec3View<T> x_bar,
                                       double particle_density = 0.0) {
  const char* fn = "paint_shell_adjoint (device)";
  if (x_bar.size != x.size) {
    throw InvalidArgument(std::string(fn) + ": x_bar holds " + std::to_string(x_bar.size) +
                          " vectors for " + std::to_string(x.size) + " particles");
  }
  const PlaneGrid& g = plane_bar.grid;
  const double nbar = device_detail::check_shell_input<T>(x, rep, chi, width, g, plane_bar.data, fn,
                                                          "plane_bar", particle_density);
  device::require_memory(2 * x.size * sizeof(double),
                         std::string(fn) + " (" + std::to_string(x.size) + " particles)",
                         "paint fewer particles per call");
  const auto views = device_detail::upload_replicas(rep, chi, width);
  const detail::AdjointFactors factors{detail::shell_norm(nbar, width, g.cell), chi, width, g.cell};
  return device_detail::adjoint<T>(x, views.data(), int(views.size()),
                                   detail::image_geometry(rep, g, chi, width), factors,
                                   plane_bar.data, x_bar);
}

}  // namespace diffpm::lensing
