// Background expansion and distances against CCL's benchmark tables (CosmoMAD without
// radiation, CLASS with radiation), plus analytic checks and input validation.
#include <catch2/catch.hpp>
#include <cmath>

#include "diffpm/cosmology/background.hpp"
#include "support/reference.hpp"

using diffpm::cosmology::Background;
using diffpm::cosmology::Parameters;
using diffpm::test::ccl_class_model;
using diffpm::test::ccl_model;
using diffpm::test::load_reference;
using diffpm::test::MaxRelative;

TEST_CASE("chi(z) matches CosmoMAD for CCL models 1-5 (no radiation)", "[cosmology][background]") {
  // chi_model1-5.txt has 7 significant digits, so its rounding alone is up to 5e-7 relative;
  // CCL asserts 1e-4. We hold 1e-6, just above the rounding.
  const auto table = load_reference("ccl/chi_model1-5.txt");
  for (int m = 1; m <= 5; ++m) {
    const Background<double> bg(ccl_model(m));
    MaxRelative err;
    for (const auto& row : table) {
      if (row[0] == 0.0) {
        CHECK(bg.comoving_distance(1.0) == Approx(0.0).margin(1e-9));
        continue;
      }
      err.add(bg.comoving_distance(1.0 / (1.0 + row[0])), row[m]);
    }
    INFO("model " << m);
    CHECK(err.value() < 1e-6);
  }
}

TEST_CASE("chi(z) matches CosmoMAD at 10 <= z <= 1000 for CCL models 1-3",
          "[cosmology][background]") {
  // 7 significant digits again; CCL's tolerance is 1e-4.
  const auto table = load_reference("ccl/chi_hiz_model1-3.txt");
  for (int m = 1; m <= 3; ++m) {
    const Background<double> bg(ccl_model(m));
    MaxRelative err;
    for (const auto& row : table) err.add(bg.comoving_distance(1.0 / (1.0 + row[0])), row[m]);
    INFO("model " << m);
    CHECK(err.value() < 1e-6);
  }
}

TEST_CASE("chi(z) matches the full-precision CosmoMAD tables to 1e-8", "[cosmology][background]") {
  // model{1,2,3}_chi.txt are printed at full double precision and reproduced by an independent
  // scipy quadrature to 3e-13 (reference README). Our Simpson + Hermite table error at the
  // default 48 steps per e-fold is 5e-10, so 1e-8 leaves margin without hiding a regression.
  for (int m = 1; m <= 3; ++m) {
    const auto table = load_reference("ccl/model" + std::to_string(m) + "_chi.txt");
    const Background<double> bg(ccl_model(m));
    MaxRelative err;
    for (const auto& row : table)
      if (row[0] > 0) err.add(bg.comoving_distance(1.0 / (1.0 + row[0])), row[1]);
    INFO("model " << m);
    CHECK(err.value() < 1e-8);
  }
}

TEST_CASE("chi(z) with radiation matches CLASS for CCL1-5 up to z = 1000",
          "[cosmology][background]") {
  // CCL's tolerance for the CLASS tables is 1e-5; CLASS itself agrees with an independent
  // quadrature to 6e-8 (README). Ours: 1.8e-7 at the default resolution, so 1e-6.
  // Columns are in Mpc: multiply by h for Mpc/h.
  const auto table = load_reference("ccl/chi_class_allz.txt");
  for (int m = 1; m <= 5; ++m) {
    const auto p = ccl_class_model(m);
    const Background<double> bg(p);
    MaxRelative err;
    for (const auto& row : table) err.add(bg.comoving_distance(1.0 / (1.0 + row[0])), row[m] * p.h);
    INFO("CCL" << m);
    CHECK(err.value() < 1e-6);
  }
}

TEST_CASE("chi(z) matches CLASS for curved and N_eff = 6 models", "[cosmology][background]") {
  // chi_class_extra_mnu.txt columns 1, 2, 3, 7: flat, Omega_k = +0.01, -0.01 (N_eff = 3), and
  // flat with N_eff = 6, all LCDM with the CCL1 densities, up to z = 1050. Tolerance as above.
  const auto table = load_reference("ccl/chi_class_extra_mnu.txt");
  const int column[] = {1, 2, 3, 7};
  const double omega_k[] = {0.0, 0.01, -0.01, 0.0};
  const double n_eff[] = {3.0, 3.0, 3.0, 6.0};
  for (int c = 0; c < 4; ++c) {
    auto p = ccl_class_model(1);
    p.Omega_k = omega_k[c];
    p.N_eff = n_eff[c];
    const Background<double> bg(p);
    MaxRelative err;
    for (const auto& row : table)
      err.add(bg.comoving_distance(1.0 / (1.0 + row[0])), row[column[c]] * p.h);
    INFO("column " << column[c]);
    CHECK(err.value() < 1e-6);
  }
}

