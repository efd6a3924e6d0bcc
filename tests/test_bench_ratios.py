"""The benchmark's ratio table (bench/__main__.py), on hand-made measurements."""

import pytest

from bench.__main__ import add_ratios
from bench.common import row


def _epochs(name, seconds, alternated):
    return row("debias", name, sum(seconds[1:]) / len(seconds[1:]), "s", epoch_seconds=seconds, alternated=alternated)


def _ratio(rows, name):
    return next(r for r in add_ratios(rows) if r["section"] == "ratio" and r["name"] == name)


def test_alternated_epochs_give_per_epoch_ratios():
    rows = [_epochs("kgbias dot steady epoch", [9.0, 4.0, 5.0], True),
            _epochs("kgbias dot+kl+attr steady epoch", [9.0, 5.0, 6.0], True),
            _epochs("kgbias dot+bose steady epoch", [30.0, 27.0, 18.0], False)]
    attr = _ratio(rows, "KL + Attr. / Basic epoch")
    assert attr["value"] == 5.5 / 4.5
    assert attr["met"] is False
    assert attr["note"].endswith("per steady epoch: 1.25, 1.20")
    bose = _ratio(rows, "Bose / Basic epoch")  # not alternated with Basic: no pairing of its epochs
    assert bose["value"] == 22.5 / 4.5
    assert "per steady epoch" not in bose["note"]


def test_interleaved_chunks_ratio_row():
    rows = [row("debias", "kgbias dot+kl+attr / dot step, chunks interleaved", 1.27, "x", note="median of 40 rounds")]
    attr = _ratio(rows, "KL + Attr. / Basic step, chunks interleaved")
    assert attr["value"] == 1.27 and attr["met"] is False and attr["note"] == "median of 40 rounds"
    assert _ratio([{**rows[0], "value": 1.1}], "KL + Attr. / Basic step, chunks interleaved")["met"] is True
    # with the median's interval, met only when all of it is below the target
    for high, met in ((1.14, True), (1.16, False)):
        with_interval = {**rows[0], "value": 1.1, "interval_low": 1.05, "interval_high": high}
        assert _ratio([with_interval], "KL + Attr. / Basic step, chunks interleaved")["met"] is met


def test_each_debias_graph_gets_its_own_ratios():
    """FB15K's rows (section debias-fb15k) are divided by FB15K's Basic, not FB15k-237's."""
    rows = [_epochs("kgbias dot steady epoch", [9.0, 4.0, 4.0], True),
            _epochs("kgbias dot+kl+attr steady epoch", [9.0, 6.0, 6.0], True),
            {**_epochs("kgbias dot steady epoch", [20.0, 10.0, 10.0], True), "section": "debias-fb15k"},
            {**_epochs("kgbias dot+kl+attr steady epoch", [20.0, 12.0, 12.0], True), "section": "debias-fb15k"},
            row("debias-fb15k", "kgbias dot+kl+attr / dot step, chunks interleaved", 1.21, "x", note="40 rounds")]
    assert _ratio(rows, "KL + Attr. / Basic epoch")["value"] == 6.0 / 4.0
    assert _ratio(rows, "KL + Attr. / Basic epoch (FB15K)")["value"] == 12.0 / 10.0
    assert _ratio(rows, "KL + Attr. / Basic step, chunks interleaved (FB15K)")["value"] == 1.21
    assert not [r for r in add_ratios(rows) if r["name"] == "KL + Attr. / Basic step, chunks interleaved"]


class _FakeMethod:
    """Advances a fake clock by a set number of seconds per chunk and records the call order."""

    def __init__(self, label, seconds, clock, calls):
        self.label, self.seconds, self.clock, self.calls = label, list(seconds), clock, calls
        self.device = "cpu"
        self.config = type("Config", (), {"batch_size": 5})()

    def train(self, triples, epoch):
        assert len(triples) == 10 * 5  # 10 steps of this batch size
        self.calls.append(self.label)
        self.clock[0] += self.seconds.pop(0)


