// Shape noise: the per-pixel rms and noise power formulas, white noise measured at C_N by the
// angular power estimator, reproducibility and independence of the streams, errors.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "diffpm/lensing/angular_power.hpp"
#include "diffpm/lensing/shape_noise.hpp"

using diffpm::lensing::Map;
using diffpm::lensing::MapGeometry;

namespace {
template <class T>
double correlation(const Map<T>& a, const Map<T>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.data.size(); ++i) {
    ab += double(a.data[i]) * b.data[i];
    aa += double(a.data[i]) * a.data[i];
    bb += double(b.data[i]) * b.data[i];
  }
  return ab / std::sqrt(aa * bb);
}
}  // namespace

TEST_CASE("Shape-noise rms per pixel and noise power follow sigma_e per component",
          "[lensing][noise]") {
  // 100 pixels on 5 deg: 3 arcmin pixels of 9 arcmin^2, 30 galaxies per arcmin^2 -> 270 per
  // pixel, sigma_pix = 0.26 / sqrt(270).
  const MapGeometry g(100, 5.0);
  CHECK(diffpm::lensing::shape_noise_sigma_pixel(g, 0.26, 30.0) ==
        Approx(0.26 / std::sqrt(270.0)).epsilon(1e-14));
  // C_N = sigma_e^2 / n with n per steradian: 30 arcmin^-2 = 30 (10800 / pi)^2 sr^-1.
  const double n_sr = 30.0 * std::pow(10800.0 / M_PI, 2);
  CHECK(diffpm::lensing::shape_noise_power(0.26, 30.0) ==
        Approx(0.26 * 0.26 / n_sr).epsilon(1e-14));
  // The two agree through the white-noise power A_pix sigma_pix^2 (shape_noise.hpp).
  const double sigma = diffpm::lensing::shape_noise_sigma_pixel(g, 0.26, 30.0);
  CHECK(g.pixel_area_sr() * sigma * sigma ==
        Approx(diffpm::lensing::shape_noise_power(0.26, 30.0)).epsilon(1e-13));
}

TEMPLATE_TEST_CASE("White shape noise has the flat power C_N in the angular power estimator",
                   "[lensing][noise]", float, double) {
  const MapGeometry g(128, 5.0);
  const double sigma_e = 0.26, n_gal = 10.0;
  const Map<TestType> noise = diffpm::lensing::shape_noise_map<TestType>(g, sigma_e, n_gal, 11);
  const double c_n = diffpm::lensing::shape_noise_power(sigma_e, n_gal);

  // Per bin: the estimate of a flat spectrum has relative rms sqrt(2 / n_modes) (angular_power.hpp,
  // "Mode counting"); 4 sigma in each of 8 bins.
  const auto edges = diffpm::lensing::linear_ell_edges(diffpm::lensing::ell_fundamental(g),
                                                       diffpm::lensing::ell_nyquist(g), 8);
  const auto cl = diffpm::lensing::angular_power_spectrum(noise, edges);
  for (std::size_t b = 0; b < cl.size(); ++b) {
    INFO("bin " << b << " n_modes " << cl.n_modes[b]);
    CHECK(std::abs(cl.cl[b] / c_n - 1.0) < 4.0 * std::sqrt(2.0 / double(cl.n_modes[b])));
  }
  // All modes together (N_pix - 1 of them, corners included): 4 sqrt(2 / 16383) = 4.4%.
  const auto all =
      diffpm::lensing::angular_power_spectrum(noise, {0.0, 2.0 * diffpm::lensing::ell_nyquist(g)});
  CHECK(std::abs(all.cl[0] / c_n - 1.0) < 4.0 * std::sqrt(2.0 / double(all.n_modes[0])));

  // Pixel statistics: mean within 4 sigma_pix / sqrt(N_pix), variance within 4 sqrt(2 / N_pix).
  const double sigma = diffpm::lensing::shape_noise_sigma_pixel(g, sigma_e, n_gal);
  double mean = 0.0, var = 0.0;
  for (TestType v : noise.data) mean += v;
  mean /= double(g.size());
  for (TestType v : noise.data) var += (v - mean) * (v - mean);
  var /= double(g.size());
  CHECK(std::abs(mean) < 4.0 * sigma / std::sqrt(double(g.size())));
  CHECK(std::abs(var / (sigma * sigma) - 1.0) < 4.0 * std::sqrt(2.0 / double(g.size())));
}

