/// \file
/// \brief Kick and drift factors of the FastPM integrator, and of plain leapfrog.
#pragma once

#include <cmath>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/detail/gauss_legendre.hpp"
#include "diffpm/cosmology/model.hpp"

namespace diffpm::nbody {

/// Time-stepping factors in the FastPM convention (Feng, Chu, Seljak & McDonald 2016,
/// arXiv:1603.00476, sec. 2.3; docs/physics.md). Equations of motion with time variable a:
///   dx/da = p / (a^3 E),   dp/da = F / (a^2 E),   F = -grad phi,  lap phi = 3/2 Omega_m delta.
/// A drift x += D p over [a0, a1] and a kick p += K F over [a0, a1]:
///
/// FastPM (default): D = [D1(a1) - D1(a0)] / G_f(a_p),  K = [G_f(a1) - G_f(a0)] / (3/2 Omega_m
/// D1(a_f)), with G_f = a^3 E dD1/da (so p = G_f Psi on the linear growing mode), a_p the time at
/// which the momentum is defined and a_f the time at which the force was computed. Since dG_f/da =
/// 3/2 Omega_m D1 / (a^2 E) (the growth ODE), the drift moves particles by exactly Delta D1 Psi and
/// the kick changes p by exactly Delta G_f Psi in linear theory: linear growth is exact for any
/// number of steps.
///
/// Plain leapfrog (option): D = int_{a0}^{a1} da / (a^3 E), K = int_{a0}^{a1} da / (a^2 E),
/// the exact integrals for a constant momentum and a constant force (8-point Gauss-Legendre
/// per interval: the integrands are smooth, the error is below 1e-12 relative for steps of
/// Delta a <= 0.1).
///
/// T is the cosmology's scalar: double, or a dual number to get dK/dtheta and dD/dtheta. Any
/// cosmology::Model serves (diffpm's Cosmology, a TabulatedCosmology, a user's own); it is held
/// by reference and must outlive the factors.
template <class T>
class FastPmFactors {
 public:
  explicit FastPmFactors(const cosmology::Model<T>& c) : c_(c) {}

  /// G_f(a) = a^3 E(a) dD1/da = a^2 E(a) dD1/dln a.
  T G_f(const T& a) const { return a * a * c_.E(a) * c_.growth_factor_dlna(a); }

  T drift(const T& a0, const T& a1, const T& a_p) const {
    return (c_.growth_factor(a1) - c_.growth_factor(a0)) / G_f(a_p);
  }

  T kick(const T& a0, const T& a1, const T& a_f) const {
    const T Om = c_.Omega_m();
    return (G_f(a1) - G_f(a0)) / (1.5 * Om * c_.growth_factor(a_f));
  }

  /// int_{a0}^{a1} da / (a^3 E) and int_{a0}^{a1} da / (a^2 E).
  T drift_leapfrog(const T& a0, const T& a1) const { return integral(a0, a1, 3); }
  T kick_leapfrog(const T& a0, const T& a1) const { return integral(a0, a1, 2); }

 private:
  T integral(const T& a0, const T& a1, int power) const {
    static const cosmology::detail::GaussLegendre gl(8);
    T sum = T(0.0);
    for (int j = 0; j < 8; ++j) {
      const T a = 0.5 * (a0 + a1) + 0.5 * (a1 - a0) * gl.nodes[j];
      T ap = a * a;
      if (power == 3) ap = ap * a;
      sum += gl.weights[j] / (ap * c_.E(a));
    }
    return 0.5 * (a1 - a0) * sum;
  }

  const cosmology::Model<T>& c_;
};

/// Which kick and drift factors a run uses: FastPM's (exact linear growth) or plain leapfrog's.
enum class Stepper { fastpm, leapfrog };

/// The three coefficients of one kick-drift-kick step from a0 to a1 (a_h = sqrt(a0 a1)):
/// p += kick_first F(x_0); x += drift p; p += kick_second F(x_1).
template <class S>
struct KdkCoefficients {
  S kick_first, drift, kick_second;
};

/// The coefficients of a stepper, computed by one function templated on the scalar: S = double
/// for the run, S = a dual number (cosmology::ParameterDual) for their derivatives with respect
/// to the cosmological parameters in the gradient pass. Both come from the same code, so the
/// values the forward run used and those the gradient differentiates cannot disagree.
template <class S = double>
struct StepFactors {
  FastPmFactors<S> factors;
  bool fastpm;
  StepFactors(const cosmology::Model<S>& cosmo, Stepper stepper)
      : factors(cosmo), fastpm(stepper == Stepper::fastpm) {}
  /// Kick over [a0, a1] with the force computed at a_force.
  S kick(const S& a0, const S& a1, const S& a_force) const {
    return fastpm ? factors.kick(a0, a1, a_force) : factors.kick_leapfrog(a0, a1);
  }
  /// Drift over [a0, a1] with the momentum defined at a_momentum.
  S drift(const S& a0, const S& a1, const S& a_momentum) const {
    return fastpm ? factors.drift(a0, a1, a_momentum) : factors.drift_leapfrog(a0, a1);
  }
  /// The step from a0 to a1: kick(a0, a_h; a0), drift(a0, a1; a_h), kick(a_h, a1; a1).
  KdkCoefficients<S> step(double a0, double a1) const {
    const S s0(a0), s1(a1), sh(std::sqrt(a0 * a1));
    return {kick(s0, sh, s0), drift(s0, s1, sh), kick(sh, s1, s1)};
  }
  /// The drift from a0 to a_s inside the step [a0, a1] (a snapshot between the boundaries),
  /// with the momentum of the step's half step. a_s is an S: a lightcone plane's scale factor
  /// depends on the parameters.
  S drift_within(double a0, double a1, const S& a_s) const {
    return drift(S(a0), a_s, S(std::sqrt(a0 * a1)));
  }
};

}  // namespace diffpm::nbody
