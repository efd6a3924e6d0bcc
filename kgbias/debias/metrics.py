"""How much a trained embedding still knows about a sensitive attribute: paper 2's two measures.

Fisher et al. (2020b), §4.3. Both are computed **in-sample**: on the people whose
``(person, sensitive relation, value)`` triple is in train (``splits=("train",)``), from the
embeddings alone (no attribute vectors added).

* :func:`score_difference` (Table 5): the score of a person's true value minus the mean score of
  the other frequent values, averaged. Zero when the model cannot tell the values apart.
* :func:`probe_accuracy` (Table 6): accuracy of a small MLP that predicts the value from the
  person's embedding, on people it was not trained on, next to the majority-class rate
  ("Most Frequent"). A debiased embedding brings the first down to the second.

:func:`bias_summary` puts both into one row per attribute. :func:`without_reading_directions`
removes from people's embeddings what the attribute's own relation reads of them, to ask what the
rest of the embedding still tells a probe.
"""

from __future__ import annotations

import copy
import logging
import math
from contextlib import contextmanager

import pandas as pd
import torch
from torch import nn

from ..errors import DataError
from ..graph import ATTRIBUTES, KnowledgeGraph
from ..models import KGModel

logger = logging.getLogger(__name__)

PAPER_ATTRIBUTES = ("gender", "religion", "ethnicity", "nationality")


def top_values_for(kg: KnowledgeGraph, attribute: str, n_values: int = 30) -> torch.Tensor:
    """The values both measures compare, most frequent in train first, ``shape: (n_top,)``.

    The ``n_values`` most frequent values in train (paper 2: M = 30), except gender, which keeps
    its top 2 ("for gender there is one false value"); the same list the KL loss uses
    (:meth:`~kgbias.debias.kl.KLDebiasing.from_graph`), so the measures read what the loss acts on.
    """
    return kg.top_values(attribute, min(2, n_values) if attribute == "gender" else n_values, splits=("train",))


def check_two_values(attribute: str, top: torch.Tensor) -> None:
    """DataError unless ``top`` (:func:`top_values_for`) has at least 2 values to tell apart."""
    if len(top) < 2:
        raise DataError(f"{attribute!r} has {len(top)} value(s) in train; "
                        "both measures compare a value with at least one other")


# --- (a) difference in scores -------------------------------------------------------------------

def score_differences(model: KGModel, kg: KnowledgeGraph, attribute: str, n_values: int = 30,
                      splits=("train",), batch_size: int = 4096) -> pd.DataFrame:
    """Per ``(person, true value)`` pair: score of the true value minus the mean of the others.

    Fisher et al. (2020b), §4.3. With ``V`` the top values (:func:`top_values_for`) and ``v`` the
    true value of person ``p``:

        d_pv = g(e_p, r, e_v) - 1/(|V| - 1) * sum_{u in V, u != v} g(e_p, r, e_u)

    Choices the paper leaves open: a person with several values (nationality) contributes one
    row per value, each compared with all the other top values (including the person's other
    true values); a pair whose true value is not among the top values has no defined "other
    values" and is skipped, and the number skipped is kept in ``frame.attrs["n_skipped"]``.

    Parameters
    ----------
    model
        Any :class:`~kgbias.models.KGModel`; not modified.
    kg
        The graph the model was trained on.
    attribute
        A key of ``kg.sensitive``.
    n_values
        Size of the top list (gender: always 2).
    splits
        Splits the pairs are read from (default: train, the paper's in-sample measure).
    batch_size
        People per :meth:`~kgbias.models.KGModel.score_tails` call.

    Returns
    -------
    pandas.DataFrame
        One row per kept pair, columns ``person``, ``value`` (entity ids) and ``difference``.
        ``frame.attrs`` holds ``attribute``, ``n_values`` (the actual top-list size),
        ``n_pairs`` (kept) and ``n_skipped``.

    Raises
    ------
    DataError
        When ``attribute`` has fewer than 2 values in train.
    """
    top = top_values_for(kg, attribute, n_values)
    check_two_values(attribute, top)
    pairs = kg.attribute_pairs(attribute, splits)
    # position of each pair's value in the top list, -1 when it is not there
    position = torch.full((kg.n_entities,), -1, dtype=torch.long)
    position[top] = torch.arange(len(top))
    column = position[pairs[:, 1]]
    kept = column >= 0
    pairs, column = pairs[kept], column[kept]
    n_skipped = int((~kept).sum())

    device = model.entity.weight.device
    relation = kg.attribute_relation(attribute)
    differences = []
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            people = pairs[start:start + batch_size, 0].to(device)
            true_column = column[start:start + batch_size].to(device)
            # shape: (batch_size, n_top); the scores are float32, their differences and means taken in float64
            scores = model.score_tails(people, torch.full_like(people, relation), top.to(device)).double()
            true_score = scores.gather(1, true_column.unsqueeze(1)).squeeze(1)
            others_mean = (scores.sum(1) - true_score) / (len(top) - 1)
            differences.append((true_score - others_mean).cpu())
    difference = torch.cat(differences) if differences else torch.zeros(0, dtype=torch.float64)

    frame = pd.DataFrame({"person": pairs[:, 0].numpy(), "value": pairs[:, 1].numpy(),
                          "difference": difference.numpy()})
    frame.attrs.update({"attribute": attribute, "n_values": len(top), "n_pairs": len(frame),
                        "n_skipped": n_skipped})
    logger.info("score difference %s: %d pairs, %d skipped (value outside the top %d)",
                attribute, len(frame), n_skipped, len(top))
    return frame


