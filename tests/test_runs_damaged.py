"""Run folders with missing, damaged or foreign files: a RunError naming the file, never a silently
wrong model; a good fallback checkpoint is never overwritten by a damaged one."""

import shutil
import threading
import time

import pytest
import torch

import kgbias.runs as runs
import kgbias.training as training
from kgbias import RunError, TrainConfig, train
from kgbias.runs import RunFolder, load_tensors
from test_reliability_checkpoints import assert_same_as, interrupt_at  # tests/ is on sys.path under pytest

CONFIG = TrainConfig(dataset="toy", dataset_options={"n_people": 150}, embedding_dim=8,
                     n_negatives=50, batch_size=256, n_epochs=4)
NO_VALIDATION = TrainConfig(**{**CONFIG.to_dict(), "n_epochs": 3, "valid_every": 0})


@pytest.fixture(scope="module")
def kg():
    return training.load_graph(CONFIG)


@pytest.fixture(scope="module")
def reference(kg, tmp_path_factory):
    return train(CONFIG, kg=kg, run_dir=tmp_path_factory.mktemp("reference") / "run")


@pytest.fixture(scope="module")
def unvalidated(kg, tmp_path_factory):
    """A finished run without validation: its final weights are those of checkpoint.pt."""
    return train(NO_VALIDATION, kg=kg, run_dir=tmp_path_factory.mktemp("unvalidated") / "run")


def copy_run(run, tmp_path):
    return shutil.copytree(run.path, tmp_path / "run")


def interrupted(config, kg, path, monkeypatch, stop_at=4):
    """Train ``config`` in ``path`` until ``stop_at`` starts: checkpoint.pt is epoch ``stop_at - 1``."""
    real_epoch = interrupt_at(monkeypatch, stop_at)
    with pytest.raises(KeyboardInterrupt):
        train(config, kg=kg, run_dir=path)
    monkeypatch.setattr(training, "train_epoch", real_epoch)
    return path


# --- 1. best.pt missing although validations ran ---------------------------------------------

def test_finished_run_without_best_weights_is_an_error(kg, reference, tmp_path):
    path = copy_run(reference, tmp_path)
    (path / "best.pt").unlink()
    with pytest.raises(RunError, match=r"best\.pt: missing"):
        train(CONFIG, kg=kg, run_dir=path)


def test_resume_without_best_weights_is_an_error(kg, tmp_path, monkeypatch):
    path = interrupted(CONFIG, kg, tmp_path / "run", monkeypatch)
    (path / "best.pt").unlink()
    with pytest.raises(RunError, match=r"best\.pt: missing"):
        train(CONFIG, kg=kg, run_dir=path)
    assert not (path / "metrics.json").exists()


# --- 2. a finished run's weights must be the epoch its metrics were computed with -------------

def test_finished_run_refuses_the_earlier_fallback_checkpoint(kg, unvalidated, tmp_path):
    path = copy_run(unvalidated, tmp_path)
    (path / "checkpoint.pt").write_bytes(b"")  # damaged: load falls back to epoch 2
    with pytest.raises(RunError, match=r"checkpoint\.prev\.pt: holds epoch 2, but metrics\.json .* epoch 3"):
        train(NO_VALIDATION, kg=kg, run_dir=path)
    (path / "checkpoint.pt").unlink()
    with pytest.raises(RunError, match=r"checkpoint\.prev\.pt: holds epoch 2"):
        train(NO_VALIDATION, kg=kg, run_dir=path)
    (path / "checkpoint.prev.pt").unlink()
    with pytest.raises(RunError, match="finished run without weights"):
        train(NO_VALIDATION, kg=kg, run_dir=path)


def test_finished_run_without_validation_loads_its_last_checkpoint(kg, unvalidated, tmp_path):
    run = train(NO_VALIDATION, kg=kg, run_dir=copy_run(unvalidated, tmp_path))
    assert torch.equal(run.model.entity.weight, load_tensors(run.path / "checkpoint.pt")["model"]["entity.weight"])


# --- 3. a damaged checkpoint.pt is not rotated over the good checkpoint.prev.pt --------------

def test_damaged_checkpoint_is_not_rotated_into_the_fallback(kg, reference, tmp_path, monkeypatch):
    path = interrupted(CONFIG, kg, tmp_path / "run", monkeypatch)  # checkpoint.pt: 3, prev: 2
    (path / "checkpoint.pt").write_bytes(b"PK damaged")
    interrupted(CONFIG, kg, path, monkeypatch)  # resumes from prev (2), saves 3, stops at 4
    assert load_tensors(path / "checkpoint.pt")["epoch"] == 3
    assert load_tensors(path / "checkpoint.prev.pt")["epoch"] == 2  # the good fallback survived
    assert_same_as(train(CONFIG, kg=kg, run_dir=path), reference)


# --- 4. checkpoints are tied to their config -------------------------------------------------

