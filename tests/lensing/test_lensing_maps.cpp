// Convergence maps from whole runs (lensing_simulation.hpp) against Limber theory:
// an LPT-only run in the linear regime against the linear Limber C_ell, within the cosmic
// variance of each ell bin.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/lensing/angular_power.hpp"
#include "diffpm/lensing/lensing_simulation.hpp"
#include "diffpm/lensing/limber.hpp"

namespace lensing = diffpm::lensing;
using diffpm::cosmology::Cosmology;
using diffpm::cosmology::Parameters;

namespace {

double sinc(double x) { return std::fabs(x) < 1e-8 ? 1.0 : std::sin(x) / x; }

// The expected binned C_ell of a Born map made by lensing_simulation.hpp from a field whose
// matter power is `power(k, a)`:
//   C(ell_m) = int_0^chi_s dchi W(chi)^2 / chi^2 P((|ell_m| + 1/2) / chi, a(chi)) F(ell_m, chi),
// W = 3/2 Omega_m (H0/c)^2 chi q(chi) / a (limber.hpp), averaged over the modes of each bin as
// the estimator averages them. F is the transverse window of the map making at distance chi,
// whose plane cell there is alpha = max(pixel, plane_cell / chi) (PlaneGrid::covering): the 2D
// CIC deposit multiplies each mode's amplitude by sinc^2(ell_x alpha / 2) sinc^2(ell_y alpha / 2),
// so its power by the 4th powers; the bilinear sampling of the plane at the pixel centres does it
// once more where the plane is coarser than the map (where alpha = pixel the plane points are
// the pixel centres and sampling is exact). F = 1 gives the plain Limber integral; the test
// checks that case against limber_convergence_cl.
template <class Power>
std::vector<double> windowed_limber(const Cosmology<double>& cosmo, double z_source,
                                    const lensing::MapGeometry& map, double plane_cell,
                                    const std::vector<double>& edges, Power&& power, bool window) {
  const auto& bg = cosmo.background();
  const double chi_s = bg.comoving_distance(1.0 / (1.0 + z_source));
  const double pre = 1.5 * cosmo.parameters().Omega_m() /
                     (diffpm::constants::hubble_distance * diffpm::constants::hubble_distance);
  // Midpoint rule in chi with 400 nodes: the integrand is smooth on scales of ~100 Mpc/h, so the
  // rule's error (~(h/chi)^2 ~ 1e-5) is far below the statistical tolerances used here.
  constexpr int nodes = 400;
  struct Node {
    double chi, weight, a, alpha;
  };
  std::vector<Node> nd;
  for (int i = 0; i < nodes; ++i) {
    const double chi = chi_s * (i + 0.5) / nodes;
    const double a = bg.scale_factor_at_distance(chi);
    const double W = pre * chi * (1.0 - chi / chi_s) / a;
    nd.push_back(
        {chi, chi_s / nodes * W * W / (chi * chi), a, std::max(map.pixel_rad(), plane_cell / chi)});
  }
  return lensing::bin_average(map, edges, [&](double lx, double ly) {
    const double ell = std::hypot(lx, ly);
    double c = 0.0;
    for (const auto& n : nd) {
      double f = 1.0;
      if (window) {
        const double s = sinc(0.5 * lx * n.alpha) * sinc(0.5 * ly * n.alpha);
        f = std::pow(s, 4);
        if (n.alpha > map.pixel_rad() * (1.0 + 1e-12)) f *= std::pow(s, 4);
      }
      c += n.weight * power((ell + 0.5) / n.chi, n.a) * f;
    }
    return c;
  });
}

}  // namespace

