/// \file
/// \brief CIC paint and readout on the device backend (backend/device/): the per-particle
/// arithmetic of the CPU kernels (detail/cic_weights.hpp, detail/cic_fixed.hpp,
/// detail/cic_interpolate.hpp), launched through backend::for_each_index on device memory.
///
/// The paint accumulates 64-bit fixed-point terms with integer atomics (core/fixed_point.hpp):
/// the same integers the CPU paint sums by planes, so the same positions give the same mesh,
/// bit for bit, on both backends and for any order of the particles or the threads. Positions,
/// weights and meshes are device memory (Vec3View and mesh views of device pointers).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "diffpm/backend/device/atomic.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/parallel.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/fixed_point.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/mesh/grid.hpp"
#include "diffpm/mesh/view.hpp"
#include "diffpm/particles/cic.hpp"
#include "diffpm/particles/detail/cic_fixed.hpp"
#include "diffpm/particles/detail/cic_interpolate.hpp"
#include "diffpm/particles/detail/cic_paint.hpp"
#include "diffpm/particles/detail/cic_weights.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::particles {

namespace device_detail {

/// T in a parameter that takes no part in template argument deduction (cic.hpp's).
template <class T>
using identity_t = detail::identity_t<T>;

/// The geometry of a packed mesh: the CPU kernels' (detail::cic_geometry), so both backends
/// place particles with the same cells_per_length.
template <class T>
detail::CicGeometry<T> packed_geometry(const mesh::Grid& grid) {
  return detail::cic_geometry<T>(grid);
}

/// Throws InvalidArgument naming `function` and the first particle with a non-finite
/// coordinate, if any (one reduction: the first bad index is n minus the largest n - i).
template <class T>
void check_positions(Vec3View<const T> x, const char* function) {
  const std::size_t n = x.size;
  const std::size_t worst = backend::reduce_max(
      Cuda{}, n, std::size_t(0), [x, n] DIFFPM_LAMBDA(std::size_t i) -> std::size_t {
        const bool ok = std::isfinite(x(i, 0)) && std::isfinite(x(i, 1)) && std::isfinite(x(i, 2));
        return ok ? std::size_t(0) : n - i;
      });
  if (worst != 0) {
    const std::size_t p = n - worst;
    T host[3];
    for (int d = 0; d < 3; ++d) device::copy(&host[d], &x(p, d), sizeof(T));
    throw InvalidArgument(std::string(function) + ": position of particle " + std::to_string(p) +
                          " is (" + format_number(double(host[0])) + ", " +
                          format_number(double(host[1])) + ", " + format_number(double(host[2])) +
                          ") Mpc/h (must be finite)");
  }
}

inline void check_view_on_device(const mesh::Grid& grid, const void* data, const char* function) {
  grid.validate();
  if (!data) throw InvalidArgument(std::string(function) + ": mesh view has no data");
}

/// mesh (=|+=) the value of each cell's word sums (fixed_point::value), over the cells of a
/// view, from packed accumulators: word 0 at sums[c], word 1 (double) at sums[cells + c].
template <class T>
void convert(const fixed_point::Accumulator* sums, fixed_point::Scale s, mesh::RealView<T> mesh,
             bool accumulate) {
  constexpr int W = fixed_point::words<T>;
  const int ny = mesh.grid.n[1], nz = mesh.grid.n[2];
  const std::ptrdiff_t s0 = mesh.stride[0], s1 = mesh.stride[1], s2 = mesh.stride[2];
  const std::size_t cells = mesh.grid.size();
  T* m = mesh.data;
  backend::for_each_index(Cuda{}, cells, [=] DIFFPM_LAMBDA(std::size_t c) {
    const std::size_t k = c % std::size_t(nz), ij = c / std::size_t(nz);
    const std::size_t j = ij % std::size_t(ny), i = ij / std::size_t(ny);
    T& out = m[std::ptrdiff_t(i) * s0 + std::ptrdiff_t(j) * s1 + std::ptrdiff_t(k) * s2];
    const T v = T(fixed_point::value<W>(sums[c], W == 2 ? sums[cells + c] : 0, s));
    out = accumulate ? T(out + v) : v;
  });
}

/// The atomic deposit of weight(i) for every particle into `sums` (packed, zeroed, words as
/// in convert).
template <class T, class Weight>
void deposit_all(Vec3View<const T> x, const mesh::Grid& grid, const Weight& weight,
                 fixed_point::Scale scale, fixed_point::Accumulator* sums) {
  constexpr int W = fixed_point::words<T>;
  const detail::CicGeometry<T> g = packed_geometry<T>(grid);
  const std::size_t cells = grid.size();
  backend::for_each_index(Cuda{}, x.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
    std::size_t index[8];
    fixed_point::Term term[8];
    detail::deposit_terms(xi, g, weight(i), scale, index, term);
    for (int c = 0; c < 8; ++c) {
      if (term[c].hi != 0) device::atomic_add(sums + index[c], term[c].hi);
      if (W == 2 && term[c].lo != 0) device::atomic_add(sums + cells + index[c], term[c].lo);
    }
  });
}

