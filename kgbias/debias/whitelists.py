"""Default whitelists for attribute vectors, derived the way paper 2 derived Wikidata's.

Fisher et al. (2020b), §4.2: a Wikidata profession is whitelisted for an attribute when a keyword
appears in its definition (for religion: religious, religion, divine), among other rules; a few
relations are whitelisted for every person (Table 7). Here a profession is whitelisted when one
of :data:`KEYWORDS` appears, as a whole word, in its label or its description (FB15k-237's label
file has Wikidata descriptions); the relation whitelist is :data:`RELATIONS`, the paper's Table 7
Freebase examples that exist in the graph plus the Wikidata examples' Freebase counterparts.

The result is a plain file (:func:`load_whitelist` reads it) that a user is expected to read and
edit: keyword matching has false positives, as the paper's did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from .. import paths
from ..data.checksums import decode_utf8, split_lines
from ..errors import DataError
from ..graph import KnowledgeGraph
from ..runs import atomic_write

# Words whose presence in a profession's label or description makes the attribute legitimate.
KEYWORDS = {
    "gender": ("woman", "women", "female", "femininity", "masculinity", "girl", "boy", "actress",
               "queen", "king", "princess", "prince", "mother", "father", "wife", "husband", "nun", "monk"),
    "religion": ("religion", "religious", "divine", "sacred", "sermon", "sermons", "homilies", "christian",
                 "congregation", "clergy", "church", "god", "prophet", "priest", "rabbi", "imam"),
    "ethnicity": ("ethnic", "ethnicity", "indigenous", "tribal", "japanese", "manga"),
    "nationality": ("state", "government", "national", "country", "citizen", "canada", "united states"),
}

# Keyword matches removed by hand (as paper 2 removed "fewer than 5 false positives"), by label:
# seiyu is "voice actor or actress" (either gender); a patent inventor is defined by US patent law.
EXCLUDED = {"gender": ("seiyū",), "nationality": ("patent inventor",)}

# Relations for which an attribute may be used for every person (paper 2, Table 7: its Freebase
# examples and their Freebase counterparts of its Wikidata examples, spouse for gender and languages
# for ethnicity; then its Wikidata examples themselves, P26 spouse, P119 place of burial, P25
# mother, P102 member of political party). Only those the graph has are used.
RELATIONS = {
    "gender": ("/music/opera_singer/voice_type", "/people/person/spouse_s./people/marriage/spouse", "P26"),
    "religion": ("/religion/founding_figure/religion_founded", "P119"),
    "ethnicity": ("/people/person/languages", "P25"),
    "nationality": ("/people/person/place_of_birth", "/people/person/places_lived./people/place_lived/location",
                    "P102"),
}


def _matching_keyword(text: str, keywords) -> str | None:
    for keyword in keywords:
        if re.search(rf"\b{re.escape(keyword)}\b", text, flags=re.IGNORECASE):
            return keyword
    return None


def derive_whitelist(kg: KnowledgeGraph, keywords: dict = KEYWORDS, relations: dict = RELATIONS,
                     excluded: dict = EXCLUDED, target: str = "profession") -> pd.DataFrame:
    """Whitelist rows ``attribute, kind, name, label, reason`` for the attributes the graph has.

    Descriptions come from ``kg.metadata["descriptions"]`` (entity name -> text); a profession
    without one is matched on its label alone. ``relations`` for an attribute not in ``keywords``
    are a DataError; those of an attribute ``kg`` lacks, or relations it lacks, are left out.
    """
    unknown = [attribute for attribute in relations if attribute not in keywords]
    if unknown:  # its relations would silently be left out
        raise DataError(f"relations given for unknown attribute(s) {', '.join(unknown)} "
                        f"(known: {', '.join(keywords)})")
    descriptions = kg.metadata.get("descriptions", {})
    professions = torch.unique(kg.attribute_pairs(target)[:, 1]).tolist() if target in kg.sensitive else []
    rows = []
    for attribute in whitelist_attributes(kg, keywords):
        for relation in relations.get(attribute, ()):
            if relation in kg.relations:
                rows.append({"attribute": attribute, "kind": "relation", "name": relation,
                             "label": relation, "reason": "relation whitelist"})
        for profession in professions:
            name = kg.entities[profession]
            text = f"{kg.label(profession)} {descriptions.get(name, '')}"
            keyword = _matching_keyword(text, keywords[attribute])
            if keyword and kg.label(profession) not in excluded.get(attribute, ()):
                rows.append({"attribute": attribute, "kind": "profession", "name": name,
                             "label": kg.label(profession), "reason": f"keyword '{keyword}'"})
    return pd.DataFrame(rows, columns=["attribute", "kind", "name", "label", "reason"])


def whitelist_attributes(kg: KnowledgeGraph, keywords: dict = KEYWORDS) -> list[str]:
    """The attributes :func:`derive_whitelist` writes entries for: those of ``keywords`` that ``kg``
    has a sensitive relation for."""
    return [attribute for attribute in keywords if attribute in kg.sensitive]


def write_whitelist(frame: pd.DataFrame, path: str | Path, header: str = "") -> None:
    """Write rows as ``attribute<TAB>kind<TAB>name``, with the label and reason as a comment."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{row.attribute}\t{row.kind}\t{row.name}\t# {row.label}: {row.reason}"
              for row in frame.itertuples(index=False)]
    text = "\n".join(lines) + "\n"
    atomic_write(Path(path), lambda f: f.write(text.encode()))


