"""Shared fixtures: a tiny hand-written graph and a seeded tiny model (no downloads)."""

import importlib.util
from pathlib import Path

import pytest
import torch

from kgbias.graph import KnowledgeGraph, SensitiveRelation


def make_tiny_kg() -> KnowledgeGraph:
    """6 people, a two-valued gender relation, 3 professions, a few other facts."""
    entities = ["ann", "bob", "cat", "dan", "eve", "fred", "male", "female",
                "nurse", "doctor", "pilot", "paris", "rome"]
    relations = ["gender", "profession", "lives_in"]
    e = {name: i for i, name in enumerate(entities)}
    r = {name: i for i, name in enumerate(relations)}
    rows = [
        ("ann", "gender", "female"), ("bob", "gender", "male"), ("cat", "gender", "female"),
        ("dan", "gender", "male"), ("eve", "gender", "female"), ("fred", "gender", "male"),
        ("ann", "profession", "nurse"), ("bob", "profession", "pilot"), ("cat", "profession", "doctor"),
        ("dan", "profession", "doctor"), ("eve", "profession", "nurse"), ("fred", "profession", "pilot"),
        ("ann", "lives_in", "paris"), ("bob", "lives_in", "rome"), ("cat", "lives_in", "paris"),
    ]
    triples = torch.tensor([[e[h], r[rel], e[t]] for h, rel, t in rows])
    return KnowledgeGraph(
        name="tiny", entities=entities, relations=relations,
        train=triples[:12], valid=triples[12:13], test=triples[13:],
        humans=torch.arange(6),
        sensitive={"gender": SensitiveRelation("gender", "gender"),
                   "profession": SensitiveRelation("profession", "profession")},
        named_values={"gender": {"male": "male", "female": "female"}},
    )


@pytest.fixture
def tiny_kg() -> KnowledgeGraph:
    return make_tiny_kg()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matrices gain nothing from threads, and on a busy machine they cost many times over.
    Module scope: a module's own module-scoped fixtures (trained toy models) run on one thread too."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


@pytest.fixture
def script():
    """``script("score_offset")``: the module ``scripts/score_offset.py``, loaded from its file."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
