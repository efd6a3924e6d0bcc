"""What the scaling benchmark times for a number of batches asked for."""

import pytest

from bench.__main__ import add_ratios, merge_scaling_repeats
from bench.common import row
from bench.scaling import timed_work


@pytest.mark.parametrize("batches, steps_per_epoch, expected", [
    (0, 100, (1, 0)),         # 0: one whole epoch
    (200, 1000, (0, 200)),    # a part of one epoch, extrapolated
    (1000, 100, (10, 0)),     # a small graph: whole epochs up to the batches asked for
    (1000, 1000, (1, 0)),
    (1001, 1000, (2, 0)),
])
def test_timed_work(batches, steps_per_epoch, expected):
    assert timed_work(batches, steps_per_epoch) == expected


def _timing(n_entities, seconds, peak, note_how="1000 batches timed"):
    per_million = seconds / (n_entities * 10 / 1e6)
    return row("scaling", f"synthetic {n_entities:.0e} entities, epoch", seconds, "s", n_entities=n_entities,
               n_triples=n_entities * 10, s_per_million_triples=per_million, peak_rss_mib=peak,
               note=f"{note_how}; s per 1e6 triples {per_million:.2f}; tables + AdaGrad state 16 MiB")


def test_repeated_scaling_timings_are_averaged():
    rows = [_timing(10_000, 2.0, 400.0), _timing(100_000, 20.0, 600.0),
            _timing(100_000, 24.0, 610.0), _timing(10_000, 2.2, 390.0),
            row("error", "scaling --n-entities 1000000", None, "s", note="failed")]
    merged = merge_scaling_repeats(rows)
    assert [r["section"] for r in merged] == ["error", "scaling", "scaling"]
    small, large = merged[1:]
    assert small["value"] == pytest.approx(2.1) and small["s_per_million_triples"] == pytest.approx(21.0)
    assert large["value"] == pytest.approx(22.0) and large["peak_rss_mib"] == 610.0
    assert small["note"] == ("mean of 2 timings, s per 1e6 triples 20.00, 22.00; 1000 batches timed; "
                             "tables + AdaGrad state 16 MiB")
    # the growth ratio of issue 6 is taken from the merged rows
    growth = next(r for r in add_ratios(merged) if r["name"] == "s per 1e6 triples, 1e+05 / 1e+04 entities")
    assert growth["value"] == pytest.approx(22.0 / 21.0)
