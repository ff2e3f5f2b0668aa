#!/usr/bin/env python3
"""Reference tables for diffpm's halofit and Limber C_ell, computed with pyccl (LSSTDESC/CCL)
and CAMB (cmbant/CAMB).

Writes, next to this script:
  halofit_pk.txt  P_lin and P_nl (halofit, Takahashi et al. 2012) at k = 1e-3..10 h/Mpc,
                  z = 0, 0.5, 1, 2, 3, for the cosmologies in COSMOLOGIES.
  halofit_cl.txt  Limber convergence C_ell with halofit for CCL's two "analytic" Gaussian
                  source bins, in the CCL benchmark convention (no spin-2 prefactor).
  camb_w0wa_plin_z0.txt, camb_w0wa_pk.txt
                  CAMB's linear P(k, z=0) table, and its linear and halofit (halofit_version
                  "takahashi") spectra at z = 0..3 for a w0wa model, where CAMB evaluates the
                  dark-energy terms at w(a) = w0 + wa (1 - a) as diffpm does.

Run with pyccl 3.3.6 and camb 2.0.5 (pip install pyccl==3.3.6 camb==2.0.5):
  python3 generate_halofit.py
See README.md for the conventions. Nobody on the diffpm team wrote the numbers: they are
pyccl's and CAMB's, pyccl's with its accuracy settings tightened (below) so that they carry more
digits than the agreement we assert.
"""
import os

import camb
import numpy as np
import pyccl as ccl

HERE = os.path.dirname(os.path.abspath(__file__))

# name: (Omega_c, Omega_b, h, n_s, sigma8, w0). wa = 0 throughout: for wa != 0 pyccl maps the
# model onto a constant-w one (Casarini et al. 2016) before applying halofit, which diffpm does
# not do (it uses w(a) = w0 + wa (1 - a) at each a, like CAMB's halofit_takahashi).
COSMOLOGIES = {
    "cosmolss": (0.30, 0.00, 0.70, 0.96, 0.80, -1.0),   # CCL's Limber benchmark cosmology
    "lcdm": (0.25, 0.05, 0.70, 0.96, 0.80, -1.0),       # CCL model 1
    "wcdm": (0.25, 0.05, 0.70, 0.96, 0.80, -0.9),       # CCL model 2
    "phantom": (0.22, 0.04, 0.72, 1.00, 0.90, -1.15),
}
REDSHIFTS = [0.0, 0.5, 1.0, 2.0, 3.0]
K_H = 10.0 ** (-3.0 + 0.1 * np.arange(41))  # h/Mpc


def tighten():
    """Finer splines and tighter integrals than pyccl's defaults (global, before any Cosmology)."""
    ccl.spline_params.N_K = 2000            # k samples per decade of the P(k, a) splines
    ccl.spline_params.K_MAX_SPLINE = 1e3    # 1/Mpc
    ccl.spline_params.A_SPLINE_NA_PK = 400  # a samples, linear part (a > 0.1)
    ccl.spline_params.A_SPLINE_NLOG_PK = 100
    ccl.gsl_params.INTEGRATION_SIGMAR_EPSREL = 1e-9  # sigma8, and halofit's k_sigma, n_eff, C
    ccl.gsl_params.INTEGRATION_LIMBER_EPSREL = 1e-8
    ccl.gsl_params.INTEGRATION_EPSREL = 1e-8
    ccl.gsl_params.ODE_GROWTH_EPSREL = 1e-10
    ccl.gsl_params.INTEGRATION_DISTANCE_EPSREL = 1e-10


def cosmology(name):
    oc, ob, h, ns, s8, w0 = COSMOLOGIES[name]
    # No radiation (Omega_g = 0, N_eff = 0), no neutrinos; T_CMB = 2.7 K sets Theta_2.7 = 1 in
    # BBKS, as in CCL's BBKS and Limber benchmarks.
    return ccl.Cosmology(Omega_c=oc, Omega_b=ob, h=h, n_s=ns, sigma8=s8, w0=w0, wa=0.0,
                         Neff=0.0, m_nu=0.0, T_CMB=2.7, Omega_g=0.0, Omega_k=0.0,
                         transfer_function="bbks", matter_power_spectrum="halofit")


def power_table():
    rows = []
    for i, name in enumerate(COSMOLOGIES):
        c = cosmology(name)
        h = c["h"]
        for z in REDSHIFTS:
            a = 1.0 / (1.0 + z)
            plin = ccl.linear_matter_power(c, K_H * h, a) * h**3
            pnl = ccl.nonlin_matter_power(c, K_H * h, a) * h**3
            for k, pl, pn in zip(K_H, plin, pnl):
                rows.append((i, z, k, pl, pn))
    header = ("pyccl %s halofit (Takahashi et al. 2012) on BBKS, see README.md\n"
              "cosmology index: %s\n"
              "columns: cosmology z k[h/Mpc] P_lin[(Mpc/h)^3] P_nl[(Mpc/h)^3]"
              % (ccl.__version__, ", ".join("%d=%s" % (i, n) for i, n in enumerate(COSMOLOGIES))))
    np.savetxt(os.path.join(HERE, "halofit_pk.txt"), rows, header=header,
               fmt=["%d", "%.2f", "%.6e", "%.12e", "%.12e"])


