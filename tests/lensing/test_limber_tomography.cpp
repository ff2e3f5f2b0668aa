// Tomographic Limber C_ell (limber_tomography_cl): every pair against the single-pair function
// (values and all derivatives), the order of the pairs, thread independence, derivatives
// against finite differences, and input checks. Only T = double and ParameterDual: the Limber
// functions are not instantiated for float (Cosmology has no float build).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/core/openmp.hpp"
#include "diffpm/io/redshift_distribution_file.hpp"
#include "diffpm/lensing/limber.hpp"
#include "diffpm/lensing/limber_tomography.hpp"

using namespace diffpm::cosmology;
using namespace diffpm::lensing;
using diffpm::derivative;
using diffpm::value_of;

namespace {

/// Bins with distinct and repeated z_max, narrow and wide, low and high, a histogram, a fixed
/// source, and a fixed source below z = 1e-3 (whose rule halves below its own z_max, so it
/// shares no panel with the others).
std::vector<SourceDistribution> test_bins() {
  const std::string ccl = std::string(DIFFPM_TEST_DATA_DIR) + "/ccl/";
  return {SourceDistribution::gaussian(0.3, 0.05),
          SourceDistribution::gaussian(0.7, 0.1),
          SourceDistribution::gaussian(0.7, 0.1),  // the same z_max as the previous bin
          SourceDistribution::smail(2.0, 1.5, 0.5),
          diffpm::io::read_source_distribution(ccl + "bin2_histo.txt"),
          SourceDistribution::fixed(1.0),
          SourceDistribution::fixed(5e-4),
          SourceDistribution::gaussian(1.5, 0.2)};
}

template <class T>
std::vector<LensingEfficiency<T>> efficiencies(const Cosmology<T>& c,
                                               const std::vector<SourceDistribution>& bins) {
  std::vector<LensingEfficiency<T>> q;
  for (const auto& n : bins) q.emplace_back(c, n);
  return q;
}

/// ell = 0, 2 and 2..10^4 25% apart.
std::vector<double> test_ells() {
  std::vector<double> ells = {0.0};
  for (double l = 2.0; l < 1e4; l *= 1.25) ells.push_back(std::round(l));
  ells.push_back(1e4);
  return ells;
}

/// Largest |a - b| over the value and every derivative component, relative to |b|'s value (a
/// derivative is compared on the scale of the value: C_ell's derivatives with respect to
/// parameters of order 1 are of that order, and some components pass through zero).
template <class T>
double difference(const T& a, const T& b) {
  const double scale = std::abs(value_of(b)) + 1e-300;
  double d = std::abs(value_of(a) - value_of(b)) / scale;
  if constexpr (!std::is_arithmetic_v<T>) {
    for (int i = 0; i < n_parameters; ++i)
      d = std::max(d, std::abs(derivative(a, i) - derivative(b, i)) / scale);
  }
  return d;
}

template <class T>
void check_pairs_equal_single(const Cosmology<T>& c, const std::vector<SourceDistribution>& bins) {
  const auto q = efficiencies(c, bins);
  const auto ells = test_ells();
  for (auto model : {NonlinearModel::linear, NonlinearModel::halofit}) {
    const auto all = limber_tomography_cl(c, q, ells, model);
    REQUIRE(all.bins() == bins.size());
    REQUIRE(all.pairs() == bins.size() * (bins.size() + 1) / 2);
    REQUIRE(all.ells() == ells);
    double worst = 0.0, worst_swapped = 0.0;
    for (std::size_t i = 0; i < bins.size(); ++i) {
      for (std::size_t j = i; j < bins.size(); ++j) {
        const auto single = limber_convergence_cl(c, q[i], q[j], ells, model);
        const auto swapped = limber_convergence_cl(c, q[j], q[i], ells, model);
        REQUIRE(all(i, j).size() == ells.size());
        for (std::size_t l = 0; l < ells.size(); ++l) {
          worst = std::max(worst, difference(all(i, j)[l], single[l]));
          worst_swapped = std::max(worst_swapped, difference(all(i, j)[l], swapped[l]));
        }
      }
    }
    INFO("model " << static_cast<int>(model) << ": against (i, j) " << worst << ", against (j, i) "
                  << worst_swapped);
    // Same nodes, same products in the same order, same order of summation: measured 0
    // (bit for bit) for (i, j). 1e-14 leaves room for a compiler that contracts the two
    // inlined copies of the sums differently (one rounding per term of a sum of positive
    // terms, ~500 nodes); a wrong node set or a missing panel moves C_ell by >= 1e-9 (the
    // rule's own error, tests/lensing/test_limber.cpp).
    CHECK(worst <= 1e-14);
    // (j, i) multiplies q_j before q_i: one rounding per product, measured 5e-16 in double
    // and 4e-15 with derivatives (on the scale of the value).
    CHECK(worst_swapped <= 1e-14);
  }
}

}  // namespace

