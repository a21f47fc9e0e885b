"""Maps between physical, transformed and normalized values.

Every network input and output goes through three representations:

*physical* ``p``
    the value as it appears in a (transformed) training-set table;
*transformed* ``x``
    ``p`` through a map type (``log``, ``logit`` ...) that makes its
    distribution tame;
*normalized* ``n``
    ``x`` through a linear map, ``n = (x - x_mean) / x_std``, which is what
    the networks see.

A :class:`Mapping` holds one quantity's map type, its bounds and its
normalization, and reads and writes them as the keys of one ``[[params]]``
or ``[[results]]`` table of ``nn_config.toml`` (the key names are those of
the predecessor package, so its configs still load).
"""

import logging
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

logger = logging.getLogger(__name__)


# The map types. Each is a forward map, its inverse and the domain on which
# the forward map is defined.


class MapType:
    """A map between physical and transformed values."""

    #: The name used for ``maptype`` in the config.
    name = None

    def forward(self, p):
        """Physical -> transformed."""
        raise NotImplementedError

    def inverse(self, x):
        """Transformed -> physical."""
        raise NotImplementedError

    def valid(self, p):
        """Boolean mask of the physical values the forward map accepts."""
        return np.isfinite(p)


class Direct(MapType):
    name = "direct"

    def forward(self, p):
        return np.asarray(p, dtype=float)

    def inverse(self, x):
        return np.asarray(x, dtype=float)


class Log(MapType):
    name = "log"

    def forward(self, p):
        return np.log10(p)

    def inverse(self, x):
        return 10.0**x

    def valid(self, p):
        return np.isfinite(p) & (p > 0)


class NegLog(MapType):
    name = "neg_log"

    def forward(self, p):
        return np.log10(-p)

    def inverse(self, x):
        return -(10.0**x)

    def valid(self, p):
        return np.isfinite(p) & (p < 0)


class AbsLog(MapType):
    """``log10 |p|``; the inverse returns the magnitude, the sign is lost."""

    name = "abs_log"

    def forward(self, p):
        return np.log10(np.abs(p))

    def inverse(self, x):
        return 10.0**x

    def valid(self, p):
        return np.isfinite(p) & (p != 0)


class Logit(MapType):
    """``log(p / (1 - p))`` for fractions strictly inside (0, 1)."""

    name = "logit"

    def forward(self, p):
        return np.log(p) - np.log1p(-p)

    def inverse(self, x):
        # exp(-|x|) never overflows, and the two branches keep full relative
        # precision near 0 and near 1.
        x = np.asarray(x, dtype=float)
        z = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0, z) / (1.0 + z)

    def valid(self, p):
        return np.isfinite(p) & (p > 0) & (p < 1)


class NinthRoot(MapType):
    """A signed ninth root: compresses a wide range of either sign."""

    name = "ninth_root"

    def forward(self, p):
        return np.cbrt(np.cbrt(p))

    def inverse(self, x):
        return np.asarray(x, dtype=float) ** 9


class Asinh(MapType):
    """``asinh(p)``: logarithmic in ``|p|`` far from zero, linear through it.

    For a signed result that passes through zero inside the domain
    (``rho_Q``), usually with a row scale (see :class:`Mapping`): unlike
    ``log |p|``, which has a spike to minus infinity along the zero
    crossing, it is smooth there, and one network learns magnitude and
    sign together.
    """

    name = "asinh"

    def forward(self, p):
        return np.arcsinh(p)

    def inverse(self, x):
        return np.sinh(x)


class Sign(MapType):
    """The sign of ``p``, for a result learned as a binary class.

    The inverse maps any transformed value to -1 or +1 by its sign, so a
    network output in (-1, 1) becomes the nearer class.
    """

    name = "sign"

    def forward(self, p):
        return np.sign(p)

    def inverse(self, x):
        x = np.asarray(x, dtype=float)
        return np.where(x >= 0, 1.0, -1.0) + 0 * x

    def valid(self, p):
        return np.isfinite(p) & (p != 0)


#: The map types by config name. Registered explicitly.
MAP_TYPES = {
    cls.name: cls()
    for cls in (Direct, Log, NegLog, AbsLog, Logit, NinthRoot, Asinh, Sign)
}

