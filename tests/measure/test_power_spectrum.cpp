// Power-spectrum estimator P = (V/N^2)|delta_n|^2: plane waves, white noise, mode counts against
// a brute-force full-grid count, Parseval, shot noise, CIC deconvolution, cross power and input
// validation.
#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/measure/power_spectrum.hpp"

namespace {

using diffpm::FftPlan;
using diffpm::InvalidArgument;
using diffpm::measure::BinSpacing;
using diffpm::measure::measure_cross_power;
using diffpm::measure::measure_power;
using diffpm::measure::PowerSpectrumOptions;
using diffpm::mesh::ComplexField;
using diffpm::mesh::Grid;
using diffpm::mesh::RealField;

constexpr double pi = 3.14159265358979323846;

// Non-cubic, cubic cells of 6.25 Mpc/h, so all three Nyquist wavenumbers are equal.
Grid test_grid() { return Grid({16, 12, 20}, {100.0, 75.0, 125.0}); }

template <class T>
struct Tolerance;
template <>
struct Tolerance<double> {
  // Binned sums of a few double products: ~1e-15; 1e-12 leaves room for the FFT.
  static constexpr double exact = 1e-12;
  // Power leaking into other bins through FFT round-off, relative to the peak: (1e-15)^2 N.
  static constexpr double leak = 1e-20;
};
template <>
struct Tolerance<float> {
  // The field is rounded to float (6e-8) and the float FFT adds ~1e-7 per pass: 1e-5 covers
  // the squared amplitudes with margin.
  static constexpr double exact = 1e-5;
  // Float round-off in other modes: amplitude ~ 1e-7 relative, power ~ 1e-14, times N.
  static constexpr double leak = 1e-9;
};

template <class T>
RealField<T> plane_wave(const Grid& g, const int m[3], double amplitude, double phase0 = 0.0) {
  RealField<T> f(g);
  for (int i = 0; i < g.n[0]; ++i)
    for (int j = 0; j < g.n[1]; ++j)
      for (int k = 0; k < g.n[2]; ++k) {
        const double p =
            2 * pi *
            (double(m[0]) * i / g.n[0] + double(m[1]) * j / g.n[1] + double(m[2]) * k / g.n[2]);
        f(i, j, k) = static_cast<T>(amplitude * std::cos(p + phase0));
      }
  return f;
}

template <class T>
RealField<T> white_noise(const Grid& g, double sigma, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, sigma);
  RealField<T> f(g);
  for (auto& v : f.data) v = static_cast<T>(normal(rng));
  return f;
}

double norm_k(const Grid& g, const int m[3]) {
  double k2 = 0.0;
  for (int d = 0; d < 3; ++d) {
    const double k = 2 * pi * m[d] / g.length[d];
    k2 += k * k;
  }
  return std::sqrt(k2);
}

int bin_of(const std::vector<double>& edges, double k) {
  for (std::size_t b = 0; b + 1 < edges.size(); ++b)
    if (edges[b] <= k && k < edges[b + 1]) return int(b);
  return -1;
}

}  // namespace

