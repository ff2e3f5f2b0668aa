/// \file
/// \brief Lpt<T, Cuda>: particles/lpt.hpp's Zel'dovich and 2LPT displacement fields, lattice
/// particles and vector-Jacobian product on the device backend (backend/device/).
///
/// The per-mode and per-particle arithmetic is lpt.hpp's (detail::LptKernel, LptEvaluation,
/// LptFactorTerm, ...), launched through backend::for_each_index on device memory, and the
/// transforms are FftPlan<T, Cuda> with the CPU plan's layout, sign and normalisation. The
/// scalar adjoints are four backend::deterministic_sum over the particles, whose blocks are
/// those of the CPU's deterministic_sums<4>. In the host emulation every result is therefore
/// the CPU's bit for bit; on a GPU it agrees to FFT rounding (cuFFT and FFTW round
/// differently, and nvcc may contract a * b + c into FMAs).
#pragma once

#include <array>
#include <complex>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/backend/device/fft.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/parallel.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/mesh/grid.hpp"
#include "diffpm/mesh/view.hpp"
#include "diffpm/particles/lpt.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::particles {

namespace device_detail {

// The kernels of Lpt<T, Cuda>: free functions, since nvcc refuses extended lambdas in private
// member functions.

/// out (=|+=) K in / N over the half spectrum (interleaved re, im).
template <class T>
void lpt_apply_kernel(const detail::LptAxes& axes, const detail::LptKernel& kernel,
                      std::size_t modes, double inv_n, const T* in, T* out, bool accumulate) {
  backend::for_each_index(Cuda{}, modes, [=] DIFFPM_LAMBDA(std::size_t c) {
    detail::lpt_kernel_entry(axes, kernel, inv_n, c, in, out, accumulate);
  });
}

/// s = the diagonal products of the 2LPT source.
template <class T>
void lpt_source_diagonal(std::size_t n, const T* h0, const T* h1, const T* h2, T* s) {
  backend::for_each_index(Cuda{}, n, [=] DIFFPM_LAMBDA(std::size_t c) {
    s[c] = detail::lpt_source_diagonal(h0[c], h1[c], h2[c]);
  });
}
/// s -= h^2.
template <class T>
void lpt_source_offdiagonal(std::size_t n, const T* h, T* s) {
  backend::for_each_index(Cuda{}, n, [=] DIFFPM_LAMBDA(std::size_t c) {
    s[c] = detail::lpt_source_offdiagonal(s[c], h[c]);
  });
}
/// out = Sbar (ha + hb).
template <class T>
void lpt_source_diagonal_adjoint(std::size_t n, const T* s_bar, const T* ha, const T* hb, T* out) {
  backend::for_each_index(Cuda{}, n, [=] DIFFPM_LAMBDA(std::size_t c) {
    out[c] = detail::lpt_source_diagonal_adjoint(s_bar[c], ha[c], hb[c]);
  });
}
/// h = -2 Sbar h.
template <class T>
void lpt_source_offdiagonal_adjoint(std::size_t n, const T* s_bar, T* h) {
  backend::for_each_index(Cuda{}, n, [=] DIFFPM_LAMBDA(std::size_t c) {
    h[c] = detail::lpt_source_offdiagonal_adjoint(s_bar[c], h[c]);
  });
}

/// out = 0 off the lattice, a xbar_d + b pbar_d on it (out: the n_cells of the mesh).
template <class T>
void lpt_scatter(const detail::LptLattice& lattice, Vec3View<const T> x_bar,
                 Vec3View<const T> p_bar, int d, double a, double b, std::size_t cells, T* out) {
  device::zero_bytes(out, cells * sizeof(T));
  backend::for_each_index(Cuda{}, x_bar.size, [=] DIFFPM_LAMBDA(std::size_t p) {
    out[lattice.mesh_index(p)] = detail::lpt_scatter_value(a, x_bar(p, d), b, p_bar(p, d));
  });
}

/// Particles (or displacements) and momenta of every lattice point.
template <class T>
void lpt_evaluate(const detail::LptEvaluation<T>& e, std::size_t n, Vec3View<T> x, Vec3View<T> p) {
  backend::for_each_index(Cuda{}, n, [=] DIFFPM_LAMBDA(std::size_t i) { e(i, x, p); });
}

/// One component of the factor adjoints as a function of the particle.
template <class T>
struct LptFactorComponent {
  detail::LptFactorTerm<T> term;
  int component;
  DIFFPM_HOST_DEVICE double operator()(std::size_t p) const { return term(component, p); }
};

/// sum_p term(component, p), grouped as the CPU's deterministic_sums<4> groups each component:
/// blocks of 4096 particles, each summed in order from 0, then the blocks in order.
template <class T>
double lpt_factor_sum(const detail::LptFactorTerm<T>& term, int component, std::size_t n) {
  return backend::deterministic_sum(Cuda{}, n, LptFactorComponent<T>{term, component}, 4096);
}

}  // namespace device_detail

