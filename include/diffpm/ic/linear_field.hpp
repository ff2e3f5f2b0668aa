/// \file
/// \brief Linear density delta_L(k) from white noise and P_lin (docs/conventions.md), and adjoint.
#pragma once

#include <cmath>
#include <complex>
#include <cstddef>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/core/deterministic_sum.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/model.hpp"
#include "diffpm/mesh/field.hpp"

namespace diffpm::ic {

// Gradients of half-spectrum fields. A ComplexField D stands for the Hermitian full spectrum of
// a real field d(x) = (1/N) sum_n D_n e^{+i k_n.x}. Its gradient Dbar is the half spectrum of the
// Hermitian array with dL = Re sum_{n, full spectrum} conj(Dbar_n) dD_n for every Hermitian dD;
// equivalently Dbar = (1/N) r2c(dbar) with dbar(x) = dL/dd(x), the gradient of the real field
// (spectrum_from_real_adjoint). Every adjoint in ic/ and particles/lpt.hpp takes and returns
// spectrum gradients in this convention, so they compose with no factor; spectrum_dot is the
// matching inner product, for dot-product tests.

namespace detail {
/// spectrum_multiplicity for a mesh of n_z cells along z, callable from device code.
DIFFPM_HOST_DEVICE inline int spectrum_multiplicity(int n_z, int kz) {
  return (kz == 0 || (n_z % 2 == 0 && kz == n_z / 2)) ? 1 : 2;
}
}  // namespace detail

/// How many full-spectrum modes the half-spectrum entry with index kz stands for: 1 on the
/// kz = 0 plane and on the Nyquist plane kz = n_z/2 of an even n_z (both already hold n and -n
/// as separate entries, or a self-conjugate mode), 2 elsewhere (n and its unstored conjugate).
inline int spectrum_multiplicity(const mesh::Grid& grid, int kz) {
  return detail::spectrum_multiplicity(grid.n[2], kz);
}

/// Re sum over the full spectrum of conj(a_n) b_n, for Hermitian a and b given as half spectra.
template <class T>
double spectrum_dot(const mesh::ComplexField<T>& a, const mesh::ComplexField<T>& b) {
  if (a.grid != b.grid) throw InvalidArgument("spectrum_dot: the two spectra are on other meshes");
  const mesh::Grid& g = a.grid;
  const int nzc = g.complex_nz();
  // Plane by plane, the planes' sums added in order: the same bits for any thread count.
  return deterministic_sum(
      g.n[0],
      [&](std::ptrdiff_t i) {
        double sum = 0.0;
        for (int j = 0; j < g.n[1]; ++j)
          for (int kz = 0; kz < nzc; ++kz) {
            const std::complex<double> x(a(int(i), j, kz)), y(b(int(i), j, kz));
            sum += spectrum_multiplicity(g, kz) * (x.real() * y.real() + x.imag() * y.imag());
          }
        return sum;
      },
      1);
}

/// d(x) = (1/N) c2r(D): the real field of a spectrum (docs/conventions.md). D is preserved.
template <class T>
void real_from_spectrum(const FftPlan<T>& plan, const mesh::ComplexField<T>& spectrum,
                        mesh::RealField<T>& out) {
  mesh::ComplexField<T> scratch = spectrum;
  if (!out.allocated_on(plan.grid())) out = mesh::RealField<T>(plan.grid());
  plan.inverse_destroying_input(scratch, out);
  const T inv_n = T(1.0 / double(plan.grid().size()));
  for (auto& v : out.data) v *= inv_n;
}

/// Adjoint of real_from_spectrum: the spectrum gradient Dbar = (1/N) r2c(dbar).
template <class T>
void real_from_spectrum_adjoint(const FftPlan<T>& plan, const mesh::RealField<T>& real_bar,
                                mesh::ComplexField<T>& spectrum_bar) {
  if (!spectrum_bar.allocated_on(plan.grid())) spectrum_bar = mesh::ComplexField<T>(plan.grid());
  plan.forward(real_bar, spectrum_bar);
  const T inv_n = T(1.0 / double(plan.grid().size()));
  for (auto& v : spectrum_bar.data) v *= inv_n;
}

namespace detail {
/// Calls f(half-spectrum index, |k| in h/Mpc) for every half-spectrum entry but the zero mode,
/// serially, in index order; the one place where a mode's |k| is computed for the coefficients.
template <class F>
void for_each_nonzero_mode(const mesh::Grid& grid, const F& f) {
  const int nzc = grid.complex_nz();
  for (int i = 0; i < grid.n[0]; ++i)
    for (int j = 0; j < grid.n[1]; ++j)
      for (int kz = 0; kz < nzc; ++kz) {
        if (i == 0 && j == 0 && kz == 0) continue;
        const double kx = grid.wavenumber(0, i), ky = grid.wavenumber(1, j),
                     kzv = grid.wavenumber(2, kz);
        f(grid.complex_index(i, j, kz), std::sqrt(kx * kx + ky * ky + kzv * kzv));
      }
}
/// Throws InvalidArgument naming k and P unless P is finite and > 0.
inline void check_power(double k, double p) {
  if (!std::isfinite(p) || !(p > 0.0)) {
    throw InvalidArgument("linear field: P(k = " + format_number(k) +
                          " h/Mpc) = " + format_number(p) + " (Mpc/h)^3 (must be finite and > 0)");
  }
}

/// c_n = coefficient(|k_n|) on the half spectrum, c_0 = 0. The coefficients are evaluated
/// serially: user callables (and error reporting) need not be thread-safe.
template <class Coefficient>
std::vector<double> amplitudes(const mesh::Grid& grid, const Coefficient& coefficient) {
  std::vector<double> c(grid.complex_size(), 0.0);
  for_each_nonzero_mode(grid, [&](std::size_t index, double k) { c[index] = coefficient(k); });
  return c;
}

}  // namespace detail

/// Per-mode coefficients c_n = sqrt(P(|k_n|) N / V) on the half spectrum (Grid::complex_index
/// order), c_0 = 0: delta_L,n = c_n w_n (docs/conventions.md, "Linear initial conditions").
/// `power` maps k in h/Mpc to P in (Mpc/h)^3. Kept in double whatever the field precision: they
/// are the scalar coefficients through which dL/dP_lin flows (docs/design.md, "The adjoint"),
/// dc_n/dP = c_n/(2P). Throws InvalidArgument naming k and P when P is not finite and > 0.
template <class Power,
          class = std::enable_if_t<std::is_invocable_r_v<double, const Power&, double>>>
std::vector<double> mode_amplitudes(const mesh::Grid& grid, const Power& power) {
  grid.validate();
  const double n_over_v = double(grid.size()) / grid.volume();
  return detail::amplitudes(grid, [&](double k) {
    const double p = power(k);
    detail::check_power(k, p);
    return std::sqrt(p * n_over_v);
  });
}

/// One mode's coefficient c(k) = sqrt(P_lin(k, a) N / V), n_over_v = N / V, templated on the
/// cosmology's scalar: S = double for the field, a dual number (cosmology::ParameterDual) for
/// dc/dtheta in the gradient pass (model/forward_model.hpp). mode_amplitudes and the gradient
/// both call it, so the two cannot disagree.
template <class S>
S mode_amplitude(const cosmology::Model<S>& cosmology, double k, double n_over_v, double a = 1.0) {
  using std::sqrt;
  return sqrt(cosmology.linear_power(k, S(a)) * n_over_v);
}

/// The coefficients of the cosmology's P_lin(k, a) = P_lin(k, 1) D1(a)^2 (a = 1: today), by
/// mode_amplitude; throws as the general form does when P_lin is not finite and > 0.
inline std::vector<double> mode_amplitudes(const mesh::Grid& grid,
                                           const cosmology::Model<double>& cosmology,
                                           double a = 1.0) {
  grid.validate();
  const double n_over_v = double(grid.size()) / grid.volume();
  return detail::amplitudes(grid, [&](double k) {
    const double c = mode_amplitude(cosmology, k, n_over_v, a);
    if (!std::isfinite(c) || !(c > 0.0)) detail::check_power(k, cosmology.linear_power(k, a));
    return c;
  });
}

/// The adjoints of mode_amplitudes' coefficients summed over the entries that share a
/// wavenumber: pairs (k, sum of amplitude_bar over the entries with |k_n| = k), sorted by k,
/// zero mode left out. Since c_n = sqrt(P(|k_n|) N / V) depends on |k_n| alone, dL/dtheta =
/// sum over the pairs of bar * d sqrt(P(k) N / V)/dtheta: the power spectrum's derivatives are
/// then needed once per distinct k (about 3 (n/2)^2 of them for an n^3 mesh), not per mode. k
/// comes from the same loop as in mode_amplitudes, so equal wavenumbers compare equal.
inline std::vector<std::pair<double, double>> amplitude_adjoint_by_wavenumber(
    const mesh::Grid& grid, const std::vector<double>& amplitude_bar) {
  if (amplitude_bar.size() != grid.complex_size()) {
    throw InvalidArgument("linear field: " + std::to_string(amplitude_bar.size()) +
                          " amplitude adjoints for a half spectrum of " +
                          std::to_string(grid.complex_size()) + " modes");
  }
  std::map<double, double> by_k;
  detail::for_each_nonzero_mode(
      grid, [&](std::size_t index, double k) { by_k[k] += amplitude_bar[index]; });
  return {by_k.begin(), by_k.end()};
}

struct LinearFieldOptions {
  /// Angulo & Pontzen 2016 (arXiv:1603.05253, eq. 3 with |w| fixed): every |w_n| is replaced by
  /// its rms sqrt(N), the phase kept, so (V/N^2)|delta_n|^2 = P_lin(k_n) on every mode.
  bool fixed_amplitude = false;
};

namespace detail {

// The per-mode arithmetic of linear_field and its adjoint, shared by the CPU loops below and the
// device kernels (ic/linear_field_device.hpp), so that the two backends cannot diverge. Complex
// numbers are pairs of doubles: std::complex's operators are host functions. The expressions
// are those of std::complex<double> written out: a complex times a real scales both parts, a
// complex product is (a + ib)(c + id) = (ac - bd) + i(ad + bc) (what GCC computes for finite
// values), and |w| is std::hypot, which libstdc++'s std::abs of a complex<double> calls (through
// the C library's cabs), so the CPU results are the bits they were before this was factored.

/// One entry of linear_field, in place: w = r2c(noise)_n in (re, im) becomes delta_L,n = c w, or
/// with fixed amplitude c sqrt(N) w/|w| (0 where w = 0).
DIFFPM_HOST_DEVICE inline void linear_field_mode(double c, double sqrt_n, bool fixed, double& re,
                                                 double& im) {
  if (!fixed) {
    re = re * c;
    im = im * c;
    return;
  }
  const double r = std::hypot(re, im);  // 0 has probability 0; it then stays 0
  if (r > 0.0) {
    const double s = c * sqrt_n / r;
    re = re * s;
    im = im * s;
  } else {
    re = 0.0;
    im = 0.0;
  }
}

/// One entry of linear_field_adjoint (derivation there): from w = r2c(noise)_n, in place, and
/// delta_bar_n = (db_re, db_im), w becomes Wbar_n; returns dL/dc_n for this entry times its
/// multiplicity (spectrum_multiplicity).
DIFFPM_HOST_DEVICE inline double linear_field_mode_adjoint(double c, double sqrt_n, bool fixed,
                                                           int multiplicity, double& w_re,
                                                           double& w_im, double db_re,
                                                           double db_im) {
  double wbar_re = 0.0, wbar_im = 0.0, dd_dc_re = 0.0, dd_dc_im = 0.0;  // dD/dc
  if (!fixed) {
    wbar_re = db_re * c;
    wbar_im = db_im * c;
    dd_dc_re = w_re;
    dd_dc_im = w_im;
  } else {
    const double r = std::hypot(w_re, w_im);
    if (r > 0.0) {
      const double u_re = w_re / r, u_im = w_im / r;
      // (c sqrt(N)/r) Im(Dbar conj(u)) i u, as the complex<double> expression evaluates it:
      // s i = (0 s, s), then times u.
      const double s = (c * sqrt_n / r) * (db_re * -u_im + db_im * u_re);
      const double i_re = 0.0 * s, i_im = s;
      wbar_re = i_re * u_re - i_im * u_im;
      wbar_im = i_re * u_im + i_im * u_re;
      dd_dc_re = u_re * sqrt_n;
      dd_dc_im = u_im * sqrt_n;
    }
  }
  w_re = wbar_re;
  w_im = wbar_im;
  return multiplicity * (db_re * dd_dc_re + db_im * dd_dc_im);
}

inline void check_linear_inputs(const mesh::Grid& plan_grid, const mesh::Grid& noise_grid,
                                const std::vector<double>& amplitude) {
  if (noise_grid != plan_grid) {
    throw InvalidArgument("linear field: the noise is on a " + std::to_string(noise_grid.n[0]) +
                          "x" + std::to_string(noise_grid.n[1]) + "x" +
                          std::to_string(noise_grid.n[2]) + " mesh, the FFT plan on " +
                          std::to_string(plan_grid.n[0]) + "x" + std::to_string(plan_grid.n[1]) +
                          "x" + std::to_string(plan_grid.n[2]) + " (or other box lengths)");
  }
  if (amplitude.size() != plan_grid.complex_size()) {
    throw InvalidArgument("linear field: " + std::to_string(amplitude.size()) +
                          " mode amplitudes for a half spectrum of " +
                          std::to_string(plan_grid.complex_size()) + " modes");
  }
}
}  // namespace detail

/// delta_L,n = c_n w_n with w_n = r2c(noise)_n (fixed amplitude: c_n sqrt(N) w_n/|w_n|), the
/// linear density in the conventions' discrete normalisation, (V/N^2)<|delta_n|^2> = P(k_n).
/// `amplitude` from mode_amplitudes (c_0 = 0 gives delta_L,0 = 0). Real-space field:
/// real_from_spectrum. Throws InvalidArgument if noise, plan or amplitudes disagree in shape.
template <class T>
void linear_field(const FftPlan<T>& plan, const mesh::RealField<T>& noise,
                  const std::vector<double>& amplitude, mesh::ComplexField<T>& delta,
                  const LinearFieldOptions& options = {}) {
  const mesh::Grid& g = plan.grid();
  detail::check_linear_inputs(g, noise.grid, amplitude);
  if (!delta.allocated_on(g)) delta = mesh::ComplexField<T>(g);
  plan.forward(noise, delta);
  const double sqrt_n = std::sqrt(double(g.size()));
  const std::ptrdiff_t m = std::ptrdiff_t(g.complex_size());
  std::complex<T>* d = delta.data.data();
  const double* c = amplitude.data();
  const bool fixed = options.fixed_amplitude;
  DIFFPM_OMP(omp parallel for schedule(static))
  for (std::ptrdiff_t n = 0; n < m; ++n) {
    double re = d[n].real(), im = d[n].imag();
    detail::linear_field_mode(c[n], sqrt_n, fixed, re, im);
    d[n] = std::complex<T>(T(re), T(im));
  }
}

/// Vector-Jacobian product of linear_field. Given the spectrum gradient delta_bar (convention at
/// the top of this file) returns noise_bar = dL/dnoise(x) and, if amplitude_bar is not null,
/// dL/dc per half-spectrum entry, with the entry's multiplicity folded in, so that
/// dL/dtheta = sum_entries amplitude_bar[e] dc_e/dtheta for coefficients that are functions of
/// |k| (as mode_amplitudes makes them).
///
/// Derivation, with W = r2c(noise) (full spectrum) and D = g(W):
///  - W = F noise gives noise_bar(x) = Re sum_n Wbar_n e^{+ik.x} = c2r(Wbar) (unnormalised).
///  - free amplitude, D = c W: Wbar = c Dbar, dL/dc_n = Re(conj(Dbar_n) W_n).
///  - fixed, D = s u with s = c sqrt(N), u = W/|W|: du = i u Im(conj(u) dW)/|W|, so
///    Wbar = (s/|W|) Im(Dbar conj(u)) i u, dL/dc_n = sqrt(N) Re(conj(Dbar_n) u_n).
/// With free amplitude the map noise -> delta(x) is (1/N) F^H C F: symmetric, its own adjoint.
template <class T>
void linear_field_adjoint(const FftPlan<T>& plan, const mesh::RealField<T>& noise,
                          const std::vector<double>& amplitude,
                          const mesh::ComplexField<T>& delta_bar, mesh::RealField<T>& noise_bar,
                          std::vector<double>* amplitude_bar = nullptr,
                          const LinearFieldOptions& options = {}) {
  const mesh::Grid& g = plan.grid();
  detail::check_linear_inputs(g, noise.grid, amplitude);
  if (delta_bar.grid != g) throw InvalidArgument("linear field adjoint: delta_bar on another mesh");
  mesh::ComplexField<T> w(g);
  plan.forward(noise, w);
  if (amplitude_bar) amplitude_bar->assign(g.complex_size(), 0.0);
  const double sqrt_n = std::sqrt(double(g.size()));
  const int nzc = g.complex_nz();
  const double* c = amplitude.data();
  const bool fixed = options.fixed_amplitude;
  DIFFPM_OMP(omp parallel for schedule(static))
  for (int i = 0; i < g.n[0]; ++i)
    for (int j = 0; j < g.n[1]; ++j)
      for (int kz = 0; kz < nzc; ++kz) {
        const std::size_t n = g.complex_index(i, j, kz);
        double re = w.data[n].real(), im = w.data[n].imag();
        const double a = detail::linear_field_mode_adjoint(
            c[n], sqrt_n, fixed, spectrum_multiplicity(g, kz), re, im, delta_bar.data[n].real(),
            delta_bar.data[n].imag());
        w.data[n] = std::complex<T>(T(re), T(im));
        if (amplitude_bar) (*amplitude_bar)[n] = a;
      }
  if (!noise_bar.allocated_on(g)) noise_bar = mesh::RealField<T>(g);
  plan.inverse_destroying_input(w, noise_bar);
}

}  // namespace diffpm::ic