TEMPLATE_TEST_CASE("a plane wave puts A^2 V / 4 per mode into its bin only",
                   "[measure][power_spectrum]", float, double) {
  using T = TestType;
  const Grid g = test_grid();
  const FftPlan<T> plan(g, 1);
  const double amplitude = 0.8, volume = g.volume();
  // A cos(k.x) on the mesh has delta_n = A N / 2 at n = +-k, so each of the two modes carries
  // (V/N^2)(A N/2)^2 = A^2 V / 4. At the Nyquist plane +-k are one mode with delta_n = A N, so it
  // carries A^2 V. Either way sum_modes P = V <delta^2> (Parseval).
  struct Case {
    int m[3];
    bool nyquist;
    const char* what;
  };
  const Case cases[] = {{{2, -3, 4}, false, "0 < kz < Nyquist (weight 2)"},
                        {{3, 2, 0}, false, "kz = 0 plane (both modes stored)"},
                        {{-5, 0, 0}, false, "along x"},
                        {{1, 0, -10}, false, "kz = Nyquist plane, +-k stored apart (weight 1)"},
                        {{0, 0, 10}, true, "kz = Nyquist, kx = ky = 0: one self-conjugate mode"}};
  for (const auto& c : cases) {
    INFO(c.what);
    const RealField<T> delta = plane_wave<T>(g, c.m, amplitude, 0.3);
    PowerSpectrumOptions options;
    options.k_max = 1.0;  // beyond the Nyquist-plane mode's |k| = 0.507 h/Mpc
    const auto ps = measure_power(delta, plan, options);
    const double k = norm_k(g, c.m);
    const int b = bin_of(ps.k_edges, k);
    REQUIRE(b >= 0);
    REQUIRE(std::abs(k - ps.k_edges[b]) > 1e-6 * k);  // not on an edge
    REQUIRE(std::abs(k - ps.k_edges[b + 1]) > 1e-6 * k);
    // The self-conjugate wave loses its phase: cos(pi k + 0.3) = cos(0.3) (-1)^k.
    const double a_eff = c.nyquist ? amplitude * std::cos(0.3) : amplitude;
    const double total = c.nyquist ? a_eff * a_eff * volume : a_eff * a_eff * volume / 2.0;
    CHECK(ps.power[b] * double(ps.n_modes[b]) == Approx(total).epsilon(Tolerance<T>::exact));
    CHECK(ps.k_mean[b] >= ps.k_edges[b]);
    CHECK(ps.k_mean[b] < ps.k_edges[b + 1]);
    for (std::size_t o = 0; o < ps.size(); ++o) {
      if (int(o) == b) continue;
      INFO("bin " << o);
      CHECK(std::abs(ps.power[o]) < Tolerance<T>::leak * ps.power[b]);
    }
  }
}

TEMPLATE_TEST_CASE("white noise of variance sigma^2 per cell has flat P = sigma^2 V / N",
                   "[measure][power_spectrum]", float, double) {
  using T = TestType;
  const Grid g({32, 24, 40}, {200.0, 150.0, 250.0});
  const FftPlan<T> plan(g, 1);
  const double sigma = 1.5;
  const RealField<T> delta = white_noise<T>(g, sigma, 2024);
  const double expected = sigma * sigma * g.volume() / double(g.size());
  for (const auto spacing : {BinSpacing::linear, BinSpacing::logarithmic}) {
    PowerSpectrumOptions options;
    options.spacing = spacing;
    const auto ps = measure_power(delta, plan, options);
    REQUIRE(ps.size() > 5);
    for (std::size_t b = 0; b < ps.size(); ++b) {
      if (ps.n_modes[b] == 0) continue;
      // |delta_n|^2 is exponential (relative std 1) per independent complex mode, and a bin of
      // n_modes counts k and -k, so the bin mean has relative std sqrt(2 / n_modes): 5 sigma.
      const double bound = 5.0 * std::sqrt(2.0 / double(ps.n_modes[b]));
      INFO("bin " << b << ", " << ps.n_modes[b] << " modes, P = " << ps.power[b]);
      CHECK(std::abs(ps.power[b] / expected - 1.0) < bound);
    }
  }

  SECTION("Parseval: one bin over all nonzero modes holds V times the variance") {
    PowerSpectrumOptions all;
    all.k_min = 0.0;
    all.k_max = 2.0 * std::sqrt(3.0) * g.nyquist(0);
    all.n_bins = 1;
    const auto ps = measure_power(delta, plan, all);
    double mean = 0.0, mean_sq = 0.0;
    for (const auto x : delta.data) {
      mean += double(x);
      mean_sq += double(x) * double(x);
    }
    mean /= double(g.size());
    mean_sq /= double(g.size());
    CHECK(ps.n_modes[0] == std::int64_t(g.size()) - 1);
    CHECK(ps.power[0] * double(ps.n_modes[0]) ==
          Approx(g.volume() * (mean_sq - mean * mean)).epsilon(Tolerance<T>::exact));
  }
}

