// The cosmology interface (cosmology/model.hpp): diffpm's Cosmology implements it with its own
// tables' bits; a TabulatedCosmology (cosmology/tabulated.hpp) of Einstein-de Sitter gives the
// closed-form step and LPT factors, one sampled from a Cosmology reproduces its factors, runs
// and maps; bad tables are refused; and a user's own Model drives run_simulation.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/tabulated.hpp"
#include "diffpm/ic/linear_field.hpp"
#include "diffpm/io/cosmology_table_file.hpp"
#include "diffpm/lensing/lensing_efficiency.hpp"
#include "diffpm/lensing/lensing_simulation.hpp"
#include "diffpm/lensing/lightcone_coefficients.hpp"
#include "diffpm/nbody/fastpm_factors.hpp"
#include "diffpm/nbody/simulation.hpp"
#include "diffpm/particles/lpt.hpp"

using namespace diffpm;
using cosmology::CosmologyTable;
using cosmology::Model;
using cosmology::TabulatedCosmology;

namespace {

constexpr double c_over_H0 = 2997.92458;  // Mpc/h

/// Relative difference, |a - b| / |b|.
double rel(double a, double b) { return std::abs(a - b) / std::abs(b); }

/// A generic cosmology away from Planck: w0wa dark energy, radiation, no curvature unless asked.
cosmology::Parameters<double> generic_parameters(double Omega_k = 0.0) {
  cosmology::Parameters<double> p;
  p.Omega_c = 0.28;
  p.Omega_b = 0.045;
  p.h = 0.71;
  p.n_s = 0.95;
  p.sigma8 = 0.78;
  p.w0 = -0.9;
  p.wa = 0.15;
  p.Omega_k = Omega_k;
  return p;
}

/// The scale factors a_min = a_0 < ... < a_{n-1} = 1, uniform in ln a (h = -ln a_min / (n-1)).
std::vector<double> log_grid(double a_min, int rows) {
  std::vector<double> a(rows);
  for (int i = 0; i < rows; ++i)
    a[i] = std::exp(std::log(a_min) * double(rows - 1 - i) / (rows - 1));
  a.front() = a_min;
  a.back() = 1.0;
  return a;
}

/// The columns of `c` at the scale factors `a`, with P_lin(k) sampled at 4000 points uniform in
/// ln k over [1e-5, 1e3] h/Mpc (400 per decade: the BAO period, 0.063 h/Mpc, is >= 6 points
/// even at k = 1 h/Mpc, where the wiggles are < 2e-5 of P).
CosmologyTable sample(const cosmology::Cosmology<double>& c, const std::vector<double>& a) {
  CosmologyTable t;
  t.a = a;
  for (double x : a) {
    t.E.push_back(c.E(x));
    t.D1.push_back(c.growth_factor(x));
    t.D2.push_back(c.growth_factor_2(x));
    t.f1.push_back(c.growth_rate(x));
    t.f2.push_back(c.growth_rate_2(x));
    t.chi.push_back(c.comoving_distance(x));
  }
  t.Omega_m = c.Omega_m();
  t.Omega_k = c.Omega_k();
  std::vector<double> k, P;
  for (int i = 0; i < 4000; ++i) {
    k.push_back(1e-5 * std::pow(1e8, i / 3999.0));
    P.push_back(c.linear_power_today()(k.back()));
  }
  t.power = std::make_shared<cosmology::PowerTable>(k, P, "sampled P(k)");
  t.origin = "sampled table";
  return t;
}

/// Einstein-de Sitter: E = a^-3/2, D1 = a, D2 = -3/7 a^2, f1 = 1, f2 = 2,
/// chi = 2 (c/H0) (1 - sqrt a), Omega_m = 1.
CosmologyTable einstein_de_sitter(const std::vector<double>& a) {
  CosmologyTable t;
  t.a = a;
  for (double x : a) {
    t.E.push_back(std::pow(x, -1.5));
    t.D1.push_back(x);
    t.D2.push_back(-3.0 / 7.0 * x * x);
    t.f1.push_back(1.0);
    t.f2.push_back(2.0);
    t.chi.push_back(2.0 * c_over_H0 * (1.0 - std::sqrt(x)));
  }
  t.Omega_m = 1.0;
  t.origin = "EdS table";
  return t;
}

/// A grid from a = 1e-3 to 1 that is not uniform in ln a: row i at ln a = ln(1e-3) (1 - u)^1.3,
/// u = i / (n - 1), so the steps in ln a shrink towards a = 1 (from 0.034 to 0.0006 for 300
/// rows); it exercises the non-uniform Hermite interpolation.
std::vector<double> uneven_grid(int rows) {
  std::vector<double> a(rows);
  for (int i = 0; i < rows; ++i)
    a[i] = std::exp(std::log(1e-3) * std::pow(1.0 - double(i) / (rows - 1), 1.3));
  a.back() = 1.0;
  return a;
}

}  // namespace

