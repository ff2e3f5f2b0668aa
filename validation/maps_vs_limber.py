#!/usr/bin/env python3
"""Convergence maps of diffpm-sim --lensing against Limber: the map's C_ell over diffpm's own
Limber integral with halofit (the cl_limber_halofit column of cl_<i>.csv) and over a Limber
integral computed here with CAMB's HMcode-2020 and with EuclidEmulator2 (its boost times CAMB's
linear P; the package sets the boost to 1 below its k range, 0.0087 to 9.41 h/Mpc, and holds
it constant above).

Source plane at z_s = 1 (--z-source 1), 5 x 5 deg, 256^2 pixels, box 256 Mpc/h replicated with
random shifts and orientations; each configuration is averaged over --realizations runs
(--seed and --shift-seed 1..R). The linear P(k) is CAMB's (--pk-file), as in
power_vs_emulators.py. The Limber integral here is the one of docs/physics.md,
C_ell = int_0^chi_s dchi W(chi)^2 / chi^2 P((ell + 1/2) / chi, z(chi)),
W = 3/2 Omega_m (H0/c)^2 chi (1 - chi/chi_s) / a, with CAMB's chi(z), averaged over the modes
of each bin of the map as diffpm's columns are. Writes
docs/validation/maps_limber.png and the section 'maps_vs_limber' of docs/validation.md.

Example: validation/.venv/bin/python validation/maps_vs_limber.py --sim build/examples/diffpm-sim
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import common as C

BOX = 256.0
Z_SOURCE = 1.0
FOV, PIXELS = 5.0, 256
# particles, B, steps, PGD: the last is the second with diffpm-sim --pgd (the parameters fitted
# against EuclidEmulator2 for 2 Mpc/h, B = 2, 20 steps: docs/validation/pgd.md)
CONFIGS = [(64, 2, 10, False), (128, 2, 20, False), (128, 2, 20, True)]
TOLS = (0.05, 0.10)


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    C.common_args(p)
    p.add_argument("--realizations", type=int, default=4,
                   help="runs per configuration (seeds 1..R), averaged [4]")
    p.add_argument("--quick", action="store_true", help="only the 64^3 configuration")
    a = p.parse_args()
    if a.realizations < 1:
        C.die("--realizations must be >= 1")
    return a


def limber(refs, ell, pk, n_chi=1500):
    """C_ell of a source plane at Z_SOURCE for pk(z, k) (elementwise arrays)."""
    om = C.COSMO["Omega_m"]
    chi_s = float(refs.chi(Z_SOURCE))
    chi = np.linspace(chi_s / n_chi, chi_s * (1 - 1e-9), n_chi)
    z = refs.z_of_chi(chi)
    w = 1.5 * om / 2997.92458 ** 2 * chi * (1 - chi / chi_s) * (1 + z)
    out = []
    for l in np.atleast_1d(ell):
        k = (l + 0.5) / chi
        out.append(np.trapezoid(w * w / chi ** 2 * pk(z, k), chi))
    return np.array(out)


def binned(ell_bins, n_modes, cl_of_ell):
    """cl_of_ell averaged over the modes of the map's bins (diffpm-sim's: ceil(4 log2(P / 2))
    log bins from the fundamental 2 pi / fov to the Nyquist multipole pi P / fov, modes
    m in [-P/2, P/2)^2, zero mode excluded), tabulated at 256 log-spaced ells and interpolated
    in (ln ell, ln C) as diffpm does; the bins are matched to cl_<i>.csv by their mode counts."""
    import math
    L = FOV * (math.pi / 180.0)  # the same double arithmetic as diffpm, so ties fall alike
    nb = int(math.ceil(4.0 * math.log2(PIXELS / 2.0)))
    lo, hi = 2.0 * math.pi / L, math.pi * PIXELS / L
    step = math.log(hi / lo) / nb
    edges = np.array([lo * math.exp(b * step) for b in range(nb + 1)])
    edges[0], edges[-1] = lo, hi
    dl = 2.0 * math.pi / L
    m = np.arange(-PIXELS // 2, PIXELS // 2) * dl
    lx, ly = np.meshgrid(m, m)
    ell = np.sqrt(lx * lx + ly * ly).ravel()
    ell = ell[ell > 0]
    b = np.searchsorted(edges, ell, side="right") - 1
    keep = (b >= 0) & (b < nb)
    ell, b = ell[keep], b[keep]
    grid = np.exp(np.linspace(np.log(0.5 * edges[0]), np.log(2 * edges[-1]), 256))
    c = np.exp(np.interp(np.log(ell), np.log(grid), np.log(cl_of_ell(grid))))
    num = np.bincount(b, weights=c, minlength=nb)
    cnt = np.bincount(b, minlength=nb)
    emean = np.bincount(b, weights=ell, minlength=nb) / np.maximum(cnt, 1)
    out = []
    for e, n in zip(ell_bins, n_modes):
        j = int(np.argmin(np.abs(emean - e)))
        if cnt[j] != int(n):
            C.die(f"map bin at ell = {e:.1f} has {int(n)} modes in cl_0.csv but {cnt[j]} here")
        out.append(num[j] / cnt[j])
    return np.array(out)


def ee2_table(refs):
    """P_EE2(z, k) = boost(z, k) x CAMB linear, interpolated in (z, ln k) from a table."""
    from scipy.interpolate import RegularGridInterpolator
    zs = np.linspace(0.0, Z_SOURCE + 0.05, 43)
    ks = np.logspace(-4, 3, 500)
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        _, b = refs.ee2.get_boost(C.ee2_params(), list(zs), ks)
    table = np.array([b[i] for i in range(len(zs))])
    interp = RegularGridInterpolator((zs, np.log(ks)), table, bounds_error=False, fill_value=None)

    def pk(z, k):
        k = np.clip(k, ks[0], ks[-1])
        return interp(np.column_stack([z, np.log(k)])) * refs.plin.P(z, k, grid=False)
    return pk


def main():
    np.seterr(divide="ignore", invalid="ignore")  # map / (a cut Limber that is 0) is inf: a miss
    a = parse()
    t_start = time.perf_counter()
    refs = C.references(need_ee2=True, zmax=Z_SOURCE + 0.1)
    runner = C.Runner(a.sim, a.work, refs, a.threads, a.force)
    p_hm = lambda z, k: refs.phm.P(z, np.minimum(k, 200.0), grid=False)
    p_lin = lambda z, k: refs.plin.P(z, np.minimum(k, 200.0), grid=False)
    p_ee2 = ee2_table(refs)
    configs = CONFIGS[:1] if a.quick else CONFIGS
    rows = []
    for n, b, s, pgd in configs:
        cls, walls, cpus, cmd0 = [], 0.0, 0.0, None
        for seed in range(1, a.realizations + 1):
            out = a.work / "lensing" / (f"L{BOX:g}_N{n}_M{n * b}_S{s}_zs{Z_SOURCE:g}_seed{seed}"
                                        + ("_pgd" if pgd else ""))
            cos = [str(runner.pk_file) if f == "@PK_FILE@" else f
                   for f in C.diffpm_cosmology_flags(refs, "camb")]
            cmd = ([a.sim] + cos + ["--box", f"{BOX:g}", "--particles", str(n), "--mesh",
                   str(n * b), "--steps", str(s), "--threads", str(a.threads), "--seed", str(seed),
                   "--lensing", "--z-source", f"{Z_SOURCE:g}", "--fov", f"{FOV:g}", "--pixels",
                   str(PIXELS), "--random-shifts", "--random-orientations", "--shift-seed",
                   str(seed)] + (["--pgd"] if pgd else []) + ["--out", str(out)])
            meta = runner.run_raw(out, cmd, f"lensing N={n} B={b} {s} steps{' PGD' if pgd else ''} "
                                            f"seed {seed}")
            walls += meta["wall_s"]
            cpus += meta["cpu_s"]
            cmd0 = cmd0 or meta["command"]
            d = np.genfromtxt(out / "cl_0.csv", delimiter=",", names=True)
            cls.append(d)
        ell = cls[0]["ell"]
        nm = cls[0]["n_modes"]
        cl = np.mean([d["cl"] for d in cls], axis=0)
        cl_lin_diffpm = cls[0]["cl_limber_linear"]
        cl_hf_diffpm = cls[0]["cl_limber_halofit"]
        cl_lin = binned(ell, nm, lambda e: limber(refs, e, p_lin))
        cl_hm = binned(ell, nm, lambda e: limber(refs, e, p_hm))
        cl_ee2 = binned(ell, nm, lambda e: limber(refs, e, p_ee2))
        k_nyq = np.pi * n / BOX  # what the particles resolve: HMcode with P = 0 above it
        cl_cut = binned(ell, nm, lambda e: limber(refs, e, lambda z, k: p_hm(z, k) * (k <= k_nyq)))
        sigma = np.sqrt(2.0 / (nm * a.realizations))  # Gaussian error of the mean, relative
        rows.append(dict(n=n, b=b, s=s, pgd=pgd, ell=ell, cl=cl, sigma=sigma, hf=cl_hf_diffpm,
                         lin_d=cl_lin_diffpm, lin=cl_lin, hm=cl_hm, ee2=cl_ee2, cut=cl_cut,
                         k_nyq=k_nyq, wall=walls,
                         cpu=cpus, cmd=cmd0))
        C.log(f"N={n} B={b} {s} steps{' PGD' if pgd else ''}: {a.realizations} maps, {walls:.0f} s wall; Limber check "
              f"(here, linear / diffpm's linear column): "
              + " ".join(f"{x:.3f}" for x in cl_lin / cl_lin_diffpm))
    wall_script = time.perf_counter() - t_start
    if not a.no_docs:
        figure(a, rows)
        docs(a, rows, wall_script)


def ell_range(ell, ratio, sigma, tol):
    """The largest ell up to which every bin, from the first on, has |ratio - 1| <= tol + 2 sigma
    (sigma: the Gaussian error of the mean, relative); None if the first bin misses."""
    hi = None
    for i in range(len(ell)):
        if abs(ratio[i] - 1) > tol + 2 * sigma[i]:
            break
        hi = ell[i]
    return hi


def figure(a, rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(rows), figsize=(5 * len(rows), 6.2), sharex=True,
                             gridspec_kw=dict(height_ratios=[1, 1.3]), squeeze=False)
    for col, r in enumerate(rows):
        top, bot = axes[0, col], axes[1, col]
        e = r["ell"]
        top.loglog(e, r["cl"], "tab:red", lw=1.4, label=f"map (mean of {a.realizations})")
        top.loglog(e, r["ee2"], "k-", lw=1, label="Limber EE2")
        top.loglog(e, r["hm"], "k--", lw=1, label="Limber HMcode-2020")
        top.loglog(e, r["hf"], "tab:gray", ls="-.", lw=1, label="Limber halofit (diffpm)")
        top.loglog(e, r["lin"], "k:", lw=1, label="Limber linear")
        top.loglog(e, r["cut"], "tab:blue", ls=":", lw=1.2,
                   label=f"Limber HMcode, P = 0 for k > {r['k_nyq']:.2f} (particle Nyquist)")
        bot.fill_between(e, 1 - 2 * r["sigma"], 1 + 2 * r["sigma"], color="tab:red", alpha=0.12,
                         lw=0, label="2 x Gaussian error of the mean")
        bot.plot(e, r["cl"] / r["ee2"], "tab:red", lw=1.3, label="map / Limber EE2")
        bot.plot(e, r["cl"] / r["hm"], "tab:blue", lw=1.0, label="map / Limber HMcode")
        bot.plot(e, r["cl"] / r["hf"], "tab:gray", lw=1.0, ls="-.", label="map / Limber halofit")
        bot.plot(e, r["cut"] / r["hm"], "tab:blue", lw=1.0, ls=":",
                 label="Limber HMcode cut at the particle Nyquist / full")
        C.shade_bands(bot)
        bot.set_xscale("log")
        bot.set_ylim(0.5, 1.3)
        top.set_title(f"N={r['n']} B={r['b']} {r['s']} steps{' + PGD' if r['pgd'] else ''}, "
                      f"z_s = {Z_SOURCE:g}, "
                      f"{FOV:g} deg, {PIXELS}^2 px", fontsize=9)
        bot.set_xlabel("ell")
        top.legend(fontsize=7, loc="lower left")
        bot.legend(fontsize=7, loc="lower left")
    axes[0, 0].set_ylabel("C_ell (convergence)")
    axes[1, 0].set_ylabel("ratio")
    fig.tight_layout()
    C.save_figure(fig, "maps_limber.png")
    plt.close(fig)


def docs(a, rows, wall_script):
    walls = sum(r["wall"] for r in rows)
    cpus = sum(r["cpu"] for r in rows)
    L = [f"Command: `{C.command_line()}`  ",
         f"diffpm-sim --lensing: {len(rows)} configurations x {a.realizations} realizations, "
         f"--threads {a.threads}, {C.fmt_time(walls)} of wall time ({C.fmt_time(cpus)} CPU); the "
         f"script took {C.fmt_time(wall_script)} in the call that wrote this (cached runs are not "
         "rerun). One of the runs:",
         "", "```", rows[0]["cmd"], "```", "",
         "ell up to which every bin of the mean map spectrum, from the first (the fundamental "
         "multipole 2 pi / fov) on, is within 5% and 10% of the Limber prediction, allowing twice "
         "the Gaussian error of the mean, sigma = sqrt(2 / (n_modes R)) relative (the low ell of a "
         f"{FOV:g} deg field are dominated by sample variance); \"-\": the first bin already misses.",
         "",
         "The column 300-2000 is the largest |map / Limber - 1| over the bins with 300 < ell < "
         "2000 (the range of the nonlinear-fidelity goal), without the error allowance.",
         "",
         "| run | reference | 5% | 10% | 300-2000 | wall (CPU), all realizations |",
         "|---|---|---|---|---|---|"]
    for r in rows:
        for name, key in (("Limber EE2", "ee2"), ("Limber HMcode-2020", "hm"),
                          ("Limber halofit (diffpm)", "hf"),
                          (f"Limber HMcode, P = 0 above k = {r['k_nyq']:.2f} h/Mpc", "cut")):
            cells = []
            for t in TOLS:
                hi = ell_range(r["ell"], r["cl"] / r[key], r["sigma"], t)
                cells.append("-" if hi is None else f"{hi:.0f}")
            band = (r["ell"] > 300) & (r["ell"] < 2000)
            cells.append(f"{100 * np.max(np.abs(r['cl'][band] / r[key][band] - 1)):.1f}%")
            label = f"N={r['n']} B={r['b']} {r['s']} steps" + (" + PGD (--pgd)" if r["pgd"] else "")
            L.append(f"| {label} | {name} | " + " | ".join(cells)
                     + f" | {r['wall']:.0f} s ({r['cpu']:.0f} s) |")
    chk = max(float(np.max(np.abs(r["lin"] / r["lin_d"] - 1))) for r in rows)
    for r in rows:
        if r["pgd"]:
            continue  # the same cut as the run without PGD
        c = r["cut"] / r["hm"]
        L.append("")
        L.append(f"Resolution, N={r['n']}: setting P(k) = 0 above the particle Nyquist frequency "
                 f"k = {r['k_nyq']:.2f} h/Mpc removes "
                 + ", ".join(f"{100 * (1 - np.interp(np.log(x), np.log(r['ell']), c)):.0f}% at "
                             f"ell = {x:g}" for x in (300, 1000, 3000))
                 + " of the HMcode Limber C_ell: near the observer, a multipole ell probes "
                 "k = (ell + 1/2) / chi beyond what the particles resolve.")
    L += ["", f"Check of the Limber integral here: with CAMB's linear P it agrees with diffpm's "
          f"cl_limber_linear column (same linear P, both averaged over the modes of each bin) to "
          f"{100 * chk:.1f}% at worst over the bins.", "",
          "![Convergence C_ell against Limber](validation/maps_limber.png)", ""]
    C.update_doc_section("maps_vs_limber", "\n".join(L))


if __name__ == "__main__":
    main()
