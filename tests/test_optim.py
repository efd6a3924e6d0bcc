import pytest
import torch

from kgbias.optim import SparseAdagrad


def _train(optimizer_class, steps=6, **options):
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(50, 4, sparse=True)
    dense = torch.nn.Linear(4, 1)
    optimizer = optimizer_class([*embedding.parameters(), *dense.parameters()], lr=0.3, **options)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        rows = torch.randint(50, (12,), generator=generator)  # duplicates on purpose
        loss = dense(embedding(rows)).square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return embedding.weight.detach(), dense.weight.detach(), optimizer.state_dict()


@pytest.mark.parametrize("options", [{}, {"lr_decay": 0.1}, {"eps": 1e-3, "initial_accumulator_value": 0.5}])
def test_sparse_adagrad_equals_torch_adagrad_bit_for_bit(options):
    ours, theirs = _train(SparseAdagrad, **options), _train(torch.optim.Adagrad, **options)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    for key, state in ours[2]["state"].items():
        assert torch.equal(state["sum"], theirs[2]["state"][key]["sum"])
        assert float(state["step"]) == float(theirs[2]["state"][key]["step"]) == 6


def test_sparse_adagrad_touches_only_the_rows_in_the_gradient():
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    before = embedding.weight.detach().clone()
    optimizer = SparseAdagrad(embedding.parameters(), lr=1.0)
    embedding(torch.tensor([2, 7, 2])).sum().backward()
    optimizer.step()
    changed = (embedding.weight.detach() != before).any(dim=1)
    assert changed.nonzero().flatten().tolist() == [2, 7]
    # row 2 appears twice: gradient 2, sum 4, step 1 * 2 / (2 + eps) = 1 (AdaGrad's first step is sign * lr)
    assert torch.allclose(before[2] - embedding.weight.detach()[2], torch.ones(3), atol=1e-6)
    assert embedding.weight.grad is not None  # the gradient is handed back after the step