TEMPLATE_TEST_CASE("Cosmology's Model functions are its own Background and Growth calls",
                   "[cosmology][model]", double, cosmology::ParameterDual) {
  using T = TestType;
  // Bit for bit, through a Model reference (virtual dispatch), values and derivatives: the
  // stages that now take the interface must compute what they computed from the tables.
  for (double Ok : {0.0, 0.05, -0.05}) {
    const auto p = generic_parameters(Ok);
    cosmology::Parameters<T> q;
    if constexpr (std::is_same_v<T, double>) {
      q = p;
    } else {
      q = cosmology::seed_parameters(p);
    }
    const cosmology::Cosmology<T> c(q);
    const Model<T>& m = c;
    const auto& bg = c.background();
    const auto& gr = c.growth();
    auto same = [](const T& x, const T& y) {
      CHECK(value_of(x) == value_of(y));
      for (int i = 0; i < cosmology::n_parameters; ++i) CHECK(derivative(x, i) == derivative(y, i));
    };
    same(m.Omega_m(), c.parameters().Omega_m());
    same(m.Omega_k(), c.parameters().Omega_k);
    for (double av : {1e-6, 1e-3, 0.02, 0.1, 0.37, 0.5, 0.81, 0.999, 1.0}) {
      const T a(av);
      same(m.E(a), bg.E(a));
      same(m.growth_factor(a), gr.growth_factor(a));
      same(m.growth_rate(a), gr.growth_rate(a));
      same(m.growth_factor_2(a), gr.growth_factor_2(a));
      same(m.growth_rate_2(a), gr.growth_rate_2(a));
      same(m.growth_factor_dlna(a), gr.growth_factor_dlna(a));
      same(m.growth_factor_2_dlna(a), gr.growth_factor_2_dlna(a));
      const T chi = m.comoving_distance(a);
      same(chi, bg.comoving_distance(a));
      same(m.scale_factor_at_distance(chi), bg.scale_factor_at_distance(chi));
      same(m.transverse_distance(chi), bg.transverse_distance(chi));
      same(m.curvature_cosine(chi), bg.curvature_cosine(chi));
      for (double k : {1e-3, 0.1, 2.0}) same(m.linear_power(k, a), c.linear_power(k, a));
    }
  }
}

