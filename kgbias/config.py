"""One set of names for a training run: papermill parameters, CLI flags and run folders share them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from .errors import RunError


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model. Defaults are the papers' setting.

    Fisher et al. (2020a, b): TransE with the dot comparator, d = 200, 1000 negatives shared in
    the batch, softmax cross-entropy, AdaGrad with lr 0.1 and linear warm-up over epoch 1,
    50 epochs on Freebase data. Batch size 1000 is PyTorch-BigGraph's default (the papers do not
    state it).
    """

    dataset: str = "fb15k-237"
    dataset_options: dict = field(default_factory=dict)  # e.g. toy graph size and planted skew
    model: str = "transe"  # transe | complex
    comparator: str = "dot"  # dot | l1 | l2 (TransE only)
    embedding_dim: int = 200
    init_std: float | None = None  # None: 1e-3 for dot, 0.1 for distances
    loss: str = "softmax"  # softmax | margin
    margin: float = 1.0  # margin loss only
    n_negatives: int = 1000  # uniform random entities shared by every query in a batch
    batch_size: int = 1000  # positive triples per step; each is trained on both sides
    learning_rate: float = 0.1
    warmup_epochs: float = 1.0  # linear learning-rate warm-up
    n_epochs: int = 50
    valid_every: int = 1  # validation MRR every this many epochs (0: never)
    early_stopping_patience: int = 0  # stop after this many validations without gain (0: never)
    seed: int = 0

    def __post_init__(self):
        for name in ("embedding_dim", "n_negatives", "batch_size", "n_epochs"):
            if getattr(self, name) < 1:
                raise RunError(f"TrainConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise RunError(f"TrainConfig.learning_rate must be positive, got {self.learning_rate}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RunError(f"{source}: unknown field(s) {', '.join(unknown)}")
        try:
            return cls(**values)
        except TypeError as error:
            raise RunError(f"{source}: {error}") from None

    def fingerprint(self) -> str:
        """Short stable hash of every field, used in run folder names."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def run_name(self) -> str:
        """Readable folder name: model, comparator, dataset, dimension, seed and the hash."""
        return f"{self.model}-{self.comparator}-{self.dataset}-d{self.embedding_dim}-s{self.seed}-{self.fingerprint()}"

    def differences(self, other: "TrainConfig") -> dict:
        """Fields whose values differ: ``{name: (self_value, other_value)}``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
