"""Build one of the pretrained network directories that ship with the package.

Usage::

    neurosynchro make-training-set train-thermal --distribution thermal \\
        --rows 100000 --seed 11 --range s=5:3e5:log
    neurosynchro make-training-set heldout-thermal --distribution thermal \\
        --rows 800 --seed 2
    python tools/make_pretrained.py thermal train-thermal heldout-thermal

It transforms the training set, writes a config with the pretrained training
settings, locks it, trains every network, validates on the held-out set (with
the published fits beside it) and writes the result to
``neurosynchro/pretrained/NAME`` with its provenance in ``nn_config.toml``:
both generation records, the training settings, the package version and the
validation errors.
"""

import argparse
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import tomlkit

from neurosynchro import NeurosynchroWarning, __version__
from neurosynchro.config import init_nndir, lock_domain_range
from neurosynchro.fileio import atomic_write_text
from neurosynchro.pretrained import PRETRAINED_DIR
from neurosynchro.samples import read_training_set, write_table
from neurosynchro.training import train_result
from neurosynchro.transform import to_internal
from neurosynchro.validate import format_table, validate

#: Training settings of the shipped networks: small enough that a directory
#: stays well under 1 MB and trains in minutes on two cores.
PRETRAINED_TRAINING = {
    "hidden_units": [64, 64],
    "activation": "tanh",
    "epochs": 100,
    "patience": 20,
    "batch_size": 512,
    "learning_rate": 0.003,
    "refine_iterations": 3000,
    "seed": 0,
}

#: Rows of the (domain-cut) training set used: the first MAX_ROWS. The
#: L-BFGS refinement costs time in proportion to the rows, and on these sets
#: it was still improving after 3000 iterations on 27 000 rows: iterations
#: buy more accuracy than rows do, within the same time.
MAX_ROWS = 30000


#: The rotativity calculation is not reliable below s = 5 (calc.rotativities
#: Notes); rows below it are left out of every pretrained set.
MIN_S = 5.0

#: For thermal electrons, rows far above the synchrotron peak, where
#: nu / nu_s > THERMAL_MAX_X with nu_s = (2/9) nu_cyc theta_e^2 sin(theta),
#: hold emission hundreds of decades below the peak; like the symphony
#: reference tables, the thermal networks are trained without them.
THERMAL_MAX_X = 1e4


def thermal_domain_table():
    """The ``[[domain]]`` table that flags the thermal cut (nu/nu_s > 1e4)."""
    table = tomlkit.table()
    table["name"] = "nu/nu_s"
    table["factor"] = 4.5
    powers = tomlkit.inline_table()
    powers.update({"s": 1, "theta_e": -2, "sin_theta": -1})
    table["powers"] = powers
    table["max"] = THERMAL_MAX_X
    return table


def domain_cut(folder, work, label, thermal, max_rows=None):
    """Copy a set without rows below MIN_S or (thermal) beyond THERMAL_MAX_X.

    With ``max_rows``, only the first ``max_rows`` rows left are kept.
    """
    import numpy as np

    data = read_training_set(folder)
    t = data.table
    keep = (t["s"] >= MIN_S).to_numpy().copy()
    if thermal:
        x = t["s"] / ((2 / 9) * t["theta_e"] ** 2 * np.sin(t["theta"]))
        keep &= (x <= THERMAL_MAX_X).to_numpy()
    dropped = int((~keep).sum())
    if max_rows is not None:
        keep &= np.cumsum(keep) <= max_rows
    out = work / label
    out.mkdir()
    write_table(out / "rows.txt", t[keep], data.suffixes)
    shutil.copy(folder / "generation.toml", out / "generation.toml")
    print(
        f"{label}: dropped {dropped} of {len(t)} rows; using {keep.sum()}",
        file=sys.stderr,
    )
    return out, dropped


