#!/usr/bin/env python3
"""Convergence of diffpm-sim's P(k) at z = 0 in a 256 Mpc/h box: against the number of time
steps, the mesh ratio B = mesh / particles, the mass resolution (particles N^3 at fixed box and
fixed B) and float against double, each relative to the finest run of its series.

Every run starts from the same white noise (noise seed 1, the "+" member of the paired-fixed
pair of power_vs_emulators.py, --fixed-amplitude; the noise of every N is cut from one 256^3
field, so that the mass-resolution series shares its large-scale modes), so the ratios are
free of sample variance. The linear P(k) is CAMB's (--pk-file), as in power_vs_emulators.py,
whose cached runs are reused. Writes docs/validation/convergence.png and the section
'convergence' of docs/validation.md.

Example: validation/.venv/bin/python validation/convergence.py --sim build/examples/diffpm-sim
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import common as C

BOX = 256.0
TOLS = (0.01, 0.02, 0.05, 0.10)
# (title, [(particles, mesh, steps, precision)], index of the reference in the list)
SERIES = [
    ("time steps (N=128, B=2)", [(128, 256, s, "float") for s in (5, 10, 20, 40, 80)], 4),
    ("mesh ratio B (N=128, 40 steps)", [(128, m, 40, "float") for m in (128, 256, 384)], 2),
    ("mass resolution (B=2, 40 steps)", [(n, 2 * n, 40, "float") for n in (64, 96, 128)], 2),
    ("precision (N=128, B=2, 40 steps)", [(128, 256, 40, p) for p in ("float", "double")], 1),
]


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    C.common_args(p)
    p.add_argument("--quick", action="store_true",
                   help="only the series of steps, up to 20 (a test of the script)")
    return p.parse_args()


def label(n, m, s, prec):
    return f"N={n} B={m / n:g} {s} steps {prec}"


def main():
    a = parse()
    t_start = time.perf_counter()
    refs = C.references(need_ee2=False)
    runner = C.Runner(a.sim, a.work, refs, a.threads, a.force)
    series = SERIES
    if a.quick:
        series = [("time steps (N=64, B=2)", [(64, 128, s, "float") for s in (5, 10, 20)], 2)]
    out = []
    for title, runs, iref in series:
        results = [runner.run(C.Run(BOX, n, m, s, 1.0, precision=p)) for n, m, s, p in runs]
        ref = results[iref]
        items = []
        for (n, m, s, p), res in zip(runs, results):
            nb = min(len(res.k), len(ref.k))
            if not np.array_equal(res.n_modes[:nb], ref.n_modes[:nb]):
                C.die(f"{label(n, m, s, p)}: bins differ from the reference run's")
            ratio = res.P[:nb] / ref.P[:nb]
            ks = [C.k_within(res.k[:nb], ratio, t, 10.0) for t in TOLS]
            kstr = [C.within_str(res.k[:nb], ratio, t, 10.0) for t in TOLS]
            items.append(dict(run=(n, m, s, p), res=res, k=res.k[:nb], ratio=ratio, ks=ks, kstr=kstr,
                              is_ref=res is ref))
            C.log(f"  {title}: {label(n, m, s, p)}: within 1/2/5/10% of the reference up to k = "
                  + ", ".join(C.fmt_k(x) for x in ks) + f"  ({res.wall:.1f} s)")
        out.append((title, runs[iref], ref, items))
    wall_script = time.perf_counter() - t_start
    if not a.no_docs:
        figure(out)
        docs(a, out, wall_script)


def figure(out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(out), figsize=(3.9 * len(out), 6.0), sharex=True,
                             gridspec_kw=dict(height_ratios=[1, 1.3]), squeeze=False)
    for col, (title, refrun, ref, items) in enumerate(out):
        top, bot = axes[0, col], axes[1, col]
        cmap = plt.get_cmap("viridis")
        for i, it in enumerate(items):
            c = "k" if it["is_ref"] else cmap(i / max(1, len(items) - 1))
            n, m, s, p = it["run"]
            lab = {0: f"{s} steps", 1: f"B={m / n:g}", 2: f"N={n}", 3: p}[
                [t for t, *_ in SERIES].index(title) if title in [t for t, *_ in SERIES] else 0]
            lab += " (reference)" if it["is_ref"] else ""
            top.loglog(it["res"].k, it["res"].P, color=c, lw=1.4 if it["is_ref"] else 0.9, label=lab)
            bot.plot(it["k"], it["ratio"], color=c, lw=1.4 if it["is_ref"] else 1.0, label=lab)
            bot.axvline(math.pi * m / BOX, color=c, ls=":", lw=0.7)
            bot.axvline(math.pi * n / BOX, color=c, ls="--", lw=0.7)
        C.shade_bands(bot)
        bot.set_xscale("log")
        bot.set_ylim(0.75, 1.1)
        top.set_title(title, fontsize=9)
        bot.set_xlabel("k [h/Mpc]")
        top.legend(fontsize=7, loc="lower left")
    axes[0, 0].set_ylabel("P(k), z = 0 [(Mpc/h)^3]")
    axes[1, 0].set_ylabel("P / P_reference")
    fig.text(0.5, 0.002, "dashed: particle Nyquist; dotted: mesh Nyquist (colour of the run)",
             ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    C.save_figure(fig, "convergence.png")
    plt.close(fig)


def docs(a, out, wall_script):
    walls = sum(it["res"].wall for *_, items in out for it in items)
    cpus = sum(it["res"].cpu for *_, items in out for it in items)
    L = [f"Command: `{C.command_line()}`  ",
         f"diffpm-sim: {sum(len(items) for *_, items in out)} runs (some shared between series "
         f"and with power_vs_emulators.py), --threads {a.threads}, {C.fmt_time(walls)} of wall "
         f"time ({C.fmt_time(cpus)} CPU) counted per series; the script took "
         f"{C.fmt_time(wall_script)} in the call that wrote this (cached runs are not rerun).",
         "",
         "k (h/Mpc) up to which every bin (width 2 pi / L) is within 1%, 2%, 5% and 10% of the "
         "series' reference run, up to the mesh Nyquist frequency of the coarser of the two (\"+\": "
         "every bin up to there passes); z = 0, "
         "box 256 Mpc/h, same white noise.",
         "",
         "| series | run | 1% | 2% | 5% | 10% | wall (CPU) |",
         "|---|---|---|---|---|---|---|"]
    for title, refrun, ref, items in out:
        for it in items:
            n, m, s, p = it["run"]
            name = label(n, m, s, p) + (" (reference)" if it["is_ref"] else "")
            ks = ["-" if it["is_ref"] else k for k in it["kstr"]]
            L.append(f"| {title} | {name} | " + " | ".join(ks)
                     + f" | {it['res'].wall:.0f} s ({it['res'].cpu:.0f} s) |")
    L += ["", "![Convergence of P(k) at z = 0](validation/convergence.png)", ""]
    C.update_doc_section("convergence", "\n".join(L))


if __name__ == "__main__":
    main()
