#!/usr/bin/env python3
"""Fit the PGD small-scale correction's parameters per resolution against EuclidEmulator2.

For every configuration of the ladder (particles N^3 in a box L, force mesh B N, S steps) this
script

1. writes CAMB's linear z = 0 P(k) of the cosmology (massless neutrinos) to WORK/pk_camb.txt
   and runs diffpm-sim with --pk-file, --sigma8 = CAMB's sigma8, --fixed-amplitude,
   --white-noise (w and -w) and --save-particles to a_end = 1, 2/3 and 1/2 (z = 0, 0.5, 1),
   timing each run;
2. takes the target P_EE2(k, z) = B_EE2(k, z) P_lin(k, z), B_EE2 EuclidEmulator2's boost at the
   bins' mean k and P_lin the linear power that diffpm-sim writes in power.csv (D1(a)^2 P_lin(k)
   averaged over the bin's modes: the same linear spectrum the run started from, so that the
   ratio tests the nonlinear evolution and not the growth factor or the binning);
3. fits (alpha, k_l, k_s) at each z by Nelder-Mead on
       chi(alpha, k_l, k_s) = sum_{k_bin <= k_max} (P_pgd / P_EE2 - 1)^2,
   P_pgd from diffpm-pgd-power (one process per snapshot evaluates the sets);
4. fits one (alpha, mu, k_l, k_s), alpha(a) = alpha a^mu, to the three redshifts together
   (the sum of the three chi), started from the per-z fits (or, with --start, from given
   numbers without per-z fits); k_l and k_s are bounded (see fit_config);
5. writes the table (--csv), the per-z fits (--csv-per-z) and a figure per resolution
   (--figure-dir/pgd_<spacing>mpc_B<B>.png).

Simulations and fits are cached in WORK (a configuration is run or fitted again only with
--rerun / --refit). Everything is deterministic: the white-noise pair is seeded and Nelder-Mead
starts from fixed points. Every run is a paired-fixed pair (white noise w and -w, both with
--fixed-amplitude); P is the pair's mean.

The calls behind docs/validation/pgd.md (ARGS="--sim build-fit/examples/diffpm-sim
--driver build-pgd/diffpm-pgd-power --work $WORK"):
  python validation/pgd/fit_pgd.py $ARGS --ladder 128:256:2:10,128:256:2:20 --sims-only \
      --csv $WORK/x.csv
  python validation/pgd/fit_pgd.py $ARGS --ladder 64:256:2:10,64:256:2:20 --maxfev 40 \
      --maxfev-joint 40 --csv $WORK/t64.csv
  python validation/pgd/fit_pgd.py $ARGS --ladder 128:256:2:10,128:256:2:20 \
      --start 0.015,-2,0.45,1.0 --maxfev-joint 30 --csv $WORK/t128.csv
  python validation/pgd/fit_pgd.py $ARGS \
      --ladder 64:256:2:10,64:256:2:20,128:256:2:10,128:256:2:20 \
      --csv validation/pgd/pgd_fits.csv --csv-per-z validation/pgd/pgd_fits_per_z.csv \
      --figure-dir docs/validation
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

# Planck 2018 (TT,TE,EE+lowE+lensing, the library's defaults) with massless neutrinos.
COSMO = dict(h=0.6766, ombh2=0.02242, omch2=0.11933, n_s=0.9665, A_s=2.105e-9, w0=-1.0,
             wa=0.0, m_nu=0.0, T_CMB=2.7255, N_eff=3.046)
A_ENDS = (1.0, 2.0 / 3.0, 0.5)
A_START = 0.05
SEED = 42


def fail(msg):
    sys.exit(f"fit_pgd.py: error: {msg}")


def write_atomic(path, text_or_writer):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        if callable(text_or_writer):
            os.close(fd)
            text_or_writer(tmp)
        else:
            with os.fdopen(fd, "w") as f:
                f.write(text_or_writer)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def derived():
    h = COSMO["h"]
    return dict(Omega_b=COSMO["ombh2"] / h**2, Omega_c=COSMO["omch2"] / h**2)


def camb_linear(work):
    """CAMB's linear P(k) at z = 0 (file for diffpm-sim), sigma8, and P_lin(k, z) at the 3 z."""
    path = os.path.join(work, "pk_camb.txt")
    meta = os.path.join(work, "camb.json")
    if os.path.exists(path) and os.path.exists(meta):
        with open(meta) as f:
            return path, json.load(f)
    import camb
    pars = camb.CAMBparams()
    pars.set_cosmology(H0=100 * COSMO["h"], ombh2=COSMO["ombh2"], omch2=COSMO["omch2"],
                       mnu=COSMO["m_nu"], num_massive_neutrinos=0, nnu=COSMO["N_eff"],
                       TCMB=COSMO["T_CMB"], omk=0.0)
    pars.set_dark_energy(w=COSMO["w0"], wa=COSMO["wa"])
    pars.InitPower.set_params(As=COSMO["A_s"], ns=COSMO["n_s"])
    zs = sorted({round(1 / a - 1, 12) for a in A_ENDS}, reverse=True)
    pars.set_matter_power(redshifts=zs, kmax=60.0)
    pars.NonLinear = camb.model.NonLinear_none
    res = camb.get_results(pars)
    k, z_out, pk = res.get_matter_power_spectrum(minkh=1e-4, maxkh=50.0, npoints=1200)
    sigma8 = float(res.get_sigma8_0())
    i0 = int(np.argmin(np.abs(np.asarray(z_out))))
    write_atomic(path, "".join(f"{a:.10e} {b:.10e}\n" for a, b in zip(k, pk[i0])))
    info = dict(sigma8=sigma8, k=list(map(float, k)), z=list(map(float, z_out)),
                pk=[list(map(float, p)) for p in pk])
    write_atomic(meta, json.dumps(info))
    return path, info


