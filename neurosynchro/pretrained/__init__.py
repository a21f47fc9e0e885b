"""Pretrained network directories that ship inside the package.

Each subdirectory (``thermal``, ``powerlaw``, ``kappa``) is an ordinary
network directory whose ``nn_config.toml`` carries its provenance: the
generation command and ranges, the training settings, the package version and
its measured validation errors.
"""

from pathlib import Path

from ..errors import UsageError

#: Where the pretrained network directories live.
PRETRAINED_DIR = Path(__file__).resolve().parent


def available():
    """Names of the pretrained networks present in this installation."""
    return sorted(
        p.name for p in PRETRAINED_DIR.iterdir() if (p / "nn_config.toml").is_file()
    )


def pretrained_path(name):
    """The network directory of pretrained network ``name``."""
    known = available()
    if name not in known:
        raise UsageError(
            f"no pretrained network {name!r}; known: {', '.join(known) or 'none'}"
        )
    return PRETRAINED_DIR / name


def load_pretrained(name, **options):
    """A PhysicalApproximator for a pretrained network.

    Parameters
    ----------
    name : str
        ``"thermal"`` (parameter ``theta_e``), ``"powerlaw"`` (``p``) or
        ``"kappa"`` (``kappa``, ``kappa_width``).
    **options
        ``dtype`` and ``threads``, passed to
        :class:`~neurosynchro.PhysicalApproximator`.

    Returns
    -------
    neurosynchro.PhysicalApproximator
    """
    from ..approximator import PhysicalApproximator

    return PhysicalApproximator(pretrained_path(name), **options)
