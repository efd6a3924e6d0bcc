"""kgbias training epochs on FB15k-237 (or ``--dataset fb15k``) in the papers' setting, timed
against the matmul floor.

``python -m bench.kgbias_train --comparator dot --epochs 3`` (normally run by ``python -m bench``).
The loop is ``kgbias.training.train_epoch`` with the optimizer and warm-up of
``kgbias.training._optimizer``, i.e. what ``kgbias.training.train`` runs between its checkpoints,
without validation or checkpoint writing.
"""

from __future__ import annotations

import argparse
import importlib
import math
import statistics
from pathlib import Path

import torch

from kgbias.runs import atomic_write

from .common import Timer, description, emit, load_graph, log, peak_device_mib, peak_rss_mib, row, setup_torch
from .floor import epoch_floor, time_batch_matmuls


DEBIAS = {  # --debias choice: TrainConfig fields
    "none": {},
    "kl": {"debias": "kl"},
    "kl+attr": {"debias": "kl", "attribute_vectors": True, "whitelist": "default"},
    "bose": {"debias": "bose"},
}


class Method:
    """One training run being timed: its model, optimizer, batch generator and epoch times.

    ``package``: the kgbias package that trains (``bench.ab`` passes another revision's copy);
    ``dataset``: the name of ``kg``, whose default whitelist KL + Attr. takes.
    """

    def __init__(self, name: str, kg, comparator: str, device: str, package: str = "kgbias",
                 dataset: str = "fb15k-237"):
        self.training = training = importlib.import_module(f"{package}.training")
        config_class = importlib.import_module(f"{package}.config").TrainConfig
        self.config = config_class(dataset=dataset, comparator=comparator, **DEBIAS[name])
        self.label = comparator if name == "none" else f"{comparator}+{name}"
        self.device = device
        self.model = training.make_model(self.config, kg).to(device)
        self.scorer = training.scoring_model(self.config, kg, self.model).to(device)  # the model unless kl+attr
        self.optimizer, self.scheduler = training._optimizer(self.model, self.config,
                                                             math.ceil(len(kg.train) / self.config.batch_size))
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.debiasing = training.make_debiasing(self.config, kg, device, model=self.model)
        self.seconds, self.losses = [], []

    def train(self, triples, epoch: int) -> float:
        """One pass of ``train_epoch`` over ``triples``; returns its mean loss."""
        return self.training.train_epoch(self.scorer, self.optimizer, self.scheduler, triples, self.config,
                                         self.generator, self.device, epoch, debiasing=self.debiasing)

    def epoch(self, kg, epoch: int) -> None:
        with Timer(self.device) as timer:
            self.losses.append(self.train(kg.train, epoch))
        self.seconds.append(timer.seconds)
        log(f"kgbias {self.label} epoch {epoch}: {timer.seconds:.2f} s, loss {self.losses[-1]:.4f}")


def interleaved_ratios(methods: list[Method], kg, pairs: int, steps: int = 10) -> list[dict]:
    """Each method's time per step against the first's, from ``pairs`` rounds of ``steps``-step
    chunks, every method once per round on the same triples, the order reversed every other
    round: a slow spell of the machine falls on all alike, which whole epochs (4-9 s each) do not
    ensure. One row per other method: the median of the per-round ratios."""
    generator = torch.Generator().manual_seed(1)
    ms = {method.label: [] for method in methods}
    for round_ in range(pairs):
        chunk = kg.train[torch.randint(len(kg.train), (steps * methods[0].config.batch_size,), generator=generator)]
        for method in methods if round_ % 2 == 0 else methods[::-1]:
            with Timer(method.device) as timer:
                method.train(chunk, 0)
            ms[method.label].append(timer.seconds / steps * 1000)
    base = methods[0].label
    rows = []
    for method in methods[1:]:
        rows.append(median_ratio_row(f"kgbias {method.label} / {base} step, chunks interleaved", ms[method.label],
                                     ms[base], f"{pairs} rounds of {steps}-step chunks"))
    return rows


def median_ratio_row(name: str, ms: list[float], base_ms: list[float], rounds: str) -> dict:
    """A train-section row: the median of the per-round ratios ``ms / base_ms``, with the 95%
    interval of the median (:func:`median_interval`) and the quartiles; ``rounds`` says what a
    round timed."""
    ratios = [a / b for a, b in zip(ms, base_ms)]
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    low, high = median_interval(ratios)
    return row("train", name, statistics.median(ratios), "x", interval_low=low, interval_high=high,
               note=f"median of {rounds} (95% interval of the median {low:.2f}-{high:.2f}; quartiles "
                    f"{q1:.2f}-{q3:.2f}); ms per step {statistics.median(ms):.2f} vs {statistics.median(base_ms):.2f}")


