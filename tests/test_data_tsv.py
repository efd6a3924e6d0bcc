"""A user's own triples plus a TOML schema."""

import gzip
from pathlib import Path

import pytest

from kgbias.data import load_triples_tsv
from kgbias.errors import DataError

TRAIN = (
    "/m/p1\t/people/person/gender\t/m/05zppz\n"
    "/m/p2\t/people/person/gender\t/m/02zsn\n"
    "/m/p1\t/people/person/profession\t/m/nurse\n"
    "/m/p2\t/people/person/profession\t/m/doctor\n"
    "/m/eth\t/people/ethnicity/people\t/m/p3\n"
    "/m/p3\t/film/actor\t/m/film\n"
)
SCHEMA = """
name = "my-graph"
[sensitive]
gender = "/people/person/gender"
profession = "/people/person/profession"
ethnicity = { relation = "/people/ethnicity/people", inverted = true }
[values.gender]
male = "/m/05zppz"
female = "/m/02zsn"
"""


def write_graph(tmp_path, schema=SCHEMA, valid="/m/p1\t/film/actor\t/m/film\n"):
    (tmp_path / "train.txt").write_text(TRAIN)
    (tmp_path / "valid.txt").write_text(valid)
    (tmp_path / "test.txt.gz").write_bytes(gzip.compress(b"/m/p2\t/film/actor\t/m/film\r\n"))
    (tmp_path / "schema.toml").write_text(schema)
    return [tmp_path / name for name in ("train.txt", "valid.txt", "test.txt.gz", "schema.toml")]


def test_loads_graph_with_schema(tmp_path):
    kg = load_triples_tsv(*write_graph(tmp_path))
    assert kg.name == "my-graph"
    assert (kg.n_entities, kg.n_relations) == (9, 4)
    assert kg.sensitive["ethnicity"].inverted
    assert kg.value_id("gender", "female") == kg.entity_id("/m/02zsn")
    assert kg.attribute_pairs("ethnicity").tolist() == [[kg.entity_id("/m/p3"), kg.entity_id("/m/eth")]]
    # Humans: the person side of every sensitive relation (p3 only through inverted ethnicity).
    assert [kg.entities[i] for i in kg.humans] == ["/m/p1", "/m/p2", "/m/p3"]
    assert kg.test.tolist() == [[kg.entity_id("/m/p2"), kg.relation_id("/film/actor"), kg.entity_id("/m/film")]]


def test_unknown_top_level_key_names_schema_and_field(tmp_path):
    paths = write_graph(tmp_path, SCHEMA.replace('name = "my-graph"', 'nmae = "x"'))
    with pytest.raises(DataError, match=r"schema\.toml: unknown field 'nmae'"):
        load_triples_tsv(*paths)


def test_unknown_attribute_names_field(tmp_path):
    paths = write_graph(tmp_path, SCHEMA.replace("[sensitive]", '[sensitive]\nage = "/people/person/age"'))
    with pytest.raises(DataError, match=r"schema\.toml: unknown field 'sensitive\.age'"):
        load_triples_tsv(*paths)


def test_unknown_key_in_relation_table(tmp_path):
    paths = write_graph(tmp_path, SCHEMA.replace("inverted = true", "inverse = true"))
    with pytest.raises(DataError, match=r"unknown field 'sensitive\.ethnicity\.inverse'"):
        load_triples_tsv(*paths)


def test_sensitive_relation_absent_from_graph(tmp_path):
    schema = SCHEMA.replace('profession = "/people/person/profession"', 'religion = "/people/person/religion"')
    with pytest.raises(DataError, match=r"schema\.toml: field 'sensitive\.religion' names relation '/people/person/religion', which is not in the graph"):
        load_triples_tsv(*write_graph(tmp_path, schema))


def test_named_value_absent_from_graph(tmp_path):
    paths = write_graph(tmp_path, SCHEMA.replace('female = "/m/02zsn"', 'female = "/m/nope"'))
    with pytest.raises(DataError, match=r"schema\.toml: field 'values\.gender\.female' names entity '/m/nope'"):
        load_triples_tsv(*paths)


