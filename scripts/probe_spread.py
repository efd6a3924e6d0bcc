"""The NN probe's distance from the majority rate over several splits of the people, for finished runs.

    python scripts/probe_spread.py results/transe-dot-fb15k-237-d200-s0-e2431bb2 results/... --seeds 5

One probe split tests a few hundred people, so a single accuracy moves by about .015 with the
split. Prints one row per run: its method, debiasing weights, whitelist and training seed, test
MRR (sensitive triples removed), the difference in scores, and the probe's accuracy minus the
majority rate for each probe seed with their mean and standard deviation
(:func:`kgbias.debias.metrics.probe_margins`). Runs must be finished (nothing is trained).

``--against-basic`` adds the test MRR and the difference in scores as ratios to those of the Basic
run of the same config and seed (the run without any debiasing option), read from the same results
folder: issue #5's targets are stated against Basic.
"""

import argparse
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch

from kgbias.config import TrainConfig
from kgbias.debias import compare, score_difference
from kgbias.debias.metrics import probe_margins
from kgbias.errors import RunError
from kgbias.training import load_run


def _people_label(config) -> str:
    """Whose embeddings the KL term read (kl_people), and the second term's scale when not 1."""
    label = {"batch": "", "all": "every person", "batch+all": "batch + every person",
             "batch+centroid": "batch + centroid"}[config.kl_people]
    if config.kl_second_scale != 1:
        label += f" x {config.kl_second_scale:g}"
    return f" ({label})" if label else ""


# the options that make a run one of paper 2's methods; Basic has each at its default
METHOD_FIELDS = ("debias", "debias_weights", "kl_n_values", "kl_reduction", "kl_train_relations", "kl_people",
                 "kl_second_scale", "attribute_vectors", "whitelist", "bose_compose", "bose_gamma",
                 "bose_disc_steps", "bose_disc_lr", "remove_sensitive")


def basic_path(path: str | Path, config: TrainConfig) -> Path:
    """The folder of the Basic run with ``config``'s data, model, schedule and seed, beside ``path``."""
    defaults = TrainConfig()
    basic = replace(config, **{name: getattr(defaults, name) for name in METHOD_FIELDS})
    return Path(path).parent / basic.run_name()


def _test_mrr(run) -> float:
    return run.metrics.get("test_without_sensitive", run.metrics["test"])["mrr_filtered"]


@lru_cache(maxsize=None)
def _basic_reference(folder: Path, attribute: str) -> tuple[float, float]:
    """A Basic run's test MRR and difference in scores: several runs of one seed share it, loaded once."""
    basic = load_run(folder)
    return _test_mrr(basic), float(score_difference(basic.model, basic.kg, attribute))


def spread_row(path: str, attribute: str, seeds, against_basic: bool = False) -> dict:
    run = load_run(path)
    config = run.config
    margins = probe_margins(run.model, run.kg, attribute, seeds=seeds)["margin"]
    method = compare.method_of(config)
    difference = float(score_difference(run.model, run.kg, attribute))
    ratios = {}
    if against_basic:
        folder = basic_path(path, config)
        if not folder.exists():
            raise RunError(f"{path}: no Basic run of its config and seed beside it ({folder}); train that first")
        basic_mrr, basic_difference = _basic_reference(folder, attribute)
        ratios = {"mrr_vs_basic": round(_test_mrr(run) / basic_mrr, 3),
                  "difference_vs_basic": round(difference / basic_difference, 3)}
    return {"run": run.path.name[-8:], "method": method + (" (relations trained)" if config.kl_train_relations else "")
            + _people_label(config),
            "weights": ",".join(f"{k}={v:g}" for k, v in sorted(config.debias_weights.items())),
            "whitelist": config.whitelist, "train_seed": config.seed,
            "test_mrr": round(_test_mrr(run), 4),
            "difference": round(difference, 3), **ratios,
            **{f"margin_{seed}": round(float(m), 3) for seed, m in zip(seeds, margins)},
            "margin_mean": round(float(margins.mean()), 3), "margin_sd": round(float(margins.std(ddof=1)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished run folders")
    parser.add_argument("--attribute", default="gender")
    parser.add_argument("--seeds", type=int, default=5, help="probe seeds 0 .. n-1 (default 5)")
    parser.add_argument("--against-basic", action="store_true",
                        help="MRR and difference in scores as ratios to the same-seed Basic run's, beside each run")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small matrices: threads only add waiting
    seeds = list(range(args.seeds))
    table = pd.DataFrame([spread_row(path, args.attribute, seeds, args.against_basic) for path in args.runs])
    print(table.to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
