"""Train one Keras network per internal result.

Keras (3, on TensorFlow) is imported only inside the functions that train,
so ``import neurosynchro`` and inference never pay for it.

Each trainer is a named set of defaults (:data:`TRAINERS`); any setting can
be overridden per result in ``nn_config.toml`` (a key in the result's
``[[results]]`` table) or for all results (a key in a ``[training]`` table).
Training runs in two passes: a first fit, then sigma clipping (training rows
whose residual exceeds ``clip_sigma`` times the residual spread are dropped,
since wild rows are usually failed calculations) and a second fit. A seeded,
held-out validation split drives early stopping and a learning-rate schedule,
and its error is reported.
"""

import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, TableError, TrainingError
from .network import ACTIVATIONS, Network

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainerSettings:
    """Settings of one trainer; every field may be overridden in the config.

    Attributes
    ----------
    hidden_units : tuple of int
        Width of each hidden layer.
    activation : str
        Hidden-layer activation (a Keras name that :mod:`neurosynchro.network`
        can evaluate).
    output : str
        ``regression`` (linear output, mean squared error) or ``binary``
        (sigmoid output, binary cross-entropy; the result must be normalized
        to 0 and 1).
    epochs : int
        Most epochs per pass.
    batch_size : int
        Rows per gradient step.
    learning_rate : float
        Initial Adam learning rate; it is reduced when the validation loss
        stalls.
    patience : int
        Epochs without validation improvement before stopping.
    validation_fraction : float
        Share of rows held out for validation.
    clip_sigma : float
        Residual threshold, in standard deviations, of the sigma clipping
        between the two passes (0 turns clipping off).
    refine_iterations : int
        Most iterations of the full-batch L-BFGS refinement that follows the
        Adam passes (regression only; 0 turns it off). See :func:`refine`.
    refine_rows : int
        Most training rows the refinement uses (a seeded random subset; 0
        means all). Each L-BFGS iteration costs time in proportion to the
        rows, and on calculator-made sets iterations bought more accuracy
        than rows did, for the same time.
    seed : int
        Seed of the validation split, the weights and the shuffling.
    """

    hidden_units: tuple = (64, 64)
    activation: str = "tanh"
    output: str = "regression"
    epochs: int = 100
    batch_size: int = 512
    learning_rate: float = 3e-3
    patience: int = 20
    validation_fraction: float = 0.1
    clip_sigma: float = 7.0
    refine_iterations: int = 2000
    refine_rows: int = 20000
    seed: int = 0

    @classmethod
    def keys(cls):
        return tuple(f.name for f in dataclasses.fields(cls))

    def updated(self, overrides, where):
        """A copy with ``overrides`` applied, each checked for type and range."""
        values = dataclasses.asdict(self)
        for key, value in overrides.items():
            if key not in values:
                continue
            values[key] = _check_setting(key, value, where)
        return TrainerSettings(**values)


def _is_int(value):
    # TOML's true/false arrive as bool, which Python counts as an int.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return _is_int(value) or isinstance(value, float)


def _check_setting(key, value, where):
    def fail(expected):
        raise ConfigError(f"{where}: {key} = {value!r}; expected {expected}")

    if key == "hidden_units":
        if _is_int(value):
            value = [value]
        if not (
            isinstance(value, list | tuple)
            and value
            and all(_is_int(v) and v > 0 for v in value)
        ):
            fail("a list of positive integers, e.g. [128, 128]")
        return tuple(int(v) for v in value)
    if key == "activation":
        if value not in ACTIVATIONS or value == "linear":
            fail("one of " + ", ".join(a for a in ACTIVATIONS if a != "linear"))
        return str(value)
    if key == "output":
        if value not in ("regression", "binary"):
            fail("'regression' or 'binary'")
        return str(value)
    if key in ("epochs", "batch_size", "patience"):
        if not (_is_int(value) and value > 0):
            fail("a positive integer")
        return int(value)
    if key in ("seed", "refine_iterations", "refine_rows"):
        if not (_is_int(value) and value >= 0):
            fail("a non-negative integer")
        return int(value)
    if key == "validation_fraction":
        if not (_is_number(value) and 0 < value < 0.5):
            fail("a number between 0 and 0.5")
        return float(value)
    if not (_is_number(value) and 0 <= value < math.inf):
        fail("a non-negative number")
    return float(value)