TEST_CASE("mode counts equal a brute-force count over the full k-grid",
          "[measure][power_spectrum]") {
  struct Case {
    Grid grid;
    PowerSpectrumOptions options;
    const char* what;
  };
  std::vector<Case> cases;
  for (const Grid& g : {test_grid(), Grid({9, 10, 7}, {90.0, 50.0, 77.0}), Grid::cube(12, 60.0)}) {
    PowerSpectrumOptions linear;
    cases.push_back({g, linear, "linear default"});
    PowerSpectrumOptions wide;
    wide.k_min = 0.0;
    wide.k_max = 0.9;
    wide.n_bins = 7;
    cases.push_back({g, wide, "linear from 0 past Nyquist"});
    PowerSpectrumOptions log;
    log.spacing = BinSpacing::logarithmic;
    cases.push_back({g, log, "log default"});
    PowerSpectrumOptions log5;
    log5.spacing = BinSpacing::logarithmic;
    log5.k_min = 0.1;
    log5.n_bins = 5;
    cases.push_back({g, log5, "log, 5 bins from 0.1"});
  }
  for (const auto& c : cases) {
    const Grid& g = c.grid;
    INFO(c.what << " on " << g.n[0] << "x" << g.n[1] << "x" << g.n[2]);
    const ComplexField<double> zero(g);
    const auto ps = measure_power(zero, c.options);
    std::vector<std::int64_t> count(ps.size(), 0);
    std::vector<double> k_sum(ps.size(), 0.0);
    for (int i = 0; i < g.n[0]; ++i)
      for (int j = 0; j < g.n[1]; ++j)
        for (int k = 0; k < g.n[2]; ++k) {  // the full grid, kz negative included
          if (i == 0 && j == 0 && k == 0) continue;
          const double kx = g.wavenumber(0, i), ky = g.wavenumber(1, j), kz = g.wavenumber(2, k);
          const double kk = std::sqrt(kx * kx + ky * ky + kz * kz);
          const int b = bin_of(ps.k_edges, kk);
          if (b < 0) continue;
          ++count[b];
          k_sum[b] += kk;
        }
    std::int64_t total = 0;
    for (std::size_t b = 0; b < ps.size(); ++b) {
      INFO("bin " << b);
      CHECK(ps.n_modes[b] == count[b]);
      if (count[b] > 0) CHECK(ps.k_mean[b] == Approx(k_sum[b] / double(count[b])).epsilon(1e-13));
      total += count[b];
    }
    CHECK(total > 0);
  }
}

TEMPLATE_TEST_CASE("default bins: linear width 2 pi / L_min up to the smallest Nyquist",
                   "[measure][power_spectrum]", float, double) {
  using T = TestType;
  const Grid g({16, 12, 24}, {100.0, 60.0, 120.0});
  const ComplexField<T> zero(g);
  const auto ps = measure_power(zero);
  const double dk = 2 * pi / 60.0, k_nyq = std::min({pi * 16 / 100, pi * 12 / 60, pi * 24 / 120});
  REQUIRE(ps.k_edges.size() >= 2);
  CHECK(ps.k_edges[0] == Approx(dk / 2));
  CHECK(ps.k_edges[1] - ps.k_edges[0] == Approx(dk));
  CHECK(ps.k_edges.back() <= k_nyq * (1 + 1e-12));
  CHECK(ps.k_edges.back() + dk > k_nyq);
  // Empty bins report their centre, zero power.
  for (std::size_t b = 0; b < ps.size(); ++b) {
    CHECK(ps.power[b] == 0.0);
    if (ps.n_modes[b] == 0)
      CHECK(ps.k_mean[b] == Approx(0.5 * (ps.k_edges[b] + ps.k_edges[b + 1])));
  }
}

