"""The KL-divergence debiasing loss of Fisher et al. (2020b), §4.1.

For the people in a batch, each person's scores against the top-M values of a sensitive
relation go through a softmax; the loss is the KL divergence from a target distribution G
(uniform by default) to that softmax, weighted per attribute and averaged over people and over
the J debiased attributes, as paper 2 writes L_KL = 1/P 1/J sum_p sum_j KL(...) with a weight
per attribute:

    L_KL = (1/J) sum_j w_j * (1/P) sum_p KL(G_j || softmax_m g(e_p, r_j, e_m))

(without the 1/J, FB15K's weights would act J = 4 times as strong as the paper's).

Paper 2 adds ``w L_KL`` to PyTorch-BigGraph's L_CE, which sums over the batch's queries; the
trainer divides this term by the number of queries when ``TrainConfig.kl_reduction`` is "sum"
(the default), so the paper's weights keep their meaning beside our mean L_CE.

Relation and value embeddings are frozen for this term (detached), so only the people's
embeddings receive its gradient; the ordinary loss keeps training them to predict the attribute,
which makes the two terms adversarial. ``train_relations`` (not the paper's) lets the relations'
vectors receive it too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..config import KL_PEOPLE
from ..graph import KnowledgeGraph
from ..models import KGModel

logger = logging.getLogger(__name__)

# Paper 2, §4.1: weights tuned on FB15K (gender 1.0; religion, ethnicity, nationality 100.0).
FB15K_WEIGHTS = {"gender": 1.0, "religion": 100.0, "ethnicity": 100.0, "nationality": 100.0}


def kl_to_target(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``KL(target || softmax(scores))`` per row, ``shape: (n_people,)``.

    Parameters
    ----------
    scores
        ``shape: (n_people, n_values)``
    target
        ``shape: (n_values,)``, a probability vector; zero entries contribute nothing.
    """
    log_q = torch.log_softmax(scores, dim=-1)
    positive = target > 0
    log_target = torch.where(positive, target.clamp_min(1e-30).log(), torch.zeros_like(target))
    return (target * (log_target - log_q)).where(positive, torch.zeros_like(log_q)).sum(-1)


