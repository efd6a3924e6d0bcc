"""``python -m bench.ab --against REV``: the training step of the package at a git revision against
the working tree's, interleaved in one process.

On a shared or virtual machine the speed drifts by tens of percent within minutes, so two bench
runs cannot resolve a change of a few percent. Here both versions train in alternating chunks of
``--steps`` steps (each version's own ``kgbias.training.train_epoch`` on the same triples, drawn
from the same seeded generator), the order swapped every pair, so a slow spell falls on both.
Printed: each version's median milliseconds per step, the median of the per-pair ratios, and the
largest difference between their chunk losses (0 when the change keeps the arithmetic). Run an
A/A first (``--against HEAD`` with a clean tree) to see the spread: on the 2-core VM, KL + Attr.
A/A ratios spanned 0.969-1.024 at 20 pairs and 0.992-0.997 at 80.

The revision's ``kgbias/`` and ``whitelists/`` are extracted with ``git archive`` into a temporary
folder and imported as a second package, which works because the package imports itself only
relatively.
"""

from __future__ import annotations

import argparse
import importlib
import io
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from .common import REPO, description, setup_torch, synchronize, use_default_mirror
from .kgbias_train import DEBIAS, Method

_ABSOLUTE_IMPORT = re.compile(r"^\s*(from|import)\s+kgbias\b", re.MULTILINE)


def extract_revision(revision: str, folder: Path) -> str:
    """``kgbias/`` and ``whitelists/`` of ``revision`` under ``folder``; returns the package's new name.

    ``revision`` may also be a folder holding ``kgbias/`` and ``whitelists/`` (an extracted copy,
    for a machine without the git history)."""
    source = Path(revision)
    if (source / "kgbias").is_dir():
        for part in ("kgbias", "whitelists"):
            shutil.copytree(source / part, Path(folder) / part)
        label = source.name
    else:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", revision, "kgbias", "whitelists"],
                                 capture_output=True, check=False)
        if archive.returncode != 0:
            raise SystemExit(f"git archive {revision}: {archive.stderr.decode().strip()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, filter="data")
        label = revision
    folder = Path(folder)
    name = "kgbias_at_" + re.sub(r"\W", "_", label)
    (folder / "kgbias").rename(folder / name)
    check_relative_imports(folder / name, revision)
    return name


def check_relative_imports(package: Path, revision: str) -> None:
    """Refuse a copy that imports ``kgbias`` by name: it would run the working tree's modules."""
    for path in sorted(package.rglob("*.py")):
        if _ABSOLUTE_IMPORT.search(path.read_text()):
            raise SystemExit(f"{revision}:kgbias/{path.relative_to(package)} imports kgbias absolutely; "
                             "this comparison needs relative imports")


class Version(Method):
    """One package's training (the bench's :class:`Method`, dot TransE) and the timings of its chunks."""

    def __init__(self, package: str, method: str, device: str = "cpu"):
        self.kg = importlib.import_module(f"{package}.data").load_dataset("fb15k-237")
        super().__init__(method, self.kg, "dot", device, package=package)
        self.ms_per_step = []

    def chunk(self, positions: torch.Tensor, n_steps: int) -> None:
        """Train on the triples at ``positions`` of this version's own train split (its loader's ids)."""
        triples = self.kg.train[positions]
        synchronize(self.device)
        started = time.perf_counter()
        loss = self.train(triples, 0)
        synchronize(self.device)
        self.ms_per_step.append((time.perf_counter() - started) / n_steps * 1000)
        self.losses.append(loss)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=description(__doc__))
    parser.add_argument("--against", default="HEAD",
                        help="git revision to compare with (default HEAD), or a folder holding its kgbias/ and whitelists/")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--method", default="none", choices=[m for m in DEBIAS if m != "bose"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--pairs", type=int, default=80, help="timed pairs of chunks (default 80)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per chunk (default 10)")
    args = parser.parse_args(argv)
    setup_torch(args.threads)
    use_default_mirror()
    with tempfile.TemporaryDirectory() as folder:  # kept until the end: the package imports lazily
        package = extract_revision(args.against, Path(folder))
        sys.path.insert(0, folder)
        versions = {args.against: Version(package, args.method, args.device),
                    "working tree": Version("kgbias", args.method, args.device)}
        n_triples = len(versions["working tree"].kg.train)
        chunk_size = args.steps * versions["working tree"].config.batch_size
        order = torch.randperm(n_triples, generator=torch.Generator().manual_seed(0))
        n_chunks = n_triples // chunk_size
        for pair in range(args.pairs + 1):  # pair 0 warms both up and is not counted
            positions = order[(pair % n_chunks) * chunk_size:(pair % n_chunks + 1) * chunk_size]
            for version in (list(versions.values()) if pair % 2 == 0 else list(versions.values())[::-1]):
                version.chunk(positions, args.steps)
    old, new = versions.values()
    ratios = [b / a for a, b in zip(old.ms_per_step[1:], new.ms_per_step[1:])]
    loss_difference = max(abs(a - b) for a, b in zip(old.losses, new.losses))
    print(f"{args.method}, {args.pairs} pairs of {args.steps} steps, {torch.get_num_threads()} threads: "
          f"{args.against} {statistics.median(old.ms_per_step[1:]):.2f} ms/step, working tree "
          f"{statistics.median(new.ms_per_step[1:]):.2f} ms/step; median ratio (working tree / {args.against}) "
          f"{statistics.median(ratios):.3f}; largest chunk-loss difference {loss_difference:.2e}")


if __name__ == "__main__":
    main()
