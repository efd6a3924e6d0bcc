"""The bias measure of Fisher et al. (2020a) and checks the paper does not make.

>>> from kgbias.bias import gradient_bias, bias_table
>>> frame = gradient_bias(run.model, run.kg)            # doctest: +SKIP
>>> bias_table(frame, n=20, direction="b")              # doctest: +SKIP
"""

from .measure import ALL_HUMANS, gradient_bias, pairwise_bias
from .significance import (SeedStability, graph_fingerprint, permutation_null, permutation_nulls, seed_stability,
                           shuffle_attribute)
from .tables import bias_table, count_log_ratio, count_skew_correlation, spearman

__all__ = [
    "ALL_HUMANS", "SeedStability", "bias_table", "count_log_ratio", "count_skew_correlation",
    "gradient_bias", "graph_fingerprint", "pairwise_bias", "permutation_null", "permutation_nulls", "seed_stability",
    "shuffle_attribute", "spearman",
]