@dataclass
class KLDebiasing:
    """What the loss needs from the graph, fixed before training.

    Attributes
    ----------
    attributes
        Attribute names, e.g. ``["gender", "religion"]``.
    relations
        Relation index per attribute with the person on the left, ``shape: (n_attributes,)``.
    values
        Per attribute, the ids of its top-M most frequent values in train.
    targets
        Per attribute, the target distribution over those values.
    weights
        ``shape: (n_attributes,)``: w_j.
    is_human
        ``shape: (n_entities,)`` bool.
    train_relations
        The term's gradient also reaches the relations' vectors (paper 2: False, frozen). Frozen,
        a sensitive relation's vector learns the base rate from the ordinary loss and every
        person's embedding moves to cancel it (docs/debiasing.md).
    people
        Whose embeddings the term reads each step: ``"batch"``, the people among the batch's heads
        and tails (paper 2); ``"all"``, every person of the graph (not paper 2's: a person is in a
        few batches an epoch, while the relations move every step); ``"batch+all"``, the sum of
        the two; ``"batch+centroid"``, the batch's term plus the term of one embedding, the mean
        of every person's, whose gradient moves every person alike (it evens out the part of the
        scores every person shares, and leaves each person's own part to the batch's term).
    second_scale
        With ``"batch+all"`` or ``"batch+centroid"``, the second term's weight relative to the
        batch's.
    """

    attributes: list[str]
    relations: torch.Tensor
    values: list[torch.Tensor]
    targets: list[torch.Tensor]
    weights: torch.Tensor
    is_human: torch.Tensor
    train_relations: bool = False
    people: str = "batch"
    second_scale: float = 1.0

    @classmethod
    def from_graph(cls, kg: KnowledgeGraph, weights: dict[str, float], n_values: int = 30,
                   targets: dict[str, list[float]] | None = None, train_relations: bool = False,
                   people: str = "batch", second_scale: float = 1.0) -> "KLDebiasing":
        """Top ``n_values`` values per attribute (gender: its top 2), uniform targets by default."""
        attributes = [a for a in weights if weights[a] != 0]
        values, target_list = [], []
        for attribute in attributes:
            top = kg.top_values(attribute, 2 if attribute == "gender" else n_values)
            if len(top) < 2:  # a distribution over one value is always uniform: the term is 0
                logger.warning("%s: %s has %d value(s) among its people; its KL term is always 0",
                               kg.name, attribute, len(top))
            values.append(top)
            given = (targets or {}).get(attribute)
            if given is None:
                target_list.append(torch.full((len(top),), 1.0 / len(top)))
            else:
                target = torch.tensor(given, dtype=torch.float)
                if target.shape != (len(top),) or (target < 0).any() or abs(float(target.sum()) - 1) > 1e-4:
                    raise ValueError(f"target for {attribute!r} must be {len(top)} probabilities summing to 1")
                target_list.append(target)
        is_human = torch.zeros(kg.n_entities, dtype=torch.bool)
        is_human[kg.humans] = True
        return cls(attributes, torch.tensor([kg.attribute_relation(a) for a in attributes], dtype=torch.long),
                   values, target_list, torch.tensor([float(weights[a]) for a in attributes]), is_human,
                   train_relations, people, second_scale)

    def __post_init__(self):
        if self.people not in KL_PEOPLE:
            raise ValueError(f"people must be {', '.join(KL_PEOPLE)}, got {self.people!r}")
        # every attribute's values as one padded table, so that the loss is one batched product
        width = max((len(v) for v in self.values), default=0)
        device = self.relations.device
        self._value_table = torch.zeros(len(self.values), width, dtype=torch.long, device=device)
        self._valid = torch.zeros(len(self.values), width, dtype=torch.bool, device=device)
        self._target_table = torch.zeros(len(self.values), width, device=device)
        for j, (values, target) in enumerate(zip(self.values, self.targets)):
            self._value_table[j, :len(values)] = values
            self._valid[j, :len(values)] = True
            self._target_table[j, :len(values)] = target
        # the table's columns flattened, each with its attribute's relation (the dot models' path)
        self._column_relations = self.relations.repeat_interleave(width)
        self._target_sums = self._target_table.sum(1)
        self._log_target = torch.where(self._target_table > 0, self._target_table.clamp_min(1e-30).log(), 0.0)
        self._is_human_on_host = self.is_human.cpu()
        self._every_person_on_host = torch.nonzero(self._is_human_on_host).flatten()

    def to(self, device) -> "KLDebiasing":
        return KLDebiasing(self.attributes, self.relations.to(device), [v.to(device) for v in self.values],
                           [t.to(device) for t in self.targets], self.weights.to(device), self.is_human.to(device),
                           self.train_relations, self.people, self.second_scale)

    def people_in(self, batch: torch.Tensor) -> torch.Tensor:
        """Distinct human entities among the heads and tails of a batch of triples, on the batch's
        device (training on a GPU finds them on the host: see :mod:`kgbias.batches`); with
        ``people="all"``, every person of the graph whatever the batch; with ``"batch+all"`` and
        ``"batch+centroid"``, the batch's people followed by every person (:meth:`loss` splits
        them again)."""
        if self.people == "all":
            return self._every_person_on_host.to(batch.device)
        entities = torch.cat([batch[:, 0], batch[:, 2]])
        is_human = self.is_human if self.is_human.device == batch.device else self._is_human_on_host.to(batch.device)
        in_batch = torch.unique(entities[is_human[entities]])  # filtered first: a shorter sort
        if self.people != "batch":
            return torch.cat([in_batch, self._every_person_on_host.to(batch.device)])
        return in_batch

    def loss(self, model: KGModel, people: torch.Tensor, person_emb: torch.Tensor | None = None) -> torch.Tensor:
        """``mean_j w_j * mean_p KL(G_j || softmax(S_pj))``; zero when there are no people.

        ``person_emb``: the people's embeddings when the caller has looked them up (training does,
        in the batch's own lookup); by default ``model.entity(people)``. With ``people`` of
        ``"batch+all"`` or ``"batch+centroid"``, ``people`` is :meth:`people_in`'s: the batch's
        people, then every person, each part its own term.
        """
        if people.numel() == 0:
            return model.entity.weight.new_zeros(())
        if person_emb is None:
            person_emb = model.entity(people)
        if self.people.startswith("batch+"):
            n_batch = len(people) - len(self._every_person_on_host)
            if n_batch < 0:
                raise ValueError(f"people={self.people!r} reads people_in(batch): the batch's people, then all "
                                 f"{len(self._every_person_on_host)} people; got {len(people)} ids")
            in_batch, everyone = person_emb.split([n_batch, len(people) - n_batch])
            if self.people == "batch+centroid":
                everyone = everyone.mean(0, keepdim=True)
            return self._mean_loss(model, in_batch) + self.second_scale * self._mean_loss(model, everyone)
        return self._mean_loss(model, person_emb)

    def _mean_loss(self, model: KGModel, person_emb: torch.Tensor) -> torch.Tensor:
        if len(person_emb) == 0 or self._value_table.shape[1] == 0:
            return model.entity.weight.new_zeros(())
        n_attributes, width = self._value_table.shape
        # values are frozen for this term (detached), and by default the relations too
        value_emb = model.entity.weight.index_select(0, self._value_table.flatten()).detach()
        form = model.head_form(self._relation_rows(model, self._column_relations), value_emb)
        if form is not None:  # dot models: every attribute in one product, the gradient written out
            keys, bias = form
            return _KLToTarget.apply(person_emb, keys, bias, self._target_table, self._target_sums,
                                     self._log_target, self.weights / n_attributes, self._valid)
        total = person_emb.new_zeros(())  # distances: one attribute at a time
        for j in range(len(self.attributes)):
            relation_emb = self._relation_rows(model, self.relations[j:j + 1]).expand_as(person_emb)
            value_emb = model.entity.weight[self.values[j]].detach()
            scores = model.compare(model.transform(person_emb, relation_emb), value_emb, pairwise=False)
            total = total + self.weights[j] * kl_to_target(scores, self.targets[j]).mean()
        return total / len(self.attributes)

    def _relation_rows(self, model: KGModel, relations: torch.Tensor) -> torch.Tensor:
        """The relations' vectors for this term: a lookup (the relations' sparse gradient) when it
        trains them, else detached rows."""
        if self.train_relations:
            return model.relation(relations)
        return model.relation.weight.index_select(0, relations).detach()


