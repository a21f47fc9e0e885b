"""Physical constants and the basic synchrotron scalings shared by modules.

Constants are CGS, from :mod:`pwkit.cgs`.
"""

import numpy as np
from pwkit import cgs

#: Elementary charge (esu).
e = cgs.e
#: Electron mass (g).
m_e = cgs.me
#: Speed of light (cm/s).
c = cgs.c


def cyclotron_frequency(B):
    """Non-relativistic electron cyclotron frequency.

    Parameters
    ----------
    B : array_like
        Magnetic field strength, Gauss.

    Returns
    -------
    nu_cyc : ndarray
        ``e B / (2 pi m_e c)``, Hz; same shape as ``B``.
    """
    return e * np.asarray(B, dtype=float) / (2 * np.pi * m_e * c)


# Columns of the eight coefficients (j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V,
# rho_Q, rho_V) that are emissivities; the others are attenuation terms.
_EMISSIVE = np.array([True, False, True, False, True, False, False, False])


def to_physical(coeffs, nu, n_e):
    """Rescale coefficients tabulated at nu = 1 Hz, n_e = 1 cm^-3.

    Parameters
    ----------
    coeffs : array_like, shape ``S + (8,)``
        ``j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V`` at
        ``nu = 1 Hz`` and ``n_e = 1 cm^-3`` for the wanted ``s`` and theta.
    nu : array_like, broadcastable to ``S``
        Frequency, Hz.
    n_e : array_like, broadcastable to ``S``
        Electron density, cm^-3.

    Returns
    -------
    ndarray, shape ``S + (8,)``
        The coefficients at ``nu`` and ``n_e``: emissivities times
        ``n_e nu``, absorption coefficients and rotativities times
        ``n_e / nu`` (at fixed harmonic number and angle; DESIGN.md).
    """
    nu = np.asarray(nu, dtype=float)[..., None]
    n_e = np.asarray(n_e, dtype=float)[..., None]
    return np.asarray(coeffs, dtype=float) * n_e * np.where(_EMISSIVE, nu, 1.0 / nu)


def fold_angle(theta):
    """Fold any angle into [0, pi/2], returning the V-term sign factor.

    Parameters
    ----------
    theta : ndarray
        Angle between the line of sight and the magnetic field, radians;
        any real value.

    Returns
    -------
    folded : ndarray
        The equivalent angle in [0, pi/2].
    v_sign : ndarray
        +1 where ``cos(theta) >= 0``, else -1: under ``theta -> pi - theta``
        the I and Q terms are unchanged and the V terms flip sign.
    """
    # arctan2 of |sin| and |cos| folds exactly, with no reduction by a
    # rounded 2 pi that drifts for large angles.
    cos, sin = np.cos(theta), np.sin(theta)
    folded = np.arctan2(np.abs(sin), np.abs(cos))
    return folded, np.where(cos < 0, -1.0, 1.0)
