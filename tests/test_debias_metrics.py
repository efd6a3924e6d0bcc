"""Paper 2's bias measures (Fisher et al. 2020b, §4.3): known answers, the probe's split, and
their verdict on Basic vs KL training of the toy graph."""

import dataclasses
import logging
import math

import pytest
import torch

from kgbias import TrainConfig, train
from kgbias.data.toy import toy_kg
from kgbias.errors import DataError
from kgbias.graph import SensitiveRelation
from kgbias.debias.metrics import (bias_summary, probe_accuracy, probe_labels, probe_margins, reading_directions,
                                   score_difference, score_differences, without_reading_directions)
from kgbias.models import ComplEx, TransE


pytestmark = pytest.mark.usefixtures("one_thread")


def hand_set_transe(kg, vectors: dict[str, tuple], relations: dict[str, tuple] = {}):
    """2-D dot TransE with every entity/relation zero except the given rows."""
    model = TransE(kg.n_entities, kg.n_relations, 2, comparator="dot")
    with torch.no_grad():
        model.entity.weight.zero_()
        model.relation.weight.zero_()
        for name, vector in vectors.items():
            model.entity.weight[kg.entity_id(name)] = torch.tensor(vector, dtype=torch.float)
        for name, vector in relations.items():
            model.relation.weight[kg.relation_id(name)] = torch.tensor(vector, dtype=torch.float)
    return model


PEOPLE = {"ann": (0, 2), "bob": (3, 0), "cat": (1, 1), "dan": (0, 1), "eve": (0, 0), "fred": (2, 1)}


def test_score_difference_by_hand_for_gender(tiny_kg):
    # score = <e_p + r, e_v>, male = (1, 0), female = (0, 1), r_gender = (1, 0):
    # true - other = (p_x + 1) - p_y for men, p_y - (p_x + 1) for women
    model = hand_set_transe(tiny_kg, {**PEOPLE, "male": (1, 0), "female": (0, 1)}, {"gender": (1, 0)})
    frame = score_differences(model, tiny_kg, "gender")
    by_person = {tiny_kg.entities[p]: d for p, d in zip(frame["person"], frame["difference"])}
    assert by_person == pytest.approx({"ann": 1, "bob": 4, "cat": -1, "dan": 0, "eve": -1, "fred": 2})
    assert frame.attrs["n_values"] == 2 and frame.attrs["n_skipped"] == 0
    assert score_difference(model, tiny_kg, "gender") == pytest.approx(5 / 6)


def test_score_difference_averaged_over_values_weighs_each_value_once(tiny_kg):
    # ann becomes a man: men ann -1 (0 + 1 - 2), bob 4, dan 0, fred 2; women cat -1, eve -1
    tiny_kg.train[0, 2] = tiny_kg.entity_id("male")
    model = hand_set_transe(tiny_kg, {**PEOPLE, "male": (1, 0), "female": (0, 1)}, {"gender": (1, 0)})
    assert score_difference(model, tiny_kg, "gender") == pytest.approx(3 / 6)
    assert score_difference(model, tiny_kg, "gender", average="values") == pytest.approx((5 / 4 - 1) / 2)
    # the relation's offset (1, 0) raises every man's difference by 1 and lowers every woman's
    # by 1: over pairs that leaves (4 - 2) / 6 = 1/3 behind, over values nothing
    no_offset = hand_set_transe(tiny_kg, {**PEOPLE, "male": (1, 0), "female": (0, 1)})
    offset_only = score_difference(model, tiny_kg, "gender") - score_difference(no_offset, tiny_kg, "gender")
    assert offset_only == pytest.approx(1 / 3)
    assert score_difference(model, tiny_kg, "gender", average="values") == pytest.approx(
        score_difference(no_offset, tiny_kg, "gender", average="values"))
    with pytest.raises(ValueError, match="average must be"):
        score_difference(model, tiny_kg, "gender", average="people")


