"""kgbias: measure and reduce social bias in knowledge-graph embeddings (Fisher et al. 2020).

Importing kgbias runs nothing; see the README for the command line and notebooks.
"""

import logging

from .bias import bias_table, gradient_bias, pairwise_bias
from .config import TrainConfig
from .errors import ChecksumError, DataError, KgbiasError, RunError
from .evaluate import KnownAnswers, link_prediction, ranks_from_scores
from .graph import KnowledgeGraph, SensitiveRelation
from .models import MODELS, ComplEx, TransE, build_model
from .training import TrainedRun, train

__version__ = "0.1.0"

# The library logs but never prints: without a configured handler, its messages go nowhere.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "bias_table", "gradient_bias", "pairwise_bias", "ChecksumError", "ComplEx", "DataError", "KgbiasError", "KnowledgeGraph", "KnownAnswers",
    "MODELS", "RunError", "SensitiveRelation", "TrainConfig", "TrainedRun", "TransE",
    "build_model", "link_prediction", "ranks_from_scores", "train",
]
