"""Attribute vectors and whitelists (Fisher et al. 2020b, §4.2): known answers on a 2-D dot TransE."""

import dataclasses
from pathlib import Path

import pytest
import torch

import kgbias.training as training
from kgbias import TrainConfig, train
from kgbias.data.toy import toy_kg
from kgbias.debias.attributes import AttributeAwareModel, AttributeVectors
from kgbias.debias.plan import value_pairs
from kgbias.debias.whitelists import load_whitelist
from kgbias.errors import DataError, RunError
from kgbias.evaluate import KnownAnswers, rank_triples
from kgbias.models import ComplEx, TransE


pytestmark = pytest.mark.usefixtures("one_thread")


def write(tmp_path, text, name="whitelist.tsv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def hand_set_model(kg) -> TransE:
    """2-D dot TransE with distinct, exactly representable embeddings."""
    model = TransE(kg.n_entities, kg.n_relations, 2, comparator="dot")
    with torch.no_grad():
        ids = torch.arange(kg.n_entities, dtype=torch.float)
        model.entity.weight.copy_(torch.stack([ids / 4 - 1, 1 - ids / 8], 1))
        slots = torch.arange(2 * kg.n_relations, dtype=torch.float)
        model.relation.weight.copy_(torch.stack([slots / 2, -slots / 4], 1))
    return model


def attribute_model(kg, model, path):
    whitelist = load_whitelist(path, kg)
    vectors = AttributeVectors(kg, whitelist.attributes, 2, relation_init=model.relation.weight.detach())
    return AttributeAwareModel(model, vectors, whitelist, kg), vectors


def all_scores(model, kg):
    """``shape: (n_entities, 2 * n_relations, n_entities)``: every query against every candidate."""
    entities = torch.arange(kg.n_entities).repeat_interleave(2 * kg.n_relations)
    slots = torch.arange(2 * kg.n_relations).repeat(kg.n_entities)
    with torch.no_grad():
        return model.score_tails(entities, slots).reshape(kg.n_entities, 2 * kg.n_relations, kg.n_entities)


# --- whitelist file ------------------------------------------------------------------------------

def test_whitelist_loads_relations_and_professions(tiny_kg, tmp_path):
    path = write(tmp_path, "# attribute\tkind\tname\n\ngender\trelation\tlives_in\n"
                           "gender\tprofession\tnurse   # by name\n")
    whitelist = load_whitelist(path, tiny_kg)
    assert whitelist.attributes == ["gender"]
    assert whitelist.relations["gender"].tolist() == [False, False, True]
    assert whitelist.entities["gender"].nonzero().flatten().tolist() == [tiny_kg.entity_id("nurse")]


@pytest.mark.parametrize("line, message", [
    ("gender\trelation", "expected attribute<TAB>"),
    ("gender\trelation\tlives_in\textra", "expected attribute<TAB>"),
    ("religion\trelation\tlives_in", "unknown attribute 'religion'"),
    ("profession\tprofession\tnurse", "unknown attribute 'profession'"),
    ("gender\tfriend\tlives_in", "relation or profession"),
    ("gender\trelation\tworks_in", "unknown relation 'works_in'"),
    ("gender\tprofession\tastronaut", "astronaut"),
])
def test_whitelist_rejects_a_bad_line_naming_file_and_line(tiny_kg, tmp_path, line, message):
    path = write(tmp_path, f"gender\trelation\tlives_in\n# fine so far\n{line}\n")
    with pytest.raises(DataError, match=rf"whitelist\.tsv:3: .*{message}"):
        load_whitelist(path, tiny_kg)


# --- scoring ---------------------------------------------------------------------------------------

def test_person_with_two_values_gets_the_sum(tiny_kg):
    ann, male, female = (tiny_kg.entity_id(n) for n in ("ann", "male", "female"))
    kg = dataclasses.replace(tiny_kg, train=torch.cat([tiny_kg.train, torch.tensor([[ann, 0, male]])]))
    vectors = AttributeVectors(kg, ["gender"], 2)
    assert vectors.values("gender").tolist() == [male, female]
    with torch.no_grad():
        vectors.vectors["gender"].copy_(torch.tensor([[2.0, 3.0], [0.5, -1.0]]))
    people = torch.tensor([ann, tiny_kg.entity_id("bob"), tiny_kg.entity_id("paris")])
    offsets = vectors.person_offsets("gender", people)
    assert offsets.tolist() == [[2.5, 2.0], [2.0, 3.0], [0.0, 0.0]]
    # the same sums from the (position, value) pairs that batch_scores adds per negative
    tables = vectors.value_tables()
    position, value = value_pairs(tables["table_all"].numpy(), len(tables["value_attribute"]), people.numpy())
    position, value = torch.from_numpy(position), torch.from_numpy(value)
    assert position.tolist() == [0, 0, 1]  # ann has two values, bob one, paris none
    summed = torch.zeros(3, 2).index_add_(0, position, vectors.stacked()[value])
    assert summed.tolist() == offsets.tolist()


@pytest.mark.parametrize("kind", ["profession", "relation"])
def test_vectors_change_only_whitelisted_triples_by_their_inner_product(tiny_kg, tmp_path, kind):
    kg = tiny_kg
    line = "gender\tprofession\tnurse" if kind == "profession" else "gender\trelation\tlives_in"
    base = hand_set_model(kg)
    model, vectors = attribute_model(kg, base, write(tmp_path, line + "\n"))
    offset = {"male": torch.tensor([2.0, 3.0]), "female": torch.tensor([0.5, -1.0])}
    with torch.no_grad():
        vectors.vectors["gender"].copy_(torch.stack([offset["male"], offset["female"]]))
    gender_of = {int(p): kg.entities[int(v)] for p, v in kg.attribute_pairs("gender", ("train",))}

    expected = torch.zeros(kg.n_entities, 2 * kg.n_relations, kg.n_entities)
    entity, relation = base.entity.weight.detach(), base.relation.weight.detach()
    n_relations = kg.n_relations
    if kind == "profession":
        nurse, profession = kg.entity_id("nurse"), kg.relation_id("profession")
        for person, value in gender_of.items():
            # tail query (person, profession, nurse): <e + v + r, t> changes by <v, e_nurse>
            expected[person, profession, nurse] = offset[value] @ entity[nurse]
            # head query (nurse, profession^-1, person): <e_nurse + r^-1, e_person + v>
            inverse_query = entity[nurse] + relation[profession + n_relations]
            expected[nurse, profession + n_relations, person] = inverse_query @ offset[value]
    else:
        lives_in = kg.relation_id("lives_in")
        for person, value in gender_of.items():
            expected[person, lives_in, :] = entity @ offset[value]  # every candidate tail
            inverse_queries = entity + relation[lives_in + n_relations]  # every query entity
            expected[:, lives_in + n_relations, person] = inverse_queries @ offset[value]

    difference = all_scores(model, kg) - all_scores(base, kg)
    torch.testing.assert_close(difference, expected, rtol=0, atol=1e-6)
    assert (difference != 0).sum() == (expected != 0).sum() > 0
    # rows not whitelisted are the base scores exactly, not merely close
    whitelisted = kg.relation_id("profession" if kind == "profession" else "lives_in")
    others = [s for s in range(2 * n_relations) if s % n_relations != whitelisted]
    assert torch.equal(all_scores(model, kg)[:, others], all_scores(base, kg)[:, others])

    # aligned scoring agrees with the all-candidates scoring
    h, s, t = torch.meshgrid(torch.arange(kg.n_entities), torch.arange(2 * n_relations),
                             torch.arange(kg.n_entities), indexing="ij")
    with torch.no_grad():
        aligned = model.score_triples(h.flatten(), s.flatten(), t.flatten()).reshape(h.shape)
    torch.testing.assert_close(aligned, all_scores(model, kg), rtol=0, atol=1e-6)
    # a subset of candidates gives the same columns
    candidates = torch.tensor([kg.entity_id("nurse"), 0, 2])
    rows = torch.arange(kg.n_entities).repeat_interleave(2 * n_relations)
    slots = torch.arange(2 * n_relations).repeat(kg.n_entities)
    with torch.no_grad():
        subset = model.score_tails(rows, slots, candidates)
    columns = all_scores(model, kg).reshape(-1, kg.n_entities)[:, candidates]
    torch.testing.assert_close(subset, columns, rtol=0, atol=1e-6)


def test_relations_stored_value_to_person_give_the_same_scores(tiny_kg, tmp_path):
    """Gender and profession stored as (value, r, person): slots r and r^-1 swap, nothing else."""
    from kgbias.graph import SensitiveRelation

    kg = tiny_kg
    flip = torch.isin(kg.train[:, 1], torch.tensor([kg.relation_id("gender"), kg.relation_id("profession")]))
    inverted = dataclasses.replace(
        kg, train=torch.where(flip.unsqueeze(1), kg.train[:, [2, 1, 0]], kg.train),
        sensitive={a: SensitiveRelation(a, a, inverted=True) for a in ("gender", "profession")})
    slot_of = torch.arange(2 * kg.n_relations)  # slot in `kg` -> the same slot in `inverted`
    for r in (kg.relation_id("gender"), kg.relation_id("profession")):
        slot_of[[r, r + kg.n_relations]] = torch.tensor([r + kg.n_relations, r])
    path = write(tmp_path, "gender\tprofession\tnurse\n")
    base = hand_set_model(kg)
    base_inverted = hand_set_model(inverted)
    with torch.no_grad():
        base_inverted.relation.weight[slot_of] = base.relation.weight
    model, vectors = attribute_model(kg, base, path)
    model_inverted, vectors_inverted = attribute_model(inverted, base_inverted, path)
    for v in (vectors, vectors_inverted):
        with torch.no_grad():
            v.vectors["gender"].copy_(torch.tensor([[2.0, 3.0], [0.5, -1.0]]))
    assert torch.equal(all_scores(model_inverted, inverted)[:, slot_of], all_scores(model, kg))
    negatives = torch.arange(kg.n_entities)
    with torch.no_grad():
        for got, expected in zip(model_inverted.twin_scores(inverted.train, negatives),
                                 model.twin_scores(kg.train, negatives)):
            assert torch.equal(got, expected)


def test_zero_vectors_rank_exactly_as_the_base_model(tiny_kg, tmp_path):
    base = hand_set_model(tiny_kg)
    model, _ = attribute_model(tiny_kg, base, write(tmp_path, "gender\tprofession\tnurse\ngender\trelation\tlives_in\n"))
    known = KnownAnswers(tiny_kg.all_triples(), tiny_kg.n_relations)
    for expected, got in zip(rank_triples(base, tiny_kg.all_triples(), known),
                             rank_triples(model, tiny_kg.all_triples(), known)):
        assert torch.equal(expected, got)


# --- training ------------------------------------------------------------------------------------

def small_toy():
    return toy_kg(n_people=60, n_professions=6, n_countries=3, n_cities_per_country=2, n_fields=2)


def attr_config(path, **changes):
    values = dict(dataset="toy", embedding_dim=8, n_negatives=20, batch_size=64, n_epochs=4,
                  debias="kl", attribute_vectors=True, whitelist=str(path))
    return TrainConfig(**{**values, **changes})


TOY_WHITELIST = "gender\tprofession\tprofession_00\nnationality\trelation\tborn_in\n"


def test_config_needs_whitelist_with_attribute_vectors(tmp_path):
    with pytest.raises(RunError, match="go together"):
        TrainConfig(attribute_vectors=True)
    with pytest.raises(RunError, match="go together"):
        TrainConfig(whitelist=str(tmp_path / "w.tsv"))


def test_vectors_and_attr_relations_receive_gradient(tmp_path):
    kg = small_toy()
    config = attr_config(write(tmp_path, TOY_WHITELIST))
    model = training.make_model(config, kg)
    scorer = training.scoring_model(config, kg, model)
    loss = training.batch_loss(scorer, kg.train[:200], torch.arange(20), config,
                               training.make_debiasing(config, kg))
    loss.backward()
    for attribute in ("gender", "nationality"):
        assert model.attributes.vectors[attribute].grad.abs().sum() > 0
    assert model.attributes.relation.weight.grad.coalesce().values().abs().sum() > 0


def test_basic_state_dict_has_no_new_keys(tmp_path):
    kg = small_toy()
    basic = training.make_model(attr_config("", attribute_vectors=False), kg)
    assert sorted(basic.state_dict()) == ["entity.weight", "relation.weight"]
    with_vectors = training.make_model(attr_config(write(tmp_path, TOY_WHITELIST)), kg)
    assert sorted(with_vectors.state_dict()) == ["attributes.relation.weight", "attributes.vectors.gender",
                                                 "attributes.vectors.nationality", "entity.weight", "relation.weight"]
    # the vectors start at zero and leave the base model's initialisation unchanged
    assert torch.equal(with_vectors.entity.weight, basic.entity.weight)
    assert not with_vectors.attributes.vectors["gender"].any()


def test_kl_attr_training_checkpoints_and_resumes_identically(tmp_path, monkeypatch):
    kg = small_toy()
    config = attr_config(write(tmp_path, TOY_WHITELIST))
    reference = train(config, kg=kg, run_dir=tmp_path / "reference")
    assert reference.model.attributes.vectors["gender"].abs().sum() > 0
    stored = torch.load(tmp_path / "reference" / "checkpoint.pt", weights_only=True)["model"]
    assert stored["attributes.vectors.gender"].abs().sum() > 0  # (the run's model is the best-validation one)

    real_epoch = training.train_epoch

    def interrupt_at_epoch_3(*args, **kwargs):
        if args[7] == 3:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)
    monkeypatch.setattr(training, "train_epoch", interrupt_at_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(config, kg=kg, run_dir=tmp_path / "interrupted")
    monkeypatch.setattr(training, "train_epoch", real_epoch)
    resumed = train(config, kg=kg, run_dir=tmp_path / "interrupted")
    assert resumed.metrics["test"] == reference.metrics["test"]
    assert list(resumed.history["loss"]) == list(reference.history["loss"])
    for name, value in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    # a finished run loads with its vectors
    reloaded = train(config, kg=kg, run_dir=tmp_path / "reference")
    assert torch.equal(reloaded.model.attributes.vectors["nationality"],
                       reference.model.attributes.vectors["nationality"])


def test_whitelist_content_enters_the_run_name_and_default_resolves(tmp_path, monkeypatch):
    from kgbias.config import TrainConfig
    from kgbias.debias.whitelists import resolve_whitelist
    from kgbias.errors import DataError, RunError
    from kgbias.paths import ROOT

    path = tmp_path / "w.tsv"
    path.write_text("gender\trelation\tspouse\n")
    config = TrainConfig(dataset="toy", debias="kl", attribute_vectors=True, whitelist=str(path))
    first = config.run_name()
    path.write_text("gender\trelation\tspouse\nnationality\trelation\tborn_in\n")
    assert config.run_name() != first  # same config, edited file: another run folder
    path.write_text("gender\trelation\tspouse\n")
    assert config.run_name() == first
    assert resolve_whitelist("default", "toy") == ROOT / "whitelists" / "toy.tsv"
    assert resolve_whitelist("my.tsv", "toy") == Path("my.tsv")
    with pytest.raises(DataError, match="no shipped whitelist 'default' for dataset 'nowhere'"):
        resolve_whitelist("default", "nowhere")
    # a bare name is a shipped whitelist of the dataset, the same file from any directory
    assert resolve_whitelist("awards", "fb15k-237") == ROOT / "whitelists" / "fb15k-237-awards.tsv"
    with pytest.raises(DataError, match=r"no shipped whitelist 'awards' for dataset 'toy' .*shipped: default\)"):
        resolve_whitelist("awards", "toy")
    assert resolve_whitelist("sub/awards", "toy") == Path("sub/awards")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "awards").write_text("gender\trelation\tspouse\n")
    assert resolve_whitelist("awards", "toy") == Path("awards")  # a file of that name wins
    with pytest.raises(RunError, match="cannot read"):
        TrainConfig(dataset="toy", debias="kl", attribute_vectors=True, whitelist=str(tmp_path / "gone.tsv")).run_name()


