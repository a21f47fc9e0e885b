"""Speed and accuracy of the built-in calculator against symphony's tables.

For each distribution (thermal, power law, kappa) a seeded sample of rows of
``shared/data/symphony/{name}.txt`` is recomputed with
:func:`neurosynchro.calc.emission.emission_absorption` (the six emission and
absorption coefficients, as the tables hold; building the distribution is
included in the time). It prints:

- our mean ms/row and symphony's mean ms/row from the table's
  ``time_ms(meta)`` column (measured on a machine like this one), and their
  ratio; also the median and minimum of the per-row ratios;
- per coefficient, the median, 95th percentile and maximum relative
  difference from symphony, in the default ``harmonic_sum="exact"`` scheme
  and in ``harmonic_sum="symphony"`` (which starts the integral over harmonic
  number where symphony does, one harmonic later; see
  :mod:`neurosynchro.calc.emission`);

and the thread settings it ran under. The numba functions are compiled (or
loaded from numba's cache) before timing. With the defaults it takes about a
minute.

Usage::

    python benchmarks/bench_calc.py [--rows 60] [--seed 1] [--all]
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from neurosynchro.calc import PARAMETERS
from neurosynchro.calc.distributions import make_distribution
from neurosynchro.calc.emission import emission_absorption

TABLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "symphony"
COLUMNS = ["j_I", "alpha_I", "j_Q", "alpha_Q", "j_V", "alpha_V"]


def thread_settings():
    """The environment and library thread settings, as one line of text."""
    names = [
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMBA_NUM_THREADS",
    ]
    parts = [f"{n}={os.environ.get(n, '(unset)')}" for n in names]
    try:
        import numba

        parts.append(f"numba {numba.__version__} threads={numba.get_num_threads()}")
    except ImportError:
        parts.append("numba missing")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            parts.append(
                f"{pool.get('internal_api')}({pool.get('user_api')})"
                f" threads={pool.get('num_threads')}"
            )
    except ImportError:
        parts.append("threadpoolctl missing")
    parts.append(f"cpus={os.cpu_count()}")
    return "; ".join(parts)


def read_table(name):
    table = pd.read_csv(TABLES / f"{name}.txt", sep="\t")
    table.columns = [column.split("(")[0] for column in table.columns]
    return table[table["s"] >= 10].reset_index(drop=True)


def sample_rows(table, n_rows, seed):
    """One random row from each of ``n_rows`` bins of s: covers the range."""
    if n_rows >= len(table):
        return np.arange(len(table))
    rng = np.random.default_rng(seed)
    order = np.argsort(table["s"].to_numpy())
    return np.array([rng.choice(chunk) for chunk in np.array_split(order, n_rows)])


def compute(name, rows, harmonic_sum):
    """Coefficients and per-row seconds for ``rows`` of a table."""
    names = [k for k in PARAMETERS[name] if k in rows]
    values = np.empty((len(rows), 6))
    seconds = np.empty(len(rows))
    for i, row in enumerate(rows.itertuples(index=False)):
        start = time.perf_counter()
        dist = make_distribution(name, **{k: getattr(row, k) for k in names})
        values[i] = emission_absorption(
            dist, [row.s], [row.theta], harmonic_sum=harmonic_sum
        )[0]
        seconds[i] = time.perf_counter() - start
    return values, seconds


def differences(values, reference):
    with np.errstate(invalid="ignore"):
        return np.abs(values / reference - 1.0)


def report_accuracy(label, difference):
    print(f"  {label}")
    print("    " + "".join(f"{c:>10s}" for c in ["", *COLUMNS]))
    for stat, function in [
        ("median", np.nanmedian),
        ("p95", lambda a, axis: np.nanpercentile(a, 95, axis=axis)),
        ("max", np.nanmax),
    ]:
        cells = function(difference, axis=0)
        print("    " + f"{stat:>10s}" + "".join(f"{v:10.2e}" for v in cells))
    over = np.nanmax(difference, axis=1) > 0.01
    print(f"    rows with a coefficient off by more than 1%: {over.sum()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60, help="rows per table")
    parser.add_argument("--seed", type=int, default=1, help="sampling seed")
    parser.add_argument(
        "--all", action="store_true", help="every row with s >= 10 (minutes)"
    )
    args = parser.parse_args(argv)
    if not TABLES.exists():
        print(f"symphony tables not found in {TABLES}", file=sys.stderr)
        return 1

    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"threads: {thread_settings()}")
    # Compile (or load from numba's cache) before timing.
    start = time.perf_counter()
    emission_absorption(make_distribution("thermal", theta_e=10.0), [1e3], [1.0])
    print(
        f"first call (numba compile or cache load): {time.perf_counter() - start:.2f} s"
    )

    for name in ("thermal", "powerlaw", "kappa"):
        table = read_table(name)
        chosen = (
            np.arange(len(table))
            if args.all
            else sample_rows(table, args.rows, args.seed)
        )
        rows = table.iloc[chosen]
        reference = rows[COLUMNS].to_numpy()
        ours, seconds = compute(name, rows, "exact")
        symphony_mode, _ = compute(name, rows, "symphony")
        theirs = rows["time_ms"].to_numpy()
        ours_ms = 1e3 * seconds
        print(f"\n{name}: {len(rows)} of {len(table)} rows with s >= 10")
        print(
            f"  ms/row: ours {ours_ms.mean():.2f} (median {np.median(ours_ms):.2f}, "
            f"max {ours_ms.max():.1f}); symphony {theirs.mean():.0f} "
            f"(median {np.median(theirs):.0f})"
        )
        ratios = theirs / ours_ms
        print(
            f"  speed-up: {theirs.mean() / ours_ms.mean():.0f}x on the means; "
            f"per row median {np.median(ratios):.0f}x, min {ratios.min():.0f}x; "
            f"rows under 100x: {np.sum(ratios < 100)} of {len(rows)}"
        )
        report_accuracy(
            'difference from symphony, harmonic_sum="exact"',
            differences(ours, reference),
        )
        report_accuracy(
            'difference from symphony, harmonic_sum="symphony"',
            differences(symphony_mode, reference),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
