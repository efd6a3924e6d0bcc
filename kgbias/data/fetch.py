"""Find a data file locally or download it, and verify it every time it is read.

Lookup order for a :class:`~kgbias.data.registry.FileSpec`:

1. the mirror, ``$KGBIAS_MIRROR/<mirror_path>`` (read-only; never modified);
2. the cache, ``$KGBIAS_CACHE/<host>/<url path>`` (default ``~/.cache/kgbias``);
3. a download of ``url`` with :mod:`urllib` to a temporary file in the cache directory, which is
   verified and then renamed into place (so the cache never holds a partial or bad file). A failed
   transfer (connection refused or dropped, timeout, body shorter than its ``Content-Length``,
   HTTP 5xx) is retried, up to :data:`DOWNLOAD_ATTEMPTS` tries in all; HTTP 4xx is not retried.

The checksum is checked in all three cases. A mismatch raises :class:`~kgbias.errors.ChecksumError`
naming the file, the expected and the actual value. A cached or downloaded file that fails its
checksum or cannot be read (truncated gzip or tarball, not UTF-8) is deleted, so the next run
downloads it again; a mirror's files never are.
Members of tarballs are read by name with ``tarfile.extractfile``; nothing is ever unpacked.
The library logs through :mod:`logging` and shows a tqdm bar only with ``progress=True``.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import os
import posixpath
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from ..errors import ChecksumError, DataError
from ..paths import cache_dir, mirror_dir, temporary_beside
from .checksums import compute_checksum
from .registry import FileSpec

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60
DOWNLOAD_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 2.0  # times the attempt number


class _DamagedFile(DataError):
    """Bytes that cannot be decompressed or decoded: a truncated or garbled copy, which deleting a
    cached file repairs (unlike a missing tar member, a refused member name or a permission)."""


def fetch_file(spec: FileSpec, progress: bool = False, allow_unverified: bool = False) -> Path:
    """Local path of the file (mirror, cache or fresh download), after verifying it.

    For a file inside a tarball this is the path of the tarball.
    """
    path, _, _ = _resolve(spec, progress, allow_unverified)
    return path


def read_file(
    spec: FileSpec, progress: bool = False, allow_unverified: bool = False
) -> tuple[bytes, str]:
    """Verified, decompressed content of a file, and a name for it to use in messages.

    Parameters
    ----------
    spec
        Which file, where to find it and its checksum.
    progress
        Show a tqdm progress bar while downloading.
    allow_unverified
        Accept a file whose checksum is not recorded (``spec.checksum is None``); its actual
        checksum is logged so it can be recorded.

    Returns
    -------
    data, source
        The bytes (gunzipped, or the tar member's bytes) and e.g. ``".../FB15k-237.tar.gz[train.txt]"``.
    """
    _, data, source = _resolve(spec, progress, allow_unverified)
    return data, source


def cache_path(spec: FileSpec) -> Path:
    """Where a download of ``spec.url`` is kept: ``<cache>/<host>/<path of the URL>``."""
    parsed = urllib.parse.urlsplit(spec.url)
    parts = [part for part in posixpath.normpath(parsed.path).split("/") if part]
    host = parsed.netloc.replace(":", "_")
    if not host or host in (".", "..") or not parts or any(part in (".", "..") for part in parts):
        raise DataError(f"cannot derive a cache file name from URL {spec.url!r}")
    return cache_dir().joinpath(host, *parts)


def _resolve(spec: FileSpec, progress: bool, allow_unverified: bool) -> tuple[Path, bytes, str]:
    if spec.checksum is None and not allow_unverified:
        raise DataError(
            f"{spec.mirror_path}: no checksum is recorded for this file ({spec.url}), so it "
            "cannot be verified; pass allow_unverified=True to use it anyway (on the command line: "
            "--dataset-options allow_unverified=true; its checksum is then logged so it can be recorded "
            "in kgbias/data/registry.py)"
        )
    mirror = mirror_dir()
    if mirror is not None:
        path = mirror / spec.mirror_path
        if path.is_file():
            data, source = _read_verified(path, spec.mirror_member, spec, allow_unverified, path.name)
            return path, data, source
        logger.debug("%s not in mirror %s", spec.mirror_path, mirror)

    path = cache_path(spec)
    if path.is_file():
        data, source = _read_verified(
            path, spec.url_member, spec, allow_unverified, path.name, delete_if_bad=True
        )
        return path, data, source

    data, source = _download(spec, path, progress, allow_unverified, mirror)
    return path, data, source


def _download(
    spec: FileSpec, path: Path, progress: bool, allow_unverified: bool, mirror: Path | None
) -> tuple[bytes, str]:
    """Download to a temporary file beside ``path``, verify it, then rename it into place."""
    temp_path = _temporary_in_cache(path)
    try:
        _copy_url_with_retries(spec.url, temp_path, progress)
        # Verify before the rename so a bad download never occupies the cache path.
        data, source = _read_verified(
            temp_path, spec.url_member, spec, allow_unverified, path.name,
            delete_if_bad=True, origin=spec.url,
        )
        os.replace(temp_path, path)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        where = f"mirror {mirror / spec.mirror_path}" if mirror is not None else "no mirror set"
        raise DataError(
            f"{spec.mirror_path}: not found locally ({where}; cache {path}) and the download of "
            f"{spec.url} failed: {error}"
        ) from error
    finally:
        temp_path.unlink(missing_ok=True)
    logger.info("downloaded %s to %s", spec.url, path)
    return data, source


def _temporary_in_cache(path: Path) -> Path:
    """An empty temporary file beside ``path``, creating the cache folders it needs."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = temporary_beside(path)
    except OSError as error:
        # e.g. KGBIAS_CACHE names a regular file, or a folder this user cannot write to
        raise DataError(
            f"cannot create {error.filename or path.parent} in the download cache {cache_dir()} "
            f"({error.strerror or error}); point KGBIAS_CACHE at a folder you can write to"
        ) from None
    os.close(handle)
    return Path(temp_name)


def _open_url(url: str):
    """Open a URL for reading (one place, so tests can confine it to 127.0.0.1)."""
    return urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS)


