"""End-to-end test problems: polarized transfer along one ray, exact vs networks.

A test problem is one ray through a model plasma, tabulated in the
training-set table format (tab-separated, one header line, role suffixes;
see :mod:`neurosynchro.samples`). ``neurosynchro test-problem NNDIR FILE``
integrates the polarized transfer equation along it twice, once with the
exact coefficients in the file and once with those of the networks of
``NNDIR``, and compares the emergent Stokes parameters. It is the successor
of the predecessor's ``test-grtrans`` command (neurosynchro 0.1.x), which did
the same with grtrans; its files load unchanged. ``neurosynchro
make-test-problem`` writes such a file with the built-in calculator.

File format
-----------
One row per sample point along the ray, ordered by ``d``:

``s(log)``, ``theta(lin)``
    Harmonic number ``s = nu / nu_cyc`` at the ray's one observing frequency
    ``nu`` (see below), and the angle between the line of sight and the
    field, radians. (Either role suffix, ``lin`` or ``log``, is accepted for
    any input.)
model parameters, e.g. ``theta_e(log)``, ``p(lin)``
    Every other input column; passed by name to
    :meth:`~neurosynchro.PhysicalApproximator.compute_all_nontrivial`.
``d(meta)``
    Position along the ray, cm, strictly increasing (from 0 by convention;
    only differences matter).
``psi(meta)``
    Angle, radians, from the fixed sky basis' +Q axis to the projected
    field, in the sense of :func:`~neurosynchro.detrivialize_stokes_basis`.
``n_e(meta)``
    Electron density, cm^-3.
``time_ms(meta)``
    Cost of the exact calculation of the row, ms (optional; only used for
    the speed-up; 0 if unknown).
``nu(meta)``
    Optional, and new in this version: the observing frequency, Hz, the same
    on every row. Without it (as in the predecessor's files) the frequency is
    :data:`DEFAULT_NU` = 10 GHz, the predecessor's default.
``j_I(res)`` ... ``rho_V(res)``
    The eight exact coefficients at ``nu = 1 Hz`` and ``n_e = 1 cm^-3``.

Physical conditions follow the predecessor exactly: the whole ray is seen at
one frequency ``nu``, so each row's field is ``B = 2 pi m_e c nu / (e s)``;
the exact coefficients are rescaled to that ``nu`` and the row's ``n_e``
(emissivities times ``n_e nu``, the rest times ``n_e / nu``; DESIGN.md,
"Physics conventions"), and the networks are evaluated at ``(nu, B, n_e,
theta, parameters)``.

Segments follow the predecessor too (it handed grtrans' "formal" integrator
the reversed arrays): radiation enters at the first row (smallest ``d``)
with no incoming intensity and leaves towards the observer past the last
row; the segment from ``d[i-1]`` to ``d[i]`` has the constant coefficients of
row ``i``. The first row only marks where the ray starts; its coefficients
are never used. Each segment is then solved exactly
(:func:`neurosynchro.transfer.integrate_ray`).

Differences from ``test-grtrans``, which matter only when comparing numbers
with what it printed (the exact-versus-networks comparison means the same):

- ``psi``: the predecessor rotated the linear terms by ``2 (pi - psi)``, so
  its ``psi`` is minus the ``psi`` used here: read here, its files describe
  a field turning the other way on the sky. Negate ``psi(meta)`` to
  reproduce its geometry.
- grtrans' formal method approximated each segment's source term by
  ``O(dl) j dl`` and dropped trailing rows with ``j_I = 0``; here every
  segment is integrated exactly and no row is dropped.
- ``--nu`` is in Hz (the predecessor's ``--frequency`` was in GHz).
"""

import argparse
import json
import logging
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .errors import (
    CalculationError,
    NetworkError,
    NeurosynchroWarning,
    TableError,
    UsageError,
)
from .fileio import atomic_write_text
from .physics import cyclotron_frequency, to_physical
from .samples import ROLES, read_table, write_table
from .stokes import detrivialize_stokes_basis
from .transfer import integrate_ray
from .transform import COEFFICIENTS

__all__ = [
    "DEFAULT_NU",
    "DEFAULT_TOLERANCE",
    "TestProblem",
    "read_test_problem",
    "run_test_problem",
    "passes",
    "format_result",
    "make_test_problem",
    "shipped_test_problem",
]

logger = logging.getLogger(__name__)

#: Observing frequency, Hz, of a file without a ``nu(meta)`` column: the
#: predecessor's ``test-grtrans --frequency`` default (10 GHz).
DEFAULT_NU = 1e10

#: Accuracy target of a test problem (issue 6): each Stokes parameter within
#: 0.5% of the exact-coefficient result.
DEFAULT_TOLERANCE = 0.005

#: Q, U and V are compared with their own magnitude where it exceeds this
#: fraction of I, and with I elsewhere (a nearly vanishing Q has no meaningful
#: relative error).
POLARIZED_FLOOR = 0.01

#: Names of the emergent Stokes parameters, in order.
STOKES = ("I", "Q", "U", "V")

# Columns every test problem has, with the role each must have.
_REQUIRED = {"s": "input", "theta": "input", "d": "meta", "psi": "meta", "n_e": "meta"}
_REQUIRED.update({name: "result" for name in COEFFICIENTS})
_OPTIONAL = {"time_ms": "meta", "nu": "meta"}

# Role -> the suffix(es) to show in messages.
_SHOW_ROLE = {"input": "(lin) or (log)", "meta": "(meta)", "result": "(res)"}

# The approximator is timed over repeated calls until this many seconds have
# passed (or _TIMING_CALLS calls), and the fastest call counts: the first one
# also pays for warming caches.
_TIMING_SECONDS = 0.5
_TIMING_CALLS = 5


