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
    logits = torch.cat([positive.unsqueeze(1), negative], dim=1)
    return (torch.logsumexp(logits, dim=1) - positive).mean()


def margin_ranking_loss(positive: torch.Tensor, negative: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """``mean(max(0, margin - s_pos + s_neg))`` over every (positive, negative) pair."""
    return F.relu(margin - positive.unsqueeze(1) + negative).mean()


LOSSES = {"softmax": softmax_loss, "margin": margin_ranking_loss}
