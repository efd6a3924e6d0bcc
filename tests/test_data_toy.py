"""The synthetic graph: determinism, planted skew, and valid/test covered by train."""

import math
import time

import numpy as np
import pytest
import torch

from kgbias.data import load_dataset, toy_kg
from kgbias.errors import DataError


def gender_profession_counts(kg):
    """n_people[profession name] = (n_men, n_women)."""
    gender = dict(kg.attribute_pairs("gender").tolist())
    male = kg.value_id("gender", "male")
    counts = {}
    for person, profession in kg.attribute_pairs("profession").tolist():
        men, women = counts.get(kg.entities[profession], (0, 0))
        counts[kg.entities[profession]] = (men + 1, women) if gender[person] == male else (men, women + 1)
    return counts


def test_same_seed_same_graph_and_different_seed_differs():
    first, second = toy_kg(seed=3), toy_kg(seed=3)
    assert first.entities == second.entities and first.relations == second.relations
    for split in ("train", "valid", "test"):
        assert torch.equal(first.split(split), second.split(split))
    assert first.metadata == second.metadata
    assert not torch.equal(first.train, toy_kg(seed=4).train)


def test_shape_sizes_and_names():
    start = time.perf_counter()
    kg = load_dataset("toy")
    assert time.perf_counter() - start < 1.0
    assert kg.name == "toy"
    assert set(kg.sensitive) == {"gender", "profession", "nationality"}
    assert kg.named_values == {"gender": {"male": "male", "female": "female"}}
    assert kg.humans.numel() == 600
    assert kg.attribute_pairs("gender").shape == (600, 2)
    assert set(kg.attribute_counts("profession").index) == {f"profession_{p:02d}" for p in range(20)}
    per_person = torch.bincount(kg.attribute_pairs("profession")[:, 0])
    assert per_person[kg.humans].min() >= 1 and per_person.max() <= 3
    n_total = sum(kg.split(s).shape[0] for s in ("train", "valid", "test"))
    assert kg.valid.shape[0] == kg.test.shape[0] == round(0.05 * n_total)


def test_valid_and_test_entities_and_relations_occur_in_train():
    kg = toy_kg(n_people=300, seed=1)
    train_entities = set(kg.train[:, [0, 2]].flatten().tolist())
    train_relations = set(kg.train[:, 1].tolist())
    held_out = torch.cat([kg.valid, kg.test])
    assert set(held_out[:, [0, 2]].flatten().tolist()) <= train_entities
    assert set(held_out[:, 1].tolist()) <= train_relations
    gender_relation = kg.relation_id("gender")
    assert not (held_out[:, 1] == gender_relation).any()  # sensitive facts other than profession stay in train


def test_planted_skew_shows_in_counts():
    kg = toy_kg(n_people=3000, skew=3.0, seed=0)
    planted = kg.metadata["planted_skew"]
    true_ratio = kg.metadata["true_log_ratio"]
    counts = gender_profession_counts(kg)
    n_men, n_women = kg.attribute_counts("gender")[["male", "female"]]
    # Men are over-represented in the most positively skewed professions, women in the most negative.
    most_male = max(planted, key=planted.get)
    most_female = min(planted, key=planted.get)
    assert counts[most_male][0] / n_men > 3 * counts[most_male][1] / n_women
    assert counts[most_female][1] / n_women > 3 * counts[most_female][0] / n_men
    names = sorted(counts)
    observed = [math.log((counts[p][0] + 0.5) / n_men) - math.log((counts[p][1] + 0.5) / n_women) for p in names]
    assert np.corrcoef(observed, [planted[p] for p in names])[0, 1] > 0.9
    assert np.corrcoef(observed, [true_ratio[p] for p in names])[0, 1] > 0.9
    # planted_p is evenly spaced in [-1, 1] times skew
    assert sorted(planted.values()) == pytest.approx(list(np.linspace(-3.0, 3.0, 20)))


def test_zero_skew_means_no_gender_dependence():
    kg = toy_kg(skew=0.0, seed=2)
    assert all(value == 0.0 for value in kg.metadata["planted_skew"].values())
    assert all(value == pytest.approx(0.0, abs=1e-12) for value in kg.metadata["true_log_ratio"].values())


def test_true_log_ratio_matches_observed_rates():
    # metadata["true_log_ratio"] is exact; with 8,000 people the observed log ratio of
    # P(profession | gender) is within sampling error of it for every well-populated profession.
    kg = toy_kg(n_people=8000, skew=2.0, seed=0)
    counts = gender_profession_counts(kg)
    n_men, n_women = kg.attribute_counts("gender")[["male", "female"]]
    checked = 0
    for name, (men, women) in counts.items():
        if min(men, women) >= 150:
            observed = math.log(men / n_men) - math.log(women / n_women)
            assert observed == pytest.approx(kg.metadata["true_log_ratio"][name], abs=0.25)
            checked += 1
    assert checked >= 10


def test_toy_kwargs_only_for_toy():
    from kgbias.errors import DataError

    with pytest.raises(DataError, match="apply only to the 'toy' data set"):
        load_dataset("fb15k-237", n_people=10)


@pytest.mark.parametrize("options, message", [
    ({"colour": "blue"}, r"toy: unknown option\(s\) colour; known: n_people, "),
    ({"skew": "abc"}, "toy: skew must be a finite number, got 'abc'"),
    ({"skew": float("nan")}, "toy: skew must be a finite number"),
    ({"skew": True}, "toy: skew must be a finite number, got True"),
    ({"n_people": -5}, "toy: n_people must be an integer of at least 2, got -5"),
    ({"n_people": 1.5}, "toy: n_people must be an integer of at least 2, got 1.5"),
    ({"n_countries": 0}, "toy: n_countries must be an integer of at least 1, got 0"),
    ({"seed": -1}, "toy: seed must be an integer of at least 0, got -1"),
    ({"female_fraction": 1.5}, r"toy: female_fraction must be a number in \[0.0, 1.0\], got 1.5"),
    ({"held_out_fraction": 0.9}, r"toy: held_out_fraction must be a number in \[0.0, 0.49\], got 0.9"),
])
def test_bad_toy_options_name_the_option(options, message):
    with pytest.raises(DataError, match=message):
        load_dataset("toy", **options)
