/// \file
/// \brief Central finite differences of a periodic real mesh on the device backend: the
/// stencils of finite_difference.hpp (stencil_coefficients, difference_value) over packed meshes
/// in device memory.
#pragma once

#include <cstddef>
#include <string>

#include "diffpm/backend/device/parallel.hpp"
#include "diffpm/backend/tags.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/mesh/finite_difference.hpp"
#include "diffpm/mesh/grid.hpp"
#include "diffpm/mesh/view.hpp"

namespace diffpm::mesh {

/// out (=|+=) scale D_axis in, as apply_difference (mesh/finite_difference.hpp): packed device
/// views on one grid, out a different buffer from in. The stencils are antisymmetric, so the
/// adjoint is the same call with -scale (apply_difference_adjoint).
template <class T>
void apply_difference(Cuda, ConstRealView<T> in, int axis, GradientKernel kind, double scale,
                      RealView<T> out, OutputMode mode = OutputMode::overwrite) {
  const char* what = "finite difference (device)";
  detail::check_axis(axis, what);
  detail::check_scale(scale, what);
  if (!has_real_space_stencil(kind)) {
    throw InvalidArgument(std::string(what) +
                          ": gradient kernel = " + std::to_string(static_cast<int>(kind)) +
                          " has no real-space stencil (use finite_difference_2 or _4)");
  }
  if (!in.data || !out.data) throw InvalidArgument(std::string(what) + ": a view has no data");
  if (in.grid != out.grid || !in.is_packed() || !out.is_packed()) {
    throw InvalidArgument(std::string(what) + ": the views must be packed and on one grid (" +
                          in.grid.to_string() + ", " + out.grid.to_string() + ")");
  }
  if (static_cast<const void*>(in.data) == static_cast<const void*>(out.data)) {
    throw InvalidArgument(std::string(what) +
                          ": output is the input (the stencil reads "
                          "neighbours it would already have overwritten)");
  }
  const Grid& g = in.grid;
  const detail::StencilCoefficients<T> c =
      detail::stencil_coefficients<T>(kind, g.cell_size(axis), scale);
  const int n[3] = {g.n[0], g.n[1], g.n[2]};
  const int na = n[axis];
  const std::size_t stride = axis == 0 ? std::size_t(n[1]) * n[2] : axis == 1 ? n[2] : 1;
  const T* f = in.data;
  T* o = out.data;
  const T a = c.a, b = c.b;
  const int ny = n[1], nz = n[2];
  const bool accumulate = mode == OutputMode::accumulate;
  backend::for_each_index(Cuda{}, g.size(), [=] DIFFPM_LAMBDA(std::size_t cell) {
    const int k = int(cell % std::size_t(nz));
    const std::size_t ij = cell / std::size_t(nz);
    const int j = int(ij % std::size_t(ny));
    const int i = int(ij / std::size_t(ny));
    const int pos = axis == 0 ? i : axis == 1 ? j : k;
    const std::size_t base = cell - std::size_t(pos) * stride;
    auto at = [&](int s) {
      int q = pos + s;
      q = q >= na ? q - na : q < 0 ? q + na : q;
      q = q >= na ? q - na : q < 0 ? q + na : q;  // na = 1: two wraps may be needed
      return f[base + std::size_t(q) * stride];
    };
    const T v = detail::difference_value(a, b, at(1), at(-1), at(2), at(-2));
    o[cell] = accumulate ? T(o[cell] + v) : v;
  });
}

}  // namespace diffpm::mesh
