"""Ranks against a brute-force reference, tie handling, and the filtering rules."""

import pytest
import torch

from kgbias.evaluate import (KnownAnswers, evaluation_triples, link_prediction, metrics_from_ranks, rank_triples,
                             ranks_from_scores)
from kgbias.models import TransE


def test_ranks_with_ties_by_hand():
    scores = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.0]])
    true = scores[:, 2]  # two others tie with the true score, nothing above
    assert ranks_from_scores(true, scores, "optimistic").item() == 1
    assert ranks_from_scores(true, scores, "pessimistic").item() == 3
    assert ranks_from_scores(true, scores, "realistic").item() == 2


def test_constant_score_model_gets_realistic_mrr_two_over_n_plus_one():
    n = 9
    scores = torch.zeros(4, n)
    ranks = ranks_from_scores(scores[:, 0], scores)
    assert metrics_from_ranks(ranks)["mrr_filtered"] == pytest.approx(2 / (n + 1))


def test_metrics_on_five_ranks():
    metrics = metrics_from_ranks(torch.tensor([1.0, 2.0, 10.0, 11.0, 60.0]))
    assert metrics["mrr_filtered"] == pytest.approx((1 + 1 / 2 + 1 / 10 + 1 / 11 + 1 / 60) / 5)
    assert metrics["hits_at_1_filtered"] == pytest.approx(0.2)
    assert metrics["hits_at_10_filtered"] == pytest.approx(0.6)
    assert metrics["hits_at_50_filtered"] == pytest.approx(0.8)


def brute_force_ranks(model, triples, known_triples, ties):
    """Plain loops: for each triple and side, compare with every candidate not known true."""
    known = {tuple(x) for x in known_triples.tolist()}
    ranks = {"tail": [], "head": []}
    for h, r, t in triples.tolist():
        for side in ("tail", "head"):
            if side == "tail":
                scores = model.score_tails(torch.tensor([h]), torch.tensor([r]))[0]
                answer, is_known = t, (lambda c: (h, r, c) in known)
            else:
                scores = model.score_heads(torch.tensor([r]), torch.tensor([t]))[0]
                answer, is_known = h, (lambda c: (c, r, t) in known)
            true = scores[answer].item()
            above = equal = 0
            for candidate in range(model.n_entities):
                if candidate == answer or is_known(candidate):
                    continue
                above += scores[candidate].item() > true
                equal += scores[candidate].item() == true
            rank = {"optimistic": above + 1, "pessimistic": above + equal + 1,
                    "realistic": above + 1 + equal / 2}[ties]
            ranks[side].append(rank)
    return torch.tensor(ranks["tail"], dtype=torch.double), torch.tensor(ranks["head"], dtype=torch.double)


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
@pytest.mark.parametrize("ties", ["optimistic", "pessimistic", "realistic"])
def test_filtered_ranks_match_brute_force_including_ties(ties, device):
    """Filtering and ranking run where the model is; ranks come back on the CPU, unchanged."""
    torch.manual_seed(0)
    n_entities, n_relations = 12, 3
    model = TransE(n_entities, n_relations, 4)
    with torch.no_grad():
        # integer-valued embeddings make many exact ties
        model.entity.weight.copy_(torch.randint(-1, 2, (n_entities, 4)).float())
        model.relation.weight.copy_(torch.randint(-1, 2, (2 * n_relations, 4)).float())
    triples = torch.stack([torch.randint(n_entities, (40,)), torch.randint(n_relations, (40,)),
                           torch.randint(n_entities, (40,))], 1).unique(dim=0)
    known = KnownAnswers(triples, n_relations)
    moved = known.to(device)
    assert moved.keys.device.type == device and known.keys.device.type == "cpu"
    test = triples[::3]
    tail, head = rank_triples(model.to(device), test, known, ties, batch_size=7)
    assert tail.device.type == "cpu" and head.device.type == "cpu"
    expected_tail, expected_head = brute_force_ranks(model.cpu(), test, triples, ties)
    assert torch.equal(tail, expected_tail)
    assert torch.equal(head, expected_head)


def test_filtering_never_removes_the_answer_and_never_raises_rank(tiny_kg):
    torch.manual_seed(3)
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4)
    known = KnownAnswers(tiny_kg.all_triples(), tiny_kg.n_relations)
    triples = tiny_kg.all_triples()
    raw_tail, raw_head = rank_triples(model, triples, None)
    tail, head = rank_triples(model, triples, known)
    assert (tail <= raw_tail).all() and (head <= raw_head).all()
    # every triple is known, and still gets a rank of at least 1 (its answer was kept)
    assert (tail >= 1).all() and (head >= 1).all()
    # a model scoring everything equal: each query keeps exactly its answer plus unknown candidates
    with torch.no_grad():
        model.entity.weight.zero_()
        model.relation.weight.zero_()
    tail, _ = rank_triples(model, triples[:1], known)  # (ann, gender, female)
    assert tail.item() == (1 + (tiny_kg.n_entities - 0)) / 2  # no other gender of ann is known


def test_exclude_sensitive_drops_sensitive_triples(tiny_kg):
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4)
    tiny_kg.test = tiny_kg.train[:6]  # six gender triples
    tiny_kg.test = torch.cat([tiny_kg.test, torch.tensor([[1, 2, 12]])])
    metrics = link_prediction(model, tiny_kg, "test", exclude_sensitive=True)
    assert metrics["n_ranks"] == 2  # only the lives_in triple, both sides
    metrics, per_relation = link_prediction(model, tiny_kg, "test", per_relation=True)
    assert metrics["n_ranks"] == 14
    assert dict(zip(per_relation["relation"], per_relation["n_ranks"])) == {"gender": 12, "lives_in": 2}


def test_exclude_sensitive_keeps_profession_triples(tiny_kg):
    """Paper 2's "(filtered)" drops the protected attributes' triples; profession is paper 1's
    target relation, not one of them."""
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4)
    tiny_kg.test = tiny_kg.train[[0, 6, 7]]  # (ann, gender, female), two profession triples
    assert link_prediction(model, tiny_kg, "test", exclude_sensitive=True)["n_ranks"] == 4
    assert evaluation_triples(tiny_kg, "test", exclude_sensitive=True).tolist() == tiny_kg.train[[6, 7]].tolist()
