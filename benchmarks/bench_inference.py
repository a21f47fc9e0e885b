"""Inference speed: neurosynchro's fused engine against the alternatives.

One run measures, on the same networks and the same rows, rows per second for
batches of 1, 1e3, 1e5 and 1e6 rows of:

- ``PhysicalApproximator.compute_all_nontrivial`` in float64 and float32 (the
  whole path: physical inputs -> eight coefficients), and the fused engine
  alone (normalized inputs -> normalized outputs), as it runs by
  default (the compiled kernel from 4096 rows on) and on numpy only
  (``compiled=False``);
- a plain layer-by-layer numpy pass, one network after the other
  (``Network.__call__``, in chunks of 65536 rows as the approximator did
  before the engine; up to 1e5 rows, as 1e6 would take about a minute):
  the baseline;
- Keras ``predict`` on the ``.keras`` files, one call per network as the
  predecessor package did (``batch_size`` = the batch, at most 65536: with
  Keras' default of 32 it is about ten times slower at 1e5 rows), up to
  1e5 rows;
- the fastest TensorFlow path found: one ``tf.function`` over all the
  networks, either calling the Keras models or evaluating stacked
  weights like the engine (both are tried at 1e5 rows and the faster is
  kept; XLA compilation was slower than either, so it is not tried);
- the published thermal fitting formulas (``neurosynchro.fits.thermal``);
- the built-in detailed calculator (``neurosynchro.calc``), one row only;

and the time to load a network directory and make a first one-row call, in
a fresh interpreter, counted from before ``import neurosynchro``.

Two architectures are measured: nine networks of one hidden layer of 300 relu
units (the issue's reference case: the results of a config that learns
``|rho_Q|`` and its sign apart), and the default config and trainers of
``neurosynchro.training.TRAINERS`` (eight networks of two hidden layers of 64
tanh units). Weights are random; each network directory is
real: a locked ``nn_config.toml`` from a synthetic transformed table, and
both ``NAME.npz`` and a matching ``NAME.keras`` per result.

Usage::

    python benchmarks/bench_inference.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_inference.py

Each cell is the best of as many repeats as fit in ``--cell-seconds``; a
cell whose single call would take longer than ``--max-call-seconds`` (from
the rate at the previous size) is skipped and shown as ``-``. Run it on a
quiet machine: on a shared one, repeat runs and keep the best figures.
TensorFlow and Keras are imported only after every numpy measurement, so
their thread pools cannot disturb them.
"""

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import neurosynchro
import neurosynchro.fits
from neurosynchro import PhysicalApproximator
from neurosynchro.config import init_nndir, lock_domain_range
from neurosynchro.engine import FusedNetworks
from neurosynchro.network import Network
from neurosynchro.physics import cyclotron_frequency
from neurosynchro.samples import TrainingSet, read_training_set, write_table
from neurosynchro.training import TRAINERS
from neurosynchro.transform import to_internal

SIZES = (1, 1000, 100_000, 1_000_000)

#: Rows per call of the plain numpy baseline and of the TensorFlow function,
#: so that a million rows fit in memory.
BASELINE_CHUNK = 1 << 16
TF_CHUNK = 1 << 14

#: Keras' largest predict batch.
KERAS_BATCH = 1 << 16


# -- environment -------------------------------------------------------------


def describe_environment():
    lines = [
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"neurosynchro {neurosynchro.__version__}, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()})",
    ]
    for key in (
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
    ):
        lines.append(f"{key} = {os.environ.get(key, '(unset)')}")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        lines.append("BLAS: threadpoolctl not installed, library unknown")
    else:
        for pool in threadpool_info():
            lines.append(
                f"{pool.get('user_api')}: {pool.get('internal_api')} "
                f"{pool.get('version')}, kernel {pool.get('architecture')}, "
                f"{pool.get('num_threads')} threads "
                f"({Path(pool.get('filepath', '')).name})"
            )
    return lines


# -- network directories -----------------------------------------------------


