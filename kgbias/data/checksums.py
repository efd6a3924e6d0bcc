"""The two checksums the registry records: one for raw bytes, one for the lines of a text file.

Triple files travel in many forms (plain, gzipped, inside a tarball, CRLF or LF, and in FB15k's
case with the training lines in a different order), so for them the registry records a checksum of
their *content*, which is the same for every such copy. JSON files are checked byte for byte.
"""

from __future__ import annotations

import hashlib

from ..errors import DataError

CONTENT = "content"
FILE = "file"
CHECKSUM_KINDS = (CONTENT, FILE)


def file_sha256(data: bytes) -> str:
    """Plain sha256 of the bytes, as ``sha256sum`` prints it."""
    return hashlib.sha256(data).hexdigest()


def split_lines(text: str) -> list[str]:
    """Lines of ``text``: split on ``\\n``, one trailing ``\\r`` removed from each line.

    A final newline ends the last line rather than starting an empty one. Blank lines elsewhere
    are kept as empty strings.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def content_sha256(data: bytes | str, source: str = "<data>") -> str:
    """Checksum of a text file's lines that ignores line order, line ends and compression.

    Definition (exactly):

    1. decode the (already decompressed) bytes as UTF-8 (strict);
    2. split into lines on ``"\\n"``; a final ``"\\n"`` ends the last line and does not start an
       empty one; remove one trailing ``"\\r"`` from every line;
    3. sort the lines by code point (the same as byte order of their UTF-8 encoding), keeping
       duplicates, so a repeated line still changes the checksum;
    4. return the hex sha256 of the UTF-8 encoding of the lines, each followed by ``"\\n"``.

    For a file that ends in a newline this equals the shell's
    ``tr -d '\\r' < FILE | LC_ALL=C sort | sha256sum``.

    Parameters
    ----------
    data
        The decompressed file content, as bytes or already decoded text.
    source
        Name of the file, used in the error for bytes that are not UTF-8.
    """
    if isinstance(data, bytes):
        data = decode_utf8(data, source)
    lines = sorted(split_lines(data))
    if not lines:
        return hashlib.sha256(b"").hexdigest()
    return hashlib.sha256(("\n".join(lines) + "\n").encode("utf-8")).hexdigest()


def decode_utf8(data: bytes, source: str) -> str:
    """Decode UTF-8 strictly; the error names the file, the line and the byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(f"{source}:{line}: not UTF-8 at byte {error.start}: {error.reason}") from None


def compute_checksum(data: bytes, kind: str, source: str = "<data>") -> str:
    """The checksum of ``data`` of the given kind (``"content"`` or ``"file"``)."""
    if kind == CONTENT:
        return content_sha256(data, source)
    if kind == FILE:
        return file_sha256(data)
    raise ValueError(f"checksum kind must be one of {CHECKSUM_KINDS}, got {kind!r}")
