"""The eight Stokes-basis coefficients and neurosynchro's internal results.

Networks do not learn the eight coefficients directly: they learn quantities
from which any output reassembles into coefficients that obey the physical
invariants ``j_I >= sqrt(j_Q^2 + j_V^2)`` and ``alpha_I >= sqrt(alpha_Q^2 +
alpha_V^2)``:

==================  ==========================================  ========
internal result     definition                                  map type
==================  ==========================================  ========
``j_I``             total emissivity                            log
``alpha_I``         total absorption                            log
``j_frac_pol``      ``sqrt(j_Q^2 + j_V^2) / j_I``, in (0, 1)    logit
``alpha_frac_pol``  the same for alpha                          logit
``j_V_share``       ``|j_V| / sqrt(j_Q^2 + j_V^2)``, in (0, 1)  logit
``alpha_V_share``   the same for alpha                          logit
``rho_Q``           Faraday conversion, signed                  asinh [*]_
``rho_V``           ``|rho_V|``                                 log
``rho_Q_sign``      sign of ``rho_Q`` (older configs only)      sign
==================  ==========================================  ========

.. [*] divided by a row scale, a smooth fit to ``|rho_Q|`` over the domain
   (``scale_mode = "quadratic"``, see :class:`neurosynchro.mappings.Mapping`).
   Older configs learn ``|rho_Q|`` (``abs_log``) and its sign as a separate
   binary result, ``rho_Q_sign``; the transformed table serves both.

Sign conventions differ between calculators, so none is hard-coded: the sign
that each of ``j_Q``, ``alpha_Q``, ``j_V``, ``alpha_V`` and ``rho_V`` keeps
over a table (for ``0 <= theta <= pi/2``) is found from the data, rows that
contradict it are dropped and counted, and the signs travel with the
transformed table (as constant ``sign_NAME(meta)`` columns) into
``nn_config.toml``, from which reassembly applies them. ``rho_Q`` changes
sign inside the domain (for thermal and kappa electrons; for the power law
it is negative throughout the default domain), so it is learned signed.
"""

import logging
from dataclasses import dataclass, field

import numpy as np

from .errors import TableError

logger = logging.getLogger(__name__)

#: The eight coefficients, in the order every array in the package uses.
COEFFICIENTS = ("j_I", "alpha_I", "j_Q", "alpha_Q", "j_V", "alpha_V", "rho_Q", "rho_V")

#: The six emission and absorption coefficients.
EMISSION_ABSORPTION = COEFFICIENTS[:6]

#: The two rotativities, which many tables lack.
ROTATIVITIES = ("rho_Q", "rho_V")

#: Coefficients whose sign is fixed over a table and recorded.
SIGNED = ("j_Q", "alpha_Q", "j_V", "alpha_V", "rho_V")

#: Coefficients that flip sign under theta -> pi - theta.
V_TERMS = ("j_V", "alpha_V", "rho_V")

#: Internal results learned from the six emission and absorption terms.
BASIC_RESULTS = (
    "j_I",
    "alpha_I",
    "j_frac_pol",
    "alpha_frac_pol",
    "j_V_share",
    "alpha_V_share",
)

#: Internal results learned from the two rotativities.
ROTATIVITY_RESULTS = ("rho_Q", "rho_V", "rho_Q_sign")

#: Signs assumed for configs from the predecessor package (0.1.x), whose
#: transform accepted only rows with these signs.
LEGACY_SIGNS = {"j_Q": -1, "alpha_Q": -1, "j_V": 1, "alpha_V": 1, "rho_V": 1}


def sign_column(name):
    """Name of the metadata column that carries the recorded sign of ``name``."""
    return f"sign_{name}"


@dataclass
class TransformReport:
    """What :func:`to_internal` did, for the user."""

    rows_in: int = 0
    rows_out: int = 0
    signs: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    has_rotativities: bool = False

    def lines(self):
        """Human-readable summary lines."""
        out = [f"rows read: {self.rows_in}"]
        dropped = {k: v for k, v in self.dropped.items() if v}
        for reason, count in dropped.items():
            out.append(f"dropped, {reason}: {count}")
        if not dropped:
            out.append("dropped: none")
        out.append(f"rows kept: {self.rows_out}")
        signs = ", ".join(f"{k} {'+' if v > 0 else '-'}" for k, v in self.signs.items())
        out.append(f"signs found: {signs}")
        if not self.has_rotativities:
            out.append("no rotativities (rho_Q, rho_V absent or all NaN): six results")
        return out


