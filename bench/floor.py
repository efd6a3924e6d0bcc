"""The compute floor of a training epoch: the time of its matrix products at the measured FLOP rate.

Per batch of ``batch_size`` positive triples the model scores ``2 * batch_size`` queries (tails and
heads through inverse relations) against ``n_negatives`` shared negatives:

* forward  ``(2B, d) x (d, N)``  -> scores of every query against every negative;
* backward ``(2B, N) x (N, d)``  -> gradient with respect to the queries;
* backward ``(N, 2B) x (2B, d)`` -> gradient with respect to the negatives.

Each costs ``2 * 2B * d * N`` FLOP, so an epoch costs ``12 * B * d * N`` per full batch (6.5e11
FLOP on FB15k-237 in the papers' setting). Everything else an epoch does (gathering rows, the loss,
the sparse optimizer step) is overhead above this floor.
"""

from __future__ import annotations

import statistics
import time

import torch

from .common import synchronize


def matmul_shapes(n_queries: int, embedding_dim: int, n_negatives: int) -> list[tuple[int, int, int]]:
    """``(m, k, n)`` of the three products of one batch, each ``(m, k) x (k, n)``."""
    return [(n_queries, embedding_dim, n_negatives),   # forward
            (n_queries, n_negatives, embedding_dim),   # d loss / d queries
            (n_negatives, n_queries, embedding_dim)]   # d loss / d negatives


def time_batch_matmuls(n_queries: int, embedding_dim: int, n_negatives: int, device: str = "cpu",
                       repeats: int = 20) -> tuple[float, float]:
    """Median seconds of one batch's three products and the FLOP it performs.

    The operands are transposed as autograd would hand them over (``b.T`` views), so the products
    hit the same BLAS kernels as in training.
    """
    generator = torch.Generator().manual_seed(0)
    operands = []
    for m, k, n in matmul_shapes(n_queries, embedding_dim, n_negatives):
        a = torch.randn(m, k, generator=generator).to(device)
        b = torch.randn(n, k, generator=generator).to(device).T  # (k, n) view, like ``query @ t_emb.T``
        operands.append((a, b))
    flop = sum(2.0 * m * k * n for m, k, n in matmul_shapes(n_queries, embedding_dim, n_negatives))
    for a, b in operands:  # warm-up: thread pool, BLAS buffers, CUDA kernels
        a @ b
    times = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        for a, b in operands:
            a @ b
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times), flop


def epoch_floor(n_triples: int, batch_size: int, embedding_dim: int, n_negatives: int,
                device: str = "cpu", repeats: int = 20) -> dict:
    """Seconds of an epoch's matrix products, measured with the epoch's own shapes.

    Returns ``seconds``, ``flop`` and ``gflops`` (the measured rate of the full-batch shapes).
    """
    n_full, last = divmod(n_triples, batch_size)
    seconds, flop = time_batch_matmuls(2 * batch_size, embedding_dim, n_negatives, device, repeats)
    total_seconds, total_flop = n_full * seconds, n_full * flop
    if last:
        last_seconds, last_flop = time_batch_matmuls(2 * last, embedding_dim, n_negatives, device, repeats)
        total_seconds += last_seconds
        total_flop += last_flop
    return {"seconds": total_seconds, "flop": total_flop, "gflops": flop / seconds / 1e9}
