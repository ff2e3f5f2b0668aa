// own-particles: diffpm's building blocks inside a simulation code that keeps its own particles.
//
//   own-particles [--particles N] [--mesh M] [--box L] [--a-start A] [--steps S] [--seed S]
//                 [--precision float|double] [--out DIR]
//
// The "simulation code" here stores its particles as a struct of arrays (MyParticles below),
// as many N-body codes do. It never copies them into diffpm's containers: every diffpm call
// gets non-owning views of its arrays (particles/particles.hpp).
//   1. Initial conditions: diffpm's white noise (seed), linear field and 2LPT, written straight
//      into the code's arrays, translated by the lattice offset that keeps particles off the
//      force mesh's CIC kinks (particles::kink_free_offset).
//   2. Forces: nbody::PmForce on the code's position and force arrays.
//   3. Time stepping: the code's own kick-drift-kick loop, with FastPM's coefficients
//      (nbody::StepFactors) and nbody::axpy on its arrays.
//   4. A gradient: the loss L = 1/2 sum_p |x_p(a_end) - x_p(a_start)|^2 (the start positions
//      held fixed as a target), differentiated with respect to the initial positions and
//      momenta by the code's own reverse loop over the positions it stored at each step, with
//      PmForce::adjoint for the forces (docs/adjoint.md, "Adjoint of the leapfrog").
//
// The forward run is bit for bit nbody::integrate on diffpm's containers and agrees with
// nbody::run_simulation (the library's pipeline, on a fixed-point state) to rounding; the
// gradient agrees with the library's exact reverse-time adjoint (nbody/reversible.hpp): the
// test tests/cli/test_own_particles.cpp checks all three. With --out DIR it writes x_final.npy,
// x0_bar.npy and p0_bar.npy (N^3 x 3, in the precision of the run) there; it prints the loss
// and the gradient's rms. Errors print "own-particles: error: ..." and exit with status 2.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "diffpm/diffpm.hpp"
#include "diffpm/io/npy.hpp"

namespace {

namespace dp = diffpm::particles;
namespace dn = diffpm::nbody;

/// The simulation code's own particle storage: one array per coordinate.
template <class T>
struct MyParticles {
  std::vector<T> x, y, z;     // positions, Mpc/h
  std::vector<T> px, py, pz;  // momenta, FastPM convention p = a^3 E dx/da
  std::vector<T> fx, fy, fz;  // forces

