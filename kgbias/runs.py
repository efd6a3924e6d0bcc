"""Run folders: config, checkpoints, per-epoch history and final metrics, all written atomically.

A run folder holds:

- ``config.json``: the :class:`~kgbias.config.TrainConfig` (a folder never changes config)
- ``checkpoint.pt``: latest state (model, optimizer, scheduler, random generator, history),
  written at the end of each epoch; ``checkpoint.prev.pt`` is the one before it
- ``best.pt``: model weights of the epoch with the best validation MRR
- ``history.csv``: loss, seconds and validation MRR per epoch
- ``metrics.json``: written last; its presence marks the run finished

``checkpoint.pt`` and ``best.pt`` also hold the config's fingerprint
(:meth:`~kgbias.config.TrainConfig.fingerprint`) and the graph's
(:meth:`~kgbias.graph.KnowledgeGraph.fingerprint`), so files copied from another run, or a run
trained on another graph (``train(config, kg=...)`` with a graph the config does not name), are
refused; files from before either fingerprint was stored are accepted.

Checkpoints hold tensors and plain Python values only and are read with
``torch.load(weights_only=True)``, so a crafted file cannot run code when loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import zipfile
from pathlib import Path

import pandas as pd
import torch

from .config import TrainConfig
from .errors import RunError
from .paths import temporary_beside

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"
BEST = "best.pt"
HISTORY = "history.csv"
METRICS = "metrics.json"
LOCK = ".lock"
FINGERPRINT = "config_fingerprint"  # key in checkpoint.pt and best.pt
GRAPH_FINGERPRINT = "graph_fingerprint"  # likewise
RUN_FILES = (CHECKPOINT, PREVIOUS_CHECKPOINT, BEST, HISTORY, METRICS)
WRITTEN_FILES = (CONFIG, CHECKPOINT, BEST, HISTORY, METRICS)  # the names atomic_write writes in a run folder

logger = logging.getLogger(__name__)


def atomic_write(path: Path, write) -> None:
    """Write through ``write(file)`` to a temporary file beside ``path``, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = temporary_beside(path)
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

    def __init__(self, path: Path, config: TrainConfig, graph: str | None = None):
        self.path = Path(path)
        self.config = config
        self.graph = graph  # the training graph's fingerprint; None: not checked
        self.checkpoint_path: Path | None = None  # the file the last load_checkpoint() read
        self._fingerprint: str | None = None
        self._current_damaged = False  # checkpoint.pt failed to load: never rotate it over the fallback
        self._created = False  # opened() made the folder: forget_unstarted() may remove it

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:  # cached: it hashes the whitelist or dataset schema files
            self._fingerprint = self.config.fingerprint()
        return self._fingerprint

    @classmethod
    def open(cls, path: Path, config: TrainConfig, graph: str | None = None) -> "RunFolder":
        """Create the folder, or check that an existing one holds the same config (see :meth:`opened`)."""
        with cls.opened(path, config, graph) as folder:
            return folder

    @classmethod
    @contextlib.contextmanager
    def opened(cls, path: Path, config: TrainConfig, graph: str | None = None):
        """:meth:`open` the folder and keep its :meth:`lock` until the block ends.

        The check and the write of ``config.json`` happen under the lock, so two processes with
        different configs cannot both be accepted; temporary files left by a write that was killed
        midway are removed there too.
        """
        folder = cls(path, config, graph)
        if (folder.path / CONFIG).exists():  # config.json never changes: refuse without touching the folder
            folder._check_config()
        folder._created = not folder.path.exists()
        with folder.lock():
            folder._check_config()
            folder._remove_temporaries()
            yield folder

    def _check_config(self) -> None:
        config_path = self.path / CONFIG
        if config_path.exists():
            stored = TrainConfig.from_dict(read_json(config_path), source=str(config_path))
            differences = stored.differences(self.config)
            if differences:
                listed = "; ".join(f"{k}: stored {a!r}, asked {b!r}" for k, (a, b) in differences.items())
                raise RunError(
                    f"{self.path} holds a run with a different config ({listed}); "
                    "choose another run folder or delete this one"
                )
            return
        present = [name for name in RUN_FILES if (self.path / name).exists()]
        if present:
            raise RunError(f"{self.path} holds {', '.join(present)} but no {CONFIG}, so the config that made "
                           f"them is unknown; restore its {CONFIG}, or delete those files to train afresh")
        write_json(config_path, self.config.to_dict())

    def _remove_temporaries(self) -> None:
        """Delete the ``.<name>.*.tmp`` files of :func:`atomic_write`; only with the lock held (no writer)."""
        for name in WRITTEN_FILES:
            for temporary in self.path.glob(f".{name}.*.tmp"):
                logger.info("removing %s, left by an interrupted write", temporary)
                temporary.unlink(missing_ok=True)

    def check_fingerprint(self, path: Path, state: dict) -> None:
        """Refuse ``state`` (read from ``path``) if it was written under another config."""
        stored = state.get(FINGERPRINT)  # absent in files written before it was stored
        if stored is not None and stored != self.fingerprint:
            raise RunError(f"{path}: written by another config (fingerprint {stored!r}, this run's is "
                           f"{self.fingerprint!r}): copied from another run folder, or the config's whitelist "
                           "or dataset schema changed; delete it or use the run folder it came from")
        stored_graph = state.get(GRAPH_FINGERPRINT)
        if self.graph is not None and stored_graph is not None and stored_graph != self.graph:
            raise RunError(f"{path}: trained on another graph (fingerprint {stored_graph!r}, this graph's is "
                           f"{self.graph!r}) under the same config: a graph given to train(kg=...) that its "
                           "config's dataset does not describe needs a run folder of its own (run_dir=...)")

    def _fingerprints(self) -> dict:
        return {FINGERPRINT: self.fingerprint, **({GRAPH_FINGERPRINT: self.graph} if self.graph else {})}

    @contextlib.contextmanager
    def lock(self):
        """Hold an exclusive lock on the folder: a second writer waits until the first is done.

        ``flock`` locks are released by the kernel when a process dies, so a killed run never
        leaves a stale lock behind.
        """
        while True:
            self.path.mkdir(parents=True, exist_ok=True)
            with open(self.path / LOCK, "a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    logger.info("waiting for another process training in %s", self.path)
                    fcntl.flock(handle, fcntl.LOCK_EX)
                if not self._holds(handle):  # the holder removed the folder (forget_unstarted): lock anew
                    continue
                try:
                    yield self
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
                return

    def _holds(self, handle) -> bool:
        """Whether ``handle`` is still the folder's lock file (not one unlinked while we waited)."""
        try:
            return os.stat(self.path / LOCK).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            return False

    @property
    def finished(self) -> bool:
        return (self.path / METRICS).exists()

    def forget_unstarted(self) -> None:
        """Delete ``config.json`` if no run file was written yet (call with the lock held): a run
        that failed before its first epoch (a missing whitelist, say) does not claim the folder for
        its config, so the corrected command can use it. A folder that :meth:`opened` created and
        that now holds only the lock is removed (a waiting process then locks afresh)."""
        if any((self.path / name).exists() for name in RUN_FILES):
            return
        (self.path / CONFIG).unlink(missing_ok=True)
        if self._created and [p.name for p in self.path.iterdir()] == [LOCK]:
            (self.path / LOCK).unlink()
            with contextlib.suppress(OSError):  # something was written meanwhile: keep the folder
                self.path.rmdir()

    def save_checkpoint(self, state: dict) -> None:
        current = self.path / CHECKPOINT
        if current.exists() and not self._current_damaged:
            os.replace(current, self.path / PREVIOUS_CHECKPOINT)
        save_tensors(current, {**state, **self._fingerprints()})
        self._current_damaged = False

    def load_checkpoint(self, check_config: bool = True) -> dict | None:
        """Latest readable checkpoint, falling back to the previous one if the latest is damaged.

        :attr:`checkpoint_path` tells which file it came from. ``check_config=False`` leaves
        :meth:`check_fingerprint` to the caller (to report weights that do not fit first).
        """
        current, previous = self.path / CHECKPOINT, self.path / PREVIOUS_CHECKPOINT
        self.checkpoint_path = None
        if not current.exists():
            if not previous.exists():
                return None
            path, state = previous, _checkpoint_dict(previous)
        else:
            try:
                path, state = current, _checkpoint_dict(current)
            except RunError as error:
                if not previous.exists():
                    raise
                logger.warning("%s; falling back to %s", error, previous)
                try:
                    path, state = previous, _checkpoint_dict(previous)
                except RunError as previous_error:
                    raise RunError(f"{error}; and the fallback {previous_error}") from None
                self._current_damaged = True
        self.checkpoint_path = path
        if check_config:
            self.check_fingerprint(path, state)
        return state

    def save_best(self, model_state: dict, epoch: int, valid_mrr: float) -> None:
        save_tensors(self.path / BEST, {"model": model_state, "epoch": epoch, "valid_mrr": valid_mrr,
                                        **self._fingerprints()})

    def load_best(self) -> dict | None:
        """The best weights with their ``epoch`` and ``valid_mrr``; None without ``best.pt``."""
        path = self.path / BEST
        if not path.exists():
            return None
        state = _checkpoint_dict(path)
        missing = [key for key in ("model", "epoch", "valid_mrr") if key not in state]
        if missing:
            raise RunError(f"{path}: not kgbias best weights (no {', '.join(missing)})")
        if not isinstance(state["model"], dict):
            raise RunError(f"{path}: not kgbias best weights ('model' holds a {type(state['model']).__name__})")
        self.check_fingerprint(path, state)
        return state

    def write_history(self, history: list[dict]) -> None:
        write_csv(self.path / HISTORY, pd.DataFrame(history))

    def history(self) -> pd.DataFrame:
        path = self.path / HISTORY
        try:
            frame = pd.read_csv(path)
        except FileNotFoundError:
            frame = None
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise RunError(f"{path}: unreadable history ({error}); delete {METRICS} and rerun "
                           "`kgbias train` with this config to rewrite it from the checkpoint") from None
        if frame is None or "epoch" not in frame:
            raise RunError(f"{path}: {'missing' if frame is None else 'no epoch column'}; delete {METRICS} and "
                           "rerun `kgbias train` with this config to rewrite it from the checkpoint")
        return frame

    def write_metrics(self, metrics: dict) -> None:
        write_json(self.path / METRICS, metrics)

    def metrics(self) -> dict:
        path = self.path / METRICS
        metrics = read_json(path)
        if not isinstance(metrics, dict):
            raise RunError(f"{path}: expected an object of metrics, got {type(metrics).__name__}")
        return metrics