# --- reading a whitelist file --------------------------------------------------------------
WHITELIST_KINDS = ("relation", "profession")
# Only a '#' that opens the line or follows whitespace starts a comment, so names may contain '#'.
COMMENT = re.compile(r"(?:^|\s)#.*")


@dataclass
class Whitelist:
    """Which triples may use each attribute's vectors.

    Attributes
    ----------
    attributes
        Debiased attributes named in the whitelist, in the order of ``kg.sensitive``.
    relations
        Per attribute, ``shape: (n_relations,)`` bool: type 1, relations whitelisted for everyone.
    entities
        Per attribute, ``shape: (n_entities,)`` bool: type 2, whitelisted profession entities.
    """

    attributes: list[str]
    relations: dict[str, torch.Tensor]
    entities: dict[str, torch.Tensor]


def resolve_whitelist(whitelist: str, dataset: str) -> Path:
    """The file a config's ``whitelist`` names.

    ``"default"`` is the project's shipped ``whitelists/<dataset>.tsv``; a bare name such as
    ``"awards"`` (letters, digits, ``-`` and ``_``, and no file of that name in the working
    directory) is the shipped ``whitelists/<dataset>-<name>.tsv``, so it means the same file from
    any directory; any other value is a path (relative to the working directory).
    """
    if not is_shipped_name(whitelist):
        return Path(whitelist)
    folder = paths.ROOT / "whitelists"
    shipped = _shipped_whitelists(folder, dataset)
    if whitelist not in shipped:  # a dataset given as a path (a schema.toml) has none
        raise DataError(f"no shipped whitelist {whitelist!r} for dataset {dataset!r} in {folder} (shipped: "
                        f"{', '.join(shipped) or 'none'}); write one (see kgbias.debias.whitelists) and pass its path")
    return shipped[whitelist]


def _shipped_whitelists(folder: Path, dataset: str) -> dict[str, Path]:
    """The whitelists in ``folder`` for ``dataset`` by name: ``default`` for ``<dataset>.tsv``,
    ``awards`` for ``<dataset>-awards.tsv``. Names are compared as strings, not globbed: a dataset
    may be an absolute path, or hold glob characters."""
    if not folder.is_dir():
        return {}
    from ..data.registry import DATASETS  # late: the data layer imports this module's package

    # another dataset whose name extends this one's (fb15k-237 for fb15k) owns its files
    longer = [name for name in DATASETS if name.startswith(f"{dataset}-")]
    shipped = {}
    for path in sorted(folder.iterdir(), key=lambda path: path.stem):
        if path.suffix != ".tsv" or any(path.stem == n or path.stem.startswith(f"{n}-") for n in longer):
            continue
        if path.stem == dataset:
            shipped["default"] = path
        elif path.stem.startswith(f"{dataset}-"):
            shipped[path.stem.removeprefix(f"{dataset}-")] = path
    return shipped