TEMPLATE_TEST_CASE("Shape noise is reproducible and its streams are independent",
                   "[lensing][noise]", float, double) {
  const MapGeometry g(64, 2.0);
  const auto a = diffpm::lensing::shape_noise_map<TestType>(g, 0.3, 20.0, 5);
  const auto b = diffpm::lensing::shape_noise_map<TestType>(g, 0.3, 20.0, 5);
  const auto c = diffpm::lensing::shape_noise_map<TestType>(g, 0.3, 20.0, 6);
  CHECK(a.data == b.data);
  CHECK(a.data != c.data);
  // Float equals double rounded: the noise is computed in double.
  const auto d = diffpm::lensing::shape_noise_map<double>(g, 0.3, 20.0, 5);
  for (std::size_t i = 0; i < a.data.size(); ++i) CHECK(a.data[i] == TestType(d.data[i]));

  // add_shape_noise adds the same noise to an existing map.
  const auto signal = diffpm::lensing::generate_gaussian_map<TestType>(
      g, [](double) { return 1e-9; }, 5);
  Map<TestType> noisy = signal;
  diffpm::lensing::add_shape_noise(noisy, 0.3, 20.0, 5);
  for (std::size_t i = 0; i < a.data.size(); ++i) {
    CHECK(noisy.data[i] == TestType(double(signal.data[i]) + d.data[i]));
  }

  // Independent streams with one seed: kappa noise vs the Gaussian map, gamma1 vs gamma2 vs
  // kappa noise. Independent unit-variance samples of 4096 pixels have correlation ~ N(0,
  // 1/4096): |r| < 4 / 64.
  Map<TestType> g1(g), g2(g);
  diffpm::lensing::add_shape_noise(g1, g2, 0.3, 20.0, 5);
  const double bound = 4.0 / std::sqrt(double(g.size()));
  CHECK(std::abs(correlation(a, signal)) < bound);
  CHECK(std::abs(correlation(g1, g2)) < bound);
  CHECK(std::abs(correlation(g1, a)) < bound);
  CHECK(std::abs(correlation(g2, a)) < bound);
}

TEST_CASE("Shape noise rejects bad parameters with typed errors", "[lensing][noise][errors]") {
  using Catch::Matchers::Contains;
  const MapGeometry g(16, 1.0);
  Map<double> m(g);
  CHECK_THROWS_WITH(diffpm::lensing::add_shape_noise(m, -0.1, 10.0, 1), Contains("sigma_e = -0.1"));
  CHECK_THROWS_WITH(diffpm::lensing::add_shape_noise(m, std::nan(""), 10.0, 1),
                    Contains("sigma_e = nan"));
  CHECK_THROWS_WITH(diffpm::lensing::shape_noise_power(0.26, 0.0), Contains("n_gal = 0"));
  CHECK_THROWS_WITH(diffpm::lensing::shape_noise_map<float>(g, 0.26, -3.0, 1),
                    Contains("n_gal = -3"));
  Map<double> other(MapGeometry(16, 2.0));
  CHECK_THROWS_WITH(diffpm::lensing::add_shape_noise(m, other, 0.26, 10.0, 1),
                    Contains("gamma2 16^2 on 2 deg"));
  // sigma_e = 0 is allowed and adds nothing.
  diffpm::lensing::add_shape_noise(m, 0.0, 10.0, 1);
  for (double v : m.data) CHECK(v == 0.0);
}