TEST_CASE("An Einstein-de Sitter table gives the closed-form step and LPT factors",
          "[cosmology][model][tabulated]") {
  // Each interpolated quantity but chi is linear in t = ln a (ln E = -3/2 t, ln D1 = t,
  // ln(-D2) = ln(3/7) + 2t, f1 = 1, f2 = 2), which the Hermite cubics with these slopes (given,
  // or 5-row Lagrange slopes, exact for polynomials of degree 4) reproduce up to rounding:
  // 1e-12 relative covers the rounding of exp/log and of the cubic (measured <= 4e-15) and its
  // growth in the kick's difference G(a1) - G(a0) (measured <= 3e-14 for Delta a / a = 0.1).
  // chi = 2 (c/H0)(1 - e^{t/2}) carries the Hermite error h^4/384 |d^4 chi/dt^4| with
  // d^4 chi/dt^4 = -(c/H0)/8 sqrt(a) and h <= 0.034 (the widest step of the grid): 1.3e-6
  // sqrt(a) Mpc/h (measured 7.8e-7 sqrt(a)); a(chi) inherits it divided by |dchi/da| =
  // (c/H0)/sqrt(a): 4.3e-10 relative (measured 2.6e-10).
  const TabulatedCosmology eds(einstein_de_sitter(uneven_grid(300)));
  const double tol = 1e-12;
  for (double a : {1e-3, 0.0123, 0.1, 0.3141, 0.5, 0.77, 0.999, 1.0}) {
    CHECK(rel(eds.E(a), std::pow(a, -1.5)) < tol);
    CHECK(rel(eds.growth_factor(a), a) < tol);
    CHECK(rel(eds.growth_factor_2(a), -3.0 / 7.0 * a * a) < tol);
    CHECK(std::abs(eds.growth_rate(a) - 1.0) < tol);
    CHECK(std::abs(eds.growth_rate_2(a) - 2.0) < tol);
    const double chi = 2.0 * c_over_H0 * (1.0 - std::sqrt(a));
    CHECK(std::abs(eds.comoving_distance(a) - chi) <= 1.3e-6 * std::sqrt(a));
    CHECK(rel(eds.scale_factor_at_distance(chi), a) < 4.3e-10);
    // LPT: D1 = a, D2 = -3/7 a^2, p1 = a^2 E f1 D1 = a^3/2, p2 = a^2 E f2 D2 = -6/7 a^5/2.
    const auto f = particles::lpt_factors<double>(eds, a, 2);
    CHECK(rel(f.D1, a) < tol);
    CHECK(rel(f.D2, -3.0 / 7.0 * a * a) < tol);
    CHECK(rel(f.p1, std::pow(a, 1.5)) < tol);
    CHECK(rel(f.p2, -6.0 / 7.0 * std::pow(a, 2.5)) < tol);
  }
  CHECK(eds.growth_factor(1.0) == 1.0);
  CHECK(eds.comoving_distance(1.0) == 0.0);
  CHECK(eds.scale_factor_at_distance(0.0) == 1.0);

  // FastPM (nbody/fastpm_factors.hpp) with G_f = a^3 E dD1/da = a^3/2:
  //   drift = (a1 - a0) / a_p^3/2,   kick = (a1^3/2 - a0^3/2) / (3/2 a_f);
  // leapfrog: int da / (a^3 E) = 2 (a0^-1/2 - a1^-1/2), int da / (a^2 E) = 2 (a1^1/2 - a0^1/2)
  // (8-point Gauss-Legendre: < 1e-14 relative for a1 / a0 <= 1.5, the steps checked).
  const nbody::FastPmFactors<double> f(eds);
  const nbody::StepFactors<double> fastpm(eds, nbody::Stepper::fastpm);
  const nbody::StepFactors<double> leapfrog(eds, nbody::Stepper::leapfrog);
  for (const auto& [a0, a1] : std::vector<std::pair<double, double>>{
           {0.01, 0.015}, {0.1, 0.15}, {0.33, 0.4}, {0.9, 0.95}, {0.95, 1.0}}) {
    const double ah = std::sqrt(a0 * a1);
    auto drift = [](double x0, double x1, double ap) { return (x1 - x0) / std::pow(ap, 1.5); };
    auto kick = [](double x0, double x1, double af) {
      return (std::pow(x1, 1.5) - std::pow(x0, 1.5)) / (1.5 * af);
    };
    CHECK(rel(f.G_f(a1), std::pow(a1, 1.5)) < tol);
    CHECK(rel(f.drift(a0, a1, ah), drift(a0, a1, ah)) < tol);
    CHECK(rel(f.kick(a0, ah, a0), kick(a0, ah, a0)) < tol);
    const auto s = fastpm.step(a0, a1);
    CHECK(rel(s.kick_first, kick(a0, ah, a0)) < tol);
    CHECK(rel(s.drift, drift(a0, a1, ah)) < tol);
    CHECK(rel(s.kick_second, kick(ah, a1, a1)) < tol);
    const auto l = leapfrog.step(a0, a1);
    CHECK(rel(l.drift, 2.0 * (1.0 / std::sqrt(a0) - 1.0 / std::sqrt(a1))) < tol);
    CHECK(rel(l.kick_first, 2.0 * (std::sqrt(ah) - std::sqrt(a0))) < tol);
  }

  // D1 is normalised explicitly: the same history with D1 = 2a, D2 = -12/7 a^2 (D2 scales as
  // D1^2) and chi offset by 1e-7 Mpc/h gives the same functions.
  auto t = einstein_de_sitter(uneven_grid(300));
  for (std::size_t i = 0; i < t.a.size(); ++i) {
    t.D1[i] *= 2.0;
    t.D2[i] *= 4.0;
    t.chi[i] += 1e-7;
  }
  const TabulatedCosmology scaled(t);
  for (double a : {1e-3, 0.2, 0.7, 1.0}) {
    CHECK(rel(scaled.growth_factor(a), eds.growth_factor(a)) < 1e-15);
    CHECK(rel(scaled.growth_factor_2(a), eds.growth_factor_2(a)) < 1e-15);
    CHECK(std::abs(scaled.comoving_distance(a) - eds.comoving_distance(a)) < 1e-11);
  }
  CHECK(scaled.comoving_distance(1.0) == 0.0);
}

