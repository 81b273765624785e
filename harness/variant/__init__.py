"""Variants: a base model with its wrappers applied, with the identity and cost that enter the record."""

from harness.variant._variant import COMPUTE_DTYPE, LoadedVariant, Variant

__all__ = ["COMPUTE_DTYPE", "LoadedVariant", "Variant"]
