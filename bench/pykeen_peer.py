"""PyKEEN 1.11's TransE on FB15k-237, as close to kgbias's training setting as PyKEEN allows.

``python -m bench.pykeen_peer train --model l2 --epochs 1`` and
``python -m bench.pykeen_peer evaluate --weights build/bench/kgbias-l2.pt`` (normally run by
``python -m bench``). Needs ``pip install -e ".[bench]"``.

Matched: FB15k-237 with kgbias's entity and relation ids, d = 200, softmax cross-entropy over each
positive and its negatives (``CrossEntropyLoss`` on sLCWA scores = ``kgbias.losses.softmax_loss``),
1000 uniformly drawn negative tails per positive, AdaGrad lr 0.1, both directions trained through
inverse relations (``create_inverse_triples=True``: the training set is doubled and only tails are
corrupted, which is kgbias's ``(h, r, ?)`` + ``(t, r^-1, ?)``), 2000 positives per step (= kgbias's
batch of 1000 triples, each trained on both sides).

What differs (PyKEEN offers no switch for these):

* negatives are drawn per positive (a ``(2000, 1000)`` block of ids, scored triple by triple as
  ``(2000 * 1000, d)`` gathered tensors), not shared by the batch (one ``(2000, d) x (d, 1000)``
  product in kgbias);
* the model's tables are dense ``nn.Embedding``s, so AdaGrad updates all of them every step;
* a batch mixes forward and inverse triples at random instead of pairing both sides of a triple;
* no learning-rate warm-up; PyKEEN calls ``gc.collect()`` every epoch;
* ``--model l2``: PyKEEN's own TransE, ``-||h + r - t||_2``, which by default re-normalises the
  entity table after each step (we keep that; it is part of PyKEEN's TransE) and initialises with
  Xavier; compare with kgbias ``comparator="l2"``;
* ``--model dot``: the papers' ``<h + r, t>`` as a custom ``Interaction`` in an ``ERModel``
  (no constraint, normal init with std 1e-3 as kgbias); compare with kgbias ``comparator="dot"``.
"""

from __future__ import annotations

import argparse
import time

import torch

from .common import Timer, description, emit, load_fb15k237, log, peak_device_mib, peak_rss_mib, row, setup_torch

EMBEDDING_DIM = 200
N_NEGATIVES = 1000
BATCH_TRIPLES = 1000  # kgbias's batch; PyKEEN gets twice as many positives (both directions)
LEARNING_RATE = 0.1


def triples_factories(kg, create_inverse_triples: bool = True):
    """PyKEEN factories over kgbias's own ids, so embeddings can be copied row for row."""
    from pykeen.triples import TriplesFactory

    entity_to_id = {name: i for i, name in enumerate(kg.entities)}
    relation_to_id = {name: i for i, name in enumerate(kg.relations)}
    return {split: TriplesFactory(mapped_triples=kg.split(split), entity_to_id=entity_to_id,
                                  relation_to_id=relation_to_id, create_inverse_triples=create_inverse_triples)
            for split in ("train", "valid", "test")}


def dot_transe_interaction():
    """The papers' TransE score ``<h + r, t>`` as a PyKEEN interaction."""
    from pykeen.nn.modules import Interaction

    class DotTransEInteraction(Interaction):
        def forward(self, h, r, t):
            return ((h + r) * t).sum(dim=-1)

    return DotTransEInteraction


def build_model(kind: str, factory, device: str, seed: int = 0):
    from pykeen.models import ERModel, TransE

    torch.manual_seed(seed)
    if kind == "l2":
        model = TransE(triples_factory=factory, embedding_dim=EMBEDDING_DIM, scoring_fct_norm=2,
                       random_seed=seed)
    elif kind == "dot":
        init = dict(shape=EMBEDDING_DIM, initializer=torch.nn.init.normal_, initializer_kwargs=dict(std=1e-3))
        model = ERModel(triples_factory=factory, interaction=dot_transe_interaction(),
                        entity_representations_kwargs=init, relation_representations_kwargs=init,
                        random_seed=seed)
    else:
        raise ValueError(f"model must be l2 or dot, got {kind!r}")
    return model.to(device)