/// The scratch accumulator, grown to `words` words per cell if needed, zeroed.
inline fixed_point::Accumulator* prepare_sums(device::Buffer<fixed_point::Accumulator>& scratch,
                                              std::size_t cells, int words) {
  const std::size_t n = cells * std::size_t(words);
  if (scratch.size() < n) scratch = device::Buffer<fixed_point::Accumulator>(n);
  device::zero_bytes(scratch.data(), n * sizeof(fixed_point::Accumulator));
  return scratch.data();
}

template <class T>
struct UniformWeight {
  T w;
  DIFFPM_HOST_DEVICE T operator()(std::size_t) const { return w; }
};
/// The weight of particle i at byte offset i * stride from w.
template <class T>
struct StridedWeight {
  const T* w;
  std::ptrdiff_t stride;
  DIFFPM_HOST_DEVICE T operator()(std::size_t i) const {
    return *reinterpret_cast<const T*>(reinterpret_cast<const unsigned char*>(w) +
                                       std::ptrdiff_t(i) * stride);
  }
};

}  // namespace device_detail

/// Device paint: mesh (+)= sum_p weight W(x_p), positions and mesh in device memory. Bitwise the
/// CPU's paint_cic of the same positions (fixed point, core/fixed_point.hpp); `scratch` is the
/// n_cells 64-bit accumulator, kept between calls when the caller passes one (else allocated
/// for this call). Throws InvalidArgument for a non-finite position or weight.
template <class T>
void paint_cic(Cuda, ConstView<T> x, mesh::RealView<T> mesh,
               device_detail::identity_t<T> weight = T(1), bool accumulate = false,
               device::Buffer<fixed_point::Accumulator>* scratch = nullptr) {
  device_detail::check_view_on_device(mesh.grid, mesh.data, "paint_cic (device)");
  device_detail::check_positions(x, "paint_cic (device)");
  const fixed_point::Scale s =
      fixed_point::scale_for(x.size, detail::deposit_bound(T(weight)), "paint_cic (device)");
  device::Buffer<fixed_point::Accumulator> own;
  auto* sums = device_detail::prepare_sums(scratch ? *scratch : own, mesh.grid.size(),
                                           fixed_point::words<T>);
  device_detail::deposit_all(x, mesh.grid, device_detail::UniformWeight<T>{T(weight)}, s, sums);
  device_detail::convert(sums, s, mesh, accumulate);
}