def synthetic_training_set(rng, n=2000):
    """A raw thermal-like table: random coefficients obeying the invariants.

    Only the bounds and normalizations it gives matter here; the signs are
    symphony's (rho_Q changes sign).
    """
    table = pd.DataFrame(
        {
            "s": 10 ** rng.uniform(0.5, 5.5, n),
            "theta": rng.uniform(0.05, 0.5 * np.pi, n),
            "theta_e": 10 ** rng.uniform(0.0, 2.0, n),
        }
    )
    for kind, sign_q, sign_v in (("j", -1, 1), ("alpha", -1, 1)):
        total = 10 ** rng.uniform(-35, -10, n)
        polarized = total * rng.uniform(0.01, 0.99, n)
        share = rng.uniform(0.001, 0.9, n)
        table[f"{kind}_I"] = total
        table[f"{kind}_Q"] = sign_q * polarized * np.sqrt(1 - share**2)
        table[f"{kind}_V"] = sign_v * polarized * share
    table["rho_Q"] = rng.choice([-1.0, 1.0], n) * 10 ** rng.uniform(-12, -3, n)
    table["rho_V"] = 10 ** rng.uniform(-10, -2, n)
    suffixes = {"s": "log", "theta": "lin", "theta_e": "log"}
    suffixes.update({c: "res" for c in table.columns if c not in suffixes})
    return TrainingSet(table, suffixes, ["synthetic.txt"])


def random_network(widths, activations, name, rng):
    """Random weights with unit-variance pre-activations (He/Glorot-like)."""
    kernels = [
        rng.normal(0.0, 1.0 / np.sqrt(a), (a, b))
        for a, b in zip(widths, widths[1:], strict=False)
    ]
    biases = [rng.normal(0.0, 0.1, b) for b in widths[1:]]
    return Network(kernels, biases, activations, name)


def make_nndir(nndir, architecture, rng):
    """A locked network directory with random ``NAME.npz`` networks."""
    table, suffixes, _ = to_internal(synthetic_training_set(rng))
    nndir.mkdir(parents=True)
    write_table(nndir / "transformed.txt", table, suffixes)
    init_nndir(nndir)
    if architecture == "relu300":
        # Nine networks, as in the reference measurements: rho_Q's
        # magnitude and its sign apart (the layout before the signed map).
        path = nndir / "nn_config.toml"
        text = path.read_text()
        signed = 'maptype = "asinh"\nscale_mode = "quadratic"\nscale_factor = 3.0\n'
        assert signed in text
        text = text.replace(signed, 'maptype = "abs_log"\n')
        text += (
            '\n[[results]]\nname = "rho_Q_sign"\nmaptype = "sign"\n'
            'normalization_mode = "unit_interval"\ntrainer = "binary"\n'
        )
        path.write_text(text)
    config = lock_domain_range(read_training_set(nndir / "transformed.txt"), nndir)
    n_in = len(config.params)
    for spec in config.results:
        if architecture == "relu300":
            widths, activations = [n_in, 300, 1], ["relu", "linear"]
        else:
            settings = TRAINERS[spec.trainer]
            hidden = list(settings.hidden_units)
            final = "sigmoid" if settings.output == "binary" else "linear"
            widths = [n_in, *hidden, 1]
            activations = [settings.activation] * len(hidden) + [final]
        network = random_network(widths, activations, spec.name, rng)
        network.save(nndir / f"{spec.name}.npz")
    return config


def describe_architecture(approximator):
    return repr(approximator.engine)


# -- rows ----------------------------------------------------------------------


def make_rows(config, n, rng):
    """Physical inputs inside the table's domain, and their normalized form."""
    B = 10 ** rng.uniform(0, 2, n)
    s = 10 ** rng.uniform(1, 5, n)
    rows = {
        "nu": s * cyclotron_frequency(B),
        "B": B,
        "n_e": 10 ** rng.uniform(3, 6, n),
        "theta": rng.uniform(0.1, 1.5, n),
        "theta_e": 10 ** rng.uniform(0.1, 1.9, n),
    }
    physical = {"s": s, "theta": rows["theta"], "theta_e": rows["theta_e"]}
    x = np.stack([m.phys_to_norm(physical[m.name])[0] for m in config.params], axis=1)
    return rows, x


