// diffpm-infer: field-level inference of Omega_c and sigma8 from a mock convergence map with
// shape noise, by Hamiltonian Monte Carlo over the cosmological parameters and the whole initial
// white-noise field, with the gradients of model/forward_model.hpp.
//
//   diffpm-infer [--particles N] [--box L] [--mesh M] [--steps S] [--a-start A0]
//                [--fov DEG] [--pixels P] [--planes K] [--z-source Z]
//                [--sigma-e E] [--n-gal G] [--truth-seed S] [--shape-noise-seed S]
//                [--chain-seed S] [--samples N] [--warmup W] [--leapfrog L]
//                [--start-omega-c X] [--start-sigma8 X] [--chain FILE] [--threads T]
//                [--backend cpu|cuda]
//
// The mock: the forward model at the truth (Planck 2018: Omega_c = 0.26067, sigma8 = 0.8102;
// the other parameters fixed there) on the white noise of --truth-seed, plus Gaussian shape
// noise of rms sigma_e / sqrt(n_gal A_pix) per pixel. The posterior over q = (Omega_c, sigma8,
// w), w the white noise on the particle lattice (N^3 numbers), is
//   -log p = sum_pixels (kappa(Omega_c, sigma8, w) - data)^2 / (2 sigma_pix^2) + |w|^2 / 2
// with a flat prior on Omega_c in [0.05, 0.6] and sigma8 in [0.3, 1.5]. HMC (Neal 2011,
// "MCMC using Hamiltonian dynamics") samples it: each trajectory is `--leapfrog` leapfrog steps,
// each step one forward run and one gradient; the step size is tuned during the warm-up by
// dual averaging (Hoffman & Gelman 2014, JMLR 15, 1593, sec. 3.2) towards 70% acceptance, and
// the mass is the Gauss-Newton approximation of the posterior's precision, taken after a short
// descent towards the posterior's bulk. The sampler, the step-size adaptation and the mass are
// the library's (include/diffpm/inference/); this program builds the posterior and the mock.
//
// Prints CSV on stdout: `parameter,truth,mean,std,pull` for Omega_c and sigma8 (posterior mean
// and standard deviation over the samples after the warm-up, pull = (mean - truth) / std),
// then `acceptance,<rate>` and `step_size,<eps>`. Progress goes to stderr. Errors print one line
// "diffpm-infer: error: ..." and exit with status 2.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "diffpm/inference/dual_averaging.hpp"
#include "diffpm/inference/gauss_newton_mass.hpp"
#include "diffpm/inference/hmc.hpp"
#include "diffpm/io/atomic_file.hpp"
#include "diffpm/lensing/shape_noise.hpp"
#include "diffpm/model/forward_model.hpp"

