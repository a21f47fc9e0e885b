"""``nn_config.toml``: the domain, range and settings of a network directory.

The config is read and rewritten with tomlkit, so a user's comments, key
order and layout survive ``lock-domain-range`` and ``train``; rewrites are
atomic. Configs written by the predecessor package (neurosynchro 0.1.x) load
unchanged.

Layout::

    [[params]]            # one table per network input, in input order
    name = "s"
    maptype = "log"
    ...                   # bounds keys, written by lock-domain-range

    [[results]]           # one table per internal result (one network each)
    name = "j_I"
    maptype = "log"
    trainer = "generic"
    ...                   # optional trainer settings, e.g. epochs = 200

    [signs]               # recorded by lock-domain-range from the table
    j_Q = -1
    ...

    [provenance]          # package version, training-set hash, dates
"""

import difflib
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomlkit
from tomlkit.exceptions import ParseError

from . import __version__
from .errors import ConfigError, NetworkError
from .fileio import atomic_write_text
from .mappings import Mapping, n_quadratic_features
from .transform import LEGACY_SIGNS, ROTATIVITY_RESULTS, SIGNED

logger = logging.getLogger(__name__)

CONFIG_NAME = "nn_config.toml"
REQUIRED_PARAMS = ("s", "theta")

DEFAULT_CONFIG = """\
# neurosynchro network configuration.
#
# [[params]] tables are the network inputs, [[results]] tables the internal
# results (one network each). Keys:
#   maptype            direct, log, logit, neg_log, abs_log, ninth_root, asinh,
#                      sign
#   phys_bounds_mode   empirical (from the table) or theta (fixed 0 .. pi/2)
#   normalization_mode gaussian or unit_interval
#   out_of_sample      ignore, clip or nan: what to do outside the bounds
#   trainer            generic, twolayer or binary (results only); trainer
#                      settings (hidden_units, epochs, batch_size, ...) may be
#                      set per result or in a [training] table.
#   scale_mode         none or quadratic (results only): divide the value by
#                      scale_factor * exp(q), q a quadratic in the normalized
#                      inputs fitted to log |value| (scale_coefficients)
# 'neurosynchro lock-domain-range' fills in the bounds (phys_min, phys_max,
# x_mean, x_std, norm_min, norm_max) and adds a [[params]] table for each
# model parameter of the training set not listed here (maptype log for
# (log) columns, direct for (lin) columns); edit them to taste.

[[params]]
name = "s"
maptype = "log"

[[params]]
name = "theta"
maptype = "direct"
phys_bounds_mode = "theta"
out_of_sample = "clip"

[[results]]
name = "j_I"
maptype = "log"
trainer = "generic"

[[results]]
name = "alpha_I"
maptype = "log"
trainer = "generic"

[[results]]
name = "rho_Q"
maptype = "asinh"
scale_mode = "quadratic"
scale_factor = 3.0
trainer = "generic"

[[results]]
name = "rho_V"
maptype = "log"
trainer = "generic"

[[results]]
name = "j_frac_pol"
maptype = "logit"
trainer = "generic"

[[results]]
name = "alpha_frac_pol"
maptype = "logit"
trainer = "generic"

[[results]]
name = "j_V_share"
maptype = "logit"
trainer = "generic"

[[results]]
name = "alpha_V_share"
maptype = "logit"
trainer = "generic"
"""


@dataclass
class ResultSpec:
    """One internal result: its mapping, trainer and trainer settings."""

    mapping: Mapping
    trainer: str = "generic"
    settings: dict = field(default_factory=dict)

    @property
    def name(self):
        return self.mapping.name


#: Keys of a ``[[domain]]`` table, and the angle functions its powers may use
#: besides the input parameters.
DOMAIN_KEYS = ("name", "factor", "powers", "min", "max")
ANGLE_FUNCTIONS = {"sin_theta": np.sin, "cos_theta": np.cos}


