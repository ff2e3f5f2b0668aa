/// \file
/// \brief Cosmological parameters, their validation, and the densities derived from them.
#pragma once

#include <array>
#include <cmath>
#include <string>

#include "diffpm/autodiff/dual.hpp"
#include "diffpm/core/constants.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/scalar.hpp"

namespace diffpm::cosmology {

/// The parameters that carry derivatives, in the order of the dual-number components.
enum class Parameter : int { Omega_c, Omega_b, h, n_s, sigma8, Omega_k, w0, wa };

inline constexpr int n_parameters = 8;

inline constexpr std::array<const char*, n_parameters> parameter_names = {
    "Omega_c", "Omega_b", "h", "n_s", "sigma8", "Omega_k", "w0", "wa"};

/// Dual number with one derivative component per cosmological parameter.
using ParameterDual = Dual<n_parameters>;

/// A w0wa-CDM cosmology with curvature and, optionally, radiation.
///
/// Densities are today's, in units of the critical density. Dark energy closes the budget,
/// Omega_de = 1 - Omega_m - Omega_k - Omega_r, with the CPL equation of state
/// w(a) = w0 + wa (1 - a) (Chevallier & Polarski 2001; Linder 2003). Radiation is photons at
/// T_CMB plus N_eff species of massless neutrinos; with `radiation = false` there is none, as
/// in JaxPM, jax-cosmo and CCL's CosmoMAD benchmarks. T_CMB also sets Theta_2.7 in the
/// Eisenstein & Hu and BBKS transfer functions, with or without radiation in the background.
///
/// T is double for values, or a dual number (ParameterDual) for exact derivatives.
/// The defaults are Planck 2018 (TT,TE,EE+lowE+lensing+BAO, Planck 2018 VI, Table 2):
/// h = 0.6766, Omega_c h^2 = 0.11933, Omega_b h^2 = 0.02242, n_s = 0.9665, sigma8 = 0.8102.
template <class T>
struct Parameters {
  T Omega_c = 0.26067;
  T Omega_b = 0.048975;
  T h = 0.6766;
  T n_s = 0.9665;
  T sigma8 = 0.8102;
  T Omega_k = 0.0;
  T w0 = -1.0;
  T wa = 0.0;
  double T_CMB = 2.7255;  ///< K
  double N_eff = 3.046;   ///< massless neutrino species
  bool radiation = true;

  T& operator[](Parameter p) {
    switch (p) {
      case Parameter::Omega_c:
        return Omega_c;
      case Parameter::Omega_b:
        return Omega_b;
      case Parameter::h:
        return h;
      case Parameter::n_s:
        return n_s;
      case Parameter::sigma8:
        return sigma8;
      case Parameter::Omega_k:
        return Omega_k;
      case Parameter::w0:
        return w0;
      case Parameter::wa:
        return wa;
    }
    throw InvalidArgument("unknown cosmological parameter index " +
                          std::to_string(static_cast<int>(p)));
  }
  const T& operator[](Parameter p) const { return const_cast<Parameters&>(*this)[p]; }

  T Omega_m() const { return Omega_c + Omega_b; }
  /// Photons: Omega_gamma h^2 = 4 sigma_SB T_CMB^4 / c^3 / (rho_crit / h^2).
  T Omega_gamma() const {
    if (!radiation) return T(0.0);
    const double t2 = T_CMB * T_CMB;
    return constants::omega_gamma_h2_per_K4 * t2 * t2 / (h * h);
  }
  /// Massless neutrinos: N_eff (7/8) (4/11)^(4/3) Omega_gamma.
  T Omega_nu() const { return N_eff * constants::neutrino_to_photon_per_species * Omega_gamma(); }
  T Omega_r() const { return Omega_gamma() + Omega_nu(); }
  T Omega_de() const { return 1.0 - Omega_m() - Omega_k - Omega_r(); }
};

/// Checks that the parameters describe a universe the library can compute; throws
/// InvalidArgument naming the parameter and its value otherwise. (Conditions that depend on
/// the whole expansion history, such as E(a)^2 > 0 at all tabulated a, are checked where the
/// background is built.)
template <class T>
void validate(const Parameters<T>& p) {
  auto fail = [](const char* name, double value, const char* requirement) {
    throw InvalidArgument("invalid cosmology: " + std::string(name) + " = " + format_number(value) +
                          " (" + requirement + ")");
  };
  for (int i = 0; i < n_parameters; ++i) {
    const double v = value_of(p[static_cast<Parameter>(i)]);
    if (!std::isfinite(v)) fail(parameter_names[i], v, "must be finite");
  }
  if (!std::isfinite(p.T_CMB)) fail("T_CMB", p.T_CMB, "must be finite");
  if (!std::isfinite(p.N_eff)) fail("N_eff", p.N_eff, "must be finite");
  if (value_of(p.Omega_c) < 0) fail("Omega_c", value_of(p.Omega_c), "must be >= 0");
  if (value_of(p.Omega_b) < 0) fail("Omega_b", value_of(p.Omega_b), "must be >= 0");
  if (value_of(p.Omega_m()) <= 0) {
    fail("Omega_m = Omega_c + Omega_b", value_of(p.Omega_m()), "must be > 0");
  }
  if (value_of(p.h) <= 0) fail("h", value_of(p.h), "must be > 0");
  if (value_of(p.sigma8) <= 0) fail("sigma8", value_of(p.sigma8), "must be > 0");
  if (p.T_CMB <= 0) fail("T_CMB", p.T_CMB, "must be > 0 K");
  if (p.N_eff < 0) fail("N_eff", p.N_eff, "must be >= 0");
}

/// Converts parameters to another scalar type (values only; derivative parts start at zero).
template <class U, class T>
Parameters<U> parameters_cast(const Parameters<T>& p) {
  Parameters<U> q;
  for (int i = 0; i < n_parameters; ++i) {
    const auto k = static_cast<Parameter>(i);
    q[k] = U(value_of(p[k]));
  }
  q.T_CMB = p.T_CMB;
  q.N_eff = p.N_eff;
  q.radiation = p.radiation;
  return q;
}

/// The same parameters as dual numbers seeded with unit derivatives, one component per
/// parameter in the order of `Parameter`: anything computed from them carries its exact
/// gradient with respect to (Omega_c, Omega_b, h, n_s, sigma8, Omega_k, w0, wa).
inline Parameters<ParameterDual> seed_parameters(const Parameters<double>& p) {
  Parameters<ParameterDual> q = parameters_cast<ParameterDual>(p);
  for (int i = 0; i < n_parameters; ++i) {
    const auto k = static_cast<Parameter>(i);
    q[k] = seed_dual<n_parameters>(p[k], i);
  }
  return q;
}

}  // namespace diffpm::cosmology
