/// \file
/// \brief Fourier-space kernels of the PM force (inverse Laplacian, gradient, Gaussian smoothing)
/// and their adjoints, as per-mode functions shared with the CUDA backend plus CPU loops.
///
/// Conventions (docs/conventions.md): fields are half spectra of FftPlan's forward transform
/// (unnormalised, e^{-ikx}); the inverse transform is unnormalised, so every loop here takes an
/// explicit `scale` that multiplies the kernel. Pass `inverse_fft_scale(grid)` = 1/N to fold the
/// inverse transform's 1/N in, so that inverse_destroying_input(kernel(forward(x))) is the
/// real-space operator applied to x.
///
/// Gravity (FastPM, Feng et al. 2016, sec. 2.3; docs/physics.md): lap phi = 3/2 Omega_m delta
/// and F = -grad phi, hence
///   phi_k = (3/2 Omega_m) L^{-1}(k) delta_k,   L^{-1}(k) = -1/k^2 (exact),
///   F_d,k = -G_d(k) phi_k = i g_d(k) S(k) (3/2 Omega_m) delta_k / |k|_L^2,
/// where G_d = i g_d is the gradient's symbol, S(k) = exp(-k^2 r_s^2) the long-range smoothing
/// and |k|_L^2 = -1/L^{-1}(k) the (exact or finite-difference) Laplacian's symbol. For
/// delta = A cos(k1.x) this gives F = -(3/2 Omega_m) A k1 sin(k1.x) / |k1|^2: the force points
/// towards the density peak.
///
/// Adjoints. Every kernel K here is diagonal in k and Hermitian, K(-k) = conj(K(k)), so the
/// real-to-real operator R = (1/N) inverse o K o forward is real and its transpose is
/// R^T = (1/N) inverse o conj(K) o forward: the inverse Laplacian and the smoothing are real
/// (self-adjoint), the gradient and the force are imaginary (R^T = -R). On the Nyquist plane of
/// the differentiated axis (even n), k_d and -k_d are the same mode, so an imaginary i g_d cannot
/// be Hermitian there; the gradient is set to 0 on that plane, which makes the kernel Hermitian
/// and the transpose above exact (tests/mesh/test_fourier_kernels.cpp checks <R v, w> =
/// <v, R^T w>).
#pragma once

#include <cmath>
#include <complex>
#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/view.hpp"

