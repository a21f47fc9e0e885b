"""The fused engine against the plain per-network numpy evaluation.

The reference is ``Network.__call__`` (neurosynchro.network), layer by layer
in float64; the engine sums in a different order (the first layer's bias
inside the matrix product, stacked products), so the two agree to rounding:
1e-12 relative in float64, 1e-5 in float32. A tolerance relative to each
value alone would fail by chance where an output is a near-cancelling sum, so
the absolute part of each tolerance is scaled by the largest output.
"""

import threading
import tracemalloc

import numpy as np
import pytest

from neurosynchro import PhysicalApproximator
from neurosynchro import engine as engine_module
from neurosynchro.engine import FusedNetworks
from neurosynchro.errors import NetworkError, UsageError
from neurosynchro.network import ACTIVATIONS, Network

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def random_network(rng, widths, activations, name="net"):
    kernels = [
        rng.normal(0.0, 1.0 / np.sqrt(a), (a, b))
        for a, b in zip(widths, widths[1:], strict=False)
    ]
    biases = [rng.normal(0.0, 0.3, b) for b in widths[1:]]
    return Network(kernels, biases, activations, name)


def reference(networks, x):
    return np.stack([network(x) for network in networks], axis=1)


def assert_matches(networks, x, dtype=np.float64, **kwargs):
    got = FusedNetworks(networks, dtype=dtype, **kwargs)(x)
    expected = reference(networks, x)
    assert got.shape == expected.shape
    assert got.dtype == dtype
    scale = np.max(np.abs(expected), initial=1.0)
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * scale)
    return got


@pytest.fixture
def nine(rng):
    """Nine same-shape networks: one hidden layer of 40 relu units."""
    return [
        random_network(rng, [3, 40, 1], ["relu", "linear"], f"n{i}") for i in range(9)
    ]


