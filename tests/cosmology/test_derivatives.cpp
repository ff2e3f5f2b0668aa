// Exact forward-mode derivatives of every cosmology output with respect to the eight
// parameters, checked against central finite differences of the double-precision code.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <string>

#include "diffpm/cosmology/cosmology.hpp"
#include "support/reference.hpp"

using namespace diffpm::cosmology;

namespace {

/// One output of a cosmology, written once for both scalar types.
template <class T>
using Quantity = std::function<T(const Cosmology<T>&)>;

struct Case {
  std::string name;
  Quantity<double> value;
  Quantity<ParameterDual> dual;
};

template <class F>
Case make_case(std::string name, F f) {
  return {std::move(name), [f](const Cosmology<double>& c) { return f(c); },
          [f](const Cosmology<ParameterDual>& c) { return f(c); }};
}

/// Relative steps: 1e-4 of the parameter (absolute 1e-4 for Omega_k, w0, wa, which may be 0).
/// Central differences then have truncation error ~ (1e-4)^2 f'''/6 ~ 1e-9 relative and
/// round-off ~ 1e-16 / 1e-4 = 1e-12; the tables' own discretisation is a smooth function of
/// the parameters (fixed grids, fixed quadrature nodes), so the finite difference sees the
/// same function the duals differentiate.
double step(const Parameters<double>& p, Parameter x) {
  switch (x) {
    case Parameter::Omega_k:
    case Parameter::w0:
    case Parameter::wa:
      return 1e-4;
    default:
      return 1e-4 * std::abs(p[x]);
  }
}

void check_all(const Parameters<double>& p, const CosmologyOptions& options,
               const std::vector<Case>& cases) {
  const Cosmology<ParameterDual> dual(seed_parameters(p), options);
  for (const auto& c : cases) {
    const ParameterDual d = c.dual(dual);
    const double v = c.value(Cosmology<double>(p, options));
    // The dual's value part runs the same arithmetic as the double code.
    CHECK(d.value() == Approx(v).epsilon(1e-14));
    double scale = 0.0;  // size of the gradient, for an absolute floor on tiny components
    for (int i = 0; i < n_parameters; ++i)
      scale = std::max(scale, std::abs(d.derivatives()[i] * 0.1));
    for (int i = 0; i < n_parameters; ++i) {
      const auto x = static_cast<Parameter>(i);
      const double h = step(p, x);
      auto up = p, dn = p;
      up[x] += h;
      dn[x] -= h;
      const double fd =
          (c.value(Cosmology<double>(up, options)) - c.value(Cosmology<double>(dn, options))) /
          (2 * h);
      INFO(c.name << " d/d" << parameter_names[i] << ": dual " << d.derivatives()[i]
                  << ", finite difference " << fd);
      // 1e-6 relative: 1000x above the finite difference's own error, far below any real
      // mistake in a derivative (which shows up at O(1)).
      CHECK(d.derivatives()[i] == Approx(fd).epsilon(1e-6).margin(1e-7 * scale + 1e-300));
    }
  }
}

std::vector<Case> background_and_growth_cases() {
  std::vector<Case> cases;
  for (double a : {0.002, 0.3, 0.8}) {
    const std::string at = " at a = " + std::to_string(a);
    cases.push_back(make_case("E" + at, [a](const auto& c) { return c.background().E(a); }));
    cases.push_back(
        make_case("chi" + at, [a](const auto& c) { return c.background().comoving_distance(a); }));
    cases.push_back(make_case(
        "D_M" + at, [a](const auto& c) { return c.background().transverse_comoving_distance(a); }));
    cases.push_back(make_case(
        "D_A" + at, [a](const auto& c) { return c.background().angular_diameter_distance(a); }));
    cases.push_back(make_case("c_K(chi(a))" + at, [a](const auto& c) {
      return c.background().curvature_cosine(c.background().comoving_distance(a));
    }));
    cases.push_back(make_case("dchi/dln a" + at, [a](const auto& c) {
      return c.background().comoving_distance_slope(a);
    }));
    cases.push_back(
        make_case("D1" + at, [a](const auto& c) { return c.growth().growth_factor(a); }));
    cases.push_back(make_case("f1" + at, [a](const auto& c) { return c.growth().growth_rate(a); }));
    cases.push_back(
        make_case("D2" + at, [a](const auto& c) { return c.growth().growth_factor_2(a); }));
    cases.push_back(
        make_case("f2" + at, [a](const auto& c) { return c.growth().growth_rate_2(a); }));
  }
  // f_K and c_K at a fixed distance: only Omega_k acts (through the series when it is 0).
  cases.push_back(make_case(
      "f_K(chi = 1500)", [](const auto& c) { return c.background().transverse_distance(1500.0); }));
  cases.push_back(make_case("c_K(chi = 1500)",
                            [](const auto& c) { return c.background().curvature_cosine(1500.0); }));
  // a(chi) at a fixed distance: moves with every background parameter.
  cases.push_back(make_case("a(chi = 1500)", [](const auto& c) {
    return c.background().scale_factor_at_distance(1500.0);
  }));
  return cases;
}

std::vector<Case> power_cases() {
  std::vector<Case> cases;
  for (double k : {1e-3, 0.05, 0.3, 5.0}) {
    cases.push_back(make_case("P_lin(k = " + std::to_string(k) + ", a = 0.5)",
                              [k](const auto& c) { return c.linear_power(k, 0.5); }));
  }
  cases.push_back(
      make_case("sigma(R = 2)", [](const auto& c) { return c.linear_power_today().sigma(2.0); }));
  return cases;
}

}  // namespace

TEST_CASE("Derivatives of background and growth match finite differences",
          "[cosmology][derivatives]") {
  // Flat with radiation (the series branch of D_M carries d/dOmega_k at Omega_k = 0), then
  // curved w0wa models on either side of the sinh/sin branches.
  Parameters<double> p;
  check_all(p, {}, background_and_growth_cases());
  auto open = diffpm::test::ccl_class_model(4);
  check_all(open, {}, background_and_growth_cases());
  auto closed = diffpm::test::ccl_model(5);
  check_all(closed, {}, background_and_growth_cases());
}

TEST_CASE("Derivatives of the linear power spectrum match finite differences",
          "[cosmology][derivatives]") {
  const Parameters<double> p;
  for (Transfer t : {Transfer::eisenstein_hu, Transfer::eisenstein_hu_nowiggle, Transfer::bbks}) {
    CosmologyOptions o;
    o.transfer = t;
    INFO("transfer " << static_cast<int>(t));
    check_all(p, o, power_cases());
  }
}
