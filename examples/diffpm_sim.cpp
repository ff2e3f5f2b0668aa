// diffpm-sim: one forward particle-mesh simulation, Gaussian initial conditions to a_end, and
// the power spectrum of the result against linear theory.
//
//   diffpm-sim [cosmology flags as diffpm-cosmology] [--box L] [--particles N] [--mesh M]
//              [--steps S] [--a-start A0] [--a-end A1] [--lpt-order 1|2] [--seed SEED]
//              [--fixed-amplitude] [--precision float|double] [--threads T]
//              [--stepper fastpm|leapfrog] [--save-particles] [--save-density] --out DIR
//
// Writes DIR/power.csv (k,P,P_lin,n_modes at a_end; P_lin is D1(a_end)^2 P_lin(k) averaged over
// the same modes as P, so P/P_lin -> 1 on large scales), and with the --save flags
// DIR/particles_x.npy, DIR/particles_p.npy (N_p x 3) and DIR/density.npy (the overdensity on
// the mesh). Every file is written to a temporary name and renamed when complete. Progress goes
// to stderr; bad input prints one line "diffpm-sim: error: ..." and exits with status 2.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/io/atomic_file.hpp"
#include "diffpm/io/npy.hpp"
#include "diffpm/measure/power_spectrum.hpp"
#include "diffpm/nbody/simulation.hpp"

