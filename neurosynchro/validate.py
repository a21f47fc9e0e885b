"""Accuracy of a network directory against a raw table of exact coefficients.

``neurosynchro validate NNDIR DATADIR`` evaluates the networks of ``NNDIR``
through :class:`~neurosynchro.approximator.PhysicalApproximator` on the rows of
a *raw* training set (the eight, or six, physical coefficients at nu = 1 Hz and
n_e = 1 cm^-3, as written by ``make-training-set`` or a detailed calculator)
and reports, per coefficient, the distribution of the relative error
``|approx / exact - 1|``. With ``--fits`` it does the same for the published
fitting formulas (:mod:`neurosynchro.fits`) on the same rows, the bar a
network has to beat.

The comparison is made in physical units, at a real frequency, field and
density, so that the approximator's rescaling is exercised: each row's
harmonic number ``s = nu / nu_cyc`` fixes ``B = 2 pi m_e c nu / (e s)`` at the
chosen ``nu`` (or ``nu`` at a chosen ``B``), and the table's values are
rescaled to the same conditions (emissivities times ``n_e nu``, absorption
coefficients and rotativities times ``n_e / nu``; DESIGN.md, "Physics
conventions").
"""

import json
import logging
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .approximator import PhysicalApproximator
from .errors import NeurosynchroWarning, TableError, UsageError
from .fileio import atomic_path, atomic_write_text
from .physics import cyclotron_frequency
from .transform import BASIC_RESULTS, COEFFICIENTS, ROTATIVITIES, ROTATIVITY_RESULTS

logger = logging.getLogger(__name__)

#: Default observing frequency, Hz (the EHT's 230 GHz).
DEFAULT_NU = 230e9

#: Default electron density, cm^-3.
DEFAULT_N_E = 1e5

#: Coefficients that scale as ``n_e nu`` at fixed ``s`` and theta; the others
#: scale as ``n_e / nu``.
EMISSIVITIES = ("j_I", "j_Q", "j_V")

#: Percentiles of the relative error reported for each coefficient.
PERCENTILES = {"median": 50.0, "p95": 95.0, "p99": 99.0}

#: rho_Q rows count as "away from the zero crossing" where the exact
#: ``|rho_Q|`` exceeds this fraction of the exact ``|rho_V|`` (see
#: :func:`error_figures`).
SIGN_FLOOR = 0.01

#: Smallest relative error drawn on the log axes of the plots; exact
#: agreement would otherwise vanish from them.
PLOT_FLOOR = 1e-8

#: Published fits: the parameters each distribution needs from the table, and
#: those it takes from the table (or the generation record) when present.
FIT_PARAMETERS = {
    "thermal": (("theta_e",), ()),
    "powerlaw": (("p",), ("gamma_min", "gamma_max")),
    "kappa": (("kappa", "kappa_width"), ()),
}

#: Result columns found only in transformed tables.
INTERNAL_ONLY = set(BASIC_RESULTS + ROTATIVITY_RESULTS) - set(COEFFICIENTS)

#: Name of the record ``make-training-set`` writes beside its tables.
GENERATION_RECORD = "generation.toml"


