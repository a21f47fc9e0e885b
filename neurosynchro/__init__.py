"""neurosynchro: neural approximations of polarized synchrotron coefficients.

The public API. Importing it never imports TensorFlow or Keras; only
training does.
"""

__version__ = "0.2.0.dev0"

from .approximator import PhysicalApproximator  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    NetworkError,
    NeurosynchroError,
    NeurosynchroWarning,
    TableError,
    UsageError,
)
from .pretrained import load_pretrained  # noqa: E402
from .stokes import detrivialize_stokes_basis  # noqa: E402

__all__ = [
    "ConfigError",
    "NetworkError",
    "NeurosynchroError",
    "NeurosynchroWarning",
    "PhysicalApproximator",
    "TableError",
    "UsageError",
    "__version__",
    "detrivialize_stokes_basis",
    "load_pretrained",
    "read_training_set",
]


def __getattr__(name):
    # Table reading needs pandas, which costs a third of a second to import;
    # inference does not, so it is loaded on first use.
    if name == "read_training_set":
        from .samples import read_training_set

        return read_training_set
    raise AttributeError(f"module 'neurosynchro' has no attribute {name!r}")