#: The trainers: named defaults. ``generic`` suits the smooth results,
#: ``twolayer`` is a wider, deeper variant for hard ones, ``binary`` learns
#: a sign.
TRAINERS = {
    "generic": TrainerSettings(),
    "twolayer": TrainerSettings(hidden_units=(256, 256)),
    "binary": TrainerSettings(
        hidden_units=(64, 64), output="binary", clip_sigma=0.0, patience=20
    ),
}


@dataclass
class TrainingReport:
    """What one training run achieved."""

    result: str
    trainer: str
    rows: int
    clipped: int
    epochs: int
    seconds: float
    #: Validation RMS error of the normalized result (regression), or the
    #: fraction misclassified (binary).
    validation_error: float
    #: L-BFGS refinement iterations run after the Adam passes.
    refined: int = 0
    #: Median and 95th-percentile relative error of the physical result on
    #: the validation rows (regression only).
    validation_median: float = np.nan
    validation_p95: float = np.nan
    #: Whether the result is a class (binary trainer output).
    binary: bool = False
    #: Normalized validation inputs, shape (M, n_params), and the residuals
    #: (network minus truth, normalized), shape (M,), for plots.
    validation_inputs: np.ndarray = dataclasses.field(default=None, repr=False)
    validation_residuals: np.ndarray = dataclasses.field(default=None, repr=False)

    def line(self):
        text = (
            f"{self.result}: {self.trainer}, {self.rows} rows, {self.clipped} "
            f"clipped, {self.epochs} epoch{'s' if self.epochs != 1 else ''}"
            + (f" + {self.refined} L-BFGS iterations" if self.refined else "")
            + f", {self.seconds:.1f} s; validation "
        )
        if self.binary:
            return text + f"misclassified {self.validation_error:.2%}"
        return text + (
            f"rms {self.validation_error:.3g} (normalized), relative error median "
            f"{self.validation_median:.3%}, p95 {self.validation_p95:.3%}"
        )


def normalized_arrays(config, training_set, result):
    """Normalized inputs and one normalized result, rows with NaN dropped.

    Returns
    -------
    x : ndarray, shape (N, n_params)
    y : ndarray, shape (N,)
    """
    missing = [n for n in config.param_names if n not in training_set.table.columns]
    if missing:
        raise TableError(
            f"{training_set.files[0]}: no column for input parameter(s) "
            + ", ".join(missing)
            + f" named in {config.path}"
        )
    if result.name not in training_set.table.columns:
        raise TableError(
            f"{training_set.files[0]}: no column {result.name}(res); is this the "
            "output of 'neurosynchro transform'?"
        )
    columns = [
        m.phys_to_norm(training_set.table[m.name].to_numpy())[0] for m in config.params
    ]
    x = np.stack(columns, axis=1)
    p = training_set.table[result.name].to_numpy()
    y = np.where(result.mapping.maptype.valid(p), p, np.nan)
    y = result.mapping.phys_to_norm(y, x)[0]
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    return x[ok], y[ok]


