// Linear density from white noise: shell power against P_lin within cosmic variance, fixed
// amplitude, Hermitian symmetry, adjoints (dot-product tests) and bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <limits>
#include <vector>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/ic/linear_field.hpp"
#include "diffpm/ic/white_noise.hpp"

using diffpm::FftPlan;
using diffpm::ic::LinearFieldOptions;
using diffpm::mesh::ComplexField;
using diffpm::mesh::Grid;
using diffpm::mesh::RealField;

namespace {

const diffpm::cosmology::Cosmology<double>& planck() {
  static const diffpm::cosmology::Cosmology<double> c{diffpm::cosmology::Parameters<double>{}};
  return c;
}

double k_of(const Grid& g, int i, int j, int kz) {
  const double kx = g.wavenumber(0, i), ky = g.wavenumber(1, j), kz_ = g.wavenumber(2, kz);
  return std::sqrt(kx * kx + ky * ky + kz_ * kz_);
}

template <class T>
double dot(const RealField<T>& a, const RealField<T>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a.data[i]) * b.data[i];
  return s;
}

}  // namespace

TEMPLATE_TEST_CASE("Shell-averaged power of delta_L matches P_lin within cosmic variance",
                   "[ic][linear_field]", float, double) {
  const Grid grid({48, 40, 32}, {300.0, 250.0, 200.0});
  const double a = 0.5;
  const FftPlan<TestType> plan(grid);
  const auto c = diffpm::ic::mode_amplitudes(grid, planck(), a);
  const auto noise = diffpm::ic::white_noise<TestType>(grid, 42u);
  ComplexField<TestType> delta;
  diffpm::ic::linear_field(plan, noise, c, delta);
  CHECK(delta(0, 0, 0) == std::complex<TestType>(0));

  // Shells of width the largest fundamental, up to the smallest Nyquist wavenumber.
  const double pi = 3.141592653589793, dk = 2.0 * pi / 200.0, kmax = pi * 32 / 200.0;
  const int nbins = int(kmax / dk);
  std::vector<double> meas(nbins, 0), expect(nbins, 0), expect2(nbins, 0);
  const double scale = grid.volume() / (double(grid.size()) * double(grid.size()));
  for (int i = 0; i < grid.n[0]; ++i)
    for (int j = 0; j < grid.n[1]; ++j)
      for (int kz = 0; kz < grid.complex_nz(); ++kz) {
        const double k = k_of(grid, i, j, kz);
        const int b = int(k / dk);
        if (k == 0 || b >= nbins) continue;
        const int m = diffpm::ic::spectrum_multiplicity(grid, kz);
        const double p = planck().linear_power(k, a);
        meas[b] += m * scale * std::norm(std::complex<double>(delta(i, j, kz)));
        expect[b] += m * p;
        expect2[b] += m * p * p;
      }
  // Over the full spectrum each independent complex mode appears twice (n and -n), and
  // (V/N^2)|delta_n|^2 is exponential with mean and rms P_n, so the sum over a shell has
  // variance 4 sum_indep P^2 = 2 sum_full P^2: relative sigma = sqrt(2 sum P^2) / sum P
  // (1/sqrt(modes) for flat P: 25% in the first shell, 1.5% in the last). Each shell within
  // 4 sigma, and chi^2 over the shells within 5 sigma of its mean (sigma = sqrt(2 nbins)).
  double chi2 = 0;
  for (int b = 0; b < nbins; ++b) {
    if (expect[b] == 0) continue;
    const double ratio = meas[b] / expect[b], sigma = std::sqrt(2.0 * expect2[b]) / expect[b];
    INFO("shell " << b << " ratio " << ratio << " sigma " << sigma);
    CHECK(std::abs(ratio - 1.0) < 4.0 * sigma);
    chi2 += (ratio - 1) * (ratio - 1) / (sigma * sigma);
  }
  CHECK(chi2 < nbins + 5.0 * std::sqrt(2.0 * nbins));
}

