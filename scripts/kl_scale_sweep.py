"""KL + Attr. at paper 2's FB15K weights times each scale: test MRR and paper 2's bias measures.

    python scripts/kl_scale_sweep.py fb15k-237 1 20 200 2000

The README's weight-scale table. Trains what results/ lacks (paper setting, at most 50 epochs,
validation every 5, early stopping after 2 validations without gain) and prints one row per scale.
"""

import sys

import pandas as pd

from kgbias import TrainConfig, train
from kgbias.debias import compare
from kgbias.debias.kl import FB15K_WEIGHTS
from kgbias.debias.metrics import bias_summary


def sweep_row(dataset: str, scale: float | None) -> dict:
    base = TrainConfig(dataset=dataset, valid_every=5, early_stopping_patience=2)
    if scale is None:
        run, label = train(base), "Basic"
    else:
        weights = {a: w * scale for a, w in FB15K_WEIGHTS.items()}
        run, label = train(compare.method_config(base, "KL + Attr.", kl_weights=weights)), f"x {scale:g}"
    bias = bias_summary(run.model, run.kg).set_index("attribute")
    row = {"scale": label, "test_mrr": round(run.metrics["test_without_sensitive"]["mrr_filtered"], 3),
           "run": run.path.name}
    for attribute, values in bias.iterrows():
        row[attribute] = f"{values.score_difference:.2f} / {values.probe_accuracy:.3f} (mf {values.most_frequent:.3f})"
    return row


if __name__ == "__main__":
    dataset, scales = sys.argv[1], [float(s) for s in sys.argv[2:]]
    rows = [sweep_row(dataset, None)] + [sweep_row(dataset, s) for s in scales]
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(pd.DataFrame(rows).to_string(index=False))