def test_score_difference_averages_the_other_values_and_skips_values_outside_the_top(tiny_kg):
    # professions: nurse (ann, eve), doctor (cat, dan), pilot (bob, fred); all tied at 2, so the
    # top list breaks ties by id: nurse, doctor, pilot
    vectors = {**PEOPLE, "nurse": (1, 0), "doctor": (0, 1), "pilot": (1, 1)}
    model = hand_set_transe(tiny_kg, vectors)
    # all three: true minus the mean of the two others
    # ann 0 - (2+2)/2 = -2; bob 3 - (3+0)/2 = 1.5; cat 1 - (1+2)/2 = -0.5;
    # dan 1 - (0+1)/2 = 0.5; eve 0; fred 3 - (2+1)/2 = 1.5
    assert score_difference(model, tiny_kg, "profession", n_values=3) == pytest.approx(1 / 6)
    # top 2 = nurse, doctor: bob and fred (pilot) are skipped, so pilot's vector cannot matter
    model = hand_set_transe(tiny_kg, {**vectors, "pilot": (50, 50)})
    frame = score_differences(model, tiny_kg, "profession", n_values=2)
    assert sorted(tiny_kg.entities[p] for p in frame["person"]) == ["ann", "cat", "dan", "eve"]
    assert frame.attrs["n_skipped"] == 2 and frame.attrs["n_pairs"] == 4
    # ann -2, cat 0, dan 1, eve 0
    assert score_difference(model, tiny_kg, "profession", n_values=2) == pytest.approx(-0.25)


def with_extra_train_triple(kg, head, relation, tail):
    extra = torch.tensor([[kg.entity_id(head), kg.relation_id(relation), kg.entity_id(tail)]])
    return dataclasses.replace(kg, train=torch.cat([kg.train, extra]))


def test_a_person_with_two_values_counts_once_per_value_and_gets_the_most_frequent_label(tiny_kg):
    kg = with_extra_train_triple(tiny_kg, "ann", "profession", "doctor")  # doctor: 3 people now
    model = hand_set_transe(kg, {**PEOPLE, "nurse": (1, 0), "doctor": (0, 1), "pilot": (1, 1)})
    frame = score_differences(model, kg, "profession", n_values=3)
    ann = frame[frame["person"] == kg.entity_id("ann")].set_index("value")["difference"]
    # ann = (0, 2) scores nurse 0, doctor 2, pilot 2
    assert ann[kg.entity_id("nurse")] == pytest.approx(0 - (2 + 2) / 2)
    assert ann[kg.entity_id("doctor")] == pytest.approx(2 - (0 + 2) / 2)
    people, labels, n_dropped = probe_labels(kg, "profession", n_values=3)
    label_of = dict(zip(people.tolist(), labels.tolist()))
    assert label_of[kg.entity_id("ann")] == 0  # doctor, the most frequent, is first in the top list
    assert len(people) == 6 and n_dropped == 0
    people, labels, n_dropped = probe_labels(kg, "profession", n_values=2)  # pilot is out
    assert n_dropped == 2 and kg.entity_id("bob") not in people.tolist()


def test_score_difference_is_zero_when_male_and_female_are_the_same_vector(tiny_kg):
    torch.manual_seed(0)
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4, init_std=1.0)
    with torch.no_grad():
        model.entity.weight[tiny_kg.value_id("gender", "female")] = model.entity.weight[
            tiny_kg.value_id("gender", "male")]
    frame = score_differences(model, tiny_kg, "gender")
    assert len(frame) == 6
    assert frame["difference"].abs().max() == 0.0


# --- the probe, on planted embeddings of the toy graph --------------------------------------------

@pytest.fixture(scope="module")
def toy():
    return toy_kg()


def noise_model(kg, seed=0, embedding_dim=8):
    torch.manual_seed(seed)
    return TransE(kg.n_entities, kg.n_relations, embedding_dim, init_std=1.0)


def plant_gender(model, kg, strength=3.0):
    """Add +strength (men) / -strength (women) to dimension 0 of every person's embedding."""
    pairs = kg.attribute_pairs("gender", ("train",))
    sign = torch.where(pairs[:, 1] == kg.value_id("gender", "male"), 1.0, -1.0)
    with torch.no_grad():
        model.entity.weight[pairs[:, 0], 0] += strength * sign
    return model


def test_probe_finds_a_planted_linear_gender_signal(toy):
    result = probe_accuracy(plant_gender(noise_model(toy), toy), toy, "gender", n_epochs=50)
    assert result["n_classes"] == 2 and result["n_dropped"] == 0
    assert result["accuracy"] >= 0.97
    assert result["most_frequent"] < 0.8  # toy graph: 30% women


