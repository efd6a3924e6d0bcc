"""Triple parsing, id assignment and the order-free content checksum."""

import gzip
import hashlib

import pytest

from kgbias.data.checksums import content_sha256, file_sha256, split_lines
from kgbias.data.fetch import read_member
from kgbias.data.readers import ParsedSplit, index_triples, parse_triples
from kgbias.errors import DataError


def parse_all(train, valid="", test="", unseen="error", delimiter="\t"):
    parsed = {
        name: parse_triples(text, f"{name}.txt", delimiter)
        for name, text in (("train", train), ("valid", valid), ("test", test))
    }
    return index_triples(parsed, unseen=unseen)


def test_ids_follow_first_appearance_in_train_head_relation_tail():
    indexed = parse_all("b\tr2\ta\nc\tr1\tb\na\tr2\td\n", valid="a\tr1\tc\n")
    assert indexed.entities == ["b", "a", "c", "d"]
    assert indexed.relations == ["r2", "r1"]
    assert indexed.splits["train"].tolist() == [[0, 0, 1], [2, 1, 0], [1, 0, 3]]
    assert indexed.splits["valid"].tolist() == [[1, 1, 2]]
    assert indexed.splits["test"].shape == (0, 3)


def test_wrong_column_count_names_file_and_line():
    with pytest.raises(DataError, match=r"train\.txt:2: expected 3 tab-separated fields, got 2"):
        parse_triples("a\tr\tb\na\tr\n", "train.txt")
    with pytest.raises(DataError, match=r"train\.txt:1: expected 3 .* got 4"):
        parse_triples("a\tr\tb\tx\n", "train.txt")


def test_empty_field_is_rejected():
    with pytest.raises(DataError, match=r"f\.txt:1: relation is empty"):
        parse_triples("a\t\tb\n", "f.txt")


@pytest.mark.parametrize("line, message", [
    ("a\tr\tb ", r"tail 'b ' has surrounding whitespace"),
    ("a\t r\tb", r"relation ' r' has surrounding whitespace"),
    ("\ta\tr\tb", r"head is empty"),
    (" a,r,b,extra", r"head ' a' has surrounding whitespace"),
    ("a\t \tb", r"relation is only whitespace"),
    ("\t\t", r"head is empty"),
])
def test_empty_or_padded_field_names_file_line_and_field(line, message):
    delimiter = "," if "," in line else "\t"
    with pytest.raises(DataError, match=rf"f\.txt:2: {message}"):
        parse_triples(f"a{delimiter}r{delimiter}b\n{line}\n", "f.txt", delimiter, allow_extra_fields=True)


def test_leading_byte_order_mark_is_dropped():
    assert parse_triples(b"\xef\xbb\xbfa\tr\tb\r\n", "bom.txt").triples == [("a", "r", "b")]
    assert parse_triples("\ufeffa\tr\tb\n", "bom.txt").triples == [("a", "r", "b")]


def test_comma_separated_reads_first_three_fields_when_allowed():
    parsed = parse_triples("Q1,P21,Q2,extra\n", "wd.txt", ",", allow_extra_fields=True)
    assert parsed.triples == [("Q1", "P21", "Q2")]
    with pytest.raises(DataError, match=r"wd\.txt:1: expected 3 ','-separated fields, got 2"):
        parse_triples("Q1,P21\n", "wd.txt", ",", allow_extra_fields=True)


def test_crlf_is_accepted_and_stripped():
    parsed = parse_triples(b"a\tr\tb\r\nb\tr\tc\r\n", "crlf.txt")
    assert parsed.triples == [("a", "r", "b"), ("b", "r", "c")]


def test_blank_lines_are_skipped_counted_and_keep_line_numbers():
    indexed_input = "a\tr\tb\n\n  \nb\tr\tc\n"
    parsed = parse_triples(indexed_input, "train.txt")
    assert parsed.n_blank == 2
    assert parsed.line_numbers == [1, 4]
    assert parse_triples(b" \r\na\tr\tb\r\n", "crlf.txt").n_blank == 1
    indexed = parse_all(indexed_input, valid="\na\tr\tc\n")
    assert indexed.skipped == {"train: blank lines": 2, "valid: blank lines": 1}


