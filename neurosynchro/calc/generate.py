"""Training-set generation: the ``neurosynchro make-training-set`` command.

A training set is a directory of tab-separated tables (DESIGN.md,
"Training-set tables"). This module fills one with detailed-calculator
results at sampled (or given) points, in shards of a few hundred rows:

- each shard ``shard-NNNNNN.txt`` is computed as one unit of work, by this
  process, by local worker processes, or on a Dask cluster, and written
  atomically (beside its target, then moved into place) by this process;
- the rows of shard ``k`` depend only on the seed, ``k`` and the ranges, so
  the result does not depend on the number of workers, and a run that was
  interrupted is resumed by running the same command again: finished shards
  are kept, missing ones computed;
- ``generation.toml`` records how the set was made (distribution, ranges,
  fixed parameters, seed, shard size, calculator, package version, command
  line), and a later run into the same directory with other settings is
  refused rather than mixing two sets;
- a point whose calculation fails is written with NaN results and counted,
  never stopping the run.
"""

import argparse
import hashlib
import logging
import multiprocessing
import os
import pickle
import shlex
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures import as_completed as futures_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import (
    CalculationError,
    NeurosynchroWarning,
    TableError,
    UsageError,
)
from ..fileio import atomic_write_text
from ..processes import Terminated, start_worker, stop
from .sampling import (
    DEFAULT_RANGES,
    DISTRIBUTIONS,
    PARAMETERS,
    describe_defaults,
    draw_inputs,
    input_names,
    parse_range,
    parse_setting,
    resolve_inputs,
)

__all__ = [
    "RESULTS",
    "SHARD_ROWS",
    "RECORD_NAME",
    "make_training_set",
    "compute_shard",
    "add_arguments",
    "run",
]

logger = logging.getLogger(__name__)

#: The eight results, in table column order (DESIGN.md).
RESULTS = ("j_I", "alpha_I", "j_Q", "alpha_Q", "j_V", "alpha_V", "rho_Q", "rho_V")

#: Default rows per shard: at 3-100 ms a row a shard takes seconds to tens of
#: seconds, so an interruption loses little and the per-shard overhead (a task
#: round trip, a file) stays negligible.
SHARD_ROWS = 200

#: Name of the generation record. It must not end in ``.txt``: the table
#: loader reads every ``*.txt`` file of the directory.
RECORD_NAME = "generation.toml"

#: Name the record gives the default calculator.
DEFAULT_CALCULATOR = "neurosynchro.calc.compute_coefficients"

#: How a shard's inputs are drawn; recorded, so that a future change of scheme
#: is caught when resuming instead of silently mixing two samplings.
SAMPLER = "numpy SeedSequence(seed, spawn_key=(shard,)) PCG64, uniform in lin/log"

# Settings that must agree between the record and a run that resumes it.
_IDENTITY_KEYS = (
    "distribution",
    "calculator",
    "rows",
    "shard_rows",
    "fixed",
    "seed",
    "sampler",
    "ranges",
    "points_sha256",
)

# Keep this many shards in flight per worker: enough that a worker never waits
# for the next task, few enough that an interruption discards little.
_IN_FLIGHT_PER_WORKER = 2


def shard_name(index):
    """File name of shard ``index``: ``shard-000123.txt``."""
    return f"shard-{index:06d}.txt"


def _default_compute():
    try:
        from . import compute_coefficients
    except ImportError as error:
        raise CalculationError(
            f"the built-in calculator {DEFAULT_CALCULATOR} is not available ({error})"
        ) from None
    return compute_coefficients


def _function_name(function):
    module = getattr(function, "__module__", None) or "?"
    name = getattr(function, "__qualname__", None) or repr(function)
    return f"{module}.{name}"


def _command_line():
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


# ---------------------------------------------------------------------------
# Computing one shard (runs in a worker)


@dataclass
class ShardTask:
    """One unit of work: the inputs of one shard and how to compute it.

    Attributes
    ----------
    index : int
        Shard number, from 0.
    distribution : str
        Electron distribution name.
    inputs : dict
        ``name -> ndarray`` of shape ``(rows,)``: ``s``, ``theta`` and every
        varying parameter.
    fixed : dict
        ``name -> float``: parameters with one value for every row.
    compute : callable
        ``compute(distribution, s, theta, **params) -> (rows, 8) ndarray``.
    """

    index: int
    distribution: str
    inputs: dict
    fixed: dict
    compute: object


