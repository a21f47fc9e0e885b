"""Synchrotron emission and absorption coefficients by exact harmonic summation.

For isotropic electrons the Stokes emissivities and absorption coefficients are
(Pandya, Zhang, Chandra & Gammie 2016, ApJ 822, 34, eqs. 3, 12 and 13, after
Leung, Gammie & Noble 2011, ApJ 737, 21)::

    j_S     =  (2 pi e^2 nu^2 / c) int d^3p f(p) sum_n delta(y_n) K_S
    alpha_S = -(c e^2 / nu)        int d^3p D(f)  sum_n delta(y_n) K_S

with ``y_n = n nu_cyc / gamma - nu (1 - beta cos(xi) cos(theta))`` and, for
``M = (cos(theta) - beta cos(xi)) / sin(theta)``, ``N = beta sin(xi)`` and
``z = (nu / nu_cyc) gamma beta sin(theta) sin(xi)``::

    K_I = M^2 J_n(z)^2 + N^2 J_n'(z)^2
    K_Q = M^2 J_n(z)^2 - N^2 J_n'(z)^2
    K_V = 2 M N J_n(z) J_n'(z)

For an isotropic ``f`` the operator ``D(f)`` reduces to ``(2 pi nu / (m_e
c^2)) df/dgamma``, so with ``dn/dgamma = 4 pi m_e^3 c^3 gamma^2 beta f``
(per electron) and ``s = nu / nu_cyc``::

    j_S     =  (pi e^2 nu / c) int dgamma (dn/dgamma) sum_n K_S / (beta cos theta)
    alpha_S = -(1 / (2 nu^2 m_e)) x [j_S with dn/dgamma -> (dn/dgamma) dlnf/dgamma]

the delta function having fixed ``cos(xi) = (gamma - n/s) / (gamma beta
cos(theta))``. The absorption form is the classical limit of the Einstein
relations, so it holds for any isotropic distribution and gives Kirchhoff's law
``alpha_S = j_S / B_nu(T)`` (Rayleigh-Jeans limit) for thermal electrons.

Numerical method
----------------
Each harmonic ``n`` is resonant on an ellipse in momentum space (for
``x = n / s > sin(theta)``), ``u_perp^2 + sin^2(theta) (u_par - x
cos(theta)/sin^2(theta))^2 = (x^2 - sin^2(theta)) / sin^2(theta)`` in units of
``m_e c``, parameterized here by ``t`` in ``[-1, 1]``::

    gamma = (x + cos(theta) sqrt(x^2 - sin^2 theta) t) / sin^2(theta)

so that the one-harmonic integral is regular for all ``theta`` up to and
including ``pi/2`` (the ``1 / cos(theta)`` cancels against the length of the
ellipse) and the Bessel argument obeys ``z = n w`` with ``1 - w^2 = a^2 + (1 -
a^2) t^2``, ``a = sin(theta) / x``.

The sum over harmonics is evaluated in one of two ways.

Where the first harmonics matter (the electrons that can resonate with them
emit more than 1e-9 of the total, judged from the bounds described below)::

    sum_{n >= n_min} I(n) = sum_{n = n_min}^{n_min + 29} I(n)
                            + (I(n_min + 30) - I(n_min + 29)) / 24
                            + int_{n_min + 29.5}^inf I(n) dn

where ``n_min`` is the first harmonic above ``s sin(theta)``: 30 harmonics
summed one by one, then the midpoint rule for the rest with its first
Euler-Maclaurin correction ``I'(n_min + 29.5) / 24`` (DLMF 2.10.1); the next
correction is of order ``I'''/5760``, far below the tolerance since ``I(n)``
is smooth on the scale of one harmonic there. The integral over ``n`` (real
order) uses the same one-harmonic integrals at Gauss-Legendre nodes in
``ln(n - n_min - 28.5)``.

Elsewhere (most points with ``s sin(theta) >~ 100``) the threshold region is
negligible and the sum is the integral over all harmonic numbers, written over
momentum: ``s int dgamma gamma (dn/dgamma) int dcos(xi) K_S`` with ``n = s
gamma (1 - beta cos(theta) cos(xi))`` continuous, whose inner integrand has a
single peak, at ``cos(xi) = beta cos(theta)``, of known width.

This is the scheme of symphony (Pandya et al. 2016, section 4.2), which sums
30 harmonics and integrates beyond, except that symphony starts its integral
at ``n_min + 30`` instead of ``n_min + 29.5`` and has no correction: it omits
about half a harmonic, and is up to 1-4% low where the emission comes from the
first harmonics (``s ~ 10``, ``theta_e ~ 1``, or small ``theta``);
``harmonic_sum="symphony"`` reproduces its choice for comparisons.

Where the distribution stops sharply (a power law's ``gamma_min > 1`` or
finite ``gamma_max``), ``df/dgamma`` holds a delta function and the absorption
gains the term ``-+(dn/dgamma) E_S`` at the edge, ``E_S`` being the resonant
kernel at that Lorentz factor; without it a truncated power law would absorb
``3 (p + 2) / 4`` times too much below the peak frequency of ``gamma_min``.

Every one-dimensional integral uses a fixed Gauss-Legendre rule on a
transformed variable: ``ln(gamma - 1)`` for the Lorentz factor, ``ln(n -
n_0 + 1)`` for the harmonic number, and ``asinh((cos(xi) - beta cos(theta)) /
width)`` or ``asinh(t / width)`` across the resonance peak (whose width
follows from the Debye exponent of ``J_n(n w)``). The range of each integral
is chosen per point by scanning a cheap upper bound of the integrand's
logarithm (the distribution times Kapteyn's bound ``|J_n(n w)| <= (w
exp(sqrt(1 - w^2)) / (1 + sqrt(1 - w^2)))^n``, Watson 1944, section 8.7, and
Landau's ``|J_n| <= 0.675 n^(-1/3)``) and keeping where it lies within
``exp(-30)`` of its maximum; the outer ranges, which can span decades for
flat power laws, get extra nodes in their tails. Bessel functions of order
below 15 come from :func:`scipy.special.jv` (with ``J_n' = J_{n-1} - (n/z)
J_n``); above, from the uniform Airy-type expansion with its first two
corrections (DLMF 10.20.4, 10.20.7), evaluated with numba at about a tenth of
the cost and accurate to 3e-6 or better.

Accuracy: doubling every node count and the scans, and widening the kept
ranges to ``exp(-40)``, changes no coefficient by more than 5e-7 relative on
samples of symphony's table rows; against direct adaptive summation of the
harmonics at low harmonic numbers the differences are below 1e-6. Against
symphony's tables (good to 1e-3) the median difference is about 1e-4; see
``benchmarks/bench_calc.py``. Known limit: a point whose emission comes
from harmonics above ``MAX_ORDER`` fails (NaN); that happens for none of the
tables' rows, nor for power laws with ``p >= 1.05`` or kappa distributions
with ``kappa >= 2.1`` up to ``s = 1e7``.

Signs
-----
As symphony's tables (``shared/data/symphony/README.md``): Stokes Q is positive
along the projection of the field on the sky, so ordinary synchrotron emission
has ``j_Q < 0`` and ``alpha_Q < 0``; V follows the IEEE/IAU convention, with
``j_V > 0`` and ``alpha_V > 0`` for electrons at ``0 < theta < pi/2``. At
``theta = pi/2`` the V terms vanish.
"""

