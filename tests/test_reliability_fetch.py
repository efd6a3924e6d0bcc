"""Downloads under faults, against a misbehaving HTTP server on 127.0.0.1 (never another address).

Dropped connections, short bodies, stalls and 5xx are retried; a bad checksum is rejected and the
file removed; archives with hostile member names never write outside the cache.
"""

import http.server
import io
import tarfile
import threading
import time
import urllib.parse

import pytest

import kgbias.data.fetch as fetch
from kgbias.data.checksums import content_sha256
from kgbias.data.registry import FileSpec
from kgbias.errors import ChecksumError, DataError

TRAIN = "a\tr\tb\nb\tr\tc\nc\ts\ta\n" * 50


@pytest.fixture(autouse=True)
def local_only(monkeypatch, tmp_path):
    """No network beyond 127.0.0.1; empty mirror and cache under tmp_path; no retry pauses."""
    original = fetch._open_url

    def guarded(url):
        if urllib.parse.urlsplit(url).hostname != "127.0.0.1":
            raise AssertionError(f"test tried to reach {url}")
        return original(url)

    monkeypatch.setattr(fetch, "_open_url", guarded)
    monkeypatch.setattr(fetch, "RETRY_DELAY_SECONDS", 0.0)
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("KGBIAS_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("KGBIAS_CACHE", str(tmp_path / "cache"))


class Server:
    """Serves ``files[path]`` bytes; each request first takes the next entry of ``faults``."""

    def __init__(self):
        self.files, self.faults, self.requests = {}, [], []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                fault = server.faults.pop(0) if server.faults else "ok"
                body = server.files.get(self.path)
                if fault == "drop":  # close the connection without any response
                    self.close_connection = True
                    return
                if fault == "stall":
                    time.sleep(1.0)
                if fault == "500" or body is None:
                    self.send_error(500 if fault == "500" else 404)
                    return
                self.send_response(200)
                if not fault.startswith("no-length"):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if fault in ("truncate", "no-length-truncate"):
                    body = body[: len(body) // 2]
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    served = Server()
    yield served
    served.close()


def all_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def cache_files(tmp_path):
    return all_files(tmp_path / "cache") if (tmp_path / "cache").exists() else []


def train_spec(server, name="train.txt"):
    server.files[f"/{name}"] = TRAIN.encode()
    return FileSpec(f"x/{name}", f"{server.base}/{name}", content_sha256(TRAIN))


@pytest.mark.parametrize("faults", [["truncate"], ["drop"], ["500"], ["drop", "truncate"]])
def test_failed_transfers_are_retried(server, tmp_path, faults):
    spec = train_spec(server)
    server.faults = list(faults)
    data, _ = fetch.read_file(spec)
    assert data.decode() == TRAIN
    assert server.requests == ["/train.txt"] * (len(faults) + 1)
    assert cache_files(tmp_path) == ["127.0.0.1_" + server.base.rsplit(":", 1)[1] + "/train.txt"]


def test_stalled_transfer_times_out_and_is_retried(server, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "TIMEOUT_SECONDS", 0.3)
    spec = train_spec(server)
    server.faults = ["stall"]
    assert fetch.read_file(spec)[0].decode() == TRAIN
    assert len(server.requests) == 2


def test_persistent_failure_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    spec = train_spec(server)
    server.faults = ["truncate"] * fetch.DOWNLOAD_ATTEMPTS
    with pytest.raises(DataError, match=r"x/train\.txt: not found locally .*train\.txt failed: "
                                        r".*IncompleteRead.*tried 3 times"):
        fetch.read_file(spec)
    assert len(server.requests) == fetch.DOWNLOAD_ATTEMPTS
    assert cache_files(tmp_path) == []


def test_client_errors_are_not_retried(server, tmp_path):
    spec = FileSpec("x/absent.txt", f"{server.base}/absent.txt", content_sha256(TRAIN))
    with pytest.raises(DataError, match="HTTP Error 404"):
        fetch.read_file(spec)
    assert server.requests == ["/absent.txt"]
    assert cache_files(tmp_path) == []


def test_truncated_body_without_length_fails_its_checksum_and_is_removed(server, tmp_path):
    spec = train_spec(server)
    server.faults = ["no-length-truncate"]
    with pytest.raises(ChecksumError, match="content sha256 mismatch.*deleted the bad file"):
        fetch.read_file(spec)
    assert cache_files(tmp_path) == []
    assert fetch.read_file(spec)[0].decode() == TRAIN  # the next try downloads it afresh


def test_checksum_mismatch_is_rejected_and_removed(server, tmp_path):
    server.files["/train.txt"] = TRAIN.replace("c\ts\ta", "c\ts\tX", 1).encode()
    spec = FileSpec("x/train.txt", f"{server.base}/train.txt", content_sha256(TRAIN))
    with pytest.raises(ChecksumError, match=r"expected [0-9a-f]{64}, got [0-9a-f]{64}"):
        fetch.read_file(spec)
    assert cache_files(tmp_path) == []
    assert len(server.requests) == 1  # a mismatch is not a transfer fault: no retry


def hostile_tar(absolute_target) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        def add(name, text=TRAIN, kind=tarfile.REGTYPE, link=""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            data = text.encode() if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

        add("graph/train.txt")
        add("../evil")
        add("graph/../../evil2")
        add(str(absolute_target))
        add("graph/link", kind=tarfile.SYMTYPE, link="/etc/passwd")
        add("graph/hard", kind=tarfile.LNKTYPE, link="graph/train.txt")
    return buffer.getvalue()


def test_hostile_archive_members_are_refused_and_nothing_is_written_outside(server, tmp_path):
    absolute = tmp_path / "outside" / "abs_evil"
    server.files["/graph.tar.gz"] = hostile_tar(absolute)
    before = all_files(tmp_path)

    def spec(member):
        return FileSpec("graph.tar.gz", f"{server.base}/graph.tar.gz", content_sha256(TRAIN), url_member=member)

    assert fetch.read_file(spec("graph/train.txt"))[0].decode() == TRAIN
    for member in ("../evil", "graph/../../evil2", str(absolute)):
        with pytest.raises(DataError, match="refusing tar member name"):
            fetch.read_file(spec(member))
    for member in ("graph/link", "graph/hard"):
        with pytest.raises(DataError, match="is not a regular file"):
            fetch.read_file(spec(member))
    added = set(all_files(tmp_path)) - set(before)
    assert all(name.startswith("cache/") for name in added) and len(added) == 1
    assert not absolute.exists()
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


@pytest.mark.parametrize("url", ["http://../x.txt", "http://./x.txt", "http://127.0.0.1:1/a/../../x.txt",
                                 "http://127.0.0.1:1/", "file:///etc/passwd"])
def test_cache_path_never_leaves_the_cache(tmp_path, url):
    spec = FileSpec("x.txt", url, content_sha256(TRAIN))
    try:
        path = fetch.cache_path(spec)
    except DataError:
        return
    assert (tmp_path / "cache") in path.resolve().parents