@dataclass(frozen=True)
class DomainLimit:
    """A bound on a product of powers of the inputs, beyond the per-input box.

    A training set cut along a curve in its input space (thermal sets leave
    out ``nu / nu_s > 1e4``, with ``nu / nu_s = 4.5 s / (theta_e^2 sin
    theta)``) still has box bounds that include the cut-off corner; a
    ``[[domain]]`` table lets the approximator flag points there::

        [[domain]]
        name = "nu/nu_s"
        factor = 4.5
        powers = { s = 1, theta_e = -2, sin_theta = -1 }
        max = 1e4

    The value is ``factor * prod(input ** power)``; a point is out of sample
    where it is below ``min`` or above ``max`` (either may be left out).
    Power names are input parameters, ``sin_theta`` or ``cos_theta``.
    """

    name: str
    factor: float
    powers: dict
    min: float
    max: float

    def outside(self, physical):
        """Boolean array: where the value leaves [min, max] (NaN counts)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_value = np.log(self.factor)
            for key, power in self.powers.items():
                base = (
                    ANGLE_FUNCTIONS[key](physical["theta"])
                    if key in ANGLE_FUNCTIONS
                    else physical[key]
                )
                log_value = log_value + power * np.log(base)
            return ~((log_value >= np.log(self.min)) & (log_value <= np.log(self.max)))


def _domain_limit(table, where, param_names):
    _check_keys(list(table), DOMAIN_KEYS, where)

    def number(key, default):
        value = table.get(key, default)
        if not (isinstance(value, int | float) and not isinstance(value, bool)):
            raise ConfigError(f"{where}: {key} = {value!r}; expected a number")
        return float(value)

    name = str(table.get("name", "unnamed"))
    factor = number("factor", 1.0)
    if not 0 < factor < np.inf:
        raise ConfigError(f"{where}: factor = {factor!r}; expected a number > 0")
    low, high = number("min", 0.0), number("max", np.inf)
    if not (0 <= low < high) or "min" not in table and "max" not in table:
        raise ConfigError(
            f"{where}: expected min and/or max with 0 <= min < max; got "
            f"min = {table.get('min')!r}, max = {table.get('max')!r}"
        )
    powers = table.get("powers", {})
    if not hasattr(powers, "items") or not powers:
        raise ConfigError(f"{where}: expected powers = {{ NAME = POWER, ... }}")
    allowed = list(param_names) + list(ANGLE_FUNCTIONS)
    checked = {}
    for key, power in powers.items():
        if key not in allowed:
            raise ConfigError(
                f"{where}: powers has {key!r}; expected names among "
                + ", ".join(allowed)
            )
        if not (isinstance(power, int | float) and not isinstance(power, bool)):
            raise ConfigError(f"{where}: powers.{key} = {power!r}; expected a number")
        checked[str(key)] = float(power)
    return DomainLimit(name, factor, checked, low, high)


@dataclass
class NetworkConfig:
    """A parsed ``nn_config.toml``.

    Attributes
    ----------
    path : Path
        The config file.
    params : list of Mapping
        Network inputs, in order.
    results : list of ResultSpec
        Internal results, in order.
    signs : dict
        Recorded signs of the fixed-sign coefficients.
    training : dict
        Global trainer settings from the ``[training]`` table.
    document : tomlkit.TOMLDocument
        The document as read, for rewriting without losing the user's text.
    domain : list of DomainLimit
        Limits from the ``[[domain]]`` tables, if any.
    """

    path: Path
    params: list
    results: list
    signs: dict
    training: dict
    document: object
    domain: list = ()

    @property
    def param_names(self):
        return [m.name for m in self.params]

    def result(self, name):
        """The ResultSpec called ``name``; NetworkError if there is none."""
        for spec in self.results:
            if spec.name == name:
                return spec
        raise NetworkError(
            f"{self.path}: no result {name!r}; the config has "
            + ", ".join(s.name for s in self.results)
        )

    @property
    def has_rotativities(self):
        # rho_Q_sign only where rho_Q is learned as a magnitude (checked on
        # loading).
        names = {s.name for s in self.results}
        return "rho_Q" in names and "rho_V" in names


def config_path(nndir):
    return Path(nndir) / CONFIG_NAME


def read_document(path):
    """Parse a TOML file into a tomlkit document; ConfigError on failure."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except ParseError as error:
        raise ConfigError(f"{path}: TOML syntax error: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None


#: Keys a [[params]] or [[results]] table may hold besides trainer settings.
MAPPING_KEYS = (
    "name",
    "maptype",
    "phys_bounds_mode",
    "normalization_mode",
    "out_of_sample",
    "trainer",
    "x_mean",
    "x_std",
    "phys_min",
    "phys_max",
    "norm_min",
    "norm_max",
    "scale_mode",
    "scale_factor",
    "scale_coefficients",
)

#: Top-level tables of a config.
TOP_LEVEL_KEYS = ("params", "results", "signs", "training", "domain", "provenance")


def _check_keys(keys, allowed, where):
    """ConfigError for a misspelled key, suggesting the nearest valid one."""
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{where}: unknown key {key!r}{hint} Valid keys: " + ", ".join(allowed)
            )


