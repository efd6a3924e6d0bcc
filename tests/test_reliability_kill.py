"""SIGKILL training at random points, resume, and end with exactly the uninterrupted run's numbers.

Also two writers on one run folder: the lock lets exactly one train; killing the lock holder lets
the other take over from the last checkpoint. Trainers are forked by ``tests/_train_worker.py``
(one import of torch for all of them); each is a real process killed with ``kill -9``.
"""

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from kgbias import TrainConfig

CONFIG = TrainConfig(dataset="toy", dataset_options={"n_people": 150}, embedding_dim=16,
                     n_negatives=50, batch_size=128, n_epochs=4, valid_every=2)
WORKER = Path(__file__).with_name("_train_worker.py")
MIN_KILLS = 22  # this module adds 3 more in the two-writer test: 25 in all (issue 7 asks >= 20)
RUN_FILES = {"config.json", "checkpoint.pt", "checkpoint.prev.pt", "best.pt", "history.csv", "metrics.json"}
TIMING_KEYS = {"seconds_first_epoch", "seconds_per_epoch"}
MODES = ("mid_epoch", "after_checkpoint", "during_checkpoint_write")

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and SIGKILL")


class Worker:
    """Client of the fork server in ``_train_worker.py``."""

    def __init__(self, config: TrainConfig):
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(config.to_dict())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def ask(self, line: str) -> str:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline().strip()
        assert reply, f"worker died answering {line!r}"
        return reply

    def start(self, run_dir: Path, out: Path) -> int:
        return int(self.ask(f"start {run_dir} {out}"))

    def kill(self, pid: int) -> str:
        return self.ask(f"kill {pid}")

    def wait(self, pid: int) -> str:
        return self.ask(f"wait {pid}")

    def close(self) -> None:
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    server = Worker(CONFIG)
    yield server
    server.close()


@pytest.fixture(scope="module")
def reference(worker, tmp_path_factory):
    """An uninterrupted run, trained by the same fork server."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    out = run_dir.parent / "out.json"
    assert worker.wait(worker.start(run_dir, out)) == "exited 0", out.read_text()
    return run_dir


def started_epochs(run_dir: Path) -> list[tuple[int, int]]:
    """``(pid, epoch)`` for every epoch a trainer began in ``run_dir``."""
    progress = Path(f"{run_dir}.progress")
    if not progress.exists():
        return []
    return [tuple(map(int, line.split())) for line in progress.read_text().splitlines()]


def wait_until(condition, done: Path, timeout: float = 120.0, required: bool = True) -> bool:
    """Poll ``condition()`` until true; False if the trainer wrote ``done`` (finished) first.

    After ``timeout`` seconds: an AssertionError if ``required``, else False.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if done.exists():
            return False
        time.sleep(0.0005)
    assert not required, "trainer made no progress within the timeout"
    return False


def checkpoint_identity(run_dir: Path):
    try:
        stat = (run_dir / "checkpoint.pt").stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def kill_once(worker, run_dir: Path, out: Path, rng: random.Random, epoch_seconds: float):
    """Start a trainer, kill it at a random point; returns (mode, epoch it was in) or None if it finished."""
    out.unlink(missing_ok=True)
    pid = worker.start(run_dir, out)
    mode = rng.choice(MODES)
    began = lambda: any(p == pid for p, _ in started_epochs(run_dir))  # noqa: E731
    if wait_until(began, out):
        if mode == "mid_epoch":
            time.sleep(rng.uniform(0.0, 1.5 * epoch_seconds))
        elif mode == "after_checkpoint":
            before = checkpoint_identity(run_dir)
            changed = lambda: checkpoint_identity(run_dir) not in (before, None)  # noqa: E731
            if wait_until(changed, out, 3 * epoch_seconds + 1.0, required=False):
                time.sleep(rng.uniform(0.0, 0.01))
        else:  # while a checkpoint is being written (temp file present, fsync in progress)
            writing = lambda: any(p.name.startswith(".checkpoint.pt.") for p in run_dir.iterdir())  # noqa: E731
            if wait_until(writing, out, 3 * epoch_seconds + 1.0, required=False):
                time.sleep(rng.uniform(0.0, 0.002))
    outcome = worker.kill(pid)
    if outcome == "killed":
        epochs = [e for p, e in started_epochs(run_dir) if p == pid]
        return mode, (epochs[-1] if epochs else None)
    assert outcome == "exited 0", json.loads(out.read_text()).get("traceback", outcome)
    return None


