"""Tests of neurosynchro.transfer: exact polarized transfer along rays.

Every expected value here is worked out independently of the code under
test: closed-form solutions of special cases, the Rodrigues rotation formula,
scipy's matrix exponential, and scipy's ODE solvers.
"""

import time

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from neurosynchro.errors import UsageError
from neurosynchro.stokes import detrivialize_stokes_basis as rotate_to_sky
from neurosynchro.transfer import integrate_ray, segment_propagators

# Positions in the "eleven" sky-basis order.
J_I, ALPHA_I, J_Q, ALPHA_Q, J_U, ALPHA_U, J_V, ALPHA_V, RHO_Q, RHO_U, RHO_V = range(11)


def eleven(j=(0, 0, 0, 0), alpha=(0, 0, 0, 0), rho=(0, 0, 0)):
    """Coefficients in the eleven order from (I, Q, U, V) vectors."""
    c = np.zeros(11)
    c[[J_I, J_Q, J_U, J_V]] = j
    c[[ALPHA_I, ALPHA_Q, ALPHA_U, ALPHA_V]] = alpha
    c[[RHO_Q, RHO_U, RHO_V]] = rho
    return c


def propagation_matrix(c):
    """K in the Landi Degl'Innocenti / Dexter (2016) convention, from scratch."""
    aI, aQ, aU, aV = c[[ALPHA_I, ALPHA_Q, ALPHA_U, ALPHA_V]]
    rQ, rU, rV = c[[RHO_Q, RHO_U, RHO_V]]
    return np.array(
        [
            [aI, aQ, aU, aV],
            [aQ, aI, rV, -rU],
            [aU, -rV, aI, rQ],
            [aV, rU, -rQ, aI],
        ]
    )


def emission(c):
    return c[[J_I, J_Q, J_U, J_V]]


def expm_segment(c, length):
    """Propagator and source term of a segment from scipy's expm.

    The propagator is ``exp(-alpha_I l) expm(-M l)``: taking the scalar part
    out keeps expm's argument small, where it is accurate. The source term is
    the last column of the exponential of the 5x5 augmented matrix ``[[-K l,
    J l], [0, 0]]``, or, for optically thick segments (where that argument is
    large), ``K^-1 (1 - O) J``, which then suffers no cancellation.
    """
    K = propagation_matrix(c)
    x = c[ALPHA_I] * length
    O = np.exp(-x) * expm(-(K - c[ALPHA_I] * np.eye(4)) * length)
    if x > 5:
        return O, np.linalg.solve(K, (np.eye(4) - O) @ emission(c))
    A = np.zeros((5, 5))
    A[:4, :4] = -K * length
    A[:4, 4] = emission(c) * length
    return O, expm(A)[:4, 4]


def eigen_segment(c, length):
    """Propagator and source term from numpy's eigendecomposition of K.

    ``O = V exp(-mu l) V^-1`` and ``int_0^l exp(-K t) dt = V (1 - exp(-mu l))
    / mu V^-1``. Accurate to about 1e-15 times the condition number of ``V``;
    returns None where that exceeds 10 (nearly degenerate eigenvalues).
    """
    mu, V = np.linalg.eig(propagation_matrix(c))
    if np.linalg.cond(V) > 10:
        return None
    z = mu * length
    safe = np.where(z == 0, 1.0, z)
    phi = np.where(z == 0, 1.0, -np.expm1(-safe) / safe)
    V_inv = np.linalg.inv(V)
    O = (V * np.exp(-z)) @ V_inv
    source = (V * (length * phi)) @ V_inv @ emission(c)
    return O.real, source.real


def ivp_piecewise(coeffs, dl, stokes_in=(0, 0, 0, 0), rtol=1e-12):
    """Solve dS/dl = J - K S segment by segment with solve_ivp."""
    S = np.asarray(stokes_in, dtype=float)
    for c, length in zip(coeffs, np.broadcast_to(dl, coeffs.shape[:1]), strict=True):
        K, J = propagation_matrix(c), emission(c)
        scale = max(np.abs(S).max(), np.abs(J).max() * length, 1e-300)
        sol = solve_ivp(
            lambda _, y, K=K, J=J: J - K @ y,
            (0, length),
            S,
            method="DOP853",
            rtol=rtol,
            atol=1e-6 * rtol * scale,
        )
        S = sol.y[:, -1]
    return S


