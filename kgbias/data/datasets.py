"""Build a :class:`~kgbias.graph.KnowledgeGraph` for each built-in data set.

What each data set gets:

- ``sensitive``: the attributes whose relation is in the graph, from
  :data:`FREEBASE_SENSITIVE` (``/people/person/...``; ethnicity is stored value -> person, so it
  is ``inverted``) or :data:`WIKIDATA_SENSITIVE` (P21, P106, P27, P140, P172). CoDEx has no P21,
  so it has no gender.
- ``named_values["gender"]``: ``male``/``female`` -> ``/m/05zppz``/``/m/02zsn`` (Freebase) or
  ``Q6581097``/``Q6581072`` (Wikidata), when those entities are in the graph.
- ``labels`` and ``metadata["descriptions"]`` (entity name -> English label / description):
  Freebase data sets from ``entity2wikidata.json``; Wikidata data sets from CoDEx's
  ``types/en/types.json`` first, then ``entity2wikidata.json`` matched on ``wikidata_id``. The
  gender values are labelled ``male``/``female`` explicitly, because ``entity2wikidata.json``
  maps the Freebase MIDs to *male organism* / *female organism*.
- ``humans`` (the rule differs by data set, because the relations do):

  - FB15k-237, FB15k: every entity on the person side of any sensitive relation (all of them
    are ``/people/...`` relations whose subject is a person).
  - CoDEx-S/M: every entity typed ``Q5`` (human) in CoDEx's ``entity2types.json``; the person
    side rule would also take in countries (P140 state religion, P27) and organisations.
  - WD50K, Wikidata5M: the subjects of P21 (sex or gender) or P106 (occupation), for the same
    reason; there is no complete type file for them.
"""

from __future__ import annotations

import json
import logging

import torch

from ..errors import DataError
from ..graph import KnowledgeGraph, SensitiveRelation
from .checksums import decode_utf8
from .fetch import read_file
from .readers import index_triples, parse_triples
from .registry import DATASETS, FREEBASE, WIKIDATA, DatasetSpec, FileSpec

logger = logging.getLogger(__name__)

FREEBASE_SENSITIVE = (
    SensitiveRelation("gender", "/people/person/gender"),
    SensitiveRelation("profession", "/people/person/profession"),
    SensitiveRelation("nationality", "/people/person/nationality"),
    SensitiveRelation("religion", "/people/person/religion"),
    SensitiveRelation("ethnicity", "/people/ethnicity/people", inverted=True),
)
WIKIDATA_SENSITIVE = (
    SensitiveRelation("gender", "P21"),
    SensitiveRelation("profession", "P106"),
    SensitiveRelation("nationality", "P27"),
    SensitiveRelation("religion", "P140"),
    SensitiveRelation("ethnicity", "P172"),
)
SENSITIVE = {FREEBASE: FREEBASE_SENSITIVE, WIKIDATA: WIKIDATA_SENSITIVE}
GENDER_VALUES = {
    FREEBASE: {"male": "/m/05zppz", "female": "/m/02zsn"},
    WIKIDATA: {"male": "Q6581097", "female": "Q6581072"},
}
# Only people carry these two on Wikidata; P27, P140 and P172 also describe countries and groups.
WIKIDATA_HUMAN_ATTRIBUTES = ("gender", "profession")
HUMAN_TYPE = "Q5"


