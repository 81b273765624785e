"""Typed wrapper parameters: each declares its type, default, allowed values and one line of doc,
and turns the text of a model string into a checked value (or one line saying what is wrong)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness._util.registry import did_you_mean
from harness.errors import HarnessError

_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Param:
    name: str
    type: type | Callable[[str], Any]
    """int, float, str, bool, or a parser from text (raising ValueError with the reason)."""
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def parse(self, text: str, wrapper: str) -> Any:
        where = f"{wrapper}:{self.name}"
        value: Any
        try:
            if self.type is bool:
                if text.lower() not in _BOOLEANS:
                    raise ValueError("expected true or false")
                value = _BOOLEANS[text.lower()]
            else:
                value = self.type(text)
        except ValueError as exc:
            kind = getattr(self.type, "__name__", "value")
            reason = str(exc) if self.type not in (int, float) else f"expected {kind}"
            raise HarnessError(f"{where}={text!r}: {reason}") from None
        self.check(value, where)
        return value

    def check(self, value: Any, where: str) -> None:
        if self.choices is not None and value not in self.choices:
            raise HarnessError(f"{where}={value!r}: must be one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and value < self.minimum:
            raise HarnessError(f"{where}={value!r}: must be >= {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise HarnessError(f"{where}={value!r}: must be <= {self.maximum}")

    def describe(self) -> str:
        allowed = ""
        if self.choices is not None:
            allowed = f" {{{'|'.join(map(str, self.choices))}}}"
        elif self.minimum is not None or self.maximum is not None:
            allowed = f" [{'' if self.minimum is None else self.minimum}..{'' if self.maximum is None else self.maximum}]"
        kind = getattr(self.type, "__name__", "value")
        return f"{self.name}: {kind}{allowed} = {self.default!r}  {self.doc}"


def resolve(wrapper: str, params: tuple[Param, ...], given: dict[str, str]) -> dict[str, Any]:
    """Every declared parameter with its checked value (the given one, else its default)."""
    known = {p.name: p for p in params}
    for key in given:
        if key not in known:
            raise HarnessError(f"unknown parameter {key!r} for wrapper {wrapper}{did_you_mean(key, list(known))}")
    return {p.name: p.parse(given[p.name], wrapper) if p.name in given else p.default for p in params}