def rodrigues(vector, axis, angle):
    """Rotate ``vector`` right-handedly about ``axis`` by ``angle``."""
    n = axis / np.linalg.norm(axis)
    return (
        vector * np.cos(angle)
        + np.cross(n, vector) * np.sin(angle)
        + n * np.dot(n, vector) * (1 - np.cos(angle))
    )


# ---------------------------------------------------------------------------
# Special cases with closed-form solutions


@pytest.mark.parametrize("tau", [0.0, 1e-9, 1e-3, 0.7, 1.0, 5.0, 40.0, 800.0])
def test_emission_and_absorption(tau):
    j, alpha = 3.0, 2.0
    length = tau / alpha
    c = eleven(j=(j, 0, 0, 0), alpha=(alpha, 0, 0, 0))
    expected = j / alpha * -np.expm1(-tau)
    S = integrate_ray(c[None], length)
    assert_allclose(S, [expected, 0, 0, 0], rtol=1e-14, atol=1e-300)

    # With incoming radiation, attenuated by exp(-tau).
    S = integrate_ray(c[None], length, stokes_in=[5.0, 0, 0, 0])
    assert_allclose(S[0], expected + 5.0 * np.exp(-tau), rtol=1e-14)

    # Splitting a uniform slab into unequal pieces changes nothing.
    pieces = np.array([0.1, 0.4, 0.2, 0.3]) * length
    S = integrate_ray(np.repeat(c[None], 4, axis=0), pieces)
    assert_allclose(S, [expected, 0, 0, 0], rtol=1e-13, atol=1e-300)


def test_pure_emission_grows_linearly():
    c = eleven(j=(2.0, -0.5, 0.25, 0.1))
    S = integrate_ray(np.repeat(c[None], 3, axis=0), [1.0, 2.0, 4.0])
    assert_allclose(S, 7.0 * emission(c), rtol=1e-15)


@pytest.mark.parametrize("angle", [1e-8, 0.3, np.pi / 2, 2.0, -1.2, 25.0, 1e3])
def test_faraday_rotation_sense(angle):
    # Positive rho_V turns (Q, U) from +Q towards +U: Q + iU -> (Q + iU) e^(+i
    # rho_V l), as the module docstring says.
    # A negative angle comes from a negative rho_V.
    rho_V, alpha_I = 2.0 * np.sign(angle), 0.3
    length = angle / rho_V
    c = eleven(alpha=(alpha_I, 0, 0, 0), rho=(0, 0, rho_V))
    S = integrate_ray(c[None], length, stokes_in=[1.0, 1.0, 0, 0])
    decay = np.exp(-alpha_I * length)
    expected = decay * np.array([1.0, np.cos(angle), np.sin(angle), 0.0])
    assert_allclose(S, expected, rtol=1e-13, atol=1e-13 * decay)


@pytest.mark.parametrize("length", [1e-6, 0.05, 0.3, 1.0, 7.5])
def test_rotation_plus_conversion_is_precession(length):
    # With only rotativities, P = (Q, U, V) obeys dP/dl = rho x P: precession
    # about (rho_Q, 0, rho_V) at the rate |rho|.
    rho = np.array([10.0, 0.0, -4.0])
    P_in = np.array([0.3, -0.5, 0.8])
    c = eleven(rho=rho)
    S = integrate_ray(c[None], length, stokes_in=np.r_[1.0, P_in])
    expected = rodrigues(P_in, rho, np.linalg.norm(rho) * length)
    assert_allclose(S[0], 1.0, rtol=1e-15)
    assert_allclose(S[1:], expected, rtol=0, atol=1e-13)


def test_conversion_sense():
    # Positive rho_Q turns +U towards +V.
    c = eleven(rho=(1.0, 0, 0))
    S = integrate_ray(c[None], np.pi / 2, stokes_in=[1.0, 0, 1.0, 0])
    assert_allclose(S, [1.0, 0, 0, 1.0], atol=1e-15)


@pytest.mark.parametrize("length", [1e-7, 0.1, 1.0, 4.0, 60.0])
def test_linear_dichroism(length):
    # With alpha_Q alone, I + Q and I - Q decouple, with absorption
    # alpha_I + alpha_Q and alpha_I - alpha_Q.
    jI, jQ, aI, aQ = 1.5, -0.4, 1.0, -0.6
    c = eleven(j=(jI, jQ, 0.2, 0), alpha=(aI, aQ, 0, 0))
    S_in = np.array([2.0, 0.5, 0.3, 0.7])
    S = integrate_ray(c[None], length, stokes_in=S_in)

    def slab(j, a, start):
        return j / a * -np.expm1(-a * length) + start * np.exp(-a * length)

    plus = slab(jI + jQ, aI + aQ, S_in[0] + S_in[1])
    minus = slab(jI - jQ, aI - aQ, S_in[0] - S_in[1])
    # U and V only see alpha_I (no rotativities here).
    U = slab(0.2, aI, S_in[2])
    V = slab(0.0, aI, S_in[3])
    assert_allclose(S, [(plus + minus) / 2, (plus - minus) / 2, U, V], rtol=1e-13)


