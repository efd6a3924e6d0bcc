"""kgbias training epochs on FB15k-237 in the papers' setting, timed against the matmul floor.

``python -m bench.kgbias_train --comparator dot --epochs 3`` (normally run by ``python -m bench``).
The loop is ``kgbias.training.train_epoch`` with the optimizer and warm-up of
``kgbias.training._optimizer``, i.e. what ``kgbias.training.train`` runs between its checkpoints,
without validation or checkpoint writing.
"""

from __future__ import annotations

import argparse
import math

import torch

from kgbias.config import TrainConfig
from kgbias.training import _optimizer, make_debiasing, make_model, scoring_model, train_epoch

from .common import Timer, emit, load_fb15k237, log, peak_device_mib, peak_rss_mib, row, setup_torch
from .floor import epoch_floor


DEBIAS = {  # --debias choice: TrainConfig fields
    "none": {},
    "kl": {"debias": "kl"},
    "kl+attr": {"debias": "kl", "attribute_vectors": True, "whitelist": "default"},
    "bose": {"debias": "bose"},
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparator", default="dot", choices=["dot", "l1", "l2"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed (the first reported apart)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--floor", action="store_true", help="also measure the matmul floor (before and after)")
    parser.add_argument("--save", default=None, help="save the trained model's state_dict here")
    parser.add_argument("--debias", default="none", choices=list(DEBIAS),
                        help="debiasing method (paper 2's FB15K weights; kl+attr: the default FB15k-237 whitelist)")
    args = parser.parse_args(argv)
    setup_torch(args.threads)

    kg = load_fb15k237()
    config = TrainConfig(dataset="fb15k-237", comparator=args.comparator, **DEBIAS[args.debias])
    label = args.comparator if args.debias == "none" else f"{args.comparator}+{args.debias}"
    shape = dict(n_triples=len(kg.train), batch_size=config.batch_size,
                 embedding_dim=config.embedding_dim, n_negatives=config.n_negatives, device=args.device)
    floors = [epoch_floor(**shape)] if args.floor else []

    model = make_model(config, kg).to(args.device)
    scorer = scoring_model(config, kg, model).to(args.device)  # the model itself unless kl+attr
    optimizer, scheduler = _optimizer(model, config, math.ceil(len(kg.train) / config.batch_size))
    generator = torch.Generator().manual_seed(config.seed)
    debiasing = make_debiasing(config, kg, args.device, model=model)
    seconds, losses = [], []
    for epoch in range(1, args.epochs + 1):
        with Timer(args.device) as timer:
            losses.append(train_epoch(scorer, optimizer, scheduler, kg.train, config, generator, args.device, epoch,
                                      debiasing=debiasing))
        seconds.append(timer.seconds)
        log(f"kgbias {label} epoch {epoch}: {timer.seconds:.2f} s, loss {losses[-1]:.4f}")
    if args.floor:
        floors.append(epoch_floor(**shape))
    if args.save:
        torch.save(model.state_dict(), args.save)

    steady = seconds[1:] or seconds
    common = dict(device=args.device, n_triples=len(kg.train), n_entities=kg.n_entities,
                  peak_rss_mib=peak_rss_mib(), peak_device_mib=peak_device_mib(args.device))
    rows = [
        row("train", f"kgbias {label} first epoch", seconds[0], "s", **common,
            note=f"loss {losses[0]:.4f}"),
        row("train", f"kgbias {label} steady epoch", sum(steady) / len(steady), "s", **common,
            note=f"mean of epochs 2-{len(seconds)}; min {min(steady):.2f} s; loss {losses[-1]:.4f}"
            if len(seconds) > 1 else "only one epoch run: steady = first"),
    ]
    if floors:
        best = min(floors, key=lambda f: f["seconds"])
        before_after = ", ".join(f"{f['seconds']:.2f}" for f in floors)
        rows.append(row("train", "matmul floor per epoch", best["seconds"], "s", **common,
                        flop=best["flop"], gflops=best["gflops"],
                        note=f"{best['flop']:.3g} FLOP at {best['gflops']:.0f} GFLOP/s "
                             f"(best of before/after training: {before_after} s)"))
    emit(rows)


if __name__ == "__main__":
    main()
