"""Training cost on synthetic graphs of 10^4, 10^5 and 10^6 entities with 10x as many triples.

``python -m bench.scaling --n-entities 100000 --batches 50`` (normally run by ``python -m bench``,
one subprocess per size so each reports its own peak memory).

The graphs are random: 200 relations drawn uniformly, heads and tails drawn from a Zipf-like
degree distribution (``p(i) ~ (i + 1)^-0.75``, like real graphs a few hubs and a long tail). The
papers' setting is used (dot TransE, d = 200, 1000 shared negatives, batch 1000, AdaGrad, warm-up).
An epoch is timed on ``--batches`` batches and extrapolated to ``ceil(n_triples / batch_size)``
batches plus the epoch's one ``randperm`` of all triples (``--batches 0``: a whole epoch is run).
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

from .common import Timer, emit, log, peak_device_mib, peak_rss_mib, row, setup_torch

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    timed = triples if args.batches == 0 else triples[:args.batches * config.batch_size]
    n_timed = math.ceil(len(timed) / config.batch_size)
    with Timer(args.device) as timer:
        train_epoch(model, optimizer, scheduler, timed, config, generator, args.device, 1)
    with Timer() as shuffle:
        torch.randperm(n_triples, generator=generator)
    if args.batches == 0:
        seconds, how = timer.seconds, "one whole epoch"
    else:
        seconds = timer.seconds / n_timed * steps_per_epoch + shuffle.seconds
        how = f"{n_timed} batches timed, extrapolated to {steps_per_epoch}"
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
