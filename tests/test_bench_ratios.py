"""The benchmark's ratio table (bench/__main__.py), on hand-made measurements."""

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
