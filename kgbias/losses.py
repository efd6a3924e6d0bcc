"""Link-prediction losses, as functions on score tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def softmax_loss(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a softmax over each positive and its negatives, all mass on the positive.

    Fisher et al. (2020b), §3: ``L_CE = -s_pos + log(exp(s_pos) + sum_n exp(s_n))``, averaged.

    Parameters
    ----------
    positive
        ``shape: (batch_size,)``
    negative
        ``shape: (batch_size, n_negatives)``
    """
    return _SoftmaxLoss.apply(positive, negative)


class _SoftmaxLoss(torch.autograd.Function):
    """``mean(logsumexp([s_pos, s_neg]) - s_pos)`` in five passes over the negatives' scores.

    Autograd's ``cat`` + ``logsumexp`` copies the (batch, n_negatives) matrix and recomputes its
    exponentials in the backward pass; here the exponentials are kept and scaled in place into
    the gradient. A third of an epoch's time went to those element-wise passes.
    """

    @staticmethod
    def forward(ctx, positive, negative):
        shift = torch.maximum(negative.amax(dim=1), positive).detach()
        exp_negative = (negative - shift.unsqueeze(1)).exp_()
        exp_positive = (positive - shift).exp()
        total = exp_negative.sum(dim=1) + exp_positive
        ctx.save_for_backward(exp_negative, exp_positive, total)
        return (shift + total.log() - positive).mean()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        exp_negative, exp_positive, total = ctx.saved_tensors
        scale = grad_output / (len(total) * total)  # d mean / d score = softmax / batch_size
        grad_negative = exp_negative * scale.unsqueeze(1) if ctx.needs_input_grad[1] else None
        grad_positive = scale * exp_positive - grad_output / len(total) if ctx.needs_input_grad[0] else None
        return grad_positive, grad_negative


def margin_ranking_loss(positive: torch.Tensor, negative: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """``mean(max(0, margin - s_pos + s_neg))`` over every (positive, negative) pair."""
    return F.relu(margin - positive.unsqueeze(1) + negative).mean()


LOSSES = {"softmax": softmax_loss, "margin": margin_ranking_loss}
