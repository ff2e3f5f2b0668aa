#!/usr/bin/env python3
"""diffpm from Python in one page: a PM run with its power spectrum, then the exact gradient of
a field-level loss with respect to the cosmological parameters and the initial white noise,
through jax.grad.

Run from the repository root after `pip install ".[jax]"` (README.md, "Python"); about 10 s on
two cores.
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import diffpm  # noqa: E402
import diffpm.jax as djax  # noqa: E402

# 32^3 particles in a 128 Mpc/h box, a 64^3 force mesh, 2LPT at a = 0.1, 10 FastPM steps.
cfg = diffpm.SimulationConfig(box=128.0, particles=32, mesh=64, steps=10, a_start=0.1, seed=42)

# A forward run: particles, their CIC density and its power spectrum against linear theory.
params = diffpm.Parameters(Omega_c=0.25, sigma8=0.8)
run = diffpm.simulate(params, cfg)
delta = diffpm.paint_density(run["positions"], cfg.box, cfg.mesh)
pk = diffpm.power_spectrum(delta, cfg.box, deconvolve_cic=True, n_bins=8, k_max=0.8)
p_lin = diffpm.Cosmology(params).linear_power(pk["k"], 1.0)
print("k [h/Mpc]   P/P_lin at a = 1")
for k, p, pl in zip(pk["k"], pk["power"], p_lin):
    print(f"  {k:6.3f}    {p / pl:6.3f}")

# The differentiable model on the same configuration: its final density, and a loss against a
# target field (here another seed's density), differentiated by jax.grad.
model = djax.ForwardModel(cfg, final_density=True)
target = model(djax.parameters(), model.white_noise(7))["density"]


def loss(omega_c, sigma8, noise):
    density = model(djax.parameters(Omega_c=omega_c, sigma8=sigma8), noise)["density"]
    return 0.5 * jnp.mean((density - target) ** 2)


noise = model.white_noise(42)
value, (d_omega_c, d_sigma8, d_noise) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(
    0.25, 0.8, noise)
print(f"loss {float(value):.6g}")
print(f"dL/dOmega_c {float(d_omega_c):.6g}, dL/dsigma8 {float(d_sigma8):.6g}, "
      f"|dL/dnoise| {float(jnp.linalg.norm(d_noise)):.6g} over {np.prod(noise.shape)} lattice values")
