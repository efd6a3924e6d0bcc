"""The bias of a trained embedding towards one value of a sensitive attribute, per profession.

Fisher et al. (2020a), §3.2 (the gradient measure) and §3.1 (the one-pair strawman).

For every person ``j`` the measure asks: if the embedding of ``j`` moved one small gradient step
towards "``j`` is male rather than female", how much would the score of ``(j, has_profession, p)``
change? Averaged over people, that change is ``b_p``; positive means "more male".
"""

from __future__ import annotations

import logging

import pandas as pd
import torch

from ..errors import DataError
from ..graph import SPLITS, KnowledgeGraph
from ..models import KGModel

logger = logging.getLogger(__name__)

ALL_HUMANS = "all_humans"
REST = "rest"
COLUMNS = ["target", "label", "bias", "count_a", "count_b", "count"]


def gradient_bias(
    model: KGModel,
    kg: KnowledgeGraph,
    sensitive: str = "gender",
    value_a: str = "male",
    value_b: str = "female",
    target: str = "profession",
    alpha: float = 0.01,
    people: torch.Tensor | str | None = None,
    min_count: int = 20,
    one_vs_rest: bool = False,
    n_values: int = 30,
    splits=SPLITS,
    batch_size: int = 4096,
) -> pd.DataFrame:
    """Bias ``b_p`` of every target value ``p`` (profession) towards ``value_a`` over ``value_b``.

    Fisher et al. (2020a), §3.2, Eq. 1. For each person ``j``:

    1. ``m_j = g(e_j, r_s, e_a) - g(e_j, r_s, e_b)``;
    2. ``e'_j = e_j + alpha * dm_j/de_j`` (one plain gradient-ascent step, only ``e_j`` moves);
    3. ``delta_jp = g(e'_j, r_p, e_p) - g(e_j, r_p, e_p)``;

    then ``b_p = mean_j delta_jp``. For TransE with the dot comparator this is exactly
    ``alpha * <e_a - e_b, e_p>`` for every person (the score is linear in the person); for distance TransE and
    ComplEx it depends on the person, so the average matters.

    Parameters
    ----------
    model
        Any :class:`~kgbias.models.KGModel`; the gradient comes from autograd through
        ``model.query`` / ``model.compare``, so no model needs a hand-written derivative.
        Its weights are not modified.
    kg
        The graph the model was trained on.
    sensitive, value_a, value_b
        Sensitive attribute and the two values compared (canonical names such as ``"male"`` or
        entity names). Each must be a value of ``sensitive`` in ``splits`` and the two must
        differ, else :class:`~kgbias.errors.DataError`.
    target
        Attribute whose values are scored (the paper: profession).
    alpha
        Step size (paper: 0.01). Irrelevant to dot TransE up to the factor ``alpha``; keep it
        small for non-linear scores.
    people
        Who is averaged over. ``None`` (default): every person with a ``sensitive`` fact in
        ``splits``, i.e. the people for whom moving "towards male" is meaningful in the data;
        ``"all_humans"``: ``kg.humans`` (the paper's "all human entities"); or an explicit
        ``shape: (n_people,)`` id tensor of entity ids in ``0 .. kg.n_entities - 1``.
    min_count
        Keep only target values held by at least this many distinct people in ``splits``
        (``count`` column; the paper's tables keep professions with >= 20 observations).
        Use 0 to keep everything.
    one_vs_rest
        Replace ``g(e_j, r_s, e_b)`` by the mean score over the other frequent values of the
        attribute (the paper's suggestion for multi-valued attributes, §3.2); ``value_b`` is
        then ignored and reported as ``"rest"``.
    n_values
        With ``one_vs_rest``: the ``n_values`` most frequent values in ``splits`` are taken
        (as paper 2's top-M, M = 30) and ``value_a`` is removed from them to form the rest.
    splits
        Splits read for people, counts and the most frequent values.
    batch_size
        People per autograd call (memory: ``batch_size * n_targets`` scores per call).

    Returns
    -------
    pandas.DataFrame
        One row per kept target value, sorted by ``bias`` descending, columns ``target`` (entity
        id), ``label``, ``bias`` (``b_p``), ``count_a`` / ``count_b`` (people with ``p`` and
        value a / b; with ``one_vs_rest``, b is any of the rest), ``count`` (people with ``p``).
        ``frame.attrs`` records the settings (used by :func:`~kgbias.bias.tables.bias_table`).
    """
    value_a_id = check_value(kg, sensitive, "value_a", value_a, splits)
    if one_vs_rest:
        top = kg.top_values(sensitive, n_values, splits=splits)
        other_ids = top[top != value_a_id]
        if other_ids.numel() == 0:
            raise DataError(f"one_vs_rest: {sensitive!r} has no value other than {value_a!r} in {splits}")
    else:
        value_b_id = check_value(kg, sensitive, "value_b", value_b, splits)
        if value_b_id == value_a_id:
            # the measure would be 0 everywhere, and bias_table would give both count columns one name
            raise DataError(f"value_a and value_b are the same {sensitive} value ({value_a!r}, {value_b!r}); "
                            "the bias compares two different values")
        other_ids = torch.tensor([value_b_id])
    people_ids = resolve_people(kg, people, sensitive, splits)
    if people_ids.numel() == 0:
        raise ValueError(f"no people to average over ({sensitive!r} in {splits}, people={people!r})")
    targets = target_values(kg, target, splits)

    # float64: b_p is a small difference of two scores, float32 would lose about 5 digits of it;
    # the gathered rows are upcast, the model's own tables are left as they are.
    weight = model.entity.weight.detach()
    device = weight.device
    value_a_emb = weight[value_a_id].unsqueeze(0).double()
    other_emb = weight[other_ids.to(device)].double()
    target_emb = weight[targets.to(device)].double()
    relation_s = kg.attribute_relation(sensitive)
    relation_p = kg.attribute_relation(target)

    total = torch.zeros(len(targets), dtype=torch.float64)
    for start in range(0, len(people_ids), batch_size):
        person_emb = weight[people_ids[start:start + batch_size].to(device)].double()
        delta = _score_change(model, person_emb, relation_s, value_a_emb, other_emb,
                              relation_p, target_emb, alpha)
        total += delta.sum(0).cpu()
    bias = total / len(people_ids)

    frame = target_counts(kg, target, targets, sensitive, value_a_id, other_ids, splits)
    frame.insert(2, "bias", bias.numpy())
    frame = filter_and_sort(frame, min_count)
    frame.attrs.update({
        "method": "gradient", "sensitive": sensitive, "value_a": value_a,
        "value_b": REST if one_vs_rest else value_b, "target": target, "alpha": alpha,
        "n_people": len(people_ids), "min_count": min_count,
    })
    logger.info("gradient bias %s %s vs %s: %d people, %d of %d %s values kept (min_count %d)",
                sensitive, value_a, frame.attrs["value_b"], len(people_ids), len(frame), len(targets),
                target, min_count)
    return frame


