/// \file
/// \brief Linear and second-order growth factors D1, D2 and rates f1, f2 from their ODEs.
#pragma once

#include <array>
#include <vector>

#include "diffpm/cosmology/background.hpp"
#include "diffpm/cosmology/detail/hermite.hpp"
#include "diffpm/cosmology/detail/math.hpp"

namespace diffpm::cosmology {

/// Growth of matter perturbations in a smooth-dark-energy background, for any w0wa, curvature
/// and radiation content (Background).
///
/// With t = ln a and ' = d/dt (docs/physics.md; Bernardeau et al. 2002, eqs. 45 and 161-163):
///   D1'' + (2 + dlnE/dlna) D1' = 3/2 Omega_m(a) D1,
///   D2'' + (2 + dlnE/dlna) D2' - 3/2 Omega_m(a) D2 = -3/2 Omega_m(a) D1^2,
/// whose growing solution in matter domination is D2 = -3/7 D1^2 (the sign convention of
/// FastPM and pmwd: x = q + D1 Psi1 + D2 Psi2 with div Psi2 given by the 2LPT source).
///
/// Initial conditions at a_min (1e-6 by default): the growing mode of the matter-radiation
/// universe, D1 = a + 2/3 a_eq, D1' = a (Meszaros 1974; e.g. Dodelson, "Modern Cosmology",
/// eq. 7.43 with y = a/a_eq), which is D1 = a without radiation, so the unnormalised D1 -> a in
/// matter domination as in CCL; D2 = -3/7 D1^2, D2' = -6/7 D1 D1'. Curvature and dark energy
/// enter at relative order Omega_k a_min / Omega_m ~ 1e-7 there and are dropped.
///
/// The four-component system is integrated with classical RK4 on the Background's ln a grid,
/// whose half-steps hold dlnE/dlna and Omega_m(a) exactly, and queried by cubic Hermite
/// interpolation with the slopes the ODE gives at the nodes. The error is ~1e-10 at the default
/// resolution (tests/cosmology/test_growth.cpp compares with 4x finer steps).
///
/// D1 is normalised to 1 at a = 1; D2 is divided by the same D1(1)^2, so that D2 = -3/7 D1^2
/// still holds for the normalised pair in matter domination.
template <class T>
class Growth {
 public:
  explicit Growth(const Background<T>& bg) : grid_(bg.grid()), a_min_(bg.a_min()) {
    const int n = grid_.n;
    const double dt = grid_.dt;
    const auto& eps = bg.half_dlnE_dlna();
    const auto& om = bg.half_Omega_m_of_a();
    using State = std::array<T, 4>;  // D1, D1', D2, D2'
    auto rhs = [&](const State& y, int j) {
      const T damp = 2.0 + eps[j];
      const T source = 1.5 * om[j];
      return State{y[1], source * y[0] - damp * y[1], y[3],
                   source * (y[2] - y[0] * y[0]) - damp * y[3]};
    };
    auto axpy = [](const State& y, double h, const State& k) {
      return State{y[0] + h * k[0], y[1] + h * k[1], y[2] + h * k[2], y[3] + h * k[3]};
    };

    const double a0 = std::exp(grid_.start());  // = a_min up to rounding
    State y;
    y[0] = a0 + 2.0 / 3.0 * bg.a_equality();
    y[1] = T(a0);
    y[2] = -3.0 / 7.0 * y[0] * y[0];
    y[3] = -6.0 / 7.0 * y[0] * y[1];

    for (auto* v : {&D1_, &D1t_, &D1tt_, &D2_, &D2t_, &D2tt_}) v->resize(n + 1);
    auto store = [&](int i, const State& s) {
      const State d = rhs(s, 2 * i);
      D1_[i] = s[0];
      D1t_[i] = s[1];
      D1tt_[i] = d[1];
      D2_[i] = s[2];
      D2t_[i] = s[3];
      D2tt_[i] = d[3];
    };
    store(0, y);
    for (int i = 0; i < n; ++i) {
      const State k1 = rhs(y, 2 * i);
      const State k2 = rhs(axpy(y, 0.5 * dt, k1), 2 * i + 1);
      const State k3 = rhs(axpy(y, 0.5 * dt, k2), 2 * i + 1);
      const State k4 = rhs(axpy(y, dt, k3), 2 * i + 2);
      for (int c = 0; c < 4; ++c)
        y[c] = y[c] + dt / 6.0 * (k1[c] + 2.0 * k2[c] + 2.0 * k3[c] + k4[c]);
      store(i + 1, y);
    }
    norm_ = D1_[n];
  }

  /// D1(a) with D1(1) = 1.
  T growth_factor(const T& a) const { return interp(D1_, D1t_, a, "growth_factor") / norm_; }

  /// D1(a) normalised so that D1 -> a deep in matter domination (CCL's growth_factor_unnorm).
  T growth_factor_unnormalised(const T& a) const {
    return interp(D1_, D1t_, a, "growth_factor_unnormalised");
  }

  /// f1 = dln D1 / dln a.
  T growth_rate(const T& a) const {
    return interp(D1t_, D1tt_, a, "growth_rate") / interp(D1_, D1t_, a, "growth_rate");
  }

  /// D2(a) / D1_unnormalised(1)^2 (negative: -3/7 D1^2 in matter domination).
  T growth_factor_2(const T& a) const {
    return interp(D2_, D2t_, a, "growth_factor_2") / (norm_ * norm_);
  }

  /// f2 = dln D2 / dln a (about 2 f1 in matter domination).
  T growth_rate_2(const T& a) const {
    return interp(D2t_, D2tt_, a, "growth_rate_2") / interp(D2_, D2t_, a, "growth_rate_2");
  }

  /// dD1/dln a and d^2 D1/dln a^2 (normalised), for the FastPM kick and drift factors.
  T growth_factor_dlna(const T& a) const { return interp(D1t_, D1tt_, a, "growth") / norm_; }
  T growth_factor_2_dlna(const T& a) const {
    return interp(D2t_, D2tt_, a, "growth") / (norm_ * norm_);
  }

 private:
  T interp(const std::vector<T>& y, const std::vector<T>& m, const T& a, const char* what) const {
    detail::check_scale_factor(value_of(a), a_min_, what);
    const T lna = log(a);
    return detail::hermite(grid_, y, m, lna);
  }

  detail::UniformGrid grid_;
  double a_min_;
  std::vector<T> D1_, D1t_, D1tt_, D2_, D2t_, D2tt_;
  T norm_;
};

}  // namespace diffpm::cosmology