def score_difference(model: KGModel, kg: KnowledgeGraph, attribute: str, n_values: int = 30,
                     splits=("train",), average: str = "pairs") -> float:
    """Mean of :func:`score_differences`: one cell of paper 2's Table 5.

    Fisher et al. (2020b), §4.3. The paper says "averaged", not over what. ``average="pairs"``
    (the default, used everywhere in kgbias) counts every kept ``(person, true value)`` pair
    once. ``average="values"`` averages each value's pairs first, then the values: a model
    that scores one value higher for everyone
    alike (the base rate, which the relation vector can carry) gives a positive mean over pairs
    when the values are unequally frequent, but about zero over values. Raises ``ValueError``
    when no pair has its value among the top values.
    """
    if average not in ("pairs", "values"):
        raise ValueError(f"average must be 'pairs' or 'values', got {average!r}")
    frame = score_differences(model, kg, attribute, n_values, splits)
    if frame.empty:
        raise ValueError(f"no {attribute!r} pair in {splits} has a value among the top {frame.attrs['n_values']}")
    if average == "values":
        return float(frame.groupby("value")["difference"].mean().mean())
    return float(frame["difference"].mean())


# --- (b) the neural-network probe ---------------------------------------------------------------

def probe_labels(kg: KnowledgeGraph, attribute: str, n_values: int = 30,
                 splits=("train",)) -> tuple[torch.Tensor, torch.Tensor, int]:
    """People, their class among the top values, and how many people were dropped.

    A person with several top values gets the most frequent of them (largest train count, the
    earliest in :func:`top_values_for`'s order), so each person has one label; a person whose
    values are all outside the top list is dropped.

    Returns
    -------
    people
        ``shape: (n_people,)`` sorted entity ids.
    labels
        ``shape: (n_people,)`` class index in ``0 .. n_top - 1`` (a position in the top list).
    n_dropped
        People with a value in ``splits`` but none among the top values.
    """
    top = top_values_for(kg, attribute, n_values)
    pairs = kg.attribute_pairs(attribute, splits)
    position = torch.full((kg.n_entities,), len(top), dtype=torch.long)  # len(top): "not in the top"
    position[top] = torch.arange(len(top))
    best = torch.full((kg.n_entities,), len(top), dtype=torch.long)
    best.scatter_reduce_(0, pairs[:, 0], position[pairs[:, 1]], reduce="amin")
    everyone = torch.unique(pairs[:, 0])
    labels = best[everyone]
    kept = labels < len(top)
    return everyone[kept], labels[kept], int((~kept).sum())


