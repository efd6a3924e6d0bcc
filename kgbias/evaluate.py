"""Filtered link-prediction evaluation: ranks with explicit tie handling, MRR and Hits@k.

Both sides are ranked: tails of ``(h, r, ?)`` and heads of ``(?, r, t)``, the latter as tails of
``(t, r^-1, ?)``. Filtering removes the *other* known answers (train, valid and test), never the
answer being ranked.
"""

from __future__ import annotations

import pandas as pd
import torch

from .graph import KnowledgeGraph
from .models import KGModel

TIES = ("optimistic", "pessimistic", "realistic")
HITS_AT = (1, 10, 50)


def ranks_from_scores(true_score: torch.Tensor, all_scores: torch.Tensor, ties: str = "realistic") -> torch.Tensor:
    """1-based rank of each true score among its row of candidate scores.

    ``optimistic = #(s > true) + 1``; ``pessimistic = #(s >= true)`` (the true candidate counts
    itself); ``realistic`` is their mean, the expected rank under random tie breaking. A model
    that gives every one of n candidates the same score gets realistic rank ``(n + 1) / 2``.

    Parameters
    ----------
    true_score
        ``shape: (batch_size,)``, taken from ``all_scores`` itself so no false ties appear.
    all_scores
        ``shape: (batch_size, n_candidates)``, with filtered candidates set to ``-inf``.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    true_score = true_score.unsqueeze(1)
    # Counting through float sums is several times faster than summing bool tensors; the
    # counts are exact in float32 up to 2**24 candidates.
    at_least = (all_scores >= true_score).float().sum(1)
    above_minus_below = (all_scores - true_score).sign_().sum(1)
    below = all_scores.shape[1] - at_least
    optimistic = (above_minus_below + below).double() + 1
    pessimistic = at_least.double()
    if ties == "optimistic":
        return optimistic
    if ties == "pessimistic":
        return pessimistic
    return (optimistic + pessimistic) / 2


def metrics_from_ranks(ranks: torch.Tensor, suffix: str = "filtered") -> dict[str, float]:
    """MRR and Hits@1/10/50 of a rank vector; keys such as ``mrr_filtered``."""
    ranks = ranks.double()
    metrics = {f"mrr_{suffix}": float((1.0 / ranks).mean())}
    for k in HITS_AT:
        metrics[f"hits_at_{k}_{suffix}"] = float((ranks <= k).double().mean())
    return metrics


class KnownAnswers:
    """All answers of each query ``(entity, relation)`` over the given triples, both directions.

    Stored as sorted keys ``entity * 2R + relation`` with their answers, so a batch of queries
    finds its answers with two ``searchsorted`` calls and no Python loop.
    """

    def __init__(self, triples: torch.Tensor, n_relations: int):
        self.n_relation_slots = 2 * n_relations
        h, r, t = triples.T
        queries = torch.cat([h * self.n_relation_slots + r, t * self.n_relation_slots + r + n_relations])
        answers = torch.cat([t, h])
        order = torch.argsort(queries * (answers.max() + 1 if answers.numel() else 1) + answers)
        self.keys = queries[order]
        self.answers = answers[order]

    def to(self, device) -> "KnownAnswers":
        """The same answers on ``device``, so filtering happens where the scores are."""
        moved = object.__new__(KnownAnswers)
        moved.n_relation_slots = self.n_relation_slots
        moved.keys, moved.answers = self.keys.to(device), self.answers.to(device)
        return moved

    def mask(self, entity: torch.Tensor, relation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(row, column)`` index pairs of every known answer of each query in the batch.

        Computed on the device of the stored answers (see :meth:`to`).
        """
        device = self.keys.device
        keys = entity.to(device) * self.n_relation_slots + relation.to(device)
        start = torch.searchsorted(self.keys, keys, side="left")
        end = torch.searchsorted(self.keys, keys, side="right")
        counts = end - start
        rows = torch.repeat_interleave(torch.arange(len(keys), device=device), counts)
        n_answers = int(counts.sum())
        offsets = (torch.arange(n_answers, device=device)
                   - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts, output_size=n_answers))
        columns = self.answers[torch.repeat_interleave(start, counts) + offsets]
        return rows, columns


