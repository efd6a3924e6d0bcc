"""Where a dot model's gender score gap sits: in each person's embedding, or shared by everyone.

    python scripts/score_offset.py results/transe-dot-fb15k-237-d200-s0-e2431bb2 results/...
    python scripts/score_offset.py --parts RUN...   # paper 2's difference in scores, every attribute

For a model whose score is affine in the person (``score(p, r, v) = e_p . K_v + b_v``, dot
comparators: :meth:`~kgbias.models.KGModel.head_form`), the gap between the two most frequent
values a and b is ``e_p . (K_a - K_b)`` (the person's part) plus ``b_a - b_b``, the same for every
person (for TransE ``r . (e_a - e_b)``: the relation's part). Prints, per true value, the number
of people and the means of the gap and of its two parts; the KL term pulls each person's gap
towards 0. ``--parts`` splits paper 2's difference in scores (true value minus the mean of the other
top values, mean over (person, value) pairs) the same way, for every sensitive attribute: the
shared part of a pair is ``b_v`` minus the mean of the other top values' ``b_u``, which a base rate
carried by the relation makes positive when the frequent values score higher for everyone. Runs
must be finished (nothing is trained).
"""

import argparse

import pandas as pd
import torch

from kgbias.debias.metrics import PAPER_ATTRIBUTES, present_attributes, score_differences, top_values_for
from kgbias.training import load_run


def value_form(model, kg, attribute: str, top: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(keys, bias)`` with ``score(p, r, v) = e_p . keys_v + bias_v`` for the attribute's
    relation and each value of ``top``; ValueError for a score not affine in the person."""
    relation = kg.attribute_relation(attribute)
    with torch.no_grad():
        form = model.head_form(model.relation.weight[relation].expand(len(top), -1), model.entity.weight[top])
    if form is None:
        raise ValueError("the score is not affine in the person (a distance comparator): no shared part")
    return form


def offset_parts(model, kg, attribute: str = "gender") -> pd.DataFrame:
    """One row per true value among the top two: ``n_people`` and the means of ``gap`` (score of
    the first top value minus the second), ``person_part`` and ``shared_part``."""
    top = top_values_for(kg, attribute, 2)
    keys, bias = value_form(model, kg, attribute, top)
    with torch.no_grad():
        pairs = kg.attribute_pairs(attribute, ("train",))
        pairs = pairs[torch.isin(pairs[:, 1], top)]
        person_part = model.entity.weight[pairs[:, 0]] @ (keys[0] - keys[1])
    shared = float(bias[0] - bias[1])
    frame = pd.DataFrame({"value": pairs[:, 1].tolist(), "person_part": person_part.double().tolist()})
    frame["gap"] = frame["person_part"] + shared
    table = frame.groupby("value", sort=False).agg(n_people=("gap", "size"), gap=("gap", "mean"),
                                                    person_part=("person_part", "mean"))
    table["shared_part"] = shared
    table.index = [kg.label(int(v)) for v in table.index]
    return table.sort_values("n_people", ascending=False, kind="stable")


def difference_parts(model, kg, attribute: str, n_values: int = 30) -> dict:
    """Paper 2's difference in scores for ``attribute`` (mean over pairs, as ``score_difference``)
    and its two parts: ``shared`` (the mean over pairs of ``b_v - mean_{u != v} b_u``) and
    ``person`` (the rest: ``e_p . (K_v - mean_{u != v} K_u)``)."""
    top = top_values_for(kg, attribute, n_values)
    bias = value_form(model, kg, attribute, top)[1].double()
    frame = score_differences(model, kg, attribute, n_values)
    position = torch.full((kg.n_entities,), -1, dtype=torch.long)
    position[top] = torch.arange(len(top))
    own = bias[position[torch.tensor(frame["value"].to_numpy())]]
    shared = float((own - (bias.sum() - own) / (len(top) - 1)).mean())
    difference = float(frame["difference"].mean())
    return {"attribute": attribute, "n_pairs": len(frame), "difference": difference, "shared": shared,
            "person": difference - shared}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished run folders")
    parser.add_argument("--attribute", default="gender")
    parser.add_argument("--parts", action="store_true",
                        help="paper 2's difference in scores of every sensitive attribute, split into its two parts")
    args = parser.parse_args()
    for path in args.runs:
        run = load_run(path)
        print(f"{run.path.name} (epoch {run.metrics['epoch_used']}):")
        if args.parts:
            attributes = present_attributes(run.kg, PAPER_ATTRIBUTES)
            table = pd.DataFrame([difference_parts(run.model, run.kg, a) for a in attributes]).set_index("attribute")
            print(table.round(3).to_string())
        else:
            print(offset_parts(run.model, run.kg, args.attribute).round(3).to_string())


if __name__ == "__main__":
    main()
