"""Embedding models: TransE (dot or distance comparator) and ComplEx.

Every model scores a query ``(h, r)`` against candidate tails. Heads are predicted through inverse
relations (``r + n_relations``), as PyTorch-BigGraph's ``dynamic_relations`` does: with the papers'
dot comparator, ``<h + r, t>`` ranks candidate heads without looking at ``r`` at all, so each
relation gets a second translation used when predicting heads.

Models work on embeddings as well as ids (``score_embeddings``), so the bias measure can
differentiate a score with respect to a person's embedding for any model.
"""

from __future__ import annotations

import torch
from torch import nn

COMPARATORS = ("dot", "l1", "l2")


def _check_shape(name: str, tensor: torch.Tensor, shape: tuple) -> None:
    """Raise a readable ValueError unless ``tensor`` has ``shape`` (``None`` matches any size)."""
    ok = tensor.ndim == len(shape) and all(s is None or s == t for s, t in zip(shape, tensor.shape))
    if not ok:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")


class _NegativeL2(torch.autograd.Function):
    """``-||q_i - t_j||_2`` for all pairs, with a backward of two matrix products.

    Autograd through ``sqrt(|q|^2 + |t|^2 - 2 q.t)`` makes about ten passes over the
    ``(batch, n_candidates)`` block; the gradient written out, ``w = -grad / d``, needs three.
    """

    @staticmethod
    def forward(ctx, query, t_emb):
        distance = torch.addmm((query * query).sum(-1, keepdim=True), query, t_emb.T, alpha=-2)
        distance = distance.add_((t_emb * t_emb).sum(-1)).clamp_min_(1e-12).sqrt_()
        ctx.save_for_backward(query, t_emb, distance)
        return -distance

    @staticmethod
    def backward(ctx, grad):
        query, t_emb, distance = ctx.saved_tensors
        weight = -grad / distance
        grad_query = query * weight.sum(1, keepdim=True) - weight @ t_emb
        grad_t = t_emb * weight.sum(0).unsqueeze(1) - weight.T @ query
        return grad_query, grad_t


