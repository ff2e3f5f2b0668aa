// A downstream program on diffpm::device, built as a user would: a C++ file in an omp build of
// diffpm (Thrust's OpenMP system on the host), the same source as a .cu file compiled by nvcc in
// a cuda build. It checks the link line and the device path from outside the repository:
//  - white noise of a seed on the device is the CPU's, bit for bit (core/portable_math.hpp);
//  - a CIC paint of the same particles on the device is the CPU's, bit for bit (fixed point);
//  - the PM force on the device is the CPU's: bitwise in the emulation, to FFT rounding on a GPU.
// Exit code 0 when every check holds (or, in a cuda build, when the machine has no GPU: the
// program says so), 1 otherwise.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <diffpm/backend/device/memory.hpp>
#include <diffpm/diffpm.hpp>
#include <diffpm/ic/white_noise.hpp>
#include <diffpm/nbody/pm_force_device.hpp>
#include <diffpm/particles/cic_device.hpp>
#include <exception>
#include <iostream>
#include <limits>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::cout << (ok ? "ok   " : "FAIL ") << what << "\n";
  if (!ok) ++failures;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
void device_agrees(const char* name) {
  std::cout << name << ":\n";
  const diffpm::mesh::Grid grid = diffpm::mesh::Grid::cube(16, 32.0);

  // White noise.
  const auto noise_cpu = diffpm::ic::white_noise<T>(grid, 11);
  diffpm::device::Buffer<T> noise(grid.size());
  diffpm::ic::white_noise(diffpm::Cuda{}, 11, diffpm::mesh::packed(noise.data(), grid));
  check(same_bits(noise.to_host(), std::vector<T>(noise_cpu.data.begin(), noise_cpu.data.end())),
        "white noise on the device is the CPU's");

  // Particles (packed x, y, z) on the host and their copy on the device.
  const std::size_t n = 1000;
  diffpm::particles::Positions<T> x(n);
  for (std::size_t i = 0; i < n; ++i)
    x[i] = {T(0.37 * double(i)), T(std::fmod(1.3 * double(i * i), 32.0)),
            T(31.99 - 0.031 * double(i))};
  diffpm::device::Buffer<T> xd(3 * n), Fd(3 * n);
  xd.upload(x[0].data());
  const auto xs = diffpm::particles::aos_view(static_cast<const T*>(xd.data()), 3 * sizeof(T), n);
  const auto Fs = diffpm::particles::aos_view(Fd.data(), 3 * sizeof(T), n);

  // CIC paint.
  diffpm::mesh::RealField<T> painted(grid);
  diffpm::particles::paint_cic(x, painted);
  diffpm::device::Buffer<T> mesh(grid.size());
  diffpm::particles::paint_cic(diffpm::Cuda{}, xs, diffpm::mesh::packed(mesh.data(), grid));
  check(same_bits(mesh.to_host(), std::vector<T>(painted.data.begin(), painted.data.end())),
        "CIC paint on the device is the CPU's");

  // PM force.
  diffpm::nbody::PmForce<T> cpu(grid);
  diffpm::particles::Positions<T> F(n);
  cpu(x, 0.3, F);
  diffpm::nbody::PmForce<T, diffpm::Cuda> dev(grid);
  dev(xs, 0.3, Fs);
  std::vector<T> Fdev = Fd.to_host();
  double worst = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) {
      worst = std::fmax(worst, std::fabs(double(Fdev[3 * i + d]) - double(F[i][d])));
      scale = std::fmax(scale, std::fabs(double(F[i][d])));
    }
#if defined(DIFFPM_DEVICE_OMP)
  check(worst == 0.0, "PM force on the device is the CPU's, bit for bit (emulation)");
#else
  // cuFFT and FFTW round differently: a few hundred eps of the largest force.
  check(worst <= 300.0 * double(std::numeric_limits<T>::epsilon()) * scale,
        "PM force on the GPU is the CPU's to FFT rounding");
#endif
}

}  // namespace

int main() {
  try {
    diffpm::device::require_device("consumer_device");
  } catch (const diffpm::DeviceError& e) {
    std::cout << "skipped: " << e.what() << "\n";
    return 0;
  }
  try {
    device_agrees<float>("float");
    device_agrees<double>("double");
  } catch (const std::exception& e) {
    std::cout << "FAIL exception: " << e.what() << "\n";
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