def test_standardized_probe_ignores_the_embeddings_scale_and_a_raw_one_does_not(toy):
    """Scaled down 10^4 times, the planted signal is the same for the standardised probe (same
    features), while a probe on the raw embeddings cannot move its first layer far enough to read it
    and falls back to about the class prior."""
    planted = probe_accuracy(plant_gender(noise_model(toy), toy), toy, "gender", n_epochs=50)
    tiny = plant_gender(noise_model(toy), toy)
    with torch.no_grad():
        tiny.entity.weight.mul_(1e-4)
    assert probe_accuracy(tiny, toy, "gender", n_epochs=50)["accuracy"] == pytest.approx(planted["accuracy"], abs=0.02)
    raw = probe_accuracy(tiny, toy, "gender", n_epochs=50, standardize=False)
    assert raw["accuracy"] <= raw["most_frequent"] + 0.05 < planted["accuracy"]


def test_probe_on_noise_is_no_better_than_the_majority_class(toy):
    for attribute in ("gender", "nationality"):
        result = probe_accuracy(noise_model(toy), toy, attribute, n_epochs=50)
        assert abs(result["accuracy"] - result["most_frequent"]) <= 0.05, (attribute, result)


def test_probe_splits_people_and_never_touches_the_model_or_the_global_rng(toy):
    model = noise_model(toy)
    weights = model.entity.weight.detach().clone()
    rng_state = torch.get_rng_state()
    result = probe_accuracy(model, toy, "gender", n_epochs=2)
    assert torch.equal(model.entity.weight, weights)
    assert torch.equal(torch.get_rng_state(), rng_state)
    train_people, test_people = set(result["train_people"].tolist()), set(result["test_people"].tolist())
    assert not train_people & test_people
    assert train_people | test_people == set(probe_labels(toy, "gender")[0].tolist())
    assert (result["n_train"], result["n_test"]) == (480, 120)


def test_probe_is_deterministic_under_a_seed(toy):
    model = plant_gender(noise_model(toy), toy, strength=0.5)  # a weak signal: accuracy is not trivially 1
    first, again = (probe_accuracy(model, toy, "gender", n_epochs=10, seed=3) for _ in range(2))
    other = probe_accuracy(model, toy, "gender", n_epochs=10, seed=4)
    assert first["accuracy"] == again["accuracy"]
    assert torch.equal(first["test_people"], again["test_people"])
    assert not torch.equal(first["test_people"], other["test_people"])


def test_bias_summary_has_a_row_per_attribute_the_graph_has(toy):
    model = plant_gender(noise_model(toy), toy)
    summary = bias_summary(model, toy, n_epochs=20)
    assert summary["attribute"].tolist() == ["gender", "nationality"]  # no religion, ethnicity in toy
    gender = summary.set_index("attribute").loc["gender"]
    assert gender["score_difference"] == pytest.approx(score_difference(model, toy, "gender"))
    assert gender["n_values"] == 2 and gender["n_pairs"] == 600 and gender["n_pairs_skipped"] == 0
    assert gender["probe_accuracy"] >= 0.97
    assert summary.set_index("attribute").loc["nationality", "n_values"] == 5


def test_bias_summary_refuses_a_name_that_is_no_attribute(toy, caplog):
    model = noise_model(toy)
    with pytest.raises(DataError, match="attributes: 'gendr' not known; attributes are gender, profession"):
        bias_summary(model, toy, ["gendr", "nationality"], n_epochs=1)
    with caplog.at_level("INFO", logger="kgbias.debias.metrics"):
        summary = bias_summary(model, toy, ["religion", "nationality"], n_epochs=1)
    assert summary["attribute"].tolist() == ["nationality"]  # toy has no religion: left out, and said so
    assert f"{toy.name} has no religion: left out" in [r.getMessage() for r in caplog.records]



def with_one_valued_attribute(kg):
    """``kg`` plus a "religion" carried by lives_in, whose only train value is paris."""
    kg = with_extra_train_triple(kg, "ann", "lives_in", "paris")
    return dataclasses.replace(kg, sensitive={**kg.sensitive, "religion": SensitiveRelation("religion", "lives_in")})


