"""scripts/score_offset.py: a dot model's gender gap split into the person's part and the shared part."""

import pytest
import torch

from kgbias.debias.metrics import top_values_for
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
    with pytest.raises(ValueError, match="not affine"):
        script("score_offset").offset_parts(TransE(tiny_kg.n_entities, tiny_kg.n_relations, 2, comparator="l2"), tiny_kg)
