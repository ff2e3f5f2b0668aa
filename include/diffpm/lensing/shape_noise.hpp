/// \file
/// \brief Gaussian shape noise for convergence and shear maps, and its flat angular power.
///
/// Convention: sigma_e is the rms intrinsic ellipticity per shear component, sigma_e^2 =
/// <e_1^2> = <e_2^2> (e.g. 0.26 for LSST in the DESC Science Requirements Document, Mandelbaum
/// et al. 2018, arXiv:1809.01669). Some papers quote the total instead,
/// sigma_e,tot^2 = <|e|^2> = 2 sigma_e^2: pass sigma_e,tot / sqrt(2) here for those.
///
/// A pixel of area A (arcmin^2) holding n_gal A galaxies averages their ellipticities, so each
/// shear component, and the Kaiser-Squires convergence built from them (a unitary map of the two
/// components onto E and B, lensing/kaiser_squires.hpp), carries Gaussian noise of rms
///   sigma_pix = sigma_e / sqrt(n_gal A)
/// independently per pixel. Its angular power is flat (white) and equals, in the estimator of
/// lensing/angular_power.hpp, A_sr sigma_pix^2 = sigma_e^2 / n_gal,sr: the usual
/// N_ell = sigma_e^2 / n with n per steradian (Kaiser 1992, ApJ 388, 272).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/lensing/angular_power.hpp"
#include "diffpm/lensing/flat_map.hpp"

namespace diffpm::lensing {

namespace detail {
inline void check_shape_noise(double sigma_e, double n_gal_per_arcmin2) {
  if (!std::isfinite(sigma_e) || sigma_e < 0.0) {
    throw InvalidArgument("shape noise: sigma_e = " + format_number(sigma_e) +
                          " (must be finite and >= 0)");
  }
  if (!std::isfinite(n_gal_per_arcmin2) || !(n_gal_per_arcmin2 > 0.0)) {
    throw InvalidArgument("shape noise: n_gal = " + format_number(n_gal_per_arcmin2) +
                          " per arcmin^2 (must be finite and > 0)");
  }
}

/// Adds sigma * N(0, 1) from `stream` to every pixel, computed in double and rounded to T once.
template <class T>
void add_pixel_noise(Map<T>& map, double sigma, std::uint64_t seed, MapStream stream,
                     const char* name) {
  check_map(map, name);
  const std::ptrdiff_t npix = std::ptrdiff_t(map.data.size());
  T* data = map.data.data();
  const bool threaded = map.geometry.pixels >= FftPlan2d<double>::min_threaded_pixels;
  DIFFPM_OMP(omp parallel for schedule(static) if(threaded))
  for (std::ptrdiff_t p = 0; p < npix; ++p) {
    data[p] = T(double(data[p]) + sigma * map_normal_deviate(seed, stream, std::uint64_t(p)));
  }
}
}  // namespace detail

/// Arcminutes per radian, 10800 / pi.
inline constexpr double arcmin_per_rad = 10800.0 / 3.14159265358979323846;

/// The rms shape noise of one pixel, sigma_e / sqrt(n_gal A_pix), A_pix the pixel area in
/// arcmin^2 and n_gal the galaxy density per arcmin^2 (sigma_e per component: file comment).
inline double shape_noise_sigma_pixel(const MapGeometry& geometry, double sigma_e,
                                      double n_gal_per_arcmin2) {
  geometry.validate();
  detail::check_shape_noise(sigma_e, n_gal_per_arcmin2);
  const double side_arcmin = geometry.pixel_rad() * arcmin_per_rad;
  return sigma_e / std::sqrt(n_gal_per_arcmin2 * side_arcmin * side_arcmin);
}

/// The angular power of the shape noise, C_N = sigma_e^2 / n_gal with n_gal per steradian
/// (n_gal_per_arcmin2 arcmin_per_rad^2); flat in ell.
inline double shape_noise_power(double sigma_e, double n_gal_per_arcmin2) {
  detail::check_shape_noise(sigma_e, n_gal_per_arcmin2);
  return sigma_e * sigma_e / (n_gal_per_arcmin2 * arcmin_per_rad * arcmin_per_rad);
}

/// Adds independent Gaussian noise of rms shape_noise_sigma_pixel to every pixel of a
/// convergence map. Reproducible: pixel p gets sigma_pix detail::map_normal_deviate(seed,
/// shape_noise_kappa, p), whatever the thread count, independent of a Gaussian map or initial
/// conditions made with the same seed (other Philox streams). Throws InvalidArgument for
/// sigma_e < 0, n_gal <= 0 (or not finite) and a map whose data does not match its geometry.
template <class T>
void add_shape_noise(Map<T>& kappa, double sigma_e, double n_gal_per_arcmin2, std::uint64_t seed) {
  const double sigma = shape_noise_sigma_pixel(kappa.geometry, sigma_e, n_gal_per_arcmin2);
  detail::add_pixel_noise(kappa, sigma, seed, detail::MapStream::shape_noise_kappa,
                          "shape noise: kappa map");
}

/// Adds independent noise of rms shape_noise_sigma_pixel to both shear components (streams
/// shape_noise_gamma1 and shape_noise_gamma2: the two components are independent of each other
/// and of add_shape_noise on a convergence map with the same seed).
template <class T>
void add_shape_noise(Map<T>& gamma1, Map<T>& gamma2, double sigma_e, double n_gal_per_arcmin2,
                     std::uint64_t seed) {
  if (gamma1.geometry != gamma2.geometry) {
    throw InvalidArgument("shape noise: gamma1 is " + std::to_string(gamma1.geometry.pixels) +
                          "^2 pixels on " + format_number(gamma1.geometry.fov_deg) +
                          " deg, gamma2 " + std::to_string(gamma2.geometry.pixels) + "^2 on " +
                          format_number(gamma2.geometry.fov_deg) + " deg");
  }
  const double sigma = shape_noise_sigma_pixel(gamma1.geometry, sigma_e, n_gal_per_arcmin2);
  detail::add_pixel_noise(gamma1, sigma, seed, detail::MapStream::shape_noise_gamma1,
                          "shape noise: gamma1 map");
  detail::add_pixel_noise(gamma2, sigma, seed, detail::MapStream::shape_noise_gamma2,
                          "shape noise: gamma2 map");
}

/// The noise alone: a zero map on `geometry` plus add_shape_noise (same values).
template <class T>
Map<T> shape_noise_map(const MapGeometry& geometry, double sigma_e, double n_gal_per_arcmin2,
                       std::uint64_t seed) {
  geometry.validate();
  Map<T> noise(geometry);
  add_shape_noise(noise, sigma_e, n_gal_per_arcmin2, seed);
  return noise;
}

}  // namespace diffpm::lensing