namespace {

using namespace diffpm::cli;
namespace dc = diffpm::cosmology;
namespace dl = diffpm::lensing;
namespace inf = diffpm::inference;

constexpr const char* kProgram = "diffpm-infer";
/// The flat prior's box.
constexpr double kOmegaCPrior[2] = {0.05, 0.6}, kSigma8Prior[2] = {0.3, 1.5};

struct Options {
  int particles = 16, mesh = 0, steps = 8, pixels = 32, planes = 12;
  double box = 128.0, a_start = 0.1, fov = 4.0, z_source = 1.0;
  double sigma_e = 0.26, n_gal = 30.0;
  std::uint64_t truth_seed = 1, shape_noise_seed = 2, chain_seed = 3;
  int samples = 400, warmup = 150, leapfrog = 20, optimize = 50, probes = 16;
  double start_omega_c = 0.30, start_sigma8 = 0.70;
  std::string chain;
  int threads = 0;
  diffpm::BackendKind backend = diffpm::BackendKind::cpu;
  bool help = false;
};

void print_help() {
  const Options d;
  std::printf(
      "usage: diffpm-infer [flags]\n"
      "\n"
      "Field-level inference of Omega_c and sigma8 from a mock convergence map with shape\n"
      "noise: HMC over (Omega_c, sigma8, initial white noise), gradients from diffpm's adjoint.\n"
      "Prints CSV on stdout: parameter,truth,mean,std,pull (one row each for Omega_c and\n"
      "sigma8), then acceptance,<rate> and step_size,<eps>.\n"
      "\n"
      "Model:\n"
      "  --particles N      N^3 particles [%d]\n"
      "  --box L            periodic box side in Mpc/h [%s]\n"
      "  --mesh M           M^3 force mesh; 0: 2N [0]\n"
      "  --steps S          FastPM steps from a-start to 1 [%d]\n"
      "  --a-start A0       initial scale factor [%s]\n"
      "  --fov DEG          map side in degrees [%s]\n"
      "  --pixels P         P x P pixels [%d]\n"
      "  --planes K         lightcone planes [%d]\n"
      "  --z-source Z       source redshift [%s]\n"
      "Data:\n"
      "  --sigma-e E        shape noise per component [%s]\n"
      "  --n-gal G          galaxies per arcmin^2 [%s]\n"
      "  --truth-seed S     white noise of the mock [%llu]\n"
      "  --shape-noise-seed S  shape noise of the mock [%llu]\n"
      "Sampler:\n"
      "  --chain-seed S     HMC momenta, start field and accept draws [%llu]\n"
      "  --samples N        samples kept after the warm-up [%d]\n"
      "  --warmup W         warm-up trajectories (step size and mass tuning) [%d]\n"
      "  --leapfrog L       leapfrog steps per trajectory [%d]\n"
      "  --optimize N       descent steps towards the posterior's bulk before HMC [%d]\n"
      "  --probes N         gradients that estimate the field's Fisher information [%d]\n"
      "  --start-omega-c X  starting Omega_c [%s]\n"
      "  --start-sigma8 X   starting sigma8 [%s]\n"
      "  --chain FILE       write every trajectory's end point as CSV\n"
      "  --threads T        OpenMP and FFTW threads [all]\n"
      "  --backend B        cpu, or cuda: the PM steps, the lightcone and their gradient on\n"
      "                     the device backend (the GPU in a cuda build, the same code on the\n"
      "                     host in an omp build) [cpu]\n"
      "  -h, --help         print this help and exit\n",
      d.particles, format_short(d.box).c_str(), d.steps, format_short(d.a_start).c_str(),
      format_short(d.fov).c_str(), d.pixels, d.planes, format_short(d.z_source).c_str(),
      format_short(d.sigma_e).c_str(), format_short(d.n_gal).c_str(),
      static_cast<unsigned long long>(d.truth_seed),
      static_cast<unsigned long long>(d.shape_noise_seed),
      static_cast<unsigned long long>(d.chain_seed), d.samples, d.warmup, d.leapfrog, d.optimize,
      d.probes, format_short(d.start_omega_c).c_str(), format_short(d.start_sigma8).c_str());
}

int parse_int(const std::string& flag, const std::string& text, int lo, int hi) {
  const double v = parse_number(flag, text);
  if (v != std::floor(v) || v < lo || v > hi) {
    throw UsageError(flag + " '" + text + "' must be an integer in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "]");
  }
  return static_cast<int>(v);
}

double parse_positive(const std::string& flag, const std::string& text) {
  const double v = parse_number(flag, text);
  if (!(v > 0.0)) throw UsageError(flag + " '" + text + "' must be > 0");
  return v;
}

Options parse_arguments(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      o.help = true;
      return o;
    }
    if (i + 1 >= argc) throw UsageError(flag + " needs a value (see --help)");
    const std::string v = argv[++i];
    if (flag == "--particles") {
      o.particles = parse_int(flag, v, 2, 1024);
    } else if (flag == "--mesh") {
      o.mesh = parse_int(flag, v, 0, 4096);
    } else if (flag == "--steps") {
      o.steps = parse_int(flag, v, 1, 10000);
    } else if (flag == "--pixels") {
      o.pixels = parse_int(flag, v, 2, 1 << 14);
    } else if (flag == "--planes") {
      o.planes = parse_int(flag, v, 1, 100000);
    } else if (flag == "--box") {
      o.box = parse_positive(flag, v);
    } else if (flag == "--a-start") {
      o.a_start = parse_positive(flag, v);
    } else if (flag == "--fov") {
      o.fov = parse_positive(flag, v);
    } else if (flag == "--z-source") {
      o.z_source = parse_positive(flag, v);
    } else if (flag == "--sigma-e") {
      o.sigma_e = parse_positive(flag, v);
    } else if (flag == "--n-gal") {
      o.n_gal = parse_positive(flag, v);
    } else if (flag == "--truth-seed" || flag == "--shape-noise-seed" || flag == "--chain-seed") {
      const double s = parse_number(flag, v);
      if (s != std::floor(s) || s < 0 || s > 9007199254740992.0)
        throw UsageError(flag + " '" + v + "' must be an integer in [0, 2^53]");
      (flag == "--truth-seed"         ? o.truth_seed
       : flag == "--shape-noise-seed" ? o.shape_noise_seed
                                      : o.chain_seed) = static_cast<std::uint64_t>(s);
    } else if (flag == "--samples") {
      o.samples = parse_int(flag, v, 2, 10000000);
    } else if (flag == "--warmup") {
      o.warmup = parse_int(flag, v, 8, 10000000);
    } else if (flag == "--probes") {
      o.probes = parse_int(flag, v, 1, 100000);
    } else if (flag == "--optimize") {
      o.optimize = parse_int(flag, v, 0, 100000);
    } else if (flag == "--leapfrog") {
      o.leapfrog = parse_int(flag, v, 1, 10000);
    } else if (flag == "--start-omega-c") {
      o.start_omega_c = parse_positive(flag, v);
    } else if (flag == "--start-sigma8") {
      o.start_sigma8 = parse_positive(flag, v);
    } else if (flag == "--chain") {
      o.chain = v;
    } else if (flag == "--threads") {
      o.threads = parse_int(flag, v, 1, 4096);
    } else if (flag == "--backend") {
      if (v != "cpu" && v != "cuda") throw UsageError("--backend '" + v + "' must be cpu or cuda");
      o.backend = diffpm::parse_backend(v);
      if (o.backend == diffpm::BackendKind::cuda && !diffpm::device_backend_compiled()) {
        throw UsageError(
            "--backend cuda: this diffpm-infer was built without the device backend "
            "(configure with -DDIFFPM_DEVICE=cuda, or omp to run the device code on the host)");
      }
    } else {
      throw UsageError("unknown flag '" + flag + "' (see --help)");
    }
  }
  // A start outside the prior's box has zero posterior density.
  if (!(o.start_omega_c > kOmegaCPrior[0] && o.start_omega_c < kOmegaCPrior[1]))
    throw UsageError("--start-omega-c " + format_short(o.start_omega_c) +
                     " lies outside the prior (0.05, 0.6)");
  if (!(o.start_sigma8 > kSigma8Prior[0] && o.start_sigma8 < kSigma8Prior[1]))
    throw UsageError("--start-sigma8 " + format_short(o.start_sigma8) +
                     " lies outside the prior (0.3, 1.5)");
  return o;
}