#: How physical bounds are found: from the samples, or fixed to [0, pi/2].
BOUNDS_MODES = ("empirical", "theta")

#: How the normalization is found from the transformed samples.
NORMALIZATION_MODES = ("gaussian", "unit_interval")

#: What to do with values outside the sampled range.
OUT_OF_SAMPLE_POLICIES = ("ignore", "clip", "nan")

# Keys of a locked config table that hold the numbers found from samples.
BOUND_KEYS = ("x_mean", "x_std", "phys_min", "phys_max", "norm_min", "norm_max")

# The fewest valid samples from which a mapping's bounds may be found.
MIN_SAMPLES = 3

#: Row scales of a result: none, or ``scale_factor * exp(q(n))`` with ``q`` a
#: quadratic polynomial in the normalized inputs ``n``, fitted to ``log |p|``.
SCALE_MODES = ("none", "quadratic")


#: Largest magnitude of a row-scale coefficient: exp overflows beyond about
#: 700, and a fit to ln |p| of a table's values needs nothing near it.
MAX_SCALE_COEFFICIENT = 700.0


def _quadratic_terms(n):
    """The terms ``n_i``, then ``n_i n_j (i <= j)``, of inputs ``n`` (N, K),
    in the order of the coefficients (after the constant)."""
    k = n.shape[1]
    for i in range(k):
        yield n[:, i]
    for i in range(k):
        for j in range(i, k):
            yield n[:, i] * n[:, j]


def quadratic_features(n):
    """Columns ``1, n_i, n_i n_j (i <= j)`` of normalized inputs ``n`` (N, K)."""
    n = np.asarray(n, dtype=float)
    return np.stack([np.ones(n.shape[0]), *_quadratic_terms(n)], axis=1)


def n_quadratic_features(k):
    """Number of :func:`quadratic_features` columns for ``k`` inputs."""
    return 1 + k + k * (k + 1) // 2


def _choice(info, key, choices, default, where):
    value = info.get(key, default)
    if value not in choices:
        raise ConfigError(
            f"{where}: {key} = {value!r} is not valid; expected one of "
            + ", ".join(repr(c) for c in choices)
        )
    return str(value)


