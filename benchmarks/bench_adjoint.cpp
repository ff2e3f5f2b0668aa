// Cost of the integrator's gradient against its forward run, and peak memory, for the
// fixed-point integrator (nbody/reversible.hpp). Not a Google Benchmark program: each
// configuration runs in its own process so that its peak resident memory (getrusage) is its own.
//
//   bench_adjoint                                   all configurations below, as a markdown table
//   bench_adjoint N STEPS float|double forward|reverse|store   one run
//
// A run: N^3 particles in a box of 4 Mpc/h per particle, (2N)^3 force mesh, 2LPT at a = 0.1,
// STEPS FastPM steps to a = 1. "forward" runs integrate_fixed_point only; "reverse" runs it and
// then integrate_fixed_point_adjoint rebuilding the trajectory backwards (memory flat in the
// steps); "store" records the trajectory in the forward run and reads it back (memory growing
// with the steps). The loss is L = <w, x_end> (its value does not matter for the cost).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "diffpm/nbody/reversible.hpp"
#include "diffpm/nbody/simulation.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

template <class T>
int run_one(int n, int steps, const std::string& mode) {
  using namespace diffpm;
  const cosmology::Cosmology<double> cosmo(cosmology::Parameters<double>{});
  nbody::SimulationConfig cfg;
  const double L = 4.0 * n;
  cfg.box = {L, L, L};
  cfg.particles = {n, n, n};
  cfg.mesh = {2 * n, 2 * n, 2 * n};
  cfg.steps = 0;
  cfg.a_end = 0.1;
  const auto init = nbody::run_simulation<T>(cosmo, cfg).state;
  auto state = nbody::FixedPointState::from(init, cfg.box);
  nbody::PmForce<T> pm(mesh::Grid(cfg.mesh, cfg.box), {}, init.x.size());
  const double Om = cosmo.parameters().Omega_m();
  auto force = [&](const particles::Positions<T>& x, particles::Positions<T>& F) { pm(x, Om, F); };
  auto force_and_adjoint = [&](const particles::Positions<T>& x, const particles::Positions<T>& Fb,
                               particles::Positions<T>& F, particles::Positions<T>& xb) {
    return pm.value_and_adjoint(x, Om, Fb, F, xb);
  };
  const auto a = nbody::time_steps(0.1, 1.0, steps);
  nbody::FixedPointRecord record;
  const bool store = mode == "store";
  record.mode = store ? nbody::AdjointMode::store : nbody::AdjointMode::reverse;

  const auto t0 = clock_type::now();
  nbody::integrate_fixed_point<T>(cosmo, a, state, force, {}, {}, &record);
  const double forward = since(t0);
  double backward = 0.0;
  if (mode != "forward") {
    particles::Positions<T> x_bar(init.x.size(), {T(1), T(0), T(0)}), p_bar(init.x.size());
    const auto t1 = clock_type::now();
    nbody::integrate_fixed_point_adjoint<T>(cosmo, a, state, force, force_and_adjoint, x_bar, p_bar,
                                            {}, &record);
    backward = since(t1);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  // One line for the parent: forward s, adjoint s, peak bytes.
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
      "| particles | steps | precision | forward s | adjoint s | (fwd + adj) / fwd | "
      "peak MB forward | peak MB gradient (reverse) | ratio | peak MB gradient (store) | ratio "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|\n");
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
        std::printf("| %d^3 | %d | %s | %.2f | %.2f | %.2f | %.0f | %.0f | %.2f %s |\n", n, steps,
                    prec, g.forward, g.backward, (g.forward + g.backward) / g.forward, f.peak / 1e6,
                    g.peak / 1e6, g.peak / f.peak, store_cols);
        std::fflush(stdout);
      }
  return 0;
}
