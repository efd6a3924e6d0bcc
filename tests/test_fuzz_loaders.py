"""Property-based fuzzing of every loader: each input loads correctly or raises kgbias's own error.

Loaders: triple text (``parse_triples``, ``index_triples``), the TOML schema and triple files of
``load_triples_tsv``, run configs (``TrainConfig.from_dict``, ``RunFolder.open`` on a garbage
``config.json``), checkpoints (``load_tensors``) and attribute-vector whitelists (``load_whitelist``).

Deterministic for CI (``derandomize=True``, no example database); every example runs under a
wall-clock guard, so a hang fails the test instead of stalling CI. Each test asserts how many
examples it tried (``pytest --hypothesis-show-statistics`` prints the counts).
"""

import io
import json
import math
import signal
import tempfile
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kgbias import TrainConfig
from kgbias.data.readers import index_triples, parse_triples
from kgbias.data.toy import toy_kg
from kgbias.data.tsv import load_triples_tsv
from kgbias.debias.whitelists import load_whitelist
from kgbias.errors import DataError, KgbiasError, RunError
from kgbias.graph import KnowledgeGraph
from kgbias.runs import RunFolder, load_tensors

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
HANG_SECONDS = 5.0


class Hang(Exception):
    pass


@contextmanager
def no_hang(seconds: float = HANG_SECONDS):
    """Fail an example that runs longer than ``seconds`` (SIGALRM interrupts Python code)."""
    def expired(signum, frame):
        raise Hang(f"loader still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def ieee_floats():
    """Denormals flushed by anything earlier in this process (train() itself restores the caller's
    setting: test_training_leaves_floating_point_state_alone) would make hypothesis refuse to run."""
    torch.set_flush_denormal(False)


def loads_or_own_error(load):
    """Run ``load()``; its result, or None if it raised a KgbiasError (any other exception escapes)."""
    with no_hang():
        try:
            return load()
        except KgbiasError:
            return None


# --- triple text ----------------------------------------------------------------------------

ALPHABET = "ab/é\t\n\r ,\x00\ufeff"
raw_triple_text = st.one_of(st.binary(max_size=200), st.text(ALPHABET, max_size=200))
name = st.text("abcxyz019_/:.é ", min_size=1, max_size=6).filter(lambda s: s.strip() == s)
triples = st.lists(st.tuples(name, name, name), max_size=15)


def test_fuzz_parse_triples_arbitrary_input():
    tried = []

    @FUZZ
    @given(raw_triple_text, st.sampled_from(["\t", ","]), st.booleans())
    def check(data, delimiter, allow_extra_fields):
        tried.append(1)
        parsed = loads_or_own_error(lambda: parse_triples(data, "f.txt", delimiter, allow_extra_fields))
        if parsed is None:
            return
        text = data.decode() if isinstance(data, bytes) else data
        n_lines = len(text.split("\n")) - (1 if text.endswith("\n") or text == "" else 0)
        assert len(parsed.triples) + parsed.n_blank == n_lines
        assert parsed.line_numbers == sorted(set(parsed.line_numbers))
        for triple in parsed.triples:
            assert len(triple) == 3 and all(triple) and not any("\n" in f or delimiter in f for f in triple)

    check()
    assert len(tried) >= 150


def test_fuzz_parse_triples_round_trip():
    tried = []

    @FUZZ
    @given(triples, st.sampled_from(["\n", "\r\n"]), st.sampled_from(["\t", ","]))
    def check(rows, newline, delimiter):
        tried.append(1)
        text = "".join(delimiter.join(row) + newline for row in rows)
        if any(delimiter in field for row in rows for field in row):
            return
        assert parse_triples(text.encode(), "f.txt", delimiter).triples == rows

    check()
    assert len(tried) >= 150


def test_fuzz_index_triples():
    tried = []
    small = st.lists(st.tuples(*[st.sampled_from("abcde")] * 3), max_size=12)

    @FUZZ
    @given(small, small, small, st.sampled_from(["error", "skip"]))
    def check(train, valid, test, unseen):
        tried.append(1)
        parsed = {split: parse_triples("".join("\t".join(t) + "\n" for t in rows), split)
                  for split, rows in (("train", train), ("valid", valid), ("test", test))}
        indexed = loads_or_own_error(lambda: index_triples(parsed, unseen))
        if indexed is None:
            assert unseen == "error"
            return
        assert len(set(indexed.entities)) == len(indexed.entities)
        for split, rows in (("train", train), ("valid", valid), ("test", test)):
            kept = [r for r in rows if {r[0], r[2]} <= set(indexed.entities) and r[1] in indexed.relations]
            back = [(indexed.entities[h], indexed.relations[r], indexed.entities[t])
                    for h, r, t in indexed.splits[split].tolist()]
            assert back == kept
            assert len(rows) - len(kept) == indexed.skipped.get(f"{split}: unseen entity or relation", 0)

    check()
    assert len(tried) >= 150


# --- TOML schema and triple files of load_triples_tsv --------------------------------------------

GRAPH = "ann\tgender\tmale\nbob\tgender\tfemale\nann\tprofession\tnurse\nbob\tprofession\tpilot\n"


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        path = Path(name)
        for split in ("train", "valid", "test"):
            (path / f"{split}.txt").write_text(GRAPH)
        yield path


def load_with_schema(folder: Path, schema: bytes, train: bytes | None = None):
    (folder / "schema.toml").write_bytes(schema)
    train_path = folder / "train.txt"
    if train is not None:
        train_path = folder / "fuzzed_train.txt"
        train_path.write_bytes(train)
    return lambda: load_triples_tsv(train_path, folder / "valid.txt", folder / "test.txt",
                                    folder / "schema.toml")


toml_key = st.sampled_from(["name", "delimiter", "unseen", "sensitive", "values", "gender", "profession",
                            "relation", "inverted", "male", "female", "nurse", "x"])
toml_scalar = st.one_of(st.sampled_from(["gender", "profession", "male", "ann", "nurse", "error", "skip",
                                         "\t", ",", "", "\n"]),
                        st.text(max_size=4), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True))
