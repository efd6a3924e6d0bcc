"""Load a user's own graph: three triple files plus a small TOML schema.

Example schema (every key is optional; without ``sensitive`` the graph trains and is evaluated,
but has no attribute to measure or debias)::

    name = "my-graph"            # default: the schema file's stem
    delimiter = "\\t"             # field separator of the triple files: one character (default tab)
    unseen = "error"             # or "skip": valid/test triples with entities not in train
    [files]                      # for load_schema_graph / ``--dataset schema.toml``; relative to the schema
    train = "train.tsv"          # (these are the defaults)
    valid = "valid.tsv"
    test = "test.tsv"
    [sensitive]
    gender = "/people/person/gender"
    profession = "/people/person/profession"
    ethnicity = { relation = "/people/ethnicity/people", inverted = true }
    [values.gender]
    male = "/m/05zppz"
    female = "/m/02zsn"

Triple files are parsed as in :mod:`kgbias.data.readers` (exactly three fields per line, none empty
or with surrounding whitespace; CRLF and a leading byte order mark accepted; blank lines counted;
ids from train); files ending in ``.gz`` are gunzipped.
``humans`` are the entities on the person side of any sensitive relation.

:func:`load_schema_graph` reads the triple files that the schema names, so a schema path is a
dataset name everywhere (``kgbias train --dataset my/schema.toml``); :func:`schema_digest` hashes
the schema and its files, which enters the run name so that edited data is another run.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..graph import ATTRIBUTES, KnowledgeGraph, SensitiveRelation
from .datasets import person_side
from .fetch import read_member
from .readers import UNSEEN_POLICIES, ParsedSplit, index_triples, parse_triples

SCHEMA_KEYS = ("name", "delimiter", "unseen", "files", "sensitive", "values")
SPLIT_NAMES = ("train", "valid", "test")
RELATION_KEYS = ("relation", "inverted")


def load_triples_tsv(
    train: str | Path, valid: str | Path, test: str | Path, schema: str | Path
) -> KnowledgeGraph:
    """Build a :class:`~kgbias.graph.KnowledgeGraph` from triple files and a TOML schema.

    Parameters
    ----------
    train, valid, test
        Paths of the triple files (plain or ``.gz``).
    schema
        Path of the TOML schema (see the module docstring).

    Raises
    ------
    DataError
        Naming the file and line for malformed triples, the train file if it has no triples,
        and the schema file and field
        (``sensitive.gender``, ``values.gender.male``) for unknown keys, a sensitive relation
        absent from the graph, or a named value that is not an entity of the graph.
    """
    schema = Path(schema)
    config = _read_schema(schema)
    delimiter = _optional_string(config, "delimiter", "\t", schema)
    if len(delimiter) != 1 or delimiter in "\r\n":
        raise DataError(f"{schema}: field 'delimiter' must be one character other than a line end, "
                        f"got {delimiter!r}")
    unseen = _optional_string(config, "unseen", "error", schema)
    if unseen not in UNSEEN_POLICIES:
        raise DataError(f"{schema}: field 'unseen' must be one of {UNSEEN_POLICIES}, got {unseen!r}")
    name = _optional_string(config, "name", schema.stem, schema)

    parsed = {}
    for split, path in (("train", train), ("valid", valid), ("test", test)):
        path = Path(path)
        data = read_member(path, None, path.name, str(path))
        parsed[split] = parse_triples(data, str(path), delimiter)
    _require_triples(parsed["train"])
    indexed = index_triples(parsed, unseen=unseen)

    sensitive = _sensitive(config.get("sensitive", {}), set(indexed.relations), schema)
    named_values = _named_values(config.get("values", {}), sensitive, set(indexed.entities), schema)
    kg = KnowledgeGraph(
        name=name,
        entities=indexed.entities,
        relations=indexed.relations,
        train=indexed.splits["train"],
        valid=indexed.splits["valid"],
        test=indexed.splits["test"],
        sensitive=sensitive,
        skipped=indexed.skipped,
        named_values=named_values,
        metadata={"sources": {split: parsed[split].source for split in parsed}, "schema": str(schema)},
    )
    kg.humans = person_side(kg, list(sensitive))
    kg.metadata["humans_rule"] = "person side of any sensitive relation"
    return kg


def _require_triples(train: ParsedSplit) -> None:
    """An empty train split has no entities to embed: refuse it here, not in training's first epoch.

    (An empty valid or test split is allowed: training warns about it.)
    """
    if not train.triples:
        what = f"{train.n_blank} blank line{'s' * (train.n_blank != 1)}" if train.n_blank else "empty file"
        raise DataError(f"{train.source}: no triples ({what}); the train split needs at least one")


def schema_files(schema: str | Path) -> dict[str, Path]:
    """The triple files a schema names in its ``[files]`` table (default ``<split>.tsv``), resolved
    against the schema's folder."""
    schema = Path(schema)
    files = _read_schema(schema).get("files", {})
    if not isinstance(files, dict):
        raise DataError(f"{schema}: field 'files' must be a table")
    _reject_unknown(files, SPLIT_NAMES, schema, prefix="files.")
    resolved = {}
    for split in SPLIT_NAMES:
        name = files.get(split, f"{split}.tsv")
        if not isinstance(name, str) or not name:
            raise DataError(f"{schema}: field 'files.{split}' must be a file name, got {name!r}")
        resolved[split] = schema.parent / name
    return resolved


