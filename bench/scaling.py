"""Training cost on synthetic graphs of 10^4, 10^5 and 10^6 entities with 10x as many triples.

``python -m bench.scaling --n-entities 100000 --batches 50`` (normally run by ``python -m bench``,
one subprocess per size so each reports its own peak memory).

The graphs are random: 200 relations drawn uniformly, heads and tails drawn from a Zipf-like
degree distribution (``p(i) ~ (i + 1)^-0.75``, like real graphs a few hubs and a long tail). The
papers' setting is used (dot TransE, d = 200, 1000 shared negatives, batch 1000, AdaGrad, warm-up).
An epoch is timed on ``--batches`` batches and extrapolated to ``ceil(n_triples / batch_size)``
batches plus the epoch's one ``randperm`` of all triples (``--batches 0``: a whole epoch is run; a
graph with fewer batches than that is timed over whole epochs, :func:`timed_work`).
If the cost per step grew with the number of entities (a dense update of the whole table every
step) the seconds per million triples would grow with the graph; with sparse updates they stay flat.
"""

from __future__ import annotations

import argparse
import math
from types import SimpleNamespace

import torch

from kgbias.config import TrainConfig
from kgbias.training import _optimizer, make_model, train_epoch

from .common import Timer, description, emit, log, peak_device_mib, peak_rss_mib, row, setup_torch

N_RELATIONS = 200
ZIPF_EXPONENT = 0.75


def synthetic_triples(n_entities: int, n_triples: int, seed: int = 0) -> torch.Tensor:
    """``shape: (n_triples, 3)`` random ``(head, relation, tail)`` ids with skewed entity degrees."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.arange(1, n_entities + 1, dtype=torch.float64).pow_(-ZIPF_EXPONENT)
    cdf = torch.cumsum(weights, 0)
    cdf /= cdf[-1].clone()
    # shuffle ids so that hubs are spread over the table, not all in its first rows
    relabel = torch.randperm(n_entities, generator=generator)

    def draw():
        u = torch.rand(n_triples, generator=generator, dtype=torch.float64)
        return relabel[torch.searchsorted(cdf, u).clamp_max_(n_entities - 1)]

    relation = torch.randint(N_RELATIONS, (n_triples,), generator=generator)
    return torch.stack([draw(), relation, draw()], dim=1)


def timed_work(batches: int, steps_per_epoch: int) -> tuple[int, int]:
    """What to time for ``--batches``: ``(whole epochs, 0)``, or ``(0, batches)`` of one epoch.

    ``0`` asks for one whole epoch. A graph with fewer batches per epoch than asked for is timed over
    whole epochs, as many as reach the number asked for: one epoch of the 10^4-entity graph is 100
    batches, 1.6-2.3 s in three runs a minute apart (2026-11-27).
    """
    if batches == 0:
        return 1, 0
    if batches >= steps_per_epoch:
        return math.ceil(batches / steps_per_epoch), 0
    return 0, batches


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--n-entities", type=int, required=True)
    parser.add_argument("--triples-per-entity", type=int, default=10)
    parser.add_argument("--batches", type=int, default=50, help="batches timed (0: a whole epoch)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    setup_torch(args.threads)

    n_triples = args.n_entities * args.triples_per_entity
    with Timer() as generation:
        triples = synthetic_triples(args.n_entities, n_triples)
    log(f"scaling: {args.n_entities:.0e} entities, {n_triples:.0e} triples generated in {generation.seconds:.1f} s")
    config = TrainConfig(dataset="synthetic")
    graph = SimpleNamespace(n_entities=args.n_entities, n_relations=N_RELATIONS)
    model = make_model(config, graph).to(args.device)
    steps_per_epoch = math.ceil(n_triples / config.batch_size)
    optimizer, scheduler = _optimizer(model, config, steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)

    # untimed warm-up: thread pool, allocator, AdaGrad state
    train_epoch(model, optimizer, scheduler, triples[:3 * config.batch_size], config, generator, args.device, 0)
    n_epochs, n_batches = timed_work(args.batches, steps_per_epoch)
    if n_epochs:  # whole epochs, shuffle included
        with Timer(args.device) as timer:
            for epoch in range(n_epochs):
                train_epoch(model, optimizer, scheduler, triples, config, generator, args.device, 1 + epoch)
        seconds = timer.seconds / n_epochs
        how = "one whole epoch" if n_epochs == 1 else f"{n_epochs} whole epochs timed, their mean"
    else:
        with Timer(args.device) as timer:
            train_epoch(model, optimizer, scheduler, triples[:n_batches * config.batch_size], config, generator,
                        args.device, 1)
        with Timer() as shuffle:
            torch.randperm(n_triples, generator=generator)
        seconds = timer.seconds / n_batches * steps_per_epoch + shuffle.seconds
        how = f"{n_batches} batches timed, extrapolated to {steps_per_epoch}"
    per_million = seconds / (n_triples / 1e6)
    log(f"scaling {args.n_entities:.0e}: {seconds:.1f} s per epoch ({how}), {per_million:.1f} s per 1e6 triples")
    table_mib = 2 * (args.n_entities + 2 * N_RELATIONS) * config.embedding_dim * 4 / 2**20
    emit([row("scaling", f"synthetic {args.n_entities:.0e} entities, epoch", seconds, "s",
              device=args.device, n_triples=n_triples, n_entities=args.n_entities,
              s_per_million_triples=per_million, peak_rss_mib=peak_rss_mib(),
              peak_device_mib=peak_device_mib(args.device),
              note=f"{how}; s per 1e6 triples {per_million:.2f}; tables + AdaGrad state {table_mib:.0f} MiB")])


if __name__ == "__main__":
    main()
