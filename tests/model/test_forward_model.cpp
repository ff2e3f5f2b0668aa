// The forward model's gradient (model/forward_model.hpp): dL/dtheta for every cosmological
// parameter and dL/dnoise along random directions agree with central finite differences of the
// model itself, for a loss on convergence maps and for a loss on the final density; and the three
// adjoint modes give the same gradient bits in float and double.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/model/forward_model.hpp"

namespace {

using diffpm::cosmology::Parameter;
using diffpm::cosmology::Parameters;
namespace model = diffpm::model;
namespace lensing = diffpm::lensing;

// The small lensing configuration: 32^3 particles in 64 Mpc/h on a 64^3 force mesh,
// 5 FastPM steps from a = 0.66 to 1, 8 shells to the farthest source, a 4 degree, 24^2 pixel map.
// Two sources: a fixed one at z = 0.6 and a Gaussian n(z) at 0.45 +- 0.08 (its efficiency moves
// with the cosmology through chi(z)). The two farthest planes lie before a_start and are painted
// from LPT; the others during the PM steps, so both paths are checked.
model::ModelConfig small_config(bool lensing_maps, bool density) {
  model::ModelConfig c;
  auto& s = c.simulation;
  s.box = {64.0, 64.0, 64.0};
  s.particles = {32, 32, 32};
  s.mesh = {64, 64, 64};
  s.a_start = 0.66;
  s.a_end = 1.0;
  s.steps = 5;
  if (lensing_maps) {
    model::LensingSetup l;
    l.config.map = lensing::MapGeometry{24, 4.0};
    l.config.planes = 8;
    l.config.random_shifts = false;  // see check_against_finite_differences
    l.sources = {lensing::SourceDistribution::fixed(0.6),
                 lensing::SourceDistribution::gaussian(0.45, 0.08)};
    c.lensing = l;
  }
  c.final_density = density;
  return c;
}

// w0wa with radiation, so that every parameter acts.
Parameters<double> fiducial() {
  Parameters<double> p;
  p.w0 = -0.9;
  p.wa = 0.1;
  return p;
}

template <class T>
std::vector<T> gaussian_values(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g;
  std::vector<T> v(n);
  for (auto& x : v) x = T(g(rng));
  return v;
}

// L = sum_s sum_pix (kappa_s - t_s)^2 / (2 sigma^2) + sum_cells (delta - u)^2 / (2 sigma_d^2):
// diffpm-sim's map loss, with targets from another seed's run (t_s) or white noise (u), and its
// output adjoints. (A loss linear in kappa with white-noise weights was tried first: its gradient
// is a sum of cancelling terms, so the kinks below weigh 10x more in its finite differences.)
template <class T>
struct Loss {
  static constexpr double sigma = 1e-3, sigma_d = 10.0;
  std::vector<lensing::Map<T>> target;
  std::vector<T> density_target;
  Loss(const model::ModelConfig& c, const Parameters<double>& p) {
    if (c.lensing) {
      model::ForwardModel<T> m(c);
      target = m.forward(p, m.white_noise(99)).kappa;
    }
    if (c.final_density) {
      const auto& n = c.simulation.mesh;
      density_target = gaussian_values<T>(std::size_t(n[0]) * n[1] * n[2], 200);
    }
  }
  long double value(const model::ModelOutput<T>& out) const {
    long double L = 0.0L;
    for (std::size_t s = 0; s < target.size(); ++s)
      for (std::size_t i = 0; i < target[s].data.size(); ++i) {
        const long double d = (long double)out.kappa[s].data[i] - target[s].data[i];
        L += 0.5L * d * d / (sigma * sigma);
      }
    for (std::size_t i = 0; i < density_target.size(); ++i) {
      const long double d = (long double)out.density.data[i] - density_target[i];
      L += 0.5L * d * d / (sigma_d * sigma_d);
    }
    return L;
  }
  std::vector<lensing::Map<T>> kappa_bar(const model::ModelOutput<T>& out) const {
    std::vector<lensing::Map<T>> bar = target;
    for (std::size_t s = 0; s < bar.size(); ++s)
      for (std::size_t i = 0; i < bar[s].data.size(); ++i)
        bar[s].data[i] = T((double(out.kappa[s].data[i]) - target[s].data[i]) / (sigma * sigma));
    return bar;
  }
  diffpm::mesh::RealField<T> density_bar(const model::ModelOutput<T>& out) const {
    diffpm::mesh::RealField<T> bar;
    if (density_target.empty()) return bar;
    bar = diffpm::mesh::RealField<T>(out.density.grid);
    for (std::size_t i = 0; i < density_target.size(); ++i)
      bar.data[i] = T((double(out.density.data[i]) - density_target[i]) / (sigma_d * sigma_d));
    return bar;
  }
};

// Central differences of the model against its gradient, for the parameters in `params` and two
// random noise directions.
void check_against_finite_differences(const model::ModelConfig& cfg,
                                      const std::vector<Parameter>& params,
                                      const std::vector<std::uint64_t>& directions = {11, 12, 13,
                                                                                      14}) {
  using T = double;
  model::ForwardModel<T> m(cfg);
  const Parameters<double> p0 = fiducial();
  const auto noise = m.white_noise(7);
  const Loss<T> loss(cfg, p0);
  const auto& out = m.forward(p0, noise);
  const double L0 = double(loss.value(out));
  const auto g = m.gradient(loss.kappa_bar(out), loss.density_bar(out));
  CHECK(m.tape().timings().size() >= 3);

  auto L_at = [&](const Parameters<double>& p, const diffpm::mesh::RealField<T>& w) {
    return loss.value(m.forward(p, w));
  };
  // Step: 1e-7 of the parameter (absolute for w0, wa, Omega_k) and 1e-7 along a noise
  // direction. The model is piecewise smooth: CIC weights (force mesh, lightcone planes) and the
  // shells' line-of-sight hats have kinks, and every particle image that crosses one within +-h
  // biases the central difference. Measured on these configurations, that bias shrinks like
  // sqrt(h): ~1e-3 relative at h = 1e-5, 1e-4 at 1e-6, ~1e-5 at 1e-7. Below 1e-7 the rounding
  // of the fixed-point state (2^-40 of the momenta: L moves by ~1e-13 relative in steps) takes
  // over, as 1e-13 / h. So 1e-7, where both are ~1e-5, against the required 1e-4.
  const double h_rel = 1e-7;
  for (Parameter par : params) {
    const bool absolute = par == Parameter::w0 || par == Parameter::wa || par == Parameter::Omega_k;
    const double h = absolute ? h_rel : h_rel * p0[par];
    auto up = p0, dn = p0;
    up[par] += h;
    dn[par] -= h;
    const double fd = double((L_at(up, noise) - L_at(dn, noise)) / (2 * h));
    INFO(diffpm::cosmology::parameter_names[int(par)]
         << ": gradient " << g[par] << ", finite difference " << fd << " (relative "
         << std::fabs(g[par] / fd - 1) << "), L = " << L0);
    CHECK(g[par] == Approx(fd).epsilon(1e-4));
  }
  // The PGD correction's own parameters, by the same steps (relative; absolute 1e-7 for mu).
  if (cfg.pgd) {
    const std::pair<double diffpm::nbody::PgdParameters::*, double> pgd_params[] = {
        {&diffpm::nbody::PgdParameters::alpha, g.pgd.alpha},
        {&diffpm::nbody::PgdParameters::k_l, g.pgd.k_l},
        {&diffpm::nbody::PgdParameters::k_s, g.pgd.k_s},
        {&diffpm::nbody::PgdParameters::mu, g.pgd.mu}};
    const auto pgd0 = *cfg.pgd;
    for (const auto& [member, gradient] : pgd_params) {
      const double h = member == &diffpm::nbody::PgdParameters::mu ? h_rel : h_rel * pgd0.*member;
      auto L_pgd = [&](double shift) {
        auto c = cfg;
        (*c.pgd).*member += shift;
        model::ForwardModel<T> mp(c);
        return loss.value(mp.forward(p0, noise));
      };
      const double fd = double((L_pgd(h) - L_pgd(-h)) / (2 * h));
      INFO("PGD parameter: gradient " << gradient << ", finite difference " << fd
                                      << ", relative difference " << std::fabs(gradient / fd - 1));
      CHECK(gradient == Approx(fd).epsilon(1e-4));
      CHECK(std::fabs(fd) > 0.0);
    }
  }
  // Random directions v (unit variance per cell). <dL/dw, v> is then a random number of typical
  // size |dL/dw| (its standard deviation), and now and then much smaller; the kinks' bias is a
  // fixed fraction of that typical size, not of the particular value. So the tolerance is 1e-4
  // of max(|<dL/dw, v>|, |dL/dw|). Measured: at most 1.8e-5 of |dL/dw| (6 directions tried).
  double g_norm = 0.0;
  for (double x : g.noise.data) g_norm += x * x;
  g_norm = std::sqrt(g_norm);
  for (std::uint64_t dir : directions) {
    const auto v = gaussian_values<T>(noise.data.size(), dir);
    auto wp = noise, wm = noise;
    double ad = 0.0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      wp.data[i] += h_rel * v[i];
      wm.data[i] -= h_rel * v[i];
      ad += g.noise.data[i] * v[i];
    }
    const double fd = double((L_at(p0, wp) - L_at(p0, wm)) / (2 * h_rel));
    INFO("noise direction " << dir << ": gradient " << ad << ", finite difference " << fd
                            << ", |dL/dw| = " << g_norm);
    CHECK(std::fabs(ad - fd) <= 1e-4 * std::max(std::fabs(fd), g_norm));
    CHECK(std::fabs(ad) > 1e-3 * g_norm);  // not a direction the gradient misses by chance
  }
}

