"""Deriving a default whitelist from keywords in labels and descriptions."""

from kgbias.debias.whitelists import derive_whitelist, load_whitelist, write_whitelist


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