/// -log posterior and its gradient in sampler coordinates q = (u_c, u_s, w): Omega_c =
/// ref_c + scale u_c, sigma8 = ref_s + scale u_s (u of order 1 over the posterior), w the white
/// noise.
class Posterior {
 public:
  static constexpr double scale = 0.05;

  Posterior(const diffpm::model::ModelConfig& cfg, std::vector<dl::Map<double>> data,
            double sigma_pix, double ref_c, double ref_s)
      : model_(cfg), data_(std::move(data)), sigma_(sigma_pix), ref_{ref_c, ref_s} {}

  std::size_t dimension() const { return 2 + model_.noise_grid().size(); }
  double omega_c(const std::vector<double>& q) const { return ref_[0] + scale * q[0]; }
  double sigma8(const std::vector<double>& q) const { return ref_[1] + scale * q[1]; }
  /// The cosmology at u = (u_c, u_s) (the other parameters at their defaults).
  dc::Parameters<double> parameters(const std::array<double, 2>& u) const {
    dc::Parameters<double> p;
    p.Omega_c = ref_[0] + scale * u[0];
    p.sigma8 = ref_[1] + scale * u[1];
    return p;
  }
  diffpm::model::ForwardModel<double>& model() { return model_; }
  /// How many points the model refused (see evaluate).
  int refused() const { return refused_; }

