"""The KL debiasing loss: known values, where its gradient goes, and its effect on training."""

import math
from dataclasses import replace

import pytest
import torch

from kgbias import TrainConfig, train, training
from kgbias.errors import RunError
from kgbias.debias import KLDebiasing, kl_to_target, score_difference
from kgbias.models import ComplEx, TransE


def test_kl_is_zero_for_equal_scores_and_known_otherwise():
    uniform = torch.tensor([0.5, 0.5])
    assert kl_to_target(torch.tensor([[3.0, 3.0]]), uniform).item() == pytest.approx(0.0, abs=1e-7)
    # softmax([0, ln 3]) = [1/4, 3/4]
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_to_target(torch.tensor([[0.0, math.log(3)]]), uniform).item() == pytest.approx(expected)
    # a target with a zero entry ignores that value's term
    assert kl_to_target(torch.tensor([[0.0, 5.0]]), torch.tensor([1.0, 0.0])).item() == \
        pytest.approx(-torch.log_softmax(torch.tensor([0.0, 5.0]), 0)[0].item())


@pytest.mark.parametrize("comparator", ["dot", "l2"])
def test_loss_is_zero_when_every_value_scores_alike(tiny_kg, comparator):
    """Values with one embedding score alike for every person: KL to uniform is 0 (up to rounding,
    far below a single person's KL otherwise)."""
    torch.manual_seed(0)
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4, comparator=comparator, init_std=0.5)
    debiasing = KLDebiasing.from_graph(tiny_kg, {"gender": 1.0, "profession": 1.0})
    people = torch.arange(6)
    assert debiasing.loss(model, people).item() > 1e-2
    with torch.no_grad():
        for values in debiasing.values:
            model.entity.weight[values] = model.entity.weight[values[0]].clone()
    assert debiasing.loss(model, people).item() == pytest.approx(0.0, abs=1e-6)


def test_gradient_reaches_only_the_people(tiny_kg):
    torch.manual_seed(0)
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4)
    debiasing = KLDebiasing.from_graph(tiny_kg, {"gender": 1.0, "profession": 2.0})
    people = torch.tensor([0, 1, 2])
    debiasing.loss(model, people).backward()
    entity_grad = model.entity.weight.grad.to_dense()
    assert entity_grad[people].abs().sum(1).gt(0).all()
    others = torch.ones(tiny_kg.n_entities, dtype=torch.bool)
    others[people] = False
    assert entity_grad[others].abs().sum() == 0  # male, female, professions: frozen for this term
    assert model.relation.weight.grad is None


def test_weights_scale_each_attribute(tiny_kg):
    torch.manual_seed(0)
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4, init_std=0.5)
    people = torch.arange(6)
    gender = KLDebiasing.from_graph(tiny_kg, {"gender": 1.0}).loss(model, people)
    profession = KLDebiasing.from_graph(tiny_kg, {"profession": 1.0}).loss(model, people)
    both = KLDebiasing.from_graph(tiny_kg, {"gender": 2.0, "profession": 3.0}).loss(model, people)
    assert gender.item() > 1e-3 and profession.item() > 1e-3
    # paper 2: L_KL = 1/P 1/J sum_p sum_j KL, with a weight per attribute: the mean over the J = 2
    assert both.item() == pytest.approx((2 * gender.item() + 3 * profession.item()) / 2, rel=1e-5)


def test_kl_training_removes_the_gender_gap_on_the_toy_graph(tmp_path, one_thread):
    base = dict(dataset="toy", embedding_dim=16, n_negatives=50, batch_size=256, n_epochs=25, valid_every=0)
    basic = train(TrainConfig(**base), run_dir=tmp_path / "basic")
    # weight 1 relative to the mean L_CE (with "sum" it would be 1/512 of that: see the next test)
    debiased = train(TrainConfig(**base, debias="kl", debias_weights={"gender": 1.0}, kl_reduction="mean"),
                     run_dir=tmp_path / "kl")
    basic_gap = score_difference(basic.model, basic.kg, "gender")
    assert basic_gap > 0.5
    assert abs(score_difference(debiased.model, debiased.kg, "gender")) < 0.1 * basic_gap


