// Tests of the own-particles example (the building blocks on a code's own struct-of-arrays
// particles), run as a separate process (support/run_program.hpp; DIFFPM_OWN_PARTICLES_EXE from
// CMake), against the library: the forward run must be bit for bit nbody::integrate's on
// diffpm's containers and agree with the pipeline (run_simulation) to rounding, and the gradient
// must agree with the exact reverse-time adjoint of nbody/reversible.hpp and with central finite
// differences of nbody::integrate.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "diffpm/io/npy.hpp"
#include "diffpm/nbody/reversible.hpp"
#include "diffpm/nbody/simulation.hpp"
#include "support/run_program.hpp"

namespace {

using namespace diffpm;
using test::run_program;
using test::TempDir;

std::string exe() {
#ifdef DIFFPM_OWN_PARTICLES_EXE
  return DIFFPM_OWN_PARTICLES_EXE;
#else
  FAIL(
      "DIFFPM_OWN_PARTICLES_EXE is not defined: the test needs own-particles "
      "(DIFFPM_BUILD_EXAMPLES=ON)");
  return "";
#endif
}

// A small run: 16^3 particles in 64 Mpc/h on a 32^3 mesh, 2LPT at a = 0.1, 4 FastPM steps.
nbody::SimulationConfig config() {
  nbody::SimulationConfig c;
  c.box = {64.0, 64.0, 64.0};
  c.particles = {16, 16, 16};
  c.mesh = {32, 32, 32};
  c.a_start = 0.1;
  c.a_end = 1.0;
  c.steps = 4;
  c.seed = 11;
  return c;
}

std::vector<std::string> args(const std::string& precision, const std::string& out) {
  return {"--particles", "16", "--mesh", "32", "--box",       "64",      "--a-start", "0.1",
          "--steps",     "4",  "--seed", "11", "--precision", precision, "--out",     out};
}

template <class T>
particles::Positions<T> read_vectors(const std::string& path) {
  std::vector<std::size_t> shape;
  const std::vector<T> flat = io::read_npy<T>(path, shape);
  REQUIRE(shape.size() == 2);
  REQUIRE(shape[1] == 3);
  particles::Positions<T> v(shape[0]);
  std::memcpy(v.data(), flat.data(), flat.size() * sizeof(T));
  return v;
}

/// What own-particles writes with --out, for a run at config() in the precision of T.
template <class T>
struct Outputs {
  particles::Positions<T> x_final, x0_bar, p0_bar;
};

template <class T>
Outputs<T> run_example() {
  const TempDir dir;
  const auto r = run_program(exe(), args(sizeof(T) == 4 ? "float" : "double", dir.path.string()));
  INFO(r.err);
  REQUIRE(r.status == 0);
  return {read_vectors<T>((dir.path / "x_final.npy").string()),
          read_vectors<T>((dir.path / "x0_bar.npy").string()),
          read_vectors<T>((dir.path / "p0_bar.npy").string())};
}

/// a - b, taken modulo the box side L into [-L/2, L/2].
inline double periodic_difference(double a, double b, double L) {
  const double r = a - b;
  return r - L * std::round(r / L);
}

template <class T>
double rms(const particles::Positions<T>& v) {
  double s = 0.0;
  for (const auto& e : v)
    for (int d = 0; d < 3; ++d) s += double(e[d]) * double(e[d]);
  return std::sqrt(s / (3.0 * double(v.size())));
}

template <class T>
double rms_difference(const particles::Positions<T>& a, const particles::Positions<T>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (int d = 0; d < 3; ++d) s += std::pow(double(a[i][d]) - double(b[i][d]), 2);
  return std::sqrt(s / (3.0 * double(a.size())));
}

// The LPT state at a_start as the pipeline makes it (nbody/simulation.hpp), on diffpm's
// containers.
template <class T>
nbody::ParticleState<T> lpt_state(const cosmology::Cosmology<double>& cosmo,
                                  const nbody::SimulationConfig& c) {
  const mesh::Grid lattice(c.particles, c.box);
  particles::Lpt<T> lpt(lattice);
  mesh::ComplexField<T> delta(lattice);
  ic::linear_field(lpt.plan(), ic::white_noise<T>(lattice, c.seed),
                   ic::mode_amplitudes(lattice, cosmo, 1.0), delta);
  lpt.compute(delta, 2);
  nbody::ParticleState<T> s;
  lpt.particles(particles::lpt_factors(cosmo, c.a_start, 2), s.x, s.p,
                particles::kink_free_offset(mesh::Grid(c.mesh, c.box)));
  return s;
}

// The example's loss, L = 1/2 sum |x(a_end) - target|^2, after nbody::integrate from `s`.
double loss_after_integrate(const cosmology::Cosmology<double>& cosmo,
                            const nbody::SimulationConfig& c, nbody::ParticleState<double> s,
                            const particles::Positions<double>& target) {
  nbody::PmForce<double> force(mesh::Grid(c.mesh, c.box), {}, s.x.size());
  const double Om = cosmo.parameters().Omega_m();
  nbody::integrate(cosmo, nbody::time_steps(c.a_start, c.a_end, c.steps), s,
                   [&](const particles::Positions<double>& x, particles::Positions<double>& F) {
                     force(x, Om, F);
                   });
  double L = 0.0;
  for (std::size_t i = 0; i < s.x.size(); ++i)
    for (int d = 0; d < 3; ++d) L += 0.5 * std::pow(s.x[i][d] - target[i][d], 2);
  return L;
}

}  // namespace

