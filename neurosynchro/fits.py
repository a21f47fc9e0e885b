"""Published fitting formulas for the eight coefficients: the fast baseline.

These closed-form approximations are what radiative-transfer codes use today
instead of a detailed calculator, so they are the accuracy and speed bar the
neural networks must beat. Every function here returns, in physical CGS
units, the eight coefficients in the project's order

    j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V

along a new last axis, broadcasting over all arguments, in plain numpy (no
Python loop over points).

Sources
-------
- Emission and absorption, all three distributions: Pandya et al. (2016),
  eqs. 29-42, with the V-sign correction symphony's source makes.
- Thermal emission, alternative: Dexter (2016), appendix (fits to the
  Huang et al. 2009 integrals; ``I(x)`` from Mahadevan et al. 1996).
- Thermal rotativities: Dexter (2016), appendix B, built on the Shcherbakov
  (2008) fitting functions; the original Shcherbakov (2008) functions are
  available as ``faraday="shcherbakov"``.
- Power-law rotativities: the Jones & O'Dell (1977) high-frequency forms as
  written by Dexter (2016), eqs. B1-B3. Marszewski et al. (2021) compile
  these same forms (around their eq. 41) rather than fitting new ones, as
  far as the implementations citing them show.
- Kappa rotativities: Marszewski et al. (2021) fits at kappa = 3.5, 4, 4.5
  and 5 (the four fits of their section on the kappa distribution).

Equation numbers were taken from the papers' public implementations
(symphony and ipole cite them in their comments); the papers themselves
were not available to re-read, so a number may be off by one.

Sign conventions
----------------
The project's (symphony's) signs for electrons at 0 < theta < pi/2:
``j_Q < 0``, ``alpha_Q < 0``, ``j_V > 0``, ``alpha_V > 0``, ``rho_V > 0``;
``rho_Q`` is negative at high frequency and, for thermal electrons, positive
below ``nu ~ 2.45 Theta_e^2 sin(theta) nu_cyc``. Where a paper uses another
sign it is converted, and the function's docstring says so.

Angles
------
``theta`` is the angle between the wave vector and the magnetic field in
radians. It is reduced modulo 2 pi and folded into [0, pi/2] as DESIGN.md
prescribes: ``theta -> 2 pi - theta`` changes nothing, ``theta -> pi -
theta`` keeps the I and Q terms and flips the sign of ``j_V``, ``alpha_V``
and ``rho_V``. A folded angle of exactly 0 (propagation along the field)
returns NaN for all eight coefficients: every fit here divides by
``sin(theta)`` or was fitted away from it.

References
----------
Dexter, J. 2016, MNRAS 462, 115
Huang, L. et al. 2009 (the I_Q, I_V integrals fitted by Dexter 2016)
Jones, T. W. & Hardee, P. E. 1979, ApJ 228, 268
Jones, T. W. & O'Dell, S. L. 1977, ApJ 214, 522
Mahadevan, R., Narayan, R. & Yi, I. 1996, ApJ 465, 327
Marszewski, A., Prather, B. S., Joshi, A. V., Pandya, A. & Gammie, C. F.
2021, ApJ 921, 17
Pandya, A., Zhang, Z., Chandra, M. & Gammie, C. F. 2016, ApJ 822, 34
Rybicki, G. B. & Lightman, A. P. 1979, Radiative Processes in Astrophysics
Shcherbakov, R. V. 2008, ApJ 688, 695
"""

import numpy as np
from pwkit import cgs
from scipy import special

from .errors import UsageError
from .physics import c, cyclotron_frequency, e, fold_angle, m_e

__all__ = [
    "COEFFICIENT_NAMES",
    "fit_coefficients",
    "kappa",
    "powerlaw",
    "thermal",
]

#: Planck constant (erg s) and Boltzmann constant (erg/K), CGS.
h = cgs.h
k_B = cgs.k

#: Order of the coefficients along the last axis of every result.
COEFFICIENT_NAMES = (
    "j_I",
    "alpha_I",
    "j_Q",
    "alpha_Q",
    "j_V",
    "alpha_V",
    "rho_Q",
    "rho_V",
)

EMISSION_FITS = ("pandya", "dexter")
FARADAY_FITS = ("dexter", "shcherbakov")

#: kappa values at which Marszewski et al. (2021) give rotativity fits.
KAPPA_ROTATIVITY_GRID = (3.5, 4.0, 4.5, 5.0)

# Marszewski et al. (2021) rho_Q fit, one row per kappa of the grid:
# w_term = a w - b sqrt(w) + c sqrt(w) exp(-5 w) and
# f(X) = 1 - exp(-X^0.84 / d) - sin(X / s) exp(-g X^q).
_KAPPA_RHO_Q = np.array(
    [
        # a, b, c, d, s, g, q
        [17.0, 3.0, 7.0, 30.0, 10.0, 3 / 2, 0.471],
        [46 / 3, 5 / 3, 17 / 3, 18.0, 6.0, 7 / 4, 0.5],
        [14.0, 13 / 8, 9 / 2, 12.0, 4.0, 2.0, 0.525],
        [25 / 2, 1.0, 5.0, 8.0, 8 / 3, 9 / 4, 0.541],
    ]
)

