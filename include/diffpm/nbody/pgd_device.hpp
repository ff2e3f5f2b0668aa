/// \file
/// \brief PgdCorrection<T, Cuda>: the PGD small-scale correction of nbody/pgd.hpp on the device
/// backend, with positions, displacements and every mesh in device memory.
///
/// The same operator, step by step, as the CPU class: the fixed-point CIC paint of the counts,
/// r2c, the band-filtered potential kernel (detail::pgd_mode_kernel, shared), c2r, the
/// finite-difference gradient in real space and the CIC readout in particle order; the adjoint
/// sums <S_bar, S / alpha> over particles and the kernel derivatives over rows of the half
/// spectrum in the CPU's blocks. In the host emulation every output is the CPU's bit for bit;
/// on a GPU, exp and fused multiply-adds may move the last bits. Memory is allocated once, in
/// the constructor.
#pragma once

#include <array>
#include <complex>
#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/backend/device/fft.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/parallel.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/fixed_point.hpp"
#include "diffpm/mesh/finite_difference_device.hpp"
#include "diffpm/mesh/fourier_kernels_device.hpp"
#include "diffpm/mesh/view.hpp"
#include "diffpm/nbody/pgd.hpp"
#include "diffpm/particles/cic_device.hpp"
#include "diffpm/particles/detail/cic_interpolate.hpp"

namespace diffpm::nbody {

namespace device_detail {

// The PGD passes as free functions: nvcc does not allow extended lambdas in private member
// functions.

/// Device pointers to detail::pgd_axis_tables' six tables.
struct PgdTablePointers {
  const double* k2[3];
  const double* lap[3];
};

/// The per-mode constants of a kernel pass.
struct PgdKernelConstants {
  double k_l, kl2, k_s, ks4, scale;
};

inline PgdKernelConstants pgd_constants(const PgdParameters& p, double scale) {
  return {p.k_l, p.k_l * p.k_l, p.k_s, p.k_s * p.k_s * p.k_s * p.k_s, scale};
}

/// v_m = T(c K_m v_m) on a packed half spectrum (c = 1: psi from the counts; c = alpha(a): the
/// adjoint's kernel), as the CPU's kernel pass writes it.
template <class T>
void pgd_filter(T* v, const mesh::Grid& grid, PgdTablePointers t, PgdKernelConstants k, double c) {
  const mesh::device_detail::ModeIndex index{grid.n[1], grid.complex_nz()};
  backend::for_each_index(Cuda{}, grid.complex_size(), [=] DIFFPM_LAMBDA(std::size_t m) {
    int i, j, kz;
    index(m, i, j, kz);
    const detail::PgdModeKernel K = detail::pgd_mode_kernel(
        t.k2[0][i] + t.k2[1][j] + t.k2[2][kz], t.lap[0][i] + t.lap[1][j] + t.lap[2][kz], k.k_l,
        k.kl2, k.k_s, k.ks4, k.scale);
    const double f = c * K.K;
    v[2 * m] = T(f * double(v[2 * m]));
    v[2 * m + 1] = T(f * double(v[2 * m + 1]));
  });
}

/// The kernel derivatives' two sums, sum_m w_m Re(delta_m conj(v_m)) dK_m/dk_l (and dk_s):
/// each row (i, j) summed over kz in order, rows in blocks of detail::pgd_rows_per_block
/// summed in order on the device, the blocks added in order on the host (the CPU's
/// deterministic_sums over rows).
template <class T>
std::array<double, 2> pgd_kernel_sums(const T* delta, const T* v, const mesh::Grid& grid,
                                      PgdTablePointers t, PgdKernelConstants k) {
  const int ny = grid.n[1], nzc = grid.complex_nz();
  const bool even_z = grid.n[2] % 2 == 0;
  const std::size_t rows = std::size_t(grid.n[0]) * std::size_t(ny);
  const std::size_t block = std::size_t(detail::pgd_rows_per_block);
  const std::size_t n_blocks = (rows + block - 1) / block;
  device::Buffer<double> partial(2 * n_blocks);
  double* out = partial.data();
  backend::for_each_index(Cuda{}, n_blocks, [=] DIFFPM_LAMBDA(std::size_t b) {
    double s0 = 0.0, s1 = 0.0;
    const std::size_t end = (b + 1) * block < rows ? (b + 1) * block : rows;
    for (std::size_t row = b * block; row < end; ++row) {
      const int i = int(row / std::size_t(ny)), j = int(row % std::size_t(ny));
      double r0 = 0.0, r1 = 0.0;
      for (int kz = 0; kz < nzc; ++kz) {
        const std::size_t m = row * std::size_t(nzc) + std::size_t(kz);
        const detail::PgdModeKernel K = detail::pgd_mode_kernel(
            t.k2[0][i] + t.k2[1][j] + t.k2[2][kz], t.lap[0][i] + t.lap[1][j] + t.lap[2][kz], k.k_l,
            k.kl2, k.k_s, k.ks4, k.scale);
        const double re =
            detail::pgd_mode_product(delta[2 * m], delta[2 * m + 1], v[2 * m], v[2 * m + 1],
                                     detail::pgd_mode_weight(kz, nzc, even_z));
        r0 += re * K.dk_l;
        r1 += re * K.dk_s;
      }
      s0 += r0;
      s1 += r1;
    }
    out[2 * b] = s0;
    out[2 * b + 1] = s1;
  });
  const std::vector<double> host = partial.to_host();
  std::array<double, 2> total{0.0, 0.0};
  for (std::size_t b = 0; b < n_blocks; ++b) {
    total[0] += host[2 * b];
    total[1] += host[2 * b + 1];
  }
  return total;
}

/// S(i, d) = alpha readout of the packed mesh m at x_i.
template <class T>
void pgd_read(const T* m, const mesh::Grid& grid, particles::ConstView<T> x,
              particles::Vec3View<T> S, int d, double alpha) {
  const auto g = particles::device_detail::packed_geometry<T>(grid);
  backend::for_each_index(Cuda{}, x.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
    T value;
    particles::detail::interpolate_at<false>(m, xi, g, value, static_cast<T*>(nullptr));
    S(i, d) = T(alpha * double(value));
  });
}

/// x_bar_i += alpha S_bar_i,d grad F_d(x_i); returns <S_bar_d, F_d> in particle order.
template <class T>
double pgd_read_adjoint(const T* m, const mesh::Grid& grid, particles::ConstView<T> x,
                        particles::ConstView<T> S_bar, particles::Vec3View<T> x_bar, int d,
                        double alpha) {
  const auto g = particles::device_detail::packed_geometry<T>(grid);
  return backend::deterministic_sum(Cuda{}, x.size, [=] DIFFPM_LAMBDA(std::size_t i) {
    const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
    T value, grad[3];
    particles::detail::interpolate_at<true>(m, xi, g, value, grad);
    const T f = S_bar(i, d);
    const T w = T(alpha * double(f));
    for (int e = 0; e < 3; ++e) x_bar(i, e) += w * grad[e];
    return double(f) * double(value);
  });
}

}  // namespace device_detail