  /// U(q) = -log p(q) up to a constant, with grad = dU/dq; +infinity outside the prior.
  double evaluate(const std::vector<double>& q, std::vector<double>& grad) {
    const double oc = omega_c(q), s8 = sigma8(q);
    grad.assign(q.size(), 0.0);
    if (!(oc > kOmegaCPrior[0] && oc < kOmegaCPrior[1] && s8 > kSigma8Prior[0] &&
          s8 < kSigma8Prior[1])) {
      return std::numeric_limits<double>::infinity();
    }
    dc::Parameters<double> p;
    p.Omega_c = oc;
    p.sigma8 = s8;
    diffpm::mesh::RealField<double> w(model_.noise_grid());
    std::copy(q.begin() + 2, q.end(), w.data.begin());
    // A trial point so far off that particles move more than a quarter box in one drift (the
    // fixed-point integrator refuses it) is outside the physical region: infinite U, and the
    // descent or HMC step that proposed it is rejected.
    const diffpm::model::ModelOutput<double>* outp = nullptr;
    try {
      outp = &model_.forward(p, w);
    } catch (const diffpm::InvalidArgument&) {
      ++refused_;
      return std::numeric_limits<double>::infinity();
    }
    const auto& out = *outp;
    double u = 0.0;
    std::vector<dl::Map<double>> bar = data_;
    for (std::size_t s = 0; s < data_.size(); ++s)
      for (std::size_t i = 0; i < data_[s].data.size(); ++i) {
        const double r = (out.kappa[s].data[i] - data_[s].data[i]) / sigma_;
        u += 0.5 * r * r;
        bar[s].data[i] = r / sigma_;
      }
    for (double x : w.data) u += 0.5 * x * x;
    const auto g = model_.gradient(bar);
    grad[0] = scale * g[dc::Parameter::Omega_c];
    grad[1] = scale * g[dc::Parameter::sigma8];
    for (std::size_t i = 0; i < w.data.size(); ++i) grad[2 + i] = g.noise.data[i] + w.data[i];
    return u;
  }

 private:
  diffpm::model::ForwardModel<double> model_;
  std::vector<dl::Map<double>> data_;
  double sigma_;
  std::array<double, 2> ref_;
  int refused_ = 0;
};

/// The Gauss-Newton mass of inference/gauss_newton_mass.hpp at q, for the convergence map of
/// the first source: n_probes gradients for the field, four forward runs for dkappa/du (u steps
/// of 0.01, the parameters moved by 5e-4), two gradients for the coupling.
void estimate_mass(Posterior& post, const std::vector<double>& q, const dl::MapGeometry& map,
                   double sigma, int n_probes, std::mt19937_64& rng, inf::GaussNewtonMass& mass) {
  auto& model = post.model();
  auto field = [&](const std::vector<double>& w) {
    diffpm::mesh::RealField<double> f(model.noise_grid());
    std::copy(w.begin(), w.end(), f.data.begin());
    return f;
  };
  inf::GaussNewtonModel gn;
  gn.predict = [&](const std::array<double, 2>& u, const std::vector<double>& w) {
    return model.forward(post.parameters(u), field(w)).kappa[0].data;
  };
  gn.pullback = [&](const std::array<double, 2>& u, const std::vector<double>& w,
                    const std::vector<double>& y) {
    model.forward(post.parameters(u), field(w));
    std::vector<dl::Map<double>> bar(1, dl::Map<double>(map));
    std::copy(y.begin(), y.end(), bar[0].data.begin());
    const auto g = model.gradient(bar).noise;
    return std::vector<double>(g.data.begin(), g.data.end());
  };
  inf::estimate_gauss_newton_mass(mass, gn, q, sigma, n_probes, 0.01, rng);
}

