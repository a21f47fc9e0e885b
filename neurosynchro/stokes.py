"""Rotation of the coefficients from the field-aligned to a fixed sky basis.

In the Stokes basis whose Q axis follows the projected magnetic field, the U
terms vanish and eight coefficients remain. A transfer code that follows a
ray through a changing field uses one fixed basis on the sky; there the
coefficients become eleven.
"""

import numpy as np

from .errors import UsageError
from .transform import COEFFICIENTS

#: Order of the eleven sky-basis coefficients.
SKY_COEFFICIENTS = (
    "j_I",
    "alpha_I",
    "j_Q",
    "alpha_Q",
    "j_U",
    "alpha_U",
    "j_V",
    "alpha_V",
    "rho_Q",
    "rho_U",
    "rho_V",
)


def detrivialize_stokes_basis(coeffs, psi):
    """Rotate the eight field-aligned coefficients into a fixed sky basis.

    Parameters
    ----------
    coeffs : array_like, shape ``S + (8,)``
        ``j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V`` in the basis
        whose Q axis lies along the projected magnetic field.
    psi : array_like, broadcastable to ``S``
        Angle, radians, from the sky basis' +Q axis to the projected magnetic
        field, measured in the sense that carries +Q towards +U (the sense in
        which position angle increases, east of north, when +Q is north and
        +U is north-east).

    Returns
    -------
    ndarray, shape ``S + (11,)``
        ``j_I, alpha_I, j_Q, alpha_Q, j_U, alpha_U, j_V, alpha_V, rho_Q,
        rho_U, rho_V``.

    Notes
    -----
    Linear-polarization terms are spin-2 quantities and rotate by twice the
    angle: ``X_Q' = X_Q cos 2psi`` and ``X_U' = X_Q sin 2psi`` for X in j,
    alpha, rho; the I and V terms are unchanged. So ``psi = 0`` is the
    identity, a quarter turn (``psi = pi/2``) maps Q into -Q, and
    ``sqrt(X_Q'^2 + X_U'^2) = |X_Q|`` is conserved.
    """
    coeffs = np.asarray(coeffs, dtype=float)
    if coeffs.ndim < 1 or coeffs.shape[-1] != len(COEFFICIENTS):
        raise UsageError(
            f"coeffs: expected a last axis of length 8 ({', '.join(COEFFICIENTS)}); "
            f"got shape {coeffs.shape}"
        )
    psi = np.asarray(psi, dtype=float)
    try:
        shape = np.broadcast_shapes(coeffs.shape[:-1], psi.shape)
    except ValueError:
        raise UsageError(
            f"psi (shape {psi.shape}) does not broadcast against the leading axes "
            f"of coeffs (shape {coeffs.shape})"
        ) from None
    coeffs = np.broadcast_to(coeffs, shape + (8,))
    cos2, sin2 = np.cos(2 * psi), np.sin(2 * psi)
    j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V = np.moveaxis(coeffs, -1, 0)
    return np.stack(
        [
            j_I,
            alpha_I,
            j_Q * cos2,
            alpha_Q * cos2,
            j_Q * sin2,
            alpha_Q * sin2,
            j_V,
            alpha_V,
            rho_Q * cos2,
            rho_Q * sin2,
            rho_V,
        ],
        axis=-1,
    )