def build_dataset(
    spec: DatasetSpec | str, progress: bool = False, allow_unverified: bool = False
) -> KnowledgeGraph:
    """Fetch, verify and parse a registered data set.

    Parameters
    ----------
    spec
        A :class:`~kgbias.data.registry.DatasetSpec` or the name of one in ``DATASETS``.
    progress
        Show download progress bars.
    allow_unverified
        Use files with no recorded checksum (only ``wikidata5m-humans`` has any).
    """
    if isinstance(spec, str):
        spec = DATASETS[spec]

    def read(file: FileSpec) -> tuple[bytes, str]:
        return read_file(file, progress=progress, allow_unverified=allow_unverified)

    parsed = {}
    for split in ("train", "valid", "test"):
        data, source = read(getattr(spec, split))
        parsed[split] = parse_triples(data, source, spec.delimiter, spec.allow_extra_fields)
    indexed = index_triples(parsed, unseen=spec.unseen)

    relation_names = set(indexed.relations)
    entity_names = set(indexed.entities)
    sensitive = {s.attribute: s for s in SENSITIVE[spec.vocabulary] if s.relation in relation_names}
    named_values = {}
    if "gender" in sensitive:
        genders = {k: v for k, v in GENDER_VALUES[spec.vocabulary].items() if v in entity_names}
        if genders:
            named_values["gender"] = genders

    labels, descriptions = _labels_and_descriptions(spec, entity_names, read)
    kg = KnowledgeGraph(
        name=spec.name,
        entities=indexed.entities,
        relations=indexed.relations,
        train=indexed.splits["train"],
        valid=indexed.splits["valid"],
        test=indexed.splits["test"],
        labels=labels,
        sensitive=sensitive,
        skipped=indexed.skipped,
        named_values=named_values,
        metadata={
            "descriptions": descriptions,
            "sources": {split: parsed[split].source for split in parsed},
            "vocabulary": spec.vocabulary,
        },
    )
    if spec.entity_types is not None:
        entity_types = _read_json(spec.entity_types, read)
        kg.humans = typed_entities(kg, entity_types, HUMAN_TYPE)
        kg.metadata["humans_rule"] = f"entities typed {HUMAN_TYPE} in entity2types.json"
    elif spec.vocabulary == WIKIDATA:
        attributes = [a for a in WIKIDATA_HUMAN_ATTRIBUTES if a in sensitive]
        kg.humans = person_side(kg, attributes)
        kg.metadata["humans_rule"] = f"person side of {', '.join(attributes)}"
    else:
        kg.humans = person_side(kg, list(sensitive))
        kg.metadata["humans_rule"] = "person side of any sensitive relation"
    if logger.isEnabledFor(logging.INFO):
        logger.info("loaded %s: %s", spec.name, kg.describe())
    return kg


def person_side(kg: KnowledgeGraph, attributes) -> torch.Tensor:
    """Sorted unique ids of entities on the person side of the given attributes, all splits.

    Returns
    -------
    torch.Tensor
        ``shape: (n_humans,)`` int64.
    """
    people = [kg.attribute_pairs(attribute)[:, 0] for attribute in attributes]
    if not people:
        return torch.zeros(0, dtype=torch.long)
    return torch.unique(torch.cat(people))  # torch.unique sorts


def typed_entities(kg: KnowledgeGraph, entity_types: dict, type_name: str) -> torch.Tensor:
    """Sorted ids of the graph's entities whose type list contains ``type_name``."""
    ids = [i for i, name in enumerate(kg.entities) if type_name in entity_types.get(name, ())]
    return torch.tensor(ids, dtype=torch.long)


def _labels_and_descriptions(spec: DatasetSpec, entity_names: set[str], read):
    labels: dict[str, str] = {}
    descriptions: dict[str, str] = {}

    def add(name: str, record: dict) -> None:
        if record.get("label") and name not in labels:
            labels[name] = record["label"]
        if record.get("description") and name not in descriptions:
            descriptions[name] = record["description"]

    if spec.type_labels is not None:
        for qid, record in _read_json(spec.type_labels, read).items():
            if qid in entity_names:
                add(qid, record)
    if spec.labels is not None:
        for mid, record in _read_json(spec.labels, read).items():
            name = mid if spec.vocabulary == FREEBASE else record.get("wikidata_id")
            if name in entity_names:
                add(name, record)
    for value, entity in GENDER_VALUES[spec.vocabulary].items():
        if entity in entity_names:
            labels[entity] = value
            descriptions[entity] = f"{value} (sex or gender of a person)"
    return labels, descriptions


def _read_json(file: FileSpec, read) -> dict:
    data, source = read(file)
    try:
        return json.loads(decode_utf8(data, source))
    except json.JSONDecodeError as error:
        raise DataError(f"{source}:{error.lineno}: invalid JSON: {error.msg}") from None
