"""Compiled (numba) evaluation of dense networks, for large calls.

The numpy engine (:mod:`neurosynchro.engine`) spends most of a large call
moving intermediate arrays through memory: every layer's output is written,
then read back by the activation and by the next product. The kernel here
keeps a block of :data:`BLOCK` rows together, transposed so that one row of
a work array holds one unit's value for every row of the block; each unit's
weights are then scalars broadcast over the block, the loops over the block
vectorize, the activation is applied while the value is still in a register,
and a last hidden layer feeding a single output is accumulated straight into
that output, never stored.

The activations are computed here too, because a call to the C library's
``tanh`` cannot be vectorized: ``tanh`` and the sigmoid come from
:func:`_expm1_negative`, a polynomial with squarings (``tanh`` within 1e-15
relative of numpy's). Networks with other activations (softplus, elu,
silu), or with different activations in different hidden layers, are left
to the numpy engine.

Importing numba costs 0.2-0.5 s and compiling the kernel a few seconds the
first time (the result is cached on disk), so the engine uses this module
only for calls of at least ``engine.COMPILED_MIN_ROWS`` rows.
"""

import numba
import numpy as np

#: Rows evaluated together; the work arrays hold width x BLOCK values.
BLOCK = 64

_JIT = {
    "nogil": True,
    "cache": True,
    "boundscheck": False,
    "fastmath": {"contract"},
    # No zero-division check (a branch that keeps loops from vectorizing).
    "error_model": "numpy",
}


@numba.njit(inline="always", **_JIT)
def _expm1_negative(y):
    """exp(y) - 1 for y <= 0, vectorizable (no library call)."""
    # exp(y) = exp(y / 256) ** 256: the degree-11 Taylor polynomial of
    # expm1 on [-0.16, 0], then eight squarings done on a = exp - 1 as
    # a * (2 + a), which keeps the precision of small values.
    # (Selects written so that NaN passes through.)
    z = (-40.0 if y < -40.0 else y) * (1.0 / 256.0)
    p = 1.0 / 39916800.0
    p = p * z + 1.0 / 3628800.0
    p = p * z + 1.0 / 362880.0
    p = p * z + 1.0 / 40320.0
    p = p * z + 1.0 / 5040.0
    p = p * z + 1.0 / 720.0
    p = p * z + 1.0 / 120.0
    p = p * z + 1.0 / 24.0
    p = p * z + 1.0 / 6.0
    p = p * z + 0.5
    p = p * z + 1.0
    a = p * z
    # Written out: a loop here would keep the caller's loop from vectorizing.
    a = a * (2.0 + a)
    a = a * (2.0 + a)
    a = a * (2.0 + a)
    a = a * (2.0 + a)
    a = a * (2.0 + a)
    a = a * (2.0 + a)
    a = a * (2.0 + a)
    a = a * (2.0 + a)
    return a


@numba.njit(inline="always", **_JIT)
def _tanh(x):
    # tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|)), with the sign restored.
    # (A select, not abs(): numba's abs keeps the loop from vectorizing.)
    negative = x < 0.0
    a = _expm1_negative(2.0 * x if negative else -2.0 * x)
    t = a / (2.0 + a)
    return t if negative else -t


@numba.njit(inline="always", **_JIT)
def _linear(x):
    return x


@numba.njit(inline="always", **_JIT)
def _relu(x):
    return 0.0 if x < 0.0 else x


@numba.njit(inline="always", **_JIT)
def _sigmoid(x):
    return 0.5 + 0.5 * _tanh(0.5 * x)


#: The compiled activations, by code. (Codes, not the functions themselves
#: as arguments: numba cannot cache a kernel that takes functions.)
CODES = {"linear": 0, "relu": 1, "tanh": 2, "sigmoid": 3}


@numba.njit(inline="always", **_JIT)
def _finish_unit(code, h_out, j, total, v, last):
    """Activate unit ``j``: store it, or add ``v`` times it to ``total[0]``."""
    # One loop per activation, each branch-free, so that each vectorizes.
    if last >= 0:
        if code == 1:
            for r in range(BLOCK):
                total[0, r] += v * _relu(h_out[j, r])
        elif code == 2:
            for r in range(BLOCK):
                total[0, r] += v * _tanh(h_out[j, r])
        elif code == 3:
            for r in range(BLOCK):
                total[0, r] += v * _sigmoid(h_out[j, r])
        else:
            for r in range(BLOCK):
                total[0, r] += v * h_out[j, r]
    elif code == 1:
        for r in range(BLOCK):
            h_out[j, r] = _relu(h_out[j, r])
    elif code == 2:
        for r in range(BLOCK):
            h_out[j, r] = _tanh(h_out[j, r])
    elif code == 3:
        for r in range(BLOCK):
            h_out[j, r] = _sigmoid(h_out[j, r])


