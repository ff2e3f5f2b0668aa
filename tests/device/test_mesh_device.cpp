// White noise, FFTs, Fourier kernels and finite differences on the device code path against the
// CPU kernels. Integer-derived values (the white noise) must be equal bit for bit on every
// backend; results of FFTs are equal bit for bit in the host emulation (FFTW stands in for
// cuFFT) and to the stated tolerance on a GPU.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/backend/device/fft.hpp"
#include "diffpm/ic/white_noise.hpp"
#include "diffpm/mesh/finite_difference.hpp"
#include "diffpm/mesh/finite_difference_device.hpp"
#include "diffpm/mesh/fourier_kernels.hpp"
#include "diffpm/mesh/fourier_kernels_device.hpp"
#include "support/device.hpp"
#include "support/mesh_fields.hpp"

using namespace diffpm;

namespace {

template <class T>
bool same_bits(const T* a, const T* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(T)) == 0;
}

/// max |a - b| / max |b| over n values (complex values as pairs of reals).
template <class T>
double relative_difference(const T* a, const T* b, std::size_t n) {
  double err = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    err = std::max(err, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return scale > 0 ? err / scale : err;
}

/// The tolerance of an FFT-based result on a GPU against FFTW: both transforms are accurate to
/// O(eps log N) of the largest value (Frigo & Johnson 2005); 64 eps covers the meshes here with
/// room for the kernel's own rounding.
template <class T>
double fft_tolerance() {
  return 64.0 * double(std::numeric_limits<T>::epsilon());
}

}  // namespace

TEMPLATE_TEST_CASE("device white noise is the CPU's, bit for bit", "[device][noise]", float,
                   double) {
  using T = TestType;
  const mesh::Grid grid({12, 10, 8}, {100.0, 100.0, 100.0});
  for (const std::uint64_t seed : {std::uint64_t(0), std::uint64_t(42), ~std::uint64_t(0)}) {
    const auto cpu = ic::white_noise<T>(grid, seed);
    test::DeviceMesh<T> dev(grid);
    ic::white_noise(Cuda{}, seed, dev.view());
    const auto host = dev.to_host();
    CHECK(same_bits(host.data.data(), cpu.data.data(), grid.size()));
  }
}

TEMPLATE_TEST_CASE("device FFTs match the CPU plan", "[device][fft]", float, double) {
  using T = TestType;
  for (const auto& grid :
       {mesh::Grid({16, 12, 10}, {100.0, 80.0, 60.0}), mesh::Grid({8, 8, 9}, {50.0, 50.0, 50.0})}) {
    const auto in = test::random_field<T>(grid, 3);
    FftPlan<T> cpu_plan(grid);
    mesh::ComplexField<T> cpu_k(grid);
    cpu_plan.forward(in, cpu_k);

    FftPlan<T, Cuda> plan(grid);
    test::DeviceMesh<T> din(in);
    test::DeviceSpectrum<T> dk(grid);
    plan.forward(din.view(), dk.view());
    const auto k = dk.to_host();
    const T* a = reinterpret_cast<const T*>(k.data.data());
    const T* b = reinterpret_cast<const T*>(cpu_k.data.data());
    if (test::emulated_device) {
      CHECK(same_bits(a, b, 2 * grid.complex_size()));
    } else {
      CHECK(relative_difference(a, b, 2 * grid.complex_size()) <= fft_tolerance<T>());
    }

    // c2r of the spectrum: N times the input (unnormalised, like FFTW).
    test::DeviceMesh<T> back(grid);
    plan.inverse_destroying_input(dk.view(), back.view());
    const auto r = back.to_host();
    double worst = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < grid.size(); ++i) {
      worst = std::max(worst, std::abs(double(r.data[i]) / double(grid.size()) - in.data[i]));
      scale = std::max(scale, std::abs(double(in.data[i])));
    }
    CHECK(worst <= fft_tolerance<T>() * scale);
  }
}

TEST_CASE("device FFT plans refuse views they cannot transform", "[device][fft]") {
  const mesh::Grid grid({8, 8, 8}, {50.0, 50.0, 50.0});
  const mesh::Grid other({8, 8, 10}, {50.0, 50.0, 50.0});
  FftPlan<double, Cuda> plan(grid);
  test::DeviceMesh<double> m(other);
  test::DeviceSpectrum<double> k(grid);
  CHECK_THROWS_WITH(plan.forward(m.view(), k.view()), Catch::Contains("plan on"));
}

