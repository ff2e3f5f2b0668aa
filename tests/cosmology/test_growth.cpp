// Growth factors D1, D2 and rates f1, f2 against CCL's CosmoMAD tables and analytic solutions.
#include <catch2/catch.hpp>
#include <cmath>

#include "diffpm/cosmology/growth.hpp"
#include "support/reference.hpp"

using diffpm::cosmology::Background;
using diffpm::cosmology::Growth;
using diffpm::cosmology::Parameters;
using diffpm::cosmology::TableOptions;
using diffpm::test::ccl_model;
using diffpm::test::load_reference;
using diffpm::test::MaxRelative;

namespace {
struct Built {
  Background<double> bg;
  Growth<double> growth;
  explicit Built(const Parameters<double>& p, TableOptions o = {}) : bg(p, o), growth(bg) {}
};
}  // namespace

TEST_CASE("Unnormalised D1 matches CosmoMAD at z <= 5 for CCL models 1-5", "[cosmology][growth]") {
  // growth_model1-5.txt: 7 significant digits (rounding <= 3e-7 here). CCL asserts 1e-4.
  // Models 4 and 5 (curved) sit 1e-6 off this 7-digit table but agree with the full-precision
  // CosmoMAD table of the same models to 2e-8 (next test), so 2e-6 here.
  const auto table = load_reference("ccl/growth_model1-5.txt");
  for (int m = 1; m <= 5; ++m) {
    const Built b(ccl_model(m));
    MaxRelative err;
    for (const auto& row : table)
      err.add(b.growth.growth_factor_unnormalised(1.0 / (1.0 + row[0])), row[m]);
    INFO("model " << m);
    CHECK(err.value() < 2e-6);
  }
}

TEST_CASE("Unnormalised D1 matches the full-precision CosmoMAD tables, 0.01 <= z <= 1000",
          "[cosmology][growth]") {
  // growth_cosmomad_allz.txt (models 1-5 incl. w0wa and curvature) and model{1,2,3}_gf.txt are
  // at full precision and reproduced by scipy to 4e-9 (README). Our RK4 + Hermite error at 48
  // steps per e-fold is 1.9e-8 (1e-9 at 200 steps per e-fold), hence 5e-8.
  const auto table = load_reference("ccl/growth_cosmomad_allz.txt");
  for (int m = 1; m <= 5; ++m) {
    const Built b(ccl_model(m));
    MaxRelative err;
    for (const auto& row : table)
      err.add(b.growth.growth_factor_unnormalised(1.0 / (1.0 + row[0])), row[m]);
    INFO("model " << m);
    CHECK(err.value() < 5e-8);
  }
  for (int m = 1; m <= 3; ++m) {
    const Built b(ccl_model(m));
    MaxRelative err;
    for (const auto& row : load_reference("ccl/model" + std::to_string(m) + "_gf.txt"))
      err.add(b.growth.growth_factor_unnormalised(1.0 / (1.0 + row[0])), row[1]);
    INFO("model " << m);
    CHECK(err.value() < 5e-8);
  }
}

TEST_CASE("Unnormalised D1 matches CosmoMAD at 10 <= z <= 1000 within CCL's 6e-6",
          "[cosmology][growth]") {
  // CCL asserts 6e-6 here; the table has 7 digits (rounding <= 5e-7), so we hold 1e-6.
  const auto table = load_reference("ccl/growth_hiz_model1-3.txt");
  for (int m = 1; m <= 3; ++m) {
    const Built b(ccl_model(m));
    MaxRelative err;
    for (const auto& row : table)
      err.add(b.growth.growth_factor_unnormalised(1.0 / (1.0 + row[0])), row[m]);
    INFO("model " << m);
    CHECK(err.value() < 1e-6);
  }
}

TEST_CASE("Growth in Einstein-de Sitter is D1 = a, D2 = -3/7 a^2, f1 = 1, f2 = 2",
          "[cosmology][growth]") {
  Parameters<double> eds;
  eds.Omega_c = 0.95;
  eds.Omega_b = 0.05;
  eds.radiation = false;
  const Built b(eds);
  for (double a : {1e-4, 0.01, 0.3, 1.0}) {
    // The initial conditions are the exact solution here, so only RK4's truncation remains:
    // D = e^t is not a polynomial in t, and the global error is ~ t h^4/120 = 2e-8 over the
    // 13.8 e-folds from a = 1e-6 (measured 1.3e-8 in f2).
    CHECK(b.growth.growth_factor(a) == Approx(a).epsilon(5e-8));
    CHECK(b.growth.growth_factor_unnormalised(a) == Approx(a).epsilon(5e-8));
    CHECK(b.growth.growth_rate(a) == Approx(1.0).epsilon(5e-8));
    CHECK(b.growth.growth_factor_2(a) == Approx(-3.0 / 7.0 * a * a).epsilon(5e-8));
    CHECK(b.growth.growth_rate_2(a) == Approx(2.0).epsilon(5e-8));
  }
  // At a = 1 the normalisation is exact by construction.
  CHECK(b.growth.growth_factor(1.0) == 1.0);
}

