"""Debiasing methods of Fisher et al. (2020b) and the baselines they are compared with."""

from .kl import FB15K_WEIGHTS, KLDebiasing, kl_to_target

__all__ = ["FB15K_WEIGHTS", "KLDebiasing", "kl_to_target"]
