"""Tests of neurosynchro.fits against independent values.

References used: symphony's own implementation of the Pandya et al. (2016)
fits (the ``fit`` column of fits_vs_exact.tsv), symphony's exact
rotativities (rho_points.txt), Kirchhoff's law, the classical power-law
closed forms of Rybicki & Lightman (1979), and cold-plasma and
ultrarelativistic limits worked out by hand.
"""

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from pwkit import cgs
from scipy.special import gamma

from neurosynchro import fits
from neurosynchro.errors import UsageError

SYMPHONY = Path(__file__).resolve().parents[2] / "shared" / "data" / "symphony"

# CGS constants written out here (pwkit's values), so the reference formulas
# below do not lean on the module under test.
E = cgs.e
M_E = cgs.me
C = cgs.c
H = cgs.h
K_B = cgs.k
EULER_GAMMA = 0.5772156649015329

INDEX = {name: i for i, name in enumerate(fits.COEFFICIENT_NAMES)}
V_TERMS = [INDEX["j_V"], INDEX["alpha_V"], INDEX["rho_V"]]
OTHER_TERMS = [i for i in range(8) if i not in V_TERMS]


def nu_cyc(B):
    return E * B / (2 * np.pi * M_E * C)


def field_for(s, nu=1.0):
    """Field strength (G) giving harmonic number s = nu / nu_cyc."""
    return 2 * np.pi * M_E * C * nu / (E * s)


def load(name):
    pandas = pytest.importorskip("pandas")
    path = SYMPHONY / name
    if not path.exists():
        pytest.skip(f"shared symphony data not found at {path}")
    return pandas.read_csv(path, sep="\t")


# ---------------------------------------------------------------------------
# symphony's own implementation of the Pandya et al. (2016) fits


def evaluate_rows(rows):
    """Our fit for each row of fits_vs_exact.tsv, in that row's coefficient."""
    dist = rows.dist.iloc[0]
    common = (rows.nu_Hz, rows.B_G, rows.n_e_cm3, rows.theta_rad)
    if dist == "thermal":
        out = fits.thermal(*common, rows.Theta_e)
        # symphony's thermal j_V "fit" is Dexter's I_V(x), not Pandya's
        # formula (found by comparison: Dexter matches it to 1e-6).
        dexter = fits.thermal(*common, rows.Theta_e, emission="dexter")
        out[:, INDEX["j_V"]] = dexter[:, INDEX["j_V"]]
    elif dist == "powerlaw":
        out = fits.powerlaw(*common, rows.p, rows.gamma_min, rows.gamma_max)
    else:
        out = fits.kappa(*common, rows.kappa, rows.w)
    column = rows.coefficient.map(INDEX).to_numpy()
    return out[np.arange(len(rows)), column]


@pytest.mark.parametrize("dist", ["thermal", "powerlaw", "kappa"])
def test_reproduces_symphony_fit_column(dist):
    table = load("fits_vs_exact.tsv")
    rows = table[table.dist == dist]
    assert len(rows) >= 45
    # The table holds 7 significant digits of inputs and outputs, and symphony
    # uses slightly older constants than pwkit (e to 5e-7, m_e to 8e-7); with
    # symphony's constants the worst disagreement is 4e-6.
    assert_allclose(evaluate_rows(rows), rows.fit.to_numpy(), rtol=3e-5)


# ---------------------------------------------------------------------------
# Thermal


def planck(nu, theta_e):
    T = theta_e * M_E * C**2 / K_B
    # expm1: at radio frequencies h nu / k T is ~1e-11.
    return 2 * H * nu**3 / C**2 / np.expm1(H * nu / (K_B * T))


@pytest.mark.parametrize("emission", ["pandya", "dexter"])
def test_thermal_absorption_obeys_kirchhoff(emission):
    # Strong field and high frequency so that h nu / k T ~ 0.3: the full
    # Planck function, not its Rayleigh-Jeans limit, must be used.
    nu = np.array([1e11, 1e19, 1e20])[:, None]
    theta_e = np.array([0.5, 3.0, 30.0])
    out = fits.thermal(nu, 1e12, 2.0, 0.9, theta_e, emission=emission)
    source = planck(nu, theta_e)
    for j, alpha in [("j_I", "alpha_I"), ("j_Q", "alpha_Q"), ("j_V", "alpha_V")]:
        assert np.all(out[..., INDEX[j]] != 0)
        assert_allclose(out[..., INDEX[alpha]], out[..., INDEX[j]] / source, rtol=1e-9)