TEST_CASE("Tomographic C_ell equals the single-pair function for every pair",
          "[lensing][limber][tomography]") {
  // w0wa, open, radiation, EH wiggles: every term of the integrand acts.
  Parameters<double> p;
  p.w0 = -0.95;
  p.wa = 0.1;
  p.Omega_k = 0.02;
  const auto bins = test_bins();
  SECTION("double") { check_pairs_equal_single(Cosmology<double>(p), bins); }
  SECTION("all parameter derivatives") {
    // Four of the bins (a repeated z_max, the histogram, the one below z = 1e-3): the pairs
    // of all eight in dual arithmetic took 16 minutes in the sanitizer build, and these four
    // exercise every way two bins' panels can relate.
    const std::vector<SourceDistribution> some = {bins[1], bins[2], bins[4], bins[6]};
    check_pairs_equal_single(Cosmology<ParameterDual>(seed_parameters(p)), some);
  }
}

TEST_CASE("Tomographic C_ell: order of the pairs and symmetry", "[lensing][limber][tomography]") {
  const Cosmology<double> c{Parameters<double>{}};
  const std::vector<SourceDistribution> bins = {SourceDistribution::gaussian(0.5, 0.1),
                                                SourceDistribution::gaussian(1.0, 0.1),
                                                SourceDistribution::fixed(1.2)};
  const auto q = efficiencies(c, bins);
  const std::vector<double> ells = {10.0, 100.0, 1000.0};
  const auto all = limber_tomography_cl(c, q, ells);
  // Row by row of the upper triangle: (0,0) (0,1) (0,2) (1,1) (1,2) (2,2).
  const std::size_t expected[3][3] = {{0, 1, 2}, {1, 3, 4}, {2, 4, 5}};
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      CHECK(all.pair_index(i, j) == expected[i][j]);
      CHECK(TomographicSpectra<double>::pair_index(i, j, 3) == expected[i][j]);
      CHECK(&all(i, j) == &all.spectra()[expected[i][j]]);  // C_ij and C_ji: one spectrum
    }
  }
  // Cross spectra lie between the autos (Cauchy-Schwarz on the positive integrand).
  for (std::size_t l = 0; l < ells.size(); ++l)
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = i + 1; j < 3; ++j)
        CHECK(all(i, j)[l] * all(i, j)[l] <= all(i, i)[l] * all(j, j)[l]);
  // One bin: its auto spectrum alone.
  const auto one = limber_tomography_cl(c, std::vector<LensingEfficiency<double>>{q[1]}, ells);
  REQUIRE(one.pairs() == 1);
  CHECK(one(0, 0) == all(1, 1));
  // No ells: every spectrum empty.
  const auto none = limber_tomography_cl(c, q, {});
  REQUIRE(none.pairs() == 6);
  for (const auto& s : none.spectra()) CHECK(s.empty());
}

TEST_CASE("Tomographic C_ell does not depend on the number of threads",
          "[lensing][limber][tomography]") {
  const Cosmology<ParameterDual> c(seed_parameters(Parameters<double>{}));
  const auto q = efficiencies(c, test_bins());
  const auto ells = test_ells();
  const int threads = diffpm::max_threads();
  diffpm::set_threads(1);
  const auto one = limber_tomography_cl(c, q, ells);
  diffpm::set_threads(3);
  const auto three = limber_tomography_cl(c, q, ells);
  diffpm::set_threads(threads);
  // Bit for bit: each ell is one loop iteration whose sums run in a fixed order.
  for (std::size_t p = 0; p < one.pairs(); ++p) {
    for (std::size_t l = 0; l < ells.size(); ++l) {
      CHECK(one.spectra()[p][l].value() == three.spectra()[p][l].value());
      for (int i = 0; i < n_parameters; ++i)
        CHECK(one.spectra()[p][l].derivatives()[i] == three.spectra()[p][l].derivatives()[i]);
    }
  }
}