# -- timing --------------------------------------------------------------------


def best_time(function, cell_seconds, max_repeats=1000):
    """Best wall time of repeated calls, within about ``cell_seconds``."""
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats:
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > cell_seconds:
            break
    return min(times)


def measure_rates(methods, data, sizes, args):
    """rows/s of each method at each size (None where skipped)."""
    rates = {}
    for name, (function, largest) in methods.items():
        rates[name] = {}
        # A first call pays one-off costs (tracing, caches, compiling the
        # kernel that large calls take); not counted.
        for n in [sizes[0]] + [n for n in sizes if 1000 <= n <= largest][:1]:
            function(*data[n])
        previous = None
        for n in sizes:
            # Below 1e4 rows per-call overheads dominate, so only a rate
            # measured on larger batches predicts a larger call's time.
            if n > largest or (
                previous is not None
                and previous[0] >= 10_000
                and n / previous[1] > args.max_call_seconds
            ):
                rates[name][n] = None
                continue
            seconds = best_time(lambda n=n, f=function: f(*data[n]), args.cell_seconds)
            previous = (n, n / seconds)
            rates[name][n] = n / seconds
        shown = ", ".join(
            "-" if r is None else f"{r:.3g}" for r in rates[name].values()
        )
        print(f"  measured {name}: {shown}", file=sys.stderr, flush=True)
    return rates


def format_table(title, rates, sizes):
    width = max(len(name) for name in rates) + 2
    lines = [title, " " * width + "".join(f"{f'{n:.0e} rows':>13}" for n in sizes)]
    for name, row in rates.items():
        cells = "".join(
            f"{'-':>13}" if row.get(n) is None else f"{row[n]:13.3g}" for n in sizes
        )
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)


# -- the numpy methods ---------------------------------------------------------


def numpy_methods(nndir, config, networks):
    approx64 = PhysicalApproximator(nndir)
    approx32 = PhysicalApproximator(nndir, dtype=np.float32)
    engine64, engine32 = approx64.engine, approx32.engine
    ordered = [networks[spec.name] for spec in config.results]

    def approximator(approx):
        def run(rows, x):
            return approx.compute_all_nontrivial(**rows)

        return run

    def engine(fused):
        return lambda rows, x: fused(x)

    def baseline(rows, x):
        out = np.empty((len(x), len(ordered)))
        for start in range(0, len(x), BASELINE_CHUNK):
            part = x[start : start + BASELINE_CHUNK]
            for column, network in enumerate(ordered):
                out[start : start + BASELINE_CHUNK, column] = network(part)
        return out

    methods = {
        "approximator float64": (approximator(approx64), np.inf),
        "approximator float32": (approximator(approx32), np.inf),
        "engine alone float64": (engine(engine64), np.inf),
        "engine alone float32": (engine(engine32), np.inf),
        "engine numpy-only float64": (
            engine(FusedNetworks(ordered, compiled=False)),
            100_000,
        ),
        "numpy layer by layer": (baseline, 100_000),
    }
    return methods, approx64


def reference_methods(config):
    """The methods that do not use the networks: fitting formulas, calculator."""

    def fits(rows, x):
        return neurosynchro.fits.thermal(
            rows["nu"], rows["B"], rows["n_e"], rows["theta"], rows["theta_e"]
        )

    methods = {"fits.thermal (numpy)": (fits, np.inf)}
    try:
        from neurosynchro.calc import compute_coefficients
    except ImportError as error:
        print(f"calc: not importable ({error})")
        return methods

    def calculator(rows, x):
        s = rows["nu"] / cyclotron_frequency(rows["B"])
        return compute_coefficients(
            "thermal", s, rows["theta"], theta_e=rows["theta_e"]
        )

    try:
        rows, x = make_rows(config, 1, np.random.default_rng(1))
        calculator(rows, x)
    except Exception as error:  # noqa: BLE001 -- reported, not hidden
        print(f"calc.compute_coefficients: fails ({type(error).__name__}: {error})")
    else:
        methods["calc (detailed)"] = (calculator, 1)
    return methods


