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
