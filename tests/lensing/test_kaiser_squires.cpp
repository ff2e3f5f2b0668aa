// Kaiser-Squires: the analytic single-mode shear, exact inversion with no B mode, orthogonality,
// and dot-product tests of both adjoints, on even (Nyquist lines) and odd maps.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "diffpm/lensing/angular_power.hpp"
#include "diffpm/lensing/kaiser_squires.hpp"
#include "diffpm/lensing/shape_noise.hpp"

using diffpm::lensing::KaiserSquires;
using diffpm::lensing::Map;
using diffpm::lensing::MapGeometry;

namespace {
template <class T>
double dot(const Map<T>& a, const Map<T>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.data.size(); ++i) s += double(a.data[i]) * double(b.data[i]);
  return s;
}

template <class T>
double rms_difference(const Map<T>& a, const Map<T>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.data.size(); ++i) {
    const double d = double(a.data[i]) - double(b.data[i]);
    s += d * d;
  }
  return std::sqrt(s / double(a.data.size()));
}

template <class T>
double rms(const Map<T>& a) {
  return std::sqrt(dot(a, a) / double(a.data.size()));
}

/// A zero-mean random map with power at every ell up to the corners (white), so that every
/// mode, the Nyquist lines included, is exercised.
template <class T>
Map<T> white_map(const MapGeometry& g, std::uint64_t seed) {
  return diffpm::lensing::generate_gaussian_map<T>(
      g, [](double) { return 1.0; }, seed);
}

template <class T>
constexpr double tolerance() {
  // double: FFT round-off, ~log2(n) eps per transform and a few transforms; 1e-12 leaves two
  // decades. float: the same in float eps (6e-8), times the same factor: 1e-5.
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}
}  // namespace

TEMPLATE_TEST_CASE("A single convergence mode gives the analytic Kaiser-Squires shear",
                   "[lensing][ks]", float, double) {
  // kappa = cos(ell.theta + phase) -> gamma1 = cos(2 phi) kappa, gamma2 = sin(2 phi) kappa with
  // phi the angle of ell from the theta_x axis (gamma = e^{2 i phi} kappa_ell per mode).
  const MapGeometry g(64, 4.0);
  KaiserSquires<TestType> ks(g);
  // (32, 5) lies on the Nyquist column: its wavevector is taken with l_x l_y >= 0, i.e.
  // (+32, 5), whose conjugate (-32, -5) is the same mode as (32, -5) (kaiser_squires.hpp).
  for (const auto& [mx, my] : {std::pair<int, int>{3, -2}, {0, 5}, {7, 7}, {-6, 0}, {32, 5}}) {
    Map<TestType> kappa(g), gamma1, gamma2;
    for (int iy = 0; iy < g.pixels; ++iy)
      for (int ix = 0; ix < g.pixels; ++ix)
        kappa(ix, iy) = TestType(std::cos(2 * M_PI * (mx * ix + my * iy) / g.pixels + 0.3));
    ks.shear_from_convergence(kappa, gamma1, gamma2);
    const double phi = std::atan2(double(my), double(mx));
    Map<TestType> want1(g), want2(g);
    for (std::size_t i = 0; i < kappa.data.size(); ++i) {
      want1.data[i] = TestType(std::cos(2 * phi) * kappa.data[i]);
      want2.data[i] = TestType(std::sin(2 * phi) * kappa.data[i]);
    }
    INFO("mode (" << mx << ", " << my << ")");
    CHECK(rms_difference(gamma1, want1) < tolerance<TestType>());
    CHECK(rms_difference(gamma2, want2) < tolerance<TestType>());
  }
}

TEMPLATE_TEST_CASE("Kaiser-Squires inversion returns kappa with no B mode", "[lensing][ks]", float,
                   double) {
  for (int n : {64, 63}) {  // even (Nyquist lines) and odd
    const MapGeometry g(n, 3.0);
    KaiserSquires<TestType> ks(g);
    const Map<TestType> kappa = white_map<TestType>(g, 21);
    Map<TestType> g1, g2, e, b;
    ks.shear_from_convergence(kappa, g1, g2);
    ks.convergence_from_shear(g1, g2, e, b);
    INFO("n = " << n);
    CHECK(rms_difference(e, kappa) < tolerance<TestType>() * rms(kappa));
    CHECK(rms(b) < tolerance<TestType>() * rms(kappa));
    // Orthogonal (|D| = 1 on every mode, the Nyquist ones included): the shear has the power of
    // the zero-mean convergence.
    CHECK(dot(g1, g1) + dot(g2, g2) ==
          Approx(dot(kappa, kappa)).epsilon(10 * tolerance<TestType>()));

    // A constant is lost (the mean is not determined by the shear) and nothing else.
    Map<TestType> shifted = kappa;
    for (auto& v : shifted.data) v += TestType(0.5);
    ks.shear_from_convergence(shifted, g1, g2);
    ks.convergence_from_shear(g1, g2, e, b);
    CHECK(rms_difference(e, kappa) < tolerance<TestType>() * rms(kappa));

    // A pure B mode: the shear pattern of kappa_B (the transpose with E_bar = 0) inverts to
    // kappa_E = 0, kappa_B = kappa.
    const Map<TestType> zero(g);
    ks.convergence_from_shear_adjoint(zero, kappa, g1, g2);
    ks.convergence_from_shear(g1, g2, e, b);
    CHECK(rms(e) < tolerance<TestType>() * rms(kappa));
    CHECK(rms_difference(b, kappa) < tolerance<TestType>() * rms(kappa));
  }
}