import logging

import numba
import numpy as np
from scipy import special

from ..errors import CalculationError, UsageError
from ..physics import c, e, m_e

__all__ = ["emission_absorption", "HARMONIC_SUMS"]

_log = logging.getLogger(__name__)

#: Treatments of the harmonic sum :func:`emission_absorption` accepts.
HARMONIC_SUMS = ("exact", "symphony")

#: Harmonics summed exactly above the resonance threshold (as symphony).
N_EXACT = 30
#: Gauss-Legendre nodes in ln(gamma - 1) for the continuum over momentum, and
#: in ln(n - n_0 + 1) for the integral over harmonic number.
N_GAMMA = 48
#: Half width, in the log variables, of the part of a wide outer range that
#: gets N_GAMMA nodes; the rest gets N_TAIL nodes on each side.
OUTER_HALF_WIDTH = 8.0
N_TAIL = 32
#: Gauss-Legendre nodes across the pitch-angle peak for the continuum.
N_MU = 32
#: Gauss-Legendre nodes along one harmonic's resonance ellipse.
N_T = 32
#: Points of the scans that choose each integration range.
N_SCAN = 64
#: Integrands are kept where their bound is within exp(-LOG_DROP) of the peak.
LOG_DROP = 30.0
#: The threshold-harmonic correction is skipped when its bound is below this
#: fraction of the continuum's.
NEGLIGIBLE = 1e-9
#: Most harmonics summed one by one for the absorption edge terms.
MAX_RESONANT = 4000
#: Largest harmonic number evaluated: results are stable to 1e-5 when it is
#: raised from 1e16 to 1e18, less so beyond, where double precision starts to
#: blur 1 - w^2 ~ n^(-2/3). A point whose emission beyond is not negligible
#: (below 1e-6 of the total) fails.
MAX_ORDER = 1e18


def _gauss_legendre(n, _cache={}):  # noqa: B006 -- a deliberate memo
    if n not in _cache:
        _cache[n] = np.polynomial.legendre.leggauss(n)
    return _cache[n]


def _log_kernel_bound(q2, n):
    """Log of an upper estimate of ``K_S / (M^2 + N^2)`` at ``w^2 = 1 - q2``.

    ``J_n(n w)^2`` is bounded by Kapteyn's ``[w exp(q) / (1 + q)]^(2n)`` with
    ``q = sqrt(1 - w^2)`` (Watson 1944, section 8.7; also the Debye exponent)
    and by Landau's ``b^2 n^(-2/3)``, ``b = 0.6749`` (Landau 2000, J. London
    Math. Soc. 61, 197). Near the turning point ``J_n'/J_n`` and the factor
    ``M`` scale as ``max(q, n^(-1/3))``, hence the last term. Used only to
    choose integration ranges, so factors of order unity do not matter.
    """
    q2 = np.clip(q2, 0.0, 1.0)
    q = np.sqrt(q2)
    with np.errstate(divide="ignore"):
        kapteyn = 2.0 * n * (0.5 * np.log1p(-q2) + q - np.log1p(q))
        landau = 2.0 * np.log(0.6749) - (2.0 / 3.0) * np.log(n)
        return np.minimum(kapteyn, landau) + np.log(np.maximum(q2, n ** (-2.0 / 3.0)))


def _gamma_ceiling(dist):
    """An upper Lorentz factor beyond which nothing measurable is emitted."""
    if np.isfinite(dist.gamma_max):
        return dist.gamma_max
    theta_e = getattr(dist, "theta_e", None)
    if theta_e is not None:
        # exp(-(gamma - 1)/theta_e) underflows well before this.
        return 1.0 + 1500.0 * theta_e
    cutoff = getattr(dist, "gamma_cutoff", np.inf)
    if np.isfinite(cutoff):
        return 1.0 + 1500.0 * cutoff
    return 1e16


def _range_from_scan(grid, psi, drop=None):
    """Sub-range of each row of ``grid`` where ``psi`` is within ``drop`` of max.

    Parameters
    ----------
    grid, psi : ndarray, shape (R, K)
        Scan abscissae (increasing along axis 1) and log-integrand bounds.
    drop : float, optional
        Default ``LOG_DROP``.

    Returns
    -------
    low, high : ndarray, shape (R,)
        The range, widened by one scan step on each side; equal where the
        whole row is ``-inf``.
    peak : ndarray, shape (R,)
        The maximum of ``psi`` over each row.
    """
    drop = LOG_DROP if drop is None else drop
    psi = np.where(np.isnan(psi), -np.inf, psi)
    peak = psi.max(axis=1)
    keep = psi >= (peak - drop)[:, None]
    n_points = grid.shape[1]
    first = np.argmax(keep, axis=1)
    last = n_points - 1 - np.argmax(keep[:, ::-1], axis=1)
    first = np.maximum(first - 1, 0)
    last = np.minimum(last + 1, n_points - 1)
    rows = np.arange(grid.shape[0])
    low, high = grid[rows, first], grid[rows, last]
    dead = ~np.isfinite(peak)
    low[dead] = high[dead] = grid[dead, 0]
    return low, high, peak


