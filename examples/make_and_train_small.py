"""The whole command-line flow on a tiny training set, in about a minute.

Runs, in WORKDIR (created if needed):

1. ``neurosynchro make-training-set`` twice: a training set and a held-out
   set of thermal rows from the built-in calculator, on a compact domain;
2. ``neurosynchro transform``, ``init-nndir`` and ``lock-domain-range``,
   with a ``[training]`` table added to ``nn_config.toml`` that makes the
   networks small and the training short;
3. ``neurosynchro train``, then ``neurosynchro validate`` on the held-out
   rows, beside the published fitting formulas.

The networks it trains are far too rough for science (a few hundred rows,
a few epochs); the tutorial in docs/tutorial.rst says what to change. It
needs the training extra (``pip install "neurosynchro[train]"``).

Usage::

    python examples/make_and_train_small.py WORKDIR [--rows 200] [--epochs 10]
"""

import argparse
import subprocess
import sys
from pathlib import Path

# A compact thermal domain: dense enough for a small set to teach something.
RANGES = ["--range", "s=10:1e4", "--range", "theta_e=3:50"]


def neurosynchro(*args, cwd):
    """Run one ``neurosynchro`` command; stop the script if it fails."""
    command = [sys.executable, "-m", "neurosynchro.cli", *map(str, args)]
    print("$ neurosynchro " + " ".join(map(str, args)), flush=True)
    done = subprocess.run(command, cwd=cwd)
    if done.returncode:
        sys.exit(f"neurosynchro {args[0]} failed with status {done.returncode}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, help="where everything is written")
    parser.add_argument("--rows", type=int, default=200, help="training rows")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per pass")
    args = parser.parse_args(argv)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)

    for name, rows, seed in (("raw", args.rows, 0), ("held-out", 100, 1)):
        neurosynchro(
            "make-training-set",
            name,
            "--distribution",
            "thermal",
            "--rows",
            rows,
            "--seed",
            seed,
            *RANGES,
            cwd=work,
        )
    neurosynchro("transform", "raw", "-o", "transformed.txt", cwd=work)
    if not (work / "nn" / "nn_config.toml").exists():
        neurosynchro("init-nndir", "nn", cwd=work)
        # Trainer settings for all results (see docs/formats.rst).
        with open(work / "nn" / "nn_config.toml", "a") as config:
            config.write(
                f"\n[training]\nepochs = {args.epochs}\nhidden_units = [16, 16]\n"
                "batch_size = 32\nclip_sigma = 0\n"
            )
    neurosynchro("lock-domain-range", "transformed.txt", "nn", cwd=work)
    neurosynchro("train", "transformed.txt", "nn", cwd=work)
    neurosynchro("validate", "nn", "held-out", "--fits", cwd=work)
    print(f"trained networks: {work / 'nn'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
