"""Isotropic electron energy distributions for the detailed calculators.

Each distribution is a probability density in Lorentz factor, ``dn/dgamma``,
normalized to one electron, together with its derivative with respect to
``gamma`` (absorption and rotativities need it). The forms are those of
symphony (Pandya, Zhang, Chandra & Gammie 2016, ApJ 822, 34), which
produced the reference tables in ``shared/data/symphony``.

The momentum-space distribution function ``f(p)`` used in the papers is
related to these densities by ``dn/dgamma = 4 pi m_e^3 c^3 gamma beta gamma
f`` (``d^3p = 4 pi p^2 dp`` for isotropic ``f``); for one electron ``int f
d^3p = 1``.
"""

import numpy as np
from scipy import special

from ..errors import UsageError

__all__ = [
    "Distribution",
    "Thermal",
    "PowerLaw",
    "Kappa",
    "make_distribution",
]


def _as_array(gamma):
    return np.asarray(gamma, dtype=float)


class Distribution:
    """Base class: an isotropic electron distribution normalized to one electron.

    Attributes
    ----------
    name : str
        ``"thermal"``, ``"powerlaw"`` or ``"kappa"``.
    gamma_min, gamma_max : float
        Support of the distribution in Lorentz factor; ``gamma_max`` may be
        ``numpy.inf``. Both densities vanish outside it.
    """

    name = ""
    gamma_min = 1.0
    gamma_max = np.inf

    def dn_dgamma(self, gamma):
        """Probability density in Lorentz factor.

        Parameters
        ----------
        gamma : array_like
            Lorentz factors, any shape.

        Returns
        -------
        ndarray
            ``dn/dgamma`` (per unit Lorentz factor, per electron), same shape;
            zero outside ``[gamma_min, gamma_max]``. Its integral over the
            support is 1.
        """
        raise NotImplementedError

    def d_dn_dgamma(self, gamma):
        """Derivative of :meth:`dn_dgamma` with respect to ``gamma``.

        Parameters
        ----------
        gamma : array_like
            Lorentz factors, any shape.

        Returns
        -------
        ndarray
            ``d(dn/dgamma)/dgamma``, same shape; zero outside the support.
            For the thermal and kappa forms it diverges like
            ``(gamma - 1)^(-1/2)`` at ``gamma = 1`` (integrably).
        """
        raise NotImplementedError

    def dlnf_dgamma(self, gamma):
        """Derivative of ``ln f`` with respect to ``gamma``.

        ``f(p) = (dn/dgamma) / (4 pi m_e^3 c^3 gamma^2 beta)`` is the
        momentum-space distribution function, whose energy derivative drives
        absorption and the anti-Hermitian response (Pandya et al. 2016,
        eq. 13, for isotropic ``f``): ``(dn/dgamma) * dlnf_dgamma`` is
        ``4 pi m_e^3 c^3 gamma^2 beta df/dgamma``.

        Parameters
        ----------
        gamma : array_like
            Lorentz factors inside the support, any shape.

        Returns
        -------
        ndarray
            ``d ln f / d gamma``, same shape. Subclasses give it in closed form;
            this fallback is ``d_dn_dgamma / dn_dgamma - (2 gamma^2 - 1) /
            (gamma (gamma^2 - 1))``.
        """
        gamma = _as_array(gamma)
        _, log_derivative = _momentum_factor(gamma)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.d_dn_dgamma(gamma) / self.dn_dgamma(gamma) - log_derivative

    def params(self):
        """The parameters that define the distribution, as a dict."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def _support(self, gamma):
        return (gamma >= self.gamma_min) & (gamma <= self.gamma_max)


def _momentum_factor(gamma):
    """``ln(gamma^2 beta)`` and the log-derivative of ``gamma^2 beta``.

    Works in logarithms, with ``sqrt(gamma - 1) sqrt(gamma + 1)`` for
    ``sqrt(gamma^2 - 1)``, so that nothing overflows for Lorentz factors up to
    the float limit; ``gamma^2 beta = gamma sqrt(gamma^2 - 1)``.

    Returns
    -------
    log_factor : ndarray
        ``ln(gamma sqrt(gamma^2 - 1))``; ``-inf`` at ``gamma = 1``.
    log_derivative : ndarray
        ``(2 gamma^2 - 1) / (gamma (gamma^2 - 1))``; ``inf`` at ``gamma = 1``.
    """
    gm1 = np.maximum(gamma - 1.0, 0.0)
    with np.errstate(divide="ignore"):
        log_factor = np.log(gamma) + 0.5 * (np.log(gm1) + np.log(gamma + 1.0))
        # (2 gamma^2 - 1) / (gamma (gamma^2 - 1)) = 1/gamma + 1/(gamma - 1/gamma)
        log_derivative = 1.0 / gamma + 1.0 / (gm1 * ((gamma + 1.0) / gamma))
    return log_factor, log_derivative


class Thermal(Distribution):
    """Maxwell-Juttner distribution (as in Pandya et al. 2016).

    ``dn/dgamma = gamma^2 beta exp(-gamma / theta_e) / (theta_e K_2(1/theta_e))``
    on ``[1, inf)``.

    Parameters
    ----------
    theta_e : float
        Dimensionless electron temperature ``k T / (m_e c^2)``; > 0.
    """

    name = "thermal"

    def __init__(self, theta_e):
        theta_e = float(theta_e)
        if not (theta_e > 0 and np.isfinite(theta_e)):
            raise UsageError(f"theta_e must be a finite number > 0; got {theta_e!r}")
        self.theta_e = theta_e
        self.gamma_min = 1.0
        self.gamma_max = np.inf
        # K_2(x) = kve(2, x) exp(-x); folding exp(-1/theta_e) into the
        # exponential keeps cold plasmas (theta_e << 1) from underflowing.
        self._log_norm = -np.log(theta_e * special.kve(2, 1.0 / theta_e))

    def params(self):
        return {"theta_e": self.theta_e}

    def dlnf_dgamma(self, gamma):
        # f is proportional to exp(-gamma / theta_e).
        return np.full_like(_as_array(gamma), -1.0 / self.theta_e)

    def dn_dgamma(self, gamma):
        gamma = _as_array(gamma)
        log_factor, _ = _momentum_factor(gamma)
        out = np.exp(log_factor + self._log_norm - (gamma - 1.0) / self.theta_e)
        return np.where(self._support(gamma), out, 0.0)

    def d_dn_dgamma(self, gamma):
        gamma = _as_array(gamma)
        log_factor, log_derivative = _momentum_factor(gamma)
        value = np.exp(log_factor + self._log_norm - (gamma - 1.0) / self.theta_e)
        with np.errstate(invalid="ignore"):
            # the log-derivative diverges at gamma = 1 where the value is 0;
            # their product tends to sqrt(2) exp(log_norm) (gamma - 1)^(-1/2).
            out = value * (log_derivative - 1.0 / self.theta_e)
        out = np.where(gamma == 1.0, np.inf, out)
        return np.where(self._support(gamma), out, 0.0)


class PowerLaw(Distribution):
    """Power law in Lorentz factor (as in Pandya et al. 2016).

    ``dn/dgamma = (p - 1) gamma^-p / (gamma_min^(1-p) - gamma_max^(1-p))`` on
    ``[gamma_min, gamma_max]`` (``1 / (gamma ln(gamma_max / gamma_min))`` when
    ``p = 1``).

    Parameters
    ----------
    p : float
        Power-law index; must be > 1 when ``gamma_max`` is infinite.
    gamma_min : float, optional
        Lower Lorentz factor, >= 1; default 1.
    gamma_max : float, optional
        Upper Lorentz factor, > ``gamma_min``; default ``numpy.inf``.

    Notes
    -----
    The derivative is that of the truncated power law inside the support; the
    steps at ``gamma_min`` and ``gamma_max`` are not included (their effect on
    absorption is the boundary term of the integration by parts, which the
    calculators add separately where they need it).
    """

    name = "powerlaw"

    def __init__(self, p, gamma_min=1.0, gamma_max=np.inf):
        p, gamma_min, gamma_max = float(p), float(gamma_min), float(gamma_max)
        if not np.isfinite(p):
            raise UsageError(f"p must be a finite number; got {p!r}")
        if not (gamma_min >= 1.0 and np.isfinite(gamma_min)):
            raise UsageError(f"gamma_min must be finite and >= 1; got {gamma_min!r}")
        if not gamma_max > gamma_min:
            raise UsageError(
                f"gamma_max must be > gamma_min ({gamma_min!r}); got {gamma_max!r}"
            )
        if np.isinf(gamma_max) and not p > 1.0:
            raise UsageError(
                f"p must be > 1 for an untruncated power law (gamma_max = inf); "
                f"got p = {p!r}"
            )
        self.p = p
        self.gamma_min = gamma_min
        self.gamma_max = gamma_max
        if p == 1.0:
            self._norm = 1.0 / np.log(gamma_max / gamma_min)
        else:
            upper = 0.0 if np.isinf(gamma_max) else gamma_max ** (1.0 - p)
            self._norm = (p - 1.0) / (gamma_min ** (1.0 - p) - upper)

    def params(self):
        return {"p": self.p, "gamma_min": self.gamma_min, "gamma_max": self.gamma_max}

    def dlnf_dgamma(self, gamma):
        # f is proportional to gamma^-p / (gamma^2 beta).
        gamma = _as_array(gamma)
        _, log_derivative = _momentum_factor(gamma)
        return -self.p / gamma - log_derivative

    def dn_dgamma(self, gamma):
        gamma = _as_array(gamma)
        inside = self._support(gamma)
        safe = np.where(inside, gamma, 1.0)
        return np.where(inside, self._norm * safe**-self.p, 0.0)

    def d_dn_dgamma(self, gamma):
        gamma = _as_array(gamma)
        inside = self._support(gamma)
        safe = np.where(inside, gamma, 1.0)
        return np.where(inside, -self.p * self._norm * safe ** (-self.p - 1.0), 0.0)


class Kappa(Distribution):
    """Relativistic kappa distribution (as in Pandya et al. 2016).

    ``dn/dgamma = N gamma sqrt(gamma^2 - 1) (1 + (gamma - 1)/(kappa w))^-(kappa+1)
    exp(-gamma / gamma_cutoff)`` on ``[1, inf)``, with ``N`` computed by
    numerical quadrature (relative accuracy about 1e-10).

    Parameters
    ----------
    kappa : float
        Index; the high-energy tail goes as ``gamma^(1 - kappa)``, so
        ``kappa > 2`` is needed without a cutoff.
    kappa_width : float
        Width ``w`` (> 0), the analogue of ``theta_e``.
    gamma_cutoff : float, optional
        Exponential cutoff Lorentz factor (> 1); default ``numpy.inf`` (none).
    """

    name = "kappa"

    def __init__(self, kappa, kappa_width, gamma_cutoff=np.inf):
        kappa, kappa_width = float(kappa), float(kappa_width)
        gamma_cutoff = float(gamma_cutoff)
        if not (kappa > 0 and np.isfinite(kappa)):
            raise UsageError(f"kappa must be a finite number > 0; got {kappa!r}")
        if not (kappa_width > 0 and np.isfinite(kappa_width)):
            raise UsageError(
                f"kappa_width must be a finite number > 0; got {kappa_width!r}"
            )
        if not gamma_cutoff > 1.0:
            raise UsageError(f"gamma_cutoff must be > 1; got {gamma_cutoff!r}")
        if np.isinf(gamma_cutoff) and not kappa > 2.0:
            raise UsageError(
                f"kappa must be > 2 for a normalizable distribution without a "
                f"cutoff (gamma_cutoff = inf); got kappa = {kappa!r}"
            )
        self.kappa = kappa
        self.kappa_width = kappa_width
        self.gamma_cutoff = gamma_cutoff
        self.gamma_min = 1.0
        self.gamma_max = np.inf
        self._log_norm = 0.0
        self._log_norm = -np.log(self._raw_integral())

    def params(self):
        return {
            "kappa": self.kappa,
            "kappa_width": self.kappa_width,
            "gamma_cutoff": self.gamma_cutoff,
        }

    def dlnf_dgamma(self, gamma):
        # f is proportional to (1 + (gamma-1)/(kappa w))^-(kappa+1) exp(-gamma/cut).
        gamma = _as_array(gamma)
        out = -(self.kappa + 1.0) / (self.kappa * self.kappa_width + gamma - 1.0)
        if np.isfinite(self.gamma_cutoff):
            out = out - 1.0 / self.gamma_cutoff
        return out

    def _log_shape(self, gamma):
        """log of the unnormalized density without the momentum factor."""
        kw = self.kappa * self.kappa_width
        out = self._log_norm - (self.kappa + 1.0) * np.log1p((gamma - 1.0) / kw)
        if np.isfinite(self.gamma_cutoff):
            # exp(-gamma/gamma_cutoff) up to a constant absorbed in the norm.
            out = out - (gamma - 1.0) / self.gamma_cutoff
        return out

    def _raw_integral(self):
        """Integral of the unnormalized density over ``[1, inf)``.

        With ``gamma - 1 = exp(u)`` the integrand is smooth and decays
        exponentially at both ends (as ``exp(1.5 u)`` and, without a cutoff,
        ``exp((2 - kappa) u)``), and its nearest complex singularities lie at
        ``Im u = pi``; the trapezoidal rule with step ``h`` then converges as
        ``exp(-2 pi^2 / h)`` (Trefethen & Weideman 2014, SIAM Rev. 56, 385,
        Theorem 5.1), so ``h = 0.25`` is accurate to round-off.
        """
        kw = self.kappa * self.kappa_width
        u_low = -60.0
        if np.isfinite(self.gamma_cutoff):
            u_high = np.log(kw + 80.0 * self.gamma_cutoff)
        else:
            u_high = np.log(kw) + 40.0 / (self.kappa - 2.0) + 5.0
        # Beyond ~700 the tail is below 1e-16 of the total for any kappa > 2.05.
        u_high = min(u_high, 700.0)
        u = np.arange(u_low, u_high + 0.25, 0.25)
        x = np.exp(u)
        return float(np.sum(self.dn_dgamma(1.0 + x) * x) * 0.25)

    def dn_dgamma(self, gamma):
        gamma = _as_array(gamma)
        log_factor, _ = _momentum_factor(gamma)
        out = np.exp(log_factor + self._log_shape(np.maximum(gamma, 1.0)))
        return np.where(self._support(gamma), out, 0.0)

    def d_dn_dgamma(self, gamma):
        gamma = _as_array(gamma)
        g = np.maximum(gamma, 1.0)
        log_factor, log_derivative = _momentum_factor(g)
        kw = self.kappa * self.kappa_width
        value = np.exp(log_factor + self._log_shape(g))
        # d ln(shape)/d gamma
        dlog_shape = -(self.kappa + 1.0) / (kw + g - 1.0)
        if np.isfinite(self.gamma_cutoff):
            dlog_shape = dlog_shape - 1.0 / self.gamma_cutoff
        with np.errstate(invalid="ignore"):
            out = value * (log_derivative + dlog_shape)
        out = np.where(gamma == 1.0, np.inf, out)
        return np.where(self._support(gamma), out, 0.0)


_CLASSES = {"thermal": Thermal, "powerlaw": PowerLaw, "kappa": Kappa}
_PARAMETERS = {
    "thermal": ("theta_e",),
    "powerlaw": ("p", "gamma_min", "gamma_max"),
    "kappa": ("kappa", "kappa_width", "gamma_cutoff"),
}
_REQUIRED = {
    "thermal": ("theta_e",),
    "powerlaw": ("p",),
    "kappa": ("kappa", "kappa_width"),
}


def make_distribution(name, **params):
    """Build a distribution by name.

    Parameters
    ----------
    name : str
        ``"thermal"``, ``"powerlaw"`` or ``"kappa"``.
    **params : float
        The distribution's parameters: ``theta_e`` (thermal); ``p``,
        ``gamma_min`` (default 1), ``gamma_max`` (default inf) (powerlaw);
        ``kappa``, ``kappa_width``, ``gamma_cutoff`` (default inf) (kappa).

    Returns
    -------
    Distribution

    Raises
    ------
    UsageError
        For an unknown name, an unknown or missing parameter, or a value out of
        range; the message lists the valid choices.
    """
    if name not in _CLASSES:
        raise UsageError(
            f"unknown distribution {name!r}; expected one of "
            f"{', '.join(repr(k) for k in _CLASSES)}"
        )
    valid = _PARAMETERS[name]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise UsageError(
            f"unknown parameter(s) {', '.join(unknown)} for the {name} "
            f"distribution; valid parameters are {', '.join(valid)}"
        )
    missing = [k for k in _REQUIRED[name] if k not in params]
    if missing:
        raise UsageError(
            f"the {name} distribution needs parameter(s) {', '.join(missing)}; "
            f"its parameters are {', '.join(valid)}"
        )
    return _CLASSES[name](**params)
