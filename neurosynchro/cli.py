"""The ``neurosynchro`` command: one thin subcommand per step of the flow.

Tables and results go to stdout (or ``--output``); progress and diagnostics
go to stderr. A package error becomes one line on stderr and exit status 1
(bad data) or 2 (bad usage); ``--debug`` shows the traceback instead.
"""

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import NeurosynchroError
from .processes import Terminated, raise_on_sigterm

logger = logging.getLogger("neurosynchro")

COMMANDS = {}


def command(name, help):
    """Register a subcommand: ``configure(parser)`` returns ``run(args)``."""

    def register(configure):
        COMMANDS[name] = (help, configure)
        return configure

    return register


@command("init-nndir", "create a network directory with a default nn_config.toml")
def _init_nndir(parser):
    parser.add_argument("nndir", help="network directory to create")

    def run(args):
        from .config import init_nndir

        path = init_nndir(args.nndir)
        logger.info("wrote %s; edit it, then run lock-domain-range", path)
        return 0

    return run


@command("transform", "turn raw coefficients into the internal parameterization")
def _transform(parser):
    parser.add_argument("datadir", help="training set: directory of *.txt tables")
    parser.add_argument(
        "-o", "--output", help="write the transformed table here (default: stdout)"
    )

    def run(args):
        from .samples import read_training_set, write_table
        from .transform import to_internal

        table, suffixes, report = to_internal(read_training_set(args.datadir))
        for line in report.lines():
            print(line, file=sys.stderr)
        write_table(args.output or sys.stdout, table, suffixes)
        return 0

    return run


@command("lock-domain-range", "write bounds and normalization into nn_config.toml")
def _lock(parser):
    parser.add_argument("datadir", help="the transformed training set")
    parser.add_argument("nndir", help="network directory holding nn_config.toml")

    def run(args):
        from .config import lock_domain_range
        from .samples import read_training_set

        config = lock_domain_range(read_training_set(args.datadir), args.nndir)
        for mapping in config.params + [r.mapping for r in config.results]:
            print(
                f"{mapping.name}: physical [{mapping.phys_min:.6g}, "
                f"{mapping.phys_max:.6g}], normalized [{mapping.norm_min:.3f}, "
                f"{mapping.norm_max:.3f}]",
                file=sys.stderr,
            )
        return 0

    return run


@command("summarize", "print per-column statistics of a training set")
def _summarize(parser):
    parser.add_argument("datadir", help="training set: directory of *.txt tables")

    def run(args):
        from .samples import read_training_set
        from .summary import summarize

        print(summarize(read_training_set(args.datadir)))
        return 0

    return run


@command("train", "train the networks of a network directory")
def _train(parser):
    parser.add_argument("datadir", help="the transformed training set")
    parser.add_argument("nndir", help="locked network directory")
    parser.add_argument(
        "results", nargs="*", metavar="RESULT", help="results to train (default: all)"
    )
    parser.add_argument("--plot", metavar="FILE.png", help="save residual plots here")
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        help="networks trained at once, one process each (default: one per core)",
    )

    def run(args):
        from .config import load_config
        from .errors import UsageError
        from .samples import read_training_set
        from .training import default_jobs, plot_residuals, train_results

        config = load_config(args.nndir)
        known = [r.name for r in config.results]
        names = args.results or known
        for name in names:
            if name not in known:
                raise UsageError(
                    f"RESULT {name!r}: not in {config.path}; expected one of "
                    + ", ".join(known)
                )
        if args.plot and not args.plot.lower().endswith(".png"):
            raise UsageError(f"--plot {args.plot}: expected a file name ending in .png")
        if args.jobs is not None and args.jobs < 1:
            raise UsageError(f"--jobs {args.jobs}: expected a positive integer")
        jobs = args.jobs or default_jobs(len(names))
        training_set = read_training_set(args.datadir)
        reports = {}
        for report in train_results(
            config,
            training_set,
            names,
            args.nndir,
            jobs=jobs,
            progress=sys.stderr.isatty(),
        ):
            print(report.line(), file=sys.stderr)
            reports[report.result] = report
        reports = [reports[name] for name in names]
        if args.plot:
            plot_residuals(reports, config, args.plot)
        return 0

    return run


@command(
    "make-test-problem", "write a test problem along a ray with the built-in calculator"
)
def _make_test_problem(parser):
    from .testproblem import add_make_arguments, run_make

    add_make_arguments(parser)
    return run_make


#: Subcommands whose implementation lives in their own module, which
#: provides ``add_arguments(parser)`` and ``run(args)``.
MODULE_COMMANDS = {
    "make-training-set": (
        "neurosynchro.calc.generate",
        "compute a training set with the built-in calculator",
    ),
    "validate": (
        "neurosynchro.validate",
        "accuracy of a network directory against detailed results",
    ),
    "test-problem": (
        "neurosynchro.testproblem",
        "compare transfer along a ray with exact and network coefficients",
    ),
    "demo": (
        "neurosynchro.demo",
        "the whole flow on a built-in default: calculate, train, validate",
    ),
}


def _module_command(module_name):
    def configure(parser):
        module = importlib.import_module(module_name)
        module.add_arguments(parser)
        return module.run

    return configure


def build_parser(only=None):
    """The argument parser; with ``only``, the one subcommand whose options are
    set up (importing a module command's module costs up to a second, so
    ``main`` sets up just the command it runs; the others still appear in
    ``--help``)."""
    for name, (module_name, text) in MODULE_COMMANDS.items():
        COMMANDS.setdefault(name, (text, _module_command(module_name)))
    parser = argparse.ArgumentParser(
        prog="neurosynchro",
        description="Train and use neural-network approximations of polarized "
        "synchrotron radiative-transfer coefficients.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks of errors"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="only show warnings and errors"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (text, configure) in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text)
        if only is None or name == only:
            sub.set_defaults(run=configure(sub))
    return parser


def main(argv=None):
    """Entry point of the ``neurosynchro`` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # The global options take no values, so the first other word is the
    # command (or a typo, which argparse reports).
    command = next((a for a in argv if not a.startswith("-")), None)
    # Only that command is set up ("" sets up none: --version, --help, a
    # missing or mistyped command need no command's options).
    parser = build_parser(only=command or "")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("neurosynchro: error: a COMMAND is required", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="neurosynchro: %(message)s",
        stream=sys.stderr,
    )
    try:
        # SIGTERM unwinds like Ctrl-C, through the cleanup that stops worker
        # processes and removes temporary files.
        with raise_on_sigterm():
            return args.run(args)
    except NeurosynchroError as error:
        if args.debug:
            raise
        print(f"neurosynchro: error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print("neurosynchro: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("neurosynchro: terminated", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())