class KGModel(nn.Module):
    """Shared parts: entity and relation tables (relations doubled for the inverse direction)."""

    def __init__(self, n_entities: int, n_relations: int, width: int, init_std: float):
        super().__init__()
        self.n_entities = n_entities
        self.n_relations = n_relations
        # sparse=True: an epoch touches few rows per step; dense updates of the whole table
        # every step would cost O(n_entities) per step.
        self.entity = nn.Embedding(n_entities, width, sparse=True)
        self.relation = nn.Embedding(2 * n_relations, width, sparse=True)
        nn.init.normal_(self.entity.weight, std=init_std)
        nn.init.normal_(self.relation.weight, std=init_std)

    def query(self, h_emb: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """``shape: (batch_size, width)``: the head embeddings transformed by relations ``r``."""
        return self.transform(h_emb, self.relation(r))

    # subclasses implement these two on embeddings
    def transform(self, h_emb: torch.Tensor, r_emb: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def compare(self, query: torch.Tensor, t_emb: torch.Tensor, pairwise: bool) -> torch.Tensor:
        raise NotImplementedError

    def head_form(self, r_emb: torch.Tensor, t_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(keys, bias)`` with ``score(h, r_i, t_i) = h . keys_i + bias_i`` for every head ``h``,
        when the score is affine in the head (dot comparators); None otherwise.

        ``r_emb, t_emb: (n, width)`` give ``keys: (n, width)`` and ``bias: (n,)``. The KL loss scores
        a batch of people against every (relation, value) pair with one product through it.
        """
        return None

    def score_embeddings(self, h_emb: torch.Tensor, r: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        """Scores of aligned rows: ``h_emb, t_emb: (batch_size, width)``, ``r: (batch_size,)``."""
        return self.compare(self.query(h_emb, r), t_emb, pairwise=True)

    def score_triples(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``shape: (batch_size,)`` scores of triples given by id."""
        return self.score_embeddings(self.entity(h), r, self.entity(t))

    def score_tails(self, h: torch.Tensor, r: torch.Tensor, candidates: torch.Tensor | None = None) -> torch.Tensor:
        """``shape: (batch_size, n_candidates)``: each query ``(h, r)`` against every candidate tail.

        ``candidates`` defaults to all entities.
        """
        t_emb = self.entity.weight if candidates is None else self.entity(candidates)
        return self.compare(self.query(self.entity(h), r), t_emb, pairwise=False)

    def score_heads(self, r: torch.Tensor, t: torch.Tensor, candidates: torch.Tensor | None = None) -> torch.Tensor:
        """``shape: (batch_size, n_candidates)``: ``(?, r, t)`` scored as ``(t, r^-1, ?)``."""
        return self.score_tails(t, r + self.n_relations, candidates)


class TransE(KGModel):
    """TransE: translation ``h + r`` compared with ``t``.

    ``comparator="dot"`` is the papers' form, ``score = <h + r, t>`` (Fisher et al. 2020a, §3);
    ``"l1"``/``"l2"`` is the usual distance form, ``score = -||h + r - t||_p``.

    Parameters
    ----------
    init_std
        Standard deviation of the normal initialisation. Default: 1e-3 for ``dot`` (as
        PyTorch-BigGraph), 0.1 for distances (a tiny init makes all distances equal).
    """

    def __init__(self, n_entities: int, n_relations: int, embedding_dim: int,
                 comparator: str = "dot", init_std: float | None = None):
        if comparator not in COMPARATORS:
            raise ValueError(f"comparator must be one of {COMPARATORS}, got {comparator!r}")
        if init_std is None:
            init_std = 1e-3 if comparator == "dot" else 0.1
        super().__init__(n_entities, n_relations, embedding_dim, init_std)
        self.embedding_dim = embedding_dim
        self.comparator = comparator

    def transform(self, h_emb, r_emb):
        return h_emb + r_emb

    def compare(self, query, t_emb, pairwise):
        if self.comparator == "dot":
            return (query * t_emb).sum(-1) if pairwise else query @ t_emb.T
        p = 1.0 if self.comparator == "l1" else 2.0
        if pairwise:
            return -torch.linalg.vector_norm(query - t_emb, ord=p, dim=-1)
        if p == 2.0:
            # ||q - t||^2 = |q|^2 + |t|^2 - 2<q, t>: one matrix product instead of a (b, n, d) tensor
            return _NegativeL2.apply(query, t_emb)
        return -torch.cdist(query, t_emb, p=1.0)

    def head_form(self, r_emb, t_emb):
        if self.comparator != "dot":
            return None
        return t_emb, (r_emb * t_emb).sum(-1)  # <h + r, t> = h . t + r . t


class ComplEx(KGModel):
    """ComplEx (Trouillon et al. 2016): ``score = Re(<h, r, conj(t)>)``.

    Embeddings hold the real parts in the first half and the imaginary parts in the second, so a
    table of width ``2 * embedding_dim`` stores ``embedding_dim`` complex numbers.
    """

    def __init__(self, n_entities: int, n_relations: int, embedding_dim: int,
                 comparator: str = "dot", init_std: float | None = None):
        if comparator != "dot":
            raise ValueError("ComplEx has only the dot (Hermitian product) comparator")
        super().__init__(n_entities, n_relations, 2 * embedding_dim, 1e-3 if init_std is None else init_std)
        self.embedding_dim = embedding_dim
        self.comparator = comparator

    def transform(self, h_emb, r_emb):
        h_re, h_im = h_emb.chunk(2, dim=-1)
        r_re, r_im = r_emb.chunk(2, dim=-1)
        # Re(<h, r, conj(t)>) = <h*r (complex product), t> over real and imaginary parts
        return torch.cat([h_re * r_re - h_im * r_im, h_re * r_im + h_im * r_re], dim=-1)

    def compare(self, query, t_emb, pairwise):
        return (query * t_emb).sum(-1) if pairwise else query @ t_emb.T

    def head_form(self, r_emb, t_emb):
        # Re(<h, r, conj(t)>) = <h, conj(r) * t> over (real, imaginary) halves
        r_re, r_im = r_emb.chunk(2, dim=-1)
        t_re, t_im = t_emb.chunk(2, dim=-1)
        keys = torch.cat([r_re * t_re + r_im * t_im, r_re * t_im - r_im * t_re], dim=-1)
        return keys, torch.zeros_like(keys[:, 0])


MODELS = {"transe": TransE, "complex": ComplEx}


def build_model(name: str, n_entities: int, n_relations: int, embedding_dim: int,
                comparator: str = "dot", init_std: float | None = None) -> KGModel:
    try:
        model_class = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
    return model_class(n_entities, n_relations, embedding_dim, comparator=comparator, init_std=init_std)
