// FFT plans (backend/cpu/fft.hpp, fft2d.hpp): FFTW's global planner state is left as the host
// program set it, a shared plan reproduces its bits, and bad input is refused with a message.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <random>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/backend/cpu/fft2d.hpp"

using diffpm::FftPlan;
using diffpm::mesh::ComplexField;
using diffpm::mesh::Grid;
using diffpm::mesh::RealField;

TEMPLATE_TEST_CASE("making a plan leaves FFTW's planner thread count as the host set it",
                   "[backend][fft]", float, double) {
  using T = TestType;
  using F = diffpm::detail::Fftw<T>;
  // A host program that set its own count (after init_threads, as FFTW requires).
  {
    const std::lock_guard<std::mutex> lock(diffpm::detail::fftw_planner_mutex());
    F::init_threads();
    F::plan_with_nthreads(3);
  }
  for (int threads : {1, 2, 5}) {
    const FftPlan<T> plan(Grid::cube(8, 10.0), threads);
    CHECK(F::planner_nthreads() == 3);
    const diffpm::FftPlan2d<T> plan2d(16, threads);
    CHECK(F::planner_nthreads() == 3);
  }
  const std::lock_guard<std::mutex> lock(diffpm::detail::fftw_planner_mutex());
  F::plan_with_nthreads(1);
}

TEMPLATE_TEST_CASE("a plan transforms and round-trips on fields it was not made on",
                   "[backend][fft]", float, double) {
  using T = TestType;
  const Grid g({6, 8, 10}, {60.0, 80.0, 100.0});
  auto plan = std::make_shared<const FftPlan<T>>(g, 2);
  RealField<T> x(g), y(g);
  std::mt19937 rng(4);
  std::normal_distribution<double> n;
  double sum = 0.0;
  for (auto& v : x.data) {
    v = T(n(rng));
    sum += double(v);
  }
  ComplexField<T> k(g);
  diffpm::require_plan(plan, "test").forward(x, k);
  // The k = 0 mode is the plain sum (unnormalised forward DFT, docs/conventions.md).
  CHECK(double(k.data[0].real()) == Approx(sum).margin(1e-4));
  plan->inverse_destroying_input(k, y);
  double worst = 0.0;
  for (std::size_t c = 0; c < x.data.size(); ++c)
    worst = std::max(worst, std::fabs(double(y.data[c]) / double(g.size()) - double(x.data[c])));
  // inverse(forward(x)) = N x up to rounding: a few ulps of |x| ~ 3 times log2(N) ~ 9 stages.
  CHECK(worst < (sizeof(T) == 4 ? 2e-5 : 1e-13));
}

TEST_CASE("FFT plans refuse bad input", "[backend][fft][errors]") {
  std::shared_ptr<const FftPlan<double>> none;
  CHECK_THROWS_WITH(diffpm::require_plan(none, "PmForce"), Catch::Contains("PmForce: no FFT plan"));
  CHECK_THROWS_AS(FftPlan<double>(Grid(), 1), diffpm::InvalidArgument);
  const FftPlan<double> plan(Grid::cube(4, 1.0), 1);
  RealField<double> other(Grid::cube(4, 2.0));
  ComplexField<double> k(Grid::cube(4, 1.0));
  CHECK_THROWS_WITH(plan.forward(other, k), Catch::Contains("on another mesh"));
}
