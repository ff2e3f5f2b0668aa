// CIC paint and readout on the device code path against the CPU kernels (particles/cic.hpp).
// The paint is fixed point on both backends (core/fixed_point.hpp), so the meshes must be
// equal bit for bit, on the GPU too, and independent of the particle order.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "diffpm/particles/cic.hpp"
#include "diffpm/particles/cic_device.hpp"
#include "support/device.hpp"

using namespace diffpm;

namespace {

template <class T>
particles::Positions<T> random_positions(std::size_t n, const mesh::Grid& g, unsigned seed) {
  std::mt19937_64 rng(seed);
  particles::Positions<T> x(n);
  for (auto& p : x) {
    for (int d = 0; d < 3; ++d) {
      // Some particles outside the box and exactly on mesh points, to exercise the wrapping.
      std::uniform_real_distribution<double> u(-0.3 * g.length[d], 1.3 * g.length[d]);
      p[d] = T(u(rng));
    }
  }
  for (std::size_t i = 0; i < n; i += 17) x[i][0] = T(g.cell_size(0) * double(i % g.n[0]));
  return x;
}

template <class A, class B>
bool same_bits(const A& a, const B& b) {
  using T = typename A::value_type;
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](T u, T v) {
           return std::memcmp(&u, &v, sizeof(T)) == 0;
         });
}

}  // namespace

TEMPLATE_TEST_CASE("device paint equals the CPU paint bit for bit", "[device][cic]", float,
                   double) {
  using T = TestType;
  for (const auto& grid :
       {mesh::Grid({16, 12, 10}, {100.0, 80.0, 60.0}), mesh::Grid({3, 4, 2}, {10.0, 10.0, 10.0}),
        mesh::Grid({2, 2, 2}, {5.0, 5.0, 5.0})}) {
    const auto x = random_positions<T>(3000, grid, 7);
    test::DevicePositions<T> xd(x);

    mesh::RealField<T> cpu(grid);
    particles::paint_cic(x, cpu, T(0.37));
    test::DeviceMesh<T> dev(grid);
    particles::paint_cic(Cuda{}, xd.view(), dev.view(), T(0.37));
    CHECK(same_bits(dev.to_host().data, cpu.data));

    // Weighted, accumulating onto a mesh that already holds values.
    std::vector<T> w(x.size());
    std::mt19937_64 rng(3);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (auto& v : w) v = T(normal(rng));
    device::Buffer<T> wd(w);
    particles::paint_cic(x, w, cpu, /*accumulate=*/true);
    particles::paint_cic(Cuda{}, xd.view(), static_cast<const T*>(wd.data()), dev.view(),
                         /*accumulate=*/true);
    CHECK(same_bits(dev.to_host().data, cpu.data));
  }
}

TEMPLATE_TEST_CASE("device paint does not depend on the particle order", "[device][cic]", float,
                   double) {
  using T = TestType;
  const mesh::Grid grid({8, 8, 8}, {50.0, 50.0, 50.0});
  // Many particles in few cells: the atomics of one cell race as much as they can.
  auto x = random_positions<T>(20000, grid, 11);
  for (auto& p : x) p[1] = T(3.0);
  test::DevicePositions<T> a(x);
  std::mt19937_64 rng(5);
  std::shuffle(x.begin(), x.end(), rng);
  test::DevicePositions<T> b(x);
  test::DeviceMesh<T> ma(grid), mb(grid);
  device::Buffer<fixed_point::Accumulator> scratch;
  particles::paint_cic(Cuda{}, a.view(), ma.view(), T(1), false, &scratch);
  particles::paint_cic(Cuda{}, b.view(), mb.view(), T(1), false, &scratch);
  CHECK(same_bits(ma.to_host().data, mb.to_host().data));
  // Mass is conserved to the fixed-point resolution: each of the 8 n terms is rounded by at most
  // 1 / (2 scale) = 2^-63 B, B = n max|w| rounded up to a power of two (core/fixed_point.hpp).
  const auto m = ma.to_host();
  const double total = std::accumulate(m.data.begin(), m.data.end(), 0.0);
  const double B = std::ldexp(1.0, int(std::ceil(std::log2(double(x.size())))) + 1);
  const double rounding = 8.0 * double(x.size()) * std::ldexp(B, -63);
  const double conversion =
      double(grid.size()) * 0.5 * double(std::numeric_limits<T>::epsilon()) * double(x.size());
  CHECK(std::abs(total - double(x.size())) <= rounding + conversion);
}

