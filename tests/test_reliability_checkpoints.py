"""Damaged, foreign and malicious run files, and numerical faults during training.

Every case ends in a RunError naming the file, or in a fallback to the previous good checkpoint
that reproduces the uninterrupted run exactly; never in a silently wrong result or in running code.
"""

import hashlib
import json
import os
import pickle
import shutil

import pytest
import torch

import kgbias.training as training
from kgbias import RunError, TrainConfig, train
from kgbias.graph import KnowledgeGraph
from kgbias.runs import RunFolder, load_tensors

CONFIG = TrainConfig(dataset="random", embedding_dim=8, n_negatives=10, batch_size=64, n_epochs=4)


def small_graph() -> KnowledgeGraph:
    """40 entities in 5 groups, triples inside a group (learnable), about 300 triples."""
    generator = torch.Generator().manual_seed(0)
    h = torch.randint(40, (320,), generator=generator)
    r = torch.randint(3, (320,), generator=generator)
    t = (h // 8) * 8 + torch.randint(8, (320,), generator=generator)
    triples = torch.stack([h, r, t], 1).unique(dim=0)
    triples = triples[torch.randperm(len(triples), generator=generator)]
    n = len(triples)
    return KnowledgeGraph("random", [f"e{i}" for i in range(40)], [f"r{i}" for i in range(3)],
                          triples[: n - 30], triples[n - 30: n - 15], triples[n - 15:])


KG = small_graph()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return train(CONFIG, kg=KG, run_dir=tmp_path_factory.mktemp("reference") / "run")


def interrupt_at(monkeypatch, epoch_to_stop: int):
    """Make train() raise KeyboardInterrupt when it reaches ``epoch_to_stop``."""
    real_epoch = training.train_epoch

    def interrupted(*args, **kwargs):
        if args[7] == epoch_to_stop:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(training, "train_epoch", interrupted)
    return real_epoch


def interrupted_run(path, monkeypatch, stop_at: int = 4):
    """A run folder whose checkpoint.pt is epoch ``stop_at - 1`` and checkpoint.prev.pt the one before."""
    real_epoch = interrupt_at(monkeypatch, stop_at)
    with pytest.raises(KeyboardInterrupt):
        train(CONFIG, kg=KG, run_dir=path)
    monkeypatch.setattr(training, "train_epoch", real_epoch)
    assert load_tensors(path / "checkpoint.pt")["epoch"] == stop_at - 1
    assert load_tensors(path / "checkpoint.prev.pt")["epoch"] == stop_at - 2
    return path


def assert_same_as(run, reference):
    assert run.metrics["test"] == reference.metrics["test"]
    assert torch.equal(run.model.entity.weight, reference.model.entity.weight)
    assert list(run.history["loss"]) == list(reference.history["loss"])


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- damaged checkpoints --------------------------------------------------------------------

DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "last byte cut": lambda p: p.write_bytes(p.read_bytes()[:-1]),
    "empty": lambda p: p.write_bytes(b""),
    "garbage": lambda p: p.write_bytes(os.urandom(4096)),
    "missing": lambda p: p.unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_checkpoint_falls_back_to_previous(tmp_path, monkeypatch, reference, damage):
    path = interrupted_run(tmp_path / "run", monkeypatch)
    DAMAGE[damage](path / "checkpoint.pt")
    assert RunFolder(path, CONFIG).load_checkpoint()["epoch"] == 2
    assert_same_as(train(CONFIG, kg=KG, run_dir=path), reference)


def test_fallback_to_previous_checkpoint_is_logged(tmp_path, monkeypatch, caplog):
    path = interrupted_run(tmp_path / "run", monkeypatch)
    DAMAGE["truncated"](path / "checkpoint.pt")
    with caplog.at_level("WARNING", logger="kgbias"):
        RunFolder(path, CONFIG).load_checkpoint()
    assert str(path / "checkpoint.pt") in caplog.text and "checkpoint.prev.pt" in caplog.text


def test_bit_flip_in_checkpoint_tensor_data_is_detected(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {"w": torch.arange(1000, dtype=torch.float32)}, "epoch": 1}, path)
    data = bytearray(path.read_bytes())
    offset = data.index(torch.arange(1000, dtype=torch.float32).numpy().tobytes()[400:440])
    data[offset] ^= 0x01  # one bit of one float of the tensor payload
    path.write_bytes(bytes(data))
    with pytest.raises(RunError, match="checkpoint.pt"):
        load_tensors(path)