def _tail_fraction(u, psi):
    """Estimated share of ``int exp(psi) du`` beyond the end of a uniform scan.

    Extrapolates the last step's log-slope as an exponential tail.
    """
    step = u[1] - u[0]
    finite = np.isfinite(psi)
    if not finite[-1]:
        return 0.0
    top = psi[finite].max()
    total = np.sum(np.exp(psi[finite] - top)) * step
    slope = (psi[-2] - psi[-1]) / step
    if not slope > 0:
        return np.inf
    return np.exp(psi[-1] - top) / slope / total


def _gl_nodes(low, high, n_nodes):
    """Gauss-Legendre nodes and weights on each ``[low, high]``; shape (R, n)."""
    x, w = _gauss_legendre(n_nodes)
    half = 0.5 * (high - low)[:, None]
    return 0.5 * (high + low)[:, None] + half * x, half * w


def _outer_nodes(low, high, peak):
    """Gauss-Legendre nodes and weights on ``[low, high]`` around a peak.

    Ranges up to ``2 OUTER_HALF_WIDTH`` wide get ``N_GAMMA`` nodes; wider ones
    (slowly falling power-law tails) are split into the part within
    ``OUTER_HALF_WIDTH`` of ``peak``, with ``N_GAMMA`` nodes, and the tails
    on either side, with ``N_TAIL`` each.

    Returns
    -------
    nodes, weights : ndarray, shape (M,)
    """
    if high - low <= 2.0 * OUTER_HALF_WIDTH:
        nodes, weights = _gl_nodes(np.array([low]), np.array([high]), N_GAMMA)
        return nodes[0], weights[0]
    centre_low = min(max(peak - OUTER_HALF_WIDTH, low), high - 2.0 * OUTER_HALF_WIDTH)
    centre_high = centre_low + 2.0 * OUTER_HALF_WIDTH
    pieces = [(centre_low, centre_high, N_GAMMA)]
    if centre_low > low:
        pieces.append((low, centre_low, N_TAIL))
    if centre_high < high:
        pieces.append((centre_high, high, N_TAIL))
    nodes, weights = [], []
    for a, b, count in pieces:
        x, w = _gl_nodes(np.array([a]), np.array([b]), count)
        nodes.append(x[0])
        weights.append(w[0])
    return np.concatenate(nodes), np.concatenate(weights)


# Maclaurin coefficients of Ai (DLMF 9.4.1): Ai = AI0 f - AIP0 g with
# f = sum x^3k / prod, g = sum x^(3k+1) / prod; each array holds the ratio of
# successive terms divided by x^3, for the series and their derivatives.
_AI0 = 0.355028053887817239  # Ai(0)
_AIP0 = 0.258819403792806798  # -Ai'(0)
_K = np.arange(40.0)
_F_STEP = 1.0 / ((3 * _K + 2) * (3 * _K + 3))
_G_STEP = 1.0 / ((3 * _K + 3) * (3 * _K + 4))
_FP_STEP = 1.0 / ((3 * _K + 3) * (3 * _K + 5))
_GP_STEP = 1.0 / ((3 * _K + 1) * (3 * _K + 3))
# Asymptotic coefficients u_k, v_k of Ai and Ai' for large x (DLMF 9.7.2).
_U = np.ones(40)
for _k in range(1, 40):
    _U[_k] = (
        _U[_k - 1]
        * (6 * _k - 5)
        * (6 * _k - 3)
        * (6 * _k - 1)
        / ((2 * _k - 1) * 216.0 * _k)
    )
_V = np.array([1.0] + [-(6 * k + 1) / (6 * k - 1) * _U[k] for k in range(1, 40)])
#: Where the Airy Maclaurin series hands over to the asymptotic series: both
#: are accurate to 1e-7 relative there (round-off growing as exp(4x^1.5/3)
#: in the first, truncation falling as exp(-4x^1.5/3) in the second).
_AIRY_SWITCH = 5.9


@numba.njit(cache=True)
def _airy(x):
    """``Ai(x), Ai'(x)`` for ``x >= 0``, relative accuracy 1e-7."""
    if x <= _AIRY_SWITCH:
        x3 = x * x * x
        f = 1.0
        t = 1.0
        g = x
        tg = x
        fp = 0.5 * x * x
        tfp = fp
        gp = 1.0
        tgp = 1.0
        for k in range(40):
            t *= x3 * _F_STEP[k]
            tg *= x3 * _G_STEP[k]
            tfp *= x3 * _FP_STEP[k]
            tgp *= x3 * _GP_STEP[k]
            f += t
            g += tg
            fp += tfp
            gp += tgp
            if (
                t <= 1e-16 * f
                and tg <= 1e-16 * g
                and tfp <= 1e-16 * fp
                and tgp <= 1e-16 * gp
            ):
                break
        return _AI0 * f - _AIP0 * g, _AI0 * fp - _AIP0 * gp
    xi = (2.0 / 3.0) * x * np.sqrt(x)
    inverse = -1.0 / xi
    power = 1.0
    sum_u = 1.0
    sum_v = 1.0
    last = 1.0
    for k in range(1, 40):
        power *= inverse
        term = _U[k] * power
        size = abs(term)
        # Stop at the smallest term (optimal truncation) or at round-off.
        if size > last:
            break
        sum_u += term
        sum_v += _V[k] * power
        if size < 1e-13:
            break
        last = size
    scale = np.exp(-xi) / (2.0 * np.sqrt(np.pi))
    root4 = np.sqrt(np.sqrt(x))
    return scale / root4 * sum_u, -scale * root4 * sum_v