TEMPLATE_TEST_CASE(
    "Born maps of an LPT-only run match the linear Limber C_ell within cosmic "
    "variance",
    "[lensing][limber][maps]", float, double) {
  // Linear regime: sigma8 = 0.1 keeps delta ~ 0.1 on the scales probed, so that the LPT
  // particles paint the linear field (second-order terms ~1% of the power), and the test is of
  // the map making, not of LPT. Box 250 Mpc/h with 128^3 particles (spacing 1.95 Mpc/h), the
  // planes at that comoving resolution (finer planes show the particle lattice, not the field,
  // at this low amplitude), 10 x 10 deg in 128^2 pixels (4.7 arcmin), 16 shells to z_s = 1,
  // replicas shifted randomly (without shifts the replicated box adds coherent power at low
  // ell: the same k_par = 0 modes line up in every replica).
  Parameters<double> par;
  par.sigma8 = 0.1;
  const Cosmology<double> cosmo(par);
  diffpm::nbody::SimulationConfig sim;
  sim.box = {250.0, 250.0, 250.0};
  sim.particles = {128, 128, 128};
  sim.mesh = {128, 128, 128};
  sim.steps = 0;
  sim.seed = 7;
  sim.fixed_amplitude = true;
  lensing::LensingConfig lens;
  lens.map = lensing::MapGeometry(128, 10.0);
  lens.planes = 16;
  lens.plane_cell = 250.0 / 128;
  lens.random_shifts = true;
  lens.shift_seed = 3;
  const double z_s = 1.0;
  const auto r = lensing::run_lensing_simulation<TestType>(
      cosmo, sim, lens, {lensing::SourceDistribution::fixed(z_s)});
  REQUIRE(r.kappa.size() == 1);

  // ell from 2 ell_f = 72 to 720: above, the plane windows (sinc^8 at ell alpha / 2 ~ 1) and
  // the aliasing of the particle lattice dominate; below, the box (250 Mpc/h: k_f = 0.025 h/Mpc
  // is ell = k chi ~ 30 at the kernel's peak, 1100 Mpc/h) lacks the modes.
  const auto edges = lensing::log_ell_edges(72.0, 720.0, 8);
  const auto ps = lensing::angular_power_spectrum(r.kappa[0], edges);
  auto p_lin = [&](double k, double a) { return cosmo.linear_power(k, a); };
  const auto theory = windowed_limber(cosmo, z_s, lens.map, lens.plane_cell, edges, p_lin, true);

  // The plain integral (no window) is the linear Limber C_ell of limber.hpp averaged over the
  // same modes; 0.1% allows for the midpoint rule above (limber.hpp's quadrature is at 4e-9).
  {
    const auto plain = windowed_limber(cosmo, z_s, lens.map, lens.plane_cell, edges, p_lin, false);
    const lensing::LensingEfficiency<double> q(cosmo, lensing::SourceDistribution::fixed(z_s));
    const auto cl = lensing::bin_average(lens.map, edges, [&](double lx, double ly) {
      return lensing::limber_convergence_cl(cosmo, q, q, {std::hypot(lx, ly)},
                                            lensing::NonlinearModel::linear)[0];
    });
    for (std::size_t b = 0; b < cl.size(); ++b) CHECK(plain[b] == Approx(cl[b]).epsilon(1e-3));
  }

  // Per bin: a Gaussian field's binned estimate has standard deviation C sqrt(2 / n_modes)
  // (angular_power.hpp). Each bin must lie within 3 sigma, and the chi^2 over the bins below
  // its 99.9% point for 8 degrees of freedom (26.1). The random replica shifts make the planes
  // close to independent draws of the field; residual correlations between bins (the windows
  // of the 10 deg map) make the Gaussian sigma a slight underestimate, which 3 sigma absorbs.
  double chi2 = 0.0;
  for (std::size_t b = 0; b < ps.cl.size(); ++b) {
    const double sigma = theory[b] * std::sqrt(2.0 / double(ps.n_modes[b]));
    const double pull = (ps.cl[b] - theory[b]) / sigma;
    chi2 += pull * pull;
    INFO("ell " << ps.ell_mean[b] << ": map " << ps.cl[b] << ", theory " << theory[b] << ", ratio "
                << ps.cl[b] / theory[b] << ", " << ps.n_modes[b] << " modes");
    CHECK(std::fabs(pull) < 3.0);
  }
  CHECK(chi2 < 26.1);
}

TEST_CASE("run_lensing_simulation rejects bad input", "[lensing][maps]") {
  const Cosmology<double> cosmo{Parameters<double>{}};
  diffpm::nbody::SimulationConfig sim;
  sim.box = {100.0, 100.0, 100.0};
  sim.particles = {8, 8, 8};
  sim.mesh = {8, 8, 8};
  sim.steps = 2;
  lensing::LensingConfig lens;
  lens.map = lensing::MapGeometry(16, 5.0);
  const auto fixed = lensing::SourceDistribution::fixed(1.0);
  using diffpm::InvalidArgument;
  CHECK_THROWS_AS(lensing::run_lensing_simulation<float>(cosmo, sim, lens, {}), InvalidArgument);
  auto bad = lens;
  bad.planes = 0;
  CHECK_THROWS_AS(lensing::run_lensing_simulation<float>(cosmo, sim, bad, {fixed}),
                  InvalidArgument);
  bad = lens;
  bad.plane_cell = std::nan("");
  CHECK_THROWS_AS(lensing::run_lensing_simulation<float>(cosmo, sim, bad, {fixed}),
                  InvalidArgument);
  // The run stops at a = 0.3, before the nearest plane of 16 out to z = 1 (a ~ 0.97).
  auto early = sim;
  early.a_end = 0.3;
  CHECK_THROWS_WITH(lensing::run_lensing_simulation<float>(cosmo, early, lens, {fixed}),
                    Catch::Contains("a_end"));
  // Curved cosmologies are refused: the lightcone is flat-sky in a flat universe (the lensing
  // efficiency itself handles curvature, so the refusal is the simulation's own).
  Parameters<double> curved;
  curved.Omega_k = 0.05;
  const Cosmology<double> open_cosmo(curved);
  CHECK_THROWS_AS(lensing::run_lensing_simulation<float>(open_cosmo, sim, lens, {fixed}),
                  InvalidArgument);
  CHECK_THROWS_WITH(lensing::run_lensing_simulation<float>(open_cosmo, sim, lens, {fixed}),
                    Catch::Contains("Omega_k = 0.05"));
}

TEST_CASE("run_lensing_simulation takes the caller's white noise", "[lensing][maps]") {
  // The maps of a run from the seed's white noise, handed in, are the seeded run's maps.
  const Cosmology<double> cosmo{Parameters<double>{}};
  diffpm::nbody::SimulationConfig sim;
  sim.box = {200.0, 200.0, 200.0};
  sim.particles = {8, 8, 8};
  sim.mesh = {16, 16, 16};
  sim.steps = 2;
  sim.seed = 4;
  lensing::LensingConfig lens;
  lens.map = lensing::MapGeometry(16, 4.0);
  lens.planes = 6;
  const std::vector<lensing::SourceDistribution> sources{lensing::SourceDistribution::fixed(0.8)};
  const auto seeded = lensing::run_lensing_simulation<double>(cosmo, sim, lens, sources);
  const auto noise =
      diffpm::ic::white_noise<double>(diffpm::mesh::Grid(sim.particles, sim.box), sim.seed);
  const auto handed = lensing::run_lensing_simulation<double>(cosmo, sim, noise, lens, sources);
  REQUIRE(handed.kappa.size() == 1);
  CHECK(handed.kappa[0].data == seeded.kappa[0].data);
}
