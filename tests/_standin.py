"""Cheap, deterministic stand-ins for the detailed calculator.

They live in a module of their own (not in a test file) so that worker
processes, local or Dask, can import them by name when unpickling a task.
Environment variables make ``smooth`` misbehave inside a subprocess while
keeping the same name (and so the same recorded calculator) as in the test
process:

- ``STANDIN_DELAY_S``: sleep this long on every call;
- ``STANDIN_EXIT_AFTER``: after this many calls, end the process at once
  (``os._exit``, like a kill: no cleanup, no exception handlers).
"""

import os
import time

import numpy as np

# Scale of each of the eight results relative to the first, so that a
# misplaced column shows up.
SCALES = np.array([1.0, 2.0, -3.0, -4.0, 5.0, 6.0, -7.0, 8.0])

_calls = 0


def formula(s, theta, params):
    """The stand-in's results for given inputs, shape (rows, 8)."""
    total = np.zeros_like(np.asarray(s, dtype=float))
    for value in params.values():
        value = np.asarray(value, dtype=float)
        total = total + np.where(np.isfinite(value), value, 0.0)
    base = np.asarray(s, dtype=float) ** -0.5 * np.sin(theta) * (1.0 + total)
    return base[:, None] * SCALES


def smooth(distribution, s, theta, **params):
    """A smooth formula of all inputs; misbehaves on request (see module doc)."""
    global _calls
    _calls += 1
    limit = os.environ.get("STANDIN_EXIT_AFTER")
    if limit is not None and _calls > int(limit):
        os._exit(17)
    delay = os.environ.get("STANDIN_DELAY_S")
    if delay is not None:
        time.sleep(float(delay))
    return formula(s, theta, params)


def band(s):
    """0 for good rows, 1 for rows returned as NaN, 2 for rows that raise."""
    fraction = (7.0 * np.log10(s)) % 1.0
    return np.where(fraction < 0.1, 1, np.where(fraction < 0.2, 2, 0))


def flaky(distribution, s, theta, **params):
    """Like ``formula``, but NaN rows in band 1; raises if any row is in band 2."""
    kind = band(s)
    if np.any(kind == 2):
        raise ValueError("integration did not converge")
    out = formula(s, theta, params)
    out[kind == 1] = np.nan
    return out


def wrong_shape(distribution, s, theta, **params):
    """Returns six results instead of eight."""
    return np.ones((len(s), 6))