@dataclass
class ShardResult:
    """What a worker returns for one shard.

    Attributes
    ----------
    index : int
        Shard number.
    results : ndarray
        ``(rows, 8)``, the eight coefficients in :data:`RESULTS` order; NaN
        where the calculation failed.
    time_ms : ndarray
        ``(rows,)``, wall time per row in ms (a batch's time divided by its
        rows).
    exceptions : int
        Rows whose calculation raised (0 if the whole batch succeeded).
    first_error : str or None
        The first exception's message, if any.
    """

    index: int
    results: np.ndarray
    time_ms: np.ndarray
    exceptions: int = 0
    first_error: str | None = None


def _call(task, arguments, rows):
    s = arguments["s"]
    theta = arguments["theta"]
    params = {
        name: values for name, values in arguments.items() if name not in ("s", "theta")
    }
    out = np.asarray(task.compute(task.distribution, s, theta, **params), dtype=float)
    if out.shape != (rows, len(RESULTS)):
        raise CalculationError(
            f"{_function_name(task.compute)} returned shape {out.shape}; "
            f"expected ({rows}, {len(RESULTS)})"
        )
    return out


def _describe(error):
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def compute_shard(task):
    """Compute the eight coefficients for one shard.

    The whole shard is passed to the compute function at once (calculators
    may vectorize). If that raises, or returns the wrong shape, the rows are
    computed one by one, so that only the rows that fail get NaN results.

    Parameters
    ----------
    task : ShardTask

    Returns
    -------
    ShardResult

    Notes
    -----
    Every argument reaches the compute function as an array of shape
    ``(rows,)``, fixed parameters included (broadcast). Exceptions other than
    ``KeyboardInterrupt`` and ``SystemExit`` count as failed rows. When a batch
    fails, the time of the failed attempt is not attributed to any row.
    """
    rows = len(task.inputs["s"])
    arguments = dict(task.inputs)
    for name, value in task.fixed.items():
        arguments[name] = np.full(rows, value)

    start = time.perf_counter()
    try:
        results = _call(task, arguments, rows)
    except Exception as error:
        batch_error = _describe(error)
    else:
        elapsed_ms = 1e3 * (time.perf_counter() - start)
        return ShardResult(task.index, results, np.full(rows, elapsed_ms / rows))

    # The batch failed: retry row by row so one bad point costs one row.
    results = np.full((rows, len(RESULTS)), np.nan)
    time_ms = np.empty(rows)
    exceptions = 0
    first_error = None
    for row in range(rows):
        single = {name: values[row : row + 1] for name, values in arguments.items()}
        start = time.perf_counter()
        try:
            results[row] = _call(task, single, 1)[0]
        except Exception as error:
            exceptions += 1
            first_error = first_error or _describe(error)
        time_ms[row] = 1e3 * (time.perf_counter() - start)
    return ShardResult(
        task.index, results, time_ms, exceptions, first_error or batch_error
    )


# ---------------------------------------------------------------------------
# The plan: which rows, which columns, which settings


