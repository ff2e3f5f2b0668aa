// Lightcone shell painting on the device code path against the CPU kernels
// (lensing/shell_painting.hpp). The paint is fixed point on both backends, so the planes must be
// equal bit for bit, on a GPU too, and independent of the particle order. The adjoint runs the
// CPU's per-particle arithmetic and sum grouping: bitwise in the host emulation, and a stated
// tolerance on a GPU. A dot-product test holds the device adjoint to central differences of the
// device paint.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "diffpm/lensing/shell_painting.hpp"
#include "diffpm/lensing/shell_painting_device.hpp"
#include "support/device.hpp"

using namespace diffpm;
using lensing::Plane;
using lensing::PlaneGrid;
using lensing::Replicas;

namespace {

// The geometry of tests/lensing/test_lightcone.cpp: a non-cubic box, planes covering a 6 deg map
// with 9 Mpc/h comoving cells, wider than the box's cross-section beyond ~600 Mpc/h, so that
// particles appear through several periodic images across the line of sight.
const std::array<double, 3> kBox{100.0, 80.0, 60.0};
const lensing::MapGeometry kMap(8, 6.0);
PlaneGrid plane_grid(double chi) { return PlaneGrid::covering(kMap, 9.0, chi); }

template <class T>
particles::Positions<T> random_positions(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.2, 1.2);  // also outside the box: not wrapped
  particles::Positions<T> x(n);
  for (auto& p : x)
    for (int d = 0; d < 3; ++d) p[d] = T(u(rng) * kBox[d]);
  return x;
}

// Plain, shifted, and shifted and reoriented replicas (reflections only in the non-cubic box),
// and all 48 symmetries in a cube.
std::vector<Replicas> replica_variants() {
  return {Replicas::centred(kBox), Replicas::centred(kBox, true, 7),
          Replicas::centred(kBox, true, 7, true),
          Replicas::centred({80.0, 80.0, 80.0}, true, 7, true)};
}

// Shells near (one replica, a cone narrower than the box), in the middle (two replicas) and far
// (several replicas along the line of sight and several images across it).
struct Shell {
  double chi, width;
};
const Shell kShells[] = {{40.0, 25.0}, {230.0, 35.0}, {700.0, 160.0}};

template <class T>
struct DevicePlane {
  PlaneGrid grid;
  device::Buffer<T> data;
  explicit DevicePlane(const PlaneGrid& g) : grid(g), data(g.size()) {}
  explicit DevicePlane(const Plane<T>& p) : grid(p.grid), data(p.data) {}
  lensing::PlaneView<T> view() { return {grid, data.data()}; }
  std::vector<T> to_host() const { return data.to_host(); }
};

template <class A, class B>
bool same_bits(const A& a, const B& b) {
  using T = typename A::value_type;
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](T u, T v) {
           return std::memcmp(&u, &v, sizeof(T)) == 0;
         });
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

template <class T>
std::vector<T> flatten(const particles::Positions<T>& x) {
  std::vector<T> v;
  for (const auto& p : x) v.insert(v.end(), p.begin(), p.end());
  return v;
}

}  // namespace

TEMPLATE_TEST_CASE("device paint_shell equals the CPU paint_shell bit for bit",
                   "[device][lensing][shell]", float, double) {
  using T = TestType;
  const auto x = random_positions<T>(3000, 1);
  test::DevicePositions<T> xd(x);
  device::Buffer<fixed_point::Accumulator> scratch;  // reused across planes of every size
  int painted = 0;
  for (const auto& rep : replica_variants()) {
    for (const Shell& sh : kShells) {
      // The default density (N / V) and a given one.
      for (const double density : {0.0, 0.05}) {
        Plane<T> cpu(plane_grid(sh.chi));
        lensing::paint_shell(x, rep, sh.chi, sh.width, cpu, density);
        DevicePlane<T> dev(cpu.grid);
        lensing::paint_shell(Cuda{}, xd.view(), rep, sh.chi, sh.width, dev.view(), density,
                             &scratch);
        CHECK(same_bits(dev.to_host(), cpu.data));
        // Something was painted: not every point is the empty plane's -1.
        painted += std::any_of(cpu.data.begin(), cpu.data.end(), [](T v) { return v != T(-1); });
      }
    }
  }
  CHECK(painted == 4 * 3 * 2);

  // No particles: the plane is -1 everywhere on both.
  const particles::Positions<T> none;
  test::DevicePositions<T> nd(none);
  Plane<T> cpu(plane_grid(230.0));
  lensing::paint_shell(none, Replicas::centred(kBox), 230.0, 35.0, cpu, 0.1);
  DevicePlane<T> dev(cpu.grid);
  lensing::paint_shell(Cuda{}, nd.view(), Replicas::centred(kBox), 230.0, 35.0, dev.view(), 0.1);
  CHECK(same_bits(dev.to_host(), cpu.data));
}

