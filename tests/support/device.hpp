/// \file
/// \brief Test helpers for the device backend: copies of host containers to device buffers and
/// back, and views of them.
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/system.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/view.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::test {

/// Whether this test binary runs the device code through Thrust's OpenMP system with the same
/// compiler as the CPU code: then the per-element arithmetic is the same machine code, and
/// results that involve floating-point sums are compared bit for bit. On a GPU, nvcc may fuse
/// multiply-adds, so those comparisons use the tolerance stated in each test.
constexpr bool emulated_device =
#if defined(DIFFPM_DEVICE_OMP)
    true;
#else
    false;
#endif

/// Positions (packed triples) in device memory.
template <class T>
struct DevicePositions {
  device::Buffer<T> data;
  std::size_t size = 0;
  explicit DevicePositions(const particles::Positions<T>& x) : data(3 * x.size()), size(x.size()) {
    if (size) data.upload(x[0].data());
  }
  explicit DevicePositions(std::size_t n) : data(3 * n), size(n) {}
  particles::Vec3View<const T> view() const {
    const T* p = data.data();
    return {{p, p + 1, p + 2}, std::ptrdiff_t(3 * sizeof(T)), size};
  }
  particles::Vec3View<T> view() {
    T* p = data.data();
    return {{p, p + 1, p + 2}, std::ptrdiff_t(3 * sizeof(T)), size};
  }
  particles::Positions<T> to_host() const {
    particles::Positions<T> x(size);
    if (size) data.download(x[0].data());
    return x;
  }
};

/// A packed real mesh in device memory.
template <class T>
struct DeviceMesh {
  mesh::Grid grid;
  device::Buffer<T> data;
  explicit DeviceMesh(const mesh::Grid& g) : grid(g), data(g.size()) {}
  explicit DeviceMesh(const mesh::RealField<T>& f) : grid(f.grid), data(f.data) {}
  mesh::RealView<T> view() { return mesh::packed(data.data(), grid); }
  mesh::RealView<const T> view() const {
    return mesh::packed(static_cast<const T*>(data.data()), grid);
  }
  mesh::RealField<T> to_host() const {
    mesh::RealField<T> f(grid);
    data.download(f.data.data());
    return f;
  }
};

/// A packed half spectrum in device memory.
template <class T>
struct DeviceSpectrum {
  mesh::Grid grid;
  device::Buffer<std::complex<T>> data;
  explicit DeviceSpectrum(const mesh::Grid& g) : grid(g), data(g.complex_size()) {}
  mesh::ComplexView<T> view() { return mesh::packed(data.data(), grid); }
  mesh::ComplexField<T> to_host() const {
    mesh::ComplexField<T> f(grid);
    data.download(f.data.data());
    return f;
  }
};

/// A device copy of a host half spectrum.
template <class T>
DeviceSpectrum<T> to_device(const mesh::ComplexField<T>& f) {
  DeviceSpectrum<T> d(f.grid);
  d.data.upload(f.data.data());
  return d;
}

}  // namespace diffpm::test
