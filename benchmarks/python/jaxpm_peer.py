#!/usr/bin/env python3
"""Peer timing: JaxPM (PyPI `jaxpm`) forward simulation and its gradient by jax.grad, on the CPU.

What it measures: the wall time of one jitted call of jax.value_and_grad of the field-level loss

    w --linear_field--> delta_L --2LPT at a_start--> (x, p) --S FastPM KDK steps--> x(a = 1)
      --CIC paint--> delta  -->  L = 1/2 sum_cells (delta - t)^2

with respect to (w, Omega_c, sigma8), where w is the N^3 white noise and t a fixed target field
on the force mesh. The compile time is measured separately (jax.jit(...).lower(...).compile()),
then one warm-up call, then `repeats` steady-state calls, each ended by jax.block_until_ready.

How it matches diffpm's run (docs/conventions.md):
  - N^3 particles on an N^3 lattice, an M^3 force mesh (default N = M = 64), box 256 Mpc/h,
    Planck-2018-like parameters (Omega_c = 0.26067, Omega_b = 0.048975, h = 0.6766,
    n_s = 0.9665, sigma8 = 0.8102, flat, w0 = -1, wa = 0, no radiation), Eisenstein & Hu linear
    P(k) (jax_cosmo's default), tabulated at z = 0 on 256 log-spaced k and interpolated linearly
    by jaxpm.kernels.interpolate_power_spectrum, with the k = 0 mode set to zero;
  - the white noise is an input (jaxpm.pm.linear_field is called with its normal_field replaced
    by w during tracing, the way validation/field_level/compare_jaxpm.py does), so w is a
    differentiable argument as in diffpm's model::ForwardModel;
  - 2LPT at a_start = 0.1 by jaxpm.pm.lpt (order=2), particles on the lattice translated by half
    a force-mesh cell (diffpm's particles::kink_free_offset);
  - S = 10 FastPM kick-drift-kick steps, linear in a, half steps at sqrt(a_i a_{i+1}), with the
    FastPM factors G_f = a^2 E f D built from JaxPM's growth functions (jaxpm.pm.growth_factor,
    growth_rate, jax_cosmo's E(a)), forces by jaxpm.pm.pm_forces (when M = N; otherwise the same
    kernels with JaxPM's CIC implementation on M^3), the steps written as a jax.lax.scan;
  - the final overdensity painted on the force mesh by jaxpm.painting.cic_paint, minus 1.
JaxPM's own discretisation is kept everywhere (its gradient kernel, its growth ODE), so this is a
cost comparison at the same problem size and step count, not a bitwise one.

Threads: XLA reads XLA_FLAGS when jax is first imported. This module imports jax only inside its
functions, so a caller sets XLA_FLAGS (and JAX_PLATFORMS=cpu) first; the command line does it
from --threads. These flags do not cap the size of XLA's CPU thread pool (with jax 0.10 on two
cores, --threads 1 still kept about 1.8 cores busy: compare run_cpu_s with run_s); for a true
one-core figure, also pin the process (taskset -c 0).

Usage, from the repository root, in a Python environment with jaxpm, jax and jax_cosmo (PyPI):
  python benchmarks/python/jaxpm_peer.py --n 64 --threads 2 \\
      --repeats 3 --dtype float32
  python benchmarks/python/jaxpm_peer.py --check
The first prints one JSON line with the timings; --check compares the gradient with central
finite differences of the loss (N = M = 16 in a 64 Mpc/h box, float64: along one random unit
direction of w, and in Omega_c and sigma8), prints the relative errors as one JSON line and
exits with status 1 if one exceeds 1e-4.
"""

import argparse
import contextlib
import json
import os
import sys
import time

PLANCK18 = dict(Omega_c=0.26067, Omega_b=0.048975, h=0.6766, n_s=0.9665, sigma8=0.8102)


def xla_flags(threads):
    """The XLA_FLAGS value that runs XLA's CPU backend on `threads` threads."""
    eigen = "true" if threads > 1 else "false"
    return f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"


def _setup_jax(dtype):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, not {dtype!r}")
    jax.config.update("jax_enable_x64", dtype == "float64")
    return jax