namespace {

namespace dc = diffpm::cosmology;
using namespace diffpm::cli;
using diffpm::nbody::SimulationConfig;

constexpr const char* kProgram = "diffpm-sim";

struct Options {
  CosmologyFlags cosmology;
  SimulationConfig sim;
  std::string precision = "float";
  std::string out;
  int threads = 0;
  bool save_particles = false, save_density = false;
  bool help = false;
};

/// The defaults: 192^3 particles in a 256 Mpc/h box on a 384^3 mesh (B = 2), 20 FastPM steps
/// from z = 19 with 2LPT, in float: 42 s on the two cores of the development machine.
Options defaults() {
  Options o;
  o.sim.box = {256.0, 256.0, 256.0};
  o.sim.particles = {192, 192, 192};
  o.sim.mesh = {384, 384, 384};
  o.sim.steps = 20;
  o.sim.a_start = 0.05;
  o.sim.a_end = 1.0;
  o.sim.lpt_order = 2;
  o.sim.seed = 42;
  return o;
}

void print_help() {
  const Options d = defaults();
  std::printf(
      "usage: diffpm-sim [cosmology flags] [simulation flags] --out DIR\n"
      "\n"
      "Runs a particle-mesh simulation (white noise -> linear field -> LPT -> FastPM\n"
      "kick-drift-kick steps) and writes DIR/power.csv with columns k,P,P_lin,n_modes at a_end:\n"
      "k in h/Mpc, P the power of the particles with the CIC window divided out (no shot\n"
      "noise subtracted: lattice initial conditions have far less than Poisson) in\n"
      "(Mpc/h)^3, P_lin = D1(a_end)^2 P_lin(k) averaged over the same modes.\n"
      "\n");
  CosmologyFlags::print_help();
  std::printf(
      "\n"
      "Simulation (defaults in brackets):\n"
      "  --box L            side of the periodic box in Mpc/h [%s]\n"
      "  --particles N      N^3 particles [%d]\n"
      "  --mesh M           M^3 force-mesh cells [%d]\n"
      "  --steps S          time steps, linear in a [%d]\n"
      "  --a-start A0       initial scale factor [%s]\n"
      "  --a-end A1         final scale factor, <= 1 [%s]\n"
      "  --lpt-order 1|2    initial conditions [%d]\n"
      "  --seed SEED        random seed, integer >= 0 [%llu]\n"
      "  --fixed-amplitude  |delta_k| set to its expectation (Angulo & Pontzen 2016)\n"
      "  --stepper S        fastpm (exact linear growth) or leapfrog [fastpm]\n"
      "  --precision P      float or double [%s]\n"
      "  --threads T        OpenMP and FFTW threads [all]\n"
      "\n"
      "Output:\n"
      "  --out DIR          output directory, created if missing (required)\n"
      "  --save-particles   also DIR/particles_x.npy, DIR/particles_p.npy (N^3 x 3)\n"
      "  --save-density     also DIR/density.npy (M x M x M overdensity at a_end)\n"
      "  -h, --help         print this help and exit\n"
      "\n"
      "Errors print one line on stderr and exit with status 2.\n",
      format_short(d.sim.box[0]).c_str(), d.sim.particles[0], d.sim.mesh[0], d.sim.steps,
      format_short(d.sim.a_start).c_str(), format_short(d.sim.a_end).c_str(), d.sim.lpt_order,
      static_cast<unsigned long long>(d.sim.seed), d.precision.c_str());
}

int parse_count(const std::string& flag, const std::string& text, int min) {
  const double v = parse_number(flag, text);
  if (v != std::floor(v) || v < min || v > 1 << 20) {
    throw UsageError(flag + " '" + text + "' must be an integer >= " + std::to_string(min));
  }
  return static_cast<int>(v);
}

Options parse_arguments(int argc, char** argv) {
  Options o = defaults();
  bool have_out = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      o.help = true;
      return o;
    }
    if (flag == "--fixed-amplitude") {
      o.sim.fixed_amplitude = true;
      continue;
    }
    if (flag == "--save-particles") {
      o.save_particles = true;
      continue;
    }
    if (flag == "--save-density") {
      o.save_density = true;
      continue;
    }
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(flag + " needs a value");
      return argv[++i];
    };
    if (o.cosmology.parse(flag, value)) continue;
    if (flag == "--box") {
      const std::string t = value();
      const double L = parse_number(flag, t);
      if (!(L > 0)) throw UsageError("--box '" + t + "' must be > 0 (Mpc/h)");
      o.sim.box = {L, L, L};
    } else if (flag == "--particles") {
      const int n = parse_count(flag, value(), 2);
      o.sim.particles = {n, n, n};
    } else if (flag == "--mesh") {
      const int n = parse_count(flag, value(), 2);
      o.sim.mesh = {n, n, n};
    } else if (flag == "--steps") {
      o.sim.steps = parse_count(flag, value(), 1);
    } else if (flag == "--a-start") {
      o.sim.a_start = parse_number(flag, value());
    } else if (flag == "--a-end") {
      o.sim.a_end = parse_number(flag, value());
    } else if (flag == "--lpt-order") {
      const std::string t = value();
      if (t != "1" && t != "2") throw UsageError("--lpt-order '" + t + "' must be 1 or 2");
      o.sim.lpt_order = t == "1" ? 1 : 2;
    } else if (flag == "--seed") {
      const std::string t = value();
      const double s = parse_number(flag, t);
      if (s != std::floor(s) || s < 0 || s > 9007199254740992.0) {
        throw UsageError("--seed '" + t + "' must be an integer in [0, 2^53]");
      }
      o.sim.seed = static_cast<std::uint64_t>(s);
    } else if (flag == "--stepper") {
      const std::string t = value();
      if (t == "fastpm") {
        o.sim.stepper = diffpm::nbody::Stepper::fastpm;
      } else if (t == "leapfrog") {
        o.sim.stepper = diffpm::nbody::Stepper::leapfrog;
      } else {
        throw UsageError("--stepper '" + t + "' must be fastpm or leapfrog");
      }
    } else if (flag == "--precision") {
      o.precision = value();
      if (o.precision != "float" && o.precision != "double") {
        throw UsageError("--precision '" + o.precision + "' must be float or double");
      }
    } else if (flag == "--threads") {
      o.threads = parse_count(flag, value(), 1);
    } else if (flag == "--out") {
      o.out = value();
      if (o.out.empty()) throw UsageError("--out '' is empty");
      have_out = true;
    } else {
      throw UsageError("unknown flag '" + flag + "' (see --help)");
    }
  }
  if (!have_out) throw UsageError("missing --out (the output directory; see --help)");
  o.cosmology.finish();
  const auto& s = o.sim;
  if (s.mesh[0] % s.particles[0] != 0 && s.particles[0] % s.mesh[0] != 0) {
    // Not required by the method, but a mesh that is not a multiple of the lattice aliases the
    // lattice pattern into the force at the percent level: say so instead of running.
    throw UsageError("--mesh " + std::to_string(s.mesh[0]) + " must be a multiple of --particles " +
                     std::to_string(s.particles[0]));
  }
  try {
    s.validate();
  } catch (const std::exception& e) {
    throw UsageError(library_message(e));
  }
  return o;
}

