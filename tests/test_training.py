"""Training runs: learning happens, same seed same numbers, resume after interruption, run folders."""

import json

import pytest
import torch

import kgbias.training as training
from kgbias import RunError, TrainConfig, train
from kgbias.errors import DataError
from kgbias.graph import KnowledgeGraph


def random_graph(seed=0, n_entities=60, n_relations=4, n_triples=600) -> KnowledgeGraph:
    """Entities fall in 6 groups and every triple stays inside one group.

    (The dot form <h + r, t> = <h, t> + <r, t> can learn "same group"; it cannot learn a
    relation-specific map between groups, since r only adds a tail bias.)
    """
    generator = torch.Generator().manual_seed(seed)
    group_size = n_entities // 6
    h = torch.randint(n_entities, (n_triples,), generator=generator)
    r = torch.randint(n_relations, (n_triples,), generator=generator)
    target_group = h // group_size
    t = target_group * group_size + torch.randint(group_size, (n_triples,), generator=generator)
    triples = torch.stack([h, r, t], 1).unique(dim=0)
    triples = triples[torch.randperm(len(triples), generator=generator)]
    n = len(triples)
    return KnowledgeGraph("random", [f"e{i}" for i in range(n_entities)], [f"r{i}" for i in range(n_relations)],
                          triples[: n - 40], triples[n - 40: n - 20], triples[n - 20:])


CONFIG = TrainConfig(dataset="random", embedding_dim=16, n_negatives=20, batch_size=64, n_epochs=6)


def test_training_learns_beyond_chance(tmp_path):
    kg = random_graph()
    run = train(CONFIG, kg=kg, run_dir=tmp_path / "run")
    chance = 2 / (kg.n_entities + 1)
    assert run.metrics["test"]["mrr_filtered"] > 5 * chance
    assert run.history["loss"].iloc[-1] < run.history["loss"].iloc[0]
    assert list(run.history["epoch"]) == list(range(1, 7))


@pytest.mark.parametrize("comparator, loss", [("dot", "softmax"), ("l2", "margin"), ("l1", "softmax")])
def test_same_seed_same_numbers(tmp_path, comparator, loss):
    kg = random_graph()
    config = TrainConfig(**{**CONFIG.to_dict(), "comparator": comparator, "loss": loss, "n_epochs": 2})
    first = train(config, kg=kg, run_dir=tmp_path / "a")
    second = train(config, kg=kg, run_dir=tmp_path / "b")
    assert torch.equal(first.model.entity.weight, second.model.entity.weight)
    assert first.metrics["test"] == second.metrics["test"]


