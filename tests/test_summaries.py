"""Descriptive tables on the hand-written tiny graph, checked against counts done by hand."""

import pytest

from kgbias.summaries import coverage, people_per_value, top_values_by_group


def test_people_per_gender(tiny_kg):
    table = people_per_value(tiny_kg, "gender")
    assert sorted(zip(table["gender"], table["people"])) == [("female", 3), ("male", 3)]
    assert table["share"].sum() == pytest.approx(1.0)


def test_top_professions_per_gender(tiny_kg):
    table = top_values_by_group(tiny_kg, "profession", "gender", n=2)
    female = table[table["gender"] == "female"]
    # women: ann nurse, cat doctor, eve nurse -> nurse 2 (2/3), doctor 1
    assert list(female["profession"]) == ["nurse", "doctor"]
    assert list(female["people"]) == [2, 1]
    assert female["share"].iloc[0] == pytest.approx(2 / 3)
    male = table[table["gender"] == "male"]
    assert list(male["profession"]) == ["pilot", "doctor"] and list(male["rank"]) == [1, 2]


def test_coverage(tiny_kg):
    table = coverage(tiny_kg).set_index("attribute")
    assert table.loc["gender", "people"] == 6
    assert table.loc["profession", "values"] == 3
    assert table.loc["profession", "share_of_gender_people"] == pytest.approx(1.0)


def test_entity_by_label(tiny_kg):
    from kgbias.errors import DataError

    tiny_kg.labels = {"ann": "Ann Smith", "bob": "Bob", "cat": "Bob"}
    assert tiny_kg.entity_by_label("Ann Smith") == 0
    assert tiny_kg.entity_by_label("dan") == 3  # no label: the name itself
    with pytest.raises(DataError, match="2 entities labelled 'Bob'"):
        tiny_kg.entity_by_label("Bob")
    with pytest.raises(DataError, match="no entity labelled 'Zed'"):
        tiny_kg.entity_by_label("Zed")
