// Linear power spectra (EH98 with and without wiggles, BBKS, tabulated) against CCL's tables,
// the sigma8 quadrature against brute force, and sigma(M).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/io/power_table_file.hpp"
#include "support/reference.hpp"

using namespace diffpm::cosmology;
using diffpm::io::read_power_table;
using diffpm::test::ccl_model;
using diffpm::test::load_reference;
using diffpm::test::MaxRelative;

namespace {
Cosmology<double> make(Parameters<double> p, Transfer t) {
  CosmologyOptions o;
  o.transfer = t;
  return Cosmology<double>(p, o);
}

/// Brute-force sigma^2(R) of a spectrum: composite 16-point Gauss-Legendre on sub-intervals of
/// 0.005 in ln k up to k = 0.5 and of 0.02 in kR beyond (so every oscillation of W(kR)^2 gets
/// ~2500 points), 1e-5 < k < 2000 h/Mpc. Independent of the product-integration weights.
template <class P>
double brute_force_variance(const P& power, double R) {
  const detail::GaussLegendre gl(16);
  const double pi = 3.14159265358979323846;
  auto integrate = [&](double a, double b, double (*to_k)(double), double (*jac)(double)) {
    double sum = 0.0;
    for (int j = 0; j < 16; ++j) {
      const double u = 0.5 * (a + b) + 0.5 * (b - a) * gl.nodes[j];
      const double k = to_k(u);
      const double w = tophat_window(k * R);
      sum += 0.5 * (b - a) * gl.weights[j] * jac(u) * k * k * power(k) * w * w / (2 * pi * pi);
    }
    return sum;
  };
  double total = 0.0;
  const double u_lo = std::log(1e-5), u_hi = std::log(0.5);
  const int n_lo = static_cast<int>((u_hi - u_lo) / 0.005);
  for (int i = 0; i < n_lo; ++i) {
    total += integrate(
        u_lo + (u_hi - u_lo) * i / n_lo, u_lo + (u_hi - u_lo) * (i + 1) / n_lo,
        [](double u) { return std::exp(u); }, [](double u) { return std::exp(u); });
  }
  const double dk = 0.02 / R;
  for (double k0 = 0.5; k0 < 2000.0; k0 += dk) {
    total += integrate(
        k0, k0 + dk, [](double k) { return k; }, [](double) { return 1.0; });
  }
  return total;
}
}  // namespace

TEST_CASE("EH98 with wiggles matches CCL's table to its 1e-5", "[cosmology][power]") {
  // model1_pk_eh.txt has 6 significant digits: rounding alone is up to 5e-6 relative, and an
  // independent re-check agrees to 9e-6 (README). CCL asserts 1e-5; so do we. The agreement
  // depends on the tf_fit.c conventions (a literal reading of the paper is 3.8e-4 off).
  auto p = ccl_model(1);
  p.T_CMB = 2.725;
  const auto c = make(p, Transfer::eisenstein_hu);
  MaxRelative err;
  for (const auto& row : load_reference("ccl/model1_pk_eh.txt"))
    err.add(c.linear_power_today()(row[0]), row[1]);
  CHECK(err.value() < 1e-5);
}

TEST_CASE("EH98 no-wiggle matches CCL's table at all z", "[cosmology][power]") {
  // Full-precision table (re-check 4e-8, README), with z = 1..5 columns scaled by the
  // no-radiation growth. CCL asserts 1e-5 at z = 0 only; we hold 1e-6 everywhere (ours: 4e-8).
  auto p = ccl_model(1);
  p.T_CMB = 2.725;
  const auto c = make(p, Transfer::eisenstein_hu_nowiggle);
  MaxRelative err;
  for (const auto& row : load_reference("ccl/model1_nowig_pk_eh.txt"))
    for (std::size_t j = 1; j < row.size(); ++j) err.add(c.linear_power(row[0], 1.0 / j), row[j]);
  CHECK(err.value() < 1e-6);
}

TEST_CASE("BBKS matches CCL's tables for models 1-3 at all z", "[cosmology][power]") {
  // CCL's test sets T_CMB = 2.7 K (Theta_2.7 = 1). CCL asserts 1e-5; re-check 3.6e-8; ours
  // 3.5e-8, so 1e-6.
  for (int m = 1; m <= 3; ++m) {
    auto p = ccl_model(m);
    p.T_CMB = 2.7;
    const auto c = make(p, Transfer::bbks);
    MaxRelative err;
    for (const auto& row : load_reference("ccl/model" + std::to_string(m) + "_pk.txt"))
      for (std::size_t j = 1; j < row.size(); ++j) err.add(c.linear_power(row[0], 1.0 / j), row[j]);
    INFO("model " << m);
    CHECK(err.value() < 1e-6);
  }
}

TEST_CASE("sigma(M) of BBKS matches CCL's table", "[cosmology][power]") {
  // R = (3 M / (4 pi Omega_m rho_c))^(1/3), rho_c = 2.77536627e11 h^2 Msun/Mpc^3 (README).
  // The table has 8 digits; re-check 8e-6 (with this rho_c); CCL's 3e-5 is never asserted
  // there. Ours: 1.4e-7, so 1e-6. M = 1e6 needs k up to ~1e5 h/Mpc, M = 1e16 R = 31 Mpc/h.
  auto p = ccl_model(1);
  p.T_CMB = 2.7;
  const auto c = make(p, Transfer::bbks);
  const double rho = 2.77536627e11 * 0.3;
  MaxRelative err;
  for (const auto& row : load_reference("ccl/model1_sm.txt")) {
    const double R = std::cbrt(3.0 * row[0] / (4.0 * 3.14159265358979323846 * rho));
    err.add(c.linear_power_today().sigma(R), row[1]);
  }
  CHECK(err.value() < 1e-6);
}

