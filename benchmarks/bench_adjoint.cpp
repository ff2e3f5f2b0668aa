// Cost of the end-to-end gradient against the forward run, and peak memory, for the forward
// model (model/forward_model.hpp): white noise -> 2LPT -> fixed-point FastPM steps with a
// lightcone -> convergence maps and the final density. Not a Google Benchmark program: each
// configuration runs in its own process so that its peak resident memory (getrusage) is its own.
//
//   bench_adjoint                                   all configurations below, as a markdown table
//   bench_adjoint N STEPS float|double forward|reverse|store|checkpoint   one run
//
// A run: N^3 particles in a box of 4 Mpc/h per particle, (2N)^3 force mesh, 2LPT at a = 0.1,
// STEPS FastPM steps to a = 1, 16 lightcone planes to a source at z = 1 on a 5 deg, 256^2 pixel
// map, and the final overdensity on the force mesh. "forward" runs the model only; the others
// run it and then its gradient for L = sum kappa^2 / (2 sigma^2) + sum delta^2 / 2 with the
// adjoint mode of that name (reverse: the trajectory rebuilt backwards, memory flat in the steps;
// store: every step kept; checkpoint: every 8th step kept, segments replayed).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "diffpm/model/forward_model.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

template <class T>
int run_one(int n, int steps, const std::string& mode) {
  using namespace diffpm;
  model::ModelConfig c;
  auto& cfg = c.simulation;
  const double L = 4.0 * n;
  cfg.box = {L, L, L};
  cfg.particles = {n, n, n};
  cfg.mesh = {2 * n, 2 * n, 2 * n};
  cfg.a_start = 0.1;
  cfg.steps = steps;
  model::LensingSetup lens;
  lens.config.map = lensing::MapGeometry(256, 5.0);
  lens.config.planes = 16;
  lens.sources = {lensing::SourceDistribution::fixed(1.0)};
  c.lensing = lens;
  c.final_density = true;
  c.adjoint = mode == "store"        ? nbody::AdjointMode::store
              : mode == "checkpoint" ? nbody::AdjointMode::checkpoint
                                     : nbody::AdjointMode::reverse;
  model::ForwardModel<T> m(c);
  const auto noise = m.white_noise(42);
  const cosmology::Parameters<double> params;

  const auto t0 = clock_type::now();
  const auto& out = m.forward(params, noise);
  const double forward = since(t0);
  double backward = 0.0;
  if (mode != "forward") {
    const double sigma = 0.01;
    std::vector<lensing::Map<T>> kappa_bar = out.kappa;
    for (auto& map : kappa_bar)
      for (auto& v : map.data) v /= T(sigma * sigma);
    const mesh::RealField<T> density_bar = out.density;
    const auto t1 = clock_type::now();
    const auto g = m.gradient(kappa_bar, density_bar);
    backward = since(t1);
    if (!std::isfinite(g[cosmology::Parameter::sigma8])) return 1;
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  // One line for the parent: forward s, gradient s, peak bytes.
  std::printf("%.6f %.6f %.0f\n", forward, backward, double(ru.ru_maxrss) * 1024.0);
  return 0;
}

struct Result {
  double forward = 0, backward = 0, peak = 0;
};

Result child(const char* self, int n, int steps, const char* prec, const char* mode) {
  int fd[2];
  if (pipe(fd) != 0) std::exit(1);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    const std::string ns = std::to_string(n), ss = std::to_string(steps);
    execl("/proc/self/exe", self, ns.c_str(), ss.c_str(), prec, mode, static_cast<char*>(nullptr));
    std::perror("exec");
    _exit(1);
  }
  close(fd[1]);
  char buf[256] = {};
  ssize_t got = 0, r;
  while ((r = read(fd[0], buf + got, sizeof buf - 1 - std::size_t(got))) > 0) got += r;
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  Result res;
  if (std::sscanf(buf, "%lf %lf %lf", &res.forward, &res.backward, &res.peak) != 3) {
    std::fprintf(stderr, "bench_adjoint: child %d %d %s %s failed\n", n, steps, prec, mode);
  }
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5) {
    const int n = std::atoi(argv[1]), steps = std::atoi(argv[2]);
    return std::string(argv[3]) == "float" ? run_one<float>(n, steps, argv[4])
                                           : run_one<double>(n, steps, argv[4]);
  }
  std::printf(
      "| particles | steps | precision | forward s | gradient s | grad / fwd | (fwd + grad) / fwd "
      "| "
      "peak MB forward | peak MB gradient (reverse) | ratio | peak MB gradient (store) | ratio "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  for (int n : {64, 128})
    for (int steps : {10, 40})
      for (const char* prec : {"float", "double"}) {
        const Result f = child(argv[0], n, steps, prec, "forward");
        const Result g = child(argv[0], n, steps, prec, "reverse");
        // The stored trajectory of 128^3 particles over 40 steps takes 4 GB; measured at 64^3.
        const bool do_store = n <= 64;
        const Result s = do_store ? child(argv[0], n, steps, prec, "store") : Result{};
        char store_cols[64] = "| - | -";
        if (do_store)
          std::snprintf(store_cols, sizeof store_cols, "| %.0f | %.2f", s.peak / 1e6,
                        s.peak / f.peak);
        std::printf("| %d^3 | %d | %s | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %.2f %s |\n", n,
                    steps, prec, g.forward, g.backward, g.backward / g.forward,
                    (g.forward + g.backward) / g.forward, f.peak / 1e6, g.peak / 1e6,
                    g.peak / f.peak, store_cols);
        std::fflush(stdout);
      }
  return 0;
}