@contextlib.contextmanager
def _noise_as_normal_field(pm, w):
    """jaxpm.pm.normal_field returns w while the block runs (linear_field looks it up there)."""
    old = pm.normal_field
    pm.normal_field = lambda seed, shape, sharding=None, dtype=float: w
    try:
        yield
    finally:
        pm.normal_field = old


def make_loss(n=64, mesh=64, box=256.0, a_start=0.1, steps=10):
    """The loss L(w, Omega_c, sigma8, t) of the module docstring, as a JAX function of arrays:
    w of shape (n, n, n), Omega_c and sigma8 scalars, t of shape (mesh, mesh, mesh)."""
    import jax
    import jax.numpy as jnp
    import jax_cosmo as jc
    import numpy as np
    import jaxpm.pm as pm
    from jaxpm.distributed import fft3d, ifft3d
    from jaxpm.kernels import fftk, gradient_kernel, interpolate_power_spectrum, invlaplace_kernel
    from jaxpm.painting import _cic_paint_impl, _cic_read_impl, cic_paint

    lattice_shape = (n, n, n)
    mesh_shape = (mesh, mesh, mesh)
    scale = mesh / n  # force-mesh cells per lattice cell
    weight = 1.0 / scale**3  # particle mass in units of the mean density per mesh cell
    # P(k) table up to beyond the largest |k| of the lattice's modes.
    k_max = np.sqrt(3.0) * np.pi * n / box
    k_tab = np.logspace(-4.0, np.log10(max(10.0, 2.0 * k_max)), 256)

    a_nodes = np.linspace(a_start, 1.0, steps + 1)
    a_nodes[0], a_nodes[-1] = a_start, 1.0
    a_half = np.sqrt(a_nodes[:-1] * a_nodes[1:])

    def cosmology(omega_c, sigma8):
        p = dict(PLANCK18, Omega_c=omega_c, sigma8=sigma8)
        return jc.Cosmology(Omega_k=0.0, w0=-1.0, wa=0.0, **p)

    def paint(pos):
        if mesh == n:
            return cic_paint(jnp.zeros(mesh_shape, dtype=pos.dtype), pos)
        return _cic_paint_impl(jnp.zeros(mesh_shape, dtype=pos.dtype), pos, weight)

    def forces(pos):
        """-grad phi at the particles, lap phi = delta, in force-mesh units (no 3/2 Omega_m)."""
        if mesh == n:
            return pm.pm_forces(pos, mesh_shape=mesh_shape)
        delta_k = fft3d(paint(pos))
        kvec = fftk(delta_k)
        pot_k = delta_k * invlaplace_kernel(kvec)
        return jnp.stack(
            [_cic_read_impl(ifft3d(-gradient_kernel(kvec, i) * pot_k), pos) for i in range(3)],
            axis=-1,
        )

    def loss(w, omega_c, sigma8, target):
        # Two cosmology objects: jax_cosmo's power spectrum caches a growth table (without the
        # second-order columns) under the key JaxPM's growth functions use for theirs.
        cosmo_pk = cosmology(omega_c, sigma8)
        cosmo = cosmology(omega_c, sigma8)
        dtype = w.dtype

        k_j = jnp.asarray(k_tab, dtype=dtype)
        p_j = jc.power.linear_matter_power(cosmo_pk, k_j, a=1.0).astype(dtype)

        def pk(k):
            return jnp.where(k > 0, interpolate_power_spectrum(k, k_j, p_j), 0.0)

        with _noise_as_normal_field(pm, w):
            lin = pm.linear_field(lattice_shape, [box] * 3, pk, seed=None)

        # 2LPT in lattice units, then particles in force-mesh units with the half-cell offset.
        dx, p, _ = pm.lpt(cosmo, lin, particles=None, a=a_start, order=2)
        q = jnp.stack(jnp.meshgrid(*[jnp.arange(n, dtype=dtype)] * 3, indexing="ij"), axis=-1)
        pos = (q + dx) * scale + 0.5
        p = p * scale

        # FastPM factors from JaxPM's growth: G_f = a^2 E f D (p = a^3 E dx/da). The kick
        # dG_f / (3/2 Omega_m D) times 3/2 Omega_m F is written with the 3/2 Omega_m cancelled.
        a_all = jnp.asarray(np.concatenate([a_nodes, a_half]), dtype=dtype)
        d = pm.growth_factor(cosmo, a_all)
        gf = a_all**2 * jnp.sqrt(jc.background.Esqr(cosmo, a_all)) * pm.growth_rate(cosmo, a_all)
        gf = gf * d
        d_a = d[: steps + 1]
        gf_a, gf_h = gf[: steps + 1], gf[steps + 1 :]
        kick1 = (gf_h - gf_a[:-1]) / d_a[:-1]
        drift = (d_a[1:] - d_a[:-1]) / gf_h
        kick2 = (gf_a[1:] - gf_h) / d_a[1:]

        def step(state, c):
            pos, p, f = state
            k1, dr, k2 = c
            p = p + k1 * f
            pos = pos + dr * p
            f = forces(pos)
            p = p + k2 * f
            return (pos, p, f), None

        (pos, p, _), _ = jax.lax.scan(step, (pos, p, forces(pos)), (kick1, drift, kick2))

        delta = paint(pos) - 1.0
        return 0.5 * jnp.sum((delta - target) ** 2)

    return loss