#: Keys of a [[results]] table that an input's [[params]] table may not have.
SCALE_KEYS = ("scale_mode", "scale_factor", "scale_coefficients")


def _check_param_table(table, where):
    for key in SCALE_KEYS:
        if key in table:
            raise ConfigError(f"{where}: {key} applies to [[results]] tables only")


def _tables(document, key, path):
    tables = document.get(key)
    if tables is None:
        raise ConfigError(f"{path}: no [[{key}]] tables")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: '{key}' must be an array of tables, [[{key}]]")
    return tables


def load_config(nndir_or_path, need_bounds=True):
    """Read and check a network directory's config.

    Parameters
    ----------
    nndir_or_path : str or Path
        The network directory, or the config file itself.
    need_bounds : bool
        Require the bounds written by ``lock-domain-range``.

    Returns
    -------
    NetworkConfig
    """
    path = Path(nndir_or_path)
    if path.is_dir():
        path = path / CONFIG_NAME
    return _checked_config(read_document(path), path, need_bounds)


def _checked_config(document, path, need_bounds):
    """Check a parsed config document and build its NetworkConfig."""
    _check_keys(list(document), TOP_LEVEL_KEYS, str(path))
    from .training import TrainerSettings

    settings_keys = TrainerSettings.keys()
    for kind in ("params", "results"):
        for i, table in enumerate(_tables(document, kind, path)):
            allowed = MAPPING_KEYS + (settings_keys if kind == "results" else ())
            _check_keys(list(table), allowed, f"{path}: [[{kind}]] #{i + 1}")
            if kind == "params":
                _check_param_table(table, f"{path}: [[params]] #{i + 1}")
    _check_keys(
        list(document.get("training", {})), settings_keys, f"{path}: [training]"
    )
    params = [
        Mapping.from_dict(t, f"{path}: [[params]] #{i + 1}", need_bounds)
        for i, t in enumerate(_tables(document, "params", path))
    ]
    results = []
    from .training import TRAINERS

    for i, table in enumerate(_tables(document, "results", path)):
        where = f"{path}: [[results]] #{i + 1}"
        mapping = Mapping.from_dict(table, where, need_bounds)
        trainer = str(table.get("trainer", "generic"))
        if trainer not in TRAINERS:
            raise ConfigError(
                f"{where} ({mapping.name}): trainer = {trainer!r} is not valid; "
                "expected one of " + ", ".join(repr(t) for t in TRAINERS)
            )
        settings = {k: v for k, v in table.items() if k in TRAINERS[trainer].keys()}
        results.append(ResultSpec(mapping, trainer, settings))
    by_name = {spec.name: spec for spec in results}
    if (
        "rho_Q" in by_name
        and by_name["rho_Q"].mapping.maptype.name == "abs_log"
        and "rho_Q_sign" not in by_name
    ):
        raise ConfigError(
            f"{path}: rho_Q has maptype 'abs_log' (its magnitude) but there is no "
            "rho_Q_sign result for its sign; add one, or learn rho_Q signed "
            "(maptype 'asinh', see 'neurosynchro init-nndir')"
        )
    expected = n_quadratic_features(len(params))
    for i, spec in enumerate(results):
        got = len(spec.mapping.scale_coefficients)
        if spec.mapping.scaled and need_bounds and got != expected:
            raise ConfigError(
                f"{path}: [[results]] #{i + 1} ({spec.name}): {got} "
                f"scale_coefficients for {len(params)} inputs; expected {expected} "
                "(run 'neurosynchro lock-domain-range' again)"
            )
    names = [m.name for m in params] + [r.name for r in results]
    absent = [n for n in REQUIRED_PARAMS if n not in names[: len(params)]]
    if absent:
        raise ConfigError(
            f"{path}: no [[params]] table for "
            + " or ".join(absent)
            + "; every network takes the inputs "
            + " and ".join(REQUIRED_PARAMS)
        )
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"{path}: {', '.join(duplicated)} listed more than once")

    # Plain Python numbers: tomlkit's wrapped values are slow in arithmetic.
    signs = {
        str(k): int(v) if isinstance(v, int) else v
        for k, v in document.get("signs", {}).items()
    }
    if not signs:
        # Predecessor configs carry no signs; its transform kept only rows
        # with these.
        signs = dict(LEGACY_SIGNS)
    needed = [k for k in SIGNED if k != "rho_V"]
    if any(spec.name == "rho_V" for spec in results):
        needed.append("rho_V")
    bad = [k for k in needed if signs.get(k) not in (1, -1)]
    if bad:
        raise ConfigError(
            f"{path}: [signs] needs +1 or -1 for each of " + ", ".join(bad)
        )
    training = dict(document.get("training", {}))
    domain = [
        _domain_limit(t, f"{path}: [[domain]] #{i + 1}", [m.name for m in params])
        for i, t in enumerate(
            _tables(document, "domain", path) if "domain" in document else []
        )
    ]
    return NetworkConfig(path, params, results, signs, training, document, domain)


