"""Bad input to the whitelist code: BOMs and odd line breaks, datasets given as paths, unknown attributes."""

import pytest

from kgbias.debias.whitelists import derive_whitelist, load_whitelist, resolve_whitelist
from kgbias.errors import DataError


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