TEMPLATE_TEST_CASE("device paint_shell does not depend on the particle order",
                   "[device][lensing][shell][determinism]", float, double) {
  using T = TestType;
  auto x = random_positions<T>(20000, 3);
  // Many particles in a thin slab: the atomics of a few plane rows race as much as they can.
  for (auto& p : x) p[2] = T(0.5 * kBox[2] + 0.01 * (double(p[2]) - 0.5 * kBox[2]));
  const Replicas rep = Replicas::centred(kBox, true, 7, true);
  const double chi = 230.0, width = 35.0;
  test::DevicePositions<T> a(x);
  std::mt19937_64 rng(4);
  std::shuffle(x.begin(), x.end(), rng);
  test::DevicePositions<T> b(x);
  DevicePlane<T> pa(plane_grid(chi)), pb(plane_grid(chi));
  lensing::paint_shell(Cuda{}, a.view(), rep, chi, width, pa.view());
  lensing::paint_shell(Cuda{}, b.view(), rep, chi, width, pb.view());
  const auto ha = pa.to_host();
  CHECK(same_bits(ha, pb.to_host()));
  Plane<T> cpu(pa.grid);
  lensing::paint_shell(x, rep, chi, width, cpu);
  CHECK(same_bits(ha, cpu.data));
}

TEMPLATE_TEST_CASE("device paint_shell_adjoint equals the CPU adjoint",
                   "[device][lensing][shell][adjoint]", float, double) {
  using T = TestType;
  const auto x = random_positions<T>(5000, 2);
  test::DevicePositions<T> xd(x);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> n01;
  for (const auto& rep : replica_variants()) {
    for (const Shell& sh : kShells) {
      Plane<T> plane_bar(plane_grid(sh.chi));
      for (auto& v : plane_bar.data) v = T(n01(rng));
      // x_bar already holds values: both backends add to it.
      particles::Positions<T> cpu_bar(x.size());
      for (auto& p : cpu_bar)
        for (auto& c : p) c = T(n01(rng));
      test::DevicePositions<T> dev_bar(cpu_bar);
      const auto cpu = lensing::paint_shell_adjoint(x, rep, sh.chi, sh.width, plane_bar, cpu_bar);
      DevicePlane<T> pbd(plane_bar);
      const auto dev = lensing::paint_shell_adjoint(Cuda{}, xd.view(), rep, sh.chi, sh.width,
                                                    pbd.view(), dev_bar.view());
      const auto got = flatten(dev_bar.to_host()), want = flatten(cpu_bar);
      CHECK(cpu.chi != 0.0);
      if (test::emulated_device) {
        // The same machine code per particle and the same grouping of the sums.
        CHECK(same_bits(got, want));
        CHECK(same_bits(dev.chi, cpu.chi));
        CHECK(same_bits(dev.width, cpu.width));
      } else {
        // On a GPU nvcc may fuse the multiply-adds of the bilinear readout, the image's gradient
        // and the running sums, which moves each double by an ulp or so of its terms. x_bar is
        // then rounded to T per image (a flip of its last bit at most), over at most a few tens
        // of images per particle; the two scalars are sums of ~1e4 such terms, of either sign.
        double worst = 0.0, scale = 0.0;
        for (std::size_t i = 0; i < want.size(); ++i) {
          worst = std::max(worst, std::fabs(double(got[i]) - double(want[i])));
          scale = std::max(scale, std::fabs(double(want[i])));
        }
        CHECK(worst <= 64.0 * double(std::numeric_limits<T>::epsilon()) * scale);
        const double s = std::max(std::fabs(cpu.chi), std::fabs(cpu.width));
        CHECK(std::fabs(dev.chi - cpu.chi) <= 1e-11 * s);
        CHECK(std::fabs(dev.width - cpu.width) <= 1e-11 * s);
      }
    }
  }
}