toml_value = st.recursive(toml_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(toml_key, inner, max_size=3)), max_leaves=8)


def toml_text(value) -> str:
    """Inline TOML for a value (tables as inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (int, str)):
        return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_text(v)}" for k, v in value.items()) + "}"


def test_fuzz_schema_structured(folder):
    tried, loaded = [], []

    @FUZZ
    @example({"sensitive": {"gender": "gender"}, "values": {"gender": {"male": "male"}}})
    @example({"delimiter": ""})
    @given(st.dictionaries(toml_key, toml_value, max_size=4))
    def check(schema):
        tried.append(1)
        text = "".join(f"{json.dumps(k)} = {toml_text(v)}\n" for k, v in schema.items())
        kg = loads_or_own_error(load_with_schema(folder, text.encode()))
        if kg is not None:
            loaded.append(1)
            assert isinstance(kg, KnowledgeGraph)
            assert kg.entities == ["ann", "male", "bob", "female", "nurse", "pilot"]
            assert set(kg.sensitive) <= {"gender", "profession", "nationality", "religion", "ethnicity"}

    check()
    assert len(tried) >= 150 and loaded  # some inputs are valid schemas and do load


def test_fuzz_schema_raw_bytes(folder):
    tried = []

    @FUZZ
    @example(b"\xff\xfe[sensitive]\n")
    @example(b'[sensitive]\ngender = "gender"\n[values.gender]\nmale = "male"\n')
    @given(st.one_of(st.binary(max_size=120),
                     st.text('[]="\\.\n #=abgender,sensitivevalues{}\t', max_size=120).map(str.encode)))
    def check(schema):
        tried.append(1)
        loads_or_own_error(load_with_schema(folder, schema))

    check()
    assert len(tried) >= 150


def test_fuzz_triple_files_of_a_user_graph(folder):
    tried = []

    @FUZZ
    @given(raw_triple_text.map(lambda d: d if isinstance(d, bytes) else d.encode()),
           st.sampled_from([b'delimiter = "\\t"\n', b'delimiter = ","\n', b'unseen = "skip"\n']))
    def check(train, schema):
        tried.append(1)
        loads_or_own_error(load_with_schema(folder, schema, train=train))

    check()
    assert len(tried) >= 150


# --- whitelists ------------------------------------------------------------------------------

WHITELIST_WORDS = ["gender", "nationality", "profession", "religion", "relation", "born_in", "colleague_of",
                   "profession_03", "male", "person_0001", "country_2", "nowhere", ""]


@pytest.fixture(scope="module")
def small_toy():
    return toy_kg(n_people=60, n_professions=6, seed=1)


def test_fuzz_whitelist_raw_bytes(folder, small_toy):
    tried = []

    @FUZZ
    @example(b"\xff\xfe gender\trelation\tborn_in\n")
    @example(b"gender\trelation\tborn_in # ok\n\n# comment only\n")
    @given(st.one_of(st.binary(max_size=120), st.text("gendr\t\n#relation_bo\x00é ", max_size=120).map(str.encode)))
    def check(data):
        tried.append(1)
        path = folder / "whitelist.tsv"
        path.write_bytes(data)
        loads_or_own_error(lambda: load_whitelist(path, small_toy))

    check()
    assert len(tried) >= 150


def test_fuzz_whitelist_lines(folder, small_toy):
    """Lines built from real and unknown names: a whitelist loads exactly the rows it lists, or is refused."""
    tried, loaded = [], []
    line = st.lists(st.sampled_from(WHITELIST_WORDS), min_size=1, max_size=4)

    @FUZZ
    @example([["nationality", "relation", "born_in"], ["gender", "profession", "profession_03"]], "\t")
    @given(st.lists(line, max_size=5), st.sampled_from(["\t", " ", ","]))
    def check(rows, delimiter):
        tried.append(1)
        path = folder / "whitelist.tsv"
        path.write_text("".join(delimiter.join(row) + "\n" for row in rows), encoding="utf-8")
        whitelist = loads_or_own_error(lambda: load_whitelist(path, small_toy))
        if whitelist is None:
            return
        loaded.append(1)
        listed = [row for row in rows if "".join(row).strip()]
        assert delimiter == "\t" or not listed
        for attribute, kind, name in listed:
            if kind == "relation":
                assert whitelist.relations[attribute][small_toy.relation_id(name)]
            else:
                assert whitelist.entities[attribute][small_toy.entity_id(name)]
        assert set(whitelist.attributes) == {row[0] for row in listed}

    check()
    assert len(tried) >= 150 and loaded


# --- run configs ----------------------------------------------------------------------------

FIELD_NAMES = [f.name for f in fields(TrainConfig)]
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 2000), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=5)
config_dict = st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=4)), json_value, max_size=5)


def test_fuzz_config_from_dict():
    tried = []

    @FUZZ
    @given(config_dict)
    def check(values):
        tried.append(1)
        config = loads_or_own_error(lambda: TrainConfig.from_dict(values, source="c.json"))
        if config is not None:
            assert TrainConfig.from_dict(config.to_dict()) == config

    check()
    assert len(tried) >= 150


def test_fuzz_config_from_dict_loads_only_well_typed_configs():
    loaded = []

    @FUZZ
    @example({"embedding_dim": 1.5})
    @example({"embedding_dim": 16, "seed": 3})
    @given(config_dict)
    def check(values):
        config = loads_or_own_error(lambda: TrainConfig.from_dict(values, source="c.json"))
        if config is None:
            return
        loaded.append(1)
        for name in ("embedding_dim", "n_negatives", "batch_size", "n_epochs", "seed", "valid_every"):
            value = getattr(config, name)
            assert isinstance(value, int) and not isinstance(value, bool), (name, value)
        assert isinstance(config.dataset_options, dict)
        assert math.isfinite(config.learning_rate)

    check()
    assert loaded  # the checks above ran on at least one loaded config


def open_run(folder: Path, content: bytes):
    (folder / "config.json").write_bytes(content)
    return lambda: RunFolder.open(folder, TrainConfig())


def test_fuzz_run_folder_with_garbage_json_object(folder):
    tried, accepted = [], []

    @FUZZ
    @example(json.dumps(TrainConfig().to_dict()).encode())
    @given(config_dict.map(lambda d: json.dumps(d).encode()))
    def check(content):
        tried.append(1)
        run = loads_or_own_error(open_run(folder, content))
        if run is not None:  # only the very config asked for is accepted
            accepted.append(1)
            assert TrainConfig.from_dict(json.loads(content)) == TrainConfig()

    check()
    assert len(tried) >= 150 and accepted  # the matching config itself opens


def test_fuzz_run_folder_with_garbage_bytes(folder):
    tried = []

    @FUZZ
    @example(b"null")
    @example(b"\xff")
    @given(st.one_of(st.binary(max_size=60), json_value.map(lambda v: json.dumps(v).encode())))
    def check(content):
        tried.append(1)
        loads_or_own_error(open_run(folder, content))  # a KgbiasError or a run; nothing else escapes

    check()
    assert len(tried) >= 150


# --- checkpoints ----------------------------------------------------------------------------

def checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.arange(64.0).reshape(8, 8)}, "epoch": 3,
                "history": [{"epoch": 1, "loss": 1.5}]}, buffer)
    return buffer.getvalue()


CHECKPOINT = checkpoint_bytes()


def test_fuzz_load_tensors(folder):
    tried = []
    damaged = st.one_of(
        st.binary(max_size=200),
        st.integers(0, len(CHECKPOINT) - 1).map(lambda n: CHECKPOINT[:n]),
        st.tuples(st.integers(0, len(CHECKPOINT) - 1), st.integers(1, 255)).map(
            lambda p: CHECKPOINT[:p[0]] + bytes([CHECKPOINT[p[0]] ^ p[1]]) + CHECKPOINT[p[0] + 1:]),
    )

    @FUZZ
    @given(damaged)
    def check(content):
        tried.append(1)
        (folder / "checkpoint.pt").write_bytes(content)
        loads_or_own_error(lambda: load_tensors(folder / "checkpoint.pt"))

    check()
    assert len(tried) >= 150


def test_own_errors_are_the_documented_ones():
    """The classes the fuzzers accept really are kgbias's (a plain ValueError would not pass)."""
    assert issubclass(DataError, KgbiasError) and issubclass(RunError, KgbiasError)
    assert not issubclass(ValueError, KgbiasError)
    with pytest.raises(ValueError):
        loads_or_own_error(lambda: int("x"))
