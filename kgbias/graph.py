"""The in-memory knowledge graph every other module works on.

Triples are index tensors of shape ``(n_triples, 3)`` holding ``(head, relation, tail)`` ids.
Models use *inverse relations*: relation ``r + n_relations`` means ``r`` read from tail to head,
so "predict the head of (?, r, t)" is "predict the tail of (t, r + n_relations, ?)". The same trick
lets a sensitive relation stored value -> person (FB15k-237's ``/people/ethnicity/people``) be
scored with the person on the left.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd
import torch

from .errors import DataError

# Attribute names are the same on every dataset; the schema maps them to each graph's relations.
ATTRIBUTES = ("gender", "profession", "nationality", "religion", "ethnicity")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SensitiveRelation:
    """Which relation of a graph carries an attribute of people.

    ``inverted`` means the graph stores it as ``(value, relation, person)``.
    """

    attribute: str
    relation: str
    inverted: bool = False


@dataclass
class KnowledgeGraph:
    """Entities, relations, the three splits, labels, people and sensitive relations.

    Attributes
    ----------
    entities, relations
        Names by id (``entities[i]`` is the name of entity ``i``).
    train, valid, test
        ``shape: (n_triples, 3)`` int64 tensors of ``(head, relation, tail)`` ids.
    labels
        Human-readable label by entity name (may be partial; :meth:`label` falls back to the name).
    humans
        ``shape: (n_humans,)`` sorted int64 ids of the entities that are people.
    sensitive
        Attribute name (``gender``, ``profession``, ...) to the relation that carries it.
    skipped
        Counts of input lines that were skipped on purpose while loading (e.g. blank lines),
        by reason, so nothing disappears silently.
    named_values
        Canonical value names per attribute, e.g. ``{"gender": {"male": "/m/05zppz",
        "female": "/m/02zsn"}}``, so code can ask for "male" on any dataset.
    metadata
        Anything else a loader knows (e.g. the toy graph's planted skew), JSON-friendly.
    """

    name: str
    entities: list[str]
    relations: list[str]
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    labels: dict[str, str] = field(default_factory=dict)
    humans: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    sensitive: dict[str, SensitiveRelation] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    named_values: dict[str, dict[str, str]] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._entity_to_id = {name: i for i, name in enumerate(self.entities)}
        self._relation_to_id = {name: i for i, name in enumerate(self.relations)}
        for split in SPLITS:
            triples = getattr(self, split)
            if triples.ndim != 2 or triples.shape[1] != 3:
                raise DataError(f"{self.name}: {split} must have shape (n, 3), got {tuple(triples.shape)}")
        for attribute, spec in self.sensitive.items():
            if spec.relation not in self._relation_to_id:
                raise DataError(
                    f"{self.name}: sensitive attribute {attribute!r} names relation "
                    f"{spec.relation!r}, which is not in the graph"
                )

    # --- sizes and id maps -------------------------------------------------------------------
    @property
    def n_entities(self) -> int:
        return len(self.entities)

    @property
    def n_relations(self) -> int:
        return len(self.relations)

    def entity_id(self, name: str) -> int:
        try:
            return self._entity_to_id[name]
        except KeyError:
            raise DataError(f"{self.name}: unknown entity {name!r}") from None

    def relation_id(self, name: str) -> int:
        try:
            return self._relation_to_id[name]
        except KeyError:
            raise DataError(f"{self.name}: unknown relation {name!r}") from None

    def entity_by_label(self, label: str) -> int:
        """Id of the one entity whose label (or name) is ``label``; DataError if none or several."""
        matches = [i for i, name in enumerate(self.entities) if self.labels.get(name, name) == label]
        if len(matches) != 1:
            found = "no entity" if not matches else f"{len(matches)} entities"
            raise DataError(f"{self.name}: {found} labelled {label!r}")
        return matches[0]

    def label(self, entity: int | str) -> str:
        """Readable label of an entity id or name (the name itself when no label is known)."""
        name = self.entities[entity] if isinstance(entity, int) else entity
        return self.labels.get(name, name)

    def split(self, split: str) -> torch.Tensor:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return getattr(self, split)

    def fingerprint(self) -> str:
        """Short hash of the entities, relations and triples: run folders and cached runs refuse
        to mix graphs with it."""
        digest = hashlib.sha256()
        digest.update("\n".join(self.entities + self.relations).encode())
        for split in SPLITS:
            digest.update(self.split(split).numpy().tobytes())
        return digest.hexdigest()[:8]

    def all_triples(self) -> torch.Tensor:
        return torch.cat([self.train, self.valid, self.test])

    # --- sensitive attributes ----------------------------------------------------------------
    def _spec(self, attribute: str) -> SensitiveRelation:
        try:
            return self.sensitive[attribute]
        except KeyError:
            known = ", ".join(self.sensitive) or "none"
            raise DataError(
                f"{self.name}: no sensitive relation for attribute {attribute!r} (known: {known})"
            ) from None

    def value_id(self, attribute: str, value: str) -> int:
        """Entity id of a value given by canonical name (``"male"``) or entity name."""
        name = self.named_values.get(attribute, {}).get(value, value)
        return self.entity_id(name)

    def attribute_relation(self, attribute: str) -> int:
        """Relation index that scores ``(person, attribute, value)`` with the person on the left.

        For an inverted relation this is the inverse relation ``r + n_relations``.
        """
        spec = self._spec(attribute)
        relation = self.relation_id(spec.relation)
        return relation + self.n_relations if spec.inverted else relation

    def attribute_pairs(self, attribute: str, splits=SPLITS) -> torch.Tensor:
        """Distinct ``(person, value)`` id pairs for an attribute, ``shape: (n_pairs, 2)``."""
        spec = self._spec(attribute)
        relation = self.relation_id(spec.relation)
        triples = torch.cat([self.split(s) for s in splits])
        rows = triples[triples[:, 1] == relation]
        pairs = rows[:, [2, 0]] if spec.inverted else rows[:, [0, 2]]
        return torch.unique(pairs, dim=0)

    def attribute_values(self, attribute: str, splits=SPLITS) -> pd.DataFrame:
        """One row per (person, value): columns ``person``, ``value`` (ids) and their labels."""
        pairs = self.attribute_pairs(attribute, splits)
        frame = pd.DataFrame(pairs.numpy(), columns=["person", "value"])
        frame["value_label"] = [self.label(int(v)) for v in frame["value"]]
        return frame

    def attribute_counts(self, attribute: str, splits=SPLITS) -> pd.Series:
        """Number of distinct people per value of an attribute, most frequent first."""
        frame = self.attribute_values(attribute, splits)
        counts = frame.groupby("value").size().sort_values(ascending=False, kind="stable")
        counts.index = pd.Index([self.label(int(v)) for v in counts.index], name=attribute)
        return counts.rename("n_people")

    def top_values(self, attribute: str, n: int, splits=("train",)) -> torch.Tensor:
        """Ids of the ``n`` most frequent values of an attribute (ties broken by id)."""
        pairs = self.attribute_pairs(attribute, splits)
        values, counts = torch.unique(pairs[:, 1], return_counts=True)
        order = sorted(range(len(values)), key=lambda i: (-int(counts[i]), int(values[i])))
        return values[order[:n]]

    def describe(self) -> dict:
        """Sizes and attribute coverage, for ``kgbias data describe`` and notebook 01."""
        summary = {
            "name": self.name,
            "n_entities": self.n_entities,
            "n_relations": self.n_relations,
            **{f"n_{s}": int(self.split(s).shape[0]) for s in SPLITS},
            "n_humans": int(self.humans.numel()),
        }
        for attribute in self.sensitive:
            pairs = self.attribute_pairs(attribute)
            summary[f"n_people_with_{attribute}"] = int(torch.unique(pairs[:, 0]).numel())
            summary[f"n_values_{attribute}"] = int(torch.unique(pairs[:, 1]).numel())
        if self.skipped:
            summary["skipped"] = dict(self.skipped)
        return summary
