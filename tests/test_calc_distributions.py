"""Tests of the electron distributions behind the detailed calculator."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, special

from neurosynchro.calc.distributions import (
    Distribution,
    Kappa,
    PowerLaw,
    Thermal,
    make_distribution,
)
from neurosynchro.errors import UsageError

CASES = [
    Thermal(0.01),
    Thermal(1.0),
    Thermal(100.0),
    PowerLaw(1.5),
    PowerLaw(3.5, gamma_min=10.0, gamma_max=1e4),
    PowerLaw(1.0, gamma_min=1.0, gamma_max=100.0),
    Kappa(3.0, 1.0),
    Kappa(2.5, 10.0, gamma_cutoff=1e3),
    Kappa(7.0, 50.0),
]


def _integral(function, dist):
    """Integral over the support, by adaptive quadrature in ln(gamma - low)."""
    low = dist.gamma_min
    top = np.log(dist.gamma_max - low) if np.isfinite(dist.gamma_max) else 700.0

    def integrand(u):
        x = np.exp(u)
        return float(function(low + x)) * x

    # Split the log range so that quad sees every feature.
    edges = np.linspace(-40.0, top, 30)
    return sum(
        integrate.quad(integrand, a, b, epsabs=1e-15, epsrel=1e-10, limit=200)[0]
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    )


@pytest.mark.parametrize("dist", CASES, ids=repr)
def test_normalized_to_one_electron(dist):
    assert_allclose(_integral(dist.dn_dgamma, dist), 1.0, rtol=1e-9)


@pytest.mark.parametrize("dist", CASES, ids=repr)
def test_derivative_matches_finite_differences(dist):
    lo = dist.gamma_min
    gamma = lo + np.array([0.3, 1.0, 4.0, 30.0]) * (lo if lo > 1 else 1.0)
    gamma = gamma[gamma < dist.gamma_max]
    h = 1e-6 * gamma
    numeric = (dist.dn_dgamma(gamma + h) - dist.dn_dgamma(gamma - h)) / (2 * h)
    mask = dist.dn_dgamma(gamma) > 1e-250
    assert_allclose(dist.d_dn_dgamma(gamma)[mask], numeric[mask], rtol=1e-6)


@pytest.mark.parametrize("dist", CASES, ids=repr)
def test_dlnf_dgamma_is_the_log_derivative_of_f(dist):
    # f(p) is proportional to (dn/dgamma) / (gamma sqrt(gamma^2 - 1)).
    lo = dist.gamma_min
    gamma = lo + np.array([0.01, 0.3, 1.0, 4.0, 30.0])
    gamma = gamma[(gamma < dist.gamma_max) & (dist.dn_dgamma(gamma) > 1e-200)]

    def log_f(g):
        return np.log(dist.dn_dgamma(g)) - np.log(g * np.sqrt(g * g - 1.0))

    h = 1e-6 * gamma
    numeric = (log_f(gamma + h) - log_f(gamma - h)) / (2 * h)
    assert_allclose(dist.dlnf_dgamma(gamma), numeric, rtol=1e-6)
    # The base-class fallback gives the same.
    assert_allclose(Distribution.dlnf_dgamma(dist, gamma), numeric, rtol=1e-6)


@pytest.mark.parametrize("theta_e", [0.05, 1.0, 20.0])
def test_thermal_mean_lorentz_factor(theta_e):
    # <gamma> = K_1(1/theta_e)/K_2(1/theta_e) + 3 theta_e for Maxwell-Juttner.
    dist = Thermal(theta_e)
    x = 1.0 / theta_e
    expected = special.kve(1, x) / special.kve(2, x) + 3.0 * theta_e
    mean = _integral(lambda g: g * dist.dn_dgamma(g), dist)
    assert_allclose(mean, expected, rtol=1e-9)


def test_power_law_closed_form():
    dist = PowerLaw(2.5, gamma_min=3.0, gamma_max=300.0)
    gamma = np.array([2.9, 3.0, 50.0, 300.0, 301.0])
    norm = 1.5 / (3.0**-1.5 - 300.0**-1.5)
    assert_allclose(
        dist.dn_dgamma(gamma),
        [0.0, norm * 3.0**-2.5, norm * 50.0**-2.5, norm * 300.0**-2.5, 0.0],
        rtol=1e-13,
    )


def test_kappa_tends_to_thermal_for_large_kappa():
    # (1 + (gamma-1)/(kappa w))^-(kappa+1) -> exp(-(gamma-1)/w) as kappa -> inf.
    gamma = np.array([1.01, 1.5, 3.0, 10.0])
    kappa = Kappa(1e6, 2.0)
    assert_allclose(kappa.dn_dgamma(gamma), Thermal(2.0).dn_dgamma(gamma), rtol=2e-5)


def test_kappa_tail_slope():
    # dn/dgamma ~ gamma^(1 - kappa) far above kappa w.
    dist = Kappa(4.0, 1.0)
    g = np.array([1e6, 1e7])
    slope = np.diff(np.log(dist.dn_dgamma(g))) / np.diff(np.log(g))
    assert_allclose(slope, 1.0 - 4.0, rtol=1e-5)


def test_zero_outside_support_and_huge_gamma_is_finite():
    for dist in CASES:
        values = dist.dn_dgamma(np.array([0.5, 1e300]))
        assert values[0] == 0.0
        assert np.isfinite(values[1])


def test_make_distribution_builds_each_kind():
    assert isinstance(make_distribution("thermal", theta_e=3.0), Thermal)
    dist = make_distribution("powerlaw", p=2.0, gamma_max=1e3)
    assert (dist.p, dist.gamma_min, dist.gamma_max) == (2.0, 1.0, 1e3)
    dist = make_distribution("kappa", kappa=4.0, kappa_width=3.0)
    assert dist.gamma_cutoff == np.inf and dist.name == "kappa"


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("maxwell", {"theta_e": 1.0}, "'thermal', 'powerlaw', 'kappa'"),
        ("thermal", {"theta": 1.0}, "valid parameters are theta_e"),
        ("powerlaw", {"gamma_min": 2.0}, "needs parameter.*p"),
        ("kappa", {"kappa": 4.0}, "needs parameter.*kappa_width"),
        ("thermal", {"theta_e": -1.0}, "theta_e must be"),
        ("powerlaw", {"p": 0.5}, "p must be > 1"),
        ("powerlaw", {"p": 2.0, "gamma_min": 10.0, "gamma_max": 5.0}, "gamma_max"),
        ("kappa", {"kappa": 1.5, "kappa_width": 1.0}, "kappa must be > 2"),
    ],
)
def test_bad_arguments_raise_usage_errors(name, params, match):
    with pytest.raises(UsageError, match=match):
        make_distribution(name, **params)
