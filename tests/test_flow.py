"""The whole flow through the real command line, on real symphony rows.

init-nndir -> transform -> lock-domain-range -> train -> PhysicalApproximator,
on a few hundred rows of the symphony thermal table with short training, then
checks against rows held out of training, at a real frequency, field and
density (so the rescaling is exercised).
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from neurosynchro import NeurosynchroWarning, PhysicalApproximator
from neurosynchro.physics import cyclotron_frequency

pytestmark = pytest.mark.slow


def cli(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "neurosynchro.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


@pytest.fixture(scope="module")
def flow(tmp_path_factory, symphony_dir):
    work = tmp_path_factory.mktemp("flow")
    table = pd.read_csv(symphony_dir / "thermal.txt", sep="\t")
    rng = np.random.default_rng(11)
    order = rng.permutation(len(table))
    (work / "train").mkdir()
    table.iloc[order[:400]].to_csv(work / "train" / "rows.txt", sep="\t", index=False)
    held_out = table.iloc[order[400:600]]

    assert cli("transform", work / "train", "-o", work / "t.txt").returncode == 0
    assert cli("init-nndir", work / "nn").returncode == 0
    config = work / "nn" / "nn_config.toml"
    config.write_text(
        config.read_text()
        + "\n[training]\nepochs = 100\nhidden_units = [32, 32]\npatience = 100\n"
        "batch_size = 32\nlearning_rate = 0.01\n"
    )
    assert cli("lock-domain-range", work / "t.txt", work / "nn").returncode == 0
    trained = cli("train", work / "t.txt", work / "nn", "--plot", work / "res.png")
    assert trained.returncode == 0, trained.stderr
    return work, held_out, trained


def test_train_reports_and_writes_every_network(flow):
    work, _, trained = flow
    for name in (
        "j_I",
        "alpha_I",
        "j_frac_pol",
        "alpha_frac_pol",
        "j_V_share",
        "alpha_V_share",
    ):
        assert (work / "nn" / f"{name}.npz").is_file()
        assert (work / "nn" / f"{name}.keras").is_file()
        assert f"{name}: generic" in trained.stderr
    assert (work / "res.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert trained.stdout == ""


def test_numpy_path_matches_keras_predict(flow):
    from neurosynchro.network import Network
    from neurosynchro.training import _import_keras

    keras = _import_keras()
    work = flow[0]
    x = np.random.default_rng(3).normal(size=(500, 3))
    for name in ("j_I", "j_V_share"):
        model = keras.models.load_model(work / "nn" / f"{name}.keras", safe_mode=True)
        expected = model.predict(x, verbose=0)[:, 0].astype(float)
        got = Network.load(work / "nn" / f"{name}.npz")(x.astype(np.float32))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_held_out_accuracy_at_physical_units(flow):
    work, held_out, _ = flow
    approx = PhysicalApproximator(work / "nn")
    nu, n_e = 230e9, 1e5
    B = nu / (held_out["s(log)"].to_numpy() * cyclotron_frequency(1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        c, oos = approx.compute_all_nontrivial(
            nu,
            B,
            n_e,
            held_out["theta(lin)"].to_numpy(),
            theta_e=held_out["theta_e(log)"].to_numpy(),
        )
    names = ["j_I", "alpha_I", "j_Q", "alpha_Q", "j_V", "alpha_V"]
    scale = np.array([n_e * nu, n_e / nu] * 3)
    exact = held_out[[f"{n}(res)" for n in names]].to_numpy() * scale
    relative = np.abs(c[~oos, :6] / exact[~oos] - 1)
    median = np.median(relative, axis=0)
    # A 400-row, 100-epoch fit: loose, but far from chance (coefficients span
    # ten decades). The full-size fit is measured in the issue notes.
    assert (median < 0.25).all(), dict(zip(names, median, strict=True))
    assert (~oos).sum() > 150


def test_errors_are_one_line_with_exit_status(tmp_path):
    missing = cli("transform", tmp_path / "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0
    assert "no such file or directory" in missing.stderr
    assert "Traceback" not in missing.stderr
    debug = cli("--debug", "transform", tmp_path / "nope")
    assert "Traceback" in debug.stderr
    usage = cli("train")
    assert usage.returncode == 2
    bad_result = cli("train", tmp_path, tmp_path / "nn", "j_X")
    assert bad_result.returncode == 1
    assert "no such config file" in bad_result.stderr


def test_version_and_help_start_fast():
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip()
    code = (
        "import sys, neurosynchro.cli as c; c.build_parser(); "
        "print(sorted(sys.modules))"
    )
    modules = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert "tensorflow" not in modules.stdout and "keras" not in modules.stdout
