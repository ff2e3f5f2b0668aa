"""Field-level inference with NumPyro: Omega_c and sigma8 from a mock convergence map.

The Python counterpart of the ``diffpm-infer`` example (examples/diffpm_infer.cpp,
docs/inference.md). A small lensing forward model (particle-mesh N-body run, lightcone, Born
convergence map) is wrapped as a JAX function by :class:`diffpm.jax.ForwardModel`, whose
gradient is diffpm's exact adjoint. NumPyro's NUTS then samples Omega_c, sigma8 and the whole
initial white-noise field (one standard normal per particle, 16^3 by default) jointly:

    Omega_c     ~ Uniform(0.15, 0.45)
    sigma8      ~ Uniform(0.5, 1.1)
    white_noise ~ Normal(0, 1)                    (the particle lattice's shape)
    data        ~ Normal(kappa(Omega_c, sigma8, white_noise), sigma_pix)   (every pixel)

The other cosmological parameters are held at Planck 2018. The mock is the model at the truth
(Planck 2018: Omega_c = 0.26067, sigma8 = 0.8102) on the white noise of ``--truth-seed``, plus
Gaussian shape noise of rms sigma_pix = sigma_e / sqrt(n_gal A_pix) per pixel (sigma_e per
shear component, n_gal galaxies per arcmin^2, A_pix the pixel area in arcmin^2; the same
formula as diffpm-infer, drawn here with NumPy so the noise realisation differs from the C++
one).

Every leapfrog step of NUTS is one forward run and one gradient of the model, in single
precision. The sampler adapts a diagonal mass matrix and its step size during the warm-up;
the diffpm-infer C++ sampler instead uses a Gauss-Newton mass, which mixes better per gradient
(expect a few effective samples of sigma8 from a short chain here: it is a demonstration of the
gradients in a standard sampler, not a converged analysis).

Run it from the repository root after ``pip install ".[examples]"``::

    python examples/python/infer_numpyro.py                           # defaults
    python examples/python/infer_numpyro.py --warmup 50 --samples 50  # a quick look
    python examples/python/infer_numpyro.py --out chain.npz --threads 1

Expected runtime with the defaults: about 4.5 minutes on two cores (about 0.09 s per forward
run and gradient, up to 2^max_tree_depth - 1 = 15 of them per NUTS iteration, ~2,900 in all),
about 2 minutes with ``--warmup 50 --samples 50``. It prints the posterior mean and standard
deviation of Omega_c and sigma8 next to the truth, the mean acceptance probability, the number
of gradient evaluations and the wall time. ``--out FILE`` writes the chain (Omega_c, sigma8, the
sampler's diagnostics and the posterior mean of the white noise) as a small .npz, atomically.

White-noise fields far outside the prior (NUTS's initial step-size search proposes some) make
diffpm refuse the run; the model is built with ``nan_on_failure=True``, so they get a NaN
likelihood, which NUTS rejects as a divergence, instead of an error that would end the chain.
"""

import argparse
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS, init_to_value

import diffpm
import diffpm.jax as djax

# Planck 2018, diffpm's default cosmology: the truth of the mock.
TRUTH = {"Omega_c": diffpm.Parameters().Omega_c, "sigma8": diffpm.Parameters().sigma8}
PRIOR = {"Omega_c": (0.15, 0.45), "sigma8": (0.5, 1.1)}


