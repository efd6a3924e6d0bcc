"""KL + Attr. at paper 2's FB15K weights times each scale: test MRR and paper 2's bias measures.

    python scripts/kl_scale_sweep.py fb15k-237 1 20 200 2000
    python scripts/kl_scale_sweep.py fb15k-237 --gender 2000 20000 200000 2000000   # others x 20
    python scripts/kl_scale_sweep.py fb15k-237 --whitelist awards \
        --gender-alone 20000 50000 100000 200000
    python scripts/kl_scale_sweep.py fb15k-237 --whitelist awards --valid-every 0 --gender-alone 20000
    python scripts/kl_scale_sweep.py fb15k-237 --whitelist awards --train-relations --gender-alone 200000
    python scripts/kl_scale_sweep.py fb15k-237 --whitelist awards --seed 1 --gender-alone 20000 50000
    python scripts/kl_scale_sweep.py fb15k-237 --whitelist awards --every-person --gender-alone 20000
    python scripts/kl_scale_sweep.py fb15k-237 --whitelist awards --kl-people batch+all --gender-alone 20000

The weight tables of docs/debiasing.md. Trains what results/ lacks (paper setting, at most 50 epochs,
validation every 5, early stopping after 2 validations without gain; `--valid-every 0`: no
validation and the last epoch, paper 2's schedule) and prints one row per run:
one per scale of all four weights, then one per gender weight with the others at paper x 20
(`--others-scale`), then one per gender weight with the other attributes not debiased
(`--gender-alone`). `--whitelist` replaces the dataset's default whitelist (`awards`:
whitelists/<dataset>-awards.tsv). The last column gives gender's difference in scores averaged
over the two values (`score_difference(..., average="values")`), which a score offset shared by
everyone does not move.
"""

import argparse
from dataclasses import replace

import pandas as pd

from kgbias import TrainConfig, train
from kgbias.config import KL_PEOPLE
from kgbias.debias import compare
from kgbias.debias.kl import FB15K_WEIGHTS
from kgbias.debias.metrics import bias_summary, score_difference


def sweep_row(dataset: str, weights: dict | None, label: str, whitelist: str = "default",
              valid_every: int = 5, patience: int = 2, train_relations: bool = False, seed: int = 0,
              kl_people: str = "batch", second_scale: float = 1.0) -> dict:
    base = TrainConfig(dataset=dataset, valid_every=valid_every, early_stopping_patience=patience, seed=seed)
    if weights is not None:
        base = compare.method_config(base, "KL + Attr.", whitelist=whitelist, kl_weights=weights)
        base = replace(base, kl_train_relations=train_relations, kl_people=kl_people, kl_second_scale=second_scale)
    run = train(base)
    bias = bias_summary(run.model, run.kg).set_index("attribute")
    row = {"weights": label, "test_mrr": round(run.metrics["test_without_sensitive"]["mrr_filtered"], 4),
           "run": run.path.name}
    for attribute, values in bias.iterrows():
        row[attribute] = f"{values.score_difference:.2f} / {values.probe_accuracy:.3f} (mf {values.most_frequent:.3f})"
    row["gender over values"] = round(score_difference(run.model, run.kg, "gender", average="values"), 3)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("scales", nargs="*", type=float, help="scales of paper 2's four weights")
    parser.add_argument("--gender", nargs="*", type=float, default=[], help="gender weights to try")
    parser.add_argument("--others-scale", type=float, default=20, help="scale of the other weights with --gender")
    parser.add_argument("--gender-alone", nargs="*", type=float, default=[],
                        help="gender weights to try, the other attributes not debiased")
    parser.add_argument("--whitelist", default="default", help="whitelist: default, awards or a file")
    parser.add_argument("--valid-every", type=int, default=5,
                        help="validation every this many epochs (0: none, the last epoch is used, as in paper 2)")
    parser.add_argument("--patience", type=int, default=2, help="early stopping after this many validations without gain")
    parser.add_argument("--train-relations", action="store_true",
                        help="the KL term also trains the sensitive relations' vectors (kl_train_relations)")
    parser.add_argument("--kl-people", choices=KL_PEOPLE, default="batch",
                        help="whose embeddings the KL term reads each step (kl_people): the batch's people "
                             "(paper 2), every person, the two summed, or the batch's plus the mean person's")
    parser.add_argument("--every-person", action="store_true", help="the same as --kl-people all")
    parser.add_argument("--second-scale", type=float, default=1.0,
                        help="with --kl-people batch+all or batch+centroid: the second term's weight relative "
                             "to the batch's (kl_second_scale)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (initialisation, batches, negatives)")
    args = parser.parse_args(argv)
    schedule = {"valid_every": args.valid_every, "patience": args.patience, "seed": args.seed}
    kl_schedule = schedule | {"train_relations": args.train_relations,
                               "kl_people": "all" if args.every_person else args.kl_people,
                               "second_scale": args.second_scale}
    whitelist = args.whitelist
    rows = [sweep_row(args.dataset, None, "Basic", **schedule)]
    rows += [sweep_row(args.dataset, {a: w * s for a, w in FB15K_WEIGHTS.items()}, f"x {s:g}", whitelist, **kl_schedule)
             for s in args.scales]
    for gender in args.gender:
        weights = {a: w * args.others_scale for a, w in FB15K_WEIGHTS.items()} | {"gender": gender}
        rows.append(sweep_row(args.dataset, weights, f"gender {gender:g}, others x {args.others_scale:g}", whitelist,
                              **kl_schedule))
    rows += [sweep_row(args.dataset, {"gender": gender}, f"gender {gender:g} alone", whitelist, **kl_schedule)
             for gender in args.gender_alone]
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