const std::vector<Parameter> flat_parameters = {
    Parameter::Omega_c, Parameter::Omega_b, Parameter::h, Parameter::n_s,
    Parameter::sigma8,  Parameter::w0,      Parameter::wa};

}  // namespace

TEST_CASE("lensing-map gradients match central differences of the model",
          "[model][adjoint][lensing]") {
  check_against_finite_differences(small_config(true, false), flat_parameters);
}

TEST_CASE("final-density gradients match central differences of the model", "[model][adjoint]") {
  auto params = flat_parameters;
  params.push_back(Parameter::Omega_k);  // no lightcone: curvature is differentiable here
  check_against_finite_differences(small_config(false, true), params);
}

TEST_CASE("PGD-corrected maps and density: gradients match central differences",
          "[model][adjoint][lensing][pgd]") {
  // Both outputs corrected (the planes at their a_i, the density at a_end); mu != 0 makes the
  // amplitude alpha a_i^mu of each plane move with theta. alpha = 0.2 with k_s = 1.5 h/Mpc (the
  // mesh's Nyquist is 3.1) moves particles by up to ~1 Mpc/h at a = 1.
  auto cfg = small_config(true, true);
  cfg.pgd = diffpm::nbody::PgdParameters{0.2, 0.3, 1.5, -1.0};
  // Two noise directions (the other tests take four) keep the sanitizer build's time down.
  check_against_finite_differences(cfg, {Parameter::Omega_c, Parameter::sigma8}, {11, 12});
}

