"""The built-in data sets from the mirror, checked against the counts in its READMEs.

These skip when ``KGBIAS_MIRROR`` is unset or missing (CI sets it, so they run there).
"""

import os
import re
from pathlib import Path

import pytest
import torch

import kgbias.data.fetch as fetch
from kgbias import paths
from kgbias.data import fetch_dataset, list_datasets, load_dataset
from kgbias.data.registry import DATASETS
from kgbias.errors import DataError

MIRROR = os.environ.get("KGBIAS_MIRROR")
needs_mirror = pytest.mark.skipif(
    not MIRROR or not Path(MIRROR).is_dir(), reason="KGBIAS_MIRROR is unset or missing"
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    def refuse(url):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(fetch, "_open_url", refuse)
    monkeypatch.setenv("KGBIAS_CACHE", str(tmp_path / "cache"))


# Loaded once per module: parsing and checksumming all of FB15k takes about 2 s.
@pytest.fixture(scope="module")
def datasets():
    loaded = {}

    def get(name):
        if name not in loaded:
            loaded[name] = load_dataset(name)
        return loaded[name]

    return get


def gender_counts(kg, splits=("train", "valid", "test")):
    counts = kg.attribute_counts("gender", splits)
    return {value: int(counts[value]) for value in ("male", "female")}


def test_list_datasets_and_unknown_name():
    assert list_datasets() == ["fb15k-237", "fb15k", "wd50k", "codex-s", "codex-m", "wikidata5m-humans", "toy"]
    with pytest.raises(DataError, match=r"unknown data set 'fb15k237'; known: fb15k-237, fb15k, .*toy; a graph of your own .* \(ending in \.toml\)"):
        load_dataset("fb15k237")


def test_registry_files_are_pinned_and_checked():
    for name, spec in DATASETS.items():
        for file in spec.files():
            assert file.url.startswith("https://"), file
            assert file.checksum_kind in ("content", "file")
            if name == "wikidata5m-humans" and file in (spec.train, spec.valid, spec.test):
                assert file.checksum is None
            else:
                assert re.fullmatch("[0-9a-f]{64}", file.checksum), file


@needs_mirror
def test_fb15k_237(datasets):
    kg = datasets("fb15k-237")
    # README: 14,541 entities and 272,115 / 17,535 / 20,466 triples over all splits; 36 entities
    # occur only in valid/test, so their 9 valid and 28 test lines are skipped and counted.
    assert (kg.n_entities, kg.n_relations) == (14541 - 36, 237)
    assert kg.train.shape[0] == 272115
    assert kg.valid.shape[0] + kg.skipped["valid: unseen entity or relation"] == 17535
    assert kg.test.shape[0] + kg.skipped["test: unseen entity or relation"] == 20466
    assert kg.skipped == {"valid: unseen entity or relation": 9, "test: unseen entity or relation": 28}
    assert gender_counts(kg) == {"male": 3552, "female": 978}
    assert kg.named_values["gender"] == {"male": "/m/05zppz", "female": "/m/02zsn"}
    assert kg.label("/m/05zppz") == "male" and kg.label("/m/02zsn") == "female"
    summary = kg.describe()
    assert summary["n_people_with_profession"] == 4383
    assert summary["n_people_with_nationality"] == 4448
    assert summary["n_people_with_religion"] == 1173
    assert summary["n_people_with_ethnicity"] == 1895
    assert kg.sensitive["ethnicity"].inverted
    # 4,382 persons have gender and profession: 3,423 men and 959 women; train alone 2,659 / 728.
    professionals = set(kg.attribute_pairs("profession")[:, 0].tolist())
    gender = kg.attribute_pairs("gender").tolist()
    male = kg.value_id("gender", "male")
    both = [value for person, value in gender if person in professionals]
    assert (both.count(male), len(both) - both.count(male)) == (3423, 959)
    gendered = {person for person, _ in gender}
    assert len({v for p, v in kg.attribute_pairs("profession").tolist() if p in gendered}) == 152
    train_professionals = set(kg.attribute_pairs("profession", ("train",))[:, 0].tolist())
    train_both = [v for p, v in kg.attribute_pairs("gender", ("train",)).tolist() if p in train_professionals]
    assert (train_both.count(male), len(train_both) - train_both.count(male)) == (2659, 728)
    # ids: first appearance in train, head before tail
    assert kg.entities[:2] == ["/m/027rn", "/m/06cx9"]
    assert kg.relations[0] == "/location/country/form_of_government"
    assert torch.equal(kg.humans, torch.unique(kg.humans))
    assert len(kg.labels) == 14479
    assert kg.metadata["descriptions"]["/m/010016"] == "city in Texas, United States"


@needs_mirror
def test_fb15k(datasets):
    kg = datasets("fb15k")
    assert (kg.n_entities, kg.n_relations) == (14951, 1345)
    assert [kg.split(s).shape[0] for s in ("train", "valid", "test")] == [483142, 50000, 59071]
    assert kg.skipped == {}
    assert gender_counts(kg) == {"male": 3555, "female": 979}
    assert gender_counts(kg, ("train",)) == {"male": 2917, "female": 804}
    assert kg.describe()["n_people_with_profession"] == 4388


@needs_mirror
def test_wd50k(datasets):
    kg = datasets("wd50k")
    assert kg.n_relations == 473 and kg.n_entities == 40107  # README: 41,334 / 486 over all files
    assert kg.train.shape[0] == 164631
    assert kg.valid.shape[0] + kg.skipped["valid: unseen entity or relation"] == 23860
    assert kg.test.shape[0] + kg.skipped["test: unseen entity or relation"] == 46023
    counts = kg.attribute_counts("gender")
    assert (int(counts["male"]), int(counts["female"]), int(counts["Q48270"])) == (2259, 289, 2)
    assert set(kg.sensitive) == {"gender", "profession", "nationality", "religion", "ethnicity"}
    assert kg.metadata["humans_rule"] == "person side of gender, profession"
    assert kg.humans.numel() == 4273


@needs_mirror
def test_codex(datasets):
    small, medium = datasets("codex-s"), datasets("codex-m")
    assert (small.n_entities, small.n_relations) == (2034, 42)
    assert [small.split(s).shape[0] for s in ("train", "valid", "test")] == [32888, 1827, 1828]
    assert (medium.n_entities, medium.n_relations) == (17050, 51)
    assert [medium.split(s).shape[0] for s in ("train", "valid", "test")] == [185584, 10310, 10311]
    assert "gender" not in medium.sensitive and "gender" not in medium.named_values
    assert set(medium.sensitive) == {"profession", "nationality", "religion", "ethnicity"}
    assert medium.humans.numel() == 13223  # entities typed Q5
    assert medium.describe()["n_values_profession"] == 375
    assert len(medium.labels) == 4339  # README: types.json + entity2wikidata.json cover 4,339
    assert medium.label("Q33999") == "actor"


@needs_mirror
def test_fetch_dataset_returns_mirror_paths():
    paths = fetch_dataset("fb15k-237")
    assert [p.relative_to(MIRROR).as_posix() for p in paths] == [
        "fb15k-237/FB15k-237.tar.gz", "fb15k-237/entity2wikidata.json"
    ]


def whitelist_entries(path) -> list[list[str]]:
    """A whitelist file's ``[attribute, kind, name]`` lines, comments and blank lines left out."""
    return [line.split("#")[0].strip().split("\t") for line in path.read_text().splitlines()
            if line.split("#")[0].strip()]


@needs_mirror
@pytest.mark.parametrize("name", ["fb15k-237", "fb15k", "wd50k"])
def test_shipped_whitelists_are_the_derived_ones_and_load(datasets, name):
    """whitelists/<dataset>.tsv lists exactly what derive_whitelist finds (so a reader can
    regenerate it with scripts/derive_whitelist.py), and every line resolves in the graph."""
    from kgbias.debias.whitelists import load_whitelist, resolve_whitelist
    from kgbias.debias.whitelists import derive_whitelist

    kg = datasets(name)
    path = resolve_whitelist("default", name)
    shipped = whitelist_entries(path)
    derived = derive_whitelist(kg)
    assert shipped == derived[["attribute", "kind", "name"]].values.tolist()
    load_whitelist(path, kg)  # raises DataError naming file:line on any unknown name


# The relations scripts/derive_whitelist.py --add-relation adds for the *-awards.tsv whitelists
# (the command is in the script's docstring and in each file's header).
AWARD_RELATIONS = {
    "fb15k-237": ("/award/award_nominee/award_nominations./award/award_nomination/award",
                  "/award/award_category/winners./award/award_honor/award_winner"),
    "fb15k": ("/award/award_nominee/award_nominations./award/award_nomination/award",
              "/award/award_category/nominees./award/award_nomination/award_nominee",
              "/award/award_category/winners./award/award_honor/award_winner",
              "/award/award_winner/awards_won./award/award_honor/award"),
}


@needs_mirror
@pytest.mark.parametrize("name", sorted(AWARD_RELATIONS))
def test_award_whitelists_are_the_default_plus_the_award_relations(datasets, name):
    from kgbias.debias.whitelists import RELATIONS, derive_whitelist, load_whitelist

    kg = datasets(name)
    path = paths.ROOT / "whitelists" / f"{name}-awards.tsv"
    shipped = whitelist_entries(path)
    relations = {**RELATIONS, "gender": RELATIONS["gender"] + AWARD_RELATIONS[name]}
    assert shipped == derive_whitelist(kg, relations=relations)[["attribute", "kind", "name"]].values.tolist()
    for relation in AWARD_RELATIONS[name]:
        assert f"gender for {relation}" in path.read_text()  # the header says what was added
    whitelist = load_whitelist(path, kg)
    assert int(whitelist.relations["gender"].sum()) == 1 + len(AWARD_RELATIONS[name])  # spouse + awards