def floor_ratio(method: Method, kg, rounds: int, steps: int = 10) -> dict:
    """``method``'s time per training step against the matmul floor of one step, from ``rounds``
    rounds: each times a ``steps``-step chunk of training and ``steps`` repeats of one full batch's
    three products (:func:`bench.floor.time_batch_matmuls`), in an order reversed every other round.
    The floor timed before and after the epochs falls minutes away from them, in another spell of
    the machine: on one EPYC, on one day, it measured the products at 132 and 106 GFLOP/s and the
    same epochs read 2.1x and 1.5x of it. One row: the median of the per-round ratios, with its
    95% interval."""
    config, generator = method.config, torch.Generator().manual_seed(2)
    step_ms, floor_ms = [], []

    def train(chunk):
        with Timer(method.device) as timer:
            method.train(chunk, 0)
        step_ms.append(timer.seconds / steps * 1000)

    def products(_chunk):
        seconds, _ = time_batch_matmuls(2 * config.batch_size, config.embedding_dim, config.n_negatives,
                                        method.device, repeats=steps)
        floor_ms.append(seconds * 1000)

    for round_ in range(rounds):
        chunk = kg.train[torch.randint(len(kg.train), (steps * config.batch_size,), generator=generator)]
        for part in (train, products) if round_ % 2 == 0 else (products, train):
            part(chunk)
    return median_ratio_row(f"kgbias {method.label} step / matmul floor, interleaved", step_ms, floor_ms,
                            f"{rounds} rounds of {steps} steps and {steps} timings of a batch's three products")


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median of what ``values`` sample: the order statistics
    ``x_(k)`` and ``x_(n+1-k)`` with the largest ``k`` such that a Binomial(n, 1/2) falls below ``k``
    with probability at most ``(1 - confidence) / 2`` (coverage at least ``confidence``). Whether a
    ratio is below a target is resolved only when the whole interval is. The full range when ``n``
    is too small for the confidence."""
    ordered, n = sorted(values), len(values)
    tail, k, below = (1 - confidence) / 2, 0, 0.0
    while k < n // 2 and below + math.comb(n, k) / 2 ** n <= tail:
        below += math.comb(n, k) / 2 ** n
        k += 1
    k = max(k, 1)  # P(Binomial < k) <= tail: the interval is the k-th smallest to the k-th largest
    return ordered[k - 1], ordered[n - k]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--comparator", default="dot", choices=["dot", "l1", "l2"])
    parser.add_argument("--dataset", default="fb15k-237", help="registered dataset (default: the papers' setting on "
                                                                 "FB15k-237); fb15k: paper 2's own")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed (the first reported apart)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--floor", action="store_true", help="also measure the matmul floor (before and after)")
    parser.add_argument("--interleaved-pairs", type=int, default=0,
                        help="after the epochs, this many rounds of 10-step chunks of every method, for "
                             "per-step ratios against the first method (0: none)")
    parser.add_argument("--floor-rounds", type=int, default=0,
                        help="after the epochs (and --save), this many rounds of 10 training steps of the first "
                             "method and 10 timings of the floor's products, alternated: the step's ratio to "
                             "the floor, both timed in the same spell of the machine (0: none)")
    parser.add_argument("--save", default=None, help="save the trained model's state_dict here (one method only)")
    parser.add_argument("--debias", default="none",
                        help=f"debiasing method, or a comma list of them ({', '.join(DEBIAS)}) trained in "
                             "alternation: epoch 1 of each, then epoch 2 of each, ..., so that a slower or "
                             "faster spell of the machine hits every method alike (paper 2's FB15K "
                             "weights; kl+attr: the dataset's default whitelist)")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.debias.split(",") if name.strip()]
    unknown = sorted(set(names) - set(DEBIAS))
    if unknown or not names:
        parser.error(f"--debias: unknown method(s) {unknown}; known: {', '.join(DEBIAS)}")
    if args.save and len(names) > 1:
        parser.error("--save takes one method")
    setup_torch(args.threads)

    kg = load_graph(args.dataset)
    methods = [Method(name, kg, args.comparator, args.device, dataset=args.dataset) for name in names]
    config = methods[0].config
    shape = dict(n_triples=len(kg.train), batch_size=config.batch_size,
                 embedding_dim=config.embedding_dim, n_negatives=config.n_negatives, device=args.device)
    floors = [epoch_floor(**shape)] if args.floor else []
    for epoch in range(1, args.epochs + 1):
        for method in methods:
            method.epoch(kg, epoch)
    if args.floor:
        floors.append(epoch_floor(**shape))
    interleaved = interleaved_ratios(methods, kg, args.interleaved_pairs) if args.interleaved_pairs and len(methods) > 1 else []
    if args.save:
        atomic_write(Path(args.save), lambda file: torch.save(methods[0].model.state_dict(), file))
    # after --save: its extra steps would change the weights that the evaluation section ranks with
    interleaved += [floor_ratio(methods[0], kg, args.floor_rounds)] if args.floor_rounds else []

    common = dict(device=args.device, dataset=args.dataset, n_triples=len(kg.train), n_entities=kg.n_entities,
                  peak_rss_mib=peak_rss_mib(), peak_device_mib=peak_device_mib(args.device))
    rows = []
    for method in methods:
        seconds, losses = method.seconds, method.losses
        steady = seconds[1:] or seconds
        others = [other.label for other in methods if other is not method]
        alternated = f"; epochs alternated with {', '.join(others)}" if others else ""
        rows += [
            row("train", f"kgbias {method.label} first epoch", seconds[0], "s", **common,
                note=f"loss {losses[0]:.4f}"),
            row("train", f"kgbias {method.label} steady epoch", sum(steady) / len(steady), "s", **common,
                epoch_seconds=seconds, alternated=bool(others),
                note=(f"mean of epochs 2-{len(seconds)}; min {min(steady):.2f} s; loss {losses[-1]:.4f}"
                      if len(seconds) > 1 else "only one epoch run: steady = first") + alternated),
        ]
    if floors:
        best = min(floors, key=lambda f: f["seconds"])
        before_after = ", ".join(f"{f['seconds']:.2f}" for f in floors)
        rows.append(row("train", "matmul floor per epoch", best["seconds"], "s", **common,
                        flop=best["flop"], gflops=best["gflops"],
                        note=f"{best['flop']:.3g} FLOP at {best['gflops']:.0f} GFLOP/s "
                             f"(best of before/after training: {before_after} s)"))
    emit(rows + [{**item, **common} for item in interleaved])


if __name__ == "__main__":
    main()