TEST_CASE("an LPT-only lensing model has gradients too", "[model][adjoint][lensing]") {
  auto cfg = small_config(true, false);
  cfg.simulation.steps = 0;  // every plane painted from LPT
  check_against_finite_differences(cfg, {Parameter::Omega_c, Parameter::sigma8, Parameter::w0});
}

// A strongly nonlinear run, where reverse-time reconstruction is most sensitive: 16^3
// particles in 24 Mpc/h (shell crossing and halos by z = 0 on the 1.5 Mpc/h lattice), 40 FastPM
// steps from a = 0.02, 2LPT, a 32^3 force mesh; maps of a source at z = 0.6 and the final density.
model::ModelConfig nonlinear_config() {
  model::ModelConfig c;
  auto& s = c.simulation;
  s.box = {24.0, 24.0, 24.0};
  s.particles = {16, 16, 16};
  s.mesh = {32, 32, 32};
  s.a_start = 0.02;
  s.a_end = 1.0;
  s.steps = 40;
  model::LensingSetup l;
  l.config.map = lensing::MapGeometry{16, 2.0};
  l.config.planes = 6;
  l.config.random_shifts = false;
  l.sources = {lensing::SourceDistribution::fixed(0.6)};
  c.lensing = l;
  c.final_density = true;
  return c;
}

