"""kgbias.benchmarks reads what the benchmark writes: hand-made rows through bench's own writer."""

import math

import matplotlib
import pytest

from bench.__main__ import add_ratios, write_csv
from bench.common import row
from kgbias.benchmarks import (debias_overhead, latest_targets, newest_run, plot_overhead, plot_scaling,
                               read_bench, scaling_rows, target_rows)

matplotlib.use("Agg")


def _epochs(section, name, seconds):
    return row(section, name, sum(seconds[1:]) / len(seconds[1:]), "s", epoch_seconds=seconds, alternated=True)


def _rows():
    return [
        _epochs("debias", "kgbias dot steady epoch", [9.0, 4.0, 4.0]),
        _epochs("debias", "kgbias dot+kl steady epoch", [9.0, 4.4, 4.4]),
        _epochs("debias", "kgbias dot+kl+attr steady epoch", [9.0, 5.0, 6.0]),
        row("debias", "kgbias dot+kl+attr / dot step, chunks interleaved", 1.3, "x",
            interval_low=1.25, interval_high=1.36, note="median of 80 rounds"),
        row("debias", "kgbias dot+bose steady epoch", 24.0, "s"),
        _epochs("debias-fb15k", "kgbias dot steady epoch", [20.0, 10.0, 10.0]),
        _epochs("debias-fb15k", "kgbias dot+kl+attr steady epoch", [20.0, 12.0, 12.0]),
        row("scaling", "synthetic 1e+05 entities, epoch", 20.0, "s", n_entities=100_000, n_triples=1_000_000,
            s_per_million_triples=20.0, peak_rss_mib=600.0),
        row("scaling", "synthetic 1e+04 entities, epoch", 2.2, "s", n_entities=10_000, n_triples=100_000,
            s_per_million_triples=22.0, peak_rss_mib=400.0),
    ]


@pytest.fixture
def bench_csv(tmp_path):
    path = tmp_path / "run-a.csv"
    write_csv(add_ratios(_rows()), path, {"cpu": "test", "threads": 2})
    return path


def test_debias_overhead_divides_by_its_own_graphs_basic(bench_csv):
    overhead = debias_overhead(read_bench([bench_csv])).set_index(["dataset", "method"])
    assert set(overhead["run"]) == {"run-a"}
    assert overhead.loc[("fb15k-237", "Basic"), "epoch_vs_basic"] == 1.0
    assert overhead.loc[("fb15k-237", "KL"), "epoch_vs_basic"] == pytest.approx(4.4 / 4.0)
    assert overhead.loc[("fb15k-237", "KL + Attr."), "epoch_vs_basic"] == pytest.approx(5.5 / 4.0)
    assert overhead.loc[("fb15k-237", "Bose"), "epoch_vs_basic"] == pytest.approx(6.0)
    assert overhead.loc[("fb15k", "KL + Attr."), "epoch_vs_basic"] == pytest.approx(1.2)
    assert ("fb15k", "KL") not in overhead.index  # not timed there: no row, rather than a NaN one
    attr = overhead.loc[("fb15k-237", "KL + Attr.")]
    assert (attr["step_vs_basic"], attr["step_interval_low"], attr["step_interval_high"]) == (1.3, 1.25, 1.36)
    assert math.isnan(overhead.loc[("fb15k", "KL + Attr."), "step_vs_basic"])
    # paper 2's Table 3 (FB15K): 89.4 s against 68.4 s
    assert attr["paper_vs_basic"] == pytest.approx(89.4 / 68.4)


def test_target_rows_are_the_ratio_rows(bench_csv):
    targets = target_rows(read_bench([bench_csv])).set_index("measurement")
    assert targets.loc["KL + Attr. / Basic epoch", "value"] == pytest.approx(5.5 / 4.0)
    assert not targets.loc["KL + Attr. / Basic epoch", "met"]
    assert targets.loc["KL + Attr. / Basic step, chunks interleaved", "target"] == "<= 1.15 (paper: 1.31)"
    growth = targets.loc["s per 1e6 triples, 1e+05 / 1e+04 entities"]
    assert growth["value"] == pytest.approx(20.0 / 22.0) and growth["met"]


def test_scaling_rows_are_sorted_by_entities(bench_csv):
    scaling = scaling_rows(read_bench([bench_csv]))
    assert scaling["n_entities"].tolist() == [10_000, 100_000]
    assert scaling["s_per_million_triples"].tolist() == [22.0, 20.0]


