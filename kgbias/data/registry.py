"""What each built-in data set is made of: file names, public URLs and checksums.

``DATASETS`` is a plain dict from data set name to :class:`DatasetSpec`. Every file is looked up
first in the mirror (``KGBIAS_MIRROR``, under its upstream name), then in the cache, then
downloaded from its public URL (see :mod:`kgbias.data.fetch`), and verified in all three cases.

Triple files are checked with :func:`kgbias.data.checksums.content_sha256` (independent of line
order, CRLF/LF and compression), so the gzipped, reordered FB15k train file in the mirror and the
original ``freebase_mtr100_mte100-train.txt`` inside ``fb15k.tgz`` have the same checksum. JSON
files are checked with their plain sha256 (values from the mirror's READMEs).
"""

from __future__ import annotations

from dataclasses import dataclass

from .checksums import CONTENT, FILE

FREEBASE = "freebase"
WIKIDATA = "wikidata"


@dataclass(frozen=True)
class FileSpec:
    """One file of a data set and how to find and check it.

    Attributes
    ----------
    mirror_path
        Path relative to the mirror directory, with upstream names (``fb15k/train.txt.gz``).
    url
        Public download URL (pinned to a commit where the host allows it).
    checksum
        Expected checksum, or ``None`` when none has been recorded yet (fetching then refuses
        unless the caller passes ``allow_unverified=True``).
    checksum_kind
        ``"content"`` (:func:`~kgbias.data.checksums.content_sha256`) or ``"file"`` (sha256 of
        the bytes).
    mirror_member, url_member
        Member name inside the tarball at ``mirror_path`` / ``url``; ``None`` for a plain or
        gzipped file.
    """

    mirror_path: str
    url: str
    checksum: str | None
    checksum_kind: str = CONTENT
    mirror_member: str | None = None
    url_member: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A built-in data set: its three splits, how to parse them and where its labels come from.

    Attributes
    ----------
    vocabulary
        ``"freebase"`` (MIDs, ``/people/person/...`` relations) or ``"wikidata"`` (Qids, Pids);
        it decides the sensitive relations, gender values and label files.
    delimiter
        Field separator of the triple files.
    allow_extra_fields
        Read the first three fields of lines that have more (WD50K's comma-separated format).
    unseen
        What to do with a valid/test triple whose entity or relation is not in train:
        ``"error"`` or ``"skip"`` (count it in ``KnowledgeGraph.skipped`` and log a warning).
    labels
        ``entity2wikidata.json`` (Freebase MID -> label, description, wikidata_id).
    type_labels
        CoDEx ``types/en/types.json`` (Qid -> label, description); Wikidata data sets only.
    entity_types
        CoDEx ``types/entity2types.json`` (Qid -> P31 types); when given, humans are the
        entities typed ``Q5``.
    """

    name: str
    description: str
    vocabulary: str
    train: FileSpec
    valid: FileSpec
    test: FileSpec
    delimiter: str = "\t"
    allow_extra_fields: bool = False
    unseen: str = "error"
    labels: FileSpec | None = None
    type_labels: FileSpec | None = None
    entity_types: FileSpec | None = None

    def files(self) -> tuple[FileSpec, ...]:
        """Every file the data set needs, splits first."""
        extra = (self.labels, self.type_labels, self.entity_types)
        return (self.train, self.valid, self.test) + tuple(f for f in extra if f is not None)


_CONVE = "https://raw.githubusercontent.com/TimDettmers/ConvE/f3c0eb286025410fa5b4c04696c918264163d0ca"
_VILLMOW = (
    "https://raw.githubusercontent.com/villmow/datasets_knowledge_embedding/"
    "9e392453d6804d1f51c13e5650ae58ed48b638d5"
)
_CODEX = "https://raw.githubusercontent.com/tsafavi/codex/3132e426c2a6b643b70bad679905a3a6270be440/data"
_STARE = (
    "https://raw.githubusercontent.com/migalkin/StarE/f40a5ee082d61851477e9870c21e991c7d91deb3/"
    "data/clean/wd50k/triples"
)
# PyTorch-BigGraph's mirror of the Bordes et al. archive; the authors' site
# (https://everest.hds.utc.fr/lib/exe/fetch.php?media=en:fb15k.tgz) holds the same members.
_FB15K_TGZ = "https://dl.fbaipublicfiles.com/starspace/fb15k.tgz"
_WIKIDATA5M_TGZ = "https://zenodo.org/record/5546383/files/wikidata5m_transductive.tar.gz"

ENTITY2WIKIDATA = FileSpec(
    mirror_path="fb15k-237/entity2wikidata.json",
    url=f"{_VILLMOW}/FB15k-237/entity2wikidata.json",
    checksum="80e74bb002fb9ca0ecd3d63879a3a51121db855d312a101917a1ffb6aed2fea9",
    checksum_kind=FILE,
)
CODEX_TYPE_LABELS = FileSpec(
    mirror_path="codex/types/en/types.json",
    url=f"{_CODEX}/types/en/types.json",
    checksum="2934c3bac72fd9e7dc8a6452a84845e8fa232264aaa505c4b81cad2b0e7c5626",
    checksum_kind=FILE,
)
CODEX_ENTITY_TYPES = FileSpec(
    mirror_path="codex/types/entity2types.json",
    url=f"{_CODEX}/types/entity2types.json",
    checksum="9c3797961498fc312a6d62c798b250c3ad501578a8ac07c0829a2862c627a878",
    checksum_kind=FILE,
)


def _fb15k237(split: str, checksum: str) -> FileSpec:
    return FileSpec(
        mirror_path="fb15k-237/FB15k-237.tar.gz",
        mirror_member=f"{split}.txt",
        url=f"{_CONVE}/FB15k-237.tar.gz",
        url_member=f"{split}.txt",
        checksum=checksum,
    )


def _fb15k(split: str, checksum: str) -> FileSpec:
    return FileSpec(
        mirror_path=f"fb15k/{split}.txt.gz",
        url=_FB15K_TGZ,
        url_member=f"FB15k/freebase_mtr100_mte100-{split}.txt",
        checksum=checksum,
    )


def _codex(size: str, split: str, checksum: str) -> FileSpec:
    path = f"triples/codex-{size}/{split}.txt"
    return FileSpec(mirror_path=f"codex/{path}", url=f"{_CODEX}/{path}", checksum=checksum)


def _wd50k(split: str, checksum: str) -> FileSpec:
    return FileSpec(
        mirror_path=f"wd50k/triples/{split}.txt", url=f"{_STARE}/{split}.txt", checksum=checksum
    )


def _wikidata5m(split: str) -> FileSpec:
    member = f"wikidata5m_transductive_{split}.txt"
    return FileSpec(
        mirror_path="wikidata5m/wikidata5m_transductive.tar.gz",
        mirror_member=member,
        url=_WIKIDATA5M_TGZ,
        url_member=member,
        checksum=None,  # not recorded yet: nobody has verified a download of this file
    )


DATASETS: dict[str, DatasetSpec] = {
    "fb15k-237": DatasetSpec(
        name="fb15k-237",
        description="FB15k-237 (Toutanova & Chen 2015) with Wikidata labels; the default",
        vocabulary=FREEBASE,
        train=_fb15k237("train", "8d2a771809b0f38f2824c839f25ec57e3a187405049112751e72c82ee9eb3e12"),
        valid=_fb15k237("valid", "1c4febacc6daabc6f3f8e72650935126ef208b098be3a90a81780ba69401836d"),
        test=_fb15k237("test", "a7156e4560d173ee2e3e8504c490e95d14fa893f1863a6d584d2f5053489a647"),
        # 36 of the 14,541 entities occur only in valid/test (9 valid and 28 test lines).
        unseen="skip",
        labels=ENTITY2WIKIDATA,
    ),
    "fb15k": DatasetSpec(
        name="fb15k",
        description="FB15k, the original Bordes et al. (2013) split, with Wikidata labels",
        vocabulary=FREEBASE,
        train=_fb15k("train", "696337a2d6133546ab6806e35dcbd5c0bfbef4f3e553e61714b95f754a6f3c5b"),
        valid=_fb15k("valid", "bac82edda6b039f852c8f316eb39cc26061029a762c5d75d52b7a3b1db738663"),
        test=_fb15k("test", "c60cb5d919959724021809b504b648dfe385b4733bd75918b4dd93c1c3b5f97e"),
        labels=ENTITY2WIKIDATA,
    ),
    "wd50k": DatasetSpec(
        name="wd50k",
        description="WD50K triples (Galkin et al. 2020): Wikidata-native, has P21 gender",
        vocabulary=WIKIDATA,
        train=_wd50k("train", "25360f1dbefa408c05e8606a9208aa50d486180639ef92098e3e7ea48142d97e"),
        valid=_wd50k("valid", "a39a82db32256c9160bab22b416dd6a93f8f4c82ec9825a3ab96a2bfe9432190"),
        test=_wd50k("test", "a6d9eb61b5d666d8c537aada07b4e463f3836c12142ab523a2cd442a3dc211ef"),
        delimiter=",",
        allow_extra_fields=True,
        # 1,431 valid and 739 test lines use entities or relations absent from train.
        unseen="skip",
        labels=ENTITY2WIKIDATA,
        type_labels=CODEX_TYPE_LABELS,
    ),
    "codex-s": DatasetSpec(
        name="codex-s",
        description="CoDEx-S (Safavi & Koutra 2020): Wikidata-native, no gender relation",
        vocabulary=WIKIDATA,
        train=_codex("s", "train", "b474f0bcef256ff9a8e76bb7d2be459f45d5843b8557a29028e79cc10a2aeeee"),
        valid=_codex("s", "valid", "43eb7ccc5309081986df7dfa3d530a0609c4d75325831086038f7c3b131ed4f6"),
        test=_codex("s", "test", "29f42710dcab8551acf260d3bf84b22839fce48c47727cc173a5fb5c99e64822"),
        labels=ENTITY2WIKIDATA,
        type_labels=CODEX_TYPE_LABELS,
        entity_types=CODEX_ENTITY_TYPES,
    ),
    "codex-m": DatasetSpec(
        name="codex-m",
        description="CoDEx-M (Safavi & Koutra 2020): Wikidata-native, no gender relation",
        vocabulary=WIKIDATA,
        train=_codex("m", "train", "af7fd1cc918e4871d86c4cbc1870e4539dbf8963a93950ddaaf118596afefdf1"),
        valid=_codex("m", "valid", "a54df63d39ee888bf2cf7602cab5f4614579bb50f3fd6af4b02e75e1817d3b9b"),
        test=_codex("m", "test", "1ec9cf87623ce08401cd1f28ef4798e21cc4211e1ae3c99e040dd52a47a45d7a"),
        labels=ENTITY2WIKIDATA,
        type_labels=CODEX_TYPE_LABELS,
        entity_types=CODEX_ENTITY_TYPES,
    ),
    "wikidata5m-humans": DatasetSpec(
        name="wikidata5m-humans",
        description=(
            "Wikidata5M transductive split (Wang et al. 2019), download only; no checksum "
            "recorded yet, so it needs allow_unverified=True"
        ),
        vocabulary=WIKIDATA,
        train=_wikidata5m("train"),
        valid=_wikidata5m("valid"),
        test=_wikidata5m("test"),
        unseen="skip",
        labels=ENTITY2WIKIDATA,
        type_labels=CODEX_TYPE_LABELS,
    ),
}
