"""The package's exception and warning types.

Every mistake a user can make (a malformed table, a bad config, a network
directory that does not match its config, a bad argument) raises a subclass
of :class:`NeurosynchroError` whose message names the file, line, column or
argument at fault and says what was expected. The command-line tool turns
these into one line on stderr and a non-zero exit status.
"""


class NeurosynchroError(Exception):
    """Base class of every error neurosynchro raises on bad input."""

    #: Exit status the command-line tool uses for this kind of error.
    exit_status = 1


class TableError(NeurosynchroError):
    """A training-set table is missing, malformed or inconsistent."""


class ConfigError(NeurosynchroError):
    """An ``nn_config.toml`` file is malformed or incomplete."""


class NetworkError(NeurosynchroError):
    """A network directory does not match its config, or cannot be read."""


class UsageError(NeurosynchroError):
    """A function or command was called with bad arguments."""

    exit_status = 2


class CalculationError(NeurosynchroError):
    """A detailed calculation was asked for something it cannot compute."""


class TrainingError(NeurosynchroError):
    """A training process failed (a worker died, for instance)."""


class NeurosynchroWarning(UserWarning):
    """Something the caller should act on, such as inputs outside the domain."""