def test_values_for_attribute_without_relation(tmp_path):
    paths = write_graph(tmp_path, SCHEMA + '[values.religion]\ncatholic = "/m/p1"\n')
    with pytest.raises(DataError, match=r"field 'values\.religion' is for an attribute with no \[sensitive\]"):
        load_triples_tsv(*paths)


def test_invalid_toml_and_missing_schema(tmp_path):
    paths = write_graph(tmp_path, "name = \n")
    with pytest.raises(DataError, match=r"schema\.toml: invalid TOML"):
        load_triples_tsv(*paths)
    with pytest.raises(DataError, match=r"nothere\.toml: schema file not found"):
        load_triples_tsv(*paths[:3], tmp_path / "nothere.toml")


def test_missing_triple_file(tmp_path):
    paths = write_graph(tmp_path)
    with pytest.raises(DataError, match=r"missing\.txt: file not found"):
        load_triples_tsv(paths[0], tmp_path / "missing.txt", paths[2], paths[3])


def test_bad_line_in_valid_names_file_and_line(tmp_path):
    paths = write_graph(tmp_path, valid="/m/p1\t/film/actor\t/m/film\n/m/p1\t/film/actor\n")
    with pytest.raises(DataError, match=r"valid\.txt:2: expected 3 tab-separated fields, got 2"):
        load_triples_tsv(*paths)


def test_unseen_entity_in_valid_names_file_and_line(tmp_path):
    paths = write_graph(tmp_path, valid="\n/m/new\t/film/actor\t/m/film\n")
    with pytest.raises(DataError, match=r"valid\.txt:2: '/m/new' does not occur in the train split"):
        load_triples_tsv(*paths)


def test_unseen_skip_policy_from_schema(tmp_path):
    paths = write_graph(tmp_path, 'unseen = "skip"\n' + SCHEMA, valid="\n/m/new\t/film/actor\t/m/film\n")
    kg = load_triples_tsv(*paths)
    assert kg.valid.shape == (0, 3)
    assert kg.skipped == {"valid: blank lines": 1, "valid: unseen entity or relation": 1}


def test_byte_order_mark_is_dropped_and_padded_name_names_file_line_field(tmp_path):
    paths = write_graph(tmp_path)
    paths[0].write_bytes(b"\xef\xbb\xbf" + TRAIN.encode())
    assert load_triples_tsv(*paths).entities[0] == "/m/p1"
    paths = write_graph(tmp_path, valid="/m/p1\t/film/actor\t/m/film\n/m/p1\t/film/actor \t/m/film\n")
    with pytest.raises(DataError, match=r"valid\.txt:2: relation '/film/actor ' has surrounding whitespace"):
        load_triples_tsv(*paths)


def test_schema_with_a_byte_order_mark_loads(tmp_path):
    paths = write_graph(tmp_path)
    paths[3].write_bytes(b"\xef\xbb\xbf" + SCHEMA.encode())
    assert load_triples_tsv(*paths).name == "my-graph"


def test_train_without_triples_names_the_file(tmp_path):
    paths = write_graph(tmp_path, 'name = "g"\n', valid="")
    paths[2].write_bytes(gzip.compress(b""))
    assert load_triples_tsv(*paths).valid.shape == (0, 3)  # empty valid and test splits are allowed
    paths[0].write_text("\n \r\n")
    with pytest.raises(DataError, match=r"train\.txt: no triples \(2 blank lines\); the train split needs"):
        load_triples_tsv(*paths)
    paths[0].write_text("")
    with pytest.raises(DataError, match=r"train\.txt: no triples \(empty file\)"):
        load_triples_tsv(*paths)


def test_triple_path_that_is_a_folder_or_unreadable_names_it(tmp_path, monkeypatch):
    paths = write_graph(tmp_path)
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(DataError, match=r"folder\.txt: is a directory, not a file$"):
        load_triples_tsv(paths[0], tmp_path / "folder.txt", paths[2], paths[3])

    read_bytes = Path.read_bytes

    def no_permission(path):  # chmod would not stop root, who runs the tests in some containers
        if path.name == "valid.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", no_permission)
    with pytest.raises(DataError, match=r"valid\.txt: cannot read \(Permission denied\)$"):
        load_triples_tsv(*paths)
