"""bench.ab: the copy of a revision's package that the interleaved A/B imports beside the working tree."""

import importlib
import sys

import pytest

import kgbias.models
from bench.ab import check_relative_imports, extract_revision
from bench.common import REPO

needs_git = pytest.mark.skipif(not (REPO / ".git").exists(), reason="a copy of the sources without git history")


@needs_git
def test_a_revision_becomes_a_second_importable_package(tmp_path):
    name = extract_revision("HEAD", tmp_path)
    assert name == "kgbias_at_HEAD"
    assert (tmp_path / "whitelists" / "toy.tsv").is_file()  # found next to the copy, as in the repository
    sys.path.insert(0, str(tmp_path))
    try:
        models = importlib.import_module(f"{name}.models")
        assert models.TransE is not kgbias.models.TransE  # its own modules, not the working tree's
        assert models.__file__.startswith(str(tmp_path))
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m.split(".")[0] == name]:
            del sys.modules[module]


def test_an_absolute_import_is_refused_naming_the_file(tmp_path):
    package = tmp_path / "copy"
    (package / "debias").mkdir(parents=True)
    (package / "models.py").write_text("from .errors import RunError\n")
    (package / "debias" / "kl.py").write_text('"""doc"""\nfrom kgbias.models import KGModel\n')
    with pytest.raises(SystemExit, match=r"abc123:kgbias/debias/kl.py imports kgbias absolutely"):
        check_relative_imports(package, "abc123")


@needs_git
def test_an_unknown_revision_is_named():
    with pytest.raises(SystemExit, match="git archive no-such-revision"):
        extract_revision("no-such-revision", None)


def test_a_folder_holding_a_copy_of_the_package_serves_as_the_revision(tmp_path):
    source = tmp_path / "old"
    (source / "kgbias").mkdir(parents=True)
    (source / "whitelists").mkdir()
    (source / "kgbias" / "__init__.py").write_text("VERSION = 'old'\n")
    (source / "whitelists" / "toy.tsv").write_text("gender\trelation\tx\n")
    copy = tmp_path / "copy"
    copy.mkdir()
    name = extract_revision(str(source), copy)
    assert name == "kgbias_at_old"
    assert (copy / name / "__init__.py").read_text() == "VERSION = 'old'\n"
    assert (copy / "whitelists" / "toy.tsv").is_file()
    (source / "kgbias" / "models.py").write_text("import kgbias.graph\n")
    with pytest.raises(SystemExit, match="imports kgbias absolutely"):
        extract_revision(str(source), tmp_path / "again")
