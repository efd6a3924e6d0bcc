"""Known answers for the bias measure (Fisher et al. 2020a, §3.1-3.2) on untrained random models."""

import dataclasses
import math

import pandas as pd
import pytest
import torch

from kgbias.bias import (bias_table, count_skew_correlation, gradient_bias, pairwise_bias, spearman)
from kgbias.bias.measure import resolve_people
from kgbias.data import toy_kg
from kgbias.errors import DataError
from kgbias.models import ComplEx, TransE


def random_model(kg, model="transe", comparator="dot", embedding_dim=8, seed=0):
    torch.manual_seed(seed)
    model_class = ComplEx if model == "complex" else TransE
    model = model_class(kg.n_entities, kg.n_relations, embedding_dim, comparator=comparator)
    with torch.no_grad():  # unit-scale weights: the default 1e-3 init makes every bias tiny
        model.entity.weight.normal_()
        model.relation.weight.normal_()
    return model


def loop_bias(model, kg, sensitive, value_a, other_values, target, alpha):
    """Reference: one person at a time, one profession at a time, with pairwise scores only."""
    weight = model.entity.weight.detach().double()
    relation_s = torch.tensor([kg.attribute_relation(sensitive)])
    relation_p = torch.tensor([kg.attribute_relation(target)])
    a = kg.value_id(sensitive, value_a)
    others = [kg.value_id(sensitive, v) for v in other_values]
    people = torch.unique(kg.attribute_pairs(sensitive)[:, 0]).tolist()
    targets = torch.unique(kg.attribute_pairs(target)[:, 1]).tolist()
    total = {p: 0.0 for p in targets}
    for j in people:
        e_j = weight[j].clone().unsqueeze(0).requires_grad_(True)
        def score(value):
            return model.score_embeddings(e_j, relation_s, weight[value].unsqueeze(0))

        margin = score(a) - sum(score(v) for v in others) / len(others)
        (gradient,) = torch.autograd.grad(margin.sum(), e_j)
        stepped = e_j.detach() + alpha * gradient
        for p in targets:
            e_p = weight[p].unsqueeze(0)
            after = model.score_embeddings(stepped, relation_p, e_p)
            total[p] += (after - model.score_embeddings(e_j.detach(), relation_p, e_p)).item()
    return {p: value / len(people) for p, value in total.items()}


def by_target(frame):
    return dict(zip(frame["target"].tolist(), frame["bias"].tolist()))


def test_dot_transe_equals_closed_form_for_every_person(tiny_kg):
    model = random_model(tiny_kg)
    alpha = 0.01
    frame = gradient_bias(model, tiny_kg, alpha=alpha, min_count=0)
    weight = model.entity.weight.detach().double()
    direction = weight[tiny_kg.value_id("gender", "male")] - weight[tiny_kg.value_id("gender", "female")]
    assert len(frame) == 3
    for target, bias in by_target(frame).items():
        expected = alpha * float(direction @ weight[target])
        assert bias == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # dot TransE is linear in the person: the per-person change is the same for everybody
    single = [by_target(gradient_bias(model, tiny_kg, alpha=alpha, min_count=0, people=torch.tensor([j])))
              for j in range(6)]
    for result in single[1:]:
        for target, bias in result.items():
            assert bias == pytest.approx(single[0][target], rel=1e-9, abs=1e-12)


def test_dot_transe_is_linear_in_alpha(tiny_kg):
    model = random_model(tiny_kg)
    small = by_target(gradient_bias(model, tiny_kg, alpha=0.01, min_count=0))
    large = by_target(gradient_bias(model, tiny_kg, alpha=0.5, min_count=0))
    for target in small:
        assert large[target] == pytest.approx(50 * small[target], rel=1e-4)


