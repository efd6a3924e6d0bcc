"""A small synthetic knowledge graph with a planted gender-profession dependence.

People have a gender (entities ``male`` and ``female``), a nationality (independent of gender),
1-3 professions, a birth city (usually in their country) and colleagues who share their first
profession. Cities lie in countries and professions belong to fields, so link prediction is a real
task. Every person draws ``k`` (uniform on 1, 2, 3) professions *with replacement* from a
categorical whose logit for profession ``p`` is

    popularity_p + skew * planted_p * (+0.5 if male else -0.5),

with ``planted_p`` evenly spaced in [-1, 1] and assigned to professions in a seed-shuffled order;
repeated draws collapse into one triple. ``skew=0`` makes profession independent of gender.

Because the draws are i.i.d., the probability that a person of gender ``g`` has profession ``p``
is exactly ``1 - mean_k (1 - q_gp)^k`` with ``q_g = softmax(logits_g)``;
``metadata["true_log_ratio"]`` holds ``log P(p | male) / P(p | female)`` in that sense, and
``metadata["planted_skew"]`` holds ``skew * planted_p``.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch

from ..errors import DataError
from ..graph import KnowledgeGraph, SensitiveRelation
from .readers import ParsedSplit, index_triples

GENDER, PROFESSION, NATIONALITY = "gender", "profession", "nationality"
BORN_IN, LOCATED_IN, IN_FIELD, COLLEAGUE_OF = "born_in", "located_in", "in_field", "colleague_of"
# Sensitive facts other than profession stay in train: the bias metrics read them as ground truth.
HELD_OUT_RELATIONS = (PROFESSION, BORN_IN, LOCATED_IN, IN_FIELD, COLLEAGUE_OF)
MAX_PROFESSIONS_PER_PERSON = 3
BORN_IN_HOME_COUNTRY = 0.8


# smallest value of each integer argument
_MINIMUM_SIZES = {"n_people": 2, "n_professions": 1, "n_countries": 1, "n_cities_per_country": 1, "n_fields": 1,
                  "n_colleagues": 0, "seed": 0}


def _check_arguments(arguments: dict) -> None:
    """DataError naming the argument, before numpy fails somewhere inside with a message of its own."""
    for name, minimum in _MINIMUM_SIZES.items():
        value = arguments[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise DataError(f"toy: {name} must be an integer of at least {minimum}, got {value!r}")
    for name, low, high in (("skew", -math.inf, math.inf), ("female_fraction", 0.0, 1.0),
                            ("held_out_fraction", 0.0, 0.49)):
        value = arguments[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high \
                or math.isnan(value):
            limits = "a finite number" if name == "skew" else f"a number in [{low}, {high}]"
            raise DataError(f"toy: {name} must be {limits}, got {value!r}")
    if not math.isfinite(arguments["skew"]):
        raise DataError(f"toy: skew must be a finite number, got {arguments['skew']!r}")


def toy_options(options: dict) -> dict:
    """``options`` if every key is an argument of :func:`toy_kg`, else a DataError listing them."""
    known = list(inspect.signature(toy_kg).parameters)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise DataError(f"toy: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return options


def toy_kg(
    n_people: int = 600,
    n_professions: int = 20,
    skew: float = 2.0,
    female_fraction: float = 0.3,
    seed: int = 0,
    n_countries: int = 5,
    n_cities_per_country: int = 4,
    n_fields: int = 4,
    n_colleagues: int = 2,
    held_out_fraction: float = 0.05,
) -> KnowledgeGraph:
    """Build the toy graph (named ``"toy"``); the same arguments always give the same graph.

    Parameters
    ----------
    n_people, n_professions, n_countries, n_cities_per_country, n_fields
        Sizes.
    skew
        Strength of the planted gender-profession dependence (0: none).
    female_fraction
        Probability that a person is female.
    seed
        Seed of every random choice.
    n_colleagues
        Colleague links drawn per person among people sharing their first profession.
    held_out_fraction
        Size of valid and of test, each as a fraction of all triples; drawn from the
        profession and non-sensitive triples so that every valid/test entity and relation
        still occurs in train.
    """
    _check_arguments(locals())
    rng = np.random.default_rng(seed)
    is_male = rng.random(n_people) >= female_fraction
    popularity = rng.normal(0.0, 0.5, n_professions)
    planted = np.linspace(-1.0, 1.0, n_professions)[rng.permutation(n_professions)]
    logits_male = popularity + 0.5 * skew * planted
    logits_female = popularity - 0.5 * skew * planted
    country_weights = _softmax(rng.normal(0.0, 0.5, n_countries))
    field_of = rng.permutation(n_professions) % n_fields

    people = [f"person_{i:04d}" for i in range(n_people)]
    professions = [f"profession_{p:02d}" for p in range(n_professions)]
    countries = [f"country_{c}" for c in range(n_countries)]
    cities = [f"city_{c}_{j}" for c in range(n_countries) for j in range(n_cities_per_country)]

    triples: list[tuple[str, str, str]] = []
    first_profession = np.zeros(n_people, dtype=int)
    for i, person in enumerate(people):
        triples.append((person, GENDER, "male" if is_male[i] else "female"))
        country = rng.choice(n_countries, p=country_weights)
        triples.append((person, NATIONALITY, countries[country]))
        if rng.random() < BORN_IN_HOME_COUNTRY:
            city = country * n_cities_per_country + rng.integers(n_cities_per_country)
        else:
            city = rng.integers(len(cities))
        triples.append((person, BORN_IN, cities[city]))
        probabilities = _softmax(logits_male if is_male[i] else logits_female)
        n_draws = rng.integers(1, MAX_PROFESSIONS_PER_PERSON + 1)
        drawn = rng.choice(n_professions, size=n_draws, p=probabilities)
        first_profession[i] = drawn[0]
        for p in dict.fromkeys(drawn.tolist()):  # unique, in draw order
            triples.append((person, PROFESSION, professions[p]))
    triples += _colleagues(people, first_profession, n_colleagues, rng)
    for city_index, city in enumerate(cities):
        triples.append((city, LOCATED_IN, countries[city_index // n_cities_per_country]))
    for p, profession in enumerate(professions):
        triples.append((profession, IN_FIELD, f"field_{field_of[p]}"))

    train, valid, test = _split(triples, held_out_fraction, rng)
    parsed = {name: _as_parsed(name, part) for name, part in (("train", train), ("valid", valid), ("test", test))}
    indexed = index_triples(parsed)
    kg = KnowledgeGraph(
        name="toy",
        entities=indexed.entities,
        relations=indexed.relations,
        train=indexed.splits["train"],
        valid=indexed.splits["valid"],
        test=indexed.splits["test"],
        sensitive={
            GENDER: SensitiveRelation(GENDER, GENDER),
            PROFESSION: SensitiveRelation(PROFESSION, PROFESSION),
            NATIONALITY: SensitiveRelation(NATIONALITY, NATIONALITY),
        },
        skipped=indexed.skipped,
        named_values={GENDER: {g: g for g in ("male", "female") if g in indexed.entities}},
        metadata={
            "planted_skew": {name: float(skew * planted[p]) for p, name in enumerate(professions)},
            "true_log_ratio": _true_log_ratios(professions, logits_male, logits_female),
            "parameters": {
                "n_people": n_people, "n_professions": n_professions, "skew": skew,
                "female_fraction": female_fraction, "seed": seed, "n_countries": n_countries,
                "n_cities_per_country": n_cities_per_country, "n_fields": n_fields,
                "n_colleagues": n_colleagues, "held_out_fraction": held_out_fraction,
            },
            "humans_rule": "the generated people",
        },
    )
    kg.humans = torch.tensor(sorted(kg.entity_id(person) for person in people), dtype=torch.long)
    return kg


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def _true_log_ratios(professions, logits_male, logits_female) -> dict[str, float]:
    """``log P(has p | male) / P(has p | female)`` for k ~ uniform{1..3} i.i.d. draws."""

    def has_profession(logits):
        miss = 1.0 - _softmax(logits)
        return 1.0 - np.mean([miss**k for k in range(1, MAX_PROFESSIONS_PER_PERSON + 1)], axis=0)

    ratio = np.log(has_profession(logits_male)) - np.log(has_profession(logits_female))
    return {name: float(ratio[p]) for p, name in enumerate(professions)}


def _colleagues(people, first_profession, n_colleagues, rng) -> list[tuple[str, str, str]]:
    """Each person links to up to ``n_colleagues`` others with the same first profession."""
    triples = []
    seen = set()
    for p in np.unique(first_profession):
        members = np.flatnonzero(first_profession == p)
        if len(members) < 2:
            continue
        for i in members:
            others = members[members != i]
            chosen = rng.choice(others, size=min(n_colleagues, len(others)), replace=False)
            for j in sorted(chosen.tolist()):
                pair = (min(i, j), max(i, j))
                if pair not in seen:
                    seen.add(pair)
                    triples.append((people[i], COLLEAGUE_OF, people[j]))
    return triples


def _split(triples, held_out_fraction, rng):
    """Hold out valid/test triples whose entities and relation keep at least one train triple."""
    n_held_out = int(round(held_out_fraction * len(triples)))
    entity_count: dict[str, int] = {}
    relation_count: dict[str, int] = {}
    for head, relation, tail in triples:
        entity_count[head] = entity_count.get(head, 0) + 1
        entity_count[tail] = entity_count.get(tail, 0) + 1
        relation_count[relation] = relation_count.get(relation, 0) + 1
    candidates = [i for i, triple in enumerate(triples) if triple[1] in HELD_OUT_RELATIONS]
    held_out = []
    for i in rng.permutation(candidates).tolist():
        if len(held_out) == 2 * n_held_out:
            break
        head, relation, tail = triples[i]
        if entity_count[head] > 1 and entity_count[tail] > 1 and relation_count[relation] > 1:
            entity_count[head] -= 1
            entity_count[tail] -= 1
            relation_count[relation] -= 1
            held_out.append(i)
    held_out_set = set(held_out)
    train = [t for i, t in enumerate(triples) if i not in held_out_set]
    valid = [triples[i] for i in held_out[:n_held_out]]
    test = [triples[i] for i in held_out[n_held_out:]]
    return train, valid, test


def _as_parsed(split: str, triples) -> ParsedSplit:
    return ParsedSplit(f"toy:{split}", list(triples), list(range(1, len(triples) + 1)))