# Marszewski et al. (2021) rho_V fit, one row per kappa of the grid:
# w_term = (a2 w^2 + a1 w + a0) / (b2 w^2 + b1 w + b0) and
# g(X) = 1 - 0.17 ln(1 + t X^-1/2).
_KAPPA_RHO_V = np.array(
    [
        # a2, a1, a0, b2, b1, b0, t
        [1.0, 2.0, 1.0, 25 / 8, 4.0, 1.0, 0.447],
        [1.0, 54.0, 50.0, 30 / 11, 134.0, 50.0, 0.391],
        [1.0, 43.0, 38.0, 7 / 3, 185 / 2, 38.0, 0.348],
        [0.0, 1.0, 13 / 14, 0.0, 2.0, 13 / 14, 0.313],
    ]
)


# ---------------------------------------------------------------------------
# Shared pieces


def _as_arrays(**named):
    """Broadcast the named arguments to one shape, as float arrays."""
    names = list(named)
    try:
        arrays = np.broadcast_arrays(*(np.asarray(named[n], float) for n in names))
    except ValueError as error:
        shapes = ", ".join(f"{n}{np.shape(named[n])}" for n in names)
        raise UsageError(
            f"arguments do not broadcast to one shape: {shapes}"
        ) from error
    return dict(zip(names, arrays, strict=True))


def _require(condition, name, expected, value):
    """Raise UsageError naming ``name`` unless ``condition`` holds everywhere.

    NaN inputs pass (comparisons with NaN are False), so they give NaN out.
    """
    if np.any(~condition & ~np.isnan(value)):
        bad = np.asarray(value)[~condition & ~np.isnan(value)].flat[0]
        raise UsageError(f"{name} must be {expected}; got {bad!r}")


def _check_common(nu, B, n_e, theta):
    _require(nu > 0, "nu", "> 0 Hz", nu)
    _require(B >= 0, "B", ">= 0 Gauss", B)
    _require(n_e >= 0, "n_e", ">= 0 cm^-3", n_e)
    _require(np.isfinite(theta) | np.isnan(theta), "theta", "finite", theta)


def _assemble(coefficients, v_sign, theta_folded, B):
    """Stack the eight coefficients and apply the angle and B = 0 rules."""
    out = np.stack(np.broadcast_arrays(*coefficients), axis=-1)
    # j_V, alpha_V and rho_V (positions 4, 5, 7) flip under theta -> pi - theta.
    out[..., [4, 5, 7]] *= v_sign[..., np.newaxis]
    out[theta_folded == 0] = np.nan
    out[B == 0] = 0.0
    return out


def _planck(nu, theta_e):
    """Planck function B_nu(T) at T = theta_e m_e c^2 / k_B.

    erg s^-1 cm^-2 Hz^-1 sr^-1; used for Kirchhoff's law (Pandya et al.
    2016, eq. 25).
    """
    return 2 * h * nu**3 / c**2 / np.expm1(h * nu / (theta_e * m_e * c**2))


def _combine(low, high, x):
    """Pandya et al. (2016) interpolation (low^-x + high^-x)^(-1/x), eq. 37/41.

    Written as low (1 + (low / high)^x)^(-1/x), which is the same number but
    cannot overflow when both limits are tiny.
    """
    return low * (1 + (low / high) ** x) ** (-1 / x)


# ---------------------------------------------------------------------------
# Thermal (Maxwell-Juettner)


def _thermal_emission_pandya(nu, B, n_e, theta, theta_e):
    """Pandya et al. (2016) eqs. 29 and 31: thermal j_I, j_Q, j_V.

    Pandya's j_Q is already negative. Its j_V carries the sign of Leung et
    al. (2011), which is the opposite of the IEEE/IAU convention both papers
    state; symphony corrected it, and so do we (j_V > 0 for theta < pi/2).
    """
    sin_theta = np.sin(theta)
    nu_c = cyclotron_frequency(B)
    nu_s = (2 / 9) * nu_c * theta_e**2 * sin_theta
    X = nu / nu_s
    prefactor = n_e * e**2 * nu_c / c
    cutoff = np.exp(-np.cbrt(X))
    shape_I = np.sqrt(2) * np.pi / 27 * sin_theta

    j_I = prefactor * shape_I * (np.sqrt(X) + 2 ** (11 / 12) * X ** (1 / 6)) ** 2
    j_I = j_I * cutoff

    theta_pow = theta_e ** (24 / 25)
    q_factor = (7 * theta_pow + 35) / (10 * theta_pow + 75)
    j_Q = (np.sqrt(X) + q_factor * 2 ** (11 / 12) * X ** (1 / 6)) ** 2
    j_Q = -prefactor * shape_I * j_Q * cutoff

    # This angular factor turns slightly negative above theta ~ 1.55 rad (a
    # property of the fit, kept as published).
    shape_V = (37 - 87 * np.sin(theta - 28 / 25)) / (100 * (theta_e + 1))
    j_V = (1 + (theta_e ** (3 / 5) / 25 + 7 / 10) * X ** (9 / 25)) ** (5 / 3)
    j_V = prefactor * shape_V * j_V * cutoff
    return j_I, j_Q, j_V


