// Philox4x32-10 against the Random123 known answers; white noise statistics, independence and
// reproducibility (thread count, calls, precision).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "diffpm/core/openmp.hpp"
#include "diffpm/ic/philox.hpp"
#include "diffpm/ic/white_noise.hpp"

using diffpm::ic::philox4x32_10;
using diffpm::ic::PhiloxCounter;
using diffpm::ic::PhiloxKey;
using diffpm::mesh::Grid;
using diffpm::mesh::RealField;

TEST_CASE("Philox4x32-10 reproduces the Random123 known-answer vectors", "[ic][philox]") {
  // Random123 1.14, tests/kat_vectors, the three "philox4x32 10" lines (counter, key, result).
  struct Kat {
    PhiloxCounter ctr;
    PhiloxKey key;
    std::uint32_t want[4];
  };
  const Kat kats[] = {
      {{{0u, 0u, 0u, 0u}}, {{0u, 0u}}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       {{0xffffffffu, 0xffffffffu}},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       {{0xa4093822u, 0x299f31d0u}},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const auto& kat : kats) {
    const PhiloxCounter r = philox4x32_10(kat.ctr, kat.key);
    for (int w = 0; w < 4; ++w) CHECK(r.v[w] == kat.want[w]);
  }
}

TEST_CASE("Uniforms from Philox words are in (0, 1] and [0, 1)", "[ic][philox]") {
  using diffpm::ic::uniform_closed_open;
  using diffpm::ic::uniform_open_closed;
  CHECK(uniform_open_closed(0u, 0u) == std::ldexp(1.0, -53));
  CHECK(uniform_open_closed(0xffffffffu, 0xffffffffu) == 1.0);
  CHECK(uniform_closed_open(0u, 0u) == 0.0);
  CHECK(uniform_closed_open(0xffffffffu, 0xffffffffu) == 1.0 - std::ldexp(1.0, -53));
}

TEMPLATE_TEST_CASE("White noise has mean 0, variance 1, Gaussian kurtosis, uncorrelated cells",
                   "[ic][white_noise]", float, double) {
  const Grid grid({64, 48, 40}, {100.0, 75.0, 62.5});
  const RealField<TestType> w = diffpm::ic::white_noise<TestType>(grid, 20240607u);
  const double n = double(grid.size());
  double m1 = 0, m2 = 0, m4 = 0;
  for (TestType v : w.data) {
    m1 += v;
    m2 += double(v) * v;
    m4 += double(v) * v * v * v;
  }
  m1 /= n;
  m2 /= n;
  m4 /= n;
  // Statistical errors for N = 122880 iid N(0, 1): sigma(mean) = 1/sqrt(N) = 0.0029,
  // sigma(<x^2>) = sqrt(2/N) = 0.0040, sigma(<x^4>) = sqrt(96/N) = 0.028. We allow 5 sigma
  // (the seed is fixed, so this is deterministic; 5 sigma rejects real bias without flakiness).
  CHECK(std::abs(m1) < 5.0 / std::sqrt(n));
  CHECK(std::abs(m2 - 1.0) < 5.0 * std::sqrt(2.0 / n));
  CHECK(std::abs(m4 - 3.0) < 5.0 * std::sqrt(96.0 / n));

  // Correlation of each cell with its neighbour along x, y, z (periodic): sigma = 1/sqrt(N).
  for (int d = 0; d < 3; ++d) {
    double c = 0;
    for (int i = 0; i < grid.n[0]; ++i)
      for (int j = 0; j < grid.n[1]; ++j)
        for (int k = 0; k < grid.n[2]; ++k) {
          const int ii = d == 0 ? (i + 1) % grid.n[0] : i, jj = d == 1 ? (j + 1) % grid.n[1] : j,
                    kk = d == 2 ? (k + 1) % grid.n[2] : k;
          c += double(w(i, j, k)) * w(ii, jj, kk);
        }
    INFO("axis " << d);
    CHECK(std::abs(c / n) < 5.0 / std::sqrt(n));
  }

  // Two seeds, including one that differs only in the high 32 bits (key word 1), are
  // uncorrelated: sigma = 1/sqrt(N) again.
  for (std::uint64_t other : {20240608ull, 20240607ull + (1ull << 32)}) {
    const RealField<TestType> v = diffpm::ic::white_noise<TestType>(grid, other);
    double c = 0;
    std::size_t equal = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      c += double(w.data[i]) * v.data[i];
      equal += w.data[i] == v.data[i];
    }
    INFO("seed " << other);
    CHECK(std::abs(c / n) < 5.0 / std::sqrt(n));
    CHECK(equal == 0);
  }
}

TEMPLATE_TEST_CASE("White noise is a pure function of seed and cell: threads, calls, precision",
                   "[ic][white_noise]", float, double) {
  const Grid grid({20, 18, 16}, {50.0, 45.0, 40.0});
  const std::uint64_t seed = 0x0123456789abcdefull;
  const int saved = diffpm::max_threads();
  diffpm::set_threads(1);
  const RealField<TestType> one = diffpm::ic::white_noise<TestType>(grid, seed);
  diffpm::set_threads(2);
  const RealField<TestType> two = diffpm::ic::white_noise<TestType>(grid, seed);
  RealField<TestType> again(Grid::cube(4, 1.0));  // another mesh: reallocated
  diffpm::ic::white_noise(grid, seed, again);
  diffpm::set_threads(saved);
  const std::size_t bytes = one.size() * sizeof(TestType);
  CHECK(std::memcmp(one.data.data(), two.data.data(), bytes) == 0);
  REQUIRE(again.grid == grid);
  CHECK(std::memcmp(one.data.data(), again.data.data(), bytes) == 0);

  // Cell (i, j, k) is white_noise_value(seed, index); float is the rounded double, exactly.
  const RealField<double> ref = diffpm::ic::white_noise<double>(grid, seed);
  for (int i : {0, 7, 19})
    for (int j : {0, 11, 17})
      for (int k : {0, 5, 15}) {
        const double v = diffpm::ic::white_noise_value(seed, grid.index(i, j, k));
        CHECK(ref(i, j, k) == v);
      }
  std::size_t mismatches = 0;
  for (std::size_t c = 0; c < one.size(); ++c) mismatches += one.data[c] != TestType(ref.data[c]);
  CHECK(mismatches == 0);
}
