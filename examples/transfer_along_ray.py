"""Polarized radiative transfer along a ray, with coefficients from networks.

A ray crosses a model plasma whose density, field strength, field direction
and viewing angle change along it. At every segment the networks give the
eight coefficients in the basis aligned with the projected field;
``detrivialize_stokes_basis`` turns them into the eleven of one fixed sky
basis, and ``neurosynchro.transfer.integrate_ray`` solves the polarized
transfer equation exactly for each constant-coefficient segment.

Usage::

    python examples/transfer_along_ray.py NNDIR [--nu 1e11 2.3e11] \\
        [--B 30] [--n-e 1e6] [--length 1e13] [--param theta_e=10]

Model parameters not given with ``--param`` are set to the middle of the
directory's training range.
"""

import argparse
import sys
import warnings

import numpy as np

import neurosynchro
from neurosynchro.transfer import integrate_ray


def parse_param(text):
    name, equals, value = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name, float(value)


def middle_of_range(approx, name):
    """The middle of a model parameter's training range (geometric for log)."""
    for mapping in approx.config.params:
        if mapping.name == name:
            low, high = mapping.phys_min, mapping.phys_max
            if mapping.maptype.name == "log":
                return float(np.sqrt(low * high))
            return 0.5 * (low + high)
    raise KeyError(name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nndir", help="trained network directory")
    parser.add_argument("--nu", type=float, nargs="+", default=[1e11, 2.3e11, 3.45e11])
    parser.add_argument("--B", type=float, default=30.0, help="mean field, G")
    parser.add_argument("--n-e", type=float, default=1e6, help="peak density, cm^-3")
    parser.add_argument("--length", type=float, default=1e13, help="ray length, cm")
    parser.add_argument("--segments", type=int, default=400)
    parser.add_argument("--param", type=parse_param, action="append", default=[])
    args = parser.parse_args(argv)

    approx = neurosynchro.PhysicalApproximator(args.nndir)
    params = dict(args.param)
    for name in approx.model_parameters:
        params.setdefault(name, middle_of_range(approx, name))
    print(f"{approx}; " + ", ".join(f"{k} = {v:.4g}" for k, v in params.items()))

    # The model along the ray, at the midpoints x of the segments (0 to 1).
    x = (np.arange(args.segments) + 0.5) / args.segments
    n_e = args.n_e * np.exp(-(((x - 0.5) / 0.25) ** 2))
    B = args.B * (1 + 0.3 * np.cos(2 * np.pi * x))
    theta = 0.6 + 0.8 * x  # angle between the ray and the field, rad
    psi = 0.5 * np.pi * x  # the field turns by 90 degrees on the sky
    dl = args.length / args.segments

    # Frequencies on a leading axis: shape (n_nu, n_segments, 8), one ray each.
    nu = np.array(args.nu)[:, None]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", neurosynchro.NeurosynchroWarning)
        coeffs, oos = approx.compute_all_nontrivial(nu, B, n_e, theta, **params)
    if oos.any():
        print(f"{oos.mean():.0%} of the segments lie outside the training set")
    if np.isnan(coeffs[..., 6:]).all():
        print("this directory has no rotativities: transfer without them")
        coeffs[..., 6:] = 0.0

    sky = neurosynchro.detrivialize_stokes_basis(coeffs, psi)
    stokes = integrate_ray(sky, dl)
    # The same rays without Faraday rotation and conversion, for comparison.
    sky_no_rho = sky.copy()
    sky_no_rho[..., 8:] = 0.0
    stokes_no_rho = integrate_ray(sky_no_rho, dl)

    print("\nemergent Stokes parameters, erg s^-1 cm^-2 Hz^-1 sr^-1; the")
    print("polarization angle EVPA = arctan2(U, Q) / 2, with and without rho")
    columns = ("nu (Hz)", "I", "Q", "U", "V", "tau_I", "p_lin", "EVPA", "no rho")
    print(" ".join(f"{c:>10}" for c in columns))
    tau = (sky[..., 1] * dl).sum(axis=-1)
    for i, frequency in enumerate(args.nu):
        I, Q, U, V = stokes[i]
        evpa = 0.5 * np.degrees(np.arctan2(U, Q))
        Q0, U0 = stokes_no_rho[i, 1:3]
        evpa_no_rho = 0.5 * np.degrees(np.arctan2(U0, Q0))
        values = (frequency, I, Q, U, V, tau[i])
        print(
            " ".join(f"{v:10.3e}" for v in values)
            + f" {np.hypot(Q, U) / I:10.3f} {evpa:10.2f} {evpa_no_rho:10.2f}"
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except neurosynchro.NeurosynchroError as error:
        sys.exit(f"error: {error}")