TEMPLATE_TEST_CASE("Fixed amplitude gives P_lin on every mode; phases kept; Hermitian field",
                   "[ic][linear_field]", float, double) {
  // Forming delta from |w| and |delta|^2 takes a handful of roundings: 1e-13 in double,
  // 1e-6 in float (eps_float = 6e-8 times ~10 operations, measured 1.2e-7).
  const double tol = std::is_same<TestType, float>::value ? 1e-6 : 1e-13;
  const Grid grid({16, 12, 10}, {100.0, 80.0, 60.0});
  const FftPlan<TestType> plan(grid);
  const auto c = diffpm::ic::mode_amplitudes(grid, planck());
  const auto noise = diffpm::ic::white_noise<TestType>(grid, 7u);
  ComplexField<TestType> fixed, free;
  diffpm::ic::linear_field(plan, noise, c, fixed, LinearFieldOptions{true});
  diffpm::ic::linear_field(plan, noise, c, free);
  const double scale = grid.volume() / (double(grid.size()) * double(grid.size()));
  double worst = 0, worst_phase = 0;
  for (int i = 0; i < grid.n[0]; ++i)
    for (int j = 0; j < grid.n[1]; ++j)
      for (int kz = 0; kz < grid.complex_nz(); ++kz) {
        const double k = k_of(grid, i, j, kz);
        const std::complex<double> d(fixed(i, j, kz)), f(free(i, j, kz));
        if (k == 0) {
          CHECK(d == 0.0);
          continue;
        }
        worst = std::max(worst, std::abs(scale * std::norm(d) / planck().linear_power(k, 1.0) - 1));
        worst_phase = std::max(worst_phase, std::abs(std::arg(d * std::conj(f))));
      }
  CHECK(worst < tol);
  CHECK(worst_phase < 10 * tol);

  // Hermitian: the kz = 0 and Nyquist planes hold n and -n; they must be conjugate, and the
  // round trip r2c((1/N) c2r(delta)) must give delta back (it does only for a Hermitian array).
  for (int kz : {0, grid.n[2] / 2})
    for (int i = 0; i < grid.n[0]; ++i)
      for (int j = 0; j < grid.n[1]; ++j) {
        const auto x = std::complex<double>(free(i, j, kz));
        const auto y = std::complex<double>(
            free((grid.n[0] - i) % grid.n[0], (grid.n[1] - j) % grid.n[1], kz));
        CHECK(std::abs(x - std::conj(y)) <= tol * 10 * (std::abs(x) + 1e-30));
      }
  RealField<TestType> real;
  diffpm::ic::real_from_spectrum(plan, free, real);
  ComplexField<TestType> back(grid);
  plan.forward(real, back);
  double err = 0, norm = 0;
  for (std::size_t n = 0; n < back.size(); ++n) {
    err += std::norm(std::complex<double>(back.data[n]) - std::complex<double>(free.data[n]));
    norm += std::norm(std::complex<double>(free.data[n]));
  }
  // FFT round-off: ~eps log2(N) relative in L2: 1e-14 (double), 1e-6 (float); margin 10.
  CHECK(std::sqrt(err / norm) < (std::is_same<TestType, float>::value ? 1e-5 : 1e-13));
}

