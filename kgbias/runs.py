"""Run folders: config, checkpoints, per-epoch history and final metrics, all written atomically.

A run folder holds:

- ``config.json``: the :class:`~kgbias.config.TrainConfig` (a folder never changes config)
- ``checkpoint.pt``: latest state (model, optimizer, scheduler, random generator, history),
  written at the end of each epoch; ``checkpoint.prev.pt`` is the one before it
- ``best.pt``: model weights of the epoch with the best validation MRR
- ``history.csv``: loss, seconds and validation MRR per epoch
- ``metrics.json``: written last; its presence marks the run finished

Checkpoints hold tensors and plain Python values only and are read with
``torch.load(weights_only=True)``, so a crafted file cannot run code when loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import torch

from .config import TrainConfig
from .errors import RunError

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"
BEST = "best.pt"
HISTORY = "history.csv"
METRICS = "metrics.json"
LOCK = ".lock"

logger = logging.getLogger(__name__)


def atomic_write(path: Path, write) -> None:
    """Write through ``write(file)`` to a temporary file beside ``path``, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, value) -> None:
    atomic_write(Path(path), lambda f: f.write((json.dumps(value, indent=2, sort_keys=True) + "\n").encode()))


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise RunError(f"{path}: not valid JSON ({error})") from None


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(Path(path), lambda f: f.write(frame.to_csv(index=False).encode()))


def save_tensors(path: Path, state: dict) -> None:
    atomic_write(Path(path), lambda f: torch.save(state, f))


def load_tensors(path: Path) -> dict:
    """Load a checkpoint without executing code; a damaged file is a RunError naming it."""
    try:
        with zipfile.ZipFile(path) as archive:  # torch.load does not check the CRCs it wrote
            damaged = archive.testzip()
        if damaged is not None:
            raise RunError(f"{path}: unreadable checkpoint (CRC mismatch in {damaged})")
        return torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, RunError):
        raise
    except Exception as error:  # torch raises many types for truncated or crafted files
        raise RunError(f"{path}: unreadable checkpoint ({type(error).__name__}: {error})") from None


def _checkpoint_dict(path: Path) -> dict:
    state = load_tensors(path)
    if not isinstance(state, dict):
        raise RunError(f"{path}: not a kgbias checkpoint (holds a {type(state).__name__}, not a dict)")
    return state


class RunFolder:
    """One training run on disk."""

    def __init__(self, path: Path, config: TrainConfig):
        self.path = Path(path)
        self.config = config

    @classmethod
    def open(cls, path: Path, config: TrainConfig) -> "RunFolder":
        """Create the folder, or check that an existing one holds the same config."""
        folder = cls(path, config)
        config_path = folder.path / CONFIG
        if config_path.exists():
            stored = TrainConfig.from_dict(read_json(config_path), source=str(config_path))
            differences = stored.differences(config)
            if differences:
                listed = "; ".join(f"{k}: stored {a!r}, asked {b!r}" for k, (a, b) in differences.items())
                raise RunError(
                    f"{folder.path} holds a run with a different config ({listed}); "
                    "choose another run folder or delete this one"
                )
        else:
            write_json(config_path, config.to_dict())
        return folder

    @contextlib.contextmanager
    def lock(self):
        """Hold an exclusive lock on the folder: a second writer waits until the first is done.

        ``flock`` locks are released by the kernel when a process dies, so a killed run never
        leaves a stale lock behind.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOCK, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("waiting for another process training in %s", self.path)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @property
    def finished(self) -> bool:
        return (self.path / METRICS).exists()

    def save_checkpoint(self, state: dict) -> None:
        current = self.path / CHECKPOINT
        if current.exists():
            os.replace(current, self.path / PREVIOUS_CHECKPOINT)
        save_tensors(current, state)

    def load_checkpoint(self) -> dict | None:
        """Latest readable checkpoint, falling back to the previous one if the latest is damaged."""
        current, previous = self.path / CHECKPOINT, self.path / PREVIOUS_CHECKPOINT
        if not current.exists():
            return _checkpoint_dict(previous) if previous.exists() else None
        try:
            return _checkpoint_dict(current)
        except RunError as error:
            if not previous.exists():
                raise
            logger.warning("%s; falling back to %s", error, previous)
            try:
                return _checkpoint_dict(previous)
            except RunError as previous_error:
                raise RunError(f"{error}; and the fallback {previous_error}") from None

    def save_best(self, model_state: dict, epoch: int, valid_mrr: float) -> None:
        save_tensors(self.path / BEST, {"model": model_state, "epoch": epoch, "valid_mrr": valid_mrr})

    def load_best(self) -> dict | None:
        path = self.path / BEST
        return load_tensors(path) if path.exists() else None

    def write_history(self, history: list[dict]) -> None:
        write_csv(self.path / HISTORY, pd.DataFrame(history))

    def history(self) -> pd.DataFrame:
        return pd.read_csv(self.path / HISTORY)

    def write_metrics(self, metrics: dict) -> None:
        write_json(self.path / METRICS, metrics)

    def metrics(self) -> dict:
        return read_json(self.path / METRICS)
