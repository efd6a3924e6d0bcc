"""Mirror -> cache -> download, with checksums, against a server on 127.0.0.1 only."""

import functools
import gzip
import http.server
import io
import tarfile
import threading
import urllib.parse

import pytest

import kgbias.data.fetch as fetch
from kgbias.data import fetch_dataset, load_dataset
from kgbias.data.checksums import content_sha256, file_sha256
from kgbias.data.registry import DATASETS, DatasetSpec, FileSpec
from kgbias.errors import ChecksumError, DataError

TRAIN = "a\tr\tb\nb\tr\tc\nc\ts\ta\n"
VALID = "a\ts\tc\n"
TEST = "b\tr\ta\n"


@pytest.fixture(autouse=True)
def local_only(monkeypatch, tmp_path):
    """No network beyond 127.0.0.1; empty mirror and cache under tmp_path."""
    original = fetch._open_url

    def guarded(url):
        host = urllib.parse.urlsplit(url).hostname
        if host != "127.0.0.1":
            raise AssertionError(f"test tried to reach {url}")
        return original(url)

    monkeypatch.setattr(fetch, "_open_url", guarded)
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("KGBIAS_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("KGBIAS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/served on 127.0.0.1; yields (folder, base URL, list of requested paths)."""
    root = tmp_path / "served"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


def make_tar_gz(path, members):
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def cache_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())


def test_download_tar_member_then_reuse_cache(server, tmp_path):
    root, base, requests = server
    make_tar_gz(root / "graph.tar.gz", {"graph/train.txt": TRAIN})
    spec = FileSpec("graph/graph.tar.gz", f"{base}/graph.tar.gz", content_sha256(TRAIN),
                    url_member="graph/train.txt")

    data, source = fetch.read_file(spec)
    assert data.decode() == TRAIN
    assert source.endswith("graph.tar.gz[graph/train.txt]")
    assert fetch.cache_path(spec).is_file()
    assert cache_files(tmp_path) == ["graph.tar.gz"]  # no temporary file left

    assert fetch.read_file(spec)[0].decode() == TRAIN
    assert requests == ["/graph.tar.gz"]  # the second read came from the cache


def test_download_gz_is_decompressed(server):
    root, base, _ = server
    (root / "train.txt.gz").write_bytes(gzip.compress(TRAIN.encode()))
    spec = FileSpec("x/train.txt.gz", f"{base}/train.txt.gz", content_sha256(TRAIN))
    assert fetch.read_file(spec)[0].decode() == TRAIN


def test_corrupt_download_is_rejected_and_removed(server, tmp_path):
    root, base, _ = server
    (root / "train.txt").write_text(TRAIN.replace("c\ts\ta", "c\ts\tX"))
    expected = content_sha256(TRAIN)
    spec = FileSpec("x/train.txt", f"{base}/train.txt", expected)
    with pytest.raises(ChecksumError) as error:
        fetch.read_file(spec)
    message = str(error.value)
    assert f"{base}/train.txt" in message
    assert f"expected {expected}" in message
    assert f"got {content_sha256(root.joinpath('train.txt').read_bytes())}" in message
    assert not fetch.cache_path(spec).exists()
    assert cache_files(tmp_path) == []


def test_corrupt_cache_file_is_rejected_and_deleted(tmp_path):
    spec = FileSpec("x/train.txt", "http://127.0.0.1:9/train.txt", content_sha256(TRAIN))
    path = fetch.cache_path(spec)
    path.parent.mkdir(parents=True)
    path.write_text("a\tr\tWRONG\n")
    with pytest.raises(ChecksumError, match=r"train\.txt: content sha256 mismatch: expected"):
        fetch.read_file(spec)
    assert not path.exists()


def test_mirror_is_used_first_and_never_modified(tmp_path):
    mirror_file = tmp_path / "mirror" / "x" / "train.txt"
    mirror_file.parent.mkdir()
    mirror_file.write_text(TRAIN)
    spec = FileSpec("x/train.txt", "http://127.0.0.1:9/unused", content_sha256(TRAIN))
    assert fetch.fetch_file(spec) == mirror_file

    bad = FileSpec("x/train.txt", "http://127.0.0.1:9/unused", content_sha256(VALID))
    with pytest.raises(ChecksumError, match=r"mirror/x/train\.txt: content sha256 mismatch"):
        fetch.read_file(bad)
    assert mirror_file.read_text() == TRAIN


def test_json_file_checksum_is_byte_exact(tmp_path):
    mirror_file = tmp_path / "mirror" / "labels.json"
    mirror_file.write_text('{"a": 1}\n')
    good = FileSpec("labels.json", "http://127.0.0.1:9/x", file_sha256(b'{"a": 1}\n'), "file")
    assert fetch.read_file(good)[0] == b'{"a": 1}\n'
    reordered = FileSpec("labels.json", "http://127.0.0.1:9/x", file_sha256(b'{"a": 1}'), "file")
    with pytest.raises(ChecksumError, match="file sha256 mismatch"):
        fetch.read_file(reordered)


def test_missing_file_names_mirror_path_and_url(server):
    _, base, _ = server
    spec = FileSpec("x/absent.txt", f"{base}/absent.txt", content_sha256(TRAIN))
    with pytest.raises(DataError, match=r"x/absent\.txt: not found locally .*absent\.txt failed: HTTP Error 404"):
        fetch.read_file(spec)


def test_unknown_checksum_refuses_unless_opted_in(server, caplog):
    root, base, requests = server
    (root / "train.txt").write_text(TRAIN)
    spec = FileSpec("x/train.txt", f"{base}/train.txt", None)
    with pytest.raises(DataError, match="no checksum is recorded .* allow_unverified=True"):
        fetch.read_file(spec)
    assert requests == []
    with caplog.at_level("WARNING"):
        data, _ = fetch.read_file(spec, allow_unverified=True)
    assert data.decode() == TRAIN
    assert content_sha256(TRAIN) in caplog.text


def test_wikidata5m_refuses_without_opt_in():
    with pytest.raises(DataError, match="allow_unverified"):
        fetch_dataset("wikidata5m-humans")


def test_tar_member_with_dotdot_or_absolute_path_is_refused(tmp_path):
    make_tar_gz(tmp_path / "mirror" / "evil.tar.gz", {"ok.txt": TRAIN})
    for member in ("../ok.txt", "/etc/passwd", "a/../../ok.txt"):
        spec = FileSpec("evil.tar.gz", "http://127.0.0.1:9/x", content_sha256(TRAIN), mirror_member=member)
        with pytest.raises(DataError, match="refusing tar member name"):
            fetch.read_file(spec)
    missing = FileSpec("evil.tar.gz", "http://127.0.0.1:9/x", content_sha256(TRAIN), mirror_member="no.txt")
    with pytest.raises(DataError, match="no member 'no.txt'"):
        fetch.read_file(missing)


def test_progress_bar_only_when_asked(server, capsys):
    root, base, _ = server
    (root / "a.txt").write_text(TRAIN)
    (root / "b.txt").write_text(TRAIN)
    fetch.read_file(FileSpec("x/a.txt", f"{base}/a.txt", content_sha256(TRAIN)))
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    fetch.read_file(FileSpec("x/b.txt", f"{base}/b.txt", content_sha256(TRAIN)), progress=True)
    assert "b.txt" in capsys.readouterr().err


def test_load_and_fetch_a_registered_dataset_over_http(server, monkeypatch):
    root, base, requests = server
    make_tar_gz(root / "tiny.tar.gz", {"tiny/train.txt": TRAIN, "tiny/valid.txt": VALID, "tiny/test.txt": TEST})

    def member(split, text):
        return FileSpec("tiny/tiny.tar.gz", f"{base}/tiny.tar.gz", content_sha256(text),
                        mirror_member=f"{split}.txt", url_member=f"tiny/{split}.txt")

    spec = DatasetSpec("tiny", "test data", "freebase",
                       member("train", TRAIN), member("valid", VALID), member("test", TEST))
    monkeypatch.setitem(DATASETS, "tiny", spec)

    paths = fetch_dataset("tiny")
    assert [p.name for p in paths] == ["tiny.tar.gz"]
    kg = load_dataset("tiny")
    assert kg.entities == ["a", "b", "c"] and kg.relations == ["r", "s"]
    assert kg.valid.tolist() == [[0, 1, 2]]
    assert kg.test.tolist() == [[1, 0, 0]]
    assert requests == ["/tiny.tar.gz"]


def _truncated_gz(text):
    return gzip.compress(text.encode())[:-12]


def _truncated_tar_gz(path, text):
    make_tar_gz(path, {"graph/train.txt": text})
    data = path.read_bytes()
    path.unlink()
    return data[: len(data) // 2]


@pytest.mark.parametrize("name, member, bad, message", [
    ("train.txt.gz", None, lambda tmp: _truncated_gz(TRAIN), "cannot be read as train.txt.gz: Compressed file ended"),
    ("graph.tar.gz", "graph/train.txt", lambda tmp: _truncated_tar_gz(tmp / "t.tar.gz", TRAIN),
     "cannot be read as graph.tar.gz: Compressed file ended"),
    ("train.txt", None, lambda tmp: TRAIN.encode().replace(b"c\ts", b"\xff\ts"), "train.txt:3: not UTF-8 at byte"),
])
def test_unreadable_cache_file_is_deleted_and_downloaded_again(server, tmp_path, name, member, bad, message):
    root, base, requests = server
    spec = FileSpec(f"x/{name}", f"{base}/{name}", content_sha256(TRAIN), url_member=member)
    path = fetch.cache_path(spec)
    path.parent.mkdir(parents=True)
    path.write_bytes(bad(tmp_path))
    with pytest.raises(DataError) as error:
        fetch.read_file(spec)
    assert message in str(error.value)
    assert f"deleted the bad file {path}, so the next run downloads it again" in str(error.value)
    assert not path.exists()
    assert requests == []  # the bad file was read, not downloaded over

    if member:
        make_tar_gz(root / name, {member: TRAIN})
    else:
        (root / name).write_bytes(gzip.compress(TRAIN.encode()) if name.endswith(".gz") else TRAIN.encode())
    assert fetch.read_file(spec)[0].decode() == TRAIN
    assert requests == [f"/{name}"] and path.is_file()


def test_cached_tarball_without_the_asked_member_is_kept(tmp_path):
    spec = FileSpec("x/graph.tar.gz", "http://127.0.0.1:9/graph.tar.gz", content_sha256(TRAIN),
                    url_member="graph/absent.txt")
    path = fetch.cache_path(spec)
    path.parent.mkdir(parents=True)
    make_tar_gz(path, {"graph/train.txt": TRAIN})
    with pytest.raises(DataError, match=r"graph\.tar\.gz\[graph/absent\.txt\]: no member 'graph/absent\.txt'"):
        fetch.read_file(spec)
    assert path.is_file()  # the name asked for is wrong, not the file: downloading again would not help


def test_unreadable_mirror_file_is_never_deleted(tmp_path):
    mirror_file = tmp_path / "mirror" / "x" / "train.txt.gz"
    mirror_file.parent.mkdir()
    mirror_file.write_bytes(_truncated_gz(TRAIN))
    spec = FileSpec("x/train.txt.gz", "http://127.0.0.1:9/train.txt.gz", content_sha256(TRAIN))
    with pytest.raises(DataError, match=r"mirror/x/train\.txt\.gz: cannot be read as train\.txt\.gz") as error:
        fetch.read_file(spec)
    assert "deleted" not in str(error.value)
    assert mirror_file.read_bytes() == _truncated_gz(TRAIN)


def test_cache_folder_that_cannot_be_created_names_it_and_the_variable(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("a file, not a folder\n")
    monkeypatch.setenv("KGBIAS_CACHE", str(not_a_folder))
    spec = FileSpec("x/train.txt", "http://127.0.0.1:9/train.txt", content_sha256(TRAIN))
    with pytest.raises(DataError) as error:
        fetch.read_file(spec)
    assert (f"cannot create {not_a_folder}/127.0.0.1_9 in the download cache {not_a_folder} (Not a directory); "
            "point KGBIAS_CACHE at a folder you can write to") == str(error.value)
    assert not_a_folder.read_text() == "a file, not a folder\n"
