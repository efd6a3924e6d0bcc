"""One set of names for a training run: CLI flags, run folders and notebooks 02-04's papermill
parameters share them (notebook 05 names its debiasing ones for the paper: ``kl_weights``,
``n_values``, ``bose_epochs``)."""

from __future__ import annotations

import hashlib
import json
import math
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import DataError, RunError

# whose embeddings the KL term reads each step (TrainConfig.kl_people, KLDebiasing.people)
KL_PEOPLE = ("batch", "all", "batch+all", "batch+centroid")


# the models of kgbias.models and their comparators (here, so that config needs no torch import)
MODEL_COMPARATORS = {"transe": ("dot", "l1", "l2"), "complex": ("dot",)}


def _field(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model. Defaults are the papers' setting.

    Fisher et al. (2020a, b): TransE with the dot comparator, d = 200, 1000 negatives shared in
    the batch, softmax cross-entropy, AdaGrad with lr 0.1 and linear warm-up over epoch 1,
    50 epochs on Freebase data. Batch size 1000 is PyTorch-BigGraph's default (the papers do not
    state it).
    """

    dataset: str = _field("fb15k-237", "dataset name (`kgbias data list`), or a TOML schema path of your own graph")
    dataset_options: dict = field(default_factory=dict, metadata={"help": "dataset parameters, e.g. the toy graph's skew"})
    model: str = _field("transe", "transe | complex")
    comparator: str = _field("dot", "dot (the papers') | l1 | l2 (TransE only)")
    embedding_dim: int = _field(200, "embedding dimension d")
    init_std: float | None = _field(None, "std of the normal initialisation; none: 1e-3 for dot, 0.1 for distances")
    loss: str = _field("softmax", "softmax (cross-entropy over the negatives) | margin")
    margin: float = _field(1.0, "margin of the margin ranking loss")
    n_negatives: int = _field(1000, "uniform random entities shared by every query of a batch")
    batch_size: int = _field(1000, "positive triples per step; each is trained on both sides")
    learning_rate: float = _field(0.1, "AdaGrad learning rate")
    warmup_epochs: float = _field(1.0, "linear learning-rate warm-up, in epochs")
    n_epochs: int = _field(50, "epochs to train")
    valid_every: int = _field(1, "validation MRR every this many epochs (0: never)")
    early_stopping_patience: int = _field(0, "stop after this many validations without gain (0: never; "
                                                 "no validations, no stopping)")
    seed: int = _field(0, "random seed (initialisation, batch order, negatives)")
    debias: str = _field("none", "none (Basic) | kl: KL loss towards uniform attribute predictions | "
                                 "bose: Bose & Hamilton's adversarial filters (paper 2's baseline)")
    debias_weights: dict = field(default_factory=dict, metadata={
        "help": "w_KL per attribute, e.g. gender=1 (empty: paper 2's FB15K weights); its attributes "
                "(weight not 0) are also the ones bose filters and remove_sensitive drops "
                "(empty: gender, religion, ethnicity, nationality where the graph has them)"})
    kl_n_values: int = _field(30, "values per attribute the KL loss compares and the bose discriminators "
                                  "classify (gender: 2)")
    # Paper 2 writes L = L_CE + w L_KL in PyTorch-BigGraph, whose losses sum over the batch's
    # queries; with a mean L_CE the same weights act 2 x batch_size times stronger (paper 2, §4.1).
    kl_reduction: str = _field("sum", "kl: the L_CE reduction the weights refer to: sum (PyTorch-BigGraph's, "
                                      "paper 2's code base) | mean (the KL term 2 x batch_size times stronger)")
    kl_train_relations: bool = _field(False, "kl: the KL term also trains the sensitive relations' vectors (paper 2 "
                                             "freezes them, and every person's embedding then cancels the base rate "
                                             "the relation learns); the values stay frozen")
    kl_people: str = _field("batch", "kl: whose embeddings the KL term reads each step: batch (the people among the "
                                     "batch's heads and tails, paper 2) | all (every person of the graph, so that no "
                                     "person's embedding waits for a batch of its own while the relations move) | "
                                     "batch+all (the two terms summed) | batch+centroid (the batch's term plus "
                                     "the term of the mean of every person's embedding, which moves them all alike)")
    kl_second_scale: float = _field(1.0, "kl, kl_people batch+all or batch+centroid: weight of the second term "
                                         "(every person's, or the mean person's) relative to the batch's")
    attribute_vectors: bool = _field(False, "KL + Attr.: attribute vectors on whitelisted triples (needs whitelist)")
    whitelist: str = _field("", "whitelist file (attribute<TAB>relation|profession<TAB>name lines), or "
                                "default: whitelists/<dataset>.tsv, or a shipped name such as awards: "
                                "whitelists/<dataset>-awards.tsv; its content enters the run name")
    # Bose & Hamilton (2019) as paper 2 ran it: the authors' code, gamma = 10. That code's
    # apply_filters sums the chosen filters' outputs although their Eq. 6 averages them; "sum" is
    # the default for that reason. For [s] (one filter) the two agree; for [a] and training masks
    # of 2+ filters they differ by 1/|S|.
    bose_compose: str = _field("sum", "bose: sum (the authors' code, which paper 2 ran) | mean (their Eq. 6) "
                                      "of the chosen filters' outputs")
    bose_gamma: float = _field(10.0, "bose: weight gamma of the discriminators' cross-entropy (paper 2: 10)")
    bose_disc_steps: int = _field(5, "bose: Adam steps of each chosen discriminator per batch")
    bose_disc_lr: float = _field(1e-3, "bose: the discriminators' Adam learning rate")
    remove_sensitive: bool = _field(False, "drop the debiased attributes' triples from training "
                                           "(paper 2's 'Removed attributes', Table 9); bias metrics still read them")

    def __post_init__(self):
        for name, annotation in typing.get_type_hints(type(self)).items():
            value = getattr(self, name)
            allowed = typing.get_args(annotation) or (annotation,)  # float | None -> (float, NoneType)
            if float in allowed:
                allowed = (*allowed, int)
            if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
                raise RunError(f"TrainConfig.{name} must be {' or '.join(t.__name__ for t in allowed)}, "
                               f"got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise RunError(f"TrainConfig.{name} must be finite, got {value!r}")
        for name in ("embedding_dim", "n_negatives", "batch_size", "n_epochs"):
            if getattr(self, name) < 1:
                raise RunError(f"TrainConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.model not in MODEL_COMPARATORS:
            raise RunError(f"TrainConfig.model must be {' or '.join(MODEL_COMPARATORS)}, got {self.model!r}")
        if self.comparator not in MODEL_COMPARATORS[self.model]:
            raise RunError(f"TrainConfig.comparator of {self.model} must be "
                           f"{' or '.join(MODEL_COMPARATORS[self.model])}, got {self.comparator!r}")
        if self.debias not in ("none", "kl", "bose"):
            raise RunError(f"TrainConfig.debias must be none, kl or bose, got {self.debias!r}")
        if self.loss not in ("softmax", "margin"):
            raise RunError(f"TrainConfig.loss must be softmax or margin, got {self.loss!r}")
        if self.kl_reduction not in ("sum", "mean"):
            raise RunError(f"TrainConfig.kl_reduction must be sum or mean, got {self.kl_reduction!r}")
        if self.kl_people not in KL_PEOPLE:
            raise RunError(f"TrainConfig.kl_people must be {', '.join(KL_PEOPLE)}, got {self.kl_people!r}")
        for name, changed in (("kl_train_relations", self.kl_train_relations), ("kl_people", self.kl_people != "batch")):
            if changed and self.debias != "kl":
                raise RunError(f"TrainConfig.{name} changes the KL term: it needs debias='kl', "
                               f"got debias={self.debias!r}")
        if self.kl_second_scale != 1.0 and not self.kl_people.startswith("batch+"):
            raise RunError("TrainConfig.kl_second_scale weighs the second term of kl_people batch+all or "
                           f"batch+centroid, got kl_people={self.kl_people!r}")
        if self.kl_second_scale < 0:
            raise RunError(f"TrainConfig.kl_second_scale must be at least 0, got {self.kl_second_scale}")
        if self.bose_compose not in ("sum", "mean"):
            raise RunError(f"TrainConfig.bose_compose must be sum or mean, got {self.bose_compose!r}")
        if self.bose_gamma < 0 or self.bose_disc_steps < 0 or self.bose_disc_lr <= 0:
            raise RunError("TrainConfig.bose_gamma and bose_disc_steps must be at least 0 and bose_disc_lr "
                           f"positive, got {self.bose_gamma}, {self.bose_disc_steps}, {self.bose_disc_lr}")
        if self.debias == "bose" and self.attribute_vectors:
            raise RunError("TrainConfig.debias='bose' does not combine with attribute_vectors: the filters "
                           "replace every entity embedding, attribute vectors add to the unfiltered ones")
        if self.remove_sensitive and self.attribute_vectors:
            raise RunError("TrainConfig.remove_sensitive does not combine with attribute_vectors: the vectors "
                           "are trained only on the sensitive triples it removes")
        if self.attribute_vectors != bool(self.whitelist):
            raise RunError("TrainConfig.attribute_vectors and TrainConfig.whitelist go together: "
                           f"got attribute_vectors={self.attribute_vectors}, whitelist={self.whitelist!r}")
        if self.learning_rate <= 0:
            raise RunError(f"TrainConfig.learning_rate must be positive, got {self.learning_rate}")
        if self.init_std is not None and self.init_std <= 0:  # zero: a dot model's gradients are all zero
            raise RunError(f"TrainConfig.init_std must be positive (or none for the default), got {self.init_std}")
        if self.warmup_epochs < 0:
            raise RunError(f"TrainConfig.warmup_epochs must be at least 0, got {self.warmup_epochs}")
        if self.loss == "margin" and self.margin <= 0:  # the loss is then zero from the first step on
            raise RunError(f"TrainConfig.margin must be positive with loss='margin', got {self.margin}")
        if self.valid_every < 0 or self.early_stopping_patience < 0:
            raise RunError("TrainConfig.valid_every and early_stopping_patience must be at least 0, "
                           f"got {self.valid_every} and {self.early_stopping_patience}")
        if self.kl_n_values < 2:
            raise RunError(f"TrainConfig.kl_n_values must be at least 2 (a distribution over one value "
                           f"is always uniform), got {self.kl_n_values}")
        for attribute, weight in self.debias_weights.items():
            # bool is an int: `gender=true` must not pass as a weight of 1
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                    or weight < 0:
                raise RunError(f"TrainConfig.debias_weights[{attribute!r}] must be a finite number of at "
                               f"least 0, got {weight!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        if not isinstance(values, dict):
            raise RunError(f"{source}: expected an object of config fields, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RunError(f"{source}: unknown field(s) {', '.join(unknown)}")
        try:
            return cls(**values)
        except (TypeError, RunError) as error:
            raise RunError(f"{source}: {error}") from None

    def fingerprint(self) -> str:
        """Short stable hash of the fields that differ from their defaults (run folder names).

        Only non-default fields enter the hash, so adding a field to TrainConfig later keeps the
        names of existing runs; the full config is still stored and compared on reuse.
        """
        defaults = TrainConfig().to_dict()
        changed = {k: v for k, v in self.to_dict().items() if v != defaults[k]}
        if "debias_weights" in changed:  # gender=20 (YAML, CLI) and 20.0 (Python) are one run
            changed["debias_weights"] = {a: int(w) if float(w).is_integer() else w
                                         for a, w in changed["debias_weights"].items()}
        if self.debias == "kl":  # KL runs before kl_reduction existed used "mean": never reuse them
            changed["kl_reduction"] = self.kl_reduction
        if self.whitelist:  # an edited whitelist is another run
            changed["whitelist_sha256"] = self.whitelist_digest()
        if self.dataset.endswith(".toml"):  # so is an edited user graph
            from .data.tsv import schema_digest  # late: config stays free of torch imports

            try:
                changed["dataset_sha256"] = schema_digest(self.dataset)
            except DataError as error:
                raise RunError(f"TrainConfig.dataset: {error}") from None
        text = json.dumps(changed, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def whitelist_digest(self) -> str:
        """sha256 of the whitelist file's bytes (see :func:`kgbias.debias.whitelists.resolve_whitelist`)."""
        from .debias.whitelists import resolve_whitelist  # late: config stays free of torch imports
        try:
            return hashlib.sha256(resolve_whitelist(self.whitelist, self.dataset).read_bytes()).hexdigest()
        except (OSError, DataError) as error:
            raise RunError(f"TrainConfig.whitelist: cannot read {self.whitelist!r} ({error})") from None

    def run_name(self) -> str:
        """Readable folder name: model, comparator, dataset, dimension, seed and the hash."""
        dataset = Path(self.dataset).stem if self.dataset.endswith(".toml") else self.dataset
        return f"{self.model}-{self.comparator}-{dataset}-d{self.embedding_dim}-s{self.seed}-{self.fingerprint()}"

    def differences(self, other: "TrainConfig") -> dict:
        """Fields whose values differ: ``{name: (self_value, other_value)}``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