TEST_CASE("A table sampled from a Cosmology reproduces its factors",
          "[cosmology][model][tabulated]") {
  // 1400 rows uniform in ln a from a = 1e-3 (h = 0.0049). The reference is itself a set of
  // cubic interpolants on steps of 0.021 in ln a (Background, Growth), whose f1 (the D1' table)
  // and the slope of its D1 table differ by ~1e-7 between their nodes: the table interpolates
  // f1 itself (5-row slopes), so it follows the reference's f1, and the factors agree to the
  // interpolation error of the table's columns (measured: E 3e-12, D1 2e-10, D2 1.3e-9,
  // f1 3e-10, f2 6e-10, chi 3e-7 Mpc/h, P 7e-10 (the P(k) sampling), LPT factors 1.3e-9,
  // FastPM and leapfrog step factors 9.4e-9, the largest in the kick of the last half step,
  // where G_f(1) - G_f(0.9925) ~ 0.01 G_f amplifies the error of G_f 100-fold). Tolerances: 2x
  // the measured maxima. 300 rows (h = 0.023) give 6e-8 for the steps (f1's O(h^4) error).
  const cosmology::Cosmology<double> c(generic_parameters());
  const TabulatedCosmology t(sample(c, log_grid(1e-3, 1400)));
  CHECK(t.a_min() == 1e-3);
  CHECK(t.Omega_m() == c.Omega_m());
  for (double a = 1e-3; a <= 1.0; a *= 1.0137) {
    CHECK(rel(t.E(a), c.E(a)) < 1e-11);
    CHECK(rel(t.growth_factor(a), c.growth_factor(a)) < 4e-10);
    CHECK(rel(t.growth_factor_2(a), c.growth_factor_2(a)) < 3e-9);
    CHECK(rel(t.growth_rate(a), c.growth_rate(a)) < 7e-10);
    CHECK(rel(t.growth_rate_2(a), c.growth_rate_2(a)) < 1.2e-9);
    CHECK(std::abs(t.comoving_distance(a) - c.comoving_distance(a)) < 6e-7);
    const auto lt = particles::lpt_factors<double>(t, a, 2);
    const auto lc = particles::lpt_factors<double>(c, a, 2);
    CHECK(rel(lt.D1, lc.D1) < 4e-9);
    CHECK(rel(lt.D2, lc.D2) < 4e-9);
    CHECK(rel(lt.p1, lc.p1) < 4e-9);
    CHECK(rel(lt.p2, lc.p2) < 4e-9);
    for (double k : {1e-3, 0.05, 0.2, 1.0})
      CHECK(rel(t.linear_power(k, a), c.linear_power(k, a)) < 1.5e-9);
  }
  for (auto stepper : {nbody::Stepper::fastpm, nbody::Stepper::leapfrog}) {
    const nbody::StepFactors<double> st(t, stepper), sc(c, stepper);
    for (double a0 = 0.01; a0 < 0.99; a0 *= 1.31) {
      const double a1 = std::min(1.0, a0 * 1.31);
      const auto x = st.step(a0, a1), y = sc.step(a0, a1);
      CHECK(rel(x.kick_first, y.kick_first) < 2e-8);
      CHECK(rel(x.drift, y.drift) < 2e-8);
      CHECK(rel(x.kick_second, y.kick_second) < 2e-8);
    }
  }
}