def _thermal_emission_dexter(nu, B, n_e, sin_theta, cos_theta, theta_e):
    """Dexter (2016), appendix: thermal j_I, j_Q, j_V.

    Dexter's Q axis is perpendicular to the project's (his j_Q > 0), so j_Q
    changes sign here; his j_V already has the project's sign.
    """
    nu_B = cyclotron_frequency(B)
    # Dexter's critical frequency 3 e B sin(theta) Theta_e^2 / (4 pi m_e c).
    x = nu / (1.5 * nu_B * sin_theta * theta_e**2)
    x13 = np.cbrt(x)
    cutoff = np.exp(-1.8899 * x13)
    # I(x) of Mahadevan et al. (1996); I_Q(x), I_V(x) of Dexter (2016).
    I_I = 2.5651 * (1 + 1.92 / x13 + 0.9977 / x13**2) * cutoff
    I_Q = 2.5651 * (1 + 0.93193 / x13 + 0.499873 / x13**2) * cutoff
    # The leading coefficient is 1.81384 in Dexter's grtrans and in symphony;
    # ipole's transcription has 1.81348 (0.02% apart).
    I_V = (
        1.81384 / x + 3.42319 / x13**2 + 0.0292545 / np.sqrt(x) + 2.03773 / x13
    ) * cutoff

    scale = n_e * e**2 * nu / (2 * np.sqrt(3) * c * theta_e**2)
    j_I = scale * I_I
    j_Q = -scale * I_Q
    j_V = scale * 4 / (3 * theta_e) * (cos_theta / sin_theta) * I_V
    return j_I, j_Q, j_V


def _thermal_rotativities(nu, B, n_e, sin_theta, cos_theta, theta_e, faraday):
    """Thermal rho_Q and rho_V: Dexter (2016) app. B / Shcherbakov (2008).

    rho_Q = -(n_e e^2 nu_B^2 sin^2 theta / (m_e c nu^3))
            * f(X) [K_1(1/Theta_e) / K_2(1/Theta_e) + 6 Theta_e]
    rho_V = (2 n_e e^2 nu_B cos theta / (m_e c nu^2)) * R(X, Theta_e)

    with X = Theta_e [sqrt(2) sin(theta) 10^3 nu_B / nu]^(1/2) and
    nu_B = e B / (2 pi m_e c). For ``faraday="dexter"``, f is Dexter's
    modified f_m(X) (B13) and R = [K_0 - Delta J_5(X)] / K_2 (B14, B15);
    for ``"shcherbakov"``, f = F(X) and R = G(X) K_0 / K_2 of Shcherbakov
    (2008). Dexter's rho_Q is positive at high frequency, i.e. his Q axis
    is perpendicular to the project's: the sign is flipped here.
    """
    nu_B = cyclotron_frequency(B)
    X = theta_e * np.sqrt(np.sqrt(2) * sin_theta * 1e3 * nu_B / nu)
    z = 1 / theta_e
    # Exponentially scaled Bessel functions keep the ratios finite when cold;
    # K_2 = K_0 + 2 K_1 / z spares a third, costly, Bessel evaluation.
    k0, k1 = special.kve(0, z), special.kve(1, z)
    k2 = k0 + 2 * k1 / z

    f_X = (
        2.011 * np.exp(-(X**1.035) / 4.7)
        - np.cos(X / 2) * np.exp(-(X**1.2) / 2.73)
        - 0.011 * np.exp(-X / 47.2)
    )
    if faraday == "dexter":
        # Above X ~ 120 Dexter switches f to the Jones & Hardee (1979)
        # low-frequency limit; the switch is a tanh in ln X.
        switch = 0.5 * (1 + np.tanh(10 * np.log(X / 120)))
        low_frequency = 0.011 * np.exp(-X / 47.2) - (
            2 ** (-1 / 3) / 3 ** (23 / 6) * np.pi * 1e4 * X ** (-8 / 3)
        )
        f_X = f_X + np.where(switch > 0, switch * low_frequency, 0.0)
        delta_J5 = 0.43793091 * np.log1p(0.00185777 * X**1.50316886)
        # Delta J_5 is not scaled with K_2 ~ exp(-1/Theta_e), so this term
        # dominates, and rho_V turns negative, for cold plasmas.
        rotation = (k0 - delta_J5 * np.exp(z)) / k2
    else:
        G_X = 1 - 0.11 * np.log1p(0.035 * X)
        rotation = G_X * k0 / k2

    rho_Q = -(n_e * e**2 * nu_B**2 * sin_theta**2) / (m_e * c * nu**3)
    rho_Q = rho_Q * f_X * (k1 / k2 + 6 * theta_e)
    rho_V = 2 * n_e * e**2 * nu_B * cos_theta / (m_e * c * nu**2) * rotation
    return rho_Q, rho_V


