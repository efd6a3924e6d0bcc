"""Link-prediction losses, as functions on score tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Shifted scores below this are raised to it before the exponential. torch's vectorised CPU exp
# falls back to scalar code for arguments below about -87.3 (where float32 exp underflows), 50x
# slower; late in a KL + Attr. run on FB15k-237, 5% of the negatives were that far below their
# row's best score, and its epochs had slowed from 6 to 25 s by epoch 35. exp(-60) < 1e-26 is
# nothing beside the row's total (at least 1), and keeps the gradient's entries normal floats.
EXP_FLOOR = -60.0


def softmax_loss(positive: torch.Tensor, negative: torch.Tensor, single_backward: bool = False) -> torch.Tensor:
    """Cross-entropy of a softmax over each positive and its negatives, all mass on the positive.

    Fisher et al. (2020b), §3: ``L_CE = -s_pos + log(exp(s_pos) + sum_n exp(s_n))``, averaged.
    Negative scores more than ``-EXP_FLOOR`` below their row's largest score count as exactly
    that far below: the loss and the other gradients are unchanged in float32.

    Parameters
    ----------
    positive
        ``shape: (batch_size,)``
    negative
        ``shape: (batch_size, n_negatives)``
    single_backward
        The forward pass turns ``negative`` itself into the exponentials, and the backward pass
        turns them into its gradient, in place: no (batch_size, n_negatives) matrix is allocated.
        A fresh gradient took 6% of a training step, fresh exponentials another 3.5%. So
        ``negative``'s values are consumed (it must not be a leaf, and autograd raises if another
        operation saved it), and the graph supports one backward only: a second
        (``retain_graph=True``, ``gradcheck``) raises. Training sets it; the default keeps both
        reusable.
    """
    if single_backward:
        return _SoftmaxLoss.apply(positive, negative, True)[0]
    return _SoftmaxLoss.apply(positive, negative, False)


class _SoftmaxLoss(torch.autograd.Function):
    """``mean(logsumexp([s_pos, s_neg]) - s_pos)`` in six passes over the negatives' scores
    (maximum, shift, floor, exp, sum; the backward's scaling).

    Autograd's ``cat`` + ``logsumexp`` copies the (batch, n_negatives) matrix and recomputes its
    exponentials in the backward pass; here the exponentials are kept and scaled in place into
    the gradient. A third of an epoch's time went to those element-wise passes.
    """

    @staticmethod
    def forward(ctx, positive, negative, single_backward=False):
        ctx.single_backward, ctx.consumed = single_backward, False
        shift = torch.maximum(negative.amax(dim=1), positive).detach()
        if single_backward:
            # the (batch, n_negatives) scores, often just written by a matrix product, become the
            # exponentials: writing a fresh matrix instead took longer than the exponentials
            exp_negative = negative.sub_(shift.unsqueeze(1)).clamp_min_(EXP_FLOOR).exp_()
            ctx.mark_dirty(negative)
            ctx.set_materialize_grads(False)
        else:
            exp_negative = (negative - shift.unsqueeze(1)).clamp_min_(EXP_FLOOR).exp_()
        exp_positive = (positive - shift).exp()
        total = exp_negative.sum(dim=1) + exp_positive
        ctx.save_for_backward(exp_negative, exp_positive, total)
        loss = (shift + total.log() - positive).mean()
        # a tensor changed in place must be returned; the caller keeps only the loss
        return (loss, negative) if single_backward else loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output, _grad_consumed=None):
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