TEMPLATE_TEST_CASE("A table sampled from a Cosmology reproduces run_simulation's particles",
                   "[cosmology][model][tabulated][nbody]", float, double) {
  using T = TestType;
  // The same run from the same seed with the Cosmology and with its 1400-row table: the
  // linear field differs by P's 7e-10 (half of it in the amplitude), LPT and step factors by
  // <= 1e-8 relative (test above). Displacements and momenta of ~10 (Mpc/h; max |p| = 13.6)
  // then move by ~1e-7, which 5 steps of this coarse run hardly amplify: double measured
  // 1.1e-8 Mpc/h in x and 2.2e-8 in p; tolerance 1e-7 (and 1e-7 max |p| / 10 for p). In float
  // the positions round at 2^-24 * 64 = 3.8e-6 Mpc/h and a force can move by an ulp of its own:
  // measured 1.1e-5 Mpc/h and 1.5e-5 in p, a few ulps; tolerance 1e-4.
  const cosmology::Cosmology<double> c(generic_parameters());
  const TabulatedCosmology t(sample(c, log_grid(1e-3, 1400)));
  nbody::SimulationConfig cfg;
  cfg.box = {64.0, 64.0, 64.0};
  cfg.particles = {16, 16, 16};
  cfg.mesh = {32, 32, 32};
  cfg.steps = 5;
  cfg.seed = 11;
  const auto rc = nbody::run_simulation<T>(c, cfg);
  const auto rt = nbody::run_simulation<T>(t, cfg);
  REQUIRE(rc.state.x.size() == rt.state.x.size());
  double dx = 0.0, dp = 0.0, pmax = 0.0;
  for (std::size_t i = 0; i < rc.state.x.size(); ++i) {
    for (int d = 0; d < 3; ++d) {
      double e = std::abs(double(rc.state.x[i][d]) - double(rt.state.x[i][d]));
      dx = std::max(dx, std::min(e, 64.0 - e));  // periodic
      dp = std::max(dp, std::abs(double(rc.state.p[i][d]) - double(rt.state.p[i][d])));
      pmax = std::max(pmax, std::abs(double(rc.state.p[i][d])));
    }
  }
  const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-7;
  CHECK(dx < tol);
  CHECK(dp < tol * pmax / 10.0);
}

TEMPLATE_TEST_CASE("A table sampled from a Cosmology reproduces a lensing run's maps",
                   "[cosmology][model][tabulated][lensing]", float, double) {
  using T = TestType;
  // Shells: a(chi_i) from the table's chi, within 3e-7 Mpc/h of the reference's (1e-10
  // relative in a); Born weights from the same chi(z). With particles moved by ~1e-8 Mpc/h
  // (double, test above) on planes of 8 Mpc/h cells, kappa moves by ~1e-9 of its rms: measured
  // 1.1e-9; tolerance 1e-7. In float the particles' ulps (~4e-6 Mpc/h) give ~1e-6 (measured
  // 1.2e-6); tolerance 1e-4.
  const cosmology::Cosmology<double> c(generic_parameters());
  const TabulatedCosmology t(sample(c, log_grid(1e-3, 1400)));
  nbody::SimulationConfig sim;
  sim.box = {128.0, 128.0, 512.0};
  sim.particles = {8, 8, 32};
  sim.mesh = {16, 16, 64};
  sim.steps = 4;
  sim.seed = 5;
  lensing::LensingConfig lens;
  lens.map = lensing::MapGeometry(32, 2.0);
  lens.planes = 4;
  const std::vector<lensing::SourceDistribution> src{
      lensing::SourceDistribution::fixed(0.25), lensing::SourceDistribution::gaussian(0.2, 0.05)};
  const auto mc = lensing::run_lensing_simulation<T>(c, sim, lens, src);
  const auto mt = lensing::run_lensing_simulation<T>(t, sim, lens, src);
  REQUIRE(mc.kappa.size() == 2);
  for (int i = 0; i < mc.shells.count(); ++i) {
    CHECK(std::abs(mt.shells.chi[i] - mc.shells.chi[i]) < 1e-6);
    CHECK(rel(mt.shells.a[i], mc.shells.a[i]) < 1e-9);
  }
  for (std::size_t s = 0; s < src.size(); ++s) {
    double rms = 0.0, diff = 0.0;
    for (std::size_t j = 0; j < mc.kappa[s].data.size(); ++j) {
      const double k = mc.kappa[s].data[j];
      rms += k * k;
      diff = std::max(diff, std::abs(k - double(mt.kappa[s].data[j])));
    }
    rms = std::sqrt(rms / double(mc.kappa[s].data.size()));
    CHECK(rms > 0.0);
    CHECK(diff < (std::is_same_v<T, float> ? 1e-4 : 1e-7) * rms);
  }
}

TEST_CASE("A curved table gives the Cosmology's lensing efficiency",
          "[cosmology][model][tabulated]") {
  // f_K and c_K follow from Omega_k and chi (model.hpp); with the table's chi within 3e-7
  // Mpc/h (3e-7 / chi_s relative), q(chi) agrees to ~1e-10: measured 1.4e-11; tolerance 1e-10.
  for (double Ok : {0.05, -0.05}) {
    const cosmology::Cosmology<double> c(generic_parameters(Ok));
    const TabulatedCosmology t(sample(c, log_grid(1e-3, 1400)));
    CHECK(t.Omega_k() == Ok);
    for (const auto& n : {lensing::SourceDistribution::fixed(1.2),
                          lensing::SourceDistribution::smail(2.0, 1.5, 0.6)}) {
      const lensing::LensingEfficiency<double> qc(c, n), qt(t, n);
      CHECK(std::abs(qt.chi_max() - qc.chi_max()) < 1e-6);
      double dq = 0.0;
      for (double chi = 0.0; chi < 3500.0; chi += 50.0)
        dq = std::max(dq, std::abs(qt(chi) - qc(chi)));
      CHECK(dq < 1e-10);
    }
  }
}