def thermal(nu, B, n_e, theta, theta_e, *, emission="pandya", faraday="dexter"):
    """Fitting formulas for a relativistic thermal (Maxwell-Juettner) plasma.

    Parameters
    ----------
    nu : array_like
        Observing frequency, Hz (> 0).
    B : array_like
        Magnetic field strength, Gauss (>= 0; B = 0 gives zeros).
    n_e : array_like
        Electron density, cm^-3 (>= 0).
    theta : array_like
        Angle between the wave vector and the field, radians; folded into
        [0, pi/2] as described in the module docstring.
    theta_e : array_like
        Dimensionless electron temperature k_B T / (m_e c^2) (> 0).
    emission : {"pandya", "dexter"}
        Fit for j_I, j_Q, j_V: Pandya et al. (2016) eq. 31 (with eq. 29),
        or Dexter (2016), appendix.
    faraday : {"dexter", "shcherbakov"}
        Fit for the rotativities: Dexter (2016) appendix B (eqs. B4-B8,
        B13-B15), or the original Shcherbakov (2008) F(X) and G(X).

    Returns
    -------
    coefficients : ndarray, shape (..., 8)
        j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V; the
        emissivities in erg s^-1 cm^-3 Hz^-1 sr^-1, the rest in cm^-1.
        The leading shape is that of all arguments broadcast together.

    Notes
    -----
    The absorption coefficients follow from Kirchhoff's law,
    ``alpha_S = j_S / B_nu(T)`` (Pandya et al. 2016, eqs. 25 and 32), for
    either emission fit.

    Signs: Pandya's j_V has the opposite of the IEEE/IAU sign the paper
    states (symphony's source corrects it); Dexter's j_Q and rho_Q use a Q
    axis perpendicular to the project's. Both are converted, giving the
    project's signs.

    Accuracy. Against symphony's exact values (fits_vs_exact.tsv, 70
    points, 1 <= Theta_e <= 93, 10 <= nu / nu_cyc <= 3e5) the median and
    worst errors are: Pandya j_I 1.6%, 12%; j_Q 6.9%, 17%; j_V 23%, 150%;
    Dexter j_I 0.7%, 13%; j_Q 0.8%, 12%; j_V 0.25%, 12%. Pandya's thermal
    j_V is poor (it also changes sign above theta ~ 1.55 rad); symphony's
    own thermal j_V "fit" is in fact Dexter's. Both emission fits are
    meant for Theta_e >~ 1 and nu >> nu_cyc.

    Dexter's rho_V correction Delta J_5(X) is not scaled by K_2(1/Theta_e),
    so in cold plasmas it dominates: rho_V turns negative, then diverges,
    below Theta_e ~ 0.2 (nu = 10 nu_cyc) to ~ 0.1 (nu = 10^5 nu_cyc).
    ``faraday="shcherbakov"`` instead tends to cold-plasma Faraday rotation
    and conversion as Theta_e -> 0. Against symphony's exact rotativities
    (rho_points.txt, 4 points, Theta_e 3-50) both are within 5-35% (rho_Q)
    and 0-10% (rho_V).
    """
    if emission not in EMISSION_FITS:
        raise UsageError(
            f"emission must be one of {', '.join(EMISSION_FITS)}; got {emission!r}"
        )
    if faraday not in FARADAY_FITS:
        raise UsageError(
            f"faraday must be one of {', '.join(FARADAY_FITS)}; got {faraday!r}"
        )
    args = _as_arrays(nu=nu, B=B, n_e=n_e, theta=theta, theta_e=theta_e)
    nu, B, n_e, theta, theta_e = args.values()
    _check_common(nu, B, n_e, theta)
    _require(theta_e > 0, "theta_e", "> 0", theta_e)

    theta_folded, v_sign = fold_angle(theta)
    sin_theta, cos_theta = np.sin(theta_folded), np.cos(theta_folded)
    with np.errstate(all="ignore"):
        if emission == "pandya":
            j_I, j_Q, j_V = _thermal_emission_pandya(nu, B, n_e, theta_folded, theta_e)
        else:
            j_I, j_Q, j_V = _thermal_emission_dexter(
                nu, B, n_e, sin_theta, cos_theta, theta_e
            )
        planck = _planck(nu, theta_e)
        rho_Q, rho_V = _thermal_rotativities(
            nu, B, n_e, sin_theta, cos_theta, theta_e, faraday
        )
        coefficients = (
            j_I,
            j_I / planck,
            j_Q,
            j_Q / planck,
            j_V,
            j_V / planck,
            rho_Q,
            rho_V,
        )
    return _assemble(coefficients, v_sign, theta_folded, B)


# ---------------------------------------------------------------------------
# Power law