def _has_column(table, name):
    return name in table.columns and np.isfinite(table[name].to_numpy()).any()


def find_signs(table, names):
    """The sign each coefficient keeps over most of a table.

    Parameters
    ----------
    table : pandas.DataFrame
        Physical coefficients, one column each.
    names : sequence of str
        Columns to inspect.

    Returns
    -------
    dict
        Name -> +1 or -1: the sign of the majority of its finite, non-zero
        values.
    """
    signs = {}
    for name in names:
        values = table[name].to_numpy()
        values = values[np.isfinite(values) & (values != 0)]
        if values.size == 0:
            raise TableError(
                f"column {name}(res): no finite, non-zero values, so its sign "
                "convention cannot be found"
            )
        signs[name] = 1 if (values > 0).sum() >= (values < 0).sum() else -1
    return signs


def to_internal(training_set):
    """Transform raw coefficients into the internal parameterization.

    Parameters
    ----------
    training_set : neurosynchro.samples.TrainingSet
        Raw training set with at least the six emission and absorption
        results (``j_I alpha_I j_Q alpha_Q j_V alpha_V``); ``rho_Q`` and
        ``rho_V`` are used when present and not all NaN.

    Returns
    -------
    table : pandas.DataFrame
        Inputs, internal results and ``sign_*`` metadata columns.
    suffixes : dict
        Role suffix of each column of ``table``.
    report : TransformReport
        Row counts per drop reason, and the signs found.
    """
    raw = training_set.table
    missing = [c for c in EMISSION_ABSORPTION if c not in training_set.results]
    if missing:
        raise TableError(
            f"{training_set.files[0]}: missing result column(s) "
            + ", ".join(f"{m}(res)" for m in missing)
            + "; a training set needs at least j_I, alpha_I, j_Q, alpha_Q, j_V, "
            "alpha_V"
        )
    has_rho = all(_has_column(raw, c) for c in ROTATIVITIES)
    used = list(EMISSION_ABSORPTION) + (list(ROTATIVITIES) if has_rho else [])
    report = TransformReport(rows_in=len(raw), has_rotativities=has_rho)

    keep = np.ones(len(raw), dtype=bool)

    def drop(reason, bad):
        bad = np.asarray(bad) & keep
        report.dropped[reason] = int(bad.sum())
        keep[bad] = False

    values = {c: raw[c].to_numpy() for c in used}
    drop(
        "non-finite result", ~np.all([np.isfinite(v) for v in values.values()], axis=0)
    )
    drop("j_I <= 0", ~(values["j_I"] > 0))
    drop("alpha_I <= 0", ~(values["alpha_I"] > 0))

    def check_rows_left():
        if not keep.any():
            raise TableError(
                f"{training_set.files[0]}: no rows left after filtering ("
                + ", ".join(f"{k}: {v}" for k, v in report.dropped.items() if v)
                + ")"
            )

    check_rows_left()
    signed = [c for c in SIGNED if c in used]
    report.signs = find_signs(raw[keep], signed)
    for name in signed:
        drop(f"{name} has the minority sign", values[name] * report.signs[name] < 0)

    out = raw.loc[:, training_set.inputs].copy()
    suffixes = {n: training_set.suffixes[n] for n in training_set.inputs}

    with np.errstate(divide="ignore", invalid="ignore"):
        for kind in ("j", "alpha"):
            total = values[f"{kind}_I"]
            q, v = values[f"{kind}_Q"], values[f"{kind}_V"]
            polarized = np.hypot(q, v)
            frac = polarized / total
            share = np.abs(v) / polarized
            drop(f"{kind} invariant broken ({kind}_frac_pol >= 1)", ~(frac < 1))
            drop(f"{kind}_frac_pol = 0 (unpolarized)", ~(frac > 0))
            drop(f"{kind}_V_share at 0 or 1", ~((share > 0) & (share < 1)))
            out[f"{kind}_I"] = total
            out[f"{kind}_frac_pol"] = frac
            out[f"{kind}_V_share"] = share

    # Keep the conventional column order of the predecessor's tables.
    order = list(training_set.inputs) + ["j_I", "alpha_I"]
    if has_rho:
        drop("rho_Q = 0", values["rho_Q"] == 0)
        drop("rho_V = 0", values["rho_V"] == 0)
        out["rho_Q"] = values["rho_Q"]
        out["rho_V"] = np.abs(values["rho_V"])
        order += ["rho_Q", "rho_V"]
    order += ["j_frac_pol", "alpha_frac_pol", "j_V_share", "alpha_V_share"]
    if has_rho:
        out["rho_Q_sign"] = np.sign(values["rho_Q"])
        order.append("rho_Q_sign")
    for name in order[len(training_set.inputs) :]:
        suffixes[name] = "res"
    for name, sign in report.signs.items():
        out[sign_column(name)] = float(sign)
        suffixes[sign_column(name)] = "meta"
        order.append(sign_column(name))

    check_rows_left()
    out = out.loc[keep, order].reset_index(drop=True)
    report.rows_out = len(out)
    return out, suffixes, report


