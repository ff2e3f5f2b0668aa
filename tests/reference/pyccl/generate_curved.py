#!/usr/bin/env python3
"""Reference table for diffpm's Limber C_ell in curved universes, computed with pyccl
(LSSTDESC/CCL).

Writes, next to this script:
  curved_cl.txt  Limber convergence C_ell with the linear spectrum for CCL's two "analytic"
                 Gaussian source bins, in the CCL benchmark convention (no spin-2 prefactor), for
                 the cosmolss cosmology with Omega_k = 0, +0.05 and -0.05.

Run with pyccl 3.3.6 (pip install pyccl==3.3.6):
  python3 generate_curved.py
See README.md for the conventions. The numbers are pyccl's: its distances, f_K (its "sinn"),
growth, BBKS spectrum, lensing kernel and Limber integrator, with accuracy settings tightened as
in generate_halofit.py. One thing is changed on purpose, the wavenumber at which the Limber
integral samples P in a curved universe (README.md): Bartelmann & Schneider's
k = (l + 1/2) / f_K(chi), where CCL uses (l + 1/2) / chi.
"""
import os

import numpy as np
import pyccl as ccl

HERE = os.path.dirname(os.path.abspath(__file__))
OMEGA_K = [0.0, 0.05, -0.05]
# ells 2..3000, about 25% apart (38 values).
ELLS = np.unique(np.round(np.geomspace(2.0, 3000.0, 38)))


def tighten():
    """The settings of generate_halofit.py's tighten() (global, before any Cosmology)."""
    ccl.spline_params.N_K = 2000            # k samples per decade of the P(k, a) splines
    ccl.spline_params.K_MAX_SPLINE = 1e3    # 1/Mpc
    ccl.spline_params.A_SPLINE_NA_PK = 400  # a samples, linear part (a > 0.1)
    ccl.spline_params.A_SPLINE_NLOG_PK = 100
    ccl.gsl_params.INTEGRATION_SIGMAR_EPSREL = 1e-9
    ccl.gsl_params.INTEGRATION_LIMBER_EPSREL = 1e-8
    ccl.gsl_params.INTEGRATION_EPSREL = 1e-8
    ccl.gsl_params.ODE_GROWTH_EPSREL = 1e-10
    ccl.gsl_params.INTEGRATION_DISTANCE_EPSREL = 1e-10


def cosmology(omega_k):
    # cosmolss (CCL's Limber benchmark cosmology) with curvature; no radiation, no neutrinos,
    # BBKS with T_CMB = 2.7 K (Theta_2.7 = 1), as in generate_halofit.py.
    return ccl.Cosmology(Omega_c=0.30, Omega_b=0.0, h=0.7, n_s=0.96, sigma8=0.8, w0=-1.0,
                         wa=0.0, Neff=0.0, m_nu=0.0, T_CMB=2.7, Omega_g=0.0, Omega_k=omega_k,
                         transfer_function="bbks", matter_power_spectrum="linear")


def curved_power(c):
    """P_lin sampled at k chi/f_K(chi): CCL's integrand at k = (l + 1/2)/chi then holds
    P_lin((l + 1/2)/f_K(chi)), Bartelmann & Schneider's Limber wavenumber. Splined in ln P
    on CCL's own (tightened) grid of a and k."""
    def ln_pk(k, a):
        chi = ccl.comoving_radial_distance(c, a)
        fk = ccl.comoving_angular_distance(c, a)
        ratio = chi / fk if chi > 0.0 else 1.0
        return np.log(ccl.linear_matter_power(c, k * ratio, a))
    return ccl.Pk2D.from_function(ln_pk, is_logp=True)


def cl_rows(omega_k):
    c = cosmology(omega_k)
    z = np.linspace(0.0, 3.0, 6001)
    bins = [np.exp(-0.5 * ((z - m) / 0.15) ** 2) for m in (1.0, 1.5)]
    # CCL's lensing kernel 3/2 Omega_m (H0/c)^2 chi q(chi) / a with
    # q = int dz n f_K(chi_s - chi) / f_K(chi_s), put into a plain tracer (no ell-dependent
    # factor, as in generate_halofit.py). CCL's Limber integrand divides by chi^2 and the
    # kernels carry chi, so only P's argument differs from Bartelmann & Schneider's formula.
    chi = np.linspace(0.0, ccl.comoving_radial_distance(c, 1.0 / 4.0), 20001)
    kernels = [ccl.WeakLensingTracer(c, dndz=(z, n), n_samples=4096).get_kernel(chi)[0]
               for n in bins]
    # CCL integrates a cross spectrum only where both kernels exceed 5e-4 of their peaks
    # (CCL_FRAC_RELEVANT), which drops up to 3e-6 of C_12 here. So C_12 comes from the auto
    # spectrum of the summed kernel, C_12 = (C_{1+2,1+2} - C_11 - C_22) / 2: an auto spectrum's
    # cut drops only the square of that fraction.
    tracers = []
    for kernel in kernels + [kernels[0] + kernels[1]]:
        t = ccl.Tracer()
        t.add_tracer(c, kernel=(chi, kernel), der_bessel=0, der_angles=0)
        tracers.append(t)
    pk = curved_power(c)
    c11, c22, css = (ccl.angular_cl(c, t, t, ELLS, p_of_k_a=pk) for t in tracers)
    return np.array([np.full(ELLS.size, omega_k), ELLS, c11, 0.5 * (css - c11 - c22), c22]).T


if __name__ == "__main__":
    tighten()
    rows = np.concatenate([cl_rows(ok) for ok in OMEGA_K])
    header = ("pyccl %s Limber convergence C_ell, linear BBKS, cosmolss cosmology with curvature "
              "(README.md)\n"
              "P sampled at k = (l + 1/2) / f_K(chi) (Bartelmann & Schneider), not CCL's "
              "(l + 1/2) / chi\n"
              "bins: n ~ exp(-(z - 1.0)^2 / (2 0.15^2)), exp(-(z - 1.5)^2 / (2 0.15^2))\n"
              "columns: Omega_k ell C_11 C_12 C_22" % ccl.__version__)
    np.savetxt(os.path.join(HERE, "curved_cl.txt"), rows, header=header,
               fmt=["%.2f", "%.0f", "%.12e", "%.12e", "%.12e"])