def test_interrupted_run_resumes_to_identical_metrics(tmp_path, monkeypatch):
    kg = random_graph()
    reference = train(CONFIG, kg=kg, run_dir=tmp_path / "reference")

    real_epoch = training.train_epoch
    def interrupt_at_epoch_4(*args, **kwargs):
        if args[7] == 4:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)
    monkeypatch.setattr(training, "train_epoch", interrupt_at_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        train(CONFIG, kg=kg, run_dir=tmp_path / "interrupted")
    assert not (tmp_path / "interrupted" / "metrics.json").exists()
    assert torch.load(tmp_path / "interrupted" / "checkpoint.pt", weights_only=True)["epoch"] == 3

    monkeypatch.setattr(training, "train_epoch", real_epoch)
    resumed = train(CONFIG, kg=kg, run_dir=tmp_path / "interrupted")
    assert resumed.metrics["test"] == reference.metrics["test"]
    assert torch.equal(resumed.model.entity.weight, reference.model.entity.weight)
    assert list(resumed.history["loss"]) == list(reference.history["loss"])


def test_finished_run_is_reused_without_training(tmp_path, monkeypatch):
    kg = random_graph()
    first = train(CONFIG, kg=kg, run_dir=tmp_path / "run")
    monkeypatch.setattr(training, "train_epoch", lambda *a, **k: pytest.fail("retrained a finished run"))
    again = train(CONFIG, kg=kg, run_dir=tmp_path / "run")
    assert again.metrics == first.metrics
    assert torch.equal(again.model.entity.weight, first.model.entity.weight)


def test_folder_with_another_config_is_an_error(tmp_path):
    kg = random_graph()
    train(CONFIG, kg=kg, run_dir=tmp_path / "run")
    other = TrainConfig(**{**CONFIG.to_dict(), "learning_rate": 0.05})
    with pytest.raises(RunError, match="learning_rate: stored 0.1, asked 0.05"):
        train(other, kg=kg, run_dir=tmp_path / "run")


def test_run_folder_contents(tmp_path):
    kg = random_graph()
    run = train(CONFIG, kg=kg, run_dir=tmp_path / "run")
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert TrainConfig.from_dict(stored) == CONFIG
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epoch_used"] == int(run.history["valid_mrr"].idxmax()) + 1
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_early_stopping_stops_after_patience(tmp_path):
    kg = random_graph()
    config = TrainConfig(**{**CONFIG.to_dict(), "n_epochs": 40, "early_stopping_patience": 2,
                            "learning_rate": 0.5})
    run = train(config, kg=kg, run_dir=tmp_path / "run")
    best = int(run.history["valid_mrr"].idxmax()) + 1
    assert len(run.history) <= best + 2
    assert run.metrics["epoch_used"] == best


def test_corrupt_checkpoint_falls_back_to_previous(tmp_path):
    kg = random_graph()
    config = TrainConfig(**{**CONFIG.to_dict(), "n_epochs": 3})
    folder = tmp_path / "run"
    reference = train(config, kg=kg, run_dir=tmp_path / "reference")
    train(TrainConfig(**{**config.to_dict()}), kg=kg, run_dir=folder)
    # pretend the run died while its last checkpoint was being damaged
    (folder / "metrics.json").unlink()
    (folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    resumed = train(config, kg=kg, run_dir=folder)
    assert resumed.metrics["test"] == reference.metrics["test"]


def test_unknown_config_field_is_an_error():
    with pytest.raises(RunError, match="unknown field"):
        TrainConfig.from_dict({"embedding_dimension": 3})


def test_unknown_loss_is_an_error():
    with pytest.raises(RunError, match="loss must be softmax or margin, got 'hinge'"):
        TrainConfig(loss="hinge")


@pytest.mark.parametrize("fields, message", [
    ({"debias": "kl", "debias_weights": {"gender": "abc"}}, r"debias_weights\['gender'\] must be a finite number"),
    ({"debias": "kl", "debias_weights": {"gender": -5.0}}, r"debias_weights\['gender'\] must be a finite number"),
    ({"debias": "kl", "debias_weights": {"gender": float("nan")}}, "must be a finite number"),
    ({"debias": "kl", "debias_weights": {"gender": True}}, "got True"),
    ({"kl_n_values": 1}, "kl_n_values must be at least 2"),
    ({"kl_n_values": -3}, "kl_n_values must be at least 2"),
    ({"valid_every": -2}, "valid_every and early_stopping_patience must be at least 0"),
    ({"early_stopping_patience": -1}, "valid_every and early_stopping_patience must be at least 0"),
    ({"init_std": -1.0}, r"init_std must be positive \(or none for the default\), got -1.0"),
    ({"init_std": 0.0}, "init_std must be positive"),
    ({"warmup_epochs": -2.0}, "warmup_epochs must be at least 0, got -2.0"),
    ({"loss": "margin", "margin": 0.0}, "margin must be positive with loss='margin', got 0.0"),
    ({"loss": "margin", "margin": -1.0}, "margin must be positive with loss='margin'"),
])
def test_out_of_range_config_values_are_errors(fields, message):
    with pytest.raises(RunError, match=message):
        TrainConfig(dataset="toy", **fields)


def test_zero_and_integer_debias_weights_are_valid():
    config = TrainConfig(dataset="toy", debias="kl", debias_weights={"gender": 0, "religion": 20})
    assert config.debias_weights == {"gender": 0, "religion": 20}
    assert TrainConfig.from_dict(config.to_dict()).debias_weights == {"gender": 0, "religion": 20}


def test_debiasing_an_attribute_the_graph_lacks_names_the_flag():
    from kgbias.data import load_dataset

    kg = load_dataset("toy")
    for config in (TrainConfig(dataset="toy", debias="kl", debias_weights={"astrology": 1.0}),
                   TrainConfig(dataset="toy", debias="kl", debias_weights={"gender": 0.0})):
        with pytest.raises(RunError, match="debias_weights|no sensitive attribute to debias"):
            training.make_debiasing(config, kg)


@pytest.mark.parametrize("option", ["progress", "name"])
def test_dataset_options_named_like_the_loaders_own_parameters_are_errors(option):
    with pytest.raises(DataError, match=f"TrainConfig.dataset_options: {option} is a parameter of load_dataset"):
        training.load_graph(TrainConfig(dataset="toy", dataset_options={option: 1}))


def test_kl_on_a_graph_without_paper_2s_attributes_is_an_error_not_basic_training():
    kg = random_graph()
    assert not set(kg.sensitive) & {"gender", "religion", "ethnicity", "nationality"}
    with pytest.raises(RunError, match="random: no sensitive attribute to debias"):
        training.make_debiasing(TrainConfig(dataset="random", debias="kl"), kg)


def test_removing_every_train_triple_is_an_error():
    from kgbias.graph import SensitiveRelation

    kg = random_graph()
    only_r0 = kg.train[kg.train[:, 1] == 0]
    kg = KnowledgeGraph(kg.name, kg.entities, kg.relations, only_r0, kg.valid, kg.test,
                        sensitive={"gender": SensitiveRelation("gender", "r0")})
    with pytest.raises(RunError, match="none are left to train on"):
        training.training_triples(TrainConfig(dataset="random", remove_sensitive=True), kg)


def test_empty_valid_and_test_splits_are_reported(tmp_path, caplog):
    kg = random_graph()
    empty = kg.valid[:0]
    kg = KnowledgeGraph(kg.name, kg.entities, kg.relations, kg.train, empty, empty)
    config = TrainConfig(**{**CONFIG.to_dict(), "n_epochs": 1})
    with caplog.at_level("WARNING", logger="kgbias.training"):
        run = train(config, kg=kg, run_dir=tmp_path / "run")
    messages = [r.getMessage() for r in caplog.records]
    assert "random has no valid triples: no validation MRR, no early stopping; the last epoch is used" in messages
    assert "random has no test triples: the test metrics will be NaN" in messages
    assert run.metrics["epoch_used"] == 1


def test_a_finished_run_with_old_without_sensitive_metrics_is_brought_up_to_date(tmp_path):
    """Runs from before profession was kept in paper 2's "(filtered)" test set get those metrics
    recomputed when they are reused, not retrained."""
    from kgbias.data import load_dataset

    kg = load_dataset("toy", n_people=150)
    config = TrainConfig(dataset="toy", dataset_options={"n_people": 150}, embedding_dim=8, n_negatives=20,
                         batch_size=256, n_epochs=2)
    run = train(config, kg=kg, run_dir=tmp_path / "run")
    assert run.metrics["test_without_sensitive_relations"] == ["gender", "nationality"]
    stored = json.loads((run.path / "metrics.json").read_text())
    old = {key: value for key, value in stored.items() if key != "test_without_sensitive_relations"}
    old["test_without_sensitive"] = {**old["test_without_sensitive"], "mrr_filtered": -1.0}
    (run.path / "metrics.json").write_text(json.dumps(old))
    reused = train(config, kg=kg, run_dir=tmp_path / "run")
    assert reused.metrics == stored
    assert json.loads((run.path / "metrics.json").read_text()) == stored