def _inputs(n, mesh, dtype, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, n, n)).astype(dtype)
    target = rng.standard_normal((mesh, mesh, mesh)).astype(dtype)
    return w, target


def time_jaxpm(n=64, mesh=64, box=256.0, a_start=0.1, steps=10, repeats=3, dtype="float32", seed=0):
    """Compile time, steady-state forward + gradient wall times (and the process CPU time of
    each, which shows how many threads XLA kept busy), loss and |dL/dw| of JaxPM on the
    configuration of the module docstring."""
    jax = _setup_jax(dtype)
    import jax.numpy as jnp
    import numpy as np
    from importlib.metadata import version

    loss = make_loss(n=n, mesh=mesh, box=box, a_start=a_start, steps=steps)
    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    w, target = _inputs(n, mesh, dtype, seed)
    args = (
        jnp.asarray(w),
        jnp.asarray(PLANCK18["Omega_c"], dtype=dtype),
        jnp.asarray(PLANCK18["sigma8"], dtype=dtype),
        jnp.asarray(target),
    )
    jax.block_until_ready(args)

    t0 = time.perf_counter()
    lowered = fn.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()

    t3 = time.perf_counter()
    value, grads = jax.block_until_ready(compiled(*args))  # warm-up
    first_run_s = time.perf_counter() - t3
    run_s, run_cpu_s = [], []
    for _ in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        value, grads = jax.block_until_ready(compiled(*args))
        run_s.append(time.perf_counter() - t)
        run_cpu_s.append(time.process_time() - c)

    g_w, g_oc, g_s8 = (np.asarray(g, dtype=np.float64) for g in grads)
    value = float(value)
    if not (
        np.isfinite(value) and np.all(np.isfinite(g_w)) and np.isfinite(g_oc) and np.isfinite(g_s8)
    ):
        raise FloatingPointError("jaxpm_peer: the loss or its gradient is not finite")
    return {
        "code": "jaxpm",
        "n": n,
        "mesh": mesh,
        "box": box,
        "a_start": a_start,
        "steps": steps,
        "dtype": dtype,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "device": str(jax.devices()[0]),
        "compile_s": t2 - t0,
        "lower_s": t1 - t0,
        "first_run_s": first_run_s,
        "run_s": run_s,
        "run_cpu_s": run_cpu_s,
        "loss": value,
        "grad_norm_w": float(np.linalg.norm(g_w)),
        "dL_dOmega_c": float(g_oc),
        "dL_dsigma8": float(g_s8),
        "jax_version": jax.__version__,
        "jaxlib_version": version("jaxlib"),
        "jaxpm_version": version("jaxpm"),
        "jax_cosmo_version": version("jax-cosmo"),
    }


