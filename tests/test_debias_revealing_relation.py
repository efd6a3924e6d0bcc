"""A relation whose facts reveal gender: whitelisting it lets KL + Attr. take gender out of people.

The graph plants what FB15k-237's award relations do (docs/debiasing.md): every person is
nominated for an award category of their own gender (actor or actress), so a model that predicts
nominations puts gender into people's embeddings, where a probe finds it.
"""

import pytest
import torch

from kgbias import TrainConfig, train
from kgbias.debias.metrics import probe_accuracy
from kgbias.debias.whitelists import revealing_facts
from kgbias.graph import KnowledgeGraph, SensitiveRelation

pytestmark = pytest.mark.usefixtures("one_thread")

AWARDS = ["best_actor", "best_supporting_actor", "best_actress", "best_supporting_actress"]


def award_graph(n_people: int = 1000, seed: int = 0) -> KnowledgeGraph:
    """People, about 40% women; each has a gender, one award nomination of their gender's two
    categories, and a profession and a city drawn independently of gender."""
    generator = torch.Generator().manual_seed(seed)
    people = [f"p{i}" for i in range(n_people)]
    professions = [f"job{i}" for i in range(6)]
    cities = [f"city{i}" for i in range(8)]
    entities = people + ["male", "female"] + AWARDS + professions + cities
    e = {name: i for i, name in enumerate(entities)}
    is_female = torch.rand(n_people, generator=generator) < 0.4
    rows = []
    for i, person in enumerate(people):
        female = bool(is_female[i])
        award = AWARDS[2 * female + int(torch.randint(2, (1,), generator=generator))]
        rows += [(e[person], 0, e["female" if female else "male"]), (e[person], 1, e[award]),
                 (e[person], 2, e[professions[int(torch.randint(6, (1,), generator=generator))]]),
                 (e[person], 3, e[cities[int(torch.randint(8, (1,), generator=generator))]])]
    triples = torch.tensor(rows)
    # every 20th profession or city triple is held out, half for valid, half for test
    held_out = (triples[:, 1] >= 2) & (torch.arange(len(triples)) % 20 == 3)
    return KnowledgeGraph("awards", entities, ["gender", "nominated_for", "profession", "lives_in"],
                          triples[~held_out], triples[held_out][::2], triples[held_out][1::2],
                          humans=torch.arange(n_people),
                          sensitive={"gender": SensitiveRelation("gender", "gender")},
                          named_values={"gender": {"male": "male", "female": "female"}})


def test_revealing_facts_find_the_planted_relation():
    facts = revealing_facts(award_graph(), "gender")
    # the four categories reveal gender completely; professions and cities only by chance
    assert set(facts["label"][:4]) == set(AWARDS)
    assert (facts["relation"][:4] == "nominated_for").all()
    assert facts["distance"][4:].max() < 0.1


def test_whitelisting_the_revealing_relation_brings_the_probe_down(tmp_path):
    kg = award_graph()
    (tmp_path / "without.tsv").write_text("gender\trelation\tlives_in\n")
    (tmp_path / "with.tsv").write_text("gender\trelation\tlives_in\ngender\trelation\tnominated_for\n")
    above_majority = {}
    for name in ("without", "with"):
        config = TrainConfig(dataset="awards", embedding_dim=16, n_negatives=20, batch_size=128, n_epochs=30,
                             valid_every=0, debias="kl", debias_weights={"gender": 10_000},
                             attribute_vectors=True, whitelist=str(tmp_path / f"{name}.tsv"))
        probe = probe_accuracy(train(config, kg=kg, run_dir=tmp_path / name).model, kg, "gender")
        above_majority[name] = probe["accuracy"] - probe["most_frequent"]
    # seed 0, measured: +.325 without the award relation whitelisted, +.07 with it (majority .635)
    assert above_majority["without"] > 0.2
    assert above_majority["with"] < 0.1
