"""Properties that hold for any input, checked with hypothesis.

- every map round-trips through a locked :class:`~neurosynchro.mappings.Mapping`
  (physical -> normalized -> physical) over its domain;
- whatever the networks return, the reassembled coefficients obey
  ``j_I >= sqrt(j_Q^2 + j_V^2)`` and ``alpha_I >= sqrt(alpha_Q^2 + alpha_V^2)``
  and carry the recorded signs (DESIGN.md, "Physics conventions");
- angle folding keeps ``|cos theta|`` and gives the V terms the sign of
  ``cos theta``;
- at fixed ``s = nu / nu_cyc``, emissivities scale as ``n_e nu`` and the other
  coefficients as ``n_e / nu``;
- rotations into the sky basis compose: ``psi1`` then ``psi2`` is
  ``psi1 + psi2``.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nnfactory import random_nndir
from test_transform import synthetic

from neurosynchro import PhysicalApproximator, detrivialize_stokes_basis
from neurosynchro.engine import FusedNetworks
from neurosynchro.errors import NeurosynchroWarning
from neurosynchro.mappings import MAP_TYPES, NORMALIZATION_MODES, Mapping
from neurosynchro.network import ACTIVATIONS, Network
from neurosynchro.physics import cyclotron_frequency, fold_angle

FEW = settings(max_examples=40, deadline=None)
SOME = settings(max_examples=100, deadline=None)


def magnitudes(low=1e-100, high=1e100):
    return st.floats(low, high)


#: Physical samples inside each map's domain, bounded so that a mean and a
#: standard deviation of them cannot overflow.
DOMAINS = {
    "direct": st.floats(-1e100, 1e100),
    "log": magnitudes(),
    "neg_log": magnitudes().map(lambda p: -p),
    "abs_log": st.tuples(magnitudes(), st.sampled_from([-1.0, 1.0])).map(
        lambda t: t[0] * t[1]
    ),
    "logit": st.floats(1e-9, 1 - 1e-9),
    "ninth_root": st.floats(-1e100, 1e100),
    "asinh": st.floats(-1e100, 1e100),
    # The table holds the classes themselves (rho_Q_sign).
    "sign": st.sampled_from([-1.0, 1.0]),
}


def test_every_map_type_has_a_domain_here():
    assert set(DOMAINS) == set(MAP_TYPES)


@pytest.mark.parametrize("normalization", NORMALIZATION_MODES)
@pytest.mark.parametrize("name", sorted(MAP_TYPES))
def test_locked_mapping_round_trips_its_samples(name, normalization):
    @FEW
    @given(st.lists(DOMAINS[name], min_size=3, max_size=30))
    def check(values):
        samples = np.array(values)
        mapping = Mapping.from_dict(
            {"name": "x", "maptype": name, "normalization_mode": normalization},
            need_bounds=False,
        )
        mapping.lock(samples)
        normed, oos = mapping.phys_to_norm(samples)
        back, oos_back = mapping.norm_to_phys(normed)
        # The samples define the bounds: none of them is out of sample.
        assert not oos.any() and not oos_back.any()
        if name == "sign":
            np.testing.assert_array_equal(back, np.sign(samples))
        elif name == "abs_log":
            # The magnitude survives; the sign is a separate result.
            np.testing.assert_allclose(back, np.abs(samples), rtol=1e-9)
        elif name in ("direct", "ninth_root", "asinh"):
            # Linear in p (or nearly): rounding is relative to the largest
            # sample, not to each one.
            scale = np.abs(samples).max()
            np.testing.assert_allclose(back, samples, rtol=1e-9, atol=1e-12 * scale)
        else:
            np.testing.assert_allclose(back, samples, rtol=1e-9)

    check()


MONOTONIC = ("direct", "log", "neg_log", "logit", "ninth_root")


@pytest.mark.parametrize("name", MONOTONIC)
def test_clipping_keeps_normalized_values_inside_the_sampled_range(name):
    @FEW
    @given(
        st.lists(DOMAINS[name], min_size=3, max_size=20, unique=True),
        st.lists(DOMAINS[name], min_size=1, max_size=10),
    )
    def check(values, probes):
        mapping = Mapping.from_dict(
            {"name": "x", "maptype": name, "out_of_sample": "clip"},
            need_bounds=False,
        )
        mapping.lock(np.array(values))
        probes = np.array(probes)
        normed, oos = mapping.phys_to_norm(probes)
        outside = (probes < mapping.phys_min) | (probes > mapping.phys_max)
        np.testing.assert_array_equal(oos, outside)
        assert np.all((normed >= mapping.norm_min) & (normed <= mapping.norm_max))

    check()


# ---------------------------------------------------------------------------
# Invariants of the reassembled coefficients, for any network output.


@pytest.fixture(scope="module")
def approx(tmp_path_factory):
    rng = np.random.default_rng(99)
    ts = synthetic(rng, n=200)
    ts.table["theta_e"] = 10 ** rng.uniform(0, 2, 200)
    ts.suffixes["theta_e"] = "log"
    order = ["s", "theta", "theta_e"] + ts.results
    ts.table = ts.table[order]
    ts.suffixes = {c: ts.suffixes[c] for c in order}
    nndir = tmp_path_factory.mktemp("properties") / "nn"
    random_nndir(ts, nndir, rng)
    return PhysicalApproximator(nndir)


class FixedOutputs:
    """Stands in for the fused networks: returns the given normalized outputs."""

    threads = 1

    def __init__(self, outputs):
        self.outputs = outputs

    def __call__(self, x, threads=None, compiled=None):
        assert x.shape[0] == self.outputs.shape[0]
        return self.outputs


def _log_like(mapping):
    return mapping.maptype.name in ("log", "neg_log", "abs_log")


def normalized_band(mapping):
    """Normalized outputs whose physical value stays within 1e-300 .. 1e300.

    Any value is allowed for the logit and sign maps; for the log maps, the
    band that keeps ``10**x`` a finite, non-zero float.
    """
    if mapping.maptype.name == "asinh":
        # sinh(x) times the row scale stays finite (|x| < 700 less the
        # largest log of the scale).
        low = (-600 - mapping.x_mean) / mapping.x_std
        high = (600 - mapping.x_mean) / mapping.x_std
        return low, high
    if not _log_like(mapping):
        return -1e6, 1e6
    low = (-300 - mapping.x_mean) / mapping.x_std
    high = (300 - mapping.x_mean) / mapping.x_std
    return low, high


def check_invariants(approx, coeffs, theta):
    j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V = coeffs.T
    assert np.isfinite(coeffs).all()
    assert (j_I > 0).all() and (alpha_I > 0).all()
    assert (np.hypot(j_Q, j_V) <= j_I * (1 + 1e-12)).all()
    assert (np.hypot(alpha_Q, alpha_V) <= alpha_I * (1 + 1e-12)).all()
    # The recorded signs; the V terms also take the sign of cos(theta).
    signs = approx.config.signs
    v_sign = np.sign(np.cos(theta))
    clear = np.abs(np.cos(theta)) > 1e-9
    assert (j_Q * signs["j_Q"] >= 0).all()
    assert (alpha_Q * signs["alpha_Q"] >= 0).all()
    for values, name in ((j_V, "j_V"), (alpha_V, "alpha_V"), (rho_V, "rho_V")):
        assert (values[clear] * signs[name] * v_sign[clear] >= 0).all()
    if "rho_Q_sign" in [r.name for r in approx.config.results]:
        assert (rho_Q != 0).all()  # a magnitude with a sign: never zero


def _at_unit_frequency(approx, theta, s=1e3):
    # nu = 1 Hz and n_e = 1 cm^-3: the coefficients are the tabulated values,
    # so no rescaling can overflow.
    n = theta.size
    B = 1.0 / (s * cyclotron_frequency(1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        coeffs, _ = approx.compute_all_nontrivial(
            np.ones(n), B, np.ones(n), theta, theta_e=np.full(n, 10.0)
        )
    return coeffs


def test_invariants_hold_for_arbitrary_network_outputs(approx):
    bands = [normalized_band(spec.mapping) for spec in approx.config.results]
    engine = approx.engine

    @SOME
    @given(
        st.integers(1, 6).flatmap(
            lambda rows: st.tuples(
                st.lists(
                    st.lists(st.floats(0, 1), min_size=len(bands), max_size=len(bands)),
                    min_size=rows,
                    max_size=rows,
                ),
                st.lists(st.floats(-20, 20), min_size=rows, max_size=rows),
            )
        )
    )
    def check(drawn):
        fractions, theta = np.array(drawn[0]), np.array(drawn[1])
        low = np.array([b[0] for b in bands])
        high = np.array([b[1] for b in bands])
        approx.engine = FixedOutputs(low + fractions * (high - low))
        try:
            coeffs = _at_unit_frequency(approx, theta)
        finally:
            approx.engine = engine
        check_invariants(approx, coeffs, theta)

    check()


HIDDEN_ACTIVATIONS = sorted(a for a in ACTIVATIONS if a != "linear")


def test_invariants_hold_for_random_networks(approx):
    engine = approx.engine
    n_inputs = len(approx.config.params)
    n_results = len(approx.config.results)

    @FEW
    @given(
        seed=st.integers(0, 2**32 - 1),
        activation=st.sampled_from(HIDDEN_ACTIVATIONS),
        widths=st.lists(st.integers(1, 8), min_size=1, max_size=2),
        scale=st.floats(0.05, 1.0),
    )
    def check(seed, activation, widths, scale):
        rng = np.random.default_rng(seed)
        sizes = [n_inputs, *widths, 1]
        networks = [
            Network(
                [
                    rng.normal(0, scale, (a, b))
                    for a, b in zip(sizes[:-1], sizes[1:], strict=True)
                ],
                [rng.normal(0, scale, b) for b in sizes[1:]],
                [activation] * len(widths) + ["linear"],
            )
            for _ in range(n_results)
        ]
        approx.engine = FusedNetworks(networks)
        theta = rng.uniform(-10, 10, 50)
        try:
            coeffs = _at_unit_frequency(approx, theta, s=10 ** rng.uniform(1, 5))
        finally:
            approx.engine = engine
        check_invariants(approx, coeffs, theta)

    check()


# ---------------------------------------------------------------------------
# Angle folding.


@SOME
@given(st.floats(-1e4, 1e4))
def test_folded_angle_keeps_cos_and_the_v_sign(theta):
    folded, v_sign = fold_angle(np.array([theta]))
    assert 0 <= folded[0] <= np.pi / 2
    assert abs(np.cos(folded[0]) - abs(np.cos(theta))) <= 1e-12
    if abs(np.cos(theta)) > 1e-12:
        assert v_sign[0] == np.sign(np.cos(theta))


def test_folded_angle_is_exact_for_huge_angles():
    theta = np.array([1e6, 1e10, 1e15, 1e300])
    folded, v_sign = fold_angle(theta)
    np.testing.assert_allclose(np.cos(folded), np.abs(np.cos(theta)), atol=1e-12)
    np.testing.assert_array_equal(v_sign, np.sign(np.cos(theta)))


# ---------------------------------------------------------------------------
# Rescaling with frequency and density at fixed s and theta.


def log_uniform(low, high):
    return st.floats(np.log10(low), np.log10(high)).map(lambda x: 10.0**x)


@SOME
@given(
    nu=log_uniform(1e6, 1e14),
    B=log_uniform(1e-2, 1e4),
    n_e=log_uniform(1e-3, 1e8),
    k=log_uniform(1e-3, 1e3),
    m=log_uniform(1e-3, 1e3),
    theta=st.floats(-10, 10),
    theta_e=log_uniform(1, 100),
)
def test_rescaling_with_frequency_field_and_density(
    approx, nu, B, n_e, k, m, theta, theta_e
):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        base, _ = approx.compute_all_nontrivial(nu, B, n_e, theta, theta_e=theta_e)
        scaled, _ = approx.compute_all_nontrivial(
            k * nu, k * B, m * n_e, theta, theta_e=theta_e
        )
    # j_I, j_Q, j_V scale as n_e nu; the absorption coefficients and
    # rotativities as n_e / nu (DESIGN.md).
    factor = np.array([k * m, m / k, k * m, m / k, k * m, m / k, m / k, m / k])
    np.testing.assert_allclose(scaled, base * factor, rtol=1e-9, atol=0)


# ---------------------------------------------------------------------------
# Rotation into the sky basis.


def rotate_sky(sky, psi):
    """Turn sky-basis coefficients by a further ``psi``: spin 2, as a matrix."""
    out = sky.copy()
    c, s = np.cos(2 * psi), np.sin(2 * psi)
    for q, u in ((2, 4), (3, 5), (8, 9)):
        out[q] = c * sky[q] - s * sky[u]
        out[u] = s * sky[q] + c * sky[u]
    return out


@SOME
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=8, max_size=8),
    st.floats(-10, 10),
    st.floats(-10, 10),
)
def test_rotations_compose(eight, psi1, psi2):
    eight = np.array(eight)
    once = detrivialize_stokes_basis(eight, psi1 + psi2)
    twice = rotate_sky(detrivialize_stokes_basis(eight, psi1), psi2)
    scale = np.abs(eight).max() + 1.0
    np.testing.assert_allclose(once, twice, rtol=0, atol=1e-12 * scale)
    # I, V and rho_V never change.
    np.testing.assert_array_equal(once[[0, 1, 6, 7, 10]], eight[[0, 1, 4, 5, 7]])