@dataclass
class _Plan:
    distribution: str
    rows: int
    shard_rows: int
    seed: int
    ranges: dict
    fixed: dict
    samplings: dict  # name -> "lin" | "log", for every input column
    calculator: str
    points: dict | None = None  # name -> (rows,) array, when given points
    points_source: str | None = None
    points_sha256: str | None = None
    header: list = field(default_factory=list)

    def __post_init__(self):
        inputs = [f"{name}({sampling})" for name, sampling in self.samplings.items()]
        results = [f"{name}(res)" for name in RESULTS]
        self.header = [*inputs, "time_ms(meta)", *results]

    @property
    def shards(self):
        return -(-self.rows // self.shard_rows)

    def shard_size(self, index):
        return min(self.shard_rows, self.rows - index * self.shard_rows)

    def shard_inputs(self, index):
        if self.points is None:
            return draw_inputs(self.ranges, self.seed, index, self.shard_size(index))
        start = index * self.shard_rows
        stop = start + self.shard_size(index)
        return {name: values[start:stop] for name, values in self.points.items()}

    def record(self, command):
        from .. import __version__

        record = {
            "neurosynchro_version": __version__,
            "command": command,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "distribution": self.distribution,
            "calculator": self.calculator,
            "rows": self.rows,
            "shard_rows": self.shard_rows,
            "shards": self.shards,
            "columns": list(self.header),
        }
        if self.points is None:
            record["seed"] = self.seed
            record["sampler"] = SAMPLER
        else:
            record["points_source"] = self.points_source
            record["points_sha256"] = self.points_sha256
        record["fixed"] = dict(self.fixed)
        if self.points is None:
            record["ranges"] = {n: r.as_record() for n, r in self.ranges.items()}
        return record


def _check_count(option, value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UsageError(f"{option} {value!r}: expected {what}")
    if value <= 0:
        raise UsageError(f"{option} {value}: expected {what}")
    return int(value)


def _make_plan(distribution, rows, seed, ranges, fixed, points, shard_rows, calculator):
    if distribution not in DISTRIBUTIONS:
        raise UsageError(
            f"--distribution {distribution!r}: expected one of "
            f"{', '.join(DISTRIBUTIONS)}"
        )
    shard_rows = _check_count("--shard-rows", shard_rows, "a positive number of rows")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"--seed {seed!r}: expected a non-negative integer")

    if points is None:
        if rows is None:
            raise UsageError(
                "--rows: expected a positive number of rows (required unless "
                "--points is given)"
            )
        rows = _check_count("--rows", rows, "a positive number of rows")
        sampled, constant = resolve_inputs(distribution, ranges, fixed)
        samplings = {name: spec.sampling for name, spec in sampled.items()}
        return _Plan(
            distribution=distribution,
            rows=rows,
            shard_rows=shard_rows,
            seed=int(seed),
            ranges=sampled,
            fixed=constant,
            samplings=samplings,
            calculator=calculator,
        )

    if ranges:
        raise UsageError(
            "--range cannot be combined with --points (the table gives the inputs)"
        )
    # Validates names and values of the fixed parameters.
    _, constant = resolve_inputs(distribution, None, fixed)
    columns, source = _read_points(points, distribution, set(fixed or ()))
    available = len(columns["s"][1])
    if rows is None:
        rows = available
    rows = _check_count("--rows", rows, "a positive number of rows")
    if rows > available:
        raise UsageError(
            f"--rows {rows}: the --points table {source} has only {available} rows"
        )
    for name in columns:
        constant.pop(name, None)
    values = {name: array[:rows] for name, (_, array) in columns.items()}
    samplings = {name: sampling for name, (sampling, _) in columns.items()}
    digest = hashlib.sha256()
    for name, array in values.items():
        digest.update(f"{name}({samplings[name]})".encode())
        digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    return _Plan(
        distribution=distribution,
        rows=rows,
        shard_rows=shard_rows,
        seed=int(seed),
        ranges={},
        fixed=constant,
        samplings=samplings,
        calculator=calculator,
        points=values,
        points_source=source,
        points_sha256=digest.hexdigest(),
    )


def _read_points(path, distribution, fixed_names):
    """Input columns of a table (a file, or a directory of ``*.txt`` tables).

    Returns ``({name: (sampling, ndarray)}, source)`` with the columns in
    :func:`input_names` order; the files of a directory are read in name
    order, as the training-set loader reads them.
    """
    from ..samples import read_training_set

    path = Path(path)
    if not path.exists():
        raise UsageError(f"--points {path}: no such file or directory")
    points = read_training_set(path)
    known = input_names(distribution)
    ignored = [f"{n}({points.suffixes[n]})" for n in points.inputs if n not in known]
    if ignored:
        warnings.warn(
            f"--points {path}: input column(s) {', '.join(ignored)} are not "
            f"inputs of the {distribution} distribution; ignored",
            NeurosynchroWarning,
            stacklevel=4,
        )
    for name in points.inputs:
        if name in fixed_names:
            raise UsageError(
                f"--set {name} conflicts with column {name}"
                f"({points.suffixes[name]}) of --points {path}; drop one of them"
            )
    # Parameters fixed by default (gamma_min ...) come from the table if there.
    optional = set(PARAMETERS[distribution]) - set(DEFAULT_RANGES[distribution])
    for name in known:
        if name in points.inputs or name in fixed_names or name in optional:
            continue
        raise TableError(
            f"--points {path}: no column {name}(lin) or {name}(log); the "
            f"{distribution} distribution needs {name} (or --set it)"
        )
    columns = {
        name: (points.suffixes[name], points.table[name].to_numpy(dtype=float))
        for name in known
        if name in points.inputs
    }
    return columns, str(path.resolve())


# ---------------------------------------------------------------------------
# The output directory: record, shards, atomic writes


def _format_table(header, columns):
    # repr gives the shortest text that reads back to the same float64.
    lines = ["\t".join(header)]
    for row in zip(*(column.tolist() for column in columns), strict=True):
        lines.append("\t".join(repr(value) for value in row))
    return "\n".join(lines) + "\n"


def _write_shard(outdir, plan, result, inputs):
    columns = [inputs[name] for name in plan.samplings]
    columns.append(result.time_ms)
    columns.extend(result.results.T)
    atomic_write_text(
        outdir / shard_name(result.index), _format_table(plan.header, columns)
    )


def _record_text(record):
    import tomlkit

    heading = (
        "# How the shard-*.txt tables in this directory were made, written by\n"
        "# neurosynchro make-training-set. Running the same command again\n"
        "# resumes an interrupted set; other settings are refused.\n"
    )
    return heading + tomlkit.dumps(record)


def _show(value):
    return "absent" if value is None else repr(value)


def _differences(old, new):
    differences = []
    for key in _IDENTITY_KEYS:
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            for sub in sorted(set(before) | set(after)):
                if before.get(sub) != after.get(sub):
                    differences.append(
                        f"{key}.{sub}: {_show(before.get(sub))} in the record, "
                        f"{_show(after.get(sub))} now"
                    )
        else:
            differences.append(
                f"{key}: {_show(before)} in the record, {_show(after)} now"
            )
    return differences


def _prepare_outdir(outdir, plan, command):
    """Create or check OUTDIR and its record; discard stale temporary files."""
    import tomlkit

    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"OUTDIR {outdir}: exists and is not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    record_path = outdir / RECORD_NAME
    new = plan.record(command)
    if record_path.exists():
        try:
            old = tomlkit.parse(record_path.read_text(encoding="utf-8")).unwrap()
        except Exception as error:
            raise TableError(f"{record_path}: cannot parse ({error})") from None
        differences = _differences(old, new)
        if differences:
            raise UsageError(
                f"OUTDIR {outdir} holds a training set made with other settings ("
                + "; ".join(differences)
                + "); use a new OUTDIR, or the recorded settings to resume"
            )
        if old.get("neurosynchro_version") != new["neurosynchro_version"]:
            warnings.warn(
                f"{record_path}: made with neurosynchro "
                f"{old.get('neurosynchro_version')}, resumed with "
                f"{new['neurosynchro_version']}",
                NeurosynchroWarning,
                stacklevel=3,
            )
    else:
        tables = sorted(outdir.glob("*.txt"))
        if tables:
            raise UsageError(
                f"OUTDIR {outdir} already holds tables ({tables[0].name} ...) but "
                f"no {RECORD_NAME}; use a new or empty OUTDIR"
            )
        atomic_write_text(record_path, _record_text(new))
    # A temporary file (hidden, beside its target) is a shard or record that
    # was being written when a run was killed.
    for pattern in (".shard-*.tmp", f".{RECORD_NAME}.*.tmp"):
        for stale in outdir.glob(pattern):
            stale.unlink()


# ---------------------------------------------------------------------------
# Running the shards: in process, in local processes, on a Dask cluster


def _run_local(workers, tasks, finish):
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=start_worker
    )
    try:
        running = set()
        for task in tasks:
            running.add(executor.submit(compute_shard, task))
            if len(running) >= _IN_FLIGHT_PER_WORKER * workers:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    finish(future.result())
        for future in futures_completed(running):
            finish(future.result())
    except BrokenProcessPool as error:
        stop(executor)
        raise CalculationError(
            f"a worker process died ({error}); finished shards are kept, run the "
            "same command again to resume"
        ) from None
    except BaseException:
        # Interrupted, or a shard could not be saved: stop the other shards
        # now (a killed worker leaves no half-written file).
        stop(executor)
        raise
    executor.shutdown()