def is_shipped_name(whitelist: str) -> bool:
    """Whether ``whitelist`` names a shipped file (``"default"``, ``"awards"``) rather than a path."""
    return whitelist == "default" or (re.fullmatch(r"[A-Za-z0-9_-]+", whitelist) is not None
                                      and not Path(whitelist).exists())


def load_whitelist(path: str | Path, kg: KnowledgeGraph) -> Whitelist:
    """Read a whitelist file: one ``attribute<TAB>relation|profession<TAB>name`` per line.

    ``attribute<TAB>relation<TAB>r`` whitelists relation ``r`` (type 1); ``attribute<TAB>profession
    <TAB>e`` whitelists profession entity ``e`` (type 2), given by entity name or unique label.
    ``#`` starts a comment at the start of a line or after a space or tab (as
    :func:`write_whitelist` writes them); a ``#`` inside a name (``C#_dev``) is part of the name.
    Blank lines are skipped. The attribute must be a sensitive attribute of ``kg`` other than
    ``profession``. Raises :class:`DataError` naming ``file:line``, or the file if it has no entries.

    Fisher et al. (2020b), §4.2 and Tables 7-8.
    """
    path = Path(path)
    relations: dict[str, torch.Tensor] = {}
    entities: dict[str, torch.Tensor] = {}
    allowed = [a for a in kg.sensitive if a != "profession"]
    professions = None  # the profession values of the graph, read at the first profession entry
    for number, raw in enumerate(_read_lines(path), start=1):
        line = COMMENT.sub("", raw, count=1).strip()
        if not line:
            continue
        where = f"{path}:{number}"
        columns = [c.strip() for c in line.split("\t")]
        if len(columns) != 3 or not all(columns):
            raise DataError(f"{where}: expected attribute<TAB>relation|profession<TAB>name, got {raw!r}")
        attribute, kind, name = columns
        if attribute not in allowed:
            raise DataError(f"{where}: unknown attribute {attribute!r} (known: {', '.join(allowed) or 'none'})")
        if kind not in WHITELIST_KINDS:
            raise DataError(f"{where}: second column must be relation or profession, got {kind!r}")
        relations.setdefault(attribute, torch.zeros(kg.n_relations, dtype=torch.bool))
        entities.setdefault(attribute, torch.zeros(kg.n_entities, dtype=torch.bool))
        try:
            if kind == "relation":
                relations[attribute][kg.relation_id(name)] = True
            else:
                if "profession" not in kg.sensitive:
                    raise DataError(f"graph {kg.name!r} has no profession relation")
                entity = _entity_by_name_or_label(kg, name)
                if professions is None:
                    professions = set(kg.attribute_pairs("profession")[:, 1].tolist())
                if entity not in professions:  # e.g. a city: its twin triples would never occur
                    raise DataError(f"{name!r} is nobody's profession in {kg.name}")
                entities[attribute][entity] = True
        except DataError as error:
            raise DataError(f"{where}: {error}") from None
    if not relations:
        # An empty whitelist would otherwise fail much later, inside training.
        raise DataError(f"{path}: no entries")
    attributes = [a for a in allowed if a in relations]
    return Whitelist(attributes, {a: relations[a] for a in attributes}, {a: entities[a] for a in attributes})