def signs_from_table(table, suffixes):
    """Read the recorded signs back from a transformed table's metadata."""
    signs = {}
    for name in SIGNED:
        column = sign_column(name)
        if column in table.columns and suffixes.get(column) == "meta":
            values = np.unique(table[column].to_numpy())
            if values.size != 1 or abs(values[0]) != 1:
                raise TableError(
                    f"column {column}(meta): expected one constant value, +1 or -1"
                )
            signs[name] = int(values[0])
    return signs


def from_internal(results, signs, cos_theta_sign=1.0):
    """Reassemble the eight coefficients from internal results.

    Parameters
    ----------
    results : dict of ndarray
        Internal results by name (``j_I``, ``alpha_I``, ``j_frac_pol``,
        ``alpha_frac_pol``, ``j_V_share``, ``alpha_V_share``, and optionally
        ``rho_Q`` (signed; or its magnitude, with ``rho_Q_sign``), ``rho_V``
        (magnitude)); all broadcastable to one shape ``S``.
    signs : dict
        Recorded sign (+1 or -1) of ``j_Q``, ``alpha_Q``, ``j_V``,
        ``alpha_V``, ``rho_V``.
    cos_theta_sign : array_like
        +1 where the original angle had ``cos(theta) >= 0``, -1 where it was
        folded from ``theta > pi/2``; the V terms take this factor.

    Returns
    -------
    ndarray, shape ``S + (8,)``
        ``j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V``; the
        rotativities are NaN when ``results`` has no rotativity entries.

    Notes
    -----
    For any fractions in [0, 1] the output obeys the invariants exactly:
    ``|(j_Q, j_V)| = j_frac_pol * j_I <= j_I``.
    """
    arrays = {k: np.asarray(v, dtype=float) for k, v in results.items()}
    shape = np.broadcast_shapes(
        *(a.shape for a in arrays.values()), np.shape(cos_theta_sign)
    )
    out = np.empty(shape + (8,))
    for kind, base in (("j", 0), ("alpha", 1)):
        total = arrays[f"{kind}_I"]
        polarized = total * arrays[f"{kind}_frac_pol"]
        share = np.clip(arrays[f"{kind}_V_share"], 0.0, 1.0)
        out[..., base] = total
        out[..., base + 2] = signs[f"{kind}_Q"] * polarized * np.sqrt(1 - share**2)
        out[..., base + 4] = signs[f"{kind}_V"] * cos_theta_sign * polarized * share
    if "rho_Q" in arrays:
        if "rho_Q_sign" in arrays:
            # rho_Q learned as a magnitude, its sign by its own network: any
            # output of that (a class probability mapped to [-1, 1], or a
            # predecessor's direct map) becomes the nearer sign.
            sign = np.where(arrays["rho_Q_sign"] >= 0, 1.0, -1.0)
            out[..., 6] = sign * np.abs(arrays["rho_Q"])
        else:
            # rho_Q learned signed (asinh map): its sign is its own.
            out[..., 6] = arrays["rho_Q"]
        out[..., 7] = signs["rho_V"] * cos_theta_sign * arrays["rho_V"]
    else:
        out[..., 6:] = np.nan
    return out


def as_frame(coefficients):
    """An ``(N, 8)`` coefficient array as a DataFrame with named columns."""
    import pandas as pd

    return pd.DataFrame(np.asarray(coefficients), columns=list(COEFFICIENTS))
