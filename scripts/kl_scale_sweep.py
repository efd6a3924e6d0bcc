"""KL + Attr. at paper 2's FB15K weights times each scale: test MRR and paper 2's bias measures.

    python scripts/kl_scale_sweep.py fb15k-237 1 20 200 2000
    python scripts/kl_scale_sweep.py fb15k-237 --gender 2000 20000 200000 2000000   # others x 20

The README's weight tables. Trains what results/ lacks (paper setting, at most 50 epochs,
validation every 5, early stopping after 2 validations without gain) and prints one row per run:
one per scale of all four weights, then one per gender weight with the others at paper x 20
(`--others-scale`).
"""

import argparse

import pandas as pd

from kgbias import TrainConfig, train
from kgbias.debias import compare
from kgbias.debias.kl import FB15K_WEIGHTS
from kgbias.debias.metrics import bias_summary


def sweep_row(dataset: str, weights: dict | None, label: str) -> dict:
    base = TrainConfig(dataset=dataset, valid_every=5, early_stopping_patience=2)
    run = train(base if weights is None else compare.method_config(base, "KL + Attr.", kl_weights=weights))
    bias = bias_summary(run.model, run.kg).set_index("attribute")
    row = {"weights": label, "test_mrr": round(run.metrics["test_without_sensitive"]["mrr_filtered"], 4),
           "run": run.path.name}
    for attribute, values in bias.iterrows():
        row[attribute] = f"{values.score_difference:.2f} / {values.probe_accuracy:.3f} (mf {values.most_frequent:.3f})"
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("scales", nargs="*", type=float, help="scales of paper 2's four weights")
    parser.add_argument("--gender", nargs="*", type=float, default=[], help="gender weights to try")
    parser.add_argument("--others-scale", type=float, default=20, help="scale of the other weights with --gender")
    args = parser.parse_args(argv)
    rows = [sweep_row(args.dataset, None, "Basic")]
    rows += [sweep_row(args.dataset, {a: w * s for a, w in FB15K_WEIGHTS.items()}, f"x {s:g}") for s in args.scales]
    for gender in args.gender:
        weights = {a: w * args.others_scale for a, w in FB15K_WEIGHTS.items()} | {"gender": gender}
        rows.append(sweep_row(args.dataset, weights, f"gender {gender:g}, others x {args.others_scale:g}"))
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
