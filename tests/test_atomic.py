"""Killed mid-write, a command leaves the old files intact (DESIGN.md, data safety).

Each test runs the real command in a subprocess whose file writing is wrapped
so that, once the temporary file beside the target is half written, the
process sends itself SIGKILL: no ``finally`` clause, no clean-up, exactly as
if the machine had lost power or the job been killed. The target must then
hold its old bytes, and anything left behind must be a hidden temporary file
that no command mistakes for a table, a config or a network.
"""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from nnfactory import random_nndir
from test_transform import synthetic

from neurosynchro import PhysicalApproximator
from neurosynchro.config import CONFIG_NAME, load_config
from neurosynchro.fileio import atomic_path, atomic_write_text
from neurosynchro.network import Network
from neurosynchro.samples import read_training_set, write_table
from neurosynchro.transform import to_internal

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

#: Runs ``neurosynchro ARGS...`` with one writer wrapped: when it is about to
#: write a file whose name starts with PREFIX (the temporary name beside the
#: target), it writes half of the content, syncs it and kills the process.
#: Usage: python -c KILLER {text|csv|npz} PREFIX ARGS...
KILLER = """
import io, os, signal, sys
from pathlib import Path

kind, prefix = sys.argv[1], sys.argv[2]
args = sys.argv[3:]


def half_then_die(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as handle:
        handle.write(data[: len(data) // 2])
        handle.flush()
        os.fsync(handle.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


def ours(path):
    return isinstance(path, (str, os.PathLike)) and Path(path).name.startswith(prefix)


if kind == "text":
    original_text = Path.write_text

    def write_text(self, data, *a, **k):
        if ours(self):
            half_then_die(self, data)
        return original_text(self, data, *a, **k)

    Path.write_text = write_text
elif kind == "csv":
    import pandas

    original_csv = pandas.DataFrame.to_csv

    def to_csv(self, path_or_buf=None, *a, **k):
        if ours(path_or_buf):
            half_then_die(path_or_buf, original_csv(self, None, *a, **k))
        return original_csv(self, path_or_buf, *a, **k)

    pandas.DataFrame.to_csv = to_csv
elif kind == "npz":
    import numpy

    original_npz = numpy.savez_compressed

    def savez_compressed(file, *a, **k):
        if ours(file):
            buffer = io.BytesIO()
            original_npz(buffer, *a, **k)
            half_then_die(file, buffer.getvalue())
        return original_npz(file, *a, **k)

    numpy.savez_compressed = savez_compressed

from neurosynchro.cli import main

sys.exit(main(args))
"""


def run_killed(kind, prefix, args, cwd):
    done = subprocess.run(
        [sys.executable, "-c", KILLER, kind, prefix, *map(str, args)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Killed by its own SIGKILL, not finished nor failed.
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done


def leftovers(directory, before):
    """Files that appeared in ``directory`` (names), beyond ``before``."""
    return sorted(set(os.listdir(directory)) - set(before))


def assert_harmless(names, target, temporary_suffix):
    """Every leftover is a hidden temporary beside ``target``, half written."""
    assert names, "the process died before writing its temporary file"
    for name in names:
        assert name.startswith(f".{target}."), name
        assert name.endswith(temporary_suffix), name
        assert not name.endswith(".txt"), name
        assert name != target


@pytest.fixture
def workdir(tmp_path):
    rng = np.random.default_rng(404)
    nndir = tmp_path / "nn"
    random_nndir(synthetic(rng, n=80), nndir, rng)
    (nndir / "transformed.txt").rename(tmp_path / "transformed.txt")
    return tmp_path


def test_lock_domain_range_killed_mid_write_keeps_the_old_config(workdir):
    nndir = workdir / "nn"
    before = (nndir / CONFIG_NAME).read_bytes()
    names = os.listdir(nndir)
    # New data, so that the rewrite would change the bounds.
    rng = np.random.default_rng(405)
    table, suffixes, _ = to_internal(synthetic(rng, n=50))
    write_table(workdir / "other.txt", table, suffixes)

    run_killed(
        "text",
        f".{CONFIG_NAME}.",
        ["lock-domain-range", "other.txt", "nn"],
        workdir,
    )
    assert (nndir / CONFIG_NAME).read_bytes() == before
    load_config(nndir)
    left = leftovers(nndir, names)
    assert_harmless(left, CONFIG_NAME, ".tmp")
    # The leftover really is the half-written new config.
    assert 0 < (nndir / left[0]).stat().st_size < len(before) * 2
    # PhysicalApproximator still loads the directory, and a rerun succeeds.
    PhysicalApproximator(nndir)
    done = subprocess.run(
        [sys.executable, "-m", "neurosynchro.cli", "lock-domain-range", "other.txt"]
        + ["nn"],
        cwd=workdir,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (nndir / CONFIG_NAME).read_bytes() != before


def test_transform_killed_mid_write_keeps_the_old_output(workdir):
    # A training set whose table is being rewritten: the half-written file
    # must not be read as a table (*.txt) by the next command.
    raw = synthetic(np.random.default_rng(406), n=60)
    write_table(workdir / "raw.txt", raw.table, raw.suffixes)
    out = workdir / "set"
    out.mkdir()
    (out / "table.txt").write_text("s(log)\ttheta(lin)\tj_I(res)\n10\t0.5\t1e-30\n")
    before = (out / "table.txt").read_bytes()

    run_killed(
        "csv",
        ".table.txt.",
        ["transform", "raw.txt", "-o", "set/table.txt"],
        workdir,
    )
    assert (out / "table.txt").read_bytes() == before
    assert_harmless(leftovers(out, ["table.txt"]), "table.txt", ".tmp")
    assert read_training_set(out).files == [out / "table.txt"]


@pytest.mark.slow
def test_train_killed_while_saving_a_network_keeps_the_old_one(workdir):
    nndir = workdir / "nn"
    path = nndir / CONFIG_NAME
    path.write_text(
        path.read_text()
        + "\n[training]\nepochs = 2\nhidden_units = [4]\npatience = 1\n"
        + "batch_size = 32\nclip_sigma = 0\n"
    )
    before = (nndir / "j_I.npz").read_bytes()
    names = os.listdir(nndir)

    run_killed("npz", ".j_I.npz.", ["train", "transformed.txt", "nn", "j_I"], workdir)
    assert (nndir / "j_I.npz").read_bytes() == before
    network = Network.load(nndir / "j_I.npz")
    assert network.n_inputs == 2
    PhysicalApproximator(nndir)
    # Killed before the .keras file: nothing but the hidden temporary.
    assert_harmless(leftovers(nndir, names), "j_I.npz", ".npz")


def test_failed_write_leaves_target_and_no_temporary(tmp_path):
    target = tmp_path / "nn_config.toml"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text("new, half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["nn_config.toml"]
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["nn_config.toml"]