def test_thermal_rayleigh_jeans_absorption():
    nu, theta_e = 2.3e11, 10.0
    out = fits.thermal(nu, 30.0, 1e5, 1.0, theta_e)
    T = theta_e * M_E * C**2 / K_B
    rayleigh_jeans = 2 * nu**2 * K_B * T / C**2
    assert_allclose(
        out[INDEX["alpha_I"]], out[INDEX["j_I"]] / rayleigh_jeans, rtol=1e-6
    )


def cold_faraday_rotation(nu, B, n_e, theta):
    # rho_V = omega_p^2 omega_B cos(theta) / (c omega^2) with omega_p^2 =
    # 4 pi n_e e^2 / m_e and omega_B = e B / (m_e c) gives
    # e^3 n_e B cos(theta) / (pi m_e^2 c^2 nu^2).
    return E**3 * n_e * B * np.cos(theta) / (np.pi * M_E**2 * C**2 * nu**2)


def cold_faraday_conversion(nu, B, n_e, theta):
    # |rho_Q| = omega_p^2 omega_B^2 sin^2(theta) / (2 c omega^3)
    #         = e^4 n_e B^2 sin^2(theta) / (4 pi^2 m_e^3 c^3 nu^3).
    return (
        E**4 * n_e * B**2 * np.sin(theta) ** 2 / (4 * np.pi**2 * M_E**3 * C**3 * nu**3)
    )


def test_thermal_rotativities_cold_limit():
    # Shcherbakov's F and G tend to 1 as X -> 0, and K_0/K_2, K_1/K_2 -> 1 as
    # Theta_e -> 0, both with corrections of order Theta_e.
    nu, n_e, theta, theta_e = 1e10, 3.0, np.array([0.3, 0.9, 1.4]), 1e-4
    B = field_for(1e4, nu)
    out = fits.thermal(nu, B, n_e, theta, theta_e, faraday="shcherbakov")
    assert_allclose(
        out[:, INDEX["rho_V"]], cold_faraday_rotation(nu, B, n_e, theta), rtol=5e-4
    )
    # In the project's basis conversion is negative at high frequency.
    assert_allclose(
        out[:, INDEX["rho_Q"]], -cold_faraday_conversion(nu, B, n_e, theta), rtol=1e-3
    )


@pytest.mark.parametrize("faraday", ["dexter", "shcherbakov"])
def test_thermal_rho_V_ultrarelativistic_bessel_ratio(faraday):
    # K_0(z) / K_2(z) -> (ln(2/z) - gamma_E) / (2 / z^2) as z = 1/Theta_e -> 0;
    # at nu = 1e12 nu_cyc, X ~ 0.01 and the X corrections are below 1e-4.
    theta_e, theta = 300.0, 0.7
    B = field_for(1e12)
    out = fits.thermal(1.0, B, 1.0, theta, theta_e, faraday=faraday)
    ratio = (np.log(2 * theta_e) - EULER_GAMMA) / (2 * theta_e**2)
    expected = cold_faraday_rotation(1.0, B, 1.0, theta) * ratio
    assert_allclose(out[INDEX["rho_V"]], expected, rtol=1e-4)


def test_thermal_rho_Q_changes_sign_where_symphony_says():
    # README: positive below nu ~ 2.45 Theta_e^2 sin(theta) nu_cyc, negative
    # above.
    theta_e, theta = np.array([[3.0], [30.0]]), 1.1
    factor = np.array([0.5, 1.5, 4.0, 40.0])
    nu = factor * theta_e**2 * np.sin(theta) * nu_cyc(10.0)
    for faraday in fits.FARADAY_FITS:
        rho_Q = fits.thermal(nu, 10.0, 1.0, theta, theta_e, faraday=faraday)[..., 6]
        assert np.all(rho_Q[:, :2] > 0)
        assert np.all(rho_Q[:, 2:] < 0)