def load_schema_graph(schema: str | Path) -> KnowledgeGraph:
    """:func:`load_triples_tsv` on the files that ``schema`` names (:func:`schema_files`)."""
    files = schema_files(schema)
    return load_triples_tsv(files["train"], files["valid"], files["test"], schema)


def schema_digest(schema: str | Path) -> str:
    """sha256 over the schema file and its triple files, in that order."""
    import hashlib

    digest = hashlib.sha256()
    for path in (Path(schema), *schema_files(schema).values()):
        try:
            with open(path, "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
        except OSError as error:
            raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
        digest.update(b"\0")
    return digest.hexdigest()


def _read_schema(schema: Path) -> dict:
    import tomllib  # Python >= 3.11; imported here so the rest of kgbias works on 3.10

    try:
        data = Path(schema).read_bytes()
        # a byte order mark (Windows editors write one) is an encoding marker that TOML rejects
        config = tomllib.loads(data.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    except FileNotFoundError:
        raise DataError(f"{schema}: schema file not found") from None
    except IsADirectoryError:
        raise DataError(f"{schema}: is a directory, not a schema file") from None
    except tomllib.TOMLDecodeError as error:
        raise DataError(f"{schema}: invalid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{schema}: not UTF-8 at byte {error.start}: {error.reason}") from None
    _reject_unknown(config, SCHEMA_KEYS, schema, prefix="")
    return config


def _sensitive(table, relation_names: set[str], schema: Path) -> dict[str, SensitiveRelation]:
    if not isinstance(table, dict):
        raise DataError(f"{schema}: field 'sensitive' must be a table")
    _reject_unknown(table, ATTRIBUTES, schema, prefix="sensitive.")
    sensitive = {}
    for attribute, value in table.items():
        field = f"sensitive.{attribute}"
        if isinstance(value, str):
            relation, inverted = value, False
        elif isinstance(value, dict):
            _reject_unknown(value, RELATION_KEYS, schema, prefix=f"{field}.")
            relation, inverted = value.get("relation"), value.get("inverted", False)
            if not isinstance(relation, str):
                raise DataError(f"{schema}: field '{field}.relation' must be a string")
            if not isinstance(inverted, bool):
                raise DataError(f"{schema}: field '{field}.inverted' must be true or false")
        else:
            raise DataError(
                f"{schema}: field '{field}' must be a relation name or "
                "{ relation = ..., inverted = ... }"
            )
        if relation not in relation_names:
            raise DataError(
                f"{schema}: field '{field}' names relation {relation!r}, which is not in the "
                "graph's train split"
            )
        sensitive[attribute] = SensitiveRelation(attribute, relation, inverted)
    return sensitive


def _named_values(table, sensitive: dict, entity_names: set[str], schema: Path) -> dict:
    if not isinstance(table, dict):
        raise DataError(f"{schema}: field 'values' must be a table")
    named_values = {}
    for attribute, values in table.items():
        field = f"values.{attribute}"
        if attribute not in sensitive:
            raise DataError(
                f"{schema}: field '{field}' is for an attribute with no [sensitive] relation "
                f"(known: {', '.join(sensitive) or 'none'})"
            )
        if not isinstance(values, dict):
            raise DataError(f"{schema}: field '{field}' must be a table of name = entity")
        for value_name, entity in values.items():
            if not isinstance(entity, str) or entity not in entity_names:
                raise DataError(
                    f"{schema}: field '{field}.{value_name}' names entity {entity!r}, which is "
                    "not in the graph's train split"
                )
        named_values[attribute] = dict(values)
    return named_values


def _reject_unknown(table: dict, known, schema: Path, prefix: str) -> None:
    for key in table:
        if key not in known:
            raise DataError(
                f"{schema}: unknown field '{prefix}{key}' (known: {', '.join(known)})"
            )


def _optional_string(config: dict, key: str, default: str, schema: Path) -> str:
    value = config.get(key, default)
    if not isinstance(value, str):
        raise DataError(f"{schema}: field '{key}' must be a string, got {value!r}")
    return value
