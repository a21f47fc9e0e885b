"""The eight coefficients over a range of frequencies, from a network directory.

Usage::

    python examples/compute_coefficients.py NNDIR --B 30 --n-e 1e6 \\
        --theta 1.0 --param theta_e=10 --nu 1e11 2.3e11 3.45e11
    python examples/compute_coefficients.py --pretrained thermal --param theta_e=10

NNDIR is any trained network directory (``neurosynchro train`` writes one);
``--pretrained NAME`` uses one that ships with the package instead. Each
model parameter of the directory (``theta_e`` for thermal electrons, ``p``
for a power law ...) is given with ``--param NAME=VALUE``. With ``--fits
DISTRIBUTION`` the published fitting formulas are printed below, for
comparison.
"""

import argparse
import sys
import warnings

import numpy as np

import neurosynchro


def parse_param(text):
    name, equals, value = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name, float(value)


def print_table(title, nu, coeffs, flags=None):
    names = ("j_I", "alpha_I", "j_Q", "alpha_Q", "j_V", "alpha_V", "rho_Q", "rho_V")
    print(title)
    print(f"{'nu (Hz)':>10} " + " ".join(f"{n:>10}" for n in names))
    for i, row in enumerate(coeffs):
        mark = "  (outside the training set)" if flags is not None and flags[i] else ""
        print(f"{nu[i]:10.4g} " + " ".join(f"{v:10.3e}" for v in row) + mark)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("nndir", nargs="?", help="trained network directory")
    source.add_argument("--pretrained", metavar="NAME", help="a shipped network")
    parser.add_argument("--nu", type=float, nargs="+", default=[1e11, 2.3e11, 3.45e11])
    parser.add_argument("--B", type=float, default=30.0, help="field, Gauss")
    parser.add_argument("--n-e", type=float, default=1e6, help="density, cm^-3")
    parser.add_argument("--theta", type=float, default=1.0, help="field angle, rad")
    parser.add_argument("--param", type=parse_param, action="append", default=[])
    parser.add_argument("--fits", metavar="DISTRIBUTION", help="also print the fits")
    args = parser.parse_args(argv)

    if args.pretrained:
        approx = neurosynchro.load_pretrained(args.pretrained)
    else:
        approx = neurosynchro.PhysicalApproximator(args.nndir)
    params = dict(args.param)
    print(f"{approx}\nB = {args.B} G, n_e = {args.n_e} cm^-3, theta = {args.theta}")

    # All arguments broadcast: one row per frequency here.
    nu = np.array(args.nu)
    with warnings.catch_warnings():
        # Points outside the training set are flagged in the table instead.
        warnings.simplefilter("ignore", neurosynchro.NeurosynchroWarning)
        coeffs, oos = approx.compute_all_nontrivial(
            nu=nu, B=args.B, n_e=args.n_e, theta=args.theta, **params
        )
    print_table("networks (CGS)", nu, coeffs, oos)

    if args.fits:
        from neurosynchro.fits import fit_coefficients

        fits = fit_coefficients(args.fits, nu, args.B, args.n_e, args.theta, **params)
        print_table(f"published fits, {args.fits} (CGS)", nu, fits)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except neurosynchro.NeurosynchroError as error:
        sys.exit(f"error: {error}")