@pytest.mark.parametrize("length", [0.1, 0.5, 1.0, 3.0, 10.0])
def test_dichroism_stronger_than_absorption(length):
    # j = (2, 1, 0, 0), alpha = (1, 1.2, 0, 0): |alpha_Q| > alpha_I, so I - Q
    # sees a negative absorption coefficient -0.2 and grows; the exact
    # solution is still I + Q = 3 / 2.2 (1 - e^(-2.2 l)),
    # I - Q = 1 / (-0.2) (1 - e^(0.2 l)).
    c = eleven(j=(2, 1, 0, 0), alpha=(1, 1.2, 0, 0))
    plus = 3 / 2.2 * -np.expm1(-2.2 * length)
    minus = 1 / -0.2 * -np.expm1(0.2 * length)
    expected = [(plus + minus) / 2, (plus - minus) / 2, 0, 0]
    S = integrate_ray(c[None], length)
    assert_allclose(S, expected, rtol=1e-13, atol=1e-300)
    assert_allclose(ivp_piecewise(c[None], length), expected, rtol=1e-10)

    # The same ray cut into unequal segments.
    pieces = np.array([0.05, 0.3, 0.15, 0.5]) * length
    S = integrate_ray(np.repeat(c[None], 4, axis=0), pieces)
    assert_allclose(S, expected, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("length", [0.01, 0.2, 1.0, 2.5, 13.0])
def test_emission_with_rotation_and_conversion(length):
    # j = (0, 0.1, 0.1, 0.1), alpha = 0, rho_Q = 10, rho_V = -4: P(l) =
    # int_0^l R(t) j dt with R the precession about rho.
    j = np.array([0.1, 0.1, 0.1])
    rho = np.array([10.0, 0.0, -4.0])
    omega = np.linalg.norm(rho)
    n = rho / omega
    parallel = n * np.dot(n, j)
    perpendicular = j - parallel
    expected = (
        parallel * length
        + perpendicular * np.sin(omega * length) / omega
        + np.cross(n, j) * (1 - np.cos(omega * length)) / omega
    )
    c = eleven(j=np.r_[0.0, j], rho=rho)
    S = integrate_ray(c[None], length)
    assert_allclose(S, np.r_[0.0, expected], rtol=1e-13, atol=1e-15)
    assert_allclose(
        ivp_piecewise(c[None], length), np.r_[0.0, expected], rtol=1e-10, atol=1e-12
    )


# ---------------------------------------------------------------------------
# Single segments against the matrix exponential


def random_segment(rng, scale):
    """Random coefficients, some set to zero, alpha_I >= |alpha_pol| or not."""
    c = rng.normal(size=11) * scale
    c[ALPHA_I] = abs(c[ALPHA_I]) + rng.uniform(0, 1.2) * np.linalg.norm(
        c[[ALPHA_Q, ALPHA_U, ALPHA_V]]
    )
    c[[J_I, J_Q, J_U, J_V]] = rng.normal(size=4)
    zero = rng.uniform(size=11) < 0.3
    zero[J_I] = False
    c[zero] = 0
    return c


@pytest.mark.parametrize("scale", [1e-8, 1e-3, 0.1, 0.4, 1.0, 2.0, 10.0])
def test_segments_match_eigendecomposition(scale):
    rng = np.random.default_rng(int(1e6 * scale) + 7)
    coeffs = np.array([random_segment(rng, scale) for _ in range(200)])
    lengths = rng.uniform(0.1, 1.5, size=200)
    O, source = segment_propagators(coeffs, lengths)
    checked = 0
    for c, length, O_i, s_i in zip(coeffs, lengths, O, source, strict=True):
        reference = eigen_segment(c, length)
        if reference is None:
            continue
        checked += 1
        O_ref, s_ref = reference
        # Rounding K l alone moves exp(-K l) by ~eps |K l| (relative), for
        # any method; allow a few times that.
        tol = 4e-15 * (5 + np.abs(propagation_matrix(c) * length).sum(axis=1).max())
        assert_allclose(O_i, O_ref, rtol=0, atol=tol * np.abs(O_ref).max())
        assert_allclose(s_i, s_ref, rtol=0, atol=tol * np.abs(s_ref).max())
    assert checked > 100


@pytest.mark.parametrize("scale", [1e-8, 1e-3, 0.1, 1.0, 2.0])
def test_segments_match_matrix_exponential(scale):
    # scipy's expm is independent of the eigenvectors but less accurate: a
    # few 1e-13 at these norms (its own error dominates the differences).
    rng = np.random.default_rng(int(1e6 * scale) + 8)
    coeffs = np.array([random_segment(rng, scale) for _ in range(100)])
    lengths = rng.uniform(0.1, 1.5, size=100)
    O, source = segment_propagators(coeffs, lengths)
    for c, length, O_i, s_i in zip(coeffs, lengths, O, source, strict=True):
        O_ref, s_ref = expm_segment(c, length)
        assert_allclose(O_i, O_ref, rtol=0, atol=2e-12 * np.abs(O_ref).max())
        assert_allclose(s_i, s_ref, rtol=0, atol=2e-12 * np.abs(s_ref).max())


def boundary_cases(edge):
    """Segments that sit at ``edge`` ~ 1 on every switch-over of the method.

    The method changes formula where the eigenvalue spread
    ``(Lambda_1^2 + Lambda_2^2) l^2``, ``Lambda_1 l`` or ``Lambda_2 l`` cross
    1, and where the optical depth ``alpha_I l`` crosses 1 and 50.
    """
    j = (1.0, 0.3, -0.2, 0.1)
    a = np.sqrt(edge / 2)
    return np.array(
        [
            # Spread = edge: pure dichroism, pure rotativity, both.
            eleven(j, (2.0, np.sqrt(edge), 0, 0)),
            eleven(j, (2.0, 0, 0, 0), (0.6 * np.sqrt(edge), 0, 0.8 * np.sqrt(edge))),
            eleven(j, (2.0 + a, a, 0, 0), (a, 0, 0)),
            # Lambda_1 l = edge and Lambda_2 l = edge with the spread above 1
            # (parallel alpha and rho: Lambda_1 = |alpha|, Lambda_2 = |rho|).
            eleven(j, (3.0, edge, 0, 0), (2.0, 0, 0)),
            eleven(j, (3.0, 2.0, 0, 0), (edge, 0, 0)),
            # Optical depth = edge and 50 edge, with close and separated
            # eigenvalues.
            eleven(j, (edge, 0.3, 0, 0), (0, 0, 0.4)),
            eleven(j, (edge, 0.5, 0, 0), (3.0, 0, 0)),
            eleven(j, (50 * edge, 0.3, 0, 0), (0, 0, 0.4)),
            eleven(j, (50 * edge, 0.5, 0, 0), (3.0, 0, 0)),
        ]
    )


def test_switch_overs_are_seamless():
    delta = 1e-9
    below, at, above = (
        segment_propagators(boundary_cases(edge), 1.0)
        for edge in (1 - delta, 1.0, 1 + delta)
    )
    for part in range(2):
        # A smooth function has a second difference of order delta^2 ~ 1e-18;
        # a mismatch between formulas on either side would show up here.
        second = below[part] - 2 * at[part] + above[part]
        scale = np.abs(at[part]).max(axis=tuple(range(1, at[part].ndim)))
        assert np.all(
            np.abs(second).max(axis=tuple(range(1, second.ndim))) < 1e-14 * scale
        )

    # And each side agrees with the matrix exponential (good to ~1e-13 here).
    for edge, (O, source) in zip((1 - delta, 1 + delta), (below, above), strict=True):
        for c, O_i, s_i in zip(boundary_cases(edge), O, source, strict=True):
            O_ref, s_ref = expm_segment(c, 1.0)
            assert_allclose(O_i, O_ref, rtol=0, atol=2e-13 * np.abs(O_ref).max())
            assert_allclose(s_i, s_ref, rtol=0, atol=2e-13 * np.abs(s_ref).max())


def test_exact_exponentials_at_a_switch_over():
    # Pure dichroism at Lambda_1 l = 1 - 1e-9, x = 3 - 1e-9: U and V decay as
    # exp(-x) and I +- Q as exp(-x +- Lambda_1 l), to full precision.
    edge = 1 - 1e-9
    c = eleven(alpha=(2.0 + edge, edge, 0, 0))
    O, _ = segment_propagators(c[None], 1.0)
    x = 2.0 + edge
    assert_allclose(O[0, 2, 2], np.exp(-x), rtol=1e-15)
    assert_allclose(O[0, 0, 0] + O[0, 0, 1], np.exp(-x - edge), rtol=1e-15)
    assert_allclose(O[0, 0, 0] - O[0, 0, 1], np.exp(-x + edge), rtol=1e-15)


@pytest.mark.parametrize("size", [1e-4, 0.5, 3.0, 20.0])
def test_degenerate_eigenvalues(size):
    # alpha perpendicular to rho with |alpha| = |rho|: all four eigenvalues of
    # the polarized part vanish, M^4 = 0, and exp(-M l) is the cubic Taylor
    # polynomial: no 0/0 may appear.
    c = eleven(j=(1.0, 0.2, 0.3, -0.1), alpha=(0.0, size, 0, 0), rho=(0, 0, size))
    M = propagation_matrix(c)
    assert_allclose(np.linalg.matrix_power(M, 4), 0, atol=1e-12 * size**4)
    O, source = segment_propagators(c[None], 1.0)
    taylor = np.eye(4) - M + M @ M / 2 - M @ M @ M / 6
    integral = np.eye(4) - M / 2 + M @ M / 6 - M @ M @ M / 24
    scale = max(1.0, size**3)
    assert_allclose(O[0], taylor, rtol=0, atol=1e-14 * scale)
    assert_allclose(source[0], integral @ emission(c), rtol=0, atol=1e-14 * scale)

    # Nearly degenerate: continuous with the degenerate limit.
    c[RHO_U] = 1e-9 * size
    O_near, source_near = segment_propagators(c[None], 1.0)
    assert np.all(np.isfinite(O_near)) and np.all(np.isfinite(source_near))
    assert_allclose(O_near[0], taylor, rtol=0, atol=1e-7 * scale)


# ---------------------------------------------------------------------------
# Rays with varying coefficients


def smooth_profile(position, scale_alpha, scale_rho, phases):
    """Smooth, physical field-aligned coefficients at ``position`` in [0, 1].

    Returns the eight field-aligned coefficients and the field angle psi;
    alpha_I >= |(alpha_Q, alpha_V)| and j_I >= |(j_Q, j_V)| everywhere.
    """
    p = np.asarray(position)[..., None]
    wave = np.sin(2 * np.pi * p * np.array([1.0, 1.5, 0.7, 2.0]) + phases[:4])
    j_I = 1.0 + 0.4 * wave[..., 0]
    alpha_I = scale_alpha * (1.0 + 0.5 * wave[..., 1])
    pol = 0.4 + 0.2 * wave[..., 2]
    eight = np.stack(
        [
            j_I,
            alpha_I,
            -pol * j_I * 0.9,
            -pol * alpha_I * 0.9,
            pol * j_I * 0.3,
            pol * alpha_I * 0.3,
            scale_rho * (0.3 + 0.5 * wave[..., 3]),
            scale_rho * (1.0 + 0.3 * wave[..., 0]),
        ],
        axis=-1,
    )
    psi = phases[4] + 1.3 * np.pi * p[..., 0]
    return eight, psi


def midpoint_ray(n, length, scale_alpha, scale_rho, phases):
    """A ray of ``n`` equal segments sampled at their midpoints."""
    mid = (np.arange(n) + 0.5) / n
    eight, psi = smooth_profile(mid, scale_alpha, scale_rho, phases)
    return rotate_to_sky(eight, psi), np.full(n, length / n)


# (alpha_I, rho) scales, per unit ray length: thin, moderate, thick and
# Faraday-thick.
REGIMES = [(0.05, 0.3), (1.0, 5.0), (8.0, 60.0), (30.0, 400.0)]


@pytest.mark.parametrize("scales", REGIMES)
def test_piecewise_rays_match_ode_solver(scales):
    rng = np.random.default_rng(11)
    phases = rng.uniform(0, 2 * np.pi, size=5)
    coeffs, dl = midpoint_ray(40, 1.0, *scales, phases)
    S_in = np.array([0.5, 0.1, -0.2, 0.05])
    S = integrate_ray(coeffs, dl, stokes_in=S_in)
    S_ref = ivp_piecewise(coeffs, dl, S_in)
    # Each Stokes parameter to 1e-10 of itself (Q, U, V are down to 1e-4 of
    # I in the Faraday-thick ray), and to 1e-13 of I.
    assert_allclose(S, S_ref, rtol=1e-10, atol=1e-13 * np.abs(S_ref).max())


def test_convergence_to_smooth_solution():
    # Midpoint sampling of smooth coefficients is a second-order method: the
    # error must fall about fourfold per halving of the segments.
    rng = np.random.default_rng(5)
    phases = rng.uniform(0, 2 * np.pi, size=5)
    scales = (3.0, 20.0)

    def rhs(position, S):
        eight, psi = smooth_profile(position, *scales, phases)
        c = rotate_to_sky(eight, psi)
        return emission(c) - propagation_matrix(c) @ S

    sol = solve_ivp(rhs, (0, 1), np.zeros(4), method="DOP853", rtol=1e-12, atol=1e-15)
    S_smooth = sol.y[:, -1]
    errors = []
    for n in (25, 50, 100, 200, 400):
        coeffs, dl = midpoint_ray(n, 1.0, *scales, phases)
        errors.append(np.abs(integrate_ray(coeffs, dl) - S_smooth).max())
    errors = np.array(errors)
    ratios = errors[:-1] / errors[1:]
    assert np.all(ratios > 3.5), ratios
    assert errors[-1] < 1e-4 * np.abs(S_smooth).max()


def test_many_segments_are_fast():
    # 1e5 segments take about 0.1 s (1e6 segments per second on one core);
    # a per-segment Python loop would take tens of seconds. The bound is loose
    # so that a busy machine does not fail the test.
    rng = np.random.default_rng(8)
    coeffs = rng.uniform(0.1, 1.0, size=(4, 25_000, 11))
    coeffs[..., 2:] *= 0.3
    dl = rng.uniform(0.1, 3.0, size=(4, 25_000))
    start = time.perf_counter()
    S = integrate_ray(coeffs, dl)
    assert time.perf_counter() - start < 5.0
    assert np.all(np.isfinite(S))


def test_batches_equal_single_rays():
    rng = np.random.default_rng(3)
    n_segments = 17
    coeffs = np.empty((3, 2, n_segments, 11))
    for index in np.ndindex(3, 2):
        coeffs[index] = [random_segment(rng, 1.0) for _ in range(n_segments)]
        coeffs[index][:, ALPHA_I] += 1.5
    dl = rng.uniform(0.01, 2.0, size=(3, 2, n_segments))
    S_in = rng.normal(size=(3, 2, 4))
    S = integrate_ray(coeffs, dl, stokes_in=S_in)
    assert S.shape == (3, 2, 4)
    for index in np.ndindex(3, 2):
        alone = integrate_ray(coeffs[index], dl[index], stokes_in=S_in[index])
        assert_allclose(S[index], alone, rtol=1e-14, atol=1e-14 * np.abs(alone).max())

    # Lengths shared by all rays broadcast; a single incoming vector too.
    shared = integrate_ray(coeffs, dl[0, 0], stokes_in=S_in[0, 0])
    alone = integrate_ray(coeffs[2, 1], dl[0, 0], stokes_in=S_in[0, 0])
    assert_allclose(shared[2, 1], alone, rtol=1e-14)


def test_long_ray_crosses_block_boundaries():
    # More segments than one internal block: the chunked composition must
    # equal the closed form of a uniform slab.
    n = 70_000
    c = eleven(j=(2.0, -0.3, 0.1, 0.05), alpha=(1.0, -0.2, 0.05, 0.1), rho=(0.4, 0, 3))
    total = 25.0
    S = integrate_ray(np.broadcast_to(c, (2, n, 11)), total / n)
    K = propagation_matrix(c)
    O_ref, s_ref = expm_segment(c, 1.0)
    # exp(-25 K) from the unit-length exponential, and the slab solution
    # K^-1 (1 - exp(-K L)) J.
    O_total = np.linalg.matrix_power(O_ref, 25)
    expected = np.linalg.solve(K, (np.eye(4) - O_total) @ emission(c))
    assert_allclose(S, np.broadcast_to(expected, (2, 4)), rtol=1e-10)


# ---------------------------------------------------------------------------
# Stability


@pytest.mark.parametrize("tau", [1e2, 1e4, 1e8])
def test_optically_thick_segments_reach_source_function(tau):
    # In a thick uniform medium S -> K^-1 J whatever came in.
    c = eleven(
        j=(2.0, -0.5, 0.1, 0.3), alpha=(1.0, -0.4, 0.1, 0.2), rho=(3.0, 1.0, 5.0)
    )
    length = tau / c[ALPHA_I]
    expected = np.linalg.solve(propagation_matrix(c), emission(c))
    S = integrate_ray(np.repeat(c[None], 3, axis=0), length, stokes_in=[1e3, 0, 0, 0])
    assert np.all(np.isfinite(S))
    assert_allclose(S, expected, rtol=1e-13, atol=1e-15)


def test_fully_polarized_absorption_over_huge_depth():
    # alpha_I = |alpha| exactly (up to rounding): the mode polarized against
    # alpha is not absorbed at all, so I - P.n grows linearly with l, and
    # rounding must not turn that into exponential growth.
    n = np.array([0.6, 0.0, 0.8])
    a = 1 / 3
    jI, jP = 1.0, np.array([0.3, -0.2, 0.1])
    alpha_pol = a * n
    c = eleven(j=np.r_[jI, jP], alpha=np.r_[np.linalg.norm(alpha_pol), alpha_pol])
    length = 1e15
    S = integrate_ray(c[None], length)
    Jn = np.dot(jP, n)
    plus = (jI + Jn) / (2 * a)  # I + P.n, absorbed at 2a: saturated
    minus = (jI - Jn) * length  # I - P.n, not absorbed
    perpendicular = (jP - Jn * n) / a  # absorbed at alpha_I = a: saturated
    expected = np.r_[(plus + minus) / 2, (plus - minus) / 2 * n + perpendicular]
    assert_allclose(S, expected, rtol=1e-9)


def test_faraday_thick_rotation():
    # rho_V l = 1e6 rad: the angle is known to about 1e6 * 2e-16.
    rho_V = 1e6
    c = eleven(rho=(0, 0, rho_V))
    S = integrate_ray(c[None], 1.0, stokes_in=[1.0, 1.0, 0, 0])
    assert_allclose(S, [1.0, np.cos(1e6), np.sin(1e6), 0], rtol=0, atol=1e-9)


def test_faraday_thick_emission():
    # Emission with absorption and rotation: (Q + iU)' = (j_Q + i j_U) -
    # (alpha_I - i rho_V)(Q + iU), so Q + iU = (j_Q + i j_U)(1 - e^(-z)) / z
    # with z = (alpha_I - i rho_V) l. The result is ~1e-6 of the emission
    # and must keep its relative accuracy.
    aI, rho_V, jQ, jU = 1.0, 1e6, 0.3, 0.2
    c = eleven(j=(1.0, jQ, jU, 0.0), alpha=(aI, 0, 0, 0), rho=(0, 0, rho_V))
    z = aI - 1j * rho_V
    linear = (jQ + 1j * jU) * -np.expm1(-z) / z
    S = integrate_ray(c[None], 1.0)
    assert_allclose(S[0], -np.expm1(-aI), rtol=1e-15)
    assert_allclose(S[1] + 1j * S[2], linear, rtol=1e-8)
    assert S[3] == 0


def test_faraday_thick_conversion():
    # Rotation and conversion, |rho| l = 1e6, with absorption: the component
    # of P along rho is only absorbed; the perpendicular part precesses.
    aI = 0.5
    rho = np.array([6e5, 0.0, -8e5])
    j = np.array([0.2, -0.1, 0.3])
    omega = np.linalg.norm(rho)
    n = rho / omega
    e1 = np.array([0.0, 1.0, 0.0])  # perpendicular to rho
    e2 = np.cross(n, e1)
    z = aI - 1j * omega
    perp = (np.dot(j, e1) + 1j * np.dot(j, e2)) * -np.expm1(-z) / z
    expected = n * np.dot(j, n) * -np.expm1(-aI) / aI + perp.real * e1 + perp.imag * e2
    c = eleven(j=np.r_[1.0, j], alpha=(aI, 0, 0, 0), rho=rho)
    S = integrate_ray(c[None], 1.0)
    assert_allclose(S[1:], expected, rtol=0, atol=1e-8 * np.abs(expected).max())


def test_thick_and_faraday_thick_together():
    c = eleven(
        j=(2.0, -0.5, 0.1, 0.3),
        alpha=(1.0, -0.4, 0.1, 0.2),
        rho=(3e4, 0, 1e5),
    )
    expected = np.linalg.solve(propagation_matrix(c), emission(c))
    S = integrate_ray(c[None], 1e4)
    assert_allclose(S, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


# ---------------------------------------------------------------------------
# Rotation to the sky basis


def random_eight(rng, shape=()):
    return rng.normal(size=shape + (8,))


def test_rotate_identity_and_quarter_turn():
    rng = np.random.default_rng(0)
    c8 = random_eight(rng, (5,))
    c11 = rotate_to_sky(c8, 0.0)
    expected = np.zeros((5, 11))
    expected[:, [J_I, ALPHA_I, J_Q, ALPHA_Q, J_V, ALPHA_V, RHO_Q, RHO_V]] = c8
    assert_allclose(c11, expected, rtol=0, atol=0)

    quarter = rotate_to_sky(c8, np.pi / 2)
    flipped = expected.copy()
    flipped[:, [J_Q, ALPHA_Q, RHO_Q]] *= -1
    assert_allclose(quarter, flipped, rtol=0, atol=1e-15 * np.abs(c8).max())


def test_rotate_conserves_linear_parts_and_broadcasts():
    rng = np.random.default_rng(1)
    c8 = random_eight(rng, (4, 3))
    psi = rng.uniform(-np.pi, np.pi, size=(4, 1))
    c11 = rotate_to_sky(c8, psi)
    assert c11.shape == (4, 3, 11)
    for Q, U, q8 in ((J_Q, J_U, 2), (ALPHA_Q, ALPHA_U, 3), (RHO_Q, RHO_U, 6)):
        assert_allclose(np.hypot(c11[..., Q], c11[..., U]), np.abs(c8[..., q8]))
    assert_allclose(
        c11[..., [J_I, ALPHA_I, J_V, ALPHA_V, RHO_V]], c8[..., [0, 1, 4, 5, 7]]
    )


def test_rotate_sign_of_psi():
    # psi is measured from +Q towards +U: emission polarized along the field
    # (j_Q > 0) with psi = pi/8 has position angle pi/8, i.e. Q = U > 0.
    c8 = np.array([1.0, 0, 0.5, 0, 0, 0, 0, 0])
    c11 = rotate_to_sky(c8, np.pi / 8)
    assert c11[J_Q] > 0
    assert_allclose(c11[J_U], c11[J_Q], rtol=1e-15)


@pytest.mark.parametrize("psi", [0.3, -1.1, np.pi / 4, 2.5])
def test_rotated_field_rotates_emergent_polarization(psi):
    rng = np.random.default_rng(4)
    n = 30
    c8 = np.empty((n, 8))
    c8[:, 0] = rng.uniform(1, 2, n)
    c8[:, 1] = rng.uniform(0.5, 2, n)
    c8[:, 2:6] = 0.4 * rng.normal(size=(n, 4))
    c8[:, 6:] = 5 * rng.normal(size=(n, 2))
    dl = rng.uniform(0.05, 0.3, n)
    S0 = integrate_ray(rotate_to_sky(c8, 0.0), dl)
    S = integrate_ray(rotate_to_sky(c8, psi), dl)
    linear = (S0[1] + 1j * S0[2]) * np.exp(2j * psi)
    expected = [S0[0], linear.real, linear.imag, S0[3]]
    assert_allclose(S, expected, rtol=0, atol=1e-14 * np.abs(S0).max())


# ---------------------------------------------------------------------------
# Bad input


def test_bad_input_raises_usage_error():
    c = eleven(j=(1, 0, 0, 0), alpha=(1, 0, 0, 0))[None]
    with pytest.raises(UsageError, match="shape .*n_segments, 11"):
        integrate_ray(np.zeros((3, 10)), 1.0)
    with pytest.raises(UsageError, match="dl"):
        integrate_ray(np.repeat(c, 3, axis=0), [1.0, 2.0])
    with pytest.raises(UsageError, match="non-negative"):
        integrate_ray(c, -1.0)
    bad = c.copy()
    bad[0, RHO_V] = np.nan
    with pytest.raises(UsageError, match="rho_V"):
        integrate_ray(bad, 1.0)
    bad = c.copy()
    bad[0, ALPHA_I] = -1
    with pytest.raises(UsageError, match="alpha_I"):
        integrate_ray(bad, 1.0)
    with pytest.raises(UsageError, match="stokes_in"):
        integrate_ray(c, 1.0, stokes_in=[1.0, 2.0])
    with pytest.raises(UsageError, match="coeffs: expected a last axis of length 8"):
        rotate_to_sky(np.zeros(11), 0.0)
    with pytest.raises(UsageError, match="psi"):
        rotate_to_sky(np.zeros((3, 8)), np.zeros(2))


def test_empty_ray_returns_incoming():
    S = integrate_ray(np.zeros((2, 0, 11)), np.zeros((2, 0)), stokes_in=[1, 2, 3, 4])
    assert_allclose(S, [[1, 2, 3, 4], [1, 2, 3, 4]])
