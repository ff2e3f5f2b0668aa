/// \file
/// \brief PmForce<T, Cuda>: the particle-mesh force of nbody/pm_force.hpp on the device
/// backend, with positions, forces and every mesh in device memory.
///
/// The same operator, step by step, as the CPU force: the fixed-point CIC paint of the counts
/// (bitwise the CPU's), r2c, the potential kernel, c2r, the finite-difference gradient in real
/// space (or, for the exact gradient, the spectral force kernel and one c2r per component),
/// and the CIC readout, each with the per-element arithmetic of the CPU kernels
/// (particles/cic_device.hpp, mesh/fourier_kernels_device.hpp,
/// mesh/finite_difference_device.hpp). Nothing goes to the host inside a call: the only host
/// work is launching and two scalar reductions of the paint (the finiteness check and the
/// weight bound). Memory is allocated once, in the constructor.
#pragma once

#include <cmath>
#include <complex>
#include <cstddef>
#include <string>

#include "diffpm/backend/device/fft.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/parallel.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/fixed_point.hpp"
#include "diffpm/mesh/finite_difference_device.hpp"
#include "diffpm/mesh/fourier_kernels_device.hpp"
#include "diffpm/mesh/view.hpp"
#include "diffpm/nbody/pm_force.hpp"
#include "diffpm/particles/cic_device.hpp"
#include "diffpm/particles/detail/cic_interpolate.hpp"

namespace diffpm::nbody {

namespace device_detail {

// The force readouts, as free functions: nvcc does not allow extended lambdas in private
// member functions.

/// F(i, d) = readout of the packed mesh m at x_i (the CPU force's interpolate).
template <class T>
void read_force(const T* m, const mesh::Grid& grid, particles::ConstView<T> x,
                particles::Vec3View<T> F, int d) {
  const auto g = particles::device_detail::packed_geometry<T>(grid);
  backend::for_each_index(Cuda{}, x.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
    particles::detail::interpolate_at<false>(m, xi, g, F(i, d), static_cast<T*>(nullptr));
  });
}

/// F_d(x_i) (into F if has_F), x_bar_i += F_bar_i,d grad F_d(x_i); returns <F_bar_d, F_d>
/// summed as the CPU does (backend::deterministic_sum).
template <class T>
double read_force_adjoint(const T* m, const mesh::Grid& grid, particles::ConstView<T> x, bool has_F,
                          particles::Vec3View<T> F, particles::ConstView<T> F_bar,
                          particles::Vec3View<T> x_bar, int d) {
  const auto g = particles::device_detail::packed_geometry<T>(grid);
  return backend::deterministic_sum(Cuda{}, x.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
    T value, grad[3];
    particles::detail::interpolate_at<true>(m, xi, g, value, grad);
    if (has_F) F(i, d) = value;
    const T f = F_bar(i, d);
    for (int e = 0; e < 3; ++e) x_bar(i, e) += f * grad[e];
    return double(f) * double(value);
  });
}

}  // namespace device_detail

template <class T>
class PmForce<T, Cuda> {
 public:
  /// Device memory of a force on `grid`, in bytes: two real meshes, one half spectrum (two with
  /// the exact gradient), the paint's fixed-point accumulator (one 64-bit word per cell in
  /// float, two in double: core/fixed_point.hpp) and the kernel tables. cuFFT's work
  /// area (about one more mesh) comes on top.
  static std::size_t device_bytes(const mesh::Grid& grid, const mesh::ForceKernelOptions& kernel) {
    const bool stencil =
        kernel.real_space_gradient && mesh::has_real_space_stencil(kernel.gradient);
    return 2 * grid.size() * sizeof(T) +
           (stencil ? 1 : 2) * grid.complex_size() * sizeof(std::complex<T>) +
           fixed_point::words<T> * grid.size() * sizeof(fixed_point::Accumulator) +
           sizeof(double) * (std::size_t(2 * (grid.n[0] + grid.n[1] + grid.complex_nz())) +
                             std::size_t(grid.n[0] + grid.n[1] + grid.complex_nz()));
  }

