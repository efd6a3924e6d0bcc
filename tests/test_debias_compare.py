"""Paper 2's comparison tables (kgbias.debias.compare): configs per method and known answers."""

from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from kgbias import TrainConfig
from kgbias.debias import compare
from kgbias.errors import DataError
from kgbias.evaluate import link_prediction
from kgbias.models import TransE


def test_method_configs_differ_from_basic_only_in_their_method():
    base = TrainConfig(dataset="toy", embedding_dim=8, debias_weights={"gender": 2.0})
    expected = {
        "Basic": {},
        "KL": {"debias": ("kl", "none")},
        "KL + Attr.": {"debias": ("kl", "none"), "attribute_vectors": (True, False), "whitelist": ("default", "")},
        "Bose": {"debias": ("bose", "none")},
        "Removed attributes": {"remove_sensitive": (True, False)},
    }
    for method, differences in expected.items():
        assert compare.method_config(base, method).differences(base) == differences
    assert len({compare.method_config(base, m).run_name() for m in compare.METHODS}) == len(compare.METHODS)
    assert [compare.method_of(compare.method_config(base, m)) for m in compare.METHODS] == list(compare.METHODS)
    with pytest.raises(ValueError, match="unknown method"):
        compare.method_config(base, "Magic")
    # kl_weights reach only the KL methods: the others keep their run folders
    weighted = {m: compare.method_config(base, m, kl_weights={"gender": 5}) for m in compare.METHODS}
    assert weighted["KL"].differences(compare.method_config(base, "KL")) == {"debias_weights": ({"gender": 5},
                                                                                             {"gender": 2.0})}
    for method in ("Basic", "Bose", "Removed attributes"):
        assert weighted[method] == compare.method_config(base, method)


def _bias_rows():
    rows = [("Basic", "gender", 2.0, 0.90, 0.75), ("Basic", "religion", 4.0, 0.50, 0.30),
            ("KL + Attr.", "gender", 0.1, 0.76, 0.75), ("KL + Attr.", "religion", 1.0, 0.40, 0.30)]
    return pd.DataFrame(rows, columns=["method", "attribute", "score_difference", "probe_accuracy", "most_frequent"])


def test_wide_puts_methods_down_attributes_across_and_most_frequent_first():
    table = compare.wide(_bias_rows(), "probe_accuracy")
    assert list(table.columns) == ["method", "gender", "religion"]  # paper order, not alphabetical
    assert list(table["method"]) == ["Most Frequent", "Basic", "KL + Attr."]
    assert table.iloc[0, 1:].tolist() == [0.75, 0.30]
    assert compare.wide(_bias_rows(), "score_difference").iloc[1, 1:].tolist() == [0.1, 1.0]


def test_claims_against_basic_by_hand():
    link = pd.DataFrame({"method": ["Basic", "KL + Attr."], "mrr": [0.30, 0.294]})
    claims = compare.claims(_bias_rows(), link).set_index("attribute")
    assert claims.loc["gender", "score_difference_vs_basic"] == pytest.approx(0.05)
    assert claims.loc["gender", "probe_minus_most_frequent"] == pytest.approx(0.01)
    assert claims.loc["religion", "score_difference_vs_basic"] == pytest.approx(0.25)
    assert claims.loc["gender", "mrr_vs_basic"] == pytest.approx(0.98)
    assert claims["met"].tolist() == [True, False]  # religion: 25% of Basic and 0.10 above the majority


def test_sweep_claims_per_weight_by_hand():
    link = pd.DataFrame({"method": ["Basic", "KL"], "mrr": [0.30, 0.20]})
    sweep = pd.DataFrame([("KL + Attr.", "gender", 0.1, 0.76, 0.75, 10.0, 0.294),
                          ("KL + Attr.", "gender", 0.4, 0.80, 0.75, 100.0, 0.270)],
                         columns=["method", "attribute", "score_difference", "probe_accuracy", "most_frequent",
                                  "weight", "mrr"])
    found = compare.sweep_claims(sweep, _bias_rows(), link)
    assert found["weight"].tolist() == [10.0, 100.0] and found["attribute"].tolist() == ["gender", "gender"]
    assert found["score_difference_vs_basic"].tolist() == pytest.approx([0.05, 0.2])
    assert found["probe_minus_most_frequent"].tolist() == pytest.approx([0.01, 0.05])
    assert found["mrr_vs_basic"].tolist() == pytest.approx([0.98, 0.9])
    assert found["met"].tolist() == [True, False]


def test_seconds_per_epoch_is_the_median_after_the_first_epoch():
    history = lambda seconds: SimpleNamespace(history=pd.DataFrame({"seconds": seconds}))  # noqa: E731
    frame = compare.seconds_per_epoch({"Basic": history([9.0, 1.0, 2.0, 3.0]), "KL": history([5.0, 4.0, 4.0, 100.0])})
    assert frame["seconds_per_epoch"].tolist() == [2.0, 4.0]
    assert frame["first_epoch"].tolist() == [9.0, 5.0]
    assert frame["vs_basic"].tolist() == [1.0, 2.0]


