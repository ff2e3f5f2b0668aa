// The differentiable forward model with backend cuda (model/forward_model.hpp): the PM steps, the
// lightcone planes they pass and the reverse pass run on the device code path. In the host
// emulation the maps, the density and the gradient are the CPU model's bit for bit; on any
// backend the three adjoint modes give the same bits.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "diffpm/model/forward_model.hpp"
#include "support/device.hpp"

using namespace diffpm;
using cosmology::Parameter;

namespace {

// 16^3 particles in 48 Mpc/h on a 32^3 force mesh, 2LPT at a = 0.55 and 4 FastPM steps to 1;
// a 3 degree, 16^2 pixel map of two sources, 6 planes: the farthest are painted from LPT on the
// host, the others by the device integrator's snapshots. Also the final density, the final
// particles and one requested snapshot.
model::ModelConfig config(nbody::AdjointMode mode, BackendKind backend,
                          std::optional<nbody::PgdParameters> pgd = std::nullopt) {
  model::ModelConfig c;
  auto& s = c.simulation;
  s.box = {48.0, 48.0, 48.0};
  s.particles = {16, 16, 16};
  s.mesh = {32, 32, 32};
  s.a_start = 0.55;
  s.a_end = 1.0;
  s.steps = 4;
  s.backend = backend;
  model::LensingSetup l;
  l.config.map = lensing::MapGeometry{16, 3.0};
  l.config.planes = 6;
  l.sources = {lensing::SourceDistribution::fixed(0.6),
               lensing::SourceDistribution::gaussian(0.45, 0.08)};
  c.lensing = l;
  c.final_density = true;
  c.final_particles = true;
  c.snapshots = {0.8};
  c.adjoint = mode;
  c.checkpoint_every = 3;
  c.pgd = pgd;
  return c;
}

template <class T>
struct Result {
  model::ModelOutput<T> out;
  model::ModelGradient<T> grad;
  std::vector<std::string> stages;
};

// L = sum kappa^2 / (2 sigma^2) + sum delta^2 / (2 sigma_d^2): its adjoints are the outputs.
template <class T>
Result<T> run(nbody::AdjointMode mode, BackendKind backend,
              std::optional<nbody::PgdParameters> pgd = std::nullopt) {
  model::ForwardModel<T> m(config(mode, backend, pgd));
  Result<T> r;
  r.out = m.forward(cosmology::Parameters<double>{}, m.white_noise(5));
  r.stages = m.tape().names();
  std::vector<lensing::Map<T>> kappa_bar = r.out.kappa;
  for (auto& k : kappa_bar)
    for (auto& v : k.data) v = T(double(v) / 1e-6);
  mesh::RealField<T> density_bar = r.out.density;
  for (auto& v : density_bar.data) v = T(double(v) / 100.0);
  r.grad = m.gradient(kappa_bar, density_bar);
  return r;
}

template <class A>
bool same_bits(const A& a, const A& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}

template <class T>
bool same_outputs(const model::ModelOutput<T>& a, const model::ModelOutput<T>& b) {
  bool same = a.kappa.size() == b.kappa.size() && same_bits(a.density.data, b.density.data) &&
              same_bits(a.particles.x, b.particles.x) && same_bits(a.particles.p, b.particles.p) &&
              a.snapshots.size() == b.snapshots.size();
  for (std::size_t s = 0; same && s < a.kappa.size(); ++s)
    same = same_bits(a.kappa[s].data, b.kappa[s].data);
  for (std::size_t s = 0; same && s < a.snapshots.size(); ++s)
    same = same_bits(a.snapshots[s].x, b.snapshots[s].x);
  return same;
}

template <class T>
bool same_gradient(const model::ModelGradient<T>& a, const model::ModelGradient<T>& b) {
  bool same = same_bits(a.noise.data, b.noise.data);
  for (int i = 0; i < cosmology::n_parameters; ++i) {
    if (i == int(Parameter::Omega_k)) continue;  // NaN with lensing
    same = same && a.parameters[i] == b.parameters[i];
  }
  return same;
}

}  // namespace

