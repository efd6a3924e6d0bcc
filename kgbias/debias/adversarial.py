"""Bose & Hamilton's compositional adversarial filters, the baseline of Fisher et al. (2020b), §5.

Bose & Hamilton (2019), "Compositional Fairness Constraints for Graph Embeddings".
One *filter* ``f_k: R^w -> R^w`` per sensitive attribute ``k`` maps every entity embedding
before scoring; a subset ``S`` of filters composes into

    C-ENC(u, S) = sum_{k in S} f_k(E_u)        (compose="sum", the authors' code)
    C-ENC(u, S) = 1/|S| sum_{k in S} f_k(E_u)  (compose="mean", the paper's Eq. 6)

One *discriminator* ``D_k`` per attribute predicts the attribute's value from ``C-ENC(u, S)``.
Per batch a random binary mask picks ``S``; the embeddings, relations and filters minimise

    L_link(C-ENC(., S)) - gamma * sum_{k in S} CE(D_k(C-ENC(p, S)), a_k(p))

over the batch's people ``p`` with a known value, then each ``D_k``, ``k in S``, takes a few Adam
steps on the detached filtered embeddings to minimise its cross-entropy.

Differences from the authors' FB15k-237 script, all deliberate:

* the base model is kgbias's TransE/ComplEx with the run's loss and AdaGrad, as paper 2 ran Bose
  "with the same hyperparameters" (§2.10); the filters are trained by that same optimizer;
* attributes are multi-class (gender: top 2 values, others the top ``n_values`` = 30 in train),
  so ``D_k`` ends in ``n_classes`` logits with softmax cross-entropy; Bose's code had binary types
  and a sigmoid/BCE head. People whose value is outside the top list are skipped;
* discriminators see the people among the batch's heads *and* tails (kgbias trains every triple
  in both directions, so both sides are heads), each distinct person once.

:func:`filtered_model` turns a trained model into a plain :class:`~kgbias.models.KGModel` whose
entity table is ``C-ENC(E, S)``, so every metric of :mod:`kgbias.evaluate`,
:mod:`kgbias.debias.metrics` and :mod:`kgbias.bias` reads it unchanged: ``[s]`` (paper 2's
Tables 5-6) is ``filtered_model(model, [attribute])``, ``[a]`` is ``filtered_model(model)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..graph import KnowledgeGraph
from ..models import KGModel
from .metrics import probe_labels, top_values_for

COMPOSE = ("sum", "mean")


def attribute_filter(width: int) -> nn.Sequential:
    """One filter ``f_k``: ``Linear(w, 2w) -> LeakyReLU -> Linear(2w, w) -> LeakyReLU -> BatchNorm1d(w)``.

    The layers and their order are Bose's ``AttributeFilter`` (LeakyReLU slope 0.01, the
    ``F.leaky_relu`` default it calls).
    """
    return nn.Sequential(nn.Linear(width, 2 * width), nn.LeakyReLU(), nn.Linear(2 * width, width),
                         nn.LeakyReLU(), nn.BatchNorm1d(width))


def discriminator(width: int, n_classes: int) -> nn.Sequential:
    """One ``D_k``: ``w -> 2w -> w -> w/2 -> n_classes`` with LeakyReLU between (Bose's ``FBDemParDisc``)."""
    half = max(1, width // 2)
    return nn.Sequential(nn.Linear(width, 2 * width), nn.LeakyReLU(), nn.Linear(2 * width, width), nn.LeakyReLU(),
                         nn.Linear(width, half), nn.LeakyReLU(), nn.Linear(half, n_classes))


class AttributeFilters(nn.ModuleDict):
    """The filters of a model, ``filters[attribute]``, and how a subset of them composes.

    Held as ``model.filters`` (see :func:`kgbias.training.make_model`), so the filters are in the
    model's state dict, its optimizer and its checkpoints (keys ``filters.<attribute>.<layer>``).

    Parameters
    ----------
    attributes
        Attribute names, one filter each, in mask order.
    width
        Width of the model's entity table (``2 * embedding_dim`` for ComplEx).
    compose
        ``"sum"`` or ``"mean"`` over the chosen filters (see the module docstring).
    """

    def __init__(self, attributes: Sequence[str], width: int, compose: str = "sum"):
        if compose not in COMPOSE:
            raise ValueError(f"compose must be one of {COMPOSE}, got {compose!r}")
        if not attributes:
            raise ValueError("AttributeFilters needs at least one attribute")
        super().__init__({attribute: attribute_filter(width) for attribute in attributes})
        self.compose = compose

    @property
    def attributes(self) -> list[str]:
        return list(self.keys())

    def forward(self, embeddings: torch.Tensor, attributes: Sequence[str]) -> torch.Tensor:
        """``C-ENC(., S)`` of ``embeddings``, ``shape: (n, width)``, for ``S`` = ``attributes``."""
        if not attributes:
            raise ValueError("C-ENC needs at least one filter")
        unknown = [a for a in attributes if a not in self]
        if unknown:
            raise ValueError(f"no filter for {', '.join(unknown)} (filters: {', '.join(self.attributes)})")
        total = sum(self[a](embeddings) for a in attributes)
        return total / len(attributes) if self.compose == "mean" else total


def sample_mask(n_attributes: int, generator: torch.Generator) -> torch.Tensor:
    """Random binary mask over the attributes with at least one bit set, ``shape: (n_attributes,)`` bool.

    Bose's compositional training draws each bit uniformly (``np.random.choice([0, 1], K)``);
    an empty draw is drawn again, so every batch trains at least one filter. Drawn from the run's
    ``generator``, so it is the same under the same seed and after a resume.
    """
    while True:
        mask = torch.randint(2, (n_attributes,), generator=generator).bool()
        if mask.any():
            return mask


def _first_positions(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct values of ``ids`` (sorted) and the position of each one's first occurrence."""
    distinct, inverse = torch.unique(ids, return_inverse=True)
    positions = torch.arange(len(ids), device=ids.device)
    first = torch.full((len(distinct),), len(ids), dtype=torch.long, device=ids.device)
    return distinct, first.scatter_reduce_(0, inverse, positions, reduce="amin")


class BoseAdversary:
    """Discriminators, their Adam optimizers and the labels they predict; the adversarial game.

    Built by :meth:`from_graph`; the filters themselves belong to the model (``model.filters``).

    Attributes
    ----------
    attributes
        Attribute names, in the order of the filters and of the mask.
    discriminators
        ``discriminators[attribute]``: ``D_k``.
    optimizers
        One Adam per discriminator.
    labels
        ``shape: (n_attributes, n_entities)``: class index of each person's value among the
        attribute's top values, -1 where unknown or outside the top list.
    gamma, disc_steps
        Weight of the adversarial term and discriminator steps per batch.
    """

    def __init__(self, attributes: list[str], discriminators: nn.ModuleDict, labels: torch.Tensor,
                 gamma: float, disc_steps: int, disc_lr: float):
        self.attributes = list(attributes)
        self.discriminators = discriminators
        self.labels = labels
        self.gamma = gamma
        self.disc_steps = disc_steps
        self.disc_lr = disc_lr
        self.optimizers = {a: torch.optim.Adam(discriminators[a].parameters(), lr=disc_lr) for a in attributes}

    @classmethod
    def from_graph(cls, kg: KnowledgeGraph, attributes: Sequence[str], width: int, n_values: int = 30,
                   gamma: float = 10.0, disc_steps: int = 5, disc_lr: float = 1e-3,
                   seed: int = 0) -> "BoseAdversary":
        """Labels from ``kg``'s train split, as the NN probe reads them
        (:func:`~kgbias.debias.metrics.probe_labels`: gender's top 2 values, others' top
        ``n_values``); discriminators initialised from ``seed`` without touching the global RNG."""
        labels = torch.full((len(attributes), kg.n_entities), -1, dtype=torch.long)
        n_classes = []
        for j, attribute in enumerate(attributes):
            people, classes, _ = probe_labels(kg, attribute, n_values)
            labels[j, people] = classes
            n_classes.append(len(top_values_for(kg, attribute, n_values)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            discriminators = nn.ModuleDict({a: discriminator(width, n) for a, n in zip(attributes, n_classes)})
        return cls(list(attributes), discriminators, labels, gamma, disc_steps, disc_lr)

    def to(self, device) -> "BoseAdversary":
        """The adversary on ``device`` (fresh optimizers: call before training or restoring)."""
        return BoseAdversary(self.attributes, self.discriminators.to(device), self.labels.to(device),
                             self.gamma, self.disc_steps, self.disc_lr)

    def chosen(self, mask: torch.Tensor) -> list[str]:
        """Attribute names whose mask bit is set."""
        return [a for a, bit in zip(self.attributes, mask.tolist()) if bit]

    def people_in(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distinct entities of ``ids`` with a label for some attribute, and a position of each in ``ids``."""
        entities, positions = _first_positions(ids)
        labelled = (self.labels[:, entities] >= 0).any(0)
        return entities[labelled], positions[labelled]

    def cross_entropy(self, attribute: str, people_emb: torch.Tensor, people: torch.Tensor) -> torch.Tensor | None:
        """``CE(D_k(people_emb), a_k(people))`` over the people with a value; None if there are none."""
        labels = self.labels[self.attributes.index(attribute), people]
        known = labels >= 0
        if not known.any():
            return None
        return F.cross_entropy(self.discriminators[attribute](people_emb[known]), labels[known])

    def penalty(self, people_emb: torch.Tensor, people: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``sum_{k in S} CE_k``: what the encoder maximises (gradient flows into ``people_emb``)."""
        total = people_emb.new_zeros(())
        for attribute in self.chosen(mask):
            loss = self.cross_entropy(attribute, people_emb, people)
            if loss is not None:
                total = total + loss
        return total

    def train_discriminators(self, people_emb: torch.Tensor, people: torch.Tensor, mask: torch.Tensor) -> None:
        """``disc_steps`` Adam steps of each ``D_k``, ``k in S``, on detached embeddings."""
        people_emb = people_emb.detach()
        for attribute in self.chosen(mask):
            optimizer = self.optimizers[attribute]
            for _ in range(self.disc_steps):
                loss = self.cross_entropy(attribute, people_emb, people)
                if loss is None:
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

    def state_dict(self) -> dict:
        return {"discriminators": self.discriminators.state_dict(),
                "optimizers": {a: optimizer.state_dict() for a, optimizer in self.optimizers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.discriminators.load_state_dict(state["discriminators"])
        for attribute, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][attribute])


def bose_batch_loss(model: KGModel, batch: torch.Tensor, negatives: torch.Tensor, adversary: BoseAdversary,
                    mask: torch.Tensor, link_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encoder loss of one batch: link loss on filtered embeddings minus ``gamma * sum_k CE_k``.

    Scores as :func:`kgbias.training.batch_loss` does (each triple as ``(h, r, ?)`` and
    ``(t, r^-1, ?)`` against shared negatives), with every entity embedding (heads, tails,
    negatives; not relations) replaced by ``C-ENC(., S)``. The filters see heads, tails and
    negatives in one call, so BatchNorm's batch statistics cover all of them.

    Parameters
    ----------
    model
        A model with ``model.filters`` (:class:`AttributeFilters`).
    batch
        ``shape: (batch_size, 3)``.
    negatives
        ``shape: (n_negatives,)``.
    mask
        ``shape: (n_attributes,)`` bool, from :func:`sample_mask`.
    link_loss
        ``link_loss(positive, negative)``: the run's loss on ``(2 * batch_size,)`` and
        ``(2 * batch_size, n_negatives)`` scores.

    Returns
    -------
    loss
        Scalar encoder loss.
    people
        ``shape: (n_people,)``: distinct batch heads/tails with a label.
    people_emb
        ``shape: (n_people, width)``: their filtered embeddings (in the graph; detach for ``D_k``).
    """
    h, r, t = batch.T
    n_queries = 2 * len(batch)
    embeddings = model.filters(model.entity(torch.cat([h, t, negatives])), adversary.chosen(mask))
    heads = embeddings[:n_queries]  # (h, r, ?) queries, then (t, r^-1, ?)
    queries = model.query(heads, torch.cat([r, r + model.n_relations]))
    positive = model.compare(queries, heads.roll(len(batch), 0), pairwise=True)  # [t, h]
    negative = model.compare(queries, embeddings[n_queries:], pairwise=False)
    people, positions = adversary.people_in(torch.cat([h, t]))
    people_emb = heads[positions]
    loss = link_loss(positive, negative) - adversary.gamma * adversary.penalty(people_emb, people, mask)
    return loss, people, people_emb


@torch.no_grad()
def filtered_table(model: KGModel, attributes: Sequence[str] | None = None, batch_size: int = 65536) -> torch.Tensor:
    """``C-ENC(E, S)`` for every entity, ``shape: (n_entities, width)``; BatchNorm in eval mode.

    ``attributes`` is ``S`` (None: all filters, paper 2's ``[a]``).
    """
    filters = _filters_of(model)
    attributes = filters.attributes if attributes is None else list(attributes)
    was_training = filters.training
    filters.eval()
    try:
        weight = model.entity.weight
        return torch.cat([filters(weight[start:start + batch_size], attributes)
                          for start in range(0, len(weight), batch_size)])
    finally:
        filters.train(was_training)


@torch.no_grad()
def filtered_model(model: KGModel, attributes: Sequence[str] | None = None) -> KGModel:
    """A plain model of the same class and comparator whose entity table is ``C-ENC(E, S)``.

    Fisher et al. (2020b), Tables 5-6: ``[s]`` = ``filtered_model(model, [attribute])`` (only the
    filter of the attribute measured), ``[a]`` = ``filtered_model(model)`` (all filters). Relations
    are the model's. The result has no filters, so link prediction and the bias measures read it
    unchanged; it is a copy, and the global random state is left untouched.
    """
    table = filtered_table(model, attributes)
    with torch.random.fork_rng(devices=[]):  # the constructor's random init is overwritten below
        plain = type(model)(model.n_entities, model.n_relations, model.embedding_dim, comparator=model.comparator)
    plain = plain.to(table.device)
    plain.entity.weight.copy_(table)
    plain.relation.weight.copy_(model.relation.weight)
    return plain


def _filters_of(model: KGModel) -> AttributeFilters:
    filters = getattr(model, "filters", None)
    if not isinstance(filters, AttributeFilters):
        raise ValueError("this model has no Bose filters (train it with debias='bose')")
    return filters