def test_rotativities_agree_with_symphony_exact_points():
    table = load("rho_points.txt")
    for _, row in table.dropna().iterrows():
        B = field_for(row.s)
        if row.dist == "thermal":
            out = fits.thermal(1.0, B, 1.0, row.theta, row.param)
            checked = ["rho_Q", "rho_V"]
        else:
            out = fits.powerlaw(1.0, B, 1.0, row.theta, row.param, 1.0, 1e4)
            # The power-law rho_V form is zero at gamma_min = 1 (see below).
            checked = ["rho_Q"]
        for name in checked:
            ratio = out[INDEX[name]] / row[name]
            # Same sign; magnitudes within the fits' accuracy (measured
            # 0.9-1.4 at these points).
            assert 0.6 < ratio < 1.6, (row.dist, row.s, name, ratio)


def test_thermal_signs_in_domain():
    rng = np.random.default_rng(1)
    nu = 10 ** rng.uniform(1.5, 4, 200) * nu_cyc(5.0)
    theta = rng.uniform(0.1, 1.5, 200)
    theta_e = 10 ** rng.uniform(0, 2, 200)
    for emission in fits.EMISSION_FITS:
        out = fits.thermal(nu, 5.0, 1.0, theta, theta_e, emission=emission)
        assert np.all(out[:, [0, 1, 4, 5, 7]] > 0)
        assert np.all(out[:, [2, 3]] < 0)


# ---------------------------------------------------------------------------
# Power law


@pytest.mark.parametrize("p", [1.5, 2.0, 3.0, 4.5])
def test_powerlaw_closed_forms(p):
    # Rybicki & Lightman (1979) eqs. 6.36 (j_nu = P_omega / 2 per steradian
    # for an isotropic distribution), 6.38 and 6.53, for N(gamma) = C
    # gamma^-p above gamma = 1, i.e. C = n_e (p - 1).
    nu, B, n_e, theta = 2e11, 40.0, 5.0, np.array([0.3, 1.0, 1.5])
    out = fits.powerlaw(nu, B, n_e, theta, p)
    C_gamma = n_e * (p - 1)
    B_perp = B * np.sin(theta)
    j_I = (
        np.sqrt(3) * E**3 * C_gamma * B_perp / (4 * np.pi * M_E * C**2 * (p + 1))
        * gamma(p / 4 + 19 / 12) * gamma(p / 4 - 1 / 12)
        * (2 * np.pi * M_E * C * nu / (3 * E * B_perp)) ** (-(p - 1) / 2)
    )  # fmt: skip
    C_energy = C_gamma * (M_E * C**2) ** (p - 1)
    alpha_I = (
        np.sqrt(3) * E**3 / (8 * np.pi * M_E)
        * (3 * E / (2 * np.pi * M_E**3 * C**5)) ** (p / 2)
        * C_energy * B_perp ** ((p + 2) / 2)
        * gamma((3 * p + 2) / 12) * gamma((3 * p + 22) / 12) * nu ** (-(p + 4) / 2)
    )  # fmt: skip
    assert_allclose(out[:, INDEX["j_I"]], j_I, rtol=1e-12)
    assert_allclose(out[:, INDEX["alpha_I"]], alpha_I, rtol=1e-12)
    assert_allclose(
        out[:, INDEX["j_Q"]] / out[:, INDEX["j_I"]], -(p + 1) / (p + 7 / 3), rtol=1e-12
    )


def test_powerlaw_normalization_uses_gamma_range():
    nu, B, theta, p = 1e10, 10.0, 0.8, 2.5
    full = fits.powerlaw(nu, B, 1.0, theta, p)
    truncated = fits.powerlaw(nu, B, 1.0, theta, p, gamma_min=2.0, gamma_max=1e3)
    norm = 1 / (2.0 ** (1 - p) - 1e3 ** (1 - p))
    assert_allclose(truncated[:6], full[:6] * norm, rtol=1e-12)


def test_powerlaw_rho_Q_is_continuous_at_p_equal_2():
    nu, B, theta = 3e9, 10.0, 1.0
    p = np.array([2 - 1e-7, 2.0, 2 + 1e-7])
    rho_Q = fits.powerlaw(nu, B, 1.0, theta, p, gamma_min=3.0)[:, INDEX["rho_Q"]]
    assert np.all(rho_Q < 0)
    assert_allclose(rho_Q[1], rho_Q[[0, 2]].mean(), rtol=1e-6)