def ee2_boost(k, z):
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):  # its import and range notices
        import euclidemu2
        emu = euclidemu2.PyEuclidEmulator()
        d = derived()
        par = dict(Omega_b=d["Omega_b"], Omega_m=d["Omega_b"] + d["Omega_c"], h=COSMO["h"],
                   n_s=COSMO["n_s"], A_s=COSMO["A_s"], m_nu=COSMO["m_nu"], w0=COSMO["w0"],
                   wa=COSMO["wa"])
        if k.min() < 8.73e-3 or k.max() > 9.41:
            fail(f"k range [{k.min()}, {k.max()}] outside EE2's [8.73e-3, 9.41] h/Mpc")
        kk, b = emu.get_boost(par, [z], np.asarray(k, dtype=float))
    return np.asarray(b[0], dtype=float)


def neutrino_cost(work):
    """What massless neutrinos cost: P_EE2 with sum m_nu = 0.06 eV over P_EE2 with 0, both at
    the same A_s (and at the same sigma8, rescaling the 0.06 eV linear spectrum), at a few k."""
    path = os.path.join(work, "neutrino.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    import camb
    ks = np.array([0.1, 0.5, 1.0, 2.0])
    zs = [1.0, 0.5, 0.0]
    out = {}
    pk, s8 = {}, {}
    for mnu in (0.0, 0.06):
        pars = camb.CAMBparams()
        pars.set_cosmology(H0=100 * COSMO["h"], ombh2=COSMO["ombh2"],
                           omch2=COSMO["omch2"] - mnu / 93.14, mnu=mnu,
                           num_massive_neutrinos=1 if mnu > 0 else 0, nnu=COSMO["N_eff"],
                           TCMB=COSMO["T_CMB"], omk=0.0)
        pars.InitPower.set_params(As=COSMO["A_s"], ns=COSMO["n_s"])
        pars.set_matter_power(redshifts=zs, kmax=20.0)
        res = camb.get_results(pars)
        k, z_out, p = res.get_matter_power_spectrum(minkh=1e-3, maxkh=10.0, npoints=400)
        s8[mnu] = float(res.get_sigma8_0())
        pk[mnu] = {round(z, 3): np.interp(ks, k, p[i]) for i, z in enumerate(z_out)}
    for z in (0.0, 0.5, 1.0):
        b0 = ee2_boost(ks, z)
        saved = COSMO["m_nu"]
        COSMO["m_nu"] = 0.06
        try:
            b6 = ee2_boost(ks, z)
        finally:
            COSMO["m_nu"] = saved
        r = b6 * pk[0.06][round(z, 3)] / (b0 * pk[0.0][round(z, 3)])
        out[f"{z:g}"] = dict(k=list(ks), ratio_same_As=list(map(float, r)))
    out["sigma8"] = {str(m): v for m, v in s8.items()}
    write_atomic(path, json.dumps(out, indent=1))
    return out


class Config:
    def __init__(self, text):
        try:
            n, box, B, steps = text.split(":")
            self.n, self.box, self.B, self.steps = int(n), float(box), int(B), int(steps)
        except ValueError:
            fail(f"--ladder item '{text}' must be N:BOX:B:STEPS (e.g. 128:256:2:10)")
        if self.n < 8 or self.box <= 0 or self.B < 1 or self.steps < 1:
            fail(f"--ladder item '{text}': need N >= 8, BOX > 0, B >= 1, STEPS >= 1")
        self.mesh = self.B * self.n
        self.spacing = self.box / self.n
        # k_max = 2 h/Mpc at 2 Mpc/h spacing, scaled with 1 / spacing.
        self.k_max = 4.0 / self.spacing
        self.tag = f"n{self.n}_L{self.box:g}_B{self.B}_s{self.steps}"

    def run_dir(self, work, a, sign):
        return os.path.join(work, self.tag, f"a{a:.4f}_{'p' if sign > 0 else 'm'}")


def noise_file(work, n, sign):
    """The white noise w (sign +1) or -w (sign -1) of the pair, N^3 float32, seeded."""
    path = os.path.join(work, f"noise_n{n}_seed{SEED}_{'p' if sign > 0 else 'm'}.npy")
    if not os.path.exists(path):
        w = np.random.default_rng(SEED).standard_normal((n, n, n)).astype(np.float32)
        write_atomic(path, lambda tmp: np.save(tmp, sign * w))
    return path


def run_sim(args, cfg, a, pk_path, sigma8, sign):
    d = cfg.run_dir(args.work, a, sign)
    timing = os.path.join(d, "timing.json")
    if not args.rerun and os.path.exists(timing) and os.path.exists(
            os.path.join(d, "particles_x.npy")):
        with open(timing) as f:
            return json.load(f)
    dd = derived()
    cmd = [args.sim, "--Omega_c", f"{dd['Omega_c']:.10g}", "--Omega_b", f"{dd['Omega_b']:.10g}",
           "--h", f"{COSMO['h']}", "--n_s", f"{COSMO['n_s']}", "--sigma8", f"{sigma8:.10g}",
           "--w0", "-1", "--wa", "0", "--pk-file", pk_path, "--box", f"{cfg.box:g}",
           "--particles", str(cfg.n), "--mesh", str(cfg.mesh), "--steps", str(cfg.steps),
           "--a-start", f"{A_START}", "--a-end", f"{a:.10g}",
           "--white-noise", noise_file(args.work, cfg.n, sign),
           "--fixed-amplitude", "--threads", str(args.threads), "--save-particles", "--out", d]
    print(" ".join(cmd), flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        fail(f"diffpm-sim failed ({r.returncode}): {r.stderr.strip()}")
    info = dict(command=cmd, wall_s=wall)
    write_atomic(timing, json.dumps(info, indent=1))
    print(f"  {wall:.1f} s", flush=True)
    return info


def read_power_csv(d):
    a = np.loadtxt(os.path.join(d, "power.csv"), delimiter=",", skiprows=1)
    return dict(k=a[:, 0], P=a[:, 1], P_lin=a[:, 2], n=a[:, 3])


class Driver:
    """One diffpm-pgd-power process on one snapshot."""

    def __init__(self, args, cfg, a, d):
        self.a = a
        self.p = subprocess.Popen(
            [args.driver, "--particles", os.path.join(d, "particles_x.npy"), "--box",
             f"{cfg.box:g}", "--mesh", str(cfg.mesh), "--a", f"{a:.17g}", "--threads",
             str(args.threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.k = self._row("k")
        self.n = self._row("n_modes")
        self.P0 = self._row("none")
        self.evals = 0
        self.seconds = 0.0

    def _row(self, head):
        line = self.p.stdout.readline()
        if not line:
            fail(f"diffpm-pgd-power exited early (status {self.p.wait()})")
        parts = line.rstrip("\n").split(",")
        if parts[0] != head:
            fail(f"diffpm-pgd-power: expected a '{head}' line, got '{line[:80]}'")
        return np.array(parts[1:], dtype=float)

    def power(self, alpha, k_l, k_s, mu=0.0):
        t0 = time.perf_counter()
        self.p.stdin.write(",".join(repr(float(v)) for v in (alpha, k_l, k_s, mu)) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line or line.startswith("error"):
            fail(f"diffpm-pgd-power: {line.strip() or 'no answer'}")
        v = np.array(line.split(",")[4:], dtype=float)
        self.evals += 1
        self.seconds += time.perf_counter() - t0
        return v

    def close(self):
        self.p.stdin.close()
        self.p.wait()


class PairDriver:
    """The paired-fixed mean (Angulo & Pontzen 2016): P = (P[w] + P[-w]) / 2."""

    def __init__(self, args, cfg, a):
        self.d = []
        for sign in (1, -1):
            d = cfg.run_dir(args.work, a, sign)
            drv = Driver(args, cfg, a, d)
            pc = read_power_csv(d)
            if len(drv.k) != len(pc["k"]) or np.max(np.abs(drv.P0 / pc["P"] - 1)) > 1e-6:
                fail(f"{d}: diffpm-pgd-power's uncorrected P differs from power.csv")
            self.d.append(drv)
            self.pc = pc
        self.k = self.d[0].k
        self.P0 = 0.5 * (self.d[0].P0 + self.d[1].P0)
        self.P_lin = self.pc["P_lin"]
        self.n = self.pc["n"]

    def power(self, *p):
        return 0.5 * (self.d[0].power(*p) + self.d[1].power(*p))

    @property
    def evals(self):
        return self.d[0].evals

    @property
    def seconds(self):
        return self.d[0].seconds + self.d[1].seconds

    def close(self):
        for d in self.d:
            d.close()


def max_dev(r, k, k_max):
    m = k <= k_max
    i = int(np.argmax(np.abs(r[m] - 1)))
    return float(r[m][i] - 1), float(k[m][i])


def fit_config(args, cfg, pk_path, camb_info):
    out = os.path.join(args.work, cfg.tag, "fit.json")
    if not args.refit and os.path.exists(out):
        with open(out) as f:
            return json.load(f)
    from scipy.optimize import minimize
    sims = [dict(a=a, sign=sign, **run_sim(args, cfg, a, pk_path, camb_info["sigma8"], sign))
            for a in A_ENDS for sign in (1, -1)]
    drivers, targets = [], []
    for a in A_ENDS:
        drv = PairDriver(args, cfg, a)
        targets.append(ee2_boost(drv.k, 1 / a - 1) * drv.P_lin)
        drivers.append(drv)
    k = drivers[0].k
    m = k <= cfg.k_max

    # Bounds (the fit is degenerate without them: k_l -> 0 with k_s beyond the mesh Nyquist
    # frequency moves the large scales too): 0.1 kN <= k_l <= 2 kN, 0.25 kN <= k_s <= B kN
    # (beyond the mesh's Nyquist frequency the low-pass does nothing), |mu| <= 10.
    kN_ = math.pi / cfg.spacing
    lo, hi = np.log([0.1 * kN_, 0.25 * kN_]), np.log([2 * kN_, cfg.B * kN_])

    def penalty(lk):
        lk = np.asarray(lk)
        return float(np.sum(np.maximum(lo - lk, 0) + np.maximum(lk - hi, 0)))

    def chi_one(i, alpha, k_l, k_s, mu=0.0):
        pen = penalty(np.log([k_l, k_s])) + max(abs(mu) - 10, 0)
        if pen > 0:
            return 1e3 * (1 + pen)
        r = drivers[i].power(alpha, k_l, k_s, mu)[m] / targets[i][m]
        return float(np.sum((r - 1) ** 2))

    # Start: k_l and k_s scaled with the particle Nyquist frequency k_N = pi / spacing.
    kN = math.pi / cfg.spacing
    per_z = []
    start = None
    if args.start:
        try:
            v = [float(t) for t in args.start.split(",")]
            if len(v) != 4 or min(v[0], v[2], v[3]) <= 0:
                raise ValueError
        except ValueError:
            fail(f"--start '{args.start}' must be ALPHA,MU,KL/kN,KS/kN (ALPHA, KL, KS > 0)")
        start = np.array([math.log(v[0]), v[1], math.log(v[2] * kN), math.log(v[3] * kN)])
    elif args.start_from:
        path = os.path.join(args.work, args.start_from, "fit.json")
        if not os.path.exists(path):
            fail(f"--start-from {args.start_from}: no fit in {path} (fit that configuration first)")
        with open(path) as f:
            prev = json.load(f)
        scale = kN / (math.pi / prev["spacing"])
        j = prev["joint"]
        start = np.array([math.log(j["alpha"]), j["mu"], math.log(j["k_l"] * scale),
                          math.log(j["k_s"] * scale)])
    for i, a in enumerate(A_ENDS if start is None else ()):
        t0 = time.perf_counter()
        # a coarse scan of alpha at a fixed band picks the start
        best = None
        for alpha in (0.01, 0.02, 0.04, 0.08):
            c = chi_one(i, alpha, 0.6 * kN, 1.5 * kN)
            if best is None or c < best[0]:
                best = (c, alpha)
        x0 = np.log([best[1], 0.6 * kN, 1.5 * kN])
        res = minimize(lambda x: chi_one(i, *np.exp(x)), x0, method="Nelder-Mead",
                       options=dict(xatol=0.01, fatol=1e-5, maxfev=args.maxfev,
                                    initial_simplex=[x0, x0 + [0.5, 0, 0], x0 + [0, 0.5, 0],
                                                     x0 + [0, 0, 0.5]]))
        alpha, k_l, k_s = map(float, np.exp(res.x))
        P = drivers[i].power(alpha, k_l, k_s)
        per_z.append(dict(a=a, z=1 / a - 1, alpha=alpha, k_l=k_l, k_s=k_s, chi=float(res.fun),
                          nfev=int(res.nfev), seconds=time.perf_counter() - t0,
                          dev_none=max_dev(drivers[i].P0 / targets[i], k, cfg.k_max),
                          dev_pgd=max_dev(P / targets[i], k, cfg.k_max)))
        print(f"  {cfg.tag} z={1/a-1:.2f}: alpha={alpha:.4g} k_l={k_l:.4g} k_s={k_s:.4g} "
              f"chi={res.fun:.4g} nfev={res.nfev} max|r-1| none {per_z[-1]['dev_none'][0]:+.3f} "
              f"pgd {per_z[-1]['dev_pgd'][0]:+.3f} ({per_z[-1]['seconds']:.0f} s)", flush=True)

    # Joint fit: alpha(a) = alpha a^mu, k_l and k_s common; start from the per-z fits.
    t0 = time.perf_counter()
    if start is None:
        la = np.log([p["a"] for p in per_z])
        lal = np.log([p["alpha"] for p in per_z])
        mu0, lalpha0 = np.polyfit(la, lal, 1)
        x0 = np.array([lalpha0, mu0, np.mean(np.log([p["k_l"] for p in per_z])),
                       np.mean(np.log([p["k_s"] for p in per_z]))])
    else:
        x0 = start

    def chi_all(x):
        alpha, mu, k_l, k_s = math.exp(x[0]), x[1], math.exp(x[2]), math.exp(x[3])
        pen = penalty(x[2:]) + max(abs(mu) - 10, 0)
        if pen > 0:
            return 3e3 * (1 + pen)
        return sum(chi_one(i, alpha, k_l, k_s, mu) for i in range(len(A_ENDS)))

    res = minimize(chi_all, x0, method="Nelder-Mead",
                   options=dict(xatol=0.01, fatol=1e-5, maxfev=args.maxfev_joint,
                                initial_simplex=[x0, x0 + [0.3, 0, 0, 0], x0 + [0, 0.5, 0, 0],
                                                 x0 + [0, 0, 0.3, 0], x0 + [0, 0, 0, 0.3]]))
    alpha, mu, k_l, k_s = math.exp(res.x[0]), float(res.x[1]), math.exp(res.x[2]), math.exp(
        res.x[3])
    joint = dict(alpha=alpha, mu=mu, k_l=k_l, k_s=k_s, chi=float(res.fun), nfev=int(res.nfev),
                 seconds=time.perf_counter() - t0, per_z=[])
    curves = []
    for i, a in enumerate(A_ENDS):
        P = drivers[i].power(alpha, k_l, k_s, mu)
        joint["per_z"].append(dict(a=a, z=1 / a - 1,
                                   dev_none=max_dev(drivers[i].P0 / targets[i], k, cfg.k_max),
                                   dev_pgd=max_dev(P / targets[i], k, cfg.k_max)))
        curves.append(dict(a=a, ratio_none=list(drivers[i].P0 / targets[i]),
                           ratio_pgd=list(P / targets[i]),
                           plin_over_camb=float(np.median(
                               (drivers[i].P_lin / np.interp(
                                   k, camb_info["k"],
                                   camb_info["pk"][int(np.argmin(np.abs(
                                       np.asarray(camb_info["z"]) - (1 / a - 1))))]))[k < 0.1]))))
    print(f"  {cfg.tag} joint: alpha={alpha:.4g} mu={mu:.4g} k_l={k_l:.4g} k_s={k_s:.4g} "
          f"chi={res.fun:.4g} nfev={res.nfev} ({joint['seconds']:.0f} s); max|r-1| pgd " +
          " ".join(f"{p['dev_pgd'][0]:+.3f}" for p in joint["per_z"]), flush=True)
    evals = sum(d.evals for d in drivers)
    eval_s = sum(d.seconds for d in drivers)
    for d in drivers:
        d.close()
    result = dict(tag=cfg.tag, n=cfg.n, box=cfg.box, B=cfg.B, mesh=cfg.mesh, steps=cfg.steps,
                  spacing=cfg.spacing, k_max=cfg.k_max, sims=sims, per_z=per_z, joint=joint,
                  k=list(k), n_modes=list(drivers[0].n), curves=curves, evals=evals,
                  seconds_per_eval=eval_s / max(evals, 1))
    write_atomic(out, json.dumps(result, indent=1))
    return result


def write_tables(args, results):
    head = ("spacing,B,steps,alpha,k_l,k_s,mu,k_max," +
            ",".join(f"maxdev_none_z{z},maxdev_pgd_z{z}" for z in ("0", "0.5", "1")) + "\n")
    rows = []
    for r in results:
        j = r["joint"]
        devs = ",".join(f"{abs(p['dev_none'][0]):.4f},{abs(p['dev_pgd'][0]):.4f}"
                        for p in j["per_z"])
        rows.append(f"{r['spacing']:g},{r['B']},{r['steps']},{j['alpha']:.6g},{j['k_l']:.6g},"
                    f"{j['k_s']:.6g},{j['mu']:.6g},{r['k_max']:g},{devs}\n")
    write_atomic(args.csv, head + "".join(rows))
    if args.csv_per_z:
        head = "spacing,B,steps,z,alpha,k_l,k_s,k_max,maxdev_none,maxdev_pgd\n"
        rows = []
        for r in results:
            for p in r["per_z"]:
                rows.append(f"{r['spacing']:g},{r['B']},{r['steps']},{p['z']:.2g},"
                            f"{p['alpha']:.6g},{p['k_l']:.6g},{p['k_s']:.6g},{r['k_max']:g},"
                            f"{abs(p['dev_none'][0]):.4f},{abs(p['dev_pgd'][0]):.4f}\n")
        write_atomic(args.csv_per_z, head + "".join(rows))


def plot(args, results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    by_res = {}
    for r in results:
        by_res.setdefault((r["n"], r["box"], r["B"]), []).append(r)
    colors = {10: "tab:blue", 20: "tab:red", 5: "tab:green", 40: "tab:purple"}
    for (n, box, B), rs in sorted(by_res.items()):
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharey=True)
        spacing = box / n
        for iz, ax in enumerate(axes):
            for band, alpha in ((0.10, 0.08), (0.05, 0.12), (0.02, 0.18)):
                ax.axhspan(1 - band, 1 + band, color="grey", alpha=alpha, lw=0)
            for r in sorted(rs, key=lambda r: r["steps"]):
                c = r["curves"][iz]
                k = np.array(r["k"])
                col = colors.get(r["steps"], "k")
                ax.plot(k, c["ratio_none"], ls="--", color=col, lw=1,
                        label=f"{r['steps']} steps, no PGD")
                ax.plot(k, c["ratio_pgd"], ls="-", color=col, lw=1.3,
                        label=f"{r['steps']} steps, PGD")
            kN = math.pi / spacing
            ax.axvline(kN, color="k", ls=":", lw=1)
            ax.axvline(kN * B, color="k", ls="-.", lw=1)
            ax.axvline(rs[0]["k_max"], color="tab:green", ls="-", lw=0.8)
            ax.set_xscale("log")
            ax.set_xlim(2 * math.pi / box, kN * B)
            ax.set_ylim(0.6, 1.2)
            ax.set_title(f"z = {1 / A_ENDS[iz] - 1:.1f}", fontsize=9)
            ax.set_xlabel("k [h/Mpc]", fontsize=9)
            ax.tick_params(labelsize=8)
        axes[0].set_ylabel("P / P_EE2", fontsize=9)
        axes[0].legend(fontsize=6.5, loc="lower left")
        fig.suptitle(f"{n}^3 particles, {box:g} Mpc/h ({spacing:g} Mpc/h spacing), mesh "
                     f"{B * n}^3 (B = {B}); dotted: particle Nyquist, dash-dot: mesh Nyquist, "
                     f"green: k_max", fontsize=8.5)
        fig.tight_layout()
        path = os.path.join(args.figure_dir, f"pgd_{spacing:g}mpc_B{B}.png")
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
        plt.close(fig)
        print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sim", required=True, help="diffpm-sim binary")
    ap.add_argument("--driver", required=True, help="diffpm-pgd-power binary")
    ap.add_argument("--work", required=True, help="directory for runs, particles and caches")
    ap.add_argument("--ladder", default="64:256:2:10,64:256:2:20,128:256:2:10,128:256:2:20",
                    help="comma-separated N:BOX:B:STEPS configurations")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--maxfev", type=int, default=60, help="evaluations per per-z fit")
    ap.add_argument("--maxfev-joint", type=int, default=50, help="evaluations per joint fit")
    ap.add_argument("--start-from", metavar="TAG",
                    help="skip the per-z fits; start the joint fit from configuration TAG's "
                         "joint fit (k_l, k_s scaled with the particle Nyquist frequency)")
    ap.add_argument("--start", metavar="ALPHA,MU,KL/kN,KS/kN",
                    help="skip the per-z fits; start the joint fit here (k_l and k_s in units "
                         "of the particle Nyquist frequency kN = pi / spacing)")
    ap.add_argument("--sims-only", action="store_true", help="run the simulations, fit nothing")
    ap.add_argument("--rerun", action="store_true", help="run the simulations again")
    ap.add_argument("--refit", action="store_true", help="fit again")
    ap.add_argument("--csv", required=True)
    ap.add_argument("--csv-per-z")
    ap.add_argument("--figure-dir")
    args = ap.parse_args()
    for b in (args.sim, args.driver):
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            fail(f"'{b}' is not an executable file")
    if args.threads < 1 or args.maxfev < 1 or args.maxfev_joint < 1:
        fail("--threads, --maxfev and --maxfev-joint must be >= 1")
    cfgs = [Config(t) for t in args.ladder.split(",") if t]
    if not cfgs:
        fail("--ladder is empty")
    os.makedirs(args.work, exist_ok=True)
    pk_path, camb_info = camb_linear(args.work)
    print(f"CAMB sigma8 = {camb_info['sigma8']:.6f}", flush=True)
    nu = neutrino_cost(args.work)
    for z in ("0", "0.5", "1"):
        print(f"P_EE2(m_nu = 0.06 eV) / P_EE2(m_nu = 0), same A_s, z = {z}: " +
              " ".join(f"k={k:g}: {r:.4f}" for k, r in zip(nu[z]["k"], nu[z]["ratio_same_As"])))
    print(f"sigma8: {nu['sigma8']}", flush=True)
    if args.sims_only:
        for c in cfgs:
            for a in A_ENDS:
                for sign in (1, -1):
                    run_sim(args, c, a, pk_path, camb_info["sigma8"], sign)
        return
    results = [fit_config(args, c, pk_path, camb_info) for c in cfgs]
    write_tables(args, results)
    print(f"wrote {args.csv}")
    if args.figure_dir:
        plot(args, results)


if __name__ == "__main__":
    main()
