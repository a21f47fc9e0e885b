"""Evaluate all the result networks of a directory together, in one pass.

A network directory holds one small dense network per internal result (up to
nine), all fed the same few normalized inputs. Evaluating them one after the
other, layer by layer, spends most of its time on numpy call overhead and on
arrays that spill out of the CPU caches. :class:`FusedNetworks` evaluates them
together:

- the first layers of all networks become one matrix product: their kernels
  are concatenated side by side, with the biases as one more kernel row fed by
  a column of ones (so no separate bias pass);
- networks whose later layers have the same widths and hidden activations
  form a group whose later layers run as one stacked (batched) matrix product
  per layer; groups of different shapes are evaluated one after the other, so
  any mix of architectures is handled;
- rows are processed in chunks sized so that the widest intermediate array
  stays in the CPU's level-2 cache, in buffers allocated once per call, with
  every activation computed in place;
- a large call is split into contiguous spans of chunks, one per CPU core,
  evaluated on a shared thread pool (numpy releases the GIL inside matrix
  products and elementwise loops, so the spans run in parallel).

Large calls (at least :data:`COMPILED_MIN_ROWS` rows) go to a compiled
kernel instead (:mod:`neurosynchro.kernels`, numba), which keeps each block
of rows in registers and cache from the inputs to the output and computes
the activations in place; it is several times faster on large batches
(``benchmarks/bench_inference.py``). Small calls stay on numpy: importing
numba alone takes 0.2-0.5 s, more than the 0.3 s budget for loading a
network directory and making a first call, and the first compiled call
compiles the kernel (a few seconds, once: numba caches it on disk).
"""

import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import NetworkError, UsageError
from .network import ACTIVATIONS

logger = logging.getLogger(__name__)

#: Floating-point types the engine computes in.
DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

#: Elements in the widest per-chunk intermediate array: 2**17 float64 values
#: (1 MiB) fit the level-2 cache of current x86 cores.
CHUNK_ELEMENTS = 1 << 17

#: Multiply-adds of the largest matrix-matrix product (gemm) of a chunk, and
#: of the largest matrix-vector product (gemv, the output layers). Above
#: these, 65536 x 4 and 2304 x 4 with OpenBLAS's default
#: GEMM_MULTITHREAD_THRESHOLD of 4, OpenBLAS splits a product over its
#: threads (gemm above GEMM_MACS, gemv from GEMV_MACS on). For products
#: this small that was never clearly faster here, and on a busy machine it
#: was up to ten times slower (benchmarks/bench_inference.py shows both), so
#: chunks stay below: the engine runs on one thread per call, and callers
#: may use several threads (see FusedNetworks).
GEMM_MACS = 65536 * 4
GEMV_MACS = 2304 * 4

#: Most threads one call is split over by default, and the fewest rows each
#: thread must get: below that, starting threads costs more than it saves.
MAX_THREADS = 8
MIN_ROWS_PER_THREAD = 4096

#: Rows from which a call uses the compiled kernel (when ``compiled`` is not
#: False and every network has a compiled version). At 1000 rows the kernel
#: was already 2-4 times faster on one hidden layer of 300 relu units.
COMPILED_MIN_ROWS = 1000

