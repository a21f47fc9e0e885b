"""Build small network directories with random weights, for fast tests."""

from neurosynchro.config import init_nndir, lock_domain_range
from neurosynchro.network import Network
from neurosynchro.samples import read_training_set, write_table
from neurosynchro.transform import to_internal


def random_nndir(training_set, nndir, rng, hidden=(8, 8), activation="tanh"):
    """Transform, lock and fill ``nndir`` with seeded random networks."""
    table, suffixes, _ = to_internal(training_set)
    nndir.mkdir(parents=True, exist_ok=True)
    path = nndir / "transformed.txt"
    write_table(path, table, suffixes)
    init_nndir(nndir)
    config = lock_domain_range(read_training_set(path), nndir)
    widths = [len(config.params), *hidden, 1]
    for spec in config.results:
        kernels = [
            rng.normal(0, 0.5, (a, b))
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        ]
        biases = [rng.normal(0, 0.1, b) for b in widths[1:]]
        activations = [activation] * len(hidden) + ["linear"]
        Network(kernels, biases, activations, spec.name).save(
            nndir / f"{spec.name}.npz"
        )
    return config
