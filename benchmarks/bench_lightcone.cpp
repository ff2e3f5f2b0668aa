// Cost of painting one lightcone shell (lensing/shell_painting.hpp) and of its adjoint: 128^3
// uniform random particles in a 64 Mpc/h box (the worst case for memory locality), a shell
// 144 Mpc/h thick at chi = 300 or 1000 Mpc/h, a plane covering a 3 or 10 deg map of 512^2
// pixels, random replica shifts; 1 and 2 threads. Counters: particle images painted per second
// (the images are counted once, outside the timing) and particles per second. At small chi the
// work is dominated by testing every particle in every replica along the line of sight, at
// large chi by the deposit of the images that fall on the plane.
//
// Run: build/benchmarks/bench_lightcone [--benchmark_min_time=0.5]
// Arguments: (chi in Mpc/h, field of view in deg, threads).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "diffpm/core/openmp.hpp"
#include "diffpm/lensing/shell_painting.hpp"

namespace {

namespace lensing = diffpm::lensing;

struct Setup {
  static constexpr double box = 64.0, width = 144.0;
  diffpm::particles::Positions<float> x;
  lensing::Replicas replicas = lensing::Replicas::centred({box, box, box}, true, 5);
  lensing::PlaneGrid grid;
  double chi;
  std::size_t images = 0;
  explicit Setup(const benchmark::State& state)
      : grid(lensing::PlaneGrid::covering(lensing::MapGeometry(512, double(state.range(1))), 0.1,
                                          double(state.range(0)))),
        chi(double(state.range(0))) {
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> u(0.0, box);
    x.resize(std::size_t(128) * 128 * 128);
    for (auto& p : x) p = {float(u(rng)), float(u(rng)), float(u(rng))};
    // Count the images once: the adjoint of a plane of ones visits each image exactly once.
    const auto views = lensing::detail::replicas_for(replicas, chi, width);
    const auto geometry = lensing::detail::image_geometry(replicas, grid, chi, width);
    std::size_t n = 0;
    for (const auto& p : x) {
      const double xp[3] = {p[0], p[1], p[2]};
      n += lensing::detail::particle_bound(xp, views.data(), int(views.size()), geometry,
                                           [](double) { return 0.0; })
               .images;
    }
    images = n;
  }
};

void finish(benchmark::State& state, const Setup& s) {
  const double it = double(state.iterations());
  state.counters["images/s"] =
      benchmark::Counter(double(s.images) * it, benchmark::Counter::kIsRate);
  state.counters["particles/s"] =
      benchmark::Counter(double(s.x.size()) * it, benchmark::Counter::kIsRate);
  state.counters["images"] = double(s.images);
}

void BM_paint_shell(benchmark::State& state) {
  const Setup s(state);
  const int saved = diffpm::max_threads();
  diffpm::set_threads(int(state.range(2)));
  lensing::Plane<float> plane(s.grid);
  for (auto _ : state) {
    lensing::paint_shell(s.x, s.replicas, s.chi, Setup::width, plane);
    benchmark::DoNotOptimize(plane.data.data());
  }
  diffpm::set_threads(saved);
  finish(state, s);
}

void BM_paint_shell_adjoint(benchmark::State& state) {
  const Setup s(state);
  const int saved = diffpm::max_threads();
  diffpm::set_threads(int(state.range(2)));
  lensing::Plane<float> plane_bar(s.grid);
  for (auto& v : plane_bar.data) v = 1.0f;
  diffpm::particles::Positions<float> x_bar;
  for (auto _ : state) {
    x_bar.clear();
    benchmark::DoNotOptimize(
        lensing::paint_shell_adjoint(s.x, s.replicas, s.chi, Setup::width, plane_bar, x_bar));
  }
  diffpm::set_threads(saved);
  finish(state, s);
}

void arguments(benchmark::internal::Benchmark* b) {
  for (int chi : {300, 1000})
    for (int fov : {3, 10})
      for (int threads : {1, 2}) b->Args({chi, fov, threads});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_paint_shell)->Apply(arguments);
BENCHMARK(BM_paint_shell_adjoint)->Apply(arguments);