_POOL = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _available_cores():
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pool(threads):
    """The module's thread pool, grown to at least ``threads`` workers."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL_SIZE < threads:
            # A replaced pool finishes its work; its threads then exit.
            old, _POOL = _POOL, ThreadPoolExecutor(threads, "neurosynchro-engine")
            _POOL_SIZE = threads
            if old is not None:
                old.shutdown(wait=False)
        return _POOL


#: Bounds on the rows per chunk, whatever the network widths.
MIN_CHUNK_ROWS = 8
MAX_CHUNK_ROWS = 1 << 14


def _relu(h, scratch, zeros):
    # A same-shaped array of zeros takes numpy's vectorized binary loop; a
    # scalar zero takes a slower broadcasting loop (about twice the time).
    np.maximum(h, zeros, out=h)


def _tanh(h, scratch, zeros):
    np.tanh(h, out=h)


def _sigmoid(h, scratch, zeros):
    # Same operations, in the same order, as network._sigmoid.
    np.multiply(h, 0.5, out=h)
    np.tanh(h, out=h)
    np.add(h, 1.0, out=h)
    np.multiply(h, 0.5, out=h)


def _softplus(h, scratch, zeros):
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|): what np.logaddexp(0, x)
    # computes, but with numpy's vectorized exp and log1p loops, about four
    # times faster than logaddexp's scalar loop.
    np.abs(h, out=scratch)
    np.negative(scratch, out=scratch)
    np.exp(scratch, out=scratch)
    np.log1p(scratch, out=scratch)
    np.maximum(h, zeros, out=h)
    np.add(h, scratch, out=h)


def _silu(h, scratch, zeros):
    np.multiply(h, 0.5, out=scratch)
    np.tanh(scratch, out=scratch)
    np.add(scratch, 1.0, out=scratch)
    np.multiply(scratch, 0.5, out=scratch)
    np.multiply(h, scratch, out=h)


def _elu(h, scratch, zeros):
    # max(x, 0) + expm1(min(x, 0)) equals x for x > 0 and expm1(x) otherwise,
    # exactly, as network._elu does with np.where.
    np.minimum(h, zeros, out=scratch)
    np.expm1(scratch, out=scratch)
    np.maximum(h, zeros, out=h)
    np.add(h, scratch, out=h)


def _linear(h, scratch, zeros):
    pass


#: In-place versions of :data:`neurosynchro.network.ACTIVATIONS`, each called
#: as ``f(h, scratch, zeros)`` with three arrays of one shape.
IN_PLACE = {
    "linear": _linear,
    "relu": _relu,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "silu": _silu,
    "elu": _elu,
}


#: Activations the compiled kernel has (see neurosynchro.kernels.CODES).
COMPILED_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid")


def _compilable(network, dtype):
    """Whether the compiled kernel can evaluate ``network`` (kernels.pack)."""
    allowed = COMPILED_ACTIVATIONS if dtype == np.float64 else ("linear", "relu")
    return (
        set(network.activations) <= set(allowed)
        and len(set(network.activations[:-1])) <= 1
    )


def _activate(name, h, scratch, zeros):
    function = IN_PLACE.get(name)
    if function is None:
        # An activation added to network.ACTIVATIONS but not here still
        # evaluates correctly, only with a temporary array.
        h[...] = ACTIVATIONS[name](h)
    else:
        function(h, scratch, zeros)


def _runs(labels):
    """``(start, stop, label)`` for each run of equal consecutive labels."""
    runs = []
    for i, label in enumerate(labels):
        if runs and runs[-1][2] == label:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1, label])
    return [tuple(r) for r in runs]


def _frozen(array, dtype):
    array = np.array(array, dtype=dtype, order="C")
    array.flags.writeable = False
    return array


class _Group:
    """Networks with the same layer widths and hidden activations.

    Attributes
    ----------
    columns : ndarray of int, shape (G,)
        Output column of each member, in member order.
    start : int
        First column of the group's block in the fused first layer; member
        ``g`` owns columns ``start + g * width : start + (g + 1) * width``.
    width : int
        Width of the first layer.
    layers : list of (kernels, biases, activation)
        Layers after the first: stacked kernels, shape (G, n_in, n_out), and
        biases, shape (G, 1, n_out); ``activation`` is None for the last
        layer, whose activations are in ``final_runs``.
    final_runs : list of (start, stop, name)
        Members ``start:stop`` end with activation ``name``.
    """

    def __init__(self, members, columns, start, dtype):
        self.columns = np.array(columns)
        self.size = len(members)
        self.start = start
        self.width = members[0].kernels[0].shape[1]
        self.layers = []
        depth = len(members[0].kernels)
        for i in range(1, depth):
            kernels = _frozen([m.kernels[i] for m in members], dtype)
            biases = _frozen([m.biases[i][None, :] for m in members], dtype)
            activation = members[0].activations[i] if i < depth - 1 else None
            self.layers.append((kernels, biases, activation))
        self.final_runs = _runs([m.activations[-1] for m in members])
        # Output columns in member order, as a slice where they are
        # consecutive (the common case), which assigns faster.
        c = self.columns
        if np.array_equal(c, np.arange(c[0], c[0] + len(c))):
            self.target = slice(int(c[0]), int(c[0]) + len(c))
        else:
            self.target = c
        # The common case of linear outputs written to consecutive columns
        # takes a shortcut (see FusedNetworks._chunk).
        self.linear_output = (
            bool(self.layers)
            and self.final_runs == [(0, self.size, "linear")]
            and isinstance(self.target, slice)
        )
        if self.linear_output:
            self.output_bias = _frozen(self.layers[-1][1][:, 0, 0], dtype)

    @property
    def stop(self):
        """One past the group's last column in the fused first layer."""
        return self.start + self.size * self.width