TEMPLATE_TEST_CASE("Adjoint of noise -> delta_L(x) and of the mode amplitudes (dot products)",
                   "[ic][linear_field][adjoint]", float, double) {
  // Double: sums of ~1e4 products with FFT round-off eps log N ~ 1e-15, 1e-10 leaves margin.
  // Float: FFT round-off ~ 6e-8 log2(N) ~ 1e-6 per value, amplified by cancellation in the
  // dot product of random fields and, with fixed amplitude, by 1/|W| on the few modes with
  // small |W| (measured 4e-6): 3e-5.
  const double tol = std::is_same<TestType, float>::value ? 3e-5 : 1e-10;
  const Grid grid({12, 10, 8}, {60.0, 50.0, 40.0});
  const FftPlan<TestType> plan(grid);
  const auto c = diffpm::ic::mode_amplitudes(grid, planck());
  const auto w0 = diffpm::ic::white_noise<TestType>(grid, 1u);    // base point
  const auto v = diffpm::ic::white_noise<TestType>(grid, 2u);     // tangent
  const auto ybar = diffpm::ic::white_noise<TestType>(grid, 3u);  // cotangent on delta(x)
  ComplexField<TestType> dbar;
  diffpm::ic::real_from_spectrum_adjoint(plan, ybar, dbar);

  SECTION("free amplitude: linear map, symmetric") {
    ComplexField<TestType> jv_k;
    RealField<TestType> jv, wbar, jy;
    diffpm::ic::linear_field(plan, v, c, jv_k);
    diffpm::ic::real_from_spectrum(plan, jv_k, jv);
    std::vector<double> cbar;
    diffpm::ic::linear_field_adjoint(plan, w0, c, dbar, wbar, &cbar);
    const double lhs = dot(ybar, jv), rhs = dot(wbar, v);
    CHECK(lhs == Approx(rhs).epsilon(tol));
    // (1/N) F^H C F is symmetric: the adjoint applied to ybar is the forward map of ybar.
    diffpm::ic::linear_field(plan, ybar, c, jv_k);
    diffpm::ic::real_from_spectrum(plan, jv_k, jy);
    double diff = 0, norm = 0;
    for (std::size_t n = 0; n < jy.size(); ++n) {
      diff += std::pow(double(jy.data[n]) - wbar.data[n], 2);
      norm += std::pow(double(jy.data[n]), 2);
    }
    CHECK(std::sqrt(diff / norm) < tol);

    // Amplitudes: delta is linear in c; perturb c by a smooth function of |k| (as any
    // dc/dtheta is) and compare <ybar, J_c dc> with sum cbar dc.
    std::vector<double> dc(c.size());
    for (int i = 0; i < grid.n[0]; ++i)
      for (int j = 0; j < grid.n[1]; ++j)
        for (int kz = 0; kz < grid.complex_nz(); ++kz) {
          const std::size_t n = grid.complex_index(i, j, kz);
          dc[n] = c[n] * std::cos(7.0 * k_of(grid, i, j, kz));
        }
    ComplexField<TestType> jc_k;
    RealField<TestType> jc;
    diffpm::ic::linear_field(plan, w0, dc, jc_k);
    diffpm::ic::real_from_spectrum(plan, jc_k, jc);
    double sum = 0;
    for (std::size_t n = 0; n < dc.size(); ++n) sum += cbar[n] * dc[n];
    CHECK(dot(ybar, jc) == Approx(sum).epsilon(tol));
  }

  SECTION("fixed amplitude: nonlinear in the noise; JVP by hand, checked by differences") {
    const LinearFieldOptions fixed{true};
    // JVP: dD = s i u Im(conj(u) dW) / |W|, s = c sqrt(N), u = W/|W|, W = r2c(w0), dW = r2c(v).
    ComplexField<TestType> W(grid), dW(grid), dD(grid);
    plan.forward(w0, W);
    plan.forward(v, dW);
    const double sqrt_n = std::sqrt(double(grid.size()));
    for (std::size_t n = 0; n < W.size(); ++n) {
      const std::complex<double> w(W.data[n]), dw(dW.data[n]);
      const double r = std::abs(w);
      const std::complex<double> u = w / r;
      dD.data[n] = std::complex<TestType>(c[n] * sqrt_n / r * std::imag(std::conj(u) * dw) *
                                          std::complex<double>(0, 1) * u);
    }
    RealField<TestType> jv, wbar;
    diffpm::ic::real_from_spectrum(plan, dD, jv);
    std::vector<double> cbar;
    diffpm::ic::linear_field_adjoint(plan, w0, c, dbar, wbar, &cbar, fixed);
    CHECK(dot(ybar, jv) == Approx(dot(wbar, v)).epsilon(tol));

    if (std::is_same<TestType, double>::value) {
      // Central differences on unit-variance noise: truncation is h^2 times the third
      // derivative, large for the few modes with small |W| (w/|w| curves like 1/|W|^2): measured
      // relative error 8e-6 at h = 1e-4 and 1e-9 at h = 1e-6 (h^2 scaling), where round-off
      // (1e-16/h) is 1e-10; 1e-7 covers both with margin.
      const double h = 1e-6;
      RealField<TestType> wp = w0, wm = w0, yp, ym;
      for (std::size_t n = 0; n < wp.size(); ++n) {
        wp.data[n] += TestType(h) * v.data[n];
        wm.data[n] -= TestType(h) * v.data[n];
      }
      ComplexField<TestType> dp, dm;
      diffpm::ic::linear_field(plan, wp, c, dp, fixed);
      diffpm::ic::linear_field(plan, wm, c, dm, fixed);
      diffpm::ic::real_from_spectrum(plan, dp, yp);
      diffpm::ic::real_from_spectrum(plan, dm, ym);
      CHECK((dot(ybar, yp) - dot(ybar, ym)) / (2 * h) == Approx(dot(ybar, jv)).epsilon(1e-7));
    }

    // Amplitudes: still linear in c.
    std::vector<double> dc(c.size());
    for (int i = 0; i < grid.n[0]; ++i)
      for (int j = 0; j < grid.n[1]; ++j)
        for (int kz = 0; kz < grid.complex_nz(); ++kz) {
          const std::size_t n = grid.complex_index(i, j, kz);
          dc[n] = c[n] * std::sin(5.0 * k_of(grid, i, j, kz) + 0.3);
        }
    ComplexField<TestType> jc_k;
    RealField<TestType> jc;
    diffpm::ic::linear_field(plan, w0, dc, jc_k, fixed);
    diffpm::ic::real_from_spectrum(plan, jc_k, jc);
    double sum = 0;
    for (std::size_t n = 0; n < dc.size(); ++n) sum += cbar[n] * dc[n];
    CHECK(dot(ybar, jc) == Approx(sum).epsilon(tol));
  }
}