TEST_CASE("Luminosity and angular diameter distances match CLASS, curved models included",
          "[cosmology][background]") {
  // dm_class_allz.txt: distance modulus 5 log10(d_L / 10 pc), d_L in Mpc, from CLASS for CCL1-5
  // (CCL4/5 have Omega_k = +-0.05, so D_M differs from chi by up to 10% at z = 1000).
  // d_L [Mpc] = 10^(dm/5 - 5) and D_A = d_L / (1+z)^2. CCL's tolerance is 1e-5; we hold 1e-6.
  const auto table = load_reference("ccl/dm_class_allz.txt");
  for (int m = 1; m <= 5; ++m) {
    const auto p = ccl_class_model(m);
    const Background<double> bg(p);
    MaxRelative err_l, err_a;
    for (const auto& row : table) {
      const double z = row[0], a = 1.0 / (1.0 + z);
      const double d_l = std::pow(10.0, row[m] / 5.0 - 5.0) * p.h;
      err_l.add(bg.luminosity_distance(a), d_l);
      err_a.add(bg.angular_diameter_distance(a), d_l / ((1.0 + z) * (1.0 + z)));
    }
    INFO("CCL" << m);
    CHECK(err_l.value() < 1e-6);
    CHECK(err_a.value() < 1e-6);
  }
}

TEST_CASE("f_K and c_K: closed forms, series, addition theorem, c_K = df_K/dchi",
          "[cosmology][background]") {
  const double dh = diffpm::constants::hubble_distance;
  // Omega_k of both signs, large enough for the sinh/sin branches and small enough for the
  // series at every chi (|x| = |Omega_k| (chi H0/c)^2 < 1e-2), and flat.
  for (double ok : {0.05, -0.05, 1e-4, -1e-4, 0.0}) {
    Parameters<double> p;
    p.Omega_k = ok;
    const Background<double> bg(p);
    for (double chi : {1.0, 300.0, 1500.0, 3000.0, 6000.0}) {
      INFO("Omega_k " << ok << " chi " << chi);
      const long double s = std::sqrt(std::abs(static_cast<long double>(ok)));
      const long double r = static_cast<long double>(chi) / dh;
      const long double f = ok > 0   ? std::sinh(s * r) / s * dh
                            : ok < 0 ? std::sin(s * r) / s * dh
                                     : static_cast<long double>(chi);
      const long double c = ok > 0 ? std::cosh(s * r) : ok < 0 ? std::cos(s * r) : 1.0L;
      // Closed forms in long double: the series and the double branches agree to rounding.
      CHECK(bg.transverse_distance(chi) == Approx(static_cast<double>(f)).epsilon(1e-15));
      CHECK(bg.curvature_cosine(chi) == Approx(static_cast<double>(c)).epsilon(1e-15));
      // c_K = df_K/dchi: central difference, truncation h^2 |Omega_k| (H0/c)^2 / 6 < 1e-11 and
      // round-off ~1e-16 chi / h = 1e-11, relative.
      const double h = 1e-5 * chi;
      const double slope =
          (bg.transverse_distance(chi + h) - bg.transverse_distance(chi - h)) / (2.0 * h);
      CHECK(bg.curvature_cosine(chi) == Approx(slope).epsilon(1e-9));
      // The addition theorem the lensing efficiency rests on, f_K(x - y) = f_K(x) c_K(y) -
      // c_K(x) f_K(y), with x = 1.7 chi: rounding of the difference, ~1e-15 relative.
      const double x = 1.7 * chi;
      CHECK(bg.transverse_distance(x - chi) ==
            Approx(bg.transverse_distance(x) * bg.curvature_cosine(chi) -
                   bg.curvature_cosine(x) * bg.transverse_distance(chi))
                .epsilon(1e-13));
    }
    // D_M(a) is f_K at chi(a), bit for bit.
    for (double a : {0.2, 0.7})
      CHECK(bg.transverse_comoving_distance(a) == bg.transverse_distance(bg.comoving_distance(a)));
  }
}