def parse_arguments(argv=None):
    p = argparse.ArgumentParser(
        description="NumPyro NUTS over Omega_c, sigma8 and the initial white noise, from a "
        "mock convergence map with shape noise (diffpm's forward model and exact gradient).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    m = p.add_argument_group("model")
    m.add_argument("--particles", type=int, default=16, help="N^3 particles")
    m.add_argument("--mesh", type=int, default=32, help="M^3 force mesh")
    m.add_argument("--box", type=float, default=128.0, help="box side in Mpc/h")
    m.add_argument("--steps", type=int, default=6, help="FastPM steps from a-start to 1")
    m.add_argument("--a-start", type=float, default=0.1, help="initial scale factor")
    m.add_argument("--pixels", type=int, default=16, help="P x P map pixels")
    m.add_argument("--fov", type=float, default=4.0, help="map side in degrees")
    m.add_argument("--planes", type=int, default=8, help="lightcone planes")
    m.add_argument("--z-source", type=float, default=1.0, help="source redshift")
    d = p.add_argument_group("data")
    d.add_argument("--sigma-e", type=float, default=0.26, help="shape noise per component")
    d.add_argument("--n-gal", type=float, default=30.0, help="galaxies per arcmin^2")
    d.add_argument("--truth-seed", type=int, default=1, help="white noise of the mock")
    d.add_argument("--shape-noise-seed", type=int, default=2, help="shape noise of the mock")
    s = p.add_argument_group("sampler")
    s.add_argument("--seed", type=int, default=3, help="NUTS random key")
    s.add_argument("--warmup", type=int, default=100, help="warm-up iterations")
    s.add_argument("--samples", type=int, default=100, help="samples kept after the warm-up")
    s.add_argument("--max-tree-depth", type=int, default=4,
                   help="NUTS tree depth limit (at most 2^depth - 1 gradients per iteration)")
    s.add_argument("--target-accept", type=float, default=0.8,
                   help="target acceptance probability of the step-size adaptation")
    s.add_argument("--init", choices=("prior", "truth"), default="prior",
                   help="start (Omega_c, sigma8) at the prior's median or at the truth")
    s.add_argument("--init-noise", choices=("zeros", "draw"), default="zeros",
                   help="start the white noise at zeros or at a standard normal draw")
    s.add_argument("--threads", type=int, default=0,
                   help="diffpm's OpenMP threads (0: leave diffpm's default)")
    s.add_argument("--out", default=None, help="write the chain to this .npz")
    s.add_argument("--progress", action="store_true", help="show NumPyro's progress bar")
    a = p.parse_args(argv)
    if a.warmup < 1 or a.samples < 2:
        p.error("--warmup must be >= 1 and --samples >= 2")
    if not 1 <= a.max_tree_depth <= 12:
        p.error("--max-tree-depth must be in [1, 12]")
    return a


def sigma_pixel(fov_deg, pixels, sigma_e, n_gal):
    """Shape-noise rms of one pixel: sigma_e / sqrt(n_gal A_pix), A_pix in arcmin^2."""
    side_arcmin = fov_deg * 60.0 / pixels
    return sigma_e / np.sqrt(n_gal * side_arcmin**2)


def make_forward_model(a):
    cfg = diffpm.SimulationConfig(
        box=a.box, particles=a.particles, mesh=a.mesh, steps=a.steps, a_start=a.a_start,
        a_end=1.0,
    )
    lens = diffpm.LensingConfig(pixels=a.pixels, fov_deg=a.fov, planes=a.planes)
    # Single precision: NumPyro runs in float32 unless x64 is enabled, and the sampler does not
    # need more (the gradient is exact for the float32 forward run).
    # nan_on_failure: NUTS's initial step-size search doubles the step until the energy blows
    # up, and proposes white-noise fields so large that particles would drift beyond what the
    # fixed-point state holds. diffpm refuses such a run; inside jit an error would end the
    # chain, so the model gives NaN instead, which NUTS rejects.
    return djax.ForwardModel(cfg, lensing=lens, sources=[a.z_source], precision="float",
                             nan_on_failure=True)


def make_numpyro_model(forward, sigma_pix):
    shape = tuple(forward.model.noise_shape)

    def model(data):
        omega_c = numpyro.sample("Omega_c", dist.Uniform(*PRIOR["Omega_c"]))
        sigma8 = numpyro.sample("sigma8", dist.Uniform(*PRIOR["sigma8"]))
        noise = numpyro.sample(
            "white_noise", dist.Normal(jnp.zeros(shape), 1.0).to_event(len(shape))
        )
        theta = djax.parameters(Omega_c=omega_c, sigma8=sigma8)
        # A point the model refuses (nan_on_failure, make_forward_model) gives a NaN kappa:
        # a NaN likelihood, which NUTS rejects as a divergence.
        kappa = forward(theta, noise)["kappa"]
        numpyro.sample("data", dist.Normal(kappa, sigma_pix).to_event(kappa.ndim), obs=data)

    return model


def save_atomically(path, **arrays):
    """np.savez to a temporary file next to `path`, then os.replace: a reader never sees a
    half-written chain, and an interrupted run leaves the previous file intact."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".infer_numpyro.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv=None):
    a = parse_arguments(argv)
    if a.threads > 0:
        diffpm.set_num_threads(a.threads)
    say = lambda s: print(f"infer_numpyro: {s}", file=sys.stderr, flush=True)  # noqa: E731

    forward = make_forward_model(a)
    shape = tuple(forward.model.noise_shape)

    # The mock: the model at the truth on the white noise of --truth-seed, plus shape noise.
    truth_noise = forward.white_noise(a.truth_seed)
    kappa_true = forward(djax.parameters(**TRUTH), truth_noise)["kappa"]
    sigma_pix = float(sigma_pixel(a.fov, a.pixels, a.sigma_e, a.n_gal))
    rng = np.random.default_rng(a.shape_noise_seed)
    data = np.asarray(kappa_true) + sigma_pix * rng.standard_normal(kappa_true.shape)
    data = jnp.asarray(data, dtype=forward.dtype)
    say(f"mock map {kappa_true.shape[1]}^2 pixels: signal rms {float(jnp.std(kappa_true)):.4g}, "
        f"shape noise {sigma_pix:.4g} per pixel, {int(np.prod(shape))} white-noise variables")

    # The start. The parameters at the prior's median (or the truth); the white noise at zeros
    # (a map of zeros: the chain has to grow the field from the data) or at a prior draw.
    if a.init == "truth":
        start = dict(TRUTH)
    else:
        start = {k: 0.5 * (lo + hi) for k, (lo, hi) in PRIOR.items()}
    if a.init_noise == "zeros":
        start_noise = jnp.zeros(shape, forward.dtype)
    else:
        start_noise = jax.random.normal(jax.random.PRNGKey(a.seed + 1), shape, forward.dtype)
    init = {"Omega_c": jnp.float32(start["Omega_c"]), "sigma8": jnp.float32(start["sigma8"]),
            "white_noise": start_noise}

    kernel = NUTS(
        make_numpyro_model(forward, sigma_pix),
        init_strategy=init_to_value(values=init),
        max_tree_depth=a.max_tree_depth,
        target_accept_prob=a.target_accept,
        # A diagonal mass: a dense one over 4098 variables would cost 4098^2 per step and
        # need far more warm-up samples than this example takes to estimate.
        dense_mass=False,
    )
    mcmc = MCMC(kernel, num_warmup=a.warmup, num_samples=a.samples, progress_bar=a.progress)
    extra = ("num_steps", "accept_prob", "diverging", "potential_energy")

    t0 = time.perf_counter()
    # The warm-up separately, so that its leapfrog steps are counted too.
    mcmc.warmup(jax.random.PRNGKey(a.seed), data, extra_fields=extra, collect_warmup=True)
    # JAX dispatches asynchronously: wait for the chain before reading the clock.
    warm = jax.block_until_ready(mcmc.get_extra_fields())
    t_warm = time.perf_counter() - t0
    say(f"warm-up: {a.warmup} iterations in {t_warm:.1f} s, step size "
        f"{float(mcmc.last_state.adapt_state.step_size):.3g}")
    mcmc.run(mcmc.post_warmup_state.rng_key, data, extra_fields=extra)
    jax.block_until_ready(mcmc.get_samples())
    wall = time.perf_counter() - t0

    samples = mcmc.get_samples()
    fields = mcmc.get_extra_fields()
    oc = np.asarray(samples["Omega_c"], dtype=np.float64)
    s8 = np.asarray(samples["sigma8"], dtype=np.float64)
    steps_warm = int(np.sum(warm["num_steps"]))
    steps_run = int(np.sum(fields["num_steps"]))
    accept = float(np.mean(fields["accept_prob"]))
    divergent = int(np.sum(fields["diverging"]))

    print(f"{'parameter':>9} {'truth':>8} {'mean':>8} {'std':>8} {'pull':>6} {'n_eff':>6}")
    for name, chain in (("Omega_c", oc), ("sigma8", s8)):
        mean, sd = chain.mean(), chain.std(ddof=1)
        n_eff = float(numpyro.diagnostics.effective_sample_size(chain[None, :]))
        print(f"{name:>9} {TRUTH[name]:8.4f} {mean:8.4f} {sd:8.4f} "
              f"{(mean - TRUTH[name]) / sd:+6.2f} {n_eff:6.1f}")
    print(f"acceptance (mean accept_prob after warm-up): {accept:.3f}")
    print(f"step size: {float(mcmc.last_state.adapt_state.step_size):.4g}, divergences: "
          f"{divergent}, mean tree size: {steps_run / a.samples:.1f}")
    print(f"gradient evaluations: {steps_warm + steps_run} ({steps_warm} warm-up, "
          f"{steps_run} sampling)")
    print(f"wall time: {wall:.1f} s ({1e3 * wall / max(1, steps_warm + steps_run):.0f} ms "
          f"per gradient)")

    if a.out:
        save_atomically(
            a.out,
            Omega_c=oc,
            sigma8=s8,
            accept_prob=np.asarray(fields["accept_prob"]),
            num_steps=np.asarray(fields["num_steps"]),
            diverging=np.asarray(fields["diverging"]),
            potential_energy=np.asarray(fields["potential_energy"]),
            white_noise_mean=np.asarray(jnp.mean(samples["white_noise"], axis=0)),
            truth=np.array([TRUTH["Omega_c"], TRUTH["sigma8"]]),
            data=np.asarray(data),
            sigma_pix=np.float64(sigma_pix),
        )
        say(f"chain written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
