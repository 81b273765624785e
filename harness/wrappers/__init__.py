"""Wrappers: registered, parameterised interventions that turn a base into a variant.

The intervention families (quantize, exit/skip; steering, decoding and merging in their own modules)
register here with `@register_wrapper`; a model string names them after the base:
`BASE+WRAPPER:key=value,...+WRAPPER...`. Each wrapper declares its parameters (type, default,
allowed values, one line of doc), so a model string is checked, and its canonical form known,
before any model loads.

A wrapper's `apply` gets a private copy of the model (never a base shared with another variant),
changes it, and returns what it did: artifact hashes (steering vectors, calibration data, merge
sources), facts worth recording (a chosen bit map), and the FLOPs per token it executes beyond
what the module tree shows.
"""

from harness.wrappers._base import (
    FAMILIES,
    WRAPPERS,
    Applied,
    ApplyFn,
    Fitter,
    WrapperDef,
    WrapperSpec,
    canonical_text,
    register_wrapper,
)
from harness.wrappers._params import Param

__all__ = [
    "FAMILIES",
    "WRAPPERS",
    "Applied",
    "ApplyFn",
    "Fitter",
    "Param",
    "WrapperDef",
    "WrapperSpec",
    "canonical_text",
    "register_wrapper",
]