def _import_keras():
    """Import Keras on TensorFlow, quietly."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    # TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) is noise for
    # our users. Much of it is written straight to file descriptor 2 before
    # TF_CPP_MIN_LOG_LEVEL takes effect, so the descriptor is pointed at
    # /dev/null while TensorFlow imports and probes its devices. Errors still
    # surface: they are Python exceptions, raised after it is restored.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with _quiet_stderr_fd():
        import keras
        import tensorflow

        tensorflow.config.list_physical_devices()
    return keras


@contextlib.contextmanager
def _quiet_stderr_fd():
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (some embedded interpreters)
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _build(settings, n_inputs):
    keras = _import_keras()

    layers = [keras.Input(shape=(n_inputs,))]
    for width in settings.hidden_units:
        layers.append(keras.layers.Dense(width, activation=settings.activation))
    final = "sigmoid" if settings.output == "binary" else "linear"
    layers.append(keras.layers.Dense(1, activation=final))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=settings.learning_rate),
        loss="binary_crossentropy" if settings.output == "binary" else "mse",
    )
    return model


def _progress_callback(total_epochs, label):
    """A tqdm bar over epochs on stderr (Keras' own bar writes to stdout)."""
    keras = _import_keras()
    from tqdm.auto import tqdm

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total_epochs, desc=label, unit="epoch", leave=False)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(1)
            self.bar.set_postfix(val_loss=f"{(logs or {}).get('val_loss', 0):.3g}")

        def on_train_end(self, logs=None):
            self.bar.close()

    return Progress()