def powerlaw(nu, B, n_e, theta, p, gamma_min=1.0, gamma_max=np.inf):
    """Fitting formulas for an isotropic power law in Lorentz factor.

    The distribution is ``dn/dgamma = n_e (p - 1) gamma^-p /
    (gamma_min^(1-p) - gamma_max^(1-p))`` for gamma_min <= gamma <=
    gamma_max.

    Parameters
    ----------
    nu : array_like
        Observing frequency, Hz (> 0).
    B : array_like
        Magnetic field strength, Gauss (>= 0; B = 0 gives zeros).
    n_e : array_like
        Electron density, cm^-3 (>= 0).
    theta : array_like
        Angle between the wave vector and the field, radians; folded into
        [0, pi/2] as described in the module docstring.
    p : array_like
        Power-law index (> 1).
    gamma_min : array_like, optional
        Lower Lorentz-factor cutoff (>= 1, default 1).
    gamma_max : array_like, optional
        Upper cutoff (> gamma_min, default infinity). Used only in the
        normalization, as in the papers.

    Returns
    -------
    coefficients : ndarray, shape (..., 8)
        j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V; the
        emissivities in erg s^-1 cm^-3 Hz^-1 sr^-1, the rest in cm^-1.

    Notes
    -----
    Emission and absorption: Pandya et al. (2016) eqs. 29, 30, 33 and 34.
    j_I, alpha_I and j_Q / j_I = -(p + 1) / (p + 7/3) are the classical
    closed forms (Rybicki & Lightman 1979, eqs. 6.36, 6.38, 6.53); j_V,
    alpha_Q and alpha_V are Pandya's fits. The paper's j_V and alpha_V have
    the opposite of the IEEE/IAU sign it states; as in symphony's source we
    use j_V, alpha_V > 0 for theta < pi/2. The alpha_Q fit needs p > 1.012.

    Rotativities: Jones & O'Dell (1977) in the form of Dexter (2016),
    eqs. B1-B3, which Marszewski et al. (2021) restate:

        rho_perp = n_e e^2 (p - 1) / [m_e c nu_B sin(theta)
                   (gamma_min^(1-p) - gamma_max^(1-p))]
        rho_Q = -rho_perp (nu_B sin(theta) / nu)^3 gamma_min^(2-p)
                [1 - (nu_i / nu)^(p/2 - 1)] / (p/2 - 1)
        rho_V = 2 (p + 2) / (p + 1) rho_perp (nu_B sin(theta) / nu)^2
                gamma_min^-(p+1) ln(gamma_min) cot(theta)

    with nu_B = e B / (2 pi m_e c) and nu_i = gamma_min^2 nu_B sin(theta)
    (Dexter's grtrans; versions of the papers differ by a factor 2/3 or 3/2
    in nu_i). At p = 2 the rho_Q bracket takes its limit, ln(nu / nu_i).
    These signs are already the project's. The forms assume gamma_min >> 1
    and nu >> nu_i (below nu_i, rho_Q changes sign). rho_V is proportional
    to ln(gamma_min) and so is exactly zero at the default gamma_min = 1,
    where symphony's exact rho_V is not small: treat the power-law rho_V
    as unusable for gamma_min near 1. rho_Q, even at gamma_min = 1, is
    within 8-40% of symphony's exact values at the rho_points.txt points.

    Accuracy of emission and absorption against symphony's exact values
    (fits_vs_exact.tsv, 45 points, 1.6 <= p <= 6.5): 0.4-0.9% median,
    29-47% worst (at nu < 100 nu_cyc).
    """
    args = _as_arrays(
        nu=nu,
        B=B,
        n_e=n_e,
        theta=theta,
        p=p,
        gamma_min=gamma_min,
        gamma_max=gamma_max,
    )
    nu, B, n_e, theta, p, gamma_min, gamma_max = args.values()
    _check_common(nu, B, n_e, theta)
    _require(p > 1, "p", "> 1", p)
    _require(gamma_min >= 1, "gamma_min", ">= 1", gamma_min)
    _require(gamma_max > gamma_min, "gamma_max", "> gamma_min", gamma_max)

    theta_folded, v_sign = fold_angle(theta)
    sin_theta, cos_theta = np.sin(theta_folded), np.cos(theta_folded)
    with np.errstate(all="ignore"):
        nu_c = cyclotron_frequency(B)
        n_norm = n_e * (p - 1) / (gamma_min ** (1 - p) - gamma_max ** (1 - p))
        emission_absorption = _powerlaw_emission_absorption(
            nu, nu_c, n_norm, sin_theta, cos_theta, p
        )
        rho_Q, rho_V = _powerlaw_rotativities(
            nu, nu_c, n_norm, sin_theta, cos_theta, p, gamma_min
        )
        coefficients = (*emission_absorption, rho_Q, rho_V)
    return _assemble(coefficients, v_sign, theta_folded, B)


