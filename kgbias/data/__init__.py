"""Data sets as :class:`~kgbias.graph.KnowledgeGraph` objects: built-in, toy, or your own TSV.

>>> from kgbias.data import load_dataset
>>> kg = load_dataset("toy", n_people=200)  # doctest: +SKIP
>>> kg = load_dataset("fb15k-237")          # mirror, cache or download; verified  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..graph import KnowledgeGraph
from .datasets import build_dataset
from .fetch import fetch_file
from .registry import DATASETS
from .toy import toy_kg, toy_options
from .tsv import load_schema_graph, load_triples_tsv

__all__ = ["fetch_dataset", "list_datasets", "load_dataset", "load_triples_tsv", "toy_kg"]

TOY = "toy"


def list_datasets() -> list[str]:
    """Names ``load_dataset`` accepts: the registered data sets, then ``"toy"``."""
    return [*DATASETS, TOY]


def load_dataset(
    name: str = "fb15k-237", progress: bool = False, allow_unverified: bool = False, **toy_kwargs
) -> KnowledgeGraph:
    """Load a data set by name.

    Parameters
    ----------
    name
        One of :func:`list_datasets`; ``"toy"`` builds :func:`~kgbias.data.toy.toy_kg`; a path
        ending in ``.toml`` loads a user's graph from that schema
        (:func:`~kgbias.data.tsv.load_schema_graph`).
    progress
        Show download progress bars (the library is otherwise silent; it logs).
    allow_unverified
        Accept files with no recorded checksum (needed for ``wikidata5m-humans``).
    **toy_kwargs
        Passed to :func:`~kgbias.data.toy.toy_kg`; only for ``"toy"``.
    """
    if name == TOY:
        return toy_kg(**toy_options(toy_kwargs))
    if name.endswith(".toml"):
        if toy_kwargs:
            raise DataError(f"keyword arguments {sorted(toy_kwargs)} apply only to the 'toy' data set")
        return load_schema_graph(name)
    spec = _spec(name)
    if toy_kwargs:
        raise DataError(f"keyword arguments {sorted(toy_kwargs)} apply only to the 'toy' data set")
    return build_dataset(spec, progress=progress, allow_unverified=allow_unverified)


def fetch_dataset(name: str, progress: bool = False, allow_unverified: bool = False) -> list[Path]:
    """Make every file of a data set available locally, verified; return their local paths.

    Files inside one tarball share its path, which is listed once.
    """
    spec = _spec(name)
    paths = [fetch_file(file, progress, allow_unverified) for file in spec.files()]
    return list(dict.fromkeys(paths))


def _spec(name: str):
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown data set {name!r}; known: {', '.join(list_datasets())}; "
            "a graph of your own is the path of its TOML schema (ending in .toml)"
        ) from None