  /// A force on `grid` with `kernel` (see PmForce<T, Cpu>); mean_count as there. Checks first
  /// that device_bytes(grid, kernel) fit in the device's free memory (OutOfMemory otherwise).
  explicit PmForce(const mesh::Grid& grid, mesh::ForceKernelOptions kernel = {},
                   std::size_t mean_count = 0)
      : grid_(checked(grid, kernel)),
        kernel_(kernel),
        mean_count_(mean_count),
        stencil_(kernel.real_space_gradient && mesh::has_real_space_stencil(kernel.gradient)),
        plan_(grid),
        tables_(grid, kernel),
        real_(grid.size()),
        scratch_(grid.size()),
        k_(grid.complex_size()),
        sums_(fixed_point::words<T> * grid.size()) {
    if (!stencil_) work_k_ = device::Buffer<std::complex<T>>(grid.complex_size());
  }

  const mesh::Grid& grid() const { return grid_; }

  /// F_p = F(x_p) for matter density Omega_m; x and F are views of device memory
  /// (F.size == x.size).
  void operator()(particles::ConstView<T> x, double Omega_m, particles::Vec3View<T> F) {
    check_omega(Omega_m);
    check_size(F.size, x.size, "forces");
    const double scale = scale_for(x.size);
    // counts -> delta_k (the N_cells / N_p and the c2r's 1 / N_cells are in `scale`).
    density_spectrum(x);
    if (stencil_) {
      mesh::apply_potential_kernel(Cuda{}, spectrum(k_), tables_, Omega_m, scale, spectrum(k_));
      plan_.inverse_destroying_input(spectrum(k_), real(real_));  // phi
    }
    for (int d = 0; d < 3; ++d) {
      force_mesh(d, Omega_m, scale);
      device_detail::read_force(scratch_.data(), grid_, x, F, d);
    }
  }

  /// Vector-Jacobian product, as PmForce<T, Cpu>::adjoint: x_bar += (dF/dx)^T F_bar, returns
  /// dL/dOmega_m = <F_bar, F> / Omega_m. Device views; the same sequence of kernels as the CPU
  /// (term (1) through the readout weights, term (2) through the mesh).
  double adjoint(particles::ConstView<T> x, double Omega_m, particles::ConstView<T> F_bar,
                 particles::Vec3View<T> x_bar) {
    return adjoint_impl(x, Omega_m, F_bar, x_bar, nullptr);
  }
  /// F = F(x) (bit for bit operator()'s) and the adjoint in one pass, as
  /// PmForce<T, Cpu>::value_and_adjoint.
  double value_and_adjoint(particles::ConstView<T> x, double Omega_m, particles::ConstView<T> F_bar,
                           particles::Vec3View<T> F, particles::Vec3View<T> x_bar) {
    check_size(F.size, x.size, "forces");
    return adjoint_impl(x, Omega_m, F_bar, x_bar, &F);
  }

 private:
  double adjoint_impl(particles::ConstView<T> x, double Omega_m, particles::ConstView<T> F_bar,
                      particles::Vec3View<T> x_bar, particles::Vec3View<T>* F_out) {
    check_omega(Omega_m);
    check_size(F_bar.size, x.size, "force adjoints");
    check_size(x_bar.size, x.size, "position adjoints (x_bar)");
    const double scale = scale_for(x.size);
    density_spectrum(x);
    if (stencil_) {
      mesh::apply_potential_kernel(Cuda{}, spectrum(k_), tables_, Omega_m, scale, spectrum(k_));
      plan_.inverse_destroying_input(spectrum(k_), real(real_));  // phi
    }
    double omega_bar = 0.0;
    // (1) through the readout weights, one fused pass per component.
    for (int d = 0; d < 3; ++d) {
      force_mesh(d, Omega_m, scale);
      omega_bar += device_detail::read_force_adjoint(scratch_.data(), grid_, x, F_out != nullptr,
                                                     F_out ? *F_out : particles::Vec3View<T>{},
                                                     F_bar, x_bar, d) /
                   Omega_m;
    }
    // (2) through the mesh: paint F_bar_d, transposed kernels, summed into one density adjoint.
    auto mode = [](int d) {
      return d == 0 ? mesh::OutputMode::overwrite : mesh::OutputMode::accumulate;
    };
    if (stencil_) {
      for (int d = 0; d < 3; ++d) {
        particles::paint_cic(Cuda{}, x, F_bar.component[d], F_bar.stride, real(scratch_), false,
                             &sums_);
        mesh::apply_difference(Cuda{}, real(scratch_), d, kernel_.gradient, 1.0, real(real_),
                               mode(d));  // (-D_d)^T = D_d
      }
      plan_.forward(real(real_), spectrum(k_));
      mesh::apply_potential_kernel(Cuda{}, spectrum(k_), tables_, Omega_m, scale, spectrum(k_));
    } else {
      for (int d = 0; d < 3; ++d) {
        particles::paint_cic(Cuda{}, x, F_bar.component[d], F_bar.stride, real(real_), false,
                             &sums_);
        plan_.forward(real(real_), spectrum(work_k_));
        mesh::apply_force_kernel(Cuda{}, spectrum(work_k_), d, tables_, Omega_m, scale,
                                 spectrum(k_), mode(d), /*adjoint=*/true);
      }
    }
    plan_.inverse_destroying_input(spectrum(k_), real(real_));  // dL/dcounts
    particles::paint_adjoint(Cuda{}, real(real_), x, T(1), x_bar);
    return omega_bar;
  }

