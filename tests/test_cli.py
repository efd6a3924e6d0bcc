"""The command line, driven through main(argv) as a user would type it."""

import json

import pytest

from kgbias.cli import build_parser, config_from_args, main
from kgbias.config import TrainConfig

QUICK = ["--dataset", "toy", "--embedding-dim", "8", "--n-negatives", "20", "--batch-size", "512",
         "--n-epochs", "2"]


def test_flags_map_onto_config_fields():
    args = build_parser().parse_args(["train", *QUICK, "--dataset-options", "skew=0", "--init-std", "none"])
    config = config_from_args(args)
    assert config == TrainConfig(dataset="toy", embedding_dim=8, n_negatives=20, batch_size=512,
                                 n_epochs=2, dataset_options={"skew": 0}, init_std=None)


def test_train_then_evaluate(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["-q", "train", *QUICK, "--run-dir", str(run_dir)]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["run"] == str(run_dir)
    assert main(["-q", "evaluate", str(run_dir)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["mrr_filtered"] == pytest.approx(trained["test"]["mrr_filtered"])
    assert main(["-q", "evaluate", str(run_dir), "--raw", "--ties", "pessimistic"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["mrr_raw"] <= evaluated["mrr_filtered"]


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["-q", "evaluate", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["-q", "data", "describe", "no-such-dataset"]) == 2
    assert "no-such-dataset" in capsys.readouterr().err
    assert main(["-q", "train", *QUICK, "--dataset-options", "skew"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_data_list_and_describe_toy(capsys):
    assert main(["-q", "data", "list"]) == 0
    names = capsys.readouterr().out.split()
    assert "fb15k-237" in names and "toy" in names
    assert main(["-q", "data", "describe", "toy"]) == 0
    out = capsys.readouterr().out
    assert '"n_humans": 600' in out and "gender: top values" in out