TEMPLATE_TEST_CASE("shot noise subtraction and CIC deconvolution", "[measure][power_spectrum]",
                   float, double) {
  using T = TestType;
  const Grid g = test_grid();
  const FftPlan<T> plan(g, 1);

  SECTION("shot noise: P - V / N_particles in every bin") {
    const RealField<T> delta = white_noise<T>(g, 0.5, 7);
    const auto raw = measure_power(delta, plan);
    PowerSpectrumOptions options;
    options.shot_noise_particle_count = 12345.0;
    const auto sub = measure_power(delta, plan, options);
    const double shot = g.volume() / 12345.0;
    for (std::size_t b = 0; b < raw.size(); ++b) {
      CHECK(sub.power[b] == Approx(raw.power[b] - shot).epsilon(1e-12).margin(1e-12 * shot));
      CHECK(sub.n_modes[b] == raw.n_modes[b]);
    }
  }

  SECTION("CIC window values") {
    using diffpm::measure::power_window_cic;
    const double h = 6.25, k_nyq = pi / h;
    CHECK(power_window_cic(0.0, 0.0, 0.0, h, h, h) == 1.0);
    CHECK(power_window_cic(k_nyq, 0.0, 0.0, h, h, h) == Approx(4 / (pi * pi)).epsilon(1e-15));
    CHECK(power_window_cic(k_nyq, -k_nyq, k_nyq, h, h, h) ==
          Approx(std::pow(2 / pi, 6)).epsilon(1e-14));
    CHECK(power_window_cic(0.1f, 0.2f, -0.3f, 2.f, 3.f, 4.f) ==
          Approx(std::pow(std::sin(0.1) / 0.1 * std::sin(0.3) / 0.3 * std::sin(0.6) / 0.6, 2))
              .epsilon(1e-6));
  }

  SECTION("CIC deconvolution divides a plane wave's power by W(k)^2") {
    const int m[3] = {3, -2, 5};
    const RealField<T> delta = plane_wave<T>(g, m, 1.3);
    const auto raw = measure_power(delta, plan);
    PowerSpectrumOptions options;
    options.deconvolve_cic = true;
    const auto dec = measure_power(delta, plan, options);
    double w = 1.0;
    for (int d = 0; d < 3; ++d) {
      const double x = pi * m[d] / g.length[d] * g.cell_size(d);  // k_d h_d / 2
      w *= std::pow(std::sin(x) / x, 2);
    }
    const int b = bin_of(raw.k_edges, norm_k(g, m));
    REQUIRE(b >= 0);
    CHECK(dec.power[b] == Approx(raw.power[b] / (w * w)).epsilon(Tolerance<T>::exact));
  }
}

TEMPLATE_TEST_CASE("cross power: Re<a b*>, equal to the auto power for a = b",
                   "[measure][power_spectrum]", float, double) {
  using T = TestType;
  const Grid g = test_grid();
  const FftPlan<T> plan(g, 1);
  const RealField<T> a = white_noise<T>(g, 1.0, 99);

  SECTION("a with itself, and with -2 a") {
    const auto auto_a = measure_power(a, plan);
    const auto cross = measure_cross_power(a, a, plan);
    RealField<T> b = a;
    for (auto& x : b.data) x *= T(-2);
    const auto scaled = measure_cross_power(a, b, plan);
    const auto r = scaled.correlation();
    const auto t = scaled.transfer_ratio();
    REQUIRE(cross.size() == auto_a.size());
    for (std::size_t i = 0; i < cross.size(); ++i) {
      CHECK(cross.cross[i] == Approx(auto_a.power[i]).epsilon(1e-14));
      CHECK(cross.auto_a[i] == Approx(auto_a.power[i]).epsilon(1e-14));
      CHECK(cross.auto_b[i] == Approx(auto_a.power[i]).epsilon(1e-14));
      CHECK(cross.n_modes[i] == auto_a.n_modes[i]);
      CHECK(cross.k_mean[i] == auto_a.k_mean[i]);
      // -2 a: P_ab = -2 P_aa, P_bb = 4 P_aa exactly (scaling by 2 is exact in binary).
      CHECK(scaled.cross[i] == Approx(-2 * auto_a.power[i]).epsilon(1e-14));
      CHECK(t[i] == Approx(0.5).epsilon(1e-14));  // sqrt(P_aa / P_bb)
      CHECK(r[i] == Approx(-1.0).epsilon(1e-14));
    }
  }

  SECTION("cos and sin of the same wave are uncorrelated: Re<a b*> = 0") {
    const int m[3] = {2, 1, 3};
    const RealField<T> c = plane_wave<T>(g, m, 1.0), s = plane_wave<T>(g, m, 1.0, -pi / 2);
    const auto x = measure_cross_power(c, s, plan);
    const int b = bin_of(x.k_edges, norm_k(g, m));
    REQUIRE(b >= 0);
    CHECK(x.auto_a[b] == Approx(x.auto_b[b]).epsilon(Tolerance<T>::exact));
    CHECK(std::abs(x.cross[b]) < Tolerance<T>::exact * x.auto_a[b]);
    CHECK(std::abs(x.correlation()[b]) < Tolerance<T>::exact);
  }

  SECTION("the ComplexField and RealField overloads agree") {
    const RealField<T> b = white_noise<T>(g, 2.0, 100);
    ComplexField<T> ak(g), bk(g);
    plan.forward(a, ak);
    plan.forward(b, bk);
    const auto from_real = measure_cross_power(a, b, plan);
    const auto from_complex = measure_cross_power(ak, bk);
    for (std::size_t i = 0; i < from_real.size(); ++i)
      CHECK(from_real.cross[i] == from_complex.cross[i]);
  }
}