def reference_batch_scores(model, vectors, kg, batch, negatives):
    """batch_scores written out the slow way: the generic scorers, then the twins by hand."""
    base = model.base
    h, r, t = batch.T
    queries, relations, answers = torch.cat([h, t]), torch.cat([r, r + kg.n_relations]), torch.cat([t, h])
    positive = [model.score_triples(queries, relations, answers)]
    negative = [model.score_tails(queries, relations, negatives)]

    def offset(attribute, entity):  # A_j(entity): the sum of the vectors of its train values
        values = vectors.values(attribute).tolist()
        pairs = kg.attribute_pairs(attribute, ("train",)).tolist()
        rows = [vectors.vectors[attribute][values.index(v)] for p, v in pairs if p == entity]
        return sum(rows, torch.zeros(vectors.vectors[attribute].shape[1]))

    negative_emb = base.entity(negatives)
    n = len(vectors.attributes)
    for j, attribute in enumerate(vectors.attributes):
        spec = kg.sensitive[attribute]
        for head, relation, tail in batch.tolist():
            if relation != kg.relation_id(spec.relation):
                continue
            person, value = (tail, head) if spec.inverted else (head, tail)
            person_emb = base.entity.weight[person] + offset(attribute, person)
            forward = base.transform(person_emb, vectors.relation.weight[j])
            backward = base.transform(base.entity.weight[value], vectors.relation.weight[n + j])
            shifted_negatives = negative_emb + torch.stack([offset(attribute, e) for e in negatives.tolist()])
            positive += [base.compare(forward[None], base.entity.weight[value][None], pairwise=True),
                         base.compare(backward[None], person_emb[None], pairwise=True)]
            negative += [base.compare(forward[None], negative_emb, pairwise=False),
                         base.compare(backward[None], shifted_negatives, pairwise=False)]
    return torch.cat(positive), torch.cat(negative)