def _score_change(model, person_emb, relation_s, value_a_emb, other_emb, relation_p, target_emb, alpha):
    """``shape: (n_people, n_targets)``: ``delta_jp`` for one batch of people.

    ``person_emb: (n_people, width)``, ``value_a_emb: (1, width)``, ``other_emb: (n_other, width)``,
    ``target_emb: (n_targets, width)``.
    """
    n_people = len(person_emb)
    person_emb = person_emb.clone().requires_grad_(True)
    with torch.enable_grad():
        query_s = model.query(person_emb, torch.full((n_people,), relation_s, device=person_emb.device))
        margin = (model.compare(query_s, value_a_emb, pairwise=False)[:, 0]
                  - model.compare(query_s, other_emb, pairwise=False).mean(1))
        # m_j depends only on row j, so the gradient of the sum is the per-person gradient.
        # autograd.grad (not .backward) leaves the model's .grad fields untouched.
        (gradient,) = torch.autograd.grad(margin.sum(), person_emb)
    with torch.no_grad():
        person_emb = person_emb.detach()
        relation = torch.full((n_people,), relation_p, device=person_emb.device)
        before = model.compare(model.query(person_emb, relation), target_emb, pairwise=False)
        after = model.compare(model.query(person_emb + alpha * gradient, relation), target_emb, pairwise=False)
    return after - before