// Every adjoint mode must see the same integer states, hence the same maps, density and
// gradient bits; in reverse mode the gradient pass also checks that it rebuilt the initial state
// bit for bit (it throws ReversibilityError otherwise, nbody/reversible.hpp).
template <class T>
void check_modes_agree(const model::ModelConfig& base) {
  auto run = [&](diffpm::nbody::AdjointMode mode, std::size_t every) {
    auto cfg = base;
    cfg.adjoint = mode;
    cfg.checkpoint_every = every;
    model::ForwardModel<T> m(cfg);
    const Loss<T> loss(cfg, fiducial());
    const auto& out = m.forward(fiducial(), m.white_noise(3));
    const auto result = out;
    const auto g = m.gradient(loss.kappa_bar(out), loss.density_bar(out));
    return std::make_pair(result, g);
  };
  const auto st = run(diffpm::nbody::AdjointMode::store, 0);
  const auto rv = run(diffpm::nbody::AdjointMode::reverse, 0);
  const auto ck = run(diffpm::nbody::AdjointMode::checkpoint, 3);
  for (const auto* o : {&rv, &ck}) {
    bool same_maps = true;
    for (std::size_t s = 0; s < st.first.kappa.size(); ++s)
      same_maps = same_maps && o->first.kappa[s].data == st.first.kappa[s].data;
    CHECK(same_maps);
    const bool same_density = o->first.density.data == st.first.density.data;
    CHECK(same_density);
    for (int i = 0; i < diffpm::cosmology::n_parameters; ++i) {
      if (i == int(Parameter::Omega_k)) continue;  // NaN with lensing
      CHECK(o->second.parameters[i] == st.second.parameters[i]);
    }
    const bool same_noise = o->second.noise.data == st.second.noise.data;
    CHECK(same_noise);
  }
  CHECK(std::isnan(st.second[Parameter::Omega_k]));
  CHECK(st.second[Parameter::sigma8] != 0.0);
}

TEMPLATE_TEST_CASE("store, reverse and checkpoint modes give the same gradient bits",
                   "[model][adjoint]", float, double) {
  check_modes_agree<TestType>(small_config(true, true));
}

TEMPLATE_TEST_CASE("a strongly nonlinear run from a = 0.02 reverses exactly in every mode",
                   "[model][adjoint][nonlinear]", float, double) {
  using T = TestType;
  const auto cfg = nonlinear_config();
  // The run must really be nonlinear, or it would not test what it says: the final density's
  // rms on the 0.75 Mpc/h mesh is well above 1 (measured 3.8 in float and double).
  {
    model::ForwardModel<T> m(cfg);
    const auto& out = m.forward(fiducial(), m.white_noise(3));
    double sum2 = 0.0;
    for (T v : out.density.data) sum2 += double(v) * double(v);
    CHECK(std::sqrt(sum2 / double(out.density.data.size())) > 2.0);
  }
  check_modes_agree<T>(cfg);
}

// A host program that plans FFTs of the model's sizes with FFTW_MEASURE between forward() and
// gradient() adds FFTW wisdom, which new FFTW_ESTIMATE plans would use (FFTW manual, "Planner
// Flags"). The model keeps its own plans from construction, so the gradient must come out bit for
// bit the same as without the interference, and the reverse pass must not throw.
template <class T>
void plan_with_measure(const diffpm::mesh::Grid& grid) {
  using F = diffpm::detail::Fftw<T>;
  diffpm::mesh::RealField<T> r(grid);
  diffpm::mesh::ComplexField<T> c(grid);
  const std::lock_guard<std::mutex> lock(diffpm::detail::fftw_planner_mutex());
  auto* cp = reinterpret_cast<typename F::complex*>(c.data.data());
  auto forward = F::r2c(grid.n.data(), r.data.data(), cp, FFTW_MEASURE);
  auto inverse = F::c2r(grid.n.data(), cp, r.data.data(), FFTW_MEASURE);
  REQUIRE(forward != nullptr);
  REQUIRE(inverse != nullptr);
  F::destroy(forward);
  F::destroy(inverse);
}

