"""Deriving a default whitelist from keywords in labels and descriptions, and reading one; bad input
to both (BOMs and odd line breaks, datasets given as paths, unknown attributes)."""

import pytest
import torch

from kgbias.debias.whitelists import (derive_whitelist, load_whitelist, resolve_whitelist, revealing_facts,
                                      write_whitelist)
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


def test_revealing_facts_on_hand_counted_gender(tiny_kg):
    # train: three women, three men; nurse: ann and eve (both women), pilot: bob and fred (both
    # men), doctor: cat and dan. Base rate 1/2 each, so nurse and pilot are at distance 1/2.
    facts = revealing_facts(tiny_kg, "gender", min_people=2)
    assert list(zip(facts["label"], facts["person_side"], facts["n_people"])) == [
        ("nurse", "head", 2), ("pilot", "head", 2), ("doctor", "head", 2)]
    assert facts["distance"].tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert facts["weight"].tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert facts["top_value"].tolist()[:2] == ["female", "male"]
    assert facts["top_share"].tolist()[:2] == pytest.approx([1.0, 1.0])
    # lives_in is in valid and test only; with them, paris (ann, cat) joins, rome (bob) has too few
    everything = revealing_facts(tiny_kg, "gender", min_people=2, splits=("train", "valid", "test"))
    assert set(everything["label"]) == {"nurse", "pilot", "doctor", "paris"}


def test_revealing_facts_with_several_values_and_people_as_tails():
    entities = ["p0", "p1", "p2", "p3", "a", "b", "c", "club", "x"]
    e = {name: i for i, name in enumerate(entities)}
    relations = ["religion", "has_member", "likes"]
    rows = [("p0", 0, "a"), ("p1", 0, "a"), ("p2", 0, "b"), ("p3", 0, "b"), ("p3", 0, "c"),
            ("club", 1, "p0"), ("club", 1, "p1"), ("club", 1, "p2"),
            ("p0", 2, "x"), ("p2", 2, "x"), ("p3", 2, "x"), ("p3", 2, "x")]
    triples = torch.tensor([[e[h], r, e[t]] for h, r, t in rows])
    kg = KnowledgeGraph(name="several", entities=entities, relations=relations, train=triples,
                        valid=triples[:0], test=triples[:0], humans=torch.arange(4),
                        sensitive={"religion": SensitiveRelation("religion", "religion")})
    facts = revealing_facts(kg, "religion", min_people=1).set_index("label")
    # (person, value) pairs: a 2, b 2, c 1 -> base (.4, .4, .2).
    # club's members p0, p1, p2: (2/3, 1/3, 0) -> distance (4/15 + 1/15 + 3/15) / 2 = 4/15.
    # x is liked by p0, p2, p3 (p3 twice, counted once): pairs a, b, b, c -> (.25, .5, .25),
    # distance (.15 + .1 + .05) / 2 = .15.
    assert facts.loc["club", "person_side"] == "tail" and facts.loc["x", "person_side"] == "head"
    assert facts.loc["club", "distance"] == pytest.approx(4 / 15)
    assert facts.loc["club", "weight"] == pytest.approx(3 * 4 / 15)
    assert (facts.loc["club", "top_value"], facts.loc["club", "top_share"]) == ("a", pytest.approx(2 / 3))
    assert facts.loc["x", "distance"] == pytest.approx(0.15)
    assert (facts.loc["x", "top_value"], facts.loc["x", "top_share"]) == ("b", pytest.approx(0.5))
    assert list(facts.index) == ["club", "x"]  # by weight: .8 before .45
    assert list(revealing_facts(kg, "religion", min_people=4)["label"]) == []
    only_values = KnowledgeGraph(name="bare", entities=entities, relations=relations, train=triples[:5],
                                 valid=triples[:0], test=triples[:0],
                                 sensitive={"religion": SensitiveRelation("religion", "religion")})
    assert revealing_facts(only_values, "religion", min_people=1).empty  # no other fact: no rows


# --- bad input ---------------------------------------------------------------------------------

