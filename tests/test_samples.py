"""Reading training-set tables, and the one-line errors for bad ones."""

import numpy as np
import pandas as pd
import pytest

from neurosynchro.errors import TableError
from neurosynchro.samples import read_training_set, write_table

HEADER = "s(log)\ttheta(lin)\ttime_ms(meta)\tj_I(res)\talpha_I(res)\n"
ROW = "10\t0.5\t1.5\t1e-30\t1e-5\n"


def write(path, text):
    path.write_text(text)
    return path


def test_reads_every_txt_file_and_roles(tmp_path):
    write(tmp_path / "a.txt", HEADER + ROW + ROW)
    write(tmp_path / "b.txt", HEADER + "20\t1.0\t2\t2e-30\t2e-5\n")
    write(tmp_path / "notes.md", "ignored")
    ts = read_training_set(tmp_path)
    assert len(ts) == 3
    assert ts.inputs == ["s", "theta"]
    assert ts.results == ["j_I", "alpha_I"]
    assert ts.meta == ["time_ms"]
    assert ts.table["s"].tolist() == [10, 10, 20]
    assert ts.table.dtypes.eq(np.float64).all()


def test_reads_symphony_tables(symphony_dir):
    ts = read_training_set(symphony_dir / "kappa.txt")
    assert len(ts) == 1124
    assert ts.inputs == ["s", "theta", "kappa", "kappa_width"]
    # The README says 3 NaN j_I cells and 2 NaN alpha_Q cells.
    assert ts.table["j_I"].isna().sum() == 3
    assert ts.table["alpha_Q"].isna().sum() == 2


def test_write_read_round_trip(tmp_path, rng):
    frame = pd.DataFrame(
        {
            "s": 10 ** rng.uniform(1, 5, 50),
            "theta": rng.uniform(0, 1.5, 50),
            "j_I": 10 ** rng.uniform(-40, -30, 50),
        }
    )
    suffixes = {"s": "log", "theta": "lin", "j_I": "res"}
    write_table(tmp_path / "t.txt", frame, suffixes)
    back = read_training_set(tmp_path)
    assert back.suffixes == suffixes
    np.testing.assert_array_equal(back.table.to_numpy(), frame.to_numpy())


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("", "empty"),
        (HEADER, "header line but no rows"),
        ("s\ttheta(lin)\n1\t2\n", r"column 1 \('s'\).*role suffix"),
        ("s(log)\ttheta(deg)\n1\t2\n", r"column 2.*unknown role suffix \(deg\)"),
        ("s(log)\ts(lin)\n1\t2\n", "more than once"),
        (HEADER + ROW + "10\t0.5\tabc\t1e-30\t1e-5\n", r"line 3, column 3 .*'abc'"),
        (HEADER + ROW + "10\t0.5\t1.5\t1e-30\t1e-5\t7\n", "malformed.*line 3"),
        (HEADER + ROW + "10\t0.5\n", r"line 3, column 3|line 3.*expected"),
        (HEADER + "nan\t0.5\t1\t1\t1\n", r"line 2, column 1 \(s\).*finite"),
        (HEADER + "10\tinf\t1\t1\t1\n", r"line 2, column 2 \(theta\)"),
    ],
)
def test_bad_tables_name_file_and_place(tmp_path, text, pattern):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(TableError, match=pattern) as info:
        read_training_set(tmp_path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_last_line_is_caught(tmp_path):
    write(tmp_path / "t.txt", HEADER + ROW + "10\t0.5\t1.5\t1e-3")
    with pytest.raises(TableError, match="line 3"):
        read_training_set(tmp_path)


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(TableError, match="no such file or directory"):
        read_training_set(tmp_path / "nope")
    with pytest.raises(TableError, match=r"no \*\.txt tables"):
        read_training_set(tmp_path)


def test_files_whose_columns_differ(tmp_path):
    write(tmp_path / "a.txt", HEADER + ROW)
    write(tmp_path / "b.txt", "s(log)\ttheta(lin)\tj_I(res)\n1\t0.5\t3\n")
    with pytest.raises(TableError, match=r"b\.txt: columns differ from those of"):
        read_training_set(tmp_path)


def test_last_line_cut_inside_a_number_is_caught(tmp_path):
    # Regression (new-user trial): a last line cut inside its final number
    # still has every field, so only the missing final newline gives it away.
    write(tmp_path / "t.txt", HEADER + ROW + "10\t0.5\t1.5\t1e-30\t1")
    with pytest.raises(
        TableError, match="line 3: the file does not end with a newline"
    ):
        read_training_set(tmp_path)