class TestProblem:
    """One ray of a test problem, as read from its file.

    Attributes
    ----------
    path : Path
        The file.
    s, theta, d, psi, n_e : ndarray, shape (N,)
        Columns of the same names (see the module docstring for units).
    params : dict
        Model-parameter name -> ndarray of shape (N,), in column order.
    coefficients : ndarray, shape (N, 8)
        The eight exact coefficients at nu = 1 Hz and n_e = 1 cm^-3, in the
        order of :data:`neurosynchro.transform.COEFFICIENTS`.
    time_ms : ndarray of shape (N,), or None
        Cost of each row's exact calculation, ms, if the file has it.
    nu : float or None
        Observing frequency from the ``nu(meta)`` column, Hz, if present.
    """

    # Not a test class, despite its name (pytest collects ``Test*``).
    __test__ = False

    def __init__(
        self, path, s, theta, d, psi, n_e, params, coefficients, time_ms=None, nu=None
    ):
        self.path = path
        self.s = s
        self.theta = theta
        self.d = d
        self.psi = psi
        self.n_e = n_e
        self.params = params
        self.coefficients = coefficients
        self.time_ms = time_ms
        self.nu = nu

    def __len__(self):
        return self.s.size

    def field_strength(self, nu):
        """Field of each row at the observing frequency ``nu``, Gauss.

        ``B = nu / (s nu_cyc(1 G))`` with ``nu_cyc = e B / (2 pi m_e c)``.
        """
        return nu / (self.s * cyclotron_frequency(1.0))

    def exact(self, nu):
        """The exact coefficients in physical units at ``nu`` and each ``n_e``.

        Returns
        -------
        ndarray, shape (N, 8)
            Emissivities (times ``n_e nu``) in erg s^-1 cm^-3 Hz^-1 sr^-1; the
            rest (times ``n_e / nu``) in cm^-1.
        """
        return to_physical(self.coefficients, nu, self.n_e)


#: Folder of the test problems shipped with the package.
SHIPPED_DIR = Path(__file__).resolve().parent / "data"


def shipped_test_problem(name):
    """Path of a test problem shipped with the package.

    Parameters
    ----------
    name : str
        ``"thermal"``, ``"powerlaw"`` or ``"kappa"``: the file
        ``neurosynchro/data/testproblem-NAME.txt``.

    Raises
    ------
    UsageError
        If no such file is shipped (the message lists those that are).
    """
    path = SHIPPED_DIR / f"testproblem-{name}.txt"
    if not path.is_file():
        names = sorted(
            p.stem.split("-", 1)[1] for p in SHIPPED_DIR.glob("testproblem-*.txt")
        )
        raise UsageError(
            f"no shipped test problem {name!r}; shipped: {', '.join(names) or 'none'}"
        )
    return path


def _resolve(path):
    """A file path; a bare shipped name (``thermal``) that is not a file maps to it."""
    path = Path(path)
    if not path.exists() and path.parent == Path(".") and path.suffix == "":
        candidate = SHIPPED_DIR / f"testproblem-{path.name}.txt"
        if candidate.is_file():
            return candidate
    return path


def _column_error(path, number, name, what):
    return TableError(f"{path}: line {number}, column {name}: {what}")


def read_test_problem(path):
    """Read and check a test-problem file.

    Parameters
    ----------
    path : str or Path
        A tab-separated table in the format of the module docstring, or the
        bare name of a shipped one (``"thermal"``, ``"powerlaw"``, ``"kappa"``;
        see :func:`shipped_test_problem`) if no such file exists.

    Returns
    -------
    TestProblem

    Raises
    ------
    TableError
        If the file is malformed (see :func:`neurosynchro.samples.read_table`),
        lacks a required column (all missing ones are named) or has one with
        the wrong role suffix, has fewer than two rows, ``d`` is not strictly
        increasing, a value is not finite, ``s`` or a time is not positive,
        ``n_e`` is negative, or ``nu(meta)`` is not one positive value.
    """
    path = _resolve(path)
    if not path.is_file():
        raise TableError(f"{path}: no such file (expected a test-problem table)")
    frame, suffixes = read_table(path)
    roles = {name: ROLES[suffix] for name, suffix in suffixes.items()}

    problems = []
    for name, role in list(_REQUIRED.items()) + list(_OPTIONAL.items()):
        if name not in roles:
            if name in _REQUIRED:
                problems.append(f"{name}{_SHOW_ROLE[role]}")
            continue
        if roles[name] != role:
            raise TableError(
                f"{path}: line 1: column {name}({suffixes[name]}) should be "
                f"{name}{_SHOW_ROLE[role]}"
            )
    if problems:
        raise TableError(
            f"{path}: line 1: missing column(s) {', '.join(problems)}; a test "
            "problem needs s, theta and the model parameters as inputs, d, psi "
            "and n_e as (meta) and the eight coefficients as (res)"
        )
    if len(frame) < 2:
        raise TableError(
            f"{path}: only {len(frame)} row; a ray needs at least two (the first "
            "row marks where it starts)"
        )

    def column(name):
        values = frame[name].to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _column_error(
                path, row + 2, name, f"expected a finite number, got {values[row]}"
            )
        return values

    def positive(name, values, strict):
        bad = values <= 0 if strict else values < 0
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            relation = "> 0" if strict else ">= 0"
            raise _column_error(
                path, row + 2, name, f"expected a value {relation}, got {values[row]}"
            )
        return values

    s = positive("s", column("s"), strict=True)
    theta = column("theta")
    d = column("d")
    steps = np.diff(d)
    if np.any(steps <= 0):
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise _column_error(
            path,
            row + 2,
            "d",
            f"positions along the ray must increase strictly; d = {d[row]!r} "
            f"follows d = {d[row - 1]!r} on the previous row",
        )
    psi = column("psi")
    n_e = positive("n_e", column("n_e"), strict=False)
    coefficients = np.column_stack([column(name) for name in COEFFICIENTS])
    alpha_I = COEFFICIENTS.index("alpha_I")
    positive("alpha_I", coefficients[:, alpha_I], strict=False)

    time_ms = None
    if "time_ms" in roles:
        time_ms = positive("time_ms", column("time_ms"), strict=False)
    nu = None
    if "nu" in roles:
        values = positive("nu", column("nu"), strict=True)
        differ = values != values[0]
        if differ.any():
            row = int(np.flatnonzero(differ)[0])
            raise _column_error(
                path,
                row + 2,
                "nu",
                f"the observing frequency must be the same on every row (s is "
                f"defined at one frequency); got {values[row]!r} after "
                f"{values[0]!r}",
            )
        nu = float(values[0])

    params = {
        name: frame[name].to_numpy(dtype=float)
        for name, role in roles.items()
        if role == "input" and name not in ("s", "theta")
    }
    return TestProblem(
        path, s, theta, d, psi, n_e, params, coefficients, time_ms=time_ms, nu=nu
    )


