"""Where a generated training set samples its inputs.

A training set covers a box in the inputs ``s`` (harmonic number
``nu / nu_cyc``), ``theta`` (radians, angle between the wave vector and the
field) and the parameters of one electron distribution. Each input is either
sampled, uniformly in its value (``lin``) or in its logarithm (``log``)
between two bounds, or fixed at one value for the whole set. This module
holds the documented defaults, parses the ``--range`` and ``--set`` options
that change them, and draws the inputs of one shard from its own seeded
random stream, so that a shard's rows depend only on the seed, the shard
number and the ranges.
"""

import math
import re
import textwrap
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError

__all__ = [
    "DISTRIBUTIONS",
    "PARAMETERS",
    "DEFAULT_RANGES",
    "DEFAULT_FIXED",
    "Range",
    "parse_range",
    "parse_setting",
    "resolve_inputs",
    "draw_inputs",
    "describe_defaults",
]

#: The distributions a training set can be generated for.
DISTRIBUTIONS = ("thermal", "powerlaw", "kappa")

#: Parameters of each distribution, in column order (as the calculator names
#: them in :func:`neurosynchro.calc.compute_coefficients`).
PARAMETERS = {
    "thermal": ("theta_e",),
    "powerlaw": ("p", "gamma_min", "gamma_max"),
    "kappa": ("kappa", "kappa_width", "gamma_cutoff"),
}

#: Inputs every training set samples, whatever the distribution.
COMMON_INPUTS = ("s", "theta")

#: Largest accepted ``theta``: tables cover [0, pi/2] (any angle folds there,
#: see DESIGN.md), and bounds typed with five digits (1.5708) are accepted.
THETA_MAX = 1.5708


@dataclass(frozen=True)
class Range:
    """Sampling of one input: uniform in value or in log between two bounds.

    Attributes
    ----------
    lo, hi : float
        Bounds, ``lo < hi``; both positive when ``sampling == "log"``.
    sampling : str
        ``"lin"`` (uniform in the value) or ``"log"`` (uniform in its log).
        It also names the column's role suffix, ``s(log)`` or ``theta(lin)``.
    """

    lo: float
    hi: float
    sampling: str

    def draw(self, u):
        """Map uniform deviates in [0, 1) onto this range.

        Parameters
        ----------
        u : ndarray
            Uniform deviates in [0, 1), any shape.

        Returns
        -------
        ndarray
            Same shape; in ``[lo, hi)``.
        """
        if self.sampling == "log":
            log_lo = math.log(self.lo)
            return np.exp(log_lo + u * (math.log(self.hi) - log_lo))
        return self.lo + u * (self.hi - self.lo)

    def as_record(self):
        """The range as a plain dict for the generation record."""
        return {"lo": self.lo, "hi": self.hi, "sampling": self.sampling}


# Default sampled inputs, per distribution. Why these bounds:
# - s in [3, 3e5], log: the symphony reference tables use [10, 1e5]; we go half a
#   decade further each way. Below 10 is the gyrosynchrotron regime where the
#   published fitting formulas fail and which stellar and planetary users need;
#   we stop at 3 because closer to the fundamental the coefficients become
#   spiky harmonic lines a smooth network cannot learn. Above 1e5 the extra
#   half decade puts the least accurate edge of a trained domain outside the
#   range the reference tables validate.
# - theta in [0.05, pi/2], lin: every angle folds into [0, pi/2]; near 0 the
#   emission vanishes and calculators lose accuracy (symphony turns its error
#   checks off below 0.15), so the first 0.05 rad are left out.
# - theta_e in [0.5, 100], log: from mildly relativistic plasmas (where the
#   fitting formulas, made for theta_e >~ 1, fail) to the ultrarelativistic
#   regime; the reference table covers [1, 100].
# - p in [1.5, 5], lin; kappa in [3, 7], lin; kappa_width in [1, 50], log: as in
#   the symphony reference tables, so trained networks can be checked on them.
DEFAULT_RANGES = {
    "thermal": {
        "s": Range(3.0, 3e5, "log"),
        "theta": Range(0.05, math.pi / 2, "lin"),
        "theta_e": Range(0.5, 100.0, "log"),
    },
    "powerlaw": {
        "s": Range(3.0, 3e5, "log"),
        "theta": Range(0.05, math.pi / 2, "lin"),
        "p": Range(1.5, 5.0, "lin"),
    },
    "kappa": {
        "s": Range(3.0, 3e5, "log"),
        "theta": Range(0.05, math.pi / 2, "lin"),
        "kappa": Range(3.0, 7.0, "lin"),
        "kappa_width": Range(1.0, 50.0, "log"),
    },
}