@pytest.mark.parametrize("model_name, comparator", [("transe", "l2"), ("transe", "l1"), ("complex", "dot")])
def test_matches_per_person_loop(tiny_kg, model_name, comparator):
    model = random_model(tiny_kg, model_name, comparator)
    frame = gradient_bias(model, tiny_kg, alpha=0.05, min_count=0)
    expected = loop_bias(model, tiny_kg, "gender", "male", ["female"], "profession", alpha=0.05)
    assert set(by_target(frame)) == set(expected)
    for target, bias in by_target(frame).items():
        assert bias == pytest.approx(expected[target], rel=1e-7, abs=1e-10)
    assert frame["bias"].abs().max() > 1e-3  # the check is not vacuous


def test_distance_transe_depends_on_the_person(tiny_kg):
    model = random_model(tiny_kg, comparator="l2")
    first = by_target(gradient_bias(model, tiny_kg, min_count=0, people=torch.tensor([0])))
    second = by_target(gradient_bias(model, tiny_kg, min_count=0, people=torch.tensor([1])))
    assert max(abs(first[t] - second[t]) for t in first) > 1e-4


def test_one_vs_rest_matches_loop_on_a_multi_valued_attribute():
    kg = toy_kg(n_people=40, n_professions=5, seed=1)
    model = random_model(kg, comparator="l2")
    others = [v for v in kg.attribute_counts("nationality").index if v != "country_0"]
    frame = gradient_bias(model, kg, sensitive="nationality", value_a="country_0", one_vs_rest=True,
                          min_count=0)
    expected = loop_bias(model, kg, "nationality", "country_0", others, "profession", alpha=0.01)
    assert set(by_target(frame)) == set(expected) and len(expected) == 5  # every profession, not vacuous
    for target, bias in by_target(frame).items():
        assert bias == pytest.approx(expected[target], rel=1e-7, abs=1e-10)
    assert frame.attrs["value_b"] == "rest"
    assert (frame["count_a"] + frame["count_b"] == frame["count"]).all()  # one nationality each


def test_one_vs_rest_on_two_values_is_the_pairwise_measure(tiny_kg):
    model = random_model(tiny_kg, comparator="l2")
    pair = by_target(gradient_bias(model, tiny_kg, min_count=0))
    rest = by_target(gradient_bias(model, tiny_kg, min_count=0, one_vs_rest=True))
    for target in pair:
        assert rest[target] == pytest.approx(pair[target], rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("model_name, comparator", [("transe", "dot"), ("transe", "l2"), ("complex", "dot")])
def test_zero_when_the_two_values_coincide(tiny_kg, model_name, comparator):
    model = random_model(tiny_kg, model_name, comparator)
    with torch.no_grad():
        male, female = tiny_kg.value_id("gender", "male"), tiny_kg.value_id("gender", "female")
        model.entity.weight[female] = model.entity.weight[male]
    frame = gradient_bias(model, tiny_kg, min_count=0)
    assert frame["bias"].abs().max() < 1e-7


@pytest.mark.parametrize("model_name, comparator", [("transe", "dot"), ("transe", "l1"), ("complex", "dot")])
def test_model_weights_unchanged(tiny_kg, model_name, comparator):
    model = random_model(tiny_kg, model_name, comparator)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    gradient_bias(model, tiny_kg, min_count=0, one_vs_rest=True)
    with torch.no_grad():  # the measure turns gradients on for its own step
        inside = gradient_bias(model, tiny_kg, min_count=0)
    assert inside["bias"].abs().max() > 1e-4
    pairwise_bias(model, tiny_kg, "bob", "ann")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name])
    assert all(parameter.grad is None for parameter in model.parameters())


