/// \file
/// \brief Flat-sky angular power spectra (auto and cross) of maps in ell bins, and Gaussian
/// random maps with a given C_ell.
///
/// Conventions (docs/conventions.md, "Flat-sky maps"). On an n x n map of side L = fov_rad
/// (solid angle Omega = L^2, N_pix = n^2 pixels at theta_j), the modes are
///   kappa_m = sum_j kappa(theta_j) e^{-i ell_m . theta_j},  ell_m = 2 pi m / L,
/// m = (m_x, m_y) in [-n/2, n/2)^2 (the unnormalised forward DFT of FftPlan2d), and the estimator
/// of a mode is
///   C(ell_m) = (Omega / N_pix^2) |kappa_m|^2     (cross: (Omega / N_pix^2) Re(a_m conj(b_m))),
/// the 2D analogue of P(k) = (V / N^2) |delta_k|^2. A Gaussian field whose modes have
/// <|kappa_m|^2> = C(|ell_m|) N_pix^2 / Omega (generate_gaussian_map) gives <estimate> = C
/// exactly. Pixel values are taken as point samples: no pixel-window or aliasing correction.
///
/// Mode counting. n_modes counts the modes of the full Fourier plane, m and -m separately (the
/// convention of measure/power_spectrum.hpp): a bin holding n_modes modes holds about
/// n_modes / 2 independent complex amplitudes of the real map. For a Gaussian field the
/// bin-averaged estimate has variance exactly 2 C^2 / n_modes (C constant over the bin): each
/// conjugate pair contributes 2 |kappa_m|^2, variance 4 C^2, and each self-conjugate mode
/// (m = -m mod n, possible only on the Nyquist lines of an even n) a real kappa_m^2, variance
/// 2 C^2. This is the flat-sky Knox (1995) formula. The zero mode (ell = 0, the map mean) is never
/// counted. A bin b holds the modes with ell_edges[b] <= |ell_m| < ell_edges[b+1].
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/backend/cpu/fft2d.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/ic/philox.hpp"
#include "diffpm/lensing/flat_map.hpp"
#include "diffpm/mesh/field.hpp"