TEST_CASE("Bad cosmology tables are refused, naming the value", "[cosmology][model][tabulated]") {
  const auto good = einstein_de_sitter(log_grid(1e-2, 50));
  CHECK_NOTHROW(TabulatedCosmology(good));
  auto refused = [&](const std::function<void(CosmologyTable&)>& spoil, const std::string& text) {
    CosmologyTable t = good;
    spoil(t);
    try {
      TabulatedCosmology bad(t);
      FAIL("accepted a table that should fail with: " << text);
    } catch (const InvalidArgument& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(text) != std::string::npos);
    }
  };
  refused([](CosmologyTable& t) { t.E.pop_back(); }, "50 scale factors but 49 E values");
  refused([](CosmologyTable& t) { t.chi.push_back(0.0); }, "51 chi values");
  refused([](CosmologyTable& t) { std::swap(t.a[10], t.a[11]); }, "a must increase strictly");
  refused([](CosmologyTable& t) { t.E[7] = -t.E[7]; }, "has E = -");
  refused([](CosmologyTable& t) { t.D1[3] = std::nan(""); }, "has D1 = nan");
  refused([](CosmologyTable& t) { t.f2[20] = INFINITY; }, "has f2 = inf");
  refused([](CosmologyTable& t) { t.a[0] = 0.0; }, "has a = 0");
  refused([](CosmologyTable& t) { t.D1[5] = 0.0; }, "has D1 = 0");
  refused(
      [](CosmologyTable& t) {
        for (auto& d : t.D2) d = -d;
      },
      "must be < 0: diffpm's D2 is -3/7 D1^2");
  refused([](CosmologyTable& t) { t.a.back() = 0.99; }, "the last row has a = 0.99");
  refused(
      [](CosmologyTable& t) {
        t.a[48] = 1.0 + 1e-13;
        t.a[49] = 1.0 + 2e-13;
      },
      "row 49 has a = 1.0000000000001 (only the last row may be at a = 1)");
  refused(
      [](CosmologyTable& t) {
        for (auto& e : t.E) e *= 70.0;
      },
      "E = 70 (must be 1");
  refused([](CosmologyTable& t) { t.chi.back() = 1.0; }, "has chi = 1 (must be 0");
  refused([](CosmologyTable& t) { t.chi[4] = t.chi[3]; }, "must decrease strictly");
  refused([](CosmologyTable& t) { t.Omega_m = 0.0; }, "Omega_m = 0");
  refused([](CosmologyTable& t) { t.Omega_k = NAN; }, "Omega_k = nan");
  refused(
      [](CosmologyTable& t) {
        for (auto& a : t.a) a = 0.01 + 0.99 * (a - 0.01) / 0.99;
        t.a.resize(4);
        t.E.resize(4), t.D1.resize(4), t.D2.resize(4), t.f1.resize(4), t.f2.resize(4),
            t.chi.resize(4);
      },
      "4 rows (need >= 5)");
  // Inconsistent columns: f given against z (f = -dlnD/dz = -f / (1 + z)... here simply 1/a),
  // D2 growing as D1 instead of D1^2, chi in Mpc for h = 0.7 (chi / 0.7).
  refused(
      [](CosmologyTable& t) {
        for (std::size_t i = 0; i < t.a.size(); ++i) t.f1[i] = 1.0 / t.a[i];
      },
      "ln D1 (with slope f1) changes by");
  refused(
      [](CosmologyTable& t) {
        for (std::size_t i = 0; i < t.a.size(); ++i) t.D2[i] = -3.0 / 7.0 * t.a[i];
      },
      "ln(-D2) (with slope f2)");
  refused(
      [](CosmologyTable& t) {
        for (auto& x : t.chi) x /= 0.7;
      },
      "check units");

  // Queries outside [a_min, 1] (and distances outside [0, chi(a_min)]) throw OutOfRange, as
  // Background's do, naming the value and the range.
  const TabulatedCosmology eds(good);
  auto out_of_range = [](const std::function<void()>& f, const std::string& text) {
    try {
      f();
      FAIL("no exception; expected " << text);
    } catch (const OutOfRange& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(text) != std::string::npos);
    }
  };
  out_of_range([&] { eds.E(0.005); },
               "a = 0.005 (z = 199) is outside the tabulated range [0.01, 1]");
  out_of_range([&] { eds.growth_factor(1.5); }, "growth_factor: scale factor a = 1.5");
  out_of_range([&] { eds.growth_rate_2(std::nan("")); }, "a = nan");
  out_of_range([&] { eds.comoving_distance(0.0); }, "a = 0 ");
  out_of_range([&] { eds.scale_factor_at_distance(-1.0); }, "chi = -1 Mpc/h is outside [0, ");
  out_of_range([&] { eds.scale_factor_at_distance(6000.0); }, "chi = 6000 Mpc/h");
  CHECK_THROWS_AS(eds.linear_power(0.1, 0.5), InvalidArgument);  // no P(k) given
  // A run that starts before the table is refused by its first query.
  auto with_power = good;
  with_power.power =
      std::make_shared<cosmology::PowerTable>(std::vector<double>{1e-3, 1e-2, 1e-1, 1.0, 10.0},
                                              std::vector<double>{1e3, 1e4, 1e4, 1e3, 1e1});
  const TabulatedCosmology eds_p(with_power);
  nbody::SimulationConfig cfg;
  cfg.box = {32.0, 32.0, 32.0};
  cfg.particles = {4, 4, 4};
  cfg.mesh = {8, 8, 8};
  cfg.a_start = 0.005;
  cfg.steps = 2;
  CHECK_THROWS_AS(nbody::run_simulation<double>(eds_p, cfg), OutOfRange);
  cfg.a_start = 0.02;
  CHECK_NOTHROW(nbody::run_simulation<double>(eds_p, cfg));
}