def _powerlaw_emission_absorption(nu, nu_c, n_norm, sin_theta, cos_theta, p):
    """Pandya et al. (2016) eqs. 29, 30, 33, 34 for a power law.

    ``n_norm`` is n_e (p - 1) / (gamma_min^(1-p) - gamma_max^(1-p)). Returns
    j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V with the project's signs.
    """
    ratio = nu / (nu_c * sin_theta)
    cot_theta = cos_theta / sin_theta

    gammas = special.gamma((3 * p - 1) / 12) * special.gamma((3 * p + 19) / 12)
    J_I = 3 ** (p / 2) * sin_theta / (2 * (p + 1)) * gammas
    j_I = n_norm * e**2 * nu_c / c * J_I * ratio ** (-(p - 1) / 2)
    j_Q = -(p + 1) / (p + 7 / 3) * j_I
    j_V = (171 / 250) * p**0.49 * cot_theta * np.sqrt(3 / ratio) * j_I

    gammas = special.gamma((3 * p + 2) / 12) * special.gamma((3 * p + 22) / 12)
    A_I = 3 ** ((p + 1) / 2) / 4 * gammas
    alpha_I = n_norm * e**2 / (nu * m_e * c) * A_I * ratio ** (-(p + 2) / 2)
    alpha_Q = -(((17 / 500) * p - 43 / 1250) ** (43 / 500)) * alpha_I
    # Rounding can push sin(theta) a hair above what makes this >= 0.
    angular = np.maximum(3.1 * sin_theta ** (-48 / 25) - 3.1, 0.0) ** (64 / 125)
    p_factor = ((71 / 100) * p + 22 / 625) ** (197 / 500)
    alpha_V = p_factor * angular / np.sqrt(ratio) * alpha_I
    return j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V


def _powerlaw_rotativities(nu, nu_c, n_norm, sin_theta, cos_theta, p, gamma_min):
    """Dexter (2016) eqs. B1-B3 (Jones & O'Dell 1977): power-law rho_Q, rho_V."""
    nu_perp = nu_c * sin_theta
    rho_perp = n_norm * e**2 / (m_e * c * nu_perp)
    nu_i = gamma_min**2 * nu_perp
    exponent = p / 2 - 1
    log_ratio = np.log(nu_i / nu)
    # [1 - (nu_i / nu)^a] / a, continued through a = 0 (p = 2) by its limit.
    safe_exponent = np.where(exponent == 0, 1.0, exponent)
    bracket = np.where(
        exponent == 0, -log_ratio, -np.expm1(exponent * log_ratio) / safe_exponent
    )
    rho_Q = -rho_perp * (nu_perp / nu) ** 3 * gamma_min ** (2 - p) * bracket
    log_term = gamma_min ** (-(p + 1)) * np.log(gamma_min)
    rho_V = 2 * (p + 2) / (p + 1) * rho_perp * (nu_perp / nu) ** 2 * log_term
    return rho_Q, rho_V * cos_theta / sin_theta


# ---------------------------------------------------------------------------
# Kappa


def _kappa_rotativity_shapes(kappa, kappa_width, X):
    """Marszewski et al. (2021) f(X) w_Q(w) and K-ratio g(X) w_V(w).

    Linear interpolation in kappa between the four published fits, as ipole
    does; NaN outside 3.5 <= kappa <= 5, where no fit exists.
    """
    grid = np.asarray(KAPPA_ROTATIVITY_GRID)
    step = grid[1] - grid[0]
    inside = (kappa >= grid[0]) & (kappa <= grid[-1])
    lower = np.clip(np.floor((kappa - grid[0]) / step), 0, len(grid) - 2)
    lower = np.where(np.isfinite(lower), lower, 0).astype(int)
    weight = (kappa - grid[lower]) / step

    w, sqrt_w = kappa_width, np.sqrt(kappa_width)

    def shape_Q(row):
        a, b, c_, d, s, g, q = (_KAPPA_RHO_Q[row, i] for i in range(7))
        w_term = a * w - b * sqrt_w + c_ * sqrt_w * np.exp(-5 * w)
        f_X = 1 - np.exp(-(X**0.84) / d) - np.sin(X / s) * np.exp(-g * X**q)
        return w_term * f_X

    def shape_V(row):
        a2, a1, a0, b2, b1, b0, t = (_KAPPA_RHO_V[row, i] for i in range(7))
        w_term = (a2 * w**2 + a1 * w + a0) / (b2 * w**2 + b1 * w + b0)
        return w_term * (1 - 0.17 * np.log1p(t / np.sqrt(X)))

    Q = (1 - weight) * shape_Q(lower) + weight * shape_Q(lower + 1)
    V = (1 - weight) * shape_V(lower) + weight * shape_V(lower + 1)
    return np.where(inside, Q, np.nan), np.where(inside, V, np.nan)


