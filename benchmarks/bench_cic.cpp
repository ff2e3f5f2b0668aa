// Cost of CIC paint (race-free, bucketed by x-plane, coloured phases) and readout for 64^3 and
// 128^3 particles on meshes B = 1 and B = 2 times finer per axis, with 1 and 2 threads, in
// particles per second. `naive_paint` is a serial unsorted deposit (no bucketing, no threads):
// the ratio paint(1 thread) / naive_paint is the price of determinism.
//
// Run: build/benchmarks/bench_cic [--benchmark_min_time=0.5]
// Arguments: (particles per side, B, threads).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "diffpm/core/openmp.hpp"
#include "diffpm/particles/cic.hpp"

namespace {

using diffpm::mesh::Grid;
using diffpm::mesh::RealField;
using diffpm::particles::Positions;

struct Setup {
  Grid grid;
  Positions<float> x;
  explicit Setup(const benchmark::State& state) {
    const int np = int(state.range(0));
    const int nm = np * int(state.range(1));
    const double box = 2.0 * np;  // 2 Mpc/h per particle: the box size does not matter here
    grid = Grid::cube(nm, box);
    // Uniform random positions: the worst case for memory locality (no spatial order).
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> u(0.0, box);
    x.resize(std::size_t(np) * np * np);
    for (auto& p : x) p = {float(u(rng)), float(u(rng)), float(u(rng))};
  }
};

void finish(benchmark::State& state, std::size_t particles) {
  state.counters["particles/s"] = benchmark::Counter(double(particles) * double(state.iterations()),
                                                     benchmark::Counter::kIsRate);
}

void BM_paint_cic(benchmark::State& state) {
  const Setup s(state);
  diffpm::set_threads(int(state.range(2)));
  RealField<float> mesh(s.grid);
  for (auto _ : state) {
    diffpm::particles::paint_cic(s.x, mesh);
    benchmark::DoNotOptimize(mesh.data.data());
  }
  finish(state, s.x.size());
}

void BM_readout_cic(benchmark::State& state) {
  const Setup s(state);
  diffpm::set_threads(int(state.range(2)));
  RealField<float> mesh(s.grid);
  diffpm::particles::paint_cic(s.x, mesh);
  std::vector<float> values;
  for (auto _ : state) {
    diffpm::particles::readout_cic(mesh, s.x, values);
    benchmark::DoNotOptimize(values.data());
  }
  finish(state, s.x.size());
}

void BM_readout_cic_adjoint(benchmark::State& state) {
  const Setup s(state);
  diffpm::set_threads(int(state.range(2)));
  RealField<float> mesh(s.grid), mesh_bar(s.grid);
  diffpm::particles::paint_cic(s.x, mesh);
  const std::vector<float> values_bar(s.x.size(), 1.0f);
  Positions<float> x_bar(s.x.size());
  for (auto _ : state) {
    diffpm::particles::readout_cic_adjoint(mesh, s.x, values_bar, mesh_bar, x_bar);
    benchmark::DoNotOptimize(mesh_bar.data.data());
  }
  finish(state, s.x.size());
}

// Serial, unsorted: the plain loop the bucketed paint replaces (not thread-safe).
void BM_naive_paint(benchmark::State& state) {
  const Setup s(state);
  RealField<float> mesh(s.grid);
  const auto g = diffpm::particles::detail::cic_geometry<float>(s.grid);
  for (auto _ : state) {
    std::fill(mesh.data.begin(), mesh.data.end(), 0.0f);
    for (const auto& p : s.x) {
      std::size_t idx[8];
      float w[8];
      diffpm::particles::detail::cic_stencil(p.data(), g, idx, w);
      for (int c = 0; c < 8; ++c) mesh.data[idx[c]] += w[c];
    }
    benchmark::DoNotOptimize(mesh.data.data());
  }
  finish(state, s.x.size());
}

void arguments(benchmark::internal::Benchmark* b) {
  for (int np : {64, 128})
    for (int B : {1, 2})
      for (int threads : {1, 2}) b->Args({np, B, threads});
  b->ArgNames({"np", "B", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

void serial_arguments(benchmark::internal::Benchmark* b) {
  for (int np : {64, 128})
    for (int B : {1, 2}) b->Args({np, B, 1});
  b->ArgNames({"np", "B", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_paint_cic)->Apply(arguments);
BENCHMARK(BM_naive_paint)->Apply(serial_arguments);
BENCHMARK(BM_readout_cic)->Apply(arguments);
BENCHMARK(BM_readout_cic_adjoint)->Apply(arguments);