def _emergent(coefficients, problem):
    """Emergent (I, Q, U, V) of the ray for per-row coefficients (N, 8).

    Segment ``i`` runs from ``d[i-1]`` to ``d[i]`` with the coefficients of
    row ``i`` (the predecessor's rule; see the module docstring).
    """
    sky = detrivialize_stokes_basis(coefficients[1:], problem.psi[1:])
    return integrate_ray(sky, np.diff(problem.d))


def _approximator(nndir):
    if hasattr(nndir, "compute_all_nontrivial"):
        return nndir
    from .approximator import PhysicalApproximator

    return PhysicalApproximator(nndir)


def _evaluate(approximator, problem, nu):
    """Run the approximator on the ray; return coefficients, oos, best time (ms)."""
    parameters = getattr(approximator, "model_parameters", None)
    if parameters is not None and sorted(parameters) != sorted(problem.params):
        raise UsageError(
            f"{problem.path} has the model parameters "
            f"{', '.join(problem.params) or 'none'}, but the network directory "
            f"takes {', '.join(parameters) or 'none'}"
        )
    B = problem.field_strength(nu)
    arguments = (nu, B, problem.n_e, problem.theta)

    start = time.perf_counter()
    coefficients, oos = approximator.compute_all_nontrivial(
        *arguments, **problem.params
    )
    best = time.perf_counter() - start
    spent, calls = best, 1
    # The out-of-sample warning was given by the first call already.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        while spent < _TIMING_SECONDS and calls < _TIMING_CALLS:
            start = time.perf_counter()
            approximator.compute_all_nontrivial(*arguments, **problem.params)
            elapsed = time.perf_counter() - start
            best = min(best, elapsed)
            spent += elapsed
            calls += 1

    coefficients = np.asarray(coefficients, dtype=float)
    if coefficients.shape != (len(problem), len(COEFFICIENTS)):
        raise NetworkError(
            f"the approximator returned an array of shape {coefficients.shape}; "
            f"expected ({len(problem)}, {len(COEFFICIENTS)})"
        )
    rotativities = [COEFFICIENTS.index("rho_Q"), COEFFICIENTS.index("rho_V")]
    if np.all(np.isnan(coefficients[:, rotativities])):
        raise NetworkError(
            "the networks give no rotativities (rho_Q and rho_V are NaN: trained "
            "without them); a test problem needs all eight coefficients"
        )
    bad = ~np.all(np.isfinite(coefficients), axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise NetworkError(
            f"{problem.path}: line {row + 2}: the networks gave non-finite "
            f"coefficients for {int(bad.sum())} row(s), the first here"
        )
    return coefficients, np.asarray(oos, dtype=bool), 1e3 * best


def _number(value):
    """A float for JSON: None for NaN or infinity."""
    value = float(value)
    return value if math.isfinite(value) else None


def _by_stokes(values):
    return {name: _number(v) for name, v in zip(STOKES, values, strict=True)}


def run_test_problem(nndir, path, nu=None, tolerance=DEFAULT_TOLERANCE):
    """Integrate a test problem with the exact and the approximate coefficients.

    Parameters
    ----------
    nndir : str, Path or approximator
        Network directory, or any object with a
        ``compute_all_nontrivial(nu, B, n_e, theta, **params)`` method returning
        ``(coefficients (N, 8), oos (N,))`` as
        :class:`~neurosynchro.PhysicalApproximator` does.
    path : str or Path
        Test-problem file (format in the module docstring), or the name of a
        shipped one (:func:`read_test_problem`).
    nu : float, optional
        Observing frequency, Hz. Default: the file's ``nu(meta)`` column, or
        :data:`DEFAULT_NU` (10 GHz) if it has none.
    tolerance : float
        Relative tolerance of the pass criterion (see :func:`passes`).

    Returns
    -------
    dict
        ``exact``, ``approx``: emergent ``{"I", "Q", "U", "V"}``, erg s^-1
        cm^-2 Hz^-1 sr^-1; ``error``: ``|approx - exact| / |exact|`` of each;
        ``error_rel_I``: ``|approx - exact| / |exact I|`` of each;
        ``oos_fraction``: fraction of rows the approximator flagged out of
        sample; ``time_exact_ms`` (sum of ``time_ms``, or None),
        ``time_approx_ms`` (fastest of a few calls on the whole ray) and
        ``speedup``, their ratio (None without times); ``tolerance`` and
        ``pass`` (:func:`passes`); ``file``, ``nndir``, ``nu``, ``rows``,
        ``version``. Undefined numbers (a relative error of an exact zero) are
        None.

    Raises
    ------
    TableError
        For a malformed file (:func:`read_test_problem`).
    UsageError
        For a non-positive ``nu`` or ``tolerance``, or model parameters that
        differ from the network directory's.
    NetworkError
        If the networks give non-finite coefficients or no rotativities.
    """
    problem = read_test_problem(path)
    if nu is None:
        nu = problem.nu if problem.nu is not None else DEFAULT_NU
    elif problem.nu is not None and nu != problem.nu:
        logger.info(
            "%s was made for nu = %g Hz; integrating at nu = %g Hz instead",
            problem.path,
            problem.nu,
            nu,
        )
    nu = float(nu)
    if not (math.isfinite(nu) and nu > 0):
        raise UsageError(f"nu: expected a positive frequency in Hz, got {nu!r}")
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise UsageError(f"tolerance: expected a positive number, got {tolerance!r}")

    approximator = _approximator(nndir)
    exact = _emergent(problem.exact(nu), problem)
    coefficients, oos, time_approx_ms = _evaluate(approximator, problem, nu)
    approx = _emergent(coefficients, problem)

    difference = np.abs(approx - exact)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = difference / np.abs(exact)
        rel_I = difference / abs(exact[0])
    time_exact_ms = None if problem.time_ms is None else float(problem.time_ms.sum())
    speedup = None
    if time_exact_ms and time_approx_ms > 0:
        speedup = time_exact_ms / time_approx_ms
    result = {
        "file": str(problem.path),
        "nndir": str(getattr(approximator, "nn_dir", nndir)),
        "nu": nu,
        "rows": len(problem),
        "exact": _by_stokes(exact),
        "approx": _by_stokes(approx),
        "error": _by_stokes(own),
        "error_rel_I": _by_stokes(rel_I),
        "oos_fraction": float(np.mean(oos)),
        "time_exact_ms": time_exact_ms,
        "time_approx_ms": time_approx_ms,
        "speedup": speedup,
        "tolerance": tolerance,
        "version": __version__,
    }
    result["pass"] = passes(result, tolerance)
    return result


def passes(result, tolerance=DEFAULT_TOLERANCE):
    """Whether a test problem meets the accuracy target.

    Parameters
    ----------
    result : dict
        With ``exact`` and ``approx``, each a dict of ``I``, ``Q``, ``U``, ``V``
        (as :func:`run_test_problem` returns).
    tolerance : float
        Largest accepted relative error (default 0.5%).

    Returns
    -------
    bool
        True if ``|approx I - exact I| <= tolerance |exact I|`` and, for X in
        Q, U, V, ``|approx X - exact X| <= tolerance |exact X|`` where
        ``|exact X| > POLARIZED_FLOOR |exact I|`` (1%), else
        ``<= tolerance |exact I|``. False if a value is missing or not finite.
    """
    if isinstance(tolerance, bool) or not (
        isinstance(tolerance, (int, float)) and tolerance > 0
    ):
        raise UsageError(f"tolerance: expected a positive number, got {tolerance!r}")
    try:
        exact = np.array([result["exact"][k] for k in STOKES], dtype=float)
        approx = np.array([result["approx"][k] for k in STOKES], dtype=float)
    except (KeyError, TypeError) as error:
        raise UsageError(
            f"result: expected 'exact' and 'approx', each with I, Q, U, V ({error})"
        ) from None
    if not (np.all(np.isfinite(exact)) and np.all(np.isfinite(approx))):
        return False
    scale = np.abs(exact)
    faint = scale <= POLARIZED_FLOOR * scale[0]
    faint[0] = False
    scale[faint] = scale[0]
    return bool(np.all(np.abs(approx - exact) <= tolerance * scale))


def format_result(result):
    """A few lines of text describing a :func:`run_test_problem` result."""

    def row(label, values, spec):
        cells = [
            "n/a" if values[k] is None else format(values[k], spec) for k in STOKES
        ]
        return f"{label:<22s}" + "".join(f"{cell:>12s}" for cell in cells)

    lines = [
        f"{result['file']} at nu = {result['nu']:g} Hz, {result['rows']} rows",
        f"{'':22s}" + "".join(f"{k:>12s}" for k in STOKES),
        row("exact coefficients", result["exact"], ".4e"),
        row("networks", result["approx"], ".4e"),
        row("relative error", result["error"], ".2e"),
        row("error relative to I", result["error_rel_I"], ".2e"),
        f"out of sample: {100 * result['oos_fraction']:.1f}% of rows",
    ]
    if result["speedup"] is None:
        lines.append(
            f"coefficient time: networks {result['time_approx_ms']:.3g} ms "
            "(no exact times in the file)"
        )
    else:
        lines.append(
            f"coefficient time: exact {result['time_exact_ms']:.6g} ms, networks "
            f"{result['time_approx_ms']:.3g} ms: speed-up {result['speedup']:.3g}"
        )
    verdict = "pass" if result["pass"] else "FAIL"
    lines.append(f"target (each within {100 * result['tolerance']:g}%): {verdict}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Making test problems.

#: Default number of rows of a generated test problem.
DEFAULT_ROWS = 256

#: Default path length of a generated ray, cm. Only the product of the path
#: length and the density matters to the transfer; with 1e12 cm the peak
#: densities come out between about 1e2 and 1e8 cm^-3.
DEFAULT_LENGTH = 1e12

#: Target total optical depth (``sum alpha_I dl``) and Faraday depth (``sum
#: |rho| dl``, ``|rho| = sqrt(rho_Q^2 + rho_V^2)``, radians) of each regime.
DEPTHS = {"thin": 0.1, "thick": 10.0}

#: A regime counts as reached if the depth is on its side of this value.
REGIME_BOUNDARY = 1.0

#: Along the ray, ``log10 s`` spans this many decades around the centre; the
#: field is strongest (s smallest) at the peak of the field profile.
S_SPAN_DECADES = 1.0

#: Smallest and largest harmonic number a generated ray reaches. The default
#: training range is [3, 3e5] (neurosynchro/calc/sampling.py); staying inside
#: [10, 1e5] keeps the ray off the harmonic-line regime near s = 3 and off the
#: least accurate edge of a trained domain.
S_LIMITS = (10.0, 1e5)

#: Number of log-spaced harmonic-number centres tried by the search (see
#: :func:`make_test_problem`), and of coarse points along the ray per try.
S_CENTER_CANDIDATES = 9
SEARCH_POINTS = 16

#: Angle between the line of sight and the field: ``THETA_MID + THETA_SWING
#: sin(...)``, within [0.25, 1.45] rad, inside the default [0.05, pi/2].
THETA_MID = 0.85
THETA_SWING = 0.6

#: Electron energy levels: each distribution parameter runs, along the ray,
#: between the two values given here (``lin`` or ``log`` interpolation, as
#: its training range is sampled), from the first at the ray's coolest point
#: to the second at its hottest, most energetic one: the thermal temperature
#: theta_e, the power-law index p (harder when hotter), the kappa index
#: (smaller: a stronger tail) and its width w. Low energies make Faraday
#: rotation strong relative to absorption, high energies weak. All values
#: lie inside the default training ranges: theta_e [0.5, 100], p [1.5, 5],
#: kappa [3, 7], kappa_width [1, 50].
ENERGY_LEVELS = {
    "thermal": {
        "low": {"theta_e": (0.8, 4.0)},
        "mid": {"theta_e": (2.0, 40.0)},
        "high": {"theta_e": (10.0, 90.0)},
    },
    "powerlaw": {
        "low": {"p": (4.5, 3.5)},
        "mid": {"p": (3.2, 2.2)},
        "high": {"p": (2.4, 1.6)},
    },
    "kappa": {
        "low": {"kappa": (6.5, 4.5), "kappa_width": (1.2, 5.0)},
        "mid": {"kappa": (5.5, 3.5), "kappa_width": (3.0, 30.0)},
        "high": {"kappa": (4.5, 3.2), "kappa_width": (10.0, 45.0)},
    },
}

#: Energy level preferred by the search when others do no better.
DEFAULT_ENERGY = "mid"

# The search prefers DEFAULT_ENERGY unless another level brings the depth
# ratio closer by more than this factor.
_ENERGY_PREFERENCE = 1.5

#: Density floor relative to the peak, so that the whole ray radiates.
DENSITY_FLOOR = 0.05


def _bump(x, center, width):
    return np.exp(-0.5 * ((x - center) / width) ** 2)


class RayProfile:
    """Smooth profiles along a generated ray, as functions of ``x = d / L``.

    The density and the field strength each peak once, at seeded places; the
    distribution parameters follow a third bump (the "heat" profile, 0 to 1)
    between the values of an energy level (:data:`ENERGY_LEVELS`); the angle
    to the line of sight swings through most of [0, pi/2] and the projected
    field turns on the sky by 1.5-3 rad. The seed draws the positions, widths
    and phases.

    Parameters
    ----------
    distribution : str
        ``"thermal"``, ``"powerlaw"`` or ``"kappa"``.
    seed : int
        Seed of the shape parameters.
    """

    def __init__(self, distribution, seed):
        rng = np.random.default_rng(seed)
        self.distribution = distribution
        self.density = (rng.uniform(0.35, 0.65), rng.uniform(0.15, 0.25))
        self.field = (rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.35))
        self.heat = (rng.uniform(0.35, 0.65), rng.uniform(0.15, 0.3))
        self.theta_cycles = rng.uniform(0.5, 1.0)
        self.theta_phase = rng.uniform(0.0, 2 * np.pi)
        self.psi_start = rng.uniform(0.0, np.pi)
        self.psi_turn = rng.uniform(1.5, 3.0)

    def density_shape(self, x):
        """Electron density relative to its peak, in [DENSITY_FLOOR, 1]."""
        return DENSITY_FLOOR + (1 - DENSITY_FLOOR) * _bump(x, *self.density)

    def s(self, x, s_center):
        """Harmonic number: ``s_center`` times 10^(+-S_SPAN_DECADES / 2)."""
        field = _bump(x, *self.field)
        return s_center * 10.0 ** (S_SPAN_DECADES * (0.5 - field))

    def theta(self, x):
        """Angle between the line of sight and the field, radians."""
        phase = 2 * np.pi * self.theta_cycles * x + self.theta_phase
        return THETA_MID + THETA_SWING * np.sin(phase)

    def psi(self, x):
        """Sky angle of the projected field, radians (turning along the ray)."""
        return self.psi_start + self.psi_turn * x + 0.3 * np.sin(3 * np.pi * x)

    def params(self, x, energy):
        """The distribution's model parameters along the ray at an energy level."""
        from .calc.sampling import DEFAULT_RANGES

        heat = _bump(x, *self.heat)
        ranges = DEFAULT_RANGES[self.distribution]
        values = {}
        for name, (cool, hot) in ENERGY_LEVELS[self.distribution][energy].items():
            if ranges[name].sampling == "log":
                values[name] = cool * (hot / cool) ** heat
            else:
                values[name] = cool + (hot - cool) * heat
        return values


def _check_choice(option, value, choices):
    if value not in choices:
        raise UsageError(f"{option} {value!r}: expected one of {', '.join(choices)}")


def _s_center_limits():
    half = 10.0 ** (S_SPAN_DECADES / 2)
    return S_LIMITS[0] * half, S_LIMITS[1] / half


def _search(profile, compute, fixed, ratio, centers, energies):
    """The (centre, energy) whose Faraday-to-optical depth ratio is nearest ``ratio``.

    Evaluates the coefficients at SEARCH_POINTS points along the ray for each
    candidate pair (one calculator call) and estimates the ratio of the
    density-weighted sums of ``|rho|`` and ``alpha_I``.
    """
    distribution = profile.distribution
    x = (np.arange(SEARCH_POINTS) + 0.5) / SEARCH_POINTS
    pairs = [(c, level) for level in energies for c in centers]
    n = len(pairs) * SEARCH_POINTS
    s = np.concatenate([profile.s(x, c) for c, _ in pairs])
    theta = np.tile(profile.theta(x), len(pairs))
    params = {k: np.full(n, v) for k, v in fixed.items()}
    levels = [profile.params(x, level) for _, level in pairs]
    for name in levels[0]:
        params[name] = np.concatenate([level[name] for level in levels])
    values = np.asarray(compute(distribution, s, theta, **params), dtype=float)
    if values.shape != (n, len(COEFFICIENTS)):
        raise CalculationError(
            f"the calculator returned shape {values.shape} for {n} rows; "
            f"expected ({n}, {len(COEFFICIENTS)})"
        )
    _check_rotativities(values)
    values = values.reshape(len(pairs), SEARCH_POINTS, len(COEFFICIENTS))
    weight = profile.density_shape(x)
    alpha_I = values[..., COEFFICIENTS.index("alpha_I")]
    rho = np.hypot(
        values[..., COEFFICIENTS.index("rho_Q")],
        values[..., COEFFICIENTS.index("rho_V")],
    )
    # A failed point (NaN) is left out of its candidate's sums; a candidate
    # with failures at half its points or more is not used.
    good = np.isfinite(alpha_I) & np.isfinite(rho)
    weight = np.where(good, weight, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (np.where(good, rho, 0.0) * weight).sum(axis=1) / (
            np.where(good, alpha_I, 0.0) * weight
        ).sum(axis=1)
    usable = np.isfinite(ratios) & (ratios > 0) & (good.mean(axis=1) > 0.5)
    if not usable.any():
        raise CalculationError(
            "the calculator gave no usable absorption and rotativities for any "
            "candidate ray (NaN, zero or negative sums); cannot set the depths"
        )
    distance = np.where(usable, np.abs(np.log(ratios / ratio)), np.inf)
    other_level = np.array([level != DEFAULT_ENERGY for _, level in pairs])
    distance = distance + np.log(_ENERGY_PREFERENCE) * other_level
    best = int(np.argmin(distance))
    logger.info(
        "ray with s centred on %.4g, %s electron energies: Faraday/optical depth "
        "ratio about %.3g (wanted %.3g)",
        pairs[best][0],
        pairs[best][1],
        ratios[best],
        ratio,
    )
    return pairs[best]


def _compute_rows(compute, distribution, s, theta, params):
    """Compute each row on its own, timing it; returns (N, 8) and ms per row."""
    n = s.size
    values = np.empty((n, len(COEFFICIENTS)))
    time_ms = np.empty(n)
    step = max(1, n // 10)
    for i in range(n):
        start = time.perf_counter()
        row = compute(
            distribution,
            s[i : i + 1],
            theta[i : i + 1],
            **{k: v[i : i + 1] for k, v in params.items()},
        )
        time_ms[i] = 1e3 * (time.perf_counter() - start)
        row = np.asarray(row, dtype=float)
        if row.shape != (1, len(COEFFICIENTS)):
            raise CalculationError(
                f"the calculator returned shape {row.shape} for one row; "
                f"expected (1, {len(COEFFICIENTS)})"
            )
        values[i] = row[0]
        if (i + 1) % step == 0 or i + 1 == n:
            logger.info("computed %d of %d rows", i + 1, n)
    return values, time_ms


def _check_rotativities(values):
    rotativities = [COEFFICIENTS.index("rho_Q"), COEFFICIENTS.index("rho_V")]
    if np.all(np.isnan(values[:, rotativities])):
        raise CalculationError(
            "the calculator gave no rotativities (rho_Q and rho_V are NaN on "
            "every row); a test problem needs all eight coefficients"
        )


def _check_rows(values, s, theta, params):
    _check_rotativities(values)
    bad = ~np.all(np.isfinite(values), axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        where = ", ".join(
            [f"s={s[row]:.6g}", f"theta={theta[row]:.6g}"]
            + [f"{k}={v[row]:.6g}" for k, v in params.items()]
        )
        names = [COEFFICIENTS[i] for i in np.flatnonzero(~np.isfinite(values[row]))]
        raise CalculationError(
            f"the calculator failed on {int(bad.sum())} of {len(s)} rows; the "
            f"first at {where} ({', '.join(names)} not finite)"
        )
    alpha_I = values[:, COEFFICIENTS.index("alpha_I")]
    if np.any(alpha_I < 0):
        row = int(np.flatnonzero(alpha_I < 0)[0])
        raise CalculationError(
            f"the calculator gave a negative alpha_I ({alpha_I[row]:.3g}) at "
            f"s={s[row]:.6g}, theta={theta[row]:.6g}"
        )


def make_test_problem(
    out,
    distribution,
    rows=DEFAULT_ROWS,
    tau="thin",
    faraday="thin",
    nu=DEFAULT_NU,
    seed=0,
    length=DEFAULT_LENGTH,
    s_center=None,
    energy=None,
    compute=None,
):
    """Write a test problem along a realistic ray, computed with a calculator.

    Parameters
    ----------
    out : str or Path
        Destination file (written atomically).
    distribution : str
        ``"thermal"``, ``"powerlaw"`` or ``"kappa"``.
    rows : int
        Number of rows (>= 2), evenly spaced in ``d`` from 0 to ``length``.
    tau : {"thin", "thick"}
        Total optical depth ``sum alpha_I dl``: :data:`DEPTHS` (0.1 or 10).
    faraday : {"thin", "thick"}
        Wanted Faraday depth ``sum |rho| dl``: :data:`DEPTHS` (0.1 or 10 rad),
        reached as nearly as the distribution allows (see Notes).
    nu : float
        Observing frequency, Hz (> 0); written as ``nu(meta)``.
    seed : int
        Seed of the profiles' shapes (:class:`RayProfile`).
    length : float
        Path length, cm (> 0).
    s_center : float, optional
        Harmonic number at the centre of the ray's ``s`` range (between
        ``10 sqrt(10)`` and ``1e5 / sqrt(10)``). Default: searched for (Notes).
    energy : {"low", "mid", "high"}, optional
        Electron energy level (:data:`ENERGY_LEVELS`). Default: searched for.
    compute : callable, optional
        ``compute(distribution, s, theta, **params) -> (N, 8)`` at nu = 1 Hz
        and n_e = 1 cm^-3. Default:
        :func:`neurosynchro.calc.compute_coefficients`.

    Returns
    -------
    dict
        ``path``, ``distribution``, ``rows``, ``nu``, ``length``, ``n_e_peak``
        (cm^-3), ``s_center``, ``energy``, ``tau`` and ``faraday_depth`` (as
        written), ``time_ms`` (sum over rows), ``seconds`` (wall time).

    Raises
    ------
    UsageError
        For a bad argument.
    CalculationError
        If the calculator fails on a row (NaN), gives no rotativities or a
        negative ``alpha_I``.

    Notes
    -----
    Profiles (:class:`RayProfile`) keep ``s`` within [10, 1e5], ``theta``
    within [0.25, 1.45] and the parameters within the default training ranges
    of ``make-training-set``, so networks trained with the defaults cover the
    ray; ``psi`` turns by 1.5 to 3 rad.

    Optical and Faraday depths both scale with the density, so one number
    (the peak density) sets the optical depth exactly. Their ratio depends
    on the physics: on ``s`` and on the electron energies (Faraday rotation
    by relativistic electrons is weak). Unless both are given, ``s_center``
    (among :data:`S_CENTER_CANDIDATES` log-spaced values) and ``energy`` are
    chosen by evaluating the calculator at :data:`SEARCH_POINTS` points of
    each candidate ray and taking the ratio nearest the wanted one. Some
    combinations cannot be reached (an optically thick plasma of these
    distributions is at least marginally Faraday thick): then a
    :class:`~neurosynchro.NeurosynchroWarning` says what was reached.

    Each row is computed in its own call so that ``time_ms`` is its own cost.
    """
    from .calc.sampling import DEFAULT_FIXED, DEFAULT_RANGES, DISTRIBUTIONS

    _check_choice("--distribution", distribution, DISTRIBUTIONS)
    _check_choice("--tau", tau, tuple(DEPTHS))
    _check_choice("--faraday", faraday, tuple(DEPTHS))
    if energy is not None:
        _check_choice("--energy", energy, tuple(ENERGY_LEVELS[distribution]))
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 2:
        raise UsageError(f"--rows {rows!r}: expected an integer >= 2")
    for option, value in (("--nu", nu), ("--length", length)):
        if isinstance(value, bool) or not (
            isinstance(value, (int, float)) and math.isfinite(value) and value > 0
        ):
            raise UsageError(f"{option} {value!r}: expected a positive number")
    low, high = _s_center_limits()
    if s_center is not None and not (low <= s_center <= high):
        raise UsageError(
            f"--s-center {s_center!r}: expected a value in [{low:.4g}, {high:.4g}] "
            f"so that s stays within {S_LIMITS[0]:g}..{S_LIMITS[1]:g}"
        )
    if compute is None:
        from .calc import compute_coefficients as compute

    started = time.perf_counter()
    profile = RayProfile(distribution, seed)
    fixed = DEFAULT_FIXED[distribution]
    if s_center is None or energy is None:
        centers = [s_center]
        if s_center is None:
            centers = np.geomspace(low, high, S_CENTER_CANDIDATES).tolist()
        energies = [energy] if energy is not None else list(ENERGY_LEVELS[distribution])
        s_center, energy = _search(
            profile, compute, fixed, DEPTHS[faraday] / DEPTHS[tau], centers, energies
        )

    x = np.linspace(0.0, 1.0, rows)
    d = length * x
    s = profile.s(x, s_center)
    theta = profile.theta(x)
    params = profile.params(x, energy)
    calc_params = {k: np.full(rows, v) for k, v in fixed.items()}
    calc_params.update(params)
    values, time_ms = _compute_rows(compute, distribution, s, theta, calc_params)
    _check_rows(values, s, theta, params)

    # The peak density that gives the wanted optical depth, with segment i
    # (d[i-1] to d[i]) taking row i's coefficients at n_e and nu.
    shape = profile.density_shape(x)
    dl = np.diff(d)
    alpha_I = values[1:, COEFFICIENTS.index("alpha_I")]
    rho = np.hypot(
        values[1:, COEFFICIENTS.index("rho_Q")], values[1:, COEFFICIENTS.index("rho_V")]
    )
    unit_depth = np.sum(shape[1:] * alpha_I * dl) / nu
    if not unit_depth > 0:
        raise CalculationError(
            "the calculator gave alpha_I = 0 on every row; cannot set the optical depth"
        )
    n_e_peak = DEPTHS[tau] / unit_depth
    n_e = n_e_peak * shape
    optical_depth = float(np.sum(n_e[1:] * alpha_I * dl) / nu)
    faraday_depth = float(np.sum(n_e[1:] * rho * dl) / nu)
    reached = (faraday_depth <= REGIME_BOUNDARY) == (faraday == "thin")
    if not reached:
        warnings.warn(
            f"--faraday {faraday}: the {distribution} ray reached a Faraday depth "
            f"of {faraday_depth:.3g} rad at optical depth {optical_depth:.3g} "
            f"(wanted {DEPTHS[faraday]:g}); no candidate ray came closer",
            NeurosynchroWarning,
            stacklevel=2,
        )

    ranges = DEFAULT_RANGES[distribution]
    columns = {"s": s, "theta": theta, **params}
    for name, column in columns.items():
        spec = ranges[name]
        if column.min() < spec.lo or column.max() > spec.hi:
            raise CalculationError(
                f"internal: the ray's {name} spans {column.min():.4g}.."
                f"{column.max():.4g}, outside the default range "
                f"{spec.lo:.4g}..{spec.hi:.4g}"
            )
    table = pd.DataFrame(columns)
    suffixes = {name: ranges[name].sampling for name in columns}
    meta = {
        "d": d,
        "psi": profile.psi(x),
        "n_e": n_e,
        "nu": np.full(rows, float(nu)),
        "time_ms": time_ms,
    }
    for name, value in meta.items():
        table[name] = value
        suffixes[name] = "meta"
    for i, name in enumerate(COEFFICIENTS):
        table[name] = values[:, i]
        suffixes[name] = "res"
    write_table(out, table, suffixes)

    summary = {
        "path": str(out),
        "distribution": distribution,
        "rows": rows,
        "nu": float(nu),
        "length": float(length),
        "n_e_peak": float(n_e_peak),
        "s_center": float(s_center),
        "energy": energy,
        "tau": optical_depth,
        "faraday_depth": faraday_depth,
        "time_ms": float(time_ms.sum()),
        "seconds": time.perf_counter() - started,
    }
    logger.info(
        "wrote %s: %d rows, optical depth %.3g, Faraday depth %.3g rad, peak n_e "
        "%.3g cm^-3, s %.3g..%.3g, %s electron energies",
        out,
        rows,
        optical_depth,
        faraday_depth,
        n_e_peak,
        s.min(),
        s.max(),
        energy,
    )
    return summary


# ---------------------------------------------------------------------------
# Command line.

TEST_PROBLEM_DESCRIPTION = """\
Integrate polarized transfer along the ray tabulated in FILE, once with the
exact coefficients it holds and once with the networks of NNDIR, and compare
the emergent I, Q, U, V. The ray is seen at one frequency (--nu, else the
file's nu(meta) column, else 10 GHz); each row's field is B = 2 pi m_e c nu /
(e s). The segment from d[i-1] to d[i] has row i's coefficients."""

MAKE_DESCRIPTION = """\
Write a test problem for `neurosynchro test-problem`: one ray through a
plasma whose density, field, angles and distribution parameters vary along
it, with the exact coefficients of every row from the built-in calculator.
The ray stays inside the default training ranges of make-training-set."""


def add_arguments(parser):
    """Add the ``test-problem`` arguments to an argparse parser."""
    if parser.description is None:
        parser.description = TEST_PROBLEM_DESCRIPTION
    parser.add_argument("nndir", metavar="NNDIR", help="trained network directory")
    parser.add_argument(
        "file",
        metavar="FILE",
        help="test-problem table, or thermal, powerlaw or kappa for a shipped one",
    )
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    parser.add_argument(
        "--nu",
        type=float,
        metavar="HZ",
        help="observing frequency (default: the file's nu(meta), else 1e10)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        metavar="REL",
        help=f"relative accuracy target (default {DEFAULT_TOLERANCE})",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 if the accuracy target is missed",
    )


def run(args):
    """Run ``test-problem`` from parsed arguments; return the exit status."""
    result = run_test_problem(
        args.nndir, args.file, nu=args.nu, tolerance=args.tolerance
    )
    sys.stdout.write(format_result(result) + "\n")
    if args.json:
        text = json.dumps(result, indent=2, allow_nan=False)
        atomic_write_text(args.json, text + "\n")
        logger.info("wrote %s", args.json)
    return 1 if args.strict and not result["pass"] else 0


def add_make_arguments(parser):
    """Add the ``make-test-problem`` arguments to an argparse parser."""
    from .calc.sampling import DISTRIBUTIONS

    if parser.description is None:
        parser.description = MAKE_DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("out", metavar="OUT", help="file to write")
    parser.add_argument(
        "--distribution",
        required=True,
        choices=DISTRIBUTIONS,
        help="electron energy distribution",
    )
    parser.add_argument(
        "--tau",
        choices=tuple(DEPTHS),
        default="thin",
        help="total optical depth 0.1 (thin, default) or 10 (thick)",
    )
    parser.add_argument(
        "--faraday",
        choices=tuple(DEPTHS),
        default="thin",
        help="Faraday depth wanted: 0.1 (thin, default) or 10 rad (thick)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        metavar="N",
        help=f"rows along the ray (default {DEFAULT_ROWS})",
    )
    parser.add_argument(
        "--nu",
        type=float,
        default=DEFAULT_NU,
        metavar="HZ",
        help=f"observing frequency (default {DEFAULT_NU:g})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the profiles"
    )
    parser.add_argument(
        "--length",
        type=float,
        default=DEFAULT_LENGTH,
        metavar="CM",
        help=f"path length (default {DEFAULT_LENGTH:g})",
    )
    parser.add_argument(
        "--s-center",
        type=float,
        metavar="S",
        help="centre of the ray's harmonic numbers (default: chosen for --faraday)",
    )
    parser.add_argument(
        "--energy",
        choices=("low", "mid", "high"),
        help="electron energy level (default: chosen for --faraday)",
    )


def run_make(args):
    """Run ``make-test-problem`` from parsed arguments; return the exit status."""
    make_test_problem(
        args.out,
        args.distribution,
        rows=args.rows,
        tau=args.tau,
        faraday=args.faraday,
        nu=args.nu,
        seed=args.seed,
        length=args.length,
        s_center=args.s_center,
        energy=args.energy,
    )
    return 0
