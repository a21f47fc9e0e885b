"""Evaluate trained networks with numpy alone, from a portable weights file.

The weights file
----------------
Each trained result ``NAME`` is saved as ``NAME.npz``: a plain numpy ``.npz``
archive (a zip of ``.npy`` arrays, loaded with ``allow_pickle=False``, so it
can never run code) holding, for layers ``i = 0 .. L-1``:

``kernel_i``
    float32 or float64 array of shape ``(n_in_i, n_out_i)``;
``bias_i``
    float32 or float64 array of shape ``(n_out_i,)``;
``activation_i``
    0-d unicode array: ``linear``, ``relu``, ``tanh``, ``sigmoid``,
    ``softplus``, ``silu`` or ``elu``;

and ``format_version`` (0-d int, currently 1). Members may be stored
deflated (``numpy.savez_compressed``); evaluation is in float64. Layer ``i`` computes
``y = activation_i(x @ kernel_i + bias_i)``; the input ``x`` of layer 0 is
the row of normalized inputs, in the order of ``[[params]]`` in
``nn_config.toml``; the last layer has one output, the normalized result.
A C or Fortran program can read the arrays with any ``.npy`` reader.
"""

import logging
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import NetworkError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _silu(x):
    return x * _sigmoid(x)


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


#: Activation functions the numpy path can evaluate, by Keras name.
ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "silu": _silu,
    "elu": _elu,
}


def _compact(array):
    """Store as float32 when that loses nothing (Keras trains in float32)."""
    single = array.astype(np.float32)
    return single if np.array_equal(single, array) else array


class Network:
    """A dense feed-forward network evaluated with numpy.

    Parameters
    ----------
    kernels : list of ndarray
        Weight matrices, ``kernels[i]`` of shape ``(n_in_i, n_out_i)``.
    biases : list of ndarray
        Bias vectors, ``biases[i]`` of shape ``(n_out_i,)``.
    activations : list of str
        Activation names, one per layer (see :data:`ACTIVATIONS`).
    name : str
        What the network computes, for messages.
    """

    def __init__(self, kernels, biases, activations, name="network"):
        self.name = name
        self.kernels = [np.ascontiguousarray(k, dtype=np.float64) for k in kernels]
        self.biases = [np.ascontiguousarray(b, dtype=np.float64) for b in biases]
        self.activations = [str(a) for a in activations]
        self._check()

    def _check(self):
        where = self.name
        if not self.kernels:
            raise NetworkError(f"{where}: no layers")
        if not (len(self.kernels) == len(self.biases) == len(self.activations)):
            raise NetworkError(f"{where}: layer arrays do not pair up")
        for i, (kernel, bias, act) in enumerate(
            zip(self.kernels, self.biases, self.activations, strict=True)
        ):
            if kernel.ndim != 2 or bias.shape != (kernel.shape[1],):
                raise NetworkError(
                    f"{where}: layer {i}: kernel {kernel.shape} and bias "
                    f"{bias.shape} do not match; expected (n_in, n_out) and (n_out,)"
                )
            if i and kernel.shape[0] != self.kernels[i - 1].shape[1]:
                raise NetworkError(
                    f"{where}: layer {i} takes {kernel.shape[0]} inputs but layer "
                    f"{i - 1} gives {self.kernels[i - 1].shape[1]}"
                )
            if act not in ACTIVATIONS:
                raise NetworkError(
                    f"{where}: layer {i}: unknown activation {act!r}; expected one "
                    "of " + ", ".join(ACTIVATIONS)
                )
            if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
                raise NetworkError(f"{where}: layer {i} has non-finite weights")
        if self.kernels[-1].shape[1] != 1:
            raise NetworkError(
                f"{where}: the last layer has {self.kernels[-1].shape[1]} outputs; "
                "expected 1"
            )

    @property
    def n_inputs(self):
        return self.kernels[0].shape[0]

    def __call__(self, x):
        """Evaluate on normalized inputs.

        Parameters
        ----------
        x : ndarray, shape (N, n_inputs)

        Returns
        -------
        ndarray, shape (N,)
            Normalized outputs.
        """
        for kernel, bias, act in zip(
            self.kernels, self.biases, self.activations, strict=True
        ):
            x = ACTIVATIONS[act](x @ kernel + bias)
        return x[:, 0]

    def save(self, path):
        """Write the portable ``.npz`` weights file (atomically)."""
        from .fileio import atomic_path

        arrays = {"format_version": np.array(FORMAT_VERSION)}
        for i, (kernel, bias, act) in enumerate(
            zip(self.kernels, self.biases, self.activations, strict=True)
        ):
            arrays[f"kernel_{i}"] = _compact(kernel)
            arrays[f"bias_{i}"] = _compact(bias)
            arrays[f"activation_{i}"] = np.array(act)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, **arrays)

    @classmethod
    def load(cls, path):
        """Read a ``.npz`` weights file; never unpickles anything."""
        path = Path(path)
        if not path.is_file():
            raise NetworkError(f"{path}: missing network weights file")
        if not zipfile.is_zipfile(path):
            raise NetworkError(
                f"{path}: not a readable .npz file; expected a zip archive of .npy "
                "arrays"
            )
        arrays = {}
        member = None
        try:
            with np.load(path, allow_pickle=False) as archive:
                for member in archive.files:
                    arrays[member] = archive[member]
        except ValueError as error:
            if "allow_pickle" in str(error):
                raise NetworkError(
                    f"{path}: refused: holds pickled objects; expected plain "
                    "numeric arrays"
                ) from None
            where = f"member {member!r}: " if member else ""
            raise NetworkError(
                f"{path}: not a readable .npz file ({where}{error})"
            ) from None
        except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as error:
            where = f"member {member!r}: " if member else ""
            raise NetworkError(
                f"{path}: not a readable .npz file ({where}{error})"
            ) from None
        for key, value in arrays.items():
            if not isinstance(value, np.ndarray):
                raise NetworkError(
                    f"{path}: member {key!r} is not a .npy array; expected plain "
                    "numeric arrays"
                )
        version = arrays.get("format_version")
        if (
            version is None
            or version.shape != ()
            or version.dtype.kind not in "iu"
            or int(version) != FORMAT_VERSION
        ):
            raise NetworkError(
                f"{path}: format_version {version!r}; expected the integer "
                f"{FORMAT_VERSION}"
            )
        kernels, biases, activations = [], [], []
        i = 0
        while f"kernel_{i}" in arrays:
            try:
                kernels.append(arrays[f"kernel_{i}"])
                biases.append(arrays[f"bias_{i}"])
                activations.append(str(arrays[f"activation_{i}"]))
            except KeyError as error:
                raise NetworkError(f"{path}: layer {i}: missing {error}") from None
            if kernels[-1].dtype.kind != "f" or biases[-1].dtype.kind != "f":
                raise NetworkError(f"{path}: layer {i}: weights are not floats")
            i += 1
        return cls(kernels, biases, activations, name=str(path))