namespace diffpm::mesh {

/// Which Laplacian the Poisson solve inverts.
enum class LaplacianKernel {
  exact,             ///< -k^2
  finite_difference  ///< the 7-point stencil: -sum_d (2 sin(k_d h_d / 2) / h_d)^2
};

/// Which derivative the gradient applies (symbol i g(k_d)).
enum class GradientKernel {
  exact,                ///< g = k_d
  finite_difference_2,  ///< 2-point central difference: g = sin(k_d h_d) / h_d
  finite_difference_4   ///< 4-point central difference: g = (8 sin(k h) - sin(2 k h)) / (6 h)
};

/// How a kernel loop writes its result.
enum class OutputMode {
  overwrite,  ///< out = K in (out may be the same field as in)
  accumulate  ///< out += K in (for summing adjoints over force components)
};

/// The choices that make up the PM force kernel.
/// Defaults: exact -1/k^2 and the 4-point finite-difference gradient. The exact gradient i k
/// is a poor choice for the PM force: at the Nyquist scale |i k| is largest while a CIC-painted
/// point mass has as much power there as anywhere, and the force of a single particle rings
/// from cell to cell; read out at fractional positions, the pair force is off by up to 100%
/// at r = 3-9 cells, against < 3% at r >= 4 cells with the 4-point gradient, whose response
/// vanishes at Nyquist (measured in tests/nbody/test_pm_force.cpp; Hockney & Eastwood 1988,
/// ch. 7, make the same point). FastPM's default is also a finite-difference gradient.
struct ForceKernelOptions {
  LaplacianKernel laplacian = LaplacianKernel::exact;
  GradientKernel gradient = GradientKernel::finite_difference_4;
  /// r_s in Mpc/h of the long-range Gaussian filter exp(-k^2 r_s^2); 0 turns it off.
  double smoothing_scale = 0.0;
  /// For nbody::PmForce: apply a finite-difference gradient in real space to the potential
  /// (one c2r per force, mesh/finite_difference.hpp) rather than in Fourier space to each
  /// component (three c2r). The same operator up to rounding; the exact gradient is always
  /// applied in Fourier space.
  bool real_space_gradient = true;
};

// ---------------------------------------------------------------------------------------------
// Per-mode functions (host and device). R is the arithmetic type (float or double).
// ---------------------------------------------------------------------------------------------

/// The contribution of axis d to minus the Laplacian's symbol: k_d^2 (exact) or
/// (2 sin(k_d h_d / 2) / h_d)^2 (the 3-point second difference, whose symbol is
/// (2 cos(k h) - 2) / h^2). h_d is the cell size along d. Summed over the three axes this is
/// |k|_L^2 > 0 for every mode but the zero mode.
template <class R>
DIFFPM_HOST_DEVICE inline R laplacian_axis_symbol(R k, R h, LaplacianKernel kind) {
  using std::sin;
  if (kind == LaplacianKernel::finite_difference) {
    const R s = R(2) * sin(k * h / R(2)) / h;
    return s * s;
  }
  return k * k;
}

/// The inverse Laplacian's symbol -1 / |k|_L^2 from the axis sum |k|_L^2; 0 for the zero mode
/// (the mean of the potential is arbitrary and the mean density contrast sources nothing).
template <class R>
DIFFPM_HOST_DEVICE inline R inverse_laplacian_symbol(R laplacian_sum) {
  return laplacian_sum > R(0) ? R(-1) / laplacian_sum : R(0);
}

/// g(k_d) with the gradient's symbol i g: k (exact), sin(k h)/h (from (f(x+h) - f(x-h)) / 2h) or
/// (8 sin(k h) - sin(2 k h)) / (6 h) (from the 4-point stencil [1, -8, 0, 8, -1] / 12h).
/// `nyquist`: the mode lies on the Nyquist plane of the differentiated axis (even n_d), where
/// the result is 0 so that the kernel stays Hermitian (see the file comment).
template <class R>
DIFFPM_HOST_DEVICE inline R gradient_symbol(R k, R h, bool nyquist, GradientKernel kind) {
  using std::sin;
  if (nyquist) return R(0);
  switch (kind) {
    case GradientKernel::finite_difference_2:
      return sin(k * h) / h;
    case GradientKernel::finite_difference_4:
      return (R(8) * sin(k * h) - sin(R(2) * k * h)) / (R(6) * h);
    default:
      return k;
  }
}

/// exp(-k_d^2 r_s^2): the Gaussian smoothing exp(-k^2 r_s^2) is the product of these over the
/// three axes. r_s = 0 gives 1.
template <class R>
DIFFPM_HOST_DEVICE inline R smoothing_axis_factor(R k, R smoothing_scale) {
  using std::exp;
  const R x = k * smoothing_scale;
  return exp(-x * x);
}

/// c with F_d,k = i c delta_k: c = g_d S coefficient / |k|_L^2, where coefficient =
/// (3/2 Omega_m) times the caller's scale (e.g. 1/N), g_d = gradient_symbol, S the smoothing
/// and |k|_L^2 the Laplacian axis sum. Signs: phi_k = -(3/2 Omega_m) delta_k / |k|_L^2 and
/// F_k = -i g_d phi_k. 0 for the zero mode.
template <class R>
DIFFPM_HOST_DEVICE inline R force_symbol(R gradient, R laplacian_sum, R smoothing, R coefficient) {
  return laplacian_sum > R(0) ? gradient * smoothing * coefficient / laplacian_sum : R(0);
}

/// The potential kernel of one mode, coefficient S(k) (-1/|k|_L^2), from the axis-table
/// entries of its three indices (detail::AxisTables): the Laplacian symbols summed x, y, z and
/// the smoothing factors multiplied x, y, z. Every backend's loop calls this, so they agree.
DIFFPM_HOST_DEVICE inline double potential_kernel_value(double lap_x, double lap_y, double lap_z,
                                                        double smooth_x, double smooth_y,
                                                        double smooth_z, double coefficient) {
  const double lap = lap_x + lap_y + lap_z;
  const double smooth = smooth_x * smooth_y * smooth_z;
  return coefficient * smooth * inverse_laplacian_symbol(lap);
}

/// The force kernel's real factor c of one mode (the kernel is i c), likewise; sign = -1 gives
/// the transpose (conj(i c) = -i c).
DIFFPM_HOST_DEVICE inline double force_kernel_value(double gradient, double lap_x, double lap_y,
                                                    double lap_z, double smooth_x, double smooth_y,
                                                    double smooth_z, double coefficient,
                                                    double sign) {
  const double lap = lap_x + lap_y + lap_z;
  const double smooth = smooth_x * smooth_y * smooth_z;
  return sign * force_symbol(gradient, lap, smooth, coefficient);
}

// ---------------------------------------------------------------------------------------------
// CPU loops over half spectra
// ---------------------------------------------------------------------------------------------
//
// Every loop takes views (mesh/view.hpp): diffpm's ComplexField, a caller's packed array, the
// half-spectrum view of FFTW's padded in-place buffer, any non-overlapping strides. The
// ComplexField overloads at the end of the file check the field and run on its views.

/// 1/N, the factor that the unnormalised inverse FFT leaves to the caller.
inline double inverse_fft_scale(const Grid& grid) { return 1.0 / double(grid.size()); }

namespace detail {

/// Throws InvalidArgument naming `what` unless `in` and `out` are valid half-spectrum views on
/// one grid whose memory either is disjoint or is the same elements (out = in, in place).
template <class T>
void check_kernel_fields(const ComplexView<const T>& in, const ComplexView<T>& out,
                         const char* what) {
  check_view(in, what, "input");
  if (out.grid != in.grid) {
    throw InvalidArgument(std::string(what) + ": output mesh (" + out.grid.to_string() +
                          ") differs from input mesh (" + in.grid.to_string() + ")");
  }
  check_view(out, what, "output");
  const auto* a = reinterpret_cast<const unsigned char*>(in.data);
  const auto* b = reinterpret_cast<const unsigned char*>(out.data);
  const std::size_t bytes_a = in.span() * sizeof(std::complex<T>);
  const std::size_t bytes_b = out.span() * sizeof(std::complex<T>);
  const bool same = a == b && in.stride == out.stride;
  if (!same && a < b + bytes_b && b < a + bytes_a) {
    throw InvalidArgument(std::string(what) +
                          ": output overlaps the input with another layout (it must be the "
                          "input's own elements, or separate memory)");
  }
}

/// The checks of the ComplexField overloads: the field holds its grid's half spectrum.
template <class T>
void check_kernel_fields(const ComplexField<T>& in, const ComplexField<T>& out, const char* what) {
  if (in.grid != out.grid) {
    throw InvalidArgument(std::string(what) + ": output mesh (" + out.grid.to_string() +
                          ") differs from input mesh (" + in.grid.to_string() + ")");
  }
  if (in.data.size() != in.grid.complex_size() || out.data.size() != out.grid.complex_size()) {
    throw InvalidArgument(std::string(what) + ": field holds " + std::to_string(in.data.size()) +
                          " modes, its mesh has " + std::to_string(in.grid.complex_size()));
  }
}

inline void check_axis(int axis, const char* what) {
  if (axis < 0 || axis > 2) {
    throw InvalidArgument(std::string(what) + ": axis = " + std::to_string(axis) +
                          " (must be 0, 1 or 2)");
  }
}

inline void check_scale(double scale, const char* what) {
  if (!std::isfinite(scale)) {
    throw InvalidArgument(std::string(what) + ": scale = " + format_number(scale) +
                          " (must be finite)");
  }
}

inline void check_smoothing_scale(double r_s, const char* what) {
  if (!(r_s >= 0.0) || !std::isfinite(r_s)) {
    throw InvalidArgument(std::string(what) + ": smoothing scale r_s = " + format_number(r_s) +
                          " Mpc/h (must be finite and >= 0)");
  }
}

inline void check_kinds(LaplacianKernel lap, GradientKernel grad, const char* what) {
  const int l = static_cast<int>(lap), g = static_cast<int>(grad);
  if (l < 0 || l > 1) {
    throw InvalidArgument(std::string(what) + ": Laplacian kernel = " + std::to_string(l) +
                          " is not a LaplacianKernel");
  }
  if (g < 0 || g > 2) {
    throw InvalidArgument(std::string(what) + ": gradient kernel = " + std::to_string(g) +
                          " is not a GradientKernel");
  }
}

/// Per-axis tables of the per-mode functions, indexed by FFT index (half spectrum along z), so
/// the loops do only multiplications and one division per mode.
struct AxisTables {
  std::vector<double> laplacian[3];  // laplacian_axis_symbol
  std::vector<double> smoothing[3];  // smoothing_axis_factor
  std::vector<double> gradient;      // gradient_symbol along the differentiated axis
};

inline AxisTables make_axis_tables(const Grid& g, LaplacianKernel lap, double r_s, int grad_axis,
                                   GradientKernel grad) {
  AxisTables t;
  for (int d = 0; d < 3; ++d) {
    const int count = d == 2 ? g.complex_nz() : g.n[d];
    const double h = g.cell_size(d);
    t.laplacian[d].resize(count);
    t.smoothing[d].resize(count);
    for (int idx = 0; idx < count; ++idx) {
      const double k = g.wavenumber(d, idx);
      t.laplacian[d][idx] = laplacian_axis_symbol(k, h, lap);
      t.smoothing[d][idx] = smoothing_axis_factor(k, r_s);
    }
    if (d == grad_axis) {
      t.gradient.resize(count);
      for (int idx = 0; idx < count; ++idx) {
        t.gradient[idx] = gradient_symbol(g.wavenumber(d, idx), h, g.is_nyquist(d, idx), grad);
      }
    }
  }
  return t;
}

/// multiply_by_kernel's loop. Packed: both views are packed (diffpm's fields, the complex view
/// of FFTW's padded buffer, a caller's array), indexed as the fields always were (one flat index
/// per mode, no run-time stride); else through the views' strides. The same arithmetic.
template <bool Imaginary, bool Packed, class T, class Kernel>
void multiply_rows(const ComplexView<const T>& in, const ComplexView<T>& out, bool accumulate,
                   const Kernel& kernel) {
  const Grid& g = in.grid;
  const int nx = g.n[0], ny = g.n[1], nzc = g.complex_nz();
  const std::complex<T>* a = in.data;
  std::complex<T>* b = out.data;
  DIFFPM_OMP(omp parallel for collapse(2) schedule(static))
  for (int i = 0; i < nx; ++i) {
    for (int j = 0; j < ny; ++j) {
      const std::size_t row = g.complex_index(i, j, 0);
      const std::ptrdiff_t row_a = in.offset(i, j, 0), row_b = out.offset(i, j, 0);
      for (int kz = 0; kz < nzc; ++kz) {
        const T c = static_cast<T>(kernel(i, j, kz));
        const std::complex<T> v = Packed ? a[row + kz] : a[row_a + kz * in.stride[2]];
        const std::complex<T> r = Imaginary ? std::complex<T>(-c * v.imag(), c * v.real())
                                            : std::complex<T>(c * v.real(), c * v.imag());
        std::complex<T>& o = Packed ? b[row + kz] : b[row_b + kz * out.stride[2]];
        if (accumulate) {
          o += r;
        } else {
          o = r;
        }
      }
    }
  }
}

/// out (=|+=) K in, with K = c (Imaginary = false) or K = i c (Imaginary = true), c =
/// kernel(i, j, kz) evaluated in double. Element-wise, so `out` may be `in` (the same view).
template <bool Imaginary, class T, class Kernel>
void multiply_by_kernel(const ComplexView<const T>& in, const ComplexView<T>& out, OutputMode mode,
                        const Kernel& kernel) {
  const bool accumulate = mode == OutputMode::accumulate;
  if (in.is_packed() && out.is_packed()) {
    multiply_rows<Imaginary, true>(in, out, accumulate, kernel);
  } else {
    multiply_rows<Imaginary, false>(in, out, accumulate, kernel);
  }
}

template <class T>
void force_kernel_loop(ConstComplexView<T> delta_k, int axis, const ForceKernelOptions& opt,
                       double coefficient, bool adjoint, ComplexView<T> out, OutputMode mode,
                       const char* what) {
  check_kernel_fields(delta_k, out, what);
  check_axis(axis, what);
  check_kinds(opt.laplacian, opt.gradient, what);
  check_smoothing_scale(opt.smoothing_scale, what);
  const AxisTables t =
      make_axis_tables(delta_k.grid, opt.laplacian, opt.smoothing_scale, axis, opt.gradient);
  const int ga = axis;
  // conj(i c) = -i c: the transpose of an imaginary kernel is its negative.
  const double sign = adjoint ? -1.0 : 1.0;
  multiply_by_kernel<true>(delta_k, out, mode, [&](int i, int j, int kz) {
    const int idx[3] = {i, j, kz};
    return force_kernel_value(t.gradient[idx[ga]], t.laplacian[0][i], t.laplacian[1][j],
                              t.laplacian[2][kz], t.smoothing[0][i], t.smoothing[1][j],
                              t.smoothing[2][kz], coefficient, sign);
  });
}

inline void check_omega_m(double omega_m, const char* what) {
  if (!(omega_m >= 0.0) || !std::isfinite(omega_m)) {
    throw InvalidArgument(std::string(what) + ": Omega_m = " + format_number(omega_m) +
                          " (must be finite and >= 0)");
  }
}

}  // namespace detail

/// out = scale L^{-1}(k) in: phi_k from a source, without the 3/2 Omega_m. Real kernel, so it is
/// its own adjoint (apply_inverse_laplacian_adjoint). The zero mode is set to 0.
template <class T>
void apply_inverse_laplacian(ConstComplexView<T> in, LaplacianKernel kind, double scale,
                             ComplexView<T> out, OutputMode mode = OutputMode::overwrite) {
  const char* what = "inverse Laplacian";
  detail::check_kernel_fields(in, out, what);
  detail::check_kinds(kind, GradientKernel::exact, what);
  detail::check_scale(scale, what);
  const detail::AxisTables t = detail::make_axis_tables(in.grid, kind, 0.0, -1, GradientKernel{});
  detail::multiply_by_kernel<false>(in, out, mode, [&](int i, int j, int kz) {
    return scale *
           inverse_laplacian_symbol(t.laplacian[0][i] + t.laplacian[1][j] + t.laplacian[2][kz]);
  });
}

/// The transpose of apply_inverse_laplacian: the same real kernel.
template <class T>
void apply_inverse_laplacian_adjoint(ConstComplexView<T> in, LaplacianKernel kind, double scale,
                                     ComplexView<T> out, OutputMode mode = OutputMode::overwrite) {
  apply_inverse_laplacian(in, kind, scale, out, mode);
}

namespace detail {
template <class T>
void gradient_loop(ConstComplexView<T> in, int axis, GradientKernel kind, double scale, double sign,
                   ComplexView<T> out, OutputMode mode, const char* what) {
  check_kernel_fields(in, out, what);
  check_axis(axis, what);
  check_kinds(LaplacianKernel::exact, kind, what);
  check_scale(scale, what);
  const AxisTables t = make_axis_tables(in.grid, LaplacianKernel::exact, 0.0, axis, kind);
  multiply_by_kernel<true>(in, out, mode, [&](int i, int j, int kz) {
    const int idx[3] = {i, j, kz};
    return sign * scale * t.gradient[idx[axis]];
  });
}
}  // namespace detail

/// out = scale i g(k_axis) in: the derivative along `axis` (0 = x, 1 = y, 2 = z), 0 on that
/// axis' Nyquist plane (even n).
template <class T>
void apply_gradient(ConstComplexView<T> in, int axis, GradientKernel kind, double scale,
                    ComplexView<T> out, OutputMode mode = OutputMode::overwrite) {
  detail::gradient_loop(in, axis, kind, scale, 1.0, out, mode, "gradient");
}

/// The transpose of apply_gradient: conj(i g) = -i g, i.e. minus the gradient.
template <class T>
void apply_gradient_adjoint(ConstComplexView<T> in, int axis, GradientKernel kind, double scale,
                            ComplexView<T> out, OutputMode mode = OutputMode::overwrite) {
  detail::gradient_loop(in, axis, kind, scale, -1.0, out, mode, "gradient adjoint");
}

/// out = scale exp(-k^2 r_s^2) in, r_s in Mpc/h (0: out = scale in). Self-adjoint.
template <class T>
void apply_smoothing(ConstComplexView<T> in, double smoothing_scale, double scale,
                     ComplexView<T> out, OutputMode mode = OutputMode::overwrite) {
  const char* what = "Gaussian smoothing";
  detail::check_kernel_fields(in, out, what);
  detail::check_smoothing_scale(smoothing_scale, what);
  detail::check_scale(scale, what);
  const detail::AxisTables t = detail::make_axis_tables(in.grid, LaplacianKernel::exact,
                                                        smoothing_scale, -1, GradientKernel{});
  detail::multiply_by_kernel<false>(in, out, mode, [&](int i, int j, int kz) {
    return scale * t.smoothing[0][i] * t.smoothing[1][j] * t.smoothing[2][kz];
  });
}

/// The transpose of apply_smoothing: the same real kernel.
template <class T>
void apply_smoothing_adjoint(ConstComplexView<T> in, double smoothing_scale, double scale,
                             ComplexView<T> out, OutputMode mode = OutputMode::overwrite) {
  apply_smoothing(in, smoothing_scale, scale, out, mode);
}

/// force_k = scale F_axis,k: component `axis` of the force F = -grad phi, lap phi =
/// 3/2 Omega_m delta, from the overdensity's spectrum delta_k (see the file comment for the
/// formula and signs). scale = inverse_fft_scale(grid) makes the inverse FFT of force_k the
/// force on the mesh. `force_k` may be `delta_k` (in place).
template <class T>
void apply_force_kernel(ConstComplexView<T> delta_k, int axis, const ForceKernelOptions& options,
                        double omega_m, double scale, ComplexView<T> force_k,
                        OutputMode mode = OutputMode::overwrite) {
  const char* what = "force kernel";
  detail::check_omega_m(omega_m, what);
  detail::check_scale(scale, what);
  detail::force_kernel_loop(delta_k, axis, options, 1.5 * omega_m * scale, false, force_k, mode,
                            what);
}

/// The transpose of apply_force_kernel (vector-Jacobian product with respect to delta): the
/// kernel is imaginary, so this applies minus it. For the three components, call it with
/// OutputMode::accumulate into one delta_bar_k (zeroed first) and do one inverse FFT:
/// delta_bar = sum_d R_d^T F_bar_d.
template <class T>
void apply_force_kernel_adjoint(ConstComplexView<T> force_bar_k, int axis,
                                const ForceKernelOptions& options, double omega_m, double scale,
                                ComplexView<T> delta_bar_k,
                                OutputMode mode = OutputMode::overwrite) {
  const char* what = "force kernel adjoint";
  detail::check_omega_m(omega_m, what);
  detail::check_scale(scale, what);
  detail::force_kernel_loop(force_bar_k, axis, options, 1.5 * omega_m * scale, true, delta_bar_k,
                            mode, what);
}

/// phi_k = -scale (3/2 Omega_m) S(k) delta_k / |k|_L^2 (0 for the zero mode): the potential of
/// lap phi = 3/2 Omega_m delta with the long-range smoothing S, so that the force is
/// F_d = -D_d phi with D_d the gradient, applied here (apply_force_kernel is exactly
/// -i g_d times this kernel) or in real space (mesh/finite_difference.hpp). The kernel is real,
/// hence self-adjoint (apply_potential_kernel_adjoint). `phi_k` may be `delta_k` (in place).
template <class T>
void apply_potential_kernel(ConstComplexView<T> delta_k, const ForceKernelOptions& options,
                            double omega_m, double scale, ComplexView<T> phi_k,
                            OutputMode mode = OutputMode::overwrite) {
  const char* what = "potential kernel";
  detail::check_kernel_fields(delta_k, phi_k, what);
  detail::check_omega_m(omega_m, what);
  detail::check_scale(scale, what);
  detail::check_kinds(options.laplacian, GradientKernel::exact, what);
  detail::check_smoothing_scale(options.smoothing_scale, what);
  const detail::AxisTables t =
      detail::make_axis_tables(delta_k.grid, options.laplacian, options.smoothing_scale, -1, {});
  const double coefficient = 1.5 * omega_m * scale;
  detail::multiply_by_kernel<false>(delta_k, phi_k, mode, [&](int i, int j, int kz) {
    return potential_kernel_value(t.laplacian[0][i], t.laplacian[1][j], t.laplacian[2][kz],
                                  t.smoothing[0][i], t.smoothing[1][j], t.smoothing[2][kz],
                                  coefficient);
  });
}

/// The transpose of apply_potential_kernel: the same real kernel.
template <class T>
void apply_potential_kernel_adjoint(ConstComplexView<T> phi_bar_k,
                                    const ForceKernelOptions& options, double omega_m, double scale,
                                    ComplexView<T> delta_bar_k,
                                    OutputMode mode = OutputMode::overwrite) {
  apply_potential_kernel(phi_bar_k, options, omega_m, scale, delta_bar_k, mode);
}

/// dF_axis/dOmega_m (times scale) from delta_k. The force is linear in Omega_m, so this is the
/// force kernel at Omega_m = 1 (= F / Omega_m, also at Omega_m = 0). In the reverse pass,
/// dL/dOmega_m = sum_d <F_bar_d, dF_d/dOmega_m> (real-space dot product over the mesh), which
/// equals sum_d <F_bar_d, F_d> / Omega_m for Omega_m > 0.
template <class T>
void apply_force_kernel_omega_m_derivative(ConstComplexView<T> delta_k, int axis,
                                           const ForceKernelOptions& options, double scale,
                                           ComplexView<T> out,
                                           OutputMode mode = OutputMode::overwrite) {
  const char* what = "force kernel Omega_m derivative";
  detail::check_scale(scale, what);
  detail::force_kernel_loop(delta_k, axis, options, 1.5 * scale, false, out, mode, what);
}

// ---------------------------------------------------------------------------------------------
// The same kernels on diffpm's fields: checked, then run on their views (the same bits).
// ---------------------------------------------------------------------------------------------

template <class T>
void apply_inverse_laplacian(const ComplexField<T>& in, LaplacianKernel kind, double scale,
                             ComplexField<T>& out, OutputMode mode = OutputMode::overwrite) {
  detail::check_kernel_fields(in, out, "inverse Laplacian");
  apply_inverse_laplacian(view(in), kind, scale, view(out), mode);
}
template <class T>
void apply_inverse_laplacian_adjoint(const ComplexField<T>& in, LaplacianKernel kind, double scale,
                                     ComplexField<T>& out,
                                     OutputMode mode = OutputMode::overwrite) {
  apply_inverse_laplacian(in, kind, scale, out, mode);
}
template <class T>
void apply_gradient(const ComplexField<T>& in, int axis, GradientKernel kind, double scale,
                    ComplexField<T>& out, OutputMode mode = OutputMode::overwrite) {
  detail::check_kernel_fields(in, out, "gradient");
  apply_gradient(view(in), axis, kind, scale, view(out), mode);
}
template <class T>
void apply_gradient_adjoint(const ComplexField<T>& in, int axis, GradientKernel kind, double scale,
                            ComplexField<T>& out, OutputMode mode = OutputMode::overwrite) {
  detail::check_kernel_fields(in, out, "gradient adjoint");
  apply_gradient_adjoint(view(in), axis, kind, scale, view(out), mode);
}
template <class T>
void apply_smoothing(const ComplexField<T>& in, double smoothing_scale, double scale,
                     ComplexField<T>& out, OutputMode mode = OutputMode::overwrite) {
  detail::check_kernel_fields(in, out, "Gaussian smoothing");
  apply_smoothing(view(in), smoothing_scale, scale, view(out), mode);
}
template <class T>
void apply_smoothing_adjoint(const ComplexField<T>& in, double smoothing_scale, double scale,
                             ComplexField<T>& out, OutputMode mode = OutputMode::overwrite) {
  apply_smoothing(in, smoothing_scale, scale, out, mode);
}
template <class T>
void apply_force_kernel(const ComplexField<T>& delta_k, int axis, const ForceKernelOptions& options,
                        double omega_m, double scale, ComplexField<T>& force_k,
                        OutputMode mode = OutputMode::overwrite) {
  detail::check_kernel_fields(delta_k, force_k, "force kernel");
  apply_force_kernel(view(delta_k), axis, options, omega_m, scale, view(force_k), mode);
}
template <class T>
void apply_force_kernel_adjoint(const ComplexField<T>& force_bar_k, int axis,
                                const ForceKernelOptions& options, double omega_m, double scale,
                                ComplexField<T>& delta_bar_k,
                                OutputMode mode = OutputMode::overwrite) {
  detail::check_kernel_fields(force_bar_k, delta_bar_k, "force kernel adjoint");
  apply_force_kernel_adjoint(view(force_bar_k), axis, options, omega_m, scale, view(delta_bar_k),
                             mode);
}
template <class T>
void apply_potential_kernel(const ComplexField<T>& delta_k, const ForceKernelOptions& options,
                            double omega_m, double scale, ComplexField<T>& phi_k,
                            OutputMode mode = OutputMode::overwrite) {
  detail::check_kernel_fields(delta_k, phi_k, "potential kernel");
  apply_potential_kernel(view(delta_k), options, omega_m, scale, view(phi_k), mode);
}
template <class T>
void apply_potential_kernel_adjoint(const ComplexField<T>& phi_bar_k,
                                    const ForceKernelOptions& options, double omega_m, double scale,
                                    ComplexField<T>& delta_bar_k,
                                    OutputMode mode = OutputMode::overwrite) {
  apply_potential_kernel(phi_bar_k, options, omega_m, scale, delta_bar_k, mode);
}
template <class T>
void apply_force_kernel_omega_m_derivative(const ComplexField<T>& delta_k, int axis,
                                           const ForceKernelOptions& options, double scale,
                                           ComplexField<T>& out,
                                           OutputMode mode = OutputMode::overwrite) {
  detail::check_kernel_fields(delta_k, out, "force kernel Omega_m derivative");
  apply_force_kernel_omega_m_derivative(view(delta_k), axis, options, scale, view(out), mode);
}

}  // namespace diffpm::mesh