  explicit MyParticles(std::size_t n)
      : x(n), y(n), z(n), px(n), py(n), pz(n), fx(n), fy(n), fz(n) {}
  std::size_t size() const { return x.size(); }
  dp::Vec3View<T> positions() { return dp::soa_view(x.data(), y.data(), z.data(), size()); }
  dp::Vec3View<T> momenta() { return dp::soa_view(px.data(), py.data(), pz.data(), size()); }
  dp::Vec3View<T> forces() { return dp::soa_view(fx.data(), fy.data(), fz.data(), size()); }
};

/// Three arrays of n values (the code's scratch vectors: stored positions, adjoints).
template <class T>
struct Soa {
  std::vector<T> c[3];
  explicit Soa(std::size_t n, T value = T(0)) {
    for (auto& v : c) v.assign(n, value);
  }
  dp::Vec3View<T> view() {
    return dp::soa_view(c[0].data(), c[1].data(), c[2].data(), c[0].size());
  }
};

struct Settings {
  int particles = 32, mesh = 64, steps = 5;
  double box = 128.0, a_start = 0.1, a_end = 1.0;
  std::uint64_t seed = 7;
  bool single = false;
  std::string out;
};

template <class T>
void write(const Settings& s, const std::string& name, dp::Vec3View<const T> v) {
  if (s.out.empty()) return;
  std::vector<T> flat(3 * v.size);
  for (std::size_t i = 0; i < v.size; ++i)
    for (int d = 0; d < 3; ++d) flat[3 * i + d] = v(i, d);
  diffpm::io::write_npy(s.out + "/" + name, flat.data(), {v.size, 3});
}

template <class T>
int run(const Settings& s) {
  using namespace diffpm;
  const cosmology::Cosmology<double> cosmo(cosmology::Parameters<double>{});  // Planck 2018
  const double Om = cosmo.parameters().Omega_m();
  const mesh::Grid lattice = mesh::Grid::cube(s.particles, s.box);
  const mesh::Grid force_mesh = mesh::Grid::cube(s.mesh, s.box);
  MyParticles<T> P(lattice.size());

  // 1. Initial conditions into the code's arrays.
  {
    dp::Lpt<T> lpt(lattice, {0, 0, 0});
    mesh::ComplexField<T> delta(lattice);
    ic::linear_field(lpt.plan(), ic::white_noise<T>(lattice, s.seed),
                     ic::mode_amplitudes(lattice, cosmo, 1.0), delta);
    lpt.compute(delta, 2);
    lpt.particles(dp::lpt_factors(cosmo, s.a_start, 2), P.positions(), P.momenta(),
                  dp::kink_free_offset(force_mesh));
  }
  const Soa<T> target = [&] {
    Soa<T> t(P.size());
    t.c[0] = P.x, t.c[1] = P.y, t.c[2] = P.z;
    return t;
  }();

  // 2-3. Kick-drift-kick with FastPM's coefficients; positions kept at every step boundary for
  // the reverse loop (the code's own memory: steps + 1 position arrays).
  dn::PmForce<T> force(force_mesh, {}, P.size());
  const dn::StepFactors<double> factors(cosmo, dn::Stepper::fastpm);
  const std::vector<double> a = dn::time_steps(s.a_start, s.a_end, s.steps);
  std::vector<dn::KdkCoefficients<double>> c;
  std::vector<Soa<T>> x_at;
  auto keep_positions = [&] {
    x_at.emplace_back(P.size());
    x_at.back().c[0] = P.x, x_at.back().c[1] = P.y, x_at.back().c[2] = P.z;
  };
  keep_positions();
  force(P.positions(), Om, P.forces());
  for (int i = 0; i < s.steps; ++i) {
    c.push_back(factors.step(a[i], a[i + 1]));
    dn::axpy(P.momenta(), c[i].kick_first, P.forces());
    dn::axpy(P.positions(), c[i].drift, P.momenta());
    force(P.positions(), Om, P.forces());
    dn::axpy(P.momenta(), c[i].kick_second, P.forces());
    keep_positions();
  }

  // 4. dL/dx_final = x_final - target; momenta do not enter L. In reverse, the momentum adjoint
  // passes through the kicks, the two kicks meeting at a step boundary share one force adjoint
  // with F_bar = (K2_{b-1} + K1_b) p_bar, and a drift adds D x_bar to p_bar.
  Soa<T> x_bar(P.size()), p_bar(P.size()), F_bar(P.size());
  double loss = 0.0;
  for (int d = 0; d < 3; ++d)
    for (std::size_t i = 0; i < P.size(); ++i) {
      const T r = x_at.back().c[d][i] - target.c[d][i];
      x_bar.c[d][i] = r;
      loss += 0.5 * double(r) * double(r);
    }
  auto force_adjoint = [&](int b, double k) {
    for (int d = 0; d < 3; ++d)
      for (std::size_t i = 0; i < P.size(); ++i) F_bar.c[d][i] = T(k) * p_bar.c[d][i];
    force.adjoint(x_at[b].view(), Om, F_bar.view(), x_bar.view());
  };
  for (int i = s.steps - 1; i >= 0; --i) {
    force_adjoint(i + 1, c[i].kick_second + (i + 1 < s.steps ? c[i + 1].kick_first : 0.0));
    dn::axpy(p_bar.view(), c[i].drift, x_bar.view());
  }
  force_adjoint(0, c[0].kick_first);

  double rms_x = 0.0, rms_p = 0.0;
  for (int d = 0; d < 3; ++d)
    for (std::size_t i = 0; i < P.size(); ++i) {
      rms_x += double(x_bar.c[d][i]) * double(x_bar.c[d][i]);
      rms_p += double(p_bar.c[d][i]) * double(p_bar.c[d][i]);
    }
  rms_x = std::sqrt(rms_x / (3.0 * double(P.size())));
  rms_p = std::sqrt(rms_p / (3.0 * double(P.size())));
  write<T>(s, "x_final.npy", P.positions());
  write<T>(s, "x0_bar.npy", x_bar.view());
  write<T>(s, "p0_bar.npy", p_bar.view());
  std::printf("loss,%.17g\nrms_dL_dx0,%.17g\nrms_dL_dp0,%.17g\n", loss, rms_x, rms_p);
  return 0;
}

void print_help() {
  std::puts(
      "own-particles: diffpm's PM force, FastPM steps and a gradient on a code's own\n"
      "struct-of-arrays particles, with no copies into diffpm containers.\n\n"
      "  --particles N         particles per side (default 32)\n"
      "  --mesh M              force-mesh cells per side (default 64)\n"
      "  --box L               box side, Mpc/h (default 128)\n"
      "  --a-start A           scale factor of the 2LPT initial conditions (default 0.1)\n"
      "  --steps S             FastPM steps to a = 1 (default 5)\n"
      "  --seed S              white-noise seed (default 7)\n"
      "  --precision P         float or double (default double)\n"
      "  --out DIR             write x_final.npy, x0_bar.npy, p0_bar.npy to DIR (must exist)\n");
}

}  // namespace

int main(int argc, char** argv) {
  using diffpm::cli::parse_number;
  Settings s;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      if (flag == "--help" || flag == "-h") {
        print_help();
        return 0;
      }
      if (i + 1 >= argc) throw diffpm::cli::UsageError(flag + " needs a value (see --help)");
      const std::string value = argv[++i];
      auto integer = [&](double lo, double hi) {
        const double v = parse_number(flag, value);
        if (v != std::floor(v) || v < lo || v > hi) {
          throw diffpm::cli::UsageError(flag + " " + value + ": must be an integer in [" +
                                        diffpm::cli::format_short(lo) + ", " +
                                        diffpm::cli::format_short(hi) + "]");
        }
        return v;
      };
      if (flag == "--particles") {
        s.particles = int(integer(2, 1024));
      } else if (flag == "--mesh") {
        s.mesh = int(integer(2, 2048));
      } else if (flag == "--steps") {
        s.steps = int(integer(1, 10000));
      } else if (flag == "--seed") {
        s.seed = std::uint64_t(integer(0, 9007199254740992.0));
      } else if (flag == "--box") {
        s.box = parse_number(flag, value);
      } else if (flag == "--a-start") {
        s.a_start = parse_number(flag, value);
      } else if (flag == "--precision") {
        if (value != "float" && value != "double")
          throw diffpm::cli::UsageError("--precision " + value + ": must be float or double");
        s.single = value == "float";
      } else if (flag == "--out") {
        s.out = value;
      } else {
        throw diffpm::cli::UsageError("unknown flag " + flag + " (see --help)");
      }
    }
    return s.single ? run<float>(s) : run<double>(s);
  } catch (const std::exception& e) {
    return diffpm::cli::fail("own-particles", diffpm::cli::library_message(e));
  }
}
