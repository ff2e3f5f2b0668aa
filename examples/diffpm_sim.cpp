// diffpm-sim: one forward particle-mesh simulation, Gaussian initial conditions to a_end, and
// the power spectrum of the result against linear theory.
//
//   diffpm-sim [cosmology flags as diffpm-cosmology] [--box L] [--particles N] [--mesh M]
//              [--steps S] [--a-start A0] [--a-end A1] [--lpt-order 1|2] [--seed SEED]
//              [--white-noise FILE.npy] [--fixed-amplitude] [--precision float|double]
//              [--threads T] [--backend cpu|cuda]
//              [--stepper fastpm|leapfrog] [--pgd | --pgd-params ALPHA,KL,KS[,MU]]
//              [--save-particles] [--save-density]
//              [--lensing --fov DEG --pixels P --planes K (--z-source Z1,Z2,... | --nz FILE)...
//               [--plane-cell C] [--random-shifts] [--random-orientations] [--shift-seed S]
//               [--loss-target FILE.fits... --noise-sigma S [--save-noise-gradient]
//                [--adjoint store|reverse|checkpoint] [--checkpoint-every K]]]
//              --out DIR
//
// Writes DIR/power.csv (k,P,P_lin,n_modes at a_end; P_lin is D1(a_end)^2 P_lin(k) averaged over
// the same modes as P, so P/P_lin -> 1 on large scales), and with the --save flags
// DIR/particles_x.npy, DIR/particles_p.npy (N_p x 3) and DIR/density.npy (the overdensity on
// the mesh). With --lensing, the run also paints a lightcone (docs/lensing.md) and writes, for
// each source i = 0, 1, ... in the order given, DIR/kappa_<i>.fits (TAN WCS; ZSOURCE or NZFILE
// and BIN in the header), DIR/kappa_<i>.npy, DIR/kappa_<i>.png and DIR/cl_<i>.csv
// (ell,cl,cl_limber_linear,cl_limber_halofit,n_modes: the map's binned C_ell and the Limber
// theory averaged over the same modes).
//
// With --pgd (the parameters fitted for the run's resolution, nbody/pgd_calibration.hpp) or
// --pgd-params, the particles that are measured and painted (power.csv, density.npy,
// particles_x.npy and every lightcone plane) are first moved by the PGD small-scale correction
// (nbody/pgd.hpp), at a_end and at each plane's a_i; with --loss-target, gradient.csv also has
// dL/d(the four PGD parameters).
//
// With --loss-target (one target map per source, in the order of the maps; each written by
// diffpm-sim --lensing with the same field and pixels) and --noise-sigma S, the run is the
// differentiable forward model (model/forward_model.hpp) on the white noise of --seed. It writes
// the same files from the model's maps, prints the loss
//   L = sum_sources sum_pixels (kappa - kappa_target)^2 / (2 S^2)
// as one line "loss,<L>" on stdout, and writes DIR/gradient.csv (parameter,value,dL_dparameter:
// one row per cosmological parameter except Omega_k, which the flat-sky lightcone does not
// differentiate) and, with --save-noise-gradient, DIR/noise_gradient.npy (dL/dnoise, N x N x N on
// the particle lattice, in the --precision's type). --adjoint picks how the gradient pass recovers
// the trajectory (store, reverse or checkpoint: the same bits in each). Numbers in the CSV files
// and on stdout have 17 significant digits. The discretisation does not depend on the
// parameters (the planes' angular cells come from a fixed reference cosmology), so finite
// differences of the loss over separate runs match the gradient.
//
// Every file is written to a temporary name and renamed when complete. Progress goes to stderr;
// bad input prints one line "diffpm-sim: error: ..." and exits with status 2.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/io/atomic_file.hpp"
#include "diffpm/io/fits.hpp"
#include "diffpm/io/npy.hpp"
#include "diffpm/io/png.hpp"
#include "diffpm/io/redshift_distribution_file.hpp"
#include "diffpm/lensing/angular_power.hpp"
#include "diffpm/lensing/lensing_simulation.hpp"
#include "diffpm/lensing/limber.hpp"
#include "diffpm/measure/power_spectrum.hpp"
#include "diffpm/model/forward_model.hpp"
#include "diffpm/nbody/pgd.hpp"
#include "diffpm/nbody/pgd_calibration.hpp"
#include "diffpm/nbody/simulation.hpp"