def test_several_runs_keep_their_names(bench_csv, tmp_path):
    other = tmp_path / "run-b.csv"
    write_csv(add_ratios(_rows()[:3]), other, {"cpu": "test"})
    overhead = debias_overhead(read_bench([bench_csv, other]))
    assert overhead.groupby("run").size().to_dict() == {"run-a": 6, "run-b": 3}


def test_plots_show_the_measured_ratios(bench_csv):
    import matplotlib.pyplot as plt

    frame = read_bench([bench_csv])
    fig, (left, right) = plt.subplots(1, 2)
    plot_overhead(debias_overhead(frame), targets={"issue 5": 1.3}, ax=left)
    medians = left.lines[0].get_ydata()
    assert medians[0] == 1.3 and math.isnan(medians[1])
    assert [line.get_ydata()[0] for line in left.lines if line.get_linestyle() == "--"] == [1.3]
    plot_scaling(scaling_rows(frame), ax=right)
    assert right.lines[0].get_ydata().tolist() == [22.0, 20.0]
    plt.close(fig)


def test_bad_files_name_themselves(tmp_path):
    not_bench = tmp_path / "other.csv"
    not_bench.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"other\.csv: not a bench CSV, missing column\(s\) \['section'"):
        read_bench([not_bench])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: not readable"):
        read_bench([empty])
    with pytest.raises(ValueError, match=r"absent\.csv: not readable"):
        read_bench([tmp_path / "absent.csv"])
    with pytest.raises(ValueError, match="no bench CSV"):
        read_bench([])


def test_patterns_expand_in_name_order(bench_csv, tmp_path):
    write_csv(add_ratios(_rows()[:3]), tmp_path / "run-b.csv", {"cpu": "test"})
    frame = read_bench([tmp_path / "run-*.csv", bench_csv])  # run-a twice: read once
    assert list(dict.fromkeys(frame["run"])) == ["run-a", "run-b"]
    with pytest.raises(ValueError, match=r"nothing-\*\.csv: no file matches"):
        read_bench([tmp_path / "nothing-*.csv"])


def test_latest_targets_take_each_devices_newest_run(tmp_path):
    for name, started, device, floor in (("old", "2026-11-26T10:00:00", "cpu", 1.9),
                                         ("new", "2026-11-27T10:00:00", "cpu", 1.8),
                                         ("gpu", "2026-11-25T10:00:00", "cuda", 20.0)):
        rows = [row("train", "kgbias dot steady epoch", floor, "s", device=device),
                row("train", "matmul floor per epoch", 1.0, "s", device=device)]
        write_csv(add_ratios(rows), tmp_path / f"{name}.csv", {"device": device, "started": started})
    latest = latest_targets(target_rows(read_bench([tmp_path / "*.csv"])))
    assert latest[["device", "run", "value"]].values.tolist() == [["cpu", "new", 1.8], ["cuda", "gpu", 20.0]]


def test_newest_run_is_the_last_started(tmp_path):
    for name, started in (("b", "2026-11-27T09:00:00"), ("a", "2026-11-27T10:00:00")):
        write_csv(add_ratios(_rows()[:3]), tmp_path / f"{name}.csv", {"started": started})
    overhead = debias_overhead(read_bench([tmp_path / "*.csv"]))
    assert newest_run(overhead) == "a"
    with pytest.raises(ValueError, match="no run"):
        newest_run(overhead.iloc[:0])


def test_a_run_without_debias_rows_gives_empty_views(tmp_path):
    path = tmp_path / "scaling-only.csv"
    write_csv(add_ratios(_rows()[-2:]), path, {"cpu": "test"})
    frame = read_bench([path])
    overhead = debias_overhead(frame)
    assert overhead.empty and "epoch_vs_basic" in overhead.columns
    assert len(scaling_rows(frame)) == 2


def test_train_ratios_of_runs_without_a_train_section_are_left_out(tmp_path):
    """Older CSVs hold a first-epoch ratio computed from a debias section's Basic."""
    rows = [row("debias", "kgbias dot first epoch", 6.0, "s"), row("debias", "kgbias dot steady epoch", 5.0, "s"),
            row("ratio", "first epoch / steady epoch", 1.2, "x", target="<= 1.0", met=False)]
    write_csv(rows, tmp_path / "debias-only.csv", {"device": "cpu"})
    write_csv([{**r, "section": "train" if r["section"] == "debias" else r["section"]} for r in rows],
              tmp_path / "train.csv", {"device": "cpu"})
    targets = target_rows(read_bench([tmp_path / "*.csv"]))
    assert targets["run"].tolist() == ["train"]
