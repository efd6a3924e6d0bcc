"""Is a profession's bias more than chance? A permutation null and seed-to-seed stability.

Fisher et al. (2020a) rank professions by ``b_p`` (§3.2) but test nothing; these helpers add the
missing checks. Models are trained through :func:`kgbias.training.train`, each run in its own
folder under a caller-given directory, so that a rerun reuses them.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import TrainConfig
from ..graph import SPLITS, KnowledgeGraph
from ..training import train
from .measure import COLUMNS, gradient_bias

logger = logging.getLogger(__name__)


def shuffle_attribute(kg: KnowledgeGraph, attribute: str, seed: int = 0) -> KnowledgeGraph:
    """A copy of ``kg`` whose ``attribute`` values are permuted among the people who have one.

    Person ``j``'s facts for ``attribute`` are given to person ``pi(j)``, with ``pi`` a random
    permutation of the people holding the attribute in any split. Each triple keeps its split
    and position, only its person changes, so all splits stay consistent, every value keeps its
    count and the same sets of values are handed out (one gender each stays one gender each);
    everything else, ``metadata`` included, is untouched.

    Returns
    -------
    KnowledgeGraph
        Same entities and relations; ``metadata["shuffled"] = {"attribute", "seed"}``.
    """
    people = torch.unique(kg.attribute_pairs(attribute)[:, 0])  # raises DataError if unknown
    spec = kg.sensitive[attribute]
    relation = kg.relation_id(spec.relation)
    person_column = 2 if spec.inverted else 0
    generator = torch.Generator().manual_seed(seed)
    new_person = torch.arange(kg.n_entities)
    new_person[people] = people[torch.randperm(len(people), generator=generator)]
    splits = {}
    for split in SPLITS:
        triples = kg.split(split).clone()
        rows = triples[:, 1] == relation
        triples[rows, person_column] = new_person[triples[rows, person_column]]
        splits[split] = triples
    metadata = {**kg.metadata, "shuffled": {"attribute": attribute, "seed": seed}}
    return dataclasses.replace(kg, name=f"{kg.name}-shuffled-{attribute}-s{seed}", metadata=metadata,
                               humans=kg.humans.clone(), **splits)


def graph_fingerprint(kg: KnowledgeGraph) -> str:
    """Short hash of the entities, relations and triples, so cached runs cannot mix graphs
    (:meth:`KnowledgeGraph.fingerprint`)."""
    return kg.fingerprint()


def permutation_null(
    config: TrainConfig,
    kg: KnowledgeGraph,
    run_dir: str | Path,
    n_permutations: int = 19,
    sensitive: str = "gender",
    value_a: str = "male",
    value_b: str = "female",
    target: str = "profession",
    alpha: float = 0.01,
    min_count: int = 20,
    one_vs_rest: bool = False,
    seed: int = 0,
    centered: bool = True,
    device: str = "cpu",
) -> pd.DataFrame:
    """Per-profession permutation p-values for ``b_p``, retraining on gender-shuffled graphs.

    The model is trained once on ``kg`` and once on each of ``n_permutations`` graphs from
    :func:`shuffle_attribute` (seeds ``seed + 1 ... seed + K``); every training uses the same
    ``config`` (same training seed), so the observed and null runs differ only by the
    permutation and are exchangeable when the attribute carries no information. With ``T`` the
    statistic below, the two-sided p-value is ``p = (1 + #{k: T_null_k >= T_obs}) / (K + 1)``,
    exact (``P(p <= q) <= q``) under that null; with K = 19 the smallest possible p is 0.05.

    Why retrain: for dot TransE ``b_p = alpha <e_a - e_b, e_p>`` (paper 1, §3.2) does not
    depend on which people are averaged, so shuffling the gender labels at measurement time
    leaves every ``b_p`` unchanged, a degenerate null. What gives a profession its bias is
    the training on gendered data, so the null must retrain on data without the association.

    Parameters
    ----------
    config
        Training configuration; ``config.dataset`` is not read (``kg`` is used).
    run_dir
        Folder holding one run folder per training (named by graph hash, permutation and
        config), reused when called again.
    centered
        ``True`` (default): ``T = |b - c|`` with ``c`` the mean of the observed and the K null
        values. A frequent value (men are 70% of the toy graph) gives ``b_p`` a nonzero mean
        under the null; centering tests the departure from it, and because ``c`` is symmetric in
        all K + 1 values the p-value stays exact. ``False``: ``T = |b|``.
    alpha, min_count, one_vs_rest, sensitive, value_a, value_b, target
        As in :func:`~kgbias.bias.measure.gradient_bias`; ``min_count`` filters the observed rows.

    Returns
    -------
    pandas.DataFrame
        The observed :func:`~kgbias.bias.measure.gradient_bias` frame plus ``null_mean``,
        ``null_std`` (over the K null values) and ``p_value``.
    """
    return permutation_nulls(config, kg, run_dir, {sensitive: (value_a, value_b)}, n_permutations,
                             target=target, alpha=alpha, min_count=min_count, one_vs_rest=one_vs_rest,
                             seed=seed, centered=centered, device=device)[sensitive]


def permutation_nulls(
    config: TrainConfig,
    kg: KnowledgeGraph,
    run_dir: str | Path,
    comparisons: dict[str, tuple[str, str]],
    n_permutations: int = 19,
    target: str = "profession",
    alpha: float = 0.01,
    min_count: int = 20,
    one_vs_rest: bool = False,
    seed: int = 0,
    centered: bool = True,
    device: str = "cpu",
) -> dict[str, pd.DataFrame]:
    """:func:`permutation_null` for several attributes at once, sharing the retrained models.

    ``comparisons`` maps each attribute to its ``(value_a, value_b)``. Each null graph shuffles
    every listed attribute, each independently among its own holders (attribute ``i`` with seed
    ``seed + 1 + k + 1000 i``), so one set of K retrainings gives a null for all of them. With a
    single attribute this is exactly :func:`permutation_null`'s exact test; with several, the
    null models also lack the other attributes' information, a null of "no sensitive attribute
    carries information", which makes each test approximate rather than exact. Returns one
    frame per attribute, as :func:`permutation_null` does.
    """
    run_dir = Path(run_dir)
    attributes = list(comparisons)
    stem = f"{graph_fingerprint(kg)}-{config.run_name()}"
    measure = dict(target=target, alpha=alpha, one_vs_rest=one_vs_rest)
    observed_run = train(config, kg=kg, run_dir=run_dir / f"observed-{stem}", device=device)
    observed = {a: gradient_bias(observed_run.model, kg, sensitive=a, value_a=va, value_b=vb,
                                 min_count=min_count, **measure)
                for a, (va, vb) in comparisons.items()}
    null = {a: np.zeros((n_permutations, len(observed[a]))) for a in attributes}
    for k in range(n_permutations):
        shuffled = kg
        for i, attribute in enumerate(attributes):
            shuffled = shuffle_attribute(shuffled, attribute, seed=seed + 1 + k + 1000 * i)
        folder = run_dir / f"shuffle-{'+'.join(attributes)}-s{seed + 1 + k}-{stem}"
        run = train(config, kg=shuffled, run_dir=folder, device=device)
        for attribute, (value_a, value_b) in comparisons.items():
            frame = gradient_bias(run.model, shuffled, sensitive=attribute, value_a=value_a, value_b=value_b,
                                  min_count=0, **measure).set_index("target")
            null[attribute][k] = frame.loc[observed[attribute]["target"], "bias"].to_numpy()
        logger.info("permutation %d of %d done", k + 1, n_permutations)
    results = {}
    for attribute in attributes:
        observed_bias = observed[attribute]["bias"].to_numpy()
        samples = null[attribute]
        center = (samples.sum(0) + observed_bias) / (n_permutations + 1) if centered else 0.0
        exceed = (np.abs(samples - center) >= np.abs(observed_bias - center)).sum(0)
        result = observed[attribute].copy()
        result["null_mean"] = samples.mean(0)
        result["null_std"] = samples.std(0, ddof=1) if n_permutations > 1 else np.nan
        result["p_value"] = (1 + exceed) / (n_permutations + 1)
        result.attrs.update({**observed[attribute].attrs, "n_permutations": n_permutations,
                             "centered": centered, "shuffled_together": attributes})
        results[attribute] = result
    return results


@dataclasses.dataclass
class SeedStability:
    """How much ``b_p`` moves between training seeds.

    Attributes
    ----------
    per_target
        One row per target value: ``target``, ``label``, ``bias_mean``, ``bias_std`` (ddof 1),
        ``n_seeds`` (frames that kept it), sorted by ``bias_mean`` descending.
    top_overlap_a, top_overlap_b
        Mean Jaccard overlap, over all pairs of seeds, of the top-n lists most biased towards
        value a and towards value b (1: identical lists).
    n
        Length of the top lists.
    """

    per_target: pd.DataFrame
    top_overlap_a: float
    top_overlap_b: float
    n: int


def seed_stability(frames: list[pd.DataFrame], n: int = 20) -> SeedStability:
    """Mean and spread of ``b_p`` across seeds, and the overlap of their top-``n`` tables.

    Parameters
    ----------
    frames
        :func:`~kgbias.bias.measure.gradient_bias` frames of the same graph, one per seed.
    """
    if len(frames) < 2:
        raise ValueError(f"seed_stability needs at least 2 frames, got {len(frames)}")
    stacked = pd.concat([f[COLUMNS[:3]].assign(seed=i) for i, f in enumerate(frames)])
    per_target = (stacked.groupby(["target", "label"])["bias"]
                  .agg(bias_mean="mean", bias_std="std", n_seeds="count")
                  .reset_index()
                  .sort_values("bias_mean", ascending=False, kind="stable")
                  .reset_index(drop=True))

    def mean_overlap(direction: str) -> float:
        ordered = [f.sort_values("bias", ascending=direction == "b", kind="stable") for f in frames]
        tops = [set(f["target"].head(n)) for f in ordered]
        return float(np.mean([len(x & y) / len(x | y) for x, y in itertools.combinations(tops, 2)]))

    return SeedStability(per_target, mean_overlap("a"), mean_overlap("b"), n)