/// LPT on the device: the interface of Lpt<T> (particles/lpt.hpp, where the physics, signs and
/// the adjoint's derivation are) on packed device views. Fields, particles and gradients live
/// in device memory; the factors and their adjoints (LptFactors<double>) on the host.
template <class T>
class Lpt<T, Cuda> {
 public:
  using Plan = FftPlan<T, Cuda>;

  /// `lattice` defaults (zeros) to one particle per mesh point.
  explicit Lpt(const mesh::Grid& mesh, std::array<int, 3> lattice = {0, 0, 0})
      : Lpt(std::make_shared<const Plan>(mesh), lattice) {}

  /// On a shared device FFT plan (its grid is the mesh).
  explicit Lpt(std::shared_ptr<const Plan> plan, std::array<int, 3> lattice = {0, 0, 0})
      : grid_(checked_plan(plan).grid()),
        plan_(std::move(plan)),
        lattice_(lattice),
        stride_(detail::lpt_lattice_strides(grid_, lattice_)),
        axis_tables_(detail::lpt_axis_tables(grid_)) {}

  const mesh::Grid& grid() const { return grid_; }
  const Plan& plan() const { return *plan_; }
  const std::shared_ptr<const Plan>& shared_plan() const { return plan_; }
  std::array<int, 3> lattice() const { return lattice_; }
  std::size_t num_particles() const { return std::size_t(lattice_[0]) * lattice_[1] * lattice_[2]; }
  int order() const { return order_; }

  /// Lagrangian position q (Mpc/h) of particle p.
  std::array<double, 3> lattice_position(std::size_t p) const {
    int m[3];
    lattice_geometry().mesh_point(p, m);
    return {m[0] * grid_.cell_size(0), m[1] * grid_.cell_size(1), m[2] * grid_.cell_size(2)};
  }

  /// Psi1 and, for order 2, the source S and Psi2, from delta_L (a packed half spectrum in device
  /// memory on the plan's grid, at D1 = 1: ic::linear_field(Cuda{}, ...)).
  void compute(mesh::ConstComplexView<T> delta, int order) {
    detail::check_lpt_order(order);
    check_spectrum(delta, "delta_L");
    accumulating_ = false;  // an adjoint in progress would refer to the old fields
    for (int d = 0; d < 3; ++d) {
      apply_kernel(delta.data, {Kernel::inv_gradient, d, d});
      inverse(psi1_[d]);
    }
    order_ = order;
    if (order == 1) return;
    for (int d = 0; d < 3; ++d) hessian(delta.data, d, d, psi2_[d]);
    const std::size_t n = grid_.size();
    resize(source_);
    device_detail::lpt_source_diagonal(n, psi2_[0].data(), psi2_[1].data(), psi2_[2].data(),
                                       source_.data());
    for (const auto& ij : offdiagonal()) {
      hessian(delta.data, ij[0], ij[1], scratch_);
      device_detail::lpt_source_offdiagonal(n, scratch_.data(), source_.data());
    }
    resize(source_k_);
    plan_->forward(real(source_), spectrum(source_k_));
    for (int d = 0; d < 3; ++d) {
      apply_kernel(source_k_.data(), {Kernel::minus_inv_gradient, d, d});
      inverse(psi2_[d]);
    }
  }

