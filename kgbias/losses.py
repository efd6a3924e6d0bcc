"""Link-prediction losses, as functions on score tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def softmax_loss(positive: torch.Tensor, negative: torch.Tensor, single_backward: bool = False) -> torch.Tensor:
    """Cross-entropy of a softmax over each positive and its negatives, all mass on the positive.

    Fisher et al. (2020b), §3: ``L_CE = -s_pos + log(exp(s_pos) + sum_n exp(s_n))``, averaged.

    Parameters
    ----------
    positive
        ``shape: (batch_size,)``
    negative
        ``shape: (batch_size, n_negatives)``
    single_backward
        The backward pass turns the saved exponentials into the gradient in place, instead of
        allocating a (batch_size, n_negatives) gradient (6% of a training step), so the graph
        supports one backward only: a second (``retain_graph=True``, ``gradcheck``) raises.
        Training sets it; the default keeps the graph reusable.
    """
    return _SoftmaxLoss.apply(positive, negative, single_backward)


class _SoftmaxLoss(torch.autograd.Function):
    """``mean(logsumexp([s_pos, s_neg]) - s_pos)`` in five passes over the negatives' scores.

    Autograd's ``cat`` + ``logsumexp`` copies the (batch, n_negatives) matrix and recomputes its
    exponentials in the backward pass; here the exponentials are kept and scaled in place into
    the gradient. A third of an epoch's time went to those element-wise passes.
    """

    @staticmethod
    def forward(ctx, positive, negative, single_backward=False):
        ctx.single_backward, ctx.consumed = single_backward, False
        shift = torch.maximum(negative.amax(dim=1), positive).detach()
        exp_negative = (negative - shift.unsqueeze(1)).exp_()
        exp_positive = (positive - shift).exp()
        total = exp_negative.sum(dim=1) + exp_positive
        ctx.save_for_backward(exp_negative, exp_positive, total)
        return (shift + total.log() - positive).mean()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        if ctx.consumed:
            raise RuntimeError("softmax_loss(single_backward=True): a second backward through the same "
                               "graph; the first turned its saved exponentials into the gradient")
        exp_negative, exp_positive, total = ctx.saved_tensors
        scale = grad_output / (len(total) * total)  # d mean / d score = softmax / batch_size
        grad_negative = None
        if ctx.needs_input_grad[1]:
            ctx.consumed = ctx.single_backward
            grad_negative = (exp_negative.mul_ if ctx.single_backward else exp_negative.mul)(scale.unsqueeze(1))
        grad_positive = scale * exp_positive - grad_output / len(total) if ctx.needs_input_grad[0] else None
        return grad_positive, grad_negative, None


def margin_ranking_loss(positive: torch.Tensor, negative: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """``mean(max(0, margin - s_pos + s_neg))`` over every (positive, negative) pair."""
    return F.relu(margin - positive.unsqueeze(1) + negative).mean()