TEMPLATE_TEST_CASE("FFTW wisdom made between forward and gradient does not change the gradient",
                   "[model][adjoint][fftw]", float, double) {
  using T = TestType;
  const auto cfg = small_config(true, true);
  model::ForwardModel<T> clean(cfg), disturbed(cfg);
  const Loss<T> loss(cfg, fiducial());
  const auto noise = clean.white_noise(5);
  const auto& out_clean = clean.forward(fiducial(), noise);
  const auto g_clean = clean.gradient(loss.kappa_bar(out_clean), loss.density_bar(out_clean));

  const auto& out = disturbed.forward(fiducial(), noise);
  const auto kappa_bar = loss.kappa_bar(out);
  const auto density_bar = loss.density_bar(out);
  plan_with_measure<T>(clean.noise_grid());
  plan_with_measure<T>(out.density.grid);
  const auto g = disturbed.gradient(kappa_bar, density_bar);
  for (int i = 0; i < diffpm::cosmology::n_parameters; ++i) {
    if (i == int(Parameter::Omega_k)) continue;  // NaN with lensing
    CHECK(g.parameters[i] == g_clean.parameters[i]);
  }
  const bool same_noise = g.noise.data == g_clean.noise.data;
  CHECK(same_noise);
}

TEST_CASE("one model runs forward and gradient again and again to the same bits",
          "[model][adjoint]") {
  // An inference loop calls forward() and gradient() thousands of times on one model: every
  // call must start afresh (buffers that a gradient hands out are re-made, not reused moved-from).
  const auto cfg = small_config(true, true);
  model::ForwardModel<double> m(cfg);
  const Loss<double> loss(cfg, fiducial());
  auto p = fiducial();
  std::vector<model::ModelGradient<double>> g;
  for (int k = 0; k < 3; ++k) {
    p.sigma8 = k == 1 ? 0.7 : fiducial().sigma8;  // a different point in between
    const auto& out = m.forward(p, m.white_noise(k == 1 ? 5 : 3));
    g.push_back(m.gradient(loss.kappa_bar(out), loss.density_bar(out)));
  }
  CHECK(g[0].parameters[0] == g[2].parameters[0]);
  CHECK(g[0].parameters[4] == g[2].parameters[4]);
  const bool same_noise = g[0].noise.data == g[2].noise.data;
  CHECK(same_noise);
  CHECK(g[1].parameters[4] != g[0].parameters[4]);
}

TEST_CASE("the model is one function of the parameters, whatever ran before", "[model][lensing]") {
  // The planes' angular grids come from a fixed reference cosmology, not from the first run's:
  // a fresh model at other parameters gives the maps of a model that ran elsewhere first,
  // bit for bit (finite differences across processes, as diffpm-sim's, rely on it).
  const auto cfg = small_config(true, false);
  auto p = fiducial();
  model::ForwardModel<double> used(cfg);
  used.forward(p, used.white_noise(3));
  p.w0 = -0.7;
  p.Omega_c = 0.3;
  const auto a = used.forward(p, used.white_noise(3)).kappa;
  model::ForwardModel<double> fresh(cfg);
  const auto b = fresh.forward(p, fresh.white_noise(3)).kappa;
  const bool same = a[0].data == b[0].data && a[1].data == b[1].data;
  CHECK(same);
  // A loss on the maps only, with the final density also computed: no density adjoint needed,
  // and it equals a zero one.
  auto both = small_config(true, true);
  model::ForwardModel<double> m(both);
  const Loss<double> loss(small_config(true, false), fiducial());
  const auto& out = m.forward(fiducial(), m.white_noise(3));
  const auto g1 = m.gradient(loss.kappa_bar(out));
  const auto& out2 = m.forward(fiducial(), m.white_noise(3));
  const auto g2 =
      m.gradient(loss.kappa_bar(out2), diffpm::mesh::RealField<double>(out2.density.grid));
  CHECK(g1.parameters[4] == g2.parameters[4]);
  const bool same_noise = g1.noise.data == g2.noise.data;
  CHECK(same_noise);
}

