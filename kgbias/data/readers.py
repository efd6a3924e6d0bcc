"""Parse triple files and number their entities and relations.

Format: one triple per line, ``head<SEP>relation<TAB>tail``. FB15k, FB15k-237, CoDEx and user TSV
files are tab-separated with exactly three fields; WD50K is comma-separated, and only its first
three fields are read (``allow_extra_fields=True``), as its README advises. CRLF line ends are
accepted (the ``\\r`` is stripped) and a leading UTF-8 byte order mark is dropped. A line of only
whitespace, without a separator, is blank: skipped and counted. A head, relation or tail that is
empty or has leading or trailing whitespace is an error: ``"a "`` would silently be another name
than ``"a"``.

Ids: entities and relations are numbered in order of first appearance in the *train* split,
reading each line as head, relation, tail (so a line's head gets its id before its tail). This
makes ids deterministic for a given train file.

A valid/test triple whose entity or relation never occurs in train cannot be scored by an embedding
model. With ``unseen="error"``
it raises a :class:`~kgbias.errors.DataError` naming ``file:line``. With ``unseen="skip"``
such lines are left out, counted in ``KnowledgeGraph.skipped`` and reported with a logged warning;
nothing is dropped silently. The built-in data sets that need it:

- FB15k-237: 36 of its 14,541 entities occur only in valid/test, so 9 valid and 28 test lines
  are skipped (the train split has 14,505 entities).
- WD50K: 1,431 valid and 739 test lines.

FB15k and CoDEx-S/M use ``"error"``: all their valid/test entities and relations occur in train.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from ..errors import DataError
from ..graph import SPLITS
from .checksums import decode_utf8, split_lines

logger = logging.getLogger(__name__)

UNSEEN_POLICIES = ("error", "skip")
BLANK = "blank lines"
UNSEEN = "unseen entity or relation"
FIELD_NAMES = ("head", "relation", "tail")


@dataclass
class ParsedSplit:
    """Triples of one file as strings, with the line number of each and what was skipped.

    Attributes
    ----------
    source
        The file's name, as used in messages.
    triples
        ``(head, relation, tail)`` names, in file order.
    line_numbers
        1-based line number of each triple in the file.
    n_blank
        Number of blank lines skipped.
    """

    source: str
    triples: list[tuple[str, str, str]] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)
    n_blank: int = 0


@dataclass
class IndexedGraph:
    """Id maps and index tensors built from the three parsed splits."""

    entities: list[str]
    relations: list[str]
    splits: dict[str, torch.Tensor]
    skipped: dict[str, int]


def parse_triples(
    data: bytes | str, source: str, delimiter: str = "\t", allow_extra_fields: bool = False
) -> ParsedSplit:
    """Parse the lines of a triple file.

    Parameters
    ----------
    data
        The file's (decompressed) content.
    source
        The file's name, used in every error and warning (``source:line``).
    delimiter
        Field separator: ``"\\t"`` or ``","``.
    allow_extra_fields
        Read the first three fields of a line with more; otherwise more than three is an error.

    Raises
    ------
    DataError
        For a line with too few (or, unless allowed, too many) fields, or a head, relation or
        tail that is empty or has surrounding whitespace; or a ``delimiter`` that is not one
        character (or is a line end).
    """
    if len(delimiter) != 1 or delimiter in "\r\n":
        raise DataError(f"{source}: the field delimiter must be one character other than a line "
                        f"end, got {delimiter!r}")
    text = decode_utf8(data, source) if isinstance(data, bytes) else data
    lines = split_lines(text)
    # A byte order mark marks the encoding (Windows editors write one); it is not part of a name.
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    parsed = ParsedSplit(source)
    name = "tab" if delimiter == "\t" else repr(delimiter)
    for line_number, line in enumerate(lines, start=1):
        # A line with a separator has fields, so "\t\t" is three empty ones, not a blank line.
        if delimiter not in line and not line.strip():
            parsed.n_blank += 1
            continue
        fields = line.split(delimiter)
        if len(fields) < 3 or (len(fields) > 3 and not allow_extra_fields):
            raise DataError(
                f"{source}:{line_number}: expected 3 {name}-separated fields, got "
                f"{len(fields)}: {_shorten(line)!r}"
            )
        head, relation, tail = fields[:3]
        trimmed = head.strip() == head and relation.strip() == relation and tail.strip() == tail
        if not (head and relation and tail and trimmed):
            _reject_fields((head, relation, tail), line, f"{source}:{line_number}")
        parsed.triples.append((head, relation, tail))
        parsed.line_numbers.append(line_number)
    return parsed


def index_triples(parsed: dict[str, ParsedSplit], unseen: str = "error") -> IndexedGraph:
    """Number entities and relations from train and turn the three splits into id tensors.

    Parameters
    ----------
    parsed
        ``{"train": ..., "valid": ..., "test": ...}`` from :func:`parse_triples`.
    unseen
        ``"error"`` or ``"skip"``: what to do with a valid/test triple whose entity or relation
        is not in train (see the module docstring).

    Returns
    -------
    IndexedGraph
        ``splits[name]`` has ``shape: (n_triples, 3)``; ``skipped`` counts blank and skipped
        lines per split, keyed like ``"valid: blank lines"``.
    """
    if unseen not in UNSEEN_POLICIES:
        raise ValueError(f"unseen must be one of {UNSEEN_POLICIES}, got {unseen!r}")
    entity_ids: dict[str, int] = {}
    relation_ids: dict[str, int] = {}
    for head, relation, tail in parsed["train"].triples:
        entity_ids.setdefault(head, len(entity_ids))
        relation_ids.setdefault(relation, len(relation_ids))
        entity_ids.setdefault(tail, len(entity_ids))

    skipped: dict[str, int] = {}
    splits: dict[str, torch.Tensor] = {}
    earlier: set[tuple[str, str, str]] = set()  # the triples of the splits before this one
    for split in SPLITS:
        part = parsed[split]
        if part.n_blank:
            skipped[f"{split}: {BLANK}"] = part.n_blank
        earlier |= _warn_repeated(part, earlier)
        rows = []
        n_unseen = 0
        for (head, relation, tail), line_number in zip(part.triples, part.line_numbers):
            ids = (entity_ids.get(head), relation_ids.get(relation), entity_ids.get(tail))
            if None in ids:
                missing = [name for name, i in zip((head, relation, tail), ids) if i is None]
                if unseen == "error":
                    raise DataError(
                        f"{part.source}:{line_number}: {', '.join(map(repr, missing))} does not "
                        "occur in the train split (ids are assigned from train)"
                    )
                n_unseen += 1
                continue
            rows.append(ids)
        if n_unseen:
            skipped[f"{split}: {UNSEEN}"] = n_unseen
            logger.warning(
                "%s: skipped %d of %d triples whose entity or relation is not in train",
                part.source, n_unseen, len(part.triples),
            )
        splits[split] = torch.tensor(rows, dtype=torch.long).reshape(-1, 3)
    return IndexedGraph(list(entity_ids), list(relation_ids), splits, skipped)


def _reject_fields(fields: tuple[str, ...], line: str, where: str) -> None:
    """Raise for the first of head, relation, tail that is empty or has surrounding whitespace."""
    for part, value in zip(FIELD_NAMES, fields):
        if not value.strip():
            problem = "is empty" if not value else "is only whitespace"
            raise DataError(f"{where}: {part} {problem} in {_shorten(line)!r}")
        if value != value.strip():
            raise DataError(f"{where}: {part} {_shorten(value)!r} has surrounding whitespace")


def _shorten(line: str, limit: int = 120) -> str:
    return line if len(line) <= limit else line[:limit] + "..."


def _warn_repeated(part: ParsedSplit, earlier: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Log triples that ``part`` repeats, or that an earlier split holds: they are kept (a repeat
    trains twice; a test triple seen in training is an easy answer), but never silently.
    Returns ``part``'s distinct triples."""
    seen: set[tuple[str, str, str]] = set()
    repeats, in_earlier = [], []
    for triple, line_number in zip(part.triples, part.line_numbers):
        if triple in seen:
            repeats.append(line_number)
        seen.add(triple)
        if triple in earlier:
            in_earlier.append(line_number)
    if repeats:
        logger.warning("%s: %d triples repeat an earlier line of the file (first at line %d); kept",
                       part.source, len(repeats), repeats[0])
    if in_earlier:
        logger.warning("%s: %d triples are also in an earlier split (first at line %d); kept",
                       part.source, len(in_earlier), in_earlier[0])
    return seen
