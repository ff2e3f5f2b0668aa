// The device backend's benchmark table: PM steps, whole runs and gradient passes of the
// fixed-point integrator with PmForce<float, Cuda>, at 128^3-512^3 particles and force meshes of
// B = 1 and 2 cells per particle per side, with the FFT floor and the peak device memory.
//
// Built as CUDA in a cuda build (run by benchmarks/gpu/run.sh on a GPU) and as C++ for Thrust's
// OpenMP system in an omp build (the same code on the host: a smoke test, not a GPU timing).
//
//   bench_device [--sizes 128,256,512] [--ratios 1,2] [--steps 10,63] [--no-gradient]
//
// Every time is the wall-clock time of the device work, synchronised before and after. The
// initial conditions (2LPT at a = 0.1 on the CPU) are not timed. Columns:
//   fft     r2c + c2r of the force mesh (the floor of a PM step)
//   force   one PmForce evaluation (paint, r2c, kernel, c2r, 3 stencils, 3 readouts)
//   step    a 10-step run from a = 0.1 to 1 divided by 10 (kicks, drift, force)
//   run10, run63   whole runs of 10 and 63 steps from a = 0.1 to 1
//   grad    the reverse-mode gradient pass of the longest run (rebuilds the trajectory and
//           differentiates it), and grad / run its ratio to the forward run
//   peak    the most device memory diffpm held during the forward run and the gradient pass
//           (cuFFT's work area, about one more mesh, comes on top)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "diffpm/backend/device/fft.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/nbody/pm_force_device.hpp"
#include "diffpm/nbody/reversible_device.hpp"
#include "diffpm/nbody/simulation.hpp"
#include "diffpm/nbody/time_steps.hpp"

using namespace diffpm;
namespace nb = diffpm::nbody;

namespace {

using Clock = std::chrono::steady_clock;

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoi(item));
  return out;
}