# Default fixed parameters: an untruncated power law from gamma = 1, and a kappa
# distribution without exponential cutoff, as in the reference tables. Fixed
# parameters are not table columns; the generation record holds them.
DEFAULT_FIXED = {
    "thermal": {},
    "powerlaw": {"gamma_min": 1.0, "gamma_max": math.inf},
    "kappa": {"gamma_cutoff": math.inf},
}

# Sampling used when ``--range NAME=LO:HI`` names none: log for quantities that
# span decades, lin for angles and indices.
_DEFAULT_SAMPLING = {
    "s": "log",
    "theta": "lin",
    "theta_e": "log",
    "p": "lin",
    "gamma_min": "log",
    "gamma_max": "log",
    "kappa": "lin",
    "kappa_width": "log",
    "gamma_cutoff": "log",
}

_RANGE_SYNTAX = re.compile(r"^([A-Za-z_]\w*)=([^:=]+):([^:=]+)(?::(lin|log))?$")
_SETTING_SYNTAX = re.compile(r"^([A-Za-z_]\w*)=([^=]+)$")


def input_names(distribution):
    """All inputs of a distribution's tables: ``s``, ``theta``, its parameters."""
    return COMMON_INPUTS + PARAMETERS[distribution]


def _check_distribution(distribution):
    if distribution not in DISTRIBUTIONS:
        raise UsageError(
            f"--distribution {distribution!r}: expected one of "
            f"{', '.join(DISTRIBUTIONS)}"
        )


def _check_name(option, text, name, distribution):
    valid = input_names(distribution)
    if name not in valid:
        raise UsageError(
            f"{option} {text}: unknown name {name!r} for the {distribution} "
            f"distribution; expected one of {', '.join(valid)}"
        )


def _parse_float(option, text, value):
    try:
        return float(value)
    except ValueError:
        raise UsageError(
            f"{option} {text}: {value!r} is not a number (e.g. 3, 0.05, 1e4, inf)"
        ) from None


def parse_range(text, distribution):
    """Parse one ``--range NAME=LO:HI[:lin|log]`` option.

    Parameters
    ----------
    text : str
        The option's value, e.g. ``"s=10:1e5:log"``. Without a sampling, the
        name's default one is used (log for ``s``, ``theta_e``,
        ``kappa_width`` and the ``gamma_*`` bounds, lin for the others).
    distribution : str
        One of :data:`DISTRIBUTIONS`; decides which names are valid.

    Returns
    -------
    name : str
    range : Range

    Raises
    ------
    UsageError
        Bad syntax, unknown name, bounds that are not finite numbers,
        ``LO >= HI``, ``LO <= 0`` with log sampling, ``s <= 0``, or ``theta``
        outside [0, pi/2].
    """
    _check_distribution(distribution)
    match = _RANGE_SYNTAX.match(text.strip())
    if match is None:
        raise UsageError(
            f"--range {text}: expected NAME=LO:HI[:lin|log], e.g. s=3:3e5:log"
        )
    name, lo_text, hi_text, sampling = match.groups()
    _check_name("--range", text, name, distribution)
    lo = _parse_float("--range", text, lo_text)
    hi = _parse_float("--range", text, hi_text)
    if sampling is None:
        sampling = _DEFAULT_SAMPLING[name]
    return name, _checked_range("--range", text, name, lo, hi, sampling)


