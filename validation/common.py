"""Shared helpers of the validation scripts: running diffpm-sim (cached, timed), paired-fixed
initial conditions, the reference spectra (CAMB linear, HMcode-2020, EuclidEmulator2), the
bin average of a reference over the modes of diffpm's power-spectrum bins, figures and the
sections of docs/validation.md that the scripts rewrite.

Not run in CI. Python 3, numpy, scipy, matplotlib, camb, euclidemu2 (validation/setup.sh).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "validation.md"
FIG_DIR = REPO / "docs" / "validation"
DEFAULT_WORK = REPO / "validation" / "runs"
DEFAULT_SIM = os.environ.get("DIFFPM_SIM", str(REPO / "build" / "examples" / "diffpm-sim"))

# The cosmology of every comparison: inside EuclidEmulator2's parameter box, Planck-like,
# flat, w0 = -1, wa = 0, Sum m_nu = 0 (EE2's minimum: three massless species in EE2, CAMB and
# diffpm alike). A_s fixes the amplitude; sigma8 is CAMB's for that A_s and is what diffpm gets.
COSMO = dict(Omega_b=0.049, Omega_m=0.319, h=0.67, n_s=0.96, A_s=2.1e-9, w0=-1.0, wa=0.0,
             m_nu=0.0, T_CMB=2.7255, N_eff=3.046)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def die(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


# ----------------------------------------------------------------------------- files
def write_atomic(path: Path, data: bytes | str) -> None:
    """Writes through a temporary file in the same folder, then renames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    write_atomic(path, buf.getvalue())


def save_figure(fig, name: str) -> Path:
    """docs/validation/NAME.png, small (dpi 72, reduced to a 128-colour palette); returns the
    path."""
    from PIL import Image
    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=72)
    raw.seek(0)
    img = Image.open(raw).convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    path = FIG_DIR / name
    write_atomic(path, buf.getvalue())
    kb = path.stat().st_size / 1024
    log(f"wrote {path.relative_to(REPO)} ({kb:.0f} KB)")
    if kb > 100:
        log(f"warning: {path.name} is {kb:.0f} KB (> 100 KB)")
    return path


def update_doc_section(name: str, text: str) -> None:
    """Replaces the text between <!-- BEGIN name --> and <!-- END name --> in
    docs/validation.md (appends the section if the markers are missing)."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    doc = DOC.read_text() if DOC.exists() else "# Validation\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        doc = head + block + tail
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    write_atomic(DOC, doc)
    log(f"updated the section '{name}' of {DOC.relative_to(REPO)}")


def command_line() -> str:
    """The command that is running, as a user would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO)
    return " ".join(["python3", shlex.quote(str(script))] + [shlex.quote(a) for a in sys.argv[1:]])


