"""Experts: short, seeded fine-tunes of a base on one skill each, built on first use into the cache,
the merge wrappers' offline sources (`expert:NAME` wherever a model string goes)."""

from harness.models.experts.recipes import EXPERT_PREFIX, EXPERTS, ExpertRecipe

__all__ = ["EXPERTS", "EXPERT_PREFIX", "ExpertRecipe"]
