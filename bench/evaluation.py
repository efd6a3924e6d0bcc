"""kgbias's filtered evaluation of the FB15k-237 test set, and the bias measure's time.

``python -m bench.evaluation --weights build/bench/kgbias-l2.pt --comparator l2`` (normally run by
``python -m bench``). The weights come from ``bench.kgbias_train --save``; PyKEEN's evaluator is
run on the same file by ``bench.pykeen_peer evaluate``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from kgbias.config import TrainConfig
from kgbias.evaluate import KnownAnswers, link_prediction
from kgbias.training import make_model

from .common import Timer, description, emit, load_fb15k237, log, peak_device_mib, peak_rss_mib, row, setup_torch


def load_model(kg, weights: str, comparator: str, device: str):
    model = make_model(TrainConfig(dataset="fb15k-237", comparator=comparator), kg)
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    return model.to(device).eval()


def time_evaluation(kg, model, device: str, comparator: str, test_subset: int = 0) -> dict:
    """``link_prediction`` as users call it, filter (``KnownAnswers`` of all splits) built inside the timing.

    With ``test_subset`` only the first test triples are ranked (the filter keeps the whole test set).
    """
    ranked_kg = replace(kg, test=kg.test[:test_subset]) if test_subset else kg
    with Timer(device) as timer:
        known = KnownAnswers(kg.all_triples(), kg.n_relations)
        metrics = link_prediction(model, ranked_kg, "test", known=known)
    optimistic = link_prediction(model, ranked_kg, "test", ties="optimistic", known=known)["mrr_filtered"]
    pessimistic = link_prediction(model, ranked_kg, "test", ties="pessimistic", known=known)["mrr_filtered"]
    log(f"kgbias evaluate {comparator}: {timer.seconds:.2f} s, MRR {metrics['mrr_filtered']:.4f}")
    return row("evaluate", f"kgbias link_prediction ({comparator})", timer.seconds, "s", device=device,
               mrr=metrics["mrr_filtered"], mrr_optimistic=optimistic, mrr_pessimistic=pessimistic,
               n_triples=len(ranked_kg.test), n_entities=kg.n_entities, peak_rss_mib=peak_rss_mib(),
               peak_device_mib=peak_device_mib(device),
               note=f"filtered (train+valid+test), heads and tails of {len(ranked_kg.test)} test triples, "
                    "batch 500, realistic ties")


def time_bias(kg, model, device: str, comparator: str) -> list[dict]:
    """``gradient_bias``: b_p for every profession, averaged over all humans and over people with a gender."""
    try:
        from kgbias.bias import ALL_HUMANS, gradient_bias
    except ImportError as error:
        return [row("bias", "gradient_bias", None, "s", note=f"TODO: kgbias.bias not importable ({error})")]
    rows = []
    for people, label in ((ALL_HUMANS, "all humans"), (None, "people with a gender")):
        gradient_bias(model, kg, people=people, min_count=0)  # warm-up (pandas, autograd)
        with Timer(device) as timer:
            frame = gradient_bias(model, kg, people=people, min_count=0)
        log(f"gradient_bias ({label}): {timer.seconds:.3f} s")
        rows.append(row("bias", f"gradient_bias b_p, {label} ({comparator})", timer.seconds, "s", device=device,
                        n_entities=kg.n_entities, peak_rss_mib=peak_rss_mib(),
                        note=f"{frame.attrs['n_people']} people x {len(frame)} professions, min_count 0"))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--weights", required=True)
    parser.add_argument("--comparator", default="l2", choices=["dot", "l1", "l2"])
    parser.add_argument("--bias", action="store_true", help="time gradient_bias instead of the evaluation")
    parser.add_argument("--test-subset", type=int, default=0, help="rank only the first n test triples")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    setup_torch(args.threads)
    kg = load_fb15k237()
    model = load_model(kg, args.weights, args.comparator, args.device)
    if args.bias:
        emit(time_bias(kg, model, args.device, args.comparator))
    else:
        emit([time_evaluation(kg, model, args.device, args.comparator, args.test_subset)])


if __name__ == "__main__":
    main()