TEST_CASE("Tomographic C_ell derivatives match finite differences",
          "[lensing][limber][tomography][derivatives]") {
  Parameters<double> p;
  p.w0 = -0.95;
  p.wa = 0.1;
  const std::vector<SourceDistribution> bins = {SourceDistribution::gaussian(0.5, 0.1),
                                                SourceDistribution::smail(2.0, 1.5, 0.5),
                                                SourceDistribution::fixed(1.2)};
  const std::vector<double> ells = {2.0, 30.0, 300.0, 3000.0};
  auto outputs = [&](const auto& cosmo) {
    using T = std::decay_t<decltype(cosmo.parameters().h)>;
    const auto q = efficiencies(cosmo, bins);
    std::vector<T> out;
    for (auto model : {NonlinearModel::linear, NonlinearModel::halofit}) {
      const auto all = limber_tomography_cl(cosmo, q, ells, model);
      for (const auto& s : all.spectra()) out.insert(out.end(), s.begin(), s.end());
    }
    return out;
  };
  const auto dual = outputs(Cosmology<ParameterDual>(seed_parameters(p)));
  for (Parameter par : {Parameter::Omega_c, Parameter::h, Parameter::w0}) {
    const int i = static_cast<int>(par);
    // Steps as in test_limber.cpp (relative 1e-4; absolute 1e-4 for w0): central differences
    // err by ~1e-9 relative.
    const double h = par == Parameter::w0 ? 1e-4 : 1e-4 * p[par];
    auto up = p, dn = p;
    up[par] += h;
    dn[par] -= h;
    const auto vu = outputs(Cosmology<double>(up)), vd = outputs(Cosmology<double>(dn));
    REQUIRE(vu.size() == dual.size());
    for (std::size_t j = 0; j < dual.size(); ++j) {
      const double fd = (vu[j] - vd[j]) / (2.0 * h);
      INFO("output " << j << " d/d" << parameter_names[i] << ": dual " << dual[j].derivatives()[i]
                     << ", finite difference " << fd);
      // 1e-6 relative, as for the single-pair function: 1000x the finite difference's error,
      // while a derivative lost in sharing (dq/dtheta, dk/dtheta through 1/f_K, halofit's
      // dk_sigma/dtheta) is O(1).
      CHECK(dual[j].derivatives()[i] ==
            Approx(fd).epsilon(1e-6).margin(1e-9 * std::abs(dual[j].value())));
    }
  }
}

TEST_CASE("The Limber panels are shared between different z_max", "[lensing][limber]") {
  // Every edge but the last of a smaller z_max (>= 1e-3) is an edge of a larger one, bit for
  // bit: what lets the tomographic call evaluate P once per node for all pairs.
  const LimberOptions o;
  const auto small = diffpm::lensing::detail::limber_panel_edges(0.37, o);
  const auto large = diffpm::lensing::detail::limber_panel_edges(2.9, o);
  REQUIRE(small.size() < large.size());
  for (std::size_t e = 0; e + 1 < small.size(); ++e) CHECK(small[e] == large[e]);
  CHECK(small.back() == 0.37);
  CHECK(large.back() == 2.9);
  // No panel wider than 1/panels_per_efold in ln z above z = 1e-3.
  for (std::size_t e = o.refinement + 1; e + 1 < large.size(); ++e)
    CHECK(std::log(large[e + 1] / large[e]) <= 1.0 / o.panels_per_efold * (1 + 1e-12));
}

TEST_CASE("Tomographic input is checked", "[lensing][limber][tomography]") {
  const Cosmology<double> c{Parameters<double>{}};
  const Cosmology<double> other{Parameters<double>{}};
  const std::vector<LensingEfficiency<double>> q = {
      LensingEfficiency<double>(c, SourceDistribution::fixed(1.0)),
      LensingEfficiency<double>(other, SourceDistribution::fixed(1.0))};
  using diffpm::InvalidArgument;
  CHECK_THROWS_AS(limber_tomography_cl(c, q, {10.0}), InvalidArgument);
  CHECK_THROWS_WITH(limber_tomography_cl(c, q, {10.0}), Catch::Contains("efficiencies[1]"));
  CHECK_THROWS_AS(limber_tomography_cl(c, std::vector<LensingEfficiency<double>>{}, {10.0}),
                  InvalidArgument);
  CHECK_THROWS_WITH(limber_tomography_cl(c, std::vector<LensingEfficiency<double>>{}, {10.0}),
                    Catch::Contains("efficiencies: an empty list"));
  const std::vector<LensingEfficiency<double>> good = {q[0]};
  CHECK_THROWS_AS(limber_tomography_cl(c, good, {10.0, -1.0}), InvalidArgument);
  CHECK_THROWS_WITH(limber_tomography_cl(c, good, {10.0, -1.0}), Catch::Contains("ell = -1"));
  CHECK_THROWS_WITH(limber_tomography_cl(c, good, {NAN}), Catch::Contains("ell = nan"));
  CHECK_THROWS_WITH(limber_tomography_cl(c, good, {INFINITY}), Catch::Contains("ell = inf"));
  LimberOptions bad;
  bad.panels_per_efold = 0;
  CHECK_THROWS_WITH(limber_tomography_cl(c, good, {10.0}, NonlinearModel::halofit, bad),
                    Catch::Contains("panels_per_efold = 0"));
  bad = LimberOptions{};
  bad.refinement = -1;
  CHECK_THROWS_WITH(limber_tomography_cl(c, good, {10.0}, NonlinearModel::halofit, bad),
                    Catch::Contains("refinement = -1"));
  CHECK_THROWS_WITH(limber_tomography_cl(c, good, {10.0}, static_cast<NonlinearModel>(7)),
                    Catch::Contains("nonlinear model 7"));
  const auto all = limber_tomography_cl(c, good, {10.0});
  CHECK_THROWS_AS(all(0, 1), InvalidArgument);
  CHECK_THROWS_WITH(all(1, 0), Catch::Contains("pair (1, 0) with 1 bins"));
}