TEMPLATE_TEST_CASE("the model with backend cuda is the CPU model", "[device][model]", float,
                   double) {
  using T = TestType;
  const auto dev = run<T>(nbody::AdjointMode::reverse, BackendKind::cuda);
  // The integration and its planes ran on the device.
  CHECK(std::find(dev.stages.begin(), dev.stages.end(),
                  std::string("PM integration and lightcone (device)")) != dev.stages.end());
  CHECK(dev.grad[Parameter::sigma8] != 0.0);

  const auto cpu = run<T>(nbody::AdjointMode::reverse, BackendKind::cpu);
  if (test::emulated_device) {
    CHECK(same_outputs(dev.out, cpu.out));
    CHECK(same_gradient(dev.grad, cpu.grad));
  } else {
    // FFT rounding moves the trajectories apart (tests/device/test_reversible_device.cpp): the
    // maps and the gradient agree to a relative 1e-3 in float and 1e-6 in double of their
    // largest values (a few steps at 3 Mpc/h spacing, mildly nonlinear).
    const double tol = std::is_same_v<T, float> ? 1e-3 : 1e-6;
    for (std::size_t s = 0; s < cpu.out.kappa.size(); ++s) {
      double worst = 0.0, scale = 0.0;
      for (std::size_t i = 0; i < cpu.out.kappa[s].data.size(); ++i) {
        worst = std::max(
            worst, std::fabs(double(dev.out.kappa[s].data[i]) - double(cpu.out.kappa[s].data[i])));
        scale = std::max(scale, std::fabs(double(cpu.out.kappa[s].data[i])));
      }
      CHECK(worst <= tol * scale);
    }
    for (const Parameter p : {Parameter::Omega_c, Parameter::sigma8, Parameter::h})
      CHECK(std::fabs(dev.grad[p] - cpu.grad[p]) <= tol * std::fabs(cpu.grad[p]));
  }
}

TEMPLATE_TEST_CASE("store, reverse and checkpoint give the same bits on the device",
                   "[device][model]", float, double) {
  using T = TestType;
  const auto rv = run<T>(nbody::AdjointMode::reverse, BackendKind::cuda);
  for (const auto mode : {nbody::AdjointMode::store, nbody::AdjointMode::checkpoint}) {
    const auto other = run<T>(mode, BackendKind::cuda);
    CHECK(same_outputs(other.out, rv.out));
    CHECK(same_gradient(other.grad, rv.grad));
  }
}

TEMPLATE_TEST_CASE("the model with PGD and backend cuda is the CPU model", "[device][model][pgd]",
                   float, double) {
  // The planes painted on the device are corrected there (nbody/pgd_device.hpp), the LPT planes
  // and the final density on the host: in the emulation every output and every derivative,
  // PGD's own included, is the CPU model's bit for bit.
  using T = TestType;
  const nbody::PgdParameters pgd{0.3, 0.2, 1.5, -1.0};
  const auto dev = run<T>(nbody::AdjointMode::reverse, BackendKind::cuda, pgd);
  const auto cpu = run<T>(nbody::AdjointMode::reverse, BackendKind::cpu, pgd);
  const auto plain = run<T>(nbody::AdjointMode::reverse, BackendKind::cuda);
  CHECK_FALSE(same_bits(dev.out.kappa[0].data, plain.out.kappa[0].data));
  CHECK(dev.grad.pgd.alpha != 0.0);
  CHECK(dev.grad.pgd.k_s != 0.0);
  if (test::emulated_device) {
    CHECK(same_outputs(dev.out, cpu.out));
    CHECK(same_gradient(dev.grad, cpu.grad));
    CHECK(dev.grad.pgd.alpha == cpu.grad.pgd.alpha);
    CHECK(dev.grad.pgd.k_l == cpu.grad.pgd.k_l);
    CHECK(dev.grad.pgd.k_s == cpu.grad.pgd.k_s);
    CHECK(dev.grad.pgd.mu == cpu.grad.pgd.mu);
  } else {
    // As the test above: FFT rounding moves the trajectories apart.
    const double tol = std::is_same_v<T, float> ? 1e-3 : 1e-6;
    CHECK(dev.grad.pgd.alpha == Approx(cpu.grad.pgd.alpha).epsilon(tol));
    CHECK(dev.grad.pgd.k_s == Approx(cpu.grad.pgd.k_s).epsilon(tol));
    CHECK(dev.grad[Parameter::sigma8] == Approx(cpu.grad[Parameter::sigma8]).epsilon(tol));
  }
}