def record_validation(nndir, held_out, name):
    """Validate ``nndir`` on ``held_out`` and record the errors in its config."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeurosynchroWarning)
        figures = validate(nndir, held_out, fits=True, distribution=name)
    config_path = nndir / "nn_config.toml"
    document = tomlkit.parse(config_path.read_text())
    errors = tomlkit.table()
    for key, entry in figures.items():
        if isinstance(entry, dict) and "median" in entry and entry.get("n"):
            row = tomlkit.inline_table()
            for stat in ("median", "p95", "p99", "max", "n"):
                row[stat] = entry[stat]
            errors[key] = row
    document["provenance"]["validation_relative_errors"] = errors
    document["provenance"]["validation_rows_out_of_sample"] = figures["meta"]["oos"]
    atomic_write_text(config_path, tomlkit.dumps(document))
    return figures


def retrain(args, work, held_out):
    """Retrain some results of a shipped directory on the same rows.

    Each retrained result takes its entry in the default config (a new
    parameterization, say); results the default config no longer has are
    removed. Every other network, and the generation records, stay.
    """
    from neurosynchro.config import DEFAULT_CONFIG

    shipped = PRETRAINED_DIR / args.name
    nndir = work / args.name
    shutil.copytree(shipped, nndir)
    config_path = nndir / "nn_config.toml"
    document = tomlkit.parse(config_path.read_text())
    recorded_sha = str(document["provenance"]["training_set_sha256"])
    defaults = {str(t["name"]): t for t in tomlkit.parse(DEFAULT_CONFIG)["results"]}
    kept = tomlkit.aot()
    removed = []
    for item in document["results"]:
        name = str(item["name"])
        if name not in defaults:
            removed.append(name)
            (nndir / f"{name}.npz").unlink(missing_ok=True)
            continue
        if name in args.retrain:
            item = defaults[name]
        kept.append(item)
    document["results"] = kept
    # (tomlkit leaves an extra blank line before each rebuilt table.)
    config_path.write_text(re.sub(r"\n{3,}", "\n\n", tomlkit.dumps(document)))
    transformed = read_training_set(work / "transformed.txt")
    config = lock_domain_range(transformed, nndir)
    document = tomlkit.parse(config_path.read_text())
    if str(document["provenance"]["training_set_sha256"]) != recorded_sha:
        sys.exit(f"{args.training}: not the rows {shipped} was trained on")
    log = [
        line
        for line in document["provenance"]["training_log"]
        if line.split(":")[0] not in args.retrain + removed
    ]
    for name in args.retrain:
        line = train_result(config, transformed, name, nndir).line()
        print(line, file=sys.stderr, flush=True)
        log.append(line)
    provenance = document["provenance"]
    provenance["training_log"] = log
    provenance["neurosynchro_version"] = __version__
    provenance["retrained"] = (
        f"{', '.join(args.retrain)} retrained with their default config entries "
        f"by tools/make_pretrained.py --retrain (same training rows)"
        + (f"; removed {', '.join(removed)}" if removed else "")
    )
    atomic_write_text(config_path, tomlkit.dumps(document))
    figures = record_validation(nndir, held_out, args.name)
    print(format_table(figures))
    (work / "figures.txt").write_text(format_table(figures))
    shutil.rmtree(shipped)
    shutil.copytree(nndir, shipped, ignore=shutil.ignore_patterns("*.keras"))
    print(f"wrote {shipped}; work files in {work}", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=("thermal", "powerlaw", "kappa"))
    parser.add_argument("training", type=Path, help="raw training set")
    parser.add_argument("held_out", type=Path, help="raw held-out set")
    parser.add_argument(
        "--validate-only",
        action="store_true",
        help="only re-measure the shipped directory's validation errors",
    )
    parser.add_argument(
        "--retrain",
        nargs="+",
        metavar="RESULT",
        help="retrain only these results of the shipped directory, with their "
        "default config entries (the training rows must be the same: checked)",
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix=f"pretrained-{args.name}-"))
    training, held_out = args.training, args.held_out
    thermal = args.name == "thermal"
    training, cut_training = domain_cut(
        training, work, "training", thermal, max_rows=MAX_ROWS
    )
    held_out, cut_held_out = domain_cut(held_out, work, "held_out", thermal)
    table, suffixes, report = to_internal(read_training_set(training))
    write_table(work / "transformed.txt", table, suffixes)
    print("\n".join(report.lines()), file=sys.stderr)

    if args.validate_only:
        nndir = PRETRAINED_DIR / args.name
        figures = record_validation(nndir, held_out, args.name)
        print(format_table(figures))
        return

    if args.retrain:
        retrain(args, work, held_out)
        return

    nndir = work / args.name
    init_nndir(nndir)
    config_path = nndir / "nn_config.toml"
    document = tomlkit.parse(config_path.read_text())
    document["training"] = PRETRAINED_TRAINING
    if thermal:
        document["domain"] = tomlkit.aot()
        document["domain"].append(thermal_domain_table())
    config_path.write_text(tomlkit.dumps(document))
    transformed = read_training_set(work / "transformed.txt")
    config = lock_domain_range(transformed, nndir)

    log = []
    for spec in config.results:
        result = train_result(config, transformed, spec.name, nndir)
        log.append(result.line())
        print(log[-1], file=sys.stderr, flush=True)

    document = tomlkit.parse(config_path.read_text())
    provenance = document["provenance"]
    provenance["neurosynchro_version"] = __version__
    provenance["built_by"] = "tools/make_pretrained.py"
    provenance["training_log"] = log
    for key, folder in (("generation", args.training), ("held_out", args.held_out)):
        record = tomlkit.parse((folder / "generation.toml").read_text())
        provenance[key] = record
    rule = f"rows with s < {MIN_S:g}"
    if thermal:
        rule += (
            f" or nu/nu_s > {THERMAL_MAX_X:g} (nu_s = (2/9) nu_cyc theta_e^2 sin theta)"
        )
    provenance["domain_cut"] = (
        f"{rule} dropped: {cut_training} training, {cut_held_out} held-out rows; "
        f"the first {MAX_ROWS} training rows left were used"
    )
    atomic_write_text(config_path, tomlkit.dumps(document))
    figures = record_validation(nndir, held_out, args.name)
    print(format_table(figures))

    (work / "figures.txt").write_text(format_table(figures))
    target = PRETRAINED_DIR / args.name
    if target.exists():
        shutil.rmtree(target)
    # The .keras files are three quarters of the size; the .npz weights are
    # what inference reads, and tests rebuild Keras models from them.
    shutil.copytree(nndir, target, ignore=shutil.ignore_patterns("*.keras"))
    size = sum(p.stat().st_size for p in target.iterdir())
    print(
        f"wrote {target} ({size / 1e3:.0f} kB); work files in {work}", file=sys.stderr
    )


if __name__ == "__main__":
    main()