TEMPLATE_TEST_CASE("Kaiser-Squires adjoints pass the dot-product test", "[lensing][ks]", float,
                   double) {
  // <A x, y> = <x, A^T y> for random x, y (FINUFFT's adjointness test). Relative to
  // |A x| |y|, the two sides differ by round-off only: 1e-12 in double, 1e-5 in float
  // (tolerance() above). Random maps include the mean and every Nyquist mode.
  for (int n : {32, 31}) {
    const MapGeometry g(n, 2.0);
    KaiserSquires<TestType> ks(g);
    Map<TestType> x = white_map<TestType>(g, 1), y1 = white_map<TestType>(g, 2),
                  y2 = white_map<TestType>(g, 3), x2 = white_map<TestType>(g, 4);
    for (auto& v : x.data) v += TestType(0.25);  // a nonzero mean, which both operators drop
    INFO("n = " << n);

    // Forward: kappa -> (gamma1, gamma2).
    Map<TestType> a1, a2, at;
    ks.shear_from_convergence(x, a1, a2);
    ks.shear_from_convergence_adjoint(y1, y2, at);
    const double lhs = dot(a1, y1) + dot(a2, y2), rhs = dot(x, at);
    const double scale = std::sqrt((dot(a1, a1) + dot(a2, a2)) * (dot(y1, y1) + dot(y2, y2)));
    CHECK(std::abs(lhs - rhs) < tolerance<TestType>() * scale);

    // Inverse: (gamma1, gamma2) -> (kappa_E, kappa_B).
    Map<TestType> e, b, t1, t2;
    ks.convergence_from_shear(y1, y2, e, b);
    ks.convergence_from_shear_adjoint(x, x2, t1, t2);
    const double lhs2 = dot(e, x) + dot(b, x2), rhs2 = dot(y1, t1) + dot(y2, t2);
    const double scale2 = std::sqrt((dot(e, e) + dot(b, b)) * (dot(x, x) + dot(x2, x2)));
    CHECK(std::abs(lhs2 - rhs2) < tolerance<TestType>() * scale2);
  }
}

TEST_CASE("Kaiser-Squires keeps shape noise white and checks its maps", "[lensing][ks]") {
  using Catch::Matchers::Contains;
  // Noise of rms sigma per shear component becomes E and B noise of the same rms (the
  // transform is orthogonal), the convention of shape_noise.hpp. 128^2 pixels: the sample rms
  // is within 4 sqrt(1 / (2 N_pix)) = 2.2% of sigma.
  const MapGeometry g(128, 5.0);
  Map<double> g1(g), g2(g), e, b;
  diffpm::lensing::add_shape_noise(g1, g2, 0.26, 10.0, 3);
  diffpm::lensing::convergence_from_shear(g1, g2, e, b);
  const double sigma = diffpm::lensing::shape_noise_sigma_pixel(g, 0.26, 10.0);
  const double bound = 4.0 * std::sqrt(1.0 / (2.0 * double(g.size())));
  CHECK(std::abs(rms(e) / sigma - 1.0) < bound);
  CHECK(std::abs(rms(b) / sigma - 1.0) < bound);

  // The one-shot functions agree with the plan's, and an output may be the input map.
  KaiserSquires<double> ks(g);
  Map<double> s1, s2;
  diffpm::lensing::shear_from_convergence(e, s1, s2);
  Map<double> in_place = e, other;
  ks.shear_from_convergence(in_place, in_place, other);
  CHECK(in_place.data == s1.data);
  CHECK(other.data == s2.data);

  Map<double> wrong(MapGeometry(64, 5.0));
  CHECK_THROWS_WITH(ks.shear_from_convergence(wrong, s1, s2),
                    Contains("kappa is 64^2 pixels on 5 deg"));
  CHECK_THROWS_AS(ks.convergence_from_shear(g1, wrong, e, b), diffpm::InvalidArgument);
  Map<double> broken = g1;
  broken.data.resize(7);
  CHECK_THROWS_WITH(ks.convergence_from_shear_adjoint(g1, broken, s1, s2),
                    Contains("kappa_b_bar is 128^2 pixels on 5 deg with 7 values"));
}
