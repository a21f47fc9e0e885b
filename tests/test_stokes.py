"""Rotation of the eight field-aligned coefficients into a fixed sky basis."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neurosynchro import detrivialize_stokes_basis

EIGHT = np.array([5.0, 3.0, -2.0, -1.0, 0.5, 0.25, 0.7, 0.9])


def test_psi_zero_is_the_identity():
    out = detrivialize_stokes_basis(EIGHT, 0.0)
    np.testing.assert_array_equal(out, [5, 3, -2, -1, 0, 0, 0.5, 0.25, 0.7, 0, 0.9])


def test_quarter_turn_maps_q_into_minus_q():
    out = detrivialize_stokes_basis(EIGHT, np.pi / 2)
    np.testing.assert_allclose(out[[2, 3, 8]], -EIGHT[[2, 3, 6]])
    np.testing.assert_allclose(out[[4, 5, 9]], 0, atol=1e-15)


def test_eighth_turn_puts_linear_terms_into_u():
    # psi = pi/4 turns the field-aligned Q axis onto the sky's +U axis.
    out = detrivialize_stokes_basis(EIGHT, np.pi / 4)
    np.testing.assert_allclose(out[[4, 5, 9]], EIGHT[[2, 3, 6]])
    np.testing.assert_allclose(out[[2, 3, 8]], 0, atol=1e-15)


@given(st.floats(-100, 100))
def test_polarized_magnitudes_and_unpolarized_terms_are_conserved(psi):
    out = detrivialize_stokes_basis(EIGHT, psi)
    for q, u, original in ((2, 4, 2), (3, 5, 3), (8, 9, 6)):
        assert np.hypot(out[q], out[u]) == pytest.approx(abs(EIGHT[original]))
    np.testing.assert_array_equal(out[[0, 1, 6, 7, 10]], EIGHT[[0, 1, 4, 5, 7]])


def test_broadcasts_over_points_and_angles():
    coeffs = np.tile(EIGHT, (3, 1))
    psi = np.array([[0.0], [0.3]])
    out = detrivialize_stokes_basis(coeffs, psi)
    assert out.shape == (2, 3, 11)
    np.testing.assert_allclose(out[1, 2], detrivialize_stokes_basis(EIGHT, 0.3))