@dataclass
class Mapping:
    """One quantity's map from physical to normalized values and back.

    Attributes
    ----------
    name : str
        The column name (without role suffix).
    maptype : MapType
        The physical -> transformed map.
    phys_bounds_mode, normalization_mode, out_of_sample : str
        See :data:`BOUNDS_MODES`, :data:`NORMALIZATION_MODES`,
        :data:`OUT_OF_SAMPLE_POLICIES`.
    phys_min, phys_max : float
        Physical bounds (NaN until locked).
    x_mean, x_std : float
        Normalization: ``n = (x - x_mean) / x_std``.
    norm_min, norm_max : float
        Normalized bounds of the samples.
    scale_mode : str
        ``none``, or ``quadratic`` (results only): the physical value is
        first divided by a row scale ``scale_factor * exp(q(n))``, a smooth
        function of the row's normalized network inputs ``n`` (``q`` is
        quadratic, fitted to ``log |p|`` by least squares when the mapping
        is locked). The rest of the map (bounds, normalization) applies to
        the scaled value. With ``asinh`` this takes out most of a signed
        result's variation over the domain, and sets where the map turns
        from logarithmic to linear: ``scale_factor`` times the typical size.
    scale_factor : float
    scale_coefficients : tuple of float
        The coefficients of ``q`` over :func:`quadratic_features`.
    """

    name: str
    maptype: MapType
    phys_bounds_mode: str = "empirical"
    normalization_mode: str = "gaussian"
    out_of_sample: str = "ignore"
    phys_min: float = np.nan
    phys_max: float = np.nan
    x_mean: float = np.nan
    x_std: float = np.nan
    norm_min: float = np.nan
    norm_max: float = np.nan
    scale_mode: str = "none"
    scale_factor: float = 1.0
    scale_coefficients: tuple = ()

    @classmethod
    def from_dict(cls, info, where="config", need_bounds=True):
        """Build from one ``[[params]]`` or ``[[results]]`` config table.

        Parameters
        ----------
        info : mapping
            The table's keys.
        where : str
            Where the table is (file and table), for error messages.
        need_bounds : bool
            If true, the bounds keys must be present (a locked config).
        """
        if "name" not in info:
            raise ConfigError(f"{where}: missing key 'name'")
        name = str(info["name"])
        where = f"{where} ({name})"
        if "maptype" not in info:
            raise ConfigError(f"{where}: missing key 'maptype'")
        maptype = _choice(info, "maptype", tuple(MAP_TYPES), None, where)
        mapping = cls(
            name=name,
            maptype=MAP_TYPES[maptype],
            phys_bounds_mode=_choice(
                info, "phys_bounds_mode", BOUNDS_MODES, "empirical", where
            ),
            normalization_mode=_choice(
                info, "normalization_mode", NORMALIZATION_MODES, "gaussian", where
            ),
            out_of_sample=_choice(
                info, "out_of_sample", OUT_OF_SAMPLE_POLICIES, "ignore", where
            ),
            scale_mode=_choice(info, "scale_mode", SCALE_MODES, "none", where),
        )
        # The scale keys are checked whenever given, used only when scaled.
        factor = info.get("scale_factor", 1.0)
        if not (
            isinstance(factor, int | float)
            and not isinstance(factor, bool)
            and 0 < factor < np.inf
        ):
            raise ConfigError(
                f"{where}: scale_factor = {factor!r}; expected a positive number"
            )
        coefficients = info.get("scale_coefficients")
        if coefficients is not None and not (
            isinstance(coefficients, list | tuple)
            and coefficients
            and all(
                isinstance(c, int | float)
                and not isinstance(c, bool)
                and abs(c) < MAX_SCALE_COEFFICIENT
                for c in coefficients
            )
        ):
            raise ConfigError(
                f"{where}: scale_coefficients = {coefficients!r}; expected a list "
                f"of numbers between -{MAX_SCALE_COEFFICIENT:g} and "
                f"{MAX_SCALE_COEFFICIENT:g}"
            )
        if mapping.scaled:
            mapping.scale_factor = float(factor)
            if need_bounds and coefficients is None:
                raise ConfigError(
                    f"{where}: no scale_coefficients for scale_mode = "
                    f"{mapping.scale_mode!r}; run 'neurosynchro lock-domain-range'"
                )
            if coefficients is not None:
                mapping.scale_coefficients = tuple(float(c) for c in coefficients)
        if need_bounds:
            missing = [k for k in BOUND_KEYS if k not in info]
            if missing:
                raise ConfigError(
                    f"{where}: no bounds ({', '.join(missing)} missing); run "
                    "'neurosynchro lock-domain-range' on the transformed table first"
                )
            for key in BOUND_KEYS:
                try:
                    setattr(mapping, key, float(info[key]))
                except (TypeError, ValueError):
                    raise ConfigError(
                        f"{where}: {key} = {info[key]!r}; expected a number"
                    ) from None
            if not mapping.x_std > 0:
                raise ConfigError(f"{where}: x_std = {mapping.x_std}; expected > 0")
        return mapping

    @property
    def scaled(self):
        """Whether values are divided by a row scale (see ``scale_mode``)."""
        return self.scale_mode != "none"

    def row_scale(self, inputs):
        """The row scale ``scale_factor * exp(q(inputs))``, shape (N,).

        Parameters
        ----------
        inputs : ndarray, shape (N, K)
            Normalized network inputs of the rows.
        """
        # Term by term, in a fixed order, rather than one matrix product:
        # each row's value then does not depend on which rows it is
        # computed with (a BLAS product's rounding can), so a call split
        # over threads gives the same bits.
        inputs = np.asarray(inputs, dtype=float)
        constant, *slopes = self.scale_coefficients
        q = np.full(inputs.shape[0], constant)
        for c, term in zip(slopes, _quadratic_terms(inputs), strict=True):
            q += c * term
        with np.errstate(over="ignore"):
            return self.scale_factor * np.exp(q)

    def _need_inputs(self, inputs, fitted=True):
        if inputs is None:
            raise ValueError(f"{self.name}: a scaled mapping needs the row inputs")
        if not fitted:
            return
        expected = n_quadratic_features(np.shape(inputs)[1])
        if len(self.scale_coefficients) != expected:
            raise ConfigError(
                f"{self.name}: {len(self.scale_coefficients)} scale_coefficients "
                f"for {np.shape(inputs)[1]} inputs; expected {expected}"
            )

    def lock(self, samples, inputs=None):
        """Find bounds and normalization from physical samples.

        Parameters
        ----------
        samples : ndarray, shape (N,)
            Physical values; non-finite values and values outside the map's
            domain are left out (and counted in the log).
        inputs : ndarray, shape (N, K), optional
            The rows' normalized network inputs; needed if the mapping is
            scaled, whose row scale is fitted here.
        """
        samples = np.asarray(samples, dtype=float)
        if self.scaled:
            self._need_inputs(inputs, fitted=False)
            inputs = np.asarray(inputs, dtype=float)
            fit = np.isfinite(samples) & (samples != 0) & np.isfinite(inputs).all(1)
            features = quadratic_features(inputs[fit])
            if fit.sum() < 2 * features.shape[1]:
                raise ConfigError(
                    f"{self.name}: only {fit.sum()} rows with a finite, non-zero "
                    f"value to fit its row scale; need at least "
                    f"{2 * features.shape[1]}"
                )
            coefficients = np.linalg.lstsq(
                features, np.log(np.abs(samples[fit])), rcond=None
            )[0]
            self.scale_coefficients = tuple(float(c) for c in coefficients)
            with np.errstate(invalid="ignore"):
                samples = samples / self.row_scale(inputs)
        ok = self.maptype.valid(samples)
        if (~ok).any():
            logger.info(
                "%s: leaving out %d of %d samples", self.name, (~ok).sum(), samples.size
            )
        samples = samples[ok]
        if samples.size < MIN_SAMPLES:
            raise ConfigError(
                f"{self.name}: only {samples.size} valid samples; need at least "
                f"{MIN_SAMPLES} to find its bounds"
            )
        if isinstance(self.maptype, Sign):
            # Classes -1 and +1 map to 0 and 1 whatever the samples hold, so
            # that a sign constant over the table still leaves the network's
            # class probability inside the normalized bounds.
            self.phys_min, self.phys_max = -1.0, 1.0
            self.x_mean, self.x_std = -1.0, 2.0
            self.norm_min, self.norm_max = 0.0, 1.0
            return
        if self.phys_bounds_mode == "theta":
            # Angles are folded into [0, pi/2], so the top of the range is
            # always covered; near-field-aligned angles below the sampled
            # minimum are not, and are flagged.
            self.phys_min, self.phys_max = float(samples.min()), 0.5 * np.pi
        else:
            self.phys_min, self.phys_max = float(samples.min()), float(samples.max())

        x = self.maptype.forward(samples)
        if self.normalization_mode == "gaussian":
            self.x_mean, self.x_std = float(x.mean()), float(x.std())
        else:
            self.x_mean = float(x.min())
            self.x_std = float(x.max() - x.min())
        # A constant column (a sign that never changes, say) still needs a
        # usable scale.
        if not self.x_std > 0:
            self.x_std = 1.0
        n = (x - self.x_mean) / self.x_std
        self.norm_min, self.norm_max = float(n.min()), float(n.max())

    def bounds_dict(self):
        """The bounds keys (and a scaled mapping's fitted row scale), for
        writing into the config."""
        bounds = {key: float(getattr(self, key)) for key in BOUND_KEYS}
        if self.scaled:
            bounds["scale_coefficients"] = list(self.scale_coefficients)
        return bounds

    def phys_to_norm(self, p, inputs=None):
        """Physical -> normalized.

        Parameters
        ----------
        p : ndarray, shape (N,)
        inputs : ndarray, shape (N, K), optional
            The rows' normalized network inputs (scaled mappings only).

        Returns
        -------
        n : ndarray
            Normalized values, same shape as ``p``.
        oos : ndarray of bool
            True where ``p`` (divided by its row scale, if scaled) was
            outside ``[phys_min, phys_max]`` (or NaN).
        """
        p = np.asarray(p, dtype=float)
        if self.scaled:
            self._need_inputs(inputs)
            with np.errstate(invalid="ignore"):
                p = p / self.row_scale(inputs)
        oos = ~((p >= self.phys_min) & (p <= self.phys_max))
        p = self._apply_policy(p, oos, self.phys_min, self.phys_max)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.maptype.forward(p) - self.x_mean) / self.x_std, oos

    def norm_to_phys(self, n, inputs=None):
        """Normalized -> physical; returns ``(p, oos)`` like :meth:`phys_to_norm`."""
        n = np.asarray(n, dtype=float)
        oos = ~((n >= self.norm_min) & (n <= self.norm_max))
        n = self._apply_policy(n, oos, self.norm_min, self.norm_max)
        p = self.maptype.inverse(n * self.x_std + self.x_mean)
        if self.scaled:
            self._need_inputs(inputs)
            p = p * self.row_scale(inputs)
        return p, oos

    def _apply_policy(self, values, oos, low, high):
        if self.out_of_sample == "clip":
            return np.clip(values, low, high)
        if self.out_of_sample == "nan":
            return np.where(oos, np.nan, values)
        return values