def _run_dask(address, tasks, finish):
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise UsageError(
            "--scheduler needs dask.distributed; install neurosynchro[cluster]"
        ) from None
    try:
        client = Client(address)
    except (OSError, TimeoutError, ValueError) as error:
        raise UsageError(
            f"--scheduler {address}: cannot connect ({_describe(error)})"
        ) from None
    try:
        queue = as_completed()
        in_flight = 0
        for task in tasks:
            queue.add(client.submit(compute_shard, task, pure=False))
            in_flight += 1
            threads = max(1, sum(client.nthreads().values()))
            if in_flight >= _IN_FLIGHT_PER_WORKER * threads:
                finish(next(queue).result())
                in_flight -= 1
        for future in queue:
            finish(future.result())
    finally:
        client.close()


@dataclass
class _Tally:
    shards: int = 0
    rows: int = 0
    failed: int = 0
    first_error: str | None = None


def make_training_set(
    outdir,
    distribution,
    rows=None,
    seed=0,
    workers=1,
    scheduler=None,
    ranges=None,
    fixed=None,
    points=None,
    compute=None,
    progress=True,
    shard_rows=SHARD_ROWS,
    command=None,
):
    """Compute a training set into a directory of shard tables.

    Parameters
    ----------
    outdir : str or Path
        Output directory, created if needed. An existing one must hold a set
        made with the same settings (this call then resumes it) or no tables.
    distribution : str
        ``"thermal"``, ``"powerlaw"`` or ``"kappa"``.
    rows : int, optional
        Number of rows. Required unless ``points`` is given; with ``points``,
        the first ``rows`` points (default: all).
    seed : int, default 0
        Non-negative seed; the same seed gives the same inputs, whatever the
        number of workers.
    workers : int, default 1
        Local worker processes; 1 computes in this process.
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); shards
        are then computed on its workers (which need neurosynchro installed)
        and ``workers`` is ignored.
    ranges : dict, optional
        ``name -> (lo, hi)`` or ``(lo, hi, "lin" | "log")`` or
        :class:`~neurosynchro.calc.sampling.Range`, overriding the default
        ranges (:data:`~neurosynchro.calc.sampling.DEFAULT_RANGES`) or
        sampling a parameter that is fixed by default.
    fixed : dict, optional
        ``name -> value`` fixing distribution parameters (such as
        ``{"gamma_max": 1e4}``); fixed parameters are not table columns.
    points : str or Path, optional
        A table, or a directory of tables, whose input columns (``(lin)`` and
        ``(log)`` suffixes) give the points to compute, in row order, instead
        of sampling. Columns for ``s``, ``theta`` and every parameter sampled
        by default (unless fixed) must be there.
    compute : callable, optional
        ``compute(distribution, s, theta, **params) -> ndarray (rows, 8)``,
        results at nu = 1 Hz and n_e = 1 cm^-3 in :data:`RESULTS` order, NaN
        rows for failures; every argument an array of shape ``(rows,)``. Must
        be picklable (a module-level function) for workers. Default:
        :func:`neurosynchro.calc.compute_coefficients`.
    progress : bool, default True
        Show a progress bar (tqdm, on stderr, only when it is a terminal).
    shard_rows : int, default 200
        Rows per shard file and per unit of work.
    command : str, optional
        Command line to keep in the record (default: this process's).

    Returns
    -------
    dict
        ``outdir``, ``distribution``, ``rows`` and ``shards`` (of the whole
        set), ``rows_existing`` (already present before this call),
        ``rows_computed`` and ``shards_computed`` (by this call),
        ``rows_failed`` (computed rows with a NaN result), ``first_error``
        (message of the first exception, or None), ``seconds`` (wall time)
        and ``complete`` (every shard present).

    Raises
    ------
    UsageError
        Bad arguments, or an ``outdir`` holding a different set.
    TableError
        A ``points`` table that cannot be read or lacks a needed column.
    CalculationError
        No compute function available, or a worker process died.
    KeyboardInterrupt
        Passed on; the finished shards are on disk and a new call resumes.

    Notes
    -----
    Shards are computed in any order but each is written whole, atomically,
    as ``shard-NNNNNN.txt``; ``generation.toml`` describes the set. Two runs
    writing into the same directory at the same time are not supported.
    """
    start = time.perf_counter()
    outdir = Path(outdir)
    if points is not None and Path(points).resolve() == outdir.resolve():
        raise UsageError(f"--points {points}: must not be OUTDIR itself")
    calculator = DEFAULT_CALCULATOR if compute is None else _function_name(compute)
    plan = _make_plan(
        distribution, rows, seed, ranges, fixed, points, shard_rows, calculator
    )
    if compute is None:
        compute = _default_compute()
    if scheduler is None:
        workers = _check_count("--workers", workers, "a positive number of processes")
    if scheduler is None and workers > 1:
        # Worker processes receive the function by reference (its module and
        # name); say so now rather than fail on the first shard.
        try:
            pickle.dumps(compute)
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            raise UsageError(
                f"compute {calculator}: local worker processes need a "
                f"module-level function ({_describe(error)})"
            ) from None
    _prepare_outdir(outdir, plan, command if command is not None else _command_line())

    pending = [k for k in range(plan.shards) if not (outdir / shard_name(k)).exists()]
    existing = plan.rows - sum(plan.shard_size(k) for k in pending)
    tally = _Tally()
    summary = {
        "outdir": str(outdir),
        "distribution": plan.distribution,
        "rows": plan.rows,
        "shards": plan.shards,
        "rows_existing": existing,
    }
    if not pending:
        logger.debug("%s already holds all %d rows", outdir, plan.rows)
    elif scheduler is None and len(pending) < workers:
        logger.info(
            "%d shards for %d workers: some stay idle (use a smaller --shard-rows)",
            len(pending),
            workers,
        )

    from tqdm import tqdm

    bar = tqdm(
        total=plan.rows,
        initial=existing,
        unit="row",
        file=sys.stderr,
        disable=True if not progress or not pending else None,
        dynamic_ncols=True,
    )
    inputs_of = {}

    def tasks():
        for index in pending:
            inputs = plan.shard_inputs(index)
            inputs_of[index] = inputs
            yield ShardTask(index, plan.distribution, inputs, plan.fixed, compute)

    def finish(result):
        _write_shard(outdir, plan, result, inputs_of.pop(result.index))
        failed = int(np.isnan(result.results).any(axis=1).sum())
        if result.exceptions and tally.first_error is None:
            logger.warning(
                "shard %d: %d of %d rows raised (first: %s); written as NaN",
                result.index,
                result.exceptions,
                len(result.time_ms),
                result.first_error,
            )
        tally.first_error = tally.first_error or result.first_error
        tally.shards += 1
        tally.rows += len(result.time_ms)
        tally.failed += failed
        bar.update(len(result.time_ms))

    try:
        if scheduler is not None:
            _run_dask(scheduler, tasks(), finish)
        elif workers == 1:
            for task in tasks():
                finish(compute_shard(task))
        else:
            _run_local(workers, tasks(), finish)
    finally:
        bar.close()

    summary.update(
        rows_computed=tally.rows,
        shards_computed=tally.shards,
        rows_failed=tally.failed,
        first_error=tally.first_error,
        seconds=time.perf_counter() - start,
        complete=all((outdir / shard_name(k)).exists() for k in range(plan.shards)),
    )
    return summary