@dataclass
class Comparison:
    """Exact and approximate coefficients on the rows of a raw table.

    Attributes
    ----------
    inputs : dict of str to ndarray
        The table's input columns (``s``, ``theta``, model parameters), each
        of shape ``(N,)``.
    scales : dict of str to str
        Input name -> ``"lin"`` or ``"log"`` (the table's sampling).
    nu, B, n_e : ndarray, shape ``(N,)``
        Frequency (Hz), field (Gauss) and density (cm^-3) of each row.
    exact : ndarray, shape ``(N, 8)``
        The table's coefficients rescaled to ``nu`` and ``n_e``, CGS; NaN
        columns for coefficients the table lacks.
    network : ndarray, shape ``(N, 8)``
        The approximator's coefficients at the same conditions.
    oos : ndarray of bool, shape ``(N,)``
        The approximator's out-of-sample flags.
    absent : dict
        Coefficient -> reason, for coefficients that cannot be compared at
        all for the network (missing from the table, or not learned).
    fits : ndarray, shape ``(N, 8)``, or None
        The published fits at the same conditions, if asked for.
    fits_absent : dict
        Coefficient -> reason, for coefficients the table lacks (the fits
        give all eight).
    distribution : str or None
        The fits' distribution.
    meta : dict
        Provenance: directories, conditions, row counts.
    """

    inputs: dict
    scales: dict
    nu: np.ndarray
    B: np.ndarray
    n_e: np.ndarray
    exact: np.ndarray
    network: np.ndarray
    oos: np.ndarray
    absent: dict = field(default_factory=dict)
    fits: np.ndarray | None = None
    fits_absent: dict = field(default_factory=dict)
    distribution: str | None = None
    meta: dict = field(default_factory=dict)


