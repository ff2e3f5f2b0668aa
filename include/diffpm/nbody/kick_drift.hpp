/// \file
/// \brief The kick and drift updates of the leapfrog and their adjoints.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "diffpm/core/deterministic_sum.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::nbody {

namespace detail {
inline void check_same_size(std::size_t a, std::size_t b, const char* what) {
  if (a != b) {
    throw InvalidArgument(std::string(what) + ": " + std::to_string(a) + " and " +
                          std::to_string(b) + " particles do not match");
  }
}
}  // namespace detail

/// y += c v for every particle: the drift x += D p and the kick p += K F, on views of the
/// caller's memory (particles/particles.hpp; y and v of the same size).
template <class T>
void axpy(particles::Vec3View<T> y, double c, particles::ConstView<T> v) {
  detail::check_same_size(y.size, v.size, "kick/drift");
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(y.size);
  const T cf = static_cast<T>(c);
  auto* yp = particles::packed(y);
  const auto* vp = particles::packed(v);
  if (yp && vp) {  // contiguous triples: one flat loop the compiler can vectorise, same bits
    T* ys = yp->data();
    const T* vs = vp->data();
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t j = 0; j < 3 * n; ++j) ys[j] += cf * vs[j];
    return;
  }
  DIFFPM_OMP(omp parallel for schedule(static))
  for (std::ptrdiff_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) y(std::size_t(i), d) += cf * v(std::size_t(i), d);
}
/// The same on diffpm's containers.
template <class T>
void axpy(std::vector<std::array<T, 3>>& y, double c, const std::vector<std::array<T, 3>>& v) {
  axpy(particles::view(y), c, particles::view(v));
}

/// Adjoint of y' = y + c v (docs/physics.md, "Adjoint of the leapfrog"): y_bar passes through
/// unchanged, v_bar += c y_bar, and the coefficient's adjoint is c_bar = <y_bar, v>. For the
/// drift (y = x, v = p, c = D) that is p_bar += D x_bar, dL/dD = <x_bar, p>; for the kick
/// (y = p, v = F, c = K), F_bar += K p_bar, dL/dK = <p_bar, F>. Returns c_bar, summed in double
/// with the same bits for any thread count (core/deterministic_sum.hpp).
template <class T>
double axpy_adjoint(particles::ConstView<T> y_bar, double c, particles::ConstView<T> v,
                    particles::Vec3View<T> v_bar) {
  detail::check_same_size(y_bar.size, v.size, "kick/drift adjoint");
  detail::check_same_size(v_bar.size, v.size, "kick/drift adjoint");
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(v.size);
  const T cf = static_cast<T>(c);
  const auto* yp = particles::packed(y_bar);
  const auto* vp = particles::packed(v);
  auto* vbp = particles::packed(v_bar);
  if (yp && vp && vbp) {  // contiguous triples: plain indexing, the same sums in the same order
    const T* ys = yp->data();
    const T* vs = vp->data();
    T* vbs = vbp->data();
    return deterministic_sum(n, [&](std::ptrdiff_t i) {
      double s = 0.0;
      for (int d = 0; d < 3; ++d) {
        const std::ptrdiff_t j = 3 * i + d;
        vbs[j] += cf * ys[j];
        s += double(ys[j]) * double(vs[j]);
      }
      return s;
    });
  }
  return deterministic_sum(n, [&](std::ptrdiff_t i) {
    const std::size_t j = std::size_t(i);
    double s = 0.0;
    for (int d = 0; d < 3; ++d) {
      v_bar(j, d) += cf * y_bar(j, d);
      s += double(y_bar(j, d)) * double(v(j, d));
    }
    return s;
  });
}
/// The same on diffpm's containers; an empty v_bar is first made zeros of v's size.
template <class T>
double axpy_adjoint(const std::vector<std::array<T, 3>>& y_bar, double c,
                    const std::vector<std::array<T, 3>>& v, std::vector<std::array<T, 3>>& v_bar) {
  if (v_bar.empty()) v_bar.assign(v.size(), {T(0), T(0), T(0)});
  return axpy_adjoint(particles::view(y_bar), c, particles::view(v), particles::view(v_bar));
}

}  // namespace diffpm::nbody
