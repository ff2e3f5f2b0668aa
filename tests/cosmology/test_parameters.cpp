// Parameter validation and derived densities.
#include <catch2/catch.hpp>
#include <cmath>

#include "diffpm/cosmology/parameters.hpp"

using namespace diffpm::cosmology;

TEST_CASE("Radiation densities follow from T_CMB and N_eff", "[cosmology][parameters]") {
  // CLASS v2.6.3 in CCL's benchmarks: Omega_g(T = 2.725 K, h = 0.7) = 5.04319e-5 (README).
  Parameters<double> p;
  p.h = 0.7;
  p.T_CMB = 2.725;
  CHECK(p.Omega_gamma() == Approx(5.04319e-5).epsilon(2e-6));
  CHECK(p.Omega_nu() ==
        Approx(p.N_eff * 7.0 / 8.0 * std::pow(4.0 / 11.0, 4.0 / 3.0) * p.Omega_gamma())
            .epsilon(1e-14));
  CHECK(p.Omega_de() == Approx(1.0 - p.Omega_m() - p.Omega_k - p.Omega_r()).epsilon(1e-15));
  p.radiation = false;
  CHECK(p.Omega_r() == 0.0);
  CHECK(p.Omega_de() == Approx(1.0 - p.Omega_m()).epsilon(1e-15));
}

TEST_CASE("Invalid parameters throw InvalidArgument naming the parameter and the value",
          "[cosmology][parameters][errors]") {
  struct Bad {
    Parameter which;
    double value;
    const char* expect;
  };
  for (const Bad& b :
       {Bad{Parameter::Omega_c, -0.1, "Omega_c = -0.1"},
        Bad{Parameter::Omega_b, -0.01, "Omega_b = -0.01"}, Bad{Parameter::h, 0.0, "h = 0"},
        Bad{Parameter::h, -0.7, "h = -0.7"}, Bad{Parameter::sigma8, 0.0, "sigma8 = 0"},
        Bad{Parameter::n_s, NAN, "n_s = nan"}, Bad{Parameter::w0, INFINITY, "w0 = inf"},
        Bad{Parameter::Omega_k, NAN, "Omega_k = nan"}}) {
    Parameters<double> p;
    p[b.which] = b.value;
    CHECK_THROWS_AS(validate(p), diffpm::InvalidArgument);
    CHECK_THROWS_WITH(validate(p), Catch::Contains(b.expect));
  }
  Parameters<double> p;
  p.Omega_c = 0.0;
  p.Omega_b = 0.0;
  CHECK_THROWS_WITH(validate(p), Catch::Contains("Omega_m"));
  p = Parameters<double>{};
  p.T_CMB = -1.0;
  CHECK_THROWS_WITH(validate(p), Catch::Contains("T_CMB = -1"));
  p = Parameters<double>{};
  p.N_eff = -3.0;
  CHECK_THROWS_WITH(validate(p), Catch::Contains("N_eff = -3"));
  CHECK_NOTHROW(validate(Parameters<double>{}));
}

TEST_CASE("seed_parameters gives one unit derivative per parameter", "[cosmology][parameters]") {
  const Parameters<double> p;
  const auto d = seed_parameters(p);
  for (int i = 0; i < n_parameters; ++i) {
    const auto x = static_cast<Parameter>(i);
    CHECK(d[x].value() == p[x]);
    for (int j = 0; j < n_parameters; ++j) CHECK(d[x].derivatives()[j] == (i == j ? 1.0 : 0.0));
  }
  CHECK(std::string(parameter_names[0]) == "Omega_c");
  CHECK(std::string(parameter_names[7]) == "wa");
}