def relative_error(approx, exact):
    """``|approx / exact - 1|``, elementwise.

    Parameters
    ----------
    approx, exact : array_like
        Approximate and exact values, broadcastable together.

    Returns
    -------
    ndarray
        The relative error; NaN where either value is NaN, inf where
        ``exact`` is zero and ``approx`` is not. A wrong sign gives an error
        above 1.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.abs(np.asarray(approx, float) / np.asarray(exact, float) - 1)


def _number(value):
    """A float for JSON, or None for a non-finite value."""
    value = float(value)
    return value if np.isfinite(value) else None


def error_figures(approx, exact, usable, absent=None):
    """Relative-error statistics of each coefficient.

    Parameters
    ----------
    approx, exact : ndarray, shape ``(N, 8)``
        Approximate and exact coefficients, in :data:`COEFFICIENTS` order.
    usable : ndarray of bool, shape ``(N,)``
        Rows that may be compared (for a network: not out of sample).
    absent : dict, optional
        Coefficient -> reason for coefficients that cannot be compared.

    Returns
    -------
    dict
        Coefficient name -> dict with

        ``n``
            rows compared: usable, with a finite, non-zero exact value and a
            finite approximation;
        ``median``, ``p95``, ``p99``, ``max``
            percentiles (numpy's default, linear interpolation) and maximum
            of ``|approx / exact - 1|`` over those rows (None when ``n`` is
            0);
        ``n_nan``
            usable rows with an exact value where the approximation is NaN
            (a fit's domain ends, say), left out of the figures;
        ``absent``
            None, or why the coefficient is not compared at all;

        and, for ``rho_Q``, ``sign_right`` (fraction of the ``n`` rows where
        the approximation has the exact sign), ``sign_right_away`` and
        ``n_away``: the same over the rows where the exact ``|rho_Q|``
        exceeds :data:`SIGN_FLOOR` times the exact ``|rho_V|``.

    Notes
    -----
    rho_Q changes sign inside the domain (for thermal electrons near
    ``nu ~ 2.45 Theta_e^2 sin(theta) nu_cyc``; see the symphony tables'
    README). Near that crossing rho_Q passes linearly through zero, so the
    sign of a row close to it is decided by errors far below any
    approximation's accuracy, and the relative error there is unbounded. The
    second sign figure leaves those rows out. The scale is set by the
    Faraday rotation at the same point: where ``|rho_Q| < 0.01 |rho_V|``,
    the propagation modes are circular to within about 1% and conversion
    hardly matters to the transfer, so a wrong sign there is harmless.
    """
    absent = absent or {}
    figures = {}
    for column, name in enumerate(COEFFICIENTS):
        entry = {"n": 0, "n_nan": 0, "absent": absent.get(name)}
        entry.update({key: None for key in (*PERCENTILES, "max")})
        if name == "rho_Q":
            entry.update(sign_right=None, sign_right_away=None, n_away=0)
        figures[name] = entry
        if entry["absent"] is not None:
            continue
        with np.errstate(invalid="ignore"):
            has_exact = usable & np.isfinite(exact[:, column]) & (exact[:, column] != 0)
        finite = np.isfinite(approx[:, column])
        rows = has_exact & finite
        entry["n_nan"] = int((has_exact & ~finite).sum())
        entry["n"] = int(rows.sum())
        if not rows.any():
            continue
        errors = relative_error(approx[rows, column], exact[rows, column])
        values = np.percentile(errors, list(PERCENTILES.values()))
        entry.update(
            {key: _number(v) for key, v in zip(PERCENTILES, values, strict=True)}
        )
        entry["max"] = _number(errors.max())
        if name == "rho_Q":
            right = np.sign(approx[rows, column]) == np.sign(exact[rows, column])
            entry["sign_right"] = float(right.mean())
            rho_V = np.abs(exact[rows, COEFFICIENTS.index("rho_V")])
            with np.errstate(invalid="ignore"):
                away = np.abs(exact[rows, column]) > SIGN_FLOOR * rho_V
            entry["n_away"] = int(away.sum())
            if away.any():
                entry["sign_right_away"] = float(right[away].mean())
    return figures


def _read_record(datadir):
    """The ``make-training-set`` record of ``datadir``, or an empty dict."""
    path = Path(datadir) / GENERATION_RECORD
    if not path.is_file():
        return {}
    import tomlkit

    try:
        return tomlkit.parse(path.read_text(encoding="utf-8")).unwrap()
    except (tomlkit.exceptions.ParseError, UnicodeDecodeError) as error:
        logger.warning("%s: unreadable (%s); ignored", path, error)
        return {}


def guess_distribution(inputs, record=None):
    """The electron distribution of a table, from its input columns.

    Parameters
    ----------
    inputs : sequence of str
        The table's input column names.
    record : dict, optional
        The table's generation record; its ``distribution`` is used first.

    Returns
    -------
    str
        ``"thermal"`` (a ``theta_e`` column), ``"powerlaw"`` (``p``) or
        ``"kappa"`` (``kappa`` and ``kappa_width``).

    Raises
    ------
    UsageError
        If the columns match no distribution, or more than one.
    """
    if record and record.get("distribution") in FIT_PARAMETERS:
        return record["distribution"]
    matches = [
        name
        for name, (required, _) in FIT_PARAMETERS.items()
        if all(column in inputs for column in required)
    ]
    if len(matches) == 1:
        return matches[0]
    expected = "; ".join(
        f"{' and '.join(required)} for {name}"
        for name, (required, _) in FIT_PARAMETERS.items()
    )
    found = "matches " + " and ".join(matches) if matches else "matches none"
    raise UsageError(
        f"cannot tell the distribution for --fits from the input columns "
        f"{', '.join(inputs)} ({found}; expected {expected}); pass --distribution"
    )


def _fit_parameters(distribution, inputs, record):
    """Keyword arguments of :func:`neurosynchro.fits.fit_coefficients`."""
    required, optional = FIT_PARAMETERS[distribution]
    missing = [name for name in required if name not in inputs]
    if missing:
        raise TableError(
            f"--fits with the {distribution} distribution needs input column(s) "
            f"{', '.join(f'{n}(lin) or {n}(log)' for n in missing)}; the table "
            f"has {', '.join(inputs)}"
        )
    params = {name: inputs[name] for name in required}
    fixed = record.get("fixed", {}) if record else {}
    for name in optional:
        if name in inputs:
            params[name] = inputs[name]
        elif name in fixed:
            params[name] = float(fixed[name])
    # Power-law tables without these columns are taken to extend from
    # gamma = 1 with no upper cutoff (as the symphony tables do).
    if distribution == "powerlaw":
        params.setdefault("gamma_min", 1.0)
        params.setdefault("gamma_max", np.inf)
    return params


def _positive(name, value):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name}: expected a number, got {value!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise UsageError(f"{name}: expected a finite value > 0, got {value!r}")
    return value


def compare(
    nndir, datadir, nu=None, n_e=DEFAULT_N_E, B=None, fits=False, distribution=None
):
    """Evaluate a network directory (and optionally the fits) on a raw table.

    Parameters
    ----------
    nndir : str or Path
        Network directory (locked config and trained networks).
    datadir : str or Path
        Raw training set: a directory of ``*.txt`` tables (or one file) whose
        results are physical coefficients at nu = 1 Hz, n_e = 1 cm^-3.
    nu : float, optional
        Frequency, Hz (default :data:`DEFAULT_NU`, unless ``B`` is given).
    n_e : float
        Electron density, cm^-3 (default :data:`DEFAULT_N_E`).
    B : float, optional
        Magnetic field, Gauss. Each row's ``s`` then fixes its frequency,
        ``nu = s nu_cyc(B)``; give ``nu`` or ``B``, not both.
    fits : bool
        Also evaluate the published fitting formulas.
    distribution : {"thermal", "powerlaw", "kappa"}, optional
        Distribution for the fits; default: from the table's generation
        record, else guessed from its input columns (:func:`guess_distribution`).

    Returns
    -------
    Comparison

    Raises
    ------
    TableError
        If the table lacks ``s``, ``theta`` or a model parameter of the
        networks, or holds no raw coefficient columns.
    UsageError
        Bad conditions or distribution.
    NetworkError, ConfigError
        If the network directory cannot be loaded.
    """
    from .samples import read_training_set

    if nu is not None and B is not None:
        raise UsageError(
            "nu and B: give one of them; each row's s = nu / nu_cyc(B) fixes the other"
        )
    nu = _positive("nu", nu)
    B = _positive("B", B)
    n_e = _positive("n_e", n_e)
    if nu is None and B is None:
        nu = DEFAULT_NU
    if distribution is not None and distribution not in FIT_PARAMETERS:
        raise UsageError(
            f"distribution: expected one of {', '.join(FIT_PARAMETERS)}, got "
            f"{distribution!r}"
        )

    approximator = PhysicalApproximator(nndir)
    training_set = read_training_set(datadir)
    table = training_set.table
    inputs = training_set.inputs
    needed = ["s", "theta", *approximator.model_parameters]
    missing = [name for name in needed if name not in inputs]
    if missing:
        raise TableError(
            f"{datadir}: the network directory {nndir} needs input column(s) "
            f"{', '.join(f'{n}(lin) or {n}(log)' for n in missing)}; the table "
            f"has inputs {', '.join(inputs) or 'none'}"
        )
    results = training_set.results
    internal = [
        name
        for name in results + training_set.meta
        if name in INTERNAL_ONLY or name.startswith("sign_")
    ]
    if internal:
        raise TableError(
            f"{datadir}: columns {', '.join(internal)} belong to a transformed "
            "table; validate needs a raw table, not a transformed one (the "
            "physical coefficients, as given to transform)"
        )
    if not any(name in results for name in COEFFICIENTS):
        raise TableError(
            f"{datadir}: no raw coefficient columns ({', '.join(COEFFICIENTS)} "
            f"with suffix (res)); got results {', '.join(results) or 'none'}. "
            "validate needs a raw table, not a transformed one"
        )
    extra = [name for name in inputs if name not in needed]
    if extra:
        warnings.warn(
            f"{datadir}: input column(s) {', '.join(extra)} are not parameters "
            f"of {nndir}; the networks cannot follow them",
            NeurosynchroWarning,
            stacklevel=2,
        )

    columns = {name: table[name].to_numpy(dtype=float) for name in inputs}
    s = columns["s"]
    if B is None:
        nu = np.full(s.shape, nu)
        B = nu / (s * cyclotron_frequency(1.0))
    else:
        B = np.full(s.shape, B)
        nu = s * cyclotron_frequency(B)
    n_e = np.full(s.shape, n_e)

    # The table's values are for nu = 1 Hz, n_e = 1 cm^-3.
    exact = np.full((len(table), len(COEFFICIENTS)), np.nan)
    absent = {}
    for column, name in enumerate(COEFFICIENTS):
        if name not in results:
            absent[name] = "not in the table"
            continue
        scale = n_e * nu if name in EMISSIVITIES else n_e / nu
        exact[:, column] = table[name].to_numpy(dtype=float) * scale
    fits_absent = dict(absent)
    if not approximator.config.has_rotativities:
        for name in ROTATIVITIES:
            absent.setdefault(name, "the networks have no rotativities")

    params = {name: columns[name] for name in approximator.model_parameters}
    with warnings.catch_warnings():
        # Out-of-sample rows are counted and reported, not warned about, and
        # missing rotativities are reported as absent.
        warnings.simplefilter("ignore", NeurosynchroWarning)
        network, oos = approximator.compute_all_nontrivial(
            nu, B, n_e, columns["theta"], **params
        )
    logger.info(
        "%s: %d rows from %d file(s); %d out of the networks' sample",
        datadir,
        len(table),
        len(training_set.files),
        int(oos.sum()),
    )

    comparison = Comparison(
        inputs=columns,
        scales={name: training_set.suffixes[name] for name in inputs},
        nu=nu,
        B=B,
        n_e=n_e,
        exact=exact,
        network=network,
        oos=oos,
        absent=absent,
        fits_absent=fits_absent,
    )
    if fits:
        from .fits import fit_coefficients

        record = _read_record(datadir)
        comparison.distribution = distribution or guess_distribution(inputs, record)
        fit_params = _fit_parameters(comparison.distribution, columns, record)
        logger.info(
            "fits: %s distribution, parameters %s",
            comparison.distribution,
            ", ".join(fit_params),
        )
        comparison.fits = fit_coefficients(
            comparison.distribution, nu, B, n_e, columns["theta"], **fit_params
        )
    comparison.meta = {
        "nndir": str(nndir),
        "datadir": str(datadir),
        "rows": int(len(table)),
        "oos": int(oos.sum()),
        "nu": _condition(nu),
        "B": _condition(B),
        "n_e": _condition(n_e),
        "distribution": comparison.distribution,
        "sign_floor": SIGN_FLOOR,
        "neurosynchro_version": __version__,
    }
    return comparison


def _condition(values):
    """One number if all rows share it, else ``"per row"``."""
    return float(values[0]) if np.all(values == values[0]) else "per row"


def figures(comparison):
    """The validation figures of a :class:`Comparison`, as a JSON-ready dict.

    Returns
    -------
    dict
        Top level: each coefficient name (``j_I`` ... ``rho_V``) -> the
        network's figures (see :func:`error_figures`); ``"fits"``: None, or
        ``{"distribution": ..., j_I: {...}, ...}`` for the fits on the same
        rows; ``"meta"``: directories, conditions (``nu``, ``B``, ``n_e``:
        a number, or ``"per row"``), ``rows`` and ``oos`` (rows out of the
        networks' sample).

    Notes
    -----
    The fits are compared on the same rows as the networks: rows out of the
    networks' sample are left out of both.
    """
    usable = ~comparison.oos
    document = error_figures(
        comparison.network, comparison.exact, usable, comparison.absent
    )
    document["fits"] = None
    if comparison.fits is not None:
        fit_figures = error_figures(
            comparison.fits, comparison.exact, usable, comparison.fits_absent
        )
        for entry in fit_figures.values():
            if entry["absent"] is None and entry["n"] == 0 and entry["n_nan"]:
                entry["absent"] = "no fit (NaN)"
        document["fits"] = {"distribution": comparison.distribution, **fit_figures}
    document["meta"] = dict(comparison.meta)
    return document


def validate(
    nndir, datadir, nu=None, n_e=DEFAULT_N_E, B=None, fits=False, distribution=None
):
    """Accuracy figures of a network directory on a raw table.

    Parameters are those of :func:`compare`; the result is that of
    :func:`figures`.

    Examples
    --------
    >>> report = validate("nn", "symphony/thermal.txt", fits=True)  # doctest: +SKIP
    >>> report["j_I"]["median"], report["fits"]["j_I"]["median"]  # doctest: +SKIP
    """
    return figures(
        compare(
            nndir, datadir, nu=nu, n_e=n_e, B=B, fits=fits, distribution=distribution
        )
    )


def _percent(value):
    return "-" if value is None else f"{100 * value:.3g}%"


def _block(title, entries):
    header = ("coefficient", "n", "median", "p95", "p99", "max", "sign right")
    lines = [
        title,
        "  ".join(f"{h:>11}" if i else f"{h:<11}" for i, h in enumerate(header)),
    ]
    for name in COEFFICIENTS:
        entry = entries[name]
        if entry["absent"] is not None:
            lines.append(f"{name:<11}  absent ({entry['absent']})")
            continue
        cells = [str(entry["n"])]
        cells += [_percent(entry[key]) for key in (*PERCENTILES, "max")]
        if name == "rho_Q":
            sign = _percent(entry["sign_right"])
            if entry["sign_right_away"] is not None:
                sign += f" ({_percent(entry['sign_right_away'])})"
            cells.append(sign)
        line = f"{name:<11}  " + "  ".join(f"{cell:>11}" for cell in cells)
        if entry["n_nan"]:
            line += f"  ({entry['n_nan']} NaN left out)"
        lines.append(line.rstrip())
    return lines


def format_table(figures):
    """An aligned text table of the figures :func:`validate` returns.

    Parameters
    ----------
    figures : dict
        As returned by :func:`validate` or :func:`figures`.

    Returns
    -------
    str
        One block for the networks and, if present, one for the fits: per
        coefficient the rows compared and the median, 95th and 99th
        percentile and maximum relative error in percent; for rho_Q the
        fraction of rows with the right sign, then in brackets the same
        away from the zero crossing.
    """
    meta = figures.get("meta", {})
    conditions = ", ".join(
        f"{key} = {meta[key]:.4g} {unit}"
        if isinstance(meta.get(key), float)
        else f"{key} {meta[key]}"
        for key, unit in (("nu", "Hz"), ("B", "G"), ("n_e", "cm^-3"))
        if key in meta
    )
    title = (
        f"network {meta.get('nndir', '?')}: {meta.get('rows', '?')} rows, "
        f"{meta.get('oos', '?')} out of sample; {conditions}"
    )
    lines = _block(title, figures)
    if figures.get("fits"):
        lines.append("")
        lines += _block(
            f"fits ({figures['fits']['distribution']}) on the same rows",
            figures["fits"],
        )
    lines.append("")
    lines.append(
        "relative error |approx/exact - 1|; rho_Q sign in brackets: rows with "
        f"|rho_Q| > {SIGN_FLOOR:g} |rho_V|"
    )
    return "\n".join(lines)


def plot_errors(comparison, outdir):
    """PNG plots of relative error against each input parameter.

    Parameters
    ----------
    comparison : Comparison
    outdir : str or Path
        Directory for the plots (created if needed); one file
        ``error_vs_NAME.png`` per input, each with a panel per coefficient
        (log y axis; log x axis for log-sampled inputs). Errors below
        :data:`PLOT_FLOOR` are drawn at it.

    Returns
    -------
    list of Path
        The files written (atomically).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, NullLocator

    from .fileio import make_directory

    outdir = make_directory(outdir, "--plots")
    usable = ~comparison.oos
    series = [("network", comparison.network, comparison.absent, "C0")]
    if comparison.fits is not None:
        series.append(("fits", comparison.fits, comparison.fits_absent, "C1"))
    written = []
    for parameter, values in comparison.inputs.items():
        figure = Figure(figsize=(13, 6))
        FigureCanvasAgg(figure)
        axes = figure.subplots(2, 4, sharex=True)
        for axis, (column, name) in zip(
            axes.flat, enumerate(COEFFICIENTS), strict=True
        ):
            axis.set_title(name)
            drawn = False
            for label, approx, absent, colour in series:
                if name in absent:
                    continue
                errors = relative_error(approx[:, column], comparison.exact[:, column])
                rows = usable & np.isfinite(errors)
                if not rows.any():
                    continue
                axis.plot(
                    values[rows],
                    np.maximum(errors[rows], PLOT_FLOOR),
                    ".",
                    ms=2,
                    alpha=0.5,
                    color=colour,
                    label=label,
                )
                drawn = True
            if drawn:
                axis.set_yscale("log")
                # A handful of decade ticks; minor ticks on axes spanning
                # many decades make drawing several times slower.
                axis.yaxis.set_major_locator(LogLocator(numticks=6))
                axis.yaxis.set_minor_locator(NullLocator())
            else:
                axis.set_yticks([])
                axis.text(
                    0.5,
                    0.5,
                    "absent",
                    ha="center",
                    va="center",
                    transform=axis.transAxes,
                )
            if comparison.scales.get(parameter) == "log":
                axis.set_xscale("log")
                axis.xaxis.set_minor_locator(NullLocator())
        for axis in axes[-1]:
            axis.set_xlabel(parameter)
        for axis in axes[:, 0]:
            axis.set_ylabel("|approx/exact - 1|")
        if len(series) > 1:
            axes.flat[0].legend(loc="best", markerscale=4)
        # Fixed margins: tight_layout costs seconds per figure on log axes.
        figure.subplots_adjust(
            left=0.07, right=0.99, bottom=0.09, top=0.95, wspace=0.3, hspace=0.2
        )
        path = outdir / f"error_vs_{parameter}.png"
        with atomic_path(path, suffix=".png.tmp") as tmp:
            figure.savefig(tmp, format="png", dpi=80)
        written.append(path)
    return written


def add_arguments(parser):
    """Add the ``validate`` arguments to an argparse parser."""
    parser.add_argument("nndir", metavar="NNDIR", help="trained network directory")
    parser.add_argument(
        "datadir",
        metavar="DATADIR",
        help="raw training set (physical coefficients at nu = 1 Hz, n_e = 1)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    parser.add_argument(
        "--plots", metavar="DIR", help="write PNG plots of error against each input"
    )
    parser.add_argument(
        "--fits",
        action="store_true",
        help="also report the published fitting formulas on the same rows",
    )
    parser.add_argument(
        "--distribution",
        choices=tuple(FIT_PARAMETERS),
        help="distribution for --fits (default: guessed from the input columns)",
    )
    conditions = parser.add_mutually_exclusive_group()
    conditions.add_argument(
        "--nu",
        type=float,
        metavar="HZ",
        help=f"frequency (default {DEFAULT_NU:g}); each row's s sets its B",
    )
    conditions.add_argument(
        "--B",
        type=float,
        metavar="GAUSS",
        help="field strength instead of --nu; each row's s sets its frequency",
    )
    parser.add_argument(
        "--n-e",
        dest="n_e",
        type=float,
        default=DEFAULT_N_E,
        metavar="CM3",
        help=f"electron density, cm^-3 (default {DEFAULT_N_E:g})",
    )


def run(args):
    """Run ``validate`` from parsed arguments; return the exit status.

    The table goes to stdout, diagnostics to stderr (through logging).
    """
    if args.distribution is not None and not args.fits:
        raise UsageError("--distribution: only used with --fits")
    comparison = compare(
        args.nndir,
        args.datadir,
        nu=args.nu,
        n_e=args.n_e,
        B=args.B,
        fits=args.fits,
        distribution=args.distribution,
    )
    document = figures(comparison)
    sys.stdout.write(format_table(document) + "\n")
    if args.json:
        text = json.dumps(document, indent=2, allow_nan=False)
        atomic_write_text(args.json, text + "\n")
        logger.info("wrote %s", args.json)
    if args.plots:
        for path in plot_errors(comparison, args.plots):
            logger.info("wrote %s", path)
    return 0
