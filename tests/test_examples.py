"""The scripts in examples/ run and print what they promise.

They are run as a user would, in a subprocess, on network directories with
random weights (tests/nnfactory.py): what the scripts do does not depend on
how good the networks are. The one that trains is slow and needs Keras.
"""

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nnfactory import random_nndir

from neurosynchro import NeurosynchroWarning, PhysicalApproximator
from neurosynchro.pretrained import available
from neurosynchro.samples import TrainingSet

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def thermal_like(rng, n=300, rho=True):
    """A random table with the columns and signs of a thermal training set."""
    table = pd.DataFrame(
        {
            "s": 10 ** rng.uniform(1, 5, n),
            "theta": rng.uniform(0.1, 1.5, n),
            "theta_e": 10 ** rng.uniform(0, 2, n),
        }
    )
    signs = {"j_Q": -1, "alpha_Q": -1, "j_V": 1, "alpha_V": 1}
    for kind, low, high in (("j", -40, -28), ("alpha", -20, -4)):
        total = 10 ** rng.uniform(low, high, n)
        polarized = total * rng.uniform(0.3, 0.95, n)
        share = rng.uniform(0.001, 0.2, n)
        table[f"{kind}_I"] = total
        table[f"{kind}_Q"] = signs[f"{kind}_Q"] * polarized * np.sqrt(1 - share**2)
        table[f"{kind}_V"] = signs[f"{kind}_V"] * polarized * share
    if rho:
        table["rho_Q"] = rng.choice([-1, 1], n) * 10 ** rng.uniform(-12, -4, n)
        table["rho_V"] = 10 ** rng.uniform(-10, -3, n)
    suffixes = {"s": "log", "theta": "lin", "theta_e": "log"}
    suffixes.update({c: "res" for c in table.columns if c not in suffixes})
    return TrainingSet(table, suffixes, ["thermal_like.txt"])


@pytest.fixture(scope="module")
def nndir(tmp_path_factory):
    path = tmp_path_factory.mktemp("examples") / "nn"
    random_nndir(thermal_like(np.random.default_rng(5)), path, np.random.default_rng(6))
    return path


@pytest.fixture(scope="module")
def six_result_nndir(tmp_path_factory):
    path = tmp_path_factory.mktemp("examples") / "six"
    random_nndir(
        thermal_like(np.random.default_rng(7), rho=False),
        path,
        np.random.default_rng(8),
    )
    return path


def run(script, *args, cwd=None, timeout=120):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def numbers(line):
    return [float(x) for x in line.split()]