def fmt_time(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ----------------------------------------------------------------------------- references
@dataclass
class References:
    """CAMB (linear, HMcode-2020) and EuclidEmulator2 spectra of COSMO, in h/Mpc, (Mpc/h)^3."""
    sigma8: float
    plin: object      # camb interpolator, .P(z, k)
    phm: object       # camb interpolator, HMcode-2020
    chi: object       # callable z -> comoving distance in Mpc/h
    z_of_chi: object  # callable chi -> z
    ee2: object = None

    def linear(self, z, k):
        return self.plin.P(z, k)

    def hmcode(self, z, k):
        return self.phm.P(z, k)

    def ee2_boost(self, z, k):
        k = np.atleast_1d(np.asarray(k, float))
        with contextlib.redirect_stdout(io.StringIO()):  # EE2 prints extrapolation warnings
            _, b = self.ee2.get_boost(ee2_params(), [float(z)], k)
        return np.asarray(b[0])

    def euclidemu2(self, z, k):
        return self.ee2_boost(z, k) * self.linear(z, k)


def ee2_params() -> dict:
    c = COSMO
    return {"Omega_b": c["Omega_b"], "Omega_m": c["Omega_m"], "m_nu": c["m_nu"], "n_s": c["n_s"],
            "h": c["h"], "w0": c["w0"], "wa": c["wa"], "A_s": c["A_s"]}


def camb_params(nonlinear: bool, zmax: float = 3.0, kmax: float = 60.0):
    import camb
    c = COSMO
    h = c["h"]
    return camb.set_params(H0=100 * h, ombh2=c["Omega_b"] * h * h,
                           omch2=(c["Omega_m"] - c["Omega_b"]) * h * h, mnu=c["m_nu"],
                           num_massive_neutrinos=0, nnu=c["N_eff"], TCMB=c["T_CMB"],
                           As=c["A_s"], ns=c["n_s"], w=c["w0"], wa=c["wa"],
                           halofit_version="mead2020", WantTransfer=True, kmax=kmax,
                           redshifts=list(np.linspace(zmax, 0.0, 31)),
                           NonLinear="NonLinear_pk" if nonlinear else "NonLinear_none")


def references(need_ee2: bool = True, zmax: float = 3.0) -> References:
    try:
        import camb
    except ImportError:
        die("camb is not installed: run validation/setup.sh and use validation/.venv/bin/python")
    log(f"CAMB {camb.__version__}: linear and HMcode-2020 spectra")
    pars = camb_params(True, zmax)
    res = camb.get_results(pars)
    sigma8 = float(res.get_sigma8_0())
    kw = dict(hubble_units=True, k_hunit=True, kmax=50.0, zmax=zmax, var1="delta_tot",
              var2="delta_tot", extrap_kmax=200.0)
    plin = camb.get_matter_power_interpolator(pars, nonlinear=False, **kw)
    phm = camb.get_matter_power_interpolator(pars, nonlinear=True, **kw)
    h = COSMO["h"]
    zs = np.linspace(0.0, zmax + 0.5, 2001)
    chis = np.asarray(res.comoving_radial_distance(zs)) * h  # Mpc -> Mpc/h
    from scipy.interpolate import CubicSpline
    chi = CubicSpline(zs, chis)
    z_of_chi = CubicSpline(chis, zs)
    ee2 = None
    if need_ee2:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                import euclidemu2
        except ImportError:
            die("euclidemu2 is not installed (it needs Debian's libgsl-dev and pkg-config): "
                "run validation/setup.sh")
        ee2 = euclidemu2.PyEuclidEmulator()
    log(f"CAMB sigma8 = {sigma8:.6f} for A_s = {COSMO['A_s']:.3g}")
    return References(sigma8, plin, phm, chi, z_of_chi, ee2)


def write_pk_file(refs: References, path: Path) -> Path:
    """CAMB's linear P(k) at z = 0 (k from 1e-4 to 50 h/Mpc) for diffpm-sim --pk-file."""
    k = np.logspace(-4, math.log10(50.0), 1200)
    p = refs.linear(0.0, k)
    text = "# CAMB linear matter power at z = 0 (delta_tot); k [h/Mpc], P [(Mpc/h)^3]\n"
    text += "".join(f"{a:.10e} {b:.10e}\n" for a, b in zip(k, p))
    write_atomic(path, text)
    return path


def diffpm_cosmology_flags(refs: References, transfer: str) -> list[str]:
    """diffpm-sim's cosmology flags for COSMO: sigma8 from CAMB, radiation on (photons and
    N_eff massless neutrinos, as CAMB and EE2), T_CMB and N_eff as CAMB."""
    c = COSMO
    flags = ["--Omega_c", repr(c["Omega_m"] - c["Omega_b"]), "--Omega_b", repr(c["Omega_b"]),
             "--h", repr(c["h"]), "--n_s", repr(c["n_s"]), "--sigma8", f"{refs.sigma8:.6f}",
             "--w0", repr(c["w0"]), "--wa", repr(c["wa"]), "--T_CMB", repr(c["T_CMB"]),
             "--N_eff", repr(c["N_eff"])]
    if transfer == "camb":
        flags += ["--pk-file", "@PK_FILE@"]
    else:
        flags += ["--transfer", transfer]
    return flags


# ----------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Run:
    box: float
    particles: int
    mesh: int
    steps: int
    a_end: float
    transfer: str = "camb"      # camb (the --pk-file of CAMB's linear P) or eh
    precision: str = "float"
    phase: int = +1             # paired-fixed: +1 or -1 times the same white noise
    noise_seed: int = 1
    a_start: float = 0.05

    @property
    def ratio(self) -> float:
        return self.mesh / self.particles

    def label(self) -> str:
        return (f"N{self.particles} B{self.ratio:g} S{self.steps}"
                + ("" if self.transfer == "camb" else f" {self.transfer}")
                + ("" if self.precision == "float" else f" {self.precision}"))

    def name(self) -> str:
        return (f"L{self.box:g}_N{self.particles}_M{self.mesh}_S{self.steps}_a{self.a_end:.4f}"
                f"_{self.transfer}_{self.precision}_s{self.noise_seed}{'p' if self.phase > 0 else 'm'}")


@dataclass
class Result:
    run: Run
    k: np.ndarray
    P: np.ndarray
    P_lin: np.ndarray
    n_modes: np.ndarray
    wall: float
    command: str
    cpu: float = 0.0


NOISE_MASTER = 256  # the lattice every noise field is cut from (so every N shares large scales)


def noise_file(work: Path, n: int, seed: int, phase: int) -> Path:
    """Unit-variance white noise on the N^3 lattice, and its negative for the paired run
    (Angulo & Pontzen 2016 with --fixed-amplitude). It is the Fourier modes n_i in [-N/2, N/2)
    of one 256^3 field of numpy's PCG64(seed) normals, so that runs with different N (mass
    resolution) start from the same large-scale modes."""
    if n > NOISE_MASTER or n % 2:
        die(f"white noise for N = {n}: N must be even and at most {NOISE_MASTER}")
    path = work / "noise" / f"noise_N{n}_s{seed}_{'p' if phase > 0 else 'm'}.npy"
    if not path.exists():
        m = NOISE_MASTER
        master = np.fft.rfftn(np.random.default_rng(seed).standard_normal((m, m, m)))
        idx = np.r_[0:n // 2, m - n // 2:m]
        sub = master[np.ix_(idx, idx, np.arange(n // 2 + 1))]
        del master
        w = np.fft.irfftn(sub, s=(n, n, n)) * (n / m) ** 1.5
        save_npy_atomic(path, w * phase)
    return path


class Runner:
    """Runs diffpm-sim one configuration at a time, with --threads threads, caching each run
    (DIR/power.csv + DIR/meta.json with the command and its wall time) under WORK/runs."""

    def __init__(self, sim: str, work: Path, refs: References, threads: int = 1,
                 force: bool = False):
        self.sim, self.work, self.refs, self.threads, self.force = sim, Path(work), refs, threads, force
        if not (Path(sim).is_file() and os.access(sim, os.X_OK)):
            die(f"diffpm-sim not found or not executable at '{sim}' (build it, or pass --sim "
                "PATH or set DIFFPM_SIM)")
        self.pk_file = write_pk_file(refs, self.work / "camb_linear_z0.txt")
        self.total_wall = 0.0

    def command(self, r: Run, out: Path) -> list[str]:
        cos = [str(self.pk_file) if f == "@PK_FILE@" else f
               for f in diffpm_cosmology_flags(self.refs, r.transfer)]
        return ([self.sim] + cos +
                ["--box", f"{r.box:g}", "--particles", str(r.particles), "--mesh", str(r.mesh),
                 "--steps", str(r.steps), "--a-start", f"{r.a_start:g}", "--a-end", f"{r.a_end:.6g}",
                 "--precision", r.precision, "--threads", str(self.threads), "--fixed-amplitude",
                 "--white-noise", str(noise_file(self.work, r.particles, r.noise_seed, r.phase)),
                 "--out", str(out)])

    def run(self, r: Run) -> Result:
        out = self.work / "runs" / r.name()
        meta = self.run_raw(out, self.command(r, out),
                            f"{r.label()} a_end={r.a_end:.4f} phase {'+' if r.phase > 0 else '-'}")
        return self._load(r, out, meta)

    def run_raw(self, out: Path, cmd: list[str], what: str) -> dict:
        """Runs cmd (diffpm-sim ... --out OUT) unless OUT/meta.json records the same command;
        returns the meta dict (command, wall_s, cpu_s)."""
        meta_path = out / "meta.json"
        if not self.force and meta_path.exists() and (out / "power.csv").exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("command") == shlex.join(cmd):
                return meta
        log(f"running {what}")
        out.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            meta_path.unlink()
        import resource
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        write_atomic(out / "stderr.log", proc.stderr)
        if proc.returncode != 0:
            die(f"diffpm-sim failed (status {proc.returncode}) in {out}:\n  "
                f"{shlex.join(cmd)}\n  {proc.stderr.strip().splitlines()[-1:]}")
        meta = {"command": shlex.join(cmd), "wall_s": wall, "cpu_s": cpu, "threads": self.threads,
                "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_atomic(meta_path, json.dumps(meta, indent=1))
        log(f"  {wall:.1f} s wall, {cpu:.1f} s CPU")
        return meta

    def _load(self, r: Run, out: Path, meta: dict) -> Result:
        d = np.loadtxt(out / "power.csv", delimiter=",", skiprows=1, ndmin=2)
        self.total_wall += meta["wall_s"]
        return Result(r, d[:, 0], d[:, 1], d[:, 2], d[:, 3].astype(int), meta["wall_s"],
                      meta["command"], meta["cpu_s"])

    def pair(self, r: Run) -> Result:
        """The paired-fixed mean of the +/- runs of r (wall: the sum of both)."""
        from dataclasses import replace
        a = self.run(replace(r, phase=+1))
        b = self.run(replace(r, phase=-1))
        if not np.array_equal(a.n_modes, b.n_modes):
            die(f"the paired runs of {r.name()} have different bins")
        return Result(replace(r, phase=0), a.k, 0.5 * (a.P + b.P), 0.5 * (a.P_lin + b.P_lin),
                      a.n_modes, a.wall + b.wall, a.command, a.cpu + b.cpu)

    def ensemble(self, r: Run, seeds) -> Result:
        """The mean over noise seeds of the paired-fixed pairs of r (wall: the sum of all)."""
        from dataclasses import replace
        rs = [self.pair(replace(r, noise_seed=s)) for s in seeds]
        P = np.mean([x.P for x in rs], axis=0)
        P_lin = np.mean([x.P_lin for x in rs], axis=0)
        return Result(replace(r, noise_seed=0), rs[0].k, P, P_lin, rs[0].n_modes,
                      sum(x.wall for x in rs), rs[0].command, sum(x.cpu for x in rs))


def rebin(k: np.ndarray, n_modes: np.ndarray, arrays, min_width: float = 0.1):
    """Merges consecutive bins (mode-weighted means) until each group spans at least
    min_width * k: wide bins on small scales, where single 2 pi / L bins of one box scatter
    by a few per cent. Returns k, n_modes and the merged arrays."""
    groups, start = [], 0
    dk = k[1] - k[0] if len(k) > 1 else 1.0
    for i in range(len(k)):
        if (i - start + 1) * dk >= min_width * k[start] or i == len(k) - 1:
            groups.append((start, i + 1))
            start = i + 1
    w = n_modes.astype(float)
    out_k = np.array([np.average(k[a:b], weights=w[a:b]) for a, b in groups])
    out_n = np.array([n_modes[a:b].sum() for a, b in groups])
    outs = [np.array([np.average(x[a:b], weights=w[a:b]) for a, b in groups]) for x in arrays]
    return out_k, out_n, outs


# ----------------------------------------------------------------------------- bin averages
def shell_counts(mesh: int) -> np.ndarray:
    """counts[s] = number of integer vectors n in [-M/2, M/2)^3 with |n|^2 = s (exact)."""
    from scipy.signal import fftconvolve
    n = np.arange(-mesh // 2, mesh // 2)
    c1 = np.bincount(n * n).astype(float)
    c3 = fftconvolve(fftconvolve(c1, c1), c1)
    return np.rint(c3).astype(np.int64)


def bin_average(box: float, mesh: int, k_bins: np.ndarray, n_modes: np.ndarray, func) -> np.ndarray:
    """func(k) averaged over the modes of diffpm's linear bins (width 2 pi / L, edges at
    (b + 1/2) 2 pi / L), matched to the bins of power.csv by their mode counts."""
    counts = shell_counts(mesh)
    dk = 2 * math.pi / box
    s = np.nonzero(counts)[0]
    s = s[s > 0]
    c = counts[s]
    kk = dk * np.sqrt(s)
    b = np.floor(np.sqrt(s) - 0.5 + 1e-12).astype(int)
    f = func(kk)
    nb = b.max() + 1
    num = np.bincount(b, weights=c * f, minlength=nb)
    cnt = np.bincount(b, weights=c, minlength=nb)
    kmean = np.bincount(b, weights=c * kk, minlength=nb)
    out = np.empty(len(k_bins))
    for i, (k, n) in enumerate(zip(k_bins, n_modes)):
        j = int(np.argmin(np.abs(kmean / np.maximum(cnt, 1) - k)))
        if int(round(cnt[j])) != int(n):
            die(f"bin at k = {k:.4g} has {n} modes in power.csv but {cnt[j]:.0f} here")
        out[i] = num[j] / cnt[j]
    return out


# ----------------------------------------------------------------------------- tolerances
def k_within(k: np.ndarray, ratio: np.ndarray, tol: float, k_max: float,
             k_min: float = 0.0) -> float | None:
    """The largest k <= k_max such that every bin from k_min up to it has |ratio - 1| <= tol;
    None if the first bin (at or above k_min) already misses."""
    ok = None
    for kk, r in zip(k, ratio):
        if kk < k_min:
            continue
        if kk > k_max:
            break
        if abs(r - 1) > tol:
            break
        ok = kk
    return ok


def fmt_k(k: float | None) -> str:
    return "-" if k is None else f"{k:.2f}"


def within_str(k: np.ndarray, ratio: np.ndarray, tol: float, k_max: float,
               k_min: float = 0.0) -> str:
    """k_within as text, with "+" when every bin up to k_max passes (the range is then
    limited by the mesh, or by k_max, not by the tolerance)."""
    kw = k_within(k, ratio, tol, k_max, k_min)
    last = k[k <= k_max][-1] if np.any(k <= k_max) else None
    return fmt_k(kw) + ("+" if kw is not None and kw == last else "")


def shade_bands(ax, bands=(0.10, 0.05, 0.02)):
    for tol, alpha in zip(bands, (0.10, 0.15, 0.22)):
        ax.axhspan(1 - tol, 1 + tol, color="tab:gray", alpha=alpha, lw=0)
    ax.axhline(1, color="k", lw=0.6)


def common_args(parser, default_threads: int = 1):
    parser.add_argument("--sim", default=DEFAULT_SIM,
                        help="path of diffpm-sim (default: $DIFFPM_SIM or build/examples/diffpm-sim)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help="folder of the runs (cached: a run whose power.csv and meta.json "
                             "exist with the same command is not run again) [validation/runs]")
    parser.add_argument("--threads", type=int, default=default_threads,
                        help="--threads of each diffpm-sim run (runs go one at a time) [1]")
    parser.add_argument("--force", action="store_true", help="rerun even cached runs")
    parser.add_argument("--no-docs", action="store_true",
                        help="do not rewrite docs/validation.md and its figures")
