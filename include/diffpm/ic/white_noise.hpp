/// \file
/// \brief Gaussian white noise on a mesh from Philox: each cell a pure function of seed and index.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "diffpm/backend/parallel.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/core/portable_math.hpp"
#include "diffpm/ic/philox.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/view.hpp"

namespace diffpm::ic {

/// The N(0, 1) value of the cell with row-major linear index `cell` (Grid::index) for `seed`.
///
/// One Philox4x32-10 block per cell: counter = (cell low 32 bits, cell high 32 bits, 0, 0),
/// key = (seed low 32 bits, seed high 32 bits). Words (0, 1) give u1 in (0, 1], words (2, 3)
/// give u2 in [0, 1), each with 53 random bits, and Box-Muller (Box & Muller 1958) gives
/// sqrt(-2 ln u1) cos(2 pi u2). The second normal of the pair, sqrt(-2 ln u1) sin(2 pi u2), is
/// dropped: one block per cell keeps every cell independent of how cells are paired or split
/// among threads and GPU blocks, for the price of one extra Philox call (cheap next to log/cos).
/// Counter words 2 and 3 are left 0 for other random streams later.
///
/// Computed in double always, with portable::log and portable::cos_2pi (core/portable_math.hpp)
/// instead of the libm functions, whose last bits differ between glibc and CUDA: they use only
/// correctly rounded operations (+, -, *, /, exact bit and floor operations), and so does
/// std::sqrt. The value is therefore bitwise the same on every backend (g++/glibc on the CPU,
/// nvcc on the GPU) and for any thread count, provided the host compiler does not contract
/// a * b + c into FMAs: g++ does not on x86-64's default target (no FMA instructions), but does
/// with -march=native, -mfma or on aarch64, whatever the -std mode, and then needs
/// -ffp-contract=off (core/portable_math.hpp; docs/conventions.md, "White noise").
DIFFPM_HOST_DEVICE inline double white_noise_value(std::uint64_t seed, std::uint64_t cell) {
  const PhiloxCounter ctr{{std::uint32_t(cell), std::uint32_t(cell >> 32), 0u, 0u}};
  const PhiloxKey key{{std::uint32_t(seed), std::uint32_t(seed >> 32)}};
  const PhiloxCounter r = philox4x32_10(ctr, key);
  const double u1 = uniform_open_closed(r.v[0], r.v[1]);
  const double u2 = uniform_closed_open(r.v[2], r.v[3]);
  // Through portable::detail::mul: -2 ln u1 is an exact scaling, and the last product must not
  // be fused (on the device) with an add of the caller's into an FMA that changes its bits.
  using portable::detail::mul;
  return mul(std::sqrt(mul(-2.0, portable::log(u1))), portable::cos_2pi(u2));
}

/// The white noise of `seed` on out's grid written through the view: cell (i, j, k) =
/// white_noise_value(seed, grid.index(i, j, k)), on the backend `b` (Cpu: host memory; Cuda:
/// device memory). One kernel source, so both backends store the same values.
template <class Backend, class T>
void white_noise(Backend b, std::uint64_t seed, mesh::RealView<T> out) {
  out.grid.validate();
  if (!out.data) throw InvalidArgument("white_noise: the output view has no data");
  const std::size_t ny = std::size_t(out.grid.n[1]), nz = std::size_t(out.grid.n[2]);
  const std::ptrdiff_t s0 = out.stride[0], s1 = out.stride[1], s2 = out.stride[2];
  T* data = out.data;
  backend::for_each_index(b, out.grid.size(), [=] DIFFPM_LAMBDA(std::size_t c) {
    const std::size_t k = c % nz, ij = c / nz, j = ij % ny, i = ij / ny;
    data[std::ptrdiff_t(i) * s0 + std::ptrdiff_t(j) * s1 + std::ptrdiff_t(k) * s2] =
        T(white_noise_value(seed, std::uint64_t(c)));
  });
}

/// Fills `out` with independent N(0, 1) values, cell (i, j, k) = white_noise_value(seed,
/// grid.index(i, j, k)), so the field depends only on (seed, i, j, k, grid shape): the same for
/// any thread count and backend. `out` is reallocated on `grid` if it lives on another mesh.
/// T = float stores the rounded double value, so float and double fields agree to float rounding.
template <class T>
void white_noise(const mesh::Grid& grid, std::uint64_t seed, mesh::RealField<T>& out) {
  grid.validate();
  if (out.grid != grid || out.data.size() != grid.size()) out = mesh::RealField<T>(grid);
  white_noise(Cpu{}, seed, mesh::view(out));
}

/// The white-noise field of `grid` and `seed` (see above).
template <class T>
mesh::RealField<T> white_noise(const mesh::Grid& grid, std::uint64_t seed) {
  mesh::RealField<T> out(grid);
  white_noise(grid, seed, out);
  return out;
}

}  // namespace diffpm::ic
