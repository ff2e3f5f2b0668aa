/// \file
/// \brief Central finite differences of a periodic real field, applied in real space, and their
/// transposes.
///
/// These are the same linear operators as mesh::apply_gradient with
/// GradientKernel::finite_difference_2 / _4 (fourier_kernels.hpp): a periodic convolution with
/// the stencil [-1, 0, 1] / 2h or [1, -8, 0, 8, -1] / 12h has the Fourier symbol i g(k) with
/// g = sin(k h) / h or (8 sin(k h) - sin(2 k h)) / (6 h), which is zero on the Nyquist plane
/// (sin(pi) = sin(2 pi) = 0) where the Fourier kernel sets it to zero. Applied in real space
/// they cost one streaming pass over the mesh (~1/5 of an FFT of the same mesh) instead of a
/// complex-to-real transform per derivative, which is what lets the PM force make one r2c and
/// one c2r per call (nbody/pm_force.hpp): F_d = -D_d phi on the mesh of phi.
///
/// The stencils are antisymmetric, so the transpose of out = s D_d in is out = -s D_d in
/// (tests/mesh/test_finite_difference.cpp checks <D v, w> = <v, D^T w> and the agreement with
/// the Fourier kernels).
#pragma once

#include <cstddef>
#include <string>

#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/fourier_kernels.hpp"

namespace diffpm::mesh {

/// Whether `kind` is a stencil that apply_difference can apply (the exact gradient i k is not:
/// its real-space stencil is the whole mesh).
inline bool has_real_space_stencil(GradientKernel kind) {
  return kind == GradientKernel::finite_difference_2 || kind == GradientKernel::finite_difference_4;
}

namespace detail {

inline std::size_t periodic(int i, int n) { return std::size_t(((i % n) + n) % n); }

/// The stencil times `scale` as out = a (f(+1) - f(-1)) + b (f(+2) - f(-2)) along an axis with
/// cells of h Mpc/h: a = scale/(2h), b = 0 (finite_difference_2) or a = scale 8/(12h),
/// b = -scale/(12h) (finite_difference_4). Every backend forms out with difference_value.
template <class T>
struct StencilCoefficients {
  T a, b;
};
template <class T>
StencilCoefficients<T> stencil_coefficients(GradientKernel kind, double h, double scale) {
  const double c1 = kind == GradientKernel::finite_difference_2 ? 0.5 / h : 8.0 / (12.0 * h);
  const double c2 = kind == GradientKernel::finite_difference_2 ? 0.0 : -1.0 / (12.0 * h);
  return {static_cast<T>(scale * c1), static_cast<T>(scale * c2)};
}
template <class T>
DIFFPM_HOST_DEVICE inline T difference_value(T a, T b, T p1, T m1, T p2, T m2) {
  return a * (p1 - m1) + b * (p2 - m2);
}

template <class T>
void difference_loop(const RealField<T>& in, int axis, GradientKernel kind, double scale,
                     RealField<T>& out, OutputMode mode, const char* what) {
  check_axis(axis, what);
  check_scale(scale, what);
  if (!has_real_space_stencil(kind)) {
    throw InvalidArgument(std::string(what) +
                          ": gradient kernel = " + std::to_string(static_cast<int>(kind)) +
                          " has no real-space stencil (use finite_difference_2 or _4)");
  }
  if (in.data.size() != in.grid.size()) {
    throw InvalidArgument(std::string(what) + ": input field holds " +
                          std::to_string(in.data.size()) + " values, its mesh has " +
                          std::to_string(in.grid.size()));
  }
  if (&in == &out) {
    throw InvalidArgument(std::string(what) +
                          ": output is the input field (the stencil reads "
                          "neighbours it would already have overwritten)");
  }
  if (!out.allocated_on(in.grid)) {
    if (mode == OutputMode::accumulate) {
      throw InvalidArgument(std::string(what) + ": accumulating into a field on mesh " +
                            out.grid.to_string() + ", input on " + in.grid.to_string());
    }
    out = RealField<T>(in.grid);
  }
  const Grid& g = in.grid;
  const StencilCoefficients<T> c = stencil_coefficients<T>(kind, g.cell_size(axis), scale);
  const T a = c.a, b = c.b;
  const bool accumulate = mode == OutputMode::accumulate;
  const int nx = g.n[0], ny = g.n[1], nz = g.n[2];
  const T* f = in.data.data();
  T* o = out.data.data();
  auto store = [accumulate](T& target, T value) {
    if (accumulate) {
      target += value;
    } else {
      target = value;
    }
  };
  // Along x and y the four neighbours of a row are whole rows: the inner loop runs over z,
  // contiguous, with no index arithmetic (it vectorises).
  auto rows = [&](const T* p1, const T* m1, const T* p2, const T* m2, T* target) {
    for (int k = 0; k < nz; ++k)
      store(target[k], difference_value(a, b, p1[k], m1[k], p2[k], m2[k]));
  };
  if (axis != 2) {
    DIFFPM_OMP(omp parallel for collapse(2) schedule(static))
    for (int i = 0; i < nx; ++i) {
      for (int j = 0; j < ny; ++j) {
        // The row s cells away along `axis` (x or y), wrapped periodically.
        auto row = [&](int s) {
          return axis == 0 ? f + g.index(int(periodic(i + s, nx)), j, 0)
                           : f + g.index(i, int(periodic(j + s, ny)), 0);
        };
        rows(row(1), row(-1), row(2), row(-2), o + g.index(i, j, 0));
      }
    }
  } else {
    DIFFPM_OMP(omp parallel for collapse(2) schedule(static))
    for (int i = 0; i < nx; ++i) {
      for (int j = 0; j < ny; ++j) {
        const T* r = f + g.index(i, j, 0);
        T* target = o + g.index(i, j, 0);
        auto edge = [&](int k) {
          auto at = [&](int s) { return r[periodic(k + s, nz)]; };
          store(target[k], difference_value(a, b, at(1), at(-1), at(2), at(-2)));
        };
        // Two cells at each end wrap around; those between need no index arithmetic.
        const int head = nz < 2 ? nz : 2, tail = nz - 2 > head ? nz - 2 : head;
        for (int k = 0; k < head; ++k) edge(k);
        for (int k = head; k < tail; ++k) {
          store(target[k], difference_value(a, b, r[k + 1], r[k - 1], r[k + 2], r[k - 2]));
        }
        for (int k = tail; k < nz; ++k) edge(k);
      }
    }
  }
}

}  // namespace detail

/// out (=|+=) scale D_axis in: the central difference of `kind` (finite_difference_2 or _4)
/// along `axis` (0 = x, 1 = y, 2 = z) on the periodic mesh, i.e. the real-space form of
/// apply_gradient(..., kind, ...). `out` must be a different field from `in`; with
/// OutputMode::overwrite it is (re)allocated on in's mesh if needed. Throws InvalidArgument for
/// the exact kernel, a bad axis or scale, or mismatched fields.
template <class T>
void apply_difference(const RealField<T>& in, int axis, GradientKernel kind, double scale,
                      RealField<T>& out, OutputMode mode = OutputMode::overwrite) {
  detail::difference_loop(in, axis, kind, scale, out, mode, "finite difference");
}

/// The transpose of apply_difference: the stencils are antisymmetric, D^T = -D.
template <class T>
void apply_difference_adjoint(const RealField<T>& in, int axis, GradientKernel kind, double scale,
                              RealField<T>& out, OutputMode mode = OutputMode::overwrite) {
  detail::difference_loop(in, axis, kind, -scale, out, mode, "finite difference adjoint");
}

}  // namespace diffpm::mesh
