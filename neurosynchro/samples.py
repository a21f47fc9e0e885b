"""Training-set tables: read, check and write.

A training set is a directory; every ``*.txt`` file in it is a tab-separated
table with one header line. Each column name ends in a role suffix:

``(lin)``, ``(log)``
    an input parameter, sampled linearly or logarithmically;
``(res)``
    a result (one of the eight coefficients, or an internal result after
    ``neurosynchro transform``);
``(meta)``
    metadata, such as ``time_ms(meta)``.

The number of files does not matter; all must have the same columns.
"""

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import TableError
from .fileio import atomic_path

logger = logging.getLogger(__name__)

#: Role suffixes and what they mean.
ROLES = {"lin": "input", "log": "input", "res": "result", "meta": "meta"}

_COLUMN = re.compile(r"^(?P<name>.+)\((?P<suffix>[^()]*)\)$")


@dataclass
class TrainingSet:
    """A training set loaded into memory.

    Attributes
    ----------
    table : pandas.DataFrame
        All rows of all files, columns named without their role suffixes.
    suffixes : dict
        Column name -> role suffix (``"lin"``, ``"log"``, ``"res"``,
        ``"meta"``), in column order.
    files : list of Path
        The files read, in the order their rows appear in ``table``.
    """

    table: pd.DataFrame
    suffixes: dict
    files: list = field(default_factory=list)

    @property
    def inputs(self):
        """Names of the input-parameter columns, in table order."""
        return [n for n, s in self.suffixes.items() if ROLES[s] == "input"]

    @property
    def results(self):
        """Names of the result columns, in table order."""
        return [n for n, s in self.suffixes.items() if ROLES[s] == "result"]

    @property
    def meta(self):
        """Names of the metadata columns, in table order."""
        return [n for n, s in self.suffixes.items() if ROLES[s] == "meta"]

    def __len__(self):
        return len(self.table)


def parse_header(columns, path):
    """Split column names into plain names and role suffixes.

    Parameters
    ----------
    columns : sequence of str
        Column names as they appear in the header line.
    path : Path
        File the header came from, for error messages.

    Returns
    -------
    suffixes : dict
        Plain name -> suffix, in column order.
    """
    suffixes = {}
    for number, column in enumerate(columns, start=1):
        match = _COLUMN.match(column.strip())
        if match is None:
            raise TableError(
                f"{path}: line 1, column {number} ({column!r}): expected a name "
                "ending in a role suffix: (lin), (log), (res) or (meta)"
            )
        name, suffix = match["name"], match["suffix"]
        if suffix not in ROLES:
            raise TableError(
                f"{path}: line 1, column {number} ({column!r}): unknown role "
                f"suffix ({suffix}); expected one of (lin), (log), (res), (meta)"
            )
        if name in suffixes:
            raise TableError(
                f"{path}: line 1, column {number}: column name {name!r} appears "
                "more than once"
            )
        suffixes[name] = suffix
    return suffixes


def _first_bad_cell(frame, path):
    """Raise a TableError naming the first cell that is not a number."""
    for number, column in enumerate(frame.columns, start=1):
        values = frame[column]
        if values.dtype.kind in "fiu":
            continue
        converted = pd.to_numeric(values, errors="coerce")
        bad = converted.isna() & values.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise TableError(
                f"{path}: line {row + 2}, column {number} ({column}): expected a "
                f"number, got {values.iloc[row]!r}"
            )


def _check_field_counts(path, n_columns, n_rows):
    """Raise a TableError naming the first row with too few fields.

    pandas fills the cells of a short row (a truncated last line, say) with
    NaN, which would pass for a failed calculation. A count of tab characters
    over the whole file (fast, in blocks) tells whether any row is short;
    only then are lines scanned one by one.
    """
    tabs = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            tabs += block.count(b"\t")
    if tabs == (n_columns - 1) * (n_rows + 1):
        return
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").count("\t") + 1
            if line.strip() and fields != n_columns:
                raise TableError(
                    f"{path}: line {number}: expected {n_columns} tab-separated "
                    f"fields, got {fields} (a truncated or ragged row)"
                )


def _check_final_newline(path, n_lines):
    """A table cut off mid-row usually lacks its final newline: refuse it."""
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        if handle.read(1) != b"\n":
            raise TableError(
                f"{path}: line {n_lines}: the file does not end with a newline; "
                "expected complete rows (is the last line truncated?)"
            )