TEST_CASE("The sigma8 quadrature agrees with a brute-force integral to 3e-9",
          "[cosmology][power]") {
  // Product integration with ~380 P(k) evaluations against ~10^6 direct ones: this is the
  // accuracy of the amplitude A, hence of every P_lin. Measured <= 1.3e-9 (EH at R = 8).
  const Parameters<double> p;
  for (Transfer t : {Transfer::eisenstein_hu, Transfer::eisenstein_hu_nowiggle, Transfer::bbks}) {
    const auto c = make(p, t);
    const auto& P = c.linear_power_today();
    for (double R : {8.0, 2.0, 30.0}) {
      const double brute = brute_force_variance([&](double k) { return P(k); }, R);
      INFO("transfer " << static_cast<int>(t) << ", R = " << R);
      CHECK(P.sigma(R) * P.sigma(R) == Approx(brute).epsilon(3e-9));
    }
    CHECK(P.sigma(8.0) == Approx(p.sigma8).epsilon(1e-14));
  }
}

TEST_CASE("A tabulated P(k) reproduces the spectrum it was sampled from", "[cosmology][power]") {
  // EH98 sampled at 30 points per decade from 1e-4 to 100 h/Mpc and written to a file:
  // the log-log spline follows the BAO wiggles to ~1e-4, the sigma8 renormalisation then
  // agrees to ~1e-6 since the amplitude integrates the spline error over many wiggles.
  const Parameters<double> p;
  const auto eh = make(p, Transfer::eisenstein_hu);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("diffpm_test_pk_" + std::to_string(::getpid()) + ".txt"))
                               .string();
  {
    std::ofstream out(path);
    out << "# k [h/Mpc]  P [(Mpc/h)^3]\n";
    out.precision(17);
    for (int i = 0; i <= 180; ++i) {
      const double k = std::pow(10.0, -4.0 + i / 30.0);
      out << k << " " << eh.linear_power_today()(k) << "\n";
    }
  }
  CosmologyOptions o;
  o.transfer = Transfer::tabulated;
  o.power_table = std::make_shared<const PowerTable>(read_power_table(path));
  std::remove(path.c_str());
  const Cosmology<double> tab(p, o);
  CHECK(tab.linear_power_today().sigma(8.0) == Approx(p.sigma8).epsilon(1e-14));
  for (double k : {1e-3, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 10.0})
    CHECK(tab.linear_power(k, 0.5) == Approx(eh.linear_power(k, 0.5)).epsilon(3e-4));
  // Rescaling: twice sigma8, four times the power.
  auto p2 = p;
  p2.sigma8 = 2 * p.sigma8;
  const Cosmology<double> tab2(p2, o);
  CHECK(tab2.linear_power(0.1, 1.0) == Approx(4 * tab.linear_power(0.1, 1.0)).epsilon(1e-13));
}

TEST_CASE("Bad spectra and wavenumbers throw typed errors naming the value",
          "[cosmology][power][errors]") {
  const Parameters<double> p;
  const auto c = make(p, Transfer::bbks);
  CHECK_THROWS_AS(c.linear_power(0.0, 1.0), diffpm::InvalidArgument);
  CHECK_THROWS_WITH(c.linear_power(-0.1, 1.0), Catch::Contains("k = -0.1"));
  CHECK_THROWS_AS(c.linear_power(std::nan(""), 1.0), diffpm::InvalidArgument);
  CHECK_THROWS_AS(c.linear_power(0.1, 1.2), diffpm::OutOfRange);
  CHECK_THROWS_WITH(c.linear_power_today().sigma(-8.0), Catch::Contains("R = -8"));
  auto nob = p;
  nob.Omega_b = 0.0;
  CHECK_THROWS_WITH(make(nob, Transfer::eisenstein_hu), Catch::Contains("Omega_b = 0"));
  CHECK_NOTHROW(make(nob, Transfer::eisenstein_hu_nowiggle));
  CHECK_THROWS_AS(transfer_from_name("camb"), diffpm::InvalidArgument);
  CHECK_THROWS_AS(read_power_table("/nonexistent/pk.txt"), diffpm::IoError);
  CHECK_THROWS_WITH(PowerTable({0.1, 0.2, 0.2, 0.3}, {1, 2, 3, 4}), Catch::Contains("increase"));
  CHECK_THROWS_WITH(PowerTable({0.1, 0.2, 0.3, 0.4}, {1, -2, 3, 4}), Catch::Contains("P = -2"));
  CHECK_THROWS_AS(PowerTable({0.1, 0.2}, {1, 2}), diffpm::InvalidArgument);
  CosmologyOptions o;
  o.transfer = Transfer::tabulated;
  CHECK_THROWS_AS(Cosmology<double>(p, o), diffpm::InvalidArgument);
}
