/// \file
/// \brief The cosmology a pipeline stage takes: an interface of the functions of the scale
/// factor that the LPT, N-body, initial-condition and lensing stages use.
#pragma once

#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/detail/curvature.hpp"

namespace diffpm::cosmology {

/// What every stage of the pipeline needs from a cosmology, and nothing more: the expansion
/// E(a), the linear and second-order growth D1, D2 and their rates, the comoving distance and
/// its inverse, Omega_m (the Poisson source), Omega_k (the geometry) and P_lin(k, a).
/// diffpm's own Cosmology<T> implements it from Parameters<T> (T = double for values, T =
/// ParameterDual for exact derivatives with respect to the parameters); TabulatedCosmology
/// (tabulated.hpp) implements it in double from a user's tables (CLASS, CAMB, a modified-gravity
/// or N-body code's own); a user can derive from Model<double> with functions of their own
/// (docs/conventions.md, "The cosmology interface").
///
/// Conventions every implementation must follow (the stages rely on them, and nothing checks
/// them at run time):
/// - the scale factor a is in (0, 1], a = 1 today; lengths are in Mpc/h, wavenumbers in h/Mpc;
/// - queries outside the range an implementation covers throw OutOfRange naming the value and
///   the range (Background and Growth do so for a outside [a_min, 1]);
/// - D1(1) = 1; D2 has the normalisation and sign of Growth: the growing solution of the 2LPT
///   growth equation with D2 = -3/7 D1^2 in matter domination (negative), both D1 and D2
///   divided by the same unnormalised D1(1) (resp. its square);
/// - x = q + D1 Psi1 + D2 Psi2 and the FastPM momentum p = a^3 E dx/da (docs/physics.md).
///
/// Derived quantities that a stage needs are functions here, so that every stage computes them
/// the same way: dD1/dln a and dD2/dln a are virtual with the defaults f1 D1 and f2 D2 (diffpm's
/// Cosmology overrides them with the slopes of its growth tables, so that its step and LPT
/// factors keep their bits); f_K and c_K are not virtual, since they follow from Omega_k and chi
/// alone in any Friedmann-Lemaitre-Robertson-Walker metric.
///
/// The stages hold a Model by reference (FastPmFactors, LensingEfficiency): it must outlive
/// them.
template <class T>
class Model {
 public:
  virtual ~Model() = default;

  /// E(a) = H(a)/H0, dimensionless, > 0, E(1) = 1.
  virtual T E(const T& a) const = 0;

  /// Omega_m today: the source of the Poisson equation lap phi = 3/2 Omega_m delta in the FastPM
  /// variables (nbody/fastpm_factors.hpp), and of the lensing kernel 3/2 Omega_m (H0/c)^2.
  virtual T Omega_m() const = 0;

  /// Omega_k today (0 by default: flat). Sets f_K and c_K; the lightcone and Born weights
  /// refuse Omega_k != 0 (lensing/born.hpp).
  virtual T Omega_k() const { return T(0.0); }

  /// D1(a), the linear growth factor, D1(1) = 1.
  virtual T growth_factor(const T& a) const = 0;
  /// f1 = dln D1 / dln a (about Omega_m(a)^0.55 in LCDM).
  virtual T growth_rate(const T& a) const = 0;
  /// D2(a), the second-order growth factor: negative, -3/7 D1^2 in matter domination.
  virtual T growth_factor_2(const T& a) const = 0;
  /// f2 = dln D2 / dln a (about 2 f1 in matter domination).
  virtual T growth_rate_2(const T& a) const = 0;
  /// dD1/dln a = f1 D1. The FastPM kick and drift (G_f = a^2 E dD1/dln a) and the LPT momenta
  /// use this function, never f1 D1 written out.
  virtual T growth_factor_dlna(const T& a) const { return growth_rate(a) * growth_factor(a); }
  /// dD2/dln a = f2 D2 (negative), for the 2LPT momentum.
  virtual T growth_factor_2_dlna(const T& a) const { return growth_rate_2(a) * growth_factor_2(a); }

  /// chi(a) = (c/H0) int_a^1 da' / (a'^2 E(a')), the comoving radial distance in Mpc/h
  /// (c/H0 = 2997.92458 Mpc/h); chi(1) = 0, decreasing in a.
  virtual T comoving_distance(const T& a) const = 0;
  /// a(chi), the inverse of comoving_distance, for chi >= 0 in Mpc/h (the lightcone's planes).
  virtual T scale_factor_at_distance(const T& chi) const = 0;

  /// f_K(chi), the transverse comoving distance in Mpc/h at comoving radial distance chi
  /// (chi when flat; detail::transverse_distance for the curved forms).
  T transverse_distance(const T& chi) const { return detail::transverse_distance(Omega_k(), chi); }
  /// c_K(chi) = df_K/dchi (1 when flat), for the addition theorem of f_K
  /// (lensing/lensing_efficiency.hpp).
  T curvature_cosine(const T& chi) const { return detail::curvature_cosine(Omega_k(), chi); }

  /// P_lin(k, a), the linear matter power spectrum in (Mpc/h)^3 at k in h/Mpc (finite, > 0).
  /// The initial conditions draw the linear field at a = 1 from it (ic/linear_field.hpp) and
  /// LPT scales it by D1(a): a model with scale-dependent growth must keep the two consistent.
  virtual T linear_power(double k, const T& a) const = 0;

 protected:
  Model() = default;
  Model(const Model&) = default;
  Model& operator=(const Model&) = default;
};

}  // namespace diffpm::cosmology