  void check_omega(double Omega_m) const {
    if (!(Omega_m > 0.0) || !std::isfinite(Omega_m)) {
      throw InvalidArgument("PmForce (device): Omega_m = " + format_number(Omega_m) +
                            " (must be finite and > 0)");
    }
  }
  static void check_size(std::size_t n, std::size_t particles, const char* what) {
    if (n != particles) {
      throw InvalidArgument("PmForce (device): " + std::to_string(n) + " " + what + " for " +
                            std::to_string(particles) + " particles");
    }
  }
  /// 1/N_p: the (N_cells / N_p) of the overdensity times the 1/N_cells of the c2r.
  double scale_for(std::size_t n) const {
    const std::size_t np = mean_count_ ? mean_count_ : n;
    if (np == 0) throw InvalidArgument("PmForce (device): no particles to set the mean density");
    return 1.0 / double(np);
  }
  /// real_ = counts, k_ = their spectrum.
  void density_spectrum(particles::ConstView<T> x) {
    particles::paint_cic(Cuda{}, x, real(real_), T(1), false, &sums_);
    plan_.forward(real(real_), spectrum(k_));
  }
  /// scratch_ = F_d: -D_d phi from real_ (stencil) or c2r of the force kernel times k_.
  void force_mesh(int d, double Omega_m, double scale) {
    if (stencil_) {
      mesh::apply_difference(Cuda{}, real(real_), d, kernel_.gradient, -1.0, real(scratch_));
    } else {
      mesh::apply_force_kernel(Cuda{}, spectrum(k_), d, tables_, Omega_m, scale, spectrum(work_k_));
      plan_.inverse_destroying_input(spectrum(work_k_), real(scratch_));
    }
  }
  static const mesh::Grid& checked(const mesh::Grid& grid, const mesh::ForceKernelOptions& k) {
    grid.validate();
    device::require_memory(device_bytes(grid, k), "PmForce on " + grid.to_string(),
                           "use a smaller mesh");
    return grid;
  }
  mesh::RealView<T> real(device::Buffer<T>& b) const { return mesh::packed(b.data(), grid_); }
  mesh::ComplexView<T> spectrum(device::Buffer<std::complex<T>>& b) const {
    return mesh::packed(b.data(), grid_);
  }

  mesh::Grid grid_;
  mesh::ForceKernelOptions kernel_;
  std::size_t mean_count_ = 0;
  bool stencil_ = true;
  FftPlan<T, Cuda> plan_;
  mesh::DeviceKernelTables tables_;
  // real_: counts, then phi (stencil) ; scratch_: F_d; k_: the spectrum; work_k_ (exact
  // gradient only): F_d,k; sums_: the paint's fixed-point accumulator.
  device::Buffer<T> real_, scratch_;
  device::Buffer<std::complex<T>> k_, work_k_;
  device::Buffer<fixed_point::Accumulator> sums_;
};

}  // namespace diffpm::nbody