  /// Psi1_d, Psi2_d (order 2) and the 2LPT source S, from compute(): device memory.
  mesh::RealView<const T> psi1(int d) const { return real(psi1_[d]); }
  mesh::RealView<const T> psi2(int d) const { return real(psi2_[d]); }
  mesh::RealView<const T> source() const { return real(source_); }

  /// Displacements s = D1 Psi1 + D2 Psi2 (not wrapped) and momenta p = p1 Psi1 + p2 Psi2 into
  /// device views of num_particles() vectors (particle i: lattice point i, z fastest).
  void displacements(const LptFactors<double>& f, Vec3View<T> s, Vec3View<T> p) const {
    check_computed();
    detail::check_lpt_view(s, num_particles(), "displacements");
    detail::check_lpt_view(p, num_particles(), "momenta");
    evaluate(f, s, p, false, {0.0, 0.0, 0.0});
  }

  /// Positions x = q + offset + s wrapped into [0, L) and momenta, into device views (see
  /// Lpt<T>::particles for the offset).
  void particles(const LptFactors<double>& f, Vec3View<T> x, Vec3View<T> p,
                 std::array<double, 3> offset = {0.0, 0.0, 0.0}) const {
    detail::check_lpt_offset(offset);
    check_computed();
    detail::check_lpt_view(x, num_particles(), "positions");
    detail::check_lpt_view(p, num_particles(), "momenta");
    evaluate(f, x, p, true, offset);
  }

  /// Vector-Jacobian product of (delta_L, factors) -> (x, p), as Lpt<T>::adjoint: delta_bar (a
  /// packed device half spectrum, overwritten) and factors_bar = (dL/dD1, dL/dD2, dL/dp1,
  /// dL/dp2), from device gradients x_bar and p_bar.
  void adjoint(mesh::ConstComplexView<T> delta, ConstView<T> x_bar, ConstView<T> p_bar,
               mesh::ComplexView<T> delta_bar, LptFactors<double>& factors_bar,
               const LptFactors<double>& f) {
    adjoint_begin();
    factors_bar = adjoint_accumulate(x_bar, p_bar, f);
    adjoint_end(delta, delta_bar);
  }

  /// Several evaluations at other factors in one pass, as Lpt<T>::adjoint_begin.
  void adjoint_begin() {
    if (order_ == 0) throw InvalidArgument("LPT adjoint: compute() has not been called");
    resize(delta_bar_acc_);
    delta_bar_acc_.zero();
    if (order_ == 2) {
      resize(source_k_);
      source_k_.zero();
    }
    accumulating_ = true;
  }

  LptFactors<double> adjoint_accumulate(ConstView<T> x_bar, ConstView<T> p_bar,
                                        const LptFactors<double>& f) {
    if (!accumulating_) throw InvalidArgument("LPT adjoint: adjoint_begin() was not called");
    const std::size_t np = num_particles();
    detail::check_lpt_gradients(x_bar.size, p_bar.size, np);
    detail::check_lpt_view(x_bar, np, "position gradients");
    detail::check_lpt_view(p_bar, np, "momentum gradients");
    detail::LptFactorTerm<T> term{x_bar, p_bar, lattice_geometry(), {}, {}};
    fields(term.psi1, term.psi2);
    double sums[4] = {0.0, 0.0, 0.0, 0.0};  // D1, p1, D2, p2; 0 without Psi2, as on the CPU
    for (int k = 0; k < (order_ == 2 ? 4 : 2); ++k)
      sums[k] = device_detail::lpt_factor_sum(term, k, np);
    resize(scratch_);
    resize(work_);
    // First order: delta_bar += conj(i k_d/k^2) r2c(D1 xbar_d + p1 pbar_d) / N.
    for (int d = 0; d < 3; ++d) {
      scatter(x_bar, p_bar, d, f.D1, f.p1);
      plan_->forward(real(scratch_), spectrum(work_));
      accumulate_kernel(delta_bar_acc_, {Kernel::inv_gradient_conj, d, d});
    }
    // Second order: Sbar_n += sum_d conj(-i k_d/k^2) r2c(D2 xbar_d + p2 pbar_d) / N.
    if (order_ == 2) {
      for (int d = 0; d < 3; ++d) {
        scatter(x_bar, p_bar, d, f.D2, f.p2);
        plan_->forward(real(scratch_), spectrum(work_));
        accumulate_kernel(source_k_, {Kernel::minus_inv_gradient_conj, d, d});
      }
    }
    return LptFactors<double>{sums[0], sums[2], sums[1], sums[3]};
  }