def assert_same_run(run_dir: Path, reference: Path) -> None:
    """Metrics (timings aside), history and every stored tensor equal the reference run's, exactly."""
    metrics, expected = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, reference))
    assert {k: v for k, v in metrics.items() if k not in TIMING_KEYS} == \
        {k: v for k, v in expected.items() if k not in TIMING_KEYS}
    for name in ("checkpoint.pt", "best.pt"):
        state, expected_state = (torch.load(d / name, weights_only=True) for d in (run_dir, reference))
        assert state["model"].keys() == expected_state["model"].keys()
        for key in state["model"]:
            assert torch.equal(state["model"][key], expected_state["model"][key]), (name, key)
    final = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    expected_final = torch.load(reference / "checkpoint.pt", weights_only=True)
    assert final["epoch"] == expected_final["epoch"] == CONFIG.n_epochs
    without_timing = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert without_timing(final["history"]) == without_timing(expected_final["history"])
    history, expected_history = (pd.read_csv(d / "history.csv").drop(columns="seconds") for d in (run_dir, reference))
    pd.testing.assert_frame_equal(history, expected_history)
    assert torch.equal(final["generator"], expected_final["generator"])
    visible = {p.name for p in run_dir.iterdir() if not p.name.startswith(".")}
    assert visible == RUN_FILES


def test_random_sigkills_resume_to_identical_results(worker, reference, tmp_path):
    """>= 22 SIGKILLs at seeded random points (mid-epoch, right after a checkpoint, mid-write)."""
    rng = random.Random(7)
    epoch_seconds = statistics.median(pd.read_csv(reference / "history.csv")["seconds"])
    kills = []
    for campaign in range(6):
        run_dir, out = tmp_path / f"run{campaign}", tmp_path / f"out{campaign}.json"
        while (kill := kill_once(worker, run_dir, out, rng, epoch_seconds)) is not None:
            kills.append(kill)
        assert json.loads(out.read_text()).keys() == {"metrics"}
        assert_same_run(run_dir, reference)
        if len(kills) >= MIN_KILLS:
            break
    mid_training = [k for k in kills if k[1] is not None]
    assert len(mid_training) >= MIN_KILLS
    assert {mode for mode, _ in mid_training} == set(MODES)
    assert len({epoch for _, epoch in mid_training}) >= 3  # kills spread over several epochs


def test_two_writers_train_once(worker, reference, tmp_path):
    """Two processes start the same run at once: one trains, the other waits and reuses it."""
    run_dir = tmp_path / "run"
    first = worker.start(run_dir, tmp_path / "a.json")
    second = worker.start(run_dir, tmp_path / "b.json")
    assert worker.wait(first) == "exited 0" and worker.wait(second) == "exited 0"
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("a.json", "b.json"))
    assert a == b  # timings included: the second read the first's metrics.json, it did not train
    epochs = started_epochs(run_dir)
    assert sorted(e for _, e in epochs) == list(range(1, CONFIG.n_epochs + 1))  # each epoch once
    assert len({p for p, _ in epochs}) == 1
    assert_same_run(run_dir, reference)


def test_killing_the_lock_holder_lets_the_other_writer_finish(worker, reference, tmp_path):
    rng = random.Random(11)
    epoch_seconds = statistics.median(pd.read_csv(reference / "history.csv")["seconds"])
    kills = 0
    for attempt in range(8):
        run_dir = tmp_path / f"run{attempt}"
        outs = {}
        for name in "ab":
            outs[worker.start(run_dir, tmp_path / f"{name}{attempt}.json")] = tmp_path / f"{name}{attempt}.json"
        wait_until(lambda: started_epochs(run_dir), tmp_path / "never")
        holder = started_epochs(run_dir)[0][0]
        (other,) = set(outs) - {holder}
        time.sleep(rng.uniform(0.0, 2.0 * epoch_seconds))
        if worker.kill(holder) != "killed":  # it finished first: no kill point, try again
            assert worker.wait(other) == "exited 0"
            continue
        kills += 1
        assert worker.wait(other) == "exited 0", outs[other].read_text()
        assert json.loads(outs[other].read_text()).keys() == {"metrics"}
        assert {p for p, _ in started_epochs(run_dir)} == {holder, other}
        assert_same_run(run_dir, reference)
        # The killed writer, started again, finds the finished run and trains nothing.
        n_started = len(started_epochs(run_dir))
        again = worker.start(run_dir, tmp_path / f"again{attempt}.json")
        assert worker.wait(again) == "exited 0"
        assert len(started_epochs(run_dir)) == n_started
        if kills == 3:
            break
    assert kills == 3