@numba.njit(cache=True)
def _zeta_over_q2(q2):
    """``zeta / (1 - w^2)`` where ``(2/3) zeta^(3/2) = atanh(q) - q``, ``q^2 = q2``.

    DLMF 10.20.2 with ``q = sqrt(1 - w^2)``; the series of ``atanh(q) - q``
    keeps full precision near the turning point ``q -> 0``.
    """
    q = np.sqrt(q2)
    if q < 0.25:
        total = 0.0
        power = 1.0
        for k in range(40):
            term = power / (2 * k + 3)
            total += term
            power *= q2
            if term < 1e-16 * total:
                break
        return (1.5 * total) ** (2.0 / 3.0)
    return (1.5 * (np.arctanh(q) - q)) ** (2.0 / 3.0) / q2


@numba.njit(cache=True)
def _bessel_uniform(order, q2, J, dJ):
    """``J_n(n w)`` and ``J_n'(n w)`` by the uniform (Airy) expansion.

    DLMF 10.20.4 and 10.20.7 with the terms ``A_0 = D_0 = 1``, ``B_0``,
    ``C_0``, ``A_1`` and ``D_1`` (DLMF 10.20.10-11), for ``w^2 = 1 - q2`` in
    ``(0, 1)``. The neglected terms are ``O(n^-3)`` relative: the error is
    below 3e-6 for ``n >= 15``, 4e-7 for ``n >= 30`` and about 1e-7 (that of
    :func:`_airy`) beyond (checked against :func:`scipy.special.jv` in the
    tests). Arrays of any equal shape, written into ``J`` and ``dJ``.
    """
    flat_n = order.ravel()
    flat_q2 = q2.ravel()
    out_J = J.ravel()
    out_dJ = dJ.ravel()
    for i in range(flat_n.size):
        n = flat_n[i]
        qq = flat_q2[i]
        if not (qq < 1.0) or n <= 0.0:
            out_J[i] = 0.0
            out_dJ[i] = 0.0
            continue
        ratio = _zeta_over_q2(qq)
        n13 = n ** (1.0 / 3.0)
        ai, aip = _airy(n13 * n13 * ratio * qq)
        if ai == 0.0 and aip == 0.0:
            out_J[i] = 0.0
            out_dJ[i] = 0.0
            continue
        # B_0, C_0, A_1 and D_1 (DLMF 10.20.10-11 with U_k, V_k of 10.41.10
        # and u_k, v_k of 9.7.2) written over powers of q^2 so that their
        # singular parts, which cancel at the turning point, combine in the
        # numerators; close to it they are evaluated a little away, where
        # they have their limits to the accuracy needed.
        qc = max(qq, 1e-5)
        rc = ratio if qq >= 1e-5 else _zeta_over_q2(qc)
        B0 = (-5.0 / (48.0 * rc * rc) + (5.0 - 3.0 * qc) / (24.0 * np.sqrt(rc))) / (
            qc * qc
        )
        C0 = (7.0 / (48.0 * rc) + np.sqrt(rc) * (9.0 * qc - 7.0) / 24.0) / qc
        qd = max(qq, 2e-3)
        rd = ratio if qq >= 2e-3 else _zeta_over_q2(qd)
        r32 = 1.0 / (rd * np.sqrt(rd))
        r3 = r32 * r32
        A1 = (
            (81.0 * qd * qd - 462.0 * qd + 385.0) / 1152.0
            + 1.5 * (-7.0 / 72.0) * r32 * (3.0 * qd - 5.0) / 24.0
            + 2.25 * (-455.0 / 10368.0) * r3
        ) / (qd * qd * qd)
        D1 = (
            (-135.0 * qd * qd + 594.0 * qd - 455.0) / 1152.0
            + 1.5 * (5.0 / 72.0) * r32 * (7.0 - 9.0 * qd) / 24.0
            + 2.25 * (385.0 / 10368.0) * r3
        ) / (qd * qd * qd)
        factor = np.sqrt(np.sqrt(4.0 * ratio))
        n23 = n13 * n13
        inv_n2 = 1.0 / (n * n)
        out_J[i] = factor * (
            ai / n13 * (1.0 + A1 * inv_n2) + aip * B0 / (n23 * n23 * n13)
        )
        out_dJ[i] = (
            -2.0
            / (np.sqrt(1.0 - qq) * factor)
            * (ai * C0 / (n23 * n23) + aip / n23 * (1.0 + D1 * inv_n2))
        )


#: Harmonic numbers from which the uniform expansion replaces scipy.special.jv.
N_UNIFORM = 15


def _kernels(order, z, q2, M, N):
    """``K_I, K_Q, K_V`` (Pandya et al. 2016, eqs. 4-7) at equal-shape arrays.

    ``order`` is the harmonic number ``n``, ``z = n w`` the Bessel argument and
    ``q2 = 1 - w^2`` (computed from the geometry without cancellation). Below
    ``N_UNIFORM`` the Bessel functions come from :func:`scipy.special.jv`, with
    ``J_n' = J_{n-1} - (n/z) J_n`` (DLMF 10.6.2); above, from the uniform
    expansion (:func:`_bessel_uniform`). ``K_V`` carries the sign that gives
    ``j_V > 0`` for electrons at ``theta < pi/2`` (IEEE/IAU).
    """
    order, z, q2 = np.broadcast_arrays(order, z, q2)
    J = np.empty(order.shape)
    dJ = np.empty(order.shape)
    high = order >= N_UNIFORM
    if np.any(high):
        J_high = np.empty(np.count_nonzero(high))
        dJ_high = np.empty_like(J_high)
        _bessel_uniform(
            np.ascontiguousarray(order[high]),
            np.ascontiguousarray(q2[high]),
            J_high,
            dJ_high,
        )
        J[high] = J_high
        dJ[high] = dJ_high
    low = ~high
    if np.any(low):
        n_low, z_low = order[low], z[low]
        J_low = special.jv(n_low, z_low)
        with np.errstate(divide="ignore", invalid="ignore"):
            dJ_low = special.jv(n_low - 1.0, z_low) - (n_low / z_low) * J_low
        J[low] = J_low
        dJ[low] = np.where(z_low > 0, dJ_low, 0.0)
    MJ = M * J
    NdJ = N * dJ
    return MJ * MJ + NdJ * NdJ, MJ * MJ - NdJ * NdJ, 2.0 * MJ * NdJ