namespace {

namespace dc = diffpm::cosmology;
using namespace diffpm::cli;
using diffpm::nbody::SimulationConfig;

constexpr const char* kProgram = "diffpm-sim";

/// One source of --z-source or --nz, as given on the command line.
struct Source {
  diffpm::lensing::SourceDistribution distribution;
  std::string nz_file;  ///< empty for a fixed redshift
};

struct Options {
  CosmologyFlags cosmology;
  SimulationConfig sim;
  bool lensing = false;
  diffpm::lensing::LensingConfig lens;
  std::vector<Source> sources;
  std::string lensing_flag;  ///< the first lensing flag seen, for "needs --lensing"
  // The loss and its gradient (--loss-target).
  std::vector<std::string> loss_targets;              ///< paths, one per source
  std::vector<diffpm::lensing::Map<double>> targets;  ///< their maps, read and checked
  std::optional<double> noise_sigma;
  bool save_noise_gradient = false;
  diffpm::nbody::AdjointMode adjoint = diffpm::nbody::AdjointMode::reverse;
  std::string adjoint_name = "reverse";
  int checkpoint_every = 8;
  bool checkpoint_every_given = false;
  std::string loss_flag;  ///< the first flag that needs --loss-target, for the message
  std::string precision = "float";
  std::string white_noise;  ///< --white-noise FILE.npy: the initial white noise, not --seed's
  bool seed_given = false;
  std::string out;
  int threads = 0;
  bool save_particles = false, save_density = false;
  std::optional<diffpm::nbody::PgdParameters> pgd;  ///< --pgd-params, or --pgd's
  bool pgd_calibrated = false;                      ///< --pgd
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
  o.lens.map = diffpm::lensing::MapGeometry(256, 5.0);
  o.lens.planes = 16;
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
      "  --steps S          time steps, linear in a; 0: LPT only, at every a needed [%d]\n"
      "  --a-start A0       initial scale factor [%s]\n"
      "  --a-end A1         final scale factor, <= 1 [%s]\n"
      "  --lpt-order 1|2    initial conditions [%d]\n"
      "  --seed SEED        random seed, integer >= 0 [%llu]\n"
      "  --white-noise F    the initial white noise from F.npy (N x N x N, unit variance, as\n"
      "                     noise_gradient.npy is laid out) instead of --seed's\n"
      "  --fixed-amplitude  |delta_k| set to its expectation (Angulo & Pontzen 2016)\n"
      "  --stepper S        fastpm (exact linear growth) or leapfrog [fastpm]\n"
      "  --precision P      float or double [%s]\n"
      "  --threads T        OpenMP and FFTW threads [all]\n"
      "  --pgd              the PGD correction with the parameters fitted against\n"
      "                     EuclidEmulator2 for this resolution (docs/validation/pgd.md;\n"
      "                     z <= 1; an error names the calibrated resolutions) [off]\n"
      "  --pgd-params ALPHA,KL,KS[,MU]  move the particles that are measured and painted\n"
      "                     (power.csv, density, saved positions, lightcone planes) by the\n"
      "                     PGD correction (Dai, Feng & Seljak 2018): amplitude ALPHA a^MU,\n"
      "                     band KL to KS in h/Mpc on the force mesh [off; MU 0]\n"
      "  --backend B        cpu, or cuda: the PM steps (and with --loss-target their\n"
      "                     gradient and the lightcone) on the device backend (the GPU in a\n"
      "                     cuda build, the same code on the host in an omp build) [cpu]\n"
      "\n"
      "Lensing (--lensing; docs/lensing.md):\n"
      "  --lensing          paint a lightcone (observer at the middle of the x = 0 face,\n"
      "                     looking along +x) and make Born convergence maps\n"
      "  --fov DEG          side of the square flat-sky map in degrees [%s]\n"
      "  --pixels P         P x P pixels [%d]\n"
      "  --planes K         shells equally spaced in comoving distance to the farthest\n"
      "                     source [%d]\n"
      "  --z-source Z,...   sources at fixed redshifts, one map each\n"
      "  --nz FILE          a source distribution, two columns z n(z) (repeatable: one map\n"
      "                     per file; maps are numbered in the order of the flags)\n"
      "  --plane-cell C     comoving resolution of the density planes in Mpc/h; 0: the\n"
      "                     force mesh's cell [0]\n"
      "  --random-shifts    shift each periodic replica of the box randomly\n"
      "  --random-orientations  also turn each replica by a random symmetry of the box\n"
      "                     (axis permutations and reflections)\n"
      "  --shift-seed S     seed of the shifts and orientations [1]\n"
      "  Writes, per source i: kappa_<i>.fits, kappa_<i>.npy, kappa_<i>.png and cl_<i>.csv\n"
      "  (ell,cl,cl_limber_linear,cl_limber_halofit,n_modes).\n"
      "\n"
      "Loss and gradient (needs --lensing; the differentiable model on the noise of --seed):\n"
      "  --loss-target FILE.fits  target map of a source, written by diffpm-sim --lensing with\n"
      "                     the same --fov and --pixels (and, if its header says, the same\n"
      "                     source); repeatable: one per source, in the order of the maps.\n"
      "                     Writes the same files as --lensing, prints \"loss,L\" on stdout,\n"
      "                       L = sum_sources sum_pixels (kappa - target)^2 / (2 S^2),\n"
      "                     and writes gradient.csv (parameter,value,dL_dparameter) with a row\n"
      "                     per cosmological parameter except Omega_k: the lightcone is\n"
      "                     flat-sky in a flat universe, so curvature is not differentiated\n"
      "  --noise-sigma S    noise rms per pixel, S > 0 (required with --loss-target)\n"
      "  --save-noise-gradient  also noise_gradient.npy: dL/dnoise on the N x N x N lattice\n"
      "  --adjoint MODE     how the gradient pass gets the trajectory back: store (keeps every\n"
      "                     step), reverse (runs the steps backwards, no memory per step) or\n"
      "                     checkpoint (keeps every K-th step); the same result bits [%s]\n"
      "  --checkpoint-every K  steps between checkpoints of --adjoint checkpoint [%d]\n"
      "  Numbers are printed with 17 significant digits.\n"
      "\n"
      "Output:\n"
      "  --out DIR          output directory, created if missing (required)\n"
      "  --save-particles   also DIR/particles_x.npy, DIR/particles_p.npy (N^3 x 3)\n"
      "  --save-density     also DIR/density.npy (M x M x M overdensity at a_end)\n"
      "                     (--save-particles is not available with --loss-target)\n"
      "  -h, --help         print this help and exit\n"
      "\n"
      "Errors print one line on stderr and exit with status 2.\n",
      format_short(d.sim.box[0]).c_str(), d.sim.particles[0], d.sim.mesh[0], d.sim.steps,
      format_short(d.sim.a_start).c_str(), format_short(d.sim.a_end).c_str(), d.sim.lpt_order,
      static_cast<unsigned long long>(d.sim.seed), d.precision.c_str(),
      format_short(d.lens.map.fov_deg).c_str(), d.lens.map.pixels, d.lens.planes,
      d.adjoint_name.c_str(), d.checkpoint_every);
}