def check_gradient(n=16, mesh=None, box=None, a_start=0.1, steps=10, seed=0, eps=1e-4):
    """jax.grad against central finite differences of the loss, in float64: along one random
    unit direction of w, and in Omega_c and sigma8. Returns the relative errors."""
    jax = _setup_jax("float64")
    import jax.numpy as jnp
    import numpy as np

    mesh = n if mesh is None else mesh
    box = 256.0 * n / 64 if box is None else box  # 4 Mpc/h per particle, as at n = 64
    loss = make_loss(n=n, mesh=mesh, box=box, a_start=a_start, steps=steps)
    f = jax.jit(loss)
    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    w, target = _inputs(n, mesh, "float64", seed)
    oc, s8 = PLANCK18["Omega_c"], PLANCK18["sigma8"]
    w, target = jnp.asarray(w), jnp.asarray(target)
    value, (g_w, g_oc, g_s8) = vg(w, oc, s8, target)
    v = np.random.default_rng(seed + 1).standard_normal(w.shape)
    v = jnp.asarray(v / np.linalg.norm(v))

    def central(fp, fm, h):
        return (float(fp) - float(fm)) / (2.0 * h)

    fd_w = central(f(w + eps * v, oc, s8, target), f(w - eps * v, oc, s8, target), eps)
    h_oc, h_s8 = eps * oc, eps * s8
    fd_oc = central(f(w, oc + h_oc, s8, target), f(w, oc - h_oc, s8, target), h_oc)
    fd_s8 = central(f(w, oc, s8 + h_s8, target), f(w, oc, s8 - h_s8, target), h_s8)
    ad_w = float(jnp.vdot(g_w, v))
    rows = {
        "w_direction": (ad_w, fd_w),
        "Omega_c": (float(g_oc), fd_oc),
        "sigma8": (float(g_s8), fd_s8),
    }
    out = {
        "n": n,
        "mesh": mesh,
        "box": box,
        "steps": steps,
        "dtype": "float64",
        "eps": eps,
        "loss": float(value),
    }
    for name, (ad, fd) in rows.items():
        out[name] = {
            "grad": ad,
            "finite_difference": fd,
            "relative_error": abs(ad - fd) / max(abs(fd), 1e-300),
        }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64, help="N^3 particles on an N^3 lattice [64]")
    ap.add_argument("--mesh", type=int, default=None, help="force mesh M^3 [N]")
    ap.add_argument("--box", type=float, default=256.0, help="box side in Mpc/h [256]")
    ap.add_argument("--a-start", type=float, default=0.1, help="2LPT time [0.1]")
    ap.add_argument("--steps", type=int, default=10, help="FastPM KDK steps to a = 1 [10]")
    ap.add_argument("--repeats", type=int, default=3, help="steady-state timed calls [3]")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--seed", type=int, default=0, help="numpy seed of w and t [0]")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="XLA CPU threads (sets XLA_FLAGS; default: leave XLA_FLAGS as it is)",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="check the gradient by finite differences (N = 16, float64) instead",
    )
    args = ap.parse_args()
    if args.threads is not None:
        if "jax" in sys.modules:
            sys.exit("jaxpm_peer: jax was imported before XLA_FLAGS could be set")
        os.environ["XLA_FLAGS"] = xla_flags(args.threads)
    os.environ["JAX_PLATFORMS"] = "cpu"

    if args.check:
        out = check_gradient(n=16, steps=args.steps, a_start=args.a_start, seed=args.seed)
        print(json.dumps(out))
        worst = max(out[k]["relative_error"] for k in ("w_direction", "Omega_c", "sigma8"))
        if worst > 1e-4:
            sys.exit(f"jaxpm_peer: gradient check failed, relative error {worst:.3g}")
        return
    out = time_jaxpm(
        n=args.n,
        mesh=args.n if args.mesh is None else args.mesh,
        box=args.box,
        a_start=args.a_start,
        steps=args.steps,
        repeats=args.repeats,
        dtype=args.dtype,
        seed=args.seed,
    )
    out["threads"] = args.threads
    print(json.dumps(out))


if __name__ == "__main__":
    main()