def test_one_valued_attribute_raises_in_each_measure(tiny_kg):
    kg = with_one_valued_attribute(tiny_kg)
    model = noise_model(kg)
    with pytest.raises(DataError, match="'religion' has 1 value"):
        score_difference(model, kg, "religion")
    with pytest.raises(DataError, match="'religion' has 1 value"):  # was an accuracy of 1.0 with one class
        probe_accuracy(model, kg, "religion", n_epochs=2)


def test_one_valued_attribute_is_a_nan_row_in_the_summary(tiny_kg, caplog):
    kg = with_one_valued_attribute(tiny_kg)
    model = noise_model(kg)
    with caplog.at_level(logging.WARNING, logger="kgbias.debias.metrics"):
        summary = bias_summary(model, kg, attributes=("gender", "religion"), n_epochs=2).set_index("attribute")
    assert summary.index.tolist() == ["gender", "religion"]
    assert summary.loc["gender", "score_difference"] == pytest.approx(score_difference(model, kg, "gender"))
    assert summary.loc["gender", "n_pairs"] == 6
    assert summary.loc["religion", "n_values"] == 1
    assert all(math.isnan(value) for value in summary.loc["religion"].drop("n_values"))
    assert any(r.levelno == logging.WARNING and "religion" in r.getMessage() for r in caplog.records)


# --- end to end: Basic vs KL on the toy graph --------------------------------------------------------

