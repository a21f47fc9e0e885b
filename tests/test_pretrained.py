"""The pretrained networks that ship inside the package."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import tomllib

import neurosynchro
from neurosynchro import NeurosynchroWarning, UsageError
from neurosynchro.network import Network
from neurosynchro.physics import cyclotron_frequency
from neurosynchro.pretrained import PRETRAINED_DIR, available

NAMES = ("thermal", "powerlaw", "kappa")
PARAMETERS = {
    "thermal": {"theta_e": (1.0, 50.0, "log")},
    "powerlaw": {"p": (1.8, 4.5, "lin")},
    "kappa": {"kappa": (3.5, 6.5, "lin"), "kappa_width": (2.0, 40.0, "log")},
}


def shipped(name):
    if name not in available():
        pytest.fail(f"pretrained network {name!r} is not shipped")
    return PRETRAINED_DIR / name


@pytest.mark.parametrize("name", NAMES)
def test_directory_is_small_and_carries_provenance(name):
    path = shipped(name)
    size = sum(p.stat().st_size for p in path.iterdir())
    assert size < 500_000
    provenance = tomllib.loads((path / "nn_config.toml").read_text())["provenance"]
    assert provenance["generation"]["distribution"] == name
    assert "make-training-set" in provenance["generation"]["command"]
    assert provenance["neurosynchro_version"]
    errors = provenance["validation_relative_errors"]
    assert set(errors) == {
        "j_I",
        "alpha_I",
        "j_Q",
        "alpha_Q",
        "j_V",
        "alpha_V",
        "rho_Q",
        "rho_V",
    }


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UsageError, match="known: kappa, powerlaw, thermal"):
        neurosynchro.load_pretrained("synchrotron")


def draw(name, n, rng):
    """A fresh random sample inside the shipped networks' training domain."""
    s = 10 ** rng.uniform(1.5, 4.5, n)
    theta = rng.uniform(0.3, 1.45, n)
    params = {}
    for key, (lo, hi, kind) in PARAMETERS[name].items():
        u = rng.uniform(0, 1, n)
        params[key] = lo * (hi / lo) ** u if kind == "log" else lo + (hi - lo) * u
    if name == "thermal":
        # The thermal networks leave out nu / nu_s > 1e4 (see provenance).
        keep = s / ((2 / 9) * params["theta_e"] ** 2 * np.sin(theta)) < 1e3
        s, theta = s[keep], theta[keep]
        params = {k: v[keep] for k, v in params.items()}
    return s, theta, params


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_matches_the_calculator_within_recorded_errors(name):
    from neurosynchro.calc import compute_coefficients

    rng = np.random.default_rng(99)
    s, theta, params = draw(name, 40, rng)
    exact = compute_coefficients(name, s, theta, **params)
    nu, n_e = 1e10, 1e3
    B = nu / (s * cyclotron_frequency(1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        approx, oos = neurosynchro.load_pretrained(name).compute_all_nontrivial(
            nu, B, n_e, theta, **params
        )
    exact[:, [0, 2, 4]] *= n_e * nu
    exact[:, [1, 3, 5, 6, 7]] *= n_e / nu
    provenance = tomllib.loads((shipped(name) / "nn_config.toml").read_text())[
        "provenance"
    ]["validation_relative_errors"]
    names = ("j_I", "alpha_I", "j_Q", "alpha_Q", "j_V", "alpha_V", "rho_Q", "rho_V")
    for i, coefficient in enumerate(names):
        good = ~oos & np.isfinite(exact[:, i])
        error = np.abs(approx[good, i] / exact[good, i] - 1)
        recorded = provenance[coefficient]
        # A 40-point median is noisy: allow it up to the recorded 95th
        # percentile, and no point beyond the recorded maximum by much.
        assert np.median(error) <= max(recorded["p95"], 1e-3), coefficient
        assert np.percentile(error, 90) <= 2 * recorded["max"], coefficient


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_numpy_weights_equal_keras_predict(name):
    from neurosynchro.training import _import_keras

    keras = _import_keras()
    x = np.random.default_rng(5).normal(size=(256, 4 if name == "kappa" else 3))
    for path in sorted(shipped(name).glob("*.npz")):
        network = Network.load(path)
        model = keras.Sequential(
            [keras.Input(shape=(network.n_inputs,), dtype="float64")]
            + [
                keras.layers.Dense(k.shape[1], activation=a, dtype="float64")
                for k, a in zip(network.kernels, network.activations, strict=True)
            ]
        )
        model.set_weights(
            [
                w
                for pair in zip(network.kernels, network.biases, strict=True)
                for w in pair
            ]
        )
        expected = np.asarray(model(x.astype(np.float64)))[:, 0]
        got = network(x)
        # The shipped weights are float32 values; Keras evaluates them here in
        # float64 like the numpy path (in float32 it would differ by its own
        # rounding, ~1e-6). Outputs are normalized values of order one.
        scale = np.maximum(np.abs(expected), 1.0)
        assert np.max(np.abs(got - expected) / scale) < 1e-6, path.name


def test_a_pretrained_call_imports_no_tensorflow():
    code = (
        "import sys, warnings, neurosynchro\n"
        "warnings.simplefilter('ignore')\n"
        "a = neurosynchro.load_pretrained('thermal')\n"
        "c, _ = a.compute_all_nontrivial(230e9, 30.0, 1e6, 1.0, theta_e=10.0)\n"
        "assert (c[:2] > 0).all()\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(top & {'tensorflow', 'keras'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_thermal_flags_points_beyond_its_training_cut():
    # theta_e = 0.6 and B = 30 G at 230 GHz: nu/nu_s is about 4e4, beyond the
    # 1e4 the thermal training set kept; at 23 GHz it is about 4e3, inside.
    approx = neurosynchro.load_pretrained("thermal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        _, oos = approx.compute_all_nontrivial(
            np.array([230e9, 23e9]), 30.0, 1e5, 1.0, theta_e=0.6
        )
    assert oos.tolist() == [True, False]


@pytest.mark.parametrize("name", NAMES)
def test_float32_agrees_with_float64_to_a_few_parts_in_a_million(name):
    # Documented: 99% of points within 1.5e-5 and the worst below 1e-5,
    # except rho_Q where it nears zero (its crossing), up to 2e-4 where
    # |rho_Q| > 0.01 |rho_V|. float32 rounding of the networks' outputs is
    # about 1e-7 of their scale, amplified by the log maps, and for rho_Q
    # by the ratio of its row scale to its value.
    rng = np.random.default_rng(32)
    s, theta, params = draw(name, 20000, rng)
    nu = 1e10
    B = nu / (s * cyclotron_frequency(1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        c64, oos = neurosynchro.load_pretrained(name).compute_all_nontrivial(
            nu, B, 1e3, theta, **params
        )
        c32, oos32 = neurosynchro.load_pretrained(
            name, dtype=np.float32
        ).compute_all_nontrivial(nu, B, 1e3, theta, **params)
    assert oos.mean() < 0.01
    good = ~oos & ~oos32
    relative = np.abs(c32[good] / c64[good] - 1)
    assert np.percentile(relative, 99, axis=0).max() < 1.5e-5
    others = [0, 1, 2, 3, 4, 5, 7]
    assert relative[:, others].max() < 1e-5
    away = np.abs(c64[good, 6]) > 0.01 * np.abs(c64[good, 7])
    assert relative[away, 6].max() < 3e-4


def test_a_large_call_split_over_threads_gives_the_same_bits(monkeypatch):
    # Large calls run one span of rows per thread through the whole path
    # (units, networks, invariants) and through the compiled kernel; the
    # result may not depend on the split. NaN and out-of-range rows ride
    # along in the middle of the spans.
    from neurosynchro import engine

    monkeypatch.setattr(engine, "MIN_ROWS_PER_THREAD", 100)
    rng = np.random.default_rng(5)
    n = 3001
    B = 10 ** rng.uniform(0, 2, n)
    s = 10 ** rng.uniform(1, 3.5, n)
    theta = rng.uniform(-3, 3, n)
    theta[1500] = np.nan
    args = dict(
        nu=s * cyclotron_frequency(B),
        B=B,
        n_e=1e5,
        theta=theta,
        theta_e=10 ** rng.uniform(0, 2.2, n),
    )
    one = neurosynchro.load_pretrained("thermal", threads=1)
    three = neurosynchro.load_pretrained("thermal", threads=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        c1, o1 = one.compute_all_nontrivial(**args)
        c3, o3 = three.compute_all_nontrivial(**args)
    np.testing.assert_array_equal(c3, c1)
    np.testing.assert_array_equal(o3, o1)
    assert np.isnan(c1[1500]).all() and o1[1500]
    assert o1.sum() > 1
    # And the compiled kernel agrees with the numpy-only engine.
    numpy_only = neurosynchro.load_pretrained("thermal", threads=1)
    numpy_only.engine._compiled_ok = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        c0, _ = numpy_only.compute_all_nontrivial(**args)
    np.testing.assert_allclose(c1, c0, rtol=1e-12)