def pairwise_bias(
    model: KGModel,
    kg: KnowledgeGraph,
    person_a: int | str,
    person_b: int | str,
    target: str = "profession",
    sensitive: str = "gender",
    value_a: str = "male",
    value_b: str = "female",
    min_count: int = 20,
    splits=SPLITS,
) -> pd.DataFrame:
    """The strawman measure ``b_p = g(e_a, r_p, e_p) - g(e_b, r_p, e_p)`` for two people.

    Fisher et al. (2020a), §3.1 (Tables 1-2: Barack vs Michelle Obama). The paper rejects it as
    noisy: it depends on the pair chosen.

    Parameters
    ----------
    person_a, person_b
        Entity ids or entity names.
    sensitive, value_a, value_b
        Only used for the ``count_a`` / ``count_b`` columns (the tables' C_male / C_fem).
    min_count
        As in :func:`gradient_bias`, except that, as in the paper's Tables 1-2, target values
        held by ``person_a`` or ``person_b`` are kept whatever their count.

    Returns
    -------
    pandas.DataFrame
        Same columns as :func:`gradient_bias`.
    """
    ids = [check_person(kg, argument, person) for argument, person in (("person_a", person_a), ("person_b", person_b))]
    value_a_id = check_value(kg, sensitive, "value_a", value_a, splits)
    value_b_id = check_value(kg, sensitive, "value_b", value_b, splits)
    targets = target_values(kg, target, splits)
    weight = model.entity.weight.detach()
    device = weight.device
    with torch.no_grad():
        query = model.query(weight[torch.tensor(ids, device=device)].double(),
                            torch.full((2,), kg.attribute_relation(target), device=device))
        scores = model.compare(query, weight[targets.to(device)].double(), pairwise=False).cpu()
    frame = target_counts(kg, target, targets, sensitive, value_a_id, torch.tensor([value_b_id]), splits)
    frame.insert(2, "bias", (scores[0] - scores[1]).numpy())
    pairs = kg.attribute_pairs(target, splits)
    held = set(pairs[torch.isin(pairs[:, 0], torch.tensor(ids)), 1].tolist())
    frame = filter_and_sort(frame, min_count, keep=held)
    frame.attrs.update({
        "method": "pairwise", "sensitive": sensitive, "value_a": value_a, "value_b": value_b,
        "target": target, "person_a": kg.entities[ids[0]], "person_b": kg.entities[ids[1]],
        "min_count": min_count,
    })
    return frame


def resolve_people(kg: KnowledgeGraph, people, sensitive: str, splits=SPLITS) -> torch.Tensor:
    """``shape: (n_people,)`` sorted person ids for the ``people`` argument of :func:`gradient_bias`."""
    if people is None:
        return torch.unique(kg.attribute_pairs(sensitive, splits)[:, 0])
    if isinstance(people, str):
        if people != ALL_HUMANS:
            raise ValueError(f"people must be None, {ALL_HUMANS!r} or an id tensor, got {people!r}")
        return kg.humans.clone()
    people = torch.as_tensor(people, dtype=torch.long)
    if people.ndim != 1:
        raise ValueError(f"people must have shape (n_people,), got {tuple(people.shape)}")
    # a negative id would silently index from the end of the embedding table
    bad = people[(people < 0) | (people >= kg.n_entities)]
    if bad.numel():
        shown = ", ".join(str(i) for i in bad[:5].tolist()) + (", ..." if bad.numel() > 5 else "")
        raise DataError(f"people: {bad.numel()} id(s) outside 0 .. {kg.n_entities - 1} "
                        f"(the entities of {kg.name}): {shown}")
    return people


