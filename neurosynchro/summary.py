"""Per-column statistics of a training set, for ``neurosynchro summarize``."""

import numpy as np
import pandas as pd


def summarize(training_set):
    """A table of statistics, one row per column.

    Parameters
    ----------
    training_set : neurosynchro.samples.TrainingSet

    Returns
    -------
    str
        Tab-separated text: column, role suffix, count of finite values, NaN
        and infinite counts, min, median, max, and the counts of negative,
        zero and positive values.
    """
    rows = []
    for name, suffix in training_set.suffixes.items():
        values = training_set.table[name].to_numpy()
        finite = values[np.isfinite(values)]
        stats = (
            (finite.min(), np.median(finite), finite.max())
            if finite.size
            else (np.nan,) * 3
        )
        rows.append(
            {
                "column": name,
                "role": suffix,
                "finite": finite.size,
                "nan": int(np.isnan(values).sum()),
                "inf": int(np.isinf(values).sum()),
                "min": stats[0],
                "median": stats[1],
                "max": stats[2],
                "negative": int((finite < 0).sum()),
                "zero": int((finite == 0).sum()),
                "positive": int((finite > 0).sum()),
            }
        )
    header = f"rows: {len(training_set)} in {len(training_set.files)} file(s)\n"
    frame = pd.DataFrame(rows)
    return header + frame.to_csv(sep="\t", index=False, float_format="%.6g")