def test_powerlaw_rho_V_vanishes_at_gamma_min_1():
    # A documented limitation of the Jones & O'Dell form: rho_V ~ ln(gamma_min).
    out = fits.powerlaw(1e10, 10.0, 1.0, 0.8, 3.0, gamma_min=[1.0, 10.0])
    assert out[0, INDEX["rho_V"]] == 0
    assert out[1, INDEX["rho_V"]] > 0


def test_powerlaw_signs_in_domain():
    rng = np.random.default_rng(2)
    # nu >> nu_i = gamma_min^2 nu_cyc sin(theta), where the rho forms apply.
    nu = 10 ** rng.uniform(2.5, 5, 200) * nu_cyc(5.0)
    theta = rng.uniform(0.1, 1.5, 200)
    p = rng.uniform(1.5, 5, 200)
    out = fits.powerlaw(nu, 5.0, 1.0, theta, p, gamma_min=5.0)
    assert np.all(out[:, [0, 1, 4, 5, 7]] > 0)
    assert np.all(out[:, [2, 3, 6]] < 0)


# ---------------------------------------------------------------------------
# Kappa


def test_kappa_rotativities_exist_only_on_fitted_range():
    kappa = np.array([3.0, 3.5, 4.2, 5.0, 6.0])
    out = fits.kappa(1e11, 10.0, 1.0, 0.9, kappa, 5.0)
    rho = out[:, [INDEX["rho_Q"], INDEX["rho_V"]]]
    assert np.all(np.isnan(rho[[0, 4]]))
    assert np.all(np.isfinite(rho[1:4]))
    assert np.all(np.isfinite(out[:, :6]))


def test_kappa_rotativities_interpolate_linearly_between_fits():
    # Holding X_kappa = nu / (nu_cyc (w kappa)^2 sin theta) fixed (nu ~
    # kappa^2) and removing the nu^-3 and nu^-2 prefactors leaves the
    # interpolated fit shapes, which must be continuous and linear in kappa
    # between grid points.
    kappa = np.array([4.0 - 1e-9, 4.0, 4.0 + 1e-9, 4.25, 4.5])
    nu = 3e11 * (kappa / 4) ** 2
    out = fits.kappa(nu, 10.0, 1.0, 0.9, kappa, 8.0)
    shape = np.stack([out[:, 6] * nu**3, out[:, 7] * nu**2], axis=-1)
    assert_allclose(shape[0], shape[2], rtol=1e-7)
    assert_allclose(shape[3], (shape[1] + shape[4]) / 2, rtol=1e-12)


def test_kappa_signs_in_domain():
    rng = np.random.default_rng(3)
    w = 10 ** rng.uniform(0, 1.7, 200)
    kappa = rng.uniform(3.5, 5, 200)
    # X_kappa >= 1: the rotativity fits' range.
    nu = 10 ** rng.uniform(0, 3, 200) * (w * kappa) ** 2 * nu_cyc(5.0)
    theta = rng.uniform(0.1, 1.5, 200)
    out = fits.kappa(nu, 5.0, 1.0, theta, kappa, w)
    assert np.all(out[:, [0, 1, 4, 5, 7]] > 0)
    assert np.all(out[:, [2, 3, 6]] < 0)


# ---------------------------------------------------------------------------
# Shared behaviour


CASES = {
    "thermal": {"theta_e": 10.0},
    "powerlaw": {"p": 2.8, "gamma_min": 3.0},
    "kappa": {"kappa": 4.3, "kappa_width": 6.0},
}


@pytest.mark.parametrize("distribution", CASES)
def test_angle_folding(distribution):
    params = CASES[distribution]
    theta = np.array([0.4, 1.2])
    base = fits.fit_coefficients(distribution, 5e11, 20.0, 1.0, theta, **params)
    mirrored = fits.fit_coefficients(
        distribution, 5e11, 20.0, 1.0, np.pi - theta, **params
    )
    assert_allclose(mirrored[:, OTHER_TERMS], base[:, OTHER_TERMS], rtol=1e-12)
    assert_allclose(mirrored[:, V_TERMS], -base[:, V_TERMS], rtol=1e-12)
    for equivalent in (theta + 2 * np.pi, -theta, theta - 4 * np.pi):
        again = fits.fit_coefficients(
            distribution, 5e11, 20.0, 1.0, equivalent, **params
        )
        assert_allclose(again, base, rtol=1e-12)