def test_unknown_entity_in_valid_names_file_and_line():
    with pytest.raises(DataError, match=r"valid\.txt:2: 'zz' does not occur in the train split"):
        parse_all("a\tr\tb\n", valid="a\tr\tb\nzz\tr\tb\n")


def test_unknown_relation_in_test_names_file_and_line():
    with pytest.raises(DataError, match=r"test\.txt:1: 'r9' does not occur"):
        parse_all("a\tr\tb\n", test="a\tr9\tb\n")


def test_unseen_skip_counts_and_warns(caplog):
    with caplog.at_level("WARNING"):
        indexed = parse_all("a\tr\tb\n", valid="a\tr\tb\nzz\tr\tb\n", test="a\tq\tb\n", unseen="skip")
    assert indexed.splits["valid"].tolist() == [[0, 0, 1]]
    assert indexed.splits["test"].shape == (0, 3)
    assert indexed.skipped == {"valid: unseen entity or relation": 1, "test: unseen entity or relation": 1}
    assert "valid.txt: skipped 1 of 2 triples" in caplog.text


def test_repeated_triples_are_kept_and_logged_with_their_first_line(caplog):
    with caplog.at_level("WARNING"):
        indexed = parse_all("a\tr\tb\nb\tr\tc\na\tr\tb\na\tr\tb\n", valid="c\tr\ta\n",
                            test="c\tr\ta\nb\tr\tc\na\tr\tc\n")
    assert len(indexed.splits["train"]) == 4 and len(indexed.splits["test"]) == 3  # nothing dropped
    assert "train.txt: 2 triples repeat an earlier line of the file (first at line 3); kept" in caplog.text
    assert "test.txt: 2 triples are also in an earlier split (first at line 1); kept" in caplog.text
    assert "valid.txt" not in caplog.text


def test_not_utf8_names_file():
    with pytest.raises(DataError, match=r"bad\.txt:1: not UTF-8 at byte 2"):
        parse_triples(b"a\t\xff\tb\n", "bad.txt")


def test_split_lines_handles_final_newline_and_crlf():
    assert split_lines("a\r\nb\n") == ["a", "b"]
    assert split_lines("a\nb") == ["a", "b"]
    assert split_lines("a\n\nb\n") == ["a", "", "b"]


def test_content_checksum_known_value_matches_sorted_lines():
    expected = hashlib.sha256(b"a\tr\tb\nc\tr\td\n").hexdigest()
    assert content_sha256(b"c\tr\td\r\na\tr\tb") == expected


def test_content_checksum_equal_for_reordered_gzip_and_plain_copies(tmp_path):
    lines = ["/m/01\t/people/person/gender\t/m/05zppz", "/m/02\t/r\t/m/03", "Zoë\t/r\t/m/04"]
    plain = tmp_path / "train.txt"
    plain.write_bytes(("\n".join(lines) + "\n").encode())
    reordered = tmp_path / "train.txt.gz"
    reordered.write_bytes(gzip.compress(("\r\n".join(reversed(lines)) + "\r\n").encode()))

    plain_bytes = read_member(plain, None, plain.name, str(plain))
    gz_bytes = read_member(reordered, None, reordered.name, str(reordered))
    assert file_sha256(plain_bytes) != file_sha256(gz_bytes)
    assert content_sha256(plain_bytes) == content_sha256(gz_bytes)
    # A changed or duplicated line changes it.
    assert content_sha256(plain_bytes + lines[0].encode() + b"\n") != content_sha256(plain_bytes)
    assert content_sha256(plain_bytes.replace(b"/m/04", b"/m/05")) != content_sha256(plain_bytes)


def test_index_rejects_unknown_policy():
    with pytest.raises(ValueError, match="unseen"):
        index_triples({s: ParsedSplit(s) for s in ("train", "valid", "test")}, unseen="drop")


def test_not_utf8_names_the_line():
    with pytest.raises(DataError, match=r"bad\.txt:3: not UTF-8 at byte 14"):
        parse_triples(b"a\tr\tb\nc\tr\td\ne\t\xff\tf\n", "bad.txt")
