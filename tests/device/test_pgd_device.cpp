// The PGD correction on the device code path (PgdCorrection<T, Cuda>) against the CPU class.
// Every step is the CPU's arithmetic (fixed-point paint, the shared per-mode kernel, the
// stencils, readout and sums in the same order), so in the host emulation the displacement,
// the position adjoint and the parameter derivatives agree bit for bit; on a GPU, cuFFT,
// CUDA's exp and fused multiply-adds move the last bits, within the tolerances stated below.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "diffpm/nbody/pgd.hpp"
#include "diffpm/nbody/pgd_device.hpp"
#include "support/device.hpp"
#include "support/positions.hpp"

using namespace diffpm;

namespace {

/// max |a - b| / max |b| over the components.
template <class T>
double relative_difference(const particles::Positions<T>& a, const particles::Positions<T>& b) {
  double worst = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      worst = std::max(worst, std::abs(double(a[i][d]) - double(b[i][d])));
      scale = std::max(scale, std::abs(double(b[i][d])));
    }
  return worst / scale;
}

}  // namespace

TEMPLATE_TEST_CASE("device PGD equals the CPU's, adjoint and parameter derivatives included",
                   "[device][pgd]", float, double) {
  using T = TestType;
  const mesh::Grid grid({16, 16, 12}, {64.0, 64.0, 48.0});
  const auto x = test::clustered_positions<T>(grid, 10, 21);
  std::mt19937_64 rng(22);
  std::normal_distribution<double> normal(0.0, 1.0);
  particles::Positions<T> bar(x.size());
  for (auto& b : bar)
    for (int d = 0; d < 3; ++d) b[d] = T(normal(rng));
  const nbody::PgdParameters p{0.6, 0.1, 0.9, -1.5};
  const double a = 0.7;
  mesh::ForceKernelOptions fd4, fd2_lap;
  fd2_lap.gradient = mesh::GradientKernel::finite_difference_2;
  fd2_lap.laplacian = mesh::LaplacianKernel::finite_difference;
  for (const auto& kernel : {fd4, fd2_lap}) {
    nbody::PgdCorrection<T> cpu(grid, kernel);
    particles::Positions<T> S_cpu(x.size()), xb_cpu(x.size(), {T(0), T(0), T(0)});
    cpu.displacement(particles::view(x), p, a, particles::view(S_cpu));
    const auto g_cpu = cpu.displacement_adjoint(particles::view(x), p, a, particles::view(bar),
                                                particles::view(xb_cpu));

    nbody::PgdCorrection<T, Cuda> dev(grid, kernel);
    test::DevicePositions<T> xd(x), bard(bar), S(x.size());
    test::DevicePositions<T> xb(particles::Positions<T>(x.size(), {T(0), T(0), T(0)}));
    dev.displacement(xd.view(), p, a, S.view());
    const auto g_dev = dev.displacement_adjoint(xd.view(), p, a, bard.view(), xb.view());
    const auto S_dev = S.to_host(), xb_dev = xb.to_host();

    if (test::emulated_device) {
      CHECK(std::memcmp(S_dev.data(), S_cpu.data(), x.size() * sizeof(S_cpu[0])) == 0);
      CHECK(std::memcmp(xb_dev.data(), xb_cpu.data(), x.size() * sizeof(xb_cpu[0])) == 0);
      CHECK(g_dev.alpha == g_cpu.alpha);
      CHECK(g_dev.k_l == g_cpu.k_l);
      CHECK(g_dev.k_s == g_cpu.k_s);
      CHECK(g_dev.mu == g_cpu.mu);
    } else {
      // cuFFT and FFTW round differently, O(eps log N) of the largest mode, which the kernel,
      // the stencils and the readout carry: 200 eps of the largest value, as for the PM force.
      const double tol = 200.0 * double(std::numeric_limits<T>::epsilon());
      CHECK(relative_difference(S_dev, S_cpu) <= tol);
      CHECK(relative_difference(xb_dev, xb_cpu) <= tol);
      CHECK(g_dev.alpha == Approx(g_cpu.alpha).epsilon(tol));
      CHECK(g_dev.k_l == Approx(g_cpu.k_l).epsilon(tol));
      CHECK(g_dev.k_s == Approx(g_cpu.k_s).epsilon(tol));
    }
  }
}

TEST_CASE("device PGD rejects bad input as the CPU's does", "[device][pgd][errors]") {
  const mesh::Grid grid = mesh::Grid::cube(8, 40.0);
  mesh::ForceKernelOptions exact;
  exact.gradient = mesh::GradientKernel::exact;
  CHECK_THROWS_WITH((nbody::PgdCorrection<double, Cuda>(grid, exact)),
                    Catch::Contains("PgdCorrection (device): gradient kernel"));
  nbody::PgdCorrection<double, Cuda> pgd(grid);
  const auto x = test::clustered_positions<double>(grid, 4, 1);
  test::DevicePositions<double> xd(x), S(x.size()), S_short(3);
  CHECK_THROWS_WITH(pgd.displacement(xd.view(), {0.5, 0.1, 0.0, 0.0}, 1.0, S.view()),
                    Catch::Contains("PgdCorrection (device): k_s = 0"));
  CHECK_THROWS_WITH(pgd.displacement(xd.view(), {0.5, 0.1, 1.0, 0.0}, -1.0, S.view()),
                    Catch::Contains("scale factor a = -1"));
  CHECK_THROWS_WITH(pgd.displacement(xd.view(), {0.5, 0.1, 1.0, 0.0}, 1.0, S_short.view()),
                    Catch::Contains("3 displacements for 564 particles"));
}
