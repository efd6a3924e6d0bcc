"""Readable top-n tables and correlations of a bias frame with the counts behind it.

Fisher et al. (2020a), Tables 1-8: the 20 professions most biased each way, with C_male / C_fem.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DIRECTIONS = ("a", "b")
# Added to each count before the log ratio so that professions with no women (or no men), which
# the paper's tables list (e.g. "military commander" 1077 / 0), get a finite skew.
COUNT_SMOOTHING = 0.5


def bias_table(frame: pd.DataFrame, n: int = 20, direction: str = "a") -> pd.DataFrame:
    """The ``n`` target values most biased towards ``value_a`` (``"a"``) or ``value_b`` (``"b"``).

    Fisher et al. (2020a), Tables 3-4. As in the paper's "most female" tables, direction ``"b"``
    swaps the two values: ``B_p`` is ``-bias`` and the count columns come in the order b, a.

    Parameters
    ----------
    frame
        A frame from :func:`~kgbias.bias.measure.gradient_bias` or
        :func:`~kgbias.bias.measure.pairwise_bias`; column names come from its ``attrs``.

    Returns
    -------
    pandas.DataFrame
        Columns ``<Target>``, ``B_p``, ``C_<value>``, ``C_<other value>``; ``n`` rows, ``B_p``
        descending.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    name_a = frame.attrs.get("value_a", "a")
    name_b = frame.attrs.get("value_b", "b")
    target = frame.attrs.get("target", "target")
    sign, first, second = (1.0, "a", "b") if direction == "a" else (-1.0, "b", "a")
    names = {"a": name_a, "b": name_b}
    table = pd.DataFrame({
        target.capitalize(): frame["label"],
        "B_p": sign * frame["bias"],
        f"C_{names[first]}": frame[f"count_{first}"],
        f"C_{names[second]}": frame[f"count_{second}"],
    })
    return table.sort_values("B_p", ascending=False, kind="stable").head(n).reset_index(drop=True)


def count_log_ratio(frame: pd.DataFrame) -> pd.Series:
    """``log((count_a + 0.5) / (count_b + 0.5))`` per row: how skewed the data itself is."""
    return np.log((frame["count_a"] + COUNT_SMOOTHING) / (frame["count_b"] + COUNT_SMOOTHING))


def spearman(x: pd.Series, y: pd.Series) -> float:
    """Spearman rank correlation as the Pearson correlation of average ranks.

    Written out because ``Series.corr(method="spearman")`` imports scipy, which kgbias does not
    depend on.
    """
    x, y = pd.Series(np.asarray(x, dtype=float)), pd.Series(np.asarray(y, dtype=float))
    return float(x.rank().corr(y.rank()))


def count_skew_correlation(frame: pd.DataFrame) -> dict:
    """Correlation of ``b_p`` with the smoothed count log-ratio (:func:`count_log_ratio`).

    Does the embedding's bias follow the imbalance in the data? The 0.5 added to each count
    (Haldane-Anscombe correction) keeps professions with a zero count.

    Returns
    -------
    dict
        ``spearman``, ``pearson`` (NaN with fewer than 2 rows) and ``n_targets``.
    """
    skew = count_log_ratio(frame)
    if len(frame) < 2:
        return {"spearman": math.nan, "pearson": math.nan, "n_targets": len(frame)}
    return {
        "spearman": spearman(frame["bias"], skew),
        "pearson": float(pd.Series(frame["bias"].to_numpy(float)).corr(pd.Series(skew.to_numpy(float)))),
        "n_targets": len(frame),
    }