def test_counts_filter_and_order(tiny_kg):
    frame = gradient_bias(random_model(tiny_kg), tiny_kg, min_count=0)
    counts = {label: (a, b, n) for label, a, b, n in
              frame[["label", "count_a", "count_b", "count"]].itertuples(index=False)}
    # nurse: ann, eve (women); doctor: cat (woman), dan (man); pilot: bob, fred (men)
    assert counts == {"nurse": (0, 2, 2), "doctor": (1, 1, 2), "pilot": (2, 0, 2)}
    assert list(frame.columns) == ["target", "label", "bias", "count_a", "count_b", "count"]
    assert frame["bias"].is_monotonic_decreasing
    assert len(gradient_bias(random_model(tiny_kg), tiny_kg, min_count=2)) == 3
    assert len(gradient_bias(random_model(tiny_kg), tiny_kg, min_count=3)) == 0  # paper default 20 drops all


def test_people_choices(tiny_kg):
    assert resolve_people(tiny_kg, None, "gender").tolist() == list(range(6))
    assert resolve_people(tiny_kg, "all_humans", "gender").tolist() == list(range(6))
    with pytest.raises(ValueError):
        resolve_people(tiny_kg, "everybody", "gender")
    with pytest.raises(ValueError):
        gradient_bias(random_model(tiny_kg), tiny_kg, people=torch.zeros(0, dtype=torch.long))


def test_pairwise_bias_known_answer(tiny_kg):
    model = random_model(tiny_kg)
    weight = model.entity.weight.detach()
    frame = pairwise_bias(model, tiny_kg, "bob", "ann", min_count=0)
    bob, ann = tiny_kg.entity_id("bob"), tiny_kg.entity_id("ann")
    relation = torch.tensor([tiny_kg.attribute_relation("profession")])
    for target, bias in by_target(frame).items():
        t = torch.tensor([target])
        expected = (model.score_triples(torch.tensor([bob]), relation, t)
                    - model.score_triples(torch.tensor([ann]), relation, t))
        assert bias == pytest.approx(expected.item(), rel=1e-5)
        # dot TransE: <e_bob + r, e_p> - <e_ann + r, e_p> = <e_bob - e_ann, e_p>
        assert bias == pytest.approx(float((weight[bob] - weight[ann]) @ weight[target]), rel=1e-4)
    # the paper keeps low-count professions held by either person (Tables 1-2)
    kept = pairwise_bias(model, tiny_kg, bob, ann, min_count=100)
    assert sorted(kept["label"]) == ["nurse", "pilot"]


@pytest.mark.parametrize("person_a, person_b, message", [
    (-1, "ann", r"person_a: id -1 is outside 0 \.\. 12 \(tiny\)"),
    ("bob", 13, r"person_b: id 13 is outside 0 \.\. 12"),
    ("bob", "nurse", r"person_b: 'nurse' \(nurse\) is not one of tiny's 6 people"),
])
def test_pairwise_bias_names_a_person_it_cannot_use(tiny_kg, person_a, person_b, message):
    with pytest.raises(DataError, match=message):
        pairwise_bias(random_model(tiny_kg), tiny_kg, person_a, person_b)


def test_pairwise_bias_checks_the_count_columns_values(tiny_kg):
    with pytest.raises(DataError, match="value_b: 'paris' is not a value of gender in tiny"):
        pairwise_bias(random_model(tiny_kg), tiny_kg, "bob", "ann", value_b="paris")


def test_bias_table_columns_and_direction(tiny_kg):
    frame = gradient_bias(random_model(tiny_kg), tiny_kg, min_count=0)
    male = bias_table(frame, n=2, direction="a")
    female = bias_table(frame, n=20, direction="b")
    assert list(male.columns) == ["Profession", "B_p", "C_male", "C_female"]
    assert list(female.columns) == ["Profession", "B_p", "C_female", "C_male"]
    assert len(male) == 2 and len(female) == 3
    assert male["B_p"].tolist() == frame["bias"].head(2).tolist()
    assert female["B_p"].tolist() == (-frame["bias"]).sort_values(ascending=False).tolist()
    assert female["Profession"].iloc[0] == frame["label"].iloc[-1]
    with pytest.raises(ValueError):
        bias_table(frame, direction="male")