def report(summary):
    """One line describing a :func:`make_training_set` summary, for stderr."""
    outdir = summary["outdir"]
    if summary["rows_computed"] == 0 and summary["complete"]:
        return (
            f"{outdir}: already complete ({summary['rows']} rows in "
            f"{summary['shards']} shards); nothing to compute"
        )
    done = summary["rows_existing"] + summary["rows_computed"]
    line = (
        f"{outdir}: computed {summary['rows_computed']} rows "
        f"({summary['rows_failed']} failed: NaN results) in "
        f"{summary['seconds']:.1f} s; {done} of {summary['rows']} rows present"
    )
    if summary["first_error"]:
        line += f"; first error: {summary['first_error']}"
    return line


# ---------------------------------------------------------------------------
# Command line

DESCRIPTION = """\
Compute a training set of the eight polarized synchrotron coefficients with
the detailed calculator, at points sampled in the given ranges (or read from
a table), into OUTDIR as shard tables.
"""

EPILOG = f"""\
default sampled ranges (s = nu/nu_cyc, theta in radians):
{describe_defaults()}

--range NAME=LO:HI[:lin|log] changes a range, or samples a parameter that is
fixed by default (e.g. --range gamma_min=1:100:log); --set NAME=VALUE fixes a
parameter (e.g. --set gamma_max=1e4; inf is accepted). Fixed parameters are
not table columns; OUTDIR/{RECORD_NAME} records them with the ranges, the
seed and the command line.

Each shard of --shard-rows rows is written whole as shard-NNNNNN.txt. The rows
depend only on the seed and the ranges, not on --workers; an interrupted run
is resumed by running the same command again. Failed points get NaN results
and are counted.
"""


