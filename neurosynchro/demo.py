"""``neurosynchro demo``: the whole flow on a built-in default, in minutes.

It computes a small thermal training set and a held-out set with the
built-in calculator, transforms, locks and trains networks on it, validates
them on the held-out rows, then evaluates a pretrained network for a
realistic plasma against the calculator, and prints accuracy and speed.
Everything it writes goes into one directory (default: a new temporary one).
"""

import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from .errors import NeurosynchroWarning, UsageError

logger = logging.getLogger(__name__)

#: Sizes and settings of the demo: small enough for a few minutes on two
#: cores, large enough that the networks beat chance by far.
DEMO_ROWS = 1600
DEMO_HELD_OUT_ROWS = 300
DEMO_TRAINING = {
    # One pass, no sigma-clipping refit: calculator rows have no wild values.
    "clip_sigma": 0.0,
    "epochs": 120,
    "patience": 20,
    "hidden_units": [32, 32],
    "activation": "tanh",
    "batch_size": 128,
    "learning_rate": 0.01,
}
# A compact thermal domain keeps the demo's small set dense enough to learn.
DEMO_RANGES = {"s": (10.0, 1e4, "log"), "theta_e": (3.0, 50.0, "log")}

#: A realistic plasma for the pretrained comparison: Sgr A*-like conditions
#: at 230 GHz (B in Gauss, n_e in cm^-3, theta_e = kT / m_e c^2).
PLASMA = {"nu": 230e9, "B": 30.0, "n_e": 1e6, "theta_e": 10.0}


def add_arguments(parser):
    parser.add_argument(
        "directory",
        nargs="?",
        help="where to write everything (default: a new temporary directory)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes for the calculator (default: all cores)",
    )


def _say(text=""):
    print(text, flush=True)


def run(args):
    from . import calc
    from .calc.generate import make_training_set
    from .config import init_nndir, lock_domain_range
    from .samples import read_training_set, write_table
    from .training import default_jobs, train_results
    from .transform import to_internal
    from .validate import format_table, validate

    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected a positive integer")
    if args.directory:
        from .fileio import make_directory

        work = make_directory(args.directory, "DIRECTORY")
    else:
        work = Path(tempfile.mkdtemp(prefix="neurosynchro-demo-"))
    _say(f"neurosynchro demo: writing into {work}")
    start = time.perf_counter()

    _say(
        f"\n1. {DEMO_ROWS} + {DEMO_HELD_OUT_ROWS} thermal rows from the built-in "
        "calculator"
    )
    for name, rows, seed in (
        ("training", DEMO_ROWS, 1),
        ("held-out", DEMO_HELD_OUT_ROWS, 2),
    ):
        summary = make_training_set(
            work / name,
            "thermal",
            rows=rows,
            seed=seed,
            workers=args.workers,
            ranges=DEMO_RANGES,
            progress=sys.stderr.isatty(),
        )
        _say(
            f"   {name}: {summary['rows']} rows, {summary['rows_failed']} failed, "
            f"{summary['seconds']:.0f} s"
        )

    _say("\n2. transform, init-nndir, lock-domain-range")
    table, suffixes, report = to_internal(read_training_set(work / "training"))
    write_table(work / "transformed.txt", table, suffixes)
    _say(f"   {report.rows_out} of {report.rows_in} rows kept")
    nndir = work / "nn"
    if not (nndir / "nn_config.toml").exists():
        init_nndir(nndir)
        config_path = nndir / "nn_config.toml"
        extra = "\n[training]\n" + "".join(
            f"{key} = {value!r}\n" for key, value in DEMO_TRAINING.items()
        )
        config_path.write_text(config_path.read_text() + extra)
    transformed = read_training_set(work / "transformed.txt")
    config = lock_domain_range(transformed, nndir)

    names = [spec.name for spec in config.results]
    jobs = default_jobs(len(names))
    _say(f"\n3. train one network per internal result, {jobs} at a time")
    for result in train_results(config, transformed, names, nndir, jobs=jobs):
        _say(f"   {result.line()}")

    _say("\n4. validate on the held-out rows (relative errors, physical units)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        figures = validate(nndir, work / "held-out", fits=True, distribution="thermal")
    _say(format_table(figures))

    _say("\n5. a pretrained network for a realistic plasma, against the calculator")
    _compare_pretrained(calc)
    _say(f"\ndone in {time.perf_counter() - start:.0f} s; everything is in {work}")
    return 0


def _compare_pretrained(calc):
    from .physics import cyclotron_frequency, to_physical
    from .pretrained import load_pretrained

    try:
        approx = load_pretrained("thermal")
    except Exception as error:  # noqa: BLE001 - the demo goes on without it
        _say(f"   (no pretrained thermal network available: {error})")
        return
    theta = np.linspace(0.2, 1.5, 40)
    nu, B, n_e, theta_e = PLASMA["nu"], PLASMA["B"], PLASMA["n_e"], PLASMA["theta_e"]
    s = nu / cyclotron_frequency(B)

    # Warm up (numba's cached kernels load on the first call), then time.
    calc.compute_coefficients("thermal", s, theta[:1], theta_e=theta_e)
    began = time.perf_counter()
    exact = calc.compute_coefficients(
        "thermal", np.full_like(theta, s), theta, theta_e=np.full_like(theta, theta_e)
    )
    calc_seconds = (time.perf_counter() - began) / theta.size
    exact = to_physical(exact, nu, n_e)

    many = np.linspace(0.2, 1.5, 100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        # Warm up too: the first large call loads (on the very first run,
        # compiles) the inference kernel.
        approx.compute_all_nontrivial(nu, B, n_e, many[:2000], theta_e=theta_e)
        began = time.perf_counter()
        approx.compute_all_nontrivial(nu, B, n_e, many, theta_e=theta_e)
        net_seconds = (time.perf_counter() - began) / many.size
        coeffs, _ = approx.compute_all_nontrivial(nu, B, n_e, theta, theta_e=theta_e)

    _say(
        f"   nu = {nu:.3g} Hz, B = {B} G, n_e = {n_e:.3g} cm^-3, theta_e = "
        f"{theta_e}, theta from 0.2 to 1.5 rad (s = {s:.3g})"
    )
    _say("   coefficient  median error  max error")
    names = ("j_I", "alpha_I", "j_Q", "alpha_Q", "j_V", "alpha_V", "rho_Q", "rho_V")
    for i, name in enumerate(names):
        good = np.isfinite(exact[:, i]) & (exact[:, i] != 0)
        error = np.abs(coeffs[good, i] / exact[good, i] - 1)
        if error.size:
            _say(f"   {name:<11}  {np.median(error):12.3%}  {error.max():9.3%}")
    _say(
        f"   speed: calculator {1 / calc_seconds:.3g} points/s, network "
        f"{1 / net_seconds:.3g} points/s ({calc_seconds / net_seconds:.3g} times "
        "faster)"
    )