def _copy_url_with_retries(url: str, temp_path: Path, progress: bool) -> None:
    """Download ``url`` into ``temp_path`` (overwritten by each try), retrying failed transfers."""
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            with open(temp_path, "wb") as output:
                _copy_url(url, output, progress)
            return
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == DOWNLOAD_ATTEMPTS:
                raise _tried(error, attempt)
            failure = error
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise _tried(error, attempt)
            failure = error
        logger.warning("download of %s failed (try %d of %d): %s; retrying",
                       url, attempt, DOWNLOAD_ATTEMPTS, failure)
        time.sleep(RETRY_DELAY_SECONDS * attempt)


def _tried(error: Exception, attempts: int) -> Exception:
    """``error`` itself after one try; after several, an OSError saying how many."""
    if attempts == 1:
        return error
    return OSError(f"{error!r} (tried {attempts} times)")


def _copy_url(url: str, output, progress: bool) -> None:
    logger.info("downloading %s", url)
    with _open_url(url) as response:
        total = response.headers.get("Content-Length")
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(total) if total else None, unit="B", unit_scale=True, desc=url)
        received = 0
        try:
            while chunk := response.read(CHUNK_BYTES):
                output.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        # http.client returns a short body without complaint when the connection drops early.
        if total is not None and total.isdigit() and received != int(total):
            raise http.client.IncompleteRead(b"", int(total) - received)


def _read_verified(
    path: Path,
    member: str | None,
    spec: FileSpec,
    allow_unverified: bool,
    format_name: str,
    delete_if_bad: bool = False,
    origin: str | None = None,
) -> tuple[bytes, str]:
    """Read ``path`` (or its tar ``member``), check the checksum, return data and source name.

    ``format_name`` decides gunzipping (a temporary download has no meaningful suffix);
    ``origin`` names the file in messages instead of ``path`` (the URL of a download).
    ``delete_if_bad`` deletes a file that cannot be read, decoded or verified: only for files
    kgbias downloaded itself (cache or temporary download), never a mirror's.
    """
    source = f"{origin or path}[{member}]" if member else str(origin or path)
    try:
        data = read_member(path, member, format_name, source)
        actual = _checksum(data, spec.checksum_kind, source)
    except _DamagedFile as error:
        if not delete_if_bad:
            raise
        # A truncated or garbled cached file would otherwise fail the same way on every run.
        raise _DamagedFile(f"{error}{_delete_bad(path, cached=origin is None)}") from None
    if spec.checksum is None:
        if not allow_unverified:
            raise DataError(f"{source}: no checksum recorded; pass allow_unverified=True")
        logger.warning(
            "%s: no checksum recorded; using it unverified (its %s sha256 is %s)",
            source, spec.checksum_kind, actual,
        )
    elif actual != spec.checksum:
        note = _delete_bad(path, cached=origin is None) if delete_if_bad else ""
        raise ChecksumError(
            f"{source}: {spec.checksum_kind} sha256 mismatch: expected {spec.checksum}, "
            f"got {actual}{note}"
        )
    return data, source


def _checksum(data: bytes, kind: str, source: str) -> str:
    try:
        return compute_checksum(data, kind, source)
    except DataError as error:  # a content checksum decodes the bytes: these are not UTF-8
        raise _DamagedFile(str(error)) from None


def _delete_bad(path: Path, cached: bool) -> str:
    """Delete a bad file of kgbias's own (``cached``, or a temporary download); the note for the
    error message."""
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        return f"; could not delete the bad file {path} ({error.strerror or error}): delete it by hand"
    return f"; deleted the bad file {path}" + (", so the next run downloads it again" if cached else "")


def read_member(path: Path, member: str | None, format_name: str, source: str) -> bytes:
    """Bytes of a plain file, a gzipped file (name ends in ``.gz``) or a named tar member."""
    try:
        if member is not None:
            return _read_tar_member(path, member, source)
        if format_name.endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{source}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{source}: is a directory, not a file") from None
    # before OSError: BadGzipFile is one
    except (gzip.BadGzipFile, zlib.error, EOFError, tarfile.TarError) as error:
        raise _DamagedFile(f"{source}: cannot be read as {format_name}: {error}") from None
    except OSError as error:  # no permission, an I/O error
        raise DataError(f"{source}: cannot read ({error.strerror or error})") from None


def _read_tar_member(path: Path, member: str, source: str) -> bytes:
    if member.startswith("/") or ".." in member.split("/"):
        raise DataError(f"{source}: refusing tar member name {member!r} (absolute or with '..')")
    with tarfile.open(path, "r:*") as archive:
        try:
            info = archive.getmember(member)
        except KeyError:
            raise DataError(f"{source}: no member {member!r} in {path}") from None
        if not info.isfile():
            raise DataError(f"{source}: tar member {member!r} is not a regular file")
        stream = archive.extractfile(info)
        return stream.read()
