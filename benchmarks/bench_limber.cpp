// Cost of the Limber convergence C_ell of every pair of 10 tomographic bins (55 spectra) at 100
// ells, with halofit and with the linear spectrum, in double and with all 8 parameter
// derivatives: one limber_tomography_cl call against 55 limber_convergence_cl calls. One thread
// (set here), so that the numbers are per core.
//
// Run: build/benchmarks/bench_limber [--benchmark_min_time=0.5]
// Prints Google Benchmark's table, then the ratios measured in the same run.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "diffpm/core/openmp.hpp"
#include "diffpm/lensing/limber.hpp"
#include "diffpm/lensing/limber_tomography.hpp"
#include "parameters.hpp"

using namespace diffpm::cosmology;
using namespace diffpm::lensing;

namespace {

using bench::parameters;

/// 10 Gaussian bins, means 0.3..2.1, widths 0.05..0.23 (each its own z_max = mean + 9 sigma, up
/// to 4.17: the shared call then has 9 cut panels besides the common grid).
template <class T>
std::vector<LensingEfficiency<T>> bins(const Cosmology<T>& c) {
  std::vector<LensingEfficiency<T>> q;
  for (int i = 0; i < 10; ++i)
    q.emplace_back(c, SourceDistribution::gaussian(0.3 + 0.2 * i, 0.05 + 0.02 * i));
  return q;
}

/// 100 ells, log-spaced from 10 to 5000.
std::vector<double> ells() {
  std::vector<double> l;
  for (int i = 0; i < 100; ++i) l.push_back(10.0 * std::pow(500.0, i / 99.0));
  return l;
}

// range(0): NonlinearModel (0 = linear, 1 = halofit).
template <class T>
void BM_tomography_55(benchmark::State& state) {
  const Cosmology<T> c(parameters<T>());
  const auto q = bins(c);
  const auto l = ells();
  const auto model = static_cast<NonlinearModel>(state.range(0));
  for (auto _ : state) {
    auto all = limber_tomography_cl(c, q, l, model);
    benchmark::DoNotOptimize(all);
  }
}

template <class T>
void BM_single_pairs_55(benchmark::State& state) {
  const Cosmology<T> c(parameters<T>());
  const auto q = bins(c);
  const auto l = ells();
  const auto model = static_cast<NonlinearModel>(state.range(0));
  for (auto _ : state) {
    for (std::size_t i = 0; i < q.size(); ++i) {
      for (std::size_t j = i; j < q.size(); ++j) {
        auto cl = limber_convergence_cl(c, q[i], q[j], l, model);
        benchmark::DoNotOptimize(cl);
      }
    }
  }
}

BENCHMARK_TEMPLATE(BM_tomography_55, double)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_tomography_55, ParameterDual)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_single_pairs_55, double)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_single_pairs_55, ParameterDual)
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond);

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
  diffpm::set_threads(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  auto t = [&](const std::string& name) {
    const auto it = reporter.times.find(name);
    return it == reporter.times.end() ? 0.0 : it->second;
  };
  std::printf("\n10 bins (55 spectra) x 100 ells, one thread, CPU time in this run:\n");
  for (const char* type : {"double", "ParameterDual"}) {
    for (const char* model : {"1", "0"}) {
      const std::string suffix = std::string("<") + type + ">/" + model;
      const double shared = t("BM_tomography_55" + suffix);
      const double single = t("BM_single_pairs_55" + suffix);
      if (shared > 0 && single > 0) {
        std::printf("  %-14s %-8s one call %8.1f ms, 55 single-pair calls %8.1f ms, ratio %5.1f\n",
                    type, model[0] == '1' ? "halofit" : "linear", shared, single, single / shared);
      }
    }
  }
  return 0;
}
