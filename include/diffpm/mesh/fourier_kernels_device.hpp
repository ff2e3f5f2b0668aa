/// \file
/// \brief The PM force's Fourier-space kernels on the device backend: the potential kernel and
/// the spectral force kernel of fourier_kernels.hpp, the same per-mode arithmetic
/// (potential_kernel_value, force_kernel_value) over half spectra in device memory.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/parallel.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/mesh/fourier_kernels.hpp"
#include "diffpm/mesh/grid.hpp"
#include "diffpm/mesh/view.hpp"

namespace diffpm::mesh {

/// detail::AxisTables for one grid and kernel choice, in device memory: per axis the Laplacian
/// symbols and smoothing factors, and the gradient symbol of every axis, indexed by FFT index
/// (half spectrum along z). Built once (for a PmForce) and reused at every step.
class DeviceKernelTables {
 public:
  DeviceKernelTables(const Grid& grid, const ForceKernelOptions& options) : grid_(grid) {
    const char* what = "device kernel tables";
    grid.validate();
    detail::check_kinds(options.laplacian, options.gradient, what);
    detail::check_smoothing_scale(options.smoothing_scale, what);
    std::vector<double> host;
    for (int d = 0; d < 3; ++d) {
      const detail::AxisTables t = detail::make_axis_tables(
          grid, options.laplacian, options.smoothing_scale, d, options.gradient);
      if (d == 0) {
        for (int e = 0; e < 3; ++e) {
          offset_lap_[e] = host.size();
          host.insert(host.end(), t.laplacian[e].begin(), t.laplacian[e].end());
          offset_smooth_[e] = host.size();
          host.insert(host.end(), t.smoothing[e].begin(), t.smoothing[e].end());
        }
      }
      offset_grad_[d] = host.size();
      host.insert(host.end(), t.gradient.begin(), t.gradient.end());
    }
    data_ = device::Buffer<double>(host);
  }

  const Grid& grid() const { return grid_; }

  /// Device pointers to the tables (valid while this object lives).
  struct Pointers {
    const double* lap[3];
    const double* smooth[3];
    const double* grad[3];
  };
  Pointers pointers() const {
    Pointers p;
    for (int d = 0; d < 3; ++d) {
      p.lap[d] = data_.data() + offset_lap_[d];
      p.smooth[d] = data_.data() + offset_smooth_[d];
      p.grad[d] = data_.data() + offset_grad_[d];
    }
    return p;
  }

 private:
  Grid grid_;
  device::Buffer<double> data_;
  std::size_t offset_lap_[3] = {}, offset_smooth_[3] = {}, offset_grad_[3] = {};
};

namespace device_detail {

template <class V>
void check_packed_spectrum(const V& v, const Grid& grid, const char* what, const char* name) {
  if (!v.data) throw InvalidArgument(std::string(what) + ": " + name + " has no data");
  if (v.grid != grid) {
    throw InvalidArgument(std::string(what) + ": " + name + " is on " + v.grid.to_string() +
                          ", the tables on " + grid.to_string());
  }
  if (!v.is_packed()) {
    throw InvalidArgument(std::string(what) + ": " + name +
                          " is not packed (the device kernels take packed half spectra)");
  }
}

/// The (i, j, kz) of flat half-spectrum index m.
struct ModeIndex {
  int ny, nzc;
  DIFFPM_HOST_DEVICE void operator()(std::size_t m, int& i, int& j, int& kz) const {
    kz = int(m % std::size_t(nzc));
    const std::size_t ij = m / std::size_t(nzc);
    j = int(ij % std::size_t(ny));
    i = int(ij / std::size_t(ny));
  }
};

}  // namespace device_detail

/// phi_k = coefficient S(k) (-1/|k|_L^2) delta_k with coefficient = 3/2 Omega_m scale, as
/// apply_potential_kernel (mesh/fourier_kernels.hpp); packed device views, in place allowed.
template <class T>
void apply_potential_kernel(Cuda, ConstComplexView<T> delta_k, const DeviceKernelTables& tables,
                            double omega_m, double scale, ComplexView<T> phi_k) {
  const char* what = "potential kernel (device)";
  device_detail::check_packed_spectrum(delta_k, tables.grid(), what, "input");
  device_detail::check_packed_spectrum(phi_k, tables.grid(), what, "output");
  detail::check_omega_m(omega_m, what);
  detail::check_scale(scale, what);
  const double coefficient = 1.5 * omega_m * scale;
  const auto t = tables.pointers();
  const device_detail::ModeIndex index{tables.grid().n[1], tables.grid().complex_nz()};
  const T* a = reinterpret_cast<const T*>(delta_k.data);
  T* b = reinterpret_cast<T*>(phi_k.data);
  backend::for_each_index(Cuda{}, tables.grid().complex_size(), [=] DIFFPM_LAMBDA(std::size_t m) {
    int i, j, kz;
    index(m, i, j, kz);
    const T c = static_cast<T>(potential_kernel_value(t.lap[0][i], t.lap[1][j], t.lap[2][kz],
                                                      t.smooth[0][i], t.smooth[1][j],
                                                      t.smooth[2][kz], coefficient));
    const T re = a[2 * m], im = a[2 * m + 1];
    b[2 * m] = c * re;
    b[2 * m + 1] = c * im;
  });
}

/// out (=|+=) i c(k) delta_k, the spectral force kernel of apply_force_kernel
/// (mesh/fourier_kernels.hpp) with coefficient 3/2 Omega_m scale; with adjoint, its transpose
/// -i c(k) (apply_force_kernel_adjoint). Packed device views.
template <class T>
void apply_force_kernel(Cuda, ConstComplexView<T> delta_k, int axis,
                        const DeviceKernelTables& tables, double omega_m, double scale,
                        ComplexView<T> out, OutputMode mode = OutputMode::overwrite,
                        bool adjoint = false) {
  const char* what = adjoint ? "force kernel adjoint (device)" : "force kernel (device)";
  device_detail::check_packed_spectrum(delta_k, tables.grid(), what, "input");
  device_detail::check_packed_spectrum(out, tables.grid(), what, "output");
  detail::check_axis(axis, what);
  detail::check_omega_m(omega_m, what);
  detail::check_scale(scale, what);
  const double coefficient = 1.5 * omega_m * scale;
  const double sign = adjoint ? -1.0 : 1.0;
  const bool accumulate = mode == OutputMode::accumulate;
  const auto t = tables.pointers();
  const device_detail::ModeIndex index{tables.grid().n[1], tables.grid().complex_nz()};
  const T* a = reinterpret_cast<const T*>(delta_k.data);
  T* b = reinterpret_cast<T*>(out.data);
  const double* grad = t.grad[axis];
  backend::for_each_index(Cuda{}, tables.grid().complex_size(), [=] DIFFPM_LAMBDA(std::size_t m) {
    int idx[3];
    index(m, idx[0], idx[1], idx[2]);
    const T c = static_cast<T>(force_kernel_value(
        grad[idx[axis]], t.lap[0][idx[0]], t.lap[1][idx[1]], t.lap[2][idx[2]], t.smooth[0][idx[0]],
        t.smooth[1][idx[1]], t.smooth[2][idx[2]], coefficient, sign));
    const T re = a[2 * m], im = a[2 * m + 1];
    const T r_re = -c * im, r_im = c * re;
    if (accumulate) {
      b[2 * m] += r_re;
      b[2 * m + 1] += r_im;
    } else {
      b[2 * m] = r_re;
      b[2 * m + 1] = r_im;
    }
  });
}

}  // namespace diffpm::mesh
