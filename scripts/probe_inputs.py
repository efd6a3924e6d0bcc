"""The NN probe on standardised and on raw embeddings, for finished runs (paper 2 does not say which).

    python scripts/probe_inputs.py results/transe-dot-fb15k-d200-s0-c0699515 results/...
    python scripts/probe_inputs.py results/transe-dot-fb15k-d* --attributes gender,ethnicity

Prints one row per run and attribute: test MRR (sensitive triples removed), difference in
scores, probe accuracy with each input, and the most frequent rate. Both probes use the same
people split and seed, so only the inputs differ. Runs must be finished (nothing is trained).
"""

import argparse

import pandas as pd
import torch

from kgbias.debias import compare, score_difference
from kgbias.debias.metrics import probe_accuracy
from kgbias.training import load_run


def rows(path: str, attributes: list[str], seed: int):
    run = load_run(path)
    metrics = run.metrics.get("test_without_sensitive", run.metrics["test"])
    config = run.config
    method = compare.method_of(config)
    for attribute in attributes:
        standardized = probe_accuracy(run.model, run.kg, attribute, seed=seed)
        raw = probe_accuracy(run.model, run.kg, attribute, seed=seed, standardize=False)
        yield {"run": run.path.name, "method": method,
               "weights": config.debias_weights or "", "attribute": attribute,
               "test_mrr": round(metrics["mrr_filtered"], 4),
               "score_difference": round(float(score_difference(run.model, run.kg, attribute)), 3),
               "probe_standardized": round(standardized["accuracy"], 3), "probe_raw": round(raw["accuracy"], 3),
               "most_frequent": round(standardized["most_frequent"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished run folders")
    parser.add_argument("--attributes", default="gender", help="comma list (default: gender)")
    parser.add_argument("--seed", type=int, default=0, help="the probes' split and initialisation")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small matrices: threads only add waiting
    table = pd.DataFrame([row for path in args.runs for row in rows(path, args.attributes.split(","), args.seed)])
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