namespace diffpm::lensing {

/// The lowest nonzero multipole of the map, 2 pi / fov_rad.
inline double ell_fundamental(const MapGeometry& g) { return 2.0 * M_PI / g.fov_rad(); }

/// The Nyquist multipole along an axis, pi n / fov_rad (the largest |ell_x| of the grid).
inline double ell_nyquist(const MapGeometry& g) { return M_PI * g.pixels / g.fov_rad(); }

/// A binned angular power spectrum (auto or cross). Empty bins have n_modes = 0, cl = 0 and
/// ell_mean = the arithmetic centre of the bin.
struct AngularPowerSpectrum {
  std::vector<double> ell_edges;      ///< size() + 1 edges
  std::vector<double> ell_mean;       ///< mean |ell| of the modes of each bin (mode-weighted)
  std::vector<double> cl;             ///< C_ell (steradians times the map's unit squared)
  std::vector<std::int64_t> n_modes;  ///< modes over the full Fourier plane (m and -m both)
  std::size_t size() const { return cl.size(); }
};

namespace detail {

inline void check_ell_range(double ell_min, double ell_max, int n_bins, const char* what,
                            bool positive_min) {
  const std::string where = std::string(what) + ": ";
  if (!std::isfinite(ell_min) || (positive_min ? !(ell_min > 0.0) : !(ell_min >= 0.0))) {
    throw InvalidArgument(where + "ell_min = " + format_number(ell_min) +
                          (positive_min ? " (must be finite and > 0)" : " (must be finite, >= 0)"));
  }
  if (!std::isfinite(ell_max) || !(ell_max > ell_min)) {
    throw InvalidArgument(where + "ell_max = " + format_number(ell_max) +
                          " (must be finite and > ell_min = " + format_number(ell_min) + ")");
  }
  if (n_bins < 1 || n_bins > 10000000) {
    throw InvalidArgument(where + "n_bins = " + std::to_string(n_bins) + " (must be in [1, 10^7])");
  }
}

inline void check_ell_edges(const std::vector<double>& edges) {
  if (edges.size() < 2) {
    throw InvalidArgument("angular power: " + std::to_string(edges.size()) +
                          " ell edges (need at least 2)");
  }
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const bool bad =
        !std::isfinite(edges[i]) || edges[i] < 0.0 || (i > 0 && !(edges[i] > edges[i - 1]));
    if (bad) {
      throw InvalidArgument("angular power: ell_edges[" + std::to_string(i) +
                            "] = " + format_number(edges[i]) +
                            " (edges must be finite, >= 0 and strictly increasing)");
    }
  }
}

template <class T>
void check_map(const Map<T>& map, const char* name) {
  map.geometry.validate();
  if (map.data.size() != map.geometry.size()) {
    throw InvalidArgument(std::string(name) + " holds " + std::to_string(map.data.size()) +
                          " pixels, its geometry (" + std::to_string(map.geometry.pixels) + "^2) " +
                          std::to_string(map.geometry.size()));
  }
}

/// Signed frequency index of row k_y of an n-point DFT: k_y for k_y < n/2 (rounded up), else
/// k_y - n, i.e. m in [-n/2, n/2) as in numpy.fft.fftfreq.
DIFFPM_HOST_DEVICE inline int signed_frequency(int k, int n) { return k < (n + 1) / 2 ? k : k - n; }

/// Weight of half-spectrum entry (k_y, k_x) in full-plane mode counts: columns k_x = 0 and (even
/// n) k_x = n/2 hold both members of each conjugate pair and count once, the others stand for
/// themselves and their implicit conjugate and count twice.
DIFFPM_HOST_DEVICE inline int half_spectrum_weight(int kx, int n) {
  return (kx == 0 || (n % 2 == 0 && kx == n / 2)) ? 1 : 2;
}

/// Philox streams (counter word 2) of the map generators. ic::white_noise uses word 2 = 0, so a
/// map made with the same seed as the initial conditions is independent of them, and so are a
/// Gaussian map and the shape noise added to it with one seed.
enum class MapStream : std::uint32_t {
  gaussian_map = 1,
  shape_noise_kappa = 2,
  shape_noise_gamma1 = 3,
  shape_noise_gamma2 = 4,
};

/// The N(0, 1) deviate of pixel `pixel` (MapGeometry::index) in `stream` for `seed`: one
/// Philox4x32-10 block with counter (pixel low, pixel high, stream, 0) and key (seed low, seed
/// high), then Box-Muller on its two 64-bit words as ic::white_noise_value (which explains the
/// choices), so every pixel is a pure function of (seed, stream, pixel). Unlike
/// white_noise_value it still uses libm's log and cos, so its last bits may differ between
/// glibc and CUDA (core/portable_math.hpp has the portable replacements).
DIFFPM_HOST_DEVICE inline double map_normal_deviate(std::uint64_t seed, MapStream stream,
                                                    std::uint64_t pixel) {
  const ic::PhiloxCounter ctr{
      {std::uint32_t(pixel), std::uint32_t(pixel >> 32), std::uint32_t(stream), 0u}};
  const ic::PhiloxKey key{{std::uint32_t(seed), std::uint32_t(seed >> 32)}};
  const ic::PhiloxCounter r = ic::philox4x32_10(ctr, key);
  const double u1 = ic::uniform_open_closed(r.v[0], r.v[1]);
  const double u2 = ic::uniform_closed_open(r.v[2], r.v[3]);
  constexpr double two_pi = 6.283185307179586476925286766559;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
}

/// Calls f(index, lx, ly, ell, bin, weight) for every half-spectrum mode of an n x n map on `g`
/// with rows k_y in [row_begin, row_end) that lies in a bin: index its half-spectrum entry,
/// (lx, ly) its multipole vector, bin b for edges[b] <= |ell| < edges[b+1], weight its
/// full-plane multiplicity (half_spectrum_weight). The zero mode (the map mean) is skipped. The
/// one definition of which modes a bin holds, for the estimator and for theory averages.
template <class F>
void for_each_binned_mode(const MapGeometry& g, const std::vector<double>& edges, int row_begin,
                          int row_end, F&& f) {
  const int n = g.pixels, nxc = n / 2 + 1;
  const double dl = 2.0 * M_PI / g.fov_rad();
  for (int ky = row_begin; ky < row_end; ++ky) {
    const double ly = dl * signed_frequency(ky, n);
    for (int kx = 0; kx < nxc; ++kx) {
      if (kx == 0 && ky == 0) continue;  // the map mean
      const double lx = dl * kx;
      const double ell = std::sqrt(lx * lx + ly * ly);
      if (!(ell >= edges.front()) || !(ell < edges.back())) continue;
      const int bin = int(std::upper_bound(edges.begin(), edges.end(), ell) - edges.begin()) - 1;
      f(std::size_t(ky) * nxc + kx, lx, ly, ell, bin, half_spectrum_weight(kx, n));
    }
  }
}

/// Bins (Omega / N_pix^2) Re(a_m conj(b_m)) over the half spectra a and b of maps on `g`.
/// Rows are summed in fixed blocks of 64, and the blocks added in order, so the binning adds no
/// dependence on the thread count.
template <class T>
AngularPowerSpectrum bin_cross_power(const MapGeometry& g, const std::complex<T>* a,
                                     const std::complex<T>* b, const std::vector<double>& edges) {
  const int n = g.pixels, n_bins = int(edges.size()) - 1;
  const double side = g.fov_rad() / (double(n) * double(n));  // Omega / N_pix^2 = side^2
  constexpr int block_rows = 64;
  const int n_blocks = (n + block_rows - 1) / block_rows;
  std::vector<double> ell_sums(std::size_t(n_blocks) * n_bins, 0.0);
  std::vector<double> value_sums(std::size_t(n_blocks) * n_bins, 0.0);
  std::vector<std::int64_t> counts(std::size_t(n_blocks) * n_bins, 0);
  DIFFPM_OMP(omp parallel for schedule(static) if(n >= FftPlan2d<T>::min_threaded_pixels))
  for (int block = 0; block < n_blocks; ++block) {
    double* ell_sum = ell_sums.data() + std::size_t(block) * n_bins;
    double* value_sum = value_sums.data() + std::size_t(block) * n_bins;
    std::int64_t* count = counts.data() + std::size_t(block) * n_bins;
    const int row_end = std::min(n, (block + 1) * block_rows);
    for_each_binned_mode(g, edges, block * block_rows, row_end,
                         [&](std::size_t m, double, double, double ell, int bin, int w) {
                           const double re = double(a[m].real()) * double(b[m].real()) +
                                             double(a[m].imag()) * double(b[m].imag());
                           count[bin] += w;
                           ell_sum[bin] += w * ell;
                           value_sum[bin] += w * re;
                         });
  }
  AngularPowerSpectrum out;
  out.ell_edges = edges;
  out.ell_mean.assign(n_bins, 0.0);
  out.cl.assign(n_bins, 0.0);
  out.n_modes.assign(n_bins, 0);
  std::vector<double> ell_total(n_bins, 0.0), value_total(n_bins, 0.0);
  for (int block = 0; block < n_blocks; ++block) {
    for (int bin = 0; bin < n_bins; ++bin) {
      const std::size_t i = std::size_t(block) * n_bins + bin;
      out.n_modes[bin] += counts[i];
      ell_total[bin] += ell_sums[i];
      value_total[bin] += value_sums[i];
    }
  }
  for (int bin = 0; bin < n_bins; ++bin) {
    if (out.n_modes[bin] == 0) {
      out.ell_mean[bin] = 0.5 * (edges[bin] + edges[bin + 1]);
      continue;
    }
    const double modes = double(out.n_modes[bin]);
    out.ell_mean[bin] = ell_total[bin] / modes;
    out.cl[bin] = side * side * value_total[bin] / modes;
  }
  return out;
}

}  // namespace detail