namespace {
/// A user's own cosmology in a few lines: each function of the interface a lambda.
struct LambdaCosmology : Model<double> {
  std::function<double(double)> e, d1, d2, f1, f2, chi, a_of_chi, p;
  double om = 1.0;
  double E(const double& a) const override { return e(a); }
  double Omega_m() const override { return om; }
  double growth_factor(const double& a) const override { return d1(a); }
  double growth_rate(const double& a) const override { return f1(a); }
  double growth_factor_2(const double& a) const override { return d2(a); }
  double growth_rate_2(const double& a) const override { return f2(a); }
  double comoving_distance(const double& a) const override { return chi(a); }
  double scale_factor_at_distance(const double& c) const override { return a_of_chi(c); }
  double linear_power(double k, const double& a) const override { return p(k) * d1(a) * d1(a); }
};
}  // namespace

TEMPLATE_TEST_CASE("A user's own Model drives run_simulation", "[cosmology][model][nbody]", float,
                   double) {
  using T = TestType;
  // Einstein-de Sitter in closed form, and a power law P(k) = 2e4 (k / 0.1)^-1.5 (Mpc/h)^3.
  LambdaCosmology eds;
  eds.e = [](double a) { return std::pow(a, -1.5); };
  eds.d1 = [](double a) { return a; };
  eds.d2 = [](double a) { return -3.0 / 7.0 * a * a; };
  eds.f1 = [](double) { return 1.0; };
  eds.f2 = [](double) { return 2.0; };
  eds.chi = [](double a) { return 2.0 * c_over_H0 * (1.0 - std::sqrt(a)); };
  eds.a_of_chi = [](double c) { return std::pow(1.0 - c / (2.0 * c_over_H0), 2.0); };
  eds.p = [](double k) { return 2e4 * std::pow(k / 0.1, -1.5); };
  // The same history as a table (with the same P(k) sampled): the two runs agree to the
  // table's interpolation error, ~1e-14 for these power laws, and P(k)'s spline, exact for a
  // power law up to rounding (chi plays no part in a run). Measured 3e-12 Mpc/h in double, and
  // 1.5e-5 (4 ulps of positions near 64 Mpc/h) in float: tolerances 1e-9 and 1e-4 Mpc/h.
  auto table = einstein_de_sitter(uneven_grid(300));
  std::vector<double> k, P;
  for (int i = 0; i < 400; ++i) {
    k.push_back(1e-4 * std::pow(1e7, i / 399.0));
    P.push_back(eds.p(k.back()));
  }
  table.power = std::make_shared<cosmology::PowerTable>(k, P);
  const TabulatedCosmology tab(table);

  nbody::SimulationConfig cfg;
  cfg.box = {64.0, 64.0, 64.0};
  cfg.particles = {16, 16, 16};
  cfg.mesh = {32, 32, 32};
  cfg.steps = 4;
  cfg.a_start = 0.05;
  cfg.seed = 3;
  const auto ru = nbody::run_simulation<T>(eds, cfg);
  const auto rt = nbody::run_simulation<T>(tab, cfg);
  double dx = 0.0, disp = 0.0;
  const auto& lattice = ru.state.x;
  for (std::size_t i = 0; i < lattice.size(); ++i) {
    for (int d = 0; d < 3; ++d) {
      const double e = std::abs(double(ru.state.x[i][d]) - double(rt.state.x[i][d]));
      dx = std::max(dx, std::min(e, 64.0 - e));
      disp = std::max(disp, std::abs(double(ru.state.p[i][d])));
    }
  }
  CHECK(disp > 0.0);  // the particles moved
  CHECK(dx < (std::is_same_v<T, float> ? 1e-4 : 1e-9));
  // And the lightcone coefficients and efficiency take it too.
  const auto lc =
      lensing::lightcone_coefficients<double>(eds, {lensing::SourceDistribution::fixed(0.5)}, 3);
  CHECK(rel(lc.shells.a[1], tab.scale_factor_at_distance(lc.shells.chi[1])) < 1e-9);
}