class _Point:
    """Geometry of one (s, theta) point."""

    def __init__(self, s, theta):
        self.s = float(s)
        self.theta = float(theta)
        self.sin = np.sin(self.theta)
        # cos(pi/2) is 6e-17 in floating point; make the perpendicular case exact.
        self.cos = 0.0 if self.theta == 0.5 * np.pi else np.cos(self.theta)


def _weights(dist, gamma):
    """Emission and absorption weights ``dn/dgamma`` and ``dn/dgamma dlnf``.

    ``d ln f / d gamma`` of a power law diverges at ``gamma = 1``, where the
    kernels vanish as a power of ``beta``; the weight is set to zero there.
    """
    n = dist.dn_dgamma(gamma)
    with np.errstate(invalid="ignore", divide="ignore"):
        absorption = n * dist.dlnf_dgamma(gamma)
    return n, np.where((n > 0) & np.isfinite(absorption), absorption, 0.0)


def _log_sum_exp(values, axis=None):
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(values - top), axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis)


def _log_estimates(dist, gamma, log_terms):
    """Log of the sum of ``exp(log_terms)``, with emission and absorption weights.

    ``log_terms`` holds the log of a bound on the integrand times the node
    spacing, with the emission weight ``dn/dgamma``; the absorption version
    multiplies by ``|d ln f / d gamma|``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(np.abs(dist.dlnf_dgamma(gamma)))
    ratio = np.where(np.isnan(ratio), -np.inf, ratio)
    return np.array([_log_sum_exp(log_terms), _log_sum_exp(log_terms + ratio)])


def _pitch_angle_integral(point, gamma):
    """``int_{-1}^{1} K_S dcos(xi)`` at fixed Lorentz factors, continuous ``n``.

    Parameters
    ----------
    point : _Point
    gamma : ndarray, shape (G,)
        Lorentz factors (> 1).

    Returns
    -------
    ndarray, shape (3, G)
        For Stokes I, Q, V, with ``n = s gamma (1 - beta cos(theta) cos(xi))``.
    """
    s, st, ct = point.s, point.sin, point.cos
    # Pitch-angle peak at cos(xi) = beta cos(theta); width from the Debye
    # exponent: 1 - w^2 = (sin^2/gamma^2 + (beta mu - cos)^2) / (1 - beta cos mu)^2.
    gb = np.sqrt((gamma - 1.0) * (gamma + 1.0))
    beta = gb / gamma
    one_minus = 1.0 - (beta * ct) ** 2
    n_peak = s * gamma * one_minus
    q_peak = 1.0 / (gamma * np.sqrt(one_minus))
    width = np.minimum(
        np.maximum(q_peak, n_peak ** (-1.0 / 3.0)) * one_minus / beta, 2.0
    )
    mu_peak = beta * ct
    G, B, W = gamma[:, None], beta[:, None], width[:, None]

    def mu_of(v):
        return mu_peak[:, None] + W * np.sinh(v)

    v_lo = np.arcsinh((-1.0 - mu_peak) / width)
    v_hi = np.arcsinh((1.0 - mu_peak) / width)
    v = v_lo[:, None] + (v_hi - v_lo)[:, None] * np.linspace(0.0, 1.0, N_SCAN)
    mu = mu_of(v)
    denominator = 1.0 - B * ct * mu
    q2 = (st * st / (G * G) + (B * mu - ct) ** 2) / denominator**2
    with np.errstate(divide="ignore"):
        psi = (
            _log_kernel_bound(q2, s * G * denominator)
            + np.log(W * np.cosh(v))
            + np.log1p(-np.minimum(mu * mu, 1.0))
        )
    low, high, _ = _range_from_scan(v, psi)
    v, w_v = _gl_nodes(low, high, N_MU)
    mu = np.clip(mu_of(v), -1.0, 1.0)
    w_mu = w_v * W * np.cosh(v)

    sin_xi = np.sqrt((1.0 - mu) * (1.0 + mu))
    denominator = 1.0 - B * ct * mu
    order = s * G * denominator
    z = s * gb[:, None] * st * sin_xi
    q2 = (st * st / (G * G) + (B * mu - ct) ** 2) / denominator**2
    M = (ct - B * mu) / st
    N = B * sin_xi
    K = _kernels(order, z, q2, M, N)
    return np.stack([np.sum(k * w_mu, axis=1) for k in K])


def _resonance_kernel(point, gamma):
    """Per-unit-gamma kernel ``E_S(gamma) = sum_n K_S / (beta cos(theta))``.

    The sum runs over the harmonics resonant at this Lorentz factor (Pandya et
    al. 2016, eq. 3 after the delta function), so that ``j_S = (pi e^2 nu / c)
    int dgamma (dn/dgamma) E_S``. Up to ``MAX_RESONANT`` harmonics are summed
    one by one; beyond, their sum equals ``s gamma int K_S dcos(xi)`` (the
    summand vanishes smoothly at both ends of the resonant range, so the
    Euler-Maclaurin corrections vanish). At ``theta = pi/2`` every harmonic
    resonates only at ``gamma = n/s`` and the continuous form is used.

    Returns
    -------
    ndarray, shape (3,)
    """
    s, st, ct = point.s, point.sin, point.cos
    gb = np.sqrt((gamma - 1.0) * (gamma + 1.0))
    beta = gb / gamma
    n_low = s * gamma * (1.0 - beta * ct)
    n_high = s * gamma * (1.0 + beta * ct)
    if ct == 0.0 or n_high - n_low > MAX_RESONANT:
        return s * gamma * _pitch_angle_integral(point, np.array([gamma]))[:, 0]
    order = np.arange(np.floor(n_low) + 1.0, np.ceil(n_high))
    if order.size == 0:
        return np.zeros(3)
    mu = (gamma - order / s) / (gb * ct)
    sin_xi = np.sqrt(np.clip((1.0 - mu) * (1.0 + mu), 0.0, None))
    z = s * gb * st * sin_xi
    q2 = (st * st / gamma**2 + (beta * mu - ct) ** 2) / (1.0 - beta * ct * mu) ** 2
    K = _kernels(order, z, q2, (ct - beta * mu) / st, beta * sin_xi)
    return np.array([np.sum(k) for k in K]) / (beta * ct)


class _MomentumScan:
    """Scan of the continuum's integrand over ``ln(gamma - 1)``.

    Chooses the Lorentz-factor range of :func:`_continuum` and estimates, from
    bounds of the integrand, how much of the emission comes from electrons
    that can resonate with the first harmonics.

    Attributes
    ----------
    low, high : float
        Range of ``ln(gamma - 1)`` to integrate; ``live`` is False when the
        integrand vanishes everywhere.
    log_total : ndarray, shape (2,)
        Logs of rough bounds on the emission and absorption integrals.
    log_below_cut : ndarray, shape (2,)
        The same, from electrons that can resonate with harmonics below
        ``n_cut`` only (``s gamma (1 - beta cos(theta)) < n_cut``): an upper
        estimate of what the threshold treatment can change.
    """

    def __init__(self, dist, point, n_cut):
        s, ct = point.s, point.cos
        gamma_low = max(dist.gamma_min, 1.0 + 1e-12)
        gamma_high = _gamma_ceiling(dist)
        # Harmonic numbers reach 2 s gamma; beyond MAX_ORDER they are not
        # evaluated, and the emission there must be negligible (checked below).
        gamma_cap = MAX_ORDER / (2.0 * s)
        capped = gamma_high > gamma_cap
        gamma_high = min(gamma_high, gamma_cap)
        if gamma_high <= gamma_low:
            raise CalculationError(f"s = {s:g} is too large for this calculator")

        def proxy(gamma):
            """Log bound of the gamma integrand per unit ln(gamma - 1)."""
            gb2 = (gamma - 1.0) * (gamma + 1.0)
            beta2 = gb2 / (gamma * gamma)
            one_minus = 1.0 - beta2 * ct * ct
            n_peak = s * gamma * one_minus
            q2_peak = 1.0 / (gamma * gamma * one_minus)
            width = np.minimum(
                np.maximum(np.sqrt(q2_peak), n_peak ** (-1.0 / 3.0))
                * one_minus
                / np.sqrt(beta2),
                2.0,
            )
            with np.errstate(divide="ignore"):
                return (
                    np.log(dist.dn_dgamma(gamma))
                    + np.log(gamma - 1.0)
                    + np.log(s * gamma * width * beta2 * one_minus)
                    + _log_kernel_bound(q2_peak, n_peak)
                )

        # Coarse scan in ln(gamma - 1), then a finer one over the live part.
        u = np.linspace(np.log(gamma_low - 1.0), np.log(gamma_high - 1.0), 2 * N_SCAN)
        psi = proxy(1.0 + np.exp(u))
        low, high, peak = _range_from_scan(u[None], psi[None], 2 * LOG_DROP)
        self.live = bool(np.isfinite(peak[0]))
        self.log_total = np.full(2, -np.inf)
        self.log_below_cut = np.full(2, -np.inf)
        if not self.live:
            return
        gamma_scan = 1.0 + np.exp(u)
        log_terms = psi + np.log(u[1] - u[0])
        self.log_total = _log_estimates(dist, gamma_scan, log_terms)
        beta_scan = np.sqrt((gamma_scan - 1.0) * (gamma_scan + 1.0)) / gamma_scan
        lowest_order = s * gamma_scan * (1.0 - beta_scan * ct)
        self.log_below_cut = _log_estimates(
            dist, gamma_scan, np.where(lowest_order < n_cut, log_terms, -np.inf)
        )
        if capped and _tail_fraction(u, psi) > 1e-6:
            raise CalculationError(
                f"emission from Lorentz factors above {gamma_cap:.3g} (harmonics "
                f"above {MAX_ORDER:.0e}) is not negligible at s = {s:g}"
            )
        u = np.linspace(low[0], high[0], 2 * N_SCAN)
        psi = proxy(1.0 + np.exp(u))
        low, high, _ = _range_from_scan(u[None], psi[None])
        self.low, self.high = low[0], high[0]
        self.peak = u[np.argmax(psi)]


def _continuum(dist, point, scan):
    """``int_{s sin theta}^inf I(n) dn`` over momentum: shape (2, 3).

    Rows emission, absorption; columns I, Q, V, without the prefactors; the
    Lorentz-factor range comes from ``scan`` (a :class:`_MomentumScan`).
    """
    u, w_u = _outer_nodes(scan.low, scan.high, scan.peak)
    gamma = 1.0 + np.exp(u)
    w_gamma = w_u * (gamma - 1.0)
    inner = _pitch_angle_integral(point, gamma)
    n_em, n_abs = _weights(dist, gamma)
    factor = point.s * gamma * w_gamma
    return np.stack([inner @ (factor * n_em), inner @ (factor * n_abs)])


class _HarmonicScan:
    """Geometry of harmonics ``orders`` and a scan of their integrands' bounds.

    Along harmonic ``n``'s resonance ellipse (module docstring) the integrand
    is scanned on ``N_SCAN`` points uniform in ``v = asinh(t / width)``, within
    the support of the distribution. ``log_size`` is the log of a rough
    bound on each ``|I(n)|`` (emission weight).
    """

    def __init__(self, dist, point, orders):
        s, st, ct = point.s, point.sin, point.cos
        x = orders / s
        self.live = x > st
        orders, x = orders[self.live], x[self.live]
        a = st / x
        root = np.sqrt((x - st) * (x + st))
        sin2 = st * st

        # Range of t inside the support of the distribution.
        gamma_low = max(dist.gamma_min, 1.0)
        gamma_high = _gamma_ceiling(dist)
        slope = ct * root / sin2
        with np.errstate(divide="ignore", invalid="ignore"):
            t_low = np.where(slope > 0, (gamma_low - x / sin2) / slope, -1.0)
            t_high = np.where(slope > 0, (gamma_high - x / sin2) / slope, 1.0)
        t_low = np.clip(t_low, -1.0, 1.0)
        t_high = np.clip(t_high, -1.0, 1.0)
        if ct == 0.0:
            inside = (x / sin2 >= gamma_low) & (x / sin2 <= gamma_high)
            t_high = np.where(inside, t_high, t_low)
        width = np.minimum(
            np.maximum(a, orders ** (-1.0 / 3.0)) / np.sqrt(1.0 - a * a), 1.0
        )
        self.orders, self.a, self.root, self.width = orders, a, root, width
        self.point = point
        self.columns = [v[:, None] for v in (orders, x, a, root, width)]

        v_lo, v_hi = np.arcsinh(t_low / width), np.arcsinh(t_high / width)
        v = v_lo[:, None] + (v_hi - v_lo)[:, None] * np.linspace(0.0, 1.0, N_SCAN)
        t, gamma = self.geometry(v)
        O, _, A, _, W = self.columns
        with np.errstate(divide="ignore", invalid="ignore"):
            psi = (
                np.log(dist.dn_dgamma(gamma))
                + _log_kernel_bound(A * A + (1.0 - A * A) * t * t, O)
                + np.log(W * np.cosh(v))
                + np.log1p(-np.minimum(t * t, 1.0))
                - 0.5 * np.log1p(-1.0 / (gamma * gamma))
            )
        self.v, self.psi, self.gamma = v, psi, gamma
        step = (v_hi - v_lo) / (N_SCAN - 1)
        with np.errstate(divide="ignore"):
            self.log_step = np.log(step * root / sin2)
        self.log_size = _log_sum_exp(psi + self.log_step[:, None], axis=1)

    def geometry(self, v):
        """``t`` and ``gamma`` at ``v``, shape (len(orders), ...)."""
        _, X, _, R, W = self.columns
        st, ct = self.point.sin, self.point.cos
        t = W * np.sinh(v)
        gamma = (X + ct * R * t) / (st * st)
        return t, np.maximum(gamma, 1.0)


def _harmonics(dist, point, orders, coefficients):
    """``sum_k coefficients_k I(orders_k)``: shape (2, 3) as :func:`_continuum`.

    ``I(n)`` is the integral along harmonic ``n``'s resonance ellipse, in the
    parameter ``t`` described in the module docstring; ``orders`` may be
    integer (harmonics) or not (quadrature nodes in ``n``).
    """
    s, st, ct = point.s, point.sin, point.cos
    scan = _HarmonicScan(dist, point, orders)
    if scan.orders.size == 0:
        return np.zeros((2, 3))
    coefficients = coefficients[scan.live]
    v, psi = scan.v, scan.psi
    O, X, A, R, W = scan.columns
    root, sin2 = scan.root, st * st
    low, high, peak = _range_from_scan(v, psi)
    v, w_v = _gl_nodes(low, high, N_T)
    t, gamma = scan.geometry(v)
    t = np.clip(t, -1.0, 1.0)
    w_t = w_v * W * np.cosh(v)

    # Momentum components (units of m_e c) on the ellipse.
    u_par = (X * ct + R * t) / sin2
    u_perp = (R / st) * np.sqrt((1.0 - t) * (1.0 + t))
    gb = np.sqrt(u_par * u_par + u_perp * u_perp)
    beta = gb / gamma
    M = (ct - u_par / gamma) / st
    N = u_perp / gamma
    z = s * st * u_perp
    K = _kernels(O, z, A * A + (1.0 - A * A) * t * t, M, N)

    n_em, n_abs = _weights(dist, gamma)
    with np.errstate(divide="ignore", invalid="ignore"):
        base = np.where(gb > 0, w_t / beta, 0.0) * (root / sin2)[:, None]
    base = base * coefficients[:, None]
    return np.array(
        [[np.sum(k * base * n) for k in K] for n in (n_em, n_abs)], dtype=float
    )


def _edge_terms(dist, point):
    """Absorption from steps of ``f`` at ``gamma_min`` and ``gamma_max``: (3,).

    Where the distribution is cut off sharply, ``d f / d gamma`` holds delta
    functions, ``+f`` at the lower edge and ``-f`` at the upper one, and the
    absorption integral picks up ``(dn/dgamma) E_S`` there with those signs
    (equivalently: integrate the absorption by parts, Rybicki & Lightman 1979,
    eq. 6.52). They vanish at ``gamma = 1``, where ``E_S = 0``.
    """
    out = np.zeros(3)
    for gamma, sign in ((dist.gamma_min, 1.0), (dist.gamma_max, -1.0)):
        if not (1.0 < gamma < np.inf):
            continue
        # The density just inside the support.
        inside = gamma * (1.0 + 1e-12) if sign > 0 else gamma * (1.0 - 1e-12)
        density = float(dist.dn_dgamma(inside))
        if density > 0:
            out += sign * density * _resonance_kernel(point, gamma)
    return out


def _continuum_orders(dist, point, start):
    """Nodes and weights in ``n`` for ``int_start^inf I(n) dn``.

    Used where the first harmonics matter, so that the exact sum and the
    integral beyond meet at ``start`` without cancellation. The variable is
    ``ln(n - start + 1)``, resolving one harmonic near ``start`` and decades
    further on; a scan of the bound on ``I(n)`` (:class:`_HarmonicScan`)
    chooses the range. Where a cut-off Lorentz factor ``gamma_e > 1`` of the
    distribution lies on a resonance ellipse's tip, ``n = s gamma_e (1 -+
    beta_e cos(theta))``, ``I(n)`` has a kink; the range is split there.

    Returns
    -------
    orders, coefficients : ndarray, shape (M,)
    """
    breaks = []
    for edge in (dist.gamma_min, dist.gamma_max):
        if 1.0 < edge < np.inf:
            beta = np.sqrt((edge - 1.0) * (edge + 1.0)) / edge
            for sign in (-1.0, 1.0):
                kink = point.s * edge * (1.0 + sign * beta * point.cos)
                if start < kink < MAX_ORDER:
                    breaks.append(kink)
    edges = np.concatenate([[start], np.unique(breaks), [MAX_ORDER]])
    pieces = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        u = np.linspace(0.0, np.log(high - low + 1.0), 2 * N_SCAN)
        orders = low - 1.0 + np.exp(u)
        scan = _HarmonicScan(dist, point, orders)
        log_size = np.full(u.size, -np.inf)
        # dn = (n - low + 1) du
        log_size[scan.live] = scan.log_size + u[scan.live]
        pieces.append((low, u, log_size))
    top = max(np.max(piece[2]) for piece in pieces)
    if not np.isfinite(top):
        return np.zeros(0), np.zeros(0)
    last_u, last_size = pieces[-1][1], pieces[-1][2]
    if _tail_fraction(last_u, last_size) * np.exp(np.max(last_size) - top) > 1e-6:
        raise CalculationError(
            f"emission from harmonics above {MAX_ORDER:.0e} is not negligible at "
            f"s = {point.s:g}"
        )
    orders, coefficients = [], []
    for low, u, log_size in pieces:
        if not np.max(log_size) > top - 2.0 * LOG_DROP:
            continue
        u_low, u_high, _ = _range_from_scan(u[None], log_size[None])
        nodes, weights = _outer_nodes(u_low[0], u_high[0], u[np.argmax(log_size)])
        orders.append(low - 1.0 + np.exp(nodes))
        coefficients.append(weights * np.exp(nodes))
    return np.concatenate(orders), np.concatenate(coefficients)


def _one_point(dist, s, theta, harmonic_sum):
    point = _Point(s, theta)
    threshold = s * point.sin
    n_min = np.floor(threshold) + 1.0
    if harmonic_sum == "exact":
        # Sum N_EXACT harmonics, then the midpoint rule: sum_{n >= N} I(n) =
        # int_{N - 1/2}^inf I dn + I'(N - 1/2) / 24 + ... (Euler-Maclaurin,
        # DLMF 2.10.1 applied to the midpoint rule), with I' from the harmonics
        # on either side.
        exact = n_min + np.arange(N_EXACT + 1, dtype=float)
        weights = np.ones(N_EXACT + 1)
        weights[-2] -= 1.0 / 24.0
        weights[-1] = 1.0 / 24.0
        start = n_min + N_EXACT - 0.5
    else:
        # symphony: N_EXACT harmonics, then the integral from the next one.
        exact = n_min + np.arange(N_EXACT, dtype=float)
        weights = np.ones(N_EXACT)
        start = n_min + N_EXACT
    scan = _MomentumScan(dist, point, exact[-1] + 1.0)
    if not scan.live:
        total = np.zeros((2, 3))
    elif np.all(scan.log_below_cut < scan.log_total + np.log(NEGLIGIBLE)):
        # The electrons that resonate with the first harmonics emit a
        # negligible share: the continuum over momentum is the whole sum.
        total = _continuum(dist, point, scan)
    else:
        # Exact harmonics, then the integral over harmonic number beyond.
        orders, coefficients = _continuum_orders(dist, point, start)
        orders = np.concatenate([exact, orders])
        coefficients = np.concatenate([weights, coefficients])
        total = _harmonics(dist, point, orders, coefficients)

    total[1] += _edge_terms(dist, point)

    if point.cos == 0.0:
        # Perpendicular to the field the V integrands are odd in cos(xi): the
        # exact result is zero, not the round-off of the quadrature.
        total[:, 2] = 0.0

    prefactor = np.pi * e * e / c  # nu = 1 Hz
    j = prefactor * total[0]
    alpha = -prefactor / (2.0 * m_e) * total[1]
    # Order j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V.
    return np.array([j[0], alpha[0], j[1], alpha[1], j[2], alpha[2]])


def emission_absorption(dist, s, theta, *, harmonic_sum="exact"):
    """Emission and absorption coefficients at ``nu = 1 Hz``, ``n_e = 1 cm^-3``.

    Parameters
    ----------
    dist : Distribution
        Isotropic electron distribution (:mod:`.distributions`).
    s : array_like, shape (N,)
        Harmonic number ``nu / nu_cyc`` (> 0).
    theta : array_like, shape (N,)
        Angle between wave vector and field, radians, in ``(0, pi/2]``.
    harmonic_sum : {"exact", "symphony"}, optional
        ``"exact"`` (default): the harmonic sum to the stated accuracy.
        ``"symphony"``: start the integral over harmonic number one harmonic
        later, as symphony does (see the module docstring), to reproduce its
        tables.

    Returns
    -------
    ndarray, shape (N, 6)
        ``j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V``: emissivities in erg s^-1
        cm^-3 Hz^-1 sr^-1, absorption coefficients in cm^-1. Rows whose inputs
        are out of range, or whose calculation fails, are NaN.

    Notes
    -----
    Method, references, accuracy and sign conventions are in the module
    docstring. To rescale: emissivities go as ``n_e nu`` and absorption
    coefficients as ``n_e / nu`` at fixed ``s`` and ``theta``.
    """
    if harmonic_sum not in HARMONIC_SUMS:
        raise UsageError(
            f"harmonic_sum must be one of {', '.join(map(repr, HARMONIC_SUMS))}; "
            f"got {harmonic_sum!r}"
        )
    s, theta = np.broadcast_arrays(
        np.atleast_1d(np.asarray(s, dtype=float)),
        np.atleast_1d(np.asarray(theta, dtype=float)),
    )
    s, theta = np.ravel(s), np.ravel(theta)
    out = np.full((s.size, 6), np.nan)
    for i in range(s.size):
        if not (s[i] > 0 and np.isfinite(s[i]) and 0 < theta[i] <= 0.5 * np.pi + 1e-12):
            continue
        try:
            with np.errstate(all="ignore"):
                row = _one_point(dist, s[i], min(theta[i], 0.5 * np.pi), harmonic_sum)
        except (ArithmeticError, ValueError, CalculationError) as err:
            _log.warning("s=%g theta=%g: calculation failed: %s", s[i], theta[i], err)
            continue
        if np.all(np.isfinite(row)):
            out[i] = row
    return out