/// n_bins equal-width bins from ell_min to ell_max (n_bins + 1 edges; the last is ell_max
/// exactly). Throws InvalidArgument unless 0 <= ell_min < ell_max, both finite, n_bins >= 1.
inline std::vector<double> linear_ell_edges(double ell_min, double ell_max, int n_bins) {
  detail::check_ell_range(ell_min, ell_max, n_bins, "linear_ell_edges", false);
  std::vector<double> edges(std::size_t(n_bins) + 1);
  const double width = (ell_max - ell_min) / n_bins;
  for (int b = 0; b <= n_bins; ++b) edges[b] = ell_min + b * width;
  edges[n_bins] = ell_max;
  return edges;
}

/// n_bins bins of equal width in ln(ell) from ell_min to ell_max (the end edges are exact).
/// Throws InvalidArgument unless 0 < ell_min < ell_max, both finite, n_bins >= 1.
inline std::vector<double> log_ell_edges(double ell_min, double ell_max, int n_bins) {
  detail::check_ell_range(ell_min, ell_max, n_bins, "log_ell_edges", true);
  std::vector<double> edges(std::size_t(n_bins) + 1);
  const double step = std::log(ell_max / ell_min) / n_bins;
  for (int b = 0; b <= n_bins; ++b) edges[b] = ell_min * std::exp(b * step);
  edges[0] = ell_min;
  edges[n_bins] = ell_max;
  return edges;
}