TEST_CASE("the forward model rejects bad input", "[model][errors]") {
  auto cfg = small_config(true, false);
  model::ForwardModel<double> m(cfg);
  // Noise on another grid, or not finite.
  CHECK_THROWS_WITH(
      m.forward(fiducial(), diffpm::mesh::RealField<double>(diffpm::mesh::Grid::cube(16, 64.0))),
      Catch::Contains("16x16x16"));
  auto noise = m.white_noise(1);
  noise.data[5] = std::nan("");
  CHECK_THROWS_WITH(m.forward(fiducial(), noise), Catch::Contains("cell 5"));
  // Invalid parameters are named.
  auto p = fiducial();
  p.sigma8 = -1.0;
  CHECK_THROWS_WITH(m.forward(p, m.white_noise(1)), Catch::Contains("sigma8"));
  // A curved universe with lensing: the lightcone is flat-sky in a flat universe.
  p = fiducial();
  p.Omega_k = 0.05;
  CHECK_THROWS_WITH(m.forward(p, m.white_noise(1)), Catch::Contains("Omega_k = 0.05"));
  auto curved_grids = cfg;
  curved_grids.plane_grid_cosmology.Omega_k = -0.05;
  model::ForwardModel<double> curved_model(curved_grids);
  CHECK_THROWS_WITH(curved_model.forward(fiducial(), curved_model.white_noise(1)),
                    Catch::Contains("plane_grid_cosmology: Omega_k = -0.05"));
  // A gradient without a forward run, and a second one after it.
  CHECK_THROWS_WITH(m.gradient({}), Catch::Contains("no forward run"));
  m.forward(fiducial(), m.white_noise(1));
  std::vector<lensing::Map<double>> wrong(1, lensing::Map<double>(cfg.lensing->config.map));
  CHECK_THROWS_WITH(m.gradient(wrong), Catch::Contains("1 map adjoints for 2 sources"));
  wrong.assign(2, lensing::Map<double>(lensing::MapGeometry{8, 4.0}));
  CHECK_THROWS_WITH(m.gradient(wrong), Catch::Contains("8 pixels"));
  CHECK_THROWS_WITH(
      m.gradient({}, diffpm::mesh::RealField<double>(diffpm::mesh::Grid::cube(64, 64.0))),
      Catch::Contains("final_density is off"));
  m.gradient({});
  CHECK_THROWS_WITH(m.gradient({}), Catch::Contains("no forward run"));
  // Configurations.
  auto none = small_config(false, false);
  CHECK_THROWS_WITH(model::ForwardModel<double>(none), Catch::Contains("no output"));
  auto late = small_config(true, false);
  late.simulation.a_end = 0.5;
  late.simulation.a_start = 0.3;
  model::ForwardModel<double> early(late);
  CHECK_THROWS_WITH(early.forward(fiducial(), early.white_noise(1)), Catch::Contains("a_end"));
  // PGD: its parameters are checked, and it needs an output it corrects.
  auto pgd = small_config(false, true);
  pgd.pgd = diffpm::nbody::PgdParameters{0.2, 0.3, -1.0, 0.0};
  CHECK_THROWS_WITH(model::ForwardModel<double>(pgd), Catch::Contains("model: pgd: k_s = -1"));
  pgd.pgd->k_s = 1.0;
  pgd.final_density = false;
  pgd.final_particles = true;
  CHECK_THROWS_WITH(model::ForwardModel<double>(pgd), Catch::Contains("pgd without an output"));
  // The device backend in code compiled without it (tests/device/test_model_device.cpp runs it).
  if (!diffpm::device_backend_compiled()) {
    auto device = small_config(true, false);
    device.simulation.backend = diffpm::BackendKind::cuda;
    CHECK_THROWS_AS(model::ForwardModel<double>(device), diffpm::InvalidArgument);
    CHECK_THROWS_WITH(model::ForwardModel<double>(device),
                      Catch::Contains("without the device backend"));
  }
}