def probe_accuracy(model: KGModel, kg: KnowledgeGraph, attribute: str, n_values: int = 30,
                   hidden: int = 300, test_fraction: float = 0.2, validation_fraction: float = 0.2,
                   n_epochs: int = 200, batch_size: int = 128, learning_rate: float = 1e-3, weight_decay: float = 1e-4,
                   seed: int = 0, splits=("train",), standardize: bool = True) -> dict:
    """Accuracy of an MLP that predicts the attribute from a person's embedding: Table 6.

    Fisher et al. (2020b), §4.3: embedding ``(embedding width)`` -> Linear(``hidden`` = 300) ->
    ReLU -> Linear(``n_classes``), softmax cross-entropy; accuracy is compared with "Most
    Frequent", the rate of the majority class.

    The paper states neither the probe's split nor its training, so these are choices:

    * people (labels from :func:`probe_labels`) are split at random, seeded, into probe-train
      and probe-test (``test_fraction``); no person is in both, so the probe must generalise
      from the embedding rather than remember people. ``validation_fraction`` of probe-train is
      set aside as a validation set;
    * features are the detached person embeddings standardised with the mean and standard
      deviation per dimension of the people the probe is fitted on (an affine change the first
      layer could learn anyway; it makes Adam's fixed step mean the same for a model initialised
      at 1e-3 and a trained one). ``standardize=False`` feeds the raw embeddings, as a probe
      written without this step would (paper 2 does not say): on embeddings of small scale such a
      probe stops at the class prior although the information is there (tested), but on the
      paper-scale runs of ``make paper`` the two agree within .02 (``scripts/probe_inputs.py``);
    * Adam (lr 1e-3, weight decay 1e-4), minibatches of ``batch_size`` people in a seeded order,
      ``n_epochs`` epochs; the probe kept is the one of the epoch with the lowest validation
      cross-entropy (early stopping). Without it a 300-unit probe memorises embeddings that
      carry no signal and scores *below* Most Frequent on new people (on the toy graph with
      random embeddings: 0.64 vs 0.75), which would make a debiased model look better than
      chance; with it, such a probe falls back to about the class prior;
    * ``most_frequent`` is the rate of the probe-train majority class among the probe-test
      people, i.e. the accuracy of a probe that ignores the embedding.

    Same ``seed``, same result on the CPU; the global torch random state is left untouched.

    Parameters
    ----------
    model
        Any :class:`~kgbias.models.KGModel`; its embeddings are read, never changed.
    kg, attribute, n_values, splits
        As in :func:`score_differences`; ``splits`` selects the people and their labels.
    hidden
        Width of the hidden layer (paper: 300).
    test_fraction
        Fraction of the people held out for the accuracy (at least one person each side).
    validation_fraction
        Fraction of probe-train used to choose the epoch (0: keep the last epoch).
    n_epochs, batch_size, learning_rate, weight_decay
        Probe training (the paper states none of them).
    seed
        Seeds the split, the probe's initialisation and the minibatch order.
    standardize
        Standardise each embedding dimension over the fitted people (default) or not.

    Returns
    -------
    dict
        ``accuracy``, ``most_frequent``, ``n_train`` (probe-train people, validation included),
        ``n_test``, ``n_classes`` (the top-list size), ``n_dropped`` (people without a top
        value), and ``train_people`` / ``test_people``: ``shape: (n_train,)`` / ``(n_test,)``
        sorted entity ids of each side, for auditing the split.

    Raises
    ------
    DataError
        When ``attribute`` has fewer than 2 values in train (nothing to tell apart).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    top = top_values_for(kg, attribute, n_values)
    # one class: accuracy and most_frequent would both be 1.0, which reads as "fully predictable"
    check_two_values(attribute, top)
    n_classes = len(top)
    people, labels, n_dropped = probe_labels(kg, attribute, n_values, splits)
    if len(people) < 2:
        raise ValueError(f"the probe needs at least 2 people with a top {attribute!r} value, got {len(people)}")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(people), generator=generator)
    n_test = min(max(1, round(test_fraction * len(people))), len(people) - 1)
    test, train = order[:n_test], order[n_test:]
    n_valid = min(round(validation_fraction * len(train)), len(train) - 1)  # keep one person to fit
    valid, fit = train[:n_valid], train[n_valid:]

    # shape: (n_people, embedding width); float32 on the CPU whatever the model's device
    features = model.entity.weight.detach()[people.to(model.entity.weight.device)].float().cpu()
    if standardize:
        mean, std = features[fit].mean(0), features[fit].std(0, unbiased=False)
        features = (features - mean) / std.clamp_min(1e-12)

    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        probe = nn.Sequential(nn.Linear(features.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
    optimizer = torch.optim.Adam(probe.parameters(), lr=learning_rate, weight_decay=weight_decay)
    best_loss, best_state = math.inf, copy.deepcopy(probe.state_dict())
    with single_thread():
        best_loss, best_state = _fit_probe(probe, optimizer, features, labels, fit, valid, n_epochs, batch_size,
                                           generator, best_loss, best_state)
    if n_valid:
        probe.load_state_dict(best_state)

    with torch.no_grad():
        predicted = probe(features[test]).argmax(1)
    majority = int(torch.bincount(labels[train], minlength=n_classes).argmax())
    result = {
        "accuracy": float((predicted == labels[test]).float().mean()),
        "most_frequent": float((labels[test] == majority).float().mean()),
        "n_train": len(train), "n_test": len(test), "n_classes": n_classes, "n_dropped": n_dropped,
        "train_people": people[train.sort().values], "test_people": people[test.sort().values],
    }
    logger.info("probe %s: accuracy %.3f (most frequent %.3f) on %d people, trained on %d",
                attribute, result["accuracy"], result["most_frequent"], len(test), len(train))
    return result


def probe_margins(model: KGModel, kg: KnowledgeGraph, attribute: str, seeds=range(5), **probe_options) -> pd.DataFrame:
    """:func:`probe_accuracy` once per seed (each its own split of the people and its own probe):
    one row per seed with ``accuracy``, ``most_frequent`` and ``margin``, the first minus the second.

    One split tests a few hundred people (743 for gender on FB15k-237), so a single accuracy
    carries a binomial spread of about .015 and the split moves the majority rate too; the
    margins' mean and standard deviation over seeds say how far a probe is from the class prior
    with that noise in view. ``probe_options`` go to :func:`probe_accuracy`.
    """
    rows = []
    for seed in seeds:
        result = probe_accuracy(model, kg, attribute, seed=seed, **probe_options)
        rows.append({"seed": seed, "accuracy": result["accuracy"], "most_frequent": result["most_frequent"],
                     "margin": result["accuracy"] - result["most_frequent"]})
    return pd.DataFrame(rows)


def reading_directions(model: KGModel, kg: KnowledgeGraph, attribute: str, n_values: int = 30) -> torch.Tensor:
    """Orthonormal rows spanning the directions in which the attribute's relation tells its top
    values apart, ``shape: (n_directions, embedding width)``; at most ``n_values - 1`` of them.

    For a model whose score ``g(e, r, v)`` is affine in the person's embedding ``e``
    (``g = e . a_v + c_v``: TransE with a dot comparator, DistMult, ComplEx), only ``e . (a_v - a_u)``
    makes one value score above another for a person; the KL loss and the difference in scores see
    nothing else of ``e``. A distance comparator is not affine in ``e``: ``ValueError``.
    """
    values = top_values_for(kg, attribute, n_values)
    relation = torch.tensor([kg.attribute_relation(attribute)], device=model.entity.weight.device)
    value_emb = model.entity.weight.detach()[values.to(relation.device)]

    def scores(person: torch.Tensor) -> torch.Tensor:  # (width,) -> (n_values,)
        return model.compare(model.query(person.unsqueeze(0), relation), value_emb, pairwise=False)[0]

    width = value_emb.shape[1]
    generator = torch.Generator().manual_seed(0)
    jacobians = [torch.autograd.functional.jacobian(scores, point.to(value_emb.device)) for point in
                 (torch.zeros(width), torch.randn(width, generator=generator))]  # (n_values, width) each
    if not torch.allclose(jacobians[0], jacobians[1], rtol=1e-4, atol=1e-5 * float(jacobians[0].abs().max())):
        raise ValueError(f"{type(model).__name__}'s score is not affine in the person's embedding "
                         "(a distance comparator?): no fixed directions to remove")
    differences = (jacobians[0][1:] - jacobians[0][:1]).T  # (width, n_values - 1)
    basis, triangle = torch.linalg.qr(differences)
    scale = triangle.diagonal().abs()
    keep = scale > 1e-6 * scale.max() if len(scale) else scale.bool()
    return basis[:, keep].T


def without_reading_directions(model: KGModel, kg: KnowledgeGraph, attribute: str, n_values: int = 30,
                               directions: torch.Tensor | None = None) -> KGModel:
    """A copy of ``model`` whose people's embeddings lose their component along
    :func:`reading_directions` (``directions``, when the caller has them); other entities and
    every relation are unchanged.

    The copy's scores no longer tell the attribute's values apart for any person (the difference
    in scores is the same for everyone), so a probe's accuracy on it measures what the rest of the
    embedding still says about the attribute: the part that a loss on those scores, such as the KL
    term, does not see.
    """
    directions = reading_directions(model, kg, attribute, n_values) if directions is None else directions
    projected = copy.deepcopy(model)
    with torch.no_grad():
        weight = projected.entity.weight
        people = kg.humans.to(weight.device)
        rows = weight[people]
        weight[people] = rows - (rows @ directions.T) @ directions
    return projected


@contextmanager
def single_thread():
    """Run torch on one thread inside the block (restored after).

    The probe's matrices are tiny, so threads only add synchronisation; while other processes
    load the CPU, OpenMP's waiting made it up to 75x slower in a Jupyter kernel (measured).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _fit_probe(probe, optimizer, features, labels, fit, valid, n_epochs, batch_size, generator,
               best_loss, best_state):
    """Minibatch epochs; the state with the lowest validation loss (the last one without validation)."""
    n_valid = len(valid)
    for _ in range(n_epochs):
        shuffled = fit[torch.randperm(len(fit), generator=generator)]
        for start in range(0, len(shuffled), batch_size):
            batch = shuffled[start:start + batch_size]
            loss = nn.functional.cross_entropy(probe(features[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if n_valid:
            with torch.no_grad():
                valid_loss = float(nn.functional.cross_entropy(probe(features[valid]), labels[valid]))
            if valid_loss < best_loss:
                best_loss, best_state = valid_loss, copy.deepcopy(probe.state_dict())
    return best_loss, best_state


# --- both, per attribute ------------------------------------------------------------------------

def present_attributes(kg: KnowledgeGraph, attributes) -> list[str]:
    """Those of ``attributes`` that ``kg`` has, in order. One the graph lacks (WD50K has no
    ethnicity) is left out, and logged; a name that is no attribute at all (a typo) is an error."""
    attributes = [attributes] if isinstance(attributes, str) else list(attributes)
    unknown = [a for a in attributes if a not in ATTRIBUTES and a not in kg.sensitive]
    if unknown:
        raise DataError(f"attributes: {', '.join(map(repr, unknown))} not known; attributes are "
                        f"{', '.join(dict.fromkeys([*ATTRIBUTES, *kg.sensitive]))}")
    absent = [a for a in attributes if a not in kg.sensitive]
    if absent:
        logger.info("%s has no %s: left out", kg.name, ", ".join(absent))
    return [a for a in attributes if a in kg.sensitive]


def bias_summary(model: KGModel, kg: KnowledgeGraph, attributes=PAPER_ATTRIBUTES, n_values: int = 30,
                 splits=("train",), seed: int = 0, **probe_options) -> pd.DataFrame:
    """One row per attribute of ``attributes`` present in ``kg.sensitive``: Tables 5 and 6.

    Fisher et al. (2020b), §4.3.

    Parameters
    ----------
    attributes
        Attribute names in row order (default: the paper's gender, religion, ethnicity,
        nationality); those the graph lacks are left out.
    probe_options
        Passed to :func:`probe_accuracy` (``hidden``, ``n_epochs``, ``test_fraction``, ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``attribute``, ``n_values``, ``score_difference``, ``n_pairs``,
        ``n_pairs_skipped``, ``probe_accuracy``, ``most_frequent``, ``n_train``, ``n_test``,
        ``n_dropped``. An attribute with fewer than 2 values in train has nothing to tell apart:
        its row keeps ``n_values`` (0 or 1) and has NaN in every other column, and a warning is
        logged (:func:`score_differences` and :func:`probe_accuracy` raise on it instead).
    """
    columns = ["attribute", "n_values", "score_difference", "n_pairs", "n_pairs_skipped", "probe_accuracy",
               "most_frequent", "n_train", "n_test", "n_dropped"]
    rows = []
    for attribute in present_attributes(kg, attributes):
        n_top = len(top_values_for(kg, attribute, n_values))
        if n_top < 2:
            # one row of NaN rather than an error, so the other attributes' rows are kept
            logger.warning("bias summary %s: %d value(s) in train, nothing to tell apart; row left NaN",
                           attribute, n_top)
            rows.append({**dict.fromkeys(columns, math.nan), "attribute": attribute, "n_values": n_top})
            continue
        differences = score_differences(model, kg, attribute, n_values, splits)
        probe = probe_accuracy(model, kg, attribute, n_values, seed=seed, splits=splits, **probe_options)
        rows.append({
            "attribute": attribute,
            "n_values": differences.attrs["n_values"],
            "score_difference": float(differences["difference"].mean()) if len(differences) else math.nan,
            "n_pairs": differences.attrs["n_pairs"],
            "n_pairs_skipped": differences.attrs["n_skipped"],
            "probe_accuracy": probe["accuracy"],
            "most_frequent": probe["most_frequent"],
            "n_train": probe["n_train"],
            "n_test": probe["n_test"],
            "n_dropped": probe["n_dropped"],
        })
    return pd.DataFrame(rows, columns=columns)