TEMPLATE_TEST_CASE(
    "own-particles runs FastPM bit for bit on its own arrays, and agrees with the "
    "pipeline",
    "[cli][own_particles]", float, double) {
  using T = TestType;
  const auto x_final = run_example<T>().x_final;

  // The floating-point integrator on diffpm's containers, from the pipeline's LPT state: the
  // same kernels on the same values in the same order, so the same bits whatever the layout.
  const cosmology::Cosmology<double> cosmo(cosmology::Parameters<double>{});
  const auto c = config();
  auto state = lpt_state<T>(cosmo, c);
  nbody::PmForce<T> force(mesh::Grid(c.mesh, c.box), {}, state.x.size());
  const double Om = cosmo.parameters().Omega_m();
  nbody::integrate(
      cosmo, nbody::time_steps(c.a_start, c.a_end, c.steps), state,
      [&](const particles::Positions<T>& x, particles::Positions<T>& F) { force(x, Om, F); });
  REQUIRE(x_final.size() == state.x.size());
  CHECK(std::memcmp(x_final.data(), state.x.data(), x_final.size() * sizeof(x_final[0])) == 0);

  // The pipeline (run_simulation) integrates the same equations on the fixed-point state
  // (positions wrapped into the box, rounded at 2^-64 of it): the particles agree modulo the
  // box to the T arithmetic's rounding. Observed: 3e-13 Mpc/h in double, 5e-5 in float, largest
  // over 4096 particles; tolerances 1e-10 and 1e-3 Mpc/h (1/2000 of a mesh cell).
  const auto sim = nbody::run_simulation<T>(cosmo, c);
  REQUIRE(sim.state.x.size() == x_final.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < x_final.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      const double e = periodic_difference(sim.state.x[i][d], x_final[i][d], c.box[d]);
      worst = std::max(worst, std::fabs(e));
    }
  INFO("largest position difference to the pipeline " << worst << " Mpc/h");
  CHECK(worst < (sizeof(T) == 8 ? 1e-10 : 1e-3));
}