@pytest.mark.parametrize("distribution", CASES)
def test_zero_field_and_parallel_propagation(distribution):
    params = CASES[distribution]
    out = fits.fit_coefficients(
        distribution, 5e11, [0.0, 20.0], 1.0, [1.0, 0.0], **params
    )
    # (np.pi is 1.2e-16 away from pi, so it folds to a tiny non-zero angle.)
    assert_array_equal(out[0], np.zeros(8))
    assert np.all(np.isnan(out[1]))


@pytest.mark.parametrize("distribution", CASES)
def test_broadcasting_and_density_scaling(distribution):
    params = CASES[distribution]
    nu = np.array([1e11, 3e11, 1e12])[:, None]
    theta = np.array([0.3, 0.8, 1.1, 1.5])
    out = fits.fit_coefficients(distribution, nu, 20.0, 1.0, theta, **params)
    assert out.shape == (3, 4, 8)
    scalar = fits.fit_coefficients(distribution, 3e11, 20.0, 1.0, 0.8, **params)
    assert scalar.shape == (8,)
    assert_allclose(scalar, out[1, 1], rtol=1e-14)
    double = fits.fit_coefficients(distribution, nu, 20.0, 2.0, theta, **params)
    assert_allclose(double, 2 * out, rtol=1e-14)


@pytest.mark.parametrize("distribution", CASES)
def test_harmonic_number_scaling(distribution):
    # DESIGN.md: at fixed s = nu / nu_cyc, j scales as nu and alpha, rho as
    # 1 / nu. The thermal fits obey it exactly only where h nu << k T.
    params = CASES[distribution]
    nu = np.array([1e9, 1e11])
    B = field_for(300.0, nu)
    out = fits.fit_coefficients(distribution, nu, B, 1.0, 0.8, **params)
    expected = out[0] * np.where(np.arange(8) % 2 == 0, 100.0, 0.01)
    expected[6:] = out[0, 6:] / 100
    assert_allclose(out[1], expected, rtol=1e-4)


def test_fit_coefficients_matches_direct_calls():
    args = (2e11, 15.0, 3.0, 0.7)
    assert_array_equal(
        fits.fit_coefficients("thermal", *args, theta_e=8.0, emission="dexter"),
        fits.thermal(*args, 8.0, emission="dexter"),
    )
    assert_array_equal(
        fits.fit_coefficients("powerlaw", *args, p=3.1, gamma_max=1e4),
        fits.powerlaw(*args, 3.1, gamma_max=1e4),
    )
    assert_array_equal(
        fits.fit_coefficients("kappa", *args, kappa=4.1, kappa_width=3.0),
        fits.kappa(*args, 4.1, 3.0),
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fits.fit_coefficients("maxwell", 1e11, 1.0, 1.0, 1.0), "thermal"),
        (lambda: fits.fit_coefficients("thermal", 1e11, 1.0, 1.0, 1.0), "theta_e"),
        (
            lambda: fits.fit_coefficients("kappa", 1e11, 1.0, 1.0, 1.0, kappa=4, w=3),
            "unknown w",
        ),
        (lambda: fits.thermal(-1.0, 1.0, 1.0, 1.0, 10.0), "nu must be > 0"),
        (lambda: fits.thermal(1e11, -1.0, 1.0, 1.0, 10.0), "B must be >= 0"),
        (lambda: fits.thermal(1e11, 1.0, 1.0, 1.0, 0.0), "theta_e must be > 0"),
        (lambda: fits.thermal(1e11, 1.0, 1.0, 1.0, 1.0, emission="x"), "pandya"),
        (lambda: fits.thermal(1e11, 1.0, 1.0, 1.0, 1.0, faraday="x"), "shcherbakov"),
        (lambda: fits.powerlaw(1e11, 1.0, 1.0, 1.0, 1.0), "p must be > 1"),
        (lambda: fits.powerlaw(1e11, 1.0, 1.0, 1.0, 3.0, 0.5), "gamma_min"),
        (lambda: fits.kappa(1e11, 1.0, 1.0, 1.0, 2.0, 3.0), "kappa must be > 2"),
        (lambda: fits.kappa(1e11, 1.0, 1.0, [1.0, 2.0], 4.0, [1, 2, 3]), "broadcast"),
    ],
)
def test_bad_arguments_raise_usage_error(call, match):
    with pytest.raises(UsageError, match=match):
        call()