template <class T>
class PgdCorrection<T, Cuda> {
 public:
  /// Device memory of a correction on `grid`, in bytes: two real meshes, two half spectra, the
  /// paint's fixed-point accumulator and the axis tables (cuFFT's work area comes on top).
  static std::size_t device_bytes(const mesh::Grid& grid) {
    return 2 * grid.size() * sizeof(T) + 2 * grid.complex_size() * sizeof(std::complex<T>) +
           fixed_point::words<T> * grid.size() * sizeof(fixed_point::Accumulator) +
           2 * sizeof(double) * std::size_t(grid.n[0] + grid.n[1] + grid.complex_nz());
  }

  /// A correction on `grid` with the force's `kernel` options (finite-difference gradient, no
  /// smoothing) and mean_count as PgdCorrection<T, Cpu>. Throws OutOfMemory, before
  /// allocating, unless device_bytes(grid) fit in the device's free memory.
  explicit PgdCorrection(const mesh::Grid& grid, mesh::ForceKernelOptions kernel = {},
                         std::size_t mean_count = 0)
      : grid_(checked(grid, kernel)),
        kernel_(kernel),
        mean_count_(mean_count),
        plan_(grid),
        tables_(detail::pgd_axis_tables(grid, kernel.laplacian)),
        real_(grid.size()),
        scratch_(grid.size()),
        work_(grid.complex_size()),
        counts_(grid.complex_size()),
        sums_(fixed_point::words<T> * grid.size()) {}

  const mesh::Grid& grid() const { return grid_; }

  /// S = S(x) at a, as PgdCorrection<T, Cpu>::displacement; device views (S.size == x.size).
  void displacement(particles::ConstView<T> x, const PgdParameters& p, double a,
                    particles::Vec3View<T> S) {
    detail::check_pgd_call(p, a, kWho);
    detail::check_pgd_size(S.size, x.size, "displacements", kWho);
    const double alpha = p.alpha_at(a);
    potential(x, p, false);
    for (int d = 0; d < 3; ++d) {
      mesh::apply_difference(Cuda{}, real(real_), d, kernel_.gradient, -1.0, real(scratch_));
      device_detail::pgd_read(scratch_.data(), grid_, x, S, d, alpha);
    }
  }