TEMPLATE_TEST_CASE("device readout equals the CPU readout", "[device][cic]", float, double) {
  using T = TestType;
  const mesh::Grid grid({16, 12, 10}, {100.0, 80.0, 60.0});
  const auto x = random_positions<T>(5000, grid, 9);
  mesh::RealField<T> m(grid);
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (auto& v : m.data) v = T(normal(rng));

  std::vector<T> cpu;
  particles::readout_cic(m, x, cpu);
  test::DevicePositions<T> xd(x);
  test::DeviceMesh<T> md(m);
  device::Buffer<T> out(x.size());
  particles::readout_cic(Cuda{}, md.view(), xd.view(), out.data());
  const auto dev = out.to_host();
  if (test::emulated_device) {
    CHECK(same_bits(dev, cpu));
  } else {
    // A GPU may fuse the 8 multiply-adds: each sum of 8 terms of |w m| <= max|m| differs by a
    // few roundings of the running sum (at most 8 ulp of max|m|).
    double worst = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < cpu.size(); ++i) {
      worst = std::max(worst, std::abs(double(dev[i]) - double(cpu[i])));
      scale = std::max(scale, std::abs(double(cpu[i])));
    }
    CHECK(worst <= 8.0 * double(std::numeric_limits<T>::epsilon()) * 4.0 * scale);
  }
}

TEST_CASE("device paint and readout reject non-finite input, naming it", "[device][cic]") {
  const mesh::Grid grid({8, 8, 8}, {50.0, 50.0, 50.0});
  auto x = random_positions<double>(100, grid, 2);
  x[42][1] = std::numeric_limits<double>::quiet_NaN();
  test::DevicePositions<double> xd(x);
  test::DeviceMesh<double> m(grid);
  CHECK_THROWS_WITH(particles::paint_cic(Cuda{}, xd.view(), m.view()),
                    Catch::Contains("particle 42") && Catch::Contains("finite"));
  device::Buffer<double> out(x.size());
  CHECK_THROWS_AS(particles::readout_cic(Cuda{}, m.view(), xd.view(), out.data()), InvalidArgument);
  x[42][1] = 1.0;
  test::DevicePositions<double> ok(x);
  std::vector<double> w(x.size(), 1.0);
  w[7] = std::numeric_limits<double>::infinity();
  device::Buffer<double> wd(w);
  CHECK_THROWS_WITH(
      particles::paint_cic(Cuda{}, ok.view(), static_cast<const double*>(wd.data()), m.view()),
      Catch::Contains("not finite"));
}

TEST_CASE("device paint and readout are each other's transpose (dot-product test, double)",
          "[device][cic][adjoint]") {
  // <paint(w), m> = sum_p w_p sum_c W_c(x_p) m_c = <w, readout(m)>. The paint's fixed-point
  // rounding (two words in double: within ~2 ulp per cell) and the sums in double leave
  // ~1e-15 relative; 1e-12 leaves room and still catches any wrong index or weight.
  const mesh::Grid grid({12, 10, 9}, {60.0, 50.0, 45.0});
  const auto x = random_positions<double>(4000, grid, 21);
  std::mt19937_64 rng(22);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> w(x.size());
  for (auto& v : w) v = normal(rng);
  mesh::RealField<double> m(grid);
  for (auto& v : m.data) v = normal(rng);

  test::DevicePositions<double> xd(x);
  device::Buffer<double> wd(w);
  test::DeviceMesh<double> painted(grid), md(m);
  particles::paint_cic(Cuda{}, xd.view(), static_cast<const double*>(wd.data()), painted.view());
  device::Buffer<double> read(x.size());
  particles::readout_cic(Cuda{}, md.view(), xd.view(), read.data());
  const auto p = painted.to_host();
  const auto r = read.to_host();
  double lhs = 0.0, rhs = 0.0, scale = 0.0;
  for (std::size_t c = 0; c < grid.size(); ++c) {
    lhs += p.data[c] * m.data[c];
    scale += std::abs(p.data[c] * m.data[c]);
  }
  for (std::size_t i = 0; i < x.size(); ++i) rhs += w[i] * r[i];
  CHECK(std::abs(lhs - rhs) <= 1e-12 * scale);
}
