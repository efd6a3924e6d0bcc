"""The NN probe's distance from the majority rate over several splits of the people, for finished runs.

    python scripts/probe_spread.py results/transe-dot-fb15k-237-d200-s0-e2431bb2 results/... --seeds 5

One probe split tests a few hundred people, so a single accuracy moves by about .015 with the
split. Prints one row per run: its method, debiasing weights, whitelist and training seed, test
MRR (sensitive triples removed), the difference in scores, and the probe's accuracy minus the
majority rate for each probe seed with their mean and standard deviation
(:func:`kgbias.debias.metrics.probe_margins`). Runs must be finished (nothing is trained).
"""

import argparse

import pandas as pd
import torch

from kgbias.debias import compare, score_difference
from kgbias.debias.metrics import probe_margins
from kgbias.training import load_run


def _people_label(config) -> str:
    """Whose embeddings the KL term read (kl_people), and the second term's scale when not 1."""
    label = {"batch": "", "all": "every person", "batch+all": "batch + every person",
             "batch+centroid": "batch + centroid"}[config.kl_people]
    if config.kl_second_scale != 1:
        label += f" x {config.kl_second_scale:g}"
    return f" ({label})" if label else ""


def spread_row(path: str, attribute: str, seeds) -> dict:
    run = load_run(path)
    config = run.config
    metrics = run.metrics.get("test_without_sensitive", run.metrics["test"])
    margins = probe_margins(run.model, run.kg, attribute, seeds=seeds)["margin"]
    method = compare.method_of(config)
    return {"run": run.path.name[-8:], "method": method + (" (relations trained)" if config.kl_train_relations else "")
            + _people_label(config),
            "weights": ",".join(f"{k}={v:g}" for k, v in sorted(config.debias_weights.items())),
            "whitelist": config.whitelist, "train_seed": config.seed,
            "test_mrr": round(metrics["mrr_filtered"], 4),
            "difference": round(float(score_difference(run.model, run.kg, attribute)), 3),
            **{f"margin_{seed}": round(float(m), 3) for seed, m in zip(seeds, margins)},
            "margin_mean": round(float(margins.mean()), 3), "margin_sd": round(float(margins.std(ddof=1)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished run folders")
    parser.add_argument("--attribute", default="gender")
    parser.add_argument("--seeds", type=int, default=5, help="probe seeds 0 .. n-1 (default 5)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small matrices: threads only add waiting
    seeds = list(range(args.seeds))
    table = pd.DataFrame([spread_row(path, args.attribute, seeds) for path in args.runs])
    print(table.to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