/// Device paint with a weight per particle: w_p at byte offset p * stride_bytes from `weights`
/// (device memory; sizeof(T) for a plain array, the stride of a Vec3View for one of its
/// components). Bitwise the CPU's weighted paint (particles::paint_cic, CicPlan::paint).
template <class T>
void paint_cic(Cuda, ConstView<T> x, const T* weights, std::ptrdiff_t stride_bytes,
               mesh::RealView<T> mesh, bool accumulate = false,
               device::Buffer<fixed_point::Accumulator>* scratch = nullptr) {
  const char* fn = "paint_cic (device)";
  device_detail::check_view_on_device(mesh.grid, mesh.data, fn);
  if (!weights && x.size) throw InvalidArgument(std::string(fn) + ": null weights");
  device_detail::check_positions(x, fn);
  const device_detail::StridedWeight<T> w{weights, stride_bytes};
  const std::size_t bad = backend::count_if(
      Cuda{}, x.size, [w] DIFFPM_LAMBDA(std::size_t i) { return !std::isfinite(w(i)); });
  if (bad) {
    throw InvalidArgument(std::string(fn) + ": " + std::to_string(bad) + " weights are not finite");
  }
  const double largest = backend::reduce_max(Cuda{}, x.size, 0.0, [w] DIFFPM_LAMBDA(std::size_t i) {
    return detail::deposit_bound(w(i));
  });
  const fixed_point::Scale s = fixed_point::scale_for(x.size, largest, fn);
  device::Buffer<fixed_point::Accumulator> own;
  auto* sums = device_detail::prepare_sums(scratch ? *scratch : own, mesh.grid.size(),
                                           fixed_point::words<T>);
  device_detail::deposit_all(x, mesh.grid, w, s, sums);
  device_detail::convert(sums, s, mesh, accumulate);
}
/// The same for a plain array of x.size weights.
template <class T>
void paint_cic(Cuda, ConstView<T> x, const T* weights, mesh::RealView<T> mesh,
               bool accumulate = false,
               device::Buffer<fixed_point::Accumulator>* scratch = nullptr) {
  paint_cic(Cuda{}, x, weights, std::ptrdiff_t(sizeof(T)), mesh, accumulate, scratch);
}

/// Device readout: out[p] = sum_c W_c(x_p) mesh[c], for `out` of x.size T in device memory. The
/// CPU readout's arithmetic (detail::interpolate_at). Throws InvalidArgument for a non-finite
/// position.
template <class T>
void readout_cic(Cuda, mesh::ConstRealView<T> mesh, ConstView<T> x, T* out) {
  device_detail::check_view_on_device(mesh.grid, mesh.data, "readout_cic (device)");
  device_detail::check_positions(x, "readout_cic (device)");
  const T* m = mesh.data;
  detail::CicGeometry<T> g = device_detail::packed_geometry<T>(mesh.grid);
  g.stride_x = std::size_t(mesh.stride[0]);
  g.stride_y = std::size_t(mesh.stride[1]);
  if (mesh.stride[2] == 1) {
    backend::for_each_index(Cuda{}, x.size, [=] DIFFPM_LAMBDA(std::size_t i) {
      const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
      detail::interpolate_at<false>(m, xi, g, out[i], static_cast<T*>(nullptr));
    });
  } else {
    detail::StridedCicGeometry<T> sg;
    static_cast<detail::CicGeometry<T>&>(sg) = g;
    sg.stride_z = std::size_t(mesh.stride[2]);
    backend::for_each_index(Cuda{}, x.size, [=] DIFFPM_LAMBDA(std::size_t i) {
      const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
      detail::interpolate_at<false>(m, xi, sg, out[i], static_cast<T*>(nullptr));
    });
  }
}

/// Adjoint of the device paint with one weight, mesh = sum_p weight W(x_p), with respect to the
/// positions: x_bar_p += weight grad readout(mesh_bar)(x_p) (x_bar in device memory), the CPU's
/// CicPlan::paint_adjoint arithmetic. mesh_bar must be a packed view.
template <class T>
void paint_adjoint(Cuda, mesh::ConstRealView<T> mesh_bar, ConstView<T> x,
                   device_detail::identity_t<T> weight, Vec3View<T> x_bar) {
  const char* fn = "paint_adjoint (device)";
  device_detail::check_view_on_device(mesh_bar.grid, mesh_bar.data, fn);
  if (!mesh_bar.is_packed()) throw InvalidArgument(std::string(fn) + ": mesh_bar is not packed");
  if (x_bar.size != x.size) {
    throw InvalidArgument(std::string(fn) + ": x_bar holds " + std::to_string(x_bar.size) +
                          " vectors for " + std::to_string(x.size) + " particles");
  }
  device_detail::check_positions(x, fn);
  const T* m = mesh_bar.data;
  const auto g = device_detail::packed_geometry<T>(mesh_bar.grid);
  const T w = T(weight);
  backend::for_each_index(Cuda{}, x.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
    T value, grad[3];
    detail::interpolate_at<true>(m, xi, g, value, grad);
    for (int d = 0; d < 3; ++d) x_bar(i, d) += w * grad[d];
  });
}

}  // namespace diffpm::particles
