"""diffpm.jax: jax.grad through the XLA custom calls equals diffpm.Model's gradient (the same
C++ tape: bit for bit in double) and central finite differences; jit, repeated calls, vmap,
float32 and the errors."""
import gc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffpm
import diffpm.jax as djax


def lensing_config():
    cfg = diffpm.SimulationConfig(box=64.0, particles=16, mesh=32, steps=3, a_start=0.5)
    return cfg, diffpm.LensingConfig(pixels=16, fov_deg=3.0, planes=6)


def make(precision="double", **kw):
    cfg, lens = lensing_config()
    return djax.ForwardModel(cfg, lensing=lens, sources=[0.5, 1.0], final_density=True,
                             precision=precision, **kw)


def loss_of(model, target):
    def loss(omega_c, sigma8, noise):
        out = model(djax.parameters(Omega_c=omega_c, sigma8=sigma8), noise)
        return 0.5 * jnp.sum((out["kappa"] - target) ** 2) * 1e4 + 0.5 * jnp.sum(
            out["density"] ** 2) * 1e-3
    return loss


def test_grad_equals_model_gradient_bitwise():
    f = make()
    noise = f.white_noise(4)
    target = jnp.zeros(f.model.kappa_shape)
    loss = loss_of(f, target)
    value, (g_oc, g_s8, g_w) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(
        0.27, 0.82, noise)
    # The same through diffpm.Model's NumPy interface.
    m = f.model
    out = m.forward(diffpm.Parameters(Omega_c=0.27, sigma8=0.82), np.asarray(noise))
    assert value == pytest.approx(0.5 * np.sum(out["kappa"] ** 2) * 1e4
                                  + 0.5 * np.sum(out["density"] ** 2) * 1e-3, rel=1e-14)
    g = m.gradient(kappa_bar=out["kappa"] * 1e4, density_bar=out["density"] * 1e-3)
    assert float(g_oc) == g["parameters"][0]
    assert float(g_s8) == g["parameters"][4]
    np.testing.assert_array_equal(np.asarray(g_w), g["noise"])
    assert m.recorded_runs == 0  # every recorded run was consumed


def test_grad_equals_central_differences():
    f = make()
    noise = f.white_noise(9)
    target = jnp.asarray(np.random.default_rng(2).normal(0, 0.01, f.model.kappa_shape))
    loss = jax.jit(loss_of(f, target))
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    g_oc, g_s8, g_w = grad(0.27, 0.82, noise)
    # CIC's kinks bias a central difference in proportion to its step: measured here, 1.7e-4
    # relative at h = 1e-4, 4e-8 at h = 1e-7, where the state's rounding (~1e-12 |L|, |L| ~ 800)
    # is still far below; h = 1e-7 as the C++ tests, tolerance 1e-5.
    h = 1e-7
    fd_oc = (loss(0.27 + h, 0.82, noise) - loss(0.27 - h, 0.82, noise)) / (2 * h)
    fd_s8 = (loss(0.27, 0.82 + h, noise) - loss(0.27, 0.82 - h, noise)) / (2 * h)
    assert float(g_oc) == pytest.approx(float(fd_oc), rel=1e-5)
    assert float(g_s8) == pytest.approx(float(fd_s8), rel=1e-5)
    v = jnp.asarray(np.random.default_rng(3).normal(size=noise.shape))
    fd_w = (loss(0.27, 0.82, noise + h * v) - loss(0.27, 0.82, noise - h * v)) / (2 * h)
    assert float(jnp.sum(g_w * v)) == pytest.approx(float(fd_w), rel=1e-5)