@pytest.fixture
def default_like(rng):
    """The default trainers' mix: eight 2 x 24 softplus, one 2 x 16 sigmoid."""
    networks = [
        random_network(rng, [3, 24, 24, 1], ["softplus"] * 2 + ["linear"], f"r{i}")
        for i in range(8)
    ]
    networks.insert(
        4, random_network(rng, [3, 16, 16, 1], ["softplus"] * 2 + ["sigmoid"], "s")
    )
    return networks


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_same_shape_networks(nine, rng, dtype):
    assert_matches(nine, rng.normal(size=(500, 3)), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mixed_shapes_keep_their_columns(default_like, rng, dtype):
    engine = FusedNetworks(default_like, dtype=dtype)
    assert len(engine.groups) == 2
    assert_matches(default_like, rng.normal(size=(300, 3)), dtype)


def test_every_shape_and_depth_in_one_engine(rng):
    # Different depths, widths, hidden and final activations, one-layer
    # networks, and equal shapes with different final activations
    # interleaved, so columns must be put back in order.
    names = list(ACTIVATIONS)
    networks = [
        random_network(rng, [4, 5, 1], ["tanh", "sigmoid"]),
        random_network(rng, [4, 1], ["linear"]),
        random_network(rng, [4, 5, 1], ["tanh", "linear"]),
        random_network(rng, [4, 7, 3, 6, 1], ["elu", "silu", "relu", "softplus"]),
        random_network(rng, [4, 5, 1], ["tanh", "sigmoid"]),
        random_network(rng, [4, 1], ["sigmoid"]),
    ] + [random_network(rng, [4, 6, 1], [name, "linear"]) for name in names]
    assert_matches(networks, rng.normal(size=(700, 4)))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_activation_hidden_and_final(rng, name, dtype):
    # Wide inputs reach the tails (softplus and elu far below zero, tanh
    # and sigmoid saturated) as well as the middle.
    networks = [
        random_network(rng, [3, 12, 1], [name, "linear"], "hidden"),
        random_network(rng, [3, 12, 1], ["tanh", name], "final"),
        random_network(rng, [3, 12, 12, 1], [name, name, name], "all"),
    ]
    x = rng.normal(0.0, 8.0, size=(400, 3))
    assert_matches(networks, x, dtype)


def test_activations_at_extreme_values():
    # One unit, identity weights: the output is the activation itself, far
    # into both tails and around zero.
    x = np.array([-800.0, -40.0, -1.0, -1e-300, 0.0, 1e-300, 3.0, 40.0, 800.0])
    networks = [
        Network([np.ones((1, 1))], [np.zeros(1)], [name], name) for name in ACTIVATIONS
    ]
    got = FusedNetworks(networks)(x[:, None])
    np.testing.assert_allclose(got, reference(networks, x[:, None]), rtol=1e-15, atol=0)
    # NaN inputs give NaN outputs (as the reference does), never a number.
    with np.errstate(invalid="ignore"):
        assert np.isnan(FusedNetworks(networks)(np.array([[np.nan]]))).all()


@pytest.mark.parametrize("rows", [0, 1, 2])
def test_tiny_batches(default_like, rng, rows):
    got = assert_matches(default_like, rng.normal(size=(rows, 3)))
    assert got.shape == (rows, 9)


def test_sizes_straddling_the_chunk(default_like, rng):
    engine = FusedNetworks(default_like, chunk_rows=32)
    x = rng.normal(size=(32 * 3 + 1, 3))
    expected = reference(default_like, x)
    scale = np.max(np.abs(expected))
    for rows in (31, 32, 33, 64, 65, 97):
        np.testing.assert_allclose(
            engine(x[:rows]), expected[:rows], rtol=1e-12, atol=1e-12 * scale
        )


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_threads_give_the_same_bits_as_one(default_like, rng, threads, monkeypatch):
    # Each row is computed by the same operations whichever thread runs its
    # chunk, so splitting a call changes no bit, for any split, including
    # spans of unequal length and a short last chunk.
    monkeypatch.setattr(engine_module, "MIN_ROWS_PER_THREAD", 16)
    x = rng.normal(size=(32 * 7 + 5, 3))
    one = FusedNetworks(default_like, chunk_rows=32, threads=1)(x)
    many = FusedNetworks(default_like, chunk_rows=32, threads=threads)(x)
    np.testing.assert_array_equal(many, one)
    np.testing.assert_allclose(one, reference(default_like, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2"])
def test_bad_thread_counts(default_like, threads):
    with pytest.raises(UsageError, match="threads: expected a positive integer"):
        FusedNetworks(default_like, threads=threads)


def test_default_chunk_bounds_buffers_and_products(nine):
    # Nine networks 3 -> 40 -> 1: the fused first layer multiplies (rows, 4)
    # by (4, 360); each output layer is a (rows, 40) matrix-vector product.
    engine = FusedNetworks(nine)
    assert 8 <= engine.chunk_rows <= 1 << 14
    assert engine.chunk_rows * 360 <= engine_module.CHUNK_ELEMENTS
    assert engine.chunk_rows * 4 * 360 <= engine_module.GEMM_MACS
    assert engine.chunk_rows * 40 < engine_module.GEMV_MACS


def test_out_argument_and_input_types(nine, rng):
    x = rng.normal(size=(50, 3))
    engine = FusedNetworks(nine)
    out = np.full((50, 9), np.nan)
    assert engine(x, out=out) is out
    np.testing.assert_array_equal(out, engine(x))
    # float32 and non-contiguous inputs give the same as their float64 copy.
    wide = np.zeros((50, 6))
    wide[:, ::2] = x
    np.testing.assert_array_equal(engine(wide[:, ::2]), engine(x))
    x32 = x.astype(np.float32)
    np.testing.assert_array_equal(engine(x32), engine(x32.astype(float)))


def test_threads_share_one_engine(default_like, rng):
    engine = FusedNetworks(default_like, chunk_rows=16)
    inputs = [rng.normal(size=(400 + 37 * k, 3)) for k in range(6)]
    expected = [engine(x) for x in inputs]
    results = {}
    barrier = threading.Barrier(len(inputs))

    def work(k):
        barrier.wait()
        results[k] = [engine(inputs[k]) for _ in range(15)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k, runs in results.items():
        for got in runs:
            np.testing.assert_array_equal(got, expected[k])
    assert len(results) == len(inputs)


def test_memory_stays_bounded(rng):
    # 2e5 rows through nine networks of 2 x 64: evaluated whole, the hidden
    # activations alone would take 2e5 x 9 x 64 x 8 B = 922 MB. The engine
    # needs the output (14.4 MB) and a few chunk-sized buffers.
    networks = [
        random_network(rng, [3, 64, 64, 1], ["softplus"] * 2 + ["linear"], f"n{i}")
        for i in range(9)
    ]
    engine = FusedNetworks(networks)
    x = rng.normal(size=(200_000, 3))
    engine(x[:100])
    tracemalloc.start()
    try:
        out = engine(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < out.nbytes + (4 << 20)
    check = slice(0, 200_000, 997)
    np.testing.assert_allclose(
        out[check], reference(networks, x[check]), rtol=1e-12, atol=1e-12 * 10
    )


@pytest.mark.parametrize(
    "arguments, error, pattern",
    [
        ({"networks": []}, UsageError, "networks: expected at least one"),
        ({"dtype": np.float16}, UsageError, "dtype: expected float64 or float32"),
        ({"dtype": "complex128"}, UsageError, "dtype: expected float64 or float32"),
        ({"chunk_rows": 0}, UsageError, "chunk_rows: expected a positive integer"),
        ({"chunk_rows": True}, UsageError, "chunk_rows: expected a positive integer"),
        ({"threads": True}, UsageError, "threads: expected a positive integer"),
        ({"threads": 0}, UsageError, "threads: expected a positive integer"),
        ({"dtype": "garbage"}, UsageError, "dtype: expected float64 or float32"),
    ],
)
def test_bad_construction(nine, arguments, error, pattern):
    kwargs = {"networks": nine}
    kwargs.update(arguments)
    with pytest.raises(error, match=pattern):
        FusedNetworks(**kwargs)


def test_networks_must_share_their_inputs(rng, nine):
    odd = random_network(rng, [2, 4, 1], ["relu", "linear"], "odd")
    with pytest.raises(NetworkError, match="odd: takes 2 inputs, but n0 takes 3"):
        FusedNetworks(nine + [odd])


def test_bad_inputs(nine):
    engine = FusedNetworks(nine)
    with pytest.raises(UsageError, match=r"x: expected real numbers of shape \(N, 3\)"):
        engine(np.ones((4, 2)))
    with pytest.raises(UsageError, match="x: expected real numbers"):
        engine(np.ones(3))
    with pytest.raises(UsageError, match="x: expected real numbers"):
        engine(np.array([["a", "b", "c"]]))
    with pytest.raises(UsageError, match="x: expected real numbers"):
        engine(np.ones((4, 3), dtype=bool))
    with pytest.raises(UsageError, match="threads: expected a positive integer"):
        engine(np.ones((4, 3)), threads=True)
    with pytest.raises(UsageError, match=r"out: expected a float array of shape"):
        engine(np.ones((4, 3)), out=np.empty((4, 8)))


def test_mapping_of_networks_keeps_its_order(nine, rng):
    named = {f"k{i}": network for i, network in enumerate(reversed(nine))}
    engine = FusedNetworks(named)
    assert engine.names == tuple(n.name for n in reversed(nine))
    x = rng.normal(size=(20, 3))
    np.testing.assert_allclose(
        engine(x), reference(list(reversed(nine)), x), rtol=1e-12, atol=1e-12
    )


# -- through PhysicalApproximator ----------------------------------------------


@pytest.fixture(scope="module")
def nndir(tmp_path_factory):
    from nnfactory import random_nndir
    from test_transform import synthetic

    rng = np.random.default_rng(5)
    path = tmp_path_factory.mktemp("nn") / "engine"
    ts = synthetic(rng, n=300)
    ts.table["theta_e"] = 10 ** rng.uniform(0, 2, 300)
    ts.suffixes["theta_e"] = "log"
    ts.table = ts.table[["s", "theta", "theta_e"] + ts.results]
    ts.suffixes = {c: ts.suffixes[c] for c in ts.table.columns}
    random_nndir(ts, path, rng, hidden=(16, 16), activation="softplus")
    return path


def test_approximator_float32_agrees_with_float64(nndir, rng):
    import warnings

    from neurosynchro.errors import NeurosynchroWarning

    n = 2000
    args = dict(
        nu=10 ** rng.uniform(9, 12, n),
        B=10 ** rng.uniform(0, 2, n),
        n_e=1e4,
        theta=rng.uniform(0.1, 1.5, n),
        theta_e=10 ** rng.uniform(0.2, 1.8, n),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        c64, oos64 = PhysicalApproximator(nndir).compute_all_nontrivial(**args)
        approx32 = PhysicalApproximator(nndir, dtype=np.float32)
        c32, _ = approx32.compute_all_nontrivial(**args)
    assert approx32.engine.dtype == np.float32
    assert c32.dtype == np.float64
    # Normalized outputs differ by ~1e-7 of their scale; log-mapped results
    # turn that into a relative error of ln(10) x_std x 1e-7 (x_std ~ 10
    # decades here), and rho_Q's sign may flip right at zero.
    close = np.isclose(c32, c64, rtol=1e-4, atol=0)
    assert close[:, :6].all()
    assert close[:, 6:].mean() > 0.99


def test_approximator_rejects_other_dtypes(nndir):
    with pytest.raises(UsageError, match="dtype: expected float64 or float32"):
        PhysicalApproximator(nndir, dtype=np.int32)


# The compiled kernel (neurosynchro.kernels), forced on with compiled=True;
# by default it takes calls of COMPILED_MIN_ROWS rows and more.


def compilable_networks(rng, n_in):
    # Every branch of kernels._layer: first layers of 3, 4 and other input
    # widths (the row loop, or a matrix product), one-layer networks, deep
    # ones, and each compiled activation hidden and final.
    return [
        random_network(rng, [n_in, 40, 1], ["relu", "linear"], "relu"),
        random_network(rng, [n_in, 24, 24, 1], ["tanh", "tanh", "linear"], "tanh"),
        random_network(rng, [n_in, 16, 16, 1], ["tanh", "tanh", "sigmoid"], "sign"),
        random_network(rng, [n_in, 1], ["linear"], "plain"),
        random_network(rng, [n_in, 1], ["sigmoid"], "logistic"),
        random_network(rng, [n_in, 9, 7, 5, 1], ["sigmoid"] * 3 + ["tanh"], "deep"),
        random_network(rng, [n_in, 6, 1], ["linear", "relu"], "lin"),
    ]


@pytest.mark.parametrize("n_in", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_kernel_matches_the_reference(rng, n_in, dtype):
    networks = compilable_networks(rng, n_in)
    if dtype == np.float32:
        # float32 compiles relu and linear networks only.
        networks = [n for n in networks if set(n.activations) <= {"relu", "linear"}]
    engine = FusedNetworks(networks, dtype=dtype, compiled=True)
    assert engine._compiled_ok
    x = rng.normal(0.0, 3.0, size=(200, n_in))
    expected = reference(networks, x)
    scale = np.max(np.abs(expected))
    tolerance = TOLERANCE[dtype]
    # Sizes around the kernel's block of 64 rows.
    for rows in (1, 63, 64, 65, 200):
        got = engine(x[:rows])
        assert got.dtype == dtype
        np.testing.assert_allclose(
            got, expected[:rows], rtol=tolerance, atol=tolerance * scale
        )


def test_compiled_activations_at_extreme_values():
    x = np.array(
        [-800.0, -40.0, -19.0, -1.0, -1e-300, 0.0, 1e-300, 1e-8, 0.3, 3.0, 40.0, 800.0]
    )
    networks = [
        Network([np.ones((1, 1))], [np.zeros(1)], [name], name)
        for name in engine_module.COMPILED_ACTIVATIONS
    ]
    got = FusedNetworks(networks, compiled=True)(x[:, None])
    # tanh from the kernel's own exponential: within 1e-15 of numpy's. The
    # sigmoid, (1 + tanh(x/2)) / 2 in both, inherits one rounding of tanh
    # near -1 as an absolute error of about 1e-16 (the reference's own).
    np.testing.assert_allclose(
        got, reference(networks, x[:, None]), rtol=1e-15, atol=1.2e-16
    )
    with np.errstate(invalid="ignore"):
        assert np.isnan(
            FusedNetworks(networks, compiled=True)(np.array([[np.nan]]))
        ).all()


def test_compiled_kernel_is_used_only_where_it_can_be(rng, default_like):
    tanh = [random_network(rng, [3, 8, 8, 1], ["tanh"] * 2 + ["linear"])]
    mixed = [random_network(rng, [3, 8, 8, 1], ["tanh", "relu", "linear"])]
    assert FusedNetworks(tanh)._compiled_ok
    assert not FusedNetworks(tanh, compiled=False)._compiled_ok
    # softplus has no compiled version; hidden layers must share one.
    assert not FusedNetworks(default_like, compiled=True)._compiled_ok
    assert not FusedNetworks(mixed, compiled=True)._compiled_ok
    assert not FusedNetworks(tanh, dtype=np.float32)._compiled_ok
    relu = [random_network(rng, [3, 8, 1], ["relu", "linear"])]
    assert FusedNetworks(relu, dtype=np.float32)._compiled_ok
    with pytest.raises(UsageError, match="compiled: expected True, False or None"):
        FusedNetworks(tanh, compiled="yes")


@pytest.mark.parametrize("threads", [2, 3])
def test_compiled_threads_give_the_same_bits_as_one(rng, threads, monkeypatch):
    monkeypatch.setattr(engine_module, "MIN_ROWS_PER_THREAD", 16)
    networks = compilable_networks(rng, 3)
    x = rng.normal(size=(64 * 7 + 5, 3))
    one = FusedNetworks(networks, threads=1, compiled=True)(x)
    many = FusedNetworks(networks, threads=threads, compiled=True)(x)
    np.testing.assert_array_equal(many, one)


def test_large_calls_take_the_compiled_kernel_by_default(rng, monkeypatch):
    from neurosynchro import kernels

    calls = []
    original = kernels.run
    monkeypatch.setattr(kernels, "run", lambda *a: calls.append(1) or original(*a))
    networks = compilable_networks(rng, 3)
    engine = FusedNetworks(networks, threads=1)
    x = rng.normal(size=(engine_module.COMPILED_MIN_ROWS, 3))
    engine(x[:100])
    assert not calls
    got = engine(x)
    assert len(calls) == len(networks)
    expected = reference(networks, x)
    np.testing.assert_allclose(
        got, expected, rtol=1e-12, atol=1e-12 * np.max(np.abs(expected))
    )
    # An out array of another type is filled through a temporary.
    out = np.empty((len(x), len(networks)), dtype=np.float32)
    engine(x, out=out)
    np.testing.assert_allclose(out, got, rtol=1e-6, atol=1e-6 * np.max(np.abs(got)))
