"""Built-in detailed calculator of the eight synchrotron coefficients.

:func:`compute_coefficients` is what the rest of the package calls (training-set
generation, validation): it evaluates, for isotropic thermal, power-law or kappa
electrons, the emission and absorption coefficients by numerical integration
over the distribution with the exact harmonic sum (:mod:`.emission`), and the
rotativities from :mod:`.rotativities` when that module is available.

Everything is for ``nu = 1 Hz`` and ``n_e = 1 cm^-3``, as functions of the
harmonic number ``s = nu / nu_cyc`` and the angle ``theta`` (radians) between
the wave vector and the field; see DESIGN.md for the scalings.
"""

import logging

import numpy as np

from ..errors import NeurosynchroError, UsageError
from ..physics import fold_angle
from .distributions import make_distribution

__all__ = ["DISTRIBUTIONS", "PARAMETERS", "compute_coefficients"]

_log = logging.getLogger(__name__)

#: Distribution names :func:`compute_coefficients` accepts.
DISTRIBUTIONS = ("thermal", "powerlaw", "kappa")

#: Parameters of each distribution, in order.
PARAMETERS = {
    "thermal": ("theta_e",),
    "powerlaw": ("p", "gamma_min", "gamma_max"),
    "kappa": ("kappa", "kappa_width", "gamma_cutoff"),
}

_DEFAULTS = {"gamma_min": 1.0, "gamma_max": np.inf, "gamma_cutoff": np.inf}


def _broadcast_inputs(distribution, s, theta, params):
    """Check names, broadcast ``s``, ``theta`` and the parameters, flatten them.

    Returns the broadcast shape (at least one dimension), then the flat
    ``s``, ``theta`` and ``{name: parameter}``.
    """
    if distribution not in PARAMETERS:
        raise UsageError(
            f"unknown distribution {distribution!r}; expected one of "
            f"{', '.join(repr(k) for k in DISTRIBUTIONS)}"
        )
    valid = PARAMETERS[distribution]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise UsageError(
            f"unknown parameter(s) {', '.join(unknown)} for the {distribution} "
            f"distribution; valid parameters are {', '.join(valid)}"
        )
    missing = [k for k in valid if k not in params and k not in _DEFAULTS]
    if missing:
        raise UsageError(
            f"the {distribution} distribution needs parameter(s) "
            f"{', '.join(missing)}; its parameters are {', '.join(valid)}"
        )
    full = {k: params.get(k, _DEFAULTS.get(k)) for k in valid}
    try:
        arrays = np.broadcast_arrays(
            *[np.atleast_1d(np.asarray(v, dtype=float)) for v in (s, theta)],
            *[np.atleast_1d(np.asarray(v, dtype=float)) for v in full.values()],
        )
    except (TypeError, ValueError) as err:
        raise UsageError(
            f"s, theta and the parameters {', '.join(valid)} must be numbers or "
            f"arrays that broadcast together: {err}"
        ) from None
    shape = arrays[0].shape
    arrays = [a.ravel() for a in arrays]
    return shape, arrays[0], arrays[1], dict(zip(valid, arrays[2:], strict=True))


