"""Large training sets: memory and time to load, transform and train on them.

The predecessor's example training set had 22 million rows. This script
writes a stand-in training set of ``--rows`` rows (default 1e7, about 1.6 GB
of text in ``--shards`` files), with coefficients from the published thermal
fitting formulas (:func:`neurosynchro.fits.fit_coefficients`) at random
``s``, ``theta`` and ``theta_e``: smooth values in the table format, since
only memory and time are measured here. Then, in one process, it runs the
steps of the flow on it and prints, for each, the wall time, the time per
million rows and the peak resident memory so far:

1. ``read_training_set`` of the raw set (pandas C engine, every check on);
2. ``transform.to_internal``, then writing the transformed table;
3. reading the transformed table back and ``lock_domain_range``;
4. ``train_result`` for one result (``j_I``) with ``--epochs`` epochs of
   batch ``--batch-size`` (two hidden layers of 64 tanh units), reported per
   epoch.

The files go to a temporary directory (``--workdir`` to choose it), removed
at the end unless ``--keep``. With the defaults it needs about 4 GB of disk
and takes 10 to 15 minutes on two cores.

Usage::

    python benchmarks/bench_large.py [--rows 10000000] [--epochs 2]
"""

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tomlkit

from neurosynchro.config import init_nndir, lock_domain_range
from neurosynchro.fits import fit_coefficients
from neurosynchro.physics import cyclotron_frequency
from neurosynchro.samples import read_training_set, write_table
from neurosynchro.training import train_result
from neurosynchro.transform import to_internal

RESULTS = ("j_I", "alpha_I", "j_Q", "alpha_Q", "j_V", "alpha_V", "rho_Q", "rho_V")


def peak_gib():
    """Peak resident memory of this process so far, GiB (Linux: ru_maxrss kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def stand_in_rows(rng, rows):
    """Inputs and fitted coefficients at nu = 1 Hz, n_e = 1 (table units)."""
    s = 10 ** rng.uniform(1, 5, rows)
    theta = rng.uniform(0.1, 1.5, rows)
    theta_e = 10 ** rng.uniform(0, 2, rows)
    # At nu = 1 Hz the field that gives harmonic number s.
    B = 1.0 / (s * cyclotron_frequency(1.0))
    coefficients = fit_coefficients("thermal", 1.0, B, 1.0, theta, theta_e=theta_e)
    frame = pd.DataFrame({"s": s, "theta": theta, "theta_e": theta_e})
    for k, name in enumerate(RESULTS):
        frame[name] = coefficients[:, k]
    return frame


def write_stand_in(folder, rows, shards, seed):
    folder.mkdir(parents=True)
    suffixes = {"s": "log", "theta": "lin", "theta_e": "log"}
    suffixes.update({name: "res" for name in RESULTS})
    rng = np.random.default_rng(seed)
    per_shard = -(-rows // shards)
    written = 0
    for shard in range(shards):
        n = min(per_shard, rows - written)
        if n <= 0:
            break
        write_table(folder / f"shard-{shard:03d}.txt", stand_in_rows(rng, n), suffixes)
        written += n
    return sum(p.stat().st_size for p in folder.iterdir())


def report(step, seconds, rows):
    print(
        f"{step:<42} {seconds:8.1f} s  {seconds / rows * 1e6:7.2f} s per 1e6 rows  "
        f"peak memory {peak_gib():5.2f} GiB",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-large-", dir=args.workdir))
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas "
        f"{pd.__version__}; {os.cpu_count()} cores; OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}, OPENBLAS_CORETYPE="
        f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; work in {work}",
        flush=True,
    )
    try:
        start = time.perf_counter()
        size = write_stand_in(work / "raw", args.rows, args.shards, args.seed)
        print(f"stand-in set: {args.rows} rows, {size / 1e9:.2f} GB of text")
        report(
            "write the stand-in set (not the flow)",
            time.perf_counter() - start,
            args.rows,
        )

        start = time.perf_counter()
        raw = read_training_set(work / "raw")
        report("read_training_set (raw)", time.perf_counter() - start, args.rows)

        start = time.perf_counter()
        table, suffixes, transform_report = to_internal(raw)
        del raw
        write_table(work / "transformed.txt", table, suffixes)
        kept = len(table)
        del table
        report("transform and write", time.perf_counter() - start, args.rows)
        print(f"  rows kept by transform: {kept}")

        start = time.perf_counter()
        transformed = read_training_set(work / "transformed.txt")
        nndir = work / "nn"
        init_nndir(nndir)
        path = nndir / "nn_config.toml"
        document = tomlkit.parse(path.read_text())
        document["training"] = {
            "hidden_units": [64, 64],
            "activation": "tanh",
            "epochs": args.epochs,
            "patience": args.epochs,
            "batch_size": args.batch_size,
            "clip_sigma": 0.0,
        }
        path.write_text(tomlkit.dumps(document))
        config = lock_domain_range(transformed, nndir)
        report("read transformed, lock-domain-range", time.perf_counter() - start, kept)

        start = time.perf_counter()
        result = train_result(config, transformed, "j_I", nndir)
        seconds = time.perf_counter() - start
        report(f"train j_I, {result.epochs} epochs, with set-up", seconds, kept)
        # result.seconds leaves out importing TensorFlow and preparing arrays.
        report("train j_I, per epoch", result.seconds / result.epochs, kept)
        print(f"  {result.line()}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
