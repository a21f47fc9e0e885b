"""Compare targets for the rho_Q network, outside the train command.

The measurement behind the default ``rho_Q`` entry (docs/accuracy.rst):
one network with the generic trainer's settings, on a raw training set,
learning either ``log |rho_Q|`` (with the exact sign, so only the
magnitude's error counts) or ``asinh(rho_Q / (eps exp(q)))`` with ``q`` a
quadratic in the standardized inputs fitted to ``ln |rho_Q|``.

Usage::

    neurosynchro make-training-set kraw --distribution kappa --rows 100000 --seed 1
    neurosynchro make-training-set kheld --distribution kappa --rows 5000 --seed 2
    python tools/rho_q_target_sweep.py kraw kheld log
    python tools/rho_q_target_sweep.py kraw kheld logclip
    python tools/rho_q_target_sweep.py kraw kheld asinh 3

Each run prints one JSON line: held-out median, p95, p99 relative error
of rho_Q (rows with s >= 5), the same away from the zero crossing
(``|rho_Q| > 0.01 |rho_V|``), and the fraction of rows with the wrong sign.
Each takes about 5 minutes on one core.
"""

import argparse
import json
import time

import numpy as np

from neurosynchro import training
from neurosynchro.mappings import quadratic_features
from neurosynchro.samples import read_training_set


def load(folder, inputs):
    t = read_training_set(folder).table
    t = t[t["s"] >= 5]
    x = np.stack([np.log(t[n]) if log else t[n] for n, log in inputs], axis=1)
    return x, t["rho_Q"].to_numpy(), t["rho_V"].to_numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("training")
    parser.add_argument("held_out")
    parser.add_argument("target", choices=("log", "logclip", "asinh"))
    parser.add_argument("eps", type=float, nargs="?", default=1.0)
    args = parser.parse_args()

    suffixes = read_training_set(args.training).suffixes
    inputs = [
        (n, suffixes[n] == "log") for n in read_training_set(args.training).inputs
    ]
    x_fit, rho_fit, _ = load(args.training, inputs)
    x_test, rho_test, rho_v_test = load(args.held_out, inputs)
    mean, std = x_fit.mean(0), x_fit.std(0)
    n_fit, n_test = (x_fit - mean) / std, (x_test - mean) / std
    log_rho = np.log(np.abs(rho_fit))
    coefficients = np.linalg.lstsq(quadratic_features(n_fit), log_rho, rcond=None)[0]
    scale_fit = args.eps * np.exp(quadratic_features(n_fit) @ coefficients)
    scale_test = args.eps * np.exp(quadratic_features(n_test) @ coefficients)
    target = log_rho if args.target != "asinh" else np.arcsinh(rho_fit / scale_fit)
    y_mean, y_std = target.mean(), target.std()
    y = (target - y_mean) / y_std

    settings = training.TRAINERS["generic"]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    n_val = int(settings.validation_fraction * len(y))
    val, fit = order[:n_val], order[n_val:]
    import keras

    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    model = training._build(settings, n_fit.shape[1])
    training._fit(model, n_fit[fit], y[fit], n_fit[val], y[val], settings, None)
    if args.target == "logclip":  # the train command's sigma clipping
        residual = training.to_network(model, "r")(n_fit[fit]) - y[fit]
        wild = np.abs(residual - residual.mean()) > settings.clip_sigma * residual.std()
        fit = fit[~wild]
        training._fit(model, n_fit[fit], y[fit], n_fit[val], y[val], settings, None)
    network = training.to_network(model, "rho_Q")
    subset = rng.choice(fit, min(settings.refine_rows, len(fit)), replace=False)
    network, _ = training.refine(
        network,
        n_fit[subset],
        y[subset],
        n_fit[val],
        y[val],
        settings.refine_iterations,
    )
    predicted = network(n_test) * y_std + y_mean
    if args.target == "asinh":
        rho = np.sinh(predicted) * scale_test
    else:
        rho = np.sign(rho_test) * np.exp(predicted)
    relative = np.abs(rho / rho_test - 1)
    away = np.abs(rho_test) > 0.01 * np.abs(rho_v_test)
    figures = {
        "target": args.target,
        "eps": args.eps if args.target == "asinh" else None,
        "seconds": round(time.perf_counter() - start, 1),
        "median": np.median(relative),
        "p95": np.percentile(relative, 95),
        "p99": np.percentile(relative, 99),
        "away_fraction": away.mean(),
        "away_median": np.median(relative[away]),
        "away_p99": np.percentile(relative[away], 99),
        "sign_wrong": np.mean(np.sign(rho) != np.sign(rho_test)),
    }
    print(
        json.dumps(
            {k: round(v, 6) if isinstance(v, float) else v for k, v in figures.items()}
        )
    )


if __name__ == "__main__":
    main()
