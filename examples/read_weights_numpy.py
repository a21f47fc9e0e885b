"""Evaluate a network directory with plain numpy, from its files alone.

This is the recipe a C, Fortran or CUDA programmer follows to use a network
directory without neurosynchro (see docs/formats.rst): read
``nn_config.toml`` and the ``NAME.npz`` weights, normalize the inputs, run
the dense layers, undo the normalization, reassemble the eight coefficients
and rescale them to the wanted frequency and density. Nothing from
neurosynchro is imported for the evaluation; neurosynchro's own
``PhysicalApproximator`` is called only at the end, to check the result.

Usage::

    python examples/read_weights_numpy.py NNDIR [--network j_I]

It prints one network's evaluation step by step at one point, then the eight
coefficients at a few points spread over the directory's domain, and the
largest relative difference from ``PhysicalApproximator`` (exit status 1 if
it exceeds 1e-9).
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomlkit, a neurosynchro dependency
    import tomlkit as tomllib

# CGS constants, the values neurosynchro uses (pwkit.cgs).
E_CHARGE = 4.80320425e-10  # esu
M_E = 9.1093897e-28  # g
C_LIGHT = 2.99792458e10  # cm / s

COEFFICIENTS = ("j_I", "alpha_I", "j_Q", "alpha_Q", "j_V", "alpha_V", "rho_Q", "rho_V")

# maptype: (forward, inverse), as in docs/formats.rst.
MAPTYPES = {
    "direct": (lambda p: p, lambda x: x),
    "log": (np.log10, lambda x: 10.0**x),
    "neg_log": (lambda p: np.log10(-p), lambda x: -(10.0**x)),
    "abs_log": (lambda p: np.log10(np.abs(p)), lambda x: 10.0**x),
    "logit": (lambda p: np.log(p / (1 - p)), lambda x: 0.5 * (1 + np.tanh(x / 2))),
    "ninth_root": (lambda p: np.cbrt(np.cbrt(p)), lambda x: x**9),
    "asinh": (np.arcsinh, np.sinh),
    "sign": (np.sign, lambda x: np.where(x >= 0, 1.0, -1.0)),
}

ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    # 1 / (1 + exp(-x)), written so that it never overflows.
    "sigmoid": lambda x: 0.5 * (1 + np.tanh(x / 2)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "silu": lambda x: x * 0.5 * (1 + np.tanh(x / 2)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
}


def load_layers(path):
    """(kernel, bias, activation) of each layer of a ``NAME.npz`` file."""
    with np.load(path, allow_pickle=False) as archive:
        assert int(archive["format_version"]) == 1
        layers, i = [], 0
        while f"kernel_{i}" in archive.files:
            layers.append(
                (
                    archive[f"kernel_{i}"],
                    archive[f"bias_{i}"],
                    str(archive[f"activation_{i}"]),
                )
            )
            i += 1
    return layers


def run_layers(layers, n):
    """Normalized inputs (N, n_params) -> normalized output (N,)."""
    for kernel, bias, activation in layers:
        n = ACTIVATIONS[activation](n @ kernel + bias)
    return n[:, 0]


def apply_policy(entry, values, low_key, high_key):
    """The ``out_of_sample`` policy of a [[params]] or [[results]] entry."""
    policy = entry.get("out_of_sample", "ignore")
    if policy == "clip":
        return np.clip(values, entry[low_key], entry[high_key])
    if policy == "nan":
        inside = (values >= entry[low_key]) & (values <= entry[high_key])
        return np.where(inside, values, np.nan)
    return values


def normalize(entry, p):
    """Physical input -> normalized: n = (maptype(p) - x_mean) / x_std."""
    p = apply_policy(entry, np.asarray(p, dtype=float), "phys_min", "phys_max")
    return (MAPTYPES[entry["maptype"]][0](p) - entry["x_mean"]) / entry["x_std"]


def row_scale(entry, inputs):
    """A result's row scale: scale_factor * exp(q(inputs)), or 1 (unscaled).

    ``q`` is the quadratic with coefficients ``scale_coefficients`` over
    ``1, n_1 .. n_K, n_i n_j (i <= j)`` of the normalized inputs.
    """
    if entry.get("scale_mode", "none") == "none":
        return 1.0
    k = inputs.shape[1]
    features = [np.ones(len(inputs))] + [inputs[:, i] for i in range(k)]
    features += [inputs[:, i] * inputs[:, j] for i in range(k) for j in range(i, k)]
    q = np.stack(features, 1) @ np.array(entry["scale_coefficients"])
    return entry.get("scale_factor", 1.0) * np.exp(q)


def denormalize(entry, n, inputs):
    """Normalized output -> physical: p = maptype^-1(n x_std + x_mean), times
    the row scale of the normalized ``inputs`` for a scaled result."""
    n = apply_policy(entry, n, "norm_min", "norm_max")
    p = MAPTYPES[entry["maptype"]][1](n * entry["x_std"] + entry["x_mean"])
    return p * row_scale(entry, inputs)


def fold(theta):
    """Fold any angle into [0, pi/2]; -1 where the V terms flip sign."""
    theta = np.mod(theta, 2 * np.pi)
    theta = np.where(theta > np.pi, 2 * np.pi - theta, theta)
    flipped = theta > np.pi / 2
    return np.where(flipped, np.pi - theta, theta), np.where(flipped, -1.0, 1.0)


def eight_coefficients(nndir, nu, B, n_e, theta, params):
    """The eight coefficients, shape (N, 8), from the files of ``nndir`` alone.

    ``nu`` (Hz), ``B`` (G, > 0), ``n_e`` (cm^-3), ``theta`` (rad) and the
    model parameters (dict of arrays) all have shape (N,).
    """
    nndir = Path(nndir)
    config = tomllib.loads((nndir / "nn_config.toml").read_text())
    folded, v_sign = fold(theta)
    physical = dict(params, s=nu / (E_CHARGE * B / (2 * np.pi * M_E * C_LIGHT)))
    physical["theta"] = folded
    n = np.stack([normalize(e, physical[e["name"]]) for e in config["params"]], 1)
    r = {
        e["name"]: denormalize(
            e, run_layers(load_layers(nndir / f"{e['name']}.npz"), n), n
        )
        for e in config["results"]
    }
    signs = config["signs"]
    out = np.full((len(nu), 8), np.nan)
    for kind, column in (("j", 0), ("alpha", 1)):
        polarized = r[f"{kind}_I"] * r[f"{kind}_frac_pol"]
        share = np.clip(r[f"{kind}_V_share"], 0.0, 1.0)
        out[:, column] = r[f"{kind}_I"]
        out[:, column + 2] = signs[f"{kind}_Q"] * polarized * np.sqrt(1 - share**2)
        out[:, column + 4] = signs[f"{kind}_V"] * v_sign * polarized * share
    if "rho_Q" in r and "rho_Q_sign" in r:  # magnitude and sign apart
        out[:, 6] = np.where(r["rho_Q_sign"] >= 0, 1.0, -1.0) * np.abs(r["rho_Q"])
    elif "rho_Q" in r:  # learned signed
        out[:, 6] = r["rho_Q"]
    if "rho_Q" in r:
        out[:, 7] = signs["rho_V"] * v_sign * r["rho_V"]
    # Tables hold values at nu = 1 Hz, n_e = 1 cm^-3.
    out[:, [0, 2, 4]] *= (n_e * nu)[:, None]
    out[:, [1, 3, 5, 6, 7]] *= (n_e / nu)[:, None]
    return out


def spread(entry, fractions):
    """Physical values at ``fractions`` of an input's range (in maptype space)."""
    forward, inverse = MAPTYPES[entry["maptype"]]
    low, high = forward(entry["phys_min"]), forward(entry["phys_max"])
    return inverse(low + np.asarray(fractions) * (high - low))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nndir", type=Path, help="a locked, trained network directory")
    parser.add_argument("--network", default="j_I", help="network to show step by step")
    args = parser.parse_args(argv)

    config = tomllib.loads((args.nndir / "nn_config.toml").read_text())
    params = {e["name"]: e for e in config["params"]}
    results = {e["name"]: e for e in config["results"]}
    if args.network not in results:
        parser.error(f"--network {args.network}: expected one of {', '.join(results)}")

    # A few points inside the domain; theta > pi/2 in some, to exercise the
    # folding. B = 30 G and n_e = 1e6 cm^-3 throughout; nu follows from s.
    fractions = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    B = np.full(fractions.size, 30.0)
    n_e = np.full(fractions.size, 1e6)
    s = spread(params["s"], fractions)
    nu = s * E_CHARGE * B / (2 * np.pi * M_E * C_LIGHT)
    theta = spread(params["theta"], fractions[::-1])
    theta[1::2] = np.pi - theta[1::2]
    model = {
        name: spread(entry, np.roll(fractions, i))
        for i, (name, entry) in enumerate(params.items())
        if name not in ("s", "theta")
    }

    # One network, step by step, at the first point.
    entry = results[args.network]
    layers = load_layers(args.nndir / f"{args.network}.npz")
    print(
        f"network {args.network}: layers "
        + ", ".join(f"{k.shape[0]}x{k.shape[1]} {a}" for k, _, a in layers)
    )
    physical = dict(
        {k: v[0] for k, v in model.items()}, s=s[0], theta=fold(theta[0])[0]
    )
    row = np.array([[normalize(params[name], physical[name]) for name in params]])
    for name, value in zip(params, row[0], strict=True):
        print(f"  input {name:<8} p = {physical[name]:<12.6g} n = {value:+.6f}")
    output = run_layers(layers, row)
    print(f"  normalized output n = {output[0]:+.6f}")
    value = denormalize(entry, output, row)[0]
    print(f"  {args.network} at nu = 1 Hz, n_e = 1 cm^-3: {value:.6g}")

    # All eight coefficients, checked against neurosynchro.
    ours = eight_coefficients(args.nndir, nu, B, n_e, theta, model)
    print("\n" + " ".join(f"{name:>11}" for name in COEFFICIENTS))
    for line in ours:
        print(" ".join(f"{value:11.4g}" for value in line))

    from neurosynchro import NeurosynchroWarning, PhysicalApproximator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        approx = PhysicalApproximator(args.nndir)
        theirs, _ = approx.compute_all_nontrivial(nu, B, n_e, theta, **model)
    both = np.isfinite(ours) & np.isfinite(theirs)
    if not np.array_equal(np.isfinite(ours), np.isfinite(theirs)):
        print("mismatch: NaN in different places", file=sys.stderr)
        return 1
    scale = np.maximum(np.abs(theirs[both]), np.finfo(float).tiny)
    worst = float(np.max(np.abs(ours[both] - theirs[both]) / scale, initial=0.0))
    print(f"\nlargest relative difference from PhysicalApproximator: {worst:.2e}")
    return 0 if worst <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