def test_both_checkpoints_damaged_is_an_error_naming_the_file(tmp_path, monkeypatch):
    path = interrupted_run(tmp_path / "run", monkeypatch)
    DAMAGE["truncated"](path / "checkpoint.pt")
    DAMAGE["garbage"](path / "checkpoint.prev.pt")
    with pytest.raises(RunError, match=r"checkpoint\.prev\.pt: unreadable checkpoint"):
        train(CONFIG, kg=KG, run_dir=path)
    assert not (path / "metrics.json").exists()
    (path / "checkpoint.prev.pt").unlink()
    with pytest.raises(RunError, match=r"checkpoint\.pt: unreadable checkpoint"):
        train(CONFIG, kg=KG, run_dir=path)


def test_damaged_best_weights_of_a_finished_run_is_an_error(tmp_path, reference):
    shutil.copytree(reference.path, tmp_path / "run")
    DAMAGE["truncated"](tmp_path / "run" / "best.pt")
    with pytest.raises(RunError, match=r"best\.pt: unreadable checkpoint"):
        train(CONFIG, kg=KG, run_dir=tmp_path / "run")


def save_state_without(path, key):
    state = load_tensors(path)
    del state[key]
    torch.save(state, path)
    (path.parent / "checkpoint.prev.pt").unlink()


@pytest.mark.parametrize("key", ["model", "optimizer", "generator"])
def test_checkpoint_missing_a_part_is_an_error(tmp_path, monkeypatch, key):
    path = interrupted_run(tmp_path / "run", monkeypatch)
    save_state_without(path / "checkpoint.pt", key)
    with pytest.raises(RunError, match="checkpoint does not fit this model and config"):
        train(CONFIG, kg=KG, run_dir=path)


@pytest.mark.parametrize("key", ["epoch", "history"])
def test_checkpoint_missing_epoch_or_history_is_an_error(tmp_path, monkeypatch, key):
    path = interrupted_run(tmp_path / "run", monkeypatch)
    save_state_without(path / "checkpoint.pt", key)
    with pytest.raises(RunError, match=str(path)):
        train(CONFIG, kg=KG, run_dir=path)


@pytest.mark.parametrize("content", [[1, 2, 3], torch.zeros(3), "text"])
def test_checkpoint_that_is_not_a_dict_is_an_error(tmp_path, monkeypatch, content):
    path = interrupted_run(tmp_path / "run", monkeypatch)
    torch.save(content, path / "checkpoint.pt")
    (path / "checkpoint.prev.pt").unlink()
    with pytest.raises(RunError, match=r"checkpoint\.pt"):
        train(CONFIG, kg=KG, run_dir=path)