def check_person(kg: KnowledgeGraph, argument: str, person: int | str) -> int:
    """Entity id of ``person`` (an id or a name), which must be one of ``kg.humans`` when the graph
    names its people: a negative id would index from the end of the table, a profession or a
    city would give a bias between unrelated embeddings."""
    person_id = kg.entity_id(person) if isinstance(person, str) else int(person)
    if not 0 <= person_id < kg.n_entities:
        raise DataError(f"{argument}: id {person_id} is outside 0 .. {kg.n_entities - 1} ({kg.name})")
    if len(kg.humans) and not bool((kg.humans == person_id).any()):
        raise DataError(f"{argument}: {kg.label(person_id)!r} ({kg.entities[person_id]}) is not one of "
                        f"{kg.name}'s {len(kg.humans)} people")
    return person_id


def check_value(kg: KnowledgeGraph, attribute: str, argument: str, value: str, splits=SPLITS) -> int:
    """Entity id of ``value``, which must be a value of ``attribute`` held by someone in ``splits``.

    A known entity that nobody holds (a typo in the schema's ``[values]``, a city) would give
    ``count_a`` / ``count_b`` = 0 in every row and a bias towards an unrelated embedding.
    """
    try:
        value_id = kg.value_id(attribute, value)
    except DataError:  # not an entity at all: same message, which lists the values to choose from
        value_id = None
    held = kg.top_values(attribute, kg.n_entities, splits=splits)  # most frequent first
    if value_id not in held.tolist():
        canonical = {name: key for key, name in kg.named_values.get(attribute, {}).items()}
        names = [canonical.get(kg.entities[i]) or _named(kg, kg.entities[i]) for i in held[:10].tolist()]
        more = f", ... ({len(held)} in all)" if len(held) > 10 else ""
        raise DataError(f"{argument}: {value!r} is not a value of {attribute} in {kg.name} "
                        f"({', '.join(splits)}; it has: {', '.join(names) or 'none'}{more})")
    return value_id


def _named(kg: KnowledgeGraph, entity: str) -> str:
    """``entity``, with its label where it has one (``/m/0c8wxp (Catholicism)``)."""
    label = kg.label(entity)
    return entity if label == entity else f"{entity} ({label})"


def target_values(kg: KnowledgeGraph, target: str, splits=SPLITS) -> torch.Tensor:
    """``shape: (n_targets,)`` sorted ids of every value of ``target`` in ``splits``."""
    return torch.unique(kg.attribute_pairs(target, splits)[:, 1])


def target_counts(kg: KnowledgeGraph, target: str, targets: torch.Tensor, sensitive: str,
                  value_a_id: int, other_ids: torch.Tensor, splits=SPLITS) -> pd.DataFrame:
    """Columns ``target, label, count_a, count_b, count`` in the order of ``targets``.

    Counts are distinct people in ``splits``: ``count`` holds the target value, ``count_a`` also
    has ``value_a``, ``count_b`` also has any value in ``other_ids``.
    """
    target_pairs = pd.DataFrame(kg.attribute_pairs(target, splits).numpy(), columns=["person", "target"])
    sensitive_pairs = pd.DataFrame(kg.attribute_pairs(sensitive, splits).numpy(), columns=["person", "value"])
    joined = target_pairs.merge(sensitive_pairs, on="person")
    index = pd.Index(targets.tolist(), name="target")

    def people_with(rows: pd.DataFrame) -> pd.Series:
        return rows.groupby("target")["person"].nunique().reindex(index, fill_value=0)

    frame = pd.DataFrame(index=index)
    frame["label"] = [kg.label(int(t)) for t in index]
    frame["count_a"] = people_with(joined[joined["value"] == value_a_id])
    frame["count_b"] = people_with(joined[joined["value"].isin(other_ids.tolist())])
    frame["count"] = people_with(target_pairs)
    return frame.reset_index().astype({"count_a": int, "count_b": int, "count": int})


def filter_and_sort(frame: pd.DataFrame, min_count: int, keep=()) -> pd.DataFrame:
    """Rows with ``count >= min_count`` (or whose target is in ``keep``), by ``bias`` descending."""
    kept = frame[(frame["count"] >= min_count) | frame["target"].isin(list(keep))]
    return kept.sort_values("bias", ascending=False, kind="stable").reset_index(drop=True)[COLUMNS]
