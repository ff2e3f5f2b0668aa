"""diffpm.Parameters and diffpm.Cosmology against diffpm-cosmology (the same C++ code: equal to
the 17 digits it prints), their derivatives against central differences through the Python
API, and their errors."""
import csv
import io
import pathlib
import re
import subprocess

import numpy as np
import pytest

import diffpm

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_version_is_the_headers():
    text = (ROOT / "include" / "diffpm" / "version.hpp").read_text()
    assert diffpm.__version__ == re.search(r'DIFFPM_VERSION_STRING "([0-9.]+)"', text).group(1)


def test_parameter_order_is_the_cpp_order():
    assert diffpm.PARAMETERS == ("Omega_c", "Omega_b", "h", "n_s", "sigma8", "Omega_k", "w0", "wa")
    p = diffpm.Parameters(Omega_c=0.3, wa=0.1)
    assert list(p.to_array()) == [0.3, 0.048975, 0.6766, 0.9665, 0.8102, 0.0, -1.0, 0.1]


def test_values_equal_diffpm_cosmology(diffpm_cosmology):
    p = diffpm.Parameters(Omega_c=0.28, sigma8=0.75, w0=-0.9, wa=0.2, Omega_k=0.01)
    z = np.array([0.0, 0.3, 1.0, 2.5])
    out = subprocess.run(
        [diffpm_cosmology, "--Omega_c", "0.28", "--sigma8", "0.75", "--w0", "-0.9", "--wa", "0.2",
         "--Omega_k", "0.01", "--z", ",".join(map(str, z))],
        check=True, capture_output=True, text=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    c = diffpm.Cosmology(p)
    a = 1.0 / (1.0 + z)
    # 17 significant digits printed: the same double within one part in 1e16.
    for name, got in [("E", c.E(a)), ("chi", c.comoving_distance(a)), ("D1", c.growth_factor(a)),
                      ("f1", c.growth_rate(a)), ("D2", c.growth_factor_2(a))]:
        want = np.array([float(r[name]) for r in rows])
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-300, err_msg=name)
    k = [0.01, 0.1, 1.0]
    out = subprocess.run(
        [diffpm_cosmology, "--Omega_c", "0.28", "--sigma8", "0.75", "--w0", "-0.9", "--wa", "0.2",
         "--Omega_k", "0.01", "--z", "0.5", "--k", ",".join(map(str, k))],
        check=True, capture_output=True, text=True).stdout
    want = np.array([float(r["P_lin"]) for r in csv.DictReader(io.StringIO(out))])
    np.testing.assert_allclose(c.linear_power(np.array(k), 1.0 / 1.5), want, rtol=1e-15)


@pytest.mark.parametrize("method,arg", [("comoving_distance", [0.3, 0.7]),
                                        ("growth_factor", [0.3, 0.7]),
                                        ("scale_factor_at_distance", [500.0, 2000.0]),
                                        ("linear_power", [0.05, 0.5])])
def test_derivatives_equal_central_differences(method, arg):
    base = diffpm.Parameters(Omega_c=0.27, Omega_b=0.05, h=0.7, sigma8=0.8, Omega_k=0.02,
                             w0=-0.95, wa=0.1)
    x = np.array(arg)
    value, jac = getattr(diffpm.Cosmology(base), method)(x, derivatives=True)
    assert jac.shape == (2, 8)
    np.testing.assert_array_equal(value, getattr(diffpm.Cosmology(base), method)(x))
    for i, name in enumerate(diffpm.PARAMETERS):
        h = 1e-5
        plus, minus = diffpm.Parameters(), diffpm.Parameters()
        for q in diffpm.PARAMETERS:
            setattr(plus, q, getattr(base, q))
            setattr(minus, q, getattr(base, q))
        setattr(plus, name, getattr(base, name) + h)
        setattr(minus, name, getattr(base, name) - h)
        fd = (getattr(diffpm.Cosmology(plus), method)(x)
              - getattr(diffpm.Cosmology(minus), method)(x)) / (2 * h)
        # Central differences with h = 1e-5: truncation ~h^2 f''' and rounding ~1e-16 |f| / h,
        # both below 1e-6 of the scale of f for these smooth functions.
        np.testing.assert_allclose(jac[:, i], fd, rtol=1e-6, atol=1e-6 * np.abs(value).max(),
                                   err_msg=f"d{method}/d{name}")


def test_scalars_and_shapes():
    c = diffpm.Cosmology(diffpm.Parameters())
    assert isinstance(c.comoving_distance(0.5), float)
    assert c.growth_factor(np.ones((2, 3))).shape == (2, 3)
    v, j = c.E(0.5, derivatives=True)
    assert isinstance(v, float) and j.shape == (8,)


def test_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"Omega_c = -0.1 \(must be >= 0\)"):
        diffpm.Cosmology(diffpm.Parameters(Omega_c=-0.1))
    with pytest.raises(ValueError, match="unknown option 'sigma_8'.*did you mean 'sigma8'"):
        diffpm.Parameters(sigma_8=0.8)
    with pytest.raises(ValueError, match="h = 'x'"):
        diffpm.Parameters(h="x")
    with pytest.raises(ValueError, match="transfer = 'camb'"):
        diffpm.Cosmology(diffpm.Parameters(), transfer="camb")