  /// delta_bar (a packed device half spectrum, overwritten) from the accumulated evaluations, at
  /// the delta_L of compute().
  void adjoint_end(mesh::ConstComplexView<T> delta, mesh::ComplexView<T> delta_bar) {
    if (!accumulating_) throw InvalidArgument("LPT adjoint: adjoint_begin() was not called");
    check_spectrum(delta, "delta_L");
    check_spectrum(delta_bar, "delta_bar");
    accumulating_ = false;
    device::copy(delta_bar.data, delta_bar_acc_.data(),
                 grid_.complex_size() * sizeof(std::complex<T>));
    if (order_ != 2) return;
    const std::size_t n = grid_.size();
    // Sbar(x) = c2r(Sbar_n), unnormalised: the adjoint of r2c.
    device::Buffer<T> s_bar(n);
    plan_->inverse_destroying_input(spectrum(source_k_), real(s_bar));
    // Diagonal second derivatives (recomputed); Hbar_ii = Sbar (H_jj + H_kk).
    std::array<device::Buffer<T>, 3> h;
    for (int d = 0; d < 3; ++d) hessian(delta.data, d, d, h[d]);
    T* out = reinterpret_cast<T*>(delta_bar.data);
    for (int d = 0; d < 3; ++d) {
      device_detail::lpt_source_diagonal_adjoint(n, s_bar.data(), h[(d + 1) % 3].data(),
                                                 h[(d + 2) % 3].data(), scratch_.data());
      plan_->forward(real(scratch_), spectrum(work_));
      run_kernel(work_.data(), out, {Kernel::hessian, d, d}, true);
    }
    // Off-diagonal: Hbar_ij = -2 Sbar H_ij.
    for (const auto& ij : offdiagonal()) {
      hessian(delta.data, ij[0], ij[1], scratch_);
      device_detail::lpt_source_offdiagonal_adjoint(n, s_bar.data(), scratch_.data());
      plan_->forward(real(scratch_), spectrum(work_));
      run_kernel(work_.data(), out, {Kernel::hessian, ij[0], ij[1]}, true);
    }
  }

 private:
  using Kernel = detail::LptKernel;

  static const Plan& checked_plan(const std::shared_ptr<const Plan>& plan) {
    if (!plan) throw InvalidArgument("LPT (device): the FFT plan is null");
    return *plan;
  }

  detail::LptLattice lattice_geometry() const {
    return {{lattice_[0], lattice_[1], lattice_[2]},
            {stride_[0], stride_[1], stride_[2]},
            {grid_.n[0], grid_.n[1], grid_.n[2]}};
  }
  void fields(const T* psi1[3], const T* psi2[3]) const {
    for (int d = 0; d < 3; ++d) {
      psi1[d] = psi1_[d].data();
      psi2[d] = order_ == 2 ? psi2_[d].data() : nullptr;
    }
  }

  static constexpr std::array<std::array<int, 2>, 3> offdiagonal() {
    return {{{0, 1}, {0, 2}, {1, 2}}};
  }