def test_count_skew_correlation_known_answers():
    counts = pd.DataFrame({"count_a": [10, 5, 0, 3, 7], "count_b": [0, 5, 9, 1, 2]})
    skew = ((counts["count_a"] + 0.5) / (counts["count_b"] + 0.5)).map(math.log)
    same = counts.assign(bias=skew)
    assert count_skew_correlation(same) == pytest.approx({"spearman": 1.0, "pearson": 1.0, "n_targets": 5})
    monotone = counts.assign(bias=skew**3)  # same order, not linear
    result = count_skew_correlation(monotone)
    assert result["spearman"] == pytest.approx(1.0) and result["pearson"] < 1.0
    assert count_skew_correlation(counts.assign(bias=-skew))["spearman"] == pytest.approx(-1.0)


def test_spearman_with_ties():
    # ranks of x: 1, 2.5, 2.5, 4; Pearson of those ranks with 1..4 is 0.9486833
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833, rel=1e-6)


def test_values_must_be_values_of_the_attribute(tiny_kg):
    model = random_model(tiny_kg)
    # a known entity that nobody holds as a gender: count_a / count_b would be 0 in every row
    with pytest.raises(DataError, match=r"value_b: 'paris' is not a value of gender in tiny .*it has: male, female"):
        gradient_bias(model, tiny_kg, value_b="paris", min_count=0)
    # the same through a canonical name in the schema's [values.gender]
    kg = dataclasses.replace(tiny_kg, named_values={"gender": {"male": "male", "female": "female",
                                                                "nonbinary": "rome"}})
    with pytest.raises(DataError, match=r"value_a: 'nonbinary' is not a value of gender"):
        gradient_bias(model, kg, value_a="nonbinary", min_count=0)
    with pytest.raises(DataError, match=r"value_a: 'nonbinary' is not a value of gender"):
        gradient_bias(model, kg, value_a="nonbinary", one_vs_rest=True, min_count=0)
    # a name that is no entity at all gets the same message, naming the argument
    with pytest.raises(DataError, match=r"value_a: 'nobody' is not a value of gender .*it has: male, female"):
        gradient_bias(model, tiny_kg, value_a="nobody", min_count=0)
    # a value held only outside splits counts as missing there
    with pytest.raises(DataError, match=r"value_a: 'doctor' is not a value of profession in tiny \(valid"):
        gradient_bias(model, tiny_kg, sensitive="profession", value_a="doctor", value_b="nurse",
                      target="gender", splits=("valid",))


def test_value_a_and_value_b_must_differ(tiny_kg):
    model = random_model(tiny_kg)
    # the bias of a value over itself is 0, and bias_table would merge the two count columns
    with pytest.raises(DataError, match="value_a and value_b are the same gender value"):
        gradient_bias(model, tiny_kg, value_a="male", value_b="male", min_count=0)
    # one_vs_rest ignores value_b, so value_b == value_a is fine there
    assert len(gradient_bias(model, tiny_kg, value_a="female", value_b="female", one_vs_rest=True, min_count=0)) == 3


@pytest.mark.parametrize("ids", [[100000], [0, -1], [13, 14, 15, 16, 17, 18, 2]])
def test_people_ids_outside_the_graph_are_named(tiny_kg, ids):
    with pytest.raises(DataError, match=r"people: \d+ id\(s\) outside 0 \.\. 12 \(the entities of tiny\): "
                                        + str([i for i in ids if not 0 <= i < 13][0])):
        gradient_bias(random_model(tiny_kg), tiny_kg, people=torch.tensor(ids), min_count=0)


def test_the_values_listed_carry_their_labels(tiny_kg):
    from kgbias.bias.measure import check_value

    kg = dataclasses.replace(tiny_kg, labels={"nurse": "Nurse"})
    with pytest.raises(DataError, match=r"'Nurse' is not a value of profession .*it has: .*nurse \(Nurse\)"):
        check_value(kg, "profession", "value_a", "Nurse")  # a label, not the entity name
