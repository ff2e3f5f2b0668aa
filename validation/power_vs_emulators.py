#!/usr/bin/env python3
"""P(k) of a ladder of diffpm-sim runs against EuclidEmulator2 and CAMB's HMcode-2020 at
z = 0, 0.5 and 1.

Every run gets CAMB's linear P(k) at z = 0 through --pk-file with CAMB's sigma8, so that the
comparison tests the nonlinear evolution and not the transfer function; one configuration is
also run with diffpm's default Eisenstein & Hu transfer to show what that choice costs. Each
configuration is a paired-fixed pair (--fixed-amplitude, white noise w and -w; Angulo &
Pontzen 2016), one pair per redshift (diffpm-sim writes P(k) at a_end only; its steps are
linear in a from a_start = 0.05 to a_end). The references are averaged over the modes of
each bin of power.csv. Writes docs/validation/power_*.png and the section
'power_vs_emulators' of docs/validation.md.

Example: validation/.venv/bin/python validation/power_vs_emulators.py --sim build/examples/diffpm-sim
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import common as C

# (particles, mesh ratio B, steps) at box 256 Mpc/h.
LADDER = [(64, 1, 10), (64, 2, 10), (64, 2, 20), (64, 2, 40),
          (128, 1, 10), (128, 2, 10), (128, 2, 40)]
EH_CONFIG = (128, 2, 40)  # also run with --transfer eh, at the first redshift only
TOLS = (0.02, 0.05, 0.10)
K_LO = 0.25  # h/Mpc: below it, one 256 Mpc/h box's finite-volume scatter reaches 2-3% per bin


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    C.common_args(p)
    p.add_argument("--box", type=float, default=256.0, help="box side in Mpc/h [256]")
    p.add_argument("--redshifts", default="0,0.5,1", help="comma-separated z [0,0.5,1]")
    p.add_argument("--seeds", default="1,2",
                   help="noise seeds; each gives a paired-fixed pair per run, averaged [1,2]")
    p.add_argument("--quick", action="store_true",
                   help="only the 64^3 runs (a test of the script, ~1 min)")
    a = p.parse_args()
    try:
        a.z = [float(x) for x in a.redshifts.split(",")]
    except ValueError:
        C.die(f"--redshifts '{a.redshifts}' is not a comma-separated list of numbers")
    try:
        a.seed_list = [int(x) for x in a.seeds.split(",")]
    except ValueError:
        C.die(f"--seeds '{a.seeds}' is not a comma-separated list of integers")
    if any(z < 0 or z > 3 for z in a.z):
        C.die("EuclidEmulator2 is validated for 0 <= z <= 3")
    return a


def main():
    a = parse()
    t_start = time.perf_counter()
    refs = C.references(need_ee2=True)
    runner = C.Runner(a.sim, a.work, refs, a.threads, a.force)
    ladder = [c for c in LADDER if not a.quick or c[0] == 64]
    configs = [(n, b, s, "camb") for n, b, s in ladder]
    if not a.quick:
        configs.append(EH_CONFIG + ("eh",))

    cache = {}

    def reference(mesh, z, which, k, n_modes):
        key = (mesh, z, which)
        if key not in cache:
            f = {"ee2": lambda kk: refs.euclidemu2(z, kk), "hm": lambda kk: refs.hmcode(z, kk),
                 "lin": lambda kk: refs.linear(z, kk)}[which]
            cache[key] = C.bin_average(a.box, mesh, k, n_modes, f)
        return cache[key]

    rows = []  # dicts: config, z, result, ratios
    for n, b, s, transfer in configs:
        for z in (a.z if transfer == "camb" else a.z[:1]):
            run = C.Run(a.box, n, n * b, s, 1.0 / (1.0 + z), transfer=transfer)
            res = runner.ensemble(run, a.seed_list)
            ee2 = reference(run.mesh, z, "ee2", res.k, res.n_modes)
            hm = reference(run.mesh, z, "hm", res.k, res.n_modes)
            lin = reference(run.mesh, z, "lin", res.k, res.n_modes)
            lin_check = float(np.max(np.abs(res.P_lin / lin - 1)))
            k, nm, (P, ee2, hm, lin, plin_col) = C.rebin(res.k, res.n_modes,
                                                           [res.P, ee2, hm, lin, res.P_lin])
            rows.append(dict(n=n, b=b, s=s, transfer=transfer, z=z, res=res, k=k, P=P,
                             r_ee2=P / ee2, r_hm=P / hm, r_lin=plin_col / lin,
                             ee2=ee2, hm=hm, lin=lin, lin_check=lin_check))
            k_max = min(10.0, k[-1])
            ks = [C.k_within(k, P / ee2, t, k_max, K_LO) for t in TOLS]
            C.log(f"  {run.label()} z={z:g}: within 2/5/10% of EE2 from k = {K_LO:g} up to k = "
                  + ", ".join(C.fmt_k(x) for x in ks) + f"  ({res.wall:.1f} s)")
    scatter = variance_check(a, runner)
    wall_script = time.perf_counter() - t_start
    if a.no_docs:
        return
    figures(a, rows)
    docs(a, rows, runner, wall_script, scatter)


def variance_check(a, runner, k_lim=0.3):
    """How much the members of a pair, and the pair means of the seeds, differ below k_lim, for
    the largest ladder run at the first redshift: the reason for pairs, seeds and wide bins."""
    from dataclasses import replace
    n, b, s = max(LADDER)
    if a.quick:
        n, b, s = max(c for c in LADDER if c[0] == 64)
    run = C.Run(a.box, n, n * b, s, 1.0 / (1.0 + a.z[0]))
    seeds = a.seed_list
    plus = [runner.run(replace(run, noise_seed=x, phase=+1)) for x in seeds]
    minus = [runner.run(replace(run, noise_seed=x, phase=-1)) for x in seeds]
    m = plus[0].k <= k_lim
    half = max(float(np.max(np.abs(p.P - q.P)[m] / (p.P + q.P)[m])) for p, q in zip(plus, minus))
    means = [0.5 * (p.P + q.P) for p, q in zip(plus, minus)]
    out = dict(run=run, k_lim=k_lim, pair_half_diff=half)
    if len(seeds) > 1:
        out["seed_half_diff"] = float(np.max(np.abs(means[0] - means[1])[m] / (means[0] + means[1])[m]))
        k, _, (m0, m1) = C.rebin(plus[0].k, plus[0].n_modes, means)
        mm = k <= k_lim
        out["seed_half_diff_rebinned"] = float(np.max(np.abs(m0 - m1)[mm] / (m0 + m1)[mm]))
    C.log(f"variance check: {out}")
    return out


def nyquist(box, n):
    return math.pi * n / box


def figures(a, rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {(1, 10): "tab:orange", (2, 10): "tab:blue", (2, 20): "tab:green",
              (2, 40): "tab:red"}
    ns = sorted({r["n"] for r in rows})
    for z in a.z:
        fig, axes = plt.subplots(2, len(ns), figsize=(5 * len(ns), 6.4), sharex=True,
                                 gridspec_kw=dict(height_ratios=[1, 1.3]), squeeze=False)
        for col, n in enumerate(ns):
            top, bot = axes[0, col], axes[1, col]
            sel = [r for r in rows if r["n"] == n and r["z"] == z and r["transfer"] == "camb"]
            ref = max(sel, key=lambda r: r["k"][-1])
            k = ref["k"]
            top.loglog(k, ref["ee2"], "k-", lw=1.6, label="EuclidEmulator2")
            top.loglog(k, ref["hm"], "k--", lw=1, label="HMcode-2020 (CAMB)")
            top.loglog(k, ref["lin"], "k:", lw=1, label="CAMB linear")
            bot.plot(k, ref["hm"] / ref["ee2"], "k--", lw=1, label="HMcode / EE2")
            for r in sel:
                c = colors.get((r["b"], r["s"]), None)
                lab = f"N={n} B={r['b']} {r['s']} steps"
                top.loglog(r["k"], r["P"], color=c, lw=0.9, label=lab)
                bot.plot(r["k"], r["r_ee2"], color=c, lw=1.1, label=lab)
            C.shade_bands(bot)
            for ax in (top, bot):
                ax.axvline(nyquist(a.box, n), color="gray", ls="--", lw=0.8)
                for b in sorted({r["b"] for r in sel}):
                    ax.axvline(nyquist(a.box, n * b), color="gray", ls=":", lw=0.8)
            bot.set_xscale("log")
            bot.set_ylim(0.7, 1.15)
            bot.set_xlabel("k [h/Mpc]   (dashed: particle Nyquist; dotted: mesh Nyquist)")
            top.set_title(f"{n}^3 particles, box {a.box:g} Mpc/h, z = {z:g}")
            top.set_ylabel("P(k) [(Mpc/h)^3]")
            bot.set_ylabel("P_diffpm / P_EE2")
            top.legend(fontsize=7, loc="lower left")
            bot.legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        C.save_figure(fig, f"power_ee2_z{z:g}.png")
        plt.close(fig)

    # Ratio to HMcode-2020, the 128^3 runs, every redshift.
    fig, axes = plt.subplots(1, len(a.z), figsize=(4.2 * len(a.z), 3.6), sharey=True,
                             squeeze=False)
    n = max(ns)
    for ax, z in zip(axes[0], a.z):
        sel = [r for r in rows if r["n"] == n and r["z"] == z and r["transfer"] == "camb"]
        for r in sel:
            ax.plot(r["k"], r["r_hm"], color=colors.get((r["b"], r["s"])), lw=1.1,
                    label=f"N={n} B={r['b']} {r['s']} steps")
        ref = max(sel, key=lambda r: r["k"][-1])
        ax.plot(ref["k"], ref["ee2"] / ref["hm"], "k-", lw=1, label="EE2 / HMcode")
        C.shade_bands(ax)
        ax.axvline(nyquist(a.box, n), color="gray", ls="--", lw=0.8)
        for b in (1, 2):
            ax.axvline(nyquist(a.box, n * b), color="gray", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_ylim(0.7, 1.15)
        ax.set_title(f"z = {z:g}")
        ax.set_xlabel("k [h/Mpc]")
    axes[0, 0].set_ylabel("P_diffpm / P_HMcode-2020")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    C.save_figure(fig, "power_hmcode.png")
    plt.close(fig)

    # Eisenstein & Hu transfer against CAMB's linear P(k), same configuration.
    eh = [r for r in rows if r["transfer"] == "eh"]
    if eh:
        n, b, s = EH_CONFIG
        zs = sorted({r["z"] for r in eh})
        fig, axes = plt.subplots(1, len(zs), figsize=(6 * len(zs), 3.8), sharey=True,
                                 squeeze=False)
        for ax, z in zip(axes[0], zs):
            for r in rows:
                if (r["n"], r["b"], r["s"]) == EH_CONFIG and r["z"] == z:
                    st = "-" if r["transfer"] == "camb" else "--"
                    ax.plot(r["k"], r["r_ee2"], "tab:red", ls=st, lw=1.1,
                            label=f"P / P_EE2, {'--pk-file CAMB' if r['transfer'] == 'camb' else '--transfer eh'}")
                    if r["transfer"] == "eh":
                        ax.plot(r["k"], r["r_lin"], "tab:blue", ls="--", lw=1,
                                label="EH P_lin / CAMB P_lin")
            C.shade_bands(ax)
            ax.axvline(nyquist(a.box, n), color="gray", ls="--", lw=0.8)
            ax.axvline(nyquist(a.box, n * b), color="gray", ls=":", lw=0.8)
            ax.set_xscale("log")
            ax.set_ylim(0.7, 1.15)
            ax.set_title(f"N={n} B={b} {s} steps, z = {z:g}")
            ax.set_xlabel("k [h/Mpc]")
        axes[0, 0].set_ylabel("ratio")
        axes[0, 0].legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        C.save_figure(fig, "power_eh_vs_camb.png")
        plt.close(fig)


def docs(a, rows, runner, wall_script, scatter):
    cmd = C.command_line()
    pair_walls = sum(r["res"].wall for r in rows)
    pair_cpu = sum(r["res"].cpu for r in rows)
    L = []
    L.append(f"Command: `{cmd}`  ")
    nseed = len(a.seed_list)
    L.append(f"diffpm-sim: {len(rows)} configurations x redshifts, each the mean of {nseed} "
             f"paired-fixed pairs (noise seeds {a.seeds}), {2 * nseed * len(rows)} runs in all "
             f"(--threads {a.threads}, one at a time), {C.fmt_time(pair_walls)} of wall time "
             f"({C.fmt_time(pair_cpu)} CPU) on this 2-core machine, shared with other jobs; "
             f"the script took {C.fmt_time(wall_script)} in the call that wrote this (cached runs "
             "are not rerun; their times are those recorded when they ran).  ")
    L.append(f"CAMB sigma8 = {runner.refs.sigma8:.4f} for A_s = {C.COSMO['A_s']:.3g}, "
             "passed to every run.")
    L.append("")
    L.append("k (h/Mpc) up to which the ratio to EuclidEmulator2 (and to HMcode-2020) stays "
             f"within 2%, 5% and 10%: every bin from k = {K_LO:g} h/Mpc up to that k passes "
             "(below it, the finite box's scatter, a few per cent per bin, would decide; see "
             "below). Two more columns take every bin from the first one (k = 2 pi / L) on. "
             "Bins are diffpm's 2 pi / L bins merged, mode-weighted, until each spans at least 10% "
             "in k (single bins up to k = 0.25 h/Mpc), up to the last bin (the mesh Nyquist "
             "frequency; \"+\": every bin up to there passes). \"-\": the first bin considered "
             "already misses. The wall (and CPU) time is the sum over the "
             f"{2 * nseed} runs of the configuration at that redshift.")
    L.append("")
    L.append("| run (box 256) | k_Nyq particles | k_Nyq mesh | z | EE2 2% | EE2 5% | EE2 10% "
             "| HMcode 2% | HMcode 5% | HMcode 10% | EE2 5%, all bins | EE2 10%, all bins | wall (CPU) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        res = r["res"]
        k_max = min(10.0, r["k"][-1])
        e = [C.within_str(r["k"], r["r_ee2"], t, k_max, K_LO) for t in TOLS]
        h = [C.within_str(r["k"], r["r_hm"], t, k_max, K_LO) for t in TOLS]
        f = [C.within_str(r["k"], r["r_ee2"], t, k_max) for t in TOLS[1:]]
        name = f"N={r['n']}, B={r['b']}, {r['s']} steps" + (", EH transfer" if r["transfer"] == "eh" else "")
        L.append(f"| {name} | {nyquist(a.box, r['n']):.2f} | {nyquist(a.box, r['n'] * r['b']):.2f} "
                 f"| {r['z']:g} | " + " | ".join(e) + " | " + " | ".join(h) + " | " + " | ".join(f)
                 + f" | {res.wall:.0f} s ({res.cpu:.0f} s) |")
    L.append("")
    # The linear input: diffpm's P_lin column (D1^2 of the --pk-file, rescaled to sigma8)
    # against CAMB's linear P at z, bin-averaged alike.
    dev = max(r["lin_check"] for r in rows if r["transfer"] == "camb")
    L.append(f"Linear input check: diffpm's P_lin column (the --pk-file rescaled to sigma8, "
             f"times D1(a)^2 from diffpm's growth) agrees with CAMB's linear P(k, z) averaged "
             f"over the same modes to {100 * dev:.2f}% at worst over every bin, run and redshift "
             "above.")
    L.append("")
    r = scatter["run"]
    text = (f"Sample variance in one 256 Mpc/h box: for {r.label()} at z = {1 / r.a_end - 1:g}, "
            f"the two members of a paired-fixed pair differ from their mean by up to "
            f"{100 * scatter['pair_half_diff']:.1f}% in a 2 pi / L bin below k = "
            f"{scatter['k_lim']:g} h/Mpc (odd-order terms of the one realization, which the pair "
            "cancels)")
    if "seed_half_diff" in scatter:
        text += (f"; the pair means of two noise seeds still differ from their mean by up to "
                 f"{100 * scatter['seed_half_diff']:.1f}% per bin, "
                 f"{100 * scatter['seed_half_diff_rebinned']:.1f}% in the merged bins")
    L.append(text + ". Deviations of that size from the references at k < 0.3 h/Mpc are "
             "sample variance, not the solver.")
    L.append("")
    for z in a.z:
        L.append(f"![P(k) against EuclidEmulator2 at z = {z:g}](validation/power_ee2_z{z:g}.png)")
        L.append("")
    L.append("![P(k) against HMcode-2020](validation/power_hmcode.png)")
    L.append("")
    if any(r["transfer"] == "eh" for r in rows):
        L.append("![Eisenstein & Hu transfer against CAMB's linear P](validation/power_eh_vs_camb.png)")
        L.append("")
    C.update_doc_section("power_vs_emulators", "\n".join(L))


if __name__ == "__main__":
    main()