TEST_CASE("Linear field: same seed same field; bad P(k) and mesh mismatches are rejected",
          "[ic][linear_field]") {
  const Grid grid = Grid::cube(8, 50.0);
  const FftPlan<double> plan(grid);
  const auto c =
      diffpm::ic::mode_amplitudes(grid, [](double k) { return 1e3 * std::pow(k, -1.5); });
  ComplexField<double> a, b;
  diffpm::ic::linear_field(plan, diffpm::ic::white_noise<double>(grid, 99u), c, a);
  diffpm::ic::linear_field(plan, diffpm::ic::white_noise<double>(grid, 99u), c, b);
  CHECK(a.data == b.data);

  using Catch::Contains;
  using diffpm::InvalidArgument;
  CHECK_THROWS_AS(diffpm::ic::mode_amplitudes(grid, [](double) { return -2.5; }), InvalidArgument);
  CHECK_THROWS_WITH(diffpm::ic::mode_amplitudes(grid, [](double) { return -2.5; }),
                    Contains("= -2.5 (Mpc/h)^3"));
  CHECK_THROWS_WITH(diffpm::ic::mode_amplitudes(grid, [](double) { return 0.0; }),
                    Contains("= 0 (Mpc/h)^3"));
  CHECK_THROWS_WITH(diffpm::ic::mode_amplitudes(
                        grid, [](double) { return std::numeric_limits<double>::quiet_NaN(); }),
                    Contains("= nan"));
  CHECK_THROWS_WITH(diffpm::ic::mode_amplitudes(
                        grid, [](double) { return std::numeric_limits<double>::infinity(); }),
                    Contains("= inf"));

  const auto other = diffpm::ic::white_noise<double>(Grid::cube(8, 60.0), 1u);
  CHECK_THROWS_AS(diffpm::ic::linear_field(plan, other, c, a), InvalidArgument);
  CHECK_THROWS_WITH(diffpm::ic::linear_field(
                        plan, diffpm::ic::white_noise<double>(Grid::cube(6, 50.0), 1u), c, a),
                    Contains("noise is on a 6x6x6 mesh"));
  std::vector<double> short_c(c.begin(), c.end() - 1);
  CHECK_THROWS_WITH(
      diffpm::ic::linear_field(plan, diffpm::ic::white_noise<double>(grid, 1u), short_c, a),
      Contains("mode amplitudes"));
}