def kappa(nu, B, n_e, theta, kappa, kappa_width):
    """Fitting formulas for an isotropic kappa distribution.

    The distribution is ``dn/dgamma ~ gamma (gamma^2 - 1)^(1/2)
    (1 + (gamma - 1) / (kappa w))^-(kappa + 1)``, normalized to n_e, with
    no high-energy cutoff.

    Parameters
    ----------
    nu : array_like
        Observing frequency, Hz (> 0).
    B : array_like
        Magnetic field strength, Gauss (>= 0; B = 0 gives zeros).
    n_e : array_like
        Electron density, cm^-3 (>= 0).
    theta : array_like
        Angle between the wave vector and the field, radians; folded into
        [0, pi/2] as described in the module docstring.
    kappa : array_like
        Kappa index (> 2).
    kappa_width : array_like
        Width parameter w (> 0), the analogue of Theta_e.

    Returns
    -------
    coefficients : ndarray, shape (..., 8)
        j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V; the
        emissivities in erg s^-1 cm^-3 Hz^-1 sr^-1, the rest in cm^-1.

    Notes
    -----
    Emission: Pandya et al. (2016) eqs. 29 and 35-38; absorption: eqs. 30
    and 39-42. Both interpolate between a low- and a high-frequency limit in
    X_kappa = nu / nu_kappa, nu_kappa = nu_cyc (w kappa)^2 sin(theta). The
    absorption limits contain 2F1(kappa - 1/3, kappa + 1; kappa + 2/3;
    -kappa w) (scipy's hyp2f1). As in symphony's source, the V terms are
    given the IEEE/IAU sign the paper states but does not use (j_V,
    alpha_V > 0 for theta < pi/2). Pandya et al. fitted 3 <~ kappa <~ 7.

    Rotativities: Marszewski et al. (2021), fits at kappa = 3.5, 4, 4.5, 5::

        rho_Q = -(n_e e^2 nu_cyc^2 sin^2 theta / (m_e c nu^3)) w_Q(w) f(X)
        rho_V = (2 n_e e^2 nu_cyc cos theta / (m_e c nu^2))
                [K_0(1/w) / K_2(1/w)] w_V(w) g(X)

    with X = X_kappa and per-kappa w_Q, f, w_V, g. Between grid values we
    interpolate linearly in kappa (ipole's practice; Marszewski et al. give
    no rule). Outside 3.5 <= kappa <= 5 there is no fit and both
    rotativities are NaN. Their signs are already the project's. The fits
    are meant for nu >~ 100 nu_cyc and X_kappa >~ 0.1.

    Accuracy of emission and absorption against symphony's exact values
    (fits_vs_exact.tsv, 45 points, 3.3 <= kappa <= 7, 1 <= w <= 97):
    5.6-12.5% median, 43-57% worst (mostly at w < 3).
    """
    args = _as_arrays(
        nu=nu, B=B, n_e=n_e, theta=theta, kappa=kappa, kappa_width=kappa_width
    )
    nu, B, n_e, theta, kappa, w = args.values()
    _check_common(nu, B, n_e, theta)
    _require(kappa > 2, "kappa", "> 2", kappa)
    _require(w > 0, "kappa_width", "> 0", w)

    theta_folded, v_sign = fold_angle(theta)
    sin_theta, cos_theta = np.sin(theta_folded), np.cos(theta_folded)
    with np.errstate(all="ignore"):
        nu_c = cyclotron_frequency(B)
        X = nu / (nu_c * (w * kappa) ** 2 * sin_theta)
        J_I, J_Q, J_V = _kappa_emission(X, kappa, w, sin_theta)
        A_I, A_Q, A_V = _kappa_absorption(X, kappa, w, sin_theta)
        j_scale = n_e * e**2 * nu_c * sin_theta / c
        alpha_scale = n_e * e / (B * sin_theta)

        # Marszewski et al. (2021).
        shape_Q, shape_V = _kappa_rotativity_shapes(kappa, w, X)
        rho_Q = -(n_e * e**2 * nu_c**2 * sin_theta**2) / (m_e * c * nu**3) * shape_Q
        k0, k1 = special.kve(0, 1 / w), special.kve(1, 1 / w)
        bessel_ratio = k0 / (k0 + 2 * w * k1)
        rho_V = 2 * n_e * e**2 * nu_c * cos_theta / (m_e * c * nu**2)
        rho_V = rho_V * bessel_ratio * shape_V
        coefficients = (
            j_scale * J_I,
            alpha_scale * A_I,
            -j_scale * J_Q,
            -alpha_scale * A_Q,
            j_scale * J_V,
            alpha_scale * A_V,
            rho_Q,
            rho_V,
        )
    return _assemble(coefficients, v_sign, theta_folded, B)


