/// \file
/// \brief Physical constants, in the units diffpm uses: lengths in Mpc/h, H0 = 100 h km/s/Mpc.
#pragma once

namespace diffpm::constants {

/// Speed of light in km/s (exact, SI 2019).
inline constexpr double speed_of_light_km_s = 299792.458;

/// Hubble distance c/H0 in Mpc/h: with H0 = 100 h km/s/Mpc it is c / (100 km/s) exactly.
inline constexpr double hubble_distance = speed_of_light_km_s / 100.0;

/// Photon density today for T_CMB = 1 K, Omega_gamma h^2 / T^4:
/// rho_gamma = 4 sigma_SB T^4 / c^3 over rho_crit/h^2 = 3 (100 km/s/Mpc)^2 / (8 pi G), with
/// sigma_SB = 5.670374419e-8 W m^-2 K^-4 (exact), c = 299792458 m/s, G = 6.67430e-11 (CODATA
/// 2018) and 1 Mpc = 3.0856775814913673e22 m. For T = 2.725 K and h = 0.7 this gives
/// Omega_gamma = 5.043186e-5, the value CLASS v2.6.3 uses in CCL's distance benchmarks.
inline constexpr double omega_gamma_h2_per_K4 = 4.4816200891514884e-07;

/// Energy density of one species of massless neutrinos relative to photons, (7/8)(4/11)^(4/3):
/// instantaneous decoupling; N_eff absorbs the rest.
inline constexpr double neutrino_to_photon_per_species = 0.22710731766023898;

}  // namespace diffpm::constants