  /// x_bar += (dS/dx)^T S_bar and dL/d(the parameters), as
  /// PgdCorrection<T, Cpu>::displacement_adjoint; device views.
  PgdGradient displacement_adjoint(particles::ConstView<T> x, const PgdParameters& p, double a,
                                   particles::ConstView<T> S_bar, particles::Vec3View<T> x_bar) {
    detail::check_pgd_call(p, a, kWho);
    detail::check_pgd_size(S_bar.size, x.size, "displacement adjoints", kWho);
    detail::check_pgd_size(x_bar.size, x.size, "position adjoints (x_bar)", kWho);
    const double alpha = p.alpha_at(a);
    potential(x, p, true);
    double dot = 0.0;
    for (int d = 0; d < 3; ++d) {
      mesh::apply_difference(Cuda{}, real(real_), d, kernel_.gradient, -1.0, real(scratch_));
      dot += device_detail::pgd_read_adjoint(scratch_.data(), grid_, x, S_bar, x_bar, d, alpha);
    }
    for (int d = 0; d < 3; ++d) {
      particles::paint_cic(Cuda{}, x, S_bar.component[d], S_bar.stride, real(scratch_), false,
                           &sums_);
      mesh::apply_difference(
          Cuda{}, real(scratch_), d, kernel_.gradient, 1.0, real(real_),
          d == 0 ? mesh::OutputMode::overwrite : mesh::OutputMode::accumulate);  // (-D_d)^T = D_d
    }
    plan_.forward(real(real_), spectrum(work_));
    const auto constants = device_detail::pgd_constants(p, scale_);
    const auto sums = device_detail::pgd_kernel_sums(reinterpret_cast<const T*>(counts_.data()),
                                                     reinterpret_cast<const T*>(work_.data()),
                                                     grid_, tables(), constants);
    device_detail::pgd_filter(reinterpret_cast<T*>(work_.data()), grid_, tables(), constants,
                              alpha);
    plan_.inverse_destroying_input(spectrum(work_), real(real_));  // dL/dcounts
    particles::paint_adjoint(Cuda{}, real(real_), x, T(1), x_bar);
    return detail::pgd_gradient(p, a, dot, sums);
  }

 private:
  static constexpr const char* kWho = "PgdCorrection (device)";

  /// real_ = psi from the painted counts; with keep_counts, counts_ = the counts' spectrum.
  void potential(particles::ConstView<T> x, const PgdParameters& p, bool keep_counts) {
    scale_ = detail::pgd_scale(mean_count_, x.size, kWho);
    particles::paint_cic(Cuda{}, x, real(real_), T(1), false, &sums_);
    plan_.forward(real(real_), spectrum(work_));
    if (keep_counts) {
      device::copy(counts_.data(), work_.data(), grid_.complex_size() * sizeof(std::complex<T>));
    }
    device_detail::pgd_filter(reinterpret_cast<T*>(work_.data()), grid_, tables(),
                              device_detail::pgd_constants(p, scale_), 1.0);
    plan_.inverse_destroying_input(spectrum(work_), real(real_));
  }

  device_detail::PgdTablePointers tables() const {
    const int nx = grid_.n[0], ny = grid_.n[1], nzc = grid_.complex_nz();
    const double* t = tables_.data();
    device_detail::PgdTablePointers p;
    p.k2[0] = t;
    p.k2[1] = t + nx;
    p.k2[2] = t + nx + ny;
    p.lap[0] = p.k2[2] + nzc;
    p.lap[1] = p.lap[0] + nx;
    p.lap[2] = p.lap[1] + ny;
    return p;
  }

  static const mesh::Grid& checked(const mesh::Grid& grid, const mesh::ForceKernelOptions& k) {
    grid.validate();
    detail::check_pgd_kernel(k, kWho);
    device::require_memory(device_bytes(grid), "PgdCorrection on " + grid.to_string(),
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
  double scale_ = 0.0;
  FftPlan<T, Cuda> plan_;
  device::Buffer<double> tables_;
  // real_: counts, psi, then the adjoint's sum; scratch_: F_d, then the painted S_bar_d; work_:
  // the spectrum being filtered; counts_: the counts' spectrum (adjoint); sums_: the paint's
  // fixed-point accumulator.
  device::Buffer<T> real_, scratch_;
  device::Buffer<std::complex<T>> work_, counts_;
  device::Buffer<fixed_point::Accumulator> sums_;
};

}  // namespace diffpm::nbody