TEMPLATE_TEST_CASE("device potential and force kernels match the CPU kernels", "[device][kernels]",
                   float, double) {
  using T = TestType;
  const mesh::Grid grid({12, 10, 8}, {100.0, 80.0, 60.0});
  const auto in = test::random_field<T>(grid, 5);
  FftPlan<T> plan(grid);
  mesh::ComplexField<T> delta_k(grid);
  plan.forward(in, delta_k);
  for (const auto lap : {mesh::LaplacianKernel::exact, mesh::LaplacianKernel::finite_difference}) {
    for (const double r_s : {0.0, 3.0}) {
      mesh::ForceKernelOptions opt;
      opt.laplacian = lap;
      opt.smoothing_scale = r_s;
      opt.gradient = mesh::GradientKernel::exact;
      const mesh::DeviceKernelTables tables(grid, opt);
      device::Buffer<std::complex<T>> dk(delta_k.data);
      device::Buffer<std::complex<T>> out(grid.complex_size());

      mesh::ComplexField<T> cpu(grid);
      mesh::apply_potential_kernel(mesh::view(std::as_const(delta_k)), opt, 0.3, 1e-3,
                                   mesh::view(cpu));
      mesh::apply_potential_kernel(
          Cuda{}, mesh::packed(static_cast<const std::complex<T>*>(dk.data()), grid), tables, 0.3,
          1e-3, mesh::packed(out.data(), grid));
      auto dev = out.to_host();
      // Element-wise products of the same doubles: bitwise on every backend (no sums to fuse).
      CHECK(same_bits(reinterpret_cast<const T*>(dev.data()),
                      reinterpret_cast<const T*>(cpu.data.data()), 2 * grid.complex_size()));

      for (int axis = 0; axis < 3; ++axis) {
        mesh::apply_force_kernel(mesh::view(std::as_const(delta_k)), axis, opt, 0.3, 1e-3,
                                 mesh::view(cpu));
        mesh::apply_force_kernel(Cuda{},
                                 mesh::packed(static_cast<const std::complex<T>*>(dk.data()), grid),
                                 axis, tables, 0.3, 1e-3, mesh::packed(out.data(), grid));
        dev = out.to_host();
        CHECK(same_bits(reinterpret_cast<const T*>(dev.data()),
                        reinterpret_cast<const T*>(cpu.data.data()), 2 * grid.complex_size()));
      }
    }
  }
}

TEMPLATE_TEST_CASE("device finite differences match the CPU stencils", "[device][kernels]", float,
                   double) {
  using T = TestType;
  for (const auto& grid :
       {mesh::Grid({12, 10, 8}, {100.0, 80.0, 60.0}), mesh::Grid({2, 3, 5}, {10.0, 10.0, 10.0})}) {
    const auto in = test::random_field<T>(grid, 8);
    test::DeviceMesh<T> din(in), dout(grid);
    for (const auto kind :
         {mesh::GradientKernel::finite_difference_2, mesh::GradientKernel::finite_difference_4}) {
      for (int axis = 0; axis < 3; ++axis) {
        mesh::RealField<T> cpu(grid);
        mesh::apply_difference(in, axis, kind, -1.0, cpu);
        mesh::apply_difference(Cuda{}, din.view(), axis, kind, -1.0, dout.view());
        const auto dev = dout.to_host();
        if (test::emulated_device) {
          CHECK(same_bits(dev.data.data(), cpu.data.data(), grid.size()));
        } else {
          // a (p1 - m1) + b (p2 - m2): a fused multiply-add rounds once instead of twice.
          CHECK(relative_difference(dev.data.data(), cpu.data.data(), grid.size()) <=
                4.0 * double(std::numeric_limits<T>::epsilon()));
        }
      }
    }
    CHECK_THROWS_AS(mesh::apply_difference(Cuda{}, din.view(), 0, mesh::GradientKernel::exact, 1.0,
                                           dout.view()),
                    InvalidArgument);
  }
}