def test_summed_reduction_divides_the_kl_term_by_the_number_of_queries(tiny_kg):
    """kl_reduction="sum": L = (sum L_CE + w L_KL) / n_queries, i.e. weight w acts as w / n_queries
    would with "mean"; each triple is two queries (heads and tails)."""
    torch.manual_seed(0)
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4, init_std=0.5)
    batch = tiny_kg.train[:3]
    negatives = torch.arange(tiny_kg.n_entities)
    base = dict(dataset="toy", debias="kl", batch_size=3)

    def loss(weight, reduction):
        config = TrainConfig(**base, debias_weights={"gender": weight}, kl_reduction=reduction)
        return training.batch_loss(model, batch, negatives, config, training.make_debiasing(config, tiny_kg))

    plain = training.batch_loss(model, batch, negatives, TrainConfig(dataset="toy", batch_size=3))
    kl_mean = loss(1.0, "mean") - plain
    assert kl_mean.item() > 1e-4  # random embeddings: the people's gender scores differ
    assert (loss(6.0, "sum") - plain).item() == pytest.approx(kl_mean.item(), rel=1e-4)  # 6 = 2 x 3 queries
    assert (loss(1.0, "sum") - plain).item() == pytest.approx(kl_mean.item() / 6, rel=1e-4)  # float32 differences


def test_kl_runs_name_their_reduction():
    """KL runs trained before kl_reduction existed used "mean": a KL config never shares their
    folder, while Basic runs keep theirs (a default config hashes "{}")."""
    import hashlib
    import json

    kl = TrainConfig(debias="kl")
    assert kl.fingerprint() == hashlib.sha256(json.dumps({"debias": "kl", "kl_reduction": "sum"},
                                                         sort_keys=True).encode()).hexdigest()[:8]
    assert kl.fingerprint() != TrainConfig(debias="kl", kl_reduction="mean").fingerprint()
    assert TrainConfig().fingerprint() == hashlib.sha256(b"{}").hexdigest()[:8]
    # a weight written 20 (YAML, CLI) or 20.0 (Python) names the same run; 20.5 another
    assert (TrainConfig(debias="kl", debias_weights={"gender": 20}).run_name()
            == TrainConfig(debias="kl", debias_weights={"gender": 20.0}).run_name()
            != TrainConfig(debias="kl", debias_weights={"gender": 20.5}).run_name())
    with pytest.raises(RunError, match="kl_reduction must be sum or mean"):
        TrainConfig(debias="kl", kl_reduction="max")


@pytest.mark.parametrize("train_relations", [False, True])
@pytest.mark.parametrize("comparator", ["dot", "l2", "complex"])
def test_loss_and_gradient_equal_the_formula_per_attribute(tiny_kg, comparator, train_relations):
    """Dot models score every attribute in one padded batch (gender has 2 values, profession 3);
    the loss and its gradient must be paper 2's sum over attributes written out one at a time,
    with a given target that has a zero entry. With kl_train_relations (not paper 2's, which
    freezes them) the relations get the formula's gradient too; the values never do."""
    torch.manual_seed(0)
    if comparator == "complex":
        model = ComplEx(tiny_kg.n_entities, tiny_kg.n_relations, 4, init_std=0.5)
    else:
        model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4, comparator=comparator, init_std=0.5)
    weights = {"gender": 2.0, "profession": 3.0}
    # three professions (nurse, doctor, pilot); the target leaves the third out
    debiasing = KLDebiasing.from_graph(tiny_kg, weights, targets={"profession": [0.5, 0.5, 0.0]},
                                       train_relations=train_relations)
    assert [len(v) for v in debiasing.values] == [2, 3]  # gender is padded
    people = torch.tensor([0, 1, 2, 4])

    def gradients(loss):
        model.zero_grad(set_to_none=True)
        loss.backward()
        relation = model.relation.weight.grad
        return loss.detach(), model.entity.weight.grad.to_dense(), None if relation is None else relation.to_dense()

    got = gradients(debiasing.loss(model, people))
    expected = gradients(formula_loss(model, debiasing, people, weights, comparator, train_relations))
    torch.testing.assert_close(got[:2], expected[:2], rtol=1e-5, atol=1e-6)
    assert got[1][torch.cat(debiasing.values)].abs().sum() == 0
    if train_relations:
        torch.testing.assert_close(got[2], expected[2], rtol=1e-5, atol=1e-6)
        assert got[2][debiasing.relations].abs().sum(1).gt(0).all()  # both relations move
    else:
        assert got[2] is None