def train(args) -> list[dict]:
    from pykeen.losses import CrossEntropyLoss
    from pykeen.training import SLCWATrainingLoop
    from pykeen.training.callbacks import TrainingCallback
    from pykeen.triples import TriplesFactory

    kg = load_fb15k237()
    factory = triples_factories(kg)["train"]
    n_triples = len(kg.train)
    if args.subset:
        # a random subset keeps every entity and relation id, so the model is the full-size one
        keep = torch.randperm(n_triples, generator=torch.Generator().manual_seed(0))[:args.subset]
        factory = TriplesFactory(mapped_triples=kg.train[keep], entity_to_id=factory.entity_to_id,
                                 relation_to_id=factory.relation_to_id, create_inverse_triples=True)
    model = build_model(args.model, factory, args.device)
    loss = CrossEntropyLoss()
    model.loss = loss
    optimizer = torch.optim.Adagrad(model.get_grad_params(), lr=LEARNING_RATE)
    loop = SLCWATrainingLoop(
        model=model, triples_factory=factory, optimizer=optimizer,
        negative_sampler="basic",
        negative_sampler_kwargs=dict(num_negs_per_pos=N_NEGATIVES, corruption_scheme=("tail",)),
    )

    stamps = []

    class Stamp(TrainingCallback):
        def post_epoch(self, epoch, epoch_loss, **kwargs):
            if str(args.device).startswith("cuda"):
                torch.cuda.synchronize()
            stamps.append((time.perf_counter(), epoch_loss))
            log(f"pykeen {args.model} epoch {epoch}: loss {epoch_loss:.4f}")

    started = time.perf_counter()
    loop.train(triples_factory=factory, num_epochs=args.epochs, batch_size=2 * BATCH_TRIPLES,
               use_tqdm=False, use_tqdm_batch=False, callbacks=[Stamp()], pin_memory=False)
    ends = [stamp for stamp, _ in stamps]
    seconds = [end - begin for begin, end in zip([started] + ends[:-1], ends)]
    # Only the steady epochs are scaled from the subset to the full epoch: the first epoch also
    # holds PyKEEN's one-off setup (instances, data loader), which does not grow with the subset.
    scale = n_triples / factory.num_triples
    steady = [s * scale for s in (seconds[1:] or seconds)]
    note = (f"CrossEntropyLoss, {N_NEGATIVES} per-positive tail negatives, batch {2 * BATCH_TRIPLES} "
            f"positives incl. inverses; loss {stamps[-1][1]:.4f}")
    if args.subset:
        note += (f"; timed on {factory.num_triples} of {n_triples} triples, scaled x{scale:.1f}; "
                 f"unscaled first epoch incl. setup {seconds[0]:.1f} s")
    if len(seconds) == 1:
        note += "; only one epoch run: it includes the setup"
    common = dict(device=args.device, n_triples=n_triples, n_entities=kg.n_entities,
                  peak_rss_mib=peak_rss_mib(), peak_device_mib=peak_device_mib(args.device), note=note)
    return [row("train", f"pykeen {args.model} steady epoch", sum(steady) / len(steady), "s", **common)]


def copy_kgbias_weights(model, state: dict, n_relations: int) -> None:
    """kgbias's tables into a PyKEEN model with inverse triples.

    PyKEEN stores relation ``r`` at row ``2r`` and its inverse at ``2r + 1``; kgbias at ``r`` and
    ``r + n_relations``.
    """
    entity = state["entity.weight"]
    relation = state["relation.weight"]
    interleaved = torch.empty_like(relation)
    interleaved[0::2] = relation[:n_relations]
    interleaved[1::2] = relation[n_relations:]
    with torch.no_grad():
        model.entity_representations[0]._embeddings.weight.copy_(entity)
        model.relation_representations[0]._embeddings.weight.copy_(interleaved)


def evaluate(args) -> list[dict]:
    from pykeen.evaluation import RankBasedEvaluator

    kg = load_fb15k237()
    factories = triples_factories(kg)
    state = torch.load(args.weights, map_location="cpu")
    model = build_model(args.model, factories["train"], args.device)
    copy_kgbias_weights(model, state, kg.n_relations)
    model.eval()
    evaluator = RankBasedEvaluator(filtered=True)
    test = factories["test"].mapped_triples
    ranked = test[:args.test_subset] if args.test_subset else test
    with Timer(args.device) as timer:
        # the whole test set stays in the filter when only a subset is ranked
        results = evaluator.evaluate(
            model, mapped_triples=ranked,
            additional_filter_triples=[factories["train"].mapped_triples, factories["valid"].mapped_triples, test],
            batch_size=args.batch_size, use_tqdm=False)
    mrr = {ties: float(results.get_metric(f"both.{ties}.inverse_harmonic_mean_rank"))
           for ties in ("realistic", "optimistic", "pessimistic")}
    log(f"pykeen evaluate {args.model}: {timer.seconds:.2f} s, MRR {mrr['realistic']:.4f}")
    return [row("evaluate", f"pykeen RankBasedEvaluator ({args.model})", timer.seconds, "s",
                device=args.device, mrr=mrr["realistic"], mrr_optimistic=mrr["optimistic"],
                mrr_pessimistic=mrr["pessimistic"], n_triples=len(ranked), n_entities=kg.n_entities,
                peak_rss_mib=peak_rss_mib(), peak_device_mib=peak_device_mib(args.device),
                note=f"filtered (train+valid+test), heads and tails of {len(ranked)} test triples, "
                     f"batch {args.batch_size}")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("task", choices=["train", "evaluate"])
    parser.add_argument("--model", default="l2", choices=["l2", "dot"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=0, help="train on this many random triples and scale up")
    parser.add_argument("--weights", help="kgbias state_dict to evaluate")
    parser.add_argument("--batch-size", type=int, default=500, help="evaluation batch (test triples)")
    parser.add_argument("--test-subset", type=int, default=0, help="rank only the first n test triples")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    setup_torch(args.threads)
    emit(train(args) if args.task == "train" else evaluate(args))


if __name__ == "__main__":
    main()