#: The values each distribution parameter may take on its own (the
#: distributions in :mod:`neurosynchro.calc.distributions` check the
#: combinations): name -> (test, what is expected).
PARAMETER_DOMAINS = {
    "theta_e": (lambda v: 0 < v < math.inf, "a finite theta_e > 0"),
    "p": (math.isfinite, "a finite p"),
    "gamma_min": (lambda v: 1 <= v < math.inf, "a finite gamma_min >= 1"),
    "gamma_max": (lambda v: v > 1, "gamma_max > 1 (inf for no cutoff)"),
    "kappa": (lambda v: 0 < v < math.inf, "a finite kappa > 0"),
    "kappa_width": (lambda v: 0 < v < math.inf, "a finite kappa_width > 0"),
    "gamma_cutoff": (lambda v: v > 1, "gamma_cutoff > 1 (inf for no cutoff)"),
}


def _check_domain(option, text, name, *values):
    test, expected = PARAMETER_DOMAINS.get(name, (None, None))
    for value in values:
        if test is not None and not test(value):
            raise UsageError(f"{option} {text}: expected {expected}, got {value!r}")


def _checked_range(option, text, name, lo, hi, sampling):
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise UsageError(f"{option} {text}: expected finite bounds LO:HI")
    if lo >= hi:
        raise UsageError(f"{option} {text}: expected LO < HI, got {lo!r}:{hi!r}")
    if sampling not in ("lin", "log"):
        raise UsageError(f"{option} {text}: expected sampling lin or log")
    if sampling == "log" and lo <= 0:
        raise UsageError(
            f"{option} {text}: log sampling needs LO > 0; use :lin or a positive LO"
        )
    if name == "s" and lo <= 0:
        raise UsageError(f"{option} {text}: expected s > 0 (s = nu / nu_cyc)")
    if name == "theta" and (lo < 0 or hi > THETA_MAX):
        raise UsageError(
            f"{option} {text}: expected theta within [0, pi/2] "
            "(radians; any angle folds into it)"
        )
    _check_domain(option, text, name, lo, hi)
    return Range(float(lo), float(hi), sampling)


def parse_setting(text, distribution):
    """Parse one ``--set NAME=VALUE`` option fixing a distribution parameter.

    Parameters
    ----------
    text : str
        The option's value, e.g. ``"gamma_max=1e4"``; ``inf`` is accepted.
    distribution : str
        One of :data:`DISTRIBUTIONS`.

    Returns
    -------
    name : str
    value : float

    Raises
    ------
    UsageError
        Bad syntax, a name that is not a parameter of the distribution (``s``
        and ``theta`` are always sampled), or a value that is not a number.
    """
    _check_distribution(distribution)
    match = _SETTING_SYNTAX.match(text.strip())
    if match is None:
        raise UsageError(f"--set {text}: expected NAME=VALUE, e.g. gamma_max=1e4")
    name, value_text = match.groups()
    return name, _checked_setting(text, name, value_text, distribution)


def _checked_setting(text, name, value, distribution):
    valid = PARAMETERS[distribution]
    if name not in valid:
        raise UsageError(
            f"--set {text}: {name!r} is not a parameter of the {distribution} "
            f"distribution; expected one of {', '.join(valid)} "
            "(s and theta are always sampled)"
        )
    value = _parse_float("--set", text, value) if isinstance(value, str) else value
    value = float(value)
    if math.isnan(value):
        raise UsageError(f"--set {text}: expected a number, not nan")
    _check_domain("--set", text, name, value)
    return value