TEST_CASE("power spectrum rejects bad input, naming the value", "[measure][power_spectrum]") {
  const Grid g = test_grid();
  const FftPlan<double> plan(g, 1);
  const RealField<double> delta(g), other(Grid::cube(8, 50.0));
  const ComplexField<double> dk(g), other_k(Grid::cube(8, 50.0));
  auto check_message = [](const std::function<void()>& f, const std::string& text) {
    CHECK_THROWS_AS(f(), InvalidArgument);
    CHECK_THROWS_WITH(f(), Catch::Contains(text));
  };
  auto with = [](const std::function<void(PowerSpectrumOptions&)>& set) {
    PowerSpectrumOptions o;
    set(o);
    return o;
  };
  check_message([&] { measure_power(dk, with([](auto& o) { o.k_max = 0.0; })); }, "k_max = 0");
  check_message([&] { measure_power(dk, with([](auto& o) { o.k_max = -0.5; })); }, "k_max = -0.5");
  check_message([&] { measure_power(dk, with([](auto& o) { o.k_max = NAN; })); }, "k_max = nan");
  check_message([&] { measure_power(dk, with([](auto& o) { o.k_min = -0.1; })); }, "k_min = -0.1");
  check_message(
      [&] {
        measure_power(dk, with([](auto& o) {
                        o.k_min = 0.4;
                        o.k_max = 0.3;
                      }));
      },
      "k_min = 0.4");
  check_message([&] { measure_power(dk, with([](auto& o) { o.n_bins = 0; })); }, "n_bins = 0");
  check_message([&] { measure_power(dk, with([](auto& o) { o.bin_width = -1.0; })); },
                "bin_width = -1");
  check_message([&] { measure_power(dk, with([](auto& o) { o.bin_width = 5.0; })); },
                "bin_width = 5");
  check_message(
      [&] {
        measure_power(dk, with([](auto& o) {
                        o.bin_width = 0.1;
                        o.n_bins = 3;
                      }));
      },
      "n_bins = 3");
  check_message(
      [&] {
        measure_power(dk, with([](auto& o) {
                        o.spacing = BinSpacing::logarithmic;
                        o.k_min = 0.0;
                      }));
      },
      "k_min = 0");
  check_message(
      [&] {
        measure_power(dk, with([](auto& o) {
                        o.spacing = BinSpacing::logarithmic;
                        o.bin_width = 0.01;
                      }));
      },
      "bin_width = 0.01");
  check_message(
      [&] { measure_power(dk, with([](auto& o) { o.shot_noise_particle_count = 0.0; })); },
      "particle count = 0");
  check_message(
      [&] { measure_power(dk, with([](auto& o) { o.shot_noise_particle_count = -3.0; })); },
      "particle count = -3");
  check_message(
      [&] {
        measure_cross_power(dk, dk, with([](auto& o) { o.shot_noise_particle_count = 100.0; }));
      },
      "particle count = 100");
  check_message([&] { measure_power(other, plan); }, "8x8x8 cells");
  check_message([&] { measure_cross_power(delta, other, plan); }, "8x8x8 cells");
  check_message([&] { measure_cross_power(dk, other_k); }, "16x12x20 cells");
  check_message(
      [&] { measure_power(dk, with([](auto& o) { o.spacing = static_cast<BinSpacing>(4); })); },
      "bin spacing = 4");
}
