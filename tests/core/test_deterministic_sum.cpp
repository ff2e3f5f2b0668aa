// deterministic_sum: the same bits for any thread count, where an OpenMP reduction's partial
// sums combine in the order the threads finish.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "diffpm/core/deterministic_sum.hpp"
#include "diffpm/core/openmp.hpp"

TEST_CASE("deterministic_sum gives the same bits for 1 to 4 threads", "[core][reproducible]") {
  // Terms of both signs and magnitudes from 1e-8 to 1e8: any change of summation order changes
  // the rounded result, so equal bits mean equal order.
  const std::ptrdiff_t n = 100003;  // not a multiple of the block
  std::vector<double> t(static_cast<std::size_t>(n));
  for (std::ptrdiff_t i = 0; i < n; ++i)
    t[std::size_t(i)] = std::sin(0.37 * double(i)) * std::pow(10.0, double(i % 17) - 8.0);
  auto once = [&] {
    std::vector<int> seen(static_cast<std::size_t>(n), 0);
    const double s = diffpm::deterministic_sum(n, [&](std::ptrdiff_t i) {
      ++seen[std::size_t(i)];  // side effects on index i are the caller's to make
      return t[std::size_t(i)];
    });
    bool each_once = true;
    for (int v : seen) each_once = each_once && v == 1;
    REQUIRE(each_once);
    return s;
  };
  const int threads = diffpm::max_threads();
  diffpm::set_threads(1);
  const double reference = once();
  // The block sums in order, by hand.
  double by_hand = 0.0;
  for (std::ptrdiff_t b = 0; b * 4096 < n; ++b) {
    double s = 0.0;
    for (std::ptrdiff_t i = b * 4096; i < std::min(n, (b + 1) * 4096); ++i) s += t[std::size_t(i)];
    by_hand += s;
  }
  CHECK(std::memcmp(&reference, &by_hand, sizeof(double)) == 0);
#if defined(_OPENMP)
  for (int k = 2; k <= 4; ++k) {
    diffpm::set_threads(k);
    for (int repeat = 0; repeat < 3; ++repeat) {
      const double s = once();
      INFO(k << " threads");
      CHECK(std::memcmp(&s, &reference, sizeof(double)) == 0);
    }
  }
#else
  WARN("SKIPPED: built without OpenMP, so thread-count independence is not tested");
#endif
  diffpm::set_threads(threads);
}

TEST_CASE("deterministic_sums adds several sums in one pass; an empty range sums to 0",
          "[core][reproducible]") {
  const auto s = diffpm::deterministic_sums<3>(
      10,
      [](std::ptrdiff_t i) {
        return std::array<double, 3>{1.0, double(i), -2.0 * i};
      },
      3);
  CHECK(s[0] == 10.0);
  CHECK(s[1] == 45.0);
  CHECK(s[2] == -90.0);
  CHECK(diffpm::deterministic_sum(0, [](std::ptrdiff_t) { return 1.0; }) == 0.0);
}
