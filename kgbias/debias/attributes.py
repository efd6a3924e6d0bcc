"""Attribute vectors and whitelists of Fisher et al. (2020b), §4.2 ("KL + Attr.").

The KL loss (:mod:`kgbias.debias.kl`) makes people's embeddings uninformative about a sensitive
attribute. Some facts legitimately depend on it (a whitelisted relation such as an opera singer's
voice type, or a whitelisted profession such as "Crown Princess" for gender), so each value of a
debiased attribute gets a trainable vector that is added to a person's embedding on exactly those
triples:

    g(e_person + A_j(person), r, e_t)   with   A_j(person) = sum of v_value over the person's values

A triple (h, r, t) uses the sum of A_j(h) over every attribute j for which r is whitelisted (type 1)
or r is the profession relation and t a whitelisted profession (type 2). Every other triple scores
exactly as the base model. The person is the head of the stored triple (for the profession relation,
the person side of ``kg.attribute_relation("profession")``).

The vectors are trained on *twin* triples: each batch triple (person, r_j, value) of a sensitive
relation j gives (person + A_j(person), r_j[ATTR], value), scored with an extra relation r_j[ATTR]
(and its inverse) that is discarded after training.

Bias metrics (paper 2, §5) are computed on the base model, *without* attribute vectors: use the
trained :class:`~kgbias.models.KGModel` itself, not :class:`AttributeAwareModel`.

Choices where the paper is silent (its §4.2):

- people with several values get the **sum** of their vectors, people with none get zero;
- values are those seen in **train**, and a person's values are read from train only;
- vectors start at **zero**, so a KL + Attr. model starts exactly where the KL model starts; the
  vectors need no random init to break symmetry, as each gets its own gradient from its own people;
- the ATTR relations start as **copies** of the sensitive relation's rows (the paper calls it a
  "duplicated relation"), so their init draws no random numbers and leaves the base model's init
  unchanged;
- in a twin triple the person gets A_j(person) (the same sum as everywhere else; for a person with
  one value this is the paper's ``person + v_value``); on the head side of a twin, the shared
  negatives get their own A_j too, as candidate people do on any whitelisted relation;
- on a whitelisted relation the vectors apply on both sides of ranking: added to the query when
  the person is the query, added to every candidate when people are the candidates.
"""

from __future__ import annotations

import torch
from torch import nn

from ..graph import KnowledgeGraph
from ..models import KGModel
from .plan import BatchPlan, PlanTables, make_plan
from .whitelists import Whitelist