def test_checkpoints_store_the_config_fingerprint(reference):
    for name in ("checkpoint.pt", "checkpoint.prev.pt", "best.pt"):
        assert load_tensors(reference.path / name)["config_fingerprint"] == CONFIG.fingerprint()


def test_checkpoint_of_another_config_is_refused(kg, tmp_path, monkeypatch):
    other = TrainConfig(**{**CONFIG.to_dict(), "learning_rate": 0.2})
    interrupted(other, kg, tmp_path / "other", monkeypatch)
    path = interrupted(CONFIG, kg, tmp_path / "run", monkeypatch)
    for name in ("checkpoint.pt", "checkpoint.prev.pt", "best.pt"):
        shutil.copy(tmp_path / "other" / name, path / name)
    with pytest.raises(RunError, match=r"checkpoint\.pt: written by another config"):
        train(CONFIG, kg=kg, run_dir=path)


def test_best_weights_of_another_config_are_refused(kg, reference, tmp_path):
    other = TrainConfig(**{**CONFIG.to_dict(), "learning_rate": 0.2, "n_epochs": 1})
    other_run = train(other, kg=kg, run_dir=tmp_path / "other")
    path = shutil.copytree(reference.path, tmp_path / "run")
    best = load_tensors(other_run.path / "best.pt")
    best["epoch"] = reference.metrics["epoch_used"]
    torch.save(best, path / "best.pt")
    with pytest.raises(RunError, match=r"best\.pt: written by another config"):
        train(CONFIG, kg=kg, run_dir=path)


def test_checkpoints_without_fingerprint_still_resume(kg, reference, tmp_path, monkeypatch):
    path = interrupted(CONFIG, kg, tmp_path / "run", monkeypatch)
    for name in ("checkpoint.pt", "checkpoint.prev.pt", "best.pt"):  # as written before the fields
        state = load_tensors(path / name)
        del state["config_fingerprint"], state["graph_fingerprint"]
        torch.save(state, path / name)
    assert_same_as(train(CONFIG, kg=kg, run_dir=path), reference)


@pytest.fixture(scope="module")
def other_graph(kg):
    """The same toy graph's sizes under another seed: other triples, which CONFIG does not describe."""
    other = training.load_graph(TrainConfig(**{**CONFIG.to_dict(), "dataset_options": {"n_people": 150, "seed": 7}}))
    assert (other.n_entities, other.n_relations) == (kg.n_entities, kg.n_relations)
    assert other.fingerprint() != kg.fingerprint()
    return other


def test_checkpoints_store_the_graph_fingerprint(kg, reference):
    assert kg.fingerprint() == training.load_graph(CONFIG).fingerprint()  # the content's, not the object's
    for name in ("checkpoint.pt", "checkpoint.prev.pt", "best.pt"):
        assert load_tensors(reference.path / name)["graph_fingerprint"] == kg.fingerprint()


def test_a_finished_run_on_another_graph_is_refused_not_reused(kg, reference, other_graph, tmp_path):
    path = copy_run(reference, tmp_path)
    with pytest.raises(RunError, match=r"best\.pt: trained on another graph .*run_dir"):
        train(CONFIG, kg=other_graph, run_dir=path)
    assert_same_as(train(CONFIG, kg=training.load_graph(CONFIG), run_dir=path), reference)  # an equal graph


def test_a_run_interrupted_on_another_graph_is_not_resumed(kg, other_graph, tmp_path, monkeypatch):
    path = interrupted(CONFIG, other_graph, tmp_path / "run", monkeypatch)
    with pytest.raises(RunError, match=r"checkpoint\.pt: trained on another graph"):
        train(CONFIG, kg=kg, run_dir=path)


def test_run_files_without_config_json_are_refused(kg, reference, tmp_path):
    path = copy_run(reference, tmp_path)
    (path / "config.json").unlink()
    with pytest.raises(RunError, match=r"holds checkpoint\.pt.* but no config\.json.*restore its config\.json"):
        train(CONFIG, kg=kg, run_dir=path)
    assert not (path / "config.json").exists()


# --- 5. config check under the lock ----------------------------------------------------------

