"""The command line, driven through main(argv) as a user would type it."""

import json
import re

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
    assert main(["-q", "train", *QUICK, "--debias", "kl", "--debias-weights", "gender=abc"]) == 2
    assert "debias_weights['gender'] must be a finite number of at least 0, got 'abc'" in capsys.readouterr().err


def test_data_list_and_describe_toy(capsys):
    assert main(["-q", "data", "list"]) == 0
    names = capsys.readouterr().out.split()
    assert "fb15k-237" in names and "toy" in names
    assert main(["-q", "data", "describe", "toy"]) == 0
    out = capsys.readouterr().out
    assert '"n_humans": 600' in out and "gender: top values" in out
    assert main(["-q", "data", "describe", "toy", "--dataset-options", "n_people=150"]) == 0
    assert '"n_humans": 150' in capsys.readouterr().out


def _own_graph(folder):
    """A user's graph in their own files: 40 people, gender, a profession skewed by gender."""
    def lines(rows):
        return "".join("\t".join(row) + "\n" for row in rows)

    facts = [(f"p{i}", "has_gender", "m" if i % 3 else "f") for i in range(40)]
    facts += [(f"p{i}", "works_as", "nurse" if i % 3 == 0 else f"job{i % 4}") for i in range(40)]
    lives = [(f"p{i}", "lives_in", f"city{i % 5}") for i in range(40)]
    (folder / "facts.tsv").write_text(lines(facts + lives[10:]))
    (folder / "dev.tsv").write_text(lines(lives[:5]))
    (folder / "eval.tsv").write_text(lines(lives[5:10]))
    (folder / "graph.toml").write_text(
        'name = "people"\n[files]\ntrain = "facts.tsv"\nvalid = "dev.tsv"\ntest = "eval.tsv"\n'
        '[sensitive]\ngender = "has_gender"\nprofession = "works_as"\n[values.gender]\nmale = "m"\nfemale = "f"\n')
    (folder / "whitelist.tsv").write_text("gender\tprofession\tnurse\n")
    return folder / "graph.toml"


