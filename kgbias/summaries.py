"""Descriptive tables of who is in a graph: people per gender, top professions, attribute coverage."""

from __future__ import annotations

import pandas as pd
import torch

from .graph import KnowledgeGraph


def people_per_value(kg: KnowledgeGraph, attribute: str = "gender") -> pd.DataFrame:
    """People per value of an attribute, with their share; most frequent first."""
    counts = kg.attribute_counts(attribute)
    return pd.DataFrame({attribute: counts.index, "people": counts.to_numpy(),
                         "share": counts.to_numpy() / counts.sum()})


def top_values_by_group(kg: KnowledgeGraph, attribute: str = "profession", group: str = "gender",
                        n: int = 10) -> pd.DataFrame:
    """The ``n`` most frequent values of ``attribute`` within each value of ``group``.

    Returns a long table: group value, rank, attribute value, people, and the share of that
    group's people who have it.
    """
    values = kg.attribute_values(attribute)
    groups = kg.attribute_values(group)[["person", "value_label"]].rename(columns={"value_label": group})
    joined = values.merge(groups, on="person")
    group_sizes = groups.groupby(group)["person"].nunique()
    counts = (joined.groupby([group, "value_label"])["person"].nunique()
              .rename("people").reset_index()
              .sort_values([group, "people", "value_label"], ascending=[True, False, True], kind="stable"))
    counts["rank"] = counts.groupby(group).cumcount() + 1
    counts = counts[counts["rank"] <= n].rename(columns={"value_label": attribute})
    counts["share"] = counts["people"] / counts[group].map(group_sizes)
    return counts[[group, "rank", attribute, "people", "share"]].reset_index(drop=True)


def coverage(kg: KnowledgeGraph, among: str = "gender") -> pd.DataFrame:
    """For each sensitive attribute: people with it, distinct values, share of ``among`` people.

    ``among`` picks the reference population (default: people with a gender), so the table says
    e.g. what fraction of gendered people also have a religion.
    """
    reference = torch.unique(kg.attribute_pairs(among)[:, 0]) if among in kg.sensitive else kg.humans
    rows = []
    for attribute in kg.sensitive:
        pairs = kg.attribute_pairs(attribute)
        people = torch.unique(pairs[:, 0])
        rows.append({"attribute": attribute, "relation": kg.sensitive[attribute].relation,
                     "people": int(people.numel()), "values": int(torch.unique(pairs[:, 1]).numel()),
                     f"share_of_{among}_people": float(torch.isin(reference, people).double().mean())
                     if reference.numel() else float("nan")})
    return pd.DataFrame(rows)