def init_nndir(nndir):
    """Create a network directory holding the default config.

    The directory may exist but must not already hold a config.
    """
    nndir = Path(nndir)
    if nndir.exists() and not nndir.is_dir():
        raise ConfigError(f"{nndir}: exists and is not a directory")
    path = nndir / CONFIG_NAME
    if path.exists():
        raise ConfigError(f"{path}: already exists; not overwriting it")
    nndir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, DEFAULT_CONFIG)
    return path


def hash_files(files):
    """SHA-256 over the bytes of ``files``, in order: training-set provenance."""
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def lock_domain_range(training_set, nndir):
    """Write bounds, normalization and signs from a transformed table.

    Parameters
    ----------
    training_set : neurosynchro.samples.TrainingSet
        The transformed training set (output of ``neurosynchro transform``).
    nndir : str or Path
        Network directory whose config is updated in place (atomically,
        keeping comments and order).

    Returns
    -------
    NetworkConfig
        The locked config.

    Notes
    -----
    Inputs of the table that the config does not list are appended as new
    ``[[params]]`` tables. Results the table does not have (``rho_Q``,
    ``rho_V`` and ``rho_Q_sign`` for a six-result table) are removed from
    the config, and the approximator then returns NaN for the rotativities.
    """
    from .transform import signs_from_table

    path = config_path(nndir)
    document = read_document(path)
    table = training_set.table
    source = training_set.files[0] if training_set.files else "table"

    params = _tables(document, "params", path)
    listed = [str(t.get("name")) for t in params]
    missing = [n for n in listed if n not in training_set.inputs]
    if missing:
        raise ConfigError(
            f"{path}: the config names input parameter(s) "
            + ", ".join(missing)
            + f" that {source} lacks; its inputs are "
            + ", ".join(training_set.inputs)
        )
    for name in training_set.inputs:
        if name not in listed:
            item = tomlkit.table()
            item["name"] = name
            item["maptype"] = (
                "log" if training_set.suffixes[name] == "log" else "direct"
            )
            params.append(item)
            logger.warning("added input parameter %s to %s", name, path)

    results = _tables(document, "results", path)
    kept = []
    for item in results:
        name = str(item.get("name"))
        if name in training_set.results:
            kept.append(item)
        elif name in ROTATIVITY_RESULTS:
            logger.warning("%s: not in the training set, removed from %s", name, path)
        else:
            raise ConfigError(
                f"{path}: result {name!r} is not a column of {source}; its results "
                "are " + ", ".join(training_set.results)
            )
    if len(kept) != len(results):
        array = tomlkit.aot()
        for item in kept:
            array.append(item)
        document["results"] = array
        results = document["results"]

    def lock(item, where, inputs=None):
        mapping = Mapping.from_dict(item, where, need_bounds=False)
        values = table[mapping.name].to_numpy()
        try:
            mapping.lock(values, inputs)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None
        for key, value in mapping.bounds_dict().items():
            item[key] = value
        return mapping.phys_to_norm(values)[0] if inputs is None else None

    columns = []
    for i, item in enumerate(params):
        where = f"{path}: [[params]] #{i + 1}"
        _check_param_table(item, where)
        columns.append(lock(item, where))
    # The normalized network inputs, for results with a row scale.
    inputs = np.stack(columns, axis=1)
    for i, item in enumerate(results):
        lock(item, f"{path}: [[results]] #{i + 1}", inputs)

    signs = signs_from_table(table, training_set.suffixes)
    if signs:
        record = tomlkit.table()
        for key in SIGNED:
            if key in signs:
                record[key] = signs[key]
        document["signs"] = record
    provenance = document.get("provenance") or tomlkit.table()
    provenance["neurosynchro_version"] = __version__
    if training_set.files:
        provenance["training_set_sha256"] = hash_files(training_set.files)
        provenance["training_set_rows"] = len(table)
    document["provenance"] = provenance

    # Check everything before replacing the file: a bad config is refused
    # with the user's file untouched.
    config = _checked_config(document, path, need_bounds=True)
    atomic_write_text(path, tomlkit.dumps(document))
    return config