def check_agreement(approx64, approx32, rows):
    """Largest relative difference of the coefficients, float32 vs float64."""
    n64, _ = approx64.compute_all_nontrivial(**rows)
    n32, _ = approx32.compute_all_nontrivial(**rows)
    ok = np.isfinite(n64) & (n64 != 0)
    return float(np.max(np.abs(n32[ok] / n64[ok] - 1)))


def thread_choice(ordered, x, args):
    """Rows/s of the engine with one and two BLAS threads, two chunk sizes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return ["  threadpoolctl not installed; not measured"]
    lines = []
    for chunk in (None, 1024):
        fused = FusedNetworks(ordered, chunk_rows=chunk, compiled=False)
        cells = []
        for threads in (1, 2):
            with threadpool_limits(threads, user_api="blas"):
                fused(x[:1000])
                seconds = best_time(lambda f=fused: f(x), args.cell_seconds)
            cells.append(f"{threads} thread(s) {len(x) / seconds:.3g}")
        lines.append(
            f"  chunk_rows {fused.chunk_rows}: " + ", ".join(cells) + " rows/s"
        )
    return lines


def load_and_first_call(nndir, repeats=3):
    """Seconds from before ``import neurosynchro`` to a first call's result."""
    code = (
        "import time\n"
        "t0 = time.perf_counter()\n"
        "import warnings, neurosynchro\n"
        "warnings.simplefilter('ignore')\n"
        f"a = neurosynchro.PhysicalApproximator({str(nndir)!r})\n"
        "a.compute_all_nontrivial(1e11, 30.0, 1e4, 0.7, theta_e=10.0)\n"
        "print(time.perf_counter() - t0)\n"
    )
    inside, whole = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        whole.append(time.perf_counter() - t0)
        inside.append(float(done.stdout.strip().splitlines()[-1]))
    return min(inside), min(whole)


# -- Keras and TensorFlow ------------------------------------------------------


def import_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import tensorflow as tf

    return keras, tf


def write_keras_files(keras, nndir, config, networks):
    """A ``NAME.keras`` beside each ``NAME.npz``, with the same weights."""
    for spec in config.results:
        network = networks[spec.name]
        layers = [keras.Input(shape=(network.n_inputs,))]
        for kernel, activation in zip(
            network.kernels, network.activations, strict=True
        ):
            layers.append(keras.layers.Dense(kernel.shape[1], activation=activation))
        model = keras.Sequential(layers)
        weights = []
        for kernel, bias in zip(network.kernels, network.biases, strict=True):
            weights += [kernel.astype(np.float32), bias.astype(np.float32)]
        model.set_weights(weights)
        model.save(nndir / f"{spec.name}.keras")


def tensorflow_methods(keras, tf, nndir, config, networks, x_check):
    models = [
        keras.models.load_model(nndir / f"{spec.name}.keras", safe_mode=True)
        for spec in config.results
    ]
    # Same weights? Compare with the numpy networks on the same rows.
    reference = np.stack([networks[s.name](x_check) for s in config.results], 1)
    predicted = np.stack(
        [m.predict(x_check.astype(np.float32), verbose=0)[:, 0] for m in models], 1
    )
    scale = np.max(np.abs(reference))
    agreement = float(np.max(np.abs(predicted - reference)) / scale)

    def keras_predict(rows, x):
        x = x.astype(np.float32)
        batch = min(len(x), KERAS_BATCH)
        return np.stack(
            [m.predict(x, batch_size=batch, verbose=0)[:, 0] for m in models], 1
        )

    variants = {
        "keras models in one tf.function": _tf_models(tf, models),
        "fused tf.function": _tf_fused(tf, config, networks),
    }
    return keras_predict, variants, agreement


def _chunked(tf, function):
    def run(rows, x):
        x = x.astype(np.float32)
        parts = [
            function(tf.constant(x[i : i + TF_CHUNK])).numpy()
            for i in range(0, len(x), TF_CHUNK)
        ]
        return np.concatenate(parts)

    return run


def _tf_models(tf, models):
    @tf.function(reduce_retracing=True)
    def all_networks(x):
        return tf.concat([m(x, training=False) for m in models], axis=1)

    return _chunked(tf, all_networks)


