"""The eight coefficients <-> the internal parameterization."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurosynchro.errors import TableError
from neurosynchro.samples import TrainingSet, read_training_set
from neurosynchro.transform import (
    COEFFICIENTS,
    from_internal,
    signs_from_table,
    to_internal,
)


def synthetic(rng, n=200, rho=True, signs=None):
    """Random coefficients obeying the invariants, with chosen signs."""
    signs = signs or {"j_Q": -1, "alpha_Q": -1, "j_V": 1, "alpha_V": 1, "rho_V": 1}
    table = pd.DataFrame(
        {"s": 10 ** rng.uniform(1, 5, n), "theta": rng.uniform(0.1, 1.5, n)}
    )
    for kind in ("j", "alpha"):
        total = 10 ** rng.uniform(-40, -5, n)
        frac = rng.uniform(0.01, 0.99, n)
        share = rng.uniform(0.001, 0.9, n)
        table[f"{kind}_I"] = total
        table[f"{kind}_Q"] = signs[f"{kind}_Q"] * total * frac * np.sqrt(1 - share**2)
        table[f"{kind}_V"] = signs[f"{kind}_V"] * total * frac * share
    if rho:
        table["rho_Q"] = rng.choice([-1, 1], n) * 10 ** rng.uniform(-12, -2, n)
        table["rho_V"] = signs["rho_V"] * 10 ** rng.uniform(-10, -2, n)
    suffixes = {"s": "log", "theta": "lin"}
    suffixes.update({c: "res" for c in table.columns if c not in suffixes})
    return TrainingSet(table, suffixes, ["synthetic.txt"])


def reassemble(out, suffixes):
    results = {c: out[c].to_numpy() for c in out.columns if suffixes[c] == "res"}
    if "rho_Q" in results:
        results["rho_Q"] = np.abs(results["rho_Q"])
    return from_internal(results, signs_from_table(out, suffixes))


@pytest.mark.parametrize("flip", [1, -1])
def test_round_trip_with_any_sign_convention(rng, flip):
    signs = {
        "j_Q": -flip,
        "alpha_Q": -flip,
        "j_V": flip,
        "alpha_V": flip,
        "rho_V": flip,
    }
    ts = synthetic(rng, signs=signs)
    out, suffixes, report = to_internal(ts)
    assert report.signs == signs
    assert report.rows_out == 200
    back = reassemble(out, suffixes)
    np.testing.assert_allclose(
        back, ts.table[list(COEFFICIENTS)].to_numpy(), rtol=1e-12
    )


def test_symphony_round_trip_six_results(symphony_dir):
    ts = read_training_set(symphony_dir / "thermal.txt")
    out, suffixes, report = to_internal(ts)
    # The symphony README: j_Q, alpha_Q < 0 and j_V, alpha_V > 0.
    assert report.signs == {"j_Q": -1, "alpha_Q": -1, "j_V": 1, "alpha_V": 1}
    assert not report.has_rotativities
    assert "rho_Q" not in out.columns
    back = reassemble(out, suffixes)
    expected = ts.table[list(COEFFICIENTS[:6])].to_numpy()
    np.testing.assert_allclose(back[:, :6], expected, rtol=1e-12)
    assert np.isnan(back[:, 6:]).all()


def test_kappa_nan_cells_are_dropped_and_counted(symphony_dir):
    out, _, report = to_internal(read_training_set(symphony_dir / "kappa.txt"))
    assert report.dropped["non-finite result"] == 5
    assert report.rows_out == 1124 - 5


def test_minority_signs_and_broken_invariants_are_dropped(rng):
    ts = synthetic(rng)
    ts.table.loc[3, "j_Q"] *= -1
    ts.table.loc[5, "rho_V"] *= -1
    ts.table.loc[7, "j_Q"] = -2 * ts.table.loc[7, "j_I"]
    ts.table.loc[9, "alpha_I"] = -1.0
    out, _, report = to_internal(ts)
    assert report.dropped["j_Q has the minority sign"] == 1
    assert report.dropped["rho_V has the minority sign"] == 1
    assert report.dropped["j invariant broken (j_frac_pol >= 1)"] == 1
    assert report.dropped["alpha_I <= 0"] == 1
    assert report.rows_out == 196


def test_rho_all_nan_means_six_results(rng):
    ts = synthetic(rng)
    ts.table["rho_Q"] = np.nan
    ts.table["rho_V"] = np.nan
    out, suffixes, report = to_internal(ts)
    assert not report.has_rotativities
    assert report.rows_out == 200
    assert "rho_Q_sign" not in out.columns


def test_missing_results_are_an_error(rng):
    ts = synthetic(rng)
    ts.table = ts.table.drop(columns=["j_V"])
    del ts.suffixes["j_V"]
    with pytest.raises(TableError, match=r"missing result column\(s\) j_V\(res\)"):
        to_internal(ts)


unit = st.floats(0, 1)
positive = st.floats(1e-300, 1e300)


@settings(max_examples=300)
@given(
    positive,
    positive,
    unit,
    unit,
    unit,
    unit,
    positive,
    positive,
    st.sampled_from([-1.0, 1.0]),
    st.sampled_from([-1.0, 1.0]),
)
def test_any_network_outputs_obey_the_invariants(
    j_I, alpha_I, j_fp, a_fp, j_vs, a_vs, rho_Q, rho_V, rho_sign, v_sign
):
    results = {
        "j_I": j_I,
        "alpha_I": alpha_I,
        "j_frac_pol": j_fp,
        "alpha_frac_pol": a_fp,
        "j_V_share": j_vs,
        "alpha_V_share": a_vs,
        "rho_Q": rho_Q,
        "rho_V": rho_V,
        "rho_Q_sign": rho_sign,
    }
    signs = {"j_Q": -1, "alpha_Q": -1, "j_V": 1, "alpha_V": 1, "rho_V": 1}
    c = from_internal(results, signs, v_sign)
    j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rq, rv = c
    assert np.hypot(j_Q, j_V) <= j_I * (1 + 1e-12)
    assert np.hypot(alpha_Q, alpha_V) <= alpha_I * (1 + 1e-12)
    assert j_Q <= 0 and alpha_Q <= 0
    assert np.sign(j_V) * v_sign >= 0 and np.sign(rv) == v_sign
    assert np.sign(rq) == rho_sign


def test_signed_rho_q_without_a_sign_result_keeps_its_own_sign(rng):
    # Configs that learn rho_Q signed (asinh) have no rho_Q_sign network.
    ts = synthetic(rng, n=50, rho=True)
    out, suffixes, _ = to_internal(ts)
    results = {c: out[c].to_numpy() for c in out.columns if suffixes[c] == "res"}
    del results["rho_Q_sign"]
    coeffs = from_internal(results, signs_from_table(out, suffixes))
    np.testing.assert_array_equal(coeffs[:, 6], ts.table["rho_Q"].to_numpy())
    assert (coeffs[:, 6] < 0).any() and (coeffs[:, 6] > 0).any()
