"""Shared set-up of the Python tests: JAX in double precision on the CPU (float32 models are
tested with float32 arrays explicitly), and the C++ programs the results are compared with."""
import os
import pathlib
import shutil

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def find_program(name):
    """A C++ program of this checkout's build: $DIFFPM_<NAME> (DIFFPM_SIM for diffpm-sim), else
    build/examples or build-omp/examples. With DIFFPM_REQUIRE_PROGRAMS=1 (CI) a missing program
    fails the test instead of skipping it."""
    env = "DIFFPM_" + name.replace("diffpm-", "").replace("-", "_").upper()
    candidates = [os.environ.get(env)] + [
        str(ROOT / d / "examples" / name) for d in ("build", "build-omp")
    ]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    if os.environ.get("DIFFPM_REQUIRE_PROGRAMS") == "1":
        pytest.fail(f"{name} not found (set {env}); DIFFPM_REQUIRE_PROGRAMS=1")
    pytest.skip(f"{name} not built (set {env} to compare with the C++ program)")


@pytest.fixture(scope="session")
def diffpm_sim():
    return find_program("diffpm-sim")


@pytest.fixture(scope="session")
def diffpm_cosmology():
    return find_program("diffpm-cosmology")
