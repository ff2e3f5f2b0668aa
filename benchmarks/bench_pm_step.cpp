// Cost of one PM step, split into its parts, against the FFT floor, and peak memory per
// particle. Not a Google Benchmark program: each configuration runs in its own process so that
// its peak resident memory (getrusage) is its own.
//
//   bench_pm_step                      all configurations below, as a markdown table
//   bench_pm_step N B float|double     one: N^3 particles, (B N)^3 mesh
//
// A step is FastPM's kick-drift-kick with one force evaluation (nbody/integrator.hpp): paint,
// one r2c FFT, the potential kernel, one c2r FFT, three real-space differences and readouts
// (pm_force.hpp, default 4-point gradient), two kicks and a drift. The reference "FFT time" is
// one r2c plus one c2r transform of the same mesh timed in the same process, the transforms a
// force cannot do without; step / FFT is the overhead factor (aim: <= 1.3). Peak memory is read
// before the FFT floor's own fields are allocated.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "diffpm/nbody/simulation.hpp"
#include "step_particles.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

template <class T>
int run_one(int n, int B) {
  using namespace diffpm;
  const cosmology::Cosmology<double> cosmo(cosmology::Parameters<double>{});
  const nbody::SimulationConfig cfg = bench::step_config(n, B);
  auto r = nbody::run_simulation<T>(cosmo, cfg);  // 2LPT initial conditions, one warm-up step
  const mesh::Grid grid(cfg.mesh, cfg.box);
  nbody::PmForce<T> force(grid, {}, r.state.x.size());
  const double Om = cosmo.parameters().Omega_m();
  const nbody::FastPmFactors<double> f(cosmo);
  particles::Positions<T> F;
  force(r.state.x, Om, F);
  force.timings = {};

  const int steps = n >= 256 ? 2 : n >= 128 ? 4 : 10;
  double kick = 0, drift = 0;
  using nbody::axpy;
  const auto t_all = clock_type::now();
  double a = 0.51;
  for (int s = 0; s < steps; ++s, a += 0.01) {
    const double a1 = a + 0.01, ah = std::sqrt(a * a1);
    auto t0 = clock_type::now();
    axpy(r.state.p, f.kick(a, ah, a), F);
    kick += since(t0);
    t0 = clock_type::now();
    axpy(r.state.x, f.drift(a, a1, ah), r.state.p);
    drift += since(t0);
    force(r.state.x, Om, F);
    t0 = clock_type::now();
    axpy(r.state.p, f.kick(ah, a1, a1), F);
    kick += since(t0);
  }
  const double step = since(t_all) / steps;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double peak_bytes = double(ru.ru_maxrss) * 1024.0;

  // The FFT floor: one r2c and one c2r of the same mesh, same plan type and threads.
  FftPlan<T> plan(grid);
  mesh::RealField<T> real(grid);
  mesh::ComplexField<T> cplx(grid);
  particles::paint_cic(r.state.x, real);  // the same kind of data as in the force
  double fft = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = clock_type::now();
    plan.forward(real, cplx);
    plan.inverse_destroying_input(cplx, real);
    fft = std::min(fft, since(t0));
  }
  const double np = double(r.state.x.size());
  const auto& t = force.timings;
  std::printf(
      "| %d^3 | %d | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.0f |\n",
      n, B, sizeof(T) == 4 ? "float" : "double", 1e3 * step, 1e3 * t.paint / steps,
      1e3 * t.fft / steps, 1e3 * t.kernels / steps, 1e3 * t.readout / steps,
      1e3 * (kick + drift) / steps, 1e3 * fft, 1e9 * step / np, step / fft, peak_bytes / np);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4) {
    const int n = std::atoi(argv[1]), B = std::atoi(argv[2]);
    return std::string(argv[3]) == "float" ? run_one<float>(n, B) : run_one<double>(n, B);
  }
  std::printf(
      "| particles | B | precision | step ms | paint | FFTs | kernels | readout | kick+drift | "
      "r2c+c2r ms | ns/particle | step/FFT | peak bytes/particle |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  for (int n : {64, 128, 256})
    for (int B : {1, 2})
      for (const char* prec : {"float", "double"}) {
        const pid_t pid = fork();
        if (pid == 0) {
          const std::string ns = std::to_string(n), Bs = std::to_string(B);
          execl("/proc/self/exe", argv[0], ns.c_str(), Bs.c_str(), prec,
                static_cast<char*>(nullptr));
          std::perror("exec");
          _exit(1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        std::fflush(stdout);
      }
  return 0;
}