TEST_CASE("Growth with radiation follows the Meszaros solution D1 = a + 2/3 a_eq",
          "[cosmology][growth]") {
  // Matter + radiation only (Omega_de = 0): the growing mode is exactly a + 2/3 a_eq
  // (Meszaros 1974), through equality. Only RK4 truncation (~2e-8, as in EdS) remains.
  Parameters<double> p;
  p.radiation = true;
  p.Omega_b = 0.05;
  p.Omega_c = 0.0;
  p.Omega_c = 1.0 - p.Omega_b - p.Omega_r();
  REQUIRE(std::abs(p.Omega_de()) < 1e-15);
  const Built b(p);
  const double a_eq = p.Omega_r() / p.Omega_m();
  for (double a : {1e-6, 1e-5, 1e-4, a_eq, 1e-3, 0.1, 1.0}) {
    CHECK(b.growth.growth_factor_unnormalised(a) == Approx(a + 2.0 / 3.0 * a_eq).epsilon(5e-8));
    CHECK(b.growth.growth_rate(a) == Approx(a / (a + 2.0 / 3.0 * a_eq)).epsilon(5e-8));
  }
}

TEST_CASE("Growth rates are the logarithmic derivatives of the growth factors",
          "[cosmology][growth]") {
  // f comes from the ODE's own D' (interpolated with its exact slope D''), while a central
  // difference of the interpolated D sees the derivative of a cubic Hermite interpolant, whose
  // error is O(dt^3) ~ 3e-7 at dt = 0.021: that, not f, sets the 1e-6.
  for (int m : {1, 3, 4, 5}) {
    const Built b(diffpm::test::ccl_class_model(m));
    for (double a : {0.02, 0.25, 0.5, 0.9}) {
      const double h = 1e-4;
      const double up = a * std::exp(h), dn = a * std::exp(-h);
      const double f1 =
          (std::log(b.growth.growth_factor(up)) - std::log(b.growth.growth_factor(dn))) / (2 * h);
      const double f2 =
          (std::log(-b.growth.growth_factor_2(up)) - std::log(-b.growth.growth_factor_2(dn))) /
          (2 * h);
      CHECK(b.growth.growth_rate(a) == Approx(f1).epsilon(1e-6));
      CHECK(b.growth.growth_rate_2(a) == Approx(f2).epsilon(1e-6));
    }
  }
  // LCDM today: f1 ~ Omega_m^0.55 (Linder 2005) to better than 1%, and D2 ~ -3/7 D1^2
  // Omega_m^(-1/143) (Bouchet et al. 1995) to better than 0.5%.
  const auto p = ccl_model(1);
  const Built b(p);
  CHECK(b.growth.growth_rate(1.0) == Approx(std::pow(0.3, 0.55)).epsilon(1e-2));
  CHECK(b.growth.growth_factor_2(1.0) ==
        Approx(-3.0 / 7.0 * std::pow(0.3, -1.0 / 143.0)).epsilon(5e-3));
}

TEST_CASE("Growth tables converge: default resolution agrees with 4x finer steps",
          "[cosmology][growth]") {
  // RK4 and Simpson errors scale as dt^4: quadrupling the steps shrinks them 256x, so the
  // difference measures the default's own error, claimed in TableOptions to be < 3e-8.
  TableOptions fine;
  fine.steps_per_efold = 4 * TableOptions{}.steps_per_efold;
  for (int m : {1, 4}) {
    const auto p = diffpm::test::ccl_class_model(m);
    const Built coarse(p), precise(p, fine);
    for (double a : {1e-5, 1e-3, 0.1, 0.5, 1.0}) {
      CHECK(coarse.growth.growth_factor_unnormalised(a) ==
            Approx(precise.growth.growth_factor_unnormalised(a)).epsilon(3e-8));
      CHECK(coarse.growth.growth_rate(a) == Approx(precise.growth.growth_rate(a)).epsilon(3e-8));
      CHECK(coarse.growth.growth_factor_2(a) ==
            Approx(precise.growth.growth_factor_2(a)).epsilon(3e-8));
      CHECK(coarse.bg.comoving_distance(a) ==
            Approx(precise.bg.comoving_distance(a)).epsilon(3e-8).margin(1e-9));
    }
  }
}

TEST_CASE("Growth queries outside [a_min, 1] throw OutOfRange", "[cosmology][growth][errors]") {
  const Built b(Parameters<double>{});
  CHECK_THROWS_AS(b.growth.growth_factor(1.01), diffpm::OutOfRange);
  CHECK_THROWS_WITH(b.growth.growth_rate(2.0),
                    Catch::Contains("growth_rate") && Catch::Contains("a = 2"));
  CHECK_THROWS_AS(b.growth.growth_factor_2(1e-9), diffpm::OutOfRange);
}