def read_table(path):
    """Read one tab-separated table file.

    Parameters
    ----------
    path : str or Path
        The ``*.txt`` file.

    Returns
    -------
    frame : pandas.DataFrame
        Columns named without suffixes, all float64.
    suffixes : dict
        Plain name -> role suffix.
    """
    path = Path(path)
    # The header is parsed here, not by pandas, which would silently rename a
    # repeated column name ('s(log)' -> 's(log).1').
    try:
        with open(path, encoding="utf-8") as handle:
            header = handle.readline().rstrip("\r\n")
    except UnicodeDecodeError:
        raise TableError(f"{path}: not a text table (cannot decode as UTF-8)") from None
    if header.strip():
        parse_header(header.split("\t"), path)
    try:
        frame = pd.read_csv(path, sep="\t", engine="c", low_memory=False)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: the file is empty; expected a header line") from None
    except pd.errors.ParserError as error:
        detail = str(error).split("C error: ")[-1].strip()
        raise TableError(f"{path}: malformed table: {detail}") from None
    except UnicodeDecodeError:
        raise TableError(f"{path}: not a text table (cannot decode as UTF-8)") from None

    suffixes = parse_header(list(frame.columns), path)
    if len(frame) == 0:
        raise TableError(f"{path}: the file has a header line but no rows")
    _check_field_counts(path, len(suffixes), len(frame))
    _check_final_newline(path, len(frame) + 1)
    _first_bad_cell(frame, path)
    frame = frame.apply(pd.to_numeric, errors="coerce").astype(np.float64)
    frame.columns = list(suffixes)

    # A short row (a truncated last line, say) shows up as missing inputs.
    for number, name in enumerate(suffixes, start=1):
        if ROLES[suffixes[name]] != "input":
            continue
        bad = ~np.isfinite(frame[name].to_numpy())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise TableError(
                f"{path}: line {row + 2}, column {number} ({name}): expected a "
                "finite input value, got a missing, NaN or infinite cell"
            )
    if suffixes.get("theta") in ("lin", "log"):
        _check_theta(frame["theta"].to_numpy(), path, list(suffixes).index("theta"))
    return frame, suffixes


def _check_theta(theta, path, index):
    """Tables cover 0 <= theta <= pi/2 (DESIGN.md); refuse rows outside."""
    bad = ~((theta >= 0) & (theta <= np.pi / 2 * (1 + 1e-12)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise TableError(
            f"{path}: line {row + 2}, column {index + 1} (theta): expected an "
            f"angle between 0 and pi/2 in radians, got {theta[row]!r}"
        )


def table_files(path):
    """List the table files of a training set.

    ``path`` may be a directory (every ``*.txt`` in it, sorted by name) or a
    single table file.
    """
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.glob("*.txt") if p.is_file())
    if not files:
        raise TableError(f"{path}: the directory holds no *.txt tables")
    return files


def read_training_set(path):
    """Read a whole training set: a directory of tables, or one table file.

    Parameters
    ----------
    path : str or Path
        Directory holding ``*.txt`` tables, or a single table file.

    Returns
    -------
    TrainingSet
        All rows concatenated in file-name order.

    Raises
    ------
    TableError
        If the directory is missing or holds no tables, or a table is
        malformed, or the files' columns differ.
    """
    files = table_files(path)
    frames = []
    reference = None
    for file in files:
        frame, suffixes = read_table(file)
        if reference is None:
            reference = (file, suffixes)
        elif list(suffixes.items()) != list(reference[1].items()):
            raise TableError(
                f"{file}: columns differ from those of {reference[0]}: expected "
                f"{_header(reference[1])}, got {_header(suffixes)}"
            )
        frames.append(frame)
    table = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    logger.info(
        "read %d rows from %d table file(s) in %s", len(table), len(files), path
    )
    return TrainingSet(table=table, suffixes=reference[1], files=files)


def _header(suffixes):
    return " ".join(f"{name}({suffix})" for name, suffix in suffixes.items())


def write_table(target, table, suffixes):
    """Write a table atomically in the training-set format.

    Parameters
    ----------
    target : str, Path or file-like
        Destination file; a file-like object (such as ``sys.stdout``) is
        written to directly.
    table : pandas.DataFrame
        Columns named without suffixes.
    suffixes : dict
        Plain name -> role suffix for every column of ``table``.
    """
    out = table.copy(deep=False)
    out.columns = [f"{name}({suffixes[name]})" for name in table.columns]
    if hasattr(target, "write"):
        out.to_csv(target, sep="\t", index=False, float_format="%.17g")
        return
    with atomic_path(target) as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.17g")
