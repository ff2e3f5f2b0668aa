// The PM force on the device code path (PmForce<T, Cuda>) against the CPU force. The paint is
// bitwise the same on both backends (fixed point); in the host emulation FFTW stands in for
// cuFFT and every step is the same arithmetic, so the forces agree bit for bit; on a GPU they
// agree to the FFT tolerance stated below.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "diffpm/nbody/pm_force.hpp"
#include "diffpm/nbody/pm_force_device.hpp"
#include "support/device.hpp"
#include "support/positions.hpp"

using namespace diffpm;

TEMPLATE_TEST_CASE("device PM force equals the CPU force", "[device][force]", float, double) {
  using T = TestType;
  const mesh::Grid grid({16, 16, 12}, {64.0, 64.0, 48.0});
  const auto x = test::clustered_positions<T>(grid, 12, 4);
  test::DevicePositions<T> xd(x);

  mesh::ForceKernelOptions fd4, fd2, exact, smoothed;
  fd2.gradient = mesh::GradientKernel::finite_difference_2;
  exact.gradient = mesh::GradientKernel::exact;
  smoothed.laplacian = mesh::LaplacianKernel::finite_difference;
  smoothed.smoothing_scale = 2.0;
  for (const auto& kernel : {fd4, fd2, exact, smoothed}) {
    nbody::PmForce<T> cpu_force(grid, kernel);
    particles::Positions<T> cpu;
    cpu_force(x, 0.3, cpu);

    nbody::PmForce<T, Cuda> force(grid, kernel);
    test::DevicePositions<T> F(x.size());
    force(xd.view(), 0.3, F.view());
    const auto dev = F.to_host();

    if (test::emulated_device) {
      CHECK(std::memcmp(dev.data(), cpu.data(), x.size() * sizeof(cpu[0])) == 0);
    } else {
      // cuFFT and FFTW round differently: O(eps log N) of the largest mode, which the kernel and
      // the stencil carry into F; 200 eps of the largest force covers it with room.
      double worst = 0.0, scale = 0.0;
      for (std::size_t i = 0; i < x.size(); ++i)
        for (int d = 0; d < 3; ++d) {
          worst = std::max(worst, std::abs(double(dev[i][d]) - double(cpu[i][d])));
          scale = std::max(scale, std::abs(double(cpu[i][d])));
        }
      CHECK(worst <= 200.0 * double(std::numeric_limits<T>::epsilon()) * scale);
    }
  }
}

TEMPLATE_TEST_CASE("device PM force adjoint equals the CPU adjoint", "[device][force]", float,
                   double) {
  using T = TestType;
  const mesh::Grid grid({12, 12, 16}, {48.0, 48.0, 64.0});
  const auto x = test::clustered_positions<T>(grid, 10, 6);
  particles::Positions<T> F_bar(x.size());
  std::mt19937_64 rng(2);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (auto& v : F_bar)
    for (auto& c : v) c = T(normal(rng));
  test::DevicePositions<T> xd(x), F_bar_d(F_bar);

  mesh::ForceKernelOptions fd4, exact;
  exact.gradient = mesh::GradientKernel::exact;
  for (const auto& kernel : {fd4, exact}) {
    nbody::PmForce<T> cpu_force(grid, kernel);
    particles::Positions<T> F_cpu, xb_cpu(x.size(), {T(0.5), T(-1), T(2)});
    const double ob_cpu = cpu_force.value_and_adjoint(x, 0.3, F_bar, F_cpu, xb_cpu);

    nbody::PmForce<T, Cuda> force(grid, kernel);
    test::DevicePositions<T> F(x.size()), xb(xb_cpu.size());
    particles::Positions<T> start(x.size(), {T(0.5), T(-1), T(2)});
    xb.data.upload(start[0].data());
    const double ob = force.value_and_adjoint(xd.view(), 0.3, F_bar_d.view(), F.view(), xb.view());
    const auto F_dev = F.to_host(), xb_dev = xb.to_host();

    // adjoint() alone gives the same x_bar and dL/dOmega_m as value_and_adjoint.
    test::DevicePositions<T> xb2(x.size());
    xb2.data.upload(start[0].data());
    const double ob2 = force.adjoint(xd.view(), 0.3, F_bar_d.view(), xb2.view());
    CHECK(ob2 == ob);
    CHECK(std::memcmp(xb2.to_host().data(), xb_dev.data(), x.size() * sizeof(x[0])) == 0);

    if (test::emulated_device) {
      CHECK(std::memcmp(F_dev.data(), F_cpu.data(), x.size() * sizeof(x[0])) == 0);
      CHECK(std::memcmp(xb_dev.data(), xb_cpu.data(), x.size() * sizeof(x[0])) == 0);
      CHECK(ob == ob_cpu);
    } else {
      // FFT rounding (see the force test) carried through the transposed operator.
      double worst = 0.0, scale = 0.0;
      for (std::size_t i = 0; i < x.size(); ++i)
        for (int d = 0; d < 3; ++d) {
          worst = std::max(worst, std::abs(double(xb_dev[i][d]) - double(xb_cpu[i][d])));
          scale = std::max(scale, std::abs(double(xb_cpu[i][d])));
        }
      CHECK(worst <= 200.0 * double(std::numeric_limits<T>::epsilon()) * scale);
      CHECK(std::abs(ob - ob_cpu) <=
            200.0 * double(std::numeric_limits<T>::epsilon()) * std::abs(ob_cpu));
    }
  }
}

TEST_CASE("device PM force rejects bad input with clear errors", "[device][force]") {
  const mesh::Grid grid({8, 8, 8}, {32.0, 32.0, 32.0});
  nbody::PmForce<double, Cuda> force(grid);
  auto x = test::clustered_positions<double>(grid, 4, 1);
  test::DevicePositions<double> xd(x);
  test::DevicePositions<double> F(x.size()), F_short(x.size() - 1);
  CHECK_THROWS_WITH(force(xd.view(), -0.3, F.view()), Catch::Contains("Omega_m"));
  CHECK_THROWS_WITH(force(xd.view(), 0.3, F_short.view()), Catch::Contains("forces for"));
  x[5][2] = std::numeric_limits<double>::infinity();
  test::DevicePositions<double> bad(x);
  CHECK_THROWS_WITH(force(bad.view(), 0.3, F.view()), Catch::Contains("particle 5"));
}

TEST_CASE("a device force that cannot fit says so before allocating", "[device][force]") {
  // 2^13 cells per side: 5.5e11 cells, terabytes of meshes on any device of today.
  const mesh::Grid huge({8192, 8192, 8192}, {1000.0, 1000.0, 1000.0});
  using Force = nbody::PmForce<float, Cuda>;
  CHECK_THROWS_AS(Force(huge), OutOfMemory);
  CHECK_THROWS_WITH(Force(huge), Catch::Contains("needs") && Catch::Contains("free"));
}
