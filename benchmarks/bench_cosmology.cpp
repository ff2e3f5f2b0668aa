// Cost of building a cosmology (background, growth and sigma8-normalised P_lin tables) with and
// without the eight parameter derivatives, and of single queries. Inference rebuilds these
// tables at every step, so the build must stay well under a millisecond with derivatives.
//
// Run: build/benchmarks/bench_cosmology [--benchmark_min_time=0.5]
// Prints Google Benchmark's table, then ratios measured in the same run.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>

#include "diffpm/cosmology/cosmology.hpp"
#include "parameters.hpp"

using namespace diffpm::cosmology;

namespace {

using bench::parameters;
template <class T>
void BM_build_cosmology(benchmark::State& state) {
  const auto p = parameters<T>();
  CosmologyOptions o;
  o.transfer = static_cast<Transfer>(state.range(0));
  for (auto _ : state) {
    Cosmology<T> c(p, o);
    benchmark::DoNotOptimize(c);
  }
}

template <class T>
void BM_build_background(benchmark::State& state) {
  const auto p = parameters<T>();
  for (auto _ : state) {
    Background<T> bg(p);
    benchmark::DoNotOptimize(bg);
  }
}

template <class T>
void BM_build_growth(benchmark::State& state) {
  const Background<T> bg(parameters<T>());
  for (auto _ : state) {
    Growth<T> g(bg);
    benchmark::DoNotOptimize(g);
  }
}

template <class T>
void BM_build_linear_power(benchmark::State& state) {
  const auto p = parameters<T>();
  for (auto _ : state) {
    LinearPower<T> P(p, static_cast<Transfer>(state.range(0)));
    benchmark::DoNotOptimize(P);
  }
}

template <class T>
void BM_query(benchmark::State& state) {
  const Cosmology<T> c(parameters<T>());
  double a = 0.3;
  for (auto _ : state) {
    T chi = c.background().comoving_distance(a);
    T d = c.growth().growth_factor(a);
    T pk = c.linear_power(0.1, a);
    benchmark::DoNotOptimize(chi);
    benchmark::DoNotOptimize(d);
    benchmark::DoNotOptimize(pk);
    a = a < 0.9 ? a + 1e-3 : 0.3;
  }
}

// range(0): 0 = EH with wiggles, 1 = EH no-wiggle, 2 = BBKS.
BENCHMARK_TEMPLATE(BM_build_cosmology, double)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_build_cosmology, ParameterDual)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_build_background, double)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_build_background, ParameterDual)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_build_growth, double)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_build_growth, ParameterDual)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_build_linear_power, double)->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_build_linear_power, ParameterDual)->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_query, double)->Unit(benchmark::kNanosecond);
BENCHMARK_TEMPLATE(BM_query, ParameterDual)->Unit(benchmark::kNanosecond);

/// Console output as usual, and each benchmark's CPU time per iteration kept for the ratios.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type == Run::RT_Iteration && r.iterations > 0) {
        times[r.benchmark_name()] = r.GetAdjustedCPUTime();
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> times;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  auto t = [&](const std::string& name) {
    const auto it = reporter.times.find(name);
    return it == reporter.times.end() ? 0.0 : it->second;
  };
  auto ratio = [&](const char* what, const std::string& num, const std::string& den) {
    if (t(num) > 0 && t(den) > 0) std::printf("  %-58s %6.2f\n", what, t(num) / t(den));
  };
  std::printf("\nRatios of CPU time in this run:\n");
  ratio("cosmology build, 8 derivatives / values (EH)", "BM_build_cosmology<ParameterDual>/0",
        "BM_build_cosmology<double>/0");
  ratio("background build, 8 derivatives / values", "BM_build_background<ParameterDual>",
        "BM_build_background<double>");
  ratio("growth build, 8 derivatives / values", "BM_build_growth<ParameterDual>",
        "BM_build_growth<double>");
  ratio("P_lin (EH) build, 8 derivatives / values", "BM_build_linear_power<ParameterDual>/0",
        "BM_build_linear_power<double>/0");
  ratio("one query (chi, D1, P_lin), 8 derivatives / values", "BM_query<ParameterDual>",
        "BM_query<double>");
  const double with_derivatives = t("BM_build_cosmology<ParameterDual>/0");
  if (with_derivatives > 0) {
    std::printf("  %-58s %6.3f ms\n", "cosmology build with derivatives (EH)",
                with_derivatives * 1e-3);
  }
  return 0;
}