def resolve_inputs(distribution, ranges=None, fixed=None):
    """Combine the defaults with the caller's ranges and fixed values.

    Parameters
    ----------
    distribution : str
        One of :data:`DISTRIBUTIONS`.
    ranges : dict, optional
        ``name -> Range`` or ``name -> (lo, hi)`` or ``(lo, hi, sampling)``;
        overrides a default range, or samples a parameter that is fixed by
        default (such as ``gamma_min``).
    fixed : dict, optional
        ``name -> value``; fixes a parameter (sampled or not by default).

    Returns
    -------
    ranges : dict
        ``name -> Range`` for every sampled input, in column order (``s``,
        ``theta``, then the parameters in :data:`PARAMETERS` order).
    fixed : dict
        ``name -> float`` for every fixed parameter, in the same order.

    Raises
    ------
    UsageError
        Unknown names, bad bounds, or a name both sampled and fixed.
    """
    _check_distribution(distribution)
    sampled = dict(DEFAULT_RANGES[distribution])
    constant = dict(DEFAULT_FIXED[distribution])
    given_ranges = {}
    for name, spec in (ranges or {}).items():
        text = f"{name}={spec}"
        _check_name("--range", text, name, distribution)
        if isinstance(spec, Range):
            lo, hi, sampling = spec.lo, spec.hi, spec.sampling
        else:
            spec = tuple(spec)
            if len(spec) not in (2, 3):
                raise UsageError(f"--range {text}: expected (LO, HI[, sampling])")
            lo, hi = float(spec[0]), float(spec[1])
            sampling = spec[2] if len(spec) == 3 else _DEFAULT_SAMPLING[name]
        given_ranges[name] = _checked_range("--range", text, name, lo, hi, sampling)
    for name, value in (fixed or {}).items():
        text = f"{name}={value}"
        constant[name] = _checked_setting(text, name, value, distribution)
        if name in given_ranges:
            raise UsageError(
                f"--set {text}: {name} also has a --range; give one or the other"
            )
        sampled.pop(name, None)
    for name, spec in given_ranges.items():
        sampled[name] = spec
        constant.pop(name, None)
    order = input_names(distribution)
    sampled = {name: sampled[name] for name in order if name in sampled}
    constant = {name: constant[name] for name in order if name in constant}
    _check_corners(distribution, sampled, constant)
    return sampled, constant


def _check_corners(distribution, sampled, constant):
    """Refuse parameter combinations the distribution cannot take.

    Each parameter was checked on its own; here every corner of the sampled
    box is tried, which catches combinations such as ``p <= 1`` without an
    upper cutoff, or ``gamma_max <= gamma_min``.
    """
    from itertools import product

    from .distributions import make_distribution

    names = [n for n in PARAMETERS[distribution] if n in sampled]
    for corner in product(*[(sampled[n].lo, sampled[n].hi) for n in names]):
        params = dict(constant)
        params.update(zip(names, corner, strict=True))
        try:
            make_distribution(distribution, **params)
        except UsageError as error:
            given = ", ".join(f"{k}={v!r}" for k, v in params.items())
            raise UsageError(
                f"the {distribution} distribution cannot take {given}: {error}"
            ) from None


def draw_inputs(ranges, seed, shard, rows):
    """Draw the inputs of one shard from its own random stream.

    Parameters
    ----------
    ranges : dict
        ``name -> Range``, in column order (as :func:`resolve_inputs` gives).
    seed : int
        Non-negative seed of the whole training set.
    shard : int
        Shard number, from 0.
    rows : int
        Rows in this shard.

    Returns
    -------
    dict
        ``name -> ndarray`` of shape ``(rows,)``, in the order of ``ranges``.

    Notes
    -----
    Shard ``k`` uses the ``k``-th child of ``numpy.random.SeedSequence(seed)``
    (``spawn_key=(k,)``), and draws one ``(rows, len(ranges))`` block of
    uniform deviates with PCG64. So its rows depend only on the seed, ``k``,
    ``rows`` and the ranges: not on how many workers run, in which order
    shards finish, or whether the run was interrupted. A shorter last shard
    draws a prefix of what a full one would.
    """
    sequence = np.random.SeedSequence(seed, spawn_key=(shard,))
    generator = np.random.Generator(np.random.PCG64(sequence))
    uniform = generator.random((rows, len(ranges)))
    return {
        name: spec.draw(uniform[:, column])
        for column, (name, spec) in enumerate(ranges.items())
    }


def _show(value):
    return "pi/2" if value == math.pi / 2 else f"{value:g}"


def describe_defaults():
    """Text listing the default ranges and fixed values, for ``--help``."""
    lines = []
    for distribution in DISTRIBUTIONS:
        sampled = ", ".join(
            f"{name} {_show(spec.lo)}..{_show(spec.hi)} ({spec.sampling})"
            for name, spec in DEFAULT_RANGES[distribution].items()
        )
        lines += textwrap.wrap(
            sampled,
            width=78,
            initial_indent=f"  {distribution + ':':10s}",
            subsequent_indent=" " * 12,
        )
        fixed = ", ".join(
            f"{name} = {_show(value)}"
            for name, value in DEFAULT_FIXED[distribution].items()
        )
        if fixed:
            lines.append(f"  {'':10s}fixed: {fixed}")
    return "\n".join(lines)
