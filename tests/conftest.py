"""Shared fixtures: the symphony reference tables and small network directories."""

from pathlib import Path

import numpy as np
import pytest

SYMPHONY = Path(__file__).resolve().parents[2] / "shared" / "data" / "symphony"


@pytest.fixture(scope="session")
def symphony_dir():
    """The folder of symphony tables; tests needing it skip if it is absent."""
    if not (SYMPHONY / "thermal.txt").is_file():
        pytest.skip(f"symphony reference tables not found at {SYMPHONY}")
    return SYMPHONY


@pytest.fixture
def rng():
    return np.random.default_rng(20261203)