TEMPLATE_TEST_CASE("own-particles' gradient agrees with the library's exact reverse-time adjoint",
                   "[cli][own_particles][adjoint]", float, double) {
  using T = TestType;
  const auto out = run_example<T>();
  const auto &x0_bar = out.x0_bar, &p0_bar = out.p0_bar;

  // The pipeline's integrator: the fixed-point state and its reverse pass, from the same LPT
  // state, with dL/dx_final = x_final - x_start.
  const cosmology::Cosmology<double> cosmo(cosmology::Parameters<double>{});
  const auto c = config();
  const auto init = lpt_state<T>(cosmo, c);
  auto state = nbody::FixedPointState::from(init, c.box);
  nbody::PmForce<T> pm(mesh::Grid(c.mesh, c.box), {}, init.x.size());
  const double Om = cosmo.parameters().Omega_m();
  auto force = [&](const particles::Positions<T>& x, particles::Positions<T>& F) { pm(x, Om, F); };
  auto force_and_adjoint = [&](const particles::Positions<T>& x, const particles::Positions<T>& Fb,
                               particles::Positions<T>& F, particles::Positions<T>& xb) {
    return pm.value_and_adjoint(x, Om, Fb, F, xb);
  };
  const auto a = nbody::time_steps(c.a_start, c.a_end, c.steps);
  nbody::FixedPointRecord record;
  nbody::integrate_fixed_point<T>(cosmo, a, state, force, {}, {}, &record);
  // The fixed-point positions are wrapped into the box; the displacement is taken modulo L.
  particles::Positions<T> x_end, x_bar(init.x.size()), p_bar(init.x.size(), {T(0), T(0), T(0)});
  state.positions(x_end);
  for (std::size_t i = 0; i < x_end.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      x_bar[i][d] = T(periodic_difference(x_end[i][d], init.x[i][d], c.box[d]));
    }
  nbody::integrate_fixed_point_adjoint<T>(cosmo, a, state, force, force_and_adjoint, x_bar, p_bar,
                                          {}, &record);
  // Two routes to the same derivative of the same map, on trajectories that differ by the state's
  // rounding (fixed point vs T). Observed: 3e-13 and 4e-13 of the rms (positions, momenta) in
  // double, 7e-7 and 6e-7 in float. Tolerances: 1e-9 in double; 1e-4 in float, because CIC
  // readout gradients are piecewise constant and a particle whose float position rounds into
  // the next cell changes its own adjoint by O(1) (a few per 10^5 particle-steps at this size).
  const double tol = sizeof(T) == 8 ? 1e-9 : 1e-4;
  const double ex = rms_difference(x0_bar, x_bar) / rms(x_bar);
  const double ep = rms_difference(p0_bar, p_bar) / rms(p_bar);
  INFO("relative rms difference: dL/dx0 " << ex << ", dL/dp0 " << ep);
  CHECK(ex < tol);
  CHECK(ep < tol);
}

TEST_CASE("own-particles' gradient matches central finite differences of nbody::integrate",
          "[cli][own_particles][adjoint]") {
  const auto out = run_example<double>();
  const auto &x0_bar = out.x0_bar, &p0_bar = out.p0_bar;
  const cosmology::Cosmology<double> cosmo(cosmology::Parameters<double>{});
  const auto c = config();
  const auto init = lpt_state<double>(cosmo, c);
  // Steps of 1e-3 Mpc/h (1/2000 of a force-mesh cell) and 1e-3 of the rms momentum: the
  // truncation error is O(h^2) ~ 1e-6 relative, and the step is small enough that no particle
  // crosses a CIC cell boundary it would not cross anyway (the map is piecewise smooth).
  // Observed agreement: 2e-7 relative or better.
  double p_rms = 0.0;
  for (const auto& v : init.p)
    for (int d = 0; d < 3; ++d) p_rms += v[d] * v[d];
  p_rms = std::sqrt(p_rms / (3.0 * double(init.p.size())));
  for (std::size_t i : {std::size_t(5), std::size_t(1234), std::size_t(4000)}) {
    for (int d = 0; d < 3; ++d) {
      auto fd = [&](bool momentum, double h) {
        auto plus = init, minus = init;
        (momentum ? plus.p : plus.x)[i][d] += h;
        (momentum ? minus.p : minus.x)[i][d] -= h;
        return (loss_after_integrate(cosmo, c, plus, init.x) -
                loss_after_integrate(cosmo, c, minus, init.x)) /
               (2.0 * h);
      };
      const double gx = fd(false, 1e-3), gp = fd(true, 1e-3 * p_rms);
      INFO("particle " << i << ", axis " << d);
      CHECK(x0_bar[i][d] == Approx(gx).epsilon(1e-5).margin(1e-6 * std::fabs(gx) + 1e-8));
      CHECK(p0_bar[i][d] == Approx(gp).epsilon(1e-5).margin(1e-8));
    }
  }
}
