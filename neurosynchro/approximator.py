"""PhysicalApproximator: the eight coefficients in physical units from networks.

Inference runs on numpy alone; TensorFlow and Keras are never imported.
"""

import logging
import warnings
from pathlib import Path

import numpy as np

from . import engine as _engine
from .config import load_config
from .engine import FusedNetworks
from .errors import NetworkError, NeurosynchroWarning, UsageError
from .mappings import MappingBlock
from .network import Network
from .physics import cyclotron_frequency, fold_angle, to_physical
from .transform import from_internal

logger = logging.getLogger(__name__)

#: Rows evaluated at once; bounds the memory of very large calls.
CHUNK_ROWS = 1 << 16


class PhysicalApproximator:
    """Compute the eight radiative-transfer coefficients from trained networks.

    Parameters
    ----------
    nn_dir : str or Path
        A network directory: ``nn_config.toml`` (locked) and one ``NAME.npz``
        weights file per ``[[results]]`` entry.
    dtype : {numpy.float64, numpy.float32}
        Type the networks are evaluated in (default float64). float32 is
        up to twice as fast; the coefficients then agree with float64 to
        a few parts in a million (for the pretrained networks, 99% of
        points within 1.3e-5 relative and the worst 8e-6, except ``rho_Q``
        close to its zero crossing: up to 2e-4 where ``|rho_Q| > 0.01
        |rho_V|``). That is the networks' rounding, about 1e-7 of their
        output scale, amplified by the maps. Everything else is computed
        in float64.
    threads : int, optional
        Threads each large call's network evaluation is split over (see
        :class:`~neurosynchro.engine.FusedNetworks`; default: one per CPU
        core). Pass 1 when your own code already runs one call per core.

    Raises
    ------
    NetworkError
        If a network is missing, unreadable or does not match the config.
    ConfigError
        If the config is malformed or not locked.
    UsageError
        If ``dtype`` is neither float64 nor float32, or ``threads`` is not a
        positive integer.

    Notes
    -----
    Loading never executes code from the directory: the weights are plain
    arrays read without unpickling (see :mod:`neurosynchro.network`).
    """

    def __init__(self, nn_dir, dtype=np.float64, threads=None):
        self.nn_dir = Path(nn_dir)
        if not self.nn_dir.is_dir():
            raise NetworkError(f"{self.nn_dir}: no such network directory")
        self.config = load_config(self.nn_dir)
        self.networks = {}
        for spec in self.config.results:
            network = Network.load(self.nn_dir / f"{spec.name}.npz")
            if network.n_inputs != len(self.config.params):
                raise NetworkError(
                    f"{self.nn_dir / (spec.name + '.npz')}: takes {network.n_inputs} "
                    f"inputs but {self.config.path} lists {len(self.config.params)} "
                    f"parameters ({', '.join(self.config.param_names)})"
                )
            self.networks[spec.name] = network
        required = {
            "j_I",
            "alpha_I",
            "j_frac_pol",
            "alpha_frac_pol",
            "j_V_share",
            "alpha_V_share",
        }
        missing = sorted(required - set(self.networks))
        if missing:
            raise NetworkError(
                f"{self.config.path}: no [[results]] entry for " + ", ".join(missing)
            )
        for name in ("s", "theta"):
            if name not in self.config.param_names:
                raise NetworkError(f"{self.config.path}: no [[params]] entry {name!r}")
        self.model_parameters = [
            n for n in self.config.param_names if n not in ("s", "theta")
        ]
        self._warned_rotativities = False
        self._result_maps = MappingBlock(spec.mapping for spec in self.config.results)
        # All networks evaluated together in one fused pass (engine.py).
        self.engine = FusedNetworks(
            [self.networks[spec.name] for spec in self.config.results],
            dtype=dtype,
            threads=threads,
        )

    def __repr__(self):
        return (
            f"PhysicalApproximator({str(self.nn_dir)!r}; parameters "
            f"{', '.join(self.config.param_names)})"
        )

    def compute_all_nontrivial(self, nu, B, n_e, theta, **params):
        """The eight coefficients at arbitrary physical conditions.

        Parameters
        ----------
        nu : array_like
            Observing frequency, Hz (> 0).
        B : array_like
            Magnetic field strength, Gauss (>= 0; ``B = 0`` gives zeros).
        n_e : array_like
            Electron density, cm^-3 (>= 0).
        theta : array_like
            Angle between the line of sight and the field, radians; any value
            (folded into [0, pi/2], with the V terms' sign flipped for
            ``cos(theta) < 0``).
        **params : array_like
            The model parameters of this network directory (for example
            ``theta_e`` or ``p``), by name. All arguments broadcast together
            to a shape ``S``.

        Returns
        -------
        coeffs : ndarray, shape ``S + (8,)``
            ``j_I, alpha_I, j_Q, alpha_Q, j_V, alpha_V, rho_Q, rho_V`` in CGS
            (emissivities erg s^-1 cm^-3 Hz^-1 sr^-1, the rest cm^-1). NaN
            inputs give NaN rows; a directory trained without rotativities
            gives NaN ``rho_Q`` and ``rho_V``.
        oos : ndarray of bool, shape ``S``
            True where an input or an output fell outside the training set's
            range (or an input was NaN).

        Notes
        -----
        Networks give values at nu = 1 Hz and n_e = 1 cm^-3 as functions of
        ``s = nu / nu_cyc`` (``nu_cyc = e B / 2 pi m_e c``), theta and the
        model parameters; emissivities scale as ``n_e nu`` and the other
        coefficients as ``n_e / nu`` at fixed ``s`` and theta.
        """
        unknown = sorted(set(params) - set(self.model_parameters))
        missing = [p for p in self.model_parameters if p not in params]
        if unknown or missing:
            expected = ", ".join(self.model_parameters) or "none"
            problem = []
            if missing:
                problem.append("missing " + ", ".join(missing))
            if unknown:
                problem.append("unknown " + ", ".join(unknown))
            raise UsageError(
                f"model parameter keywords: {'; '.join(problem)}; this network "
                f"directory ({self.nn_dir}) takes: {expected}"
            )
        names = ["nu", "B", "n_e", "theta"] + self.model_parameters
        values = [nu, B, n_e, theta] + [params[p] for p in self.model_parameters]
        arrays = {}
        for name, value in zip(names, values, strict=True):
            try:
                if value is None or np.asarray(value).dtype.kind not in "iuf":
                    raise TypeError
                arrays[name] = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                raise UsageError(f"{name}: expected numbers, got {value!r}") from None
        try:
            shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
        except ValueError:
            shapes = ", ".join(f"{n} {a.shape}" for n, a in arrays.items())
            raise UsageError(f"arguments do not broadcast together: {shapes}") from None
        for name, low, strict in (("nu", 0, True), ("B", 0, False), ("n_e", 0, False)):
            a = arrays[name]
            bad = (a <= low) if strict else (a < low)
            if np.any(bad):
                relation = ">" if strict else ">="
                raise UsageError(
                    f"{name}: expected values {relation} {low}; got {a[bad].flat[0]}"
                )
            if np.any(np.isinf(a)):
                raise UsageError(f"{name}: expected finite values; got inf")

        flat = {n: np.broadcast_to(a, shape).ravel() for n, a in arrays.items()}
        return self._compute_chunks(flat, shape)

    def _compute_chunks(self, flat, shape):
        n = flat["nu"].size
        coeffs = np.full((n, 8), np.nan)
        oos = np.zeros(n, dtype=bool)
        # A large call is split into one span of rows per thread, each
        # evaluated whole (inputs, networks, outputs) on the engine's pool:
        # the unit conversions cost about as much as the networks, and numpy
        # releases the GIL in both.
        threads = min(self.engine.threads, n // _engine.MIN_ROWS_PER_THREAD)
        # One choice of engine path for the whole call, so that the result
        # does not depend on how it is split.
        compiled = n >= _engine.COMPILED_MIN_ROWS
        if threads <= 1:
            self._compute_span(flat, coeffs, oos, 0, n, None, compiled)
        else:
            bounds = [n * i // threads for i in range(threads + 1)]
            futures = [
                _engine._pool(threads).submit(
                    self._compute_span, flat, coeffs, oos, a, b, 1, compiled
                )
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            ]
            for future in futures:
                future.result()
        if oos.any():
            warnings.warn(
                f"{int(oos.sum())} of {oos.size} points lie outside the training "
                f"set of {self.nn_dir} (see the returned oos flags)",
                NeurosynchroWarning,
                stacklevel=3,
            )
        if not self.config.has_rotativities and not self._warned_rotativities:
            self._warned_rotativities = True
            warnings.warn(
                f"{self.nn_dir} was trained without rotativities: rho_Q and rho_V "
                "are NaN",
                NeurosynchroWarning,
                stacklevel=3,
            )
        return coeffs.reshape(shape + (8,)), oos.reshape(shape)

    def _compute_span(self, flat, coeffs, oos, begin, end, threads, compiled):
        # Far outside the domain the maps may overflow; such points are
        # already flagged out of sample, so numpy need not warn as well.
        # (numpy's error state is per thread, hence set here.)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for start in range(begin, end, CHUNK_ROWS):
                part = slice(start, min(start + CHUNK_ROWS, end))
                coeffs[part], oos[part] = self._compute_flat(
                    {n: a[part] for n, a in flat.items()}, threads, compiled
                )

    def _compute_flat(self, a, threads, compiled):
        n = a["nu"].size
        out = np.full((n, 8), np.nan)
        oos = np.zeros(n, dtype=bool)
        finite = np.all([np.isfinite(v) for v in a.values()], axis=0)
        oos |= ~finite
        zero = finite & (a["B"] == 0)
        out[zero] = 0.0
        live = finite & ~zero
        if not live.any():
            return out, oos

        with np.errstate(divide="ignore", over="ignore"):
            s = a["nu"][live] / cyclotron_frequency(a["B"][live])
        theta, v_sign = fold_angle(a["theta"][live])
        physical = {"s": s, "theta": theta}
        physical.update({p: a[p][live] for p in self.model_parameters})

        columns = []
        row_oos = np.zeros(s.size, dtype=bool)
        for mapping in self.config.params:
            normed, flags = mapping.phys_to_norm(physical[mapping.name])
            columns.append(normed)
            row_oos |= flags
        for limit in self.config.domain:
            row_oos |= limit.outside(physical)
        x = np.stack(columns, axis=1)

        normalized = self.engine(x, threads=threads, compiled=compiled)
        values, flags = self._result_maps.norm_to_phys(normalized, x)
        row_oos |= flags
        results = {
            spec.name: values[row] for row, spec in enumerate(self.config.results)
        }
        coeffs = from_internal(results, self.config.signs, v_sign)

        # Rescale from nu = 1 Hz, n_e = 1 cm^-3.
        n_e, nu = a["n_e"][live], a["nu"][live]
        out[live] = to_physical(coeffs, nu, n_e)
        oos[live] |= row_oos
        return out, oos
