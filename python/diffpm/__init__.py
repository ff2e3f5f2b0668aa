"""diffpm: differentiable particle-mesh N-body simulation with exact gradients.

The C++ library's cosmology, forward runs and differentiable forward model, with NumPy arrays in
and out (results are handed over without a copy). JAX functions with diffpm's exact gradient
are in :mod:`diffpm.jax`. Lengths are in Mpc/h, wavenumbers in h/Mpc, time is the scale factor
a; the Fourier convention and field normalisation are those of the C++ library
(docs/conventions.md).

    import diffpm
    cfg = diffpm.SimulationConfig(box=256.0, particles=64, mesh=128, steps=10)
    run = diffpm.simulate(diffpm.Parameters(sigma8=0.8), cfg)
    delta = diffpm.paint_density(run["positions"], cfg.box, cfg.mesh)
    pk = diffpm.power_spectrum(delta, cfg.box, deconvolve_cic=True)

Bad input raises ValueError with diffpm's message (naming the parameter and its value).
"""

from ._core import (  # noqa: F401
    PARAMETERS,
    Cosmology,
    LensingConfig,
    Model,
    Parameters,
    PgdParameters,
    ReversibilityError,
    SimulationConfig,
    SourceDistribution,
    __version__,
    get_num_threads,
    lensing_maps,
    paint_density,
    power_spectrum,
    set_num_threads,
    simulate,
    white_noise,
)

__all__ = [
    "PARAMETERS",
    "Cosmology",
    "LensingConfig",
    "Model",
    "Parameters",
    "PgdParameters",
    "ReversibilityError",
    "SimulationConfig",
    "SourceDistribution",
    "__version__",
    "get_num_threads",
    "lensing_maps",
    "paint_density",
    "power_spectrum",
    "set_num_threads",
    "simulate",
    "white_noise",
]