def test_interleaved_ratios_pair_each_round(monkeypatch):
    import torch

    from bench import common, kgbias_train

    clock, calls = [0.0], []
    monkeypatch.setattr(common.time, "perf_counter", lambda: clock[0])
    basic = _FakeMethod("dot", [2.0, 2.0, 4.0], clock, calls)
    attr = _FakeMethod("dot+kl+attr", [3.0, 2.4, 4.4], clock, calls)
    kg = type("KG", (), {"train": torch.zeros(100, 3, dtype=torch.long)})()
    (result,) = kgbias_train.interleaved_ratios([basic, attr], kg, pairs=3)
    assert calls == ["dot", "dot+kl+attr", "dot+kl+attr", "dot", "dot", "dot+kl+attr"]  # order reversed every other round
    assert result["name"] == "kgbias dot+kl+attr / dot step, chunks interleaved"
    assert abs(result["value"] - 1.2) < 1e-12  # median of the per-round ratios 1.5, 1.2, 1.1
    assert "ms per step 300.00 vs 200.00" in result["note"]  # medians of 300, 240, 440 and 200, 200, 400
    assert (result["interval_low"], result["interval_high"]) == (1.1, 1.5)  # 3 rounds: the full range


@pytest.mark.parametrize("n", [6, 10, 40, 80])
def test_median_interval_takes_the_binomial_order_statistics(n):
    """The k-th smallest to the k-th largest of n values, with k the largest count for which a fair
    Binomial(n) falls below k with probability at most 2.5% (brute-force sums of the binomial)."""
    from math import comb

    from bench.kgbias_train import median_interval

    low, high = median_interval([float(v) for v in range(1, n + 1)][::-1])  # unsorted input
    k = int(low)
    assert high == n + 1 - k

    def below(count):
        return sum(comb(n, i) for i in range(count)) / 2 ** n

    assert below(k) <= 0.025 < below(k + 1)


def test_first_epoch_ratio_reads_the_train_section_only():
    """A debias section's Basic alternates its epochs with KL and KL + Attr.: not target 1's epoch."""
    debias = [row("debias", "kgbias dot first epoch", 6.0, "s"), row("debias", "kgbias dot steady epoch", 5.0, "s")]
    assert not [r for r in add_ratios(debias) if r["name"] == "first epoch / steady epoch"]
    train = [row("train", "kgbias dot first epoch", 4.0, "s"), row("train", "kgbias dot steady epoch", 5.0, "s")]
    assert _ratio(debias + train, "first epoch / steady epoch")["value"] == 0.8


def test_floor_ratio_alternates_steps_and_products(monkeypatch):
    """Each round times 10 training steps and 10 timings of a batch's products, in an order reversed
    every other round; the ratio is the median over rounds of (ms per step) / (ms per product set)."""
    import torch

    from bench import common, kgbias_train

    clock, calls = [0.0], []
    monkeypatch.setattr(common.time, "perf_counter", lambda: clock[0])
    method = _FakeMethod("dot", [0.6, 0.5, 0.9], clock, calls)  # 60, 50, 90 ms per step
    method.config.embedding_dim, method.config.n_negatives = 4, 7
    floors = [0.030, 0.025, 0.030]  # seconds of one batch's products, as time_batch_matmuls gives them

    def products(n_queries, embedding_dim, n_negatives, device, repeats):
        assert (n_queries, embedding_dim, n_negatives, repeats) == (10, 4, 7, 10)  # 2 x batch size queries
        calls.append("products")
        return floors.pop(0), 0.0

    monkeypatch.setattr(kgbias_train, "time_batch_matmuls", products)
    kg = type("KG", (), {"train": torch.zeros(100, 3, dtype=torch.long)})()
    result = kgbias_train.floor_ratio(method, kg, rounds=3)
    assert calls == ["dot", "products", "products", "dot", "dot", "products"]
    assert result["name"] == "kgbias dot step / matmul floor, interleaved"
    assert abs(result["value"] - 2.0) < 1e-12  # per round 60/30, 50/25, 90/30
    assert (result["interval_low"], result["interval_high"]) == pytest.approx((2.0, 3.0))  # 3 rounds: the full range
    assert "ms per step 60.00 vs 30.00" in result["note"]


def test_floor_ratio_row_is_met_only_below_its_whole_interval():
    train = row("train", "kgbias dot step / matmul floor, interleaved", 1.45, "x", note="40 rounds")
    for high, met in ((1.49, True), (1.52, False)):
        result = _ratio([{**train, "interval_low": 1.40, "interval_high": high}], "step / matmul floor, interleaved")
        assert result["value"] == 1.45 and result["met"] is met and result["target"] == "<= 1.5"
    debias = {**train, "section": "debias"}  # only the train section's Basic counts
    assert not [r for r in add_ratios([debias]) if r["name"] == "step / matmul floor, interleaved"]