@numba.njit(**_JIT)
def _layer(code, h_in, k, weights, base, n_out, h_out, total, last):
    """One layer for the whole block.

    Unit ``j`` computes ``act(b_j + kernel_j . h_in[:k])``; it is stored in
    ``h_out[j]``, or, when ``last`` >= 0 (the last hidden layer), multiplied
    by the output weight ``weights[last + j]`` and added to ``total[0]``.
    Narrow inputs (up to 4: a network's first layer) are summed in the loop
    over rows; wider ones by a matrix product first.
    """
    if k > 4:
        kernel = weights[base : base + n_out * k].reshape((n_out, k))
        np.dot(kernel, h_in[:k], h_out[:n_out])
    biases = base + n_out * k
    for j in range(n_out):
        at = base + j * k
        b = weights[biases + j]
        v = weights[last + j] if last >= 0 else 0.0
        if k == 3:
            w0, w1, w2 = weights[at], weights[at + 1], weights[at + 2]
            for r in range(BLOCK):
                h_out[j, r] = b + w0 * h_in[0, r] + w1 * h_in[1, r] + w2 * h_in[2, r]
        elif k == 4:
            w0, w1, w2, w3 = (
                weights[at],
                weights[at + 1],
                weights[at + 2],
                weights[at + 3],
            )
            for r in range(BLOCK):
                h_out[j, r] = (
                    b
                    + w0 * h_in[0, r]
                    + w1 * h_in[1, r]
                    + w2 * h_in[2, r]
                    + w3 * h_in[3, r]
                )
        elif k <= 2:
            for r in range(BLOCK):
                a = b
                for i in range(k):
                    a += weights[at + i] * h_in[i, r]
                h_out[j, r] = a
        else:
            for r in range(BLOCK):
                h_out[j, r] += b
        _finish_unit(code, h_out, j, total, v, last)


@numba.njit(**_JIT)
def evaluate(hidden_code, output_code, x, out, column, weights, offsets, widths):
    """Evaluate one network on every row of ``x`` into ``out[:, column]``.

    ``widths`` are the layer widths from the inputs on (the last is 1);
    layer ``l``'s kernel, stored transposed (unit by unit), starts at
    ``weights[offsets[l]]`` and is followed by its biases. Every hidden
    layer has activation ``hidden_code``, the output ``output_code``
    (:data:`CODES`).
    """
    n_rows, n_in = x.shape
    hidden = widths.shape[0] - 2
    widest = 1
    for w in widths:
        widest = max(widest, w)
    # Two work arrays used in turn (unit by row), and the output's
    # accumulator: the last hidden layer is summed into it unit by unit,
    # never stored.
    ping = np.zeros((widest, BLOCK), x.dtype)
    pong = np.zeros((widest, BLOCK), x.dtype)
    total = np.zeros((1, BLOCK), x.dtype)
    for start in range(0, n_rows, BLOCK):
        rows = min(BLOCK, n_rows - start)
        for i in range(n_in):
            for r in range(rows):
                ping[i, r] = x[start + r, i]
        h_in, h_out = ping, pong
        total[:] = 0.0
        if hidden == 0:
            # No hidden layer: the output unit is "summed" with weight 1.
            _layer(output_code, h_in, n_in, weights, 0, 1, h_out, total, -1)
            for r in range(rows):
                out[start + r, column] = h_out[0, r]
            continue
        for layer in range(hidden):
            last = offsets[hidden] if layer == hidden - 1 else -1
            _layer(
                hidden_code,
                h_in,
                widths[layer],
                weights,
                offsets[layer],
                widths[layer + 1],
                h_out,
                total,
                last,
            )
            h_in, h_out = h_out, h_in
        b = weights[offsets[hidden] + widths[hidden]]
        for r in range(BLOCK):
            total[0, r] += b
        _finish_unit(output_code, total, 0, total, 0.0, -1)
        for r in range(rows):
            out[start + r, column] = total[0, r]


def pack(network, dtype):
    """The arguments of :func:`evaluate` for one network, or None.

    None when the network's activations have no compiled version, or its
    hidden layers do not all share one.
    """
    hidden = set(network.activations[:-1])
    if len(hidden) > 1 or not set(network.activations) <= set(CODES):
        return None
    hidden_code = CODES[network.activations[0]] if hidden else 0
    parts, offsets, at = [], [], 0
    for kernel, bias in zip(network.kernels, network.biases, strict=True):
        offsets.append(at)
        parts += [np.asarray(kernel).T.ravel(), np.asarray(bias).ravel()]
        at += kernel.size + bias.size
    widths = [network.kernels[0].shape[0]] + [k.shape[1] for k in network.kernels]
    weights = np.concatenate(parts).astype(dtype)
    weights.flags.writeable = False
    return (
        hidden_code,
        CODES[network.activations[-1]],
        weights,
        np.array(offsets, dtype=np.int64),
        np.array(widths, dtype=np.int64),
    )


def run(packed, x, out, column):
    """Evaluate a network packed by :func:`pack` into ``out[:, column]``."""
    hidden_code, output_code, weights, offsets, widths = packed
    evaluate(hidden_code, output_code, x, out, column, weights, offsets, widths)