def twin_order(kg, vectors, batch):
    """Row order of the reference twins (per attribute in batch order, forward and backward
    interleaved) in batch_scores' order (in batch order: every forward twin, then every backward)."""
    relation_of = {kg.relation_id(kg.sensitive[a].relation): j for j, a in enumerate(vectors.attributes)}
    reference = [(relation_of[r], i) for i, r in enumerate(batch[:, 1].tolist()) if r in relation_of]
    position = {key: 2 * k for k, key in enumerate(sorted(reference))}  # reference row of each forward twin
    forward = [position[(relation_of[r], i)] for i, r in enumerate(batch[:, 1].tolist()) if r in relation_of]
    return forward + [row + 1 for row in forward]


@pytest.mark.parametrize("comparator", ["dot", "l2", "complex"])
@pytest.mark.parametrize("graph", ["tiny", "toy"])
def test_batch_scores_and_gradients_equal_the_generic_scorers(tiny_kg, tmp_path, graph, comparator):
    if graph == "tiny":
        kg = tiny_kg
        text = "gender\tprofession\tnurse\ngender\tprofession\tdoctor\ngender\trelation\tlives_in\n"
        batch = kg.all_triples()
    else:
        kg = small_toy()
        text = TOY_WHITELIST + "gender\tprofession\tprofession_01\nnationality\tprofession\tprofession_01\n"
        batch = kg.train[torch.randperm(len(kg.train), generator=torch.Generator().manual_seed(0))[:300]]
    generator = torch.Generator().manual_seed(1)
    if comparator == "complex":  # dot products of a transform that is not a translation
        base = ComplEx(kg.n_entities, kg.n_relations, 3)
    else:
        base = TransE(kg.n_entities, kg.n_relations, 3, comparator=comparator)
    whitelist = load_whitelist(write(tmp_path, text), kg)
    vectors = AttributeVectors(kg, whitelist.attributes, base.entity.embedding_dim)
    with torch.no_grad():
        for parameter in (*base.parameters(), *vectors.parameters()):
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    model = AttributeAwareModel(base, vectors, whitelist, kg)
    negatives = torch.randint(kg.n_entities, (kg.n_entities + 5,), generator=generator)  # with repeats
    assert (model.entity_bits[negatives] != 0).any() and (model.fixed_bits != 0).any()

    def scores_and_gradients(function):
        model.zero_grad(set_to_none=True)
        positive, negative = function()
        weights = torch.linspace(-1, 1, negative.numel()).reshape(negative.shape)
        (positive.sin().sum() + (weights * negative).sum()).backward()
        gradients = [p.grad.to_dense() if p.grad is not None and p.grad.is_sparse else p.grad
                     for p in model.parameters()]
        return positive.detach(), negative.detach(), gradients

    positive, negative, gradients = scores_and_gradients(lambda: model.batch_scores(batch, negatives))
    n_queries = 2 * len(batch)
    order = n_queries + torch.tensor(twin_order(kg, vectors, batch), dtype=torch.long)
    order = torch.cat([torch.arange(n_queries), order])
    expected_positive, expected_negative, expected_gradients = scores_and_gradients(
        lambda: tuple(s[order] for s in reference_batch_scores(model, vectors, kg, batch, negatives)))
    assert len(positive) > n_queries  # twins are there
    torch.testing.assert_close(positive, expected_positive, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(negative, expected_negative, rtol=1e-5, atol=1e-5)
    for got, expected in zip(gradients, expected_gradients):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_a_batch_without_sensitive_triples_has_no_twins(tmp_path):
    """Small batches often hold no triple of a debiased relation: no twins, the generic scores,
    and a training step that runs (it once failed to split the empty twin relations in two)."""
    kg = small_toy()
    config = attr_config(write(tmp_path, TOY_WHITELIST))
    model = training.make_model(config, kg)
    scorer = training.scoring_model(config, kg, model)
    sensitive = torch.tensor([kg.relation_id(kg.sensitive[a].relation) for a in ("gender", "nationality")])
    batch = kg.train[~torch.isin(kg.train[:, 1], sensitive)][:50]
    negatives = torch.arange(20)
    positive, negative = scorer.batch_scores(batch, negatives)
    h, r, t = batch.T
    queries, relations, answers = torch.cat([h, t]), torch.cat([r, r + kg.n_relations]), torch.cat([t, h])
    assert positive.shape == (100,) and negative.shape == (100, 20)
    torch.testing.assert_close(positive, scorer.score_triples(queries, relations, answers))
    torch.testing.assert_close(negative, scorer.score_tails(queries, relations, negatives))
    loss = training.batch_loss(scorer, batch, negatives, config, training.make_debiasing(config, kg))
    loss.backward()
    assert model.attributes.relation.weight.grad is None or not model.attributes.relation.weight.grad.to_dense().any()


@pytest.mark.parametrize("loss", ["softmax", "margin"])
def test_batch_loss_is_the_link_loss_of_batch_scores(tmp_path, loss):
    """Training's loss is the mean over every row of batch_scores, twins included."""
    from kgbias.losses import margin_ranking_loss, softmax_loss

    kg = small_toy()
    config = attr_config(write(tmp_path, TOY_WHITELIST), loss=loss, debias="none")
    model = training.make_model(config, kg)
    with torch.no_grad():
        for vectors in model.attributes.vectors.values():
            vectors.copy_(torch.randn(vectors.shape, generator=torch.Generator().manual_seed(2)))
    scorer = training.scoring_model(config, kg, model)
    batch, negatives = kg.train[:300], torch.arange(20)
    positive, negative = scorer.batch_scores(batch, negatives)
    assert len(positive) > 2 * len(batch)  # twins are there
    expected = softmax_loss(positive, negative) if loss == "softmax" else margin_ranking_loss(positive, negative, config.margin)
    torch.testing.assert_close(training.batch_loss(scorer, batch, negatives, config), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("attribute_vectors", [False, True])
def test_kl_term_through_the_batch_lookup_equals_separate_lookups(tmp_path, attribute_vectors):
    """batch_loss takes the KL term's people from the batch's own entity lookup; loss and every
    gradient must equal the link loss plus the KL term on a lookup of its own."""
    from kgbias.losses import softmax_loss

    kg = small_toy()
    weights = {"gender": 3.0, "nationality": 2.0}
    config = (attr_config(write(tmp_path, TOY_WHITELIST), debias_weights=weights) if attribute_vectors
              else TrainConfig(dataset="toy", embedding_dim=8, debias="kl", debias_weights=weights))
    model = training.make_model(config, kg)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    scorer = training.scoring_model(config, kg, model)
    debiasing = training.make_debiasing(config, kg, model=model)
    batch, negatives = kg.train[:300], torch.arange(20)
    assert len(debiasing.people_in(batch)) > 10

    def loss_and_gradients(function):
        model.zero_grad(set_to_none=True)
        loss = function()
        loss.backward()
        return loss.detach(), [p.grad.to_dense() if p.grad.is_sparse else p.grad for p in model.parameters()]

    got = loss_and_gradients(lambda: training.batch_loss(scorer, batch, negatives, config, debiasing))

    def separate():
        if attribute_vectors:
            positive, negative = scorer.batch_scores(batch, negatives)
        else:
            h, r, t = batch.T
            queries = model.query(model.entity(torch.cat([h, t])), torch.cat([r, r + kg.n_relations]))
            positive = model.compare(queries, model.entity(torch.cat([t, h])), pairwise=True)
            negative = model.compare(queries, model.entity(negatives), pairwise=False)
        kl = debiasing.loss(model, debiasing.people_in(batch))  # its own lookup
        return softmax_loss(positive, negative) + kl / len(positive)

    expected = loss_and_gradients(separate)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-6, atol=1e-6)
    for g, e in zip(got[1], expected[1]):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
