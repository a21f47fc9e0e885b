"""Bad input of every kind: one clear line and the right exit status, never a crash.

The command-line cases run the real entry point (``python -m
neurosynchro.cli``) in subprocesses and check what a user sees: the exit
status (1 for bad data, 2 for bad usage), a single ``neurosynchro: error:``
line that names the file, line, column, option or argument at fault and what
was expected, and no traceback. The subprocesses of all selected cases are
started together by one module fixture, since each spends most of its second
importing numpy, pandas and scipy.

Cases marked ``xfail(strict=True)`` document a bug in the package: they state
the expected behaviour and fail until it is fixed.

The library-level cases check misuse of the Python API and the loading of
network directories that come from strangers.
"""

import io
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from nnfactory import random_nndir
from test_transform import synthetic

from neurosynchro import PhysicalApproximator
from neurosynchro.config import CONFIG_NAME, init_nndir, load_config
from neurosynchro.errors import (
    ConfigError,
    NetworkError,
    NeurosynchroWarning,
    TableError,
    UsageError,
)
from neurosynchro.network import Network
from neurosynchro.samples import read_training_set, write_table
from neurosynchro.training import TRAINERS

#: Environment of every subprocess: TensorFlow's C++ log quiet.
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

#: Lines that TensorFlow prints on import whatever TF_CPP_MIN_LOG_LEVEL says.
TF_NOISE = ("I0000", "E0000", "W0000", "WARNING: All log messages")

#: Subprocesses run at once: one per core, at least two, at most four.
WORKERS = max(2, min(4, os.cpu_count() or 1))

#: Seconds any one command may take (a train case imports TensorFlow).
TIMEOUT_S = 180


# ---------------------------------------------------------------------------
# Shared material: a raw table, its transformed version and a locked network
# directory with random weights.


@dataclass
class Shared:
    root: Path
    raw: list  # lines of a raw table (header first), without newlines
    transformed: Path  # transformed table file
    nndir: Path  # locked network directory with random networks
    thermal_nndir: Path  # the same with a theta_e parameter


def _build_shared(root):
    rng = np.random.default_rng(20261204)
    ts = synthetic(rng, n=40)
    write_table(root / "raw.txt", ts.table, ts.suffixes)
    raw = (root / "raw.txt").read_text().splitlines()
    assert raw[0].split("\t") == [f"{c}({ts.suffixes[c]})" for c in COLUMNS]
    nndir = root / "nn"
    random_nndir(ts, nndir, rng)

    thermal = synthetic(rng, n=60)
    thermal.table["theta_e"] = 10 ** rng.uniform(0, 2, 60)
    thermal.suffixes["theta_e"] = "log"
    order = ["s", "theta", "theta_e"] + thermal.results
    thermal.table = thermal.table[order]
    thermal.suffixes = {c: thermal.suffixes[c] for c in order}
    random_nndir(thermal, root / "thermal_nn", rng)
    return Shared(root, raw, nndir / "transformed.txt", nndir, root / "thermal_nn")


# The raw table's columns, 1-based, as write_table puts them.
COLUMNS = "s theta j_I j_Q j_V alpha_I alpha_Q alpha_V rho_Q rho_V".split()
COL = {name: number for number, name in enumerate(COLUMNS, start=1)}


def edited(lines, line, column, value):
    """A copy of table ``lines`` with one cell (1-based line and column) replaced."""
    lines = list(lines)
    cells = lines[line - 1].split("\t")
    cells[column - 1] = value
    lines[line - 1] = "\t".join(cells)
    return lines