TEST_CASE("E(a) is exact and chi(a) follows analytic solutions", "[cosmology][background]") {
  // Einstein-de Sitter (Omega_m = 1, no radiation): E = a^-3/2, chi = 2 (c/H0) (1 - sqrt(a)).
  Parameters<double> eds;
  eds.Omega_c = 0.95;
  eds.Omega_b = 0.05;
  eds.radiation = false;
  const Background<double> bg(eds);
  for (double a : {1e-5, 1e-3, 0.1, 0.5, 0.9, 1.0}) {
    CHECK(bg.E(a) == Approx(std::pow(a, -1.5)).epsilon(1e-14));
    CHECK(bg.dlnE_dlna(a) == Approx(-1.5).epsilon(1e-14));
    CHECK(bg.Omega_m_of_a(a) == Approx(1.0).epsilon(1e-14));
    // Hermite table error ~ dt^4/384 |chi''''| <~ 1e-10 relative.
    CHECK(bg.comoving_distance(a) ==
          Approx(2.0 * diffpm::constants::hubble_distance * (1.0 - std::sqrt(a)))
              .epsilon(1e-10)
              .margin(1e-9));
  }
}

TEST_CASE("scale_factor_at_distance inverts comoving_distance", "[cosmology][background]") {
  for (int m : {1, 4, 5}) {
    const Background<double> bg(ccl_class_model(m));
    for (double a : {1e-4, 1e-3, 0.1, 0.3, 0.77, 0.999, 1.0}) {
      const double chi = bg.comoving_distance(a);
      // Newton on the interpolant converges to round-off in ln a. (Deep in the radiation era,
      // a ~ 1e-6, chi(a) is so flat that round-off in chi alone moves a by ~1e-12.)
      CHECK(bg.scale_factor_at_distance(chi) == Approx(a).epsilon(1e-12));
    }
  }
}

TEST_CASE("Out-of-range scale factors and distances throw OutOfRange naming the value",
          "[cosmology][background][errors]") {
  const Background<double> bg(Parameters<double>{});
  CHECK_THROWS_AS(bg.comoving_distance(1.5), diffpm::OutOfRange);
  CHECK_THROWS_WITH(bg.comoving_distance(1.5),
                    Catch::Contains("a = 1.5") && Catch::Contains("z = -0.33"));
  CHECK_THROWS_AS(bg.E(0.0), diffpm::OutOfRange);
  CHECK_THROWS_AS(bg.E(1e-7), diffpm::OutOfRange);
  CHECK_THROWS_AS(bg.E(std::nan("")), diffpm::OutOfRange);
  CHECK_THROWS_AS(bg.comoving_distance(-0.5), diffpm::OutOfRange);
  CHECK_THROWS_AS(bg.scale_factor_at_distance(-1.0), diffpm::OutOfRange);
  CHECK_THROWS_WITH(bg.scale_factor_at_distance(1e6), Catch::Contains("chi = 1e+06"));
  CHECK_THROWS_AS(bg.scale_factor_at_distance(std::nan("")), diffpm::OutOfRange);
}

TEST_CASE("Cosmologies without monotonic expansion are rejected",
          "[cosmology][background][errors]") {
  // A strongly closed universe recollapses: E^2 < 0 at some a < 1.
  Parameters<double> closed;
  closed.radiation = false;
  closed.Omega_k = -3.0;
  CHECK_THROWS_AS(Background<double>(closed), diffpm::InvalidArgument);
  CHECK_THROWS_WITH(Background<double>(closed), Catch::Contains("Omega_k = -3"));
  // Dark energy with w(a -> 0) = w0 + wa near 0 is not negligible at a = 1e-6, where the
  // growth integration starts from the matter-radiation growing mode.
  Parameters<double> early_de;
  early_de.w0 = -0.5;
  early_de.wa = 0.45;
  CHECK_THROWS_WITH(Background<double>(early_de),
                    Catch::Contains("w0 = -0.5") && Catch::Contains("wa = 0.45"));
  diffpm::cosmology::TableOptions bad;
  bad.a_min = 0.5;
  CHECK_THROWS_WITH(Background<double>(Parameters<double>{}, bad), Catch::Contains("a_min = 0.5"));
}
