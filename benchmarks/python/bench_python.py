#!/usr/bin/env python3
"""What the Python and JAX paths add to diffpm's C++ time, and JaxPM's jax.grad beside them.

One forward-and-gradient run of the field-level loss

    w -> linear field -> 2LPT at a = 0.1 -> 10 FastPM steps to a = 1 -> CIC density delta
      -> L = 1/2 sum_cells (delta - t)^2,   gradient with respect to theta and w,

at 64^3 particles on a 64^3 force mesh in a 256 Mpc/h box, float32, timed three ways in one
process, interleaved (one run of each per round, in an order that rotates, so that a load on the machine hits
all of them):

  cpp     model::ForwardModel's forward() and gradient() called from C++ in a loop
          (diffpm.Model._time_density_loss: no Python, no registry, no copies);
  python  diffpm.Model.forward() and .gradient() with NumPy arrays, the residual in NumPy;
  jax     jax.jit(jax.value_and_grad(loss)) over (theta, w) through diffpm.jax.ForwardModel's
          XLA custom calls; its compile time is reported separately.

  jaxpm   if jaxpm (PyPI) is installed: the same configuration in JaxPM, jax.jit of
          jax.value_and_grad over (w, Omega_c, sigma8) (benchmarks/python/jaxpm_peer.py), in the
          same rounds; its compile time is reported separately.

It prints the median of each, the ratios python/cpp and jax/cpp (what the bindings add) and
jaxpm/jax, and one JSON line with every time.

Usage, from the repository root, after `pip install .`:
  python benchmarks/python/bench_python.py [--rounds 5] [--threads 2] [--n 64] [--no-jaxpm]
XLA's CPU thread pool is not capped by XLA_FLAGS (jaxpm_peer.py's docstring): compare at the
machine's full thread count, or pin the process (taskset).
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import diffpm  # noqa: E402
import diffpm.jax as djax  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64, help="N^3 particles and N^3 mesh [64]")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds [5]")
    ap.add_argument("--threads", type=int, default=0, help="diffpm's threads [all]")
    ap.add_argument("--no-jaxpm", action="store_true", help="skip JaxPM even if installed")
    args = ap.parse_args()
    if args.threads > 0:
        diffpm.set_num_threads(args.threads)

    cfg = diffpm.SimulationConfig(box=256.0, particles=args.n, mesh=args.n, steps=10,
                                  a_start=0.1, lpt_order=2)
    forward = djax.ForwardModel(cfg, final_density=True, precision="float")
    model = forward.model
    theta = diffpm.Parameters().to_array()
    noise = model.white_noise(1)
    target = np.random.default_rng(0).normal(size=model.density_shape).astype(np.float32)

    def python_run():
        out = model.forward(theta, noise)
        return model.gradient(density_bar=out["density"] - target)["noise"]

    def loss(th, w):
        d = forward(th, w)["density"]
        return 0.5 * jnp.sum((d - target) ** 2)

    t0 = time.perf_counter()
    jax_run = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(
        jnp.asarray(theta, jnp.float32), jnp.asarray(noise)).compile()
    compile_s = time.perf_counter() - t0
    theta_j, noise_j = jnp.asarray(theta, jnp.float32), jnp.asarray(noise)

    times = {"cpp": [], "python": [], "jax": []}
    jaxpm_run, jaxpm_info = None, None
    if not args.no_jaxpm:
        try:
            import jaxpm  # noqa: F401
        except ImportError:
            print("jaxpm is not installed: JaxPM not timed (pip install jaxpm)")
        else:
            sys.path.insert(0, str(pathlib.Path(__file__).parent))
            import jaxpm_peer
            from importlib.metadata import version

            jl = jaxpm_peer.make_loss(n=args.n, mesh=args.n, box=256.0, a_start=0.1, steps=10)
            w_p, t_p = jaxpm_peer._inputs(args.n, args.n, "float32", 0)
            jargs = (jnp.asarray(w_p), jnp.asarray(0.26067, jnp.float32),
                     jnp.asarray(0.8102, jnp.float32), jnp.asarray(t_p))
            t0 = time.perf_counter()
            jaxpm_run = jax.jit(jax.value_and_grad(jl, argnums=(0, 1, 2))).lower(*jargs).compile()
            jaxpm_info = {"compile_s": time.perf_counter() - t0, "jaxpm": version("jaxpm")}
            jax.block_until_ready(jaxpm_run(*jargs))
            times["jaxpm"] = []
    model._time_density_loss(theta, noise, target, 1)  # warm-up: page faults, FFTW plans
    python_run()
    jax.block_until_ready(jax_run(theta_j, noise_j))
    def cpp_once():
        return model._time_density_loss(theta, noise, target, 1)[0]

    def timed(run):
        def once():
            t0 = time.perf_counter()
            jax.block_until_ready(run())
            return time.perf_counter() - t0
        return once

    paths = {"cpp": cpp_once, "python": timed(python_run),
             "jax": timed(lambda: jax_run(theta_j, noise_j))}
    if jaxpm_run is not None:
        paths["jaxpm"] = timed(lambda: jaxpm_run(*jargs))
    names = list(paths)
    for r in range(args.rounds):
        # The order rotates from round to round: what runs after JaxPM pays for XLA's threads
        # winding down, and no path should always be the one that does.
        for k in names[r % len(names):] + names[:r % len(names)]:
            times[k].append(paths[k]())

    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "n": args.n, "threads": diffpm.get_num_threads(), "rounds": args.rounds,
        "diffpm": diffpm.__version__, "jax": jax.__version__,
        "seconds": times, "median_s": med,
        "python_over_cpp": med["python"] / med["cpp"], "jax_over_cpp": med["jax"] / med["cpp"],
        "jax_compile_s": compile_s,
    }
    if jaxpm_run is not None:
        result["jaxpm_compile_s"] = jaxpm_info["compile_s"]
        result["jaxpm_version"] = jaxpm_info["jaxpm"]
        result["jaxpm_over_jax"] = med["jaxpm"] / med["jax"]
    print(f"N = {args.n}: {args.n}^3 particles, {args.n}^3 mesh, {result['threads']} threads, "
          f"{args.rounds} interleaved rounds, forward + gradient")
    for k in times:
        print(f"  {k:7s} median {med[k]:.3f} s   runs " + " ".join(f"{t:.3f}" for t in times[k]))
    print(f"  python / cpp = {result['python_over_cpp']:.3f}, jax / cpp = "
          f"{result['jax_over_cpp']:.3f}; jax compile {compile_s:.2f} s")
    if jaxpm_run is not None:
        print(f"  jaxpm / diffpm.jax = {result['jaxpm_over_jax']:.1f}; jaxpm compile "
              f"{result['jaxpm_compile_s']:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
