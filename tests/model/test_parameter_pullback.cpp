// The parameter pullback (model/parameter_pullback.hpp) sums c_bar dc/dtheta and refuses
// non-finite adjoints.
#include <catch2/catch.hpp>
#include <cmath>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/model/parameter_pullback.hpp"

namespace dc = diffpm::cosmology;

TEST_CASE("the pullback sums c_bar dc/dtheta over coefficients", "[model][adjoint]") {
  // Two coefficients of known derivatives: c1 = Omega_m = Omega_c + Omega_b and
  // c2 = sigma8 h^2; dL/dtheta = 2 dc1/dtheta - 3 dc2/dtheta.
  dc::Parameters<double> p;
  const auto d = dc::seed_parameters(p);
  const dc::ParameterDual c1 = d.Omega_m(), c2 = d.sigma8 * d.h * d.h;
  diffpm::model::ParameterPullback pull;
  pull.add(c1, 2.0, "c1");
  pull.add(c2, -3.0, "c2");
  const auto& g = pull.gradient();
  CHECK(g[int(dc::Parameter::Omega_c)] == Approx(2.0));
  CHECK(g[int(dc::Parameter::Omega_b)] == Approx(2.0));
  CHECK(g[int(dc::Parameter::sigma8)] == Approx(-3.0 * p.h * p.h));
  CHECK(g[int(dc::Parameter::h)] == Approx(-3.0 * 2.0 * p.sigma8 * p.h));
  CHECK(g[int(dc::Parameter::w0)] == 0.0);
  CHECK_THROWS_WITH(pull.add(c1, std::nan(""), "Omega_m (force)"),
                    Catch::Contains("dL/d(Omega_m (force))"));
}
