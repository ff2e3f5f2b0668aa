/// \file
/// \brief The linear density delta_L(k) from white noise, and its adjoint, on the device backend
/// (backend/device/): ic/linear_field.hpp's maps on device memory, with its per-mode arithmetic
/// (detail::linear_field_mode, detail::linear_field_mode_adjoint) and FFT conventions.
///
/// The coefficients c_n stay what mode_amplitudes computes on the host, in double; the caller
/// uploads them once (a device::Buffer<double> of grid.complex_size() values) and reuses them.
/// In the host emulation the results are the CPU's bit for bit (FFTW stands in for cuFFT and
/// every mode runs the same function); on a GPU they agree to FFT rounding.
#pragma once

#include <cmath>
#include <complex>
#include <cstddef>
#include <string>
#include <vector>

#include "diffpm/backend/device/fft.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/parallel.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/ic/linear_field.hpp"
#include "diffpm/mesh/grid.hpp"
#include "diffpm/mesh/view.hpp"

namespace diffpm::ic {

namespace device_detail {

/// InvalidArgument naming `name` unless v is a packed view with data on the plan's grid.
template <class V>
void check_view(const V& v, const mesh::Grid& grid, const char* what, const char* name) {
  if (!v.data) throw InvalidArgument(std::string(what) + ": " + name + " has no data");
  if (v.grid != grid) {
    throw InvalidArgument(std::string(what) + ": " + name + " is on " + v.grid.to_string() +
                          ", the FFT plan on " + grid.to_string());
  }
  if (!v.is_packed()) {
    throw InvalidArgument(std::string(what) + ": " + name +
                          " is not packed (the device FFT transforms packed views only)");
  }
}

inline void check_amplitudes(const device::Buffer<double>& amplitude, const mesh::Grid& grid,
                             const char* what) {
  if (amplitude.size() != grid.complex_size()) {
    throw InvalidArgument(std::string(what) + ": " + std::to_string(amplitude.size()) +
                          " mode amplitudes for a half spectrum of " +
                          std::to_string(grid.complex_size()) + " modes");
  }
}

/// d_n = linear_field_mode(c_n, d_n) over the half spectrum d (interleaved re, im).
template <class T>
void linear_field_modes(std::size_t modes, const double* c, double sqrt_n, bool fixed, T* d) {
  backend::for_each_index(Cuda{}, modes, [=] DIFFPM_LAMBDA(std::size_t n) {
    double re = d[2 * n], im = d[2 * n + 1];
    detail::linear_field_mode(c[n], sqrt_n, fixed, re, im);
    d[2 * n] = T(re);
    d[2 * n + 1] = T(im);
  });
}

/// w_n = Wbar_n in place, and amplitude_bar[n] (if not null), by linear_field_mode_adjoint.
template <class T>
void linear_field_modes_adjoint(std::size_t modes, int nz, const double* c, double sqrt_n,
                                bool fixed, const T* delta_bar, T* w, double* amplitude_bar) {
  const int nzc = nz / 2 + 1;
  backend::for_each_index(Cuda{}, modes, [=] DIFFPM_LAMBDA(std::size_t n) {
    const int kz = int(n % std::size_t(nzc));
    double re = w[2 * n], im = w[2 * n + 1];
    const double a = detail::linear_field_mode_adjoint(c[n], sqrt_n, fixed,
                                                       detail::spectrum_multiplicity(nz, kz), re,
                                                       im, delta_bar[2 * n], delta_bar[2 * n + 1]);
    w[2 * n] = T(re);
    w[2 * n + 1] = T(im);
    if (amplitude_bar) amplitude_bar[n] = a;
  });
}

}  // namespace device_detail

/// Device linear_field: delta_L = c r2c(noise) (fixed amplitude: c sqrt(N) w/|w|), as
/// ic::linear_field. noise and delta are packed views of device memory on the plan's grid;
/// `amplitude` holds mode_amplitudes' coefficients in device memory. Throws InvalidArgument
/// naming the argument that disagrees in shape.
template <class T>
void linear_field(Cuda, const FftPlan<T, Cuda>& plan, mesh::ConstRealView<T> noise,
                  const device::Buffer<double>& amplitude, mesh::ComplexView<T> delta,
                  const LinearFieldOptions& options = {}) {
  const char* what = "linear field (device)";
  const mesh::Grid& g = plan.grid();
  device_detail::check_view(noise, g, what, "noise");
  device_detail::check_view(delta, g, what, "delta");
  device_detail::check_amplitudes(amplitude, g, what);
  plan.forward(noise, delta);
  device_detail::linear_field_modes(g.complex_size(), amplitude.data(), std::sqrt(double(g.size())),
                                    options.fixed_amplitude, reinterpret_cast<T*>(delta.data));
}

/// Device linear_field_adjoint: from the spectrum gradient delta_bar (ic/linear_field.hpp's
/// convention) noise_bar = dL/dnoise(x) and, if amplitude_bar is not null, dL/dc per
/// half-spectrum entry with its multiplicity (resized to grid.complex_size() if needed). All
/// device memory; one r2c, one c2r and a half-spectrum scratch.
template <class T>
void linear_field_adjoint(Cuda, const FftPlan<T, Cuda>& plan, mesh::ConstRealView<T> noise,
                          const device::Buffer<double>& amplitude,
                          mesh::ConstComplexView<T> delta_bar, mesh::RealView<T> noise_bar,
                          device::Buffer<double>* amplitude_bar = nullptr,
                          const LinearFieldOptions& options = {}) {
  const char* what = "linear field adjoint (device)";
  const mesh::Grid& g = plan.grid();
  device_detail::check_view(noise, g, what, "noise");
  device_detail::check_view(delta_bar, g, what, "delta_bar");
  device_detail::check_view(noise_bar, g, what, "noise_bar");
  device_detail::check_amplitudes(amplitude, g, what);
  device::Buffer<std::complex<T>> w(g.complex_size());
  const mesh::ComplexView<T> wv = mesh::packed(w.data(), g);
  plan.forward(noise, wv);
  if (amplitude_bar && amplitude_bar->size() != g.complex_size()) {
    *amplitude_bar = device::Buffer<double>(g.complex_size());
  }
  device_detail::linear_field_modes_adjoint(
      g.complex_size(), g.n[2], amplitude.data(), std::sqrt(double(g.size())),
      options.fixed_amplitude, reinterpret_cast<const T*>(delta_bar.data),
      reinterpret_cast<T*>(w.data()), amplitude_bar ? amplitude_bar->data() : nullptr);
  plan.inverse_destroying_input(wv, noise_bar);
}

}  // namespace diffpm::ic
