"""Default whitelists for attribute vectors, derived the way paper 2 derived Wikidata's.

Fisher et al. (2020b), §4.2: a Wikidata profession is whitelisted for an attribute when a keyword
appears in its definition (for religion: religious, religion, divine), among other rules; a few
relations are whitelisted for every person (Table 7). Here a profession is whitelisted when one
of :data:`KEYWORDS` appears, as a whole word, in its label or its description (FB15k-237's label
file has Wikidata descriptions); the relation whitelist is :data:`RELATIONS`, the paper's Table 7
Freebase examples that exist in the graph plus the Wikidata examples' Freebase counterparts.

The result is a plain file (``kgbias.debias.attributes.load_whitelist`` reads it) that a user is
expected to read and edit: keyword matching has false positives, as the paper's did.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import torch

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
    without one is matched on its label alone.
    """
    descriptions = kg.metadata.get("descriptions", {})
    professions = torch.unique(kg.attribute_pairs(target)[:, 1]).tolist() if target in kg.sensitive else []
    rows = []
    for attribute in keywords:
        if attribute not in kg.sensitive:
            continue
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


def write_whitelist(frame: pd.DataFrame, path: str | Path, header: str = "") -> None:
    """Write rows as ``attribute<TAB>kind<TAB>name``, with the label and reason as a comment."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{row.attribute}\t{row.kind}\t{row.name}\t# {row.label}: {row.reason}"
              for row in frame.itertuples(index=False)]
    text = "\n".join(lines) + "\n"
    atomic_write(Path(path), lambda f: f.write(text.encode()))
