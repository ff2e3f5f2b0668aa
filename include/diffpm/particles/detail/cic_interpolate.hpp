/// \file
/// \brief The per-particle CIC interpolation (readout value and its position gradient), shared by
/// the CPU readouts and the device readout so both do the same arithmetic.
#pragma once

#include <cstddef>

#include "diffpm/core/host_device.hpp"
#include "diffpm/particles/detail/cic_weights.hpp"

namespace diffpm::particles::detail {

/// value = sum_c W_c(x) m[idx_c] and, with Gradient, grad_d = sum_c dW_c/dx_d m[idx_c], the
/// corners summed in order c = 0..7 from zero. G (CicGeometry or StridedCicGeometry) only places
/// the 8 points; the weights are those of cic_weights.hpp, formed w_x w_y w_z left to right
/// (products only), so cic_stencil and cic_stencil_gradient give the same weights.
template <bool Gradient, class T, class G>
DIFFPM_HOST_DEVICE inline void interpolate_at(const T* m, const T x[3], const G& g, T& value,
                                              T* grad) {
  std::size_t idx[8];
  T w[8], dw[3][8];
  if constexpr (Gradient) {
    cic_stencil_gradient(x, g, idx, w, dw);
    grad[0] = grad[1] = grad[2] = T(0);
  } else {
    cic_stencil(x, g, idx, w);
  }
  value = T(0);
  for (int c = 0; c < 8; ++c) {
    const T mc = m[idx[c]];
    value += w[c] * mc;
    if constexpr (Gradient) {
      grad[0] += dw[0][c] * mc;
      grad[1] += dw[1][c] * mc;
      grad[2] += dw[2][c] * mc;
    }
  }
}

}  // namespace diffpm::particles::detail