def compute_coefficients(distribution, s, theta, **params):
    """The eight coefficients for isotropic electrons, at ``nu = 1 Hz``, ``n_e = 1``.

    Parameters
    ----------
    distribution : str
        ``"thermal"``, ``"powerlaw"`` or ``"kappa"`` (see :data:`DISTRIBUTIONS`).
    s : array_like
        Harmonic number ``nu / nu_cyc`` (> 0).
    theta : array_like
        Angle between the wave vector and the magnetic field, radians. Any
        angle: it is folded into ``[0, pi/2]``
        (:func:`~neurosynchro.physics.fold_angle`),
        with ``j_V``, ``alpha_V`` and ``rho_V`` flipped where ``cos theta < 0``.
    **params : array_like
        The distribution's parameters (:data:`PARAMETERS`): ``theta_e``;
        ``p``, ``gamma_min`` (default 1), ``gamma_max`` (default inf);
        ``kappa``, ``kappa_width``, ``gamma_cutoff`` (default inf).
        ``s``, ``theta`` and every parameter broadcast together, to any
        shape (scalars count as shape ``(1,)``).

    Returns
    -------
    ndarray, shape (..., 8)
        Columns ``j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V``:
        emissivities in erg s^-1 cm^-3 Hz^-1 sr^-1, absorption coefficients and
        rotativities in cm^-1, for ``nu = 1 Hz`` and ``n_e = 1 cm^-3``.
        Signs are symphony's (see :mod:`.emission`). A row whose inputs are
        out of range (``s <= 0``, ``theta`` at 0 or pi, bad
        distribution parameters) is all NaN; where a calculation fails
        numerically, its six emission and absorption coefficients are NaN
        together, and the two rotativities are NaN when :mod:`.rotativities`
        is missing or cannot compute them. This function never raises for a
        numerical failure.

    Raises
    ------
    UsageError
        For an unknown distribution or parameter name, a missing parameter, or
        inputs that do not broadcast together.

    Notes
    -----
    Rows with the same distribution parameters share one
    :class:`~.distributions.Distribution` (its normalization is computed once).
    Method, references and accuracy: :func:`.emission.emission_absorption`.
    """
    shape, s, theta, columns = _broadcast_inputs(distribution, s, theta, params)
    theta, v_sign = fold_angle(theta)
    out = _compute_flat(distribution, s, theta, columns)
    # j_V, alpha_V and rho_V flip sign under theta -> pi - theta.
    out[:, [4, 5, 7]] *= v_sign[:, np.newaxis]
    return out.reshape(shape + (8,))


def _compute_flat(distribution, s, theta, columns):
    """:func:`compute_coefficients` on flat arrays, ``theta`` in [0, pi/2]."""
    from .emission import emission_absorption

    n_rows = s.size
    out = np.full((n_rows, 8), np.nan)
    if n_rows == 0:
        return out

    # Group the rows by distribution parameters so that each distinct
    # distribution is built (and normalized) once.
    stacked = np.column_stack([columns[k] for k in PARAMETERS[distribution]])
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    inverse = np.ravel(inverse)
    for index, values in enumerate(unique):
        rows = np.flatnonzero(inverse == index)
        kwargs = dict(zip(PARAMETERS[distribution], values.tolist(), strict=True))
        try:
            dist = make_distribution(distribution, **kwargs)
        except NeurosynchroError as err:
            _log.info("rows %s: bad distribution parameters: %s", rows, err)
            continue
        out[rows, :6] = emission_absorption(dist, s[rows], theta[rows])
        valid = rows[
            (s[rows] > 0)
            & np.isfinite(s[rows])
            & (theta[rows] > 0)
            & (theta[rows] <= 0.5 * np.pi + 1e-12)
        ]
        if valid.size:
            out[valid, 6:] = _rotativities(
                dist, s[valid], np.minimum(theta[valid], 0.5 * np.pi)
            )
    return out


def _rotativities(dist, s, theta):
    """rho_Q and rho_V from :mod:`.rotativities`, or NaN where unavailable."""
    nan = np.full((s.size, 2), np.nan)
    try:
        from .rotativities import rotativities
    except ImportError:
        return nan
    try:
        rho_Q, rho_V = rotativities(dist, s, theta)
    except NotImplementedError:
        return nan
    except (ArithmeticError, ValueError, NeurosynchroError) as err:
        _log.warning("rotativities failed for %s: %s", dist, err)
        return nan
    result = np.column_stack(
        [
            np.broadcast_to(np.asarray(rho_Q, float), s.shape),
            np.broadcast_to(np.asarray(rho_V, float), s.shape),
        ]
    )
    return result