/// The binned cross spectrum C_ab(ell) = (Omega / N_pix^2) Re(a_m conj(b_m)) averaged over the
/// modes of each bin (see the file comment). Symmetric in a and b; with b = a it is the auto
/// spectrum, bit for bit. Throws InvalidArgument if the maps' geometries differ or the edges are
/// not finite, >= 0 and strictly increasing.
template <class T>
AngularPowerSpectrum cross_angular_power_spectrum(const Map<T>& a, const Map<T>& b,
                                                  const std::vector<double>& ell_edges) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "angular power: float or double maps");
  detail::check_map(a, "angular power: map a");
  detail::check_map(b, "angular power: map b");
  if (a.geometry != b.geometry) {
    throw InvalidArgument("angular power: map a is " + std::to_string(a.geometry.pixels) +
                          "^2 pixels on " + format_number(a.geometry.fov_deg) + " deg, map b " +
                          std::to_string(b.geometry.pixels) + "^2 on " +
                          format_number(b.geometry.fov_deg) + " deg");
  }
  detail::check_ell_edges(ell_edges);
  const FftPlan2d<T> plan(a.geometry.pixels);
  mesh::AlignedVector<std::complex<T>> fa(plan.complex_size());
  plan.forward(a.data.data(), fa.data());
  if (&a == &b) return detail::bin_cross_power(a.geometry, fa.data(), fa.data(), ell_edges);
  mesh::AlignedVector<std::complex<T>> fb(plan.complex_size());
  plan.forward(b.data.data(), fb.data());
  return detail::bin_cross_power(a.geometry, fa.data(), fb.data(), ell_edges);
}

/// The average of f(ell_x, ell_y) over the modes of each bin, with the modes and weights of
/// angular_power_spectrum on a map of geometry `g`: what the estimator returns on average for a
/// field whose modes have expected power f(ell_m), e.g. a theory C(|ell|) times an anisotropic
/// pixel window. Bins without modes get 0. Serial; f is called once per half-spectrum mode.
template <class F>
std::vector<double> bin_average(const MapGeometry& g, const std::vector<double>& ell_edges, F&& f) {
  g.validate();
  detail::check_ell_edges(ell_edges);
  const int n_bins = int(ell_edges.size()) - 1;
  std::vector<double> sum(n_bins, 0.0), count(n_bins, 0.0);
  detail::for_each_binned_mode(g, ell_edges, 0, g.pixels,
                               [&](std::size_t, double lx, double ly, double, int bin, int w) {
                                 sum[bin] += w * double(f(lx, ly));
                                 count[bin] += w;
                               });
  for (int b = 0; b < n_bins; ++b) sum[b] = count[b] > 0 ? sum[b] / count[b] : 0.0;
  return sum;
}