int parse_count(const std::string& flag, const std::string& text, int min) {
  const double v = parse_number(flag, text);
  if (v != std::floor(v) || v < min || v > 1 << 20) {
    throw UsageError(flag + " '" + text + "' must be an integer >= " + std::to_string(min));
  }
  return static_cast<int>(v);
}

/// Whether two values from a header and from the flags are the same, up to the rounding of a
/// value that another program wrote (diffpm-sim's own 17-digit keys read back exactly).
bool same_value(double a, double b) {
  return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b));
}

/// Reads the target map of source i and checks that it is a map of the run's field, pixels and,
/// if its header names one (ZSOURCE or NZFILE, as diffpm-sim writes them), source.
diffpm::lensing::Map<double> read_target(const Options& o, std::size_t i) {
  namespace fs = std::filesystem;
  const std::string& path = o.loss_targets[i];
  std::string what = "--loss-target '" + path + "'";
  if (o.sources.size() > 1) what += " (source " + std::to_string(i) + ")";
  diffpm::io::FitsMap<double> t;
  try {
    t = diffpm::io::read_fits<double>(path);
  } catch (const std::exception& e) {
    throw UsageError(what + ": " + library_message(e));
  }
  const auto& g = t.map.geometry;
  const auto& run = o.lens.map;
  if (g.pixels != run.pixels) {
    throw UsageError(what + ": " + std::to_string(g.pixels) + " x " + std::to_string(g.pixels) +
                     " pixels, the run makes " + std::to_string(run.pixels) + " x " +
                     std::to_string(run.pixels) + " (--pixels)");
  }
  if (!same_value(g.fov_deg, run.fov_deg)) {
    throw UsageError(what + ": field of view " + format_short(g.fov_deg) + " deg, the run's is " +
                     format_short(run.fov_deg) + " deg (--fov)");
  }
  const auto& src = o.sources[i];
  const std::string run_source =
      src.nz_file.empty() ? "at z = " + format_short(src.distribution.source_redshift())
                          : "the n(z) file '" + fs::path(src.nz_file).filename().string() + "'";
  const std::string run_says = ", the run's source " + std::to_string(i) + " is " + run_source;
  try {
    if (const auto* key = t.find("ZSOURCE")) {
      const double z = key->as_double();
      if (!src.nz_file.empty() || !same_value(z, src.distribution.source_redshift())) {
        throw UsageError(what + ": a map of sources at z = " + format_short(z) + " (ZSOURCE)" +
                         run_says);
      }
    }
    if (const auto* key = t.find("NZFILE")) {
      const std::string& name = key->as_string();
      if (src.nz_file.empty() || name != fs::path(src.nz_file).filename().string()) {
        throw UsageError(what + ": a map of the n(z) file '" + name + "' (NZFILE)" + run_says);
      }
    }
  } catch (const UsageError&) {
    throw;
  } catch (const std::exception& e) {  // a key of another type than diffpm-sim writes
    throw UsageError(what + ": " + library_message(e));
  }
  for (std::size_t c = 0; c < t.map.data.size(); ++c) {
    if (!std::isfinite(t.map.data[c])) {
      throw UsageError(what + ": pixel (" + std::to_string(c % g.pixels) + ", " +
                       std::to_string(c / g.pixels) + ") is " + format17(t.map.data[c]) +
                       " (must be finite)");
    }
  }
  // The run's geometry exactly, so that the adjoint maps match the model's.
  diffpm::lensing::Map<double> m(run);
  m.data.assign(t.map.data.begin(), t.map.data.end());
  return m;
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
    if (flag == "--lensing") {
      o.lensing = true;
      continue;
    }
    if (flag == "--pgd") {
      o.pgd_calibrated = true;
      continue;
    }
    if (flag == "--save-noise-gradient") {
      o.save_noise_gradient = true;
      if (o.loss_flag.empty()) o.loss_flag = flag;
      continue;
    }
    if (flag == "--random-shifts" || flag == "--random-orientations") {
      (flag == "--random-shifts" ? o.lens.random_shifts : o.lens.random_orientations) = true;
      if (o.lensing_flag.empty()) o.lensing_flag = flag;
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
      o.sim.steps = parse_count(flag, value(), 0);
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
      o.seed_given = true;
    } else if (flag == "--white-noise") {
      o.white_noise = value();
      if (o.white_noise.empty()) throw UsageError("--white-noise '' is empty");
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
    } else if (flag == "--backend") {
      const std::string t = value();
      if (t != "cpu" && t != "cuda") throw UsageError("--backend '" + t + "' must be cpu or cuda");
      o.sim.backend = diffpm::parse_backend(t);
    } else if (flag == "--pgd-params") {
      const std::string t = value();
      const auto v = parse_list(flag, t);
      if (v.size() != 3 && v.size() != 4) {
        throw UsageError("--pgd-params '" + t + "' must be ALPHA,KL,KS or ALPHA,KL,KS,MU (" +
                         std::to_string(v.size()) + " numbers given)");
      }
      diffpm::nbody::PgdParameters p{v[0], v[1], v[2], v.size() == 4 ? v[3] : 0.0};
      try {
        p.validate("--pgd-params");
      } catch (const std::exception& e) {
        throw UsageError(library_message(e));
      }
      o.pgd = p;
    } else if (flag == "--threads") {
      o.threads = parse_count(flag, value(), 1);
    } else if (flag == "--fov" || flag == "--pixels" || flag == "--planes" ||
               flag == "--z-source" || flag == "--nz" || flag == "--plane-cell" ||
               flag == "--shift-seed") {
      if (o.lensing_flag.empty()) o.lensing_flag = flag;
      const std::string t = value();
      if (flag == "--fov") {
        o.lens.map.fov_deg = parse_number(flag, t);
      } else if (flag == "--pixels") {
        o.lens.map.pixels = parse_count(flag, t, 2);
      } else if (flag == "--planes") {
        o.lens.planes = parse_count(flag, t, 1);
      } else if (flag == "--plane-cell") {
        o.lens.plane_cell = parse_number(flag, t);
      } else if (flag == "--shift-seed") {
        const double v = parse_number(flag, t);
        if (v != std::floor(v) || v < 0 || v > 9007199254740992.0) {
          throw UsageError("--shift-seed '" + t + "' must be an integer in [0, 2^53]");
        }
        o.lens.shift_seed = static_cast<std::uint64_t>(v);
      } else if (flag == "--z-source") {
        for (double z : parse_list(flag, t)) {
          try {
            o.sources.push_back({diffpm::lensing::SourceDistribution::fixed(z), ""});
          } catch (const std::exception& e) {
            throw UsageError("--z-source '" + t + "': " + library_message(e));
          }
        }
      } else {
        if (t.empty()) throw UsageError("--nz '' is empty");
        try {
          o.sources.push_back({diffpm::io::read_source_distribution(t), t});
        } catch (const std::exception& e) {
          throw UsageError("--nz '" + t + "': " + library_message(e));
        }
      }
    } else if (flag == "--loss-target") {
      const std::string t = value();
      if (t.empty()) throw UsageError("--loss-target '' is empty");
      o.loss_targets.push_back(t);
    } else if (flag == "--noise-sigma" || flag == "--adjoint" || flag == "--checkpoint-every") {
      if (o.loss_flag.empty()) o.loss_flag = flag;
      const std::string t = value();
      if (flag == "--noise-sigma") {
        const double sigma = parse_number(flag, t);
        if (!(sigma > 0)) {
          throw UsageError("--noise-sigma '" + t + "' must be > 0 (the noise rms per pixel)");
        }
        o.noise_sigma = sigma;
      } else if (flag == "--adjoint") {
        if (t == "store") {
          o.adjoint = diffpm::nbody::AdjointMode::store;
        } else if (t == "reverse") {
          o.adjoint = diffpm::nbody::AdjointMode::reverse;
        } else if (t == "checkpoint") {
          o.adjoint = diffpm::nbody::AdjointMode::checkpoint;
        } else {
          throw UsageError("--adjoint '" + t + "' must be store, reverse or checkpoint");
        }
        o.adjoint_name = t;
      } else {
        o.checkpoint_every = parse_count(flag, t, 1);
        o.checkpoint_every_given = true;
      }
    } else if (flag == "--out") {
      o.out = value();
      if (o.out.empty()) throw UsageError("--out '' is empty");
      have_out = true;
    } else {
      throw UsageError("unknown flag '" + flag + "' (see --help)");
    }
  }
  if (!have_out) throw UsageError("missing --out (the output directory; see --help)");
  if (o.seed_given && !o.white_noise.empty())
    throw UsageError("--seed and --white-noise both set the initial white noise: give one");
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
  if (o.pgd_calibrated) {
    if (o.pgd) throw UsageError("--pgd and --pgd-params both set the PGD parameters: give one");
    try {
      o.pgd = diffpm::nbody::find_pgd_calibration(o.sim).parameters;
    } catch (const std::exception& e) {
      throw UsageError("--pgd: " + library_message(e));
    }
  }
  const bool loss = !o.loss_targets.empty();
  if (!loss && !o.loss_flag.empty()) throw UsageError(o.loss_flag + " needs --loss-target");
  if (loss && !o.lensing) {
    throw UsageError("--loss-target needs --lensing (the loss compares convergence maps)");
  }
  if (o.sim.backend == diffpm::BackendKind::cuda) {
    if (!diffpm::device_backend_compiled()) {
      throw UsageError(
          "--backend cuda: this diffpm-sim was built without the device backend "
          "(configure with -DDIFFPM_DEVICE=cuda, or omp to run the device code on "
          "the host)");
    }
  }
  if (!o.lensing && !o.lensing_flag.empty()) {
    throw UsageError(o.lensing_flag + " needs --lensing");
  }
  if (o.lensing) {
    if (o.sources.empty()) {
      throw UsageError("--lensing needs sources: --z-source Z1,Z2,... or --nz FILE");
    }
    if (s.a_end != 1.0) {
      throw UsageError("--lensing needs --a-end 1 (the lightcone ends at the observer, a = 1)");
    }
    try {
      o.lens.validate();
    } catch (const std::exception& e) {
      throw UsageError(library_message(e));
    }
  }
  if (loss) {
    if (!o.noise_sigma) {
      throw UsageError("--loss-target needs --noise-sigma S (the noise rms per pixel)");
    }
    if (o.loss_targets.size() != o.sources.size()) {
      throw UsageError(std::to_string(o.loss_targets.size()) + " --loss-target map(s) for " +
                       std::to_string(o.sources.size()) +
                       " source(s): give one per source, in the order of the maps");
    }
    if (o.checkpoint_every_given && o.adjoint != diffpm::nbody::AdjointMode::checkpoint) {
      throw UsageError("--checkpoint-every needs --adjoint checkpoint");
    }
    if (o.save_particles) {
      throw UsageError(
          "--save-particles is not available with --loss-target (the model does not return "
          "its particles; --save-density is)");
    }
    for (std::size_t i = 0; i < o.loss_targets.size(); ++i) o.targets.push_back(read_target(o, i));
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

/// The Limber C_ell of `q` at every mode of the map, averaged over the bins as the map's
/// estimator averages them: tabulated at 256 ells spaced logarithmically over the map's range
/// and interpolated linearly in (ln ell, ln C), which is far smoother than the bins.
std::vector<double> binned_limber(const dc::Cosmology<double>& cosmo,
                                  const diffpm::lensing::LensingEfficiency<double>& q,
                                  const diffpm::lensing::MapGeometry& map,
                                  const std::vector<double>& edges,
                                  diffpm::lensing::NonlinearModel model) {
  const double lo = 0.5 * edges.front(), hi = 2.0 * edges.back();
  constexpr int n = 256;
  std::vector<double> ell(n);
  for (int i = 0; i < n; ++i) ell[i] = lo * std::pow(hi / lo, double(i) / (n - 1));
  const auto cl = diffpm::lensing::limber_convergence_cl(cosmo, q, q, ell, model);
  return diffpm::lensing::bin_average(map, edges, [&](double lx, double ly) {
    const double u = std::log(std::hypot(lx, ly) / lo) / std::log(hi / lo) * (n - 1);
    const int i = std::clamp(int(u), 0, n - 2);
    const double f = u - i;
    if (!(cl[i] > 0.0) || !(cl[i + 1] > 0.0)) return (1.0 - f) * cl[i] + f * cl[i + 1];
    return std::exp((1.0 - f) * std::log(cl[i]) + f * std::log(cl[i + 1]));
  });
}

/// Writes the maps of a lensing run, one per source, and their power spectra (see the file
/// comment).
template <class T, class Say>
void write_lensing(const Options& o, const dc::Cosmology<double>& cosmo,
                   const std::vector<diffpm::lensing::Map<T>>& kappa, const Say& say) {
  namespace fs = std::filesystem;
  namespace dl = diffpm::lensing;
  const auto& map = o.lens.map;
  // Log bins from the fundamental to the Nyquist multipole, about 4 per octave of the map's
  // range, empty bins (at the lowest ells of small maps) left out of the file.
  const int n_bins = std::clamp(int(std::ceil(4.0 * std::log2(map.pixels / 2.0))), 1, 40);
  const auto edges = dl::log_ell_edges(dl::ell_fundamental(map), dl::ell_nyquist(map), n_bins);
  for (std::size_t i = 0; i < kappa.size(); ++i) {
    const auto& src = o.sources[i];
    const std::string stem = (fs::path(o.out) / ("kappa_" + std::to_string(i))).string();
    std::vector<diffpm::io::FitsKey> keys = {
        {"BIN", std::int64_t(i), "source index, in the order given"},
        {"NPLANES", std::int64_t(o.lens.planes), "lightcone shells"},
        {"BOXSIZE", o.sim.box[0], "simulation box side [Mpc/h]"},
        {"SEED", std::int64_t(o.sim.seed), "initial-condition seed"}};
    if (src.nz_file.empty()) {
      keys.push_back({"ZSOURCE", src.distribution.source_redshift(), "source redshift"});
    } else {
      keys.push_back({"NZFILE", fs::path(src.nz_file).filename().string(), "n(z) file"});
    }
    diffpm::io::write_fits(stem + ".fits", kappa[i], keys);
    const std::vector<std::size_t> shape = {std::size_t(map.pixels), std::size_t(map.pixels)};
    diffpm::io::write_npy(stem + ".npy", kappa[i].data.data(), shape);
    diffpm::io::PngOptions png;
    png.upscale = std::clamp(256 / map.pixels, 1, 16);
    diffpm::io::write_png(stem + ".png", kappa[i], png);

    const auto ps = dl::angular_power_spectrum(kappa[i], edges);
    const dl::LensingEfficiency<double> q(cosmo, src.distribution);
    const auto lin = binned_limber(cosmo, q, map, edges, dl::NonlinearModel::linear);
    const auto hf = binned_limber(cosmo, q, map, edges, dl::NonlinearModel::halofit);
    const std::string cl_path = (fs::path(o.out) / ("cl_" + std::to_string(i) + ".csv")).string();
    diffpm::io::write_atomically(cl_path, [&](std::ofstream& out) {
      out << "ell,cl,cl_limber_linear,cl_limber_halofit,n_modes\n";
      for (std::size_t b = 0; b < ps.cl.size(); ++b) {
        if (ps.n_modes[b] == 0) continue;
        out << format17(ps.ell_mean[b]) << ',' << format17(ps.cl[b]) << ',' << format17(lin[b])
            << ',' << format17(hf[b]) << ',' << ps.n_modes[b] << '\n';
      }
    });
    say("wrote " + stem + ".{fits,npy,png} and " + cl_path);
  }
}

/// The model of a --loss-target run: the simulation, cosmology and lightcone of the flags, the
/// final density for power.csv, and the adjoint mode.
diffpm::model::ModelConfig model_config(const Options& o, const SimulationConfig& sim,
                                        const dc::CosmologyOptions& cosmology) {
  diffpm::model::ModelConfig c;
  c.simulation = sim;
  c.cosmology = cosmology;
  diffpm::model::LensingSetup lensing;
  lensing.config = o.lens;
  for (const auto& src : o.sources) lensing.sources.push_back(src.distribution);
  c.lensing = std::move(lensing);
  c.final_density = true;
  c.pgd = o.pgd;
  c.adjoint = o.adjoint;
  c.checkpoint_every = std::size_t(o.checkpoint_every);
  return c;
}

/// The loss of the model's maps against the targets, its gradient, DIR/gradient.csv (last, so
/// that it exists only if everything else was written), DIR/noise_gradient.npy, and the line
/// "loss,<L>" on stdout.
template <class T, class Say>
void write_gradient(const Options& o, diffpm::model::ForwardModel<T>& model,
                    const diffpm::model::ModelOutput<T>& out, const Say& say) {
  namespace fs = std::filesystem;
  const double sigma = *o.noise_sigma, inv_var = 1.0 / (sigma * sigma);
  // L = sum (kappa - t)^2 / (2 S^2), accumulated in long double; dL/dkappa = (kappa - t) / S^2.
  long double sum = 0.0L;
  std::vector<diffpm::lensing::Map<T>> kappa_bar;
  for (std::size_t s = 0; s < out.kappa.size(); ++s) {
    diffpm::lensing::Map<T> bar(o.lens.map);
    for (std::size_t c = 0; c < bar.data.size(); ++c) {
      const double d = double(out.kappa[s].data[c]) - o.targets[s].data[c];
      sum += static_cast<long double>(d) * d;
      bar.data[c] = static_cast<T>(d * inv_var);
    }
    kappa_bar.push_back(std::move(bar));
  }
  const double loss = double(sum / (2.0L * sigma * sigma));
  if (!std::isfinite(loss)) {
    throw diffpm::InvalidArgument("the loss is " + format17(loss) + " (--noise-sigma " +
                                  format_short(sigma) + " too small for these maps?)");
  }

  say("gradient pass (--adjoint " + o.adjoint_name + ")");
  // The loss does not see the final density (computed for power.csv): no density adjoint.
  const auto g = model.gradient(kappa_bar);
  for (int p = 0; p < dc::n_parameters; ++p) {
    if (dc::Parameter(p) != dc::Parameter::Omega_k && !std::isfinite(g.parameters[p])) {
      throw diffpm::InvalidArgument("dL/d" + std::string(dc::parameter_names[p]) + " is " +
                                    format17(g.parameters[p]) + " (--noise-sigma " +
                                    format_short(sigma) + " too small for --precision " +
                                    o.precision + "?)");
    }
  }

  if (o.save_noise_gradient) {
    const auto& n = g.noise.grid.n;
    const std::vector<std::size_t> shape = {std::size_t(n[0]), std::size_t(n[1]),
                                            std::size_t(n[2])};
    const std::string path = (fs::path(o.out) / "noise_gradient.npy").string();
    diffpm::io::write_npy(path, g.noise.data.data(), shape);
    say("wrote " + path);
  }
  const std::string path = (fs::path(o.out) / "gradient.csv").string();
  diffpm::io::write_atomically(path, [&](std::ofstream& csv) {
    csv << "parameter,value,dL_dparameter\n";
    for (int p = 0; p < dc::n_parameters; ++p) {
      // Omega_k: the lightcone is flat-sky in a flat universe, the model does not differentiate
      // curvature (its entry is NaN).
      if (dc::Parameter(p) == dc::Parameter::Omega_k) continue;
      csv << dc::parameter_names[p] << ',' << format17(o.cosmology.params[dc::Parameter(p)]) << ','
          << format17(g.parameters[p]) << '\n';
    }
    if (o.pgd) {
      csv << "pgd_alpha," << format17(o.pgd->alpha) << ',' << format17(g.pgd.alpha) << '\n';
      csv << "pgd_k_l," << format17(o.pgd->k_l) << ',' << format17(g.pgd.k_l) << '\n';
      csv << "pgd_k_s," << format17(o.pgd->k_s) << ',' << format17(g.pgd.k_s) << '\n';
      csv << "pgd_mu," << format17(o.pgd->mu) << ',' << format17(g.pgd.mu) << '\n';
    }
  });
  say("wrote " + path);
  if (std::printf("loss,%s\n", format17(loss).c_str()) < 0 || std::fflush(stdout) != 0) {
    throw diffpm::IoError("cannot write the loss to stdout");
  }
}

/// The white noise of --white-noise: an N x N x N array (or N^3 values) on the particle
/// lattice, float or double, every value finite.
template <class T>
diffpm::mesh::RealField<T> read_white_noise(const std::string& path,
                                            const diffpm::mesh::Grid& lattice) {
  std::vector<std::size_t> shape;
  std::vector<T> values = diffpm::io::read_npy<T>(path, shape);
  const std::vector<std::size_t> cube{std::size_t(lattice.n[0]), std::size_t(lattice.n[1]),
                                      std::size_t(lattice.n[2])};
  if (shape != cube && shape != std::vector<std::size_t>{lattice.size()}) {
    std::string got;
    for (std::size_t d : shape) got += (got.empty() ? "" : " x ") + std::to_string(d);
    throw UsageError("--white-noise '" + path + "' holds an array of shape (" + got +
                     "); the particle lattice is " + lattice.to_string());
  }
  for (std::size_t c = 0; c < values.size(); ++c) {
    if (!std::isfinite(double(values[c]))) {
      throw UsageError("--white-noise '" + path + "': value " + std::to_string(c) +
                       " is not finite");
    }
  }
  diffpm::mesh::RealField<T> noise(lattice);
  std::copy(values.begin(), values.end(), noise.data.begin());
  return noise;
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

  const bool loss = !o.targets.empty();
  const dc::CosmologyOptions cosmology_options = o.cosmology.options();
  const dc::Cosmology<double> cosmo(o.cosmology.params, cosmology_options);
  auto cfg = o.sim;
  cfg.threads = o.threads;
  say("diffpm-sim: " + std::to_string(cfg.particles[0]) + "^3 particles, " +
      std::to_string(cfg.mesh[0]) + "^3 mesh, box " + format_short(cfg.box[0]) + " Mpc/h, " +
      std::to_string(cfg.steps) + " steps, " + o.precision + ", " +
      std::to_string(diffpm::max_threads()) + " threads, backend " +
      diffpm::to_string(cfg.backend));
  if (o.lensing) {
    say("lightcone: " + std::to_string(o.lens.planes) + " planes, " +
        std::to_string(o.lens.map.pixels) + "^2 pixels on " + format_short(o.lens.map.fov_deg) +
        " deg, " + std::to_string(o.sources.size()) + " source(s)");
  }
  const diffpm::mesh::Grid grid(cfg.mesh, cfg.box);
  std::optional<diffpm::mesh::RealField<T>> noise;  // --white-noise, else the seed's
  if (!o.white_noise.empty()) {
    noise = read_white_noise<T>(o.white_noise, diffpm::mesh::Grid(cfg.particles, cfg.box));
    say("initial white noise read from " + o.white_noise);
  }
  diffpm::nbody::SimulationResult<T> r;  // the particles at a_end (not in loss mode)
  diffpm::mesh::RealField<T> delta;      // the overdensity at a_end on the force mesh
  std::unique_ptr<diffpm::model::ForwardModel<T>> model;
  const diffpm::model::ModelOutput<T>* model_out = nullptr;
  if (loss) {
    // A gradient run replaces whatever gradient an earlier run left here, and must not leave one
    // beside maps it did not make if it fails.
    fs::remove(fs::path(o.out) / "gradient.csv", ec);
    fs::remove(fs::path(o.out) / "noise_gradient.npy", ec);
    model =
        std::make_unique<diffpm::model::ForwardModel<T>>(model_config(o, cfg, cosmology_options));
    say("differentiable model: white noise " +
        (noise ? "of " + o.white_noise : "of seed " + std::to_string(cfg.seed)) + ", forward run");
    model_out = &model->forward(o.cosmology.params, noise ? *noise : model->white_noise(cfg.seed));
    write_lensing(o, cosmo, model_out->kappa, say);
    delta = model_out->density;
  } else if (o.lensing) {
    std::vector<diffpm::lensing::SourceDistribution> sources;
    for (const auto& src : o.sources) sources.push_back(src.distribution);
    auto lens = o.lens;
    lens.pgd = o.pgd;
    auto lr =
        noise ? diffpm::lensing::run_lensing_simulation<T>(cosmo, cfg, *noise, lens, sources, say)
              : diffpm::lensing::run_lensing_simulation<T>(cosmo, cfg, lens, sources, say);
    write_lensing(o, cosmo, lr.kappa, say);
    r = std::move(lr.simulation);
  } else {
    r = noise ? diffpm::nbody::run_simulation<T>(cosmo, cfg, *noise, {}, {}, say)
              : diffpm::nbody::run_simulation<T>(cosmo, cfg, {}, {}, say);
  }
  if (!loss && o.pgd) {
    say("PGD correction at a_end: alpha " + format17(o.pgd->alpha) + ", k_l " +
        format17(o.pgd->k_l) + ", k_s " + format17(o.pgd->k_s) + ", mu " + format17(o.pgd->mu));
    diffpm::mesh::ForceKernelOptions kernel = cfg.kernel;
    kernel.smoothing_scale = 0.0;
    diffpm::nbody::PgdCorrection<T> pgd(grid, kernel, 0,
                                        o.threads > 0 ? o.threads : diffpm::max_threads());
    diffpm::particles::Positions<T> y;
    pgd.apply(r.state.x, *o.pgd, cfg.a_end, y);
    r.state.x = std::move(y);
  }
  if (!loss) {
    delta = diffpm::mesh::RealField<T>(grid);
    diffpm::particles::paint_cic(r.state.x, delta);
    const T norm = T(double(grid.size()) / double(r.state.x.size()));
    for (auto& v : delta.data) v = v * norm - T(1);
  }

  say("measuring the power spectrum");
  diffpm::FftPlan<T> plan(grid, o.threads > 0 ? o.threads : diffpm::max_threads());
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
  if (loss) write_gradient(o, *model, *model_out, say);
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
