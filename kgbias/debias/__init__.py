"""Debiasing methods of Fisher et al. (2020b), the baselines they are compared with, and their metrics."""

from .kl import FB15K_WEIGHTS, KLDebiasing, kl_to_target
from .metrics import bias_summary, probe_accuracy, score_difference, score_differences

__all__ = ["FB15K_WEIGHTS", "KLDebiasing", "bias_summary", "kl_to_target", "probe_accuracy",
           "score_difference", "score_differences"]