def test_jit_repeated_calls_and_vmap():
    f = make()
    noises = jnp.stack([f.white_noise(s) for s in (1, 2, 3)])
    theta = djax.parameters(sigma8=0.8)
    run = jax.jit(f)
    a, b = run(theta, noises[0]), run(theta, noises[0])
    np.testing.assert_array_equal(a["kappa"], b["kappa"])  # same input, same bits
    np.testing.assert_array_equal(a["kappa"], f(theta, noises[0])["kappa"])

    def loss(th, w):
        return jnp.sum(f(th, w)["kappa"] ** 2)

    batched = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None, 0)))(theta, noises)
    for i in range(3):
        gt, gw = jax.grad(loss, argnums=(0, 1))(theta, noises[i])
        np.testing.assert_array_equal(batched[0][i][:5], gt[:5])
        np.testing.assert_array_equal(batched[1][i], gw)
    # Omega_k: the flat-sky lightcone does not differentiate curvature.
    assert np.isnan(batched[0][0][5])
    assert f.model.recorded_runs == 0


def test_float32_model():
    f = make("float")
    noise = f.white_noise(4)
    assert noise.dtype == jnp.float32
    theta = djax.parameters().astype(jnp.float32)
    out = jax.jit(f)(theta, noise)
    assert out["kappa"].dtype == jnp.float32 and out["density"].dtype == jnp.float32
    ref = f.model.forward(np.asarray(theta, np.float64), np.asarray(noise), record=False)
    np.testing.assert_array_equal(out["kappa"], ref["kappa"])
    g = jax.grad(lambda t: jnp.sum(f(t, noise)["density"] ** 2))(theta)
    assert g.dtype == jnp.float32 and np.isfinite(np.asarray(g)[[0, 1, 2, 3, 4, 6, 7]]).all()


def test_model_lives_as_long_as_a_function_that_holds_it():
    def make_loss():
        f = make()  # held by the closure only
        return jax.jit(lambda t, w: f(t, w)["density"].sum()), f.white_noise(1)

    fn, noise = make_loss()
    theta = djax.parameters()
    before = fn(theta, noise)
    gc.collect()
    assert fn(theta, noise) == before

    # Once nothing holds the model, XLA's compiled call finds no model: a clear error.
    f = make()
    g = jax.jit(lambda t, w, m=f.model.id: f(t, w)["density"].sum())
    g(theta, noise)
    del f
    gc.collect()
    with pytest.raises(Exception, match="does not exist .*garbage-collected"):
        jax.block_until_ready(g(theta, noise))


def test_nan_on_failure_lets_a_sampler_reject_the_point():
    f = make(nan_on_failure=True)
    noise = f.white_noise(1)

    def loss(t, w):
        return jnp.sum(f(t, w)["kappa"] ** 2)

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    for bad_theta, bad_noise in [(djax.parameters(Omega_c=-0.1), noise),  # refused parameter
                                 (djax.parameters(), noise * 1e6)]:  # drift beyond the state
        value, (gt, gw) = grad(bad_theta, bad_noise)
        assert np.isnan(value) and np.isnan(gt).all() and np.isnan(gw).all()
    value, (gt, gw) = grad(djax.parameters(), noise)  # and the model goes on
    assert np.isfinite(value) and np.isfinite(gw).all()
    assert f.model.recorded_runs == 0
    with pytest.raises(Exception, match="Omega_c = -0.1"):  # without the option: the error
        jax.block_until_ready(make()(djax.parameters(Omega_c=-0.1), noise))


def test_errors():
    f = make()
    noise = f.white_noise(1)
    with pytest.raises(ValueError, match=r"white noise has shape \(8, 8, 8\)"):
        f(djax.parameters(), jnp.zeros((8, 8, 8)))
    with pytest.raises(ValueError, match="theta has shape"):
        f(jnp.zeros(7), noise)
    with pytest.raises(ValueError, match="unknown parameter 'sigma_8'.*'sigma8'"):
        djax.parameters(sigma_8=0.8)
    # Values C++ rejects while running arrive with diffpm's message.
    with pytest.raises(Exception, match="Omega_c = -0.1"):
        jax.block_until_ready(jax.jit(f)(djax.parameters(Omega_c=-0.1), noise))
    with pytest.raises(ValueError, match="give either model= or"):
        djax.ForwardModel(diffpm.SimulationConfig(), model=f.model)
