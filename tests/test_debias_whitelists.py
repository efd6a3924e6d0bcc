"""Deriving a default whitelist from keywords in labels and descriptions, and reading one."""

import pytest
import torch

from kgbias.debias.whitelists import derive_whitelist, load_whitelist, write_whitelist
from kgbias.errors import DataError
from kgbias.graph import KnowledgeGraph, SensitiveRelation


def test_keywords_pick_professions_and_relations_exist(tiny_kg, tmp_path):
    tiny_kg.metadata["descriptions"] = {"nurse": "person who cares for the sick; formerly mostly women",
                                        "doctor": "physician", "pilot": "person who flies aircraft"}
    frame = derive_whitelist(tiny_kg, keywords={"gender": ("women",), "religion": ("god",)},
                             relations={"gender": ("lives_in", "no_such_relation")}, excluded={})
    rows = set(map(tuple, frame[["attribute", "kind", "name"]].to_numpy()))
    # religion is not a sensitive attribute of the tiny graph, the absent relation is dropped,
    # and "women" matches only the description of nurse
    assert rows == {("gender", "relation", "lives_in"), ("gender", "profession", "nurse")}
    write_whitelist(frame, tmp_path / "w.tsv", header="made by a test")
    whitelist = load_whitelist(tmp_path / "w.tsv", tiny_kg)
    assert whitelist.attributes == ["gender"]


def test_exclusions_remove_false_positives(tiny_kg):
    tiny_kg.metadata["descriptions"] = {"nurse": "women", "doctor": "women"}
    frame = derive_whitelist(tiny_kg, keywords={"gender": ("women",)}, relations={},
                             excluded={"gender": ("doctor",)})
    assert list(frame["name"]) == ["nurse"]


def test_hash_inside_a_name_is_not_a_comment(tmp_path):
    entities = ["ann", "bob", "female", "C", "C#_dev"]
    triples = torch.tensor([[0, 0, 2], [0, 1, 3], [1, 1, 4]])
    kg = KnowledgeGraph(name="hash", entities=entities, relations=["gender", "profession"],
                        train=triples, valid=triples[:0], test=triples[:0],
                        sensitive={"gender": SensitiveRelation("gender", "gender"),
                                   "profession": SensitiveRelation("profession", "profession")})
    path = tmp_path / "w.tsv"
    path.write_text("  # indented comment\ngender\tprofession\tC#_dev\t# after a tab\n"
                    "gender\trelation\tprofession # after a space\n")
    whitelist = load_whitelist(path, kg)
    assert whitelist.entities["gender"].tolist() == [False, False, False, False, True]
    assert whitelist.relations["gender"].tolist() == [False, True]


def test_whitelist_without_entries_names_file(tiny_kg, tmp_path):
    path = tmp_path / "w.tsv"
    path.write_text("# only a comment\n\n   \n")
    with pytest.raises(DataError, match=r"w\.tsv: no entries"):
        load_whitelist(path, tiny_kg)


def test_a_profession_entry_must_be_somebodys_profession(tiny_kg, tmp_path):
    path = tmp_path / "w.tsv"
    path.write_text("gender\tprofession\tnurse\ngender\tprofession\tparis\n")
    with pytest.raises(DataError, match=r"w\.tsv:2: 'paris' is nobody's profession in tiny"):
        load_whitelist(path, tiny_kg)