int run(const Options& o) {
  if (o.threads > 0) diffpm::set_threads(o.threads);
  diffpm::model::ModelConfig cfg;
  auto& sim = cfg.simulation;
  sim.box = {o.box, o.box, o.box};
  sim.particles = {o.particles, o.particles, o.particles};
  const int mesh = o.mesh > 0 ? o.mesh : 2 * o.particles;
  sim.mesh = {mesh, mesh, mesh};
  sim.steps = o.steps;
  sim.a_start = o.a_start;
  sim.a_end = 1.0;
  sim.threads = o.threads;
  sim.backend = o.backend;
  diffpm::model::LensingSetup lens;
  lens.config.map = dl::MapGeometry(o.pixels, o.fov);
  lens.config.planes = o.planes;
  lens.sources = {dl::SourceDistribution::fixed(o.z_source)};
  cfg.lensing = lens;
  cfg.validate();
  auto say = [](const std::string& s) { std::fprintf(stderr, "diffpm-infer: %s\n", s.c_str()); };

  // The mock: truth, its white noise, shape noise.
  const dc::Parameters<double> truth;
  std::vector<dl::Map<double>> data;
  {
    diffpm::model::ForwardModel<double> m(cfg);
    data = m.forward(truth, m.white_noise(o.truth_seed)).kappa;
  }
  const double sigma_pix = dl::shape_noise_sigma_pixel(lens.config.map, o.sigma_e, o.n_gal);
  dl::add_shape_noise(data[0], o.sigma_e, o.n_gal, o.shape_noise_seed);
  double kappa_rms = 0.0;
  for (double v : data[0].data) kappa_rms += v * v;
  kappa_rms = std::sqrt(kappa_rms / double(data[0].data.size()));
  say("mock map: rms " + format_short(kappa_rms) + " with shape noise " + format_short(sigma_pix) +
      " per pixel");

  Posterior post(cfg, data, sigma_pix, o.start_omega_c, o.start_sigma8);
  const std::size_t dim = post.dimension();
  std::mt19937_64 rng(o.chain_seed);
  std::normal_distribution<double> normal;

  // Start: the given parameters and a draw of the white noise from its prior.
  std::vector<double> q(dim, 0.0), grad;
  for (std::size_t i = 2; i < dim; ++i) q[i] = normal(rng);
  double U = post.evaluate(q, grad);
  if (!std::isfinite(U)) throw UsageError("the starting point lies outside the prior");

  inf::GaussNewtonMass mass(post.model().noise_grid(),
                            o.threads > 0 ? o.threads : diffpm::max_threads());
  estimate_mass(post, q, lens.config.map, sigma_pix, o.probes, rng, mass);

  // Start near the posterior's bulk: the white noise drawn at random fits nothing, and HMC (or a
  // joint descent) from there first shrinks the amplitude (sigma8, Omega_c) towards a map of
  // zeros, where it is slow to recover. So first descend U along M^-1 grad U (a Gauss-Newton
  // step), halving the step until U decreases: the first half of the steps with the parameters
  // held (the field learns the map), then jointly; then take the mass again where it ends.
  {
    std::vector<double> dir(dim), trial(dim), g_trial;
    double alpha = 1.0;
    int done = 0;
    for (; done < o.optimize; ++done) {
      mass.velocity(grad, dir);
      if (done < o.optimize / 2) dir[0] = dir[1] = 0.0;
      bool moved = false;
      for (int half = 0; half < 30 && !moved; ++half) {
        for (std::size_t i = 0; i < dim; ++i) trial[i] = q[i] - alpha * dir[i];
        const double U_trial = post.evaluate(trial, g_trial);
        if (U_trial < U) {
          q.swap(trial);
          grad.swap(g_trial);
          U = U_trial;
          moved = true;
        } else {
          alpha *= 0.5;
        }
      }
      if (!moved) break;
      alpha = std::min(1.0, alpha * 2.0);
    }
    say("after " + std::to_string(done) +
        " descent steps: Omega_c = " + format_short(post.omega_c(q)) +
        ", sigma8 = " + format_short(post.sigma8(q)) + ", -log p = " + format_short(U));
    estimate_mass(post, q, lens.config.map, sigma_pix, o.probes, rng, mass);
    say("mass: largest field mode " + format_short(mass.largest_field_mass()) +
        ", coupling scale " + format_short(mass.coupling_scale()) +
        ", marginal scales of Omega_c and sigma8 " +
        format_short(Posterior::scale * mass.parameter_scale(0)) + ", " +
        format_short(Posterior::scale * mass.parameter_scale(1)));
  }

  // HMC (inference/hmc.hpp) from where the descent ended, with that mass. The step is jittered
  // by +-10% per trajectory (keeps trajectories from resonating with a fixed period) and tuned
  // during the warm-up by dual averaging towards 70% acceptance, then fixed.
  const inf::Potential potential = [&post](const std::vector<double>& x, std::vector<double>& g) {
    return post.evaluate(x, g);
  };
  inf::Point point{std::move(q), std::move(grad), U};
  inf::HmcSettings hmc;
  hmc.step_size = 0.2;
  hmc.leapfrog_steps = o.leapfrog;
  hmc.jitter = 0.1;
  inf::DualAveraging da(hmc.step_size, 0.7);
  const int total = o.warmup + o.samples;
  std::vector<std::array<double, 2>> kept;
  int accepted_after_warmup = 0;
  std::vector<std::string> chain_rows;

  for (int it = 0; it < total; ++it) {
    const inf::StepResult res = inf::step(potential, mass, point, hmc, rng);
    const std::array<double, 2> theta = {post.omega_c(point.q), post.sigma8(point.q)};
    if (it < o.warmup) {
      hmc.step_size = da.update(res.acceptance_probability);
      if (it + 1 == o.warmup) hmc.step_size = da.final_step_size();
    } else {
      kept.push_back(theta);
      accepted_after_warmup += res.accepted ? 1 : 0;
    }
    if (!o.chain.empty()) {
      chain_rows.push_back(std::to_string(it) + "," + format17(theta[0]) + "," +
                           format17(theta[1]) + "," + format17(point.potential) + "," +
                           (res.accepted ? "1" : "0") + "," + format17(res.step_size));
    }
    if ((it + 1) % std::max(1, total / 10) == 0) {
      say("trajectory " + std::to_string(it + 1) + "/" + std::to_string(total) + ": Omega_c = " +
          format_short(theta[0]) + ", sigma8 = " + format_short(theta[1]) + ", step " +
          format_short(res.step_size) + ", acceptance " + format_short(res.acceptance_probability));
    }
  }

  if (!o.chain.empty()) {
    diffpm::io::write_atomically(o.chain, [&](std::ofstream& out) {
      out << "trajectory,Omega_c,sigma8,U,accepted,step\n";
      for (const auto& row : chain_rows) out << row << '\n';
    });
  }
  std::printf("parameter,truth,mean,std,pull\n");
  const char* names[2] = {"Omega_c", "sigma8"};
  const double truths[2] = {truth.Omega_c, truth.sigma8};
  for (int k = 0; k < 2; ++k) {
    double mean = 0.0, var = 0.0;
    for (const auto& s : kept) mean += s[k];
    mean /= double(kept.size());
    for (const auto& s : kept) var += (s[k] - mean) * (s[k] - mean);
    const double sd = std::sqrt(var / double(kept.size() - 1));
    std::printf("%s,%s,%s,%s,%s\n", names[k], format17(truths[k]).c_str(), format17(mean).c_str(),
                format17(sd).c_str(), format17((mean - truths[k]) / sd).c_str());
  }
  std::printf("acceptance,%s\n", format17(double(accepted_after_warmup) / o.samples).c_str());
  std::printf("step_size,%s\n", format17(hmc.step_size).c_str());
  return std::fflush(stdout) == 0 ? 0 : fail(kProgram, "cannot write to stdout");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse_arguments(argc, argv);
    if (o.help) {
      print_help();
      return std::fflush(stdout) == 0 ? 0 : fail(kProgram, "cannot write to stdout");
    }
    return run(o);
  } catch (const UsageError& e) {
    return fail(kProgram, e.what());
  } catch (const std::exception& e) {
    return fail(kProgram, library_message(e));
  } catch (...) {
    return fail(kProgram, "unexpected internal error");
  }
}