def test_own_graph_debiased_from_a_schema_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KGBIAS_RESULTS", str(tmp_path / "results"))
    schema = _own_graph(tmp_path)
    flags = ["--dataset", str(schema), "--embedding-dim", "8", "--n-negatives", "10", "--batch-size", "64",
             "--n-epochs", "2", "--debias", "kl", "--debias-weights", "gender=1",
             "--attribute-vectors", "true", "--whitelist", str(tmp_path / "whitelist.tsv")]
    assert main(["-q", "train", *flags]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["run"].startswith(str(tmp_path / "results" / "transe-dot-graph-d8-s0-"))
    assert 0 < first["test"]["mrr_filtered"] <= 1
    with open(tmp_path / "facts.tsv", "a") as facts:  # edited data: another run folder, not a stale reuse
        facts.write("p0\tlives_in\tcity4\n")
    assert main(["-q", "train", *flags]) == 0
    assert json.loads(capsys.readouterr().out)["run"] != first["run"]
    (tmp_path / "dev.tsv").unlink()
    assert main(["-q", "train", *flags]) == 2
    assert "dev.tsv" in capsys.readouterr().err


def test_ctrl_c_says_how_to_resume(monkeypatch, capsys):
    import kgbias.training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(kgbias.training, "train", interrupted)
    assert main(["-q", "train", *QUICK]) == 130
    assert capsys.readouterr().err == "kgbias: interrupted; run the same command again to resume\n"


def test_evaluate_elsewhere_names_the_relative_schema_path(tmp_path, capsys, monkeypatch):
    schema = _own_graph(tmp_path)
    monkeypatch.chdir(tmp_path)
    flags = ["--dataset", schema.name, "--embedding-dim", "8", "--n-negatives", "10", "--batch-size", "64",
             "--n-epochs", "1", "--run-dir", str(tmp_path / "run")]
    assert main(["-q", "train", *flags]) == 0
    capsys.readouterr()
    assert main(["-q", "evaluate", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path.parent)
    assert main(["-q", "evaluate", str(tmp_path / "run")]) == 2
    assert (f"dataset '{schema.name}' is a path relative to the directory the run was trained in"
            in capsys.readouterr().err)


@pytest.mark.parametrize("flags, message", [
    (["--model", "xyz"], "TrainConfig.model must be transe or complex, got 'xyz'"),
    (["--comparator", "cosine"], "TrainConfig.comparator of transe must be dot or l1 or l2, got 'cosine'"),
    (["--model", "complex", "--comparator", "l2"], "TrainConfig.comparator of complex must be dot, got 'l2'"),
    (["--device", "nodevice"], "--device nodevice: not usable here"),
])
def test_bad_model_comparator_or_device_is_one_line_before_training(flags, message, tmp_path, capsys):
    assert main(["-q", "train", *QUICK, *flags, "--run-dir", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_config_knows_the_models_and_comparators():
    from kgbias.config import MODEL_COMPARATORS
    from kgbias.models import COMPARATORS, MODELS

    assert set(MODEL_COMPARATORS) == set(MODELS)
    assert MODEL_COMPARATORS["transe"] == COMPARATORS


def test_help_examples_are_the_readmes_commands():
    """`kgbias train --help`'s examples are commands the README shows, spelled the same."""
    import re

    from kgbias import paths
    from kgbias.cli import EXAMPLES

    readme = (paths.ROOT / "README.md").read_text()
    commands = [re.split(r"\s{2,}", line.strip())[0] for line in EXAMPLES.splitlines()[1:] if line.strip()]
    assert len(commands) >= 8
    assert [c for c in commands if c not in readme] == []


def test_data_fetch_of_toy_or_a_schema_says_there_is_nothing_to_fetch(tmp_path, capsys):
    assert main(["-q", "data", "fetch", "toy"]) == 2
    assert capsys.readouterr().err == ("kgbias: error: toy: generated by kgbias (kgbias.data.toy), "
                                       "so there is nothing to fetch\n")
    schema = _own_graph(tmp_path)
    assert main(["-q", "data", "fetch", str(schema)]) == 2
    assert capsys.readouterr().err == (f"kgbias: error: {schema}: a graph of your own is read from the local "
                                       "files its schema names, so there is nothing to fetch\n")


@pytest.mark.parametrize("command", [["data", "describe", "toy"], ["train", *QUICK]])
@pytest.mark.parametrize("option", ["progress", "name"])
def test_dataset_options_named_like_load_datasets_parameters_are_refused(command, option, tmp_path, capsys):
    run_dir = ["--run-dir", str(tmp_path / "run")] if command[0] == "train" else []
    assert main(["-q", *command, "--dataset-options", f"{option}=1", *run_dir]) == 2
    assert (f"kgbias: error: --dataset-options: {option} is a parameter of load_dataset itself, not dataset "
            "options" in capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_run_dir_that_is_a_file_or_inside_one_is_one_line(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("not a run\n")
    assert main(["-q", "train", *QUICK, "--run-dir", str(taken)]) == 2
    assert capsys.readouterr().err == (f"kgbias: error: --run-dir {taken}: exists and is not a folder; "
                                       "choose another run folder\n")
    assert main(["-q", "train", *QUICK, "--run-dir", str(taken / "sub" / "run")]) == 2
    assert (f"--run-dir {taken}/sub/run: is inside {taken}, which exists and is not a folder"
            in capsys.readouterr().err)
    assert taken.read_text() == "not a run\n"


def test_default_whitelist_for_an_absolute_schema_path_is_one_line(tmp_path, capsys):
    schema = _own_graph(tmp_path)
    assert schema.is_absolute()
    flags = ["--dataset", str(schema), "--embedding-dim", "8", "--n-negatives", "10", "--n-epochs", "1",
             "--debias", "kl", "--attribute-vectors", "true", "--whitelist", "default",
             "--run-dir", str(tmp_path / "run")]
    assert main(["-q", "train", *flags]) == 2
    assert re.search(rf"no shipped whitelist 'default' for dataset '{re.escape(str(schema))}' in \S+ "
                     r"\(shipped: none\)", capsys.readouterr().err)
    assert not (tmp_path / "run").exists()
