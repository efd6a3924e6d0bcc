"""Known answers for both TransE comparators, ComplEx and the losses, on hand-computed vectors."""

import math

import pytest
import torch

from kgbias.losses import margin_ranking_loss, softmax_loss
from kgbias.models import ComplEx, TransE


def set_weights(model, entities, relations):
    with torch.no_grad():
        model.entity.weight.copy_(torch.tensor(entities, dtype=torch.float))
        model.relation.weight.copy_(torch.tensor(relations, dtype=torch.float))


@pytest.fixture
def transe_2d():
    def make(comparator):
        model = TransE(n_entities=3, n_relations=1, embedding_dim=2, comparator=comparator)
        # entities e0=(1,2), e1=(3,-1), e2=(0,0); relation r0=(1,1), inverse r0^-1=(-2,0)
        set_weights(model, [[1, 2], [3, -1], [0, 0]], [[1, 1], [-2, 0]])
        return model
    return make


def test_dot_comparator_scores(transe_2d):
    model = transe_2d("dot")
    # <e0 + r0, e1> = <(2,3), (3,-1)> = 6 - 3 = 3
    assert model.score_triples(torch.tensor([0]), torch.tensor([0]), torch.tensor([1])).item() == pytest.approx(3.0)
    # all tails of (e0, r0): <(2,3), e_i> = 8, 3, 0
    assert model.score_tails(torch.tensor([0]), torch.tensor([0])).tolist() == [[8.0, 3.0, 0.0]]
    # heads of (?, r0, e1) use the inverse relation: <e1 + r0^-1, e_i> = <(1,-1), e_i> = -1, 4, 0
    assert model.score_heads(torch.tensor([0]), torch.tensor([1])).tolist() == [[-1.0, 4.0, 0.0]]


@pytest.mark.parametrize("comparator, expected", [
    # e0 + r0 = (2,3); minus e_i: (1,1), (-1,4), (2,3)
    ("l2", [-math.sqrt(2), -math.sqrt(17), -math.sqrt(13)]),
    ("l1", [-2.0, -5.0, -5.0]),
])
def test_distance_comparators(transe_2d, comparator, expected):
    model = transe_2d(comparator)
    all_tails = model.score_tails(torch.tensor([0]), torch.tensor([0]))[0]
    assert all_tails.tolist() == pytest.approx(expected, abs=1e-5)
    pairwise = model.score_triples(torch.tensor([0, 0, 0]), torch.tensor([0, 0, 0]), torch.tensor([0, 1, 2]))
    assert pairwise.tolist() == pytest.approx(expected, abs=1e-5)


def test_complex_matches_complex_arithmetic():
    torch.manual_seed(0)
    model = ComplEx(n_entities=4, n_relations=2, embedding_dim=3)
    with torch.no_grad():
        model.entity.weight.normal_()
        model.relation.weight.normal_()

    def as_complex(row):
        return torch.complex(row[:3], row[3:]).to(torch.complex128)

    h, r, t = 1, 3, 2  # relation 3 is the inverse of relation 1
    expected = (as_complex(model.entity.weight[h]) * as_complex(model.relation.weight[r])
                * as_complex(model.entity.weight[t]).conj()).sum().real
    got = model.score_triples(torch.tensor([h]), torch.tensor([r]), torch.tensor([t]))
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert model.score_tails(torch.tensor([h]), torch.tensor([r]))[0, t].item() == pytest.approx(expected.item(), rel=1e-5)


def test_scores_do_not_depend_on_batch_size():
    torch.manual_seed(1)
    model = TransE(20, 3, 8, comparator="l2")
    h, r = torch.randint(20, (10,)), torch.randint(6, (10,))
    together = model.score_tails(h, r)
    one_by_one = torch.cat([model.score_tails(h[i:i + 1], r[i:i + 1]) for i in range(10)])
    assert torch.allclose(together, one_by_one, atol=1e-5)


def test_softmax_loss_known_value():
    positive = torch.tensor([2.0])
    negative = torch.tensor([[0.0, 1.0]])
    expected = -2.0 + math.log(math.exp(2) + math.exp(0) + math.exp(1))
    assert softmax_loss(positive, negative).item() == pytest.approx(expected)


def _reference_softmax_loss(positive, negative):
    logits = torch.cat([positive.unsqueeze(1), negative], dim=1)
    return (torch.logsumexp(logits, dim=1) - positive).mean()


@pytest.mark.parametrize("offset", [0.0, 500.0, -500.0])  # large offsets: exp would overflow unshifted
def test_softmax_loss_value_and_gradient_equal_autograd_reference(offset):
    generator = torch.Generator().manual_seed(0)
    positive = (torch.randn(7, generator=generator, dtype=torch.double) + offset).requires_grad_()
    negative = (torch.randn(7, 5, generator=generator, dtype=torch.double) * 3 + offset).requires_grad_()
    loss = softmax_loss(positive, negative)
    loss.backward(torch.tensor(2.0, dtype=torch.double))
    ours = loss.item(), positive.grad.clone(), negative.grad.clone()
    positive.grad, negative.grad = None, None
    reference = _reference_softmax_loss(positive, negative)
    reference.backward(torch.tensor(2.0, dtype=torch.double))
    assert ours[0] == pytest.approx(reference.item(), rel=1e-12)
    assert torch.allclose(ours[1], positive.grad, atol=1e-12)
    assert torch.allclose(ours[2], negative.grad, atol=1e-12)
    assert torch.autograd.gradcheck(softmax_loss, (positive.detach().requires_grad_(),
                                                   negative.detach().requires_grad_()))