TEST_CASE("device paint_shell_adjoint passes the dot-product test against the device paint",
          "[device][lensing][shell][adjoint]") {
  // <J v, w> by a central difference of the device paint along (v, v_chi, v_width), against
  // <v, x_bar> + v_chi dL/dchi + v_width dL/dDelta from the device adjoint with plane_bar = w.
  // Between kinks (the hat's peak, the CIC stencil's cell edges, a shifted replica's wrap) the
  // plane is a smooth function of the positions and shell scalars, so the central difference is
  // exact to O(e^2) = 1e-12 relative. Its rounding dominates: each painted point is within an
  // ulp or so of its exact value (two-word fixed point), divided by 2 e = 2e-6, and the points'
  // products with w largely cancel; measured, |lhs - rhs| / |lhs| <= 3.2e-8 over these shells.
  // 1e-6 leaves a margin of 30, and a crossed kink (an O(1) error in one particle's share of
  // 600, ~1e-3 of the total) would still fail it.
  const auto x = random_positions<double>(600, 8);
  test::DevicePositions<double> xd(x);
  std::mt19937_64 rng(9);
  std::normal_distribution<double> n01;
  for (const auto& rep :
       {Replicas::centred(kBox, true, 3), Replicas::centred({80.0, 80.0, 80.0}, true, 3, true)}) {
    for (const Shell& sh : kShells) {
      const PlaneGrid g = plane_grid(sh.chi);
      Plane<double> w(g);
      for (auto& v : w.data) v = n01(rng);
      particles::Positions<double> v(x.size());
      for (auto& p : v)
        for (auto& c : p) c = n01(rng);
      const double v_chi = n01(rng), v_width = n01(rng);

      const double e = 1e-6;
      auto painted = [&](double sign) {
        particles::Positions<double> y = x;
        for (std::size_t p = 0; p < y.size(); ++p)
          for (int d = 0; d < 3; ++d) y[p][d] += sign * e * v[p][d];
        test::DevicePositions<double> yd(y);
        DevicePlane<double> plane(g);
        lensing::paint_shell(Cuda{}, yd.view(), rep, sh.chi + sign * e * v_chi,
                             sh.width + sign * e * v_width, plane.view());
        return plane.to_host();
      };
      const auto up = painted(1.0), down = painted(-1.0);
      long double lhs = 0.0L;
      for (std::size_t c = 0; c < g.size(); ++c)
        lhs += (long double)(up[c] - down[c]) / (2.0L * e) * w.data[c];

      test::DevicePositions<double> x_bar(particles::Positions<double>(x.size()));
      DevicePlane<double> wd(w);
      const auto grad = lensing::paint_shell_adjoint(Cuda{}, xd.view(), rep, sh.chi, sh.width,
                                                     wd.view(), x_bar.view());
      const auto xb = x_bar.to_host();
      long double rhs = (long double)grad.chi * v_chi + (long double)grad.width * v_width;
      for (std::size_t p = 0; p < x.size(); ++p)
        for (int d = 0; d < 3; ++d) rhs += (long double)xb[p][d] * v[p][d];
      INFO("chi = " << sh.chi << ", lhs = " << double(lhs) << ", rhs = " << double(rhs));
      CHECK(std::fabs(double(lhs)) > 0.0);
      CHECK(double(std::fabs(lhs - rhs)) <= 1e-6 * double(std::fabs(lhs)));
    }
  }
}

TEST_CASE("device shell painting rejects bad input, naming it", "[device][lensing][shell]") {
  auto x = random_positions<double>(100, 2);
  x[42][1] = std::numeric_limits<double>::quiet_NaN();
  test::DevicePositions<double> bad(x);
  const Replicas rep = Replicas::centred(kBox);
  DevicePlane<double> plane(plane_grid(230.0));
  test::DevicePositions<double> x_bar(x.size());
  CHECK_THROWS_WITH(lensing::paint_shell(Cuda{}, bad.view(), rep, 230.0, 35.0, plane.view()),
                    Catch::Contains("particle 42") && Catch::Contains("finite"));
  CHECK_THROWS_WITH(lensing::paint_shell_adjoint(Cuda{}, bad.view(), rep, 230.0, 35.0, plane.view(),
                                                 x_bar.view()),
                    Catch::Contains("particle 42") && Catch::Contains("finite"));

  x[42][1] = 1.0;
  test::DevicePositions<double> ok(x);
  CHECK_THROWS_WITH(lensing::paint_shell(Cuda{}, ok.view(), rep, -1.0, 35.0, plane.view()),
                    Catch::Contains("chi = -1"));
  CHECK_THROWS_AS(lensing::paint_shell(Cuda{}, ok.view(), rep, 230.0, 0.0, plane.view()),
                  InvalidArgument);
  CHECK_THROWS_WITH(lensing::paint_shell(Cuda{}, ok.view(), rep, 230.0, 35.0, plane.view(), -2.0),
                    Catch::Contains("density = -2"));
  CHECK_THROWS_WITH(lensing::paint_shell(Cuda{}, ok.view(), rep, 230.0, 35.0,
                                         lensing::PlaneView<double>{plane.grid, nullptr}),
                    Catch::Contains("plane has no data"));
  test::DevicePositions<double> short_bar(x.size() - 1);
  CHECK_THROWS_WITH(lensing::paint_shell_adjoint(Cuda{}, ok.view(), rep, 230.0, 35.0, plane.view(),
                                                 short_bar.view()),
                    Catch::Contains("x_bar holds 99"));
  CHECK_THROWS_AS(lensing::paint_shell_adjoint(Cuda{}, ok.view(), Replicas(), 230.0, 35.0,
                                               plane.view(), x_bar.view()),
                  InvalidArgument);
}