def formula_loss(model, debiasing, people, weights, comparator, train_relations=False):
    """Paper 2's sum over attributes written out one at a time (relations detached unless trained)."""
    terms = []
    for j, attribute in enumerate(debiasing.attributes):
        person_emb = model.entity(people)
        relation = model.relation.weight[debiasing.relations[j]]
        relation = relation if train_relations else relation.detach()
        values = model.entity.weight[debiasing.values[j]].detach()
        if comparator == "complex":  # Re(<p, r, conj(v)>) over (real, imaginary) halves
            (p_re, p_im), (r_re, r_im) = person_emb.chunk(2, -1), relation.chunk(2, -1)
            v_re, v_im = values.chunk(2, -1)
            scores = (p_re * r_re - p_im * r_im) @ v_re.T + (p_re * r_im + p_im * r_re) @ v_im.T
        elif comparator == "dot":
            scores = (person_emb + relation) @ values.T
        else:
            scores = -torch.linalg.vector_norm((person_emb + relation)[:, None] - values[None], dim=-1)
        log_q = torch.log_softmax(scores, dim=1)
        target = debiasing.targets[j]
        kl = sum(target[m] * (target[m].log() - log_q[:, m]) for m in range(len(target)) if target[m] > 0)
        terms.append(weights[attribute] * kl.mean())
    return sum(terms) / len(terms)


def test_an_attribute_without_values_adds_nothing_and_no_nan(tiny_kg):
    torch.manual_seed(0)
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4)
    debiasing = KLDebiasing.from_graph(tiny_kg, {"gender": 1.0, "profession": 1.0})
    gender_only = KLDebiasing.from_graph(tiny_kg, {"gender": 1.0})
    empty = KLDebiasing(debiasing.attributes, debiasing.relations, [debiasing.values[0], debiasing.values[1][:0]],
                        [debiasing.targets[0], debiasing.targets[1][:0]], debiasing.weights, debiasing.is_human)
    people = torch.arange(6)
    loss = empty.loss(model, people)
    loss.backward()
    assert loss.item() == pytest.approx(gender_only.loss(model, people).item() / 2, rel=1e-6)
    assert torch.isfinite(model.entity.weight.grad.to_dense()).all()


def test_written_out_gradient_passes_gradcheck():
    """The KL term's hand-written backward against finite differences (float64), with a padded
    column and a target with a zero entry."""
    from kgbias.debias.kl import _PADDING, _KLToTarget

    generator = torch.Generator().manual_seed(0)
    person_emb = torch.randn(5, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    keys = torch.randn(6, 4, dtype=torch.float64, generator=generator)  # 2 attributes x 3 columns
    bias = torch.randn(6, dtype=torch.float64, generator=generator)
    bias[2] = _PADDING  # attribute 0 has two values
    valid = torch.tensor([[True, True, False], [True, True, True]])
    target = torch.tensor([[0.5, 0.5, 0.0], [0.7, 0.0, 0.3]], dtype=torch.float64)
    log_target = torch.where(target > 0, target.clamp_min(1e-30).log(), 0.0)
    coefficients = torch.tensor([2.0, 0.5], dtype=torch.float64)

    def loss(emb):
        return _KLToTarget.apply(emb, keys, bias, target, target.sum(1), log_target, coefficients, valid)

    assert torch.autograd.gradcheck(loss, (person_emb,))
    # with trained relations the keys and biases take gradients too (a padded column's: zero)
    keys.requires_grad_(True)
    bias.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda emb, k, b: _KLToTarget.apply(emb, k, b, target, target.sum(1), log_target,
                                                                        coefficients, valid), (person_emb, keys, bias))
    keys.requires_grad_(False)
    bias.requires_grad_(False)
    # and the value is the formula's: sum_j c_j mean_p KL(G_j || softmax)
    log_q = torch.log_softmax((person_emb @ keys.T + bias).view(5, 2, 3), -1)
    expected = sum(coefficients[j] * (target[j] * (log_target[j] - log_q[:, j])).sum(-1).mean() for j in range(2))
    torch.testing.assert_close(loss(person_emb), expected)