class AttributeVectors(nn.Module):
    """One trainable vector per value of each debiased attribute, plus the ATTR relations.

    Parameters
    ----------
    kg
        The graph: values and each person's values are read from its train split.
    attributes
        Debiased attributes (sensitive attributes of ``kg``).
    width
        Width of the model's entity table (``2 * embedding_dim`` for ComplEx).
    relation_init
        ``shape: (2 * n_relations, width)``: the base relation table, whose rows of each
        attribute's relation (both directions) initialise the ATTR relations. None: zeros.

    Attributes
    ----------
    vectors
        ``vectors[attribute]``, ``shape: (n_values, width)``, zero at init.
    relation
        ``2 * n_attributes`` rows: ``j`` is attribute j's ATTR relation with the person on the
        left, ``n_attributes + j`` its inverse. Only the twin triples use them.
    """

    def __init__(self, kg: KnowledgeGraph, attributes: list[str], width: int,
                 relation_init: torch.Tensor | None = None):
        super().__init__()
        self.attributes = list(attributes)
        self.vectors = nn.ParameterDict()
        n = len(self.attributes)
        self.relation = nn.Embedding(2 * n, width, sparse=True)
        nn.init.zeros_(self.relation.weight)
        twin_relation, twin_inverted, tables = [], [], []
        for j, attribute in enumerate(self.attributes):
            pairs = kg.attribute_pairs(attribute, splits=("train",))  # (person, value), sorted, distinct
            values, value_index = torch.unique(pairs[:, 1], return_inverse=True)
            self.vectors[attribute] = nn.Parameter(torch.zeros(len(values), width))
            # padded person -> value-index table; the pad index len(values) points at a zero row
            counts = torch.bincount(pairs[:, 0], minlength=kg.n_entities)
            table = torch.full((kg.n_entities, max(1, int(counts.max()) if len(pairs) else 1)), len(values))
            slot = torch.arange(len(pairs)) - (torch.cumsum(counts, 0) - counts)[pairs[:, 0]]
            table[pairs[:, 0], slot] = value_index
            self.register_buffer(f"_values_{j}", values, persistent=False)
            tables.append(table)
            spec = kg.sensitive[attribute]
            twin_relation.append(kg.relation_id(spec.relation))
            twin_inverted.append(spec.inverted)
            if relation_init is not None:
                forward = kg.attribute_relation(attribute)
                with torch.no_grad():
                    self.relation.weight[j] = relation_init[forward]
                    self.relation.weight[n + j] = relation_init[(forward + kg.n_relations) % (2 * kg.n_relations)]
        self.register_buffer("twin_relation", torch.tensor(twin_relation, dtype=torch.long), persistent=False)
        self.register_buffer("twin_inverted", torch.tensor(twin_inverted, dtype=torch.bool), persistent=False)
        twin_attribute = torch.full((kg.n_relations,), -1, dtype=torch.long)  # relation -> j, or -1
        twin_attribute[self.twin_relation] = torch.arange(n)
        self.register_buffer("twin_attribute", twin_attribute, persistent=False)
        # every attribute's table side by side, as rows of one stacked value table (pad: its last row)
        sizes = [len(v) for v in self.vectors.values()]
        starts = torch.tensor([0, *sizes]).cumsum(0)
        combined = [torch.where(table == size, starts[-1], table + start) for table, size, start in zip(tables, sizes, starts)]
        slot_attribute = [torch.full((table.shape[1],), j) for j, table in enumerate(tables)]
        self.register_buffer("_table_all", torch.cat(combined, 1) if n else torch.zeros(kg.n_entities, 0, dtype=torch.long),
                             persistent=False)
        self.register_buffer("_slot_attribute", torch.cat(slot_attribute) if n else torch.zeros(0, dtype=torch.long),
                             persistent=False)
        self.register_buffer("_value_attribute", torch.repeat_interleave(torch.arange(n), torch.tensor(sizes, dtype=torch.long))
                             if n else torch.zeros(0, dtype=torch.long), persistent=False)

    def values(self, attribute: str) -> torch.Tensor:
        """Entity ids of the attribute's values, in the order of ``vectors[attribute]``'s rows."""
        return getattr(self, f"_values_{self.attributes.index(attribute)}")

    def person_offsets(self, attribute: str, entity_ids: torch.Tensor) -> torch.Tensor:
        """``shape: (n, width)``: A_j(e), the sum of each entity's value vectors (zero if none)."""
        return self.offsets(torch.full_like(entity_ids, 1 << self.attributes.index(attribute)), entity_ids)

    def stacked(self) -> torch.Tensor:
        """``shape: (n_values + 1, width)``: every attribute's vectors in order, then a zero pad row.
        A batch stacks them once: one gradient to accumulate per step, not one per lookup."""
        return torch.cat([*self.vectors.values(), self.relation.weight.new_zeros(1, self.relation.weight.shape[1])])

    def offsets(self, bits: torch.Tensor, entity_ids: torch.Tensor, stacked: torch.Tensor | None = None) -> torch.Tensor:
        """``shape: (n, width)``: the sum of A_j(entity_ids[i]) over the attributes j set in ``bits[i]``
        (attribute j is bit ``1 << j``). ``stacked``: :meth:`stacked`, when the caller has it."""
        stacked = self.stacked() if stacked is None else stacked
        bags, _ = self._bags(bits, entity_ids, len(stacked) - 1)
        # embedding_bag sums in C++ and skips the pad; gathering rows and summing them had an
        # index_put backward that took half of a training step
        return nn.functional.embedding_bag(bags, stacked, mode="sum", padding_idx=len(stacked) - 1)

    def value_tables(self) -> dict[str, torch.Tensor]:
        """The integer tables that say which entity has which value and which relations get twins
        (see :class:`~kgbias.debias.plan.PlanTables`)."""
        return {"table_all": self._table_all, "slot_attribute": self._slot_attribute,
                "value_attribute": self._value_attribute, "twin_attribute": self.twin_attribute,
                "twin_inverted": self.twin_inverted}

    def _bags(self, bits: torch.Tensor, entity_ids: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of value indices into :meth:`stacked` (``pad`` where unused), and which are used."""
        slots = self._table_all.index_select(0, entity_ids)  # indexing a 2-D table: 10x slower
        used = ((bits.unsqueeze(1) >> self._slot_attribute) & 1 == 1) & (slots != pad)
        return torch.where(used, slots, pad), used


class AttributeAwareModel(nn.Module):
    """A base model that adds attribute vectors on whitelisted triples; scores as a KGModel does.

    ``score_tails`` and ``score_triples`` take relation slots in ``[0, 2 * n_relations)`` as the
    base model does, so :func:`kgbias.evaluate.rank_triples` and ``link_prediction`` work unchanged.
    Rows whose relation is whitelisted for no attribute are the base model's scores, untouched.
    ``entity``, ``relation``, ``query``, ``transform`` and ``compare`` are the base model's (no
    vectors), so the KL loss sees the plain person embeddings.

    Bits: attribute j is bit ``1 << j``. Per relation slot, ``fixed_bits`` are the type-1 attributes,
    ``profession_slot`` marks the profession relation (whose bits come from the profession entity),
    and ``person_is_query`` says on which side the person is.
    """

    def __init__(self, base: KGModel, vectors: AttributeVectors, whitelist: Whitelist, kg: KnowledgeGraph):
        super().__init__()
        if list(vectors.attributes) != list(whitelist.attributes):
            raise ValueError(f"vectors are for {vectors.attributes}, whitelist for {whitelist.attributes}")
        self.base = base
        self.vectors = vectors
        n_relations, n_slots = kg.n_relations, 2 * kg.n_relations
        fixed_bits = torch.zeros(n_slots, dtype=torch.long)
        person_is_query = torch.zeros(n_slots, dtype=torch.bool)
        profession_slot = torch.zeros(n_slots, dtype=torch.bool)
        entity_bits = torch.zeros(kg.n_entities, dtype=torch.long)
        for j, attribute in enumerate(whitelist.attributes):
            type1 = whitelist.relations[attribute].nonzero().flatten()
            fixed_bits[type1] |= 1 << j
            fixed_bits[type1 + n_relations] |= 1 << j
            person_is_query[type1] = True
            entity_bits[whitelist.entities[attribute]] |= 1 << j
        if entity_bits.any():
            forward = kg.attribute_relation("profession")
            backward = (forward + n_relations) % n_slots
            if person_is_query[backward] or (fixed_bits[forward] != 0 and not person_is_query[forward]):
                raise ValueError("the profession relation is stored value -> person; it cannot also be "
                                 "whitelisted as a type-1 relation (person = head)")
            profession_slot[[forward, backward]] = True
            person_is_query[forward] = True
        for name, tensor in (("fixed_bits", fixed_bits), ("person_is_query", person_is_query),
                             ("profession_slot", profession_slot), ("entity_bits", entity_bits)):
            self.register_buffer(name, tensor, persistent=False)
        # the distinct bit sets of whitelisted professions (usually one or two): a batch loops over
        # these instead of sorting its negatives' bits
        self._profession_groups = torch.unique(entity_bits[entity_bits != 0]).tolist()
        self._plan_tables = None  # numpy copies of the integer tables, made by plan_tables()

    # --- the base model's interface -------------------------------------------------------------
    @property
    def n_entities(self) -> int:
        return self.base.n_entities

    @property
    def n_relations(self) -> int:
        return self.base.n_relations

    @property
    def entity(self) -> nn.Embedding:
        return self.base.entity

    @property
    def relation(self) -> nn.Embedding:
        return self.base.relation

    @property
    def comparator(self) -> str | None:  # the KL loss batches its products for "dot"
        return getattr(self.base, "comparator", None)

    def query(self, h_emb, r):
        return self.base.query(h_emb, r)

    def transform(self, h_emb, r_emb):
        return self.base.transform(h_emb, r_emb)

    def compare(self, query, t_emb, pairwise):
        return self.base.compare(query, t_emb, pairwise)

    def head_form(self, r_emb, t_emb):
        return self.base.head_form(r_emb, t_emb)

    # --- scoring with vectors -------------------------------------------------------------------
    def offsets(self, bits: torch.Tensor, entity_ids: torch.Tensor) -> torch.Tensor:
        """``shape: (n, width)``: sum of A_j(entity_ids[i]) over the attributes j set in ``bits[i]``."""
        return self.vectors.offsets(bits, entity_ids)

    def score_triples(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``shape: (batch_size,)`` scores of ``(h, r, t)`` with ``r`` a slot in ``[0, 2R)``."""
        person_is_query = self.person_is_query[r]
        other = torch.where(person_is_query, t, h)
        person = torch.where(person_is_query, h, t)
        bits = self.fixed_bits[r] | torch.where(self.profession_slot[r], self.entity_bits[other], 0)
        offsets = self.offsets(bits, person)
        side = person_is_query.unsqueeze(1)
        h_emb = self.base.entity(h) + torch.where(side, offsets, 0.0)
        t_emb = self.base.entity(t) + torch.where(side, 0.0, offsets)
        return self.base.compare(self.base.query(h_emb, r), t_emb, pairwise=True)

    def score_tails(self, h: torch.Tensor, r: torch.Tensor, candidates: torch.Tensor | None = None) -> torch.Tensor:
        """``shape: (batch_size, n_candidates)``: each query ``(h, r)`` against every candidate tail.

        Rows with no whitelisted attribute are the base scores. When the person is the query, the
        offsets of its type-1 attributes go on the query before the one matrix product; on the
        profession relation, whitelisted professions (few columns) are rescored with their extra
        attributes. When people are the candidates, the candidate table gets their offsets, per
        group of rows with the same attributes.
        """
        candidate_ids = torch.arange(self.n_entities, device=h.device) if candidates is None else candidates
        candidate_emb = self.base.entity.weight if candidates is None else self.base.entity(candidates)
        fixed, profession, person_is_query = self.fixed_bits[r], self.profession_slot[r], self.person_is_query[r]
        h_emb = self.base.entity(h)
        shifted = h_emb + self.offsets(torch.where(person_is_query, fixed, 0), h)
        scores = self.base.compare(self.base.query(shifted, r), candidate_emb, pairwise=False)

        # the person is the query on the profession relation: whitelisted professions add attributes
        rows = (profession & person_is_query).nonzero().flatten()
        candidate_bits = self.entity_bits[candidate_ids]
        special = candidate_bits.nonzero().flatten()
        if rows.numel() and special.numel():
            for group in torch.unique(candidate_bits[special]):
                columns = special[candidate_bits[special] == group]
                query = self.base.query(h_emb[rows] + self.offsets(fixed[rows] | group, h[rows]), r[rows])
                block = self.base.compare(query, candidate_emb[columns], pairwise=False)  # few columns
                scores = scores.index_put((rows.unsqueeze(1), columns.unsqueeze(0)), block)

        # people are the candidates: offsets on the candidate table, per group of row bits
        active = (fixed != 0) | profession
        rows = (active & ~person_is_query).nonzero().flatten()
        if rows.numel():
            query = self.base.query(h_emb[rows], r[rows])  # the query side is not a person here
            row_bits = fixed[rows] | torch.where(profession[rows], self.entity_bits[h[rows]], 0)
            for group in torch.unique(row_bits):
                if group == 0:
                    continue
                inside = row_bits == group
                table = candidate_emb + self.offsets(group.expand(len(candidate_ids)), candidate_ids)
                # whole rows replaced in place: scattering blocks with index_put was 20x slower
                scores.index_copy_(0, rows[inside], self.base.compare(query[inside], table, pairwise=False))
        return scores

    def score_heads(self, r: torch.Tensor, t: torch.Tensor, candidates: torch.Tensor | None = None) -> torch.Tensor:
        """``shape: (batch_size, n_candidates)``: ``(?, r, t)`` scored as ``(t, r^-1, ?)``."""
        return self.score_tails(t, r + self.n_relations, candidates)

    # --- training -------------------------------------------------------------------------------
    def plan_tables(self) -> PlanTables:
        """The integer tables :meth:`batch_plan` reads, as numpy arrays (made once)."""
        if self._plan_tables is None:
            buffers = {"fixed_bits": self.fixed_bits, "person_is_query": self.person_is_query,
                       "profession_slot": self.profession_slot, "entity_bits": self.entity_bits,
                       **self.vectors.value_tables()}
            self._plan_tables = PlanTables.of(buffers, self.n_relations, len(self.vectors.attributes),
                                              self._profession_groups, dot=self.comparator == "dot")
        return self._plan_tables

    def batch_plan(self, batch: torch.Tensor, negatives: torch.Tensor, people: torch.Tensor | None = None) -> BatchPlan:
        """The integer part of :meth:`batch_scores` (see :class:`~kgbias.debias.plan.BatchPlan`),
        made on the host and returned on the device of ``batch``."""
        plan = make_plan(self.plan_tables(), batch.cpu().numpy(), negatives.cpu().numpy(),
                         None if people is None else people.cpu().numpy())
        return plan if batch.device.type == "cpu" else plan.to(batch.device)

    def batch_scores(self, batch: torch.Tensor, negatives: torch.Tensor, people: torch.Tensor | None = None):
        """Positive ``(n,)`` and negative ``(n, n_negatives)`` scores of a batch, both directions,
        with vectors on whitelisted triples, followed by the twin triples (:meth:`twin_scores`).

        With ``people`` (entity ids), their plain embeddings (no vectors), from the same lookup, are
        returned third: the KL term's people, without a second sparse gradient.

        The first ``2 * len(batch)`` rows equal ``score_triples`` and ``score_tails`` of the queries
        ``(h, r, ?)`` and ``(t, r^-1, ?)`` against the shared ``negatives``. The same as
        ``planned_scores(batch_plan(batch, negatives, people))``.
        """
        return self.planned_scores(self.batch_plan(batch, negatives, people))

    def planned_scores(self, plan: BatchPlan):
        """:meth:`batch_scores` of the batch that ``plan`` (on the model's device) was made from.

        One matrix product scores every row as the base model does, twins included; the few
        scores that vectors change are then corrected in place by what they add, so the score
        matrix is never copied (copies and separate blocks had doubled a step's time):

        - rows whose person is the query, at whitelisted professions among the negatives: the
          score with the profession's extra attributes minus the score without;
        - rows whose candidates are people: ``q . A_j(n)`` for each attribute j of the row and
          each negative person n (dot comparators); otherwise the rescored row minus the old one.
        """
        base, vectors, tensors, n = self.base, self.vectors, plan.tensors, plan.n_batch
        stacked = vectors.stacked()
        pad = len(stacked) - 1
        lookup = base.entity(tensors["all_ids"])
        if tensors["offset_rows"].numel():  # added into the fresh lookup, which nothing else reads
            # one row per (row, value) pair: the backward is an index_add into the small stacked
            # table (embedding_bag's sorted and took twice as long; index_put's took half a step)
            lookup = lookup.index_add_(0, tensors["offset_rows"], stacked.index_select(0, tensors["offset_values"]))
        # a split's backward is one cat
        (query_emb, negative_emb, rescored_query, rescored_answer, person_emb, value_emb, *people_emb) = \
            lookup.split(plan.sizes)

        rescored, rows = tensors["rescored"], tensors["profession_rows"]
        query_relation, rescored_relation, profession_relation = base.relation(tensors["relation_ids"]).split(
            [len(query_emb), len(rescored), len(rows)])
        query = base.transform(query_emb, query_relation)
        # a row's answer is its partner row's query; where that query has offsets (the person is
        # the query), this row has people as candidates and its positive is rescored just below
        positive = base.compare(query, query_emb.roll(n, 0), pairwise=True)
        if rescored.numel():
            query_rows = base.transform(rescored_query, rescored_relation)
            positive = positive.index_copy(0, rescored, base.compare(query_rows, rescored_answer, pairwise=True))

        # the twins: (person + A_j(person), r_j[ATTR], value) and (value, r_j[ATTR]^-1, person + A_j)
        forward_relation, backward_relation = vectors.relation(tensors["twin_relations"]).split([len(person_emb)] * 2)
        twin_query = torch.cat([base.transform(person_emb, forward_relation), base.transform(value_emb, backward_relation)])
        query = torch.cat([query, twin_query])
        positive = torch.cat([positive, base.compare(twin_query, torch.cat([value_emb, person_emb]), pairwise=True)])

        negative = base.compare(query, negative_emb, pairwise=False)  # every row as the base model's
        dot = getattr(base, "comparator", None) == "dot"
        for k in range(len(plan.groups)):  # the person is the query: whitelisted professions
            columns = tensors[f"columns_{k}"]
            column_emb = negative_emb.index_select(0, columns)
            extra = nn.functional.embedding_bag(tensors[f"extra_bags_{k}"], stacked, mode="sum", padding_idx=pad)
            if dot:  # the score is affine in the head: the change is extra . keys(r, profession)
                relation_emb = profession_relation[:1].expand(len(columns), -1)
                change = extra @ base.head_form(relation_emb, column_emb)[0].T
            else:
                plain_query = query.index_select(0, rows)
                shifted = base.transform(query_emb.index_select(0, rows) + extra, profession_relation)
                change = (base.compare(shifted, column_emb, pairwise=False)
                          - base.compare(plain_query, column_emb, pairwise=False))
            negative.index_put_((rows.unsqueeze(1), columns.unsqueeze(0)), change, accumulate=True)
        rows = tensors["candidate_rows"]  # people are the candidates: negatives get offsets
        if rows.numel():
            row_bits, query_rows = tensors["candidate_bits"], query.index_select(0, rows)
            if dot:
                # q . (n + sum_j A_j(n)) = q . n + sum over n's values v of the row's attributes of q . vector_v:
                # each row's products with every value vector, masked to its attributes, added to the
                # column of each negative that has the value (a third of the negatives have one or two:
                # a product with their 0/1 value counts was 99% zeros)
                uses = (row_bits.unsqueeze(1) >> vectors._value_attribute) & 1  # (rows, n_values)
                per_value = base.compare(query_rows, stacked[:-1], pairwise=False) * uses
                change = per_value.new_zeros(len(rows), plan.sizes[1]).index_add_(
                    1, tensors["pair_columns"], per_value.index_select(1, tensors["pair_values"]))
                negative.index_add_(0, rows, change)
            else:  # a distance is not linear in the candidate: a table per group of row bits
                pair_offsets = nn.functional.embedding_bag(tensors["pair_bags"], stacked, mode="sum", padding_idx=pad)
                for k in range(len(plan.candidate_groups)):
                    inside = tensors[f"inside_{k}"]
                    table = negative_emb.index_add(0, tensors[f"positions_{k}"], pair_offsets[tensors[f"used_{k}"]])
                    group_query = query_rows.index_select(0, inside)
                    change = (base.compare(group_query, table, pairwise=False)
                              - base.compare(group_query, negative_emb, pairwise=False))
                    negative.index_add_(0, rows[inside], change)
        return (positive, negative, people_emb[0]) if plan.has_people else (positive, negative)

    def twin_scores(self, batch: torch.Tensor, negatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores of the twin triples (person + A_j(person), r_j[ATTR], value), both directions.

        Returns ``positive: (n_twins,)`` and ``negative: (n_twins, n_negatives)`` against the
        batch's shared ``negatives``: every forward twin in batch order, then every backward one.
        Fisher et al. (2020b), §4.2.
        """
        positive, negative = self.batch_scores(batch, negatives)
        return positive[2 * len(batch):], negative[2 * len(batch):]