@pytest.mark.parametrize("single_backward", [False, True])
def test_softmax_loss_far_negatives_contribute_nothing(single_backward):
    """Negatives far below their row's best (exp underflows in float32) add nothing: the floor
    that keeps torch's exp on its fast path changes neither the loss nor the other gradients."""
    positive = torch.tensor([2.0, -1.0], requires_grad=True)
    near = torch.tensor([[0.5, 1.5], [0.0, -2.0]])
    for gap in (100.0, 1000.0, 1e6):  # every far score is beyond float32 exp's range
        far = torch.full((2, 3), -gap)
        negative = torch.cat([near, far], 1).requires_grad_()
        loss = softmax_loss(positive, negative * 1.0, single_backward)
        loss.backward()
        logits = torch.cat([positive.detach().unsqueeze(1), near], 1).double()
        expected = (torch.logsumexp(logits, 1) - logits[:, 0]).mean()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
        probabilities = torch.softmax(logits, 1) / 2  # d mean / d score
        assert torch.allclose(negative.grad[:, :2].double(), probabilities[:, 1:], rtol=1e-5)
        assert (negative.grad[:, 2:] >= 0).all() and (negative.grad[:, 2:] < 1e-25).all()
        assert torch.allclose(positive.grad.double(), probabilities[:, 0] - 0.5, rtol=1e-5)
        positive.grad = None


def test_softmax_loss_single_backward_gives_the_same_gradient_once():
    generator = torch.Generator().manual_seed(1)
    positive = torch.randn(6, generator=generator, dtype=torch.double, requires_grad=True)
    negative = torch.randn(6, 4, generator=generator, dtype=torch.double, requires_grad=True)
    grads = []
    for single_backward in (False, True):
        scores = negative * 1.0  # not a leaf: single_backward overwrites it
        loss = softmax_loss(positive, scores, single_backward)
        grads.append(torch.autograd.grad(3.0 * loss, (positive, negative), retain_graph=True))
        if single_backward:  # the scores became the exponentials, then the gradient: no second pass
            assert not torch.equal(scores, negative)
            with pytest.raises(RuntimeError, match="second backward"):
                torch.autograd.grad(loss, negative)
        else:
            assert torch.equal(scores, negative)
            assert torch.equal(torch.autograd.grad(3.0 * loss, negative)[0], grads[0][1])
    assert torch.equal(grads[0][0], grads[1][0])
    assert torch.equal(grads[0][1], grads[1][1])
    with pytest.raises(RuntimeError, match="leaf"):  # a leaf cannot be consumed
        softmax_loss(positive, negative, single_backward=True)
    saved = negative * 1.0
    squared = saved ** 2  # saves ``saved`` for its backward
    loss = softmax_loss(positive, saved, single_backward=True) + squared.sum()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_margin_loss_zero_when_margin_holds_and_linear_otherwise():
    assert margin_ranking_loss(torch.tensor([5.0]), torch.tensor([[1.0, 2.0]]), margin=1.0).item() == 0.0
    # pairs: 1 - 1 + 0.5 = 0.5 and 1 - 1 + 2 = 2 -> mean 1.25
    assert margin_ranking_loss(torch.tensor([1.0]), torch.tensor([[0.5, 2.0]]), margin=1.0).item() == pytest.approx(1.25)


def test_unknown_comparator_is_rejected():
    with pytest.raises(ValueError, match="comparator"):
        TransE(3, 1, 2, comparator="cosine")


def test_l2_all_pairs_gradient_matches_autograd_reference():
    torch.manual_seed(2)
    model = TransE(5, 1, 3, comparator="l2")
    query = torch.randn(4, 3, dtype=torch.double, requires_grad=True)
    t_emb = torch.randn(6, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q, t: model.compare(q, t, pairwise=False), (query, t_emb))
    reference = -torch.cdist(query, t_emb)
    grad = torch.randn(4, 6, dtype=torch.double)
    expected = torch.autograd.grad(reference, (query, t_emb), grad)
    got = torch.autograd.grad(model.compare(query, t_emb, pairwise=False), (query, t_emb), grad)
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("model_class, comparator", [(TransE, "dot"), (ComplEx, "dot"), (TransE, "l2")])
def test_head_form_gives_the_score_of_any_head(model_class, comparator):
    """score(h, r_i, t_i) = h . keys_i + bias_i for every head (dot models); None for distances."""
    torch.manual_seed(0)
    model = model_class(5, 3, 4, comparator=comparator, init_std=0.5)
    r, t = torch.tensor([0, 4, 5]), torch.tensor([1, 2, 3])
    form = model.head_form(model.relation(r), model.entity(t))
    if comparator != "dot":
        assert form is None
        return
    keys, bias = form
    heads = torch.randn(7, model.entity.embedding_dim)
    for i in range(len(r)):
        expected = model.score_embeddings(heads, r[i].expand(7), model.entity(t[i]).expand(7, -1))
        torch.testing.assert_close(heads @ keys[i] + bias[i], expected, rtol=1e-5, atol=1e-6)
