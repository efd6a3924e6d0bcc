"""The integer bookkeeping of a KL + Attr. training batch (:class:`BatchPlan`), made with numpy.

A plan says which rows of a batch's scores take which attribute vectors, which candidates are
people, and which triples get twins; it reads no embedding. It is made on the host, where the
batch is drawn, and goes to the training device in one copy (:func:`kgbias.training.host_batch`):
made on a GPU, each of its ``nonzero`` calls made the host wait for the device (15 waits a step
on an H100).

It is about a hundred operations on a few thousand integers, where torch's dispatch of each call
was most of the time: numpy makes the same plan in about half the time (``bench/HISTORY.md``). The
tables are kept in the smallest integer type that holds them, so that a batch's random reads touch
fewer cache lines (FB15k-237's value table, 14,505 x 18 entries: 2.1 MB as int64, 261 KB as uint8).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..batches import to_device


@dataclass
class BatchPlan:
    """The integer bookkeeping of one training batch of
    :meth:`~kgbias.debias.attributes.AttributeAwareModel.batch_scores`: the ids of its one entity
    lookup, which rows and candidates take which vectors, the twins.

    Attributes
    ----------
    tensors
        Named int64 tensors, all on one device.
    sizes
        Lengths of the lookup's parts: queries, negatives, rescored queries, rescored answers, the
        twins' people, their values, and the KL term's people when given.
    n_batch
        Triples in the batch.
    groups
        Bit sets of the whitelisted professions among the negatives that add attributes to the rows
        whose person is the query (``columns_k`` and ``extra_bags_k`` in ``tensors``).
    candidate_groups
        Distance comparators only: bit sets of the rows whose candidates are people
        (``inside_k``, ``used_k`` and ``positions_k``).
    """

    tensors: dict[str, torch.Tensor]
    sizes: list[int]
    n_batch: int
    groups: list[int] = field(default_factory=list)
    candidate_groups: list[int] = field(default_factory=list)

    @property
    def has_people(self) -> bool:
        return len(self.sizes) == 7

    def to(self, device) -> BatchPlan:
        """The same plan with its tensors on ``device`` (one copy)."""
        return BatchPlan(to_device(self.tensors, device), self.sizes, self.n_batch, self.groups, self.candidate_groups)


def _compact(table: np.ndarray) -> np.ndarray:
    """``table`` in the smallest signed or unsigned integer type that holds its values."""
    if table.size == 0:
        return table
    low, high = int(table.min()), int(table.max())
    for dtype in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32):
        if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
            return table.astype(dtype)
    return table


@dataclass(frozen=True)
class PlanTables:
    """What :func:`make_plan` reads, as numpy arrays (see
    :class:`~kgbias.debias.attributes.AttributeAwareModel` for the bits).

    Per relation slot (``2 * n_relations``): ``fixed_bits``, ``person_is_query``,
    ``profession_slot``; per entity: ``entity_bits`` (whitelisted professions) and ``table_all``
    (its values as rows of the stacked value table, ``n_values`` where unused); per slot of
    ``table_all``: ``slot_attribute``; per relation: ``twin_attribute`` (j, or -1); per attribute:
    ``twin_inverted``.
    """

    fixed_bits: np.ndarray
    person_is_query: np.ndarray
    profession_slot: np.ndarray
    entity_bits: np.ndarray
    table_all: np.ndarray
    slot_attribute: np.ndarray
    twin_attribute: np.ndarray
    twin_inverted: np.ndarray
    n_values: int
    n_relations: int
    n_attributes: int
    profession_groups: tuple[int, ...]
    dot: bool

    @classmethod
    def of(cls, tables: dict[str, torch.Tensor], n_relations: int, n_attributes: int,
           profession_groups: list[int], dot: bool) -> PlanTables:
        """From the model's integer buffers (any device)."""
        host = {name: tensor.cpu().numpy() for name, tensor in tables.items()}
        return cls(fixed_bits=host["fixed_bits"], person_is_query=host["person_is_query"],
                   profession_slot=host["profession_slot"], entity_bits=_compact(host["entity_bits"]),
                   table_all=_compact(host["table_all"]), slot_attribute=host["slot_attribute"],
                   twin_attribute=host["twin_attribute"], twin_inverted=host["twin_inverted"],
                   n_values=len(host["value_attribute"]), n_relations=n_relations, n_attributes=n_attributes,
                   profession_groups=tuple(profession_groups), dot=dot)

    def bags(self, bits: np.ndarray, entity_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of value indices (``n_values`` where unused) of the attributes set in ``bits``,
        and which are used."""
        slots = self.table_all[entity_ids]
        used = ((bits[:, None] >> self.slot_attribute) & 1).astype(bool) & (slots != self.n_values)
        return np.where(used, slots, self.n_values), used

    def attribute_bags(self, entity_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each attribute's values of each entity that has a value of it, as pairs: the entity's
        position in ``entity_ids``, the attribute j, and a row of value indices (``n_values`` where
        unused), whose ``embedding_bag`` is A_j of that entity."""
        slots = self.table_all[entity_ids]
        rows = np.flatnonzero((slots != self.n_values).any(1))
        slots = slots[rows]
        mine = self.slot_attribute == np.arange(self.n_attributes)[:, None]  # (n_attributes, n_slots)
        bags = np.where(mine[:, None, :], slots[None], self.n_values)  # (n_attributes, len(rows), n_slots)
        keep = (bags != self.n_values).any(2)
        attribute, row = np.nonzero(keep)
        return rows[row], attribute, bags[keep]

    def twins(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch's triples of a debiased attribute's relation: attribute j, person, value."""
        attribute = self.twin_attribute[batch[:, 1]]
        twin = np.flatnonzero(attribute >= 0)
        attribute, (head, tail) = attribute[twin], (batch[twin, 0], batch[twin, 2])
        inverted = self.twin_inverted[attribute]
        return attribute, np.where(inverted, tail, head), np.where(inverted, head, tail)


def value_pairs(table_all: np.ndarray, n_values: int, entity_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(position, value)``: one pair per value of each entity, with the entity's position in
    ``entity_ids`` and the value as a row of the stacked value table (``table_all``'s entries,
    ``n_values`` where unused), ordered by position: summing the stacked vectors per position gives
    each entity's offsets."""
    slots = table_all[entity_ids].ravel()
    pairs = np.flatnonzero(slots != n_values)
    return pairs // table_all.shape[1], slots[pairs]


def make_plan(tables: PlanTables, batch: np.ndarray, negatives: np.ndarray,
              people: np.ndarray | None = None) -> BatchPlan:
    """The :class:`BatchPlan` of ``batch`` (``(n, 3)`` int64) against the shared ``negatives``,
    with the KL term's ``people`` in its lookup when given; tensors on the CPU."""
    n, t = len(batch), tables
    h, r, tail = batch[:, 0], batch[:, 1], batch[:, 2]
    queries, answers = np.concatenate([h, tail]), np.concatenate([tail, h])
    relations = np.concatenate([r, r + t.n_relations])
    fixed = t.fixed_bits[relations]
    is_profession = t.profession_slot[relations]
    person_is_query = t.person_is_query[relations]
    other = np.where(person_is_query, answers, queries)  # the side that is not the person
    bits = fixed | np.where(is_profession, t.entity_bits[other], 0)  # of the positive triple
    query_bits = np.where(person_is_query, fixed, 0)  # the query's own, for every candidate
    candidate_bits = np.where(person_is_query, 0, bits)  # the people among the candidates
    # positives whose query gains a whitelisted profession's attributes, or whose answer is a person
    rescored = np.flatnonzero((bits != query_bits) & person_is_query | (candidate_bits != 0))
    negative_bits = t.entity_bits[negatives]
    special = np.flatnonzero(negative_bits)  # whitelisted professions among the negatives
    profession_rows = np.flatnonzero(is_profession & person_is_query) if special.size else special[:0]
    attribute, person, value = t.twins(batch)

    # one lookup (one sparse gradient) with every part's offsets added, then split: queries,
    # negatives, rescored queries and answers, twins' people and values, the KL term's people
    ids = [queries, negatives, queries[rescored], answers[rescored], person, value, *([] if people is None else [people])]
    twin_bits = 1 << attribute
    all_bits = np.concatenate([query_bits, np.zeros(len(negatives), np.int64),
                               np.where(person_is_query[rescored], bits[rescored], 0), candidate_bits[rescored],
                               twin_bits, np.zeros(sum(len(i) for i in ids[5:]), np.int64)])
    all_ids = np.concatenate(ids)
    rows = np.flatnonzero(all_bits)  # most rows add nothing: skip them before the bags
    bags, used = t.bags(all_bits[rows], all_ids[rows])
    row, slot = np.nonzero(used)  # (row, value) pairs, each row's values in slot order
    # per row, the bits of the people among its candidates (backward twins: the twin's attribute)
    candidate_bits = np.concatenate([candidate_bits, np.zeros(len(twin_bits), np.int64), twin_bits])
    candidate_rows = np.flatnonzero(candidate_bits)
    arrays = {"all_ids": all_ids, "offset_rows": rows[row], "offset_values": bags[row, slot],
              # every relation row of the scores in one lookup (one sparse gradient): the queries',
              # the rescored rows', then the profession rows'
              "relation_ids": np.concatenate([relations, relations[rescored], relations[profession_rows]]),
              "rescored": rescored,
              # both directions' ATTR relations in one lookup: one sparse gradient
              "twin_relations": np.concatenate([attribute, attribute + t.n_attributes]),
              "profession_rows": profession_rows,
              "candidate_rows": candidate_rows, "candidate_bits": candidate_bits[candidate_rows]}
    groups, candidate_groups = [], []
    if profession_rows.size:  # the person is the query: whitelisted professions add attributes
        special_bits, fixed_rows = negative_bits[special], fixed[profession_rows]
        for group in t.profession_groups:
            columns = special[special_bits == group]
            if columns.size:
                # the attributes the profession adds to those the query already has
                arrays[f"columns_{len(groups)}"] = columns
                arrays[f"extra_bags_{len(groups)}"] = t.bags(group & ~fixed_rows, queries[profession_rows])[0]
                groups.append(group)
    if candidate_rows.size:  # people are the candidates: negatives get offsets
        if t.dot:
            arrays["pair_columns"], arrays["pair_values"] = value_pairs(t.table_all, t.n_values, negatives)
        else:
            positions, pair_attribute, arrays["pair_bags"] = t.attribute_bags(negatives)
            row_bits = candidate_bits[candidate_rows]
            for group in np.unique(row_bits).tolist():
                k = len(candidate_groups)
                arrays[f"inside_{k}"] = np.flatnonzero(row_bits == group)
                used_pairs = np.flatnonzero((group >> pair_attribute) & 1)
                arrays[f"used_{k}"], arrays[f"positions_{k}"] = used_pairs, positions[used_pairs]
                candidate_groups.append(group)
    tensors = {name: torch.from_numpy(array.astype(np.int64, copy=False)) for name, array in arrays.items()}
    return BatchPlan(tensors, [len(i) for i in ids], n, groups, candidate_groups)