def test_an_attribute_with_one_value_is_reported(tiny_kg, caplog):
    """One value: its distribution is always uniform, so the term can never act; say so."""
    from kgbias.graph import SensitiveRelation

    lives_in = tiny_kg.relation_id("lives_in")
    in_paris = torch.tensor([[0, lives_in, tiny_kg.entity_id("paris")], [2, lives_in, tiny_kg.entity_id("paris")]])
    kg = replace(tiny_kg, train=torch.cat([tiny_kg.train, in_paris]),
                 sensitive={**tiny_kg.sensitive, "city": SensitiveRelation("city", "lives_in")})
    with caplog.at_level("WARNING", logger="kgbias.debias.kl"):
        KLDebiasing.from_graph(kg, {"gender": 1.0})
        assert not caplog.records
        KLDebiasing.from_graph(kg, {"gender": 1.0, "city": 1.0})
    assert [r.getMessage() for r in caplog.records] == ["tiny: city has 1 value(s) among its people; "
                                                         "its KL term is always 0"]


@pytest.mark.parametrize("debias", ["none", "bose"])
def test_trained_relations_without_the_kl_term_are_refused(debias):
    with pytest.raises(RunError, match="kl_train_relations changes the KL term: it needs debias='kl', "
                                       f"got debias='{debias}'"):
        TrainConfig(dataset="toy", debias=debias, kl_train_relations=True)
    assert TrainConfig(dataset="toy", debias="kl", kl_train_relations=True).kl_train_relations


@pytest.mark.parametrize("attribute_vectors", [False, True])
def test_every_person_reads_all_people_whatever_the_batch(tiny_kg, tmp_path, attribute_vectors):
    """kl_people="all": the term is the formula's mean over all six people, and its gradient
    reaches them all, although the batch holds one person (ann); "batch" reads ann alone;
    "batch+all" is the sum of the two, in value and in gradient; "batch+centroid" is ann's term
    plus the term of the six people's mean embedding, whose gradient is the same for each."""
    path = tmp_path / "w.tsv"
    path.write_text("gender\trelation\tlives_in\n")
    vectors = dict(attribute_vectors=True, whitelist=str(path)) if attribute_vectors else {}
    batch = tiny_kg.train[:0].new_tensor([[0, tiny_kg.relation_id("lives_in"), tiny_kg.entity_id("paris")]])
    negatives = torch.arange(6, tiny_kg.n_entities)  # no person: their gradients come from the KL term alone
    losses, grads = {}, {}
    for label in ["batch", "all", "batch+all", "batch+centroid", "batch+centroid x2"]:
        people, _, scale = label.partition(" x")
        config = TrainConfig(dataset="toy", debias="kl", batch_size=1, debias_weights={"gender": 3.0},
                             kl_people=people, kl_second_scale=float(scale or 1), **vectors)
        torch.manual_seed(0)
        base = training.make_model(config, tiny_kg)
        with torch.no_grad():
            base.entity.weight.normal_(std=0.5)
        model = training.scoring_model(config, tiny_kg, base)
        debiasing = training.make_debiasing(config, tiny_kg)
        loss = training.batch_loss(model, batch, negatives, config, debiasing)
        plain_config = replace(config, debias="none", kl_people="batch", kl_second_scale=1.0)
        plain = training.batch_loss(model, batch, negatives, plain_config)
        losses[label] = (loss - plain).item()
        loss.backward()
        grads[label] = base.entity.weight.grad.to_dense()
        if label == "batch":  # the ordinary loss's own gradient, from its own graph
            base.entity.weight.grad = None
            plain.backward()
            grads["plain"] = base.entity.weight.grad.to_dense()
    everyone = torch.arange(6)
    expected_all = formula_loss(base, debiasing, everyone, {"gender": 3.0}, "dot").item() / 2  # 2 queries
    expected_ann = formula_loss(base, debiasing, everyone[:1], {"gender": 3.0}, "dot").item() / 2
    assert losses["all"] == pytest.approx(expected_all, rel=1e-4)
    assert losses["batch"] == pytest.approx(expected_ann, rel=1e-4)
    assert expected_all != pytest.approx(expected_ann, rel=1e-2)  # the two readings differ here
    assert losses["batch+all"] == pytest.approx(expected_all + expected_ann, rel=1e-4)
    # the mean person by hand: 3 * KL(uniform || softmax((centroid + r) . [male, female]))
    centroid = base.entity.weight[everyone].mean(0)
    gender = debiasing.attributes.index("gender")
    scores = (centroid + base.relation.weight[debiasing.relations[gender]]) @ base.entity.weight[debiasing.values[gender]].T
    expected_centroid = 3.0 * (0.5 * (0.5 / torch.softmax(scores, 0)).log()).sum().item() / 2
    assert losses["batch+centroid"] == pytest.approx(expected_ann + expected_centroid, rel=1e-4)
    assert losses["batch+centroid x2"] == pytest.approx(expected_ann + 2 * expected_centroid, rel=1e-4)
    not_in_batch = everyone[1:]  # bob ... fred: no fact of theirs in the batch
    assert grads["all"][not_in_batch].abs().sum(1).gt(0).all()
    assert grads["batch"][not_in_batch].abs().sum() == 0
    # the ordinary loss's gradient is in each once: batch+all's is all's plus the KL part of batch's
    plain_grad = grads.pop("plain")
    torch.testing.assert_close(grads["batch+all"], grads["all"] + grads["batch"] - plain_grad, rtol=1e-5, atol=1e-7)
    centroid_grad = grads["batch+centroid"][not_in_batch]
    assert centroid_grad.abs().sum(1).gt(0).all()
    torch.testing.assert_close(centroid_grad, centroid_grad[:1].expand_as(centroid_grad))  # all moved alike