class FusedNetworks:
    """Evaluate several networks on the same inputs, fused into one pass.

    Parameters
    ----------
    networks : sequence or mapping of :class:`~neurosynchro.network.Network`
        The networks, all taking the same inputs; output column ``k`` is
        network ``k`` (for a mapping, in its iteration order).
    dtype : {numpy.float64, numpy.float32}
        Type the weights are stored and the products computed in. float32
        is about twice as fast and agrees with float64 to about 1e-6
        relative (normalized outputs).
    chunk_rows : int, optional
        Rows evaluated at once. By default, as many as keep the widest
        intermediate array at :data:`CHUNK_ELEMENTS` elements.
    threads : int, optional
        Threads a large call is split over (contiguous spans of rows, each
        with its own buffers). By default the number of CPU cores this
        process may use, at most :data:`MAX_THREADS`; calls of fewer than
        :data:`MIN_ROWS_PER_THREAD` rows per thread run on the calling
        thread alone. Pass 1 when the caller already runs one evaluation
        per core.
    compiled : bool, optional
        Whether to use the compiled kernel (:mod:`neurosynchro.kernels`):
        by default for calls of at least :data:`COMPILED_MIN_ROWS` rows;
        True for every call, False never. It is used only when every
        network has a compiled version: linear, relu, tanh or sigmoid
        activations (in float32 only linear and relu), the same in every
        hidden layer.

    Raises
    ------
    UsageError
        If ``networks`` is empty, or ``dtype`` or ``chunk_rows`` is invalid.
    NetworkError
        If the networks do not all take the same number of inputs, or one
        has more than one output.

    Notes
    -----
    Layer ``i`` of each network computes ``activation_i(x @ kernel_i +
    bias_i)`` (see :mod:`neurosynchro.network`); the fused evaluation gives
    the same values up to rounding (1e-12 relative in float64 in the
    tests): sums are taken in a different order, as the first layer's bias
    is added inside the matrix product.

    An instance holds only read-only arrays, and every call allocates its
    own work buffers, so one instance can be called from several threads at
    once. Numpy releases the GIL inside matrix products and elementwise
    loops, so such calls do run in parallel. Memory use beyond the output is
    a few times ``chunk_rows`` times the total width of the networks,
    whatever the number of rows.
    """

    def __init__(
        self, networks, dtype=np.float64, chunk_rows=None, threads=None, compiled=None
    ):
        if hasattr(networks, "values"):
            networks = list(networks.values())
        networks = list(networks)
        if not networks:
            raise UsageError("networks: expected at least one network, got none")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise UsageError(
                f"dtype: expected float64 or float32, got {dtype!r}"
            ) from None
        if self.dtype not in DTYPES:
            raise UsageError(f"dtype: expected float64 or float32, got {dtype!r}")
        self.names = tuple(str(n.name) for n in networks)
        self.n_inputs = networks[0].kernels[0].shape[0]
        for network in networks:
            if network.kernels[0].shape[0] != self.n_inputs:
                raise NetworkError(
                    f"{network.name}: takes {network.kernels[0].shape[0]} inputs, "
                    f"but {networks[0].name} takes {self.n_inputs}; fused networks "
                    "must share their inputs"
                )
            if network.kernels[-1].shape[1] != 1:
                raise NetworkError(
                    f"{network.name}: has {network.kernels[-1].shape[1]} outputs; "
                    "expected 1"
                )
        self.n_outputs = len(networks)
        if compiled not in (None, True, False):
            raise UsageError(
                f"compiled: expected True, False or None, got {compiled!r}"
            )
        # In float32, numpy's own tanh is vectorized in float32 and beats the
        # kernel's (which computes activations in float64): measured 0.6x.
        self._compiled_ok = compiled is not False and all(
            _compilable(n, self.dtype) for n in networks
        )
        self._compiled_min_rows = 1 if compiled else COMPILED_MIN_ROWS
        self._networks = tuple(networks)
        self._packed = None
        self._plan(networks)
        self._widest_group = max(
            [0] + [g.size * k.shape[2] for g in self.groups for k, _, _ in g.layers]
        )
        widest = max(self._first_kernel.shape[1], self._widest_group)
        if chunk_rows is None:
            gemm = [self._first_kernel.size] + [
                k.shape[1] * k.shape[2]
                for g in self.groups
                for k, _, _ in g.layers
                if k.shape[2] > 1
            ]
            gemv = [
                k.shape[1]
                for g in self.groups
                for k, _, _ in g.layers
                if k.shape[2] == 1
            ]
            chunk_rows = min(
                CHUNK_ELEMENTS // widest,
                GEMM_MACS // max(gemm),
                (GEMV_MACS - 1) // max(gemv, default=1),
            )
            chunk_rows = min(max(chunk_rows, MIN_CHUNK_ROWS), MAX_CHUNK_ROWS)
        elif isinstance(chunk_rows, bool) or not (
            isinstance(chunk_rows, int | np.integer) and chunk_rows > 0
        ):
            raise UsageError(
                f"chunk_rows: expected a positive integer, got {chunk_rows!r}"
            )
        self.chunk_rows = int(chunk_rows)
        if threads is None:
            threads = min(_available_cores(), MAX_THREADS)
        elif isinstance(threads, bool) or not (
            isinstance(threads, int | np.integer) and threads > 0
        ):
            raise UsageError(f"threads: expected a positive integer, got {threads!r}")
        self.threads = int(threads)
        # One read-only array of zeros serves every call's activations.
        self._zeros = _frozen(np.zeros(self.chunk_rows * widest), self.dtype)
        self._needs_scratch = any(
            name not in ("linear", "relu", "tanh", "sigmoid")
            for name in self._activation_names()
        )

    def _plan(self, networks):
        """Group the networks and build the fused first layer."""
        signatures = {}
        for column, network in enumerate(networks):
            shape = tuple(k.shape[1] for k in network.kernels)
            signature = (shape, tuple(network.activations[:-1]))
            signatures.setdefault(signature, []).append(column)
        self.groups = []
        kernels, start = [], 0
        first_activations = []
        for columns in signatures.values():
            # Members sorted by final activation so that each activation is
            # one run of members (sorted() is stable: order kept otherwise).
            columns = sorted(columns, key=lambda c: networks[c].activations[-1])
            members = [networks[c] for c in columns]
            group = _Group(members, columns, start, self.dtype)
            self.groups.append(group)
            for member in members:
                # The bias row rides on the column of ones appended to x.
                kernels.append(np.vstack([member.kernels[0], member.biases[0]]))
                first_activations += [member.activations[0]] * group.width
            start = group.stop
        self._first_kernel = _frozen(np.hstack(kernels), self.dtype)
        # A one-layer group's first layer is its output layer: its
        # activation is applied there, member by member.
        self._first_runs = _runs(first_activations)

    def _activation_names(self):
        names = {name for _, _, name in self._first_runs}
        for group in self.groups:
            names.update(a for _, _, a in group.layers if a is not None)
            names.update(name for _, _, name in group.final_runs)
        return names

    def __repr__(self):
        shapes = "; ".join(
            f"{g.size} x {[g.width] + [k.shape[2] for k, _, _ in g.layers]}"
            for g in self.groups
        )
        return (
            f"FusedNetworks({self.n_outputs} networks, {self.n_inputs} inputs, "
            f"{self.dtype.name}, {self.chunk_rows} rows per chunk; widths {shapes})"
        )

    def __call__(self, x, out=None, threads=None, compiled=None):
        """Evaluate every network on normalized inputs.

        Parameters
        ----------
        x : array_like, shape (N, n_inputs)
            Normalized inputs, one row per point (any real type; converted to
            :attr:`dtype` chunk by chunk, so no full-size copy is made).
        out : ndarray, shape (N, n_outputs), optional
            Where to write the result; by default a new array of
            :attr:`dtype`.
        threads : int, optional
            Threads for this call, instead of :attr:`threads`.
        compiled : bool, optional
            For this call, whether to use the compiled kernel (where it can
            be), instead of deciding by the number of rows. The two paths
            agree to rounding, not bit for bit; a caller that splits one
            large call into pieces passes the large call's choice.

        Returns
        -------
        ndarray, shape (N, n_outputs)
            Normalized outputs; column ``k`` is network ``k``.

        Raises
        ------
        UsageError
            If ``x`` or ``out`` has the wrong shape or type.
        """
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_inputs or x.dtype.kind not in "iuf":
            raise UsageError(
                f"x: expected real numbers of shape (N, {self.n_inputs}), got "
                f"{x.dtype} of shape {x.shape}"
            )
        n_rows = x.shape[0]
        if out is None:
            out = np.empty((n_rows, self.n_outputs), dtype=self.dtype)
        elif not (
            isinstance(out, np.ndarray)
            and out.shape == (n_rows, self.n_outputs)
            and out.dtype.kind == "f"
        ):
            raise UsageError(
                f"out: expected a float array of shape ({n_rows}, {self.n_outputs})"
            )
        if n_rows == 0:
            return out
        if threads is None:
            threads = self.threads
        elif isinstance(threads, bool) or not (
            isinstance(threads, int | np.integer) and threads > 0
        ):
            raise UsageError(f"threads: expected a positive integer, got {threads!r}")
        span = self._span
        if compiled is None:
            compiled = n_rows >= self._compiled_min_rows
        if self._compiled_ok and compiled:
            span = self._compiled_span
            x = np.ascontiguousarray(x, dtype=self.dtype)
            if out.dtype != self.dtype or not out.flags.c_contiguous:
                result = self(x, None, threads, compiled)
                out[...] = result
                return out
        threads = min(threads, n_rows // MIN_ROWS_PER_THREAD)
        if threads <= 1:
            span(x, out)
            return out
        # Contiguous spans, one per thread, each a whole number of chunks.
        chunks = -(-n_rows // self.chunk_rows)
        bounds = [
            min(n_rows, (chunks * i // threads) * self.chunk_rows)
            for i in range(threads + 1)
        ]
        pool = _pool(threads)
        futures = [
            pool.submit(span, x[a:b], out[a:b])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            if b > a
        ]
        for future in futures:
            future.result()
        return out

    def _compiled_span(self, x, out):
        """Evaluate consecutive rows with the compiled kernel, network by network."""
        from . import kernels

        packed = self._packed
        if packed is None:
            packed = [kernels.pack(n, self.dtype) for n in self._networks]
            self._packed = packed
        for column, arrays in enumerate(packed):
            kernels.run(arrays, x, out, column)

    def _span(self, x, out):
        """Evaluate consecutive rows chunk by chunk, with this call's buffers."""
        n_rows = x.shape[0]
        rows = min(n_rows, self.chunk_rows)
        buffers = self._buffers(rows)
        full = self._views(buffers, rows)
        for start in range(0, n_rows, rows):
            stop = min(start + rows, n_rows)
            views = full if stop - start == rows else self._views(buffers, stop - start)
            self._chunk(x[start:stop], out[start:stop], views)

    def _buffers(self, rows):
        """Flat work arrays for chunks of up to ``rows`` rows (one call's own)."""
        n_first = self._first_kernel.shape[1]
        inputs = np.empty(rows * (self.n_inputs + 1), dtype=self.dtype)
        first = np.empty(rows * n_first, dtype=self.dtype)
        # Two buffers, used in turn by the later layers of each group.
        widest = self._widest_group
        pair = [np.empty(rows * widest, dtype=self.dtype) for _ in range(2)]
        scratch = None
        if self._needs_scratch:
            scratch = np.empty(rows * max(widest, n_first), dtype=self.dtype)
        return inputs, first, pair, scratch

    def _views(self, buffers, n):
        """Shaped views of ``buffers`` for a chunk of ``n`` rows."""
        inputs, first, pair, scratch = buffers
        n_first = self._first_kernel.shape[1]
        inputs = inputs[: n * (self.n_inputs + 1)].reshape(n, self.n_inputs + 1)
        inputs[:, -1] = 1.0
        first = first[: n * n_first].reshape(n, n_first)

        def like(shape):
            size = math.prod(shape)
            zeros = self._zeros[:size].reshape(shape)
            return (
                scratch[:size].reshape(shape) if scratch is not None else None
            ), zeros

        first_helpers = like(first.shape)
        groups = []
        for group in self.groups:
            layers = []
            for i, (kernels, _, _) in enumerate(group.layers):
                shape = (group.size, n, kernels.shape[2])
                size = math.prod(shape)
                layers.append((pair[i % 2][:size].reshape(shape), *like(shape)))
            groups.append(layers)
        return inputs, first, first_helpers, groups

    def _chunk(self, x, out, views):
        inputs, first, (scratch, zeros), groups = views
        n = x.shape[0]
        inputs[:, :-1] = x
        np.matmul(inputs, self._first_kernel, out=first)
        for start, stop, name in self._first_runs:
            if stop - start == first.shape[1]:
                _activate(name, first, scratch, zeros)
            else:
                part = slice(start, stop)
                _activate(
                    name,
                    first[:, part],
                    scratch[:, part] if scratch is not None else None,
                    zeros[:, part],
                )
        for group, layers in zip(self.groups, groups, strict=True):
            block = first[:, group.start : group.stop]
            if not group.layers:
                out[:, group.target] = block
                continue
            # (n, G * width) -> (G, n, width): a view, with each member's
            # matrix strided so BLAS reads it in place.
            h = block.reshape(n, group.size, group.width).transpose(1, 0, 2)
            *hidden, last = zip(group.layers, layers, strict=True)
            for (kernels, biases, activation), (buffer, scratch, zeros) in hidden:
                np.matmul(h, kernels, out=buffer)
                np.add(buffer, biases, out=buffer)
                _activate(activation, buffer, scratch, zeros)
                h = buffer
            (kernels, biases, _), (buffer, scratch, zeros) = last
            np.matmul(h, kernels, out=buffer)
            if group.linear_output:
                # Bias and copy in one pass: out's columns are contiguous
                # in memory only across members, hence the transpose.
                np.add(buffer[:, :, 0].T, group.output_bias, out=out[:, group.target])
                continue
            np.add(buffer, biases, out=buffer)
            for start, stop, name in group.final_runs:
                part = slice(start, stop)
                _activate(
                    name,
                    buffer[part],
                    None if scratch is None else scratch[part],
                    zeros[part],
                )
            out[:, group.target] = buffer[:, :, 0].T
