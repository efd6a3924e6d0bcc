"""scripts/score_offset.py: a dot model's gender gap split into the person's part and the shared part."""

import dataclasses

import pytest
import torch

from kgbias.debias.metrics import score_difference, top_values_for
from kgbias.models import TransE


def test_the_gap_splits_into_the_persons_part_and_the_relations_part(tiny_kg, script):
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 2)
    people = {"ann": (0, 1), "bob": (1, 0), "cat": (0, 2), "dan": (3, 0), "eve": (0, 0), "fred": (2, 1)}
    with torch.no_grad():
        model.entity.weight.zero_()
        for name, vector in {**people, "male": (1, 0), "female": (0, 1)}.items():
            model.entity.weight[tiny_kg.entity_id(name)] = torch.tensor(vector, dtype=torch.float)
        model.relation.weight[tiny_kg.relation_id("gender")] = torch.tensor([2.0, 0.5])
    table = script("score_offset").offset_parts(model, tiny_kg)
    # first top value minus second: male first (a tie, broken by id), person part x - y,
    # shared r . (male - female) = 1.5
    assert [tiny_kg.label(int(v)) for v in top_values_for(tiny_kg, "gender")] == ["male", "female"]
    assert table["n_people"].to_dict() == {"male": 3, "female": 3}
    assert table.loc["male", "person_part"] == pytest.approx((1 + 3 + 1) / 3)
    assert table.loc["female", "person_part"] == pytest.approx((-1 - 2 + 0) / 3)
    assert table["shared_part"].tolist() == pytest.approx([1.5] * 2)
    assert table.loc["male", "gap"] == pytest.approx(5 / 3 + 1.5)
    # the table's gap is the mean of the model's own score differences over each gender's people
    male, female = tiny_kg.entity_id("male"), tiny_kg.entity_id("female")
    for gender, names in {"male": ["bob", "dan", "fred"], "female": ["ann", "cat", "eve"]}.items():
        ids = torch.tensor([tiny_kg.entity_id(n) for n in names])
        relations = torch.full_like(ids, tiny_kg.relation_id("gender"))
        scores = model.score_tails(ids, relations, torch.tensor([male, female])).detach()
        assert table.loc[gender, "gap"] == pytest.approx(float((scores[:, 0] - scores[:, 1]).mean()))


def test_a_distance_model_has_no_shared_part(tiny_kg, script):
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 2, comparator="l2")
    with pytest.raises(ValueError, match="not affine"):
        script("score_offset").offset_parts(model, tiny_kg)
    with pytest.raises(ValueError, match="not affine"):
        script("score_offset").difference_parts(model, tiny_kg, "profession")


def test_the_difference_in_scores_splits_into_a_shared_and_a_persons_part(tiny_kg, script):
    # fred a nurse instead of a pilot: profession's values nurse (ann, eve, fred), doctor (cat,
    # dan), pilot (bob), unequal, so a base rate moves the mean over pairs; relation (1, 0) scores
    # nurse 1, doctor 0, pilot 3 for everyone
    train = tiny_kg.train.clone()
    fred_row = (train[:, 0] == tiny_kg.entity_id("fred")) & (train[:, 1] == tiny_kg.relation_id("profession"))
    train[fred_row, 2] = tiny_kg.entity_id("nurse")
    kg = dataclasses.replace(tiny_kg, train=train)
    model = TransE(kg.n_entities, kg.n_relations, 2)
    vectors = {"ann": (0, 1), "bob": (1, 0), "cat": (0, 2), "dan": (3, 0), "eve": (0, 0), "fred": (2, 1),
               "nurse": (1, 0), "doctor": (0, 1), "pilot": (3, 1)}
    with torch.no_grad():
        model.entity.weight.zero_()
        for name, vector in vectors.items():
            model.entity.weight[kg.entity_id(name)] = torch.tensor(vector, dtype=torch.float)
        model.relation.weight[kg.relation_id("profession")] = torch.tensor([1.0, 0.0])
    parts = script("score_offset").difference_parts(model, kg, "profession")
    assert parts["n_pairs"] == 6
    # shared part per pair, b_v - mean of the other two b: nurse 1 - 1.5, doctor 0 - 2, pilot 3 - .5
    assert parts["shared"] == pytest.approx((3 * -0.5 + 2 * -2 + 2.5) / 6)
    # person part per pair, e_p . (K_v - mean of the other two K), K = the value's vector:
    # nurse (1,0) - (1.5,1) = (-.5,-1): ann -1, eve 0, fred -2;
    # doctor (0,1) - (2,.5) = (-2,.5): cat 1, dan -6; pilot (3,1) - (.5,.5) = (2.5,.5): bob 2.5
    assert parts["person"] == pytest.approx((-1 + 0 - 2 + 1 - 6 + 2.5) / 6)
    # the two parts add up to the model's own difference in scores
    assert parts["difference"] == pytest.approx(score_difference(model, kg, "profession"))