def _fit(model, x, y, x_val, y_val, settings, progress):
    keras = _import_keras()

    callbacks = [
        keras.callbacks.EarlyStopping(
            patience=settings.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            factor=0.5, patience=max(settings.patience // 3, 1), min_lr=1e-6
        ),
    ]
    if progress:
        callbacks.append(_progress_callback(settings.epochs, progress))
    history = model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    return len(history.history["loss"])


def _activation_slope(name, z, h):
    """d activation / dz at pre-activation ``z``, given ``h = activation(z)``."""
    if name == "linear":
        return None
    if name == "tanh":
        return 1.0 - h * h
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "softplus":
        return ACTIVATIONS["sigmoid"](z)
    if name == "silu":
        sig = ACTIVATIONS["sigmoid"](z)
        return sig * (1.0 + z * (1.0 - sig))
    if name == "elu":
        return np.where(z > 0, 1.0, h + 1.0)
    raise ValueError(f"no derivative for activation {name!r}")


class _FlatNetwork:
    """A network's weights as one float64 vector, with its loss gradient."""

    def __init__(self, network):
        self.activations = list(network.activations)
        self.shapes = [
            (k.shape, b.shape)
            for k, b in zip(network.kernels, network.biases, strict=True)
        ]
        self.vector = np.concatenate(
            [
                np.concatenate([np.ravel(k), np.ravel(b)]).astype(np.float64)
                for k, b in zip(network.kernels, network.biases, strict=True)
            ]
        )

    def unpack(self, vector):
        kernels, biases, i = [], [], 0
        for kernel_shape, bias_shape in self.shapes:
            n = math.prod(kernel_shape)
            kernels.append(vector[i : i + n].reshape(kernel_shape))
            i += n
            m = math.prod(bias_shape)
            biases.append(vector[i : i + m])
            i += m
        return kernels, biases

    def predict(self, vector, x):
        kernels, biases = self.unpack(vector)
        h = x
        for kernel, bias, name in zip(kernels, biases, self.activations, strict=True):
            h = ACTIVATIONS[name](h @ kernel + bias)
        return h[:, 0]

    def loss_and_gradient(self, vector, x, y):
        """Mean squared error over all rows, and its gradient (backpropagation)."""
        kernels, biases = self.unpack(vector)
        inputs, slopes, h = [], [], x
        for kernel, bias, name in zip(kernels, biases, self.activations, strict=True):
            inputs.append(h)
            z = h @ kernel + bias
            h = ACTIVATIONS[name](z)
            slopes.append(_activation_slope(name, z, h))
        residual = h[:, 0] - y
        loss = float(np.mean(residual**2))
        delta = (2.0 / len(y)) * residual[:, None]
        gradients = []
        for i in reversed(range(len(kernels))):
            if slopes[i] is not None:
                delta = delta * slopes[i]
            gradients.append((delta.sum(axis=0), inputs[i].T @ delta))
            if i:
                delta = delta @ kernels[i].T
        flat = []
        for bias_gradient, kernel_gradient in reversed(gradients):
            flat += [kernel_gradient.ravel(), bias_gradient]
        return loss, np.concatenate(flat)


def refine(network, x, y, x_val, y_val, iterations, patience=None):
    """Refine a trained regression network by full-batch L-BFGS.

    Adam, with mini-batches, stalls at a noise floor set by its step size;
    a quasi-Newton method on the whole training set goes on descending. On
    calculator-made training sets it cut the median error of Adam-trained
    networks by a factor of 3 or more in a few hundred iterations (see
    docs/accuracy.rst). The loss is the mean squared error of the normalized
    result, minimized with scipy's L-BFGS-B in float64 from the network's
    weights; after every iteration the validation loss is computed, the best
    weights so far are kept, and the run stops after ``patience`` iterations
    without a better validation loss (default: a quarter of ``iterations``,
    at least 200: the validation loss can rise for a hundred iterations
    before L-BFGS settles into a steady descent).

    Parameters
    ----------
    network : neurosynchro.network.Network
        The trained network (regression: a linear single output).
    x, y : ndarray
        Normalized training inputs, shape (N, n_inputs), and result, (N,).
    x_val, y_val : ndarray
        The validation rows, likewise.
    iterations : int
        Most L-BFGS iterations.
    patience : int, optional
        Iterations without validation improvement before stopping.

    Returns
    -------
    network : neurosynchro.network.Network
        The refined network, weights rounded to float32 (as Keras keeps
        them); the input network itself if refining did not lower the
        validation loss.
    done : int
        Iterations run.
    """
    from scipy.optimize import minimize

    flat = _FlatNetwork(network)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x_val, y_val = np.asarray(x_val, np.float64), np.asarray(y_val, np.float64)
    patience = patience or max(iterations // 4, 200)

    def validation_loss(vector):
        return float(np.mean((flat.predict(vector, x_val) - y_val) ** 2))

    start = validation_loss(flat.vector)
    best = {"loss": start, "vector": flat.vector, "at": 0, "now": 0}

    def watch(intermediate_result):
        best["now"] += 1
        loss = validation_loss(intermediate_result.x)
        if loss < best["loss"]:
            best.update(loss=loss, vector=intermediate_result.x.copy(), at=best["now"])
        elif best["now"] - best["at"] >= patience:
            raise StopIteration

    with np.errstate(over="ignore", invalid="ignore"):
        minimize(
            flat.loss_and_gradient,
            flat.vector,
            args=(x, y),
            jac=True,
            method="L-BFGS-B",
            callback=watch,
            options={"maxiter": iterations, "maxcor": 30, "ftol": 0.0, "gtol": 0.0},
        )
    if not best["loss"] < start:
        return network, best["now"]
    kernels, biases = flat.unpack(best["vector"])
    refined = Network(
        [k.astype(np.float32) for k in kernels],
        [b.astype(np.float32) for b in biases],
        flat.activations,
        name=network.name,
    )
    return refined, best["now"]


def to_network(model, name):
    """Copy a trained Keras model's weights into a numpy :class:`Network`."""
    kernels, biases, activations = [], [], []
    for layer in model.layers:
        kernel, bias = layer.get_weights()
        kernels.append(kernel)
        biases.append(bias)
        activations.append(layer.get_config()["activation"])
    return Network(kernels, biases, activations, name=name)


def train_result(config, training_set, name, nndir, progress=False):
    """Train, check and save the network for one internal result.

    Parameters
    ----------
    config : neurosynchro.config.NetworkConfig
        Locked config of the network directory.
    training_set : neurosynchro.samples.TrainingSet
        The transformed training set.
    name : str
        The internal result to train.
    nndir : str or Path
        Where ``NAME.keras`` and ``NAME.npz`` are written (atomically).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    TrainingReport
    """
    keras = _import_keras()

    spec, settings = _result_settings(config, name)
    x, y = normalized_arrays(config, training_set, spec)
    if len(y) < 10:
        raise TableError(f"{name}: only {len(y)} usable rows; need at least 10")

    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(y))
    n_val = max(int(round(settings.validation_fraction * len(y))), 1)
    val, fit = order[:n_val], order[n_val:]
    keras.utils.set_random_seed(settings.seed)
    start = time.perf_counter()
    model = _build(settings, x.shape[1])
    label = name if progress else None
    epochs = _fit(model, x[fit], y[fit], x[val], y[val], settings, label)

    clipped = 0
    if settings.clip_sigma > 0:
        residual = to_network(model, name)(x[fit]) - y[fit]
        wild = np.abs(residual - residual.mean()) > settings.clip_sigma * residual.std()
        clipped = int(wild.sum())
        if clipped:
            logger.info("%s: clipping %d wild rows, then refitting", name, clipped)
            fit = fit[~wild]
            epochs += _fit(model, x[fit], y[fit], x[val], y[val], settings, label)
    network = to_network(model, name)
    refined = 0
    if settings.refine_iterations and settings.output == "regression":
        subset = fit
        if 0 < settings.refine_rows < len(fit):
            subset = rng.choice(fit, settings.refine_rows, replace=False)
        network, refined = refine(
            network,
            x[subset],
            y[subset],
            x[val],
            y[val],
            settings.refine_iterations,
        )
        model.set_weights(
            [
                w
                for pair in zip(network.kernels, network.biases, strict=True)
                for w in pair
            ]
        )
    seconds = time.perf_counter() - start

    predicted = network(x[val])
    report = TrainingReport(
        name, spec.trainer, len(fit), clipped, epochs, seconds, 0.0, refined=refined
    )
    report.validation_inputs = x[val]
    report.validation_residuals = predicted - y[val]
    if settings.output == "binary":
        report.binary = True
        report.validation_error = float(np.mean((predicted > 0.5) != (y[val] > 0.5)))
    else:
        report.validation_error = float(np.sqrt(np.mean((predicted - y[val]) ** 2)))
        truth = spec.mapping.norm_to_phys(y[val], x[val])[0]
        approx = spec.mapping.norm_to_phys(predicted, x[val])[0]
        relative = np.abs(approx / truth - 1)
        report.validation_median = float(np.median(relative))
        report.validation_p95 = float(np.percentile(relative, 95))

    nndir = Path(nndir)
    network.save(nndir / f"{name}.npz")
    from .fileio import atomic_path

    with atomic_path(nndir / f"{name}.keras", suffix=".keras") as tmp:
        model.save(tmp)
    return report


def _result_settings(config, name):
    """The result's spec and its trainer's settings (raises ConfigError)."""
    spec = config.result(name)
    settings = TRAINERS[spec.trainer].updated(
        config.training, f"{config.path} [training]"
    )
    return spec, settings.updated(spec.settings, f"{config.path} ({name})")


def default_jobs(n_results):
    """Processes ``train`` uses by default: one per core, at most one per result."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, n_results))


_WORKER = {}


def _worker_start(nndir, datadir, log_level):
    from .config import load_config
    from .processes import start_worker
    from .samples import read_training_set

    start_worker()
    _WORKER["config"] = load_config(nndir)
    _WORKER["training_set"] = read_training_set(datadir)
    _WORKER["nndir"] = nndir
    # Spawned workers start with logging unconfigured: log what happens in
    # training (clipped rows, say) as the command does, after the reading
    # above, which the command has already reported.
    logging.basicConfig(
        level=log_level, format="neurosynchro: %(message)s", stream=sys.stderr
    )


def _worker_train(name):
    return train_result(
        _WORKER["config"], _WORKER["training_set"], name, _WORKER["nndir"]
    )


@contextlib.contextmanager
def _environment(**values):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value


def train_results(config, training_set, names, nndir, jobs=1, progress=False):
    """Train several results, in ``jobs`` processes at once; yield each report.

    Each network trains on one core best: the networks are small, so
    TensorFlow's and OpenBLAS's threads mostly wait on each other. With
    ``jobs`` > 1, the results are shared out over that many worker processes
    (each reading the config and training set from ``config.path`` and
    ``training_set.files``), each limited to ``cores // jobs`` threads, and
    the reports are yielded as the networks finish. A failure stops all the
    workers; the networks already written stay (each file is written
    atomically).

    Parameters
    ----------
    config : neurosynchro.config.NetworkConfig
    training_set : neurosynchro.samples.TrainingSet
    names : list of str
        The results to train.
    nndir : str or Path
    jobs : int
        Worker processes; 1 trains in this process, one result after another.
    progress : bool
        Show a per-epoch progress bar (one process only).
    """
    names = list(dict.fromkeys(names))  # each network once
    jobs = min(jobs, len(names))
    if jobs <= 1:
        for name in names:
            yield train_result(config, training_set, name, nndir, progress=progress)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from .processes import stop

    # A mistake in the config is reported here, once, before any worker
    # starts (and not from inside a worker, after TensorFlow has loaded).
    for name in names:
        _result_settings(config, name)
    cores = default_jobs(1 << 30)
    if jobs > cores:
        logger.warning(
            "%d processes on %d core(s): each network will train more slowly",
            jobs,
            cores,
        )
    threads = str(max(1, cores // jobs))
    limits = {
        key: threads
        for key in (
            "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "MKL_NUM_THREADS",
            "TF_NUM_INTRAOP_THREADS",
        )
    }
    limits["TF_NUM_INTEROP_THREADS"] = "1"
    if len(training_set.files) == 1:
        datadir = str(training_set.files[0])
    else:
        datadir = str(Path(training_set.files[0]).parent)
    logger.info(
        "training %d networks, %d at a time (one process each, %s thread(s))",
        len(names),
        jobs,
        threads,
    )
    context = multiprocessing.get_context("spawn")
    initargs = (str(Path(config.path).parent), datadir, logger.getEffectiveLevel())
    # The workers inherit the thread limits from the environment when they
    # start, which they all do here, on the first submissions.
    with _environment(**limits):
        executor = ProcessPoolExecutor(jobs, context, _worker_start, initargs)
        futures = {executor.submit(_worker_train, name): name for name in names}
    done = set()
    try:
        for future in as_completed(futures):
            report = future.result()
            done.add(futures[future])
            yield report
    except BrokenProcessPool as error:
        missing = [name for name in names if name not in done]
        raise TrainingError(
            f"a training process died ({error}); the networks already trained "
            "are saved; train the others by naming them: " + " ".join(missing)
        ) from None
    finally:
        # On an error, or an interrupt, stop the networks still training
        # rather than wait minutes for them: each file is written
        # atomically, so a killed worker leaves nothing half-written.
        stop(executor)


def plot_residuals(reports, config, path):
    """Save a grid of residual plots: one row per result, one column per input.

    Parameters
    ----------
    reports : list of TrainingReport
    config : neurosynchro.config.NetworkConfig
    path : str or Path
        PNG file to write (atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .fileio import atomic_path

    n_params = len(config.params)
    figure, axes = plt.subplots(
        len(reports),
        n_params,
        figsize=(3.2 * n_params, 2.4 * len(reports)),
        squeeze=False,
    )
    for row, report in enumerate(reports):
        for column, mapping in enumerate(config.params):
            axis = axes[row, column]
            axis.plot(
                report.validation_inputs[:, column],
                report.validation_residuals,
                ",",
                alpha=0.6,
            )
            axis.axhline(0, color="k", lw=0.5)
            if row == len(reports) - 1:
                axis.set_xlabel(f"{mapping.name} (normalized)")
            if column == 0:
                axis.set_ylabel(f"{report.result}\nresidual")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=90)
    plt.close(figure)
