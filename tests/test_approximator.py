"""PhysicalApproximator: scalings, symmetries, invariants and errors.

These use network directories with random weights: the properties tested
hold for any network, so they test the approximator, not the training.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from nnfactory import random_nndir
from test_transform import synthetic

from neurosynchro import PhysicalApproximator
from neurosynchro.errors import NetworkError, NeurosynchroWarning, UsageError
from neurosynchro.physics import cyclotron_frequency


@pytest.fixture(scope="module")
def nndir(tmp_path_factory):
    rng = np.random.default_rng(7)
    path = tmp_path_factory.mktemp("nn") / "eight"
    ts = synthetic(rng, n=300)
    ts.table["theta_e"] = 10 ** rng.uniform(0, 2, 300)
    ts.suffixes["theta_e"] = "log"
    ts.table = ts.table[["s", "theta", "theta_e"] + ts.results]
    ts.suffixes = {c: ts.suffixes[c] for c in ts.table.columns}
    random_nndir(ts, path, rng)
    return path


@pytest.fixture(scope="module")
def approx(nndir):
    return PhysicalApproximator(nndir)


def call(approx, **kw):
    args = dict(nu=1e11, B=30.0, n_e=1e4, theta=0.7, theta_e=10.0)
    args.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        return approx.compute_all_nontrivial(**args)


def test_rescaling_with_frequency_and_density(approx):
    # At fixed s = nu / nu_cyc and theta, emissivities scale as n_e nu and the
    # other six as n_e / nu.
    base, _ = call(approx, nu=1e11, B=30.0, n_e=1e4)
    scaled, _ = call(approx, nu=7e11, B=210.0, n_e=3e6)
    ratio = scaled / base
    np.testing.assert_allclose(ratio[[0, 2, 4]], 7 * 300, rtol=1e-12)
    np.testing.assert_allclose(ratio[[1, 3, 5, 6, 7]], 300 / 7, rtol=1e-12)


def test_values_at_unit_frequency_and_density_are_the_network_values(approx):
    # nu = 1 Hz, n_e = 1: coefficients equal the tabulated normalization for
    # the same s, whichever B realizes it.
    s = 1e3
    a, _ = call(approx, nu=1e9, B=1e9 / (s * cyclotron_frequency(1.0)), n_e=1.0)
    b, _ = call(approx, nu=1.0, B=1.0 / (s * cyclotron_frequency(1.0)), n_e=1.0)
    np.testing.assert_allclose(a[[0, 2, 4]] / 1e9, b[[0, 2, 4]], rtol=1e-12)
    np.testing.assert_allclose(a[[1, 3, 5, 6, 7]] * 1e9, b[[1, 3, 5, 6, 7]], rtol=1e-12)


def test_angle_folding(approx):
    theta = np.array([0.3, np.pi - 0.3, 0.3 + 2 * np.pi, -0.3, np.pi + 0.3])
    c, _ = call(approx, theta=theta)
    v = [4, 5, 7]
    iq = [0, 1, 2, 3, 6]
    for row in range(1, 5):
        np.testing.assert_allclose(c[row, iq], c[0, iq], rtol=1e-12)
    np.testing.assert_allclose(c[1, v], -c[0, v], rtol=1e-12)
    np.testing.assert_allclose(c[2, v], c[0, v], rtol=1e-12)
    np.testing.assert_allclose(c[3, v], c[0, v], rtol=1e-12)
    np.testing.assert_allclose(c[4, v], -c[0, v], rtol=1e-12)


def test_zero_field_gives_zero_and_broadcasting(approx):
    B = np.array([[0.0], [30.0]])
    nu = np.array([1e10, 1e11, 1e12])
    c, oos = call(approx, B=B, nu=nu)
    assert c.shape == (2, 3, 8) and oos.shape == (2, 3)
    assert (c[0] == 0).all()
    assert np.isfinite(c[1]).all()


def test_invariants_hold_everywhere(approx, rng):
    n = 2000
    c, _ = call(
        approx,
        nu=10 ** rng.uniform(8, 13, n),
        B=10 ** rng.uniform(-1, 3, n),
        theta=rng.uniform(-10, 10, n),
        theta_e=10 ** rng.uniform(-1, 3, n),
    )
    assert (c[:, 0] >= np.hypot(c[:, 2], c[:, 4])).all()
    assert (c[:, 1] >= np.hypot(c[:, 3], c[:, 5])).all()


def test_nan_inputs_give_nan_rows_and_a_flag(approx):
    c, oos = call(approx, theta=np.array([0.5, np.nan]), theta_e=np.array([np.nan, 5]))
    assert np.isnan(c).all()
    assert oos.all()


def test_out_of_sample_points_are_flagged_and_warned(approx):
    # Random networks may also leave the sampled output range, so compare the
    # flags of an in-range and an out-of-range temperature at one point.
    with pytest.warns(NeurosynchroWarning, match="of 2 points lie outside") as record:
        _, oos = approx.compute_all_nontrivial(
            1e11, 30.0, 1e4, 0.7, theta_e=np.array([10.0, 1e4])
        )
    assert oos[1]
    assert f"{oos.sum()} of 2 points" in str(record[0].message)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"theta_e": None}, "missing theta_e; this network directory.*takes: theta_e"),
        ({"p": 2.0}, "unknown p"),
        ({"n_e": -1.0}, "n_e: expected values >= 0"),
        ({"nu": 0.0}, "nu: expected values > 0"),
        ({"B": np.inf}, "B: expected finite"),
        (
            {"nu": np.ones(3), "B": np.ones(2)},
            "do not broadcast.*nu \\(3,\\).*B \\(2,\\)",
        ),
        ({"theta": "north"}, "theta: expected numbers"),
    ],
)
def test_api_misuse(approx, kwargs, pattern):
    args = dict(nu=1e11, B=30.0, n_e=1e4, theta=0.7, theta_e=10.0)
    args.update(kwargs)
    args = {k: v for k, v in args.items() if v is not None}
    with pytest.raises(UsageError, match=pattern):
        approx.compute_all_nontrivial(**args)


def test_six_result_directory_gives_nan_rotativities_with_one_warning(tmp_path, rng):
    ts = synthetic(rng, rho=False)
    random_nndir(ts, tmp_path / "six", rng)
    approx = PhysicalApproximator(tmp_path / "six")
    with pytest.warns(NeurosynchroWarning, match="without rotativities") as record:
        c, _ = approx.compute_all_nontrivial(1e11, 30.0, 1.0, 0.7)
    assert np.isnan(c[6:]).all() and np.isfinite(c[:6]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        approx.compute_all_nontrivial(1e11, 30.0, 1.0, 0.7)
    assert len(record) == 1


def test_missing_and_mismatched_networks(tmp_path, rng, nndir):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(nndir, broken)
    (broken / "j_V_share.npz").unlink()
    with pytest.raises(NetworkError, match=r"j_V_share\.npz: missing network"):
        PhysicalApproximator(broken)
    (broken / "alpha_I.npz").write_bytes((nndir / "j_I.npz").read_bytes())
    from neurosynchro.network import Network

    Network(
        [np.ones((2, 4)), np.ones((4, 1))],
        [np.zeros(4), np.zeros(1)],
        ["tanh", "linear"],
    ).save(broken / "j_V_share.npz")
    with pytest.raises(NetworkError, match="takes 2 inputs but .* lists 3 parameters"):
        PhysicalApproximator(broken)


def test_pickled_weights_are_refused_and_never_run(tmp_path, nndir):
    import shutil

    evil = tmp_path / "evil"
    shutil.copytree(nndir, evil)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(evil / "j_I.npz", kernel_0=np.array([Payload()], dtype=object))
    with pytest.raises(NetworkError, match="refused: holds pickled objects"):
        PhysicalApproximator(evil)
    assert not marker.exists()
    (evil / "j_I.npz").write_bytes(b"not a zip file")
    with pytest.raises(NetworkError, match="not a readable .npz"):
        PhysicalApproximator(evil)


def test_inference_never_imports_tensorflow(nndir):
    code = (
        "import sys, neurosynchro, warnings\n"
        "warnings.simplefilter('ignore')\n"
        f"a = neurosynchro.PhysicalApproximator({str(nndir)!r})\n"
        "a.compute_all_nontrivial(1e11, 30.0, 1.0, 0.7, theta_e=10.0)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
