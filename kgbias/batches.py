"""A batch's integer tensors moved to the training device in one copy.

On a GPU the host waits for the device at each copy from ordinary (pageable) host memory and at
each operation whose output size depends on the data (``nonzero``, ``unique``, boolean masks),
and while it waits it queues no kernels. Training draws its batches on the host, so it computes
there everything about a batch that reads no embedding and sends it in one copy from pinned
memory, which the host does not wait for.
"""

from __future__ import annotations

import torch


def to_device(tensors: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """``tensors`` (integer, on the host) on ``device``: one copy of them all, packed, not waited
    for on a GPU. The same dict when they are already there."""
    device = torch.device(device)
    if all(_on(tensor, device) for tensor in tensors.values()):
        return tensors
    names = list(tensors)
    for name in names:
        if tensors[name].dtype != torch.long:
            raise TypeError(f"{name}: only int64 tensors are packed, got {tensors[name].dtype}")
    packed = torch.cat([tensors[name].reshape(-1) for name in names])
    if device.type == "cuda" and packed.device.type == "cpu":
        # the caching host allocator keeps the pinned block until the copy has run
        packed = packed.pin_memory()
    parts = packed.to(device, non_blocking=True).split([tensors[name].numel() for name in names])
    return {name: part.view(tensors[name].shape) for name, part in zip(names, parts)}


def _on(tensor: torch.Tensor, device: torch.device) -> bool:
    """Whether ``tensor`` is on ``device``; plain "cuda" means the current GPU."""
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return tensor.device == device