def test_batch_plus_a_second_term_needs_the_people_of_people_in(tiny_kg):
    debiasing = KLDebiasing.from_graph(tiny_kg, {"gender": 1.0}, people="batch+centroid")
    model = TransE(tiny_kg.n_entities, tiny_kg.n_relations, 4)
    with pytest.raises(ValueError, match="reads people_in\\(batch\\): the batch's people, then all 6 people; got 2 ids"):
        debiasing.loss(model, torch.tensor([0, 1]))
    batch = tiny_kg.train[:1]
    assert debiasing.people_in(batch).tolist()[-6:] == list(range(6))
    with pytest.raises(ValueError, match="people must be batch, all"):
        KLDebiasing.from_graph(tiny_kg, {"gender": 1.0}, people="everyone")


@pytest.mark.parametrize("debias", ["none", "bose"])
def test_every_person_without_the_kl_term_is_refused(debias):
    with pytest.raises(RunError, match="kl_people changes the KL term: it needs debias='kl'"):
        TrainConfig(dataset="toy", debias=debias, kl_people="all")
    with pytest.raises(RunError, match="kl_people must be batch, all, batch\\+all, batch\\+centroid"):
        TrainConfig(dataset="toy", debias="kl", kl_people="everyone")
    # the default names the same run folder as before the option existed
    assert TrainConfig(debias="kl").fingerprint() == TrainConfig(debias="kl", kl_people="batch").fingerprint()
    assert TrainConfig(debias="kl").fingerprint() != TrainConfig(debias="kl", kl_people="all").fingerprint()
    with pytest.raises(RunError, match="kl_second_scale weighs the second term of kl_people batch"):
        TrainConfig(dataset="toy", debias="kl", kl_people="all", kl_second_scale=2.0)
    with pytest.raises(RunError, match="kl_second_scale must be at least 0"):
        TrainConfig(dataset="toy", debias="kl", kl_people="batch+all", kl_second_scale=-1.0)
    assert TrainConfig(debias="kl", kl_people="batch+all").fingerprint() != \
        TrainConfig(debias="kl", kl_people="all").fingerprint()