TEMPLATE_TEST_CASE("the model returns particles, the linear field and snapshots: run_simulation's",
                   "[model]", float, double) {
  // A run without a gradient is the same code path as the model's forward pass (nbody::evolve):
  // from the same white noise, the model's particles, linear field and snapshots are
  // run_simulation's, bit for bit. Requested snapshots are outputs without an adjoint: adding
  // them to a lensing model leaves its gradient's bits unchanged.
  using T = TestType;
  auto cfg = small_config(false, false);
  cfg.simulation.particles = {16, 16, 16};
  cfg.simulation.mesh = {32, 32, 32};
  cfg.simulation.a_start = 0.3;
  cfg.final_particles = true;
  cfg.linear_field = true;
  cfg.snapshots = {0.6, 0.2};  // one from the integrator, one from LPT
  model::ForwardModel<T> m(cfg);
  const auto noise = m.white_noise(8);
  const auto& out = m.forward(fiducial(), noise);
  const diffpm::cosmology::Cosmology<double> cosmo(fiducial());
  diffpm::nbody::IntegratorOptions o;
  o.snapshots = {0.2, 0.6};
  std::vector<diffpm::nbody::ParticleState<T>> seen;
  const auto sim =
      diffpm::nbody::run_simulation<T>(cosmo, cfg.simulation, noise, o,
                                       [&](double, const diffpm::particles::Positions<T>& x,
                                           const diffpm::particles::Positions<T>& p) {
                                         seen.push_back({x, p});
                                       });
  CHECK(out.particles.x == sim.state.x);
  CHECK(out.particles.p == sim.state.p);
  CHECK(out.delta_linear.data == sim.delta_linear.data);
  REQUIRE(out.snapshots.size() == 2);
  REQUIRE(seen.size() == 2);
  CHECK(out.snapshots[0].x == seen[1].x);  // a = 0.6
  CHECK(out.snapshots[1].x == seen[0].x);  // a = 0.2, from LPT
  CHECK(out.snapshots[1].p == seen[0].p);

  auto lens = small_config(true, false);
  lens.simulation.particles = {16, 16, 16};
  lens.simulation.mesh = {32, 32, 32};
  model::ForwardModel<T> plain(lens);
  lens.snapshots = {0.8, 0.5};
  model::ForwardModel<T> with_snapshots(lens);
  const Loss<T> loss(lens, fiducial());
  const auto& a = plain.forward(fiducial(), plain.white_noise(2));
  const auto ga = plain.gradient(loss.kappa_bar(a));
  const auto& b = with_snapshots.forward(fiducial(), with_snapshots.white_noise(2));
  CHECK(b.kappa[0].data == a.kappa[0].data);
  REQUIRE(b.snapshots.size() == 2);
  CHECK(b.snapshots[0].x.size() == 16u * 16u * 16u);
  const auto gb = with_snapshots.gradient(loss.kappa_bar(b));
  CHECK(gb.parameters[4] == ga.parameters[4]);
  CHECK(gb.noise.data == ga.noise.data);

  auto bad = cfg;
  bad.snapshots = {1.5};
  CHECK_THROWS_WITH(model::ForwardModel<T>{bad}, Catch::Contains("snapshot a = 1.5"));
}