def test_checkpoint_of_another_model_size_is_an_error(tmp_path, monkeypatch):
    other = TrainConfig(**{**CONFIG.to_dict(), "embedding_dim": 4})
    real_epoch = interrupt_at(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train(other, kg=KG, run_dir=tmp_path / "small")
    monkeypatch.setattr(training, "train_epoch", real_epoch)
    path = interrupted_run(tmp_path / "run", monkeypatch)
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        shutil.copy(tmp_path / "small" / name, path / name)
    with pytest.raises(RunError, match=r"(?s)checkpoint does not fit this model and config.*size mismatch for entity.weight"):
        train(CONFIG, kg=KG, run_dir=path)


def test_best_weights_of_another_model_size_is_an_error(tmp_path, reference):
    shutil.copytree(reference.path, tmp_path / "run")
    best = load_tensors(tmp_path / "run" / "best.pt")
    best["model"] = {k: v[:, :4] if v.dim() == 2 else v for k, v in best["model"].items()}
    torch.save(best, tmp_path / "run" / "best.pt")
    with pytest.raises(RunError, match="stored weights do not fit this model"):
        train(CONFIG, kg=KG, run_dir=tmp_path / "run")


def test_best_weights_that_do_not_fit_are_refused_before_resumed_training(tmp_path, monkeypatch):
    path = interrupted_run(tmp_path / "run", monkeypatch)
    best = load_tensors(path / "best.pt")
    best["model"] = {k: v[:, :4] if v.dim() == 2 else v for k, v in best["model"].items()}
    torch.save(best, path / "best.pt")
    trained = []
    real_epoch = training.train_epoch
    monkeypatch.setattr(training, "train_epoch", lambda *a, **k: trained.append(a[7]) or real_epoch(*a, **k))
    with pytest.raises(RunError, match=r"best\.pt: stored weights do not fit this model \(size mismatch for "
                                       r"entity\.weight: stored \(40, 4\), model \(40, 8\)\)"):
        train(CONFIG, kg=KG, run_dir=path)
    assert trained == []  # before epoch 4, not after it
    assert load_tensors(path / "checkpoint.pt")["epoch"] == 3


# --- run folder and config ------------------------------------------------------------------

BAD_CONFIGS = [
    pytest.param(b"{not json", id="syntax"),
    pytest.param(b"", id="empty"),
    pytest.param(b'{"embedding_dim": 8', id="truncated"),
    pytest.param(b'{"embedding_dim": "eight"}', id="wrong-type"),
    pytest.param(b'{"no_such_field": 1}', id="unknown-field"),
    pytest.param(b'"text"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(b"[1, 2]", id="list"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b"[" * 100_000, id="deep-nesting"),
]


@pytest.mark.parametrize("content", BAD_CONFIGS)
def test_corrupt_config_json_is_an_error_naming_it(tmp_path, content):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_bytes(content)
    with pytest.raises(RunError, match=r"run/config\.json"):
        train(CONFIG, kg=KG, run_dir=tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json"]


def test_config_of_another_run_is_refused_not_overwritten(tmp_path, reference):
    shutil.copytree(reference.path, tmp_path / "run")
    before = {p.name: sha256(p) for p in (tmp_path / "run").iterdir() if p.is_file()}
    other = TrainConfig(**{**CONFIG.to_dict(), "learning_rate": 0.05})
    with pytest.raises(RunError, match="learning_rate: stored 0.1, asked 0.05"):
        train(other, kg=KG, run_dir=tmp_path / "run")
    assert {p.name: sha256(p) for p in (tmp_path / "run").iterdir() if p.is_file()} == before


# --- untrusted checkpoints: loading must not run code ----------------------------------------

class CreateMarker:
    """Unpickling this calls open(marker, "w"): a file appears if pickle code runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def write_payloads(folder, marker):
    """The same payload as a raw pickle and in torch's zip format; returns their paths."""
    raw, zipped = folder / "raw.pt", folder / "zipped.pt"
    raw.write_bytes(pickle.dumps({"model": CreateMarker(marker), "epoch": 1}))
    torch.save({"model": CreateMarker(marker), "epoch": 1}, zipped)
    return raw, zipped


def test_crafted_payload_would_run_code_with_plain_unpickling(tmp_path):
    """The payload is live: without weights_only it creates the marker (so the tests below can fail)."""
    raw, zipped = write_payloads(tmp_path, tmp_path / "marker")
    pickle.loads(raw.read_bytes())
    assert (tmp_path / "marker").exists()
    (tmp_path / "marker").unlink()
    torch.load(zipped, weights_only=False)
    assert (tmp_path / "marker").exists()


@pytest.mark.parametrize("kind", ["raw", "zipped"])
def test_crafted_checkpoint_does_not_run_code(tmp_path, monkeypatch, kind):
    marker = tmp_path / "marker"
    payload = dict(zip(["raw", "zipped"], write_payloads(tmp_path, marker)))[kind]
    with pytest.raises(RunError, match="unreadable checkpoint"):
        load_tensors(payload)

    # as the latest checkpoint of an unfinished run, with no previous one to fall back on
    path = interrupted_run(tmp_path / "run", monkeypatch)
    (path / "checkpoint.prev.pt").unlink()
    shutil.copy(payload, path / "checkpoint.pt")
    with pytest.raises(RunError, match=r"checkpoint\.pt: unreadable checkpoint"):
        train(CONFIG, kg=KG, run_dir=path)

    # as the best weights of a finished run
    run = train(CONFIG, kg=KG, run_dir=tmp_path / "finished")
    shutil.copy(payload, run.path / "best.pt")
    with pytest.raises(RunError, match=r"best\.pt: unreadable checkpoint"):
        train(CONFIG, kg=KG, run_dir=run.path)
    assert not marker.exists()


# --- numerical faults -----------------------------------------------------------------------

def fault_at_epoch(monkeypatch, epoch_with_fault: int, fault):
    """Call ``fault(model)`` (or replace the loss) during ``epoch_with_fault``; record checkpoint hashes."""
    real_epoch, real_loss = training.train_epoch, training.batch_loss
    seen = {}

    def epoch(*args, **kwargs):
        model, path = args[0], seen["path"]
        seen[args[7]] = sha256(path / "checkpoint.pt") if (path / "checkpoint.pt").exists() else None
        if args[7] != epoch_with_fault:
            return real_epoch(*args, **kwargs)
        if fault == "nan_embeddings":
            with torch.no_grad():
                model.entity.weight[:] = float("nan")
            return real_epoch(*args, **kwargs)
        value = float(fault)
        calls = []

        def bad_loss(*a, **k):
            calls.append(1)
            loss = real_loss(*a, **k)
            return loss * value if len(calls) == 2 else loss  # the second step of the epoch

        monkeypatch.setattr(training, "batch_loss", bad_loss)
        try:
            return real_epoch(*args, **kwargs)
        finally:
            monkeypatch.setattr(training, "batch_loss", real_loss)

    monkeypatch.setattr(training, "train_epoch", epoch)
    return seen, real_epoch


@pytest.mark.parametrize("fault", ["nan", "inf", "nan_embeddings"])
def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch,
                                                                           reference, fault):
    path = tmp_path / "run"
    seen, real_epoch = fault_at_epoch(monkeypatch, 3, fault)
    seen["path"] = path
    with pytest.raises(RunError, match=r"non-finite loss \((nan|inf)\) at epoch 3, step \d+.*last good checkpoint"):
        train(CONFIG, kg=KG, run_dir=path)
    assert seen[3] is not None and sha256(path / "checkpoint.pt") == seen[3]  # untouched by epoch 3
    state = load_tensors(path / "checkpoint.pt")
    assert state["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (path / "metrics.json").exists()
    # Nothing was lost: the run resumes from epoch 2 to exactly the uninterrupted numbers.
    monkeypatch.setattr(training, "train_epoch", real_epoch)
    assert_same_as(train(CONFIG, kg=KG, run_dir=path), reference)


def test_non_finite_weights_at_the_end_of_an_epoch_are_not_saved(tmp_path, monkeypatch):
    real_epoch = training.train_epoch

    def poisoned_last_epoch(*args, **kwargs):
        loss = real_epoch(*args, **kwargs)
        if args[7] == CONFIG.n_epochs:
            with torch.no_grad():
                args[0].entity.weight[5] = float("inf")  # e.g. an overflow in the last step
        return loss

    monkeypatch.setattr(training, "train_epoch", poisoned_last_epoch)
    with pytest.raises(RunError, match="non-finite"):
        train(CONFIG, kg=KG, run_dir=tmp_path / "run")
    assert load_tensors(tmp_path / "run" / "checkpoint.pt")["epoch"] == CONFIG.n_epochs - 1
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_history_file_is_rewritten_after_a_kill_at_the_last_epoch(tmp_path, monkeypatch, reference):
    real_write = RunFolder.write_history

    def killed_before_last_history(self, history):
        if len(history) == CONFIG.n_epochs:
            raise KeyboardInterrupt  # stands for SIGKILL right after the last checkpoint.pt
        return real_write(self, history)

    monkeypatch.setattr(RunFolder, "write_history", killed_before_last_history)
    with pytest.raises(KeyboardInterrupt):
        train(CONFIG, kg=KG, run_dir=tmp_path / "run")
    monkeypatch.setattr(RunFolder, "write_history", real_write)
    run = train(CONFIG, kg=KG, run_dir=tmp_path / "run")
    assert list(run.history["epoch"]) == list(range(1, CONFIG.n_epochs + 1))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["n_epochs_run"] == CONFIG.n_epochs


def test_training_leaves_floating_point_state_alone(tmp_path):
    torch.set_flush_denormal(False)
    smallest_normal = 2.2250738585072014e-308
    assert smallest_normal / 2 > 0
    train(CONFIG, kg=KG, run_dir=tmp_path / "run")
    try:
        assert smallest_normal / 2 > 0  # a subnormal, unless FTZ/DAZ were left on
    finally:
        torch.set_flush_denormal(False)


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    from kgbias.runs import write_json

    write_json(tmp_path / "atomic.json", {})
    (tmp_path / "plain.json").write_text("{}")
    assert (tmp_path / "atomic.json").stat().st_mode == (tmp_path / "plain.json").stat().st_mode