TEST_CASE("read_cosmology_table reads a table from a text file", "[cosmology][model][io]") {
  // The sampled table written with 17 significant digits reads back to the same doubles, so the
  // file's cosmology equals the in-memory one bit for bit.
  const cosmology::Cosmology<double> c(generic_parameters());
  const auto table = sample(c, log_grid(1e-2, 200));
  std::ostringstream text;
  text.precision(17);
  text << "# a E D1 D2 f1 f2 chi[Mpc/h]\n\n";
  for (std::size_t i = 0; i < table.a.size(); ++i) {
    text << table.a[i] << ' ' << table.E[i] << ' ' << table.D1[i] << ' ' << table.D2[i] << ' '
         << table.f1[i] << ' ' << table.f2[i] << ' ' << table.chi[i] << '\n';
  }
  const auto write = [](const std::string& name, const std::string& s) {
    const std::string path =
        (std::filesystem::temp_directory_path() /
         ("diffpm_test_cosmology_" + std::to_string(std::random_device{}()) + "_" + name))
            .string();
    std::ofstream(path) << s;
    return path;
  };
  const std::string path = write("good.txt", text.str());
  const auto from_file = io::read_cosmology_table(path, table.Omega_m, 0.0, table.power);
  const TabulatedCosmology in_memory(table);
  for (double a : {0.01, 0.05, 0.3, 0.77, 1.0}) {
    CHECK(from_file.E(a) == in_memory.E(a));
    CHECK(from_file.growth_factor(a) == in_memory.growth_factor(a));
    CHECK(from_file.growth_rate_2(a) == in_memory.growth_rate_2(a));
    CHECK(from_file.comoving_distance(a) == in_memory.comoving_distance(a));
    CHECK(from_file.linear_power(0.1, a) == in_memory.linear_power(0.1, a));
  }
  std::remove(path.c_str());

  // A sixth column missing, an eighth present, a table the class refuses (naming the file).
  const std::string short_row = write("short.txt", "0.5 1 1 -1 1 2\n");
  CHECK_THROWS_WITH(io::read_cosmology_table(short_row, 0.3),
                    Catch::Contains("line 1: column 7 is ''"));
  const std::string long_row = write("long.txt", "0.5 1 1 -1 1 2 3 4\n");
  CHECK_THROWS_WITH(io::read_cosmology_table(long_row, 0.3),
                    Catch::Contains("has more than 7 columns"));
  const std::string bad = write("bad.txt", "# D2 > 0\n0.5 8 0.5 0.1 1 2 100\n" + text.str());
  CHECK_THROWS_WITH(io::read_cosmology_table(bad, 0.3),
                    Catch::Contains("cosmology file '" + bad + "': row 1 (a = 0.5) has D2 = 0.1"));
  CHECK_THROWS_AS(io::read_cosmology_table("/nonexistent/cosmology.txt", 0.3), IoError);
  for (const auto& p : {short_row, long_row, bad}) std::remove(p.c_str());
}