# score of a padding column: its softmax probability is 0 (exp underflows) and, unlike -inf,
# 0 * _PADDING = 0 where its zero target weighs it
_PADDING = -1e30


class _KLToTarget(torch.autograd.Function):
    """``sum_j c_j mean_p KL(G_j || softmax_m(p . K_jm + b_jm))`` and its gradient, ``(G_j's sum *
    softmax - G_j) K / P`` per person, written out.

    Autograd through the log-softmax and the masked sums makes about twenty small operations, and
    torch reduces a last dimension of 30 slowly; here the sums over values and people are one
    matrix-vector product, ``sum_pjm c_j G_jm (log G_jm - log q_pjm)``.
    """

    @staticmethod
    def forward(ctx, person_emb, keys, bias, target, target_sums, log_target, coefficients, valid):
        n_people = len(person_emb)
        n_attributes, width = target.shape
        padding = ~valid.flatten()
        scores = torch.addmm(bias.masked_fill(padding, _PADDING), person_emb, keys.T)
        scores = scores.view(n_people, n_attributes, width)
        log_q = torch.log_softmax(scores, dim=-1).view(n_people, n_attributes * width)
        weighted_target = (coefficients.unsqueeze(1) * target).flatten()
        # per column: its attribute's c_j * sum(G_j), zero on padding columns
        column_sums = (coefficients * target_sums).repeat_interleave(width) * valid.flatten()
        ctx.save_for_backward(person_emb, log_q, keys, weighted_target, column_sums, padding)
        # log G - log q per entry, before the sums: at q = G the terms are exact zeros
        return torch.mv(log_target.flatten() - log_q, weighted_target).sum() / n_people

    @staticmethod
    @torch.autograd.function.once_differentiable  # a second-order gradient would be silently wrong
    def backward(ctx, grad):
        person_emb, log_q, keys, weighted_target, column_sums, padding = ctx.saved_tensors
        scale = grad / len(log_q)
        # a padding column's log q (about -1e30) would send exp to torch's scalar path, 15x slower
        # on the whole matrix: exp(0) there instead, times its zero column sum
        gradient = log_q.masked_fill(padding, 0.0).exp_().mul_(column_sums).sub_(weighted_target).mul_(scale)
        # the keys' and biases' gradients: only when the relations are trained (padding columns get 0)
        keys_grad = gradient.T @ person_emb if ctx.needs_input_grad[1] else None
        bias_grad = gradient.sum(0) if ctx.needs_input_grad[2] else None
        return gradient @ keys, keys_grad, bias_grad, None, None, None, None, None