def test_attribute_scores_by_hand(tiny_kg):
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 2, comparator="dot")
    with torch.no_grad():
        model.entity.weight.zero_()
        model.relation.weight.zero_()
        model.entity.weight[tiny_kg.entity_id("ann")] = torch.tensor([1.0, 2.0])
        model.entity.weight[tiny_kg.entity_id("male")] = torch.tensor([1.0, 0.0])
        model.entity.weight[tiny_kg.entity_id("female")] = torch.tensor([0.0, 1.0])
        model.relation.weight[tiny_kg.relation_id("gender")] = torch.tensor([0.5, 0.0])
    frame = compare.attribute_scores(model, tiny_kg, "gender")
    ann = frame[frame["person"] == tiny_kg.entity_id("ann")].set_index("candidate")
    assert set(ann["true"]) == {"female"}
    assert ann.loc["male", "score"] == pytest.approx(1.5)   # <(1, 2) + (0.5, 0), (1, 0)>
    assert ann.loc["female", "score"] == pytest.approx(2.0)
    assert len(frame) == 2 * 6  # six people, two candidates each


def test_relation_mrr_change_of_a_model_against_itself_is_zero(tiny_kg):
    torch.manual_seed(0)
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4, comparator="dot")
    frame = compare.relation_mrr_change(model, model, tiny_kg, ["lives_in"], split="test", min_ranks=1)
    assert frame["relation"].tolist() == ["lives_in"]
    assert frame["change_percent"].tolist() == [0.0]
    assert compare.relation_mrr_change(model, model, tiny_kg, ["lives_in"], split="test", min_ranks=10).empty
    with pytest.raises(DataError, match="relations: 'lives_at' not relations of tiny"):
        compare.relation_mrr_change(model, model, tiny_kg, ["lives_in", "lives_at"], split="test", min_ranks=1)


def test_relation_mrr_change_is_the_second_models_gain_over_the_first(tiny_kg):
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4, comparator="dot"))
    mrr = [link_prediction(m, tiny_kg, "test", per_relation=True)[1].set_index("relation").loc["lives_in", "mrr_filtered"]
           for m in models]
    assert mrr[0] != mrr[1]  # not vacuous
    forward = compare.relation_mrr_change(models[0], models[1], tiny_kg, ["lives_in"], split="test", min_ranks=1)
    backward = compare.relation_mrr_change(models[1], models[0], tiny_kg, ["lives_in"], split="test", min_ranks=1)
    assert forward.loc[0, ["mrr_filtered_before", "mrr_filtered_after"]].tolist() == pytest.approx(mrr)
    assert forward.loc[0, "change_percent"] == pytest.approx(100 * (mrr[1] / mrr[0] - 1))
    assert backward.loc[0, "change_percent"] == pytest.approx(100 * (mrr[0] / mrr[1] - 1))


def _gender_model(kg, men, women):
    """2-D dot TransE: male (1, 0), female (0, 0), so the gender relation reads direction (1, 0)."""
    model = TransE(kg.n_entities, kg.n_relations, 2, comparator="dot")
    with torch.no_grad():
        model.entity.weight.zero_()
        model.relation.weight.zero_()
        model.entity.weight[kg.entity_id("male")] = torch.tensor([1.0, 0.0])
        for person in kg.humans.tolist():
            vector = men if kg.entities[person] in ("bob", "dan", "fred") else women
            model.entity.weight[person] = torch.tensor(vector)
    return model


def test_probe_without_reading_directions_sees_only_what_lies_elsewhere(tiny_kg):
    runs = {"Basic": SimpleNamespace(model=_gender_model(tiny_kg, (1.0, 1.0), (0.0, -1.0))),  # also along (0, 1)
            "KL": SimpleNamespace(model=_gender_model(tiny_kg, (1.0, 0.0), (-1.0, 0.0))),  # only along (1, 0)
            "Bose": SimpleNamespace(model=None),  # filtered embeddings: left out
            "l2": SimpleNamespace(model=TransE(tiny_kg.n_entities, tiny_kg.n_relations, 2, comparator="l2"))}
    bias = pd.DataFrame({"method": ["Basic", "KL", "l2"], "attribute": "gender", "probe_accuracy": [0.9, 0.8, 0.7]})
    frame = compare.probe_without_reading_directions(runs, tiny_kg, bias, n_epochs=300, validation_fraction=0)
    assert frame["method"].tolist() == ["Basic", "KL"]  # Bose and the distance model are skipped
    assert frame["n_directions"].tolist() == [1, 1]
    assert frame["probe_accuracy"].tolist() == [0.9, 0.8]  # as trained: from the bias table
    by_method = frame.set_index("method")
    # Basic keeps men at (0, 1) and women at (0, -1): the probe still tells them apart
    assert by_method.loc["Basic", "probe_without_directions"] == 1.0
    # KL's people all become (0, 0): nothing left, so the probe can only guess one class
    assert by_method.loc["KL", "probe_without_directions"] == by_method.loc["KL", "most_frequent"] < 1


def test_methods_must_be_known_and_include_basic():
    compare.check_methods(["Basic", "KL"])
    with pytest.raises(ValueError, match="methods must include 'Basic'"):
        compare.check_methods(["KL"])
    with pytest.raises(ValueError, match=r"unknown method\(s\) 'kl'; known: Basic, "):
        compare.check_methods(["Basic", "kl"])