TOY_RUN = dict(dataset="toy", embedding_dim=16, n_negatives=50, batch_size=256, n_epochs=25, valid_every=0)


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """Basic, KL with the paper's gender weight 1, and KL with weight 10; measured once."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("toy_runs")
    measured = {}
    kl = {"debias": "kl", "kl_reduction": "mean"}  # weights relative to the mean L_CE (x 512 in paper units)
    for name, extra in (("basic", {}), ("kl", {**kl, "debias_weights": {"gender": 1.0}}),
                        ("kl10", {**kl, "debias_weights": {"gender": 10.0}})):
        run = train(TrainConfig(**TOY_RUN, **extra), run_dir=root / name)
        measured[name] = {"score_difference": score_difference(run.model, run.kg, "gender"),
                          **probe_accuracy(run.model, run.kg, "gender")}
    torch.set_num_threads(previous)
    return measured


def excess(result):
    return result["accuracy"] - result["most_frequent"]


def test_basic_training_learns_gender(toy_runs):
    basic = toy_runs["basic"]
    assert basic["score_difference"] > 0.5  # measured: 1.09
    assert excess(basic) > 0.05  # measured: 0.858 vs 0.750


def test_kl_training_removes_the_score_difference(toy_runs):
    # measured: 0.064 vs 1.093
    assert abs(toy_runs["kl"]["score_difference"]) < 0.1 * toy_runs["basic"]["score_difference"]


@pytest.mark.xfail(strict=True, reason="measured: the KL loss at the paper's gender weight 1 equalises the "
                   "male/female scores but leaves gender readable (probe 0.900 vs Basic 0.858, most "
                   "frequent 0.750), e.g. through the planted gender-profession skew")
def test_kl_training_at_weight_1_brings_the_probe_towards_the_majority_class(toy_runs):
    assert excess(toy_runs["kl"]) < excess(toy_runs["basic"])


def test_stronger_kl_training_brings_the_probe_towards_the_majority_class(toy_runs):
    # measured at weight 10: probe 0.783 vs most frequent 0.750 (Basic 0.858), score difference
    # -0.21 (it overshoots), test MRR 0.154 (Basic 0.222)
    assert excess(toy_runs["kl10"]) < 0.5 * excess(toy_runs["basic"])


def test_reading_directions_by_hand_for_gender(tiny_kg):
    # score = <e_p + r, e_v>: male - female = <e_p + r, (1, -1)>, so the only direction read is (1, -1)
    model = hand_set_transe(tiny_kg, {**PEOPLE, "male": (1, 0), "female": (0, 1), "paris": (5, 1)}, {"gender": (1, 0)})
    directions = reading_directions(model, tiny_kg, "gender")
    assert directions.shape == (1, 2)
    assert directions[0].abs().tolist() == pytest.approx([2 ** -0.5] * 2)
    assert float(directions[0, 0] * directions[0, 1]) < 0
    projected = without_reading_directions(model, tiny_kg, "gender")
    weight = projected.entity.weight
    # ann (0, 2) has component -sqrt(2) along (1, -1)/sqrt(2): (0, 2) + (1, -1) = (1, 1); bob (3, 0): (1.5, 1.5)
    assert weight[tiny_kg.entity_id("ann")].tolist() == pytest.approx([1, 1])
    assert weight[tiny_kg.entity_id("bob")].tolist() == pytest.approx([1.5, 1.5])
    assert weight[tiny_kg.entity_id("paris")].tolist() == [5, 1]  # not a person: unchanged
    assert model.entity.weight[tiny_kg.entity_id("ann")].tolist() == [0, 2]  # the original is untouched
    # what is left of male - female is <r, (1, -1)> = 1 for everyone: +1 for men, -1 for women
    frame = score_differences(projected, tiny_kg, "gender")
    by_person = {tiny_kg.entities[p]: d for p, d in zip(frame["person"], frame["difference"])}
    assert by_person == pytest.approx({"ann": -1, "bob": 1, "cat": -1, "dan": 1, "eve": -1, "fred": 1})


def test_reading_directions_span_every_difference_of_values(tiny_kg):
    # nurse (1, 0), doctor (0, 1), pilot (1, 1): doctor - nurse and pilot - nurse span the plane
    model = hand_set_transe(tiny_kg, {**PEOPLE, "nurse": (1, 0), "doctor": (0, 1), "pilot": (1, 1)})
    assert reading_directions(model, tiny_kg, "profession", n_values=3).shape == (2, 2)
    projected = without_reading_directions(model, tiny_kg, "profession", n_values=3)
    assert projected.entity.weight[tiny_kg.humans].abs().max() < 1e-6
    # the top 2 are nurse and doctor: one direction, (-1, 1) / sqrt(2)
    directions = reading_directions(model, tiny_kg, "profession", n_values=2)
    assert directions.shape == (1, 2)
    assert directions[0].abs().tolist() == pytest.approx([2 ** -0.5] * 2)


def test_without_reading_directions_for_complex_leaves_one_difference_for_everyone(tiny_kg):
    torch.manual_seed(0)
    model = ComplEx(tiny_kg.n_entities, tiny_kg.n_relations, 3)
    with torch.no_grad():
        model.entity.weight.normal_()
        model.relation.weight.normal_()
    projected = without_reading_directions(model, tiny_kg, "gender")
    male, female = tiny_kg.entity_id("male"), tiny_kg.entity_id("female")
    gender = torch.full((6,), tiny_kg.attribute_relation("gender"))
    scores = projected.score_tails(tiny_kg.humans, gender)
    gaps = scores[:, male] - scores[:, female]
    assert gaps.max() - gaps.min() < 1e-5  # no person's own embedding moves it any more
    before = model.score_tails(tiny_kg.humans, gender)
    assert (before[:, male] - before[:, female]).std() > 0.1


def test_reading_directions_need_a_score_affine_in_the_person(tiny_kg):
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4, comparator="l2")
    with torch.no_grad():
        model.entity.weight.normal_()
    with pytest.raises(ValueError, match="not affine in the person's embedding"):
        reading_directions(model, tiny_kg, "gender")


def test_probe_margins_are_each_seeds_own_probe(toy):
    model = plant_gender(noise_model(toy), toy, strength=0.5)
    table = probe_margins(model, toy, "gender", seeds=[0, 3], n_epochs=5)
    assert table["seed"].tolist() == [0, 3]
    for seed, row in zip([0, 3], table.itertuples()):
        alone = probe_accuracy(model, toy, "gender", seed=seed, n_epochs=5)
        assert (row.accuracy, row.most_frequent) == (alone["accuracy"], alone["most_frequent"])
        assert row.margin == alone["accuracy"] - alone["most_frequent"]
    # another seed is another split: the majority rate over its test people moves with it
    assert probe_margins(model, toy, "gender", seeds=range(4), n_epochs=1)["most_frequent"].nunique() > 1
