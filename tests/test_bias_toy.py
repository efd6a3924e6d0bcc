"""The bias measure recovers the toy graph's planted skew; the permutation null stays quiet without it.

Small trainings (about 2 s each on a CPU). Measured values are in the assertion messages.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from kgbias.bias import (count_skew_correlation, gradient_bias, permutation_null, permutation_nulls, seed_stability,
                         shuffle_attribute, spearman)
from kgbias.config import TrainConfig
from kgbias.data import toy_kg
from kgbias.training import train

SEEDS = (0, 1, 2)
# Every toy profession has at least 24 people (600 people, 20 professions); min_count=1 keeps all
# of them whatever the graph, where the paper's 20 could drop a rare one.
MIN_COUNT = 1


def toy_config(seed, **overrides):
    values = dict(dataset="toy", embedding_dim=32, n_epochs=20, n_negatives=100, batch_size=256,
                  valid_every=0, seed=seed)
    return TrainConfig(**{**values, **overrides})


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def planted():
    return toy_kg(skew=2.0)


@pytest.fixture(scope="module")
def planted_frames(planted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    return [gradient_bias(train(toy_config(seed), kg=planted, run_dir=folder / f"s{seed}").model, planted,
                          min_count=MIN_COUNT)
            for seed in SEEDS]


def planted_correlation(frame, kg):
    planted = pd.Series(kg.metadata["planted_skew"])
    return spearman(frame["bias"], planted[[kg.entities[t] for t in frame["target"]]])


def test_bias_recovers_planted_skew(planted, planted_frames):
    per_seed = [planted_correlation(frame, planted) for frame in planted_frames]
    assert all(len(frame) == 20 for frame in planted_frames)
    assert min(per_seed) >= 0.85, f"Spearman with planted skew per seed: {per_seed}"
    assert np.mean(per_seed) >= 0.9, f"Spearman with planted skew per seed: {per_seed}"
    averaged = seed_stability(planted_frames).per_target
    averaged_rho = planted_correlation(averaged.rename(columns={"bias_mean": "bias"}), planted)
    assert averaged_rho >= 0.9, f"Spearman of the seed-averaged bias: {averaged_rho}"


def test_bias_follows_the_counts(planted_frames):
    for frame in planted_frames:
        # one gender per toy person
        assert (frame["count_a"] + frame["count_b"] == frame["count"]).all()
        result = count_skew_correlation(frame)
        assert result["spearman"] >= 0.8, result
        assert result["pearson"] >= 0.8, result


def test_seed_stability(planted_frames):
    stability = seed_stability(planted_frames, n=5)
    stacked = np.stack([frame.sort_values("target")["bias"].to_numpy() for frame in planted_frames])
    per_target = stability.per_target.sort_values("target")
    assert np.allclose(per_target["bias_mean"], stacked.mean(0))
    assert np.allclose(per_target["bias_std"], stacked.std(0, ddof=1))
    assert (per_target["n_seeds"] == 3).all()
    assert stability.per_target["bias_mean"].is_monotonic_decreasing
    # the 5 most male / most female toy professions are mostly the same across seeds
    assert 0.5 <= stability.top_overlap_a <= 1.0, stability.top_overlap_a
    assert 0.5 <= stability.top_overlap_b <= 1.0, stability.top_overlap_b


def test_shuffle_attribute_permutes_values_among_people(planted):
    shuffled = shuffle_attribute(planted, "gender", seed=3)
    gender = planted.relation_id("gender")
    for split in ("train", "valid", "test"):
        before, after = planted.split(split), shuffled.split(split)
        assert before.shape == after.shape
        other = before[:, 1] != gender
        assert torch.equal(before[other], after[other])
    old = dict(planted.attribute_pairs("gender").tolist())
    new = dict(shuffled.attribute_pairs("gender").tolist())
    assert sorted(old) == sorted(new)  # same people, one gender each
    assert sorted(old.values()) == sorted(new.values())  # same counts
    assert sum(old[p] != new[p] for p in old) > 100  # 440 men and 160 women: about 235 expected
    assert torch.equal(shuffle_attribute(planted, "gender", seed=3).train, shuffled.train)
    assert not torch.equal(shuffle_attribute(planted, "gender", seed=4).train, shuffled.train)
    assert shuffled.metadata["shuffled"] == {"attribute": "gender", "seed": 3}


def test_permutation_null_flags_no_more_than_chance_without_skew(tmp_path):
    kg = toy_kg(skew=0.0)
    result = permutation_null(toy_config(0), kg, tmp_path, n_permutations=19, min_count=MIN_COUNT)
    assert len(result) == 20
    assert result["p_value"].between(0.05, 1.0).all()
    n_flagged = int((result["p_value"] <= 0.05).sum())
    # Each p-value is exact: P(p <= 0.05) = 1/20 under the null, so about 1 of 20 professions is
    # flagged. The 20 tests share their null models, so they are not independent, but if they
    # were, P(Binomial(20, 0.05) >= 4) = 0.016; at most 3 is the bound.
    assert n_flagged <= 3, result[["label", "bias", "null_mean", "null_std", "p_value"]]
    # a rerun reuses the 20 cached runs instead of training again
    again = permutation_null(toy_config(0), kg, tmp_path, n_permutations=19, min_count=MIN_COUNT)
    assert np.array_equal(again["p_value"], result["p_value"])


def test_permutation_null_flags_strongly_planted_professions(planted, tmp_path):
    result = permutation_null(toy_config(0), planted, tmp_path, n_permutations=19, min_count=MIN_COUNT)
    result["planted"] = [planted.metadata["planted_skew"][planted.entities[t]] for t in result["target"]]
    flagged = result[result["p_value"] <= 0.05]
    # power: skew 2 plants log-ratios up to +-2; several professions reach the smallest p (0.05)
    assert len(flagged) >= 4, result[["label", "bias", "p_value", "planted"]]
    # and each is flagged in the planted direction, for a clearly planted profession
    assert (np.sign(flagged["bias"] - flagged["null_mean"]) == np.sign(flagged["planted"])).all()
    assert (flagged["planted"].abs() >= 0.5).all(), flagged


def test_joint_permutation_shares_runs_and_tests_each_attribute(planted, tmp_path):
    comparisons = {"gender": ("male", "female"), "nationality": ("country_0", "country_1")}
    results = permutation_nulls(toy_config(0), planted, tmp_path, comparisons, n_permutations=4,
                                min_count=MIN_COUNT)
    assert set(results) == {"gender", "nationality"}
    # one observed run and 4 shuffled runs, shared by both attributes
    assert len(list(tmp_path.iterdir())) == 5
    for attribute, frame in results.items():
        assert frame["p_value"].isin([k / 5 for k in range(1, 6)]).all()
        assert frame.attrs["shuffled_together"] == ["gender", "nationality"]
    # the observed B_p are those of the model trained on the real graph
    observed = train(toy_config(0), kg=planted, run_dir=next(tmp_path.glob("observed-*"))).model
    nationality = gradient_bias(observed, planted, sensitive="nationality", value_a="country_0",
                                value_b="country_1", min_count=MIN_COUNT)
    assert np.allclose(results["nationality"]["bias"], nationality["bias"])