template <class F>
double seconds(F&& f) {
  device::synchronize();
  const auto t0 = Clock::now();
  f();
  device::synchronize();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

template <class F>
double median_seconds(int repeats, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) t.push_back(seconds(f));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// Sets every component of a device Vec3View to 1.
struct FillOnes {
  particles::Vec3View<float> v;
  DIFFPM_HOST_DEVICE void operator()(std::size_t i) const {
    for (int d = 0; d < 3; ++d) v(i, d) = 1.0f;
  }
};

double gib(std::size_t bytes) { return double(bytes) / (1024.0 * 1024.0 * 1024.0); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {128, 256, 512}, ratios = {1, 2}, steps = {10, 63};
  bool gradient = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--sizes") {
      sizes = parse_list(value());
    } else if (a == "--ratios") {
      ratios = parse_list(value());
    } else if (a == "--steps") {
      steps = parse_list(value());
    } else if (a == "--no-gradient") {
      gradient = false;
    } else {
      std::fprintf(stderr, "bench_device: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  try {
    device::require_device("bench_device");
    const cosmology::Cosmology<double> cosmo{cosmology::Parameters<double>{}};
    const double Om = cosmo.parameters().Omega_m();
    const int longest = *std::max_element(steps.begin(), steps.end());
    std::printf("device system: %s\n\n", device::system_name());
    std::printf("| particles | mesh | fft (s) | force (s) | step (s) | step/fft |");
    for (int s : steps) std::printf(" run%d (s) |", s);
    if (gradient) std::printf(" grad%d (s) | grad/run |", longest);
    std::printf(" peak fwd (GiB) |%s\n", gradient ? " peak grad (GiB) |" : "");
    std::printf("|---|---|---|---|---|---|");
    for (std::size_t s = 0; s < steps.size(); ++s) std::printf("---|");
    if (gradient) std::printf("---|---|");
    std::printf("---|%s\n", gradient ? "---|" : "");
    std::fflush(stdout);

    for (const int n : sizes) {
      // Initial conditions once per particle count (CPU, untimed): 2LPT at a = 0.1, 2 Mpc/h
      // spacing.
      nb::SimulationConfig cfg;
      cfg.box = {2.0 * n, 2.0 * n, 2.0 * n};
      cfg.particles = {n, n, n};
      cfg.mesh = {n, n, n};
      cfg.steps = 0;
      cfg.a_end = 0.1;
      cfg.seed = 1;
      const auto ics =
          nb::FixedPointState::from(nb::run_simulation<float>(cosmo, cfg).state, cfg.box);
      const std::size_t np = ics.x.size();
      for (const int B : ratios) {
        const mesh::Grid grid({B * n, B * n, B * n}, cfg.box);
        const double fft = [&] {
          device::Buffer<float> real(grid.size());
          device::Buffer<std::complex<float>> k(grid.complex_size());
          real.zero();
          FftPlan<float, Cuda> plan(grid);
          return median_seconds(5, [&] {
            plan.forward(mesh::packed(static_cast<const float*>(real.data()), grid),
                         mesh::packed(k.data(), grid));
            plan.inverse_destroying_input(mesh::packed(k.data(), grid),
                                          mesh::packed(real.data(), grid));
          });
        }();

        nb::PmForce<float, Cuda> pm(grid, {}, np);
        auto force = [&](particles::Vec3View<const float> x, particles::Vec3View<float> F) {
          pm(x, Om, F);
        };
        auto fa = [&](particles::Vec3View<const float> x, particles::Vec3View<const float> F_bar,
                      particles::Vec3View<float> F, particles::Vec3View<float> x_bar) {
          return pm.value_and_adjoint(x, Om, F_bar, F, x_bar);
        };
        double t_force = 0.0;
        {
          auto st = nb::DeviceFixedPointState::upload(ics);
          nb::device_detail::Triples<float> x(np), F(np);
          st.positions(x.view());
          force(x.view(), F.view());  // warm-up (cuFFT plans, pools)
          t_force = median_seconds(5, [&] { force(x.view(), F.view()); });
        }

        std::vector<double> t_run;
        double peak_fwd = 0.0;
        for (const int s : steps) {
          auto st = nb::DeviceFixedPointState::upload(ics);
          const auto a = nb::time_steps(0.1, 1.0, s);
          device::reset_peak_bytes();
          t_run.push_back(
              seconds([&] { nb::integrate_fixed_point<float>(Cuda{}, cosmo, a, st, force); }));
          peak_fwd = std::max(peak_fwd, gib(device::peak_allocated_bytes()));
        }
        double t_grad = 0.0, peak_grad = 0.0;
        if (gradient) {
          auto st = nb::DeviceFixedPointState::upload(ics);
          const auto a = nb::time_steps(0.1, 1.0, longest);
          nb::DeviceFixedPointRecord record;
          nb::integrate_fixed_point<float>(Cuda{}, cosmo, a, st, force, {}, {}, &record);
          nb::device_detail::Triples<float> xb(np), pb(np);
          xb.data.zero();
          pb.data.zero();
          // dL/dx = 1 for every coordinate (any cotangent costs the same).
          backend::for_each_index(Cuda{}, np, FillOnes{xb.view()});
          device::reset_peak_bytes();
          t_grad = seconds([&] {
            nb::integrate_fixed_point_adjoint<float>(Cuda{}, cosmo, a, st, force, fa, xb.view(),
                                                     pb.view(), {}, &record);
          });
          peak_grad = gib(device::peak_allocated_bytes());
        }
        const double step = t_run.front() / steps.front();
        std::printf("| %d^3 | %d^3 | %.4f | %.4f | %.4f | %.2f |", n, B * n, fft, t_force, step,
                    step / fft);
        for (double t : t_run) std::printf(" %.3f |", t);
        if (gradient) std::printf(" %.3f | %.2f |", t_grad, t_grad / t_run.back());
        std::printf(" %.2f |", peak_fwd);
        if (gradient) std::printf(" %.2f |", peak_grad);
        std::printf("\n");
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_device: %s\n", e.what());
    return 1;
  }
  return 0;
}
