"""diffpm's forward model as a JAX function with diffpm's exact gradient.

The model runs in C++ through XLA FFI custom calls (registered for the CPU on first use); its
vector-Jacobian product is diffpm's hand-written adjoint, tied to the forward call by
``jax.custom_vjp``. ``jax.grad``, ``jax.jit`` and ``jax.vmap`` (a loop over the batch) work over
the convergence maps and the final density with respect to the cosmological parameters and the
white noise::

    import jax, jax.numpy as jnp, diffpm, diffpm.jax as djax
    cfg = diffpm.SimulationConfig(box=256.0, particles=64, mesh=64, steps=10)
    model = djax.ForwardModel(cfg, final_density=True)
    noise = model.white_noise(seed=1)

    def loss(omega_c, sigma8, noise):
        out = model(djax.parameters(Omega_c=omega_c, sigma8=sigma8), noise)
        return 0.5 * jnp.sum(out["density"] ** 2)

    g = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(0.25, 0.8, noise)

State between the forward and the backward call: the differentiated forward call records the
run (its tape) in C++ under a handle that it returns to JAX as a residual; the backward call
replays that tape once and frees it. A model keeps at most ``max_recorded`` recorded runs (a
newer one evicts the oldest, whose gradient then raises instead of being wrong), so a
``jax.vjp`` whose pullback is never called costs memory until it is evicted; calls without a
gradient record nothing. The C++ model lives as long as the Python ``diffpm.Model`` (held by
the ``ForwardModel`` and by every function that closes over it).

Errors: shapes and dtypes are checked when the function is traced (ValueError); what C++ rejects
while running (invalid parameter values, a run evicted before its gradient) reaches Python as
jax.errors.JaxRuntimeError whose message carries diffpm's ("INVALID_ARGUMENT: diffpm: ...").
"""

import difflib

import jax
import jax.numpy as jnp
import numpy as np

from . import _core

__all__ = ["ForwardModel", "parameters"]

_FORWARD = "diffpm_model_forward"
_BACKWARD = "diffpm_model_backward"
_registered = False


def _register():
    global _registered
    if not _registered:
        for name, capsule in _core.ffi_targets().items():
            jax.ffi.register_ffi_target(name, capsule, platform="cpu")
        _registered = True


def parameters(**values):
    """The eight cosmological parameters as one array in the order of ``diffpm.PARAMETERS``:
    the given ones (numbers or JAX values, differentiable) and Planck 2018 for the others."""
    base = _core.Parameters().to_array()
    names = _core.PARAMETERS
    for name in values:
        if name not in names:
            near = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise ValueError(f"diffpm: unknown parameter '{name}'{hint}; known: {names}")
    return jnp.stack([jnp.asarray(values.get(n, base[i])) for i, n in enumerate(names)])


class ForwardModel:
    """(theta, white noise) -> {"kappa": maps, "density": overdensity}, differentiable with
    respect to both by diffpm's exact gradient.

    Takes the arguments of :class:`diffpm.Model` (or ``model=`` an existing one). Calling it
    with theta (8 values, see :func:`parameters`) and the white noise on the particle lattice
    returns a dict with "kappa" (sources, pixels, pixels) if the model has lensing and
    "density" (the force mesh) if it has final_density, in the model's precision (a double
    model needs ``jax.config.update("jax_enable_x64", True)``). With lensing, the gradient's
    Omega_k entry is NaN (the lightcone is flat-sky; see diffpm.Model.gradient).

    nan_on_failure=True: a point the model refuses while running (a parameter out of range, a
    white noise so large that a particle would drift beyond what the fixed-point state holds)
    gives NaN outputs and a NaN gradient instead of an error, so that a sampler (NUTS's
    step-size search, say) rejects it as a divergence instead of stopping. Default: the error.
    """

    def __init__(self, *args, model=None, nan_on_failure=False, **kwargs):
        _register()
        if model is None:
            model = _core.Model(*args, **kwargs)
        elif args or kwargs:
            raise ValueError("diffpm: give either model= or the arguments of diffpm.Model")
        self.model = model
        self.dtype = np.dtype(model.dtype)
        self._function = _model_function(model, bool(nan_on_failure))

    def __call__(self, theta, noise):
        if self.dtype == np.float64 and not jax.config.jax_enable_x64:
            raise ValueError(
                "diffpm: a double-precision model needs jax.config.update('jax_enable_x64', "
                "True) (without it JAX rounds every array to float32)"
            )
        theta = jnp.asarray(theta)
        if theta.shape != (8,) or not jnp.issubdtype(theta.dtype, jnp.floating):
            raise ValueError(
                f"diffpm: theta has shape {theta.shape} and dtype {theta.dtype}; expected 8 "
                f"floating-point values in the order {_core.PARAMETERS}"
            )
        noise = jnp.asarray(noise)
        if noise.shape != tuple(self.model.noise_shape):
            raise ValueError(
                f"diffpm: white noise has shape {noise.shape}, the model's lattice is "
                f"{tuple(self.model.noise_shape)}"
            )
        return self._function(theta, noise.astype(self.dtype))

    def white_noise(self, seed):
        """The model's white noise of ``seed`` (diffpm.white_noise's) as a JAX array."""
        return jnp.asarray(self.model.white_noise(seed))


def _model_function(model, nan_on_failure):
    dtype = np.dtype(model.dtype)
    kshape = model.kappa_shape
    dshape = model.density_shape
    nshape = tuple(model.noise_shape)
    model_id = np.int64(model.id)
    nan_flag = np.int64(nan_on_failure)
    # Outputs the model does not have travel as one zero and are dropped.
    out_types = (
        jax.ShapeDtypeStruct(kshape or (1,), dtype),
        jax.ShapeDtypeStruct(dshape or (1,), dtype),
        jax.ShapeDtypeStruct((2,), jnp.uint32),
    )

    def run(theta, noise, record):
        # The recording call has an effect outside XLA (it keeps the tape), so it must be
        # neither dropped nor merged with another; a call without a gradient is pure.
        return jax.ffi.ffi_call(
            _FORWARD, out_types, has_side_effect=record, vmap_method="sequential"
        )(theta, noise, model_id=model_id, record=np.int64(record), nan_on_failure=nan_flag)

    def pack(kappa, density):
        out = {}
        if kshape is not None:
            out["kappa"] = kappa
        if dshape is not None:
            out["density"] = density
        return out

    @jax.custom_vjp
    def function(theta, noise):
        kappa, density, _ = run(theta, noise, False)
        return pack(kappa, density)

    def function_fwd(theta, noise):
        kappa, density, handle = run(theta, noise, True)
        # theta's dtype (float32 without x64) is the dtype of its cotangent.
        return pack(kappa, density), (handle, jnp.zeros((), theta.dtype))

    def function_bwd(residuals, cotangents):
        handle, theta_like = residuals
        kappa_bar = cotangents["kappa"] if kshape is not None else jnp.zeros((1,), dtype)
        density_bar = cotangents["density"] if dshape is not None else jnp.zeros((1,), dtype)
        theta_bar, noise_bar = jax.ffi.ffi_call(
            _BACKWARD,
            (jax.ShapeDtypeStruct((8,), theta_like.dtype), jax.ShapeDtypeStruct(nshape, dtype)),
            has_side_effect=True,
            vmap_method="sequential",
        )(handle, kappa_bar.astype(dtype), density_bar.astype(dtype), model_id=model_id,
          nan_on_failure=nan_flag)
        return theta_bar, noise_bar

    function.defvjp(function_fwd, function_bwd)
    function.model = model  # the C++ model lives as long as this function
    return function