/// P_lin(k, a_end) averaged over the modes of each bin exactly as measure_power averages |delta|^2:
/// a field with |delta_n|^2 = P_lin(k_n) N^2 / V, measured with the same bins.
diffpm::measure::PowerSpectrum binned_linear_power(
    const dc::Cosmology<double>& c, const diffpm::mesh::Grid& g, double a,
    const diffpm::measure::PowerSpectrumOptions& po) {
  diffpm::mesh::ComplexField<double> f(g);
  const double norm = double(g.size()) / std::sqrt(g.volume());
  for (int i = 0; i < g.n[0]; ++i)
    for (int j = 0; j < g.n[1]; ++j)
      for (int l = 0; l < g.complex_nz(); ++l) {
        const double kx = g.wavenumber(0, i), ky = g.wavenumber(1, j), kz = g.wavenumber(2, l);
        const double k = std::sqrt(kx * kx + ky * ky + kz * kz);
        f(i, j, l) = k > 0 ? norm * std::sqrt(c.linear_power(k, a)) : 0.0;
      }
  auto plain = po;
  plain.deconvolve_cic = false;
  plain.shot_noise_particle_count.reset();
  return diffpm::measure::measure_power(f, plain);
}

template <class T>
void run(const Options& o) {
  namespace fs = std::filesystem;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto say = [&](const std::string& s) {
    std::fprintf(stderr, "[%7.1f s] %s\n", elapsed(), s.c_str());
  };

  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (!fs::is_directory(o.out))
    throw UsageError("--out '" + o.out + "' is not a directory and cannot be created");

  const dc::Cosmology<double> cosmo(o.cosmology.params, o.cosmology.options());
  auto cfg = o.sim;
  cfg.threads = o.threads;
  say("diffpm-sim: " + std::to_string(cfg.particles[0]) + "^3 particles, " +
      std::to_string(cfg.mesh[0]) + "^3 mesh, box " + format_short(cfg.box[0]) + " Mpc/h, " +
      std::to_string(cfg.steps) + " steps, " + o.precision + ", " +
      std::to_string(diffpm::max_threads()) + " threads");
  const auto r = diffpm::nbody::run_simulation<T>(cosmo, cfg, {}, {}, say);

  say("measuring the power spectrum");
  const diffpm::mesh::Grid grid(cfg.mesh, cfg.box);
  diffpm::FftPlan<T> plan(grid, o.threads > 0 ? o.threads : diffpm::max_threads());
  diffpm::mesh::RealField<T> delta(grid);
  diffpm::particles::paint_cic(r.state.x, delta);
  const T norm = T(double(grid.size()) / double(r.state.x.size()));
  for (auto& v : delta.data) v = v * norm - T(1);
  diffpm::measure::PowerSpectrumOptions po;
  // CIC window divided out; no shot noise subtracted: particles that start on a lattice carry
  // far less than the Poisson V/N_p on large scales (subtracting it took 16% off P at
  // k = 0.013 h/Mpc in a 500 Mpc/h box with 32^3 particles).
  po.deconvolve_cic = true;
  const auto P = diffpm::measure::measure_power(delta, plan, po);
  const auto P_lin = binned_linear_power(cosmo, grid, cfg.a_end, po);

  const std::string power_path = (fs::path(o.out) / "power.csv").string();
  diffpm::io::write_atomically(power_path, [&](std::ofstream& out) {
    out << "k,P,P_lin,n_modes\n";
    for (std::size_t b = 0; b < P.size(); ++b) {
      if (P.n_modes[b] == 0) continue;
      out << format17(P.k_mean[b]) << ',' << format17(P.power[b]) << ',' << format17(P_lin.power[b])
          << ',' << P.n_modes[b] << '\n';
    }
  });
  say("wrote " + power_path);
  if (o.save_particles) {
    const std::vector<std::size_t> shape = {r.state.x.size(), 3};
    diffpm::io::write_npy((fs::path(o.out) / "particles_x.npy").string(), r.state.x.data()->data(),
                          shape);
    diffpm::io::write_npy((fs::path(o.out) / "particles_p.npy").string(), r.state.p.data()->data(),
                          shape);
    say("wrote particles_x.npy, particles_p.npy");
  }
  if (o.save_density) {
    const std::vector<std::size_t> shape = {std::size_t(grid.n[0]), std::size_t(grid.n[1]),
                                            std::size_t(grid.n[2])};
    diffpm::io::write_npy((fs::path(o.out) / "density.npy").string(), delta.data.data(), shape);
    say("wrote density.npy");
  }
  say("done");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse_arguments(argc, argv);
    if (o.help) {
      print_help();
      return std::fflush(stdout) == 0 ? 0 : fail(kProgram, "cannot write to stdout");
    }
    if (o.threads > 0) diffpm::set_threads(o.threads);
    if (o.precision == "float") {
      run<float>(o);
    } else {
      run<double>(o);
    }
    return 0;
  } catch (const UsageError& e) {
    return fail(kProgram, e.what());
  } catch (const std::exception& e) {
    return fail(kProgram, library_message(e));
  } catch (...) {
    return fail(kProgram, "unexpected internal error");
  }
}
