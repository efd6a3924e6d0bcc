"""Helpers shared by the benchmark's subprocesses: timing, memory, the FB15k-237 graph, results."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

RESULT_PREFIX = "BENCH_RESULT "
REPO = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = REPO.parent / "shared" / "data"


def setup_torch(threads: int | None) -> None:
    """Same numeric setup as ``kgbias.training.train``: denormals flushed (11x first-epoch slowdown)."""
    torch.set_flush_denormal(True)
    if threads:
        torch.set_num_threads(threads)


def synchronize(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class Timer:
    """``with Timer(device) as timer: ...``; ``timer.seconds`` afterwards (device work included)."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.seconds = float("nan")

    def __enter__(self):
        synchronize(self.device)
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._started
        return False


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_device_mib(device: str) -> float | None:
    if str(device).startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return None


def use_default_mirror() -> None:
    """Read data from the shared mirror beside the repository, unless ``KGBIAS_MIRROR`` is set."""
    if "KGBIAS_MIRROR" not in os.environ and DEFAULT_MIRROR.is_dir():
        os.environ["KGBIAS_MIRROR"] = str(DEFAULT_MIRROR)


def load_fb15k237():
    """FB15k-237 through kgbias's own loader (the shared mirror unless ``KGBIAS_MIRROR`` is set)."""
    return load_graph("fb15k-237")


def load_graph(dataset: str):
    """A registered dataset (``fb15k-237``, ``fb15k``, ...) through kgbias's own loader."""
    use_default_mirror()
    from kgbias.data import load_dataset

    return load_dataset(dataset)


def description(doc: str) -> str:
    """A module docstring's first paragraph on one line, for argparse (a first line alone can stop
    mid-sentence)."""
    return " ".join(doc.split("\n\n")[0].split())


def emit(rows: list[dict]) -> None:
    """Hand results to the parent process: one JSON line on stdout, after any other output."""
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(rows), flush=True)


def log(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the result line."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def row(section: str, name: str, value: float | None, unit: str, **extra) -> dict:
    """One measurement; ``extra`` may hold ``note``, ``mrr``, ``n_triples``, ``n_entities``, ..."""
    return {"section": section, "name": name, "value": value, "unit": unit, **extra}
