"""Wrappers: registered, parameterised interventions that turn a base into a variant.

The intervention families (quantize, steer, decode, merge, early exit) register here; a model
string names them after the base: `BASE+WRAPPER:key=value,...+WRAPPER...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from harness._registry import Registry


@dataclass(frozen=True)
class WrapperSpec:
    """One `+WRAPPER:key=value,...` segment of a model string, as written."""

    name: str
    params: tuple[tuple[str, str], ...] = ()


class Wrapper(Protocol):
    """What a wrapper family provides."""

    name: str
    doc: str

    def apply(self, model: Any, tokenizer: Any, params: dict[str, str]) -> dict[str, Any]:
        """Change `model` (a private copy) and return the record of what was done: resolved
        parameters and the sha256 of every artifact used."""


WRAPPERS: Registry[Wrapper] = Registry("wrapper")