def test_byte_order_mark_and_crlf_are_accepted(tiny_kg, tmp_path):
    path = tmp_path / "w.tsv"
    path.write_bytes("\ufeffgender\trelation\tlives_in\r\ngender\tprofession\tnurse\r\n".encode())
    whitelist = load_whitelist(path, tiny_kg)
    assert whitelist.attributes == ["gender"]
    assert whitelist.relations["gender"].tolist() == [False, False, True]


def test_lines_end_only_at_newline_so_errors_name_the_editors_line(tiny_kg, tmp_path):
    path = tmp_path / "w.tsv"
    # a form feed, NEL and a line separator inside lines 1 and 2: str.splitlines would make 5 lines of 3
    path.write_text("gender\trelation\tlives_in\x0c\n# a note\x85that wraps\u2028here\ngender\trelation\tnowhere\n")
    with pytest.raises(DataError, match=r"w\.tsv:3: tiny: unknown relation 'nowhere'$"):
        load_whitelist(path, tiny_kg)


def test_not_utf8_names_file_and_line(tiny_kg, tmp_path):
    path = tmp_path / "w.tsv"
    path.write_bytes(b"gender\trelation\tlives_in\ngender\trelation\t\xff\n")
    with pytest.raises(DataError, match=r"w\.tsv:2: not UTF-8 at byte 41: invalid start byte"):
        load_whitelist(path, tiny_kg)


def test_a_dataset_given_as_a_path_has_no_shipped_whitelist(tmp_path, monkeypatch):
    schema = tmp_path / "graph.toml"
    (tmp_path / "graph.toml.tsv").write_text("gender\trelation\tlives_in\n")  # not a shipped whitelist
    with pytest.raises(DataError, match=rf"no shipped whitelist 'default' for dataset '{schema}' in \S+ \(shipped: none\)"):
        resolve_whitelist("default", str(schema))
    monkeypatch.chdir(tmp_path.parent)
    relative = f"{tmp_path.name}/graph.toml"
    with pytest.raises(DataError, match=rf"no shipped whitelist 'awards' for dataset '{relative}' in \S+ \(shipped: none\)"):
        resolve_whitelist("awards", relative)


def test_a_dataset_does_not_own_the_whitelists_of_a_dataset_whose_name_extends_it():
    assert resolve_whitelist("awards", "fb15k").name == "fb15k-awards.tsv"
    assert resolve_whitelist("awards", "fb15k-237").name == "fb15k-237-awards.tsv"
    with pytest.raises(DataError, match=r"no shipped whitelist '237' for dataset 'fb15k' in \S+ "
                                        r"\(shipped: default, awards\)"):
        resolve_whitelist("237", "fb15k")  # fb15k-237.tsv is fb15k-237's default, not an fb15k whitelist


def test_derive_refuses_relations_of_an_unknown_attribute(tiny_kg):
    with pytest.raises(DataError, match=r"relations given for unknown attribute\(s\) gendr \(known: gender\)"):
        derive_whitelist(tiny_kg, keywords={"gender": ("women",)}, relations={"gendr": ("lives_in",)})


@pytest.mark.parametrize("added, message", [
    ("gendr=born_in", "--add-relation gendr=born_in: unknown attribute 'gendr' "
                      "(known: gender, religion, ethnicity, nationality)"),
    ("profession=born_in", "--add-relation profession=born_in: unknown attribute 'profession'"),
    ("religion=born_in", "toy has no sensitive relation for the attribute of religion=born_in "
                         "(its attributes: gender, nationality)"),
])
def test_derive_script_refuses_an_attribute_it_would_write_nothing_for(script, tmp_path, capsys, added, message):
    out = tmp_path / "w.tsv"
    with pytest.raises(SystemExit) as exit:
        script("derive_whitelist").main(["toy", str(out), "--add-relation", added])
    assert exit.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_derive_script_adds_a_relation_for_a_known_attribute(script, tmp_path):
    out = tmp_path / "w.tsv"
    script("derive_whitelist").main(["toy", str(out), "--add-relation", "nationality=born_in"])
    assert "nationality\trelation\tborn_in\t# born_in: relation whitelist" in out.read_text().splitlines()
