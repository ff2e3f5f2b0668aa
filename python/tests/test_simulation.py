"""The forward runs of the Python API against diffpm-sim, the C++ program, on the same
configuration and seed: the same code, so particles, densities and maps are compared bit for bit
and the power spectrum to the 17 digits power.csv prints."""
import csv
import pathlib
import subprocess

import numpy as np
import pytest

import diffpm

BOX, N, M, STEPS, A0 = 128.0, 16, 32, 3, 0.2


def run_cli(program, out, *extra):
    seed = [] if "--white-noise" in extra else ["--seed", "5"]  # the CLI takes one of the two
    args = [program, "--box", str(BOX), "--particles", str(N), "--mesh", str(M), "--steps",
            str(STEPS), "--a-start", str(A0), *seed, "--threads", "2", "--out", str(out), *extra]
    subprocess.run(args, check=True, capture_output=True, text=True)
    return pathlib.Path(out)


def config(**kw):
    return diffpm.SimulationConfig(**{**dict(box=BOX, particles=N, mesh=M, steps=STEPS,
                                             a_start=A0, seed=5), **kw})


@pytest.mark.parametrize("precision", ["float", "double"])
def test_simulation_equals_diffpm_sim(diffpm_sim, tmp_path, precision):
    out = run_cli(diffpm_sim, tmp_path / "cli", "--precision", precision, "--save-particles",
                  "--save-density", "--Omega_c", "0.3")
    params = diffpm.Parameters(Omega_c=0.3)
    r = diffpm.simulate(params, config(), precision=precision)
    dtype = np.float32 if precision == "float" else np.float64
    assert r["positions"].dtype == dtype and r["positions"].shape == (N**3, 3)
    np.testing.assert_array_equal(r["positions"], np.load(out / "particles_x.npy"))
    np.testing.assert_array_equal(r["momenta"], np.load(out / "particles_p.npy"))
    delta = diffpm.paint_density(r["positions"], BOX, M)
    np.testing.assert_array_equal(delta, np.load(out / "density.npy"))
    pk = diffpm.power_spectrum(delta, BOX, deconvolve_cic=True)
    rows = list(csv.DictReader(open(out / "power.csv")))
    keep = pk["n_modes"] > 0
    np.testing.assert_allclose(pk["k"][keep], [float(r["k"]) for r in rows], rtol=1e-15)
    np.testing.assert_allclose(pk["power"][keep], [float(r["P"]) for r in rows], rtol=1e-15)


def test_white_noise_and_explicit_noise(diffpm_sim, tmp_path):
    cfg = config()
    w = diffpm.white_noise(cfg, 5)
    assert w.shape == (N, N, N) and w.dtype == np.float32
    assert abs(w.mean()) < 0.1 and abs(w.std() - 1) < 0.05  # 4096 unit normals
    np.save(tmp_path / "w.npy", w)
    out = run_cli(diffpm_sim, tmp_path / "cli", "--white-noise", str(tmp_path / "w.npy"),
                  "--save-particles")
    # The seed's noise given explicitly is the seed's run.
    for r in (diffpm.simulate(diffpm.Parameters(), cfg, white_noise=w),
              diffpm.simulate(diffpm.Parameters(), cfg)):
        np.testing.assert_array_equal(r["positions"], np.load(out / "particles_x.npy"))


def test_lensing_maps_equal_diffpm_sim(diffpm_sim, tmp_path):
    out = run_cli(diffpm_sim, tmp_path / "cli", "--lensing", "--fov", "3", "--pixels", "16",
                  "--planes", "4", "--z-source", "0.5,1", "--a-start", "0.5")
    lens = diffpm.LensingConfig(pixels=16, fov_deg=3.0, planes=4)
    cfg = config(a_start=0.5)
    r = diffpm.lensing_maps(diffpm.Parameters(), cfg, lens, [0.5, 1.0])
    assert r["kappa"].shape == (2, 16, 16)
    for s in range(2):
        np.testing.assert_array_equal(r["kappa"][s], np.load(out / f"kappa_{s}.npy"))
    assert np.all(np.diff(r["plane_chi"]) > 0) and np.all(np.diff(r["plane_a"]) < 0)


def test_pgd_moves_particles_as_diffpm_sim(diffpm_sim, tmp_path):
    out = run_cli(diffpm_sim, tmp_path / "cli", "--pgd-params", "0.5,0.3,2.0,0.1",
                  "--save-particles")
    pgd = diffpm.PgdParameters(alpha=0.5, k_l=0.3, k_s=2.0, mu=0.1)
    r = diffpm.simulate(diffpm.Parameters(), config(), pgd=pgd)
    np.testing.assert_array_equal(r["positions"], np.load(out / "particles_x.npy"))


def test_zero_copy_outputs_own_their_memory():
    r = diffpm.simulate(diffpm.Parameters(), config(steps=1))
    x = r["positions"]
    del r
    assert x.flags["C_CONTIGUOUS"] and not x.flags["OWNDATA"] and np.isfinite(x).all()


def test_numpy_scalars_and_sequences_configure():
    cfg = diffpm.SimulationConfig(box=np.float32(100.0), particles=np.int64(8),
                                  mesh=np.array([16, 16, 32]))
    assert cfg.box == [100.0] * 3 and cfg.particles == [8] * 3 and cfg.mesh == [16, 16, 32]


def test_bad_input():
    with pytest.raises(ValueError, match="unknown option 'mseh'.*did you mean 'mesh'"):
        diffpm.SimulationConfig(mseh=64)
    with pytest.raises(ValueError, match="box = 'big'"):
        diffpm.SimulationConfig(box="big")
    with pytest.raises(ValueError, match="stepper = 'euler'.*'fastpm', 'leapfrog'"):
        diffpm.SimulationConfig(stepper="euler")
    with pytest.raises(ValueError, match="a_end"):
        diffpm.simulate(diffpm.Parameters(), config(a_end=1.5))
    with pytest.raises(ValueError, match=r"white_noise has shape \(8, 8, 8\), expected \(16, 16, 16\)"):
        diffpm.simulate(diffpm.Parameters(), config(), white_noise=np.zeros((8, 8, 8), np.float32))
    with pytest.raises(ValueError, match="precision = 'half'"):
        diffpm.simulate(diffpm.Parameters(), config(), precision="half")
    with pytest.raises(ValueError, match=r"positions\[1, 2\] = nan"):
        x = np.zeros((2, 3), np.float32)
        x[1, 2] = np.nan
        diffpm.paint_density(x, BOX, M)
    with pytest.raises(ValueError, match="sources"):
        diffpm.lensing_maps(diffpm.Parameters(), config(), diffpm.LensingConfig(), [])
