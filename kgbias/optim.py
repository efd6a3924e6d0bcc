"""AdaGrad with a faster update for sparse (embedding-row) gradients.

``torch.optim.Adagrad`` updates a sparse gradient through three sparse-tensor operations (add to
the state, ``sparse_mask``, add to the parameter); on FB15k-237 in the papers' setting that is
3.4 ms of a 17 ms step. The same arithmetic on the touched rows, gathered once, takes about a
third of that. Dense gradients, the state layout (``step``, ``sum``) and checkpoints are
torch's own, so checkpoints of either class load into the other.
"""

from __future__ import annotations

import torch


class SparseAdagrad(torch.optim.Adagrad):
    """``torch.optim.Adagrad`` whose sparse-gradient update works on gathered rows.

    Per touched row ``i`` (after summing duplicate rows, as torch does):
    ``sum_i += g_i^2;  w_i -= lr_t * g_i / (sqrt(sum_i) + eps)`` with
    ``lr_t = lr / (1 + (step - 1) * lr_decay)``: the same operations in the same order as torch's
    sparse path, so the results are identical (tested bit for bit).
    """

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        deferred = []  # sparse gradients are hidden while torch updates the dense ones
        for group in self.param_groups:
            if group["weight_decay"] or group["maximize"]:
                continue  # torch raises or handles these itself
            for param in group["params"]:
                if param.grad is not None and param.grad.is_sparse:
                    self._sparse_update(param, param.grad, group)
                    deferred.append((param, param.grad))
                    param.grad = None
        try:
            super().step()
        finally:
            for param, grad in deferred:
                param.grad = grad
        return loss

    def _sparse_update(self, param: torch.Tensor, grad: torch.Tensor, group: dict) -> None:
        state = self.state[param]
        state["step"] += 1
        step = float(state["step"])
        lr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        grad = grad.coalesce()  # the update is non-linear: duplicate rows must be summed first
        rows, values = grad.indices()[0], grad.values()
        sums = state["sum"].index_select(0, rows).add_(values.pow(2))  # not addcmul_: its FMA rounds differently
        state["sum"].index_copy_(0, rows, sums)
        # rows are unique after coalesce(): gather, update, scatter (index_add_ is serial on CPU)
        updated = param.index_select(0, rows).add_(values / sums.sqrt_().add_(group["eps"]), alpha=-lr)
        param.index_copy_(0, rows, updated)