class MappingBlock:
    """Several mappings applied at once, one per column of a 2-D array.

    The approximator maps all network outputs back to physical values
    together: one array operation per step for all columns (and one per map
    type for the inverse maps) instead of several per column, which is most
    of the cost of a small call. Each value goes through the same operations
    as :meth:`Mapping.norm_to_phys`, so the results are identical.
    """

    def __init__(self, mappings):
        self.mappings = list(mappings)

        def column(key):
            return np.array([getattr(m, key) for m in self.mappings], dtype=float)

        self.x_mean, self.x_std = column("x_mean"), column("x_std")
        self.norm_min, self.norm_max = column("norm_min"), column("norm_max")
        policies = [m.out_of_sample for m in self.mappings]
        self.clip = [i for i, p in enumerate(policies) if p == "clip"]
        self.nan = [i for i, p in enumerate(policies) if p == "nan"]
        groups = {}
        for i, mapping in enumerate(self.mappings):
            groups.setdefault(mapping.maptype.name, []).append(i)
        # Consecutive columns as a slice (a view), others as an index list.
        self.groups = []
        for name, columns in groups.items():
            if columns == list(range(columns[0], columns[-1] + 1)):
                columns = slice(columns[0], columns[-1] + 1)
            self.groups.append((MAP_TYPES[name], columns))
        self.scaled = [i for i, m in enumerate(self.mappings) if m.scaled]

    def norm_to_phys(self, n, inputs=None):
        """Normalized -> physical, column by column.

        Parameters
        ----------
        n : ndarray, shape (N, K)
            Column ``k`` holds normalized values of mapping ``k``.
        inputs : ndarray, shape (N, K_in), optional
            The rows' normalized network inputs (needed if a mapping is
            scaled).

        Returns
        -------
        p : ndarray, shape (K, N)
            Physical values, row ``k`` for mapping ``k`` (transposed: each
            mapping's values are contiguous, which is faster to compute on
            and to use one by one).
        oos : ndarray of bool, shape (N,)
            True where any column was outside its normalized bounds (or NaN).
        """
        n = np.array(np.asarray(n, dtype=float).T, order="C")
        low, high = self.norm_min[:, None], self.norm_max[:, None]
        oos = ~((n >= low) & (n <= high))
        for k in self.clip:
            np.clip(n[k], low[k], high[k], out=n[k])
        for k in self.nan:
            n[k][oos[k]] = np.nan
        n *= self.x_std[:, None]
        n += self.x_mean[:, None]
        p = np.empty_like(n)
        for maptype, rows in self.groups:
            p[rows] = maptype.inverse(n[rows])
        for k in self.scaled:
            self.mappings[k]._need_inputs(inputs)
            p[k] *= self.mappings[k].row_scale(inputs)
        return p, oos.any(axis=0)