def _tf_fused(tf, config, networks):
    """All networks at once: stacked weights per architecture group."""
    activation = {
        "linear": tf.identity,
        "relu": tf.nn.relu,
        "tanh": tf.tanh,
        "sigmoid": tf.sigmoid,
        "softplus": tf.nn.softplus,
        "silu": tf.nn.silu,
        "elu": tf.nn.elu,
    }
    groups = {}
    for column, spec in enumerate(config.results):
        network = networks[spec.name]
        key = (tuple(k.shape for k in network.kernels), tuple(network.activations))
        groups.setdefault(key, []).append(column)
    order, stacks = [], []
    for (_, activations), columns in groups.items():
        members = [networks[config.results[c].name] for c in columns]
        layers = []
        for i, name in enumerate(activations):
            kernels = np.stack([m.kernels[i] for m in members]).astype(np.float32)
            biases = np.stack([m.biases[i][None, :] for m in members])
            layers.append(
                (tf.constant(kernels), tf.constant(biases.astype(np.float32)), name)
            )
        stacks.append(layers)
        order += columns
    inverse = np.argsort(order)

    @tf.function(reduce_retracing=True)
    def fused(x):
        outputs = []
        for layers in stacks:
            kernels, biases, name = layers[0]
            h = tf.einsum("ni,gio->gno", x, kernels) + biases
            h = activation[name](h)
            for kernels, biases, name in layers[1:]:
                h = activation[name](tf.matmul(h, kernels) + biases)
            outputs.append(tf.transpose(h[:, :, 0]))
        return tf.gather(tf.concat(outputs, axis=1), inverse, axis=1)

    return _chunked(tf, fused)