TEMPLATE_TEST_CASE(
    "a recorded model moves between forward and gradient; recording off is the same run",
    "[model][adjoint]", float, double) {
  // The tape holds stage objects that own (or share with each other) what their vjps need, and
  // nothing of the model: a model moved after forward() gives the gradient of an unmoved one,
  // bit for bit. Recording::off runs the same forward code to the same bits and keeps nothing
  // to differentiate. A model given a Cosmology object has no dual numbers: its gradient has
  // the same dL/dw bits and NaN for every parameter.
  using T = TestType;
  auto cfg = small_config(true, true);
  cfg.simulation.particles = {16, 16, 16};
  cfg.simulation.mesh = {32, 32, 32};
  const Loss<T> loss(cfg, fiducial());

  model::ForwardModel<T> reference(cfg);
  const auto noise = reference.white_noise(4);
  const auto& out_ref = reference.forward(fiducial(), noise);
  // The stages in the order recorded: the lightcone's scalars first (their pullback runs last),
  // one stage per plane painted from LPT (the planes before a_start), the integration last but
  // the final density.
  const auto names = reference.tape().names();
  REQUIRE(names.size() >= 6);
  CHECK(names[0] == "lightcone coefficients");
  CHECK(names[1] == "linear field");
  CHECK(names[2] == "LPT");
  for (std::size_t i = 3; i + 2 < names.size(); ++i) CHECK(names[i] == "lightcone plane from LPT");
  CHECK(names[names.size() - 2] == "PM integration and lightcone");
  CHECK(names.back() == "final density");
  const auto g_ref = reference.gradient(loss.kappa_bar(out_ref), loss.density_bar(out_ref));

  model::ForwardModel<T> first(cfg);
  const auto out = first.forward(fiducial(), noise);  // a copy: the moved-from model's is gone
  model::ForwardModel<T> moved(std::move(first));
  CHECK_THROWS_WITH(first.gradient({}), Catch::Contains("no forward run"));
  const auto g_moved = moved.gradient(loss.kappa_bar(out), loss.density_bar(out));
  for (int i = 0; i < diffpm::cosmology::n_parameters; ++i) {
    if (i == int(Parameter::Omega_k)) continue;  // NaN with lensing
    CHECK(g_moved.parameters[i] == g_ref.parameters[i]);
  }
  const bool same_noise = g_moved.noise.data == g_ref.noise.data;
  CHECK(same_noise);

  model::ForwardModel<T> off(cfg);
  const auto& out_off = off.forward(fiducial(), noise, model::Recording::off);
  CHECK(off.tape().empty());
  CHECK(out_off.kappa[0].data == out_ref.kappa[0].data);
  CHECK(out_off.kappa[1].data == out_ref.kappa[1].data);
  CHECK(out_off.density.data == out_ref.density.data);
  CHECK_THROWS_WITH(off.gradient(loss.kappa_bar(out_off)), Catch::Contains("no forward run"));

  model::ForwardModel<T> given(cfg);
  const auto& out_given = given.forward(
      std::make_shared<const diffpm::cosmology::Cosmology<double>>(fiducial()), noise);
  CHECK(out_given.kappa[0].data == out_ref.kappa[0].data);
  CHECK(out_given.density.data == out_ref.density.data);
  const auto g_given = given.gradient(loss.kappa_bar(out_given), loss.density_bar(out_given));
  const bool same_noise_given = g_given.noise.data == g_ref.noise.data;
  CHECK(same_noise_given);
  for (double d : g_given.parameters) CHECK(std::isnan(d));
  CHECK_THROWS_WITH(given.forward(nullptr, noise), Catch::Contains("null cosmology"));
}

TEMPLATE_TEST_CASE("the model's maps are run_lensing_simulation's when the planes' grids agree",
                   "[model][lensing]", float, double) {
  // One pipeline: a lensing run without a gradient (lensing::run_lensing_simulation) and the
  // model's forward pass, recording or not, run the same stages (linear field, LPT, the
  // fixed-point integrator, the lightcone). They differ in one documented discretisation: the
  // model takes its planes' angular grids from ModelConfig::plane_grid_cosmology, the run from
  // its own cosmology. With the two equal, the maps and the final particles agree bit for bit.
  using T = TestType;
  auto cfg = small_config(true, false);
  cfg.simulation.particles = {16, 16, 16};
  cfg.simulation.mesh = {32, 32, 32};
  cfg.final_particles = true;
  const Parameters<double> p = fiducial();
  cfg.plane_grid_cosmology = p;
  model::ForwardModel<T> m(cfg);
  const auto noise = m.white_noise(6);
  const diffpm::cosmology::Cosmology<double> cosmo(p);
  const auto run = lensing::run_lensing_simulation<T>(cosmo, cfg.simulation, noise,
                                                      cfg.lensing->config, cfg.lensing->sources);
  for (auto recording : {model::Recording::off, model::Recording::on}) {
    const auto& out = m.forward(p, noise, recording);
    REQUIRE(out.kappa.size() == run.kappa.size());
    for (std::size_t s = 0; s < run.kappa.size(); ++s)
      CHECK(out.kappa[s].data == run.kappa[s].data);
    CHECK(out.particles.x == run.simulation.state.x);
    CHECK(out.particles.p == run.simulation.state.p);
  }
}