def test_two_configs_opening_one_folder_at_once_accept_only_one(tmp_path, monkeypatch):
    real_write = runs.write_json

    def slow_write(path, value):
        time.sleep(0.3)  # widens the window between checking and writing config.json
        real_write(path, value)

    monkeypatch.setattr(runs, "write_json", slow_write)
    outcomes = []

    def open_folder(seed):
        try:
            RunFolder.open(tmp_path / "run", TrainConfig(dataset="toy", seed=seed))
            outcomes.append("accepted")
        except RunError:
            outcomes.append("refused")

    threads = [threading.Thread(target=open_folder, args=(seed,)) for seed in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["accepted", "refused"]


# --- 6. malformed best.pt and history.csv; errors name the file --------------------------------

@pytest.mark.parametrize("content", [{"epoch": 1, "valid_mrr": 0.5}, [1, 2], {"model": [1], "epoch": 1,
                                                                             "valid_mrr": 0.5}])
def test_malformed_best_weights_are_an_error_naming_them(kg, reference, tmp_path, content):
    path = copy_run(reference, tmp_path)
    torch.save(content, path / "best.pt")
    with pytest.raises(RunError, match=r"best\.pt: not"):
        train(CONFIG, kg=kg, run_dir=path)


@pytest.mark.parametrize("damage", ["missing", "empty"])
def test_damaged_history_of_a_finished_run_is_an_error_naming_it(kg, reference, tmp_path, damage):
    path = copy_run(reference, tmp_path)
    if damage == "missing":
        (path / "history.csv").unlink()
    else:
        (path / "history.csv").write_bytes(b"")
    with pytest.raises(RunError, match=r"history\.csv: (missing|unreadable)"):
        train(CONFIG, kg=kg, run_dir=path)


def test_fallback_checkpoint_that_does_not_fit_names_the_file(kg, tmp_path, monkeypatch):
    small = TrainConfig(**{**CONFIG.to_dict(), "embedding_dim": 4})
    interrupted(small, kg, tmp_path / "small", monkeypatch)
    path = interrupted(CONFIG, kg, tmp_path / "run", monkeypatch)
    (path / "checkpoint.pt").unlink()
    shutil.copy(tmp_path / "small" / "checkpoint.prev.pt", path / "checkpoint.prev.pt")
    with pytest.raises(RunError, match=r"checkpoint\.prev\.pt: checkpoint does not fit"):
        train(CONFIG, kg=kg, run_dir=path)


def test_best_weights_that_do_not_fit_name_the_file(kg, reference, tmp_path):
    path = copy_run(reference, tmp_path)
    best = load_tensors(path / "best.pt")
    best["model"] = {k: v[:, :4] if v.dim() == 2 else v for k, v in best["model"].items()}
    torch.save(best, path / "best.pt")
    with pytest.raises(RunError, match=r"best\.pt: stored weights do not fit"):
        train(CONFIG, kg=kg, run_dir=path)


# --- 7. temporaries of killed writes ----------------------------------------------------------

def test_stale_temporaries_are_removed_when_the_folder_is_opened(tmp_path):
    path = tmp_path / "run"
    path.mkdir()
    stale = [".checkpoint.pt.k2j3h4l5.tmp", ".best.pt.abc_1234.tmp", ".metrics.json.x.tmp",
             ".history.csv.q9q9q9q9.tmp", ".config.json.zz.tmp"]
    kept = [".notes.tmp", "checkpoint.pt.tmp", ".checkpoint.pt.orig", "mine.tmp"]
    for name in stale + kept:
        (path / name).write_bytes(b"PK partial")
    RunFolder.open(path, CONFIG)
    assert sorted(p.name for p in path.iterdir()) == sorted([".lock", "config.json", *kept])


def test_a_run_that_fails_before_its_first_epoch_leaves_the_folder_free(kg, tmp_path):
    folder = tmp_path / "run"
    wrong = TrainConfig(**{**CONFIG.to_dict(), "debias": "kl", "debias_weights": {"astrology": 1.0}})
    with pytest.raises(RunError, match="astrology"):
        train(wrong, kg=kg, run_dir=folder)
    assert not folder.exists()  # nor a folder holding only its lock file
    run = train(CONFIG, kg=kg, run_dir=folder)  # the corrected command is not refused
    assert run.metrics["epoch_used"] >= 1


def test_a_failed_run_keeps_a_folder_it_did_not_create(kg, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    wrong = TrainConfig(**{**CONFIG.to_dict(), "debias": "kl", "debias_weights": {"astrology": 1.0}})
    with pytest.raises(RunError, match="astrology"):
        train(wrong, kg=kg, run_dir=folder)
    assert folder.is_dir() and not (folder / "config.json").exists()


def test_a_writer_waiting_on_a_removed_folder_locks_it_anew(tmp_path):
    path = tmp_path / "run"
    holder_has_lock, seen_by_waiter = threading.Event(), []

    def wait_for_lock():
        holder_has_lock.wait(timeout=10)
        with RunFolder(path, CONFIG).lock():
            seen_by_waiter.append((path / ".lock").exists())

    waiter = threading.Thread(target=wait_for_lock)
    waiter.start()
    with RunFolder(path, CONFIG).lock():
        holder_has_lock.set()
        time.sleep(0.3)  # the waiter now blocks on this lock file
        (path / ".lock").unlink()  # as forget_unstarted() does after a failed start
        path.rmdir()
    waiter.join(timeout=10)
    assert seen_by_waiter == [True]  # locked a lock file that exists, not the unlinked one