def _kappa_emission(X, kappa, w, sin_theta):
    """|J_I|, |J_Q|, |J_V| of Pandya et al. (2016) eqs. 35-38 (no prefactor)."""
    low = X ** (1 / 3) * 4 * np.pi * special.gamma(kappa - 4 / 3)
    low = low / (3 ** (7 / 3) * special.gamma(kappa - 2))
    gammas = special.gamma(kappa / 4 - 1 / 3) * special.gamma(kappa / 4 + 4 / 3)
    high = 3 ** ((kappa - 1) / 2) * (kappa - 2) * (kappa - 1) / 4 * gammas
    high = high * X ** (-(kappa - 2) / 2)

    J_I = _combine(low, high, 3 * kappa**-1.5)
    J_Q = _combine(low / 2, (0.8**2 + kappa / 50) * high, 3.7 * kappa**-1.6)
    # Rounding can push sin(theta) a hair above what makes these >= 0.
    angular_low = np.maximum(sin_theta**-2.4 - 1, 0) ** (12 / 25)
    angular_high = np.maximum(sin_theta**-2.5 - 1, 0) ** (11 / 25)
    V_low = (3 / 4) ** 2 * angular_low * kappa ** (-66 / 125) / w * X**-0.35 * low
    V_high = (7 / 8) ** 2 * angular_high * kappa ** (-11 / 25) / w / np.sqrt(X) * high
    J_V = _combine(V_low, V_high, 3 * kappa**-1.5)
    return J_I, J_Q, J_V


def _kappa_absorption(X, kappa, w, sin_theta):
    """|A_I|, |A_Q|, |A_V| of Pandya et al. (2016) eqs. 39-42 (no prefactor)."""
    wk = w * kappa
    kappa_terms = (kappa - 2) * (kappa - 1) * kappa
    hypergeometric = special.hyp2f1(kappa - 1 / 3, kappa + 1, kappa + 2 / 3, -wk)
    low = 3 ** (1 / 6) * (10 / 41) * (2 * np.pi) ** 2 / wk ** (16 / 3 - kappa)
    low = low * kappa_terms / (3 * kappa - 1) * special.gamma(5 / 3) * hypergeometric
    low = low * X ** (-5 / 3)
    gamma_term = 2 * special.gamma(2 + kappa / 2) / (2 + kappa) - 1
    high = 2 * np.pi**2.5 / 3 * kappa_terms / wk**5 * gamma_term
    high = high * X ** (-(kappa + 3) / 2)

    I_high = ((3 / kappa) ** (19 / 4) + 3 / 5) * high
    A_I = _combine(low, I_high, (-7 / 4 + 8 * kappa / 5) ** (-43 / 50))
    Q_high = (21**2 * kappa ** (-144 / 25) + 11 / 20) * high
    A_Q = _combine((25 / 48) * low, Q_high, (7 / 5) * kappa ** (-23 / 20))
    angular_low = np.maximum(sin_theta ** (-114 / 50) - 1, 0) ** (223 / 500)
    angular_high = np.sqrt(np.maximum(sin_theta ** (-41 / 20) - 1, 0))
    V_low = 77 / (100 * w) * angular_low * X**-0.35 * kappa**-0.7 * low
    kappa_poly = 13**2 * kappa**-8 + 13 / 2500 * kappa - 263 / 5000 + 47 / (200 * kappa)
    V_high = 14.3 * w ** (-116 / 125) * angular_high * kappa_poly / np.sqrt(X) * high
    A_V = _combine(V_low, V_high, (61 / 50) * kappa ** (-142 / 125) + 7 / 1000)
    return A_I, A_Q, A_V


# ---------------------------------------------------------------------------
# Dispatch

_DISTRIBUTIONS = {
    "thermal": (thermal, ("theta_e",), ("emission", "faraday")),
    "powerlaw": (powerlaw, ("p",), ("gamma_min", "gamma_max")),
    "kappa": (kappa, ("kappa", "kappa_width"), ()),
}


def fit_coefficients(distribution, nu, B, n_e, theta, **params):
    """The published fits for a named electron distribution.

    Parameters
    ----------
    distribution : {"thermal", "powerlaw", "kappa"}
        Which fits to use: :func:`thermal`, :func:`powerlaw` or
        :func:`kappa`.
    nu, B, n_e, theta : array_like
        Frequency (Hz), field (Gauss), electron density (cm^-3) and angle
        (radians), as in those functions.
    **params
        The distribution's parameters: ``theta_e`` (and optionally
        ``emission``, ``faraday``) for thermal; ``p`` (and optionally
        ``gamma_min``, ``gamma_max``) for powerlaw; ``kappa`` and
        ``kappa_width`` for kappa.

    Returns
    -------
    coefficients : ndarray, shape (..., 8)
        j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V in CGS.
    """
    try:
        function, required, optional = _DISTRIBUTIONS[distribution]
    except (KeyError, TypeError):
        raise UsageError(
            f"distribution must be one of {', '.join(_DISTRIBUTIONS)}; "
            f"got {distribution!r}"
        ) from None
    missing = [name for name in required if name not in params]
    unknown = sorted(set(params) - set(required) - set(optional))
    if missing or unknown:
        accepted = ", ".join(required + optional)
        problem = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(unknown)}" if unknown else "",
            )
            if part
        )
        raise UsageError(f"{distribution} fits take parameters {accepted}: {problem}")
    return function(nu, B, n_e, theta, **params)
