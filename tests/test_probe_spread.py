"""scripts/probe_spread.py: a finished run's probe margins over seeds, read back from its folder."""

import pytest

from kgbias.config import TrainConfig
from kgbias.debias.metrics import probe_margins, score_difference
from kgbias.training import train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_row_matches_the_models_own_margins(tmp_path, script):
    config = TrainConfig(dataset="toy", embedding_dim=8, n_negatives=20, batch_size=256, n_epochs=2,
                         debias="kl", debias_weights={"gender": 5.0})
    run = train(config, run_dir=tmp_path / "run")
    row = script("probe_spread").spread_row(str(tmp_path / "run"), "gender", [0, 2])
    margins = probe_margins(run.model, run.kg, "gender", seeds=[0, 2])["margin"]
    assert (row["method"], row["weights"], row["train_seed"]) == ("KL", "gender=5", 0)
    assert [row["margin_0"], row["margin_2"]] == [round(float(m), 3) for m in margins]
    assert row["margin_mean"] == round(float(margins.mean()), 3)
    assert row["margin_sd"] == round(float(margins.std(ddof=1)), 3)
    assert row["difference"] == round(float(score_difference(run.model, run.kg, "gender")), 3)
    assert row["test_mrr"] == round(run.metrics["test_without_sensitive"]["mrr_filtered"], 4)