def _read_lines(path: Path) -> list[str]:
    """The lines of a whitelist file, numbered as an editor numbers them.

    As the triple and schema loaders do, a leading byte order mark is dropped and CRLF accepted.
    Lines end only at ``\\n``: ``str.splitlines`` would also end them at a form feed, NEL or
    U+2028, and the line numbers in errors would no longer match the file.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read whitelist ({error.strerror or error})") from None
    return split_lines(decode_utf8(data, str(path)).removeprefix("\ufeff"))


def _entity_by_name_or_label(kg: KnowledgeGraph, name: str) -> int:
    try:
        return kg.entity_id(name)
    except DataError:
        return kg.entity_by_label(name)


# --- which facts reveal an attribute ------------------------------------------------------------
def revealing_facts(kg: KnowledgeGraph, attribute: str, min_people: int = 20, splits=("train",)) -> pd.DataFrame:
    """Facts about people ranked by how much of an attribute they reveal: candidates for a whitelist.

    A fact is a relation and an entity on the other side of a person, e.g. (award nominee of,
    "Academy Award for Best Actress"). For each fact held by at least ``min_people`` people with a
    known value, the values of its people are compared with those of all people with a value:
    ``distance`` is the total-variation distance between the two value distributions (a person
    with several values counts once per value) and ``weight = n_people * distance``, about how
    many of its people would have to hold another value for the fact to reveal nothing. The
    attribute's own relation is left out. Rows are sorted by ``weight``, largest first;
    ``top_value`` is the value most over-represented among the fact's people, ``top_share`` its
    share among them.

    A probe that predicts the attribute from people's embeddings (paper 2, §5) reads what such
    facts put there. Whitelisting a relation whose facts are legitimately tied to the attribute
    (award categories split by gender) lets attribute vectors carry it instead (docs/debiasing.md).
    """
    relation = kg.attribute_relation(attribute) % kg.n_relations
    triples = pd.DataFrame(torch.cat([kg.split(s) for s in splits]).numpy(), columns=["head", "relation", "tail"])
    triples = triples[triples["relation"] != relation]
    values = pd.DataFrame(kg.attribute_pairs(attribute, splits).numpy(), columns=["person", "value"])
    people = values["person"].unique()
    as_head = triples[triples["head"].isin(people)].rename(columns={"head": "person", "tail": "entity"})
    as_tail = triples[triples["tail"].isin(people)].rename(columns={"tail": "person", "head": "entity"})
    facts = pd.concat([as_head.assign(person_side="head"), as_tail.assign(person_side="tail")])
    facts = facts.drop_duplicates(["relation", "person_side", "entity", "person"])
    columns = ["relation", "person_side", "entity", "label", "n_people", "distance", "weight", "top_value",
               "top_share"]
    if facts.empty:  # people with a value but no other fact
        return pd.DataFrame(columns=columns)
    key = ["relation", "person_side", "entity"]
    n_people = facts.groupby(key).size()
    base = values["value"].value_counts(normalize=True)
    counts = facts.merge(values, on="person").groupby(key + ["value"]).size().unstack("value", fill_value=0)
    shares = counts.reindex(columns=base.index, fill_value=0)
    shares = shares.div(shares.sum(axis=1), axis=0)
    excess = shares - base
    top_value = excess.idxmax(axis=1)
    top_share = pd.Series(shares.to_numpy()[range(len(shares)), base.index.get_indexer(top_value)], index=shares.index)
    table = pd.DataFrame({"n_people": n_people, "distance": 0.5 * excess.abs().sum(axis=1),
                          "top_value": top_value, "top_share": top_share})
    table = table[table["n_people"] >= min_people].reset_index()
    table["weight"] = table["n_people"] * table["distance"]
    table["relation"] = [kg.relations[r] for r in table["relation"]]
    table["label"] = [kg.label(int(e)) for e in table["entity"]]
    table["entity"] = [kg.entities[e] for e in table["entity"]]
    table["top_value"] = [kg.label(int(v)) for v in table["top_value"]]
    return table.sort_values("weight", ascending=False, kind="stable")[columns].reset_index(drop=True)