def test_every_example_is_tested():
    tested = {
        "compute_coefficients.py",
        "read_weights_numpy.py",
        "transfer_along_ray.py",
        "make_and_train_small.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.parametrize("network", ["j_I", "alpha_V_share", "rho_Q"])
def test_read_weights_numpy_reproduces_the_approximator(nndir, network):
    done = run("read_weights_numpy.py", nndir, "--network", network)
    assert done.returncode == 0, done.stderr
    assert f"network {network}: layers 3x8 tanh, 8x8 tanh, 8x1 linear" in done.stdout
    for name in ("s", "theta", "theta_e"):
        assert re.search(rf"input {name} +p = ", done.stdout)
    worst = re.search(r"PhysicalApproximator: (\S+)", done.stdout)
    assert float(worst[1]) <= 1e-9
    # Five points, eight finite coefficients each.
    table = done.stdout.split("rho_V\n")[1].split("\n\n")[0].splitlines()
    assert len(table) == 5
    assert all(
        np.isfinite(numbers(line)).all() and len(numbers(line)) == 8 for line in table
    )


def test_read_weights_numpy_handles_six_results(six_result_nndir):
    done = run("read_weights_numpy.py", six_result_nndir)
    assert done.returncode == 0, done.stderr
    assert "nan" in done.stdout
    assert float(re.search(r"PhysicalApproximator: (\S+)", done.stdout)[1]) <= 1e-9


def test_read_weights_numpy_rejects_an_unknown_network(nndir):
    done = run("read_weights_numpy.py", nndir, "--network", "j_Z")
    assert done.returncode == 2
    assert "--network j_Z: expected one of j_I" in done.stderr


def test_compute_coefficients_prints_the_approximators_values(nndir):
    nu = [1e11, 2.3e11]
    done = run(
        "compute_coefficients.py",
        nndir,
        "--param",
        "theta_e=10",
        "--nu",
        *nu,
        "--B",
        30,
        "--n-e",
        1e6,
        "--theta",
        2.0,
        "--fits",
        "thermal",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    start = lines.index("networks (CGS)") + 2
    printed = np.array(
        [numbers(line.split("(")[0]) for line in lines[start : start + 2]]
    )
    with warnings.catch_warnings():
        # Random networks put some outputs outside the sampled range.
        warnings.simplefilter("ignore", NeurosynchroWarning)
        coeffs, _ = PhysicalApproximator(nndir).compute_all_nontrivial(
            np.array(nu), 30.0, 1e6, 2.0, theta_e=10.0
        )
    np.testing.assert_allclose(printed[:, 0], nu)
    np.testing.assert_allclose(printed[:, 1:], coeffs, rtol=2e-3)
    # theta = 2 rad is beyond pi/2: the V terms of the fits are negative.
    fits_start = next(i for i, x in enumerate(lines) if x.startswith("published fits"))
    fits = np.array([numbers(line) for line in lines[fits_start + 2 : fits_start + 4]])
    assert (fits[:, 5] < 0).all() and (fits[:, 1] > 0).all()


def test_compute_coefficients_names_missing_parameters(nndir):
    done = run("compute_coefficients.py", nndir)
    assert done.returncode == 1
    assert "missing theta_e" in done.stderr


def test_compute_coefficients_pretrained():
    done = run(
        "compute_coefficients.py", "--pretrained", "thermal", "--param", "theta_e=10"
    )
    if "thermal" in available():
        assert done.returncode == 0, done.stderr
        assert "networks (CGS)" in done.stdout
    else:
        assert done.returncode == 1
        assert "no pretrained network 'thermal'" in done.stderr


def test_transfer_along_ray(nndir):
    done = run("transfer_along_ray.py", nndir, "--nu", 1e11, 2.3e11, "--segments", 50)
    assert done.returncode == 0, done.stderr
    assert "theta_e = " in done.stdout  # set to the middle of its range
    rows = [numbers(line) for line in done.stdout.splitlines()[-2:]]
    for frequency, row in zip((1e11, 2.3e11), rows, strict=True):
        nu, I, Q, U, V, tau, p_lin = row[:7]
        assert nu == pytest.approx(frequency)
        assert np.isfinite(row).all()
        assert I > 0 and tau > 0
        assert 0 <= p_lin <= 1 and abs(V) <= I


def test_transfer_along_ray_without_rotativities(six_result_nndir):
    done = run(
        "transfer_along_ray.py",
        six_result_nndir,
        "--param",
        "theta_e=10",
        "--segments",
        20,
    )
    assert done.returncode == 0, done.stderr
    assert "no rotativities" in done.stdout
    # Without rho the EVPA with and without rho must agree.
    for line in done.stdout.splitlines()[-3:]:
        evpa, evpa_no_rho = numbers(line)[-2:]
        assert evpa == pytest.approx(evpa_no_rho, abs=0.01)


@pytest.mark.slow
def test_make_and_train_small(tmp_path):
    pytest.importorskip("keras")
    done = run(
        "make_and_train_small.py",
        tmp_path / "work",
        "--rows",
        200,
        "--epochs",
        3,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    nn = tmp_path / "work" / "nn"
    for name in ("j_I", "alpha_I", "j_frac_pol", "rho_Q"):
        assert (nn / f"{name}.npz").is_file()
    assert "$ neurosynchro validate nn held-out --fits" in done.stdout
    assert "fits (thermal) on the same rows" in done.stdout
