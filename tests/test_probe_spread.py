"""scripts/probe_spread.py: a finished run's probe margins over seeds, read back from its folder."""

import pytest

from kgbias.config import TrainConfig
from kgbias.debias.metrics import probe_margins, score_difference
from kgbias.errors import RunError
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


def test_against_basic_reads_the_same_seed_basic_beside_the_run(tmp_path, script):
    probe_spread = script("probe_spread")
    shape = dict(dataset="toy", embedding_dim=8, n_negatives=20, batch_size=256, n_epochs=2, seed=1)
    config = TrainConfig(**shape, debias="kl", debias_weights={"gender": 5.0}, kl_people="batch+centroid",
                         kl_second_scale=3.0)
    run = train(config, run_dir=tmp_path / config.run_name())
    with pytest.raises(RunError, match="no Basic run"):
        probe_spread.spread_row(str(run.path), "gender", [0], against_basic=True)
    basic = train(TrainConfig(**shape), run_dir=tmp_path / TrainConfig(**shape).run_name())
    other_seed = train(TrainConfig(**{**shape, "seed": 2}), run_dir=tmp_path / TrainConfig(**{**shape, "seed": 2}).run_name())
    assert other_seed.metrics["test_without_sensitive"] != basic.metrics["test_without_sensitive"]  # a wrong pick shows
    row = probe_spread.spread_row(str(run.path), "gender", [0], against_basic=True)
    mrr = run.metrics["test_without_sensitive"]["mrr_filtered"]
    basic_mrr = basic.metrics["test_without_sensitive"]["mrr_filtered"]
    assert row["mrr_vs_basic"] == round(mrr / basic_mrr, 3)
    assert row["difference_vs_basic"] == round(float(score_difference(run.model, run.kg, "gender"))
                                               / float(score_difference(basic.model, basic.kg, "gender")), 3)
    assert "mrr_vs_basic" not in probe_spread.spread_row(str(run.path), "gender", [0])
