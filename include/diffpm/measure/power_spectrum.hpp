/// \file
/// \brief Binned auto and cross power spectra of fields on the mesh, with optional CIC window
/// deconvolution and shot-noise subtraction.
///
/// Estimator (docs/conventions.md, "Fourier convention"): P(k_n) = (V/N^2) |delta_n|^2 with
/// delta_n the unnormalised forward DFT, averaged over the modes of a |k| bin. Modes are counted
/// over the full k-space: in the half spectrum, a mode with 0 < k_z index < n_z/2 stands for
/// itself and its conjugate -k (weight 2); the k_z = 0 plane and, for even n_z, the k_z = Nyquist
/// plane hold both members of each pair (or a self-conjugate mode) and count once. The zero mode
/// is excluded. A bin b holds the modes with k_edges[b] <= |k| < k_edges[b+1].
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/view.hpp"

namespace diffpm::measure {

enum class BinSpacing { linear, logarithmic };

/// Binning and corrections. Defaults (each std::nullopt):
/// - k_max: the smallest Nyquist wavenumber min_d pi n_d / L_d (beyond it the shell is
///   incomplete along that axis).
/// - linear bins: width dk = 2 pi / min_d L_d (the largest fundamental: a finer bin would catch
///   the modes of the long axes only), k_min = dk / 2, so bins are centred on multiples of dk and
///   in a cubic box no mode lies on an edge. Modes below k_min are not counted. Give either
///   bin_width or n_bins (then dk = (k_max - k_min) / n_bins); otherwise the number of bins is
///   floor((k_max - k_min) / dk).
/// - log bins: k_min = (1 - 1e-9) min_d 2 pi / L_d (just below the smallest nonzero |k|, so that
///   round-off does not drop it), n_bins = ceil(10 log10(k_max / k_min)) (10 per decade).
struct PowerSpectrumOptions {
  BinSpacing spacing = BinSpacing::linear;
  std::optional<double> k_min;      ///< h/Mpc, lower edge of the first bin
  std::optional<double> k_max;      ///< h/Mpc, upper edge of the last bin
  std::optional<double> bin_width;  ///< h/Mpc, linear bins only
  std::optional<int> n_bins;
  /// Divide |delta_n|^2 by W_CIC(k_n)^2 (power_window_cic) before averaging: for a density
  /// painted with cloud-in-cell.
  bool deconvolve_cic = false;
  /// If set, subtract the Poisson shot noise V / N_particles from every bin's power (after the
  /// deconvolution). Auto power only.
  std::optional<double> shot_noise_particle_count;
};

/// A binned auto power spectrum. Empty bins have n_modes = 0, power = 0 and k_mean = the bin's
/// centre (arithmetic for linear, geometric for log bins).
struct PowerSpectrum {
  std::vector<double> k_edges;        ///< h/Mpc, size() + 1 edges
  std::vector<double> k_mean;         ///< h/Mpc, mode-weighted mean |k| of each bin
  std::vector<double> power;          ///< (Mpc/h)^3
  std::vector<std::int64_t> n_modes;  ///< modes over the full k-space (k and -k both count)
  std::size_t size() const { return power.size(); }
};

/// A binned cross spectrum P_ab = (V/N^2) Re(a_n conj(b_n)) with the two auto spectra on the
/// same modes (same CIC option, no shot-noise subtraction).
struct CrossPowerSpectrum {
  std::vector<double> k_edges;
  std::vector<double> k_mean;
  std::vector<double> cross;   ///< P_ab, (Mpc/h)^3
  std::vector<double> auto_a;  ///< P_aa
  std::vector<double> auto_b;  ///< P_bb
  std::vector<std::int64_t> n_modes;
  std::size_t size() const { return cross.size(); }
  /// sqrt(P_aa / P_bb) per bin (0 where P_bb = 0): the transfer of amplitudes from b to a.
  std::vector<double> transfer_ratio() const {
    std::vector<double> t(size(), 0.0);
    for (std::size_t b = 0; b < size(); ++b)
      if (auto_b[b] > 0.0) t[b] = std::sqrt(auto_a[b] / auto_b[b]);
    return t;
  }
  /// r = P_ab / sqrt(P_aa P_bb) per bin (0 where either auto power is 0).
  std::vector<double> correlation() const {
    std::vector<double> r(size(), 0.0);
    for (std::size_t b = 0; b < size(); ++b)
      if (auto_a[b] > 0.0 && auto_b[b] > 0.0) r[b] = cross[b] / std::sqrt(auto_a[b] * auto_b[b]);
    return r;
  }
};

/// The CIC assignment window W(k) = prod_d sinc^2(k_d h_d / 2), sinc x = sin x / x, h_d the
/// cell size: the Fourier transform of the CIC kernel, a triangle of half-width h (Hockney &
/// Eastwood 1988; Jing 2005, ApJ 620, 559, with p = 2). A painted density's spectrum is W times
/// the true one (aliases aside), so its power is divided by W^2.
template <class R>
DIFFPM_HOST_DEVICE inline R power_window_cic(R kx, R ky, R kz, R hx, R hy, R hz) {
  using std::sin;
  const R x[3] = {kx * hx / R(2), ky * hy / R(2), kz * hz / R(2)};
  R w = R(1);
  for (int d = 0; d < 3; ++d) {
    const R s = x[d] == R(0) ? R(1) : sin(x[d]) / x[d];
    w *= s * s;
  }
  return w;
}

namespace detail {

inline void check_positive_finite(const std::optional<double>& v, const char* name) {
  if (v && (!(*v > 0.0) || !std::isfinite(*v))) {
    throw InvalidArgument(std::string("power spectrum: ") + name + " = " + format_number(*v) +
                          " (must be finite and > 0)");
  }
}

/// The bin edges that `options` describe on `grid` (see PowerSpectrumOptions); validates them.
inline std::vector<double> power_bin_edges(const mesh::Grid& grid,
                                           const PowerSpectrumOptions& options) {
  const double pi = 3.14159265358979323846;
  const char* where = "power spectrum: ";
  const int spacing = static_cast<int>(options.spacing);
  if (spacing < 0 || spacing > 1) {
    throw InvalidArgument(std::string(where) + "bin spacing = " + std::to_string(spacing) +
                          " is not a BinSpacing");
  }
  check_positive_finite(options.k_max, "k_max");
  check_positive_finite(options.bin_width, "bin_width");
  if (options.k_min && (!(*options.k_min >= 0.0) || !std::isfinite(*options.k_min))) {
    throw InvalidArgument(std::string(where) + "k_min = " + format_number(*options.k_min) +
                          " (must be finite and >= 0)");
  }
  if (options.n_bins && *options.n_bins < 1) {
    throw InvalidArgument(std::string(where) + "n_bins = " + std::to_string(*options.n_bins) +
                          " (must be >= 1)");
  }
  if (options.n_bins && options.bin_width) {
    throw InvalidArgument(std::string(where) + "both n_bins = " + std::to_string(*options.n_bins) +
                          " and bin_width = " + format_number(*options.bin_width) +
                          " are set (give one)");
  }
  const double min_length = std::min({grid.length[0], grid.length[1], grid.length[2]});
  const double k_max =
      options.k_max.value_or(std::min({grid.nyquist(0), grid.nyquist(1), grid.nyquist(2)}));
  std::vector<double> edges;
  if (options.spacing == BinSpacing::linear) {
    const double default_width = 2.0 * pi / min_length;
    const double k_min = options.k_min.value_or(0.5 * default_width);
    if (!(k_min < k_max)) {
      throw InvalidArgument(std::string(where) + "k_min = " + format_number(k_min) +
                            " h/Mpc is not below k_max = " + format_number(k_max) + " h/Mpc");
    }
    double width = options.bin_width.value_or(default_width);
    int n = 0;
    if (options.n_bins) {
      n = *options.n_bins;
      width = (k_max - k_min) / n;
    } else {
      // The relative 1e-12 keeps a last bin whose upper edge equals k_max up to round-off.
      const double count = std::floor((k_max - k_min) / width * (1.0 + 1e-12));
      if (count < 1.0) {
        throw InvalidArgument(
            std::string(where) + "bin_width = " + format_number(width) +
            " h/Mpc is wider than k_max - k_min = " + format_number(k_max - k_min) + " h/Mpc");
      }
      if (count > 1e7) {
        throw InvalidArgument(std::string(where) + format_number(count) +
                              " bins (bin_width = " + format_number(width) + " h/Mpc) is too many");
      }
      n = int(count);
    }
    edges.resize(n + 1);
    for (int b = 0; b <= n; ++b) edges[b] = k_min + b * width;
  } else {
    if (options.bin_width) {
      throw InvalidArgument(std::string(where) +
                            "bin_width = " + format_number(*options.bin_width) +
                            " is for linear bins; give n_bins for log bins");
    }
    const double min_fundamental =
        2.0 * pi / std::max({grid.length[0], grid.length[1], grid.length[2]});
    const double k_min = options.k_min.value_or((1.0 - 1e-9) * min_fundamental);
    if (!(k_min > 0.0)) {
      throw InvalidArgument(std::string(where) + "k_min = " + format_number(k_min) +
                            " h/Mpc (log bins need k_min > 0)");
    }
    if (!(k_min < k_max)) {
      throw InvalidArgument(std::string(where) + "k_min = " + format_number(k_min) +
                            " h/Mpc is not below k_max = " + format_number(k_max) + " h/Mpc");
    }
    const int n = options.n_bins.value_or(
        std::max(1, int(std::ceil(10.0 * std::log10(k_max / k_min) - 1e-9))));
    edges.resize(n + 1);
    const double step = std::log(k_max / k_min) / n;
    for (int b = 0; b <= n; ++b) edges[b] = k_min * std::exp(b * step);
    edges[n] = k_max;
  }
  return edges;
}

/// The bin of |k| among `edges` (k_edges[b] <= k < k_edges[b+1]), or -1.
inline int find_bin(const std::vector<double>& edges, double k) {
  if (!(k >= edges.front()) || !(k < edges.back())) return -1;
  return int(std::upper_bound(edges.begin(), edges.end(), k) - edges.begin()) - 1;
}

/// Sums over the modes of each bin: weight w (1 or 2), w |k|, and w value(i, j, kz) for each of
/// `n_values` values. Per-x-slab partial sums, added in slab order, so the result does not depend
/// on the thread count.
template <class Value>
void bin_modes(const mesh::Grid& g, const std::vector<double>& edges, int n_values,
               const Value& value, std::vector<double>& weights, std::vector<double>& k_sums,
               std::vector<std::vector<double>>& value_sums) {
  const int n_bins = int(edges.size()) - 1;
  const int nx = g.n[0], ny = g.n[1], nzc = g.complex_nz();
  const int stride = n_bins * (2 + n_values);
  std::vector<double> slabs(std::size_t(nx) * stride, 0.0);
  std::vector<double> kz_table(nzc), ky_table(ny);
  for (int kz = 0; kz < nzc; ++kz) kz_table[kz] = g.wavenumber(2, kz);
  for (int j = 0; j < ny; ++j) ky_table[j] = g.wavenumber(1, j);
  DIFFPM_OMP(omp parallel for schedule(static))
  for (int i = 0; i < nx; ++i) {
    double* slab = slabs.data() + std::size_t(i) * stride;
    const double kx = g.wavenumber(0, i);
    double values[8] = {};  // filled by value(); zeroed so GCC sees it initialised
    for (int j = 0; j < ny; ++j) {
      const double ky = ky_table[j];
      for (int kz = 0; kz < nzc; ++kz) {
        if (i == 0 && j == 0 && kz == 0) continue;  // the zero mode
        const double kzv = kz_table[kz];
        const double k = std::sqrt(kx * kx + ky * ky + kzv * kzv);
        const int b = find_bin(edges, k);
        if (b < 0) continue;
        const double w = (kz == 0 || g.is_nyquist(2, kz)) ? 1.0 : 2.0;
        value(i, j, kz, kx, ky, kzv, values);
        double* row = slab + std::size_t(b) * (2 + n_values);
        row[0] += w;
        row[1] += w * k;
        for (int v = 0; v < n_values; ++v) row[2 + v] += w * values[v];
      }
    }
  }
  weights.assign(n_bins, 0.0);
  k_sums.assign(n_bins, 0.0);
  value_sums.assign(n_values, std::vector<double>(n_bins, 0.0));
  for (int i = 0; i < nx; ++i) {
    const double* slab = slabs.data() + std::size_t(i) * stride;
    for (int b = 0; b < n_bins; ++b) {
      const double* row = slab + std::size_t(b) * (2 + n_values);
      weights[b] += row[0];
      k_sums[b] += row[1];
      for (int v = 0; v < n_values; ++v) value_sums[v][b] += row[2 + v];
    }
  }
}

inline double bin_centre(const std::vector<double>& edges, std::size_t b, BinSpacing spacing) {
  return spacing == BinSpacing::logarithmic ? std::sqrt(edges[b] * edges[b + 1])
                                            : 0.5 * (edges[b] + edges[b + 1]);
}

template <class T>
void check_spectrum(const mesh::ComplexField<T>& f, const char* name) {
  f.grid.validate();
  if (f.data.size() != f.grid.complex_size()) {
    throw InvalidArgument(std::string("power spectrum: ") + name + " holds " +
                          std::to_string(f.data.size()) + " modes, its mesh (" +
                          f.grid.to_string() + ") has " + std::to_string(f.grid.complex_size()));
  }
}

/// 1 / W_CIC(k)^2 for the deconvolution, or 1.
inline double cic_correction(const mesh::Grid& g, bool deconvolve, double kx, double ky,
                             double kz) {
  if (!deconvolve) return 1.0;
  const double w = power_window_cic(kx, ky, kz, g.cell_size(0), g.cell_size(1), g.cell_size(2));
  return 1.0 / (w * w);
}

template <class T>
void forward_checked(const mesh::RealField<T>& field, const FftPlan<T>& plan, const char* name,
                     mesh::ComplexField<T>& out) {
  if (field.grid != plan.grid()) {
    throw InvalidArgument(std::string("power spectrum: ") + name + " is on " +
                          field.grid.to_string() + ", the FFT plan on " + plan.grid().to_string());
  }
  if (field.data.size() != field.grid.size()) {
    throw InvalidArgument(std::string("power spectrum: ") + name + " holds " +
                          std::to_string(field.data.size()) + " cells, its mesh has " +
                          std::to_string(field.grid.size()));
  }
  out = mesh::ComplexField<T>(field.grid);
  plan.forward(field, out);
}

}  // namespace detail

/// The binned auto power spectrum of a field's half spectrum delta_k (FftPlan::forward of the
/// overdensity, unnormalised), in any layout (mesh/view.hpp: a ComplexField, a caller's array,
/// the complex view of FFTW's padded in-place buffer).
template <class T>
PowerSpectrum measure_power(mesh::ComplexView<T> delta_k,
                            const PowerSpectrumOptions& options = {}) {
  mesh::check_view(delta_k, "power spectrum", "delta_k");
  if (options.shot_noise_particle_count) {
    const double np = *options.shot_noise_particle_count;
    if (!(np > 0.0) || !std::isfinite(np)) {
      throw InvalidArgument("power spectrum: shot-noise particle count = " + format_number(np) +
                            " (must be finite and > 0)");
    }
  }
  const mesh::Grid& g = delta_k.grid;
  PowerSpectrum ps;
  ps.k_edges = detail::power_bin_edges(g, options);
  const double norm = g.volume() / (double(g.size()) * double(g.size()));  // V / N^2
  std::vector<double> weights, k_sums;
  std::vector<std::vector<double>> sums;
  detail::bin_modes(
      g, ps.k_edges, 1,
      [&](int i, int j, int kz, double kx, double ky, double kzv, double* out) {
        const std::complex<double> d(delta_k(i, j, kz));
        out[0] = std::norm(d) * detail::cic_correction(g, options.deconvolve_cic, kx, ky, kzv);
      },
      weights, k_sums, sums);
  const std::size_t n = weights.size();
  ps.k_mean.resize(n);
  ps.power.resize(n);
  ps.n_modes.resize(n);
  const double shot =
      options.shot_noise_particle_count ? g.volume() / *options.shot_noise_particle_count : 0.0;
  for (std::size_t b = 0; b < n; ++b) {
    ps.n_modes[b] = std::int64_t(weights[b]);
    if (weights[b] > 0.0) {
      ps.k_mean[b] = k_sums[b] / weights[b];
      ps.power[b] = norm * sums[0][b] / weights[b] - shot;
    } else {
      ps.k_mean[b] = detail::bin_centre(ps.k_edges, b, options.spacing);
      ps.power[b] = 0.0;
    }
  }
  return ps;
}

template <class T>
PowerSpectrum measure_power(const mesh::ComplexField<T>& delta_k,
                            const PowerSpectrumOptions& options = {}) {
  detail::check_spectrum(delta_k, "delta_k");
  return measure_power(mesh::view(delta_k), options);
}

/// The binned auto power spectrum of the overdensity delta on the mesh (transformed with
/// `plan`, which must be on delta's grid).
template <class T>
PowerSpectrum measure_power(const mesh::RealField<T>& delta, const FftPlan<T>& plan,
                            const PowerSpectrumOptions& options = {}) {
  mesh::ComplexField<T> delta_k;
  detail::forward_checked(delta, plan, "delta", delta_k);
  return measure_power(delta_k, options);
}

/// The binned cross spectrum Re<a b*> of two half spectra on the same mesh, with both autos.
/// Shot-noise subtraction is not defined here (it applies to auto power only) and throws. Views
/// in any layout (mesh/view.hpp).
template <class T>
CrossPowerSpectrum measure_cross_power(mesh::ComplexView<T> a_k,
                                       mesh::ConstComplexView<std::remove_const_t<T>> b_k,
                                       const PowerSpectrumOptions& options = {}) {
  mesh::check_view(a_k, "cross power", "a_k");
  mesh::check_view(b_k, "cross power", "b_k");
  if (a_k.grid != b_k.grid) {
    throw InvalidArgument("cross power: field a is on " + a_k.grid.to_string() + ", field b on " +
                          b_k.grid.to_string());
  }
  if (options.shot_noise_particle_count) {
    throw InvalidArgument("cross power: shot-noise particle count = " +
                          format_number(*options.shot_noise_particle_count) +
                          " is set, but shot-noise subtraction is for auto power only");
  }
  const mesh::Grid& g = a_k.grid;
  CrossPowerSpectrum ps;
  ps.k_edges = detail::power_bin_edges(g, options);
  const double norm = g.volume() / (double(g.size()) * double(g.size()));
  std::vector<double> weights, k_sums;
  std::vector<std::vector<double>> sums;
  detail::bin_modes(
      g, ps.k_edges, 3,
      [&](int i, int j, int kz, double kx, double ky, double kzv, double* out) {
        const std::complex<double> a(a_k(i, j, kz)), b(b_k(i, j, kz));
        const double c = detail::cic_correction(g, options.deconvolve_cic, kx, ky, kzv);
        out[0] = (a.real() * b.real() + a.imag() * b.imag()) * c;  // Re(a conj(b))
        out[1] = std::norm(a) * c;
        out[2] = std::norm(b) * c;
      },
      weights, k_sums, sums);
  const std::size_t n = weights.size();
  ps.k_mean.resize(n);
  ps.cross.assign(n, 0.0);
  ps.auto_a.assign(n, 0.0);
  ps.auto_b.assign(n, 0.0);
  ps.n_modes.resize(n);
  for (std::size_t b = 0; b < n; ++b) {
    ps.n_modes[b] = std::int64_t(weights[b]);
    if (weights[b] > 0.0) {
      ps.k_mean[b] = k_sums[b] / weights[b];
      ps.cross[b] = norm * sums[0][b] / weights[b];
      ps.auto_a[b] = norm * sums[1][b] / weights[b];
      ps.auto_b[b] = norm * sums[2][b] / weights[b];
    } else {
      ps.k_mean[b] = detail::bin_centre(ps.k_edges, b, options.spacing);
    }
  }
  return ps;
}

template <class T>
CrossPowerSpectrum measure_cross_power(const mesh::ComplexField<T>& a_k,
                                       const mesh::ComplexField<T>& b_k,
                                       const PowerSpectrumOptions& options = {}) {
  detail::check_spectrum(a_k, "a_k");
  detail::check_spectrum(b_k, "b_k");
  return measure_cross_power(mesh::view(a_k), mesh::view(b_k), options);
}

/// The binned cross spectrum of two real fields on the plan's mesh.
template <class T>
CrossPowerSpectrum measure_cross_power(const mesh::RealField<T>& a, const mesh::RealField<T>& b,
                                       const FftPlan<T>& plan,
                                       const PowerSpectrumOptions& options = {}) {
  mesh::ComplexField<T> a_k, b_k;
  detail::forward_checked(a, plan, "field a", a_k);
  detail::forward_checked(b, plan, "field b", b_k);
  return measure_cross_power(a_k, b_k, options);
}

namespace detail {
/// to(i, j, k) = from(i, j, k) over the mesh.
template <class T>
void copy_mesh(mesh::RealView<const T> from, mesh::RealView<T> to) {
  const int nx = from.grid.n[0], ny = from.grid.n[1], nz = from.grid.n[2];
  DIFFPM_OMP(omp parallel for collapse(2) schedule(static))
  for (int i = 0; i < nx; ++i) {
    for (int j = 0; j < ny; ++j) {
      for (int k = 0; k < nz; ++k) to(i, j, k) = from(i, j, k);
    }
  }
}
/// The half spectrum of a real view, in memory this holds (`k` views it).
template <class T>
struct OwnedSpectrum {
  mesh::AlignedVector<T> storage;
  mesh::ComplexView<const T> k;
};

/// FftPlan::forward of a real view of any layout: straight from the caller's memory when it has
/// the plan's input layout (out-of-place packed and aligned), else from a copy in the plan's
/// layout (an in-place plan would overwrite the caller's mesh).
template <class T>
OwnedSpectrum<T> forward_view(mesh::RealView<const T> field, const FftPlan<T>& plan,
                              const char* name) {
  mesh::check_view(field, "power spectrum", name);
  if (field.grid != plan.grid()) {
    throw InvalidArgument(std::string("power spectrum: ") + name + " is on " +
                          field.grid.to_string() + ", the FFT plan on " + plan.grid().to_string());
  }
  const mesh::Grid& g = field.grid;
  OwnedSpectrum<T> out;
  if (plan.layout() == FftLayout::in_place_padded) {
    out.storage.assign(mesh::padded_in_place_size(g), T(0));
    const auto padded = mesh::padded_in_place(out.storage.data(), g);
    copy_mesh(field, padded.real);
    plan.forward(padded.real, padded.complex);
    out.k = padded.complex;
    return out;
  }
  out.storage.assign(2 * g.complex_size(), T(0));
  const auto k = mesh::packed(reinterpret_cast<std::complex<T>*>(out.storage.data()), g);
  if (field.is_packed() && ::diffpm::detail::Fftw<T>::alignment_of(field.data) == 0) {
    plan.forward(field, k);
  } else {
    mesh::RealField<T> packed_copy(g);
    copy_mesh(field, mesh::view(packed_copy));
    plan.forward(mesh::view(packed_copy), k);
  }
  out.k = k;
  return out;
}

}  // namespace detail

/// measure_power of a real mesh in any layout (mesh/view.hpp), transformed with `plan` (on its
/// grid; either FftLayout). The caller's memory is only read: when it is not in the plan's
/// input layout, a copy is transformed.
template <class T>
PowerSpectrum measure_power(mesh::RealView<T> delta, const FftPlan<std::remove_const_t<T>>& plan,
                            const PowerSpectrumOptions& options = {}) {
  const auto spectrum = detail::forward_view<std::remove_const_t<T>>(delta, plan, "delta");
  return measure_power(spectrum.k, options);
}

/// measure_cross_power of two real meshes in any layout, transformed with `plan`.
template <class T>
CrossPowerSpectrum measure_cross_power(mesh::RealView<T> a,
                                       mesh::ConstRealView<std::remove_const_t<T>> b,
                                       const FftPlan<std::remove_const_t<T>>& plan,
                                       const PowerSpectrumOptions& options = {}) {
  using U = std::remove_const_t<T>;
  const auto a_k = detail::forward_view<U>(a, plan, "field a");
  const auto b_k = detail::forward_view<U>(b, plan, "field b");
  return measure_cross_power(a_k.k, b_k.k, options);
}

}  // namespace diffpm::measure