@torch.no_grad()
def rank_triples(model: KGModel, triples: torch.Tensor, known: KnownAnswers | None = None,
                 ties: str = "realistic", batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Tail ranks and head ranks of every triple, ``shape: (n_triples,)`` each.

    ``known=None`` gives raw ranks; otherwise the known answers other than the true one are
    removed from the candidates. Scores are filtered and ranked on the model's device: copying
    them to the CPU cost most of a GPU evaluation. Ranks come back on the CPU.
    """
    device = model.entity.weight.device
    n_relations = model.n_relations
    if known is not None:
        known = known.to(device)
    triples = triples.to(device)
    tail_ranks, head_ranks = [], []
    for start in range(0, len(triples), batch_size):
        batch = triples[start:start + batch_size]
        h, r, t = batch.T
        rows = torch.arange(len(batch), device=device)
        for entity, relation, answer, out in ((h, r, t, tail_ranks), (t, r + n_relations, h, head_ranks)):
            scores = model.score_tails(entity, relation).float()
            true_score = scores[rows, answer].clone()
            if known is not None:
                mask_rows, mask_columns = known.mask(entity, relation)
                scores[mask_rows, mask_columns] = float("-inf")
                scores[rows, answer] = true_score
            out.append(ranks_from_scores(true_score, scores, ties))
    empty = torch.zeros(0, dtype=torch.double)
    return ((torch.cat(tail_ranks).cpu() if tail_ranks else empty),
            (torch.cat(head_ranks).cpu() if head_ranks else empty))


# Paper 1 measures bias *on* profession, the target relation; it is not one of the protected
# attributes whose triples paper 2's "(filtered)" protocol removes (gender, religion, ...).
NOT_EXCLUDED = ("profession",)


def excluded_relations(kg: KnowledgeGraph) -> list[str]:
    """Names of the relations ``exclude_sensitive`` removes: those of every sensitive attribute
    of ``kg`` except ``profession``, sorted."""
    return sorted({spec.relation for attribute, spec in kg.sensitive.items() if attribute not in NOT_EXCLUDED})


def evaluation_triples(kg: KnowledgeGraph, split: str, exclude_sensitive: bool = False) -> torch.Tensor:
    """A split's triples; with ``exclude_sensitive`` the sensitive-relation triples are removed.

    ``exclude_sensitive`` is paper 2's "(filtered)" protocol (Fisher et al. 2020b, §5): it
    removes the triples of the sensitive attributes (:func:`excluded_relations`: all but
    profession) from the evaluation split; it is unrelated to filtered ranking.
    """
    triples = kg.split(split)
    relations = excluded_relations(kg) if exclude_sensitive else []
    if relations:
        excluded = torch.tensor([kg.relation_id(name) for name in relations])
        triples = triples[~torch.isin(triples[:, 1], excluded)]
    return triples


def link_prediction(model: KGModel, kg: KnowledgeGraph, split: str = "test", filtered: bool = True,
                    ties: str = "realistic", exclude_sensitive: bool = False,
                    per_relation: bool = False, known: KnownAnswers | None = None):
    """Evaluate link prediction on a split, heads and tails together.

    Returns a dict of metrics (``mrr_filtered``, ``hits_at_10_filtered``, ...); with
    ``per_relation=True`` returns ``(metrics, per_relation_frame)``.
    """
    triples = evaluation_triples(kg, split, exclude_sensitive)
    if filtered and known is None:
        known = KnownAnswers(kg.all_triples(), kg.n_relations)
    was_training = model.training
    model.eval()
    tail_ranks, head_ranks = rank_triples(model, triples, known if filtered else None, ties)
    model.train(was_training)
    suffix = "filtered" if filtered else "raw"
    ranks = torch.cat([tail_ranks, head_ranks])
    metrics = {**metrics_from_ranks(ranks, suffix), "n_ranks": int(ranks.numel()), "ties": ties}
    if not per_relation:
        return metrics
    relation = torch.cat([triples[:, 1], triples[:, 1]])
    frame = pd.DataFrame({"relation": relation.numpy(), "rank": ranks.numpy()})
    rows = [{"relation": kg.relations[int(r)], "n_ranks": len(group),
             **metrics_from_ranks(torch.tensor(group["rank"].to_numpy()), suffix)}
            for r, group in frame.groupby("relation")]
    return metrics, pd.DataFrame(rows)