def write_lines(path, lines, end="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + end)
    return path


def drop_column(lines, column):
    out = []
    for line in lines:
        cells = line.split("\t")
        del cells[column - 1]
        out.append("\t".join(cells))
    return out


def copy_nndir(shared, work, name="nn"):
    target = work / name
    shutil.copytree(shared.nndir, target)
    (target / "transformed.txt").unlink()
    return target


def fresh_nndir(work, name="nn"):
    init_nndir(work / name)
    return work / name


def load_arrays(path):
    with np.load(path) as archive:
        return dict(archive)


def edit_config(nndir, old, new, count=1):
    path = nndir / CONFIG_NAME
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


# ---------------------------------------------------------------------------
# The cases. Each setup gets its own working directory (the command's cwd)
# and returns the command's arguments, optionally with a check to run after
# the command.


@dataclass
class Case:
    id: str
    setup: object
    status: int
    #: A regex the error message must match; for kind "ok", a list of regexes
    #: each of which must match a line of stderr.
    pattern: object
    #: "error": a package error, one line; "usage": argparse's usage error;
    #: "ok": exit 0, the command reports what it did on stderr.
    kind: str = "error"
    bug: str = None
    slow: bool = False


CASES = []


def case(id, status, pattern, kind="error", bug=None, slow=False):
    def register(setup):
        CASES.append(Case(id, setup, status, pattern, kind, bug, slow))
        return setup

    return register


# Tables ---------------------------------------------------------------------


@case("table-empty-file", 1, r"^t/a\.txt: the file is empty; expected a header line$")
def _(work, shared):
    write_lines(work / "t/a.txt", [], end="")
    return ["transform", "t"]


@case("table-header-only", 1, r"t/a\.txt: the file has a header line but no rows")
def _(work, shared):
    write_lines(work / "t/a.txt", shared.raw[:1])
    return ["transform", "t"]


@case("table-row-too-long", 1, r"t/a\.txt: (?=.*\bline 3\b)(?=.*\b10 fields)")
def _(work, shared):
    lines = list(shared.raw[:5])
    lines[2] += "\t7"
    write_lines(work / "t/a.txt", lines)
    return ["transform", "t"]


@case(
    "table-row-too-short",
    1,
    r"t/a\.txt: line 4: expected 10 tab-separated fields, got 5",
)
def _(work, shared):
    lines = list(shared.raw[:8])
    lines[3] = "\t".join(lines[3].split("\t")[:5])
    write_lines(work / "t/a.txt", lines)
    return ["transform", "t"]


@case(
    "table-truncated-last-line",
    1,
    r"t/a\.txt: line 6: expected 10 tab-separated fields, got 2",
)
def _(work, shared):
    lines = list(shared.raw[:6])
    # A killed writer: the last line stops in its second cell, no newline.
    lines[5] = lines[5][: lines[5].index("\t") + 4]
    write_lines(work / "t/a.txt", lines, end="")
    return ["transform", "t"]


@case(
    "table-non-numeric-result",
    1,
    r"t/a\.txt: line 3, column 4 \(j_Q.*\): expected a number, got 'abc'",
)
def _(work, shared):
    write_lines(work / "t/a.txt", edited(shared.raw, 3, COL["j_Q"], "abc"))
    return ["transform", "t"]


@case(
    "table-non-numeric-input",
    1,
    r"t/a\.txt: line 5, column 2 \(theta.*\): expected a number, got 'north'",
)
def _(work, shared):
    write_lines(work / "t/a.txt", edited(shared.raw, 5, COL["theta"], "north"))
    return ["-q", "transform", "t"]


@case(
    "table-nan-input",
    1,
    r"t/a\.txt: line 3, column 1 \(s\): expected a finite input value",
)
def _(work, shared):
    write_lines(work / "t/a.txt", edited(shared.raw, 3, COL["s"], "nan"))
    return ["transform", "t"]


@case(
    "table-inf-input",
    1,
    r"t/a\.txt: line 7, column 2 \(theta\): expected a finite input value",
)
def _(work, shared):
    write_lines(work / "t/a.txt", edited(shared.raw, 7, COL["theta"], "-inf"))
    return ["transform", "t"]


@case(
    "table-duplicated-column",
    1,
    r"t/a\.txt: line 1, column 3\b.*'?s'? appears more than once",
)
def _(work, shared):
    write_lines(work / "t/a.txt", edited(shared.raw, 1, 3, "s(log)"))
    return ["transform", "t"]


@case(
    "table-missing-suffix",
    1,
    r"t/a\.txt: line 1, column 2 \('theta'\): expected a name ending in a role "
    r"suffix: \(lin\), \(log\), \(res\) or \(meta\)",
)
def _(work, shared):
    write_lines(work / "t/a.txt", edited(shared.raw, 1, 2, "theta"))
    return ["transform", "t"]


@case(
    "table-unknown-suffix",
    1,
    r"t/a\.txt: line 1, column 2 \('theta\(deg\)'\): unknown role suffix "
    r"\(deg\); expected one of \(lin\), \(log\), \(res\), \(meta\)",
)
def _(work, shared):
    write_lines(work / "t/a.txt", edited(shared.raw, 1, 2, "theta(deg)"))
    return ["transform", "t"]


@case(
    "table-columns-differ",
    1,
    r"t/b\.txt: columns differ from those of t/a\.txt: expected s\(log\) .* "
    r"rho_V\(res\), got s\(log\) .*rho_Q\(res\)$",
)
def _(work, shared):
    write_lines(work / "t/a.txt", shared.raw[:4])
    write_lines(work / "t/b.txt", drop_column(shared.raw[:4], COL["rho_V"]))
    return ["transform", "t"]


@case("table-directory-without-tables", 1, r"^t: the directory holds no \*\.txt")
def _(work, shared):
    write_lines(work / "t/notes.md", ["not a table"])
    write_lines(work / "t/raw.tsv", shared.raw)
    return ["transform", "t"]


@case("table-missing-path", 1, r"^nowhere: no such file or directory$")
def _(work, shared):
    return ["transform", "nowhere"]


@case(
    "table-missing-result-column",
    1,
    r"t/a\.txt: missing result column\(s\) alpha_V\(res\); a training set needs "
    r"at least j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V",
)
def _(work, shared):
    write_lines(work / "t/a.txt", drop_column(shared.raw, COL["alpha_V"]))
    return ["transform", "t"]


@case(
    "table-no-row-survives",
    1,
    r"^t/a\.txt: no rows left after filtering \(j invariant broken "
    r"\(j_frac_pol >= 1\): 3\)$",
)
def _(work, shared):
    lines = shared.raw[:4]
    for line in (2, 3, 4):
        j_I = float(lines[line - 1].split("\t")[COL["j_I"] - 1])
        lines = edited(lines, line, COL["j_Q"], repr(-2 * j_I))
    write_lines(work / "t/a.txt", lines)
    return ["transform", "t"]


@case(
    "table-no-finite-row",
    1,
    r"^t/a\.txt: no rows left after filtering \(non-finite result: 3\)$",
)
def _(work, shared):
    lines = shared.raw[:4]
    for line in (2, 3, 4):
        lines = edited(lines, line, COL["j_I"], "nan")
    write_lines(work / "t/a.txt", lines)
    return ["transform", "t"]


@case(
    "table-failed-results-are-dropped-and-counted",
    0,
    [r"^rows read: 40$", r"^dropped, non-finite result: 3$", r"^rows kept: 37$"],
    kind="ok",
)
def _(work, shared):
    # Failed calculations (NaN, inf, empty cells) are data, not errors.
    lines = edited(shared.raw, 3, COL["j_Q"], "nan")
    lines = edited(lines, 9, COL["alpha_I"], "inf")
    lines = edited(lines, 20, COL["rho_Q"], "")
    write_lines(work / "t/a.txt", lines)
    return ["transform", "t", "-o", "out.txt"]


@case(
    "table-broken-invariants-are-dropped-and-counted",
    0,
    [
        r"^dropped, j invariant broken \(j_frac_pol >= 1\): 1$",
        r"^dropped, alpha invariant broken \(alpha_frac_pol >= 1\): 1$",
        r"^dropped, alpha_I <= 0: 1$",
        r"^dropped, j_V has the minority sign: 1$",
        r"^rows kept: 36$",
    ],
    kind="ok",
)
def _(work, shared):
    lines = list(shared.raw)
    j_I = float(lines[2].split("\t")[COL["j_I"] - 1])
    lines = edited(lines, 3, COL["j_Q"], repr(-2 * j_I))
    alpha_I = float(lines[4].split("\t")[COL["alpha_I"] - 1])
    lines = edited(lines, 5, COL["alpha_V"], repr(1.5 * alpha_I))
    lines = edited(lines, 6, COL["alpha_I"], "-1e-20")
    v = float(lines[7].split("\t")[COL["j_V"] - 1])
    lines = edited(lines, 8, COL["j_V"], repr(-v))
    write_lines(work / "t/a.txt", lines)
    return ["transform", "t", "-o", "out.txt"]


def _transformed_without(work, shared, column):
    lines = shared.transformed.read_text().splitlines()
    number = lines[0].split("\t").index(column) + 1
    write_lines(work / "tr.txt", drop_column(lines, number))
    fresh_nndir(work)
    return ["lock-domain-range", "tr.txt", "nn"]


@case(
    "lock-table-without-theta",
    1,
    r"nn/nn_config\.toml: the config names input parameter\(s\) theta that "
    r"tr\.txt lacks; its inputs are s$",
)
def _(work, shared):
    return _transformed_without(work, shared, "theta(lin)")


@case(
    "lock-table-and-config-without-theta",
    1,
    r"(tr\.txt|nn_config\.toml).*\btheta\b",
)
def _(work, shared):
    argv = _transformed_without(work, shared, "theta(lin)")
    edit_config(
        work / "nn",
        '[[params]]\nname = "theta"\nmaptype = "direct"\n'
        'phys_bounds_mode = "theta"\nout_of_sample = "clip"\n',
        "",
    )
    return argv


@case(
    "table-theta-outside-domain",
    1,
    r"t/a\.txt: line 4, column 2 \(theta\).*pi/2",
)
def _(work, shared):
    write_lines(work / "t/a.txt", edited(shared.raw, 4, COL["theta"], "2.5"))
    return ["transform", "t", "-o", "out.txt"]


# Configs --------------------------------------------------------------------


@case(
    "config-toml-syntax-error",
    1,
    r"nn/nn_config\.toml: TOML syntax error: .* at line \d+ col \d+",
)
def _(work, shared):
    nndir = fresh_nndir(work)
    edit_config(nndir, 'name = "j_I"', 'name = "j_I\nmaptype = log')
    return ["lock-domain-range", str(shared.transformed), "nn"]


def _lock_with(work, shared, old, new):
    nndir = fresh_nndir(work)
    edit_config(nndir, old, new)
    return ["lock-domain-range", str(shared.transformed), "nn"]


@case(
    "config-unknown-scale-mode",
    1,
    r"nn/nn_config\.toml: .*\(rho_Q\): scale_mode = 'cubic' is not valid; "
    r"expected one of 'none', 'quadratic'$",
)
def _(work, shared):
    return _lock_with(work, shared, 'scale_mode = "quadratic"', 'scale_mode = "cubic"')


@case(
    "config-unknown-maptype",
    1,
    r"nn/nn_config\.toml: .*\(s\): maptype = 'cube' is not valid; expected one "
    r"of 'direct', 'log'.*'sign'$",
)
def _(work, shared):
    return ["-q", *_lock_with(work, shared, 'maptype = "log"', 'maptype = "cube"')]


@case(
    "config-unknown-phys-bounds-mode",
    1,
    r"nn/nn_config\.toml: .*\(theta\): phys_bounds_mode = 'degrees' is not "
    r"valid; expected one of 'empirical', 'theta'$",
)
def _(work, shared):
    return _lock_with(
        work, shared, 'phys_bounds_mode = "theta"', 'phys_bounds_mode = "degrees"'
    )


@case(
    "config-unknown-normalization-mode",
    1,
    r"nn/nn_config\.toml: .*\(rho_Q\): normalization_mode = 'minmax' is not "
    r"valid; expected one of 'gaussian', 'unit_interval'$",
)
def _(work, shared):
    return _lock_with(
        work,
        shared,
        'scale_mode = "quadratic"',
        'scale_mode = "quadratic"\nnormalization_mode = "minmax"',
    )


@case(
    "config-unknown-out-of-sample",
    1,
    r"nn/nn_config\.toml: .*\(theta\): out_of_sample = 'wrap' is not valid; "
    r"expected one of 'ignore', 'clip', 'nan'$",
)
def _(work, shared):
    return _lock_with(work, shared, 'out_of_sample = "clip"', 'out_of_sample = "wrap"')


@case(
    "config-unknown-trainer",
    1,
    r"nn/nn_config\.toml: \[\[results\]\] #2 \(alpha_I\): trainer = 'magic' is "
    r"not valid; expected one of 'generic', 'twolayer', 'binary'$",
)
def _(work, shared):
    nndir = copy_nndir(shared, work)
    text = (nndir / CONFIG_NAME).read_text()
    start = text.index('name = "alpha_I"')
    edited_text = text[:start] + text[start:].replace(
        'trainer = "generic"', 'trainer = "magic"', 1
    )
    (nndir / CONFIG_NAME).write_text(edited_text)
    return ["validate", "nn", str(shared.root / "raw.txt")]


@case(
    "lock-unknown-trainer-leaves-config-alone",
    1,
    r"nn/nn_config\.toml: .*\(j_I\): trainer = 'magic' is not valid",
)
def _(work, shared):
    argv = _lock_with(work, shared, 'trainer = "generic"', 'trainer = "magic"')
    before = (work / "nn" / CONFIG_NAME).read_bytes()

    def unchanged(work):
        assert (work / "nn" / CONFIG_NAME).read_bytes() == before

    return argv, unchanged


@case(
    "config-bounds-missing-validate",
    1,
    r"nn/nn_config\.toml: \[\[params\]\] #1 \(s\): no bounds \(x_mean, .* "
    r"missing\); run 'neurosynchro lock-domain-range' on the transformed table",
)
def _(work, shared):
    fresh_nndir(work)
    return ["validate", "nn", str(shared.root / "raw.txt")]


@case(
    "config-bounds-missing-train",
    1,
    r"nn/nn_config\.toml: \[\[params\]\] #1 \(s\): no bounds .*lock-domain-range",
)
def _(work, shared):
    fresh_nndir(work)
    return ["train", str(shared.transformed), "nn"]


@case(
    "config-names-a-parameter-the-table-lacks",
    1,
    r"nn/nn_config\.toml: the config names input parameter\(s\) p that .*"
    r"transformed\.txt lacks; its inputs are s, theta$",
)
def _(work, shared):
    nndir = fresh_nndir(work)
    path = nndir / CONFIG_NAME
    path.write_text(path.read_text() + '\n[[params]]\nname = "p"\nmaptype = "direct"\n')
    return ["lock-domain-range", str(shared.transformed), "nn"]


@case(
    "validate-table-lacks-a-model-parameter",
    1,
    r"^raw\.txt: the network directory nn needs input column\(s\) theta_e\(lin\) "
    r"or theta_e\(log\); the table has inputs s, theta$",
)
def _(work, shared):
    shutil.copytree(shared.thermal_nndir, work / "nn")
    shutil.copy(shared.root / "raw.txt", work / "raw.txt")
    return ["validate", "nn", "raw.txt"]


@case(
    "config-bad-epochs",
    1,
    r"nn/nn_config\.toml \(j_I\): epochs = -3; expected a positive integer$",
    slow=True,
)
def _(work, shared):
    nndir = copy_nndir(shared, work)
    edit_config(nndir, 'trainer = "generic"\n', 'trainer = "generic"\nepochs = -3\n')
    return ["train", str(shared.transformed), "nn", "j_I"]


@case(
    "config-bad-epochs-parallel-workers",
    1,
    r"nn/nn_config\.toml \[training\]: epochs = -3; expected a positive integer$",
    slow=True,
)
def _(work, shared):
    # Two networks, two jobs: the mistake is found before any worker starts,
    # and reported as the same one line.
    nndir = copy_nndir(shared, work)
    edit_config(nndir, "[signs]", "[training]\nepochs = -3\n\n[signs]")
    return ["train", str(shared.transformed), "nn", "j_I", "alpha_I", "--jobs", "2"]


# Network directories --------------------------------------------------------


def _validate(work, shared):
    return ["validate", "nn", str(shared.root / "raw.txt")]


@case(
    "network-file-missing",
    1,
    r"^nn/j_V_share\.npz: missing network weights file$",
)
def _(work, shared):
    nndir = copy_nndir(shared, work)
    (nndir / "j_V_share.npz").unlink()
    return _validate(work, shared)


@case(
    "network-shape-does-not-match-config",
    1,
    r"^nn/j_I\.npz: takes 3 inputs but nn/nn_config\.toml lists 2 parameters "
    r"\(s, theta\)$",
)
def _(work, shared):
    nndir = copy_nndir(shared, work)
    Network(
        [np.ones((3, 4)), np.ones((4, 1))], [np.zeros(4), np.zeros(1)], ["tanh"] * 2
    ).save(nndir / "j_I.npz")
    return _validate(work, shared)


@case(
    "network-truncated-npz",
    1,
    r"^nn/j_I\.npz: not a readable \.npz file; expected a zip archive of \.npy",
)
def _(work, shared):
    nndir = copy_nndir(shared, work)
    data = (nndir / "j_I.npz").read_bytes()
    (nndir / "j_I.npz").write_bytes(data[: len(data) // 2])
    return ["test-problem", "nn", "thermal"]


def damage_deflate_stream(path):
    """Overwrite a compressed member's data, keeping the zip structure valid."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = next(
            i for i in archive.infolist() if i.compress_type == zipfile.ZIP_DEFLATED
        )
    start = member.header_offset + 30 + len(member.filename.encode())
    start += len(member.extra)
    # 0xff starts a deflate block of the reserved type 3: zlib refuses it.
    data[start : start + member.compress_size] = b"\xff" * member.compress_size
    path.write_bytes(bytes(data))


@case(
    "network-corrupted-deflate-data",
    1,
    r"^nn/j_I\.npz: not a readable \.npz file",
)
def _(work, shared):
    nndir = copy_nndir(shared, work)
    damage_deflate_stream(nndir / "j_I.npz")
    return _validate(work, shared)


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickled_npz(work, shared, command):
    nndir = copy_nndir(shared, work)
    marker = work / "pwned"
    arrays = load_arrays(nndir / "j_I.npz")
    arrays["kernel_0"] = np.array([_Payload(marker)], dtype=object)
    np.savez(nndir / "j_I.npz", **arrays)

    def never_ran(work):
        assert not marker.exists()

    argv = [command, "nn", "thermal" if command == "test-problem" else "raw.txt"]
    shutil.copy(shared.root / "raw.txt", work / "raw.txt")
    return argv, never_ran


@case(
    "network-pickle-refused-validate",
    1,
    r"^nn/j_I\.npz: refused: holds pickled objects; expected plain numeric "
    r"arrays$",
)
def _(work, shared):
    return _pickled_npz(work, shared, "validate")


@case(
    "network-pickle-refused-test-problem",
    1,
    r"^nn/j_I\.npz: refused: holds pickled objects",
)
def _(work, shared):
    return _pickled_npz(work, shared, "test-problem")


# Command-line usage -----------------------------------------------------------


@case("usage-unknown-command", 2, r"invalid choice: 'frobnicate'", kind="usage")
def _(work, shared):
    return ["frobnicate"]


@case(
    "usage-missing-argument",
    2,
    r"the following arguments are required: DATADIR",
    kind="usage",
)
def _(work, shared):
    return ["validate", "nn"]


def _make(*options):
    return ["make-training-set", "out", "--distribution", "thermal", *options]


@case("usage-rows-zero", 2, r"^--rows 0: expected a positive number of rows")
def _(work, shared):
    return _make("--rows", "0")


@case("usage-range-reversed", 2, r"^--range s=5:1: expected LO < HI, got 5\.0:1\.0$")
def _(work, shared):
    return _make("--rows", "3", "--range", "s=5:1")


@case(
    "usage-set-unknown-name",
    2,
    r"^--set nope=1: 'nope' is not a parameter of the thermal distribution; "
    r"expected one of theta_e",
)
def _(work, shared):
    return _make("--rows", "3", "--set", "nope=1")


@case(
    "usage-set-unphysical-value",
    2,
    r"^--set theta_e=-3: .*(> 0|positive)",
)
def _(work, shared):
    return _make("--rows", "2", "--workers", "1", "--set", "theta_e=-3")


@case(
    "usage-unknown-distribution",
    2,
    r"argument --distribution: invalid choice: 'gaussian' \(choose from "
    r"'thermal', 'powerlaw', 'kappa'\)",
    kind="usage",
)
def _(work, shared):
    return ["make-training-set", "out", "--distribution", "gaussian", "--rows", "3"]


@case(
    "usage-validate-nu-and-b",
    2,
    r"argument --B: not allowed with argument --nu",
    kind="usage",
)
def _(work, shared):
    return ["validate", "nn", "raw", "--nu", "1e10", "--B", "3"]


@case("usage-validate-negative-nu", 2, r"^(--)?nu: expected a finite value > 0, got -5")
def _(work, shared):
    return ["validate", str(shared.nndir), "raw", "--nu", "-5"]


@case(
    "usage-train-unknown-result",
    2,
    r"nope.*expected one of j_I, alpha_I",
)
def _(work, shared):
    return ["train", str(shared.transformed), str(shared.nndir), "nope"]


@case("usage-train-zero-jobs", 2, r"^--jobs 0: expected a positive integer$")
def _(work, shared):
    return ["train", str(shared.transformed), str(shared.nndir), "--jobs", "0"]


@case(
    "usage-demo-into-a-file",
    2,
    r"^DIRECTORY .*/taken: is a file; expected a directory$",
)
def _(work, shared):
    (work / "taken").write_text("not a directory\n")
    return ["demo", str(work / "taken")]


# ---------------------------------------------------------------------------
# Running the cases.


def run_cli(argv, cwd):
    return subprocess.run(
        [sys.executable, "-m", "neurosynchro.cli", *argv],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def _selected_cases(request):
    """Ids of the CLI cases this session will run (all if unknown)."""
    ids = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if item.module is request.module and callspec and "cli_case" in callspec.params:
            ids.add(callspec.params["cli_case"].id)
    return ids or {c.id for c in CASES}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return _build_shared(tmp_path_factory.mktemp("shared"))


@pytest.fixture(scope="module")
def cli_runs(request, shared, tmp_path_factory):
    """Set up every selected case, then run all their commands concurrently."""
    root = tmp_path_factory.mktemp("cli")
    selected = _selected_cases(request)
    prepared = {}
    # TensorFlow-importing cases first: they take longest.
    for c in sorted(CASES, key=lambda c: not c.slow):
        if c.id not in selected:
            continue
        work = root / c.id
        work.mkdir()
        out = c.setup(work, shared)
        argv, post = out if isinstance(out, tuple) else (out, None)
        prepared[c.id] = (argv, work, post)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {
            key: pool.submit(run_cli, argv, work)
            for key, (argv, work, _) in prepared.items()
        }
        return {key: (futures[key].result(), *prepared[key][1:]) for key in prepared}


def _param(c):
    marks = []
    if c.bug:
        marks.append(pytest.mark.xfail(strict=True, reason=c.bug))
    if c.slow:
        marks.append(pytest.mark.slow)
    return pytest.param(c, id=c.id, marks=marks)


def _stderr_lines(stderr):
    return [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(TF_NOISE)
    ]


@pytest.mark.parametrize("cli_case", [_param(c) for c in CASES])
def test_cli_bad_input(cli_case, cli_runs):
    c = cli_case
    done, work, post = cli_runs[c.id]
    shown = f"exit {done.returncode}; stderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr, shown
    assert done.returncode == c.status, shown
    lines = _stderr_lines(done.stderr)
    if c.kind == "ok":
        for pattern in c.pattern:
            assert any(re.search(pattern, line) for line in lines), (pattern, shown)
    elif c.kind == "usage":
        assert lines, shown
        match = re.match(r"neurosynchro(?: [a-z-]+)?: error: (.*)$", lines[-1])
        assert match, shown
        assert re.search(c.pattern, match[1]), shown
        # Only argparse's usage text comes before the error line.
        assert all(line.startswith(("usage:", " ")) for line in lines[:-1]), shown
    else:
        errors = [line for line in lines if "error" in line.lower()]
        assert errors == [lines[-1]], shown
        assert lines[-1].startswith("neurosynchro: error: "), shown
        message = lines[-1][len("neurosynchro: error: ") :]
        assert re.search(c.pattern, message), shown
        # Before it, only the command's own log lines (read N rows ...).
        assert all(line.startswith("neurosynchro: ") for line in lines[:-1]), shown
        if "-q" in done.args:
            assert len(lines) == 1, shown
    if post is not None:
        post(work)


def test_at_least_forty_cli_cases():
    assert len(CASES) >= 40


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_text("")
    done = run_cli(["--debug", "transform", "t"], tmp_path)
    assert done.returncode != 0
    assert "Traceback" in done.stderr
    assert "TableError: t/a.txt: the file is empty" in done.stderr


# ---------------------------------------------------------------------------
# The Python API.


@pytest.fixture(scope="module")
def approx(shared):
    return PhysicalApproximator(shared.thermal_nndir)


def compute(approx, **changes):
    args = dict(nu=1e11, B=30.0, n_e=1e4, theta=0.7, theta_e=10.0)
    args.update(changes)
    args = {k: v for k, v in args.items() if not isinstance(v, _Absent)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        return approx.compute_all_nontrivial(**args)


class _Absent:
    pass


ABSENT = _Absent()


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({"n_e": -1.0}, r"^n_e: expected values >= 0; got -1\.0$"),
        ({"n_e": np.array([1.0, -2.0])}, r"^n_e: expected values >= 0; got -2\.0$"),
        ({"B": -3.0}, r"^B: expected values >= 0; got -3\.0$"),
        ({"nu": 0.0}, r"^nu: expected values > 0; got 0\.0$"),
        ({"nu": np.inf}, r"^nu: expected finite values; got inf$"),
        ({"B": np.inf}, r"^B: expected finite values; got inf$"),
        ({"n_e": np.array([1.0, np.inf])}, r"^n_e: expected finite values; got inf$"),
        ({"theta": "north"}, r"^theta: expected numbers, got 'north'$"),
        ({"nu": True}, r"^nu: expected numbers, got True$"),
        ({"theta_e": np.array([True])}, r"^theta_e: expected numbers, got "),
        (
            {"nu": np.ones(3), "B": np.ones((2, 2))},
            r"^arguments do not broadcast together: nu \(3,\), B \(2, 2\), n_e "
            r"\(\), theta \(\), theta_e \(\)$",
        ),
        (
            {"theta_e": ABSENT},
            r"^model parameter keywords: missing theta_e; this network directory "
            r"\(.*thermal_nn\) takes: theta_e$",
        ),
        (
            {"theta_e": ABSENT, "T_e": 3.0},
            r"missing theta_e; unknown T_e; this network directory .* takes: theta_e",
        ),
    ],
)
def test_api_misuse_raises_usage_error(approx, changes, pattern):
    with pytest.raises(UsageError, match=pattern):
        compute(approx, **changes)


@pytest.mark.parametrize("name", ["nu", "B", "n_e", "theta", "theta_e"])
def test_nan_input_gives_nan_and_a_flag_never_an_exception(approx, name):
    value = np.array([np.nan, 1.0]) * {"nu": 1e11, "B": 30, "n_e": 1e4}.get(name, 0.7)
    coeffs, oos = compute(approx, **{name: value})
    assert np.isnan(coeffs[0]).all() and oos[0]
    assert np.isfinite(coeffs[1]).all()


def test_infinite_angle_or_parameter_gives_nan_and_a_flag(approx):
    coeffs, oos = compute(approx, theta=np.array([np.inf, 0.7]))
    assert np.isnan(coeffs[0]).all() and oos[0] and np.isfinite(coeffs[1]).all()
    coeffs, oos = compute(approx, theta_e=np.array([10.0, -np.inf]))
    assert np.isnan(coeffs[1]).all() and oos[1] and np.isfinite(coeffs[0]).all()


def test_none_argument_is_a_usage_error(approx):
    with pytest.raises(UsageError, match=r"^theta_e: expected numbers, got None"):
        compute(approx, theta_e=None)


def test_far_out_of_domain_inputs_raise_no_numpy_warning(tmp_path):
    rng = np.random.default_rng(11)
    random_nndir(synthetic(rng, n=60), tmp_path / "nn", rng, activation="softplus")
    approx = PhysicalApproximator(tmp_path / "nn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", NeurosynchroWarning)
        _, oos = approx.compute_all_nontrivial(
            np.array([1e200, 1e300]), np.array([1e-100, 1e-300]), 1.0, 0.7
        )
    assert oos.all()


# Network files at the library level.

GOOD_LAYERS = {
    "format_version": np.array(1),
    "kernel_0": np.ones((2, 3)),
    "bias_0": np.zeros(3),
    "activation_0": np.array("tanh"),
    "kernel_1": np.ones((3, 1)),
    "bias_1": np.zeros(1),
    "activation_1": np.array("linear"),
}


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({"kernel_0": np.ones((2, 3), dtype=int)}, r"layer 0: weights are not floats"),
        ({"kernel_0": np.ones((2, 3), dtype=complex)}, r"layer 0: weights are not"),
        ({"bias_1": None}, r"layer 1: missing 'bias_1'"),
        ({"format_version": None}, r"format_version None; expected the integer 1"),
        (
            {"format_version": np.array(2)},
            r"format_version array\(2\); expected the integer 1",
        ),
        ({"kernel_0": np.full((2, 3), np.nan)}, r"layer 0 has non-finite weights"),
        ({"bias_0": np.zeros((1, 3))}, r"layer 0: kernel \(2, 3\) and bias \(1, 3\)"),
        (
            {"kernel_1": np.ones((3, 2)), "bias_1": np.zeros(2)},
            r"the last layer has 2 outputs; expected 1",
        ),
        (
            {"kernel_1": np.ones((4, 1))},
            r"layer 1 takes 4 inputs but layer 0 gives 3",
        ),
        ({"activation_1": np.array("exp")}, r"layer 1: unknown activation 'exp'"),
        ({"format_version": np.array("one")}, r"format_version .*expected the integer"),
        (
            {"format_version": np.array([1, 1])},
            r"format_version .*expected the integer",
        ),
    ],
)
def test_bad_network_files_raise_network_error(tmp_path, changes, pattern):
    arrays = {**GOOD_LAYERS, **changes}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / "net.npz"
    np.savez(path, **arrays)
    with pytest.raises(NetworkError, match=rf"^{re.escape(str(path))}: {pattern}"):
        Network.load(path)


def test_member_that_is_not_an_array(tmp_path):
    path = tmp_path / "net.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in GOOD_LAYERS.items():
            buffer = io.BytesIO()
            np.save(buffer, value)
            data = buffer.getvalue() if key != "kernel_0" else b"no .npy array"
            archive.writestr(f"{key}.npy", data)
    with pytest.raises(NetworkError, match=r"net\.npz: .*kernel_0"):
        Network.load(path)


def test_table_that_is_not_utf8(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"s(log)\ttheta(lin)\n1\t\xe9\n")
    with pytest.raises(TableError, match=r"a\.txt: not a text table .*UTF-8"):
        read_training_set(tmp_path)


def test_missing_config_file(shared, tmp_path):
    nndir = copy_nndir(shared, tmp_path)
    (nndir / CONFIG_NAME).unlink()
    with pytest.raises(ConfigError, match=r"nn_config\.toml: no such config file$"):
        PhysicalApproximator(nndir)


def test_missing_network_directory(tmp_path):
    with pytest.raises(NetworkError, match=r"nope: no such network directory$"):
        PhysicalApproximator(tmp_path / "nope")


def test_bad_recorded_sign(shared, tmp_path):
    nndir = copy_nndir(shared, tmp_path)
    edit_config(nndir, "j_Q = -1", "j_Q = 0")
    with pytest.raises(
        ConfigError, match=r"\[signs\] needs \+1 or -1 for each of j_Q$"
    ):
        load_config(nndir)


@pytest.mark.parametrize(
    "key, value, pattern",
    [
        ("hidden_units", "big", r"expected a list of positive integers"),
        ("hidden_units", [64, 0], r"expected a list of positive integers"),
        ("epochs", -3, r"expected a positive integer"),
        ("epochs", 2.5, r"expected a positive integer"),
        ("batch_size", "256", r"expected a positive integer"),
        ("activation", "linear", r"expected one of relu, tanh"),
        ("output", "softmax", r"expected 'regression' or 'binary'"),
        ("validation_fraction", 0.7, r"expected a number between 0 and 0\.5"),
        ("learning_rate", -1e-3, r"expected a non-negative number"),
        ("seed", -1, r"expected a non-negative integer"),
        ("refine_rows", -5, r"expected a non-negative integer"),
        ("refine_iterations", 1.5, r"expected a non-negative integer"),
        # TOML's true and false are not numbers (Python counts bool as int).
        ("epochs", True, r"expected a positive integer"),
        ("seed", False, r"expected a non-negative integer"),
        ("hidden_units", [64, True], r"expected a list of positive integers"),
        ("learning_rate", True, r"expected a non-negative number"),
        ("validation_fraction", True, r"expected a number between 0 and 0\.5"),
    ],
)
def test_bad_trainer_settings(key, value, pattern):
    # The check train runs (after importing Keras, so tested here directly).
    where = "nn/nn_config.toml (j_I)"
    expected = rf"^{re.escape(where)}: {key} = {re.escape(repr(value))}; {pattern}"
    with pytest.raises(ConfigError, match=expected):
        TRAINERS["generic"].updated({key: value}, where)


def test_truncated_array_is_not_called_a_pickle(tmp_path):
    path = tmp_path / "net.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in GOOD_LAYERS.items():
            buffer = io.BytesIO()
            np.save(buffer, value)
            data = buffer.getvalue()
            archive.writestr(f"{key}.npy", data[:-8] if key == "kernel_0" else data)
    with pytest.raises(NetworkError) as info:
        Network.load(path)
    assert "pickle" not in str(info.value)
    assert "kernel_0" in str(info.value)


# ---------------------------------------------------------------------------
# Network directories from strangers: nothing in them is ever executed.


def _malicious_keras_file(path, marker):
    """A .keras archive whose Lambda layer would write ``marker`` if loaded.

    Built by hand, without Keras: a zip holding ``config.json`` with a Lambda
    layer whose function is marshalled Python bytecode, as Keras stores it.
    """
    import base64
    import json
    import marshal

    code = compile(f"lambda x: open({str(marker)!r}, 'w') and x", "<payload>", "eval")
    function = {
        "class_name": "__lambda__",
        "config": {
            "code": base64.b64encode(marshal.dumps(code)).decode("ascii"),
            "defaults": None,
            "closure": None,
        },
    }
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                {"class_name": "InputLayer", "config": {"batch_shape": [None, 2]}},
                {
                    "module": "keras.layers",
                    "class_name": "Lambda",
                    "config": {"name": "lambda", "function": function},
                },
            ],
        },
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64)


def test_inference_never_reads_keras_files(shared, tmp_path):
    nndir = tmp_path / "nn"
    shutil.copytree(shared.thermal_nndir, nndir)
    marker = tmp_path / "pwned"
    names = [p.stem for p in nndir.glob("*.npz")]
    for name in names:
        (nndir / f"{name}.keras").write_bytes(b"garbage, not a zip archive")
    _malicious_keras_file(nndir / "j_I.keras", marker)

    # Same numbers as the directory without .keras files.
    expected, _ = compute(PhysicalApproximator(shared.thermal_nndir))
    got, _ = compute(PhysicalApproximator(nndir))
    np.testing.assert_array_equal(got, expected)

    # And no .keras file is even opened: an audit hook sees every open().
    code = (
        "import sys, warnings\n"
        "opened = []\n"
        "def hook(event, args):\n"
        "    if event == 'open' and str(args[0]).endswith('.keras'):\n"
        "        opened.append(str(args[0]))\n"
        "sys.addaudithook(hook)\n"
        "import neurosynchro\n"
        "warnings.simplefilter('ignore')\n"
        f"a = neurosynchro.PhysicalApproximator({str(nndir)!r})\n"
        "a.compute_all_nontrivial(1e11, 30.0, 1.0, 0.7, theta_e=10.0)\n"
        "print(opened)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert not marker.exists()


@pytest.mark.slow
def test_keras_safe_mode_refuses_a_lambda_layer(tmp_path):
    # Keras runs in a subprocess: this file never imports it.
    marker = tmp_path / "pwned"
    path = tmp_path / "lambda.keras"
    code = f"""
import os, sys
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras

marker = {str(marker)!r}
inputs = keras.Input(shape=(2,))
outputs = keras.layers.Lambda(lambda x: (open(marker, "w").close(), x)[1])(inputs)
keras.Model(inputs, outputs).save({str(path)!r})
os.remove(marker)  # building the model called the function once
try:
    keras.models.load_model({str(path)!r}, safe_mode=True)
except ValueError as error:
    print("refused:", " ".join(str(error).split()))
else:
    print("loaded")
print("marker:", os.path.exists(marker))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^refused: .*safe_mode", done.stdout, re.M), done.stdout
    assert "marker: False" in done.stdout
