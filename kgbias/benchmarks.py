"""Reading the CSVs that ``make bench`` writes (``python -m bench``), for notebook 06.

A bench CSV has one row per measurement (``section``, ``name``, ``value``, ``unit``, and more
columns that only some rows fill). Three views of it:

- :func:`debias_overhead`: seconds per epoch of Basic, KL, KL + Attr. and Bose, and their ratios
  to Basic, beside paper 2's Table 3 (its FB15K seconds per epoch);
- :func:`target_rows`: the ``ratio`` rows, each with issue 6's target and whether it was met
  (:func:`latest_targets`: the newest run's row of each);
- :func:`scaling_rows`: seconds per 10^6 triples and peak memory on the synthetic graphs.
"""

from __future__ import annotations

import glob
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

# Paper 2, Table 3: seconds per epoch on FB15K (PyTorch-BigGraph on an 8-core i7-7700)
PAPER_SECONDS_PER_EPOCH = {"Basic": 68.4, "KL": 71.0, "KL + Attr.": 89.4, "Bose": 533.3}

# the bench's row names per method (a debias section trains the dot TransE of the papers' setting)
METHOD_ROWS = {"Basic": "kgbias dot", "KL": "kgbias dot+kl", "KL + Attr.": "kgbias dot+kl+attr",
               "Bose": "kgbias dot+bose"}
# a debias section's graph; CSVs before 2026-11-27 have no dataset column and only "debias"
SECTION_DATASETS = {"debias": "fb15k-237", "debias-fb15k": "fb15k"}
REQUIRED_COLUMNS = ("section", "name", "value", "unit")
# ratios of the train section's epochs (issue 6, target 1)
TRAIN_RATIOS = ("steady epoch / matmul floor", "step / matmul floor, interleaved", "first epoch / steady epoch")
OVERHEAD_COLUMNS = ["run", "started", "dataset", "method", "seconds_per_epoch", "epoch_vs_basic", "step_vs_basic",
                    "step_interval_low", "step_interval_high", "paper_seconds_per_epoch", "paper_vs_basic"]


def read_bench(paths) -> pd.DataFrame:
    """The rows of one or more bench CSVs, each with a ``run`` column: its file's stem.

    ``paths``: files, or glob patterns (``bench/measured/cpu-*.csv``), each pattern's matches in
    name order. Raises ``ValueError`` naming the file when it is unreadable or not a bench CSV, and
    the pattern when it matches nothing.
    """
    files = []
    for entry in map(str, paths):
        if any(char in entry for char in "*?["):  # a glob pattern
            matches = sorted(glob.glob(entry))
            if not matches:
                raise ValueError(f"{entry}: no file matches")
            files += matches
        else:
            files.append(entry)
    frames = []
    for path in map(Path, dict.fromkeys(files)):  # a file named twice is read once
        try:
            frame = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise ValueError(f"{path}: not readable as a bench CSV ({error})") from error
        missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(f"{path}: not a bench CSV, missing column(s) {missing}")
        frames.append(frame.assign(run=path.stem))
    if not frames:
        raise ValueError("no bench CSV given")
    return pd.concat(frames, ignore_index=True)


def _value(rows: pd.DataFrame, name: str, column: str = "value") -> float:
    found = rows.loc[rows["name"] == name, column] if column in rows.columns else pd.Series(dtype=float)
    return float(found.iloc[0]) if len(found) else float("nan")


def debias_overhead(frame: pd.DataFrame) -> pd.DataFrame:
    """Per run (and when it started), graph and method: steady seconds per epoch, its ratio to Basic of the same
    section, the per-step ratio from interleaved chunks (median and its 95% interval, where the
    run timed them), and paper 2's seconds per epoch and ratio (FB15K)."""
    records = []
    for (run, section), rows in frame[frame["section"].isin(SECTION_DATASETS)].groupby(["run", "section"], sort=False):
        basic = _value(rows, "kgbias dot steady epoch")
        started = rows["machine_started"].iloc[0] if "machine_started" in rows.columns else None
        for method, stem in METHOD_ROWS.items():
            seconds = _value(rows, f"{stem} steady epoch")
            if method != "Basic" and pd.isna(seconds):
                continue
            chunks = f"{stem} / dot step, chunks interleaved"
            records.append({
                "run": run, "started": started, "dataset": SECTION_DATASETS[section], "method": method,
                "seconds_per_epoch": seconds, "epoch_vs_basic": seconds / basic,
                "step_vs_basic": 1.0 if method == "Basic" else _value(rows, chunks),
                "step_interval_low": 1.0 if method == "Basic" else _value(rows, chunks, "interval_low"),
                "step_interval_high": 1.0 if method == "Basic" else _value(rows, chunks, "interval_high"),
                "paper_seconds_per_epoch": PAPER_SECONDS_PER_EPOCH[method],
                "paper_vs_basic": PAPER_SECONDS_PER_EPOCH[method] / PAPER_SECONDS_PER_EPOCH["Basic"],
            })
    frame = pd.DataFrame.from_records(records, columns=OVERHEAD_COLUMNS)  # columns even when empty
    return frame.sort_values("started", kind="stable").reset_index(drop=True)