def cl_table():
    c = cosmology("cosmolss")
    z = np.linspace(0.0, 3.0, 6001)
    bins = [np.exp(-0.5 * ((z - m) / 0.15) ** 2) for m in (1.0, 1.5)]
    # CCL's shear tracer carries the spin-2 factor sqrt((l+2)!/(l-2)!)/(l+1/2)^2, which it
    # evaluates by a series for l > 10 (a 6e-5 error at l = 11). To get the convergence
    # convention exactly, the lensing kernel CCL computed is put into a plain tracer with no
    # ell-dependent factor (der_bessel = der_angles = 0).
    chi = np.linspace(0.0, ccl.comoving_radial_distance(c, 1.0 / 4.0), 20001)
    tracers = []
    for n in bins:
        kernel = ccl.WeakLensingTracer(c, dndz=(z, n), n_samples=4096).get_kernel(chi)[0]
        t = ccl.Tracer()
        t.add_tracer(c, kernel=(chi, kernel), der_bessel=0, der_angles=0)
        tracers.append(t)
    ells = np.concatenate([np.arange(2, 52), np.arange(57, 2998, 6)]).astype(float)
    cols = [ells]
    for i, j in ((0, 0), (0, 1), (1, 1)):
        cols.append(ccl.angular_cl(c, tracers[i], tracers[j], ells))
    header = ("pyccl %s Limber convergence C_ell, halofit, cosmolss cosmology (README.md)\n"
              "bins: n ~ exp(-(z - 1.0)^2 / (2 0.15^2)), exp(-(z - 1.5)^2 / (2 0.15^2))\n"
              "columns: ell C_11 C_12 C_22" % ccl.__version__)
    np.savetxt(os.path.join(HERE, "halofit_cl.txt"), np.array(cols).T, header=header,
               fmt=["%.0f", "%.12e", "%.12e", "%.12e"])


def camb_tables():
    """A w0wa model through CAMB (photons at 2.7255 K, N_eff = 3.046 massless, PPF dark energy)."""
    h, w0, wa = 0.7, -0.9, -0.3
    pars = camb.set_params(H0=100 * h, ombh2=0.05 * h * h, omch2=0.25 * h * h, ns=0.96,
                           As=2.1e-9, mnu=0.0, num_massive_neutrinos=0, nnu=3.046, TCMB=2.7255,
                           w=w0, wa=wa, dark_energy_model="ppf", halofit_version="takahashi")
    pars.set_matter_power(redshifts=REDSHIFTS, kmax=200.0, nonlinear=True, k_per_logint=50)
    pars.NonLinear = camb.model.NonLinear_pk
    res = camb.get_results(pars)
    sigma8 = res.get_sigma8_0()
    lin = res.get_matter_power_interpolator(nonlinear=False, hubble_units=True, k_hunit=True,
                                            extrap_kmax=1e6)
    nl = res.get_matter_power_interpolator(nonlinear=True, hubble_units=True, k_hunit=True,
                                           extrap_kmax=1e6)
    model = ("CAMB %s, Omega_c = 0.25, Omega_b = 0.05, h = 0.7, n_s = 0.96, A_s = 2.1e-9 "
             "(sigma8 = %.16g), w0 = %g, wa = %g (PPF), T_CMB = 2.7255, N_eff = 3.046 massless, "
             "no massive neutrinos" % (camb.__version__, sigma8, w0, wa))
    kh = 10.0 ** np.linspace(-4.0, 2.2, 621)
    np.savetxt(os.path.join(HERE, "camb_w0wa_plin_z0.txt"), np.array([kh, lin.P(0.0, kh)]).T,
               header=model + "\ncolumns: k[h/Mpc] P_lin(k, z=0)[(Mpc/h)^3]", fmt="%.12e")
    k = 10.0 ** (-2.0 + 0.1 * np.arange(31))
    rows = []
    for z in REDSHIFTS:
        for kk, pl, pn in zip(k, lin.P(z, k), nl.P(z, k)):
            rows.append((z, kk, pl, pn))
    np.savetxt(os.path.join(HERE, "camb_w0wa_pk.txt"), rows,
               header=model + "\ncolumns: z k[h/Mpc] P_lin[(Mpc/h)^3] P_nl[(Mpc/h)^3] "
               "(halofit_version takahashi)", fmt=["%.2f", "%.6e", "%.12e", "%.12e"])


if __name__ == "__main__":
    tighten()
    power_table()
    cl_table()
    camb_tables()
