"""Physical <-> transformed <-> normalized maps."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neurosynchro.errors import ConfigError
from neurosynchro.mappings import (
    MAP_TYPES,
    OUT_OF_SAMPLE_POLICIES,
    Mapping,
    MappingBlock,
    n_quadratic_features,
    quadratic_features,
)

finite = st.floats(-1e300, 1e300, allow_nan=False)

DOMAINS = {
    "direct": st.floats(-1e300, 1e300),
    "log": st.floats(1e-300, 1e300),
    "neg_log": st.floats(-1e300, -1e-300),
    "logit": st.floats(1e-12, 1 - 1e-12),
    "ninth_root": st.floats(-1e300, 1e300),
    "asinh": st.floats(-1e300, 1e300),
}


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_invertible_maps_round_trip(name):
    maptype = MAP_TYPES[name]

    @given(DOMAINS[name])
    def check(p):
        assert maptype.valid(np.array([p]))[0]
        back = maptype.inverse(maptype.forward(np.array([p])))[0]
        assert back == pytest.approx(p, rel=1e-9, abs=1e-300)

    check()


@given(st.floats(1e-300, 1e300), st.sampled_from([-1.0, 1.0]))
def test_abs_log_keeps_magnitude_and_sign_map_keeps_sign(p, sign):
    magnitude = MAP_TYPES["abs_log"].inverse(MAP_TYPES["abs_log"].forward(sign * p))
    assert magnitude == pytest.approx(p, rel=1e-9)
    assert MAP_TYPES["sign"].inverse(MAP_TYPES["sign"].forward(sign * p)) == sign


def test_known_values():
    assert MAP_TYPES["log"].forward(1000.0) == pytest.approx(3)
    assert MAP_TYPES["logit"].forward(0.5) == 0
    assert MAP_TYPES["logit"].inverse(np.log(3)) == pytest.approx(0.75)
    assert MAP_TYPES["ninth_root"].forward(-512.0) == pytest.approx(-2)
    # The logistic inverse never overflows.
    assert MAP_TYPES["logit"].inverse(np.array([-1e4, 1e4])).tolist() == [0, 1]


def test_gaussian_and_unit_interval_normalization(rng):
    p = 10 ** rng.uniform(-3, 5, 1000)
    gauss = Mapping.from_dict({"name": "s", "maptype": "log"}, need_bounds=False)
    gauss.lock(p)
    n, oos = gauss.phys_to_norm(p)
    assert not oos.any()
    assert n.mean() == pytest.approx(0, abs=1e-12)
    assert n.std() == pytest.approx(1, rel=1e-12)
    np.testing.assert_allclose(gauss.norm_to_phys(n)[0], p, rtol=1e-12)

    unit = Mapping.from_dict(
        {"name": "s", "maptype": "log", "normalization_mode": "unit_interval"},
        need_bounds=False,
    )
    unit.lock(p)
    n = unit.phys_to_norm(p)[0]
    assert (n.min(), n.max()) == pytest.approx((0, 1))


def test_theta_bounds_and_out_of_sample_policies():
    theta = np.linspace(0.2, 1.2, 50)
    for policy, expected in (("ignore", 1.5), ("clip", 1.2), ("nan", np.nan)):
        m = Mapping.from_dict(
            {"name": "x", "maptype": "direct", "out_of_sample": policy},
            need_bounds=False,
        )
        m.lock(theta)
        p, flags = m.phys_to_norm(np.array([0.5, 1.5]))
        assert flags.tolist() == [False, True]
        np.testing.assert_allclose(m.norm_to_phys(p)[0][1], expected)
    m = Mapping.from_dict(
        {"name": "theta", "maptype": "direct", "phys_bounds_mode": "theta"},
        need_bounds=False,
    )
    m.lock(theta)
    # The top is pi/2 whatever was sampled; the bottom is the sampled minimum,
    # so a nearly field-aligned angle the table never covered is flagged.
    assert (m.phys_min, m.phys_max) == (0.2, pytest.approx(np.pi / 2))
    assert m.phys_to_norm(np.array([0.1, 1.5]))[1].tolist() == [True, False]


def test_locked_dict_round_trip(rng):
    m = Mapping.from_dict({"name": "j_I", "maptype": "log"}, need_bounds=False)
    m.lock(10 ** rng.uniform(-40, -30, 100))
    info = {"name": "j_I", "maptype": "log", **m.bounds_dict()}
    again = Mapping.from_dict(info)
    assert again.bounds_dict() == m.bounds_dict()


@pytest.mark.parametrize(
    "info, pattern",
    [
        ({"maptype": "log"}, "missing key 'name'"),
        ({"name": "s"}, "missing key 'maptype'"),
        ({"name": "s", "maptype": "cube"}, r"maptype = 'cube' is not valid.*'log'"),
        ({"name": "s", "maptype": "log", "phys_bounds_mode": "x"}, "phys_bounds_mode"),
        ({"name": "s", "maptype": "log", "out_of_sample": "wrap"}, "'clip'"),
        ({"name": "s", "maptype": "log"}, "no bounds.*lock-domain-range"),
    ],
)
def test_bad_mapping_entries(info, pattern):
    with pytest.raises(ConfigError, match=pattern):
        Mapping.from_dict(info, where="nn/nn_config.toml")


def test_too_few_samples():
    m = Mapping.from_dict({"name": "j_I", "maptype": "log"}, need_bounds=False)
    with pytest.raises(ConfigError, match="only 1 valid samples"):
        m.lock(np.array([-1.0, 0.0, 2.0]))


def test_sign_bounds_hold_both_classes_even_for_a_constant_sign():
    # Regression: a rho_Q that is negative on every row gave norm bounds
    # [0, 0], so every class probability the network returned was flagged
    # out of sample.
    m = Mapping.from_dict(
        {
            "name": "rho_Q_sign",
            "maptype": "sign",
            "normalization_mode": "unit_interval",
        },
        need_bounds=False,
    )
    m.lock(-np.ones(10))
    n, oos = m.phys_to_norm(np.array([-1.0, 1.0]))
    assert n.tolist() == [0.0, 1.0] and not oos.any()
    p, oos = m.norm_to_phys(np.array([0.01, 0.49, 0.51, 0.99]))
    assert p.tolist() == [-1, -1, 1, 1] and not oos.any()


def test_mapping_block_equals_each_mapping_alone(rng):
    # Every map type with every out-of-sample policy, in an order where
    # equal map types are both consecutive and apart; values inside and
    # outside the bounds, and NaN.
    names = sorted(MAP_TYPES)
    mappings = []
    for i, (name, policy) in enumerate(
        (n, p) for p in OUT_OF_SAMPLE_POLICIES for n in names
    ):
        mapping = Mapping(f"m{i}", MAP_TYPES[name], out_of_sample=policy)
        samples = {
            "log": 10 ** rng.uniform(-3, 3, 50),
            "neg_log": -(10 ** rng.uniform(-3, 3, 50)),
            "abs_log": rng.choice([-1, 1], 50) * 10 ** rng.uniform(-3, 3, 50),
            "logit": rng.uniform(0.01, 0.99, 50),
            "sign": rng.choice([-1.0, 1.0], 50),
        }.get(name, rng.normal(size=50))
        mapping.lock(samples)
        mappings.append(mapping)
    n = rng.normal(0.0, 2.0, size=(300, len(mappings)))
    n[5, 3] = np.nan
    block = MappingBlock(mappings)
    p, oos = block.norm_to_phys(n)
    assert p.shape == (len(mappings), 300)
    expected_oos = np.zeros(300, dtype=bool)
    for k, mapping in enumerate(mappings):
        value, flags = mapping.norm_to_phys(n[:, k])
        np.testing.assert_array_equal(p[k], value)
        expected_oos |= flags
    np.testing.assert_array_equal(oos, expected_oos)
    assert oos[5]


def test_asinh_is_linear_through_zero_and_logarithmic_far_out():
    asinh = MAP_TYPES["asinh"]
    assert asinh.forward(np.array([-1e-8, 0.0, 1e-8])) == pytest.approx(
        [-1e-8, 0.0, 1e-8], rel=1e-12
    )
    # asinh(p) = sign(p) log(2 |p|) + O(1/p^2)
    assert asinh.forward(np.array([1e10, -1e10])) == pytest.approx(
        [np.log(2e10), -np.log(2e10)], rel=1e-15
    )


def test_quadratic_features():
    n = np.array([[2.0, 3.0]])
    assert quadratic_features(n).tolist() == [[1, 2, 3, 4, 6, 9]]
    assert n_quadratic_features(2) == 6 and n_quadratic_features(4) == 15


def scaled_samples(rng, rows=400):
    """Signed values whose magnitude is exactly exp(quadratic) of 3 inputs."""
    inputs = rng.normal(size=(rows, 3))
    truth = rng.normal(0, 0.5, n_quadratic_features(3))
    magnitude = np.exp(quadratic_features(inputs) @ truth)
    return inputs, truth, rng.choice([-1.0, 1.0], rows) * magnitude


def test_row_scale_fit_recovers_an_exact_quadratic(rng):
    inputs, truth, p = scaled_samples(rng)
    m = Mapping.from_dict(
        {
            "name": "rho_Q",
            "maptype": "asinh",
            "scale_mode": "quadratic",
            "scale_factor": 3.0,
        },
        need_bounds=False,
    )
    m.lock(p, inputs)
    np.testing.assert_allclose(m.scale_coefficients, truth, atol=1e-10)
    # Scaled values are then +-1/3 exactly: the map sees only the sign.
    np.testing.assert_allclose(np.abs(p / m.row_scale(inputs)), 1 / 3, rtol=1e-10)


def test_scaled_mapping_round_trips_and_survives_the_config(rng):
    inputs, _, p = scaled_samples(rng)
    p *= np.exp(rng.normal(0, 2, p.size))  # not just the scale: a spread
    info = {
        "name": "rho_Q",
        "maptype": "asinh",
        "scale_mode": "quadratic",
        "scale_factor": 0.5,
    }
    m = Mapping.from_dict(info, need_bounds=False)
    m.lock(p, inputs)
    again = Mapping.from_dict({**info, **m.bounds_dict()})
    assert again.scale_coefficients == m.scale_coefficients
    n, oos = again.phys_to_norm(p, inputs)
    assert not oos.any()
    back, oos = again.norm_to_phys(n, inputs)
    assert not oos.any()
    np.testing.assert_allclose(back, p, rtol=1e-12)
    # The block (the approximator's path) gives the same bits.
    plain = Mapping.from_dict({"name": "j_I", "maptype": "log"}, need_bounds=False)
    plain.lock(np.abs(p))
    block = MappingBlock([plain, again])
    both, _ = block.norm_to_phys(np.stack([n, n], axis=1), inputs)
    np.testing.assert_array_equal(both[1], back)
    np.testing.assert_array_equal(both[0], plain.norm_to_phys(n)[0])
    # Without the inputs a scaled mapping cannot work: an error, not a guess.
    with pytest.raises(ValueError, match="needs the row inputs"):
        again.norm_to_phys(n)


@pytest.mark.parametrize(
    "extra, pattern",
    [
        ({"scale_mode": "cubic"}, r"scale_mode = 'cubic' is not valid"),
        ({"scale_mode": "quadratic", "scale_factor": 0}, "scale_factor = 0; expected"),
        ({"scale_mode": "quadratic", "scale_factor": True}, "scale_factor = True"),
        ({"scale_mode": "quadratic"}, r"no scale_coefficients for scale_mode = 'q"),
        (
            {"scale_mode": "quadratic", "scale_coefficients": [1.0, "a"]},
            "scale_coefficients = .*; expected a list of numbers",
        ),
        # exp overflows far below such a coefficient: refused, not inf.
        (
            {"scale_mode": "quadratic", "scale_coefficients": [1e308, 1.0]},
            r"expected a list of numbers between -700 and 700",
        ),
        # Checked even when not used (scale_mode none), not silently kept.
        ({"scale_factor": "big"}, "scale_factor = 'big'; expected a positive"),
        ({"scale_coefficients": ["x"]}, "scale_coefficients = \\['x'\\]"),
    ],
)
def test_bad_scale_entries(extra, pattern):
    info = {"name": "rho_Q", "maptype": "asinh", "x_mean": 0, "x_std": 1}
    info.update({"phys_min": -1, "phys_max": 1, "norm_min": -1, "norm_max": 1})
    with pytest.raises(ConfigError, match=pattern):
        Mapping.from_dict({**info, **extra}, where="nn/nn_config.toml")


def test_row_scale_of_each_row_does_not_depend_on_the_others(rng):
    # Large calls are split over threads: the split must not change a bit.
    inputs, _, p = scaled_samples(rng, rows=1001)
    m = Mapping.from_dict(
        {"name": "rho_Q", "maptype": "asinh", "scale_mode": "quadratic"},
        need_bounds=False,
    )
    m.lock(p, inputs)
    whole = m.row_scale(inputs)
    parts = np.concatenate([m.row_scale(inputs[a:b]) for a, b in ((0, 7), (7, 1001))])
    np.testing.assert_array_equal(parts, whole)
    np.testing.assert_array_equal(m.row_scale(inputs[500:501]), whole[500:501])