def newest_run(table: pd.DataFrame) -> str:
    """The run of ``table`` (:func:`debias_overhead`, :func:`target_rows`) that started last."""
    if table.empty:
        raise ValueError("no run to choose from")
    return table.sort_values("started", kind="stable")["run"].iloc[-1]


def target_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``ratio`` rows (issue 6's targets): run, device, started, measurement, value, target, met."""
    # a ratio row's own device column is empty; the run's device is in machine_device
    ratios = frame[frame["section"] == "ratio"].drop(columns=["device"], errors="ignore").rename(
        columns={"name": "measurement", "machine_device": "device", "machine_started": "started"})
    # until 2026-11-27 the bench also wrote these from a debias section's Basic, whose epochs
    # alternate with other methods', when the run had no train section: not issue 6's measurement
    timed_train = set(frame.loc[frame["section"] == "train", "run"])
    ratios = ratios[~ratios["measurement"].isin(TRAIN_RATIOS) | ratios["run"].isin(timed_train)]
    columns = [c for c in ("run", "device", "started", "measurement", "value", "target", "met") if c in ratios.columns]
    return ratios[columns].reset_index(drop=True)


def latest_targets(targets: pd.DataFrame) -> pd.DataFrame:
    """Per device and measurement, the row of the run that started last (:func:`target_rows`)."""
    order = targets.sort_values("started", kind="stable")
    return (order.groupby(["device", "measurement"], sort=False).tail(1)
            .sort_values(["device", "measurement"], kind="stable").reset_index(drop=True))


def scaling_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The synthetic graphs' rows: seconds per epoch and per 10^6 triples, peak memory."""
    rows = frame[frame["section"] == "scaling"]
    columns = [c for c in ("run", "device", "n_entities", "n_triples", "value", "s_per_million_triples",
                           "peak_rss_mib", "peak_device_mib") if c in rows.columns]
    rows = rows[columns].rename(columns={"value": "seconds_per_epoch"})
    rows = rows.astype({c: "int64" for c in ("n_entities", "n_triples") if c in rows.columns})
    return rows.sort_values(["run", "n_entities"], kind="stable").reset_index(drop=True)


def plot_overhead(overhead: pd.DataFrame, method: str = "KL + Attr.", targets: dict[str, float] | None = None,
                  ax=None):
    """``method`` / Basic per run and graph, in the order of ``overhead`` (by start): the interleaved
    chunks' median with its 95% interval (filled), the steady epochs' ratio (open); horizontal
    lines at ``targets``."""
    ax = ax or plt.gca()
    rows = overhead[overhead["method"] == method].reset_index(drop=True)
    labels = [f"{run}\n{dataset}" for run, dataset in zip(rows["run"], rows["dataset"])]
    positions = range(len(rows))
    has_chunks = rows["step_vs_basic"].notna()
    low = (rows["step_vs_basic"] - rows["step_interval_low"]).where(has_chunks)
    high = (rows["step_interval_high"] - rows["step_vs_basic"]).where(has_chunks)
    ax.errorbar(positions, rows["step_vs_basic"], yerr=[low.fillna(0), high.fillna(0)], fmt="o", capsize=3,
                label="per step, interleaved chunks (95% interval)")
    ax.scatter(positions, rows["epoch_vs_basic"], marker="o", facecolors="none", edgecolors="C1",
               label="steady epochs")
    for k, (label, value) in enumerate((targets or {}).items()):
        ax.axhline(value, linestyle="--", linewidth=1, color=f"C{k + 2}", label=label)
    ax.set_xticks(list(positions), labels, rotation=90, fontsize=7)
    ax.set_ylabel(f"{method} / Basic")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def plot_scaling(scaling: pd.DataFrame, ax=None):
    """Seconds per 10^6 triples against the number of entities (log scale), one line per run."""
    ax = ax or plt.gca()
    for run, rows in scaling.groupby("run", sort=False):
        ax.plot(rows["n_entities"], rows["s_per_million_triples"], marker="o", label=run)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("entities (10x as many triples)")
    ax.set_ylabel("seconds per 10^6 triples")
    ax.legend(fontsize=7)
    return ax
