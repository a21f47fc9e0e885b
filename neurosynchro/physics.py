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