# -- main ----------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cell-seconds",
        type=float,
        default=0.5,
        help="repeat each measurement for about this long",
    )
    parser.add_argument(
        "--max-call-seconds",
        type=float,
        default=8.0,
        help="skip a cell whose single call would take longer",
    )
    parser.add_argument(
        "--architectures",
        default="relu300,default",
        help="comma-separated: relu300, default",
    )
    parser.add_argument("--no-tensorflow", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    # Random networks leave the trained range: the warnings are expected.
    warnings.simplefilter("ignore")
    logging.getLogger("neurosynchro").setLevel(logging.ERROR)

    print("== environment")
    print("\n".join(describe_environment()))
    rng = np.random.default_rng(2026)
    with tempfile.TemporaryDirectory(prefix="bench_inference_") as work:
        run(args, Path(work), rng)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


def run(args, work, rng):
    """Build the network directories under ``work``, measure, print."""
    architectures = args.architectures.split(",")
    setups = {}
    data = None
    for architecture in architectures:
        nndir = work / architecture
        config = make_nndir(nndir, architecture, rng)
        networks = {
            s.name: Network.load(nndir / f"{s.name}.npz") for s in config.results
        }
        if data is None:
            # Same rows for every method and architecture (all share the
            # same table, hence the same normalization).
            data = {n: make_rows(config, n, np.random.default_rng(n)) for n in SIZES}
        setups[architecture] = (nndir, config, networks)

    print("\n== fitting formulas and detailed calculator", flush=True)
    references = measure_rates(reference_methods(config), data, SIZES, args)
    tables, summaries = {}, {}
    for architecture, (nndir, config, networks) in setups.items():
        print(f"\n== {architecture}: numpy measurements", flush=True)
        methods, approx64 = numpy_methods(nndir, config, networks)
        print(describe_architecture(approx64))
        rates = measure_rates(methods, data, SIZES, args)
        approx32 = PhysicalApproximator(nndir, dtype=np.float32)
        worst = check_agreement(approx64, approx32, data[1000][0])
        print(
            f"float32 vs float64 coefficients: largest relative difference {worst:.2g}"
        )
        inside, whole = load_and_first_call(nndir)
        print(
            f"load + first call, fresh interpreter: {inside:.3f} s from before "
            f"'import neurosynchro' ({whole:.3f} s with interpreter start-up)"
        )
        print("BLAS threads for the numpy-only engine (float64, 2e4 rows):")
        ordered = [networks[s.name] for s in config.results]
        print("\n".join(thread_choice(ordered, data[100_000][1][:20_000], args)))
        rates.update(references)
        tables[architecture] = rates
        summaries[architecture] = {"load": inside}

    if not args.no_tensorflow:
        print("\n== importing Keras and TensorFlow", flush=True)
        t0 = time.perf_counter()
        keras, tf = import_keras()
        print(
            f"import took {time.perf_counter() - t0:.1f} s; TensorFlow "
            f"{tf.__version__}, Keras {keras.__version__}, intra-op threads "
            f"{tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}"
        )
        for architecture, (nndir, config, networks) in setups.items():
            print(f"\n== {architecture}: Keras and TensorFlow", flush=True)
            write_keras_files(keras, nndir, config, networks)
            keras_predict, variants, agreement = tensorflow_methods(
                keras, tf, nndir, config, networks, data[1000][1]
            )
            print(
                f".keras vs .npz outputs: largest difference {agreement:.2g} "
                "(relative to the largest output)"
            )
            trial = {}
            for name, function in variants.items():
                function(*data[1000])
                seconds = best_time(lambda f=function: f(*data[100_000]), 0.5, 3)
                trial[name] = 100_000 / seconds
                print(f"  {name}: {trial[name]:.3g} rows/s at 1e5 rows")
            best = max(trial, key=trial.get)
            print(f"best TensorFlow path: {best}")
            methods = {
                "keras predict": (keras_predict, 100_000),
                "best tf.function": (variants[best], np.inf),
            }
            tables[architecture].update(measure_rates(methods, data, SIZES, args))

    for architecture, rates in tables.items():
        print()
        print(
            format_table(
                f"== {architecture}: rows per second (best of repeats)", rates, SIZES
            )
        )
        print(ratios(rates, summaries[architecture]))


def ratios(rates, summary):
    lines = ["ratios (ours / other; ours = approximator float64, float32):"]

    def ratio(a, b, n):
        x, y = rates.get(a, {}).get(n), rates.get(b, {}).get(n)
        return None if x is None or y is None else x / y

    for other in (
        "keras predict",
        "best tf.function",
        "fits.thermal (numpy)",
        "numpy layer by layer",
    ):
        if other not in rates:
            continue
        cells = []
        for n in SIZES:
            r64 = ratio("approximator float64", other, n)
            r32 = ratio("approximator float32", other, n)
            cells.append("-" if r64 is None else f"{r64:.3g}, {r32:.3g}")
        lines.append(
            f"  / {other}: "
            + " | ".join(f"{n:.0e}: {c}" for n, c in zip(SIZES, cells, strict=True))
        )
    goals = []

    def check(text, values, threshold):
        values = [v for v in values if v is not None]
        if not values:
            goals.append(f"  {text}: not measured")
        else:
            met = min(values) >= threshold
            goals.append(
                f"  {text}: {'MET' if met else 'NOT MET'} (worst {min(values):.3g})"
            )

    a64 = "approximator float64"
    check(
        ">= 100x Keras predict, batches <= 1e3 (float64)",
        [ratio(a64, "keras predict", n) for n in (1, 1000)],
        100,
    )
    check(
        ">= 3x best TF at 1e5 and 1e6 (float64)",
        [ratio(a64, "best tf.function", n) for n in (100_000, 1_000_000)],
        3,
    )
    check(
        ">= 1e6 rows/s float64 at >= 1e5 rows",
        [rates[a64].get(n) for n in (100_000, 1_000_000)],
        1e6,
    )
    check(
        "within 2x of the fitting formulas at >= 1e3 rows (float64)",
        [ratio(a64, "fits.thermal (numpy)", n) for n in (1000, 100_000, 1_000_000)],
        0.5,
    )
    goals.append(
        f"  load + first call < 0.3 s: "
        f"{'MET' if summary['load'] < 0.3 else 'NOT MET'} "
        f"({summary['load']:.3f} s)"
    )
    return "\n".join(lines + ["goals (this run):"] + goals)


if __name__ == "__main__":
    main()