  void resize(device::Buffer<T>& b) const {
    if (b.size() != grid_.size()) b = device::Buffer<T>(grid_.size());
  }
  void resize(device::Buffer<std::complex<T>>& b) const {
    if (b.size() != grid_.complex_size()) b = device::Buffer<std::complex<T>>(grid_.complex_size());
  }
  mesh::RealView<T> real(device::Buffer<T>& b) const { return mesh::packed(b.data(), grid_); }
  mesh::RealView<const T> real(const device::Buffer<T>& b) const {
    return mesh::packed(static_cast<const T*>(b.data()), grid_);
  }
  mesh::ComplexView<T> spectrum(device::Buffer<std::complex<T>>& b) const {
    return mesh::packed(b.data(), grid_);
  }

  /// InvalidArgument naming `what` unless f is a packed half spectrum with data on the grid.
  template <class V>
  void check_spectrum(const V& f, const char* what) const {
    if (f.grid != grid_) throw detail::lpt_mesh_error(f.grid, grid_, what);
    if (!f.data) throw InvalidArgument(std::string("LPT (device): ") + what + " has no data");
    if (!f.is_packed()) {
      throw InvalidArgument(std::string("LPT (device): ") + what +
                            " is not packed (the device FFT transforms packed views only)");
    }
  }

  /// out (=|+=) K(n) in_n / N for half spectra in device memory (out: interleaved re, im).
  void run_kernel(const std::complex<T>* in, T* out, const Kernel& kernel, bool accumulate) const {
    device_detail::lpt_apply_kernel(detail::lpt_axes(axis_tables_.data(), grid_), kernel,
                                    grid_.complex_size(), 1.0 / double(grid_.size()),
                                    reinterpret_cast<const T*>(in), out, accumulate);
  }
  /// work_ = K in / N.
  void apply_kernel(const std::complex<T>* in, const Kernel& kernel) {
    resize(work_);
    run_kernel(in, reinterpret_cast<T*>(work_.data()), kernel, false);
  }
  /// out += K work_ / N.
  void accumulate_kernel(device::Buffer<std::complex<T>>& out, const Kernel& kernel) const {
    run_kernel(work_.data(), reinterpret_cast<T*>(out.data()), kernel, true);
  }
  /// out = c2r(work_) (work_ destroyed).
  void inverse(device::Buffer<T>& out) {
    resize(out);
    plan_->inverse_destroying_input(spectrum(work_), real(out));
  }
  /// out = H_ij = (1/N) c2r(-k_i k_j delta / k^2).
  void hessian(const std::complex<T>* delta, int i, int j, device::Buffer<T>& out) {
    apply_kernel(delta, {Kernel::hessian, i, j});
    inverse(out);
  }

  void scatter(ConstView<T> x_bar, ConstView<T> p_bar, int d, double a, double b) {
    device_detail::lpt_scatter(lattice_geometry(), x_bar, p_bar, d, a, b, grid_.size(),
                               scratch_.data());
  }

  void check_computed() const {
    if (order_ == 0) throw InvalidArgument("LPT: compute() has not been called");
  }

  void evaluate(const LptFactors<double>& f, Vec3View<T> x, Vec3View<T> p, bool positions,
                const std::array<double, 3>& offset) const {
    detail::LptEvaluation<T> e;
    e.lattice = lattice_geometry();
    for (int d = 0; d < 3; ++d) {
      e.cell[d] = grid_.cell_size(d);
      e.length[d] = grid_.length[d];
      e.offset[d] = offset[d];
    }
    e.f = f;
    fields(e.psi1, e.psi2);
    e.positions = positions;
    device_detail::lpt_evaluate(e, num_particles(), x, p);
  }

  mesh::Grid grid_;
  std::shared_ptr<const Plan> plan_;
  std::array<int, 3> lattice_;
  std::array<int, 3> stride_{};
  device::Buffer<double> axis_tables_;  // detail::lpt_axis_tables(grid_), uploaded once
  int order_ = 0;
  bool accumulating_ = false;
  std::array<device::Buffer<T>, 3> psi1_, psi2_;
  device::Buffer<T> source_, scratch_;
  device::Buffer<std::complex<T>> work_, source_k_, delta_bar_acc_;
};

}  // namespace diffpm::particles