/// The binned auto spectrum C(ell) = (Omega / N_pix^2) |kappa_m|^2 averaged over the modes of
/// each bin (see the file comment), for float and double maps (the FFT runs in T, the sums in
/// double).
template <class T>
AngularPowerSpectrum angular_power_spectrum(const Map<T>& map,
                                            const std::vector<double>& ell_edges) {
  return cross_angular_power_spectrum(map, map, ell_edges);
}

/// A Gaussian random map with angular power spectrum `cl` (a callable double(double ell),
/// evaluated at |ell_m| > 0 of every mode; values must be finite and >= 0) and zero mean.
///
/// Built like the 3D initial conditions (docs/conventions.md, "Fourier convention"): white noise
/// w_j ~ N(0, 1) per pixel (detail::map_normal_deviate, stream gaussian_map), then
/// kappa_m = w_m sqrt(C(|ell_m|) N_pix / Omega) for m != 0 and kappa_0 = 0, then the inverse DFT
/// with its 1/N_pix. Since <|w_m|^2> = N_pix, <(Omega / N_pix^2) |kappa_m|^2> = C(|ell_m|): the
/// estimator above is unbiased on these maps, mode by mode. The multiplier depends on |ell_m|
/// only, so conjugate pairs stay conjugate (a real map) also on the Nyquist lines.
///
/// Reproducible: the map is a function of (seed, pixels, fov, cl) only, bit for bit whatever the
/// OpenMP thread count (the FFTs run on one thread: FFTW may pick another algorithm for another
/// thread count); the noise depends on (seed, pixels) only. Computed in double; T = float
/// rounds the result, so float and double maps agree to float rounding. T defaults to double.
template <class T = double, class ClFunction>
Map<T> generate_gaussian_map(const MapGeometry& geometry, ClFunction&& cl, std::uint64_t seed) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "generate_gaussian_map: float or double maps");
  static_assert(std::is_invocable_r_v<double, ClFunction&, double>,
                "generate_gaussian_map: cl must be callable as double(double ell)");
  geometry.validate();
  const int n = geometry.pixels, nxc = n / 2 + 1;
  const std::ptrdiff_t npix = std::ptrdiff_t(geometry.size());
  std::vector<double> pixels(geometry.size());
  DIFFPM_OMP(omp parallel for schedule(static) if(n >= FftPlan2d<double>::min_threaded_pixels))
  for (std::ptrdiff_t p = 0; p < npix; ++p) {
    pixels[p] = detail::map_normal_deviate(seed, detail::MapStream::gaussian_map, std::uint64_t(p));
  }
  const FftPlan2d<double> plan(n, 1);
  mesh::AlignedVector<std::complex<double>> modes(plan.complex_size());
  plan.forward(pixels.data(), modes.data());
  const double dl = 2.0 * M_PI / geometry.fov_rad();
  const double omega = geometry.fov_rad() * geometry.fov_rad();
  // Serial: the user's callable may throw, and exceptions cannot leave an OpenMP region.
  for (int ky = 0; ky < n; ++ky) {
    const double ly = dl * detail::signed_frequency(ky, n);
    for (int kx = 0; kx < nxc; ++kx) {
      std::complex<double>& mode = modes[std::size_t(ky) * nxc + kx];
      if (kx == 0 && ky == 0) {
        mode = 0.0;
        continue;
      }
      const double lx = dl * kx;
      const double ell = std::sqrt(lx * lx + ly * ly);
      const double c = cl(ell);
      if (!std::isfinite(c) || c < 0.0) {
        throw InvalidArgument("generate_gaussian_map: C_ell(" + format_number(ell) +
                              ") = " + format_number(c) + " (must be finite and >= 0)");
      }
      mode *= std::sqrt(c * double(npix) / omega);
    }
  }
  plan.inverse_destroying_input(modes.data(), pixels.data());
  Map<T> out(geometry);
  const double inverse_norm = 1.0 / double(npix);
  for (std::ptrdiff_t p = 0; p < npix; ++p) out.data[p] = T(pixels[p] * inverse_norm);
  return out;
}

}  // namespace diffpm::lensing