def add_arguments(parser):
    """Add the ``make-training-set`` options to an argparse parser.

    Also sets the parser's description (if it has none), epilog (the default
    ranges) and a formatter that keeps the epilog's line breaks.
    """
    if parser.description is None:
        parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "outdir", metavar="OUTDIR", help="directory for the shard tables"
    )
    parser.add_argument(
        "--distribution",
        required=True,
        choices=DISTRIBUTIONS,
        help="electron energy distribution",
    )
    parser.add_argument(
        "--rows",
        type=int,
        metavar="N",
        help="number of rows (required unless --points; with it, the first N)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="random seed (default 0)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local worker processes (default: all cores)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="compute on a Dask distributed cluster at ADDRESS instead",
    )
    parser.add_argument(
        "--range",
        action="append",
        default=[],
        dest="ranges",
        metavar="NAME=LO:HI",
        help="sampling range, optionally with :lin or :log (repeatable)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="settings",
        metavar="NAME=VALUE",
        help="fix a distribution parameter (repeatable)",
    )
    parser.add_argument(
        "--points",
        metavar="TABLE",
        help="compute at the input columns of this table (file or directory)",
    )
    parser.add_argument(
        "--shard-rows",
        type=int,
        default=SHARD_ROWS,
        metavar="K",
        help=f"rows per shard file (default {SHARD_ROWS})",
    )


def _collect(option, texts, parse, distribution):
    values = {}
    for text in texts:
        name, value = parse(text, distribution)
        if name in values:
            raise UsageError(f"{option} {text}: {name} is given more than once")
        values[name] = value
    return values


def run(args):
    """Run ``make-training-set`` from parsed arguments; return the exit status.

    Writes the progress bar and a one-line report to stderr. Package errors
    propagate (the command line turns them into one line); an interruption
    returns 130 after saying how to resume.
    """
    ranges = _collect("--range", args.ranges, parse_range, args.distribution)
    fixed = _collect("--set", args.settings, parse_setting, args.distribution)
    workers = args.workers
    if args.scheduler is not None and workers is not None:
        raise UsageError("--workers and --scheduler: give one or the other")
    if workers is None:
        workers = os.cpu_count() or 1
    try:
        summary = make_training_set(
            args.outdir,
            args.distribution,
            args.rows,
            seed=args.seed,
            workers=workers,
            scheduler=args.scheduler,
            ranges=ranges,
            fixed=fixed,
            points=args.points,
            shard_rows=args.shard_rows,
        )
    except (KeyboardInterrupt, Terminated) as error:
        how = "terminated" if isinstance(error, Terminated) else "interrupted"
        sys.stderr.write(
            f"{args.outdir}: {how}; finished shards are kept, run the same "
            "command again to resume\n"
        )
        return 143 if isinstance(error, Terminated) else 130
    sys.stderr.write(report(summary) + "\n")
    return 0
